"""A region's year settled on Spark (Spark 批量结算): same shards, same engine, same rows as the streamed path.

1. the driver labels every person with a family shard — the connected
   components of family links (:func:`yibao.settlement.batch.family_components`),
   hashed as the streamed engine does (:func:`~yibao.settlement.batch._family_shard`),
   so no account, family payer or accumulator crosses a shard;
2. Spark joins claims to their patient's shard and fee lines to their
   claim's shard and writes the three tables partitioned by shard (the shuffle);
3. one Spark task per shard reads its partition and runs the unchanged
   :func:`~yibao.settlement.batch.settle_batch` (claims, lines and persons in
   input order) and writes its outputs as Parquet files from the executor,
   returning only their names (the driver never collects the rows);
4. the driver merges the shards' sorted settlement files back into claim order
   (settlement time, then input row, as :func:`~yibao.settlement.batch.settle_batch_parallel`
   orders them), holding only the sort keys and one row group at a time.

The input row is an explicit number (Spark's ``_metadata.row_index`` plus the
rows of the files before), not ``monotonically_increasing_id()``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from yibao.benefits.policy import Policy, PolicyBook
from yibao.core import manifest
from yibao.core.contract import SETTLEMENT, with_metadata
from yibao.core.errors import YibaoError
from yibao.core.parquet_io import dataset_files
from yibao.settlement import batch as engine
from yibao.settlement.annual import (
    CLAIM_COLUMNS,
    INPUTS,
    LINE_COLUMNS,
    OUTPUTS,
    ParquetView,
    StreamedBatch,
    YearResult,
    prescriber_level,
    read_parquet,
    require_table,
)
from yibao.settlement.catalog import Catalog
from yibao.spark.session import get_session, parquet_frame

_PAYLOAD = "shard int, kind string, path string"  # each task writes its own files


class RepeatedClaimId(YibaoError):
    """Two encounters share an mdtrt_id, so their fee lines cannot be routed to one shard."""


def _read_shard(root: str, name: str, k: int, schema: pa.Schema, order: str) -> pa.Table | None:
    d = Path(root) / name / f"shard={k}"
    if not d.exists():
        return None
    t = pq.read_table(d)
    t = t.take(pc.sort_indices(t.column(order)))
    keep = [f.name for f in schema] + (["_row"] if order == "_row" and name == "claim" else [])
    t = t.select(keep)
    return t.cast(pa.schema(list(schema) + ([pa.field("_row", pa.int64())] if "_row" in keep else [])))


def settle_year_spark(
    data_dir: Path,
    policy: Policy | None = None,
    book: PolicyBook | None = None,
    out_dir: Path | None = None,
    shard_claims: int = 100_000,
    spark=None,
) -> YearResult:
    """:func:`yibao.settlement.annual.settle_year` on Spark: the same three tables, the same values to the fen."""
    book = book or PolicyBook.default()
    data_dir = Path(data_dir)
    manifest.check(data_dir, INPUTS)
    paths = {name: str(require_table(data_dir, name)) for name in INPUTS}
    out = Path(out_dir or data_dir)
    out.mkdir(parents=True, exist_ok=True)
    spark = spark or get_session()
    t0 = time.perf_counter()

    persons = read_parquet(data_dir, "person")
    links = read_parquet(data_dir, "family_link", ["psn_no", "relative_psn_no", "relation"])
    inst = read_parquet(data_dir, "institution", ["fixmedins_code", "hosp_lv"])
    circulation = prescriber_level(data_dir)
    catalog = Catalog.from_table(read_parquet(data_dir, "med_list"))
    if policy is None:
        regions = pc.unique(persons.column("insuplc_admdvs")).to_pylist()
        if len(regions) != 1:
            raise ValueError(f"persons span several insured regions {regions[:5]}; pass a policy")
        policy = book.policy(str(regions[0]))
    claim_schema = pq.read_schema(paths["encounter"]) if Path(paths["encounter"]).is_file() else None
    n_claims = (
        pq.ParquetFile(paths["encounter"]).metadata.num_rows
        if claim_schema is not None
        else spark.read.parquet(paths["encounter"]).count()
    )
    n_shards = max(1, -(-n_claims // max(1, shard_claims)))
    # 1. family shards on the driver (P integers), the same hash as the streamed engine
    p_shard = engine._family_shard(engine.family_components(persons, links), n_shards).astype(np.int32)
    keyed_persons = persons.append_column("shard", pa.array(p_shard)).append_column(
        "_prow", pa.array(np.arange(persons.num_rows, dtype=np.int64))
    )
    synthetic = bool(pc.all(persons.column("synthetic")).as_py()) if "synthetic" in persons.column_names else False

    from pyspark.sql import functions as F

    scratch = out / f".spark-{uuid.uuid4().hex[:8]}"
    try:
        # the driver's tables reach Spark as Parquet files, not through the JVM heap (createDataFrame of 10 M
        # persons ran the driver out of its 1 GiB heap)
        pdf = parquet_frame(spark, keyed_persons, scratch / "_driver" / "person.parquet")
        shard_of = pdf.select("psn_no", "shard")
        # claims in input order: a monotonic id (partition-major), kept as the order key
        enc = spark.read.parquet(paths["encounter"])
        enc = enc.select(*CLAIM_COLUMNS, "_metadata").withColumnRenamed("endtime", "setl_time")
        enc = input_row_number(spark, paths["encounter"], enc, "_row")
        ids = enc.groupBy("mdtrt_id").count().where("count > 1").limit(1).collect()
        if ids:
            raise RepeatedClaimId(
                f"mdtrt_id {ids[0]['mdtrt_id']!r} appears in two encounters; the Spark engine needs unique claim ids",
                f"就诊ID {ids[0]['mdtrt_id']} 重复，Spark 引擎要求就诊ID唯一",
            )
        first_shard = (
            int(p_shard[0]) if persons.num_rows else 0
        )  # unknown patients: refused in the first person's shard
        claims = enc.join(shard_of, "psn_no", "left").withColumn(  # Spark picks broadcast or shuffle by size
            "shard", F.coalesce("shard", F.lit(first_shard))
        )
        lines = input_row_number(spark, paths["fee_detail"], spark.read.parquet(paths["fee_detail"]), "_lrow")
        lines = lines.select(*LINE_COLUMNS, "_lrow").withColumn(
            "bilg_dr_code", F.when(F.coalesce("rx_circ_flag", F.lit(False)), F.col("bilg_dr_code"))
        )  # the prescriber only where it is read (a circulated line), as prescribers_on_circulated_lines
        lines = lines.join(
            claims.select("mdtrt_id", "shard"), "mdtrt_id", "inner"
        )  # lines of no claim are never settled
        # 2. the shuffle: each table written partitioned by shard
        for name, df in (
            ("claim", claims),
            ("line", lines),
            ("person", pdf),
            (
                "link",
                parquet_frame(
                    spark,
                    links.append_column(
                        "shard",
                        pa.array(
                            p_shard[engine._lookup(links.column("psn_no"), persons.column("psn_no")).clip(0)]
                            if links.num_rows
                            else np.zeros(0, np.int32)
                        ),
                    ).append_column("_krow", pa.array(np.arange(links.num_rows, dtype=np.int64))),
                    scratch / "_driver" / "link.parquet",
                ),
            ),
        ):
            df.repartition("shard").write.partitionBy("shard").parquet(str(scratch / name))
        schemas = {
            "claim": pa.schema(
                [
                    f if f.name != "endtime" else f.with_name("setl_time")
                    for f in pq.read_schema(_first_file(paths["encounter"]))
                    if f.name in CLAIM_COLUMNS
                ]
            ),
            "line": pa.schema([f for f in pq.read_schema(_first_file(paths["fee_detail"])) if f.name in LINE_COLUMNS]),
            "person": persons.schema,
            "link": links.schema,
        }
        schemas["claim"] = pa.schema(
            [schemas["claim"].field(c if c != "endtime" else "setl_time") for c in CLAIM_COLUMNS]
        )
        schemas["line"] = pa.schema([schemas["line"].field(c) for c in LINE_COLUMNS])
        first = spark.read.parquet(str(scratch / "claim")).agg(F.min("setl_time")).collect()[0][0]
        account_start = (
            dt.date(first.year, 1, 1) if first is not None else None
        )  # UTC session: a date near New Year is re-read in the contract zone below
        if first is not None:
            account_start = _first_local_year(scratch, schemas["claim"])
        root = str(scratch)

        # 3. one task per shard: the unchanged engine
        def settle_shards(batches):
            for b in batches:
                for k in b.column("id").to_pylist():
                    c = _read_shard(root, "claim", k, schemas["claim"], "_row")
                    if c is None or not c.num_rows:
                        continue
                    ln = _read_shard(root, "line", k, schemas["line"], "_lrow")
                    if ln is None:
                        ln = schemas["line"].empty_table()
                    p = _read_shard(root, "person", k, schemas["person"], "_prow")
                    lk = _read_shard(root, "link", k, schemas["link"], "_krow")
                    res = engine.settle_batch(
                        c.drop_columns(["_row"]), ln, p, inst, catalog, policy, book, lk, account_start,
                        circulation=circulation,
                    )  # fmt: skip
                    glob = c.column("_row").to_numpy()[res.claim_index]
                    s = res.settlements.append_column("_row", pa.array(glob))
                    order = np.lexsort((glob, engine._local_seconds(s, "setl_time")))  # claim order within the shard
                    parts = {"settlement": s.take(pa.array(order)), "accumulator": res.accumulators}
                    if len(res.rejected):
                        parts["rejected"] = pa.Table.from_pandas(res.rejected, preserve_index=False)
                    yield pa.RecordBatch.from_pydict({
                        "shard": pa.array([k] * len(parts), pa.int32()), "kind": list(parts),
                        "path": [_write_part(root, kind, k, t) for kind, t in parts.items()],
                    })  # fmt: skip

        got = spark.range(
            0, n_shards, numPartitions=max(1, min(n_shards, spark.sparkContext.defaultParallelism * 4))
        ).mapInArrow(settle_shards, _PAYLOAD)
        rows = sorted(got.collect(), key=lambda r: (r["shard"], r["kind"]))  # file names only, never the rows
        # 4. back into claim order, streamed from the shards' files as the streamed path writes
        by_kind = {kind: [r["path"] for r in rows if r["kind"] == kind] for kind in ("settlement", "accumulator")}
        _merge_settlements(by_kind["settlement"], out / "settlement.parquet", synthetic)
        rejs = [pq.read_table(r["path"]).to_pandas() for r in rows if r["kind"] == "rejected"]
        rejected = pd.concat(rejs, ignore_index=True) if rejs else pd.DataFrame(columns=engine.REJECTED_COLUMNS)
        rejected.to_parquet(out / "settlement_rejected.parquet", index=False)
        with pq.ParquetWriter(out / "accumulator.parquet", engine.ACCUMULATOR) as w:
            for f in by_kind["accumulator"]:
                w.write_table(pq.read_table(f).cast(engine.ACCUMULATOR))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    secs = time.perf_counter() - t0
    if out.resolve() == data_dir.resolve():
        manifest.record(out, OUTPUTS, INPUTS, command="yibao settle --engine spark --data {dir}")
    batch = StreamedBatch(
        settlements=ParquetView(out / "settlement.parquet"),
        rejected=rejected,
        accumulators=ParquetView(out / "accumulator.parquet"),
        shards=n_shards,
    )
    return YearResult(batch=batch, claims=n_claims, seconds=secs)


def _first_file(path: str) -> str:
    p = Path(path)
    return str(p if p.is_file() else dataset_files(p)[0])


def _first_local_year(scratch: Path, claim_schema: pa.Schema) -> dt.date:
    """1 January of the first claim's year in the contract's time zone, as the in-memory path computes it."""
    t = pq.read_table(scratch / "claim", columns=["setl_time"]).cast(pa.schema([claim_schema.field("setl_time")]))
    first = int(engine._local_seconds(t, "setl_time").min() // 86400)
    return dt.date(int(engine._ymd(np.array([first]))[0][0]), 1, 1)


MERGE_ROWS = 200_000  # settlements assembled per output row group on the driver
PART_ROWS = 4_096  # row group of a shard's settlement file: what the merge holds decoded per shard


def _write_part(root: str, kind: str, shard: int, t: pa.Table) -> str:
    """An executor writes one shard's output table; the driver gets only the file name."""
    d = Path(root) / "out" / kind
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"shard={shard}.parquet"
    # small row groups: the driver's merge keeps one decoded row group of every shard's file open at once
    # (whole 100,000-row groups × 460 shards of 10 M people took the driver to 23 GB and the OOM killer)
    pq.write_table(t, path, row_group_size=PART_ROWS if kind == "settlement" else None)
    return str(path)


def input_row_number(spark, path: str, df, name: str):
    """``df`` with ``name``: the row's position in the table as pyarrow reads it (files sorted, rows in file order).

    From Spark's ``_metadata.row_index`` plus the row count of the files before it, so the key does not depend on
    how Spark splits the files (``monotonically_increasing_id`` does).
    """
    from pyspark.sql import functions as F

    files = dataset_files(Path(path))  # the file itself, or the sorted parts of a dataset directory
    offsets, n = [], 0
    for f in files:
        offsets.append((f.resolve().as_uri(), n))
        n += pq.ParquetFile(f).metadata.num_rows
    key = spark.createDataFrame(offsets, "_file string, _offset long")
    if "_metadata" not in df.columns:
        df = df.select("*", "_metadata")
    df = df.withColumn("_file", F.regexp_replace(F.col("_metadata.file_path"), "^file:/+", "file:///"))
    df = df.withColumn("_index", F.col("_metadata.row_index")).drop("_metadata")
    df = df.join(F.broadcast(key), "_file", "left")
    known = F.assert_true(
        F.col("_offset").isNotNull(), F.concat(F.lit("a file Spark read is not one listed: "), "_file")
    )
    return df.withColumn(name, F.coalesce(known.cast("long"), F.col("_offset") + F.col("_index"))).drop(
        "_file", "_offset", "_index"
    )


class _ShardReader:
    """Rows of one shard's sorted settlement file, handed out in order, a few batches in memory at a time."""

    def __init__(self, path: str):
        self._batches = pq.ParquetFile(path).iter_batches(batch_size=PART_ROWS, use_threads=False)
        self._buf: pa.Table | None = None

    def take(self, n: int) -> pa.Table:
        parts, have = [], 0
        while have < n:
            if self._buf is None or not self._buf.num_rows:
                self._buf = pa.Table.from_batches([next(self._batches)])
            t = self._buf.slice(0, n - have)
            self._buf = self._buf.slice(t.num_rows)
            parts.append(t)
            have += t.num_rows
        return pa.concat_tables(parts)


def _merge_settlements(files: list[str], target: Path, synthetic: bool) -> None:
    """Merge the shards' settlements (each sorted by settlement time, then input row) into claim order.

    The driver holds the sort keys (16 bytes a claim) and one output row group, never all settlements.
    """
    schema = with_metadata(SETTLEMENT, "settlement")
    keys = [pq.read_table(f, columns=["setl_time", "_row"]) for f in files]
    secs = np.concatenate([engine._local_seconds(k, "setl_time") for k in keys]) if keys else np.zeros(0, np.int64)
    rows = np.concatenate([k.column("_row").to_numpy() for k in keys]) if keys else np.zeros(0, np.int64)
    shard = np.concatenate([np.full(k.num_rows, i, np.int32) for i, k in enumerate(keys)]) if keys else rows
    order = np.lexsort((rows, secs))
    readers = [_ShardReader(f) for f in files]
    with pq.ParquetWriter(target, schema) as w:
        if not len(order):
            w.write_table(schema.empty_table())
        for at in range(0, len(order), MERGE_ROWS):
            pick = order[at : at + MERGE_ROWS]
            src = shard[pick]
            counts = np.bincount(src, minlength=len(files))
            pieces = [readers[i].take(int(c)) for i, c in enumerate(counts) if c]
            chunk = pa.concat_tables(pieces)
            # rows of the chunk are grouped by shard; put them in the chunk's claim order
            local = np.lexsort((chunk.column("_row").to_numpy(), engine._local_seconds(chunk, "setl_time")))
            chunk = chunk.take(pa.array(local)).drop_columns(["_row"])
            if synthetic:
                chunk = chunk.set_column(
                    chunk.schema.get_field_index("synthetic"), "synthetic", pa.array(np.ones(chunk.num_rows, bool))
                )
            w.write_table(chunk.cast(schema))
