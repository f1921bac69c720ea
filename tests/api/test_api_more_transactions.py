"""The further national-interface transactions (issue 16): each through the envelope, with its refusals.

Sign-out, institution / list / dictionary downloads, benefit check, admission change and discharge
cancellation, reversal by message id, the in-care check (3101/3102 and inside 2206/2207/2304), detail
reconciliation, the 52xx/53xx queries, files, and the settlement list (4101) with its DRG group.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import zipfile
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.api_support import CREDENTIALS, PEOPLE, REGION, SH, Clock, business_snapshot, make_interface, seed
from yibao.api.envelope import field_of, fmt_time
from yibao.api.hisclient import HisClient, Item, http_transport
from yibao.api.more_models import ApiFile, IncareResult, SetlList
from yibao.server import create_app
from yibao.settlement import records

T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SH)


@pytest.fixture
def env(db_engine):
    seed(db_engine)
    clock = Clock(T0)
    iface = make_interface(db_engine, clock)
    client = TestClient(create_app(iface))
    his = HisClient(http_transport(client), "H2", fixmedins_name="机构H2", clock=clock, credential=CREDENTIALS["H2"])
    his.sign_in()
    other = HisClient(http_transport(client), "H3", fixmedins_name="机构H3", clock=clock, credential=CREDENTIALS["H3"])
    other.sign_in()
    iface.test_client = client
    return iface, his, other, clock


def _cert(p):
    return PEOPLE[p][8]


def refused(reply, fld):
    assert reply["infcode"] == -1, reply
    assert field_of(reply["err_msg"]) == fld, reply["err_msg"]
    return reply["err_msg"]


def _accumulators(engine):
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(records.Accumulator.__table__)).all())


def _balance(engine, psn_no):
    with engine.connect() as conn:
        return conn.execute(select(records.Account.balc).where(records.Account.psn_no == psn_no)).scalar()


ONE_DRUG = (Item("A-DRUG", "1", "800.00"),)


def _admit(his, psn="E1", begin=None, dise="J18.9", items=ONE_DRUG):
    begin = begin or his.clock() - dt.timedelta(days=2)
    adm = his.call(
        "2401",
        {
            "mdtrtinfo": {
                "psn_no": psn,
                "insutype": PEOPLE[psn][0],
                "begntime": fmt_time(begin),
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": _cert(psn),
                "med_type": "21",
                "ipt_no": his.msgid(),
                "adm_dept_codg": "D02",
                "dscg_maindiag_code": dise,
            },
            "diseinfo": [{"diag_type": "1", "diag_srt_no": 1, "diag_code": dise, "maindiag_flag": "1"}],
        },
    )
    mdtrt_id = adm["output"]["result"]["mdtrt_id"]
    rows = his.feedetail(mdtrt_id, psn, list(items), when=begin + dt.timedelta(hours=1), med_type="21")
    his.call("2301", {"feedetail": rows})
    total = sum((r["det_item_fee_sumamt"] for r in rows), Decimal("0.00"))
    return mdtrt_id, total


def _discharge(his, mdtrt_id, psn="E1", dise="J18.9"):
    return his.call(
        "2402",
        {
            "dscginfo": {
                "mdtrt_id": mdtrt_id,
                "psn_no": psn,
                "insutype": PEOPLE[psn][0],
                "endtime": fmt_time(his.clock() - dt.timedelta(hours=1)),
                "dise_codg": dise,
                "dscg_way": "1",
            }
        },
    )


def _settle_in(his, mdtrt_id, total, psn="E1", infno="2304", msgid=None, check=True):
    return his.call(
        infno,
        {
            "data": {
                "psn_no": psn,
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": _cert(psn),
                "medfee_sumamt": total,
                "mdtrt_id": mdtrt_id,
                "insutype": PEOPLE[psn][0],
                "acct_used_flag": "1",
            }
        },
        msgid=msgid,
        check=check,
    )


# --- 9002 sign-out -------------------------------------------------------------------------------


def test_sign_out_stops_the_sign_no_and_repeats_answer_the_same(env):
    iface, his, other, clock = env
    sign = his.sign_no
    assert his.call("1901", {"data": {"type": "gend"}})["infcode"] == 0
    r = refused(other.call("9002", {"signOut": {"sign_no": sign, "opter_no": "0001"}}, check=False), "signOut.sign_no")
    assert "本机构" in r  # another institution cannot sign this institution out
    out = his.call("9002", {"signOut": {"sign_no": sign, "opter_no": "0001"}})
    assert out["output"]["signoutoutb"]["sign_time"] == fmt_time(T0)
    refused(his.call("1901", {"data": {"type": "gend"}}, check=False), "sign_no")  # the sign_no no longer works
    clock.advance(minutes=5)
    again = his.call("9002", {"signOut": {"sign_no": sign, "opter_no": "0001"}})
    assert again["output"]["signoutoutb"]["sign_time"] == fmt_time(T0)  # idempotent: the first sign-out's time
    refused(his.call("9002", {"signOut": {"sign_no": "NOPE", "opter_no": "0001"}}, check=False), "signOut.sign_no")
    refused(his.call("9002", {"signOut": {"sign_no": sign}}, check=False), "input.signOut.opter_no")
    his.sign_in()
    assert his.call("1901", {"data": {"type": "gend"}})["infcode"] == 0


def test_a_sign_out_in_one_worker_stops_the_sign_no_in_every_worker(env, db_engine):
    """Two Interface objects on one database stand for two server worker processes."""
    iface, his, other, clock = env
    worker2 = TestClient(create_app(make_interface(db_engine, clock)))
    his2 = HisClient(http_transport(worker2), "H2", fixmedins_name="机构H2", clock=clock, credential=CREDENTIALS["H2"])
    his2.sign_no = his.sign_no  # the HIS's next request reaches the other worker
    assert his2.call("1901", {"data": {"type": "gend"}})["infcode"] == 0
    his.call("9002", {"signOut": {"sign_no": his.sign_no, "opter_no": "0001"}})  # signed out in worker 1
    refused(his2.call("1901", {"data": {"type": "gend"}}, check=False), "sign_no")  # worker 2 refuses it at once


# --- 1201 / 1301 / 1312 / 1901 --------------------------------------------------------------------


def test_institutions_lists_and_dictionaries(env):
    iface, his, other, clock = env
    r = his.call("1201", {"medinsinfo": {"fixmedins_code": "H3"}})["output"]["medinsinfo"]
    assert r == [
        {
            "fixmedins_code": "H3",
            "fixmedins_name": "机构H3",
            "uscc": "",
            "fixmedins_type": "1",
            "hosp_lv": "02",
            "admdvs": REGION,
        }
    ]
    pharm = his.call("1201", {"medinsinfo": {"fixmedins_type": "2"}})["output"]["medinsinfo"]
    assert [x["fixmedins_code"] for x in pharm] == ["P0"]
    assert len(his.call("1201", {"medinsinfo": {"fixmedins_name": "机构"}})["output"]["medinsinfo"]) == 4
    refused(his.call("1201", {"medinsinfo": {"fixmedins_type": "7"}}, check=False), "medinsinfo.fixmedins_type")

    n = len(iface.catalog)
    page = his.call("1312", {"data": {"page_num": 2, "page_size": 5}})["output"]
    assert page["recordCounts"] == n and page["pages"] == -(-n // 5) and page["size"] == 5 and not page["firstPage"]
    codes = sorted(iface.catalog.items)
    assert [x["hilist_code"] for x in page["data"]] == codes[5:10]
    c = his.call("1312", {"data": {"chrgitm_lv": "03", "page_num": "1", "page_size": "100"}})["output"]["data"]
    assert {x["hilist_code"] for x in c} == {k for k, v in iface.catalog.items.items() if v.chrgitm_lv == "03"}
    b = his.call("1312", {"data": {"hilist_code": "B-DRUG"}})["output"]["data"][0]
    assert b["selfpay_prop"] == Decimal("0.1000") and b["chrgitm_lv"] == "02" and b["lmt_used_flag"] == "0"
    cap = his.call("1312", {"data": {"hilist_code": "CAP-DEV"}})["output"]["data"][0]
    assert cap["pric_uplmt_amt"] == Decimal("100.00")
    refused(his.call("1312", {"data": {"page_size": 5000}}, check=False), "input.data.page_size")

    f = his.call("1301", {"data": {"ver": ""}})["output"]
    assert f["data_cnt"] == n and f["file_qury_no"]
    got = his.call(
        "9102", {"fsDownloadIn": {"file_qury_no": f["file_qury_no"], "filename": "plc", "fixmedins_code": "H2"}}
    )
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(got["output"]["data"]))) as z:
        lines = z.read(z.namelist()[0]).decode("utf-8").splitlines()
    assert lines[0].startswith("hilist_code\thilist_name") and len(lines) == n + 1
    assert {ln.split("\t")[0] for ln in lines[1:]} == set(codes)
    assert his.call("1301", {"data": {"ver": f["ver"]}})["output"]["data_cnt"] == 0  # nothing new since that version
    refused(
        other.call("9102", {"fsDownloadIn": {"file_qury_no": f["file_qury_no"], "fixmedins_code": "H3"}}, check=False),
        "fsDownloadIn.file_qury_no",
    )  # another institution's file

    med = his.call("1901", {"data": {"type": "med_type", "admdvs": REGION}})["output"]["list"]
    assert {x["value"] for x in med} == set(iface.book.policy(REGION).snapshot(T0.date()).med_types)
    psn = {x["value"]: x["label"] for x in his.call("1901", {"data": {"type": "psn_type"}})["output"]["list"]}
    assert psn == {"11": "在职", "21": "退休", "1501": "城乡居民"}  # from interface.yaml
    assert his.call("1901", {"data": {"type": "insutype", "vali_flag": "0"}})["output"]["list"] == []
    assert "med_type" in refused(his.call("1901", {"data": {"type": "nope"}}, check=False), "data.type")


# --- 2001 -------------------------------------------------------------------------------------------


def test_benefit_check(env):
    iface, his, other, clock = env
    when = fmt_time(T0)
    ok = his.call(
        "2001", {"data": {"psn_no": "E1", "insutype": "310", "med_type": "11", "begntime": when, "endtime": ""}}
    )
    rows = ok["output"]["trtinfo"]
    assert {r["fund_pay_type"] for r in rows} >= {"310100", "310200"} and all(
        r["trt_enjymnt_flag"] == "1" for r in rows
    )
    wrong = his.call("2001", {"data": {"psn_no": "E1", "insutype": "390", "med_type": "11", "begntime": when}})
    assert all(r["trt_enjymnt_flag"] == "0" and "险种" in r["trt_chk_rslt"] for r in wrong["output"]["trtinfo"])
    chronic_no = his.call(
        "2001", {"data": {"psn_no": "R1", "insutype": "390", "med_type": "14", "begntime": when, "dise_codg": "J06.9"}}
    )["output"]["trtinfo"]
    assert chronic_no[0]["trt_enjymnt_flag"] == "0"
    chronic_yes = his.call(
        "2001", {"data": {"psn_no": "R1", "insutype": "390", "med_type": "14", "begntime": when, "dise_codg": "I10"}}
    )["output"]["trtinfo"]
    assert chronic_yes[0]["trt_enjymnt_flag"] == "1" and {r["fund_pay_type"] for r in chronic_yes} >= {
        "390100",
        "610100",
    }
    refused(
        his.call(
            "2001", {"data": {"psn_no": "NOBODY", "insutype": "310", "med_type": "11", "begntime": when}}, check=False
        ),
        "psn_no",
    )
    refused(
        his.call(
            "2001",
            {
                "data": {
                    "psn_no": "E1",
                    "insutype": "310",
                    "med_type": "11",
                    "begntime": when,
                    "endtime": fmt_time(T0 - dt.timedelta(days=1)),
                }
            },
            check=False,
        ),
        "data.endtime",
    )


# --- 2403 / 2405 / 5201 / 5202 / 5303 ------------------------------------------------------------------


def test_admission_change_discharge_cancel_and_visit_queries(env, db_engine):
    iface, his, other, clock = env
    mdtrt_id, total = _admit(his)
    ins = his.call("5303", {"data": {"psn_no": "E1"}})["output"]["data"]
    assert [x["mdtrt_id"] for x in ins] == [mdtrt_id] and ins[0]["med_type"] == "21"
    assert other.call("5303", {"data": {"psn_no": "E1"}})["output"]["data"] == []  # only this institution's stays

    before = business_snapshot(db_engine)
    refused(
        his.call(
            "2403", {"adminfo": {"mdtrt_id": mdtrt_id, "psn_no": "E1", "dscg_maindiag_code": "NOT-A-CODE"}}, check=False
        ),
        "diseinfo.diag_code",
    )
    refused(
        other.call("2403", {"adminfo": {"mdtrt_id": mdtrt_id, "psn_no": "E1", "adm_dept_codg": "X"}}, check=False),
        "mdtrt_id",
    )
    refused(
        his.call("2403", {"adminfo": {"mdtrt_id": mdtrt_id, "psn_no": "E1", "med_type": "99"}}, check=False),
        "adminfo.med_type",
    )
    refused(
        his.call(
            "2403",
            {"adminfo": {"mdtrt_id": mdtrt_id, "psn_no": "E1", "begntime": fmt_time(T0 + dt.timedelta(days=1))}},
            check=False,
        ),
        "adminfo.begntime",
    )
    assert business_snapshot(db_engine) == {**before, "api_reply": business_snapshot(db_engine)["api_reply"]}
    his.call(
        "2403",
        {
            "adminfo": {
                "mdtrt_id": mdtrt_id,
                "psn_no": "E1",
                "adm_dept_codg": "D09",
                "dscg_maindiag_code": "J18.0",
                "begntime": "",
            },
            "diseinfo": [
                {"diag_code": "J18.0", "maindiag_flag": "1", "diag_srt_no": 1},
                {"diag_code": "I10", "maindiag_flag": "0", "diag_srt_no": 2},
            ],
        },
    )
    dx = his.call("5202", {"data": {"mdtrt_id": mdtrt_id, "psn_no": "E1"}})["output"]["diseinfo"]
    assert [(x["diag_code"], x["maindiag_flag"]) for x in dx] == [("J18.0", "1"), ("I10", "0")]
    refused(other.call("5202", {"data": {"mdtrt_id": mdtrt_id, "psn_no": "E1"}}, check=False), "mdtrt_id")
    visits = his.call("5201", {"data": {"psn_no": "E1", "begntime": fmt_time(T0 - dt.timedelta(days=30))}})["output"][
        "mdtrtinfo"
    ]
    assert [(v["mdtrt_id"], v["adm_dept_codg"], v["inhosp_stas"]) for v in visits] == [(mdtrt_id, "D09", "1")]
    assert (
        other.call("5201", {"data": {"psn_no": "E1", "begntime": fmt_time(T0 - dt.timedelta(days=30))}})["output"][
            "mdtrtinfo"
        ]
        == []
    )

    # 2405: discharge, cancel it, the stay is open again and cannot be finally settled until discharged again
    refused(
        his.call("2405", {"data": {"mdtrt_id": mdtrt_id, "psn_no": "E1"}}, check=False), "mdtrt_id"
    )  # not discharged
    _discharge(his, mdtrt_id, dise="J18.0")
    assert his.call("5303", {"data": {"psn_no": "E1"}})["output"]["data"] == []
    his.call("2405", {"data": {"mdtrt_id": mdtrt_id, "psn_no": "E1"}})
    assert [x["mdtrt_id"] for x in his.call("5303", {"data": {"psn_no": "E1"}})["output"]["data"]] == [mdtrt_id]
    with db_engine.connect() as conn:
        assert (
            conn.execute(select(records.Encounter.endtime).where(records.Encounter.mdtrt_id == mdtrt_id)).scalar()
            is None
        )
    refused(_settle_in(his, mdtrt_id, total, check=False), "mdtrt_id")  # not discharged
    _discharge(his, mdtrt_id, dise="J18.0")
    s = _settle_in(his, mdtrt_id, total)["output"]["setlinfo"]
    assert s["medfee_sumamt"] == total
    refused(his.call("2405", {"data": {"mdtrt_id": mdtrt_id, "psn_no": "E1"}}, check=False), "mdtrt_id")  # settled
    refused(
        his.call("2403", {"adminfo": {"mdtrt_id": mdtrt_id, "psn_no": "E1", "adm_dept_codg": "D1"}}, check=False),
        "mdtrt_id",
    )


# --- 2601 reversal -----------------------------------------------------------------------------------------


def test_reversal_of_a_settlement_and_of_its_cancellation(env, db_engine):
    iface, his, other, clock = env
    acc0, bal0 = _accumulators(db_engine), PEOPLE["E1"][7]
    op = his.outpatient("E1", "310", _cert("E1"), [Item("A-DRUG", "3", "100.00"), Item("B-DRUG20", "1", "99.99")])
    setl = op["2207"]["output"]["setlinfo"]
    acc1, bal1 = _accumulators(db_engine), _balance(db_engine, "E1")
    assert setl["acct_pay"] > 0 and bal1 == bal0 - int(setl["acct_pay"] * 100)
    with db_engine.connect() as conn:
        msg2207 = conn.execute(
            select(records.Settlement.msgid).where(records.Settlement.setl_id == setl["setl_id"])
        ).scalar_one()

    # refusals first: none of them changes anything
    before = business_snapshot(db_engine)
    refused(
        his.call("2601", {"data": {"psn_no": "E1", "omsgid": "NEVER-SEEN", "oinfno": "2207"}}, check=False),
        "data.omsgid",
    )
    refused(
        his.call("2601", {"data": {"psn_no": "E1", "omsgid": msg2207, "oinfno": "2304"}}, check=False), "data.oinfno"
    )
    refused(
        his.call("2601", {"data": {"psn_no": "E1", "omsgid": msg2207, "oinfno": "2203"}}, check=False), "data.oinfno"
    )
    refused(
        his.call("2601", {"data": {"psn_no": "E2", "omsgid": msg2207, "oinfno": "2207"}}, check=False), "data.psn_no"
    )
    refused(
        other.call("2601", {"data": {"psn_no": "E1", "omsgid": msg2207, "oinfno": "2207"}}, check=False), "data.omsgid"
    )
    after = business_snapshot(db_engine)
    assert {k: v for k, v in after.items() if k != "api_reply"} == {k: v for k, v in before.items() if k != "api_reply"}

    # reverse the settlement: cancelled, accumulators and account as before it, to the fen
    rv = his.call("2601", {"data": {"psn_no": "E1", "omsgid": msg2207, "oinfno": "2207"}}, msgid="RV-1")
    assert rv["output"]["result"]["rvs_stas"] == "done" and rv["output"]["result"]["setl_id"] == setl["setl_id"]
    assert _accumulators(db_engine) == acc0 and _balance(db_engine, "E1") == bal0
    q = his.call("5203", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": "E1"}})
    assert q["output"]["setlinfo"]["refd_setl_flag"] == "1"
    # idempotent: the same reversal message again gives the same reply; another reversal message changes nothing
    again = his.call("2601", {"data": {"psn_no": "E1", "omsgid": msg2207, "oinfno": "2207"}}, msgid="RV-1")
    assert again["output"] == rv["output"] and again["inf_refmsgid"] == rv["inf_refmsgid"]
    twice = his.call("2601", {"data": {"psn_no": "E1", "omsgid": msg2207, "oinfno": "2207"}})
    assert twice["output"]["result"]["rvs_stas"] == "already"
    assert _accumulators(db_engine) == acc0 and _balance(db_engine, "E1") == bal0

    # the reversal was itself a cancellation (msgid RV-1): reversing it puts the settlement back exactly
    back = his.call("2601", {"data": {"psn_no": "E1", "omsgid": "RV-1", "oinfno": "2208"}})
    assert back["output"]["result"]["rvs_stas"] == "done"
    assert _accumulators(db_engine) == acc1 and _balance(db_engine, "E1") == bal1
    q = his.call("5203", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": "E1"}})
    assert q["output"]["setlinfo"]["refd_setl_flag"] == "0"
    assert (
        his.call("2601", {"data": {"psn_no": "E1", "omsgid": "RV-1", "oinfno": "2208"}})["output"]["result"]["rvs_stas"]
        == "already"
    )
    with db_engine.connect() as conn:
        led = conn.execute(
            select(func.sum(records.AccountLedger.amount)).where(records.AccountLedger.psn_no == "E1")
        ).scalar_one()
    assert led == bal1

    # an ordinary 2208 cancellation, then its reversal refused once the person has settled since
    c = his.call("2208", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": "E1"}})
    clock.advance(minutes=1)
    his.outpatient("E1", "310", _cert("E1"), [Item("A-DRUG", "1", "10.00")])
    assert c["infcode"] == 0
    r = refused(
        his.call(
            "2601", {"data": {"psn_no": "E1", "omsgid": _last_msgid(db_engine, "2208"), "oinfno": "2208"}}, check=False
        ),
        "data.omsgid",
    )
    assert "新结算" in r


def _last_msgid(engine, infno):
    from yibao.api.models import StoredReply

    with engine.connect() as conn:
        return conn.execute(
            select(StoredReply.msgid).where(StoredReply.infno == infno).order_by(StoredReply.stored_at.desc()).limit(1)
        ).scalar_one()


def test_reversal_of_registration_and_fee_upload(env, db_engine):
    iface, his, other, clock = env
    reg = his.call(
        "2201",
        {
            "data": {
                "psn_no": "E2",
                "insutype": "310",
                "begntime": fmt_time(T0),
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": _cert("E2"),
                "ipt_otp_no": "OTP-1",
            }
        },
        msgid="REG-1",
    )
    mdtrt_id = reg["output"]["data"]["mdtrt_id"]
    his.call(
        "2204", {"feedetail": his.feedetail(mdtrt_id, "E2", [Item("A-DRUG", "1", "5.00")], when=T0)}, msgid="FEE-1"
    )
    his.call(
        "2204",
        {"feedetail": his.feedetail(mdtrt_id, "E2", [Item("B-DRUG", "1", "7.00")], first_sn=2, when=T0)},
        msgid="FEE-2",
    )
    out = his.call("2601", {"data": {"psn_no": "E2", "omsgid": "FEE-1", "oinfno": "2204"}})
    assert out["output"]["result"]["rvs_stas"] == "done"
    with db_engine.connect() as conn:
        left = sorted(
            conn.execute(select(records.FeeDetail.feedetl_sn).where(records.FeeDetail.mdtrt_id == mdtrt_id)).scalars()
        )
    assert left == [2]  # only the lines of FEE-1
    assert (
        his.call("2601", {"data": {"psn_no": "E2", "omsgid": "FEE-1", "oinfno": "2204"}})["output"]["result"][
            "rvs_stas"
        ]
        == "already"
    )
    his.call("2601", {"data": {"psn_no": "E2", "omsgid": "REG-1", "oinfno": "2201"}})
    with db_engine.connect() as conn:
        from yibao.settlement.visits import VisitState

        assert (
            conn.execute(select(VisitState.status).where(VisitState.mdtrt_id == mdtrt_id)).scalar_one() == "cancelled"
        )


# --- 3101 / 3102 and the in-care check in settlement -------------------------------------------------------


def _order(rx, code, cnt, pric, **kw):
    return {"rx_id": rx, "hilist_code": code, "cnt": cnt, "pric": pric, **kw}


def test_incare_analysis_and_feedback(env, db_engine):
    iface, his, other, clock = env
    data = {
        "trig_scen": "2",
        "patient_dtos": [
            {
                "patn_id": "E1",
                "gend": "1",
                "brdy": "1980-04-01",
                "curr_mdtrt_id": "HIS-V1",
                "fsi_encounter_dtos": [
                    {
                        "mdtrt_id": "HIS-V1",
                        "medins_id": "H2",
                        "med_type": "11",
                        "adm_date": fmt_time(T0),
                        "dscg_main_dise_codg": "J06.9",
                        "fsi_diagnose_dtos": [{"dise_codg": "J06.9", "maindise_flag": "1"}],
                        "fsi_order_dtos": [
                            _order("1", "F-ONLY", "1", "12.00"),
                            _order("2", "A-DRUG", "2", "3.00", prd_days=90),
                            _order("3", "SVC", "1", "5.00"),
                        ],
                    }
                ],
            }
        ],
    }
    out = his.call("3101", {"data": data})["output"]["result"]
    by_rule = {r["rule_id"]: r for r in out}
    assert set(by_rule) == {"SV-SCOPE-SEX", "SV-LRX-01", "SV-LRX-02"}, out
    assert by_rule["SV-SCOPE-SEX"]["action"] == "warn" and by_rule["SV-LRX-01"]["action"] == "refuse"
    assert (
        by_rule["SV-SCOPE-SEX"]["vola_amt"] == Decimal("12.00")
        and by_rule["SV-SCOPE-SEX"]["judge_result_detail_dtos"][0]["rx_id"] == "1"
    )
    # at a prescribing scene (事前) the same orders only remind
    pre = his.call("3101", {"data": {**data, "trig_scen": "1"}})["output"]["result"]
    assert {r["action"] for r in pre} == {"warn"}
    only = his.call("3101", {"data": {**data, "rule_ids": ["SV-LRX-01"]}})["output"]["result"]
    assert [r["rule_id"] for r in only] == ["SV-LRX-01"]
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(IncareResult)).scalar_one() == len(out) + len(pre) + 1

    jr = by_rule["SV-SCOPE-SEX"]["jr_id"]
    refused(
        his.call("3102", {"data": {"warns": [{"warn_rslt_id": jr, "dspo_way": "1"}]}}, check=False),
        "data.warns.0.dspo_way_rea",
    )
    refused(
        other.call("3102", {"data": {"warns": [{"warn_rslt_id": jr, "dspo_way": "2"}]}}, check=False),
        "data.warns.0.warn_rslt_id",
    )
    fb = his.call(
        "3102", {"data": {"warns": [{"warn_rslt_id": jr, "dspo_way": "1", "dspo_way_rea": "患者为变性人, 已核实"}]}}
    )
    assert fb["output"]["result"][0]["dspo_stas"] == "1"
    with db_engine.connect() as conn:
        assert conn.execute(select(IncareResult.dspo_way).where(IncareResult.jr_id == jr)).scalar_one() == "1"

    bad = {**data, "patient_dtos": [{**data["patient_dtos"][0], "patn_id": "NOBODY"}]}
    refused(his.call("3101", {"data": bad}, check=False), "patient_dtos.0.patn_id")
    enc = data["patient_dtos"][0]["fsi_encounter_dtos"][0]
    bad = {**data, "patient_dtos": [{**data["patient_dtos"][0], "fsi_encounter_dtos": [{**enc, "medins_id": "H3"}]}]}
    refused(his.call("3101", {"data": bad}, check=False), "patient_dtos.0.fsi_encounter_dtos.0.medins_id")
    bad = {
        **data,
        "patient_dtos": [
            {
                **data["patient_dtos"][0],
                "fsi_encounter_dtos": [{**enc, "fsi_order_dtos": [_order("1", "NO-SUCH", "1", "1.00")]}],
            }
        ],
    }
    refused(his.call("3101", {"data": bad}, check=False), "fsi_order_dtos.0.hilist_code")
    refused(his.call("3101", {"data": {**data, "rule_ids": "SV-NOPE-1"}}, check=False), "data.rule_ids")


def test_settlement_runs_the_incare_check(env, db_engine):
    iface, his, other, clock = env
    # a warning rule (restricted to women, a man's visit): settles, and the reply says why
    op = his.outpatient("E1", "310", _cert("E1"), [Item("F-ONLY", "1", "20.00")])
    assert op["2206"]["warn_msg"].startswith("事中审核提示") and "SV-SCOPE-SEX" in op["2206"]["warn_msg"]
    assert "SV-SCOPE-SEX" in op["2207"]["warn_msg"] and op["2207"]["output"]["setlinfo"]["setl_id"]
    clean = his.outpatient("E2", "310", _cert("E2"), [Item("A-DRUG", "1", "20.00")])
    assert clean["2207"]["warn_msg"] == ""
    # a refusing rule (a 90-day prescription, over the 84-day limit): 2206 and 2207 refuse, nothing is written
    reg = his.call(
        "2201",
        {
            "data": {
                "psn_no": "E2",
                "insutype": "310",
                "begntime": fmt_time(T0),
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": _cert("E2"),
                "ipt_otp_no": "OTP-LRX",
            }
        },
    )
    mdtrt_id = reg["output"]["data"]["mdtrt_id"]
    rows = his.feedetail(mdtrt_id, "E2", [Item("AMLO", "90", "1.00")], when=T0)
    rows[0]["prd_days"] = 90
    his.call("2204", {"feedetail": rows})
    data = {
        "psn_no": "E2",
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": _cert("E2"),
        "med_type": "11",
        "medfee_sumamt": "90.00",
        "mdtrt_id": mdtrt_id,
        "insutype": "310",
    }
    before = business_snapshot(db_engine)
    msg = refused(his.call("2206", {"data": data}, check=False), "prd_days")
    assert "SV-LRX-01" in msg and "事中审核不通过" in msg
    refused(his.call("2207", {"data": data}, check=False), "prd_days")
    after = business_snapshot(db_engine)
    assert {k: v for k, v in after.items() if k != "api_reply"} == {k: v for k, v in before.items() if k != "api_reply"}
    # inpatient: the same refusing rule stops 2304
    mdtrt_in, total = _admit(his, "E2", items=(Item("A-DRUG", "1", "50.00"),))
    rows = his.feedetail(mdtrt_in, "E2", [Item("AMLO", "100", "1.00")], first_sn=2, when=T0 - dt.timedelta(hours=3))
    rows[0]["prd_days"] = 100
    his.call("2301", {"feedetail": rows})
    _discharge(his, mdtrt_in, "E2")
    refused(_settle_in(his, mdtrt_in, total + Decimal("100.00"), "E2", check=False), "prd_days")


# --- 3202 detail reconciliation --------------------------------------------------------------------------------


def _upload(his, name, data: bytes):
    return his.call(
        "9101",
        {"fsUploadIn": {"in": base64.b64encode(data).decode(), "filename": name, "fixmedins_code": his.fixmedins_code}},
    )


def _detail_zip(rows):
    text = "".join("\t".join(str(x) for x in r) + "\n" for r in rows)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("detail.txt", text)
    return buf.getvalue()


def test_detail_reconciliation(env, db_engine):
    iface, his, other, clock = env
    a = his.outpatient("E1", "310", _cert("E1"), [Item("A-DRUG", "2", "150.00")])["2207"]["output"]["setlinfo"]
    b = his.outpatient("E2", "310", _cert("E2"), [Item("B-DRUG", "1", "80.00")])["2207"]["output"]["setlinfo"]
    his.call("2208", {"data": {"setl_id": b["setl_id"], "mdtrt_id": b["mdtrt_id"], "psn_no": "E2"}})
    rows = [
        (s["setl_id"], s["mdtrt_id"], s["psn_no"], s["medfee_sumamt"], s["fund_pay_sumamt"], s["acct_pay"], flag)
        for s, flag in ((a, "0"), (b, "1"))
    ]
    day = T0.date().isoformat()
    stmt = {
        "setl_optins": REGION,
        "stmt_begndate": day,
        "stmt_enddate": day,
        "medfee_sumamt": a["medfee_sumamt"],
        "fund_pay_sumamt": a["fund_pay_sumamt"],
        "cash_payamt": a["psn_cash_pay"],
        "fixmedins_setl_cnt": 1,
    }

    def run(detail_rows, **over):
        f = _upload(his, "detail.zip", _detail_zip(detail_rows))["output"]
        out = his.call("3202", {"data": {**stmt, "file_qury_no": f["file_qury_no"], **over}})["output"]
        got = his.call(
            "9102", {"fsDownloadIn": {"file_qury_no": out["fileinfo"]["file_qury_no"], "fixmedins_code": "H2"}}
        )
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(got["output"]["data"]))) as z:
            lines = z.read(z.namelist()[0]).decode().splitlines()
        head = lines[0].split("\t")
        return out, {r["setl_id"]: r for r in (dict(zip(head, ln.split("\t"), strict=True)) for ln in lines[1:])}

    out, res = run(rows)
    assert out["stmtinfo"]["stmt_rslt"] == "0", out
    assert {k: r["stmt_rslt"] for k, r in res.items()} == {a["setl_id"]: "0", b["setl_id"]: "0"}
    wrong = [
        rows[0][:3] + (a["medfee_sumamt"] + Decimal("1.00"),) + rows[0][4:]
    ]  # one amount off, one settlement missing
    out, res = run(wrong + [("NO-SUCH", "X", "E1", "1.00", "0.00", "0.00", "0")])
    assert out["stmtinfo"]["stmt_rslt"] == "1" and out["stmtinfo"]["diff_cnt"] == 3
    assert "medfee_sumamt" in res[a["setl_id"]]["memo"] and res[b["setl_id"]]["stmt_rslt"] == "1"
    assert "平台无此结算" in res["NO-SUCH"]["memo"]
    out, res = run(rows, fixmedins_setl_cnt=2)
    assert out["stmtinfo"]["stmt_rslt"] == "1" and "fixmedins_setl_cnt" in out["stmtinfo"]["stmt_rslt_dscr"]
    # bad files and another institution's file are refused, naming the field
    f = _upload(his, "bad.txt", b"only\tthree\tcolumns\n")["output"]
    assert "列数" in refused(
        his.call("3202", {"data": {**stmt, "file_qury_no": f["file_qury_no"]}}, check=False), "data.file_qury_no"
    )
    f = _upload(other, "d.zip", _detail_zip(rows))["output"]
    refused(his.call("3202", {"data": {**stmt, "file_qury_no": f["file_qury_no"]}}, check=False), "data.file_qury_no")
    refused(
        his.call("3202", {"data": {**stmt, "file_qury_no": "X", "stmt_enddate": "2025-03-01"}}, check=False),
        "data.stmt_enddate",
    )


# --- 5204 / 5205 / 5206 / 5301 --------------------------------------------------------------------------------


def test_fee_chronic_accumulator_and_filing_queries(env, db_engine):
    iface, his, other, clock = env
    op = his.outpatient(
        "R1",
        "390",
        _cert("R1"),
        [Item("AMLO", "30", "2.00"), Item("SVC", "1", "10.00")],
        med_type="14",
        dise_codg="I10",
    )
    setl = op["2207"]["output"]["setlinfo"]
    fees = his.call("5204", {"data": {"psn_no": "R1", "mdtrt_id": setl["mdtrt_id"], "setl_id": setl["setl_id"]}})[
        "output"
    ]["feedetail"]
    assert [(f["hilist_code"], f["det_item_fee_sumamt"], f["setl_id"]) for f in fees] == [
        ("AMLO", Decimal("60.00"), setl["setl_id"]),
        ("SVC", Decimal("10.00"), setl["setl_id"]),
    ]
    assert fees[0]["cnt"] == Decimal("30.0000") and fees[0]["pric"] == Decimal("2.00")
    refused(other.call("5204", {"data": {"psn_no": "R1", "mdtrt_id": setl["mdtrt_id"]}}, check=False), "mdtrt_id")
    refused(his.call("5204", {"data": {"psn_no": "E1", "mdtrt_id": setl["mdtrt_id"]}}, check=False), "psn_no")

    drugs = his.call("5205", {"data": {"psn_no": "R1", "begntime": fmt_time(T0 - dt.timedelta(days=1))}})["output"][
        "feedetail"
    ]
    assert [d["hilist_code"] for d in drugs] == ["AMLO"]  # drugs of chronic-disease visits only
    assert (
        other.call("5205", {"data": {"psn_no": "R1", "begntime": fmt_time(T0 - dt.timedelta(days=1))}})["output"][
            "feedetail"
        ]
        == []
    )

    cum = his.call("5206", {"data": {"psn_no": "R1", "cum_ym": "202503"}})["output"]["cuminfo"]
    with db_engine.connect() as conn:
        acc = {
            (r.kind, r.period): r.value
            for r in conn.execute(
                select(records.Accumulator.__table__).where(
                    records.Accumulator.psn_no == "R1", records.Accumulator.policy_year == 2025
                )
            )
        }
    assert len(cum) == len(acc) > 0
    visits = [c for c in cum if c["cum_type_code"].startswith("C101")]
    assert visits and visits[0]["cum"] == Decimal(1)
    fund = [c for c in cum if c["cum_type_code"].startswith("C002")]
    assert fund and fund[0]["cum"] == Decimal(acc[("fund:" + fund[0]["cum_type_code"].split("-", 1)[1], "")]) / 100
    assert his.call("5206", {"data": {"psn_no": "R1", "cum_ym": "202403"}})["output"]["cuminfo"] == []
    refused(other.call("5206", {"data": {"psn_no": "R1"}}, check=False), "psn_no")  # no care relation with H3
    refused(his.call("5206", {"data": {"psn_no": "R1", "cum_ym": "2025-3"}}, check=False), "input.data.cum_ym")

    filing = his.call("5301", {"data": {"psn_no": "R1"}})["output"]["feedetail"]
    assert [(f["opsp_dise_code"], f["begndate"]) for f in filing] == [("I10", T0.date().isoformat())]
    refused(other.call("5301", {"data": {"psn_no": "R1"}}, check=False), "psn_no")


# --- 9101 / 9102 files ---------------------------------------------------------------------------------------------


def test_file_upload_and_download(env, db_engine):
    iface, his, other, clock = env
    blob = bytes(range(256)) * 4
    up = _upload(his, "x.bin", blob)["output"]
    assert up["filename"] == "x.bin" and up["dld_endtime"] == fmt_time(T0 + dt.timedelta(hours=72))
    arr = his.call("9101", {"fsUploadIn": {"in": list(b"abc"), "filename": "a.txt", "fixmedins_code": "H2"}})["output"]
    got = his.call(
        "9102", {"fsDownloadIn": {"file_qury_no": up["file_qury_no"], "filename": "x.bin", "fixmedins_code": "H2"}}
    )
    assert base64.b64decode(got["output"]["data"]) == blob and got["output"]["size"] == len(blob)
    got = his.call("9102", {"fsDownloadIn": {"file_qury_no": arr["file_qury_no"], "fixmedins_code": "H2"}})
    assert base64.b64decode(got["output"]["data"]) == b"abc"
    refused(
        his.call(
            "9102",
            {"fsDownloadIn": {"file_qury_no": up["file_qury_no"], "filename": "y", "fixmedins_code": "H2"}},
            check=False,
        ),
        "fsDownloadIn.filename",
    )
    refused(
        his.call("9102", {"fsDownloadIn": {"file_qury_no": up["file_qury_no"], "fixmedins_code": "H3"}}, check=False),
        "fsDownloadIn.fixmedins_code",
    )
    with db_engine.connect() as conn:
        n0 = conn.execute(select(func.count()).select_from(ApiFile)).scalar_one()
    from yibao.api.more_transactions import _cfg

    limit = _cfg().files.max_file_bytes
    refused(
        his.call(
            "9101",
            {
                "fsUploadIn": {
                    "in": base64.b64encode(b"x" * (limit + 1)).decode(),
                    "filename": "big",
                    "fixmedins_code": "H2",
                }
            },
            check=False,
        ),
        "fsUploadIn.in",
    )
    refused(
        his.call("9101", {"fsUploadIn": {"in": "not base64!", "filename": "f", "fixmedins_code": "H2"}}, check=False),
        "fsUploadIn.in",
    )
    refused(
        his.call("9101", {"fsUploadIn": {"in": [1, 256], "filename": "f", "fixmedins_code": "H2"}}, check=False),
        "fsUploadIn.in",
    )
    refused(
        his.call("9101", {"fsUploadIn": {"in": "", "filename": "f", "fixmedins_code": "H2"}}, check=False),
        "fsUploadIn.in",
    )
    refused(
        his.call(
            "9101", {"fsUploadIn": {"in": "YWJj", "filename": "../etc/passwd", "fixmedins_code": "H2"}}, check=False
        ),
        "fsUploadIn.filename",
    )
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ApiFile)).scalar_one() == n0
    clock.advance(hours=73)
    his.sign_in()
    refused(
        his.call("9102", {"fsDownloadIn": {"file_qury_no": up["file_qury_no"], "fixmedins_code": "H2"}}, check=False),
        "fsDownloadIn.file_qury_no",
    )  # past dld_endtime


# --- 4101 settlement list ------------------------------------------------------------------------------------------


class FakeGroup:
    def __init__(self, **kw):
        self.kw = kw
        self.mdc, self.adrg, self.drg, self.status, self.path = (
            "MDCG",
            "GB1",
            "GB19",
            "ok",
            ["MDCG: K22", "GB1", "GB19"],
        )


class FakeScheme:
    def __init__(self):
        self.calls = []

    def group(self, **kw):
        self.calls.append(kw)
        return FakeGroup(**kw)


def _settled_stay(his, psn="E1"):
    mdtrt_id, total = _admit(his, psn, begin=T0 - dt.timedelta(days=5))
    _discharge(his, mdtrt_id, psn)
    return _settle_in(his, mdtrt_id, total, psn)["output"]["setlinfo"]


def _setl_list(s, diseinfo=None, oprninfo=None, **info):
    return {
        "setlinfo": {
            "mdtrt_id": s["mdtrt_id"],
            "setl_id": s["setl_id"],
            "fixmedins_code": "H2",
            "psn_name": "张伟",
            "gend": "1",
            "brdy": "1980-04-01",
            "age": "",
            "nwb_age": "",
            "nwb_bir_wt": "",
            **info,
        },
        "payinfo": [{"fund_pay_type": "310100", "fund_payamt": s["fund_pay_sumamt"]}],
        "diseinfo": diseinfo
        if diseinfo is not None
        else [
            {"diag_type": "1", "diag_code": "K22.301", "maindiag_flag": "1"},
            {"diag_type": "1", "diag_code": "I10.x05", "maindiag_flag": "0"},
        ],
        "oprninfo": oprninfo if oprninfo is not None else [{"oprn_oprt_type": "1", "oprn_oprt_code": "42.3300x006"}],
    }


def test_settlement_list_is_checked_stored_and_grouped(env, db_engine, monkeypatch):
    import yibao.api.more_transactions as MT
    from yibao.codes.national import check_diagnosis, check_procedure

    iface, his, other, clock = env
    fake = FakeScheme()
    monkeypatch.setattr(MT, "_grouper", lambda: fake)
    s = _settled_stay(his)
    out = his.call("4101", _setl_list(s))["output"]
    assert out["drginfo"] == {
        "scheme": "chs-drg-1.1",
        "mdc": "MDCG",
        "adrg": "GB1",
        "drg": "GB19",
        "status": "ok",
        "path": ["MDCG: K22", "GB1", "GB19"],
    }
    call = fake.calls[-1]
    assert call["main_diag"] == check_diagnosis("K22.301", "x") and call["other_diags"] == [
        check_diagnosis("I10.x05", "x")
    ]
    assert call["oprns"] == [check_procedure("42.3300x006", "x")] and call["gend"] == "1" and call["age"] == 44
    assert call["ipt_days"] == 5 and call["nwb_age"] is None and call["explain"] is True
    # a second upload replaces the list (same id, version 2)
    again = his.call("4101", _setl_list(s, act_ipt_days="4"))["output"]
    assert again["setl_list_id"] == out["setl_list_id"] and again["version"] == 2 and fake.calls[-1]["ipt_days"] == 4
    with db_engine.connect() as conn:
        rows = conn.execute(select(SetlList.setl_list_id, SetlList.drg, SetlList.version)).all()
    assert rows == [(out["setl_list_id"], "GB19", 2)]

    from yibao.api import schemas as S

    if "[A-Z]" in str(S.Envelope.model_fields["infno"].metadata):  # the envelope accepts A variants (issue 16.1)
        a = his.call("4101A", _setl_list(s))["output"]  # the provincial A variant: the same list, the same handler
        assert a["setl_list_id"] == out["setl_list_id"] and a["version"] == 3
    n = len(fake.calls)
    refused(
        his.call("4101", _setl_list(s, diseinfo=[{"diag_code": "J18.9XX", "maindiag_flag": "1"}]), check=False),
        "diseinfo.0.diag_code",
    )
    refused(
        his.call("4101", _setl_list(s, oprninfo=[{"oprn_oprt_code": "99.9999x999"}]), check=False),
        "oprninfo.0.oprn_oprt_code",
    )
    refused(his.call("4101", _setl_list(s, gend="2"), check=False), "setlinfo.gend")
    refused(
        his.call(
            "4101", {**_setl_list(s), "payinfo": [{"fund_pay_type": "310100", "fund_payamt": "1.00"}]}, check=False
        ),
        "payinfo",
    )
    refused(his.call("4101", _setl_list(s, diseinfo=[]), check=False), "input.diseinfo")
    refused(other.call("4101", _setl_list(s, fixmedins_code="H3"), check=False), "setlinfo.setl_id")
    refused(his.call("4101", _setl_list({**s, "setl_id": "NOPE"}), check=False), "setlinfo.setl_id")
    assert len(fake.calls) == n  # nothing was grouped for a refused list
    his.call("2305", {"data": {"setl_id": s["setl_id"], "mdtrt_id": s["mdtrt_id"], "psn_no": "E1"}})
    refused(his.call("4101", _setl_list(s), check=False), "setlinfo.setl_id")  # cancelled


def _real_scheme_or_skip():
    try:
        import yibao.api.more_transactions as MT

        sch = MT._grouper()
        g = sch.group(
            case_id="probe",
            gend="1",
            age=45,
            nwb_age=None,
            nwb_bir_wt=None,
            ipt_days=5,
            main_diag="K22.301",
            other_diags=["I10.x05"],
            oprns=["42.3300x006"],
            explain=False,
        )
        assert hasattr(g, "drg") and hasattr(g, "status")
    except Exception as exc:  # noqa: BLE001 - the CHS-DRG 1.1 grouper is being written alongside (its contract in the brief)
        pytest.skip(f"CHS-DRG 1.1 grouper not available yet: {type(exc).__name__}: {exc}")
    return sch


def test_settlement_list_uses_the_chs_drg_grouper(env):
    sch = _real_scheme_or_skip()
    iface, his, other, clock = env
    s = _settled_stay(his)
    out = his.call("4101", _setl_list(s))["output"]["drginfo"]
    want = sch.group(
        case_id=s["setl_id"],
        gend="1",
        age=44,
        nwb_age=None,
        nwb_bir_wt=None,
        ipt_days=5,
        main_diag="K22.301",
        other_diags=["I10.x05"],
        oprns=["42.3300x006"],
        explain=True,
    )
    assert (out["mdc"], out["adrg"], out["drg"], out["status"]) == (
        want.mdc or "",
        want.adrg or "",
        want.drg or "",
        str(want.status),
    )
    assert out["path"] == list(want.path or [])
    assert out["status"] == "ok" and out["mdc"] == "G" and out["drg"].startswith("G")  # K22.301 食管穿孔: MDCG
    assert out["severity"] == str(want.severity)
    # the grouper's own refusals name the list's field (an age in days is for babies)
    refused(his.call("4101", _setl_list(s, nwb_age="20"), check=False), "setlinfo.nwb_age")


def test_repeated_msgids_answer_the_stored_reply_and_rest_serves_the_same(env, db_engine):
    iface, his, other, clock = env
    up = {"fsUploadIn": {"in": base64.b64encode(b"hello").decode(), "filename": "h.txt", "fixmedins_code": "H2"}}
    a = his.call("9101", up, msgid="UP-1")
    clock.advance(seconds=3)
    b = his.call("9101", up, msgid="UP-1")
    assert a == b  # the stored reply, byte for byte: no second file
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ApiFile)).scalar_one() == 1
    r = refused(
        his.call(
            "9101", {**up, "fsUploadIn": {**up["fsUploadIn"], "filename": "other.txt"}}, msgid="UP-1", check=False
        ),
        "msgid",
    )
    assert "UP-1" in r
    # REST: the same transactions under /api/v1, the same refusals
    c = iface.test_client
    h = {"X-Fixmedins-Code": "H2", "X-Sign-No": his.sign_no}
    got = c.post("/api/v1/dictionaries/query", json={"data": {"type": "gend"}}, headers=h)
    assert got.status_code == 200 and {x["value"] for x in got.json()["list"]} == {"1", "2", "9"}
    bad = c.post("/api/v1/dictionaries/query", json={"data": {"type": "nope"}}, headers=h)
    assert bad.status_code == 400 and bad.json()["field"] == "data.type"
