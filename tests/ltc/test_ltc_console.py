"""Console page ``ltc`` (长护险): bureau sees recipients by grade,
monthly fund spend and the funding split; others are refused.
"""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.console_support import console_login
from yibao import tables
from yibao.core.db import Base, make_engine
from yibao.ltc import service as svc
from yibao.web.console import mount_console

PW = "correct horse battery staple 9"


def test_ltc_page_for_bureau_only(tmp_path):
    tables.load_all()
    eng = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    Base.metadata.create_all(eng)
    svc.assess(
        eng, "P1", "A01", dt.date(2022, 1, 10), {"daily_living": 50, "cognition": 15, "perception_communication": 10}
    )
    svc.enrol(eng, "P1", "institutional", "H01", dt.date(2022, 2, 1))
    svc.record_services(eng, "P1", dt.date(2022, 2, 1), "H01", 28, 400000)
    svc.settle_month(eng, "P1", dt.date(2022, 2, 1))
    app = FastAPI()
    console = mount_console(app, eng)
    console.auth.add_user("bureau", PW, "bureau")
    c = TestClient(app)
    assert console_login(c, "bureau", PW).status_code == 303
    r = c.get("/console/ltc")
    assert r.status_code == 200
    assert "重度失能" in r.text and "机构护理" in r.text and "2,100.00" in r.text and "财政补助" in r.text
    assert TestClient(app).get("/console/ltc", follow_redirects=False).status_code in (303, 401)  # not logged in
