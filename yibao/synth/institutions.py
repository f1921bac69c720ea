"""Synthetic designated institutions (定点医药机构) of the region, plus a few
out-of-province hospitals for cross-province care, and their practitioners
(医保医师 / 护士 / 药师).

Counts scale with the population (ILLUSTRATIVE ratios): one level-3 hospital
per 100,000 people, a level-2 per 30,000, a level-1 per 10,000, a primary
centre per 5,000 and a retail pharmacy per 2,000; doctors, nurses and
pharmacists per institution as in :data:`GROUPS` (ILLUSTRATIVE).

Codes have the national structures (``yibao/data/codes/README.md``) and are
SYNTHETIC: institutions ``H``/``P`` + the institution's division + a 5-digit
sequence (``H99010100001``; the home region's "99" is no real province),
practitioners ``D`` (医师) / ``N`` (护士) / ``Y`` (药师, pharmacies) / ``HY``
(药学人员, hospitals) + the institution's division + a 6-digit sequence counted
per city.  Hospitals at real places of treatment get sequences from 99001
(institutions) and 990001 (practitioners) and "(synthetic)" in their names;
every row has ``synthetic = true``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from yibao.codes import Divisions
from yibao.core import contract as C
from yibao.synth._arrow import FixedStrings, const_bool

# (group, fixmedins_type, hosp_lv, people per institution, minimum, doctors each)
GROUPS = (
    ("L3", "hospital", 3, 100_000, 1, 150),
    ("L2", "hospital", 2, 30_000, 2, 60),
    ("L1", "hospital", 1, 10_000, 3, 15),
    ("primary", "primary", 1, 5_000, 3, 6),
    ("pharmacy", "pharmacy", 0, 2_000, 5, 0),
)
# other practitioners per institution (ILLUSTRATIVE): (nurses, pharmacists)
STAFF = {"L3": (180, 12), "L2": (70, 6), "L1": (18, 2), "primary": (6, 1), "pharmacy": (0, 2), "remote": (180, 12)}
REMOTE_PER_PLACE = 2
REMOTE_DOCTORS = 150
REMOTE_INST_SERIAL = 99_001  # first sequence of the synthetic hospitals at real places of treatment
REMOTE_PRAC_SERIAL = 990_001
NAME = {
    "L3": "合成市第{n}人民医院(三级)",
    "L2": "合成市第{n}医院(二级)",
    "L1": "合成区第{n}医院(一级)",
    "primary": "合成社区卫生服务中心{n}",
    "pharmacy": "合成大药房{n}号店",
}


@dataclass
class Institutions:
    table: pa.Table
    code: pa.Array
    level: np.ndarray  # 0 pharmacy / 1 / 2 / 3
    is_primary: np.ndarray
    admdvs: pa.Array
    price_factor: np.ndarray  # per-institution drug/consumable price factor
    doc_offset: np.ndarray
    n_doc: np.ndarray
    doc_fs: FixedStrings  # every doctor's code; institution i has doc_offset[i] .. + n_doc[i]
    practitioners: pa.Table  # contract PRACTITIONER: the doctors (in doc_fs order), then nurses and pharmacists
    groups: dict[str, tuple[np.ndarray, np.ndarray]]  # group → (institution indices, cumulative weights)
    remote: dict[str, tuple[np.ndarray, np.ndarray]]  # treatment place → (indices, cum weights)

    def pick(self, rng: np.random.Generator, group: str, n: int) -> np.ndarray:
        idx, cw = self.groups[group]
        return idx[np.searchsorted(cw, rng.random(n) * cw[-1], side="right").clip(0, len(idx) - 1)]

    def pick_remote(self, rng: np.random.Generator, n: int) -> np.ndarray:
        places = sorted(self.remote)
        which = rng.integers(0, len(places), n)
        out = np.empty(n, dtype=np.int64)
        for k, place in enumerate(places):
            sel = which == k
            idx, cw = self.remote[place]
            out[sel] = idx[np.searchsorted(cw, rng.random(sel.sum()) * cw[-1], side="right").clip(0, len(idx) - 1)]
        return out

    def pick_doctor(self, rng: np.random.Generator, inst: np.ndarray) -> np.ndarray:
        """A doctor of each institution (global doctor index), -1 for pharmacies."""
        nd = self.n_doc[inst]
        d = self.doc_offset[inst] + (rng.random(len(inst)) * np.maximum(nd, 1)).astype(np.int64)
        return np.where(nd > 0, d, -1)


def generate_institutions(rng: np.random.Generator, people: int, region: str, divisions: Divisions) -> Institutions:
    districts = divisions.districts(region)
    codes, names, types, levels, admdvs, groups_of, ndoc = [], [], [], [], [], [], []
    serial: dict[tuple[str, str], int] = {}  # (letter, city) → last sequence: 定点医药机构顺序码
    for group, typ, lv, per, minimum, docs in GROUPS:
        count = max(minimum, round(people / per))
        for k in range(count):
            prefix = "P" if typ == "pharmacy" else "H"
            dv = districts[int(rng.integers(0, len(districts)))]
            n = serial[(prefix, dv[:4])] = serial.get((prefix, dv[:4]), 0) + 1
            codes.append(f"{prefix}{dv}{n:05d}")
            names.append(NAME[group].format(n=k + 1) + "(synthetic)")
            types.append(typ)
            levels.append(lv)
            admdvs.append(dv)
            groups_of.append(group)
            ndoc.append(docs)
    for place in divisions.treatment_places():
        for k in range(REMOTE_PER_PLACE):
            codes.append(f"H{place}{REMOTE_INST_SERIAL + k:05d}")
            names.append(f"{divisions.name_of(place)}合成医院{k + 1}(synthetic)")
            types.append("hospital")
            levels.append(3)
            admdvs.append(place)
            groups_of.append("remote:" + place)
            ndoc.append(REMOTE_DOCTORS)
    n = len(codes)
    level = np.array(levels, dtype=np.int64)
    ndoc_a = np.array(ndoc, dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(ndoc_a)[:-1]])
    size = rng.lognormal(0.0, 0.5, n)  # patient volume differs between institutions
    groups_a = np.array(groups_of, dtype=object)
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    remote: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for g in dict.fromkeys(groups_of):
        idx = np.flatnonzero(groups_a == g)
        entry = (idx, np.cumsum(size[idx]))
        if g.startswith("remote:"):
            remote[g.split(":", 1)[1]] = entry
        else:
            groups[g] = entry
    code_arr = pa.array(codes, type=pa.string())
    practitioners, doc_codes = _practitioners(codes, admdvs, groups_of, ndoc)
    doc_fs = FixedStrings(np.frombuffer("".join(doc_codes).encode("ascii"), dtype=np.uint8).reshape(len(doc_codes), 13))
    table = pa.Table.from_arrays(
        [
            code_arr,
            pa.array(names, type=pa.string()),
            pa.array(types, type=pa.string()),
            pa.array(level.astype(np.int8), type=pa.int8()),
            pa.array(admdvs, type=pa.string()),
            const_bool(True, n),
        ],
        schema=C.INSTITUTION,
    )
    return Institutions(
        table=table,
        code=code_arr,
        level=level,
        is_primary=np.array([t == "primary" for t in types]),
        admdvs=pa.array(admdvs, type=pa.string()),
        price_factor=np.exp(rng.normal(0.0, 0.04, n)),
        doc_offset=offset,
        n_doc=ndoc_a,
        doc_fs=doc_fs,
        practitioners=practitioners,
        groups=groups,
        remote=remote,
    )


def _practitioners(
    codes: list[str], admdvs: list[str], groups_of: list[str], ndoc: list[int]
) -> tuple[pa.Table, list[str]]:
    """The practitioner table and the doctors' codes (institution by institution, in order).

    A code is the letters + the institution's division + a 6-digit sequence
    counted per letter and city (医保医师代码: 同一市级行政区划内的顺序码).
    """
    seq: dict[tuple[str, str], int] = {}

    def code(letter: str, dv: str, remote: bool) -> str:
        key = (letter, dv[:4])
        n = seq[key] = seq.get(key, (REMOTE_PRAC_SERIAL if remote else 1) - 1) + 1
        return f"{letter}{dv}{n:06d}"

    rows: list[tuple[str, str, str, str]] = []  # code, name, type, institution
    doctors: list[str] = []
    for i, inst in enumerate(codes):
        remote = groups_of[i].startswith("remote:")
        for _ in range(ndoc[i]):
            c = code("D", admdvs[i], remote)
            doctors.append(c)
            rows.append((c, f"合成医师{len(doctors):06d}(synthetic)", C.PRAC_PSN_TYPE_DOCTOR, inst))
    for i, inst in enumerate(codes):
        remote = groups_of[i].startswith("remote:")
        nurses, pharmacists = STAFF["remote" if remote else groups_of[i]]
        for _ in range(nurses):
            rows.append(
                (code("N", admdvs[i], remote), f"合成护士{len(rows):06d}(synthetic)", C.PRAC_PSN_TYPE_NURSE, inst)
            )
        # a pharmacy's pharmacists are 医保药师 (Y); a hospital's are 药学人员 (HY, 医保办函〔2022〕39号)
        letter = "Y" if groups_of[i] == "pharmacy" else "HY"
        for _ in range(pharmacists):
            rows.append(
                (
                    code(letter, admdvs[i], remote),
                    f"合成药师{len(rows):06d}(synthetic)",
                    C.PRAC_PSN_TYPE_PHARMACIST,
                    inst,
                )
            )
    cols = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    table = pa.Table.from_arrays(
        [pa.array(list(c), type=pa.string()) for c in cols] + [const_bool(True, len(rows))],
        schema=C.PRACTITIONER,
    )
    return table, doctors
