"""Load a directory of contract Parquet tables into a database, in bounded memory.

A data directory (what ``yibao demo`` and :func:`yibao.settlement.annual.settle_year`
write) holds each contract table as ``DIR/name.parquet`` or as a dataset
directory ``DIR/name/`` (several files), plus optionally ``settlement`` and
``accumulator`` (``psn_no, policy_year, kind, period, value``: the batch
path's final person-year accumulators, loaded into the operational
``accumulator`` table so that real-time settlement continues from them).

Tables are streamed as record batches: memory is bounded by the batch size,
not by the table.  Each batch is one transaction (:func:`yibao.core.db.load_tables`),
so a failure part-way leaves the batches before it loaded; load into an empty
database and start again on failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from sqlalchemy import JSON, Engine, insert
from sqlalchemy.engine import URL

from yibao.core import db, manifest

__all__ = [
    "ACCUMULATOR_SCHEMA",
    "BATCH_ROWS",
    "dataset_files",
    "load_parquet_dir",
    "sql_source",
    "table_path",
    "table_sql",
]

BATCH_ROWS = 100_000

ACCUMULATOR_SCHEMA = pa.schema(
    [
        ("psn_no", pa.string()),
        ("policy_year", pa.int16()),
        ("kind", pa.string()),
        ("period", pa.string()),
        ("value", pa.int64()),
    ]
)


def table_path(data_dir: Path, name: str) -> Path | None:
    """``DIR/name.parquet``, else the dataset directory ``DIR/name/``, else None."""
    f = data_dir / f"{name}.parquet"
    if f.is_file():
        return f
    d = data_dir / name
    return d if d.is_dir() else None


def dataset_files(path: Path) -> list[Path]:
    """The files of a table at ``path``: the file itself, or, as pyarrow's dataset discovery reads a directory,
    every ``*.parquet`` under it, sorted, skipping names that start with ``.`` or ``_`` (``_tmp/``,
    ``.part-0.parquet``)."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    return sorted(
        p
        for p in path.rglob("*.parquet")
        if p.is_file() and not any(x.startswith((".", "_")) for x in p.relative_to(path).parts)
    )


def _sql_str(p: Path) -> str:
    return "'" + p.as_posix().replace("'", "''") + "'"


def sql_source(path: Path) -> str:
    """DuckDB's ``read_parquet(…)`` of a table at ``path`` (a file or a dataset directory): the same files pyarrow
    and ``yibao settle`` read (:func:`dataset_files`); an empty directory is left to DuckDB's "No files found"."""
    path = Path(path)
    files = dataset_files(path)
    if path.is_dir() and not files:
        return f"read_parquet({_sql_str(path / '**' / '*.parquet')})"
    return (
        "read_parquet([" + ", ".join(_sql_str(f) for f in files) + "])"
        if path.is_dir()
        else f"read_parquet({_sql_str(path)})"
    )


def table_sql(data_dir: Path, name: str) -> str | None:
    """:func:`sql_source` of table ``name`` in ``data_dir`` (file or dataset directory), or None when there is none."""
    path = table_path(Path(data_dir), name)
    return None if path is None else sql_source(path)


def _batches(path: Path, columns: list[str] | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
    dataset = ds.dataset(path, format="parquet")
    if columns is not None:
        columns = [c for c in columns if c in dataset.schema.names]
    for batch in dataset.to_batches(columns=columns, batch_size=batch_rows):
        if batch.num_rows:
            yield batch


def _sql_columns(name: str) -> list[str]:
    """Columns a contract table's SQL model can take from Parquet (contract + plain operational columns)."""
    table = db.model_of(name).__table__
    return [c.name for c in table.columns if not isinstance(c.type, JSON)]


@contextmanager
def _engine(url_or_engine: str | URL | Engine | None) -> Iterator[Engine]:
    if isinstance(url_or_engine, Engine):
        yield url_or_engine
        return
    engine = db.make_engine(url_or_engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _accumulator_rows(batch: pa.RecordBatch, path: Path) -> list[dict]:
    missing = [f.name for f in ACCUMULATOR_SCHEMA if f.name not in batch.schema.names]
    if missing:
        raise ValueError(f"{path}: accumulator table lacks columns {missing}")
    cols = {}
    for f in ACCUMULATOR_SCHEMA:
        col = batch.column(f.name)
        if f.name == "period":
            col = pc.fill_null(col.cast(pa.string()), "")
        else:
            col = col.cast(f.type)
            if col.null_count:
                raise ValueError(f"{path}: accumulator.{f.name} has {col.null_count} NULL value(s)")
        cols[f.name] = col
    if pc.any(pc.less(cols["value"], 0)).as_py():
        raise ValueError(f"{path}: accumulator.value must not be negative")
    return pa.Table.from_pydict(cols).to_pylist()


def load_parquet_dir(
    url_or_engine: str | URL | Engine | None, data_dir: Path, *, batch_rows: int = BATCH_ROWS
) -> dict[str, int]:
    """Migrate the database, then load every contract table found in ``data_dir``; rows per table.

    Tables go in :data:`yibao.core.db.LOAD_ORDER` (foreign keys hold), each
    streamed in batches of ``batch_rows``; absent tables are skipped (and
    absent from the result).  Columns the SQL table does not have are
    ignored; a missing contract column, a NULL in a NOT NULL column or a
    naive timestamp raises ``ValueError``.  ``accumulator`` is loaded last.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir}: not a directory")
    manifest.check(
        data_dir, [n for n in db.LOAD_ORDER if table_path(data_dir, n) is not None], optional=["accumulator"]
    )  # no mixed or stale tables
    with _engine(url_or_engine) as engine:
        db.upgrade(engine)
        found = [(n, p) for n in db.LOAD_ORDER if (p := table_path(data_dir, n)) is not None]

        def chunks() -> Iterator[tuple[str, pa.RecordBatch]]:
            for name, path in found:
                for batch in _batches(path, _sql_columns(name), batch_rows):
                    yield name, batch

        counts = db.load_tables(engine, chunks())
        counts = {n: counts.get(n, 0) for n, _ in found}
        acc_path = table_path(data_dir, "accumulator")
        if acc_path is not None:
            n = 0
            stmt = insert(db.model_of("accumulator"))
            for batch in _batches(acc_path, ACCUMULATOR_SCHEMA.names, batch_rows):
                rows = _accumulator_rows(batch, acc_path)
                with engine.begin() as conn:
                    conn.execute(stmt, rows)
                n += len(rows)
            counts["accumulator"] = n
    return counts
