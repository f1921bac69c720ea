"""LTC lifecycle (长护险): grade bands, hand-worked monthly amounts, Nantong funding split, refusals, batch = scalar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from yibao import tables
from yibao.core.db import Base, make_engine
from yibao.core.errors import ClaimRejected
from yibao.ltc import service as svc
from yibao.ltc.models import (
    LtcAssessment,
    LtcClaim,
    LtcEvent,
    LtcRecipient,
    LtcServiceRecord,
)
from yibao.ltc.params import (
    get_rules,
    grade_of,
    settle_amounts,
    settle_amounts_batch,
    split_funding,
)

R = get_rules("nantong")
D = dt.date


def sc(dl: int, cog: int, per: int) -> dict[str, int]:
    return {"daily_living": dl, "cognition": cog, "perception_communication": per}


@pytest.fixture()
def engine(tmp_path):
    tables.load_all()
    eng = make_engine(f"sqlite:///{tmp_path / 'ltc.db'}")
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


def counts(engine) -> tuple[int, ...]:
    with engine.connect() as c:
        return tuple(
            c.execute(select(func.count()).select_from(m)).scalar_one()
            for m in (LtcAssessment, LtcRecipient, LtcServiceRecord, LtcClaim, LtcEvent)
        )


@pytest.mark.parametrize(
    "scores,total,grade",
    [
        (sc(20, 5, 4), 29, "none"),
        (sc(20, 5, 5), 30, "mild"),
        (sc(30, 10, 9), 49, "mild"),
        (sc(30, 10, 10), 50, "moderate"),
        (sc(50, 10, 9), 69, "moderate"),
        (sc(50, 10, 10), 70, "severe"),
        (sc(60, 20, 20), 100, "severe"),
    ],
)
def test_grade_bands(scores, total, grade):
    assert grade_of(R, scores) == (total, grade)


def test_grade_refuses_bad_scores():
    with pytest.raises(ClaimRejected):
        grade_of(R, sc(61, 0, 0))
    with pytest.raises(ClaimRejected):
        grade_of(R, {"daily_living": 10})


def test_hand_worked_amounts_and_nantong_split():
    # severe, institutional, full 31-day month, cost 4000 yuan: 70 % = 2800 capped at 2100 (seed 002)
    assert settle_amounts(R, "severe", "institutional", 31, 31, 400000) == {
        "cost": 400000,
        "fund": 210000,
        "person": 190000,
        "src_individual": 63000,
        "src_pool": 63000,
        "src_finance": 84000,
    }
    # moderate, home care by institution, 15 of 30 days, cost 800: 70 % = 560, limit 900 × 15/30 = 450
    a = settle_amounts(R, "moderate", "home_by_institution", 15, 30, 80000)
    assert (a["fund"], a["person"]) == (45000, 35000)
    # severe, family home care, cost 300 under the 450 limit at 100 %
    assert settle_amounts(R, "severe", "home_by_family", 31, 31, 30000)["fund"] == 30000
    # Nantong funding 30/30/40 of 100 yuan per person-year
    assert dict(R.funding_per_person_year) == {"individual": 3000, "pool": 3000, "finance": 4000}
    assert split_funding(R, 10001) == {"individual": 3000, "pool": 3000, "finance": 4001}
    with pytest.raises(ClaimRejected):
        settle_amounts(R, "mild", "institutional", 30, 30, 1000)  # below the covered grades
    with pytest.raises(ClaimRejected):
        settle_amounts(R, "severe", "institutional", 32, 31, 1000)
    with pytest.raises(ClaimRejected):
        settle_amounts(R, "severe", "institutional", 3, 31, -1)


def test_lifecycle_reassessment_idempotent_and_refusals(engine):
    svc.assess(engine, "P1", "A01", D(2021, 12, 10), sc(35, 10, 10))  # moderate, from 2022-01
    with pytest.raises(ClaimRejected):  # assessment not yet in force in 2021-12
        svc.enrol(engine, "P1", "home_by_institution", "H01", D(2021, 12, 1))
    svc.enrol(engine, "P1", "home_by_institution", "H01", D(2022, 1, 1), D(2022, 12, 1))
    before = counts(engine)
    with pytest.raises(ClaimRejected):
        svc.enrol(engine, "P1", "institutional", "H02", D(2022, 1, 1))  # duplicate
    with pytest.raises(ClaimRejected):
        svc.record_services(engine, "P1", D(2022, 2, 1), "H01", 29, 1000)  # February 2022 has 28 days
    with pytest.raises(ClaimRejected):
        svc.record_services(engine, "P1", D(2022, 2, 1), "H01", 10, -5)
    with pytest.raises(ClaimRejected):
        svc.record_services(engine, "P1", D(2023, 1, 1), "H01", 10, 500)  # after the enrolment
    with pytest.raises(ClaimRejected):
        svc.settle_month(engine, "P1", D(2022, 2, 1))  # nothing recorded
    assert counts(engine) == before
    svc.record_services(engine, "P1", D(2022, 2, 1), "H01", 28, 100000, ["bathing"])
    with pytest.raises(ClaimRejected):
        svc.record_services(engine, "P1", D(2022, 2, 1), "H01", 28, 100000)
    svc.assess(engine, "P1", "A01", D(2022, 2, 15), sc(50, 15, 10))  # severe, from 2022-03
    c = svc.settle_month(engine, "P1", D(2022, 2, 1))
    assert (c.grade, c.fund_fen, c.person_fen) == ("moderate", 70000, 30000)  # 70 % of 1000, under 900
    n = counts(engine)
    again = svc.settle_month(engine, "P1", D(2022, 2, 1))
    assert again.id == c.id and counts(engine) == n
    svc.record_services(engine, "P1", D(2022, 3, 1), "H01", 31, 200000)
    c3 = svc.settle_month(engine, "P1", D(2022, 3, 1))
    assert (c3.grade, c3.fund_fen, c3.person_fen) == ("severe", 120000, 80000)  # 75 % = 1500 capped at 1200
    assert c3.source_split == {"individual": 36000, "pool": 36000, "finance": 48000}
    shown = svc.show(engine, "P1")
    assert [x["grade"] for x in shown["claims"]] == ["moderate", "severe"]


def test_enrol_refused_below_minimum_grade(engine):
    svc.assess(engine, "P2", "A01", D(2022, 1, 5), sc(30, 5, 5))  # mild
    before = counts(engine)
    with pytest.raises(ClaimRejected):
        svc.enrol(engine, "P2", "institutional", "H01", D(2022, 2, 1))
    assert counts(engine) == before


def test_batch_settlement_matches_scalar_in_db(engine):
    for i, (scores, setting, days, cost) in enumerate(
        [
            (sc(50, 15, 10), "institutional", 31, 400000),
            (sc(35, 10, 10), "home_by_family", 10, 50000),
            (sc(35, 10, 10), "home_by_institution", 20, 77777),
        ]
    ):
        svc.assess(engine, f"B{i}", "A01", D(2022, 4, 3), scores)
        svc.enrol(engine, f"B{i}", setting, "H01", D(2022, 5, 1))
        svc.record_services(engine, f"B{i}", D(2022, 5, 1), "H01", days, cost)
    made = svc.settle_month_all(engine, D(2022, 5, 1))
    assert [(c.fund_fen, c.person_fen) for c in made] == [(210000, 190000), (9677, 40323), (54444, 23333)]
    assert svc.settle_month_all(engine, D(2022, 5, 1)) == []  # idempotent


CELLS = [(g, s) for g in R.payment for s in R.payment[g]]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(CELLS), st.integers(28, 31), st.integers(0, 31), st.integers(0, 10**8)),
        min_size=1,
        max_size=30,
    )
)
def test_batch_equals_scalar(rows):
    rows = [(cell, dim, min(days, dim), cost) for cell, dim, days, cost in rows]
    out = settle_amounts_batch(
        R,
        [c[0] for c, *_ in rows],
        [c[1] for c, *_ in rows],
        np.array([r[2] for r in rows]),
        np.array([r[1] for r in rows]),
        np.array([r[3] for r in rows]),
    )
    for i, ((g, s), dim, days, cost) in enumerate(rows):
        one = settle_amounts(R, g, s, days, dim, cost)
        assert {k: int(v[i]) for k, v in out.items()} == one


def test_demo_ltc_runs_once(engine):
    from yibao.demo.ltc import demo_ltc

    n = demo_ltc(engine, 7)
    assert n > 0
    assert demo_ltc(engine, 7) == 0
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(LtcClaim)).scalar_one() == n
