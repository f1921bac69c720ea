"""The ground-truth labels of the synthetic region (合成数据的真实标签): which entity carries which planted pattern."""

from __future__ import annotations

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base

__all__ = ["GroundTruth"]


class GroundTruth(Base):
    __tablename__ = "ground_truth"
    __table_args__ = (Index(None, "pattern"),)

    entity: Mapped[str] = mapped_column(String, primary_key=True)
    entity_id: Mapped[str] = mapped_column(String, primary_key=True)
    pattern: Mapped[str] = mapped_column(String, primary_key=True)
    detail: Mapped[str | None] = mapped_column(String)
