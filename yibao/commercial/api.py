"""Insurer-facing TPA interface (第三方理赔接口): ``/api/v1/tpa/...``.

Not behind the console login: an insurer authenticates with headers ``X-TPA-Insurer`` and ``X-TPA-Key``; the keys
file (``YIBAO_TPA_KEYS``, YAML ``insurers: {CODE: {secret_hash: "scrypt$..."}}``) holds only scrypt hashes
(:func:`yibao.api.security.hash_secret`).  No keys file: every call is refused.

* ``GET  /api/v1/tpa/claims?status=sent`` — the insurer's claims (de-identified);
* ``GET  /api/v1/tpa/claims/{id}`` — one claim;
* ``POST /api/v1/tpa/claims/{id}/{accept|pay|refuse}`` — body ``{msgid, insurer_ref, reason}``, idempotent on msgid.
"""

# no "from __future__ import annotations": FastAPI reads the annotations

import os
from pathlib import Path

from fastapi import APIRouter, Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from yibao.api.security import check_secret
from yibao.commercial import service
from yibao.core.errors import YibaoError
from yibao.core.yamldata import read_yaml

router = APIRouter(prefix="/api/v1/tpa", tags=["tpa"])
KEYS_ENV = "YIBAO_TPA_KEYS"


def _error(exc: YibaoError, status: int = 400) -> HTTPException:
    return HTTPException(
        status_code=status,
        detail={"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field},
    )


def _engine(request: Request):
    from yibao.supervision.api import _engine as engine_of  # the same engine lookup as the other routers

    return engine_of(request)


def _insurer(insurer: str | None, key: str | None) -> str:
    refused = HTTPException(
        status_code=401,
        detail={"code": "E_TPA_AUTH", "message_en": "insurer not authenticated", "message_zh": "保险公司身份认证失败"},
    )
    path = os.environ.get(KEYS_ENV)
    if not insurer or not key or not path or len(key) > 200:
        raise refused
    data = read_yaml(Path(path), what=("TPA keys file", "TPA 密钥文件"))
    stored = ((data.get("insurers") or {}).get(insurer) or {}).get("secret_hash", "")
    if not stored or not check_secret(key, stored):
        raise refused
    return insurer


class ActIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msgid: str = Field(min_length=1, max_length=60, description="insurer's message id (idempotency key)")
    insurer_ref: str = Field("", max_length=60)
    reason: str = Field("", max_length=500)


@router.get("/claims")
def list_claims(
    request: Request,
    status: str | None = "sent",
    x_tpa_insurer: str | None = Header(None),
    x_tpa_key: str | None = Header(None),
) -> list[dict]:
    ins = _insurer(x_tpa_insurer, x_tpa_key)
    return service.list_claims(_engine(request), ins, status or None)


@router.get("/claims/{claim_id}")
def get_claim(
    request: Request,
    claim_id: int,
    x_tpa_insurer: str | None = Header(None),
    x_tpa_key: str | None = Header(None),
) -> dict:
    ins = _insurer(x_tpa_insurer, x_tpa_key)
    try:
        return service.get_claim(_engine(request), ins, claim_id)
    except YibaoError as exc:
        raise _error(exc, 404) from None


@router.post("/claims/{claim_id}/{action}")
def act(
    request: Request,
    claim_id: int,
    action: str,
    body: ActIn,
    x_tpa_insurer: str | None = Header(None),
    x_tpa_key: str | None = Header(None),
) -> dict:
    ins = _insurer(x_tpa_insurer, x_tpa_key)
    try:
        return service.act(
            _engine(request), ins, claim_id, action, body.msgid, insurer_ref=body.insurer_ref, reason=body.reason
        )
    except YibaoError as exc:
        raise _error(exc) from None
