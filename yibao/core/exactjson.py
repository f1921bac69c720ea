"""JSON with exact money: every ``Decimal`` is written as a plain JSON number (``12.30``), never via float.

Shared by the national interface (:mod:`yibao.api.envelope`) and the exports that carry amounts
(for example the OCDS release of a procurement round).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

_MARK = "\u0000num:"
_MARK_RE = re.compile(r'"\\u0000num:(-?[0-9]+(?:\.[0-9]+)?)"')


def prepare(o: Any, fmt_datetime: Callable[[dt.datetime], str] = dt.datetime.isoformat) -> Any:
    """``o`` with each Decimal replaced by a marked string (floats refused, NUL characters replaced)."""
    t = type(o)  # fast path for the common leaves (exact types; subclasses take the general path below)
    if t is str:
        return o.replace("\u0000", "\ufffd") if "\u0000" in o else o
    if t is int or t is bool or o is None:
        return o
    if isinstance(o, Decimal):
        if not o.is_finite():
            raise ValueError(f"not a finite number: {o}")
        return _MARK + format(o, "f")
    if isinstance(o, dict):
        return {str(k): prepare(v, fmt_datetime) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [prepare(v, fmt_datetime) for v in o]
    if isinstance(o, float):
        raise TypeError("floats are not written; use Decimal")
    if isinstance(o, dt.datetime):
        return fmt_datetime(o)
    if isinstance(o, dt.date):
        return o.isoformat()
    if isinstance(o, str) and "\u0000" in o:
        return o.replace("\u0000", "\ufffd")  # NUL never reaches the output (and cannot fake the number marker)
    return o


def dumps_exact(
    obj: Any, *, indent: int | None = None, fmt_datetime: Callable[[dt.datetime], str] = dt.datetime.isoformat
) -> str:
    """JSON text with every ``Decimal`` as an exact JSON number (UTF-8, Chinese unescaped)."""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(prepare(obj, fmt_datetime), ensure_ascii=False, separators=separators, indent=indent)
    return _MARK_RE.sub(r"\1", text)
