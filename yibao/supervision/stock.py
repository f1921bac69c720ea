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

For a synthetic region, :func:`synthesize_purchases` derives a SYNTHETIC
purchase table: what was truly dispensed (the billed quantity, divided back
by the factor of an injected ``stock_mismatch`` label) plus 0-5 % kept in
stock, with an opening stock of 0 to 1 month of the pair's true use (whole units).

The opening stock scales with volume, as a pharmacy's does (v1 drew a flat 0-6 units whatever the
volume: for a pair dispensing 10 units a year that is 7 months of stock, which hid a 50 % billing
inflation entirely, so such labels could not be found from the data a supervisor has).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from yibao.core import manifest, parquet_io

PURCHASE_INPUTS = ("fee_detail", "encounter", "med_list", "ground_truth")  # what synthesize_purchases reads
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


def synthesize_purchases(data_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``purchase.parquet`` (SYNTHETIC) for the region in ``data_dir``; returns its path."""
    d = Path(data_dir)
    out_path = Path(out) if out else d / "purchase.parquet"
    manifest.check(d, PURCHASE_INPUTS)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    src = {t: parquet_io.table_sql(d, t) for t in ("ground_truth", "fee_detail", "encounter", "med_list")}  # file or dataset directory
    for t in ("fee_detail", "encounter", "med_list"):
        if src[t] is None:
            from yibao.supervision.batch import ScanError

            raise ScanError(f"{d}: missing {t}.parquet (a contract table)", f"{d}: 缺少 {t}.parquet", field="data_dir")
    factors = (
        f"SELECT entity_id, TRY_CAST(regexp_extract(detail, 'factor=([0-9.]+)', 1) AS DECIMAL(6,2)) AS factor FROM {src['ground_truth']} WHERE pattern = 'stock_mismatch'"
        if src["ground_truth"] is not None
        else "SELECT NULL::VARCHAR AS entity_id, NULL::DECIMAL(6,2) AS factor WHERE false"
    )
    df = con.execute(
        f"""
        WITH sold AS (
          SELECT e.fixmedins_code, f.med_list_codg, any_value(e.policy_year) AS policy_year, sum(f.cnt_milli) AS sold
          FROM {src["fee_detail"]} f JOIN {src["encounter"]} e USING (mdtrt_id)
          JOIN {src["med_list"]} m USING (med_list_codg)
          WHERE m.list_kind IN ('western', 'tcm_patent')
          GROUP BY 1, 2
        ), f AS ({factors})
        SELECT s.fixmedins_code, s.med_list_codg, s.policy_year, s.sold, coalesce(f.factor, 1) AS factor
        FROM sold s LEFT JOIN f ON f.entity_id = s.fixmedins_code || '#' || s.med_list_codg
        ORDER BY 1, 2
        """
    ).fetch_df()
    qty, opening = [], []
    for code, item, sold, factor in zip(df.fixmedins_code, df.med_list_codg, df.sold, df.factor):
        u = zlib.crc32(f"purchase|{code}|{item}".encode()) / 2**32
        true = int(sold) * 100 // int(round(float(factor) * 100))
        qty.append(-(-true * (10000 + int(u * 500)) // 10000 // 1000) * 1000)  # whole units, 0-5 % extra
        v = zlib.crc32(f"opening|{code}|{item}".encode()) / 2**32
        opening.append(int(true * v) // 12 // 1000 * 1000)  # 0 to 1 month of true use, whole units
    table = pa.table(
        {
            "fixmedins_code": pa.array(df.fixmedins_code.astype(str).tolist()),
            "med_list_codg": pa.array(df.med_list_codg.astype(str).tolist()),
            "policy_year": pa.array(df.policy_year.astype("int16").to_numpy()),
            "qty_milli": pa.array(qty, type=pa.int64()),
            "opening_stock_milli": pa.array(opening, type=pa.int64()),
            "synthetic": pa.array([True] * len(df)),
        },
        schema=PURCHASE,
    )
    meta = {b"yibao.table": b"purchase", b"yibao.synthetic": b"true", b"yibao.money_unit": b"fen"}
    pq.write_table(table.replace_schema_metadata(meta), out_path)
    if out_path.resolve() == (d / "purchase.parquet").resolve():
        manifest.record(d, ["purchase"], PURCHASE_INPUTS, command=manifest.PURCHASE_COMMAND)
    return out_path
