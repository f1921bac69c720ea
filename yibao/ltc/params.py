"""LTC rules (长护险规则) read from ``yibao/data/ltc/<region>.yaml``, and the settlement arithmetic.

Scalar :func:`settle_amounts` and vectorised :func:`settle_amounts_batch` give the same fen.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict

from yibao.benefits.ltc import pro_rata_fen, pro_rata_fen_np
from yibao.core.errors import ClaimRejected
from yibao.core.money import (
    BP_SCALE,
    apply_rate,
    apply_rate_np,
    parameter_fen,
    ratio_to_bp,
)
from yibao.core.yamldata import load_model

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "ltc"
Fen = Annotated[int, BeforeValidator(parameter_fen)]
Bp = Annotated[int, BeforeValidator(ratio_to_bp)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Band(_Strict):
    grade: str
    min_score: int


class Assessment(_Strict):
    dimensions: dict[str, int]  # first-level indicator → max score
    bands: list[Band]
    valid_months: int
    minimum_grade: str


class Payment(_Strict):
    monthly_limit: Fen  # 月支付限额
    fund_ratio: Bp  # 基金支付比例


class LtcRules(_Strict):
    region: str
    name_zh: str
    effective_from: dt.date
    assessment: Assessment
    settings: list[str]
    payment: dict[str, dict[str, Payment]]
    funding_per_person_year: dict[str, Fen]

    def grade_rank(self, grade: str) -> int:
        return [b.grade for b in self.assessment.bands].index(grade)


@lru_cache(maxsize=8)
def get_rules(region: str = "nantong") -> LtcRules:
    path = DATA_DIR / f"{region}.yaml"
    if not path.exists():
        raise ClaimRejected(f"no LTC rules for region {region!r}", f"无该地区长护险规则 {region!r}", field="region")
    return load_model(path, LtcRules, what=("LTC rule file", "长护险规则文件"))


def grade_of(rules: LtcRules, scores: dict[str, int]) -> tuple[int, str]:
    """Total score and grade (失能等级) from the scores per first-level indicator."""
    dims = rules.assessment.dimensions
    if set(scores) != set(dims):
        raise ClaimRejected(
            f"scores must be given for exactly {sorted(dims)}", f"评估得分须包含 {sorted(dims)}", field="scores"
        )
    for k, v in scores.items():
        if not (0 <= int(v) <= dims[k]):
            raise ClaimRejected(
                f"score {k}={v} outside 0..{dims[k]}", f"评估得分 {k}={v} 超出 0..{dims[k]}", field="scores"
            )
    total = sum(int(v) for v in scores.values())
    grade = rules.assessment.bands[0].grade
    for b in rules.assessment.bands:
        if total >= b.min_score:
            grade = b.grade
    return total, grade


def _payment(rules: LtcRules, grade: str, setting: str) -> Payment:
    if setting not in rules.settings:
        raise ClaimRejected(f"unknown care setting {setting!r}", f"护理方式 {setting!r} 无效", field="setting")
    p = rules.payment.get(grade, {}).get(setting)
    if p is None:
        raise ClaimRejected(
            f"grade {grade!r} has no {setting} benefit", f"失能等级 {grade!r} 无此护理方式待遇", field="grade"
        )
    return p


def split_funding(rules: LtcRules, fund_fen: int) -> dict[str, int]:
    """Split a fund payment by the funding sources' shares; the last source takes the rounding remainder."""
    shares = rules.funding_per_person_year
    total = sum(shares.values())
    out: dict[str, int] = {}
    names = list(shares)
    for n in names[:-1]:
        out[n] = fund_fen * shares[n] // total
    out[names[-1]] = fund_fen - sum(out.values())
    return out


def settle_amounts(
    rules: LtcRules, grade: str, setting: str, days: int, days_in_month: int, cost_fen: int
) -> dict[str, int]:
    """Fund pays ``min(cost × ratio, limit pro rata by days)``; the person pays the rest."""
    if cost_fen < 0:
        raise ClaimRejected("care cost must not be negative", "护理费用不能为负", field="cost")
    if not (0 <= days <= days_in_month):
        raise ClaimRejected(
            "days of care must be between 0 and the days of the month", "护理天数超出当月天数", field="days"
        )
    p = _payment(rules, grade, setting)
    limit = pro_rata_fen(p.monthly_limit, days, days_in_month)
    fund = min(apply_rate(cost_fen, p.fund_ratio), limit)
    return {
        "cost": cost_fen,
        "fund": fund,
        "person": cost_fen - fund,
        **{f"src_{k}": v for k, v in split_funding(rules, fund).items()},
    }


def settle_amounts_batch(
    rules: LtcRules,
    grades: list[str],
    settings: list[str],
    days: np.ndarray,
    days_in_month: np.ndarray,
    cost_fen: np.ndarray,
) -> dict[str, np.ndarray]:
    """Vectorised :func:`settle_amounts` over many recipient-months (same rounding, same refusals)."""
    days = np.asarray(days, dtype=np.int64)
    dim = np.asarray(days_in_month, dtype=np.int64)
    cost = np.asarray(cost_fen, dtype=np.int64)
    if (cost < 0).any():
        raise ClaimRejected("care cost must not be negative", "护理费用不能为负", field="cost")
    if ((days < 0) | (days > dim)).any():
        raise ClaimRejected(
            "days of care must be between 0 and the days of the month", "护理天数超出当月天数", field="days"
        )
    pays = [_payment(rules, g, s) for g, s in zip(grades, settings, strict=True)]
    limit_m = np.array([p.monthly_limit for p in pays], dtype=np.int64)
    ratio = np.array([p.fund_ratio for p in pays], dtype=np.int64)
    fund = np.minimum(apply_rate_np(cost, ratio), pro_rata_fen_np(limit_m, days, dim))
    out = {"cost": cost, "fund": fund, "person": cost - fund}
    shares = rules.funding_per_person_year
    total = sum(shares.values())
    names = list(shares)
    acc = np.zeros_like(fund)
    for n in names[:-1]:
        out[f"src_{n}"] = fund * shares[n] // total
        acc = acc + out[f"src_{n}"]
    out[f"src_{names[-1]}"] = fund - acc
    return out


assert BP_SCALE == 10000
