"""LTC lifecycle services (长护险经办): assess, enrol, record services, settle a month.

Every write is one transaction (``session_scope``); a refusal raises ``ClaimRejected`` and changes nothing.
A grade takes effect from the month after the assessment (复评次月生效).
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from yibao.core.db import SHANGHAI, session_scope
from yibao.core.errors import ClaimRejected
from yibao.ltc.models import (
    LtcAssessment,
    LtcClaim,
    LtcEvent,
    LtcRecipient,
    LtcServiceRecord,
)
from yibao.ltc.params import (
    LtcRules,
    get_rules,
    grade_of,
    settle_amounts,
    settle_amounts_batch,
)


def _now() -> dt.datetime:
    return dt.datetime.now(SHANGHAI)


def month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    return dt.date(d.year + y, m + 1, 1)


def days_in_month(month: dt.date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def _event(s: Session, psn_no: str, kind: str, **detail: Any) -> None:
    s.add(LtcEvent(psn_no=psn_no, kind=kind, detail=detail, at=_now()))


def assess(
    engine: Engine,
    psn_no: str,
    assessor_institution: str,
    assessed_on: dt.date,
    scores: dict[str, int],
    region: str = "nantong",
) -> LtcAssessment:
    """Record an assessment; the grade comes from the rule file's score bands."""
    rules = get_rules(region)
    if not psn_no or not assessor_institution:
        raise ClaimRejected("person and assessor institution are required", "须填写人员编号和评估机构", field="psn_no")
    total, grade = grade_of(rules, scores)
    eff = add_months(month_start(assessed_on), 1)
    row = LtcAssessment(
        psn_no=psn_no,
        assessor_institution=assessor_institution,
        assessed_on=assessed_on,
        scores={k: int(v) for k, v in scores.items()},
        total_score=total,
        grade=grade,
        effective_from=eff,
        valid_until=add_months(eff, rules.assessment.valid_months) - dt.timedelta(days=1),
        status="valid",
        appeal_note="",
    )
    with session_scope(engine, immediate=True) as s:
        s.add(row)
        _event(s, psn_no, "assessed", grade=grade, total_score=total, effective_from=eff.isoformat())
    return row


def grade_for_month(s: Session, psn_no: str, month: dt.date) -> LtcAssessment | None:
    """The assessment in force for ``month``: the latest valid one effective by then and not expired."""
    q = (
        select(LtcAssessment)
        .where(
            LtcAssessment.psn_no == psn_no,
            LtcAssessment.status == "valid",
            LtcAssessment.effective_from <= month,
            LtcAssessment.valid_until >= month,
        )
        .order_by(LtcAssessment.effective_from.desc(), LtcAssessment.id.desc())
    )
    return s.scalars(q).first()


def enrol(
    engine: Engine,
    psn_no: str,
    setting: str,
    care_institution: str,
    start_month: dt.date,
    end_month: dt.date | None = None,
    region: str = "nantong",
) -> LtcRecipient:
    """Enrol a recipient: needs an assessment in force at the start month at or above the minimum grade."""
    rules = get_rules(region)
    start = month_start(start_month)
    end = month_start(end_month) if end_month else None
    if setting not in rules.settings:
        raise ClaimRejected(f"unknown care setting {setting!r}", f"护理方式 {setting!r} 无效", field="setting")
    if end is not None and end < start:
        raise ClaimRejected("end month before start month", "结束月份早于开始月份", field="end_month")
    with session_scope(engine, immediate=True) as s:
        a = grade_for_month(s, psn_no, start)
        if a is None:
            raise ClaimRejected(
                "no valid assessment in force for the start month", "开始月份无有效失能评估", field="psn_no"
            )
        if rules.grade_rank(a.grade) < rules.grade_rank(rules.assessment.minimum_grade):
            raise ClaimRejected(
                f"grade {a.grade} is below the minimum {rules.assessment.minimum_grade}",
                f"失能等级 {a.grade} 低于待遇享受最低等级 {rules.assessment.minimum_grade}",
                field="grade",
            )
        if s.scalars(select(LtcRecipient).where(LtcRecipient.psn_no == psn_no)).first() is not None:
            raise ClaimRejected(f"{psn_no} is already enrolled", f"{psn_no} 已纳入长护险待遇", field="psn_no")
        r = LtcRecipient(
            psn_no=psn_no,
            region=region,
            setting=setting,
            care_institution=care_institution,
            start_month=start,
            end_month=end,
        )
        s.add(r)
        s.flush()
        _event(s, psn_no, "enrolled", setting=setting, grade=a.grade, start_month=start.isoformat())
    return r


def _recipient(s: Session, psn_no: str) -> LtcRecipient:
    r = s.scalars(select(LtcRecipient).where(LtcRecipient.psn_no == psn_no)).first()
    if r is None:
        raise ClaimRejected(f"{psn_no} is not an LTC recipient", f"{psn_no} 未纳入长护险待遇", field="psn_no")
    return r


def _check_month(r: LtcRecipient, month: dt.date) -> None:
    if month < r.start_month or (r.end_month is not None and month > r.end_month):
        raise ClaimRejected(f"{month:%Y-%m} is outside the enrolment", f"{month:%Y-%m} 不在待遇享受期内", field="month")


def record_services(
    engine: Engine,
    psn_no: str,
    month: dt.date,
    institution: str,
    days: int,
    cost_fen: int,
    services: list[str] | None = None,
) -> LtcServiceRecord:
    """Record one month's care services (one record per recipient-month; a second is refused)."""
    m = month_start(month)
    if cost_fen < 0:
        raise ClaimRejected("care cost must not be negative", "护理费用不能为负", field="cost")
    if not (0 <= days <= days_in_month(m)):
        raise ClaimRejected(
            "days of care must be between 0 and the days of the month", "护理天数超出当月天数", field="days"
        )
    with session_scope(engine, immediate=True) as s:
        r = _recipient(s, psn_no)
        _check_month(r, m)
        dup = s.scalars(
            select(LtcServiceRecord).where(LtcServiceRecord.recipient_id == r.id, LtcServiceRecord.month == m)
        ).first()
        if dup is not None:
            raise ClaimRejected(
                f"services of {m:%Y-%m} are already recorded", f"{m:%Y-%m} 护理服务已登记", field="month"
            )
        rec = LtcServiceRecord(
            recipient_id=r.id,
            month=m,
            institution=institution,
            days=days,
            services=list(services or []),
            cost_fen=cost_fen,
        )
        s.add(rec)
        _event(s, psn_no, "services_recorded", month=m.isoformat(), days=days, cost_fen=cost_fen)
    return rec


def _claim_inputs(s: Session, r: LtcRecipient, m: dt.date, rules: LtcRules) -> tuple[str, LtcServiceRecord]:
    _check_month(r, m)
    rec = s.scalars(
        select(LtcServiceRecord).where(LtcServiceRecord.recipient_id == r.id, LtcServiceRecord.month == m)
    ).first()
    if rec is None:
        raise ClaimRejected(f"no services recorded for {m:%Y-%m}", f"{m:%Y-%m} 无护理服务记录", field="month")
    a = grade_for_month(s, r.psn_no, m)
    if a is None or rules.grade_rank(a.grade) < rules.grade_rank(rules.assessment.minimum_grade):
        raise ClaimRejected(
            f"no qualifying assessment in force for {m:%Y-%m}", f"{m:%Y-%m} 无符合条件的有效评估", field="grade"
        )
    return a.grade, rec


def settle_month(engine: Engine, psn_no: str, month: dt.date) -> LtcClaim:
    """Settle one recipient-month; settling again returns the same claim (idempotent)."""
    m = month_start(month)
    with session_scope(engine, immediate=True) as s:
        r = _recipient(s, psn_no)
        old = s.scalars(select(LtcClaim).where(LtcClaim.recipient_id == r.id, LtcClaim.month == m)).first()
        if old is not None:
            return old
        rules = get_rules(r.region)
        grade, rec = _claim_inputs(s, r, m, rules)
        a = settle_amounts(rules, grade, r.setting, rec.days, days_in_month(m), rec.cost_fen)
        c = LtcClaim(
            recipient_id=r.id,
            month=m,
            grade=grade,
            setting=r.setting,
            days=rec.days,
            cost_fen=a["cost"],
            fund_fen=a["fund"],
            person_fen=a["person"],
            source_split={k[4:]: v for k, v in a.items() if k.startswith("src_")},
            settled_at=_now(),
        )
        s.add(c)
        _event(s, psn_no, "settled", month=m.isoformat(), fund_fen=a["fund"], person_fen=a["person"])
    return c


def settle_month_all(engine: Engine, month: dt.date) -> list[LtcClaim]:
    """Batch path: settle every recipient with services in ``month`` not yet settled, vectorised, one transaction."""
    m = month_start(month)
    made: list[LtcClaim] = []
    with session_scope(engine, immediate=True) as s:
        done = set(s.scalars(select(LtcClaim.recipient_id).where(LtcClaim.month == m)))
        rows = []
        for r, rec in s.execute(
            select(LtcRecipient, LtcServiceRecord)
            .join(LtcServiceRecord, LtcServiceRecord.recipient_id == LtcRecipient.id)
            .where(LtcServiceRecord.month == m)
            .order_by(LtcRecipient.id)
        ):
            if r.id in done:
                continue
            grade, _ = _claim_inputs(s, r, m, get_rules(r.region))
            rows.append((r, rec, grade))
        by_region: dict[str, list] = {}
        for row in rows:
            by_region.setdefault(row[0].region, []).append(row)
        now = _now()
        for region, rs in by_region.items():
            rules = get_rules(region)
            n = len(rs)
            out = settle_amounts_batch(
                rules,
                [g for _, _, g in rs],
                [r.setting for r, _, _ in rs],
                np.array([rec.days for _, rec, _ in rs]),
                np.full(n, days_in_month(m)),
                np.array([rec.cost_fen for _, rec, _ in rs]),
            )
            srcs = [k for k in out if k.startswith("src_")]
            for i, (r, rec, g) in enumerate(rs):
                c = LtcClaim(
                    recipient_id=r.id,
                    month=m,
                    grade=g,
                    setting=r.setting,
                    days=rec.days,
                    cost_fen=int(out["cost"][i]),
                    fund_fen=int(out["fund"][i]),
                    person_fen=int(out["person"][i]),
                    source_split={k[4:]: int(out[k][i]) for k in srcs},
                    settled_at=now,
                )
                s.add(c)
                made.append(c)
                _event(
                    s,
                    r.psn_no,
                    "settled",
                    month=m.isoformat(),
                    fund_fen=c.fund_fen,
                    person_fen=c.person_fen,
                    batch=True,
                )
    return made


def show(engine: Engine, psn_no: str) -> dict[str, Any]:
    """A recipient's assessments, enrolment, claims and history."""
    with session_scope(engine) as s:
        assessments = s.scalars(
            select(LtcAssessment).where(LtcAssessment.psn_no == psn_no).order_by(LtcAssessment.id)
        ).all()
        r = s.scalars(select(LtcRecipient).where(LtcRecipient.psn_no == psn_no)).first()
        claims = (
            s.scalars(select(LtcClaim).where(LtcClaim.recipient_id == r.id).order_by(LtcClaim.month)).all() if r else []
        )
        events = s.scalars(select(LtcEvent).where(LtcEvent.psn_no == psn_no).order_by(LtcEvent.id)).all()
        if not assessments and r is None:
            raise ClaimRejected(f"nothing known about {psn_no}", f"无 {psn_no} 的长护险记录", field="psn_no")
        return {
            "psn_no": psn_no,
            "assessments": [
                {
                    "assessed_on": a.assessed_on.isoformat(),
                    "grade": a.grade,
                    "total_score": a.total_score,
                    "effective_from": a.effective_from.isoformat(),
                    "valid_until": a.valid_until.isoformat(),
                    "status": a.status,
                }
                for a in assessments
            ],
            "recipient": None
            if r is None
            else {
                "setting": r.setting,
                "care_institution": r.care_institution,
                "start_month": r.start_month.isoformat(),
                "end_month": r.end_month.isoformat() if r.end_month else None,
            },
            "claims": [
                {
                    "month": c.month.strftime("%Y-%m"),
                    "grade": c.grade,
                    "days": c.days,
                    "cost_fen": c.cost_fen,
                    "fund_fen": c.fund_fen,
                    "person_fen": c.person_fen,
                    "source_split": c.source_split,
                }
                for c in claims
            ],
            "events": [{"kind": e.kind, "detail": e.detail} for e in events],
        }
