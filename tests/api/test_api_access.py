"""The subsystems' routers in `yibao serve` sit behind the console login: bureau staff only."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from tests.api_support import SH, Clock, make_interface, seed
from tests.console_support import console_login
from yibao.server import create_app

PW = "access-pass-1"
PATHS = ["/api/v1/supervision/rules", "/api/v1/payment/drg/scheme", "/procurement/rulesets"]


def _login(app, user: str | None) -> TestClient:
    c = TestClient(app)
    if user:
        r = console_login(c, user, PW)
        assert r.status_code == 303, r.text
    return c


def test_subsystem_apis_need_a_bureau_login(db_engine):
    seed(db_engine)
    app = create_app(make_interface(db_engine, Clock(dt.datetime(2025, 3, 1, 9, tzinfo=SH))))
    auth = app.state.console.auth
    auth.add_user("bureau", PW, "bureau")
    auth.add_user("h1", PW, "institution", fixmedins_code="H1")
    anon, staff, bureau = _login(app, None), _login(app, "h1"), _login(app, "bureau")
    for path in PATHS:
        assert anon.get(path).status_code == 401, path
        assert staff.get(path).status_code == 403, path
        r = bureau.get(path)
        assert r.status_code == 200, (path, r.text[:200])
