"""DRG grouper (按疾病诊断相关分组) over a scheme given as data; RW, base rate and CMI.

A scheme is a directory of long tables (one row per code), the shape in which
grouping schemes are published:

=====================  =========================================================
``scheme.yaml``        name, version, effective date, label
``mdc.csv``            ``mdc, name, name_zh``
``mdc_dx.csv``         ``mdc, dise_codg``: principal diagnosis → MDC
``adrg.csv``           ``adrg, mdc, kind (pre_mdc/surgical/medical), priority, name, name_zh``
``adrg_dx.csv``        ``adrg, dise_codg``: principal diagnoses of an ADRG
``adrg_oprn.csv``      ``adrg, oprn_codg``: procedures of a pre-MDC or surgical ADRG
``drg.csv``            ``drg, adrg, severity (mcc|cc|none), age_min, age_max, rw, name``
``cc.csv``             ``dise_codg, level (cc/mcc), exclusion``
``cc_exclusion.csv``   ``exclusion, dise_codg``: principal diagnoses that cancel a CC list
=====================  =========================================================

Codes in the lists match a case's code as a prefix; for MDC and CC lookups the
longest prefix wins.  Grouping order:

1. **Pre-MDC**: pre-MDC ADRGs in priority order (a listed procedure, and a
   listed principal diagnosis if the ADRG lists any).
2. **MDC** by principal diagnosis; none → ``0000`` (ungroupable).
3. **ADRG**: the MDC's surgical ADRGs in priority order (one of its
   procedures, and its principal diagnoses if listed); a case with an
   operating-room procedure (any procedure of a surgical ADRG) that fits none
   goes to ``<MDC>-QY`` (ambiguous, 歧义组); otherwise the medical ADRGs by
   principal diagnosis; none → ``0000``.
4. **DRG**: severity is the highest CC level among the secondary diagnoses
   (MCC > CC > none), a CC not counting when the principal diagnosis is on its
   exclusion list; the first DRG row of the ADRG whose severities and age
   range fit.

:func:`group_case` groups one case in plain Python; :func:`group_batch`
groups many with NumPy (severity from exploded diagnosis pairs, the final
split from a dense (ADRG, severity, age) table; the ADRG of each distinct
(principal diagnosis, procedures) pair).  Property tests show they agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from yibao.codes._table import read_csv, table_error
from yibao.codes.icd10 import is_valid_icd10, normalize_icd10
from yibao.core.errors import CodeTableError
from yibao.payment.cases import PaymentInputError
from yibao.payment.params import E4

SEVERITIES = ("none", "cc", "mcc")  # index = level
KINDS = ("pre_mdc", "surgical", "medical")
UNGROUPABLE = "0000"
MAX_AGE = 150


@dataclass(frozen=True)
class Adrg:
    code: str
    mdc: str
    kind: str
    priority: int
    name: str
    dx: tuple[str, ...]
    oprn: tuple[str, ...]


@dataclass(frozen=True)
class Drg:
    code: str
    adrg: str
    severities: frozenset[int]
    age_min: int
    age_max: int
    rw_e4: int
    name: str


@dataclass(frozen=True)
class Grouped:
    """One case's grouping: DRG, ADRG, MDC, severity (none/cc/mcc), RW and the branch taken."""

    drg: str
    adrg: str
    mdc: str
    severity: str
    rw_e4: int
    path: str  # pre_mdc / surgical / medical / ambiguous / ungroupable


def _prefix_match(code: str, prefixes) -> bool:
    return any(code.startswith(p) for p in prefixes)


def _longest(code: str, table: dict[str, object]):
    for n in range(len(code), 0, -1):
        v = table.get(code[:n])
        if v is not None:
            return v
    return None


class Scheme:
    """A DRG scheme loaded from a directory (see module docstring) and validated."""

    def __init__(self, path: Path):
        self.path = Path(path)
        meta_f = self.path / "scheme.yaml"
        if not meta_f.exists():
            raise CodeTableError(f"{meta_f}: scheme file not found", f"{meta_f}: 找不到分组方案", field="scheme")
        meta = yaml.safe_load(meta_f.read_text(encoding="utf-8")) or {}
        for k in ("name", "version", "effective_from"):
            if k not in meta:
                raise CodeTableError(f"{meta_f}: missing {k!r}", f"{meta_f}: 缺少 {k!r}", field=k)
        self.name, self.version, self.label = str(meta["name"]), str(meta["version"]), str(meta.get("label", ""))
        eff = meta["effective_from"]
        self.effective_from = eff if isinstance(eff, dt.date) else dt.date.fromisoformat(str(eff))
        f = self.path / "mdc.csv"
        self.mdcs: dict[str, str] = {}
        for line, r in read_csv(f, ("mdc", "name"), optional=("name_zh",)):
            if not r["mdc"] or r["mdc"] in self.mdcs:
                raise table_error(f, "empty or duplicate MDC", "MDC 为空或重复", line=line, key=f"mdc={r['mdc']!r}", field="mdc")
            self.mdcs[r["mdc"]] = r["name"]
        f = self.path / "mdc_dx.csv"
        self.mdc_dx: dict[str, str] = {}
        for line, r in read_csv(f, ("mdc", "dise_codg")):
            key = f"dise_codg={r['dise_codg']!r}"
            if r["mdc"] not in self.mdcs:
                raise table_error(f, f"unknown MDC {r['mdc']!r}", "未知 MDC", line=line, key=key, field="mdc")
            if not r["dise_codg"] or r["dise_codg"] in self.mdc_dx:
                raise table_error(f, "empty or duplicate diagnosis prefix", "诊断编码为空或重复", line=line, key=key, field="dise_codg")
            self.mdc_dx[r["dise_codg"]] = r["mdc"]
        f = self.path / "adrg.csv"
        raw: dict[str, dict] = {}
        for line, r in read_csv(f, ("adrg", "mdc", "kind", "priority", "name"), optional=("name_zh",)):
            key = f"adrg={r['adrg']!r}"
            if not r["adrg"] or r["adrg"] in raw:
                raise table_error(f, "empty or duplicate ADRG", "ADRG 为空或重复", line=line, key=key, field="adrg")
            if r["kind"] not in KINDS:
                raise table_error(f, f"kind must be one of {KINDS}", "类型无效", line=line, key=key, field="kind")
            if (r["kind"] == "pre_mdc") != (r["mdc"] == "") or (r["mdc"] and r["mdc"] not in self.mdcs):
                raise table_error(f, "pre-MDC ADRGs have no MDC; others need a known MDC", "MDC 无效", line=line, key=key, field="mdc")
            try:
                prio = int(r["priority"])
            except ValueError:
                raise table_error(f, "priority must be an integer", "优先级须为整数", line=line, key=key, field="priority") from None
            raw[r["adrg"]] = {**r, "priority": prio, "line": line, "dx": [], "oprn": []}
        for fname, col in (("adrg_dx.csv", "dise_codg"), ("adrg_oprn.csv", "oprn_codg")):
            f = self.path / fname
            for line, r in read_csv(f, ("adrg", col)):
                if r["adrg"] not in raw:
                    raise table_error(f, f"unknown ADRG {r['adrg']!r}", "未知 ADRG", line=line, key=f"adrg={r['adrg']!r}", field="adrg")
                if not r[col]:
                    raise table_error(f, f"empty {col}", "编码为空", line=line, field=col)
                raw[r["adrg"]]["dx" if col == "dise_codg" else "oprn"].append(r[col])
        for a in raw.values():
            if a["kind"] in ("pre_mdc", "surgical") and not a["oprn"]:
                raise table_error(self.path / "adrg.csv", "a pre-MDC or surgical ADRG needs procedures (adrg_oprn.csv)", "手术 ADRG 缺少手术操作", line=a["line"], key=f"adrg={a['adrg']!r}", field="oprn_codg")
            if a["kind"] == "medical" and not a["dx"]:
                raise table_error(self.path / "adrg.csv", "a medical ADRG needs principal diagnoses (adrg_dx.csv)", "内科 ADRG 缺少诊断", line=a["line"], key=f"adrg={a['adrg']!r}", field="dise_codg")
        order = sorted(raw.values(), key=lambda a: (KINDS.index(a["kind"]), a["priority"], a["line"]))
        self.adrgs: list[Adrg] = [Adrg(a["adrg"], a["mdc"], a["kind"], a["priority"], a["name"], tuple(a["dx"]), tuple(a["oprn"])) for a in order]
        self.adrg_by_code = {a.code: a for a in self.adrgs}
        self.or_procedures = frozenset(p for a in self.adrgs if a.kind != "medical" for p in a.oprn)
        # CC / MCC and exclusions
        f = self.path / "cc_exclusion.csv"
        self.exclusions: dict[str, list[str]] = {}
        for line, r in read_csv(f, ("exclusion", "dise_codg")):
            if not r["exclusion"] or not r["dise_codg"]:
                raise table_error(f, "empty exclusion or diagnosis", "排除表为空", line=line, field="exclusion")
            self.exclusions.setdefault(r["exclusion"], []).append(r["dise_codg"])
        f = self.path / "cc.csv"
        self.cc: dict[str, tuple[int, str]] = {}
        for line, r in read_csv(f, ("dise_codg", "level", "exclusion")):
            key = f"dise_codg={r['dise_codg']!r}"
            if r["level"] not in ("cc", "mcc"):
                raise table_error(f, "level must be cc or mcc", "级别须为 cc 或 mcc", line=line, key=key, field="level")
            if r["exclusion"] and r["exclusion"] not in self.exclusions:
                raise table_error(f, f"unknown exclusion list {r['exclusion']!r}", "未知排除表", line=line, key=key, field="exclusion")
            if not r["dise_codg"] or r["dise_codg"] in self.cc:
                raise table_error(f, "empty or duplicate code", "编码为空或重复", line=line, key=key, field="dise_codg")
            self.cc[r["dise_codg"]] = (SEVERITIES.index(r["level"]), r["exclusion"])
        # final DRGs
        f = self.path / "drg.csv"
        self.drgs: list[Drg] = []
        seen: set[str] = set()
        for line, r in read_csv(f, ("drg", "adrg", "severity", "age_min", "age_max", "rw", "name")):
            key = f"drg={r['drg']!r}"
            if not r["drg"] or r["drg"] in seen:
                raise table_error(f, "empty or duplicate DRG", "DRG 为空或重复", line=line, key=key, field="drg")
            special = r["adrg"] == UNGROUPABLE or (r["adrg"].endswith("-QY") and r["adrg"][:-3] in self.mdcs)
            if r["adrg"] not in self.adrg_by_code and not special:
                raise table_error(f, f"unknown ADRG {r['adrg']!r}", "未知 ADRG", line=line, key=key, field="adrg")
            sev = r["severity"].split("|")
            if not sev or any(s not in SEVERITIES for s in sev):
                raise table_error(f, f"severity must be '|'-separated from {SEVERITIES}", "严重程度无效", line=line, key=key, field="severity")
            try:
                a0, a1 = int(r["age_min"]), int(r["age_max"])
                rw = Decimal(r["rw"]) * E4
                if rw != rw.to_integral_value() or rw < 0:
                    raise ValueError
            except (ValueError, InvalidOperation):
                raise table_error(f, "age_min/age_max must be integers and rw a non-negative number with at most 4 decimals", "年龄或权重无效", line=line, key=key, field="rw") from None
            a0, a1 = (0 if a0 < 0 else a0), (MAX_AGE if a1 < 0 else a1)
            if a0 > a1:
                raise table_error(f, "age_min > age_max", "最小年龄大于最大年龄", line=line, key=key, field="age_min")
            seen.add(r["drg"])
            self.drgs.append(Drg(r["drg"], r["adrg"], frozenset(SEVERITIES.index(s) for s in sev), a0, a1, int(rw), r["name"]))
        self.drg_by_code = {d.code: d for d in self.drgs}
        self._check_coverage()
        self._build_tables()

    def _targets(self) -> list[str]:
        out = [a.code for a in self.adrgs]
        present = {d.adrg for d in self.drgs}
        out += [f"{m}-QY" for m in self.mdcs if f"{m}-QY" in present or any(a.mdc == m and a.kind == "surgical" for a in self.adrgs)]
        return out + [UNGROUPABLE]

    def _check_coverage(self) -> None:
        """Every ADRG (and QY, 0000) has a DRG for every severity and age 0..150."""
        for t in self._targets():
            rows = [d for d in self.drgs if d.adrg == t]
            for s in range(3):
                ages = np.zeros(MAX_AGE + 1, bool)
                for d in rows:
                    if s in d.severities:
                        ages[d.age_min : d.age_max + 1] = True
                if not ages.all():
                    gap = int(np.flatnonzero(~ages)[0])
                    raise table_error(self.path / "drg.csv", f"ADRG {t!r} has no DRG for severity {SEVERITIES[s]} at age {gap}",
                                      f"ADRG {t!r} 缺少严重程度 {SEVERITIES[s]}、年龄 {gap} 的 DRG", key=f"adrg={t!r}", field="drg")  # fmt: skip

    def _build_tables(self) -> None:
        """Dense lookup (target, severity, age) → DRG index for the batch path."""
        self.targets = self._targets()
        self.target_index = {t: i for i, t in enumerate(self.targets)}
        self.drg_codes = np.array([d.code for d in self.drgs], dtype=object)
        self.drg_rw = np.array([d.rw_e4 for d in self.drgs], dtype=np.int64)
        table = np.full((len(self.targets), 3, MAX_AGE + 1), -1, dtype=np.int32)
        for i, d in reversed(list(enumerate(self.drgs))):  # reversed: the first matching row wins
            ti = self.target_index[d.adrg]
            for s in d.severities:
                table[ti, s, d.age_min : d.age_max + 1] = i
        self.drg_table = table

    # --- the pieces of the grouping (shared by both paths where noted) -----------------

    def mdc_of(self, dx: str) -> str | None:
        return _longest(dx, self.mdc_dx)

    def adrg_of(self, dx: str, procs: tuple[str, ...]) -> tuple[str, str, str]:
        """(target ADRG or QY/0000, MDC, path) from the principal diagnosis and procedures."""
        for a in self.adrgs:
            if a.kind != "pre_mdc":
                break
            if any(_prefix_match(p, a.oprn) for p in procs) and (not a.dx or _prefix_match(dx, a.dx)):
                return a.code, "", "pre_mdc"
        mdc = self.mdc_of(dx)
        if mdc is None:
            return UNGROUPABLE, "", "ungroupable"
        for a in self.adrgs:
            if a.mdc == mdc and a.kind == "surgical" and any(_prefix_match(p, a.oprn) for p in procs) and (not a.dx or _prefix_match(dx, a.dx)):
                return a.code, mdc, "surgical"
        if any(_prefix_match(p, self.or_procedures) for p in procs) and f"{mdc}-QY" in self.target_index:
            return f"{mdc}-QY", mdc, "ambiguous"
        for a in self.adrgs:
            if a.mdc == mdc and a.kind == "medical" and _prefix_match(dx, a.dx):
                return a.code, mdc, "medical"
        return UNGROUPABLE, mdc, "ungroupable"

    def cc_level(self, dx: str, secondary: str) -> int:
        """CC level (0/1/2) of one secondary diagnosis given the principal one, after exclusions."""
        hit = None
        for n in range(len(secondary), 0, -1):
            hit = self.cc.get(secondary[:n])
            if hit is not None:
                break
        if hit is None:
            return 0
        level, ex = hit
        if ex and _prefix_match(dx, self.exclusions[ex]):
            return 0
        return level


def sample_scheme_dir() -> Path:
    return Path(str(resources.files("yibao") / "data" / "payment" / "drg" / "sample"))


_SCHEMES: dict[Path, Scheme] = {}


def load_scheme(path: str | Path | None = None) -> Scheme:
    """Load (once) a scheme directory; default: the shipped SAMPLE scheme."""
    p = Path(path) if path else sample_scheme_dir()
    if p not in _SCHEMES:
        _SCHEMES[p] = Scheme(p)
    return _SCHEMES[p]


# --- input checks -------------------------------------------------------------------------


def _split(v) -> tuple[str, ...]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ()
    if isinstance(v, str):
        return tuple(x.strip() for x in v.split(";") if x.strip())
    return tuple(str(x).strip() for x in v if str(x).strip())


def _check_dx(code, field: str, case_id: str = "") -> str:
    en, zh = (f"case {case_id}: ", f"病例 {case_id}: ") if case_id else ("", "")
    if code is None or not str(code).strip():
        what = ("missing principal diagnosis", "缺少主要诊断") if field == "dise_codg" else ("empty diagnosis code", "诊断编码为空")
        raise PaymentInputError(en + what[0], zh + what[1], field=field)
    if not is_valid_icd10(str(code)):
        raise PaymentInputError(f"{en}unknown ICD-10 code {code!r}", f"{zh}未知的 ICD-10 编码 {code!r}", field=field)
    return normalize_icd10(str(code))


def _check_age(age, case_id: str = "") -> int:
    en, zh = (f"case {case_id}: ", f"病例 {case_id}: ") if case_id else ("", "")
    try:
        a = int(age)
    except (TypeError, ValueError):
        raise PaymentInputError(f"{en}age {age!r} is not a whole number", f"{zh}年龄无效", field="age") from None
    if not 0 <= a <= MAX_AGE:
        raise PaymentInputError(f"{en}age {a} outside 0..{MAX_AGE}", f"{zh}年龄超出范围", field="age")
    return a


# --- scalar path -----------------------------------------------------------------------------


def group_case(scheme: Scheme, dise_codg: str, other_dise_codg=(), oprn_codg=(), age: int = 40, *, known_procedures=None, case_id: str = "") -> Grouped:
    """Group one case.  ``other_dise_codg`` and ``oprn_codg``: lists or ';'-separated strings.

    ``known_procedures`` (a set), if given, refuses procedure codes outside it.
    """
    dx = _check_dx(dise_codg, "dise_codg", case_id)
    others = tuple(_check_dx(c, "other_dise_codg", case_id) for c in _split(other_dise_codg))
    procs = tuple(sorted(set(_split(oprn_codg))))
    if known_procedures is not None:
        bad = [p for p in procs if p not in known_procedures]
        if bad:
            raise PaymentInputError(f"unknown procedure codes {bad} {case_id}".strip(), f"未知的手术操作编码 {bad} {case_id}".strip(), field="oprn_codg")
    a = _check_age(age, case_id)
    target, mdc, path = scheme.adrg_of(dx, procs)
    sev = max((scheme.cc_level(dx, o) for o in set(others)), default=0)
    for d in scheme.drgs:
        if d.adrg == target and sev in d.severities and d.age_min <= a <= d.age_max:
            return Grouped(d.code, target, mdc, SEVERITIES[sev], d.rw_e4, path)
    raise AssertionError("scheme coverage was checked at load")  # pragma: no cover


# --- batch path ------------------------------------------------------------------------------


def group_batch(scheme: Scheme, cases: pd.DataFrame, *, known_procedures=None) -> pd.DataFrame:
    """Group many cases (columns ``dise_codg``, ``other_dise_codg``, ``oprn_codg``, ``age``; optional ``mdtrt_id``).

    Returns a frame aligned with ``cases``: ``drg, adrg, mdc, severity, rw_e4, path``.
    """
    n = len(cases)
    ids = cases["mdtrt_id"].to_numpy() if "mdtrt_id" in cases else np.arange(n)
    # distinct values by hashing (pandas.factorize), checked and normalised once each
    dx_i, u_dx = pd.factorize(cases["dise_codg"].fillna("").astype(str), sort=False)
    u_dx = np.asarray(u_dx, dtype=object)
    blank = np.flatnonzero([not str(c).strip() for c in u_dx])
    if len(blank):
        rows = np.flatnonzero(np.isin(dx_i, blank))
        raise PaymentInputError(f"{len(rows):,} case(s) without a principal diagnosis (first: {ids[rows[0]]})",
                                f"{len(rows):,} 个病例缺少主要诊断 (例如 {ids[rows[0]]})", field="dise_codg")  # fmt: skip
    for j, c in enumerate(u_dx):
        if not is_valid_icd10(c):
            raise PaymentInputError(f"unknown ICD-10 principal diagnosis {c!r} (case {ids[np.flatnonzero(dx_i == j)[0]]})",
                                    f"未知的 ICD-10 主要诊断 {c!r}", field="dise_codg")  # fmt: skip
    u_dxn = np.array([normalize_icd10(c) for c in u_dx], dtype=object)
    ages = pd.to_numeric(cases["age"], errors="coerce").to_numpy() if n else np.array([], float)
    badage = np.flatnonzero(~np.isfinite(ages) | (ages < 0) | (ages > MAX_AGE) | (ages != np.floor(ages)))
    if len(badage):
        raise PaymentInputError(f"{len(badage):,} case(s) with an age outside 0..{MAX_AGE} (first: {ids[badage[0]]})",
                                f"{len(badage):,} 个病例年龄无效", field="age")  # fmt: skip
    ages = ages.astype(np.int64)
    # procedures: the ADRG of each distinct (principal diagnosis, procedure string)
    pr_i, u_pr = pd.factorize(cases["oprn_codg"].fillna("").astype(str), sort=False)
    u_pr = np.asarray(u_pr, dtype=object)
    if len(u_pr) == 0:
        u_pr = np.array([""], dtype=object)
    u_pr_t = [tuple(sorted(set(_split(s)))) for s in u_pr]
    if known_procedures is not None:
        for s, t in zip(u_pr, u_pr_t):
            bad = [p for p in t if p not in known_procedures]
            if bad:
                raise PaymentInputError(f"unknown procedure codes {bad} (case {ids[np.flatnonzero(u_pr[pr_i] == s)[0]]})",
                                        f"未知的手术操作编码 {bad}", field="oprn_codg")  # fmt: skip
    pair = dx_i.astype(np.int64) * len(u_pr) + pr_i
    u_pair, pair_i = np.unique(pair, return_inverse=True)
    res = [scheme.adrg_of(u_dxn[p // len(u_pr)], u_pr_t[p % len(u_pr)]) for p in u_pair]
    target_i = np.array([scheme.target_index[r[0]] for r in res], dtype=np.int64)[pair_i]
    mdc = np.array([r[1] for r in res], dtype=object)[pair_i]
    path = np.array([r[2] for r in res], dtype=object)[pair_i]
    # severity: exploded (case, secondary code) pairs, CC level per distinct code, exclusions per (principal, list)
    ot_i, u_ot = pd.factorize(cases["other_dise_codg"].fillna("").astype(str), sort=False)
    u_ot = np.asarray(u_ot, dtype=object)
    u_ot_codes = [sorted(set(_split(s))) for s in u_ot]
    codes = sorted({c for cs in u_ot_codes for c in cs})
    for c in codes:
        if not is_valid_icd10(c):
            raise PaymentInputError(f"unknown ICD-10 secondary diagnosis {c!r}", f"未知的 ICD-10 次要诊断 {c!r}", field="other_dise_codg")
    code_ix = {c: i for i, c in enumerate(codes)}
    ex_names = sorted(scheme.exclusions)
    ex_ix = {e: i + 1 for i, e in enumerate(ex_names)}  # 0 = no exclusion list
    lvl = np.zeros(len(codes) + 1, np.int64)
    exl = np.zeros(len(codes) + 1, np.int64)
    for c, i in code_ix.items():
        hit = _longest(normalize_icd10(c), scheme.cc)
        if hit is not None:
            lvl[i], exl[i] = hit[0], ex_ix.get(hit[1], 0)
    excluded = np.zeros((len(u_dx), len(ex_names) + 1), bool)
    for j, e in enumerate(ex_names, start=1):
        excluded[:, j] = [_prefix_match(d, scheme.exclusions[e]) for d in u_dxn]
    lens = np.array([len(cs) for cs in u_ot_codes], dtype=np.int64)
    flat = np.array([code_ix[c] for cs in u_ot_codes for c in cs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]) if len(lens) else np.array([], np.int64)
    per_case = lens[ot_i]
    case_of_pair = np.repeat(np.arange(n), per_case)
    offs = np.arange(per_case.sum()) - np.repeat(np.cumsum(per_case) - per_case, per_case)
    code_of_pair = flat[np.repeat(starts[ot_i], per_case) + offs] if len(flat) else np.array([], np.int64)
    pl = lvl[code_of_pair] * ~excluded[dx_i[case_of_pair], exl[code_of_pair]]
    sev = np.zeros(n, np.int64)
    np.maximum.at(sev, case_of_pair, pl)
    drg_i = scheme.drg_table[target_i, sev, ages]
    return pd.DataFrame({
        "drg": scheme.drg_codes[drg_i],
        "adrg": np.array(scheme.targets, dtype=object)[target_i],
        "mdc": mdc,
        "severity": np.array(SEVERITIES, dtype=object)[sev],
        "rw_e4": scheme.drg_rw[drg_i],
        "path": path,
    }, index=cases.index)  # fmt: skip


# --- weights, base rate, CMI --------------------------------------------------------------------


def drg_weights(grouped: pd.DataFrame, cost_col: str = "medfee_sumamt") -> pd.DataFrame:
    """RW per DRG from data: group mean cost ÷ overall mean cost, rounded half up to 4 places (exact integers)."""
    g = grouped[grouped.drg != UNGROUPABLE]
    n_all, s_all = len(g), int(g[cost_col].sum())
    agg = g.groupby("drg")[cost_col].agg(["count", "sum"]).reset_index()
    from yibao.payment.catalog import round_div

    agg["rw_e4"] = [round_div(int(s) * n_all * E4, int(c) * s_all) for c, s in zip(agg["count"], agg["sum"])]
    agg["mean_cost_fen"] = [round_div(int(s), int(c)) for c, s in zip(agg["count"], agg["sum"])]
    return agg.rename(columns={"count": "n_cases", "sum": "total_cost_fen"})


def base_rate(budget_fen: int, total_rw_e4: int) -> Decimal:
    """Base rate (费率) in yuan per RW unit: budget ÷ total RW of the period's cases."""
    if total_rw_e4 <= 0:
        raise PaymentInputError("total RW is zero: no base rate", "总权重为零, 无法计算费率", field="rw")
    return (Decimal(budget_fen) / 100 / (Decimal(total_rw_e4) / E4)).quantize(Decimal("0.01"))


def cmi(grouped: pd.DataFrame, by: str = "fixmedins_code") -> pd.DataFrame:
    """Case-mix index (CMI) = mean RW of the grouped cases of each institution (ungroupable cases left out)."""
    g = grouped[grouped.drg != UNGROUPABLE]
    out = g.groupby(by).agg(n_cases=("rw_e4", "size"), total_rw_e4=("rw_e4", "sum")).reset_index()
    out["cmi"] = (out.total_rw_e4 / out.n_cases / E4).round(4)  # an index for display, not money
    return out


def reweighted_drg_csv(scheme: Scheme, grouped: pd.DataFrame, cost_col: str = "medfee_sumamt") -> str:
    """The scheme's ``drg.csv`` text with every RW recomputed from ``grouped`` cases (comments kept).

    A DRG with cases takes its own mean ÷ the overall mean; one without cases its
    ADRG's; an ADRG without cases keeps 1; ``0000`` keeps its weight.
    """
    import csv
    import io

    from yibao.payment.catalog import round_div

    g = grouped[grouped.drg != UNGROUPABLE]
    if g.empty:
        raise PaymentInputError("no grouped cases to compute weights from", "无已入组病例, 无法计算权重", field="rw")
    n_all, s_all = len(g), int(g[cost_col].sum())
    own = drg_weights(grouped, cost_col).set_index("drg")["rw_e4"]
    ad = g.groupby("adrg")[cost_col].agg(["count", "sum"])
    out = []
    for line in (scheme.path / "drg.csv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("drg,"):
            out.append(line)
            continue
        r = next(csv.reader([line]))
        if r[0] != UNGROUPABLE:
            if r[0] in own.index:
                rw = int(own[r[0]])
            elif r[1] in ad.index:
                rw = round_div(int(ad.loc[r[1], "sum"]) * n_all * E4, int(ad.loc[r[1], "count"]) * s_all)
            else:
                rw = E4
            r[5] = str(Decimal(rw) / E4)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(r)
        out.append(buf.getvalue())
    return "\n".join(out) + "\n"
