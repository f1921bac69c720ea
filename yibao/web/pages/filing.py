"""Console pages ``filing`` (异地就医备案, bureau) and ``enrolment`` (参保缴费, bureau).

``filing``: list and search the cross-province filing register, file and cancel (CSRF-checked forms; the
register's own checks refuse bad input and change nothing).  ``enrolment``: a person's insured periods,
contributions and arrears, and 'record payment' (补缴) of a period in arrears.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from yibao.core.db import session_scope
from yibao.core.errors import YibaoError

STATUS_ZH = {"active": "有效", "cancelled": "已撤销"}


def _form(raw: bytes) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(raw.decode(errors="replace"))


def _one(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0].strip()


def _msg(exc: YibaoError, lang: str) -> str:
    return exc.message_en if lang == "en" else exc.message_zh


def _back(path: str, msg: str, **query: str) -> RedirectResponse:
    q = urllib.parse.urlencode({**{k: v for k, v in query.items() if v}, "msg": msg})
    return RedirectResponse(f"{path}?{q}", status_code=303)


def _date(text: str, name: str) -> dt.date | None:
    from yibao.crossregion.service import FilingError

    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise FilingError(f"{name} is not a date (YYYY-MM-DD)", f"{name} 不是日期 (YYYY-MM-DD)", field=name) from None


def filing_rows(engine: Any, psn_no: str, status: str) -> list[Any]:
    from yibao.crossregion.service import list_filings

    with session_scope(engine) as s:
        rows = [f for f in list_filings(s, psn_no or None) if not status or f.status == status]
        s.expunge_all()
    return rows


def add_from_form(engine: Any, form: dict[str, list[str]]) -> int:
    from yibao.crossregion.service import FilingError, FilingRequest, add_filing

    begin = _date(_one(form, "begndate"), "begndate")
    if begin is None:
        raise FilingError("begndate is required", "备案开始日期不能为空", field="begndate")
    req = FilingRequest(
        _one(form, "psn_no"),
        _one(form, "insutype"),
        _one(form, "filing_type"),
        _one(form, "insu_admdvs"),
        _one(form, "mdtrt_area_admdvs"),
        begin,
        _date(_one(form, "enddate"), "enddate"),
    )
    with session_scope(engine) as s:
        return add_filing(s, req).id


def cancel_one(engine: Any, filing_id: int) -> None:
    from yibao.crossregion.service import cancel_filing

    with session_scope(engine) as s:
        cancel_filing(s, filing_id)


def enrolment_view(engine: Any, psn_no: str) -> dict[str, Any]:
    from sqlalchemy import select

    from yibao.enrolment.models import Contribution, InsuredPeriod

    if not psn_no:
        return {"periods": [], "contributions": [], "arrears": []}
    with session_scope(engine) as s:
        periods = list(
            s.scalars(select(InsuredPeriod).where(InsuredPeriod.psn_no == psn_no).order_by(InsuredPeriod.start_date))
        )
        contributions = list(
            s.scalars(select(Contribution).where(Contribution.psn_no == psn_no).order_by(Contribution.period))
        )
        s.expunge_all()
    return {
        "periods": periods,
        "contributions": contributions,
        "arrears": [c for c in contributions if c.paid_date is None],
    }


def record_payment(engine: Any, form: dict[str, list[str]]) -> None:
    from yibao.enrolment.params import EnrolmentError
    from yibao.enrolment.service import backpay

    paid = _one(form, "paid_date")
    try:
        paid_date = dt.date.fromisoformat(paid)
    except ValueError:
        raise EnrolmentError(
            "paid_date is not a date (YYYY-MM-DD)", "缴费日期格式应为 YYYY-MM-DD", field="paid_date"
        ) from None
    backpay(engine, _one(form, "psn_no"), _one(form, "insutype"), _one(form, "period"), paid_date)


def mount(console: Any, router: Any, guarded: Any) -> None:
    from yibao.crossregion.params import load_rules

    c = console

    @router.get("/filing")
    @guarded
    def filing_page(request: Request):
        p = c.need(request, "filing")
        psn_no, status = request.query_params.get("psn_no", "").strip(), request.query_params.get("status", "")
        rows = filing_rows(c.engine, psn_no, status)
        return c.render(
            request,
            "filing.html",
            p,
            rows=rows,
            types=load_rules().types,
            status_zh=STATUS_ZH,
            psn_no=psn_no,
            status_filter=status,
            msg=request.query_params.get("msg", ""),
        )

    @router.post("/filing")
    @guarded
    async def filing_add(request: Request) -> Response:
        c.need(request, "filing")
        form = _form(await request.body())
        c.check_csrf(request, form)
        try:
            fid = await run_in_threadpool(add_from_form, c.engine, form)
        except YibaoError as exc:
            return _back("/console/filing", _msg(exc, c.lang(request)))
        return _back("/console/filing", f"ok {fid}", psn_no=_one(form, "psn_no"))

    @router.post("/filing/{filing_id}/cancel")
    @guarded
    async def filing_cancel(request: Request, filing_id: int) -> Response:
        c.need(request, "filing")
        form = _form(await request.body())
        c.check_csrf(request, form)
        try:
            await run_in_threadpool(cancel_one, c.engine, filing_id)
        except YibaoError as exc:
            return _back("/console/filing", _msg(exc, c.lang(request)))
        return _back("/console/filing", "ok", psn_no=_one(form, "psn_no"))

    @router.get("/enrolment")
    @guarded
    def enrolment_page(request: Request):
        p = c.need(request, "enrolment")
        psn_no = request.query_params.get("psn_no", "").strip()
        return c.render(
            request,
            "enrolment.html",
            p,
            e=enrolment_view(c.engine, psn_no),
            psn_no=psn_no,
            today=dt.date.today().isoformat(),
            msg=request.query_params.get("msg", ""),
        )

    @router.post("/enrolment/pay")
    @guarded
    async def enrolment_pay(request: Request) -> Response:
        c.need(request, "enrolment")
        form = _form(await request.body())
        c.check_csrf(request, form)
        try:
            await run_in_threadpool(record_payment, c.engine, form)
        except YibaoError as exc:
            return _back("/console/enrolment", _msg(exc, c.lang(request)), psn_no=_one(form, "psn_no"))
        return _back("/console/enrolment", "ok", psn_no=_one(form, "psn_no"))
