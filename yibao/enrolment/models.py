"""Enrolment tables (参保登记与缴费): insured periods, contributions and deemed contribution years.

Unique keys make a repeated request refusable, never doubled: one period per person, scheme and start date;
one contribution per person, scheme and period (``YYYY-MM`` for employees, ``YYYY`` for residents); one
deemed-years record per person.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base, BigId

__all__ = ["InsuredPeriod", "Contribution", "DeemedYears", "PERIOD_STATUSES"]

PERIOD_STATUSES = ("active", "suspended", "terminated")
"""参保 (active), 停保 (suspended: may resume), 终止 (terminated: e.g. transferred out or deceased)."""


class InsuredPeriod(Base):
    """One insured period of a person in a scheme (参保期间); ``end_date`` NULL while open."""

    __tablename__ = "en_insured_period"
    __table_args__ = (UniqueConstraint("psn_no", "insutype", "start_date"), Index(None, "psn_no", "insutype"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"))
    insutype: Mapped[str] = mapped_column(String)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)  # last covered day, inclusive
    status: Mapped[str] = mapped_column(String, default="active")
    reason: Mapped[str] = mapped_column(String, default="")
    transfer_in_from: Mapped[str | None] = mapped_column(String)  # pooling region (转入, admdvs)
    transfer_out_to: Mapped[str | None] = mapped_column(String)  # pooling region (转出, admdvs)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class Contribution(Base):
    """A contribution due for one period (缴费): parts in fen; ``paid_date`` NULL while in arrears (欠费)."""

    __tablename__ = "en_contribution"
    __table_args__ = (UniqueConstraint("psn_no", "insutype", "period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"))
    insutype: Mapped[str] = mapped_column(String)
    period: Mapped[str] = mapped_column(String)  # YYYY-MM (employee) or YYYY (resident)
    base: Mapped[int] = mapped_column(BigInteger, default=0)  # clamped contribution base, fen
    employer_part: Mapped[int] = mapped_column(BigInteger, default=0)
    individual_part: Mapped[int] = mapped_column(BigInteger, default=0)
    subsidy: Mapped[int] = mapped_column(BigInteger, default=0)  # government subsidy (财政补助), residents
    late_fee: Mapped[int] = mapped_column(BigInteger, default=0)  # 滞纳金, where the policy sets one
    paid_date: Mapped[date | None] = mapped_column(Date)
    back_payment: Mapped[bool] = mapped_column(Boolean, default=False)  # 补缴
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class DeemedYears(Base):
    """Deemed contribution years (视同缴费年限) recognised for a person, in months."""

    __tablename__ = "en_deemed_years"

    psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"), primary_key=True)
    months: Mapped[int] = mapped_column(Integer)
    basis: Mapped[str] = mapped_column(String, default="")
