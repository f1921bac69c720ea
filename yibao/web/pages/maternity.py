"""Console page ``maternity`` (生育津贴申领, bureau): the claim queue, one claim with its history, the decision form."""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from yibao.core.db import session_scope
from yibao.core.errors import YibaoError
from yibao.web.auth import Principal
from yibao.web.console import ConsoleDep, Deny
from yibao.web.deps import FormDep, page


def _queue(engine: Any, status: str) -> list[dict]:
    from yibao.maternity import service as svc

    with session_scope(engine) as s:
        return [svc.claim_dict(c) for c in svc.list_claims(s, status=status or None)]


def _detail(engine: Any, claim_id: int) -> tuple[dict, list[dict], list[str]] | None:
    from yibao.maternity import service as svc

    with session_scope(engine) as s:
        try:
            claim = svc.claim_dict(svc.get_claim(s, claim_id))
        except YibaoError:
            return None
        steps = [svc.step_dict(x) for x in svc.claim_steps(s, claim_id)]
    actions = [a for a, (starts, _to) in svc.ACTIONS.items() if claim["status"] in starts]
    return claim, steps, actions


router = APIRouter()


@router.get("/maternity")
def maternity_queue(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("maternity"))], status: str = ""
) -> Response:
    from yibao.maternity.models import CLAIM_STATUSES

    rows = _queue(c.engine, status)
    return c.render(
        request,
        "maternity.html",
        p,
        claim=None,
        claims=rows,
        statuses=CLAIM_STATUSES,
        current=status,
        msg=request.query_params.get("msg", ""),
    )


@router.get("/maternity/{claim_id}")
def maternity_claim(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("maternity"))], claim_id: int
) -> Response:
    found = _detail(c.engine, claim_id)
    if found is None:
        raise Deny(404, message_key="not_found")
    claim, steps, actions = found
    return c.render(
        request,
        "maternity.html",
        p,
        claim=claim,
        steps=steps,
        actions=actions,
        msg=request.query_params.get("msg", ""),
    )


@router.post("/maternity/{claim_id}/review")
async def maternity_review(
    request: Request,
    c: ConsoleDep,
    p: Annotated[Principal, Depends(page("maternity"))],
    claim_id: int,
    form: FormDep,
) -> Response:
    from yibao.maternity import service as svc

    action = form.get("action", "")
    note = form.get("note", "")[:2000]
    try:
        await run_in_threadpool(svc.review, c.engine, claim_id, action, actor=p.username, note=note)
        msg = "ok"
    except YibaoError as exc:
        msg = exc.message_en if c.lang(request) == "en" else exc.message_zh
    return RedirectResponse(f"/console/maternity/{claim_id}?msg=" + urllib.parse.quote(msg), status_code=303)
