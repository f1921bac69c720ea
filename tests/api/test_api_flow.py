"""The national interface end to end: full outpatient and inpatient visits through the envelope (demo flow).

Run it on its own to see the flow: ``python -m pytest -q tests/api/test_api_flow.py -s``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.api_support import BOOK, CAT, CREDENTIALS, PEOPLE, REGION, SH, Clock, business_snapshot, make_interface, seed
from tests.factories import claim, line
from tests.settlement_support import facts, ledger_persons
from yibao.api.envelope import field_of, loads_exact
from yibao.api.hisclient import HisClient, HisError, Item, http_transport
from yibao.api.models import MessageLog
from yibao.server import create_app
from yibao.settlement import records
from yibao.settlement.sequential import Ledger, settle_in_order

T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SH)


@pytest.fixture
def env(db_engine):
    seed(db_engine)
    clock = Clock(T0)
    iface = make_interface(db_engine, clock)
    client = TestClient(create_app(iface))
    his = HisClient(http_transport(client), "H2", fixmedins_name="机构H2", clock=clock, credential=CREDENTIALS["H2"])
    his.sign_in()
    return iface, client, his, clock


def _cert(p):
    return PEOPLE[p][8]


def test_outpatient_and_inpatient_visits_settle_through_the_envelope(env, db_engine):
    iface, client, his, clock = env
    # 1101: person information by ID number
    info = his.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": _cert("E1"), "psn_cert_type": "01"}})
    base, insu = info["output"]["baseinfo"], info["output"]["insuinfo"][0]
    assert base["psn_no"] == "E1" and base["psn_name"] == "张伟" and base["age"] == 44
    assert insu["insutype"] == "310" and insu["balc"] == Decimal("5000.00") and insu["insuplc_admdvs"] == REGION

    # outpatient: 2201 → 2203 → 2204 → 2206 → 2207
    items = [Item("A-DRUG", "2", "150.00"), Item("B-DRUG", "1", "200.00")]
    op = his.outpatient("E1", "310", _cert("E1"), items, med_type="11", dise_codg="J06.9")
    pre, setl = op["2206"]["output"]["setlinfo"], op["2207"]["output"]["setlinfo"]
    # the same engine as the batch/scalar path: compare with the pure ledger, fen for fen
    lines = [line(1, "A-DRUG", 150, qty=2), line(2, "B-DRUG", 200)]
    c = claim(setl["mdtrt_id"], facts("E1"), lines, med_type="11", hosp_lv=2, when=T0, dise="J06.9")
    want = settle_in_order([c], Ledger(BOOK.policy(REGION), ledger_persons(), dt.date(2025, 3, 1)), CAT)[0]
    for k, v in want.amounts().items():
        assert setl[k] == Decimal(v) / 100, k
        assert pre[k] == setl[k], k
    assert setl["medfee_sumamt"] == Decimal("500.00") and setl["setl_id"] and pre["setl_id"] == ""
    assert setl["balc"] == Decimal("5000.00") - setl["acct_pay"]
    assert setl["clr_type"] == "11" and setl["medins_setl_id"] == op["2207"]["output"]["setlinfo"]["medins_setl_id"]
    fund = {d["fund_pay_type"]: d["fund_payamt"] for d in op["2207"]["output"]["setldetail"]}
    assert sum(fund.values()) == setl["fund_pay_sumamt"]
    assert setl["fund_pay_sumamt"] + setl["psn_part_amt"] == setl["medfee_sumamt"]
    assert setl["acct_pay"] + setl["acct_mulaid_pay"] + setl["psn_cash_pay"] == setl["psn_part_amt"]
    # 2204 reported the line-level split
    res = op["2204"]["output"]["result"]
    assert [r["feedetl_sn"] for r in res] == ["1", "2"] and res[1]["preselfpay_amt"] == Decimal("20.00")

    # 5203: the settlement query returns the same shares
    q = his.call("5203", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": "E1"}})
    assert {k: q["output"]["setlinfo"][k] for k in want.amounts()} == {k: setl[k] for k in want.amounts()}

    # inpatient: 2401 → 2301 → 2402 → 2303 → 2304
    clock.advance(days=2)
    his.sign_in()  # the sign-in of two days ago has expired
    begin, end = clock.t - dt.timedelta(days=1), clock.t - dt.timedelta(hours=1)
    ip = his.inpatient(
        "E1",
        "310",
        _cert("E1"),
        [
            Item("A-DRUG", "1", "8000"),
            Item("B-DRUG", "1", "3000"),
            Item("C-DRUG", "1", "500"),
            Item("CAP-DEV", "1", "150"),
        ],
        begntime=begin,
        endtime=end,
    )
    s4 = ip["2304"]["output"]["setlinfo"]
    assert s4["medfee_sumamt"] == Decimal("11650.00") and s4["clr_type"] == "21"
    assert s4["overlmt_selfpay"] == Decimal("50.00") and s4["fulamt_ownpay_amt"] == Decimal("500.00")
    assert {k: ip["2303"]["output"]["setlinfo"][k] for k in want.amounts()} == {k: s4[k] for k in want.amounts()}

    # 3201 daily reconciliation: the sum of replies equals the platform's totals
    day = clock.t.date()
    for clr, replies in (("11", [setl]), ("21", [s4])):
        begin_day = T0.date()
        totals = {
            "medfee_sumamt": sum(r["medfee_sumamt"] for r in replies),
            "fund_pay_sumamt": sum(r["fund_pay_sumamt"] for r in replies),
            "acct_pay": sum(r["acct_pay"] for r in replies),
            "fixmedins_setl_cnt": len(replies),
        }
        r = his.call(
            "3201",
            {
                "data": {
                    "insutype": "310",
                    "clr_type": clr,
                    "setl_optins": REGION,
                    "stmt_begndate": begin_day.isoformat(),
                    "stmt_enddate": day.isoformat(),
                    **totals,
                }
            },
        )
        assert r["output"]["stmtinfo"]["stmt_rslt"] == "0", r
        off = dict(totals, medfee_sumamt=totals["medfee_sumamt"] + Decimal("0.01"))
        r = his.call(
            "3201",
            {
                "data": {
                    "insutype": "310",
                    "clr_type": clr,
                    "setl_optins": REGION,
                    "stmt_begndate": begin_day.isoformat(),
                    "stmt_enddate": day.isoformat(),
                    **off,
                }
            },
        )
        assert (
            r["output"]["stmtinfo"]["stmt_rslt"] == "1" and "medfee_sumamt" in r["output"]["stmtinfo"]["stmt_rslt_dscr"]
        )

    # every message and reply is in the audit log, personal data masked
    with db_engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(MessageLog)).scalar_one()
        texts = [r[0] + r[1] for r in conn.execute(select(MessageLog.request, MessageLog.response))]
    assert n >= 14
    assert not any(_cert("E1") in t or "张伟" in t for t in texts)
    assert any("990101********0011" in t for t in texts) and any("9901**********0011" in t for t in texts)


def test_cancellation_restores_accumulators_and_account_to_the_fen(env, db_engine):
    iface, client, his, clock = env
    before = business_snapshot(db_engine)
    with db_engine.connect() as conn:
        acc0 = sorted(conn.execute(select(records.Accumulator.__table__)).all())
    op = his.outpatient("E1", "310", _cert("E1"), [Item("A-DRUG", "3", "100.00"), Item("B-DRUG20", "1", "99.99")])
    setl = op["2207"]["output"]["setlinfo"]
    assert setl["acct_pay"] > 0
    cancel = his.call("2208", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": "E1"}})
    out = cancel["output"]["setlinfo"]
    assert out["medfee_sumamt"] == -setl["medfee_sumamt"] and out["acct_pay"] == -setl["acct_pay"]
    assert out["balc"] == Decimal("5000.00")
    with db_engine.connect() as conn:
        assert sorted(conn.execute(select(records.Accumulator.__table__)).all()) == acc0
        bal = conn.execute(select(records.Account.balc).where(records.Account.psn_no == "E1")).scalar_one()
        led = conn.execute(
            select(func.sum(records.AccountLedger.amount)).where(records.AccountLedger.psn_no == "E1")
        ).scalar_one()
    assert bal == led == PEOPLE["E1"][7]
    # settling the cancelled settlement's visit again after cancelling the registration is refused
    his.call("2202", {"data": {"psn_no": "E1", "mdtrt_id": setl["mdtrt_id"]}})
    r = his.call(
        "2207",
        {
            "data": {
                "psn_no": "E1",
                "mdtrt_cert_type": "02",
                "medfee_sumamt": setl["medfee_sumamt"],
                "mdtrt_id": setl["mdtrt_id"],
                "insutype": "310",
            }
        },
        check=False,
    )
    assert r["infcode"] == -1 and field_of(r["err_msg"]) == "mdtrt_id" and "已撤销" in r["err_msg"]
    # a second cancellation is refused
    r = his.call(
        "2208", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": "E1"}}, check=False
    )
    assert r["infcode"] == -1 and field_of(r["err_msg"]) == "setl_id"
    assert len(before["settlement"]) == 0


def test_repeated_msgid_returns_the_original_reply_and_changes_nothing(env, db_engine):
    iface, client, his, clock = env
    reg = his.call(
        "2201",
        {
            "data": {
                "psn_no": "C1",
                "insutype": "310",
                "begntime": "2025-03-10 08:30:00",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": _cert("C1"),
                "ipt_otp_no": "OP-1",
            }
        },
        msgid="H2-IDEM-1",
    )
    mdtrt_id = reg["output"]["data"]["mdtrt_id"]
    rows = his.feedetail(mdtrt_id, "C1", [Item("A-DRUG", "1", "60")], when=T0)
    his.call("2204", {"feedetail": rows}, msgid="H2-IDEM-2")
    data = {
        "psn_no": "C1",
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": _cert("C1"),
        "med_type": "11",
        "medfee_sumamt": "60.00",
        "mdtrt_id": mdtrt_id,
        "insutype": "310",
    }
    env_7 = his.envelope("2207", {"data": data}, msgid="H2-IDEM-3")
    first = client.post("/fsi/api/rsfComIfsService/callService", content=_dump(env_7)).content
    snap = business_snapshot(db_engine)
    for _ in range(3):
        clock.advance(minutes=1)
        assert client.post("/fsi/api/rsfComIfsService/callService", content=_dump(env_7)).content == first
        assert (
            client.post(
                "/fsi/api/rsfComIfsService/callService",
                content=_dump(his.envelope("2201", reg_input(), msgid="H2-IDEM-1")),
            ).json()["infcode"]
            == 0
        )
    assert business_snapshot(db_engine) == snap
    # the same msgid with other content is refused, and changes nothing
    other = his.envelope("2207", {"data": dict(data, medfee_sumamt="61.00")}, msgid="H2-IDEM-3")
    r = client.post("/fsi/api/rsfComIfsService/callService", content=_dump(other)).json()
    assert r["infcode"] == -1 and field_of(r["err_msg"]) == "msgid"
    assert business_snapshot(db_engine) == snap


def reg_input():
    return {
        "data": {
            "psn_no": "C1",
            "insutype": "310",
            "begntime": "2025-03-10 08:30:00",
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": _cert("C1"),
            "ipt_otp_no": "OP-1",
        }
    }


def _dump(env):
    from yibao.api.envelope import dumps_exact

    return dumps_exact(env).encode()


def test_sign_no_is_tied_to_its_institution_and_expires(env, db_engine):
    iface, client, his, clock = env
    other = HisClient(http_transport(client), "H3", clock=clock, credential=CREDENTIALS["H3"])
    other.sign_no = his.sign_no  # H2's sign_no used by H3
    r = other.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": _cert("E1")}}, check=False)
    assert r["infcode"] == -1 and field_of(r["err_msg"]) == "sign_no" and "其他机构" not in r["err_msg"]
    other.sign_no = ""
    r = other.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": _cert("E1")}}, check=False)
    assert r["infcode"] == -1 and field_of(r["err_msg"]) == "sign_no"
    clock.advance(minutes=iface.cfg.interface.sign_no_ttl_minutes + 1)
    r = his.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": _cert("E1")}}, check=False)
    assert r["infcode"] == -1 and "过期" in r["err_msg"] and "expired" in r["err_msg"]
    his.sign_in()
    assert his.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": _cert("E1")}})["infcode"] == 0
    ghost = HisClient(http_transport(client), "NOPE", clock=clock)
    with pytest.raises(HisError) as e:
        ghost.sign_in()
    # an unknown institution gets the wrong-credential answer (it does not learn which codes exist)
    assert field_of(e.value.reply["err_msg"]) == "input.signIn.credential"


def test_a_repeat_is_answered_from_the_store_even_when_the_handler_would_now_refuse(env, db_engine):
    iface, client, his, clock = env
    reg = his.call("2201", reg_input())
    cancel = his.envelope(
        "2202", {"data": {"psn_no": "C1", "mdtrt_id": reg["output"]["data"]["mdtrt_id"]}}, msgid="H2-CANCEL-1"
    )
    first = client.post("/fsi/api/rsfComIfsService/callService", content=_dump(cancel)).content
    assert loads_exact(first)["infcode"] == 0
    snap = business_snapshot(db_engine)
    # cancelling a cancelled registration is refused, but this is the same message again
    assert client.post("/fsi/api/rsfComIfsService/callService", content=_dump(cancel)).content == first
    fresh = his.call("2202", {"data": {"psn_no": "C1", "mdtrt_id": reg["output"]["data"]["mdtrt_id"]}}, check=False)
    assert fresh["infcode"] == -1 and field_of(fresh["err_msg"]) == "mdtrt_id"
    assert business_snapshot(db_engine) == snap


def test_rest_side_runs_the_same_transactions(env, db_engine):
    iface, client, his, clock = env
    h = {"X-Fixmedins-Code": "H2"}
    r = client.post(
        "/api/v1/sign-in", json={"signIn": {"opter_no": "rest", "credential": CREDENTIALS["H2"]}}, headers=h
    )
    assert r.status_code == 200
    h["X-Sign-No"] = r.json()["signinoutb"]["sign_no"]
    r = client.post(
        "/api/v1/persons/query", json={"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": _cert("E2")}}, headers=h
    )
    assert r.status_code == 200 and r.json()["baseinfo"]["psn_no"] == "E2"
    r = client.post(
        "/api/v1/outpatient/registrations",
        headers=h,
        json={
            "data": {
                "psn_no": "E2",
                "insutype": "310",
                "begntime": "2025-03-10 08:00:00",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": _cert("E2"),
                "ipt_otp_no": "REST-1",
            }
        },
    )
    mdtrt_id = r.json()["data"]["mdtrt_id"]
    rows = his.feedetail(mdtrt_id, "E2", [Item("AMLO", "3", "12.34")], when=T0)
    r = client.post(
        "/api/v1/outpatient/fees", headers={**h, "Content-Type": "application/json"}, content=_dump({"feedetail": rows})
    )
    assert r.status_code == 200, r.text
    body = {
        "data": {
            "psn_no": "E2",
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": _cert("E2"),
            "med_type": "11",
            "medfee_sumamt": "37.02",
            "mdtrt_id": mdtrt_id,
            "insutype": "310",
        }
    }
    bad = client.post(
        "/api/v1/outpatient/settlements", headers=h, json={"data": dict(body["data"], medfee_sumamt="1.00")}
    )
    assert bad.status_code == 400 and bad.json()["field"] == "medfee_sumamt"
    r = client.post("/api/v1/outpatient/settlements", headers={**h, "X-Msgid": "REST-SETTLE-1"}, json=body)
    assert r.status_code == 200, r.text
    setl = loads_exact(r.content)["setlinfo"]
    assert setl["medfee_sumamt"] == Decimal("37.02") and '"medfee_sumamt":37.02' in r.text
    again = client.post("/api/v1/outpatient/settlements", headers={**h, "X-Msgid": "REST-SETTLE-1"}, json=body)
    assert again.content == r.content  # idempotent on X-Msgid
    # refusals: 400 naming the field; 401 for sign-in problems
    r = client.post(
        "/api/v1/persons/query",
        json={"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "x"}},
        headers={"X-Fixmedins-Code": "H3", "X-Sign-No": h["X-Sign-No"]},
    )
    assert r.status_code == 401 and r.json()["field"] == "sign_no"
    assert "/api/v1/outpatient/settlements" in client.get("/openapi.json").json()["paths"]


def test_fee_details_can_be_withdrawn_until_settled(env, db_engine):
    iface, client, his, clock = env
    reg = his.call("2201", reg_input())
    mdtrt_id = reg["output"]["data"]["mdtrt_id"]
    b1 = his.feedetail(
        mdtrt_id, "C1", [Item("A-DRUG", "1", "10.00"), Item("B-DRUG", "1", "5.00")], chrg_bchno="B1", when=T0
    )
    b2 = his.feedetail(mdtrt_id, "C1", [Item("SVC", "2", "3.00")], first_sn=3, chrg_bchno="B2", when=T0)
    his.call("2204", {"feedetail": b1})
    his.call("2204", {"feedetail": b2})
    out = his.call("2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "psn_no": "C1"}})
    assert out["output"]["result"]["feedetl_sn"] == ["1", "2"]
    data = {
        "psn_no": "C1",
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": _cert("C1"),
        "med_type": "11",
        "medfee_sumamt": "6.00",
        "mdtrt_id": mdtrt_id,
        "insutype": "310",
    }
    setl = his.call("2207", {"data": data})["output"]["setlinfo"]
    assert setl["medfee_sumamt"] == Decimal("6.00")
    r = his.call("2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "0000", "psn_no": "C1"}}, check=False)
    assert r["infcode"] == -1 and field_of(r["err_msg"]) == "feedetl_sn"  # settled lines stay
    his.call("2208", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": "C1"}})
    assert his.call("2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "0000", "psn_no": "C1"}})["output"]["result"][
        "feedetl_sn"
    ] == ["3"]
    # corrected lines under the same numbers, settled anew
    fixed = his.feedetail(mdtrt_id, "C1", [Item("SVC", "1", "3.00")], first_sn=3, chrg_bchno="B3", when=T0)
    his.call("2204", {"feedetail": fixed})
    again = his.call("2207", {"data": dict(data, medfee_sumamt="3.00")})["output"]["setlinfo"]
    assert again["medfee_sumamt"] == Decimal("3.00") and again["setl_id"] != setl["setl_id"]
    # inpatient 2302: an unknown line number is refused
    adm = his.call(
        "2401",
        {
            "mdtrtinfo": {
                "psn_no": "E2",
                "insutype": "310",
                "begntime": "2025-03-08 10:00:00",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": _cert("E2"),
                "med_type": "21",
                "ipt_no": "IPW",
                "dscg_maindiag_code": "J18.9",
            }
        },
    )
    ip = adm["output"]["result"]["mdtrt_id"]
    his.call(
        "2301", {"feedetail": his.feedetail(ip, "E2", [Item("BED", "2", "50"), Item("A-DRUG", "1", "9")], when=T0)}
    )
    r = his.call("2302", {"data": [{"feedetl_sn": "9", "mdtrt_id": ip, "psn_no": "E2"}]}, check=False)
    assert r["infcode"] == -1 and field_of(r["err_msg"]) == "feedetl_sn"
    assert his.call("2302", {"data": [{"feedetl_sn": "2", "mdtrt_id": ip, "psn_no": "E2"}]})["output"]["result"][
        "feedetl_sn"
    ] == ["2"]
