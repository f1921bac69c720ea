"""HTTP router of supervision (thin: every endpoint calls a rule function or a service).

``app.include_router(router)``.  Endpoints that use the database take the
engine from ``app.state.yibao_engine`` or the interface's (``app.state.iface``)
when the app has one, else open ``$YIBAO_DATABASE_URL`` (migrated) once.
"""

# no "from __future__ import annotations": FastAPI reads the endpoint annotations

import datetime as dt
from dataclasses import asdict
from functools import lru_cache
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from yibao.core.errors import YibaoError
from yibao.supervision.discretion import Facts, default_benchmarks
from yibao.supervision.knowledge import default_rulebook

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])


def _error(exc: YibaoError) -> HTTPException:
    return HTTPException(
        status_code=400,
        detail={"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field},
    )


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
    fee_ocur_time: dt.datetime | None = None


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
    setl_time: dt.datetime | None = None
    dise_codg: str
    other_dise_codg: list[str] = []
    lt_rx_confirmed: bool = False
    lines: list[LineIn]
    admissions: list[PastAdmissionIn] = []
    death_time: dt.datetime | None = None
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
        mdtrt_id=body.mdtrt_id,
        person=body.person,
        fixmedins_code=body.fixmedins_code,
        hosp_lv=body.hosp_lv,
        med_type=body.med_type,
        begntime=body.begntime,
        setl_time=body.setl_time or body.begntime,
        dise_codg=body.dise_codg,
        other_dise_codg=tuple(body.other_dise_codg),
        lt_rx_confirmed=body.lt_rx_confirmed,
        lines=tuple(body.lines),
    )
    hist = History(tuple(PastAdmission(**a.model_dump()) for a in body.admissions), body.death_time)
    v = check_claim(claim, catalog=_catalog(), history=hist, stage=body.stage)
    return {
        "action": v.action,
        "reason_en": v.reason_en,
        "reason_zh": v.reason_zh,
        "findings": [asdict(f) for f in v.findings],
    }


class CircumstancesIn(BaseModel):
    """The circumstances a discretion benchmark weighs (情节), shared by a penalty query and a case step."""

    band: Literal["minor", "general", "serious"] = "general"
    first_offence: bool = False
    corrected: bool = False
    no_fault: bool = False
    mitigating: bool = False
    aggravating: bool = False
    sanctions: list[str] = []


class FactsIn(CircumstancesIn):
    violation: str
    loss_fen: int = Field(ge=0)


@router.post("/penalty")
def penalty(body: FactsIn) -> dict:
    """The penalty range from the discretion benchmarks (自由裁量基准)."""
    try:
        p = default_benchmarks().penalty(Facts(**{**body.model_dump(), "sanctions": tuple(body.sanctions)}))
    except YibaoError as exc:
        raise _error(exc) from exc
    return asdict(p)


@router.get("/credit/{subject_kind}/{subject_code}")
def credit(subject_kind: str, subject_code: str, request: Request, on: dt.date | None = None) -> dict:
    """Credit grade (信用等级) and blacklist status; procurement eligibility is ``not blacklisted``."""
    from yibao.supervision.credit import credit_grade

    return asdict(credit_grade(_engine(request), subject_kind, subject_code, on=on))


def _case_actor(request: Request):
    """The console session's user as the case step's actor (who and which role); the workflow checks the role.

    Case writes need to know who is asking: without the console's access control mounted on the app
    (``app.state.console``) they are refused (503).  POSTs carry the console page's CSRF token (X-CSRF-Token).
    """
    from yibao.supervision.cases import Actor
    from yibao.web.auth import csrf_ok

    console = getattr(request.app.state, "console", None)
    if console is None:
        raise HTTPException(
            503,
            {
                "code": "E_CASE_AUTH",
                "message_en": "case steps need the console's access control (who is acting)",
                "message_zh": "案件办理须经控制台身份认证",
                "field": None,
            },
        )
    token = request.cookies.get("yb_session")
    p = console.auth.principal(token)
    if p is None:
        raise HTTPException(
            401, {"code": "E_AUTH", "message_en": "login required", "message_zh": "请先登录", "field": None}
        )
    if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok(token, request.headers.get("x-csrf-token")):
        raise HTTPException(
            403,
            {
                "code": "E_CSRF",
                "message_en": "CSRF token missing or wrong (header X-CSRF-Token)",
                "message_zh": "CSRF 令牌缺失或错误",
                "field": None,
            },
        )
    return Actor(p.username, p.role, p.fixmedins_code)


def _case_error(exc: YibaoError) -> HTTPException:
    from yibao.supervision.cases import CaseForbidden

    e = _error(exc)
    if isinstance(exc, CaseForbidden):
        e.status_code = 403
    return e


class ClueIn(BaseModel):
    """Case intake (线索登记): the actor is the logged-in user, not a field."""

    subject_kind: Literal["institution", "physician", "person", "enterprise"]
    subject_code: str
    clue_kind: str = Field("scan_hit", description="scan_hit | complaint | referral | inspection (case_workflow.yaml)")
    source: str = Field(description="the rule id of the scan hit, the complaint number, the referring agency …")
    loss_fen: int = Field(0, description="the fund's loss as first estimated, integer fen")
    note: str = ""


@router.post("/cases")
def open_case(body: ClueIn, request: Request) -> dict:
    """Open a case from a clue (线索)."""
    from yibao.supervision.cases import CaseService

    actor = _case_actor(request)
    try:
        cid = CaseService(_engine(request)).open_case(
            actor,
            body.subject_kind,
            body.subject_code,
            body.clue_kind,
            body.source,
            loss_fen=body.loss_fen,
            note=body.note,
        )
    except YibaoError as exc:
        raise _case_error(exc) from exc
    return {"case_id": cid, "state": "clue"}


@router.get("/cases")
def list_cases(
    request: Request,
    state: str | None = None,
    subject_code: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict]:
    """Cases, newest first."""
    from yibao.supervision.cases import CaseService, case_dict

    _case_actor(request)
    svc = CaseService(_engine(request))
    try:
        return [case_dict(c, svc.wf) for c in svc.list(state=state, subject_code=subject_code, limit=limit)]
    except YibaoError as exc:
        raise _case_error(exc) from exc


@router.get("/cases/{case_id}")
def get_case(case_id: int, request: Request) -> dict:
    """The case, its history (全过程记录: who, when, what, before →
    after), the benchmark's ranges and the actions open to the caller.
    """
    from yibao.supervision.cases import CaseService, case_dict, event_dict

    actor = _case_actor(request)
    svc = CaseService(_engine(request))
    try:
        c = svc.get(case_id)
    except YibaoError as exc:
        raise _case_error(exc) from exc
    return {
        "case": case_dict(c, svc.wf),
        "history": [event_dict(e) for e in svc.events(case_id)],
        "next_actions": svc.next_actions(c, actor),
        "benchmark": [{"band": b, **asdict(p)} for b, p in svc.ranges(c)],
    }


class StepIn(CircumstancesIn):
    """A step's parameters; which ones an action takes is ``yibao.supervision.cases.ACTION_PARAMS``."""

    note: str = ""
    agency: str | None = None
    violation: str | None = Field(None, description="note / submit_review / decide: default the case's")
    loss_fen: int | None = Field(None, description="note / submit_review / decide: fen, default the case's")
    fine_fen: int | None = Field(None, description="decide: fen, inside the benchmark's range")
    amount_fen: int | None = Field(None, description="recover / collect_fine: fen")
    appeal_kind: str | None = Field(None, description="appeal: reconsideration | litigation")


def step_params(svc, case_id: int, action: str, b: StepIn) -> dict:
    """The service's parameters for one action from the step's fields (shared by the REST step and the console form)."""
    params: dict = {"agency": b.agency, "amount_fen": b.amount_fen, "appeal_kind": b.appeal_kind}
    if action in ("submit_review", "decide", "decide_summary"):
        c = svc.get(case_id)
        params["facts"] = {
            "violation": b.violation or c.violation,
            "loss_fen": c.loss_fen if b.loss_fen is None else b.loss_fen,
            "band": b.band,
            "first_offence": b.first_offence,
            "corrected": b.corrected,
            "no_fault": b.no_fault,
            "mitigating": b.mitigating,
            "aggravating": b.aggravating,
            "sanctions": tuple(b.sanctions),
        }
        params["fine_fen"] = b.fine_fen
    else:
        params.update(violation=b.violation, loss_fen=b.loss_fen, fine_fen=b.fine_fen)
    return params


@router.post("/cases/{case_id}/{action}")
def case_step(case_id: int, action: str, body: StepIn, request: Request) -> dict:
    """One workflow step (file, investigate, note, submit_review,
    review_pass, return, decide, recover, collect_fine, publish,
    appeal, uphold, revoke, close, …): 400 with the allowed steps named when out of order or outside the benchmark, 403
    when
    not the caller's role; every step is recorded."""
    from yibao.supervision.cases import CaseService, case_dict

    actor = _case_actor(request)
    svc = CaseService(_engine(request))
    try:
        c = svc.perform(case_id, action, actor, note=body.note, **step_params(svc, case_id, action, body))
    except YibaoError as exc:
        raise _case_error(exc) from exc
    return {"case_id": c.id, "state": c.state, "case": case_dict(c, svc.wf)}
