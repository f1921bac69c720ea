"""The console without a browser: access control on every page and API, sessions, masking, figures, Excel."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.console_support import console_login, page_csrf
from yibao.codes import registry
from yibao.core import db
from yibao.settlement import records
from yibao.web import charts
from yibao.web.auth import AuthError, Mask, check_password, hash_password, mask
from yibao.web.console import mount_console

T0 = dt.datetime(2025, 6, 1, 10, 0, tzinfo=db.SHANGHAI)
PW = "s3cret-pass"


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def _settlement(setl_id, psn, inst, when, medfee, hifp, hifob=0, acct=0, cash=None, insutype="310", cancelled=False):
    cash = medfee - hifp - hifob - acct if cash is None else cash
    zero = dict(
        fulamt_ownpay_amt=0,
        overlmt_selfpay=0,
        preselfpay_amt=0,
        inscp_scp_amt=medfee,
        act_pay_dedc=0,
        hifmi_pay=0,
        cvlserv_pay=0,
        maf_pay=0,
        hifes_pay=0,
        oth_pay=0,
        hosp_part_amt=0,
        acct_mulaid_pay=0,
    )
    return records.Settlement(
        setl_id=setl_id,
        mdtrt_id=f"M{setl_id}",
        psn_no=psn,
        fixmedins_code=inst,
        setl_time=when,
        policy_year=when.year,
        insutype=insutype,
        med_type="11",
        benefit_category="outpatient",
        medfee_sumamt=medfee,
        hifp_pay=hifp,
        hifob_pay=hifob,
        fund_pay_sumamt=hifp + hifob,
        psn_part_amt=medfee - hifp - hifob,
        acct_pay=acct,
        psn_cash_pay=cash,
        refd_setl_flag=cancelled,
        synthetic=True,
        **zero,
    )


@pytest.fixture
def world(db_engine):
    """Two institutions (levels 2 and 3), three people, five settlements (one cancelled) — figures by hand."""
    with db.session_scope(db_engine) as s:
        for code, lv in (("HA", 2), ("HB", 3)):
            s.add(
                registry.Institution(
                    fixmedins_code=code,
                    fixmedins_name=f"医院{code}",
                    fixmedins_type="hospital",
                    hosp_lv=lv,
                    admdvs="990101",
                    synthetic=True,
                )
            )
        for psn, cert, ins in (
            ("P1", "990101199001010011", "310"),
            ("P2", "990101199201010022", "390"),
            ("P3", "990101198001010033", "310"),
        ):
            s.add(
                registry.Person(
                    psn_no=psn,
                    certno=cert,
                    psn_name="王小明",
                    insutype=ins,
                    psn_type="in_service",
                    insuplc_admdvs="990100",
                    synthetic=True,
                )
            )
        s.flush()
        rows = [
            _settlement("S1", "P1", "HA", T0.replace(month=1), 10_000, 7_000),
            _settlement("S2", "P2", "HA", T0.replace(month=1, day=20), 20_000, 12_000, insutype="390"),
            _settlement("S3", "P1", "HB", T0.replace(month=2), 50_000, 30_000, hifob=5_000, acct=2_000),
            _settlement("S4", "P3", "HB", T0.replace(month=2, day=3), 99_900, 50_000, cancelled=True),
            _settlement("S5", "P3", "HB", T0.replace(year=2024), 1_000, 500),
        ]
        for r in rows:
            s.add(
                records.Encounter(
                    mdtrt_id=r.mdtrt_id,
                    psn_no=r.psn_no,
                    fixmedins_code=r.fixmedins_code,
                    med_type="11",
                    begntime=r.setl_time,
                    policy_year=r.policy_year,
                    synthetic=True,
                )
            )
        s.flush()
        s.add_all(rows)
    clock = Clock(T0)
    app = FastAPI()
    console = mount_console(app, db_engine, clock=clock)
    console.auth.add_user("bureau", PW, "bureau")
    console.auth.add_user("ha", PW, "institution", fixmedins_code="HA")
    console.auth.add_user("p1", PW, "public", psn_no="P1")
    return app, console, clock


def client(app, user: str | None) -> TestClient:
    c = TestClient(app)
    if user:
        r = console_login(c, user, PW)
        assert r.status_code == 303, r.text
    return c


PAGES = [
    "/console/fund",
    "/console/fund.xlsx",
    "/console/api/fund",
    "/console/settlement",
    "/console/settlement/S1",
    "/console/api/settlement/S1",
    "/console/settlement.xlsx",
    "/console/procurement",
    "/console/payment",
    "/console/supervision",
    "/console/procurement.xlsx",
    "/console/ecode",
    "/console/ecode/events.xlsx",
    "/console/mycode",
]
ALLOWED = {
    "bureau": {p for p in PAGES if "mycode" not in p},
    "ha": {p for p in PAGES if "ecode" not in p and "mycode" not in p},
    "p1": {
        "/console/settlement",
        "/console/settlement/S1",
        "/console/api/settlement/S1",
        "/console/settlement.xlsx",
        "/console/mycode",
    },
}


@pytest.mark.parametrize("user", ["bureau", "ha", "p1", None])
def test_every_page_and_api_checks_the_role(world, user) -> None:
    app, _, _ = world
    c = client(app, user)
    for path in PAGES:
        r = c.get(path, follow_redirects=False)
        if user is None:
            assert r.status_code in (303, 401), path
            if r.status_code == 303:
                assert r.headers["location"].startswith("/console/login")
            continue
        if path in ALLOWED[user]:
            assert r.status_code in (200, 404), (user, path, r.status_code)  # 404: no procurement data to export
        else:
            assert r.status_code == 403, (user, path, r.status_code)
    # writes too
    token = page_csrf(c, "/console/login") if user is None else page_csrf(c, "/console/settlement")
    r = c.post(
        "/console/ecode/action", data={"psn_no": "P1", "action": "block", "csrf_token": token}, follow_redirects=False
    )
    if user == "bureau":
        assert r.status_code == 303 and r.headers["location"].startswith("/console/ecode?msg=ok")
    elif user is None:
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    else:
        assert r.status_code == 403


def test_fund_figures_by_hand(world) -> None:
    app, _, _ = world
    j = client(app, "bureau").get("/console/api/fund").json()
    # 2025, not cancelled: S1, S2, S3
    assert j["year"] == 2025 and j["totals_fen"]["claims"] == 3
    assert j["totals_fen"]["medfee_sumamt"] == 80_000 and j["totals_fen"]["fund_pay_sumamt"] == 54_000
    assert (
        j["totals_fen"]["hifp_pay"] == 49_000
        and j["totals_fen"]["hifob_pay"] == 5_000
        and j["totals_fen"]["acct_pay"] == 2_000
    )
    by = {(r["month"], r["insutype"], r["hosp_lv"]): r["fund_pay_sumamt"] for r in j["rows"]}
    assert by == {("2025-01", "310", 2): 7_000, ("2025-01", "390", 2): 12_000, ("2025-02", "310", 3): 35_000}
    # the institution sees only its own; the year can be chosen
    j = client(app, "ha").get("/console/api/fund").json()
    assert j["scope"] == "HA" and j["totals_fen"]["claims"] == 2 and j["totals_fen"]["fund_pay_sumamt"] == 19_000
    assert client(app, "bureau").get("/console/api/fund?year=2024").json()["totals_fen"]["fund_pay_sumamt"] == 500


def test_fund_page_cache_follows_new_settlements(world, db_engine) -> None:
    app, _, _ = world
    c = client(app, "bureau")
    assert c.get("/console/api/fund").json()["totals_fen"]["claims"] == 3
    with db.session_scope(db_engine) as s:
        s.add(
            records.Encounter(
                mdtrt_id="MS6",
                psn_no="P2",
                fixmedins_code="HA",
                med_type="11",
                begntime=T0,
                policy_year=2025,
                synthetic=True,
            )
        )
        s.flush()
        s.add(_settlement("S6", "P2", "HA", T0, 4_000, 1_000, insutype="390"))
    assert c.get("/console/api/fund").json()["totals_fen"]["claims"] == 4


def test_institution_and_public_scopes_on_settlements(world) -> None:
    app, _, _ = world
    ha, p1 = client(app, "ha"), client(app, "p1")
    assert ha.get("/console/api/settlement/S1").status_code == 200
    assert ha.get("/console/api/settlement/S3").status_code == 404  # another institution's
    assert p1.get("/console/api/settlement/S3").status_code == 200  # their own, anywhere
    assert p1.get("/console/api/settlement/S2").status_code == 404  # someone else's
    assert "S2" not in p1.get("/console/settlement").text


def test_settlement_shares_and_masking(world) -> None:
    app, _, _ = world
    j = client(app, "bureau").get("/console/api/settlement/S3").json()
    shares = {x["field"]: x["fen"] for x in j["shares"]}
    assert shares["hifp_pay"] == 30_000 and shares["hifob_pay"] == 5_000 and shares["acct_pay"] == 2_000
    assert shares["psn_cash_pay"] == 13_000 and sum(shares.values()) == 50_000
    hifp_rule = next(x for x in j["shares"] if x["field"] == "hifp_pay")["rule_zh"]
    assert "统筹支付比例" in hifp_rule and "三级" in hifp_rule
    assert j["psn_name"] == "王**" and j["psn_no"] == "P*"  # too short for its rule: all but the first character
    assert client(app, "bureau").get("/console/api/settlement/S3?unmask=1").json()["psn_name"] == "王小明"
    assert (
        client(app, "ha").get("/console/api/settlement/S1?unmask=1").json()["psn_name"] == "王**"
    )  # no right to unmask


def test_session_expires_and_logout_ends_it(world) -> None:
    app, console, clock = world
    c = client(app, "bureau")
    assert c.get("/console/api/fund").status_code == 200
    clock.t = T0 + dt.timedelta(minutes=console.auth.cfg.session.ttl_minutes) - dt.timedelta(seconds=1)
    assert c.get("/console/api/fund").status_code == 200
    clock.t = T0 + dt.timedelta(minutes=console.auth.cfg.session.ttl_minutes)
    assert c.get("/console/api/fund").status_code == 401
    clock.t = T0
    c = client(app, "bureau")
    c.post("/console/logout", data={"csrf_token": page_csrf(c, "/console/fund")})
    assert c.get("/console/api/fund").status_code == 401
    bad = console_login(TestClient(app), "bureau", "wrong-password")
    assert bad.status_code == 401 and "用户名或密码错误" in bad.text


def test_users_are_validated(world) -> None:
    _, console, _ = world
    with pytest.raises(AuthError) as e:
        console.auth.add_user("x", PW, "institution", fixmedins_code="NOPE")
    assert e.value.field == "fixmedins_code"
    with pytest.raises(AuthError):
        console.auth.add_user("x", "short", "bureau")
    with pytest.raises(AuthError):
        console.auth.add_user("x", PW, "root")


def test_excel_export_reads_back(world) -> None:
    from openpyxl import load_workbook

    app, _, _ = world
    r = client(app, "ha").get("/console/settlement.xlsx")
    assert r.status_code == 200
    rows = list(load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert [x[0] for x in rows[2:]] == ["S1", "S2"]  # own institution only, in time order
    assert rows[2][rows[1].index("fund_pay_sumamt (元)")] == 70.0
    assert rows[2][2] == "P*"  # masked in exports too; certno is never exported


def test_background_export_job_belongs_to_its_owner(world) -> None:
    import time

    app, _, _ = world
    c = client(app, "bureau")
    job = c.post(
        "/console/jobs/export-settlements", headers={"X-CSRF-Token": page_csrf(c, "/console/settlement")}
    ).json()
    assert job["total"] == 5
    for _ in range(100):
        job = c.get(f"/console/jobs/{job['id']}").json()
        if job["status"] != "running":
            break
        time.sleep(0.05)
    assert job["status"] == "done" and job["percent"] == 100.0
    assert c.get(f"/console/jobs/{job['id']}/file").status_code == 200
    assert client(app, "ha").get(f"/console/jobs/{job['id']}").status_code == 404


def test_language_switch(world) -> None:
    app, _, _ = world
    c = client(app, "bureau")
    assert "基金收支" in c.get("/console/fund").text
    c.get("/console/lang/en")
    t = c.get("/console/fund").text
    assert "Fund" in t and "基金收支" not in t


def test_absent_subsystem_data_is_said_plainly(world) -> None:
    app, _, _ = world
    c = client(app, "bureau")
    t = c.get("/console/payment").text
    assert 'id="absent"' in t and "YIBAO_CONSOLE_DATA" in t
    t = c.get("/console/procurement").text
    assert "尚无采购批次" in t and "<table" not in t


def test_mask_and_passwords() -> None:
    assert mask("990101199001010011", Mask(keep_start=6, keep_end=4)) == "990101********0011"
    assert mask("张三丰", Mask(keep_start=1, keep_end=0)) == "张**"
    assert mask("AB", Mask(keep_start=3, keep_end=3)) == "A*"
    assert mask("", Mask(keep_start=1, keep_end=1)) == ""
    h = hash_password("correct horse")
    assert check_password("correct horse", h) and not check_password("wrong", h) and not check_password("x", "garbage")


def test_chart_bars_carry_their_values() -> None:
    div = charts.bar_chart(
        ["1月", "2月"], {"职工": [150, 200], "居民": [50, 0]}, stacked=True, chart_id="c", money=charts.YUAN
    )
    assert 'class="ychart"' in div and "职工" in div and "&quot;y&quot;:[1.50,2.00]" in div and "¥1.50" in div


def test_cli_users_and_ecode_block(tmp_path) -> None:
    from typer.testing import CliRunner

    from yibao.cli import app

    url = f"sqlite:///{tmp_path / 'c.db'}"
    r = CliRunner().invoke(
        app, ["console", "add-user", "boss", "--role", "bureau", "--password", "longpassword1", "--db", url]
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        app,
        [
            "console",
            "add-user",
            "h",
            "--role",
            "institution",
            "--institution",
            "NOPE",
            "--password",
            "longpassword1",
            "--db",
            url,
        ],
    )
    assert r.exit_code == 2 and "fixmedins_code" in r.output
    r = CliRunner().invoke(app, ["console", "users", "--db", url])
    assert "boss" in r.output and "bureau" in r.output
    r = CliRunner().invoke(app, ["console", "ecode-block", "NOBODY", "--db", url])
    assert r.exit_code == 2 and "psn_no" in r.output


def test_require_dependency_guards_other_routers(world) -> None:
    from fastapi import APIRouter, Depends

    from yibao.web.auth import require

    app, _, _ = world
    r = APIRouter()

    @r.get("/other/secret")
    def secret(p=Depends(require("bureau"))) -> dict:
        return {"user": p.username}

    app.include_router(r)
    assert client(app, None).get("/other/secret").status_code == 401
    assert client(app, "ha").get("/other/secret").status_code == 403
    assert client(app, "bureau").get("/other/secret").json() == {"user": "bureau"}


def test_default_year_skips_a_nearly_empty_new_year(world, db_engine) -> None:
    app, _, _ = world
    with db.session_scope(db_engine) as s:
        s.add(
            records.Encounter(
                mdtrt_id="MS7",
                psn_no="P2",
                fixmedins_code="HA",
                med_type="11",
                begntime=T0.replace(year=2026),
                policy_year=2026,
                synthetic=True,
            )
        )
        s.flush()
        s.add(_settlement("S7", "P2", "HA", T0.replace(year=2026, month=1, day=3), 4_000, 1_000, insutype="390"))
    j = client(app, "bureau").get("/console/api/fund").json()
    assert j["year"] == 2026  # 1 claim ≥ a twelfth of 2025's 4: a month's worth
    with db.session_scope(db_engine) as s:
        for i in range(20):
            s.add(
                records.Encounter(
                    mdtrt_id=f"MX{i}",
                    psn_no="P2",
                    fixmedins_code="HA",
                    med_type="11",
                    begntime=T0,
                    policy_year=2025,
                    synthetic=True,
                )
            )
        s.flush()
        for i in range(20):
            s.add(_settlement(f"X{i}", "P2", "HA", T0, 1_000, 500, insutype="390"))
    j = client(app, "bureau").get("/console/api/fund").json()
    assert j["year"] == 2025  # 1 claim in 2026 < a twelfth of 2025's 24
    assert client(app, "bureau").get("/console/api/fund?year=2026").json()["totals_fen"]["claims"] == 1
