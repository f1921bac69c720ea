"""VBP rule sets (集采规则) as validated data.

One YAML file per national batch and per alliance variant lives in
``yibao/data/procurement/rulesets/``.  A file may ``extends:`` another; its
keys override the parent's key by key (lists and tables are replaced whole),
so a new batch is a new file holding only what changed.

The merged tree is validated with Pydantic v2; every error names the file (the
chain of files), the key path and the reason, in English and Chinese
(:class:`RuleSetError`).  Floats in the YAML are read as ``Decimal``; code never
holds a figure from the rule documents.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from yibao.core.errors import YibaoError
from yibao.core.yamldata import read_yaml


class RuleSetError(YibaoError):
    """A VBP rule-set file is invalid: names the file, the key and the reason."""

    code = "E_VBP_RULES"


def rules_dir() -> Path:
    return Path(str(resources.files("yibao") / "data" / "procurement" / "rulesets"))


# ---------------------------------------------------------------------------
# schema


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Ratio = Decimal


class CatalogRules(_M):
    """Catalog entry (采购品种目录) and the maximum valid bid price (最高有效申报价)."""

    # None: the gate does not apply (consumables have no 一致性评价; a consumables rule set must say null)
    min_passed_consistency: int | None = Field(default=3, ge=1)
    min_competitors: int | None = Field(default=None, ge=1, description="batch 11: reference drug + passed generics")
    max_price_method: Literal["given", "min_listed_share_provincial"] = "given"
    listed_avg_share: Ratio | None = None
    top_amount_share: Ratio | None = Field(
        default=None, gt=0, le=1, description="Guangdong draft: products making up this share of purchase amount"
    )

    @model_validator(mode="after")
    def _share(self) -> CatalogRules:
        if self.max_price_method == "min_listed_share_provincial" and self.listed_avg_share is None:
            raise ValueError("listed_avg_share is required when max_price_method is min_listed_share_provincial")
        return self


class EligibilityRules(_M):
    """Bidder eligibility (申报资格)."""

    quality_lookback_years: int = Field(default=2, ge=0)
    excluded_credit_grades: tuple[str, ...] = ("serious_breach",)
    capacity_multiple: Ratio | None = Field(default=None, gt=0)
    capacity_reference: Literal["sole_winner_volume", "base"] = "sole_winner_volume"
    cap_by_national_highest_price: bool = False
    cap_by_reference_price: bool = False
    two_envelope_min_score: Decimal | None = None
    non_bidder_delisting: bool = False
    non_bidder_ban_years: int | None = Field(default=None, ge=1)


class PriceDifferenceRules(_M):
    """Unit comparable price (单位可比价) by the price-difference rules (差比价)."""

    content_coef: Decimal = Field(..., gt=1)
    fill_coef: Decimal = Field(..., gt=1)
    fill_equal_up_to_ml: Decimal = Decimal(0)
    pediatric_content_coef: Decimal | None = Field(default=None, gt=1)
    price_decimals: int = Field(default=4, ge=2, le=6)


class QualificationRules(_M):
    """The three-way qualification test (any path qualifies) from batch 2 on."""

    ratio_to_anchor: Decimal | None = Field(default=None, gt=1)
    anchor: Literal["lowest", "max_lowest_share_of_mean"] = "lowest"
    anchor_mean_share: Ratio | None = None
    cut_from_max_price: Ratio | None = None
    cut_alone_qualifies: bool = True
    absolute_unit_price: dict[str, Decimal] = Field(default_factory=dict)

    @field_validator("absolute_unit_price")
    @classmethod
    def _forms(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        for k in v:
            if k not in ("all", *DOSAGE_FORMS):
                raise ValueError(f"unknown dosage form {k!r}; use 'all' or one of {DOSAGE_FORMS}")
        return v


DOSAGE_FORMS = ("oral_solid", "oral_liquid", "small_injection", "large_injection", "other")


class RevivalRules(_M):
    """Batch 10 revival (复活): a bidder that failed the ratio test accepts a price."""

    enabled: bool = False
    single_winner_ratio: Decimal | None = None


class EliminationRules(_M):
    """Batch 7: an elimination step over the ranking of qualified bids."""

    enabled: bool = False
    min_qualified: int = Field(default=2, ge=2)
    drop_highest: int = Field(default=1, ge=1)


class GroupingRules(_M):
    """Guangdong A/B grouping by market volume."""

    enabled: bool = False
    group_a_volume_share: Ratio = Decimal("0.8")
    group_a_no_elimination_up_to: int = 6
    group_b_rule: Literal["price_not_above_group_a_highest_winner", "all_eligible"] = (
        "price_not_above_group_a_highest_winner"
    )


class SlotRules(_M):
    """Batch 10 slot reductions (名额核减)."""

    shared_contract_manufacturer_one_slot: bool = False
    b_cert_holders_per_slot: int | None = Field(default=None, ge=1)
    b_cert_max_slots: int = Field(default=0, ge=0)


class SelectionRules(_M):
    """Proposed winners (拟中选).  ``qualification``: eligible bidders ranked by unit comparable price, the lowest
    ``max_winners[N eligible]`` shortlisted (入围), shortlisted firms passing a price test win (rule 1), then the
    elimination step and, from batch 10, revival of shortlisted firms that failed rule 1 (rule 2)."""

    method: Literal["largest_cut", "lowest_n", "qualification"]
    lowest_n: int | None = Field(default=None, ge=1)
    qualification: QualificationRules | None = None
    max_winners: dict[int, int] = Field(
        default_factory=dict,
        description="N eligible bidders (符合资格的申报企业数, lower bound) -> max shortlisted (最多入围企业数)",
    )
    revival: RevivalRules = RevivalRules()
    elimination: EliminationRules = EliminationRules()
    grouping: GroupingRules = GroupingRules()
    slots: SlotRules = SlotRules()

    @model_validator(mode="after")
    def _consistent(self) -> SelectionRules:
        if self.method == "lowest_n" and self.lowest_n is None:
            raise ValueError("lowest_n is required when method is lowest_n")
        if self.method == "qualification":
            if self.qualification is None:
                raise ValueError("qualification is required when method is qualification")
            if not self.max_winners or min(self.max_winners) != 1:
                raise ValueError("max_winners must be a table starting at N=1")
        for n, m in self.max_winners.items():
            if n < 1 or m < 1 or m > n:
                raise ValueError(f"max_winners[{n}]={m}: need 1 <= winners <= N")
        return self

    def max_winners_for(self, n: int) -> int:
        if n <= 0:
            return 0
        keys = [k for k in sorted(self.max_winners) if k <= n]
        return min(n, self.max_winners[keys[-1]]) if keys else n


TIE_BREAK_KEYS = ("credit_grade", "supply_regions", "sales_volume", "consistency_date", "first_registration_date")


class TieBreak(_M):
    key: Literal["credit_grade", "supply_regions", "sales_volume", "consistency_date", "first_registration_date"]
    prefer: Literal["higher", "lower", "earlier", "order"]
    order: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _order(self) -> TieBreak:
        if self.prefer == "order" and not self.order:
            raise ValueError("prefer: order needs an order list")
        return self


class Modifier(_M):
    """A table that replaces the base table for a product class (e.g. injectables)."""

    shares: dict[int, Ratio] | None = None
    years: dict[int, int] | None = None
    share_reduction: Ratio = Decimal(0)


class VolumeRules(_M):
    """Agreed volume (约定采购量) as a share of the base, by number of winners."""

    shares: dict[int, Ratio]
    antibiotic_reduction: Ratio = Decimal(0)
    injectable: Modifier | None = None
    sole_product_share: Ratio | None = None
    brand_direct_supply: bool = False
    min_report_share: Ratio = Decimal("0.8")

    @field_validator("shares")
    @classmethod
    def _shares(cls, v: dict[int, Ratio]) -> dict[int, Ratio]:
        if 1 not in v:
            raise ValueError("shares must start at 1 winner")
        for k, s in v.items():
            if not (0 < s <= 1):
                raise ValueError(f"share for {k} winners must be in (0, 1], got {s}")
        return v


class CycleRules(_M):
    years: dict[int, int]
    injectable: Modifier | None = None
    alliance_overlap_cycles: int | None = Field(
        None, ge=1, description="八省二区: cycles where the alliance result holds"
    )

    @field_validator("years")
    @classmethod
    def _years(cls, v: dict[int, int]) -> dict[int, int]:
        if 1 not in v:
            raise ValueError("years must start at 1 winner")
        return v


class SupplyRules(_M):
    """Supply-region allocation (供应地区选择)."""

    backup_regions: bool = False


class ConsumablesRules(_M):
    """Consumables variant (耗材): grouping and bidding vs negotiation (议价)."""

    grouping_attributes: tuple[str, ...] = ()
    min_bidders_for_bidding: int = Field(default=2, ge=1)
    negotiation_min_cut: Ratio = Decimal(0)
    volume_base_share: Ratio = Decimal("0.8")
    cycle_years: int = Field(default=2, ge=1)


class IntegrityRules(_M):
    """Thresholds of the bid-integrity checks (投标价格异常治理)."""

    new_firm_years: int = 3
    sales_finance_share: Ratio = Decimal("0.6")
    min_agent_bidders: int = 2


class RuleSet(_M):
    """A complete, merged and validated rule set."""

    id: str
    name_zh: str
    name_en: str
    kind: Literal["national", "alliance"]
    effective: dt.date | None = None
    sources: tuple[str, ...] = ()
    goods: Literal["drug", "consumable"] = "drug"
    catalog: CatalogRules = CatalogRules()
    eligibility: EligibilityRules = EligibilityRules()
    price_difference: PriceDifferenceRules
    selection: SelectionRules
    tie_break: tuple[TieBreak, ...]
    volume: VolumeRules
    cycle: CycleRules
    supply: SupplyRules = SupplyRules()
    consumables: ConsumablesRules = ConsumablesRules()
    integrity: IntegrityRules = IntegrityRules()
    # values not confirmed against the round's own documents: dotted key paths, each with why (loader keeps them)
    uncertain: dict[str, str] = Field(default_factory=dict)
    chain: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _goods_gate(self) -> RuleSet:
        if self.goods == "consumable" and self.catalog.min_passed_consistency is not None:
            raise ValueError(
                "catalog.min_passed_consistency must be null for consumables: consistency evaluation (一致性评价) "
                "applies to generic drugs only"
            )
        if not self.sources:
            raise ValueError("sources: a rule set must cite at least one source document")
        return self

    def share_for(
        self, winners: int, *, antibiotic: bool = False, injectable: bool = False, sole_product: bool = False
    ) -> Decimal:
        """First-year agreed-volume share of the base."""
        if winners <= 0:
            return Decimal(0)
        if sole_product and winners == 1 and self.volume.sole_product_share is not None:
            return self.volume.sole_product_share
        table = self.volume.shares
        reduction = Decimal(0)
        if injectable and self.volume.injectable is not None:
            table = self.volume.injectable.shares or table
            reduction += self.volume.injectable.share_reduction
        share = table[max(k for k in table if k <= winners)]
        if antibiotic:
            reduction += self.volume.antibiotic_reduction
        return max(Decimal(0), share - reduction)

    def cycle_years_for(self, winners: int, *, injectable: bool = False) -> int:
        table = self.cycle.years
        if injectable and self.cycle.injectable is not None and self.cycle.injectable.years:
            table = self.cycle.injectable.years
        return table[max(k for k in table if k <= max(winners, 1))]


# ---------------------------------------------------------------------------
# loading


def _merge(parent: Any, child: Any) -> Any:
    if isinstance(parent, dict) and isinstance(child, dict):
        out = dict(parent)
        for k, v in child.items():
            if k in out and isinstance(v, dict) and isinstance(out[k], dict) and not v.get("_replace"):
                out[k] = _merge(out[k], v)
            else:
                out[k] = {kk: vv for kk, vv in v.items() if kk != "_replace"} if isinstance(v, dict) else v
        return out
    return child


def _read(path: Path) -> dict:
    return read_yaml(path, what=("rule-set file", "集采规则文件"), error=RuleSetError)


def load_raw(name_or_path: str | Path, _seen: tuple[str, ...] = ()) -> tuple[dict, list[str]]:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = rules_dir() / f"{name_or_path}.yaml"
    if path.name in _seen:
        raise RuleSetError(
            f"{path.name}: extends cycle through {list(_seen)}", f"{path.name}: 继承关系出现循环", field="extends"
        )
    data = _read(path)
    chain = [path.name]
    parent = data.pop("extends", None)
    if parent:
        if not isinstance(parent, str):
            raise RuleSetError(
                f"{path.name}: extends: must be a rule-set name", f"{path.name}: extends 必须是规则名", field="extends"
            )
        ppath = path.parent / f"{parent}.yaml"
        praw, pchain = load_raw(ppath, _seen + (path.name,))
        praw.pop("abstract", None)
        data = _merge(praw, data)
        chain = pchain + chain
    return data, chain


def load_ruleset(name_or_path: str | Path) -> RuleSet:
    """Load, merge and validate one rule set (by name or path)."""
    raw, chain = load_raw(name_or_path)
    if raw.pop("abstract", False):
        raise RuleSetError(
            f"{chain[-1]}: is an abstract base, not a runnable rule set", f"{chain[-1]}: 是抽象基础规则, 不能直接使用"
        )
    raw["chain"] = tuple(chain)
    if isinstance(raw.get("uncertain"), dict):
        # a child file confirms an inherited value by setting its entry to null
        raw["uncertain"] = {k: v for k, v in raw["uncertain"].items() if v is not None}
    try:
        rs = RuleSet.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        files = " <- ".join(reversed(chain))
        n = len(exc.errors())
        more = f" (and {n - 1} more)" if n > 1 else ""
        raise RuleSetError(
            f"{files}: {key}: {err['msg']}{more}", f"{files}: {key}: 取值无效 ({err['msg']}){more}", field=key
        ) from None
    for path in rs.uncertain:
        if not _resolves(rs, path):
            files = " <- ".join(reversed(chain))
            raise RuleSetError(
                f"{files}: uncertain.{path}: names no rule-set value",
                f"{files}: uncertain.{path}: 不是规则中的字段",
                field=f"uncertain.{path}",
            )
    return rs


def _resolves(obj: Any, path: str) -> bool:
    """Does a dotted key path (``selection.qualification.ratio_to_anchor``) name a value of the rule set?"""
    for part in path.split("."):
        if isinstance(obj, BaseModel) and part in type(obj).model_fields:
            obj = getattr(obj, part)
        elif isinstance(obj, dict) and part in {str(k) for k in obj}:
            obj = next(v for k, v in obj.items() if str(k) == part)
        else:
            return False
    return True


@lru_cache(maxsize=64)
def get_ruleset(name: str) -> RuleSet:
    """Cached :func:`load_ruleset` for shipped rule sets."""
    return load_ruleset(name)


def list_rulesets() -> list[str]:
    """Names of every shipped, runnable rule set."""
    out = []
    for p in sorted(rules_dir().glob("*.yaml")):
        data = _read(p)
        if not data.get("abstract"):
            out.append(p.stem)
    return out
