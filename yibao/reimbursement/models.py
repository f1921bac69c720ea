"""Tables of manual reimbursement (手工报销): the claim, its invoice lines, the invoice register, the review steps.

Registered in :mod:`yibao.tables`; schema by Alembic ``0020_manual_claims``.  Money is integer fen.  The review
steps are append-only (nothing updates or deletes them); the claim links to the settlement the engine wrote.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base, BigId, JSONType, TZDateTime


class ManualClaim(Base):
    """One manual claim (手工报销申请) entered from paper invoices."""

    __tablename__ = "manual_claim"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String(30), index=True)
    insutype: Mapped[str] = mapped_column(String(6))
    fixmedins_code: Mapped[str | None] = mapped_column(String(30), nullable=True)  # None: a free-text provider
    provider_name: Mapped[str] = mapped_column(String(200), default="")  # 就诊机构 as the invoice names it
    provider_admdvs: Mapped[str] = mapped_column(String(6))  # the provider's division (就医地)
    hosp_lv: Mapped[int] = mapped_column(SmallInteger)  # the provider's level (from the table, or as reviewed)
    med_type: Mapped[str] = mapped_column(String(6))
    begin_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)  # discharge / day of the visit
    dise_codg: Mapped[str] = mapped_column(String(20))
    other_dise_codg: Mapped[str] = mapped_column(String(200), default="")  # ';'-separated
    reason: Mapped[str] = mapped_column(String(30))  # a key of manual.yaml reasons
    documents: Mapped[Any] = mapped_column(JSONType)  # the documents received (keys of manual.yaml documents)
    status: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)  # +1 on every change (approval checks it)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(TZDateTime)
    submitted_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    setl_id: Mapped[str | None] = mapped_column(String, ForeignKey("settlement.setl_id"), nullable=True)
    mdtrt_id: Mapped[str | None] = mapped_column(String, nullable=True)
    reimbursed_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # fund parts + account, paid out
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class ManualClaimLine(Base):
    """One invoice line (票据明细) of a manual claim."""

    __tablename__ = "manual_claim_line"
    __table_args__ = (UniqueConstraint("claim_id", "line_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    claim_id: Mapped[int] = mapped_column(BigId, ForeignKey("manual_claim.id"))
    line_no: Mapped[int] = mapped_column(Integer)  # the engine's feedetl_sn
    invoice_no: Mapped[str] = mapped_column(String(60))
    med_list_codg: Mapped[str | None] = mapped_column(String(60), nullable=True)  # None: no national code known
    item_text: Mapped[str] = mapped_column(String(200), default="")  # the item as the invoice writes it
    quantity_milli: Mapped[int] = mapped_column(BigInteger)  # quantity × 1000
    unit_price_fen: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    uncoded: Mapped[bool] = mapped_column(Boolean, default=False)  # settled as out-of-list (全自费), flagged


class ManualInvoice(Base):
    """An invoice number used by a person's manual claim (票据号登记): one claim per invoice and person."""

    __tablename__ = "manual_invoice"
    __table_args__ = (UniqueConstraint("psn_no", "invoice_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String(30))
    invoice_no: Mapped[str] = mapped_column(String(60))
    claim_id: Mapped[int] = mapped_column(BigId, ForeignKey("manual_claim.id"))


class ManualClaimStep(Base):
    """One step of a claim's history (审核记录): who, role, action, comment, time.  Append-only."""

    __tablename__ = "manual_claim_step"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    claim_id: Mapped[int] = mapped_column(BigId, ForeignKey("manual_claim.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(TZDateTime)
    actor: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str] = mapped_column(String(20), default="")
    to_state: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(String(2000), default="")
    payload: Mapped[Any] = mapped_column(JSONType)
