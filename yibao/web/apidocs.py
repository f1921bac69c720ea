"""The API documentation pages (接口文档) served without the internet: ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc).

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank
on a machine without internet.  Here the same pages load their scripts,
styles and icon from ``/docs/assets/``, read from the files that the PyPI
package ``fastapi-offline`` ships (``fastapi_offline/static``: Swagger UI's
``swagger-ui-bundle.js`` / ``swagger-ui.css``, ReDoc's ``redoc.standalone.js``);
only those files are used, the wiring is ours.  ReDoc is told not to load
Google Fonts, and both pages carry a ``<meta>`` Content-Security-Policy that
keeps images, fonts and fetches on this server (ReDoc's sidebar would
otherwise fetch its logo from the vendor's CDN).  :func:`mount_docs` is called by
:func:`yibao.api.app.national_interface_app`, which builds its ``FastAPI`` with ``docs_url=None, redoc_url=None``.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.responses import HTMLResponse, Response

ASSET_PREFIX = "/docs/assets"
ASSET_PACKAGE = "fastapi_offline"  # PyPI fastapi-offline: only its static files are used
ASSETS = {  # served name → media type
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "application/javascript",
    "favicon.png": "image/png",
}


# images, fonts and fetches from this server only (scripts and styles stay unrestricted: both UIs bootstrap inline)
LOCAL_ONLY = "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'"


def _local_only(page: HTMLResponse) -> HTMLResponse:
    html = (
        bytes(page.body)
        .decode()
        .replace("<head>", f'<head>\n<meta http-equiv="Content-Security-Policy" content="{LOCAL_ONLY}">', 1)
    )
    return HTMLResponse(html)


class DocsAssetsMissing(RuntimeError):
    """The package that ships Swagger UI / ReDoc is not installed."""


def asset_bytes(name: str) -> bytes:
    """One of :data:`ASSETS`, from the installed package (a clear error if it is not installed)."""
    if name not in ASSETS:
        raise KeyError(name)
    try:
        root = resources.files(ASSET_PACKAGE) / "static"
    except ModuleNotFoundError as exc:
        raise DocsAssetsMissing(
            "Swagger UI / ReDoc files not installed: pip install fastapi-offline (a dependency of yibao) / "
            "接口文档的 Swagger UI / ReDoc 文件未安装"
        ) from exc
    return (root / name).read_bytes()


def mount_docs(app: FastAPI, title: str) -> None:
    """Add ``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and
    ``/docs/assets/{name}`` to ``app`` (none in the schema).
    """
    openapi_url = app.openapi_url or "/openapi.json"
    cache: dict[str, bytes] = {}

    async def asset(name: str) -> Response:
        if name not in ASSETS:
            return Response(status_code=404)
        if name not in cache:
            cache[name] = asset_bytes(name)
        return Response(cache[name], media_type=ASSETS[name], headers={"Cache-Control": "max-age=86400"})

    async def swagger_ui() -> HTMLResponse:
        return _local_only(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{title} · Swagger UI",
                swagger_js_url=f"{ASSET_PREFIX}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSET_PREFIX}/swagger-ui.css",
                swagger_favicon_url=f"{ASSET_PREFIX}/favicon.png",
                oauth2_redirect_url="/docs/oauth2-redirect",
            )
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc() -> HTMLResponse:
        return _local_only(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{title} · ReDoc",
                redoc_js_url=f"{ASSET_PREFIX}/redoc.standalone.js",
                redoc_favicon_url=f"{ASSET_PREFIX}/favicon.png",
                with_google_fonts=False,
            )
        )

    app.add_api_route(f"{ASSET_PREFIX}/{{name}}", asset, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs/oauth2-redirect", oauth2_redirect, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
