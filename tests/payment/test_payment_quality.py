"""Coding quality flags on constructed cases; the end-to-end run, reports, CLI and API on a small synthetic region."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from yibao.payment.quality import case_flags, hospital_view, load_quality_rules, peer_comparison, top_flagged_groups
from yibao.supervision.coding import detect

TZ = dt.timezone(dt.timedelta(hours=8))
R = load_quality_rules()


def c(
    i,
    psn="P1",
    inst="H1",
    dx="J18.9",
    begin=(1, 1),
    days=5,
    cost=100_000,
    sev="none",
    adrg="RESP-M1",
    drg="RESP-M1-5",
    path="medical",
    other="",
    gend="1",
    age=40,
    kind="normal",
    proc_type="conservative",
    lv=2,
    month=1,
):
    b = dt.datetime(2025, begin[0], begin[1], 9, tzinfo=TZ)
    return {
        "mdtrt_id": f"M{i}",
        "psn_no": psn,
        "fixmedins_code": inst,
        "hosp_lv": lv,
        "dept_code": "D",
        "begntime": b,
        "endtime": b + dt.timedelta(days=days),
        "setl_month": month,
        "age": age,
        "gend": gend,
        "dise_codg": dx,
        "other_dise_codg": other,
        "oprn_codg": "",
        "medfee_sumamt": cost,
        "severity": sev,
        "adrg": adrg,
        "drg": drg,
        "path": path,
        "rw_e4": 10_000,
        "kind": kind,
        "proc_type": proc_type,
        "group_code": "J18.9|-",
        "value_fen": cost,
        "drg_value_fen": cost,
    }


NO_ITEMS = pd.DataFrame({"mdtrt_id": pd.Series([], dtype=object), "med_list_codg": pd.Series([], dtype=object)})


def flags_of(rows, items=NO_ITEMS):
    df = pd.DataFrame(rows)
    f = case_flags(df, R, detect(df, items))
    return {(m, k) for m, k in zip(f.mdtrt_id, f.flag, strict=True)}


def test_upcoding_is_the_shared_detector():
    # respiratory failure (J96) coded as a secondary diagnosis: upcoding unless ventilation (990300000170000) is billed
    rows = [c(1, psn="X", other="I10;J96.000"), c(2, psn="Y", other="J96.000"), c(3, psn="Z", other="I10")]
    items = pd.DataFrame({"mdtrt_id": ["M2", "M3"], "med_list_codg": ["990300000170000", "990300000170000"]})
    f = {k for k in flags_of(rows, items) if k[1] == "upcoding"}
    assert f == {("M1", "upcoding")}
    # payment keeps only the detector's flags of its own cases
    df = pd.DataFrame(rows[1:])
    assert not (case_flags(df, R, detect(pd.DataFrame(rows), items)).mdtrt_id == "M1").any()


def test_split_admission():
    rows = [
        c(1, psn="A", begin=(3, 1), days=5),  # discharged 3-6
        c(2, psn="A", begin=(3, 7), days=3),  # readmitted a day later, same category: flagged
        c(3, psn="A", begin=(5, 1), days=3),  # weeks later: not flagged
        c(4, psn="B", begin=(3, 1), days=5),
        c(5, psn="B", begin=(3, 8), days=2, dx="K80.2"),  # different category: not flagged
        c(6, psn="C", begin=(3, 1), days=5),
        c(7, psn="C", inst="H2", begin=(3, 7), days=2),  # another institution: not flagged
    ]
    f = {k for k in flags_of(rows) if k[1] == "split_admission"}
    assert f == {("M2", "split_admission")}


def test_coding_flags_need_the_detector_columns():
    from yibao.core.errors import PolicyError

    with pytest.raises(PolicyError, match="coding flags need"):
        case_flags(pd.DataFrame([c(1)]), R, pd.DataFrame({"mdtrt_id": ["M1"]}))


def test_miscoding_flags():
    rows = [
        c(1, dx="O80.0", gend="1", age=30),  # pregnancy code for a man
        c(2, dx="N40", gend="2", age=60),  # prostate for a woman
        c(3, dx="O80.0", gend="2", age=70),  # delivery at 70
        c(4, path="ambiguous", drg="DIGE-QY"),
        c(5, path="ungroupable", drg="0000"),
        c(6, dx="R10.4", proc_type="surgery"),
        c(7, kind="low", proc_type="surgery"),
        c(8, dx="J18.9", other="I10;J18.9"),
        c(9),  # clean
    ]
    f = flags_of(rows)
    assert ("M1", "sex_mismatch") in f and ("M2", "sex_mismatch") in f and ("M3", "age_mismatch") in f
    assert ("M4", "ambiguous_group") in f and ("M5", "ungroupable") in f and ("M6", "symptom_principal") in f
    assert ("M7", "procedure_cost_mismatch") in f and ("M8", "secondary_equals_principal") in f
    assert not {k for k in f if k[0] == "M9"}
    top = top_flagged_groups(
        pd.DataFrame(rows), case_flags(pd.DataFrame(rows), R, detect(pd.DataFrame(rows), NO_ITEMS)), "drg"
    )
    assert top.iloc[0].drg == "RESP-M1-5" and (top.iloc[0].cases, top.iloc[0].flagged) == (7, 6)


def test_peer_comparison_and_hospital_view():
    rows = [c(i, inst="H1", sev="cc" if i < 20 else "none", lv=2) for i in range(40)]
    rows += [c(100 + i, inst=f"H{2 + i % 3}", psn=f"Q{i}", lv=2) for i in range(120)]
    df = pd.DataFrame(rows)
    p = peer_comparison(df, R).set_index("fixmedins_code")
    assert p.loc["H1", "cc_share"] == 0.5 and p.loc["H2", "cc_share"] == 0.0
    assert bool(p.loc["H1", "flag_cc_share"]) and not bool(p.loc["H2", "flag_cc_share"])
    hv = hospital_view(df.assign(value_fen=df.medfee_sumamt + 10), ("fixmedins_code",)).set_index("fixmedins_code")
    assert hv.loc["H1", "dip_gain_fen"] == 40 * 10 and hv.loc["H1", "cases"] == 40


@pytest.fixture(scope="module")
def small_region(tmp_path_factory):
    import shutil

    from yibao.settlement.annual import settle_year
    from yibao.synth.cli import run_synth

    d = tmp_path_factory.mktemp("payreg") / "region"
    run_synth(people=3000, seed=5, out=d, db=None, year=2025)
    shutil.copytree(d, d.parent / "unsettled")
    settle_year(d)
    return d


def test_unsettled_region_builds_a_catalog_but_is_not_settled(small_region):
    from yibao.payment.cases import PaymentInputError, connect, load_cases
    from yibao.payment.params import load_dip_params
    from yibao.payment.service import build

    un = small_region.parent / "unsettled"
    a, b = build(un), build(small_region)
    assert a.groups.equals(b.groups) and a.total_cost_fen == b.total_cost_fen  # fee lines sum to the settled cost
    with pytest.raises(PaymentInputError) as e:
        load_cases(connect(), un, load_dip_params())
    assert e.value.field == "psn_part_amt"


def test_slim_enrichment_settles_the_same(small_region):
    from yibao.payment.cases import connect, load_cases
    from yibao.payment.catalog import build_catalog
    from yibao.payment.dip import settle
    from yibao.payment.params import load_dip_params

    p = load_dip_params()
    out = []
    for detail in (True, False):
        con = connect()
        c = load_cases(con, small_region, p, detail=detail)
        out.append(settle(con, c, build_catalog(con, c, p), p))
    assert out[0].institutions.equals(out[1].institutions)
    assert (
        out[0]
        .cases[["mdtrt_id", "points_e4", "value_fen"]]
        .equals(out[1].cases[["mdtrt_id", "points_e4", "value_fen"]])
    )


def test_run_reports_cli_and_api(small_region, tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from yibao.cli import app
    from yibao.demo.sections import payment_sections as demo_sections
    from yibao.payment.api import router
    from yibao.payment.report import write_excel, write_html
    from yibao.payment.service import run

    r = run(small_region)
    y = r.dip.institutions[r.dip.institutions.period == 0]
    assert int(y.payment_fen.sum()) == r.dip.budget_fen  # basis fund: pooled-fund payments = budget, to the fen
    assert r.synthetic
    secs = demo_sections(small_region)
    assert len(secs) == 3 and all("SYNTHETIC" in h for _, h in secs)
    assert "point value" in write_html(r, tmp_path / "p.html").read_text(encoding="utf-8")
    import openpyxl

    wb = openpyxl.load_workbook(write_excel(r, tmp_path / "p.xlsx"), read_only=True)
    assert {
        "institutions",
        "periods",
        "catalog",
        "cases",
        "hospital_view_dip",
        "hospital_view_drg",
        "top_flagged_drg",
        "peers",
    } <= set(wb.sheetnames)
    inst = pd.read_excel(tmp_path / "p.xlsx", sheet_name="institutions")
    assert int(inst.payment_fen.sum()) == r.dip.budget_fen
    cli = CliRunner()
    res = cli.invoke(app, ["payment", "dip", "build", "--data", str(small_region), "--out", str(tmp_path / "cat")])
    assert res.exit_code == 0, res.output
    res = cli.invoke(
        app,
        [
            "payment",
            "dip",
            "settle",
            "--data",
            str(small_region),
            "--catalog",
            str(tmp_path / "cat"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "dip_institutions.parquet").exists()
    res = cli.invoke(app, ["payment", "drg", "group", "--data", str(small_region)])
    assert res.exit_code == 0 and "CMI by institution" in res.output, res.output
    res = cli.invoke(
        app, ["drg", "case", "--scheme", "sample", "--main-diag", "I21.9", "--oprns", "36.0700", "--age", "70"]
    )
    assert res.exit_code == 0 and "CIRC-S1-5" in res.output, res.output
    res = cli.invoke(app, ["drg", "case", "--main-diag", "", "--age", "70"])
    assert res.exit_code == 2 and "main_diag" in res.output
    api = FastAPI()
    api.include_router(router)
    api.state.dip_catalog = r.catalog
    http = TestClient(api)
    out = http.post("/api/v1/payment/drg/group?scheme=sample", json={"main_diag": "J18.9", "age": 5}).json()
    assert out["drg"] == "RESP-M1-7"
    out = http.post("/api/v1/payment/drg/group?explain=true", json={"main_diag": "J18.900", "age": 40}).json()
    assert out["mdc"] == "E" and out["status"] == "ok" and out["rw"] and out["path"][0].startswith("MDC E")
    bad = http.post("/api/v1/payment/drg/group", json={"main_diag": "", "age": 5})
    assert bad.status_code == 400 and bad.json()["detail"]["field"] == "main_diag"
    many = http.post(
        "/api/v1/payment/drg/group-batch?scheme=sample",
        json=[
            {"main_diag": "J18.9", "age": 5},
            {"main_diag": "I21.9", "oprns": ["36.0700"], "age": 70},
            {"main_diag": "XX", "age": 1},
        ],
    ).json()
    assert [m["drg"] for m in many] == ["RESP-M1-7", "CIRC-S1-5", ""]
    assert many[2]["status"].startswith("refused: main_diag")
    pts = http.post(
        "/api/v1/payment/dip/case-points",
        json={"dise_codg": "J18.900", "age": 40, "hosp_lv": 3, "medfee_sumamt": 400_000},
    ).json()
    assert pts["group_code"] == "J18.9|-"
    bad = http.post(
        "/api/v1/payment/dip/case-points", json={"dise_codg": "J18.900", "age": 40, "hosp_lv": 3, "medfee_sumamt": -1}
    )
    assert bad.status_code == 400 and bad.json()["detail"]["field"] == "medfee_sumamt"
