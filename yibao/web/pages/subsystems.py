"""The procurement, payment and supervision analysis pages (集采、支付方式、基金监管) and their Excel exports."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from yibao.web import excel


def mount(c: Any, r: Any, guarded: Any) -> None:
    """Add these pages to the console ``c``'s router ``r`` (``guarded`` turns a refusal into a page or redirect)."""

    from yibao.web import modules

    for name in ("procurement", "payment", "supervision"):

        def make(name: str):
            @guarded
            def page(request: Request) -> Response:
                p = c.need(request, name)
                view = modules.view(name, c.engine, p, c.lang(request), c.data_dir)
                return c.render(request, "module.html", p, name=name, view=view)

            @guarded
            def xlsx(request: Request) -> Response:
                p = c.need(request, name)
                view = modules.view(name, c.engine, p, c.lang(request), c.data_dir)
                if view is None or not view.tables:
                    return JSONResponse({"error": "no data", "error_zh": "暂无数据"}, status_code=404)
                data = excel.workbook_bytes(
                    [(t.title, t.headers, t.rows) for t in view.tables],
                    note=excel.SYNTHETIC_NOTE if view.synthetic else "",
                )
                return Response(
                    data, media_type=excel.XLSX, headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'}
                )

            r.add_api_route(f"/{name}", page, methods=["GET"])
            r.add_api_route(f"/{name}.xlsx", xlsx, methods=["GET"])

        make(name)
