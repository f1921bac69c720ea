"""Bad input on the national envelope: infcode -1, a Chinese and an English reason naming the field, nothing changed."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from tests.api_support import CREDENTIALS, PEOPLE, SH, Clock, business_snapshot, make_interface, seed
from yibao.api.envelope import dumps_exact, field_of
from yibao.api.hisclient import HisClient, Item, http_transport
from yibao.server import create_app

T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SH)
PATH = "/fsi/api/rsfComIfsService/callService"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def world(db_engine):
    seed(db_engine)
    clock = Clock(T0)
    client = TestClient(create_app(make_interface(db_engine, clock)))
    his = HisClient(http_transport(client), "H2", clock=clock, credential=CREDENTIALS["H2"])
    his.sign_in()
    other = HisClient(http_transport(client), "H3", clock=clock, credential=CREDENTIALS["H3"])
    other.sign_in()
    # an outpatient visit with uploaded lines, and an inpatient stay admitted but not discharged
    reg = his.call(
        "2201",
        {
            "data": {
                "psn_no": "E1",
                "insutype": "310",
                "begntime": "2025-03-10 08:00:00",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": PEOPLE["E1"][8],
                "ipt_otp_no": "OP-9",
            }
        },
    )
    op = reg["output"]["data"]["mdtrt_id"]
    his.call("2204", {"feedetail": his.feedetail(op, "E1", [Item("A-DRUG", "2", "10.00")], when=T0)})
    adm = his.call(
        "2401",
        {
            "mdtrtinfo": {
                "psn_no": "E2",
                "insutype": "310",
                "begntime": "2025-03-08 10:00:00",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": PEOPLE["E2"][8],
                "med_type": "21",
                "ipt_no": "IP-9",
                "dscg_maindiag_code": "J18.9",
            }
        },
    )
    ip = adm["output"]["result"]["mdtrt_id"]
    his.call("2301", {"feedetail": his.feedetail(ip, "E2", [Item("BED", "2", "50")], when=T0)})
    return client, his, other, op, ip, db_engine


def _settle(op, **kw):
    d = {
        "psn_no": "E1",
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": PEOPLE["E1"][8],
        "med_type": "11",
        "medfee_sumamt": "20.00",
        "mdtrt_id": op,
        "insutype": "310",
    }
    d.update(kw)
    return {"data": d}


def _fee(mdtrt_id, psn_no="E1", **kw):
    row = HisClient.feedetail(mdtrt_id, psn_no, [Item("A-DRUG", "1", "5.00")], first_sn=7, when=T0)[0]
    row.update(kw)
    return {"feedetail": [row]}


def _check(reply: dict, field: str) -> None:
    assert reply["infcode"] == -1, reply
    got = field_of(reply["err_msg"])
    assert got is not None and (got == field or got.endswith("." + field)), (field, reply["err_msg"])
    zh, en = reply["err_msg"].split(" | ", 1)
    assert CJK.search(zh) and "[字段: " in zh, reply["err_msg"]  # Chinese reason naming the field
    assert re.search(r"[A-Za-z]{3,}", en.split("[field:")[0]) and "[field: " in en, reply["err_msg"]  # and English
    assert reply["output"] == {}


def test_bad_messages_get_infcode_minus_one_and_change_nothing(world):
    client, his, other, op, ip, engine = world
    snap = business_snapshot(engine)

    def raw(body: bytes, field: str) -> None:
        r = client.post(PATH, content=body)
        assert r.status_code == 200
        _check(r.json(), field)

    raw(b'{"infno": "2207", "msgid": ', "body")
    raw(b"[1, 2, 3]", "body")
    raw(b'{"infno": "2207", "x": NaN}', "body")
    raw(b"\xff\xfe", "body")

    def env(code: str, payload: dict, field: str, client_: HisClient = his, **over) -> None:
        e = client_.envelope(code, payload)
        for k, v in over.items():
            if v is None:
                e.pop(k)
            else:
                e[k] = v
        r = client.post(PATH, content=dumps_exact(e).encode())
        assert r.status_code == 200
        _check(r.json(), field)

    env("2207", _settle(op), "infno", infno=None)
    env("2207", _settle(op), "infno", infno="9999")
    env("2207", _settle(op), "infno", infno="22A7")
    env("2207", _settle(op), "msgid", msgid=None)
    env("2207", _settle(op), "fixmedins_code", fixmedins_code=None)
    env("2207", _settle(op), "inf_time", inf_time="yesterday")
    env("2207", _settle(op), "input", input=None)
    env("2207", _settle(op), "input", input=[1])
    env("2207", _settle(op), "infver", infver="V1.0; DROP")  # any well-formed version is accepted, not this
    # sign-in: missing, unknown, another institution's
    env("2207", _settle(op), "sign_no", sign_no="")
    env("2207", _settle(op), "sign_no", sign_no="NOT-A-SIGN-NO")
    env("2207", _settle(op), "sign_no", sign_no=other.sign_no)
    # missing and malformed fields
    bad = _settle(op)
    del bad["data"]["medfee_sumamt"]
    env("2207", bad, "medfee_sumamt")
    env("2207", _settle(op, medfee_sumamt="20.001"), "medfee_sumamt")
    env("2207", _settle(op, medfee_sumamt="abc"), "medfee_sumamt")
    env("2207", _settle(op, mdtrt_cert_type="09"), "mdtrt_cert_type")
    env("2207", _settle(op, acct_used_flag="2"), "acct_used_flag")
    # amounts that do not add up
    env("2207", _settle(op, medfee_sumamt="20.01"), "medfee_sumamt")
    env("2207", _settle(op, inscp_scp_amt="1.00"), "inscp_scp_amt")
    env("2204", _fee(op, det_item_fee_sumamt="5.01"), "det_item_fee_sumamt")
    env("2204", _fee(op, cnt="-1", det_item_fee_sumamt="-5.00"), "cnt")
    env("2204", _fee(op, cnt="0.00001"), "cnt")  # numeric(16,4): a fifth decimal is refused
    env("2204", _fee(op, pric="-5.00", det_item_fee_sumamt="-5.00"), "pric")
    # unknown codes
    env("2204", _fee(op, med_list_codg="NO-SUCH-ITEM"), "med_list_codg")
    env(
        "2204", _fee(op, feedetl_sn="x" * 31), "feedetl_sn"
    )  # character(30): "yp570" is a line number, 31 characters are not
    env("2204", _fee(op, feedetl_sn="yp 570"), "feedetl_sn")
    env("2203", {"mdtrtinfo": {"mdtrt_id": op, "psn_no": "E1", "med_type": "99"}}, "med_type")
    env(
        "2203",
        {"mdtrtinfo": {"mdtrt_id": op, "psn_no": "E1", "med_type": "11"}, "diseinfo": [{"diag_code": "Q99.999X"}]},
        "diag_code",
    )
    env(
        "2201",
        {
            "data": {
                "psn_no": "E1",
                "insutype": "390",
                "begntime": "2025-03-10 08:00:00",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": PEOPLE["E1"][8],
                "ipt_otp_no": "OP-10",
            }
        },
        "insutype",
    )
    env(
        "2201",
        {
            "data": {
                "psn_no": "NOBODY",
                "insutype": "310",
                "begntime": "2025-03-10 08:00:00",
                "mdtrt_cert_type": "02",
                "ipt_otp_no": "OP-11",
            }
        },
        "psn_no",
    )
    env(
        "2201",
        {
            "data": {
                "psn_no": "E1",
                "insutype": "310",
                "begntime": "2025-03-10 08:00:00",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": PEOPLE["E2"][8],
                "ipt_otp_no": "OP-12",
            }
        },
        "mdtrt_cert_no",
    )
    env("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": "TOKEN"}}, "mdtrt_cert_type")
    env("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "000000000000000000"}}, "mdtrt_cert_no")
    # someone else's visit, the wrong kind of visit, an unknown visit
    env("2207", _settle(op), "mdtrt_id", client_=other)
    env("2204", _fee(op, psn_no="E2"), "psn_no")
    env(
        "2304",
        {
            "data": {
                "psn_no": "E1",
                "mdtrt_cert_type": "02",
                "medfee_sumamt": "20.00",
                "mdtrt_id": op,
                "insutype": "310",
            }
        },
        "mdtrt_id",
    )
    env("2207", _settle("NO-SUCH-VISIT"), "mdtrt_id")
    # inpatient: settle before discharge, discharge before admission
    env(
        "2304",
        {
            "data": {
                "psn_no": "E2",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": PEOPLE["E2"][8],
                "medfee_sumamt": "100.00",
                "mdtrt_id": ip,
                "insutype": "310",
            }
        },
        "mdtrt_id",
    )
    env(
        "2402",
        {"dscginfo": {"mdtrt_id": ip, "psn_no": "E2", "insutype": "310", "endtime": "2025-03-07 10:00:00"}},
        "endtime",
    )
    # reconciliation with an end before its start; cancel / query of an unknown settlement
    env(
        "3201",
        {
            "data": {
                "insutype": "310",
                "clr_type": "11",
                "setl_optins": "990100",
                "stmt_begndate": "2025-03-10",
                "stmt_enddate": "2025-03-09",
                "medfee_sumamt": 0,
                "fund_pay_sumamt": 0,
                "acct_pay": 0,
                "fixmedins_setl_cnt": 0,
            }
        },
        "stmt_enddate",
    )
    env("2208", {"data": {"setl_id": "L000", "mdtrt_id": op, "psn_no": "E1"}}, "setl_id")
    env("5203", {"data": {"setl_id": "L000", "mdtrt_id": op, "psn_no": "E1"}}, "setl_id")

    assert business_snapshot(engine) == snap


def test_settling_a_cancelled_visit_is_refused(world):
    client, his, other, op, ip, engine = world
    his.call("2202", {"data": {"psn_no": "E1", "mdtrt_id": op}})
    his.call("2404", {"data": {"psn_no": "E2", "mdtrt_id": ip}})
    snap = business_snapshot(engine)
    for infno, payload, fld in (
        ("2207", _settle(op), "mdtrt_id"),
        ("2206", _settle(op), "mdtrt_id"),
        ("2204", _fee(op), "mdtrt_id"),
        (
            "2402",
            {"dscginfo": {"mdtrt_id": ip, "psn_no": "E2", "insutype": "310", "endtime": "2025-03-10 08:00:00"}},
            "mdtrt_id",
        ),
    ):
        r = his.call(infno, payload, check=False)
        _check(r, fld)
        assert "已撤销" in r["err_msg"] and "cancelled" in r["err_msg"]
    assert business_snapshot(engine) == snap
