"""Filing rules (备案规则) read from ``yibao/data/crossregion/filing.yaml``."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from yibao.core.yamldata import load_model

RULES_PATH = Path(__file__).resolve().parent.parent / "data" / "crossregion" / "filing.yaml"


class FilingType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str
    name_zh: str
    valid_months: int = 0  # 0 = open-ended


class FilingRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int
    types: dict[str, FilingType]

    def default_end(self, filing_type: str, begin: dt.date) -> dt.date | None:
        """The end date a filing gets when none is given: begin + valid months − 1 day, or None (open-ended)."""
        months = self.types[filing_type].valid_months
        if months <= 0:
            return None
        y, m = divmod(begin.month - 1 + months, 12)
        year, month = begin.year + y, m + 1
        day = min(begin.day, _month_days(year, month))
        return dt.date(year, month, day) - dt.timedelta(days=1)


def _month_days(year: int, month: int) -> int:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> FilingRules:
    return load_model(path or RULES_PATH, FilingRules, what=("filing rules", "备案规则"))
