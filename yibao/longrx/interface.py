"""The national interface's side of long prescriptions (called by ``yibao.api.interface``).

* 2203 ``mdtrtinfo.long_rx_flag`` / 2204 ``feedetail.long_rx_flag`` (also ``longRxFlag``, the national
  e-prescription field, and the old ``lt_rx_confirmed``): "1" marks the visit's long prescription as
  evaluated and confirmed by the patient (``Encounter.lt_rx_confirmed``); absent or "" changes nothing.
* 2207 ``agnterinfo``: the proxy collecting a long prescription; the settlement records it in the
  proxy-pickup log in its own transaction, or is refused with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.orm import Session

from yibao.benefits.policy import PolicyBook
from yibao.longrx.models import ProxyPickup
from yibao.longrx.service import INTERFACE, ProxyPickupRequest, has_long_rx, record_pickup
from yibao.settlement import records

CONFIRMED = "1"


def apply_visit_flag(enc: records.Encounter, flag: str | None) -> None:
    """2203: the visit-level flag, when given, sets or clears the confirmation."""
    if flag is not None:
        enc.lt_rx_confirmed = flag == CONFIRMED


def apply_line_flags(enc: records.Encounter, flags: Iterable[str | None]) -> None:
    """2204: a line flagged "1" confirms the visit's long prescription (a "0" line does not clear it)."""
    if any(f == CONFIRMED for f in flags):
        enc.lt_rx_confirmed = True


def record_agent_pickup(
    s: Session,
    setl_id: str,
    agent: object,
    *,
    operator: str,
    now: dt.datetime,
    book: PolicyBook | None = None,
) -> ProxyPickup | None:
    """2207 with ``agnterinfo``: log the proxy when the settlement carries a long prescription (else nothing)."""
    setl = s.get(records.Settlement, setl_id)
    if setl is None or not has_long_rx(s, setl, book):
        return None
    req = ProxyPickupRequest(
        setl_id=setl_id,
        proxy_name=str(getattr(agent, "agnter_name", "")),
        proxy_cert_type=str(getattr(agent, "agnter_cert_type", "")) or "01",
        proxy_certno=str(getattr(agent, "agnter_certno", "")),
        relation=str(getattr(agent, "agnter_rlts", "")),
        operator=operator,
        psn_no=setl.psn_no,
        picked_up_at=now,
        source=INTERFACE,
    )
    return record_pickup(s, req, now=now, book=book)
