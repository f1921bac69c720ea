"""Tables of the commercial layer (商业补充保险): policies sold, direct claims, accumulators, TPA messages.

Created by the Alembic migration ``0018_commercial_rx``.  Money is integer fen.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base, BigId, TZDateTime

CLAIM_STATES = ("sent", "accepted", "paid", "refused")


class CommercialPolicy(Base):
    """A policy sold (保单): one person, one product, one year."""

    __tablename__ = "cm_policy"
    __table_args__ = (sa.UniqueConstraint("psn_no", "product_id", "year"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(sa.String(40))
    product_id: Mapped[str] = mapped_column(sa.String(40))
    year: Mapped[int] = mapped_column(sa.SmallInteger)
    premium_fen: Mapped[int] = mapped_column(sa.BigInteger)
    pre_existing: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # 既往症 declared at enrolment
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime)


class CommercialClaim(Base):
    """A direct claim (一站式理赔) passed to the insurer after settlement."""

    __tablename__ = "cm_claim"
    __table_args__ = (sa.UniqueConstraint("setl_id", "product_id"), sa.Index(None, "product_id", "status"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    setl_id: Mapped[str] = mapped_column(sa.String(60))
    product_id: Mapped[str] = mapped_column(sa.String(40))
    insurer: Mapped[str] = mapped_column(sa.String(40))
    psn_no: Mapped[str] = mapped_column(sa.String(40))
    year: Mapped[int] = mapped_column(sa.SmallInteger)
    in_list_fen: Mapped[int] = mapped_column(sa.BigInteger)
    out_of_list_fen: Mapped[int] = mapped_column(sa.BigInteger)
    specific_drug_fen: Mapped[int] = mapped_column(sa.BigInteger)
    deductible_fen: Mapped[int] = mapped_column(sa.BigInteger)
    insurer_pays_fen: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(10))
    insurer_ref: Mapped[str] = mapped_column(sa.String(60), default="")
    refuse_reason: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(TZDateTime)


class CommercialAccumulator(Base):
    """Per person-product-year: deductible used (免赔额已用) and insurer paid (已赔付), fen."""

    __tablename__ = "cm_accumulator"
    psn_no: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    product_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    year: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    deductible_used: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    paid: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class TpaMessage(Base):
    """Every insurer call (TPA 审计): the message id makes writes idempotent."""

    __tablename__ = "cm_tpa_message"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    msgid: Mapped[str | None] = mapped_column(sa.String(60), unique=True)  # NULL for reads
    insurer: Mapped[str] = mapped_column(sa.String(40))
    action: Mapped[str] = mapped_column(sa.String(20))
    claim_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    outcome: Mapped[str] = mapped_column(sa.Text, default="")
    at: Mapped[dt.datetime] = mapped_column(TZDateTime)
