"""The fund pages (基金运行): monthly fund spend by scheme,
by payment layer and by institution level; Excel and JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from yibao.web import charts, excel, figures
from yibao.web.auth import Principal
from yibao.web.console import ConsoleDep
from yibao.web.deps import page
from yibao.web.i18n import translator


def _by2(f: figures.FundFigures, k1: str, k2: str) -> list[tuple[tuple[Any, Any], dict[str, int]]]:
    out: dict[tuple, dict[str, int]] = {}
    for r in f.rows:
        acc = out.setdefault((r[k1], r[k2]), {"fund_pay_sumamt": 0, "claims": 0})
        acc["fund_pay_sumamt"] += int(r["fund_pay_sumamt"] or 0)
        acc["claims"] += int(r["claims"] or 0)
    return list(out.items())


router = APIRouter()


@router.get("/fund")
def fund(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("fund"))], year: int | None = None
) -> Response:
    f = figures.fund_figures(c.engine, year=year, scope=c._scope(p))
    lang = c.lang(request)
    i = 1 if lang == "en" else 0
    months = f.group("month")
    schemes = f.group("insutype")
    levels = f.group("hosp_lv")
    layer_fields = list(figures.SHARE_FIELDS)
    from yibao.settlement.fundyear import FUND_FIELDS

    layer_names = [FUND_FIELDS[k][1 - i] for k in layer_fields]
    wan = "万元" if i == 0 else "¥10k"
    month_chart = charts.bar_chart(
        [m for m, _ in months],
        {
            (figures.SCHEME_NAMES.get(s, (s, s))[i]): [
                int(
                    next(
                        (a["fund_pay_sumamt"] for (mm, ss), a in _by2(f, "month", "insutype") if mm == m and ss == s),
                        0,
                    )
                )
                for m, _ in months
            ]
            for s, _ in schemes
        },
        stacked=True,
        unit=wan,
        money=charts.WAN,
        chart_id="chart-month",
        title=translator(lang)("fund_by_month"),
    )
    layer_chart = charts.hbar_chart(
        layer_names,
        [int(f.totals.get(k, 0)) for k in layer_fields],
        unit=wan,
        money=charts.WAN,
        chart_id="chart-layer",
    )
    level_chart = charts.donut_chart(
        [figures.LEVEL_NAMES.get(lv, (str(lv), str(lv)))[i] for lv, _ in levels],
        [int(a["fund_pay_sumamt"]) for _, a in levels],
        unit=wan,
        money=charts.WAN,
        chart_id="chart-level",
    )
    return c.render(
        request,
        "fund.html",
        p,
        f=f,
        months=months,
        schemes=schemes,
        levels=levels,
        layer_fields=layer_fields,
        layer_names=layer_names,
        month_chart=month_chart,
        layer_chart=layer_chart,
        level_chart=level_chart,
        scheme_names=figures.SCHEME_NAMES,
        level_names=figures.LEVEL_NAMES,
        li=i,
        insts=figures.institutions(c.engine) if p.fixmedins_code else {},
    )


@router.get("/fund.xlsx")
def fund_xlsx(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("fund"))], year: int | None = None
) -> Response:
    f = figures.fund_figures(c.engine, year=year, scope=c._scope(p))
    from yibao.settlement.fundyear import FUND_FIELDS

    heads = [
        "month 月份",
        "insutype 险种",
        "hosp_lv 机构等级",
        "claims 结算笔数",
        "medfee_sumamt 医疗总费用 (元)",
        *[f"{k} {FUND_FIELDS[k][1]} (元)" for k in figures.SHARE_FIELDS],
        "fund_pay_sumamt 基金支付合计 (元)",
    ]
    rows = [
        [
            r["month"],
            r["insutype"],
            r["hosp_lv"],
            int(r["claims"]),
            excel.yuan(r["medfee_sumamt"]),
            *[excel.yuan(r[k]) for k in figures.SHARE_FIELDS],
            excel.yuan(r["fund_pay_sumamt"]),
        ]
        for r in f.rows
    ]
    data = excel.workbook_bytes([(f"fund {f.year}", heads, rows)], note=excel.SYNTHETIC_NOTE if f.synthetic else "")
    return Response(
        data, media_type=excel.XLSX, headers={"Content-Disposition": f'attachment; filename="fund-{f.year}.xlsx"'}
    )


@router.get("/api/fund")
def api_fund(
    request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("fund", api=True))], year: int | None = None
) -> Response:
    f = figures.fund_figures(c.engine, year=year, scope=c._scope(p))
    return JSONResponse(
        {
            "year": f.year,
            "scope": f.scope,
            "synthetic": f.synthetic,
            "totals_fen": f.totals,
            "rows": [{k: (int(v) if isinstance(v, (int,)) else v) for k, v in r.items()} for r in f.rows],
        }
    )
