"""What every answer of the HTTP service carries, and what a person finds at its root.

* :class:`SecurityHeaders`, an ASGI middleware: ``X-Content-Type-Options``,
  ``X-Frame-Options`` / ``frame-ancestors``, ``Referrer-Policy`` on every
  answer; a Content-Security-Policy without inline scripts on everything but
  the API documentation pages (Swagger UI and ReDoc load their own scripts);
  ``Strict-Transport-Security`` when the request came over TLS.  The headers
  are parameters (``yibao/data/web/console.yaml: security_headers``).
* :func:`landing_page`: ``/`` leads to the console (``/console/``) and the
  API documentation (``/docs``), Chinese first.
"""

from __future__ import annotations

from html import escape

from starlette.datastructures import MutableHeaders
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yibao.web.auth import ConsoleConfig, default_config

DOC_PATHS = ("/docs", "/redoc")


def _tls(scope: Scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    for k, v in scope.get("headers") or ():
        if k == b"x-forwarded-proto":
            return v.decode("latin-1").split(",")[0].strip() == "https"
    return False


class SecurityHeaders:
    """Adds the configured security headers to every HTTP answer that does not set them itself."""

    def __init__(self, app: ASGIApp, config: ConsoleConfig | None = None):
        self.app = app
        h = (config or default_config()).security_headers
        self._all = [(k.lower().encode(), v.encode()) for k, v in h.all.items()]
        self._pages = [(k.lower().encode(), v.encode()) for k, v in h.pages.items()]
        self._tls = [(k.lower().encode(), v.encode()) for k, v in h.tls.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        extra = list(self._all)
        if not any(path == d or path.startswith(d + "/") for d in DOC_PATHS):
            extra += self._pages
        if _tls(scope):
            extra += self._tls

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in extra:
                    if k.decode() not in headers:
                        headers.append(k.decode(), v.decode())
            await send(message)

        await self.app(scope, receive, send_with_headers)


_LINKS = (
    (
        "/console/",
        "运行监测控制台",
        "Console",
        "基金收支、结算追溯、集采、DIP/DRG、智能监管、医保码 (需登录)",
        "fund, settlements, procurement, DIP/DRG, supervision, e-code (login)",
    ),
    (
        "/docs",
        "接口文档",
        "API documentation",
        "定点医药机构接口 (国家报文与 REST), OpenAPI",
        "the national interface (envelope and REST), OpenAPI",
    ),
    (
        "/redoc",
        "接口文档 (ReDoc)",
        "API reference (ReDoc)",
        "同一份 OpenAPI, 另一种排版",
        "the same OpenAPI, another layout",
    ),
    ("/healthz", "运行状态", "Health", "服务是否在运行", "is the service up"),
)


def landing_page() -> HTMLResponse:
    """``GET /``: where to go from here (no inline script or style, so the strict CSP holds)."""
    items = "\n".join(
        f'<li><a href="{escape(href)}" id="to-{escape(href.strip("/") or "root")}">{escape(zh)} · {escape(en)}</a>'
        f'<br><span class="muted">{escape(dzh)} · {escape(den)}</span></li>'
        for href, zh, en, dzh, den in _LINKS
    )
    html = f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>yibao 医保 · 医疗保障信息平台</title>
<link rel="stylesheet" href="/console/static/console.css">
</head>
<body>
<header class="top"><a class="brand" href="/">医保 yibao · 医疗保障信息平台</a></header>
<div class="banner">合成数据 · SYNTHETIC DATA unless you loaded real data</div>
<main>
<section class="card">
<h1>yibao 医保</h1>
<p>开放的医疗保障信息平台 · an open medical-security platform</p>
<ul class="landing" id="landing-links">
{items}
</ul>
<p class="muted">HIS 接入: <code>POST /fsi/api/rsfComIfsService/callService</code>
(先 9001 签到 · sign in with 9001 first)</p>
</section>
</main>
</body>
</html>
"""
    return HTMLResponse(html)
