"""Display labels (显示名称): Chinese first, from ``yibao/data/labels.yaml``; and how numbers look on a page.

The pages and the report never show a raw field name (``fixmedins_code``), a
raw code (``inpatient``, ``manual_block``), scientific notation or ``NaN``:
fields and coded values go through :func:`field` / :func:`value`, rule text
through :func:`humanize`, money through :func:`money` (¥, thousands
separators, from integer fen) and other numbers through :func:`number`
(a missing value shows "—").  The file is validated on load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from yibao.core.money import fmt_yuan
from yibao.core.yamldata import read_yaml

MISSING = "—"
_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z][A-Za-z0-9_]*(?![A-Za-z0-9_])")


class LabelsError(ValueError):
    """labels.yaml is malformed."""


Pair = tuple[str, str]


@dataclass(frozen=True)
class Labels:
    fields: dict[str, Pair]
    values: dict[str, dict[str, Pair]]
    terms: dict[str, Pair]

    def raw_keys(self) -> set[str]:
        """Every field name and coded value with a letter in it: none may appear on a Chinese page."""
        keys = set(self.fields) | set(self.terms)
        for group in self.values.values():
            keys |= {k for k in group if re.search(r"[A-Za-z]", k)}
        return keys


def _pair(where: str, v: Any) -> Pair:
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) and x.strip() for x in v)):
        raise LabelsError(f"labels.yaml {where}: expected [中文, English], got {v!r} / 标签格式错误")
    if not _CJK.search(v[0]):
        raise LabelsError(f"labels.yaml {where}: the first label must be Chinese, got {v[0]!r} / 第一个标签应为中文")
    return v[0], v[1]


def parse(doc: Any) -> Labels:
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise LabelsError("labels.yaml: expected a mapping with version: 1 / 标签文件须为 version: 1")
    unknown = set(doc) - {"version", "fields", "values", "terms"}
    if unknown:
        raise LabelsError(f"labels.yaml: unknown sections {sorted(unknown)} / 未知的节")
    fields = {str(k): _pair(f"fields.{k}", v) for k, v in (doc.get("fields") or {}).items()}
    values = {
        str(g): {str(k): _pair(f"values.{g}.{k}", v) for k, v in (m or {}).items()}
        for g, m in (doc.get("values") or {}).items()
    }
    terms = {str(k): _pair(f"terms.{k}", v) for k, v in (doc.get("terms") or {}).items()}
    return Labels(fields, values, terms)


@lru_cache(maxsize=1)
def load() -> Labels:
    return parse(
        read_yaml(Path(str(resources.files("yibao") / "data" / "labels.yaml")), what=("labels file", "标签文件"))
    )


def _missing(x: Any) -> bool:
    """None, "", NaN (x != x) or pandas' NA (whose truth value raises)."""
    try:
        return bool(x is None or x != x or (isinstance(x, str) and not x.strip()))
    except TypeError:
        return True


def _i(lang: str) -> int:
    return 1 if lang == "en" else 0


def field(name: str, lang: str = "zh") -> str:
    """A column's label; a name not in the file is returned as given (the label test finds it)."""
    pair = load().fields.get(name)
    return pair[_i(lang)] if pair else name


def value(group: str, code: Any, lang: str = "zh") -> str:
    """A coded value's label (``value("benefit_category", "inpatient")`` → 住院); missing → "—"."""
    if _missing(code):
        return MISSING
    key = (
        str(int(code))
        if isinstance(code, (int, float)) and not isinstance(code, bool) and float(code).is_integer()
        else str(code)
    )
    pair = load().values.get(group, {}).get(key)
    return pair[_i(lang)] if pair else key


def values(group: str, text: Any, lang: str = "zh") -> str:
    """A comma list of codes (``block,unbind,report``) as labels joined by 、; empty → "—"."""
    codes = [c.strip() for c in str(text or "").split(",") if c.strip()]
    return ("、" if lang != "en" else ", ").join(value(group, c, lang) for c in codes) if codes else MISSING


def humanize(text: Any, lang: str = "zh") -> str:
    """Free text (a rule trace) with every known raw word replaced by its label."""
    if text is None:
        return ""
    lb = load()
    i = _i(lang)
    table: dict[str, Pair] = {}
    for g in ("relation", "benefit_category", "assistance"):
        table.update(lb.values.get(g, {}))
    table.update(lb.fields)
    table.update(lb.terms)
    return _WORD.sub(lambda m: table[m.group(0)][i] if m.group(0) in table else m.group(0), str(text))


def rules(text: Any, lang: str = "zh") -> str:
    """The work queue's rules column: rule ids stay (SV-PRICE-01), ``peer:<measure>`` becomes 同级比较: <label>."""
    out = []
    for part in str(text or "").split(";"):
        part = part.strip()
        if part.startswith("peer:"):
            names = [value("peer_measure", m, lang) for m in part[5:].split(",") if m]
            out.append(("同级比较: " if lang != "en" else "peer outlier: ") + "、".join(names))
        elif part:
            out.append(part)
    return "; ".join(out) if out else MISSING


def money(fen: Any, *, sign: bool = True) -> str:
    """Integer fen as ``¥1,234.56`` (:func:`yibao.core.money.fmt_yuan`, exact); missing or not a number → "—"."""
    if _missing(fen):
        return MISSING
    try:
        return fmt_yuan(int(fen), symbol=sign)
    except (TypeError, ValueError, ArithmeticError):
        return MISSING


def number(x: Any, digits: int = 0, *, suffix: str = "") -> str:
    """A plain number with thousands separators, never scientific notation; missing / NaN → "—"."""
    if _missing(x):
        return MISSING
    try:
        d = Decimal(str(x))
    except ArithmeticError:
        return MISSING
    if d.is_nan() or d.is_infinite():
        return MISSING
    q = Decimal(1).scaleb(-digits) if digits else Decimal(1)
    return f"{d.quantize(q, rounding=ROUND_HALF_UP):,.{digits}f}{suffix}"
