"""``cross_filed`` for a batch of claims from a filing table (备案表, e.g. ``cross_filing.parquet``).

The same rule as :func:`yibao.crossregion.service.filing_in_force`: an active filing of the person and
insutype whose period covers the day of care and whose place of treatment is in the treatment province.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
import pandas as pd
import pyarrow as pa

from yibao.codes.divisions import is_cross_province

_EPOCH = dt.date(1970, 1, 1)


def _day(v) -> int | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        v = v.date()
    if isinstance(v, dt.datetime):
        v = v.date()
    return (v - _EPOCH).days


def filed_flags(filings: pa.Table | pd.DataFrame, psn_no, insutype, area, day, cross) -> np.ndarray:
    """One bool per claim: filed on ``day`` (days since 1970-01-01, local) for ``area``'s province.

    Claims not ``cross`` are left True (the flag is only read for cross-province claims).
    """
    df = filings.to_pandas() if isinstance(filings, pa.Table) else filings
    by_person: dict[tuple[str, str], list[tuple[int, int | None, str]]] = defaultdict(list)
    for r in df.itertuples(index=False):
        if getattr(r, "status", "active") != "active":
            continue
        begin = _day(r.begin_date)
        if begin is None:  # the register refuses a filing without a start; such a row covers no day
            continue
        by_person[(str(r.psn_no), str(r.insutype))].append((begin, _day(r.end_date), str(r.treatment_admdvs)))
    out = np.ones(len(psn_no), dtype=bool)
    for i in np.flatnonzero(np.asarray(cross, dtype=bool)):
        d = int(day[i])
        out[i] = any(
            b <= d and (e is None or d <= e) and not is_cross_province(t, str(area[i]))
            for b, e, t in by_person.get((str(psn_no[i]), str(insutype[i])), ())
        )
    return out
