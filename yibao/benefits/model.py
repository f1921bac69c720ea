"""Typed benefit policy on one date (a *snapshot*), validated with Pydantic.

Amounts in files are yuan; here they are integer fen.  Ratios in files are
decimals (``0.85``); here they are integer basis points (``8500``).

Benefit categories (待遇类别) are fixed by the mechanics; what each pays is
data:

* ``outpatient``: general outpatient, resident outpatient pooling (门诊统筹)
* ``chronic``: outpatient chronic disease (门诊慢性病, e.g. hypertension, diabetes)
* ``special``: outpatient special disease paid like inpatient care (门诊特殊病:
  chemotherapy, dialysis, anti-rejection, day surgery)
* ``inpatient``: 住院
* ``pharmacy``: purchase at a designated pharmacy (定点药店购药)
* ``home_bed``: 家庭病床
* ``maternity``: maternity care, prenatal checks and delivery (生育医疗费), paid by
  the maternity fund (生育保险基金) under the employee scheme
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from yibao.core.contract import INSUTYPE_MATERNITY, scheme_of
from yibao.core.money import NO_CAP, MoneyError, parameter_fen, ratio_to_bp

CATEGORIES = ("outpatient", "chronic", "special", "inpatient", "pharmacy", "home_bed", "maternity")
SETTINGS = ("outpatient", "chronic", "inpatient", "pharmacy", "home_bed", "maternity")
LAYER_FIELDS = ("hifmi_pay", "hifob_pay", "cvlserv_pay", "hifes_pay", "oth_pay")
ACCOUNT_COMPONENTS = ("inscp_selfpay", "preselfpay", "fulamt_ownpay", "overlmt_selfpay")


_fen = parameter_fen  # yuan in the file → fen, never negative (core.money)


def _bp(v: Any) -> int:
    try:
        return ratio_to_bp(v)
    except MoneyError as exc:
        raise ValueError(str(exc)) from exc


def _fen_or_none(v: Any) -> int:
    """A cap: yuan, or ``none`` for no cap (returned as :data:`NO_CAP`)."""
    if v is None or (isinstance(v, str) and v.lower() in ("none", "unlimited")):
        return NO_CAP
    return _fen(v)


Fen = Annotated[int, BeforeValidator(_fen)]
Bp = Annotated[int, BeforeValidator(_bp)]
Cap = Annotated[int, BeforeValidator(_fen_or_none)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelTable(_Strict):
    """A value by institution level (``level_0`` pharmacies … ``level_3``), or ``all``."""

    all: int | None = None
    level_0: int | None = None
    level_1: int | None = None
    level_2: int | None = None
    level_3: int | None = None

    def get(self, level: int) -> int:
        v = getattr(self, f"level_{level}", None)
        if v is None:
            v = self.all
        if v is None:
            raise KeyError(level)
        return v

    def as_list(self) -> list[int]:
        """Values for levels 0..3 (missing levels fall back to ``all``, else 0)."""
        out = []
        for lv in range(4):
            try:
                out.append(self.get(lv))
            except KeyError:
                out.append(0)
        return out


def _level_table(conv):
    def parse(v: Any) -> LevelTable:
        if isinstance(v, LevelTable):
            return v
        if not isinstance(v, dict):
            return LevelTable(all=conv(v))
        unknown = set(v) - {"all", "level_0", "level_1", "level_2", "level_3"}
        if unknown:
            raise ValueError(f"unknown level key(s) {sorted(unknown)}; use all or level_0..level_3")
        return LevelTable(**{k: conv(x) for k, x in v.items()})

    return parse


FenByLevel = Annotated[LevelTable, BeforeValidator(_level_table(_fen))]
BpByLevel = Annotated[LevelTable, BeforeValidator(_level_table(_bp))]


class CategoryRule(_Strict):
    """How the pooled fund (统筹基金) pays one benefit category."""

    deductible_mode: Literal["per_admission", "per_year", "per_cycle", "none"] = "per_year"
    deductible: FenByLevel = LevelTable(all=0)  # 起付线
    repeat_deductible: FenByLevel | None = None  # 再次住院起付线 (per_admission only)
    deductible_group: str | None = None  # categories sharing one per-year deductible
    ratio: BpByLevel  # 统筹支付比例
    retiree_ratio_bonus: Bp = 0  # 退休人员比例加成 (percentage points)
    cap_pool: str | None = None  # which annual cap (最高支付限额) this category counts against
    cost_cap: Cap | None = None  # cumulative eligible-cost limit (e.g. home bed ¥4,000 per cycle)
    cycle_days: int | None = None  # settlement cycle (e.g. home bed 180 days)
    selfpay_items: tuple[str, ...] = ()  # items fully self-paid in this category (建床费, 巡诊费)
    ratio_from: str | None = None  # take ratio and retiree bonus from another category ("paid like inpatient")

    @model_validator(mode="after")
    def _cycle(self) -> CategoryRule:
        if self.deductible_mode == "per_cycle" and not self.cycle_days:
            raise ValueError("deductible_mode per_cycle needs cycle_days")
        if self.cycle_days is not None and self.cycle_days <= 0:
            raise ValueError("cycle_days must be positive")
        if self.repeat_deductible is not None and self.deductible_mode != "per_admission":
            raise ValueError("repeat_deductible only applies with deductible_mode per_admission")
        return self


class Bracket(_Strict):
    threshold: Fen  # start of the bracket, in cumulative eligible amount
    rate: Bp


class PovertyAdjustment(_Strict):
    """Tilt for people in poverty (低保, 特困, 返贫致贫) in a supplementary layer."""

    statuses: tuple[str, ...] = ("dibao", "tekun", "fanpin")
    deductible_factor: Bp = 10000  # 0.5 = deductible halved
    ratio_bonus: Bp = 0  # +5 points = 0.05
    no_cap: bool = False


class Layer(_Strict):
    """A layer after the basic fund: critical illness, large-amount subsidy, civil-servant subsidy.

    Mechanics: the layer's *base* accumulates over the person-year; above the
    deductible, a marginal scale of brackets pays; a cap limits the year.
    """

    name: str
    field: Literal["hifmi_pay", "hifob_pay", "cvlserv_pay", "hifes_pay", "oth_pay"]
    base: Literal["selfpay", "overflow"]  # in-policy self-pay left / in-policy cost above the basic cap
    deductible: Fen = 0
    brackets: tuple[Bracket, ...]
    cap: Cap = NO_CAP
    applies_to: tuple[str, ...]
    requires: Literal["civil_servant"] | None = None
    poverty: PovertyAdjustment | None = None

    @field_validator("brackets")
    @classmethod
    def _ascending(cls, v: tuple[Bracket, ...]) -> tuple[Bracket, ...]:
        if not v:
            raise ValueError("a layer needs at least one bracket")
        if v[0].threshold != 0:
            raise ValueError("the first bracket must start at threshold 0")
        th = [b.threshold for b in v]
        if th != sorted(set(th)):
            raise ValueError("bracket thresholds must be strictly ascending")
        return v

    @field_validator("applies_to")
    @classmethod
    def _cats(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = set(v) - set(CATEGORIES)
        if bad:
            raise ValueError(f"unknown categories {sorted(bad)}; known: {list(CATEGORIES)}")
        return v


class AccountRule(_Strict):
    """Employee personal account (个人账户), 2021 reform."""

    in_service_credit_rate: Bp  # share of the monthly contribution base credited (≤ 2 %)
    retiree_monthly_credit: Fen  # fixed monthly credit for retirees (定额划入)
    payable: tuple[Literal["inscp_selfpay", "preselfpay", "fulamt_ownpay", "overlmt_selfpay"], ...]
    categories: tuple[str, ...] = CATEGORIES
    mutual_aid_relations: tuple[Literal["spouse", "parent", "child"], ...] = ("spouse", "parent", "child")


class Scheme(_Strict):
    insutype: str
    categories: dict[str, CategoryRule]
    caps: dict[str, Cap] = Field(default_factory=dict)
    layers: tuple[Layer, ...] = ()
    account: AccountRule | None = None

    @model_validator(mode="before")
    @classmethod
    def _ratio_from(cls, data: Any) -> Any:
        """Resolve ``ratio_from``: a category paid like another shares its ratio table."""
        cats = data.get("categories") if isinstance(data, dict) else None
        if not isinstance(cats, dict):
            return data
        cats = dict(cats)
        for name, cat in cats.items():
            if isinstance(cat, dict) and cat.get("ratio_from"):
                src = cats.get(cat["ratio_from"])
                if not isinstance(src, dict) or "ratio" not in src:
                    raise ValueError(f"categories.{name}.ratio_from: '{cat['ratio_from']}' has no ratio to share")
                cat = dict(cat)
                cat.setdefault("ratio", src["ratio"])
                cat.setdefault("retiree_ratio_bonus", src.get("retiree_ratio_bonus", 0))
                cats[name] = cat
        return {**data, "categories": cats}

    @model_validator(mode="after")
    def _complete(self) -> Scheme:
        missing = set(CATEGORIES) - set(self.categories)
        if missing:
            raise ValueError(f"categories missing: {sorted(missing)}")
        extra = set(self.categories) - set(CATEGORIES)
        if extra:
            raise ValueError(f"unknown categories {sorted(extra)}; known: {list(CATEGORIES)}")
        for name, cat in self.categories.items():
            if cat.cap_pool is not None and cat.cap_pool not in self.caps:
                raise ValueError(f"categories.{name}.cap_pool '{cat.cap_pool}' is not defined under caps")
        names = [layer.name for layer in self.layers]
        if len(names) != len(set(names)):
            raise ValueError("layer names must be unique")
        return self


class AssistanceStatus(_Strict):
    ratio: Bp
    deductible: Fen = 0
    cap: Cap = NO_CAP


class Assistance(_Strict):
    """Medical assistance (医疗救助), the third layer."""

    applies_to: tuple[str, ...]
    statuses: dict[str, AssistanceStatus]

    @field_validator("statuses")
    @classmethod
    def _known(cls, v: dict) -> dict:
        bad = set(v) - {"dibao", "tekun", "fanpin"}
        if bad:
            raise ValueError(f"unknown assistance status {sorted(bad)}; known: dibao, tekun, fanpin")
        return v


class LongRxDiseases(_Strict):
    """长期处方适用病种: the diagnoses a prescription longer than ``long_rx_over_days`` may be given for.

    The check itself is :mod:`yibao.longrx.eligibility`.
    """

    med_types: tuple[str, ...]  # med_type codes of take-home prescriptions where the check applies
    include_chronic_list: bool = True  # the 门诊慢特病 prefixes (chronic_diseases) count as listed
    prefixes: tuple[str, ...] = ()  # further ICD-10 医保版 prefixes


class LongTermPrescription(_Strict):
    """长期处方 rules."""

    long_rx_over_days: int  # a prescription longer than this is a long-term prescription
    normal_max_days: int  # ≤ 4 weeks without further conditions
    max_days: int  # absolute maximum (12 weeks)
    excluded_classes: tuple[str, ...]
    exceptions: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # class -> ICD-10 prefixes allowed
    diseases: LongRxDiseases | None = None  # None = no disease list (any diagnosis)

    @model_validator(mode="after")
    def _order(self) -> LongTermPrescription:
        if not (0 < self.long_rx_over_days <= self.normal_max_days <= self.max_days):
            raise ValueError("need 0 < long_rx_over_days <= normal_max_days <= max_days")
        return self


class LtcGrade(_Strict):
    institutional: Fen | None = None  # monthly benefit in institutional care
    home: Fen | None = None  # monthly benefit for home care


class LongTermCare(_Strict):
    """Long-term care insurance (长护险)."""

    funding_per_person_year: dict[str, Fen]  # individual / pool / finance
    grades: dict[str, LtcGrade]
    assessment: dict[str, Any] = Field(default_factory=dict)


class CrossProvince(_Strict):
    """Cross-province direct settlement (跨省异地就医)."""

    filed_ratio_reduction: Bp = 0
    unfiled_ratio_reduction: Bp = 0


class Funding(_Strict):
    """Contribution parameters used for fund income (筹资)."""

    employer_rate: Bp
    employee_rate: Bp
    resident_individual: Fen  # per person-year
    resident_fiscal_subsidy: Fen  # per person-year


class ListOverride(_Strict):
    chrgitm_lv: Literal["01", "02", "03"] | None = None
    selfpay_prop: Bp | None = None


class LocalIncome(_Strict):
    """The region's income figures (当地职工年平均工资, 居民人均可支配收入), yuan per year.

    Only used to check the national target that the combined annual cap is
    about 6 × these figures (``yibao/data/benefits/national-rules.yaml``).
    """

    average_wage: Fen | None = None  # 职工年平均工资
    disposable_income: Fen | None = None  # 居民人均可支配收入
    source: str = ""  # where the figures come from (a statistics bulletin, or "synthetic")


class MaternityAllowance(_Strict):
    """Maternity allowance (生育津贴): days by event, paid at the employer's average wage / 30 per day.

    Days are national (女职工劳动保护特别规定, 2012, art. 7): 98 days for a birth,
    +15 for a difficult birth (难产), +15 per extra baby (多胞胎), a miscarriage
    before 4 months 15 days, from 4 months 42 days.
    """

    birth_days: int  # 产假 base
    difficult_birth_extra_days: int  # 难产
    extra_baby_days: int  # per baby beyond the first (多胞胎)
    miscarriage_early_days: int  # 流产, under the weeks threshold
    miscarriage_late_days: int  # 流产, at or over the weeks threshold
    miscarriage_weeks_threshold: int  # 4 months of pregnancy, in weeks
    days_per_month: int = 30  # the divisor of the formula (月平均工资 / 30)
    min_contribution_months: int = 0  # eligibility: months of maternity contributions before the event

    @model_validator(mode="after")
    def _positive(self) -> MaternityAllowance:
        if (
            min(
                self.birth_days,
                self.miscarriage_early_days,
                self.miscarriage_late_days,
                self.days_per_month,
                self.miscarriage_weeks_threshold,
            )
            <= 0
        ):
            raise ValueError("maternity allowance days, weeks threshold and days_per_month must be positive")
        if min(self.difficult_birth_extra_days, self.extra_baby_days, self.min_contribution_months) < 0:
            raise ValueError("extra days and contribution months may not be negative")
        return self


CLAIMANTS = ("insured_woman", "insured_spouse")  # 参保女职工本人 / 参保男职工 (配偶生育, 陪产假津贴)
LUMP_SUM_KEYS = ("birth", "difficult_birth", "miscarriage_early", "miscarriage_late", "extra_baby")


class Maternity(_Strict):
    """Maternity insurance (生育保险): who qualifies, the allowance and the per-delivery lump sum.

    The medical part (生育医疗费) is the ``maternity`` benefit category of each scheme.
    ``claimants`` says who may claim the allowance: the insured woman herself and, where the city pays a
    paternity-leave allowance (陪产假津贴), the insured man whose spouse gave birth, for ``paternity_days``.
    ``lump_sums`` is a fixed delivery payment (生育医疗费定额) per event, paid through the allowance claim,
    plus ``extra_baby`` per baby beyond the first; an empty table means the city pays none.
    ``cover_insutypes`` are the enrolment schemes whose insured period on the event date counts as maternity
    cover; ``contribution_insutypes`` those whose paid monthly contributions count as maternity months.
    """

    allowance: MaternityAllowance
    claimants: tuple[Literal["insured_woman", "insured_spouse"], ...] = ("insured_woman",)
    paternity_days: int = 0
    lump_sums: dict[str, Fen] = Field(default_factory=dict)  # keys: LUMP_SUM_KEYS
    cover_insutypes: tuple[str, ...] = (INSUTYPE_MATERNITY,)
    contribution_insutypes: tuple[str, ...] = (INSUTYPE_MATERNITY,)

    @model_validator(mode="after")
    def _claimants(self) -> Maternity:
        if not self.claimants:
            raise ValueError("maternity.claimants must name at least one claimant")
        unknown = sorted(set(self.lump_sums) - set(LUMP_SUM_KEYS))
        if unknown:
            raise ValueError(f"maternity.lump_sums: unknown keys {unknown}; known: {list(LUMP_SUM_KEYS)}")
        if ("insured_spouse" in self.claimants) != (self.paternity_days > 0):
            raise ValueError("maternity.paternity_days must be positive exactly when insured_spouse may claim")
        if not self.cover_insutypes or not self.contribution_insutypes:
            raise ValueError("maternity.cover_insutypes and contribution_insutypes may not be empty")
        return self


class PolicySnapshot(_Strict):
    """A whole benefit policy as in force on one date."""

    policy: str
    region: str
    label: str
    status: Literal["national-default", "example", "official"]
    sources: tuple[str, ...] = ()
    med_types: dict[str, Literal["outpatient", "chronic", "inpatient", "pharmacy", "home_bed", "maternity"]]
    chronic_diseases: dict[Literal["chronic", "special"], tuple[str, ...]]
    schemes: dict[Literal["employee", "resident"], Scheme]
    assistance: Assistance
    long_term_prescription: LongTermPrescription
    long_term_care: LongTermCare
    cross_province: CrossProvince = CrossProvince()
    funding: Funding
    list_overrides: dict[str, ListOverride] = Field(default_factory=dict)
    local_income: LocalIncome | None = None
    maternity: Maternity | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not (len(v) == 6 and v.isdigit()):
            raise ValueError("region must be a 6-digit 医保区划 code")
        return v

    @model_validator(mode="after")
    def _both(self) -> PolicySnapshot:
        if set(self.schemes) != {"employee", "resident"}:
            raise ValueError("schemes must define employee and resident")
        lrx = self.long_term_prescription.diseases
        if lrx is not None and set(lrx.med_types) - set(self.med_types):
            unknown = sorted(set(lrx.med_types) - set(self.med_types))
            raise ValueError(f"long_term_prescription.diseases.med_types: unknown med_type {unknown}")
        return self

    def scheme_for(self, insutype: str) -> Scheme:
        return self.schemes[cast(Literal["employee", "resident"], scheme_of(insutype))]
