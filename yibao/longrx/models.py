"""The proxy-pickup log (长期处方代取药登记).  Schema: migration ``0022_long_rx``."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base, TZDateTime

TZ = TZDateTime  # Shanghai wall clock on SQLite, timestamptz on PostgreSQL
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class ProxyPickup(Base):
    """Long-prescription drugs of one settlement collected by someone other than the patient (代取药)."""

    __tablename__ = "long_rx_proxy_pickup"
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    setl_id: Mapped[str] = mapped_column(sa.String(40), unique=True)  # the settlement collected (one log each)
    mdtrt_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    psn_no: Mapped[str] = mapped_column(sa.String(30), index=True)  # the patient
    proxy_name: Mapped[str] = mapped_column(sa.String(50))  # agnter_name
    proxy_cert_type: Mapped[str] = mapped_column(sa.String(6))  # agnter_cert_type
    proxy_certno_masked: Mapped[str] = mapped_column(sa.String(50))  # agnter_certno, masked (脱敏) only
    relation: Mapped[str] = mapped_column(sa.String(20))  # a key of data/longrx/proxy.yaml relations
    picked_up_at: Mapped[dt.datetime] = mapped_column(TZ)
    operator: Mapped[str] = mapped_column(sa.String(50))  # who registered it: staff user or institution code
    source: Mapped[str] = mapped_column(sa.String(10))  # interface (2207 agnterinfo) / manual
    created_at: Mapped[dt.datetime] = mapped_column(TZ)
