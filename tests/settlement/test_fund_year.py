"""Year runner, fund-year analytics and the HTML report on a tiny hand-made region."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import ITEMS
from yibao.benefits.policy import PolicyBook
from yibao.core.contract import ENCOUNTER, FAMILY_LINK, FEE_DETAIL, INSTITUTION, MED_LIST, PERSON, with_metadata
from yibao.settlement.annual import settle_year
from yibao.settlement.fundyear import fund_year
from yibao.web.report import render_report

TZ = dt.timezone(dt.timedelta(hours=8))


def _write(d: Path, name: str, schema: pa.Schema, rows: list[dict]) -> None:
    meta = {**with_metadata(schema, name).metadata, **(schema.metadata or {})}  # the contract's, plus the caller's
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.with_metadata(meta)), d / f"{name}.parquet")


@pytest.fixture()
def region(tmp_path: Path) -> Path:
    base = {
        "certno": "x",
        "psn_name": "合成",
        "gend": "1",
        "civil_servant": False,
        "insuplc_admdvs": "990100",
        "family_id": "F1",
        "synthetic": True,
    }
    persons = [
        {
            **base,
            "psn_no": "E1",
            "brdy": dt.date(1980, 1, 1),
            "insutype": "310",
            "psn_type": "in_service",
            "assistance": "",
            "contribution_base": 1_000_000,
            "acct_balc": 50_000,
        },
        {
            **base,
            "psn_no": "E2",
            "brdy": dt.date(1950, 1, 1),
            "insutype": "310",
            "psn_type": "retired",
            "assistance": "",
            "contribution_base": 0,
            "acct_balc": 0,
        },
        {
            **base,
            "psn_no": "R1",
            "brdy": dt.date(1948, 1, 1),
            "insutype": "390",
            "psn_type": "resident",
            "assistance": "dibao",
            "contribution_base": 0,
            "acct_balc": 0,
        },
    ]
    _write(tmp_path, "person", PERSON, persons)
    _write(
        tmp_path,
        "family_link",
        FAMILY_LINK,
        [
            {"psn_no": "R1", "relative_psn_no": "E1", "relation": "child", "synthetic": True},
            {"psn_no": "E1", "relative_psn_no": "R1", "relation": "parent", "synthetic": True},
        ],
    )
    _write(
        tmp_path,
        "institution",
        INSTITUTION,
        [
            {
                "fixmedins_code": "H3",
                "fixmedins_name": "三级医院",
                "fixmedins_type": "hospital",
                "hosp_lv": 3,
                "admdvs": "990101",
                "synthetic": True,
            },
            {
                "fixmedins_code": "D0",
                "fixmedins_name": "药店",
                "fixmedins_type": "pharmacy",
                "hosp_lv": 0,
                "admdvs": "990101",
                "synthetic": True,
            },
        ],
    )
    _write(
        tmp_path, "med_list", MED_LIST.with_metadata({b"yibao.code_structure": b"local"}), ITEMS
    )  # hand-made codes (A-DRUG)
    enc_base = {
        "other_dise_codg": "",
        "oprn_codg": "",
        "dscg_way": "",
        "dept_code": "",
        "dr_code": "",
        "mdtrtarea_admvs": "990100",
        "mulaid_payer_psn_no": "",
        "lt_rx_confirmed": False,
        "synthetic": True,
        "policy_year": 2025,
    }
    encs = [
        {
            **enc_base,
            "mdtrt_id": "M1",
            "psn_no": "E1",
            "fixmedins_code": "H3",
            "med_type": "21",
            "begntime": dt.datetime(2025, 3, 1, 9, tzinfo=TZ),
            "endtime": dt.datetime(2025, 3, 5, 9, tzinfo=TZ),
            "dise_codg": "J18.9",
        },
        {
            **enc_base,
            "mdtrt_id": "M2",
            "psn_no": "R1",
            "fixmedins_code": "H3",
            "med_type": "21",
            "begntime": dt.datetime(2025, 6, 1, 9, tzinfo=TZ),
            "endtime": dt.datetime(2025, 6, 20, 9, tzinfo=TZ),
            "dise_codg": "J18.9",
        },
        {
            **enc_base,
            "mdtrt_id": "M3",
            "psn_no": "R1",
            "fixmedins_code": "D0",
            "med_type": "41",
            "begntime": dt.datetime(2025, 7, 1, 9, tzinfo=TZ),
            "endtime": dt.datetime(2025, 7, 1, 9, tzinfo=TZ),
            "dise_codg": "I10",
            "mulaid_payer_psn_no": "E1",
        },
        {
            **enc_base,
            "mdtrt_id": "M4",
            "psn_no": "E2",
            "fixmedins_code": "H3",
            "med_type": "99",
            "begntime": dt.datetime(2025, 8, 1, 9, tzinfo=TZ),
            "endtime": dt.datetime(2025, 8, 1, 9, tzinfo=TZ),
            "dise_codg": "I10",
        },
    ]
    _write(tmp_path, "encounter", ENCOUNTER, encs)
    fb = {
        "fee_ocur_time": dt.datetime(2025, 3, 2, tzinfo=TZ),
        "rxno": "",
        "rx_circ_flag": False,
        "prd_days": 0,
        "bilg_dr_code": "",
        "synthetic": True,
    }
    fees = [
        {
            **fb,
            "mdtrt_id": "M1",
            "feedetl_sn": 1,
            "med_list_codg": "A-DRUG",
            "cnt_milli": 1000,
            "pric": 1_000_000,
            "det_item_fee_sumamt": 1_000_000,
        },
        {
            **fb,
            "mdtrt_id": "M2",
            "feedetl_sn": 1,
            "med_list_codg": "A-DRUG",
            "cnt_milli": 1000,
            "pric": 10_000_000,
            "det_item_fee_sumamt": 10_000_000,
        },
        {
            **fb,
            "mdtrt_id": "M3",
            "feedetl_sn": 1,
            "med_list_codg": "AMLO",
            "cnt_milli": 10_000,
            "pric": 3_000,
            "det_item_fee_sumamt": 30_000,
        },
        {
            **fb,
            "mdtrt_id": "M4",
            "feedetl_sn": 1,
            "med_list_codg": "A-DRUG",
            "cnt_milli": 1000,
            "pric": 100,
            "det_item_fee_sumamt": 100,
        },
    ]
    _write(tmp_path, "fee_detail", FEE_DETAIL, fees)
    return tmp_path


def test_year_runner_and_fund_year(region: Path):
    res = settle_year(region)
    s = {r["mdtrt_id"]: r for r in res.batch.settlements.to_pylist()}
    assert set(s) == {"M1", "M2", "M3"}
    assert list(res.batch.rejected["mdtrt_id"]) == ["M4"]  # unknown med_type 99
    assert all(r["synthetic"] for r in s.values())
    # E1: employee, level 3, deductible ¥1,000, 85 % (example city A) → ¥7,650; account pays from ¥500 + 3 credits
    assert s["M1"]["hifp_pay"] == 765_000
    assert s["M1"]["acct_pay"] == 50_000 + 3 * 20_000
    # R1 (低保): resident level 3: ¥100,000 − ¥1,000 at 65 % = ¥64,350, then critical illness and assistance
    assert s["M2"]["hifp_pay"] == 6_435_000 and s["M2"]["hifmi_pay"] > 0 and s["M2"]["maf_pay"] > 0
    # pharmacy purchase paid by the child's account (mutual aid)
    assert s["M3"]["acct_mulaid_pay"] == 30_000
    snap = PolicyBook.default().snapshot("990100", dt.date(2025, 7, 1))
    fy = fund_year(region, snap, 2025)
    t = fy.totals.iloc[0]
    assert int(t["claims"]) == 3
    for f in ("medfee_sumamt", "hifp_pay", "hifmi_pay", "maf_pay", "acct_pay", "acct_mulaid_pay", "psn_cash_pay"):
        assert int(t[f]) == sum(r[f] for r in s.values())
    inc = dict(zip(fy.income["item"], fy.income["fen"], strict=True))
    assert inc["employee pooled fund (employer contributions)"] == 12 * 80_000  # 8 % of ¥10,000 × 12
    assert inc["employee personal accounts (own contributions)"] == 12 * 20_000
    assert inc["retiree account credits paid from the pooled fund"] == -12 * 9_000
    assert inc["resident fund: individual premiums"] == 38_000
    a = fy.assistance.set_index("status").loc["dibao"]
    assert int(a["people_helped"]) == 1 and int(a["maf_pay"]) == s["M2"]["maf_pay"]
    months = fy.by_month.groupby("month")["claims"].sum()
    assert list(months.index.astype(str)) == ["2025-03-01", "2025-06-01", "2025-07-01"]
    out = render_report(fy, region / "report.html")
    html = out.read_text(encoding="utf-8")
    assert "SYNTHETIC DATA" in html and 'class="ychart"' in html and "医疗救助" in html


def test_the_default_fund_year_is_not_an_almost_empty_one(region: Path):
    """A stay settled on 1 January of the next year does not make that year the report's default (issue 17.6)."""
    settle_year(region)
    path = region / "settlement.parquet"
    t = pq.read_table(path)
    rows = [dict(r, setl_id=f"{r['setl_id']}-{k}") for k in range(8) for r in t.to_pylist()]  # 24 in 2025
    late = dict(rows[0], setl_id="S-LATE", policy_year=2026)
    pq.write_table(pa.Table.from_pylist(rows + [late], schema=t.schema), path)
    snap = PolicyBook.default().snapshot("990100", dt.date(2025, 7, 1))
    assert fund_year(region, snap).year == 2025
    rows2 = rows + [dict(rows[0], setl_id=f"S-{i}", policy_year=2026) for i in range(len(rows))]
    pq.write_table(pa.Table.from_pylist(rows2, schema=t.schema), path)
    assert fund_year(region, snap).year == 2026  # a real second year is the latest
