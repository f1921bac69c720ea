"""HTTP router of enrolment (参保缴费), bureau staff only: thin, every endpoint calls :mod:`yibao.enrolment.service`.

* ``POST /api/v1/enrolment/periods`` — enrol (参保); ``POST /api/v1/enrolment/periods/stop`` — 停保 / 终止 / 转出;
* ``POST /api/v1/enrolment/contributions`` — an employee month (wage in fen) or a resident year;
* ``POST /api/v1/enrolment/backpay`` — 补缴; ``GET /api/v1/enrolment/arrears`` — 欠费;
* ``GET /api/v1/enrolment/persons/{psn_no}`` — periods and contributions; ``.../coverage?day=`` — covered or why not.
Money is integer fen in and out.
"""

# no "from __future__ import annotations": FastAPI reads the annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from yibao.core import db
from yibao.core.errors import YibaoError
from yibao.enrolment import service as en
from yibao.enrolment.models import Contribution, InsuredPeriod

router = APIRouter(prefix="/api/v1/enrolment", tags=["enrolment"])


def _error(exc: YibaoError) -> HTTPException:
    return HTTPException(
        status_code=400,
        detail={"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field},
    )


def _engine(request: Request):
    from yibao.supervision.api import _engine as shared  # the same engine resolution as the other subsystem routers

    return shared(request)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrolIn(_In):
    psn_no: str
    insutype: str
    start_date: dt.date
    reason: str = "new"
    transfer_in_from: str | None = None


class StopIn(_In):
    psn_no: str
    insutype: str
    end_date: dt.date
    reason: str = "stop"
    terminate: bool = False
    transfer_out_to: str | None = None


class ContributionIn(_In):
    psn_no: str
    period: str = Field(description="YYYY-MM (employee month) or YYYY (resident year)")
    wage: int | None = Field(None, ge=0, description="monthly wage, fen (employee)")
    paid_date: dt.date | None = None


class BackpayIn(_In):
    psn_no: str
    insutype: str
    period: str
    paid_date: dt.date


def _contribution(r: Contribution) -> dict:
    return {
        "psn_no": r.psn_no,
        "insutype": r.insutype,
        "period": r.period,
        "base": r.base,
        "employer_part": r.employer_part,
        "individual_part": r.individual_part,
        "subsidy": r.subsidy,
        "late_fee": r.late_fee,
        "paid_date": r.paid_date.isoformat() if r.paid_date else None,
        "back_payment": r.back_payment,
    }


@router.post("/periods")
def enrol(body: EnrolIn, request: Request) -> dict:
    try:
        pid = en.enrol(
            _engine(request),
            body.psn_no,
            body.insutype,
            body.start_date,
            reason=body.reason,
            transfer_in_from=body.transfer_in_from,
        )
    except YibaoError as exc:
        raise _error(exc) from None
    return {"id": pid}


@router.post("/periods/stop")
def stop(body: StopIn, request: Request) -> dict:
    try:
        en.stop(
            _engine(request),
            body.psn_no,
            body.insutype,
            body.end_date,
            reason=body.reason,
            terminate=body.terminate,
            transfer_out_to=body.transfer_out_to,
        )
    except YibaoError as exc:
        raise _error(exc) from None
    return {"ok": True}


@router.post("/contributions")
def contribute(body: ContributionIn, request: Request) -> dict:
    try:
        if len(body.period) == 4 and body.period.isdigit():
            row = en.pay_resident_year(_engine(request), body.psn_no, int(body.period), body.paid_date)
        else:
            if body.wage is None:
                raise en.EnrolmentError("an employee month needs wage", "职工缴费需给出 wage", field="wage")
            row = en.pay_employee_month(_engine(request), body.psn_no, body.period, body.wage, body.paid_date)
    except YibaoError as exc:
        raise _error(exc) from None
    return _contribution(row)


@router.post("/backpay")
def backpay(body: BackpayIn, request: Request) -> dict:
    try:
        row = en.backpay(_engine(request), body.psn_no, body.insutype, body.period, body.paid_date)
    except YibaoError as exc:
        raise _error(exc) from None
    return _contribution(row)


@router.get("/arrears")
def arrears(request: Request, psn_no: str | None = None) -> list:
    with db.session_scope(_engine(request)) as s:
        return [_contribution(r) for r in en.arrears(s, psn_no)]


@router.get("/persons/{psn_no}")
def person(psn_no: str, request: Request) -> dict:
    with db.session_scope(_engine(request)) as s:
        periods = s.scalars(
            select(InsuredPeriod).where(InsuredPeriod.psn_no == psn_no).order_by(InsuredPeriod.start_date)
        )
        contribs = s.scalars(select(Contribution).where(Contribution.psn_no == psn_no).order_by(Contribution.period))
        return {
            "psn_no": psn_no,
            "periods": [
                {
                    "insutype": p.insutype,
                    "start_date": p.start_date.isoformat(),
                    "end_date": p.end_date.isoformat() if p.end_date else None,
                    "status": p.status,
                    "reason": p.reason,
                    "transfer_in_from": p.transfer_in_from,
                    "transfer_out_to": p.transfer_out_to,
                }
                for p in periods
            ],
            "contributions": [_contribution(r) for r in contribs],
        }


@router.get("/persons/{psn_no}/coverage")
def coverage(psn_no: str, insutype: str, day: dt.date, request: Request) -> dict:
    with db.session_scope(_engine(request)) as s:
        cov = en.coverage_on(s, psn_no, insutype, day)
    if cov is None:
        return {"applies": False, "covered": True, "reason": ""}
    return {
        "applies": True,
        "covered": cov.covered,
        "reason": cov.reason,
        "message_en": cov.message_en,
        "message_zh": cov.message_zh,
    }
