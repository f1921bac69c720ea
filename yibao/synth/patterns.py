"""Injected patterns with ground truth (the hook supervision builds on).

A pattern is a function registered under a name::

    @register_pattern("duplicate_charge")
    def duplicate_charge(tables, rate, rng) -> tuple[dict[str, pa.Table], pa.Table]:
        ...

It receives one chunk's tables (``person``, ``family_link``, ``encounter``,
``fee_detail``), the requested rate and the chunk's random generator, and
returns the changed tables plus ``ground_truth`` rows (contract
``GROUND_TRUTH``: entity, entity_id, pattern, detail).
``generate_region(..., patterns={"duplicate_charge": 0.01})`` applies it.

Labels the generator writes by itself (not injected, but true facts about the
data): ``restricted_scope`` for a fee line kept outside its payment
restriction (entity ``fee_detail``, id ``mdtrt_id#feedetl_sn`` with the line
number in 6 digits; detail gend / age / hosp_lv / indication / med_type) and
``long_rx_unconfirmed`` for an encounter whose > 28-day prescription lacks the
patient's confirmation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core import contract as C
from yibao.core.errors import YibaoError
from yibao.synth._arrow import const_str, digits

PatternFn = Callable[[dict[str, pa.Table], float, np.random.Generator], tuple[dict[str, pa.Table], pa.Table]]
PATTERNS: dict[str, PatternFn] = {}


def register_pattern(name: str) -> Callable[[PatternFn], PatternFn]:
    def deco(fn: PatternFn) -> PatternFn:
        PATTERNS[name] = fn
        return fn

    return deco


def inject_patterns(tables: dict[str, pa.Table], patterns: Mapping[str, float], rng: np.random.Generator) -> tuple[dict[str, pa.Table], pa.Table]:
    """Apply each named pattern at its rate, in sorted name order (deterministic)."""
    labels = [C.GROUND_TRUTH.empty_table()]
    for name in sorted(patterns):
        if name not in PATTERNS:
            raise YibaoError(f"unknown pattern {name!r}; known: {sorted(PATTERNS)}", f"未知的模式 {name!r}", field="patterns")
        rate = float(patterns[name])
        if not 0.0 <= rate <= 1.0:
            raise YibaoError(f"rate of {name!r} must lie in 0..1, not {rate}", "比例须在 0 与 1 之间", field="patterns")
        tables, gt = PATTERNS[name](tables, rate, rng)
        labels.append(gt.cast(C.GROUND_TRUTH))
    return tables, pa.concat_tables(labels)


@register_pattern("duplicate_charge")
def duplicate_charge(tables: dict[str, pa.Table], rate: float, rng: np.random.Generator):
    """重复收费: the last line of a share ``rate`` of encounters is billed twice (same item, time, price)."""
    fee = tables["fee_detail"]
    n = fee.num_rows
    if n == 0 or rate == 0:
        return tables, C.GROUND_TRUTH.empty_table()
    mdtrt = fee.column("mdtrt_id").combine_chunks()
    last = np.ones(n, dtype=bool)
    if n > 1:
        last[:-1] = pc.not_equal(mdtrt.slice(0, n - 1), mdtrt.slice(1)).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(last & (rng.random(n) < rate))
    dup = fee.take(pa.array(rows))
    sn = dup.column("feedetl_sn").to_numpy() + 1
    dup = dup.set_column(dup.schema.get_field_index("feedetl_sn"), "feedetl_sn", pa.array(sn.astype(np.int32)))
    # insert each copy right after its original, so lines stay grouped by encounter
    order = np.argsort(np.concatenate([np.arange(n), rows]) * 2 + np.concatenate([np.zeros(n, np.int64), np.ones(len(rows), np.int64)]), kind="stable")
    tables = {**tables, "fee_detail": pa.concat_tables([fee, dup]).take(pa.array(order))}
    gt = pa.table(
        {
            "entity": const_str("fee_detail", len(rows)),
            "entity_id": pc.binary_join_element_wise(dup.column("mdtrt_id").combine_chunks(), digits("", sn, 6), "#"),
            "pattern": const_str("duplicate_charge", len(rows)),
            "detail": const_str("line billed twice", len(rows)),
        },
        schema=C.GROUND_TRUTH,
    )
    return tables, gt
