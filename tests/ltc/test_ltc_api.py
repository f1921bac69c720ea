"""REST /api/v1/ltc (长护险): a month end to end through the router, refusals as bilingual 400s."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from yibao import tables
from yibao.core.db import Base, make_engine
from yibao.ltc.api import get_engine, router


def test_ltc_rest_month(tmp_path):
    tables.load_all()
    eng = make_engine(f"sqlite:///{tmp_path / 'api.db'}")
    Base.metadata.create_all(eng)
    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[get_engine] = lambda: eng
    c = TestClient(app)
    r = c.post(
        "/api/v1/ltc/assessments",
        json={
            "psn_no": "P1",
            "assessor_institution": "A01",
            "assessed_on": "2022-01-10",
            "scores": {"daily_living": 50, "cognition": 15, "perception_communication": 10},
        },
    )
    assert r.status_code == 200 and r.json()["grade"] == "severe"
    assert (
        c.post(
            "/api/v1/ltc/recipients",
            json={"psn_no": "P1", "setting": "institutional", "care_institution": "H01", "start_month": "2022-02-01"},
        ).status_code
        == 200
    )
    bad = c.post(
        "/api/v1/ltc/services",
        json={"psn_no": "P1", "month": "2022-02-01", "institution": "H01", "days": 29, "cost_fen": 400000},
    )
    assert bad.status_code == 400 and bad.json()["detail"]["message_zh"] == "护理天数超出当月天数"
    assert (
        c.post(
            "/api/v1/ltc/services",
            json={"psn_no": "P1", "month": "2022-02-01", "institution": "H01", "days": 28, "cost_fen": 400000},
        ).status_code
        == 200
    )
    s = c.post("/api/v1/ltc/settle", json={"month": "2022-02-01"}).json()["claims"]
    assert [(x["fund_fen"], x["person_fen"], x["source_split"]) for x in s] == [
        (210000, 190000, {"individual": 63000, "pool": 63000, "finance": 84000})
    ]
    assert (
        c.post("/api/v1/ltc/settle", json={"month": "2022-02-01", "psn_no": "P1"}).json()["claims"][0]["fund_fen"]
        == 210000
    )
    assert [x["month"] for x in c.get("/api/v1/ltc/recipients/P1").json()["claims"]] == ["2022-02"]
    assert c.get("/api/v1/ltc/funding/nantong").json()["funding_per_person_year_fen"] == {
        "individual": 3000,
        "pool": 3000,
        "finance": 4000,
    }
