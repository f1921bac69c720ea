"""/docs (Swagger UI) and /redoc (ReDoc) render with no internet: every request that is not to the server is blocked.

Headless Debian Chromium driven by Playwright (as ``test_console_browser.py``); skips without it.
"""

from __future__ import annotations

import os
import shutil
import urllib.parse

import pytest

CHROMIUM = os.environ.get("YIBAO_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_docs_pages_name_only_local_assets(tmp_path) -> None:
    """Without a browser too: the pages reference /docs/assets/, never a CDN, and the assets are served."""
    from fastapi.testclient import TestClient

    from yibao.api.app import build_interface
    from yibao.server import create_app

    app = create_app(build_interface(f"sqlite:///{tmp_path / 'yibao.db'}"))
    c = TestClient(app)
    for path, needs in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))):
        html = c.get(path).text
        assert "cdn." not in html and "fonts.googleapis" not in html and "https://" not in html.split("<body")[0], path
        for name in needs:
            assert f"/docs/assets/{name}" in html
            r = c.get(f"/docs/assets/{name}")
            assert r.status_code == 200 and len(r.content) > 50_000, name
    assert c.get("/docs/assets/..%2Fcore.py").status_code == 404
    assert c.get("/docs/assets/consts.py").status_code == 404
    assert "/docs" not in c.get("/openapi.json").json()["paths"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        if os.environ.get("CI"):
            raise RuntimeError(f"CI: Chromium not installed at {CHROMIUM}")
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    from tests.console_support import LiveServer
    from yibao.core import db

    url = f"sqlite:///{tmp_path_factory.mktemp('docs') / 'yibao.db'}"
    db.upgrade(url)
    with LiveServer(url) as srv:
        yield srv


@pytest.fixture(scope="module")
def offline_page(server, tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    blocked: list[str] = []
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-docs")),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1366, "height": 900},
        )

        def route(r) -> None:
            host = urllib.parse.urlsplit(r.request.url).hostname
            if host in ("127.0.0.1", "localhost"):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort("internetdisconnected")

        ctx.route("**/*", route)
        pg = ctx.new_page()
        try:
            yield pg, blocked
        finally:
            ctx.close()


def test_swagger_ui_renders_offline(server, offline_page) -> None:
    pg, blocked = offline_page
    blocked.clear()
    pg.goto(f"{server.base}/docs")
    pg.wait_for_selector(".opblock", timeout=60_000)
    ops = pg.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/" in o for o in ops) and any("callService" in o for o in ops), ops[:5]
    assert pg.locator(".opblock").count() >= 10
    assert "yibao" in pg.inner_text(".info .title")
    assert blocked == [], blocked


def test_redoc_renders_offline(server, offline_page) -> None:
    pg, blocked = offline_page
    blocked.clear()
    pg.goto(f"{server.base}/redoc")
    pg.wait_for_selector("[data-section-id^='operation/']", timeout=60_000)
    n = pg.locator("[data-section-id^='operation/']").count()
    assert n >= 10, n
    assert "yibao" in pg.inner_text("h1")
    assert "callService" in pg.inner_text("body")
    assert blocked == [], blocked
