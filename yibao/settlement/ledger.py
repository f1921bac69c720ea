"""Accumulators and personal accounts (累计与个人账户): the mechanics settlement and cancellation use.

Locks are taken in the order docs/architecture.md ("Locking a settlement") gives; a deadlock on PostgreSQL
means the order was broken.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from yibao.codes.registry import Person
from yibao.core.db import SHANGHAI, dialect_insert, require_write_lock
from yibao.core.errors import ClaimRejected, YibaoError
from yibao.settlement.records import ACCOUNT_KINDS, Account, AccountLedger, Accumulator

__all__ = [
    "AccumulatorError",
    "AccountError",
    "InsufficientBalance",
    "AccKey",
    "lock_accumulators",
    "read_accumulators",
    "apply_accumulator_deltas",
    "encode_accum_delta",
    "decode_accum_delta",
    "reverse_accum_delta",
    "lock_account",
    "post_account",
]


class AccumulatorError(YibaoError):
    """An accumulator change that would make a running total negative."""

    code = "E_ACCUM"


class AccountError(ClaimRejected):
    """A personal-account operation that cannot be done (unknown person, bad kind)."""

    code = "E_ACCT"


class InsufficientBalance(AccountError):
    """The personal account cannot pay this much."""

    code = "E_ACCT_BALANCE"


AccKey = tuple[str, str]
AccDeltas = Mapping[AccKey, int] | Mapping[str, int] | Mapping[AccKey | str, int]  # a bare str key: period ""


def _norm_keys(keys: Iterable[AccKey | str]) -> list[AccKey]:
    out = set()
    for k in keys:
        if isinstance(k, str):
            out.add((k, ""))
        else:
            kind, period = k
            out.add((str(kind), str(period)))
    return sorted(out)


def lock_accumulators(session: Session, psn_no: str, year: int, keys: Iterable[AccKey | str]) -> dict[AccKey, int]:
    """Lock and read a person-year's accumulators; absent ones read as 0.

    ``keys`` are ``(kind, period)`` pairs (a bare ``kind`` means period
    ``''``).  Missing rows are created with value 0 so that they can be locked
    too; rows are locked in sorted key order.  The locks last until the
    session's transaction ends.  Call once per transaction with every key.
    """
    require_write_lock(session, "lock_accumulators")
    ks = _norm_keys(keys)
    if not ks:
        return {}
    ins = dialect_insert(session, Accumulator).values(
        [{"psn_no": psn_no, "policy_year": year, "kind": kind, "period": period, "value": 0} for kind, period in ks]
    )
    session.execute(ins.on_conflict_do_nothing())
    rows = session.execute(
        select(Accumulator.kind, Accumulator.period, Accumulator.value)
        .where(
            Accumulator.psn_no == psn_no,
            Accumulator.policy_year == year,
            tuple_(Accumulator.kind, Accumulator.period).in_(ks),
        )
        .order_by(Accumulator.kind, Accumulator.period)
        .with_for_update()
    ).all()
    got = {(r.kind, r.period): int(r.value) for r in rows}
    return {k: got.get(k, 0) for k in ks}


def read_accumulators(session: Session, psn_no: str, year: int) -> dict[AccKey, int]:
    """Every accumulator of a person-year, without locking (pre-settlement, reports)."""
    rows = session.execute(
        select(Accumulator.kind, Accumulator.period, Accumulator.value).where(
            Accumulator.psn_no == psn_no, Accumulator.policy_year == year
        )
    ).all()
    return {(r.kind, r.period): int(r.value) for r in rows}


def apply_accumulator_deltas(session: Session, psn_no: str, year: int, deltas: AccDeltas) -> dict[AccKey, int]:
    """Add ``deltas`` to a person-year's accumulators (upsert); return the new values.

    Zero deltas are skipped.  A result below zero raises
    :class:`AccumulatorError` (roll the transaction back).
    """
    rows = []
    for key, delta in deltas.items():
        (kind, period) = _norm_keys([key])[0]
        d = int(delta)
        if d != delta:
            raise TypeError(f"accumulator delta must be an integer: {delta!r}")
        if d:
            rows.append({"psn_no": psn_no, "policy_year": year, "kind": kind, "period": period, "value": d})
    if not rows:
        return {}
    rows.sort(key=lambda r: (r["kind"], r["period"]))
    ins = dialect_insert(session, Accumulator).values(rows)
    stmt = ins.on_conflict_do_update(
        index_elements=["psn_no", "policy_year", "kind", "period"],
        set_={"value": Accumulator.value + ins.excluded.value},
    ).returning(Accumulator.kind, Accumulator.period, Accumulator.value)
    result = {(r.kind, r.period): int(r.value) for r in session.execute(stmt)}
    negative = {k: v for k, v in result.items() if v < 0}
    if negative:
        raise AccumulatorError(
            f"accumulators of {psn_no}/{year} would go negative: {negative}",
            f"累计值不能为负: {psn_no}/{year} {negative}",
            field="accumulator",
        )
    return result


def encode_accum_delta(psn_no: str, year: int, deltas: AccDeltas) -> list[dict[str, Any]]:
    """Deltas as JSON-ready rows for ``settlement.accum_delta`` (zero deltas dropped).

    Concatenate the lists of several people if a settlement touches more than one.
    """
    out = []
    for key, delta in deltas.items():
        kind, period = _norm_keys([key])[0]
        if int(delta):
            out.append(
                {"psn_no": psn_no, "policy_year": int(year), "kind": kind, "period": period, "delta": int(delta)}
            )
    out.sort(key=lambda r: (r["psn_no"], r["policy_year"], r["kind"], r["period"]))
    return out


def decode_accum_delta(rows: Iterable[Mapping[str, Any]] | None) -> dict[tuple[str, int], dict[AccKey, int]]:
    """``settlement.accum_delta`` back to ``{(psn_no, year): {(kind, period): delta}}``."""
    out: dict[tuple[str, int], dict[AccKey, int]] = {}
    for r in rows or ():
        per = out.setdefault((str(r["psn_no"]), int(r["policy_year"])), {})
        key = (str(r["kind"]), str(r.get("period", "")))
        per[key] = per.get(key, 0) + int(r["delta"])
    return out


def reverse_accum_delta(session: Session, rows: Iterable[Mapping[str, Any]] | None) -> None:
    """Undo the deltas recorded in ``settlement.accum_delta`` (for cancellation).

    Locks the affected accumulators first (same protocol as settlement).
    """
    for (psn_no, year), deltas in sorted(decode_accum_delta(rows).items()):
        lock_accumulators(session, psn_no, year, deltas.keys())
        apply_accumulator_deltas(session, psn_no, year, {k: -v for k, v in deltas.items()})


def _ensure_account(session: Session, psn_no: str) -> None:
    """Create the account row from ``person.acct_balc`` if it does not exist yet."""
    if session.execute(select(Account.psn_no).where(Account.psn_no == psn_no)).first() is not None:
        return
    opening = session.execute(select(Person.acct_balc).where(Person.psn_no == psn_no)).scalar()
    if opening is None:
        raise AccountError(f"unknown person {psn_no!r}", f"参保人不存在: {psn_no}", field="psn_no")
    ins = (
        dialect_insert(session, Account)
        .values(psn_no=psn_no, balc=int(opening), version=0)
        .on_conflict_do_nothing()
        .returning(Account.psn_no)
    )
    created = session.execute(ins).first() is not None
    if created and opening:
        session.add(
            AccountLedger(psn_no=psn_no, time=datetime.now(SHANGHAI), amount=int(opening), kind="credit", setl_id=None)
        )
        session.flush()


def lock_account(session: Session, psn_no: str) -> int:
    """Lock a person's account row until the transaction ends; return its balance (fen)."""
    require_write_lock(session, "lock_account")
    _ensure_account(session, psn_no)
    balc = session.execute(select(Account.balc).where(Account.psn_no == psn_no).with_for_update()).scalar_one()
    return int(balc)


def post_account(
    session: Session,
    psn_no: str,
    amount: int,
    kind: str,
    setl_id: str | None,
    time: datetime,
    *,
    locked: bool = False,
) -> int:
    """Move ``amount`` fen (+credit / −debit) on an account; return the new balance.

    ``locked=True``: the caller already holds :func:`lock_account` on this
    account in the same transaction (so the row exists; skip that check).

    ``kind``: ``credit`` (amount ≥ 0), ``pay`` and ``mulaid_pay`` (≤ 0), or
    ``reversal`` (either sign).  Refuses to take the balance below zero
    (:class:`InsufficientBalance`).  A zero amount posts nothing.
    """
    if kind not in ACCOUNT_KINDS:
        raise AccountError(f"unknown account movement kind {kind!r}", f"未知的账户变动类型: {kind}", field="kind")
    if isinstance(amount, bool) or int(amount) != amount:
        raise TypeError(f"amount must be integer fen: {amount!r}")
    amount = int(amount)
    if kind == "credit" and amount < 0 or kind in ("pay", "mulaid_pay") and amount > 0:
        raise AccountError(
            f"a {kind} movement of {amount} fen has the wrong sign",
            f"账户变动金额符号错误: {kind} {amount}",
            field="amount",
        )
    if not locked:
        _ensure_account(session, psn_no)
    if amount == 0:
        return int(session.execute(select(Account.balc).where(Account.psn_no == psn_no)).scalar_one())
    new = session.execute(
        update(Account)
        .where(Account.psn_no == psn_no, Account.balc + amount >= 0)
        .values(balc=Account.balc + amount, version=Account.version + 1)
        .returning(Account.balc)
    ).scalar()
    if new is None:
        balc = session.execute(select(Account.balc).where(Account.psn_no == psn_no)).scalar_one()
        raise InsufficientBalance(
            f"personal account {psn_no} has {balc} fen, cannot pay {-amount} fen",
            f"个人账户余额不足: {psn_no} 余额 {balc} 分, 需支付 {-amount} 分",
            field="acct_pay",
        )
    session.add(AccountLedger(psn_no=psn_no, time=time, amount=amount, kind=kind, setl_id=setl_id))
    session.flush()
    return int(new)
