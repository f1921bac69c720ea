"""Supervision enforcement case pages (案件办理): the workflow's next steps as forms, the history timeline."""

from __future__ import annotations

import urllib.parse
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from yibao.core.errors import YibaoError
from yibao.web.auth import Principal
from yibao.web.console import Console, ConsoleDep, Deny
from yibao.web.deps import FormDep, page

router = APIRouter()


def _case_svc(c: Console):
    from yibao.supervision.cases import CaseService

    return CaseService(c.engine)


def _case_actor(p: Principal):
    from yibao.supervision.cases import Actor

    return Actor(p.username, p.role, p.fixmedins_code)


def _case_visible(p: Principal, case) -> bool:
    scope = p.institution_scope()
    return scope is None or (case.subject_kind == "institution" and case.subject_code == scope)


def _case_msg(exc: YibaoError, lang: str) -> str:
    return exc.message_en if lang == "en" else exc.message_zh


@router.get("/supervision/cases")
def case_list_page(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("supervision"))], state: str = ""
) -> Response:
    svc = _case_svc(c)
    try:
        rows = [x for x in svc.list(state=state or None, limit=200) if _case_visible(p, x)]
    except YibaoError as exc:
        rows, msg = [], _case_msg(exc, c.lang(request))
    else:
        msg = request.query_params.get("msg", "")
    return c.render(
        request, "case.html", p, case=None, cases=rows, wf=svc.wf, msg=msg, may_open=p.role in svc.wf.intake_roles
    )


@router.get("/supervision/cases/{case_id}")
def case_page(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("supervision"))], case_id: int
) -> Response:
    from yibao.supervision.cases import ACTION_PARAMS, event_dict

    svc = _case_svc(c)
    try:
        case = svc.get(case_id)
    except YibaoError:
        raise Deny(404, message_key="not_found") from None
    if not _case_visible(p, case):
        raise Deny(403)
    return c.render(
        request,
        "case.html",
        p,
        case=case,
        wf=svc.wf,
        events=[event_dict(e) for e in svc.events(case_id)],
        actions=svc.next_actions(case, _case_actor(p)),
        params=ACTION_PARAMS,
        ranges=svc.ranges(case),
        agencies=svc.wf.agencies,
        violations=sorted(svc.bm.violations),
        msg=request.query_params.get("msg", ""),
    )


@router.post("/supervision/cases")
async def case_open_form(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("supervision"))], f: FormDep
) -> Response:
    try:
        cid = await run_in_threadpool(
            _case_svc(c).open_case,
            _case_actor(p),
            f.get("subject_kind", ""),
            f.get("subject_code", ""),
            f.get("clue_kind", ""),
            f.get("source", ""),
            loss_fen=f.get("loss_fen", "0"),
            note=f.get("note", "")[:2000],
        )
    except YibaoError as exc:
        return RedirectResponse(
            "/console/supervision/cases?msg=" + urllib.parse.quote(_case_msg(exc, c.lang(request))), status_code=303
        )
    return RedirectResponse(f"/console/supervision/cases/{cid}?msg=ok", status_code=303)


@router.post("/supervision/cases/{case_id}/step")
async def case_step_form(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("supervision"))], case_id: int, f: FormDep
) -> Response:
    from pydantic import ValidationError

    from yibao.supervision.api import StepIn, step_params

    action = f.pop("action", "")
    svc = _case_svc(c)

    def run() -> None:
        flags = {
            k: f.pop(k, "") in ("1", "on", "true")
            for k in ("first_offence", "corrected", "no_fault", "mitigating", "aggravating")
        }
        sanctions = [x for x in f.pop("sanctions", "").split(",") if x.strip()]
        try:
            body = StepIn.model_validate({**f, **flags, "sanctions": sanctions})
        except ValidationError as exc:
            from yibao.supervision.cases import CaseError

            err = exc.errors()[0]
            fld = ".".join(str(x) for x in err["loc"])
            raise CaseError(f"{fld}: {err['msg']}", f"{fld} 无效: {err['msg']}", field=fld) from None
        svc.perform(case_id, action, _case_actor(p), note=body.note[:2000], **step_params(svc, case_id, action, body))

    try:
        await run_in_threadpool(run)
        msg = "ok"
    except YibaoError as exc:
        msg = _case_msg(exc, c.lang(request))
    return RedirectResponse(f"/console/supervision/cases/{case_id}?msg=" + urllib.parse.quote(msg), status_code=303)
