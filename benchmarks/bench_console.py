"""Console and e-code benchmark.

1. Time to first render of each console page on the demo region (about
   100,000 people, one year, loaded into SQLite): the server's time for the
   first (cold) request of each page, and Debian Chromium's navigation time to
   the ``load`` event when /usr/bin/chromium is there.  Target < 1 s.
2. E-code generation + verification per second: the signed-token mechanics
   alone for each algorithm, and the full service (binding lookup, block check,
   usage record and risk rules in one SQLite transaction per verification).
   Target >= 5,000 per second.

    python benchmarks/bench_console.py --demo /tmp/yibao-demo       # made by: yibao demo --out DIR --db sqlite:///DIR/yibao.db
    python benchmarks/bench_console.py --people 100000               # builds the demo region first (a few minutes)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from yibao.codes import registry

PAGES = ("fund", "settlement", "procurement", "payment", "supervision", "ecode")
PASSWORD = "bench-password-1"


def build_demo(people: int, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "yibao.cli",
            "demo",
            "--people",
            str(people),
            "--out",
            str(out),
            "--db",
            f"sqlite:///{out / 'yibao.db'}",
        ],
        check=True,
    )


def prepare(db_url: str) -> None:
    """Console users and one persisted SYNTHETIC procurement round with orders (the demo persists none)."""
    from yibao.core import db
    from yibao.procurement.engine import run_round
    from yibao.procurement.params import get_ruleset
    from yibao.procurement.service import list_rounds, save_orders, save_round
    from yibao.synth.procurement import generate_orders, generate_round
    from yibao.web.auth import AuthService

    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    AuthService(engine).add_user("bench-bureau", PASSWORD, "bureau")
    if not list_rounds(engine):
        sr = generate_round(drugs=10, institutions=500, regions=8, seed=0)
        res = run_round(sr.round, get_ruleset("national-batch-07"))
        rid = save_round(engine, sr.round, res)
        save_orders(engine, rid, generate_orders(res.contracts, months=6, seed=0))
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_times(db_url: str, data_dir: Path) -> list[tuple[str, float, float | None, float | None]]:
    """(page, server first render s, browser load s, background analysis s) per page, each page's first request cold."""
    import httpx
    import uvicorn

    from yibao.api.app import build_interface
    from yibao.server import create_app

    app = create_app(build_interface(db_url))
    app.state.console.data_dir = data_dir
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    out = []
    try:
        with httpx.Client(base_url=base, timeout=600) as c:
            c.post("/console/login", data={"username": "bench-bureau", "password": PASSWORD})
            server_t: dict[str, float] = {}
            analysis_t: dict[str, float | None] = {}
            for name in PAGES:
                t = time.perf_counter()
                r = c.get(f"/console/{name}")
                server_t[name] = time.perf_counter() - t
                assert r.status_code == 200, (name, r.status_code)
                analysis_t[name] = None
                if 'id="pending"' in r.text:  # a background analysis over the Parquet started: time it to the end
                    while 'id="pending"' in r.text:
                        time.sleep(0.5)
                        r = c.get(f"/console/{name}")
                    analysis_t[name] = time.perf_counter() - t
            cookie = c.cookies.get("yb_session")
        browser_t = browser_times(base, cookie) if os.path.exists("/usr/bin/chromium") else {}
        for name in PAGES:
            out.append((name, server_t[name], browser_t.get(name), analysis_t[name]))
    finally:
        server.should_exit = True
        th.join(timeout=10)
    return out


def browser_times(base: str, cookie: str) -> dict[str, float]:
    """Chromium navigation to the load event, per page (figures are cached server-side by now, as for any second
    visitor)."""
    from playwright.sync_api import sync_playwright

    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    out = {}
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as prof:
        ctx = pw.chromium.launch_persistent_context(prof, executable_path="/usr/bin/chromium", headless=True, args=args)
        ctx.add_cookies([{"name": "yb_session", "value": cookie, "url": base}])
        pg = ctx.new_page()
        pg.goto(f"{base}/console/fund")  # warm the browser process itself
        for name in PAGES:
            t = time.perf_counter()
            pg.goto(f"{base}/console/{name}", wait_until="load")
            out[name] = time.perf_counter() - t
        ctx.close()
    return out


def token_rates(seconds: float = 2.0) -> list[tuple[str, float, int]]:
    from yibao.ecode import tokens

    now = dt.datetime.now(dt.UTC)
    out = []
    for alg in ("hmac-sm3", "hmac-sha256", "sm2"):
        k = tokens.SigningKey.generate(alg)
        keys = {k.kid: k}
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            code = tokens.issue(k, "b0123456789abcdef", now)
            tokens.verify(code, keys, now, ttl_seconds=60)
            n += 1
        out.append((alg, n / (time.perf_counter() - t0), n))
    return out


def service_rate(
    n_people: int = 200, rounds: int = 10, flush_ms: int = 0, url: str | None = None, tag: str = "P"
) -> tuple[float, int]:
    """bind n people once; then generate + verify (recorded, risk-checked) ``rounds`` times each, on a fresh database
    (a new SQLite file, or ``url``: an empty PostgreSQL database)."""
    from yibao.core import db
    from yibao.ecode.service import EcodeService

    tmp = tempfile.mkdtemp(prefix="yibao-bench-ecode-")
    url = url or f"sqlite:///{tmp}/e.db"
    db.upgrade(url)
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        s.add(
            registry.Institution(
                fixmedins_code=f"H{tag}",
                fixmedins_name="H1",
                fixmedins_type="hospital",
                hosp_lv=2,
                admdvs="990101",
                synthetic=True,
            )
        )
        for i in range(n_people):
            s.add(registry.Person(psn_no=f"{tag}{i:06d}", certno=f"9901011990{i:08d}", insutype="310", synthetic=True))
    from yibao.ecode.params import default_params

    p = default_params()
    svc = EcodeService(
        engine, params=p.model_copy(update={"usage_log": p.usage_log.model_copy(update={"flush_ms": flush_ms})})
    )
    for i in range(n_people):
        svc.bind(f"{tag}acct{i}", f"{tag}{i:06d}", {"certno": f"9901011990{i:08d}", "face": "live-match"})
    n, t0 = 0, time.perf_counter()
    for _ in range(rounds):
        for i in range(n_people):
            svc.verify(svc.generate(f"{tag}acct{i}", f"{tag}{i:06d}"), fixmedins_code=f"H{tag}", purpose="bench")
            n += 1
    svc.flush()
    rate = n / (time.perf_counter() - t0)
    svc.close()
    engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return rate, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", type=Path, help="a `yibao demo --out DIR --db sqlite:///DIR/yibao.db` directory")
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--pg", help="also measure the e-code service on this EMPTY PostgreSQL database URL")
    a = ap.parse_args()
    demo = a.demo or Path(tempfile.mkdtemp(prefix="yibao-bench-console-"))
    if not (demo / "yibao.db").exists():
        print(f"building the demo region ({a.people:,} people) in {demo} …", flush=True)
        build_demo(a.people, demo)
    db_url = f"sqlite:///{demo / 'yibao.db'}"
    prepare(db_url)
    from sqlalchemy import create_engine, text

    e = create_engine(db_url)
    with e.connect() as c:
        people = c.execute(text("SELECT count(*) FROM person")).scalar()
        claims = c.execute(text("SELECT count(*) FROM settlement")).scalar()
    e.dispose()
    print(
        f"\n## console pages on the demo region: {people:,} people, {claims:,} settlements (SQLite), machine: "
        f"{os.cpu_count()} cores"
    )
    print(f"{'page':<12} {'server first render':>20} {'Chromium load':>14} {'background analysis':>20}")
    for name, srv, br, an in page_times(db_url, demo / "region"):
        print(
            f"{name:<12} {srv * 1000:>17.0f} ms {'' if br is None else f'{br * 1000:.0f} ms':>14} "
            f"{'' if an is None else f'{an:.1f} s':>20}"
        )
    print("\n## e-code generation + verification")
    for alg, rate, n in token_rates():
        print(f"tokens only, {alg:<12} {rate:>10,.0f} /s   ({n:,} pairs)")
    for flush_ms in (0, 200):
        rate, n = service_rate(flush_ms=flush_ms)
        print(
            f"full service, usage_log.flush_ms={flush_ms:<4} (SQLite: binding + block check, risk rules, usage record) "
            f"{rate:,.0f} /s  ({n:,} pairs)"
        )
    if a.pg:
        for flush_ms in (0, 200):
            rate, n = service_rate(
                flush_ms=flush_ms, url=a.pg, tag=f"B{flush_ms}X{os.getpid()}"
            )  # fresh people each run
            print(f"full service, usage_log.flush_ms={flush_ms:<4} (PostgreSQL) {rate:,.0f} /s  ({n:,} pairs)")


if __name__ == "__main__":
    main()
