"""The persisted scalar path: settle, pre-settle, cancel, idempotency, concurrency (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from tests.factories import claim, line
from tests.settlement_support import (
    BOOK,
    CAT,
    PEOPLE,
    REGION,
    D,
    accumulators,
    balance,
    facts,
    inpatient_e1,
    ledger_persons,
    ledger_sum,
    mulaid_r1,
    snapshot,
    svc,  # noqa: F401  (a fixture)
)
from yibao.core import db as ydb
from yibao.core.errors import ClaimRejected
from yibao.settlement import records
from yibao.settlement.rules import PayerFacts, monthly_account_credit
from yibao.settlement.sequential import Ledger, settle_in_order

# --- settle and cancel ---------------------------------------------------------------


def test_settle_then_cancel_restores_accumulators_and_accounts(svc, db_engine):
    svc.credit_accounts(dt.date(2025, 1, 1))
    svc.settle(claim("OP1", facts("E1"), [line(1, "A-DRUG", 300)], med_type="11", when=D(1, 5)), msgid="m-0")
    acc0, bal0 = accumulators(db_engine), {p: balance(db_engine, p) for p in ("E1",)}
    before = snapshot(db_engine, (records.Accumulator, records.Account))

    a = svc.settle(inpatient_e1(), msgid="m-1")
    b = svc.settle(mulaid_r1(), msgid="m-2")
    assert (
        a.settlement.acct_pay > 0 and b.settlement.acct_mulaid_pay == 40000 and b.settlement.acct_payer_psn_no == "E1"
    )
    assert b.balc == balance(db_engine, "E1") == bal0["E1"] - a.settlement.acct_pay - 40000
    assert accumulators(db_engine) != acc0

    ca = svc.cancel(a.setl_id, msgid="c-1")
    cb = svc.cancel(b.setl_id, msgid="c-2")
    assert (ca.acct_refund, cb.acct_refund) == (a.settlement.acct_pay, 40000)
    assert cb.balc == bal0["E1"]
    assert snapshot(db_engine, (records.Accumulator, records.Account))["accumulator"] == before["accumulator"]
    assert balance(db_engine, "E1") == bal0["E1"] == ledger_sum(db_engine, "E1")
    with ydb.session_scope(db_engine) as s:
        for r, c in ((a, "c-1"), (b, "c-2")):
            row = s.get(records.Settlement, r.setl_id)
            assert row.refd_setl_flag is True and row.cancel_msgid == c
            moves = s.scalars(
                select(records.AccountLedger.kind).where(records.AccountLedger.setl_id == r.setl_id)
            ).all()
            assert sorted(moves) == sorted(["pay" if r is a else "mulaid_pay", "reversal"])

    # a repeated cancel msgid returns the original reply; a second cancellation is refused
    again = svc.cancel(a.setl_id, msgid="c-1")
    assert again == ca and again.replayed
    snap = snapshot(db_engine)
    with pytest.raises(ClaimRejected) as e:
        svc.cancel(a.setl_id, msgid="c-3")
    assert e.value.field == "setl_id"
    with pytest.raises(ClaimRejected) as e:
        svc.cancel(b.setl_id, msgid="c-1")  # msgid of another cancellation
    assert e.value.field == "msgid"
    with pytest.raises(ClaimRejected) as e:
        svc.cancel("NO-SUCH", msgid="c-4")
    assert e.value.field == "setl_id"
    assert snapshot(db_engine) == snap

    # the settled msgid still answers with the (now cancelled) settlement
    r = svc.settle(inpatient_e1(), msgid="m-1")
    assert r.replayed and r.refd_setl_flag and r.setl_id == a.setl_id and r.settlement == a.settlement


def test_cancelled_encounter_settles_again_only_as_a_new_settlement(svc, db_engine):
    c = inpatient_e1()
    first = svc.settle(c, msgid="m-1")
    with pytest.raises(ClaimRejected) as e:  # the same fee lines under a new msgid: already settled
        svc.settle(c, msgid="m-2")
    assert e.value.field == "feedetl_sn"
    svc.cancel(first.setl_id, msgid="c-1")
    second = svc.settle(c, msgid="m-2")
    assert second.setl_id != first.setl_id and not second.replayed
    assert second.settlement.amounts() == first.settlement.amounts()
    # a later line on the same encounter (interim settlement) is a separate settlement
    extra = dataclasses.replace(c, lines=(line(5, "A-DRUG", 100),), setl_time=c.setl_time + dt.timedelta(hours=1))
    third = svc.settle(extra, msgid="m-3")
    assert third.settlement.medfee_sumamt == 10000
    # a line that contradicts the uploaded one is refused
    wrong = dataclasses.replace(c, lines=(line(1, "A-DRUG", 9000),))
    with pytest.raises(ClaimRejected) as e:
        svc.settle(wrong, msgid="m-4")
    assert e.value.field == "feedetl_sn"


# --- idempotency and pre-settlement --------------------------------------------------


def test_pre_settlement_writes_nothing_and_msgid_is_idempotent(svc, db_engine):
    svc.credit_accounts(dt.date(2025, 1, 1))
    c = inpatient_e1()
    snap0 = snapshot(db_engine)
    pre = svc.settle(c, msgid="m-1", pre=True)
    assert pre.pre and pre.setl_id is None
    assert snapshot(db_engine) == snap0

    real = svc.settle(c, msgid="m-1")
    assert real.settlement == pre.settlement and real.balc == pre.balc and real.setl_id
    snap1 = snapshot(db_engine)
    again = svc.settle(c, msgid="m-1")
    assert again == real and again.replayed and not real.replayed
    again_pre = svc.settle(c, msgid="m-1", pre=True)  # a stored msgid answers from the store
    assert again_pre == real
    assert snapshot(db_engine) == snap1

    other = dataclasses.replace(c, lines=c.lines[:1])
    with pytest.raises(ClaimRejected) as e:
        svc.settle(other, msgid="m-1")
    assert e.value.field == "msgid"
    svc.cancel(real.setl_id, msgid="c-1")
    with pytest.raises(ClaimRejected) as e:  # a cancellation's msgid cannot settle
        svc.settle(other, msgid="c-1")
    assert e.value.field == "msgid"


# --- the persisted path equals the pure ledger -----------------------------------------


def sequence():
    e1, e2, r1, r2 = facts("E1"), facts("E2"), facts("R1"), facts("R2")
    return [
        claim("S01", e1, [line(1, "A-DRUG", 300), line(2, "B-DRUG", 200)], med_type="11", hosp_lv=2, when=D(1, 5)),
        inpatient_e1("S02", D(1, 20)),
        claim(
            "S03",
            r1,
            [line(1, "A-DRUG", 60000), line(2, "B-DRUG20", 5000)],
            med_type="21",
            hosp_lv=2,
            when=D(2, 3),
            begin=D(1, 25),
            mulaid_payer=PayerFacts("E1", "310", "child"),
        ),
        mulaid_r1("S04", D(2, 10)),
        claim("S05", e2, [line(1, "AMLO", 50, qty=3)], med_type="14", hosp_lv=1, when=D(2, 12), dise="I10"),
        claim("S06", e2, [line(1, "SVC", 2000)], med_type="14", hosp_lv=3, when=D(2, 20), dise="N18.5"),
        claim("S07", e1, [line(1, "A-DRUG", 5000)], med_type="21", hosp_lv=2, when=D(3, 1), begin=D(2, 25)),
        claim(
            "S08",
            r2,
            [line(1, "SVC", 700), line(2, "991000000020000", 25, qty=2)],
            med_type="52",
            hosp_lv=1,
            when=D(3, 5),
            begin=D(1, 2),
        ),
        claim("S09", e1, [line(1, "GYM", 200), line(2, "A-DRUG", 100)], med_type="11", hosp_lv=1, when=D(3, 6)),
        claim("S10", r2, [line(1, "NOPE", 10)], med_type="11", hosp_lv=1, when=D(3, 7)),
        claim(
            "S11",
            r1,
            [line(1, "AMLO", 30)],
            med_type="41",
            hosp_lv=0,
            when=D(3, 8),
            mulaid_payer=PayerFacts("R2", "390", ""),
        ),
        claim("S12", e1, [line(1, "A-DRUG", 2000), line(2, "B-DRUG", 500)], med_type="11", hosp_lv=3, when=D(3, 20)),
        claim("S13", e2, [line(1, "A-DRUG", 30000)], med_type="21", hosp_lv=3, when=D(3, 25), begin=D(3, 12)),
    ]


def test_persisted_results_equal_the_pure_ledger(svc, db_engine):
    claims = sequence()
    start = dt.date(2025, 1, 1)
    ledger = Ledger(BOOK.policy(REGION), ledger_persons(), start)
    expected = settle_in_order(claims, ledger, CAT)
    step = Ledger(BOOK.policy(REGION), ledger_persons(), start)  # driven claim by claim for the balances

    credited: set[dt.date] = set()
    for i, c in sorted(enumerate(claims), key=lambda x: (x[1].setl_time, x[0])):
        month = c.setl_time.date().replace(day=1)
        m = start
        while m <= month:  # the Ledger credits every month up to the claim's
            if m not in credited:
                svc.credit_accounts(m)
                credited.add(m)
            m = (m + dt.timedelta(days=32)).replace(day=1)
        exp = expected[i]
        if isinstance(exp, ClaimRejected):
            with pytest.raises(ClaimRejected) as e:
                svc.settle(c, msgid=f"msg-{c.mdtrt_id}")
            assert e.value.field == exp.field, c.mdtrt_id
            continue
        got = svc.settle(c, msgid=f"msg-{c.mdtrt_id}")
        s = got.settlement
        s.check()
        assert s.amounts() == exp.amounts(), c.mdtrt_id
        assert (s.category, s.pool_prop_selfpay_bp, s.acct_payer_psn_no) == (
            exp.category,
            exp.pool_prop_selfpay_bp,
            exp.acct_payer_psn_no,
        )
        assert s.accum_delta == exp.accum_delta, c.mdtrt_id
        step.settle(c, CAT)
        if s.acct_payer_psn_no:
            assert got.balc == step.balance(s.acct_payer_psn_no, c.setl_time.date()), c.mdtrt_id
    assert sum(isinstance(x, ClaimRejected) for x in expected) == 2
    assert any(x.maf_pay for x in expected if not isinstance(x, ClaimRejected))  # the layers were exercised

    want = {(p, y, k, per): v for (p, y), acc in ledger.accum.items() for (k, per), v in acc.items() if v}
    assert accumulators(db_engine) == want
    end = dt.date(2025, 3, 31)
    for p in ("E1", "E2"):
        assert balance(db_engine, p) == ledger.balance(p, end) == ledger_sum(db_engine, p)


def test_monthly_credits_are_posted_once(svc, db_engine):
    snap = BOOK.snapshot(REGION, dt.date(2025, 1, 1))
    r1 = svc.credit_accounts(dt.date(2025, 1, 15))
    want = {p: monthly_account_credit(snap, v[0], v[1], v[6]) for p, v in PEOPLE.items()}
    paid = {p: a for p, a in want.items() if a}
    assert set(paid) == {"E1", "E2"} and r1.accounts == 2 and r1.amount == sum(paid.values())
    before = snapshot(db_engine)
    r2 = svc.credit_accounts(dt.date(2025, 1, 1))
    assert (r2.accounts, r2.amount, r2.already) == (0, 0, 2)
    assert snapshot(db_engine) == before
    for p, a in paid.items():
        assert balance(db_engine, p) == PEOPLE[p][7] + a


# --- concurrency ---------------------------------------------------------------------


def test_two_threads_settling_one_person_lose_nothing(svc, db_engine):
    """40 claims for C1 from two threads at once: accumulators equal the sequential sum, no debit lost."""
    c1 = facts("C1")
    claims = [
        claim(
            f"T{t}-{i:02d}", c1, [line(1, "A-DRUG", 60), line(2, "B-DRUG", 40)], med_type="11", hosp_lv=2, when=D(1, 10)
        )
        for t in range(2)
        for i in range(20)
    ]
    ledger = Ledger(BOOK.policy(REGION), ledger_persons(), dt.date(2025, 1, 1))
    seq = settle_in_order(claims, ledger, CAT)
    assert not any(isinstance(x, ClaimRejected) for x in seq)

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    results = []

    def run(t: int) -> None:
        try:
            barrier.wait()
            for c in claims[t * 20 : (t + 1) * 20]:
                results.append(svc.settle(c, msgid=f"msg-{c.mdtrt_id}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert len(results) == 40

    want = {(p, y, k, per): v for (p, y), acc in ledger.accum.items() for (k, per), v in acc.items() if v}
    assert accumulators(db_engine) == want
    debits = sum(r.settlement.acct_pay for r in results)
    assert debits == sum(x.acct_pay for x in seq) > 0
    opening = PEOPLE["C1"][7]
    assert balance(db_engine, "C1") == opening - debits == ledger.balance("C1", dt.date(2025, 1, 10))
    assert ledger_sum(db_engine, "C1") == opening - debits
    # the same multiset of replies as the sequential run (identical claims: order cannot matter)
    assert sorted(tuple(r.settlement.amounts().values()) for r in results) == sorted(
        tuple(x.amounts().values()) for x in seq
    )
    assert sorted(r.balc for r in results) == sorted(opening - sum(x.acct_pay for x in seq[: k + 1]) for k in range(40))


# --- bad input -----------------------------------------------------------------------


def test_bad_input_leaves_the_database_unchanged(svc, db_engine):
    svc.credit_accounts(dt.date(2025, 1, 1))
    svc.settle(inpatient_e1(), msgid="m-ok")
    snap = snapshot(db_engine)
    e1 = facts("E1")
    bad = {
        "med_list_codg": claim("B1", e1, [line(1, "A-DRUG", 100), line(2, "NOPE", 10)], med_type="11"),
        "cnt": claim("B2", e1, [line(1, "A-DRUG", 100, qty=-1)], med_type="11"),
        "psn_no": claim("B3", dataclasses.replace(e1, psn_no="NOBODY"), [line(1, "A-DRUG", 100)], med_type="11"),
        "fixmedins_code": dataclasses.replace(
            claim("B4", e1, [line(1, "A-DRUG", 100)], med_type="11"), fixmedins_code="H9"
        ),
        "mulaid_payer_psn_no": mulaid_r1("B5", payer="C1", relation="child"),  # C1 is not R1's relative
        "mdtrt_id": claim("IP1", facts("E2"), [line(9, "A-DRUG", 100)], med_type="21"),  # E1's encounter
        "setl_time": claim(
            "B7", e1, [line(1, "A-DRUG", 100)], med_type="11", when=dt.datetime(2025, 3, 1, 10), begin=D(3, 1, 9)
        ),
        "med_type": claim("B8", e1, [line(1, "A-DRUG", 100)], med_type="99"),
    }
    for fld, c in bad.items():
        for pre in (True, False):
            with pytest.raises(ClaimRejected) as e:
                svc.settle(c, msgid=f"bad-{fld}", pre=pre)
            assert e.value.field == fld, (fld, e.value)
    with pytest.raises(ClaimRejected) as e:  # an unknown payer
        svc.settle(
            dataclasses.replace(mulaid_r1("B9"), mulaid_payer=PayerFacts("GHOST", "310", "child")), msgid="bad-ghost"
        )
    assert e.value.field == "mulaid_payer_psn_no"
    assert snapshot(db_engine) == snap


def test_one_msgid_from_two_threads_settles_once(svc, db_engine):
    """The same request twice at once settles once; another person's claim under that msgid is refused."""
    same = [inpatient_e1("DUP"), inpatient_e1("DUP")]
    other = [
        claim("O1", facts("E2"), [line(1, "A-DRUG", 100)], med_type="11"),
        claim("O2", facts("C1"), [line(1, "A-DRUG", 100)], med_type="11"),
    ]
    for pair, msgid in ((same, "dup-1"), (other, "dup-2")):
        barrier = threading.Barrier(2)
        out: list = [None, None]

        def run(k: int, barrier=barrier, out=out, pair=pair, msgid=msgid) -> None:
            barrier.wait()
            try:
                out[k] = svc.settle(pair[k], msgid=msgid)
            except ClaimRejected as exc:
                out[k] = exc

        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if pair is same:
            assert out[0] == out[1] and sorted(r.replayed for r in out) == [False, True]
        else:
            assert sorted(type(x).__name__ for x in out) == ["ClaimRejected", "SettleResult"]
            assert next(x for x in out if isinstance(x, ClaimRejected)).field == "msgid"
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(records.Settlement)).scalar_one() == 2


def test_own_and_mutual_aid_payments_on_one_account_at_once(svc, db_engine):
    """E1 buys for himself while his parent R1 buys on E1's account (共济), from two threads; E1's account is new."""
    own = [
        claim(f"A{i}", facts("E1"), [line(1, "AMLO", 30, qty=2)], med_type="41", hosp_lv=0, when=D(1, 3))
        for i in range(10)
    ]
    aid = [mulaid_r1(f"B{i}", D(1, 3)) for i in range(10)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    results = []

    def run(batch) -> None:
        try:
            barrier.wait()
            for c in batch:
                results.append(svc.settle(c, msgid=f"msg-{c.mdtrt_id}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(b,)) for b in (own, aid)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    paid = sum(r.settlement.acct_pay + r.settlement.acct_mulaid_pay for r in results)
    assert paid == 10 * 6000 + 10 * 40000
    assert balance(db_engine, "E1") == PEOPLE["E1"][7] - paid == ledger_sum(db_engine, "E1")
