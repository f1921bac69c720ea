"""Access hardening (issue 16, parts 3 and 4): institution credentials at 9001, single-use e-codes kept out of URLs,
the console's login limits, CSRF tokens, cookies and security headers, and the server root."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.api_support import BOOK, CAT, CREDENTIALS, PEOPLE, SH, Clock, make_interface, seed
from yibao.api.envelope import field_of
from yibao.api.hisclient import HisClient, HisError, http_transport
from yibao.api.interface import Interface
from yibao.api.models import MessageLog, SignIn
from yibao.api.security import (
    InstitutionKeys,
    SecurityError,
    SecurityPolicy,
    check_secret,
    hash_secret,
    issue_credential,
    write_policy,
)
from yibao.core import db as ydb
from yibao.server import create_app

T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SH)
PATH = "/fsi/api/rsfComIfsService/callService"


def _signins(engine) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(SignIn)).scalar_one()


def _client(engine, security: SecurityPolicy | None = None, clock: Clock | None = None) -> TestClient:
    iface = Interface(engine, BOOK, CAT, clock=clock or Clock(T0), security=security)
    return TestClient(create_app(iface))


# --- 9001: the institution's credential ---------------------------------------------------------


def test_without_credentials_no_institution_can_sign_in(db_engine):
    seed(db_engine)
    client = _client(db_engine)  # no security settings at all: the default refuses, it does not trust
    his = HisClient(http_transport(client), "H1", clock=Clock(T0))
    with pytest.raises(HisError) as e:
        his.sign_in()
    # the same answer as a wrong credential: a sign-in attempt does not tell which institution codes exist
    assert field_of(e.value.reply["err_msg"]) == "input.signIn.credential"
    assert "机构编码或签到凭证错误" in e.value.reply["err_msg"]
    r = client.post("/api/v1/sign-in", json={"signIn": {"opter_no": "x"}}, headers={"X-Fixmedins-Code": "H1"})
    assert r.status_code == 401 and r.json()["field"] == "input.signIn.credential"
    assert _signins(db_engine) == 0


def test_the_right_secret_signs_in_and_a_wrong_or_missing_one_is_refused(db_engine):
    seed(db_engine)
    clock = Clock(T0)
    client = TestClient(create_app(make_interface(db_engine, clock)))
    for cred, fld in (
        ("", "input.signIn.credential"),
        ("wrong", "input.signIn.credential"),
        (CREDENTIALS["H3"], "input.signIn.credential"),
    ):  # another institution's secret is no use
        his = HisClient(http_transport(client), "H2", clock=clock, credential=cred)
        with pytest.raises(HisError) as e:
            his.sign_in()
        assert field_of(e.value.reply["err_msg"]) == fld, e.value.reply["err_msg"]
    assert _signins(db_engine) == 0
    his = HisClient(http_transport(client), "H2", clock=clock, credential=CREDENTIALS["H2"])
    assert his.sign_in()
    # the REST side takes the same credential in its body
    h = {"X-Fixmedins-Code": "H3"}
    assert (
        client.post("/api/v1/sign-in", json={"signIn": {"opter_no": "r"}}, headers=h).status_code == 401
    )  # authentication
    wrong = client.post("/api/v1/sign-in", json={"signIn": {"opter_no": "r", "credential": "x"}}, headers=h).json()
    unknown = client.post(
        "/api/v1/sign-in", json={"signIn": {"opter_no": "r", "credential": "x"}}, headers={"X-Fixmedins-Code": "NOPE"}
    ).json()
    assert wrong["err_msg"] == unknown["err_msg"] and wrong["field"] == unknown["field"]  # no oracle
    r = client.post("/api/v1/sign-in", json={"signIn": {"opter_no": "r", "credential": CREDENTIALS["H3"]}}, headers=h)
    assert r.status_code == 200 and r.json()["signinoutb"]["sign_no"]
    assert _signins(db_engine) == 2
    # the secret never reaches the audit log (masked), on success or refusal
    with db_engine.connect() as c:
        logged = " ".join(c.execute(select(MessageLog.request)).scalars())
    assert "9001" in logged or "signIn" in logged
    for secret in CREDENTIALS.values():
        assert secret not in logged
    assert "wrong" not in logged


def test_replaying_a_sign_in_msgid_without_the_secret_does_not_reveal_its_sign_no(db_engine):
    seed(db_engine)
    clock = Clock(T0)
    client = TestClient(create_app(make_interface(db_engine, clock)))
    his = HisClient(http_transport(client), "H2", clock=clock, credential=CREDENTIALS["H2"])
    env = his.envelope("9001", {"signIn": {"opter_no": "0001", "credential": CREDENTIALS["H2"]}})
    sign_no = http_transport(client)(env)["output"]["signinoutb"]["sign_no"]
    # the same msgid (guessable: code + time + sequence) and input, without the secret or with a wrong one
    for cred in (None, "guess"):
        forged = {**env, "input": {"signIn": {"opter_no": "0001", **({"credential": cred} if cred else {})}}}
        reply = http_transport(client)(forged)
        assert reply["infcode"] == -1 and sign_no not in str(reply)
    # the genuine retry is still answered from the store, byte for byte
    assert http_transport(client)(env)["output"]["signinoutb"]["sign_no"] == sign_no


def test_insecure_demo_lets_only_unconfigured_institutions_in_without_a_credential(db_engine):
    seed(db_engine)
    pol = SecurityPolicy(
        institutions={"H2": InstitutionKeys(secret_hash=hash_secret("s3cret", n=2**10))}, insecure_demo=True
    )
    client = _client(db_engine, pol)
    assert HisClient(http_transport(client), "H1", clock=Clock(T0)).sign_in()
    with pytest.raises(HisError):  # H2 has a secret: it must present it, demo or not
        HisClient(http_transport(client), "H2", clock=Clock(T0)).sign_in()
    assert HisClient(http_transport(client), "H2", clock=Clock(T0), credential="s3cret").sign_in()
    with pytest.raises(HisError) as e:  # an unknown institution is still unknown
        HisClient(http_transport(client), "NOPE", clock=Clock(T0)).sign_in()
    assert field_of(e.value.reply["err_msg"]) == "fixmedins_code"  # --insecure-demo: no credential to hide behind


def test_an_institution_with_only_sm4_keys_cannot_sign_in_in_plain_text(db_engine):
    import secrets as _s

    seed(db_engine)
    pol = SecurityPolicy(institutions={"H2": InstitutionKeys(sm4_key=_s.token_hex(16), signtype="SM3")})
    client = _client(db_engine, pol)
    r = client.post("/api/v1/sign-in", json={"signIn": {"opter_no": "r"}}, headers={"X-Fixmedins-Code": "H2"})
    assert r.status_code == 401 and r.json()["field"] == "fixmedins_code" and "SM4" in r.json()["err_msg"]
    assert _signins(db_engine) == 0


def test_issuing_and_rotating_a_secret_takes_effect_without_a_restart(db_engine, tmp_path):
    seed(db_engine)
    path = tmp_path / "security.yaml"
    write_policy(path, SecurityPolicy())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    clock = Clock(T0)
    client = _client(db_engine, SecurityPolicy.load(path), clock)
    with pytest.raises(HisError):
        HisClient(http_transport(client), "H1", clock=clock).sign_in()
    first = issue_credential(path, "H1")
    assert first not in path.read_text() and "scrypt$" in path.read_text()
    assert HisClient(http_transport(client), "H1", clock=clock, credential=first).sign_in()
    second = issue_credential(path, "H1")  # rotation
    assert second != first
    with pytest.raises(HisError):
        HisClient(http_transport(client), "H1", clock=clock, credential=first).sign_in()
    assert HisClient(http_transport(client), "H1", clock=clock, credential=second).sign_in()
    # a broken edit of the file does not lock everyone out, nor tell clients where the file is
    path.write_text("institutions: {H1: {secret_hash: oops}}\n")
    os.utime(path, ns=(1, 1))
    his = HisClient(http_transport(client), "H1", clock=clock, credential=second)
    assert his.sign_in()
    bad = HisClient(http_transport(client), "H1", clock=clock, credential="nope").call(
        "9001", {"signIn": {"opter_no": "1", "credential": "nope"}}, check=False
    )
    assert bad["infcode"] == -1 and str(path) not in bad["err_msg"]


def test_security_files_are_validated_and_cannot_switch_on_the_demo_mode(tmp_path):
    p = tmp_path / "s.yaml"
    for text, fld in (
        ("insecure_demo: true\n", "insecure_demo"),
        ("institutions: {H1: {}}\n", "institutions.H1"),
        ("institutions: {H1: {secret_hash: plain-text}}\n", "institutions.H1.secret_hash"),
        ("institutions: {H1: {secret_hash: 'scrypt$1$1$1$00$00', signtype: SM3}}\n", "institutions.H1.secret_hash"),
    ):
        p.write_text(text)
        with pytest.raises(SecurityError) as e:
            SecurityPolicy.load(p)
        assert e.value.field == fld, (text, e.value.field)
    h = hash_secret("abc", n=2**10)
    assert check_secret("abc", h) and not check_secret("abd", h) and not check_secret("abc", "scrypt$x")


def _serve(runner, app, monkeypatch, args) -> dict:
    """Run `yibao serve` up to uvicorn.run, keeping the app it would serve."""
    import uvicorn

    from yibao.api.app import INSECURE_ENV

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda a, **kw: seen.setdefault("app", a))
    for var in ("YIBAO_DATABASE_URL", "YIBAO_API_SECURITY", INSECURE_ENV):  # serve sets them: restore them afterwards
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    seen["output"] = res.output
    return seen


def _sign_in(served_app, code: str) -> dict:
    his = HisClient(http_transport(TestClient(served_app)), code)
    return his.call("9001", {"signIn": {"opter_no": "1"}}, check=False)


def test_cli_issues_credentials_and_serve_without_them_lets_nobody_sign_in(tmp_path, monkeypatch):
    from yibao.cli import app

    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    ydb.upgrade(url)
    eng = ydb.make_engine(url)
    seed(eng)
    eng.dispose()
    sec = tmp_path / "sec.yaml"
    served = _serve(
        runner, app, monkeypatch, ["serve", "--db", url]
    )  # no credentials: nobody signs in (the console works)
    assert "--insecure-demo" in served["output"]
    r = _sign_in(served["app"], "H1")
    assert r["infcode"] == -1 and field_of(r["err_msg"]) == "input.signIn.credential"
    served = _serve(runner, app, monkeypatch, ["serve", "--db", url, "--insecure-demo"])
    assert "INSECURE" in served["output"] and _sign_in(served["app"], "H1")["infcode"] == 0
    res = runner.invoke(app, ["inst", "credential", "issue", "NOPE", "--security", str(sec), "--db", url])
    assert res.exit_code == 2 and "unknown institution" in res.output and not sec.exists()
    res = runner.invoke(app, ["inst", "credential", "issue", "H1", "--security", str(sec), "--db", url])
    assert res.exit_code == 0, res.output
    secret = res.output.strip().splitlines()[-1]
    assert re.fullmatch(r"ybs_[A-Za-z0-9_-]{43}", secret)
    assert check_secret(secret, SecurityPolicy.load(sec).institutions["H1"].secret_hash)
    res = runner.invoke(app, ["inst", "credential", "issue", "H1", "--security", str(sec), "--db", url])
    assert res.exit_code == 2 and "rotate" in res.output
    res = runner.invoke(app, ["inst", "credential", "rotate", "H1", "--security", str(sec), "--db", url])
    assert res.exit_code == 0 and not check_secret(secret, SecurityPolicy.load(sec).institutions["H1"].secret_hash)
    rotated = res.output.strip().splitlines()[-1]
    served = _serve(runner, app, monkeypatch, ["serve", "--db", url, "--security", str(sec)])
    his = HisClient(http_transport(TestClient(served["app"])), "H1", credential=rotated)
    assert his.sign_in() and _sign_in(served["app"], "H1")["infcode"] == -1
    res = runner.invoke(app, ["inst", "credential", "revoke", "H1", "--security", str(sec)])
    assert res.exit_code == 0 and "H1" not in SecurityPolicy.load(sec).institutions


# --- e-codes: one settlement flow each, never in a URL ----------------------------------------------


def _ecode_world(engine):
    from yibao.ecode.service import EcodeService

    seed(engine)
    clock = Clock(T0)
    iface = make_interface(engine, clock)
    ecode = EcodeService(engine, clock=clock)
    iface.ecode_verifier, iface.ecode_payer = ecode.interface_verifier(), ecode.payer_for_code
    client = TestClient(create_app(iface))
    ecode.bind("acct-e1", "E1", {"certno": PEOPLE["E1"][8], "face": "live-match"})

    def his(code: str) -> HisClient:
        h = HisClient(http_transport(client), code, clock=clock, credential=CREDENTIALS[code])
        h.sign_in()
        return h

    return ecode, clock, his


def _register(h: HisClient, code: str) -> dict:
    return h.call(
        "2201",
        {
            "data": {
                "psn_no": "E1",
                "insutype": "310",
                "begntime": "2025-03-10 08:30:00",
                "mdtrt_cert_type": "01",
                "mdtrt_cert_no": code,
                "ipt_otp_no": h.msgid(),
            }
        },
        check=False,
    )


def test_an_ecode_serves_one_settlement_flow_at_one_institution(db_engine):
    from decimal import Decimal

    from yibao.api.hisclient import Item
    from yibao.ecode.models import EcodeUse

    ecode, clock, his = _ecode_world(db_engine)
    h2, h3 = his("H2"), his("H3")
    code = ecode.generate("acct-e1", "E1")
    q = {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": code, "psn_cert_type": "01"}}
    assert h2.call("1101", q)["output"]["baseinfo"]["psn_no"] == "E1"
    # the same code at another institution (a screenshot passed on): refused
    r = h3.call("1101", q, check=False)
    assert r["infcode"] == -1 and field_of(r["err_msg"]) == "mdtrt_cert_no"
    # the flow at the first institution goes on with the same code: register, fees, pre-settle, settle
    reg = _register(h2, code)
    assert reg["infcode"] == 0, reg["err_msg"]
    mdtrt_id = reg["output"]["data"]["mdtrt_id"]
    rows = HisClient.feedetail(mdtrt_id, "E1", [Item("A-DRUG", "1", "80.00")], chrg_bchno="B1", when=clock())
    h2.call("2204", {"feedetail": rows})
    data = {
        "psn_no": "E1",
        "mdtrt_cert_type": "01",
        "mdtrt_cert_no": code,
        "med_type": "11",
        "medfee_sumamt": Decimal("80.00"),
        "psn_setlway": "01",
        "mdtrt_id": mdtrt_id,
        "chrg_bchno": "B1",
        "insutype": "310",
        "acct_used_flag": "1",
    }
    assert h2.call("2206", {"data": data})["infcode"] == 0
    assert h2.call("2207", {"data": data})["infcode"] == 0
    # the flow is over: the code cannot open another visit, nor pay again
    r = _register(h2, code)
    assert r["infcode"] == -1 and field_of(r["err_msg"]) == "mdtrt_cert_no"
    with db_engine.connect() as c:
        reasons = [x for x in c.execute(select(EcodeUse.reason).where(EcodeUse.accepted.is_(False))).scalars()]
    assert any("another institution" in x for x in reasons) and any("settlement" in x for x in reasons)
    # a fresh code does
    assert _register(h2, ecode.generate("acct-e1", "E1"))["infcode"] == 0


def test_single_flow_is_a_setting(db_engine):
    from yibao.ecode.params import default_params
    from yibao.ecode.service import EcodeService

    seed(db_engine)
    p = default_params()
    relaxed = p.model_copy(update={"token": p.token.model_copy(update={"single_flow": False})})
    svc = EcodeService(db_engine, params=relaxed, clock=Clock(T0))
    svc.bind("a", "E1", {"certno": PEOPLE["E1"][8], "face": "live-match"})
    code = svc.generate("a", "E1")
    assert svc.verify(code, fixmedins_code="H1").psn_no == svc.verify(code, fixmedins_code="H2").psn_no == "E1"
    strict = EcodeService(db_engine, clock=Clock(T0))
    with pytest.raises(Exception) as e:
        strict.verify(code, fixmedins_code="H3")
    assert getattr(e.value, "field", None) == "mdtrt_cert_no"


def test_the_console_shows_a_generated_code_without_putting_it_in_a_url(db_engine):
    from tests.console_support import console_login, page_csrf

    seed(db_engine)
    app = create_app(make_interface(db_engine, Clock(T0)))
    app.state.console.auth.add_user("e1", "e1-password", "public", psn_no="E1")
    c = TestClient(app)
    assert console_login(c, "e1", "e1-password").status_code == 303
    tok = page_csrf(c, "/console/mycode")
    r = c.post(
        "/console/mycode/action",
        data={"action": "bind", "certno": PEOPLE["E1"][8], "face": "live-match", "csrf_token": tok},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "code=" not in r.headers["location"]
    r = c.post(
        "/console/mycode/action", data={"action": "generate", "psn_no": "E1", "csrf_token": tok}, follow_redirects=False
    )
    assert r.status_code == 200 and "location" not in r.headers and r.headers["cache-control"] == "no-store"
    code = re.search(r'<pre id="ecode"[^>]*>([^<]+)</pre>', r.text).group(1)
    assert code.startswith("YB1.") and code not in str(r.url)
    # and a code in a query string is not honoured
    assert code not in c.get("/console/mycode", params={"code": code}).text


# --- console login: limits, the unknown-user path, CSRF, cookies ----------------------------------------

PW = "console-pass-9"


@pytest.fixture
def console_app(db_engine):
    seed(db_engine)
    clock = Clock(T0)
    app = create_app(make_interface(db_engine, clock))
    auth = app.state.console.auth
    auth.add_user("bureau", PW, "bureau")
    auth.add_user("other", PW, "bureau")
    return app, auth, clock


def test_failed_logins_are_limited_per_user_then_released(console_app):
    from tests.console_support import console_login

    app, auth, clock = console_app
    lim = auth.cfg.login_limits.per_user
    c = TestClient(app)
    for _ in range(lim.max_failures):
        assert console_login(c, "bureau", "wrong-password").status_code == 401
    r = console_login(c, "bureau", PW)  # even the right password waits: guessing cannot go on
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "登录失败次数过多" in r.text
    assert console_login(c, "other", PW).status_code == 303  # another user is not held up
    clock.advance(seconds=lim.window_seconds)
    assert console_login(c, "bureau", PW).status_code == 303


def test_failed_logins_are_limited_per_address_and_the_limits_are_settings(db_engine):
    from yibao.web.auth import AuthError, AuthService, Limit, LoginLimits, LoginThrottled, default_config

    seed(db_engine)
    clock = Clock(T0)
    cfg = default_config().model_copy(
        update={
            "login_limits": LoginLimits(
                per_user=Limit(max_failures=50, window_seconds=60), per_ip=Limit(max_failures=3, window_seconds=60)
            )
        }
    )
    auth = AuthService(db_engine, config=cfg, clock=clock)
    auth.add_user("bureau", PW, "bureau")
    for name in ("a", "b", "c"):  # a spray of user names from one address
        with pytest.raises(AuthError):
            auth.login(name, "x", ip="10.0.0.9")
    with pytest.raises(LoginThrottled) as e:
        auth.login("bureau", PW, ip="10.0.0.9")
    assert e.value.field == "ip"
    assert auth.login("bureau", PW, ip="10.0.0.10")  # another address
    clock.advance(seconds=61)
    assert auth.login("bureau", PW, ip="10.0.0.9")


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_limited(console_app):
    from tests.console_support import console_login
    from yibao.web.auth import Limit, LoginLimiter

    app, auth, clock = console_app
    lim = auth.cfg.login_limits.model_copy(update={"per_ip": Limit(max_failures=2, window_seconds=60)})
    auth.cfg = auth.cfg.model_copy(update={"trusted_proxies": ("testclient",), "login_limits": lim})
    auth.limiter = LoginLimiter(lim)
    a = TestClient(app, headers={"X-Forwarded-For": "203.0.113.7"})
    b = TestClient(app, headers={"X-Forwarded-For": "198.51.100.2, 203.0.113.8"})  # the proxy appends the client
    for name in ("x", "y"):
        assert console_login(a, name, "wrong").status_code == 401
    assert console_login(a, "bureau", PW).status_code == 429
    assert console_login(b, "bureau", PW).status_code == 303
    # an untrusted peer cannot pick its own address to dodge the limit
    auth.cfg = auth.cfg.model_copy(update={"trusted_proxies": ()})
    auth.limiter = LoginLimiter(lim)
    for i in range(2):
        assert (
            console_login(TestClient(app, headers={"X-Forwarded-For": f"10.0.0.{i}"}), "z", "wrong").status_code == 401
        )
    assert console_login(TestClient(app, headers={"X-Forwarded-For": "10.0.0.99"}), "bureau", PW).status_code == 429


def test_an_unknown_user_costs_the_same_password_check_as_a_known_one(console_app, monkeypatch):
    import yibao.web.auth as A

    app, auth, clock = console_app
    checked: list[str] = []
    real = A.check_password

    def spy(password, stored):
        checked.append(stored)
        return real(password, stored)

    monkeypatch.setattr(A, "check_password", spy)
    msgs = []
    for user in ("bureau", "nobody-here", ""):
        with pytest.raises(A.AuthError) as e:
            auth.login(user, "wrong-password", ip="1.1.1.1")
        msgs.append((e.value.message_en, e.value.field))
    assert len(checked) == 3 and all(h.startswith("scrypt$16384$") for h in checked)  # same work on every path
    assert len(set(msgs)) == 1  # and the same answer


def test_every_console_post_needs_the_token_of_its_page(console_app):
    from tests.console_support import console_login, page_csrf
    from yibao.ecode.models import EcodeBlock

    app, auth, clock = console_app
    c = TestClient(app)
    # login itself: a form posted from elsewhere (no token, or a token not bound to this browser) is refused
    r = c.post("/console/login", data={"username": "bureau", "password": PW}, follow_redirects=False)
    assert r.status_code == 403 and "yb_session" not in r.headers.get("set-cookie", "")
    other = TestClient(app)
    stolen = page_csrf(other, "/console/login")
    page_csrf(c, "/console/login")
    r = c.post(
        "/console/login", data={"username": "bureau", "password": PW, "csrf_token": stolen}, follow_redirects=False
    )
    assert r.status_code == 403
    assert console_login(c, "bureau", PW).status_code == 303
    engine = auth.engine
    for data in ({"psn_no": "E1", "action": "block"}, {"psn_no": "E1", "action": "block", "csrf_token": stolen}):
        r = c.post("/console/ecode/action", data=data, follow_redirects=False)
        assert r.status_code == 403 and "CSRF" in r.text
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(EcodeBlock)).scalar_one() == 0  # nothing changed
    assert c.post("/console/jobs/export-settlements").status_code == 403
    auth.add_user("h1", PW, "institution", fixmedins_code="H1")  # the scan check of institution staff (JSON)
    staff = TestClient(app)
    assert console_login(staff, "h1", PW).status_code == 303
    assert staff.post("/console/api/ecode/verify", json={"code": "YB1.x.y"}).status_code == 403
    r = staff.post(
        "/console/api/ecode/verify",
        json={"code": "YB1.x.y"},
        headers={"X-CSRF-Token": page_csrf(staff, "/console/fund")},
    )
    assert r.status_code == 400 and r.json()["field"] == "mdtrt_cert_no"  # past the CSRF check: a bad code
    assert c.post("/console/logout").status_code == 403 and c.get("/console/api/fund").status_code == 200
    # the bureau APIs behind the console login: writes need the header too
    claim = {
        "mdtrt_id": "M1",
        "person": {"psn_no": "E1", "gend": "1", "brdy": "1980-04-01"},
        "fixmedins_code": "H1",
        "hosp_lv": 1,
        "med_type": "11",
        "begntime": "2025-03-01T09:00:00+08:00",
        "dise_codg": "J06.9",
        "lines": [],
    }
    assert c.post("/api/v1/supervision/check", json=claim).status_code == 403
    tok = page_csrf(c, "/console/fund")
    assert c.post("/api/v1/supervision/check", json=claim, headers={"X-CSRF-Token": tok}).status_code != 403
    r = c.post(
        "/console/ecode/action", data={"psn_no": "E1", "action": "block", "csrf_token": tok}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/console/ecode?msg=ok")
    assert c.post("/console/logout", data={"csrf_token": tok}, follow_redirects=False).status_code == 303
    assert c.get("/console/api/fund").status_code == 401


def test_every_console_form_carries_the_token(console_app):
    from tests.console_support import console_login

    app, auth, clock = console_app
    auth.add_user("e1", PW, "public", psn_no="E1")
    for user, paths in (
        ("bureau", ["/console/fund", "/console/settlement", "/console/ecode"]),
        ("e1", ["/console/mycode"]),
    ):
        c = TestClient(app)
        assert console_login(c, user, PW).status_code == 303
        for path in paths:
            html = c.get(path).text
            forms = re.findall(r'<form method="post"[^>]*>(.*?)</form>', html, re.S)
            assert forms, path
            for f in forms:
                assert re.search(r'name="csrf_token" value="[0-9a-f]{64}"', f), (path, f[:120])


def test_session_cookies_are_secure_behind_tls(console_app):
    from tests.console_support import console_login

    app, auth, clock = console_app
    plain = console_login(TestClient(app), "bureau", PW)
    assert "yb_session=" in plain.headers["set-cookie"] and "secure" not in plain.headers["set-cookie"].lower()
    # a TLS proxy in front says so in X-Forwarded-Proto
    behind = TestClient(app, headers={"X-Forwarded-Proto": "https"}).get("/console/login")
    assert "yb_login=" in behind.headers["set-cookie"] and "secure" in behind.headers["set-cookie"].lower()
    assert "max-age=31536000" in behind.headers["strict-transport-security"]
    # TLS to the server itself
    r = console_login(TestClient(app, base_url="https://testserver"), "bureau", PW)
    cookie = r.headers["set-cookie"].lower()
    assert "yb_session=" in cookie and "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "strict-transport-security" not in TestClient(app).get("/console/login").headers
    # "always" for a proxy that does not say
    app.state.console.auth.cfg = auth.cfg.model_copy(
        update={"cookies": auth.cfg.cookies.model_copy(update={"secure": "always"})}
    )
    assert "secure" in console_login(TestClient(app), "bureau", PW).headers["set-cookie"].lower()


def test_security_headers_on_every_answer_and_no_inline_scripts_in_the_pages(console_app):
    from tests.console_support import console_login

    app, auth, clock = console_app
    c = TestClient(app)
    assert console_login(c, "bureau", PW).status_code == 303
    for path in ("/", "/console/login", "/console/fund", "/console/settlement", "/console/ecode", "/healthz"):
        r = c.get(path)
        h = r.headers
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", path
        assert h["referrer-policy"] == "no-referrer", path
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, path
        if r.headers["content-type"].startswith("text/html"):  # the strict CSP holds: nothing inline to block
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), path
            assert not re.search(r"\son[a-z]+\s*=", r.text), path
            assert not re.search(r"\sstyle\s*=", r.text), path
    r = c.post(PATH, content=b"{}")
    assert r.headers["x-content-type-options"] == "nosniff"
    docs = c.get("/docs")  # Swagger UI runs its own inline bootstrap: no CSP there, the other headers stay
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers
    assert docs.headers["x-frame-options"] == "DENY"


def test_the_root_leads_to_the_console_and_the_docs(console_app):
    app, auth, clock = console_app
    r = TestClient(app).get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'href="/console/"' in r.text and 'href="/docs"' in r.text and "控制台" in r.text
    assert "/" not in {route.path for route in app.routes if getattr(route, "include_in_schema", False)}


def test_a_spent_code_shown_far_away_still_trips_the_risk_rules(db_engine):
    from tests.ecode.test_ecode import GOOD, seed_people
    from tests.ecode.test_ecode import T0 as E0
    from yibao.ecode.models import EcodeBlock, EcodeRiskEvent
    from yibao.ecode.service import EcodeRefused, EcodeService

    seed_people(db_engine)
    svc = EcodeService(db_engine, clock=Clock(E0))
    svc.bind("acct-1", "P1", GOOD)
    code = svc.generate("acct-1", "P1")
    assert svc.verify(code, fixmedins_code="H-LOCAL1").psn_no == "P1"
    with pytest.raises(EcodeRefused) as e:  # the screenshot, minutes later 1,900 km away
        svc.verify(code, fixmedins_code="H-GZ", now=E0 + dt.timedelta(seconds=30))
    assert "anomal" in e.value.message_en
    with db_engine.connect() as c:
        assert c.execute(select(EcodeRiskEvent.kind)).scalars().all() == ["impossible_travel"]
        assert c.execute(select(EcodeBlock.active).where(EcodeBlock.psn_no == "P1")).scalar_one() is True
