"""Settlement lists and detail (结算查询), scoped to the user's institution or, for the insured, their own."""

from __future__ import annotations

import urllib.parse
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import func, select

from yibao.core import db
from yibao.settlement import records
from yibao.web import excel, figures
from yibao.web.auth import Principal, mask
from yibao.web.console import Console, ConsoleDep
from yibao.web.deps import csrf_header, page

router = APIRouter()


def settle_scope(p: Principal) -> tuple[str | None, str | None]:
    if p.role == "public":
        return "\0none" if not p.psn_no else None, p.psn_no or "\0none"
    return p.institution_scope(), None


@router.get("/settlement")
def settlement_list(
    request: Request,
    c: ConsoleDep,
    p: Annotated[Principal, Depends(page("settlement"))],
    setl_id: str = "",
    psn_no: str = "",
    page: int = 1,
) -> Response:
    scope, own = settle_scope(p)
    if setl_id:
        rows, total = figures.find_settlements(c.engine, scope=scope, psn_no=own, setl_id=setl_id.strip(), limit=1)
        if rows:
            return RedirectResponse(f"/console/settlement/{rows[0].setl_id}", status_code=303)
    size = c.auth.cfg.list_page_rows
    page = max(1, page)
    rows, total = figures.find_settlements(
        c.engine, scope=scope, psn_no=own, psn_query=psn_no.strip(), limit=size, offset=(page - 1) * size
    )
    return c.render(
        request,
        "settlement_list.html",
        p,
        rows=rows,
        total=total,
        page=page,
        size=size,
        setl_id=setl_id,
        psn_no=psn_no,
        missing=bool(setl_id),
        insts=figures.institutions(c.engine),
    )


@router.get("/settlement/{setl_id}")
def settlement_detail(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("settlement"))], setl_id: str
) -> Response:
    scope, own = settle_scope(p)
    d = figures.settlement_detail(c.engine, setl_id)
    row = d["row"] if d else None
    if (
        d is None
        or row is None
        or (scope is not None and row.fixmedins_code != scope)
        or (own is not None and row.psn_no != own)
    ):
        return c.render(request, "error.html", p, status=404, code=404, message_key="not_found")
    total = sum(line.fen for line in d["lines"])
    return c.render(request, "settlement_detail.html", p, d=d, total=total)


@router.get("/encounter/{mdtrt_id}")
def encounter(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("settlement"))], mdtrt_id: str
) -> Response:
    """An encounter (就诊, from the supervision work queue)
    opens its latest settlement, within the caller's scope.
    """
    scope, own = settle_scope(p)
    S = records.Settlement
    q = select(S.setl_id).where(S.mdtrt_id == mdtrt_id)
    if scope is not None:
        q = q.where(S.fixmedins_code == scope)
    if own is not None:
        q = q.where(S.psn_no == own)
    with c.engine.connect() as conn:
        setl_id = conn.execute(q.order_by(S.setl_time.desc()).limit(1)).scalar()
    if setl_id is None:
        return c.render(request, "error.html", p, status=404, code=404, message_key="not_found")
    return RedirectResponse(f"/console/settlement/{urllib.parse.quote(setl_id)}", status_code=303)


@router.get("/api/settlement/{setl_id}")
def api_settlement(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("settlement", api=True))], setl_id: str
) -> Response:
    scope, own = settle_scope(p)
    d = figures.settlement_detail(c.engine, setl_id)
    row = d["row"] if d else None
    if (
        d is None
        or row is None
        or (scope is not None and row.fixmedins_code != scope)
        or (own is not None and row.psn_no != own)
    ):
        return JSONResponse({"error": "not found", "error_zh": "未找到"}, status_code=404)
    rules = c.auth.cfg.masking
    unmask = p.rule.unmask and request.query_params.get("unmask") == "1"
    person = d["person"]
    return JSONResponse(
        {
            "setl_id": row.setl_id,
            "psn_no": row.psn_no if unmask else mask(row.psn_no, rules["psn_no"]),
            "psn_name": (person.psn_name if unmask else mask(person.psn_name, rules["psn_name"])) if person else "",
            "fixmedins_code": row.fixmedins_code,
            "medfee_sumamt_fen": int(row.medfee_sumamt),
            "shares": [
                {"field": x.field, "fen": x.fen, "rule_zh": x.rule_zh, "rule_en": x.rule_en} for x in d["lines"]
            ],
            "trace": d["trace"],
        }
    )


def _settle_rows(p: Principal, psn_query: str = ""):
    scope, own = settle_scope(p)
    S = records.Settlement
    q = select(
        S.setl_id,
        S.mdtrt_id,
        S.psn_no,
        S.fixmedins_code,
        S.setl_time,
        S.insutype,
        S.med_type,
        S.benefit_category,
        S.medfee_sumamt,
        *[getattr(S, k) for k in figures.SHARE_FIELDS],
        S.fund_pay_sumamt,
        S.refd_setl_flag,
    )
    cq = select(func.count()).select_from(S)
    for cond in (
        ([S.fixmedins_code == scope] if scope is not None else [])
        + ([S.psn_no == own] if own else [])
        + ([S.psn_no == psn_query] if psn_query else [])
    ):
        q, cq = q.where(cond), cq.where(cond)
    return q.order_by(S.setl_time, S.setl_id), cq


def _settle_sheet(c: Console, p: Principal, q, job=None):
    rules = c.auth.cfg.masking
    heads = [
        "setl_id",
        "mdtrt_id",
        "psn_no 人员编号",
        "fixmedins_code",
        "setl_time 结算时间",
        "insutype",
        "med_type",
        "benefit_category",
        "medfee_sumamt (元)",
        *[f"{k} (元)" for k in figures.SHARE_FIELDS],
        "fund_pay_sumamt (元)",
        "refd_setl_flag 冲销",
    ]

    def rows():
        with c.engine.connect() as conn:
            for n, r in enumerate(conn.execution_options(yield_per=2000).execute(q), start=1):
                if job is not None:
                    job.done = n
                yield [
                    r.setl_id,
                    r.mdtrt_id,
                    mask(r.psn_no, rules["psn_no"]),
                    r.fixmedins_code,
                    r.setl_time.astimezone(db.SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
                    r.insutype,
                    r.med_type,
                    r.benefit_category,
                    excel.yuan(r.medfee_sumamt),
                    *[excel.yuan(getattr(r, k)) for k in figures.SHARE_FIELDS],
                    excel.yuan(r.fund_pay_sumamt),
                    "是" if r.refd_setl_flag else "",
                ]

    return excel.workbook_bytes([("settlements 结算", heads, rows())], note=excel.SYNTHETIC_NOTE)


@router.get("/settlement.xlsx")
def settlement_xlsx(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("settlement"))], psn_no: str = ""
) -> Response:
    q, cq = _settle_rows(p, psn_no.strip())
    with c.engine.connect() as conn:
        n = int(conn.execute(cq).scalar() or 0)
    if n > c.auth.cfg.export_sync_max_rows:
        return JSONResponse(
            {
                "error": f"{n} rows: start a background export job",
                "error_zh": f"共 {n} 行, 请使用后台导出任务",
                "rows": n,
            },
            status_code=413,
        )
    return Response(
        _settle_sheet(c, p, q),
        media_type=excel.XLSX,
        headers={"Content-Disposition": 'attachment; filename="settlements.xlsx"'},
    )


@router.post("/jobs/export-settlements")
def start_export(
    request: Request,
    c: ConsoleDep,
    p: Annotated[Principal, Depends(page("settlement", api=True))],
    _csrf: Annotated[None, Depends(csrf_header)],
    psn_no: str = "",
) -> Response:
    q, cq = _settle_rows(p, psn_no.strip())
    with c.engine.connect() as conn:
        n = int(conn.execute(cq).scalar() or 0)
    job = c.jobs.start(p.username, "export-settlements", n, "settlements.xlsx", lambda j: _settle_sheet(c, p, q, j))
    return JSONResponse(job.as_dict())


@router.get("/jobs/{job_id}")
def job_status(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page(api=True))], job_id: str
) -> Response:
    j = c.jobs.get(job_id, p.username)
    return JSONResponse(j.as_dict()) if j else JSONResponse({"error": "no such job"}, status_code=404)


@router.get("/jobs/{job_id}/file")
def job_file(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page(api=True))], job_id: str
) -> Response:
    j = c.jobs.get(job_id, p.username)
    if j is None or j.status != "done":
        return JSONResponse({"error": "not ready"}, status_code=404)
    return Response(
        j.result, media_type=excel.XLSX, headers={"Content-Disposition": f'attachment; filename="{j.filename}"'}
    )
