"""The console in a real browser: Debian's Chromium, driven headless by Playwright, on a live server.

Playwright never downloads a browser here; it launches ``/usr/bin/chromium``
(``.ci/run`` installs Debian's ``chromium``).  Without it these tests skip.
Set ``YIBAO_SCREENSHOTS=1`` to refresh ``docs/screenshots/``.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.console_support import PASSWORD, LiveServer, add_users, build_region_db, pick, seed_subsystems
from yibao.codes import registry
from yibao.settlement import records

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
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
    if os.environ.get("CI"):  # CI installs it (.ci/run): a missing browser there is a failure, not a skip
        raise RuntimeError(f"CI: Chromium not installed at {CHROMIUM}")
    pytest.skip(f"Chromium not installed at {CHROMIUM} (.ci/run installs Debian's chromium)", allow_module_level=True)
playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python) not installed: pip install -e '.[test]'"
)


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from yibao.core import db

    root = tmp_path_factory.mktemp("console-region")
    url = build_region_db(root)
    engine = db.make_engine(url)
    who = pick(engine)
    add_users(engine, who)
    who.update(seed_subsystems(engine, who["inst"]))
    engine.dispose()
    with LiveServer(url) as srv:
        srv.app.state.console.data_dir = root / "region"  # payment and the supervision queue run over the Parquet
        yield srv, who


def wait_done(pg, url: str, seconds: int = 120) -> None:
    """Open a page whose background analysis may still run; wait until it has finished."""
    pg.goto(url)
    for _ in range(seconds):
        if pg.locator("#pending").count() == 0:
            return
        pg.wait_for_timeout(1000)
        pg.goto(url)
    raise AssertionError(f"{url}: analysis still running after {seconds} s")


@pytest.fixture(scope="module")
def browser_ctx(tmp_path_factory):
    with playwright_sync.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            accept_downloads=True,
            viewport={"width": 1360, "height": 900},
            locale="zh-CN",
        )
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture
def page(browser_ctx):
    browser_ctx.clear_cookies()
    pg = browser_ctx.new_page()
    yield pg
    pg.close()


def shot(pg, name: str, tmp_path: Path) -> None:
    pg.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    if os.environ.get("YIBAO_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def login(pg, base: str, user: str) -> None:
    pg.goto(f"{base}/console/login")
    pg.fill("#username", user)
    pg.fill("#password", PASSWORD)
    pg.click("#login-submit")
    pg.wait_for_load_state()


def fen(pg, selector: str) -> int:
    return int(pg.get_attribute(selector, "data-fen"))


def db_sums(engine, *, scope: str | None = None, psn: str | None = None) -> dict[str, int]:
    from yibao.web.figures import SHARE_FIELDS

    S = records.Settlement
    q = select(
        func.count(),
        func.sum(S.medfee_sumamt),
        func.sum(S.fund_pay_sumamt),
        *[func.sum(getattr(S, k)) for k in SHARE_FIELDS],
    ).where(S.refd_setl_flag.is_(False), S.policy_year == 2025)
    if scope:
        q = q.where(S.fixmedins_code == scope)
    if psn:
        q = q.where(S.psn_no == psn)
    with engine.connect() as c:
        row = c.execute(q).one()
    return {
        "claims": row[0],
        "medfee": int(row[1] or 0),
        "fund": int(row[2] or 0),
        **{k: int(v or 0) for k, v in zip(SHARE_FIELDS, row[3:], strict=True)},
    }


def test_bureau_sees_every_page_with_figures_from_the_database(region, page, tmp_path) -> None:
    srv, who = region
    engine = srv.iface.engine
    login(page, srv.base, "bureau1")
    assert page.url.endswith("/console/fund")
    sums = db_sums(engine)
    assert int(page.inner_text("#kpi-claims").replace(",", "")) == sums["claims"] > 0
    assert fen(page, "#kpi-fund") == sums["fund"] and fen(page, "#kpi-medfee") == sums["medfee"]
    from yibao.web.figures import SHARE_FIELDS

    for k in SHARE_FIELDS:
        assert fen(page, f'#table-layer tr[data-field="{k}"] td[data-fen]') == sums[k], k
    # the month chart's bars add up to the fund's spending (¥10k, rounded per bar)
    page.wait_for_function("document.getElementById('chart-month').dataset.ready === '1'")
    bars = page.evaluate(
        "document.getElementById('chart-month').data.flatMap(t => t.y.map(Number))"
    )  # ¥10k, exact from fen
    assert len(bars) >= 12 and abs(sum(bars) * 1_000_000 - sums["fund"]) < len(bars)
    shot(page, "fund", tmp_path)
    for name in ("settlement", "procurement", "payment", "supervision", "ecode"):
        page.click(f'nav a[data-page="{name}"]')
        page.wait_for_load_state()
        assert page.url.endswith(f"/console/{name}"), page.url
        assert page.locator("main h1").count() == 1
        if name in ("payment", "supervision"):
            wait_done(page, page.url)
        assert page.locator("#absent").count() == 0, name
        shot(page, name, tmp_path)
    # procurement: every bidder's result with its reason, as persisted
    from yibao.procurement.models import VbpResult

    with engine.connect() as c:
        n_results = c.execute(
            select(func.count()).select_from(VbpResult).where(VbpResult.round_id == who["round_id"])
        ).scalar()
    page.goto(f"{srv.base}/console/procurement")
    results = page.locator("table.module-table").nth(1)
    assert results.locator("tbody tr").count() == min(n_results, 50) > 0
    page.wait_for_function("document.getElementById('chart-vbp-progress').dataset.ready === '1'")
    assert page.locator("#chart-vbp-progress g.point path").count() > 0
    # supervision: both cases, and the timeline of the filed one
    page.goto(f"{srv.base}/console/supervision")
    cases = page.locator('table.module-table[data-title="案件"] tbody tr')
    assert cases.count() == 2
    timeline = page.locator('table.module-table[data-title="执法时间线"] tbody tr')
    assert timeline.count() >= 3  # clue, file, investigate
    # a settlement: each fund's share and its rule, masked person data, reveal for bureau staff
    page.goto(f"{srv.base}/console/settlement")
    first = page.locator("#table-settlements tbody tr a").first
    setl_id = first.inner_text()
    first.click()
    page.wait_for_load_state()
    from yibao.core import db

    with db.session_scope(engine) as s:
        row = s.get(records.Settlement, setl_id)
        person = s.get(registry.Person, row.psn_no)
        expected = {k: int(getattr(row, k)) for k in SHARE_FIELDS}
        psn_no, certno = row.psn_no, person.certno
    for k, v in expected.items():
        assert fen(page, f'#table-shares tr[data-field="{k}"] td.amt') == v
    assert "统筹支付比例" in page.inner_text('#table-shares tr[data-field="hifp_pay"] td.rule')
    assert page.inner_text("#psn-no") != psn_no and "*" in page.inner_text("#certno")
    shot(page, "settlement-detail", tmp_path)
    page.click("#toggle-mask")
    page.wait_for_load_state()
    assert page.inner_text("#psn-no") == psn_no and page.inner_text("#certno") == certno
    # English second
    page.click("#lang-switch")
    page.wait_for_load_state()
    assert "Fund" in page.inner_text("header nav")
    page.click("#lang-switch")
    page.wait_for_load_state()
    assert "基金收支" in page.inner_text("header nav")


def test_institution_sees_only_its_own(region, page, tmp_path) -> None:
    srv, who = region
    engine = srv.iface.engine
    login(page, srv.base, "hosp1")
    sums = db_sums(engine, scope=who["inst"])
    assert page.inner_text("#scope").endswith(who["inst"])
    assert int(page.inner_text("#kpi-claims").replace(",", "")) == sums["claims"] > 0
    assert fen(page, "#kpi-fund") == sums["fund"]
    assert page.locator('nav a[data-page="ecode"]').count() == 0
    page.goto(f"{srv.base}/console/ecode")
    assert page.inner_text("#error-code") == "403"
    page.goto(f"{srv.base}/console/settlement")

    with engine.connect() as c:
        n_own = c.execute(
            select(func.count()).select_from(records.Settlement).where(records.Settlement.fixmedins_code == who["inst"])
        ).scalar()
        other = c.execute(
            select(records.Settlement.setl_id).where(records.Settlement.fixmedins_code != who["inst"]).limit(1)
        ).scalar()
    assert int(page.inner_text("#total").replace(",", "")) == n_own
    page.goto(f"{srv.base}/console/settlement/{other}")
    assert page.inner_text("#error-code") == "404"
    r = page.request.get(f"{srv.base}/console/api/settlement/{other}")
    assert r.status == 404
    # supervision: only the case against this institution
    wait_done(page, f"{srv.base}/console/supervision")
    first_cells = page.eval_on_selector_all(
        'table.module-table[data-title="案件"] tbody tr td:first-child', "els => els.map(e => e.textContent)"
    )
    assert first_cells == [str(who["case_id"])]


def test_public_sees_only_themselves(region, page) -> None:
    srv, who = region
    login(page, srv.base, "public1")
    assert page.url.endswith("/console/mycode")
    for name in ("fund", "procurement", "payment", "supervision", "ecode"):
        page.goto(f"{srv.base}/console/{name}")
        assert page.inner_text("#error-code") == "403", name
    assert page.request.get(f"{srv.base}/console/api/fund").status == 403
    page.goto(f"{srv.base}/console/settlement")

    with srv.iface.engine.connect() as c:
        n = c.execute(
            select(func.count()).select_from(records.Settlement).where(records.Settlement.psn_no == who["psn"])
        ).scalar()
    assert int(page.inner_text("#total").replace(",", "")) == n > 0


def test_logged_out_pages_and_apis_refuse(region, page) -> None:
    srv, _ = region
    page.goto(f"{srv.base}/console/fund")
    assert "/console/login" in page.url
    assert page.request.get(f"{srv.base}/console/api/fund").status == 401
    login(page, srv.base, "bureau1")
    page.click("#logout")
    page.wait_for_load_state()
    page.goto(f"{srv.base}/console/fund")
    assert "/console/login" in page.url


def test_excel_export_reads_back(region, page) -> None:
    from openpyxl import load_workbook

    srv, who = region
    engine = srv.iface.engine
    login(page, srv.base, "bureau1")
    with page.expect_download() as dl:
        page.click("#export-fund")
    wb = load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes()), read_only=True)
    rows = list(wb.worksheets[0].iter_rows(values_only=True))
    assert "SYNTHETIC" in rows[0][0]
    head = rows[1]
    i_fund, i_claims = head.index("fund_pay_sumamt 基金支付合计 (元)"), head.index("claims 结算笔数")
    sums = db_sums(engine)
    assert sum(r[i_claims] for r in rows[2:]) == sums["claims"]
    assert sum(Decimal(str(r[i_fund])) for r in rows[2:]) == Decimal(sums["fund"]) / 100
    # the whole settlement list as a background job with progress
    page.goto(f"{srv.base}/console/settlement")
    page.click("#export-job")
    page.wait_for_selector("#job-file:not(.hidden)", timeout=60_000)
    assert page.get_attribute("#job-progress", "value") == "100"
    with page.expect_download() as dl:
        page.click("#job-file")
    wb = load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes()), read_only=True)
    rows = list(wb.worksheets[0].iter_rows(values_only=True))

    with engine.connect() as c:
        n = c.execute(select(func.count()).select_from(records.Settlement)).scalar()
        first = c.execute(
            select(records.Settlement.setl_id, records.Settlement.fund_pay_sumamt)
            .order_by(records.Settlement.setl_time, records.Settlement.setl_id)
            .limit(1)
        ).one()
    assert len(rows) - 2 == n
    assert (
        rows[2][0] == first[0]
        and Decimal(str(rows[2][rows[1].index("fund_pay_sumamt (元)")])) == Decimal(first[1]) / 100
    )


def _his(srv, code: str):
    import httpx

    from yibao.api.hisclient import HisClient, http_transport

    client = httpx.Client(base_url=srv.base, timeout=30)
    his = HisClient(http_transport(client), code, credential=srv.credential(code))
    his.sign_in()
    return his


def test_bind_pay_with_ecode_then_blocked_after_an_anomaly(region, page, tmp_path) -> None:
    from yibao.api.envelope import fmt_time
    from yibao.api.hisclient import HisClient
    from yibao.core import db
    from yibao.ecode.models import EcodeRiskEvent

    srv, who = region
    engine = srv.iface.engine
    login(page, srv.base, "public1")
    # binding refused without a face match, then accepted
    page.fill("#bind-certno", who["certno"])
    page.select_option("#bind-face", "no-match")
    page.click("#bind-submit")
    page.wait_for_load_state()
    assert "人脸校验未通过" in page.inner_text("#msg")
    page.fill("#bind-certno", who["certno"])
    page.select_option("#bind-face", "live-match")
    page.click("#bind-submit")
    page.wait_for_load_state()
    assert page.locator(f'#table-bindings tr[data-psn="{who["psn"]}"]').count() == 1
    # family account: add the relative on record, with mutual aid
    page.select_option("#rel-psn", who["rel"])
    page.fill("#rel-certno", who["rel_certno"])
    page.check('input[name="mutual_aid"]')
    page.click("#relative-submit")
    page.wait_for_load_state()
    assert page.locator(f'#table-bindings tr[data-psn="{who["rel"]}"]').count() == 1
    page.click(f'button.gen[data-psn="{who["psn"]}"]')
    page.wait_for_load_state()
    code = page.inner_text("#ecode").strip()
    assert code.startswith("YB1.") and who["psn"] not in code
    shot(page, "mycode", tmp_path)

    # pay with it at the home institution: 1101 → 2201 → 2204 → 2207, all on mdtrt_cert_type 01
    his = _his(srv, who["inst"])
    info = his.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": code, "psn_cert_type": "01"}})["output"]
    assert info["baseinfo"]["psn_no"] == who["psn"]
    insutype = info["insuinfo"][0]["insutype"]
    with engine.connect() as c:
        drug = c.exec_driver_sql(
            "SELECT med_list_codg FROM med_list WHERE chrgitm_lv = '01' AND list_kind = 'western' ORDER BY 1 LIMIT 1"
        ).scalar()
    now = his.clock()
    reg = his.call(
        "2201",
        {
            "data": {
                "psn_no": who["psn"],
                "insutype": insutype,
                "begntime": fmt_time(now),
                "mdtrt_cert_type": "01",
                "mdtrt_cert_no": code,
                "ipt_otp_no": his.msgid(),
                "atddr_no": "DR01",
                "dr_name": "医生",
                "dept_code": "D01",
                "dept_name": "内科",
                "caty": "A03",
            }
        },
    )
    mdtrt_id = reg["output"]["data"]["mdtrt_id"]
    from yibao.api.hisclient import Item

    rows = HisClient.feedetail(mdtrt_id, who["psn"], [Item(drug, "2", "15.50")], chrg_bchno="B1", when=now)
    his.call("2204", {"feedetail": rows})
    data = {
        "psn_no": who["psn"],
        "mdtrt_cert_type": "01",
        "mdtrt_cert_no": code,
        "med_type": "11",
        "medfee_sumamt": Decimal("31.00"),
        "psn_setlway": "01",
        "mdtrt_id": mdtrt_id,
        "chrg_bchno": "B1",
        "insutype": insutype,
        "acct_used_flag": "1",
    }
    setl = his.call("2207", {"data": data})["output"]["setlinfo"]
    assert setl["mdtrt_cert_type"] == "01" and Decimal(str(setl["medfee_sumamt"])) == Decimal("31.00")
    with db.session_scope(engine) as s:
        assert s.get(records.Settlement, setl["setl_id"]).psn_no == who["psn"]

    # the relative's code from the family account, mutual aid on: the holder's personal account pays (家庭账户共济)
    page.goto(f"{srv.base}/console/mycode")
    page.click(f'button.gen[data-psn="{who["rel"]}"]')
    page.wait_for_load_state()
    rel_code = page.inner_text("#ecode").strip()
    rel_info = his.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": rel_code, "psn_cert_type": "01"}})[
        "output"
    ]
    assert rel_info["baseinfo"]["psn_no"] == who["rel"]
    rel_ins = rel_info["insuinfo"][0]["insutype"]
    reg = his.call(
        "2201",
        {
            "data": {
                "psn_no": who["rel"],
                "insutype": rel_ins,
                "begntime": fmt_time(now),
                "mdtrt_cert_type": "01",
                "mdtrt_cert_no": rel_code,
                "ipt_otp_no": his.msgid(),
                "atddr_no": "DR01",
                "dr_name": "医生",
                "dept_code": "D01",
                "dept_name": "内科",
                "caty": "A03",
            }
        },
    )
    rel_mdtrt = reg["output"]["data"]["mdtrt_id"]
    his.call(
        "2204",
        {
            "feedetail": HisClient.feedetail(
                rel_mdtrt, who["rel"], [Item(drug, "2", "15.50")], chrg_bchno="B2", when=now
            )
        },
    )
    rel_setl = his.call(
        "2207",
        {
            "data": {
                **data,
                "psn_no": who["rel"],
                "mdtrt_cert_no": rel_code,
                "mdtrt_id": rel_mdtrt,
                "chrg_bchno": "B2",
                "insutype": rel_ins,
            }
        },
    )["output"]["setlinfo"]
    with db.session_scope(engine) as s:
        row = s.get(records.Settlement, rel_setl["setl_id"])
        assert row.psn_no == who["rel"] and row.acct_payer_psn_no == who["psn"] and row.acct_pay == 0
        assert Decimal(str(rel_setl["acct_mulaid_pay"])) == Decimal(row.acct_mulaid_pay) / 100
        assert 0 < row.acct_mulaid_pay <= row.psn_part_amt

    # the same code minutes later ~1,900 km away (injected anomaly): refused, blocked, unbound, reported
    far = _his(srv, who["far"])
    bad = far.call(
        "1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": code, "psn_cert_type": "01"}}, check=False
    )
    assert bad["infcode"] == -1
    with db.session_scope(engine) as s:
        ev = s.scalars(select(EcodeRiskEvent).where(EcodeRiskEvent.psn_no == who["psn"])).all()
        assert [e.kind for e in ev] == ["impossible_travel"] and ev[0].reported_at is not None
    page.goto(f"{srv.base}/console/mycode")
    assert page.locator("#blocked").count() == 1
    assert page.locator(f'#table-bindings tr[data-psn="{who["psn"]}"]').count() == 0  # forced unbinding
    page.fill("#bind-certno", who["certno"])
    page.click("#bind-submit")
    page.wait_for_load_state()
    assert "拦截" in page.inner_text("#msg")
    # and the bureau sees it, reported, on the risk console
    page.context.clear_cookies()
    login(page, srv.base, "bureau1")
    page.goto(f"{srv.base}/console/ecode")
    row = page.locator(f'#table-events tr[data-kind="impossible_travel"][data-psn="{who["psn"]}"]')
    assert row.count() == 1 and row.locator("td").nth(6).inner_text() != ""
    assert page.locator(f'#table-blocks tr[data-psn="{who["psn"]}"]').count() == 1
    shot(page, "ecode", tmp_path)
    # the code no longer works anywhere, even at home
    again = his.call(
        "1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": code, "psn_cert_type": "01"}}, check=False
    )
    assert again["infcode"] == -1
    assert dt.datetime.now(db.SHANGHAI)  # (clock is real here: the code was used within its 60 s)
