"""Settle millions of claims at once: the vectorised batch path.

Same rules as :func:`yibao.settlement.rules.settle_claim`, in the same claim
order, with person-year accumulators computed as clipped running sums
(grouped cumulative sums) instead of a Python loop.  Property tests
(``tests/settlement/test_settlement_agreement.py``) show the two paths agree to the fen.

* Claim order is ``setl_time``, then input order.
* Claims the scalar path would refuse are returned in ``rejected`` with the
  same field and reason, and take no part in the accumulators.
* All money arithmetic is int64 fen and basis points; nothing passes through
  float.  Strings are handled in Arrow (hash lookups, dictionary encoding) and
  turned into integer codes before any NumPy work.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from yibao.benefits import maternity
from yibao.benefits.model import (
    CATEGORIES,
    CategoryRule,
    Layer,
    ListOverride,
    LongTermPrescription,
    PolicySnapshot,
    Scheme,
)
from yibao.benefits.policy import Policy, PolicyBook
from yibao.core.contract import (
    INSUTYPE_EMPLOYEE,
    PSN_TYPE_RETIRED,
    SCHEME_EMPLOYEE,
    SCHEME_INSUTYPES,
    SCHEME_RESIDENT,
    SETTLEMENT,
    TIMEZONE,
    province_part,
)
from yibao.core.money import BP_SCALE, NO_CAP
from yibao.core.money import apply_rate_np as _rate  # half-up x × bp / 10000 on int64, as apply_rate
from yibao.core.parquet_io import dataset_files
from yibao.longrx.eligibility import refusal_messages, unlisted_long_rx_lines
from yibao.settlement.catalog import Catalog, gend_code
from yibao.settlement.circulation import PrescriberLevel, prescribers_on_circulated_lines

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

CATS = list(CATEGORIES)
LAYER_FIELDS = ("hifmi_pay", "hifob_pay", "cvlserv_pay", "hifes_pay", "oth_pay")  # what a Layer may pay into
EPOCH = dt.date(1970, 1, 1)

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


@dataclass(frozen=True)
class BatchInput:
    """What the batch engine settles: the contract tables of one insured region and the rules to apply.

    :func:`settle_batch` and :func:`settle_batch_parallel` build one with :meth:`of`
    (which turns pandas frames into Arrow tables); :func:`settle_input` and
    :func:`settle_input_parallel` take it directly.
    """

    claims: pa.Table
    lines: pa.Table
    persons: pa.Table
    institutions: pa.Table
    catalog: Catalog
    policy: Policy | None
    book: PolicyBook
    family_links: pa.Table | None = None
    account_start: dt.date | None = None
    filings: pa.Table | pd.DataFrame | None = None  # 异地就医备案; when given it decides cross_filed
    circulation: PrescriberLevel | None = None  # 外配处方: the level a circulated prescription is paid at

    @classmethod
    def of(
        cls,
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
        circulation: PrescriberLevel | None = None,
    ) -> BatchInput:
        links = _table(family_links) if family_links is not None else None
        return cls(
            _table(claims),
            _table(lines),
            _table(persons),
            _table(institutions),
            catalog,
            policy,
            book or PolicyBook.default(),
            links,
            account_start,
            filings,
            circulation,
        )


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
    circulation: PrescriberLevel | None = None,
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
    ``circulation``: when given, a claim whose lines carry ``rx_circ_flag`` is paid at the level its rule says
    (the prescribing institution's, found through the lines' ``bilg_dr_code``; see
    :mod:`yibao.settlement.circulation`); without it every claim is paid at its own institution's level.
    """
    inp = BatchInput.of(
        claims, lines, persons, institutions, catalog, policy, book, family_links, account_start, filings, circulation
    )
    return settle_input(inp)


def settle_input(inp: BatchInput) -> BatchResult:
    """:func:`settle_batch` of a :class:`BatchInput`: the stages below, in order, over one :class:`_Frame`."""
    fr = _Frame(inp)
    for stage in _STAGES:
        stage(fr)
    return _assemble(fr)


@dataclass
class _Frame:
    """The batch in flight (结算帧): input columns as NumPy/Arrow arrays, then what each stage derives.

    Each stage reads fields set by the stages before it and sets its own
    (declared below in stage order).  Claim arrays are in input order and line
    arrays in line order up to :func:`_person_year_order`; from there the
    claim arrays ``k_*`` hold the accepted claims in person-year order.
    """

    inp: BatchInput
    ct: pa.Table = field(init=False)
    lt: pa.Table = field(init=False)
    pt: pa.Table = field(init=False)
    n: int = field(init=False)
    rej: _Reject = field(init=False)
    # _read_persons: per person row
    psn_keys: pa.Array = field(init=False)
    p_emp: np.ndarray = field(init=False)
    p_retired: np.ndarray = field(init=False)
    p_ins_code: np.ndarray = field(init=False)
    p_ins_vals: list[str] = field(init=False)
    p_gend_vals: list[str] = field(init=False)
    p_ass_vals: list[str] = field(init=False)
    insuplc_vals: list[str] = field(init=False)
    # _read_claims: per claim, input order
    mdtrt: pa.Array = field(init=False)
    setl_s: np.ndarray = field(init=False)
    begn_s: np.ndarray = field(init=False)
    setl_day: np.ndarray = field(init=False)
    sy: np.ndarray = field(init=False)
    pi: np.ndarray = field(init=False)
    pi0: np.ndarray = field(init=False)
    is_emp: np.ndarray = field(init=False)
    retired: np.ndarray = field(init=False)
    gend_c: np.ndarray = field(init=False)
    ass_c: np.ndarray = field(init=False)
    civil: np.ndarray = field(init=False)
    age: np.ndarray = field(init=False)
    hosp_lv: np.ndarray = field(init=False)
    mt_code: np.ndarray = field(init=False)
    mt_vals: list[str] = field(init=False)
    dise_code: np.ndarray = field(init=False)
    dise_vals: list[str] = field(init=False)
    oth_code: np.ndarray = field(init=False)
    oth_vals: list[str] = field(init=False)
    area_code: np.ndarray = field(init=False)
    area_vals: list[str] = field(init=False)
    region_of_claim: np.ndarray = field(init=False)
    # _cross_region
    cross: np.ndarray = field(init=False)
    filed: np.ndarray = field(init=False)
    # _policy_segments
    policy: Policy = field(init=False)
    first: dt.date = field(init=False)
    last: dt.date = field(init=False)
    snaps: list[PolicySnapshot] = field(init=False)
    seg: np.ndarray = field(init=False)
    # _classify
    cat: np.ndarray = field(init=False)
    # _check_mutual_aid
    has_payer: np.ndarray = field(init=False)
    payer_pi: np.ndarray = field(init=False)
    # _read_lines: per fee line
    nl: int = field(init=False)
    heads: np.ndarray = field(init=False)
    run_len: np.ndarray = field(init=False)
    run_claim: np.ndarray = field(init=False)
    aligned: bool = field(init=False)
    lc0: np.ndarray = field(init=False)
    live: np.ndarray = field(init=False)
    ci: np.ndarray = field(init=False)
    ci0: np.ndarray = field(init=False)
    cnt: np.ndarray = field(init=False)
    pric: np.ndarray = field(init=False)
    amt: np.ndarray = field(init=False)
    prd: np.ndarray = field(init=False)
    sn: np.ndarray = field(init=False)
    seg_l: np.ndarray = field(init=False)
    # _list_overrides
    chrg: np.ndarray = field(init=False)
    spbp: np.ndarray = field(init=False)
    cap_l: np.ndarray = field(init=False)  # each line's price cap (限价), after the treatment province's list
    # _scope
    in_scope: np.ndarray = field(init=False)
    # _price: per claim, input order
    medfee: np.ndarray = field(init=False)
    fulamt: np.ndarray = field(init=False)
    overlmt: np.ndarray = field(init=False)
    presel: np.ndarray = field(init=False)
    inscp: np.ndarray = field(init=False)
    excl: np.ndarray = field(init=False)
    # _person_year_order: accepted claims, person-year order
    claim_rank: np.ndarray = field(init=False)
    order: np.ndarray = field(init=False)
    m: int = field(init=False)
    ymin: int = field(init=False)
    run: _Running = field(init=False)
    acc: _Accepted = field(init=False)
    # _benefit_parameters
    ded_mode: np.ndarray = field(init=False)
    ded_amt: np.ndarray = field(init=False)
    rep_amt: np.ndarray = field(init=False)
    ded_group: np.ndarray = field(init=False)
    ratio: np.ndarray = field(init=False)
    cost_cap: np.ndarray = field(init=False)
    cycle_days: np.ndarray = field(init=False)
    pool: np.ndarray = field(init=False)
    cap_amt: np.ndarray = field(init=False)
    group_names: list[str] = field(init=False)
    pool_names: list[str] = field(init=False)
    # _settlement_cycles
    period: np.ndarray = field(init=False)
    period_names: list[str] = field(init=False)
    # _pooled_fund
    ded: np.ndarray = field(init=False)
    hifp: np.ndarray = field(init=False)
    overflow: np.ndarray = field(init=False)
    # _layers
    layer_pay: dict[str, np.ndarray] = field(init=False)
    paid_layers: np.ndarray = field(init=False)
    # _assistance
    maf: np.ndarray = field(init=False)
    # _accounts
    payer_idx: np.ndarray = field(init=False)
    mulaid: np.ndarray = field(init=False)
    acct: np.ndarray = field(init=False)
    balc: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.ct, self.lt, self.pt = self.inp.claims, self.inp.lines, self.inp.persons
        self.n = self.ct.num_rows
        self.rej = _Reject(self.n)

    def of_claim(self, per_person: np.ndarray) -> np.ndarray:
        """A person-row array taken for each claim's patient."""
        return per_person[self.pi0] if self.n else np.zeros(0, per_person.dtype)

    def of_line(self, per_claim: np.ndarray) -> np.ndarray:
        """A claim array taken for each fee line's claim."""
        return per_claim[self.lc0] if self.nl else np.zeros(0, per_claim.dtype)

    def per_claim(self, x: np.ndarray) -> np.ndarray:
        """Sum a line quantity per claim (exact int64: run sums, then scatter)."""
        out = np.zeros(self.n, dtype=I64)
        if self.nl:
            rs = np.add.reduceat(np.where(self.live, x, 0).astype(I64), self.heads)
            ok = self.run_claim >= 0
            np.add.at(out, self.run_claim[ok], rs[ok])
        return out

    def claim_any(self, mask: np.ndarray) -> np.ndarray:
        return self.per_claim(mask.astype(I64)) > 0


def _day_number(d: dt.date) -> int:
    return (d - EPOCH).days


def _flags(values: list[str], codes: np.ndarray, wanted: str) -> np.ndarray:
    """Per row: does the dictionary-encoded value equal ``wanted``? (empty when there are no rows)"""
    if not len(codes):
        return np.zeros(0, bool)
    return np.array([v == wanted for v in values], dtype=bool)[codes]


# ---- stages: claims and persons --------------------------------------------------------------------------


def _read_persons(fr: _Frame) -> None:
    pt = fr.pt
    fr.psn_keys = _str(pt, "psn_no")
    fr.p_ins_code, fr.p_ins_vals = _codes(_str(pt, "insutype"))
    fr.p_emp = _flags(fr.p_ins_vals, fr.p_ins_code, INSUTYPE_EMPLOYEE)
    p_type_code, p_type_vals = _codes(_str(pt, "psn_type"))
    fr.p_retired = _flags(p_type_vals, p_type_code, PSN_TYPE_RETIRED)


def _read_claims(fr: _Frame) -> None:
    ct, pt, it = fr.ct, fr.pt, fr.inp.institutions
    fr.mdtrt = _str(ct, "mdtrt_id")
    fr.setl_s = _local_seconds(ct, "setl_time")
    fr.begn_s = _local_seconds(ct, "begntime")
    fr.setl_day = fr.setl_s // 86400
    fr.sy, sm, sd = _ymd(fr.setl_day)
    fr.pi = _lookup(_str(ct, "psn_no"), fr.psn_keys)
    fr.rej.add(fr.pi < 0, "psn_no", "unknown psn_no", "人员编号不存在")
    fr.pi0 = np.where(fr.pi < 0, 0, fr.pi)

    p_gend_code, fr.p_gend_vals = _codes(_str(pt, "gend"))
    p_ass_code, fr.p_ass_vals = _codes(_str(pt, "assistance"))
    p_region_code, fr.insuplc_vals = _codes(_str(pt, "insuplc_admdvs"))
    brdy_days = _local_seconds(pt, "brdy") // 86400 if "brdy" in pt.column_names else np.zeros(pt.num_rows, dtype=I64)
    by, bm, bd = _ymd(brdy_days)
    fr.is_emp = fr.of_claim(fr.p_emp)
    fr.retired = fr.of_claim(fr.p_retired)
    fr.gend_c = fr.of_claim(p_gend_code)
    fr.ass_c = fr.of_claim(p_ass_code)
    fr.civil = fr.of_claim(_bool(pt, "civil_servant", False))
    if fr.n:
        bm_c, bd_c = bm[fr.pi0], bd[fr.pi0]
        fr.age = fr.sy - by[fr.pi0] - ((sm < bm_c) | ((sm == bm_c) & (sd < bd_c))).astype(I64)
    else:
        fr.age = np.zeros(0, I64)

    ii = _lookup(_str(ct, "fixmedins_code"), _str(it, "fixmedins_code"))
    fr.rej.add(ii < 0, "fixmedins_code", "unknown fixmedins_code", "定点医药机构编码不存在")
    fr.hosp_lv = _int(it, "hosp_lv")[np.where(ii < 0, 0, ii)] if fr.n else np.zeros(0, I64)
    fr.mt_code, fr.mt_vals = _codes(_str(ct, "med_type"))
    fr.dise_code, fr.dise_vals = _codes(_str(ct, "dise_codg"))
    fr.oth_code, fr.oth_vals = _codes(_str(ct, "other_dise_codg", fr.n))
    fr.area_code, fr.area_vals = _codes(_str(ct, "mdtrtarea_admvs", fr.n))
    fr.region_of_claim = fr.of_claim(p_region_code)


def _cross_region(fr: _Frame) -> None:
    """Cross-province claims (province = first 2 digits of treatment and insured places) and their filing."""
    n, area_vals, insuplc_vals = fr.n, fr.area_vals, fr.insuplc_vals
    area_prov = np.array([province_part(v) for v in area_vals], dtype=object)
    ins_prov = np.array([province_part(v) for v in insuplc_vals], dtype=object)
    area_blank = np.array([not v for v in area_vals], dtype=bool)
    if n:
        width = len(insuplc_vals) + 1
        pair = fr.area_code * width + fr.region_of_claim
        pu, pinv = np.unique(pair, return_inverse=True)
        pu_cross = np.array(
            [(not area_blank[a]) and area_prov[a] != ins_prov[r] for a, r in zip(pu // width, pu % width, strict=True)],
            dtype=bool,
        )
        fr.cross = pu_cross[pinv]
    else:
        fr.cross = np.zeros(0, bool)
    fr.filed = _bool(fr.ct, "cross_filed", True)
    if fr.inp.filings is not None:  # 异地就医备案: the filing table decides, not the claim column
        from yibao.crossregion.batch import filed_flags

        claim_insutype = np.array(fr.p_ins_vals + [""], dtype=object)[fr.of_claim(fr.p_ins_code)]
        fr.filed = filed_flags(
            fr.inp.filings,
            _str(fr.ct, "psn_no").to_numpy(zero_copy_only=False),
            claim_insutype,
            np.array(area_vals + [""], dtype=object)[fr.area_code] if n else np.zeros(0, object),
            fr.setl_day,
            fr.cross,
        )


def _reject_bad_level(fr: _Frame) -> None:
    """The level a claim is paid at must be 0..3 (its own institution's, then a circulated prescription's issuer's)."""
    fr.rej.add((fr.hosp_lv < 0) | (fr.hosp_lv > 3), "hosp_lv", "institution level is not 0..3", "医疗机构等级无效")


def _check_claims(fr: _Frame) -> None:
    fr.rej.add(
        fr.setl_s < fr.begn_s, "setl_time", "settlement time is before the encounter began", "结算时间早于就诊开始时间"
    )
    _reject_bad_level(fr)


def _policy_segments(fr: _Frame) -> None:
    """The insured region's policy, cut into segments of one snapshot by its effective dates."""
    if len(fr.insuplc_vals) > 1:
        raise ValueError(f"settle_batch takes claims of one insured region; got {sorted(fr.insuplc_vals)}")
    book, policy = fr.inp.book, fr.inp.policy
    if policy is None:
        policy = book.policy(fr.insuplc_vals[0]) if fr.insuplc_vals else book.policy("national-default")
    fr.policy = policy
    if fr.n:
        fr.first = EPOCH + dt.timedelta(days=int(fr.setl_day.min()))
        fr.last = EPOCH + dt.timedelta(days=int(fr.setl_day.max()))
    else:
        fr.first = fr.last = dt.date.today()
    segs = policy.segments(fr.first, fr.last)
    fr.snaps = [s for _a, _b, s in segs]
    fr.seg = np.zeros(fr.n, dtype=I64)
    for si, (a, _b, _s) in enumerate(segs):
        fr.seg[fr.setl_day >= _day_number(a)] = si


def _classify(fr: _Frame) -> None:
    """Benefit category of each claim from its med_type (and, for chronic care, its diagnosis)."""
    fr.cat = np.full(fr.n, -1, dtype=I64)
    for si, snap in enumerate(fr.snaps):
        _classify_segment(fr, fr.seg == si, snap)
    fr.rej.add(fr.cat < 0, "med_type", "unknown med_type", "医疗类别无效")


def _classify_segment(fr: _Frame, in_seg: np.ndarray, snap: PolicySnapshot) -> None:
    n, cat, dise_vals = fr.n, fr.cat, fr.dise_vals
    sp = _prefix_hits(dise_vals, snap.chronic_diseases.get("special", ()))[fr.dise_code] if n else np.zeros(0, bool)
    ch = _prefix_hits(dise_vals, snap.chronic_diseases.get("chronic", ()))[fr.dise_code] if n else np.zeros(0, bool)
    for code, setting in snap.med_types.items():
        if code not in fr.mt_vals:
            continue
        mm = in_seg & (fr.mt_code == fr.mt_vals.index(code))
        if setting == "chronic":
            cat[mm & sp] = CATS.index("special")
            cat[mm & ~sp & ch] = CATS.index("chronic")
            fr.rej.add(
                mm & ~sp & ~ch,
                "dise_codg",
                "diagnosis is not a recognised chronic or special disease",
                "诊断不属于门诊慢特病病种",
            )
        elif setting == "maternity":
            cat[mm] = CATS.index(maternity.category_for(setting))
        else:
            cat[mm] = CATS.index(setting)


def _check_mutual_aid(fr: _Frame) -> None:
    """Family mutual aid (家庭共济): the payer must be a linked employee relative, not the patient."""
    n = fr.n
    payer_arr = _str(fr.ct, "mulaid_payer_psn_no", n)
    fr.has_payer = pc.not_equal(payer_arr, "").to_numpy(zero_copy_only=False) if n else np.zeros(0, bool)
    fr.payer_pi = np.full(n, -1, dtype=I64)
    if not fr.has_payer.any():
        return
    has_payer = fr.has_payer
    payer_pi = fr.payer_pi = _lookup(payer_arr, fr.psn_keys)
    fr.rej.add(
        has_payer & (payer_pi == fr.pi),
        "mulaid_payer_psn_no",
        "the mutual-aid payer is the patient",
        "共济支付人不能是患者本人",
    )
    fr.rej.add(
        has_payer & ~_family_linked(fr),
        "mulaid_payer_psn_no",
        "relation may not pay through family mutual aid",
        "关系不在家庭共济范围内",
    )
    payer_emp = np.where(payer_pi >= 0, fr.p_emp[np.where(payer_pi < 0, 0, payer_pi)], False)
    fr.rej.add(
        has_payer & ~payer_emp,
        "mulaid_payer_psn_no",
        "only an employee's personal account can pay for relatives",
        "共济账户须为职工个人账户",
    )


def _family_linked(fr: _Frame) -> np.ndarray:
    """Per claim: a family link of an allowed relation joins patient and payer."""
    rel_ok = np.zeros(fr.n, dtype=bool)
    rule0 = fr.snaps[0].schemes[SCHEME_EMPLOYEE].account
    allowed_rel = set(rule0.mutual_aid_relations) if rule0 else set()
    ft = fr.inp.family_links
    if ft is None or not ft.num_rows:
        return rel_ok
    a = _lookup(_str(ft, "psn_no"), fr.psn_keys)
    b = _lookup(_str(ft, "relative_psn_no"), fr.psn_keys)
    rel_c, rel_v = _codes(_str(ft, "relation"))
    ok_rel = np.array([r in allowed_rel for r in rel_v], dtype=bool)[rel_c]
    P = max(1, fr.pt.num_rows)
    link_keys = (a * P + b)[(a >= 0) & (b >= 0) & ok_rel]
    payer_pi = fr.payer_pi
    return np.isin(fr.pi0 * P + np.where(payer_pi < 0, 0, payer_pi), link_keys) & (payer_pi >= 0)


# ---- stages: fee lines -----------------------------------------------------------------------------------


def _read_lines(fr: _Frame) -> None:
    """Fee lines as runs of one mdtrt_id, each run joined to its claim."""
    lt, n = fr.lt, fr.n
    nl = fr.nl = lt.num_rows
    l_ids = _str(lt, "mdtrt_id")
    if nl:
        fr.heads = np.flatnonzero(
            np.r_[True, pc.not_equal(l_ids.slice(1), l_ids.slice(0, nl - 1)).to_numpy(zero_copy_only=False)]
        )
    else:
        fr.heads = np.zeros(0, dtype=I64)
    fr.run_len = np.diff(np.r_[fr.heads, nl])
    head_ids = l_ids.take(pa.array(fr.heads)) if nl else l_ids
    fr.aligned = bool(len(fr.heads) == n and n and pc.all(pc.equal(head_ids, fr.mdtrt)).as_py())
    if fr.aligned:
        fr.run_claim = np.arange(n, dtype=I64)  # lines grouped in claim order: no lookup needed
    else:
        fr.run_claim = _lookup(head_ids, fr.mdtrt) if nl else np.zeros(0, I64)
    lc = np.repeat(fr.run_claim, fr.run_len)
    fr.live = lc >= 0  # lines of no claim are ignored
    fr.lc0 = np.where(fr.live, lc, 0)
    catalog = fr.inp.catalog
    fr.ci = _lookup(_str(lt, "med_list_codg"), pa.array(catalog.codes.tolist(), type=pa.string()))
    fr.ci0 = np.where(fr.ci < 0, 0, fr.ci)
    fr.cnt = _int(lt, "cnt_milli")
    fr.pric = _int(lt, "pric")
    fr.amt = _int(lt, "det_item_fee_sumamt")
    fr.prd = _int(lt, "prd_days")
    fr.sn = _int(lt, "feedetl_sn")
    fr.seg_l = fr.of_line(fr.seg)


def _circulated_level(fr: _Frame) -> None:
    """A claim holding a circulated prescription (外配处方, ``rx_circ_flag``) is paid at its issuer's level when the
    rule in force on the claim's first day says so (:mod:`yibao.settlement.circulation`; the scalar path's
    ``level_of``).  The issuer is the institution its lines' prescriber (``bilg_dr_code``) practises at.

    Refused, as the scalar path refuses an unknown ``level_of``: a circulated line whose prescriber or the
    prescriber's institution is unknown; and a claim whose circulated lines come from institutions of different
    levels (one claim is paid at one level: such fills are settled one prescription at a time).
    """
    rule = fr.inp.circulation
    if rule is None or not rule.ever_at_issuer or not fr.nl or not fr.n:
        return
    rows = np.flatnonzero(_bool(fr.lt, "rx_circ_flag", False) & fr.live)
    if not len(rows):
        return
    claim = fr.lc0[rows]
    on = rule.at_issuer(fr.begn_s[claim] // 86400)
    rows, claim = rows[on], claim[on]
    if not len(rows):
        return
    it, pr = fr.inp.institutions, rule.prescribers
    level = np.full(len(rows), -1, dtype=I64)  # the issuer's hosp_lv per circulated line; −1 unknown
    if pr.num_rows:
        pi = _lookup(_str(fr.lt, "bilg_dr_code").take(pa.array(rows)), _str(pr, "prac_psn_code"))
        issuer = _str(pr, "fixmedins_code").take(pa.array(np.maximum(pi, 0)))
        ii = np.where(pi < 0, -1, _lookup(issuer, _str(it, "fixmedins_code")))
        level = np.where(ii < 0, -1, _int(it, "hosp_lv")[np.maximum(ii, 0)])
    unknown = np.zeros(fr.n, dtype=bool)
    unknown[claim[level < 0]] = True
    fr.rej.add(
        unknown,
        "bilg_dr_code",
        "circulated prescription line: its prescriber (bilg_dr_code) or the prescriber's institution is unknown",
        "外配处方明细的开方医师或其所在定点医药机构不存在",
    )
    known = level >= 0
    lo = np.full(fr.n, np.iinfo(I64).max, dtype=I64)
    hi = np.full(fr.n, -1, dtype=I64)
    np.minimum.at(lo, claim[known], level[known])
    np.maximum.at(hi, claim[known], level[known])
    fr.rej.add(
        (hi >= 0) & (lo != hi),
        "bilg_dr_code",
        "circulated prescriptions of institutions of different levels in one claim; settle one prescription a claim",
        "一次结算含不同等级机构开具的外配处方, 请按处方分别结算",
    )
    fr.hosp_lv = np.where(hi >= 0, hi, fr.hosp_lv)
    _reject_bad_level(fr)


def _duplicate_lines(fr: _Frame) -> np.ndarray:
    """Per line: its feedetl_sn repeats within its claim (a full sort only when runs are not already ordered)."""
    nl, sn, run_claim = fr.nl, fr.sn, fr.run_claim
    dup = np.zeros(nl, bool)
    if not nl:
        return dup
    new_run = np.zeros(nl, dtype=bool)
    new_run[fr.heads] = True
    ascending_in_runs = bool(np.all(new_run[1:] | (sn[1:] > sn[:-1])))
    ok_runs = run_claim[run_claim >= 0]
    runs_unique = fr.aligned or (
        len(ok_runs) == len(run_claim) and np.bincount(ok_runs, minlength=fr.n).max(initial=0) <= 1
    )
    if ascending_in_runs and runs_unique:
        return dup
    key = fr.lc0 * (1 << 31) + sn
    key = np.where(fr.live, key, -1 - np.arange(nl))
    srt = np.sort(key)
    dupkeys = srt[1:][srt[1:] == srt[:-1]]
    return np.isin(key, dupkeys) if len(dupkeys) else dup


def _check_lines(fr: _Frame) -> None:
    n_lines = np.zeros(fr.n, dtype=I64)
    if fr.nl:
        ok = fr.run_claim >= 0
        np.add.at(n_lines, fr.run_claim[ok], fr.run_len[ok])
    rej, any_ = fr.rej, fr.claim_any
    cnt, pric, amt = fr.cnt, fr.pric, fr.amt
    rej.add(n_lines == 0, "feedetail", "a claim needs at least one fee line", "结算须至少包含一条费用明细")
    rej.add(any_(_duplicate_lines(fr)), "feedetl_sn", "duplicate feedetl_sn", "费用明细流水号重复")
    rej.add(any_(cnt <= 0), "cnt", "quantity must be positive", "数量必须为正数")
    rej.add(any_(pric < 0), "pric", "negative price", "单价不能为负")
    rej.add(
        any_(amt != (cnt * pric + 500) // 1000),
        "det_item_fee_sumamt",
        "det_item_fee_sumamt ≠ cnt × pric",
        "明细项目费用总额与数量×单价不符",
    )
    rej.add(any_(fr.prd < 0), "prd_days", "negative prd_days", "周期天数不能为负")
    rej.add(any_(fr.ci < 0), "med_list_codg", "unknown med_list_codg", "医保目录编码不存在")


def _list_overrides(fr: _Frame) -> None:
    """Class, self-pay share and price cap of each line: the catalogue, the treatment province's list on a
    cross-province claim (就医地目录, yibao.crossregion.lists), then the place of treatment's own overrides."""
    catalog = fr.inp.catalog
    fr.chrg = catalog.class_code[fr.ci0].copy()  # 1 甲, 2 乙, 3 丙
    fr.spbp = catalog.selfpay_bp[fr.ci0].copy()
    fr.cap_l = catalog.cap[fr.ci0].copy()
    area_l = fr.of_line(fr.area_code)
    day_l = fr.of_line(fr.setl_day)
    if fr.nl:
        from yibao.crossregion.lists import overlay_lines

        area_names = np.array(fr.area_vals + [""], dtype=object)[area_l]
        overlay_lines(catalog, fr.ci, fr.of_line(fr.cross), area_names, day_l, fr.chrg, fr.spbp, fr.cap_l)
    for a_i, a in enumerate(fr.area_vals):
        lpol = fr.inp.book.policy(a) if (a and a != fr.policy.region) else fr.policy
        for seg_start, seg_end, src in lpol.segments(fr.first, fr.last):
            if not src.list_overrides:
                continue
            am = (area_l == a_i) & (day_l >= _day_number(seg_start)) & (day_l < _day_number(seg_end))
            _apply_overrides(fr, am, src.list_overrides)


def _apply_overrides(fr: _Frame, on: np.ndarray, overrides: dict[str, ListOverride]) -> None:
    catalog = fr.inp.catalog
    for code, ov in overrides.items():
        if code not in catalog.index:
            continue
        mm = on & (fr.ci == catalog.index[code])
        if ov.chrgitm_lv is not None:
            fr.chrg[mm] = int(ov.chrgitm_lv)
        if ov.selfpay_prop is not None:
            fr.spbp[mm] = ov.selfpay_prop


def _check_long_term_rx(fr: _Frame) -> None:
    """Long-term prescriptions (长期处方): day limits, the patient's confirmation, excluded drug classes."""
    catalog, prd = fr.inp.catalog, fr.prd
    is_drug = catalog.is_drug[fr.ci0] & (fr.ci >= 0) & fr.live
    confirmed = _bool(fr.ct, "lt_rx_confirmed", False)
    for si, snap in enumerate(fr.snaps):
        rule = snap.long_term_prescription
        m = (fr.seg_l == si) & is_drug & (prd > rule.long_rx_over_days)
        if not m.any():
            continue
        fr.rej.add(
            fr.claim_any(m & (prd > rule.max_days)),
            "prd_days",
            f"prescription exceeds the long-term maximum of {rule.max_days} days",
            f"处方用药天数超过长期处方最长 {rule.max_days} 天",
        )
        fr.rej.add(
            fr.claim_any(m & (prd > rule.normal_max_days) & ~confirmed[fr.lc0]),
            "lt_rx_confirmed",
            f"prescription over {rule.normal_max_days} days needs an evaluation note and the patient's confirmation",
            f"超过 {rule.normal_max_days} 天的长期处方须注明理由并经患者确认",
        )
        _check_excluded_classes(fr, m, rule)
        en, zh = refusal_messages(snap)  # 长期处方适用病种 (yibao.longrx)
        codes = ((fr.mt_vals, fr.mt_code), (fr.dise_vals, fr.dise_code), (fr.oth_vals, fr.oth_code))
        fr.rej.add(fr.claim_any(unlisted_long_rx_lines(snap, m, fr.lc0, *codes)), "dise_codg", en, zh)


def _check_excluded_classes(fr: _Frame, long_rx: np.ndarray, rule: LongTermPrescription) -> None:
    catalog = fr.inp.catalog
    for cls_ in rule.excluded_classes:
        cid = catalog.drug_class_id.get(cls_)
        if cid is None:
            continue
        mm = long_rx & (catalog.drug_class_code[fr.ci0] == cid)
        if not mm.any():
            continue
        exc = rule.exceptions.get(cls_, ())
        by_diagnosis = (
            _prefix_hits(fr.dise_vals, exc)[fr.dise_code] | _prefix_hits(fr.oth_vals, exc, multi=True)[fr.oth_code]
        )
        fr.rej.add(
            fr.claim_any(mm & ~by_diagnosis[fr.lc0]),
            "med_list_codg",
            f"drug class {cls_} may not be given as a long-term prescription",
            f"该药品类别 ({cls_}) 不得开具长期处方",
        )


def _scope(fr: _Frame) -> None:
    """Restricted payment scope (限定支付范围): gender, age, institution level, indication, med_type."""
    catalog, ci0 = fr.inp.catalog, fr.ci0
    lg = catalog.lmt_gend_code[ci0]
    p_gend_num = np.array([gend_code(v) for v in fr.p_gend_vals] + [0], dtype=I64)
    gend_l = p_gend_num[fr.of_line(fr.gend_c)] if fr.nl else np.zeros(0, I64)
    in_scope = (lg == 0) | (lg == gend_l)
    amin, amax = catalog.lmt_age_min[ci0], catalog.lmt_age_max[ci0]
    age_l = fr.of_line(fr.age)
    in_scope &= ((amin < 0) | (age_l >= amin)) & ((amax < 0) | (age_l <= amax))
    lvmin = catalog.lmt_hosp_lv_min[ci0]
    in_scope &= (lvmin <= 0) | (fr.hosp_lv[fr.lc0] >= lvmin)
    fr.in_scope = in_scope
    _scope_indication(fr)
    _scope_med_types(fr)


def _scope_indication(fr: _Frame) -> None:
    catalog, ci0, lc0 = fr.inp.catalog, fr.ci0, fr.lc0
    hi = catalog.has_indication[ci0] & (fr.ci >= 0) & fr.live
    if not hi.any():
        return
    nd, no = len(fr.dise_vals) + 1, len(fr.oth_vals) + 1
    idx = np.flatnonzero(hi)
    k3 = (ci0[idx] * nd + fr.dise_code[lc0[idx]]) * no + fr.oth_code[lc0[idx]]
    uk, inv = np.unique(k3, return_inverse=True)
    res = np.zeros(len(uk), dtype=bool)
    for j, kk in enumerate(uk):
        c_i, rest = divmod(int(kk), nd * no)
        d_i, o_i = divmod(rest, no)
        pref = catalog[catalog.codes[c_i]].lmt_indication
        codes = (fr.dise_vals[d_i] or "", *[x for x in (fr.oth_vals[o_i] or "").split(";") if x])
        res[j] = any(cd.startswith(pf) for cd in codes if cd for pf in pref)
    fr.in_scope[idx] &= res[inv]


def _scope_med_types(fr: _Frame) -> None:
    catalog, ci0, mt_vals = fr.inp.catalog, fr.ci0, fr.mt_vals
    hm = catalog.has_med_types[ci0] & (fr.ci >= 0) & fr.live
    if not hm.any():
        return
    width = len(mt_vals) + 1
    idx = np.flatnonzero(hm)
    k2 = ci0[idx] * width + fr.mt_code[fr.lc0[idx]]
    uk, inv = np.unique(k2, return_inverse=True)
    res = np.array(
        [mt_vals[int(k) % width] in catalog[catalog.codes[int(k) // width]].lmt_med_types for k in uk],
        dtype=bool,
    )
    fr.in_scope[idx] &= res[inv]


def _category_selfpay_items(fr: _Frame) -> np.ndarray:
    """Per line: an item fully self-paid in its claim's category (home-bed set-up and round-visit fees)."""
    catalog = fr.inp.catalog
    cat_l = fr.of_line(fr.cat)
    emp_l = fr.of_line(fr.is_emp)
    selfpay_item = np.zeros(fr.nl, dtype=bool)
    for si, snap in enumerate(fr.snaps):
        for sch_name, sch in snap.schemes.items():
            for cname, crule in sch.categories.items():
                codes = [catalog.index[x] for x in crule.selfpay_items if x in catalog.index]
                if not codes:
                    continue
                mm = (fr.seg_l == si) & (cat_l == CATS.index(cname)) & (emp_l == (sch_name == SCHEME_EMPLOYEE))
                selfpay_item |= mm & np.isin(fr.ci, codes)
    return selfpay_item


def _price(fr: _Frame) -> None:
    """Split each line into own-pay, over-limit, self-pay-first and in-policy amounts, summed per claim."""
    catalog, ci0, amt, cnt, pric = fr.inp.catalog, fr.ci0, fr.amt, fr.cnt, fr.pric
    excl_l = catalog.acct_excluded[ci0]
    full = excl_l | (fr.chrg == 3) | _category_selfpay_items(fr) | ~fr.in_scope
    cap = fr.cap_l
    over = np.where(~full & (cap > 0) & (pric > cap), amt - (cnt * cap + 500) // 1000, 0)
    allowed_amt = amt - over
    pre = np.where(~full & (fr.chrg == 2), _rate(allowed_amt, fr.spbp), 0)
    ins = np.where(full, 0, allowed_amt - pre)
    fr.medfee = fr.per_claim(amt)
    fr.fulamt = fr.per_claim(np.where(full, amt, 0))
    fr.overlmt = fr.per_claim(over)
    fr.presel = fr.per_claim(pre)
    fr.inscp = fr.per_claim(ins)
    fr.excl = fr.per_claim(np.where(excl_l, amt, 0))


# ---- stages: the person-year ledger of accepted claims ---------------------------------------------------


@dataclass(frozen=True)
class _Accepted:
    """The accepted claims' columns in person-year order (person, year, then claim order)."""

    person: np.ndarray
    year: np.ndarray
    level: np.ndarray
    cat: np.ndarray
    seg: np.ndarray
    emp: np.ndarray
    retired: np.ndarray
    assistance: np.ndarray
    civil: np.ndarray
    cross: np.ndarray
    filed: np.ndarray
    setl_s: np.ndarray
    begn_s: np.ndarray
    medfee: np.ndarray
    fulamt: np.ndarray
    overlmt: np.ndarray
    presel: np.ndarray
    inscp: np.ndarray
    excl: np.ndarray


def _person_year_order(fr: _Frame) -> None:
    n = fr.n
    fr.claim_rank = np.empty(n, dtype=I64)
    fr.claim_rank[np.argsort(fr.setl_s, kind="stable")] = np.arange(n)
    fr.ymin = int(fr.sy.min()) if n else 0
    order = np.lexsort((fr.claim_rank, fr.sy, fr.pi0))  # person, year, claim order
    order = fr.order = order[~fr.rej.bad[order]]
    fr.m = len(order)
    fr.acc = _Accepted(
        person=fr.pi0[order],
        year=fr.sy[order],
        level=fr.hosp_lv[order],
        cat=fr.cat[order],
        seg=fr.seg[order],
        emp=fr.is_emp[order],
        retired=fr.retired[order],
        assistance=fr.ass_c[order],
        civil=fr.civil[order],
        cross=fr.cross[order],
        filed=fr.filed[order],
        setl_s=fr.setl_s[order],
        begn_s=fr.begn_s[order],
        medfee=fr.medfee[order],
        fulamt=fr.fulamt[order],
        overlmt=fr.overlmt[order],
        presel=fr.presel[order],
        inscp=fr.inscp[order],
        excl=fr.excl[order],
    )
    fr.run = _Running(fr.acc.person * 64 + (fr.acc.year - fr.ymin))


def _benefit_parameters(fr: _Frame) -> None:
    """Per accepted claim, the rule parameters of its segment, scheme, category and institution level."""
    m, acc = fr.m, fr.acc
    fr.ded_mode = np.zeros(m, dtype=I64)
    fr.ded_amt = np.zeros(m, dtype=I64)
    fr.rep_amt = np.full(m, -1, dtype=I64)
    fr.ded_group = np.zeros(m, dtype=I64)
    fr.ratio = np.zeros(m, dtype=I64)
    fr.cost_cap = np.full(m, -1, dtype=I64)
    fr.cycle_days = np.zeros(m, dtype=I64)
    fr.pool = np.full(m, -1, dtype=I64)
    fr.cap_amt = np.full(m, NO_CAP, dtype=I64)
    fr.group_names, fr.pool_names = [], []
    for si, snap in enumerate(fr.snaps):
        for sch_name, sch in snap.schemes.items():
            ms = (acc.seg == si) & (acc.emp == (sch_name == SCHEME_EMPLOYEE))
            for cname, cr in sch.categories.items():
                mc = ms & (acc.cat == CATS.index(cname))
                if mc.any():
                    _category_parameters(fr, mc, cname, cr, sch, snap)


def _category_parameters(
    fr: _Frame, mc: np.ndarray, cname: str, cr: CategoryRule, sch: Scheme, snap: PolicySnapshot
) -> None:
    acc = fr.acc
    lvv = acc.level[mc]
    fr.ded_mode[mc] = _MODES[cr.deductible_mode]
    fr.ded_amt[mc] = np.array(cr.deductible.as_list(), dtype=I64)[lvv]
    if cr.repeat_deductible is not None:
        fr.rep_amt[mc] = np.array(cr.repeat_deductible.as_list(), dtype=I64)[lvv]
    g = cr.deductible_group or cname
    if g not in fr.group_names:
        fr.group_names.append(g)
    fr.ded_group[mc] = fr.group_names.index(g)
    r = np.array(cr.ratio.as_list(), dtype=I64)[lvv] + np.where(acc.retired[mc], cr.retiree_ratio_bonus, 0)
    cp = snap.cross_province
    red = np.where(acc.cross[mc], np.where(acc.filed[mc], cp.filed_ratio_reduction, cp.unfiled_ratio_reduction), 0)
    fr.ratio[mc] = np.clip(r - red, 0, BP_SCALE)
    if cr.cost_cap is not None:
        fr.cost_cap[mc] = cr.cost_cap
    if cr.cycle_days:
        fr.cycle_days[mc] = cr.cycle_days
    if cr.cap_pool is not None:
        if cr.cap_pool not in fr.pool_names:
            fr.pool_names.append(cr.cap_pool)
        fr.pool[mc] = fr.pool_names.index(cr.cap_pool)
        fr.cap_amt[mc] = sch.caps[cr.cap_pool]


def _settlement_cycles(fr: _Frame) -> None:
    """Settlement cycles (per_cycle deductibles): the period is the encounter and its cycle number."""
    cyc_mask = fr.ded_mode == MODE_CYCLE
    fr.period = np.zeros(fr.m, dtype=I64)
    fr.period_names = [""]
    if not cyc_mask.any():
        return
    idx = np.flatnonzero(cyc_mask)
    days_in = fr.acc.setl_s[idx] // 86400 - fr.acc.begn_s[idx] // 86400
    cyc = days_in // np.maximum(fr.cycle_days[idx], 1)
    mdt = fr.mdtrt.take(pa.array(fr.order[idx])).to_pylist()
    labels = [f"{a}#{b}" for a, b in zip(mdt, cyc.tolist(), strict=True)]
    codes, uniq = pd.factorize(pd.Series(labels, dtype=object))
    fr.period[idx] = codes + 1
    fr.period_names = [""] + list(uniq)


def _pooled_fund(fr: _Frame) -> None:
    """Pooled fund (统筹基金): deductible, cost cap, ratio and annual cap, as clipped running sums."""
    m, run, inscp, ratio = fr.m, fr.run, fr.acc.inscp, fr.ratio
    period, period_names = fr.period, fr.period_names
    adm_mask = fr.ded_mode == MODE_ADMISSION
    adm_prev = run(["admissions"], 0, np.ones(m, dtype=I64), adm_mask)
    d_adm = np.where((adm_prev >= 1) & (fr.rep_amt >= 0), fr.rep_amt, fr.ded_amt)
    yr_mask = (fr.ded_mode == MODE_YEAR) | (fr.ded_mode == MODE_CYCLE)
    ded_prev = run([f"ded:{g}" for g in fr.group_names], fr.ded_group, inscp, yr_mask, period, period_names)
    ded = np.where(adm_mask, np.minimum(d_adm, inscp), 0)
    fr.ded = np.where(yr_mask, np.minimum(fr.ded_amt, ded_prev + inscp) - np.minimum(fr.ded_amt, ded_prev), ded)
    elig = inscp - fr.ded
    cc_mask = fr.cost_cap >= 0
    cost_prev = run([f"cost:{c}" for c in CATS], fr.acc.cat, elig, cc_mask, period, period_names)
    cost_cap = fr.cost_cap
    elig_c = np.where(cc_mask, np.minimum(cost_cap, cost_prev + elig) - np.minimum(cost_cap, cost_prev), elig)
    fund_unc = _rate(elig_c, ratio)
    pool_mask = fr.pool >= 0
    fund_prev = run([f"fund:{p}" for p in fr.pool_names], np.maximum(fr.pool, 0), fund_unc, pool_mask)
    cap_amt = fr.cap_amt
    fr.hifp = np.where(pool_mask, np.minimum(cap_amt, fund_prev + fund_unc) - np.minimum(cap_amt, fund_prev), fund_unc)
    fr.overflow = np.where(
        fr.hifp == fund_unc, 0, elig_c - np.minimum(elig_c, (fr.hifp * BP_SCALE) // np.maximum(ratio, 1))
    )


@dataclass
class _LayerRows:
    """Where one supplementary layer (by name) applies, with its per-claim deductible, bonus and cap."""

    active: np.ndarray
    on_selfpay: np.ndarray  # base = in-policy self-pay left (else: the overflow above the basic cap)
    deductible: np.ndarray
    bonus: np.ndarray
    cap: np.ndarray
    pay_field: str | None = None
    parts: list[tuple[np.ndarray, Layer]] = field(default_factory=list)


def _layers(fr: _Frame) -> None:
    """Supplementary layers (大病保险, 大额补助, 公务员补助 …), in file order, each on what is left."""
    fr.layer_pay = {f: np.zeros(fr.m, dtype=I64) for f in LAYER_FIELDS}
    fr.paid_layers = np.zeros(fr.m, dtype=I64)
    layer_names: list[str] = []
    for snap in fr.snaps:
        for sch in snap.schemes.values():
            for layer in sch.layers:
                if layer.name not in layer_names:
                    layer_names.append(layer.name)
    for lname in layer_names:
        rows = _layer_rows(fr, lname)
        if rows.pay_field is None or not rows.active.any():
            continue
        pay = _layer_pay(fr, lname, rows)
        fr.layer_pay[rows.pay_field] += pay
        fr.paid_layers += pay


def _layer_rows(fr: _Frame, lname: str) -> _LayerRows:
    m, acc = fr.m, fr.acc
    rows = _LayerRows(
        active=np.zeros(m, dtype=bool),
        on_selfpay=np.zeros(m, dtype=bool),
        deductible=np.zeros(m, dtype=I64),
        bonus=np.zeros(m, dtype=I64),
        cap=np.full(m, NO_CAP, dtype=I64),
    )
    for si, snap in enumerate(fr.snaps):
        for sch_name, sch in snap.schemes.items():
            for layer in sch.layers:
                if layer.name != lname:
                    continue
                rows.pay_field = layer.field
                ms = (
                    (acc.seg == si)
                    & (acc.emp == (sch_name == SCHEME_EMPLOYEE))
                    & np.isin(acc.cat, [CATS.index(x) for x in layer.applies_to])
                )
                if layer.requires == "civil_servant":
                    ms &= acc.civil
                if ms.any():
                    _layer_rows_of(fr, rows, ms, layer)
    return rows


def _layer_rows_of(fr: _Frame, rows: _LayerRows, ms: np.ndarray, layer: Layer) -> None:
    rows.active |= ms
    rows.on_selfpay[ms] = layer.base == "selfpay"
    pov = layer.poverty
    if pov is None:
        rows.deductible[ms] = layer.deductible
        rows.bonus[ms] = 0
        rows.cap[ms] = layer.cap
    else:  # 困难群众倾斜: lower deductible, higher rates, perhaps no cap
        poor_codes = [i for i, v in enumerate(fr.p_ass_vals) if v in pov.statuses]
        poor = np.isin(fr.acc.assistance, poor_codes)[ms]
        poor_deductible = int(_rate(np.asarray(layer.deductible), pov.deductible_factor))
        rows.deductible[ms] = np.where(poor, poor_deductible, layer.deductible)
        rows.bonus[ms] = np.where(poor, pov.ratio_bonus, 0)
        rows.cap[ms] = np.where(poor & pov.no_cap, NO_CAP, layer.cap)
    rows.parts.append((ms, layer))


def _bracket_sum(e: np.ndarray, rows: _LayerRows) -> np.ndarray:
    """The layer's payment on a cumulative eligible amount ``e``, bracket by bracket (分段累进)."""
    tot = np.zeros(len(e), dtype=I64)
    for ms, layer in rows.parts:
        br = layer.brackets
        for i, bk in enumerate(br):
            part = e[ms] - bk.threshold
            if i + 1 < len(br):
                part = np.minimum(part, br[i + 1].threshold - bk.threshold)
            tot[ms] += _rate(np.maximum(part, 0), np.minimum(BP_SCALE, bk.rate + rows.bonus[ms]))
    return tot


def _layer_pay(fr: _Frame, lname: str, rows: _LayerRows) -> np.ndarray:
    run, active, d = fr.run, rows.active, rows.deductible
    left = fr.acc.inscp - fr.hifp - fr.paid_layers
    b = np.where(rows.on_selfpay, left, np.minimum(fr.overflow, left))
    bprev = run([f"layer_base:{lname}"], 0, b, active)
    u = np.where(
        active, _bracket_sum(np.maximum(0, bprev + b - d), rows) - _bracket_sum(np.maximum(0, bprev - d), rows), 0
    )
    uprev = run([f"layer_pay:{lname}"], 0, u, active)
    return np.where(active, np.minimum(rows.cap, uprev + u) - np.minimum(rows.cap, uprev), 0)


def _assistance(fr: _Frame) -> None:
    """Medical assistance (医疗救助) on the in-policy self-pay left, by assistance status."""
    m, acc, run = fr.m, fr.acc, fr.run
    fr.maf = np.zeros(m, dtype=I64)
    a_active = np.zeros(m, dtype=bool)
    a_ratio = np.zeros(m, dtype=I64)
    a_ded = np.zeros(m, dtype=I64)
    a_cap = np.full(m, NO_CAP, dtype=I64)
    for si, snap in enumerate(fr.snaps):
        applies = np.isin(acc.cat, [CATS.index(x) for x in snap.assistance.applies_to])
        for st_name, st in snap.assistance.statuses.items():
            if st_name not in fr.p_ass_vals:
                continue
            ms = (acc.seg == si) & (acc.assistance == fr.p_ass_vals.index(st_name)) & applies
            a_active |= ms
            a_ratio[ms], a_ded[ms], a_cap[ms] = st.ratio, st.deductible, st.cap
    if a_active.any():
        left = acc.inscp - fr.hifp - fr.paid_layers
        bprev = run(["maf_base"], 0, left, a_active)
        e = np.maximum(0, bprev + left - a_ded) - np.maximum(0, bprev - a_ded)
        u = np.where(a_active, _rate(e, a_ratio), 0)
        uprev = run(["maf_pay"], 0, u, a_active)
        fr.maf = np.where(a_active, np.minimum(a_cap, uprev + u) - np.minimum(a_cap, uprev), 0)
    run([f"visits:{c}" for c in CATS], acc.cat, np.ones(m, dtype=I64), np.ones(m, dtype=bool))


# ---- stage: personal accounts ----------------------------------------------------------------------------


def _account_wanted(fr: _Frame, fund_sum: np.ndarray) -> np.ndarray:
    """Per accepted claim: what its segment's account rule lets the personal account pay."""
    acc = fr.acc
    want = np.zeros(fr.m, dtype=I64)
    comps = {
        "inscp_selfpay": acc.inscp - fund_sum,
        "preselfpay": acc.presel,
        "fulamt_ownpay": acc.fulamt - acc.excl,
        "overlmt_selfpay": acc.overlmt,
    }
    for si, snap in enumerate(fr.snaps):
        rule = snap.schemes[SCHEME_EMPLOYEE].account
        if rule is None:
            continue
        ms = (acc.seg == si) & np.isin(acc.cat, [CATS.index(x) for x in rule.categories])
        w = np.zeros(fr.m, dtype=I64)
        for x in rule.payable:
            w = w + comps[x]
        want[ms] = w[ms]
    return want


def _accounts(fr: _Frame) -> None:
    """Personal accounts (个人账户): one ledger per paying account, in claim order, never below zero."""
    m, acc, n = fr.m, fr.acc, fr.n
    payer_k = fr.payer_pi[fr.order] if n else np.zeros(0, I64)
    fr.mulaid = fr.has_payer[fr.order] if n else np.zeros(0, bool)
    fr.payer_idx = np.where(fr.mulaid, payer_k, np.where(acc.emp, acc.person, -1))
    want = _account_wanted(fr, fr.hifp + fr.paid_layers + fr.maf)
    has_rule = np.array([s.schemes[SCHEME_EMPLOYEE].account is not None for s in fr.snaps], dtype=bool)
    rule_ok = has_rule[acc.seg] if m else np.zeros(0, bool)
    has_acct = (fr.payer_idx >= 0) & rule_ok
    fr.acct = np.zeros(m, dtype=I64)
    fr.balc = np.zeros(m, dtype=I64)
    if has_acct.any():
        idx = np.flatnonzero(has_acct)
        py = fr.payer_idx[idx]
        avail = _int(fr.pt, "acct_balc")[py] + _account_credits(fr, idx, py)
        # ledger order: payer, then claim order
        lo = np.lexsort((fr.claim_rank[fr.order][idx], py))
        g = py[lo]
        w = want[idx][lo]
        a = avail[lo]
        first_row = np.r_[True, g[1:] != g[:-1]]
        W = _group_cumsum(w, first_row)
        P = W + np.minimum(0, _group_cummin(a - W, g))
        Pprev = np.where(first_row, 0, np.r_[0, P[:-1]])
        back = np.empty_like(lo)
        back[lo] = np.arange(len(lo))
        fr.acct[idx] = (P - Pprev)[back]
        fr.balc[idx] = (a - P)[back]


def _account_credits(fr: _Frame, idx: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Monthly credits (每月划入) to each payer's account from ``account_start`` up to each claim's month."""
    start = fr.inp.account_start or dt.date(int(fr.sy.min()), 1, 1)
    start_m = (start.year - 1970) * 12 + start.month - 1
    cy, cm, _cd = _ymd(fr.acc.setl_s[idx] // 86400)
    month_k = (cy - 1970) * 12 + cm - 1
    base = _int(fr.pt, "contribution_base")[py]
    p_is_emp, p_is_ret = fr.p_emp[py], fr.p_retired[py]
    credited = np.zeros(len(idx), dtype=I64)
    for mi in range(int(start_m), int(month_k.max()) + 1):
        rule = fr.policy.snapshot(dt.date(1970 + mi // 12, mi % 12 + 1, 1)).schemes[SCHEME_EMPLOYEE].account
        if rule is None:
            continue
        in_service = _rate(np.maximum(base, 0), rule.in_service_credit_rate)
        cr = np.where(~p_is_emp, 0, np.where(p_is_ret, rule.retiree_monthly_credit, in_service))
        credited += np.where(month_k >= mi, cr, 0)
    return credited


# ---- output ----------------------------------------------------------------------------------------------


def _assemble(fr: _Frame) -> BatchResult:
    """Settlement rows in claim order, refused claims, and the batch's final accumulators."""
    m, acc = fr.m, fr.acc
    out_order = np.argsort(fr.claim_rank[fr.order], kind="stable")
    take = fr.order[out_order]
    tk = pa.array(take)

    def out(a: np.ndarray) -> np.ndarray:
        return a[out_order]

    fund_sum = fr.hifp + fr.paid_layers + fr.maf
    psn_part = acc.medfee - fund_sum
    mdt_out = fr.mdtrt.take(tk)
    employee = pa.array(out(acc.emp), type=pa.bool_())
    cols = {
        "setl_id": pc.binary_join_element_wise("S", mdt_out, ""),
        "mdtrt_id": mdt_out,
        "psn_no": _str(fr.ct, "psn_no").take(tk),
        "fixmedins_code": _str(fr.ct, "fixmedins_code").take(tk),
        "setl_time": pa.array((out(acc.setl_s) - TZ_OFFSET_S).astype("datetime64[s]"), type=pa.timestamp("s")).cast(
            pa.timestamp("s", TIMEZONE)
        ),
        "policy_year": pa.array(out(acc.year).astype(np.int16)),
        "insutype": pc.if_else(employee, SCHEME_INSUTYPES[SCHEME_EMPLOYEE], SCHEME_INSUTYPES[SCHEME_RESIDENT]),
        "med_type": _str(fr.ct, "med_type").take(tk),
        "benefit_category": pa.array(CATS, type=pa.string()).take(pa.array(out(acc.cat))),
        "medfee_sumamt": out(acc.medfee),
        "fulamt_ownpay_amt": out(acc.fulamt),
        "overlmt_selfpay": out(acc.overlmt),
        "preselfpay_amt": out(acc.presel),
        "inscp_scp_amt": out(acc.inscp),
        "act_pay_dedc": out(fr.ded),
        "hifp_pay": out(fr.hifp),
        **{f: out(fr.layer_pay[f]) for f in LAYER_FIELDS},
        "maf_pay": out(fr.maf),
        "hosp_part_amt": np.zeros(m, dtype=I64),
        "fund_pay_sumamt": out(fund_sum),
        "psn_part_amt": out(psn_part),
        "acct_pay": out(np.where(fr.mulaid, 0, fr.acct)),
        "acct_mulaid_pay": out(np.where(fr.mulaid, fr.acct, 0)),
        "psn_cash_pay": out(psn_part - fr.acct),
        "pool_prop_selfpay_bp": out(fr.ratio).astype(np.int32),
        "balc": out(fr.balc),
        "refd_setl_flag": np.zeros(m, dtype=bool),
        "synthetic": np.zeros(m, dtype=bool),
    }
    table = pa.Table.from_pydict({c: cols[c] for c in SETTLEMENT.names}, schema=SETTLEMENT)
    po = out(fr.payer_idx)
    payer_out = (
        pc.fill_null(fr.psn_keys.take(pa.array(np.where(po >= 0, po, 0), mask=po < 0)), "")
        if m
        else pa.array([], type=pa.string())
    )
    return BatchResult(
        settlements=table,
        rejected=_rejected_frame(fr),
        accumulators=_accumulator_table(fr),
        acct_payer=payer_out,
        claim_index=take,
    )


def _rejected_frame(fr: _Frame) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {"mdtrt_id": fr.mdtrt.take(pa.array(rows)).to_pylist(), "field": fld, "reason_en": en, "reason_zh": zh}
        )
        for rows, fld, en, zh in fr.rej.rows
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=REJECTED_COLUMNS)


def _accumulator_table(fr: _Frame) -> pa.Table:
    """Final accumulators of this batch (the running sums' group totals)."""
    acc_parts = [
        pa.table(
            {
                "psn_no": fr.psn_keys.take(pa.array(blk // 64)),
                "policy_year": pa.array((blk % 64 + fr.ymin).astype(np.int16)),
                "kind": pa.array(names, type=pa.string()).take(pa.array(sub)),
                "period": pa.array(pnames, type=pa.string()).take(pa.array(per)),
                "value": pa.array(tot),
            }
        )
        for blk, sub, per, tot, names, pnames in fr.run.totals
        if len(tot)
    ]
    return pa.concat_tables(acc_parts) if acc_parts else ACCUMULATOR.empty_table()


_STAGES: tuple[Callable[[_Frame], None], ...] = (
    _read_persons,
    _read_claims,
    _cross_region,
    _check_claims,
    _policy_segments,
    _classify,
    _check_mutual_aid,
    _read_lines,
    _circulated_level,
    _check_lines,
    _list_overrides,
    _check_long_term_rx,
    _scope,
    _price,
    _person_year_order,
    _benefit_parameters,
    _settlement_cycles,
    _pooled_fund,
    _layers,
    _assistance,
    _accounts,
)
"""settle_batch's stages, in order; :func:`_assemble` then writes the result."""


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


def _components(P: int, a: np.ndarray, b: np.ndarray, dtype: type[np.signedinteger] = I64) -> np.ndarray:
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
    filings: pa.Table | pd.DataFrame | None = None,
    circulation: PrescriberLevel | None = None,
) -> BatchResult:
    """:func:`settle_batch` over shards of whole families, ``workers`` at a time in threads.

    NumPy and Arrow release the GIL, so two shards use two cores.  With
    ``shard_claims`` the claims are cut into enough shards that each holds
    about that many, which bounds the engine's working memory (about 2 KB per
    claim) whatever the size of the year.  The result is identical to a
    single :func:`settle_batch` (tests show it).
    """
    inp = BatchInput.of(
        claims, lines, persons, institutions, catalog, policy, book, family_links, account_start, filings, circulation
    )
    return settle_input_parallel(inp, workers=workers, min_rows=min_rows, shard_claims=shard_claims)


def settle_input_parallel(
    inp: BatchInput, *, workers: int = 2, min_rows: int = 10_000, shard_claims: int | None = None
) -> BatchResult:
    """:func:`settle_batch_parallel` of a :class:`BatchInput` (the same input :func:`settle_input` takes)."""
    from concurrent.futures import ThreadPoolExecutor

    ct, lt, pt = inp.claims, inp.lines, inp.persons
    if workers <= 1 or ct.num_rows < min_rows:
        return settle_input(inp)
    comp = family_components(pt, inp.family_links)
    n_shards = max(workers, -(-ct.num_rows // shard_claims) if shard_claims else workers)
    p_shard = _family_shard(comp, n_shards)  # spread families evenly
    pi = _lookup(_str(ct, "psn_no"), _str(pt, "psn_no"))
    c_shard = np.where(pi >= 0, p_shard[np.where(pi < 0, 0, pi)], 0)
    l_shard = _line_shards(lt, ct, c_shard)  # lines follow their claim
    base = replace(inp, policy=_shared_policy(inp), account_start=_shared_account_start(inp))

    def run(k: int) -> tuple[np.ndarray, BatchResult]:
        # each shard is cut out in its own thread, so only `workers` shards are materialised at once
        rows = np.flatnonzero(c_shard == k)
        shard = replace(
            base,
            claims=ct.take(pa.array(rows)),
            lines=lt.filter(pa.array(l_shard == k)),
            persons=pt.filter(pa.array(p_shard == k)),
        )
        return rows, settle_input(shard)

    with ThreadPoolExecutor(workers) as ex:
        results = list(ex.map(run, range(n_shards)))
    return _merge_shards(ct, results)


def _line_shards(lt: pa.Table, ct: pa.Table, c_shard: np.ndarray) -> np.ndarray:
    """Shard of each fee line: its claim's (lines of no claim: shard 0, where they are ignored)."""
    nl = lt.num_rows
    if not nl:
        return np.zeros(0, I64)
    l_ids = _str(lt, "mdtrt_id")
    heads = np.flatnonzero(
        np.r_[True, pc.not_equal(l_ids.slice(1), l_ids.slice(0, nl - 1)).to_numpy(zero_copy_only=False)]
    )
    run_claim = _lookup(l_ids.take(pa.array(heads)), _str(ct, "mdtrt_id"))
    run_shard = np.where(run_claim >= 0, c_shard[np.where(run_claim < 0, 0, run_claim)], 0)
    return np.repeat(run_shard, np.diff(np.r_[heads, nl]))


def _shared_policy(inp: BatchInput) -> Policy | None:
    """The policy every shard uses: the given one, else that of the persons' one insured region."""
    if inp.policy is not None:
        return inp.policy
    regions = pc.unique(_str(inp.persons, "insuplc_admdvs")).to_pylist()
    return inp.book.policy(regions[0]) if len(regions) == 1 else None


def _shared_account_start(inp: BatchInput) -> dt.date | None:
    """Every shard credits accounts from the same date: the given one, else 1 January of the first claim's year."""
    if inp.account_start is not None or not inp.claims.num_rows:
        return inp.account_start
    first = int(_local_seconds(inp.claims, "setl_time").min() // 86400)
    return dt.date(int(_ymd(np.array([first]))[0][0]), 1, 1)


def _merge_shards(ct: pa.Table, results: list[tuple[np.ndarray, BatchResult]]) -> BatchResult:
    """Shard results merged back into global claim order (setl_time, then input order)."""
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

    def __init__(self, dtype: type[np.signedinteger] = np.int32) -> None:
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
    """One Arrow IPC file (LZ4) per part under a scratch directory.

    Rows are appended by part and read back one part at a time.
    """

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
    n = 0
    for f in dataset_files(path):
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
    circulation: PrescriberLevel | None = None,
) -> StreamedResult:
    """Settle a region's year from Parquet in bounded memory: family shards streamed, results written as they come.

    流式分片结算.  The same result as one :func:`settle_batch` over the whole
    year (``tests/settlement/test_settle_streaming.py`` shows it), in at most a few
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
    ``circulation``: as :func:`settle_batch`'s (``line_columns`` then need ``rx_circ_flag`` and ``bilg_dr_code``).
    """
    job = _StreamJob(
        paths=(Path(person_path), link_path, Path(encounter_path), Path(fee_path)),
        institutions=institutions,
        catalog=catalog,
        book=book or PolicyBook.default(),
        claim_columns=claim_columns,
        line_columns=line_columns,
        rename=rename or {},
        settlement_schema=settlement_schema,
        workers=max(1, workers),
        shard_claims=shard_claims,
        batch_rows=batch_rows,
        on_shard=on_shard,
        circulation=circulation,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    people, P, regions, synthetic = _index_persons(job)  # 1.
    job.policy = policy if policy is not None else _region_policy(job.book, regions)
    n_claims = sum(pq.ParquetFile(f).metadata.num_rows for f in dataset_files(job.paths[2]))
    n_shards = max(1, -(-n_claims // max(1, shard_claims)))
    p_shard = _family_shard(_mutual_aid_families(job, people, P), n_shards).astype(np.int32)
    _give_back_memory()
    scratch = Path(tempfile.mkdtemp(prefix=".settle-stream-", dir=out_dir))
    try:
        sp = {name: _Spill(scratch, name, n_shards) for name in _SHARD_TABLES}
        _spill_persons_and_links(job, sp, people, p_shard)  # 2a.
        by_claim, days, first_s = _spill_claims(job, sp, people, p_shard, P, n_shards)  # 2b.
        del people, p_shard
        _give_back_memory()
        _spill_lines(job, sp, by_claim.finish())  # 2c.
        del by_claim
        for s in sp.values():
            s.close()
        _give_back_memory()
        if first_s is not None:
            job.account_start = dt.date(int(_ymd(np.array([first_s // 86400]))[0][0]), 1, 1)
        windows = _TimeWindows(days, shard_claims, scratch)
        n_acc, rejected = _settle_shards(job, sp, n_shards, windows, scratch / "accumulator.parquet")  # 3.
        n_settled = _write_windows(job, windows, scratch / "settlement.parquet", synthetic)  # 4.
        rejected.to_parquet(scratch / "settlement_rejected.parquet", index=False)
        for name in ("settlement.parquet", "settlement_rejected.parquet", "accumulator.parquet"):
            os.replace(scratch / name, out_dir / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return StreamedResult(
        settlements=n_settled,
        claims=n_claims,
        rejected=rejected,
        accumulators=n_acc,
        shards=n_shards,
        policy=job.policy,
    )


_SHARD_TABLES = ("person", "link", "claim", "line")


@dataclass
class _StreamJob:
    """What every step of :func:`settle_streamed` reads: inputs, rules and sizes (set once, before the shards)."""

    paths: tuple[Path, Path | None, Path, Path]  # person, family link (optional), encounter, fee detail
    institutions: pa.Table
    catalog: Catalog
    book: PolicyBook
    claim_columns: list[str]
    line_columns: list[str]
    rename: dict[str, str]
    settlement_schema: pa.Schema
    workers: int
    shard_claims: int
    batch_rows: int
    on_shard: Callable[[int, dict[str, pa.Table | None]], None] | None
    circulation: PrescriberLevel | None = None
    policy: Policy = field(init=False)
    account_start: dt.date | None = None


def _index_persons(job: _StreamJob) -> tuple[_HashIndex, int, set[str], bool]:
    """Persons → a hash index of row numbers; also their insured regions and whether all are synthetic."""
    people, P, regions, synthetic = _HashIndex(np.int32), 0, set[str](), True
    for t in _scan(job.paths[0], ["psn_no", "insuplc_admdvs", "synthetic"], job.batch_rows):
        people.add(_hash64(t.column("psn_no")), np.arange(P, P + t.num_rows, dtype=I64))
        P += t.num_rows
        if "insuplc_admdvs" in t.column_names:
            regions.update(v for v in pc.unique(t.column("insuplc_admdvs")).to_pylist() if v is not None)
        if "synthetic" in t.column_names:
            synthetic = synthetic and bool(pc.all(t.column("synthetic")).as_py())
        else:
            synthetic = False
    if P >= 2**31 - 1:
        raise ValueError(f"{P:,} persons: at most 2,147,483,646 in one region")
    people.finish()
    if people.duplicates:
        raise NotStreamable("a psn_no hash occurs twice (repeated psn_no or a hash collision)")
    return people, P, regions, synthetic and P > 0


def _region_policy(book: PolicyBook, regions: set[str]) -> Policy:
    if len(regions) != 1:
        raise ValueError(f"persons span several insured regions {sorted(regions)[:5]}; pass a policy")
    return book.policy(str(next(iter(regions))))


def _mutual_aid_families(job: _StreamJob, people: _HashIndex, P: int) -> np.ndarray:
    """Family label of each person: people whose accounts interact (a patient and the relative who pays, 共济)."""
    ea, eb = [], []
    for t in _scan(job.paths[2], ["psn_no", "mulaid_payer_psn_no"], job.batch_rows):
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
    return _components(P, a, b, np.int32)


def _spill_persons_and_links(job: _StreamJob, sp: dict[str, _Spill], people: _HashIndex, p_shard: np.ndarray) -> None:
    for t in _scan(job.paths[0], PERSON_COLUMNS, job.batch_rows):
        sp["person"].write(t, p_shard[people.get(_hash64(t.column("psn_no")))])
    link_path = job.paths[1]
    if link_path is None:
        return
    for t in _scan(link_path, LINK_COLUMNS, job.batch_rows):
        ra = people.get(_hash64(t.column("psn_no")))
        rb = people.get(_hash64(t.column("relative_psn_no")))
        # a link is only ever looked at for a claim of one end paid by the other, both in one shard
        ok = (ra >= 0) & (rb >= 0)
        ok[ok] = p_shard[ra[ok]] == p_shard[rb[ok]]
        if ok.any():
            sp["link"].write(t.filter(pa.array(ok)), p_shard[ra[ok]])


def _spill_claims(
    job: _StreamJob, sp: dict[str, _Spill], people: _HashIndex, p_shard: np.ndarray, P: int, n_shards: int
) -> tuple[_HashIndex, dict[int, int], int | None]:
    """Claims by their patient's shard (unknown patients: the first person's shard, refused there).

    Returns the shard of each mdtrt_id (a hash index, not finished), the claims per settlement day
    and the first settlement time (local seconds).
    """
    by_claim = _HashIndex(np.int16 if n_shards < 2**15 else np.int32)
    day_counts: dict[int, int] = {}
    first_s: int | None = None
    offset = 0
    nobody = int(p_shard[0]) if P else 0
    for t in _scan(job.paths[2], job.claim_columns, job.batch_rows):
        t = t.rename_columns([job.rename.get(c, c) for c in t.column_names])
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
    return by_claim, day_counts, first_s


def _spill_lines(job: _StreamJob, sp: dict[str, _Spill], by_claim: _HashIndex) -> None:
    """Fee lines follow their claim; lines of no claim are ignored by settle_batch, so dropped."""
    if by_claim.conflicts:
        raise NotStreamable("one mdtrt_id hash belongs to claims of two shards (repeated mdtrt_id or a hash collision)")
    for t in _scan(job.paths[3], job.line_columns, job.batch_rows):
        t = prescribers_on_circulated_lines(t)
        shard = by_claim.get(_hash64(t.column("mdtrt_id")))
        ok = shard >= 0
        if not ok.all():
            t, shard = t.filter(pa.array(ok)), shard[ok]
        sp["line"].write(t, shard.astype(np.int32))


class _TimeWindows:
    """Time windows of whole settlement days, each about ``shard_claims`` claims, for the final ordering."""

    def __init__(self, day_counts: dict[int, int], shard_claims: int, scratch: Path):
        self.days = np.array(sorted(day_counts), dtype=I64)
        if len(self.days):
            cum = np.cumsum([day_counts[d] for d in self.days.tolist()])
            self.win_of_day = ((cum - 1) // max(1, shard_claims)).astype(np.int32)
        else:
            self.win_of_day = np.zeros(0, np.int32)
        self.count = int(self.win_of_day[-1]) + 1 if len(self.days) else 1
        self.spill = _Spill(scratch, "window", self.count)

    def write(self, settlements: pa.Table, glob: np.ndarray) -> None:
        """Spill settlement rows (with their global claim row) to the window of their settlement day."""
        setl = _local_seconds(settlements, "setl_time")
        w = self.win_of_day[np.searchsorted(self.days, setl // 86400)]
        self.spill.write(settlements.append_column("_setl", pa.array(setl)).append_column("_row", pa.array(glob)), w)


_EMPTY_LINE_TYPES = {
    "mdtrt_id": pa.string(), "med_list_codg": pa.string(), "bilg_dr_code": pa.string(), "rx_circ_flag": pa.bool_()
}  # fmt: skip


def _settle_one_shard(job: _StreamJob, sp: dict[str, _Spill], k: int) -> tuple[np.ndarray, BatchResult] | None:
    parts = {name: sp[name].read(k) for name in _SHARD_TABLES}
    if job.on_shard is not None:
        job.on_shard(k, parts)
    c = parts["claim"]
    if c is None or not c.num_rows:
        return None
    p = parts["person"] if parts["person"] is not None else pa.table({"psn_no": pa.array([], pa.string())})
    ln = parts["line"]
    if ln is None:
        ln = pa.table({x: pa.array([], _EMPTY_LINE_TYPES.get(x, pa.int64())) for x in job.line_columns})
    glob = c.column("_row").to_numpy()
    res = settle_batch(
        c.drop_columns(["_row"]),
        ln,
        p,
        job.institutions,
        job.catalog,
        job.policy,
        job.book,
        parts["link"],
        job.account_start,
        circulation=job.circulation,
    )
    return glob[res.claim_index], res


def _settle_shards(
    job: _StreamJob, sp: dict[str, _Spill], n_shards: int, windows: _TimeWindows, acc_path: Path
) -> tuple[int, pd.DataFrame]:
    """Settle shards ``workers`` at a time in shard order; accumulators to ``acc_path``, settlements to windows."""
    from concurrent.futures import Future, ThreadPoolExecutor

    n_acc, rej_parts = 0, []
    with pq.ParquetWriter(acc_path, ACCUMULATOR) as acc_writer, ThreadPoolExecutor(job.workers) as ex:
        pending: list[Future[tuple[np.ndarray, BatchResult] | None]] = []
        nxt = 0
        while nxt < n_shards or pending:
            while nxt < n_shards and len(pending) < job.workers:
                pending.append(ex.submit(_settle_one_shard, job, sp, nxt))
                nxt += 1
            got = pending.pop(0).result()
            if got is None:
                continue
            glob, res = got
            windows.write(res.settlements, glob)
            if res.accumulators.num_rows:
                acc_writer.write_table(res.accumulators.cast(ACCUMULATOR))
                n_acc += res.accumulators.num_rows
            if len(res.rejected):
                rej_parts.append(res.rejected)
            del got, res
            _give_back_memory()
    windows.spill.close()
    rejected = pd.concat(rej_parts, ignore_index=True) if rej_parts else pd.DataFrame(columns=REJECTED_COLUMNS)
    return n_acc, rejected


def _write_windows(job: _StreamJob, windows: _TimeWindows, path: Path, synthetic: bool) -> int:
    """Windows in time order, each sorted into claim order (setl_time, then encounter row), appended to ``path``."""
    n_settled = 0
    with pq.ParquetWriter(path, job.settlement_schema) as writer:
        for k in range(windows.count):
            t = windows.spill.read(k)
            if t is None:
                continue
            order = np.lexsort((t.column("_row").to_numpy(), t.column("_setl").to_numpy()))
            t = t.take(pa.array(order)).drop_columns(["_setl", "_row"])
            if synthetic:
                t = t.set_column(
                    t.schema.get_field_index("synthetic"), "synthetic", pa.array(np.ones(t.num_rows, dtype=bool))
                )
            writer.write_table(t.cast(job.settlement_schema))
            n_settled += t.num_rows
    return n_settled
