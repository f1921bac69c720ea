"""Tables of the LTC lifecycle (长护险): assessments, recipients, monthly service records, claims, events.

Registered in :mod:`yibao.tables`; schema by Alembic ``0017_ltc``.  Money is integer fen.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base, BigId, JSONType, TZDateTime


class LtcAssessment(Base):
    """A disability assessment (失能等级评估); grade applies from the month after it."""

    __tablename__ = "ltc_assessment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String(30), nullable=False, index=True)
    assessor_institution: Mapped[str] = mapped_column(String(30), nullable=False)
    assessed_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    scores: Mapped[dict] = mapped_column(JSONType, nullable=False)
    total_score: Mapped[int] = mapped_column(Integer, nullable=False)
    grade: Mapped[str] = mapped_column(String(20), nullable=False)
    effective_from: Mapped[dt.date] = mapped_column(Date, nullable=False)
    valid_until: Mapped[dt.date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)  # valid / appealed
    appeal_note: Mapped[str] = mapped_column(String, nullable=False, default="")


class LtcRecipient(Base):
    """An enrolled LTC recipient (待遇享受人员) in one care setting."""

    __tablename__ = "ltc_recipient"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String(30), nullable=False, unique=True)
    region: Mapped[str] = mapped_column(String(30), nullable=False)
    setting: Mapped[str] = mapped_column(String(30), nullable=False)
    care_institution: Mapped[str] = mapped_column(String(30), nullable=False)
    start_month: Mapped[dt.date] = mapped_column(Date, nullable=False)
    end_month: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class LtcServiceRecord(Base):
    """Care services of one recipient-month (护理服务记录)."""

    __tablename__ = "ltc_service_record"
    __table_args__ = (UniqueConstraint("recipient_id", "month"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("ltc_recipient.id"), nullable=False)
    month: Mapped[dt.date] = mapped_column(Date, nullable=False)
    institution: Mapped[str] = mapped_column(String(30), nullable=False)
    days: Mapped[int] = mapped_column(Integer, nullable=False)
    services: Mapped[list] = mapped_column(JSONType, nullable=False)
    cost_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)


class LtcClaim(Base):
    """A settled monthly claim (月度结算) with the fund's funding-source split."""

    __tablename__ = "ltc_claim"
    __table_args__ = (UniqueConstraint("recipient_id", "month"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("ltc_recipient.id"), nullable=False)
    month: Mapped[dt.date] = mapped_column(Date, nullable=False)
    grade: Mapped[str] = mapped_column(String(20), nullable=False)
    setting: Mapped[str] = mapped_column(String(30), nullable=False)
    days: Mapped[int] = mapped_column(Integer, nullable=False)
    cost_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fund_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    person_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    source_split: Mapped[dict] = mapped_column(JSONType, nullable=False)
    settled_at: Mapped[dt.datetime] = mapped_column(TZDateTime, nullable=False)


class LtcEvent(Base):
    """History of state changes (状态变更记录)."""

    __tablename__ = "ltc_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String(30), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    detail: Mapped[dict] = mapped_column(JSONType, nullable=False)
    at: Mapped[dt.datetime] = mapped_column(TZDateTime, nullable=False)
