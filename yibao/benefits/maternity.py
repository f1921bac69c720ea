"""Maternity insurance (生育保险) mechanics: pure functions, no I/O.

The medical part (生育医疗费: prenatal checks 产前检查, delivery 分娩) settles through
the ordinary settlement engine as the ``maternity`` benefit category (both the
scalar :mod:`yibao.settlement.rules` and the batch path); :func:`category_for`
is the one place that says so.  The allowance (生育津贴) is computed here from
the policy's ``maternity.allowance`` block:

    amount = average monthly contribution wage of the employer / days_per_month × days

rounded half up to the fen.  Who may claim (the insured woman; the insured father where the city pays a
paternity allowance 陪产假津贴) and the fixed delivery sum (生育医疗费定额) some cities pay through the claim
are the policy's ``maternity.claimants`` / ``paternity_days`` / ``lump_sums``.  Every figure comes from the
policy file.
"""

from __future__ import annotations

from yibao.benefits.model import Maternity, MaternityAllowance, PolicySnapshot
from yibao.core.errors import YibaoError

MATERNITY_CATEGORY = "maternity"
EVENT_KINDS = ("birth", "difficult_birth", "miscarriage")  # 生育 / 难产 / 流产
FEMALE, MALE = "2", "1"  # gend of the national dictionary (人员性别)
WOMAN, SPOUSE = "insured_woman", "insured_spouse"


class MaternityError(YibaoError):
    """A maternity claim that cannot be computed (bad input or not eligible)."""

    code = "E_MATERNITY"


def category_for(setting: str) -> str:
    """The benefit category a ``maternity`` med_type setting settles in."""
    return MATERNITY_CATEGORY


def maternity_rules(snap: PolicySnapshot) -> Maternity:
    """The policy's whole ``maternity`` block; refused when the policy has none."""
    if snap.maternity is None:
        raise MaternityError(
            f"policy {snap.policy} has no maternity rules", f"待遇政策 {snap.policy} 未配置生育保险规则", field="policy"
        )
    return snap.maternity


def allowance_rule(snap: PolicySnapshot) -> MaternityAllowance:
    return maternity_rules(snap).allowance


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


def claimant_of(rules: Maternity, gend: str | None) -> str:
    """Who is claiming (``insured_woman`` / ``insured_spouse``) from the applicant's sex; refused where the file
    does not let that claimant claim (e.g. a man where only the insured woman may)."""
    claimant = {FEMALE: WOMAN, MALE: SPOUSE}.get(gend or "")
    if claimant is None:
        raise MaternityError(
            f"the applicant's sex is not recorded ({gend!r}): the claim cannot be decided",
            "申请人性别未登记, 无法受理生育津贴申领",
            field="gend",
        )
    if claimant not in rules.claimants:
        raise MaternityError(
            "only the insured woman may claim the maternity allowance under this policy",
            "本统筹区生育津贴仅由参保女职工本人申领",
            field="psn_no",
        )
    return claimant


def claim_days(
    rules: Maternity, claimant: str, event_kind: str, babies: int = 1, pregnancy_weeks: int | None = None
) -> int:
    """Days paid for one claim: the woman's by the event (:func:`allowance_days`), the father's paternity days."""
    if claimant == WOMAN:
        return allowance_days(rules.allowance, event_kind, babies, pregnancy_weeks)
    if event_kind == "miscarriage":
        raise MaternityError(
            "a paternity allowance is paid for a birth, not a miscarriage", "陪产假津贴仅适用于生育", field="event_kind"
        )
    allowance_days(rules.allowance, event_kind, babies, pregnancy_weeks)  # the same checks of the event
    return rules.paternity_days


def lump_sum(
    rules: Maternity, claimant: str, event_kind: str, babies: int = 1, pregnancy_weeks: int | None = None
) -> int:
    """The fixed delivery sum (生育医疗费定额) in fen this claim pays: 0 where the file has none, and for a father."""
    if claimant != WOMAN or not rules.lump_sums:
        return 0
    key = event_kind
    if event_kind == "miscarriage":
        weeks = pregnancy_weeks or 0
        key = "miscarriage_late" if weeks >= rules.allowance.miscarriage_weeks_threshold else "miscarriage_early"
    base = rules.lump_sums.get(key, 0)
    extra = rules.lump_sums.get("extra_baby", 0) * (babies - 1) if event_kind != "miscarriage" else 0
    return base + extra
