"""Pooling levels and the risk-adjustment fund (统筹层次, 风险调剂金):
hand-computed cases to the fen, conservation, refusals.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from yibao.codes.divisions import Division, Divisions
from yibao.core.contract import PERSON, SETTLEMENT, with_metadata
from yibao.pooling.arrangement import (
    Arrangement,
    PoolingError,
    arrangement_from_dict,
    known_arrangements,
    load_arrangement,
)
from yibao.pooling.figures import IncomeRates, hierarchy, read_figures
from yibao.pooling.mechanics import CountyFigures, apportion, check_conservation, simulate

TZ = dt.timezone(dt.timedelta(hours=8))
ILL = "ILLUSTRATIVE: test"


def arr(**kw) -> Arrangement:
    """An inline arrangement over the synthetic region's districts, every figure cited."""
    doc = {
        "name": "t",
        "label_en": "test",
        "label_zh": "测试",
        "region": "990100",
        "pool_level": "county",
        "sources": {"pool_level": ILL, "spending_fields": ILL},
    }
    doc.update(kw)
    if "adjustment_fund" in kw:
        for k in kw["adjustment_fund"]:
            doc["sources"][f"adjustment_fund.{k}"] = ILL
    return arrangement_from_dict(doc)


FUND = {"level": "city", "share_of_income": "0.05", "coverage_ratio": "0.80", "cap_share_of_income": "0.20"}
TWO = [
    CountyFigures("990101", "employee", 10_000_000, 7_000_000, 100),
    CountyFigures("990102", "employee", 5_000_000, 6_000_000, 60),
]


def run(a: Arrangement, figs):
    h = hierarchy(a)
    return simulate(figs, a, h.pool_of, h.fund_of)


# --- hand-computed cases --------------------------------------------------------------------------------


def test_county_pools_alone_have_no_transfers():
    sim = run(arr(), TWO)
    assert [(c.county, c.alone, c.outcome, c.transfer) for c in sim.counties] == [
        ("990101", 3_000_000, 3_000_000, 0),
        ("990102", -1_000_000, -1_000_000, 0),
    ]
    assert sim.funds == [] and [p.pool for p in sim.pools] == ["990101", "990102"]


def test_adjustment_fund_two_counties_one_in_deficit_to_the_fen():
    # X pays 5 % of ¥100,000 = ¥5,000, Y pays ¥2,500: the city fund holds ¥7,500.
    # Y's deficit after paying in: 60,000 − (50,000 − 2,500) =
    # ¥12,500; it asks 80 % = ¥10,000 (cap 20 % of 50,000 = ¥10,000).
    # The fund has only ¥7,500: Y draws ¥7,500, ¥2,500 short; Y ends at −¥5,000 (left to local finance).
    sim = run(arr(adjustment_fund=FUND), TWO)
    x, y = sim.pools
    assert (x.payment, x.deficit, x.requested, x.draw, x.balance) == (500_000, 0, 0, 0, 2_500_000)
    assert (y.payment, y.deficit, y.requested, y.draw, y.balance, y.uncovered) == (
        250_000,
        1_250_000,
        1_000_000,
        750_000,
        -500_000,
        500_000,
    )
    (f,) = sim.funds
    assert (f.fund, f.opening, f.income, f.requested, f.drawn, f.short, f.closing, f.transfer) == (
        "990100",
        0,
        750_000,
        1_000_000,
        750_000,
        250_000,
        0,
        0,
    )
    assert [(c.county, c.transfer) for c in sim.counties] == [("990101", -500_000), ("990102", 500_000)]


def test_adjustment_fund_with_enough_money_keeps_the_rest_and_is_a_party_to_the_transfers():
    a = arr(
        adjustment_fund={
            **FUND,
            "share_of_income": "0.10",
            "opening_balance_yuan": {"employee": "100.00", "resident": 0},
        }
    )
    sim = run(a, TWO)
    x, y = sim.pools
    # payments 1,000,000 and 500,000; Y's deficit 6,000,000 − 4,500,000 =
    # 1,500,000, asks 1,200,000, capped at 1,000,000 (20 % of its income)
    assert (y.deficit, y.requested, y.draw) == (1_500_000, 1_000_000, 1_000_000)
    (f,) = sim.funds
    assert (f.opening, f.income, f.drawn, f.closing, f.transfer) == (10_000, 1_500_000, 1_000_000, 510_000, 500_000)
    assert [c.transfer for c in sim.counties] == [-1_000_000, 500_000]
    assert sum(c.transfer for c in sim.counties) + f.transfer == 0


def test_city_unified_pool_shares_the_result_by_income_largest_remainder():
    # pool result 2,000,000 split 2:1 → 1,333,333.33 / 666,666.67; the spare fen goes to the larger remainder (Y)
    sim = run(arr(pool_level="city"), TWO)
    assert [p.pool for p in sim.pools] == ["990100"] and sim.pools[0].balance == 2_000_000
    assert [(c.county, c.pool, c.outcome, c.transfer) for c in sim.counties] == [
        ("990101", "990100", 1_333_333, -1_666_667),
        ("990102", "990100", 666_667, 1_666_667),
    ]


def test_scarce_fund_is_shared_in_proportion_to_requests():
    a = arr(adjustment_fund={"level": "city", "share_of_income": "0.05", "coverage_ratio": "1"})
    figs = [
        CountyFigures("990101", "resident", 10_000, 0),
        CountyFigures("990102", "resident", 10_000, 20_000),
        CountyFigures("990103", "resident", 10_000, 13_001),
    ]
    sim = run(a, figs)
    # fund 1,500; requests 10,500 and 3,501 (of 14,001): 1,124.91 → 1,125 (largest remainder) and 375.08 → 375
    assert [(p.pool, p.requested, p.draw) for p in sim.pools] == [
        ("990101", 0, 0),
        ("990102", 10_500, 1_125),
        ("990103", 3_501, 375),
    ]
    assert sim.funds[0].closing == 0 and sim.funds[0].short == 14_001 - 1_500


def test_payment_rounds_half_up_and_nothing_on_negative_income():
    a = arr(adjustment_fund={"level": "city", "share_of_income": "0.01", "coverage_ratio": "0.5"})
    sim = run(a, [CountyFigures("990101", "employee", 150, 0), CountyFigures("990102", "employee", -40, 0)])
    assert [p.payment for p in sim.pools] == [2, 0]  # 1.5 fen → 2; a negative income pays nothing
    # 990102: deficit 0 − (−40 − 0) = 40, asks 20; the fund has 2
    assert [p.draw for p in sim.pools] == [0, 2]


def test_schemes_never_mix():
    figs = [
        CountyFigures("990101", "employee", 1_000, 0),
        CountyFigures("990102", "employee", 1_000, 3_000),
        CountyFigures("990101", "resident", 500, 100),
        CountyFigures("990102", "resident", 500, 100),
    ]
    sim = run(arr(pool_level="city"), figs)
    emp, res = sim.by_scheme("employee"), sim.by_scheme("resident")
    assert [c.outcome for c in emp.counties] == [-500, -500] and [c.transfer for c in emp.counties] == [-1_500, 1_500]
    assert [c.transfer for c in res.counties] == [0, 0]
    totals = {r["county"]: r["transfer"] for r in sim.county_totals()}
    assert totals == {"990101": -1_500, "990102": 1_500}


def _two_cities() -> Divisions:
    rows = [
        ("980000", "省", "province", ""),
        ("980100", "甲市", "city", "980000"),
        ("980200", "乙市", "city", "980000"),
        ("980101", "甲一县", "district", "980100"),
        ("980102", "甲二县", "district", "980100"),
        ("980201", "乙一县", "district", "980200"),
        ("980202", "乙二县", "district", "980200"),
    ]
    return Divisions({c: Division(c, n, lv, p, True) for c, n, lv, p in rows})


def test_province_adjustment_fund_over_two_cities():
    a = arrangement_from_dict(
        {
            "name": "p",
            "label_en": "p",
            "label_zh": "省",
            "region": "980000",
            "pool_level": "city",
            "counties": {"pools": ["980101", "980102", "980201", "980202"]},
            "adjustment_fund": {"level": "province", "share_of_income": "0.10", "coverage_ratio": "0.5"},
            "sources": {
                k: ILL
                for k in (
                    "pool_level",
                    "spending_fields",
                    "adjustment_fund.level",
                    "adjustment_fund.share_of_income",
                    "adjustment_fund.coverage_ratio",
                )
            },
        }
    )
    h = hierarchy(a, _two_cities())
    assert h.pool_of == {"980101": "980100", "980102": "980100", "980201": "980200", "980202": "980200"}
    assert h.fund_of == {"980100": "980000", "980200": "980000"}
    figs = [
        CountyFigures("980101", "employee", 6_000, 1_000),
        CountyFigures("980102", "employee", 4_000, 1_000),
        CountyFigures("980201", "employee", 3_000, 6_000),
        CountyFigures("980202", "employee", 1_000, 2_000),
    ]
    sim = simulate(figs, a, h.pool_of, h.fund_of)
    city_a, city_b = sim.pools
    # 甲市: income 10,000, pays 1,000, spends 2,000 → +7,000. 乙市: income
    # 4,000, pays 400, spends 8,000 → deficit 4,400, asks 2,200; fund 1,400
    assert (city_a.payment, city_a.balance) == (1_000, 7_000)
    assert (city_b.payment, city_b.deficit, city_b.requested, city_b.draw, city_b.balance) == (
        400,
        4_400,
        2_200,
        1_400,
        -3_000,
    )
    # counties share their city's balance by income: 甲 7,000 → 4,200 / 2,800; 乙 −3,000 → −2,250 / −750
    assert [(c.county, c.outcome, c.transfer) for c in sim.counties] == [
        ("980101", 4_200, -800),
        ("980102", 2_800, -200),
        ("980201", -2_250, 750),
        ("980202", -750, 250),
    ]
    assert sim.funds[0].closing == 0


def test_municipality_districts_pool_at_the_province_for_city_level():
    d = Divisions(
        {
            "970000": Division("970000", "直辖市", "province", "", True),
            "970101": Division("970101", "一区", "district", "970000", True),
            "970102": Division("970102", "二区", "district", "970000", True),
        }
    )
    a = arrangement_from_dict(
        {
            "name": "m",
            "label_en": "m",
            "label_zh": "m",
            "region": "970000",
            "pool_level": "city",
            "sources": {"pool_level": ILL, "spending_fields": ILL},
        }
    )
    assert hierarchy(a, d).pool_of == {"970101": "970000", "970102": "970000"}


# --- conservation ---------------------------------------------------------------------------------------


def test_apportion_adds_up_and_keeps_signs():
    for total in (0, 1, 7, -7, 1_000_001, -999_999):
        for w in ([1, 1, 1], [5, 0, 2], [0, 0, 0], [3]):
            parts = apportion(total, w, [str(i) for i in range(len(w))])
            assert sum(parts) == total
            assert all((p >= 0) if total >= 0 else (p <= 0) for p in parts)
    assert apportion(10, [1, 0], ["a", "b"]) == [10, 0]


@pytest.mark.parametrize("name", known_arrangements())
def test_every_shipped_arrangement_conserves_money(name):
    import random

    rnd = random.Random(name)
    a = load_arrangement(name)
    figs = [
        CountyFigures(c, s, rnd.randint(-1_000, 5_000_000), rnd.randint(0, 6_000_000), rnd.randint(0, 900))
        for c in ("990101", "990102", "990103", "990104", "990105")
        for s in ("employee", "resident")
    ]
    sim = run(a, figs)
    check_conservation(sim)
    for s in ("employee", "resident"):
        part = sim.by_scheme(s)
        assert sum(c.transfer for c in part.counties) + sum(f.transfer for f in part.funds) == 0
        assert sum(c.outcome for c in part.counties) + sum(f.transfer for f in part.funds) == sum(
            f.income - f.spending for f in figs if f.scheme == s
        )
        assert all(p.draw <= p.requested for p in part.pools)
        assert all(f.drawn <= f.opening + f.income for f in part.funds)


def test_check_conservation_catches_a_broken_result():
    import dataclasses

    sim = run(arr(pool_level="city"), TWO)
    broken = dataclasses.replace(
        sim, counties=[dataclasses.replace(sim.counties[0], outcome=sim.counties[0].outcome + 1), sim.counties[1]]
    )
    with pytest.raises(AssertionError, match="conserve"):
        check_conservation(broken)


# --- arrangements as data: refused with the reason ------------------------------------------------------


def test_shipped_arrangements_load_and_cite_every_figure():
    names = known_arrangements()
    assert {"county", "city-adjustment-fund", "city-unified", "province-adjustment-fund", "province-unified"} <= set(
        names
    )
    for n in names:
        a = load_arrangement(n)
        assert all(v.startswith(("seed ", "ILLUSTRATIVE")) for v in a.sources.values())
        assert a.sources["pool_level"].startswith("seed 001")
    fund = load_arrangement("city-adjustment-fund").adjustment_fund
    assert (fund.share_of_income.employee, fund.coverage_ratio, fund.cap_share_of_income) == (500, 8_000, 2_000)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"adjustment_fund": {**FUND, "share_of_income": "1"}}, "below 1"),
        ({"adjustment_fund": {**FUND, "share_of_income": "0.12345"}}, "finer than 0.01"),
        ({"adjustment_fund": {**FUND, "coverage_ratio": "1.5"}}, "outside 0..1"),
        ({"adjustment_fund": {**FUND, "share_of_income": 0.05}}, None),  # a float is read through its text, exactly
        ({"adjustment_fund": {**FUND, "level": "city"}, "pool_level": "city"}, "must be above pool_level"),
        ({"pool_level": "nation"}, "pool_level"),
        ({"spending_fields": ["hifp_pay", "no_such"]}, "not a fund share"),
        ({"region": "9901"}, "6-digit"),
        ({"colour": "red"}, "colour"),
        ({"counties": {"pools": ["990101"], "assignment": {"weights": {"990102": 1}}}}, "not county pools"),
    ],
)
def test_bad_arrangements_are_refused(change, words):
    if words is None:
        assert arr(**change).adjustment_fund.share_of_income.employee == 500
        return
    with pytest.raises(PoolingError) as e:
        arr(**change)
    assert words in str(e.value)


def test_a_figure_without_a_source_is_refused(tmp_path):
    doc = {
        "name": "x",
        "label_en": "x",
        "label_zh": "x",
        "region": "990100",
        "pool_level": "county",
        "adjustment_fund": {"level": "city", "share_of_income": "0.05", "coverage_ratio": "0.8"},
        "sources": {
            "pool_level": ILL,
            "spending_fields": ILL,
            "adjustment_fund.level": ILL,
            "adjustment_fund.share_of_income": ILL,
        },
    }
    with pytest.raises(PoolingError, match="adjustment_fund.coverage_ratio"):
        arrangement_from_dict(doc)
    doc["sources"]["adjustment_fund.coverage_ratio"] = "my guess"
    with pytest.raises(PoolingError, match="must start with"):
        arrangement_from_dict(doc)
    doc["sources"]["adjustment_fund.coverage_ratio"] = ILL
    doc["illustrative"] = False
    with pytest.raises(PoolingError, match="illustrative: true"):
        arrangement_from_dict(doc)
    p = tmp_path / "x.yaml"
    p.write_text("name: x\npool_level: [\n", encoding="utf-8")
    with pytest.raises(PoolingError, match="not valid YAML"):
        load_arrangement(p)
    with pytest.raises(PoolingError, match="unknown pooling arrangement 'nope'; known: city-adjustment-fund"):
        load_arrangement("nope")


def test_bad_figures_are_refused():
    a = arr()
    h = hierarchy(a)
    for figs, words in [
        ([], "no county figures"),
        ([CountyFigures("990101", "farmer", 1, 1)], "unknown scheme"),
        ([CountyFigures("990101", "employee", 1, -1)], "must not be negative"),
        ([CountyFigures("990101", "employee", 1.5, 1)], "integer fen"),  # type: ignore[arg-type]
        ([CountyFigures("990101", "employee", 1, 1), CountyFigures("990101", "employee", 1, 1)], "given twice"),
        ([CountyFigures("320500", "employee", 1, 1)], "not a county pool"),
    ]:
        with pytest.raises(PoolingError, match=words):
            simulate(figs, a, h.pool_of, h.fund_of)
    with pytest.raises(PoolingError, match="give each pool's fund"):
        simulate(TWO, arr(adjustment_fund=FUND), h.pool_of, None)


# --- from a data directory ------------------------------------------------------------------------------


def _write(d: Path, name: str, schema: pa.Schema, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=with_metadata(schema, name)), d / f"{name}.parquet")


def _settlement(
    setl_id: str, psn_no: str, insutype: str, hifp: int, *, year: int = 2025, cancelled: bool = False, hifmi: int = 0
) -> dict:
    row = {}
    for f in SETTLEMENT:
        row[f.name] = "" if pa.types.is_string(f.type) else False if pa.types.is_boolean(f.type) else 0
    row.update(
        setl_id=setl_id,
        mdtrt_id=f"M{setl_id}",
        psn_no=psn_no,
        fixmedins_code="H1",
        setl_time=dt.datetime(year, 5, 1, 9, tzinfo=TZ),
        policy_year=year,
        insutype=insutype,
        med_type="21",
        hifp_pay=hifp,
        hifmi_pay=hifmi,
        refd_setl_flag=cancelled,
        synthetic=True,
    )
    return row


RATES = IncomeRates(
    employer_rate_bp=800, retiree_monthly_credit=9_000, resident_per_capita=102_000, source="test rates"
)


@pytest.fixture()
def region(tmp_path: Path) -> Path:
    base = {
        "certno": "x",
        "psn_name": "合成",
        "gend": "1",
        "brdy": dt.date(1980, 1, 1),
        "civil_servant": False,
        "assistance": "",
        "acct_balc": 0,
        "synthetic": True,
    }
    persons = [
        {
            **base,
            "psn_no": "E1",
            "insutype": "310",
            "psn_type": "in_service",
            "insuplc_admdvs": "990101",
            "contribution_base": 1_000_000,
            "family_id": "F1",
        },
        {
            **base,
            "psn_no": "E2",
            "insutype": "310",
            "psn_type": "retired",
            "insuplc_admdvs": "990102",
            "contribution_base": 0,
            "family_id": "F2",
        },
        {
            **base,
            "psn_no": "R1",
            "insutype": "390",
            "psn_type": "resident",
            "insuplc_admdvs": "990101",
            "contribution_base": 0,
            "family_id": "F1",
        },
        {
            **base,
            "psn_no": "R2",
            "insutype": "390",
            "psn_type": "resident",
            "insuplc_admdvs": "990102",
            "contribution_base": 0,
            "family_id": "F2",
        },
    ]
    _write(tmp_path, "person", PERSON, persons)
    _write(
        tmp_path,
        "settlement",
        SETTLEMENT,
        [
            _settlement("S1", "E1", "310", 300_000),
            _settlement("S2", "E2", "310", 1_200_000),
            _settlement("S3", "R1", "390", 50_000, hifmi=7_000),
            _settlement("S4", "R2", "390", 250_000),
            _settlement("S5", "R2", "390", 999_999, cancelled=True),  # cancelled: not spending
            _settlement("S6", "R2", "390", 888_888, year=2024),  # another year
        ],
    )
    return tmp_path


def test_read_figures_derives_income_and_sums_spending(region):
    a = load_arrangement("county")
    yf = read_figures(region, a, RATES)
    assert yf.year == 2025 and yf.synthetic and yf.placed_by_hash == 0
    got = {(f.county, f.scheme): (f.people, f.income, f.spending) for f in yf.figures}
    # E1: 12 × 8 % of ¥10,000 = ¥9,600; E2: retiree credit −12 × ¥90 = −¥1,080; residents ¥1,020 each
    assert got == {
        ("990101", "employee"): (1, 960_000, 300_000),
        ("990102", "employee"): (1, -108_000, 1_200_000),
        ("990101", "resident"): (1, 102_000, 50_000),
        ("990102", "resident"): (1, 102_000, 250_000),
    }
    a2 = arr(spending_fields=["hifp_pay", "hifmi_pay"])
    got2 = {(f.county, f.scheme): f.spending for f in read_figures(region, a2, RATES).figures}
    assert got2[("990101", "resident")] == 57_000
    assert {(f.county, f.scheme): f.spending for f in read_figures(region, a, RATES, year=2024).figures}[
        ("990102", "resident")
    ] == 888_888


def test_persons_at_the_region_code_are_placed_by_family_and_weights(region):
    t = pq.read_table(region / "person.parquet").to_pylist()
    for r in t:
        r["insuplc_admdvs"] = "990100"
    _write(region, "person", PERSON, t)
    yf = read_figures(region, load_arrangement("county"), RATES)
    assert yf.placed_by_hash == 4
    by = {}
    for f in yf.figures:
        by.setdefault(f.county, set()).add(f.scheme)
    assert sum(f.people for f in yf.figures) == 4
    # a family stays together: E1 and R1 share F1, so they land in
    # the same county (one employee and one resident row there)
    again = read_figures(region, load_arrangement("county"), RATES)
    assert again.figures == yf.figures  # stable
    only = arr(
        counties={"assignment": {"weights": {"990103": 1}}},
        sources={"pool_level": ILL, "spending_fields": ILL, "counties.assignment.weights": ILL},
    )
    yf3 = read_figures(region, only, RATES)
    assert {f.county for f in yf3.figures} == {"990103"} and sum(f.people for f in yf3.figures) == 4
    f1 = [f for f in yf.figures if f.scheme == "employee" and f.income == 960_000]
    r1 = [f for f in yf.figures if f.scheme == "resident" and f.spending == 50_000]
    assert f1[0].county == r1[0].county


def test_read_figures_refuses_bad_data(region, tmp_path_factory):
    t = pq.read_table(region / "person.parquet").to_pylist()
    t[0]["insuplc_admdvs"] = "320500"
    _write(region, "person", PERSON, t)
    with pytest.raises(
        PoolingError,
        match=r"1 person\(s\) insured outside the arrangement's county pools \(e.g. insuplc_admdvs '320500'\)",
    ):
        read_figures(region, load_arrangement("county"), RATES)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(PoolingError, match="no person table"):
        read_figures(empty, load_arrangement("county"), RATES)
    _write(empty, "person", PERSON, [])
    with pytest.raises(PoolingError, match="run yibao settle --data"):
        read_figures(empty, load_arrangement("county"), RATES)


# --- the command line -----------------------------------------------------------------------------------


def _cli(*args: str):
    from yibao.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})


def test_cli_simulate_writes_json_to_the_fen(region, tmp_path):
    out = tmp_path / "r.json"
    r = _cli("pooling", "simulate", "--data", str(region), "--arrangement", "city-unified", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "SYNTHETIC DATA" in r.output and "ILLUSTRATIVE" in r.output and "DERIVED" in r.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["money"] == "fen" and doc["year"] == 2025
    emp = {c["county"]: c for c in doc["counties"] if c["scheme"] == "employee"}
    # example-city-a: employer 8 %, retiree credit ¥90/month. Alone: 990101
    # 960,000 − 300,000 = 660,000; 990102 −108,000 − 1,200,000 = −1,308,000.
    # City pool: −648,000, shared by non-negative income (960,000 : 0) → all to 990101.
    assert (emp["990101"]["alone"], emp["990102"]["alone"]) == (660_000, -1_308_000)
    assert (emp["990101"]["outcome"], emp["990102"]["outcome"]) == (-648_000, 0)
    assert sum(c["transfer"] for c in doc["counties"]) == 0


@pytest.mark.parametrize("suffix", [".html", ".xlsx"])
def test_cli_writes_html_and_xlsx(region, tmp_path, suffix):
    out = tmp_path / f"report{suffix}"
    r = _cli("pooling", "simulate", "--data", str(region), "--arrangement", "city-adjustment-fund", "--out", str(out))
    assert r.exit_code == 0, r.output
    if suffix == ".html":
        text = out.read_text(encoding="utf-8")
        assert "SYNTHETIC DATA" in text and "风险调剂金" in text and "<script" not in text
    else:
        from openpyxl import load_workbook

        wb = load_workbook(out)
        assert wb.sheetnames == ["about", "counties", "pools", "funds"]
        head = [c.value for c in wb["funds"][1]]
        assert "income_fen" in head and "closing_yuan" in head


def test_cli_refuses_bad_input_with_one_line_and_writes_nothing(region, tmp_path):
    out = tmp_path / "r.html"
    (tmp_path / "d.html").mkdir()
    for args, words in [
        (["--arrangement", "nope"], "unknown pooling arrangement 'nope'"),
        (["--arrangement", "county", "--out", str(tmp_path / "r.pdf")], "give a file ending in .html, .xlsx, .json"),
        (["--arrangement", "county", "--out", str(tmp_path / "no" / "r.html")], "does not exist"),
        (["--arrangement", "county", "--policy", "atlantis"], "unknown policy or region 'atlantis'"),
        (["--arrangement", "county", "--out", str(tmp_path / "d.html")], "is a directory"),
        (["--arrangement", "county", "--year", "2031"], "no settlements in 2031 (settled years: 2024, 2025)"),
    ]:
        r = _cli("pooling", "simulate", "--data", str(region), *args)
        assert r.exit_code == 2, r.output
        assert words in r.output and "Traceback" not in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nlabel_en: b\nlabel_zh: b\nregion: '990100'\npool_level: county\nsources: {pool_level: 'guess'}\n",
        encoding="utf-8",
    )
    r = _cli("pooling", "simulate", "--data", str(region), "--arrangement", str(bad), "--out", str(out))
    assert r.exit_code == 2 and "bad.yaml" in r.output and "sources" in r.output
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_cli_lists_arrangements():
    r = _cli("pooling", "list")
    assert r.exit_code == 0 and "city-adjustment-fund" in r.output and "风险调剂金" in r.output


# --- the REST router ------------------------------------------------------------------------------------


@pytest.fixture()
def client():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from yibao.pooling.api import router

    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_api_simulate_to_the_fen(client):
    body = {
        "arrangement": "city-adjustment-fund",
        "counties": [
            {"county": "990101", "scheme": "employee", "income": 10_000_000, "spending": 7_000_000, "people": 100},
            {"county": "990102", "scheme": "employee", "income": 5_000_000, "spending": 6_000_000, "people": 60},
        ],
    }
    r = client.post("/api/v1/pooling/simulate", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["money"] == "fen"
    assert [(c["county"], c["transfer"]) for c in doc["counties"]] == [("990101", -500_000), ("990102", 500_000)]
    assert doc["funds"][0]["drawn"] == 750_000 and doc["funds"][0]["short"] == 250_000
    names = [a["name"] for a in client.get("/api/v1/pooling/arrangements").json()]
    assert "province-unified" in names
    one = client.get("/api/v1/pooling/arrangements/city-adjustment-fund").json()
    assert one["adjustment_fund"]["share_of_income"] == {"employee": 500, "resident": 500}


def test_api_refuses_bad_input(client):
    ok = {"county": "990101", "scheme": "employee", "income": 1, "spending": 1}
    r = client.post(
        "/api/v1/pooling/simulate", json={"arrangement": "county", "counties": [{**ok, "county": "320500"}]}
    )
    assert (
        r.status_code == 400
        and r.json()["detail"]["code"] == "E_POOLING"
        and "not a county pool" in r.json()["detail"]["message_en"]
    )
    r = client.post("/api/v1/pooling/simulate", json={"arrangement": "/etc/passwd", "counties": [ok]})
    assert r.status_code == 400 and "not a file path" in r.json()["detail"]["message_en"]
    r = client.post("/api/v1/pooling/simulate", json={"arrangement": {"name": "x"}, "counties": [ok]})
    assert r.status_code == 400 and r.json()["detail"]["field"]
    assert (
        client.post(
            "/api/v1/pooling/simulate", json={"arrangement": "county", "counties": [{**ok, "spending": -1}]}
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/api/v1/pooling/simulate", json={"arrangement": "county", "counties": [{**ok, "income": 1.5}]}
        ).status_code
        == 422
    )
    assert client.get("/api/v1/pooling/arrangements/nope").status_code == 404


def test_api_region_reads_the_served_data(client, region, monkeypatch):
    monkeypatch.delenv("YIBAO_CONSOLE_DATA", raising=False)
    assert client.get("/api/v1/pooling/region/county").status_code == 409
    monkeypatch.setenv("YIBAO_CONSOLE_DATA", str(region))
    doc = client.get("/api/v1/pooling/region/city-unified").json()
    assert doc["year"] == 2025 and doc["synthetic"] is True
    assert sum(c["transfer"] for c in doc["counties"]) == 0
    assert client.get("/api/v1/pooling/region/nope").status_code == 400


def test_api_is_mounted_behind_the_bureau_login(db_engine):
    from fastapi.testclient import TestClient

    from tests.api_support import SH, Clock, make_interface, seed
    from tests.console_support import console_login
    from yibao.server import create_app

    seed(db_engine)
    app = create_app(make_interface(db_engine, Clock(dt.datetime(2025, 3, 1, 9, tzinfo=SH))))
    app.state.console.auth.add_user("bureau", "pool-pass-1", "bureau")
    anon, bureau = TestClient(app), TestClient(app)
    assert console_login(bureau, "bureau", "pool-pass-1").status_code == 303
    assert anon.get("/api/v1/pooling/arrangements").status_code == 401
    assert bureau.get("/api/v1/pooling/arrangements").status_code == 200


def test_what_if_scales_spending_half_up_and_is_labelled(region, tmp_path):
    from decimal import Decimal

    from yibao.pooling.mechanics import scale_spending

    assert [
        f.spending
        for f in scale_spending(
            [CountyFigures("990101", "employee", 0, 5), CountyFigures("990102", "employee", 0, 3)], Decimal("1.5")
        )
    ] == [8, 5]
    with pytest.raises(PoolingError, match="positive"):
        scale_spending(TWO, Decimal("0"))
    out = tmp_path / "w.json"
    r = _cli(
        "pooling",
        "simulate",
        "--data",
        str(region),
        "--arrangement",
        "county",
        "--spending-factor",
        "2",
        "--out",
        str(out),
    )
    assert r.exit_code == 0, r.output
    assert "WHAT-IF" in r.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["spending_factor"] == "2"
    assert {(c["county"], c["scheme"]): c["spending"] for c in doc["counties"]}[("990101", "employee")] == 600_000
    for bad in ("0", "-1", "11", "1.23456", "lots"):
        r = _cli("pooling", "simulate", "--data", str(region), "--arrangement", "county", "--spending-factor", bad)
        assert r.exit_code == 2 and "--spending-factor" in r.output, (bad, r.output)


def test_cli_compare_shows_every_arrangement_lowest_first(region):
    r = _cli("pooling", "compare", "--data", str(region))
    assert r.exit_code == 0, r.output
    text = r.output
    order = [
        text.index(n)
        for n in ("county", "city-adjustment-fund", "city-unified", "province-adjustment-fund", "province-unified")
    ]
    assert order == sorted(order)
    # employees alone: 990101 +660,000 fen, 990102 −1,308,000 fen; under a city pool 990101 pays ¥13,080.00 for 990102
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():  # the employee table comes first
        if line.strip().startswith(("990101", "990102")):
            rows.setdefault(line.split()[0], line.split()[1:])
    assert rows["990101"][:5] == ["0.00", "-480.00", "-13,080.00", "-13,080.00", "-13,080.00"]
    assert rows["990102"][:5] == ["0.00", "0.00", "13,080.00", "13,080.00", "13,080.00"]
    r = _cli("pooling", "compare", "--data", str(region), "--arrangement", "county", "--arrangement", "nope")
    assert r.exit_code == 2 and "unknown pooling arrangement 'nope'" in r.output


def test_compare_reads_the_data_once_for_arrangements_that_place_persons_alike(region, monkeypatch):
    import yibao.pooling.figures as figures

    calls = []
    real = figures.read_figures
    monkeypatch.setattr(figures, "read_figures", lambda *a, **k: calls.append(a[1].name) or real(*a, **k))
    r = _cli("pooling", "compare", "--data", str(region))
    assert r.exit_code == 0, r.output
    assert len(calls) == 1  # the five shipped arrangements place persons and count spending alike


def test_read_figures_takes_dataset_directories(region):
    (region / "settlement").mkdir()
    (region / "settlement.parquet").rename(region / "settlement" / "part-0.parquet")
    got = {(f.county, f.scheme): f.spending for f in read_figures(region, load_arrangement("county"), RATES).figures}
    assert got[("990102", "employee")] == 1_200_000 and got[("990102", "resident")] == 250_000
