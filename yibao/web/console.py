"""The web console (运行监测控制台) and the public e-code pages: a FastAPI router with Jinja2 pages.

Mounted under ``/console`` into the service app (``yibao serve``) by
:func:`mount_console`.  Chinese first, English by ``/console/lang/en``.
Every page and API checks the caller's role (:mod:`yibao.web.auth`):
institution staff see only their own institution, the public only
themselves; personal data is masked unless a bureau user asks otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from yibao.core import db
from yibao.settlement import records
from yibao.codes import registry
from yibao.core.errors import YibaoError
from yibao.ecode.models import EcodeBinding, EcodeBlock, EcodeRiskEvent, EcodeUse
from yibao.ecode.service import EcodeRefused, EcodeService
from yibao.web import charts, excel, figures, labels
from yibao.web.auth import AuthError, AuthService, LoginThrottled, Principal, csrf_ok, csrf_token, mask
from yibao.web.i18n import LANGS, translator
from yibao.web.jobs import JobRunner

COOKIE = "yb_session"
LANG_COOKIE = "yb_lang"
PRE_COOKIE = "yb_login"  # random, before login: the login form's CSRF token is bound to it
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
STATIC_DIR = Path(__file__).resolve().parent / "static"


class _Deny(Exception):
    def __init__(self, status: int, redirect: str | None = None, message_key: str = "forbidden"):
        self.status, self.redirect, self.message_key = status, redirect, message_key


def _fmt_yuan(fen: Any) -> str:
    return labels.money(fen)  # ¥1,234.56 from integer fen; missing → "—"


class Console:
    def __init__(self, engine: Engine, *, auth: AuthService | None = None, ecode: EcodeService | None = None,
                 clock: Callable[[], dt.datetime] | None = None, data_dir: str | Path | None = None):
        self.engine = engine
        # the region's Parquet directory, for the analyses that run over it (payment, supervision queue)
        data_dir = data_dir or os.environ.get("YIBAO_CONSOLE_DATA")
        self.data_dir = Path(data_dir) if data_dir else None
        self.clock = clock or (lambda: dt.datetime.now(db.SHANGHAI))
        self.auth = auth or AuthService(engine, clock=self.clock)
        self.ecode = ecode or EcodeService(engine, clock=self.clock)
        self.jobs = JobRunner()
        self.env = Environment(loader=PackageLoader("yibao.web", "templates/console"), autoescape=select_autoescape(["html"]))
        self.env.filters["yuan"] = _fmt_yuan
        self.env.filters["num"] = labels.number
        self.router = APIRouter(prefix="/console", include_in_schema=False)
        self._routes()

    # --- plumbing -------------------------------------------------------------------------

    def who(self, request: Request) -> Principal | None:
        return self.auth.principal(request.cookies.get(COOKIE))

    def need(self, request: Request, page: str | None = None, *, api: bool = False) -> Principal:
        p = self.who(request)
        if p is None:
            raise _Deny(401, None if api else "/console/login?next=" + urllib.parse.quote(str(request.url.path)))
        if page is not None and not p.can(page):
            raise _Deny(403)
        return p

    def client_ip(self, request: Request) -> str:
        """The client's address; a trusted proxy's ``X-Forwarded-For`` names the client behind it."""
        peer = request.client.host if request.client else ""
        if peer in self.auth.cfg.trusted_proxies:
            fwd = request.headers.get("x-forwarded-for", "")
            hops = [h.strip() for h in fwd.split(",") if h.strip()]
            if hops:
                return hops[-1]
        return peer

    def secure_cookies(self, request: Request) -> bool:
        rule = self.auth.cfg.cookies.secure
        if rule != "auto":
            return rule == "always"
        return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"

    def set_cookie(self, request: Request, resp: Response, name: str, value: str, **kw: Any) -> None:
        resp.set_cookie(name, value, httponly=True, samesite="lax", secure=self.secure_cookies(request), **kw)

    def check_csrf(self, request: Request, form: dict[str, list[str]] | None = None, *, login: bool = False) -> None:
        """Every console POST carries the token of the page it came from (form field or ``X-CSRF-Token``)."""
        secret = request.cookies.get(PRE_COOKIE if login else COOKIE)
        presented = (form.get(CSRF_FIELD) or [""])[0] if form is not None else request.headers.get(CSRF_HEADER, "")
        if not csrf_ok(secret, presented):
            raise _Deny(403, message_key="csrf")

    @staticmethod
    def lang(request: Request) -> str:
        lang = request.cookies.get(LANG_COOKIE, "zh")
        return lang if lang in LANGS else "zh"

    def render(self, request: Request, template: str, p: Principal | None, status: int = 200, **ctx: Any) -> HTMLResponse:
        lang = self.lang(request)
        unmask = bool(p and p.rule.unmask and request.query_params.get("unmask") == "1")
        rules = self.auth.cfg.masking

        def m(kind: str, value: Any) -> str:
            return str(value or "") if unmask or kind not in rules else mask(str(value or ""), rules[kind])

        ctx.setdefault("csrf", csrf_token(request.cookies.get(COOKIE)))
        html = self.env.get_template(template).render(
            t=translator(lang), lang=lang, label=lambda name: labels.field(name, lang),
            val=lambda group, code: labels.value(group, code, lang),
            vals=lambda group, text: labels.values(group, text, lang), humanize=lambda text: labels.humanize(text, lang), p=p, m=m, unmasked=unmask, path=request.url.path,
            query=str(request.url.query), **ctx)
        return HTMLResponse(html, status_code=status)

    def _scope(self, p: Principal) -> str | None:
        return p.institution_scope()

    # --- routes -----------------------------------------------------------------------------

    def _routes(self) -> None:  # noqa: C901 - one place that lists every page
        r = self.router
        c = self

        def guarded(fn):
            import functools
            import inspect

            @functools.wraps(fn)
            async def wrapper(request: Request, *a, **kw):
                try:
                    if inspect.iscoroutinefunction(fn):
                        return await fn(request, *a, **kw)
                    return await run_in_threadpool(fn, request, *a, **kw)
                except _Deny as d:
                    if d.redirect:
                        return RedirectResponse(d.redirect, status_code=303)
                    if request.url.path.startswith("/console/api/") or d.status == 401:
                        return JSONResponse({"error": "login required" if d.status == 401 else "forbidden",
                                             "error_zh": "请先登录" if d.status == 401 else "无权访问"}, status_code=d.status)
                    return c.render(request, "error.html", c.who(request), status=d.status, code=d.status,
                                    message_key=d.message_key)

            return wrapper

        @r.get("/static/{name}")
        def static(name: str) -> Response:
            if name == charts.PLOTLY_JS:  # plotly.js from the installed plotly package (charts.py): no CDN
                return Response(charts.plotly_js(), media_type="application/javascript", headers={"Cache-Control": "max-age=86400"})
            if name == charts.PLOTLY_CSS:  # its style rules as a sheet: the CSP blocks the <style> plotly.js would add
                return Response(charts.plotly_css(), media_type="text/css", headers={"Cache-Control": "max-age=86400"})
            f = STATIC_DIR / name
            if "/" in name or ".." in name or not f.is_file():
                return Response(status_code=404)
            media = {"css": "text/css", "js": "application/javascript", "svg": "image/svg+xml"}.get(f.suffix[1:], "application/octet-stream")
            return Response(f.read_bytes(), media_type=media, headers={"Cache-Control": "max-age=3600"})

        @r.get("/lang/{lang}")
        def set_lang(request: Request, lang: str, next: str = "/console/") -> Response:
            resp = RedirectResponse(_local(next), status_code=303)
            resp.set_cookie(LANG_COOKIE, lang if lang in LANGS else "zh", samesite="lax", secure=c.secure_cookies(request))
            return resp

        def login_page(request: Request, nxt: str, error: str = "", status: int = 200) -> Response:
            import secrets

            pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
            resp = c.render(request, "login.html", None, status=status, next=_local(nxt), error=error, csrf=csrf_token(pre))
            if request.cookies.get(PRE_COOKIE) != pre:
                c.set_cookie(request, resp, PRE_COOKIE, pre, max_age=3600)
            return resp

        @r.get("/login")
        def login_form(request: Request, next: str = "/console/", error: str = "") -> Response:
            return login_page(request, next, error)

        @r.post("/login")
        async def login(request: Request) -> Response:
            form = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
            user, pw = (form.get("username") or [""])[0], (form.get("password") or [""])[0]
            nxt = (form.get("next") or ["/console/"])[0]
            lang = c.lang(request)
            if not csrf_ok(request.cookies.get(PRE_COOKIE), (form.get(CSRF_FIELD) or [""])[0]):
                return login_page(request, nxt, translator(lang)("csrf"), status=403)
            try:
                token = await run_in_threadpool(c.auth.login, user, pw, ip=c.client_ip(request))
            except AuthError as exc:
                resp = login_page(request, nxt, exc.message_en if lang == "en" else exc.message_zh,
                                  status=429 if isinstance(exc, LoginThrottled) else 401)
                if isinstance(exc, LoginThrottled):
                    resp.headers["Retry-After"] = str(exc.retry_after)
                return resp
            resp = RedirectResponse(_local(nxt), status_code=303)
            c.set_cookie(request, resp, COOKIE, token, max_age=c.auth.cfg.session.ttl_minutes * 60)
            return resp

        @r.post("/logout")
        async def logout(request: Request) -> Response:
            form = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
            if not csrf_ok(request.cookies.get(COOKIE), (form.get(CSRF_FIELD) or [""])[0]):
                return c.render(request, "error.html", c.who(request), status=403, code=403, message_key="csrf")
            await run_in_threadpool(c.auth.logout, request.cookies.get(COOKIE))
            resp = RedirectResponse("/console/login", status_code=303)
            resp.delete_cookie(COOKIE, secure=c.secure_cookies(request), httponly=True, samesite="lax")
            return resp

        @r.get("/")
        @guarded
        def home(request: Request) -> Response:
            p = c.need(request)
            return RedirectResponse(f"/console/{p.pages[0]}", status_code=303)

        # --- fund -----------------------------------------------------------------------------

        @r.get("/fund")
        @guarded
        def fund(request: Request, year: int | None = None) -> Response:
            p = c.need(request, "fund")
            f = figures.fund_figures(c.engine, year=year, scope=c._scope(p))
            lang = c.lang(request)
            i = 1 if lang == "en" else 0
            months = f.group("month")
            schemes = f.group("insutype")
            levels = f.group("hosp_lv")
            layer_fields = list(figures.SHARE_FIELDS)
            from yibao.settlement.fundyear import FUND_FIELDS

            layer_names = [FUND_FIELDS[k][1 - i] for k in layer_fields]
            wan = "万元" if i == 0 else "¥10k"
            month_chart = charts.bar_chart(
                [m for m, _ in months],
                {(figures.SCHEME_NAMES.get(s, (s, s))[i]): [int(next((a["fund_pay_sumamt"] for (mm, ss), a in _by2(f, "month", "insutype") if mm == m and ss == s), 0)) for m, _ in months]
                 for s, _ in schemes}, stacked=True, unit=wan, money=charts.WAN, chart_id="chart-month",
                title=translator(lang)("fund_by_month"))
            layer_chart = charts.hbar_chart(layer_names, [int(f.totals.get(k, 0)) for k in layer_fields],
                                            unit=wan, money=charts.WAN, chart_id="chart-layer")
            level_chart = charts.donut_chart([figures.LEVEL_NAMES.get(lv, (str(lv), str(lv)))[i] for lv, _ in levels],
                                             [int(a["fund_pay_sumamt"]) for _, a in levels], unit=wan, money=charts.WAN,
                                             chart_id="chart-level")
            return c.render(request, "fund.html", p, f=f, months=months, schemes=schemes, levels=levels,
                            layer_fields=layer_fields, layer_names=layer_names, month_chart=month_chart,
                            layer_chart=layer_chart, level_chart=level_chart, scheme_names=figures.SCHEME_NAMES,
                            level_names=figures.LEVEL_NAMES, li=i, insts=figures.institutions(c.engine) if p.fixmedins_code else {})

        @r.get("/fund.xlsx")
        @guarded
        def fund_xlsx(request: Request, year: int | None = None) -> Response:
            p = c.need(request, "fund")
            f = figures.fund_figures(c.engine, year=year, scope=c._scope(p))
            from yibao.settlement.fundyear import FUND_FIELDS

            heads = ["month 月份", "insutype 险种", "hosp_lv 机构等级", "claims 结算笔数", "medfee_sumamt 医疗总费用 (元)",
                     *[f"{k} {FUND_FIELDS[k][1]} (元)" for k in figures.SHARE_FIELDS], "fund_pay_sumamt 基金支付合计 (元)"]
            rows = [[r["month"], r["insutype"], r["hosp_lv"], int(r["claims"]), excel.yuan(r["medfee_sumamt"]),
                     *[excel.yuan(r[k]) for k in figures.SHARE_FIELDS], excel.yuan(r["fund_pay_sumamt"])] for r in f.rows]
            data = excel.workbook_bytes([(f"fund {f.year}", heads, rows)], note=excel.SYNTHETIC_NOTE if f.synthetic else "")
            return Response(data, media_type=excel.XLSX,
                            headers={"Content-Disposition": f'attachment; filename="fund-{f.year}.xlsx"'})

        @r.get("/api/fund")
        @guarded
        def api_fund(request: Request, year: int | None = None) -> Response:
            p = c.need(request, "fund", api=True)
            f = figures.fund_figures(c.engine, year=year, scope=c._scope(p))
            return JSONResponse({"year": f.year, "scope": f.scope, "synthetic": f.synthetic, "totals_fen": f.totals,
                                 "rows": [{k: (int(v) if isinstance(v, (int,)) else v) for k, v in r.items()} for r in f.rows]})

        # --- settlements -------------------------------------------------------------------------

        def settle_scope(p: Principal) -> tuple[str | None, str | None]:
            if p.role == "public":
                return "\0none" if not p.psn_no else None, p.psn_no or "\0none"
            return c._scope(p), None

        @r.get("/settlement")
        @guarded
        def settlement_list(request: Request, setl_id: str = "", psn_no: str = "", page: int = 1) -> Response:
            p = c.need(request, "settlement")
            scope, own = settle_scope(p)
            if setl_id:
                rows, total = figures.find_settlements(c.engine, scope=scope, psn_no=own, setl_id=setl_id.strip(), limit=1)
                if rows:
                    return RedirectResponse(f"/console/settlement/{rows[0].setl_id}", status_code=303)
            size = c.auth.cfg.list_page_rows
            page = max(1, page)
            rows, total = figures.find_settlements(c.engine, scope=scope, psn_no=own, psn_query=psn_no.strip(),
                                                   limit=size, offset=(page - 1) * size)
            return c.render(request, "settlement_list.html", p, rows=rows, total=total, page=page, size=size,
                            setl_id=setl_id, psn_no=psn_no, missing=bool(setl_id), insts=figures.institutions(c.engine))

        @r.get("/settlement/{setl_id}")
        @guarded
        def settlement_detail(request: Request, setl_id: str) -> Response:
            p = c.need(request, "settlement")
            scope, own = settle_scope(p)
            d = figures.settlement_detail(c.engine, setl_id)
            row = d["row"] if d else None
            if row is None or (scope is not None and row.fixmedins_code != scope) or (own is not None and row.psn_no != own):
                return c.render(request, "error.html", p, status=404, code=404, message_key="not_found")
            total = sum(line.fen for line in d["lines"])
            return c.render(request, "settlement_detail.html", p, d=d, total=total)

        @r.get("/encounter/{mdtrt_id}")
        @guarded
        def encounter(request: Request, mdtrt_id: str) -> Response:
            """An encounter (就诊, from the supervision work queue) opens its latest settlement, within the caller's scope."""
            p = c.need(request, "settlement")
            scope, own = settle_scope(p)
            S = records.Settlement
            q = select(S.setl_id).where(S.mdtrt_id == mdtrt_id)
            if scope is not None:
                q = q.where(S.fixmedins_code == scope)
            if own is not None:
                q = q.where(S.psn_no == own)
            with c.engine.connect() as conn:
                setl_id = conn.execute(q.order_by(S.setl_time.desc()).limit(1)).scalar()
            if setl_id is None:
                return c.render(request, "error.html", p, status=404, code=404, message_key="not_found")
            return RedirectResponse(f"/console/settlement/{urllib.parse.quote(setl_id)}", status_code=303)

        @r.get("/api/settlement/{setl_id}")
        @guarded
        def api_settlement(request: Request, setl_id: str) -> Response:
            p = c.need(request, "settlement", api=True)
            scope, own = settle_scope(p)
            d = figures.settlement_detail(c.engine, setl_id)
            row = d["row"] if d else None
            if row is None or (scope is not None and row.fixmedins_code != scope) or (own is not None and row.psn_no != own):
                return JSONResponse({"error": "not found", "error_zh": "未找到"}, status_code=404)
            rules = c.auth.cfg.masking
            unmask = p.rule.unmask and request.query_params.get("unmask") == "1"
            person = d["person"]
            return JSONResponse({
                "setl_id": row.setl_id, "psn_no": row.psn_no if unmask else mask(row.psn_no, rules["psn_no"]),
                "psn_name": (person.psn_name if unmask else mask(person.psn_name, rules["psn_name"])) if person else "",
                "fixmedins_code": row.fixmedins_code, "medfee_sumamt_fen": int(row.medfee_sumamt),
                "shares": [{"field": x.field, "fen": x.fen, "rule_zh": x.rule_zh, "rule_en": x.rule_en} for x in d["lines"]],
                "trace": d["trace"]})

        def _settle_rows(p: Principal, psn_query: str = ""):
            scope, own = settle_scope(p)
            S = records.Settlement
            q = select(S.setl_id, S.mdtrt_id, S.psn_no, S.fixmedins_code, S.setl_time, S.insutype, S.med_type,
                       S.benefit_category, S.medfee_sumamt, *[getattr(S, k) for k in figures.SHARE_FIELDS], S.fund_pay_sumamt,
                       S.refd_setl_flag)
            cq = select(func.count()).select_from(S)
            for cond in ([S.fixmedins_code == scope] if scope is not None else []) + ([S.psn_no == own] if own else []) + \
                    ([S.psn_no == psn_query] if psn_query else []):
                q, cq = q.where(cond), cq.where(cond)
            return q.order_by(S.setl_time, S.setl_id), cq

        def _settle_sheet(p: Principal, q, job=None):
            rules = c.auth.cfg.masking
            heads = ["setl_id", "mdtrt_id", "psn_no 人员编号", "fixmedins_code", "setl_time 结算时间", "insutype", "med_type",
                     "benefit_category", "medfee_sumamt (元)", *[f"{k} (元)" for k in figures.SHARE_FIELDS], "fund_pay_sumamt (元)",
                     "refd_setl_flag 冲销"]

            def rows():
                with c.engine.connect() as conn:
                    for n, r in enumerate(conn.execution_options(yield_per=2000).execute(q), start=1):
                        if job is not None:
                            job.done = n
                        yield [r.setl_id, r.mdtrt_id, mask(r.psn_no, rules["psn_no"]), r.fixmedins_code,
                               r.setl_time.astimezone(db.SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"), r.insutype, r.med_type,
                               r.benefit_category, excel.yuan(r.medfee_sumamt), *[excel.yuan(getattr(r, k)) for k in figures.SHARE_FIELDS],
                               excel.yuan(r.fund_pay_sumamt), "是" if r.refd_setl_flag else ""]

            return excel.workbook_bytes([("settlements 结算", heads, rows())], note=excel.SYNTHETIC_NOTE)

        @r.get("/settlement.xlsx")
        @guarded
        def settlement_xlsx(request: Request, psn_no: str = "") -> Response:
            p = c.need(request, "settlement")
            q, cq = _settle_rows(p, psn_no.strip())
            with c.engine.connect() as conn:
                n = int(conn.execute(cq).scalar() or 0)
            if n > c.auth.cfg.export_sync_max_rows:
                return JSONResponse({"error": f"{n} rows: start a background export job", "error_zh": f"共 {n} 行, 请使用后台导出任务",
                                     "rows": n}, status_code=413)
            return Response(_settle_sheet(p, q), media_type=excel.XLSX,
                            headers={"Content-Disposition": 'attachment; filename="settlements.xlsx"'})

        @r.post("/jobs/export-settlements")
        @guarded
        def start_export(request: Request, psn_no: str = "") -> Response:
            p = c.need(request, "settlement", api=True)
            c.check_csrf(request)
            q, cq = _settle_rows(p, psn_no.strip())
            with c.engine.connect() as conn:
                n = int(conn.execute(cq).scalar() or 0)
            job = c.jobs.start(p.username, "export-settlements", n, "settlements.xlsx", lambda j: _settle_sheet(p, q, j))
            return JSONResponse(job.as_dict())

        @r.get("/jobs/{job_id}")
        @guarded
        def job_status(request: Request, job_id: str) -> Response:
            p = c.need(request, api=True)
            j = c.jobs.get(job_id, p.username)
            return JSONResponse(j.as_dict()) if j else JSONResponse({"error": "no such job"}, status_code=404)

        @r.get("/jobs/{job_id}/file")
        @guarded
        def job_file(request: Request, job_id: str) -> Response:
            p = c.need(request, api=True)
            j = c.jobs.get(job_id, p.username)
            if j is None or j.status != "done":
                return JSONResponse({"error": "not ready"}, status_code=404)
            return Response(j.result, media_type=excel.XLSX, headers={"Content-Disposition": f'attachment; filename="{j.filename}"'})

        # --- other subsystems --------------------------------------------------------------------

        from yibao.web import modules

        for name in ("procurement", "payment", "supervision"):
            def make(name: str):
                @guarded
                def page(request: Request) -> Response:
                    p = c.need(request, name)
                    view = modules.view(name, c.engine, p, c.lang(request), c.data_dir)
                    return c.render(request, "module.html", p, name=name, view=view)

                @guarded
                def xlsx(request: Request) -> Response:
                    p = c.need(request, name)
                    view = modules.view(name, c.engine, p, c.lang(request), c.data_dir)
                    if view is None or not view.tables:
                        return JSONResponse({"error": "no data", "error_zh": "暂无数据"}, status_code=404)
                    data = excel.workbook_bytes([(t.title, t.headers, t.rows) for t in view.tables],
                                                note=excel.SYNTHETIC_NOTE if view.synthetic else "")
                    return Response(data, media_type=excel.XLSX, headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})

                r.add_api_route(f"/{name}", page, methods=["GET"])
                r.add_api_route(f"/{name}.xlsx", xlsx, methods=["GET"])

            make(name)

        # --- supervision: enforcement case pages (案件办理) ---------------------------------------------
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
            return c.render(request, "case.html", p, case=None, cases=rows, wf=svc.wf, msg=msg,
                            may_open=p.role in svc.wf.intake_roles)

        @r.get("/supervision/cases/{case_id}")
        @guarded
        def case_page(request: Request, case_id: int) -> Response:
            from yibao.supervision.cases import ACTION_PARAMS, event_dict

            p = c.need(request, "supervision")
            svc = _case_svc()
            try:
                case = svc.get(case_id)
            except YibaoError:
                raise _Deny(404, message_key="not_found")
            if not _case_visible(p, case):
                raise _Deny(403)
            return c.render(request, "case.html", p, case=case, wf=svc.wf, events=[event_dict(e) for e in svc.events(case_id)],
                            actions=svc.next_actions(case, _case_actor(p)), params=ACTION_PARAMS, ranges=svc.ranges(case),
                            agencies=svc.wf.agencies, violations=sorted(svc.bm.violations), msg=request.query_params.get("msg", ""))

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
                cid = await run_in_threadpool(_case_svc().open_case, _case_actor(p), f.get("subject_kind", ""), f.get("subject_code", ""),
                                              f.get("clue_kind", ""), f.get("source", ""), loss_fen=f.get("loss_fen", "0"), note=f.get("note", "")[:2000])
            except YibaoError as exc:
                return RedirectResponse("/console/supervision/cases?msg=" + urllib.parse.quote(_case_msg(exc, c.lang(request))), status_code=303)
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
                flags = {k: f.pop(k, "") in ("1", "on", "true") for k in ("first_offence", "corrected", "no_fault", "mitigating", "aggravating")}
                sanctions = [x for x in f.pop("sanctions", "").split(",") if x.strip()]
                try:
                    body = StepIn(**f, **flags, sanctions=sanctions)
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

        # --- e-code: bureau risk console ----------------------------------------------------------

        @r.get("/ecode")
        @guarded
        def ecode_admin(request: Request) -> Response:
            p = c.need(request, "ecode")
            with db.session_scope(c.engine) as s:
                events = list(s.scalars(select(EcodeRiskEvent).order_by(EcodeRiskEvent.id.desc()).limit(100)))
                blocks = list(s.scalars(select(EcodeBlock).where(EcodeBlock.active.is_(True)).order_by(EcodeBlock.blocked_at.desc())))
                uses = list(s.scalars(select(EcodeUse).order_by(EcodeUse.id.desc()).limit(50)))
                counts = dict(s.execute(select(EcodeBinding.status, func.count()).group_by(EcodeBinding.status)).all())
                s.expunge_all()
            return c.render(request, "ecode_admin.html", p, events=events, blocks=blocks, uses=uses, counts=counts,
                            msg=request.query_params.get("msg", ""))

        @r.post("/ecode/action")
        @guarded
        async def ecode_action(request: Request) -> Response:
            p = c.need(request, "ecode")
            form = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
            c.check_csrf(request, form)
            psn, action = (form.get("psn_no") or [""])[0].strip(), (form.get("action") or [""])[0]
            reason = (form.get("reason") or ["console"])[0][:200]
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

        @r.get("/ecode/events.xlsx")
        @guarded
        def ecode_events_xlsx(request: Request) -> Response:
            c.need(request, "ecode")
            rules = c.auth.cfg.masking
            with db.session_scope(c.engine) as s:
                rows = [[e.id, mask(e.psn_no, rules["psn_no"]), e.kind, e.detail_zh, e.detail_en, e.actions,
                         e.detected_at.strftime("%Y-%m-%d %H:%M:%S"), e.reported_at.strftime("%Y-%m-%d %H:%M:%S") if e.reported_at else "",
                         e.actor] for e in s.scalars(select(EcodeRiskEvent).order_by(EcodeRiskEvent.id))]
            data = excel.workbook_bytes([("risk events 风险事件", ["id", "psn_no", "kind", "detail 说明", "detail", "actions 处置",
                                                                 "detected_at", "reported_at 上报时间", "actor"], rows)])
            return Response(data, media_type=excel.XLSX, headers={"Content-Disposition": 'attachment; filename="ecode-events.xlsx"'})

        @r.post("/api/ecode/verify")
        @guarded
        async def api_ecode_verify(request: Request) -> Response:
            """Institution staff verify a code presented at their own institution (扫码核验)."""
            p = c.need(request, api=True)
            if p.role != "institution":
                return JSONResponse({"error": "institution staff only", "error_zh": "仅定点机构可核验"}, status_code=403)
            c.check_csrf(request)
            body = json.loads((await request.body()) or b"{}")
            try:
                v = c.ecode.verify(str(body.get("code", "")), fixmedins_code=p.fixmedins_code or "", purpose="console")
            except EcodeRefused as exc:
                return JSONResponse({"ok": False, "error": exc.message_en, "error_zh": exc.message_zh, "field": exc.field}, status_code=400)
            return JSONResponse({"ok": True, "psn_no": mask(v.psn_no, c.auth.cfg.masking["psn_no"]), "relation": v.relation})

        # --- page groups contributed by the subsystems (yibao/web/pages/) --------------------------

        from yibao.web import pages

        pages.mount_all(c, r, guarded)

        # --- e-code: the insured person's own pages -----------------------------------------------

        def mycode_page(request: Request, p: Principal, msg: str = "", code: str = "", code_for: str = "") -> Response:
            acct = f"console:{p.username}"
            bindings = [b for b in c.ecode.bindings(acct) if b.status == "active"]
            with db.session_scope(c.engine) as s:
                rel = list(s.execute(select(registry.FamilyLink.relative_psn_no, registry.FamilyLink.relation, registry.Person.psn_name)
                                     .join(registry.Person, registry.Person.psn_no == registry.FamilyLink.relative_psn_no)
                                     .where(registry.FamilyLink.psn_no == (p.psn_no or ""))))
            blocked = c.ecode.is_blocked(p.psn_no or "")
            qr = ""
            if code:
                import io as _io

                import segno

                buf = _io.BytesIO()
                segno.make(code, error="m").save(buf, kind="svg", scale=4, xmldecl=False, svgns=True, omitsize=False)
                qr = buf.getvalue().decode()
            resp = c.render(request, "mycode.html", p, bindings=bindings, relatives=rel, blocked=blocked, qr=qr,
                            code=code, code_for=code_for, msg=msg, ttl=c.ecode.params.token.ttl_seconds)
            if code:
                resp.headers["Cache-Control"] = "no-store"  # a live code: not in the browser's cache or history
            return resp

        @r.get("/mycode")
        @guarded
        def mycode(request: Request) -> Response:
            p = c.need(request, "mycode")
            return mycode_page(request, p, msg=request.query_params.get("msg", ""))

        @r.post("/mycode/action")
        @guarded
        async def mycode_action(request: Request) -> Response:
            p = c.need(request, "mycode")
            acct = f"console:{p.username}"
            form = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
            c.check_csrf(request, form)
            g = lambda k: (form.get(k) or [""])[0].strip()  # noqa: E731
            action = g("action")
            try:
                if action == "bind":
                    c.ecode.bind(acct, p.psn_no or "", {"certno": g("certno"), "face": g("face")})
                elif action == "add_relative":
                    c.ecode.add_relative(acct, g("relative_psn_no"), {"certno": g("certno"), "face": g("face")},
                                         mutual_aid=g("mutual_aid") == "1")
                elif action == "mutual_aid":
                    c.ecode.set_mutual_aid(acct, g("relative_psn_no"), g("on") == "1")
                elif action == "unbind":
                    c.ecode.unbind(acct, g("psn_no") or (p.psn_no or ""))
                elif action == "generate":
                    # the code is shown in this answer to the POST, never put in a URL (history, logs, Referer)
                    who = g("psn_no") or (p.psn_no or "")
                    code = await run_in_threadpool(c.ecode.generate, acct, who)
                    return await run_in_threadpool(mycode_page, request, p, "", code, who)
                msg = "ok"
            except YibaoError as exc:
                msg = exc.message_en if c.lang(request) == "en" else exc.message_zh
            return RedirectResponse("/console/mycode?msg=" + urllib.parse.quote(msg), status_code=303)


def _local(target: str) -> str:
    """Only a path inside the console may be a redirect target (no open redirect: not ``//host``, not ``/console.evil``)."""
    if target == "/console" or (target.startswith("/console/") and not target.startswith("/console//") and "\\" not in target):
        return target
    return "/console/"


def _by2(f: figures.FundFigures, k1: str, k2: str) -> list[tuple[tuple[Any, Any], dict[str, int]]]:
    out: dict[tuple, dict[str, int]] = {}
    for r in f.rows:
        acc = out.setdefault((r[k1], r[k2]), {"fund_pay_sumamt": 0, "claims": 0})
        acc["fund_pay_sumamt"] += int(r["fund_pay_sumamt"] or 0)
        acc["claims"] += int(r["claims"] or 0)
    return list(out.items())


def mount_console(app: FastAPI, iface_or_engine: Any, *, clock: Callable[[], dt.datetime] | None = None) -> Console:
    """Mount the console at ``/console`` on ``app`` (an Interface or an Engine gives the database)."""
    engine = getattr(iface_or_engine, "engine", iface_or_engine)
    clock = clock or getattr(iface_or_engine, "clock", None)
    console = Console(engine, clock=clock)
    app.include_router(console.router)
    app.state.console = console
    return console
