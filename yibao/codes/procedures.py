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
                why_en, why_zh = f"write the code as the dictionary does: {national.normalize_proc(code)!r}", "编码写法与字典不一致"
            except CodeTableError as exc:
                why_en, why_zh = exc.message_en, exc.message_zh
            raise table_error(path, why_en, why_zh, line=line, key=key, field="oprn_codg")
        if code in lines:
            raise table_error(path, f"duplicate code, first on line {lines[code]}", "编码重复", line=line, key=key, field="oprn_codg")
        if not r["name"]:
            raise table_error(path, "name is empty", "名称为空", line=line, key=key, field="name")
        if r["name"] != national.proc_name(code):
            raise table_error(path, f"name {r['name']!r} is not the national name {national.proc_name(code)!r}", "名称与医保版字典不一致", line=line, key=key, field="name")
        if r["category"] not in CATEGORIES:
            raise table_error(path, f"category {r['category']!r} is not one of {CATEGORIES}", "类别无效", line=line, key=key, field="category")
        if med_list is not None and r["med_list_codg"] and r["med_list_codg"] not in med_list:
            raise table_error(path, f"charge item {r['med_list_codg']!r} is not in the medical list", "关联收费项目不在目录中", line=line, key=key, field="med_list_codg")
        syn = parse_bool(r["synthetic"])
        if syn is None:
            raise table_error(path, f"synthetic {r['synthetic']!r} must be true or false", "须为 true 或 false", line=line, key=key, field="synthetic")
        lines[code] = line
        rows.append({**r, "synthetic": syn})
    if not rows:
        raise table_error(path, "the procedure list is empty", "手术操作表为空")
    return pa.Table.from_pylist(rows, schema=PROCEDURE)
