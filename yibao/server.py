"""The composition root (组装): one service app from the national interface, the subsystems' routers and the console.

``yibao serve`` runs :func:`app_from_env` (``uvicorn yibao.server:app_from_env --factory``); tests and benchmarks call
:func:`create_app` with an :class:`~yibao.api.interface.Interface` of their own.  A subsystem's REST router is one
line in :data:`SUBSYSTEM_ROUTERS`; its console pages are a module in ``yibao/web/pages/`` (found there).
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI

from yibao.api.app import INSECURE_ENV, build_interface, national_interface_app
from yibao.api.interface import Interface
from yibao.web.auth import require
from yibao.web.console import mount_console
from yibao.web.front import SecurityHeaders, landing_page

Access = Literal["bureau", "own"]

# (module holding ``router``, who may call it).  "bureau": behind the console's login, bureau staff only —
# institution staff and the public see their own slice through the console pages, which filter by the user's
# institution or person.  "own": the router authenticates its callers itself (insurers' keys for the TPA API).
SUBSYSTEM_ROUTERS: tuple[tuple[str, Access], ...] = (
    ("yibao.supervision.api", "bureau"),
    ("yibao.payment.api", "bureau"),
    ("yibao.procurement.api", "bureau"),
    ("yibao.pooling.api", "bureau"),
    ("yibao.enrolment.api", "bureau"),
    ("yibao.ltc.api", "bureau"),
    ("yibao.crossregion.api", "bureau"),
    ("yibao.maternity.api", "bureau"),
    ("yibao.longrx.api", "bureau"),
    ("yibao.reimbursement.api", "bureau"),
    ("yibao.rxcirc.api", "bureau"),
    ("yibao.commercial.api", "own"),
)

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "login required"},
    403: {"description": "not bureau staff"},
}


def subsystem_routers() -> list[tuple[APIRouter, Access]]:
    """The routers of :data:`SUBSYSTEM_ROUTERS`, imported."""
    return [(importlib.import_module(module).router, access) for module, access in SUBSYSTEM_ROUTERS]


def create_app(iface: Interface) -> FastAPI:
    """The whole service: national interface, subsystem REST, the console (``/console``), ``/healthz`` and ``/``."""
    app = national_interface_app(iface)
    bureau_only = [Depends(require("bureau"))]
    for router, access in subsystem_routers():
        if access == "bureau":
            app.include_router(router, dependencies=bureau_only, responses=_REFUSALS)
        else:
            app.include_router(router)
    mount_console(app, iface)  # the console (运行监测) and the e-code pages

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_api_route("/", landing_page, methods=["GET"], include_in_schema=False)  # to the console and the docs
    app.add_middleware(SecurityHeaders)  # security headers on every answer
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` / several workers: database from ``$YIBAO_DATABASE_URL``."""
    return create_app(
        build_interface(
            os.environ.get("YIBAO_DATABASE_URL"),
            os.environ.get("YIBAO_API_SECURITY") or None,
            insecure_demo=os.environ.get(INSECURE_ENV) == "1",
        )
    )
