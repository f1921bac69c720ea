"""The round engine (集采规则引擎): pure functions from a round's input and a
rule set to proposed winners, agreed volumes, supply regions and contracts.

Nothing here touches a database or a file.  Every figure comes from the
:class:`~yibao.procurement.params.RuleSet`; every bidder leaves with a status
and the reason it won or lost (English and Chinese).

Prices: pack price in fen → unit price (单位申报价) in e4 (0.0001 yuan) →
unit comparable price (单位可比价) in e4 by the price-difference rules
(差比价).  Both conversions round half up, explicitly.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import numpy as np
import pandas as pd

from yibao.core.money import ratio_to_bp
from yibao.procurement.domain import Bid, CatalogEntry, Firm, RoundInput, Spec
from yibao.procurement.params import RuleSet, TieBreak

# A credit lookup returns a firm's 医药价格和招采信用评价 grade (e.g. "good", "severe"; names as in
# yibao/data/supervision/credit.yaml) or None (unknown -> the grade on the firm record).  yibao.supervision will
# provide one; pass it as ``credit_lookup=`` to :func:`run_round`.
CreditLookup = Callable[[str], "str | None"]
# (drug_id, firm_id) -> slot-group label (firms sharing a label count as one slot), or None
SlotGroup = Callable[[str, str], "str | None"]

E4_PER_FEN = 100


def _half_up(x: Fraction | Decimal) -> int:
    if isinstance(x, Decimal):
        return int(x.to_integral_value(rounding=ROUND_HALF_UP))
    n, d = x.numerator, x.denominator
    return (2 * n + d) // (2 * d)


def unit_price_e4(price_fen: int, units_per_pack: int) -> int:
    """单位申报价: pack price / minimum units, in 0.0001 yuan, half up."""
    return _half_up(Fraction(price_fen * E4_PER_FEN, units_per_pack))


def _log2(x: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 40
        v = x.ln() / Decimal(2).ln()
        r = v.to_integral_value()
        return r if abs(v - r) < Decimal("1e-30") else v


def conversion_factor(spec: Spec, rep: Spec, rules: RuleSet) -> Decimal:
    """Factor turning a unit price of ``spec`` into one of the representative spec.

    A spec with twice the content costs ``content_coef`` times as much, so its
    comparable price is divided by it: ``factor = coef ** log2(rep/spec)``.
    Fill volumes at or below ``fill_equal_up_to_ml`` count as equal.
    Pediatric specs use ``pediatric_content_coef`` where the rule set has one.
    """
    pd_rules = rules.price_difference
    coef = pd_rules.content_coef
    if spec.pediatric and pd_rules.pediatric_content_coef is not None:
        coef = pd_rules.pediatric_content_coef
    with localcontext() as ctx:
        ctx.prec = 40
        f = Decimal(1)
        if spec.content_mg != rep.content_mg:
            f *= coef ** _log2(rep.content_mg / spec.content_mg)
        if spec.fill_ml is not None and rep.fill_ml is not None:
            lo = pd_rules.fill_equal_up_to_ml
            a, b = max(spec.fill_ml, lo), max(rep.fill_ml, lo)
            if a != b and a > 0 and b > 0:
                f *= pd_rules.fill_coef ** _log2(b / a)
        return +f


def comparable_e4(unit_e4: int, factor: Decimal) -> int:
    """单位可比价 in e4, half up."""
    return _half_up(Decimal(unit_e4) * factor)


def max_valid_price_fen(entry: CatalogEntry, spec: Spec, rules: RuleSet) -> int:
    """最高有效申报价 of a spec.  Batch 11: min(share × listed average, provincial highest win)."""
    if rules.catalog.max_price_method == "min_listed_share_provincial":
        share = rules.catalog.listed_avg_share or Decimal(1)
        rep = entry.representative
        cands = []
        if entry.listed_avg_price_fen:
            cands.append(_half_up(Decimal(entry.listed_avg_price_fen) * share))
        if entry.provincial_highest_win_fen:
            cands.append(entry.provincial_highest_win_fen)
        if cands:
            rep_cap = min(cands)
            if spec.spec_id == rep.spec_id:
                return rep_cap
            # carry the representative cap to this spec by the price-difference rules
            f = conversion_factor(spec, rep, rules)
            rep_unit = unit_price_e4(rep_cap, rep.units_per_pack)
            unit = _half_up(Decimal(rep_unit) / f)
            return _half_up(Fraction(unit * spec.units_per_pack, E4_PER_FEN))
    return spec.max_price_fen


def catalog_gate(entry: CatalogEntry, rules: RuleSet) -> tuple[bool, str, str]:
    """Does the drug enter the catalog?  ("三家过评", batch 11's 7 competitors)."""
    need = rules.catalog.min_passed_consistency
    if need is not None and entry.passed_consistency < need:
        return (
            False,
            f"only {entry.passed_consistency} manufacturers passed consistency evaluation; {need} needed",
            f"通过一致性评价企业仅 {entry.passed_consistency} 家, 需 {need} 家",
        )
    mc = rules.catalog.min_competitors
    if mc is not None and entry.competitors < mc:
        return (
            False,
            f"only {entry.competitors} competitors (reference drug + passed generics); {mc} needed",
            f"竞争企业仅 {entry.competitors} 家 (参比制剂+过评仿制药), 需 {mc} 家",
        )
    return True, "enters the catalog", "纳入采购品种目录"


def catalog_candidates(amount_fen: dict[str, int], unit_price_e4: dict[str, int], rules: RuleSet) -> list[str]:
    """Which products a round takes up, in which order (Guangdong's draft, seed 001).

    With ``catalog.top_amount_share`` the products that make up the top share
    of purchase amount are taken (largest amount first until the share is
    reached), and the batches run from high price to low.  Without it, every
    product, high price to low.
    """
    order = sorted(amount_fen, key=lambda k: (-amount_fen[k], k))
    share = rules.catalog.top_amount_share
    if share is not None:
        total = sum(amount_fen.values())
        need = Fraction(str(share)) * total
        picked: list[str] = []
        cum = 0
        for k in order:
            if cum >= need and picked:
                break
            picked.append(k)
            cum += amount_fen[k]
        order = picked
    return sorted(order, key=lambda k: (-unit_price_e4.get(k, 0), k))


# ---------------------------------------------------------------------------
# outcomes


@dataclass
class BidderOutcome:
    """One bidder (firm × drug) and why it won or lost."""

    drug_id: str
    firm_id: str
    bid_ids: tuple[str, ...]
    comparable_e4: int
    status: str = "lost"  # won | revived | lost | ineligible
    reason_code: str = ""
    reason_en: str = ""
    reason_zh: str = ""
    rank: int = 0
    qualified_by: tuple[str, ...] = ()
    group: str = ""
    award_comparable_e4: int = 0  # the comparable price the firm supplies at (revival changes it)

    @property
    def won(self) -> bool:
        return self.status in ("won", "revived")


@dataclass
class DrugResult:
    drug_id: str
    entered: bool
    gate_reason: str
    outcomes: list[BidderOutcome] = field(default_factory=list)
    eligible_n: int = 0  # 符合资格的申报企业数: N of the max-winners table (before slot reductions)
    qualified_n: int = 0  # shortlisted bidders that passed the price tests (rule 1)
    effective_n: int = 0
    max_winners: int = 0
    anchor_e4: int = 0
    procedure: str = "bidding"  # bidding | negotiation
    share_bp: int = 0
    cycle_years: int = 0
    primary: dict[str, str] = field(default_factory=dict)
    backup: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def winners(self) -> list[BidderOutcome]:
        return sorted((o for o in self.outcomes if o.won), key=lambda o: (o.status == "revived", o.rank))


@dataclass
class RoundResult:
    name: str
    ruleset_id: str
    drugs: dict[str, DrugResult]
    agreed: pd.DataFrame  # one row per demand line: + supplier, agreed_units
    contracts: pd.DataFrame  # institution × spec × supplier: agreed_units, price_fen, amount_fen
    warnings: list[str] = field(default_factory=list)
    synthetic: bool = False

    def outcome_rows(self) -> list[dict]:
        rows = []
        for d in self.drugs.values():
            for o in sorted(d.outcomes, key=lambda o: (o.rank or 10**9, o.firm_id)):
                rows.append(
                    {
                        "drug_id": d.drug_id,
                        "firm_id": o.firm_id,
                        "rank": o.rank,
                        "status": o.status,
                        "comparable_yuan": str(Decimal(o.comparable_e4) / 10000),
                        "reason_code": o.reason_code,
                        "reason_en": o.reason_en,
                        "reason_zh": o.reason_zh,
                        "group": o.group,
                        "qualified_by": ",".join(o.qualified_by),
                    }
                )
        return rows


# ---------------------------------------------------------------------------
# tie-breaks


def _tie_value(tb: TieBreak, bid: Bid, firm: Firm, grade: str):
    if tb.key == "credit_grade":
        return tb.order.index(grade) if grade in tb.order else len(tb.order)
    if tb.key == "supply_regions":
        return -firm.supply_regions
    if tb.key == "sales_volume":
        return -bid.sales_volume
    d = bid.consistency_date if tb.key == "consistency_date" else bid.first_registration_date
    return d.toordinal() if d else 10**7


def rank_key(rules: RuleSet, comparable: int, bid: Bid, firm: Firm, grade: str) -> tuple:
    """Sort key: unit comparable price first; the tie-breaks only on equal prices, in order."""
    return (comparable, *(_tie_value(tb, bid, firm, grade) for tb in rules.tie_break), firm.firm_id)


# ---------------------------------------------------------------------------
# selection


def _e4(x: int) -> str:
    return f"{Decimal(x) / 10000:.4f}"


@dataclass
class _Cand:
    outcome: BidderOutcome
    bid: Bid
    firm: Firm
    grade: str
    unit_e4: int
    max_unit_e4: int
    key: tuple = ()


def _slot_groups(cands: list[_Cand], rules: RuleSet, slot_group: SlotGroup | None) -> tuple[int, int, list[str]]:
    """Effective N and the B-certificate slot reduction (batch 10 "强关联" rules)."""
    s = rules.selection.slots
    notes = []
    if s.shared_contract_manufacturer_one_slot:
        groups = set()
        for c in cands:
            g = (
                (slot_group(c.outcome.drug_id, c.firm.firm_id) if slot_group else None)
                or c.bid.contract_manufacturer
                or c.firm.firm_id
            )
            groups.add(g)
        n_eff = len(groups)
        if n_eff < len(cands):
            notes.append(f"{len(cands)} eligible bidders count as {n_eff} slots (shared contract manufacturer)")
    else:
        n_eff = len(cands)
    red = 0
    if s.b_cert_holders_per_slot:
        b = sum(1 for c in cands if c.firm.b_cert)
        red = min(s.b_cert_max_slots, b // s.b_cert_holders_per_slot)
        if red:
            notes.append(f"{b} B-certificate holders remove {red} slot(s)")
    return n_eff, red, notes


def _qualify(cands: list[_Cand], entry: CatalogEntry, rules: RuleSet) -> tuple[int, list[_Cand], list[_Cand]]:
    q = rules.selection.qualification
    assert q is not None
    prices = [c.outcome.comparable_e4 for c in cands]
    lowest = min(prices)
    anchor = lowest
    if q.anchor == "max_lowest_share_of_mean" and q.anchor_mean_share is not None:
        mean_share = Fraction(sum(prices), len(prices)) * Fraction(str(q.anchor_mean_share))
        anchor = max(lowest, _half_up(mean_share))
    ratio = Fraction(str(q.ratio_to_anchor)) if q.ratio_to_anchor is not None else None
    cut = Fraction(str(q.cut_from_max_price)) if q.cut_from_max_price is not None else None
    absolute = q.absolute_unit_price.get(entry.dosage_form, q.absolute_unit_price.get("all"))
    abs_e4 = _half_up(Decimal(absolute) * 10000) if absolute is not None else None
    ok, bad = [], []
    for c in cands:
        p = c.outcome.comparable_e4
        paths = []
        if ratio is not None and p <= ratio * anchor:
            paths.append("ratio")
        if cut is not None and q.cut_alone_qualifies and c.max_unit_e4 and c.unit_e4 <= (1 - cut) * c.max_unit_e4:
            paths.append("cut")
        if abs_e4 is not None and p <= abs_e4:
            paths.append("absolute")
        c.outcome.qualified_by = tuple(paths)
        if paths:
            ok.append(c)
        else:
            bits_en = [f"unit comparable price {_e4(p)} > {q.ratio_to_anchor} x anchor {_e4(anchor)}"]
            bits_zh = [f"单位可比价 {_e4(p)} 高于锚点 {_e4(anchor)} 的 {q.ratio_to_anchor} 倍"]
            if cut is not None and q.cut_alone_qualifies and c.max_unit_e4:
                got = Fraction(c.max_unit_e4 - c.unit_e4, c.max_unit_e4)
                bits_en.append(f"cut {float(got):.2%} < {float(cut):.2%}")
                bits_zh.append(f"降幅 {float(got):.2%} 不足 {float(cut):.2%}")
            if abs_e4 is not None:
                bits_en.append(f"above {_e4(abs_e4)} yuan")
                bits_zh.append(f"高于 {_e4(abs_e4)} 元")
            c.outcome.reason_code = "not_qualified"
            c.outcome.reason_en = "not qualified: " + "; ".join(bits_en)
            c.outcome.reason_zh = "未获拟中选资格: " + "; ".join(bits_zh)
            bad.append(c)
    return anchor, ok, bad


def _shortlist(
    cands: list[_Cand], entry: CatalogEntry, rules: RuleSet, res: DrugResult, slot_group, label: str = ""
) -> tuple[list[_Cand], list[_Cand]]:
    """入围 then 拟中选, in the order the batch documents give.

    ``cands`` are the eligible bidders (符合资格的申报企业), ranked by unit
    comparable price.  The maximum number of shortlisted firms (最多入围企业数)
    is read from the rule set's table at N = the number of eligible bidders
    (slot reductions applied), NOT at the number that pass the price tests;
    the lowest-priced firms up to that number are shortlisted (入围).  Only a
    shortlisted firm can qualify (获得拟中选资格) by the price tests (rule 1),
    so a firm ranked below the shortlist never wins, and a firm revived under
    rule 2 (batch 10) is always shortlisted, i.e. never priced above a firm
    that lost for want of a shortlist place.

    Returns (winners, shortlisted firms that failed the price tests).
    """
    n = len(cands)
    n_eff, red, notes = _slot_groups(cands, rules, slot_group)
    res.notes += notes
    m = max(1, rules.selection.max_winners_for(n_eff) - red) if n else 0
    short, beyond = cands[:m], cands[m:]
    anchor, ok, bad = _qualify(short, entry, rules)
    res.anchor_e4 = anchor
    elim = rules.selection.elimination
    n_ok = len(ok)
    keep = n_ok - elim.drop_highest if elim.enabled and n_ok >= elim.min_qualified else n_ok
    res.eligible_n += n
    res.effective_n += n_eff
    res.qualified_n += n_ok
    res.max_winners += m
    winners = ok[:keep]
    for i, c in enumerate(ok):
        o = c.outcome
        if i < keep:
            o.status, o.reason_code = "won", "won_qualified"
            o.reason_en = (
                f"shortlisted (rank {o.rank} within the {m} places for N={n_eff} eligible bidders{label}) "
                f"and qualified ({'/'.join(o.qualified_by)})"
            )
            o.reason_zh = (
                f"入围 (第 {o.rank} 名, 申报企业 N={n_eff} 家最多入围 {m} 家{label}) "
                f"并获拟中选资格 ({'/'.join(o.qualified_by)})"
            )
        else:
            o.reason_code = "eliminated_highest"
            o.reason_en = (
                f"shortlisted and qualified but among the {elim.drop_highest} highest-priced qualified bids, "
                "which cannot win"
            )
            o.reason_zh = f"入围并获资格但报价位列最高 {elim.drop_highest} 家, 按淘汰规则不能中选"
    for c in beyond:
        o = c.outcome
        o.reason_code = "over_max_winners"
        o.reason_en = (
            f"ranked {o.rank}, beyond the {m} shortlist places (最多入围企业数) for N={n_eff} eligible bidders{label}"
        )
        o.reason_zh = f"排名第 {o.rank}, 超出申报企业 N={n_eff} 家时最多入围 {m} 家{label}"
    return winners, bad


def evaluate_drug(
    entry: CatalogEntry,
    bids: Iterable[Bid],
    firms: dict[str, Firm],
    rules: RuleSet,
    *,
    round_date: dt.date,
    base_units: int = 0,
    banned: frozenset[str] = frozenset(),
    credit_lookup: CreditLookup | None = None,
    slot_group: SlotGroup | None = None,
) -> DrugResult:
    """Select winners for one drug under ``rules``; every bidder gets a reason."""
    entered, gate_en, _gate_zh = catalog_gate(entry, rules)
    res = DrugResult(entry.drug_id, entered, gate_en)
    by_firm: dict[str, list[Bid]] = defaultdict(list)
    for b in bids:
        by_firm[b.firm_id].append(b)
    rep = entry.representative
    cands: list[_Cand] = []
    sole_volume = (
        base_units
        * ratio_to_bp(
            rules.share_for(
                1, antibiotic=entry.antibiotic, injectable=entry.injectable, sole_product=entry.sole_product
            )
        )
        // 10000
    )
    for firm_id, fbids in sorted(by_firm.items()):
        firm = firms[firm_id]
        grade = (credit_lookup(firm_id) if credit_lookup else None) or firm.credit_grade
        # the bidder's comparable price: the lowest over its specifications
        best = None
        for b in fbids:
            spec = entry.spec(b.spec_id)
            assert spec is not None
            u = unit_price_e4(b.price_fen, spec.units_per_pack)
            cp = comparable_e4(u, conversion_factor(spec, rep, rules))
            mx = max_valid_price_fen(entry, spec, rules)
            mu = unit_price_e4(mx, spec.units_per_pack) if mx else 0
            if best is None or cp < best[0]:
                best = (cp, b, u, mu)
        cp, b, u, mu = best  # type: ignore[misc]
        o = BidderOutcome(entry.drug_id, firm_id, tuple(x.bid_id for x in fbids), cp, award_comparable_e4=cp)
        res.outcomes.append(o)
        if not entered:
            o.status, o.reason_code, o.reason_en, o.reason_zh = "ineligible", "not_in_catalog", gate_en, _gate_zh
            continue
        why = _ineligible(entry, fbids, firm, grade, rules, round_date, banned, sole_volume)
        if why:
            o.status = "ineligible"
            o.reason_code, o.reason_en, o.reason_zh = why
            continue
        c = _Cand(o, b, firm, grade, u, mu)
        c.key = rank_key(rules, cp, b, firm, grade)
        cands.append(c)
    cands.sort(key=lambda c: c.key)
    for i, c in enumerate(cands, 1):
        c.outcome.rank = i
    if not cands:
        res.notes.append("no eligible bidder")
        return _finish(res, entry, rules)
    method = rules.selection.method
    if rules.goods == "consumable" and len(cands) < rules.consumables.min_bidders_for_bidding:
        _negotiate(cands, rules, res)
    elif method == "largest_cut":
        _largest_cut(cands, res)
    elif method == "lowest_n":
        n = rules.selection.lowest_n or 1
        for i, c in enumerate(cands):
            o = c.outcome
            if i < n:
                o.status, o.reason_code = "won", "won_lowest_n"
                o.reason_en, o.reason_zh = (
                    f"among the {n} lowest unit comparable prices (rank {o.rank})",
                    f"单位可比价最低的 {n} 家之一 (第 {o.rank} 名)",
                )
            else:
                o.reason_code = "not_lowest_n"
                o.reason_en, o.reason_zh = (
                    f"rank {o.rank}: only the {n} lowest win",
                    f"第 {o.rank} 名: 仅最低 {n} 家中选",
                )
        res.eligible_n = res.qualified_n = res.effective_n = len(cands)
        res.max_winners = min(n, len(cands))
    elif rules.selection.grouping.enabled:
        _grouped(cands, entry, rules, res, slot_group)
    else:
        winners, failed = _shortlist(cands, entry, rules, res, slot_group)
        _revive(failed, winners, rules, res)
    return _finish(res, entry, rules)


def _ineligible(entry, fbids, firm, grade, rules, round_date, banned, sole_volume) -> tuple[str, str, str] | None:
    el = rules.eligibility
    if firm.firm_id in banned:
        return "banned", "barred from this round (ban list)", "在禁止参与集采名单内"
    if grade in el.excluded_credit_grades:
        return "credit", f"credit grade {grade!r} is excluded", f"信用评价等级为 {grade}, 不得参与"
    if el.quality_lookback_years:
        start = round_date.replace(year=round_date.year - el.quality_lookback_years)
        fails = [d for d in firm.quality_failures if start <= d <= round_date]
        if fails:
            return (
                "quality",
                f"quality-inspection failure on {fails[0]} within {el.quality_lookback_years} years",
                f"{el.quality_lookback_years} 年内存在质量检验不合格 ({fails[0]})",
            )
    b0 = fbids[0]
    if el.two_envelope_min_score is not None:
        if b0.tech_score is None or b0.tech_score < el.two_envelope_min_score:
            return (
                "technical_envelope",
                f"technical envelope score {b0.tech_score} below {el.two_envelope_min_score}; "
                "price envelope not opened",
                f"技术标得分 {b0.tech_score} 低于 {el.two_envelope_min_score}, 商务标不予开启",
            )
    if el.capacity_multiple is not None:
        need = _half_up(Decimal(sole_volume) * el.capacity_multiple)
        if b0.capacity_units < need:
            return (
                "capacity",
                f"annual capacity {b0.capacity_units:,} < {el.capacity_multiple} x agreed volume ({need:,})",
                f"年产能 {b0.capacity_units:,} 低于约定采购量的 {el.capacity_multiple} 倍 ({need:,})",
            )
    for b in fbids:
        if (
            el.cap_by_national_highest_price
            and b.national_highest_price_fen
            and b.price_fen > b.national_highest_price_fen
        ):
            return (
                "above_national_highest",
                f"bid {b.bid_id} above the firm's highest price in China ({b.national_highest_price_fen} fen)",
                f"申报价高于其全国最高价 ({b.national_highest_price_fen} 分)",
            )
        if el.cap_by_reference_price and entry.reference_price_fen:
            spec = entry.spec(b.spec_id)
            if spec is not None and spec.representative and b.price_fen > entry.reference_price_fen:
                return (
                    "above_reference",
                    f"bid {b.bid_id} above the reference (4+7 winning) price {entry.reference_price_fen} fen",
                    f'申报价高于"4+7"中选价 ({entry.reference_price_fen} 分)',
                )
    return None


def _largest_cut(cands: list[_Cand], res: DrugResult) -> None:
    def cut(c: _Cand) -> Fraction:
        return Fraction(c.max_unit_e4 - c.unit_e4, c.max_unit_e4) if c.max_unit_e4 else Fraction(0)

    order = sorted(cands, key=lambda c: (-cut(c), c.key))
    for i, c in enumerate(order):
        o = c.outcome
        if i == 0:
            o.status, o.reason_code = "won", "won_largest_cut"
            o.reason_en, o.reason_zh = f"largest price cut ({float(cut(c)):.2%})", f"降幅最大 ({float(cut(c)):.2%})"
        else:
            o.reason_code = "not_largest_cut"
            o.reason_en, o.reason_zh = f"cut {float(cut(c)):.2%} is not the largest", f"降幅 {float(cut(c)):.2%} 非最大"
    res.eligible_n = res.qualified_n = res.effective_n = len(cands)
    res.max_winners = 1


def _negotiate(cands: list[_Cand], rules: RuleSet, res: DrugResult) -> None:
    res.procedure = "negotiation"
    need = Fraction(str(rules.consumables.negotiation_min_cut))
    for c in cands:
        o = c.outcome
        got = Fraction(c.max_unit_e4 - c.unit_e4, c.max_unit_e4) if c.max_unit_e4 else Fraction(0)
        if got >= need:
            o.status, o.reason_code = "won", "won_negotiation"
            o.reason_en, o.reason_zh = (
                f"negotiation: cut {float(got):.2%} >= {float(need):.2%}",
                f"议价: 降幅 {float(got):.2%} 达到 {float(need):.2%}",
            )
        else:
            o.reason_code = "negotiation_failed"
            o.reason_en, o.reason_zh = (
                f"negotiation: cut {float(got):.2%} < {float(need):.2%}",
                f"议价: 降幅 {float(got):.2%} 未达 {float(need):.2%}",
            )
    res.eligible_n = res.qualified_n = res.effective_n = len(cands)
    res.max_winners = len(cands)


def _revive(failed: list[_Cand], winners: list[_Cand], rules: RuleSet, res: DrugResult) -> None:
    """Batch 10 rule 2 (复活): a SHORTLISTED firm that failed rule 1 wins if it
    accepts the highest rule-1 winning price (or, with a single rule-1
    winner, ``single_winner_ratio`` x that winner's price).  ``failed`` holds
    only shortlisted firms (see :func:`_shortlist`): firms ranked below the
    shortlist cannot revive, so a revived firm never outranks a cheaper one."""
    rv = rules.selection.revival
    if not rv.enabled or not winners:
        return
    if len(winners) == 1 and rv.single_winner_ratio is not None:
        price = _half_up(Fraction(str(rv.single_winner_ratio)) * winners[0].outcome.comparable_e4)
        how_en, how_zh = (
            f"{rv.single_winner_ratio} x the single winner's price",
            f"唯一中选价的 {rv.single_winner_ratio} 倍",
        )
    else:
        price = max(w.outcome.comparable_e4 for w in winners)
        how_en, how_zh = "the highest rule-1 winning price", "规则一产生的最高拟中选价"
    for c in failed:
        o = c.outcome
        if c.bid.accept_revival:
            o.status, o.reason_code = "revived", "won_revival"
            o.award_comparable_e4 = min(price, o.comparable_e4)
            o.reason_en = f"shortlisted, failed the price tests but accepted {how_en} ({_e4(o.award_comparable_e4)})"
            o.reason_zh = f"入围但未满足规则一, 接受{how_zh} ({_e4(o.award_comparable_e4)}) 获拟中选资格"
        else:
            o.reason_en += f"; did not accept the revival price {_e4(price)}"
            o.reason_zh += f"; 未接受复活价 {_e4(price)}"


def _grouped(cands: list[_Cand], entry: CatalogEntry, rules: RuleSet, res: DrugResult, slot_group) -> None:
    """Guangdong A/B grouping by market volume."""
    g = rules.selection.grouping
    by_volume = sorted(cands, key=lambda c: (-c.bid.sales_volume, c.key))
    total = sum(c.bid.sales_volume for c in cands)
    need = Fraction(str(g.group_a_volume_share)) * total
    a_ids: set[str] = set()
    cum = 0
    for c in by_volume:
        if cum >= need and a_ids:
            break
        a_ids.add(c.outcome.firm_id)
        cum += c.bid.sales_volume
    A = [c for c in cands if c.outcome.firm_id in a_ids]
    B = [c for c in cands if c.outcome.firm_id not in a_ids]
    for c in A:
        c.outcome.group = "A"
    for c in B:
        c.outcome.group = "B"
    res.notes.append(
        f"group A: {len(A)} firms making up {float(Fraction(cum, max(total, 1))):.1%} of volume; group B: {len(B)}"
    )
    if len(A) <= g.group_a_no_elimination_up_to:
        for c in A:
            o = c.outcome
            o.status, o.reason_code = "won", "won_group_a_no_elimination"
            o.reason_en = f"group A has {len(A)} firms <= {g.group_a_no_elimination_up_to}: no elimination"
            o.reason_zh = f"A组企业 {len(A)} 家, 不超过 {g.group_a_no_elimination_up_to} 家, 不淘汰, 全部入围"
        a_win = A
        res.eligible_n += len(A)
        res.qualified_n += len(A)
        res.effective_n += len(A)
        res.max_winners += len(A)
    else:
        a_win, _failed = _shortlist(A, entry, rules, res, slot_group, label=", group A")
    top = max((c.outcome.comparable_e4 for c in a_win), default=None)
    for c in B:
        o = c.outcome
        if g.group_b_rule == "all_eligible" or (top is not None and o.comparable_e4 <= top):
            o.status, o.reason_code = "won", "won_group_b"
            o.reason_en = (
                "group B: price not above the highest group-A winner"
                if g.group_b_rule != "all_eligible"
                else "group B: eligible"
            )
            o.reason_zh = "B组: 报价不高于A组最高中选价" if g.group_b_rule != "all_eligible" else "B组: 符合资格"
        else:
            o.reason_code = "group_b_above_a"
            o.reason_en = (
                f"group B: unit comparable price {_e4(o.comparable_e4)} above the highest group-A winner "
                f"{_e4(top or 0)}"
            )
            o.reason_zh = f"B组: 单位可比价 {_e4(o.comparable_e4)} 高于A组最高中选价 {_e4(top or 0)}"


def _finish(res: DrugResult, entry: CatalogEntry, rules: RuleSet) -> DrugResult:
    n = sum(1 for o in res.outcomes if o.won)
    if rules.goods == "consumable":
        res.share_bp = ratio_to_bp(rules.consumables.volume_base_share) if n else 0
        res.cycle_years = rules.consumables.cycle_years if n else 0
    else:
        res.share_bp = ratio_to_bp(
            rules.share_for(
                n, antibiotic=entry.antibiotic, injectable=entry.injectable, sole_product=entry.sole_product
            )
        )
        res.cycle_years = rules.cycle_years_for(n, injectable=entry.injectable) if n else 0
    return res


# ---------------------------------------------------------------------------
# sanctions on firms that do not bid; national/alliance overlap


@dataclass(frozen=True)
class Sanction:
    firm_id: str
    drug_id: str
    kind: str  # delist | ban
    until: dt.date | None
    reason_en: str
    reason_zh: str


def non_bidder_sanctions(
    makers: Iterable[tuple[str, str, bool]], bids: Iterable[Bid], rules: RuleSet, round_date: dt.date
) -> list[Sanction]:
    """Firms that make a catalog drug but did not bid (甘陕联盟).

    ``makers``: (firm_id, drug_id, listed on the alliance's platforms).  A listed
    firm loses its listing (取消挂网资格); an unlisted one is barred from the
    alliance's procurement for ``non_bidder_ban_years``.
    """
    el = rules.eligibility
    bid_pairs = {(b.firm_id, b.drug_id) for b in bids}
    out = []
    for firm, drug, listed in makers:
        if (firm, drug) in bid_pairs:
            continue
        if listed and el.non_bidder_delisting:
            out.append(
                Sanction(
                    firm,
                    drug,
                    "delist",
                    None,
                    f"listed for {drug} but did not bid: listing withdrawn",
                    f"已挂网未申报 {drug}: 取消挂网资格",
                )
            )
        elif not listed and el.non_bidder_ban_years:
            until = round_date.replace(year=round_date.year + el.non_bidder_ban_years)
            out.append(
                Sanction(
                    firm,
                    drug,
                    "ban",
                    until,
                    f"not listed and did not bid for {drug}: barred until {until}",
                    f"未挂网且未申报 {drug}: {el.non_bidder_ban_years} 年内不接受其参加集采或挂网 (至 {until})",
                )
            )
    return out


def result_in_force(cycle_no: int, alliance: DrugResult, national: DrugResult | None, rules: RuleSet) -> DrugResult:
    """八省二区: where a national and an alliance result overlap, the alliance
    result holds for the first ``alliance_overlap_cycles`` cycles, the national one after.
    Without that rule (or without a national result) the alliance result holds."""
    k = rules.cycle.alliance_overlap_cycles
    if national is None or k is None or not national.winners:
        return alliance
    return alliance if cycle_no <= k else national


# ---------------------------------------------------------------------------
# supply regions


def allocate_regions(
    winners: list[BidderOutcome],
    region_units: dict[str, int],
    preferences: dict[str, tuple[str, ...]] | None = None,
    *,
    backup: bool = False,
) -> tuple[dict[str, str], dict[str, str]]:
    """Round-robin choice of supply regions (供应地区), then backup regions (备供).

    Winners choose in rank order (lowest price first), one region per turn,
    round after round, until every region is taken.  A winner takes its first
    remaining preference, else the remaining region with the largest demand
    (then the lowest code).  Backups: the same round robin over regions
    without a backup, never one of the chooser's own primary regions.
    """
    prefs = preferences or {}
    order = [w.firm_id for w in winners]
    primary: dict[str, str] = {}
    remaining = set(region_units)

    def pick(firm: str, pool: set[str]) -> str | None:
        for r in prefs.get(firm, ()):
            if r in pool:
                return r
        if not pool:
            return None
        return min(pool, key=lambda r: (-region_units[r], r))

    while remaining and order:
        for f in order:
            r = pick(f, remaining)
            if r is None:
                break
            primary[r] = f
            remaining.discard(r)
    backups: dict[str, str] = {}
    if backup and len(order) >= 2:
        todo = set(region_units)
        while todo:
            progressed = False
            for f in order:
                pool = {r for r in todo if primary[r] != f}
                r = pick(f, pool)
                if r is None:
                    continue
                backups[r] = f
                todo.discard(r)
                progressed = True
                if not todo:
                    break
            if not progressed:
                break
    return primary, backups


# ---------------------------------------------------------------------------
# the whole round


def run_round(
    inp: RoundInput,
    rules: RuleSet,
    *,
    credit_lookup: CreditLookup | None = None,
    slot_group: SlotGroup | None = None,
) -> RoundResult:
    """Evaluate every drug of a round, then volumes, regions and contracts."""
    demand = inp.demand
    bids_by_drug: dict[str, list[Bid]] = defaultdict(list)
    for b in inp.bids:
        bids_by_drug[b.drug_id].append(b)
    groups = _consumable_groups(inp.catalog, rules)
    base = demand.groupby("drug_id", sort=False)["units"].sum().to_dict() if len(demand) else {}
    region_units = (
        demand.groupby(["drug_id", "region"], sort=False)["units"].sum() if len(demand) else pd.Series(dtype="int64")
    )
    drugs: dict[str, DrugResult] = {}
    warnings: list[str] = []
    for gid, members in groups.items():
        entry = inp.catalog[members[0]] if len(members) == 1 else _merge_entries([inp.catalog[m] for m in members], gid)
        gbids = [b for m in members for b in bids_by_drug.get(m, [])]
        if len(members) > 1:
            gbids = [_rebid(b, gid) for b in gbids]
        res = evaluate_drug(
            entry,
            gbids,
            inp.firms,
            rules,
            round_date=inp.round_date,
            base_units=int(sum(base.get(m, 0) for m in members)),
            banned=inp.banned_firms,
            credit_lookup=credit_lookup,
            slot_group=slot_group,
        )
        winners = res.winners
        if winners:
            ru: dict[str, int] = {}
            for m in members:
                if m in region_units.index.get_level_values(0):
                    for r, u in region_units.loc[m].items():
                        ru[r] = ru.get(r, 0) + int(u)
            pref = {}
            for b in gbids:
                if b.region_preferences and b.firm_id not in pref:
                    pref[b.firm_id] = b.region_preferences
            res.primary, res.backup = allocate_regions(winners, ru, pref, backup=rules.supply.backup_regions)
        for m in members:
            drugs[m] = res if len(members) == 1 else _member_view(res, m)
    agreed, contracts = agreed_volumes(inp, rules, drugs)
    low = demand[
        (demand["historical_units"] > 0)
        & (demand["units"] * 10000 < demand["historical_units"] * ratio_to_bp(rules.volume.min_report_share))
    ]
    if len(low):
        warnings.append(
            f"{len(low)} demand lines report less than {rules.volume.min_report_share:.0%} of historical use "
            "(reason required)"
        )
    return RoundResult(inp.name, rules.id, drugs, agreed, contracts, warnings, inp.synthetic)


def _consumable_groups(catalog: dict[str, CatalogEntry], rules: RuleSet) -> dict[str, list[str]]:
    attrs = rules.consumables.grouping_attributes if rules.goods == "consumable" else ()
    if not attrs:
        return {d: [d] for d in catalog}
    out: dict[str, list[str]] = defaultdict(list)
    for d, e in catalog.items():
        a = dict(e.attributes)
        key = e.generic_name + "|" + "|".join(f"{k}={a.get(k, '')}" for k in attrs)
        out[key].append(d)
    return {members[0] if len(members) == 1 else k: members for k, members in out.items()}


def _merge_entries(entries: list[CatalogEntry], gid: str) -> CatalogEntry:
    from dataclasses import replace

    e0 = entries[0]
    specs = tuple(
        replace(s, drug_id=gid, representative=(i == 0 and s.representative))
        for i, e in enumerate(entries)
        for s in e.specs
    )
    return replace(e0, drug_id=gid, specs=specs, passed_consistency=max(e.passed_consistency for e in entries))


def _rebid(b: Bid, gid: str) -> Bid:
    from dataclasses import replace

    return replace(b, drug_id=gid)


def _member_view(res: DrugResult, drug_id: str) -> DrugResult:
    return res


def spec_price_fen(
    entry: CatalogEntry,
    spec: Spec,
    firm_id: str,
    award_e4: int,
    bids: dict[tuple[str, str], Bid],
    rules: RuleSet,
    own_comparable: int,
) -> int:
    """The contract pack price of ``spec`` for a winner: its own bid, or derived by 差比价.

    A revived winner supplies at the revival price, carried to each spec.
    """
    b = bids.get((firm_id, spec.spec_id))
    if b is not None and award_e4 >= own_comparable:
        return b.price_fen
    f = conversion_factor(spec, entry.representative, rules)
    unit = _half_up(Decimal(award_e4) / f)
    return _half_up(Fraction(unit * spec.units_per_pack, E4_PER_FEN))


def agreed_volumes(inp: RoundInput, rules: RuleSet, drugs: dict[str, DrugResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Agreed volume per demand line (institution × spec) and its supplier; contracts.

    ``agreed_units = reported × share`` rounded half up.  The region's primary
    supplier takes it; with brand reporting (batch 11) a winning brand
    supplies the institutions that named it directly.
    """
    d = inp.demand
    if not len(d):
        empty = d.assign(supplier="", share_bp=0, agreed_units=0)
        return empty, pd.DataFrame(
            columns=[
                "institution_id",
                "region",
                "drug_id",
                "spec_id",
                "supplier",
                "agreed_units",
                "price_fen",
                "amount_fen",
            ]
        )
    # strings become integer codes once; every step after is NumPy on int64
    drug_c, drug_u = pd.factorize(d["drug_id"], sort=False)
    reg_c, reg_u = pd.factorize(d["region"], sort=False)
    share_bp = np.array([drugs[x].share_bp if x in drugs else 0 for x in drug_u], dtype=np.int64)[drug_c]
    units = d["units"].to_numpy(dtype="int64")
    agreed_units = (units * share_bp + 5000) // 10000
    firm_names = [""] + sorted(
        {f for v in drugs.values() for f in v.primary.values()}
        | {o.firm_id for v in drugs.values() for o in v.outcomes if o.won}
    )
    firm_code = {f: i for i, f in enumerate(firm_names)}
    prim_tab = np.zeros((len(drug_u), len(reg_u)), dtype=np.int64)
    reg_index = {r: i for i, r in enumerate(reg_u)}
    for di, x in enumerate(drug_u):
        if x in drugs:
            for r, f in drugs[x].primary.items():
                if r in reg_index:
                    prim_tab[di, reg_index[r]] = firm_code[f]
    sup_c = prim_tab[drug_c, reg_c]
    if rules.volume.brand_direct_supply and "brand_firm_id" in d:
        brand_c, brand_u = pd.factorize(d["brand_firm_id"], sort=False)
        win_tab = np.zeros((len(drug_u), len(brand_u)), dtype=np.int64)
        for di, x in enumerate(drug_u):
            if x in drugs:
                won = {o.firm_id for o in drugs[x].outcomes if o.won}
                for bi, b in enumerate(brand_u):
                    if b and b in won:
                        win_tab[di, bi] = firm_code[b]
        direct = win_tab[drug_c, brand_c]
        sup_c = np.where(direct > 0, direct, sup_c)
    names = np.array(firm_names, dtype=object)
    agreed = d.assign(
        # pandas-stubs type categories as an Index only; pandas documents any index-like (here a list)
        supplier=pd.Categorical.from_codes(sup_c, firm_names),  # type: ignore[call-overload]
        share_bp=share_bp,
        agreed_units=agreed_units,
    )
    # contracts: sum agreed units per institution × region × spec × supplier (sort + reduceat, exact int64)
    inst_c, _ = pd.factorize(d["institution_id"], sort=False)
    spec_c, spec_u = pd.factorize(d["spec_id"], sort=False)
    keep = np.flatnonzero(sup_c > 0)
    ns, nf = len(spec_u), len(firm_names)
    key = ((inst_c[keep].astype(np.int64) * len(reg_u) + reg_c[keep]) * ns + spec_c[keep]) * nf + sup_c[keep]
    order = keep[np.argsort(key, kind="stable")]
    skey = np.sort(key, kind="stable")
    starts = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]]) if len(skey) else np.array([], dtype=np.int64)
    au = np.add.reduceat(agreed_units[order], starts) if len(starts) else np.array([], dtype=np.int64)
    first = order[starts]
    bids = {(b.firm_id, b.spec_id): b for b in inp.bids}
    award = {
        (k, o.firm_id): (o.award_comparable_e4, o.comparable_e4) for k, v in drugs.items() for o in v.outcomes if o.won
    }
    pair = spec_c[first].astype(np.int64) * nf + sup_c[first]
    upair, pinv = np.unique(pair, return_inverse=True)
    pprice = np.zeros(len(upair), dtype=np.int64)
    pupp = np.ones(len(upair), dtype=np.int64)
    spec_drug = {s.spec_id: e.drug_id for e in inp.catalog.values() for s in e.specs}
    for i, pk in enumerate(upair):
        spec_id, firm = spec_u[pk // nf], firm_names[pk % nf]
        drug_id = spec_drug[spec_id]
        entry = inp.catalog[drug_id]
        spec = entry.spec(spec_id)
        assert spec is not None  # every contract line is of a specification in the catalog
        aw, own = award[(drug_id, firm)]
        pprice[i], pupp[i] = spec_price_fen(entry, spec, firm, aw, bids, rules, own), spec.units_per_pack
    prices, upp = pprice[pinv], pupp[pinv]
    amount = (2 * au * prices + upp) // (2 * upp)  # units × pack price / units per pack, half up
    pick = {c: d[c].take(first).reset_index(drop=True) for c in ("institution_id", "region", "drug_id", "spec_id")}
    contracts = pd.DataFrame(
        {
            **pick,
            "supplier": pd.Series(names[sup_c[first]], dtype=pick["drug_id"].dtype),
            "agreed_units": au.astype(np.int64),
            "price_fen": prices,
            "units_per_pack": upp,
            "amount_fen": amount.astype(np.int64),
        }
    )
    return agreed, contracts
