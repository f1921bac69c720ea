"""Enrolment through the CLI and the REST router (参保缴费 命令行与接口)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.settlement_support import svc  # noqa: F401  (fixture: people E1, E2, R1, R2, C1)
from yibao.cli import app as cli
from yibao.core import db as ydb
from yibao.enrolment.api import router
from yibao.enrolment.models import Contribution
from yibao.settlement import records


def _client(engine) -> TestClient:
    app = FastAPI()
    app.include_router(router)
    app.state.yibao_engine = engine
    return TestClient(app)


def test_rest_enrol_pay_arrears_backpay_and_coverage(svc, db_engine):
    c = _client(db_engine)
    assert (
        c.post(
            "/api/v1/enrolment/periods", json={"psn_no": "E1", "insutype": "310", "start_date": "2024-09-01"}
        ).status_code
        == 200
    )
    r = c.post("/api/v1/enrolment/contributions", json={"psn_no": "E1", "period": "2024-10", "wage": 1_000_000})
    assert r.json()["employer_part"] == 80_000 and r.json()["individual_part"] == 20_000
    dup = c.post("/api/v1/enrolment/contributions", json={"psn_no": "E1", "period": "2024-10", "wage": 1_000_000})
    assert dup.status_code == 400 and dup.json()["detail"]["code"] == "E_ENROL"
    assert [a["period"] for a in c.get("/api/v1/enrolment/arrears").json()] == ["2024-10"]
    b = c.post(
        "/api/v1/enrolment/backpay",
        json={"psn_no": "E1", "insutype": "310", "period": "2024-10", "paid_date": "2024-11-11"},
    )
    assert b.json()["late_fee"] == 500  # 1,000.00 yuan × 0.05 % × 10 days late
    cov = c.get("/api/v1/enrolment/persons/E1/coverage", params={"insutype": "310", "day": "2024-08-01"}).json()
    assert cov == {
        "applies": True,
        "covered": False,
        "reason": "not_enrolled",
        "message_en": "not enrolled on 2024-08-01",
        "message_zh": "2024-08-01 未参保",
    }
    assert (
        c.get("/api/v1/enrolment/persons/E2/coverage", params={"insutype": "310", "day": "2024-08-01"}).json()[
            "applies"
        ]
        is False
    )


def _count(engine, model) -> int:
    with ydb.session_scope(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_cli_pay_refusal_one_line_and_credit_idempotent(svc, db_engine, db_url):
    run = CliRunner().invoke
    ok = run(cli, ["enrol", "enrol", "E1", "310", "2025-01-01", "--db", db_url])
    assert ok.exit_code == 0, ok.output
    paid = run(cli, ["enrol", "pay", "E1", "2025-01", "--wage", "3000", "--paid", "2025-01-10", "--db", db_url])
    assert "base 4,800.00" in paid.output and "employer 384.00" in paid.output and "individual 96.00" in paid.output
    bad = run(cli, ["enrol", "pay", "E1", "2025-01", "--wage", "3000", "--db", db_url])
    assert bad.exit_code == 2 and _count(db_engine, Contribution) == 1
    first = run(cli, ["accounts", "credit", "--month", "2026-11", "--db", db_url])
    n = _count(db_engine, records.AccountLedger)
    again = run(cli, ["accounts", "credit", "--month", "2026-11", "--db", db_url])
    assert first.exit_code == 0 and "already credited" in again.output and _count(db_engine, records.AccountLedger) == n
