"""Money is integer fen (分) everywhere inside yibao.

Yuan amounts appear only at the boundaries (policy files, the national
interface), as ``Decimal`` with two places.  Ratios are held as integer
basis points (1 bp = 0.01 %), so every share can be computed with integer
arithmetic that the scalar and the vectorised batch path reproduce exactly.

Rounding rule (explicit, used by both paths): a share ``amount × rate`` is
rounded half up to the fen: ``(amount * bp + 5000) // 10000`` for amount ≥ 0.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import numpy as np

BP_SCALE = 10_000
"""Basis points in 1.0."""

NO_CAP = 2**53
"""Sentinel for "no cap" (a cap no person-year can reach), still an int64."""


class MoneyError(ValueError):
    """An amount that is not a valid money value."""


def yuan_to_fen(value: object) -> int:
    """Convert a yuan amount (str, int or Decimal; never float) to integer fen.

    More than two decimal places is an error rather than a silent rounding.
    """
    if isinstance(value, float):
        raise MoneyError(f"money must not be a float: {value!r}; use a string or Decimal")
    if isinstance(value, bool):
        raise MoneyError(f"not a money amount: {value!r}")
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"not a money amount: {value!r}") from exc
    if not d.is_finite():
        raise MoneyError(f"not a finite money amount: {value!r}")
    fen = d * 100
    if fen != fen.to_integral_value():
        raise MoneyError(f"more than two decimal places: {value!r}")
    return int(fen)


def parameter_fen(value: object) -> int:
    """A yuan amount in a parameter file (``1000``, ``"1000.50"``, Decimal) → fen, refusing negatives.

    For pydantic ``BeforeValidator``s: raises ``ValueError`` with the reason.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    try:
        fen = yuan_to_fen(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from exc
    if fen < 0:
        raise ValueError(f"amount must not be negative: {value}")
    return fen


def fen_to_yuan(fen: int) -> Decimal:
    """Integer fen to a two-place yuan ``Decimal`` (exact)."""
    return (Decimal(int(fen)) / 100).quantize(Decimal("0.01"))


def ratio_to_bp(value: object) -> int:
    """A ratio such as ``0.85`` or ``"0.85"`` to basis points (8500), exactly."""
    if isinstance(value, bool):
        raise MoneyError(f"not a ratio: {value!r}")
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"not a ratio: {value!r}") from exc
    bp = d * BP_SCALE
    if bp != bp.to_integral_value():
        raise MoneyError(f"ratio finer than 0.01 %: {value!r}")
    if not (0 <= bp <= BP_SCALE):
        raise MoneyError(f"ratio outside 0..1: {value!r}")
    return int(bp)


def apply_rate(amount_fen: int, bp: int) -> int:
    """``amount × rate`` rounded half up to the fen (scalar)."""
    if amount_fen < 0:
        raise MoneyError("apply_rate expects a non-negative amount")
    return (amount_fen * bp + 5000) // BP_SCALE


def apply_rate_np(amount_fen: np.ndarray, bp: np.ndarray | int) -> np.ndarray:
    """Vectorised :func:`apply_rate` on int64 arrays (same rounding)."""
    return (np.asarray(amount_fen, dtype=np.int64) * bp + 5000) // BP_SCALE


def fmt_yuan(fen: int, *, symbol: bool = False) -> str:
    """``123456`` → ``'1,234.56'`` for reports; with ``symbol``, ``'¥1,234.56'`` (``-100`` → ``'-¥1.00'``).

    The one yuan formatter (元): exact from integer fen, never through a float.
    """
    y = fen_to_yuan(fen)
    if not symbol:
        return f"{y:,.2f}"
    return ("-" if y < 0 else "") + f"¥{abs(y):,.2f}"
