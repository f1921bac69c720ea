"""Settle a whole year of a region's encounters with the batch engine.

Reads the contract tables (from a Parquet directory or a database), turns
each encounter into one claim settled at its end time, runs
:func:`yibao.settlement.batch.settle_batch`, and writes the ``settlement``
table (and the rejected claims and final accumulators) next to the input.

:func:`settle_year` streams: the tables are read in bounded batches, cut
into family shards on disk and settled shard by shard
(:func:`yibao.settlement.batch.settle_streamed`), so peak memory does not
grow with the region; :func:`settle_year_in_memory` is the all-in-memory
reference it agrees with row for row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from yibao.benefits.policy import Policy, PolicyBook
from yibao.core import manifest, parquet_io
from yibao.core.contract import SETTLEMENT, with_metadata
from yibao.settlement.batch import BatchResult, NotStreamable, settle_batch_parallel, settle_streamed
from yibao.settlement.catalog import Catalog
from yibao.settlement.circulation import PrescriberLevel, prescribers_on_circulated_lines, rules_in_force

CLAIM_COLUMNS = [
    "mdtrt_id", "psn_no", "fixmedins_code", "med_type", "begntime", "endtime", "dise_codg",
    "other_dise_codg", "mdtrtarea_admvs", "mulaid_payer_psn_no", "lt_rx_confirmed",
]  # fmt: skip
LINE_COLUMNS = [
    "mdtrt_id", "feedetl_sn", "med_list_codg", "cnt_milli", "pric", "det_item_fee_sumamt", "prd_days",
    "rx_circ_flag", "bilg_dr_code",
]  # fmt: skip  # the last two: a circulated prescription's level (yibao.settlement.circulation)
INPUTS = ("person", "institution", "family_link", "med_list", "encounter", "fee_detail")  # what settle_year reads
OUTPUTS = ("settlement", "settlement_rejected", "accumulator")  # what it writes


def read_lines(data_dir: Path) -> pa.Table:
    """The year's fee lines as the batch engine reads them: :data:`LINE_COLUMNS`, the prescriber kept only on
    circulated lines (:func:`yibao.settlement.circulation.prescribers_on_circulated_lines`)."""
    return prescribers_on_circulated_lines(read_parquet(data_dir, "fee_detail", LINE_COLUMNS))


def table_path(data_dir: Path, name: str) -> Path:
    """``DIR/name.parquet`` or a dataset directory ``DIR/name/`` (:func:`yibao.core.parquet_io.table_path`).

    ``DIR/name`` when absent.
    """
    return parquet_io.table_path(data_dir, name) or data_dir / name


def read_parquet(data_dir: Path, name: str, columns: list[str] | None = None) -> pa.Table:
    path = table_path(data_dir, name)
    manifest.check(data_dir, [name])  # refuse a table of another run (yibao.core.manifest)
    if not path.exists():
        raise _missing(data_dir, name)
    return pq.read_table(path, columns=columns)


def _missing(data_dir: Path, name: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{data_dir}: no table {name!r} ({name}.parquet); is this a data directory? "
        f"Write one with `yibao synth --out {data_dir}` / 缺少表 {name}"
    )


def prescriber_level(data_dir: Path) -> PrescriberLevel:
    """The circulated-prescription level rule (``yibao/data/rxcirc/circulation.yaml``, the file RxService reads)
    with the region's prescribers (its ``practitioner`` table; none when the directory has no such table)."""
    rule = rules_in_force()
    if table_path(data_dir, "practitioner").exists():
        prescribers = read_parquet(data_dir, "practitioner", ["prac_psn_code", "fixmedins_code"])
        rule = dataclasses.replace(rule, prescribers=prescribers)
    return rule


def require_table(data_dir: Path, name: str) -> Path:
    """The path of table ``name`` in ``data_dir`` (file or dataset directory), without reading it."""
    path = table_path(data_dir, name)
    if not path.exists():
        raise _missing(data_dir, name)
    return path


class ParquetView:
    """A written table, read only when its rows are asked for (``num_rows`` comes from the file's footer).

    Lets :class:`YearResult` describe a year of 10 M people without holding
    it: ``num_rows`` is free; ``read()`` (or any other ``pyarrow.Table``
    attribute, e.g. ``to_pylist``) loads the file.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.num_rows = pq.ParquetFile(self.path).metadata.num_rows

    def read(self) -> pa.Table:
        return pq.read_table(self.path)

    def __len__(self) -> int:
        return self.num_rows

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.read(), name)


@dataclass
class StreamedBatch:
    """The streamed year's outputs: ``settlements`` and ``accumulators`` on disk, ``rejected`` in memory (small)."""

    settlements: ParquetView
    rejected: pd.DataFrame
    accumulators: ParquetView
    shards: int


@dataclass
class YearResult:
    batch: BatchResult | StreamedBatch
    claims: int
    seconds: float


def settle_year(
    data_dir: Path,
    policy: Policy | None = None,
    book: PolicyBook | None = None,
    out_dir: Path | None = None,
    workers: int = 2,
    shard_claims: int = 100_000,
    *,
    stream: bool = True,
) -> YearResult:
    """Settle every encounter in ``data_dir`` (contract Parquet tables); write ``settlement.parquet``.

    Streams family shards (:func:`yibao.settlement.batch.settle_streamed`), so
    memory stays flat whatever the region's size; the result is the same,
    row for row, as the in-memory path (:func:`settle_year_in_memory`, used
    with ``stream=False`` and when keys cannot be routed exactly).
    """
    import time

    if not stream:
        return settle_year_in_memory(data_dir, policy, book, out_dir, workers, max(shard_claims, 500_000))
    book = book or PolicyBook.default()
    manifest.check(data_dir, INPUTS)
    paths = {name: require_table(data_dir, name) for name in INPUTS}
    inst = read_parquet(data_dir, "institution", ["fixmedins_code", "hosp_lv"])
    catalog = Catalog.from_table(read_parquet(data_dir, "med_list"))
    out = out_dir or data_dir
    t0 = time.perf_counter()
    try:
        res = settle_streamed(
            paths["person"], paths["family_link"], paths["encounter"], paths["fee_detail"], inst, catalog, out,
            policy=policy, book=book, claim_columns=CLAIM_COLUMNS, line_columns=LINE_COLUMNS,
            rename={"endtime": "setl_time"}, settlement_schema=with_metadata(SETTLEMENT, "settlement"),
            workers=workers, shard_claims=shard_claims, circulation=prescriber_level(data_dir),
        )  # fmt: skip
    except NotStreamable:
        return settle_year_in_memory(data_dir, policy, book, out_dir, workers, max(shard_claims, 500_000))
    secs = time.perf_counter() - t0
    if out.resolve() == Path(data_dir).resolve():
        manifest.record(out, OUTPUTS, INPUTS, command="yibao settle --data {dir}")
    batch = StreamedBatch(
        settlements=ParquetView(out / "settlement.parquet"), rejected=res.rejected,
        accumulators=ParquetView(out / "accumulator.parquet"), shards=res.shards,
    )  # fmt: skip
    return YearResult(batch=batch, claims=res.claims, seconds=secs)


def settle_year_in_memory(
    data_dir: Path,
    policy: Policy | None = None,
    book: PolicyBook | None = None,
    out_dir: Path | None = None,
    workers: int = 2,
    shard_claims: int = 500_000,
) -> YearResult:
    """:func:`settle_year` with every table in memory (about 8 GB at 1 M people).

    The reference for the streamed path.
    """
    import time

    book = book or PolicyBook.default()
    manifest.check(data_dir, INPUTS)
    persons = read_parquet(data_dir, "person")
    inst = read_parquet(data_dir, "institution", ["fixmedins_code", "hosp_lv"])
    links = read_parquet(data_dir, "family_link", ["psn_no", "relative_psn_no", "relation"])
    catalog = Catalog.from_table(read_parquet(data_dir, "med_list"))
    claims = read_parquet(data_dir, "encounter", CLAIM_COLUMNS).rename_columns(
        [c if c != "endtime" else "setl_time" for c in CLAIM_COLUMNS]
    )  # one claim per encounter, settled when it ends (出院结算 / 门诊结算)
    lines = read_lines(data_dir)
    if policy is None:
        regions = pc.unique(persons.column("insuplc_admdvs")).to_pylist()
        if len(regions) != 1:
            raise ValueError(f"persons span several insured regions {regions[:5]}; pass a policy")
        policy = book.policy(str(regions[0]))
    account_start = None
    if claims.num_rows:
        first = pc.min(claims.column("setl_time")).as_py()
        account_start = dt.date(first.year, 1, 1)
    t0 = time.perf_counter()
    res = settle_batch_parallel(
        claims, lines, persons, inst, catalog, policy=policy, book=book, family_links=links,
        account_start=account_start, workers=workers, shard_claims=shard_claims,
        circulation=prescriber_level(data_dir),
    )  # fmt: skip
    secs = time.perf_counter() - t0
    synthetic = bool(pc.all(persons.column("synthetic")).as_py()) if "synthetic" in persons.column_names else False
    table = res.settlements
    if synthetic:
        table = table.set_column(
            table.schema.get_field_index("synthetic"), "synthetic", pa.array([True] * table.num_rows)
        )
    res.settlements = table
    out = out_dir or data_dir
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.cast(with_metadata(SETTLEMENT, "settlement")), out / "settlement.parquet")
    res.rejected.to_parquet(out / "settlement_rejected.parquet", index=False)
    pq.write_table(res.accumulators, out / "accumulator.parquet")
    if out.resolve() == Path(data_dir).resolve():
        manifest.record(out, OUTPUTS, INPUTS, command="yibao settle --data {dir}")
    return YearResult(batch=res, claims=claims.num_rows, seconds=secs)
