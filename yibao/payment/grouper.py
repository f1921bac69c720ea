"""The DRG grouper (DRG 分组器) over a scheme given as data (:mod:`yibao.payment.drgscheme`).

One case, in the columns of a 医保结算清单 as the national interface names them::

    case_id, gend (1 male, 2 female), age (years), nwb_age (age in days, newborns),
    nwb_bir_wt (birth weight, grams), ipt_days, main_diag, other_diags, oprns

(``other_diags`` and ``oprns`` ``;``-joined or lists, the principal procedure first:
order matters).  Grouping, all lookups in hash sets:

1. **MDC.** The MDCs are tried in the scheme's order.  An MDC is entered by the
   principal diagnosis (``main_dx``) and, where it says so, the sex (M, N), an age
   under one year (P) or injuries in two body regions (Z); an MDC with entry
   ``adrgs`` (pre-MDC A) is entered only through its ADRGs' own conditions.
2. **ADRG.** The MDC's ADRGs in order; the first whose conditions hold wins.  In an
   MDC with an ambiguous group, a case with an operating-room procedure that
   entered none of the surgical ADRGs goes to ``<MDC>QY`` (歧义组).  A case that
   enters an MDC but none of its ADRGs falls through to the next MDC.
3. **Severity.** The highest CC level of the secondary diagnoses (MCC > CC >
   none), a CC/MCC not counting when its exclusion table is one of the principal
   diagnosis's.
4. **DRG.** The ADRG's first DRG whose severities (and age range, where a scheme
   splits by age) fit.

No MDC takes the case → ``0000`` with the reason.  Input that is wrong (unknown
code, impossible age, …) is not grouped: ``status`` names the field and the value.

:meth:`Grouper.group` groups one case in plain Python; :meth:`Grouper.group_frame`
groups a table with NumPy/pandas: every per-value check runs once per distinct
value, the ADRG once per distinct (principal, procedures, sex, newborn class,
diagnosis features) key through the same function as the scalar path, severity
over exploded (case, secondary diagnosis) pairs.  Property tests show they agree.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pandas as pd

from yibao.codes import national
from yibao.core.errors import CodeTableError
from yibao.payment.drgscheme import (
    MAX_AGE,
    SEVERITY_LEVELS,
    UNGROUPABLE,
    AdrgRule,
    MdcRule,
    SchemeTables,
    find_scheme_dir,
)

INPUT_COLUMNS = ("case_id", "gend", "age", "nwb_age", "nwb_bir_wt", "ipt_days", "main_diag", "other_diags", "oprns")
OUTPUT_COLUMNS = ("case_id", "mdc", "adrg", "drg", "status")
OK = "ok"
MAX_NEWBORN_DAYS = 365
MAX_IPT_DAYS = 36_600


class GroupingInputError(CodeTableError):
    """A grouping file that cannot be read as a whole (missing column, duplicate case_id…)."""

    code = "E_DRG_INPUT"


@dataclass(frozen=True, slots=True)
class GroupResult:
    """One case's group: MDC, ADRG, DRG, status (``ok`` or why not), severity, RW and the rule path."""

    case_id: str
    mdc: str
    adrg: str
    drg: str
    status: str
    severity: str
    rw_e4: int | None
    path: tuple[str, ...] = ()


# --- one value at a time: the checks both paths share ---------------------------------------------


def _cell(v) -> str:
    """A table cell as text: None/NaN → '', 3.0 → '3', else stripped text."""
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if v.is_integer():
            return str(int(v))
        return repr(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, np.floating):
        return _cell(float(v))
    return str(v).strip()


def _whole(v: str, fld: str, lo: int, hi: int, *, required: bool, unit: str = ""):
    if v == "":
        return (None, f"{fld}: missing") if required else (None, None)
    try:
        d = Decimal(v)  # "45", "45.0" (a CSV written from a float column); exact, never a float
    except InvalidOperation:
        return None, f"{fld}: {v!r} is not a whole number"
    if not d.is_finite() or d != d.to_integral_value():
        return None, f"{fld}: {v!r} is not a whole number"
    x = int(d)
    if not lo <= x <= hi:
        return None, f"{fld}: {x} outside {lo}..{hi}{unit}"
    return x, None


def parse_gend(v: str):
    """1 male, 2 female; 0 (未知) and 9 (未说明) read as unknown sex (GB/T 2261.1)."""
    if v in ("1", "2"):
        return int(v), None
    if v in ("0", "9"):
        return 0, None
    if v == "":
        return None, "gend: missing (1 male, 2 female)"
    return None, f"gend: {v!r} is not 1 (male) or 2 (female)"


def parse_age(v: str):
    return _whole(v, "age", 0, MAX_AGE, required=True, unit=" years")


def parse_nwb_age(v: str):
    return _whole(v, "nwb_age", 0, MAX_NEWBORN_DAYS, required=False, unit=" days")


def parse_weight(v: str):
    return _whole(v, "nwb_bir_wt", 100, 10_000, required=False, unit=" g")


def parse_ipt_days(v: str):
    return _whole(v, "ipt_days", 0, MAX_IPT_DAYS, required=False, unit=" days")


def cross_check(age: int, nwb_age: int | None) -> str | None:
    if nwb_age is not None and age >= 1:
        return f"nwb_age: an age in days ({nwb_age}) is for a baby under one year, but age is {age} years"
    return None


def split_codes(v) -> list[str]:
    """``'a; b;;c'`` or a list → ``['a', 'b', 'c']`` (NFKC, so full-width ``；`` separates too)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    if isinstance(v, (list, tuple, np.ndarray)):
        parts = [_cell(x) for x in v]
    else:
        import unicodedata

        parts = unicodedata.normalize("NFKC", str(v)).split(";")
    return [p.strip() for p in parts if p and p.strip()]


class Grouper:
    """A loaded scheme and the grouping functions over it."""

    def __init__(self, tables: SchemeTables):
        self.t = tables
        self.name, self.version, self.label = tables.name, tables.version, tables.label
        self.effective_from = tables.effective_from
        self.path = tables.path
        meta = tables.meta
        self.prefix = tables.prefix
        self.dx_systems = (meta.diagnosis_system,)
        self.mdcs = tables.mdcs
        self.adrgs = tables.adrgs
        self.drgs = tables.drgs
        self.or_procedures = tables.or_procedures
        self.any_adrgs: tuple[AdrgRule, ...] = tuple(a for a in tables.adrgs.values() if a.dx_cond == "any")
        self.any_bit = {a.code: 1 << i for i, a in enumerate(self.any_adrgs)}
        self.region_bit = {r: 1 << i for i, r in enumerate(tables.trauma_regions)}
        # principal diagnosis -> the MDCs it may enter, in order (exact schemes: one dict lookup)
        self._by_dx: dict[str, tuple[MdcRule, ...]] = {}
        self._always = tuple(m for m in self.mdcs if m.entry == "adrgs")
        if not self.prefix:
            acc: dict[str, list[MdcRule]] = {}
            for m in self.mdcs:
                if m.entry == "main_dx":
                    for c in m.dx:
                        acc.setdefault(c, []).append(m)
            order = {m.code: i for i, m in enumerate(self.mdcs)}
            self._by_dx = {c: tuple(sorted([*ms, *self._always], key=lambda m: order[m.code])) for c, ms in acc.items()}
        self._targets: list[str] = [*self.adrgs, *(f"{m.code}QY" for m in self.mdcs if m.ambiguous_group), UNGROUPABLE]
        self.target_index = {t: i for i, t in enumerate(self._targets)}
        self._drg_table: np.ndarray | None = None

    # --- matching --------------------------------------------------------------------------

    def _has(self, codes: frozenset[str], code: str) -> bool:
        if not self.prefix:
            return code in codes
        return any(code[:n] in codes for n in range(len(code), 0, -1))

    def mdcs_for(self, dx: str) -> tuple[MdcRule, ...]:
        if not self.prefix:
            return self._by_dx.get(dx, self._always)
        hit = self._by_dx.get(dx)
        if hit is None:  # prefix schemes: MDCs entered through ADRGs first, then the longest matching prefix's MDC

            def match_len(m: MdcRule) -> int:
                return next((n for n in range(len(dx), 0, -1) if dx[:n] in m.dx), 0)

            cands = [(0 if m.entry == "adrgs" else 1, -match_len(m), m.seq, m) for m in self.mdcs]
            hit = tuple(c[3] for c in sorted((c for c in cands if c[0] == 0 or c[1] < 0), key=lambda c: c[:3]))
            self._by_dx[dx] = hit
        return hit

    def cc_of(self, code: str) -> tuple[int, str] | None:
        if not self.prefix:
            return self.t.cc.get(code)
        for n in range(len(code), 0, -1):
            hit = self.t.cc.get(code[:n])
            if hit is not None:
                return hit
        return None

    def exclusion_tables(self, dx: str) -> frozenset[str]:
        if not self.prefix:
            return self.t.cc_exclusion.get(dx, frozenset())
        out: set[str] = set()
        for n in range(len(dx), 0, -1):
            out |= self.t.cc_exclusion.get(dx[:n], frozenset())
        return frozenset(out)

    def dx_features(self, codes) -> tuple[int, int]:
        """(trauma-region bits, any-diagnosis ADRG bits) of some diagnoses."""
        tm = am = 0
        for c in codes:
            r = (
                self.t.trauma.get(c)
                if not self.prefix
                else next((self.t.trauma[c[:n]] for n in range(len(c), 0, -1) if c[:n] in self.t.trauma), None)
            )
            if r is not None:
                tm |= self.region_bit[r]
            for a in self.any_adrgs:
                if self._has(a.dx, c):
                    am |= self.any_bit[a.code]
        return tm, am

    @staticmethod
    def _newborn_fits(a: AdrgRule, ageday, weight) -> bool:
        """The ADRG's age-in-days and birth-weight limits (newborns) hold."""
        if a.max_age_days is not None and (ageday is None or ageday > a.max_age_days):
            return False
        if a.weight_min_g is not None or a.weight_max_g is not None:
            if weight is None:
                return False
            if a.weight_min_g is not None and weight < a.weight_min_g:
                return False
            if a.weight_max_g is not None and weight > a.weight_max_g:
                return False
        return True

    def _procedures_fit(self, a: AdrgRule, procs: tuple[str, ...], has_or: bool) -> bool:
        """The ADRG's procedure condition holds."""
        pc = a.proc_cond
        if not pc:
            return True
        if pc == "main":
            return bool(procs) and self._has(a.proc1, procs[0])
        if pc == "any":
            return any(self._has(a.proc1, p) for p in procs)
        if pc == "pair":  # two different coded procedures, one from each list
            ones = [i for i, p in enumerate(procs) if self._has(a.proc1, p)]
            if not ones:
                return False
            twos = [i for i, p in enumerate(procs) if self._has(a.proc2, p)]
            return any(i != j for i in ones for j in twos)
        if pc == "combo":
            labels: set[str] = set()
            for p in procs:
                labels |= a.labels.get(p, frozenset())
            return any(alt <= labels for alt in a.combo)
        if pc == "main_or":
            return bool(procs) and self._has(self.or_procedures, procs[0])
        if pc == "no_or":
            return not has_or
        raise AssertionError(pc)  # pragma: no cover - validated on load

    def _adrg_holds(
        self, a: AdrgRule, dx: str, procs: tuple[str, ...], has_or: bool, ageday, weight, amask: int
    ) -> bool:
        if not self._newborn_fits(a, ageday, weight):
            return False
        if a.dx_cond == "main":
            if not self._has(a.dx, dx):
                return False
        elif a.dx_cond == "any" and not amask & self.any_bit[a.code]:
            return False
        return self._procedures_fit(a, procs, has_or)

    @staticmethod
    def _mdc_barred(m: MdcRule, gend: int, age: int, ageday, tmask: int, explain: bool) -> str | None:
        """None if the case may enter MDC ``m`` (its diagnosis fits); else why not (empty unless ``explain``)."""
        if m.sex and gend != int(m.sex):
            if not explain:
                return ""
            return (
                f"MDC {m.code}: principal diagnosis fits, but it needs sex "
                f"{'male' if m.sex == '1' else 'female'} (gend {m.sex})"
            )
        if m.newborn and not (age == 0 or ageday is not None):
            return f"MDC {m.code}: principal diagnosis fits, but it needs an age under one year" if explain else ""
        if m.multi_trauma and bin(tmask).count("1") < 2:
            if not explain:
                return ""
            return f"MDC {m.code}: principal diagnosis fits, but it needs injuries in two or more body regions"
        return None

    def _target_in_mdc(
        self,
        m: MdcRule,
        dx: str,
        procs: tuple[str, ...],
        has_or: bool,
        ageday,
        weight,
        amask: int,
        path: list[str],
        explain: bool,
    ) -> str | None:
        """The ADRG (or <MDC>QY) of MDC ``m`` the case lands in, first by seq; None if none fits."""
        for i, a in enumerate(m.adrgs):
            if m.ambiguous_group and i == m.surgical_adrgs and has_or:
                if explain:
                    path.append(
                        f"{m.code}QY: an operating-room procedure but none of MDC {m.code}'s {m.surgical_adrgs} "
                        "surgical ADRGs fits (歧义组)"
                    )
                return f"{m.code}QY"
            if self._adrg_holds(a, dx, procs, has_or, ageday, weight, amask):
                if explain:
                    path.append(f"ADRG {a.code} (seq {a.seq} in MDC {m.code}): {a.describe()}")
                return a.code
        if m.ambiguous_group and m.surgical_adrgs == len(m.adrgs) and has_or:
            if explain:
                path.append(
                    f"{m.code}QY: an operating-room procedure but none of MDC {m.code}'s surgical ADRGs fits (歧义组)"
                )
            return f"{m.code}QY"
        return None

    def place(
        self,
        dx: str,
        procs: tuple[str, ...],
        gend: int,
        age: int,
        ageday,
        weight,
        tmask: int,
        amask: int,
        explain: bool = False,
    ):
        """(mdc, target ADRG / <MDC>QY / 0000, reason, path) of a case's principal diagnosis and procedures."""
        path: list[str] = []
        has_or = any(self._has(self.or_procedures, p) for p in procs)
        entered: list[str] = []
        for m in self.mdcs_for(dx):
            barred = self._mdc_barred(m, gend, age, ageday, tmask, explain)
            if barred is not None:
                if explain:
                    path.append(barred)
                continue
            if m.entry == "main_dx":
                entered.append(m.code)
                if explain:
                    path.append(f"MDC {m.code} ({m.name}): principal diagnosis {dx} is in its list")
            target = self._target_in_mdc(m, dx, procs, has_or, ageday, weight, amask, path, explain)
            if target is not None:
                return m.code, target, OK, path
            if explain and m.entry == "main_dx":
                path.append(f"MDC {m.code}: none of its {len(m.adrgs)} ADRGs fits; falls through to the next MDC")
        if entered:
            reason = f"ungroupable: entered MDC {', '.join(entered)} but none of their ADRGs fits"
        else:
            reason = f"ungroupable: principal diagnosis {dx} enters no MDC"
        if explain:
            path.append(reason)
        return "", UNGROUPABLE, reason, path

    def severity(self, dx: str, others, explain: bool = False) -> tuple[int, list[str]]:
        excl = self.exclusion_tables(dx)
        best, why = 0, []
        for o in others:
            if o == dx:
                continue
            hit = self.cc_of(o)
            if hit is None:
                continue
            level, table = hit
            if table in excl:
                if explain:
                    why.append(
                        f"{o} is a {SEVERITY_LEVELS[level].upper()} but excluded (its table {table} is the principal "
                        "diagnosis's)"
                    )
                continue
            if explain:
                why.append(f"{o} is a {SEVERITY_LEVELS[level].upper()} (table {table})")
            best = max(best, level)
        return best, why

    def drg_of(self, target: str, sev: int, age: int):
        """(DRG code, rw_e4) for a target ADRG / QY / 0000."""
        a = self.adrgs.get(target)
        if a is None:
            return target, self.t.special_rw.get(target)
        for d in a.drgs:
            if sev in d.severities and d.age_min <= age <= d.age_max:
                return d.code, d.rw_e4
        raise AssertionError("coverage was checked on load")  # pragma: no cover

    # --- input checks (one case) ------------------------------------------------------------

    def parse_dx(self, v: str, fld: str):
        if not v:
            return None, f"{fld}: missing"
        try:
            return national.check_diagnosis(v, fld, self.dx_systems), None
        except CodeTableError as exc:
            return None, exc.message_en

    def parse_dx_list(self, v):
        out = []
        for c in split_codes(v):
            code, err = self.parse_dx(c, "other_diags")
            if err:
                return None, err
            if code not in out:
                out.append(code)
        return tuple(out), None

    def parse_procs(self, v):
        out = []
        for c in split_codes(v):
            if self.t.meta.procedure_system == "sample":
                code = c
            else:
                try:
                    code = national.check_procedure(c, "oprns")
                except CodeTableError as exc:
                    return None, exc.message_en
            if code not in out:  # the same procedure twice counts once; order of first mention kept
                out.append(code)
        return tuple(out), None

    # --- the scalar path ----------------------------------------------------------------------

    def group(
        self,
        case_id="",
        gend="",
        age="",
        nwb_age="",
        nwb_bir_wt="",
        ipt_days="",
        main_diag="",
        other_diags="",
        oprns="",
        *,
        explain: bool = False,
    ) -> GroupResult:
        """Group one case (fields as in a 结算清单; lists or ``;``-joined strings)."""
        cid = _cell(case_id)
        g, e1 = parse_gend(_cell(gend))
        a, e2 = parse_age(_cell(age))
        nd, e3 = parse_nwb_age(_cell(nwb_age))
        w, e4 = parse_weight(_cell(nwb_bir_wt))
        _, e5 = parse_ipt_days(_cell(ipt_days))
        err = e1 or e2 or e3 or e4 or e5 or cross_check(a, nd)
        if not err:
            dx, err = self.parse_dx(_cell(main_diag), "main_diag")
        if not err:
            others, err = self.parse_dx_list(other_diags)
        if not err:
            procs, err = self.parse_procs(oprns)
        if err:
            return GroupResult(cid, "", "", "", "refused: " + err, "", None, ("refused: " + err,) if explain else ())
        tm1, am1 = self.dx_features((dx,))
        tm2, am2 = self.dx_features(others)
        mdc, target, status, path = self.place(dx, procs, g, a, nd, w, tm1 | tm2, am1 | am2, explain)
        sev, why = self.severity(dx, others, explain)
        drg, rw = self.drg_of(target, sev, a)
        if explain:
            path = [
                *path,
                f"severity {SEVERITY_LEVELS[sev]}"
                + (": " + "; ".join(why) if why else ": no CC/MCC among the secondary diagnoses"),
            ]
            if target in self.adrgs:
                path.append(f"DRG {drg}: {self.drgs[drg].name}")
        return GroupResult(cid, mdc, target, drg, status, SEVERITY_LEVELS[sev], rw, tuple(path))

    # --- the batch path -----------------------------------------------------------------------

    def _drg_lookup(self) -> np.ndarray:
        """(target, severity, age) → index into :attr:`drg_codes`; built once."""
        if self._drg_table is None:
            codes: list[str] = []
            rws: list[int] = []
            table = np.zeros((len(self._targets), 3, MAX_AGE + 1), dtype=np.int32)
            for ti, t in enumerate(self._targets):
                for s in range(3):
                    for age in range(MAX_AGE + 1):
                        code, rw = self.drg_of(t, s, age)
                        if not codes or codes[-1] != code:
                            if code in codes:
                                table[ti, s, age] = codes.index(code)
                                continue
                            codes.append(code)
                            rws.append(-1 if rw is None else rw)
                        table[ti, s, age] = len(codes) - 1
            self.drg_codes = np.array(codes, dtype=object)
            self.drg_rw = np.array(rws, dtype=np.int64)
            self._drg_table = table
        return self._drg_table

    def group_frame(self, cases: pd.DataFrame, *, explain: bool = False, progress=None) -> pd.DataFrame:
        """Group a table with the :data:`INPUT_COLUMNS`.  Returns ``case_id, mdc, adrg, drg, status, severity, rw_e4``
        (and ``path`` with ``explain``), in input order.

        Missing columns, an empty or duplicate ``case_id`` refuse the whole table
        (:class:`GroupingInputError`); a bad value refuses only its case (``status``).
        """
        case_id = _checked_case_ids(cases)
        n = len(cases)
        c = self._parse_columns(cases)
        if progress:
            progress(0.3)
        rows = np.flatnonzero(c.ok)
        inv, targets, mdcs, statuses = self._place_distinct(c, rows)
        if progress:
            progress(0.7)
        sev = self._severity_levels(c, rows, n)
        table = self._drg_lookup()
        out_mdc = np.full(n, "", dtype=object)
        out_adrg = np.full(n, "", dtype=object)
        out_drg = np.full(n, "", dtype=object)
        out_rw = np.full(n, -1, dtype=np.int64)
        out_status = np.full(n, "", dtype=object)
        bad = np.flatnonzero(~c.ok)
        out_status[bad] = ["refused: " + e for e in c.err[bad]]
        out_sev = np.full(n, "", dtype=object)
        if len(rows):
            t_rows = targets[inv]
            di = table[t_rows, sev[rows], c.age[rows]]
            out_mdc[rows] = mdcs[inv]
            out_adrg[rows] = np.array(self._targets, dtype=object)[t_rows]
            out_drg[rows] = self.drg_codes[di]
            out_rw[rows] = self.drg_rw[di]
            out_status[rows] = statuses[inv]
            out_sev[rows] = np.array(SEVERITY_LEVELS, dtype=object)[sev[rows]]
        frame = pd.DataFrame(
            {
                "case_id": case_id,
                "mdc": out_mdc,
                "adrg": out_adrg,
                "drg": out_drg,
                "status": out_status,
                "severity": out_sev,
                # numpy's stubs have no np.where overload with a None branch (an object array at run time)
                "rw_e4": pd.array(np.where(out_rw < 0, None, out_rw), dtype="Int64"),  # type: ignore[call-overload]
            }
        )
        if explain:
            frame["path"] = [
                " → ".join(self.group(**{c: cases[c].iat[i] for c in INPUT_COLUMNS}, explain=True).path)
                for i in range(n)
            ]
        if progress:
            progress(1.0)
        return frame

    def _parse_columns(self, cases: pd.DataFrame) -> _CaseColumns:
        """Every input column parsed once per distinct value; the first error of each case (None: valid)."""
        n = len(cases)
        g_i, g_v, g_e = _per_value(cases, "gend", parse_gend)
        a_i, a_v, a_e = _per_value(cases, "age", parse_age)
        d_i, d_v, d_e = _per_value(cases, "nwb_age", parse_nwb_age)
        w_i, w_v, w_e = _per_value(cases, "nwb_bir_wt", parse_weight)
        i_i, _, i_e = _per_value(cases, "ipt_days", parse_ipt_days)
        mx_i, mx_v, mx_e = _per_value(cases, "main_diag", lambda v: self.parse_dx(v, "main_diag"))
        ot_i, ot_res = _per_list(cases, "other_diags", self.parse_dx_list)
        op_i, op_res = _per_list(cases, "oprns", self.parse_procs)
        err = np.full(n, None, dtype=object)
        for e in (g_e[g_i], a_e[a_i], d_e[d_i], w_e[w_i], i_e[i_i]):
            err = np.where(pd.isna(err), e, err)
        age = np.array([-1 if v is None else v for v in a_v], dtype=np.int64)[a_i]
        nwb = np.array([-1 if v is None else v for v in d_v], dtype=np.int64)[d_i]
        cross = (nwb >= 0) & (age >= 1)
        if cross.any():
            xerr = np.full(n, None, dtype=object)
            xerr[cross] = [cross_check(int(a), int(d)) for a, d in zip(age[cross], nwb[cross], strict=True)]
            err = np.where(pd.isna(err), xerr, err)
        ot_err = np.array([r[1] for r in ot_res], dtype=object)
        op_err = np.array([r[1] for r in op_res], dtype=object)
        for e in (mx_e[mx_i], ot_err[ot_i], op_err[op_i]):
            err = np.where(pd.isna(err), e, err)
        gend = np.array([-1 if v is None else v for v in g_v], dtype=np.int64)[g_i]
        wgt = np.array([-1 if v is None else v for v in w_v], dtype=np.int64)[w_i]
        return _CaseColumns(err, pd.isna(err), age, nwb, gend, wgt, mx_i, mx_v, ot_i, ot_res, op_i, op_res)

    def _place_distinct(
        self, c: _CaseColumns, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Place each distinct combination of the facts the ADRG stage reads once.

        Returns (the combination of each valid row, and per combination: target index, MDC, status).
        """
        mx_i, mx_v, ot_i, ot_res, op_i, op_res = c.mx_i, c.mx_v, c.ot_i, c.ot_res, c.op_i, c.op_res
        age, nwb, gend, wgt = c.age, c.nwb, c.gend, c.wgt
        # per distinct value: features of diagnoses
        mx_feat = np.array([self.dx_features((v,)) if v is not None else (0, 0) for v in mx_v], dtype=np.int64).reshape(
            -1, 2
        )
        ot_feat = np.array(
            [self.dx_features(r[0]) if r[0] is not None else (0, 0) for r in ot_res], dtype=np.int64
        ).reshape(-1, 2)
        tmask = mx_feat[mx_i, 0] | ot_feat[ot_i, 0]
        amask = mx_feat[mx_i, 1] | ot_feat[ot_i, 1]
        # the ADRG stage depends on newborn facts only through these classes
        cuts_d = sorted({a.max_age_days for a in self.adrgs.values() if a.max_age_days is not None})
        cuts_w = sorted(
            {
                x
                for a in self.adrgs.values()
                for x in ((a.weight_min_g - 1) if a.weight_min_g is not None else None, a.weight_max_g)
                if x is not None
            }
        )
        d_cls = np.where(nwb < 0, 0, 1 + np.searchsorted(np.array(cuts_d, dtype=np.int64), nwb, side="left"))
        w_cls = np.where(wgt < 0, 0, 1 + np.searchsorted(np.array(cuts_w, dtype=np.int64), wgt, side="left"))
        age0 = (age == 0).astype(np.int64)
        cols = [mx_i, op_i, gend + 1, age0, d_cls, w_cls, tmask, amask]
        first, inv = _distinct_rows(cols, rows)
        targets = np.empty(len(first), dtype=np.int64)
        mdcs = np.empty(len(first), dtype=object)
        statuses = np.empty(len(first), dtype=object)
        for k, r in enumerate(rows[first]):
            mdc, target, status, _ = self.place(
                mx_v[mx_i[r]],
                op_res[op_i[r]][0],
                int(gend[r]),
                int(age[r]),
                None if nwb[r] < 0 else int(nwb[r]),
                None if wgt[r] < 0 else int(wgt[r]),
                int(tmask[r]),
                int(amask[r]),
            )
            targets[k], mdcs[k], statuses[k] = self.target_index[target], mdc, status
        return inv, targets, mdcs, statuses

    def _severity_levels(self, c: _CaseColumns, rows: np.ndarray, n: int) -> np.ndarray:
        """Each valid case's severity (0 none, 1 CC, 2 MCC) over exploded (case, secondary diagnosis) pairs."""
        mx_i, mx_v, ot_i, ot_res = c.mx_i, c.mx_v, c.ot_i, c.ot_res
        all_dx = sorted({*(v for v in mx_v if v is not None), *(c for r in ot_res if r[0] for c in r[0])})
        dx_ix = {c: i for i, c in enumerate(all_dx)}
        tables = sorted({t for _, t in self.t.cc.values()} | {t for ts in self.t.cc_exclusion.values() for t in ts})
        t_ix = {t: i for i, t in enumerate(tables)}
        lvl = np.zeros(len(all_dx), np.int64)
        tbl = np.full(len(all_dx), -1, np.int64)
        for code_, i in dx_ix.items():
            hit = self.cc_of(code_)
            if hit is not None:
                lvl[i], tbl[i] = hit[0], t_ix[hit[1]]
        mx_code = np.array([dx_ix[v] if v is not None else -1 for v in mx_v], dtype=np.int64)
        excl_keys = np.array(
            sorted(
                int(mx_code[j]) * len(tables) + t_ix[t]
                for j, v in enumerate(mx_v)
                if v is not None
                for t in self.exclusion_tables(v)
            ),
            dtype=np.int64,
        )
        ot_codes = [[dx_ix[c] for c in r[0]] if r[0] else [] for r in ot_res]
        lens = np.array([len(c) for c in ot_codes], dtype=np.int64)
        flat = np.array([i for c in ot_codes for i in c], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        sev = np.zeros(n, np.int64)
        if len(rows):
            per = lens[ot_i[rows]]
            total = int(per.sum())
            if total:
                owner = np.repeat(np.arange(len(rows)), per)
                offs = np.arange(total) - np.repeat(np.cumsum(per) - per, per)
                code = flat[np.repeat(starts[ot_i[rows]], per) + offs]
                prin = mx_code[mx_i[rows]][owner]
                lv = lvl[code]
                has_t = tbl[code] >= 0
                excluded = has_t & np.isin(prin * len(tables) + np.where(has_t, tbl[code], 0), excl_keys)
                lv = np.where(excluded | (code == prin), 0, lv)
                nz = per > 0
                red = np.maximum.reduceat(lv, (np.cumsum(per) - per)[nz])
                s_rows = np.zeros(len(rows), np.int64)
                s_rows[nz] = red
                sev[rows] = s_rows
        return sev


@dataclass
class _CaseColumns:
    """The parsed input columns of :meth:`Grouper.group_frame` (``*_i``: index of each row's distinct value)."""

    err: np.ndarray  # the first error of each case, None where valid
    ok: np.ndarray
    age: np.ndarray  # -1 where missing
    nwb: np.ndarray
    gend: np.ndarray
    wgt: np.ndarray
    mx_i: np.ndarray
    mx_v: np.ndarray
    ot_i: np.ndarray
    ot_res: list
    op_i: np.ndarray
    op_res: list


def _checked_case_ids(cases: pd.DataFrame) -> np.ndarray:
    """The input columns are there and every ``case_id`` is set and unique; returns the ids (stripped text)."""
    missing = [c for c in INPUT_COLUMNS if c not in cases.columns]
    if missing:
        raise GroupingInputError(
            f"missing columns {missing}; expected {list(INPUT_COLUMNS)}", f"缺少列 {missing}", field=missing[0]
        )
    raw_id = cases["case_id"]
    if pd.api.types.infer_dtype(raw_id, skipna=True) in ("string", "empty"):
        ids = raw_id.astype(object).where(raw_id.notna(), "").str.strip()
    else:
        ids = raw_id.map(_cell)
    case_id = ids.to_numpy(dtype=object)
    empty = np.flatnonzero(case_id == "")
    if len(empty):
        raise GroupingInputError(
            f"row {int(empty[0]) + 1}: empty case_id", f"第 {int(empty[0]) + 1} 行 case_id 为空", field="case_id"
        )
    dup = ids.duplicated().to_numpy()
    if dup.any():
        first = case_id[int(np.flatnonzero(dup)[0])]
        raise GroupingInputError(f"duplicate case_id {first!r}", f"case_id {first!r} 重复", field="case_id")
    return case_id


def _per_value(cases: pd.DataFrame, col: str, fn):
    """Parse each distinct value of ``col`` once: (index per row, values, errors); missing is parsed as ''."""
    codes, uniq = pd.factorize(cases[col], use_na_sentinel=True)
    res = [fn(_cell(u)) for u in uniq] + [fn("")]
    vals = np.empty(len(res), dtype=object)
    errs = np.empty(len(res), dtype=object)
    for i, (v, e) in enumerate(res):
        vals[i], errs[i] = v, e
    idx = np.where(codes < 0, len(res) - 1, codes)
    return idx, vals, errs


def _per_list(cases: pd.DataFrame, col: str, fn):
    """Parse each distinct code list of ``col`` once: (index per row, results)."""
    col_v = cases[col]
    if pd.api.types.infer_dtype(col_v, skipna=True) not in ("string", "empty"):  # lists (Parquet) or numbers
        col_v = col_v.map(lambda v: ";".join(split_codes(v)) if not isinstance(v, str) else v)
    codes, uniq = pd.factorize(col_v, use_na_sentinel=True)
    res = [fn(u) for u in uniq] + [fn("")]
    idx = np.where(codes < 0, len(res) - 1, codes)
    return idx, res


def _distinct_rows(cols: list[np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first position of each distinct key, key index of each row) of ``rows`` over the key columns."""
    key_cols = (
        np.stack([c[rows].astype(np.int64) for c in cols], axis=1) if len(rows) else np.zeros((0, len(cols)), np.int64)
    )
    radix = [int(c.max()) + 1 if len(c) else 1 for c in key_cols.T]
    if math.prod(radix) < 2**62:
        key = np.zeros(len(rows), dtype=np.int64)
        for c, r in zip(key_cols.T, radix, strict=True):
            key = key * r + c
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    else:  # pragma: no cover - astronomically many distinct values
        _, first, inv = np.unique(key_cols, axis=0, return_index=True, return_inverse=True)
    return first, inv.reshape(-1)


_CACHE: dict[tuple[Path, dt.date | None], Grouper] = {}


def load_grouper(name_or_path: str | Path = "chs-drg-1.1", on: dt.date | None = None) -> Grouper:
    """A scheme by name (``chs-drg-1.1``, a local scheme's name: the version in force ``on``) or directory; loaded
    once."""
    d = find_scheme_dir(name_or_path, on).resolve()
    key = (d, on)
    if key not in _CACHE:
        _CACHE[key] = Grouper(SchemeTables(d, on))
    return _CACHE[key]


# --- files -----------------------------------------------------------------------------------------


def read_cases(path: str | Path) -> pd.DataFrame:
    """A grouping input file: Parquet, or CSV (UTF-8, header row; every value read as text, empty = absent)."""
    p = Path(path)
    if not p.exists():
        raise GroupingInputError(f"{p}: file not found", f"{p}: 文件不存在", field="in")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if suffix in (".csv", ".txt", ".tsv"):
            return pd.read_csv(
                p, dtype=str, keep_default_na=False, sep="\t" if suffix == ".tsv" else ",", encoding="utf-8-sig"
            )
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise GroupingInputError(f"{p}: cannot read ({exc})", f"{p}: 无法读取文件", field="in") from None
    raise GroupingInputError(f"{p}: give a .parquet or .csv file", f"{p}: 须为 .parquet 或 .csv 文件", field="in")


def write_groups(frame: pd.DataFrame, path: str | Path, *, explain: bool = False) -> None:
    """Write ``case_id, mdc, adrg, drg, status`` (and ``path`` with explain) as Parquet or CSV."""
    p = Path(path)
    cols = [*OUTPUT_COLUMNS, *(("path",) if explain and "path" in frame else ())]
    out = frame[cols]
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    if p.suffix.lower() in (".parquet", ".pq"):
        out.to_parquet(tmp, index=False)
    elif p.suffix.lower() == ".csv":
        out.to_csv(tmp, index=False, encoding="utf-8")
    else:
        raise GroupingInputError(
            f"{p}: give a .parquet or .csv output file", f"{p}: 输出须为 .parquet 或 .csv 文件", field="out"
        )
    tmp.replace(p)  # nothing half-written under the final name
