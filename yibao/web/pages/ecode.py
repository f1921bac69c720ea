"""E-insurance code pages (医保电子凭证): the bureau's risk console and the insured person's own code page."""

from __future__ import annotations

import json
import urllib.parse
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import func, select

from yibao.codes import registry
from yibao.core import db
from yibao.core.errors import YibaoError
from yibao.ecode.models import EcodeBinding, EcodeBlock, EcodeRiskEvent, EcodeUse
from yibao.ecode.service import EcodeRefused
from yibao.web import excel
from yibao.web.auth import Principal, mask
from yibao.web.console import Console, ConsoleDep
from yibao.web.deps import FormDep, page

router = APIRouter()


@router.get("/ecode")
def ecode_admin(request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("ecode"))]) -> Response:
    with db.session_scope(c.engine) as s:
        events = list(s.scalars(select(EcodeRiskEvent).order_by(EcodeRiskEvent.id.desc()).limit(100)))
        blocks = list(
            s.scalars(select(EcodeBlock).where(EcodeBlock.active.is_(True)).order_by(EcodeBlock.blocked_at.desc()))
        )
        uses = list(s.scalars(select(EcodeUse).order_by(EcodeUse.id.desc()).limit(50)))
        counts = dict(s.execute(select(EcodeBinding.status, func.count()).group_by(EcodeBinding.status)).all())
        s.expunge_all()
    return c.render(
        request,
        "ecode_admin.html",
        p,
        events=events,
        blocks=blocks,
        uses=uses,
        counts=counts,
        msg=request.query_params.get("msg", ""),
    )


@router.post("/ecode/action")
def ecode_action(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("ecode"))], form: FormDep
) -> Response:
    psn, action = form.get("psn_no", ""), form.get("action", "")
    reason = form.get("reason", "console")[:200]
    try:
        if action == "block":
            c.ecode.block(psn, actor=p.username, reason=reason)
        elif action == "unblock":
            c.ecode.unblock(psn, actor=p.username, reason=reason)
        elif action == "unbind":
            c.ecode.force_unbind(psn, actor=p.username, reason=reason)
        msg = "ok"
    except YibaoError as exc:
        msg = exc.message_en if c.lang(request) == "en" else exc.message_zh
    return RedirectResponse("/console/ecode?msg=" + urllib.parse.quote(msg), status_code=303)


@router.get("/ecode/events.xlsx")
def ecode_events_xlsx(request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("ecode"))]) -> Response:
    rules = c.auth.cfg.masking
    with db.session_scope(c.engine) as s:
        rows = [
            [
                e.id,
                mask(e.psn_no, rules["psn_no"]),
                e.kind,
                e.detail_zh,
                e.detail_en,
                e.actions,
                e.detected_at.strftime("%Y-%m-%d %H:%M:%S"),
                e.reported_at.strftime("%Y-%m-%d %H:%M:%S") if e.reported_at else "",
                e.actor,
            ]
            for e in s.scalars(select(EcodeRiskEvent).order_by(EcodeRiskEvent.id))
        ]
    data = excel.workbook_bytes(
        [
            (
                "risk events 风险事件",
                [
                    "id",
                    "psn_no",
                    "kind",
                    "detail 说明",
                    "detail",
                    "actions 处置",
                    "detected_at",
                    "reported_at 上报时间",
                    "actor",
                ],
                rows,
            )
        ]
    )
    return Response(
        data, media_type=excel.XLSX, headers={"Content-Disposition": 'attachment; filename="ecode-events.xlsx"'}
    )


@router.post("/api/ecode/verify")
async def api_ecode_verify(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page(api=True))]
) -> Response:
    """Institution staff verify a code presented at their own institution (扫码核验)."""
    if p.role != "institution":
        return JSONResponse({"error": "institution staff only", "error_zh": "仅定点机构可核验"}, status_code=403)
    c.check_csrf(request)
    body = json.loads((await request.body()) or b"{}")
    try:
        v = c.ecode.verify(str(body.get("code", "")), fixmedins_code=p.fixmedins_code or "", purpose="console")
    except EcodeRefused as exc:
        return JSONResponse(
            {"ok": False, "error": exc.message_en, "error_zh": exc.message_zh, "field": exc.field}, status_code=400
        )
    return JSONResponse({"ok": True, "psn_no": mask(v.psn_no, c.auth.cfg.masking["psn_no"]), "relation": v.relation})


def mycode_page(
    c: Console, request: Request, p: Principal, msg: str = "", code: str = "", code_for: str = ""
) -> Response:
    acct = f"console:{p.username}"
    bindings = [b for b in c.ecode.bindings(acct) if b.status == "active"]
    with db.session_scope(c.engine) as s:
        rel = list(
            s.execute(
                select(registry.FamilyLink.relative_psn_no, registry.FamilyLink.relation, registry.Person.psn_name)
                .join(registry.Person, registry.Person.psn_no == registry.FamilyLink.relative_psn_no)
                .where(registry.FamilyLink.psn_no == (p.psn_no or ""))
            )
        )
    blocked = c.ecode.is_blocked(p.psn_no or "")
    qr = ""
    if code:
        import io as _io

        import segno

        buf = _io.BytesIO()
        segno.make(code, error="m").save(buf, kind="svg", scale=4, xmldecl=False, svgns=True, omitsize=False)
        qr = buf.getvalue().decode()
    resp = c.render(
        request,
        "mycode.html",
        p,
        bindings=bindings,
        relatives=rel,
        blocked=blocked,
        qr=qr,
        code=code,
        code_for=code_for,
        msg=msg,
        ttl=c.ecode.params.token.ttl_seconds,
    )
    if code:
        resp.headers["Cache-Control"] = "no-store"  # a live code: not in the browser's cache or history
    return resp


@router.get("/mycode")
def mycode(request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("mycode"))]) -> Response:
    return mycode_page(c, request, p, msg=request.query_params.get("msg", ""))


@router.post("/mycode/action")
async def mycode_action(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("mycode"))], form: FormDep
) -> Response:
    acct = f"console:{p.username}"
    g = form.get
    action = g("action", "")
    try:
        if action == "bind":
            c.ecode.bind(acct, p.psn_no or "", {"certno": g("certno", ""), "face": g("face", "")})
        elif action == "add_relative":
            c.ecode.add_relative(
                acct,
                g("relative_psn_no", ""),
                {"certno": g("certno", ""), "face": g("face", "")},
                mutual_aid=g("mutual_aid") == "1",
            )
        elif action == "mutual_aid":
            c.ecode.set_mutual_aid(acct, g("relative_psn_no", ""), g("on") == "1")
        elif action == "unbind":
            c.ecode.unbind(acct, g("psn_no") or (p.psn_no or ""))
        elif action == "generate":
            # the code is shown in this answer to the POST, never put in a URL (history, logs, Referer)
            who = g("psn_no") or (p.psn_no or "")
            code = await run_in_threadpool(c.ecode.generate, acct, who)
            return await run_in_threadpool(mycode_page, c, request, p, "", code, who)
        msg = "ok"
    except YibaoError as exc:
        msg = exc.message_en if c.lang(request) == "en" else exc.message_zh
    return RedirectResponse("/console/mycode?msg=" + urllib.parse.quote(msg), status_code=303)
