"""The demo's fund-year report on a 1366×768 screen (issue 17.8): no horizontal scrolling, styled tables,
chart legends not over the bars.  Headless Debian Chromium via Playwright; skips without it.

The report is the one ``yibao demo`` writes: a small settled SYNTHETIC region, the fund year, and the
supervision, payment and procurement sections.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pytest

CHROMIUM = os.environ.get("YIBAO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from rich.console import Console

    from yibao.benefits.policy import PolicyBook
    from yibao.demo.sections import payment_sections, procurement_section
    from yibao.demo.sections import supervision_section as demo_section
    from yibao.settlement.annual import read_parquet, settle_year
    from yibao.settlement.fundyear import fund_year
    from yibao.synth.cli import run_synth
    from yibao.synth.patterns import DEFAULT_RATES
    from yibao.web.report import render_report

    root = tmp_path_factory.mktemp("report")
    data = root / "region"
    run_synth(people=1500, seed=7, out=data, db=None, year=2025, patterns=DEFAULT_RATES, console=Console(quiet=True))
    settle_year(data)
    book = PolicyBook.default()
    region = read_parquet(data, "person", ["insuplc_admdvs"]).column(0)[0].as_py()
    fy = fund_year(data, book.policy(region).snapshot(dt.date(2025, 7, 1)), 2025)
    sections = [demo_section(data), *payment_sections(data, echo=lambda line: None), procurement_section(7)]
    return render_report(fy, root / "report.html", sections=sections)


def test_report_tables_have_chinese_headers_and_yuan(report) -> None:
    html = report.read_text(encoding="utf-8").split("\n<script>\n")[0]  # less the inline chart library (plotly.min.js)
    assert '<div class="tw"><table class="t">' in html
    assert "<th>统筹基金支出" in html and "¥" in html
    assert "<th>hifp_pay</th>" not in html and "<th>hosp_lv</th>" not in html and "NaN" not in html
    assert (
        'id="chart-months"' in html and 'id="chart-layers"' in html
    )  # plotly.js draws them (legend-…/bar-… ids: charts.js)
    from tests.web.test_console_labels import NAN, SCI, _Text, problems
    from yibao.web import labels

    own = html.split('<div class="sec">')[0]  # the fund year's own tables and charts: no raw name at all
    assert problems(own + "</body>", labels.load().raw_keys(), zh=False) == []

    text = _Text()
    text.feed(html)
    for part in text.parts:  # pandas' 1.379e+04 and NaN never reach the page (NaN shows "—" with its reason)
        assert not SCI.search(part) and not NAN.search(part), part


@pytest.fixture(scope="module")
def page(report):
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        if os.environ.get("CI"):
            raise RuntimeError(f"CI: Chromium not installed at {CHROMIUM}")
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        pg = browser.new_page(viewport={"width": 1366, "height": 768})
        pg.goto(report.as_uri())
        pg.wait_for_load_state()
        try:
            yield pg
        finally:
            browser.close()


def test_report_fits_a_1366_px_screen(page) -> None:
    width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    assert width <= 1366, width
    # and nothing sticks out of the page's right edge (html{overflow-x:hidden} must not be what hides it)
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => !e.closest('.tw, .sec table'))
        .map(e => [e.tagName, e.id || e.className.baseVal || e.className || '',
                   Math.round(e.getBoundingClientRect().right)])
        .filter(x => x[2] > 1366)""")
    assert wide == [], wide[:10]
    # tables are styled: a header background, cell padding, numbers to the right
    th = page.evaluate("getComputedStyle(document.querySelector('table.t th')).backgroundColor")
    assert th not in ("rgba(0, 0, 0, 0)", "transparent")
    assert page.evaluate("getComputedStyle(document.querySelector('table.t td.m')).textAlign") == "right"
    assert page.evaluate("parseFloat(getComputedStyle(document.querySelector('table.t td')).paddingLeft)") > 0


def test_chart_legends_do_not_cover_bars(page) -> None:
    page.wait_for_function("[...document.querySelectorAll('div.ychart')].every(e => e.dataset.ready === '1')")
    boxes = page.evaluate("""() => {
        const r = e => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
        return [...document.querySelectorAll('div.ychart, svg:not(div.ychart svg)')].map(svg => ({
            legends: [...svg.querySelectorAll('[id^="legend-"]')].map(r),
            bars: [...svg.querySelectorAll('[id^="bar-"]')].map(r)
                  .filter(b => b[2] - b[0] > 0.5 && b[3] - b[1] > 0.5)}))
          .filter(c => c.legends.length);
    }""")
    assert len(boxes) >= 2, boxes  # the month chart and the level chart have legends
    for chart in boxes:
        assert chart["bars"], "a chart with a legend but no bars found"
        for lg in chart["legends"]:
            for b in chart["bars"]:
                overlap = min(lg[2], b[2]) - max(lg[0], b[0]) > 0.5 and min(lg[3], b[3]) - max(lg[1], b[1]) > 0.5
                assert not overlap, (lg, b)
