"""The medical list (医保目录) as the settlement engine reads it.

Built from a contract ``med_list`` Arrow table; a treatment place's
``list_overrides`` (就医地目录) are applied on top.  Offers both a dict of
items (scalar path) and aligned NumPy columns (batch path).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from yibao.codes.medlist import MedItem, MedList
from yibao.core.contract import CLASS_B

ListItem = MedItem  # one row of the list; the settlement engine reads the same item codes publishes


def gend_code(g: str | None) -> int:
    """'' → 0 (no restriction), '1' → 1, '2' → 2, anything else → 9."""
    return {"": 0, "1": 1, "2": 2}.get(g or "", 9)


def _split(s: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (s or "").split(";") if p.strip())


class Catalog:
    """Medical list lookup, by code and as columns."""

    def __init__(self, items: dict[str, ListItem]):
        self.items = items
        self.codes = np.array(list(items), dtype=object)
        self.index = {c: i for i, c in enumerate(items)}
        vals = list(items.values())
        self.chrgitm_lv = np.array([v.chrgitm_lv for v in vals], dtype=object)
        self.selfpay_bp = np.array([v.selfpay_prop_bp for v in vals], dtype=np.int64)
        self.cap = np.array([v.effective_cap for v in vals], dtype=np.int64)
        self.lmt_gend = np.array([v.lmt_gend for v in vals], dtype=object)
        self.lmt_age_min = np.array([v.lmt_age_min for v in vals], dtype=np.int64)
        self.lmt_age_max = np.array([v.lmt_age_max for v in vals], dtype=np.int64)
        self.lmt_hosp_lv_min = np.array([v.lmt_hosp_lv_min for v in vals], dtype=np.int64)
        self.has_indication = np.array([bool(v.lmt_indication) for v in vals])
        self.has_med_types = np.array([bool(v.lmt_med_types) for v in vals])
        self.acct_excluded = np.array([v.acct_excluded for v in vals])
        self.is_drug = np.array([v.is_drug for v in vals])
        self.drug_class = np.array([v.drug_class for v in vals], dtype=object)
        self.is_class_b = self.chrgitm_lv == CLASS_B
        self.class_code = np.array([int(v.chrgitm_lv) for v in vals], dtype=np.int64)  # 1 甲, 2 乙, 3 丙
        self.lmt_gend_code = np.array([gend_code(v.lmt_gend) for v in vals], dtype=np.int64)
        classes = sorted({v.drug_class for v in vals})
        self.drug_class_id = {c: i for i, c in enumerate(classes)}
        self.drug_class_code = np.array([self.drug_class_id[v.drug_class] for v in vals], dtype=np.int64)

    def __contains__(self, code: str) -> bool:
        return code in self.items

    def __getitem__(self, code: str) -> ListItem:
        return self.items[code]

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def from_table(cls, table: pa.Table, source: object = "<med_list table>", validate: bool = True) -> Catalog:
        """The list from a contract ``med_list`` table, validated unless ``validate=False``."""
        ml = MedList(table, source=source, validate=validate)  # validated on load: errors name the row, code and field
        return cls(dict(ml.items))

    def with_overrides(self, overrides: dict) -> Catalog:
        """This list as a treatment place publishes it (就医地目录): class and ratio overrides."""
        if not overrides:
            return self
        items = dict(self.items)
        for code, ov in overrides.items():
            if code not in items:
                continue
            it = items[code]
            kw = {f: getattr(it, f) for f in it.__dataclass_fields__}
            if ov.chrgitm_lv is not None:
                kw["chrgitm_lv"] = ov.chrgitm_lv
            if ov.selfpay_prop is not None:
                kw["selfpay_prop_bp"] = ov.selfpay_prop
            items[code] = ListItem(**kw)
        return Catalog(items)
