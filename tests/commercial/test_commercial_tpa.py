"""Commercial direct claims (一站式) and the insurer-facing TPA API: auth refused, idempotency, masking, ceiling."""

import datetime as dt

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from yibao.api.security import hash_secret
from yibao.commercial import service
from yibao.commercial.api import KEYS_ENV, router
from yibao.commercial.mechanics import ClaimParts
from yibao.commercial.models import CommercialAccumulator, CommercialClaim, CommercialPolicy, TpaMessage
from yibao.commercial.products import CommercialError, get_product
from yibao.core.db import session_scope

P = get_product("HMB-DEMO-2026")
ON = dt.date(2025, 12, 1)
KEY = "demo-insurer-key-synthetic"


def count(engine, model):
    with session_scope(engine) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_enrol_and_claims_across_the_year(db_engine):
    service.enrol(db_engine, P, "P0000001", on=ON)
    with pytest.raises(CommercialError):
        service.enrol(db_engine, P, "P0000001", on=ON)  # twice
    with pytest.raises(CommercialError):
        service.enrol(db_engine, P, "P0000002", on=dt.date(2026, 3, 1))  # window closed
    assert count(db_engine, CommercialPolicy) == 1
    a = service.file_claim(db_engine, P, "S1", "P0000001", ClaimParts(1_500_000, 300_000, 0))
    b = service.file_claim(db_engine, P, "S2", "P0000001", ClaimParts(100_000, 400_000, 0))
    assert (a.insurer_pays_fen, b.insurer_pays_fen) == (0, 150_000)  # hand-worked in test_commercial_mechanics
    with pytest.raises(CommercialError):
        service.file_claim(db_engine, P, "S2", "P0000001", ClaimParts(100_000, 0, 0))  # duplicate
    with pytest.raises(CommercialError):
        service.file_claim(db_engine, P, "S3", "P0000009", ClaimParts(100_000, 0, 0))  # no policy
    assert count(db_engine, CommercialClaim) == 2
    with session_scope(db_engine) as s:
        acc = s.get(CommercialAccumulator, ("P0000001", P.product_id, 2026))
        assert (acc.deductible_used, acc.paid) == (2_000_000, 150_000)


@pytest.fixture
def client(db_engine, tmp_path, monkeypatch):
    keys = tmp_path / "tpa-keys.yaml"
    keys.write_text(f'insurers:\n  INS-DEMO: {{secret_hash: "{hash_secret(KEY, n=2**10)}"}}\n', encoding="utf-8")
    monkeypatch.setenv(KEYS_ENV, str(keys))
    app = FastAPI()
    app.state.yibao_engine = db_engine
    app.include_router(router)
    service.enrol(db_engine, P, "P0000001", on=ON)
    service.file_claim(db_engine, P, "S1", "P0000001", ClaimParts(3_000_000, 1_000_000, 500_000))
    return TestClient(app)


H = {"X-TPA-Insurer": "INS-DEMO", "X-TPA-Key": KEY}


def test_tpa_auth_refused(client, db_engine):
    before = count(db_engine, TpaMessage)
    assert client.get("/api/v1/tpa/claims").status_code == 401
    assert client.get("/api/v1/tpa/claims", headers={**H, "X-TPA-Key": "wrong"}).status_code == 401
    assert client.get("/api/v1/tpa/claims", headers={**H, "X-TPA-Insurer": "INS-OTHER"}).status_code == 401
    r = client.post("/api/v1/tpa/claims/1/pay", json={"msgid": "m1"}, headers={**H, "X-TPA-Key": "wrong"})
    assert r.status_code == 401 and count(db_engine, TpaMessage) == before


def test_tpa_list_masked_and_pay_idempotent(client, db_engine):
    rows = client.get("/api/v1/tpa/claims", headers=H).json()
    assert len(rows) == 1 and rows[0]["psn"] == "P0****01" and "P0000001" not in str(rows)
    assert rows[0]["insurer_pays_fen"] == 1_650_000
    cid = rows[0]["claim_id"]
    r1 = client.post(f"/api/v1/tpa/claims/{cid}/pay", json={"msgid": "m1", "insurer_ref": "INS-REF-1"}, headers=H)
    assert r1.status_code == 200 and r1.json()["status"] == "paid"
    r2 = client.post(f"/api/v1/tpa/claims/{cid}/pay", json={"msgid": "m1", "insurer_ref": "INS-REF-1"}, headers=H)
    assert r2.json() == r1.json()
    n = count(db_engine, TpaMessage)
    bad = client.post(f"/api/v1/tpa/claims/{cid}/refuse", json={"msgid": "m2", "reason": "late"}, headers=H)
    assert bad.status_code == 400 and bad.json()["detail"]["code"] == "E_COMMERCIAL"
    assert count(db_engine, TpaMessage) == n  # nothing changed
    assert client.get(f"/api/v1/tpa/claims/{cid}", headers=H).json()["status"] == "paid"


def test_tpa_refuse_needs_reason_and_releases_ceiling(client, db_engine):
    cid = client.get("/api/v1/tpa/claims", headers=H).json()[0]["claim_id"]
    assert client.post(f"/api/v1/tpa/claims/{cid}/refuse", json={"msgid": "m3"}, headers=H).status_code == 400
    r = client.post(
        f"/api/v1/tpa/claims/{cid}/refuse", json={"msgid": "m3", "reason": "pre-existing not declared"}, headers=H
    )
    assert r.json()["status"] == "refused"
    with session_scope(db_engine) as s:
        assert s.get(CommercialAccumulator, ("P0000001", P.product_id, 2026)).paid == 0
    assert client.get("/api/v1/tpa/claims/999", headers=H).status_code == 404


def test_cli_enrol_and_claims(db_url, db_engine):
    from typer.testing import CliRunner

    from yibao.cli import app

    r = CliRunner().invoke(app, ["commercial", "enrol", "--psn", "P0000007", "--on", "2025-12-01", "--db", db_url])
    assert r.exit_code == 0, r.output
    r2 = CliRunner().invoke(app, ["commercial", "enrol", "--psn", "P0000007", "--on", "2025-12-01", "--db", db_url])
    assert r2.exit_code == 2 and count(db_engine, CommercialPolicy) == 1
    assert (
        CliRunner().invoke(app, ["commercial", "enrol", "--psn", "P0000008", "--on", "bad", "--db", db_url]).exit_code
        == 2
    )
    service.file_claim(db_engine, P, "S9", "P0000007", ClaimParts(3_000_000, 1_000_000, 500_000))
    out = CliRunner().invoke(app, ["commercial", "claims", "--db", db_url], terminal_width=200)
    assert out.exit_code == 0 and "16,500.00" in out.output and "P0000007" not in out.output
