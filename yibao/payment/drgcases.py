"""SYNTHETIC cases built from a DRG scheme's own tables: one that reaches each DRG.

For every DRG the builder picks, from the scheme's lists, a principal diagnosis
that enters the DRG's MDC and ADRG, the procedures its ADRG asks for (principal
first, pairs, label combinations), the sex, age in days and birth weight its
entry needs, injuries in two body regions for MDC Z, and secondary diagnoses
that give the DRG's severity (an MCC or CC not excluded by the principal
diagnosis's table).  Each candidate is checked by grouping it; one that lands
elsewhere (an earlier ADRG takes it) is drawn again.  Also: ambiguous (QY)
cases and ungroupable ones.

Used by the correctness tests (one case per ADRG condition, from the tables) and
by ``benchmarks/bench_drg.py`` (1 M cases over all DRGs).  The cases are
synthetic: combinations of real codes, not real patients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from yibao.payment.drgscheme import AdrgRule
from yibao.payment.grouper import Grouper


def _pick(rng: np.random.Generator, pool: list[str]) -> str:
    return pool[int(rng.integers(len(pool)))]


class CaseBuilder:
    def __init__(self, g: Grouper, seed: int = 0):
        self.g = g
        self.rng = np.random.default_rng(seed)
        self.mdc_of = {a.code: a.mdc for a in g.adrgs.values()}
        self.mdc = {m.code: m for m in g.mdcs}
        self._sorted: dict[tuple, list[str]] = {}
        self.cc_codes = sorted(c for c, (lv, _) in g.t.cc.items() if lv == 1)
        self.mcc_codes = sorted(c for c, (lv, _) in g.t.cc.items() if lv == 2)
        self.or_list = sorted(g.or_procedures)
        self.non_cc = sorted(set(self.g.t.cc_exclusion) - set(g.t.cc))[:5000]
        by_region: dict[str, list[str]] = {}
        for c, r in g.t.trauma.items():
            by_region.setdefault(r, []).append(c)
        self.by_region = {r: sorted(v) for r, v in by_region.items()}

    def _s(self, codes, key) -> list[str]:
        """``codes`` sorted (so draws are reproducible), cached under ``key``."""
        if key not in self._sorted:
            self._sorted[key] = sorted(codes)
        return self._sorted[key]

    def _procs(self, a: AdrgRule) -> list[str]:
        r = self.rng
        pc = a.proc_cond
        if pc in ("main", "any"):
            return [_pick(r, self._s(a.proc1, (a.code, "p1")))]
        if pc == "pair":
            p = _pick(r, self._s(a.proc1, (a.code, "p1")))
            q = _pick(r, [x for x in self._s(a.proc2, (a.code, "p2")) if x != p] or self._s(a.proc2, (a.code, "p2")))
            return [p, q]
        if pc == "combo":
            alt = sorted(a.combo[int(r.integers(len(a.combo)))])
            out = []
            for lab in alt:
                out.append(
                    _pick(r, self._s([c for c, labs in a.labels.items() if lab in labs], (a.code, "label", lab)))
                )
            return out
        if pc == "main_or":
            return [_pick(r, self.or_list)]
        return []

    def _severity_codes(self, dx: str, want: frozenset[int]) -> list[str]:
        r = self.rng
        excl = self.g.exclusion_tables(dx)
        level = 2 if want == frozenset({2}) else (1 if 0 not in want else int(r.choice([0, 0, 1, 2])))
        if level == 0:
            return [_pick(r, self.non_cc)] if self.non_cc and r.random() < 0.5 else []
        pool = self.mcc_codes if level == 2 else self.cc_codes
        for _ in range(50):
            c = _pick(r, pool)
            if self.g.t.cc[c][1] not in excl and c != dx:
                return [c]
        return []

    def case_for(self, drg: str, tries: int = 60) -> dict | None:
        """One case that the scheme groups into ``drg``; None if none found in ``tries`` draws."""
        g, r = self.g, self.rng
        d = g.drgs[drg]
        a = g.adrgs[d.adrg]
        m = self.mdc[a.mdc]
        earlier = [e for e in m.adrgs if e.seq < a.seq]
        dx_free = self._s(
            (a.dx & m.dx if m.entry == "main_dx" else a.dx) - {c for e in earlier for c in e.dx}, (a.code, "dx-free")
        )
        p_free = self._s(a.proc1 - {c for e in earlier for c in e.proc1}, (a.code, "p1-free"))
        for i in range(tries):
            if a.dx_cond == "main":
                pool = self._s(a.dx & m.dx if m.entry == "main_dx" else a.dx, (a.code, "dx"))
                if not pool:
                    return None
                dx = _pick(r, dx_free if dx_free and i % 3 == 0 else pool)
            elif m.entry == "main_dx":
                dx = _pick(r, self._s(m.dx, (m.code, "mdc")))
            else:
                dx = _pick(r, self._s(self.mdc["X"].dx if "X" in self.mdc else g.t.cc_exclusion.keys(), ("X", "mdc")))
            others: list[str] = []
            if a.dx_cond == "any":
                others.append(_pick(r, self._s(a.dx, (a.code, "anydx"))))
            if m.multi_trauma:
                region = g.t.trauma.get(dx)
                other_regions = sorted(x for x in self.by_region if x != region)
                others.append(_pick(r, self.by_region[other_regions[int(r.integers(len(other_regions)))]]))
            others += self._severity_codes(dx, d.severities)
            gend = m.sex or str(int(r.integers(1, 3)))
            nwb_age: str | int = ""
            nwb_bir_wt: str | int = ""
            if m.newborn or a.max_age_days is not None:
                age = 0
                hi = a.max_age_days if a.max_age_days is not None else 364
                nwb_age = int(r.integers(0, hi + 1))
                if a.weight_min_g is not None or a.weight_max_g is not None:
                    lo = a.weight_min_g if a.weight_min_g is not None else 500
                    top = a.weight_max_g if a.weight_max_g is not None else 4500
                    nwb_bir_wt = int(r.integers(lo, top + 1))
            else:
                lo, hi = max(d.age_min, 1), min(d.age_max, 95)
                age = int(r.integers(lo, hi + 1))
            procs = self._procs(a)
            if a.proc_cond == "main" and p_free and i % 3 == 1:
                procs = [_pick(r, p_free)]
            case: dict[str, Any] = dict(
                gend=gend,
                age=age,
                nwb_age=nwb_age,
                nwb_bir_wt=nwb_bir_wt,
                ipt_days=int(r.integers(1, 30)),
                main_diag=dx,
                other_diags=";".join(dict.fromkeys(others)),
                oprns=";".join(procs),
            )
            got = g.group(case_id="x", **case)
            if got.drg == drg:
                return case
        return None

    def qy_case(self, mdc: str, tries: int = 60) -> dict | None:
        """A case with an operating-room procedure unrelated to its principal diagnosis (``<MDC>QY``)."""
        m = self.mdc[mdc]
        for _ in range(tries):
            dx = _pick(self.rng, self._s(m.dx, (m.code, "mdc")))
            case: dict[str, Any] = dict(
                gend=m.sex or "1",
                age=40 if not m.newborn else 0,
                nwb_age="" if not m.newborn else 40,
                nwb_bir_wt="",
                ipt_days=5,
                main_diag=dx,
                other_diags="",
                oprns=_pick(self.rng, self.or_list),
            )
            if self.g.group(case_id="x", **case).drg == f"{mdc}QY":
                return case
        return None


def scheme_cases(g: Grouper, *, per_drg: int = 3, seed: int = 0, qy_per_mdc: int = 2) -> pd.DataFrame:
    """SYNTHETIC cases that reach every DRG of the scheme (``per_drg`` each, where found), QY cases and a few
    ungroupable ones.

    Column ``expected_drg`` holds the group each case was built for.
    """
    b = CaseBuilder(g, seed)
    rows = []
    for drg in sorted(g.drgs):
        for _ in range(per_drg):
            c = b.case_for(drg)
            if c is not None:
                rows.append({**c, "expected_drg": drg})
    for m in g.mdcs:
        if m.ambiguous_group:
            for _ in range(qy_per_mdc):
                c = b.qy_case(m.code)
                if c is not None:
                    rows.append({**c, "expected_drg": f"{m.code}QY"})
    out = pd.DataFrame(rows)
    out.insert(0, "case_id", [f"SYN{i:07d}" for i in range(len(out))])
    for col in ("nwb_age", "nwb_bir_wt"):
        # pandas-stubs reject None as a replacement value; pandas takes it (a missing value)
        out[col] = out[col].astype(str).replace({"": None})  # type: ignore[arg-type]
    return out
