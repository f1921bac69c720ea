"""Long-term care insurance (长期护理保险, 长护险): grades and monthly benefit as policy data."""

from __future__ import annotations

from yibao.benefits.model import PolicySnapshot
from yibao.core.errors import ClaimRejected


def ltc_monthly_benefit(
    snap: PolicySnapshot, grade: str, setting: str, days_in_care: int | None = None, days_in_month: int = 30
) -> int:
    """Monthly LTC benefit in fen for an assessed grade (失能等级) and care setting.

    A part month is paid pro rata by days, rounded half up to the fen.
    """
    ltc = snap.long_term_care
    g = ltc.grades.get(grade)
    if g is None:
        raise ClaimRejected(
            f"unknown LTC grade {grade!r}; known: {sorted(ltc.grades)}", f"失能等级 {grade!r} 无效", field="grade"
        )
    if setting not in ("institutional", "home"):
        raise ClaimRejected(f"unknown care setting {setting!r}", f"护理方式 {setting!r} 无效", field="setting")
    monthly = getattr(g, setting)
    if monthly is None:
        raise ClaimRejected(
            f"grade {grade} has no {setting} benefit in this policy", "该等级无此护理方式待遇", field="setting"
        )
    if days_in_care is None:
        return monthly
    if not (0 <= days_in_care <= days_in_month) or days_in_month <= 0:
        raise ClaimRejected(
            "days in care must be between 0 and the days of the month", "护理天数无效", field="days_in_care"
        )
    return pro_rata_fen(monthly, days_in_care, days_in_month)


def pro_rata_fen(monthly_fen: int, days: int, days_in_month: int) -> int:
    """A monthly amount paid for ``days`` of the month, rounded half up to the fen (按日折算)."""
    return (monthly_fen * days * 2 + days_in_month) // (2 * days_in_month)


def pro_rata_fen_np(monthly_fen, days, days_in_month):
    """Vectorised :func:`pro_rata_fen` on int64 arrays (same rounding)."""
    return (monthly_fen * days * 2 + days_in_month) // (2 * days_in_month)


def ltc_funding_per_person(snap: PolicySnapshot) -> dict[str, int]:
    """Per-person yearly LTC funding by source (individual, pool, finance), fen."""
    return dict(snap.long_term_care.funding_per_person_year)
