"""Rule files of prescription circulation (处方流转) and internet-hospital follow-up (互联网医院复诊).

``yibao/data/rxcirc/circulation.yaml`` (benefit level of a circulated prescription, validity, delivery fee) and
``yibao/data/rxcirc/internet-hospital.yaml`` (which institutions, the consultation item, first visits excluded);
each has dated entries, the one in force on a day applies.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from yibao.core.yamldata import load_model
from yibao.rxcirc.prescription import Designation, RxError

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "rxcirc"


class DeliveryRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    covered: bool = False  # 配送费 in the settlement (as item_code) or self-paid outside it
    item_code: str = ""

    @model_validator(mode="after")
    def _item_when_covered(self) -> DeliveryRule:
        if self.covered and not self.item_code:
            raise ValueError("a covered delivery fee needs item_code")
        return self


class CirculationRule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    valid_from: dt.date = Field(alias="from")
    benefit_level: Literal["issuer", "dispenser"]
    valid_days_default: int = Field(ge=1)
    valid_days_max: int = Field(ge=1)
    delivery: DeliveryRule = DeliveryRule()

    @model_validator(mode="after")
    def _default_within_max(self) -> CirculationRule:
        if self.valid_days_default > self.valid_days_max:
            raise ValueError("valid_days_default is above valid_days_max")
        return self


class InternetRule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    valid_from: dt.date = Field(alias="from")
    med_type: str
    consultation_item: str
    first_visit_excluded: bool
    follow_up_window_days: int = Field(ge=1)
    same_diagnosis_prefix: int = Field(ge=1, le=10)


def _in_force(rules: list, day: dt.date, what: tuple[str, str]):
    live = [r for r in rules if r.valid_from <= day]
    if not live:
        raise RxError(f"no {what[0]} rule in force on {day}", f"{day} 无有效的{what[1]}规则", field="date")
    return max(live, key=lambda r: r.valid_from)


def _sorted_unique(rules: list) -> list:
    days = [r.valid_from for r in rules]
    if len(set(days)) != len(days):
        raise ValueError("two entries start on the same day")
    return sorted(rules, key=lambda r: r.valid_from)


class CirculationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[CirculationRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _dates(self) -> CirculationFile:
        self.rules = _sorted_unique(self.rules)
        return self

    def on(self, day: dt.date) -> CirculationRule:
        r: CirculationRule = _in_force(self.rules, day, ("prescription-circulation", "处方流转"))
        return r


class InternetHospitalFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[InternetRule] = Field(min_length=1)
    institutions: list[Designation] = []

    @model_validator(mode="after")
    def _dates(self) -> InternetHospitalFile:
        self.rules = _sorted_unique(self.rules)
        return self

    def on(self, day: dt.date) -> InternetRule:
        r: InternetRule = _in_force(self.rules, day, ("internet-hospital", "互联网医院"))
        return r

    def designated(self, code: str, day: dt.date) -> bool:
        return any(d.code == code and d.valid_from <= day <= d.valid_to for d in self.institutions)


@lru_cache(maxsize=4)
def load_circulation(path: Path = DATA_DIR / "circulation.yaml") -> CirculationFile:
    return load_model(path, CirculationFile, what=("prescription-circulation file", "处方流转规则文件"), error=RxError)


@lru_cache(maxsize=4)
def load_internet_hospital(path: Path = DATA_DIR / "internet-hospital.yaml") -> InternetHospitalFile:
    return load_model(path, InternetHospitalFile, what=("internet-hospital file", "互联网医院规则文件"), error=RxError)
