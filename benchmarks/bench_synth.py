"""Benchmark the synthetic-region generator: people per second and peak memory.

    python benchmarks/bench_synth.py                  # 1,000,000 people, generation only
    python benchmarks/bench_synth.py --people 200000 --parquet /tmp/region

Generation includes people, families, institutions, encounters, fee lines and
ground truth, as Arrow tables in the contract schema.  With ``--parquet`` the
tables are also written (zstd) and the time includes the writing.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path


def peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--year", type=int, default=2025)
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument(
        "--parquet", type=Path, default=None, help="also write Parquet here ('tmp' = a temporary directory)"
    )
    args = ap.parse_args()

    from yibao.synth import DEFAULT_CHUNK, generate_region, write_parquet
    from yibao.synth.catalog import default_catalog

    chunk = args.chunk_size or DEFAULT_CHUNK
    default_catalog()  # load the code tables outside the timing
    rows: dict[str, int] = {}
    t0 = time.perf_counter()
    if args.parquet is None:
        for name, table in generate_region(args.people, args.seed, year=args.year, chunk_size=chunk):
            rows[name] = rows.get(name, 0) + table.num_rows
        what = "generate (Arrow tables in memory, streamed)"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) if str(args.parquet) == "tmp" else args.parquet
            rows = write_parquet(out, args.people, args.seed, year=args.year, chunk_size=chunk)
        what = f"generate + write Parquet (zstd) to {args.parquet}"
    dt = time.perf_counter() - t0
    print(f"yibao.synth benchmark: {args.people:,} people, seed {args.seed}, chunk {chunk:,}: {what}")
    for name, n in rows.items():
        print(f"  {name:<13} {n:>14,} rows")
    print(f"  time          {dt:>14.2f} s")
    print(f"  people/s      {args.people / dt:>14,.0f}")
    print(f"  fee lines/s   {rows.get('fee_detail', 0) / dt:>14,.0f}")
    print(f"  peak RSS      {peak_rss_mib():>14,.0f} MiB")


if __name__ == "__main__":
    main()
