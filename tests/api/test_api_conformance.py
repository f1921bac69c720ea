"""Conformance to the national interface (定点医药机构接口规范) as real HIS clients speak it (issue 16, part 1).

Each test sends what a client of the published spec, or of a widespread provincial edition, sends — empty
strings for absent fields, ``data`` for every main node, the ``A`` transaction codes, 医保版 diagnosis codes,
character line numbers, four- and six-decimal quantities and prices — and checks the platform settles it
unchanged, replies with the fields clients read, and refuses what no client should send, national-style.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.api_support import BOOK, CAT, CREDENTIALS, PEOPLE, REGION, SECURITY, SH, Clock, business_snapshot, seed
from yibao.api.envelope import dumps_exact, field_of, loads_exact
from yibao.api.hisclient import HisClient, http_transport
from yibao.api.interface import Interface
from yibao.api.models import MessageLog
from yibao.api.params import ConfigError, InstitutionParams, default_config, load_config
from yibao.core import db as ydb
from yibao.server import create_app
from yibao.settlement import records
from yibao.settlement.visits import FeeUpload

T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SH)
PATH = "/fsi/api/rsfComIfsService/callService"
MSG_TIME = re.compile(r"^[0-9]{17}$")  # yyyyMMddHHmmssSSS


def _cfg(**interface):
    cfg = default_config()
    return cfg.model_copy(update={"interface": cfg.interface.model_copy(update=interface)})


def _world(db_engine, cfg=None):
    clock = Clock(T0)
    iface = Interface(db_engine, BOOK, CAT, clock=clock, security=SECURITY, config=cfg)
    client = TestClient(create_app(iface))
    his = HisClient(http_transport(client), "H2", fixmedins_name="机构H2", clock=clock, credential=CREDENTIALS["H2"])
    return SimpleNamespace(iface=iface, client=client, his=his, clock=clock, engine=db_engine)


@pytest.fixture
def w(db_engine):
    seed(db_engine)
    w = _world(db_engine)
    w.his.sign_in()
    return w


class DataShapeHis(HisClient):
    """A client in the shape of widespread HIS code: every optional envelope field "", infver "", ``data`` nodes."""

    def envelope(self, infno, payload, msgid=None):
        env = super().envelope(infno, payload, msgid)
        env.update(
            infver="", recer_sys_code="", opter_name="", fixmedins_name="", mdtrtarea_admvs="", insuplc_admdvs=""
        )
        return env

    def sign_in(self):
        out = self.call("9001", {"data": {"opter_no": self.opter, "mac": "", "ip": "", "credential": self.credential}})
        self.sign_no = out["output"]["signinoutb"]["sign_no"]
        return self.sign_no


def _refused(reply, fld):
    assert reply["infcode"] == -1, reply
    got = field_of(reply["err_msg"])
    assert got is not None and (got == fld or got.endswith("." + fld)), (fld, reply["err_msg"])
    assert reply["output"] == {}


def _log_count(engine):
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(MessageLog)).scalar_one()


def _register(his, psn="E1", **extra):
    data = {
        "psn_no": psn,
        "insutype": PEOPLE[psn][0],
        "begntime": "2025-03-10 08:30:00",
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": PEOPLE[psn][8],
        "ipt_otp_no": his.msgid(),
        **extra,
    }
    return his.call("2201", {"data": data})["output"]["data"]["mdtrt_id"]


def _row(mdtrt_id, psn, sn, code, cnt, pric, amt, **kw):
    return {
        "feedetl_sn": sn,
        "mdtrt_id": mdtrt_id,
        "psn_no": psn,
        "chrg_bchno": "",
        "rxno": "",
        "rx_circ_flag": "",
        "fee_ocur_time": "2025-03-10 08:40:00",
        "med_list_codg": code,
        "medins_list_codg": "",
        "det_item_fee_sumamt": amt,
        "cnt": cnt,
        "pric": pric,
        "sin_dos_dscr": "",
        "used_frqu_dscr": "",
        "prd_days": "",
        "medc_way_dscr": "",
        "bilg_dept_codg": "",
        "bilg_dept_name": "",
        "bilg_dr_codg": "",
        "bilg_dr_name": "",
        "hosp_appr_flag": "",
        **kw,
    }


def _settle_data(mdtrt_id, psn, total, **kw):
    return {
        "psn_no": psn,
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": PEOPLE[psn][8],
        "med_type": "11",
        "medfee_sumamt": total,
        "psn_setlway": "01",
        "mdtrt_id": mdtrt_id,
        "chrg_bchno": "",
        "insutype": PEOPLE[psn][0],
        "acct_used_flag": "1",
        "invono": "",
        "fulamt_ownpay_amt": "",
        "overlmt_selfpay": "",
        "preselfpay_amt": "",
        "inscp_scp_amt": "",
        "mid_setl_flag": "",
        **kw,
    }


# --- empty character fields are "" ------------------------------------------------------------------------


def test_empty_strings_are_absent_in_optional_fields_and_refused_in_required_ones(w):
    his = w.his
    # 1101 with "begntime": "" (and every other optional field "")
    r = his.call(
        "1101",
        {
            "data": {
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": PEOPLE["E1"][8],
                "card_sn": "",
                "begntime": "",
                "psn_cert_type": "",
                "certno": "",
                "psn_name": "",
            }
        },
    )
    assert r["output"]["baseinfo"]["psn_no"] == "E1"
    # null is absent too
    r = his.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": PEOPLE["E1"][8], "begntime": None}})
    assert r["output"]["baseinfo"]["psn_no"] == "E1"
    # 2204 with "prd_days": "" and "rx_circ_flag": ""
    op = _register(his)
    res = his.call("2204", {"feedetail": [_row(op, "E1", "1", "A-DRUG", "2", "10.00", "20.00")]})["output"]["result"]
    assert res[0]["feedetl_sn"] == "1"
    # a required field that is empty is refused, naming it
    _refused(his.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": ""}}, check=False), "mdtrt_cert_no")
    _refused(his.call("2204", {"feedetail": [_row(op, "", "2", "A-DRUG", "1", "1", "1.00")]}, check=False), "psn_no")


def test_die_date_empty_on_discharge(w):
    his = w.his
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
                "ipt_no": "IP-1",
                "dscg_maindiag_code": "J18.900",
                "coner_name": "",
                "tel": "",
            }
        },
    )
    ip = adm["output"]["result"]["mdtrt_id"]
    his.call(
        "2402",
        {
            "dscginfo": {
                "mdtrt_id": ip,
                "psn_no": "E2",
                "insutype": "310",
                "endtime": "2025-03-10 08:00:00",
                "dise_codg": "J18.900",
                "dise_name": "",
                "dscg_way": "1",
                "die_date": "",
            }
        },
    )
    with ydb.session_scope(w.engine) as s:
        enc = s.get(records.Encounter, ip)
        assert enc.endtime is not None and enc.dise_codg == "J18.900"


# --- national 医保版 diagnoses ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["J18.900", "J06.900", "R53.x00x005", "I10.x05"])
def test_national_diagnosis_codes_are_accepted(w, code):
    his = w.his
    op = _register(his)
    his.call(
        "2203",
        {
            "mdtrtinfo": {"mdtrt_id": op, "psn_no": "E1", "med_type": "11", "dise_codg": code},
            "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": code, "maindiag_flag": "1"}],
        },
    )
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
                "ipt_no": his.msgid(),
                "dscg_maindiag_code": code,
            },
            "diseinfo": [{"diag_code": code, "maindiag_flag": "1"}],
        },
    )
    with ydb.session_scope(w.engine) as s:
        assert s.get(records.Encounter, op).dise_codg == code
        assert s.get(records.Encounter, adm["output"]["result"]["mdtrt_id"]).dise_codg == code


def test_diagnoses_are_written_as_the_dictionary_writes_them_and_unknown_ones_refused(w):
    his = w.his
    op = _register(his)
    his.call("2203", {"mdtrtinfo": {"mdtrt_id": op, "psn_no": "E1", "med_type": "11", "dise_codg": " i10.X05 "}})
    with ydb.session_scope(w.engine) as s:
        assert s.get(records.Encounter, op).dise_codg == "I10.x05"
    r = his.call(
        "2203",
        {"mdtrtinfo": {"mdtrt_id": op, "psn_no": "E1", "med_type": "11"}, "diseinfo": [{"diag_code": "J18.999x999"}]},
        check=False,
    )
    _refused(r, "diseinfo.0.diag_code")
    assert "J18.999x999" in r["err_msg"]


def test_accepted_coding_systems_are_a_setting(db_engine):
    seed(db_engine)
    w = _world(db_engine, _cfg(diagnosis_systems=("icd10-yb-2.0",)))
    w.his.sign_in()
    op = _register(w.his)
    _refused(
        w.his.call(
            "2203", {"mdtrtinfo": {"mdtrt_id": op, "psn_no": "E1", "med_type": "11", "dise_codg": "J06.9"}}, check=False
        ),
        "dise_codg",
    )  # WHO only: not in the national edition
    w.his.call("2203", {"mdtrtinfo": {"mdtrt_id": op, "psn_no": "E1", "med_type": "11", "dise_codg": "J06.900"}})
    assert default_config().interface.diagnosis_systems == ("icd10-yb-2.0", "who-icd10")


def test_interface_settings_are_validated_on_load(tmp_path):
    from yibao.api.params import DEFAULT_PATH

    text = DEFAULT_PATH.read_text(encoding="utf-8")
    cases = {
        'diagnosis_systems: ["icd10-yb-2.0", "who-icd10"]': ('diagnosis_systems: ["icd11"]', "diagnosis_systems"),
        "infver_pattern: '": ("infver_pattern: '([", "infver_pattern"),
        '"2203A": "2203"': ('"2203a": "2203"', "infno_aliases"),
        '"9001": {signIn: [data]}': ('"9001": {signIn: [signIn]}', "input_nodes"),
        "max_body_bytes: 4194304": ("max_body_bytes: 0", "max_body_bytes"),
    }
    for old, (new, fld) in cases.items():
        assert old in text, old
        p = tmp_path / "interface.yaml"
        p.write_text(text.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(ConfigError) as e:
            load_config(p)
        assert fld in str(e.value), (fld, str(e.value))


# --- feedetl_sn character(30), cnt numeric(16,4), pric numeric(16,6) -----------------------------------------


def test_character_line_numbers_and_exact_quantities_and_prices(w):
    his = w.his
    op = _register(his)
    rows = [
        _row(op, "E1", "yp570", "CAP-DEV", "1.5000", "150.123456", "225.19"),  # 225.185184 → 225.19, cap 100.00/unit
        _row(op, "E1", "202503100000001", "A-DRUG", "0.3333", "3.333333", "1.11"),  # 1.11099989 → 1.11
        _row(op, "E1", "7", "B-DRUG", "2", "10", "20.00"),
    ]
    res = his.call("2204", {"feedetail": rows})["output"]["result"]
    assert [r["feedetl_sn"] for r in res] == ["yp570", "202503100000001", "7"]
    assert res[0]["cnt"] == Decimal("1.5000") and res[0]["pric"] == Decimal("150.123456")
    assert res[0]["overlmt_amt"] == Decimal("75.19")  # 225.19 − 1.5 × 100.00: the cap on the exact quantity
    # the same line again is a retransmission; other content under its number is refused
    his.call("2204", {"feedetail": rows[:1]})
    _refused(his.call("2204", {"feedetail": [dict(rows[0], pric="150.123457")]}, check=False), "feedetl_sn")
    # what the HIS sent is kept exactly; the platform's numbers are its own where the HIS's are not plain numbers
    with ydb.session_scope(w.engine) as s:
        ups = {
            u.his_feedetl_sn: (u.feedetl_sn, u.cnt_e4, u.pric_e6)
            for u in s.scalars(select(FeeUpload).where(FeeUpload.mdtrt_id == op))
        }
    assert ups["yp570"][1:] == (15000, 150123456) and ups["202503100000001"][1:] == (3333, 3333333)
    assert ups["7"][0] == 7 and len({v[0] for v in ups.values()}) == 3
    # a fifth decimal on cnt, a seventh on pric, a total that is not cnt × pric rounded half up: refused
    _refused(
        his.call("2204", {"feedetail": [_row(op, "E1", "x1", "A-DRUG", "0.00001", "1", "0.00")]}, check=False), "cnt"
    )
    _refused(
        his.call("2204", {"feedetail": [_row(op, "E1", "x1", "A-DRUG", "1", "0.0000001", "0.00")]}, check=False), "pric"
    )
    _refused(
        his.call("2204", {"feedetail": [_row(op, "E1", "x1", "A-DRUG", "0.3333", "3.333333", "1.12")]}, check=False),
        "det_item_fee_sumamt",
    )
    # settlement: money to the fen, the total the sum of the lines
    total = Decimal("246.30")
    pre = his.call("2206", {"data": _settle_data(op, "E1", total)})["output"]["setlinfo"]
    assert pre["medfee_sumamt"] == total and pre["overlmt_selfpay"] == Decimal("75.19")
    setl = his.call("2207", {"data": _settle_data(op, "E1", total)})["output"]["setlinfo"]
    assert all(setl[k] == pre[k] for k in ("hifp_pay", "acct_pay", "psn_cash_pay", "fund_pay_sumamt"))
    assert setl["fund_pay_sumamt"] + setl["psn_part_amt"] == total
    for k, v in setl.items():
        if isinstance(v, Decimal) and k != "pool_prop_selfpay" and k != "age":
            assert v == v.quantize(Decimal("0.01")), k
    # withdrawing by the HIS's numbers (2302 inpatient); a settled line cannot be withdrawn
    _refused(
        his.call("2205", {"data": {"mdtrt_id": op, "chrg_bchno": "0000", "psn_no": "E1"}}, check=False), "feedetl_sn"
    )


def test_inpatient_lines_are_withdrawn_by_the_his_numbers(w):
    his = w.his
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
                "ipt_no": "IP-W",
                "dscg_maindiag_code": "J18.900",
            }
        },
    )
    ip = adm["output"]["result"]["mdtrt_id"]
    his.call(
        "2301",
        {
            "feedetail": [
                _row(ip, "E2", "yp570", "BED", "2", "50", "100.00"),
                _row(ip, "E2", "yp571", "A-DRUG", "1", "9", "9.00"),
            ]
        },
    )
    _refused(
        his.call("2302", {"data": [{"feedetl_sn": "yp999", "mdtrt_id": ip, "psn_no": "E2"}]}, check=False), "feedetl_sn"
    )
    out = his.call("2302", {"data": [{"feedetl_sn": "yp571", "mdtrt_id": ip, "psn_no": "E2"}]})
    assert out["output"]["result"]["feedetl_sn"] == ["yp571"]
    # the number is free again: a corrected line may be uploaded under it
    his.call("2301", {"feedetail": [_row(ip, "E2", "yp571", "A-DRUG", "2", "9", "18.00")]})


# --- infver, A variants, URL forms, node names ------------------------------------------------------------------


def test_any_well_formed_infver_is_accepted(w):
    his = w.his
    q = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": PEOPLE["E1"][8]}}
    for v in ("V1.0", "v1.0", "1.0", "1.0.0", "V2.0", "V1.0.2.1", ""):
        env = dict(his.envelope("1101", q), infver=v)
        assert his.post(env)["infcode"] == 0, v
    for v in ("abc", "V1.0;", "1..0", "V 1.0"):
        _refused(his.post(dict(his.envelope("1101", q), infver=v)), "infver")


def test_infver_policy_is_data(db_engine):
    seed(db_engine)
    w = _world(db_engine, _cfg(infver_pattern=r"^V1\.0$", accept_empty_infver=False))
    w.his.sign_in()
    q = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": PEOPLE["E1"][8]}}
    assert w.his.call("1101", q)["infcode"] == 0
    _refused(w.his.post(dict(w.his.envelope("1101", q), infver="1.0.0")), "infver")
    _refused(w.his.post(dict(w.his.envelope("1101", q), infver="")), "infver")


def test_url_forms_clients_use(w):
    his = w.his
    q = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": PEOPLE["E1"][8]}}
    for path in (PATH, f"{PATH}/1101", "/callService", "/callService/1101"):
        r = w.client.post(path, content=dumps_exact(his.envelope("1101", q)).encode())
        assert r.status_code == 200 and r.json()["infcode"] == 0, path
    # the URL's infno stands for a missing one and must agree with a present one
    env = his.envelope("1101", q)
    env.pop("infno")
    assert w.client.post(f"{PATH}/1101", content=dumps_exact(env).encode()).json()["infcode"] == 0
    _refused(w.client.post(f"{PATH}/2207", content=dumps_exact(his.envelope("1101", q)).encode()).json(), "infno")
    # the reply envelope's times are yyyyMMddHHmmssSSS
    reply = w.client.post(PATH, content=dumps_exact(his.envelope("1101", q)).encode()).json()
    assert MSG_TIME.match(reply["refmsg_time"]) and MSG_TIME.match(reply["respond_time"])
    assert reply["respond_time"].startswith("20250310090000")


def test_a_node_under_two_names_is_refused_and_node_names_are_per_institution(db_engine):
    seed(db_engine)
    cfg = default_config()
    # H3's edition (say) does not call 2203's node "data": for it, "data" is not read as mdtrtinfo
    cfg = cfg.model_copy(
        update={"institutions": {"H3": InstitutionParams(input_nodes={"2203": {"mdtrtinfo": ("visit",)}})}}
    )
    w = _world(db_engine, cfg)
    w.his.sign_in()
    op = _register(w.his)
    node = {"mdtrt_id": op, "psn_no": "E1", "med_type": "11", "dise_codg": "J06.900"}
    _refused(w.his.call("2203", {"mdtrtinfo": node, "data": node}, check=False), "data")
    w.his.call("2203", {"data": node})
    h3 = HisClient(http_transport(w.client), "H3", clock=w.clock, credential=CREDENTIALS["H3"])
    h3.sign_in()
    op3 = _register(h3)
    node3 = dict(node, mdtrt_id=op3)
    _refused(h3.call("2203", {"data": node3}, check=False), "mdtrtinfo")  # not its name for the node: missing
    h3.call("2203", {"visit": node3})


# --- reply fields clients read ----------------------------------------------------------------------------


def test_1101_reports_insurance_dates_and_full_identity_rows(w):
    r = w.his.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": PEOPLE["R1"][8]}})["output"]
    insu = r["insuinfo"][0]
    assert (
        insu["psn_insu_date"] == "2015-01-01" and insu["paus_insu_date"] is None
    )  # insured: no pause (clients test for null)
    idet = r["idetinfo"][0]
    assert set(idet) >= {"psn_idet_type", "psn_type_lv", "memo", "begntime", "endtime"}
    assert idet["psn_idet_type"] == default_config().psn_idet_types["dibao"]


def test_fee_results_setldetail_cancel_and_query_carry_the_fields_clients_read(w):
    his = w.his
    op = _register(his)
    res = his.call(
        "2204",
        {
            "feedetail": [
                _row(op, "E1", "1", "A-DRUG", "2", "150", "300.00"),
                _row(op, "E1", "2", "B-DRUG", "1", "200", "200.00"),
            ]
        },
    )["output"]["result"]
    for r in res:
        assert set(r) >= {"bas_medn_flag", "hi_nego_drug_flag", "chld_medc_flag", "list_sp_item_flag", "drt_reim_flag"}
    out = his.call("2207", {"data": _settle_data(op, "E1", "500.00")})["output"]
    setl = out["setlinfo"]
    for d in out["setldetail"]:
        assert "crt_payb_lmt_amt" in d
    # the pooled fund's headroom: the annual cap (none used before this first settlement of the year)
    snap = BOOK.policy(REGION).snapshot(T0.date())
    scheme = snap.scheme_for("310")
    with ydb.session_scope(w.engine) as s:
        cat = scheme.categories[s.get(records.Settlement, setl["setl_id"]).benefit_category]
    code = default_config().fund_type("hifp_pay", "310")[0]
    hifp = [d for d in out["setldetail"] if d["fund_pay_type"] == code]
    assert setl["hifp_pay"] == 0 or len(hifp) == 1
    if hifp and cat.cap_pool is not None:
        assert hifp[0]["crt_payb_lmt_amt"] == Decimal(scheme.caps[cat.cap_pool]) / 100
    # 2208: pdn_cash_pay (个人现金支出) is the refunded cash
    c = his.call("2208", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": op, "psn_no": "E1"}})["output"]["setlinfo"]
    assert c["pdn_cash_pay"] == -setl["psn_cash_pay"] == c["psn_cash_pay"]
    # 5203: the nine fields
    q = his.call("5203", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": op, "psn_no": "E1"}})["output"]["setlinfo"]
    assert q["fixmedins_code"] == "H2" and q["fixmedins_name"] == "机构H2" and q["hosp_lv"] == "2"
    assert q["begndate"] == q["enddate"] == "2025-03-10" and q["year"] == "2025"
    assert q["psn_pay"] == setl["psn_part_amt"] and q["cash_payamt"] == setl["psn_cash_pay"]
    assert q["pay_loc"] == default_config().pay_loc and q["refd_setl_flag"] == "1"


def test_pooled_fund_headroom_shrinks_with_the_years_payments(w):
    """crt_payb_lmt_amt on a second inpatient stay = the cap less what the first one drew from the pooled fund."""
    his = w.his
    snap = BOOK.policy(REGION).snapshot(T0.date())
    scheme = snap.scheme_for("310")
    paid, rooms = [], []
    for n in range(2):
        w.clock.advance(hours=1)
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
                    "ipt_no": f"IP-H{n}",
                    "dscg_maindiag_code": "J18.900",
                }
            },
        )
        ip = adm["output"]["result"]["mdtrt_id"]
        his.call(
            "2301",
            {"feedetail": [_row(ip, "E2", "1", "A-DRUG", "1", "8000", "8000.00", fee_ocur_time="2025-03-09 10:00:00")]},
        )
        his.call(
            "2402", {"dscginfo": {"mdtrt_id": ip, "psn_no": "E2", "insutype": "310", "endtime": "2025-03-10 08:00:00"}}
        )
        out = his.call("2304", {"data": _settle_data(ip, "E2", "8000.00", med_type="")})["output"]
        with ydb.session_scope(w.engine) as s:
            cat = scheme.categories[s.get(records.Settlement, out["setlinfo"]["setl_id"]).benefit_category]
        if cat.cap_pool is None:
            pytest.skip("the example policy's inpatient category has no annual cap")
        code = default_config().fund_type("hifp_pay", "310")[0]
        hifp = next(d for d in out["setldetail"] if d["fund_pay_type"] == code)
        paid.append(out["setlinfo"]["hifp_pay"])
        rooms.append(hifp["crt_payb_lmt_amt"])
    cap = Decimal(scheme.caps[cat.cap_pool]) / 100
    assert rooms[0] == cap and rooms[1] == cap - paid[0]


# --- robustness: every bad input gets a national refusal, audited, bounded --------------------------------


def test_deep_json_is_refused_national_style_and_audited(w):
    n0 = _log_count(w.engine)
    deep = '{"a":' * 600 + "1" + "}" * 600
    body = dumps_exact(w.his.envelope("1101", {"data": {}}))[:-1] + ', "x": ' + deep + "}"
    r = w.client.post(PATH, content=body.encode())
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    reply = r.json()
    assert reply["infcode"] == -1 and "nested deeper" in reply["err_msg"] and len(r.content) < 2000
    assert _log_count(w.engine) == n0 + 1
    # deeper than the parser itself goes: refused too
    r = w.client.post(PATH, content=b"[" * 100_000 + b"]" * 100_000)
    assert r.json()["infcode"] == -1 and field_of(r.json()["err_msg"]) == "body"
    # REST: the same
    h = {"X-Fixmedins-Code": "H2", "X-Sign-No": w.his.sign_no, "Content-Type": "application/json"}
    r = w.client.post("/api/v1/persons/query", content=('{"data":' + deep + "}").encode(), headers=h)
    assert r.status_code == 400 and r.json()["infcode"] == -1 and "nested deeper" in r.json()["err_msg"]


def test_control_characters_and_lone_surrogates_are_refused_naming_the_field(w):
    his = w.his
    snap = business_snapshot(w.engine)
    n0 = _log_count(w.engine)
    op_env = his.envelope(
        "2201",
        {
            "data": {
                "psn_no": "E1",
                "insutype": "310",
                "begntime": "2025-03-10 08:30:00",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": PEOPLE["E1"][8],
                "ipt_otp_no": "OP\u0000X",
                "dr_name": "ok",
            }
        },
    )
    _refused(w.client.post(PATH, content=json.dumps(op_env).encode()).json(), "input.data.ipt_otp_no")
    body = json.dumps(op_env).replace("OP\\u0000X", "OP\\ud800X")
    _refused(w.client.post(PATH, content=body.encode()).json(), "input.data.ipt_otp_no")
    # REST: a lone surrogate is a 400 national refusal, not a 500
    h = {"X-Fixmedins-Code": "H2", "X-Sign-No": his.sign_no, "Content-Type": "application/json"}
    r = w.client.post(
        "/api/v1/outpatient/registrations",
        content=json.dumps(op_env["input"]).replace("OP\\u0000X", "OP\\ud800X").encode(),
        headers=h,
    )
    assert r.status_code == 400 and r.json()["field"] == "data.ipt_otp_no"
    assert business_snapshot(w.engine) == snap and _log_count(w.engine) == n0 + 3


def test_body_size_is_bounded(db_engine):
    seed(db_engine)
    w = _world(db_engine, _cfg(max_body_bytes=4096))
    w.his.sign_in()
    n0 = _log_count(db_engine)
    env = w.his.envelope(
        "1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": PEOPLE["E1"][8], "memo": "x" * 5000}}
    )
    r = w.client.post(PATH, content=dumps_exact(env).encode())
    assert r.status_code == 200 and r.json()["infcode"] == -1 and field_of(r.json()["err_msg"]) == "body"
    assert "4096" in r.json()["err_msg"] and len(r.content) < 1000
    h = {"X-Fixmedins-Code": "H2", "X-Sign-No": w.his.sign_no, "Content-Type": "application/json"}
    r = w.client.post("/api/v1/persons/query", content=dumps_exact(env["input"]).encode(), headers=h)
    assert r.status_code == 413 and r.json()["field"] == "body"
    assert _log_count(db_engine) == n0 + 2
    # under the limit: served
    env["input"]["data"]["memo"] = "x"
    assert w.client.post(PATH, content=dumps_exact(env).encode()).json()["infcode"] == 0


def test_rest_schema_refusals_do_not_echo_the_value_and_are_audited(w):
    n0 = _log_count(w.engine)
    h = {"X-Fixmedins-Code": "H2", "X-Sign-No": w.his.sign_no}
    secret = "S" * 50_000
    r = w.client.post(
        "/api/v1/persons/query", json={"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": secret}}, headers=h
    )
    assert r.status_code == 422 and r.json()["infcode"] == -1 and r.json()["field"] == "data.mdtrt_cert_no"
    assert secret not in r.text and len(r.content) < 1000
    assert _log_count(w.engine) == n0 + 1


# --- interface-side hardening (part 3) ----------------------------------------------------------------------


def test_an_empty_certificate_number_does_not_skip_the_identity_check(w):
    his = w.his
    op = _register(his)
    his.call("2204", {"feedetail": [_row(op, "E1", "1", "A-DRUG", "1", "20", "20.00")]})
    snap = business_snapshot(w.engine)
    for infno in ("2206", "2207"):
        for empty in ("", None):
            data = _settle_data(op, "E1", "20.00", mdtrt_cert_no=empty)
            _refused(his.call(infno, {"data": data}, check=False), "mdtrt_cert_no")
    _refused(
        his.call(
            "2201",
            {
                "data": {
                    "psn_no": "E1",
                    "insutype": "310",
                    "begntime": "2025-03-10 08:30:00",
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": "",
                    "ipt_otp_no": "OP-E",
                }
            },
            check=False,
        ),
        "mdtrt_cert_no",
    )
    _refused(
        his.call(
            "2401",
            {
                "mdtrtinfo": {
                    "psn_no": "E2",
                    "insutype": "310",
                    "begntime": "2025-03-08 10:00:00",
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": "",
                    "med_type": "21",
                    "ipt_no": "IP-E",
                }
            },
            check=False,
        ),
        "mdtrt_cert_no",
    )
    assert business_snapshot(w.engine) == snap


def test_inf_time_must_be_fresh(w):
    his = w.his
    q = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": PEOPLE["E1"][8]}}
    window = default_config().interface.inf_time_window_minutes
    ok = his.envelope("1101", q)
    for minutes in (-window + 1, window - 1):
        assert (
            his.post(
                dict(ok, msgid=his.msgid(), inf_time=(T0 + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S"))
            )["infcode"]
            == 0
        )
    for minutes in (-window - 1, window + 1, -60 * 24 * 365):
        env = dict(ok, msgid=his.msgid(), inf_time=(T0 + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S"))
        _refused(his.post(env), "inf_time")
    # the platform's clock moves on: a message stamped long ago is refused even if it was fine then
    env = his.envelope("1101", q)
    w.clock.advance(minutes=window + 5)
    _refused(his.post(env), "inf_time")


def test_absurd_values_are_refused(w):
    his = w.his
    op = _register(his)
    snap = business_snapshot(w.engine)
    ic = default_config().interface
    big = Decimal(ic.max_line_amount) + 1
    cases = [
        (_row(op, "E1", "1", "A-DRUG", "1", str(big), str(big) + ".00"), "pric"),
        (_row(op, "E1", "1", "A-DRUG", str(ic.max_cnt + 1), "0.01", f"{Decimal(ic.max_cnt + 1) / 100:.2f}"), "cnt"),
        (_row(op, "E1", "1", "A-DRUG", "1", "10", "10.00", fee_ocur_time="1900-01-01 00:00:00"), "fee_ocur_time"),
        (_row(op, "E1", "1", "A-DRUG", "1", "10", "10.00", fee_ocur_time="2025-03-11 09:00:00"), "fee_ocur_time"),
        (_row(op, "E1", "1", "A-DRUG", "1", "10", "10.00", prd_days="40000"), "prd_days"),
        (_row(op, "E1", "1", "A-DRUG", "1", "10", "10.00", prd_days="-1"), "prd_days"),
    ]
    for row, fld in cases:
        _refused(his.call("2204", {"feedetail": [row]}, check=False), fld)
    _refused(
        his.call("2207", {"data": _settle_data(op, "E1", str(ic.max_medfee_sumamt + 1))}, check=False), "medfee_sumamt"
    )
    assert business_snapshot(w.engine) == snap


# --- whole stays in the shape of widespread clients ----------------------------------------------------------


def test_outpatient_flow_in_the_data_shape_with_a_variants(w):
    """2201 → 2203A → 2204 → 2206A → 2207A → 2208 → 3201, every main node named data, absent fields ""."""
    his = DataShapeHis(http_transport(w.client), "H2", clock=w.clock, credential=CREDENTIALS["H2"])
    his.sign_in()
    cert = PEOPLE["E1"][8]
    reg = his.call(
        "2201",
        {
            "data": {
                "psn_no": "E1",
                "insutype": "310",
                "begntime": "2025-03-10 08:55:00",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": cert,
                "ipt_otp_no": "MZ0001",
                "atddr_no": "",
                "dr_name": "",
                "dept_code": "",
                "dept_name": "",
                "caty": "",
            }
        },
    )
    op = reg["output"]["data"]["mdtrt_id"]
    his.call(
        "2203A",
        {
            "data": {
                "mdtrt_id": op,
                "psn_no": "E1",
                "med_type": "11",
                "begntime": "",
                "main_cond_dscr": "",
                "dise_codg": "J06.900",
                "dise_name": "急性上呼吸道感染",
                "birctrl_type": "",
                "birctrl_matn_date": "",
                "diseinfo": [
                    {
                        "diag_type": "1",
                        "diag_srt_no": "1",
                        "diag_code": "J06.900",
                        "diag_name": "急性上呼吸道感染",
                        "diag_dept": "",
                        "dise_dor_no": "",
                        "dise_dor_name": "",
                        "diag_time": "",
                        "vali_flag": "",
                        "maindiag_flag": "1",
                    }
                ],
            }
        },
    )
    rows = [
        _row(op, "E1", "yp570", "CAP-DEV", "1.5000", "150.123456", "225.19"),
        _row(op, "E1", "202503100000001", "A-DRUG", "0.3333", "3.333333", "1.11"),
        _row(op, "E1", "yp572", "B-DRUG", "2.0000", "10.000000", "20.00"),
    ]
    fees = his.call("2204", {"data": rows})["output"]["result"]
    assert [r["feedetl_sn"] for r in fees] == ["yp570", "202503100000001", "yp572"]
    data = _settle_data(op, "E1", "246.30")
    pre = his.call("2206A", {"data": data})["output"]
    setl = his.call("2207A", {"data": data})["output"]
    info = setl["setlinfo"]
    assert {k: pre["setlinfo"][k] for k in ("hifp_pay", "acct_pay", "psn_cash_pay")} == {
        k: info[k] for k in ("hifp_pay", "acct_pay", "psn_cash_pay")
    }
    assert info["medfee_sumamt"] == Decimal("246.30") and info["overlmt_selfpay"] == Decimal("75.19")
    assert info["fund_pay_sumamt"] + info["psn_part_amt"] == info["medfee_sumamt"]
    assert all("crt_payb_lmt_amt" in d for d in setl["setldetail"])
    # reconciliation of the day agrees with the reply, then the cancellation takes it out
    day = {
        "insutype": "310",
        "clr_type": "11",
        "setl_optins": REGION,
        "stmt_begndate": "2025-03-10",
        "stmt_enddate": "2025-03-10",
    }
    tot = {
        "medfee_sumamt": info["medfee_sumamt"],
        "fund_pay_sumamt": info["fund_pay_sumamt"],
        "acct_pay": info["acct_pay"],
        "fixmedins_setl_cnt": 1,
    }
    assert his.call("3201", {"data": {**day, **tot}})["output"]["stmtinfo"]["stmt_rslt"] == "0"
    cancel = his.call("2208", {"data": {"setl_id": info["setl_id"], "mdtrt_id": op, "psn_no": "E1"}})["output"][
        "setlinfo"
    ]
    assert cancel["pdn_cash_pay"] == -info["psn_cash_pay"] and cancel["medfee_sumamt"] == -info["medfee_sumamt"]
    zero = {"medfee_sumamt": "0.00", "fund_pay_sumamt": "0.00", "acct_pay": "0.00", "fixmedins_setl_cnt": 0}
    assert his.call("3201", {"data": {**day, **zero}})["output"]["stmtinfo"]["stmt_rslt"] == "0"
    assert his.call("3201", {"data": {**day, **tot}})["output"]["stmtinfo"]["stmt_rslt"] == "1"
    # the account is whole again
    with ydb.session_scope(w.engine) as s:
        assert s.scalar(select(records.Account.balc).where(records.Account.psn_no == "E1")) == PEOPLE["E1"][7]


def test_inpatient_stay_in_the_data_shape_with_a_variants(db_engine):
    """9001 → 1101 → 2401 → 2301 → 2303A → 2304A → 2402 → 2305 → 3201 (settle, then discharge: this edition's order)."""
    seed(db_engine)
    cfg = default_config()
    inst = InstitutionParams(inpatient_settlement="settle_then_discharge")
    w = _world(db_engine, cfg.model_copy(update={"institutions": {"H2": inst}}))
    his = DataShapeHis(http_transport(w.client), "H2", clock=w.clock, credential=CREDENTIALS["H2"])
    his.sign_in()
    cert = PEOPLE["E2"][8]
    person = his.call(
        "1101",
        {
            "data": {
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": cert,
                "card_sn": "",
                "begntime": "",
                "psn_cert_type": "01",
                "certno": "",
                "psn_name": "",
            }
        },
    )["output"]
    assert person["baseinfo"]["psn_no"] == "E2"
    adm = his.call(
        "2401",
        {
            "data": {
                "psn_no": "E2",
                "insutype": "310",
                "coner_name": "",
                "tel": "",
                "begntime": "2025-03-08 10:00:00",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": cert,
                "med_type": "21",
                "ipt_no": "ZY0001",
                "medrcdno": "",
                "atddr_no": "",
                "chfpdr_name": "",
                "adm_diag_dscr": "",
                "adm_dept_codg": "",
                "adm_dept_name": "",
                "adm_bed": "",
                "dscg_maindiag_code": "J18.900",
                "dscg_maindiag_name": "肺炎",
                "main_cond_dscr": "",
                "dise_codg": "",
                "dise_name": "",
                "diseinfo": [
                    {
                        "diag_type": "1",
                        "diag_srt_no": "1",
                        "diag_code": "J18.900",
                        "maindiag_flag": "1",
                        "diag_time": "",
                    },
                    {
                        "diag_type": "1",
                        "diag_srt_no": "2",
                        "diag_code": "I10.x05",
                        "maindiag_flag": "0",
                        "diag_time": "",
                    },
                ],
            }
        },
    )
    ip = adm["output"]["result"]["mdtrt_id"]
    rows = [
        _row(ip, "E2", "cw001", "BED", "2.0000", "50.000000", "100.00", fee_ocur_time="2025-03-09 10:00:00"),
        _row(ip, "E2", "yp570", "A-DRUG", "3.3333", "33.333333", "111.11", fee_ocur_time="2025-03-09 10:00:00"),
        _row(ip, "E2", "hc001", "CAP-DEV", "1", "150.00", "150.00", fee_ocur_time="2025-03-09 10:00:00"),
    ]
    res = his.call("2301", {"data": rows})["output"]["result"]
    assert [r["feedetl_sn"] for r in res] == ["cw001", "yp570", "hc001"]
    data = _settle_data(ip, "E2", "361.11", med_type="")
    pre = his.call("2303A", {"data": data})["output"]["setlinfo"]
    setl = his.call("2304A", {"data": data})["output"]
    info = setl["setlinfo"]
    assert info["setl_id"] and info["hifp_pay"] == pre["hifp_pay"] and info["overlmt_selfpay"] == Decimal("50.00")
    assert info["fund_pay_sumamt"] + info["psn_part_amt"] == Decimal("361.11")
    assert all("crt_payb_lmt_amt" in d for d in setl["setldetail"])
    # discharge after the settlement, on the same diagnoses; other diagnoses would need the settlement cancelled
    dscg = {
        "mdtrt_id": ip,
        "psn_no": "E2",
        "insutype": "310",
        "endtime": "2025-03-10 08:00:00",
        "dise_codg": "J18.900",
        "dise_name": "",
        "dscg_dept_codg": "",
        "dscg_dept_name": "",
        "dscg_way": "1",
        "die_date": "",
        "diseinfo": [
            {"diag_code": "J18.900", "maindiag_flag": "1", "diag_srt_no": "1"},
            {"diag_code": "I10.x05", "maindiag_flag": "0", "diag_srt_no": "2"},
        ],
    }
    _refused(his.call("2402", {"data": dict(dscg, dise_codg="J06.900", diseinfo=[])}, check=False), "dise_codg")
    his.call("2402", {"data": dscg})
    cancel = his.call("2305", {"data": {"setl_id": info["setl_id"], "mdtrt_id": ip, "psn_no": "E2"}})["output"][
        "setlinfo"
    ]
    assert cancel["medfee_sumamt"] == Decimal("-361.11") and cancel["pdn_cash_pay"] == -info["psn_cash_pay"]
    stmt = his.call(
        "3201",
        {
            "data": {
                "insutype": "310",
                "clr_type": "21",
                "setl_optins": REGION,
                "stmt_begndate": "2025-03-10",
                "stmt_enddate": "2025-03-10",
                "medfee_sumamt": "0",
                "fund_pay_sumamt": "0",
                "acct_pay": "0",
                "fixmedins_setl_cnt": "0",
            }
        },
    )["output"]["stmtinfo"]
    assert stmt["stmt_rslt"] == "0"
    with ydb.session_scope(db_engine) as s:
        assert s.scalar(select(records.Account.balc).where(records.Account.psn_no == "E2")) == PEOPLE["E2"][7]
        assert s.get(records.Encounter, ip).other_dise_codg == "I10.x05"


def test_the_default_edition_still_settles_an_inpatient_stay_only_after_discharge(w):
    his = w.his
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
                "ipt_no": "IP-D",
                "dscg_maindiag_code": "J18.900",
            }
        },
    )
    ip = adm["output"]["result"]["mdtrt_id"]
    his.call("2301", {"feedetail": [_row(ip, "E2", "1", "BED", "1", "50", "50.00")]})
    _refused(his.call("2304A", {"data": _settle_data(ip, "E2", "50.00", med_type="")}, check=False), "mdtrt_id")
    assert his.call("2303A", {"data": _settle_data(ip, "E2", "50.00", med_type="")})["infcode"] == 0


def test_unknown_a_variant_is_refused(w):
    _refused(w.his.call("2208A", {"data": {}}, check=False), "infno")


# --- input sent as a JSON text (clients that build the envelope with input = JSON.toJSONString(...)) ----------


def test_input_as_a_json_text_is_read_and_a_malformed_one_is_refused_without_logging_it(w):
    env = w.his.envelope("1101", {})
    env["input"] = dumps_exact({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": PEOPLE["E1"][8]}})
    r = loads_exact(w.client.post(PATH, content=dumps_exact(env).encode()).content)
    assert r["infcode"] == 0 and r["output"]["baseinfo"]["psn_no"] == "E1"
    bad = w.his.envelope("9001", {})
    bad["input"] = '{"signIn": {"opter_no": "x", "credential": "' + CREDENTIALS["H2"] + '"'  # cut off
    r = loads_exact(w.client.post(PATH, content=dumps_exact(bad).encode()).content)
    _refused(r, "input")
    with w.engine.connect() as c:
        logged = c.execute(select(MessageLog.request).where(MessageLog.msgid == bad["msgid"])).scalar_one()
    assert CREDENTIALS["H2"] not in dumps_exact(logged) and "not JSON" in dumps_exact(logged)
