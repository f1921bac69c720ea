"""Benchmark: a SYNTHETIC region's year settled by the streamed engine (duckdb) and by Spark, same rows checked.

    python benchmarks/bench_spark.py --people 100000 [--master local[2]] [--shard-claims 100000]
                                      [--job settle|scan|drg|dip|all]

Generates the region (seed 7, labelled synthetic) in a temp dir, settles it
with ``settle_year`` and with ``settle_year_spark`` (Spark session start-up
timed apart), checks that ``settlement.parquet`` is equal row for row and
prints the figures.  ``--job scan`` runs the post-care supervision scan on DuckDB and on
Spark (:func:`yibao.spark.supervision.scan_spark`) and checks the hits equal.
The issue's size is 10 M people; see benchmarks/RESULTS.md
for what this 2-core machine was run at.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from yibao.settlement.annual import settle_year
from yibao.spark.session import get_session
from yibao.spark.settlement import settle_year_spark
from yibao.synth.region import write_parquet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--master", default=None, help="spark.master (default $YIBAO_SPARK_MASTER or local[2])")
    ap.add_argument("--shard-claims", type=int, default=100_000)
    ap.add_argument("--job", choices=("settle", "scan", "drg", "dip", "all"), default="settle")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "region"
        d.mkdir()
        t = time.perf_counter()
        write_parquet(d, a.people, 7)
        print(f"synth {a.people:,} people: {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        spark = get_session(a.master)
        spark.sparkContext.setLogLevel("ERROR")
        print(f"spark {spark.sparkContext.master} session start: {time.perf_counter() - t:.1f} s")
        if a.job in ("scan", "all"):
            bench_scan(d, spark)
        if a.job in ("drg", "all"):
            bench_drg(d, spark)
        if a.job in ("dip", "all"):
            bench_dip(d, spark)
        if a.job in ("settle", "all"):
            bench_settle(d, Path(tmp), spark, a.shard_claims)
        spark.stop()


def bench_scan(d: Path, spark) -> None:
    from yibao.spark.supervision import scan_spark
    from yibao.supervision.batch import scan

    t = time.perf_counter()
    a = scan(d)
    s1 = time.perf_counter() - t
    t = time.perf_counter()
    b = scan_spark(d, spark=spark)
    s2 = time.perf_counter() - t
    key = ["rule_id", "entity_id"]
    ha, hb = (h.sort_values(key).reset_index(drop=True).astype(str) for h in (a.hits, b.hits))
    print(f"scan: {a.lines:,} lines, {len(a.hits):,} hits")
    print(f"scan duckdb: {s1:.1f} s; spark: {s2:.1f} s (setup {b.seconds.get('setup', 0):.1f} s)")
    print(
        f"scan hits identical: {ha.equals(hb)}; on the driver: {', '.join(b.on_driver)}; not on Spark: {b.not_on_spark}"
    )


def bench_drg(d: Path, spark) -> None:
    from yibao.payment.cases import case_view_sql, connect
    from yibao.payment.drg import group_batch, load_scheme
    from yibao.spark.drg import group_batch_spark

    scheme = load_scheme("example-city-a")
    cases = connect().sql(case_view_sql(d)).df()
    t = time.perf_counter()
    a = group_batch(scheme, cases)
    s1 = time.perf_counter() - t
    t = time.perf_counter()
    b = group_batch_spark(scheme, cases, spark)
    s2 = time.perf_counter() - t
    print(f"drg: {len(cases):,} cases; in process {s1:.1f} s; spark {s2:.1f} s; identical: {a.equals(b)}")


def bench_dip(d: Path, spark) -> None:
    from yibao.payment.cases import CodeTables, connect, load_cases
    from yibao.payment.catalog import build_catalog
    from yibao.payment.dip import settle
    from yibao.payment.params import load_dip_params
    from yibao.spark.dip import spark_points

    settle_year(d)  # DIP reads the year's settlement shares
    params = load_dip_params("example-city-a")
    con = connect()
    cases = load_cases(con, d, params, CodeTables.default())
    cat = build_catalog(con, cases, params)
    t = time.perf_counter()
    a = settle(con, cases, cat, params)
    s1 = time.perf_counter() - t
    t = time.perf_counter()
    b = settle(con, cases, cat, params, points=spark_points(spark))
    s2 = time.perf_counter() - t
    same = all(getattr(a, n).equals(getattr(b, n)) for n in ("cases", "periods", "institutions", "clearing"))
    print(f"dip: {len(a.cases):,} cases; duckdb {s1:.1f} s; spark points {s2:.1f} s; identical: {same}")


def bench_settle(d: Path, tmp: Path, spark, shard_claims: int) -> None:
    t = time.perf_counter()
    r1 = settle_year(d, out_dir=Path(tmp) / "duckdb", shard_claims=shard_claims)
    s1 = time.perf_counter() - t
    print(f"duckdb/streamed: {s1:.1f} s ({r1.claims / s1:,.0f} claims/s)", flush=True)  # kept if Spark fails
    t = time.perf_counter()
    r2 = settle_year_spark(d, out_dir=Path(tmp) / "spark", shard_claims=shard_claims, spark=spark)
    s2 = time.perf_counter() - t
    same = same_rows(Path(tmp) / "duckdb" / "settlement.parquet", Path(tmp) / "spark" / "settlement.parquet")
    n = r1.claims
    print(f"claims {n:,}; shards {r2.batch.shards}")
    print(f"spark {spark.sparkContext.master}: {s2:.1f} s ({n / s2:,.0f} claims/s)")
    print(f"settlement.parquet identical: {same}")


def same_rows(a: Path, b: Path, chunk: int = 1_000_000) -> bool:
    """True when the two Parquet files hold the same rows in the same order.

    Compared a million rows at a time, so 10 M people's settlements (tens of millions of rows)
    need not fit in memory twice."""
    fa, fb = pq.ParquetFile(a), pq.ParquetFile(b)
    if fa.metadata.num_rows != fb.metadata.num_rows or not fa.schema_arrow.equals(fb.schema_arrow):
        return False
    return all(x.equals(y) for x, y in zip(_slices(fa, chunk), _slices(fb, chunk), strict=True))


def _slices(f: pq.ParquetFile, n: int):
    """The file's rows as tables of exactly ``n`` rows (the last one shorter), whatever its row groups."""
    buf: list[pa.RecordBatch] = []
    size = 0
    for batch in f.iter_batches(batch_size=n):
        buf.append(batch)
        size += batch.num_rows
        while size >= n:
            t = pa.Table.from_batches(buf)
            rest = t.slice(n)
            yield t.slice(0, n)
            buf, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(buf)


if __name__ == "__main__":
    main()
