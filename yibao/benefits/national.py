"""National floors, ceilings and targets (国家待遇底线与上限) checked against policy files.

The rules are data (``yibao/data/benefits/national-rules.yaml``), each with the
document and clause it comes from; this module holds the mechanics: a small
path language over a validated :class:`~yibao.benefits.model.PolicySnapshot`
and the checks ``min``, ``max``, ``equals``, ``present``, ``includes``,
``about`` (a target with a tolerance) and ``multiple`` (caps as a multiple of
the region's income figures).

A rule of severity ``error`` that a policy breaks fails ``yibao policy
validate``; a ``warning`` is reported.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from yibao.core.errors import PolicyError
from yibao.core.money import NO_CAP, MoneyError, fmt_yuan, ratio_to_bp, yuan_to_fen
from yibao.core.yamldata import load_model

if TYPE_CHECKING:
    from yibao.benefits.model import PolicySnapshot
    from yibao.benefits.policy import Policy

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "benefits" / "national-rules.yaml"
LEVELS = ("level_0", "level_1", "level_2", "level_3")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Document(_Strict):
    title: str
    published: dt.date
    seed: str
    note: str = ""


class Source(_Strict):
    document: str
    line: int
    clause: str


class SchemeCaps(_Strict):
    caps: tuple[str, ...]
    per: str


class Rule(_Strict):
    """One national floor, ceiling or target."""

    id: str
    label: str
    check: Literal["min", "max", "equals", "present", "exists", "includes", "about", "multiple", "not_above"]
    path: str | None = None
    than: str | None = None  # ``not_above``: the path of the value this one must not exceed
    value: Any = None
    unit: Literal["ratio", "yuan", "days", "bool", "list", "multiple"] | None = None
    tolerance: Decimal | None = None
    aggregate: Literal["each", "mean"] = "each"
    severity: Literal["error", "warning"]
    source: Source
    schemes: dict[str, SchemeCaps] = {}

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        if self.check == "multiple":
            if not self.schemes or self.value is None:
                raise ValueError("check multiple needs value and schemes")
        elif not self.path:
            raise ValueError(f"check {self.check} needs a path")
        if self.check in ("min", "max", "equals", "includes", "about") and self.value is None:
            raise ValueError(f"check {self.check} needs a value")
        if self.check in ("about", "multiple") and self.tolerance is None:
            raise ValueError(f"check {self.check} needs a tolerance")
        if self.check in ("min", "max", "about", "not_above") and self.unit not in ("ratio", "yuan", "days"):
            raise ValueError(f"check {self.check} needs unit ratio, yuan or days")
        if self.check == "not_above" and not self.than:
            raise ValueError("check not_above needs than (a path)")
        return self


class RuleSet(_Strict):
    version: int
    documents: dict[str, Document]
    rules: tuple[Rule, ...]

    @model_validator(mode="after")
    def _refs(self) -> RuleSet:
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        for r in self.rules:
            if r.source.document not in self.documents:
                raise ValueError(f"rule {r.id}: unknown document {r.source.document!r}")
        return self

    def in_force(self, rule: Rule) -> dt.date:
        return self.documents[rule.source.document].published

    def cite(self, rule: Rule) -> str:
        doc = self.documents[rule.source.document]
        return f"{doc.title}: “{rule.source.clause}” (seed {doc.seed}, line {rule.source.line})"


@functools.cache
def _load_cached(path: str) -> RuleSet:
    return load_model(path, RuleSet, what=("national rules file", "国家待遇规则文件"), error=PolicyError)


def load_rules(path: Path = RULES_FILE) -> RuleSet:
    """The national rules, validated (cached per file)."""
    return _load_cached(str(Path(path).resolve()))


# -- the path language -------------------------------------------------------------

_SELECT = re.compile(r"^(?P<key>[^\[\]]+)\[(?P<field>\w+)=(?P<value>[^\]]+)\]$")


def _split(path: str) -> list[str]:
    return [p for p in path.split(".") if p]


def _children(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield name, getattr(node, name)
    elif isinstance(node, dict):
        yield from ((str(k), v) for k, v in node.items())
    elif isinstance(node, (list, tuple)):
        yield from ((str(i), v) for i, v in enumerate(node))


def _get(node: Any, key: str) -> tuple[bool, Any]:
    if isinstance(node, BaseModel):
        if key in type(node).model_fields:
            return True, getattr(node, key)
        return False, None
    if isinstance(node, dict):
        return (key in node), node.get(key)
    if isinstance(node, (list, tuple)) and key.isdigit() and int(key) < len(node):
        return True, node[int(key)]
    return False, None


def select(root: Any, path: str) -> list[tuple[str, Any]]:
    """``(concrete path, value)`` for every node ``path`` reaches (missing keys reach nothing)."""
    found: list[tuple[str, Any]] = [("", root)]
    for part in _split(path):
        nxt: list[tuple[str, Any]] = []
        m = _SELECT.match(part)
        for where, node in found:
            if m:
                ok, seq = _get(node, m["key"])
                if not ok or not isinstance(seq, (list, tuple)):
                    continue
                for i, item in enumerate(seq):
                    ok2, v = _get(item, m["field"])
                    if ok2 and str(v) == m["value"]:
                        label = getattr(item, "name", None) or i
                        nxt.append((f"{where}.{m['key']}[{label}]".lstrip("."), item))
            elif part == "*":
                nxt.extend((f"{where}.{k}".lstrip("."), v) for k, v in _children(node))
            else:
                ok, v = _get(node, part)
                if ok:
                    nxt.append((f"{where}.{part}".lstrip("."), v))
        found = nxt
    return found


def _leaves(where: str, value: Any) -> list[tuple[str, Any]]:
    """A level table becomes its effective levels 1–3 (and level 0 if set); other values stay."""
    from yibao.benefits.model import LevelTable

    if isinstance(value, LevelTable):
        out = []
        if value.level_0 is not None:
            out.append((f"{where}.level_0", value.level_0))
        for lv in (1, 2, 3):
            try:
                out.append((f"{where}.level_{lv}", value.get(lv)))
            except KeyError:
                continue
        return out
    return [(where, value)]


# -- units -------------------------------------------------------------------------


def _internal(rule: Rule, value: Any) -> Any:
    """The rule's value in the snapshot's units (basis points, fen, days)."""
    try:
        if rule.unit == "ratio":
            return ratio_to_bp(value)
        if rule.unit == "yuan":
            return yuan_to_fen(str(value))
    except MoneyError as exc:
        raise PolicyError(f"national rule {rule.id}: {exc}", f"国家待遇规则 {rule.id}: {exc}") from None
    return value


def show(unit: str | None, value: Any) -> str:
    """A value as people read it: 50 %, ¥1,000.00, 28 days."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if unit == "ratio":
        text = f"{Decimal(value) / 100:f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text + " %"
    if unit == "yuan":
        if value >= NO_CAP:
            return "no cap"
        return fmt_yuan(int(value), symbol=True)
    if unit == "days":
        return f"{value} days"
    return str(value)


# -- checks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One rule a policy misses on one date."""

    rule_id: str
    severity: str
    file: str
    on: dt.date
    where: str
    message_en: str
    message_zh: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message_en} (on {self.on})"


def _find(rules: RuleSet, rule: Rule, file: str, on: dt.date, where: str, en: str, zh: str) -> Finding:
    cite = rules.cite(rule)
    kind = "national floor/ceiling" if rule.severity == "error" else "national target"
    return Finding(
        rule.id, rule.severity, file, on, where, f"{en} ({kind} {rule.id}, source: {cite})", f"{zh}（依据: {cite}）"
    )


def check_snapshot(snap: PolicySnapshot, on: dt.date, file: str = "", rules: RuleSet | None = None) -> list[Finding]:
    """Every national rule in force on ``on`` that ``snap`` misses."""
    rules = rules or load_rules()
    out: list[Finding] = []
    for rule in rules.rules:
        if on < rules.in_force(rule):
            continue
        out += _check_rule(rules, rule, snap, on, file)
    return out


def _check_rule(rules: RuleSet, rule: Rule, snap: PolicySnapshot, on: dt.date, file: str) -> list[Finding]:
    """The findings of one rule in force, by its kind of check."""
    if rule.check == "multiple":
        return _check_multiple(rules, rule, snap, on, file)
    assert rule.path is not None
    hits = select(snap, rule.path)
    if rule.check == "exists":
        return _check_exists(rules, rule, hits, on, file)
    if rule.check == "not_above":
        return _check_not_above(rules, rule, snap, hits, on, file)
    if rule.check == "present":
        return _check_present(rules, rule, hits, on, file)
    leaves = [leaf for where, v in hits if v is not None for leaf in _leaves(where, v)]
    target = _internal(rule, rule.value)
    if rule.check == "about":
        return _check_about(rules, rule, leaves, target, on, file)
    return _check_bound(rules, rule, leaves, target, on, file)


def _check_exists(rules: RuleSet, rule: Rule, hits: list[tuple[str, Any]], on: dt.date, file: str) -> list[Finding]:
    if hits:
        return []
    assert rule.path is not None
    en, zh = f"{rule.label} is required but the policy has none", f"{rule.label} 必须设置"
    return [_find(rules, rule, file, on, rule.path, en, zh)]


def _check_not_above(
    rules: RuleSet, rule: Rule, snap: PolicySnapshot, hits: list[tuple[str, Any]], on: dt.date, file: str
) -> list[Finding]:
    assert rule.than is not None
    out: list[Finding] = []
    limits = [v for _, v in select(snap, rule.than) if v is not None]
    for where, v in hits:
        if v is not None and limits and v > limits[0]:
            en = f"{rule.label} = {show(rule.unit, v)} is above {rule.than} = {show(rule.unit, limits[0])}"
            zh = f"{rule.label} 为 {show(rule.unit, v)}, 高于 {rule.than} ({show(rule.unit, limits[0])})"
            out.append(_find(rules, rule, file, on, where, en, zh))
    return out


def _check_present(rules: RuleSet, rule: Rule, hits: list[tuple[str, Any]], on: dt.date, file: str) -> list[Finding]:
    en, zh = f"{rule.label} is required but not set", f"{rule.label} 必须设置"
    return [_find(rules, rule, file, on, where, en, zh) for where, v in hits if v is None]


def _bound_breach(rule: Rule, v: Any, target: Any) -> tuple[str, str] | None:
    """(en, zh) if ``v`` breaks the rule's min/max/equals/includes bound, else None."""
    check = rule.check
    bad = (
        (check == "min" and v < target)
        or (check == "max" and v > target)
        or (check == "equals" and v != target)
        or (check == "includes" and not set(target) <= set(v))
    )
    if not bad:
        return None
    if check == "includes":
        missing = sorted(set(target) - set(v))
        return f"{rule.label} lacks {missing}, which the national rule requires", f"{rule.label} 缺少 {missing}"
    shown, want = show(rule.unit, v), show(rule.unit, target)
    if check == "min":
        return (
            f"{rule.label} = {shown} is below the national floor {want}",
            f"{rule.label} 为 {shown}, 低于国家底线 {want}",
        )
    if check == "max":
        return (
            f"{rule.label} = {shown} is above the national ceiling {want}",
            f"{rule.label} 为 {shown}, 超过国家上限 {want}",
        )
    return (
        f"{rule.label} = {shown}, the national rule requires {want}",
        f"{rule.label} 为 {shown}, 国家规定为 {want}",
    )


def _check_bound(
    rules: RuleSet, rule: Rule, leaves: list[tuple[str, Any]], target: Any, on: dt.date, file: str
) -> list[Finding]:
    out: list[Finding] = []
    reported: set[tuple[str, Any]] = set()
    for where, v in leaves:
        base, _, last = where.rpartition(".")
        if last.startswith("level_") and base:
            same = [x for w, x in leaves if w.rpartition(".")[0] == base]
            if all(x == v for x in same):
                where = base  # one finding for a table whose levels all share the value
        if (where, str(v)) in reported:
            continue
        reported.add((where, str(v)))
        breach = _bound_breach(rule, v, target)
        if breach is not None:
            out.append(_find(rules, rule, file, on, where, *breach))
    return out


def _check_about(
    rules: RuleSet, rule: Rule, leaves: list[tuple[str, Any]], target: int, on: dt.date, file: str
) -> list[Finding]:
    tol = _internal(rule, rule.tolerance)
    groups: dict[str, list[int]] = {}
    if rule.aggregate == "mean":
        for where, v in leaves:
            base = where.rsplit(".", 1)[0] if where.rsplit(".", 1)[-1].startswith("level_") else where
            groups.setdefault(base, []).append(v)
    else:
        groups = {where: [v] for where, v in leaves}
    out = []
    for where, vals in groups.items():
        value = Decimal(sum(vals)) / len(vals)
        if abs(value - target) > tol:
            shown = show(rule.unit, value.quantize(Decimal(1)))
            what = "mean over levels " if rule.aggregate == "mean" else ""
            en = (
                f"{rule.label}: {what}{shown} is outside the national target "
                f"{show(rule.unit, target)} ± {show(rule.unit, tol)}"
            )
            zh = f"{rule.label}: {shown}, 偏离国家目标 {show(rule.unit, target)} 左右 (容差 {show(rule.unit, tol)})"
            out.append(_find(rules, rule, file, on, where, en, zh))
    return out


def _check_multiple(rules: RuleSet, rule: Rule, snap: PolicySnapshot, on: dt.date, file: str) -> list[Finding]:
    out = []
    target = Decimal(str(rule.value))
    tol = Decimal(str(rule.tolerance))
    for scheme_key, spec in rule.schemes.items():
        scheme = snap.schemes.get(scheme_key)  # type: ignore[call-overload]
        if scheme is None:
            continue
        per_hits = [v for _, v in select(snap, spec.per) if v is not None]
        where = f"schemes.{scheme_key}"
        if not per_hits:
            continue  # the region states no income figure: nothing to compare with (reported by `not_checked`)
        caps = [v for p in spec.caps for _, v in select(scheme, p) if v is not None]
        per = per_hits[0]
        if any(c >= NO_CAP for c in caps):
            continue  # no combined cap: above any multiple
        if per <= 0:
            continue
        multiple = Decimal(sum(caps)) / Decimal(per)
        if abs(multiple - target) > tol:
            shown = f"{multiple.quantize(Decimal('0.01'))} ×"
            en = (
                f"{rule.label}: {show('yuan', sum(caps))} is {shown} {spec.per} {show('yuan', per)}, "
                f"outside the national target {target} × ± {tol}"
            )
            zh = f"{rule.label}: 为 {spec.per} 的 {shown}, 偏离国家目标 {target} 倍左右"
            out.append(_find(rules, rule, file, on, where, en, zh))
    return out


def not_checked(snap: PolicySnapshot, rules: RuleSet | None = None) -> list[str]:
    """Rules that cannot be checked for lack of data in the policy (e.g. no ``local_income``)."""
    rules = rules or load_rules()
    out = []
    for rule in rules.rules:
        if rule.check == "multiple":
            for scheme_key, spec in rule.schemes.items():
                if not [v for _, v in select(snap, spec.per) if v is not None]:
                    out.append(f"{rule.id} ({scheme_key}): policy sets no {spec.per}")
    return out


def findings(policy: Policy, rules: RuleSet | None = None) -> list[Finding]:
    """Every national rule a policy misses, on every date it is validated (errors and warnings)."""
    rules = rules or load_rules()
    found: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()
    for d in policy.check_dates():
        for f in check_snapshot(policy.snapshot(d), d, policy.file, rules):
            key = (f.rule_id, f.where, f.message_en)
            if key not in seen:
                seen.add(key)
                found.append(f)
    return found


def check_policy(policy: Policy, rules: RuleSet | None = None) -> list[Finding]:
    """Check a policy on every date it is validated; errors raise, warnings come back.

    Raises :class:`PolicyError` naming every breached floor or ceiling with its source.
    """
    found = findings(policy, rules)
    errors = [f for f in found if f.severity == "error"]
    if errors:
        raise PolicyError(
            "; ".join(str(f) for f in errors),
            "违反国家待遇底线/上限: " + "; ".join(f"{f.file}: {f.where}: {f.message_zh}" for f in errors),
            field=errors[0].where,
        )
    return found
