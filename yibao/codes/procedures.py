"""The procedure list of the synthetic region (手术操作), in 医保版 ICD-9-CM-3 2.0 codes.

``yibao/data/codes/procedures.csv`` lists the procedures the generator uses:
every code is a national 医保版 ICD-9-CM-3 2.0 code (validated against the
dictionary of :mod:`yibao.codes.national`, exactly, as a string) and its name
is the published Chinese name.  Which procedures are listed, their category
and the linked charge item are synthetic choices (``synthetic=true``).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from yibao.codes import national
from yibao.codes._table import data_path, parse_bool, read_csv, table_error
from yibao.core.errors import CodeTableError

PROCEDURE = pa.schema(
    [
        ("oprn_codg", pa.string()),
        ("name", pa.string()),
        ("name_en", pa.string()),
        ("category", pa.string()),  # surgery / therapy / diagnostic
        ("med_list_codg", pa.string()),  # linked charge item, '' = none
        ("synthetic", pa.bool_()),
    ]
)
CATEGORIES = ("surgery", "therapy", "diagnostic")


def is_valid_procedure_code(code: object) -> bool:
    """A code of 医保版 ICD-9-CM-3 2.0, exactly as the dictionary writes it (``47.0901``, ``74.1x01``)."""
    return isinstance(code, str) and code in national.national_proc_codes()


def load_procedures(path: str | Path | None = None, *, med_list=None) -> pa.Table:
    """Load and validate ``procedures.csv``; if ``med_list`` (a :class:`~yibao.codes.MedList`) is
    given, every linked charge item must exist in it."""
    path = Path(path) if path else data_path("procedures.csv")
    rows: list[dict] = []
    lines: dict[str, int] = {}
    for line, r in read_csv(path, PROCEDURE.names):
        code = r["oprn_codg"]
        key = f"oprn_codg={code!r}"
        if not is_valid_procedure_code(code):
            try:
                national.check_procedure(code, "oprn_codg")
                why_en, why_zh = (
                    f"write the code as the dictionary does: {national.normalize_proc(code)!r}",
                    "编码写法与字典不一致",
                )
            except CodeTableError as exc:
                why_en, why_zh = exc.message_en, exc.message_zh
            raise table_error(path, why_en, why_zh, line=line, key=key, field="oprn_codg")
        if code in lines:
            raise table_error(
                path, f"duplicate code, first on line {lines[code]}", "编码重复", line=line, key=key, field="oprn_codg"
            )
        if not r["name"]:
            raise table_error(path, "name is empty", "名称为空", line=line, key=key, field="name")
        if r["name"] != national.proc_name(code):
            raise table_error(
                path,
                f"name {r['name']!r} is not the national name {national.proc_name(code)!r}",
                "名称与医保版字典不一致",
                line=line,
                key=key,
                field="name",
            )
        if r["category"] not in CATEGORIES:
            raise table_error(
                path,
                f"category {r['category']!r} is not one of {CATEGORIES}",
                "类别无效",
                line=line,
                key=key,
                field="category",
            )
        if med_list is not None and r["med_list_codg"] and r["med_list_codg"] not in med_list:
            raise table_error(
                path,
                f"charge item {r['med_list_codg']!r} is not in the medical list",
                "关联收费项目不在目录中",
                line=line,
                key=key,
                field="med_list_codg",
            )
        syn = parse_bool(r["synthetic"])
        if syn is None:
            raise table_error(
                path,
                f"synthetic {r['synthetic']!r} must be true or false",
                "须为 true 或 false",
                line=line,
                key=key,
                field="synthetic",
            )
        lines[code] = line
        rows.append({**r, "synthetic": syn})
    if not rows:
        raise table_error(path, "the procedure list is empty", "手术操作表为空")
    return pa.Table.from_pylist(rows, schema=PROCEDURE)


# --- the procedure mix for the generator ------------------------------------

PROCEDURE_MIX = pa.schema(
    [
        ("dise_codg", pa.string()),  # principal diagnosis (a row of the diagnosis mix, setting inpatient)
        ("oprn_codg", pa.string()),  # principal procedure (a code of the procedure list)
        ("share", pa.float64()),  # share of the diagnosis's cases that get it (a sampling weight, not money)
        ("min_level", pa.int8()),  # lowest hospital level that performs it (1..3)
    ]
)


def load_procedure_mix(path: str | Path | None = None, *, procedures: pa.Table | None = None, mix=None) -> pa.Table:
    """Load and validate ``procedure_mix.csv`` (which principal procedure a synthetic inpatient case gets).

    Every diagnosis must be a national 医保版 ICD-10 2.0 code (and, with ``mix``, an
    inpatient row of the diagnosis mix); every procedure a code of the procedure
    list (``procedures``, default: the shipped one); shares of one diagnosis sum to at most 1.
    """
    from decimal import Decimal, InvalidOperation

    path = Path(path) if path else data_path("procedure_mix.csv")
    procs = set((procedures if procedures is not None else load_procedures()).column("oprn_codg").to_pylist())
    inpatient = None if mix is None else {c for c, s in zip(mix.code, mix.setting, strict=True) if s == "inpatient"}
    rows: list[dict] = []
    total: dict[str, Decimal] = {}
    seen: dict[tuple[str, str], int] = {}
    for line, r in read_csv(path, PROCEDURE_MIX.names):
        dx, op = r["dise_codg"], r["oprn_codg"]
        key = f"dise_codg={dx!r} oprn_codg={op!r}"
        try:
            if national.check_diagnosis(dx, "dise_codg") != dx:
                raise table_error(
                    path,
                    f"write the code as {national.normalize_dx(dx)!r}",
                    "编码写法与字典不一致",
                    line=line,
                    key=key,
                    field="dise_codg",
                )
        except CodeTableError as exc:
            raise table_error(path, exc.message_en, exc.message_zh, line=line, key=key, field="dise_codg") from None
        if inpatient is not None and dx not in inpatient:
            raise table_error(
                path,
                f"{dx!r} is not an inpatient diagnosis of the diagnosis mix",
                "主要诊断不在住院诊断构成中",
                line=line,
                key=key,
                field="dise_codg",
            )
        if op not in procs:
            raise table_error(
                path,
                f"procedure {op!r} is not in the procedure list",
                "手术操作不在手术操作表中",
                line=line,
                key=key,
                field="oprn_codg",
            )
        try:
            share = Decimal(r["share"])
        except InvalidOperation:
            share = Decimal(-1)
        if not share.is_finite() or not 0 < share <= 1:
            raise table_error(
                path,
                f"share {r['share']!r} must be within (0, 1]",
                "比例须在 (0, 1] 之间",
                line=line,
                key=key,
                field="share",
            )
        total[dx] = total.get(dx, Decimal(0)) + share
        if total[dx] > 1:
            raise table_error(
                path,
                f"the shares of {dx!r} sum to more than 1",
                "同一诊断的比例之和大于 1",
                line=line,
                key=key,
                field="share",
            )
        if r["min_level"] not in ("1", "2", "3"):
            raise table_error(
                path,
                f"min_level {r['min_level']!r} must be 1, 2 or 3",
                "最低医院等级须为 1、2 或 3",
                line=line,
                key=key,
                field="min_level",
            )
        if (dx, op) in seen:
            raise table_error(
                path,
                f"duplicate of line {seen[(dx, op)]}",
                f"与第 {seen[(dx, op)]} 行重复",
                line=line,
                key=key,
                field="oprn_codg",
            )
        seen[(dx, op)] = line
        rows.append({"dise_codg": dx, "oprn_codg": op, "share": float(share), "min_level": int(r["min_level"])})
    return pa.Table.from_pylist(rows, schema=PROCEDURE_MIX)
