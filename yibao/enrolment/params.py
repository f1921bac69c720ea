"""Enrolment rules (参保缴费规则): the data file model and the pure computations.

No database here: contribution parts from a base and rates, base clamping, coverage decisions from periods.
Money is integer fen; a share is rounded half up to the fen (:func:`yibao.core.money.apply_rate`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from yibao.core.errors import YibaoError
from yibao.core.money import apply_rate, parameter_fen, ratio_to_bp
from yibao.core.yamldata import data_error, load_model

__all__ = [
    "EnrolmentError",
    "EnrolmentRules",
    "RuleVersion",
    "load_rules",
    "rules_on",
    "clamp_base",
    "employee_parts",
    "late_fee",
    "Coverage",
    "decide_coverage",
    "DATA_DIR",
]

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "enrolment"


class EnrolmentError(YibaoError):
    """An enrolment or contribution request that cannot be done as asked."""

    code = "E_ENROL"


Fen = Annotated[int, BeforeValidator(parameter_fen)]
Bp = Annotated[int, BeforeValidator(lambda v: ratio_to_bp(v))]


def _multiple_bp(v: object) -> int:
    """A multiple of the average wage (may exceed 1) as basis points."""
    d = Decimal(str(v)) * 10_000
    if d != d.to_integral_value() or d < 0:
        raise ValueError(f"not a non-negative ratio in 0.01 % steps: {v!r}")
    return int(d)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmployeeRules(_Strict):
    employer_rate: Bp
    individual_rate: Bp
    average_wage: Fen
    base_floor_ratio: Annotated[int, BeforeValidator(_multiple_bp)]
    base_ceiling_ratio: Annotated[int, BeforeValidator(_multiple_bp)]
    late_fee_daily_rate: Bp = 0
    waiting_days: int = Field(0, ge=0)
    arrears_months_suspend: int = Field(3, ge=1)
    retiree_min_years: int = Field(0, ge=0)


class ResidentRules(_Strict):
    individual_contribution: Fen
    government_subsidy: Fen
    waiting_days: int = Field(0, ge=0)
    backpay_waiting_days: int = Field(0, ge=0)


class Switches(_Strict):
    required: bool = False


class RuleVersion(_Strict):
    effective_from: dt.date
    employee: EmployeeRules
    resident: ResidentRules
    enrolment: Switches = Switches()


class EnrolmentRules(_Strict):
    rules: str
    versions: tuple[RuleVersion, ...]

    @field_validator("versions")
    @classmethod
    def _ascending(cls, v: tuple[RuleVersion, ...]) -> tuple[RuleVersion, ...]:
        days = [x.effective_from for x in v]
        if not v or days != sorted(set(days)):
            raise ValueError("versions must be non-empty with strictly ascending effective_from")
        return v


@cache
def load_rules(region: str = "", data_dir: str | None = None) -> EnrolmentRules:
    """The rules of a pooling region (``<region>.yaml``), else ``national-default.yaml``."""
    d = Path(data_dir) if data_dir else DATA_DIR
    path = d / f"{region}.yaml" if region and (d / f"{region}.yaml").exists() else d / "national-default.yaml"
    return load_model(path, EnrolmentRules, what=("enrolment rules file", "参保缴费规则文件"), error=EnrolmentError)


def rules_on(rules: EnrolmentRules, day: dt.date) -> RuleVersion:
    """The version in force on ``day``."""
    now = [v for v in rules.versions if v.effective_from <= day]
    if not now:
        raise data_error(
            rules.rules, "versions", f"no rule version in force on {day}", f"{day} 无有效规则版本", error=EnrolmentError
        )
    return now[-1]


def clamp_base(wage_fen: int, r: EmployeeRules) -> int:
    """The contribution base (缴费基数): the wage held between floor and ceiling multiples of the average wage."""
    if wage_fen < 0:
        raise EnrolmentError(
            f"wage base must not be negative: {wage_fen}", f"缴费工资不能为负: {wage_fen}", field="base"
        )
    floor = apply_rate(r.average_wage, r.base_floor_ratio)
    ceiling = apply_rate(r.average_wage, r.base_ceiling_ratio)
    return min(max(wage_fen, floor), ceiling)


def employee_parts(wage_fen: int, r: EmployeeRules) -> tuple[int, int, int]:
    """``(base, employer part, individual part)`` in fen for one month, each part rounded half up."""
    base = clamp_base(wage_fen, r)
    return base, apply_rate(base, r.employer_rate), apply_rate(base, r.individual_rate)


def late_fee(amount_fen: int, days_late: int, daily_bp: int) -> int:
    """Late fee (滞纳金): amount × daily rate × days, rounded half up to the fen (0 when not late)."""
    if days_late <= 0 or daily_bp == 0:
        return 0
    exact = Decimal(amount_fen) * daily_bp * days_late / 10_000
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Coverage:
    """Whether a person is covered on a day; ``reason`` (not_enrolled / stopped / waiting / arrears) if not."""

    covered: bool
    reason: str = ""
    message_en: str = ""
    message_zh: str = ""


COVERED = Coverage(True)


@dataclass(frozen=True)
class PeriodView:
    start_date: dt.date
    end_date: dt.date | None
    status: str


def decide_coverage(
    day: dt.date,
    periods: Iterable[PeriodView],
    *,
    waiting_until: dt.date | None,
    unpaid_months: int,
    arrears_limit: int | None,
) -> Coverage:
    """Coverage on ``day`` from the person's periods in one scheme (pure)."""
    ps = list(periods)
    hit = [p for p in ps if p.start_date <= day and (p.end_date is None or day <= p.end_date)]
    if not hit:
        if any(p.start_date <= day for p in ps):
            return Coverage(False, "stopped", f"insurance stopped before {day}", f"{day} 已停保")
        return Coverage(False, "not_enrolled", f"not enrolled on {day}", f"{day} 未参保")
    if waiting_until is not None and day < waiting_until:
        return Coverage(
            False, "waiting", f"in the waiting period until {waiting_until}", f"处于待遇等待期 (至 {waiting_until})"
        )
    if arrears_limit is not None and unpaid_months >= arrears_limit:
        return Coverage(
            False, "arrears", f"{unpaid_months} months of contributions unpaid", f"欠缴 {unpaid_months} 个月"
        )
    return COVERED
