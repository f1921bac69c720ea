"""The procurement, payment and supervision analysis pages (集采、支付方式、基金监管) and their Excel exports."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from yibao.web import excel, modules
from yibao.web.auth import Principal
from yibao.web.console import ConsoleDep
from yibao.web.deps import page

router = APIRouter()


def _page(name: str):
    allowed = Depends(page(name))  # a default, not an annotation: annotations are strings evaluated at module level

    def module_page(request: Request, c: ConsoleDep, p: Principal = allowed) -> Response:
        view = modules.view(name, c.engine, p, c.lang(request), c.data_dir)
        return c.render(request, "module.html", p, name=name, view=view)

    def module_xlsx(request: Request, c: ConsoleDep, p: Principal = allowed) -> Response:
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

    router.add_api_route(f"/{name}", module_page, methods=["GET"], name=f"{name}_page")
    router.add_api_route(f"/{name}.xlsx", module_xlsx, methods=["GET"], name=f"{name}_xlsx")


for _name in ("procurement", "payment", "supervision"):
    _page(_name)
