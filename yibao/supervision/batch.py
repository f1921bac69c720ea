"""Post-care (事后) batch review: every post-stage rule as DuckDB SQL over the contract Parquet tables.

Each rule is a plain ``SELECT`` in ``yibao/data/supervision/sql/<id>.sql``
over the views ``encounter``, ``fee_detail``, ``person``, ``institution``,
``med_list``, ``purchase`` and the knowledge tables ``k_<name>``, with the
rule's parameters bound as ``$name``.  Nothing here depends on DuckDB beyond
the SQL dialect, so the same files can run on a distributed engine that reads
the same Parquet files.

The result is one table of hits (:data:`HITS`): rule id, stage, severity,
entity, entity id, encounter, person, institution, doctor, fen at stake and
the evidence as JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from yibao.core import manifest
from yibao.core.errors import YibaoError
from yibao.supervision.knowledge import RuleBook, default_rulebook
from yibao.supervision.stock import PURCHASE

HITS = pa.schema(
    [
        ("rule_id", pa.string()),
        ("severity", pa.int8()),
        ("entity", pa.string()),
        ("entity_id", pa.string()),
        ("mdtrt_id", pa.string()),
        ("psn_no", pa.string()),
        ("fixmedins_code", pa.string()),
        ("dr_code", pa.string()),
        ("amount", pa.int64()),  # fen at stake
        ("evidence", pa.string()),  # JSON
    ]
)
CONTRACT_VIEWS = ("encounter", "fee_detail", "person", "institution", "med_list")


class ScanError(YibaoError):
    code = "E_SUPERVISION_SCAN"


@dataclass
class ScanResult:
    hits: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    lines: int = 0
    encounters: int = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def connect(data_dir: str | Path, book: RuleBook | None = None, *, threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the contract tables of ``data_dir`` as views and the knowledge tables loaded."""
    d = Path(data_dir)
    book = book or default_rulebook()
    for t in CONTRACT_VIEWS:
        if not (d / f"{t}.parquet").exists():
            raise ScanError(f"{d}: missing {t}.parquet (a contract table)", f"{d}: 缺少 {t}.parquet", field="data_dir")
    manifest.check(d, CONTRACT_VIEWS, optional=("purchase",))  # no mixed or stale tables
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    for t in CONTRACT_VIEWS:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{(d / f'{t}.parquet').as_posix()}')")
    if (d / "purchase.parquet").exists():
        con.execute(f"CREATE VIEW purchase AS SELECT * FROM read_parquet('{(d / 'purchase.parquet').as_posix()}')")
    else:
        con.register("purchase_empty", PURCHASE.empty_table())
        con.execute("CREATE VIEW purchase AS SELECT * FROM purchase_empty")
    k = book.knowledge
    frames = {
        "k_exam_items": pd.DataFrame([(c, kind, heavy) for c, (kind, heavy) in k.exam_items.items()], columns=["med_list_codg", "kind", "heavy"]),
        "k_hotel_items": pd.DataFrame(sorted(k.hotel_items), columns=["med_list_codg"]),
        "k_bundles": pd.DataFrame(list(k.bundles), columns=["package", "component"]),
        "k_item_requires": pd.DataFrame([(c, list(r)) for c, r in k.item_requires.items()], columns=["med_list_codg", "requires"]),
        "k_max_daily": pd.DataFrame(list(k.max_daily_milli.items()), columns=["med_list_codg", "max_daily_milli"]),
        "k_outpatient_treatable": pd.DataFrame(list(k.outpatient_treatable), columns=["dise_prefix"]),
        "k_dx_evidence": pd.DataFrame([(p, [list(g) for g in e]) for p, e in k.dx_evidence.items()], columns=["dise_prefix", "evidence"]),
        "k_sex_specific_dx": pd.DataFrame(list(k.sex_specific_dx), columns=["dise_prefix", "gend"]),
    }
    for name, df in frames.items():
        con.register(f"{name}_df", df)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_df")
        con.unregister(f"{name}_df")
    scope = (book.directory / "sql" / "scope_common.sql").read_text(encoding="utf-8")
    con.execute(f"CREATE TEMP TABLE scope_lines AS {scope}")
    return con


def _params(sql: str, params: dict) -> dict:
    """Only the parameters the SQL names (DuckDB refuses unused ones)."""
    return {k: v for k, v in params.items() if f"${k}" in sql}


def scan(
    data_dir: str | Path,
    book: RuleBook | None = None,
    *,
    rules: Iterable[str] | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ScanResult:
    """Run every post-care rule (or those in ``rules``) over the region in ``data_dir``."""
    book = book or default_rulebook()
    wanted = set(rules) if rules else None
    t0 = time.perf_counter()
    con = connect(data_dir, book, threads=threads, memory_limit=memory_limit)
    seconds = {"setup": time.perf_counter() - t0}
    parts = []
    for r in book.by_stage("post"):
        if wanted is not None and r.id not in wanted:
            continue
        sql = book.sql[r.id]
        t = time.perf_counter()
        try:
            df = con.execute(f"SELECT entity_id, mdtrt_id, psn_no, fixmedins_code, dr_code, amount, evidence FROM ({sql})", _params(sql, r.params)).fetch_df()
        except duckdb.Error as exc:
            raise ScanError(f"rule {r.id}: the SQL failed: {exc}", f"规则 {r.id} 执行失败", field=r.id) from exc
        seconds[r.id] = time.perf_counter() - t
        df.insert(0, "rule_id", r.id)
        df.insert(1, "severity", r.severity)
        df.insert(2, "entity", r.entity)
        parts.append(df)
        if progress:
            progress(r.id, len(df))
    lines = con.execute("SELECT count(*) FROM fee_detail").fetchone()[0]
    encs = con.execute("SELECT count(*) FROM encounter").fetchone()[0]
    con.close()
    hits = pd.concat(parts, ignore_index=True) if parts else HITS.empty_table().to_pandas()
    hits = hits.astype({"severity": "int8", "amount": "int64"})
    for c in ("mdtrt_id", "psn_no", "fixmedins_code", "dr_code"):
        hits[c] = hits[c].fillna("").astype(str)
    return ScanResult(hits=hits, seconds=seconds, lines=int(lines), encounters=int(encs))


def hits_table(hits: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(hits[HITS.names], schema=HITS, preserve_index=False)
