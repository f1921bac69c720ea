"""DIP region parameters (按病种分值付费参数) as validated data.

A region's DIP rules live in ``yibao/data/payment/dip/<name>.yaml``: scope,
catalog thresholds, the points scale, the outlier formulas, the optional age,
severity and institution-level coefficients, and the budget.  Code here only
validates and turns decimals into the integer units the engines use:

* money: integer fen;
* ratios and coefficients: basis points (1.0 = 10,000) or, for coefficients,
  four decimal places (1.0 = 10,000 as well);
* points: integer units of 0.0001 point (``*_e4``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yibao.core.contract import MED_TYPE_INPATIENT
from yibao.core.errors import PolicyError
from yibao.core.money import yuan_to_fen
from yibao.core.yamldata import DataFileError, load_model, read_yaml

E4 = 10_000
"""Scale of points and coefficients held as integers (0.0001)."""

DIAGNOSIS_LEVELS = ("subcategory", "category")
PROC_TYPES = ("conservative", "diagnostic", "therapy", "surgery")
"""Procedure types of DIP comprehensive groups, lowest to highest rank: 保守治疗, 诊断性操作, 治疗性操作, 手术."""


def to_e4(value: object, what: str) -> int:
    """A decimal (``"1.05"``, ``2``) to an integer of 0.0001 units, exactly (finer is an error)."""
    try:  # YAML floats are read through their shortest text (str), never their binary value
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise PolicyError(f"{what}: {value!r} is not a number", f"{what}: {value!r} 不是数字", field=what) from None
    q = d * E4
    if not q.is_finite() or q != q.to_integral_value():
        raise PolicyError(
            f"{what}: {value!r} has more than 4 decimal places", f"{what}: {value!r} 超过 4 位小数", field=what
        )
    return int(q)


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(_M):
    med_types: list[str] = [MED_TYPE_INPATIENT]
    institution_admdvs_prefix: str = ""


class Coding(_M):
    """The coding systems a region's cases are written in (default: the national 医保版 dictionaries)."""

    diagnosis_systems: list[str] = ["icd10-yb-2.0"]

    @field_validator("diagnosis_systems")
    @classmethod
    def _systems(cls, v: list[str]) -> list[str]:
        known = ("icd10-yb-2.0", "who-icd10")
        if not v or any(x not in known for x in v):
            raise ValueError(f"must be a non-empty list of {known}")
        return v


class CatalogParams(_M):
    core_min_cases: int = Field(default=15, ge=1)
    diagnosis_level: str = "subcategory"
    comprehensive_min_cases: int = Field(default=1, ge=1)
    scale: Decimal = Decimal(1000)

    @field_validator("diagnosis_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v not in DIAGNOSIS_LEVELS:
            raise ValueError(f"must be one of {DIAGNOSIS_LEVELS}")
        return v

    @field_validator("scale", mode="before")
    @classmethod
    def _scale(cls, v):
        d = Decimal(str(v))
        if d <= 0:
            raise ValueError("must be positive")
        return d

    @property
    def scale_e4(self) -> int:
        return to_e4(self.scale, "catalog.scale")


class OutlierRule(_M):
    """Points of an outlier case = (ratio_factor × cost/mean + constant) × RW, never below 0."""

    above_ratio: Decimal | None = None
    below_ratio: Decimal | None = None
    ratio_factor: Decimal = Decimal(1)
    constant: Decimal = Decimal(0)

    @field_validator("above_ratio", "below_ratio", "ratio_factor", "constant", mode="before")
    @classmethod
    def _dec(cls, v):
        return None if v is None else Decimal(str(v))


class Outliers(_M):
    high: OutlierRule = OutlierRule(above_ratio=Decimal(2), ratio_factor=Decimal(1), constant=Decimal(-1))
    low: OutlierRule = OutlierRule(below_ratio=Decimal("0.5"), ratio_factor=Decimal(1), constant=Decimal(0))

    @model_validator(mode="after")
    def _check(self):
        if self.high.above_ratio is None or self.low.below_ratio is None:
            raise ValueError("outliers.high needs above_ratio and outliers.low needs below_ratio")
        if not (0 < self.low.below_ratio <= 1 <= self.high.above_ratio):
            raise ValueError("need 0 < low.below_ratio <= 1 <= high.above_ratio")
        return self


class AgeBand(_M):
    min: int = Field(ge=0, le=150)
    max: int = Field(ge=0, le=150)
    coef: Decimal

    @model_validator(mode="after")
    def _order(self):
        if self.min > self.max:
            raise ValueError(f"age band min {self.min} > max {self.max}")
        return self


class SeverityBand(_M):
    min_score: int = Field(ge=1)
    coef: Decimal


class Severity(_M):
    weights: dict[str, int] = {}
    bands: list[SeverityBand] = []

    @model_validator(mode="after")
    def _bands(self):
        scores = [b.min_score for b in self.bands]
        if scores != sorted(set(scores)):
            raise ValueError("severity bands must have increasing, distinct min_score")
        for p, w in self.weights.items():
            if w < 0:
                raise ValueError(f"severity weight of {p!r} must not be negative")
        return self


class Coefficients(_M):
    level: dict[int, Decimal] = {}
    age: list[AgeBand] = []
    severity: Severity = Severity()

    @model_validator(mode="after")
    def _ages(self):
        bands = sorted(self.age, key=lambda b: b.min)
        for a, b in itertools.pairwise(bands):
            if b.min <= a.max:
                raise ValueError(f"age bands {a.min}-{a.max} and {b.min}-{b.max} overlap")
        for c in [*self.level.values(), *(b.coef for b in self.age), *(b.coef for b in self.severity.bands)]:
            if Decimal(c) <= 0:
                raise ValueError("coefficients must be positive")
        return self


class Budget(_M):
    basis: str = "fund"
    annual: Decimal | None = None  # yuan
    from_actual_factor: Decimal | None = None
    monthly_advance_ratio: Decimal = Decimal(1)

    @field_validator("annual", "from_actual_factor", "monthly_advance_ratio", mode="before")
    @classmethod
    def _dec(cls, v):
        if v is None:
            return None
        if isinstance(v, float):
            raise ValueError("write money and ratios as quoted strings, not floats")
        return Decimal(str(v))

    @model_validator(mode="after")
    def _one(self):
        if self.basis not in ("fund", "total"):
            raise ValueError("basis must be 'fund' or 'total'")
        if (self.annual is None) == (self.from_actual_factor is None):
            raise ValueError("give exactly one of annual (yuan) or from_actual_factor")
        if not (0 <= self.monthly_advance_ratio <= 1):
            raise ValueError("monthly_advance_ratio must be within 0..1")
        return self

    @property
    def annual_fen(self) -> int | None:
        return None if self.annual is None else yuan_to_fen(self.annual)


class DipParams(_M):
    """One region's DIP rules (see ``yibao/data/payment/dip/example-city-a.yaml``)."""

    name: str
    region: str
    version: str
    effective_from: dt.date
    label: str = ""
    scope: Scope = Scope()
    coding: Coding = Coding()
    catalog: CatalogParams = CatalogParams()
    outliers: Outliers = Outliers()
    coefficients: Coefficients = Coefficients()
    budget: Budget

    # --- integer views used by the engines --------------------------------

    def combined_coefficients(self) -> list[tuple[int, int, int, int]]:
        """Every (age band, severity band, hosp_lv, coef_e4): the product of the three, rounded half up to 4 places.

        Band 0 means "no band" (coefficient 1).  ``hosp_lv`` 0..3 (0 and any level
        without an entry: coefficient 1).
        """
        ages = [Decimal(1)] + [b.coef for b in self.coefficients.age]
        sevs = [Decimal(1)] + [b.coef for b in self.coefficients.severity.bands]
        out = []
        for ai, a in enumerate(ages):
            for si, s in enumerate(sevs):
                for lv in range(0, 4):
                    c = a * s * Decimal(self.coefficients.level.get(lv, Decimal(1)))
                    out.append((ai, si, lv, int((c * E4).quantize(Decimal(1), rounding=ROUND_HALF_UP))))
        return out

    def age_band(self, age: int) -> int:
        for i, b in enumerate(self.coefficients.age, start=1):
            if b.min <= age <= b.max:
                return i
        return 0

    def severity_band(self, score: int) -> int:
        band = 0
        for i, b in enumerate(self.coefficients.severity.bands, start=1):
            if score >= b.min_score:
                band = i
        return band

    def coef_e4(self, age: int, score: int, hosp_lv: int) -> int:
        table = {(a, s, lv): c for a, s, lv, c in self.combined_coefficients()}
        return table[(self.age_band(age), self.severity_band(score), hosp_lv if 0 <= hosp_lv <= 3 else 0)]

    def severity_weight(self, code: str) -> int:
        """Weight of one secondary diagnosis: the longest matching prefix in the weights table, else 0."""
        best, w = -1, 0
        for p, v in self.coefficients.severity.weights.items():
            if code.startswith(p) and len(p) > best:
                best, w = len(p), v
        return w


def dip_params_dir() -> Path:
    return Path(str(resources.files("yibao") / "data" / "payment" / "dip"))


def load_dip_params(name_or_path: str | Path = "example-city-a") -> DipParams:
    """Load and validate a DIP parameter file (a shipped name, a region code, or a path)."""
    p = Path(name_or_path)
    if not p.suffix:
        cands = [dip_params_dir() / f"{name_or_path}.yaml"]
        cands += [f for f in sorted(dip_params_dir().glob("*.yaml")) if _region_of(f) == str(name_or_path)]
        p = next((c for c in cands if c.exists()), cands[0])
    if not p.exists():
        raise PolicyError(f"{p}: DIP parameter file not found", f"{p}: 找不到 DIP 参数文件", field="dip_params")
    return load_model(p, DipParams, what=("DIP parameter file", "DIP 参数文件"), error=PolicyError)


def _region_of(f: Path) -> str:
    try:
        return str(read_yaml(f, empty={}).get("region", ""))
    except DataFileError:
        return ""
