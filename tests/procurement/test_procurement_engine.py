"""The VBP round engine on hand-computed rounds under several rule sets."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pandas as pd

from yibao.procurement.domain import Bid, CatalogEntry, Firm, RoundInput, Spec
from yibao.procurement.engine import (
    allocate_regions,
    catalog_gate,
    comparable_e4,
    conversion_factor,
    evaluate_drug,
    max_valid_price_fen,
    run_round,
    unit_price_e4,
)
from yibao.procurement.params import get_ruleset

DAY = dt.date(2025, 3, 1)


def entry(max_yuan="2.00", form="oral_solid", passed=5, competitors=8, upp=1, **kw):
    s = Spec("S1", "D1", D(10), upp, int(D(max_yuan) * 100), representative=True)
    return CatalogEntry("D1", "测试药", form, (s,), passed, competitors, **kw)


def bids_at(*yuan, **per_firm):
    """Bids on S1 (1 unit per pack) by firms A, B, C … at the given prices."""
    out = []
    for i, y in enumerate(yuan):
        f = chr(ord("A") + i)
        out.append(Bid(f"b{f}", "D1", "S1", f, int(D(y) * 100), **per_firm.get(f, {})))
    return out


def firms_for(bids, **over):
    return {b.firm_id: over.get(b.firm_id, Firm(b.firm_id, b.firm_id)) for b in bids}


def run(rules, e, bids, firms=None, **kw):
    return evaluate_drug(e, bids, firms or firms_for(bids), get_ruleset(rules), round_date=DAY, **kw)


def status(res):
    return {o.firm_id: o.status for o in res.outcomes}


# --- unit comparable price -------------------------------------------------------------------


def test_unit_comparable_price_across_specifications():
    r = get_ruleset("national-batch-02")
    rep = Spec("S1", "D1", D(10), 7, representative=True)
    double = Spec("S2", "D1", D(20), 14)
    # 20 mg x 14 at 23.80 yuan: unit 1.7000; twice the content costs 1.7x, so comparable 1.0000
    u = unit_price_e4(2380, 14)
    assert u == 17000
    assert conversion_factor(double, rep, r).quantize(D("1e-20")) == (D(1) / D("1.7")).quantize(D("1e-20"))
    assert comparable_e4(u, conversion_factor(double, rep, r)) == 10000
    # 5 mg: half the content: comparable = unit x 1.7
    half = Spec("S3", "D1", D(5), 10)
    assert comparable_e4(unit_price_e4(100, 10), conversion_factor(half, rep, r)) == 1700
    # 15 mg (not a doubling): 1.7 ** log2(10/15) = 0.73316..., unit 1.0000 -> 0.7332
    odd = Spec("S4", "D1", D(15), 1)
    assert comparable_e4(10000, conversion_factor(odd, rep, r)) == 7332
    # unit price rounds half up to 0.0001 yuan: 1.00 yuan / 3 = 0.33333 -> 3333; 2.00 / 3 -> 6667
    assert unit_price_e4(100, 3) == 3333 and unit_price_e4(200, 3) == 6667


def test_fill_volumes_up_to_10ml_are_not_distinguished():
    r = get_ruleset("national-batch-02")
    rep = Spec("S1", "D1", D(10), 1, fill_ml=D(10), representative=True)
    assert conversion_factor(Spec("S2", "D1", D(10), 1, fill_ml=D(2)), rep, r) == 1
    assert conversion_factor(Spec("S3", "D1", D(10), 1, fill_ml=D(5)), rep, r) == 1
    # 20 ml is one doubling above the 10 ml floor: comparable = unit / fill_coef (1.5)
    assert comparable_e4(15000, conversion_factor(Spec("S4", "D1", D(10), 1, fill_ml=D(20)), rep, r)) == 10000


def test_pediatric_specs_use_their_own_coefficient_in_batch_11():
    rep = Spec("S1", "D1", D(10), 1, representative=True)
    ped = Spec("S2", "D1", D(5), 1, pediatric=True)
    assert conversion_factor(ped, rep, get_ruleset("national-batch-11")) == D("1.5")
    assert conversion_factor(ped, rep, get_ruleset("national-batch-10")) == D("1.7")


# --- qualification paths -----------------------------------------------------------------------


def test_batch2_each_qualification_path_and_max_winners():
    """Seed 002: "满足以下三个条件之一即可获得拟中选资格 … 明确根据符合资格的申报企业数量确定'最多入围企业数'"."""
    # max unit price 2.00; lowest 0.50 -> 1.8x band 0.90; 7 eligible bidders -> at most 5 shortlisted (batch-9 table)
    res = run("national-batch-02", entry("2.00"), bids_at("0.50", "0.90", "0.91", "1.00", "1.01", "1.10", "1.20"))
    by = {o.firm_id: o for o in res.outcomes}
    assert by["A"].qualified_by == ("ratio", "cut")
    assert by["B"].qualified_by == ("ratio", "cut")  # exactly 1.8x qualifies
    assert by["C"].qualified_by == ("cut",)  # 0.91 > 0.90 but cut 54.5 %
    assert by["D"].qualified_by == ("cut",)  # cut exactly 50.00 % qualifies
    assert by["E"].qualified_by == () and by["E"].reason_code == "not_qualified"  # shortlisted, fails all three
    assert "1.0100" in by["E"].reason_en and "49.50%" in by["E"].reason_en
    assert by["F"].reason_code == by["G"].reason_code == "over_max_winners"  # ranked 6 and 7: not shortlisted
    assert res.eligible_n == 7 and res.max_winners == 5 and res.qualified_n == 4
    assert status(res) == {"A": "won", "B": "won", "C": "won", "D": "won", "E": "lost", "F": "lost", "G": "lost"}
    assert res.share_bp == 8000 and res.cycle_years == 3


def test_absolute_price_path():
    # max 0.15: 0.10 fails 1.8x of 0.05 (0.09) and the cut (33 %), but is <= 0.1000 yuan
    res = run("national-batch-02", entry("0.15"), bids_at("0.05", "0.10", "0.11"))
    by = {o.firm_id: o for o in res.outcomes}
    assert by["B"].qualified_by == ("absolute",)
    assert by["C"].qualified_by == ()
    assert res.qualified_n == 2


def test_batch10_cut_no_longer_qualifies_and_revival():
    """Batch 10 (public reports of the rules): the 50 % cut no longer protects a bid; shortlisted manufacturers
    that did not win under rule 1 win if they accept the highest rule-1 winning price."""
    bids = bids_at(
        "0.50", "0.60", "0.95", "1.00", "1.20", "1.30", "1.40", C={"accept_revival": True}, F={"accept_revival": True}
    )
    res = run("national-batch-10", entry("2.00"), bids)
    by = {o.firm_id: o for o in res.outcomes}
    # 7 eligible -> at most 4 shortlisted (A..D); D's cut is exactly 50 % but that no longer qualifies
    assert res.eligible_n == 7 and res.max_winners == 4
    assert by["C"].qualified_by == () and by["D"].qualified_by == ()
    # C accepts the highest rule-1 winning price 0.60; D does not; F accepts but is not shortlisted
    assert status(res) == {"A": "won", "B": "won", "C": "revived", "D": "lost", "E": "lost", "F": "lost", "G": "lost"}
    assert by["C"].award_comparable_e4 == 6000
    assert "did not accept the revival price 0.6000" in by["D"].reason_en
    assert by["F"].reason_code == "over_max_winners"
    # 3 winners -> 70 %, 2 years
    assert res.share_bp == 7000 and res.cycle_years == 2


def test_batch10_single_winner_revival_at_1_8x():
    bids = bids_at("0.50", "1.00", B={"accept_revival": True})
    res = run("national-batch-10", entry("2.00"), bids)
    by = {o.firm_id: o for o in res.outcomes}
    assert by["A"].status == "won" and by["B"].status == "revived"
    assert by["B"].award_comparable_e4 == 9000  # 1.8 x 0.50


def test_batch11_anchor_is_not_set_by_an_extreme_low_bid():
    """Batch 11 (second-draft rules, public reports): the anchor is the higher of the lowest bid and 50 % of the
    average shortlisted price."""
    e = entry("3.00", listed_avg_price_fen=600, provincial_highest_win_fen=400)
    bids = bids_at("0.10", "1.00", "1.50", "1.90", "2.00", "2.10", "2.20")
    # batch 10: anchor 0.10 -> band 0.18: only A qualifies (7 eligible -> 4 shortlisted)
    assert run("national-batch-10", e, bids).qualified_n == 1
    # batch 11: anchor = max(0.10, 0.5 x mean of the 4 shortlisted 1.125 = 0.5625) -> band 1.0125: A and B qualify
    res = run("national-batch-11", e, bids)
    assert res.anchor_e4 == 5625 and res.qualified_n == 2


def test_batch11_max_valid_price_and_competitor_gate():
    r = get_ruleset("national-batch-11")
    e = entry("9.99", listed_avg_price_fen=600, provincial_highest_win_fen=400)
    assert max_valid_price_fen(e, e.specs[0], r) == 300  # min(50 % of 6.00, 4.00)
    e2 = entry("9.99", listed_avg_price_fen=1000, provincial_highest_win_fen=400)
    assert max_valid_price_fen(e2, e2.specs[0], r) == 400
    assert max_valid_price_fen(e, e.specs[0], get_ruleset("national-batch-10")) == 999
    assert catalog_gate(entry(competitors=6), r)[0] is False
    assert catalog_gate(entry(competitors=7), r)[0] is True


def test_three_have_passed_gate():
    r = get_ruleset("national-batch-02")
    assert catalog_gate(entry(passed=2), r)[0] is False
    res = run("national-batch-02", entry(passed=2), bids_at("0.50"))
    assert res.outcomes[0].status == "ineligible" and res.outcomes[0].reason_code == "not_in_catalog"


def test_max_winners_tables():
    b2, b10 = get_ruleset("national-batch-02").selection, get_ruleset("national-batch-10").selection
    # the 9th- and 10th-round tables as published side by side (ChemLinked, 2024-11-27), N = 1..17
    assert [b2.max_winners_for(n) for n in range(1, 18)] == [1, 2, 2, 3, 4, 4, 5, 6, 7, 8, 9, 9, 10, 10, 10, 10, 10]
    assert [b10.max_winners_for(n) for n in range(1, 18)] == [1, 2, 2, 3, 3, 3, 4, 5, 6, 6, 7, 8, 8, 9, 9, 10, 10]


def test_batch7_elimination_step():
    # N = 2 qualified: the table allows 2, but the highest-priced qualified bid cannot win
    res = run("national-batch-07", entry("2.00"), bids_at("0.50", "0.60"))
    assert status(res) == {"A": "won", "B": "lost"}
    assert res.outcomes[1].reason_code == "eliminated_highest"
    assert status(run("national-batch-02", entry("2.00"), bids_at("0.50", "0.60"))) == {"A": "won", "B": "won"}


def test_4plus7_largest_cut_and_expansion_lowest_three():
    e = CatalogEntry(
        "D1",
        "x",
        "oral_solid",
        (Spec("S1", "D1", D(10), 1, 200, representative=True), Spec("S2", "D1", D(20), 1, 300)),
        5,
        6,
        reference_price_fen=100,
    )
    bids = [
        Bid("b1", "D1", "S1", "A", 90),
        Bid("b2", "D1", "S2", "B", 120),
        Bid("b3", "D1", "S1", "C", 100),
        Bid("b4", "D1", "S1", "D", 95),
        Bid("b5", "D1", "S1", "E", 150),
    ]
    # 4+7: cut from each spec's max price: A 55 %, B 60 %, C 50 %, D 52.5 %
    assert status(run("national-4plus7", e, bids)) == {"A": "lost", "B": "won", "C": "lost", "D": "lost", "E": "lost"}
    # expansion: E above the 4+7 price (1.00) is out; the 3 lowest comparable of the rest win
    # comparable: A 0.90, B 1.20/1.7 = 0.7059, C 1.00, D 0.95
    res = run("national-expansion", e, bids)
    assert status(res) == {"A": "won", "B": "won", "C": "lost", "D": "won", "E": "ineligible"}
    assert {o.firm_id: o.reason_code for o in res.outcomes}["E"] == "above_reference"


# --- tie-breaks --------------------------------------------------------------------------------


def test_tie_breaks_in_order():
    bids = [
        Bid(f"b{f}", "D1", "S1", f, 50, sales_volume=sv, consistency_date=cd, first_registration_date=rd)
        for f, sv, cd, rd in [
            ("A", 100, dt.date(2020, 1, 1), dt.date(2001, 1, 1)),
            ("B", 100, dt.date(2020, 1, 1), dt.date(2000, 1, 1)),
            ("C", 100, dt.date(2019, 1, 1), dt.date(2003, 1, 1)),
            ("D", 900, dt.date(2021, 1, 1), dt.date(2004, 1, 1)),
            ("E", 100, dt.date(2021, 1, 1), dt.date(1999, 1, 1)),
            ("F", 100, dt.date(2018, 1, 1), dt.date(1998, 1, 1)),
        ]
    ]
    firms = {
        f: Firm(f, f, grade, supply_regions=n)
        for f, grade, n in [
            ("A", "good", 5),
            ("B", "good", 5),
            ("C", "good", 5),
            ("D", "good", 5),
            ("E", "good", 9),
            ("F", "ordinary", 31),
        ]
    }
    res = run("national-batch-02", entry("2.00"), bids, firms)
    rank = sorted(res.outcomes, key=lambda o: o.rank)
    # credit (F last) > supply regions (E first) > sales volume (D) > consistency date (C 2019, then A/B 2020 by id)
    assert [o.firm_id for o in rank] == ["E", "D", "C", "A", "B", "F"]
    # 京津冀: earlier first registration first
    res = run("alliance-jingjinji-3n", entry("2.00"), bids, firms)
    assert [o.firm_id for o in sorted(res.outcomes, key=lambda o: o.rank)] == ["F", "E", "B", "A", "C", "D"]


def test_credit_lookup_callable_overrides_the_firm_record():
    bids = bids_at("0.50", "0.60")
    res = run("national-batch-02", entry(), bids, credit_lookup=lambda f: "severe" if f == "A" else None)
    assert status(res) == {"A": "ineligible", "B": "won"}
    assert res.outcomes[0].reason_code == "credit"


def test_eligibility_rules():
    e = entry("2.00")
    firms = {
        "A": Firm("A", "A", quality_failures=(dt.date(2024, 6, 1),)),
        "B": Firm("B", "B", quality_failures=(dt.date(2022, 6, 1),)),
        "C": Firm("C", "C"),
        "D": Firm("D", "D"),
    }
    bids = bids_at("0.50", "0.60", "0.70", "0.80")
    res = run("national-batch-02", e, bids, firms, banned=frozenset({"C"}))
    assert {o.firm_id: o.reason_code for o in res.outcomes if o.status == "ineligible"} == {
        "A": "quality",
        "C": "banned",
    }
    # 重庆: not above the firm's highest price in China
    b = bids_at("0.50", "0.60", A={"national_highest_price_fen": 40})
    assert status(run("alliance-chongqing-8", e, b)) == {"A": "ineligible", "B": "won"}
    # 陕西 two envelopes: technical score below 60 -> price envelope not opened
    b = bids_at("0.50", "0.60", A={"tech_score": D(59)}, B={"tech_score": D(60)})
    assert status(run("alliance-shaanxi-11", e, b)) == {"A": "ineligible", "B": "won"}
    # 新疆: capacity >= 2 x the sole-winner volume (base 10,000 x 50 % = 5,000 -> 10,000)
    b = bids_at("0.50", "0.60", A={"capacity_units": 9_999}, B={"capacity_units": 10_000})
    assert status(run("alliance-xinjiang-2n", e, b, base_units=10_000)) == {"A": "ineligible", "B": "won"}


# --- Guangdong A/B --------------------------------------------------------------------------------


def test_guangdong_group_a_without_elimination_when_small():
    vols = [50, 20, 12, 8, 5, 5]
    bids = bids_at(
        "0.50", "1.90", "1.00", "0.70", "0.80", "1.95", **{chr(65 + i): {"sales_volume": v} for i, v in enumerate(vols)}
    )
    res = run("alliance-guangdong-16", entry("2.00"), bids)
    by = {o.firm_id: o for o in res.outcomes}
    # group A = A, B, C (50 + 20 + 12 = 82 % >= 80 % of volume), 3 <= 6 firms: all win, even B at 1.90
    assert {f for f, o in by.items() if o.group == "A"} == {"A", "B", "C"}
    assert all(by[f].status == "won" for f in "ABC")
    # group B wins when not above the highest group-A winner (1.90): D, E yes, F (1.95) no
    assert by["D"].status == by["E"].status == "won" and by["F"].status == "lost"
    assert by["F"].reason_code == "group_b_above_a"


def test_guangdong_group_a_faces_elimination_above_threshold():
    vols = [10] * 8 + [9]
    prices = ["0.50", "0.55", "0.60", "0.65", "0.70", "0.75", "0.80", "1.95", "0.52"]
    bids = bids_at(*prices, **{chr(65 + i): {"sales_volume": v} for i, v in enumerate(vols)})
    res = run("alliance-guangdong-16", entry("2.00"), bids)
    by = {o.firm_id: o for o in res.outcomes}
    a = [f for f, o in by.items() if o.group == "A"]
    assert len(a) == 8  # 80 % of 89 units = 71.2 needs all eight volume-10 firms
    # elimination within A: 8 eligible A firms -> at most 6 shortlisted (A..F, all within 1.8x of 0.50);
    # G (0.80) and H (1.95) are ranked 7 and 8, beyond the shortlist
    assert by["H"].status == "lost" and by["H"].reason_code == "over_max_winners"
    assert [f for f in "ABCDEFGH" if by[f].status == "won"] == ["A", "B", "C", "D", "E", "F"]
    assert by["I"].group == "B" and by["I"].status == "won"


# --- volumes, regions, contracts ------------------------------------------------------------------


def test_round_robin_regions_and_backups():
    class W:
        def __init__(self, f):
            self.firm_id = f

    units = {"R1": 700, "R2": 600, "R3": 500, "R4": 400, "R5": 300, "R6": 200, "R7": 100}
    prim, back = allocate_regions([W("A"), W("B"), W("C")], units, {"C": ("R7",)}, backup=True)
    # round 1: A takes the largest (R1), B the next (R2), C its preference R7; round 2: A R3, B R4, C R5; round 3: A R6
    assert prim == {"R1": "A", "R2": "B", "R7": "C", "R3": "A", "R4": "B", "R5": "C", "R6": "A"}
    assert set(back) == set(units)
    assert all(back[r] != prim[r] for r in units)
    # backup round robin: A takes the largest region it does not supply (R2), B R1, C R3 (its preference R7 is its own)
    assert back["R2"] == "A" and back["R1"] == "B" and back["R3"] == "C"
    # one winner: everything, no backup possible
    prim1, back1 = allocate_regions([W("A")], units, backup=True)
    assert set(prim1.values()) == {"A"} and back1 == {}


def _round(rules_name, demand_rows, bids, catalog=None, firms=None):
    e = catalog or entry("2.00", upp=10)
    demand = pd.DataFrame(
        demand_rows,
        columns=["institution_id", "region", "drug_id", "spec_id", "units", "brand_firm_id", "historical_units"],
    )
    inp = RoundInput("t", DAY, {"D1": e}, firms or firms_for(bids), bids, demand)
    return run_round(inp, get_ruleset(rules_name))


def test_agreed_volumes_contracts_and_brand_supply():
    bids = [Bid("b1", "D1", "S1", "A", 500), Bid("b2", "D1", "S1", "B", 600)]  # 10 units/pack: 0.50 and 0.60 per unit
    rows = [
        ("H1", "R1", "D1", "S1", 1001, "", 0),
        ("H2", "R1", "D1", "S1", 2000, "B", 0),
        ("H3", "R2", "D1", "S1", 3000, "", 0),
    ]
    res = _round("national-batch-02", rows, bids)
    d = res.drugs["D1"]
    assert [w.firm_id for w in d.winners] == ["A", "B"] and d.share_bp == 6000
    assert d.primary == {"R1": "A", "R2": "B"}  # A (lowest) takes the larger region (R1: 3,001 units)
    c = res.contracts.set_index("institution_id")
    # 1001 x 60 % = 600.6 -> 601 units at 5.00 / 10 units -> 300.50 yuan
    assert c.loc["H1", "agreed_units"] == 601 and c.loc["H1", "supplier"] == "A" and c.loc["H1", "amount_fen"] == 30050
    assert c.loc["H2", "supplier"] == "A"  # batch 2 ignores the brand
    assert (
        c.loc["H3", "agreed_units"] == 1800 and c.loc["H3", "supplier"] == "B" and c.loc["H3", "amount_fen"] == 108000
    )
    # batch 11 (brand reporting): H2 named brand B, so B supplies it directly inside A's region
    bids3 = bids + [Bid("b3", "D1", "S1", "C", 700)]
    rows2 = [
        ("H1", "R1", "D1", "S1", 1000, "", 0),
        ("H2", "R2", "D1", "S1", 2000, "B", 0),
        ("H3", "R2", "D1", "S1", 3000, "", 0),
    ]
    e11 = entry("2.00", upp=10, listed_avg_price_fen=4000, provincial_highest_win_fen=2000)
    r11 = _round("national-batch-11", rows2, bids3, catalog=e11)
    c11 = r11.contracts.set_index("institution_id")
    assert [w.firm_id for w in r11.drugs["D1"].winners] == ["A", "B"]
    assert r11.drugs["D1"].primary == {"R2": "A", "R1": "B"}
    assert c11.loc["H2", "supplier"] == "B" and c11.loc["H3", "supplier"] == "A" and c11.loc["H1", "supplier"] == "B"


def test_derived_price_for_a_spec_the_winner_did_not_bid():
    e = CatalogEntry(
        "D1",
        "x",
        "oral_solid",
        (Spec("S1", "D1", D(10), 10, 2000, representative=True), Spec("S2", "D1", D(20), 10, 3400)),
        5,
        6,
    )
    bids = [Bid("b1", "D1", "S1", "A", 500)]
    demand = pd.DataFrame(
        [("H1", "R1", "D1", "S2", 100, "", 0)],
        columns=["institution_id", "region", "drug_id", "spec_id", "units", "brand_firm_id", "historical_units"],
    )
    res = run_round(RoundInput("t", DAY, {"D1": e}, firms_for(bids), bids, demand), get_ruleset("national-batch-02"))
    c = res.contracts.iloc[0]
    # A's comparable 0.50 carried to 20 mg: 0.85 per unit -> 8.50 per pack of 10
    assert c["supplier"] == "A" and c["price_fen"] == 850 and c["agreed_units"] == 50


def test_sole_product_gets_everything_in_chongqing_5():
    e = entry("2.00", upp=10, sole_product=True)
    bids = [Bid("b1", "D1", "S1", "A", 500)]
    res = _round("alliance-chongqing-5", [("H1", "R1", "D1", "S1", 1000, "", 0)], bids, catalog=e)
    assert res.drugs["D1"].share_bp == 10000 and int(res.contracts["agreed_units"].sum()) == 1000
    assert (
        _round("national-batch-02", [("H1", "R1", "D1", "S1", 1000, "", 0)], bids, catalog=e).drugs["D1"].share_bp
        == 5000
    )


def test_consumables_negotiation_with_one_bidder_and_grouping():
    s = lambda sid, did: Spec(sid, did, D(1), 1, 10000, representative=True)  # noqa: E731
    cat = {
        "C1": CatalogEntry(
            "C1",
            "冠脉支架",
            "other",
            (s("C1-S", "C1"),),
            1,
            1,
            attributes=(("material", "cobalt"), ("coating", "sirolimus")),
        ),
        "C2": CatalogEntry(
            "C2",
            "冠脉支架",
            "other",
            (s("C2-S", "C2"),),
            1,
            1,
            attributes=(("material", "cobalt"), ("coating", "sirolimus")),
        ),
        "C3": CatalogEntry(
            "C3",
            "冠脉支架",
            "other",
            (s("C3-S", "C3"),),
            1,
            1,
            attributes=(("material", "platinum"), ("coating", "sirolimus")),
        ),
    }
    bids = [Bid("b1", "C1", "C1-S", "A", 5000), Bid("b2", "C2", "C2-S", "B", 6000), Bid("b3", "C3", "C3-S", "C", 7500)]
    demand = pd.DataFrame(
        [("H1", "R1", "C1", "C1-S", 100, "", 0), ("H1", "R1", "C3", "C3-S", 10, "", 0)],
        columns=["institution_id", "region", "drug_id", "spec_id", "units", "brand_firm_id", "historical_units"],
    )
    res = run_round(RoundInput("t", DAY, cat, firms_for(bids), bids, demand), get_ruleset("consumables-alliance"))
    # C1 and C2 share attributes: one group of 2 bidders -> bidding; C3 alone -> negotiation, cut 25 % < 30 %
    assert res.drugs["C1"] is res.drugs["C2"] and res.drugs["C1"].procedure == "bidding"
    assert res.drugs["C3"].procedure == "negotiation"
    assert {o.firm_id: o.status for o in res.drugs["C3"].outcomes} == {"C": "lost"}
    assert res.drugs["C1"].share_bp == 8000 and res.drugs["C1"].cycle_years == 2


# --- Gansu–Shaanxi sanctions, 八省二区 overlap ----------------------------------------------------


def test_non_bidders_lose_listing_or_are_barred_under_gansu_shaanxi():
    from yibao.procurement.engine import non_bidder_sanctions

    bids = [Bid("b1", "D1", "S1", "A", 50)]
    makers = [("A", "D1", True), ("B", "D1", True), ("C", "D1", False)]
    s = {x.firm_id: x for x in non_bidder_sanctions(makers, bids, get_ruleset("alliance-gansu-shaanxi"), DAY)}
    assert set(s) == {"B", "C"}
    assert s["B"].kind == "delist" and s["C"].kind == "ban" and s["C"].until == dt.date(2027, 3, 1)
    assert non_bidder_sanctions(makers, bids, get_ruleset("national-batch-02"), DAY) == []


def test_alliance_result_holds_in_cycle_one_then_national():
    from yibao.procurement.engine import result_in_force

    e = entry("2.00")
    alliance = run("alliance-heilongjiang-8p2r", e, bids_at("0.50", "0.60"))
    national = run("national-batch-02", e, bids_at("0.70", "0.40"))
    r = get_ruleset("alliance-heilongjiang-8p2r")
    assert result_in_force(1, alliance, national, r) is alliance
    assert result_in_force(2, alliance, national, r) is national
    assert result_in_force(2, alliance, national, get_ruleset("alliance-guangdong-16")) is alliance
    assert result_in_force(2, alliance, None, r) is alliance


def test_guangdong_catalog_takes_the_top_80_percent_of_amount_high_price_first():
    from yibao.procurement.engine import catalog_candidates

    amounts = {"P1": 500, "P2": 200, "P3": 150, "P4": 100, "P5": 50}
    prices = {"P1": 10, "P2": 90, "P3": 50, "P4": 70, "P5": 99}
    # 500 + 200 + 150 = 850 >= 800 of 1000: P1..P3, then ordered by price high to low
    assert catalog_candidates(amounts, prices, get_ruleset("alliance-guangdong-16")) == ["P2", "P3", "P1"]
    assert catalog_candidates(amounts, prices, get_ruleset("national-batch-02")) == ["P5", "P2", "P4", "P3", "P1"]


def test_low_demand_reports_need_a_reason():
    bids = [Bid("b1", "D1", "S1", "A", 500)]
    rows = [
        ("H1", "R1", "D1", "S1", 79, "", 100),
        ("H2", "R1", "D1", "S1", 80, "", 100),
        ("H3", "R1", "D1", "S1", 5, "", 0),
    ]
    res = _round("national-batch-02", rows, bids)
    assert res.warnings == ["1 demand lines report less than 80% of historical use (reason required)"]
