"""Benefit rules on worked examples, most of them from the seed digests."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from tests.factories import TZ, catalog, claim, line, person
from yibao.benefits.ltc import ltc_funding_per_person, ltc_monthly_benefit
from yibao.benefits.policy import PolicyBook
from yibao.core.errors import ClaimRejected
from yibao.settlement.rules import PayerFacts, monthly_account_credit, settle_claim
from yibao.settlement.sequential import Ledger

BOOK = PolicyBook.default()
SNAP = BOOK.snapshot("990100", dt.date(2025, 6, 1))
NAT = BOOK.snapshot("national-default", dt.date(2025, 6, 1))
CAT = catalog()
D = lambda y, m, d: dt.datetime(y, m, d, 10, tzinfo=TZ)  # noqa: E731


def yuan(fen: int) -> float:
    return fen / 100


# --- Suzhou home bed (seed 000) ---------------------------------------------------


def test_suzhou_home_bed_4000_in_180_days():
    """¥4,000 in a 180-day cycle → ≥ ¥3,600 reimbursed; ¥50 bed fee and ¥25 per round visit self-paid."""
    p = person(insutype="390", psn_type="resident", brdy=dt.date(1940, 1, 1))
    begin = D(2025, 1, 10)
    lines = [
        line(1, "SVC", 2400),
        line(2, "AMLO", 1600),
        line(3, "991000000010000", 50),
        line(4, "991000000020000", 25, qty=12),
    ]
    c = claim("HB1", p, lines, med_type="52", hosp_lv=1, when=begin + dt.timedelta(days=179), begin=begin)
    s = settle_claim(c, SNAP, CAT, {}, None)
    s.check()
    assert s.category == "home_bed" and s.pool_prop_selfpay_bp == 9000
    assert s.hifp_pay == 360000  # 90 % of ¥4,000
    assert s.fulamt_ownpay_amt == 5000 + 12 * 2500  # bed fee and 12 round visits, fully self-paid
    assert s.psn_part_amt == 40000 + 35000


def test_home_bed_limit_per_180_day_cycle():
    """Interim settlements inside one cycle share the ¥4,000 limit; the next cycle starts afresh."""
    p = person(insutype="390", psn_type="resident", brdy=dt.date(1940, 1, 1))
    begin = D(2025, 1, 10)
    acc: dict = {}
    paid = []
    for i in range(6):  # ¥700 a month → ¥4,200 > ¥4,000
        c = claim(
            "HB1",
            p,
            [line(1, "SVC", 700), line(2, "991000000020000", 25, qty=2)],
            med_type="52",
            hosp_lv=1,
            when=begin + dt.timedelta(days=29 * i + 20),
            begin=begin,
        )
        s = settle_claim(c, SNAP, CAT, acc, None)
        for k, v in s.accum_delta.items():
            acc[k] = acc.get(k, 0) + v
        paid.append(s.hifp_pay)
    assert paid == [63000] * 5 + [45000] and sum(paid) == 360000
    c = claim(
        "HB1", p, [line(1, "SVC", 500)], med_type="52", hosp_lv=1, when=begin + dt.timedelta(days=185), begin=begin
    )
    assert settle_claim(c, SNAP, CAT, acc, None).hifp_pay == 45000


def test_home_bed_deductible_is_a_parameter():
    """The seed names a deductible without a figure: a region sets it, the engine applies it per cycle."""
    hb = SNAP.schemes["resident"].categories["home_bed"]
    snap = SNAP.model_copy(deep=True)
    object.__setattr__(snap.schemes["resident"].categories["home_bed"], "deductible", type(hb.deductible)(all=30000))
    p = person(insutype="390", psn_type="resident")
    c = claim("HB2", p, [line(1, "SVC", 4300), line(2, "991000000010000", 50)], med_type="52", hosp_lv=1)
    s = settle_claim(c, snap, CAT, {}, None)
    assert s.act_pay_dedc == 30000 and s.hifp_pay == 360000 and s.fulamt_ownpay_amt == 5000


# --- poverty tilt in the critical-illness layer (seed 002) ------------------------------


def test_dibao_critical_illness_halved_deductible_plus_5_points():
    base = person(insutype="390", psn_type="resident", psn_no="R1")
    poor = dataclasses.replace(base, psn_no="R2", assistance="dibao")
    c1 = claim("M1", base, [line(1, "A-DRUG", 100000)], hosp_lv=3)
    c2 = claim("M2", poor, [line(1, "A-DRUG", 100000)], hosp_lv=3)
    s1, s2 = settle_claim(c1, NAT, CAT, {}), settle_claim(c2, NAT, CAT, {})
    # basic: deductible ¥1,000 at level 3, 65 % → ¥64,350 for both
    assert s1.hifp_pay == s2.hifp_pay == 6435000
    # self-pay left ¥35,650. Ordinary: (35,650 − 15,000) × 60 % = ¥12,390
    assert s1.hifmi_pay == 1239000
    # 低保: (35,650 − 7,500) × 65 % = ¥18,297.50
    assert s2.hifmi_pay == 1829750
    # then medical assistance at 70 % of what is left: (35,650 − 18,297.50) × 70 % = ¥12,146.75
    assert s2.maf_pay == 1214675 and s1.maf_pay == 0
    s2.check()


def test_dibao_critical_illness_has_no_cap():
    base = person(insutype="390", psn_type="resident", psn_no="R1")
    poor = dataclasses.replace(base, psn_no="R2", assistance="dibao")
    big = [line(1, "A-DRUG", 3000000)]
    s1 = settle_claim(claim("M1", base, big, hosp_lv=3), NAT, CAT, {})
    s2 = settle_claim(claim("M2", poor, big, hosp_lv=3), NAT, CAT, {})
    assert s1.hifp_pay == s2.hifp_pay == 20000000  # basic annual cap ¥200,000
    assert s1.hifmi_pay == 40000000  # capped at ¥400,000
    # no cap: 65 % × 100,000 + 75 % × (2,800,000 − 7,500 − 100,000) = ¥2,084,375
    assert s2.hifmi_pay == 208437500


# --- personal account and family mutual aid (seed 000) ---------------------------------


def test_family_mutual_aid_child_pays_parent():
    child = {
        "psn_no": "C1",
        "insutype": "310",
        "psn_type": "in_service",
        "acct_balc": 100000,
        "contribution_base": 800000,
    }
    parent = {"psn_no": "P1", "insutype": "390", "psn_type": "resident", "acct_balc": 0, "contribution_base": 0}
    ledger = Ledger(BOOK.policy("990100"), {"C1": child, "P1": parent}, dt.date(2025, 1, 1))
    before = ledger.balance("C1", dt.date(2025, 3, 1))
    assert before == 100000 + 3 * 16000  # opening ¥1,000 + 3 months × 2 % of ¥8,000
    pf = person("P1", insutype="390", psn_type="resident", brdy=dt.date(1950, 1, 1))
    c = claim(
        "M1",
        pf,
        [line(1, "AMLO", 30, qty=10), line(2, "C-DRUG", 100)],
        med_type="41",
        hosp_lv=0,
        when=D(2025, 3, 1),
        mulaid_payer=PayerFacts("C1", "310", "child"),
    )
    s = ledger.settle(c, CAT)
    s.check()
    assert s.fund_pay_sumamt == 0 and s.acct_pay == 0
    assert s.acct_mulaid_pay == 40000 and s.psn_cash_pay == 0  # ¥300 in-policy + ¥100 丙类 from the child's account
    assert ledger.balance("C1", dt.date(2025, 3, 1)) == before - 40000


def test_mutual_aid_refused_for_non_relative_and_for_resident_payer():
    pf = person("P1", insutype="390", psn_type="resident")
    c = claim("M1", pf, [line(1, "AMLO", 30)], med_type="41", hosp_lv=0, mulaid_payer=PayerFacts("X", "310", "friend"))
    with pytest.raises(ClaimRejected) as e:
        settle_claim(c, SNAP, CAT, {}, 10000)
    assert e.value.field == "mulaid_payer_psn_no"
    c = claim("M1", pf, [line(1, "AMLO", 30)], med_type="41", hosp_lv=0, mulaid_payer=PayerFacts("X", "390", "spouse"))
    with pytest.raises(ClaimRejected):
        settle_claim(c, SNAP, CAT, {}, 10000)


def test_account_may_not_pay_wellness_or_fitness():
    p = person("E1")
    c = claim("M1", p, [line(1, "GYM", 200), line(2, "AMLO", 30)], med_type="41", hosp_lv=0)
    s = settle_claim(c, SNAP, CAT, {}, 1_000_000)
    assert s.acct_pay == 3000 and s.psn_cash_pay == 20000


def test_account_credit_two_percent_and_retiree_fixed():
    assert monthly_account_credit(SNAP, "310", "in_service", 1_000_000) == 20000  # 2 % of ¥10,000
    assert monthly_account_credit(SNAP, "310", "retired", 0) == 9000
    assert monthly_account_credit(SNAP, "390", "resident", 1_000_000) == 0


# --- long-term prescriptions (seed 002) -----------------------------------------------


@pytest.mark.parametrize(
    ("code", "days", "confirmed", "dise", "ok", "field"),
    [
        ("AMLO", 91, True, "I10", False, "prd_days"),  # 13 weeks: over the 12-week maximum
        ("AMLO", 84, True, "I10", True, None),  # 12 weeks with confirmation
        ("AMLO", 56, False, "I10", False, "lt_rx_confirmed"),  # over 4 weeks without confirmation
        ("AMLO", 28, False, "I10", True, None),  # ≤ 4 weeks
        ("NARC", 28, True, "I10", False, "med_list_codg"),  # narcotics excluded
        ("RIF", 56, True, "A15.0", True, None),  # antimicrobial for chronic TB: allowed
        ("RIF", 56, True, "J18.9", False, "med_list_codg"),  # antimicrobial otherwise: excluded
        ("NARC", 3, False, "I10", True, None),  # an ordinary short prescription is not a long-term one
    ],
)
def test_long_term_prescription(code, days, confirmed, dise, ok, field):
    p = person("E1")
    c = claim(
        "M1",
        p,
        [line(1, code, 2, qty=days, prd_days=days)],
        med_type="14",
        hosp_lv=1,
        dise=dise if dise != "J18.9" else "I10",
        other_dise_codg=(dise,) if dise == "J18.9" else (),
        lt_rx_confirmed=confirmed,
    )
    if ok:
        settle_claim(c, SNAP, CAT, {}, 0).check()
    else:
        with pytest.raises(ClaimRejected) as e:
            settle_claim(c, SNAP, CAT, {}, 0)
        assert e.value.field == field
        assert e.value.message_zh and e.value.message_en


# --- list classes, restrictions, price caps -------------------------------------------


def test_class_c_item_fully_self_paid():
    p = person("E1")
    s = settle_claim(claim("M1", p, [line(1, "C-DRUG", 800)], med_type="11", hosp_lv=1), SNAP, CAT, {}, 0)
    assert s.fulamt_ownpay_amt == 80000 and s.fund_pay_sumamt == 0 and s.psn_cash_pay == 80000


def test_class_b_self_pay_first_and_price_cap():
    p = person("E1")
    s = settle_claim(claim("M1", p, [line(1, "B-DRUG20", 1000), line(2, "CAP-DEV", 130)], hosp_lv=1), SNAP, CAT, {}, 0)
    assert s.preselfpay_amt == 20000  # 20 % of ¥1,000
    assert s.overlmt_selfpay == 3000  # ¥130 against a ¥100 cap
    assert s.inscp_scp_amt == 80000 + 10000
    s.check()


@pytest.mark.parametrize(
    ("code", "kw", "in_policy"),
    [
        ("F-ONLY", {"gend": "1"}, False),
        ("F-ONLY", {"gend": "2"}, True),
        ("KID", {"brdy": dt.date(2015, 1, 1)}, True),
        ("KID", {"brdy": dt.date(1990, 1, 1)}, False),
    ],
)
def test_restricted_scope_by_sex_and_age(code, kw, in_policy):
    p = person("E1", **kw)
    s = settle_claim(claim("M1", p, [line(1, code, 100)], med_type="11", hosp_lv=3), SNAP, CAT, {}, 0)
    assert (s.fulamt_ownpay_amt == 0) == in_policy


def test_restricted_scope_by_level_and_indication():
    p = person("E1")
    assert settle_claim(claim("M1", p, [line(1, "L3-ONLY", 100)], hosp_lv=2), SNAP, CAT, {}).fulamt_ownpay_amt == 10000
    assert settle_claim(claim("M1", p, [line(1, "L3-ONLY", 100)], hosp_lv=3), SNAP, CAT, {}).fulamt_ownpay_amt == 0
    assert settle_claim(claim("M1", p, [line(1, "DIAB-ONLY", 100)], dise="E11.9"), SNAP, CAT, {}).fulamt_ownpay_amt == 0
    assert (
        settle_claim(claim("M1", p, [line(1, "DIAB-ONLY", 100)], dise="I10"), SNAP, CAT, {}).fulamt_ownpay_amt == 10000
    )


# --- deductibles, caps, schemes --------------------------------------------------------


def test_second_admission_has_lower_deductible():
    p = person("E1")
    acc: dict = {}
    s1 = settle_claim(claim("M1", p, [line(1, "A-DRUG", 5000)], hosp_lv=3), SNAP, CAT, acc)
    for k, v in s1.accum_delta.items():
        acc[k] = acc.get(k, 0) + v
    s2 = settle_claim(claim("M2", p, [line(1, "A-DRUG", 5000)], hosp_lv=3), SNAP, CAT, acc)
    assert (s1.act_pay_dedc, s2.act_pay_dedc) == (100000, 50000)


def test_resident_outpatient_pooling_per_year_deductible_and_cap():
    """门诊统筹: ≥ 50 % between the yearly deductible and cap (example city A: ¥200 / 50 % at level 3 / cap ¥800)."""
    p = person("R1", insutype="390", psn_type="resident")
    acc: dict = {}
    paid = []
    for i in range(6):
        s = settle_claim(
            claim(f"M{i}", p, [line(1, "A-DRUG", 500)], med_type="11", hosp_lv=3, when=D(2025, 2 + i, 1)),
            SNAP,
            CAT,
            acc,
        )
        for k, v in s.accum_delta.items():
            acc[k] = acc.get(k, 0) + v
        paid.append(s.hifp_pay)
    # deductible ¥200 on the first visit: (500 − 200) × 50 % = 150; then 250 a visit; the ¥800 cap stops it
    assert paid == [15000, 25000, 25000, 15000, 0, 0]


def test_policy_change_on_effective_date():
    """Example city A lowers the level-2 inpatient deductible from ¥600 to ¥500 on 2026-01-01."""
    p = person("E1")
    pol = BOOK.policy("990100")
    s25 = settle_claim(
        claim("M1", p, [line(1, "A-DRUG", 5000)], hosp_lv=2, when=D(2025, 12, 31)),
        pol.snapshot(dt.date(2025, 12, 31)),
        CAT,
        {},
    )
    s26 = settle_claim(
        claim("M2", p, [line(1, "A-DRUG", 5000)], hosp_lv=2, when=D(2026, 1, 1)),
        pol.snapshot(dt.date(2026, 1, 1)),
        CAT,
        {},
    )
    assert (s25.act_pay_dedc, s26.act_pay_dedc) == (60000, 50000)


def test_two_example_regions_differ():
    a, b = BOOK.snapshot("990100", dt.date(2025, 6, 1)), BOOK.snapshot("990200", dt.date(2025, 6, 1))
    assert a.status == b.status == "example"
    p = person("R1", insutype="390", psn_type="resident")
    c = claim("M1", p, [line(1, "A-DRUG", 20000)], hosp_lv=1)
    assert settle_claim(c, a, CAT, {}).hifp_pay != settle_claim(c, b, CAT, {}).hifp_pay


def test_chronic_special_disease_paid_like_inpatient():
    p = person("E1")
    s = settle_claim(claim("M1", p, [line(1, "A-DRUG", 3000)], med_type="14", hosp_lv=3, dise="N18.5"), SNAP, CAT, {})
    assert s.category == "special" and s.pool_prop_selfpay_bp == 8500
    s = settle_claim(claim("M1", p, [line(1, "AMLO", 300)], med_type="14", hosp_lv=1, dise="I10"), SNAP, CAT, {})
    assert s.category == "chronic"
    with pytest.raises(ClaimRejected) as e:
        settle_claim(claim("M1", p, [line(1, "AMLO", 300)], med_type="14", hosp_lv=1, dise="J18.9"), SNAP, CAT, {})
    assert e.value.field == "dise_codg"


def test_retiree_ratio_bonus():
    s_in = settle_claim(claim("M1", person("E1"), [line(1, "A-DRUG", 5000)], hosp_lv=3), SNAP, CAT, {})
    s_ret = settle_claim(
        claim("M1", person("E2", psn_type="retired"), [line(1, "A-DRUG", 5000)], hosp_lv=3), SNAP, CAT, {}
    )
    assert s_ret.pool_prop_selfpay_bp - s_in.pool_prop_selfpay_bp == 500


def test_cross_province_uses_insured_place_policy_and_treatment_place_list():
    p = person("R1", insutype="390", psn_type="resident")
    c_local = claim("M1", p, [line(1, "A-DRUG", 5000)], hosp_lv=3)
    c_filed = dataclasses.replace(c_local, mdtrtarea_admvs="320500", cross_filed=True)
    c_unfiled = dataclasses.replace(c_local, mdtrtarea_admvs="320500", cross_filed=False)
    r = [settle_claim(c, SNAP, CAT, {}).pool_prop_selfpay_bp for c in (c_local, c_filed, c_unfiled)]
    assert r[0] == r[1] == 6500 and r[2] == 5500  # unfiled: −10 points (illustrative)
    # the treatment place's list decides the class (就医地目录)
    listing = SNAP.model_copy(
        update={
            "list_overrides": {
                "A-DRUG": type(SNAP).model_fields["list_overrides"].annotation.__args__[1](chrgitm_lv="03")
            }
        }
    )
    s = settle_claim(c_filed, SNAP, CAT, {}, listing=listing)
    assert s.fulamt_ownpay_amt == 500000 and s.hifp_pay == 0


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda c: dataclasses.replace(c, lines=()), "feedetail"),
        (
            lambda c: dataclasses.replace(
                c, lines=(dataclasses.replace(c.lines[0], cnt_milli=-1000, det_item_fee_sumamt=-10000),)
            ),
            "cnt",
        ),
        (
            lambda c: dataclasses.replace(c, lines=(dataclasses.replace(c.lines[0], det_item_fee_sumamt=1),)),
            "det_item_fee_sumamt",
        ),
        (
            lambda c: dataclasses.replace(c, lines=(dataclasses.replace(c.lines[0], med_list_codg="NOPE"),)),
            "med_list_codg",
        ),
        (lambda c: dataclasses.replace(c, begntime=c.setl_time + dt.timedelta(days=1)), "setl_time"),
        (lambda c: dataclasses.replace(c, med_type="99"), "med_type"),
        (lambda c: dataclasses.replace(c, lines=c.lines + c.lines), "feedetl_sn"),
    ],
)
def test_bad_claims_rejected_with_field(mutate, field):
    c = mutate(claim("M1", person("E1"), [line(1, "A-DRUG", 100)]))
    with pytest.raises(ClaimRejected) as e:
        settle_claim(c, SNAP, CAT, {})
    assert e.value.field == field


# --- long-term care (seed 002: Nantong, Chengdu) -------------------------------------------


def test_ltc_nantong_funding_and_benefit():
    assert ltc_funding_per_person(NAT) == {"individual": 3000, "pool": 3000, "finance": 4000}
    assert ltc_monthly_benefit(NAT, "severe_1", "institutional") == 210000
    assert ltc_monthly_benefit(NAT, "severe_1", "institutional", days_in_care=15, days_in_month=30) == 105000
    with pytest.raises(ClaimRejected):
        ltc_monthly_benefit(NAT, "grade_9", "home")
