"""The commercial layer over a settled region's year (Parquet outputs): SYNTHETIC figures when the data is synthetic.

Every settled, not-cancelled claim of the year, in settlement order per person, goes through
:func:`yibao.commercial.mechanics.insurer_payment_np`, as if every insured person had bought the product
(take-up is not modelled).  Specific-drug lines are not separated here (no fee-line join): ``specific_drug`` = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from yibao.commercial.mechanics import insurer_payment_np
from yibao.commercial.products import CommercialError, Product
from yibao.core.parquet_io import sql_source, table_path


@dataclass(frozen=True)
class YearResult:
    year: int
    claims: int
    people: int
    people_helped: int
    insurer_pays: int
    person_part_before: int
    person_part_after: int
    catastrophic_people_before: int  # person-years whose remaining self-pay is above the threshold
    catastrophic_people_after: int
    threshold: int
    synthetic: bool


def run_year(
    data_dir: Path, product: Product, *, year: int | None = None, threshold_fen: int | None = None
) -> YearResult:
    """``threshold_fen``: the remaining-self-pay level counted as catastrophic (default: the product's deductible,
    an ILLUSTRATIVE choice: no household-income data is used)."""
    data_dir = Path(data_dir)
    path = table_path(data_dir, "settlement") if data_dir.is_dir() else None
    if path is None:
        raise CommercialError(
            f"{data_dir}: no settlement table; run yibao settle first",
            f"{data_dir}: 缺少 settlement 表, 请先结算",
            field="data",
        )
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW s AS SELECT * FROM {sql_source(path)}")
        y = year if year is not None else (con.execute("SELECT max(policy_year) FROM s").fetchone() or (None,))[0]
        if y is None:
            raise CommercialError(
                f"{data_dir}: the settlement table is empty", f"{data_dir}: settlement 表为空", field="data"
            )
        rows = con.execute(
            "SELECT psn_no, psn_part_amt, fulamt_ownpay_amt, overlmt_selfpay, coalesce(synthetic, false) FROM s "
            "WHERE policy_year = ? AND NOT coalesce(refd_setl_flag, false) ORDER BY psn_no, setl_time, setl_id",
            [int(y)],
        ).fetchall()
    finally:
        con.close()
    if not rows:
        raise CommercialError(f"{data_dir}: no settlements in {y}", f"{data_dir}: {y} 年没有结算记录", field="year")
    person = np.array([r[0] for r in rows])
    psn = np.array([r[1] for r in rows], dtype=np.int64)
    out = np.minimum(
        np.array([r[2] for r in rows], dtype=np.int64) + np.array([r[3] for r in rows], dtype=np.int64), psn
    )
    pays = insurer_payment_np(product, person, psn - out, out, np.zeros(len(rows), dtype=np.int64))
    _, inv = np.unique(person, return_inverse=True)
    before = np.zeros(inv.max() + 1, dtype=np.int64)
    np.add.at(before, inv, psn)
    paid = np.zeros_like(before)
    np.add.at(paid, inv, pays)
    after = before - paid
    thr = product.deductible if threshold_fen is None else threshold_fen
    return YearResult(
        int(y),
        len(rows),
        len(before),
        int((paid > 0).sum()),
        int(pays.sum()),
        int(before.sum()),
        int(after.sum()),
        int((before > thr).sum()),
        int((after > thr).sum()),
        thr,
        all(bool(r[4]) for r in rows),
    )
