"""Console page ``reimbursement`` (手工报销, bureau): the claims queue, a claim with its lines, settlement and
history, and the forms of its next workflow steps (CSRF token in each).  The role checks are the workflow's
(``yibao/data/reimbursement/manual.yaml``), the same as the CLI's and the REST router's.
"""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from yibao.core.errors import YibaoError
from yibao.web.auth import Principal
from yibao.web.console import ConsoleDep, Deny
from yibao.web.deps import FormDep, page

PAGE = "reimbursement"
Allowed = Annotated[Principal, Depends(page(PAGE))]
router = APIRouter()


def _svc(c: Any, request: Request):
    from yibao.reimbursement.service import service_for

    return service_for(request.app.state, c.engine)


def _actor(p: Any):
    from yibao.reimbursement.service import Actor

    return Actor(p.username, p.role, p.psn_no)


def _msg(c: Any, exc: YibaoError, request: Request) -> str:
    return exc.message_en if c.lang(request) == "en" else exc.message_zh


def _back(claim_id: int, msg: str) -> RedirectResponse:
    return RedirectResponse(f"/console/{PAGE}/{claim_id}?msg=" + urllib.parse.quote(msg), status_code=303)


def _line_dict(f: dict[str, str]) -> dict[str, Any]:
    d: dict[str, Any] = {k: f.get(k, "") for k in ("invoice_no", "med_list_codg", "item_text")}
    for k in ("amount_fen", "quantity_milli", "unit_price_fen"):
        if f.get(k):
            try:
                d[k] = int(f[k])
            except ValueError:
                d[k] = f[k]  # refused by line_from_dict, naming the field
    return d


@router.get(f"/{PAGE}")
def queue_page(request: Request, c: ConsoleDep, p: Allowed, status: str = "") -> Response:
    svc = _svc(c, request)
    try:
        rows, msg = svc.list_claims(status=status or None), ""
    except YibaoError as exc:
        rows, msg = [], _msg(c, exc, request)
    return c.render(request, "reimbursement.html", p, claim=None, rows=rows, wf=svc.wf, status_filter=status, msg=msg)


@router.get(f"/{PAGE}/{{claim_id}}")
def claim_page(request: Request, c: ConsoleDep, p: Allowed, claim_id: int) -> Response:
    svc = _svc(c, request)
    try:
        claim = svc.get(claim_id)
    except YibaoError:
        raise Deny(404, message_key="not_found") from None
    return c.render(
        request,
        "reimbursement.html",
        p,
        claim=claim,
        wf=svc.wf,
        editable=claim["status"] in svc.wf.editable,
        msg=request.query_params.get("msg", ""),
    )


@router.post(f"/{PAGE}/{{claim_id}}/step")
async def step_form(request: Request, c: ConsoleDep, p: Allowed, claim_id: int, f: FormDep) -> Response:
    svc = _svc(c, request)
    try:
        await run_in_threadpool(
            svc.review, claim_id, f.get("action", ""), _actor(p), comment=f.get("comment", "")[:2000]
        )
    except YibaoError as exc:
        return _back(claim_id, _msg(c, exc, request))
    return _back(claim_id, "ok")


@router.post(f"/{PAGE}/{{claim_id}}/lines")
async def line_form(request: Request, c: ConsoleDep, p: Allowed, claim_id: int, f: FormDep) -> Response:
    from yibao.reimbursement.service import line_from_dict

    svc = _svc(c, request)
    try:
        await run_in_threadpool(lambda: svc.add_line(claim_id, _actor(p), line_from_dict(_line_dict(f))))
    except YibaoError as exc:
        return _back(claim_id, _msg(c, exc, request))
    return _back(claim_id, "ok")
