"""The web console (运行监测控制台) and the public e-code pages: a FastAPI router with Jinja2 pages.

Mounted under ``/console`` into the service app (``yibao serve``) by
:func:`mount_console`.  Chinese first, English by ``/console/lang/en``.
Every page and API checks the caller's role (:mod:`yibao.web.auth`):
institution staff see only their own institution, the public only
themselves; personal data is masked unless a bureau user asks otherwise.
"""

from __future__ import annotations

import datetime as dt
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.engine import Engine

from yibao.core import db
from yibao.ecode.service import EcodeService
from yibao.web import charts, labels
from yibao.web.auth import (
    AuthError,
    AuthService,
    LoginThrottled,
    Principal,
    csrf_ok,
    csrf_token,
    mask,
)
from yibao.web.deps import get_console, page
from yibao.web.i18n import LANGS, translator
from yibao.web.jobs import JobRunner

COOKIE = "yb_session"
LANG_COOKIE = "yb_lang"
PRE_COOKIE = "yb_login"  # random, before login: the login form's CSRF token is bound to it
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
STATIC_DIR = Path(__file__).resolve().parent / "static"


class Deny(Exception):
    """A console request refused: 401 (sign in; a page redirects to the login form), 403 or 404."""

    def __init__(self, status: int, redirect: str | None = None, message_key: str = "forbidden"):
        self.status, self.redirect, self.message_key = status, redirect, message_key


_Deny = Deny  # the name page modules written before the dependencies used


class Console:
    def __init__(
        self,
        engine: Engine,
        *,
        auth: AuthService | None = None,
        ecode: EcodeService | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        data_dir: str | Path | None = None,
    ):
        self.engine = engine
        # the region's Parquet directory, for the analyses that run over it (payment, supervision queue)
        data_dir = data_dir or os.environ.get("YIBAO_CONSOLE_DATA")
        self.data_dir = Path(data_dir) if data_dir else None
        self.clock = clock or (lambda: dt.datetime.now(db.SHANGHAI))
        self.auth = auth or AuthService(engine, clock=self.clock)
        self.ecode = ecode or EcodeService(engine, clock=self.clock)
        self.jobs = JobRunner()
        self.env = Environment(
            loader=PackageLoader("yibao.web", "templates/console"), autoescape=select_autoescape(["html"])
        )
        self.env.filters["yuan"] = labels.money  # ¥1,234.56 from integer fen; missing → "—"
        self.env.filters["num"] = labels.number
        self.router = APIRouter(prefix="/console", include_in_schema=False)
        self._routes()

    # --- plumbing -------------------------------------------------------------------------

    def who(self, request: Request) -> Principal | None:
        return self.auth.principal(request.cookies.get(COOKIE))

    def need(self, request: Request, page: str | None = None, *, api: bool = False) -> Principal:
        p = self.who(request)
        if p is None:
            raise Deny(401, None if api else "/console/login?next=" + urllib.parse.quote(str(request.url.path)))
        if page is not None and not p.can(page):
            raise Deny(403)
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
        return (
            request.url.scheme == "https"
            or request.headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"
        )

    def set_cookie(self, request: Request, resp: Response, name: str, value: str, **kw: Any) -> None:
        resp.set_cookie(name, value, httponly=True, samesite="lax", secure=self.secure_cookies(request), **kw)

    def check_csrf(
        self, request: Request, presented: str | dict[str, list[str]] | None = None, *, login: bool = False
    ) -> None:
        """Every console POST carries the token of the page it came from: the form field's value (``presented``; a
        ``parse_qs`` dict is read too) or, when None, the ``X-CSRF-Token`` header."""
        secret = request.cookies.get(PRE_COOKIE if login else COOKIE)
        if isinstance(presented, dict):
            presented = (presented.get(CSRF_FIELD) or [""])[0]
        if presented is None:
            presented = request.headers.get(CSRF_HEADER, "")
        if not csrf_ok(secret, presented):
            raise Deny(403, message_key="csrf")

    def deny_response(self, request: Request, d: Deny) -> Response:
        """The answer to a refusal: a redirect, a JSON error (``/console/api/…`` and 401) or an error page."""
        if d.redirect:
            return RedirectResponse(d.redirect, status_code=303)
        if request.url.path.startswith("/console/api/") or d.status == 401:
            return JSONResponse(
                {
                    "error": "login required" if d.status == 401 else "forbidden",
                    "error_zh": "请先登录" if d.status == 401 else "无权访问",
                },
                status_code=d.status,
            )
        return self.render(
            request, "error.html", self.who(request), status=d.status, code=d.status, message_key=d.message_key
        )

    @staticmethod
    def lang(request: Request) -> str:
        lang = request.cookies.get(LANG_COOKIE, "zh")
        return lang if lang in LANGS else "zh"

    def render(
        self, request: Request, template: str, p: Principal | None, status: int = 200, **ctx: Any
    ) -> HTMLResponse:
        lang = self.lang(request)
        unmask = bool(p and p.rule.unmask and request.query_params.get("unmask") == "1")
        rules = self.auth.cfg.masking

        def m(kind: str, value: Any) -> str:
            return str(value or "") if unmask or kind not in rules else mask(str(value or ""), rules[kind])

        ctx.setdefault("csrf", csrf_token(request.cookies.get(COOKIE)))
        html = self.env.get_template(template).render(
            t=translator(lang),
            lang=lang,
            label=lambda name: labels.field(name, lang),
            val=lambda group, code: labels.value(group, code, lang),
            vals=lambda group, text: labels.values(group, text, lang),
            humanize=lambda text: labels.humanize(text, lang),
            p=p,
            m=m,
            unmasked=unmask,
            path=request.url.path,
            query=str(request.url.query),
            **ctx,
        )
        return HTMLResponse(html, status_code=status)

    def _scope(self, p: Principal) -> str | None:
        return p.institution_scope()

    # --- routes -----------------------------------------------------------------------------

    def _routes(self) -> None:
        from yibao.web import pages

        self.router.include_router(session_router)
        pages.mount_all(self, self.router)


ConsoleDep = Annotated[Console, Depends(get_console)]

# Sign-in, language, the home redirect and plotly.js: the console's own routes (the pages are in yibao/web/pages/).
session_router = APIRouter()


@session_router.get(f"/static/{charts.PLOTLY_JS}")
def plotly_js() -> Response:
    """plotly.js from the installed plotly package (charts.py): no CDN."""
    return Response(charts.plotly_js(), media_type="application/javascript", headers={"Cache-Control": "max-age=86400"})


@session_router.get(f"/static/{charts.PLOTLY_CSS}")
def plotly_css() -> Response:
    """plotly's style rules as a sheet: the CSP blocks the <style> plotly.js would add."""
    return Response(charts.plotly_css(), media_type="text/css", headers={"Cache-Control": "max-age=86400"})


@session_router.get("/lang/{lang}")
def set_lang(request: Request, c: ConsoleDep, lang: str, next: str = "/console/") -> Response:
    resp = RedirectResponse(_local(next), status_code=303)
    resp.set_cookie(LANG_COOKIE, lang if lang in LANGS else "zh", samesite="lax", secure=c.secure_cookies(request))
    return resp


def _login_page(c: Console, request: Request, nxt: str, error: str = "", status: int = 200) -> Response:
    import secrets

    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
    resp = c.render(request, "login.html", None, status=status, next=_local(nxt), error=error, csrf=csrf_token(pre))
    if request.cookies.get(PRE_COOKIE) != pre:
        c.set_cookie(request, resp, PRE_COOKIE, pre, max_age=3600)
    return resp


@session_router.get("/login")
def login_form(request: Request, c: ConsoleDep, next: str = "/console/", error: str = "") -> Response:
    return _login_page(c, request, next, error)


@session_router.post("/login")
async def login(
    request: Request,
    c: ConsoleDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/console/",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    lang = c.lang(request)
    if not csrf_ok(request.cookies.get(PRE_COOKIE), csrf_token):
        return _login_page(c, request, next, translator(lang)("csrf"), status=403)
    try:
        token = await run_in_threadpool(c.auth.login, username, password, ip=c.client_ip(request))
    except AuthError as exc:
        throttled = isinstance(exc, LoginThrottled)
        message = exc.message_en if lang == "en" else exc.message_zh
        resp = _login_page(c, request, next, message, status=429 if throttled else 401)
        if isinstance(exc, LoginThrottled):
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    resp = RedirectResponse(_local(next), status_code=303)
    c.set_cookie(request, resp, COOKIE, token, max_age=c.auth.cfg.session.ttl_minutes * 60)
    return resp


@session_router.post("/logout")
async def logout(request: Request, c: ConsoleDep, csrf_token: Annotated[str, Form()] = "") -> Response:
    if not csrf_ok(request.cookies.get(COOKIE), csrf_token):
        return c.render(request, "error.html", c.who(request), status=403, code=403, message_key="csrf")
    await run_in_threadpool(c.auth.logout, request.cookies.get(COOKIE))
    resp = RedirectResponse("/console/login", status_code=303)
    resp.delete_cookie(COOKIE, secure=c.secure_cookies(request), httponly=True, samesite="lax")
    return resp


@session_router.get("/")
def home(p: Annotated[Principal, Depends(page())]) -> Response:
    return RedirectResponse(f"/console/{p.pages[0]}", status_code=303)


def _local(target: str) -> str:
    """Only a path inside the console may be a redirect target
    (no open redirect: not ``//host``, not ``/console.evil``).
    """
    if target == "/console" or (
        target.startswith("/console/") and not target.startswith("/console//") and "\\" not in target
    ):
        return target
    return "/console/"


def mount_console(app: FastAPI, iface_or_engine: Any, *, clock: Callable[[], dt.datetime] | None = None) -> Console:
    """Mount the console at ``/console`` on ``app`` (an Interface or an Engine gives the database)."""
    engine = getattr(iface_or_engine, "engine", iface_or_engine)
    clock = clock or getattr(iface_or_engine, "clock", None)
    console = Console(engine, clock=clock)
    app.include_router(console.router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.add_exception_handler(Deny, console.deny_response)  # type: ignore[arg-type]  # Starlette types it as Exception
    app.state.console = console
    return console
