"""The filing register table (异地就医备案登记).  Schema: migration ``0019_cross_filing``."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base

TZ = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class CrossFiling(Base):
    """One filing of a person for care in another province (异地就医备案)."""

    __tablename__ = "cross_filing"
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(sa.String(30), index=True)
    insutype: Mapped[str] = mapped_column(sa.String(6))
    filing_type: Mapped[str] = mapped_column(sa.String(30))  # a key of data/crossregion/filing.yaml types
    insured_admdvs: Mapped[str] = mapped_column(sa.String(6))  # 参保地
    treatment_admdvs: Mapped[str] = mapped_column(sa.String(6))  # 就医地 (mdtrt_area_admdvs)
    begin_date: Mapped[dt.date] = mapped_column(sa.Date)  # begndate
    end_date: Mapped[dt.date | None] = mapped_column(sa.Date, nullable=True)  # enddate; None = open-ended
    status: Mapped[str] = mapped_column(sa.String(10), default="active")  # active / cancelled
    source_msgid: Mapped[str] = mapped_column(sa.String(40), default="")
    created_at: Mapped[dt.datetime] = mapped_column(TZ)
