"""Plain data of a VBP round (集采): catalog, firms, bids, demand.

Money is integer fen (pack prices).  Unit prices (单位申报价) and unit
comparable prices (单位可比价) are integers in ten-thousandths of a yuan
("e4", 0.0001 yuan, the precision the rule documents quote: "0.1000 元").
Volumes are counts of minimum units (最小制剂单位: tablets, vials, …).
Demand is a pandas DataFrame so a national round (tens of thousands of
institutions) is processed in vectorised form.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

INJECTABLE_FORMS = frozenset({"small_injection", "large_injection"})

DEMAND_COLUMNS = ("institution_id", "region", "drug_id", "spec_id", "units", "brand_firm_id", "historical_units")


@dataclass(frozen=True, slots=True)
class Spec:
    """A specification (规格) of a catalog drug."""

    spec_id: str
    drug_id: str
    content_mg: Decimal
    units_per_pack: int
    max_price_fen: int = 0
    fill_ml: Decimal | None = None
    pediatric: bool = False
    representative: bool = False


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """A drug (or consumable group) in the procurement catalog (采购品种目录)."""

    drug_id: str
    generic_name: str
    dosage_form: str
    specs: tuple[Spec, ...]
    passed_consistency: int = 0
    competitors: int = 0
    antibiotic: bool = False
    sole_product: bool = False
    med_list_codg: str = ""
    reference_price_fen: int = 0
    listed_avg_price_fen: int = 0
    provincial_highest_win_fen: int = 0
    attributes: tuple[tuple[str, str], ...] = ()

    @property
    def injectable(self) -> bool:
        return self.dosage_form in INJECTABLE_FORMS

    @property
    def representative(self) -> Spec:
        for s in self.specs:
            if s.representative:
                return s
        return self.specs[0]

    def spec(self, spec_id: str) -> Spec | None:
        for s in self.specs:
            if s.spec_id == spec_id:
                return s
        return None


@dataclass(frozen=True, slots=True)
class Firm:
    """A bidding firm: marketing-authorisation holder (上市许可持有人) or manufacturer."""

    firm_id: str
    name: str
    credit_grade: str = "good"
    quality_failures: tuple[dt.date, ...] = ()
    b_cert: bool = False
    supply_regions: int = 0
    founded: dt.date | None = None
    staff_sales_finance: int = 0
    staff_rd_qc: int = 0
    former_distributor: bool = False


@dataclass(frozen=True, slots=True)
class Bid:
    """One bid: a firm's pack price for one specification."""

    bid_id: str
    drug_id: str
    spec_id: str
    firm_id: str
    price_fen: int
    capacity_units: int = 0
    sales_volume: int = 0
    consistency_date: dt.date | None = None
    first_registration_date: dt.date | None = None
    national_highest_price_fen: int = 0
    tech_score: Decimal | None = None
    accept_revival: bool = False
    region_preferences: tuple[str, ...] = ()
    contract_manufacturer: str = ""
    row: int = 0


@dataclass
class RoundInput:
    """Everything a round needs, validated (see :mod:`yibao.procurement.io`)."""

    name: str
    round_date: dt.date
    catalog: dict[str, CatalogEntry]
    firms: dict[str, Firm]
    bids: list[Bid]
    demand: pd.DataFrame
    banned_firms: frozenset[str] = frozenset()
    synthetic: bool = False
    regions: tuple[str, ...] = field(default=())
    relations: list = field(default_factory=list)  # yibao.procurement.integrity.Relation
