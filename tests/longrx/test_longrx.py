"""Long prescriptions (长期处方): the disease list at settlement (scalar = batch), the HIS confirmation field through
the national interface (2203 / 2204 long_rx_flag), and the proxy-pickup log (代取药登记: service, 2207
agnterinfo, CLI, REST).

Figures: national-default.yaml long_term_prescription — long_rx_over_days 7 (illustrative), normal_max_days 28,
max_days 84 (seed 002 line 955); the disease list (illustrative) holds I10–I15, E10–E14 (门诊慢特病) and I25 …
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.api_support import BOOK, CAT, CREDENTIALS, PEOPLE, REGION, SH, Clock, business_snapshot, make_interface, seed
from tests.factories import TZ, claim, line, person
from tests.settlement_support import facts, ledger_persons
from yibao.api.envelope import field_of
from yibao.api.hisclient import HisClient, Item, fmt_time, http_transport
from yibao.cli import app as cli_app
from yibao.core import db as ydb
from yibao.core.errors import ClaimRejected
from yibao.longrx.eligibility import RULE
from yibao.longrx.models import ProxyPickup
from yibao.longrx.service import ProxyPickupError, ProxyPickupRequest, list_pickups, record_pickup
from yibao.server import create_app
from yibao.settlement import records
from yibao.settlement.batch import settle_batch
from yibao.settlement.rules import Claim, FeeLine, PersonFacts, settle_claim
from yibao.settlement.sequential import Ledger, settle_in_order

SNAP = BOOK.policy("national-default").snapshot(dt.date(2025, 3, 1))
T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SH)


# --- the disease list, scalar path ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "med_type", "dise", "other", "ok"),
    [
        (60, "11", "I10", (), True),  # hypertension: on the 门诊慢特病 list
        (60, "11", "J06.9", (), False),  # a cold: not a chronic disease
        (60, "11", "J06.9", ("I25.1",), True),  # an other diagnosis on the list is enough
        (60, "41", "E78.0", (), True),  # hyperlipidaemia at a pharmacy: on the list's own prefixes
        (8, "11", "J06.9", (), False),  # one day over long_rx_over_days (7)
        (7, "11", "J06.9", (), True),  # an ordinary prescription (≤ 7 days) needs no listed disease
        (10, "21", "J18.9", (), True),  # inpatient drugs are not a take-home prescription: not in med_types
    ],
)
def test_long_prescription_needs_a_listed_diagnosis(days, med_type, dise, other, ok):
    c = claim(
        "M1",
        person("E1"),
        [line(1, "AMLO", 2, qty=days, prd_days=days)],
        med_type=med_type,
        hosp_lv=1,
        dise=dise,
        other_dise_codg=other,
        lt_rx_confirmed=True,
    )
    if ok:
        settle_claim(c, SNAP, CAT, {}, 0).check()
        return
    with pytest.raises(ClaimRejected) as e:
        settle_claim(c, SNAP, CAT, {}, 0)
    assert e.value.field == "dise_codg"
    assert RULE in e.value.message_en and "长期处方适用病种" in e.value.message_zh


def test_no_disease_list_means_no_check():
    rule = SNAP.long_term_prescription.model_copy(update={"diseases": None})
    snap = SNAP.model_copy(update={"long_term_prescription": rule})
    c = claim("M1", person("E1"), [line(1, "AMLO", 2, qty=60, prd_days=60)], med_type="11", dise="J06.9")
    with pytest.raises(ClaimRejected) as e:
        settle_claim(c, snap, CAT, {}, 0)
    assert e.value.field == "lt_rx_confirmed"  # unconfirmed > 28 days is still refused …
    settle_claim(  # … and confirmed it settles: the list, not the threshold, refused the cold above
        claim(
            "M2",
            person("E1"),
            [line(1, "AMLO", 2, qty=60, prd_days=60)],
            med_type="11",
            dise="J06.9",
            lt_rx_confirmed=True,
        ),
        snap,
        CAT,
        {},
        0,
    ).check()


# --- scalar = batch -----------------------------------------------------------------------------------

DISEASES = ["I10", "E11.9", "J06.9", "J18.9", "E78.0", "K35.8", "N18.5", "A15.0", "M81.0"]
claim_st = st.fixed_dictionaries(
    {
        "med_type": st.sampled_from(["11", "14", "21", "41"]),
        "dise": st.sampled_from(DISEASES),
        "other": st.sampled_from(["", "", "I25.1", "J45.0;K35.8", "J06.9"]),
        "confirmed": st.booleans(),
        "lines": st.lists(
            st.tuples(
                st.sampled_from(["AMLO", "A-DRUG", "RIF", "NARC"]), st.sampled_from([0, 5, 7, 8, 28, 29, 60, 84, 91])
            ),
            min_size=1,
            max_size=3,
        ),
    }
)


def _claims(spec):
    claims, crow, lrow, persons = [], [], [], {}
    when = dt.datetime(2025, 3, 1, 10, tzinfo=TZ)
    for j, c in enumerate(spec):
        psn = f"P{j}"  # one person per claim: only the rule decides, not running totals
        persons[psn] = {
            "psn_no": psn,
            "certno": f"C{j}",
            "psn_name": f"n{j}",
            "gend": "1",
            "brdy": dt.date(1960, 1, 1),
            "insutype": "310",
            "psn_type": "in_service",
            "civil_servant": False,
            "insuplc_admdvs": REGION,
            "assistance": "",
            "contribution_base": 600_000,
            "acct_balc": 0,
            "family_id": f"F{j}",
            "synthetic": True,
        }
        pf = PersonFacts(psn, "310", "in_service", "1", dt.date(1960, 1, 1), REGION, "", False)
        lines = tuple(
            FeeLine(k + 1, code, days * 1000 or 1000, 200, (days or 1) * 200, prd_days=days)
            for k, (code, days) in enumerate(c["lines"])
        )
        other = tuple(x for x in c["other"].split(";") if x)
        claims.append(
            Claim(
                f"M{j}",
                pf,
                "H1",
                1,
                c["med_type"],
                when,
                when,
                c["dise"],
                lines,
                other_dise_codg=other,
                lt_rx_confirmed=c["confirmed"],
            )
        )
        crow.append(
            {
                "mdtrt_id": f"M{j}",
                "psn_no": psn,
                "fixmedins_code": "H1",
                "med_type": c["med_type"],
                "begntime": pd.Timestamp(when),
                "setl_time": pd.Timestamp(when),
                "dise_codg": c["dise"],
                "other_dise_codg": c["other"],
                "lt_rx_confirmed": c["confirmed"],
            }
        )
        for ln in lines:
            lrow.append(
                {
                    "mdtrt_id": f"M{j}",
                    "feedetl_sn": ln.feedetl_sn,
                    "med_list_codg": ln.med_list_codg,
                    "cnt_milli": ln.cnt_milli,
                    "pric": ln.pric,
                    "det_item_fee_sumamt": ln.det_item_fee_sumamt,
                    "prd_days": ln.prd_days,
                }
            )
    return claims, pd.DataFrame(crow), pd.DataFrame(lrow), persons


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.lists(claim_st, min_size=1, max_size=12))
def test_batch_equals_scalar_on_the_disease_list(spec):
    claims, cdf, ldf, persons = _claims(spec)
    policy = BOOK.policy(REGION)
    scalar = settle_in_order(claims, Ledger(policy, persons, dt.date(2025, 1, 1), book=BOOK), CAT)
    inst = pd.DataFrame({"fixmedins_code": ["H1"], "hosp_lv": [1]})
    res = settle_batch(cdf, ldf, pd.DataFrame(list(persons.values())), inst, CAT, policy=policy, book=BOOK)
    batch = {r["mdtrt_id"]: r for r in res.settlements.to_pylist()}
    refused = {r["mdtrt_id"]: r for r in res.rejected.to_dict("records")}
    for c, s in zip(claims, scalar, strict=True):
        if isinstance(s, ClaimRejected):
            assert c.mdtrt_id in refused and c.mdtrt_id not in batch, (c, s)
            if RULE in s.message_en:  # the new rule: the batch names the same field (the 慢特病 check may come first)
                assert refused[c.mdtrt_id]["field"] == "dise_codg", refused[c.mdtrt_id]
                if c.med_type != "14":
                    assert RULE in refused[c.mdtrt_id]["reason_en"]
            continue
        assert c.mdtrt_id not in refused, refused.get(c.mdtrt_id)
        for k, v in s.amounts().items():
            assert batch[c.mdtrt_id][k] == v, (c.mdtrt_id, k)


# --- the national interface: 2201 → 2203 → 2204 → 2207 with the real field ---------------------------


@pytest.fixture
def env(db_engine):
    seed(db_engine)
    clock = Clock(T0)
    iface = make_interface(db_engine, clock)
    client = TestClient(create_app(iface))
    his = HisClient(http_transport(client), "H2", fixmedins_name="机构H2", clock=clock, credential=CREDENTIALS["H2"])
    his.sign_in()
    return iface, client, his, clock


def _visit(his, psn, dise, days, *, visit_flag=None, line_flag=None, agent=None, line_flag_name="long_rx_flag"):
    """One outpatient visit with a take-home prescription of ``days`` days; returns (mdtrt_id, 2207 reply)."""
    now, cert = his.clock(), PEOPLE[psn][8]
    reg = his.call(
        "2201",
        {
            "data": {
                "psn_no": psn,
                "insutype": "310",
                "begntime": fmt_time(now),
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": cert,
                "ipt_otp_no": his.msgid(),
                "atddr_no": "DR01",
                "dr_name": "医生",
                "dept_code": "D01",
                "dept_name": "内科",
                "caty": "A03",
            }
        },
    )
    mdtrt_id = reg["output"]["data"]["mdtrt_id"]
    info = {"mdtrt_id": mdtrt_id, "psn_no": psn, "med_type": "11", "begntime": fmt_time(now), "dise_codg": dise}
    if visit_flag is not None:
        info["long_rx_flag"] = visit_flag
    diag = {"diag_type": "1", "diag_srt_no": 1, "diag_code": dise, "diag_name": "", "maindiag_flag": "1"}
    his.call("2203", {"mdtrtinfo": info, "diseinfo": [diag]})
    rows = his.feedetail(mdtrt_id, psn, [Item("AMLO", str(days), "2.00")], chrg_bchno="B1", when=now)
    rows[0]["prd_days"] = str(days)
    if line_flag is not None:
        rows[0][line_flag_name] = line_flag
    his.call("2204", {"feedetail": rows})
    data = {
        "psn_no": psn,
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": cert,
        "med_type": "11",
        "medfee_sumamt": rows[0]["det_item_fee_sumamt"],
        "psn_setlway": "01",
        "mdtrt_id": mdtrt_id,
        "chrg_bchno": "B1",
        "insutype": "310",
        "acct_used_flag": "1",
    }
    body = {"data": data} if agent is None else {"data": data, "agnterinfo": agent}
    return mdtrt_id, his.call("2207", body, check=False)


def _confirmed(engine, mdtrt_id) -> bool:
    with ydb.session_scope(engine) as s:
        return bool(s.get(records.Encounter, mdtrt_id).lt_rx_confirmed)


@pytest.mark.parametrize(
    ("visit_flag", "line_flag", "name"),
    [
        ("1", None, "long_rx_flag"),
        (None, "1", "long_rx_flag"),
        (None, "1", "longRxFlag"),
        (None, "1", "lt_rx_confirmed"),
    ],
)
def test_60_day_prescription_settles_in_real_time_when_the_his_confirms_it(env, db_engine, visit_flag, line_flag, name):
    _iface, _client, his, _clock = env
    mdtrt_id, reply = _visit(his, "E1", "I10", 60, visit_flag=visit_flag, line_flag=line_flag, line_flag_name=name)
    assert reply["infcode"] == 0, reply
    setl = reply["output"]["setlinfo"]
    assert _confirmed(db_engine, mdtrt_id)
    # the same engine as the scalar path, with the confirmation: fen for fen
    c = claim(
        mdtrt_id,
        facts("E1"),
        [line(1, "AMLO", 2, qty=60, prd_days=60)],
        med_type="11",
        hosp_lv=2,
        when=T0,
        dise="I10",
        lt_rx_confirmed=True,
    )
    want = settle_in_order([c], Ledger(BOOK.policy(REGION), ledger_persons(), dt.date(2025, 3, 1)), CAT)[0]
    for k, v in want.amounts().items():
        assert setl[k] == Decimal(v) / 100, k
    assert setl["medfee_sumamt"] == Decimal("120.00")  # 60 tablets × ¥2.00


@pytest.mark.parametrize("flag", ["", None, "0"])
def test_without_the_confirmation_the_long_prescription_is_refused(env, db_engine, flag):
    _iface, _client, his, _clock = env
    before = business_snapshot(db_engine)
    mdtrt_id, reply = _visit(his, "E1", "I10", 60, visit_flag=flag)
    assert reply["infcode"] == -1 and field_of(reply["err_msg"]) == "lt_rx_confirmed", reply
    assert not _confirmed(db_engine, mdtrt_id)
    with ydb.session_scope(db_engine) as s:
        assert s.scalar(select(func.count()).select_from(records.Settlement)) == 0
    assert before["settlement"] == business_snapshot(db_engine)["settlement"]


def _settled_state(engine):
    snap = business_snapshot(engine)
    return {k: snap[k] for k in ("settlement", "accumulator", "account", "account_ledger") if k in snap}


def test_unlisted_diagnosis_is_refused_and_nothing_is_written(env, db_engine):
    _iface, _client, his, _clock = env
    before = _settled_state(db_engine)
    _mdtrt_id, reply = _visit(his, "E1", "J06.9", 60, visit_flag="1")
    assert reply["infcode"] == -1 and field_of(reply["err_msg"]) == "dise_codg", reply
    assert RULE in reply["err_msg"]
    assert _settled_state(db_engine) == before


def test_over_the_12_week_maximum_is_refused(env, db_engine):
    _iface, _client, his, _clock = env
    before = _settled_state(db_engine)
    _mdtrt_id, reply = _visit(his, "E1", "I10", 91, visit_flag="1")
    assert reply["infcode"] == -1 and field_of(reply["err_msg"]) == "prd_days", reply
    assert _settled_state(db_engine) == before


AGENT = {"agnter_name": "张小伟", "agnter_rlts": "2", "agnter_cert_type": "01", "agnter_certno": "990101201001010055"}


def test_2207_with_agnterinfo_logs_the_proxy_pickup(env, db_engine):
    _iface, _client, his, _clock = env
    mdtrt_id, reply = _visit(his, "E1", "I10", 60, visit_flag="1", agent=AGENT)
    assert reply["infcode"] == 0, reply
    setl_id = reply["output"]["setlinfo"]["setl_id"]
    with ydb.session_scope(db_engine) as s:
        (row,) = list_pickups(s, psn_no="E1")
        assert (row.setl_id, row.mdtrt_id, row.relation, row.source) == (setl_id, mdtrt_id, "child", "interface")
        assert row.proxy_certno_masked == "990101********0055"  # masked (6 + 4), never the full number
        assert row.operator == "H2/0001" and row.picked_up_at == T0
    # a short prescription with agnterinfo: not a long prescription, nothing logged
    _m, short = _visit(his, "E2", "J06.9", 3, agent=AGENT)
    assert short["infcode"] == 0, short
    with ydb.session_scope(db_engine) as s:
        assert len(list_pickups(s)) == 1


@pytest.mark.parametrize(
    ("agent", "fld"),
    [
        ({**AGENT, "agnter_certno": ""}, "proxy_certno"),  # a proxy must show an ID
        ({**AGENT, "agnter_certno": PEOPLE["E1"][8]}, "proxy_certno"),  # the patient themselves
        ({**AGENT, "agnter_rlts": "77"}, "relation"),
    ],
)
def test_2207_with_a_bad_agnterinfo_is_refused_whole(env, db_engine, agent, fld):
    _iface, _client, his, _clock = env
    before = _settled_state(db_engine)
    _m, reply = _visit(his, "E1", "I10", 60, visit_flag="1", agent=agent)
    assert reply["infcode"] == -1 and field_of(reply["err_msg"]) == fld, reply
    assert _settled_state(db_engine) == before  # the settlement rolled back with the refused log
    with ydb.session_scope(db_engine) as s:
        assert s.scalar(select(func.count()).select_from(ProxyPickup)) == 0


# --- the log: service, CLI, REST ---------------------------------------------------------------------


@pytest.fixture
def settled(env, db_engine):
    """A settled 60-day prescription of E1 and a settled 3-day one of E2: their setl_ids."""
    _iface, _client, his, clock = env
    _m, long_ = _visit(his, "E1", "I10", 60, visit_flag="1")
    _m, short = _visit(his, "E2", "J06.9", 3)
    clock.advance(hours=1)
    return long_["output"]["setlinfo"]["setl_id"], short["output"]["setlinfo"]["setl_id"]


def _req(setl_id, **kw):
    base = dict(
        setl_id=setl_id,
        proxy_name="李四",
        proxy_cert_type="01",
        proxy_certno="990101197001010066",
        relation="spouse",
        operator="clerk1",
    )
    base.update(kw)
    return ProxyPickupRequest(**base)


def _count(engine) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(ProxyPickup)).scalar_one()


@pytest.mark.parametrize(
    ("kw", "fld"),
    [
        ({"proxy_certno": "  "}, "proxy_certno"),
        ({"proxy_certno": PEOPLE["E1"][8].lower()}, "proxy_certno"),  # the patient (case and blanks aside)
        ({"proxy_name": ""}, "proxy_name"),
        ({"proxy_cert_type": "99"}, "proxy_cert_type"),
        ({"relation": "neighbour"}, "relation"),
        ({"operator": ""}, "operator"),
        ({"setl_id": "NO-SUCH"}, "setl_id"),
        ({"psn_no": "E2"}, "psn_no"),
        ({"picked_up_at": T0 - dt.timedelta(days=1)}, "picked_up_at"),  # before the settlement
    ],
)
def test_proxy_refusals_change_nothing(settled, db_engine, kw, fld):
    long_id, _short = settled
    with pytest.raises(ProxyPickupError) as e, ydb.session_scope(db_engine) as s:
        record_pickup(s, _req(**{"setl_id": long_id, **kw}), now=T0 + dt.timedelta(hours=1))
    assert e.value.field == fld and e.value.message_zh and e.value.message_en
    assert _count(db_engine) == 0


def test_proxy_log_once_per_settlement_and_only_for_long_prescriptions(settled, db_engine):
    long_id, short_id = settled
    now = T0 + dt.timedelta(hours=1)
    with ydb.session_scope(db_engine) as s:
        row = record_pickup(s, _req(long_id, relation="1"), now=now)  # the agnter_rlts code of spouse
        assert row.relation == "spouse" and row.proxy_certno_masked == "990101********0066"
    for sid in (long_id, short_id):
        with pytest.raises(ProxyPickupError) as e, ydb.session_scope(db_engine) as s:
            record_pickup(s, _req(sid), now=now)
        assert e.value.field == "setl_id"
    assert _count(db_engine) == 1


def test_cli_proxy_add_and_list(settled, db_url, db_engine):
    long_id, _short = settled
    base = ["longrx", "proxy", "add", "--setl-id", long_id, "--name", "李四", "--relation", "spouse"]
    r = CliRunner().invoke(cli_app, [*base, "--certno", "990101197001010066", "--operator", "clerk1", "--db", db_url])
    assert r.exit_code == 0, r.output
    assert "990101********0066" in r.output and "990101197001010066" not in r.output
    r = CliRunner().invoke(cli_app, [*base, "--certno", "", "--operator", "clerk1", "--db", db_url])
    assert r.exit_code == 2 and _count(db_engine) == 1
    r = CliRunner().invoke(cli_app, ["longrx", "proxy", "list", "--psn-no", "E1", "--db", db_url])
    assert r.exit_code == 0 and "李四" in r.output and "clerk1" in r.output


def test_rest_proxy_add_refuse_list(settled, db_engine):
    from fastapi import FastAPI

    from yibao.longrx.api import router

    long_id, _short = settled
    web = FastAPI()
    web.include_router(router)
    web.state.yibao_engine = db_engine
    c = TestClient(web)
    body = {"setl_id": long_id, "agnter_name": "李四", "agnter_certno": "990101197001010066", "agnter_rlts": "spouse"}
    r = c.post("/api/v1/longrx/proxy-pickups", json={**body, "agnter_certno": PEOPLE["E1"][8], "operator": "clerk1"})
    assert r.status_code == 400 and r.json()["detail"]["field"] == "proxy_certno"
    r = c.post("/api/v1/longrx/proxy-pickups", json={**body, "operator": "clerk1"})
    assert r.status_code == 200, r.text
    assert r.json()["agnter_certno"] == "990101********0066" and r.json()["source"] == "manual"
    rows = c.get("/api/v1/longrx/proxy-pickups", params={"psn_no": "E1"}).json()
    assert [x["setl_id"] for x in rows] == [long_id]


# --- a region's own list: a new file, not new code -------------------------------------------------------


def _book_with(tmp_path, extra: str):
    import shutil

    from yibao.benefits.loader import POLICY_DIR
    from yibao.benefits.policy import PolicyBook

    for f in POLICY_DIR.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    head = 'policy: lrx-city\nregion: "990900"\nlabel: test city\nstatus: example\ninherits: national-default\n'
    (tmp_path / "lrx-city.yaml").write_text(head + extra, encoding="utf-8")
    return PolicyBook(tmp_path)


def test_a_region_replaces_the_list_in_its_own_file(tmp_path):
    extra = (
        "long_term_prescription:\n  diseases:\n    med_types: ['11']\n"
        "    include_chronic_list: false\n    prefixes: [J45]\n"
    )
    snap = _book_with(tmp_path, extra).policy("lrx-city").snapshot(dt.date(2025, 3, 1))
    rx = [line(1, "AMLO", 2, qty=60, prd_days=60)]
    ok = claim("M1", person("E1"), rx, med_type="11", hosp_lv=1, dise="J45.0", lt_rx_confirmed=True)
    settle_claim(ok, snap, CAT, {}, 0).check()
    no = claim("M2", person("E1"), rx, med_type="11", hosp_lv=1, dise="I10", lt_rx_confirmed=True)
    with pytest.raises(ClaimRejected) as e:
        settle_claim(no, snap, CAT, {}, 0)
    assert e.value.field == "dise_codg"


def test_an_unknown_med_type_in_the_list_is_a_policy_error(tmp_path):
    from yibao.core.errors import PolicyError

    extra = "long_term_prescription:\n  diseases:\n    med_types: ['11', '77']\n"
    with pytest.raises(PolicyError) as e:
        _book_with(tmp_path, extra).policy("lrx-city").snapshot(dt.date(2025, 3, 1))
    assert "77" in e.value.message_en
