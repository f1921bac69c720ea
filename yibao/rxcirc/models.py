"""Tables of prescription circulation (处方流转).  Schema: migration ``0023_rx_circulation``.

``rx_prescription`` mirrors the national electronic-prescription upload (hi_rxno, hosp_rxno, rx_trace_code,
prsc_time, valid_days …); its lines are ``rx_prescription_line``; a pharmacy's fill (外配取药) with the settlement it
made is ``rx_fill``; an internet-hospital follow-up (互联网复诊) with the offline visit it follows is
``rx_online_visit``.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import TZ_SECONDS, Base

TZ = TZ_SECONDS  # timezone-aware, naive values refused, read back in Asia/Shanghai
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

STATUS_ISSUED = "issued"  # 已开具, may be filled
STATUS_FILLED = "filled"  # 已取药 (核销)
STATUS_CANCELLED = "cancelled"  # 已撤销
STATUS_EXPIRED = "expired"  # 已失效 (shown when an issued prescription is past its validity)
STATUSES = (STATUS_ISSUED, STATUS_FILLED, STATUS_CANCELLED, STATUS_EXPIRED)


class ElectronicPrescription(Base):
    """An electronic prescription (电子处方) issued by an institution for circulation to a pharmacy."""

    __tablename__ = "rx_prescription"
    __table_args__ = (sa.UniqueConstraint("fixmedins_code", "hosp_rxno", name="uq_rx_prescription_hosp_rxno"),)
    hi_rxno: Mapped[str] = mapped_column(sa.String(30), primary_key=True)  # 医保处方编号
    hosp_rxno: Mapped[str] = mapped_column(sa.String(40))  # the issuer's own number (定点医疗机构处方编号)
    rx_trace_code: Mapped[str] = mapped_column(sa.String(40), unique=True)  # 处方追溯码
    fixmedins_code: Mapped[str] = mapped_column(sa.String(30))  # issuing institution (开方机构)
    prac_psn_code: Mapped[str] = mapped_column(sa.String(30))  # prescribing doctor (开方医师)
    psn_no: Mapped[str] = mapped_column(sa.String(30), index=True)
    mdtrt_id: Mapped[str] = mapped_column(sa.String(40), default="")  # the visit it was written in; '' = none stored
    med_type: Mapped[str] = mapped_column(sa.String(6))  # the original visit's 医疗类别
    dise_codg: Mapped[str] = mapped_column(sa.String(200))  # diagnoses, ';'-separated, principal first
    prsc_time: Mapped[dt.datetime] = mapped_column(TZ)  # 开方时间
    valid_days: Mapped[int] = mapped_column(sa.Integer)  # 处方有效天数
    valid_end_date: Mapped[dt.date] = mapped_column(sa.Date)  # last day it may be filled
    status: Mapped[str] = mapped_column(sa.String(10), default=STATUS_ISSUED)
    sm3_digest: Mapped[str] = mapped_column(sa.String(64))  # SM3 of the signed content
    created_at: Mapped[dt.datetime] = mapped_column(TZ)
    synthetic: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class PrescriptionLine(Base):
    """One drug of a prescription (处方药品明细)."""

    __tablename__ = "rx_prescription_line"
    hi_rxno: Mapped[str] = mapped_column(sa.String(30), sa.ForeignKey("rx_prescription.hi_rxno"), primary_key=True)
    line_no: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    med_list_codg: Mapped[str] = mapped_column(sa.String(50))
    cnt_milli: Mapped[int] = mapped_column(sa.BigInteger)  # drug_cnt × 1000
    medc_days: Mapped[int] = mapped_column(sa.Integer)  # 用药天数


class PrescriptionFill(Base):
    """A pharmacy's fill of a prescription and the settlement it made (外配取药结算).

    At most one fill of a prescription is live (not ``cancelled``); cancelling its settlement through
    :meth:`yibao.rxcirc.service.RxService.cancel_fill` keeps the row and makes the prescription fillable again.
    """

    __tablename__ = "rx_fill"
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    hi_rxno: Mapped[str] = mapped_column(sa.String(30), sa.ForeignKey("rx_prescription.hi_rxno"), index=True)
    fixmedins_code: Mapped[str] = mapped_column(sa.String(30))  # the dispensing pharmacy
    issuer_code: Mapped[str] = mapped_column(sa.String(30))  # the issuing institution, as settled
    hosp_lv: Mapped[int] = mapped_column(sa.SmallInteger)  # the level the benefit was computed at
    mdtrt_id: Mapped[str] = mapped_column(sa.String(40))  # the pharmacy encounter the settlement made
    setl_id: Mapped[str] = mapped_column(sa.String(40))
    msgid: Mapped[str] = mapped_column(sa.String(40))
    filled_at: Mapped[dt.datetime] = mapped_column(TZ)  # sel_retn_time
    delivery_fee: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # 配送费, fen
    delivery_selfpay: Mapped[bool] = mapped_column(sa.Boolean, default=True)  # paid outside the settlement
    cancelled: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # its settlement was cancelled (撤销)
    cancel_msgid: Mapped[str] = mapped_column(sa.String(40), default="")


class OnlineVisit(Base):
    """An internet-hospital follow-up consultation (互联网医院复诊) and the offline visit it follows."""

    __tablename__ = "rx_online_visit"
    mdtrt_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    psn_no: Mapped[str] = mapped_column(sa.String(30), index=True)
    fixmedins_code: Mapped[str] = mapped_column(sa.String(30))
    prior_mdtrt_id: Mapped[str] = mapped_column(sa.String(40))  # the offline visit that makes this a 复诊
    setl_id: Mapped[str] = mapped_column(sa.String(40))
    consulted_at: Mapped[dt.datetime] = mapped_column(TZ)
