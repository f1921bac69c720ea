"""Database tables of supervision: enforcement cases, their events, and credit points.

Shares :class:`yibao.core.db.Base`; the schema is created by the Alembic
migration ``0004_supervision`` (``0012_case_workflow`` adds the clue kind, the fine paid and the appeal).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base

TZ = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Case(Base):
    """An enforcement case (案件), from clue to closing."""

    __tablename__ = "sv_case"
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(sa.String(20))
    subject_kind: Mapped[str] = mapped_column(sa.String(20))  # institution / physician / person / enterprise
    subject_code: Mapped[str] = mapped_column(sa.String(40), index=True)
    source: Mapped[str] = mapped_column(sa.String(80))  # rule id, complaint, inspection …
    violation: Mapped[str] = mapped_column(sa.String(40), default="")
    procedure: Mapped[str] = mapped_column(sa.String(10), default="general")  # summary / general
    loss_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    band: Mapped[str] = mapped_column(sa.String(10), default="")
    fine_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    recovered_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    major: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    legal_review_passed: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    transferred_to: Mapped[str] = mapped_column(sa.String(40), default="")
    # 0012: where the clue came from (scan_hit / complaint / referral / inspection), the fine paid (罚款缴纳)
    # and the appeal lodged (行政复议 / 行政诉讼)
    clue_kind: Mapped[str] = mapped_column(sa.String(20), default="")
    fine_paid_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    appeal_kind: Mapped[str] = mapped_column(sa.String(20), default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(TZ, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(TZ)
    updated_at: Mapped[dt.datetime] = mapped_column(TZ)


class CaseEvent(Base):
    """One recorded step of a case (全过程记录)."""

    __tablename__ = "sv_case_event"
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(BIG_ID, sa.ForeignKey("sv_case.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(20))
    from_state: Mapped[str] = mapped_column(sa.String(20))
    to_state: Mapped[str] = mapped_column(sa.String(20))
    actor: Mapped[str] = mapped_column(sa.String(60))
    note: Mapped[str] = mapped_column(sa.Text, default="")
    payload: Mapped[str] = mapped_column(sa.Text, default="{}")  # JSON
    at: Mapped[dt.datetime] = mapped_column(TZ)


class CreditPoint(Base):
    """Points for bad practice (不良执业行为积分) against an institution, physician or enterprise."""

    __tablename__ = "sv_credit_point"
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    subject_kind: Mapped[str] = mapped_column(sa.String(20))
    subject_code: Mapped[str] = mapped_column(sa.String(40))
    points: Mapped[int] = mapped_column(sa.Integer)
    case_id: Mapped[int | None] = mapped_column(BIG_ID, sa.ForeignKey("sv_case.id"), nullable=True)
    reason: Mapped[str] = mapped_column(sa.String(200))
    at: Mapped[dt.datetime] = mapped_column(TZ)

    __table_args__ = (sa.Index("ix_sv_credit_point_subject", "subject_kind", "subject_code"),)
