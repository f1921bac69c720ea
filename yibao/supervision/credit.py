"""Credit rating (信用评价): points for bad practice, grades, blacklist.

Points (``credit.yaml``) are awarded when a case is decided, per subject
(institution, physician, enterprise), by the discretion band found.  The
points inside the window give a grade; from ``blacklist_from`` on the subject
is blacklisted (严重失信): not eligible to bid or be listed in procurement.

For procurement (``yibao.procurement``)::

    from yibao.supervision.credit import credit_grade, is_eligible
    g = credit_grade(engine, "enterprise", firm_id, on=date)     # CreditGrade
    if not is_eligible(engine, "enterprise", firm_id, on=date): ...
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from yibao.core.db import session_scope
from yibao.core.yamldata import data_error, load_model
from yibao.supervision.knowledge import DATA_DIR, SupervisionDataError
from yibao.supervision.models import CreditPoint

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class CreditGrade:
    subject_kind: str
    subject_code: str
    points: int
    grade: str
    name_zh: str
    blacklisted: bool


class CreditGradeRow(BaseModel):
    """One grade of ``credit.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    grade: str
    name_zh: str
    max_points: int | None


class CreditFile(BaseModel):
    """The shape of ``credit.yaml`` (信用评价规则)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = 1
    effective_from: dt.date | None = None
    window_days: int = Field(gt=0)
    points: dict[str, dict[str, int]]
    grades: list[CreditGradeRow] = Field(min_length=1)
    blacklist_from: str


@dataclass(frozen=True)
class CreditRules:
    window_days: int
    points: dict[str, dict[str, int]]
    grades: tuple[tuple[str, str, int | None], ...]
    blacklist_from: str

    @classmethod
    def load(cls, path: Path | None = None) -> CreditRules:
        p = path or DATA_DIR / "credit.yaml"
        d = load_model(p, CreditFile, what=("credit rules", "信用评价规则"), error=SupervisionDataError)
        grades = tuple((g.grade, g.name_zh, g.max_points) for g in d.grades)
        names = [g[0] for g in grades]
        if d.blacklist_from not in names:
            raise data_error(
                p,
                "blacklist_from",
                f"{d.blacklist_from!r} is not a grade",
                "黑名单等级无效",
                error=SupervisionDataError,
            )
        maxes = [g[2] for g in grades[:-1]]
        if any(m is None for m in maxes) or maxes != sorted(maxes) or grades[-1][2] is not None:  # type: ignore[type-var]
            raise data_error(
                p,
                "grades",
                "grades must rise, the last without max_points",
                "信用等级须递增",
                error=SupervisionDataError,
            )
        return cls(d.window_days, d.points, grades, d.blacklist_from)

    def grade_for(self, points: int) -> tuple[str, str, bool]:
        """(grade, Chinese name, blacklisted) for a number of points — pure."""
        names = [g[0] for g in self.grades]
        for grade, zh, mx in self.grades:
            if mx is None or points <= mx:
                return grade, zh, names.index(grade) >= names.index(self.blacklist_from)
        raise AssertionError("unreachable")


@lru_cache(maxsize=1)
def default_credit_rules() -> CreditRules:
    return CreditRules.load()


def add_points(
    session: Session,
    subject_kind: str,
    subject_code: str,
    band: str,
    *,
    case_id: int | None,
    reason: str,
    at: dt.datetime | None = None,
    rules: CreditRules | None = None,
) -> int:
    """Record the points of one decided violation inside the caller's transaction; returns the points."""
    rules = rules or default_credit_rules()
    kind = "physician" if subject_kind == "physician" else subject_kind
    if kind not in rules.points:
        return 0  # insured persons are not rated here
    pts = int(rules.points[kind][band])
    session.add(
        CreditPoint(
            subject_kind=kind,
            subject_code=subject_code,
            points=pts,
            case_id=case_id,
            reason=reason,
            at=at or dt.datetime.now(SHANGHAI).replace(microsecond=0),
        )
    )
    return pts


def withdraw_points(session: Session, case_id: int, *, reason: str) -> int:
    """Withdraw the points a case awarded (its decision revoked on appeal, 撤销) inside the caller's transaction.

    The award stays on record; a counter-entry of the same size (negative points) and the same date cancels it
    in every window the award counts in.  Returns the points withdrawn (0 when the case awarded none or they
    were withdrawn already).
    """
    rows = list(session.scalars(select(CreditPoint).where(CreditPoint.case_id == case_id).order_by(CreditPoint.id)))
    if sum(r.points for r in rows) <= 0:
        return 0
    total = 0
    for r in rows:
        if r.points > 0:
            session.add(
                CreditPoint(
                    subject_kind=r.subject_kind,
                    subject_code=r.subject_code,
                    points=-r.points,
                    case_id=case_id,
                    reason=reason[:200],
                    at=r.at,
                )
            )
            total += r.points
    return total


def credit_grade(
    engine: Engine, subject_kind: str, subject_code: str, *, on: dt.date | None = None, rules: CreditRules | None = None
) -> CreditGrade:
    """The subject's grade on a date (points inside the window)."""
    rules = rules or default_credit_rules()
    day = on or dt.datetime.now(SHANGHAI).date()
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), SHANGHAI)
    start = end - dt.timedelta(days=rules.window_days)
    with session_scope(engine) as s:
        pts = s.scalar(
            select(func.coalesce(func.sum(CreditPoint.points), 0)).where(
                CreditPoint.subject_kind == subject_kind,
                CreditPoint.subject_code == subject_code,
                CreditPoint.at >= start,
                CreditPoint.at < end,
            )
        )
    total = int(pts or 0)
    grade, zh, black = rules.grade_for(total)
    return CreditGrade(subject_kind, subject_code, total, grade, zh, black)


def is_eligible(engine: Engine, subject_kind: str, subject_code: str, *, on: dt.date | None = None) -> bool:
    """Procurement eligibility: false when blacklisted (严重失信)."""
    return not credit_grade(engine, subject_kind, subject_code, on=on).blacklisted
