"""The rule library (规则库) and knowledge base (知识库) as validated data.

``yibao/data/supervision/rules.yaml`` lists the audit rules; the CSV files in
``knowledge/`` hold code lists they read (exam items, bundles, sex-specific
diagnoses …); ``sql/<rule id>.sql`` holds each post-care (事后) rule.  This
module loads and checks them; a bad file raises :class:`SupervisionDataError`
naming the file, the key and the reason.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from yibao.core.errors import YibaoError
from yibao.core.yamldata import load_model

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "supervision"
STAGES = ("pre", "in", "post")
STAGE_ZH = {"pre": "事前", "in": "事中", "post": "事后"}
ENTITIES = ("fee_detail", "encounter", "person", "inst_item", "institution", "doctor")


class SupervisionDataError(YibaoError):
    """A supervision data file (rules, knowledge, benchmarks) is invalid."""

    code = "E_SUPERVISION_DATA"


class Rule(BaseModel):
    """One audit rule (审核规则)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^SV-[A-Z]+-[A-Z0-9]+$")
    name: str
    name_zh: str
    category: str
    stages: tuple[Literal["pre", "in", "post"], ...]
    action: Literal["warn", "refuse"] = "warn"
    severity: int = Field(ge=1, le=5)
    pattern: str
    truth_detail: str | None = None
    truth_detail_like: str | None = None
    entity: Literal["fee_detail", "encounter", "person", "inst_item"]
    params: dict[str, Any] = Field(default_factory=dict)
    knowledge: tuple[str, ...] = ()
    basis: str
    evidence: tuple[str, ...] = ()

    @field_validator("stages")
    @classmethod
    def _stages(cls, v):
        if not v:
            raise ValueError("a rule needs at least one stage")
        return v


class PeerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min_cases: int = Field(ge=1)
    z_threshold: float = Field(gt=0)
    measures: tuple[str, ...]


class RingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    name: str
    name_zh: str
    pattern: str
    entity: str
    min_shared_days: int = Field(ge=2)
    min_members: int = Field(ge=3)
    severity: int = Field(ge=1, le=5)


class QueueParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    severity_weight: dict[int, float]
    top_n: int = Field(ge=1)


class Analytics(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    peer: PeerParams
    ring: RingParams
    queue: QueueParams


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int
    effective_from: dt.date
    rules: tuple[Rule, ...]
    analytics: Analytics


# --- knowledge tables -------------------------------------------------------------

KNOWLEDGE_COLUMNS: dict[str, tuple[str, ...]] = {
    "exam_items": ("med_list_codg", "kind", "heavy"),
    "hotel_items": ("med_list_codg", "what"),
    "bundles": ("package", "component", "note"),
    "item_requires": ("med_list_codg", "requires", "note"),
    "max_daily": ("med_list_codg", "name", "unit", "max_daily_qty"),
    "outpatient_treatable": ("dise_prefix", "name"),
    "dx_evidence": ("dise_prefix", "evidence", "name"),
    "sex_specific_dx": ("dise_prefix", "gend", "name"),
}


def read_knowledge_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a knowledge CSV (``#`` comment lines skipped), checking the header and empty keys."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SupervisionDataError(f"{path}: cannot read ({exc})", f"{path}: 无法读取", field=str(path)) from exc
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    reader = csv.DictReader(lines)
    if tuple(reader.fieldnames or ()) != columns:
        raise SupervisionDataError(
            f"{path.name}: header must be {','.join(columns)}, not {reader.fieldnames}",
            f"{path.name}: 表头应为 {','.join(columns)}",
            field="header",
        )
    rows = []
    for n, r in enumerate(reader, start=2):
        if not r[columns[0]]:
            raise SupervisionDataError(
                f"{path.name} row {n}: empty {columns[0]}",
                f"{path.name} 第 {n} 行: {columns[0]} 为空",
                field=columns[0],
            )
        rows.append(r)
    return rows


@dataclass(frozen=True)
class Knowledge:
    """The knowledge base, in shapes the rules use."""

    exam_items: dict[str, tuple[str, bool]]  # code -> (kind, heavy)
    hotel_items: frozenset[str]
    bundles: tuple[tuple[str, str], ...]  # (package, component)
    item_requires: dict[str, tuple[str, ...]]
    max_daily_milli: dict[str, int]  # code -> max units per day x 1000
    outpatient_treatable: tuple[str, ...]
    dx_evidence: dict[str, tuple[tuple[str, ...], ...]]  # prefix -> groups, all needed; any item of a group meets it
    sex_specific_dx: tuple[tuple[str, str], ...]  # (prefix, gend)

    def sex_of_dx(self, code: str) -> str:
        """'1' or '2' if the diagnosis fits only one sex, else ''."""
        for p, g in self.sex_specific_dx:
            if code.startswith(p):
                return g
        return ""


def _evidence_groups(r: dict[str, str]) -> tuple[tuple[str, ...], ...]:
    """``"A;B+C"`` -> ``(("A", "B"), ("C",))``: every group must be met, a group by any of its items."""
    groups = tuple(tuple(x.strip() for x in g.split(";") if x.strip()) for g in r["evidence"].split("+"))
    if not groups or any(not g for g in groups):
        raise SupervisionDataError(
            f"dx_evidence.csv {r['dise_prefix']}: evidence {r['evidence']!r} has an empty group",
            f"dx_evidence.csv {r['dise_prefix']}: 诊疗依据 (evidence) 含空组",
            field="evidence",
        )
    return groups


def load_knowledge(directory: Path | None = None) -> Knowledge:
    d = (directory or DATA_DIR) / "knowledge"
    raw = {name: read_knowledge_csv(d / f"{name}.csv", cols) for name, cols in KNOWLEDGE_COLUMNS.items()}

    def flag(name, r, key):
        v = r[key].strip().lower()
        if v not in ("true", "false"):
            raise SupervisionDataError(
                f"{name}.csv {r}: {key} must be true or false", f"{name}.csv: {key} 须为 true/false", field=key
            )
        return v == "true"

    md = {}
    for r in raw["max_daily"]:
        try:
            q = Decimal(r["max_daily_qty"]) * 1000
        except InvalidOperation as exc:
            raise SupervisionDataError(
                f"max_daily.csv {r['med_list_codg']}: max_daily_qty {r['max_daily_qty']!r} is not a number",
                "最大日用量无效",
                field="max_daily_qty",
            ) from exc
        if q <= 0 or q != q.to_integral_value():
            raise SupervisionDataError(
                f"max_daily.csv {r['med_list_codg']}: max_daily_qty must be positive with at most 3 decimals",
                "最大日用量无效",
                field="max_daily_qty",
            )
        md[r["med_list_codg"]] = int(q)
    sexes = []
    for r in raw["sex_specific_dx"]:
        if r["gend"] not in ("1", "2"):
            raise SupervisionDataError(
                f"sex_specific_dx.csv {r['dise_prefix']}: gend must be 1 or 2", "性别须为 1 或 2", field="gend"
            )
        sexes.append((r["dise_prefix"], r["gend"]))
    return Knowledge(
        exam_items={r["med_list_codg"]: (r["kind"], flag("exam_items", r, "heavy")) for r in raw["exam_items"]},
        hotel_items=frozenset(r["med_list_codg"] for r in raw["hotel_items"]),
        bundles=tuple((r["package"], r["component"]) for r in raw["bundles"]),
        item_requires={
            r["med_list_codg"]: tuple(x for x in r["requires"].split(";") if x) for r in raw["item_requires"]
        },
        max_daily_milli=md,
        outpatient_treatable=tuple(r["dise_prefix"] for r in raw["outpatient_treatable"]),
        dx_evidence={r["dise_prefix"]: _evidence_groups(r) for r in raw["dx_evidence"]},
        sex_specific_dx=tuple(sexes),
    )


@dataclass(frozen=True)
class RuleBook:
    """Rules + analytics parameters + knowledge + the SQL of each post-care rule."""

    version: int
    effective_from: dt.date
    rules: tuple[Rule, ...]
    analytics: Analytics
    knowledge: Knowledge
    sql: dict[str, str] = field(default_factory=dict)
    directory: Path = DATA_DIR

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise SupervisionDataError(f"unknown rule {rule_id!r}", f"未知规则 {rule_id!r}", field="rule_id")

    def by_stage(self, stage: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if stage in r.stages)

    @classmethod
    def load(cls, directory: Path | None = None) -> RuleBook:
        d = directory or DATA_DIR
        path = d / "rules.yaml"
        rf = load_model(path, RuleFile, what=("supervision rules file", "监管规则文件"), error=SupervisionDataError)
        ids = [r.id for r in rf.rules]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise SupervisionDataError(f"{path.name}: duplicate rule ids {sorted(dup)}", "规则编号重复", field="id")
        for r in rf.rules:
            for k in r.knowledge:
                if k not in KNOWLEDGE_COLUMNS:
                    raise SupervisionDataError(
                        f"{path.name}: rule {r.id} reads unknown knowledge {k!r}",
                        f"规则 {r.id} 引用未知知识库 {k!r}",
                        field="knowledge",
                    )
        sql = {}
        for r in rf.rules:
            if "post" in r.stages:
                p = d / "sql" / f"{r.id}.sql"
                if not p.exists():
                    raise SupervisionDataError(
                        f"rule {r.id} is a post-care rule but {p.name} is missing",
                        f"规则 {r.id} 缺少 SQL 文件",
                        field=r.id,
                    )
                sql[r.id] = p.read_text(encoding="utf-8")
        return cls(rf.version, rf.effective_from, rf.rules, rf.analytics, load_knowledge(d), sql, d)


@lru_cache(maxsize=2)
def default_rulebook() -> RuleBook:
    return RuleBook.load()
