"""Settlement's tables (就诊、费用明细、结算、累计、个人账户): the contract's encounter, fee_detail, settlement,
and the operational accumulator, account and account_ledger tables.

The contract tables mirror :mod:`yibao.core.contract` column for column (``tests/core/test_db_schema.py``);
settlement has a few operational columns (:data:`SETTLEMENT_EXTRA_COLUMNS`).  The mechanics that change
accumulators and accounts under the locking protocol are in :mod:`yibao.settlement.ledger`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import TZ_SECONDS, Base, BigId, JSONType, TZDateTime

__all__ = [
    "Encounter",
    "FeeDetail",
    "Settlement",
    "SETTLEMENT_EXTRA_COLUMNS",
    "Accumulator",
    "Account",
    "ACCOUNT_KINDS",
    "AccountLedger",
]


class Encounter(Base):
    __tablename__ = "encounter"
    __table_args__ = (
        Index(None, "psn_no", "policy_year"),
        Index(None, "fixmedins_code", "begntime"),
    )

    mdtrt_id: Mapped[str] = mapped_column(String, primary_key=True)
    psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"))
    fixmedins_code: Mapped[str | None] = mapped_column(String)
    med_type: Mapped[str | None] = mapped_column(String)
    begntime: Mapped[datetime] = mapped_column(TZ_SECONDS)
    endtime: Mapped[datetime | None] = mapped_column(TZ_SECONDS)  # NULL while still in hospital
    policy_year: Mapped[int] = mapped_column(SmallInteger)
    dise_codg: Mapped[str | None] = mapped_column(String)
    other_dise_codg: Mapped[str | None] = mapped_column(String)
    oprn_codg: Mapped[str | None] = mapped_column(String)
    dscg_way: Mapped[str | None] = mapped_column(String)
    dept_code: Mapped[str | None] = mapped_column(String)
    dr_code: Mapped[str | None] = mapped_column(String)
    mdtrtarea_admvs: Mapped[str | None] = mapped_column(String)
    mulaid_payer_psn_no: Mapped[str | None] = mapped_column(String)
    lt_rx_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class FeeDetail(Base):
    """Fee lines; the primary key (mdtrt_id, feedetl_sn) serves reads by mdtrt_id."""

    __tablename__ = "fee_detail"

    mdtrt_id: Mapped[str] = mapped_column(String, ForeignKey("encounter.mdtrt_id"), primary_key=True)
    feedetl_sn: Mapped[int] = mapped_column(Integer, primary_key=True)
    med_list_codg: Mapped[str] = mapped_column(String)
    cnt_milli: Mapped[int] = mapped_column(BigInteger)
    pric: Mapped[int] = mapped_column(BigInteger)
    det_item_fee_sumamt: Mapped[int] = mapped_column(BigInteger)
    fee_ocur_time: Mapped[datetime | None] = mapped_column(TZ_SECONDS)
    rxno: Mapped[str | None] = mapped_column(String)
    rx_circ_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    prd_days: Mapped[int | None] = mapped_column(SmallInteger)
    bilg_dr_code: Mapped[str | None] = mapped_column(String)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class Settlement(Base):
    __tablename__ = "settlement"
    __table_args__ = (
        Index(None, "psn_no", "setl_time"),
        Index(None, "mdtrt_id"),
        Index(None, "fixmedins_code", "setl_time"),
    )

    setl_id: Mapped[str] = mapped_column(String, primary_key=True)
    mdtrt_id: Mapped[str] = mapped_column(String, ForeignKey("encounter.mdtrt_id"))
    psn_no: Mapped[str] = mapped_column(String)
    fixmedins_code: Mapped[str | None] = mapped_column(String)
    setl_time: Mapped[datetime] = mapped_column(TZ_SECONDS)
    policy_year: Mapped[int] = mapped_column(SmallInteger)
    insutype: Mapped[str | None] = mapped_column(String)
    med_type: Mapped[str | None] = mapped_column(String)
    benefit_category: Mapped[str | None] = mapped_column(String)
    medfee_sumamt: Mapped[int] = mapped_column(BigInteger)
    fulamt_ownpay_amt: Mapped[int] = mapped_column(BigInteger)
    overlmt_selfpay: Mapped[int] = mapped_column(BigInteger)
    preselfpay_amt: Mapped[int] = mapped_column(BigInteger)
    inscp_scp_amt: Mapped[int] = mapped_column(BigInteger)
    act_pay_dedc: Mapped[int] = mapped_column(BigInteger)
    hifp_pay: Mapped[int] = mapped_column(BigInteger)
    hifmi_pay: Mapped[int] = mapped_column(BigInteger)
    hifob_pay: Mapped[int] = mapped_column(BigInteger)
    cvlserv_pay: Mapped[int] = mapped_column(BigInteger)
    maf_pay: Mapped[int] = mapped_column(BigInteger)
    hifes_pay: Mapped[int] = mapped_column(BigInteger)
    oth_pay: Mapped[int] = mapped_column(BigInteger)
    hosp_part_amt: Mapped[int] = mapped_column(BigInteger)
    fund_pay_sumamt: Mapped[int] = mapped_column(BigInteger)
    psn_part_amt: Mapped[int] = mapped_column(BigInteger)
    acct_pay: Mapped[int] = mapped_column(BigInteger)
    acct_mulaid_pay: Mapped[int] = mapped_column(BigInteger)
    psn_cash_pay: Mapped[int] = mapped_column(BigInteger)
    pool_prop_selfpay_bp: Mapped[int | None] = mapped_column(Integer)
    balc: Mapped[int | None] = mapped_column(BigInteger)  # NULL in batch settlement
    refd_setl_flag: Mapped[bool] = mapped_column(Boolean, default=False)  # cancelled
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    # operational (not in the Arrow contract)
    msgid: Mapped[str | None] = mapped_column(String, unique=True)  # NULL for batch
    cancel_msgid: Mapped[str | None] = mapped_column(String, unique=True)
    accum_delta: Mapped[Any | None] = mapped_column(JSONType)  # see encode_accum_delta
    acct_payer_psn_no: Mapped[str | None] = mapped_column(String)
    rule_trace: Mapped[Any | None] = mapped_column(JSONType)


SETTLEMENT_EXTRA_COLUMNS = (
    "msgid",
    "cancel_msgid",
    "accum_delta",
    "acct_payer_psn_no",
    "rule_trace",
)
"""Operational settlement columns that are not in the Arrow contract."""


class Accumulator(Base):
    """Person-year running totals; changed only by settlement and cancellation.

    ``period`` is ``''`` for per-year kinds, else a sub-period id (e.g. a
    home-bed 180-day cycle).  ``value`` is fen or a count, never negative.
    """

    __tablename__ = "accumulator"

    psn_no: Mapped[str] = mapped_column(String, primary_key=True)
    policy_year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String, primary_key=True)
    period: Mapped[str] = mapped_column(String, primary_key=True, default="")
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Account(Base):
    """Personal account balance (the row settlement locks).

    Created on first use from ``person.acct_balc`` (the opening balance, also
    written to the ledger as a ``credit``), so ``balc == sum(ledger.amount)``.
    """

    __tablename__ = "account"

    psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"), primary_key=True)
    balc: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=0)


ACCOUNT_KINDS = ("credit", "pay", "mulaid_pay", "reversal")


class AccountLedger(Base):
    """Append-only personal-account movements (+credit / −debit), fen."""

    __tablename__ = "account_ledger"
    __table_args__ = (Index(None, "psn_no", "time"), Index(None, "setl_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String, ForeignKey("account.psn_no"))
    time: Mapped[datetime] = mapped_column(TZDateTime)
    amount: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String)
    setl_id: Mapped[str | None] = mapped_column(String)
