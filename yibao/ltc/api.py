"""HTTP router of the LTC lifecycle (长护险), a thin layer over :mod:`yibao.ltc.service` (bureau staff only).

* ``POST /ltc/assessments``, ``POST /ltc/recipients``, ``POST /ltc/services``,
* ``POST /ltc/settle`` (one recipient-month, or every recipient of a month), ``GET /ltc/recipients/{psn_no}``,
* ``GET /ltc/funding/{region}``.

Errors come back as 400 with ``code``, ``message_en``, ``message_zh`` and ``field``.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from yibao.core.errors import YibaoError

router = APIRouter(prefix="/api/v1/ltc", tags=["ltc 长护险"])


def _http(exc: YibaoError) -> HTTPException:
    return HTTPException(
        400, {"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field}
    )


@lru_cache(maxsize=1)
def _default_engine():
    from yibao.core.db import database_url, make_engine

    return make_engine(database_url(None))


def get_engine():
    return _default_engine()


class AssessIn(BaseModel):
    psn_no: str
    assessor_institution: str
    assessed_on: dt.date
    scores: dict[str, int]
    region: str = "nantong"


class EnrolIn(BaseModel):
    psn_no: str
    setting: str
    care_institution: str
    start_month: dt.date
    end_month: dt.date | None = None
    region: str = "nantong"


class ServicesIn(BaseModel):
    psn_no: str
    month: dt.date
    institution: str
    days: int
    cost_fen: int
    services: list[str] = Field(default_factory=list)


class SettleIn(BaseModel):
    month: dt.date
    psn_no: str | None = None


def _claim(c) -> dict:
    return {
        "recipient_id": c.recipient_id,
        "month": c.month.strftime("%Y-%m"),
        "grade": c.grade,
        "setting": c.setting,
        "days": c.days,
        "cost_fen": c.cost_fen,
        "fund_fen": c.fund_fen,
        "person_fen": c.person_fen,
        "source_split": c.source_split,
    }


@router.post("/assessments")
def post_assessment(body: AssessIn, engine=Depends(get_engine)) -> dict:
    from yibao.ltc.service import assess

    try:
        a = assess(engine, body.psn_no, body.assessor_institution, body.assessed_on, body.scores, body.region)
    except YibaoError as exc:
        raise _http(exc) from exc
    return {
        "psn_no": a.psn_no,
        "total_score": a.total_score,
        "grade": a.grade,
        "effective_from": a.effective_from.isoformat(),
        "valid_until": a.valid_until.isoformat(),
    }


@router.post("/recipients")
def post_recipient(body: EnrolIn, engine=Depends(get_engine)) -> dict:
    from yibao.ltc.service import enrol

    try:
        r = enrol(
            engine, body.psn_no, body.setting, body.care_institution, body.start_month, body.end_month, body.region
        )
    except YibaoError as exc:
        raise _http(exc) from exc
    return {"psn_no": r.psn_no, "setting": r.setting, "start_month": r.start_month.isoformat()}


@router.post("/services")
def post_services(body: ServicesIn, engine=Depends(get_engine)) -> dict:
    from yibao.ltc.service import record_services

    try:
        rec = record_services(
            engine, body.psn_no, body.month, body.institution, body.days, body.cost_fen, body.services
        )
    except YibaoError as exc:
        raise _http(exc) from exc
    return {"psn_no": body.psn_no, "month": rec.month.strftime("%Y-%m"), "days": rec.days}


@router.post("/settle")
def post_settle(body: SettleIn, engine=Depends(get_engine)) -> dict:
    from yibao.ltc.service import settle_month, settle_month_all

    try:
        claims = (
            [settle_month(engine, body.psn_no, body.month)] if body.psn_no else settle_month_all(engine, body.month)
        )
    except YibaoError as exc:
        raise _http(exc) from exc
    return {"claims": [_claim(c) for c in claims]}


@router.get("/recipients/{psn_no}")
def get_recipient(psn_no: str, engine=Depends(get_engine)) -> dict:
    from yibao.ltc.service import show

    try:
        return show(engine, psn_no)
    except YibaoError as exc:
        raise HTTPException(
            404, {"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field}
        ) from exc


@router.get("/funding/{region}")
def get_funding(region: str) -> dict:
    from yibao.ltc.params import get_rules

    try:
        r = get_rules(region)
    except YibaoError as exc:
        raise _http(exc) from exc
    return {"region": r.region, "funding_per_person_year_fen": dict(r.funding_per_person_year)}
