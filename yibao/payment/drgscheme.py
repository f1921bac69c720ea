"""DRG grouping schemes as data (分组方案): the file format, local overrides, validation.

A scheme is a directory of long tables (one row per code), the shape in which
the national scheme is published, plus ``scheme.yaml``:

=======================  ====================================================================
``scheme.yaml``          ``format: 2``, ``name``, ``version``, ``effective_from``, ``label``,
                         ``source``; ``diagnosis_system`` / ``procedure_system`` (the code
                         dictionaries cases are checked against, :mod:`yibao.codes.national`);
                         ``match`` (``exact``, or ``prefix`` for schemes written as code
                         prefixes); ``base`` (a local scheme: the scheme it overrides)
``mdc.csv``              ``mdc, seq, entry, sex, newborn, multi_trauma, surgical_adrgs,
                         ambiguous_group, name``: MDCs in the order they are tried
``mdc_dx.csv``           ``mdc, code``: principal diagnoses that enter an MDC
``trauma_sites.csv``     ``code, region``: body region of an injury (MDC Z's two-region rule)
``adrg.csv``             ``adrg, mdc, seq, dx_cond, proc_cond, proc_combo, max_age_days,
                         weight_min_g, weight_max_g``: the conditions of each ADRG
``adrg_dx.csv``          ``adrg, code``: its diagnoses
``adrg_proc.csv``        ``adrg, code, list, label``: its procedures (list 1/2, combo label)
``drg.csv``              ``drg, adrg, seq, severity, rw, name`` (+ optional ``age_min, age_max``)
``cc.csv``               ``code, level (cc/mcc), exclusion_table``
``cc_exclusion.csv``     ``code, exclusion_table``: a principal diagnosis and the tables whose
                         CC/MCC do not count for it (one row per table)
``or_procedures.csv``    ``code``: operating-room procedures (手术室手术)
=======================  ====================================================================

The conditions an ADRG may state (all that it states must hold):

* ``dx_cond``: ``main`` — the principal diagnosis is in its list; ``any`` — some
  diagnosis (principal or secondary) is.
* ``proc_cond``: ``main`` — the principal procedure (the first coded) is in list 1;
  ``any`` — some procedure is; ``pair`` — some procedure of list 1 and some of list 2;
  ``combo`` — the procedures' labels cover ``proc_combo`` (``1&2|1&3&4``: labels 1 and 2,
  or 1, 3 and 4); ``main_or`` — the principal procedure is an operating-room procedure;
  ``no_or`` — no procedure is.
* ``max_age_days``: age in days at most this (a newborn; the age in days must be known);
  ``weight_min_g`` / ``weight_max_g``: birth weight band in grams, inclusive.

``severity`` in ``drg.csv`` is a ``|``-joined set of ``mcc``, ``cc``, ``none``, or one of
the aliases ``any`` (all three) and ``mcc_or_cc``.

**Local schemes.** A city's scheme is a directory whose ``scheme.yaml`` names
``base: chs-drg-1.1`` (or another scheme) and its own ``effective_from``; it holds
only the tables it changes, each with the same columns plus an optional
``action`` column: ``set`` (the default: add the row or replace the row with the
same key) or ``remove``.  Keys: ``mdc``; ``(mdc, code)``; ``code``; ``adrg``;
``(adrg, code)``; ``(adrg, code, list)``; ``drg``; ``code``; ``(code,
exclusion_table)``; ``code``.  A local scheme is therefore a dated override of the
national one, not a copy: the weights a region sets are one ``drg.csv`` with the
``rw`` column.

Every problem raises :class:`~yibao.core.errors.CodeTableError` naming the file,
the line and key, and the reason.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from yibao.codes import national
from yibao.codes._table import read_csv, table_error
from yibao.core.errors import CodeTableError
from yibao.core.yamldata import read_yaml

FORMAT = 2
E4 = 10_000
SEVERITY_LEVELS = ("none", "cc", "mcc")  # index = level
SEVERITY_ALIASES = {"any": frozenset({0, 1, 2}), "mcc_or_cc": frozenset({1, 2})}
DX_CONDS = ("", "main", "any")
PROC_CONDS = ("", "main", "any", "pair", "combo", "main_or", "no_or")
MDC_ENTRIES = ("main_dx", "adrgs")
UNGROUPABLE = "0000"
MAX_AGE = 150

# table -> (required columns, optional columns, key columns)
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "mdc.csv": (
        ("mdc", "seq", "entry"),
        ("sex", "newborn", "multi_trauma", "surgical_adrgs", "ambiguous_group", "name"),
        ("mdc",),
    ),
    "mdc_dx.csv": (("mdc", "code"), (), ("mdc", "code")),
    "trauma_sites.csv": (("code", "region"), (), ("code",)),
    "adrg.csv": (
        ("adrg", "mdc", "seq"),
        ("dx_cond", "proc_cond", "proc_combo", "max_age_days", "weight_min_g", "weight_max_g", "name"),
        ("adrg",),
    ),
    "adrg_dx.csv": (("adrg", "code"), (), ("adrg", "code")),
    "adrg_proc.csv": (("adrg", "code"), ("list", "label"), ("adrg", "code", "list")),
    "drg.csv": (("drg", "adrg", "seq", "severity"), ("rw", "name", "age_min", "age_max"), ("drg",)),
    "cc.csv": (("code", "level", "exclusion_table"), (), ("code",)),
    "cc_exclusion.csv": (("code", "exclusion_table"), (), ("code", "exclusion_table")),
    "or_procedures.csv": (("code",), (), ("code",)),
}
_DEFAULTS = {"list": "1"}


def _defaults_for(table: str) -> dict[str, str]:
    cols = (*TABLES[table][0], *TABLES[table][1])
    return {k: v for k, v in _DEFAULTS.items() if k in cols}


def schemes_root() -> Path:
    """``yibao/data/payment/drg``: one directory per shipped scheme."""
    return Path(str(resources.files("yibao") / "data" / "payment" / "drg"))


@dataclass(frozen=True)
class DrgRule:
    code: str
    adrg: str
    seq: int
    severities: frozenset[int]
    age_min: int
    age_max: int
    rw_e4: int | None  # relative weight × 10 000; None: the scheme sets none
    name: str


@dataclass(frozen=True)
class AdrgRule:
    code: str
    mdc: str
    seq: int
    dx_cond: str
    proc_cond: str
    combo: tuple[frozenset[str], ...]  # alternatives, each a set of labels that must all be present
    max_age_days: int | None
    weight_min_g: int | None
    weight_max_g: int | None
    dx: frozenset[str]
    proc1: frozenset[str]
    proc2: frozenset[str]
    labels: dict[str, frozenset[str]]  # procedure -> its combo labels
    drgs: tuple[DrgRule, ...]
    name: str

    def describe(self) -> str:
        """The ADRG's conditions in words (for ``--explain``)."""
        parts = []
        if self.dx_cond:
            parts.append(
                f"{'principal' if self.dx_cond == 'main' else 'any'} diagnosis in its list ({len(self.dx):,} codes)"
            )
        pc = {
            "main": f"principal procedure in its list ({len(self.proc1):,} codes)",
            "any": f"a procedure in its list ({len(self.proc1):,} codes)",
            "pair": f"a procedure of list 1 ({len(self.proc1):,}) and one of list 2 ({len(self.proc2):,})",
            "combo": "procedures covering labels " + "|".join("&".join(sorted(a)) for a in self.combo),
            "main_or": "principal procedure is an operating-room procedure",
            "no_or": "no operating-room procedure",
        }.get(self.proc_cond)
        if pc:
            parts.append(pc)
        if self.max_age_days is not None:
            parts.append(f"age ≤ {self.max_age_days} days")
        if self.weight_min_g is not None or self.weight_max_g is not None:
            lo = self.weight_min_g if self.weight_min_g is not None else 0
            hi = f"{self.weight_max_g} g" if self.weight_max_g is not None else "and above"
            parts.append(f"birth weight {lo}–{hi}")
        return "; ".join(parts) or "always (the MDC's catch-all)"


@dataclass(frozen=True)
class MdcRule:
    code: str
    seq: int
    entry: str
    sex: str
    newborn: bool
    multi_trauma: bool
    surgical_adrgs: int
    ambiguous_group: bool
    name: str
    dx: frozenset[str]
    adrgs: tuple[AdrgRule, ...]


@dataclass
class SchemeMeta:
    name: str
    version: str
    effective_from: dt.date
    label: str
    diagnosis_system: str
    procedure_system: str
    match: str
    base: str | None
    path: Path
    source: dict = field(default_factory=dict)
    outside_dx: frozenset[str] = frozenset()
    outside_proc: frozenset[str] = frozenset()


def _date(v, f: Path, key: str) -> dt.date:
    if isinstance(v, dt.date):
        return v
    try:
        return dt.date.fromisoformat(str(v))
    except ValueError:
        raise CodeTableError(
            f"{f}: {key} {v!r} is not a date (YYYY-MM-DD)", f"{f}: {key} 不是有效日期", field=key
        ) from None


def read_meta(path: Path) -> SchemeMeta:
    f = Path(path) / "scheme.yaml"
    if not f.exists():
        raise CodeTableError(f"{f}: scheme file not found", f"{f}: 找不到分组方案", field="scheme")
    m = read_yaml(f, what=("grouping scheme file", "分组方案文件"), error=CodeTableError, empty={})
    if m.get("format") != FORMAT:
        raise CodeTableError(
            f"{f}: format must be {FORMAT} (got {m.get('format')!r})", f"{f}: 方案格式版本应为 {FORMAT}", field="format"
        )
    for k in ("name", "version", "effective_from"):
        if k not in m:
            raise CodeTableError(f"{f}: missing {k!r}", f"{f}: 缺少 {k!r}", field=k)
    base = m.get("base")
    dxs = m.get("diagnosis_system", national.DX_NATIONAL)
    prs = m.get("procedure_system", national.PROC_NATIONAL)
    if dxs not in national.DX_SYSTEMS:
        raise CodeTableError(
            f"{f}: diagnosis_system {dxs!r} is not one of {national.DX_SYSTEMS}",
            f"{f}: 未知的诊断编码体系",
            field="diagnosis_system",
        )
    if prs not in (*national.PROC_SYSTEMS, "sample"):
        raise CodeTableError(
            f"{f}: procedure_system {prs!r} is not one of {(*national.PROC_SYSTEMS, 'sample')}",
            f"{f}: 未知的手术操作编码体系",
            field="procedure_system",
        )
    match = m.get("match", "exact")
    if match not in ("exact", "prefix"):
        raise CodeTableError(f"{f}: match must be exact or prefix", f"{f}: match 须为 exact 或 prefix", field="match")
    out = m.get("codes_outside_dictionary") or {}
    return SchemeMeta(
        name=str(m["name"]),
        version=str(m["version"]),
        effective_from=_date(m["effective_from"], f, "effective_from"),
        label=str(m.get("label", "")),
        diagnosis_system=dxs,
        procedure_system=prs,
        match=match,
        base=str(base) if base else None,
        path=Path(path),
        source=m.get("source") or {},
        outside_dx=frozenset(out.get("diagnoses") or ()),
        outside_proc=frozenset(out.get("procedures") or ()),
    )


def find_scheme_dir(name_or_path: str | Path, on: dt.date | None = None, *, search: tuple[Path, ...] = ()) -> Path:
    """The directory of a scheme given by path, or by name (the version in force ``on``; default the latest)."""
    p = Path(name_or_path)
    if p.is_dir():
        return p
    roots = (*search, schemes_root())
    found: list[tuple[dt.date, Path]] = []
    for root in roots:
        if not root.is_dir():
            continue
        for d in sorted(root.iterdir()):
            if (d / "scheme.yaml").exists():
                try:
                    meta = read_meta(d)
                except CodeTableError:
                    continue
                if meta.name == str(name_or_path):
                    found.append((meta.effective_from, d))
    if not found:
        known = sorted(
            {read_meta(d).name for r in roots if r.is_dir() for d in r.iterdir() if (d / "scheme.yaml").exists()}
        )
        raise CodeTableError(
            f"unknown DRG scheme {str(name_or_path)!r}; known: {known}",
            f"未知的 DRG 分组方案 {str(name_or_path)!r}",
            field="scheme",
        )
    found.sort()
    if on is not None:
        inforce = [x for x in found if x[0] <= on]
        if not inforce:
            raise CodeTableError(
                f"DRG scheme {str(name_or_path)!r} is not in force on {on} (first version from {found[0][0]})",
                f"DRG 分组方案 {str(name_or_path)!r} 在 {on} 尚未生效",
                field="scheme",
            )
        return inforce[-1][1]
    return found[-1][1]


def _read_table(path: Path, table: str, *, local: bool) -> list[tuple[int, dict[str, str]]] | None:
    f = path / table
    if not f.exists():
        if local:
            return None
        raise table_error(f, "file not found", "文件不存在")
    req, opt, _ = TABLES[table]
    rows = []
    header = set(_header(f))
    for line, r in read_csv(f, req, optional=(*opt, *(("action",) if local else ()))):
        for k, v in _DEFAULTS.items():
            if k in r and r[k] == "":
                r[k] = v
        if local:  # columns the override's file leaves out keep the base's values
            r = {k: v for k, v in r.items() if k in header or k in req}
        rows.append((line, r))
    return rows


def _header(f: Path) -> list[str]:
    import csv

    for ln in f.read_text(encoding="utf-8-sig").splitlines():
        if ln.strip() and not ln.lstrip().startswith("#"):
            return [h.strip() for h in next(csv.reader([ln]))]
    return []


def merged_tables(
    path: Path, on: dt.date | None = None, _depth: int = 0
) -> tuple[SchemeMeta, dict[str, list[tuple[Path, int, dict[str, str]]]], list[SchemeMeta]]:
    """Every table of the scheme at ``path`` with its bases applied (base first, then each override)."""
    meta = read_meta(path)
    if _depth > 8:
        raise CodeTableError(f"{path}: base chain too deep (a cycle?)", f"{path}: 基础方案链过深", field="base")
    if meta.base:
        base_dir = find_scheme_dir(meta.base, meta.effective_from, search=(path.parent,))
        bmeta, tables, chain = merged_tables(base_dir, meta.effective_from, _depth + 1)
        if meta.effective_from < bmeta.effective_from:
            raise CodeTableError(
                f"{path}/scheme.yaml: effective_from {meta.effective_from} is before its base's "
                f"({bmeta.effective_from})",
                "本地方案生效日期早于基础方案",
                field="effective_from",
            )
        for table, (_, _, key) in TABLES.items():
            rows = _read_table(path, table, local=True)
            if rows is None:
                continue
            cur = {tuple(r[k] for k in key): (src, line, r) for src, line, r in tables[table]}
            for line, r in rows:
                act = r.pop("action", "") or "set"
                k = tuple(r[c] for c in key)
                if act == "remove":
                    if k not in cur:
                        raise table_error(
                            path / table,
                            f"remove: no row {dict(zip(key, k, strict=True))} in the base scheme",
                            "删除的行在基础方案中不存在",
                            line=line,
                            key=str(dict(zip(key, k, strict=True))),
                            field="action",
                        )
                    del cur[k]
                elif act == "set":
                    if k in cur:  # keep the base's optional columns the override leaves out
                        r = {**cur[k][2], **r}
                    else:
                        r = {**{c: "" for c in (*TABLES[table][0], *TABLES[table][1])}, **_defaults_for(table), **r}
                    cur[k] = (path / table, line, r)
                else:
                    raise table_error(
                        path / table,
                        f"action {act!r} must be set or remove",
                        "action 须为 set 或 remove",
                        line=line,
                        field="action",
                    )
            tables[table] = list(cur.values())
        for attr in ("diagnosis_system", "procedure_system", "match"):
            setattr(meta, attr, getattr(bmeta, attr))
        meta.outside_dx, meta.outside_proc = bmeta.outside_dx | meta.outside_dx, bmeta.outside_proc | meta.outside_proc
        return meta, tables, [*chain, meta]
    tables = {}
    for table in TABLES:
        f = path / table
        rows = _read_table(path, table, local=False)
        assert rows is not None  # a base scheme's missing table raises instead
        tables[table] = [(f, line, r) for line, r in rows]
    return meta, tables, [meta]


def _int(v: str, f, line, key, fld, lo=0, hi=10**9, empty=None):
    if v == "":
        if empty is ...:
            raise table_error(f, f"{fld} is empty", f"{fld} 为空", line=line, key=key, field=fld)
        return empty
    try:
        x = int(v)
    except ValueError:
        raise table_error(
            f, f"{fld} {v!r} is not a whole number", f"{fld} 须为整数", line=line, key=key, field=fld
        ) from None
    if not lo <= x <= hi:
        raise table_error(f, f"{fld} {x} outside {lo}..{hi}", f"{fld} 超出范围", line=line, key=key, field=fld)
    return x


def _severities(v: str, f, line, key) -> frozenset[int]:
    if v in SEVERITY_ALIASES:
        return SEVERITY_ALIASES[v]
    parts = v.split("|")
    if not v or any(p not in SEVERITY_LEVELS for p in parts):
        raise table_error(
            f,
            f"severity {v!r} must be any, mcc_or_cc or '|'-joined mcc/cc/none",
            "严重程度无效",
            line=line,
            key=key,
            field="severity",
        )
    return frozenset(SEVERITY_LEVELS.index(p) for p in parts)


_COMBO_RE = re.compile(r"^[0-9A-Za-z]+(&[0-9A-Za-z]+)*(\|[0-9A-Za-z]+(&[0-9A-Za-z]+)*)*$")


Row = tuple[Path, int, dict[str, str]]  # (file, line, row) of a merged table
CodeCheck = Callable[..., None]  # check_dx / check_proc: (file, line, code, fld="code") -> None, raises if unknown


def _compile_mdc_row(f: Path, line: int, r: dict[str, str], mdc_rows: dict, seqs: dict[int, str]) -> int:
    """Validate one row of ``mdc.csv``; returns its seq."""
    key = f"mdc={r['mdc']!r}"
    if not r["mdc"] or r["mdc"] in mdc_rows:
        raise table_error(f, "empty or duplicate MDC", "MDC 为空或重复", line=line, key=key, field="mdc")
    if r["entry"] not in MDC_ENTRIES:
        raise table_error(
            f,
            f"entry {r['entry']!r} must be one of {MDC_ENTRIES}",
            "entry 无效",
            line=line,
            key=key,
            field="entry",
        )
    seq = _int(r["seq"], f, line, key, "seq", empty=...)
    if seq in seqs:
        raise table_error(f, f"seq {seq} is also MDC {seqs[seq]!r}'s", "seq 重复", line=line, key=key, field="seq")
    if r.get("sex", "") not in ("", "1", "2"):
        raise table_error(
            f, "sex must be '', 1 (male) or 2 (female)", "性别须为空、1 或 2", line=line, key=key, field="sex"
        )
    if r.get("newborn", "") not in ("", "under_1_year"):
        raise table_error(f, "newborn must be '' or under_1_year", "newborn 无效", line=line, key=key, field="newborn")
    for k in ("multi_trauma", "ambiguous_group"):
        if r.get(k, "") not in ("", "yes"):
            raise table_error(f, f"{k} must be '' or yes", f"{k} 须为空或 yes", line=line, key=key, field=k)
    return seq


def _compile_mdcs(
    t: dict[str, list[Row]], check_dx: CodeCheck
) -> tuple[dict[str, tuple[Path, int, dict[str, str], int]], dict[str, set[str]]]:
    """``mdc.csv`` and ``mdc_dx.csv``: the MDC rows by code (with their seq) and each MDC's principal diagnoses."""
    mdc_rows: dict[str, tuple[Path, int, dict[str, str], int]] = {}
    seqs: dict[int, str] = {}
    for f, line, r in t["mdc.csv"]:
        seq = _compile_mdc_row(f, line, r, mdc_rows, seqs)
        seqs[seq] = r["mdc"]
        mdc_rows[r["mdc"]] = (f, line, r, seq)
    mdc_dx: dict[str, set[str]] = {k: set() for k in mdc_rows}
    for f, line, r in t["mdc_dx.csv"]:
        if r["mdc"] not in mdc_rows:
            raise table_error(
                f, f"unknown MDC {r['mdc']!r}", "未知 MDC", line=line, key=f"mdc={r['mdc']!r}", field="mdc"
            )
        check_dx(f, line, r["code"])
        mdc_dx[r["mdc"]].add(r["code"])
    return mdc_rows, mdc_dx


def _compile_trauma(t: dict[str, list[Row]], check_dx: CodeCheck) -> dict[str, str]:
    """``trauma_sites.csv``: the body region of each trauma diagnosis."""
    trauma: dict[str, str] = {}
    for f, line, r in t["trauma_sites.csv"]:
        check_dx(f, line, r["code"])
        if not r["region"]:
            raise table_error(f, "empty region", "部位为空", line=line, key=f"code={r['code']!r}", field="region")
        trauma[r["code"]] = r["region"]
    return trauma


def _adrg_combo(f: Path, line: int, key: str, r: dict[str, str]) -> tuple[frozenset[str], ...]:
    """The procedure-label alternatives of a ``combo`` ADRG (``1&2|1&3&4``); empty for other conditions."""
    if r.get("proc_cond") == "combo":
        c = r.get("proc_combo", "")
        if not _COMBO_RE.match(c):
            raise table_error(
                f,
                f"proc_combo {c!r} must look like 1&2|1&3&4",
                "proc_combo 无效",
                line=line,
                key=key,
                field="proc_combo",
            )
        return tuple(frozenset(alt.split("&")) for alt in c.split("|"))
    if r.get("proc_combo"):
        raise table_error(
            f,
            "proc_combo is only for proc_cond combo",
            "仅 combo 条件可填 proc_combo",
            line=line,
            key=key,
            field="proc_combo",
        )
    return ()


def _compile_adrg_row(f: Path, line: int, r: dict[str, str], a_rows: dict, mdc_rows: dict) -> dict[str, Any]:
    """Validate one row of ``adrg.csv``; returns its working record (lists filled from the other tables later)."""
    key = f"adrg={r['adrg']!r}"
    if not r["adrg"] or r["adrg"] in a_rows:
        raise table_error(f, "empty or duplicate ADRG", "ADRG 为空或重复", line=line, key=key, field="adrg")
    if r["adrg"] == UNGROUPABLE or r["adrg"].endswith("QY"):
        raise table_error(
            f,
            f"{r['adrg']!r} is reserved (0000 ungroupable, <MDC>QY ambiguous)",
            "保留编码",
            line=line,
            key=key,
            field="adrg",
        )
    if r["mdc"] not in mdc_rows:
        raise table_error(f, f"unknown MDC {r['mdc']!r}", "未知 MDC", line=line, key=key, field="mdc")
    if r.get("dx_cond", "") not in DX_CONDS:
        raise table_error(f, f"dx_cond must be one of {DX_CONDS}", "dx_cond 无效", line=line, key=key, field="dx_cond")
    if r.get("proc_cond", "") not in PROC_CONDS:
        raise table_error(
            f, f"proc_cond must be one of {PROC_CONDS}", "proc_cond 无效", line=line, key=key, field="proc_cond"
        )
    combo = _adrg_combo(f, line, key, r)
    seq = _int(r["seq"], f, line, key, "seq", empty=...)
    mad = _int(r.get("max_age_days", ""), f, line, key, "max_age_days", 0, 366)
    wmin = _int(r.get("weight_min_g", ""), f, line, key, "weight_min_g", 0, 10000)
    wmax = _int(r.get("weight_max_g", ""), f, line, key, "weight_max_g", 0, 10000)
    if wmin is not None and wmax is not None and wmin > wmax:
        raise table_error(
            f, "weight_min_g > weight_max_g", "体重下限大于上限", line=line, key=key, field="weight_min_g"
        )
    return dict(
        f=f,
        line=line,
        r=r,
        seq=seq,
        combo=combo,
        mad=mad,
        wmin=wmin,
        wmax=wmax,
        dx=set(),
        p1=set(),
        p2=set(),
        labels={},
    )


def _compile_adrgs(
    t: dict[str, list[Row]], mdc_rows: dict, check_dx: CodeCheck, check_proc: CodeCheck
) -> dict[str, dict[str, Any]]:
    """``adrg.csv`` with its diagnosis and procedure lists (``adrg_dx.csv``, ``adrg_proc.csv``)."""
    a_rows: dict[str, dict[str, Any]] = {}
    for f, line, r in t["adrg.csv"]:
        a_rows[r["adrg"]] = _compile_adrg_row(f, line, r, a_rows, mdc_rows)
    for f, line, r in t["adrg_dx.csv"]:
        if r["adrg"] not in a_rows:
            raise table_error(
                f, f"unknown ADRG {r['adrg']!r}", "未知 ADRG", line=line, key=f"adrg={r['adrg']!r}", field="adrg"
            )
        check_dx(f, line, r["code"])
        a_rows[r["adrg"]]["dx"].add(r["code"])
    for f, line, r in t["adrg_proc.csv"]:
        a = a_rows.get(r["adrg"])
        if a is None:
            raise table_error(
                f, f"unknown ADRG {r['adrg']!r}", "未知 ADRG", line=line, key=f"adrg={r['adrg']!r}", field="adrg"
            )
        check_proc(f, line, r["code"])
        if r["list"] not in ("1", "2"):
            raise table_error(
                f, "list must be 1 or 2", "list 须为 1 或 2", line=line, key=f"code={r['code']!r}", field="list"
            )
        a["p1" if r["list"] == "1" else "p2"].add(r["code"])
        if r.get("label"):
            a["labels"].setdefault(r["code"], set()).add(r["label"])
    return a_rows


def _drg_rw(f: Path, line: int, key: str, r: dict[str, str]) -> int | None:
    """A DRG's relative weight × 10 000 (None: the scheme sets none)."""
    if not r.get("rw", ""):
        return None
    try:
        x = Decimal(r["rw"]) * E4
        if not x.is_finite() or x != x.to_integral_value() or x < 0:
            raise InvalidOperation
        return int(x)
    except InvalidOperation:
        raise table_error(
            f,
            f"rw {r['rw']!r} must be a non-negative number with at most 4 decimals",
            "权重无效",
            line=line,
            key=key,
            field="rw",
        ) from None


def _drg_rule(f: Path, line: int, key: str, r: dict[str, str], rw: int | None) -> DrgRule:
    """One ordinary DRG row (of a known ADRG) as its rule."""
    a0 = _int(r.get("age_min", ""), f, line, key, "age_min", -1, MAX_AGE, -1)
    a1 = _int(r.get("age_max", ""), f, line, key, "age_max", -1, MAX_AGE, -1)
    a0, a1 = (0 if a0 < 0 else a0), (MAX_AGE if a1 < 0 else a1)
    if a0 > a1:
        raise table_error(f, "age_min > age_max", "最小年龄大于最大年龄", line=line, key=key, field="age_min")
    return DrgRule(
        r["drg"],
        r["adrg"],
        _int(r["seq"], f, line, key, "seq", empty=...),
        _severities(r["severity"], f, line, key),
        a0,
        a1,
        rw,
        r.get("name", ""),
    )


def _compile_drgs(
    t: dict[str, list[Row]], mdc_rows: dict, a_rows: dict
) -> tuple[dict[str, list[DrgRule]], dict[str, int | None]]:
    """``drg.csv``: the DRGs of each ADRG, and the weights of the special groups (0000 ungroupable, <MDC>QY)."""
    drgs_of: dict[str, list[DrgRule]] = {}
    special_rw: dict[str, int | None] = {}
    seen: set[str] = set()
    for f, line, r in t["drg.csv"]:
        key = f"drg={r['drg']!r}"
        if not r["drg"] or r["drg"] in seen:
            raise table_error(f, "empty or duplicate DRG", "DRG 为空或重复", line=line, key=key, field="drg")
        seen.add(r["drg"])
        rw = _drg_rw(f, line, key, r)
        special = r["adrg"] == UNGROUPABLE or (r["adrg"].endswith("QY") and r["adrg"][:-2] in mdc_rows)
        if special:
            if r["drg"] != r["adrg"]:
                raise table_error(
                    f,
                    f"the DRG of {r['adrg']!r} is {r['adrg']!r} itself",
                    "歧义组/未入组的 DRG 编码须与其 ADRG 相同",
                    line=line,
                    key=key,
                    field="drg",
                )
            special_rw[r["drg"]] = rw
            continue
        if r["adrg"] not in a_rows:
            raise table_error(f, f"unknown ADRG {r['adrg']!r}", "未知 ADRG", line=line, key=key, field="adrg")
        drgs_of.setdefault(r["adrg"], []).append(_drg_rule(f, line, key, r, rw))
    return drgs_of, special_rw


def _compile_cc(t: dict[str, list[Row]], check_dx: CodeCheck) -> dict[str, tuple[int, str]]:
    """``cc.csv``: each CC/MCC code's level and exclusion table."""
    cc: dict[str, tuple[int, str]] = {}
    for f, line, r in t["cc.csv"]:
        key = f"code={r['code']!r}"
        check_dx(f, line, r["code"])
        if r["level"] not in ("cc", "mcc"):
            raise table_error(f, "level must be cc or mcc", "级别须为 cc 或 mcc", line=line, key=key, field="level")
        cc[r["code"]] = (SEVERITY_LEVELS.index(r["level"]), r["exclusion_table"])
    return cc


def _compile_cc_exclusion(t: dict[str, list[Row]], check_dx: CodeCheck) -> dict[str, frozenset[str]]:
    """``cc_exclusion.csv``: the exclusion tables each principal diagnosis belongs to."""
    ex: dict[str, set[str]] = {}
    for f, line, r in t["cc_exclusion.csv"]:
        check_dx(f, line, r["code"])
        if not r["exclusion_table"]:
            raise table_error(
                f,
                "empty exclusion_table",
                "排除表为空",
                line=line,
                key=f"code={r['code']!r}",
                field="exclusion_table",
            )
        ex.setdefault(r["code"], set()).add(r["exclusion_table"])
    return {k: frozenset(v) for k, v in ex.items()}


def _check_adrg_lists(acode: str, a: dict[str, Any]) -> None:
    """An ADRG's conditions have the lists they need (diagnoses, list-1/list-2 procedures, combo labels)."""
    r2 = a["r"]
    akey = f"adrg={acode!r}"
    dxc, pc = r2.get("dx_cond", ""), r2.get("proc_cond", "")
    if dxc and not a["dx"]:
        raise table_error(
            a["f"],
            f"dx_cond {dxc} but no diagnoses in adrg_dx.csv",
            "缺少诊断列表",
            line=a["line"],
            key=akey,
            field="dx_cond",
        )
    if pc in ("main", "any", "pair", "combo") and not a["p1"]:
        raise table_error(
            a["f"],
            f"proc_cond {pc} but no list-1 procedures in adrg_proc.csv",
            "缺少手术操作列表",
            line=a["line"],
            key=akey,
            field="proc_cond",
        )
    if pc == "pair" and not a["p2"]:
        raise table_error(
            a["f"],
            "proc_cond pair but no list-2 procedures",
            "缺少第二手术操作列表",
            line=a["line"],
            key=akey,
            field="proc_cond",
        )
    if pc == "combo":
        have = {lab for labs in a["labels"].values() for lab in labs}
        need = {lab for alt in a["combo"] for lab in alt}
        if need - have:
            raise table_error(
                a["f"],
                f"proc_combo labels {sorted(need - have)} have no procedures",
                "组合标签缺少手术操作",
                line=a["line"],
                key=akey,
                field="proc_combo",
            )


def _adrg_rule(scheme_path: Path, acode: str, mdc: str, a: dict[str, Any], drgs: list[DrgRule]) -> AdrgRule:
    """One ADRG assembled: its lists checked, its DRGs ordered and covering every severity at every age."""
    _check_adrg_lists(acode, a)
    r2 = a["r"]
    akey = f"adrg={acode!r}"
    ds = sorted(drgs, key=lambda d: d.seq)
    if not ds:
        raise table_error(
            a["f"], "ADRG without DRGs (drg.csv)", "ADRG 没有 DRG", line=a["line"], key=akey, field="adrg"
        )
    for s in range(3):  # coverage: every severity at every age has a DRG
        for age in range(MAX_AGE + 1):
            if not any(s in d.severities and d.age_min <= age <= d.age_max for d in ds):
                raise table_error(
                    scheme_path / "drg.csv",
                    f"ADRG {acode!r} has no DRG for severity {SEVERITY_LEVELS[s]} at age {age}",
                    f"ADRG {acode!r} 缺少严重程度 {SEVERITY_LEVELS[s]}、年龄 {age} 的 DRG",
                    key=akey,
                    field="drg",
                )
    return AdrgRule(
        acode,
        mdc,
        a["seq"],
        r2.get("dx_cond", ""),
        r2.get("proc_cond", ""),
        a["combo"],
        a["mad"],
        a["wmin"],
        a["wmax"],
        frozenset(a["dx"]),
        frozenset(a["p1"]),
        frozenset(a["p2"]),
        {k: frozenset(v) for k, v in a["labels"].items()},
        tuple(ds),
        r2.get("name", ""),
    )


def _check_mdc_entry(
    f: Path, line: int, code: str, r: dict[str, str], n_surg: int, mdc_dx: set[str], has_trauma: bool
) -> bool:
    """The MDC's entry, ambiguous-group and multi-trauma settings hold together; returns whether it has a QY group."""
    amb = r.get("ambiguous_group") == "yes"
    if amb and (r["entry"] != "main_dx" or n_surg == 0):
        raise table_error(
            f,
            "an ambiguous group needs entry main_dx and surgical_adrgs > 0",
            "歧义组需按主要诊断入组且有手术 ADRG",
            line=line,
            key=f"mdc={code!r}",
            field="ambiguous_group",
        )
    if r["entry"] == "main_dx" and not mdc_dx:
        raise table_error(
            f,
            "entry main_dx but no diagnoses in mdc_dx.csv",
            "缺少主要诊断列表",
            line=line,
            key=f"mdc={code!r}",
            field="entry",
        )
    if r.get("multi_trauma") == "yes" and not has_trauma:
        raise table_error(
            f,
            "multi_trauma needs trauma_sites.csv rows",
            "缺少创伤部位表",
            line=line,
            key=f"mdc={code!r}",
            field="multi_trauma",
        )
    return amb


class SchemeTables:
    """A scheme's merged and validated tables, compiled into lookup structures (hash sets)."""

    def __init__(self, path: str | Path, on: dt.date | None = None):
        self.path = Path(path)
        self.meta, t, self.chain = merged_tables(self.path, on)
        m = self.meta
        self.name, self.version, self.label, self.effective_from = m.name, m.version, m.label, m.effective_from
        self.prefix = m.match == "prefix"
        dx_ok, proc_ok = self._code_checks()

        def check_dx(f, line, code, fld="code"):
            if not dx_ok(code):
                raise table_error(
                    f,
                    f"diagnosis {code!r} is not in {m.diagnosis_system} (nor declared in codes_outside_dictionary)",
                    f"诊断编码 {code!r} 不在 {m.diagnosis_system} 中",
                    line=line,
                    key=f"{fld}={code!r}",
                    field=fld,
                )

        def check_proc(f, line, code, fld="code"):
            if not proc_ok(code):
                raise table_error(
                    f,
                    f"procedure {code!r} is not in {m.procedure_system} (nor declared in codes_outside_dictionary)",
                    f"手术操作编码 {code!r} 不在 {m.procedure_system} 中",
                    line=line,
                    key=f"{fld}={code!r}",
                    field=fld,
                )

        mdc_rows, mdc_dx = _compile_mdcs(t, check_dx)
        self.trauma: dict[str, str] = _compile_trauma(t, check_dx)
        self.trauma_regions = tuple(sorted(set(self.trauma.values())))
        a_rows = _compile_adrgs(t, mdc_rows, check_dx, check_proc)
        drgs_of, self.special_rw = _compile_drgs(t, mdc_rows, a_rows)
        self.cc: dict[str, tuple[int, str]] = _compile_cc(t, check_dx)
        self.cc_exclusion: dict[str, frozenset[str]] = _compile_cc_exclusion(t, check_dx)
        self.or_procedures = frozenset(
            r["code"] for f, line, r in t["or_procedures.csv"] if check_proc(f, line, r["code"]) is None
        )
        self.adrgs: dict[str, AdrgRule] = {}
        self.mdcs: tuple[MdcRule, ...] = self._assemble(mdc_rows, mdc_dx, a_rows, drgs_of)
        for acode in drgs_of:
            if acode not in self.adrgs:  # pragma: no cover - checked per row above
                raise table_error(self.path / "drg.csv", f"unknown ADRG {acode!r}", "未知 ADRG", field="adrg")
        self.drgs: dict[str, DrgRule] = {d.code: d for ds in drgs_of.values() for d in ds}

    def _assemble(
        self,
        mdc_rows: dict[str, tuple[Path, int, dict[str, str], int]],
        mdc_dx: dict[str, set[str]],
        a_rows: dict[str, dict[str, Any]],
        drgs_of: dict[str, list[DrgRule]],
    ) -> tuple[MdcRule, ...]:
        """The MDCs in seq order with their ADRGs (filling ``self.adrgs``), after the cross-table checks."""
        mdcs: list[MdcRule] = []
        for code, (f, line, r, seq) in sorted(mdc_rows.items(), key=lambda kv: kv[1][3]):
            mine = sorted((a for a in a_rows.items() if a[1]["r"]["mdc"] == code), key=lambda kv: kv[1]["seq"])
            seqs_a = [a[1]["seq"] for a in mine]
            if len(set(seqs_a)) != len(seqs_a):
                raise table_error(
                    f,
                    f"two ADRGs of MDC {code!r} share a seq",
                    "同一 MDC 内 ADRG 顺序号重复",
                    line=line,
                    key=f"mdc={code!r}",
                    field="seq",
                )
            rules = []
            for acode, a in mine:
                rule = _adrg_rule(self.path, acode, code, a, drgs_of.get(acode, []))
                rules.append(rule)
                self.adrgs[acode] = rule
            n_surg = _int(r.get("surgical_adrgs", ""), f, line, f"mdc={code!r}", "surgical_adrgs", 0, len(rules), 0)
            amb = _check_mdc_entry(f, line, code, r, n_surg, mdc_dx[code], bool(self.trauma))
            mdcs.append(
                MdcRule(
                    code,
                    seq,
                    r["entry"],
                    r.get("sex", ""),
                    r.get("newborn") == "under_1_year",
                    r.get("multi_trauma") == "yes",
                    n_surg,
                    amb,
                    r.get("name", ""),
                    frozenset(mdc_dx[code]),
                    tuple(rules),
                )
            )
        return tuple(mdcs)

    def _code_checks(self):
        m = self.meta
        if m.match == "prefix":
            if m.diagnosis_system == national.DX_WHO:
                from yibao.codes.icd10 import is_valid_icd10_prefix

                dx_ok = is_valid_icd10_prefix
            else:
                codes = sorted(national.national_dx_codes())
                import bisect

                def dx_ok(p):
                    i = bisect.bisect_left(codes, p)
                    return i < len(codes) and codes[i].startswith(p)

            return dx_ok, (lambda p: bool(re.match(r"^[0-9]{2}(\.[0-9x]{0,6})?$", p)))
        if m.diagnosis_system == national.DX_NATIONAL:
            dset = national.national_dx_codes() | m.outside_dx
        else:
            from yibao.codes.icd10 import is_valid_icd10

            return (lambda c: is_valid_icd10(c) or c in m.outside_dx), (
                lambda c: c in national.national_proc_codes() or c in m.outside_proc
            )
        pset = national.national_proc_codes() | m.outside_proc
        return dset.__contains__, pset.__contains__
