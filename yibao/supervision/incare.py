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


def check_claim(claim, *, catalog: Mapping[str, Any], history: History | None = None, stage: str = "in", book: RuleBook | None = None) -> Verdict:
    """Run the ``stage`` rules (``in`` or ``pre``) over one claim; see the module docstring."""
    book = book or default_rulebook()
    if not isinstance(catalog, Mapping):  # the settlement Catalog holds its mapping in .items
        catalog = catalog.items
    if stage not in ("pre", "in"):
        raise ValueError("stage must be 'pre' or 'in'")
    rules = {r.id: r for r in book.by_stage(stage)}
    k = book.knowledge
    out: list[Finding] = []

    def hit(rule_id: str, en: str, zh: str, fld: str, evidence: dict, sn: int | None = None) -> None:
        r = rules[rule_id]
        action: Action = "warn" if stage == "pre" else r.action
        out.append(Finding(rule_id, action, r.severity, en, zh, fld, evidence, sn))

    person = claim.person
    when = (claim.setl_time or claim.begntime).date()
    age = _age_on(person.brdy, when)
    dx = tuple(d for d in (claim.dise_codg, *claim.other_dise_codg) if d)
    codes = {ln.med_list_codg for ln in claim.lines}
    seen: dict[tuple, int] = {}
    for ln in claim.lines:
        item = catalog.get(ln.med_list_codg)
        sn = ln.feedetl_sn
        if item is not None:
            # restricted payment scope, in the generator's and the SQL's order (first broken restriction)
            lg, amin, amax, lv, ind, mts = (_get(item, "lmt_gend", ""), _get(item, "lmt_age_min", -1), _get(item, "lmt_age_max", -1),
                                             _get(item, "lmt_hosp_lv_min", 0), tuple(_get(item, "lmt_indication", ()) or ()), tuple(_get(item, "lmt_med_types", ()) or ()))
            if lg and lg != person.gend:
                if "SV-SCOPE-SEX" in rules:
                    hit("SV-SCOPE-SEX", f"line {sn}: {ln.med_list_codg} is paid only for sex {lg}", f"明细 {sn}: {ln.med_list_codg} 限性别 {lg} 支付", "med_list_codg", {"lmt_gend": lg, "gend": person.gend}, sn)
            elif (amin >= 0 and age < amin) or (amax >= 0 and age > amax):
                if "SV-SCOPE-AGE" in rules:
                    hit("SV-SCOPE-AGE", f"line {sn}: {ln.med_list_codg} is paid only for ages {amin}..{amax}, patient is {age}", f"明细 {sn}: {ln.med_list_codg} 限年龄 {amin}..{amax} 支付，患者 {age} 岁", "med_list_codg", {"age": age, "lmt_age_min": amin, "lmt_age_max": amax}, sn)
            elif lv > 0 and claim.hosp_lv < lv:
                if "SV-SCOPE-LEVEL" in rules:
                    hit("SV-SCOPE-LEVEL", f"line {sn}: {ln.med_list_codg} is paid only at level {lv}+ institutions", f"明细 {sn}: {ln.med_list_codg} 限 {lv} 级及以上医疗机构支付", "med_list_codg", {"hosp_lv": claim.hosp_lv, "lmt_hosp_lv_min": lv}, sn)
            elif ind and not any(d.startswith(p) for d in dx for p in ind):
                if "SV-SCOPE-IND" in rules:
                    hit("SV-SCOPE-IND", f"line {sn}: {ln.med_list_codg} is paid only for {';'.join(ind)}", f"明细 {sn}: {ln.med_list_codg} 限适应症 {';'.join(ind)} 支付", "dise_codg", {"lmt_indication": ";".join(ind), "diagnoses": list(dx)}, sn)
            elif mts and claim.med_type not in mts:
                if "SV-SCOPE-MEDTYPE" in rules:
                    hit("SV-SCOPE-MEDTYPE", f"line {sn}: {ln.med_list_codg} is paid only for medical types {';'.join(mts)}", f"明细 {sn}: {ln.med_list_codg} 限医疗类别 {';'.join(mts)} 支付", "med_type", {"lmt_med_types": ";".join(mts), "med_type": claim.med_type}, sn)
            # above the standard price
            if "SV-PRICE-01" in rules:
                p = rules["SV-PRICE-01"].params
                cap = _get(item, "pric_uplmt", 0)
                if _get(item, "list_kind", "") in p.get("list_kinds", ()) and cap > 0 and ln.pric * 10000 > cap * (10000 + int(p.get("tolerance_bp", 0))):
                    hit("SV-PRICE-01", f"line {sn}: price {ln.pric} fen is above the standard {cap} fen", f"明细 {sn}: 单价 {ln.pric} 分超过标准 {cap} 分", "pric", {"pric": ln.pric, "pric_uplmt": cap}, sn)
        # duplicate (same item, quantity, price; the batch rule also requires the same time)
        key = (ln.med_list_codg, ln.cnt_milli, ln.pric, _get(ln, "fee_ocur_time", None))
        if key in seen and "SV-DUP-01" in rules:
            hit("SV-DUP-01", f"line {sn} repeats line {seen[key]}", f"明细 {sn} 与明细 {seen[key]} 重复收费", "feedetl_sn", {"first_sn": seen[key], "med_list_codg": ln.med_list_codg}, sn)
        seen.setdefault(key, sn)
        # long prescriptions
        if "SV-LRX-01" in rules and ln.prd_days > rules["SV-LRX-01"].params["max_days"]:
            mx = rules["SV-LRX-01"].params["max_days"]
            hit("SV-LRX-01", f"line {sn}: prescription of {ln.prd_days} days exceeds {mx}", f"明细 {sn}: 处方 {ln.prd_days} 天超过 {mx} 天", "prd_days", {"prd_days": ln.prd_days, "max_days": mx}, sn)
        # quantity
        if "SV-QTY-01" in rules and ln.prd_days > 0 and ln.med_list_codg in k.max_daily_milli:
            p = rules["SV-QTY-01"].params
            limit = int(p["max_supply_ratio"]) * k.max_daily_milli[ln.med_list_codg] * ln.prd_days + 1000 * int(p["tolerance_units"])
            if ln.cnt_milli > limit:
                hit("SV-QTY-01", f"line {sn}: {ln.cnt_milli / 1000:g} units for {ln.prd_days} days exceeds {limit / 1000:g}", f"明细 {sn}: {ln.prd_days} 天开具 {ln.cnt_milli / 1000:g} 单位，超过 {limit / 1000:g}", "cnt", {"cnt_milli": ln.cnt_milli, "limit_milli": limit}, sn)
    if "SV-LRX-02" in rules:
        days = rules["SV-LRX-02"].params["confirm_over_days"]
        over = [ln for ln in claim.lines if ln.prd_days > days]
        if over and not claim.lt_rx_confirmed and claim.med_type not in rules["SV-LRX-02"].params.get("exclude_med_types", ()):
            hit("SV-LRX-02", f"a prescription over {days} days lacks the patient's confirmation", f"超过{days}天的长期处方未经患者确认",
                "lt_rx_confirmed", {"prd_days": max(ln.prd_days for ln in over)})
    if "SV-UNBUNDLE-01" in rules:
        for pkg, comp in k.bundles:
            if pkg in codes and comp in codes:
                sn = next(ln.feedetl_sn for ln in claim.lines if ln.med_list_codg == comp)
                hit("SV-UNBUNDLE-01", f"line {sn}: {comp} is already included in {pkg}", f"明细 {sn}: {comp} 已包含在 {pkg} 内，分解收费", "med_list_codg", {"package": pkg, "component": comp}, sn)
    if "SV-EXAM-01" in rules:
        p = rules["SV-EXAM-01"].params
        if claim.med_type in p["med_types"]:
            exams = [ln for ln in claim.lines if ln.med_list_codg in k.exam_items]
            heavy = [ln for ln in exams if k.exam_items[ln.med_list_codg][1]]
            if len(exams) > p["max_exams"] or len(heavy) > p["max_heavy"]:
                hit("SV-EXAM-01", f"{len(exams)} exams ({len(heavy)} CT/MR/PET) in one clinic visit", f"一次门诊检查 {len(exams)} 项(其中大型检查 {len(heavy)} 项)，疑似过度检查", "med_list_codg", {"exams": len(exams), "heavy": len(heavy)})
    if "SV-IMP-01" in rules:
        g = k.sex_of_dx(claim.dise_codg)
        if g and g != person.gend:
            hit("SV-IMP-01", f"diagnosis {claim.dise_codg} does not fit the card holder's sex", f"诊断 {claim.dise_codg} 与参保人性别不符，疑似冒名就医", "dise_codg", {"dise_codg": claim.dise_codg, "gend": person.gend})
    if history is not None:
        if "SV-IMP-02" in rules and history.death_time is not None and claim.begntime > history.death_time:
            hit("SV-IMP-02", "the card holder's death was recorded before this encounter", "参保人已登记死亡，疑似冒名就医", "psn_no", {"death_time": history.death_time.isoformat()})
        if "SV-SPLIT-01" in rules and claim.med_type == MED_TYPE_INPATIENT:
            p = rules["SV-SPLIT-01"].params
            n = int(p["dx_prefix_len"])
            for a in history.admissions:
                if a.mdtrt_id == claim.mdtrt_id or a.endtime > claim.begntime:
                    continue
                if claim.begntime - a.endtime <= dt.timedelta(days=int(p["max_gap_days"])) and (not p["same_institution"] or a.fixmedins_code == claim.fixmedins_code) and a.dise_codg[:n] == claim.dise_codg[:n]:
                    hit("SV-SPLIT-01", f"readmission within {p['max_gap_days']} days of {a.mdtrt_id}", f"出院 {p['max_gap_days']} 天内因同一疾病再次入院，疑似分解住院", "begntime", {"previous": a.mdtrt_id})
                    break
    if any(f.action == "refuse" for f in out):
        action: Action = "refuse"
    elif out:
        action = "warn"
    else:
        action = "pass"
    return Verdict(action, tuple(out))
