"""The post-care (事后) supervision scan on Spark: the same rule files, the same hits as DuckDB.

Every SQL rule of ``yibao/data/supervision/sql/`` is rewritten to Spark SQL at
run time (:func:`yibao.spark.dialect.to_spark`) and run over Spark views of
the same contract Parquet tables and knowledge tables the DuckDB scan reads,
in the contract's time zone.  The three coding-quality rules (SV-SPLIT-01,
SV-UPCODE-01, SV-IMP-01) are not SQL but the shared Python detector
(:mod:`yibao.supervision.coding`); they run on the driver through the DuckDB
scan, and :attr:`SparkScanResult.on_driver` names them.  A rule whose SQL
cannot be rewritten is not run and is listed in ``skipped`` with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from yibao.core import manifest, parquet_io
from yibao.core.contract import TIMEZONE
from yibao.spark.dialect import Untranslatable, to_spark
from yibao.spark.session import get_session
from yibao.supervision import batch, coding
from yibao.supervision.knowledge import RuleBook, default_rulebook
from yibao.supervision.stock import PURCHASE, PurchaseStatus, purchase_status

_HIT_COLUMNS = "entity_id, mdtrt_id, psn_no, fixmedins_code, dr_code, amount, evidence"


@dataclass
class SparkScanResult(batch.ScanResult):
    on_driver: tuple[str, ...] = ()  # rules run by the shared Python detector on the driver, not by Spark SQL
    not_on_spark: dict[str, str] = field(default_factory=dict)  # rule id -> why its SQL has no Spark rewrite


def _files(data_dir: Path, name: str) -> list[str]:
    path = parquet_io.table_path(data_dir, name)
    if path is None:
        raise batch.ScanError(
            f"{data_dir}: missing {name}.parquet (a contract table)",
            f"{data_dir}: 缺少 {name}.parquet",
            field="data_dir",
        )
    files = [str(f) for f in parquet_io.dataset_files(path)]
    if not files:
        raise batch.ScanError(f"{path}: no Parquet files", f"{path}: 没有 Parquet 文件", field="data_dir")
    return files


def register_views(spark, data_dir: Path, book: RuleBook, purchase: PurchaseStatus) -> None:
    """The scan's views on Spark: contract tables, ``purchase`` (empty when unusable), ``k_*`` and ``scope_lines``."""
    for t in batch.CONTRACT_VIEWS:
        spark.read.parquet(*_files(data_dir, t)).createOrReplaceTempView(t)
    if purchase.usable:
        spark.read.parquet(*_files(data_dir, "purchase")).createOrReplaceTempView("purchase")
    else:
        spark.createDataFrame(PURCHASE.empty_table()).createOrReplaceTempView("purchase")
    for name, df in batch.knowledge_frames(book).items():
        if name == "k_dx_evidence":  # read by the coding detector only, never by rule SQL
            continue
        spark.createDataFrame(pa.Table.from_pandas(df, preserve_index=False)).createOrReplaceTempView(name)
    scope = (book.directory / "sql" / "scope_common.sql").read_text(encoding="utf-8")
    spark.sql(to_spark(scope)).cache().createOrReplaceTempView("scope_lines")


def _rule_sql(rule, sql: str) -> str:
    """One rule's hits as Spark SQL, its id in front (Untranslatable: the caller lists the rule)."""
    text = to_spark(sql, batch._params(sql, rule.params))
    return f"SELECT '{rule.id}' AS rule_id, {_HIT_COLUMNS} FROM ({text}) AS hits_{rule.id.replace('-', '_')}"


def _collect(spark, queries: dict[str, str]) -> pd.DataFrame:
    """Every rule's hits in ONE Spark job (a UNION ALL); on failure each rule alone, to name the one that fails."""
    from pyspark.errors import PySparkException

    try:
        return spark.sql(" UNION ALL ".join(f"({q})" for q in queries.values())).toArrow().to_pandas()
    except PySparkException:
        for rid, q in queries.items():
            try:
                spark.sql(q).limit(1).collect()
            except PySparkException as exc:
                raise batch.ScanError(
                    f"rule {rid}: the Spark SQL failed: {str(exc).strip().splitlines()[0]}",
                    f"规则 {rid} 在 Spark 上执行失败",
                    field=rid,
                ) from exc
        raise


def scan_spark(
    data_dir: str | Path,
    book: RuleBook | None = None,
    *,
    rules: Iterable[str] | None = None,
    spark=None,
    progress: Callable[[str, int], None] | None = None,
) -> SparkScanResult:
    """:func:`yibao.supervision.batch.scan` with the SQL rules on Spark; the same hits table."""
    d = Path(data_dir)
    book = book or default_rulebook()
    wanted = set(rules) if rules else None
    t0 = time.perf_counter()
    purchase = purchase_status(d)
    for t in batch.CONTRACT_VIEWS:
        _files(d, t)  # a missing contract table is refused before Spark starts
    manifest.check(d, batch.CONTRACT_VIEWS, optional=("purchase",) if purchase.usable else ())
    spark = spark or get_session()
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", TIMEZONE)  # dates and day counts in the contract's zone, as DuckDB
    try:
        register_views(spark, d, book, purchase)
        setup = time.perf_counter() - t0
        res = _scan_rules(spark, d, book, wanted, purchase, progress)
        res.seconds = {"setup": setup, **res.seconds}
        n = spark.sql("SELECT (SELECT count(*) FROM fee_detail), (SELECT count(*) FROM encounter)").collect()[0]
        res.lines, res.encounters = int(n[0]), int(n[1])
    finally:
        spark.catalog.clearCache()
        spark.conf.set("spark.sql.session.timeZone", zone)
    return res


def _scan_rules(spark, d: Path, book: RuleBook, wanted, purchase, progress) -> SparkScanResult:
    res = SparkScanResult(hits=pd.DataFrame(), purchase=purchase)
    parts: dict[str, pd.DataFrame] = {}
    post = [r for r in book.by_stage("post") if wanted is None or r.id in wanted]
    driver = [r.id for r in post if r.id in coding.RULES]
    if driver:  # the shared Python detector, on the driver through the DuckDB views
        t = time.perf_counter()
        got = batch.scan(d, book, rules=driver).hits
        res.seconds["coding (driver)"] = time.perf_counter() - t
        parts.update({rid: got[got["rule_id"] == rid] for rid in driver})
        res.on_driver = tuple(driver)
    queries: dict[str, str] = {}
    for r in post:
        if r.id in coding.RULES:
            continue
        if not purchase.usable and batch.reads_purchase(book.sql[r.id]):
            res.skipped[r.id] = (f"{r.id} skipped: {purchase.why_en}", f"跳过 {r.id}：{purchase.why_zh}")
            continue
        try:
            queries[r.id] = _rule_sql(r, book.sql[r.id])
        except Untranslatable as exc:
            res.not_on_spark[r.id] = exc.message_en
            res.skipped[r.id] = (
                f"{r.id} not run on Spark: {exc.message_en}",
                f"{r.id} 未在 Spark 上运行：{exc.message_zh}",
            )
    if queries:
        t = time.perf_counter()
        got = _collect(spark, queries)
        res.seconds["sql rules (spark)"] = time.perf_counter() - t
        for r in post:
            if r.id in queries:
                parts[r.id] = batch.labelled(
                    got[got["rule_id"] == r.id].drop(columns="rule_id").reset_index(drop=True), r
                )
    if progress:
        for r in post:
            if r.id in parts:
                progress(r.id, len(parts[r.id]))
    res.hits = batch.assemble_hits([parts[r.id] for r in post if r.id in parts])
    return res
