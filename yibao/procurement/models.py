"""SQLAlchemy models of VBP rounds (集采): rounds, bids, results, contracts, orders.

They share :data:`yibao.core.db.Base` (registered in :mod:`yibao.tables`);
the schema is created by Alembic migration ``0003_procurement``.  Money is
integer fen; unit comparable prices are integers in 0.0001 yuan (e4).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base, BigId, TZDateTime


class VbpRound(Base):
    """One evaluated round (采购批次) under one rule set."""

    __tablename__ = "vbp_round"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String, nullable=False)
    ruleset_id: Mapped[str] = mapped_column(String, nullable=False)
    round_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    synthetic: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime, nullable=False)


class VbpBid(Base):
    """A bid (申报) as submitted."""

    __tablename__ = "vbp_bid"
    __table_args__ = (Index(None, "round_id", "drug_id"),)

    round_id: Mapped[int] = mapped_column(ForeignKey("vbp_round.id"), primary_key=True)
    bid_id: Mapped[str] = mapped_column(String, primary_key=True)
    drug_id: Mapped[str] = mapped_column(String, nullable=False)
    spec_id: Mapped[str] = mapped_column(String, nullable=False)
    firm_id: Mapped[str] = mapped_column(String, nullable=False)
    price_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)


class VbpResult(Base):
    """A bidder's outcome (拟中选结果) with the reason it won or lost."""

    __tablename__ = "vbp_result"

    round_id: Mapped[int] = mapped_column(ForeignKey("vbp_round.id"), primary_key=True)
    drug_id: Mapped[str] = mapped_column(String, primary_key=True)
    firm_id: Mapped[str] = mapped_column(String, primary_key=True)
    status: Mapped[str] = mapped_column(String, nullable=False)
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    comparable_e4: Mapped[int] = mapped_column(BigInteger, nullable=False)
    award_comparable_e4: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reason_code: Mapped[str] = mapped_column(String, nullable=False)
    reason_en: Mapped[str] = mapped_column(String, nullable=False)
    reason_zh: Mapped[str] = mapped_column(String, nullable=False)


class VbpContract(Base):
    """A purchase contract (购销协议) per institution, specification and supplier."""

    __tablename__ = "vbp_contract"
    __table_args__ = (Index(None, "round_id", "supplier"),)

    round_id: Mapped[int] = mapped_column(ForeignKey("vbp_round.id"), primary_key=True)
    institution_id: Mapped[str] = mapped_column(String, primary_key=True)
    spec_id: Mapped[str] = mapped_column(String, primary_key=True)
    supplier: Mapped[str] = mapped_column(String, primary_key=True)
    drug_id: Mapped[str] = mapped_column(String, nullable=False)
    region: Mapped[str] = mapped_column(String, nullable=False)
    agreed_units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    price_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    units_per_pack: Mapped[int] = mapped_column(Integer, nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)


class VbpOrder(Base):
    """A purchase order (采购订单) placed under a round."""

    __tablename__ = "vbp_order"
    __table_args__ = (Index(None, "round_id", "institution_id"),)

    round_id: Mapped[int] = mapped_column(ForeignKey("vbp_round.id"), primary_key=True)
    order_id: Mapped[str] = mapped_column(String, primary_key=True)
    institution_id: Mapped[str] = mapped_column(String, nullable=False)
    drug_id: Mapped[str] = mapped_column(String, nullable=False)
    spec_id: Mapped[str] = mapped_column(String, nullable=False)
    supplier: Mapped[str] = mapped_column(String, nullable=False)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    month: Mapped[int] = mapped_column(Integer, nullable=False)
    contracted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
