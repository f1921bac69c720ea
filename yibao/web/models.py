"""Console users and login sessions, on yibao.core.db's metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base, TZDateTime


class ConsoleUser(Base):
    """A console account: role bureau | institution | public; institution staff carry their fixmedins_code."""

    __tablename__ = "console_user"

    username: Mapped[str] = mapped_column(String, primary_key=True)
    password_hash: Mapped[str] = mapped_column(String)  # scrypt$n$r$p$salt$hash
    role: Mapped[str] = mapped_column(String)
    fixmedins_code: Mapped[str | None] = mapped_column(String)
    psn_no: Mapped[str | None] = mapped_column(String)  # a member of the public: their own person number
    display_name: Mapped[str] = mapped_column(String, default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime)


class ConsoleSession(Base):
    """A login session; the cookie holds the token, the table only its SHA-256."""

    __tablename__ = "console_session"

    token_sha256: Mapped[str] = mapped_column(String, primary_key=True)
    username: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(TZDateTime)
