"""A circulated prescription filled at a pharmacy through the plain visit messages (2201 → 2204 → 2206 → 2207).

A pharmacy HIS that sends the fill as an ordinary outpatient visit, its lines flagged ``rx_circ_flag = 1`` with
the issuing doctor in ``bilg_dr_codg``, is paid at the issuer's level when circulation.yaml says ``issuer`` — as
RxService pays a fill and as the batch engine re-settles the year (``_circulated_level``).  Synthetic people and
institutions (tests/api_support.py: H1/H2/H3 hospitals of levels 1/2/3, P0 a pharmacy of level 0).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.api_support import BOOK, CAT, CREDENTIALS, PEOPLE, Clock, make_interface, seed
from tests.factories import claim, line
from tests.settlement_support import facts, ledger_persons
from yibao.api.envelope import field_of
from yibao.api.hisclient import HisClient, HisError, Item, http_transport
from yibao.codes import registry
from yibao.core import db as ydb
from yibao.core.contract import PRAC_PSN_TYPE_DOCTOR
from yibao.server import create_app
from yibao.settlement import records
from yibao.settlement.batch import settle_batch
from yibao.settlement.circulation import PrescriberLevel, rules_in_force
from yibao.settlement.sequential import Ledger, settle_in_order
from yibao.settlement.visit_service import VisitSettlementService

T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=ydb.SHANGHAI)
DOCTORS = {"D99010000001": "H1", "D99010000002": "H2", "D99010000003": "H3", "D99010000004": "H2"}
MONEY = (records.Settlement, records.Accumulator, records.Account, records.AccountLedger)


@pytest.fixture
def env(db_engine):
    seed(db_engine)
    with ydb.session_scope(db_engine) as s:
        for code, inst in DOCTORS.items():
            s.add(
                registry.Practitioner(
                    prac_psn_code=code, prac_psn_type=PRAC_PSN_TYPE_DOCTOR, fixmedins_code=inst, synthetic=True
                )
            )
    clock = Clock(T0)
    iface = make_interface(db_engine, clock)
    client = TestClient(create_app(iface))

    def his(code: str) -> HisClient:
        h = HisClient(http_transport(client), code, clock=clock, credential=CREDENTIALS[code])
        h.sign_in()
        return h

    return iface, his, clock


def fill(doctor: str, *, circ: bool = True) -> list[Item]:
    return [
        Item("A-DRUG", "20", "150.00", rx_circ_flag=circ, bilg_dr_codg=doctor),
        Item("B-DRUG", "1", "200.00", rx_circ_flag=circ, bilg_dr_codg=doctor),
    ]


def expected(mdtrt_id: str, hosp_lv: int) -> dict:
    """The pure engine's split of the same two lines for E1, at ``hosp_lv``."""
    c = claim(
        mdtrt_id,
        facts("E1"),
        [line(1, "A-DRUG", 150, qty=20), line(2, "B-DRUG", 200)],
        med_type="11",
        hosp_lv=hosp_lv,
        when=T0,
        dise="J06.9",
    )
    return settle_in_order([c], Ledger(BOOK.policy("990100"), ledger_persons(), dt.date(2025, 3, 1)), CAT)[0].amounts()


def paid(reply: dict) -> dict:
    info = reply["2207"]["output"]["setlinfo"]
    return {k: int(Decimal(info[k]) * 100) for k in ("hifp_pay", "psn_cash_pay", "acct_pay", "act_pay_dedc")}


def money_rows(engine) -> dict:
    with engine.connect() as conn:
        return {m.__tablename__: sorted(map(tuple, conn.execute(select(m.__table__)))) for m in MONEY}


def test_a_pharmacy_fill_is_paid_at_the_issuers_level(env, db_engine):
    iface, his, _ = env
    out = his("P0").outpatient("E1", "310", PEOPLE["E1"][8], fill("D99010000003"), med_type="11")
    mdtrt_id = out["2201"]["output"]["data"]["mdtrt_id"]
    at_h3, at_p0 = expected(mdtrt_id, 3), expected(mdtrt_id, 0)
    assert {k: at_h3[k] for k in paid(out)} != {k: at_p0[k] for k in paid(out)}  # the level matters here
    assert paid(out) == {k: at_h3[k] for k in paid(out)}
    assert out["2206"]["output"]["setlinfo"]["hifp_pay"] == out["2207"]["output"]["setlinfo"]["hifp_pay"]
    with db_engine.connect() as conn:
        trace = conn.execute(select(records.Settlement.rule_trace)).scalar_one()
    assert trace["level_of"] == "H3" and trace["hosp_lv"] == 3


def test_the_batch_engine_re_settles_the_fill_to_the_fen(env, db_engine):
    _, his, _ = env
    out = his("P0").outpatient("E1", "310", PEOPLE["E1"][8], fill("D99010000003"), med_type="11")
    with db_engine.connect() as conn:
        enc = pd.read_sql(select(records.Encounter.__table__), conn)
        lines = pd.read_sql(select(records.FeeDetail.__table__), conn)
        persons = pd.read_sql(select(registry.Person.__table__), conn)
        inst = pd.read_sql(select(registry.Institution.__table__), conn)
        prac = pd.read_sql(select(registry.Practitioner.__table__), conn)
    enc = enc.rename(columns={"endtime": "setl_time"})
    enc["setl_time"] = pd.Timestamp(T0)
    rule = PrescriberLevel(rules_in_force().periods, pa_table(prac[["prac_psn_code", "fixmedins_code"]]))
    res = settle_batch(enc, lines, persons, inst, CAT, book=BOOK, account_start=dt.date(2025, 1, 1), circulation=rule)
    assert res.rejected.empty, res.rejected
    row = res.settlements.to_pylist()[0]
    assert {k: row[k] for k in paid(out)} == paid(out)


def pa_table(df: pd.DataFrame):
    import pyarrow as pa

    return pa.Table.from_pandas(df, preserve_index=False)


def test_without_the_flag_or_under_dispenser_the_pharmacys_own_level(env, db_engine):
    iface, his, _ = env
    plain = his("P0").outpatient("E1", "310", PEOPLE["E1"][8], fill("D99010000003", circ=False), med_type="11")
    mdtrt_id = plain["2201"]["output"]["data"]["mdtrt_id"]
    at_p0 = expected(mdtrt_id, 0)
    assert paid(plain) == {k: at_p0[k] for k in paid(plain)}
    iface.visits = VisitSettlementService(
        iface.svc, PrescriberLevel.from_rules([(dt.date(2021, 4, 13), "dispenser")], None)
    )
    disp = his("P0").outpatient("E2", "310", PEOPLE["E2"][8], fill("D99010000003"), med_type="11")
    with db_engine.connect() as conn:
        traces = [t for (t,) in conn.execute(select(records.Settlement.rule_trace))]
    assert [t["hosp_lv"] for t in traces] == [0, 0] and all("level_of" not in t for t in traces)
    assert disp["2207"]["infcode"] == 0


def test_issuers_of_one_level_settle_together(env):
    _, his, _ = env
    items = fill("D99010000002")[:1] + fill("D99010000004")[1:]  # two level-2 doctors of H2
    out = his("P0").outpatient("E1", "310", PEOPLE["E1"][8], items, med_type="11")
    mdtrt_id = out["2201"]["output"]["data"]["mdtrt_id"]
    at_h2 = expected(mdtrt_id, 2)
    assert paid(out) == {k: at_h2[k] for k in paid(out)}


@pytest.mark.parametrize(
    ("doctors", "why"),
    [
        (("D99019999999", "D99019999999"), "unknown"),  # not in the practitioner table
        (("", ""), "unknown"),  # a circulated line with no prescriber
        (("D99010000001", "D99010000003"), "different levels"),  # a level-1 and a level-3 issuer
    ],
)
def test_refused_and_nothing_is_paid(env, db_engine, doctors, why):
    _, his, _ = env
    items = [fill(doctors[0])[0], fill(doctors[1])[1]]
    before = money_rows(db_engine)
    for pre in (True, False):  # 2206 and 2207 refuse alike
        with pytest.raises(HisError) as err:
            his("P0").outpatient("E1", "310", PEOPLE["E1"][8], items, med_type="11", pre=pre)
        assert err.value.infno == ("2206" if pre else "2207")
        assert field_of(err.value.reply["err_msg"]) == "bilg_dr_codg"
        assert why in err.value.reply["err_msg"]
    assert money_rows(db_engine) == before
