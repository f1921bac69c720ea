"""Maternity insurance (生育保险) mechanics: pure functions, no I/O.

The medical part (生育医疗费: prenatal checks 产前检查, delivery 分娩) settles through
the ordinary settlement engine as the ``maternity`` benefit category (both the
scalar :mod:`yibao.settlement.rules` and the batch path); :func:`category_for`
is the one place that says so.  The allowance (生育津贴) is computed here from
the policy's ``maternity.allowance`` block:

    amount = average monthly contribution wage of the employer / days_per_month × days

rounded half up to the fen.  Every figure comes from the policy file.
"""

from __future__ import annotations

from yibao.benefits.model import MaternityAllowance, PolicySnapshot
from yibao.core.errors import YibaoError

MATERNITY_CATEGORY = "maternity"
EVENT_KINDS = ("birth", "difficult_birth", "miscarriage")  # 生育 / 难产 / 流产


class MaternityError(YibaoError):
    """A maternity claim that cannot be computed (bad input or not eligible)."""

    code = "E_MATERNITY"


def category_for(setting: str) -> str:
    """The benefit category a ``maternity`` med_type setting settles in."""
    return MATERNITY_CATEGORY


def allowance_rule(snap: PolicySnapshot) -> MaternityAllowance:
    if snap.maternity is None:
        raise MaternityError(
            f"policy {snap.policy} has no maternity rules", f"待遇政策 {snap.policy} 未配置生育保险规则", field="policy"
        )
    return snap.maternity.allowance


def allowance_days(
    rule: MaternityAllowance, event_kind: str, babies: int = 1, pregnancy_weeks: int | None = None
) -> int:
    """Days of maternity allowance (生育津贴天数) for one event."""
    if event_kind not in EVENT_KINDS:
        raise MaternityError(
            f"unknown event kind {event_kind!r}; known: {list(EVENT_KINDS)}",
            f"生育类别 {event_kind!r} 无效",
            field="event_kind",
        )
    if event_kind == "miscarriage":
        if pregnancy_weeks is None or pregnancy_weeks <= 0:
            raise MaternityError(
                "a miscarriage needs the weeks of pregnancy (positive)",
                "流产须填写妊娠周数 (正数)",
                field="pregnancy_weeks",
            )
        return (
            rule.miscarriage_late_days
            if pregnancy_weeks >= rule.miscarriage_weeks_threshold
            else rule.miscarriage_early_days
        )
    if babies < 1:
        raise MaternityError("a birth needs at least one baby", "生育须至少一名婴儿", field="babies")
    days = rule.birth_days + rule.extra_baby_days * (babies - 1)
    if event_kind == "difficult_birth":
        days += rule.difficult_birth_extra_days
    return days


def allowance_amount(rule: MaternityAllowance, average_monthly_wage: int, days: int) -> int:
    """生育津贴 in fen: average monthly wage (fen) / days_per_month × days, rounded half up once."""
    if average_monthly_wage < 0:
        raise MaternityError("the average wage may not be negative", "职工月平均工资不能为负", field="average_wage")
    if days < 0:
        raise MaternityError("days may not be negative", "天数不能为负", field="days")
    d = rule.days_per_month
    return (average_monthly_wage * days * 2 + d) // (2 * d)


def check_eligible(rule: MaternityAllowance, contribution_months: int) -> None:
    """Refuse when the person has fewer maternity contribution months than the rule asks (缴费月数)."""
    if contribution_months < 0:
        raise MaternityError("contribution months may not be negative", "缴费月数不能为负", field="contribution_months")
    if contribution_months < rule.min_contribution_months:
        raise MaternityError(
            f"{contribution_months} months of maternity contributions; the policy needs {rule.min_contribution_months}",
            f"生育保险缴费 {contribution_months} 个月, 不足 {rule.min_contribution_months} 个月",
            field="contribution_months",
        )
