"""Round input: CSV directory and Excel workbook, and bad input with errors naming row and field."""

from __future__ import annotations

import pandas as pd
import pytest

from yibao.procurement.engine import run_round
from yibao.procurement.io import RoundInputError, load_round, validate_against_rules, write_round_dir
from yibao.procurement.params import get_ruleset
from yibao.synth.procurement import generate_round


def _write(tmp_path, **over):
    tables = {
        "catalog": "drug_id,generic_name,dosage_form,passed_consistency,competitors\nD1,氨氯地平片,oral_solid,4,6\n",
        "specs": "spec_id,drug_id,content_mg,units_per_pack,max_price,representative\nS1,D1,5,7,7.00,true\n"
        "S2,D1,10,7,11.90,false\n",
        "firms": "firm_id,name,credit_grade\nA,甲药业,good\nB,乙药业,good\nC,丙药业,ordinary\n",
        "bids": "bid_id,drug_id,spec_id,firm_id,price\nb1,D1,S1,A,1.40\nb2,D1,S1,B,2.10\nb3,D1,S2,C,2.38\n",
        "demand": "institution_id,region,drug_id,spec_id,units\nH1,110000,D1,S1,1000\nH2,120000,D1,S2,500\n",
    }
    tables.update(over)
    for k, v in tables.items():
        (tmp_path / f"{k}.csv").write_text(v, encoding="utf-8")
    (tmp_path / "round.yaml").write_text("name: t\nround_date: 2025-03-01\n", encoding="utf-8")
    return tmp_path


def test_csv_round_loads_and_runs(tmp_path):
    inp = load_round(_write(tmp_path))
    rules = get_ruleset("national-batch-02")
    validate_against_rules(inp, rules)
    res = run_round(inp, rules)
    # unit comparable: A 0.20, B 0.30, C 0.34/1.7 = 0.20 -> A and C tie on price; C's credit grade is worse
    ranks = {o.firm_id: o.rank for o in res.drugs["D1"].outcomes}
    assert ranks == {"A": 1, "C": 2, "B": 3}
    assert res.drugs["D1"].outcomes[0].comparable_e4 == 2000


@pytest.mark.parametrize(
    "table, text, row, field, words",
    [
        (
            "bids",
            "bid_id,drug_id,spec_id,firm_id,price\nb1,D1,S1,A,1.40\nb2,D1,S9,B,2.10\n",
            3,
            "spec_id",
            "unknown specification 'S9'",
        ),
        (
            "bids",
            "bid_id,drug_id,spec_id,firm_id,price\nb1,D1,S1,A,1.40\nb2,D1,S1,A,2.10\n",
            3,
            "firm_id",
            "duplicate bidder",
        ),
        (
            "bids",
            "bid_id,drug_id,spec_id,firm_id,price\nb1,D1,S1,A,1.401\n",
            2,
            "price",
            "more than two decimal places",
        ),
        ("bids", "bid_id,drug_id,spec_id,firm_id,price\nb1,D1,S1,Z,1.40\n", 2, "firm_id", "unknown firm 'Z'"),
        (
            "demand",
            "institution_id,region,drug_id,spec_id,units\nH1,110000,D1,S1,1000\nH2,110000,D1,S1,-5\n",
            3,
            "units",
            "negative demand",
        ),
        ("demand", "institution_id,region,drug_id,spec_id,units\nH1,110000,D1,S1,\n", 2, "units", "missing demand"),
        (
            "demand",
            "institution_id,region,drug_id,spec_id,units\nH1,110000,D1,S1,12.5\n",
            2,
            "units",
            "not a whole number",
        ),
        (
            "demand",
            "institution_id,region,drug_id,spec_id,units\nH1,110000,D1,S7,10\n",
            2,
            "spec_id",
            "unknown specification",
        ),
        ("demand", "institution_id,region,drug_id,units\nH1,110000,D1,10\n", None, "spec_id", "missing column"),
        (
            "specs",
            "spec_id,drug_id,content_mg,units_per_pack,max_price\nS1,D1,5,0,7.00\n",
            2,
            "units_per_pack",
            "must be >= 1",
        ),
        ("catalog", "drug_id,generic_name,dosage_form\nD1,x,pill\n", 2, "dosage_form", "unknown dosage form"),
        (
            "catalog",
            "drug_id,generic_name,dosage_form,med_list_codg\nD1,x,oral_solid,NOPE99\n",
            2,
            "med_list_codg",
            "unknown medical-list code",
        ),
    ],
)
def test_bad_input_names_row_and_field(tmp_path, table, text, row, field, words):
    _write(tmp_path, **{table: text})
    with pytest.raises(RoundInputError) as ei:
        load_round(tmp_path)
    e = ei.value
    assert e.row == row and e.field == field and words in str(e), str(e)
    assert f"{table}.csv" in str(e) and e.message_zh


def test_bid_above_the_ceiling(tmp_path):
    inp = load_round(_write(tmp_path, bids="bid_id,drug_id,spec_id,firm_id,price\nb1,D1,S1,A,1.40\nb2,D1,S2,B,11.91\n"))
    with pytest.raises(RoundInputError) as ei:
        validate_against_rules(inp, get_ruleset("national-batch-02"))
    assert (
        ei.value.row == 3 and ei.value.field == "price" and "above the maximum valid bid price 11.90" in str(ei.value)
    )


def test_excel_workbook_with_chinese_sheets_and_columns(tmp_path):
    _write(tmp_path)
    book = tmp_path / "round.xlsx"
    zh = {"catalog": "采购目录", "specs": "规格", "firms": "企业", "bids": "投标", "demand": "报量"}
    with pd.ExcelWriter(book) as xw:
        for t, sheet in zh.items():
            df = pd.read_csv(tmp_path / f"{t}.csv", dtype=str)
            if t == "bids":
                df = df.rename(columns={"bid_id": "申报编码", "firm_id": "企业编码", "price": "申报价"})
            df.to_excel(xw, sheet_name=sheet, index=False)
        pd.DataFrame({"k": ["name", "round_date"], "v": ["xl", "2025-03-01"]}).to_excel(
            xw, sheet_name="round", index=False
        )
    inp = load_round(book)
    assert inp.name == "xl" and len(inp.bids) == 3 and inp.bids[2].price_fen == 238


def test_round_dir_round_trip(tmp_path):
    sr = generate_round(drugs=3, institutions=50, seed=5)
    sr.round.relations = sr.relations
    write_round_dir(sr.round, tmp_path / "r")
    back = load_round(tmp_path / "r")
    assert back.synthetic and len(back.bids) == len(sr.round.bids) and len(back.relations) == len(sr.relations)
    rules = get_ruleset("national-batch-07")
    a, b = run_round(sr.round, rules), run_round(back, rules)
    assert a.outcome_rows() == b.outcome_rows()
    assert int(a.contracts["amount_fen"].sum()) == int(b.contracts["amount_fen"].sum())


def test_reports_excel_html_and_ocds(tmp_path):
    import json

    from openpyxl import load_workbook

    from yibao.procurement.report import render_html, to_ocds, validate_ocds, write_excel, write_ocds

    sr = generate_round(drugs=3, institutions=80, seed=9)
    res = run_round(sr.round, get_ruleset("national-batch-07"))
    wb = load_workbook(write_excel(sr.round, res, tmp_path / "r.xlsx"))
    assert wb.sheetnames == ["round", "drugs 品种", "bidders 企业", "regions 供应地区", "contracts 协议"]
    assert wb["bidders 企业"].max_row == 1 + sum(len(d.outcomes) for d in res.drugs.values())
    html = render_html(sr.round, res)
    assert "SYNTHETIC DATA" in html and "reason" in html
    pkg = json.loads(write_ocds(sr.round, res, tmp_path / "o.json").read_text(encoding="utf-8"))
    assert len(pkg["releases"]) == 3 and validate_ocds(pkg) == []
    rel = pkg["releases"][0]
    n_bids = sum(1 for b in sr.round.bids if b.drug_id == rel["ocid"].rsplit("-", 1)[1])
    assert len(rel["bids"]["details"]) == n_bids
    assert {a["suppliers"][0]["id"] for a in rel["awards"]} == {
        w.firm_id for w in res.drugs[rel["ocid"].rsplit("-", 1)[1]].winners
    }
    bad = to_ocds(sr.round, res)
    del bad["releases"][0]["ocid"]
    assert any("ocid" in e for e in validate_ocds(bad))
