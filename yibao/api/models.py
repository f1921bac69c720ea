"""Tables of the national-interface service (its own; they share yibao.core.db's metadata).

* ``api_sign_in``: institution sign-ins (签到, 9001).  A ``sign_no`` belongs to
  one institution and expires.
* ``api_reply``: the reply to every successful message, keyed by ``msgid``
  (the idempotency store: a repeated ``msgid`` is answered from here).

The append-only audit log of every message and reply is
:class:`MessageLog` (``message_log``; UPDATE and DELETE are
refused by triggers from migration 0002).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base, BigId, JSONType, TZDateTime

__all__ = ["SignIn", "StoredReply"]


class SignIn(Base):
    """签到: one operator's session at one institution."""

    __tablename__ = "api_sign_in"
    __table_args__ = (Index(None, "fixmedins_code", "sign_time"),)

    sign_no: Mapped[str] = mapped_column(String, primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String)
    opter_no: Mapped[str | None] = mapped_column(String)
    mac: Mapped[str | None] = mapped_column(String)
    ip: Mapped[str | None] = mapped_column(String)
    sign_time: Mapped[datetime] = mapped_column(TZDateTime)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime)


class StoredReply(Base):
    """The reply given to a message, so that the same ``msgid`` gets the same reply."""

    __tablename__ = "api_reply"

    msgid: Mapped[str] = mapped_column(String, primary_key=True)
    infno: Mapped[str] = mapped_column(String)
    fixmedins_code: Mapped[str] = mapped_column(String)
    request_digest: Mapped[str] = mapped_column(String)
    reply: Mapped[Any] = mapped_column(JSONType)
    stored_at: Mapped[datetime] = mapped_column(TZDateTime)


class MessageLog(Base):
    """Append-only log of national-interface messages (HTTP service)."""

    __tablename__ = "message_log"
    __table_args__ = (Index(None, "msgid"), Index(None, "fixmedins_code", "received_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    msgid: Mapped[str | None] = mapped_column(String)
    infno: Mapped[str | None] = mapped_column(String)
    fixmedins_code: Mapped[str | None] = mapped_column(String)
    received_at: Mapped[datetime] = mapped_column(TZDateTime)
    request: Mapped[Any | None] = mapped_column(JSONType)
    response: Mapped[Any | None] = mapped_column(JSONType)
