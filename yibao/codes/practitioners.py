"""Practitioners (医保医师 / 医保护士 / 医保药师 and 药学、技术人员): the contract's ``PRACTITIONER`` table.

Columns use the national interface names of transaction 5102 (医执人员信息查询):
``prac_psn_code`` (执业人员代码, the code encounters carry as ``dr_code`` and fee
lines as ``bilg_dr_code``), ``prac_psn_name``, ``prac_psn_type`` (1 医师, 2 护士,
3 药师, 4 医技人员) and the ``fixmedins_code`` of the institution.

Under ``code_structure: national`` (the default) every code has the published
structure — ``D``/``N``/``Y`` + 6-digit division + 6-digit sequence, or
``HY``/``HJ`` + 6 + 6 (see ``yibao/data/codes/README.md``, which marks what is
uncertain) — its letters fit ``prac_psn_type``, and the embedded division
lies in the institution's province (and, given a division table, is in it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from yibao.codes import national_structures as NS
from yibao.codes._table import parse_bool, read_csv, table_error
from yibao.codes.divisions import Divisions
from yibao.core import contract as C
from yibao.core.errors import CodeTableError

_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,29}$")


def _problems(
    r: Mapping, national: bool, divisions: Divisions | None, inst_admdvs: Mapping[str, str] | None
) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    code, typ, inst = r["prac_psn_code"], r["prac_psn_type"], r["fixmedins_code"]
    if not isinstance(code, str) or not _CODE_RE.match(code):
        out.append(
            ("prac_psn_code", f"code {code!r} must be 1-30 letters, digits, '.', '_' or '-'", "执业人员代码格式无效")
        )
    elif national:
        try:
            parsed = NS.parse_practitioner_code(code, typ if typ in C.PRAC_PSN_TYPES else None)
            NS.check_division(parsed, divisions, admdvs=(inst_admdvs or {}).get(inst))
        except CodeTableError as exc:
            out.append(("prac_psn_code", exc.message_en, exc.message_zh))
    if not r["prac_psn_name"]:
        out.append(("prac_psn_name", "name is empty", "姓名为空"))
    if typ not in C.PRAC_PSN_TYPES:
        out.append(
            (
                "prac_psn_type",
                f"prac_psn_type {typ!r} is not one of {C.PRAC_PSN_TYPES} (1 医师, 2 护士, 3 药师, 4 医技人员)",
                "执业人员分类须为 1-4",
            )
        )
    if not inst:
        out.append(("fixmedins_code", "fixmedins_code is empty", "所属机构为空"))
    elif inst_admdvs is not None and inst not in inst_admdvs:
        out.append(("fixmedins_code", f"institution {inst!r} is not in the institution table", "所属机构不存在"))
    if not isinstance(r["synthetic"], bool):
        out.append(("synthetic", f"synthetic {r['synthetic']!r} must be true or false", "须为 true 或 false"))
    return out


def _structure(source: object, explicit: str | None, declared) -> str:
    try:
        return NS.resolve(explicit, declared())
    except CodeTableError as exc:
        raise table_error(source, exc.message_en, exc.message_zh, field="code_structure") from None


def _inst_admdvs(institutions: pa.Table | None) -> dict[str, str] | None:
    if institutions is None:
        return None
    return dict(
        zip(institutions.column("fixmedins_code").to_pylist(), institutions.column("admdvs").to_pylist(), strict=True)
    )


def validate_practitioners(
    table: pa.Table,
    *,
    source: object = "<practitioner table>",
    divisions: Divisions | None = None,
    institutions: pa.Table | None = None,
    code_structure: str | None = None,
) -> None:
    """Validate a contract ``practitioner`` table (rows numbered from 0).

    ``institutions``: the contract ``institution`` table every ``fixmedins_code``
    must be in (its ``admdvs`` is the province an embedded division must match).
    ``code_structure``: ``national`` or ``local``; default: the table's
    ``yibao.code_structure`` metadata, else ``national``.
    """
    national = _structure(source, code_structure, lambda: NS.declared_in_metadata(table.schema.metadata)) == "national"
    missing = [n for n in C.PRACTITIONER.names if n not in table.column_names]
    if missing:
        raise table_error(source, f"missing columns {missing}", f"缺少列 {missing}")
    admdvs = _inst_admdvs(institutions)
    seen: dict[str, int] = {}
    for i, r in enumerate(table.select(C.PRACTITIONER.names).to_pylist()):
        key = f"row {i}, prac_psn_code={r['prac_psn_code']!r}"
        probs = _problems(r, national, divisions, admdvs)
        if probs:
            f, en, zh = probs[0]
            raise table_error(source, en, zh, key=key, field=f)
        if r["prac_psn_code"] in seen:
            raise table_error(
                source,
                f"duplicate code, first at row {seen[r['prac_psn_code']]}",
                "编码重复",
                key=key,
                field="prac_psn_code",
            )
        seen[r["prac_psn_code"]] = i


def load_practitioners(
    path: str | Path,
    *,
    divisions: Divisions | None = None,
    institutions: pa.Table | None = None,
    code_structure: str | None = None,
) -> pa.Table:
    """Load practitioners from a CSV (the contract's columns) or Parquet file, validated.

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
            raw.select(C.PRACTITIONER.names)
            .cast(C.PRACTITIONER)
            .replace_schema_metadata({NS.METADATA_KEY: cs.encode()})
        )
        validate_practitioners(table, source=path, divisions=divisions, institutions=institutions, code_structure=cs)
        return table
    cs = _structure(
        path,
        code_structure,
        lambda: NS.declared_in_csv(path.read_text(encoding="utf-8-sig")) if path.exists() else None,
    )
    admdvs = _inst_admdvs(institutions)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, r in read_csv(path, C.PRACTITIONER.names):
        key = f"prac_psn_code={r['prac_psn_code']!r}"
        syn = parse_bool(r["synthetic"])
        row = {**r, "synthetic": syn}
        probs = _problems(row, cs == "national", divisions, admdvs)
        if probs:
            f, en, zh = probs[0]
            raise table_error(path, en, zh, line=line, key=key, field=f)
        if r["prac_psn_code"] in seen:
            raise table_error(
                path,
                f"duplicate code, first on line {seen[r['prac_psn_code']]}",
                "编码重复",
                line=line,
                key=key,
                field="prac_psn_code",
            )
        seen[r["prac_psn_code"]] = line
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=C.PRACTITIONER.with_metadata({NS.METADATA_KEY: cs.encode()}))
