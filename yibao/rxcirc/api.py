"""HTTP router of prescription circulation (处方流转), ``/api/v1/rx``; bureau staff only (yibao/api/app.py).

Field names follow the national electronic-prescription messages (hosp_rxno, hi_rxno, rx_trace_code, prsc_time,
valid_days, rxdrugdetail / drug_cnt / medc_days; the fill's selinfo / sel_retn_cnt / sel_retn_time, setl_id).  These
are plain REST paths, not the national infno transactions (whose numbering differs between editions; see the notes).
Money is yuan with two decimals; quantities are decimals (up to 3 places).
"""

# no "from __future__ import annotations": FastAPI reads the endpoint annotations
import datetime as dt
from decimal import Decimal
from functools import lru_cache

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from yibao.core.errors import YibaoError

router = APIRouter(prefix="/api/v1/rx", tags=["rx"])


@lru_cache(maxsize=4)
def _service_for(engine):
    from yibao.rxcirc.service import default_service

    return default_service(engine)


def get_service(request: Request):
    """The :class:`~yibao.rxcirc.service.RxService` of the app's database (tests override this dependency)."""
    from yibao.supervision.api import _engine as engine_of

    iface = getattr(request.app.state, "iface", None)
    if iface is not None:  # the interface server's settlement service: same policies and list
        from yibao.rxcirc.service import RxService

        return RxService(iface.svc)
    return _service_for(engine_of(request))


def _error(exc: YibaoError) -> HTTPException:
    return HTTPException(
        status_code=400,
        detail={"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field},
    )


def _qty(d: Decimal, field: str) -> int:
    from yibao.rxcirc.service import parse_quantity

    return parse_quantity(str(d), field)


def _fen(d: Decimal, field: str) -> int:
    from yibao.core.money import MoneyError, yuan_to_fen
    from yibao.rxcirc.prescription import RxError

    try:
        return yuan_to_fen(str(d))
    except MoneyError:
        raise RxError(f"{field}: not a yuan amount {d}", f"{field} 金额无效: {d}", field=field) from None


def _yuan(fen: int) -> Decimal:
    from yibao.core.money import fen_to_yuan

    return fen_to_yuan(fen)


class DrugIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    med_list_codg: str
    drug_cnt: Decimal
    medc_days: int


class PrescriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hosp_rxno: str
    fixmedins_code: str
    prac_psn_code: str
    psn_no: str
    med_type: str
    dise_codg: list[str] = Field(min_length=1)
    prsc_time: dt.datetime
    valid_days: int | None = None
    mdtrt_id: str = ""
    rxdrugdetail: list[DrugIn] = Field(min_length=1)


class DrugOut(BaseModel):
    med_list_codg: str
    drug_cnt: Decimal
    medc_days: int


class FillOut(BaseModel):
    fixmedins_code: str
    issuer_code: str
    hosp_lv: int
    setl_id: str
    mdtrt_id: str
    sel_retn_time: dt.datetime
    delivery_fee: Decimal
    delivery_selfpay: bool


class PrescriptionOut(BaseModel):
    hi_rxno: str
    hosp_rxno: str
    rx_trace_code: str
    fixmedins_code: str
    prac_psn_code: str
    psn_no: str
    med_type: str
    dise_codg: list[str]
    prsc_time: dt.datetime
    valid_days: int
    valid_end_date: dt.date
    rx_stas: str  # issued / filled / cancelled / expired
    sm3_digest: str
    digest_ok: bool
    rxdrugdetail: list[DrugOut]
    fill: FillOut | None


def _out(v) -> PrescriptionOut:
    f = v.fill
    return PrescriptionOut(
        hi_rxno=v.hi_rxno,
        hosp_rxno=v.hosp_rxno,
        rx_trace_code=v.rx_trace_code,
        fixmedins_code=v.issuer_code,
        prac_psn_code=v.prac_psn_code,
        psn_no=v.psn_no,
        med_type=v.med_type,
        dise_codg=list(v.diagnoses),
        prsc_time=v.prsc_time,
        valid_days=v.valid_days,
        valid_end_date=v.valid_end_date,
        rx_stas=v.status,
        sm3_digest=v.sm3_digest,
        digest_ok=v.digest_ok,
        rxdrugdetail=[
            DrugOut(med_list_codg=x.med_list_codg, drug_cnt=Decimal(x.cnt_milli) / 1000, medc_days=x.medc_days)
            for x in v.lines
        ],
        fill=None
        if f is None
        else FillOut(
            fixmedins_code=f.fixmedins_code,
            issuer_code=f.issuer_code,
            hosp_lv=f.hosp_lv,
            setl_id=f.setl_id,
            mdtrt_id=f.mdtrt_id,
            sel_retn_time=f.filled_at,
            delivery_fee=_yuan(f.delivery_fee),
            delivery_selfpay=f.delivery_selfpay,
        ),
    )


class SetlOut(BaseModel):
    """The settlement's shares (yuan), named as in the national setlinfo."""

    setl_id: str | None
    mdtrt_id: str
    psn_no: str
    replayed: bool
    medfee_sumamt: Decimal
    fulamt_ownpay_amt: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    act_pay_dedc: Decimal
    hifp_pay: Decimal
    fund_pay_sumamt: Decimal
    psn_part_amt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal


def _setl(r) -> SetlOut:
    st = r.settlement
    money = {
        k: _yuan(getattr(st, k)) for k in SetlOut.model_fields if k not in ("setl_id", "mdtrt_id", "psn_no", "replayed")
    }
    return SetlOut(setl_id=r.setl_id, mdtrt_id=r.mdtrt_id, psn_no=r.psn_no, replayed=r.replayed, **money)


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fixmedins_code: str  # the pharmacy
    on: dt.date
    signed_digest: str = ""


class SelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    med_list_codg: str
    sel_retn_cnt: Decimal
    pric: Decimal  # yuan per unit
    medc_days: int


class FillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fixmedins_code: str  # the pharmacy
    sel_retn_time: dt.datetime
    msgid: str
    selinfo: list[SelIn] = Field(min_length=1)
    signed_digest: str = ""
    delivery_fee: Decimal = Decimal(0)  # 配送费, yuan
    acct_used_flag: bool = True


class FillResultOut(BaseModel):
    hi_rxno: str
    issuer_code: str
    hosp_lv: int
    delivery_fee: Decimal
    delivery_selfpay: bool
    setlinfo: SetlOut


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fixmedins_code: str  # the issuer


class ConsultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mdtrt_id: str
    psn_no: str
    fixmedins_code: str  # the internet hospital
    dise_codg: list[str] = Field(min_length=1)
    begntime: dt.datetime
    fee: Decimal  # consultation fee, yuan
    msgid: str
    acct_used_flag: bool = True


class ConsultOut(BaseModel):
    prior_mdtrt_id: str
    setlinfo: SetlOut


@router.post("/prescriptions", response_model=PrescriptionOut)
def upload(body: PrescriptionIn, svc=Depends(get_service)) -> PrescriptionOut:
    """Upload an electronic prescription (电子处方上传)."""
    from yibao.rxcirc.service import IssueLine, IssueRequest

    try:
        lines = tuple(IssueLine(d.med_list_codg, _qty(d.drug_cnt, "drug_cnt"), d.medc_days) for d in body.rxdrugdetail)
        req = IssueRequest(
            body.hosp_rxno,
            body.fixmedins_code,
            body.prac_psn_code,
            body.psn_no,
            body.med_type,
            tuple(body.dise_codg),
            body.prsc_time,
            lines,
            body.valid_days,
            body.mdtrt_id,
        )
        return _out(svc.issue(req))
    except YibaoError as e:
        raise _error(e) from None


@router.get("/prescriptions/{hi_rxno}", response_model=PrescriptionOut)
def show(hi_rxno: str, svc=Depends(get_service)) -> PrescriptionOut:
    """A prescription, its status (expired once past its last day) and its fill."""
    try:
        return _out(svc.show(hi_rxno))
    except YibaoError as e:
        raise _error(e) from None


@router.post("/prescriptions/{hi_rxno}/verify", response_model=PrescriptionOut)
def verify(hi_rxno: str, body: VerifyIn, svc=Depends(get_service)) -> PrescriptionOut:
    """The pharmacy's check before dispensing (处方核验): 400 with the reason when it may not fill."""
    try:
        return _out(svc.verify(hi_rxno, body.fixmedins_code, body.on, body.signed_digest))
    except YibaoError as e:
        raise _error(e) from None


@router.post("/prescriptions/{hi_rxno}/fill", response_model=FillResultOut)
def fill(hi_rxno: str, body: FillIn, svc=Depends(get_service)) -> FillResultOut:
    """Fill at a designated pharmacy and settle it (外配取药结算), one transaction."""
    from yibao.rxcirc.service import FillLine, FillRequest

    try:
        lines = tuple(
            FillLine(x.med_list_codg, _qty(x.sel_retn_cnt, "sel_retn_cnt"), _fen(x.pric, "pric"), x.medc_days)
            for x in body.selinfo
        )
        req = FillRequest(
            hi_rxno,
            body.fixmedins_code,
            lines,
            body.sel_retn_time,
            body.msgid,
            body.signed_digest,
            _fen(body.delivery_fee, "delivery_fee"),
            body.acct_used_flag,
        )
        r = svc.fill(req)
    except YibaoError as e:
        raise _error(e) from None
    return FillResultOut(
        hi_rxno=r.hi_rxno,
        issuer_code=r.issuer_code,
        hosp_lv=r.hosp_lv,
        delivery_fee=_yuan(r.delivery_fee),
        delivery_selfpay=r.delivery_selfpay,
        setlinfo=_setl(r.settlement),
    )


@router.post("/prescriptions/{hi_rxno}/cancel", response_model=PrescriptionOut)
def cancel(hi_rxno: str, body: CancelIn, svc=Depends(get_service)) -> PrescriptionOut:
    """The issuer withdraws a prescription not yet filled (电子处方撤销)."""
    try:
        return _out(svc.cancel(hi_rxno, body.fixmedins_code))
    except YibaoError as e:
        raise _error(e) from None


class UnfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fixmedins_code: str  # the pharmacy that filled it
    msgid: str


@router.post("/prescriptions/{hi_rxno}/fill/cancel", response_model=PrescriptionOut)
def unfill(hi_rxno: str, body: UnfillIn, svc=Depends(get_service)) -> PrescriptionOut:
    """Cancel a fill's settlement (撤销) and make the prescription fillable again."""
    try:
        return _out(svc.cancel_fill(hi_rxno, body.fixmedins_code, body.msgid))
    except YibaoError as e:
        raise _error(e) from None


@router.post("/consultations", response_model=ConsultOut)
def consult(body: ConsultIn, svc=Depends(get_service)) -> ConsultOut:
    """Settle an internet-hospital follow-up consultation (互联网医院复诊); a first visit is refused."""
    from yibao.rxcirc.service import ConsultRequest

    try:
        req = ConsultRequest(
            body.mdtrt_id,
            body.psn_no,
            body.fixmedins_code,
            tuple(body.dise_codg),
            body.begntime,
            _fen(body.fee, "fee"),
            body.msgid,
            body.acct_used_flag,
        )
        r = svc.consult(req)
    except YibaoError as e:
        raise _error(e) from None
    return ConsultOut(prior_mdtrt_id=r.prior_mdtrt_id, setlinfo=_setl(r.settlement))
