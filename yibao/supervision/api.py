"""HTTP router of supervision (thin: every endpoint calls a rule function or a service).

``app.include_router(router)``.  Endpoints that use the database take the
engine from ``app.state.yibao_engine`` or the interface's (``app.state.iface``)
when the app has one, else open ``$YIBAO_DATABASE_URL`` (migrated) once.
"""

# no "from __future__ import annotations": FastAPI reads the endpoint annotations

import datetime as dt
from dataclasses import asdict
from functools import lru_cache
from typing import Literal, Optional

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from yibao.core.errors import YibaoError
from yibao.supervision.discretion import Facts, default_benchmarks
from yibao.supervision.knowledge import default_rulebook

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])


def _error(exc: YibaoError) -> HTTPException:
    return HTTPException(status_code=400, detail={"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field})


@lru_cache(maxsize=1)
def _default_engine():
    from yibao.core import db

    url = db.database_url(None)
    db.upgrade(url)
    return db.make_engine(url)


def _engine(request: Request):
    st = request.app.state
    iface = getattr(st, "iface", None)
    return getattr(st, "yibao_engine", None) or getattr(iface, "engine", None) or _default_engine()


@lru_cache(maxsize=1)
def _catalog():
    from yibao.codes.medlist import MedList

    return MedList.load().items


class LineIn(BaseModel):
    feedetl_sn: int = Field(ge=1)
    med_list_codg: str
    cnt_milli: int = Field(ge=0)
    pric: int = Field(ge=0, description="fen per unit")
    det_item_fee_sumamt: int = Field(ge=0, description="fen")
    prd_days: int = Field(0, ge=0)
    fee_ocur_time: Optional[dt.datetime] = None


class PersonIn(BaseModel):
    psn_no: str
    gend: Literal["1", "2"]
    brdy: dt.date


class PastAdmissionIn(BaseModel):
    mdtrt_id: str
    fixmedins_code: str
    dise_codg: str
    begntime: dt.datetime
    endtime: dt.datetime


class ClaimIn(BaseModel):
    """One claim for the in-care check (fields named as in the national interface)."""

    mdtrt_id: str
    person: PersonIn
    fixmedins_code: str
    hosp_lv: int = Field(ge=0, le=3)
    med_type: str
    begntime: dt.datetime
    setl_time: Optional[dt.datetime] = None
    dise_codg: str
    other_dise_codg: list[str] = []
    lt_rx_confirmed: bool = False
    lines: list[LineIn]
    admissions: list[PastAdmissionIn] = []
    death_time: Optional[dt.datetime] = None
    stage: Literal["pre", "in"] = "in"


@router.get("/rules")
def list_rules() -> list[dict]:
    """The rule library (规则库)."""
    return [r.model_dump(mode="json") for r in default_rulebook().rules]


@router.post("/check")
def check(body: ClaimIn) -> dict:
    """事中 / 事前 check of one claim: pass, warn or refuse with reasons."""
    from types import SimpleNamespace

    from yibao.supervision.incare import History, PastAdmission, check_claim

    claim = SimpleNamespace(
        mdtrt_id=body.mdtrt_id, person=body.person, fixmedins_code=body.fixmedins_code, hosp_lv=body.hosp_lv, med_type=body.med_type,
        begntime=body.begntime, setl_time=body.setl_time or body.begntime, dise_codg=body.dise_codg, other_dise_codg=tuple(body.other_dise_codg),
        lt_rx_confirmed=body.lt_rx_confirmed, lines=tuple(body.lines),
    )
    hist = History(tuple(PastAdmission(**a.model_dump()) for a in body.admissions), body.death_time)
    v = check_claim(claim, catalog=_catalog(), history=hist, stage=body.stage)
    return {"action": v.action, "reason_en": v.reason_en, "reason_zh": v.reason_zh, "findings": [asdict(f) for f in v.findings]}


class FactsIn(BaseModel):
    violation: str
    loss_fen: int = Field(ge=0)
    band: Literal["minor", "general", "serious"] = "general"
    first_offence: bool = False
    corrected: bool = False
    no_fault: bool = False
    mitigating: bool = False
    aggravating: bool = False
    sanctions: list[str] = []


@router.post("/penalty")
def penalty(body: FactsIn) -> dict:
    """The penalty range from the discretion benchmarks (自由裁量基准)."""
    try:
        p = default_benchmarks().penalty(Facts(**{**body.model_dump(), "sanctions": tuple(body.sanctions)}))
    except YibaoError as exc:
        raise _error(exc) from exc
    return asdict(p)


@router.get("/credit/{subject_kind}/{subject_code}")
def credit(subject_kind: str, subject_code: str, request: Request, on: Optional[dt.date] = None) -> dict:
    """Credit grade (信用等级) and blacklist status; procurement eligibility is ``not blacklisted``."""
    from yibao.supervision.credit import credit_grade

    return asdict(credit_grade(_engine(request), subject_kind, subject_code, on=on))


class ClueIn(BaseModel):
    subject_kind: Literal["institution", "physician", "person", "enterprise"]
    subject_code: str
    source: str
    actor: str
    loss_fen: int = Field(0, ge=0)
    note: str = ""


@router.post("/cases")
def open_case(body: ClueIn, request: Request) -> dict:
    """Open a clue (线索)."""
    from yibao.supervision.cases import CaseService

    try:
        cid = CaseService(_engine(request)).open_clue(body.subject_kind, body.subject_code, body.source, actor=body.actor, loss_fen=body.loss_fen, note=body.note)
    except YibaoError as exc:
        raise _error(exc) from exc
    return {"case_id": cid, "state": "clue"}


class StepIn(BaseModel):
    actor: str
    note: str = ""
    agency: Optional[str] = None


@router.post("/cases/{case_id}/{action}")
def case_step(case_id: int, action: Literal["file", "dismiss", "investigate", "transfer", "publish", "close"], body: StepIn, request: Request) -> dict:
    """A workflow step without penalty facts; illegal steps are refused with the allowed ones named."""
    from yibao.supervision.cases import CaseService

    svc = CaseService(_engine(request))
    try:
        if action == "transfer":
            c = svc.transfer(case_id, body.agency or "", actor=body.actor, note=body.note)
        else:
            c = getattr(svc, action)(case_id, actor=body.actor, note=body.note)
    except YibaoError as exc:
        raise _error(exc) from exc
    return {"case_id": c.id, "state": c.state}
