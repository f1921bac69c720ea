"""Supervision enforcement case pages (案件办理): the workflow's next steps as forms, the history timeline."""

from __future__ import annotations

import urllib.parse
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from yibao.core.errors import YibaoError
from yibao.web.auth import Principal
from yibao.web.console import CSRF_FIELD, _Deny


def mount(c: Any, r: Any, guarded: Any) -> None:
    # the workflow's next steps as forms (CSRF token in each), the history timeline; the role checks are the
    # workflow's (case_workflow.yaml), the same as the CLI's and the REST router's

    def _case_svc():
        from yibao.supervision.cases import CaseService

        return CaseService(c.engine)

    def _case_actor(p: Principal):
        from yibao.supervision.cases import Actor

        return Actor(p.username, p.role, p.fixmedins_code)

    def _case_visible(p: Principal, case) -> bool:
        scope = c._scope(p)
        return scope is None or (case.subject_kind == "institution" and case.subject_code == scope)

    def _case_msg(exc: YibaoError, lang: str) -> str:
        return exc.message_en if lang == "en" else exc.message_zh

    @r.get("/supervision/cases")
    @guarded
    def case_list_page(request: Request, state: str = "") -> Response:
        p = c.need(request, "supervision")
        svc = _case_svc()
        try:
            rows = [x for x in svc.list(state=state or None, limit=200) if _case_visible(p, x)]
        except YibaoError as exc:
            rows, msg = [], _case_msg(exc, c.lang(request))
        else:
            msg = request.query_params.get("msg", "")
        return c.render(
            request, "case.html", p, case=None, cases=rows, wf=svc.wf, msg=msg, may_open=p.role in svc.wf.intake_roles
        )

    @r.get("/supervision/cases/{case_id}")
    @guarded
    def case_page(request: Request, case_id: int) -> Response:
        from yibao.supervision.cases import ACTION_PARAMS, event_dict

        p = c.need(request, "supervision")
        svc = _case_svc()
        try:
            case = svc.get(case_id)
        except YibaoError:
            raise _Deny(404, message_key="not_found") from None
        if not _case_visible(p, case):
            raise _Deny(403)
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

    def _form(form: dict[str, list[str]]) -> dict[str, str]:
        return {k: v[0].strip() for k, v in form.items() if v and v[0].strip() != "" and k != CSRF_FIELD}

    @r.post("/supervision/cases")
    @guarded
    async def case_open_form(request: Request) -> Response:
        p = c.need(request, "supervision")
        form = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
        c.check_csrf(request, form)
        f = _form(form)
        try:
            cid = await run_in_threadpool(
                _case_svc().open_case,
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

    @r.post("/supervision/cases/{case_id}/step")
    @guarded
    async def case_step_form(request: Request, case_id: int) -> Response:
        from pydantic import ValidationError

        from yibao.supervision.api import StepIn, step_params

        p = c.need(request, "supervision")
        form = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
        c.check_csrf(request, form)
        f = _form(form)
        action = f.pop("action", "")
        svc = _case_svc()

        def run() -> None:
            flags = {
                k: f.pop(k, "") in ("1", "on", "true")
                for k in ("first_offence", "corrected", "no_fault", "mitigating", "aggravating")
            }
            sanctions = [x for x in f.pop("sanctions", "").split(",") if x.strip()]
            try:
                body = StepIn(**f, **flags, sanctions=sanctions)
            except ValidationError as exc:
                from yibao.supervision.cases import CaseError

                err = exc.errors()[0]
                fld = ".".join(str(x) for x in err["loc"])
                raise CaseError(f"{fld}: {err['msg']}", f"{fld} 无效: {err['msg']}", field=fld) from None
            svc.perform(
                case_id, action, _case_actor(p), note=body.note[:2000], **step_params(svc, case_id, action, body)
            )

        try:
            await run_in_threadpool(run)
            msg = "ok"
        except YibaoError as exc:
            msg = _case_msg(exc, c.lang(request))
        return RedirectResponse(f"/console/supervision/cases/{case_id}?msg=" + urllib.parse.quote(msg), status_code=303)
