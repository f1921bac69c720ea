"""Inventory, purchase and last-year reports as import formats: validated, clear one-line errors, and the
monitor uses them in place of synthetic data (which stays bannered when it is still used)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from yibao.procurement.execution_io import read_report
from yibao.procurement.io import RoundInputError
from yibao.procurement.monitor import inventory_check, non_winning_check

CONTRACTS = pd.DataFrame(
    [
        ("H1", "R1", "D1", "S1", "A", 1200, 500, 10, 60000),
        ("H2", "R1", "D1", "S1", "A", 2400, 500, 10, 120000),
    ],
    columns=[
        "institution_id",
        "region",
        "drug_id",
        "spec_id",
        "supplier",
        "agreed_units",
        "price_fen",
        "units_per_pack",
        "amount_fen",
    ],
)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_inventory_report_in_chinese_headers_with_calendar_months(tmp_path):
    p = _write(tmp_path, "库存.csv", '中选企业,品种编码,月份,库存数量\nA,D1,2025-03,"1,000"\nA,D1,2025-04,100\n')
    df = read_report(p, "inventory", cycle_start="2025-03", contracts=CONTRACTS)
    assert df.to_dict("records") == [
        {"supplier": "A", "drug_id": "D1", "month": 1, "stock_units": 1000},
        {"supplier": "A", "drug_id": "D1", "month": 2, "stock_units": 100},
    ]
    # monthly agreed volume 3600 / 12 = 300: 1000 covers 3.33 months; 100 is low; month 3 is missing
    inv = inventory_check(df, CONTRACTS, [1, 2, 3])
    assert list(inv["alert"]) == ["", "stock below 1 month(s) of agreed volume", "missing report"]


def test_purchase_report_from_excel(tmp_path):
    p = tmp_path / "orders.xlsx"
    pd.DataFrame(
        [("o1", "H1", "D1", "S1", "A", "560", "1"), ("o2", "H2", "D1", "S1", "X", "99", "2")],
        columns=["订单编号", "医疗机构编码", "品种编码", "规格编码", "供应企业", "采购数量", "月份"],
    ).to_excel(p, index=False)
    df = read_report(p, "purchases", contracts=CONTRACTS)
    assert list(df["units"]) == [560, 99] and df["units"].dtype == "int64" and list(df["supplier"]) == ["A", "X"]
    last = read_report(_write(tmp_path, "last.csv", "institution_id,drug_id,nonwinning_units\nH2,D1,50\n"), "last_year")
    nw = non_winning_check(df, CONTRACTS, last)
    assert nw.iloc[0]["reason"] == "above last year's 50; above the winning products' 0"
    # no last-year report: only the winners' cap is checked, the last-year column stays empty
    nw = non_winning_check(df, CONTRACTS, None)
    assert nw.iloc[0]["reason"] == "above the winning products' 0" and nw["last_year_units"].isna().all()


@pytest.mark.parametrize(
    "kind,text,row,field,words",
    [
        ("inventory", "supplier,drug_id,month\nA,D1,1\n", None, "stock_units", "missing column"),
        (
            "inventory",
            "supplier,drug_id,month,stock_units\nA,D1,1,10\nA,D1,2,-5\n",
            3,
            "stock_units",
            "not a whole number",
        ),
        ("inventory", "supplier,drug_id,month,stock_units\nA,D1,1,2.5\n", 2, "stock_units", "not a whole number"),
        ("inventory", "supplier,drug_id,month,stock_units\nA,D1,1,\n", 2, "stock_units", "blank"),
        (
            "inventory",
            "supplier,drug_id,month,stock_units\nA,D1,1,10\nA,D1,1,12\n",
            3,
            "supplier/drug_id/month",
            "duplicate line",
        ),
        ("inventory", "supplier,drug_id,month,stock_units\nA,D1,March,10\n", 2, "month", "neither a cycle month"),
        ("inventory", "supplier,drug_id,month,stock_units\nA,D1,2025-04,10\n", 2, "month", "needs the cycle start"),
        ("inventory", "supplier,drug_id,month,stock_units\nA,D1,0,10\n", 2, "month", "outside the cycle"),
        (
            "inventory",
            "supplier,drug_id,month,stock_units\nZ,D1,1,10\n",
            2,
            "supplier",
            "not a winner holding a contract",
        ),
        ("inventory", "supplier,drug_id,month,stock_units\nA,D9,1,10\n", 2, "drug_id", "not a drug of this round"),
        (
            "purchases",
            "order_id,institution_id,drug_id,spec_id,supplier,units,month\no1,H1,D1,S1,A,5,1\no1,H2,D1,S1,A,5,1\n",
            3,
            "order_id",
            "duplicate line",
        ),
        (
            "purchases",
            "order_id,institution_id,drug_id,spec_id,supplier,units,month\no1,H9,D1,S1,A,5,1\n",
            2,
            "institution_id",
            "not an institution",
        ),
        (
            "purchases",
            "order_id,institution_id,drug_id,spec_id,supplier,units,month\no1,,D1,S1,A,5,1\n",
            2,
            "institution_id",
            "blank",
        ),
        ("last_year", "institution_id,drug_id\nH1,D1\n", None, "nonwinning_units", "missing column"),
    ],
)
def test_bad_reports_name_file_row_and_field(tmp_path, kind, text, row, field, words):
    p = _write(tmp_path, f"{kind}.csv", text)
    with pytest.raises(RoundInputError) as ei:
        read_report(p, kind, contracts=CONTRACTS)
    e = ei.value
    assert e.row == row and e.field == field and words in e.message_en and e.message_zh and "\n" not in e.message_en


def test_unsupported_or_missing_file(tmp_path):
    with pytest.raises(RoundInputError, match="file not found"):
        read_report(tmp_path / "none.csv", "inventory")
    with pytest.raises(RoundInputError, match="unsupported file type"):
        read_report(_write(tmp_path, "x.json", "{}"), "inventory")


def test_monitor_cli_uses_real_reports_and_banners_synthetic_ones(tmp_path):
    from yibao.cli import app
    from yibao.procurement.engine import run_round
    from yibao.procurement.io import load_round
    from yibao.procurement.params import get_ruleset

    runner = CliRunner()
    rd = tmp_path / "r"
    assert (
        runner.invoke(
            app, ["procurement", "synth", str(rd), "--drugs", "2", "--institutions", "30", "--seed", "3"]
        ).exit_code
        == 0
    )
    res = run_round(load_round(rd), get_ruleset("national-batch-10"))
    c = res.contracts
    win = c.groupby(["supplier", "drug_id"], as_index=False, observed=True)["agreed_units"].sum()
    inv = pd.DataFrame(
        [(r.supplier, r.drug_id, m, int(r.agreed_units)) for r in win.itertuples() for m in (1, 2)],
        columns=["supplier", "drug_id", "month", "stock_units"],
    )
    inv.to_csv(tmp_path / "inv.csv", index=False)
    orders = pd.DataFrame(
        [
            (f"o{i}", r.institution_id, r.drug_id, r.spec_id, r.supplier, int(r.agreed_units) // 12 * 2, 1)
            for i, r in enumerate(c.itertuples())
        ],
        columns=["order_id", "institution_id", "drug_id", "spec_id", "supplier", "units", "month"],
    )
    orders.to_csv(tmp_path / "orders.csv", index=False)
    base = ["procurement", "monitor", str(rd), "--rules", "national-batch-10", "--months", "2"]

    def out(args):
        r = runner.invoke(app, args)
        return r.exit_code, " ".join(r.output.split())  # rich wraps lines at spaces

    code, text = out(base)
    assert code == 0 and "SYNTHETIC purchase orders" in text and "SYNTHETIC inventory" in text
    assert "winners' only (no --last-year report)" in text
    code, text = out(base + ["--orders", str(tmp_path / "orders.csv"), "--inventory", str(tmp_path / "inv.csv")])
    assert code == 0, text
    assert "SYNTHETIC" not in text and "0 missing, 0 low stock" in text and " 0 behind schedule" in text
    # a bad report stops with one clear line and a non-zero exit
    (tmp_path / "bad.csv").write_text("supplier,drug_id,month,stock_units\nNOBODY,D001,1,5\n", encoding="utf-8")
    code, text = out(base + ["--inventory", str(tmp_path / "bad.csv")])
    assert code != 0 and "bad.csv, row 2: supplier" in text


def test_import_orders_persists_a_purchase_report_or_nothing(tmp_path):
    from sqlalchemy import func, select

    from yibao.cli import app
    from yibao.core.db import make_engine, session_scope
    from yibao.procurement.models import VbpOrder
    from yibao.procurement.service import load_contracts

    runner = CliRunner()
    rd, url = tmp_path / "r", f"sqlite:///{tmp_path / 'p.db'}"
    assert (
        runner.invoke(
            app, ["procurement", "synth", str(rd), "--drugs", "2", "--institutions", "20", "--seed", "6"]
        ).exit_code
        == 0
    )
    r = runner.invoke(app, ["procurement", "run", str(rd), "--rules", "national-batch-10", "--db", url])
    assert r.exit_code == 0, r.output
    engine = make_engine(url)
    c = load_contracts(engine, 1)
    rows = [
        (f"o{i}", x.institution_id, x.drug_id, x.spec_id, x.supplier, 10, "2025-04")
        for i, x in enumerate(c.head(5).itertuples())
    ]
    pd.DataFrame(
        rows, columns=["订单编号", "医疗机构编码", "品种编码", "规格编码", "供应企业", "采购数量", "月份"]
    ).to_excel(tmp_path / "o.xlsx", index=False)
    bad = [*rows[:2], ("o9", rows[0][1], rows[0][2], rows[0][3], rows[0][4], 0, "2025-04")]
    pd.DataFrame(
        bad, columns=["order_id", "institution_id", "drug_id", "spec_id", "supplier", "units", "month"]
    ).to_csv(tmp_path / "bad.csv", index=False)

    def count():
        with session_scope(engine) as s:
            return s.execute(select(func.count()).select_from(VbpOrder)).scalar_one()

    r = runner.invoke(
        app, ["procurement", "import-orders", "1", str(tmp_path / "bad.csv"), "--db", url, "--cycle-start", "2025-03"]
    )
    assert r.exit_code == 2 and "bad.csv, row 4: units" in " ".join(r.output.split()) and count() == 0
    r = runner.invoke(
        app, ["procurement", "import-orders", "1", str(tmp_path / "o.xlsx"), "--db", url, "--cycle-start", "2025-03"]
    )
    assert r.exit_code == 0, r.output
    assert count() == 5
    with session_scope(engine) as s:
        assert set(s.execute(select(VbpOrder.month)).scalars()) == {2}
