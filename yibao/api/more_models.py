"""Tables of the further national-interface transactions (:mod:`yibao.api.more_transactions`).

* ``api_sign_out``: sign-outs (签退, 9002); the sign-in's ``expires_at`` is
  set to the sign-out time as well, so the ``sign_no`` stops working.
* ``api_file``: files uploaded by institutions (9101) and files the platform
  produced for them (1301 catalog, 3202 reconciliation result), downloaded
  with 9102 by ``file_qury_no``; one institution sees only its own files.
* ``api_incare_result``: the findings of an in-care analysis (3101), one row
  per finding (``jr_id``), and the institution's feedback on it (3102).
* ``api_setl_list``: the settlement lists (医疗保障基金结算清单, 4101/4101A)
  with the DRG group the payment subsystem's grouper gave them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base, JSONType, TZDateTime

__all__ = ["ApiFile", "IncareResult", "SetlList", "SignOut"]


class SignOut(Base):
    """签退: when a sign_no was signed out, by whom."""

    __tablename__ = "api_sign_out"

    sign_no: Mapped[str] = mapped_column(String, primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String)
    opter_no: Mapped[str | None] = mapped_column(String)
    signed_out_at: Mapped[datetime] = mapped_column(TZDateTime)
    msgid: Mapped[str | None] = mapped_column(String)


class ApiFile(Base):
    """A file held for an institution (文件上传 9101 / 文件下载 9102)."""

    __tablename__ = "api_file"
    __table_args__ = (Index(None, "fixmedins_code", "created_at"),)

    file_qury_no: Mapped[str] = mapped_column(String, primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String)
    filename: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)  # upload / catalog / reconciliation
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
    dld_endtime: Mapped[datetime] = mapped_column(TZDateTime)
    msgid: Mapped[str | None] = mapped_column(String)


class IncareResult(Base):
    """One finding of an in-care analysis (事前事中分析 3101) and its feedback (3102)."""

    __tablename__ = "api_incare_result"
    __table_args__ = (Index(None, "fixmedins_code", "mdtrt_id"),)

    jr_id: Mapped[str] = mapped_column(String, primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String)
    psn_no: Mapped[str] = mapped_column(String)
    mdtrt_id: Mapped[str] = mapped_column(String)
    rule_id: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)  # warn / refuse
    severity: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(String)
    vola_amt: Mapped[int] = mapped_column(BigInteger)  # fen
    evidence: Mapped[Any | None] = mapped_column(JSONType)
    msgid: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
    dspo_way: Mapped[str | None] = mapped_column(String)
    dspo_way_rea: Mapped[str | None] = mapped_column(String)
    dspo_msgid: Mapped[str | None] = mapped_column(String)
    dspo_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class SetlList(Base):
    """医疗保障基金结算清单 (4101 / 4101A), one per settlement, with its DRG group."""

    __tablename__ = "api_setl_list"

    setl_list_id: Mapped[str] = mapped_column(String, primary_key=True)
    setl_id: Mapped[str] = mapped_column(String, unique=True)
    mdtrt_id: Mapped[str] = mapped_column(String)
    psn_no: Mapped[str] = mapped_column(String)
    fixmedins_code: Mapped[str] = mapped_column(String)
    main_diag: Mapped[str] = mapped_column(String)
    other_diags: Mapped[Any] = mapped_column(JSONType)
    oprns: Mapped[Any] = mapped_column(JSONType)
    ipt_days: Mapped[int] = mapped_column(SmallInteger)
    scheme: Mapped[str] = mapped_column(String)
    mdc: Mapped[str | None] = mapped_column(String)
    adrg: Mapped[str | None] = mapped_column(String)
    drg: Mapped[str | None] = mapped_column(String)
    group_status: Mapped[str] = mapped_column(String)
    payload: Mapped[Any] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(SmallInteger)
    infno: Mapped[str] = mapped_column(String)
    msgid: Mapped[str] = mapped_column(String)
    uploaded_at: Mapped[datetime] = mapped_column(TZDateTime)
