"""Peak memory and wall time of ``yibao settle --data DIR`` (streamed family shards) at 100 k and 1 M people.

    python benchmarks/bench_settle_memory.py                      # 100 k and 1 M people
    python benchmarks/bench_settle_memory.py --people 10000000    # one size (needs ~3.5 GB of disk)
    python benchmarks/bench_settle_memory.py --in-memory          # also the all-in-memory reference

Each region is generated once with ``yibao synth`` (SYNTHETIC data, cached
under ``--work``, regenerated if its manifest is not the current format), then
each settlement runs as its own ``yibao settle`` subprocess, started by a
fresh small driver interpreter per run, so that the driver's
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` is the peak resident memory
of that one ``yibao settle`` and nothing else.

``--in-memory`` also runs the previous engine (``settle_year(stream=False)``,
every table in memory) and checks that both wrote the same
``settlement.parquet`` (row for row) and the same accumulators and refused
claims (as sets).  Prints one line per run and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

TARGET_MB = 2048

# A driver run in a fresh interpreter: runs one command and prints its wall time and peak RSS (KiB on Linux).
DRIVER = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
print(json.dumps({"rc": r.returncode, "wall_s": time.perf_counter() - t,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "out": r.stdout[-2000:]}))
"""

IN_MEMORY = r"""
import sys
from pathlib import Path
from yibao.settlement.annual import settle_year
res = settle_year(Path(sys.argv[1]), out_dir=Path(sys.argv[2]), stream=False)
print(f"settled {res.batch.settlements.num_rows:,} of {res.claims:,} claims in {res.seconds:.2f} s")
"""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def yibao_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("yibao")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "yibao.cli"]


def region(people: int, seed: int, work: Path) -> Path:
    d = work / f"region-{people}-{seed}"
    try:
        m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
        current = m.get("format") == 2 and "encounter" in m.get("tables", {})  # current format, generation finished
    except (OSError, ValueError):
        current = False
    if not current:
        shutil.rmtree(d, ignore_errors=True)
        t = time.perf_counter()
        subprocess.run([*yibao_cmd(), "synth", "--people", str(people), "--seed", str(seed), "--out", str(d)],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        print(f"generated {people:,} people (SYNTHETIC, seed {seed}) in {time.perf_counter() - t:.0f} s", flush=True)
    return d


def measure(cmd: list[str]) -> dict:
    r = subprocess.run([sys.executable, "-c", DRIVER, *cmd], capture_output=True, text=True, check=True)
    res = json.loads(r.stdout)
    if res["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res['out']}")
    return res


def same_outputs(a: Path, b: Path) -> str:
    import pandas as pd
    import pyarrow.parquet as pq

    if not pq.read_table(a / "settlement.parquet").equals(pq.read_table(b / "settlement.parquet")):
        return "settlement.parquet DIFFERS"
    k = ["psn_no", "policy_year", "kind", "period"]
    acc = [pq.read_table(d / "accumulator.parquet").to_pandas().sort_values(k).reset_index(drop=True) for d in (a, b)]
    rej = [
        pd.read_parquet(d / "settlement_rejected.parquet").sort_values(["mdtrt_id", "field"]).reset_index(drop=True)
        for d in (a, b)
    ]
    if not acc[0].equals(acc[1]):
        return "accumulator DIFFERS"
    if not rej[0].equals(rej[1]):
        return "rejected DIFFERS"
    return "identical"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", type=Path, default=Path("/tmp/yibao-bench-settle-memory"))
    ap.add_argument("--in-memory", action="store_true", help="also run the all-in-memory engine and compare outputs")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}", flush=True)
    rows = []
    for people in args.people:
        d = region(people, args.seed, args.work)
        claims = json.loads((d / "manifest.json").read_text(encoding="utf-8"))["tables"]["encounter"]["rows"]
        out_s = args.work / f"out-stream-{people}"
        r = measure([*yibao_cmd(), "settle", "--data", str(d), "--out", str(out_s)])
        rows.append((people, claims, "streamed", r, ""))
        print(
            f"{people:>11,} people {claims:>11,} claims  streamed   peak {r['maxrss_kb'] / 1024:8,.0f} MB  wall "
            f"{r['wall_s']:7.1f} s",
            flush=True,
        )
        if args.in_memory:
            out_m = args.work / f"out-memory-{people}"
            r = measure([sys.executable, "-c", IN_MEMORY, str(d), str(out_m)])
            verdict = same_outputs(out_s, out_m)
            rows.append((people, claims, "in memory", r, verdict))
            print(
                f"{people:>11,} people {claims:>11,} claims  in memory  peak {r['maxrss_kb'] / 1024:8,.0f} MB  wall "
                f"{r['wall_s']:7.1f} s  outputs {verdict}",
                flush=True,
            )
    print()
    print("| people | claims | engine | peak RSS | wall | outputs |")
    print("|---:|---:|---|---:|---:|---|")
    for people, claims, mode, r, verdict in rows:
        ok = "" if mode != "streamed" else (" ✓" if r["maxrss_kb"] / 1024 <= TARGET_MB else " ✗ over 2 GB")
        print(
            f"| {people:,} | {claims:,} | {mode} | {r['maxrss_kb'] / 1024:,.0f} MB{ok} | {r['wall_s']:.1f} s | "
            f"{verdict} |"
        )


if __name__ == "__main__":
    main()
