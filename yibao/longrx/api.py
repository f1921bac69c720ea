"""HTTP router of the proxy-pickup log (长期处方代取药登记), bureau staff only (registered in yibao/api/app.py).

Field names follow the national agnterinfo node (agnter_name, agnter_cert_type, agnter_certno, agnter_rlts).
"""

# no "from __future__ import annotations": FastAPI reads the endpoint annotations
import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from yibao.core.errors import YibaoError

router = APIRouter(prefix="/api/v1/longrx", tags=["longrx"])


class ProxyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    setl_id: str
    psn_no: str = ""
    agnter_name: str
    agnter_cert_type: str = "01"
    agnter_certno: str
    agnter_rlts: str  # a relation key (spouse, child, …) or its code
    picked_up_at: dt.datetime | None = None
    operator: str = ""  # default: the logged-in user


class ProxyOut(BaseModel):
    id: int
    setl_id: str
    mdtrt_id: str
    psn_no: str
    agnter_name: str
    agnter_cert_type: str
    agnter_certno: str  # masked
    agnter_rlts: str
    picked_up_at: dt.datetime
    operator: str
    source: str


def _out(r) -> ProxyOut:
    return ProxyOut(
        id=r.id,
        setl_id=r.setl_id,
        mdtrt_id=r.mdtrt_id,
        psn_no=r.psn_no,
        agnter_name=r.proxy_name,
        agnter_cert_type=r.proxy_cert_type,
        agnter_certno=r.proxy_certno_masked,
        agnter_rlts=r.relation,
        picked_up_at=r.picked_up_at,
        operator=r.operator,
        source=r.source,
    )


def _error(exc: YibaoError) -> HTTPException:
    return HTTPException(
        status_code=400,
        detail={"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field},
    )


def _engine(request: Request):
    from yibao.supervision.api import _engine as engine_of

    return engine_of(request)


def _user(request: Request) -> str:
    console = getattr(request.app.state, "console", None)
    p = console.auth.principal(request.cookies.get("yb_session")) if console is not None else None
    return p.username if p is not None else ""


@router.post("/proxy-pickups", response_model=ProxyOut)
def add(body: ProxyIn, request: Request) -> ProxyOut:
    from yibao.core.db import SHANGHAI, session_scope
    from yibao.longrx.service import ProxyPickupRequest, record_pickup

    req = ProxyPickupRequest(
        setl_id=body.setl_id,
        proxy_name=body.agnter_name,
        proxy_cert_type=body.agnter_cert_type,
        proxy_certno=body.agnter_certno,
        relation=body.agnter_rlts,
        operator=body.operator or _user(request),
        psn_no=body.psn_no,
        picked_up_at=body.picked_up_at,
    )
    try:
        with session_scope(_engine(request)) as s:
            return _out(record_pickup(s, req, now=dt.datetime.now(SHANGHAI)))
    except YibaoError as e:
        raise _error(e) from None


@router.get("/proxy-pickups", response_model=list[ProxyOut])
def list_(request: Request, psn_no: str | None = None, setl_id: str | None = None) -> list[ProxyOut]:
    from yibao.core.db import session_scope
    from yibao.longrx.service import list_pickups

    with session_scope(_engine(request)) as s:
        return [_out(r) for r in list_pickups(s, psn_no, setl_id)]
