"""HTTP router of manual reimbursement (手工报销), bureau staff only (registered in yibao/api/app.py).

The acting user is the console session's (the workflow checks their role); POSTs carry the console page's
CSRF token (X-CSRF-Token), as for the other subsystem routers.  Approval settles through the engine of the
app's interface (its policies and list) when there is one, else the shipped policies and the database's list.
"""

# no "from __future__ import annotations": FastAPI reads the endpoint annotations
import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from yibao.core.errors import YibaoError

router = APIRouter(prefix="/api/v1/reimbursement", tags=["reimbursement"])


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    invoice_no: str
    amount_fen: int = Field(description="fen; must be positive")
    quantity_milli: int = Field(1000, description="quantity × 1000")
    unit_price_fen: int | None = None
    med_list_codg: str = ""
    item_text: str = ""


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    psn_no: str
    med_type: str
    begin_date: dt.date
    end_date: dt.date
    reason: str
    dise_codg: str
    fixmedins_code: str = ""
    provider_name: str = ""
    provider_admdvs: str = ""
    hosp_lv: int | None = None
    other_dise_codg: list[str] = []
    documents: list[str] = []
    lines: list[LineIn] = []


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(description="submit | first_review | return | reject | withdraw | approve")
    comment: str = Field("", max_length=2000)


class DocumentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    documents: list[str]


def _error(exc: YibaoError) -> HTTPException:
    from yibao.reimbursement.params import ReimbursementForbidden

    return HTTPException(
        status_code=403 if isinstance(exc, ReimbursementForbidden) else 400,
        detail={"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field},
    )


def _service(request: Request):
    from yibao.reimbursement.service import service_for
    from yibao.supervision.api import _engine

    return service_for(request.app.state, _engine(request))


def _actor(request: Request):
    from yibao.reimbursement.service import Actor

    console = getattr(request.app.state, "console", None)
    p = console.auth.principal(request.cookies.get("yb_session")) if console is not None else None
    if p is None:  # the router is mounted behind require("bureau"); without a console nobody can act
        raise HTTPException(401, {"code": "E_AUTH", "message_en": "login required", "message_zh": "请先登录"})
    return Actor(p.username, p.role, p.psn_no)


@router.post("/claims")
def open_claim(body: ClaimIn, request: Request) -> dict[str, Any]:
    """Open a claim (录入) with its invoice lines; the claim in state draft."""
    from yibao.reimbursement.service import request_from_dict

    svc = _service(request)
    try:
        cid = svc.open_claim(_actor(request), request_from_dict(body.model_dump(mode="json")))
        return svc.get(cid)
    except YibaoError as e:
        raise _error(e) from None


@router.post("/claims/{claim_id}/lines")
def add_line(claim_id: int, body: LineIn, request: Request) -> dict[str, Any]:
    from yibao.reimbursement.service import InvoiceLine

    svc = _service(request)
    try:
        svc.add_line(claim_id, _actor(request), InvoiceLine(**body.model_dump()))
        return svc.get(claim_id)
    except YibaoError as e:
        raise _error(e) from None


@router.post("/claims/{claim_id}/documents")
def add_documents(claim_id: int, body: DocumentsIn, request: Request) -> dict[str, Any]:
    svc = _service(request)
    try:
        svc.add_documents(claim_id, _actor(request), body.documents)
        return svc.get(claim_id)
    except YibaoError as e:
        raise _error(e) from None


@router.post("/claims/{claim_id}/review")
def review(claim_id: int, body: StepIn, request: Request) -> dict[str, Any]:
    """A workflow step; ``approve`` settles the claim by the settlement engine (one transaction)."""
    svc = _service(request)
    try:
        svc.review(claim_id, body.action, _actor(request), comment=body.comment)
        return svc.get(claim_id)
    except YibaoError as e:
        raise _error(e) from None


@router.get("/claims")
def list_claims(request: Request, status: str | None = None, psn_no: str | None = None) -> list[dict[str, Any]]:
    try:
        return _service(request).list_claims(status=status, psn_no=psn_no)
    except YibaoError as e:
        raise _error(e) from None


@router.get("/claims/{claim_id}")
def show(claim_id: int, request: Request) -> dict[str, Any]:
    try:
        return _service(request).get(claim_id)
    except YibaoError as e:
        raise HTTPException(404, _error(e).detail) from None
