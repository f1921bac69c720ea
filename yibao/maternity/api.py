"""HTTP router of the maternity allowance claim (生育津贴申领), bureau staff only (registered in yibao/api/app.py).

* ``POST /api/v1/maternity/claims``: file a claim (the figures are computed, never sent);
* ``POST /api/v1/maternity/claims/{claim_id}/review``: one step (check / approve / reject / pay);
* ``GET /api/v1/maternity/claims`` (``status``, ``psn_no``) and ``GET /api/v1/maternity/claims/{claim_id}``.

Money is integer fen.  Errors come back as 400 with ``code``, ``message_en``, ``message_zh`` and ``field``.
"""

# no "from __future__ import annotations": FastAPI reads the endpoint annotations
import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from yibao.core.errors import YibaoError
from yibao.web.auth import Principal, require

router = APIRouter(prefix="/api/v1/maternity", tags=["maternity 生育保险"])
_bureau = require("bureau")


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    psn_no: str
    employer: str  # 用人单位
    event_kind: str  # birth / difficult_birth / miscarriage
    event_date: dt.date
    average_wage_fen: int  # 职工月平均工资 as declared, fen
    babies: int = 1
    pregnancy_weeks: int | None = None
    applied_on: dt.date | None = None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str  # check / approve / reject / pay
    note: str = Field("", max_length=2000)


def _http(exc: YibaoError) -> HTTPException:
    return HTTPException(
        400, {"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field}
    )


def _engine(request: Request) -> Any:
    from yibao.supervision.api import _engine as engine_of

    return engine_of(request)


def _detail(engine: Any, claim_id: int) -> dict:
    from yibao.core.db import session_scope
    from yibao.maternity import service as svc

    with session_scope(engine) as s:
        out = svc.claim_dict(svc.get_claim(s, claim_id))
        out["steps"] = [svc.step_dict(x) for x in svc.claim_steps(s, claim_id)]
    return out


@router.post("/claims")
def new_claim(body: ClaimIn, request: Request, p: Principal = Depends(_bureau)) -> dict:
    from yibao.maternity import service as svc

    engine = _engine(request)
    req = svc.ClaimRequest(
        body.psn_no,
        body.employer,
        body.event_kind,
        body.event_date,
        body.average_wage_fen,
        body.babies,
        body.pregnancy_weeks,
        body.applied_on,
    )
    try:
        return _detail(engine, svc.file_claim(engine, req, actor=p.username))
    except YibaoError as e:
        raise _http(e) from None


@router.post("/claims/{claim_id}/review")
def review_claim(claim_id: int, body: ReviewIn, request: Request, p: Principal = Depends(_bureau)) -> dict:
    from yibao.maternity import service as svc

    engine = _engine(request)
    try:
        svc.review(engine, claim_id, body.action, actor=p.username, note=body.note)
        return _detail(engine, claim_id)
    except YibaoError as e:
        raise _http(e) from None


@router.get("/claims")
def list_claims(request: Request, status: str | None = None, psn_no: str | None = None) -> list[dict]:
    from yibao.core.db import session_scope
    from yibao.maternity import service as svc

    with session_scope(_engine(request)) as s:
        return [svc.claim_dict(c) for c in svc.list_claims(s, status=status, psn_no=psn_no)]


@router.get("/claims/{claim_id}")
def show_claim(claim_id: int, request: Request) -> dict:
    try:
        return _detail(_engine(request), claim_id)
    except YibaoError as e:
        raise HTTPException(
            404, {"code": e.code, "message_en": e.message_en, "message_zh": e.message_zh, "field": e.field}
        ) from None
