"""DIP case points on Spark (DIP 病种分值): the unchanged points SQL per partition; the clearing as on DuckDB.

A case's group, outlier kind and points depend only on the case and the
catalog, so Spark spreads the enriched cases over partitions and each task
runs :func:`yibao.payment.dip.case_points_sql` (the one definition of the
points) on its Arrow batches in an in-process DuckDB.  The driver receives
the points table (one row a case) and :func:`yibao.payment.dip.settle`
computes the budgets, monthly and annual point values, payments and clearing
from it exactly as it does for DuckDB's own points — those are sums over
institutions × 13 periods, small next to the cases.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from yibao.payment import dip
from yibao.payment.catalog import Catalog
from yibao.payment.params import DipParams
from yibao.spark.session import frame_of, get_session


def spark_points(spark=None, partitions: int | None = None):
    """A ``points`` function for :func:`yibao.payment.dip.settle` that computes the case points on Spark."""

    def points(
        con: duckdb.DuckDBPyConnection, cases: str, catalog: Catalog, params: DipParams, year: int | None = None
    ) -> str:
        s = spark or get_session()
        table = con.table(cases).to_arrow_table()
        table = table.append_column("_row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        probe = _points_of(table.slice(0, 0), catalog, params, year)  # the output schema, from the same SQL
        from pyspark.sql.pandas.types import from_arrow_schema

        def run(batches):
            for b in batches:
                yield from _points_of(pa.Table.from_batches([b]), catalog, params, year).to_batches()

        with frame_of(s, table) as df:
            df = df.repartition(partitions or max(1, s.sparkContext.defaultParallelism))
            got = df.mapInArrow(run, from_arrow_schema(probe.schema)).toArrow()
        got = got.take(pa.array(np.argsort(got.column("_row").to_numpy(), kind="stable"))).drop_columns(["_row"])
        got = got.cast(probe.schema.remove(probe.schema.get_field_index("_row")))
        con.register("_spark_points_in", got)
        con.execute("CREATE OR REPLACE TEMP TABLE dip_case_points AS SELECT * FROM _spark_points_in")
        con.unregister("_spark_points_in")
        return "dip_case_points"

    return points


def _points_of(cases: pa.Table, catalog: Catalog, params: DipParams, year: int | None) -> pa.Table:
    """The unchanged points SQL over one part of the cases (``_row`` carried through)."""
    con = duckdb.connect()
    try:
        con.register("_cases_part", cases)
        name = dip.case_points_sql(con, "_cases_part", catalog, params, year=year)
        rows = con.sql(f"SELECT p.*, c._row FROM {name} p JOIN _cases_part c USING (mdtrt_id)").to_arrow_table()
    finally:
        con.close()
    return rows
