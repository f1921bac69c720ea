"""Benefits follow enrolment at the national interface: 1101's insured state, 2207 refused for a stopped person."""

from __future__ import annotations

import datetime as dt

from tests.api.test_api_conformance import _refused, _register, _row, _settle_data, w  # noqa: F401  (w is a fixture)
from tests.api_support import PEOPLE, business_snapshot
from yibao.enrolment import service as en


def test_1101_reports_the_periods_and_2207_refuses_a_stopped_person_writing_nothing(w):
    his = w.his
    op = _register(his)  # registration before the stop: the refusal comes at settlement
    his.call("2204", {"feedetail": [_row(op, "E1", "1", "A-DRUG", "2", "10.00", "20.00")]})
    en.enrol(w.engine, "E1", "310", dt.date(2020, 5, 1))
    en.stop(w.engine, "E1", "310", dt.date(2025, 2, 28), reason="left employer")
    insu = his.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": PEOPLE["E1"][8]}})["output"][
        "insuinfo"
    ][0]
    assert (insu["psn_insu_stas"], insu["psn_insu_date"], insu["paus_insu_date"]) == ("2", "2020-05-01", "2025-03-01")
    before = business_snapshot(w.engine)
    reply = his.call("2207", {"data": _settle_data(op, "E1", "20.00")}, check=False)
    _refused(reply, "psn_no")
    assert "stopped" in reply["err_msg"] or "停保" in reply["err_msg"]
    assert business_snapshot(w.engine) == before
