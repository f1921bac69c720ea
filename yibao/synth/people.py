"""Synthetic insured people and their family links, one chunk at a time.

Figures from the seeds: people aged 60+ are 18.1 % and 65+ 11.9 % of the
population.  Everything else here (the shape of the pyramid inside those
bounds, the employee share, retirement ages, assistance rates, wages,
account balances, marriage and parenthood rates) is ILLUSTRATIVE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core import contract as C
from yibao.synth._arrow import FixedStrings, cat, const_bool, const_str, digits

# 5-year age bands 0-4 … 95-99, percent.  60+ sums to 18.1 and 65+ to 11.9 (seed figures);
# the split inside each bound is illustrative.
AGE_BAND_PCT = np.array(
    [
        5.0,
        6.0,
        5.8,
        5.2,
        5.4,
        6.6,
        8.8,
        7.0,
        6.6,
        8.2,
        8.7,
        8.6,  # 0-59: 81.9
        6.2,  # 60-64
        4.5,
        3.2,
        2.0,
        1.2,
        0.65,
        0.25,
        0.1,
    ],  # 65+: 11.9
    dtype=np.float64,
)
P_MALE_BY_BAND = np.array([0.53] * 4 + [0.51] * 8 + [0.49] * 4 + [0.42] * 4)

EMPLOYEE_SHARE_WORKING = 0.435  # illustrative: gives about 1/3 employees overall
EMPLOYEE_SHARE_RETIRED = 0.35
RETIRE_AGE_MALE, RETIRE_AGE_FEMALE = 60, 55  # illustrative
CIVIL_SERVANT_SHARE = 0.06
ASSISTANCE_RATES = {C.ASSISTANCE_DIBAO: 0.03, C.ASSISTANCE_TEKUN: 0.006, C.ASSISTANCE_FANPIN: 0.015}  # residents only
AVG_WAGE_FEN = 800_000  # synthetic average monthly wage ¥8,000
SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉建国红梅文斌宇浩凯欣怡佳琪晨子涵雨轩博瑞嘉乐俊峰志丹海燕云飞春林"
)


@dataclass
class PeopleChunk:
    """Columns of one chunk of people (local index 0..n-1; global = start + local)."""

    start: int
    age: np.ndarray  # completed years on 1 July of the year
    male: np.ndarray
    brdy: np.ndarray  # days since 1970-01-01
    employee: np.ndarray
    retired: np.ndarray
    civil: np.ndarray
    assistance: np.ndarray  # index into ASSISTANCE_STATUSES
    spouse: np.ndarray  # local index or -1
    mother: np.ndarray
    father: np.ndarray
    household: np.ndarray  # local index of the household root
    payer: np.ndarray  # employee relative whose account may pay (共济), or -1
    psn_no: pa.Array
    psn_fs: FixedStrings

    @property
    def n(self) -> int:
        return len(self.age)


PSN_PREFIX, PSN_WIDTH = "99", 10


def psn_numbers(glob: np.ndarray) -> FixedStrings:
    """``psn_no``: "99" + 10 digits of the global person index."""
    return FixedStrings.digits(PSN_PREFIX, glob, PSN_WIDTH)


def ymd_numbers(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 → YYYYMMDD integers."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    y = m.astype("datetime64[Y]").astype(np.int64) + 1970
    mo = m.astype(np.int64) % 12 + 1
    dd = (d - m.astype("datetime64[D]")).astype(np.int64) + 1
    return y * 10000 + mo * 100 + dd


def _ages(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    p = AGE_BAND_PCT / AGE_BAND_PCT.sum()
    band = rng.choice(len(p), size=n, p=p)
    age = band * 5 + rng.integers(0, 5, size=n)
    male = rng.random(n) < P_MALE_BY_BAND[band]
    return age.astype(np.int64), male


def _families(rng: np.random.Generator, age: np.ndarray, male: np.ndarray):
    n = len(age)
    idx = np.arange(n)
    # marriage: pair men and women of similar age by rank (wives ~2 years younger)
    p_married = np.select([age < 22, age < 30, age < 60, age < 75], [0.0, 0.45, 0.85, 0.80], 0.6)
    cand = rng.random(n) < p_married
    men, women = idx[cand & male], idx[cand & ~male]
    men = men[np.argsort(age[men] + rng.normal(0, 2, len(men)), kind="stable")]
    women = women[np.argsort(age[women] + 2 + rng.normal(0, 2, len(women)), kind="stable")]
    k = min(len(men), len(women))
    if len(men) > k:
        men = men[(np.arange(k) * len(men)) // max(k, 1)]
    if len(women) > k:
        women = women[(np.arange(k) * len(women)) // max(k, 1)]
    spouse = np.full(n, -1, dtype=np.int64)
    spouse[men] = women
    spouse[women] = men
    # parents: a mother 22-36 years older, and her husband as the father
    p_parent = np.select([age < 18, age < 30, age < 45, age < 60], [0.95, 0.8, 0.6, 0.35], 0.05)
    kids = idx[rng.random(n) < p_parent]
    moms = idx[(~male) & (age >= 20)]
    moms = moms[np.argsort(age[moms], kind="stable")]
    mom_age = age[moms]
    target = age[kids] + rng.integers(22, 37, size=len(kids))
    lo = np.searchsorted(mom_age, target, "left")
    hi = np.searchsorted(mom_age, target, "right")
    ok = hi > lo
    pick = lo + (rng.random(len(kids)) * (hi - lo)).astype(np.int64)
    mother = np.full(n, -1, dtype=np.int64)
    mother[kids[ok]] = moms[pick[ok]]
    father = np.where(mother >= 0, spouse[np.maximum(mother, 0)], -1)
    father = np.where((father >= 0) & (age[np.maximum(father, 0)] - age >= 18), father, -1)  # a plausible father only
    # households: a couple shares one; minors live with their mother
    root = np.where(spouse >= 0, np.minimum(idx, spouse), idx)
    minor = (age < 18) & (mother >= 0)
    household = np.where(minor, root[np.maximum(mother, 0)], root)
    return spouse, mother, father, household


def _links(spouse, mother, father):
    """(person, relative, relation code) rows, both directions. relation: 0 spouse, 1 parent, 2 child."""
    idx = np.arange(len(spouse))
    s = spouse >= 0
    parts_a, parts_b, parts_r = [idx[s]], [spouse[s]], [np.zeros(s.sum(), np.int8)]
    for par in (mother, father):
        m = par >= 0
        parts_a += [idx[m], par[m]]
        parts_b += [par[m], idx[m]]
        parts_r += [np.ones(m.sum(), np.int8), np.full(m.sum(), 2, np.int8)]
    return np.concatenate(parts_a), np.concatenate(parts_b), np.concatenate(parts_r)


def _payers(rng, employee, a, b, rel):
    """For each resident, one employee relative (children first, then spouse, then parents), or -1."""
    prio = np.array([1, 2, 0], dtype=np.int64)[rel]  # child 0, spouse 1, parent 2
    keep = (~employee[a]) & employee[b]
    a, b, prio = a[keep], b[keep], prio[keep]
    order = np.lexsort((rng.random(len(a)), prio, a))
    a, b = a[order], b[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = a[1:] != a[:-1]
    payer = np.full(len(employee), -1, dtype=np.int64)
    payer[a[first]] = b[first]
    return payer


def generate_people(
    rng: np.random.Generator, n: int, start: int, year: int, region: str
) -> tuple[PeopleChunk, pa.Table, pa.Table]:
    """One chunk of people: (columns for the encounter generator, person table, family_link table)."""
    age, male = _ages(rng, n)
    # birth date: about 2 July of (year - age - 1) plus up to 364 days, so `age` is completed on 1 July
    jan1 = (year - age - 1 - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    brdy = jan1 + 182 + rng.integers(0, 365, size=n)

    work_age = (age >= 18) & np.where(male, age < RETIRE_AGE_MALE, age < RETIRE_AGE_FEMALE)
    ret_age = np.where(male, age >= RETIRE_AGE_MALE, age >= RETIRE_AGE_FEMALE)
    u = rng.random(n)
    employee = np.where(work_age, u < EMPLOYEE_SHARE_WORKING, ret_age & (u < EMPLOYEE_SHARE_RETIRED))
    retired = employee & ret_age
    in_service = employee & ~retired
    civil = employee & (rng.random(n) < CIVIL_SERVANT_SHARE)
    ua = rng.random(n)
    cuts = np.cumsum([ASSISTANCE_RATES[s] for s in C.ASSISTANCE_STATUSES[1:]])
    assistance = np.where(employee, 0, np.searchsorted(cuts, ua, side="right") + 1)
    assistance = np.where(assistance > 3, 0, assistance)

    base = np.where(
        in_service,
        (np.clip(rng.lognormal(0.0, 0.45, n), 0.6, 3.0) * AVG_WAGE_FEN / 100).round().astype(np.int64) * 100,
        0,
    )
    balc = np.where(
        employee,
        (rng.lognormal(np.where(retired, np.log(150_000), np.log(250_000)), 0.9)).round().astype(np.int64),
        0,
    )

    spouse, mother, father, household = _families(rng, age, male)
    a, b, rel = _links(spouse, mother, father)
    payer = _payers(rng, employee, a, b, rel)

    glob = start + np.arange(n, dtype=np.int64)
    psn_fs = psn_numbers(glob)
    psn_no = psn_fs.array()
    # certno: "99" + 4 digits of (index // 1000) + birth date + 3 digits of (index % 1000) + "S".
    # "99" is no real province and "S" no valid check character, so it can never be a real ID number.
    ymd_num = ymd_numbers(brdy)
    cert_num = ((glob // 1000) % 10000) * 10**11 + ymd_num * 1000 + glob % 1000
    certno = digits("99", cert_num, 15, "S")

    sur = rng.integers(0, len(SURNAMES), n)
    g1 = rng.integers(0, len(GIVEN), n)
    g2 = np.where(rng.random(n) < 0.7, rng.integers(0, len(GIVEN), n), len(GIVEN))
    names = pc.binary_join_element_wise(cat(SURNAMES, sur), cat(GIVEN, g1), cat(GIVEN + [""], g2), "")

    psn_type = np.where(in_service, 0, np.where(retired, 1, 2))
    person = pa.Table.from_arrays(
        [
            psn_no,
            certno,
            names,
            cat([C.GEND_MALE, C.GEND_FEMALE], np.where(male, 0, 1)),
            pa.array(brdy.astype(np.int32), type=pa.int32()).view(pa.date32()),
            cat([C.INSUTYPE_RESIDENT, C.INSUTYPE_EMPLOYEE], employee.astype(np.int64)),
            cat([C.PSN_TYPE_IN_SERVICE, C.PSN_TYPE_RETIRED, C.PSN_TYPE_RESIDENT], psn_type),
            pa.array(civil),
            const_str(region, n),
            cat(list(C.ASSISTANCE_STATUSES), assistance),
            pa.array(base, type=pa.int64()),
            pa.array(balc, type=pa.int64()),
            digits("F99", start + household, 10),
            const_bool(True, n),
        ],
        schema=C.PERSON,
    )
    link = pa.Table.from_arrays(
        [psn_fs.take(a), psn_fs.take(b), cat(list(C.RELATIONS), rel), const_bool(True, len(a))],
        schema=C.FAMILY_LINK,
    )
    chunk = PeopleChunk(
        start,
        age,
        male,
        brdy,
        employee,
        retired,
        civil,
        assistance,
        spouse,
        mother,
        father,
        household,
        payer,
        psn_no,
        psn_fs,
    )
    return chunk, person, link
