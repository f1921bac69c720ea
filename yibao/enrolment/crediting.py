"""Monthly personal-account crediting that follows enrolment (个人账户划入, 按参保状态).

Same ledger marker as :meth:`yibao.settlement.service.SettlementService.credit_accounts` (``credit:YYYY-MM``), so
the two never credit a person twice in a month. A person with insured periods is credited only when covered on the
month's first day, from that month's recorded contribution base if there is one. People without records are
credited as before, from ``person.contribution_base``. One transaction for the whole run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.engine import Engine

from yibao.benefits.policy import PolicyBook
from yibao.codes.registry import Person
from yibao.core import db
from yibao.core.contract import INSUTYPE_EMPLOYEE
from yibao.enrolment.models import Contribution
from yibao.enrolment.service import coverage_on
from yibao.settlement import ledger
from yibao.settlement.records import AccountLedger
from yibao.settlement.rules import monthly_account_credit

__all__ = ["CreditRun", "credit_enrolled"]


@dataclass(frozen=True)
class CreditRun:
    month: dt.date
    accounts: int  # credited now
    amount: int  # fen credited now
    already: int  # credited for this month before
    not_covered: int  # enrolled but not covered on the month's first day


def credit_enrolled(
    engine: Engine, month: dt.date, book: PolicyBook | None = None, progress: Callable[[int, int], None] | None = None
) -> CreditRun:
    """Credit ``month`` once; ``progress(done, total)`` is called per person."""
    book = book or PolicyBook.default()
    first = month.replace(day=1)
    marker = f"credit:{first:%Y-%m}"
    when = dt.datetime(first.year, first.month, 1, tzinfo=db.SHANGHAI)
    posted = amount = already = skipped = 0
    with db.session_scope(engine, immediate=True) as s:
        rows = s.execute(
            select(Person.psn_no, Person.psn_type, Person.contribution_base, Person.insuplc_admdvs)
            .where(Person.insutype == INSUTYPE_EMPLOYEE)
            .order_by(Person.psn_no)
        ).all()
        bases = dict(
            s.execute(
                select(Contribution.psn_no, Contribution.base).where(
                    Contribution.insutype == INSUTYPE_EMPLOYEE, Contribution.period == f"{first:%Y-%m}"
                )
            ).all()
        )
        for i, r in enumerate(rows, 1):
            if progress:
                progress(i, len(rows))
            cov = coverage_on(s, r.psn_no, INSUTYPE_EMPLOYEE, first, region=r.insuplc_admdvs or "")
            if cov is not None and not cov.covered:
                skipped += 1
                continue
            base = int(bases.get(r.psn_no, r.contribution_base or 0))
            snap = book.policy(r.insuplc_admdvs or "").snapshot(first)
            amt = monthly_account_credit(snap, INSUTYPE_EMPLOYEE, r.psn_type or "", base)
            if amt <= 0:
                continue
            ledger.lock_account(s, r.psn_no)
            done = s.scalar(
                select(AccountLedger.id)
                .where(
                    and_(
                        AccountLedger.psn_no == r.psn_no,
                        AccountLedger.kind == "credit",
                        AccountLedger.setl_id == marker,
                    )
                )
                .limit(1)
            )
            if done is not None:
                already += 1
                continue
            ledger.post_account(s, r.psn_no, amt, "credit", marker, when)
            posted += 1
            amount += amt
    return CreditRun(first, posted, amount, already, skipped)
