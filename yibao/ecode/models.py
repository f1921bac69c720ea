"""Tables of the e-insurance code (医保电子凭证), on yibao.core.db's metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base, BigId, JSONType, TZDateTime


class EcodeKey(Base):
    """A signing key (the HMAC secret or SM2 key pair).  A production deployment keeps these in an HSM/KMS."""

    __tablename__ = "ecode_key"

    kid: Mapped[str] = mapped_column(String, primary_key=True)
    algorithm: Mapped[str] = mapped_column(String)
    secret_hex: Mapped[str] = mapped_column(String, default="")
    sm2_private: Mapped[str] = mapped_column(String, default="")
    sm2_public: Mapped[str] = mapped_column(String, default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class EcodeBinding(Base):
    """One person's code bound to one app account (激活/绑定): the holder's own, or a relative's (亲情账户)."""

    __tablename__ = "ecode_binding"
    __table_args__ = (Index("ix_ecode_binding_account_psn", "account_id", "psn_no"),)

    binding_id: Mapped[str] = mapped_column(String, primary_key=True)
    account_id: Mapped[str] = mapped_column(String)
    psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"))
    holder_psn_no: Mapped[str] = mapped_column(String)
    relation: Mapped[str] = mapped_column(String)  # self | spouse | parent | child
    mutual_aid: Mapped[bool] = mapped_column(Boolean, default=False)  # 家庭账户共济: holder's account may pay
    verified_by: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)  # active | unbound
    bound_at: Mapped[datetime] = mapped_column(TZDateTime)
    unbound_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    unbind_reason: Mapped[str | None] = mapped_column(String)


class EcodeBlock(Base):
    """Real-time blocking of code generation (实时生码拦截) for a person."""

    __tablename__ = "ecode_block"

    psn_no: Mapped[str] = mapped_column(String, primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    blocked_at: Mapped[datetime] = mapped_column(TZDateTime)
    reason: Mapped[str] = mapped_column(String)
    event_id: Mapped[int | None] = mapped_column(BigId)
    lifted_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String)


class EcodeUse(Base):
    """Every presentation of a code, accepted or refused (the usage log the risk rules read)."""

    __tablename__ = "ecode_use"
    __table_args__ = (Index("ix_ecode_use_psn_time", "psn_no", "used_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str | None] = mapped_column(String)
    binding_id: Mapped[str | None] = mapped_column(String)
    code_id: Mapped[str | None] = mapped_column(String)
    fixmedins_code: Mapped[str | None] = mapped_column(String)
    admdvs: Mapped[str | None] = mapped_column(String)
    purpose: Mapped[str | None] = mapped_column(String)
    used_at: Mapped[datetime] = mapped_column(TZDateTime)
    accepted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String)


class EcodeRiskEvent(Base):
    """An anomaly or a manual action, what was done, and its report to the bureau (报告医保局)."""

    __tablename__ = "ecode_risk_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)  # impossible_travel | burst | manual_block | manual_unbind | unblock
    detail_en: Mapped[str] = mapped_column(String)
    detail_zh: Mapped[str] = mapped_column(String)
    evidence: Mapped[Any | None] = mapped_column(JSONType)
    actions: Mapped[str] = mapped_column(String)  # comma list: block,unbind,report
    detected_at: Mapped[datetime] = mapped_column(TZDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    actor: Mapped[str] = mapped_column(String)  # "risk-engine" or a console user
