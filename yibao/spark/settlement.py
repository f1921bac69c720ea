"""A region's year settled on Spark (Spark 批量结算): same shards, same engine, same rows as the streamed path.

1. the driver labels every person with a family shard — the connected
   components of family links (:func:`yibao.settlement.batch.family_components`),
   hashed as the streamed engine does (:func:`~yibao.settlement.batch._family_shard`),
   so no account, family payer or accumulator crosses a shard;
2. Spark joins claims to their patient's shard and fee lines to their
   claim's shard and writes the three tables partitioned by shard (the shuffle);
3. one Spark task per shard reads its partition and runs the unchanged
   :func:`~yibao.settlement.batch.settle_batch` (claims, lines and persons in
   input order), returning its outputs as Arrow IPC bytes;
4. the driver puts the settlements back in claim order (settlement time,
   then input row), exactly as :func:`~yibao.settlement.batch.settle_batch_parallel` does.
"""

from __future__ import annotations

import datetime as dt
import io
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
    read_parquet,
    require_table,
)
from yibao.settlement.catalog import Catalog
from yibao.spark.session import get_session

_PAYLOAD = "shard int, kind string, payload binary"


class RepeatedClaimId(YibaoError):
    """Two encounters share an mdtrt_id, so their fee lines cannot be routed to one shard."""


def _ipc(t: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    return sink.getvalue()


def _unipc(b: bytes) -> pa.Table:
    return pa.ipc.open_stream(io.BytesIO(b)).read_all()


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
    """:func:`yibao.settlement.annual.settle_year` on Spark; writes the same three tables, the same values to the fen."""
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
        pdf = spark.createDataFrame(keyed_persons)  # Arrow → Spark
        shard_of = pdf.select("psn_no", "shard")
        # claims in input order: a monotonic id (partition-major), kept as the order key
        enc = spark.read.parquet(paths["encounter"]).select(*CLAIM_COLUMNS).withColumnRenamed("endtime", "setl_time")
        enc = enc.withColumn("_row", F.monotonically_increasing_id())
        ids = enc.groupBy("mdtrt_id").count().where("count > 1").limit(1).collect()
        if ids:
            raise RepeatedClaimId(
                f"mdtrt_id {ids[0]['mdtrt_id']!r} appears in two encounters; the Spark engine needs unique claim ids",
                f"就诊ID {ids[0]['mdtrt_id']} 重复，Spark 引擎要求就诊ID唯一",
            )
        first_shard = (
            int(p_shard[0]) if persons.num_rows else 0
        )  # unknown patients: refused in the first person's shard
        claims = enc.join(F.broadcast(shard_of), "psn_no", "left").withColumn(
            "shard", F.coalesce("shard", F.lit(first_shard))
        )
        lines = (
            spark.read.parquet(paths["fee_detail"])
            .select(*LINE_COLUMNS)
            .withColumn("_lrow", F.monotonically_increasing_id())
        )
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
                spark.createDataFrame(
                    links.append_column(
                        "shard",
                        pa.array(
                            p_shard[engine._lookup(links.column("psn_no"), persons.column("psn_no")).clip(0)]
                            if links.num_rows
                            else np.zeros(0, np.int32)
                        ),
                    ).append_column("_krow", pa.array(np.arange(links.num_rows, dtype=np.int64)))
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
                        c.drop_columns(["_row"]), ln, p, inst, catalog, policy, book, lk, account_start
                    )
                    glob = c.column("_row").to_numpy()[res.claim_index]
                    s = res.settlements.append_column("_row", pa.array(glob))
                    parts = {"settlement": s, "accumulator": res.accumulators}
                    if len(res.rejected):
                        parts["rejected"] = pa.Table.from_pandas(res.rejected, preserve_index=False)
                    yield pa.RecordBatch.from_pydict({
                        "shard": pa.array([k] * len(parts), pa.int32()), "kind": list(parts),
                        "payload": pa.array([_ipc(t) for t in parts.values()], pa.binary()),
                    })  # fmt: skip

        got = spark.range(
            0, n_shards, numPartitions=max(1, min(n_shards, spark.sparkContext.defaultParallelism * 4))
        ).mapInArrow(settle_shards, _PAYLOAD)
        rows = sorted(got.collect(), key=lambda r: (r["shard"], r["kind"]))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    # 4. back into claim order, written as the streamed path writes
    sets = [_unipc(r["payload"]) for r in rows if r["kind"] == "settlement"]
    accs = [_unipc(r["payload"]) for r in rows if r["kind"] == "accumulator"]
    rejs = [_unipc(r["payload"]).to_pandas() for r in rows if r["kind"] == "rejected"]
    schema = with_metadata(SETTLEMENT, "settlement")
    if sets:
        table = pa.concat_tables(sets)
        order = np.lexsort((table.column("_row").to_numpy(), engine._local_seconds(table, "setl_time")))
        table = table.take(pa.array(order)).drop_columns(["_row"])
    else:
        table = schema.empty_table()
    if synthetic and table.num_rows:
        table = table.set_column(
            table.schema.get_field_index("synthetic"), "synthetic", pa.array(np.ones(table.num_rows, dtype=bool))
        )
    pq.write_table(table.cast(schema), out / "settlement.parquet")
    rejected = pd.concat(rejs, ignore_index=True) if rejs else pd.DataFrame(columns=engine.REJECTED_COLUMNS)
    rejected.to_parquet(out / "settlement_rejected.parquet", index=False)
    acc = pa.concat_tables([a.cast(engine.ACCUMULATOR) for a in accs]) if accs else engine.ACCUMULATOR.empty_table()
    pq.write_table(acc, out / "accumulator.parquet")
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
