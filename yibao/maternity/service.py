"""The maternity allowance claim (生育津贴申领): file, review, read.  One transaction per write.

A claim is refused, and nothing is written, when the applicant is unknown or may not claim under the policy
(``maternity.claimants``), has no maternity cover on the event date or too few contribution months (both from
the enrolment records, :mod:`yibao.maternity.eligibility`), already has a live claim for the same event, or when
the dates are reversed or in the future or the declared wage is negative.  The figures (days, allowance, lump
sum) are computed from the policy in force on the event date and stored with the claim.

The review is a small workflow; each step appends a :class:`MaternityClaimStep`:

    submitted --check--> checked --approve--> approved --pay--> paid
    submitted / checked --reject--> rejected
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from yibao.benefits import maternity as rules
from yibao.benefits.model import Maternity
from yibao.benefits.policy import PolicyBook
from yibao.codes.registry import Person
from yibao.core import db
from yibao.core.db import SHANGHAI
from yibao.maternity.eligibility import NO_RECORD, contribution_months, maternity_cover
from yibao.maternity.models import MaternityClaim, MaternityClaimStep

__all__ = [
    "ClaimRequest",
    "ACTIONS",
    "file_claim",
    "review",
    "get_claim",
    "list_claims",
    "claim_steps",
    "MaternityError",
]

MaternityError = rules.MaternityError

ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "check": (("submitted",), "checked"),  # 初审
    "approve": (("checked",), "approved"),  # 核准
    "reject": (("submitted", "checked"), "rejected"),  # 不予支付
    "pay": (("approved",), "paid"),  # 支付
}
"""action → (statuses it may start from, the status it leads to)."""
DECISIONS = ("approve", "reject")


@dataclass(frozen=True)
class ClaimRequest:
    """What the applicant declares (申领信息); amounts in fen."""

    psn_no: str
    employer: str
    event_kind: str
    event_date: dt.date
    average_wage: int
    babies: int = 1
    pregnancy_weeks: int | None = None
    applied_on: dt.date | None = None  # None: today


def _err(en: str, zh: str, fld: str) -> MaternityError:
    return MaternityError(en, zh, field=fld)


def _now() -> dt.datetime:
    return dt.datetime.now(SHANGHAI)


def _check_request(req: ClaimRequest, today: dt.date) -> dt.date:
    applied = req.applied_on or today
    if not req.employer.strip():
        raise _err("the employer is required", "用人单位不能为空", "employer")
    if req.event_date > today:
        raise _err(
            f"the event date {req.event_date} is in the future", f"生育日期 {req.event_date} 晚于今天", "event_date"
        )
    if applied > today:
        raise _err(f"the application date {applied} is in the future", f"申领日期 {applied} 晚于今天", "applied_on")
    if applied < req.event_date:
        raise _err(
            f"the application date {applied} is before the event date {req.event_date}",
            f"申领日期 {applied} 早于生育日期 {req.event_date}",
            "applied_on",
        )
    if req.average_wage < 0:
        raise _err("the average wage may not be negative", "职工月平均工资不能为负", "average_wage")
    return applied


def _eligible(s: Session, person: Person, m: Maternity, req: ClaimRequest) -> int:
    """Refuse without maternity cover on the event date or with too few months; the months counted."""
    cov = maternity_cover(s, person, m, req.event_date) or NO_RECORD
    if not cov.covered:
        raise _err(
            f"{person.psn_no} has no maternity insurance on {req.event_date}: {cov.message_en}",
            f"{person.psn_no} 在 {req.event_date} 未参加生育保险: {cov.message_zh}",
            "psn_no",
        )
    months = contribution_months(s, person.psn_no, m, req.event_date)
    rules.check_eligible(m.allowance, months)
    return months


def _duplicate(s: Session, req: ClaimRequest) -> None:
    dup = s.scalar(
        select(MaternityClaim.id).where(
            MaternityClaim.psn_no == req.psn_no,
            MaternityClaim.event_date == req.event_date,
            MaternityClaim.status != "rejected",
        )
    )
    if dup is not None:
        raise _err(
            f"{req.psn_no} already has claim {dup} for the event of {req.event_date}",
            f"{req.psn_no} 已有 {req.event_date} 生育事件的申领 (编号 {dup})",
            "event_date",
        )


def file_claim(
    engine: Engine, req: ClaimRequest, *, actor: str, book: PolicyBook | None = None, now: dt.datetime | None = None
) -> int:
    """File a claim (申领): checked, computed and stored with its first step, in one transaction.  Its id."""
    now = now or _now()
    applied = _check_request(req, now.astimezone(SHANGHAI).date())
    with db.session_scope(engine, immediate=True) as s:
        person = s.get(Person, req.psn_no)
        if person is None:
            raise _err(f"unknown person {req.psn_no!r}", f"参保人不存在: {req.psn_no}", "psn_no")
        region = person.insuplc_admdvs or ""
        m = rules.maternity_rules((book or PolicyBook.default()).snapshot(region, req.event_date))
        claimant = rules.claimant_of(m, person.gend)
        days = rules.claim_days(m, claimant, req.event_kind, req.babies, req.pregnancy_weeks)
        months = _eligible(s, person, m, req)
        _duplicate(s, req)
        allowance = rules.allowance_amount(m.allowance, req.average_wage, days)
        lump = rules.lump_sum(m, claimant, req.event_kind, req.babies, req.pregnancy_weeks)
        row = MaternityClaim(
            psn_no=req.psn_no,
            claimant=claimant,
            employer=req.employer.strip(),
            region=region,
            event_kind=req.event_kind,
            babies=req.babies,
            pregnancy_weeks=req.pregnancy_weeks,
            event_date=req.event_date,
            applied_on=applied,
            average_wage=req.average_wage,
            contribution_months=months,
            days=days,
            allowance=allowance,
            lump_sum=lump,
            amount=allowance + lump,
            status="submitted",
            created_at=now,
            synthetic=bool(person.synthetic),
        )
        s.add(row)
        s.flush()
        s.add(MaternityClaimStep(claim_id=row.id, action="submit", to_status="submitted", actor=actor, at=now))
        return int(row.id)


def review(
    engine: Engine, claim_id: int, action: str, *, actor: str, note: str = "", now: dt.datetime | None = None
) -> MaternityClaim:
    """One review step (审核): ``check`` / ``approve`` / ``reject`` (a reason needed) / ``pay``."""
    if action not in ACTIONS:
        raise _err(f"unknown action {action!r}; known: {list(ACTIONS)}", f"审核操作无效: {action}", "action")
    if not actor.strip():
        raise _err("the reviewer is required", "审核人不能为空", "actor")
    if action == "reject" and not note.strip():
        raise _err("a rejection needs its reason (note)", "不予支付须填写理由", "note")
    now = now or _now()
    with db.session_scope(engine, immediate=True) as s:
        row = s.get(MaternityClaim, claim_id)
        if row is None:
            raise _err(f"unknown claim {claim_id}", f"申领不存在: {claim_id}", "claim_id")
        starts, to = ACTIONS[action]
        if row.status not in starts:
            raise _err(
                f"claim {claim_id} is {row.status}: {action} needs {' or '.join(starts)}",
                f"申领 {claim_id} 当前状态 {row.status}, 不能执行 {action}",
                "action",
            )
        s.add(
            MaternityClaimStep(
                claim_id=claim_id, action=action, from_status=row.status, to_status=to, actor=actor, note=note, at=now
            )
        )
        row.status = to
        if action in DECISIONS:
            row.decided_by, row.decided_at = actor, now
        s.flush()
        s.expunge(row)
        return row


def get_claim(s: Session, claim_id: int) -> MaternityClaim:
    row = s.get(MaternityClaim, claim_id)
    if row is None:
        raise _err(f"unknown claim {claim_id}", f"申领不存在: {claim_id}", "claim_id")
    return row


def list_claims(
    s: Session, *, status: str | None = None, psn_no: str | None = None, limit: int = 200
) -> list[MaternityClaim]:
    """Claims, newest first."""
    q = select(MaternityClaim)
    if status:
        q = q.where(MaternityClaim.status == status)
    if psn_no:
        q = q.where(MaternityClaim.psn_no == psn_no)
    return list(s.scalars(q.order_by(MaternityClaim.id.desc()).limit(limit)))


def claim_steps(s: Session, claim_id: int) -> list[MaternityClaimStep]:
    """A claim's review history, oldest first."""
    return list(
        s.scalars(
            select(MaternityClaimStep).where(MaternityClaimStep.claim_id == claim_id).order_by(MaternityClaimStep.id)
        )
    )


def claim_dict(row: MaternityClaim) -> dict:
    """A claim as plain values (CLI JSON, REST, console)."""
    return {
        "claim_id": row.id,
        "psn_no": row.psn_no,
        "claimant": row.claimant,
        "employer": row.employer,
        "region": row.region,
        "event_kind": row.event_kind,
        "babies": row.babies,
        "pregnancy_weeks": row.pregnancy_weeks,
        "event_date": row.event_date.isoformat(),
        "applied_on": row.applied_on.isoformat(),
        "average_wage": row.average_wage,
        "contribution_months": row.contribution_months,
        "days": row.days,
        "allowance": row.allowance,
        "lump_sum": row.lump_sum,
        "amount": row.amount,
        "status": row.status,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "synthetic": bool(row.synthetic),
    }


def step_dict(st: MaternityClaimStep) -> dict:
    return {
        "step_id": st.id,
        "action": st.action,
        "from_status": st.from_status,
        "to_status": st.to_status,
        "actor": st.actor,
        "note": st.note,
        "at": st.at.isoformat(),
    }
