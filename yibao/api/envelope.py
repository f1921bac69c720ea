"""The national envelope (报文): exact JSON, error text, masking, digests.

Money crosses the boundary as yuan with two decimals.  Requests are parsed
with ``parse_float=Decimal`` (never a float); replies are written with
:func:`dumps_exact`, which prints every ``Decimal`` as a plain JSON number
(``12.30``), exactly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from decimal import Decimal
from typing import Any

from yibao.api.params import InterfaceConfig
from yibao.core.db import SHANGHAI
from yibao.core.exactjson import dumps_exact as _dumps_exact

TIME_FMT = "%Y-%m-%d %H:%M:%S"


class MalformedMessage(ValueError):
    """The body is not a JSON object (reported with infcode -1)."""


class BadValue(ValueError):
    """A value no field may hold (a NUL or other control character, a lone surrogate, nesting too deep)."""

    def __init__(self, field: str, zh: str, en: str):
        super().__init__(en)
        self.field, self.zh, self.en = field, zh, en


# C0 controls other than TAB, LF, CR, and DEL: never in a national field
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def inspect_values(obj: Any, max_depth: int, root: str = "") -> None:
    """Refuse, naming the field, any string with a control character
    or a lone surrogate, and nesting deeper than ``max_depth``.

    Iterative (a deeply nested message cannot exhaust the stack); keys are checked like values.
    """
    stack: list[tuple[Any, str, int]] = [(obj, root, 1)]
    while stack:
        v, path, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > max_depth:
                raise BadValue(
                    path or "body", f"JSON嵌套超过 {max_depth} 层", f"JSON nested deeper than {max_depth} levels"
                )
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, x in items:
                if isinstance(k, str):
                    _check_text(k, f"{path}.{k}" if path else k, key=True)
                stack.append((x, f"{path}.{k}" if path else str(k), depth + 1))
        elif isinstance(v, str):
            _check_text(v, path or "body")


def _check_text(v: str, path: str, key: bool = False) -> None:
    what_en, what_zh = ("name", "字段名") if key else ("value", "字段值")
    if _SURROGATE.search(v):
        raise BadValue(
            path,
            f"{what_zh}含有不成对的代理字符 (非法Unicode)",
            f"the {what_en} contains a lone surrogate (not valid Unicode)",
        )
    if _CONTROL.search(v):
        raise BadValue(
            path, f"{what_zh}含有控制字符 (如 \\u0000)", f"the {what_en} contains a control character such as \\u0000"
        )


def loads_exact(raw: bytes | str) -> Any:
    """Parse JSON with decimals as ``Decimal``; refuse NaN/Infinity and NUL characters."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(f"the body is not UTF-8 text: {exc}") from exc
    if "\u0000" in raw:
        raise MalformedMessage("the body contains a NUL character")

    def bad_constant(name: str) -> Any:
        raise MalformedMessage(f"{name} is not a valid JSON number")

    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=bad_constant)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise MalformedMessage("JSON nested too deeply") from exc


def dumps_exact(obj: Any) -> str:
    """JSON text with every ``Decimal`` as an exact JSON number
    (UTF-8, Chinese unescaped), times as the interface writes them.
    """
    return _dumps_exact(obj, fmt_datetime=fmt_time)


def fmt_time(t: dt.datetime) -> str:
    return t.astimezone(SHANGHAI).strftime(TIME_FMT)


def fmt_msg_time(t: dt.datetime) -> str:
    """Reply-envelope times (``refmsg_time``, ``respond_time``): ``yyyyMMddHHmmssSSS``, Beijing time."""
    b = t.astimezone(SHANGHAI)
    return f"{b:%Y%m%d%H%M%S}{b.microsecond // 1000:03d}"


def digest(infno: str, fixmedins_code: str, payload: Any) -> str:
    """SHA-256 of what identifies a message's content (transaction, institution, input)."""
    text = dumps_exact({"infno": infno, "fixmedins_code": fixmedins_code, "input": payload})
    return hashlib.sha256(text.encode()).hexdigest()


def err_text(message_zh: str, message_en: str, field: str | None) -> str:
    """The ``err_msg`` of a refusal: Chinese first, then English, both naming the field."""
    if field:
        return f"{message_zh} [字段: {field}] | {message_en} [field: {field}]"
    return f"{message_zh} | {message_en}"


_FIELD_RE = re.compile(r"\[field: ([^\]]+)\]")


def field_of(err_msg: str) -> str | None:
    """The field named in an ``err_msg`` written by :func:`err_text` (for clients and tests)."""
    m = _FIELD_RE.search(err_msg or "")
    return m.group(1) if m else None


def _mask_value(v: Any, keep_start: int, keep_end: int) -> Any:
    if not isinstance(v, str) or not v:
        return v
    n = len(v)
    if keep_start + keep_end >= n:
        return v[:1] + "*" * (n - 1) if n > 1 else "*"
    return v[:keep_start] + "*" * (n - keep_start - keep_end) + (v[n - keep_end :] if keep_end else "")


def mask(obj: Any, cfg: InterfaceConfig) -> Any:
    """A copy with personal data masked (个人信息脱敏) per the configured fields."""
    rules = cfg.masking
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            r = rules.get(k)
            out[k] = _mask_value(v, r.keep_start, r.keep_end) if r is not None and isinstance(v, str) else mask(v, cfg)
        return out
    if isinstance(obj, list):
        return [mask(v, cfg) for v in obj]
    return obj
