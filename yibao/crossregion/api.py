"""HTTP router of the filing register (异地就医备案), bureau staff only (registered in yibao/api/app.py).

Field names follow the national 2501 filing message (psn_no, insutype, mdtrt_area_admdvs, begndate, enddate).
"""

# no "from __future__ import annotations": FastAPI reads the endpoint annotations
import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from yibao.core.errors import YibaoError

router = APIRouter(prefix="/api/v1/filings", tags=["filing"])


class FilingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    psn_no: str
    insutype: str
    filing_type: str  # long_term_residence / resident_work / referral / temporary
    insu_admdvs: str  # 参保地
    mdtrt_area_admdvs: str  # 就医地
    begndate: dt.date
    enddate: dt.date | None = None
    msgid: str = ""


class FilingOut(BaseModel):
    filing_id: int
    psn_no: str
    insutype: str
    filing_type: str
    insu_admdvs: str
    mdtrt_area_admdvs: str
    begndate: dt.date
    enddate: dt.date | None
    status: str


def _out(f) -> FilingOut:
    return FilingOut(
        filing_id=f.id,
        psn_no=f.psn_no,
        insutype=f.insutype,
        filing_type=f.filing_type,
        insu_admdvs=f.insured_admdvs,
        mdtrt_area_admdvs=f.treatment_admdvs,
        begndate=f.begin_date,
        enddate=f.end_date,
        status=f.status,
    )


def _error(exc: YibaoError) -> HTTPException:
    return HTTPException(
        status_code=400,
        detail={"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field},
    )


def _engine(request: Request):
    from yibao.supervision.api import _engine as engine_of

    return engine_of(request)


@router.post("", response_model=FilingOut)
def add(body: FilingIn, request: Request) -> FilingOut:
    from yibao.core.db import session_scope
    from yibao.crossregion.service import FilingRequest, add_filing

    try:
        with session_scope(_engine(request)) as s:
            return _out(
                add_filing(
                    s,
                    FilingRequest(
                        body.psn_no,
                        body.insutype,
                        body.filing_type,
                        body.insu_admdvs,
                        body.mdtrt_area_admdvs,
                        body.begndate,
                        body.enddate,
                        body.msgid,
                    ),
                )
            )
    except YibaoError as e:
        raise _error(e) from None


@router.post("/{filing_id}/cancel", response_model=FilingOut)
def cancel(filing_id: int, request: Request) -> FilingOut:
    from yibao.core.db import session_scope
    from yibao.crossregion.service import cancel_filing

    try:
        with session_scope(_engine(request)) as s:
            return _out(cancel_filing(s, filing_id))
    except YibaoError as e:
        raise _error(e) from None


@router.get("", response_model=list[FilingOut])
def list_(request: Request, psn_no: str | None = None) -> list[FilingOut]:
    from yibao.core.db import session_scope
    from yibao.crossregion.service import list_filings

    with session_scope(_engine(request)) as s:
        return [_out(f) for f in list_filings(s, psn_no)]
