"""Issue 14.3: an enforcement case from clue to recovery without Python calls — through the CLI, the REST router
and the console forms — with the refusals (wrong role, the reviewer deciding, the proposer reviewing, out-of-order
steps, negative amounts, fines outside the discretion benchmark) and every step in the audit history.

Python is used only to set up (a synthetic institution row for the institution user) and to read the result back.
"""

from __future__ import annotations

import json
import re

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tests.console_support import PASSWORD, console_login, page_csrf
from yibao.cli import app as cli_app
from yibao.codes import registry
from yibao.core.db import session_scope
from yibao.supervision.credit import credit_grade
from yibao.supervision.models import Case, CaseEvent, CreditPoint

INST = "H99TEST01"  # a synthetic institution


@pytest.fixture
def world(db_url, db_engine):
    with session_scope(db_engine) as s:
        s.add(registry.Institution(fixmedins_code=INST, fixmedins_name="合成医院 (synthetic)", synthetic=True))
    return db_url, db_engine


def _events(engine, cid: int) -> list[CaseEvent]:
    with session_scope(engine) as s:
        return list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == cid).order_by(CaseEvent.id)))


def _case(engine, cid: int) -> Case:
    with session_scope(engine) as s:
        return s.get(Case, cid)


# --- CLI ----------------------------------------------------------------------------------------------


def test_cli_case_from_clue_to_recovery(world):
    url, engine = world
    run = CliRunner()

    def yb(*args: str, ok: bool = True) -> str:
        r = run.invoke(cli_app, [*args, "--db", url])
        out = " ".join(r.output.split())  # rich wraps long lines
        assert (r.exit_code == 0) == ok, f"{args}: exit {r.exit_code}: {out}"
        return out

    for user, role, extra in (
        ("chief", "bureau", []),
        ("legal1", "bureau", []),
        ("finance1", "bureau", []),
        ("hosp1", "institution", ["--institution", INST]),
    ):
        yb("console", "add-user", user, "--role", role, "--password", PASSWORD, *extra)

    def step(cid, action, user, *more, ok=True):
        return yb("supervision", "case", "step", str(cid), "--action", action, "--user", user, *more, ok=ok)

    out = yb(
        "supervision",
        "case",
        "open",
        "--subject-kind",
        "institution",
        "--subject-code",
        INST,
        "--clue-kind",
        "scan_hit",
        "--source",
        "SV-PHANTOM-01",
        "--loss-fen",
        "5000000",
        "--user",
        "chief",
    )
    cid = int(re.search(r"case (\d+) opened", out).group(1))
    # refusals before anything happened: a bad clue kind, an unknown user, the wrong role, an out-of-order step
    assert "clue kind must be one of" in yb(
        "supervision",
        "case",
        "open",
        "--subject-kind",
        "institution",
        "--subject-code",
        INST,
        "--clue-kind",
        "rumour",
        "--source",
        "x",
        "--user",
        "chief",
        ok=False,
    )
    assert "no console user 'nobody'" in step(cid, "file", "nobody", ok=False)
    out = step(cid, "file", "hosp1", ok=False)
    assert "may not file case" in out and "无权" in out
    out = step(cid, "publish", "chief", ok=False)
    assert "cannot publish a case in state 'clue'" in out and "案件处于「线索」状态" in out
    step(cid, "file", "chief")
    step(cid, "investigate", "chief")
    step(cid, "note", "chief", "--violation", "institution_fraud", "--note", "病历与票据不符; 12 张住院发票无对应医嘱")
    # the benchmark is shown: 条例 第四十条, loss 50,000 yuan, general band 3-4x → 150,000..200,000 yuan
    shown = yb("supervision", "case", "show", str(cid))
    assert "自由裁量基准" in shown and "15000000" in shown and "20000000" in shown and "条例 第四十条" in shown
    assert "a major decision needs a passed legal review" in step(
        cid, "decide", "chief", "--fine-fen", "16000000", ok=False
    )
    step(cid, "submit_review", "chief", "--band", "general")
    assert "submitted this proposal and may not review it" in step(cid, "review_pass", "chief", ok=False)
    step(cid, "review_pass", "legal1", "--note", "事实清楚, 证据确凿")
    assert "did the legal review of this case and may not also decide it" in step(
        cid, "decide", "legal1", "--fine-fen", "16000000", ok=False
    )
    out = step(cid, "decide", "chief", "--fine-fen", "26000000", ok=False)
    assert "outside the benchmark range 15000000..20000000" in out and "裁量基准" in out
    assert "fine_fen must be zero or more" in step(cid, "decide", "chief", "--fine-fen", "-1", ok=False)
    step(cid, "decide", "chief", "--fine-fen", "16000000")
    assert "amount_fen must be positive" in step(cid, "recover", "finance1", "--amount-fen", "-5", ok=False)
    assert "would exceed the loss" in step(cid, "recover", "finance1", "--amount-fen", "5000001", ok=False)
    step(cid, "recover", "finance1", "--amount-fen", "3000000")
    step(cid, "recover", "finance1", "--amount-fen", "2000000")
    assert "would exceed the fine" in step(cid, "collect_fine", "finance1", "--amount-fen", "16000001", ok=False)
    step(cid, "collect_fine", "finance1", "--amount-fen", "16000000")
    step(cid, "publish", "chief", "--note", "典型案例曝光")
    step(cid, "appeal", "hosp1", "--appeal-kind", "reconsideration")  # the institution appeals its own case
    assert "may not uphold" in step(cid, "uphold", "hosp1", ok=False)
    step(cid, "uphold", "chief")
    step(cid, "close", "chief")

    c = _case(engine, cid)
    assert (c.state, c.recovered_fen, c.fine_fen, c.fine_paid_fen, c.clue_kind) == (
        "closed",
        5_000_000,
        16_000_000,
        16_000_000,
        "scan_hit",
    )
    ev = _events(engine, cid)
    assert [e.action for e in ev] == [
        "open",
        "file",
        "investigate",
        "note",
        "submit_review",
        "review_pass",
        "decide",
        "recover",
        "recover",
        "collect_fine",
        "publish",
        "appeal",
        "uphold",
        "close",
    ]  # the refused steps left no trace
    assert [e.actor for e in ev] == [
        "chief",
        "chief",
        "chief",
        "chief",
        "chief",
        "legal1",
        "chief",
        "finance1",
        "finance1",
        "finance1",
        "chief",
        "hosp1",
        "chief",
        "chief",
    ]
    pay = [json.loads(e.payload) for e in ev]
    assert all(e.at is not None for e in ev) and all({"before", "after"} <= set(p) for p in pay)
    assert (
        pay[6]["before"]["fine_fen"] == 0 and pay[6]["after"]["fine_fen"] == 16_000_000 and pay[6]["role"] == "bureau"
    )
    assert pay[8]["before"]["recovered_fen"] == 3_000_000 and pay[8]["after"]["recovered_fen"] == 5_000_000
    assert pay[11]["role"] == "institution" and pay[11]["after"]["state"] == "appealed"
    # the decision gave the institution its credit points (general band: 6 → medium)
    g = credit_grade(engine, "institution", INST)
    assert (g.points, g.grade) == (6, "medium")
    shown = yb("supervision", "case", "show", str(cid))
    assert "none (final state)" in shown and "legal1" in shown
    listed = yb("supervision", "case", "list", "--state", "closed")
    assert (
        listed.startswith("1 cases 案件") and "结案" in listed
    )  # (rich wraps the table's cells at the runner's width)
    assert yb("supervision", "case", "list", "--state", "clue").startswith("0 cases")
    assert "unknown state" in yb("supervision", "case", "list", "--state", "nirvana", ok=False)


# --- REST and console -------------------------------------------------------------------------------------


@pytest.fixture
def web(world):
    from yibao.supervision.api import router
    from yibao.web.auth import AuthService, require
    from yibao.web.console import mount_console

    url, engine = world
    a = AuthService(engine)
    for user, role, inst in (("chief", "bureau", None), ("legal1", "bureau", None), ("hosp1", "institution", INST)):
        a.add_user(user, PASSWORD, role, fixmedins_code=inst)
    app = FastAPI()
    app.state.yibao_engine = engine
    app.include_router(router, dependencies=[Depends(require("bureau"))])  # as yibao.api.app mounts it
    mount_console(app, engine)
    return app, engine


def _client(app, user: str) -> tuple[TestClient, str]:
    c = TestClient(app)
    assert console_login(c, user, PASSWORD).status_code == 303
    return c, page_csrf(c, "/console/supervision/cases")


def test_rest_case_from_clue_to_recovery(web):
    app, engine = web
    chief, tok = _client(app, "chief")
    legal, ltok = _client(app, "legal1")
    hosp, htok = _client(app, "hosp1")
    base = "/api/v1/supervision/cases"

    def post(c, tok, path, body=None, status=200):
        r = c.post(path, json=body or {}, headers={"X-CSRF-Token": tok})
        assert r.status_code == status, r.text
        return r.json()

    # no CSRF token: refused; institution staff: the bureau's router is closed to them
    assert (
        chief.post(base, json={"subject_kind": "institution", "subject_code": INST, "source": "12345"}).status_code
        == 403
    )
    post(hosp, htok, base, {"subject_kind": "institution", "subject_code": INST, "source": "x"}, status=403)
    bad = post(
        chief,
        tok,
        base,
        {
            "subject_kind": "institution",
            "subject_code": INST,
            "clue_kind": "complaint",
            "source": "举报 2026-001",
            "loss_fen": -1,
        },
        status=400,
    )
    assert bad["detail"]["field"] == "loss_fen" and bad["detail"]["message_zh"]
    cid = post(
        chief,
        tok,
        base,
        {
            "subject_kind": "institution",
            "subject_code": INST,
            "clue_kind": "complaint",
            "source": "举报 2026-001",
            "loss_fen": 100_000,
        },
    )["case_id"]
    r = post(chief, tok, f"{base}/{cid}/recover", {"amount_fen": 1}, status=400)
    assert "cannot recover a case in state 'clue'" in r["detail"]["message_en"] and "线索" in r["detail"]["message_zh"]
    post(chief, tok, f"{base}/{cid}/file")
    post(chief, tok, f"{base}/{cid}/investigate")
    post(chief, tok, f"{base}/{cid}/note", {"violation": "institution_irregular", "note": "串换项目: 30 次"})
    got = chief.get(f"{base}/{cid}").json()
    bench = {b["band"]: (b["fine_min_fen"], b["fine_max_fen"]) for b in got["benchmark"]}
    assert bench["general"] == (130_000, 170_000)  # 条例 第三十八条: general band 1.3-1.7x the loss of 1,000 yuan
    assert set(got["next_actions"]) == {"note", "transfer", "submit_review", "decide"}
    # the proposer may not review, the reviewer may not decide
    post(chief, tok, f"{base}/{cid}/submit_review", {"violation": "institution_irregular"})
    r = post(chief, tok, f"{base}/{cid}/review_pass", status=400)
    assert r["detail"]["field"] == "actor"
    post(legal, ltok, f"{base}/{cid}/review_pass")
    assert post(legal, ltok, f"{base}/{cid}/decide", {"fine_fen": 150_000}, status=400)["detail"]["field"] == "actor"
    assert post(chief, tok, f"{base}/{cid}/decide", {"fine_fen": 170_001}, status=400)["detail"]["field"] == "fine_fen"
    assert (
        post(chief, tok, f"{base}/{cid}/decide", {"fine_fen": 150_000, "amount_fen": 5}, status=400)["detail"]["field"]
        == "amount_fen"
    )
    post(chief, tok, f"{base}/{cid}/decide", {"fine_fen": 150_000})
    assert (
        post(chief, tok, f"{base}/{cid}/recover", {"amount_fen": -100}, status=400)["detail"]["field"] == "amount_fen"
    )
    assert post(chief, tok, f"{base}/{cid}/recover", {"amount_fen": 0}, status=400)["detail"]["field"] == "amount_fen"
    out = post(chief, tok, f"{base}/{cid}/recover", {"amount_fen": 100_000})
    assert out["state"] == "recovering" and out["case"]["recovered_fen"] == 100_000
    post(chief, tok, f"{base}/{cid}/collect_fine", {"amount_fen": 150_000})
    got = chief.get(f"{base}/{cid}").json()
    assert [h["action"] for h in got["history"]] == [
        "open",
        "file",
        "investigate",
        "note",
        "submit_review",
        "review_pass",
        "decide",
        "recover",
        "collect_fine",
    ]
    assert [h["actor"] for h in got["history"]] == ["chief"] * 5 + ["legal1"] + ["chief"] * 3
    assert (
        got["history"][7]["payload"]["before"]["recovered_fen"] == 0
        and got["history"][7]["payload"]["after"]["recovered_fen"] == 100_000
    )
    assert got["case"]["fine_paid_fen"] == 150_000
    assert any(c["id"] == cid for c in chief.get(base, params={"state": "recovering"}).json())
    assert chief.get(base, params={"state": "nirvana"}).status_code == 400
    assert credit_grade(engine, "institution", INST).points == 6


def test_decided_enterprise_case_blocks_procurement_until_revoked_on_appeal(web):
    """Credit grades follow decided cases and feed procurement eligibility; revoking on appeal withdraws the points."""
    import datetime as dt

    from yibao.procurement.params import get_ruleset, list_rulesets
    from yibao.procurement.service import supervision_credit_lookup

    app, engine = web
    chief, tok = _client(app, "chief")
    base = "/api/v1/supervision/cases"

    def post(path, body=None, status=200):
        r = chief.post(path, json=body or {}, headers={"X-CSRF-Token": tok})
        assert r.status_code == status, r.text
        return r.json()

    cid = post(
        base,
        {"subject_kind": "enterprise", "subject_code": "FIRM-X", "clue_kind": "referral", "source": "省医保局移送"},
    )["case_id"]
    post(f"{base}/{cid}/file")
    post(f"{base}/{cid}/investigate")
    # the bureau rates credit, it does not fine: the benchmark's range is 0
    assert (
        post(
            f"{base}/{cid}/decide",
            {"violation": "enterprise_price_procurement", "band": "serious", "fine_fen": 1},
            status=400,
        )["detail"]["field"]
        == "fine_fen"
    )
    post(
        f"{base}/{cid}/decide",
        {"violation": "enterprise_price_procurement", "band": "serious", "fine_fen": 0, "note": "商业贿赂"},
    )
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    grade = supervision_credit_lookup(engine, today)("FIRM-X")
    assert grade == "severe" and credit_grade(engine, "enterprise", "FIRM-X").blacklisted
    national = [n for n in list_rulesets() if n.startswith("national")]
    assert national and all(grade in get_ruleset(n).eligibility.excluded_credit_grades for n in national[:3])
    post(f"{base}/{cid}/appeal", {"appeal_kind": "litigation"})
    post(f"{base}/{cid}/revoke", {"note": "法院判决撤销"})
    assert supervision_credit_lookup(engine, today)("FIRM-X") == "good"
    with session_scope(engine) as s:
        pts = [
            p.points for p in s.scalars(select(CreditPoint).where(CreditPoint.case_id == cid).order_by(CreditPoint.id))
        ]
    assert pts == [15, -15]  # the award stays on record, cancelled by a counter-entry
    assert post(f"{base}/{cid}/revoke", status=400)["detail"]["field"] == "action"


def test_console_case_page_forms(web):
    app, engine = web
    chief, tok = _client(app, "chief")
    hosp, htok = _client(app, "hosp1")
    form = {
        "subject_kind": "institution",
        "subject_code": INST,
        "clue_kind": "inspection",
        "source": "日常检查 2026-12",
        "loss_fen": "20000",
    }
    # a POST without the page's CSRF token is refused and opens nothing
    assert chief.post("/console/supervision/cases", data=form, follow_redirects=False).status_code == 403
    r = chief.post("/console/supervision/cases", data={**form, "csrf_token": tok}, follow_redirects=False)
    assert r.status_code == 303
    cid = int(re.search(r"/cases/(\d+)", r.headers["location"]).group(1))
    page = chief.get(f"/console/supervision/cases/{cid}").text
    assert 'id="step-file"' in page and 'id="step-dismiss"' in page and 'id="step-publish"' not in page
    assert f'name="csrf_token" value="{tok}"' in page

    def step(client, token, action, **fields):
        r = client.post(
            f"/console/supervision/cases/{cid}/step",
            data={"csrf_token": token, "action": action, **fields},
            follow_redirects=False,
        )
        assert r.status_code == 303
        return client.get(r.headers["location"]).text

    page = step(chief, tok, "publish")  # out of order: the page says why, nothing changes
    assert "不能执行 publish" in page and _case(engine, cid).state == "clue"
    step(chief, tok, "file")
    step(chief, tok, "investigate")
    page = step(chief, tok, "note", violation="institution_irregular", note="分解收费")
    assert 'id="benchmark"' in page and 'data-band="general" data-min="26000" data-max="34000"' in page
    page = step(chief, tok, "decide", violation="institution_irregular", band="general", fine_fen="40000")
    assert "不在裁量基准范围" in page and _case(engine, cid).state == "investigating"
    page = step(chief, tok, "decide", violation="institution_irregular", band="general", fine_fen="30000")
    assert 'data-state="decided"' in page
    page = step(chief, tok, "recover", amount_fen="-1")
    assert "须为正数" in page
    page = step(chief, tok, "recover", amount_fen="1.5")
    assert _case(engine, cid).recovered_fen == 0
    page = step(chief, tok, "recover", amount_fen="20000")
    assert _case(engine, cid).recovered_fen == 20_000
    # the institution sees its own case; the only step open to it is the appeal
    hp = hosp.get(f"/console/supervision/cases/{cid}").text
    assert 'id="step-appeal"' in hp and 'id="step-close"' not in hp
    hp = step(hosp, htok, "close")
    assert "无权" in hp and _case(engine, cid).state == "recovering"
    page = chief.get(f"/console/supervision/cases/{cid}").text
    actions = re.findall(r'<tr data-action="([a-z_]+)" data-actor="([a-z0-9]+)"', page)
    assert actions == [
        ("open", "chief"),
        ("file", "chief"),
        ("investigate", "chief"),
        ("note", "chief"),
        ("decide", "chief"),
        ("recover", "chief"),
    ]
    assert "recovered_fen: 0 → 20000" in page
    assert (
        'href="/console/supervision/cases"' in chief.get("/console/supervision").text
    )  # reached from the supervision page
    lst = chief.get("/console/supervision/cases").text
    assert f'id="case-{cid}"' in lst and 'id="case-open"' in lst
    assert 'id="case-open"' not in hosp.get("/console/supervision/cases").text  # intake is the bureau's
