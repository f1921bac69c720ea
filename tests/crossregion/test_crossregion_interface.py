"""2501 / 2501A 转院备案 and 2502 转院备案撤销 through HTTP, as HIS clients send them (issue 13).

The filing lands in the register (yibao.crossregion), the reply carries trt_dcla_detl_sn, empty strings are
absent fields, a repeated msgid is answered from the store, refusals name the field and change nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.api.test_api_conformance import _refused, _register, _world
from tests.api_support import PEOPLE, seed
from yibao.api.hisclient import HisClient, http_transport
from yibao.crossregion.models import CrossFiling
from yibao.crossregion.transactions import load_interface_rules

SUZHOU, NANJING = "320500", "320100"


@pytest.fixture
def w(db_engine):
    seed(db_engine)
    w = _world(db_engine)
    w.his.sign_in()
    return w


def _referral(**kw) -> dict:
    base = {
        "psn_no": "E1",
        "insutype": "",
        "tel": "",
        "addr": "",
        "insu_optins": "",
        "diag_code": "I10.x05",
        "diag_name": "高血压",
        "dise_cond_dscr": "",
        "reflin_medins_no": "H32050001",
        "reflin_medins_name": "苏州某医院 (synthetic)",
        "mdtrtarea_admdvs": SUZHOU,
        "hosp_agre_refl_flag": "1",
        "refl_type": "",
        "refl_date": "2025-03-10",
        "refl_rea": "病情需要",
        "refl_opnn": "同意转院",
        "begndate": "",
        "enddate": "",
    }
    base.update(kw)
    return base


def _filings(engine) -> list[tuple]:
    with engine.connect() as c:
        rows = c.execute(select(CrossFiling.__table__)).all()
    return sorted(tuple(r) for r in rows)


def test_2501_files_a_referral_with_empty_fields_and_the_type_validity(w):
    reply = w.his.call("2501", {"refmedin": _referral()})
    res = reply["output"]["result"]
    # begndate "" → the referral date; enddate "" → begin + 6 months − 1 day (filing.yaml referral: 6 months)
    assert (res["begndate"], res["enddate"]) == ("2025-03-10", "2025-09-09")
    from sqlalchemy.orm import Session

    with Session(w.engine) as s:
        f = s.get(CrossFiling, int(res["trt_dcla_detl_sn"]))
    assert (f.psn_no, f.insutype, f.filing_type, f.insured_admdvs, f.treatment_admdvs, f.status) == (
        "E1",
        "310",
        "referral",
        "990100",
        SUZHOU,
        "active",
    )
    # the filing decides cross_filed of a claim in Suzhou's province (Nanjing is Jiangsu too)
    from yibao.core.db import session_scope
    from yibao.crossregion.service import is_filed

    with session_scope(w.engine) as s:
        assert is_filed(s, "E1", "310", NANJING, dt.date(2025, 4, 1))
        assert not is_filed(s, "E1", "310", "110100", dt.date(2025, 4, 1))


def test_2501_repeated_msgid_answers_the_same_reply_and_files_once(w):
    mid = w.his.msgid()
    first = w.his.call("2501", {"refmedin": _referral()}, msgid=mid)
    again = w.his.call("2501", {"refmedin": _referral()}, msgid=mid)
    assert again["output"] == first["output"]
    assert len(_filings(w.engine)) == 1
    other = w.his.call("2501", {"refmedin": _referral(refl_rea="另一原因")}, msgid=mid, check=False)
    _refused(other, "msgid")
    assert len(_filings(w.engine)) == 1


@pytest.mark.parametrize(
    ("change", "fld"),
    [
        ({"mdtrtarea_admdvs": "990200"}, "refmedin.mdtrtarea_admdvs"),  # same province: no cross-province filing
        ({"mdtrtarea_admdvs": "32050"}, "mdtrtarea_admdvs"),
        ({"psn_no": "NOBODY"}, "psn_no"),
        ({"insutype": "390"}, "refmedin.insutype"),
        ({"insu_optins": "990200"}, "refmedin.insu_optins"),
        ({"diag_code": "NOT-A-CODE"}, "refmedin.diag_code"),
        ({"begndate": "2025-04-01", "enddate": "2025-03-01"}, "refmedin.enddate"),
        ({"refl_date": ""}, "refl_date"),
        ({"reflin_medins_no": ""}, "reflin_medins_no"),
    ],
)
def test_2501_refusals_name_the_field_and_file_nothing(w, change, fld):
    reply = w.his.call("2501", {"refmedin": _referral(**change)}, check=False)
    _refused(reply, fld)
    assert _filings(w.engine) == []


def test_2501_overlapping_referral_is_refused(w):
    w.his.call("2501", {"refmedin": _referral()})
    before = _filings(w.engine)
    reply = w.his.call("2501", {"refmedin": _referral(begndate="2025-05-01")}, check=False)
    _refused(reply, "refmedin.begndate")
    assert _filings(w.engine) == before


def test_2501a_needs_the_visit_before_the_referral_at_this_institution(w):
    reply = w.his.call("2501A", {"refmedin": _referral(refl_old_mdtrt_id="")}, check=False)
    _refused(reply, "refmedin.refl_old_mdtrt_id")
    reply = w.his.call("2501A", {"refmedin": _referral(refl_old_mdtrt_id="NO-SUCH-VISIT")}, check=False)
    _refused(reply, "refmedin.refl_old_mdtrt_id")
    assert _filings(w.engine) == []
    op = _register(w.his)
    other = _register(w.his, psn="E2")
    reply = w.his.call("2501A", {"refmedin": _referral(refl_old_mdtrt_id=other)}, check=False)
    _refused(reply, "refmedin.refl_old_mdtrt_id")  # a visit of another person
    sn = w.his.call("2501A", {"refmedin": _referral(refl_old_mdtrt_id=op)})["output"]["result"]["trt_dcla_detl_sn"]
    assert [f[0] for f in _filings(w.engine)] == [int(sn)]


def test_2502_cancels_only_this_institutions_filing_once(w):
    sn = w.his.call("2501", {"refmedin": _referral()})["output"]["result"]["trt_dcla_detl_sn"]
    before = _filings(w.engine)
    # another institution may not cancel it
    from tests.api.test_api_conformance import CREDENTIALS

    h3 = HisClient(http_transport(w.client), "H3", fixmedins_name="机构H3", clock=w.clock, credential=CREDENTIALS["H3"])
    h3.sign_in()
    _refused(
        h3.call("2502", {"data": {"trt_dcla_detl_sn": sn, "psn_no": "E1", "memo": ""}}, check=False), "trt_dcla_detl_sn"
    )
    # nor the right institution for another person, nor an unknown number
    _refused(
        w.his.call("2502", {"data": {"trt_dcla_detl_sn": sn, "psn_no": "E2", "memo": ""}}, check=False),
        "trt_dcla_detl_sn",
    )
    _refused(
        w.his.call("2502", {"data": {"trt_dcla_detl_sn": "99999", "psn_no": "E1", "memo": ""}}, check=False),
        "trt_dcla_detl_sn",
    )
    assert _filings(w.engine) == before
    w.his.call("2502", {"data": {"trt_dcla_detl_sn": sn, "psn_no": "E1", "memo": "患者放弃转院"}})
    with w.engine.connect() as c:
        assert c.execute(select(CrossFiling.status)).scalar_one() == "cancelled"
    again = w.his.call("2502", {"data": {"trt_dcla_detl_sn": sn, "psn_no": "E1", "memo": ""}}, check=False)
    _refused(again, "trt_dcla_detl_sn")  # already cancelled


def test_filings_made_at_the_window_are_not_cancelled_by_an_institution(w):
    from yibao.core.db import session_scope
    from yibao.crossregion.service import FilingRequest, add_filing

    with session_scope(w.engine) as s:
        fid = add_filing(
            s, FilingRequest("E1", "310", "temporary", "990100", SUZHOU, dt.date(2025, 3, 1), source_msgid="")
        ).id
    reply = w.his.call("2502", {"data": {"trt_dcla_detl_sn": str(fid), "psn_no": "E1", "memo": ""}}, check=False)
    _refused(reply, "trt_dcla_detl_sn")


def test_the_transactions_are_data():
    rules = load_interface_rules()
    assert {k: (t.kind, t.filing_type) for k, t in rules.transactions.items()} == {
        "2501": ("file", "referral"),
        "2501A": ("file", "referral"),
        "2502": ("cancel", ""),
    }
    assert PEOPLE["E1"][0] == "310"
