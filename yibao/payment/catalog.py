"""The DIP catalog (病种目录库): building it from a year of cases, and versioned catalog files.

Building (DuckDB SQL over the enriched cases, see :mod:`yibao.payment.cases`):

1. **Core groups (核心病种)**: principal diagnosis key × procedure combination
   with at least ``core_min_cases`` cases.
2. **Comprehensive groups (综合病种)**: the remaining cases pooled by ICD-10
   category × procedure type (conservative, diagnostic, therapy, surgery);
   a pool smaller than ``comprehensive_min_cases`` is pooled again by ICD-10
   chapter × procedure type (kept whatever its size).
3. **Points (病种分值)**: group mean cost ÷ mean cost of all cases × scale,
   rounded half up to 0.0001 point; exact integer arithmetic:
   ``points_e4 = round(sum_g · n_all · scale_e4 / (n_g · sum_all))``.

A catalog is a directory holding ``catalog.yaml`` (region, version, effective
date, how it was built, the overall mean) and ``groups.csv``; a region can
load its *published* catalog instead of building one (only ``group_code``,
``kind``, ``dx_key``, ``proc_key``, ``proc_type`` and ``points`` are needed;
a missing ``mean_cost`` is derived as points ÷ scale × overall mean).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb
import pyarrow as pa
import yaml

from yibao.core.errors import CodeTableError
from yibao.core.money import fen_to_yuan, yuan_to_fen
from yibao.core.yamldata import read_yaml
from yibao.payment.params import E4, PROC_TYPES, DipParams

KINDS = ("core", "comprehensive")
LEVELS = ("combination", "category", "chapter")
GROUPS_SCHEMA = pa.schema(
    [
        ("group_code", pa.string()),
        ("kind", pa.string()),  # core / comprehensive
        ("level", pa.string()),  # combination / category / chapter
        ("dx_key", pa.string()),  # diagnosis key at the level (code, category or chapter)
        ("proc_key", pa.string()),  # combination: procedure codes joined by '+'; comprehensive: ''
        ("proc_type", pa.string()),
        ("n_cases", pa.int64()),
        ("mean_cost_fen", pa.int64()),
        ("points_e4", pa.int64()),
    ]
)
CSV_COLUMNS = ("group_code", "kind", "level", "dx_key", "proc_key", "proc_type", "n_cases", "mean_cost", "points")


def round_div(num: int, den: int) -> int:
    """``num / den`` rounded half away from zero (integers; ``den > 0``): the rounding SQL reproduces."""
    q = (2 * abs(num) + den) // (2 * den)
    return q if num >= 0 else -q


def round_div_sql(num: str, den: str) -> str:
    """SQL of :func:`round_div` in HUGEINT (DuckDB's ``//`` truncates, so work on the absolute value)."""
    return (
        f"(sign({num}) * ((2 * abs(CAST({num} AS HUGEINT)) + CAST({den} AS HUGEINT)) // (2 * CAST({den} AS HUGEINT))))"
    )


def _load_catalog_meta(mf: Path) -> tuple[dict, int, int, int]:
    """``catalog.yaml``: (meta, scale × 10 000, cases, total cost in fen) behind the points, validated."""
    meta = read_yaml(mf, what=("catalog file", "目录文件"), error=CodeTableError, empty={})
    for k in ("region", "version", "effective_from", "scale", "diagnosis_level"):
        if k not in meta:
            raise CodeTableError(f"{mf}: missing {k!r}", f"{mf}: 缺少 {k!r}", field=k)
    try:
        scale_e4 = int(Decimal(str(meta["scale"])) * E4)
        if "n_cases" in meta and "total_cost" in meta:
            n, total = int(meta["n_cases"]), yuan_to_fen(str(meta["total_cost"]))
        elif "overall_mean_cost" in meta:
            n, total = 1, yuan_to_fen(str(meta["overall_mean_cost"]))
        else:
            raise CodeTableError(
                f"{mf}: give n_cases and total_cost, or overall_mean_cost",
                f"{mf}: 缺少总体均值",
                field="overall_mean_cost",
            )
    except (InvalidOperation, ValueError) as exc:
        raise CodeTableError(f"{mf}: {exc}", f"{mf}: 数值无效", field="catalog") from None
    if n <= 0 or total <= 0 or scale_e4 <= 0:
        raise CodeTableError(
            f"{mf}: n_cases, total_cost and scale must be positive", f"{mf}: 数值必须为正", field="total_cost"
        )
    if meta["diagnosis_level"] not in ("subcategory", "category"):
        raise CodeTableError(
            f"{mf}: diagnosis_level must be subcategory or category", f"{mf}: 诊断层级无效", field="diagnosis_level"
        )
    return meta, scale_e4, n, total


def _group_points_e4(gf: Path, line: int, key: str, raw: str) -> int:
    """A group's points × 10 000: positive, at most 4 decimals."""
    from yibao.codes._table import table_error

    try:
        pts = Decimal(raw) * E4
        if pts != pts.to_integral_value() or pts <= 0:
            raise InvalidOperation
    except InvalidOperation:
        raise table_error(
            gf,
            f"points {raw!r} must be positive with at most 4 decimals",
            "分值无效",
            line=line,
            key=key,
            field="points",
        ) from None
    return int(pts)


def _group_row(gf: Path, line: int, r: dict[str, str], seen: dict[str, int], total: int, scale_e4: int, n: int) -> dict:
    """One validated row of ``groups.csv`` as a row of :data:`GROUPS_SCHEMA`."""
    from yibao.codes._table import table_error

    key = f"group_code={r['group_code']!r}"
    if not r["group_code"] or r["group_code"] in seen:
        raise table_error(
            gf, "empty or duplicate group code", "病种编码为空或重复", line=line, key=key, field="group_code"
        )
    if r["kind"] not in KINDS:
        raise table_error(gf, f"kind must be one of {KINDS}", "病种类型无效", line=line, key=key, field="kind")
    level = r["level"] or ("combination" if r["kind"] == "core" else "category")
    if level not in LEVELS or (r["kind"] == "core") != (level == "combination"):
        raise table_error(
            gf,
            f"level {level!r} does not fit kind {r['kind']!r}",
            "层级与类型不符",
            line=line,
            key=key,
            field="level",
        )
    if r["proc_type"] not in PROC_TYPES:
        raise table_error(
            gf, f"proc_type must be one of {PROC_TYPES}", "操作类型无效", line=line, key=key, field="proc_type"
        )
    pts = _group_points_e4(gf, line, key, r["points"])
    try:
        mean = yuan_to_fen(r["mean_cost"]) if r["mean_cost"] else round_div(pts * total, scale_e4 * n)
    except ValueError:
        raise table_error(
            gf,
            f"mean_cost {r['mean_cost']!r} is not a yuan amount",
            "次均费用无效",
            line=line,
            key=key,
            field="mean_cost",
        ) from None
    if mean <= 0:
        raise table_error(gf, "mean cost must be positive", "次均费用必须为正", line=line, key=key, field="mean_cost")
    return {
        "group_code": r["group_code"],
        "kind": r["kind"],
        "level": level,
        "dx_key": r["dx_key"],
        "proc_key": r["proc_key"] if level == "combination" else "",
        "proc_type": r["proc_type"],
        "n_cases": int(r["n_cases"] or 0),
        "mean_cost_fen": mean,
        "points_e4": pts,
    }


@dataclass
class Catalog:
    """A DIP catalog: metadata and the groups table (points as integer 0.0001 units)."""

    region: str
    version: str
    effective_from: dt.date
    scale_e4: int
    diagnosis_level: str
    n_cases: int  # cases the overall mean was taken over (1 for a published mean)
    total_cost_fen: int  # their total cost
    groups: pa.Table
    label: str = ""
    synthetic: bool = False
    built: dict = field(default_factory=dict)

    @property
    def overall_mean_fen(self) -> int:
        return round_div(self.total_cost_fen, self.n_cases)

    def group(self, code: str) -> dict:
        rows = self.groups.filter(pa.compute.equal(self.groups["group_code"], code)).to_pylist()
        if not rows:
            raise CodeTableError(
                f"DIP group {code!r} is not in catalog {self.version}", f"病种 {code!r} 不在目录中", field="group_code"
            )
        return rows[0]

    # --- matching one case (scalar path) -----------------------------------

    def match(self, dx_key: str, proc_key: str, dx_cat: str, dx_chapter: str, proc_type: str) -> dict | None:
        """The group of one case: the core combination, else the category pool, else the chapter pool, else None."""
        idx = self._index()
        return (
            idx.get(("combination", dx_key, proc_key))
            or idx.get(("category", dx_cat, proc_type))
            or idx.get(("chapter", dx_chapter, proc_type))
        )

    def _index(self) -> dict:
        if getattr(self, "_idx", None) is None:
            self._idx = {}
            for r in self.groups.to_pylist():
                key = (r["level"], r["dx_key"], r["proc_key"] if r["level"] == "combination" else r["proc_type"])
                self._idx[key] = r
        return self._idx

    # --- files ----------------------------------------------------------------

    def save(self, out_dir: Path) -> Path:
        """Write ``catalog.yaml`` and ``groups.csv`` into ``out_dir`` (a versioned catalog)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "region": self.region,
            "version": self.version,
            "effective_from": self.effective_from.isoformat(),
            "label": self.label,
            "synthetic": self.synthetic,
            "scale": str(Decimal(self.scale_e4) / E4),
            "diagnosis_level": self.diagnosis_level,
            "n_cases": self.n_cases,
            "total_cost": str(fen_to_yuan(self.total_cost_fen)),
            "overall_mean_cost": str(fen_to_yuan(self.overall_mean_fen)),
            "built": self.built,
        }
        (out_dir / "catalog.yaml").write_text(
            "# DIP catalog (病种目录库). Money in yuan, points to 4 decimals.\n"
            + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for r in self.groups.to_pylist():
            w.writerow(
                [
                    r["group_code"],
                    r["kind"],
                    r["level"],
                    r["dx_key"],
                    r["proc_key"],
                    r["proc_type"],
                    r["n_cases"],
                    fen_to_yuan(r["mean_cost_fen"]),
                    Decimal(r["points_e4"]) / E4,
                ]
            )
        (out_dir / "groups.csv").write_text(buf.getvalue(), encoding="utf-8")
        return out_dir

    @classmethod
    def load(cls, path: Path) -> Catalog:
        """Load and validate a catalog directory (built here or published by a region)."""
        path = Path(path)
        mf = path / "catalog.yaml"
        gf = path / "groups.csv"
        for f in (mf, gf):
            if not f.exists():
                raise CodeTableError(f"{f}: catalog file not found", f"{f}: 找不到目录文件", field="catalog")
        meta, scale_e4, n, total = _load_catalog_meta(mf)
        from yibao.codes._table import read_csv

        rows: list[dict] = []
        seen: dict[str, int] = {}
        for line, r in read_csv(
            gf,
            ("group_code", "kind", "dx_key", "proc_key", "proc_type", "points"),
            optional=("level", "n_cases", "mean_cost"),
        ):
            rows.append(_group_row(gf, line, r, seen, total, scale_e4, n))
            seen[r["group_code"]] = line
        eff = meta["effective_from"]
        return cls(
            region=str(meta["region"]), version=str(meta["version"]),
            effective_from=eff if isinstance(eff, dt.date) else dt.date.fromisoformat(str(eff)),
            scale_e4=scale_e4, diagnosis_level=meta["diagnosis_level"], n_cases=n, total_cost_fen=total,
            groups=pa.Table.from_pylist(rows, schema=GROUPS_SCHEMA), label=str(meta.get("label", "")),
            synthetic=bool(meta.get("synthetic", False)), built=meta.get("built") or {},
        )  # fmt: skip


def build_catalog(con: duckdb.DuckDBPyConnection, cases: str, params: DipParams, *, version: str | None = None,
                  effective_from: dt.date | None = None, synthetic: bool | None = None) -> Catalog:  # fmt: skip
    """Build a catalog from the enriched cases table ``cases`` (all in SQL)."""
    cp = params.catalog
    n_all, sum_all = con.execute(f"SELECT count(*), coalesce(sum(medfee_sumamt), 0) FROM {cases}").fetchall()[0]
    if not n_all or not sum_all:
        raise CodeTableError(
            "no cases (or zero total cost) to build a DIP catalog from", "无可用于建立目录的病例", field="cases"
        )
    pts = round_div_sql(f"CAST(s AS HUGEINT) * {int(n_all)} * {cp.scale_e4}", f"CAST(n AS HUGEINT) * {int(sum_all)}")
    mean = round_div_sql("s", "n")
    sql = f"""
    WITH combo AS (
        SELECT dx_key, proc_key, any_value(proc_type) AS proc_type, dx_cat, count(*) AS n, sum(medfee_sumamt) AS s
        FROM {cases} GROUP BY dx_key, proc_key, dx_cat
    ), core AS (SELECT * FROM combo WHERE n >= {cp.core_min_cases}),
    rest AS (
        SELECT c.dx_cat, c.dx_chapter, c.proc_type, c.medfee_sumamt FROM {cases} c
        JOIN combo USING (dx_key, proc_key) WHERE combo.n < {cp.core_min_cases}
    ), cat AS (SELECT dx_cat, proc_type, count(*) AS n, sum(medfee_sumamt) AS s FROM rest GROUP BY ALL),
    chap AS (
        SELECT r.dx_chapter, r.proc_type, count(*) AS n, sum(r.medfee_sumamt) AS s FROM rest r
        JOIN cat USING (dx_cat, proc_type) WHERE cat.n < {cp.comprehensive_min_cases} GROUP BY ALL
    ), g AS (
        SELECT dx_key || '|' || CASE WHEN proc_key = '' THEN '-' ELSE proc_key END AS group_code, 'core' AS kind,
               'combination' AS level, dx_key, proc_key, proc_type, n, s FROM core
        UNION ALL
        SELECT 'Z|' || dx_cat || '|' || proc_type, 'comprehensive', 'category', dx_cat, '', proc_type, n, s
        FROM cat WHERE n >= {cp.comprehensive_min_cases}
        UNION ALL
        SELECT 'Z|CH' || dx_chapter || '|' || proc_type, 'comprehensive', 'chapter', dx_chapter, '', proc_type, n, s
        FROM chap
    )
    SELECT group_code, kind, level, dx_key, proc_key, proc_type, CAST(n AS BIGINT) AS n_cases,
           CAST({mean} AS BIGINT) AS mean_cost_fen, CAST({pts} AS BIGINT) AS points_e4
    FROM g ORDER BY kind DESC, group_code
    """
    groups = con.sql(sql).to_arrow_table().cast(GROUPS_SCHEMA)
    if synthetic is None:
        cols = [r[0] for r in con.execute(f"DESCRIBE {cases}").fetchall()]
        synthetic = (
            bool(con.execute(f"SELECT bool_and(synthetic) FROM {cases}").fetchall()[0][0])
            if "synthetic" in cols
            else False
        )
    years = (
        [r[0] for r in con.execute(f"SELECT DISTINCT year(endtime) FROM {cases} ORDER BY 1").fetchall()]
        if n_all
        else []
    )
    return Catalog(
        region=params.region,
        version=version or f"{params.region}-built-{'-'.join(map(str, years))}",
        effective_from=effective_from or params.effective_from,
        scale_e4=cp.scale_e4,
        diagnosis_level=cp.diagnosis_level,
        n_cases=int(n_all),
        total_cost_fen=int(sum_all),
        groups=groups,
        label=(
            "SYNTHETIC: built from a synthetic region, not a published catalog" if synthetic else "built from case data"
        ),
        synthetic=synthetic,
        built={
            "from_years": years,
            "params": params.name,
            "params_version": params.version,
            "core_min_cases": cp.core_min_cases,
            "comprehensive_min_cases": cp.comprehensive_min_cases,
        },
    )
