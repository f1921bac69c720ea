"""A SAMPLE procedure list (手术操作), ICD-9-CM-3-style codes.

``yibao/data/codes/procedures.csv`` is labelled sample/synthetic: the codes
follow the ICD-9-CM volume 3 style and must be checked against the official
national clinical edition before any real use.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from yibao.codes._table import data_path, parse_bool, read_csv, table_error

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
_CODE_RE = re.compile(r"^[0-9]{2}(\.[0-9]{1,2})?$")


def is_valid_procedure_code(code: object) -> bool:
    """Well-formed ICD-9-CM-3-style code: ``47.09``, ``74.1``, ``00.66``."""
    return isinstance(code, str) and bool(_CODE_RE.match(code))


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
            raise table_error(path, f"procedure code {code!r} must look like 47.09 (ICD-9-CM-3 style)", "手术操作编码格式无效", line=line, key=key, field="oprn_codg")
        if code in lines:
            raise table_error(path, f"duplicate code, first on line {lines[code]}", "编码重复", line=line, key=key, field="oprn_codg")
        if not r["name"]:
            raise table_error(path, "name is empty", "名称为空", line=line, key=key, field="name")
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
