"""Settle one claim: the pure scalar rule function.

No I/O here.  The caller supplies the person-year accumulators and the
account balance; the function returns every share under the national field
names plus the accumulator *deltas* it implies.  The persistence service
applies those deltas in the same transaction as the settlement row, and a
cancellation applies their negation.

All layers use the same *cumulative* formulation as the vectorised batch
path (:mod:`yibao.settlement.batch`): a deductible or cap is a clipped
running sum over the person-year, so that settling claims one at a time and
settling a year at once give the same fen.

Order of the layers (三重保障):

1. line level: fully self-paid (全自费: 丙类, outside the restricted scope,
   items self-paid in the category), over the price cap (超限价), the 乙类
   self-pay-first share (先行自付), and the in-policy rest (符合政策范围);
2. pooled fund (统筹基金): deductible, ratio, cost cap, annual cap;
3. supplementary layers: large-amount subsidy, critical illness, civil-servant subsidy;
4. medical assistance (医疗救助);
5. personal account (个人账户), own or a relative's (家庭共济);
6. cash.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from yibao.benefits import maternity
from yibao.benefits.model import AccountRule, CategoryRule, Layer, PolicySnapshot, Scheme
from yibao.core.contract import CLASS_B, CLASS_C, INSUTYPE_EMPLOYEE, PSN_TYPE_RETIRED, is_cross_province
from yibao.core.errors import ClaimRejected
from yibao.core.money import BP_SCALE, NO_CAP, apply_rate
from yibao.longrx.eligibility import check_long_rx_diseases
from yibao.settlement.catalog import Catalog, ListItem

AccumKey = tuple[str, str]  # (kind, period)


@dataclass(frozen=True, slots=True)
class PersonFacts:
    psn_no: str
    insutype: str  # 310 employee / 390 resident
    psn_type: str  # in_service / retired / resident
    gend: str
    brdy: dt.date
    insuplc_admdvs: str
    assistance: str = ""
    civil_servant: bool = False


@dataclass(frozen=True, slots=True)
class FeeLine:
    feedetl_sn: int
    med_list_codg: str
    cnt_milli: int  # quantity × 1000
    pric: int  # fen per unit
    det_item_fee_sumamt: int  # fen
    rxno: str = ""
    prd_days: int = 0
    rx_circ_flag: bool = False
    # the quantity and unit price exactly as the interface received them, when finer than
    # thousandths / fen: (cnt × 10⁴, pric in millionths of a yuan).  Then the line total and the
    # price-cap excess are computed from these (``cnt_milli`` / ``pric`` are their roundings).
    exact: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class PayerFacts:
    """The account that pays a claim through family mutual aid (家庭共济)."""

    psn_no: str
    insutype: str
    relation: str  # what the payer is to the patient: spouse / parent / child


@dataclass(frozen=True, slots=True)
class Claim:
    mdtrt_id: str
    person: PersonFacts
    fixmedins_code: str
    hosp_lv: int
    med_type: str
    begntime: dt.datetime
    setl_time: dt.datetime
    dise_codg: str
    lines: tuple[FeeLine, ...]
    other_dise_codg: tuple[str, ...] = ()
    mdtrtarea_admvs: str = ""  # place of treatment; '' = the insured place
    mulaid_payer: PayerFacts | None = None
    lt_rx_confirmed: bool = False
    cross_filed: bool = True  # 异地就医备案

    @property
    def policy_year(self) -> int:
        return self.setl_time.year

    @property
    def is_cross_province(self) -> bool:
        return is_cross_province(self.person.insuplc_admdvs, self.mdtrtarea_admvs)


@dataclass
class Settlement:
    """The shares of one claim (fen), named as in the national interface."""

    medfee_sumamt: int = 0
    fulamt_ownpay_amt: int = 0
    overlmt_selfpay: int = 0
    preselfpay_amt: int = 0
    inscp_scp_amt: int = 0
    act_pay_dedc: int = 0
    hifp_pay: int = 0
    hifmi_pay: int = 0
    hifob_pay: int = 0
    cvlserv_pay: int = 0
    maf_pay: int = 0
    hifes_pay: int = 0
    oth_pay: int = 0
    hosp_part_amt: int = 0
    fund_pay_sumamt: int = 0
    psn_part_amt: int = 0
    acct_pay: int = 0
    acct_mulaid_pay: int = 0
    psn_cash_pay: int = 0
    pool_prop_selfpay_bp: int = 0
    category: str = ""
    acct_payer_psn_no: str = ""
    accum_delta: dict[AccumKey, int] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)

    AMOUNTS = (
        "medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
        "act_pay_dedc", "hifp_pay", "hifmi_pay", "hifob_pay", "cvlserv_pay", "maf_pay", "hifes_pay",
        "oth_pay", "hosp_part_amt", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "acct_mulaid_pay",
        "psn_cash_pay",
    )  # fmt: skip

    def amounts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.AMOUNTS}

    def check(self) -> None:
        """Invariants every settlement keeps (raise AssertionError otherwise)."""
        a = self.amounts()
        assert all(v >= 0 for v in a.values()), a
        assert (
            a["fulamt_ownpay_amt"] + a["overlmt_selfpay"] + a["preselfpay_amt"] + a["inscp_scp_amt"]
            == a["medfee_sumamt"]
        )
        funds = (
            a["hifp_pay"]
            + a["hifmi_pay"]
            + a["hifob_pay"]
            + a["cvlserv_pay"]
            + a["maf_pay"]
            + a["hifes_pay"]
            + a["oth_pay"]
        )
        assert funds == a["fund_pay_sumamt"]
        assert a["fund_pay_sumamt"] + a["psn_part_amt"] == a["medfee_sumamt"]
        assert a["acct_pay"] + a["acct_mulaid_pay"] + a["psn_cash_pay"] == a["psn_part_amt"]
        assert a["fund_pay_sumamt"] <= a["inscp_scp_amt"]


# --- helpers shared in spirit with the batch path ---------------------------


def age_on(brdy: dt.date, on: dt.date) -> int:
    """Completed years of age on a date."""
    return on.year - brdy.year - ((on.month, on.day) < (brdy.month, brdy.day))


def matches_prefix(codes: tuple[str, ...], prefixes: tuple[str, ...]) -> bool:
    return any(c.startswith(p) for c in codes if c for p in prefixes)


def classify_category(snap: PolicySnapshot, med_type: str, diagnoses: tuple[str, ...]) -> str:
    """Benefit category of a claim from its med_type and, for 慢特病, its diagnosis."""
    setting = snap.med_types.get(med_type)
    if setting is None:
        raise ClaimRejected(
            f"unknown med_type {med_type!r}; this policy knows {sorted(snap.med_types)}",
            f"医疗类别 {med_type!r} 无效",
            field="med_type",
        )
    if setting == "chronic":
        principal = diagnoses[:1]
        if matches_prefix(principal, snap.chronic_diseases.get("special", ())):
            return "special"
        if matches_prefix(principal, snap.chronic_diseases.get("chronic", ())):
            return "chronic"
        raise ClaimRejected(
            f"diagnosis {diagnoses[0] if diagnoses else ''!r} is not a recognised chronic or special disease",
            f"诊断 {diagnoses[0] if diagnoses else ''!r} 不属于门诊慢特病病种",
            field="dise_codg",
        )
    if setting == "maternity":
        return maternity.category_for(setting)
    return setting


def line_amount(cnt_milli: int, pric: int) -> int:
    """Line total in fen: quantity × price, rounded half up."""
    return (cnt_milli * pric + 500) // 1000


def exact_line_amount(cnt_e4: int, pric_e6: int) -> int:
    """Line total in fen from cnt × 10⁴ and pric in millionths of a yuan: cnt × pric rounded half up to the fen."""
    return (cnt_e4 * pric_e6 + 50_000_000) // 100_000_000


def line_total(ln: FeeLine) -> int:
    """What ``det_item_fee_sumamt`` must be: cnt × pric rounded half up to the fen (exact when given)."""
    return exact_line_amount(*ln.exact) if ln.exact is not None else line_amount(ln.cnt_milli, ln.pric)


def over_cap(ln: FeeLine, cap: int) -> int:
    """The part of a line above the price cap ``cap`` (fen per unit): amount − cnt × cap, rounded half up."""
    if ln.exact is not None:
        cnt_e4, pric_e6 = ln.exact
        return ln.det_item_fee_sumamt - (cnt_e4 * cap + 5_000) // 10_000 if pric_e6 > cap * 10_000 else 0
    return ln.det_item_fee_sumamt - line_amount(ln.cnt_milli, cap) if ln.pric > cap else 0


def validate_claim(claim: Claim, catalog: Catalog) -> None:
    """Structural checks: each failure names the field, nothing is settled."""
    if not claim.lines:
        raise ClaimRejected("a claim needs at least one fee line", "结算须至少包含一条费用明细", field="feedetail")
    if claim.setl_time < claim.begntime:
        raise ClaimRejected(
            f"settlement time {claim.setl_time} is before the encounter began {claim.begntime}",
            "结算时间早于就诊开始时间",
            field="setl_time",
        )
    if claim.hosp_lv not in (0, 1, 2, 3):
        raise ClaimRejected(f"institution level {claim.hosp_lv} is not 0..3", "医疗机构等级无效", field="hosp_lv")
    seen: set[int] = set()
    for ln in claim.lines:
        if ln.feedetl_sn in seen:
            raise ClaimRejected(
                f"duplicate feedetl_sn {ln.feedetl_sn}", f"费用明细流水号 {ln.feedetl_sn} 重复", field="feedetl_sn"
            )
        seen.add(ln.feedetl_sn)
        if ln.cnt_milli <= 0:
            raise ClaimRejected(
                f"line {ln.feedetl_sn}: quantity must be positive", f"明细 {ln.feedetl_sn}: 数量必须为正数", field="cnt"
            )
        if ln.pric < 0:
            raise ClaimRejected(
                f"line {ln.feedetl_sn}: negative price", f"明细 {ln.feedetl_sn}: 单价不能为负", field="pric"
            )
        if ln.det_item_fee_sumamt != line_total(ln):
            raise ClaimRejected(
                f"line {ln.feedetl_sn}: det_item_fee_sumamt {ln.det_item_fee_sumamt} fen ≠ cnt × pric "
                f"= {line_total(ln)} fen",
                f"明细 {ln.feedetl_sn}: 明细项目费用总额与数量×单价不符",
                field="det_item_fee_sumamt",
            )
        if ln.prd_days < 0:
            raise ClaimRejected(
                f"line {ln.feedetl_sn}: negative prd_days", f"明细 {ln.feedetl_sn}: 周期天数不能为负", field="prd_days"
            )
        if ln.med_list_codg not in catalog:
            raise ClaimRejected(
                f"line {ln.feedetl_sn}: unknown med_list_codg {ln.med_list_codg!r}",
                f"明细 {ln.feedetl_sn}: 医保目录编码 {ln.med_list_codg!r} 不存在",
                field="med_list_codg",
            )


def check_long_term_prescription(claim: Claim, snap: PolicySnapshot, catalog: Catalog) -> None:
    """长期处方: ≤ normal days freely, ≤ max days with confirmation, never for excluded classes."""
    rule = snap.long_term_prescription
    diagnoses = (claim.dise_codg, *claim.other_dise_codg)
    for ln in claim.lines:
        item = catalog[ln.med_list_codg]
        if not item.is_drug or ln.prd_days <= rule.long_rx_over_days:
            continue
        if ln.prd_days > rule.max_days:
            raise ClaimRejected(
                f"line {ln.feedetl_sn}: prescription of {ln.prd_days} days exceeds "
                f"the long-term maximum of {rule.max_days} days",
                f"明细 {ln.feedetl_sn}: 处方用药 {ln.prd_days} 天, 超过长期处方最长 {rule.max_days} 天",
                field="prd_days",
            )
        if ln.prd_days > rule.normal_max_days and not claim.lt_rx_confirmed:
            raise ClaimRejected(
                f"line {ln.feedetl_sn}: prescription of {ln.prd_days} days (> {rule.normal_max_days}) "
                "needs an evaluation note and the patient's confirmation",
                f"明细 {ln.feedetl_sn}: 超过 {rule.normal_max_days} 天的长期处方须注明理由并经患者确认",
                field="lt_rx_confirmed",
            )
        if item.drug_class in rule.excluded_classes:
            allowed = rule.exceptions.get(item.drug_class, ())
            if not matches_prefix(diagnoses, allowed):
                raise ClaimRejected(
                    f"line {ln.feedetl_sn}: {item.name} ({item.drug_class}) "
                    "may not be given as a long-term prescription",
                    f"明细 {ln.feedetl_sn}: {item.name} 属于不得开具长期处方的药品类别 ({item.drug_class})",
                    field="med_list_codg",
                )


def within_scope(item: ListItem, claim: Claim, age: int, diagnoses: tuple[str, ...]) -> bool:
    """限定支付范围: sex, age, institution level, indication, med_type."""
    if item.lmt_gend and item.lmt_gend != claim.person.gend:
        return False
    if item.lmt_age_min >= 0 and age < item.lmt_age_min:
        return False
    if item.lmt_age_max >= 0 and age > item.lmt_age_max:
        return False
    if item.lmt_hosp_lv_min > 0 and claim.hosp_lv < item.lmt_hosp_lv_min:
        return False
    if item.lmt_indication and not matches_prefix(diagnoses, item.lmt_indication):
        return False
    if item.lmt_med_types and claim.med_type not in item.lmt_med_types:
        return False
    return True


def split_lines(claim: Claim, catalog: Catalog, cat: CategoryRule) -> tuple[int, int, int, int, int, int]:
    """Line-level split: (medfee, fulamt, overlmt, preselfpay, inscp, acct_excluded part of fulamt)."""
    age = age_on(claim.person.brdy, claim.setl_time.date())
    diagnoses = (claim.dise_codg, *claim.other_dise_codg)
    medfee = fulamt = overlmt = presel = inscp = excl = 0
    for ln in claim.lines:
        item = catalog[ln.med_list_codg]
        amt = ln.det_item_fee_sumamt
        medfee += amt
        if item.acct_excluded:
            fulamt += amt
            excl += amt
            continue
        if (
            item.chrgitm_lv == CLASS_C
            or ln.med_list_codg in cat.selfpay_items
            or not within_scope(item, claim, age, diagnoses)
        ):
            fulamt += amt
            continue
        cap = item.effective_cap
        over = over_cap(ln, cap) if cap else 0
        allowed = amt - over
        pre = apply_rate(allowed, item.selfpay_prop_bp) if item.chrgitm_lv == CLASS_B else 0
        overlmt += over
        presel += pre
        inscp += allowed - pre
    return medfee, fulamt, overlmt, presel, inscp, excl


def bracket_sum(e: int, layer: Layer, bonus_bp: int) -> int:
    """Marginal scale S(e): Σ rate_i × (part of e in bracket i), each part rounded half up."""
    total = 0
    br = layer.brackets
    for i, b in enumerate(br):
        hi = br[i + 1].threshold if i + 1 < len(br) else None
        part = e - b.threshold
        if part <= 0:
            break
        if hi is not None:
            part = min(part, hi - b.threshold)
        total += apply_rate(part, min(BP_SCALE, b.rate + bonus_bp))
    return total


def home_bed_period(claim: Claim, cat: CategoryRule) -> str:
    """The settlement cycle a claim falls in (per_cycle categories)."""
    days = (claim.setl_time.date() - claim.begntime.date()).days
    return f"{claim.mdtrt_id}#{days // (cat.cycle_days or 1)}"  # no cycle length: one cycle a day, as the batch path


def layer_applies(layer: Layer, category: str, person: PersonFacts) -> bool:
    if category not in layer.applies_to:
        return False
    if layer.requires == "civil_servant" and not person.civil_servant:
        return False
    return True


def pool_ratio(snap_benefit: PolicySnapshot, cat: CategoryRule, claim: Claim) -> int:
    r = cat.ratio.get(claim.hosp_lv) if _has_level(cat, claim.hosp_lv) else 0
    if claim.person.psn_type == PSN_TYPE_RETIRED:
        r += cat.retiree_ratio_bonus
    if claim.is_cross_province:
        cp = snap_benefit.cross_province
        r -= cp.filed_ratio_reduction if claim.cross_filed else cp.unfiled_ratio_reduction
    return max(0, min(BP_SCALE, r))


def _has_level(cat: CategoryRule, level: int) -> bool:
    try:
        cat.ratio.get(level)
        return True
    except KeyError:
        return False


class _Ledger:
    """One claim's view of the person-year accumulators: values before it, and the changes it makes."""

    def __init__(self, accum: dict[AccumKey, int]):
        self.accum = accum
        self.delta: dict[AccumKey, int] = {}

    def get(self, key: AccumKey) -> int:
        return self.accum.get(key, 0)

    def add(self, key: AccumKey, v: int) -> None:
        if v:
            self.delta[key] = self.delta.get(key, 0) + v


def settle_claim(
    claim: Claim,
    benefit: PolicySnapshot,
    catalog: Catalog,
    accum: dict[AccumKey, int],
    account_balance: int | None = None,
    listing: PolicySnapshot | None = None,
) -> Settlement:
    """Settle one claim against the person-year accumulators.

    ``benefit`` is the insured place's policy (参保地政策); ``listing`` the
    place of treatment's (就医地目录), which defaults to ``benefit``.
    ``account_balance`` is the paying account's balance (the patient's own,
    or the mutual-aid payer's), or None when there is no account.
    Raises :class:`ClaimRejected` for bad input; then nothing is to be written.
    """
    listing = listing or benefit
    catalog = catalog.with_overrides(listing.list_overrides)
    validate_claim(claim, catalog)
    check_long_term_prescription(claim, benefit, catalog)
    check_long_rx_diseases(claim, benefit, catalog)  # 长期处方适用病种 (yibao.longrx)
    diagnoses = (claim.dise_codg, *claim.other_dise_codg)
    category = classify_category(benefit, claim.med_type, diagnoses)
    scheme = benefit.scheme_for(claim.person.insutype)
    cat = scheme.categories[category]
    s = Settlement(category=category)
    led = _Ledger(accum)

    medfee, fulamt, overlmt, presel, inscp, excl = split_lines(claim, catalog, cat)
    s.medfee_sumamt, s.fulamt_ownpay_amt, s.overlmt_selfpay = medfee, fulamt, overlmt
    s.preselfpay_amt, s.inscp_scp_amt = presel, inscp
    led.add((f"visits:{category}", ""), 1)

    period = home_bed_period(claim, cat) if cat.deductible_mode == "per_cycle" else ""
    s.act_pay_dedc = _deductible(claim, cat, category, inscp, period, led, s)
    overflow = _pooled_fund(benefit, scheme, cat, category, claim, inscp - s.act_pay_dedc, period, led, s)
    paid_layers = _supplementary_layers(scheme, category, claim, inscp, overflow, led, s)
    _medical_assistance(benefit, category, claim, inscp - s.hifp_pay - paid_layers, led, s)

    s.fund_pay_sumamt = s.hifp_pay + s.hifmi_pay + s.hifob_pay + s.cvlserv_pay + s.maf_pay + s.hifes_pay + s.oth_pay
    s.psn_part_amt = medfee - s.fund_pay_sumamt

    # -- personal account, own or mutual aid ---------------------------------
    acct_rule = benefit.schemes["employee"].account
    payer_no = _account_payer(claim, acct_rule)
    pay_acct = 0
    if payer_no and account_balance is not None and acct_rule is not None and category in acct_rule.categories:
        comps = {
            "inscp_selfpay": inscp - s.fund_pay_sumamt,
            "preselfpay": presel,
            "fulamt_ownpay": fulamt - excl,
            "overlmt_selfpay": overlmt,
        }
        want = sum(comps[c] for c in acct_rule.payable)
        pay_acct = max(0, min(account_balance, want))
    if claim.mulaid_payer is not None:
        s.acct_mulaid_pay = pay_acct
    else:
        s.acct_pay = pay_acct
    s.acct_payer_psn_no = payer_no
    s.psn_cash_pay = s.psn_part_amt - pay_acct
    s.accum_delta = led.delta
    return s


def _deductible(
    claim: Claim, cat: CategoryRule, category: str, inscp: int, period: str, led: _Ledger, s: Settlement
) -> int:
    """Pooled fund deductible (起付线): per admission, or per year / cycle as a running sum."""
    lv = claim.hosp_lv
    if cat.deductible_mode == "per_admission":
        prior = led.get(("admissions", ""))
        table = cat.repeat_deductible if (prior >= 1 and cat.repeat_deductible is not None) else cat.deductible
        d = table.get(lv) if _level_known(table, lv) else 0
        led.add(("admissions", ""), 1)
        s.trace.append(f"deductible per admission #{prior + 1}: {d} fen")
        return min(d, inscp)
    if cat.deductible_mode in ("per_year", "per_cycle"):
        key = (f"ded:{cat.deductible_group or category}", period)
        d = cat.deductible.get(lv) if _level_known(cat.deductible, lv) else 0
        prev = led.get(key)
        led.add(key, inscp)
        s.trace.append(f"deductible {d} fen per {'cycle' if period else 'year'}, used before {min(d, prev)}")
        return min(d, prev + inscp) - min(d, prev)
    return 0


def _pooled_fund(
    benefit: PolicySnapshot,
    scheme: Scheme,
    cat: CategoryRule,
    category: str,
    claim: Claim,
    elig: int,
    period: str,
    led: _Ledger,
    s: Settlement,
) -> int:
    """Pooled fund (统筹基金) after the deductible: cost cap, ratio, annual cap.

    Sets ``hifp_pay`` and the ratio; returns the eligible cost above the annual cap (what overflow layers take).
    """
    if cat.cost_cap is not None:
        key = (f"cost:{category}", period)
        prev = led.get(key)
        elig_capped = min(cat.cost_cap, prev + elig) - min(cat.cost_cap, prev)
        led.add(key, elig)
    else:
        elig_capped = elig
    ratio = pool_ratio(benefit, cat, claim)
    s.pool_prop_selfpay_bp = ratio
    fund_unc = apply_rate(elig_capped, ratio)
    if cat.cap_pool is not None:
        cap = scheme.caps[cat.cap_pool]
        key = (f"fund:{cat.cap_pool}", "")
        prev = led.get(key)
        hifp = min(cap, prev + fund_unc) - min(cap, prev)
        led.add(key, fund_unc)
    else:
        hifp = fund_unc
    s.hifp_pay = hifp
    s.trace.append(f"pooled fund ratio {ratio / 100:.2f}% → {hifp} fen")
    return 0 if hifp == fund_unc else elig_capped - min(elig_capped, (hifp * BP_SCALE) // ratio)


def _supplementary_layers(
    scheme: Scheme, category: str, claim: Claim, inscp: int, overflow: int, led: _Ledger, s: Settlement
) -> int:
    """Supplementary layers (大病保险, 大额补助 …) in file order, each on what is left; returns their sum."""
    paid_layers = 0
    for layer in scheme.layers:
        if not layer_applies(layer, category, claim.person):
            continue
        left = inscp - s.hifp_pay - paid_layers
        b = left if layer.base == "selfpay" else min(overflow, left)
        pov = layer.poverty
        if pov is not None and claim.person.assistance not in pov.statuses:
            pov = None  # 困难群众倾斜 only for the listed statuses
        d = apply_rate(layer.deductible, pov.deductible_factor) if pov else layer.deductible
        bonus = pov.ratio_bonus if pov else 0
        cap = NO_CAP if (pov and pov.no_cap) else layer.cap
        kb, kp = (f"layer_base:{layer.name}", ""), (f"layer_pay:{layer.name}", "")
        bprev = led.get(kb)
        u = bracket_sum(max(0, bprev + b - d), layer, bonus) - bracket_sum(max(0, bprev - d), layer, bonus)
        uprev = led.get(kp)
        pay = min(cap, uprev + u) - min(cap, uprev)
        led.add(kb, b)
        led.add(kp, u)
        setattr(s, layer.field, getattr(s, layer.field) + pay)
        paid_layers += pay
        if pay:
            s.trace.append(f"{layer.name}: deductible {d}, +{bonus}bp → {pay} fen")
    return paid_layers


def _medical_assistance(
    benefit: PolicySnapshot, category: str, claim: Claim, left: int, led: _Ledger, s: Settlement
) -> None:
    """Medical assistance (医疗救助) on the in-policy self-pay ``left`` after the funds; sets ``maf_pay``."""
    status = benefit.assistance.statuses.get(claim.person.assistance) if claim.person.assistance else None
    if status is None or category not in benefit.assistance.applies_to:
        return
    kb, kp = ("maf_base", ""), ("maf_pay", "")
    bprev = led.get(kb)
    e = max(0, bprev + left - status.deductible) - max(0, bprev - status.deductible)
    u = apply_rate(e, status.ratio)
    uprev = led.get(kp)
    maf = min(status.cap, uprev + u) - min(status.cap, uprev)
    led.add(kb, left)
    led.add(kp, u)
    s.maf_pay = maf
    if maf:
        s.trace.append(f"medical assistance ({claim.person.assistance}) {status.ratio / 100:.0f}% → {maf} fen")


def _account_payer(claim: Claim, acct_rule: AccountRule | None) -> str:
    """Whose personal account pays: the mutual-aid payer (checked), the employee patient, or nobody ('')."""
    payer = claim.mulaid_payer
    if payer is None:
        return claim.person.psn_no if (claim.person.insutype == INSUTYPE_EMPLOYEE and acct_rule is not None) else ""
    if payer.psn_no == claim.person.psn_no:
        raise ClaimRejected(
            "the mutual-aid payer is the patient", "共济支付人不能是患者本人", field="mulaid_payer_psn_no"
        )
    if acct_rule is None or payer.relation not in acct_rule.mutual_aid_relations:
        raise ClaimRejected(
            f"relation {payer.relation!r} may not pay through family mutual aid",
            f"关系 {payer.relation!r} 不在家庭共济范围内",
            field="mulaid_payer_psn_no",
        )
    if payer.insutype != INSUTYPE_EMPLOYEE:
        raise ClaimRejected(
            "only an employee's personal account can pay for relatives",
            "共济账户须为职工个人账户",
            field="mulaid_payer_psn_no",
        )
    return payer.psn_no


def _level_known(table, lv: int) -> bool:
    try:
        table.get(lv)
        return True
    except KeyError:
        return False


def monthly_account_credit(snap: PolicySnapshot, insutype: str, psn_type: str, contribution_base: int) -> int:
    """Monthly personal-account credit (fen): 2 % of the base in service, a fixed sum retired."""
    rule = snap.schemes["employee"].account
    if insutype != INSUTYPE_EMPLOYEE or rule is None:
        return 0
    if psn_type == PSN_TYPE_RETIRED:
        return rule.retiree_monthly_credit
    return apply_rate(max(0, contribution_base), rule.in_service_credit_rate)
