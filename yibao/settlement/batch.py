"""Settle millions of claims at once: the vectorised batch path.

Same rules as :func:`yibao.settlement.rules.settle_claim`, in the same claim
order, with person-year accumulators computed as clipped running sums
(grouped cumulative sums) instead of a Python loop.  Property tests
(``tests/test_settlement_agreement.py``) show the two paths agree to the fen.

* Claim order is ``setl_time``, then input order.
* Claims the scalar path would refuse are returned in ``rejected`` with the
  same field and reason, and take no part in the accumulators.
* All money arithmetic is int64 fen and basis points; nothing passes through
  float.  Strings are handled in Arrow (hash lookups, dictionary encoding) and
  turned into integer codes before any NumPy work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from yibao.benefits import maternity
from yibao.benefits.model import CATEGORIES
from yibao.benefits.policy import Policy, PolicyBook
from yibao.core.contract import INSUTYPE_EMPLOYEE, PSN_TYPE_RETIRED, SETTLEMENT, TIMEZONE
from yibao.core.money import BP_SCALE, NO_CAP
from yibao.core.money import apply_rate_np as _rate  # half-up x × bp / 10000 on int64, as apply_rate
from yibao.settlement.catalog import Catalog

I64 = np.int64
TZ_OFFSET_S = 8 * 3600  # Asia/Shanghai: UTC+8, no daylight saving since 1991

ACCUMULATOR = pa.schema(
    [
        ("psn_no", pa.string()),
        ("policy_year", pa.int16()),
        ("kind", pa.string()),
        ("period", pa.string()),
        ("value", pa.int64()),
    ]
)

MODE_NONE, MODE_ADMISSION, MODE_YEAR, MODE_CYCLE = 0, 1, 2, 3
_MODES = {"none": MODE_NONE, "per_admission": MODE_ADMISSION, "per_year": MODE_YEAR, "per_cycle": MODE_CYCLE}


def _table(x: pa.Table | pd.DataFrame) -> pa.Table:
    return x if isinstance(x, pa.Table) else pa.Table.from_pandas(x, preserve_index=False)


def _str(t: pa.Table, name: str, n: int | None = None) -> pa.Array:
    """A string column as one Arrow array ('' for missing)."""
    if name not in t.column_names:
        return pa.array([""] * (t.num_rows if n is None else n), type=pa.string())
    col = t.column(name)
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    return pc.fill_null(col, "").combine_chunks() if col.num_chunks != 1 else pc.fill_null(col.chunk(0), "")


def _int(t: pa.Table, name: str, default: int = 0) -> np.ndarray:
    if name not in t.column_names or pa.types.is_null(t.column(name).type):
        return np.full(t.num_rows, default, dtype=I64)
    return pc.fill_null(pc.cast(t.column(name), pa.int64()), default).to_numpy().astype(I64, copy=False)


def _bool(t: pa.Table, name: str, default: bool) -> np.ndarray:
    if name not in t.column_names or pa.types.is_null(t.column(name).type):
        return np.full(t.num_rows, default, dtype=bool)
    return pc.fill_null(pc.cast(t.column(name), pa.bool_()), default).to_numpy(zero_copy_only=False).astype(bool)


def _codes(arr: pa.Array) -> tuple[np.ndarray, list[str]]:
    """Dictionary-encode: (int codes, distinct values)."""
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    return enc.indices.to_numpy(zero_copy_only=False).astype(I64), enc.dictionary.to_pylist()


def _lookup(values: pa.Array, keys: pa.Array) -> np.ndarray:
    """Position of each value in ``keys`` (first match), −1 if absent."""
    return pc.fill_null(pc.index_in(values, value_set=keys), -1).to_numpy(zero_copy_only=False).astype(I64)


def _local_seconds(t: pa.Table, name: str) -> np.ndarray:
    """Asia/Shanghai wall-clock seconds since 1970 (naive times are taken as local)."""
    col = t.column(name)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    typ = col.type
    if pa.types.is_timestamp(typ):
        secs = pc.cast(col, pa.timestamp("s", typ.tz)).cast(pa.int64()).to_numpy(zero_copy_only=False).astype(I64)
        return secs + TZ_OFFSET_S if typ.tz else secs
    if pa.types.is_date(typ):
        return pc.cast(col, pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False).astype(I64) * 86400
    raise TypeError(f"{name}: expected a timestamp column, got {typ}")


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]")
    mo = d.astype("datetime64[M]")
    return y.astype(I64) + 1970, mo.astype(I64) % 12 + 1, (d - mo).astype(I64) + 1


def _prefix_hits(values: list[str], prefixes: tuple[str, ...], multi: bool = False) -> np.ndarray:
    """For each distinct value: does it (or, if ``multi``, any ';'-part) start with a prefix?"""
    if not prefixes:
        return np.zeros(len(values), dtype=bool)
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        parts = (v or "").split(";") if multi else [v or ""]
        out[i] = any(p.startswith(x) for p in parts if p for x in prefixes)
    return out


class _Running:
    """Exclusive running sums within (person-year block, sub-key, period) groups.

    Rows are in person-year order (block, then claim order), so a stable
    sort by the composite key is cheap (long sorted runs).
    """

    def __init__(self, block: np.ndarray):
        self.block = block
        self.totals: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]] = []

    def __call__(
        self,
        names: list[str],
        sub: np.ndarray | int,
        values: np.ndarray,
        mask: np.ndarray,
        period: np.ndarray | None = None,
        period_names: list[str] | None = None,
    ) -> np.ndarray:
        m = len(values)
        sub = np.broadcast_to(np.asarray(sub, dtype=I64), (m,))
        per = np.zeros(m, dtype=I64) if period is None else period
        np_ = 1 if period is None else max(1, len(period_names or [""]))
        key = (self.block * (len(names) + 1) + sub) * (np_ + 1) + per
        v = np.where(mask, values, 0).astype(I64)
        order = np.argsort(key, kind="stable")
        k, vs = key[order], v[order]
        cs = np.cumsum(vs)
        start = np.ones(m, dtype=bool)
        start[1:] = k[1:] != k[:-1]
        first = np.maximum.accumulate(np.where(start, np.arange(m), 0))
        before_sorted = cs - vs - (cs[first] - vs[first])
        before = np.empty_like(before_sorted)
        before[order] = before_sorted
        if m:
            end = np.ones(m, dtype=bool)
            end[:-1] = start[1:]
            last = order[end]
            tot = cs[end] - (cs[first] - vs[first])[end]
            keep = tot != 0
            self.totals.append(
                (self.block[last][keep], sub[last][keep], per[last][keep], tot[keep], names, period_names or [""])
            )
        return before


@dataclass
class BatchResult:
    settlements: pa.Table  # contract SETTLEMENT schema (accepted claims, in claim order)
    rejected: pd.DataFrame  # mdtrt_id, field, reason_en, reason_zh
    accumulators: pa.Table  # psn_no, policy_year, kind, period, value (final state of this batch)
    acct_payer: pa.Array  # payer psn_no per settlement row ('' none)
    claim_index: np.ndarray  # input row of each settlement row


class _Reject:
    def __init__(self, n: int):
        self.bad = np.zeros(n, dtype=bool)
        self.rows: list[tuple[np.ndarray, str, str, str]] = []

    def add(self, mask: np.ndarray, field: str, en: str, zh: str) -> None:
        new = mask & ~self.bad
        if new.any():
            self.rows.append((np.flatnonzero(new), field, en, zh))
            self.bad |= new


def settle_batch(
    claims: pa.Table | pd.DataFrame,
    lines: pa.Table | pd.DataFrame,
    persons: pa.Table | pd.DataFrame,
    institutions: pa.Table | pd.DataFrame,
    catalog: Catalog,
    policy: Policy | None = None,
    book: PolicyBook | None = None,
    family_links: pa.Table | pd.DataFrame | None = None,
    account_start: dt.date | None = None,
    filings: pa.Table | pd.DataFrame | None = None,
) -> BatchResult:
    """Settle a batch of claims of one insured region.

    ``claims``: one row per claim with ``mdtrt_id, psn_no, fixmedins_code,
    med_type, begntime, setl_time, dise_codg`` and optionally
    ``other_dise_codg, mdtrtarea_admvs, mulaid_payer_psn_no, lt_rx_confirmed,
    cross_filed``.  ``lines``: fee details (``mdtrt_id, feedetl_sn,
    med_list_codg, cnt_milli, pric, det_item_fee_sumamt, prd_days``).
    ``persons``: contract person rows; ``acct_balc`` is the balance at
    ``account_start`` (default 1 January of the first claim's year), and
    accounts are credited on the 1st of each month from then on.
    ``filings``: the filing table (psn_no, insutype, treatment_admdvs, begin_date, end_date, status);
    when given it decides ``cross_filed`` (see :mod:`yibao.crossregion.batch`).
    """
    book = book or PolicyBook.default()
    ct = _table(claims)
    lt = _table(lines)
    pt = _table(persons)
    it = _table(institutions)
    n = ct.num_rows
    rej = _Reject(n)

    # ---- claims, in input order ----------------------------------------------------
    mdtrt_arr = _str(ct, "mdtrt_id")
    setl_s = _local_seconds(ct, "setl_time")
    begn_s = _local_seconds(ct, "begntime")
    setl_day = setl_s // 86400
    sy, sm, sd = _ymd(setl_day)

    psn_keys = _str(pt, "psn_no")
    pi = _lookup(_str(ct, "psn_no"), psn_keys)
    rej.add(pi < 0, "psn_no", "unknown psn_no", "人员编号不存在")
    pi0 = np.where(pi < 0, 0, pi)
    p_ins_code, p_ins_vals = _codes(_str(pt, "insutype"))
    p_emp = (
        np.array([v == INSUTYPE_EMPLOYEE for v in p_ins_vals], dtype=bool)[p_ins_code]
        if pt.num_rows
        else np.zeros(0, bool)
    )
    p_type_code, p_type_vals = _codes(_str(pt, "psn_type"))
    p_retired = (
        np.array([v == PSN_TYPE_RETIRED for v in p_type_vals], dtype=bool)[p_type_code]
        if pt.num_rows
        else np.zeros(0, bool)
    )
    p_gend_code, p_gend_vals = _codes(_str(pt, "gend"))
    p_ass_code, p_ass_vals = _codes(_str(pt, "assistance"))
    p_civil = _bool(pt, "civil_servant", False)
    p_region_code, p_region_vals = _codes(_str(pt, "insuplc_admdvs"))
    brdy_days = _local_seconds(pt, "brdy") // 86400 if "brdy" in pt.column_names else np.zeros(pt.num_rows, dtype=I64)
    by, bm, bd = _ymd(brdy_days)

    is_emp = p_emp[pi0] if n else np.zeros(0, bool)
    retired = p_retired[pi0] if n else np.zeros(0, bool)
    gend_c = p_gend_code[pi0] if n else np.zeros(0, I64)
    ass_c = p_ass_code[pi0] if n else np.zeros(0, I64)
    civil = p_civil[pi0] if n else np.zeros(0, bool)
    age = sy - by[pi0] - ((sm < bm[pi0]) | ((sm == bm[pi0]) & (sd < bd[pi0]))).astype(I64) if n else np.zeros(0, I64)

    ii = _lookup(_str(ct, "fixmedins_code"), _str(it, "fixmedins_code"))
    rej.add(ii < 0, "fixmedins_code", "unknown fixmedins_code", "定点医药机构编码不存在")
    hosp_lv = _int(it, "hosp_lv")[np.where(ii < 0, 0, ii)] if n else np.zeros(0, I64)

    mt_code, mt_vals = _codes(_str(ct, "med_type"))
    dise_code, dise_vals = _codes(_str(ct, "dise_codg"))
    oth_code, oth_vals = _codes(_str(ct, "other_dise_codg", n))
    insuplc_vals = p_region_vals
    region_of_claim = p_region_code[pi0] if n else np.zeros(0, I64)
    area_code, area_vals = _codes(_str(ct, "mdtrtarea_admvs", n))
    # cross-province: compare province (first 2 digits) of treatment and insured places
    area_prov = np.array([(v or "")[:2] for v in area_vals], dtype=object)
    ins_prov = np.array([(v or "")[:2] for v in insuplc_vals], dtype=object)
    area_blank = np.array([not v for v in area_vals], dtype=bool)
    if n:
        pair = area_code * (len(insuplc_vals) + 1) + region_of_claim
        pu, pinv = np.unique(pair, return_inverse=True)
        pu_cross = np.array(
            [
                (not area_blank[a]) and area_prov[a] != ins_prov[r]
                for a, r in zip(pu // (len(insuplc_vals) + 1), pu % (len(insuplc_vals) + 1), strict=True)
            ],
            dtype=bool,
        )
        cross = pu_cross[pinv]
    else:
        cross = np.zeros(0, bool)
    filed = _bool(ct, "cross_filed", True)
    if filings is not None:  # 异地就医备案: the filing table decides, not the claim column
        from yibao.crossregion.batch import filed_flags

        claim_insutype = np.array(p_ins_vals + [""], dtype=object)[p_ins_code[pi0]] if n else np.zeros(0, object)
        filed = filed_flags(
            filings,
            _str(ct, "psn_no").to_numpy(zero_copy_only=False),
            claim_insutype,
            np.array(area_vals + [""], dtype=object)[area_code] if n else np.zeros(0, object),
            setl_day,
            cross,
        )
    confirmed = _bool(ct, "lt_rx_confirmed", False)
    payer_arr = _str(ct, "mulaid_payer_psn_no", n)
    has_payer = pc.not_equal(payer_arr, "").to_numpy(zero_copy_only=False) if n else np.zeros(0, bool)
    rej.add(setl_s < begn_s, "setl_time", "settlement time is before the encounter began", "结算时间早于就诊开始时间")
    rej.add((hosp_lv < 0) | (hosp_lv > 3), "hosp_lv", "institution level is not 0..3", "医疗机构等级无效")

    # ---- policy: the insured region's, segmented by effective dates -------------------
    if len(insuplc_vals) > 1:
        raise ValueError(f"settle_batch takes claims of one insured region; got {sorted(insuplc_vals)}")
    if policy is None:
        policy = book.policy(insuplc_vals[0]) if insuplc_vals else book.policy("national-default")
    if n:
        first = dt.date(1970, 1, 1) + dt.timedelta(days=int(setl_day.min()))
        last = dt.date(1970, 1, 1) + dt.timedelta(days=int(setl_day.max()))
    else:
        first = last = dt.date.today()
    segs = policy.segments(first, last)
    snaps = [s for _a, _b, s in segs]
    seg = np.zeros(n, dtype=I64)
    for si, (a, _b, _s) in enumerate(segs):
        seg[setl_day >= (a - dt.date(1970, 1, 1)).days] = si

    # ---- benefit categories -----------------------------------------------------------
    CATS = list(CATEGORIES)
    cat = np.full(n, -1, dtype=I64)
    for si, snap in enumerate(snaps):
        in_seg = seg == si
        sp = _prefix_hits(dise_vals, snap.chronic_diseases.get("special", ()))[dise_code] if n else np.zeros(0, bool)
        ch = _prefix_hits(dise_vals, snap.chronic_diseases.get("chronic", ()))[dise_code] if n else np.zeros(0, bool)
        for code, setting in snap.med_types.items():
            if code not in mt_vals:
                continue
            mm = in_seg & (mt_code == mt_vals.index(code))
            if setting == "chronic":
                cat[mm & sp] = CATS.index("special")
                cat[mm & ~sp & ch] = CATS.index("chronic")
                rej.add(
                    mm & ~sp & ~ch,
                    "dise_codg",
                    "diagnosis is not a recognised chronic or special disease",
                    "诊断不属于门诊慢特病病种",
                )
            elif setting == "maternity":
                cat[mm] = CATS.index(maternity.category_for(setting))
            else:
                cat[mm] = CATS.index(setting)
    rej.add(cat < 0, "med_type", "unknown med_type", "医疗类别无效")

    # ---- mutual-aid payers ----------------------------------------------------------
    payer_pi = np.full(n, -1, dtype=I64)
    if has_payer.any():
        payer_pi = _lookup(payer_arr, psn_keys)
        rej.add(
            has_payer & (payer_pi == pi),
            "mulaid_payer_psn_no",
            "the mutual-aid payer is the patient",
            "共济支付人不能是患者本人",
        )
        rel_ok = np.zeros(n, dtype=bool)
        rule0 = snaps[0].schemes["employee"].account
        allowed_rel = set(rule0.mutual_aid_relations) if rule0 else set()
        if family_links is not None:
            ft = _table(family_links)
            if ft.num_rows:
                a = _lookup(_str(ft, "psn_no"), psn_keys)
                b = _lookup(_str(ft, "relative_psn_no"), psn_keys)
                rel_c, rel_v = _codes(_str(ft, "relation"))
                ok_rel = np.array([r in allowed_rel for r in rel_v], dtype=bool)[rel_c]
                P = max(1, pt.num_rows)
                link_keys = (a * P + b)[(a >= 0) & (b >= 0) & ok_rel]
                rel_ok = np.isin(pi0 * P + np.where(payer_pi < 0, 0, payer_pi), link_keys) & (payer_pi >= 0)
        rej.add(
            has_payer & ~rel_ok,
            "mulaid_payer_psn_no",
            "relation may not pay through family mutual aid",
            "关系不在家庭共济范围内",
        )
        payer_emp = np.where(payer_pi >= 0, p_emp[np.where(payer_pi < 0, 0, payer_pi)], False)
        rej.add(
            has_payer & ~payer_emp,
            "mulaid_payer_psn_no",
            "only an employee's personal account can pay for relatives",
            "共济账户须为职工个人账户",
        )

    # ---- fee lines ------------------------------------------------------------------
    nl = lt.num_rows
    l_ids = _str(lt, "mdtrt_id")
    if nl:
        heads = np.flatnonzero(
            np.r_[True, pc.not_equal(l_ids.slice(1), l_ids.slice(0, nl - 1)).to_numpy(zero_copy_only=False)]
        )
    else:
        heads = np.zeros(0, dtype=I64)
    run_len = np.diff(np.r_[heads, nl])
    head_ids = l_ids.take(pa.array(heads)) if nl else l_ids
    aligned = bool(len(heads) == n and n and pc.all(pc.equal(head_ids, mdtrt_arr)).as_py())
    if aligned:
        run_claim = np.arange(n, dtype=I64)  # lines grouped in claim order: no lookup needed
    else:
        run_claim = _lookup(head_ids, mdtrt_arr) if nl else np.zeros(0, I64)
    lc = np.repeat(run_claim, run_len)
    orphan = lc < 0
    lc0 = np.where(orphan, 0, lc)
    ci = _lookup(_str(lt, "med_list_codg"), pa.array(catalog.codes.tolist(), type=pa.string()))
    cnt = _int(lt, "cnt_milli")
    pric = _int(lt, "pric")
    amt = _int(lt, "det_item_fee_sumamt")
    prd = _int(lt, "prd_days")
    sn = _int(lt, "feedetl_sn")
    live = ~orphan

    def per_claim(x: np.ndarray) -> np.ndarray:
        """Sum a line quantity per claim (exact int64: run sums, then scatter)."""
        out = np.zeros(n, dtype=I64)
        if nl:
            rs = np.add.reduceat(np.where(live, x, 0).astype(I64), heads)
            ok = run_claim >= 0
            np.add.at(out, run_claim[ok], rs[ok])
        return out

    def claim_any(mask: np.ndarray) -> np.ndarray:
        return per_claim(mask.astype(I64)) > 0

    n_lines = np.zeros(n, dtype=I64)
    if nl:
        np.add.at(n_lines, run_claim[run_claim >= 0], run_len[run_claim >= 0])
    rej.add(n_lines == 0, "feedetail", "a claim needs at least one fee line", "结算须至少包含一条费用明细")
    dup = np.zeros(nl, bool)
    if nl:
        new_run = np.zeros(nl, dtype=bool)
        new_run[heads] = True
        ascending_in_runs = bool(np.all(new_run[1:] | (sn[1:] > sn[:-1])))
        ok_runs = run_claim[run_claim >= 0]
        runs_unique = aligned or (
            len(ok_runs) == len(run_claim) and np.bincount(ok_runs, minlength=n).max(initial=0) <= 1
        )
        if not (ascending_in_runs and runs_unique):  # slow path: a full sort
            key = lc0 * (1 << 31) + sn
            key = np.where(live, key, -1 - np.arange(nl))
            srt = np.sort(key)
            dupkeys = srt[1:][srt[1:] == srt[:-1]]
            dup = np.isin(key, dupkeys) if len(dupkeys) else dup
    rej.add(claim_any(dup), "feedetl_sn", "duplicate feedetl_sn", "费用明细流水号重复")
    rej.add(claim_any(cnt <= 0), "cnt", "quantity must be positive", "数量必须为正数")
    rej.add(claim_any(pric < 0), "pric", "negative price", "单价不能为负")
    rej.add(
        claim_any(amt != (cnt * pric + 500) // 1000),
        "det_item_fee_sumamt",
        "det_item_fee_sumamt ≠ cnt × pric",
        "明细项目费用总额与数量×单价不符",
    )
    rej.add(claim_any(prd < 0), "prd_days", "negative prd_days", "周期天数不能为负")
    rej.add(claim_any(ci < 0), "med_list_codg", "unknown med_list_codg", "医保目录编码不存在")

    ci0 = np.where(ci < 0, 0, ci)
    chrg = catalog.class_code[ci0].copy()  # 1 甲, 2 乙, 3 丙
    spbp = catalog.selfpay_bp[ci0].copy()
    cap_l = catalog.cap[ci0].copy()
    if nl:  # the treatment province's list (就医地目录) on cross-province claims, before the city's overrides
        from yibao.crossregion.lists import overlay_lines

        area_of = np.array(area_vals + [""], dtype=object)[area_code]
        overlay_lines(catalog, ci, cross[lc0], area_of[lc0], setl_day[lc0], chrg, spbp, cap_l)
    # the place of treatment's list (就医地目录): its overrides on each claim's date
    area_l = area_code[lc0] if nl else np.zeros(0, I64)
    day_l = setl_day[lc0] if nl else np.zeros(0, I64)
    for a_i, a in enumerate(area_vals):
        lpol = book.policy(a) if (a and a != policy.region) else policy
        for seg_start, seg_end, src in lpol.segments(first, last):
            ov = src.list_overrides
            if not ov:
                continue
            am = (
                (area_l == a_i)
                & (day_l >= (seg_start - dt.date(1970, 1, 1)).days)
                & (day_l < (seg_end - dt.date(1970, 1, 1)).days)
            )
            for code, o in ov.items():
                if code not in catalog.index:
                    continue
                mm = am & (ci == catalog.index[code])
                if o.chrgitm_lv is not None:
                    chrg[mm] = int(o.chrgitm_lv)
                if o.selfpay_prop is not None:
                    spbp[mm] = o.selfpay_prop

    # long-term prescriptions (长期处方)
    is_drug = catalog.is_drug[ci0] & (ci >= 0) & live
    seg_l = seg[lc0] if nl else np.zeros(0, I64)
    for si, snap in enumerate(snaps):
        rule = snap.long_term_prescription
        m = (seg_l == si) & is_drug & (prd > rule.long_rx_over_days)
        if not m.any():
            continue
        rej.add(
            claim_any(m & (prd > rule.max_days)),
            "prd_days",
            f"prescription exceeds the long-term maximum of {rule.max_days} days",
            f"处方用药天数超过长期处方最长 {rule.max_days} 天",
        )
        rej.add(
            claim_any(m & (prd > rule.normal_max_days) & ~confirmed[lc0]),
            "lt_rx_confirmed",
            f"prescription over {rule.normal_max_days} days needs an evaluation note and the patient's confirmation",
            f"超过 {rule.normal_max_days} 天的长期处方须注明理由并经患者确认",
        )
        for cls_ in rule.excluded_classes:
            cid = catalog.drug_class_id.get(cls_)
            if cid is None:
                continue
            mm = m & (catalog.drug_class_code[ci0] == cid)
            if not mm.any():
                continue
            exc = rule.exceptions.get(cls_, ())
            allowed = (_prefix_hits(dise_vals, exc)[dise_code] | _prefix_hits(oth_vals, exc, multi=True)[oth_code])[lc0]
            rej.add(
                claim_any(mm & ~allowed),
                "med_list_codg",
                f"drug class {cls_} may not be given as a long-term prescription",
                f"该药品类别 ({cls_}) 不得开具长期处方",
            )

    # scope (限定支付范围)
    from yibao.settlement.catalog import gend_code

    lg = catalog.lmt_gend_code[ci0]
    p_gend_num = np.array([gend_code(v) for v in p_gend_vals] + [0], dtype=I64)
    gend_l = p_gend_num[gend_c[lc0]] if nl else np.zeros(0, I64)
    in_scope = (lg == 0) | (lg == gend_l)
    amin, amax = catalog.lmt_age_min[ci0], catalog.lmt_age_max[ci0]
    age_l = age[lc0] if nl else np.zeros(0, I64)
    in_scope &= ((amin < 0) | (age_l >= amin)) & ((amax < 0) | (age_l <= amax))
    lvmin = catalog.lmt_hosp_lv_min[ci0]
    in_scope &= (lvmin <= 0) | (hosp_lv[lc0] >= lvmin)
    hi = catalog.has_indication[ci0] & (ci >= 0) & live
    if hi.any():
        idx = np.flatnonzero(hi)
        k3 = (ci0[idx] * (len(dise_vals) + 1) + dise_code[lc0[idx]]) * (len(oth_vals) + 1) + oth_code[lc0[idx]]
        uk, inv = np.unique(k3, return_inverse=True)
        res = np.zeros(len(uk), dtype=bool)
        for j, kk in enumerate(uk):
            c_i, rest = divmod(int(kk), (len(dise_vals) + 1) * (len(oth_vals) + 1))
            d_i, o_i = divmod(rest, len(oth_vals) + 1)
            pref = catalog[catalog.codes[c_i]].lmt_indication
            codes = (dise_vals[d_i] or "", *[x for x in (oth_vals[o_i] or "").split(";") if x])
            res[j] = any(cd.startswith(pf) for cd in codes if cd for pf in pref)
        in_scope[idx] &= res[inv]
    hm = catalog.has_med_types[ci0] & (ci >= 0) & live
    if hm.any():
        idx = np.flatnonzero(hm)
        k2 = ci0[idx] * (len(mt_vals) + 1) + mt_code[lc0[idx]]
        uk, inv = np.unique(k2, return_inverse=True)
        res = np.array(
            [
                mt_vals[int(k) % (len(mt_vals) + 1)]
                in catalog[catalog.codes[int(k) // (len(mt_vals) + 1)]].lmt_med_types
                for k in uk
            ],
            dtype=bool,
        )
        in_scope[idx] &= res[inv]

    # category self-pay items (home-bed set-up and round-visit fees)
    cat_l = cat[lc0] if nl else np.zeros(0, I64)
    emp_l = is_emp[lc0] if nl else np.zeros(0, bool)
    selfpay_item = np.zeros(nl, dtype=bool)
    for si, snap in enumerate(snaps):
        for sch_name, sch in snap.schemes.items():
            for cname, crule in sch.categories.items():
                codes = [catalog.index[x] for x in crule.selfpay_items if x in catalog.index]
                if not codes:
                    continue
                mm = (seg_l == si) & (cat_l == CATS.index(cname)) & (emp_l == (sch_name == "employee"))
                selfpay_item |= mm & np.isin(ci, codes)

    excl_l = catalog.acct_excluded[ci0]
    full = excl_l | (chrg == 3) | selfpay_item | ~in_scope
    cap = cap_l
    over = np.where(~full & (cap > 0) & (pric > cap), amt - (cnt * cap + 500) // 1000, 0)
    allowed_amt = amt - over
    pre = np.where(~full & (chrg == 2), _rate(allowed_amt, spbp), 0)
    ins = np.where(full, 0, allowed_amt - pre)

    medfee = per_claim(amt)
    fulamt = per_claim(np.where(full, amt, 0))
    overlmt = per_claim(over)
    presel = per_claim(pre)
    inscp = per_claim(ins)
    excl = per_claim(np.where(excl_l, amt, 0))

    # ---- accepted claims in person-year order -----------------------------------------
    claim_rank = np.empty(n, dtype=I64)
    claim_rank[np.argsort(setl_s, kind="stable")] = np.arange(n)
    keep_mask = ~rej.bad
    ymin = int(sy.min()) if n else 0
    order = np.lexsort((claim_rank, sy, pi0))  # person, year, claim order
    order = order[keep_mask[order]]
    m = len(order)

    def k(a):
        return a[order]

    psn_i, yr, lv, cat_k, seg_k, emp, ret, ass_k, civ, crs, fld = map(
        k, (pi0, sy, hosp_lv, cat, seg, is_emp, retired, ass_c, civil, cross, filed)
    )
    setl_k, begn_k = setl_s[order], begn_s[order]
    medfee, fulamt, overlmt, presel, inscp, excl = map(k, (medfee, fulamt, overlmt, presel, inscp, excl))
    block = psn_i * 64 + (yr - ymin)
    run = _Running(block)

    # parameter arrays per claim
    ded_mode = np.zeros(m, dtype=I64)
    ded_amt = np.zeros(m, dtype=I64)
    rep_amt = np.full(m, -1, dtype=I64)
    ded_group = np.zeros(m, dtype=I64)
    ratio = np.zeros(m, dtype=I64)
    cost_cap = np.full(m, -1, dtype=I64)
    cycle_days = np.zeros(m, dtype=I64)
    pool = np.full(m, -1, dtype=I64)
    cap_amt = np.full(m, NO_CAP, dtype=I64)
    group_names: list[str] = []
    pool_names: list[str] = []
    for si, snap in enumerate(snaps):
        for sch_name, sch in snap.schemes.items():
            ms = (seg_k == si) & (emp == (sch_name == "employee"))
            for cname, cr in sch.categories.items():
                mc = ms & (cat_k == CATS.index(cname))
                if not mc.any():
                    continue
                lvv = lv[mc]
                ded_mode[mc] = _MODES[cr.deductible_mode]
                ded_amt[mc] = np.array(cr.deductible.as_list(), dtype=I64)[lvv]
                if cr.repeat_deductible is not None:
                    rep_amt[mc] = np.array(cr.repeat_deductible.as_list(), dtype=I64)[lvv]
                g = cr.deductible_group or cname
                if g not in group_names:
                    group_names.append(g)
                ded_group[mc] = group_names.index(g)
                r = np.array(cr.ratio.as_list(), dtype=I64)[lvv] + np.where(ret[mc], cr.retiree_ratio_bonus, 0)
                cp = snap.cross_province
                red = np.where(crs[mc], np.where(fld[mc], cp.filed_ratio_reduction, cp.unfiled_ratio_reduction), 0)
                ratio[mc] = np.clip(r - red, 0, BP_SCALE)
                if cr.cost_cap is not None:
                    cost_cap[mc] = cr.cost_cap
                if cr.cycle_days:
                    cycle_days[mc] = cr.cycle_days
                if cr.cap_pool is not None:
                    if cr.cap_pool not in pool_names:
                        pool_names.append(cr.cap_pool)
                    pool[mc] = pool_names.index(cr.cap_pool)
                    cap_amt[mc] = sch.caps[cr.cap_pool]

    # settlement cycles (per_cycle): period = encounter and cycle number
    cyc_mask = ded_mode == MODE_CYCLE
    period = np.zeros(m, dtype=I64)
    period_names = [""]
    if cyc_mask.any():
        idx = np.flatnonzero(cyc_mask)
        days_in = setl_k[idx] // 86400 - begn_k[idx] // 86400
        cyc = days_in // np.maximum(cycle_days[idx], 1)
        mdt = mdtrt_arr.take(pa.array(order[idx])).to_pylist()
        labels = [f"{a}#{b}" for a, b in zip(mdt, cyc.tolist(), strict=True)]
        codes, uniq = pd.factorize(pd.Series(labels, dtype=object))
        period[idx] = codes + 1
        period_names = [""] + list(uniq)

    # pooled fund: deductible, cost cap, ratio, annual cap
    adm_mask = ded_mode == MODE_ADMISSION
    adm_prev = run(["admissions"], 0, np.ones(m, dtype=I64), adm_mask)
    d_adm = np.where((adm_prev >= 1) & (rep_amt >= 0), rep_amt, ded_amt)
    yr_mask = (ded_mode == MODE_YEAR) | cyc_mask
    ded_prev = run([f"ded:{g}" for g in group_names], ded_group, inscp, yr_mask, period, period_names)
    ded = np.where(adm_mask, np.minimum(d_adm, inscp), 0)
    ded = np.where(yr_mask, np.minimum(ded_amt, ded_prev + inscp) - np.minimum(ded_amt, ded_prev), ded)
    elig = inscp - ded
    cc_mask = cost_cap >= 0
    cost_prev = run([f"cost:{c}" for c in CATS], cat_k, elig, cc_mask, period, period_names)
    elig_c = np.where(cc_mask, np.minimum(cost_cap, cost_prev + elig) - np.minimum(cost_cap, cost_prev), elig)
    fund_unc = _rate(elig_c, ratio)
    pool_mask = pool >= 0
    fund_prev = run([f"fund:{p}" for p in pool_names], np.maximum(pool, 0), fund_unc, pool_mask)
    hifp = np.where(pool_mask, np.minimum(cap_amt, fund_prev + fund_unc) - np.minimum(cap_amt, fund_prev), fund_unc)
    overflow = np.where(hifp == fund_unc, 0, elig_c - np.minimum(elig_c, (hifp * BP_SCALE) // np.maximum(ratio, 1)))

    # supplementary layers, in file order
    FIELDS = ("hifmi_pay", "hifob_pay", "cvlserv_pay", "hifes_pay", "oth_pay")
    layer_pay = {f: np.zeros(m, dtype=I64) for f in FIELDS}
    paid_layers = np.zeros(m, dtype=I64)
    layer_names: list[str] = []
    for snap in snaps:
        for sch in snap.schemes.values():
            for layer in sch.layers:
                if layer.name not in layer_names:
                    layer_names.append(layer.name)
    for lname in layer_names:
        active = np.zeros(m, dtype=bool)
        base_sel = np.zeros(m, dtype=bool)
        d = np.zeros(m, dtype=I64)
        bonus = np.zeros(m, dtype=I64)
        lcap = np.full(m, NO_CAP, dtype=I64)
        field_of = None
        parts: list[tuple[np.ndarray, object]] = []
        for si, snap in enumerate(snaps):
            for sch_name, sch in snap.schemes.items():
                for layer in sch.layers:
                    if layer.name != lname:
                        continue
                    field_of = layer.field
                    ms = (
                        (seg_k == si)
                        & (emp == (sch_name == "employee"))
                        & np.isin(cat_k, [CATS.index(x) for x in layer.applies_to])
                    )
                    if layer.requires == "civil_servant":
                        ms &= civ
                    if not ms.any():
                        continue
                    active |= ms
                    base_sel[ms] = layer.base == "selfpay"
                    if layer.poverty:
                        poor_codes = [i for i, v in enumerate(p_ass_vals) if v in layer.poverty.statuses]
                        poor = np.isin(ass_k, poor_codes)
                    else:
                        poor = np.zeros(m, dtype=bool)
                    pd_ = (
                        _rate(I64(layer.deductible), layer.poverty.deductible_factor)
                        if layer.poverty
                        else layer.deductible
                    )
                    d[ms] = np.where(poor[ms], pd_, layer.deductible)
                    bonus[ms] = np.where(poor[ms], layer.poverty.ratio_bonus if layer.poverty else 0, 0)
                    lcap[ms] = np.where(poor[ms] & bool(layer.poverty and layer.poverty.no_cap), NO_CAP, layer.cap)
                    parts.append((ms, layer))
        if field_of is None or not active.any():
            continue
        left = inscp - hifp - paid_layers
        b = np.where(base_sel, left, np.minimum(overflow, left))
        bprev = run([f"layer_base:{lname}"], 0, b, active)

        def bsum(e: np.ndarray) -> np.ndarray:
            tot = np.zeros(m, dtype=I64)
            for ms, layer in parts:
                br = layer.brackets
                for i, bk in enumerate(br):
                    part = e[ms] - bk.threshold
                    if i + 1 < len(br):
                        part = np.minimum(part, br[i + 1].threshold - bk.threshold)
                    tot[ms] += _rate(np.maximum(part, 0), np.minimum(BP_SCALE, bk.rate + bonus[ms]))
            return tot

        u = np.where(active, bsum(np.maximum(0, bprev + b - d)) - bsum(np.maximum(0, bprev - d)), 0)
        uprev = run([f"layer_pay:{lname}"], 0, u, active)
        pay = np.where(active, np.minimum(lcap, uprev + u) - np.minimum(lcap, uprev), 0)
        layer_pay[field_of] += pay
        paid_layers += pay

    # medical assistance (医疗救助)
    maf = np.zeros(m, dtype=I64)
    a_active = np.zeros(m, dtype=bool)
    a_ratio = np.zeros(m, dtype=I64)
    a_ded = np.zeros(m, dtype=I64)
    a_cap = np.full(m, NO_CAP, dtype=I64)
    for si, snap in enumerate(snaps):
        applies = np.isin(cat_k, [CATS.index(x) for x in snap.assistance.applies_to])
        for st_name, st in snap.assistance.statuses.items():
            if st_name not in p_ass_vals:
                continue
            ms = (seg_k == si) & (ass_k == p_ass_vals.index(st_name)) & applies
            a_active |= ms
            a_ratio[ms], a_ded[ms], a_cap[ms] = st.ratio, st.deductible, st.cap
    if a_active.any():
        left = inscp - hifp - paid_layers
        bprev = run(["maf_base"], 0, left, a_active)
        e = np.maximum(0, bprev + left - a_ded) - np.maximum(0, bprev - a_ded)
        u = np.where(a_active, _rate(e, a_ratio), 0)
        uprev = run(["maf_pay"], 0, u, a_active)
        maf = np.where(a_active, np.minimum(a_cap, uprev + u) - np.minimum(a_cap, uprev), 0)
    run([f"visits:{c}" for c in CATS], cat_k, np.ones(m, dtype=I64), np.ones(m, dtype=bool))

    fund_sum = hifp + paid_layers + maf
    psn_part = medfee - fund_sum

    # ---- personal accounts: one ledger per paying account ---------------------------
    payer_k = payer_pi[order] if n else np.zeros(0, I64)
    mulaid = has_payer[order] if n else np.zeros(0, bool)
    payer_idx = np.where(mulaid, payer_k, np.where(emp, psn_i, -1))
    rules = [s.schemes["employee"].account for s in snaps]
    want = np.zeros(m, dtype=I64)
    for si, rule in enumerate(rules):
        if rule is None:
            continue
        ms = (seg_k == si) & np.isin(cat_k, [CATS.index(x) for x in rule.categories])
        comps = {
            "inscp_selfpay": inscp - fund_sum,
            "preselfpay": presel,
            "fulamt_ownpay": fulamt - excl,
            "overlmt_selfpay": overlmt,
        }
        w = sum(comps[x] for x in rule.payable)
        want[ms] = w[ms]
    rule_ok = np.array([r is not None for r in rules], dtype=bool)[seg_k] if m else np.zeros(0, bool)
    has_acct = (payer_idx >= 0) & rule_ok
    acct = np.zeros(m, dtype=I64)
    balc = np.zeros(m, dtype=I64)
    if has_acct.any():
        idx = np.flatnonzero(has_acct)
        py = payer_idx[idx]
        opening = _int(pt, "acct_balc")[py]
        start = account_start or dt.date(int(sy.min()), 1, 1)
        start_m = (start.year - 1970) * 12 + start.month - 1
        cl_days = setl_k[idx] // 86400
        cy, cm, _cd = _ymd(cl_days)
        month_k = (cy - 1970) * 12 + cm - 1
        base = _int(pt, "contribution_base")[py]
        p_is_emp, p_is_ret = p_emp[py], p_retired[py]
        credited = np.zeros(len(idx), dtype=I64)
        for mi in range(int(start_m), int(month_k.max()) + 1):
            mdate = dt.date(1970 + mi // 12, mi % 12 + 1, 1)
            rule = policy.snapshot(mdate).schemes["employee"].account
            if rule is None:
                continue
            cr = np.where(
                ~p_is_emp,
                0,
                np.where(
                    p_is_ret, rule.retiree_monthly_credit, _rate(np.maximum(base, 0), rule.in_service_credit_rate)
                ),
            )
            credited += np.where(month_k >= mi, cr, 0)
        avail = opening + credited
        # ledger order: payer, then claim order
        lo = np.lexsort((claim_rank[order][idx], py))
        g = py[lo]
        w = want[idx][lo]
        a = avail[lo]
        first_row = np.r_[True, g[1:] != g[:-1]]
        W = _group_cumsum(w, first_row)
        run_min = _group_cummin(a - W, g)
        P = W + np.minimum(0, run_min)
        Pprev = np.where(first_row, 0, np.r_[0, P[:-1]])
        pay_sorted = P - Pprev
        back = np.empty_like(lo)
        back[lo] = np.arange(len(lo))
        acct[idx] = pay_sorted[back]
        balc[idx] = (a - P)[back]
    acct_pay = np.where(mulaid, 0, acct)
    mulaid_pay = np.where(mulaid, acct, 0)
    cash = psn_part - acct

    # ---- outputs, in claim order ----------------------------------------------------------
    out_order = np.argsort(claim_rank[order], kind="stable")
    take = order[out_order]
    tk = pa.array(take)

    def o(a):
        return a[out_order]

    mdt_out = mdtrt_arr.take(tk)
    cols = {
        "setl_id": pc.binary_join_element_wise("S", mdt_out, ""),
        "mdtrt_id": mdt_out,
        "psn_no": _str(ct, "psn_no").take(tk),
        "fixmedins_code": _str(ct, "fixmedins_code").take(tk),
        "setl_time": pa.array((o(setl_k) - TZ_OFFSET_S).astype("datetime64[s]"), type=pa.timestamp("s")).cast(
            pa.timestamp("s", TIMEZONE)
        ),
        "policy_year": pa.array(o(yr).astype(np.int16)),
        "insutype": pc.if_else(pa.array(o(emp), type=pa.bool_()), "310", "390"),
        "med_type": _str(ct, "med_type").take(tk),
        "benefit_category": pa.array(CATS, type=pa.string()).take(pa.array(o(cat_k))),
        "medfee_sumamt": o(medfee),
        "fulamt_ownpay_amt": o(fulamt),
        "overlmt_selfpay": o(overlmt),
        "preselfpay_amt": o(presel),
        "inscp_scp_amt": o(inscp),
        "act_pay_dedc": o(ded),
        "hifp_pay": o(hifp),
        **{f: o(layer_pay[f]) for f in FIELDS},
        "maf_pay": o(maf),
        "hosp_part_amt": np.zeros(m, dtype=I64),
        "fund_pay_sumamt": o(fund_sum),
        "psn_part_amt": o(psn_part),
        "acct_pay": o(acct_pay),
        "acct_mulaid_pay": o(mulaid_pay),
        "psn_cash_pay": o(cash),
        "pool_prop_selfpay_bp": o(ratio).astype(np.int32),
        "balc": o(balc),
        "refd_setl_flag": np.zeros(m, dtype=bool),
        "synthetic": np.zeros(m, dtype=bool),
    }
    table = pa.Table.from_pydict({c: cols[c] for c in SETTLEMENT.names}, schema=SETTLEMENT)
    po = o(payer_idx)
    payer_out = (
        pc.fill_null(psn_keys.take(pa.array(np.where(po >= 0, po, 0), mask=po < 0)), "")
        if m
        else pa.array([], type=pa.string())
    )

    # refused claims
    frames = []
    for rows, fld_, en, zh in rej.rows:
        frames.append(
            pd.DataFrame(
                {
                    "mdtrt_id": mdtrt_arr.take(pa.array(rows)).to_pylist(),
                    "field": fld_,
                    "reason_en": en,
                    "reason_zh": zh,
                }
            )
        )
    rejected = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["mdtrt_id", "field", "reason_en", "reason_zh"])
    )

    # final accumulators of this batch (group totals)
    acc_parts = []
    for blk, sub, per, tot, names, pnames in run.totals:
        if not len(tot):
            continue
        acc_parts.append(
            pa.table(
                {
                    "psn_no": psn_keys.take(pa.array(blk // 64)),
                    "policy_year": pa.array((blk % 64 + ymin).astype(np.int16)),
                    "kind": pa.array(names, type=pa.string()).take(pa.array(sub)),
                    "period": pa.array(pnames, type=pa.string()).take(pa.array(per)),
                    "value": pa.array(tot),
                }
            )
        )
    acc = pa.concat_tables(acc_parts) if acc_parts else ACCUMULATOR.empty_table()
    return BatchResult(settlements=table, rejected=rejected, accumulators=acc, acct_payer=payer_out, claim_index=take)


def _group_cumsum(v: np.ndarray, first_row: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum restarting where ``first_row`` is True (rows grouped)."""
    cs = np.cumsum(v)
    start_idx = np.maximum.accumulate(np.where(first_row, np.arange(len(v)), 0))
    return cs - (cs[start_idx] - v[start_idx])


def _group_cummin(v: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Running minimum within contiguous groups (pandas' grouped cummin, in C)."""
    return pd.Series(v).groupby(groups, sort=False).cummin().to_numpy(dtype=I64)


def family_components(persons: pa.Table, family_links: pa.Table | None) -> np.ndarray:
    """Connected components of people through family links (label = smallest member row).

    Mutual aid only flows along family links, so a component's accounts and
    accumulators never depend on anyone outside it: components can be
    settled independently (threads here; machines in a distributed engine).
    """
    P = persons.num_rows
    labels = np.arange(P, dtype=I64)
    if family_links is None or family_links.num_rows == 0 or P == 0:
        return labels
    keys = _str(persons, "psn_no")
    a = _lookup(_str(family_links, "psn_no"), keys)
    b = _lookup(_str(family_links, "relative_psn_no"), keys)
    return _components(P, a, b)


def _components(P: int, a: np.ndarray, b: np.ndarray, dtype=I64) -> np.ndarray:
    """Connected components of ``P`` people joined by the edges ``a[i]``–``b[i]`` (person rows, −1 ignored)."""
    labels = np.arange(P, dtype=dtype)
    ok = (a >= 0) & (b >= 0)
    a, b = a[ok], b[ok]
    if P == 0 or len(a) == 0:
        return labels
    while True:  # label propagation: converges in (family diameter) rounds
        la, lb = labels[a], labels[b]
        m = np.minimum(la, lb)
        before = labels.copy()
        np.minimum.at(labels, a, m)
        np.minimum.at(labels, b, m)
        labels = labels[labels]  # pointer jumping
        if np.array_equal(labels, before):
            return labels


def settle_batch_parallel(
    claims: pa.Table | pd.DataFrame,
    lines: pa.Table | pd.DataFrame,
    persons: pa.Table | pd.DataFrame,
    institutions: pa.Table | pd.DataFrame,
    catalog: Catalog,
    policy: Policy | None = None,
    book: PolicyBook | None = None,
    family_links: pa.Table | pd.DataFrame | None = None,
    account_start: dt.date | None = None,
    workers: int = 2,
    min_rows: int = 10_000,
    shard_claims: int | None = None,
) -> BatchResult:
    """:func:`settle_batch` over shards of whole families, ``workers`` at a time in threads.

    NumPy and Arrow release the GIL, so two shards use two cores.  With
    ``shard_claims`` the claims are cut into enough shards that each holds
    about that many, which bounds the engine's working memory (about 2 KB per
    claim) whatever the size of the year.  The result is identical to a
    single :func:`settle_batch` (tests show it).
    """
    from concurrent.futures import ThreadPoolExecutor

    ct, lt, pt = _table(claims), _table(lines), _table(persons)
    ft = _table(family_links) if family_links is not None else None
    if workers <= 1 or ct.num_rows < min_rows:
        return settle_batch(ct, lt, pt, institutions, catalog, policy, book, ft, account_start)
    book = book or PolicyBook.default()
    comp = family_components(pt, ft)
    n_shards = max(workers, -(-ct.num_rows // shard_claims) if shard_claims else workers)
    p_shard = _family_shard(comp, n_shards)  # spread families evenly
    pi = _lookup(_str(ct, "psn_no"), _str(pt, "psn_no"))
    c_shard = np.where(pi >= 0, p_shard[np.where(pi < 0, 0, pi)], 0)
    # lines follow their claim
    n, nl = ct.num_rows, lt.num_rows
    l_ids = _str(lt, "mdtrt_id")
    heads = (
        np.flatnonzero(np.r_[True, pc.not_equal(l_ids.slice(1), l_ids.slice(0, nl - 1)).to_numpy(zero_copy_only=False)])
        if nl
        else np.zeros(0, I64)
    )
    run_claim = _lookup(l_ids.take(pa.array(heads)), _str(ct, "mdtrt_id")) if nl else np.zeros(0, I64)
    l_shard = np.repeat(
        np.where(run_claim >= 0, c_shard[np.where(run_claim < 0, 0, run_claim)], 0), np.diff(np.r_[heads, nl])
    )
    if policy is None:
        regions = pc.unique(_str(pt, "insuplc_admdvs")).to_pylist()
        policy = book.policy(regions[0]) if len(regions) == 1 else None
    if account_start is None and n:
        first = int(_local_seconds(ct, "setl_time").min() // 86400)
        account_start = dt.date(int(_ymd(np.array([first]))[0][0]), 1, 1)

    def run(k: int):
        # each shard is cut out in its own thread, so only `workers` shards are materialised at once
        rows = np.flatnonzero(c_shard == k)
        c, l, p = ct.take(pa.array(rows)), lt.filter(pa.array(l_shard == k)), pt.filter(pa.array(p_shard == k))
        return rows, settle_batch(c, l, p, institutions, catalog, policy, book, ft, account_start)

    with ThreadPoolExecutor(workers) as ex:
        results = list(ex.map(run, range(n_shards)))
    # merge back into global claim order (setl_time, then input order)
    glob = np.concatenate([rows[r.claim_index] for rows, r in results])
    table = pa.concat_tables([r.settlements for _rows, r in results])
    setl = _local_seconds(ct, "setl_time")[glob]
    order = np.lexsort((glob, setl))
    idx = pa.array(order)
    rejected = (
        pd.concat([r.rejected for _rows, r in results if len(r.rejected)], ignore_index=True)
        if any(len(r.rejected) for _r, r in results)
        else results[0][1].rejected
    )
    return BatchResult(
        settlements=table.take(idx),
        rejected=rejected,
        accumulators=pa.concat_tables([r.accumulators for _rows, r in results]),
        acct_payer=pa.concat_arrays([r.acct_payer for _rows, r in results]).take(idx),
        claim_index=glob[order],
    )


# ---- streaming: family shards from Parquet, spilled to disk, results written as they come --------------------

PERSON_COLUMNS = ["psn_no", "insutype", "psn_type", "gend", "assistance", "civil_servant", "insuplc_admdvs", "brdy",
                  "acct_balc", "contribution_base"]  # fmt: skip  # what settle_batch reads of a person
LINK_COLUMNS = ["psn_no", "relative_psn_no", "relation"]
REJECTED_COLUMNS = ["mdtrt_id", "field", "reason_en", "reason_zh"]


class NotStreamable(Exception):
    """The input cannot be cut into family shards exactly (duplicate keys); settle it in memory instead."""


def _family_shard(labels: np.ndarray, n_shards: int) -> np.ndarray:
    """Shard of each person from its family label, spreading families evenly."""
    x = labels.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)  # splitmix64's finaliser: even for consecutive labels
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return ((x ^ (x >> np.uint64(31))) % np.uint64(n_shards)).astype(I64)


def _hash64(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A deterministic 64-bit hash of each string (null = '')."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pd.util.hash_array(pc.fill_null(arr.cast(pa.string()), "").to_numpy(zero_copy_only=False), categorize=False)


class _HashIndex:
    """64-bit key hashes → a value per key, in 256 sorted buckets (12 bytes a key, no hash table of strings).

    Built incrementally (:meth:`add`, then :meth:`finish`), so no step holds
    more than one bucket's sort on top of the keys.  A query finds the value
    of the first key added with its hash; ``-1`` if none.  ``duplicates``: two
    keys share a hash (repeated keys or a 64-bit collision); ``conflicts``:
    such keys carry different values.
    """

    BUCKETS = 256

    def __init__(self, dtype=np.int32):
        self.dtype = dtype
        self.parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(self.BUCKETS)]
        self.h: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.duplicates = self.conflicts = False

    def add(self, h: np.ndarray, values: np.ndarray) -> None:
        b = (h >> np.uint64(56)).astype(np.int64)
        order = np.argsort(b, kind="stable")
        counts = np.bincount(b, minlength=self.BUCKETS)
        hs, vs = h[order], values[order].astype(self.dtype)
        start = 0
        for k in np.flatnonzero(counts):
            end = start + int(counts[k])
            self.parts[k].append((hs[start:end].copy(), vs[start:end].copy()))
            start = end

    def finish(self) -> _HashIndex:
        for k in range(self.BUCKETS):
            ps = self.parts[k]
            h = np.concatenate([p[0] for p in ps]) if ps else np.zeros(0, np.uint64)
            v = np.concatenate([p[1] for p in ps]) if ps else np.zeros(0, self.dtype)
            self.parts[k] = []
            order = np.argsort(h, kind="stable")  # stable: the first added stays first among equal hashes
            h, v = h[order], v[order]
            same = h[1:] == h[:-1]
            self.duplicates |= bool(same.any())
            self.conflicts |= bool((same & (v[1:] != v[:-1])).any())
            self.h.append(h)
            self.v.append(v)
        return self

    def get(self, q: np.ndarray) -> np.ndarray:
        out = np.full(len(q), -1, dtype=self.dtype)
        b = (q >> np.uint64(56)).astype(np.int64)
        order = np.argsort(b, kind="stable")
        counts = np.bincount(b, minlength=self.BUCKETS)
        qs = q[order]
        start = 0
        for k in np.flatnonzero(counts):
            end = start + int(counts[k])
            h = self.h[k]
            if len(h):
                x = qs[start:end]
                pos = np.minimum(np.searchsorted(h, x), len(h) - 1)
                out[order[start:end]] = np.where(h[pos] == x, self.v[k][pos], -1)
            start = end
        return out


class _Spill:
    """One Arrow IPC file (LZ4) per part under a scratch directory: rows appended by part, read back one part at a time."""

    def __init__(self, root: Path, name: str, parts: int):
        self.paths = [root / f"{name}-{k:05d}.arrows" for k in range(parts)]
        self.writers: list[pa.ipc.RecordBatchStreamWriter | None] = [None] * parts
        self.parts = parts

    def write(self, table: pa.Table, part: np.ndarray) -> None:
        """Append each row of ``table`` to its part (``part[i]``), keeping the input order within a part."""
        if not table.num_rows:
            return
        order = np.argsort(part, kind="stable")
        counts = np.bincount(part, minlength=self.parts)
        t = table.take(pa.array(order))
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        for k in np.flatnonzero(counts):
            w = self.writers[k]
            if w is None:
                opts = pa.ipc.IpcWriteOptions(compression="lz4")
                w = self.writers[k] = pa.ipc.new_stream(str(self.paths[k]), t.schema, options=opts)
            w.write_table(t.slice(int(starts[k]), int(counts[k])))

    def close(self) -> None:
        for w in self.writers:
            if w is not None:
                w.close()
        self.writers = [None] * self.parts

    def read(self, k: int, schema: pa.Schema | None = None) -> pa.Table | None:
        if not self.paths[k].exists():
            return schema.empty_table() if schema is not None else None
        with pa.ipc.open_stream(str(self.paths[k])) as r:
            return r.read_all()


def _scan(path: Path, columns: list[str] | None, batch_rows: int) -> Iterator[pa.Table]:
    """Stream a Parquet file or dataset directory (its files in name order) as tables of at most ``batch_rows`` rows."""
    import pyarrow.parquet as pq

    n = 0
    for f in _parquet_files(path):
        pf = pq.ParquetFile(f)
        cols = None if columns is None else [c for c in columns if c in pf.schema_arrow.names]
        for b in pf.iter_batches(batch_size=batch_rows, columns=cols, use_threads=True):
            if b.num_rows:
                yield pa.Table.from_batches([b])
                n += 1
                if n % 8 == 0:  # the batches' buffers are freed between small long-lived arrays: keep the heap lean
                    _give_back_memory()
        pf.close()


def _give_back_memory() -> None:
    """Return freed memory to the system between phases (Arrow's pool and, on glibc, malloc's free lists)."""
    pa.default_memory_pool().release_unused()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


@dataclass
class StreamedResult:
    """What :func:`settle_streamed` wrote: row counts, the refused claims and the policy used."""

    settlements: int
    claims: int
    rejected: pd.DataFrame
    accumulators: int
    shards: int
    policy: Policy


def settle_streamed(
    person_path: Path,
    link_path: Path | None,
    encounter_path: Path,
    fee_path: Path,
    institutions: pa.Table,
    catalog: Catalog,
    out_dir: Path,
    *,
    policy: Policy | None = None,
    book: PolicyBook | None = None,
    claim_columns: list[str],
    line_columns: list[str],
    rename: dict[str, str] | None = None,
    settlement_schema: pa.Schema = SETTLEMENT,
    workers: int = 2,
    shard_claims: int = 100_000,
    batch_rows: int = 500_000,
    on_shard: Callable[[int, dict[str, pa.Table | None]], None] | None = None,
) -> StreamedResult:
    """Settle a region's year from Parquet in bounded memory: family shards streamed, results written as they come.

    流式分片结算.  The same result as one :func:`settle_batch` over the whole
    year (``tests/test_settle_streaming.py`` shows it), in at most a few
    hundred MB per worker whatever the size of the region:

    1. persons: a 64-bit hash of each ``psn_no``; every claim paid from a
       relative's account (``mulaid_payer_psn_no``) joins patient and payer
       into one family (:func:`_components`), and each family is given one of
       ``ceil(claims / shard_claims)`` shards — a shard never splits a family,
       so no account or accumulator crosses a shard.  (Components of the
       family-link graph, which :func:`settle_batch_parallel` uses, are a
       coarser cut with the same result: in the synthetic region they chain
       households into components of ~40,000 people, which would bound how
       small a shard can be.)  Family links are kept where both ends share a
       shard — the only ones a payer check can look at;
    2. persons, links, claims (by their patient's shard) and fee lines (by
       their claim's shard, found through a hash of ``mdtrt_id``) are streamed
       from Parquet into one Arrow IPC file per shard (a scratch directory in
       ``out_dir``, removed afterwards); lines of no claim are dropped, as
       :func:`settle_batch` ignores them;
    3. ``workers`` shards at a time are settled with :func:`settle_batch`;
       accumulators and refused claims are written as they come, settlement
       rows are spilled by time window (whole days of settlement time);
    4. each window is sorted into the global claim order (``setl_time``, then
       encounter row) and appended to ``settlement.parquet``.

    The three outputs are written under temporary names and moved into place
    at the end, so a failure leaves ``out_dir`` as it was.  Raises
    :class:`NotStreamable` when keys cannot be routed exactly (a ``psn_no``
    hash repeated, or one ``mdtrt_id`` hash in two shards); the caller then
    settles in memory.  ``rename`` renames claim columns (``endtime`` →
    ``setl_time``); ``on_shard(k, tables)`` (for tests) sees each shard's
    ``person``, ``link``, ``claim`` and ``line`` tables before it is settled.
    """
    import os
    import shutil
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq

    book = book or PolicyBook.default()
    rename = rename or {}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # 1. persons → hash index; regions; synthetic flag
    people, P, regions, synthetic = _HashIndex(np.int32), 0, set(), True
    for t in _scan(person_path, ["psn_no", "insuplc_admdvs", "synthetic"], batch_rows):
        people.add(_hash64(t.column("psn_no")), np.arange(P, P + t.num_rows, dtype=I64))
        P += t.num_rows
        if "insuplc_admdvs" in t.column_names:
            regions.update(v for v in pc.unique(t.column("insuplc_admdvs")).to_pylist() if v is not None)
        if "synthetic" in t.column_names:
            synthetic = synthetic and bool(pc.all(t.column("synthetic")).as_py())
        else:
            synthetic = False
    if P == 0:
        synthetic = False
    if P >= 2**31 - 1:
        raise ValueError(f"{P:,} persons: at most 2,147,483,646 in one region")
    people.finish()
    if people.duplicates:
        raise NotStreamable("a psn_no hash occurs twice (repeated psn_no or a hash collision)")
    if policy is None:
        if len(regions) != 1:
            raise ValueError(f"persons span several insured regions {sorted(regions)[:5]}; pass a policy")
        policy = book.policy(str(next(iter(regions))))

    # families: people whose accounts interact, i.e. a patient and the relative whose account pays (共济)
    ea, eb = [], []
    for t in _scan(encounter_path, ["psn_no", "mulaid_payer_psn_no"], batch_rows):
        if "mulaid_payer_psn_no" not in t.column_names:
            break
        has = pc.fill_null(pc.not_equal(t.column("mulaid_payer_psn_no"), ""), False)
        if not pc.any(has).as_py():
            continue
        t = t.filter(has)
        ea.append(people.get(_hash64(t.column("psn_no"))))
        eb.append(people.get(_hash64(t.column("mulaid_payer_psn_no"))))
    a = np.concatenate(ea) if ea else np.zeros(0, np.int32)
    b = np.concatenate(eb) if eb else np.zeros(0, np.int32)
    del ea, eb
    labels = _components(P, a, b, np.int32)
    del a, b
    n_claims = sum(pq.ParquetFile(f).metadata.num_rows for f in _parquet_files(encounter_path))
    n_shards = max(1, -(-n_claims // max(1, shard_claims)))
    p_shard = _family_shard(labels, n_shards).astype(np.int32)
    del labels
    _give_back_memory()

    scratch = Path(tempfile.mkdtemp(prefix=".settle-stream-", dir=out_dir))
    try:
        sp = {name: _Spill(scratch, name, n_shards) for name in ("person", "link", "claim", "line")}
        # 2a. persons and links by family shard
        for t in _scan(person_path, PERSON_COLUMNS, batch_rows):
            rows = people.get(_hash64(t.column("psn_no")))
            sp["person"].write(t, p_shard[rows])
        if link_path is not None:
            for t in _scan(link_path, LINK_COLUMNS, batch_rows):
                ra = people.get(_hash64(t.column("psn_no")))
                rb = people.get(_hash64(t.column("relative_psn_no")))
                # a link is only ever looked at for a claim of one end paid by the other, both in one shard
                ok = (ra >= 0) & (rb >= 0)
                ok[ok] = p_shard[ra[ok]] == p_shard[rb[ok]]
                if ok.any():
                    t = t.filter(pa.array(ok))
                    sp["link"].write(t, p_shard[ra[ok]])
        # 2b. claims by their patient's shard (unknown patients: the first person's shard, refused there)
        by_claim, day_counts, first_s, offset = _HashIndex(np.int16 if n_shards < 2**15 else np.int32), {}, None, 0
        nobody = int(p_shard[0]) if P else 0
        for t in _scan(encounter_path, claim_columns, batch_rows):
            t = t.rename_columns([rename.get(c, c) for c in t.column_names])
            rows = people.get(_hash64(t.column("psn_no")))
            shard = (
                np.where(rows >= 0, p_shard[np.maximum(rows, 0)], nobody).astype(np.int32)
                if P
                else np.zeros(t.num_rows, np.int32)
            )
            setl = _local_seconds(t, "setl_time")
            first_s = int(setl.min()) if first_s is None else min(first_s, int(setl.min()))
            for d, c in zip(*np.unique(setl // 86400, return_counts=True), strict=True):
                day_counts[int(d)] = day_counts.get(int(d), 0) + int(c)
            t = t.append_column("_row", pa.array(np.arange(offset, offset + t.num_rows, dtype=I64)))
            offset += t.num_rows
            sp["claim"].write(t, shard)
            by_claim.add(_hash64(t.column("mdtrt_id")), shard)
        del people, p_shard
        _give_back_memory()
        by_claim.finish()
        if by_claim.conflicts:
            raise NotStreamable(
                "one mdtrt_id hash belongs to claims of two shards (repeated mdtrt_id or a hash collision)"
            )
        # 2c. fee lines follow their claim; lines of no claim are ignored by settle_batch, so dropped
        for t in _scan(fee_path, line_columns, batch_rows):
            shard = by_claim.get(_hash64(t.column("mdtrt_id")))
            ok = shard >= 0
            if not ok.all():
                t, shard = t.filter(pa.array(ok)), shard[ok]
            sp["line"].write(t, shard.astype(np.int32))
        del by_claim
        for s in sp.values():
            s.close()
        _give_back_memory()
        account_start = None
        if first_s is not None:
            account_start = dt.date(int(_ymd(np.array([first_s // 86400]))[0][0]), 1, 1)

        # time windows of whole days, each about shard_claims rows, for the final ordering
        days = np.array(sorted(day_counts), dtype=I64)
        cum = np.cumsum([day_counts[d] for d in days.tolist()]) if len(days) else np.zeros(0, I64)
        win_of_day = ((cum - 1) // max(1, shard_claims)).astype(np.int32) if len(days) else np.zeros(0, np.int32)
        n_windows = int(win_of_day[-1]) + 1 if len(days) else 1
        wins = _Spill(scratch, "window", n_windows)

        # 3. settle shards, `workers` at a time, in shard order
        acc_tmp, rej_parts = scratch / "accumulator.parquet", []
        acc_writer = pq.ParquetWriter(acc_tmp, ACCUMULATOR)
        n_acc = 0
        empty = {"person": None, "link": None, "claim": None, "line": None}

        def settle_shard(k: int):
            parts = {name: sp[name].read(k) for name in empty}
            if on_shard is not None:
                on_shard(k, parts)
            c = parts["claim"]
            if c is None or not c.num_rows:
                return None
            p = parts["person"] if parts["person"] is not None else pa.table({"psn_no": pa.array([], pa.string())})
            ln = (
                parts["line"]
                if parts["line"] is not None
                else pa.table(
                    {
                        x: pa.array([], pa.string() if x in ("mdtrt_id", "med_list_codg") else pa.int64())
                        for x in line_columns
                    }
                )
            )
            glob = c.column("_row").to_numpy()
            res = settle_batch(
                c.drop_columns(["_row"]), ln, p, institutions, catalog, policy, book, parts["link"], account_start
            )
            return glob[res.claim_index], res

        with ThreadPoolExecutor(max(1, workers)) as ex:
            pending = []
            nxt = 0
            while nxt < n_shards or pending:
                while nxt < n_shards and len(pending) < max(1, workers):
                    pending.append(ex.submit(settle_shard, nxt))
                    nxt += 1
                got = pending.pop(0).result()
                if got is None:
                    continue
                glob, res = got
                s = res.settlements
                setl = _local_seconds(s, "setl_time")
                w = win_of_day[np.searchsorted(days, setl // 86400)]
                s = s.append_column("_setl", pa.array(setl)).append_column("_row", pa.array(glob))
                wins.write(s, w)
                if res.accumulators.num_rows:
                    acc_writer.write_table(res.accumulators.cast(ACCUMULATOR))
                    n_acc += res.accumulators.num_rows
                if len(res.rejected):
                    rej_parts.append(res.rejected)
                del got, res, s
                _give_back_memory()
        acc_writer.close()
        wins.close()

        # 4. windows in time order, each sorted into claim order, appended to settlement.parquet
        setl_tmp = scratch / "settlement.parquet"
        n_settled = 0
        with pq.ParquetWriter(setl_tmp, settlement_schema) as writer:
            for k in range(n_windows):
                t = wins.read(k)
                if t is None:
                    continue
                order = np.lexsort((t.column("_row").to_numpy(), t.column("_setl").to_numpy()))
                t = t.take(pa.array(order)).drop_columns(["_setl", "_row"])
                if synthetic:
                    t = t.set_column(
                        t.schema.get_field_index("synthetic"), "synthetic", pa.array(np.ones(t.num_rows, dtype=bool))
                    )
                writer.write_table(t.cast(settlement_schema))
                n_settled += t.num_rows
        rejected = pd.concat(rej_parts, ignore_index=True) if rej_parts else pd.DataFrame(columns=REJECTED_COLUMNS)
        rej_tmp = scratch / "settlement_rejected.parquet"
        rejected.to_parquet(rej_tmp, index=False)
        for tmp, name in (
            (setl_tmp, "settlement.parquet"),
            (rej_tmp, "settlement_rejected.parquet"),
            (acc_tmp, "accumulator.parquet"),
        ):
            os.replace(tmp, out_dir / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return StreamedResult(
        settlements=n_settled, claims=n_claims, rejected=rejected, accumulators=n_acc, shards=n_shards, policy=policy
    )


def _parquet_files(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    # as pyarrow's dataset discovery: sorted paths, skipping names that start with '.' or '_'
    return sorted(
        p
        for p in path.rglob("*.parquet")
        if p.is_file() and not any(x.startswith((".", "_")) for x in p.relative_to(path).parts)
    )
