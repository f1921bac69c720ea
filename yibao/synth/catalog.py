"""The medical list as the generator needs it: NumPy columns, reference prices
(``med_list_ref.csv``, SYNTHETIC) and restriction lookups."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import numpy as np

from yibao.codes import DiagnosisMix, MedList, load_diagnosis_mix
from yibao.codes._table import data_path, read_csv, table_error
from yibao.core import contract as C
from yibao.core.money import MoneyError, yuan_to_fen

BASIS = ("day", "once", "session")
MED_TYPES = (C.MED_TYPE_OUTPATIENT, C.MED_TYPE_CHRONIC, C.MED_TYPE_INPATIENT, C.MED_TYPE_PHARMACY, C.MED_TYPE_HOME_BED)
KIND_CODES = {k: i for i, k in enumerate(C.LIST_KINDS)}


@dataclass(frozen=True)
class RefRow:
    ref_fen: int
    unit: str
    daily_milli: int
    basis: str


def load_ref(path: str | Path | None = None, med_list: MedList | None = None) -> dict[str, RefRow]:
    """Load ``med_list_ref.csv``; every medical-list code must have exactly one row."""
    path = Path(path) if path else data_path("med_list_ref.csv")
    out: dict[str, RefRow] = {}
    for line, r in read_csv(path, ("med_list_codg", "ref_pric", "unit", "daily_qty", "qty_basis")):
        code = r["med_list_codg"]
        key = f"med_list_codg={code!r}"
        if code in out:
            raise table_error(path, "duplicate code", "编码重复", line=line, key=key)
        try:
            fen = yuan_to_fen(r["ref_pric"])
        except MoneyError as exc:
            raise table_error(path, f"ref_pric: {exc}", "参考价格无效", line=line, key=key, field="ref_pric") from None
        if fen <= 0:
            raise table_error(
                path, "ref_pric must be positive", "参考价格须为正数", line=line, key=key, field="ref_pric"
            )
        try:
            daily = Decimal(r["daily_qty"]) * 1000
        except InvalidOperation:
            daily = Decimal(-1)
        if not daily.is_finite() or daily <= 0 or daily != daily.to_integral_value():
            raise table_error(
                path,
                f"daily_qty {r['daily_qty']!r} must be positive with at most 3 decimals",
                "日用量无效",
                line=line,
                key=key,
                field="daily_qty",
            )
        if r["qty_basis"] not in BASIS:
            raise table_error(
                path,
                f"qty_basis {r['qty_basis']!r} is not one of {BASIS}",
                "计量方式无效",
                line=line,
                key=key,
                field="qty_basis",
            )
        out[code] = RefRow(fen, r["unit"], int(daily), r["qty_basis"])
    if med_list is not None:
        missing = [c for c in med_list.items if c not in out]
        extra = [c for c in out if c not in med_list]
        if missing:
            raise table_error(path, f"no reference price for {missing[:5]}", "缺少参考价格")
        if extra:
            raise table_error(path, f"codes not in the medical list: {extra[:5]}", "编码不在目录中")
    return out


class SynthCatalog:
    """Aligned NumPy columns of the medical list plus reference prices."""

    def __init__(self, med_list: MedList, ref: dict[str, RefRow], mix: DiagnosisMix):
        self.ml = med_list
        self.mix = mix
        codes = list(med_list.items)
        self.n = len(codes)
        self.index = med_list.index
        items = list(med_list.items.values())
        self.ref_fen = np.array([ref[c].ref_fen for c in codes], dtype=np.int64)
        self.daily_milli = np.array([ref[c].daily_milli for c in codes], dtype=np.int64)
        self.basis = np.array([BASIS.index(ref[c].basis) for c in codes], dtype=np.int8)
        self.kind = np.array([KIND_CODES[it.list_kind] for it in items], dtype=np.int8)
        self.is_drug = np.isin(self.kind, [KIND_CODES[k] for k in ("western", "tcm_patent", "herbal")])
        self.is_herbal = self.kind == KIND_CODES["herbal"]
        self.is_service = self.kind == KIND_CODES["service"]
        self.pric_uplmt = med_list.column("pric_uplmt")
        self.vbp = med_list.column("vbp_flag")
        self.vbp_std = med_list.column("vbp_pay_std")
        self.drug_class = med_list.column("drug_class")
        self.lmt_gend = np.array([int(it.lmt_gend or 0) for it in items], dtype=np.int8)
        self.lmt_age_min = med_list.column("lmt_age_min")
        self.lmt_age_max = med_list.column("lmt_age_max")
        self.lmt_hosp_lv_min = med_list.column("lmt_hosp_lv_min")
        self.name = med_list.column("name")
        # med_type restriction as a bit mask over MED_TYPES (0 = none)
        self.med_type_mask = np.array(
            [
                sum(1 << MED_TYPES.index(m) for m in it.lmt_med_types if m in MED_TYPES) if it.lmt_med_types else 0
                for it in items
            ],
            dtype=np.int64,
        )
        # indication: ok[d, m] for each diagnosis-mix row d
        self.ind_ok = np.ones((len(mix), self.n), dtype=bool)
        for m, it in enumerate(items):
            if it.lmt_indication:
                self.ind_ok[:, m] = [any(code.startswith(p) for p in it.lmt_indication) for code in mix.code]
        self.restricted = np.array([it.restricted for it in items], dtype=bool)
        self.codes_arrow = med_list.table.column("med_list_codg").combine_chunks()

    def idx(self, code: str) -> int:
        return self.index[code]

    def pool_arrays(self, pool) -> tuple[np.ndarray, np.ndarray]:
        """(item positions, weights) of a formulary pool."""
        items = np.array([self.index[c] for c, _ in pool], dtype=np.int64)
        w = np.array([w for _, w in pool], dtype=np.float64)
        return items, w


@lru_cache(maxsize=4)
def default_catalog() -> SynthCatalog:
    ml = MedList.load()
    return SynthCatalog(ml, load_ref(med_list=ml), load_diagnosis_mix())
