"""DRG grouping on Spark (DRG 分组): the unchanged Python grouper run per partition, the same groups and weights.

The cases are independent, so Spark spreads them over partitions and each task
calls :func:`yibao.payment.drg.group_batch` (which calls the scheme's
``group_frame``) on its Arrow batches (``mapInArrow``).  The whole-table checks
of ``group_frame`` (an empty or repeated case id refuses every case) are made
on the driver first, as one task would see only its part of the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from yibao.payment.drg import group_batch
from yibao.payment.grouper import GroupingInputError
from yibao.spark.session import frame_of, get_session

GROUPED = pa.schema(
    [
        ("drg", pa.string()),
        ("adrg", pa.string()),
        ("mdc", pa.string()),
        ("severity", pa.string()),
        ("rw_e4", pa.int64()),  # relative weight × 10,000 (null: the DRG has none)
        ("path", pa.string()),
        ("status", pa.string()),
        ("_row", pa.int64()),
    ]
)
_DDL = "drg string, adrg string, mdc string, severity string, rw_e4 bigint, path string, status string, _row bigint"
INPUTS = ("mdtrt_id", "gend", "age", "nwb_age", "nwb_bir_wt", "ipt_days", "dise_codg", "other_dise_codg", "oprn_codg")


def _check_ids(cases: pd.DataFrame) -> None:
    if "mdtrt_id" not in cases:
        return
    ids = cases["mdtrt_id"].astype(str).str.strip()
    if (ids == "").any():
        row = int(np.flatnonzero((ids == "").to_numpy())[0]) + 1
        raise GroupingInputError(f"row {row}: empty case_id", f"第 {row} 行 case_id 为空", field="case_id")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise GroupingInputError(f"duplicate case_id {dup.iloc[0]!r}", f"case_id {dup.iloc[0]!r} 重复", field="case_id")


def group_batch_spark(scheme, cases: pd.DataFrame, spark=None, partitions: int | None = None) -> pd.DataFrame:
    """:func:`yibao.payment.drg.group_batch` on Spark: the same columns, aligned with ``cases``."""
    _check_ids(cases)
    spark = spark or get_session()
    cols = [c for c in INPUTS if c in cases.columns]
    table = pa.Table.from_pandas(cases[cols].reset_index(drop=True), preserve_index=False)
    table = table.append_column("_row", pa.array(np.arange(len(cases), dtype=np.int64)))
    n_parts = partitions or max(1, spark.sparkContext.defaultParallelism)

    def group(batches):
        for b in batches:
            part = b.to_pandas()
            got = group_batch(scheme, part.drop(columns="_row"))
            got["_row"] = part["_row"].to_numpy()
            yield pa.RecordBatch.from_pandas(got, schema=GROUPED, preserve_index=False)

    with frame_of(spark, table) as df:  # one row of groups a case: the driver already holds the cases
        out = df.repartition(n_parts).mapInArrow(group, _DDL).toArrow()
    out = out.take(pa.array(np.argsort(out.column("_row").to_numpy(), kind="stable"))).drop_columns(["_row"])
    res = out.to_pandas()
    res["rw_e4"] = res["rw_e4"].astype("int64") if not res["rw_e4"].isna().any() else res["rw_e4"]
    res.index = cases.index
    return res
