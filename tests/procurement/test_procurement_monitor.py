"""Execution monitoring, persistence (one transaction per write), the API router and the CLI."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from yibao.core import db as ydb
from yibao.procurement.engine import run_round
from yibao.procurement.models import VbpContract, VbpOrder, VbpResult, VbpRound
from yibao.procurement.monitor import fund_prepay_flow, inventory_check, non_winning_check, progress
from yibao.procurement.params import get_ruleset
from yibao.procurement.service import ProcurementError, list_rounds, round_results, save_orders, save_round
from yibao.synth.procurement import generate_inventory, generate_orders, generate_round

CONTRACTS = pd.DataFrame(
    [
        # institution, region, drug, spec, supplier, agreed units, pack price, units per pack, amount
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


def _orders(rows):
    return pd.DataFrame(
        rows, columns=["order_id", "institution_id", "drug_id", "spec_id", "supplier", "units", "month"]
    )


def test_progress_alerts_for_institutions_behind_schedule():
    orders = _orders(
        [
            ("o1", "H1", "D1", "S1", "A", 560, 1),
            ("o2", "H2", "D1", "S1", "A", 1000, 1),
            ("o3", "H2", "D1", "S1", "X", 999, 1),
        ]
    )
    p = progress(orders, CONTRACTS, months_elapsed=6).set_index("institution_id")
    # expected after 6 of 12 months: H1 600, H2 1200; tolerance 10 %: floors 540 and 1080
    assert p.loc["H1", "expected_units"] == 600 and not p.loc["H1", "behind"]
    assert p.loc["H2", "purchased_units"] == 1000 and p.loc["H2", "behind"]  # the non-winning X order does not count
    assert p.loc["H2", "completion_bp"] == 4166


def test_non_winning_volume_against_its_cap():
    orders = _orders(
        [
            ("o1", "H1", "D1", "S1", "A", 100, 1),
            ("o2", "H1", "D1", "S1", "X", 150, 1),
            ("o3", "H2", "D1", "S1", "A", 500, 1),
            ("o4", "H2", "D1", "S1", "X", 50, 1),
        ]
    )
    last = pd.DataFrame(
        [("H1", "D1", 200), ("H2", "D1", 40)], columns=["institution_id", "drug_id", "nonwinning_units"]
    )
    nw = non_winning_check(orders, CONTRACTS, last).set_index("institution_id")
    assert nw.loc["H1", "alert"] and nw.loc["H1", "reason"] == "above the winning products' 100"
    assert nw.loc["H2", "alert"] and nw.loc["H2", "reason"] == "above last year's 40"


def test_inventory_reports_missing_and_low():
    reports = pd.DataFrame(
        [("A", "D1", 1, 400), ("A", "D1", 2, 200)], columns=["supplier", "drug_id", "month", "stock_units"]
    )
    inv = inventory_check(reports, CONTRACTS, [1, 2, 3]).set_index("month")
    # monthly agreed volume 3600 / 12 = 300: month 1 covers 1.33 months, month 2 0.67 (low), month 3 missing
    assert inv.loc[1, "alert"] == "" and inv.loc[1, "cover_months"] == "1.33"
    assert inv.loc[2, "alert"].startswith("stock below") and inv.loc[3, "alert"] == "missing report"


def test_fund_prepay_immediate_settlement_savings_kept():
    orders = _orders([("o1", "H1", "D1", "S1", "A", 105, 1), ("o2", "H1", "D1", "S1", "X", 10, 1)])
    led = fund_prepay_flow(CONTRACTS, orders, {("D1", "S1"): 800})
    s = led.summary.set_index("institution_id")
    # prepay 30 % of 600.00 = 180.00; settle 105 units at 5.00/10 = 52.50 (X is not contracted)
    assert s.loc["H1", "prepaid_fen"] == 18000 and s.loc["H1", "settled_fen"] == 5250
    # savings 105 x (8.00 - 5.00) / 10 = 31.50; hospital keeps 50 % = 15.75
    assert s.loc["H1", "savings_fen"] == 3150 and s.loc["H1", "retained_fen"] == 1575
    assert s.loc["H2", "settled_fen"] == 0 and s.loc["H2", "prepaid_fen"] == 36000
    assert list(led.entries["step"].unique()) == ["prepay", "settle", "savings_retained"]


def test_synthetic_execution_flags_laggards():
    sr = generate_round(drugs=4, institutions=300, seed=3)
    res = run_round(sr.round, get_ruleset("national-batch-07"))
    orders = generate_orders(res.contracts, months=6, seed=1, lag_share=0.2)
    p = progress(orders, res.contracts, months_elapsed=6)
    assert 0 < p["behind"].mean() < 0.5
    inv = inventory_check(generate_inventory(res.contracts, months=3, seed=1), res.contracts, [1, 2, 3])
    assert set(inv["alert"]) <= {"", "missing report", "stock below 1 month(s) of agreed volume"}


@pytest.fixture
def small_round():
    sr = generate_round(drugs=3, institutions=40, seed=4)
    return sr.round, run_round(sr.round, get_ruleset("national-batch-10"))


def test_save_round_and_orders_in_one_transaction_each(db_engine, small_round):
    inp, res = small_round
    rid = save_round(db_engine, inp, res)
    with ydb.session_scope(db_engine) as s:
        assert s.execute(select(func.count()).select_from(VbpContract)).scalar_one() == len(res.contracts)
        assert s.execute(select(func.count()).select_from(VbpResult)).scalar_one() == sum(
            len(d.outcomes) for d in res.drugs.values()
        )
    rows = round_results(db_engine, rid)
    assert {r["reason_code"] for r in rows} and all(r["reason_en"] for r in rows)
    assert list_rounds(db_engine)[0]["winners"] == sum(1 for d in res.drugs.values() for o in d.outcomes if o.won)
    orders = generate_orders(res.contracts, months=2, seed=2)
    assert save_orders(db_engine, rid, orders) == len(orders)
    with ydb.session_scope(db_engine) as s:
        amt = s.execute(select(func.sum(VbpOrder.amount_fen)).where(VbpOrder.contracted.is_(True))).scalar_one()
    assert amt > 0
    # bad orders change nothing
    bad = orders.head(3).copy()
    bad.loc[bad.index[1], "units"] = -1
    with pytest.raises(ProcurementError, match="row 3: units must be > 0"):
        save_orders(db_engine, rid, bad)
    # a failing write rolls the whole round back (duplicate contract key)
    broken = res.contracts.copy()
    res.contracts = pd.concat([broken, broken.head(1)], ignore_index=True)
    with pytest.raises(IntegrityError):
        save_round(db_engine, inp, res)
    with ydb.session_scope(db_engine) as s:
        assert s.execute(select(func.count()).select_from(VbpRound)).scalar_one() == 1
    with pytest.raises(ProcurementError, match="round 99 not found"):
        round_results(db_engine, 99)


def test_api_router(db_engine, small_round):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from yibao.procurement import api

    inp, res = small_round
    rid = save_round(db_engine, inp, res)
    app = FastAPI()
    app.include_router(api.router)
    app.dependency_overrides[api.get_engine] = lambda: db_engine
    c = TestClient(app)
    names = [r["name"] for r in c.get("/procurement/rulesets").json()]
    assert "national-batch-11" in names
    assert c.get("/procurement/rulesets/national-batch-10").json()["selection"]["revival"]["enabled"] is True
    r = c.get("/procurement/rulesets/nope")
    assert r.status_code == 404 and r.json()["detail"]["field"] == "name"
    r = c.post(
        "/procurement/simulate",
        json={
            "rules": "national-batch-10",
            "competitors": [{"dist": "uniform", "params": [0.5, 1.5]}],
            "candidate_prices_yuan": ["0.4", "1.9"],
            "max_unit_price_yuan": "2.0",
            "base_units": 1000,
        },
    )
    assert r.status_code == 200 and r.json()["rows"][0]["win_probability"] == 1.0
    r = c.post(
        "/procurement/simulate",
        json={
            "rules": "national-batch-10",
            "competitors": [{"dist": "uniform", "params": [0.5, 1.5]}],
            "candidate_prices_yuan": ["2.5"],
            "max_unit_price_yuan": "2.0",
            "base_units": 1000,
        },
    )
    assert r.status_code == 400 and r.json()["detail"]["code"] == "E_VBP_SIM"
    assert c.get("/procurement/rounds").json()[0]["id"] == rid
    assert len(c.get(f"/procurement/rounds/{rid}/results").json()) == sum(len(d.outcomes) for d in res.drugs.values())
    assert c.get("/procurement/rounds/999/results").status_code == 404


def test_cli_end_to_end(tmp_path):
    from yibao.cli import app

    runner = CliRunner()
    r = runner.invoke(
        app, ["procurement", "synth", str(tmp_path / "r"), "--drugs", "3", "--institutions", "60", "--seed", "2"]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["procurement", "run", str(tmp_path / "r"), "--rules", "national-batch-10", "--out", str(tmp_path / "out")]
    )
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.xlsx", "report.html", "ocds.json"}
    assert "SYNTHETIC" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    r = runner.invoke(app, ["procurement", "run", str(tmp_path / "r"), "--rules", "national-batch-99"])
    assert r.exit_code == 2 and "rule-set file not found" in r.output
    r = runner.invoke(
        app, ["procurement", "monitor", str(tmp_path / "r"), "--rules", "national-batch-07", "--months", "3"]
    )
    assert r.exit_code == 0 and "behind schedule" in r.output
    r = runner.invoke(app, ["procurement", "integrity", str(tmp_path / "r")])
    assert r.exit_code == 0 and "6 flags" in r.output and "N001" in r.output


def test_credit_grade_from_supervision_excludes_a_blacklisted_firm(db_engine, small_round):
    import datetime as dt

    from yibao.procurement.service import supervision_credit_lookup
    from yibao.supervision.credit import add_points

    inp, _ = small_round
    drug = next(iter(inp.catalog))
    bidders = sorted({b.firm_id for b in inp.bids if b.drug_id == drug})
    target = bidders[0]
    with ydb.session_scope(db_engine) as s:
        # two "serious" enterprise violations (15 points each) -> above the severe band: blacklisted
        for _ in range(2):
            add_points(
                s,
                "enterprise",
                target,
                "serious",
                case_id=None,
                reason="test",
                at=dt.datetime(2025, 2, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))),
            )
    lookup = supervision_credit_lookup(db_engine, inp.round_date)
    assert lookup(target) == "serious_breach" and lookup(bidders[1]) == "good"
    res = run_round(inp, get_ruleset("national-batch-10"), credit_lookup=lookup)
    o = {x.firm_id: x for x in res.drugs[drug].outcomes}[target]
    assert o.status == "ineligible" and o.reason_code == "credit"
