"""Console pages ``filing`` (异地就医备案) and ``enrolment`` (参保缴费): bureau lists, files, cancels and records a
back payment through CSRF-checked forms; a refused form changes nothing; other roles are refused (issue 13)."""

from __future__ import annotations

import datetime as dt
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.console_support import console_login, page_csrf
from yibao import tables
from yibao.codes import registry
from yibao.core.db import Base, make_engine, session_scope
from yibao.crossregion.models import CrossFiling
from yibao.enrolment import service as en
from yibao.enrolment.models import Contribution
from yibao.web.console import mount_console

PW = "correct horse battery staple 9"


def _world(tmp_path):
    tables.load_all()
    eng = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    Base.metadata.create_all(eng)
    with session_scope(eng) as s:
        s.add(
            registry.Person(
                psn_no="E1",
                certno="990101198004010011",
                psn_name="张伟",
                gend="1",
                brdy=dt.date(1980, 4, 1),
                insutype="310",
                psn_type="in_service",
                insuplc_admdvs="990100",
                contribution_base=800_000,
                synthetic=True,
            )
        )
        s.add(registry.Institution(fixmedins_code="H1", fixmedins_type="hospital", hosp_lv=2, admdvs="990100"))
    app = FastAPI()
    console = mount_console(app, eng)
    console.auth.add_user("bureau", PW, "bureau")
    console.auth.add_user("hosp", PW, "institution", fixmedins_code="H1")
    c = TestClient(app)
    assert console_login(c, "bureau", PW).status_code == 303
    return eng, c, app


def _filings(eng):
    with eng.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(CrossFiling.__table__)).all())


def test_filing_page_files_lists_and_cancels(tmp_path):
    eng, c, app = _world(tmp_path)
    token = page_csrf(c, "/console/filing")
    form = {
        "psn_no": "E1",
        "insutype": "310",
        "filing_type": "temporary",
        "insu_admdvs": "990100",
        "mdtrt_area_admdvs": "320500",
        "begndate": "2025-03-01",
        "enddate": "",
    }
    # without the page's token: refused, nothing filed
    assert c.post("/console/filing", data=form, follow_redirects=False).status_code == 403
    assert _filings(eng) == []
    # same province: the register refuses, the page says why, nothing filed
    r = c.post("/console/filing", data={**form, "mdtrt_area_admdvs": "990200", "csrf_token": token})
    assert "无需跨省备案" in r.text and _filings(eng) == []
    r = c.post("/console/filing", data={**form, "csrf_token": token})
    assert r.status_code == 200 and "临时外出" in r.text and "320500" in r.text and "2025-08-31" in r.text
    (fid,) = [f[0] for f in _filings(eng)]
    assert re.search(rf'data-filing="{fid}"', r.text)
    r = c.post(f"/console/filing/{fid}/cancel", data={"csrf_token": token, "psn_no": "E1"})
    assert "已撤销" in r.text
    with eng.connect() as conn:
        assert conn.execute(select(CrossFiling.status)).scalar_one() == "cancelled"
    r = c.get("/console/filing?status=active")
    assert f'data-filing="{fid}"' not in r.text
    # an institution's staff may not open it
    h = TestClient(app)
    assert console_login(h, "hosp", PW).status_code == 303
    assert h.get("/console/filing").status_code == 403
    assert h.get("/console/enrolment").status_code == 403


def test_enrolment_page_shows_periods_contributions_and_records_a_back_payment(tmp_path):
    eng, c, _app = _world(tmp_path)
    en.enrol(eng, "E1", "310", dt.date(2024, 1, 1))
    en.pay_employee_month(eng, "E1", "2024-01", 800_000, dt.date(2024, 1, 15))
    en.pay_employee_month(eng, "E1", "2024-02", 800_000, None)  # in arrears
    r = c.get("/console/enrolment?psn_no=E1")
    assert r.status_code == 200 and "2024-01-01" in r.text and "欠费" in r.text and "2024-02" in r.text
    token = page_csrf(c, "/console/enrolment?psn_no=E1")
    bad = {"csrf_token": token, "psn_no": "E1", "insutype": "310", "period": "2024-02", "paid_date": "not-a-date"}
    r = c.post("/console/enrolment/pay", data=bad)
    assert "YYYY-MM-DD" in r.text
    with eng.connect() as conn:
        assert conn.execute(select(Contribution.paid_date).where(Contribution.period == "2024-02")).scalar_one() is None
    r = c.post("/console/enrolment/pay", data={**bad, "paid_date": "2024-03-20"})
    assert "无欠费" in r.text and "(补缴)" in r.text
    with eng.connect() as conn:
        paid, back = conn.execute(
            select(Contribution.paid_date, Contribution.back_payment).where(Contribution.period == "2024-02")
        ).one()
    assert (paid, back) == (dt.date(2024, 3, 20), True)
