"""Maternity cover from enrolment (生育保险参保与缴费): the checks a claim and a prenatal visit need.

* :func:`contribution_months`: paid monthly contributions before the event month, in the schemes the policy's
  ``maternity.contribution_insutypes`` lists, each month counted once;
* :func:`maternity_cover`: whether an insured period in one of ``maternity.cover_insutypes`` covers a day;
* :func:`check_maternity_visit`: settlement calls it for a med_type that settles as ``maternity`` (生育门诊 51):
  the person must be a woman, and an employee-side woman with enrolment records must have maternity cover.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.benefits.maternity import FEMALE, MATERNITY_CATEGORY
from yibao.benefits.model import Maternity, PolicySnapshot
from yibao.codes.registry import Person
from yibao.core.contract import is_employee_side
from yibao.core.errors import ClaimRejected
from yibao.enrolment.models import Contribution
from yibao.enrolment.params import Coverage
from yibao.enrolment.service import coverage_on

__all__ = ["contribution_months", "maternity_cover", "check_maternity_visit"]

NO_RECORD = Coverage(False, "not_enrolled", "no maternity insurance record", "无生育保险参保记录")


def contribution_months(s: Session, psn_no: str, rules: Maternity, event_date: dt.date) -> int:
    """Months of paid contributions (缴费月数) before the event month, paid on or before the event date."""
    event_month = f"{event_date:%Y-%m}"
    periods = s.scalars(
        select(Contribution.period).where(
            Contribution.psn_no == psn_no,
            Contribution.insutype.in_(rules.contribution_insutypes),
            Contribution.paid_date.is_not(None),
            Contribution.paid_date <= event_date,
        )
    )
    return len({p for p in periods if len(p) == 7 and p < event_month})  # YYYY-MM: monthly (employee) periods


def maternity_cover(s: Session, person: Person, rules: Maternity, day: dt.date) -> Coverage | None:
    """Covered on ``day`` in one of the maternity schemes, else the first reason; ``None`` without any record."""
    first: Coverage | None = None
    for insutype in rules.cover_insutypes:
        cov = coverage_on(s, person.psn_no, insutype, day, region=person.insuplc_admdvs or "")
        if cov is not None and cov.covered:
            return cov
        first = first or cov
    return first


def check_maternity_visit(s: Session, person: Person, med_type: str, snap: PolicySnapshot, day: dt.date) -> None:
    """Refuse (:class:`ClaimRejected`) maternity care (生育医疗) that is not an insured woman's."""
    if snap.med_types.get(med_type) != MATERNITY_CATEGORY:
        return
    if person.gend != FEMALE:
        raise ClaimRejected(
            f"med_type {med_type} is maternity care: {person.psn_no} is not recorded as a woman",
            f"医疗类别 {med_type} 为生育医疗, {person.psn_no} 非女性参保人",
            field="med_type",
        )
    if snap.maternity is None or not is_employee_side(person.insutype):
        return  # residents' maternity care is the resident fund's, under its ordinary enrolment check
    cov = maternity_cover(s, person, snap.maternity, day)
    if cov is not None and not cov.covered:
        raise ClaimRejected(
            f"{person.psn_no} has no maternity insurance on {day}: {cov.message_en}",
            f"{person.psn_no} {day} 无生育保险待遇资格: {cov.message_zh}",
            field="psn_no",
        )
