"""Shared set-up for the national-interface tests: people, institutions, a settable clock, clients."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tests.factories import catalog
from yibao.api.interface import Interface
from yibao.api.security import InstitutionKeys, SecurityPolicy, hash_secret
from yibao.benefits.policy import PolicyBook
from yibao.codes import registry
from yibao.core import db as ydb
from yibao.settlement import records

BOOK = PolicyBook.default()
CAT = catalog()
REGION = "990100"
SH = ydb.SHANGHAI

PEOPLE = {
    # psn_no: insutype, psn_type, gend, brdy, assistance,
    # civil_servant, contribution_base, acct_balc (fen), certno, name
    "E1": ("310", "in_service", "1", dt.date(1980, 4, 1), "", True, 800_000, 500_000, "990101198004010011", "张伟"),
    "E2": ("310", "retired", "2", dt.date(1950, 7, 1), "", False, 0, 20_000, "990101195007010022", "李娜"),
    "R1": ("390", "resident", "1", dt.date(1948, 1, 1), "dibao", False, 0, 0, "990101194801010033", "王强"),
    "C1": ("310", "in_service", "1", dt.date(1985, 1, 1), "", False, 0, 300_000, "990101198501010044", "赵敏"),
}
INSTITUTIONS = {"H1": 1, "H2": 2, "H3": 3, "P0": 0}
# each institution's sign-in secret (9001 signIn.credential); the platform keeps only their scrypt hashes
CREDENTIALS = {code: f"test-secret-{code}" for code in INSTITUTIONS}
SECURITY = SecurityPolicy(
    institutions={code: InstitutionKeys(secret_hash=hash_secret(c, n=2**10)) for code, c in CREDENTIALS.items()}
)


class Clock:
    """A settable clock (Asia/Shanghai)."""

    def __init__(self, t: dt.datetime):
        self.t = t

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, **kw) -> dt.datetime:
        self.t = self.t + dt.timedelta(**kw)
        return self.t


def seed(engine) -> None:
    with ydb.session_scope(engine) as s:
        for k, (ins, typ, g, b, a, civ, base, balc, certno, name) in PEOPLE.items():
            s.add(
                registry.Person(
                    psn_no=k,
                    certno=certno,
                    psn_name=name,
                    gend=g,
                    brdy=b,
                    insutype=ins,
                    psn_type=typ,
                    civil_servant=civ,
                    insuplc_admdvs=REGION,
                    assistance=a,
                    contribution_base=base,
                    acct_balc=balc,
                    insured_since=dt.date(2015, 1, 1),
                    synthetic=True,
                )
            )
        s.flush()
        s.add(registry.FamilyLink(psn_no="R1", relative_psn_no="E1", relation="child", synthetic=True))
        for code, lv in INSTITUTIONS.items():
            s.add(
                registry.Institution(
                    fixmedins_code=code,
                    fixmedins_name=f"机构{code}",
                    fixmedins_type="pharmacy" if lv == 0 else "hospital",
                    hosp_lv=lv,
                    admdvs=REGION,
                    synthetic=True,
                )
            )


def make_interface(engine, clock: Clock) -> Interface:
    """An interface where every seeded institution has a sign-in secret (``CREDENTIALS``)."""
    return Interface(engine, BOOK, CAT, clock=clock, security=SECURITY)


BUSINESS_MODELS = (
    registry.Person,
    records.Encounter,
    records.FeeDetail,
    records.Settlement,
    records.Accumulator,
    records.Account,
    records.AccountLedger,
)


def business_snapshot(engine) -> dict[str, list]:
    """Every business table (not the audit log / stored replies / sign-ins), for "nothing changed" checks."""
    from yibao.api.models import StoredReply
    from yibao.settlement.visits import FeeUpload, VisitState

    out = {}
    with engine.connect() as conn:
        for m in (*BUSINESS_MODELS, VisitState, FeeUpload, StoredReply):
            out[m.__tablename__] = sorted(repr(tuple(r)) for r in conn.execute(select(m.__table__)).all())
    return out
