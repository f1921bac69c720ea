"""Injected patterns with ground truth (the hook supervision builds on).

A pattern is a function registered under a name::

    @register_pattern("duplicate_charge")
    def duplicate_charge(frames, rate, rng) -> pa.Table:
        ...

It receives one chunk's tables as pandas frames (``person``,
``family_link``, ``encounter``, ``fee_detail``; timestamps as int64 epoch
seconds), changes them in place (or replaces them in the dict), and returns
``ground_truth`` rows (contract ``GROUND_TRUTH``: entity, entity_id, pattern,
detail).  ``generate_region(..., patterns={"duplicate_charge": 0.01})``
applies it; :data:`DEFAULT_RATES` is the mix the supervision demo, tests and
benchmark use.

Every pattern is SYNTHETIC fraud, written as the behaviour of a dishonest
provider or patient, not from the supervision rules: the rules in
``yibao/data/supervision`` must find it on their own.  ``rate`` is the share
of the *eligible* entities that receive the pattern (eligible lines,
encounters, persons or institution–item pairs; each function's docstring says
which).  Where the generated data already holds true instances of a pattern
(a service charged above its government price, a claim after the person's
recorded death), the pattern labels those too, with a detail saying so.

Labels the generator writes by itself (not injected, but true facts about the
data): ``restricted_scope`` for a fee line kept outside its payment
restriction (entity ``fee_detail``, id ``mdtrt_id#feedetl_sn`` with the line
number in 6 digits; detail gend / age / hosp_lv / indication / med_type) and
``long_rx_unconfirmed`` for an encounter whose > 28-day prescription lacks the
patient's confirmation.

Entities and ids: ``fee_detail`` ``mdtrt_id#000012``; ``encounter``
``mdtrt_id``; ``person`` ``psn_no``; ``inst_item``
``fixmedins_code#med_list_codg`` (stock mismatch).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core import contract as C
from yibao.core.errors import YibaoError

DAY = 86_400
PatternFn = Callable[[dict[str, pd.DataFrame], float, np.random.Generator], pa.Table]
PATTERNS: dict[str, PatternFn] = {}
_TS_COLS = {"encounter": ("begntime", "endtime"), "fee_detail": ("fee_ocur_time",)}

# The mix used by the supervision demo, tests and benchmark (ILLUSTRATIVE rates,
# share of each pattern's eligible entities).
DEFAULT_RATES: dict[str, float] = {
    "duplicate_charge": 0.004,
    "over_standard_price": 0.002,
    "unbundled_charge": 0.3,
    "swapped_item": 0.01,
    "excess_quantity": 0.002,
    "long_rx_excess": 0.003,
    "split_admission": 0.02,
    "low_standard_admission": 0.002,
    "upcoding": 0.03,
    "impersonation": 0.1,
    "phantom_admission": 0.05,
    "over_examination": 0.01,
    "stock_mismatch": 0.01,
    "ring": 0.0005,
}


def register_pattern(name: str) -> Callable[[PatternFn], PatternFn]:
    def deco(fn: PatternFn) -> PatternFn:
        PATTERNS[name] = fn
        return fn

    return deco


class _Frames(dict):
    """The chunk's frames plus a per-chunk cache (``attrs``)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.attrs: dict = {}


def _to_frames(tables: dict[str, pa.Table]) -> _Frames:
    out = _Frames()
    for name, t in tables.items():
        cols = {}
        for f in t.schema:
            col = t.column(f.name)
            if name in _TS_COLS and f.name in _TS_COLS[name]:
                cols[f.name] = col.cast(pa.timestamp("s", tz=C.TIMEZONE)).cast(pa.int64()).to_numpy()
            elif pa.types.is_string(f.type):  # plain object columns: hash-based isin/map, no Arrow-backed strings
                cols[f.name] = pd.Series(col.to_numpy(zero_copy_only=False).astype(object), dtype=object)
            else:
                cols[f.name] = col.to_numpy()
        out[name] = pd.DataFrame(cols)
    return out


def _to_tables(frames: dict[str, pd.DataFrame]) -> dict[str, pa.Table]:
    out = {}
    for name, df in frames.items():
        schema = C.TABLES[name]
        arrays = []
        for f in schema:
            v = df[f.name].to_numpy()
            if name in _TS_COLS and f.name in _TS_COLS[name]:
                arrays.append(pa.array(v.astype(np.int64), type=pa.int64()).view(pa.timestamp("s", tz=C.TIMEZONE)))
            elif pa.types.is_string(f.type):
                arrays.append(pa.array(v, type=pa.string()))
            else:
                arrays.append(pa.array(v).cast(f.type))
        out[name] = pa.Table.from_arrays(arrays, schema=schema)
    return out


# Patterns that restructure encounters (drop, move or re-own lines) run first, so that the line ids the
# later, line-level patterns label stay valid; they also leave alone encounters holding items with a
# payment restriction, whose ``restricted_scope`` labels the generator has already written.
ORDER = (
    "phantom_admission",
    "split_admission",
    "low_standard_admission",
    "impersonation",
    "ring",
    "upcoding",
    "duplicate_charge",
    "excess_quantity",
    "long_rx_excess",
    "over_examination",
    "over_standard_price",
    "stock_mismatch",
    "swapped_item",
    "unbundled_charge",
)


def _ordered(names) -> list[str]:
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(ORDER)), n))


def inject_patterns(
    tables: dict[str, pa.Table], patterns: Mapping[str, float], rng: np.random.Generator, *, planted: dict | None = None
) -> tuple[dict[str, pa.Table], pa.Table]:
    """Apply each named pattern at its rate, in the fixed order :data:`ORDER` (deterministic).

    ``planted``, when given, receives what the patterns planted beyond the labels, for the generator's own
    tables (``stock_excess``: the units x 1000 that ``stock_mismatch`` added to each institution–drug pair's
    bills, from which :mod:`yibao.synth.purchases` writes what was really dispensed and bought).
    """
    for name in sorted(patterns):
        if name not in PATTERNS:
            raise YibaoError(
                f"unknown pattern {name!r}; known: {sorted(PATTERNS)}", f"未知的模式 {name!r}", field="patterns"
            )
        rate = float(patterns[name])
        if not 0.0 <= rate <= 1.0:
            raise YibaoError(f"rate of {name!r} must lie in 0..1, not {rate}", "比例须在 0 与 1 之间", field="patterns")
    labels = [C.GROUND_TRUTH.empty_table()]
    frames = _to_frames(tables)
    for name in _ordered(patterns):
        rate = float(patterns[name])
        if rate == 0:
            continue
        gt = PATTERNS[name](frames, rate, rng)
        labels.append(gt.cast(C.GROUND_TRUTH))
    if planted is not None:
        planted.update(frames.attrs.get("planted", {}))
    fee = frames["fee_detail"]
    enc = frames["encounter"]
    # keep encounters in id order and lines grouped by encounter, in line order
    enc = frames["encounter"] = enc.sort_values("mdtrt_id", kind="stable", ignore_index=True)
    key = _enc_pos(frames) * (1 << 24) + fee["feedetl_sn"].to_numpy().astype(np.int64)
    frames["fee_detail"] = fee.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    return {**tables, **_to_tables(frames)}, pa.concat_tables(labels)


# --- helpers ------------------------------------------------------------------


def _gt(entity: str, ids, pattern: str, detail) -> pa.Table:
    ids = [str(i) for i in ids]
    n = len(ids)
    det = [str(detail)] * n if isinstance(detail, str) else [str(d) for d in detail]
    return pa.table(
        {"entity": [entity] * n, "entity_id": ids, "pattern": [pattern] * n, "detail": det}, schema=C.GROUND_TRUTH
    )


def line_id(mdtrt_id, sn) -> list[str]:
    return [f"{m}#{int(s):06d}" for m, s in zip(mdtrt_id, sn, strict=True)]


def _catalog():
    from yibao.synth.catalog import default_catalog

    return default_catalog()


def _cap(code: str) -> int:
    """The list's price cap of an item (fen) — the price a provider charges for a service."""
    c = _catalog()
    return int(c.pric_uplmt[c.idx(code)])


def _item_idx(codes) -> np.ndarray:
    """Catalog positions of item codes."""
    index = _catalog().index
    return np.fromiter((index[x] for x in codes), dtype=np.int64, count=len(codes))


def _enc_pos(frames, rows=None) -> np.ndarray:
    """Row of ``encounter`` of each fee line (of the lines ``rows``, or all), -1 if none (Arrow hash lookup)."""
    enc, fee = frames["encounter"], frames["fee_detail"]
    mid = fee["mdtrt_id"].to_numpy()
    if rows is not None:
        mid = mid[rows]
    pos = pc.index_in(pa.array(mid, pa.string()), value_set=pa.array(enc["mdtrt_id"].to_numpy(), pa.string()))
    return pos.fill_null(-1).to_numpy().astype(np.int64)


def _enc_col(frames, col: str, rows=None) -> np.ndarray:
    """``encounter[col]`` of each fee line (by its ``mdtrt_id``); every line has its encounter."""
    return frames["encounter"][col].to_numpy()[_enc_pos(frames, rows)]


def _isin(values, keys) -> np.ndarray:
    """``values`` (a string column) is one of ``keys`` (Arrow hash set, faster than pandas on object strings)."""
    keys = list(keys)
    if not keys:
        return np.zeros(len(values), bool)
    return pc.is_in(
        pa.array(np.asarray(values, dtype=object), pa.string()), value_set=pa.array(keys, pa.string())
    ).to_numpy(zero_copy_only=False)


def _inst_share(codes, tag: str, share: float) -> np.ndarray:
    """Institutions picked by a hash (fixed across chunks): ``_stable_u(tag, code) < share``, once per distinct code."""
    codes = np.asarray(codes, dtype=object)
    if len(codes) == 0:
        return np.zeros(0, bool)
    k, uniq = pd.factorize(codes)
    return np.array([_stable_u(tag, c) < share for c in uniq], dtype=bool)[k]


def _amount(cnt_milli, pric):
    return (np.asarray(cnt_milli, dtype=np.int64) * np.asarray(pric, dtype=np.int64) + 500) // 1000


def _choose(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Indices of a share ``rate`` of ``n`` eligible entities (at least one when rate > 0 and n > 0)."""
    if n == 0 or rate <= 0:
        return np.zeros(0, dtype=np.int64)
    k = int(round(n * rate))
    k = max(1, min(n, k))
    return np.sort(rng.choice(n, size=k, replace=False))


def _next_sn(fee: pd.DataFrame, ids) -> np.ndarray:
    """The largest line number of each encounter in ``ids`` (in that order)."""
    ids = np.asarray(ids, dtype=object)
    sub = fee.loc[fee["mdtrt_id"].isin(ids), ["mdtrt_id", "feedetl_sn"]]
    return sub.groupby("mdtrt_id", sort=False)["feedetl_sn"].max().reindex(ids).to_numpy()


def _plain_encounters(frames) -> pa.Array:
    """Encounters without any line of an item that has a payment restriction (safe to restructure).

    Computed once per chunk (restructuring keeps a plain encounter plain)."""
    cache = getattr(frames, "attrs", {})
    if "_plain" in cache:
        return cache["_plain"]
    fee = frames["fee_detail"]
    c = _catalog()
    restricted = [code for code, i in c.index.items() if c.restricted[i]]
    mid = pa.array(fee["mdtrt_id"].to_numpy(), pa.string())
    bad = pc.filter(mid, pa.array(_isin(fee["med_list_codg"].to_numpy(), restricted)))
    uniq = pc.unique(mid)
    plain = pc.filter(uniq, pc.invert(pc.is_in(uniq, value_set=bad)))
    cache["_plain"] = plain
    return plain


def _is_plain(frames, ids) -> np.ndarray:
    """Whether each encounter id in ``ids`` is plain (see :func:`_plain_encounters`)."""
    ids = pa.array(np.asarray(ids, dtype=object), pa.string())
    return pc.is_in(ids, value_set=_plain_encounters(frames)).to_numpy(zero_copy_only=False)


def _new_lines(template: pd.DataFrame, items, cnt_milli, pric, sn) -> pd.DataFrame:
    """Lines modelled on ``template`` rows (one per new line): same encounter, time and doctor."""
    new = template.copy()
    new["med_list_codg"] = np.asarray(items, dtype=object)
    new["cnt_milli"] = np.asarray(cnt_milli, dtype=np.int64)
    new["pric"] = np.asarray(pric, dtype=np.int64)
    new["det_item_fee_sumamt"] = _amount(new["cnt_milli"], new["pric"])
    new["feedetl_sn"] = np.asarray(sn, dtype=np.int32)
    new["rxno"] = ""
    new["rx_circ_flag"] = False
    new["prd_days"] = np.int16(0)
    return new


def _new_ids(enc: pd.DataFrame, n: int) -> list[str]:
    """``n`` fresh encounter ids after the chunk's largest (same prefix and width)."""
    last = max(enc["mdtrt_id"])
    head, num = last[:-11], int(last[-11:])
    return [f"{head}{num + 1 + i:011d}" for i in range(n)]


def _stable_u(*keys: str) -> float:
    """A uniform number in [0, 1) fixed by the keys (same in every chunk and interpreter)."""
    return zlib.crc32("|".join(keys).encode()) / 2**32


# --- patterns -------------------------------------------------------------------


@register_pattern("duplicate_charge")
def duplicate_charge(frames, rate, rng):
    """重复收费: the last line of a share ``rate`` of encounters is billed twice (same item, time, price)."""
    fee = frames["fee_detail"]
    if fee.empty:
        return C.GROUND_TRUTH.empty_table()
    last = fee.groupby("mdtrt_id", sort=False).tail(1)
    c = _catalog()
    last = last[~c.restricted[_item_idx(last["med_list_codg"].to_numpy())].astype(bool)]
    pick = last.iloc[_choose(rng, len(last), rate)]
    dup = pick.copy()
    dup["feedetl_sn"] = (dup["feedetl_sn"] + 1).astype(np.int32)
    frames["fee_detail"] = pd.concat([fee, dup], ignore_index=True)
    return _gt("fee_detail", line_id(dup["mdtrt_id"], dup["feedetl_sn"]), "duplicate_charge", "line billed twice")


@register_pattern("over_standard_price")
def over_standard_price(frames, rate, rng):
    """超标准收费: a share ``rate`` of service lines with a government price are charged 20-80 % above it.

    Service lines the generator already priced above the cap are labelled as well.
    """
    fee = frames["fee_detail"]
    c = _catalog()
    idx = _item_idx(fee["med_list_codg"].to_numpy())
    cap = c.pric_uplmt[idx] if len(idx) else np.zeros(0, np.int64)
    svc = c.is_service[idx] & (cap > 0) if len(idx) else np.zeros(0, bool)
    already = np.flatnonzero(svc & (fee["pric"].to_numpy() > cap))
    elig = np.flatnonzero(svc & (fee["pric"].to_numpy() <= cap))
    rows = elig[_choose(rng, len(elig), rate)]
    newp = np.ceil(cap[rows] * rng.uniform(1.2, 1.8, len(rows))).astype(np.int64)
    col_p = fee.columns.get_loc("pric")
    col_a = fee.columns.get_loc("det_item_fee_sumamt")
    fee.iloc[rows, col_p] = newp
    fee.iloc[rows, col_a] = _amount(fee["cnt_milli"].to_numpy()[rows], newp)
    ids = line_id(fee["mdtrt_id"].to_numpy()[rows], fee["feedetl_sn"].to_numpy()[rows])
    ids_nat = line_id(fee["mdtrt_id"].to_numpy()[already], fee["feedetl_sn"].to_numpy()[already])
    return pa.concat_tables(
        [
            _gt("fee_detail", ids, "over_standard_price", "charged above the government price"),
            _gt("fee_detail", ids_nat, "over_standard_price", "above the government price in the generated data"),
        ]
    )


# bundle parent -> a component already included in it (the fraudster bills both)
_BUNDLES = {
    "990600000040000": "990600000050000",
    "990700000020000": "990700000010000",
    "990600000020000": "990600000010000",
}


@register_pattern("unbundled_charge")
def unbundled_charge(frames, rate, rng):
    """分解收费: a share ``rate`` of encounters billing a packaged item also bill a component it includes."""
    fee = frames["fee_detail"]
    par = fee[fee["med_list_codg"].isin(list(_BUNDLES))].drop_duplicates("mdtrt_id")
    pick = par.iloc[_choose(rng, len(par), rate)]
    if pick.empty:
        return C.GROUND_TRUTH.empty_table()
    comp = [_BUNDLES[p] for p in pick["med_list_codg"]]
    sn = _next_sn(fee, pick["mdtrt_id"]) + 1
    new = _new_lines(pick, comp, np.full(len(pick), 1000), [_cap(x) for x in comp], sn)
    frames["fee_detail"] = pd.concat([fee, new], ignore_index=True)
    return _gt(
        "fee_detail",
        line_id(new["mdtrt_id"], new["feedetl_sn"]),
        "unbundled_charge",
        [f"{p} already includes {q}" for p, q in zip(pick["med_list_codg"], comp, strict=True)],
    )


# expensive item billed instead of a cheap one, where the procedure that would use it never happened
_SWAP_TO = {
    "C9901010100000099999": ("990600000110000", "990600000230000"),
    "C9901010120000099999": ("990600000120000",),
    "C9901010070000099999": ("990600000060000",),
    "C9901010110000099999": ("990600000110000",),
}


@register_pattern("swapped_item")
def swapped_item(frames, rate, rng):
    """串换项目: in a share ``rate`` of inpatient encounters the infusion set (C9901010020000099999) is billed as an
    implant."""
    fee, enc = frames["fee_detail"], frames["encounter"]
    ip = set(enc.loc[enc["med_type"] == C.MED_TYPE_INPATIENT, "mdtrt_id"])
    cand = fee[(fee["med_list_codg"] == "C9901010020000099999") & fee["mdtrt_id"].isin(ip)]
    rows = cand.index.to_numpy()[_choose(rng, len(cand), rate)]
    codes_by_enc = (
        fee[fee["mdtrt_id"].isin(set(fee.loc[rows, "mdtrt_id"]))].groupby("mdtrt_id")["med_list_codg"].agg(set)
    )
    keys = list(_SWAP_TO)
    out_rows, out_items = [], []
    for r in rows:
        have = codes_by_enc[fee.at[r, "mdtrt_id"]]
        options = [k for k in keys if not (set(_SWAP_TO[k]) & have) and k not in have]
        if options:
            out_rows.append(r)
            out_items.append(options[int(rng.integers(0, len(options)))])
    if not out_rows:
        return C.GROUND_TRUTH.empty_table()
    caps = np.array([_cap(x) for x in out_items], dtype=np.int64)
    fee.loc[out_rows, "med_list_codg"] = out_items
    fee.loc[out_rows, "cnt_milli"] = 1000
    fee.loc[out_rows, "pric"] = caps
    fee.loc[out_rows, "det_item_fee_sumamt"] = _amount(np.full(len(out_rows), 1000), caps)
    return _gt(
        "fee_detail",
        line_id(fee.loc[out_rows, "mdtrt_id"], fee.loc[out_rows, "feedetl_sn"]),
        "swapped_item",
        [f"C9901010020000099999 billed as {x}" for x in out_items],
    )


@register_pattern("excess_quantity")
def excess_quantity(frames, rate, rng):
    """超量开药: a share ``rate`` of prescription lines of per-day drugs carry 15-30 times the quantity."""
    fee = frames["fee_detail"]
    c = _catalog()
    idx = _item_idx(fee["med_list_codg"].to_numpy())
    elig = (
        np.flatnonzero((fee["prd_days"].to_numpy() > 0) & c.is_drug[idx] & ~c.is_herbal[idx] & (c.basis[idx] == 0))
        if len(idx)
        else np.zeros(0, np.int64)
    )
    rows = elig[_choose(rng, len(elig), rate)]
    f = rng.integers(15, 31, len(rows))
    cnt = fee["cnt_milli"].to_numpy()[rows] * f
    fee.iloc[rows, fee.columns.get_loc("cnt_milli")] = cnt
    fee.iloc[rows, fee.columns.get_loc("det_item_fee_sumamt")] = _amount(cnt, fee["pric"].to_numpy()[rows])
    return _gt(
        "fee_detail",
        line_id(fee["mdtrt_id"].to_numpy()[rows], fee["feedetl_sn"].to_numpy()[rows]),
        "excess_quantity",
        [f"quantity x{k}" for k in f],
    )


@register_pattern("long_rx_excess")
def long_rx_excess(frames, rate, rng):
    """长期处方超限: a share ``rate`` of 28-day-or-longer prescription lines are written for 91-180 days."""
    fee, enc = frames["fee_detail"], frames["encounter"]
    pos = _enc_pos(frames)
    confirmed = np.where(pos >= 0, enc["lt_rx_confirmed"].to_numpy(dtype=bool)[pos], False)
    # a 28-day line of an unconfirmed encounter would become an unconfirmed long prescription as well: left alone
    elig = np.flatnonzero((fee["prd_days"].to_numpy() > 28) | ((fee["prd_days"].to_numpy() == 28) & confirmed))
    rows = elig[_choose(rng, len(elig), rate)]
    old = fee["prd_days"].to_numpy()[rows].astype(np.int64)
    new = rng.choice(np.array([91, 112, 120, 168, 180]), len(rows))
    cnt = -(-fee["cnt_milli"].to_numpy()[rows] * new // old // 1000) * 1000
    fee.iloc[rows, fee.columns.get_loc("prd_days")] = new.astype(np.int16)
    fee.iloc[rows, fee.columns.get_loc("cnt_milli")] = cnt
    fee.iloc[rows, fee.columns.get_loc("det_item_fee_sumamt")] = _amount(cnt, fee["pric"].to_numpy()[rows])
    return _gt(
        "fee_detail",
        line_id(fee["mdtrt_id"].to_numpy()[rows], fee["feedetl_sn"].to_numpy()[rows]),
        "long_rx_excess",
        [f"{d} days" for d in new],
    )


@register_pattern("split_admission")
def split_admission(frames, rate, rng):
    """分解住院: a share ``rate`` of inpatient stays of 6+ days are discharged halfway and readmitted within a day.

    The readmission (a new encounter) is labelled.
    """
    fee, enc = frames["fee_detail"], frames["encounter"]
    ip = enc[
        (enc["med_type"] == C.MED_TYPE_INPATIENT).to_numpy()
        & (enc["endtime"] - enc["begntime"] >= 6 * DAY).to_numpy()
        & _is_plain(frames, enc["mdtrt_id"].to_numpy())
    ]
    pick = ip.iloc[_choose(rng, len(ip), rate)]
    if pick.empty:
        return C.GROUND_TRUTH.empty_table()
    cut = pick["begntime"].to_numpy() + ((pick["endtime"] - pick["begntime"]).to_numpy() // DAY // 2) * DAY
    gap = rng.integers(2 * 3600, DAY, len(pick))
    new_ids = _new_ids(enc, len(pick))
    cut_of = dict(zip(pick["mdtrt_id"], cut, strict=True))
    new_of = dict(zip(pick["mdtrt_id"], new_ids, strict=True))
    gap_of = dict(zip(pick["mdtrt_id"], gap, strict=True))
    lines = fee[fee["mdtrt_id"].isin(cut_of)]
    after = lines["fee_ocur_time"].to_numpy() > np.array([cut_of[m] for m in lines["mdtrt_id"]])
    keep_ids, moved = set(), lines[after].copy()
    # both halves need at least one line
    n_before = lines[~after].groupby("mdtrt_id").size()
    n_after = moved.groupby("mdtrt_id").size()
    ok = [m for m in pick["mdtrt_id"] if n_before.get(m, 0) > 0 and n_after.get(m, 0) > 0]
    ok_set = set(ok)
    moved = moved[moved["mdtrt_id"].isin(ok_set)]
    src_index = moved.index
    moved["fee_ocur_time"] = moved["fee_ocur_time"].to_numpy() + np.array([gap_of[m] for m in moved["mdtrt_id"]])
    moved["mdtrt_id"] = [new_of[m] for m in moved["mdtrt_id"]]
    moved["feedetl_sn"] = (moved.groupby("mdtrt_id").cumcount() + 1).astype(np.int32)
    moved["rxno"] = np.where(moved["rxno"].to_numpy() != "", ["R" + m[1:] for m in moved["mdtrt_id"]], "")
    fee = fee.drop(index=src_index)
    first = enc[enc["mdtrt_id"].isin(ok_set)]
    second = first.copy()
    cut_a = np.array([cut_of[m] for m in first["mdtrt_id"]])
    second["begntime"] = cut_a + np.array([gap_of[m] for m in first["mdtrt_id"]])
    second["mdtrt_id"] = [new_of[m] for m in first["mdtrt_id"]]
    enc.loc[first.index, "endtime"] = cut_a
    enc.loc[first.index, "dscg_way"] = "1"
    frames["encounter"] = pd.concat([enc, second], ignore_index=True)
    frames["fee_detail"] = pd.concat([fee, moved], ignore_index=True)
    keep_ids.update(second["mdtrt_id"])
    return _gt("encounter", second["mdtrt_id"], "split_admission", [f"split from {m}" for m in first["mdtrt_id"]])


# diagnoses an honest provider treats in the clinic (the fraudster admits them anyway)
_LOW_DX = ("J06", "J02", "J20", "K29", "M54", "L30", "H10", "R51", "K30", "B34")


@register_pattern("low_standard_admission")
def low_standard_admission(frames, rate, rng):
    """低标入院: a share ``rate`` of clinic visits for minor conditions become 2-3 day admissions (bed, nursing,
    consultation)."""
    fee, enc = frames["fee_detail"], frames["encounter"]
    el = enc[
        (
            (enc["med_type"] == C.MED_TYPE_OUTPATIENT) & enc["dise_codg"].str[:3].isin(_LOW_DX) & enc["dr_code"].ne("")
        ).to_numpy()
        & _is_plain(frames, enc["mdtrt_id"].to_numpy())
    ]
    pick = el.iloc[_choose(rng, len(el), rate)]
    if pick.empty:
        return C.GROUND_TRUTH.empty_table()
    days = rng.integers(2, 4, len(pick))
    enc.loc[pick.index, "med_type"] = C.MED_TYPE_INPATIENT
    enc.loc[pick.index, "endtime"] = pick["begntime"].to_numpy() + days * DAY + rng.integers(0, 4 * 3600, len(pick))
    enc.loc[pick.index, "dscg_way"] = "1"
    enc.loc[pick.index, "mulaid_payer_psn_no"] = ""
    tmpl = (
        fee[fee["mdtrt_id"].isin(set(pick["mdtrt_id"]))]
        .drop_duplicates("mdtrt_id")
        .set_index("mdtrt_id")
        .reindex(pick["mdtrt_id"])
        .reset_index()
    )
    tmpl["bilg_dr_code"] = pick["dr_code"].to_numpy()
    nxt = _next_sn(fee, pick["mdtrt_id"])
    parts = []
    for k, code in enumerate(("990200000010000", "990200000080000", "990100000050000")):
        parts.append(_new_lines(tmpl, [code] * len(tmpl), days * 1000, [_cap(code)] * len(tmpl), nxt + 1 + k))
    frames["fee_detail"] = pd.concat([fee, *parts], ignore_index=True)
    return _gt(
        "encounter",
        pick["mdtrt_id"],
        "low_standard_admission",
        [f"{d} for {n} days" for d, n in zip(pick["dise_codg"], days, strict=True)],
    )


# major complications added on paper: 医保版 ICD-10 2.0 codes that the CHS-DRG 1.1 MCC table lists
# (J96.000 急性呼吸衰竭, R57.000 心源性休克, A41.900 脓毒症, N17.900 急性肾衰竭); what would prove them
# being treated is in yibao/data/supervision/knowledge/dx_evidence.csv
_MCC = ("J96.000", "R57.000", "A41.900", "N17.900")


@register_pattern("upcoding")
def upcoding(frames, rate, rng):
    """高套: a share ``rate`` of inpatient stays gain a major complication on paper (no treatment for it)."""
    enc = frames["encounter"]
    ip = enc[(enc["med_type"] == C.MED_TYPE_INPATIENT) & ~enc["dise_codg"].str[:3].isin([m[:3] for m in _MCC])]
    pick = ip.iloc[_choose(rng, len(ip), rate)]
    code = rng.choice(np.array(_MCC, dtype=object), len(pick))
    other = pick["other_dise_codg"].to_numpy()
    enc.loc[pick.index, "other_dise_codg"] = [f"{o};{c}" if o else c for o, c in zip(other, code, strict=True)]
    return _gt("encounter", pick["mdtrt_id"], "upcoding", [f"added {c}" for c in code])


# diagnoses only one sex can have (ICD-10 chapter facts)
_FEMALE_DX = ("O", "N7", "N8", "N9", "D25", "C53", "C54", "C56")
_MALE_DX = ("N40", "N41", "C61")


@register_pattern("impersonation")
def impersonation(frames, rate, rng):
    """冒名就医: a share ``rate`` of encounters with a sex-specific diagnosis are billed on the card of a
    relative (or, failing one, another insured person) of the other sex.

    Also labelled: encounters that begin after the person's recorded death (discharge way 5) — the
    generated data holds some; on real data that is a card used by someone else.
    """
    enc, person, link = frames["encounter"], frames["person"], frames["family_link"]
    dx = enc["dise_codg"].astype(str)
    fem = np.zeros(len(enc), bool)
    for p in _FEMALE_DX:
        fem |= dx.str.startswith(p).to_numpy()
    mal = np.zeros(len(enc), bool)
    for p in _MALE_DX:
        mal |= dx.str.startswith(p).to_numpy()
    gend = dict(zip(person["psn_no"], person["gend"], strict=True))
    elig = np.flatnonzero((fem | mal) & _is_plain(frames, enc["mdtrt_id"].to_numpy()))
    rows = elig[_choose(rng, len(elig), rate)]
    owners = set(enc["psn_no"].to_numpy()[rows])
    sub = link[link["psn_no"].isin(owners)]
    rel: dict[str, list] = {}
    for a_, b_ in zip(sub["psn_no"], sub["relative_psn_no"], strict=True):
        rel.setdefault(a_, []).append(b_)
    men = person.loc[person["gend"] == C.GEND_MALE, "psn_no"].to_numpy()
    women = person.loc[person["gend"] == C.GEND_FEMALE, "psn_no"].to_numpy()
    ids, det = [], []
    col_p = enc.columns.get_loc("psn_no")
    col_m = enc.columns.get_loc("mulaid_payer_psn_no")
    for r in rows:
        want = C.GEND_MALE if fem[r] else C.GEND_FEMALE
        own = enc.iat[r, col_p]
        cands = [q for q in rel.get(own, []) if gend.get(q) == want]
        pool = men if want == C.GEND_MALE else women
        if cands:
            other = cands[int(rng.integers(0, len(cands)))]
        elif len(pool):
            other = pool[int(rng.integers(0, len(pool)))]
        else:
            continue
        enc.iat[r, col_p] = other
        enc.iat[r, col_m] = ""
        ids.append(enc.iat[r, 0])
        det.append(f"{dx.iat[r]} billed on the card of {other}")
    # encounters after a recorded death (present in the generated data)
    death = enc[enc["dscg_way"] == "5"].groupby("psn_no")["endtime"].min()
    t = death.reindex(enc["psn_no"]).to_numpy()
    after = np.flatnonzero(~np.isnan(t) & (enc["begntime"].to_numpy() > np.nan_to_num(t)))
    nat = [m for m in enc["mdtrt_id"].to_numpy()[after] if m not in set(ids)]
    return pa.concat_tables(
        [
            _gt("encounter", ids, "impersonation", det),
            _gt("encounter", nat, "impersonation", "claim after the person's recorded death (in the generated data)"),
        ]
    )


_HOTEL = (
    "990200000010000",
    "990200000020000",
    "990200000030000",
    "990200000040000",
    "990200000050000",
    "990200000060000",
    "990200000070000",
    "990200000080000",
    "990100000050000",
)


@register_pattern("phantom_admission")
def phantom_admission(frames, rate, rng):
    """挂床住院: a share ``rate`` of inpatient stays of 3+ days keep only bed, nursing and consultation
    fees (the patient was not there to be treated).  Concentrated at about a third of the institutions
    (fixed by a hash of the institution code), where the share is three times ``rate``.
    """
    fee, enc = frames["fee_detail"], frames["encounter"]
    ip = enc[(enc["med_type"] == C.MED_TYPE_INPATIENT) & (enc["endtime"] - enc["begntime"] >= 3 * DAY)]
    bad = _inst_share(ip["fixmedins_code"].to_numpy(), "phantom", 1 / 3)
    ip = ip[bad & _is_plain(frames, ip["mdtrt_id"].to_numpy())]
    pick = ip.iloc[_choose(rng, len(ip), min(1.0, rate * 3))]
    mid = fee["mdtrt_id"].to_numpy()
    picked = _isin(mid, pick["mdtrt_id"])
    hotel = _isin(fee["med_list_codg"].to_numpy(), _HOTEL)
    drop = picked & ~hotel
    has_hotel = set(mid[picked & hotel])
    ok = [m for m in pick["mdtrt_id"] if m in has_hotel]
    drop &= _isin(mid, ok)
    frames["fee_detail"] = fee.take(np.flatnonzero(~drop))  # line numbers keep their gaps
    return _gt("encounter", ok, "phantom_admission", "only bed, nursing and consultation charges")


_EXAMS = (
    "990500000020000",
    "990500000030000",
    "990500000040000",
    "990500000050000",
    "990500000070000",
    "990500000080000",
    "990500000110000",
    "990400000130000",
    "990400000140000",
    "990400000180000",
    "990400000260000",
    "990500000150000",
)


@register_pattern("over_examination")
def over_examination(frames, rate, rng):
    """过度检查: a share ``rate`` of clinic visits (11, 14) gain 4-6 extra imaging and laboratory exams.
    Concentrated at about a third of the institutions, where the share is three times ``rate``.
    """
    fee, enc = frames["fee_detail"], frames["encounter"]
    el = enc[enc["med_type"].isin([C.MED_TYPE_OUTPATIENT, C.MED_TYPE_CHRONIC]) & enc["dr_code"].ne("")]
    el = el[_inst_share(el["fixmedins_code"].to_numpy(), "overexam", 1 / 3)]
    pick = el.iloc[_choose(rng, len(el), min(1.0, rate * 3))]
    if pick.empty:
        return C.GROUND_TRUTH.empty_table()
    have = fee[fee["mdtrt_id"].isin(set(pick["mdtrt_id"]))]
    tmpl = have.drop_duplicates("mdtrt_id").set_index("mdtrt_id").reindex(pick["mdtrt_id"]).reset_index()
    tmpl["bilg_dr_code"] = pick["dr_code"].to_numpy()
    nxt = _next_sn(fee, pick["mdtrt_id"])
    k = rng.integers(4, 7, len(pick))
    exams = np.array([rng.choice(np.array(_EXAMS, dtype=object), 6, replace=False) for _ in range(len(pick))])
    parts = []
    for j in range(6):
        sel = np.flatnonzero(k > j)
        t = tmpl.iloc[sel]
        items = exams[sel, j]
        parts.append(_new_lines(t, items, np.full(len(sel), 1000), [_cap(x) for x in items], nxt[sel] + 1 + j))
    frames["fee_detail"] = pd.concat([fee, *parts], ignore_index=True)
    return _gt("encounter", pick["mdtrt_id"], "over_examination", [f"{n} extra exams" for n in k])


@register_pattern("stock_mismatch")
def stock_mismatch(frames, rate, rng):
    """进销存不符: for a share ``rate`` of institution–drug pairs (fixed by a hash, the same in every chunk)
    every line bills 1.3-1.8 times what was dispensed; the factor is in the label's detail (``factor=1.73``).
    The units added per pair go to the chunk's planted facts (``stock_excess``), from which the generator
    writes the synthetic purchase table (:mod:`yibao.synth.purchases`): the pharmacy bought what it really
    dispensed, not what it billed.
    """
    fee = frames["fee_detail"]
    c = _catalog()
    idx = _item_idx(fee["med_list_codg"].to_numpy())
    drug = (c.is_drug[idx] & ~c.is_herbal[idx]) if len(idx) else np.zeros(0, bool)
    drug_rows = np.flatnonzero(drug)
    inst = _enc_col(frames, "fixmedins_code", drug_rows)
    codes, pairs = pd.factorize(pd.Series(inst, dtype=object) + "#" + fee["med_list_codg"].to_numpy()[drug_rows])
    chosen = {p: round(1.3 + 0.5 * _stable_u("stockf", p), 2) for p in pairs if _stable_u("stock", p) < rate}
    if not chosen:
        return C.GROUND_TRUTH.empty_table()
    factor = np.array([chosen.get(p, np.nan) for p in pairs], dtype=np.float64)[codes]
    hit = ~np.isnan(factor)
    rows = drug_rows[hit]
    f = factor[hit]
    before = fee["cnt_milli"].to_numpy()[rows].astype(np.int64)
    cnt = np.ceil(before * f / 1000).astype(np.int64) * 1000
    added = pd.Series(cnt - before).groupby(np.asarray(pairs, dtype=object)[codes[hit]]).sum()
    excess = frames.attrs.setdefault("planted", {}).setdefault("stock_excess", {})
    for p, n in added.items():
        excess[p] = excess.get(p, 0) + int(n)
    fee.iloc[rows, fee.columns.get_loc("cnt_milli")] = cnt
    fee.iloc[rows, fee.columns.get_loc("det_item_fee_sumamt")] = _amount(cnt, fee["pric"].to_numpy()[rows])
    return _gt("inst_item", list(chosen), "stock_mismatch", [f"factor={v:.2f}" for v in chosen.values()])


@register_pattern("ring")
def ring(frames, rate, rng):
    """团伙骗保: rings of 6-10 insured persons (a share ``rate`` of the people) visit one doctor together
    on 6 shared days; each visit is a copy of one of the member's clinic visits.  Members are labelled
    (entity ``person``).
    """
    fee, enc, person = frames["fee_detail"], frames["encounter"], frames["person"]
    op = enc[
        ((enc["med_type"] == C.MED_TYPE_OUTPATIENT) & enc["dr_code"].ne("")).to_numpy()
        & _is_plain(frames, enc["mdtrt_id"].to_numpy())
    ]
    # members are alive all year: a ring visit copied to a day after a member's recorded death would be a
    # second, unlabelled pattern (a claim after death)
    dead = enc.loc[enc["dscg_way"] == "5", "psn_no"].to_numpy()
    op = op[~_isin(op["psn_no"].to_numpy(), dead)]
    first = op.drop_duplicates("psn_no")
    n_people = int(round(len(person) * rate))
    if n_people < 6 or len(first) < 6:
        return C.GROUND_TRUTH.empty_table()
    order = rng.permutation(len(first))
    rows_new_enc, labels, used = [], [], 0
    year_t0 = int(enc["begntime"].min())
    while used + 6 <= min(n_people, len(first)):
        size = int(min(rng.integers(6, 11), min(n_people, len(first)) - used))
        members = first.iloc[order[used : used + size]]
        used += size
        hub = members.iloc[0]
        days = np.sort(rng.choice(330, 6, replace=False))
        for d in days:
            t = year_t0 + int(d) * DAY + 9 * 3600
            new = members.copy()
            new["fixmedins_code"] = hub["fixmedins_code"]
            new["dr_code"] = hub["dr_code"]
            new["mdtrtarea_admvs"] = hub["mdtrtarea_admvs"]
            new["begntime"] = t + rng.integers(0, 3600, len(new))
            new["endtime"] = new["begntime"] + 1800
            new["src"] = new["mdtrt_id"]
            rows_new_enc.append(new)
        labels.extend(members["psn_no"])
    new_enc = pd.concat(rows_new_enc, ignore_index=True)
    new_enc["mdtrt_id"] = _new_ids(enc, len(new_enc))
    lines = fee[fee["mdtrt_id"].isin(set(new_enc["src"]))]
    m = new_enc[["mdtrt_id", "src", "begntime", "dr_code"]].merge(
        lines, left_on="src", right_on="mdtrt_id", suffixes=("", "_old")
    )
    m["fee_ocur_time"] = m["begntime"] + 600
    m["bilg_dr_code"] = m["dr_code"]
    m["rxno"] = np.where(m["rxno"].to_numpy() != "", ["R" + x[1:] for x in m["mdtrt_id"]], "")
    frames["fee_detail"] = pd.concat([fee, m[fee.columns]], ignore_index=True)
    frames["encounter"] = pd.concat([enc, new_enc[enc.columns]], ignore_index=True)
    return _gt("person", labels, "ring", "member of a ring visiting one doctor together")
