"""The maternity allowance claim (生育津贴申领): hand-worked amounts from the policy files, every refusal with
nothing written, the review workflow, the prenatal-visit check in settlement, and the CLI, REST and console.

Figures (yibao/data/policies): 98 days a birth, +15 难产, +15 per extra baby, 流产 15 / 42 days at 16 weeks,
wage / 30 × days, 12 contribution months; example city A (990100) pays an ILLUSTRATIVE lump sum of ¥2,000
(birth), ¥3,000 (难产), ¥500 / ¥1,000 (流产), ¥500 per extra baby; example city B (990200) lets the insured father
claim 15 days (陪产假, illustrative).
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.console_support import console_login, page_csrf
from tests.factories import claim, line
from tests.settlement_support import BOOK, D, facts, snapshot, svc  # noqa: F401  (svc is a fixture)
from yibao.benefits import maternity as rules
from yibao.cli import app as cli
from yibao.codes import registry
from yibao.core import db as ydb
from yibao.core.db import SHANGHAI
from yibao.core.errors import ClaimRejected
from yibao.enrolment import service as en
from yibao.maternity import service as ms
from yibao.maternity.models import MaternityClaim, MaternityClaimStep
from yibao.settlement.rules import PersonFacts

NOW = dt.datetime(2025, 6, 1, 9, tzinfo=SHANGHAI)
EVENT = dt.date(2025, 3, 10)
WAGE = 600_000  # ¥6,000.00 a month
CLAIM_MODELS = (MaternityClaim, MaternityClaimStep)
PW = "correct horse battery staple 9"


def _person(s, psn_no: str, gend: str, region: str = "990100") -> None:
    s.add(
        registry.Person(
            psn_no=psn_no,
            gend=gend,
            brdy=dt.date(1992, 2, 2),
            insutype="310",
            psn_type="in_service",
            insuplc_admdvs=region,
            contribution_base=WAGE,
            synthetic=True,
        )
    )


def _insure(engine, psn_no: str, months: int = 12, start: dt.date = dt.date(2024, 1, 1)) -> None:
    """Employee and maternity periods from ``start`` and ``months`` paid months from 2024-01 (15th of the month)."""
    en.enrol(engine, psn_no, "310", start)
    en.enrol(engine, psn_no, "510", start)
    for i in range(months):
        y, m = 2024 + i // 12, 1 + i % 12
        en.pay_employee_month(engine, psn_no, f"{y}-{m:02d}", WAGE, dt.date(y, m, 15))


@pytest.fixture
def world(svc, db_engine):  # noqa: F811
    """W1 (woman, city A) insured 12 months; W2 (woman, A) only in 310; W3 (woman, A) 11 months; W4 (woman, A)
    in 510 only from 2025-04-01;
    M1 (man, A) and M2 (man, city B) insured 12 months."""
    with ydb.session_scope(db_engine) as s:
        for p, g, r in (("W1", "2", "990100"), ("W2", "2", "990100"), ("W3", "2", "990100"), ("W4", "2", "990100")):
            _person(s, p, g, r)
        _person(s, "M1", "1", "990100")
        _person(s, "M2", "1", "990200")
    _insure(db_engine, "W1")
    _insure(db_engine, "M1")
    _insure(db_engine, "M2")
    _insure(db_engine, "W3", months=11)
    for p in ("W2", "W4"):
        en.enrol(db_engine, p, "310", dt.date(2024, 1, 1))
        for i in range(12):
            en.pay_employee_month(db_engine, p, f"2024-{i + 1:02d}", WAGE, dt.date(2024, i + 1, 15))
    en.enrol(db_engine, "W4", "510", dt.date(2025, 4, 1))
    return db_engine


def _req(psn_no="W1", kind="birth", babies=1, weeks=None, day=EVENT, wage=WAGE, applied=None) -> ms.ClaimRequest:
    return ms.ClaimRequest(psn_no, "Synthetic Works Ltd (合成)", kind, day, wage, babies, weeks, applied)


def _file(engine, req=None, now=NOW) -> MaternityClaim:
    cid = ms.file_claim(engine, req or _req(), actor="clerk", book=BOOK, now=now)
    with ydb.session_scope(engine) as s:
        return ms.get_claim(s, cid)


# --- hand-worked amounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,babies,weeks,days,allowance,lump",
    [
        ("birth", 1, None, 98, 1_960_000, 200_000),  # ¥6,000 / 30 × 98 = ¥19,600; 定额 ¥2,000
        ("difficult_birth", 2, None, 128, 2_560_000, 350_000),  # 98 + 15 + 15; ¥3,000 + ¥500 extra baby
        ("birth", 3, None, 128, 2_560_000, 300_000),  # 98 + 2 × 15; ¥2,000 + 2 × ¥500
        ("miscarriage", 1, 10, 15, 300_000, 50_000),  # under 16 weeks: 15 days; ¥500
        ("miscarriage", 1, 16, 42, 840_000, 100_000),  # from 16 weeks: 42 days; ¥1,000
    ],
)
def test_claim_amounts_hand_worked(world, kind, babies, weeks, days, allowance, lump):
    c = _file(world, _req(kind=kind, babies=babies, weeks=weeks))
    assert (c.contribution_months, c.days, c.allowance, c.lump_sum) == (12, days, allowance, lump)
    assert c.amount == allowance + lump and c.status == "submitted" and c.claimant == "insured_woman"


def test_wage_rounds_half_up_once(world):
    c = _file(world, _req(kind="miscarriage", weeks=8, wage=100_001))  # ¥1,000.01 / 30 × 15 = 500.005 → 500.01
    assert c.allowance == 50_001


def test_father_claims_paternity_days_where_the_file_allows(world):
    c = _file(world, _req("M2"))  # city B: insured_spouse, 15 days, no lump sum
    assert (c.claimant, c.days, c.allowance, c.lump_sum, c.amount) == ("insured_spouse", 15, 300_000, 0, 300_000)


def test_months_count_only_paid_months_before_the_event_month(world):
    # W1 paid 2024-01 … 2024-12; a 2025-01 month paid after the event does not count, nor does the event month
    en.pay_employee_month(world, "W1", "2025-01", WAGE, dt.date(2025, 3, 20))
    en.pay_employee_month(world, "W1", "2025-03", WAGE, dt.date(2025, 3, 5))
    assert _file(world).contribution_months == 12


# --- refusals: each with nothing written -----------------------------------------------------------------------


def _claim_rows(engine):
    return snapshot(engine, CLAIM_MODELS)


@pytest.mark.parametrize(
    "req,field,zh",
    [
        (_req("W2"), "psn_no", "未参加生育保险"),  # enrolled in 310 only
        (_req("W4"), "psn_no", "未参加生育保险"),  # her 510 period starts after the event
        (_req("W3"), "contribution_months", "不足 12 个月"),
        (_req("M1"), "psn_no", "仅由参保女职工本人"),  # city A: only the insured woman
        (_req(wage=-1), "average_wage", "不能为负"),
        (_req(day=dt.date(2025, 6, 2)), "event_date", "晚于今天"),
        (_req(applied=dt.date(2025, 3, 9)), "applied_on", "早于生育日期"),
        (_req(applied=dt.date(2025, 6, 2)), "applied_on", "晚于今天"),
        (_req(kind="twins"), "event_kind", "无效"),
        (_req(kind="miscarriage"), "pregnancy_weeks", "妊娠周数"),
        (_req("NOBODY"), "psn_no", "不存在"),
        (_req("M2", kind="miscarriage", weeks=10), "event_kind", "陪产假"),
    ],
)
def test_refusals_change_nothing(world, req, field, zh):
    before = _claim_rows(world)
    with pytest.raises(ms.MaternityError) as e:
        ms.file_claim(world, req, actor="clerk", book=BOOK, now=NOW)
    assert e.value.field == field and zh in e.value.message_zh and e.value.message_en
    assert _claim_rows(world) == before


def test_stopped_maternity_period_is_no_cover(world):
    en.stop(world, "W1", "510", dt.date(2025, 2, 28), reason="left employer")
    with pytest.raises(ms.MaternityError, match="stopped"):
        ms.file_claim(world, _req(), actor="clerk", book=BOOK, now=NOW)


def test_duplicate_claim_refused_until_the_first_is_rejected(world):
    first = _file(world)
    before = _claim_rows(world)
    with pytest.raises(ms.MaternityError, match="already has claim") as e:
        ms.file_claim(world, _req(kind="difficult_birth"), actor="clerk", book=BOOK, now=NOW)
    assert e.value.field == "event_date" and _claim_rows(world) == before
    ms.review(world, first.id, "reject", actor="reviewer", note="birth certificate missing", now=NOW)
    assert _file(world).status == "submitted"  # a rejected claim may be filed again


# --- the workflow ---------------------------------------------------------------------------------------------


def test_workflow_check_approve_pay_with_an_append_only_history(world):
    c = _file(world)
    before = _claim_rows(world)
    with pytest.raises(ms.MaternityError, match="approve needs checked"):
        ms.review(world, c.id, "approve", actor="chief", now=NOW)
    with pytest.raises(ms.MaternityError, match="reason"):
        ms.review(world, c.id, "reject", actor="chief", note=" ", now=NOW)
    with pytest.raises(ms.MaternityError, match="unknown action"):
        ms.review(world, c.id, "undo", actor="chief", now=NOW)
    assert _claim_rows(world) == before
    assert ms.review(world, c.id, "check", actor="clerk2", now=NOW).status == "checked"
    approved = ms.review(world, c.id, "approve", actor="chief", note="ok", now=NOW)
    assert (approved.status, approved.decided_by, approved.decided_at) == ("approved", "chief", NOW)
    with pytest.raises(ms.MaternityError):
        ms.review(world, c.id, "reject", actor="chief", note="too late", now=NOW)
    assert ms.review(world, c.id, "pay", actor="cashier", now=NOW).status == "paid"
    with ydb.session_scope(world) as s:
        steps = [(x.action, x.from_status, x.to_status, x.actor) for x in ms.claim_steps(s, c.id)]
    assert steps == [
        ("submit", "", "submitted", "clerk"),
        ("check", "submitted", "checked", "clerk2"),
        ("approve", "checked", "approved", "chief"),
        ("pay", "approved", "paid", "cashier"),
    ]


# --- prenatal visits (med_type 51) in settlement ---------------------------------------------------------------


def _visit(psn_no: str, mdtrt_id: str):
    f = facts("E1")
    who = PersonFacts(psn_no, "310", "in_service", "2" if psn_no.startswith("W") else "1", f.brdy, "990100", "", False)
    return claim(mdtrt_id, who, [line(1, "A-DRUG", 150)], med_type="51", when=D(3, 1))


def test_prenatal_visit_of_an_insured_woman_settles(svc, world):  # noqa: F811
    res = svc.settle(_visit("W1", "PN1"), msgid="pn-1")
    assert res.settlement.category == "maternity" and res.settlement.hifp_pay == 15_000  # 100 % of ¥150


@pytest.mark.parametrize("psn_no,zh", [("M1", "非女性"), ("W2", "无生育保险待遇资格")])
def test_prenatal_visit_refused_with_nothing_written(svc, world, psn_no, zh):  # noqa: F811
    before = snapshot(world)
    with pytest.raises(ClaimRejected) as e:
        svc.settle(_visit(psn_no, "PN2"), msgid="pn-2")
    assert zh in e.value.message_zh
    assert snapshot(world) == before


# --- the pure rules agree with the stored claim ----------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(wage=st.integers(0, 10**8), kind=st.sampled_from(rules.EVENT_KINDS), babies=st.integers(1, 4))
def test_days_and_lump_sum_for_any_event(wage, kind, babies):
    m = rules.maternity_rules(BOOK.snapshot("990100", EVENT))
    weeks = 12 if kind == "miscarriage" else None
    days = rules.claim_days(m, rules.WOMAN, kind, babies, weeks)
    amount = rules.allowance_amount(m.allowance, wage, days)
    assert abs(amount * 30 - wage * days) <= 15  # within half a fen of wage / 30 × days
    if kind == "miscarriage":
        assert (days, rules.lump_sum(m, rules.WOMAN, kind, babies, weeks)) == (15, 50_000)
    else:
        extra = 300_000 if kind == "difficult_birth" else 200_000
        assert rules.lump_sum(m, rules.WOMAN, kind, babies, weeks) == extra + 50_000 * (babies - 1)
        assert rules.lump_sum(m, rules.SPOUSE, kind, babies, weeks) == 0


# --- CLI, REST, console ---------------------------------------------------------------------------------------


def test_cli_new_review_show_list_and_a_one_line_refusal(world, db_url):
    run = CliRunner().invoke
    base = ["maternity", "claim", "new", "W1", "--employer", "Synthetic Works", "--on", "2025-03-10"]
    ok = run(cli, base + ["--wage", "6000.00", "--kind", "difficult_birth", "--babies", "2", "--db", db_url])
    assert ok.exit_code == 0, ok.output
    assert "128 days" in ok.output and "25,600.00" in ok.output and "3,500.00" in ok.output and "29,100.00" in ok.output
    dup = run(cli, base + ["--wage", "6000.00", "--db", db_url])
    assert dup.exit_code == 2 and "已有" in dup.output
    assert run(cli, ["maternity", "claim", "review", "1", "check", "--actor", "a", "--db", db_url]).exit_code == 0
    shown = run(cli, ["maternity", "claim", "show", "1", "--db", db_url])
    assert '"status": "checked"' in shown.output and '"amount": 2910000' in shown.output
    listed = run(cli, ["maternity", "claim", "list", "--status", "checked", "--db", db_url])
    assert "W1" in listed.output and "29,100.00" in listed.output


def _app(engine):
    from yibao.maternity.api import router
    from yibao.web.auth import require
    from yibao.web.console import mount_console

    app = FastAPI()
    app.state.yibao_engine = engine
    console = mount_console(app, engine)
    app.include_router(router, dependencies=[Depends(require("bureau"))])
    console.auth.add_user("bureau", PW, "bureau")
    console.auth.add_user("hosp", PW, "institution", fixmedins_code="H1")
    return app


def test_rest_file_review_and_read(world):
    c = TestClient(_app(world))
    body = {"psn_no": "W1", "employer": "Synthetic Works", "event_kind": "birth", "event_date": "2025-03-10"}
    assert c.post("/api/v1/maternity/claims", json={**body, "average_wage_fen": WAGE}).status_code == 401
    assert console_login(c, "bureau", PW).status_code == 303
    h = {"X-CSRF-Token": page_csrf(c, "/console/maternity")}
    r = c.post("/api/v1/maternity/claims", json={**body, "average_wage_fen": WAGE}, headers=h)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["days"], got["allowance"], got["lump_sum"], got["amount"]) == (98, 1_960_000, 200_000, 2_160_000)
    assert got["steps"][0]["actor"] == "bureau"
    bad = c.post("/api/v1/maternity/claims", json={**body, "average_wage_fen": -5}, headers=h)
    assert bad.status_code == 400 and bad.json()["detail"]["field"] == "average_wage"
    cid = got["claim_id"]
    step = c.post(f"/api/v1/maternity/claims/{cid}/review", json={"action": "check"}, headers=h)
    assert step.json()["status"] == "checked"
    wrong = c.post(f"/api/v1/maternity/claims/{cid}/review", json={"action": "pay"}, headers=h)
    assert wrong.status_code == 400 and wrong.json()["detail"]["message_zh"]
    assert [x["status"] for x in c.get("/api/v1/maternity/claims").json()] == ["checked"]
    assert c.get("/api/v1/maternity/claims/999").status_code == 404


def test_console_queue_detail_and_decision_with_csrf(world):
    cid = _file(world).id
    app = _app(world)
    c = TestClient(app)
    assert console_login(c, "bureau", PW).status_code == 303
    q = c.get("/console/maternity")
    assert q.status_code == 200 and "生育" in q.text and "21,600.00" in q.text and "已申报" in q.text
    page = c.get(f"/console/maternity/{cid}")
    assert "19,600.00" in page.text and "2,000.00" in page.text and "初审通过" in page.text
    no_token = c.post(f"/console/maternity/{cid}/review", data={"action": "check"}, follow_redirects=False)
    assert no_token.status_code == 403
    with ydb.session_scope(world) as s:
        assert ms.get_claim(s, cid).status == "submitted"
    token = page_csrf(c, f"/console/maternity/{cid}")
    done = c.post(f"/console/maternity/{cid}/review", data={"action": "check", "csrf_token": token})
    assert done.status_code == 200 and "已初审" in done.text
    refused = c.post(f"/console/maternity/{cid}/review", data={"action": "reject", "csrf_token": token})
    assert "不予支付须填写理由" in refused.text
    other = TestClient(app)
    assert console_login(other, "hosp", PW).status_code == 303
    assert other.get("/console/maternity", follow_redirects=False).status_code == 403


def test_demo_settles_the_visits_and_approves_the_claim(svc, db_engine):  # noqa: F811
    from tests.settlement_support import CAT
    from yibao.demo.maternity import DEMO_PSN_NO, demo_maternity

    out = demo_maternity(db_engine, "H2", "990100", catalog=CAT)
    assert len(out) == 3, out
    assert "prenatal visit" in out[0] and "maternity" in out[0] and "fund (hifp_pay) 300.00" in out[0]
    assert "delivery" in out[1] and "fund (hifp_pay) 3,000.00" in out[1]
    # ¥8,000 / 30 × 98 = 26,133.333… → ¥26,133.33; city A's illustrative ¥2,000 birth lump sum
    assert "approved: 12 months paid, 98 days" in out[2] and "26,133.33 + lump sum 2,000.00 = 28,133.33" in out[2]
    with ydb.session_scope(db_engine) as s:
        (row,) = ms.list_claims(s, psn_no=DEMO_PSN_NO)
        assert (row.status, row.amount, row.decided_by) == ("approved", 2_813_333, "demo-chief")
    assert demo_maternity(db_engine, "H2", "990100", catalog=CAT) == []  # once only
