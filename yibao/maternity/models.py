"""Maternity allowance claim tables (生育津贴申领).  Schema: migration ``0021_maternity_claims``.

``maternity_claim`` holds one claim per person and event: the figures as declared and as computed when it was
filed (contribution months counted from enrolment, days and amounts from the policy file), its status and the
decision.  ``maternity_claim_step`` is the claim's review history, append-only: every step is a new row.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base, BigId, TZDateTime

__all__ = ["MaternityClaim", "MaternityClaimStep", "CLAIM_STATUSES"]

CLAIM_STATUSES = ("submitted", "checked", "approved", "rejected", "paid")
"""已申报 (submitted), 已初审 (checked), 已核准 (approved), 不予支付 (rejected), 已支付 (paid)."""


class MaternityClaim(Base):
    """One maternity allowance claim (生育津贴申领), amounts in fen."""

    __tablename__ = "maternity_claim"
    __table_args__ = (Index(None, "psn_no", "event_date"), Index(None, "status"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"))
    claimant: Mapped[str] = mapped_column(String)  # insured_woman / insured_spouse (policy maternity.claimants)
    employer: Mapped[str] = mapped_column(String)  # 用人单位 (name or unit code, as declared)
    region: Mapped[str] = mapped_column(String)  # 参保地医保区划 whose policy decided the figures
    event_kind: Mapped[str] = mapped_column(String)  # birth / difficult_birth / miscarriage
    babies: Mapped[int] = mapped_column(Integer, default=1)  # 胎数 (多胞胎 when > 1)
    pregnancy_weeks: Mapped[int | None] = mapped_column(Integer)  # 妊娠周数 (流产)
    event_date: Mapped[dt.date] = mapped_column(Date)  # 生育/流产日期
    applied_on: Mapped[dt.date] = mapped_column(Date)  # 申领日期
    average_wage: Mapped[int] = mapped_column(BigInteger)  # 用人单位上年度职工月平均工资, fen, as declared
    contribution_months: Mapped[int] = mapped_column(Integer)  # 缴费月数, counted from enrolment records
    days: Mapped[int] = mapped_column(Integer)  # 津贴天数
    allowance: Mapped[int] = mapped_column(BigInteger)  # 生育津贴, fen
    lump_sum: Mapped[int] = mapped_column(BigInteger, default=0)  # 生育医疗费定额, fen
    amount: Mapped[int] = mapped_column(BigInteger)  # allowance + lump sum, fen
    status: Mapped[str] = mapped_column(String, default="submitted")
    decided_by: Mapped[str | None] = mapped_column(String)
    decided_at: Mapped[dt.datetime | None] = mapped_column(TZDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime())
    synthetic: Mapped[bool] = mapped_column(default=False)


class MaternityClaimStep(Base):
    """One review step of a claim (审核记录); never updated or deleted."""

    __tablename__ = "maternity_claim_step"
    __table_args__ = (Index(None, "claim_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    claim_id: Mapped[int] = mapped_column(BigId, ForeignKey("maternity_claim.id"))
    action: Mapped[str] = mapped_column(String)  # submit / check / approve / reject / pay
    from_status: Mapped[str] = mapped_column(String, default="")
    to_status: Mapped[str] = mapped_column(String)
    actor: Mapped[str] = mapped_column(String)
    note: Mapped[str] = mapped_column(String, default="")
    at: Mapped[dt.datetime] = mapped_column(TZDateTime())
