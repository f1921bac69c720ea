"""The interactive charts (issue 15.2) in a real browser, with every non-local request blocked: the console's fund
page (plotly.js from /console/static/) and the fund-year report file (plotly.js inline).  Each chart renders;
hovering a bar shows its amount as ¥ to the fen, as the database sums it; dragging over the plot zooms (the visible
range narrows, a double-click restores it); clicking a legend item hides its series.

Headless Debian Chromium via Playwright (as ``test_console_browser.py``); the browser tests skip without it.
The region is small and SYNTHETIC (``yibao synth``).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import urllib.parse
from decimal import Decimal

import pytest

from yibao.web import charts, labels

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


def _spec(div: str) -> dict:
    m = re.search(r'data-spec="([^"]*)"', div)
    return json.loads(html.unescape(m.group(1)), parse_float=Decimal)


# --- without a browser --------------------------------------------------------------------------------


def test_money_is_plotted_exactly_from_fen_and_tooltips_show_yuan() -> None:
    div = charts.bar_chart(
        ["1月", "2月"],
        {"职工": [123_456_789, 1], "居民": [0, 250_000_000]},
        stacked=True,
        unit="万元",
        money=charts.WAN,
        chart_id="chart-x",
    )
    assert 'id="chart-x"' in div and 'data-chart="x"' in div and "<script" not in div
    s = _spec(div)
    assert [t["name"] for t in s["data"]] == ["职工", "居民"]
    assert s["data"][0]["y"] == [Decimal("123.456789"), Decimal("0.000001")]  # fen ÷ 1,000,000, not rounded, no float
    assert s["data"][1]["y"] == [0, 250]
    assert s["data"][0]["customdata"] == ["¥1,234,567.89", "¥0.01"]
    assert s["layout"]["barmode"] == "stack" and s["layout"]["legend"]["y"] > 1  # legend above the plot
    h = _spec(charts.hbar_chart(["统筹", "大病"], [100, 250], money=charts.YUAN))
    assert h["data"][0]["x"] == [1, Decimal("2.50")] and h["data"][0]["text"] == ["¥1.00", "¥2.50"]
    d = _spec(charts.donut_chart(["一级", "二级"], [3, 5], unit="例"))
    assert d["data"][0]["values"] == [3, 5] and d["data"][0]["customdata"] == ["3 例", "5 例"]
    p = _spec(charts.bar_chart(["1"], {"点值": [Decimal("12.345600")]}))
    assert p["data"][0]["y"] == [Decimal("12.345600")] and p["data"][0]["customdata"] == ["12.3456"]


def test_bad_values_are_refused() -> None:
    with pytest.raises(TypeError, match="not float"):
        charts.bar_chart(["a"], {"s": [1.5]})
    with pytest.raises(TypeError, match="integer fen"):
        charts.bar_chart(["a"], {"s": [Decimal("1.5")]}, money=charts.WAN)
    with pytest.raises(ValueError, match="power of ten"):
        charts.hbar_chart(["a"], [1], money=300)
    with pytest.raises(ValueError, match="2 values for 1"):
        charts.bar_chart(["a"], {"s": [1, 2]})
    with pytest.raises(TypeError):
        charts.donut_chart(["a"], [True])


def test_plotly_js_is_the_installed_package_file() -> None:
    js = charts.plotly_js()
    assert len(js) > 1_000_000 and b"plotly.js v" in js[:200] and b"</script" not in js.lower()


# --- in Chromium ----------------------------------------------------------------------------------------


def _browser():
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        if os.environ.get("CI"):
            raise RuntimeError(f"CI: Chromium not installed at {CHROMIUM}")
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from tests.console_support import LiveServer, add_users, build_region_db, pick
    from yibao.core import db

    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)) and not os.environ.get("CI"):
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    root = tmp_path_factory.mktemp("charts-region")
    url = build_region_db(root, people=600)
    engine = db.make_engine(url)
    add_users(engine, pick(engine))
    engine.dispose()
    with LiveServer(url) as srv:
        yield srv, root


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """A Chromium whose every request off this machine is aborted (and recorded), with console errors collected."""
    sync_api = _browser()
    blocked: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-charts")),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1366, "height": 900},
        )

        def route(r) -> None:
            u = urllib.parse.urlsplit(r.request.url)
            if u.scheme in ("file", "data", "blob") or u.hostname in ("127.0.0.1", "localhost"):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort("internetdisconnected")

        ctx.route("**/*", route)
        # each Content-Security-Policy violation, with the start of what was blocked
        ctx.add_init_script(
            "window.__csp = []; document.addEventListener('securitypolicyviolation', "
            "e => window.__csp.push([e.violatedDirective, e.sourceFile]));"
        )
        pg = ctx.new_page()
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        try:
            yield pg, blocked, errors
        finally:
            ctx.close()


def _clean(pg, blocked: list[str], errors: list[str]) -> None:
    """No request left the machine and nothing failed.  The one CSP refusal allowed is the ``<style>`` that plotly.js's
    bundled map library (maplibre, for map traces: none here) adds when it loads; plotly.js's own rules come from
    /console/static/plotly.css."""
    csp = pg.evaluate("window.__csp || []")
    assert all(d == "style-src-elem" and f.endswith("/plotly.min.js") for d, f in csp), csp
    if csp:  # under the console's CSP every <style> element on the page is that one
        styles = pg.evaluate(
            "[...document.querySelectorAll('style')].map(e => e.textContent.slice(0, 40)).filter(t => t)"
        )
        assert all(t.startswith(".maplibregl") for t in styles) and len(csp) <= len(styles), (csp, styles)
    other = [e for e in errors if "Content Security Policy" not in e or not csp]
    assert blocked == [] and other == [], (blocked, other)


def _wait_charts(pg, n: int) -> list[str]:
    pg.wait_for_function(f"document.querySelectorAll('div.ychart[data-ready=\"1\"]').length >= {n}", timeout=60_000)
    return pg.eval_on_selector_all("div.ychart", "els => els.map(e => e.id)")


def _drawn(pg, chart_id: str) -> int:
    """Marks (bars, slices, line points) of a chart with a visible size."""
    return pg.evaluate(
        """id => [...document.getElementById(id).querySelectorAll('g.point path, g.slice path.surface')]
        .filter(p => { const b = p.getBoundingClientRect(); return b.width > 0.5 && b.height > 0.5; }).length""",
        chart_id,
    )


def _hover_text(pg, selector: str) -> str:
    pg.mouse.move(0, 0)
    b = pg.eval_on_selector(
        selector,
        "e => { e.scrollIntoView({block: 'center'}); const b = e.getBoundingClientRect(); return [b.left, b.top, "
        "b.width, b.height]; }",
    )
    pg.mouse.move(b[0] + b[2] / 2, b[1] + b[3] / 2, steps=4)  # plotly.js hovers on mouse moves over the plot
    pg.wait_for_selector("g.hoverlayer g.hovertext", timeout=5_000)
    return pg.eval_on_selector("g.hoverlayer g.hovertext", "e => e.textContent")


def _zoom_narrows(pg, chart_id: str, axis: str = "xaxis") -> None:
    before = pg.evaluate(f"id => [...document.getElementById(id)._fullLayout.{axis}.range]", chart_id)
    box = pg.eval_on_selector(
        f"#{chart_id} .nsewdrag",
        "e => { e.scrollIntoView({block: 'center'}); const b = e.getBoundingClientRect(); "
        "return [b.left, b.top, b.width, b.height]; }",
    )
    x, y, w, h = box
    pg.mouse.move(x + w * 0.15, y + h * 0.5)
    pg.mouse.down()
    pg.mouse.move(x + w * 0.30, y + h * 0.5, steps=5)
    pg.mouse.move(x + w * 0.45, y + h * 0.5, steps=5)
    pg.mouse.up()
    width = f"id => {{ const r = document.getElementById(id)._fullLayout.{axis}.range; return r[1] - r[0]; }}"
    pg.wait_for_function(f"([id, w]) => ({width})(id) < w * 0.6", arg=[chart_id, before[1] - before[0]], timeout=10_000)
    pg.wait_for_timeout(400)
    pg.mouse.dblclick(x + w * 0.5, y + h * 0.5)  # plotly.js: a double-click resets the axes
    pg.wait_for_function(
        f"([id, w]) => Math.abs(({width})(id) - w) < 1e-9", arg=[chart_id, before[1] - before[0]], timeout=10_000
    )
    reset = pg.evaluate(f"id => [...document.getElementById(id)._fullLayout.{axis}.range]", chart_id)
    assert reset == pytest.approx(before), (before, reset)
    pg.wait_for_timeout(400)  # past plotly.js's double-click window


def _legend_hides(pg, chart_id: str, kind: str = "bar") -> None:
    n = _drawn(pg, chart_id)
    k = 0
    if kind == "pie":  # the largest slice (a zero slice draws nothing to hide)
        k = pg.evaluate(
            "id => { const v = document.getElementById(id).data[0].values.map(Number); return "
            "v.indexOf(Math.max(...v)); }",
            chart_id,
        )
    item = f"#legend-{chart_id.removeprefix('chart-')} g.traces >> nth={k}"
    pg.click(item)
    if kind == "pie":  # a pie's legend item hides its slice
        pg.wait_for_function(
            "([id, k]) => { const gd = document.getElementById(id); return (gd._fullLayout.hiddenlabels || [])"
            ".join('|') === String(gd.data[0].labels[k]); }",
            arg=[chart_id, k],
            timeout=10_000,
        )
    else:
        pg.wait_for_function(
            "id => document.getElementById(id)._fullData[0].visible === 'legendonly'", arg=chart_id, timeout=10_000
        )
        assert pg.evaluate("id => document.getElementById(id)._fullData[1].visible", chart_id) is True
    pg.wait_for_timeout(300)
    assert _drawn(pg, chart_id) < n
    pg.wait_for_timeout(400)  # past plotly.js's double-click window
    pg.click(item)  # and back
    pg.wait_for_function(
        "([id, n]) => [...document.getElementById(id).querySelectorAll('g.point path, g.slice path.surface')]"
        ".filter(p => { const b = p.getBoundingClientRect(); return b.width > 0.5 && b.height > 0.5; }).length === n",
        arg=[chart_id, n],
        timeout=10_000,
    )


def test_console_serves_plotly_locally(region) -> None:
    import httpx

    srv, _ = region
    # a 4.6 MB file: httpx's default 5 s read timeout failed once when CI shared the 2 cores with a benchmark
    r = httpx.get(f"{srv.base}/console/static/{charts.PLOTLY_JS}", timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/javascript")
    assert r.content == charts.plotly_js()
    assert httpx.get(f"{srv.base}/console/static/charts.js", timeout=60).status_code == 200


def test_console_fund_charts_offline(region, offline) -> None:
    from sqlalchemy import create_engine

    from tests.console_support import PASSWORD

    srv, root = region
    pg, blocked, errors = offline
    blocked.clear()
    errors.clear()
    pg.goto(f"{srv.base}/console/login")
    pg.fill("#username", "bureau1")
    pg.fill("#password", PASSWORD)
    pg.click("#login-submit")
    pg.wait_for_load_state()
    assert pg.url.endswith("/console/fund")
    assert _wait_charts(pg, 3) == ["chart-month", "chart-layer", "chart-level"]
    for cid in ("chart-month", "chart-layer", "chart-level"):
        assert _drawn(pg, cid) > 0, cid
    # hover: the first bar's tooltip is that month's and scheme's fund spending, as the database sums it
    month, name = pg.evaluate(
        "() => { const d = document.getElementById('chart-month').data[0]; return [d.x[0], d.name]; }"
    )
    from yibao.web import figures

    insutype = next(k for k, v in figures.SCHEME_NAMES.items() if name in v)
    eng = create_engine(f"sqlite:///{root / 'yibao.db'}")
    with eng.connect() as c:
        fen = c.exec_driver_sql(
            "SELECT sum(fund_pay_sumamt) FROM settlement WHERE NOT refd_setl_flag AND policy_year = 2025 AND insutype "
            "= ? "
            "AND strftime('%Y-%m', setl_time) = ?",
            (insutype, month),
        ).scalar()
    eng.dispose()
    assert fen and fen > 0
    tip = _hover_text(pg, "#bar-month-0-0")
    assert month in tip and labels.money(int(fen)) in tip, (tip, labels.money(int(fen)))
    _zoom_narrows(pg, "chart-month")
    _legend_hides(pg, "chart-month")
    _legend_hides(pg, "chart-level", kind="pie")
    _clean(pg, blocked, errors)


@pytest.fixture(scope="module")
def report(region):
    from yibao.benefits.policy import PolicyBook
    from yibao.settlement.annual import read_parquet
    from yibao.settlement.fundyear import fund_year
    from yibao.web.report import render_report

    _, root = region
    data = root / "region"
    book = PolicyBook.default()
    admdvs = read_parquet(data, "person", ["insuplc_admdvs"]).column(0)[0].as_py()
    fy = fund_year(data, book.policy(admdvs).snapshot(dt.date(2025, 7, 1)), 2025)
    return fy, render_report(fy, root / "report.html")


def test_report_charts_offline(report, offline) -> None:
    from yibao.settlement.fundyear import FUND_FIELDS

    fy, path = report
    pg, blocked, errors = offline
    blocked.clear()
    errors.clear()
    pg.goto(path.as_uri())
    assert _wait_charts(pg, 3) == ["chart-layers", "chart-months", "chart-levels"]
    for cid in ("chart-layers", "chart-months", "chart-levels"):
        assert _drawn(pg, cid) > 0, cid
    first = next(iter(FUND_FIELDS))  # the layers chart's first row
    tip = _hover_text(pg, "#bar-layers-0-0")
    assert tip == f"{FUND_FIELDS[first][1]} {FUND_FIELDS[first][0]}: {labels.money(int(fy.totals.iloc[0][first]))}", tip
    _zoom_narrows(pg, "chart-months")
    _legend_hides(pg, "chart-months")
    _legend_hides(pg, "chart-levels")
    _clean(pg, blocked, errors)
