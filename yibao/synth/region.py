"""The synthetic pooling region: a deterministic stream of contract tables.

``generate_region(people, seed)`` yields ``(table_name, pyarrow.Table)``
chunks: first ``med_list``, ``institution`` and ``practitioner`` (once), then for every chunk
of people ``person``, ``family_link``, ``encounter``, ``fee_detail`` and
``ground_truth``, and last ``purchase`` (once: each institution's purchases of
each drug over the year, from what was really dispensed, see
:mod:`yibao.synth.purchases`; never from the labels).  Each chunk has its own random generator derived from
``(seed, chunk index)`` with :class:`numpy.random.SeedSequence`, so memory
stays bounded at any population size and the same ``(people, seed, year,
region, chunk_size)`` always gives byte-identical tables.

Every record is synthetic (``synthetic = true``); ``settlement`` is not
generated (the settlement engine produces it).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from yibao.codes import HOME_REGION, is_admdvs, load_divisions
from yibao.core import contract as C
from yibao.core import manifest
from yibao.core.errors import YibaoError
from yibao.supervision.stock import PURCHASE
from yibao.synth.catalog import SynthCatalog, default_catalog
from yibao.synth.encounters import generate_encounters
from yibao.synth.institutions import generate_institutions
from yibao.synth.patterns import inject_patterns
from yibao.synth.people import generate_people
from yibao.synth.purchases import PurchaseLedger

DEFAULT_CHUNK = 100_000
GENERATOR_VERSION = "1"
TABLE_ORDER = (
    "med_list",
    "institution",
    "practitioner",
    "person",
    "family_link",
    "encounter",
    "fee_detail",
    "ground_truth",
    "purchase",
)
_STREAM_INSTITUTIONS = 0
_STREAM_CHUNK = 1

Progress = Callable[[int, int], None]


class SynthError(YibaoError):
    code = "E_SYNTH"


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(stream, index)))


def validate_params(people: int, seed: int, year: int, region: str, chunk_size: int) -> None:
    """Refuse bad generator parameters (:class:`SynthError`) before anything is generated or written."""
    if not isinstance(people, (int, np.integer)) or people < 1:
        raise SynthError(f"people must be a positive integer, not {people!r}", "人数须为正整数", field="people")
    if people > 10**9:
        raise SynthError("at most 1,000,000,000 people", "人数过多", field="people")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SynthError(f"seed must be a non-negative integer, not {seed!r}", "随机种子须为非负整数", field="seed")
    if not 1900 <= year <= 2200:
        raise SynthError(
            f"year {year} is out of range: give a year from 1900 to 2200",
            f"年份 {year} 无效：须在 1900 至 2200 之间",
            field="year",
        )
    if not is_admdvs(region):
        raise SynthError(f"region {region!r} must be a 6-digit division code", "医保区划须为 6 位数字", field="region")
    if chunk_size < 1:
        raise SynthError("chunk_size must be positive", "分块大小须为正数", field="chunk_size")
    if region not in load_divisions():
        raise SynthError(f"region {region} is not in the division table", "医保区划不存在", field="region")


def generate_region(
    people: int,
    seed: int,
    *,
    year: int = 2025,
    region: str = HOME_REGION,
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    patterns: Mapping[str, float] | None = None,
    catalog: SynthCatalog | None = None,
) -> Iterator[tuple[str, pa.Table]]:
    """Stream the tables of a synthetic pooling region of ``people`` insured persons.

    ``progress(done_people, total_people)`` is called after each chunk.
    ``patterns`` maps injected pattern names (see :mod:`yibao.synth.patterns`)
    to rates; their labels go to ``ground_truth``.  ``purchase`` (SYNTHETIC) comes
    last, from the dispensed quantities the generator knows (:class:`PurchaseLedger`).
    """
    validate_params(people, seed, year, region, chunk_size)
    divisions = load_divisions()
    cat = catalog or default_catalog()
    inst = generate_institutions(_rng(seed, _STREAM_INSTITUTIONS), int(people), region, divisions)
    yield "med_list", cat.ml.table
    yield "institution", inst.table
    yield "practitioner", inst.practitioners
    n_chunks = -(-int(people) // chunk_size)
    ledger = PurchaseLedger(cat.ml.table, year)
    done = 0
    for k in range(n_chunks):
        n = min(chunk_size, int(people) - done)
        rng = _rng(seed, _STREAM_CHUNK, k)
        chunk, person, link = generate_people(rng, n, done, year, region)
        enc, fee, gt = generate_encounters(rng, cat, inst, chunk, year=year, region=region, chunk_index=k)
        tables = {"person": person, "family_link": link, "encounter": enc, "fee_detail": fee}
        planted: dict = {}
        if patterns:
            tables, gt_more = inject_patterns(tables, patterns, rng, planted=planted)
            gt = pa.concat_tables([gt, gt_more])
        ledger.add(tables["encounter"], tables["fee_detail"], planted)
        for name in ("person", "family_link", "encounter", "fee_detail"):
            yield name, tables[name]
        yield "ground_truth", gt
        done += n
        if progress is not None:
            progress(done, int(people))
    yield "purchase", ledger.table()


def write_parquet(
    out_dir: str | Path,
    people: int,
    seed: int,
    *,
    year: int = 2025,
    region: str = HOME_REGION,
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    patterns: Mapping[str, float] | None = None,
    compression: str = "zstd",
    on_removed: Callable[[list[str]], None] | None = None,
) -> dict[str, int]:
    """Write the region as one Parquet file per table (``<out_dir>/<table>.parquet``).

    Each file carries the contract schema with its metadata (schema version,
    money unit fen, time zone) plus ``yibao.synthetic = true``; money is int64
    fen.  ``manifest.json`` (:mod:`yibao.core.manifest`) records the parameters,
    row counts and hashes; the tables of an earlier run in ``out_dir``
    (settlement, accumulator, hits …) are removed first and their names passed
    to ``on_removed``.  Returns the row count per table.
    """
    validate_params(people, seed, year, region, chunk_size)
    out = Path(out_dir)
    params = {
        "synthetic": True,
        "generator": f"yibao.synth/{GENERATOR_VERSION}",
        "schema_version": C.SCHEMA_VERSION,
        "money_unit": C.MONEY_UNIT,
        "timezone": C.TIMEZONE,
        "people": int(people),
        "seed": int(seed),
        "year": int(year),
        "region": region,
        "chunk_size": int(chunk_size),
        "patterns": dict(patterns or {}),
        "note": "SYNTHETIC data generated by yibao.synth; not real people, institutions or claims.",
    }
    removed = manifest.begin_source(out, TABLE_ORDER, params)  # an earlier run's tables (settlement …) go: never mixed
    writers: dict[str, pq.ParquetWriter] = {}
    rows: dict[str, int] = {}
    # Parquet encoding runs in a writer thread (it releases the GIL), overlapping the generation of the
    # next chunk; the bounded queue keeps memory bounded.
    todo: queue.Queue = queue.Queue(maxsize=len(TABLE_ORDER) * 2)
    failed: list[BaseException] = []

    def write_all() -> None:
        try:
            while (item := todo.get()) is not None:
                name, table = item
                if name not in writers:
                    schema = C.with_metadata(PURCHASE if name == "purchase" else C.TABLES[name], name)
                    meta = {
                        **schema.metadata,
                        b"yibao.synthetic": b"true",
                        b"yibao.generator": b"yibao.synth/" + GENERATOR_VERSION.encode(),
                    }
                    if name == "purchase":  # bannered: no procurement system wrote these rows
                        meta[b"yibao.note"] = (
                            "SYNTHETIC purchases 合成进货数据: generated by yibao.synth from the dispensed quantities, "
                            "not a procurement record"
                        ).encode()
                    writers[name] = pq.ParquetWriter(
                        out / f"{name}.parquet", schema.with_metadata(meta), compression=compression
                    )
                    rows[name] = 0
                writers[name].write_table(table.cast(writers[name].schema), row_group_size=1 << 20)
                rows[name] += table.num_rows
        except BaseException as exc:  # handed to the main thread
            failed.append(exc)
            while todo.get() is not None:  # drain so the producer never blocks
                pass

    thread = threading.Thread(target=write_all, name="yibao-synth-parquet", daemon=True)
    thread.start()
    try:
        for item in generate_region(
            people, seed, year=year, region=region, progress=progress, chunk_size=chunk_size, patterns=patterns
        ):
            if failed:
                break
            todo.put(item)
    finally:
        todo.put(None)
        thread.join()
        for w in writers.values():
            w.close()
    if failed:
        raise failed[0]
    manifest.write_source(out, params, rows)
    if removed and on_removed is not None:
        on_removed(removed)
    return rows


def collect_region(people: int, seed: int, **kw) -> dict[str, pa.Table]:
    """The whole region in memory, one table per name (for tests and small demos)."""
    parts: dict[str, list[pa.Table]] = {}
    for name, t in generate_region(people, seed, **kw):
        parts.setdefault(name, []).append(t)
    return {name: pa.concat_tables(ts) for name, ts in parts.items()}
