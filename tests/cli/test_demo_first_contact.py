"""Issue 17.4, first contact: after `yibao demo --db URL` the
console has users to sign in with and every page has content.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.console_support import console_login
from yibao.cli import app
from yibao.core import db

runner = CliRunner()
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{root / 'yibao.db'}"
    res = runner.invoke(app, ["demo", "--people", "400", "--seed", "42", "--out", str(root / "out"), "--db", url])
    assert res.exit_code == 0, res.output
    cred = (root / "out" / "demo-users.txt").read_text(encoding="utf-8")
    users = {
        m[0]: (m[1], m[2], m[3]) for m in re.findall(r"^(demo-\w+)\s+(\w+)\s+(\S+)\s+password: (\S+)$", cred, re.M)
    }
    engine = db.make_engine(url)
    yield {"root": root, "url": url, "output": res.output, "cred": cred, "users": users, "engine": engine}
    engine.dispose()


def test_the_demo_prints_its_users_marked_demo_only(demo):
    out = demo["output"]
    assert "DEMO ONLY" in out and "仅供演示" in out
    assert set(demo["users"]) == {"demo-bureau", "demo-hospital", "demo-public"}
    for name, (_role, _scope, password) in demo["users"].items():
        assert name in out and password in out  # printed once on the terminal …
        assert len(password) >= 12
    assert demo["cred"].startswith("DEMO ONLY")  # … and kept in a file only its owner can read
    mode = stat.S_IMODE((demo["root"] / "out" / "demo-users.txt").stat().st_mode)
    assert mode & 0o077 == 0


def test_every_demo_user_signs_in_and_sees_their_pages(demo):
    from yibao.web.console import mount_console

    fapp = FastAPI()
    mount_console(fapp, demo["engine"])
    role, psn, pw = demo["users"]["demo-public"]
    c = TestClient(fapp)
    assert console_login(c, "demo-public", pw).status_code == 303
    page = c.get("/console/settlement")
    assert page.status_code == 200
    with demo["engine"].connect() as conn:
        mine = (
            conn.exec_driver_sql("SELECT setl_id FROM settlement WHERE psn_no = ? ORDER BY setl_id", (psn,))
            .scalars()
            .all()
        )
    assert mine, "the demo's public user has settlements"
    assert mine[0] in page.text
    _, inst, pw = demo["users"]["demo-hospital"]
    c = TestClient(fapp)
    assert console_login(c, "demo-hospital", pw).status_code == 303
    assert c.get("/console/settlement").status_code == 200
    c = TestClient(fapp)
    assert console_login(c, "demo-bureau", demo["users"]["demo-bureau"][2]).status_code == 303
    proc = c.get("/console/procurement")
    assert proc.status_code == 200
    assert "尚无采购批次" not in proc.text and "national-batch-10" in proc.text  # the demo's round is on the page
    assert console_login(TestClient(fapp), "demo-bureau", "wrong-password-1").status_code != 303


def test_the_procurement_round_is_persisted_with_orders(demo):
    with demo["engine"].connect() as c:
        rounds = c.exec_driver_sql("SELECT id, synthetic FROM vbp_round").all()
        assert len(rounds) == 1 and rounds[0][1]
        assert c.exec_driver_sql("SELECT count(*) FROM vbp_contract").scalar() > 0
        assert c.exec_driver_sql("SELECT count(*) FROM vbp_order").scalar() > 0


def test_the_readme_example_public_user_has_settlements_in_the_demo(demo):
    """The README names 990000000123 for `console add-user --role public`; the demo's public user is that person."""
    text = README.read_text(encoding="utf-8")
    named = re.findall(r"--psn-no (\d{12})", text)
    assert named, "README names an example person"
    assert demo["users"]["demo-public"][1] == named[0]
    with demo["engine"].connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM settlement WHERE psn_no = ?", (named[0],)).scalar() > 0


def test_the_demo_refuses_a_database_that_already_holds_a_region(demo, tmp_path):
    res = runner.invoke(app, ["demo", "--people", "100", "--out", str(tmp_path / "again"), "--db", demo["url"]])
    assert res.exit_code == 2 and "already holds a region" in res.output
    assert not (tmp_path / "again").exists()


def test_readme_first_screen_is_unchanged_and_documents_the_demo_users():
    text = README.read_text(encoding="utf-8")
    first = text.split("---", 1)[0]
    assert (
        "pip install -e . && yibao demo" in first
        and 'pip install -e ".[test]" && python -m pytest -q -rs -n 2' in first
    )
    rest = text.split("---", 1)[1]
    for name in ("demo-bureau", "demo-hospital", "demo-public", "demo-users.txt", "DEMO ONLY"):
        assert name in rest, name


def test_the_postgresql_driver_is_a_base_dependency():
    import tomllib

    deps = tomllib.loads((README.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert any(d.replace(" ", "").startswith("psycopg[binary]") for d in deps), deps
    import psycopg  # noqa: F401  (installed by `pip install -e .`)


def test_the_demo_takes_one_person_through_every_public_service(demo):
    """Issue 13's done-when: enrolled, pays, falls ill, filed for another province, claims manually, has a child
    and receives long-term care, each through its subsystem's service; the demo prints the six steps."""
    from sqlalchemy import func, select

    from yibao.crossregion.models import CrossFiling
    from yibao.demo.journey import JOURNEY_PSN_NO
    from yibao.enrolment.models import Contribution, InsuredPeriod
    from yibao.ltc.models import LtcClaim, LtcRecipient
    from yibao.maternity.models import MaternityClaim
    from yibao.reimbursement.models import ManualClaim
    from yibao.settlement.records import Settlement

    text = (demo["root"] / "out" / "demo-journey.txt").read_text(encoding="utf-8")
    steps = [ln for ln in text.splitlines() if ln[:1].isdigit()]
    assert [s.split(" ", 1)[0] for s in steps] == ["1", "2", "3", "4", "5", "6"], text
    assert "refused" not in text and "SYNTHETIC" in text
    for step in steps:
        assert step in demo["output"].replace("\n  ", " ") or step.split(":")[0] in demo["output"]
    with db.session_scope(demo["engine"]) as s:
        where = {"psn_no": JOURNEY_PSN_NO}
        assert {p.insutype for p in s.scalars(select(InsuredPeriod).filter_by(**where))} == {"310", "510"}
        assert s.scalar(select(func.count()).select_from(Contribution).filter_by(**where)) == 12
        assert (
            s.scalar(select(func.count()).select_from(Settlement).filter_by(**where)) == 4
        )  # visit, manual claim, prenatal, birth
        assert s.scalars(select(CrossFiling).filter_by(**where)).one().filing_type == "temporary"
        manual = s.scalars(select(ManualClaim).filter_by(**where)).one()
        assert manual.status == "paid" and manual.setl_id and manual.reimbursed_fen > 0
        mat = s.scalars(select(MaternityClaim).filter_by(**where)).one()
        assert mat.status == "approved" and mat.allowance > 0
        ltc = s.scalars(select(LtcClaim).join(LtcRecipient).where(LtcRecipient.psn_no == JOURNEY_PSN_NO)).one()
        assert ltc.fund_fen + ltc.person_fen == ltc.cost_fen > 0
