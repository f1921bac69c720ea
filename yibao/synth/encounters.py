"""Encounters (就诊) and fee details (费用明细) for one chunk of people.

Everything is vectorised over people, encounters and lines; Python loops run
only over small things (settings, diagnosis groups, formulary slots, visit
numbers).  Rates and sizes are ILLUSTRATIVE unless a comment names a seed.

Calibration (seed 3, 20,000 people): mean inpatient cost per admission about
¥2,200 / ¥4,800 / ¥8,700 at levels 1 / 2 / 3 with a long right tail (p99 at
level 3 about ¥50,000), hospital outpatient visits about ¥70-130, about ¥1,500
of claims per person-year.  These sit somewhat below published national
averages (the 2023 health statistics bulletin puts the mean hospital
admission at roughly ¥10,000); the intensity parameters below are the knobs.

Settings and med_type codes (contract): general outpatient 11, chronic and
special outpatient diseases 14, inpatient 21, pharmacy 41, home bed 52.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core import contract as C
from yibao.synth import formulary as F
from yibao.synth._arrow import FixedStrings, cat, cat_or_empty, const_bool, const_str, digits, ts
from yibao.synth.catalog import MED_TYPES, SynthCatalog
from yibao.synth.institutions import Institutions
from yibao.synth.people import PeopleChunk, ymd_numbers

DAY = 86_400
HOUR = 3_600
MT = {m: i for i, m in enumerate(MED_TYPES)}
DSCG_WAYS = ("", "1", "2", "3", "4", "5")  # 1 医嘱离院 2 医嘱转院 3 医嘱转社区 4 非医嘱离院 5 死亡
DSCG_P = np.array([0.93, 0.02, 0.01, 0.03, 0.01])
SETTING_OUTPATIENT, SETTING_PHARMACY, SETTING_CHRONIC, SETTING_SPECIAL, SETTING_INPATIENT, SETTING_HOME_BED = range(6)

# --- illustrative rates -------------------------------------------------------
AGE_EDGES = np.array([5, 15, 45, 60, 75])  # bands: 0-4, 5-14, 15-44, 45-59, 60-74, 75+
OUTPATIENT_RATE = np.array([3.0, 1.5, 1.2, 2.0, 3.0, 3.5])  # visits / person-year
EMPLOYEE_OUTPATIENT_FACTOR = 1.3
INPATIENT_RATE = np.array([0.16, 0.06, 0.11, 0.18, 0.35, 0.50])  # admissions / person-year (~17 % overall)
INTENSITY_MU = np.array([0.0, 1.0, 1.35, 1.85])  # log-normal treatment intensity by level (drug and test volume)
INTENSITY_SIGMA = 0.55
OUTPATIENT_VOLUME_MU = np.array([0.0, 0.15, 0.45, 0.65])  # log-normal drug volume by level (0 = primary centre)
OUTPATIENT_VOLUME_SIGMA = 0.5
OUTPATIENT_IMAGING_P = np.array([0.01, 0.04, 0.12, 0.18])  # outpatient imaging (ultrasound, DR, CT, MR) by level
IP_DRUG_DAYS = (0.4, 1.0)  # an inpatient drug is given for this share of the stay (uniform)
TEST_REPEAT_DAYS = 5  # an inpatient test is repeated about every TEST_REPEAT_DAYS / intensity days
HTN_P = np.array([0.0, 0.0, 0.004, 0.08, 0.18, 0.22])  # registered for 门诊慢病 (hypertension)
DM_P = np.array([0.0, 0.001, 0.003, 0.04, 0.08, 0.08])  # registered (diabetes)
SPECIAL_P = np.array([0.0, 0.0, 0.0008, 0.003, 0.006, 0.006])
HOME_BED_P = np.array([0.0, 0.0, 0.0, 0.0, 0.001, 0.004])
PHARMACY_RATE = {"in_service": 3.0, "retired": 5.0, "resident": 0.8, "child": 0.3}
CHRONIC_PERIODS = np.array([28, 30, 56, 84])
CHRONIC_PERIOD_P = np.array([0.45, 0.10, 0.25, 0.20])
OUTPATIENT_LEVEL_P = np.array([0.40, 0.15, 0.25, 0.20])  # primary, L1, L2, L3
CHRONIC_LEVEL_P = np.array([0.55, 0.15, 0.20, 0.10])
INPATIENT_LEVEL_P = np.array([0.15, 0.45, 0.40])  # L1, L2, L3
HOME_BED_LEVEL_P = np.array([0.7, 0.2, 0.1, 0.0])
CROSS_PROVINCE = {"outpatient": 0.005, "inpatient": 0.015, "special": 0.02}
PHARMACY_RX_SHARE = 0.3  # prescriptions filled at a pharmacy (外配处方)
PHARMACY_EXTRA_P = 0.12
WELLNESS_P = 0.002
MULAID_P = 0.3  # residents' encounters paid from an employee relative's account (共济)
KEEP_VIOLATION = 0.1  # share of out-of-scope lines kept (the rest are not billed)
LT_RX_UNCONFIRMED = 0.005
HOME_BED_DAYS = 180  # Suzhou rule, seed 000
HOME_BED_VISIT_EVERY = 7
HOME_BED_REFILL_EVERY = 28
LEVEL_GROUPS = ("primary", "L1", "L2", "L3")
SERVICE_LEVEL_FACTOR = np.array([1.0, 0.9, 0.95, 1.0])  # by hosp_lv (0 = pharmacy); primary centres 0.85
VBP_SELECTED_P = 0.9
OVER_CAP_KEEP = 0.03
OVER_CAP_EXTRA = 0.004


@lru_cache(maxsize=1)
def _procedure_tables():
    """(codes, linked charge items, procedure mix) of the shipped procedure list, loaded once."""
    from yibao.codes.procedures import load_procedure_mix, load_procedures

    procs = load_procedures()
    return (
        tuple(procs.column("oprn_codg").to_pylist()),
        tuple(procs.column("med_list_codg").to_pylist()),
        load_procedure_mix(procedures=procs),
    )


@lru_cache(maxsize=256)
def national_procedure(code: str, item: str = "") -> str:
    """The 医保版 ICD-9-CM-3 2.0 code of the procedure list for a formulary procedure.

    The formulary (``yibao.synth.formulary``) may still name a procedure by its
    ICD-9-CM-3 stem (``47.09``); the procedure list holds the national code
    (``47.0901``).  A code already in the list is kept; otherwise the list row
    linked to the same charge item ``item`` is taken, else the first row whose
    code starts with the stem.
    """
    codes, items, _ = _procedure_tables()
    if code in codes:
        return code
    linked = [c for c, it in zip(codes, items, strict=True) if item and it == item]
    if len(linked) == 1:
        return linked[0]
    stem = [c for c in codes if c.startswith(code)]
    if stem:
        return stem[0]
    raise KeyError(f"procedure {code!r} (charge item {item!r}) is not in the procedure list")


def band(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(AGE_EDGES, age, side="right")


@dataclass
class Enc:
    """Encounter columns, appended block by block."""

    cols: dict[str, list] = field(default_factory=dict)
    n: int = 0

    DEFAULTS = {"rx": True, "lt_flag": False}

    def add(self, **arrays) -> int:
        m = len(arrays["person"])
        for k, v in self.DEFAULTS.items():
            arrays.setdefault(k, v)
        start = self.n
        for k, v in arrays.items():
            self.cols.setdefault(k, []).append(np.asarray(v) if np.ndim(v) else np.full(m, v))
        self.n += m
        return start

    def get(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.cols.items()}


@dataclass
class Lines:
    """Fee lines; one call adds at most one line per encounter."""

    parts: list[tuple] = field(default_factory=list)

    def add(self, enc, item, cnt, prd=0, t_off=-1):
        enc = np.asarray(enc, dtype=np.int64)
        m = len(enc)
        if m == 0:
            return
        self.parts.append(
            (
                enc,
                np.broadcast_to(np.asarray(item, dtype=np.int64), (m,)),
                np.broadcast_to(np.asarray(cnt, dtype=np.int64), (m,)),
                np.broadcast_to(np.asarray(prd, dtype=np.int64), (m,)),
                np.broadcast_to(np.asarray(t_off, dtype=np.int64), (m,)),
            )
        )

    def get(self):
        if not self.parts:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z, z, z
        return tuple(np.concatenate([p[i] for p in self.parts]) for i in range(5))

    def order(self, n_enc: int) -> np.ndarray:
        """Stable order of the concatenated lines by encounter, in O(lines) (a counting sort).

        Relies on each call holding at most one line per encounter.
        """
        counts = np.zeros(n_enc, dtype=np.int64)
        for p in self.parts:
            counts[p[0]] += 1
        end = np.cumsum(counts)
        fill = end - counts
        total = int(end[-1]) if n_enc else 0
        pos = np.empty(total, dtype=np.int64)
        off = 0
        for p in self.parts:
            e = p[0]
            pos[off : off + len(e)] = fill[e]
            fill[e] += 1
            off += len(e)
        if not np.array_equal(fill, end):
            raise AssertionError("a Lines.add call held two lines of one encounter")
        order = np.empty(total, dtype=np.int64)
        order[pos] = np.arange(total)
        return order


class Region:
    """Per-chunk generator state."""

    def __init__(
        self, rng: np.random.Generator, cat_: SynthCatalog, inst: Institutions, people: PeopleChunk, year: int
    ):
        self.rng = rng
        self.c = cat_
        self.inst = inst
        self.p = people
        self.year = year
        self.days = int((np.datetime64(f"{year + 1}-01-01") - np.datetime64(f"{year}-01-01")).astype(int))
        # 00:00 on 1 January, Asia/Shanghai (UTC+8, no daylight saving), as epoch seconds
        self.t0 = (
            int(
                (np.datetime64(f"{year}-01-01T00:00:00") - np.datetime64("1970-01-01T00:00:00"))
                .astype("timedelta64[s]")
                .astype(int)
            )
            - 8 * HOUR
        )
        self.enc = Enc()
        self.lines = Lines()
        self.cell = np.where(people.male, 100, 0) + np.minimum(people.age, 99)
        mix = cat_.mix
        self.mix = mix
        self.code_id = np.unique(mix.code, return_inverse=True)[1]
        self._samplers: dict = {}
        self._therapy_keys: list[str] = []
        self._therapies: list[F.Therapy] = []
        tid = {}
        self.therapy_of_row = np.empty(len(mix), dtype=np.int64)
        for r, code in enumerate(mix.therapy):  # the row's formulary key ('' in the file = its own code)
            key, th = F.therapy_for(code)
            if key not in tid:
                tid[key] = len(self._therapies)
                self._therapies.append(th)
                self._therapy_keys.append(key)
            self.therapy_of_row[r] = tid[key]
        self.depts = sorted({th.dept for th in self._therapies} | {s.dept for s in F.SPECIAL.values()} | {"A03"})
        self.dept_of_row = np.array([self.depts.index(self._therapies[t].dept) for t in self.therapy_of_row])
        self.oprns: list[str] = []
        # principal procedures of the procedure mix, per inpatient row of the diagnosis mix
        codes, items, pmix = _procedure_tables()
        item_of = dict(zip(codes, items, strict=True))
        row_of = {c: r for r, (c, st) in enumerate(zip(mix.code, mix.setting, strict=True)) if st == "inpatient"}
        self.proc_mix: dict[int, list[tuple[str, float, int, str]]] = {}
        for dx, op, share, lv in zip(
            *(pmix.column(n).to_pylist() for n in ("dise_codg", "oprn_codg", "share", "min_level")), strict=True
        ):
            if dx in row_of:
                self.proc_mix.setdefault(row_of[dx], []).append((op, share, lv, item_of.get(op, "")))
        self.newborn_row = np.array(
            [c.startswith("P") for c in mix.code], dtype=bool
        )  # 围生期 conditions (ICD-10 chapter XVI)
        self.has_proc_mix = np.zeros(len(mix), dtype=bool)
        self.has_proc_mix[list(self.proc_mix)] = True
        self.htn = np.full(people.n, -1, dtype=np.int64)  # chronic diagnosis rows per person
        self.dm = np.full(people.n, -1, dtype=np.int64)
        self._pools: dict = {}

    # --- helpers --------------------------------------------------------------
    def oprn_index(self, code: str) -> int:
        if code not in self.oprns:
            self.oprns.append(code)
        return self.oprns.index(code)

    def sampler(self, setting: str, subset: np.ndarray | None = None):
        key = (setting, None if subset is None else tuple(subset))
        if key not in self._samplers:
            mix = self.mix
            rows = mix.rows(setting) if subset is None else subset
            ages = np.arange(100)
            w = np.zeros((200, len(rows)))
            for j, r in enumerate(rows):
                ok_age = ((mix.age_min[r] < 0) | (ages >= mix.age_min[r])) & (
                    (mix.age_max[r] < 0) | (ages <= mix.age_max[r])
                )
                for male in (0, 1):
                    g = mix.gend[r]
                    ok_sex = g == "" or (g == "1") == bool(male)
                    w[male * 100 : male * 100 + 100, j] = mix.weight[r] * ok_age * ok_sex
            tot = w.sum(axis=1, keepdims=True)
            empty = tot[:, 0] == 0
            w[empty] = mix.weight[rows]  # nobody eligible: fall back to the plain weights
            cdf = np.cumsum(w, axis=1) / w.sum(axis=1, keepdims=True)
            cdf[:, -1] = 1.0
            flat = (cdf + np.arange(200)[:, None]).ravel()
            self._samplers[key] = (np.asarray(rows), flat, len(rows), ~empty)
        return self._samplers[key]

    def sample_diag(self, setting: str, persons: np.ndarray, subset=None) -> np.ndarray:
        rows, flat, R, _ = self.sampler(setting, subset)
        cell = self.cell[persons]
        pos = np.searchsorted(flat, cell + self.rng.random(len(persons)), side="right")
        return rows[np.clip(pos - cell * R, 0, R - 1)]

    def eligible(self, setting: str, persons: np.ndarray, subset=None) -> np.ndarray:
        return self.sampler(setting, subset)[3][self.cell[persons]]

    def pool(self, p) -> tuple[np.ndarray, np.ndarray]:
        key = id(p)
        if key not in self._pools:
            self._pools[key] = (p, *self.c.pool_arrays(p)) if p else (p, np.zeros(0, np.int64), np.zeros(0))
        return self._pools[key][1], self._pools[key][2]

    def pick_distinct(self, m: int, p, n_range) -> list[tuple[np.ndarray, np.ndarray]]:
        """Up to n distinct weighted picks from a pool for each of m rows: [(rows, items)] per rank."""
        items, w = self.pool(p)
        P = len(items)
        if P == 0 or m == 0:
            return []
        hi = min(n_range[1], P)
        lo = min(n_range[0], hi)
        if hi == 0:
            return []
        k = self.rng.integers(lo, hi + 1, size=m)
        # weighted sampling without replacement: the largest keys log(u) / w (an exponential race)
        keys = np.log(self.rng.random((m, P))) * (1.0 / w)[None, :]
        rows = np.arange(m)
        out = []
        for j in range(hi):  # top-k by repeated argmax
            best = keys.argmax(axis=1)
            sel = np.flatnonzero(k > j)
            if len(sel):
                out.append((sel, items[best[sel]]))
            keys[rows, best] = -np.inf
        return out

    def choose(self, p, m: int) -> np.ndarray:
        items, w = self.pool(p)
        if len(items) == 1:
            return np.full(m, items[0])
        cw = np.cumsum(w)
        return items[np.searchsorted(cw, self.rng.random(m) * cw[-1], side="right").clip(0, len(items) - 1)]

    def qty(self, item: np.ndarray, days, sessions, rule="auto") -> np.ndarray:
        """Quantity × 1000 by the item's basis; drugs and consumables in whole units, herbs in grams."""
        c = self.c
        m = len(item)
        if isinstance(rule, tuple):
            return self.rng.integers(rule[0], rule[1] + 1, size=m) * 1000
        daily = c.daily_milli[item]
        if rule == "once":
            q = daily
        else:
            basis = c.basis[item]
            q = np.where(basis == 0, daily * days, np.where(basis == 2, daily * sessions, daily))
        whole = ~c.is_herbal[item]
        q = np.where(whole, -(-q // 1000) * 1000, q)
        return np.maximum(q, 1)

    def slots(self, enc: np.ndarray, slots, days, sessions):
        for s in slots:
            sel = np.flatnonzero(self.rng.random(len(enc)) < s.p) if s.p < 1 else np.arange(len(enc))
            if not len(sel):
                continue
            item = self.choose(s.alts, len(sel))
            d = days[sel] if np.ndim(days) else days
            se = sessions[sel] if np.ndim(sessions) else sessions
            self.lines.add(enc[sel], item, self.qty(item, d, se, s.qty))

    def level_inst(self, levels: np.ndarray) -> np.ndarray:
        """Institution for each wanted level (0 = primary centre, 1..3 hospitals)."""
        out = np.empty(len(levels), dtype=np.int64)
        for lv, g in enumerate(LEVEL_GROUPS):
            sel = levels == lv
            if sel.any():
                out[sel] = self.inst.pick(self.rng, g, int(sel.sum()))
        return out

    def cross(self, inst: np.ndarray, p: float, eligible=None) -> np.ndarray:
        u = self.rng.random(len(inst)) < p
        if eligible is not None:
            u &= eligible
        if u.any():
            inst = inst.copy()
            inst[u] = self.inst.pick_remote(self.rng, int(u.sum()))
        return inst

    def times(self, day, start_h, span_h, dur_lo, dur_hi):
        begin = self.t0 + day * DAY + start_h * HOUR + self.rng.integers(0, span_h * HOUR, size=len(day))
        end = begin + self.rng.integers(dur_lo, dur_hi + 1, size=len(day))
        return begin, end

    def therapy_groups(self, diag: np.ndarray, child: np.ndarray):
        """Yield (therapy, child flag, positions) for each group present."""
        t = self.therapy_of_row[diag]
        key = t * 2 + child
        order = np.argsort(key, kind="stable")
        ks = key[order]
        bounds = np.flatnonzero(np.diff(ks)) + 1
        for part in np.split(order, bounds):
            if len(part):
                k = key[part[0]]
                yield self._therapies[k // 2], bool(k % 2), part

    def rx_lines(self, enc, picks, days, prd):
        for sel, items in picks:
            d = days[sel] if np.ndim(days) else days
            pr = prd[sel] if np.ndim(prd) else prd
            self.lines.add(enc[sel], items, self.qty(items, d, 1), pr)

    # --- settings -------------------------------------------------------------
    def outpatient(self):
        p, rng = self.p, self.rng
        lam = OUTPATIENT_RATE[band(p.age)] * np.where(p.employee, EMPLOYEE_OUTPATIENT_FACTOR, 1.0)
        person = np.repeat(np.arange(p.n), rng.poisson(lam))
        m = len(person)
        diag = self.sample_diag("outpatient", person)
        level = rng.choice(4, size=m, p=OUTPATIENT_LEVEL_P)
        inst = self.cross(self.level_inst(level), CROSS_PROVINCE["outpatient"], level > 0)
        begin, end = self.times(rng.integers(0, self.days, m), 8, 9, 600, 3600)
        doc = self.inst.pick_doctor(rng, inst)
        start = self.enc.add(
            person=person,
            inst=inst,
            mt=MT[C.MED_TYPE_OUTPATIENT],
            begin=begin,
            end=end,
            diag=diag,
            dept=self.dept_of_row[diag],
            oprn=-1,
            dscg=0,
            lt=False,
            doc=doc,
            bilg=doc,
            setting=SETTING_OUTPATIENT,
        )
        enc = start + np.arange(m)
        lv = np.where(self.inst.is_primary[inst], 0, self.inst.level[inst])
        for consult_level, consult in F.OUTPATIENT_CONSULT.items():
            sel = np.flatnonzero(lv == consult_level)
            if len(sel):
                item = self.choose(consult, len(sel))
                self.lines.add(enc[sel], item, self.qty(item, 1, 1))
        days = rng.integers(3, 8, size=m)
        child = p.age[person] < 12
        volume = rng.lognormal(
            OUTPATIENT_VOLUME_MU[lv], OUTPATIENT_VOLUME_SIGMA
        )  # boxes prescribed rise with the level
        for th, ch, part in self.therapy_groups(diag, child):
            drugs = th.child_drugs if ch and th.child_drugs else th.drugs
            for sel, items in self.pick_distinct(len(part), drugs, th.n_drugs):
                d = days[part][sel]
                q = self.qty(items, d, 1)
                q = np.where(
                    self.c.is_herbal[items],
                    q,
                    np.maximum(np.rint(q * volume[part][sel] / 1000), 1).astype(np.int64) * 1000,
                )
                self.lines.add(enc[part][sel], items, q, d)
            for sel, items in self.pick_distinct(len(part), th.tests, th.n_tests):
                self.lines.add(enc[part][sel], items, self.qty(items, 1, 1))
            self.slots(enc[part], th.extras, days[part], 1)
        img = np.flatnonzero(rng.random(m) < OUTPATIENT_IMAGING_P[lv])
        if len(img):
            item = self.choose(F.OUTPATIENT_IMAGING, len(img))
            self.lines.add(enc[img], item, self.qty(item, 1, 1))
        well = np.flatnonzero((rng.random(m) < WELLNESS_P) & (lv >= 2))
        if len(well):
            item = self.choose(F.WELLNESS_SERVICES, len(well))
            self.lines.add(enc[well], item, self.qty(item, 1, 1))

    def pharmacy(self):
        p, rng = self.p, self.rng
        rate = np.where(
            p.age < 18,
            PHARMACY_RATE["child"],
            np.where(
                p.retired,
                PHARMACY_RATE["retired"],
                np.where(p.employee, PHARMACY_RATE["in_service"], PHARMACY_RATE["resident"]),
            ),
        )
        person = np.repeat(np.arange(p.n), rng.poisson(rate))
        m = len(person)
        diag = self.sample_diag("outpatient", person)
        # chronic patients often refill at a pharmacy on their prescription
        chronic_row = np.where(self.htn[person] >= 0, self.htn[person], self.dm[person])
        refill = (chronic_row >= 0) & (rng.random(m) < 0.5)
        diag = np.where(refill, chronic_row, diag)
        rx = refill | (rng.random(m) < PHARMACY_RX_SHARE)
        inst = self.inst.pick(rng, "pharmacy", m)
        begin, end = self.times(rng.integers(0, self.days, m), 9, 12, 60, 900)
        hosp = self.inst.pick(rng, "L2", m)
        rx_doc = np.where(rx, self.inst.pick_doctor(rng, hosp), -1)
        start = self.enc.add(
            person=person,
            inst=inst,
            mt=MT[C.MED_TYPE_PHARMACY],
            begin=begin,
            end=end,
            diag=diag,
            dept=self.dept_of_row[diag],
            oprn=-1,
            dscg=0,
            lt=False,
            doc=-1,
            bilg=rx_doc,
            setting=SETTING_PHARMACY,
            rx=rx,
        )
        enc = start + np.arange(m)
        days = np.where(refill, 28, rng.integers(3, 8, size=m))
        child = p.age[person] < 12
        for th, ch, part in self.therapy_groups(diag, child):
            drugs = self.pharmacy_pool(th.child_drugs if ch and th.child_drugs else th.drugs)
            prd = np.where(rx[part], days[part], 0)
            self.rx_lines(enc[part], self.pick_distinct(len(part), drugs, (1, 3)), days[part], prd)
        extra = np.flatnonzero(rng.random(m) < PHARMACY_EXTRA_P)
        if len(extra):
            item = self.choose(F.PHARMACY_EXTRAS, len(extra))
            self.lines.add(enc[extra], item, rng.integers(1, 3, size=len(extra)) * 1000)

    def pharmacy_pool(self, p):
        key = ("pharmacy", id(p))
        if key not in self._pools:
            c = self.c
            keep = tuple(
                (code, w)
                for code, w in p
                if "注射" not in c.name[c.idx(code)]
                and c.med_type_mask[c.idx(code)] == 0
                and c.lmt_hosp_lv_min[c.idx(code)] == 0
                and c.drug_class[c.idx(code)] not in F.PHARMACY_DRUG_CLASSES_BARRED
            )
            self._pools[key] = keep or F.pool("XV99AHS003Z999080300000")
        return self._pools[key]

    def chronic(self):
        p, rng = self.p, self.rng
        mix = self.mix
        rows = mix.rows("chronic")
        htn_rows = rows[[c.startswith("I1") for c in mix.code[rows]]]
        dm_rows = rows[[c.startswith("E1") for c in mix.code[rows]]]
        b = band(p.age)
        for rows_c, prob, store in ((htn_rows, HTN_P, self.htn), (dm_rows, DM_P, self.dm)):
            pat = np.flatnonzero(rng.random(p.n) < prob[b])
            pat = pat[self.eligible("chronic", pat, rows_c)]
            if not len(pat):
                continue
            store[pat] = self.sample_diag("chronic", pat, rows_c)
        for store in (self.htn, self.dm):
            pat = np.flatnonzero(store >= 0)
            if not len(pat):
                continue
            diag_p = store[pat]
            prd_p = rng.choice(CHRONIC_PERIODS, size=len(pat), p=CHRONIC_PERIOD_P)
            s = (rng.random(len(pat)) * prd_p).astype(np.int64)
            cnt = (self.days - 1 - s) // prd_p + 1
            lvl_p = rng.choice(4, size=len(pat), p=CHRONIC_LEVEL_P)
            inst_p = self.level_inst(lvl_p)
            doc_p = self.inst.pick_doctor(rng, inst_p)
            confirmed_p = (prd_p <= 28) | (rng.random(len(pat)) >= LT_RX_UNCONFIRMED)
            k = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            ep = np.repeat(np.arange(len(pat)), cnt)
            day = np.clip(s[ep] + k * prd_p[ep] + rng.integers(-2, 3, size=len(ep)), 0, self.days - 1)
            begin, end = self.times(day, 8, 9, 600, 2400)
            diag = diag_p[ep]
            start = self.enc.add(
                person=pat[ep],
                inst=inst_p[ep],
                mt=MT[C.MED_TYPE_CHRONIC],
                begin=begin,
                end=end,
                diag=diag,
                dept=self.dept_of_row[diag],
                oprn=-1,
                dscg=0,
                lt=(prd_p[ep] > 28) & confirmed_p[ep],
                doc=doc_p[ep],
                bilg=doc_p[ep],
                setting=SETTING_CHRONIC,
                lt_flag=(prd_p[ep] > 28) & ~confirmed_p[ep],
            )
            enc = start + np.arange(len(ep))
            lv = np.where(self.inst.is_primary[inst_p[ep]], 0, self.inst.level[inst_p[ep]])
            for consult_level, consult in F.OUTPATIENT_CONSULT.items():
                sel = np.flatnonzero(lv == consult_level)
                if len(sel):
                    item = self.choose(consult, len(sel))
                    self.lines.add(enc[sel], item, self.qty(item, 1, 1))
            # a patient keeps the same drugs all year
            ranks: list[np.ndarray] = []
            for th, _, part in self.therapy_groups(diag_p, np.zeros(len(pat), dtype=np.int64)):
                for r, (sel, items) in enumerate(self.pick_distinct(len(part), th.drugs, th.n_drugs)):
                    while len(ranks) <= r:
                        ranks.append(np.full(len(pat), -1, dtype=np.int64))
                    ranks[r][part[sel]] = items
            for item_p in ranks:
                it_e = item_p[ep]
                e_idx = np.flatnonzero(it_e >= 0)
                it = it_e[e_idx]
                prd = prd_p[ep[e_idx]]
                self.lines.add(enc[e_idx], it, self.qty(it, prd, 1), prd)
            for th, _, part in self.therapy_groups(diag, np.zeros(len(ep), dtype=np.int64)):
                for sel, items in self.pick_distinct(len(part), th.tests, (0, 1)):
                    self.lines.add(enc[part][sel], items, self.qty(items, 1, 1))

    def special(self):
        p, rng = self.p, self.rng
        pat = np.flatnonzero(rng.random(p.n) < SPECIAL_P[band(p.age)])
        pat = pat[self.eligible("special", pat)]
        if not len(pat):
            return
        diag_p = self.sample_diag("special", pat)
        schedules = list(F.SPECIAL.values())
        sched_of_row = np.full(len(self.mix), -1, dtype=np.int64)
        for r in np.unique(diag_p):  # a few distinct diagnoses
            sched_of_row[r] = schedules.index(F.schedule_for(self.mix.therapy[r]))
        sid = sched_of_row[diag_p]
        for si in np.unique(sid):
            sc = schedules[si]
            pp = pat[sid == si]
            dp = diag_p[sid == si]
            m = len(pp)
            cnt = rng.integers(sc.count[0], sc.count[1] + 1, size=m)
            latest = np.maximum(self.days - 1 - sc.span_days - (cnt - 1) * sc.period, 0)  # last possible first day
            s = (rng.random(m) * (latest + 1)).astype(np.int64)
            level = rng.choice(4, size=m, p=(0.0, *sc.levels))
            inst_p = self.level_inst(level)
            if sc.kind in ("chemo", "radiotherapy"):
                inst_p = self.cross(inst_p, CROSS_PROVINCE["special"])
            doc_p = self.inst.pick_doctor(rng, inst_p)
            k = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            ep = np.repeat(np.arange(m), cnt)
            day = np.minimum(s[ep] + k * sc.period, self.days - 1 - sc.span_days)
            if sc.span_days:
                begin, _ = self.times(day, 7, 2, 0, 0)
                end = begin + sc.span_days * DAY + rng.integers(4 * HOUR, 6 * HOUR, size=len(ep))
            elif sc.kind in ("chemo",):
                begin, end = self.times(day, 8, 2, 4 * HOUR, 8 * HOUR)
            else:
                begin, end = self.times(day, 8, 9, 600, 2400)
            home = any(sc.regimens)
            lt = np.full(len(ep), bool(home and sc.period > 28))
            oprn = self.oprn_index(national_procedure(sc.oprn_codg)) if sc.oprn_codg else -1
            dept = self.depts.index(sc.dept)
            start = self.enc.add(
                person=pp[ep],
                inst=inst_p[ep],
                mt=MT[C.MED_TYPE_CHRONIC],
                begin=begin,
                end=end,
                diag=dp[ep],
                dept=dept,
                oprn=oprn,
                dscg=0,
                lt=lt,
                doc=doc_p[ep],
                bilg=doc_p[ep],
                setting=SETTING_SPECIAL,
            )
            enc = start + np.arange(len(ep))
            sessions = rng.integers(sc.sessions[0], sc.sessions[1] + 1, size=len(ep))
            days = np.full(len(ep), sc.span_days + 1 if sc.span_days else sc.period)
            if sc.consult:
                self.lines.add(enc, self.c.idx("990100000010000"), 1000)
            self.slots(enc, sc.fixed, days, sessions)
            for regs, take_home in ((sc.clinic_regimens, False), (sc.regimens, True)):
                if not regs:
                    continue
                reg_p = rng.integers(0, len(regs), size=m)
                for ri, reg in enumerate(regs):
                    e_idx = np.flatnonzero(reg_p[ep] == ri)
                    for code, _ in reg:
                        it = np.full(len(e_idx), self.c.idx(code))
                        if take_home:
                            self.lines.add(enc[e_idx], it, self.qty(it, sc.period, 1), sc.period)
                        else:
                            self.lines.add(enc[e_idx], it, self.qty(it, days[e_idx], sessions[e_idx], "once"))
            for sel, items in self.pick_distinct(len(ep), sc.tests, sc.n_tests):
                self.lines.add(enc[sel], items, self.qty(items, 1, 1))

    def inpatient(self):
        p, rng = self.p, self.rng
        person = np.repeat(np.arange(p.n), rng.poisson(INPATIENT_RATE[band(p.age)]))
        m = len(person)
        if not m:
            return
        diag = self.sample_diag("inpatient", person)
        tids = self.therapy_of_row[diag]
        los_med = np.array([th.los for th in self._therapies])[tids]
        min_lv = np.array([th.min_level for th in self._therapies])[tids]
        los = np.clip(np.rint(rng.lognormal(np.log(los_med), 0.35)), 3, 15).astype(np.int64)
        level = np.maximum(rng.choice(3, size=m, p=INPATIENT_LEVEL_P) + 1, min_lv)
        inst = self.cross(self.level_inst(level), CROSS_PROVINCE["inpatient"])
        level = self.inst.level[inst]
        day = (rng.random(m) * (self.days - los)).astype(np.int64)
        # a newborn's condition (a P-chapter row) is treated in its first weeks: admitted 1-21 days after a birth
        # this year
        nb = np.flatnonzero(self.newborn_row[diag])
        if len(nb):
            born_day = self.p.brdy[person[nb]] - (self.t0 + 8 * HOUR) // DAY
            early = np.clip(born_day + rng.integers(1, 22, size=len(nb)), 0, self.days - los[nb])
            day[nb] = np.where(born_day >= 0, early, day[nb])
        begin = self.t0 + day * DAY + 8 * HOUR + rng.integers(0, 14 * HOUR, size=m)
        end = self.t0 + (day + los) * DAY + 9 * HOUR + rng.integers(0, 3 * HOUR, size=m)
        doc = self.inst.pick_doctor(rng, inst)
        dscg = rng.choice(5, size=m, p=DSCG_P) + 1
        oprn = np.full(m, -1, dtype=np.int64)
        start = self.enc.add(
            person=person,
            inst=inst,
            mt=MT[C.MED_TYPE_INPATIENT],
            begin=begin,
            end=end,
            diag=diag,
            dept=self.dept_of_row[diag],
            oprn=oprn,
            dscg=dscg,
            lt=False,
            doc=doc,
            bilg=doc,
            setting=SETTING_INPATIENT,
        )
        enc = start + np.arange(m)
        self.slots(enc, F.INPATIENT_BASE, los, 1)
        iv_days = np.maximum(los - rng.integers(0, 3, size=m), 1)
        self.slots(enc, F.INPATIENT_IV, iv_days, 1)
        child = p.age[person] < 12
        # more severe cases and more treatment at higher levels: costs are log-normal and rise with the level
        intensity = rng.lognormal(INTENSITY_MU[level], INTENSITY_SIGMA)
        for th, ch, part in self.therapy_groups(diag, child):
            e = enc[part]
            self._inpatient_drugs(th, ch, part, e, level, los, intensity)
            self._inpatient_tests(th, part, e, level, los, intensity)
            self.slots(e, th.ip_extras, los[part], 1)
            if th.procs and th.p_proc > 0:
                self._inpatient_procedures(th, part, e, level, diag, oprn)
        self._apply_procedure_mix(enc, diag, level, oprn)
        self.enc.cols["oprn"][-1] = oprn

    def _inpatient_drugs(self, th, ch, part, e, level, los, intensity) -> None:
        """The drug lines of one therapy group's stays (level 3 uses a few more drugs; doses scale with intensity)."""
        rng = self.rng
        drugs = th.ip_child_drugs if ch and th.ip_child_drugs else (th.ip_drugs or th.drugs)
        top = level[part] == 3
        for sel, items in self.pick_distinct(len(part), drugs, (th.n_ip_drugs[0], th.n_ip_drugs[1] + 1)):
            keep = top[sel] | (self.rng.random(len(sel)) < 0.75)  # level 3 uses a few more drugs
            sel, items = sel[keep], items[keep]
            d = np.maximum(np.rint(los[part][sel] * rng.uniform(IP_DRUG_DAYS[0], IP_DRUG_DAYS[1], len(sel))), 1).astype(
                np.int64
            )
            q = self.qty(items, d, 1)
            q = np.where(
                self.c.is_herbal[items],
                q,
                np.maximum(np.ceil(q * intensity[part][sel] / 1000), 1).astype(np.int64) * 1000,
            )
            self.lines.add(e[sel], items, q)

    def _inpatient_tests(self, th, part, e, level, los, intensity) -> None:
        """The test lines of one therapy group's stays, repeated more often in longer and more intensive stays."""
        top = level[part] == 3
        tests = th.ip_tests or th.tests
        for sel, items in self.pick_distinct(len(part), tests, (th.n_ip_tests[0], th.n_ip_tests[1] + 1)):
            keep = top[sel] | (self.rng.random(len(sel)) < 0.6)
            sel = sel[keep]
            # tests are repeated during the stay, more often in longer and more intensive stays
            repeats = np.maximum(np.rint(intensity[part][sel] * los[part][sel] / TEST_REPEAT_DAYS), 1).astype(np.int64)
            self.lines.add(e[sel], items[keep], self.qty(items[keep], 1, 1) * repeats)

    def _inpatient_procedures(self, th, part, e, level, diag, oprn) -> None:
        """The therapy's procedures for a share of its stays (where the level allows); sets ``oprn``."""
        rng = self.rng
        lvp = level[part]
        # the procedure mix decides for its rows
        do = (rng.random(len(part)) < th.p_proc) & ~self.has_proc_mix[diag[part]]
        w = np.array([[pr.w if pr.min_level <= lv else 0.0 for pr in th.procs] for lv in (1, 2, 3)])
        u = rng.random(len(part))
        for lv in (1, 2, 3):
            ww = w[lv - 1]
            if ww.sum() == 0:
                continue
            cw = np.cumsum(ww) / ww.sum()
            sel = np.flatnonzero(do & (lvp == lv))
            which = np.searchsorted(cw, u[sel], side="right").clip(0, len(th.procs) - 1)
            for j, pr in enumerate(th.procs):
                s2 = sel[which == j]
                if not len(s2):
                    continue
                oprn[part[s2]] = self.oprn_index(national_procedure(pr.oprn_codg, pr.items[0][0] if pr.items else ""))
                for code, units in pr.items:
                    self.lines.add(e[s2], self.c.idx(code), units * 1000)

    def _apply_procedure_mix(self, enc, diag, level, oprn) -> None:
        """The procedure mix: for its diagnoses, a share of the cases get each principal procedure (where the level
        allows); sets ``oprn``."""
        for r, options in sorted(self.proc_mix.items()):
            sel = np.flatnonzero(diag == r)
            if not len(sel):
                continue
            u = self.rng.random(len(sel))
            lo = 0.0
            for op, share, lv, item in options:
                s2 = sel[(u >= lo) & (u < lo + share) & (level[sel] >= lv)]
                lo += share
                if not len(s2):
                    continue
                oprn[s2] = self.oprn_index(op)
                if item:
                    self.lines.add(enc[s2], self.c.idx(item), 1000)

    def home_bed(self):
        p, rng = self.p, self.rng
        pat = np.flatnonzero(rng.random(p.n) < HOME_BED_P[band(p.age)])
        pat = pat[self.eligible("home_bed", pat)]
        m = len(pat)
        if not m:
            return
        diag = self.sample_diag("home_bed", pat)
        level = rng.choice(4, size=m, p=HOME_BED_LEVEL_P)
        inst = self.level_inst(level)
        doc = self.inst.pick_doctor(rng, inst)
        day = (rng.random(m) * (self.days - HOME_BED_DAYS)).astype(np.int64)
        begin, _ = self.times(day, 9, 2, 0, 0)
        end = begin + (HOME_BED_DAYS - 1) * DAY + rng.integers(1 * HOUR, 6 * HOUR, size=m)
        start = self.enc.add(
            person=pat,
            inst=inst,
            mt=MT[C.MED_TYPE_HOME_BED],
            begin=begin,
            end=end,
            diag=diag,
            dept=self.dept_of_row[diag],
            oprn=-1,
            dscg=0,
            lt=False,
            doc=doc,
            bilg=doc,
            setting=SETTING_HOME_BED,
        )
        enc = start + np.arange(m)
        c = self.c
        self.lines.add(enc, c.idx("991000000010000"), 1000, 0, 0)  # bed set-up fee, once (seed 000: ¥50)
        for k in range(HOME_BED_DAYS // HOME_BED_VISIT_EVERY + 1):
            t = k * HOME_BED_VISIT_EVERY * DAY + HOUR
            if t >= HOME_BED_DAYS * DAY - DAY:
                break
            self.lines.add(enc, c.idx("991000000020000"), 1000, 0, t)  # round visit (seed 000: ¥25 each)
            nurse = np.flatnonzero(rng.random(m) < 0.5)
            self.lines.add(enc[nurse], c.idx("991000000030000"), 1000, 0, t + 1800)
        picks = []
        for th, _, part in self.therapy_groups(diag, np.zeros(m, dtype=np.int64)):
            for sel, items in self.pick_distinct(len(part), self.home_pool(th.drugs), (1, 3)):
                picks.append((part[sel], items))
        for k in range(HOME_BED_DAYS // HOME_BED_REFILL_EVERY + 1):
            t = k * HOME_BED_REFILL_EVERY * DAY + HOUR + 600
            if t >= HOME_BED_DAYS * DAY - DAY:
                break
            for rows, items in picks:
                self.lines.add(enc[rows], items, self.qty(items, HOME_BED_REFILL_EVERY, 1), HOME_BED_REFILL_EVERY, t)
            lab = np.flatnonzero(rng.random(m) < 0.3)
            self.lines.add(enc[lab], c.idx("990400000010000"), 1000, 0, t)

    def home_pool(self, p):
        key = ("home", id(p))
        if key not in self._pools:
            barred = {
                "toxic",
                "radioactive",
                "precursor",
                "narcotic",
                "psychotropic_1",
                "psychotropic_2",
                "antimicrobial",
                "special_storage",
            }
            keep = tuple((code, w) for code, w in p if self.c.drug_class[self.c.idx(code)] not in barred)
            self._pools[key] = keep or F.pool("XV99AHS003Z999080300000")
        return self._pools[key]


def _age_at(brdy_ymd: np.ndarray, t: np.ndarray, t0: int, year: int) -> np.ndarray:
    """Completed years on the local date of epoch seconds ``t`` (all within ``year``)."""
    first = np.datetime64(f"{year}-01-01", "D")
    table = ymd_numbers(np.arange(367) + (first - np.datetime64("1970-01-01", "D")).astype(np.int64))
    day = np.clip((t - t0) // DAY, 0, 366)
    return (table[day] - brdy_ymd) // 10_000


def generate_encounters(
    rng: np.random.Generator,
    cat_: SynthCatalog,
    inst: Institutions,
    people: PeopleChunk,
    *,
    year: int,
    region: str,
    chunk_index: int,
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(encounter, fee_detail, ground_truth) tables for one chunk of people."""
    g = Region(rng, cat_, inst, people, year)
    g.chronic()  # first: the chronic conditions also shape pharmacy refills and other diagnoses
    g.outpatient()
    g.pharmacy()
    g.special()
    g.inpatient()
    g.home_bed()
    e = g.enc.get()
    l_enc, l_item, l_cnt, l_prd, l_toff = g.lines.get()
    c = cat_
    n_enc = len(e["person"])

    # other diagnoses: the person's registered chronic conditions other than the principal one (mix rows)
    code_id = g.code_id
    principal = code_id[e["diag"]]
    for key, rows in (("other_a", g.htn[e["person"]]), ("other_b", g.dm[e["person"]])):
        e[key] = np.where(
            (rows >= 0) & (code_id[np.maximum(rows, 0)] != principal) & (e["setting"] != SETTING_PHARMACY), rows, -1
        )

    # --- restrictions (限定支付范围): most out-of-scope lines are not billed; a few are kept and labelled
    age_enc = _age_at(ymd_numbers(people.brdy)[e["person"]], e["end"], g.t0, year)
    r = np.flatnonzero(c.restricted[l_item])  # only lines of restricted items need checking
    ri = l_item[r]
    re_ = l_enc[r]
    age = age_enc[re_]
    gend = np.where(people.male[e["person"][re_]], 1, 2)
    bad_gend = (c.lmt_gend[ri] > 0) & (c.lmt_gend[ri] != gend)
    bad_age = ((c.lmt_age_min[ri] >= 0) & (age < c.lmt_age_min[ri])) | (
        (c.lmt_age_max[ri] >= 0) & (age > c.lmt_age_max[ri])
    )
    bad_lv = c.lmt_hosp_lv_min[ri] > inst.level[e["inst"][re_]]
    bad_ind = ~c.ind_ok[e["diag"][re_], ri]
    for key in ("other_a", "other_b"):  # any diagnosis of the encounter may satisfy an indication
        o = e[key][re_]
        bad_ind &= ~((o >= 0) & c.ind_ok[np.maximum(o, 0), ri])
    mask = c.med_type_mask[ri]
    bad_mt = (mask != 0) & ((mask >> e["mt"][re_]) & 1 == 0)
    bad_r = bad_gend | bad_age | bad_lv | bad_ind | bad_mt
    reason_all = np.zeros(len(l_item), dtype=np.int8)
    reason_all[r] = np.select([bad_gend, bad_age, bad_lv, bad_ind, bad_mt], [1, 2, 3, 4, 5], 0)
    keep = np.ones(len(l_item), dtype=bool)
    drop_r = bad_r & (rng.random(len(r)) >= KEEP_VIOLATION)
    keep[r[drop_r]] = False
    keep_bad = np.zeros(len(l_item), dtype=bool)
    keep_bad[r[bad_r & ~drop_r]] = True

    # --- nobody is treated before birth (babies born this year) or after death (discharge way 5):
    # such encounters lose their lines here and are dropped below with the other empty ones
    born = people.brdy[e["person"]] * DAY - 8 * HOUR + DAY  # local midnight after the birth day, epoch seconds
    died = e["dscg"] == DSCG_WAYS.index("5")
    death = np.full(people.n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(death, e["person"][died], e["end"][died])
    d_p = death[e["person"]]
    impossible = (e["begin"] < born) | (e["begin"] >= d_p) | (died & (e["end"] > d_p))
    if impossible.any():
        keep &= ~impossible[l_enc]

    # --- order lines by encounter (stable: the order of generation within an encounter)
    order = g.lines.order(n_enc)
    order = order[keep[order]]
    l_enc, l_item, l_cnt, l_prd, l_toff = l_enc[order], l_item[order], l_cnt[order], l_prd[order], l_toff[order]
    keep_bad = keep_bad[order]
    reason = reason_all[order]
    del order, keep, reason_all, r, ri, re_, age, gend, bad_gend, bad_age, bad_lv, bad_ind, bad_mt, bad_r, drop_r
    g.lines.parts.clear()

    # drop encounters left without lines; renumber
    n_lines = np.bincount(l_enc, minlength=n_enc)
    alive = n_lines > 0
    new_id = np.cumsum(alive) - 1
    e = {k: v[alive] for k, v in e.items()}
    age_enc = age_enc[alive]
    l_enc = new_id[l_enc]
    del new_id
    n_lines = n_lines[alive]
    n_enc = int(alive.sum())
    first = np.cumsum(n_lines) - n_lines
    sn = np.arange(len(l_enc)) - first[l_enc] + 1

    # --- prices (synthetic): services by level, drugs/consumables by institution; caps and VBP standards
    inst_l = e["inst"][l_enc]
    lvl = inst.level[inst_l]
    ref = c.ref_fen[l_item].astype(np.float64)
    svc_factor = np.where(inst.is_primary[inst_l], 0.85, SERVICE_LEVEL_FACTOR[lvl])
    price = np.where(c.is_service[l_item], ref * svc_factor, ref * inst.price_factor[inst_l])
    vbp = np.flatnonzero(c.vbp[l_item])
    std = c.vbp_std[l_item[vbp]].astype(np.float64)
    nonselected = rng.random(len(vbp)) >= VBP_SELECTED_P  # a non-selected brand, above the payment standard
    price[vbp] = np.where(nonselected, std * rng.uniform(1.5, 3.0, len(vbp)), std)
    pric = np.maximum(np.rint(price).astype(np.int64), 1)
    cap = c.pric_uplmt[l_item]
    capped = np.flatnonzero(cap > 0)
    cap_c, pric_c = cap[capped], pric[capped]
    u = rng.random(len(capped))
    pric_c = np.where((pric_c > cap_c) & (u >= OVER_CAP_KEEP), cap_c, pric_c)  # most lines respect the cap
    extra = u >= 1 - OVER_CAP_EXTRA  # a few lines above the cap exercise over-limit self-pay
    pric_c = np.where(extra, np.rint(cap_c * rng.uniform(1.05, 1.3, len(capped))).astype(np.int64), pric_c)
    pric[capped] = pric_c
    del ref, svc_factor, price, vbp, std, cap, capped, cap_c, pric_c, u, extra
    amount = (l_cnt * pric + 500) // 1000  # round half up to the fen: exact integer arithmetic

    # --- times
    begin_l = e["begin"][l_enc]
    dur = e["end"][l_enc] - begin_l
    toff = np.where(l_toff >= 0, np.minimum(l_toff, dur), (rng.random(len(l_enc)) * (dur + 1)).astype(np.int64))
    fee_time = begin_l + toff
    del begin_l, dur, toff, l_toff

    # --- identifiers
    seq = chunk_index * 10**8 + np.arange(n_enc, dtype=np.int64)
    yy = f"{year % 100:02d}"
    mdtrt_fs = FixedStrings.digits(f"M{region}{yy}", seq, 11)
    mdtrt = mdtrt_fs.array()
    psn_mdtrt = people.psn_fs.take(e["person"])
    setting = e["setting"]

    # mutual aid (共济): a resident's encounter paid from an employee relative's account
    payer = people.payer[e["person"]]
    mulaid = (
        (payer >= 0)
        & np.isin(setting, [SETTING_OUTPATIENT, SETTING_PHARMACY, SETTING_CHRONIC, SETTING_INPATIENT])
        & (rng.random(n_enc) < MULAID_P)
    )
    mulaid_psn = people.psn_fs.take(payer, mulaid)

    code_id = g.code_id
    K = int(code_id.max()) + 2
    a = np.where(e["other_a"] >= 0, code_id[np.maximum(e["other_a"], 0)], -1)
    b = np.where(e["other_b"] >= 0, code_id[np.maximum(e["other_b"], 0)], -1)
    combo = (a + 1) * K + (b + 1)
    present = np.zeros(K * K, dtype=bool)
    present[combo] = True
    uniq = np.flatnonzero(present)
    rank = np.cumsum(present) - 1
    inv = rank[combo]
    codes_u = np.unique(g.mix.code)
    strings = []
    for pair in uniq:
        x, y = int(pair // K) - 1, int(pair % K) - 1
        strings.append(";".join(codes_u[v] for v in (x, y) if v >= 0))
    # the row's own secondary diagnoses (e.g. a second injury of a multiple trauma) follow the registered ones
    fixed, fixed_of_row = np.unique(g.mix.other, return_inverse=True)
    f = fixed_of_row[e["diag"]]
    if len(fixed) > 1:
        F_ = len(fixed)
        key2 = inv * F_ + f
        present2 = np.zeros(len(strings) * F_, dtype=bool)
        present2[key2] = True
        uniq2 = np.flatnonzero(present2)
        inv = (np.cumsum(present2) - 1)[key2]
        strings = [";".join(x for x in (strings[u // F_], fixed[u % F_]) if x) for u in uniq2]
    other = cat(strings, inv)

    enc_table = pa.Table.from_arrays(
        [
            mdtrt,
            psn_mdtrt,
            inst.code.take(pa.array(e["inst"])),
            cat(list(MED_TYPES), e["mt"]),
            ts(e["begin"]),
            ts(e["end"]),
            pa.array(np.full(n_enc, year, dtype=np.int16)),
            cat(list(g.mix.code), e["diag"]),
            other,
            cat_or_empty(pa.array(g.oprns, type=pa.string()), e["oprn"]),
            cat(list(DSCG_WAYS), e["dscg"]),
            cat(g.depts, e["dept"]),
            inst.doc_fs.take(e["doc"], e["doc"] >= 0),
            inst.admdvs.take(pa.array(e["inst"])),
            mulaid_psn,
            pa.array(e["lt"].astype(bool)),
            const_bool(True, n_enc),
        ],
        schema=C.ENCOUNTER,
    )

    is_drug = c.is_drug[l_item]
    pharm = setting[l_enc] == SETTING_PHARMACY
    rx_enc = e["rx"].astype(bool)
    has_rx = is_drug & (~pharm | rx_enc[l_enc])
    circ = is_drug & pharm & rx_enc[l_enc]
    rxno = mdtrt_fs.take(l_enc, has_rx, first=b"R")  # one prescription number per encounter
    bilg_doc = e["bilg"][l_enc]
    bilg = inst.doc_fs.take(bilg_doc, (~pharm | has_rx) & (bilg_doc >= 0))
    fee_table = pa.Table.from_arrays(
        [
            mdtrt_fs.take(l_enc),
            pa.array(sn.astype(np.int32)),
            c.codes_arrow.take(pa.array(l_item)),
            pa.array(l_cnt, type=pa.int64()),
            pa.array(pric, type=pa.int64()),
            pa.array(amount, type=pa.int64()),
            ts(fee_time),
            rxno,
            pa.array(circ),
            pa.array(np.where(has_rx, l_prd, 0).astype(np.int16)),
            bilg,
            const_bool(True, len(l_enc)),
        ],
        schema=C.FEE_DETAIL,
    )

    # --- ground truth for what the generator itself leaves in the data
    gt_rows = np.flatnonzero(keep_bad)
    reasons = np.array(["", "gend", "age", "hosp_lv", "indication", "med_type"], dtype=object)
    gt_fee = pa.table(
        {
            "entity": const_str("fee_detail", len(gt_rows)),
            "entity_id": pc.binary_join_element_wise(
                mdtrt.take(pa.array(l_enc[gt_rows])), digits("", sn[gt_rows], 6), "#"
            ),
            "pattern": const_str("restricted_scope", len(gt_rows)),
            "detail": cat(list(reasons), reason[gt_rows]),
        },
        schema=C.GROUND_TRUTH,
    )
    lt_rows = np.flatnonzero(e["lt_flag"])
    gt_lt = pa.table(
        {
            "entity": const_str("encounter", len(lt_rows)),
            "entity_id": mdtrt.take(pa.array(lt_rows)),
            "pattern": const_str("long_rx_unconfirmed", len(lt_rows)),
            "detail": const_str("prescription over 28 days without the patient's confirmation", len(lt_rows)),
        },
        schema=C.GROUND_TRUTH,
    )
    return enc_table, fee_table, pa.concat_tables([gt_fee, gt_lt])
