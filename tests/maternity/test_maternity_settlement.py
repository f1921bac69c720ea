"""Maternity insurance (生育保险): 生育医疗费 through the one engine, and 生育津贴 from the rule file."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import TZ, catalog, claim, line, person
from tests.settlement.test_settlement_agreement import BOOK, CAT, build, claim_st, person_st
from yibao.benefits import maternity
from yibao.benefits.policy import PolicyBook
from yibao.core.errors import ClaimRejected
from yibao.settlement.batch import settle_batch
from yibao.settlement.rules import settle_claim
from yibao.settlement.sequential import Ledger, settle_in_order

SNAP = PolicyBook.default().snapshot("990100", dt.date(2025, 6, 1))
RULE = maternity.allowance_rule(SNAP)


def test_maternity_outpatient_claim_settles_in_the_maternity_category():
    # national-default employee maternity: no deductible, 100 %, in-policy cost capped at ¥6,000 a year
    p = person(gend="2")
    c = claim("MAT1", p, [line(1, "A-DRUG", 1000), line(2, "B-DRUG", 500), line(3, "C-DRUG", 200)], med_type="51")
    s = settle_claim(c, SNAP, catalog(), {})
    s.check()
    assert s.category == "maternity"
    assert s.fulamt_ownpay_amt == 20000  # 丙类
    assert s.preselfpay_amt == 5000  # 10 % of the 乙类 ¥500
    assert s.inscp_scp_amt == 100000 + 45000
    assert s.act_pay_dedc == 0
    assert s.hifp_pay == 145000  # 100 % of the in-policy part
    assert s.accum_delta[("cost:maternity", "")] == 145000


def test_maternity_cost_cap_runs_over_the_year():
    p = person(gend="2")
    c = claim("MAT2", p, [line(1, "A-DRUG", 2000)], med_type="51")
    s = settle_claim(c, SNAP, catalog(), {("cost:maternity", ""): 500000})  # ¥5,000 used already
    assert s.hifp_pay == 100000  # only ¥1,000 left under the ¥6,000 cap
    assert s.psn_part_amt == 100000


def test_resident_maternity_pays_the_resident_rate():
    p = person(insutype="390", psn_type="resident", gend="2")
    c = claim("MAT3", p, [line(1, "A-DRUG", 1000)], med_type="51")
    s = settle_claim(c, SNAP, catalog(), {})
    assert s.hifp_pay == 70000  # 70 % (illustrative resident rule)


def test_reversed_dates_are_refused():
    p = person(gend="2")
    when = dt.datetime(2025, 3, 1, 10, tzinfo=TZ)
    c = claim("MAT4", p, [line(1, "A-DRUG", 10)], med_type="51", when=when, begin=when + dt.timedelta(days=1))
    with pytest.raises(ClaimRejected):
        settle_claim(c, SNAP, catalog(), {})


@pytest.mark.parametrize(
    "kind,babies,weeks,days",
    [
        ("birth", 1, None, 98),
        ("difficult_birth", 1, None, 113),
        ("birth", 2, None, 113),
        ("difficult_birth", 3, None, 143),
        ("miscarriage", 1, 10, 15),
        ("miscarriage", 1, 16, 42),
    ],
)
def test_allowance_days_follow_the_national_rule(kind, babies, weeks, days):
    assert maternity.allowance_days(RULE, kind, babies, weeks) == days


def test_allowance_amount_is_wage_over_30_times_days():
    # ¥6,000.00 a month / 30 × 98 = ¥19,600.00;  ¥5,555.55 / 30 × 98 = 18148.13 (18148.13 exactly .13)
    assert maternity.allowance_amount(RULE, 600000, 98) == 1960000
    assert maternity.allowance_amount(RULE, 555555, 98) == 1814813  # 54,444,390 / 30 = 1,814,813.0
    assert maternity.allowance_amount(RULE, 100001, 15) == 50001  # 50000.5 rounds half up


@pytest.mark.parametrize(
    "call",
    [
        lambda: maternity.allowance_days(RULE, "twins", 1),
        lambda: maternity.allowance_days(RULE, "birth", 0),
        lambda: maternity.allowance_days(RULE, "miscarriage", 1, None),
        lambda: maternity.allowance_amount(RULE, -1, 98),
        lambda: maternity.check_eligible(RULE, 11),
    ],
)
def test_bad_input_and_ineligibility_are_refused(call):
    with pytest.raises(maternity.MaternityError) as e:
        call()
    assert e.value.message_zh and e.value.message_en


def test_twelve_contribution_months_qualify():
    maternity.check_eligible(RULE, 12)


maternity_claim_st = claim_st.map(lambda c: {**c, "med_type": "51"} if c["day"] % 3 else c)


@pytest.mark.parametrize("region", ["990100", "990200"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    people=st.lists(person_st, min_size=1, max_size=4), claims_in=st.lists(maternity_claim_st, min_size=1, max_size=20)
)
def test_maternity_batch_equals_scalar(region, people, claims_in):
    persons, claims, cdf, ldf, inst, links = build(people, claims_in, region)
    policy = BOOK.policy(region)
    ledger = Ledger(policy, persons, dt.date(2025, 1, 1), book=BOOK)
    scalar = settle_in_order(claims, ledger, CAT)
    res = settle_batch(
        cdf,
        ldf,
        pd.DataFrame(list(persons.values())),
        inst,
        CAT,
        policy=policy,
        book=BOOK,
        family_links=links,
        account_start=dt.date(2025, 1, 1),
    )
    batch = {r["mdtrt_id"]: r for r in res.settlements.to_pylist()}
    rejected = set(res.rejected["mdtrt_id"])
    for c, s in zip(claims, scalar, strict=True):
        if isinstance(s, ClaimRejected):
            assert c.mdtrt_id in rejected and c.mdtrt_id not in batch
            continue
        assert c.mdtrt_id not in rejected
        s.check()
        b = batch[c.mdtrt_id]
        for name, v in s.amounts().items():
            assert b[name] == v, (c.mdtrt_id, name, b[name], v)
        assert b["benefit_category"] == s.category
