"""The HTTP service (FastAPI): the national envelope and a plain REST API beside it.

* ``POST /fsi/api/rsfComIfsService/callService`` (and every other path in
  ``interface.yaml: envelope_paths``, each also as ``.../callService/<infno>``):
  the national envelope (every reply is HTTP 200 with ``infcode`` 0 or -1, as
  HIS clients expect);
* ``POST /api/v1/...``: the same transactions for new clients, one path each,
  institution / sign-in / message id in headers (``X-Fixmedins-Code``,
  ``X-Sign-No``, ``X-Msgid``), documented at ``/docs`` (OpenAPI);
  refusals are HTTP 400 (401 for sign-in problems) with ``ErrorBody``.

Both sides go through :class:`yibao.api.interface.Interface`, so idempotency,
the audit log and the checks are the same.
"""

# no "from __future__ import annotations": FastAPI reads the endpoint annotations built below

import os
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from yibao.api import schemas as S
from yibao.api.envelope import BadValue, MalformedMessage, dumps_exact, fmt_time, inspect_values, loads_exact
from yibao.api.interface import TRANSACTIONS, Interface, Outcome, Transaction

ENVELOPE_PATH = "/fsi/api/rsfComIfsService/callService"
JSON = "application/json; charset=utf-8"


async def read_bounded(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it is longer than ``limit`` bytes (not read further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # type: ignore[attr-defined] # later readers (FastAPI) get it from here
    return body


def _rest_refusal(out: Outcome, status: int | None = None) -> Response:
    body_out = {"infcode": -1, "err_msg": out.reply["err_msg"], "field": out.field}
    return Response(dumps_exact(body_out), status_code=status or out.status, media_type=JSON)


def _schema_refusal(iface: Interface, exc: RequestValidationError, raw: object) -> Outcome:
    """FastAPI's schema refusal as a national one: the field path and the reason, never the value sent."""
    e = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid", "type": "value_error"}
    loc = [str(x) for x in e.get("loc", ()) if str(x) != "body"]
    fld = ".".join(loc) or "body"
    msg = str(e.get("msg", ""))[:300]
    if e.get("type") == "value_error" and " / " in msg:
        zh, en = msg.removeprefix("Value error, ").split(" / ", 1)
    else:
        zh, en = "字段值无效或缺失", msg
    return iface.refuse(raw if isinstance(raw, (dict, list)) else "", f"{zh}: {fld}", f"{en}: {fld}", fld, 422)


class ExactJSONRoute(APIRoute):
    """Parse request JSON with decimals as ``Decimal`` (money never passes through a float).

    Every bad body gets a national-style refusal (``infcode -1``, ``err_msg`` naming the field), audited
    and bounded: too large (``interface.max_body_bytes``, HTTP 413), not JSON, control characters or lone
    surrogates, nesting too deep, or not matching the schema (HTTP 422, without echoing the value).
    """

    def get_route_handler(self) -> Callable:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            iface: Interface = request.app.state.iface
            limit = iface.cfg.interface.max_body_bytes
            body = await read_bounded(request, limit)
            if body is None:
                return _rest_refusal(iface.too_large(int(request.headers.get("content-length") or limit + 1)))
            raw: object = None
            if body:
                try:
                    raw = loads_exact(body)
                    inspect_values(raw, iface.cfg.interface.max_json_depth)
                except MalformedMessage as exc:
                    return _rest_refusal(iface.refuse(body, "请求体不是合法的JSON", str(exc), "body"))
                except BadValue as b:
                    return _rest_refusal(iface.refuse(body, b.zh, b.en, b.field))
                request._json = raw  # type: ignore[attr-defined]
            try:
                return await original(request)
            except RequestValidationError as exc:
                return _rest_refusal(_schema_refusal(iface, exc, raw))

        return handler


def _rest_endpoint(iface: Interface, spec: Transaction) -> Callable:
    async def endpoint(
        request: Request,
        body: spec.model,  # type: ignore[valid-type]
        x_fixmedins_code: str = Header(..., description="定点医药机构编号 fixmedins_code"),
        x_sign_no: str = Header("", description="签到编号 sign_no (from POST /api/v1/sign-in)"),
        x_msgid: str = Header("", description="报文ID msgid: repeat it to retry safely (idempotency key)"),
        x_opter: str = Header("api", description="经办人 opter"),
    ) -> Response:
        raw = await request.json()
        env: dict[str, Any] = {
            "infno": spec.infno,
            "msgid": x_msgid or f"REST{uuid.uuid4().hex.upper()}",
            "fixmedins_code": x_fixmedins_code,
            "sign_no": x_sign_no,
            "opter": x_opter or "api",
            "opter_type": "1",
            "infver": "V1.0",
            "inf_time": fmt_time(iface.clock()),
            "input": raw,
        }
        out: Outcome = await run_in_threadpool(lambda: iface.handle(env, plain=True))
        if out.infcode == 0:
            return Response(
                dumps_exact(out.output), media_type=JSON, headers={"X-Inf-Refmsgid": out.reply["inf_refmsgid"]}
            )
        return _rest_refusal(out)

    endpoint.__name__ = f"t{spec.infno}"
    endpoint.__doc__ = f"{spec.infno} {spec.name_zh} ({spec.name_en})."
    return endpoint


def create_app(iface: Interface) -> FastAPI:
    app = FastAPI(
        title="yibao 医保: national interface (定点医药机构接口)",
        version="1",
        description=(
            "Real-time settlement on the national interface conventions. The envelope endpoint serves existing HIS "
            "clients unchanged; `/api/v1/...` serves the same transactions as plain REST. Money is yuan with two "
            "decimals. Synthetic data unless you loaded real data."
        ),
        separate_input_output_schemas=False,
        docs_url=None,
        redoc_url=None,  # served below from local files (yibao.web.apidocs), not a CDN
    )
    from yibao.web.apidocs import mount_docs

    mount_docs(app, "yibao 医保 接口文档")
    app.state.iface = iface

    envelope_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": S.Envelope.model_json_schema(ref_template="#/components/schemas/{model}")
                }
            },
        }
    }

    async def call_service(request: Request) -> Response:
        infno = request.path_params.get("infno")
        body = await read_bounded(request, iface.cfg.interface.max_body_bytes)
        if body is None:
            out = await run_in_threadpool(iface.too_large, int(request.headers.get("content-length") or 0))
        else:
            out = await run_in_threadpool(lambda: iface.handle_raw(body, infno=infno))
        return Response(out.text, media_type=JSON)

    for i, path in enumerate(iface.cfg.interface.envelope_paths):  # interface.yaml: the URL forms clients use
        for suffix in ("", "/{infno}"):
            app.add_api_route(
                path + suffix,
                call_service,
                methods=["POST"],
                tags=["national envelope"],
                summary="National envelope: any transaction by infno (always HTTP 200; infcode 0 / -1)"
                + (" · infno in the URL" if suffix else ""),
                response_model=S.Reply,
                openapi_extra=envelope_doc,
                include_in_schema=(i == 0),
                name=f"call_service_{i}{'_infno' if suffix else ''}",
            )

    router = APIRouter(prefix="/api/v1", route_class=ExactJSONRoute)
    for spec in TRANSACTIONS.values():
        router.add_api_route(
            f"/{spec.rest_path}",
            _rest_endpoint(iface, spec),
            methods=["POST"],
            tags=[spec.rest_path.split("/")[0]],
            summary=f"{spec.infno} {spec.name_zh} · {spec.name_en}",
            response_model=spec.output,
            responses={400: {"model": S.ErrorBody}, 401: {"model": S.ErrorBody}, 503: {"model": S.ErrorBody}},
        )
    app.include_router(router)
    # the subsystems' routers sit behind the console's login: bureau staff only (institution staff and the
    # public see their own slice through the console pages, which filter by the user's institution / person)
    from fastapi import Depends

    from yibao.crossregion.api import router as filing_router
    from yibao.enrolment.api import router as enrolment_router
    from yibao.ltc.api import router as ltc_router
    from yibao.payment.api import router as payment_router
    from yibao.pooling.api import router as pooling_router
    from yibao.procurement.api import router as procurement_router
    from yibao.rxcirc.api import router as rx_router
    from yibao.supervision.api import router as supervision_router
    from yibao.web.auth import require

    bureau_only = [Depends(require("bureau"))]
    for sub in (
        supervision_router,
        payment_router,
        procurement_router,
        pooling_router,
        enrolment_router,
        ltc_router,
        filing_router,
        rx_router,
    ):
        app.include_router(
            sub,
            dependencies=bureau_only,
            responses={401: {"description": "login required"}, 403: {"description": "not bureau staff"}},
        )
    from yibao.commercial.api import router as tpa_router  # insurers (TPA), authenticated by their own key

    app.include_router(tpa_router)
    from yibao.web.console import mount_console  # the console (运行监测) and e-code pages, under /console

    mount_console(app, iface)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    from yibao.web.front import (  # / leads to the console and the docs; headers on every answer
        SecurityHeaders,
        landing_page,
    )

    app.add_api_route("/", landing_page, methods=["GET"], include_in_schema=False)
    app.add_middleware(SecurityHeaders)

    return app


INSECURE_ENV = "YIBAO_SERVE_INSECURE_DEMO"  # set only by `yibao serve --insecure-demo`, for its workers


def build_interface(
    db_url: str | None = None, security: str | None = None, *, insecure_demo: bool = False
) -> Interface:
    """An :class:`Interface` on ``db_url`` (migrated), with the database's medical list (or the shipped one).

    ``security``: a YAML file of per-institution sign-in secrets and SM4/SM3/SM2 settings (:mod:`yibao.api.security`);
    ``insecure_demo``: institutions with no credential configured may sign in without one.
    """
    from yibao.api.security import SecurityPolicy
    from yibao.benefits.policy import PolicyBook
    from yibao.codes.medlist import load_med_list
    from yibao.core import db
    from yibao.settlement.catalog import Catalog

    url = db.database_url(db_url)
    db.upgrade(url)
    engine = db.make_engine(url, pool_size=32, max_overflow=32) if not url.startswith("sqlite") else db.make_engine(url)
    table = db.read_table(engine, "med_list")
    if table.num_rows == 0:
        table = load_med_list()
    policy = (
        SecurityPolicy.load(security, insecure_demo=insecure_demo)
        if security
        else SecurityPolicy(insecure_demo=insecure_demo)
    )
    iface = Interface(engine, PolicyBook.default(), Catalog.from_table(table), security=policy)
    from yibao.ecode.service import EcodeService  # 医保电子凭证: mdtrt_cert_type 01 in 1101 and settlement

    ecode = EcodeService(engine, clock=iface.clock)
    iface.ecode_verifier, iface.ecode_payer = ecode.interface_verifier(), ecode.payer_for_code
    return iface


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` / several workers: database from ``$YIBAO_DATABASE_URL``."""
    return create_app(
        build_interface(
            os.environ.get("YIBAO_DATABASE_URL"),
            os.environ.get("YIBAO_API_SECURITY") or None,
            insecure_demo=os.environ.get(INSECURE_ENV) == "1",
        )
    )
