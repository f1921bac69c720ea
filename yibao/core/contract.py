"""The shared data contract (the project specification's data contract, written down here).

Every subsystem reads these tables in this shape.  The same columns exist
as SQLAlchemy models (:mod:`yibao.core.db`) and as Arrow/Parquet schemas
(here).  Column names follow the national interface where it has one.

Conventions
-----------
* **Money** is integer fen (``int64``) in every column whose name the
  national interface uses for a yuan amount (``det_item_fee_sumamt``,
  ``hifp_pay`` …).  The national interface itself carries yuan with two
  decimals; conversion happens only at that boundary.
* **Ratios** are integer basis points (``*_bp``).
* **Time** is Asia/Shanghai local time.  Parquet timestamps are stored with
  that zone; ``policy_year`` is an explicit column.
* **Synthetic** records carry ``synthetic = true``.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

SCHEMA_VERSION = "2"  # 2: the practitioner table (医保医师/护士/药师)
TIMEZONE = "Asia/Shanghai"
MONEY_UNIT = "fen"

# --- national code semantics: the one place -------------------------------
#
# What the national codes *mean* lives here and nowhere else: the scheme an
# insutype belongs to, the ordered fund-payment fields with their labels,
# the province part of a division code, the med_type values.  It is in the
# contract (not in ``yibao.codes``) because these are the meanings of the
# contract's own columns (``insutype``, ``med_type``, the ``*_pay`` amounts,
# ``insuplc_admdvs``/``mdtrtarea_admvs``), and because ``core`` is the bottom
# layer: every subsystem, ``yibao.codes.divisions`` included, imports it
# without a cycle.  ``codes.divisions`` validates a division code and then
# uses :func:`province_part` from here.  ``tests/codes/test_code_semantics.py``
# greps ``yibao/`` for code literals outside this module.
#
# Source of the code list: the national interface's 险种类型 dictionary, as
# the project's settlement spec lists it (310 320 330 390 392 510) and as
# ``yibao/data/api/more_transactions.yaml`` (``dictionaries.insutype``) and
# ``yibao/data/labels.yaml`` (``insutype``) carry it.
# 340, 350 and 391 are in editions of the national dictionary seen in public
# HIS code but not in the spec: UNCERTAIN, listed so that their scheme is
# decided here rather than by whatever default a caller happens to use.

INSUTYPE_EMPLOYEE = "310"  # 职工基本医疗保险
INSUTYPE_CIVIL_SERVANT = "320"  # 公务员医疗补助
INSUTYPE_LARGE_AMOUNT = "330"  # 大额医疗费用补助
INSUTYPE_RETIRED_CADRE = "340"  # 离休人员医疗保障 (uncertain: not in the spec)
INSUTYPE_DISABLED_VETERAN = "350"  # 一至六级残疾军人医疗补助 (uncertain: not in the spec)
INSUTYPE_RESIDENT = "390"  # 城乡居民基本医疗保险
INSUTYPE_URBAN_RESIDENT = "391"  # 城镇居民基本医疗保险 (uncertain: not in the spec)
INSUTYPE_RESIDENT_CRITICAL = "392"  # 城乡居民大病医疗保险
INSUTYPE_MATERNITY = "510"  # 生育保险

SCHEME_EMPLOYEE: Final = "employee"  # 职工医保
SCHEME_RESIDENT: Final = "resident"  # 居民医保
SCHEMES = (SCHEME_EMPLOYEE, SCHEME_RESIDENT)

INSUTYPE_SCHEMES: dict[str, str] = {
    INSUTYPE_EMPLOYEE: SCHEME_EMPLOYEE,
    INSUTYPE_CIVIL_SERVANT: SCHEME_EMPLOYEE,  # a layer on top of the employee fund
    INSUTYPE_LARGE_AMOUNT: SCHEME_EMPLOYEE,  # the employee large-amount layer
    INSUTYPE_RETIRED_CADRE: SCHEME_EMPLOYEE,
    INSUTYPE_DISABLED_VETERAN: SCHEME_EMPLOYEE,
    INSUTYPE_RESIDENT: SCHEME_RESIDENT,
    INSUTYPE_URBAN_RESIDENT: SCHEME_RESIDENT,
    INSUTYPE_RESIDENT_CRITICAL: SCHEME_RESIDENT,
    # 510 maternity: merged into the employee scheme since 2019, but the
    # platform has always treated it as not-employee (no account); kept so
    # until a rule file says otherwise.
    INSUTYPE_MATERNITY: SCHEME_RESIDENT,
}
"""The basic scheme (fund kept apart in every pool) an insutype belongs to."""

SCHEME_INSUTYPES: dict[str, str] = {SCHEME_EMPLOYEE: INSUTYPE_EMPLOYEE, SCHEME_RESIDENT: INSUTYPE_RESIDENT}
"""The basic insutype of each scheme (what ``person.insutype`` holds)."""

SCHEME_NAMES: dict[str, tuple[str, str]] = {
    INSUTYPE_EMPLOYEE: ("职工医保", "employee"),
    INSUTYPE_RESIDENT: ("居民医保", "resident"),
}
"""Short (Chinese, English) names of the two basic schemes by insutype (legends, fund tables)."""


def scheme_of(insutype: str | None) -> str:
    """``'employee'`` or ``'resident'``: the scheme of an insutype (险种所属制度).

    Unknown or empty codes are resident-side, as every caller treated them
    before there was one place to ask.
    """
    return INSUTYPE_SCHEMES.get(insutype or "", SCHEME_RESIDENT)


def is_employee_side(insutype: str | None) -> bool:
    """True when the insutype belongs to the employee scheme (职工医保: 310, 320, 330 …)."""
    return scheme_of(insutype) == SCHEME_EMPLOYEE


def insutype_sql(column: str, scheme: str) -> str:
    """A SQL condition: ``column`` is the basic insutype of ``scheme`` (``insutype = '310'``)."""
    return f"{column} = '{SCHEME_INSUTYPES[scheme]}'"


# fund-payment fields (基金支付) of a settlement, in the order of the national
# setlinfo output, with (English, Chinese) labels; then what the person pays.
FUND_PAY_LABELS: dict[str, tuple[str, str]] = {
    "hifp_pay": ("pooled fund", "统筹基金"),
    "hifob_pay": ("large-amount subsidy", "大额医疗费用补助"),
    "hifmi_pay": ("critical illness", "大病保险"),
    "cvlserv_pay": ("civil-servant subsidy", "公务员医疗补助"),
    "maf_pay": ("medical assistance", "医疗救助"),
    "hifes_pay": ("enterprise supplementary", "企业补充医疗保险"),
    "oth_pay": ("other funds", "其他基金"),
}
FUND_PAY_FIELDS: tuple[str, ...] = tuple(FUND_PAY_LABELS)
"""The funds' share fields; their sum is ``fund_pay_sumamt``."""

PERSON_PAY_LABELS: dict[str, tuple[str, str]] = {
    "acct_pay": ("personal account", "个人账户"),
    "acct_mulaid_pay": ("account mutual aid", "共济账户"),
    "psn_cash_pay": ("cash", "个人现金"),
}
PAYER_LABELS: dict[str, tuple[str, str]] = {**FUND_PAY_LABELS, **PERSON_PAY_LABELS}
"""Every payer of a settlement, funds first then the person (the fund-year layers)."""

# 医保区划: the first two digits of a 6-digit division code are the province.
PROVINCE_DIGITS = 2


def province_part(admdvs: str | None) -> str:
    """The province part of a division code (``'320500'`` → ``'32'``), ``''`` for none; not validated."""
    return (admdvs or "")[:PROVINCE_DIGITS]


def city_part(admdvs: str) -> str:
    """The city-level code of a division (``'320505'`` → ``'320500'``)."""
    return admdvs[:4] + "00"


def province_code(admdvs: str) -> str:
    """The province-level code of a division (``'320505'`` → ``'320000'``)."""
    return province_part(admdvs) + "0000"


def is_cross_province(insuplc_admdvs: str | None, mdtrtarea_admvs: str | None) -> bool:
    """True when the place of treatment lies in another province than the insured place (跨省异地就医).

    An empty place of treatment means the insured place.  Codes are not
    validated here (the batch path compares the same prefixes);
    :func:`yibao.codes.divisions.is_cross_province` validates both first.
    """
    area = mdtrtarea_admvs or insuplc_admdvs
    return province_part(area) != province_part(insuplc_admdvs)


PSN_TYPE_IN_SERVICE = "in_service"  # 在职
PSN_TYPE_RETIRED = "retired"  # 退休
PSN_TYPE_RESIDENT = "resident"  # 城乡居民 (no employment status)

ASSISTANCE_NONE = ""
ASSISTANCE_DIBAO = "dibao"  # 低保 subsistence allowance
ASSISTANCE_TEKUN = "tekun"  # 特困 extreme poverty
ASSISTANCE_FANPIN = "fanpin"  # 返贫致贫 at risk of (falling back into) poverty
ASSISTANCE_STATUSES = (ASSISTANCE_NONE, ASSISTANCE_DIBAO, ASSISTANCE_TEKUN, ASSISTANCE_FANPIN)

GEND_MALE = "1"
GEND_FEMALE = "2"

RELATIONS = ("spouse", "parent", "child")  # what the relative is to the person

INSTITUTION_TYPES = ("hospital", "primary", "pharmacy")

# prac_psn_type (执业人员分类, interface 5102, values of medins_psn_type)
PRAC_PSN_TYPE_DOCTOR = "1"  # 医师
PRAC_PSN_TYPE_NURSE = "2"  # 护士
PRAC_PSN_TYPE_PHARMACIST = "3"  # 药师
PRAC_PSN_TYPE_TECHNICIAN = "4"  # 医技人员
PRAC_PSN_TYPES = (PRAC_PSN_TYPE_DOCTOR, PRAC_PSN_TYPE_NURSE, PRAC_PSN_TYPE_PHARMACIST, PRAC_PSN_TYPE_TECHNICIAN)

# chrgitm_lv: 甲类 / 乙类 / 丙类 (national codes 01/02/03)
CLASS_A = "01"  # 甲类: fully in policy
CLASS_B = "02"  # 乙类: in policy after a self-pay-first share
CLASS_C = "03"  # 丙类: fully self-paid

LIST_KINDS = ("western", "tcm_patent", "herbal", "consumable", "service")

# med_type (医疗类别); 52 and "LTC" are local codes and configurable in policy
MED_TYPE_OUTPATIENT = "11"  # 普通门诊
MED_TYPE_CHRONIC = "14"  # 门诊慢特病
MED_TYPE_INPATIENT = "21"  # 普通住院
MED_TYPE_PHARMACY = "41"  # 定点药店购药
MED_TYPE_HOME_BED = "52"  # 家庭病床 (local)
MED_TYPE_NAMES: dict[str, str] = {
    MED_TYPE_OUTPATIENT: "普通门诊",
    MED_TYPE_CHRONIC: "门诊慢特病",
    MED_TYPE_INPATIENT: "普通住院",
    MED_TYPE_PHARMACY: "定点药店购药",
    MED_TYPE_HOME_BED: "家庭病床",
}
OUTPATIENT_MED_TYPES = (MED_TYPE_OUTPATIENT, MED_TYPE_CHRONIC)
"""Outpatient medical types (门诊) — with 21 the encounters a hospital reports."""

# drug classes excluded from long-term prescriptions (长期处方)
DRUG_CLASSES = (
    "",
    "toxic",  # 医疗用毒性药品
    "radioactive",  # 放射性药品
    "precursor",  # 易制毒药品
    "narcotic",  # 麻醉药品
    "psychotropic_1",  # 第一类精神药品
    "psychotropic_2",  # 第二类精神药品
    "antimicrobial",  # 抗微生物药物
    "special_storage",  # 对储存条件有特殊要求的药品
)

# --- Arrow schemas ----------------------------------------------------------

_TS = pa.timestamp("s", tz=TIMEZONE)

PERSON = pa.schema(
    [
        ("psn_no", pa.string()),
        ("certno", pa.string()),
        ("psn_name", pa.string()),
        ("gend", pa.string()),
        ("brdy", pa.date32()),
        ("insutype", pa.string()),  # 310 or 390 (the basic scheme)
        ("psn_type", pa.string()),  # in_service / retired / resident
        ("civil_servant", pa.bool_()),  # also covered by 320
        ("insuplc_admdvs", pa.string()),
        ("assistance", pa.string()),  # '' / dibao / tekun / fanpin
        ("contribution_base", pa.int64()),  # fen per month (employees), 0 otherwise
        ("acct_balc", pa.int64()),  # personal account opening balance, fen
        ("family_id", pa.string()),
        ("synthetic", pa.bool_()),
    ]
)

FAMILY_LINK = pa.schema(
    [
        ("psn_no", pa.string()),
        ("relative_psn_no", pa.string()),
        ("relation", pa.string()),  # what relative_psn_no is to psn_no
        ("synthetic", pa.bool_()),
    ]
)

INSTITUTION = pa.schema(
    [
        ("fixmedins_code", pa.string()),
        ("fixmedins_name", pa.string()),
        ("fixmedins_type", pa.string()),  # hospital / primary / pharmacy
        ("hosp_lv", pa.int8()),  # 1, 2, 3; 0 for pharmacies
        ("admdvs", pa.string()),
        ("synthetic", pa.bool_()),
    ]
)

PRACTITIONER = pa.schema(
    [
        (
            "prac_psn_code",
            pa.string(),
        ),  # 执业人员代码: 医保医师/护士/药师代码 (encounter.dr_code, fee_detail.bilg_dr_code)
        ("prac_psn_name", pa.string()),  # 执业人员姓名
        ("prac_psn_type", pa.string()),  # 执业人员分类: 1 医师, 2 护士, 3 药师, 4 医技人员
        ("fixmedins_code", pa.string()),  # the institution the person practises at
        ("synthetic", pa.bool_()),
    ]
)

MED_LIST = pa.schema(
    [
        ("med_list_codg", pa.string()),
        ("name", pa.string()),
        ("list_kind", pa.string()),  # western / tcm_patent / herbal / consumable / service
        ("chrgitm_lv", pa.string()),  # 01 甲, 02 乙, 03 丙
        ("selfpay_prop_bp", pa.int32()),  # 先行自付比例, basis points
        ("pric_uplmt", pa.int64()),  # price cap per unit, fen; 0 = none
        ("lmt_gend", pa.string()),  # '' or 1/2
        ("lmt_age_min", pa.int16()),  # -1 = none
        ("lmt_age_max", pa.int16()),  # -1 = none
        ("lmt_hosp_lv_min", pa.int8()),  # 0 = none
        ("lmt_indication", pa.string()),  # ';'-separated ICD-10 prefixes, '' = none
        ("lmt_med_types", pa.string()),  # ';'-separated med_type codes, '' = none
        ("drug_class", pa.string()),  # see DRUG_CLASSES
        ("acct_excluded", pa.bool_()),  # personal account may not pay (wellness, fitness…)
        ("vbp_flag", pa.bool_()),  # 集采 product
        ("vbp_pay_std", pa.int64()),  # payment standard per unit, fen; 0 = none
        ("synthetic", pa.bool_()),
    ]
)

ENCOUNTER = pa.schema(
    [
        ("mdtrt_id", pa.string()),
        ("psn_no", pa.string()),
        ("fixmedins_code", pa.string()),
        ("med_type", pa.string()),
        ("begntime", _TS),
        ("endtime", _TS),
        ("policy_year", pa.int16()),
        ("dise_codg", pa.string()),  # principal diagnosis, ICD-10
        ("other_dise_codg", pa.string()),  # ';'-separated
        ("oprn_codg", pa.string()),  # ';'-separated procedure codes
        ("dscg_way", pa.string()),  # discharge way
        ("dept_code", pa.string()),
        ("dr_code", pa.string()),
        ("mdtrtarea_admvs", pa.string()),  # place of treatment
        ("mulaid_payer_psn_no", pa.string()),  # relative whose account pays (共济), '' = none
        ("lt_rx_confirmed", pa.bool_()),  # long prescription evaluated and confirmed by patient
        ("synthetic", pa.bool_()),
    ]
)

FEE_DETAIL = pa.schema(
    [
        ("mdtrt_id", pa.string()),
        ("feedetl_sn", pa.int32()),
        ("med_list_codg", pa.string()),
        ("cnt_milli", pa.int64()),  # quantity × 1000 (exact)
        ("pric", pa.int64()),  # unit price, fen
        ("det_item_fee_sumamt", pa.int64()),  # line total, fen
        ("fee_ocur_time", _TS),
        ("rxno", pa.string()),
        ("rx_circ_flag", pa.bool_()),  # 外配处方
        ("prd_days", pa.int16()),  # prescription period in days, 0 = not a prescription
        ("bilg_dr_code", pa.string()),
        ("synthetic", pa.bool_()),
    ]
)

SETTLEMENT_AMOUNTS = (
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "hifp_pay",
    "hifmi_pay",
    "hifob_pay",
    "cvlserv_pay",
    "maf_pay",
    "hifes_pay",
    "oth_pay",
    "hosp_part_amt",
    "fund_pay_sumamt",
    "psn_part_amt",
    "acct_pay",
    "acct_mulaid_pay",
    "psn_cash_pay",
)

SETTLEMENT = pa.schema(
    [
        ("setl_id", pa.string()),
        ("mdtrt_id", pa.string()),
        ("psn_no", pa.string()),
        ("fixmedins_code", pa.string()),
        ("setl_time", _TS),
        ("policy_year", pa.int16()),
        ("insutype", pa.string()),
        ("med_type", pa.string()),
        ("benefit_category", pa.string()),
        *[(name, pa.int64()) for name in SETTLEMENT_AMOUNTS],
        ("pool_prop_selfpay_bp", pa.int32()),  # pooled fund's ratio, reported back
        ("balc", pa.int64()),  # account balance after (batch: not filled)
        ("refd_setl_flag", pa.bool_()),  # cancelled
        ("synthetic", pa.bool_()),
    ]
)

GROUND_TRUTH = pa.schema(
    [
        ("entity", pa.string()),  # e.g. "encounter"
        ("entity_id", pa.string()),
        ("pattern", pa.string()),
        ("detail", pa.string()),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "person": PERSON,
    "family_link": FAMILY_LINK,
    "institution": INSTITUTION,
    "practitioner": PRACTITIONER,
    "med_list": MED_LIST,
    "encounter": ENCOUNTER,
    "fee_detail": FEE_DETAIL,
    "settlement": SETTLEMENT,
    "ground_truth": GROUND_TRUTH,
}


def with_metadata(schema: pa.Schema, table: str) -> pa.Schema:
    """Attach the contract's metadata (schema version, money unit, zone)."""
    return schema.with_metadata(
        {
            b"yibao.table": table.encode(),
            b"yibao.schema_version": SCHEMA_VERSION.encode(),
            b"yibao.money_unit": MONEY_UNIT.encode(),
            b"yibao.timezone": TIMEZONE.encode(),
        }
    )
