"""Batch settlement throughput on a synthetic region (claims per second, peak memory).

    python benchmarks/bench_settlement.py --claims 1000000

Generates a region big enough for the requested number of claims (cached
under --work), then times the batch engine in a fresh process per mode so
that each peak-memory figure is its own:

* ``single``  – settle_batch, one thread;
* ``threads`` – settle_batch_parallel, two shards of whole families in two threads;
* ``bounded`` – settle_batch_parallel, shards of about 250,000 claims, two at a time
  (what ``settle_year`` does, so memory stays bounded for any region size).

Throughput counts settlement only (the contract tables are already in memory).
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

MODES = ("single", "threads", "bounded")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def region_for(claims: int, seed: int, work: Path) -> Path:
    from yibao.settlement.annual import read_parquet
    from yibao.synth.cli import run_synth

    probe = work / f"probe-{seed}"
    if not (probe / "encounter.parquet").exists():
        run_synth(people=20_000, seed=seed, out=probe, db=None, year=2025)
    per_person = read_parquet(probe, "encounter", ["mdtrt_id"]).num_rows / 20_000
    people = int(claims / per_person) + 1
    data = work / f"region-{people}-{seed}"
    if not (data / "encounter.parquet").exists():
        run_synth(people=people, seed=seed, out=data, db=None, year=2025)
    return data


def child(mode: str, data: Path, repeat: int) -> None:
    from yibao.benefits.policy import PolicyBook
    from yibao.settlement.annual import CLAIM_COLUMNS, prescriber_level, read_lines, read_parquet
    from yibao.settlement.batch import settle_batch, settle_batch_parallel
    from yibao.settlement.catalog import Catalog

    persons = read_parquet(data, "person")
    inst = read_parquet(data, "institution", ["fixmedins_code", "hosp_lv"])
    links = read_parquet(data, "family_link", ["psn_no", "relative_psn_no", "relation"])
    catalog = Catalog.from_table(read_parquet(data, "med_list"))
    enc = read_parquet(data, "encounter", CLAIM_COLUMNS).rename_columns(
        [c if c != "endtime" else "setl_time" for c in CLAIM_COLUMNS]
    )
    lines = read_lines(data)
    loaded = rss_mb()
    book = PolicyBook.default()
    policy = book.policy("990100")
    args = (enc, lines, persons, inst, catalog, policy, book, links)
    circulation = prescriber_level(data)  # circulated prescriptions at the issuer's level, as settle_year
    run = {
        "single": lambda: settle_batch(*args, circulation=circulation),
        "threads": lambda: settle_batch_parallel(*args, workers=2, circulation=circulation),
        "bounded": lambda: settle_batch_parallel(*args, workers=2, shard_claims=250_000, circulation=circulation),
    }[mode]
    times = []
    for _ in range(repeat):
        res = None  # drop the previous result before the next run
        t = time.perf_counter()
        res = run()
        times.append(time.perf_counter() - t)
    n = enc.num_rows
    print(
        f"{mode:8s} best {min(times):5.2f} s of {repeat} → {n / min(times):>9,.0f} claims/s "
        f"({res.settlements.num_rows:,} settled, {len(res.rejected):,} refused); "
        f"peak RSS {rss_mb():,.0f} MB (inputs loaded: {loaded:,.0f} MB)",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", type=Path, default=Path("/tmp/yibao-bench"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", choices=MODES)
    ap.add_argument("--data", type=Path)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data, args.repeat)
        return
    data = region_for(args.claims, args.seed, args.work)
    import pyarrow.parquet as pq

    meta = {t: pq.ParquetFile(data / f"{t}.parquet").metadata.num_rows for t in ("person", "encounter", "fee_detail")}
    print(
        f"region: {meta['person']:,} people, {meta['encounter']:,} claims, {meta['fee_detail']:,} fee lines "
        f"(SYNTHETIC, seed {args.seed})"
    )
    print(f"machine: {cpu_name()}, {sys.platform}, Python {platform.python_version()}")
    for mode in MODES:
        subprocess.run(
            [sys.executable, __file__, "--child", mode, "--data", str(data), "--repeat", str(args.repeat)], check=True
        )


if __name__ == "__main__":
    main()
