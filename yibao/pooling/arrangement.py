"""Pooling arrangements as data (统筹层次安排): ``yibao/data/pooling/<name>.yaml``, validated on load.

An arrangement says, for one region's county pools (县级统筹区):

* ``pool_level`` — where the funds are unified (统收统支): ``county`` (each
  county pool on its own), ``city`` (市级统筹) or ``province`` (省级统筹);
* ``adjustment_fund`` — optional: a risk-adjustment fund (风险调剂金) one or
  more levels above the pools, fed by a share of each pool's fund income and
  drawn on to cover part of a pool's deficit, per pool at most a share of
  its income and/or an amount;
* ``counties`` — which division codes are the county pools (default: the
  region's districts in ``yibao/data/codes/divisions.csv``) and how a person
  whose insured place (``insuplc_admdvs``) is the region itself, not a county,
  is placed in one (``family_hash``: a stable hash of ``family_id``, so a
  family stays together, weighted by ``weights``);
* ``spending_fields`` — the settlement fund shares the pools pay
  (default ``hifp_pay``, the basic pooled fund);
* ``sources`` — a citation for every figure and choice above: a seed
  (``seed 001 …``) or ``ILLUSTRATIVE: why``.  A figure without one is refused.

Money is integer fen (yuan in the file), ratios integer basis points.
"""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from yibao.core.contract import SCHEME_INSUTYPES, SETTLEMENT_AMOUNTS
from yibao.core.errors import YibaoError
from yibao.core.money import MoneyError, parameter_fen, ratio_to_bp
from yibao.core.yamldata import data_error, load_model

LEVELS = ("county", "city", "province")
"""Pooling levels, lowest first (县级, 市级, 省级)."""

SCHEMES = SCHEME_INSUTYPES
"""The funds kept apart in every pool (职工医保 310, 城乡居民医保 390)."""

FIGURES = (
    "pool_level",
    "adjustment_fund.level",
    "adjustment_fund.share_of_income",
    "adjustment_fund.coverage_ratio",
    "adjustment_fund.cap_share_of_income",
    "adjustment_fund.cap_yuan",
    "adjustment_fund.opening_balance_yuan",
    "counties.assignment.weights",
    "spending_fields",
)
"""Keys that need a ``sources`` entry when present in a file."""


class PoolingError(YibaoError):
    """A pooling arrangement or the figures given to the simulation are invalid (统筹层次参数错误)."""

    code = "E_POOLING"


def _bp(v: Any) -> int:
    if isinstance(v, float):
        v = Decimal(str(v))
    try:
        return ratio_to_bp(v)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


_fen = parameter_fen  # yuan in the file → fen, never negative (core.money)


Bp = Annotated[int, BeforeValidator(_bp)]
Fen = Annotated[int, BeforeValidator(_fen)]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _per_scheme(v: Any) -> Any:
    """A single value applies to both schemes."""
    if isinstance(v, dict):
        return v
    return {s: v for s in SCHEMES}


class PerSchemeBp(_M):
    employee: Bp
    resident: Bp

    def of(self, scheme: str) -> int:
        return getattr(self, scheme)


class PerSchemeFen(_M):
    employee: Fen = 0
    resident: Fen = 0

    def of(self, scheme: str) -> int:
        return getattr(self, scheme)


class AdjustmentFund(_M):
    """The risk-adjustment fund (风险调剂金)."""

    level: Literal["city", "province"]
    share_of_income: Annotated[PerSchemeBp, BeforeValidator(_per_scheme)]
    """Share of each pool's fund income paid in (上解比例), per scheme."""
    coverage_ratio: Bp
    """Share of a pool's deficit (after its payment in) the fund covers."""
    cap_share_of_income: Bp | None = None
    """A pool draws at most this share of its own fund income in a year."""
    cap_yuan: Annotated[PerSchemeFen, BeforeValidator(_per_scheme)] | None = None
    """A pool draws at most this amount in a year, per scheme."""
    opening_balance_yuan: Annotated[PerSchemeFen, BeforeValidator(_per_scheme)] = PerSchemeFen()
    """The fund's balance carried in (累计结余), per scheme."""

    @field_validator("share_of_income")
    @classmethod
    def _share(cls, v: PerSchemeBp) -> PerSchemeBp:
        for s in SCHEMES:
            if v.of(s) >= 10_000:
                raise ValueError(f"share_of_income for {s} must be below 1 (a pool cannot pay in all its income)")
        return v


class Assignment(_M):
    """How a person insured at the region's own code (not a county) is placed in a county pool."""

    method: Literal["family_hash"] = "family_hash"
    weights: dict[str, int] | None = None
    """Relative weights per county pool (default: equal)."""

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, int] | None) -> dict[str, int] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("weights must name at least one county pool")
        for k, w in v.items():
            if not isinstance(w, int) or isinstance(w, bool) or w < 0:
                raise ValueError(f"weight of {k} must be a non-negative integer, not {w!r}")
        if sum(v.values()) == 0:
            raise ValueError("weights must not all be 0")
        return v


class Counties(_M):
    pools: list[str] | None = None
    """The county pools' division codes (default: the region's districts)."""
    assignment: Assignment = Assignment()


class Arrangement(_M):
    """One pooling arrangement (统筹层次安排)."""

    name: str
    label_en: str
    label_zh: str
    region: str
    """The region (医保区划) whose county pools the arrangement covers."""
    pool_level: Literal["county", "city", "province"]
    adjustment_fund: AdjustmentFund | None = None
    counties: Counties = Counties()
    spending_fields: list[str] = Field(default_factory=lambda: ["hifp_pay"])
    illustrative: bool = True
    sources: dict[str, str]

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not (isinstance(v, str) and len(v) == 6 and v.isdigit()):
            raise ValueError("region must be a 6-digit 医保区划 code")
        return v

    @field_validator("spending_fields")
    @classmethod
    def _spending(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("spending_fields must name at least one settlement fund share")
        bad = [f for f in v if f not in SETTLEMENT_AMOUNTS or f in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt")]
        if bad:
            raise ValueError(f"not a fund share of the settlement table: {bad}")
        if len(set(v)) != len(v):
            raise ValueError("spending_fields lists a field twice")
        return v

    @model_validator(mode="after")
    def _levels(self) -> Arrangement:
        fund = self.adjustment_fund
        if fund is not None and LEVELS.index(fund.level) <= LEVELS.index(self.pool_level):
            raise ValueError(f"adjustment_fund.level {fund.level!r} must be above pool_level {self.pool_level!r}")
        pools = self.counties.pools
        if pools is not None:
            if not pools or len(set(pools)) != len(pools) or not all(len(p) == 6 and p.isdigit() for p in pools):
                raise ValueError("counties.pools must be distinct 6-digit division codes")
        w = self.counties.assignment.weights
        if w and pools is not None and set(w) - set(pools):
            raise ValueError(
                f"counties.assignment.weights names codes that are not county pools: {sorted(set(w) - set(pools))}"
            )
        return self

    @model_validator(mode="after")
    def _cited(self) -> Arrangement:
        present = {"pool_level", "spending_fields"}
        if self.adjustment_fund is not None:
            present |= {f"adjustment_fund.{k}" for k in ("level", "share_of_income", "coverage_ratio")}
            for k in ("cap_share_of_income", "cap_yuan"):
                if getattr(self.adjustment_fund, k) is not None:
                    present.add(f"adjustment_fund.{k}")
            if self.adjustment_fund.opening_balance_yuan != PerSchemeFen():
                present.add("adjustment_fund.opening_balance_yuan")
        if self.counties.assignment.weights is not None:
            present.add("counties.assignment.weights")
        missing = sorted(present - set(self.sources))
        if missing:
            raise ValueError(f"sources must cite every figure (a seed, or 'ILLUSTRATIVE: why'); missing: {missing}")
        for k, text in self.sources.items():
            if k not in FIGURES:
                raise ValueError(f"sources.{k}: not a figure of an arrangement (known: {', '.join(FIGURES)})")
            if not (isinstance(text, str) and (text.startswith("seed ") or text.startswith("ILLUSTRATIVE"))):
                raise ValueError(f"sources.{k} must start with 'seed …' or 'ILLUSTRATIVE'")
        if any(t.startswith("ILLUSTRATIVE") for t in self.sources.values()) and not self.illustrative:
            raise ValueError("an arrangement with ILLUSTRATIVE figures must say illustrative: true")
        return self

    @property
    def level_label(self) -> str:
        base = {"county": "县级统筹", "city": "市级统筹 (统收统支)", "province": "省级统筹 (统收统支)"}[self.pool_level]
        if self.adjustment_fund:
            base += f" + {'市' if self.adjustment_fund.level == 'city' else '省'}级风险调剂金"
        return base


def data_dir() -> Path:
    """The shipped arrangements: ``yibao/data/pooling``."""
    return Path(str(resources.files("yibao") / "data" / "pooling"))


def known_arrangements() -> list[str]:
    """Names of the shipped arrangements (file stems), sorted."""
    return sorted(p.stem for p in data_dir().glob("*.yaml"))


_WHAT = ("pooling arrangement", "统筹层次安排文件")


def load_arrangement(name_or_path: str | Path) -> Arrangement:
    """A shipped arrangement by name, or a YAML file by path; refused with a one-line reason (:class:`PoolingError`)."""
    text = str(name_or_path)
    p = Path(text)
    if not (p.suffix in (".yaml", ".yml") or "/" in text or p.exists()):
        p = data_dir() / f"{text}.yaml"
        if not p.is_file():
            raise PoolingError(
                f"unknown pooling arrangement {text!r}; known: {', '.join(known_arrangements())} "
                "(or give a .yaml file)",
                f"未知的统筹层次安排 {text!r}; 可选: {', '.join(known_arrangements())} (或给出 .yaml 文件)",
                field="arrangement",
            )
    arr = load_model(p, Arrangement, what=_WHAT, error=PoolingError)
    if p.parent == data_dir() and arr.name != p.stem:
        raise data_error(
            p,
            "name",
            f"name {arr.name!r} must equal the file name {p.stem!r}",
            f"name 须与文件名 {p.stem!r} 相同",
            error=PoolingError,
        )
    return arr


def arrangement_from_dict(doc: dict, source: str = "<request>") -> Arrangement:
    """An arrangement given inline (the REST API), validated like a file."""
    from yibao.core.yamldata import validate

    if not isinstance(doc, dict):
        raise data_error(source, "", "an arrangement must be a mapping", "统筹层次安排须为映射", error=PoolingError)
    return validate(source, Arrangement, doc, what=_WHAT, error=PoolingError)
