"""The synthetic region's purchases (合成进货台账): table ``purchase`` for the purchase–sale–stock check (进销存).

The generator writes it from what it generated and planted, never from the
labels: per institution and drug (``list_kind`` western or tcm_patent) it adds
up what was really dispensed over the year — the billed quantity less the
units the ``stock_mismatch`` pattern added to the bills (the chunk's planted
``stock_excess``, see :func:`yibao.synth.patterns.inject_patterns`) — and
writes

* ``qty_milli``: that, plus 0-5 % kept in stock, rounded up to whole units;
* ``opening_stock_milli``: 0 to 1 month of that use, whole units down;
* ``synthetic``: true (and ``yibao.synthetic = true`` in the file's metadata).

The two shares are fixed by a hash of the pair (the same in every chunk and
run).  The opening stock scales with volume, as a pharmacy's does (a flat 0-6
units would be seven months of stock for a pair dispensing 10 a year, hiding a
50 % billing inflation from any supervisor).  The schema is
:data:`yibao.supervision.stock.PURCHASE`, the shape a real import has.
ILLUSTRATIVE: the 0-5 % and 0-1 month are the generator's assumptions, not
figures from the seeds.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa

from yibao.supervision.stock import PURCHASE

DRUG_KINDS = ("western", "tcm_patent")  # dispensed from stock (herbal pieces are weighed out, services are not stocked)
EXTRA_STOCK_BP = 500  # up to 5 % bought beyond the year's use
OPENING_MONTHS_MAX = 1  # opening stock: up to one month of the year's use


def _h(tag: str, code: str, item: str) -> int:
    """A number in [0, 2**32) fixed by the pair (integer arithmetic: no float in a quantity)."""
    return zlib.crc32(f"{tag}|{code}|{item}".encode())


class PurchaseLedger:
    """Adds up, chunk by chunk, what each institution dispensed of each drug; :meth:`table` is the purchase table."""

    def __init__(self, med_list: pa.Table, year: int) -> None:
        kinds = med_list.column("list_kind").to_pylist()
        self._drugs = {
            c for c, k in zip(med_list.column("med_list_codg").to_pylist(), kinds, strict=True) if k in DRUG_KINDS
        }
        self._year = int(year)
        self._dispensed: dict[tuple[str, str], int] = {}

    def add(self, encounter: pa.Table, fee_detail: pa.Table, planted: Mapping | None = None) -> None:
        """One chunk (its encounters and fee lines, after the patterns) and what its patterns planted."""
        fee = pd.DataFrame({
            "mdtrt_id": fee_detail.column("mdtrt_id").to_numpy(zero_copy_only=False),
            "med_list_codg": fee_detail.column("med_list_codg").to_numpy(zero_copy_only=False),
            "cnt_milli": fee_detail.column("cnt_milli").to_numpy().astype(np.int64),
        })  # fmt: skip
        fee = fee[fee["med_list_codg"].isin(self._drugs)]
        inst = pd.Series(encounter.column("fixmedins_code").to_numpy(zero_copy_only=False),
                         index=encounter.column("mdtrt_id").to_numpy(zero_copy_only=False))  # fmt: skip
        fee = fee.assign(fixmedins_code=inst.reindex(fee["mdtrt_id"].to_numpy()).to_numpy())
        billed = fee.groupby(["fixmedins_code", "med_list_codg"], sort=False)["cnt_milli"].sum()
        excess = dict((planted or {}).get("stock_excess", {}))
        # pandas-stubs type a Series' keys as Hashable; these are (institution, item) pairs
        for (code, item), n in cast("Iterable[tuple[tuple[str, str], int]]", billed.items()):
            true = int(n) - int(excess.get(f"{code}#{item}", 0))
            key = (str(code), str(item))
            self._dispensed[key] = self._dispensed.get(key, 0) + true

    def table(self) -> pa.Table:
        """The purchase table (SYNTHETIC), one row per institution and drug dispensed, sorted by both."""
        keys = sorted(self._dispensed)
        qty, opening = [], []
        for code, item in keys:
            true = self._dispensed[(code, item)]
            extra = 10000 + _h("purchase", code, item) * EXTRA_STOCK_BP // 2**32
            qty.append(-(-true * extra // 10000 // 1000) * 1000)  # whole units, rounded up
            opening.append(
                true * OPENING_MONTHS_MAX * _h("opening", code, item) // 2**32 // 12 // 1000 * 1000
            )  # whole units, down
        return pa.table(
            {
                "fixmedins_code": pa.array([k[0] for k in keys], pa.string()),
                "med_list_codg": pa.array([k[1] for k in keys], pa.string()),
                "policy_year": pa.array([self._year] * len(keys), pa.int16()),
                "qty_milli": pa.array(qty, pa.int64()),
                "opening_stock_milli": pa.array(opening, pa.int64()),
                "synthetic": pa.array([True] * len(keys), pa.bool_()),
            },
            schema=PURCHASE,
        )
