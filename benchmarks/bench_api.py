"""Benchmark: real-time settlement through the national envelope (yibao serve), on SQLite and PostgreSQL.

A server process (``yibao serve``) and this load generator (a separate
process, asyncio + httpx on loopback, bounded in time) share the machine.
Every client signs in (9001), then repeats full outpatient flows:
2201 registration → 2204 fee upload (3 lines) → 2206 pre-settlement → 2207
settlement, for random people of a synthetic roster (employees with personal
accounts and residents). Reported: full flows per second, requests per
second, p50 / p95 / p99 latency of 2207, errors. At the end it proves that
nothing was lost or settled twice: the settlements in the database are
exactly the replied ``setl_id``s, and 3201 reconciliation of the replies'
totals answers ``stmt_rslt = 0`` for each scheme.

    python benchmarks/bench_api.py --seconds 20 --clients 1,16,64 \
        [--pg-url postgresql://postgres:pw@127.0.0.1:5432/postgres] [--workers 2]

(``--pg-url`` is an admin URL: a fresh database is created and dropped.
Default: ``$YIBAO_TEST_POSTGRES_URL``; without one only SQLite runs.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import func, select

from yibao.api.envelope import dumps_exact, fmt_time, loads_exact
from yibao.api.hisclient import ENVELOPE_PATH, HisClient, Item
from yibao.codes import registry
from yibao.core import db as ydb
from yibao.settlement import records

REGION = "990100"
INSTITUTION = "BENCH-H2"
ITEMS = [
    Item("XV99AAS007Z999010700000", "28", "1.20"),
    Item("XV99AAS010Z999011000000", "14", "0.50"),
    Item("XV99AAS012Z999011200000", "7", "2.35"),
]
PEOPLE = 2000


def seed(url: str) -> list[tuple[str, str, str]]:
    """A synthetic roster (labelled synthetic): 60 % employees with accounts, 40 % residents."""
    ydb.upgrade(url)
    engine = ydb.make_engine(url)
    rnd = random.Random(7)
    roster = []
    with ydb.session_scope(engine) as s:
        s.add(
            registry.Institution(
                fixmedins_code=INSTITUTION,
                fixmedins_name="基准测试医院 (synthetic)",
                fixmedins_type="hospital",
                hosp_lv=2,
                admdvs=REGION,
                synthetic=True,
            )
        )
        for i in range(PEOPLE):
            emp = i % 5 < 3
            psn = f"BP{i:06d}"
            certno = f"9901011970{i:08d}"
            s.add(
                registry.Person(
                    psn_no=psn,
                    certno=certno,
                    psn_name="合成",
                    gend=str(1 + i % 2),
                    brdy=__import__("datetime").date(1950 + rnd.randrange(55), 1 + rnd.randrange(12), 1),
                    insutype="310" if emp else "390",
                    psn_type="in_service" if emp else "resident",
                    insuplc_admdvs=REGION,
                    assistance="",
                    contribution_base=600_000 if emp else 0,
                    acct_balc=200_000 if emp else 0,
                    synthetic=True,
                )
            )
            roster.append((psn, "310" if emp else "390", certno))
    engine.dispose()
    return roster


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(url: str, port: int, workers: int, sqlite_sync: str = "FULL") -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-c",
        "from yibao.cli import app; app()",
        "serve",
        "--db",
        url,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "error",
        "--insecure-demo",
    ]  # the load generator signs in without a credential
    env = {**os.environ, "YIBAO_SQLITE_SYNCHRONOUS": sqlite_sync}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode())
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


class Stats:
    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.retries: dict[str, int] = defaultdict(int)
        self.flows = 0
        self.settled: list[dict] = []


async def client_loop(http: httpx.AsyncClient, roster, stats: Stats, until: float, seed_: int) -> None:
    rnd = random.Random(seed_)
    his = HisClient(lambda env: {}, INSTITUTION)

    async def call(infno: str, payload: dict) -> dict | None:
        env = his.envelope(infno, payload)
        body = dumps_exact(env).encode()
        t = time.perf_counter()
        for attempt in range(4):  # an HIS resends the same message (same msgid) when the reply is lost
            try:
                r = await http.post(ENVELOPE_PATH, content=body)
                reply = loads_exact(r.content)
                break
            except (httpx.HTTPError, ValueError) as exc:
                stats.retries[f"{infno} {type(exc).__name__}"] += 1
                if attempt == 3:
                    stats.errors[f"{infno} {type(exc).__name__}"] += 1
                    return None
        stats.lat[infno].append(time.perf_counter() - t)
        if reply.get("infcode") != 0:
            stats.errors[f"{infno} {reply.get('err_msg', '')[:60]}"] += 1
            return None
        return reply

    out = await call("9001", {"signIn": {"opter_no": "bench", "mac": "", "ip": "127.0.0.1"}})
    if out is None:
        return
    his.sign_no = out["output"]["signinoutb"]["sign_no"]
    while time.perf_counter() < until:
        psn, insutype, certno = roster[rnd.randrange(len(roster))]
        now = his.clock()
        reg = await call(
            "2201",
            {
                "data": {
                    "psn_no": psn,
                    "insutype": insutype,
                    "begntime": fmt_time(now),
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": certno,
                    "ipt_otp_no": uuid.uuid4().hex[:20],
                }
            },
        )
        if reg is None:
            continue
        mdtrt_id = reg["output"]["data"]["mdtrt_id"]
        rows = HisClient.feedetail(mdtrt_id, psn, ITEMS, when=now)
        if await call("2204", {"feedetail": rows}) is None:
            continue
        total = sum((r["det_item_fee_sumamt"] for r in rows), Decimal("0.00"))
        data = {
            "psn_no": psn,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": certno,
            "med_type": "11",
            "medfee_sumamt": total,
            "psn_setlway": "01",
            "mdtrt_id": mdtrt_id,
            "insutype": insutype,
            "acct_used_flag": "1",
        }
        if await call("2206", {"data": data}) is None:
            continue
        done = await call("2207", {"data": data})
        if done is None:
            continue
        stats.settled.append(done["output"]["setlinfo"])
        stats.flows += 1


async def drive(base: str, roster, clients: int, seconds: float) -> tuple[Stats, float]:
    stats = Stats()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        t0 = time.perf_counter()
        until = t0 + seconds
        await asyncio.gather(*(client_loop(http, roster, stats, until, k) for k in range(clients)))
        elapsed = time.perf_counter() - t0
    return stats, elapsed


def verify(url: str, base: str, stats: Stats) -> str:
    """Nothing lost or duplicated; 3201 of the replies' totals agrees for each scheme."""
    engine = ydb.make_engine(url)
    with engine.connect() as conn:
        ids = set(
            conn.execute(
                select(records.Settlement.setl_id).where(records.Settlement.refd_setl_flag.is_(False))
            ).scalars()
        )
        n = conn.execute(select(func.count()).select_from(records.Settlement)).scalar_one()
    engine.dispose()
    replied = [s["setl_id"] for s in stats.settled]
    lost = len(set(replied) - ids)
    extra = len(ids - set(replied))
    dup = len(replied) - len(set(replied))
    his = HisClient(
        lambda env: loads_exact(
            httpx.post(base + ENVELOPE_PATH, content=dumps_exact(env).encode(), timeout=60).content
        ),
        INSTITUTION,
    )
    his.sign_in()
    results = []
    days = sorted({s["setl_time"][:10] for s in stats.settled})
    for insutype in ("310", "390"):
        mine = [s for s in stats.settled if s["insutype"] == insutype]
        tot = {
            "medfee_sumamt": sum((s["medfee_sumamt"] for s in mine), Decimal("0.00")),
            "fund_pay_sumamt": sum((s["fund_pay_sumamt"] for s in mine), Decimal("0.00")),
            "acct_pay": sum((s["acct_pay"] for s in mine), Decimal("0.00")),
            "fixmedins_setl_cnt": len(mine),
        }
        if not days:
            continue
        r = his.call(
            "3201",
            {
                "data": {
                    "insutype": insutype,
                    "clr_type": "11",
                    "setl_optins": REGION,
                    "stmt_begndate": days[0],
                    "stmt_enddate": days[-1],
                    **tot,
                }
            },
            check=False,
        )
        results.append(f"{insutype}:{r.get('output', {}).get('stmtinfo', {}).get('stmt_rslt', 'ERR')}")
    ok = lost == 0 and extra == 0 and dup == 0 and n == len(replied) and all(x.endswith(":0") for x in results)
    return (
        f"{'OK' if ok else 'MISMATCH'} (db settlements {n}, replied {len(replied)}, lost {lost}, "
        f"unreplied {extra}, duplicated {dup}; 3201 stmt_rslt {' '.join(results)})"
    )


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000


def run_one(backend: str, url: str, clients: int, seconds: float, workers: int, sqlite_sync: str = "FULL") -> str:
    roster = seed(url)
    port = free_port()
    proc = start_server(url, port, workers, sqlite_sync)
    base = f"http://127.0.0.1:{port}"
    try:
        stats, elapsed = asyncio.run(drive(base, roster, clients, seconds))
        check = verify(url, base, stats)
    finally:
        stop_server(proc)
    reqs = sum(len(v) for v in stats.lat.values())
    s7 = stats.lat.get("2207", [])
    errors = sum(stats.errors.values())
    line = (
        f"| {backend} | {clients} | {workers} | {stats.flows / elapsed:,.1f} | {reqs / elapsed:,.0f} | "
        f"{pct(s7, 50):.1f} | {pct(s7, 95):.1f} | {pct(s7, 99):.1f} | "
        f"{statistics.mean(s7) * 1000 if s7 else float('nan'):.1f} | {errors} | {sum(stats.retries.values())} | "
        f"{check} |"
    )
    print(line, flush=True)
    for what, d in (("error", stats.errors), ("resent", stats.retries)):
        for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:5]:
            print(f"    {what} x{v}: {k}", flush=True)
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pg-url", default=os.environ.get("YIBAO_TEST_POSTGRES_URL", ""))
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument(
        "--sqlite-synchronous",
        default="FULL",
        choices=["FULL", "NORMAL"],
        help="the server's YIBAO_SQLITE_SYNCHRONOUS (FULL: every commit synced, the default)",
    )
    args = ap.parse_args()
    print(
        f"bench_api: {args.seconds:.0f} s per run, clients {args.clients}, {args.workers} server workers, "
        f"{os.cpu_count()} CPUs (load generator on the same machine); synthetic roster of {PEOPLE} people"
    )
    print(
        "| db | clients | workers | flows/s | requests/s | 2207 p50 ms | p95 ms | p99 ms | mean ms | errors | resent | "
        "check |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for backend in args.backends.split(","):
        for c in (int(x) for x in args.clients.split(",")):
            if backend == "sqlite":
                d = tempfile.mkdtemp(prefix="bench-api-")
                run_one(
                    f"SQLite ({args.sqlite_synchronous})",
                    f"sqlite:///{Path(d) / 'yibao.db'}",
                    c,
                    args.seconds,
                    args.workers,
                    args.sqlite_synchronous,
                )
            elif backend == "postgres" and args.pg_url:
                import psycopg
                from sqlalchemy.engine import make_url

                admin = args.pg_url.replace("postgresql+psycopg://", "postgresql://")
                name = f"yibao_bench_{uuid.uuid4().hex[:10]}"
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                url = make_url(admin).set(database=name).render_as_string(hide_password=False)
                try:
                    run_one("PostgreSQL", url, c, args.seconds, args.workers)
                finally:
                    with psycopg.connect(admin, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
