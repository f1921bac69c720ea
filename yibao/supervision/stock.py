"""Purchases (进货) for the purchase–sale–stock check (进销存).

The stock rule compares what an institution billed (``fee_detail``) with
what it bought.  Purchases come from procurement (``yibao.procurement``
delivery records) in this shape, one row per institution, item and year:

========================  =====================================================
``fixmedins_code``        the buying institution
``med_list_codg``         the item
``policy_year``           the year purchased
``qty_milli``             units bought x 1000
``opening_stock_milli``   units in stock on 1 January x 1000
``synthetic``             true for generated rows
========================  =====================================================

Supervision only READS this table: a real import (one row per institution,
item and year, from the institutions' purchase ledgers or the procurement
platform's delivery records; ``yibao supervision import-purchases FILE --data DIR``,
:func:`import_purchases`, validated) or the SYNTHETIC one ``yibao synth`` writes from
what it generated (:mod:`yibao.synth.purchases`).  It never builds one: when
a region has no usable purchase table, :func:`purchase_status` says why and
the scan skips the rules that read it (SV-STOCK-01) instead of scoring them
on an empty or made-up table.  A purchase table an older yibao derived from
the ground-truth labels (its manifest entry lists ``ground_truth`` among its
inputs) is not usable: scores come from data features only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from yibao.core import manifest, parquet_io
from yibao.core.errors import YibaoError

PURCHASE = pa.schema(
    [
        ("fixmedins_code", pa.string()),
        ("med_list_codg", pa.string()),
        ("policy_year", pa.int16()),
        ("qty_milli", pa.int64()),
        ("opening_stock_milli", pa.int64()),
        ("synthetic", pa.bool_()),
    ]
)


PURCHASE_COLUMNS = ("fixmedins_code", "med_list_codg", "qty_milli", "opening_stock_milli")  # what the stock rule reads


class PurchaseError(YibaoError):
    """A purchase table the stock rule cannot read (columns missing)."""

    code = "E_SUPERVISION_PURCHASE"


@dataclass(frozen=True)
class PurchaseStatus:
    """Whether ``data_dir`` holds a purchase table the stock rule may read; if not, why (English, Chinese)."""

    usable: bool
    synthetic: bool = False
    why_en: str = ""
    why_zh: str = ""


def _files(d: Path) -> list[Path]:
    p = parquet_io.table_path(d, "purchase")
    if p is None:
        return []
    return [p] if p.is_file() else parquet_io.dataset_files(p)


def purchase_status(data_dir: str | Path) -> PurchaseStatus:
    """Is there a purchase table (``purchase.parquet`` or ``purchase/``) the stock rule may read?

    Not usable: absent, or derived from the ground-truth labels (an older
    yibao's ``synthesize_purchases``).  A table lacking a column the rule
    reads raises :class:`PurchaseError`.  Synthetic: the file metadata says
    ``yibao.synthetic = true`` or every row's ``synthetic`` is true.
    """
    d = Path(data_dir)
    files = _files(d)
    if not files:
        return PurchaseStatus(
            False,
            why_en=f"no purchase table (purchase.parquet) in {d}: import the institutions' purchase records, or "
            f"generate the region with `yibao synth` (purchases are never built from the labels)",
            why_zh=f"{d} 中没有进货数据 purchase.parquet：请导入机构进货记录，或用 yibao synth "
            f"生成（不会由标注生成进货数据）",
        )
    doc = manifest.load(d)
    entry = (doc or {}).get("tables", {}).get("purchase") or {}
    if "ground_truth" in (entry.get("inputs") or {}):
        return PurchaseStatus(
            False,
            why_en=f"{d}: purchase.parquet was derived from the ground-truth labels by an older yibao, so it cannot "
            f"feed a score; re-run `yibao synth --out {d}` (it writes purchases from the generated data)",
            why_zh=f"{d}: purchase.parquet 由旧版 yibao 根据标注生成，不能用于评分；请重新运行 yibao synth",
        )
    schema = pq.read_schema(files[0])
    missing = [c for c in PURCHASE_COLUMNS if c not in schema.names]
    if missing:
        raise PurchaseError(
            f"{files[0]}: the purchase table lacks column(s) {', '.join(missing)} (needs "
            f"{', '.join(PURCHASE_COLUMNS)})",
            f"{files[0]}: 进货数据缺少列 {', '.join(missing)}",
            field="purchase",
        )
    meta = schema.metadata or {}
    synthetic = meta.get(b"yibao.synthetic") == b"true"
    if not synthetic and "synthetic" in schema.names:
        con = duckdb.connect()
        try:
            n, n_syn = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE synthetic) FROM {parquet_io.table_sql(d, 'purchase')}"
            ).fetchone() or (0, 0)
        finally:
            con.close()
        synthetic = n > 0 and n == n_syn
    return PurchaseStatus(True, synthetic=synthetic)


def import_purchases(data_dir: str | Path, source: str | Path) -> int:
    """Import a real purchase table (CSV or Parquet, columns of
    :data:`PURCHASE`) as ``DIR/purchase.parquet``; returns its rows.

    Validated first (columns, whole non-negative quantities, codes present, one row per institution, item
    and year); a bad file raises :class:`PurchaseError` and changes nothing.  ``synthetic`` defaults to
    false; the table replaces any earlier one (a synthetic one included) and is recorded in the manifest.
    """
    import pandas as pd

    d, src = Path(data_dir), Path(source)
    if not src.is_file():
        raise PurchaseError(f"{src}: no such file", f"{src}: 文件不存在", field="source")
    try:
        df = (
            pd.read_parquet(src)
            if src.suffix.lower() == ".parquet"
            else pd.read_csv(src, dtype={"fixmedins_code": str, "med_list_codg": str})
        )
    except Exception as exc:  # unreadable: one line, not a traceback
        raise PurchaseError(
            f"{src}: cannot read the purchase table ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
            f"{src}: 无法读取进货数据",
            field="source",
        ) from None
    need = [c for c in PURCHASE.names if c != "synthetic"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise PurchaseError(
            f"{src}: the purchase table lacks column(s) {', '.join(missing)} (needs {', '.join(need)})",
            f"{src}: 进货数据缺少列 {', '.join(missing)}",
            field="purchase",
        )
    if "synthetic" not in df.columns:
        df["synthetic"] = False
    for c in ("fixmedins_code", "med_list_codg"):
        bad = df[c].isna() | df[c].astype(str).str.strip().eq("")
        if bad.any():
            raise PurchaseError(
                f"{src}: row {int(bad.to_numpy().argmax()) + 1}: {c} is empty",
                f"{src}: 第 {int(bad.to_numpy().argmax()) + 1} 行 {c} 为空",
                field=c,
            )
    for c in ("policy_year", "qty_milli", "opening_stock_milli"):
        v = pd.to_numeric(df[c], errors="coerce")
        bad = v.isna() | (v < 0) | (v != v.round())
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise PurchaseError(
                f"{src}: row {i + 1}: {c} must be a whole non-negative number, not {str(df[c].iloc[i])!r}",
                f"{src}: 第 {i + 1} 行 {c} 须为非负整数",
                field=c,
            )
        df[c] = v.astype("int64")
    dup = df.duplicated(["fixmedins_code", "med_list_codg", "policy_year"])
    if dup.any():
        i = int(dup.to_numpy().argmax())
        raise PurchaseError(
            f"{src}: row {i + 1}: a second row for {df.fixmedins_code.iloc[i]} / {df.med_list_codg.iloc[i]} / "
            f"{df.policy_year.iloc[i]}",
            f"{src}: 第 {i + 1} 行重复",
            field="purchase",
        )
    synthetic = df["synthetic"].astype(str).str.lower().isin(["true", "1"])
    table = pa.table(
        {
            "fixmedins_code": pa.array(df.fixmedins_code.astype(str).tolist(), pa.string()),
            "med_list_codg": pa.array(df.med_list_codg.astype(str).tolist(), pa.string()),
            "policy_year": pa.array(df.policy_year.tolist(), pa.int16()),
            "qty_milli": pa.array(df.qty_milli.tolist(), pa.int64()),
            "opening_stock_milli": pa.array(df.opening_stock_milli.tolist(), pa.int64()),
            "synthetic": pa.array(synthetic.tolist(), pa.bool_()),
        },
        schema=PURCHASE,
    )
    meta = {
        b"yibao.table": b"purchase",
        b"yibao.synthetic": b"true" if bool(synthetic.all()) and len(df) else b"false",
        b"yibao.source": str(src.name).encode(),
    }
    if parquet_io.table_path(d, "purchase") not in (None, d / "purchase.parquet"):
        raise PurchaseError(
            f"{d}: purchase/ is a dataset directory; remove it before importing",
            f"{d}: purchase/ 为数据集目录，请先删除",
            field="purchase",
        )
    manifest.check(d, [])  # a directory whose generation did not finish refuses the import before anything is written
    tmp = d / ".purchase.parquet.tmp"
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    tmp.replace(d / "purchase.parquet")  # readers see the old table or the new one
    manifest.record(d, ["purchase"], [], command=f"yibao supervision import-purchases --data {{dir}} {src}")
    return table.num_rows
