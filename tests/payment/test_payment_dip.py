"""DIP: catalog, points, outliers, point value and payment on a hand-computed small region; conservation; bad input."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.payment.cases import CodeTables, PaymentInputError, case_keys, connect, load_cases
from yibao.payment.catalog import Catalog, build_catalog, round_div
from yibao.payment.dip import case_points, monthly_budgets, settle
from yibao.payment.params import DipParams, load_dip_params

TZ = dt.timezone(dt.timedelta(hours=8))


def params(**over) -> DipParams:
    raw = {
        "name": "test",
        "region": "990100",
        "version": "t1",
        "effective_from": "2025-01-01",
        "scope": {"med_types": ["21"], "institution_admdvs_prefix": ""},
        "catalog": {"core_min_cases": 3, "diagnosis_level": "subcategory", "comprehensive_min_cases": 2, "scale": 1000},
        "budget": {"basis": "total", "annual": "17000.00", "monthly_advance_ratio": "0.90"},
    }
    for k, v in over.items():
        raw[k] = v
    return DipParams.model_validate(raw)


def case(
    i, inst, dx, cost_yuan, procs="", *, month=1, other="", lv=2, age=40, oth_fen=0, begin=None, end=None, psn=None
):
    cost = cost_yuan * 100
    b = begin or dt.datetime(2025, month, 3, 9, tzinfo=TZ)
    return {
        "mdtrt_id": f"M{i:04d}",
        "psn_no": psn or f"P{i:04d}",
        "fixmedins_code": inst,
        "hosp_lv": lv,
        "dept_code": "D1",
        "begntime": b,
        "endtime": end or b + dt.timedelta(days=5),
        "policy_year": 2025,
        "setl_month": month,
        "age": age,
        "gend": "1",
        "dise_codg": dx,
        "other_dise_codg": other,
        "oprn_codg": procs,
        "medfee_sumamt": cost,
        "psn_part_amt": cost // 5,
        "hifp_pay": cost - cost // 5 - oth_fen,
        "oth_fund_amt": oth_fen,
        "synthetic": True,
    }


def region(month2: bool = False) -> pd.DataFrame:
    """12 cases, 3 hospitals; total cost ¥18,000 (overall mean ¥1,500)."""
    m = 2 if month2 else 1
    rows = [
        # core group A: K80.2 + 51.23 (laparoscopic cholecystectomy): ¥500 / 1,000 / 4,500, mean 2,000
        case(1, "H1", "K80.200x003", 500, "51.2300"),
        case(2, "H1", "K80.200x003", 1000, "51.2300"),
        case(3, "H1", "K80.200x003", 4500, "51.2300", month=m),
        # core group B: J18.9 conservative: ¥400 / 500 / 1,000 / 2,400 / 1,700, mean 1,200
        case(4, "H2", "J18.900", 400),
        case(5, "H2", "J18.900", 500),
        case(6, "H2", "J18.900", 1000, month=m),
        case(7, "H2", "J18.900", 2400),
        case(8, "H2", "J18.900", 1700),
        # one case each of K80.2 and K81.0 conservative: category pools of 1 < 2 → chapter XI conservative, mean 500
        case(9, "H1", "K80.200x003", 600),
        case(10, "H2", "K81.000", 400, month=m),
        # I20.0 with two different stent procedures: category I20 x surgery, mean 2,500
        case(11, "H3", "I20.000", 3000, "36.0601", oth_fen=10000),
        case(12, "H3", "I20.000", 2000, "00.6600x004"),
    ]
    return pd.DataFrame(rows)


def run(df, p):
    con = connect()
    cases = load_cases(con, df, p)
    cat = build_catalog(con, cases, p)
    return con, cases, cat


def test_catalog_groups_and_points_by_hand():
    _, _, cat = run(region(), params())
    g = {r["group_code"]: r for r in cat.groups.to_pylist()}
    assert set(g) == {"K80.2|51.2300", "J18.9|-", "Z|CHXI|conservative", "Z|I20|surgery"}
    assert (cat.n_cases, cat.total_cost_fen, cat.overall_mean_fen) == (12, 1_800_000, 150_000)
    # points = group mean / overall mean x 1000, to 0.0001 (held as integers x 10^4)
    assert g["K80.2|51.2300"]["points_e4"] == 13_333_333  # 2000/1500 x 1000 = 1333.3333
    assert g["J18.9|-"]["points_e4"] == 8_000_000  # 1200/1500 x 1000 = 800
    assert g["Z|CHXI|conservative"]["points_e4"] == 3_333_333  # 500/1500 x 1000 = 333.3333
    assert g["Z|I20|surgery"]["points_e4"] == 16_666_667  # 2500/1500 x 1000 = 1666.66667 → 1666.6667
    assert g["K80.2|51.2300"]["kind"] == "core" and g["Z|I20|surgery"]["kind"] == "comprehensive"
    assert g["Z|CHXI|conservative"]["level"] == "chapter" and g["Z|CHXI|conservative"]["n_cases"] == 2
    assert g["J18.9|-"]["mean_cost_fen"] == 120_000


def test_outliers_points_value_and_payment_by_hand():
    p = params()
    con, cases, cat = run(region(), p)
    res = settle(con, cases, cat, p)
    pts = dict(zip(res.cases.mdtrt_id, zip(res.cases.kind, res.cases.points_e4, strict=True), strict=True))
    assert pts["M0001"] == ("low", 3_333_333)  # 500/2000 = 0.25 < 0.5: 0.25 x 1333.3333 = 333.333325 → 333.3333
    assert pts["M0002"] == ("normal", 13_333_333)  # exactly 0.5 x mean is not low
    assert pts["M0003"] == ("high", 16_666_666)  # 4500/2000 = 2.25 > 2: (2.25 - 2 + 1) x 1333.3333 = 1666.666625
    assert pts["M0004"] == ("low", 2_666_667)  # 400/1200 x 800 = 266.66667
    assert pts["M0005"] == ("low", 3_333_333)  # 500/1200 x 800 = 333.33333
    assert pts["M0007"] == ("normal", 8_000_000)  # exactly 2 x mean is not high
    assert pts["M0010"] == ("normal", 3_333_333)
    y = res.institutions[res.institutions.period == 0].set_index("fixmedins_code")
    assert y.points_e4.to_dict() == {"H1": 36_666_665, "H2": 33_333_333, "H3": 33_333_334}
    # pool ¥17,000 (basis total) over 10,333.3332 points: floors 603,225 / 548,387 / 548,387 fen, one fen left over,
    # which goes to the largest remainder (H1: 1,700,000 x 36,666,665 mod 103,333,332 = 81,304,300)
    assert y.value_fen.to_dict() == {"H1": 603_226, "H2": 548_387, "H3": 548_387}
    # payment = value - patients' shares (20 % of cost) - other funds (¥100 on one H3 case)
    assert y.payment_fen.to_dict() == {
        "H1": 603_226 - 132_000,
        "H2": 548_387 - 128_000,
        "H3": 548_387 - 100_000 - 10_000,
    }
    assert int(y.payment_fen.sum()) == 1_700_000 - 360_000 - 10_000
    assert str(res.annual_point_value) == "1.645161"  # yuan per point = 17000 / 10333.3332


def test_monthly_presettlement_and_annual_clearing():
    p = params()
    con, cases, cat = run(region(month2=True), p)
    res = settle(con, cases, cat, p)
    assert monthly_budgets(1_700_000)[:2] == [141_666, 141_667]
    assert sum(monthly_budgets(1_700_000)) == 1_700_000
    per = res.periods.set_index("period")
    assert per.loc[1, "budget_fen"] == 141_666 and per.loc[2, "budget_fen"] == 141_667
    m = res.institutions[res.institutions.period > 0]
    for month, g in m.groupby("period"):
        assert int(g.value_fen.sum()) == per.loc[month, "pool_fen"]
        for v, a in zip(g.payment_fen, g.advance_fen, strict=True):
            assert a == round_div(int(v) * 9000, 10_000)  # 90 % advance, half away from zero
    c = res.clearing.set_index("fixmedins_code")
    y = res.institutions[res.institutions.period == 0].set_index("fixmedins_code")
    for code in c.index:
        assert c.loc[code, "advances_fen"] == int(m[m.fixmedins_code == code].advance_fen.sum())
        assert c.loc[code, "clearing_fen"] == y.loc[code, "payment_fen"] - c.loc[code, "advances_fen"]


def test_budget_basis_fund_pays_exactly_the_budget():
    p = params(budget={"basis": "fund", "annual": "12345.67", "monthly_advance_ratio": "1"})
    con, cases, cat = run(region(), p)
    res = settle(con, cases, cat, p)
    y = res.institutions[res.institutions.period == 0]
    assert int(y.payment_fen.sum()) == 1_234_567
    assert int(res.periods.loc[res.periods.period == 0, "pool_fen"].iloc[0]) == 1_234_567 + 360_000 + 10_000


def test_budget_from_actual_spending():
    p = params(budget={"basis": "fund", "from_actual_factor": "1.05"})
    con, cases, cat = run(region(), p)
    res = settle(con, cases, cat, p)
    hifp = int(region().hifp_pay.sum())
    assert res.budget_fen == round_div(hifp * 10500, 10_000)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    costs=st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 2_000_000), st.integers(1, 12), st.integers(0, 4)),
        min_size=1,
        max_size=40,
    ),
    budget=st.integers(0, 10**12),
    basis=st.sampled_from(["fund", "total"]),
)
def test_conservation_to_the_fen(costs, budget, basis):
    """Institution values sum to the pool in every period; payments to the budget (fund) or budget − shares (total)."""
    dxs = ["J18.900", "K80.200x003", "I63.900", "N20.000"]
    rows = [
        case(i, f"H{h}", dxs[i % 4], 0, month=m)
        | {"medfee_sumamt": c, "psn_part_amt": c // 3, "oth_fund_amt": c // 7, "hifp_pay": c - c // 3 - c // 7}
        for i, (h, c, m, _) in enumerate(costs)
    ]
    p = params(budget={"basis": basis, "annual": f"{budget // 100}.{budget % 100:02d}", "monthly_advance_ratio": "0.9"})
    con = connect()
    cases = load_cases(con, pd.DataFrame(rows), p)
    res = settle(con, cases, build_catalog(con, cases, p), p)
    for per, g in res.institutions.groupby("period"):
        assert int(g.value_fen.sum()) == int(res.periods.loc[res.periods.period == per, "pool_fen"].iloc[0])
    y = res.institutions[res.institutions.period == 0]
    shares = sum(r["psn_part_amt"] + r["oth_fund_amt"] for r in rows)
    assert int(y.payment_fen.sum()) == (budget if basis == "fund" else budget - shares)


DX = ["J18.900", "K80.200x003", "K81.000", "I20.000", "I21.900", "N20.000", "E11.600", "S72.000"]
PROCS = ["", "51.2300", "36.0601", "00.6600x004", "99.1000", "87.0300x001", "36.0601;87.0300x001"]
OTHER = ["", "E11.200", "I50.900", "J96.000;E11.900", "N18.500;A41.900"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(DX),
            st.sampled_from(PROCS),
            st.sampled_from(OTHER),
            st.integers(0, 3),
            st.integers(0, 100),
            st.integers(1, 5_000_000),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_sql_points_equal_the_scalar_path(rows):
    """The SQL settlement gives every case the points the scalar case_points gives it (with coefficients)."""
    p = load_dip_params("example-city-a")
    p = p.model_copy(
        update={"catalog": p.catalog.model_copy(update={"core_min_cases": 2, "comprehensive_min_cases": 2})}
    )
    df = pd.DataFrame(
        [
            case(i, f"H{lv}", dx, 0, pr, other=ot, lv=lv, age=age)
            | {"medfee_sumamt": c, "psn_part_amt": 0, "hifp_pay": c, "oth_fund_amt": 0}
            for i, (dx, pr, ot, lv, age, c) in enumerate(rows)
        ]
    )
    con = connect()
    cases = load_cases(con, df, p)
    cat = build_catalog(con, cases, p)
    res = settle(con, cases, cat, p, budget_fen=10**9)
    got = dict(
        zip(
            res.cases.mdtrt_id, zip(res.cases.group_code, res.cases.kind, res.cases.points_e4, strict=True), strict=True
        )
    )
    codes = CodeTables.default()
    for r in df.itertuples():
        k = case_keys(r.dise_codg, r.other_dise_codg, r.oprn_codg, p, codes)
        g = cat.match(k.dx_key, k.proc_key, k.dx_cat, k.dx_chapter, k.proc_type)
        cp = case_points(r.medfee_sumamt, g, cat, p, p.coef_e4(r.age, k.sev_score, r.hosp_lv))
        assert got[r.mdtrt_id] == (cp.group_code, cp.kind, cp.points_e4)


def test_coefficients_multiply_points():
    p = load_dip_params("example-city-a")
    # level 2 (0.92) x age 80+ (1.05) x severity score 3 (I50 2 + E11 1 → band 1.10) = 1.0626
    assert p.coef_e4(85, 3, 2) == 10_626
    assert p.coef_e4(40, 0, 3) == 10_000 and p.coef_e4(0, 0, 1) == 9_350  # 1.10 x 0.85
    assert p.severity_weight("I50.900") == 2 and p.severity_weight("I10.x00x002") == 0


def test_catalog_file_round_trip_and_published_catalog(tmp_path):
    _, _, cat = run(region(), params())
    cat.save(tmp_path / "c")
    back = Catalog.load(tmp_path / "c")
    assert back.groups.equals(cat.groups) and back.total_cost_fen == cat.total_cost_fen
    # a published catalog: only points and an overall mean; the group mean is derived
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "catalog.yaml").write_text(
        "region: '990100'\nversion: pub-2025\neffective_from: 2025-01-01\nscale: 1000\n"
        "diagnosis_level: subcategory\noverall_mean_cost: '1500.00'\n",
        encoding="utf-8",
    )
    (tmp_path / "pub" / "groups.csv").write_text(
        "group_code,kind,dx_key,proc_key,proc_type,points\nJ18.9|-,core,J18.9,,conservative,800\n", encoding="utf-8"
    )
    pub = Catalog.load(tmp_path / "pub")
    assert pub.groups.to_pylist()[0]["mean_cost_fen"] == 120_000  # 800 / 1000 x ¥1,500
    (tmp_path / "pub" / "groups.csv").write_text(
        "group_code,kind,dx_key,proc_key,proc_type,points\nJ18.9|-,core,J18.9,,conservative,-3\n", encoding="utf-8"
    )
    with pytest.raises(Exception) as e:
        Catalog.load(tmp_path / "pub")
    assert getattr(e.value, "field", None) == "points"


def test_national_codes_by_default_and_who_when_declared():
    """The default region takes 医保版 codes only; a region declaring WHO ICD-10 takes WHO codes, keyed the same way."""
    who = {"K80.200x003": "K80.2", "J18.900": "J18.9", "K81.000": "K81.0", "I20.000": "I20.0"}
    df = region()
    df["dise_codg"] = df["dise_codg"].map(who)
    with pytest.raises(
        PaymentInputError,
        match=r"unknown principal diagnosis \['I20.0', 'J18.9', 'K80.2', 'K81.0'\] \(not in 医保版 ICD-10 2.0\)",
    ) as e:
        load_cases(connect(), df, params())
    assert e.value.field == "dise_codg"
    _, _, cat = run(df, params(coding={"diagnosis_systems": ["who-icd10"]}))
    _, _, nat = run(region(), params())
    assert {r["group_code"] for r in cat.groups.to_pylist()} == {r["group_code"] for r in nat.groups.to_pylist()}
    with pytest.raises(Exception, match="diagnosis_systems"):
        params(coding={"diagnosis_systems": ["icd-11"]})


def test_national_keys_and_procedure_types():
    p, codes = load_dip_params("example-city-a"), CodeTables.default()  # severity weights E11: 1, I50: 2
    k = case_keys("I10.x00x002", "E11.900;I50.900", "36.0601;87.0300x001", p, codes)
    assert (k.dx_key, k.dx_cat, k.dx_chapter, k.proc_key, k.proc_type, k.sev_score) == (
        "I10.x",
        "I10",
        "IX",
        "36.0601+87.0300x001",
        "surgery",
        3,
    )
    # a national procedure the procedure list does not name is typed by its ICD-9-CM-3 section
    assert codes.is_known_procedure("88.7400") and not codes.is_known_procedure("88.74")
    assert [codes.type_of(c) for c in ("88.7400", "92.2400x002", "96.7101", "81.5100")] == [
        "diagnostic",
        "therapy",
        "therapy",
        "surgery",
    ]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"dise_codg": ""}, "dise_codg"),
        ({"dise_codg": None}, "dise_codg"),
        ({"dise_codg": "Q99.99X"}, "dise_codg"),
        ({"other_dise_codg": "ZZZ"}, "other_dise_codg"),
        ({"oprn_codg": "99.99"}, "oprn_codg"),
        ({"dise_codg": "J18.9"}, "dise_codg"),  # WHO ICD-10, not a 医保版 code: refused unless the region declares WHO
        ({"oprn_codg": "47.09"}, "oprn_codg"),  # an ICD-9-CM-3 stem, not a 医保版 code
        ({"medfee_sumamt": -1}, "medfee_sumamt"),
        ({"psn_part_amt": -5}, "psn_part_amt"),
        ({"endtime": dt.datetime(2025, 1, 1, tzinfo=TZ)}, "endtime"),
        ({"medfee_sumamt": None}, "medfee_sumamt"),
    ],
)
def test_bad_input_is_refused_naming_the_field(change, field):
    df = region()
    for k, v in change.items():
        df[k] = df[k].astype(object)
        df.loc[5, k] = v
    con = connect()
    with pytest.raises(PaymentInputError) as e:
        load_cases(con, df, params())
    assert e.value.field == field
    assert "M0006" in str(e.value)
    assert e.value.message_zh and e.value.message_en


def test_bad_parameter_files_are_refused(tmp_path):
    from yibao.core.errors import PolicyError

    base = "name: x\nregion: '1'\nversion: '1'\neffective_from: 2025-01-01\n"
    for body, field in [
        ("budget: {basis: fund}\n", "budget"),
        ("budget: {annual: '1'}\noutliers: {high: {above_ratio: 0.5}, low: {below_ratio: 0.5}}\n", "outliers"),
        ("budget: {annual: '1'}\ncatalog: {diagnosis_level: chapter}\n", "catalog.diagnosis_level"),
        (
            "budget: {annual: '1'}\ncoefficients: {age: [{min: 0, max: 10, coef: 1.1}, {min: 5, max: 20, coef: "
            "1.2}]}\n",
            "coefficients",
        ),
    ]:
        f = tmp_path / "bad.yaml"
        f.write_text(base + body, encoding="utf-8")
        with pytest.raises(PolicyError) as e:
            load_dip_params(f)
        assert e.value.field.startswith(field), (body, e.value.field)


def test_cases_discharged_in_another_year_are_left_out():
    """A case admitted in December and discharged in January belongs to the new year's DIP budget."""
    p = params()
    con, cases, cat = run(region(), p)
    late = case(
        13,
        "H1",
        "J18.900",
        800,
        begin=dt.datetime(2025, 12, 29, 9, tzinfo=TZ),
        end=dt.datetime(2026, 1, 4, 9, tzinfo=TZ),
        month=1,
    )
    cases2 = load_cases(con, pd.concat([region(), pd.DataFrame([late])], ignore_index=True), p, name="with_late")
    res = settle(con, cases2, cat, p)
    assert (res.year, res.outside_year) == (2025, 1)
    y = res.institutions[res.institutions.period == 0].set_index("fixmedins_code")
    assert y.value_fen.to_dict() == {"H1": 603_226, "H2": 548_387, "H3": 548_387}  # as without the late case
    assert "M0013" not in set(res.cases.mdtrt_id)
    res26 = settle(con, cases2, cat, p, year=2026)
    assert (res26.year, res26.outside_year, list(res26.cases.mdtrt_id)) == (2026, 12, ["M0013"])
