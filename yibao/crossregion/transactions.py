"""The filing transactions of the national interface (人员备案: 2501 转院备案, 2501A, 2502 转院备案撤销).

Which codes are served, their kind and the filing type they record are data
(``yibao/data/crossregion/interface.yaml``); :func:`register` adds them to the
Interface's ``TRANSACTIONS`` (one line in :mod:`yibao.api.interface`).  They follow
the Interface's rules: input validated here (a refusal names the field, empty strings
are absent fields), one database transaction per message holding the filing, the
stored reply and the audit record (``Ctx.commit``), a repeated ``msgid`` answered
from the store.  The filing itself is :func:`yibao.crossregion.service.add_filing` /
:func:`~yibao.crossregion.service.cancel_filing`.

``trt_dcla_detl_sn`` (待遇申报明细流水号) is the filing's id.  An institution cancels only the
filings it sent (the filing's ``source_msgid`` is a stored reply of that institution).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from yibao.api.schemas import Code, Date, OptCode, Text, _code, _date
from yibao.core.errors import ClaimRejected, YibaoError
from yibao.core.yamldata import DataFileError, load_model

DATA_PATH = Path(__file__).resolve().parent.parent / "data" / "crossregion" / "interface.yaml"


def _blank_none(v: Any) -> Any:
    return None if isinstance(v, str) and not v.strip() else v


OptDate = Annotated[dt.date | None, BeforeValidator(lambda v: None if _blank_none(v) is None else _date(v))]
Admdvs = Annotated[str, BeforeValidator(_code), Field(pattern=r"^[0-9]{6}$")]
OptAdmdvs = Annotated[str, BeforeValidator(_code), Field(pattern=r"^([0-9]{6})?$")]


# --- the data file ----------------------------------------------------------------------------


class FilingTransaction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name_zh: str
    kind: Literal["file", "cancel"]
    filing_type: str = ""  # a key of filing.yaml types (kind: file)
    needs_previous_visit: bool = False  # refl_old_mdtrt_id required (Guangdong 2501A)


class InterfaceRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int
    transactions: dict[str, FilingTransaction]


@lru_cache(maxsize=2)
def load_interface_rules(path: str | None = None) -> InterfaceRules:
    from yibao.crossregion.params import load_rules

    rules = load_model(path or DATA_PATH, InterfaceRules, what=("filing transactions", "备案交易"))
    types = load_rules().types
    for infno, t in rules.transactions.items():
        if t.kind == "file" and t.filing_type not in types:
            raise DataFileError(
                path or DATA_PATH,
                f"transactions.{infno}.filing_type",
                f"{t.filing_type!r} is not a filing type of filing.yaml ({', '.join(types)})",
                f"{t.filing_type!r} 不是 filing.yaml 中的备案类型",
            )
    return rules


# --- messages ---------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Referral(_In):
    """``refmedin`` of 2501 / 2501A: the referral to an institution in another province."""

    psn_no: Code
    insutype: OptCode = ""  # empty: the person's insutype
    tel: Annotated[str, Field(max_length=50)] = ""
    addr: Annotated[str, Field(max_length=200)] = ""
    insu_optins: OptAdmdvs = ""  # 参保机构医保区划; empty: the person's insured place
    diag_code: Code
    diag_name: Annotated[str, Field(min_length=1, max_length=100)]
    dise_cond_dscr: Annotated[str, Field(max_length=2000)] = ""
    reflin_medins_no: Code  # 转往定点医药机构编号
    reflin_medins_name: Annotated[str, Field(min_length=1, max_length=200)]
    mdtrtarea_admdvs: Admdvs  # 就医地: the receiving institution's division
    hosp_agre_refl_flag: OptCode = ""
    refl_type: OptCode = ""
    refl_date: Date
    refl_rea: Annotated[str, Field(max_length=100)] = ""
    refl_opnn: Annotated[str, Field(max_length=200)] = ""
    begndate: OptDate = None  # empty: the referral date
    enddate: OptDate = None  # empty: the filing type's validity (filing.yaml)
    refl_old_mdtrt_id: OptCode = ""  # 转院前就诊ID (2501A)


class In2501(_In):
    refmedin: Referral


class Out2501(BaseModel):
    model_config = ConfigDict(extra="allow")
    result: dict[str, Any]


class CancelData(_In):
    trt_dcla_detl_sn: Code
    psn_no: Code
    memo: Text = ""


class In2502(_In):
    data: CancelData


class Out2502(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- handlers ---------------------------------------------------------------------------------

# the register's field → the message's field, for err_msg
_FIELDS = {
    "psn_no": "refmedin.psn_no",
    "insured_admdvs": "refmedin.insu_optins",
    "treatment_admdvs": "refmedin.mdtrtarea_admdvs",
    "begndate": "refmedin.begndate",
    "enddate": "refmedin.enddate",
    "filing_type": "infno",
}


def _rej(en: str, zh: str, fld: str) -> ClaimRejected:
    return ClaimRejected(en, zh, field=fld)


def _check_previous_visit(s, r: Referral, fixmedins_code: str) -> None:
    from yibao.settlement import records

    if not r.refl_old_mdtrt_id:
        raise _rej(
            "refl_old_mdtrt_id (the visit before the referral) is required by this edition",
            "转院前就诊ID refl_old_mdtrt_id 不能为空",
            "refmedin.refl_old_mdtrt_id",
        )
    enc = s.get(records.Encounter, r.refl_old_mdtrt_id)
    if enc is None or enc.fixmedins_code != fixmedins_code or enc.psn_no != r.psn_no:
        raise _rej(
            f"refl_old_mdtrt_id {r.refl_old_mdtrt_id!r} is not a visit of {r.psn_no} at this institution",
            f"转院前就诊ID {r.refl_old_mdtrt_id} 不是参保人 {r.psn_no} 在本机构的就诊",
            "refmedin.refl_old_mdtrt_id",
        )


def _request(iface, s, ctx, r: Referral, spec: FilingTransaction):
    from yibao.crossregion.service import FilingRequest

    person = iface._person(s, r.psn_no)
    insutype = r.insutype or (person.insutype or "")
    if insutype != (person.insutype or ""):
        raise _rej(
            f"insutype {insutype} is not {r.psn_no}'s ({person.insutype})",
            f"险种类型 {insutype} 与参保人险种 {person.insutype} 不符",
            "refmedin.insutype",
        )
    insured = r.insu_optins or (person.insuplc_admdvs or "")
    if insured != (person.insuplc_admdvs or ""):
        raise _rej(
            f"insu_optins {insured} is not {r.psn_no}'s insured place ({person.insuplc_admdvs})",
            f"参保机构医保区划 {insured} 与参保人参保地 {person.insuplc_admdvs} 不符",
            "refmedin.insu_optins",
        )
    iface._dx(r.diag_code, "refmedin.diag_code")
    if spec.needs_previous_visit:
        _check_previous_visit(s, r, ctx.env.fixmedins_code)
    begin = r.begndate or r.refl_date
    return FilingRequest(
        r.psn_no, insutype, spec.filing_type, insured, r.mdtrtarea_admdvs, begin, r.enddate, ctx.env.msgid
    )


def h_file(iface, ctx, d: In2501) -> Any:
    """2501 / 2501A 转院备案: record a cross-province referral filing; reply its ``trt_dcla_detl_sn``."""
    from yibao.crossregion.service import add_filing

    known = load_interface_rules().transactions
    spec = known.get(ctx.env.infno) or known[iface.cfg.national_infno(ctx.env.infno)]
    with iface.tx() as s:
        req = _request(iface, s, ctx, d.refmedin, spec)
        try:
            row = add_filing(s, req, now=ctx.now)
        except YibaoError as e:
            raise _rej(e.message_en, e.message_zh, _FIELDS.get(e.field or "", e.field or "refmedin")) from None
        out = {
            "result": {
                "trt_dcla_detl_sn": str(row.id),
                "begndate": row.begin_date.isoformat(),
                "enddate": row.end_date.isoformat() if row.end_date else "",
            }
        }
        return ctx.commit(s, out)


def _own_filing(s, q: CancelData, fixmedins_code: str):
    from yibao.api.models import StoredReply
    from yibao.crossregion.models import CrossFiling

    row = s.get(CrossFiling, int(q.trt_dcla_detl_sn)) if q.trt_dcla_detl_sn.isdigit() else None
    sent = s.get(StoredReply, row.source_msgid) if row is not None and row.source_msgid else None
    if row is None or row.psn_no != q.psn_no or sent is None or sent.fixmedins_code != fixmedins_code:
        raise _rej(
            f"no filing {q.trt_dcla_detl_sn!r} of {q.psn_no} sent by this institution",
            f"本机构无参保人 {q.psn_no} 的备案 {q.trt_dcla_detl_sn}",
            "data.trt_dcla_detl_sn",
        )
    return row


def h_cancel(iface, ctx, d: In2502) -> Any:
    """2502 转院备案撤销: cancel a filing this institution sent."""
    from yibao.crossregion.service import cancel_filing

    with iface.tx() as s:
        row = _own_filing(s, d.data, ctx.env.fixmedins_code)
        try:
            cancel_filing(s, row.id)
        except YibaoError as e:
            raise _rej(e.message_en, e.message_zh, "data.trt_dcla_detl_sn") from None
        return ctx.commit(s, {})


def register(transactions: dict) -> None:
    """Add the filing transactions of ``interface.yaml`` to the Interface's ``TRANSACTIONS``."""
    from yibao.api.interface import Transaction

    for infno, t in load_interface_rules().transactions.items():
        if t.kind == "file":
            rest = "referral-filings" + ("" if infno.isdigit() else "/" + infno[4:].lower())
            transactions[infno] = Transaction(infno, t.name_zh, "referral filing", In2501, Out2501, h_file, rest)
        else:
            transactions[infno] = Transaction(
                infno, t.name_zh, "cancel referral filing", In2502, Out2502, h_cancel, "referral-filings/cancel"
            )
