"""In-care (事中) and before-care (事前) checks of one claim: a pure function, cheap enough for settlement.

:func:`check_claim` takes the settlement engine's :class:`~yibao.settlement.rules.Claim`
(one claim, its lines and the person's facts), optional :class:`History`
(the person's recent admissions and recorded death, which the caller looks up)
and the medical list, and returns a :class:`Verdict`: ``pass``, ``warn`` or
``refuse``, with one :class:`Finding` per rule hit, each with a reason in
English and Chinese and its evidence.  It reads no database and writes
nothing.  Rules and thresholds come from ``rules.yaml`` (stage ``in``, or
``pre`` for a reminder before the prescription is written: a ``pre`` check
never refuses).

Wiring (for the real-time service and the batch path)::

    from yibao.supervision.incare import check_claim
    from yibao.supervision.history import history_for      # recent admissions + recorded death (one query)
    hist = history_for(session, claim.person.psn_no, claim.begntime)
    verdict = check_claim(claim, catalog=catalog, history=hist)   # settlement Catalog, or Mapping[code, ListItem]
    if verdict.action == "refuse":
        raise ClaimRejected(verdict.reason_en, verdict.reason_zh, field=verdict.findings[0].field)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from yibao.core.contract import MED_TYPE_INPATIENT
from yibao.supervision.knowledge import RuleBook, default_rulebook

Action = Literal["pass", "warn", "refuse"]


@dataclass(frozen=True, slots=True)
class PastAdmission:
    mdtrt_id: str
    fixmedins_code: str
    dise_codg: str
    begntime: dt.datetime
    endtime: dt.datetime


@dataclass(frozen=True, slots=True)
class History:
    """What the caller knows about the person beyond this claim."""

    admissions: tuple[PastAdmission, ...] = ()
    death_time: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    action: Action
    severity: int
    reason_en: str
    reason_zh: str
    field: str
    evidence: dict[str, Any]
    feedetl_sn: int | None = None


@dataclass(frozen=True)
class Verdict:
    action: Action
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def reason_en(self) -> str:
        return "; ".join(f"[{f.rule_id}] {f.reason_en}" for f in self.findings)

    @property
    def reason_zh(self) -> str:
        return "；".join(f"[{f.rule_id}] {f.reason_zh}" for f in self.findings)


def _age_on(brdy: dt.date, on: dt.date) -> int:
    return on.year - brdy.year - ((on.month, on.day) < (brdy.month, brdy.day))


def _get(item, name, default=None):
    return getattr(item, name, default)


@dataclass(frozen=True)
class _Context:
    """What every rule of one claim reads: the claim, the person's facts, the list, the knowledge, the rules on."""

    claim: Any
    catalog: Mapping[str, Any]
    history: History | None
    rules: Mapping[str, Any]
    knowledge: Any
    age: int
    dx: tuple[str, ...]
    codes: frozenset[str]

    def params(self, rule_id: str) -> Mapping[str, Any]:
        return self.rules[rule_id].params


# (rule_id, reason_en, reason_zh, field, evidence, feedetl_sn)
_Hit = tuple[str, str, str, str, dict, "int | None"]


def _scope(ctx: _Context, ln: Any, item: Any, seen: dict) -> list[_Hit]:
    """限定支付范围: the FIRST broken restriction of a line (sex,
    age, level, indication, med_type), as the SQL orders them.
    """
    if item is None:
        return []
    claim, person, sn, code = ctx.claim, ctx.claim.person, ln.feedetl_sn, ln.med_list_codg
    lg, amin, amax = _get(item, "lmt_gend", ""), _get(item, "lmt_age_min", -1), _get(item, "lmt_age_max", -1)
    lv, ind = _get(item, "lmt_hosp_lv_min", 0), tuple(_get(item, "lmt_indication", ()) or ())
    mts = tuple(_get(item, "lmt_med_types", ()) or ())
    if lg and lg != person.gend:
        hit = (
            "SV-SCOPE-SEX",
            f"line {sn}: {code} is paid only for sex {lg}",
            f"明细 {sn}: {code} 限性别 {lg} 支付",
            "med_list_codg",
            {"lmt_gend": lg, "gend": person.gend},
            sn,
        )
    elif (amin >= 0 and ctx.age < amin) or (amax >= 0 and ctx.age > amax):
        hit = (
            "SV-SCOPE-AGE",
            f"line {sn}: {code} is paid only for ages {amin}..{amax}, patient is {ctx.age}",
            f"明细 {sn}: {code} 限年龄 {amin}..{amax} 支付，患者 {ctx.age} 岁",
            "med_list_codg",
            {"age": ctx.age, "lmt_age_min": amin, "lmt_age_max": amax},
            sn,
        )
    elif lv > 0 and claim.hosp_lv < lv:
        hit = (
            "SV-SCOPE-LEVEL",
            f"line {sn}: {code} is paid only at level {lv}+ institutions",
            f"明细 {sn}: {code} 限 {lv} 级及以上医疗机构支付",
            "med_list_codg",
            {"hosp_lv": claim.hosp_lv, "lmt_hosp_lv_min": lv},
            sn,
        )
    elif ind and not any(d.startswith(p) for d in ctx.dx for p in ind):
        hit = (
            "SV-SCOPE-IND",
            f"line {sn}: {code} is paid only for {';'.join(ind)}",
            f"明细 {sn}: {code} 限适应症 {';'.join(ind)} 支付",
            "dise_codg",
            {"lmt_indication": ";".join(ind), "diagnoses": list(ctx.dx)},
            sn,
        )
    elif mts and claim.med_type not in mts:
        hit = (
            "SV-SCOPE-MEDTYPE",
            f"line {sn}: {code} is paid only for medical types {';'.join(mts)}",
            f"明细 {sn}: {code} 限医疗类别 {';'.join(mts)} 支付",
            "med_type",
            {"lmt_med_types": ";".join(mts), "med_type": claim.med_type},
            sn,
        )
    else:
        return []
    return [hit] if hit[0] in ctx.rules else []


def _price(ctx: _Context, ln: Any, item: Any, seen: dict) -> list[_Hit]:
    """超标准收费: a listed service above its standard price (plus the rule's tolerance)."""
    if item is None:
        return []
    p, cap, sn = ctx.params("SV-PRICE-01"), _get(item, "pric_uplmt", 0), ln.feedetl_sn
    if (
        _get(item, "list_kind", "") in p.get("list_kinds", ())
        and cap > 0
        and ln.pric * 10000 > cap * (10000 + int(p.get("tolerance_bp", 0)))
    ):
        return [
            (
                "SV-PRICE-01",
                f"line {sn}: price {ln.pric} fen is above the standard {cap} fen",
                f"明细 {sn}: 单价 {ln.pric} 分超过标准 {cap} 分",
                "pric",
                {"pric": ln.pric, "pric_uplmt": cap},
                sn,
            )
        ]
    return []


def _duplicate(ctx: _Context, ln: Any, item: Any, seen: dict) -> list[_Hit]:
    """重复收费: the same item, quantity and price (and time) twice in one claim."""
    key, sn = (ln.med_list_codg, ln.cnt_milli, ln.pric, _get(ln, "fee_ocur_time", None)), ln.feedetl_sn
    if key in seen:
        return [
            (
                "SV-DUP-01",
                f"line {sn} repeats line {seen[key]}",
                f"明细 {sn} 与明细 {seen[key]} 重复收费",
                "feedetl_sn",
                {"first_sn": seen[key], "med_list_codg": ln.med_list_codg},
                sn,
            )
        ]
    return []


def _long_rx(ctx: _Context, ln: Any, item: Any, seen: dict) -> list[_Hit]:
    """长期处方: a prescription longer than the rule's ``max_days``."""
    mx, sn = ctx.params("SV-LRX-01")["max_days"], ln.feedetl_sn
    if ln.prd_days > mx:
        return [
            (
                "SV-LRX-01",
                f"line {sn}: prescription of {ln.prd_days} days exceeds {mx}",
                f"明细 {sn}: 处方 {ln.prd_days} 天超过 {mx} 天",
                "prd_days",
                {"prd_days": ln.prd_days, "max_days": mx},
                sn,
            )
        ]
    return []


def _quantity(ctx: _Context, ln: Any, item: Any, seen: dict) -> list[_Hit]:
    """超量开药: more units than the daily maximum × days × the rule's supply ratio, plus its tolerance."""
    k, sn = ctx.knowledge, ln.feedetl_sn
    if ln.prd_days <= 0 or ln.med_list_codg not in k.max_daily_milli:
        return []
    p = ctx.params("SV-QTY-01")
    limit = int(p["max_supply_ratio"]) * k.max_daily_milli[ln.med_list_codg] * ln.prd_days + 1000 * int(
        p["tolerance_units"]
    )
    if ln.cnt_milli > limit:
        return [
            (
                "SV-QTY-01",
                f"line {sn}: {ln.cnt_milli / 1000:g} units for {ln.prd_days} days exceeds {limit / 1000:g}",
                f"明细 {sn}: {ln.prd_days} 天开具 {ln.cnt_milli / 1000:g} 单位，超过 {limit / 1000:g}",
                "cnt",
                {"cnt_milli": ln.cnt_milli, "limit_milli": limit},
                sn,
            )
        ]
    return []


def _unconfirmed_long_rx(ctx: _Context) -> list[_Hit]:
    """长期处方未确认: a line over ``confirm_over_days`` without
    the patient's confirmation (not at excluded med types).
    """
    p, claim = ctx.params("SV-LRX-02"), ctx.claim
    days = p["confirm_over_days"]
    over = [ln.prd_days for ln in claim.lines if ln.prd_days > days]
    if over and not claim.lt_rx_confirmed and claim.med_type not in p.get("exclude_med_types", ()):
        return [
            (
                "SV-LRX-02",
                f"a prescription over {days} days lacks the patient's confirmation",
                f"超过{days}天的长期处方未经患者确认",
                "lt_rx_confirmed",
                {"prd_days": max(over)},
                None,
            )
        ]
    return []


def _unbundled(ctx: _Context) -> list[_Hit]:
    """分解收费: a component billed beside the package that includes it."""
    out: list[_Hit] = []
    for pkg, comp in ctx.knowledge.bundles:
        if pkg in ctx.codes and comp in ctx.codes:
            sn = next(ln.feedetl_sn for ln in ctx.claim.lines if ln.med_list_codg == comp)
            out.append(
                (
                    "SV-UNBUNDLE-01",
                    f"line {sn}: {comp} is already included in {pkg}",
                    f"明细 {sn}: {comp} 已包含在 {pkg} 内，分解收费",
                    "med_list_codg",
                    {"package": pkg, "component": comp},
                    sn,
                )
            )
    return out


def _over_examined(ctx: _Context) -> list[_Hit]:
    """过度检查: more exams (or more CT/MR/PET) in one clinic visit than the rule allows."""
    p, k, claim = ctx.params("SV-EXAM-01"), ctx.knowledge, ctx.claim
    if claim.med_type not in p["med_types"]:
        return []
    exams = [ln for ln in claim.lines if ln.med_list_codg in k.exam_items]
    heavy = [ln for ln in exams if k.exam_items[ln.med_list_codg][1]]
    if len(exams) > p["max_exams"] or len(heavy) > p["max_heavy"]:
        return [
            (
                "SV-EXAM-01",
                f"{len(exams)} exams ({len(heavy)} CT/MR/PET) in one clinic visit",
                f"一次门诊检查 {len(exams)} 项(其中大型检查 {len(heavy)} 项)，疑似过度检查",
                "med_list_codg",
                {"exams": len(exams), "heavy": len(heavy)},
                None,
            )
        ]
    return []


def _sex_mismatch(ctx: _Context) -> list[_Hit]:
    """冒名就医: a diagnosis of one sex on a card holder of the other."""
    claim = ctx.claim
    g = ctx.knowledge.sex_of_dx(claim.dise_codg)
    if g and g != claim.person.gend:
        return [
            (
                "SV-IMP-01",
                f"diagnosis {claim.dise_codg} does not fit the card holder's sex",
                f"诊断 {claim.dise_codg} 与参保人性别不符，疑似冒名就医",
                "dise_codg",
                {"dise_codg": claim.dise_codg, "gend": claim.person.gend},
                None,
            )
        ]
    return []


def _after_death(ctx: _Context) -> list[_Hit]:
    """冒名就医: care after the card holder's recorded death."""
    h = ctx.history
    if h is not None and h.death_time is not None and ctx.claim.begntime > h.death_time:
        return [
            (
                "SV-IMP-02",
                "the card holder's death was recorded before this encounter",
                "参保人已登记死亡，疑似冒名就医",
                "psn_no",
                {"death_time": h.death_time.isoformat()},
                None,
            )
        ]
    return []


def _split_admission(ctx: _Context) -> list[_Hit]:
    """分解住院: a readmission within ``max_gap_days`` for the same disease (and institution, if the rule says)."""
    claim, h = ctx.claim, ctx.history
    if h is None or claim.med_type != MED_TYPE_INPATIENT:
        return []
    p = ctx.params("SV-SPLIT-01")
    n, gap = int(p["dx_prefix_len"]), int(p["max_gap_days"])
    for a in h.admissions:
        if a.mdtrt_id == claim.mdtrt_id or a.endtime > claim.begntime:
            continue
        if (
            claim.begntime - a.endtime <= dt.timedelta(days=gap)
            and (not p["same_institution"] or a.fixmedins_code == claim.fixmedins_code)
            and a.dise_codg[:n] == claim.dise_codg[:n]
        ):
            return [
                (
                    "SV-SPLIT-01",
                    f"readmission within {gap} days of {a.mdtrt_id}",
                    f"出院 {gap} 天内因同一疾病再次入院，疑似分解住院",
                    "begntime",
                    {"previous": a.mdtrt_id},
                    None,
                )
            ]
    return []


# Rules run per fee line, in this order for each line, then the rules of the whole claim.  The scope rule serves
# the five SV-SCOPE-* ids (it reports the first broken restriction if that rule is on); the others run only when
# their rule id is among the stage's rules in rules.yaml.
LINE_RULES: tuple[tuple[str | None, Any], ...] = (
    (None, _scope),
    ("SV-PRICE-01", _price),
    ("SV-DUP-01", _duplicate),
    ("SV-LRX-01", _long_rx),
    ("SV-QTY-01", _quantity),
)
CLAIM_RULES: tuple[tuple[str, Any], ...] = (
    ("SV-LRX-02", _unconfirmed_long_rx),
    ("SV-UNBUNDLE-01", _unbundled),
    ("SV-EXAM-01", _over_examined),
    ("SV-IMP-01", _sex_mismatch),
    ("SV-IMP-02", _after_death),
    ("SV-SPLIT-01", _split_admission),
)


def check_claim(
    claim,
    *,
    catalog: Mapping[str, Any],
    history: History | None = None,
    stage: str = "in",
    book: RuleBook | None = None,
) -> Verdict:
    """Run the ``stage`` rules (``in`` or ``pre``) over one claim; see the module docstring."""
    book = book or default_rulebook()
    if not isinstance(catalog, Mapping):  # the settlement Catalog holds its mapping in .items
        catalog = catalog.items
    if stage not in ("pre", "in"):
        raise ValueError("stage must be 'pre' or 'in'")
    rules = {r.id: r for r in book.by_stage(stage)}
    when = (claim.setl_time or claim.begntime).date()
    ctx = _Context(
        claim,
        catalog,
        history,
        rules,
        book.knowledge,
        _age_on(claim.person.brdy, when),
        tuple(d for d in (claim.dise_codg, *claim.other_dise_codg) if d),
        frozenset(ln.med_list_codg for ln in claim.lines),
    )
    hits: list[_Hit] = []
    line_rules = [fn for rid, fn in LINE_RULES if rid is None or rid in rules]
    seen: dict[tuple, int] = {}
    for ln in claim.lines:
        item = catalog.get(ln.med_list_codg)
        for fn in line_rules:
            hits.extend(fn(ctx, ln, item, seen))
        seen.setdefault((ln.med_list_codg, ln.cnt_milli, ln.pric, _get(ln, "fee_ocur_time", None)), ln.feedetl_sn)
    for rid, fn in CLAIM_RULES:
        if rid in rules:
            hits.extend(fn(ctx))
    out = []
    for rid, en, zh, fld, evidence, sn in hits:
        r = rules[rid]
        out.append(Finding(rid, "warn" if stage == "pre" else r.action, r.severity, en, zh, fld, evidence, sn))
    if any(f.action == "refuse" for f in out):
        action: Action = "refuse"
    elif out:
        action = "warn"
    else:
        action = "pass"
    return Verdict(action, tuple(out))
