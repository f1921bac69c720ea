"""Settle millions of claims at once: the vectorised batch path.

Same rules as :func:`yibao.settlement.rules.settle_claim`, in the same claim
order, with person-year accumulators computed as clipped running sums
(grouped cumulative sums) instead of a Python loop.  Property tests
(``tests/test_settlement_agreement.py``) show the two paths agree to the fen.

Claim order is ``setl_time``, then input order.  Claims that the scalar
path would reject are returned in a ``rejected`` table with the same
reason, and take no part in the accumulators.

All arithmetic is int64 fen / basis points; nothing passes through float.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from yibao.benefits.model import PolicySnapshot
from yibao.benefits.policy import Policy, PolicyBook
from yibao.core.contract import (
    CLASS_B,
    CLASS_C,
    INSUTYPE_EMPLOYEE,
    PSN_TYPE_RETIRED,
    SETTLEMENT,
    TIMEZONE,
)
from yibao.core.money import BP_SCALE, NO_CAP
from yibao.settlement.catalog import Catalog
from yibao.settlement.rules import monthly_account_credit

I64 = np.int64


def _rate(x: np.ndarray, bp: np.ndarray | int) -> np.ndarray:
    """Half-up ``x × bp / 10000`` on int64 (x ≥ 0), as money.apply_rate."""
    return (x * bp + 5000) // BP_SCALE


def _prev_cumsum(key: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exclusive running sum of ``values`` within groups of equal ``key``, in array order.

    Returns (sum before each row, stable order used).  Rows are already in
    claim order, so a stable sort by key keeps claim order inside a group.
    """
    order = np.argsort(key, kind="stable")
    k = key[order]
    v = values[order]
    cs = np.cumsum(v)
    start = np.ones(len(k), dtype=bool)
    start[1:] = k[1:] != k[:-1]
    base = np.maximum.accumulate(np.where(start, np.arange(len(k)), 0))
    before = cs - v - (cs[base] - v[base])
    out = np.empty_like(before)
    out[order] = before
    return out, order


def _prefix_match(codes: np.ndarray, prefixes: tuple[str, ...]) -> np.ndarray:
    """Vectorised ``any(code.startswith(p))`` over unique values."""
    if not prefixes:
        return np.zeros(len(codes), dtype=bool)
    uniq, inv = np.unique(codes.astype(str), return_inverse=True)
    hit = np.array([any(u.startswith(p) for p in prefixes) for u in uniq], dtype=bool)
    return hit[inv]


def _diag_prefix_any(principal: np.ndarray, others: np.ndarray, prefixes: tuple[str, ...]) -> np.ndarray:
    m = _prefix_match(principal, prefixes)
    if others is not None and len(prefixes):
        uniq, inv = np.unique(others.astype(str), return_inverse=True)
        hit = np.array(
            [any(c.startswith(p) for c in u.split(";") if c for p in prefixes) for u in uniq], dtype=bool
        )
        m |= hit[inv]
    return m


@dataclass
class BatchResult:
    settlements: pa.Table  # contract SETTLEMENT schema (accepted claims, in claim order)
    rejected: pd.DataFrame  # mdtrt_id, field, reason_en, reason_zh
    accumulators: pd.DataFrame  # psn_no, policy_year, kind, period, value (final state)
    acct_payer: np.ndarray  # payer psn_no per settlement row ('' none)


class _Reject:
    def __init__(self, n: int):
        self.bad = np.zeros(n, dtype=bool)
        self.rows: list[tuple[np.ndarray, str, str, str]] = []

    def add(self, mask: np.ndarray, field: str, en: str, zh: str) -> None:
        new = mask & ~self.bad
        if new.any():
            self.rows.append((np.flatnonzero(new), field, en, zh))
            self.bad |= new


def _to_local_naive(col: pd.Series) -> np.ndarray:
    s = pd.to_datetime(col)
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert(TIMEZONE).dt.tz_localize(None)
    return s.to_numpy(dtype="datetime64[s]")


def settle_batch(
    claims: pd.DataFrame,
    lines: pd.DataFrame,
    persons: pd.DataFrame,
    institutions: pd.DataFrame,
    catalog: Catalog,
    policy: Policy | None = None,
    book: PolicyBook | None = None,
    family_links: pd.DataFrame | None = None,
    account_start: dt.date | None = None,
) -> BatchResult:
    """Settle a batch of claims of one insured region.

    ``claims``: one row per claim (encounter settled once) with columns
    ``mdtrt_id, psn_no, fixmedins_code, med_type, begntime, setl_time,
    dise_codg`` and optionally ``other_dise_codg, mdtrtarea_admvs,
    mulaid_payer_psn_no, lt_rx_confirmed, cross_filed``.
    ``lines``: fee details (``mdtrt_id, feedetl_sn, med_list_codg, cnt_milli,
    pric, det_item_fee_sumamt, prd_days``).
    ``persons``: contract person rows (``acct_balc`` is the balance at
    ``account_start``; accounts are credited on the 1st of each month from
    then on).
    """
    book = book or PolicyBook.default()
    n = len(claims)
    c = claims.reset_index(drop=True)
    setl = _to_local_naive(c["setl_time"])
    begn = _to_local_naive(c["begntime"])
    # claim order: setl_time then input order
    order0 = np.argsort(setl, kind="stable")
    c = c.iloc[order0].reset_index(drop=True)
    setl, begn = setl[order0], begn[order0]
    rej = _Reject(n)

    # ---- person and institution facts per claim -------------------------------
    p = persons.reset_index(drop=True)
    pidx_map = pd.Index(p["psn_no"])
    pi = pidx_map.get_indexer(c["psn_no"])
    rej.add(pi < 0, "psn_no", "unknown psn_no", "人员编号不存在")
    pi_safe = np.where(pi < 0, 0, pi)
    insutype = p["insutype"].to_numpy(dtype=object)[pi_safe]
    is_emp = insutype == INSUTYPE_EMPLOYEE
    retired = p["psn_type"].to_numpy(dtype=object)[pi_safe] == PSN_TYPE_RETIRED
    gend = p["gend"].to_numpy(dtype=object)[pi_safe]
    assistance = p["assistance"].fillna("").to_numpy(dtype=object)[pi_safe]
    civil = p["civil_servant"].fillna(False).to_numpy(dtype=bool)[pi_safe]
    insuplc = p["insuplc_admdvs"].to_numpy(dtype=object)[pi_safe]
    brdy = pd.to_datetime(p["brdy"]).to_numpy(dtype="datetime64[D]")[pi_safe]

    inst = institutions.reset_index(drop=True)
    ii = pd.Index(inst["fixmedins_code"]).get_indexer(c["fixmedins_code"])
    rej.add(ii < 0, "fixmedins_code", "unknown fixmedins_code", "定点医药机构编码不存在")
    hosp_lv = inst["hosp_lv"].to_numpy(dtype=I64)[np.where(ii < 0, 0, ii)]

    setl_day = setl.astype("datetime64[D]")
    sy = setl_day.astype("datetime64[Y]").astype(I64) + 1970
    by = brdy.astype("datetime64[Y]").astype(I64) + 1970
    # age: compare (month, day) pairs
    sm = setl_day.astype("datetime64[M]").astype(I64) % 12
    sd = (setl_day - setl_day.astype("datetime64[M]")).astype(I64)
    bm = brdy.astype("datetime64[M]").astype(I64) % 12
    bd = (brdy - brdy.astype("datetime64[M]")).astype(I64)
    age = sy - by - ((sm < bm) | ((sm == bm) & (sd < bd))).astype(I64)
    year = sy

    med_type = c["med_type"].astype(str).to_numpy(dtype=object)
    dise = c["dise_codg"].fillna("").astype(str).to_numpy(dtype=object)
    others = c["other_dise_codg"].fillna("").astype(str).to_numpy(dtype=object) if "other_dise_codg" in c else None
    area = c["mdtrtarea_admvs"].fillna("").astype(str).to_numpy(dtype=object) if "mdtrtarea_admvs" in c else np.full(n, "", dtype=object)
    area = np.where(area == "", insuplc, area)
    cross = np.array([a[:2] != b[:2] for a, b in zip(area, insuplc)], dtype=bool) if n else np.zeros(0, bool)
    filed = c["cross_filed"].fillna(True).to_numpy(dtype=bool) if "cross_filed" in c else np.ones(n, dtype=bool)
    confirmed = c["lt_rx_confirmed"].fillna(False).to_numpy(dtype=bool) if "lt_rx_confirmed" in c else np.zeros(n, dtype=bool)
    payer = c["mulaid_payer_psn_no"].fillna("").astype(str).to_numpy(dtype=object) if "mulaid_payer_psn_no" in c else np.full(n, "", dtype=object)
    rej.add(setl < begn, "setl_time", "settlement time is before the encounter began", "结算时间早于就诊开始时间")
    rej.add((hosp_lv < 0) | (hosp_lv > 3), "hosp_lv", "institution level is not 0..3", "医疗机构等级无效")

    # ---- policy snapshots: insured region's policy, segmented by date ----------
    regions = set(insuplc.tolist()) if n else set()
    if len(regions) > 1:
        raise ValueError(f"settle_batch takes claims of one insured region; got {sorted(regions)}")
    policy = policy or (book.policy(next(iter(regions))) if regions else book.policy("national-default"))
    if n:
        first, last = setl_day.min().astype(object), setl_day.max().astype(object)
    else:
        first = last = dt.date.today()
    segs = policy.segments(first, last)
    seg = np.zeros(n, dtype=I64)
    for si, (a, _b, _s) in enumerate(segs):
        seg[setl_day >= np.datetime64(a)] = si
    snaps = [s for _a, _b, s in segs]

    # ---- categories -----------------------------------------------------------
    category = np.full(n, "", dtype=object)
    for si, snap in enumerate(snaps):
        m = seg == si
        for code, setting in snap.med_types.items():
            mm = m & (med_type == code)
            if not mm.any():
                continue
            if setting == "chronic":
                sp = _prefix_match(dise, snap.chronic_diseases.get("special", ()))
                ch = _prefix_match(dise, snap.chronic_diseases.get("chronic", ()))
                category[mm & sp] = "special"
                category[mm & ~sp & ch] = "chronic"
                rej.add(mm & ~sp & ~ch, "dise_codg", "diagnosis is not a recognised chronic or special disease", "诊断不属于门诊慢特病病种")
            elif setting == "maternity":
                rej.add(mm, "med_type", "maternity settlement is not supported yet", "暂不支持生育保险结算")
            else:
                category[mm] = setting
    rej.add(category == "", "med_type", "unknown med_type", "医疗类别无效")

    # ---- mutual-aid payers ----------------------------------------------------
    has_payer = payer != ""
    payer_rel = np.full(n, "", dtype=object)
    if has_payer.any():
        rej.add(has_payer & (payer == c["psn_no"].to_numpy(dtype=object)), "mulaid_payer_psn_no", "the mutual-aid payer is the patient", "共济支付人不能是患者本人")
        if family_links is not None and len(family_links):
            fl = family_links.drop_duplicates(["psn_no", "relative_psn_no"])
            keys = pd.MultiIndex.from_arrays([fl["psn_no"], fl["relative_psn_no"]])
            q = pd.MultiIndex.from_arrays([c["psn_no"].to_numpy(dtype=object), payer])
            hit = keys.get_indexer(q)
            rel = fl["relation"].to_numpy(dtype=object)
            payer_rel = np.where(hit >= 0, rel[np.where(hit < 0, 0, hit)], "")
        rels = snaps[0].schemes["employee"].account.mutual_aid_relations if snaps[0].schemes["employee"].account else ()
        rej.add(has_payer & ~np.isin(payer_rel, list(rels)), "mulaid_payer_psn_no", "relation may not pay through family mutual aid", "关系不在家庭共济范围内")
        payer_pi = pidx_map.get_indexer(payer)
        payer_ins = np.where(payer_pi >= 0, p["insutype"].to_numpy(dtype=object)[np.where(payer_pi < 0, 0, payer_pi)], "")
        rej.add(has_payer & (payer_ins != INSUTYPE_EMPLOYEE), "mulaid_payer_psn_no", "only an employee's personal account can pay for relatives", "共济账户须为职工个人账户")

    # ---- lines ---------------------------------------------------------------
    ln = lines
    li_claim = pd.Index(c["mdtrt_id"]).get_indexer(ln["mdtrt_id"])
    orphan = li_claim < 0
    if orphan.any():
        ln = ln.loc[~orphan]
        li_claim = li_claim[~orphan]
    lorder = np.argsort(li_claim, kind="stable")
    ln = ln.iloc[lorder]
    lc = li_claim[lorder]
    nl = len(ln)
    code_idx = pd.Index(catalog.codes).get_indexer(ln["med_list_codg"].astype(str))
    cnt = ln["cnt_milli"].to_numpy(dtype=I64)
    pric = ln["pric"].to_numpy(dtype=I64)
    amt = ln["det_item_fee_sumamt"].to_numpy(dtype=I64)
    prd = ln["prd_days"].fillna(0).to_numpy(dtype=I64) if "prd_days" in ln else np.zeros(nl, dtype=I64)
    sn = ln["feedetl_sn"].to_numpy(dtype=I64)

    line_count = np.bincount(lc, minlength=n)
    rej.add(line_count == 0, "feedetail", "a claim needs at least one fee line", "结算须至少包含一条费用明细")

    def claim_any(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        out[lc[mask]] = True
        return out

    dup = np.zeros(nl, dtype=bool)
    if nl:
        key = lc.astype(I64) * (1 << 31) + sn
        srt = np.sort(key)
        dupkeys = srt[1:][srt[1:] == srt[:-1]]
        dup = np.isin(key, dupkeys)
    rej.add(claim_any(dup), "feedetl_sn", "duplicate feedetl_sn", "费用明细流水号重复")
    rej.add(claim_any(cnt <= 0), "cnt", "quantity must be positive", "数量必须为正数")
    rej.add(claim_any(pric < 0), "pric", "negative price", "单价不能为负")
    rej.add(claim_any(amt != (cnt * pric + 500) // 1000), "det_item_fee_sumamt", "det_item_fee_sumamt ≠ cnt × pric", "明细项目费用总额与数量×单价不符")
    rej.add(claim_any(prd < 0), "prd_days", "negative prd_days", "周期天数不能为负")
    rej.add(claim_any(code_idx < 0), "med_list_codg", "unknown med_list_codg", "医保目录编码不存在")

    # catalogue columns per line, by the treatment place's list (就医地目录)
    ci = np.where(code_idx < 0, 0, code_idx)
    area_l = area[lc]
    seg_l = seg[lc]
    chrg = catalog.chrgitm_lv[ci].copy()
    spbp = catalog.selfpay_bp[ci].copy()
    for a in np.unique(area_l) if nl else []:
        lsnap = book.policy(a).snapshot(first) if a != policy.region else None
        ov = (lsnap or snaps[0]).list_overrides
        if not ov:
            continue
        am = area_l == a
        for code, o in ov.items():
            if code not in catalog.index:
                continue
            mm = am & (code_idx == catalog.index[code])
            if o.chrgitm_lv is not None:
                chrg[mm] = o.chrgitm_lv
            if o.selfpay_prop is not None:
                spbp[mm] = o.selfpay_prop

    # long-term prescriptions
    is_drug = catalog.is_drug[ci]
    for si, snap in enumerate(snaps):
        rule = snap.long_term_prescription
        m = (seg_l == si) & is_drug & (prd > rule.long_rx_over_days) & (code_idx >= 0)
        rej.add(claim_any(m & (prd > rule.max_days)), "prd_days", f"prescription exceeds the long-term maximum of {rule.max_days} days", f"处方用药天数超过长期处方最长 {rule.max_days} 天")
        rej.add(claim_any(m & (prd > rule.normal_max_days) & ~confirmed[lc]), "lt_rx_confirmed", f"prescription over {rule.normal_max_days} days needs an evaluation note and the patient's confirmation", f"超过 {rule.normal_max_days} 天的长期处方须注明理由并经患者确认")
        dcls = catalog.drug_class[ci]
        for cls_ in rule.excluded_classes:
            mm = m & (dcls == cls_)
            if not mm.any():
                continue
            allowed = _diag_prefix_any(dise[lc], others[lc] if others is not None else None, rule.exceptions.get(cls_, ()))
            rej.add(claim_any(mm & ~allowed), "med_list_codg", f"drug class {cls_} may not be given as a long-term prescription", f"该药品类别 ({cls_}) 不得开具长期处方")

    # scope (限定支付范围)
    in_scope = np.ones(nl, dtype=bool)
    lg = catalog.lmt_gend[ci]
    in_scope &= (lg == "") | (lg == gend[lc])
    amin, amax = catalog.lmt_age_min[ci], catalog.lmt_age_max[ci]
    age_l = age[lc]
    in_scope &= (amin < 0) | (age_l >= amin)
    in_scope &= (amax < 0) | (age_l <= amax)
    lvmin = catalog.lmt_hosp_lv_min[ci]
    in_scope &= (lvmin <= 0) | (hosp_lv[lc] >= lvmin)
    hi = catalog.has_indication[ci] & (code_idx >= 0)
    if hi.any():
        idx = np.flatnonzero(hi)
        dl = dise[lc[idx]]
        ol = others[lc[idx]] if others is not None else np.full(len(idx), "", dtype=object)
        pairs = pd.DataFrame({"ci": ci[idx], "d": dl, "o": ol})
        uniq = pairs.drop_duplicates()
        ok = {}
        for r in uniq.itertuples(index=False):
            pref = catalog[catalog.codes[r.ci]].lmt_indication
            codes = (r.d, *[x for x in str(r.o).split(";") if x])
            ok[(r.ci, r.d, r.o)] = any(cd.startswith(pf) for cd in codes if cd for pf in pref)
        in_scope[idx] &= np.array([ok[(a, b, cc)] for a, b, cc in zip(pairs["ci"], pairs["d"], pairs["o"])], dtype=bool)
    hm = catalog.has_med_types[ci] & (code_idx >= 0)
    if hm.any():
        idx = np.flatnonzero(hm)
        allowed = np.array([med_type[lc[i]] in catalog[catalog.codes[ci[i]]].lmt_med_types for i in idx], dtype=bool)
        in_scope[idx] &= allowed

    # category self-pay items (e.g. home-bed set-up and round-visit fees)
    cat_l = category[lc]
    selfpay_item = np.zeros(nl, dtype=bool)
    for si, snap in enumerate(snaps):
        for sch_name, sch in snap.schemes.items():
            for cname, crule in sch.categories.items():
                if not crule.selfpay_items:
                    continue
                codes = [catalog.index[x] for x in crule.selfpay_items if x in catalog.index]
                mm = (seg_l == si) & (cat_l == cname) & ((is_emp[lc]) == (sch_name == "employee"))
                selfpay_item |= mm & np.isin(code_idx, codes)

    excl_l = catalog.acct_excluded[ci]
    full = excl_l | (chrg == CLASS_C) | selfpay_item | ~in_scope
    cap = catalog.cap[ci]
    over = np.where(~full & (cap > 0) & (pric > cap), amt - (cnt * cap + 500) // 1000, 0)
    allowed_amt = amt - over
    pre = np.where(~full & (chrg == CLASS_B), _rate(allowed_amt, spbp), 0)
    ins = np.where(full, 0, allowed_amt - pre)
    fulamt_l = np.where(full, amt, 0)
    over = np.where(full, 0, over)

    def per_claim(x: np.ndarray) -> np.ndarray:
        out = np.zeros(n, dtype=I64)
        if nl:
            starts = np.flatnonzero(np.r_[True, lc[1:] != lc[:-1]])
            out[lc[starts]] = np.add.reduceat(x.astype(I64), starts)
        return out

    medfee = per_claim(amt)
    fulamt = per_claim(fulamt_l)
    overlmt = per_claim(over)
    presel = per_claim(pre)
    inscp = per_claim(ins)
    excl = per_claim(np.where(excl_l, amt, 0))

    # ---- drop rejected claims; the rest in claim order --------------------------
    ok = ~rej.bad
    keep = np.flatnonzero(ok)
    m = len(keep)

    def k(a):
        return a[keep]

    (psn_i, yr, lv, cat, seg_k, emp, ret, ass, civ, crs, fld, pay_no, rel_ok) = map(
        k, (pi_safe, year, hosp_lv, category, seg, is_emp, retired, assistance, civil, cross, filed, payer, payer_rel)
    )
    setl_k, begn_k = setl[keep], begn[keep]
    mdtrt = c["mdtrt_id"].to_numpy(dtype=object)[keep]
    medfee, fulamt, overlmt, presel, inscp, excl = map(k, (medfee, fulamt, overlmt, presel, inscp, excl))

    # parameter arrays per claim
    ded_mode = np.full(m, "none", dtype=object)
    ded_amt = np.zeros(m, dtype=I64)
    rep_amt = np.full(m, -1, dtype=I64)
    ded_group = np.full(m, "", dtype=object)
    ratio = np.zeros(m, dtype=I64)
    cost_cap = np.full(m, -1, dtype=I64)
    cycle_days = np.zeros(m, dtype=I64)
    cap_pool = np.full(m, "", dtype=object)
    cap_amt = np.full(m, NO_CAP, dtype=I64)
    for si, snap in enumerate(snaps):
        for sch_name, sch in snap.schemes.items():
            ms = (seg_k == si) & (emp == (sch_name == "employee"))
            for cname, cr in sch.categories.items():
                mc = ms & (cat == cname)
                if not mc.any():
                    continue
                ded_mode[mc] = cr.deductible_mode
                lvv = lv[mc]
                ded_amt[mc] = np.array(cr.deductible.as_list(), dtype=I64)[lvv]
                if cr.repeat_deductible is not None:
                    rep_amt[mc] = np.array(cr.repeat_deductible.as_list(), dtype=I64)[lvv]
                ded_group[mc] = cr.deductible_group or cname
                r = np.array(cr.ratio.as_list(), dtype=I64)[lvv] + np.where(ret[mc], cr.retiree_ratio_bonus, 0)
                red = np.where(crs[mc], np.where(fld[mc], snap.cross_province.filed_ratio_reduction, snap.cross_province.unfiled_ratio_reduction), 0)
                ratio[mc] = np.clip(r - red, 0, BP_SCALE)
                if cr.cost_cap is not None:
                    cost_cap[mc] = cr.cost_cap
                if cr.cycle_days:
                    cycle_days[mc] = cr.cycle_days
                if cr.cap_pool is not None:
                    cap_pool[mc] = cr.cap_pool
                    cap_amt[mc] = sch.caps[cr.cap_pool]

    # accumulator keys: (person, year, kind code, period code)
    pkey = psn_i.astype(I64) * 64 + (yr - yr.min() if m else yr).astype(I64)
    acc_rows: list[tuple[np.ndarray, np.ndarray, str, np.ndarray, np.ndarray]] = []

    def running(kind: np.ndarray | str, period: np.ndarray | None, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Sum of ``values`` before each row within (person, year, kind, period), over masked rows."""
        kinds = np.full(m, kind, dtype=object) if isinstance(kind, str) else kind
        kcode, kuniq = pd.factorize(kinds)
        if period is None:
            pcode = np.zeros(m, dtype=I64)
            puniq = np.array([""], dtype=object)
        else:
            pcode, puniq = pd.factorize(period)
        key = (pkey * (len(kuniq) + 1) + kcode) * (len(puniq) + 1) + pcode
        key = np.where(mask, key, -1 - np.arange(m))  # unmasked rows: singleton groups
        v = np.where(mask, values, 0).astype(I64)
        before, _ = _prev_cumsum(key, v)
        acc_rows.append((mask, kinds, period if period is not None else np.full(m, "", dtype=object), before, v))
        return before

    # deductible
    adm_mask = ded_mode == "per_admission"
    adm_prev = running("admissions", None, np.ones(m, dtype=I64), adm_mask)
    d_adm = np.where((adm_prev >= 1) & (rep_amt >= 0), rep_amt, ded_amt)
    days_in = (setl_k.astype("datetime64[D]") - begn_k.astype("datetime64[D]")).astype(I64)
    cyc = np.where(cycle_days > 0, days_in // np.maximum(cycle_days, 1), 0)
    period = np.where(ded_mode == "per_cycle", np.char.add(np.char.add(mdtrt.astype(str), "#"), cyc.astype(str)), "").astype(object)
    yr_mask = (ded_mode == "per_year") | (ded_mode == "per_cycle")
    ded_prev = running(np.char.add("ded:", ded_group.astype(str)).astype(object), period, inscp, yr_mask)
    ded = np.where(adm_mask, np.minimum(d_adm, inscp), 0)
    ded = np.where(yr_mask, np.minimum(ded_amt, ded_prev + inscp) - np.minimum(ded_amt, ded_prev), ded)
    elig = inscp - ded
    cc_mask = cost_cap >= 0
    cost_prev = running(np.char.add("cost:", cat.astype(str)).astype(object), period, elig, cc_mask)
    elig_c = np.where(cc_mask, np.minimum(cost_cap, cost_prev + elig) - np.minimum(cost_cap, cost_prev), elig)
    fund_unc = _rate(elig_c, ratio)
    pool_mask = cap_pool != ""
    fund_prev = running(np.char.add("fund:", cap_pool.astype(str)).astype(object), None, fund_unc, pool_mask)
    hifp = np.where(pool_mask, np.minimum(cap_amt, fund_prev + fund_unc) - np.minimum(cap_amt, fund_prev), fund_unc)
    safe_ratio = np.maximum(ratio, 1)
    overflow = np.where(hifp == fund_unc, 0, elig_c - np.minimum(elig_c, (hifp * BP_SCALE) // safe_ratio))

    # supplementary layers
    layer_pay: dict[str, np.ndarray] = {f: np.zeros(m, dtype=I64) for f in ("hifmi_pay", "hifob_pay", "cvlserv_pay", "hifes_pay", "oth_pay")}
    paid_layers = np.zeros(m, dtype=I64)
    layer_names: list[str] = []
    for snap in snaps:
        for sch in snap.schemes.values():
            for layer in sch.layers:
                if layer.name not in layer_names:
                    layer_names.append(layer.name)
    for lname in layer_names:
        # parameters per claim (a layer may be absent in some segment or scheme)
        active = np.zeros(m, dtype=bool)
        base_sel = np.zeros(m, dtype=bool)
        d = np.zeros(m, dtype=I64)
        bonus = np.zeros(m, dtype=I64)
        lcap = np.full(m, NO_CAP, dtype=I64)
        field_of = None
        brackets_by: list[tuple[np.ndarray, object]] = []
        for si, snap in enumerate(snaps):
            for sch_name, sch in snap.schemes.items():
                for layer in sch.layers:
                    if layer.name != lname:
                        continue
                    field_of = layer.field
                    ms = (seg_k == si) & (emp == (sch_name == "employee")) & np.isin(cat, list(layer.applies_to))
                    if layer.requires == "civil_servant":
                        ms &= civ
                    if not ms.any():
                        continue
                    active |= ms
                    base_sel[ms] = layer.base == "selfpay"
                    poor = np.isin(ass, list(layer.poverty.statuses)) if layer.poverty else np.zeros(m, dtype=bool)
                    d[ms] = np.where(poor[ms], _rate(np.full(ms.sum(), layer.deductible, dtype=I64), layer.poverty.deductible_factor if layer.poverty else BP_SCALE), layer.deductible)
                    bonus[ms] = np.where(poor[ms], layer.poverty.ratio_bonus if layer.poverty else 0, 0)
                    lcap[ms] = np.where(poor[ms] & bool(layer.poverty and layer.poverty.no_cap), NO_CAP, layer.cap)
                    brackets_by.append((ms, layer))
        if field_of is None or not active.any():
            continue
        left = inscp - hifp - paid_layers
        b = np.where(base_sel, left, np.minimum(overflow, left))
        bprev = running(f"layer_base:{lname}", None, b, active)

        def bsum(e: np.ndarray) -> np.ndarray:
            tot = np.zeros(m, dtype=I64)
            for ms, layer in brackets_by:
                br = layer.brackets
                for i, bk in enumerate(br):
                    part = e[ms] - bk.threshold
                    if i + 1 < len(br):
                        part = np.minimum(part, br[i + 1].threshold - bk.threshold)
                    part = np.maximum(part, 0)
                    tot[ms] += _rate(part, np.minimum(BP_SCALE, bk.rate + bonus[ms]))
            return tot

        u = np.where(active, bsum(np.maximum(0, bprev + b - d)) - bsum(np.maximum(0, bprev - d)), 0)
        uprev = running(f"layer_pay:{lname}", None, u, active)
        pay = np.where(active, np.minimum(lcap, uprev + u) - np.minimum(lcap, uprev), 0)
        layer_pay[field_of] += pay
        paid_layers += pay

    # medical assistance
    maf = np.zeros(m, dtype=I64)
    a_active = np.zeros(m, dtype=bool)
    a_ratio = np.zeros(m, dtype=I64)
    a_ded = np.zeros(m, dtype=I64)
    a_cap = np.full(m, NO_CAP, dtype=I64)
    for si, snap in enumerate(snaps):
        for st_name, st in snap.assistance.statuses.items():
            ms = (seg_k == si) & (ass == st_name) & np.isin(cat, list(snap.assistance.applies_to))
            a_active |= ms
            a_ratio[ms], a_ded[ms], a_cap[ms] = st.ratio, st.deductible, st.cap
    if a_active.any():
        left = inscp - hifp - paid_layers
        bprev = running("maf_base", None, left, a_active)
        e = np.maximum(0, bprev + left - a_ded) - np.maximum(0, bprev - a_ded)
        u = np.where(a_active, _rate(e, a_ratio), 0)
        uprev = running("maf_pay", None, u, a_active)
        maf = np.where(a_active, np.minimum(a_cap, uprev + u) - np.minimum(a_cap, uprev), 0)
    running(np.char.add("visits:", cat.astype(str)).astype(object), None, np.ones(m, dtype=I64), np.ones(m, dtype=bool))

    fund_sum = hifp + paid_layers + maf
    psn_part = medfee - fund_sum

    # ---- personal accounts: one ledger per paying account ----------------------
    acct_rules = [s.schemes["employee"].account for s in snaps]
    payer_no = np.where(pay_no != "", pay_no, np.where(emp, c["psn_no"].to_numpy(dtype=object)[keep], ""))
    want = np.zeros(m, dtype=I64)
    for si, rule in enumerate(acct_rules):
        if rule is None:
            continue
        ms = (seg_k == si) & np.isin(cat, list(rule.categories))
        comps = {
            "inscp_selfpay": inscp - fund_sum,
            "preselfpay": presel,
            "fulamt_ownpay": fulamt - excl,
            "overlmt_selfpay": overlmt,
        }
        w = sum(comps[x] for x in rule.payable)
        want[ms] = w[ms]
    has_acct = (payer_no != "") & np.array([r is not None for r in acct_rules])[seg_k] if m else np.zeros(0, bool)
    acct = np.zeros(m, dtype=I64)
    balc = np.zeros(m, dtype=I64)
    if has_acct.any():
        idx = np.flatnonzero(has_acct)
        payer_pi = pidx_map.get_indexer(payer_no[idx])
        opening = p["acct_balc"].fillna(0).to_numpy(dtype=I64)[payer_pi]
        start = account_start or dt.date(int(yr.min()), 1, 1)
        start_m = np.datetime64(start, "M").astype(I64)
        month_k = setl_k[idx].astype("datetime64[M]").astype(I64)
        credited = np.zeros(len(idx), dtype=I64)
        # credits on the 1st of each month from `start`; amount from the snapshot of that month
        p_ins = p["insutype"].to_numpy(dtype=object)[payer_pi]
        p_type = p["psn_type"].to_numpy(dtype=object)[payer_pi]
        p_base = p["contribution_base"].fillna(0).to_numpy(dtype=I64)[payer_pi]
        if len(idx):
            for mi in range(int(start_m), int(month_k.max()) + 1):
                mdate = np.datetime64(mi, "M").astype("datetime64[D]").astype(object)
                snap = policy.snapshot(mdate)
                rule = snap.schemes["employee"].account
                if rule is None:
                    continue
                cr = np.where(
                    p_ins != INSUTYPE_EMPLOYEE,
                    0,
                    np.where(p_type == PSN_TYPE_RETIRED, rule.retiree_monthly_credit, _rate(np.maximum(p_base, 0), rule.in_service_credit_rate)),
                )
                credited += np.where(month_k >= mi, cr, 0)
        avail = opening + credited
        gid = pd.factorize(payer_no[idx])[0]
        order = np.argsort(gid, kind="stable")
        g = gid[order]
        w = want[idx][order]
        a = avail[order]
        W = pd.Series(w).groupby(g).cumsum().to_numpy(dtype=I64)
        run_min = pd.Series(a - W).groupby(g).cummin().to_numpy(dtype=I64)
        P = W + np.minimum(0, run_min)
        first = np.r_[True, g[1:] != g[:-1]]
        Pprev = np.where(first, 0, np.r_[0, P[:-1]])
        pay_sorted = P - Pprev
        bal_sorted = a - P
        pay_acct = np.empty_like(pay_sorted)
        pay_acct[order] = pay_sorted
        bal = np.empty_like(bal_sorted)
        bal[order] = bal_sorted
        acct[idx] = pay_acct
        balc[idx] = bal
    is_mulaid = pay_no != ""
    acct_pay = np.where(is_mulaid, 0, acct)
    mulaid_pay = np.where(is_mulaid, acct, 0)
    cash = psn_part - acct

    # ---- outputs ---------------------------------------------------------------
    setl_ts = pd.to_datetime(setl_k).tz_localize(TIMEZONE)
    psn_no = c["psn_no"].to_numpy(dtype=object)[keep]
    cols = {
        "setl_id": np.char.add("S", mdtrt.astype(str)).astype(object),
        "mdtrt_id": mdtrt,
        "psn_no": psn_no,
        "fixmedins_code": c["fixmedins_code"].to_numpy(dtype=object)[keep],
        "setl_time": setl_ts,
        "policy_year": yr.astype(np.int16),
        "insutype": np.where(emp, "310", "390").astype(object),
        "med_type": med_type[keep],
        "benefit_category": cat,
        "medfee_sumamt": medfee,
        "fulamt_ownpay_amt": fulamt,
        "overlmt_selfpay": overlmt,
        "preselfpay_amt": presel,
        "inscp_scp_amt": inscp,
        "act_pay_dedc": ded,
        "hifp_pay": hifp,
        "hifmi_pay": layer_pay["hifmi_pay"],
        "hifob_pay": layer_pay["hifob_pay"],
        "cvlserv_pay": layer_pay["cvlserv_pay"],
        "maf_pay": maf,
        "hifes_pay": layer_pay["hifes_pay"],
        "oth_pay": layer_pay["oth_pay"],
        "hosp_part_amt": np.zeros(m, dtype=I64),
        "fund_pay_sumamt": fund_sum,
        "psn_part_amt": psn_part,
        "acct_pay": acct_pay,
        "acct_mulaid_pay": mulaid_pay,
        "psn_cash_pay": cash,
        "pool_prop_selfpay_bp": ratio.astype(np.int32),
        "balc": balc,
        "refd_setl_flag": np.zeros(m, dtype=bool),
        "synthetic": np.zeros(m, dtype=bool),
    }
    table = pa.Table.from_pydict({k_: cols[k_] for k_ in SETTLEMENT.names}, schema=SETTLEMENT)

    # rejected
    rej_frames = []
    for rows, fld_, en, zh in rej.rows:
        rej_frames.append(pd.DataFrame({"mdtrt_id": c["mdtrt_id"].to_numpy(dtype=object)[rows], "field": fld_, "reason_en": en, "reason_zh": zh}))
    rejected = pd.concat(rej_frames, ignore_index=True) if rej_frames else pd.DataFrame(columns=["mdtrt_id", "field", "reason_en", "reason_zh"])

    # final accumulators
    acc_frames = []
    for mask, kinds, per, _before, v in acc_rows:
        if not mask.any():
            continue
        df = pd.DataFrame({"psn_no": psn_no[mask], "policy_year": yr[mask], "kind": kinds[mask], "period": per[mask], "value": v[mask]})
        acc_frames.append(df)
    if acc_frames:
        acc = pd.concat(acc_frames, ignore_index=True).groupby(["psn_no", "policy_year", "kind", "period"], as_index=False, sort=False)["value"].sum()
        acc = acc[acc["value"] != 0]
    else:
        acc = pd.DataFrame(columns=["psn_no", "policy_year", "kind", "period", "value"])
    return BatchResult(settlements=table, rejected=rejected, accumulators=acc, acct_payer=payer_no)
