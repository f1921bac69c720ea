"""The demo's enrolment step (参保缴费演示) on the SYNTHETIC region: enrol, pay, stop, and a refusal with its reason.

It takes the last people by psn_no, away from the demo's public person and the console's examples.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from yibao.codes.registry import Person
from yibao.core import db
from yibao.core.contract import INSUTYPE_EMPLOYEE, INSUTYPE_RESIDENT
from yibao.core.errors import ClaimRejected
from yibao.core.money import fmt_yuan
from yibao.enrolment import service as en

__all__ = ["demo_enrolment"]


def demo_enrolment(engine: Engine, year: int = 2025, echo: Callable[[str], None] | None = None) -> list[str]:
    """Enrol two synthetic employees and a resident, record contributions, stop one and show the refusal."""
    lines: list[str] = []
    say = echo or lines.append
    with db.session_scope(engine) as s:
        emp = list(
            s.scalars(
                select(Person)
                .where(Person.insutype == INSUTYPE_EMPLOYEE, Person.synthetic.is_(True))
                .order_by(Person.psn_no.desc())
                .limit(2)
            )
        )
        res = s.scalars(
            select(Person)
            .where(Person.insutype == INSUTYPE_RESIDENT, Person.synthetic.is_(True))
            .order_by(Person.psn_no.desc())
            .limit(1)
        ).first()
        if len(emp) < 2 or res is None:
            return lines
        a, b, r = emp[0].psn_no, emp[1].psn_no, res.psn_no
        bases = {a: int(emp[0].contribution_base or 0), b: int(emp[1].contribution_base or 0)}
    for p in (a, b):
        en.enrol(engine, p, INSUTYPE_EMPLOYEE, dt.date(year - 1, 1, 1), reason="synthetic demo")
        c = en.pay_employee_month(engine, p, f"{year}-01", bases[p], dt.date(year, 1, 15))
        say(
            f"enrolment (SYNTHETIC): {p} enrolled {year - 1}-01-01; {year}-01 base {fmt_yuan(c.base)} → employer "
            f"{fmt_yuan(c.employer_part)} + individual {fmt_yuan(c.individual_part)} yuan"
        )
    en.enrol(engine, r, INSUTYPE_RESIDENT, dt.date(year - 1, 1, 1), reason="synthetic demo")
    c = en.pay_resident_year(engine, r, year, dt.date(year - 1, 12, 1))
    say(
        f"enrolment (SYNTHETIC): resident {r} paid {year}: {fmt_yuan(c.individual_part)} yuan + subsidy "
        f"{fmt_yuan(c.subsidy)}"
    )
    en.stop(engine, b, INSUTYPE_EMPLOYEE, dt.date(year, 2, 28), reason="left employer (synthetic)")
    with db.session_scope(engine) as s:
        person = db.must_get(s, Person, b)
        try:
            en.require_coverage(s, person, dt.date(year, 3, 10))
            say(f"enrolment: {b} unexpectedly covered")
        except ClaimRejected as exc:
            say(f"enrolment: a claim of {b} on {year}-03-10 is refused: {exc.message_en} / {exc.message_zh}")
    return lines
