"""Manual reimbursement (手工报销) through the CLI (a claim from a JSON file), the REST router, the console page
(queue, detail with history, review forms with CSRF) and the demo."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.console_support import PASSWORD, console_login, page_csrf
from yibao.cli import app as cli_app
from yibao.codes import registry
from yibao.core import db as ydb
from yibao.reimbursement.models import ManualClaim, ManualClaimStep

REGION, SUZHOU = "990100", "320500"


def seed(engine) -> None:
    from yibao.web.auth import AuthService

    with ydb.session_scope(engine) as s:
        s.add(
            registry.Person(
                psn_no="R1",
                gend="1",
                brdy=dt.date(1970, 5, 1),
                insutype="390",
                psn_type="resident",
                civil_servant=False,
                insuplc_admdvs=REGION,
                assistance="",
                contribution_base=0,
                acct_balc=0,
                synthetic=True,
            )
        )
        s.add(registry.Institution(fixmedins_code="H1", fixmedins_type="hospital", hosp_lv=2, admdvs=REGION))
    a = AuthService(engine)
    for user, role in (("clerk1", "bureau"), ("rev1", "bureau"), ("rev2", "bureau"), ("hosp1", "institution")):
        a.add_user(user, PASSWORD, role, fixmedins_code="H1" if role == "institution" else None)


def claim_doc(end: dt.date) -> dict:
    return {
        "psn_no": "R1",
        "med_type": "21",
        "begin_date": (end - dt.timedelta(days=5)).isoformat(),
        "end_date": end.isoformat(),
        "reason": "cross_province",
        "dise_codg": "J18.9",
        "provider_name": "苏州某医院 (synthetic)",
        "provider_admdvs": SUZHOU,
        "hosp_lv": 3,
        "documents": ["invoice", "itemised_bill", "discharge_summary"],
        "lines": [{"invoice_no": "P-1", "amount_fen": 30000, "quantity_milli": 3000, "item_text": "护工费"}],
    }


def test_cli_claim_from_file_reviewed_and_paid(tmp_path):
    url = f"sqlite:///{tmp_path / 'y.db'}"
    ydb.upgrade(url)
    engine = ydb.make_engine(url)
    seed(engine)
    f = tmp_path / "claim.json"
    f.write_text(json.dumps(claim_doc(dt.date.today() - dt.timedelta(days=3))), encoding="utf-8")

    def yb(*args: str, ok: bool = True) -> str:
        r = CliRunner().invoke(cli_app, ["reimburse", *args, "--db", url])
        assert (r.exit_code == 0) == ok, r.output
        return r.output

    assert "draft" in yb("new", "--user", "clerk1", "--file", str(f))
    # a coded line from the shipped list is accepted; an unknown code is refused in one line, nothing added
    assert "unknown med_list_codg" in yb("add-line", "1", "--user", "clerk1", "--invoice", "P-2", "--amount-fen", "100",
                                         "--code", "NOPE", ok=False)  # fmt: skip
    assert "amount_fen" in yb("add-line", "1", "--user", "clerk1", "--invoice", "P-2", "--amount-fen", "-5",
                              "--text", "x", ok=False)  # fmt: skip
    yb("add-line", "1", "--user", "clerk1", "--invoice", "P-2", "--amount-fen", "1200", "--text", "挂号费")
    yb("submit", "1", "--user", "clerk1")
    assert "role" in yb("review", "1", "first_review", "--user", "hosp1", ok=False)
    assert "nobody" in yb("review", "1", "first_review", "--user", "nobody", ok=False)
    yb("review", "1", "first_review", "--user", "rev1", "--comment", "ok")
    assert "rev1" in yb("review", "1", "approve", "--user", "rev1", ok=False)  # four eyes
    out = yb("review", "1", "approve", "--user", "rev2")
    assert "paid" in out and "uncoded" in out
    shown = yb("show", "1")
    assert "approve" in shown and "rev2" in shown
    assert "1 manual claims" in yb("list", "--status", "paid")
    with ydb.session_scope(engine) as s:
        c = s.get(ManualClaim, 1)
        assert c is not None and c.reimbursed_fen == 0  # only uncoded lines: fully self-paid, nothing to pay
        assert s.scalar(select(func.count()).select_from(ManualClaimStep)) == 6
    engine.dispose()


@pytest.fixture
def web(db_engine):
    from yibao.reimbursement.api import router
    from yibao.web.auth import require
    from yibao.web.console import mount_console

    seed(db_engine)
    app = FastAPI()
    app.state.yibao_engine = db_engine
    app.include_router(router, dependencies=[Depends(require("bureau"))])  # as yibao.api.app mounts it
    mount_console(app, db_engine)
    return app


def _client(app, user: str) -> tuple[TestClient, str]:
    c = TestClient(app)
    assert console_login(c, user, PASSWORD).status_code == 303
    return c, page_csrf(c, "/console/reimbursement")


def test_rest_flow_and_refusals(web, db_engine):
    clerk, tok = _client(web, "clerk1")
    rev1, tok1 = _client(web, "rev1")
    rev2, tok2 = _client(web, "rev2")
    base = "/api/v1/reimbursement/claims"
    doc = claim_doc(dt.date.today() - dt.timedelta(days=3))
    doc["lines"].append({"invoice_no": "P-1", "amount_fen": 500000, "med_list_codg": "", "item_text": "药品"})
    assert clerk.post(base, json=doc).status_code == 403  # no CSRF token
    bad = clerk.post(base, json={**doc, "end_date": doc["begin_date"], "begin_date": doc["end_date"]},
                     headers={"X-CSRF-Token": tok})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["detail"]["field"] == "end_date"
    r = clerk.post(base, json=doc, headers={"X-CSRF-Token": tok})
    assert r.status_code == 200, r.text
    cid = r.json()["claim_id"]
    dup = clerk.post(base, json=doc, headers={"X-CSRF-Token": tok})
    assert dup.status_code == 400 and dup.json()["detail"]["field"] == "invoice_no"
    with ydb.session_scope(db_engine) as s:
        assert s.scalar(select(func.count()).select_from(ManualClaim)) == 1

    def step(c, t, action, status=200):
        r = c.post(f"{base}/{cid}/review", json={"action": action}, headers={"X-CSRF-Token": t})
        assert r.status_code == status, r.text
        return r.json()

    assert step(rev1, tok1, "approve", 400)["detail"]["field"] == "action"  # a draft
    step(clerk, tok, "submit")
    step(rev1, tok1, "first_review")
    assert step(rev1, tok1, "approve", 403)["detail"]["field"] == "actor"
    d = step(rev2, tok2, "approve")
    assert d["status"] == "paid" and d["settlement"]["medfee_sumamt"] == 530000
    assert [x["action"] for x in d["steps"]][-3:] == ["submit", "first_review", "approve"]
    assert [x["claim_id"] for x in clerk.get(base, params={"status": "paid"}).json()] == [cid]
    assert clerk.get(f"{base}/999").status_code == 404


def test_console_queue_detail_and_review_form(web):
    clerk, tok = _client(web, "clerk1")
    r = clerk.post("/api/v1/reimbursement/claims", json=claim_doc(dt.date.today() - dt.timedelta(days=3)),
                   headers={"X-CSRF-Token": tok})  # fmt: skip
    cid = r.json()["claim_id"]
    html = clerk.get("/console/reimbursement").text
    assert f'id="claim-{cid}"' in html and "录入中" in html
    page = clerk.get(f"/console/reimbursement/{cid}")
    assert page.status_code == 200 and 'id="step-submit"' in page.text and 'id="add-line"' in page.text
    tok = page_csrf(clerk, f"/console/reimbursement/{cid}")
    # no CSRF token: refused, nothing changes
    r = clerk.post(f"/console/reimbursement/{cid}/step", data={"action": "submit"}, follow_redirects=False)
    assert r.status_code == 403
    r = clerk.post(f"/console/reimbursement/{cid}/lines", data={"csrf_token": tok, "invoice_no": "P-9",
                   "amount_fen": "-1", "item_text": "x"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and "msg=" in r.headers["location"] and "msg=ok" not in r.headers["location"]
    r = clerk.post(f"/console/reimbursement/{cid}/step", data={"csrf_token": tok, "action": "submit"},
                   follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].endswith("msg=ok")
    page = clerk.get(f"/console/reimbursement/{cid}").text
    assert 'data-status="submitted"' in page and 'data-action="submit"' in page and 'id="step-first_review"' in page
    hosp, _ = TestClient(web), None
    assert console_login(hosp, "hosp1", PASSWORD).status_code == 303
    assert hosp.get(f"/console/reimbursement/{cid}", follow_redirects=False).status_code == 403


def test_demo_claim_is_reviewed_and_paid(db_engine):
    from yibao.demo.reimbursement import demo_reimbursement

    seed(db_engine)
    out = demo_reimbursement(db_engine, today=dt.date(2025, 6, 1))
    assert len(out) == 2 and "SYNTHETIC" in out[0] and "R1" in out[0], out
    assert "55 %" in out[1]  # resident level 3, 65 %, unfiled −10 points
    with ydb.session_scope(db_engine) as s:
        c = s.scalars(select(ManualClaim)).one()
        assert c.status == "paid" and c.synthetic and c.reimbursed_fen and c.reimbursed_fen > 0
