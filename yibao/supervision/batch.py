"""Post-care (事后) batch review: every post-stage rule as DuckDB SQL over the contract Parquet tables.

Each rule is a plain ``SELECT`` in ``yibao/data/supervision/sql/<id>.sql``
(except the coding-quality rules SV-SPLIT-01, SV-UPCODE-01 and SV-IMP-01, which
are the shared detector :mod:`yibao.supervision.coding`, also used by payment)
over the views ``encounter``, ``fee_detail``, ``person``, ``institution``,
``med_list``, ``purchase`` and the knowledge tables ``k_<name>``, with the
rule's parameters bound as ``$name``.  Nothing here depends on DuckDB beyond
the SQL dialect, so the same files can run on a distributed engine that reads
the same Parquet files.

The result is one table of hits (:data:`HITS`): rule id, stage, severity,
entity, entity id, encounter, person, institution, doctor, fen at stake and
the evidence as JSON.

A rule whose SQL reads ``purchase`` (SV-STOCK-01) runs only on a usable
purchase table (:func:`yibao.supervision.stock.purchase_status`: a real
import or the one ``yibao synth`` writes); otherwise it is skipped, with the
reason in :attr:`ScanResult.skipped` — never run on a table made up here.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from yibao.core import manifest, parquet_io
from yibao.core.errors import YibaoError
from yibao.supervision import coding
from yibao.supervision.knowledge import RuleBook, default_rulebook
from yibao.supervision.stock import PURCHASE, PurchaseStatus, purchase_status

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
_READS_PURCHASE = re.compile(r"\b(?:FROM|JOIN)\s+purchase\b", re.IGNORECASE)


def reads_purchase(sql: str) -> bool:
    """Whether a rule's SQL reads the ``purchase`` view (comments aside)."""
    return bool(_READS_PURCHASE.search(re.sub(r"--[^\n]*", "", sql)))


class ScanError(YibaoError):
    code = "E_SUPERVISION_SCAN"


@dataclass
class ScanResult:
    hits: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    lines: int = 0
    encounters: int = 0
    skipped: dict[str, tuple[str, str]] = field(default_factory=dict)  # rule id -> why (English, Chinese)
    purchase: PurchaseStatus = field(default_factory=lambda: PurchaseStatus(False))

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def knowledge_frames(book: RuleBook) -> dict[str, pd.DataFrame]:
    """The knowledge tables the rule SQL reads as ``k_<name>``, one frame each (also the Spark scan's views)."""
    k = book.knowledge
    return {
        "k_exam_items": pd.DataFrame(
            [(c, kind, heavy) for c, (kind, heavy) in k.exam_items.items()], columns=["med_list_codg", "kind", "heavy"]
        ),
        "k_hotel_items": pd.DataFrame(sorted(k.hotel_items), columns=["med_list_codg"]),
        "k_bundles": pd.DataFrame(list(k.bundles), columns=["package", "component"]),
        "k_item_requires": pd.DataFrame(
            [(c, list(r)) for c, r in k.item_requires.items()], columns=["med_list_codg", "requires"]
        ),
        "k_max_daily": pd.DataFrame(list(k.max_daily_milli.items()), columns=["med_list_codg", "max_daily_milli"]),
        "k_outpatient_treatable": pd.DataFrame(list(k.outpatient_treatable), columns=["dise_prefix"]),
        "k_dx_evidence": pd.DataFrame(
            [(p, [list(g) for g in e]) for p, e in k.dx_evidence.items()], columns=["dise_prefix", "evidence"]
        ),
        "k_sex_specific_dx": pd.DataFrame(list(k.sex_specific_dx), columns=["dise_prefix", "gend"]),
    }


def connect(
    data_dir: str | Path,
    book: RuleBook | None = None,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    purchase: PurchaseStatus | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the contract tables of ``data_dir`` as views and the knowledge tables loaded.

    ``purchase`` is the table's status (:func:`purchase_status`, computed when not given); an unusable
    one gives an empty ``purchase`` view.
    """
    d = Path(data_dir)
    book = book or default_rulebook()
    sources = {t: parquet_io.table_sql(d, t) for t in (*CONTRACT_VIEWS, "purchase")}  # file or dataset directory
    for t in CONTRACT_VIEWS:
        if sources[t] is None:
            raise ScanError(f"{d}: missing {t}.parquet (a contract table)", f"{d}: 缺少 {t}.parquet", field="data_dir")
    purchase = purchase if purchase is not None else purchase_status(d)
    manifest.check(d, CONTRACT_VIEWS, optional=("purchase",) if purchase.usable else ())  # no mixed or stale tables
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    for t in CONTRACT_VIEWS:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM {sources[t]}")
    if purchase.usable:
        con.execute(f"CREATE VIEW purchase AS SELECT * FROM {sources['purchase']}")
    else:
        con.register("purchase_empty", PURCHASE.empty_table())
        con.execute("CREATE VIEW purchase AS SELECT * FROM purchase_empty")
    frames = knowledge_frames(book)
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


def _coding_flags(con: duckdb.DuckDBPyConnection, book: RuleBook) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shared coding-quality detector over the scan's views (parameters: the book's coding.yaml)."""
    p = book.directory / "coding.yaml"
    params = coding.load_coding_params(p if p.exists() else None)
    if any(r.id == "SV-SPLIT-01" for r in book.rules):
        coding.check_rulebook_params(book.rule("SV-SPLIT-01").params, params)
    k = book.knowledge
    stays, items = coding.read_inputs(con, params, k.dx_evidence, k.sex_specific_dx)
    return coding.detect(stays, items, params, k.dx_evidence, k.sex_specific_dx), stays


def _coding_hits(
    con: duckdb.DuckDBPyConnection, flags: pd.DataFrame, stays: pd.DataFrame, pattern: str
) -> pd.DataFrame:
    """One pattern's flags as hits: the stay's people and fen at stake (its fee lines), evidence as JSON."""
    f = flags[flags["flag"] == pattern]
    cols = ["entity_id", "mdtrt_id", "psn_no", "fixmedins_code", "dr_code", "amount", "evidence"]
    if f.empty:
        return pd.DataFrame({c: pd.Series([], dtype="int64" if c == "amount" else object) for c in cols})
    con.register("coding_flagged", pd.DataFrame({"mdtrt_id": f["mdtrt_id"].astype(str)}))
    try:
        amt = con.execute(
            "SELECT mdtrt_id, sum(det_item_fee_sumamt)::BIGINT AS fen FROM fee_detail WHERE mdtrt_id IN (SELECT "
            "mdtrt_id FROM coding_flagged) GROUP BY 1"
        ).df()
    finally:
        con.unregister("coding_flagged")
    who = stays.drop_duplicates("mdtrt_id").set_index("mdtrt_id")
    fen = dict(zip(amt["mdtrt_id"], amt["fen"], strict=True))
    if pattern == "split_admission":
        ev = [
            json.dumps({"previous": p, "gap_hours": int(g) // 3600}, ensure_ascii=False, separators=(",", ":"))
            for p, g in zip(f["previous"], f["gap_s"], strict=True)
        ]
    elif pattern == "sex_mismatch":
        g = stays.drop_duplicates("mdtrt_id").set_index("mdtrt_id")["gend"]
        ev = [
            json.dumps({"dise_codg": c, "gend": g.get(m, "")}, ensure_ascii=False, separators=(",", ":"))
            for m, c in zip(f["mdtrt_id"], f["codes"], strict=True)
        ]
    else:
        ev = [
            json.dumps({"code": c, "evidence_items": list(e)}, ensure_ascii=False, separators=(",", ":"))
            for c, e in zip(f["codes"], f["evidence_items"], strict=True)
        ]
    m = f["mdtrt_id"].astype(str).to_numpy()
    return pd.DataFrame(
        {
            "entity_id": m,
            "mdtrt_id": m,
            "psn_no": who["psn_no"].reindex(m).to_numpy(),
            "fixmedins_code": who["fixmedins_code"].reindex(m).to_numpy(),
            "dr_code": who["dr_code"].reindex(m).fillna("").to_numpy(),
            "amount": np.array([int(fen.get(x, 0) or 0) for x in m], dtype=np.int64),
            "evidence": ev,
        }
    )


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
    purchase = purchase_status(data_dir)
    con = connect(data_dir, book, threads=threads, memory_limit=memory_limit, purchase=purchase)
    skipped: dict[str, tuple[str, str]] = {}
    seconds = {"setup": time.perf_counter() - t0}
    parts = []
    flags = stays = None  # the coding-quality detector runs once for both of its rules
    for r in book.by_stage("post"):
        if wanted is not None and r.id not in wanted:
            continue
        if not purchase.usable and r.id not in coding.RULES and reads_purchase(book.sql[r.id]):
            skipped[r.id] = (f"{r.id} skipped: {purchase.why_en}", f"跳过 {r.id}：{purchase.why_zh}")
            continue
        t = time.perf_counter()
        if r.id in coding.RULES:
            if flags is None or stays is None:
                flags, stays = _coding_flags(con, book)
            df = _coding_hits(con, flags, stays, coding.RULES[r.id])
        else:
            sql = book.sql[r.id]
            try:
                df = con.execute(
                    f"SELECT entity_id, mdtrt_id, psn_no, fixmedins_code, dr_code, amount, evidence FROM ({sql})",
                    _params(sql, r.params),
                ).fetch_df()
            except duckdb.Error as exc:
                raise ScanError(f"rule {r.id}: the SQL failed: {exc}", f"规则 {r.id} 执行失败", field=r.id) from exc
        seconds[r.id] = time.perf_counter() - t
        parts.append(labelled(df, r))
        if progress:
            progress(r.id, len(df))
    lines = (con.execute("SELECT count(*) FROM fee_detail").fetchone() or (0,))[0]
    encs = (con.execute("SELECT count(*) FROM encounter").fetchone() or (0,))[0]
    con.close()
    return ScanResult(
        hits=assemble_hits(parts),
        seconds=seconds,
        lines=int(lines),
        encounters=int(encs),
        skipped=skipped,
        purchase=purchase,
    )


def labelled(df: pd.DataFrame, rule) -> pd.DataFrame:
    """A rule's hit rows with its id, severity and entity in front (the :data:`HITS` column order)."""
    df.insert(0, "rule_id", rule.id)
    df.insert(1, "severity", rule.severity)
    df.insert(2, "entity", rule.entity)
    return df


def assemble_hits(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The rules' hit frames as one table of :data:`HITS` types (people and doctor '' where absent)."""
    hits = pd.concat(parts, ignore_index=True) if parts else HITS.empty_table().to_pandas()
    hits = hits.astype({"severity": "int8", "amount": "int64"})
    for c in ("mdtrt_id", "psn_no", "fixmedins_code", "dr_code"):
        hits[c] = hits[c].fillna("").astype(str)
    return hits


def hits_table(hits: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(hits[HITS.names], schema=HITS, preserve_index=False)
