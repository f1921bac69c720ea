"""Console page ``maternity`` (生育津贴申领, bureau): the claim queue, one claim with its history, the decision form."""

from __future__ import annotations

import urllib.parse
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from yibao.core.db import session_scope
from yibao.core.errors import YibaoError
from yibao.web.console import _Deny


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


def mount(c: Any, r: Any, guarded: Any) -> None:
    @r.get("/maternity")
    @guarded
    def maternity_queue(request: Request, status: str = "") -> Response:
        from yibao.maternity.models import CLAIM_STATUSES

        p = c.need(request, "maternity")
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

    @r.get("/maternity/{claim_id}")
    @guarded
    def maternity_claim(request: Request, claim_id: int) -> Response:
        p = c.need(request, "maternity")
        found = _detail(c.engine, claim_id)
        if found is None:
            raise _Deny(404, message_key="not_found")
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

    @r.post("/maternity/{claim_id}/review")
    @guarded
    async def maternity_review(request: Request, claim_id: int) -> Response:
        from yibao.maternity import service as svc

        p = c.need(request, "maternity")
        form = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
        c.check_csrf(request, form)
        action = (form.get("action") or [""])[0].strip()
        note = (form.get("note") or [""])[0].strip()[:2000]
        try:
            await run_in_threadpool(svc.review, c.engine, claim_id, action, actor=p.username, note=note)
            msg = "ok"
        except YibaoError as exc:
            msg = exc.message_en if c.lang(request) == "en" else exc.message_zh
        return RedirectResponse(f"/console/maternity/{claim_id}?msg=" + urllib.parse.quote(msg), status_code=303)
