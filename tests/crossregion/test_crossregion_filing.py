"""Cross-province filing (异地就医备案): the register, and cross_filed of a settled claim taken from it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.factories import TZ, catalog, claim, line, person
from yibao.benefits.policy import PolicyBook
from yibao.cli import app
from yibao.codes import registry
from yibao.core import db as ydb
from yibao.crossregion.models import CrossFiling
from yibao.crossregion.params import load_rules
from yibao.crossregion.service import FilingError, FilingRequest, add_filing, cancel_filing, is_filed, list_filings
from yibao.settlement.service import SettlementService

REGION = "990100"
SUZHOU, NANJING, BEIJING = "320500", "320100", "110100"


def req(**kw) -> FilingRequest:
    base = dict(
        psn_no="R1",
        insutype="390",
        filing_type="temporary",
        insured_admdvs=REGION,
        treatment_admdvs=SUZHOU,
        begin_date=dt.date(2025, 1, 1),
    )
    base.update(kw)
    return FilingRequest(**base)


def count(engine) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(CrossFiling)).scalar_one()


def test_temporary_filing_gets_its_validity_from_the_rule_file(db_engine):
    assert load_rules().types["temporary"].valid_months == 6
    with ydb.session_scope(db_engine) as s:
        f = add_filing(s, req())
        assert f.end_date == dt.date(2025, 6, 30)
        long = add_filing(s, req(psn_no="R2", filing_type="long_term_residence"))
        assert long.end_date is None


def test_filed_on_the_day_for_the_treatment_province_only(db_engine):
    with ydb.session_scope(db_engine) as s:
        add_filing(s, req())
        assert is_filed(s, "R1", "390", SUZHOU, dt.date(2025, 3, 1))
        assert is_filed(s, "R1", "390", NANJING, dt.date(2025, 3, 1))  # same province 32
        assert not is_filed(s, "R1", "390", BEIJING, dt.date(2025, 3, 1))
        assert not is_filed(s, "R1", "390", SUZHOU, dt.date(2025, 7, 1))  # expired 2025-06-30
        assert not is_filed(s, "R1", "310", SUZHOU, dt.date(2025, 3, 1))  # other insutype


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (dict(filing_type="holiday"), "filing_type"),
        (dict(treatment_admdvs="3205"), "treatment_admdvs"),
        (dict(treatment_admdvs="990102"), "treatment_admdvs"),  # same province: no cross-province filing
        (dict(end_date=dt.date(2024, 12, 1)), "enddate"),  # reversed dates
        (dict(begin_date=dt.date(2025, 5, 1)), "begndate"),  # overlaps the first filing
    ],
)
def test_bad_requests_are_refused_and_nothing_is_written(db_engine, bad, field):
    with ydb.session_scope(db_engine) as s:
        add_filing(s, req())
    with pytest.raises(FilingError) as e:
        with ydb.session_scope(db_engine) as s:
            add_filing(s, req(**bad))
    assert e.value.field == field and e.value.message_zh
    assert count(db_engine) == 1


def test_cancel_then_refile(db_engine):
    with ydb.session_scope(db_engine) as s:
        fid = add_filing(s, req()).id
    with ydb.session_scope(db_engine) as s:
        cancel_filing(s, fid)
        assert not is_filed(s, "R1", "390", SUZHOU, dt.date(2025, 3, 1))
        add_filing(s, req(begin_date=dt.date(2025, 2, 1)))  # no longer overlaps a cancelled one
    with pytest.raises(FilingError):
        with ydb.session_scope(db_engine) as s:
            cancel_filing(s, fid)
    with ydb.session_scope(db_engine) as s:
        assert [f.status for f in list_filings(s, "R1")] == ["cancelled", "active"]


@pytest.fixture
def svc(db_engine) -> SettlementService:
    with ydb.session_scope(db_engine) as s:
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
        s.add(
            registry.Institution(
                fixmedins_code="H3", fixmedins_type="hospital", hosp_lv=3, admdvs=SUZHOU, synthetic=True
            )
        )
    return SettlementService(db_engine, PolicyBook.default(), catalog())


def cross_claim(mdtrt_id: str, when: dt.datetime):
    c = claim(
        mdtrt_id, person("R1", insutype="390", psn_type="resident"), [line(1, "A-DRUG", 5000)], hosp_lv=3, when=when
    )
    import dataclasses

    # the request says "filed": the register decides, not the request
    return dataclasses.replace(c, mdtrtarea_admvs=SUZHOU, fixmedins_code="H3", cross_filed=True)


def test_settled_claim_takes_cross_filed_from_the_register(svc, db_engine):
    # insured place's policy (national-default), resident inpatient level 3: 65 % (see test_benefit_rules);
    # unfiled: −10 points (illustrative) → 55 %
    unfiled = svc.settle(cross_claim("X1", dt.datetime(2025, 3, 1, 10, tzinfo=TZ)), msgid="m1", pre=True)
    assert unfiled.settlement.pool_prop_selfpay_bp == 5500
    with ydb.session_scope(db_engine) as s:
        add_filing(s, req())
    filed = svc.settle(cross_claim("X2", dt.datetime(2025, 3, 1, 10, tzinfo=TZ)), msgid="m2", pre=True)
    assert filed.settlement.pool_prop_selfpay_bp == 6500
    # same fees, same deductible: the pool pays 10 % of the in-scope amount above the deductible more
    base = filed.settlement.inscp_scp_amt - filed.settlement.act_pay_dedc
    assert filed.settlement.hifp_pay - unfiled.settlement.hifp_pay == base // 10
    expired = svc.settle(cross_claim("X3", dt.datetime(2025, 7, 2, 10, tzinfo=TZ)), msgid="m3", pre=True)
    assert expired.settlement.pool_prop_selfpay_bp == 5500


def test_cli_add_list_cancel(tmp_path):
    url = f"sqlite:///{tmp_path / 'y.db'}"
    r = CliRunner().invoke(
        app,
        [
            "filing",
            "add",
            "--psn-no",
            "R9",
            "--insutype",
            "390",
            "--type",
            "referral",
            "--insured",
            REGION,
            "--treatment",
            BEIJING,
            "--begin",
            "2025-01-10",
            "--db",
            url,
        ],
    )
    assert r.exit_code == 0, r.output
    assert "2025-07-09" in r.output
    r = CliRunner().invoke(
        app,
        [
            "filing",
            "add",
            "--psn-no",
            "R9",
            "--insutype",
            "390",
            "--type",
            "referral",
            "--insured",
            REGION,
            "--treatment",
            BEIJING,
            "--begin",
            "2025-07-01",
            "--db",
            url,
        ],
    )
    assert r.exit_code == 2
    r = CliRunner().invoke(app, ["filing", "cancel", "1", "--db", url])
    assert r.exit_code == 0 and "cancelled" in r.output
    r = CliRunner().invoke(app, ["filing", "list", "--db", url])
    assert r.exit_code == 0 and "R9" in r.output


def test_rest_add_refuse_cancel_list(db_engine):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from yibao.crossregion.api import router

    web = FastAPI()
    web.include_router(router)
    web.state.yibao_engine = db_engine
    c = TestClient(web)
    body = {
        "psn_no": "R1",
        "insutype": "390",
        "filing_type": "temporary",
        "insu_admdvs": REGION,
        "mdtrt_area_admdvs": SUZHOU,
        "begndate": "2025-01-01",
        "msgid": "F1",
    }
    r = c.post("/api/v1/filings", json=body)
    assert r.status_code == 200 and r.json()["enddate"] == "2025-06-30"
    r = c.post("/api/v1/filings", json={**body, "msgid": "F2", "begndate": "2025-03-01"})
    assert r.status_code == 400 and r.json()["detail"]["field"] == "begndate"
    assert count(db_engine) == 1
    fid = c.get("/api/v1/filings", params={"psn_no": "R1"}).json()[0]["filing_id"]
    assert c.post(f"/api/v1/filings/{fid}/cancel").json()["status"] == "cancelled"


def test_demo_filing_files_once(svc, db_engine):
    from yibao.demo.filing import demo_filing

    fid = demo_filing(db_engine, "R1", today=dt.date(2025, 1, 1))
    assert fid is not None
    assert demo_filing(db_engine, "R1", today=dt.date(2025, 1, 1)) is None  # overlapping: refused, nothing added
    assert demo_filing(db_engine, "NOBODY") is None
    assert count(db_engine) == 1
