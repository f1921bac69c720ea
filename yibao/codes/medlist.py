"""The medical list (医保目录): loader, validator and lookup.

The shipped ``yibao/data/codes/med_list.csv`` is a SYNTHETIC sample catalog,
not an official list.  Its columns are those of the contract's ``MED_LIST``
schema, except that in the CSV money is yuan (``"12.50"``) and the
self-pay-first ratio a decimal (``"0.10"``); :func:`load_med_list` converts
them with :mod:`yibao.core.money` to integer fen and basis points.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from yibao.codes import national_structures as NS
from yibao.codes._table import data_path, parse_bool, parse_int, read_csv, split_list, table_error
from yibao.codes.icd10 import is_valid_icd10_prefix
from yibao.core import contract as C
from yibao.core.errors import CodeTableError
from yibao.core.money import BP_SCALE, MoneyError, ratio_to_bp, yuan_to_fen

DRUG_KINDS = ("western", "tcm_patent", "herbal")
CLASSES = (C.CLASS_A, C.CLASS_B, C.CLASS_C)
KNOWN_MED_TYPES = frozenset(
    {C.MED_TYPE_OUTPATIENT, C.MED_TYPE_CHRONIC, C.MED_TYPE_INPATIENT, C.MED_TYPE_PHARMACY, C.MED_TYPE_HOME_BED, "LTC"}
)
_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
_MED_TYPE_RE = re.compile(r"^[0-9A-Z]{1,8}$")


@dataclass(frozen=True, slots=True)
class MedItem:
    """One row of the medical list (money in fen, ratio in basis points)."""

    med_list_codg: str
    name: str
    list_kind: str
    chrgitm_lv: str
    selfpay_prop_bp: int
    pric_uplmt: int
    lmt_gend: str
    lmt_age_min: int
    lmt_age_max: int
    lmt_hosp_lv_min: int
    lmt_indication: tuple[str, ...]
    lmt_med_types: tuple[str, ...]
    drug_class: str
    acct_excluded: bool
    vbp_flag: bool
    vbp_pay_std: int
    synthetic: bool

    @property
    def is_drug(self) -> bool:
        return self.list_kind in DRUG_KINDS

    @property
    def effective_cap(self) -> int:
        """Per-unit price above which the patient pays (price cap or VBP standard); 0 = none."""
        caps = [c for c in (self.pric_uplmt, self.vbp_pay_std) if c > 0]
        return min(caps) if caps else 0

    @property
    def restricted(self) -> bool:
        return bool(
            self.lmt_gend
            or self.lmt_age_min >= 0
            or self.lmt_age_max >= 0
            or self.lmt_hosp_lv_min > 0
            or self.lmt_indication
            or self.lmt_med_types
        )


# --- validation of one row (native units) -----------------------------------


Problem = tuple[str, str, str]  # (field, reason_en, reason_zh)


def _code_problems(r: Mapping[str, Any], med_types: frozenset[str], national: bool) -> list[Problem]:
    code, kind = r["med_list_codg"], r["list_kind"]
    if not isinstance(code, str) or not _CODE_RE.match(code):
        return [("med_list_codg", f"code {code!r} must be 1-50 letters, digits, '.', '_' or '-'", "编码格式无效")]
    if national and kind in C.LIST_KINDS:
        try:
            NS.parse_med_list_code(code, kind)
        except CodeTableError as exc:
            return [
                (
                    "med_list_codg",
                    f"{exc.message_en} (list_kind {kind}; declare code_structure: local for a region's own codes)",
                    exc.message_zh,
                )
            ]
    return []


def _name_problems(r: Mapping[str, Any], med_types: frozenset[str], national: bool) -> list[Problem]:
    return [] if r["name"] else [("name", "name is empty", "名称为空")]


def _kind_problems(r: Mapping[str, Any], med_types: frozenset[str], national: bool) -> list[Problem]:
    kind = r["list_kind"]
    if kind in C.LIST_KINDS:
        return []
    return [("list_kind", f"list_kind {kind!r} is not one of {C.LIST_KINDS}", "目录类别无效")]


def _class_problems(r: Mapping[str, Any], med_types: frozenset[str], national: bool) -> list[Problem]:
    """The charge class (甲/乙/丙) and the self-pay-first ratio that only 乙类 may carry."""
    out: list[Problem] = []
    lv, bp = r["chrgitm_lv"], r["selfpay_prop_bp"]
    if lv not in CLASSES:
        hint = (
            f" (write {lv.zfill(2)!r}, with the leading zero)" if isinstance(lv, str) and lv.zfill(2) in CLASSES else ""
        )
        out.append(
            ("chrgitm_lv", f"chrgitm_lv {lv!r} is not 01 (甲), 02 (乙) or 03 (丙){hint}", "收费项目等级须为 01/02/03")
        )
    elif lv != C.CLASS_B and bp != 0:
        out.append(
            (
                "selfpay_prop_bp",
                f"a self-pay-first ratio is only allowed for 乙类 (02), not class {lv}",
                "只有乙类可设先行自付比例",
            )
        )
    if not isinstance(bp, int) or not 0 <= bp < BP_SCALE:
        out.append(
            ("selfpay_prop_bp", f"self-pay-first ratio {bp!r} bp must be 0 ≤ ratio < 1", "先行自付比例须在 0 与 1 之间")
        )
    return out


def _amount_problems(r: Mapping[str, Any], med_types: frozenset[str], national: bool) -> list[Problem]:
    return [
        (f, f"{f} {r[f]!r} must be a non-negative amount", "金额不能为负")
        for f in ("pric_uplmt", "vbp_pay_std")
        if not isinstance(r[f], int) or r[f] < 0
    ]


def _limit_problems(r: Mapping[str, Any], med_types: frozenset[str], national: bool) -> list[Problem]:
    """The gender, age and hospital-level limits."""
    out: list[Problem] = []
    if r["lmt_gend"] not in ("", C.GEND_MALE, C.GEND_FEMALE):
        out.append(
            ("lmt_gend", f"lmt_gend {r['lmt_gend']!r} must be '', 1 (male) or 2 (female)", "性别限制须为空、1 或 2")
        )
    amin, amax = r["lmt_age_min"], r["lmt_age_max"]
    for f, a in (("lmt_age_min", amin), ("lmt_age_max", amax)):
        if not isinstance(a, int) or not -1 <= a <= 150:
            out.append((f, f"{f} {a!r} must be -1 (none) or an age 0..150", "年龄限制无效"))
    if isinstance(amin, int) and isinstance(amax, int) and amin >= 0 and amax >= 0 and amin > amax:
        out.append(("lmt_age_min", f"lmt_age_min {amin} > lmt_age_max {amax}", "最小年龄大于最大年龄"))
    hl = r["lmt_hosp_lv_min"]
    if not isinstance(hl, int) or not 0 <= hl <= 3:
        out.append(
            ("lmt_hosp_lv_min", f"lmt_hosp_lv_min {hl!r} must be 0 (none) or a level 1..3", "医院等级限制须为 0-3")
        )
    return out


def _indication_problems(r: Mapping[str, Any], med_types: frozenset[str], national: bool) -> list[Problem]:
    ind = r["lmt_indication"]
    out: list[Problem] = [
        (
            "lmt_indication",
            f"indication {p!r} is not a valid ICD-10 code prefix",
            f"适应症 {p!r} 不是有效的 ICD-10 编码前缀",
        )
        for p in ind
        if not is_valid_icd10_prefix(p)
    ]
    if len(set(ind)) != len(ind):
        out.append(("lmt_indication", "indication list repeats a prefix", "适应症重复"))
    return out


def _med_type_problems(r: Mapping[str, Any], med_types: frozenset[str], national: bool) -> list[Problem]:
    mts = r["lmt_med_types"]
    out: list[Problem] = [
        ("lmt_med_types", f"med_type {m!r} is not one of {sorted(med_types)}", f"医疗类别 {m!r} 无效")
        for m in mts
        if not _MED_TYPE_RE.match(m) or m not in med_types
    ]
    if len(set(mts)) != len(mts):
        out.append(("lmt_med_types", "med_type list repeats a code", "医疗类别重复"))
    return out


def _drug_class_problems(r: Mapping[str, Any], med_types: frozenset[str], national: bool) -> list[Problem]:
    dc, kind = r["drug_class"], r["list_kind"]
    if dc not in C.DRUG_CLASSES:
        return [("drug_class", f"drug_class {dc!r} is not one of {[c for c in C.DRUG_CLASSES if c]}", "药品类别无效")]
    if dc and kind in C.LIST_KINDS and kind not in DRUG_KINDS:
        return [("drug_class", f"drug_class {dc!r} is only for drugs, not {kind}", "只有药品可设药品类别")]
    return []


def _vbp_problems(r: Mapping[str, Any], med_types: frozenset[str], national: bool) -> list[Problem]:
    """A VBP (集采) product has a payment standard, only a VBP product has one, and services are never VBP."""
    out: list[Problem] = []
    if r["vbp_flag"] and r["vbp_pay_std"] == 0:
        out.append(
            ("vbp_pay_std", "a VBP product (vbp_flag) needs its payment standard vbp_pay_std", "集采产品须有支付标准")
        )
    if not r["vbp_flag"] and isinstance(r["vbp_pay_std"], int) and r["vbp_pay_std"] > 0:
        out.append(("vbp_pay_std", "vbp_pay_std is set but vbp_flag is false", "非集采产品不应有集采支付标准"))
    if r["vbp_flag"] and r["list_kind"] == "service":
        out.append(("vbp_flag", "a service item cannot be a VBP product", "医疗服务项目不能是集采产品"))
    return out


def _flag_problems(r: Mapping[str, Any], med_types: frozenset[str], national: bool) -> list[Problem]:
    return [
        (f, f"{f} {r[f]!r} must be true or false", "须为 true 或 false")
        for f in ("acct_excluded", "vbp_flag", "synthetic")
        if not isinstance(r[f], bool)
    ]


# The row checks in the order their problems are reported (the first one is what a load refuses with).
_ROW_CHECKS: tuple[Callable[[Mapping[str, Any], frozenset[str], bool], list[Problem]], ...] = (
    _code_problems,
    _name_problems,
    _kind_problems,
    _class_problems,
    _amount_problems,
    _limit_problems,
    _indication_problems,
    _med_type_problems,
    _drug_class_problems,
    _vbp_problems,
    _flag_problems,
)


def _check_row(r: Mapping[str, Any], *, med_types: frozenset[str], national: bool = True) -> list[Problem]:
    """Problems of one row as ``(field, reason_en, reason_zh)``; empty if valid.

    ``national``: the code must have the published structure of its list kind
    (:mod:`yibao.codes.national_structures`); otherwise only the generic format.
    """
    return [p for check in _ROW_CHECKS for p in check(r, med_types, national)]


def _raise_first(problems, source, line, code):
    field, en, zh = problems[0]
    raise table_error(source, en, zh, line=line, key=f"med_list_codg={code!r}", field=field)


# --- CSV ----------------------------------------------------------------------


def _convert_csv_row(path: Path, line: int, r: dict[str, str]) -> dict[str, Any]:
    code = r["med_list_codg"]
    key = f"med_list_codg={code!r}"

    def bad(field: str, en: str, zh: str):
        return table_error(path, en, zh, line=line, key=key, field=field)

    out: dict[str, Any] = {
        k: r[k] for k in ("med_list_codg", "name", "list_kind", "chrgitm_lv", "lmt_gend", "drug_class")
    }
    raw = r["selfpay_prop_bp"] or "0"
    try:
        out["selfpay_prop_bp"] = ratio_to_bp(raw)
    except MoneyError as exc:
        hint = (
            " (in the CSV this column is a ratio such as 0.10, not basis points)"
            if raw.replace(".", "").isdigit()
            else ""
        )
        raise bad(
            "selfpay_prop_bp", f"self-pay-first ratio {raw!r}: {exc}{hint}", f"先行自付比例 {raw!r} 无效"
        ) from None
    for f in ("pric_uplmt", "vbp_pay_std"):
        raw = r[f] or "0"
        try:
            out[f] = yuan_to_fen(raw)
        except MoneyError as exc:
            raise bad(f, f"{f} {raw!r} is not a yuan amount: {exc}", f"{f} {raw!r} 不是有效的金额(元)") from None
        if out[f] < 0:
            raise bad(f, f"{f} {raw!r} must not be negative", "金额不能为负")
    for f, default in (("lmt_age_min", -1), ("lmt_age_max", -1), ("lmt_hosp_lv_min", 0)):
        v = parse_int(r[f], default)
        if v is None:
            raise bad(f, f"{f} {r[f]!r} is not an integer", f"{f} 须为整数")
        out[f] = v
    out["lmt_indication"] = split_list(r["lmt_indication"])
    out["lmt_med_types"] = split_list(r["lmt_med_types"])
    for f in ("acct_excluded", "vbp_flag", "synthetic"):
        v = parse_bool(r[f])
        if v is None:
            raise bad(f, f"{f} {r[f]!r} must be true or false", f"{f} 须为 true 或 false")
        out[f] = v
    return out


def _rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    cols: dict[str, list] = {name: [] for name in C.MED_LIST.names}
    for r in rows:
        for name in C.MED_LIST.names:
            v = r[name]
            if name in ("lmt_indication", "lmt_med_types"):
                v = ";".join(v)
            cols[name].append(v)
    return pa.Table.from_pydict(cols, schema=C.MED_LIST)


def _read_csv_rows(path: Path, med_types: frozenset[str], national: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    for line, raw in read_csv(path, C.MED_LIST.names):
        r = _convert_csv_row(path, line, raw)
        problems = _check_row(r, med_types=med_types, national=national)
        if problems:
            _raise_first(problems, path, line, r["med_list_codg"])
        code = r["med_list_codg"]
        if code in first_line:
            raise table_error(
                path,
                f"duplicate code, first on line {first_line[code]}",
                f"编码重复(首次出现于第 {first_line[code]} 行)",
                line=line,
                key=f"med_list_codg={code!r}",
                field="med_list_codg",
            )
        first_line[code] = line
        rows.append(r)
    if not rows:
        raise table_error(path, "the medical list is empty", "目录为空")
    return rows


def load_med_list(
    path: str | Path | None = None, *, med_types: Iterable[str] = KNOWN_MED_TYPES, code_structure: str | None = None
) -> pa.Table:
    """Load and validate a medical list; returns a table with the contract's ``MED_LIST`` schema.

    ``path`` is a CSV in the shipped format (default: the shipped SYNTHETIC
    sample) or a Parquet file already in contract units.  Any problem raises
    :class:`~yibao.core.errors.CodeTableError` naming the file, the line (CSV)
    or row index (Parquet), the code, and the reason.

    ``code_structure`` (``national`` or ``local``) says whether every code must
    have the published national structure of its list kind; by default the
    file declares it (a ``# code_structure: …`` comment line in a CSV, the
    ``yibao.code_structure`` metadata in Parquet), else ``national``.  The
    returned table carries the strictness it was validated under.
    """
    path = Path(path) if path else data_path("med_list.csv")
    mt = frozenset(med_types)
    if path.suffix.lower() == ".parquet":
        if not path.exists():
            raise table_error(path, "file not found", "文件不存在")
        table = pq.read_table(path)
        cs = _structure(path, code_structure, lambda: NS.declared_in_metadata(table.schema.metadata))
        validate_med_list(table, source=path, med_types=mt, code_structure=cs)
        return _mark(table.select(C.MED_LIST.names).cast(C.MED_LIST).replace_schema_metadata(None), cs)
    cs = _structure(
        path,
        code_structure,
        lambda: NS.declared_in_csv(path.read_text(encoding="utf-8-sig")) if path.exists() else None,
    )
    return _mark(_rows_to_table(_read_csv_rows(path, mt, cs == "national")), cs)


def _structure(source: object, explicit: str | None, declared) -> str:
    try:
        return NS.resolve(explicit, declared())
    except CodeTableError as exc:
        raise table_error(source, exc.message_en, exc.message_zh, field="code_structure") from None


def _mark(table: pa.Table, code_structure: str) -> pa.Table:
    """``table`` with its ``code_structure`` in the schema metadata (the only metadata key)."""
    return table.replace_schema_metadata({NS.METADATA_KEY: code_structure.encode()})


def _table_rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    for r in table.to_pylist():
        r = dict(r)
        r["lmt_indication"] = split_list(r["lmt_indication"])
        r["lmt_med_types"] = split_list(r["lmt_med_types"])
        for f, default in (("lmt_age_min", -1), ("lmt_age_max", -1), ("lmt_hosp_lv_min", 0)):
            if r[f] is None:
                r[f] = default
        for f in ("lmt_gend", "drug_class"):
            if r[f] is None:
                r[f] = ""
        yield r


def validate_med_list(
    table: pa.Table,
    *,
    source: object = "<med_list table>",
    med_types: Iterable[str] = KNOWN_MED_TYPES,
    code_structure: str | None = None,
) -> None:
    """Validate a contract ``med_list`` table (fen / bp units); rows are numbered from 0.

    ``code_structure``: ``national`` (codes in the published structures) or
    ``local``; default: the table's ``yibao.code_structure`` metadata, else ``national``.
    """
    national = _structure(source, code_structure, lambda: NS.declared_in_metadata(table.schema.metadata)) == "national"
    missing = [n for n in C.MED_LIST.names if n not in table.column_names]
    if missing:
        raise table_error(source, f"missing columns {missing}", f"缺少列 {missing}")
    for f in C.MED_LIST:
        if not table.schema.field(f.name).type.equals(f.type):
            raise table_error(
                source,
                f"column {f.name} has type {table.schema.field(f.name).type}, the contract says {f.type}",
                "列类型与数据契约不符",
                field=f.name,
            )
    mt = frozenset(med_types)
    seen: dict[str, int] = {}
    for i, r in enumerate(_table_rows(table.select(C.MED_LIST.names))):
        code = r["med_list_codg"]
        for f in (
            "med_list_codg",
            "name",
            "list_kind",
            "chrgitm_lv",
            "selfpay_prop_bp",
            "pric_uplmt",
            "vbp_pay_std",
            "acct_excluded",
            "vbp_flag",
            "synthetic",
        ):
            if r[f] is None:
                raise table_error(source, f"{f} is null", f"{f} 为空", key=f"row {i}, med_list_codg={code!r}", field=f)
        problems = _check_row(r, med_types=mt, national=national)
        if problems:
            field, en, zh = problems[0]
            raise table_error(source, en, zh, key=f"row {i}, med_list_codg={code!r}", field=field)
        if code in seen:
            raise table_error(
                source,
                f"duplicate code, first at row {seen[code]}",
                "编码重复",
                key=f"row {i}, med_list_codg={code!r}",
                field="med_list_codg",
            )
        seen[code] = i


# --- lookup ---------------------------------------------------------------------


class MedList:
    """The medical list with fast lookup by code and NumPy columns.

    >>> ml = MedList.load()
    >>> ml["991000000010000"].pric_uplmt
    5000
    """

    def __init__(
        self,
        table: pa.Table,
        *,
        source: object = "<med_list table>",
        validate: bool = True,
        code_structure: str | None = None,
    ):
        if validate:
            validate_med_list(table, source=source, code_structure=code_structure)
        self.table = table.select(C.MED_LIST.names)
        self.source = source
        self.items: dict[str, MedItem] = {}
        for r in _table_rows(self.table):
            self.items[r["med_list_codg"]] = MedItem(**r)
        self.codes = np.array(list(self.items), dtype=object)
        self.index: dict[str, int] = {c: i for i, c in enumerate(self.items)}
        self._cols: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> MedList:
        table = load_med_list(path)
        return cls(table, source=path or data_path("med_list.csv"), validate=False)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, code: object) -> bool:
        return code in self.items

    def __iter__(self) -> Iterator[MedItem]:
        return iter(self.items.values())

    def __getitem__(self, code: str) -> MedItem:
        try:
            return self.items[code]
        except KeyError:
            raise table_error(
                self.source, "unknown code", "目录中无此编码", key=f"med_list_codg={code!r}", field="med_list_codg"
            ) from None

    def get(self, code: str, default: MedItem | None = None) -> MedItem | None:
        return self.items.get(code, default)

    def column(self, name: str) -> np.ndarray:
        """A column as NumPy: int64 for integers, bool for flags, object for text."""
        if name not in self._cols:
            if name not in C.MED_LIST.names:
                raise KeyError(f"no column {name!r} in med_list")
            col = self.table.column(name)
            t = col.type
            if pa.types.is_integer(t):
                arr = col.to_numpy().astype(np.int64)
            elif pa.types.is_boolean(t):
                arr = col.to_numpy(zero_copy_only=False).astype(bool)
            else:
                arr = np.array(col.to_pylist(), dtype=object)
            self._cols[name] = arr
        return self._cols[name]

    @property
    def effective_cap(self) -> np.ndarray:
        """Per-unit cap (price cap or VBP standard, the lower), 0 = none, as int64."""
        if "_effective_cap" not in self._cols:
            self._cols["_effective_cap"] = np.array([it.effective_cap for it in self.items.values()], dtype=np.int64)
        return self._cols["_effective_cap"]

    def positions(self, codes: Iterable[str]) -> np.ndarray:
        """Row positions of codes (int64), -1 for unknown codes."""
        idx = self.index
        return np.array([idx.get(c, -1) for c in codes], dtype=np.int64)

    def validate(self) -> None:
        """Re-validate the table (raises :class:`CodeTableError`)."""
        validate_med_list(
            self.table, source=self.source, code_structure=NS.declared_in_metadata(self.table.schema.metadata)
        )
