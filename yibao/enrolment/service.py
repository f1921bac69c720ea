"""Enrolment services (参保登记、增减员、缴费、补缴): one transaction each; bad input changes nothing.

:func:`coverage_on` is the check settlement calls ("benefits follow enrolment"): it applies to a person who
has enrolment records, or to everyone when the rules switch it on (``enrolment.required: true``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from yibao.codes.registry import Person
from yibao.core import db
from yibao.core.contract import INSUTYPE_EMPLOYEE, INSUTYPE_MATERNITY, INSUTYPE_RESIDENT
from yibao.core.errors import ClaimRejected
from yibao.enrolment.models import Contribution, DeemedYears, InsuredPeriod
from yibao.enrolment.params import (
    Coverage,
    EnrolmentError,
    PeriodView,
    decide_coverage,
    employee_parts,
    late_fee,
    load_rules,
    rules_on,
)

__all__ = [
    "enrol",
    "stop",
    "pay_employee_month",
    "pay_resident_year",
    "backpay",
    "arrears",
    "set_deemed_years",
    "coverage_on",
    "require_coverage",
    "SCHEMES",
]

SCHEMES = (INSUTYPE_EMPLOYEE, INSUTYPE_RESIDENT, INSUTYPE_MATERNITY)  # 510: 生育保险 periods (yibao.maternity)


def _err(en: str, zh: str, fld: str) -> EnrolmentError:
    return EnrolmentError(en, zh, field=fld)


def _person(s: Session, psn_no: str) -> Person:
    p = s.get(Person, psn_no)
    if p is None:
        raise _err(f"unknown person {psn_no!r}", f"参保人不存在: {psn_no}", "psn_no")
    return p


def _scheme(insutype: str) -> None:
    if insutype not in SCHEMES:
        raise _err(
            f"unknown or unsupported insutype {insutype!r}; give one of {SCHEMES}", f"险种无效: {insutype}", "insutype"
        )


def _month(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise _err(f"month {text!r} is not YYYY-MM", f"月份格式应为 YYYY-MM: {text}", "period") from None


def enrol(
    engine: Engine,
    psn_no: str,
    insutype: str,
    start: dt.date,
    *,
    reason: str = "new",
    transfer_in_from: str | None = None,
) -> int:
    """Open an insured period (参保 / 转入); refused if one is open or overlaps.  Returns its id."""
    _scheme(insutype)
    with db.session_scope(engine, immediate=True) as s:
        _person(s, psn_no)
        for p in s.scalars(
            select(InsuredPeriod).where(InsuredPeriod.psn_no == psn_no, InsuredPeriod.insutype == insutype)
        ):
            if p.end_date is None or p.end_date >= start:
                raise _err(
                    f"{psn_no} already has a period in {insutype} from {p.start_date} overlapping {start}",
                    f"{psn_no} 在险种 {insutype} 已有与 {start} 重叠的参保期间 (自 {p.start_date})",
                    "start_date",
                )
        row = InsuredPeriod(
            psn_no=psn_no,
            insutype=insutype,
            start_date=start,
            status="active",
            reason=reason,
            transfer_in_from=transfer_in_from,
        )
        s.add(row)
        s.flush()
        return int(row.id)


def stop(
    engine: Engine,
    psn_no: str,
    insutype: str,
    end: dt.date,
    *,
    reason: str = "stop",
    terminate: bool = False,
    transfer_out_to: str | None = None,
) -> None:
    """Close the open period on ``end`` (停保; 终止 / 转出 with ``terminate`` or ``transfer_out_to``)."""
    _scheme(insutype)
    with db.session_scope(engine, immediate=True) as s:
        p = s.scalars(
            select(InsuredPeriod).where(
                InsuredPeriod.psn_no == psn_no, InsuredPeriod.insutype == insutype, InsuredPeriod.end_date.is_(None)
            )
        ).first()
        if p is None:
            raise _err(
                f"{psn_no} has no open period in {insutype}", f"{psn_no} 在险种 {insutype} 无有效参保期间", "psn_no"
            )
        if end < p.start_date:
            raise _err(
                f"end {end} is before the start {p.start_date}",
                f"停保日期 {end} 早于参保日期 {p.start_date}",
                "end_date",
            )
        p.end_date = end
        p.status = "terminated" if (terminate or transfer_out_to) else "suspended"
        p.reason = reason
        p.transfer_out_to = transfer_out_to


def _region(p: Person) -> str:
    return p.insuplc_admdvs or ""


def _new_contribution(s: Session, row: Contribution) -> None:
    dup = s.scalar(
        select(Contribution.id).where(
            Contribution.psn_no == row.psn_no, Contribution.insutype == row.insutype, Contribution.period == row.period
        )
    )
    if dup is not None:
        raise _err(
            f"{row.psn_no} already has a contribution for {row.insutype} {row.period}",
            f"{row.psn_no} 已有 {row.insutype} {row.period} 的缴费记录",
            "period",
        )
    s.add(row)
    s.flush()


def pay_employee_month(
    engine: Engine, psn_no: str, month: str, wage_fen: int, paid_date: dt.date | None
) -> Contribution:
    """Record an employee month (职工缴费): base clamped, parts = base × rates; ``paid_date`` None = arrears."""
    first = _month(month)
    with db.session_scope(engine, immediate=True) as s:
        p = _person(s, psn_no)
        r = rules_on(load_rules(_region(p)), first).employee
        base, employer, individual = employee_parts(int(wage_fen), r)
        row = Contribution(
            psn_no=psn_no,
            insutype=INSUTYPE_EMPLOYEE,
            period=month,
            base=base,
            employer_part=employer,
            individual_part=individual,
            paid_date=paid_date,
            synthetic=bool(p.synthetic),
        )
        _new_contribution(s, row)
        s.expunge(row)
        return row


def pay_resident_year(engine: Engine, psn_no: str, year: int, paid_date: dt.date | None) -> Contribution:
    """Record a resident's annual contribution (居民缴费) and the government subsidy for that year."""
    with db.session_scope(engine, immediate=True) as s:
        p = _person(s, psn_no)
        r = rules_on(load_rules(_region(p)), dt.date(year, 1, 1)).resident
        row = Contribution(
            psn_no=psn_no,
            insutype=INSUTYPE_RESIDENT,
            period=f"{year:04d}",
            individual_part=r.individual_contribution,
            subsidy=r.government_subsidy,
            paid_date=paid_date,
            synthetic=bool(p.synthetic),
        )
        _new_contribution(s, row)
        s.expunge(row)
        return row


def backpay(engine: Engine, psn_no: str, insutype: str, period: str, paid_date: dt.date) -> Contribution:
    """Pay a contribution in arrears (补缴), with the late fee the rules set; refused if already paid."""
    _scheme(insutype)
    with db.session_scope(engine, immediate=True) as s:
        p = _person(s, psn_no)
        row = s.scalars(
            select(Contribution).where(
                Contribution.psn_no == psn_no, Contribution.insutype == insutype, Contribution.period == period
            )
        ).first()
        if row is None:
            raise _err(
                f"no contribution due for {psn_no} {insutype} {period}",
                f"无应缴记录: {psn_no} {insutype} {period}",
                "period",
            )
        if row.paid_date is not None:
            raise _err(
                f"{psn_no} {insutype} {period} was already paid on {row.paid_date}",
                f"{psn_no} {insutype} {period} 已于 {row.paid_date} 缴费",
                "period",
            )
        if insutype == INSUTYPE_EMPLOYEE:
            first = _month(period)
            due = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)  # due by the next month's start
            if paid_date < first:
                raise _err(
                    f"paid date {paid_date} is before the period {period}", f"缴费日期早于所属期 {period}", "paid_date"
                )
            r = rules_on(load_rules(_region(p)), first).employee
            row.late_fee = late_fee(
                row.employer_part + row.individual_part, (paid_date - due).days, r.late_fee_daily_rate
            )
        row.paid_date = paid_date
        row.back_payment = True
        s.flush()
        s.expunge(row)
        return row


def arrears(session: Session, psn_no: str | None = None) -> list[Contribution]:
    """Contributions not paid (欠费), oldest first."""
    q = select(Contribution).where(Contribution.paid_date.is_(None))
    if psn_no:
        q = q.where(Contribution.psn_no == psn_no)
    return list(session.scalars(q.order_by(Contribution.psn_no, Contribution.period)))


def set_deemed_years(engine: Engine, psn_no: str, months: int, basis: str) -> None:
    """Record deemed contribution years (视同缴费年限) in months; replaces an earlier recognition."""
    if months < 0 or months > 12 * 60:
        raise _err(f"deemed months {months} out of range 0..720", f"视同缴费月数超出范围: {months}", "months")
    with db.session_scope(engine, immediate=True) as s:
        _person(s, psn_no)
        row = s.get(DeemedYears, psn_no)
        if row is None:
            s.add(DeemedYears(psn_no=psn_no, months=months, basis=basis))
        else:
            row.months, row.basis = months, basis


def coverage_on(session: Session, psn_no: str, insutype: str, day: dt.date, *, region: str = "") -> Coverage | None:
    """Covered on ``day``, or the reason not; ``None`` when the check does not apply (no records, not required)."""
    periods = list(
        session.scalars(
            select(InsuredPeriod)
            .where(InsuredPeriod.psn_no == psn_no, InsuredPeriod.insutype == insutype)
            .order_by(InsuredPeriod.start_date)
        )
    )
    rules = rules_on(load_rules(region), day)
    if not periods:
        any_rec = session.scalar(select(func.count()).select_from(InsuredPeriod).where(InsuredPeriod.psn_no == psn_no))
        if not any_rec and not rules.enrolment.required:
            return None
    views = [PeriodView(p.start_date, p.end_date, p.status) for p in periods]
    paid = list(
        session.scalars(select(Contribution).where(Contribution.psn_no == psn_no, Contribution.insutype == insutype))
    )
    waiting_until = None
    if insutype == INSUTYPE_RESIDENT:
        r = rules.resident
        if periods:
            waiting_until = periods[0].start_date + dt.timedelta(days=r.waiting_days)
        year = next((c for c in paid if c.period == f"{day.year:04d}"), None)
        unpaid = 0 if (year is not None and year.paid_date is not None and year.paid_date <= day) else 1
        if year is not None and year.back_payment and year.paid_date is not None:
            after = year.paid_date + dt.timedelta(days=r.backpay_waiting_days)
            waiting_until = max(waiting_until or after, after)
        limit = 1
    else:
        er = rules.employee
        if periods and er.waiting_days:
            waiting_until = periods[0].start_date + dt.timedelta(days=er.waiting_days)
        this_month = f"{day:%Y-%m}"
        unpaid = sum(1 for c in paid if c.period < this_month and (c.paid_date is None or c.paid_date > day))
        limit = er.arrears_months_suspend
    return decide_coverage(day, views, waiting_until=waiting_until, unpaid_months=unpaid, arrears_limit=limit)


def require_coverage(session: Session, person: Person, day: dt.date) -> None:
    """Refuse a claim (:class:`ClaimRejected`) when the person is not covered on ``day``; settlement calls this."""
    if not person.insutype:
        return
    cov = coverage_on(session, person.psn_no, person.insutype, day, region=person.insuplc_admdvs or "")
    if cov is not None and not cov.covered:
        raise ClaimRejected(
            f"{person.psn_no} is not covered: {cov.message_en} ({cov.reason})",
            f"{person.psn_no} 无待遇资格: {cov.message_zh}",
            field="psn_no",
        )


# 人员参保状态 (psn_insu_stas) codes of the national dictionary, as far as we know them (uncertain: not in the spec):
# 1 正常参保, 2 暂停参保, 4 终止参保
INSU_STATE_CODES = {"active": "1", "suspended": "2", "terminated": "4"}


def insured_state(session: Session, psn_no: str, insutype: str, day: dt.date) -> dict | None:
    """1101's insured-state fields (psn_insu_stas, psn_insu_date, paus_insu_date) from the periods; None without any."""
    periods = list(
        session.scalars(
            select(InsuredPeriod)
            .where(InsuredPeriod.psn_no == psn_no, InsuredPeriod.insutype == insutype)
            .order_by(InsuredPeriod.start_date)
        )
    )
    started = [p for p in periods if p.start_date <= day]
    if not started:
        return None
    last = started[-1]
    end = last.end_date
    open_now = end is None or day <= end
    return {
        "psn_insu_stas": INSU_STATE_CODES["active" if open_now else last.status],
        "psn_insu_date": periods[0].start_date.isoformat(),
        "paus_insu_date": None if end is None or open_now else (end + dt.timedelta(days=1)).isoformat(),
    }
