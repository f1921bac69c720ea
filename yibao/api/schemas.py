"""Pydantic models of the national interface's inputs and outputs (field names are the national ones).

These names are facts of the public interface (定点医药机构接口规范); the
models accept the fields yibao uses and ignore the many optional fields an
HIS may also send.  Money is yuan with at most two decimals (a JSON number or
a numeric string, never a float); quantities ``cnt`` numeric(16,4) and unit
prices ``pric`` numeric(16,6); times are ``yyyy-MM-dd HH:mm:ss`` Beijing time
(``yyyyMMddHHmmss`` and ISO 8601 with an offset are accepted too).

An empty character field is ``""`` in the national spec (and ``null`` in many
clients): every optional field of every input model takes ``""`` or ``null``
as absent (its default), through one validator on the shared base
:class:`_In`; a required field that is empty is refused naming it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from yibao.core.db import SHANGHAI


def _decimal(places: int, what: str, what_zh: str):
    def conv(v: Any) -> Decimal:
        if isinstance(v, bool) or isinstance(v, float):
            raise ValueError(f"{what_zh}须为数字或数字字符串 / {what} must be a decimal number or a numeric string")
        if isinstance(v, (int, Decimal)):
            d = Decimal(v)
        elif isinstance(v, str):
            try:
                d = Decimal(v.strip())
            except InvalidOperation:
                raise ValueError(f"{what_zh}不是数字 / {what} is not a number: {v!r}") from None
        else:
            raise ValueError(f"{what_zh}须为数字 / {what} must be a number")
        if not d.is_finite():
            raise ValueError(f"{what_zh}不是有限数 / {what} is not finite")
        if abs(d) >= Decimal(10) ** 14:
            raise ValueError(f"{what_zh}超出范围 / {what} is out of range")
        scaled = d * (Decimal(10) ** places)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{what_zh}最多 {places} 位小数 / {what} has more than {places} decimal places")
        return d

    return BeforeValidator(conv)


def _time(v: Any) -> dt.datetime:
    t: dt.datetime | None
    if isinstance(v, dt.datetime):
        t = v
    elif isinstance(v, str):
        s = v.strip()
        t = None
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S"):
            try:
                t = dt.datetime.strptime(s, fmt)
                break
            except ValueError:
                pass
        if t is None:
            try:
                t = dt.datetime.fromisoformat(s)
            except ValueError:
                raise ValueError(
                    f"时间格式应为 yyyy-MM-dd HH:mm:ss / time must be 'yyyy-MM-dd HH:mm:ss': {v!r}"
                ) from None
    else:
        raise ValueError("时间须为字符串 / time must be a string")
    if t.tzinfo is None:
        t = t.replace(tzinfo=SHANGHAI)
    if not 1900 <= t.year <= 2200:
        raise ValueError("时间超出范围 / time out of range")
    return t


def _date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        txt = v.strip()
        try:
            d = (
                dt.datetime.strptime(txt, "%Y%m%d").date()
                if len(txt) == 8 and txt.isdigit()
                else dt.date.fromisoformat(txt[:10])
            )
        except ValueError:
            raise ValueError(f"日期格式应为 yyyy-MM-dd / date must be 'yyyy-MM-dd': {v!r}") from None
        if not 1900 <= d.year <= 2200:
            raise ValueError("日期超出范围 / date out of range")
        return d
    raise ValueError("日期须为字符串 / date must be a string")


def _code(v: Any) -> str:
    """Codes may arrive as numbers from some clients: 11 → '11'."""
    if isinstance(v, bool):
        raise ValueError("代码须为字符串 / code must be a string")
    if isinstance(v, int):
        return str(v)
    return v


Money = Annotated[Decimal, _decimal(2, "amount", "金额")]
Quantity = Annotated[Decimal, _decimal(4, "cnt", "数量")]  # numeric(16,4)
Price = Annotated[Decimal, _decimal(6, "pric", "单价")]  # numeric(16,6)
Days = Annotated[Decimal, _decimal(0, "prd_days", "周期天数")]
# 费用明细流水号: character(30) nationally ("yp570", 15-digit numbers, ...): visible ASCII, no blanks
FeeSn = Annotated[str, BeforeValidator(_code), Field(min_length=1, max_length=30, pattern=r"^[!-~]+$")]
Time = Annotated[dt.datetime, BeforeValidator(_time)]
Date = Annotated[dt.date, BeforeValidator(_date)]
Code = Annotated[str, BeforeValidator(_code), Field(min_length=1, max_length=40)]
OptCode = Annotated[str, BeforeValidator(_code), Field(max_length=40)]
Text = Annotated[str, Field(max_length=500)]
Flag = Annotated[Literal["0", "1"], BeforeValidator(_code)]
CertType = Annotated[Literal["01", "02", "03"], BeforeValidator(_code)]
LONG_RX_ALIASES = AliasChoices("long_rx_flag", "longRxFlag", "lt_rx_confirmed")  # 长期处方标志
# the old lt_rx_confirmed may come as a JSON boolean
LongRxFlag = Annotated[
    Literal["0", "1"], BeforeValidator(lambda v: ("1" if v else "0") if isinstance(v, bool) else _code(v))
]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_absent(cls, v: Any, info: ValidationInfo) -> Any:
        """``""`` / ``null`` / blanks in an optional field mean "absent": the field's default (national convention)."""
        if v is None or (isinstance(v, str) and not v.strip()):
            f = cls.model_fields[info.field_name or ""]
            if not f.is_required():
                return f.get_default(call_default_factory=True)
        return v


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- envelope --------------------------------------------------------------------


class Envelope(_In):
    """Request envelope (请求报文)."""

    infno: Annotated[str, BeforeValidator(_code), Field(pattern=r"^[0-9]{4,5}[A-Z]?$")]
    msgid: Annotated[str, Field(min_length=1, max_length=64)]
    mdtrtarea_admvs: OptCode = ""
    insuplc_admdvs: OptCode = ""
    recer_sys_code: Annotated[str, Field(max_length=30)] = ""
    dev_no: Annotated[str, Field(max_length=100)] = ""
    dev_safe_info: Annotated[str, Field(max_length=2000)] = ""
    cainfo: Annotated[str, Field(max_length=2000)] = ""
    signtype: Annotated[str, Field(max_length=10)] = ""
    infver: Annotated[str, Field(max_length=10)] = ""
    opter_type: Annotated[str, BeforeValidator(_code), Field(min_length=1, max_length=3)]
    opter: Annotated[str, Field(min_length=1, max_length=30)]
    opter_name: Annotated[str, Field(max_length=50)] = ""
    inf_time: Time
    fixmedins_code: Code
    fixmedins_name: Annotated[str, Field(max_length=200)] = ""
    sign_no: Annotated[str, Field(max_length=64)] = ""
    input: dict[str, Any]


# --- 9001 sign-in --------------------------------------------------------------------


class SignInData(_In):
    opter_no: Annotated[str, Field(min_length=1, max_length=30)]
    mac: Annotated[str, Field(max_length=64)] = ""
    ip: Annotated[str, Field(max_length=64)] = ""


class In9001(_In):
    signIn: SignInData  # "data" accepted too (interface.yaml: input_nodes)


class SignInOut(_Out):
    sign_time: str
    sign_no: str


class Out9001(_Out):
    signinoutb: SignInOut


# --- 1101 person information --------------------------------------------------


class PersonQuery(_In):
    mdtrt_cert_type: CertType
    mdtrt_cert_no: Annotated[str, Field(min_length=1, max_length=600)]
    card_sn: Annotated[str, Field(max_length=32)] = ""
    begntime: Time | None = None
    psn_cert_type: Annotated[str, Field(max_length=6)] = ""
    certno: Annotated[str, Field(max_length=50)] = ""
    psn_name: Annotated[str, Field(max_length=50)] = ""


class In1101(_In):
    data: PersonQuery


class BaseInfo(_Out):
    psn_no: str
    psn_cert_type: str
    certno: str
    psn_name: str
    gend: str
    naty: str
    brdy: str
    age: Decimal


class InsuInfo(_Out):
    balc: Decimal
    insutype: str
    psn_type: str
    psn_insu_stas: str
    psn_insu_date: str | None  # 个人参保日期 yyyy-MM-dd: "" when the register holds none
    paus_insu_date: str | None  # 暂停参保日期: null while insured (clients test for null / "")
    cvlserv_flag: str
    insuplc_admdvs: str
    emp_name: str


class IdetInfo(_Out):
    psn_idet_type: str
    psn_type_lv: str
    memo: str
    begntime: str | None
    endtime: str | None


class Out1101(_Out):
    baseinfo: BaseInfo
    insuinfo: list[InsuInfo]
    idetinfo: list[IdetInfo]


# --- 2201 / 2202 / 2203 outpatient registration and visit --------------------------


class Registration(_In):
    psn_no: Code
    insutype: Code
    begntime: Time
    mdtrt_cert_type: CertType
    mdtrt_cert_no: Annotated[str, Field(max_length=600)] = ""
    ipt_otp_no: Code
    atddr_no: OptCode = ""
    dr_name: Annotated[str, Field(max_length=50)] = ""
    dept_code: OptCode = ""
    dept_name: Annotated[str, Field(max_length=100)] = ""
    caty: OptCode = ""


class In2201(_In):
    data: Registration


class RegistrationOut(_Out):
    mdtrt_id: str
    psn_no: str
    ipt_otp_no: str


class Out2201(_Out):
    data: RegistrationOut


class VisitRef(_In):
    psn_no: Code
    mdtrt_id: Code
    ipt_otp_no: OptCode = ""


class In2202(_In):
    data: VisitRef


class Diagnosis(_In):
    diag_type: OptCode = ""
    diag_srt_no: Annotated[int, Field(ge=0, le=999)] = 0
    diag_code: Code
    diag_name: Annotated[str, Field(max_length=255)] = ""
    maindiag_flag: OptCode = ""
    diag_dept: Annotated[str, Field(max_length=100)] = ""
    dise_dor_no: OptCode = ""
    dise_dor_name: Annotated[str, Field(max_length=50)] = ""
    diag_time: Time | None = None
    vali_flag: OptCode = ""


class VisitInfo(_In):
    mdtrt_id: Code
    psn_no: Code
    med_type: Code
    begntime: Time | None = None
    main_cond_dscr: Text = ""
    dise_codg: OptCode = ""
    dise_name: Annotated[str, Field(max_length=255)] = ""
    # 长期处方标志 (yibao.longrx): "1" = a long prescription, evaluated and confirmed by the patient; ""/absent =
    # not given (the stored flag stays).  longRxFlag is the national e-prescription name; lt_rx_confirmed the old one.
    long_rx_flag: LongRxFlag | None = Field(None, validation_alias=LONG_RX_ALIASES)


class In2203(_In):
    mdtrtinfo: VisitInfo  # "data" accepted too
    diseinfo: Annotated[list[Diagnosis], Field(max_length=50)] = []


class Empty(_Out):
    pass


# --- 2204 / 2301 fee details ---------------------------------------------------


class FeeDetailIn(_In):
    feedetl_sn: FeeSn
    mdtrt_id: Code
    psn_no: Code
    chrg_bchno: OptCode = ""
    med_type: OptCode = ""
    dise_codg: OptCode = ""
    rxno: OptCode = ""
    drord_no: OptCode = ""
    rx_circ_flag: Flag = "0"
    fee_ocur_time: Time
    med_list_codg: Annotated[str, Field(min_length=1, max_length=50)]
    medins_list_codg: Annotated[str, Field(max_length=150)] = ""
    det_item_fee_sumamt: Money
    cnt: Quantity
    pric: Price
    sin_dos_dscr: Annotated[str, Field(max_length=200)] = ""
    used_frqu_dscr: Annotated[str, Field(max_length=200)] = ""
    prd_days: Days = Decimal(0)
    medc_way_dscr: Annotated[str, Field(max_length=200)] = ""
    bilg_dept_codg: OptCode = ""
    bilg_dept_name: Annotated[str, Field(max_length=100)] = ""
    bilg_dr_codg: OptCode = ""
    bilg_dr_name: Annotated[str, Field(max_length=50)] = ""
    hosp_appr_flag: OptCode = ""
    long_rx_flag: LongRxFlag | None = Field(None, validation_alias=LONG_RX_ALIASES)  # 长期处方标志 of the line


class InFees(_In):
    feedetail: Annotated[list[FeeDetailIn], Field(min_length=1, max_length=5000)]  # "data" accepted too


class FeeBatchRef(_In):
    """2205: a charge batch of an outpatient visit ("0000" = every unsettled line)."""

    mdtrt_id: Code
    chrg_bchno: Code
    psn_no: Code


class In2205(_In):
    data: FeeBatchRef


class FeeLineRef(_In):
    """2302: one inpatient fee line ("0000" = every unsettled line)."""

    feedetl_sn: FeeSn
    mdtrt_id: Code
    psn_no: Code


class In2302(_In):
    data: Annotated[list[FeeLineRef], Field(min_length=1, max_length=5000)]


class Withdrawn(_Out):
    feedetl_sn: list[str]


class OutWithdrawn(_Out):
    result: Withdrawn


class FeeResult(_Out):
    feedetl_sn: str
    det_item_fee_sumamt: Decimal
    cnt: Decimal
    pric: Decimal
    pric_uplmt_amt: Decimal
    selfpay_prop: Decimal
    fulamt_ownpay_amt: Decimal | None = None
    overlmt_amt: Decimal | None = None
    preselfpay_amt: Decimal | None = None
    inscp_scp_amt: Decimal | None = None
    chrgitm_lv: str
    med_chrgitm_type: str
    bas_medn_flag: str  # 基本药物标志
    hi_nego_drug_flag: str  # 医保谈判药品标志
    chld_medc_flag: str  # 儿童用药标志
    list_sp_item_flag: str  # 目录特项标志
    lmt_used_flag: str
    drt_reim_flag: str  # 直报标志
    memo: str


class OutFees(_Out):
    result: list[FeeResult]


# --- 2206 / 2207 / 2303 / 2304 settlement ---------------------------------------------


class SettleData(_In):
    psn_no: Code
    mdtrt_cert_type: CertType
    mdtrt_cert_no: Annotated[str, Field(max_length=600)] = ""
    med_type: OptCode = ""
    medfee_sumamt: Money
    psn_setlway: Annotated[Literal["01", "02"], BeforeValidator(_code)] = "01"
    mdtrt_id: Code
    chrg_bchno: OptCode = ""
    insutype: Code
    acct_used_flag: Flag = "1"
    mid_setl_flag: Flag = "0"
    invono: OptCode = ""
    fulamt_ownpay_amt: Money | None = None
    overlmt_selfpay: Money | None = None
    preselfpay_amt: Money | None = None
    inscp_scp_amt: Money | None = None
    mulaid_payer_psn_no: OptCode = ""  # yibao extension: family mutual-aid payer (家庭共济)


class AgentInfo(_In):
    """代办人信息 agnterinfo (as in the national 2201 / 2401): here, who collects the drugs (代取药, yibao.longrx)."""

    agnter_name: Annotated[str, Field(max_length=50)] = ""
    agnter_rlts: OptCode = ""
    agnter_cert_type: OptCode = ""
    agnter_certno: Annotated[str, Field(max_length=50)] = ""
    agnter_tel: Annotated[str, Field(max_length=50)] = ""  # accepted, not stored
    agnter_addr: Annotated[str, Field(max_length=200)] = ""  # accepted, not stored

    def given(self) -> bool:
        return bool(self.agnter_name or self.agnter_certno or self.agnter_rlts)


class InSettle(_In):
    data: SettleData
    agnterinfo: AgentInfo | None = None  # a proxy collecting a long prescription (长期处方代取药)


class SetlInfo(_Out):
    mdtrt_id: str
    setl_id: str
    psn_no: str
    psn_name: str
    psn_cert_type: str
    certno: str
    gend: str
    naty: str
    brdy: str
    age: Decimal
    insutype: str
    psn_type: str
    cvlserv_flag: str
    setl_time: str
    mdtrt_cert_type: str
    med_type: str
    medfee_sumamt: Decimal
    fulamt_ownpay_amt: Decimal
    overlmt_selfpay: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    act_pay_dedc: Decimal
    hifp_pay: Decimal
    pool_prop_selfpay: Decimal
    cvlserv_pay: Decimal
    hifes_pay: Decimal
    hifmi_pay: Decimal
    hifob_pay: Decimal
    maf_pay: Decimal
    oth_pay: Decimal
    fund_pay_sumamt: Decimal
    psn_part_amt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    hosp_part_amt: Decimal
    balc: Decimal
    acct_mulaid_pay: Decimal
    medins_setl_id: str
    clr_optins: str
    clr_way: str
    clr_type: str
    pdn_cash_pay: Decimal | None = None  # 个人现金支出 (2208 / 2305)
    refd_setl_flag: str | None = None  # 退费结算标志 (2208 / 2305 / 5203)
    # 5203 only
    pay_loc: str | None = None  # 支付地点类别
    fixmedins_code: str | None = None
    fixmedins_name: str | None = None
    hosp_lv: str | None = None  # 医院等级
    begndate: str | None = None  # 开始日期
    enddate: str | None = None  # 结束日期
    psn_pay: Decimal | None = None  # 个人支付金额 (= psn_part_amt)
    cash_payamt: Decimal | None = None  # 现金支付金额 (= psn_cash_pay)
    year: str | None = None  # 年度


class SetlDetail(_Out):
    fund_pay_type: str
    inscp_scp_amt: Decimal
    crt_payb_lmt_amt: Decimal  # 本次可支付限额金额
    fund_payamt: Decimal
    fund_pay_type_name: str
    setl_proc_info: str


class OutSettle(_Out):
    setlinfo: SetlInfo
    setldetail: list[SetlDetail]


# --- 2208 / 2305 cancel, 5203 query ------------------------------------------------


class CancelData(_In):
    setl_id: Code
    mdtrt_id: Code
    psn_no: Code


class InCancel(_In):
    data: CancelData


class InQuery(_In):
    data: CancelData


# --- 2401 / 2402 / 2404 admission and discharge ------------------------------------------


class Admission(_In):
    psn_no: Code
    insutype: Code
    coner_name: Annotated[str, Field(max_length=50)] = ""
    tel: Annotated[str, Field(max_length=50)] = ""
    begntime: Time
    mdtrt_cert_type: CertType
    mdtrt_cert_no: Annotated[str, Field(max_length=600)] = ""
    med_type: Code
    ipt_no: Code
    medrcdno: OptCode = ""
    atddr_no: OptCode = ""
    chfpdr_name: Annotated[str, Field(max_length=50)] = ""
    adm_diag_dscr: Text = ""
    adm_dept_codg: OptCode = ""
    adm_dept_name: Annotated[str, Field(max_length=100)] = ""
    adm_bed: OptCode = ""
    dscg_maindiag_code: OptCode = ""
    dscg_maindiag_name: Annotated[str, Field(max_length=255)] = ""
    main_cond_dscr: Text = ""
    dise_codg: OptCode = ""
    dise_name: Annotated[str, Field(max_length=255)] = ""


class In2401(_In):
    mdtrtinfo: Admission  # "data" accepted too
    diseinfo: Annotated[list[Diagnosis], Field(max_length=50)] = []


class AdmissionOut(_Out):
    mdtrt_id: str
    psn_no: str
    ipt_otp_no: str


class Out2401(_Out):
    result: AdmissionOut


class DischargeInfo(_In):
    mdtrt_id: Code
    psn_no: Code
    insutype: Code
    endtime: Time
    dise_codg: OptCode = ""
    dise_name: Annotated[str, Field(max_length=255)] = ""
    dscg_dept_codg: OptCode = ""
    dscg_dept_name: Annotated[str, Field(max_length=100)] = ""
    dscg_way: OptCode = ""
    die_date: Date | None = None


class In2402(_In):
    dscginfo: DischargeInfo  # "data" accepted too
    diseinfo: Annotated[list[Diagnosis], Field(max_length=50)] = []


class In2404(_In):
    data: VisitRef


# --- 3201 reconciliation -------------------------------------------------------------


class Statement(_In):
    insutype: Code
    clr_type: Code
    setl_optins: Code
    stmt_begndate: Date
    stmt_enddate: Date
    medfee_sumamt: Money
    fund_pay_sumamt: Money
    acct_pay: Money
    fixmedins_setl_cnt: Annotated[int, Field(ge=0, le=10**9)]


class In3201(_In):
    data: Statement


class StmtTotals(_Out):
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    fixmedins_setl_cnt: int


class StmtInfo(_Out):
    setl_optins: str
    stmt_rslt: str
    stmt_rslt_dscr: str
    platform_totals: StmtTotals


class Out3201(_Out):
    stmtinfo: StmtInfo


# --- replies -----------------------------------------------------------------------


class Reply(_Out):
    """Response envelope (响应报文)."""

    infcode: int
    inf_refmsgid: str
    refmsg_time: str
    respond_time: str
    err_msg: str
    warn_msg: str
    output: dict[str, Any]


class ErrorBody(_Out):
    """A refusal on the REST side: the same err_msg, and the field it names."""

    infcode: int
    err_msg: str
    field: str | None = None
