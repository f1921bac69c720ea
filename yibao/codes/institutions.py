"""Institutions (定点医药机构): loader and validator for the contract's ``INSTITUTION`` table.

Hospitals and primary centres have a level 1, 2 or 3; retail pharmacies level 0.
Under ``code_structure: national`` (the default) every ``fixmedins_code`` has the
published structure: ``H`` (medical institution) or ``P`` (pharmacy) + the
6-digit division + a 5-digit sequence (see ``yibao/data/codes/README.md``); the
embedded division must lie in the institution's province and, given a division
table, be in it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from yibao.codes import national_structures as NS
from yibao.codes._table import parse_bool, parse_int, read_csv, table_error
from yibao.codes.divisions import Divisions, is_admdvs
from yibao.core import contract as C
from yibao.core.errors import CodeTableError

_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,29}$")


def _problems(r: dict, national: bool = True, divisions: Divisions | None = None) -> list[tuple[str, str, str]]:
    out = []
    if not isinstance(r["fixmedins_code"], str) or not _CODE_RE.match(r["fixmedins_code"]):
        out.append(
            (
                "fixmedins_code",
                f"code {r['fixmedins_code']!r} must be 1-30 letters, digits, '.', '_' or '-'",
                "机构编码格式无效",
            )
        )
    elif national:
        try:
            parsed = NS.parse_institution_code(
                r["fixmedins_code"], r["fixmedins_type"] if r["fixmedins_type"] in C.INSTITUTION_TYPES else None
            )
            NS.check_division(parsed, divisions, admdvs=r["admdvs"] if is_admdvs(r["admdvs"]) else None)
        except CodeTableError as exc:
            out.append(("fixmedins_code", exc.message_en, exc.message_zh))
    if not r["fixmedins_name"]:
        out.append(("fixmedins_name", "name is empty", "名称为空"))
    t, lv = r["fixmedins_type"], r["hosp_lv"]
    if t not in C.INSTITUTION_TYPES:
        out.append(("fixmedins_type", f"type {t!r} is not one of {C.INSTITUTION_TYPES}", "机构类型无效"))
    elif t == "pharmacy" and lv != 0:
        out.append(("hosp_lv", f"a pharmacy has level 0, not {lv!r}", "药店等级须为 0"))
    elif t != "pharmacy" and lv not in (1, 2, 3):
        out.append(("hosp_lv", f"a {t} has level 1, 2 or 3, not {lv!r}", "医疗机构等级须为 1-3"))
    if not is_admdvs(r["admdvs"]):
        out.append(("admdvs", f"division {r['admdvs']!r} must be 6 digits", "医保区划须为 6 位数字"))
    if not isinstance(r["synthetic"], bool):
        out.append(("synthetic", f"synthetic {r['synthetic']!r} must be true or false", "须为 true 或 false"))
    return out


def _structure(source: object, explicit: str | None, declared) -> str:
    try:
        return NS.resolve(explicit, declared())
    except CodeTableError as exc:
        raise table_error(source, exc.message_en, exc.message_zh, field="code_structure") from None


def validate_institutions(
    table: pa.Table,
    *,
    source: object = "<institution table>",
    divisions: Divisions | None = None,
    code_structure: str | None = None,
) -> None:
    """Validate a contract ``institution`` table (rows numbered from 0).

    ``code_structure``: ``national`` or ``local``; default: the table's
    ``yibao.code_structure`` metadata, else ``national``.
    """
    national = _structure(source, code_structure, lambda: NS.declared_in_metadata(table.schema.metadata)) == "national"
    missing = [n for n in C.INSTITUTION.names if n not in table.column_names]
    if missing:
        raise table_error(source, f"missing columns {missing}", f"缺少列 {missing}")
    seen: dict[str, int] = {}
    for i, r in enumerate(table.select(C.INSTITUTION.names).to_pylist()):
        key = f"row {i}, fixmedins_code={r['fixmedins_code']!r}"
        probs = _problems(r, national, divisions)
        if probs:
            f, en, zh = probs[0]
            raise table_error(source, en, zh, key=key, field=f)
        if divisions is not None and r["admdvs"] not in divisions:
            raise table_error(
                source,
                f"division {r['admdvs']} is not in the division table",
                "医保区划不存在",
                key=key,
                field="admdvs",
            )
        if r["fixmedins_code"] in seen:
            raise table_error(
                source,
                f"duplicate code, first at row {seen[r['fixmedins_code']]}",
                "编码重复",
                key=key,
                field="fixmedins_code",
            )
        seen[r["fixmedins_code"]] = i


def load_institutions(
    path: str | Path, *, divisions: Divisions | None = None, code_structure: str | None = None
) -> pa.Table:
    """Load institutions from a CSV (columns of the contract) or Parquet file, validated.

    ``code_structure`` as in :func:`yibao.codes.load_med_list`: the parameter,
    else the file's declaration (``# code_structure: local`` in a CSV,
    ``yibao.code_structure`` in Parquet metadata), else ``national``.
    """
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        if not path.exists():
            raise table_error(path, "file not found", "文件不存在")
        raw = pq.read_table(path)
        cs = _structure(path, code_structure, lambda: NS.declared_in_metadata(raw.schema.metadata))
        table = (
            raw.select(C.INSTITUTION.names).cast(C.INSTITUTION).replace_schema_metadata({NS.METADATA_KEY: cs.encode()})
        )
        validate_institutions(table, source=path, divisions=divisions, code_structure=cs)
        return table
    cs = _structure(
        path,
        code_structure,
        lambda: NS.declared_in_csv(path.read_text(encoding="utf-8-sig")) if path.exists() else None,
    )
    national = cs == "national"
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, r in read_csv(path, C.INSTITUTION.names):
        key = f"fixmedins_code={r['fixmedins_code']!r}"
        lv = parse_int(r["hosp_lv"], 0)
        syn = parse_bool(r["synthetic"])
        row = {**r, "hosp_lv": lv, "synthetic": syn}
        if lv is None:
            raise table_error(
                path, f"hosp_lv {r['hosp_lv']!r} is not an integer", "等级须为整数", line=line, key=key, field="hosp_lv"
            )
        probs = _problems(row, national, divisions)
        if probs:
            f, en, zh = probs[0]
            raise table_error(path, en, zh, line=line, key=key, field=f)
        if divisions is not None and r["admdvs"] not in divisions:
            raise table_error(
                path,
                f"division {r['admdvs']} is not in the division table",
                "医保区划不存在",
                line=line,
                key=key,
                field="admdvs",
            )
        if r["fixmedins_code"] in seen:
            raise table_error(
                path,
                f"duplicate code, first on line {seen[r['fixmedins_code']]}",
                "编码重复",
                line=line,
                key=key,
                field="fixmedins_code",
            )
        seen[r["fixmedins_code"]] = line
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=C.INSTITUTION.with_metadata({NS.METADATA_KEY: cs.encode()}))
