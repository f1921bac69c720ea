"""Shared set-up for the persisted scalar-path tests: a small register of people and institutions, the service
fixture, and snapshots of every table a settlement writes (used by the settlement, interface, maternity and
long-prescription tests)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.factories import TZ, catalog, claim, line
from yibao.api.models import MessageLog
from yibao.benefits.policy import PolicyBook
from yibao.codes import registry
from yibao.core import db as ydb
from yibao.settlement import records
from yibao.settlement.rules import PayerFacts, PersonFacts
from yibao.settlement.service import SettlementService

BOOK = PolicyBook.default()
CAT = catalog()
REGION = "990100"
D = lambda m, d, h=10: dt.datetime(2025, m, d, h, tzinfo=TZ)  # noqa: E731

PEOPLE = {
    # psn_no: insutype, psn_type, gend, brdy, assistance, civil_servant, contribution_base, acct_balc
    "E1": ("310", "in_service", "1", dt.date(1980, 4, 1), "", True, 800_000, 500_000),
    "E2": ("310", "retired", "2", dt.date(1950, 7, 1), "", False, 0, 20_000),
    "R1": ("390", "resident", "1", dt.date(1948, 1, 1), "dibao", False, 0, 0),
    "R2": ("390", "resident", "2", dt.date(1990, 1, 1), "", False, 0, 0),
    "C1": ("310", "in_service", "1", dt.date(1985, 1, 1), "", False, 0, 300_000),
}
LINKS = [("R1", "E1", "child"), ("E1", "R1", "parent")]  # E1 is R1's child


def facts(psn_no: str) -> PersonFacts:
    ins, typ, g, b, a, civ, _base, _balc = PEOPLE[psn_no]
    return PersonFacts(psn_no, ins, typ, g, b, REGION, a, civ)


def ledger_persons() -> dict[str, dict]:
    return {
        k: {"psn_no": k, "insutype": v[0], "psn_type": v[1], "contribution_base": v[6], "acct_balc": v[7]}
        for k, v in PEOPLE.items()
    }


@pytest.fixture
def svc(db_engine) -> SettlementService:
    with ydb.session_scope(db_engine) as s:
        for k, (ins, typ, g, b, a, civ, base, balc) in PEOPLE.items():
            s.add(
                registry.Person(
                    psn_no=k,
                    gend=g,
                    brdy=b,
                    insutype=ins,
                    psn_type=typ,
                    civil_servant=civ,
                    insuplc_admdvs=REGION,
                    assistance=a,
                    contribution_base=base,
                    acct_balc=balc,
                    synthetic=True,
                )
            )
        s.flush()
        for a, b, r in LINKS:
            s.add(registry.FamilyLink(psn_no=a, relative_psn_no=b, relation=r, synthetic=True))
        for lv in range(4):
            s.add(
                registry.Institution(
                    fixmedins_code=f"H{lv}",
                    fixmedins_type="pharmacy" if lv == 0 else "hospital",
                    hosp_lv=lv,
                    admdvs=REGION,
                    synthetic=True,
                )
            )
    return SettlementService(db_engine, BOOK, CAT)


SNAPSHOT_MODELS = (
    registry.Person,
    registry.FamilyLink,
    registry.Institution,
    records.Encounter,
    records.FeeDetail,
    records.Settlement,
    records.Accumulator,
    records.Account,
    records.AccountLedger,
    MessageLog,
)


def snapshot(engine, models=SNAPSHOT_MODELS) -> dict[str, list]:
    out = {}
    with engine.connect() as conn:
        for m in models:
            out[m.__tablename__] = sorted(repr(tuple(r)) for r in conn.execute(select(m.__table__)).all())
    return out


def accumulators(engine) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(select(records.Accumulator.__table__)).all()
    return {(r.psn_no, r.policy_year, r.kind, r.period): r.value for r in rows}


def balance(engine, psn_no: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(records.Account.balc).where(records.Account.psn_no == psn_no)).scalar_one()


def ledger_sum(engine, psn_no: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.sum(records.AccountLedger.amount)).where(records.AccountLedger.psn_no == psn_no)
        ).scalar_one()


def inpatient_e1(mdtrt_id="IP1", when=None):
    when = when or D(1, 20)
    lines = [line(1, "A-DRUG", 8000), line(2, "B-DRUG", 3000), line(3, "C-DRUG", 500), line(4, "CAP-DEV", 150)]
    return claim(mdtrt_id, facts("E1"), lines, med_type="21", hosp_lv=3, when=when, begin=when - dt.timedelta(days=8))


def mulaid_r1(mdtrt_id="PH1", when=None, payer="E1", relation="child"):
    when = when or D(2, 10)
    return claim(
        mdtrt_id,
        facts("R1"),
        [line(1, "AMLO", 30, qty=10), line(2, "C-DRUG", 100)],
        med_type="41",
        hosp_lv=0,
        when=when,
        mulaid_payer=PayerFacts(payer, PEOPLE[payer][0], relation),
    )
