"""Accumulator and personal-account primitives, and their row locks under concurrency."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from yibao.api.models import MessageLog
from yibao.codes import registry
from yibao.core import db as ydb
from yibao.settlement import ledger, records

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 5, 1, 9, 30, tzinfo=SH)
DED = ("deductible", "")
CAP = ("fund_cap", "")
BED = ("home_bed_days", "2024-C1")


def _person(engine, psn_no: str = "P1", acct_balc: int = 0) -> None:
    with ydb.session_scope(engine) as s:
        s.add(registry.Person(psn_no=psn_no, acct_balc=acct_balc, contribution_base=0))


def test_accumulators_lock_apply_read(db_engine) -> None:
    with ydb.session_scope(db_engine, immediate=True) as s:
        assert ledger.lock_accumulators(s, "P1", 2024, [DED, "fund_cap", BED]) == {DED: 0, CAP: 0, BED: 0}
        new = ledger.apply_accumulator_deltas(s, "P1", 2024, {DED: 50_000, BED: 3, CAP: 0})
        assert new == {DED: 50_000, BED: 3}
    with ydb.session_scope(db_engine, immediate=True) as s:
        assert ledger.lock_accumulators(s, "P1", 2024, [DED, BED]) == {DED: 50_000, BED: 3}
        assert ledger.apply_accumulator_deltas(s, "P1", 2024, {"deductible": 1}) == {DED: 50_001}
    with ydb.session_scope(db_engine) as s:
        got = ledger.read_accumulators(s, "P1", 2024)
        assert got[DED] == 50_001 and got[BED] == 3
        assert ledger.read_accumulators(s, "P1", 2025) == {}


def test_accumulator_cannot_go_negative(db_engine) -> None:
    with ydb.session_scope(db_engine, immediate=True) as s:
        ledger.apply_accumulator_deltas(s, "P1", 2024, {DED: 10})
    with pytest.raises(ledger.AccumulatorError):
        with ydb.session_scope(db_engine, immediate=True) as s:
            ledger.lock_accumulators(s, "P1", 2024, [DED])
            ledger.apply_accumulator_deltas(s, "P1", 2024, {DED: -11})
    with ydb.session_scope(db_engine) as s:
        assert ledger.read_accumulators(s, "P1", 2024) == {DED: 10}


def test_rollback_leaves_accumulators_unchanged(db_engine) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with ydb.session_scope(db_engine, immediate=True) as s:
            ledger.lock_accumulators(s, "P1", 2024, [DED])
            ledger.apply_accumulator_deltas(s, "P1", 2024, {DED: 7})
            raise RuntimeError("boom")
    with ydb.session_scope(db_engine) as s:
        assert ledger.read_accumulators(s, "P1", 2024).get(DED, 0) == 0


def test_accum_delta_json_reverses_exactly(db_engine) -> None:
    deltas = {DED: 30_000, CAP: 123_456, BED: 2}
    with ydb.session_scope(db_engine, immediate=True) as s:
        ledger.apply_accumulator_deltas(s, "P1", 2024, {DED: 1, CAP: 2, BED: 3})
    with ydb.session_scope(db_engine, immediate=True) as s:
        ledger.lock_accumulators(s, "P1", 2024, deltas)
        ledger.apply_accumulator_deltas(s, "P1", 2024, deltas)
        recorded = ledger.encode_accum_delta("P1", 2024, deltas) + ledger.encode_accum_delta("P2", 2024, {DED: 5})
        ledger.apply_accumulator_deltas(s, "P2", 2024, {DED: 5})
    assert ledger.decode_accum_delta(recorded) == {("P1", 2024): deltas, ("P2", 2024): {DED: 5}}
    with ydb.session_scope(db_engine, immediate=True) as s:
        ledger.reverse_accum_delta(s, recorded)
    with ydb.session_scope(db_engine) as s:
        assert ledger.read_accumulators(s, "P1", 2024) == {DED: 1, CAP: 2, BED: 3}
        assert ledger.read_accumulators(s, "P2", 2024) == {DED: 0}


def test_settlement_json_columns_round_trip(db_engine) -> None:
    _person(db_engine)
    rows = ledger.encode_accum_delta("P1", 2024, {DED: 30_000})
    with ydb.session_scope(db_engine) as s:
        s.add(records.Encounter(mdtrt_id="M1", psn_no="P1", policy_year=2024, begntime=NOW))
        s.flush()
        s.add(
            records.Settlement(
                setl_id="S1",
                mdtrt_id="M1",
                psn_no="P1",
                setl_time=NOW,
                policy_year=2024,
                msgid="H1-1",
                accum_delta=rows,
                rule_trace={"steps": ["起付线", 1]},
                **{a: 0 for a in ydb.contract.SETTLEMENT_AMOUNTS},
            )
        )
    with ydb.session_scope(db_engine) as s:
        st = s.get(records.Settlement, "S1")
        assert st.accum_delta == rows and st.rule_trace == {"steps": ["起付线", 1]}
        assert st.refd_setl_flag is False
        s.add(MessageLog(msgid="H1-1", infno="2207", received_at=NOW, request={"input": {}}, response=None))
    with pytest.raises(IntegrityError):  # msgid is unique (idempotency)
        with ydb.session_scope(db_engine) as s:
            s.add(
                records.Settlement(
                    setl_id="S2",
                    mdtrt_id="M1",
                    psn_no="P1",
                    setl_time=NOW,
                    policy_year=2024,
                    msgid="H1-1",
                    **{a: 0 for a in ydb.contract.SETTLEMENT_AMOUNTS},
                )
            )


def test_sqlite_lock_needs_immediate_transaction(db_engine) -> None:
    with ydb.session_scope(db_engine) as s:
        if db_engine.dialect.name == "sqlite":
            with pytest.raises(RuntimeError, match="immediate=True"):
                ledger.lock_accumulators(s, "P1", 2024, [DED])
            with pytest.raises(RuntimeError, match="immediate=True"):
                ledger.lock_account(s, "P1")
        else:
            assert ledger.lock_accumulators(s, "P1", 2024, [DED]) == {DED: 0}


def _ledger(engine, psn_no: str) -> list[tuple[int, str, str | None]]:
    with ydb.session_scope(engine) as s:
        return [
            (r.amount, r.kind, r.setl_id)
            for r in s.execute(
                select(records.AccountLedger)
                .where(records.AccountLedger.psn_no == psn_no)
                .order_by(records.AccountLedger.id)
            ).scalars()
        ]


def _balc(engine, psn_no: str) -> int:
    with ydb.session_scope(engine) as s:
        return s.get(records.Account, psn_no).balc


def test_account_lock_and_post(db_engine) -> None:
    _person(db_engine, "P1", acct_balc=10_000)
    _person(db_engine, "P2", acct_balc=0)
    with ydb.session_scope(db_engine, immediate=True) as s:
        assert ledger.lock_account(s, "P1") == 10_000
        assert ledger.post_account(s, "P1", -3_000, "pay", "S1", NOW) == 7_000
        assert ledger.post_account(s, "P1", -2_000, "mulaid_pay", "S2", NOW) == 5_000
        assert ledger.post_account(s, "P1", 0, "pay", "S3", NOW) == 5_000
    with ydb.session_scope(db_engine, immediate=True) as s:
        assert ledger.lock_account(s, "P1") == 5_000
        assert ledger.post_account(s, "P1", 2_000, "reversal", "S2", NOW) == 7_000
        assert ledger.post_account(s, "P2", 100, "credit", None, NOW) == 100
    assert _ledger(db_engine, "P1") == [
        (10_000, "credit", None),
        (-3_000, "pay", "S1"),
        (-2_000, "mulaid_pay", "S2"),
        (2_000, "reversal", "S2"),
    ]
    with ydb.session_scope(db_engine) as s:
        for p in ("P1", "P2"):
            total = s.scalar(select(func.sum(records.AccountLedger.amount)).where(records.AccountLedger.psn_no == p))
            assert total == s.get(records.Account, p).balc
        assert s.get(records.Account, "P1").version == 3


def test_account_refuses_negative_balance(db_engine) -> None:
    _person(db_engine, "P1", acct_balc=1_000)
    with pytest.raises(ledger.InsufficientBalance) as exc:
        with ydb.session_scope(db_engine, immediate=True) as s:
            ledger.lock_account(s, "P1")
            ledger.post_account(s, "P1", -600, "pay", "S1", NOW)
            ledger.post_account(s, "P1", -401, "pay", "S1", NOW)
    assert exc.value.field == "acct_pay" and exc.value.code == "E_ACCT_BALANCE"
    with ydb.session_scope(db_engine, immediate=True) as s:
        assert ledger.lock_account(s, "P1") == 1_000
        assert ledger.post_account(s, "P1", -1_000, "pay", "S1", NOW) == 0
    assert _balc(db_engine, "P1") == 0


def test_account_rejects_bad_movements(db_engine) -> None:
    _person(db_engine, "P1", acct_balc=1_000)
    with ydb.session_scope(db_engine, immediate=True) as s:
        with pytest.raises(ledger.AccountError, match="kind"):
            ledger.post_account(s, "P1", -1, "withdraw", None, NOW)
        with pytest.raises(ledger.AccountError, match="sign"):
            ledger.post_account(s, "P1", 5, "pay", None, NOW)
        with pytest.raises(ledger.AccountError, match="sign"):
            ledger.post_account(s, "P1", -5, "credit", None, NOW)
        with pytest.raises(TypeError):
            ledger.post_account(s, "P1", -1.5, "pay", None, NOW)
        with pytest.raises(ledger.AccountError, match="unknown person"):
            ledger.lock_account(s, "NOBODY")


# --- concurrency -----------------------------------------------------------

N_THREADS = 2
N_ITER = 200
CAP_LIMIT = 300


def _worker(engine, barrier: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        barrier.wait()
        for _ in range(N_ITER):
            with ydb.session_scope(engine, immediate=True) as s:
                vals = ledger.lock_accumulators(s, "P1", 2024, [DED, CAP])
                deltas = {DED: 1}
                if vals[CAP] < CAP_LIMIT:  # a clipped running sum, like a fund cap
                    deltas[CAP] = 1
                new = ledger.apply_accumulator_deltas(s, "P1", 2024, deltas)
                assert new[DED] == vals[DED] + 1, "another writer slipped in between lock and write"
                balc = ledger.lock_account(s, "P1")
                if balc > 0:
                    assert ledger.post_account(s, "P1", -1, "pay", None, NOW) == balc - 1
    except BaseException as exc:  # noqa: BLE001 - reported by the main thread
        errors.append(exc)


def test_concurrent_read_modify_write_is_exact(db_engine) -> None:
    """Two threads (two connections) × 200 locked increments end exactly."""
    _person(db_engine, "P1", acct_balc=250)
    barrier = threading.Barrier(N_THREADS)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_worker, args=(db_engine, barrier, errors)) for _ in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with ydb.session_scope(db_engine) as s:
        assert ledger.read_accumulators(s, "P1", 2024) == {DED: N_THREADS * N_ITER, CAP: CAP_LIMIT}
    assert _balc(db_engine, "P1") == 0
    assert len(_ledger(db_engine, "P1")) == 1 + 250


def test_lock_blocks_second_writer_until_commit(db_engine) -> None:
    with ydb.session_scope(db_engine, immediate=True) as s:  # the row exists: only the row lock can block
        ledger.apply_accumulator_deltas(s, "P1", 2024, {DED: 1})
    locked, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def holder() -> None:
        with ydb.session_scope(db_engine, immediate=True) as s:
            ledger.lock_accumulators(s, "P1", 2024, [DED])
            ledger.apply_accumulator_deltas(s, "P1", 2024, {DED: 100})
            locked.set()
            release.wait(10)

    def waiter() -> None:
        locked.wait(10)
        with ydb.session_scope(db_engine, immediate=True) as s:
            seen.append(ledger.lock_accumulators(s, "P1", 2024, [DED])[DED])

    th, tw = threading.Thread(target=holder), threading.Thread(target=waiter)
    th.start()
    tw.start()
    assert locked.wait(10)
    time.sleep(0.3)
    assert seen == []  # still waiting for the lock
    release.set()
    th.join(10)
    tw.join(10)
    assert seen == [101]


def test_immediate_session_takes_the_write_lock_at_begin(tmp_path) -> None:
    """SQLite: immediate=True emits BEGIN IMMEDIATE (a plain session does not)."""
    import sqlite3

    path = tmp_path / "lock.db"
    ydb.upgrade(f"sqlite:///{path}")
    db_engine = ydb.make_engine(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        with ydb.session_scope(db_engine) as s:
            s.execute(select(registry.Person.psn_no)).all()
            other.execute("BEGIN IMMEDIATE")  # a reader does not hold the write lock
            other.execute("ROLLBACK")
        with ydb.session_scope(db_engine, immediate=True) as s:
            s.execute(select(registry.Person.psn_no)).all()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
        db_engine.dispose()


@pytest.mark.postgres
def test_postgres_session_time_zone_is_shanghai(pg_database: str) -> None:
    engine = ydb.make_engine(pg_database)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "Asia/Shanghai"
            day = conn.exec_driver_sql("SELECT (timestamptz '2023-12-31 16:30:00+00')::date").scalar()
            assert str(day) == "2024-01-01"
    finally:
        engine.dispose()
