"""Pydantic models of the further national-interface transactions (see :mod:`yibao.api.more_transactions`).

Field names are the national ones (定点医药机构接口规范), as public HIS client
code spells them; where editions differ, the widespread spelling is used and
the docstring says so.  Inputs ignore fields yibao does not use.  Empty
strings in optional character fields mean "absent" (the national convention:
``"endtime": ""``).  Money is yuan with at most two decimals, never a float.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from yibao.api.schemas import (
    Code,
    Date,
    Diagnosis,
    Money,
    OptCode,
    Text,
    Time,
    _code,
    _date,
    _decimal,
    _time,
)


def _blank_none(v: Any) -> Any:
    return None if isinstance(v, str) and not v.strip() else v


def _opt_int(v: Any) -> Any:
    """An optional count: ``""`` / null → None, a digit string → int."""
    if _blank_none(v) is None:
        return None
    return int(v.strip()) if isinstance(v, str) and v.strip().isdigit() else v


def _opt_decimal(places: int, what: str, what_zh: str) -> BeforeValidator:
    """An optional decimal: ``""`` / null → None, else as :func:`yibao.api.schemas._decimal`."""
    conv = _decimal(places, what, what_zh).func
    return BeforeValidator(lambda v: None if _blank_none(v) is None else conv(v))


OptTime = Annotated[dt.datetime | None, BeforeValidator(lambda v: None if _blank_none(v) is None else _time(v))]
OptDate = Annotated[dt.date | None, BeforeValidator(lambda v: None if _blank_none(v) is None else _date(v))]
Str30 = Annotated[str, BeforeValidator(_code), Field(max_length=30)]
Str200 = Annotated[str, Field(max_length=200)]
Name = Annotated[str, Field(max_length=300)]
Qty = Annotated[Decimal, _decimal(4, "cnt", "数量")]  # national numeric(16,4)
Pric = Annotated[Decimal, _decimal(6, "pric", "单价")]  # national numeric(16,6)
PageNum = Annotated[
    int, BeforeValidator(lambda v: int(v) if isinstance(v, str) and v.strip().isdigit() else v), Field(ge=1, le=100000)
]
PageSize = Annotated[
    int, BeforeValidator(lambda v: int(v) if isinstance(v, str) and v.strip().isdigit() else v), Field(ge=1, le=1000)
]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class AnyOut(_Out):
    """A reply whose fields are listed in docs/interface.md (open model for the OpenAPI page)."""


# --- 9002 sign-out ------------------------------------------------------------------


class SignOutData(_In):
    sign_no: Annotated[str, Field(min_length=1, max_length=64)]
    opter_no: Annotated[str, Field(min_length=1, max_length=30)]


class In9002(_In):
    signOut: SignOutData


class Out9002(_Out):
    signoutoutb: dict[str, Any]


# --- 1201 institution information ---------------------------------------------------


class MedinsQuery(_In):
    fixmedins_type: OptCode = ""
    fixmedins_name: Str200 = ""
    fixmedins_code: OptCode = ""


class In1201(_In):
    medinsinfo: MedinsQuery


class Out1201(_Out):
    medinsinfo: list[dict[str, Any]]


# --- 1301 catalog download (file), 1312 catalog query (paged) --------------------------


class CatalogVersion(_In):
    ver: Annotated[str, Field(max_length=60)] = ""


class In1301(_In):
    data: CatalogVersion


class FileRef(_Out):
    file_qury_no: str
    filename: str
    dld_endtime: str


class Out1301(_Out):
    file_qury_no: str
    filename: str
    dld_endtime: str
    data_cnt: int


class CatalogQuery(_In):
    query_date: OptDate = None
    hilist_code: Annotated[str, Field(max_length=50)] = ""
    insu_admdvs: OptCode = ""
    begndate: OptDate = None
    hilist_name: Str200 = ""
    med_chrgitm_type: OptCode = ""
    chrgitm_lv: OptCode = ""
    lmt_used_flag: OptCode = ""
    list_type: OptCode = ""
    vali_flag: OptCode = ""
    updt_time: OptDate = None
    page_num: PageNum = 1
    page_size: PageSize = 100


class In1312(_In):
    data: CatalogQuery


class Out1312(_Out):
    data: list[dict[str, Any]]
    recordCounts: int
    pageNum: int
    pageSize: int
    pages: int
    size: int
    firstPage: bool
    lastPage: bool


# --- 1901 dictionaries -----------------------------------------------------------------


class DictQuery(_In):
    type: Annotated[str, Field(min_length=1, max_length=30)]
    parentValue: Annotated[str, Field(max_length=10)] = ""
    admdvs: OptCode = ""
    date: OptDate = None
    vali_flag: OptCode = ""


class In1901(_In):
    data: DictQuery


class Out1901(_Out):
    list: list[dict[str, Any]]


# --- 2001 benefit check --------------------------------------------------------------


class TrtQuery(_In):
    psn_no: Code
    insutype: Code
    fixmedins_code: OptCode = ""
    med_type: Code
    begntime: Time
    endtime: OptTime = None
    dise_codg: OptCode = ""
    dise_name: Name = ""
    oprn_oprt_code: OptCode = ""
    oprn_oprt_name: Name = ""
    matn_type: OptCode = ""
    birctrl_type: OptCode = ""


class In2001(_In):
    data: TrtQuery


class Out2001(_Out):
    trtinfo: list[dict[str, Any]]


# --- 2403 change admission, 2405 cancel discharge -----------------------------------------


class AdmissionChange(_In):
    """2403 ``adminfo``: what may change after admission (absent / empty fields keep their value)."""

    mdtrt_id: Code
    psn_no: Code
    coner_name: Annotated[str, Field(max_length=50)] = ""
    tel: Annotated[str, Field(max_length=50)] = ""
    begntime: OptTime = None
    endtime: OptTime = None
    mdtrt_cert_type: OptCode = ""
    med_type: OptCode = ""
    ipt_otp_no: OptCode = ""
    medrcdno: OptCode = ""
    atddr_no: OptCode = ""
    chfpdr_name: Annotated[str, Field(max_length=50)] = ""
    adm_diag_dscr: Text = ""
    adm_dept_codg: OptCode = ""
    adm_dept_name: Annotated[str, Field(max_length=100)] = ""
    adm_bed: OptCode = ""
    dscg_maindiag_code: OptCode = ""
    dscg_maindiag_name: Name = ""
    main_cond_dscr: Annotated[str, Field(max_length=1000)] = ""
    dise_codg: OptCode = ""
    dise_name: Annotated[str, Field(max_length=500)] = ""
    oprn_oprt_code: OptCode = ""
    oprn_oprt_name: Annotated[str, Field(max_length=500)] = ""


class In2403(_In):
    adminfo: AdmissionChange
    diseinfo: Annotated[list[Diagnosis], Field(max_length=50)] = []


class VisitRef(_In):
    mdtrt_id: Code
    psn_no: Code


class In2405(_In):
    data: VisitRef


# --- 2601 reversal -------------------------------------------------------------------


class ReversalData(_In):
    psn_no: Code
    omsgid: Annotated[str, Field(min_length=1, max_length=64)]
    oinfno: Annotated[str, BeforeValidator(_code), Field(pattern=r"^[0-9]{4}[A-Z]?$")]


class In2601(_In):
    data: ReversalData


class Out2601(_Out):
    result: dict[str, Any]


# --- 3101 / 3102 in-care analysis --------------------------------------------------------


class OrderDto(_In):
    """``fsi_order_dtos``: one prescription / order line."""

    rx_id: Annotated[str, BeforeValidator(_code), Field(min_length=1, max_length=50)]
    rxno: OptCode = ""
    hilist_code: Annotated[str, Field(min_length=1, max_length=50)]
    hilist_name: Str200 = ""
    cnt: Qty
    pric: Money
    sumamt: Money | None = None
    drord_begn_date: OptTime = None
    drord_stop_date: OptTime = None
    prd_days: Annotated[int, Field(ge=0, le=3660)] = 0


class DiagnoseDto(_In):
    dise_id: OptCode = ""
    maindise_flag: OptCode = ""
    dias_srt_no: Annotated[
        int,
        BeforeValidator(
            lambda v: int(v) if isinstance(v, str) and v.strip().isdigit() else (0 if v in ("", None) else v)
        ),
        Field(ge=0, le=999),
    ] = 0
    dise_codg: Code
    dise_name: Str200 = ""


class EncounterDto(_In):
    mdtrt_id: Code
    medins_id: Code
    medins_lv: OptCode = ""
    adm_date: OptTime = None
    dscg_date: OptTime = None
    dscg_main_dise_codg: OptCode = ""
    med_type: Code
    insutype: OptCode = ""
    fsi_diagnose_dtos: Annotated[list[DiagnoseDto], Field(max_length=50)] = []
    fsi_order_dtos: Annotated[list[OrderDto], Field(max_length=2000)] = []


class PatientDto(_In):
    patn_id: Code
    patn_name: Annotated[str, Field(max_length=50)] = ""
    gend: OptCode = ""
    brdy: OptDate = None
    poolarea: OptCode = ""
    curr_mdtrt_id: Code
    fsi_encounter_dtos: Annotated[list[EncounterDto], Field(min_length=1, max_length=20)]


class RuleAnalysis(_In):
    patient_dtos: Annotated[list[PatientDto], Field(min_length=1, max_length=20)]
    rule_ids: list[Annotated[str, Field(max_length=30)]] | str = []
    trig_scen: OptCode = ""
    syscode: Annotated[str, Field(max_length=30)] = ""


class In3101(_In):
    data: RuleAnalysis


class Out3101(_Out):
    result: list[dict[str, Any]]


class WarnFeedback(_In):
    warn_rslt_id: Annotated[str, Field(min_length=1, max_length=50)]
    dspo_way: Annotated[
        str, BeforeValidator(_code), Field(pattern=r"^[12]$")
    ]  # 1 继续执行 / 2 返回修改 (uncertain codes)
    dspo_way_rea: Annotated[str, Field(max_length=500)] = ""


class FeedbackData(_In):
    warn_type: OptCode = ""
    warns: Annotated[list[WarnFeedback], Field(min_length=1, max_length=200)]


class In3102(_In):
    data: FeedbackData


class Out3102(_Out):
    result: list[dict[str, Any]]


# --- 3202 detail reconciliation ---------------------------------------------------------


class DetailStatement(_In):
    setl_optins: Code
    file_qury_no: Annotated[str, Field(min_length=1, max_length=40)]
    stmt_begndate: Date
    stmt_enddate: Date
    medfee_sumamt: Money
    fund_pay_sumamt: Money
    cash_payamt: Money
    fixmedins_setl_cnt: Annotated[
        int,
        BeforeValidator(lambda v: int(v) if isinstance(v, str) and v.strip().isdigit() else v),
        Field(ge=0, le=10**9),
    ]
    clr_type: OptCode = ""
    refd_setl_flag: OptCode = ""


class In3202(_In):
    data: DetailStatement


class Out3202(_Out):
    fileinfo: FileRef


# --- 5201 ... 5303 queries ------------------------------------------------------------------


class VisitsQuery(_In):
    psn_no: Code
    begntime: Time
    endtime: OptTime = None
    med_type: OptCode = ""
    mdtrt_id: OptCode = ""


class In5201(_In):
    data: VisitsQuery


class In5202(_In):
    data: VisitRef


class FeeQuery(_In):
    psn_no: Code
    setl_id: OptCode = ""
    mdtrt_id: Code


class In5204(_In):
    data: FeeQuery


class PeriodQuery(_In):
    psn_no: Code
    begntime: Time
    endtime: OptTime = None


class In5205(_In):
    data: PeriodQuery


class CumQuery(_In):
    psn_no: Code
    cum_ym: Annotated[str, BeforeValidator(_code), Field(pattern=r"^$|^[0-9]{6}$")] = ""


class In5206(_In):
    data: CumQuery


class PsnQuery(_In):
    psn_no: Code


class In5301(_In):
    data: PsnQuery


class InHospQuery(_In):
    psn_no: Code
    begntime: OptTime = None
    endtime: OptTime = None


class In5303(_In):
    data: InHospQuery


class OutRows(_Out):
    """``{<node>: [rows]}``; the node name is given per transaction in docs/interface.md."""


# --- 9101 / 9102 files -------------------------------------------------------------------


class FsUpload(_In):
    # ``in``: the file's bytes.  C# clients send a byte[] as a base64 string; Java clients often as a JSON
    # array of numbers 0..255; both are accepted (checked and decoded by the handler).
    in_: Annotated[Any, Field(alias="in")]
    filename: Annotated[str, Field(min_length=1, max_length=200)]
    fixmedins_code: Code

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)


class In9101(_In):
    fsUploadIn: FsUpload


class Out9101(_Out):
    file_qury_no: str
    filename: str
    dld_endtime: str


class FsDownload(_In):
    file_qury_no: Annotated[str, Field(min_length=1, max_length=40)]
    filename: Annotated[str, Field(max_length=200)] = ""
    fixmedins_code: Code


class In9102(_In):
    fsDownloadIn: FsDownload


# --- 4101 / 4101A settlement list ----------------------------------------------------------


class SetlListInfo(_In):
    """``setlinfo`` of the 医疗保障基金结算清单 (the fields yibao reads; the rest are kept as sent)."""

    mdtrt_id: Code
    setl_id: Code
    fixmedins_name: Str200 = ""
    fixmedins_code: OptCode = ""
    medcasno: OptCode = ""
    psn_name: Annotated[str, Field(max_length=50)] = ""
    gend: OptCode = ""
    brdy: OptDate = None
    age: Annotated[Decimal | None, _opt_decimal(1, "age", "年龄")] = None
    nwb_age: Annotated[Annotated[int, Field(ge=0, le=365)] | None, BeforeValidator(_opt_int)] = None
    nwb_bir_wt: Annotated[Decimal | None, _opt_decimal(2, "nwb_bir_wt", "新生儿出生体重")] = None
    nwb_adm_wt: Annotated[Decimal | None, _opt_decimal(2, "nwb_adm_wt", "新生儿入院体重")] = None
    ipt_med_type: OptCode = ""
    adm_time: OptTime = None
    dscg_time: OptTime = None
    act_ipt_days: Annotated[Annotated[int, Field(ge=0, le=36600)] | None, BeforeValidator(_opt_int)] = None
    dscg_way: OptCode = ""
    setl_begn_date: OptDate = None
    setl_end_date: OptDate = None
    psn_selfpay: Money | None = None
    psn_ownpay: Money | None = None
    acct_pay: Money | None = None
    psn_cashpay: Money | None = None
    hi_paymtd: OptCode = ""
    medins_fill_dept: Str200 = ""
    medins_fill_psn: Annotated[str, Field(max_length=50)] = ""


class SetlListDiag(_In):
    diag_type: OptCode = ""
    diag_code: Code
    diag_name: Name = ""
    adm_cond_type: OptCode = ""
    maindiag_flag: OptCode = ""


class SetlListOprn(_In):
    oprn_oprt_type: OptCode = ""
    oprn_oprt_name: Annotated[str, Field(max_length=500)] = ""
    oprn_oprt_code: Code
    oprn_oprt_date: OptDate = None
    anst_way: OptCode = ""
    oper_dr_name: Annotated[str, Field(max_length=50)] = ""
    oper_dr_code: OptCode = ""


class SetlListPay(_In):
    fund_pay_type: Code
    fund_payamt: Money


class In4101(_In):
    setlinfo: SetlListInfo
    payinfo: Annotated[list[SetlListPay], Field(max_length=50)] = []
    opspdiseinfo: Annotated[list[dict[str, Any]], Field(max_length=50)] = []
    diseinfo: Annotated[list[SetlListDiag], Field(min_length=1, max_length=50)]
    iteminfo: Annotated[list[dict[str, Any]], Field(max_length=100)] = []
    oprninfo: Annotated[list[SetlListOprn], Field(max_length=50)] = []
    icuinfo: Annotated[list[dict[str, Any]], Field(max_length=50)] = []
    bldinfo: Annotated[list[dict[str, Any]], Field(max_length=50)] = []


class Out4101(_Out):
    setl_list_id: str
    drginfo: dict[str, Any]
