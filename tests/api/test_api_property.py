"""Property: settling through the envelope equals the pure sequential ledger; cancelling everything restores all.

Two paths that must agree (hypothesis): random outpatient visits for a few
people, sent as 2201 → 2203 → 2204 → 2207 messages, against
:func:`yibao.settlement.sequential.settle_in_order` on the same claims. Then
2208 cancels every settlement in random order, and the accumulators and
personal accounts are back where they started, to the fen.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.api_support import BOOK, CAT, CREDENTIALS, PEOPLE, REGION, SH, Clock, make_interface, seed
from tests.factories import claim, line
from tests.settlement_support import facts, ledger_persons
from yibao.api.hisclient import HisClient, Item
from yibao.core import db as ydb
from yibao.core.errors import ClaimRejected
from yibao.settlement import records
from yibao.settlement.sequential import Ledger, settle_in_order

T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SH)
CODES = ["A-DRUG", "B-DRUG", "B-DRUG20", "C-DRUG", "CAP-DEV", "SVC"]

visit = st.tuples(
    st.sampled_from(["E1", "E2", "C1", "R1"]),
    st.lists(st.tuples(st.sampled_from(CODES), st.integers(1, 5), st.integers(1, 40_000)), min_size=1, max_size=4),
)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(visits=st.lists(visit, min_size=1, max_size=6), order=st.randoms(use_true_random=False))
def test_envelope_equals_ledger_and_cancelling_all_restores_all(tmp_path_factory, visits, order: random.Random):
    url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'y.db'}"
    ydb.upgrade(url)
    engine = ydb.make_engine(url)
    try:
        seed(engine)
        clock = Clock(T0)
        iface = make_interface(engine, clock)
        iface.svc.credit_accounts(T0.date())  # the ledger credits the month's personal-account credits too
        his = HisClient(lambda env: iface.handle(env).reply, "H2", clock=clock, credential=CREDENTIALS["H2"])
        his.sign_in()
        with engine.connect() as conn:
            before = {
                t: sorted(conn.execute(select(m.__table__)).all())
                for t, m in (("accumulator", records.Accumulator), ("account", records.Account))
            }
            opening = {r.psn_no: r.balc for r in before["account"]}
        claims, replies = [], []
        for k, (psn, items) in enumerate(visits):
            clock.advance(minutes=10)
            its = [Item(code, str(q), str(Decimal(cents) / 100)) for code, q, cents in items]
            lines = [line(i + 1, code, Decimal(cents) / 100, qty=q) for i, (code, q, cents) in enumerate(items)]
            claims.append(claim(f"V{k}", facts(psn), lines, med_type="11", hosp_lv=2, when=clock.t, dise="J06.9"))
            out = his.outpatient(psn, PEOPLE[psn][0], PEOPLE[psn][8], its, pre=False)
            replies.append(out["2207"]["output"]["setlinfo"])
        expected = settle_in_order(claims, Ledger(BOOK.policy(REGION), ledger_persons(), T0.date().replace(day=1)), CAT)
        for got, want in zip(replies, expected, strict=True):
            assert not isinstance(want, ClaimRejected)
            for fld, fen in want.amounts().items():
                assert got[fld] == Decimal(fen) / 100, fld
        # cancel everything, in random order
        ids = list(enumerate(replies))
        order.shuffle(ids)
        for _k, r in ids:
            his.call("2208", {"data": {"setl_id": r["setl_id"], "mdtrt_id": r["mdtrt_id"], "psn_no": r["psn_no"]}})
        with engine.connect() as conn:
            after = {
                t: sorted(conn.execute(select(m.__table__)).all())
                for t, m in (("accumulator", records.Accumulator), ("account", records.Account))
            }
        assert after["accumulator"] == before["accumulator"] == []
        balances = {r.psn_no: r.balc for r in after["account"]}
        assert balances == {p: opening.get(p, PEOPLE[p][7]) for p in balances}
    finally:
        engine.dispose()
