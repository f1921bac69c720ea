"""ltc_*: long-term care insurance lifecycle (长期护理保险): assessments, recipients, services, claims, events

Revision ID: 0017_ltc
Revises: 0013_enrolment
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from yibao.core.db import BigId, JSONType, TZDateTime

revision: str = "0017_ltc"
down_revision: str | None = "0013_enrolment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ltc_assessment",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("psn_no", sa.String(30), nullable=False, index=True),
        sa.Column("assessor_institution", sa.String(30), nullable=False),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("scores", JSONType, nullable=False),
        sa.Column("total_score", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(20), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("appeal_note", sa.String(), nullable=False),
    )
    op.create_table(
        "ltc_recipient",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("psn_no", sa.String(30), nullable=False, unique=True),
        sa.Column("region", sa.String(30), nullable=False),
        sa.Column("setting", sa.String(30), nullable=False),
        sa.Column("care_institution", sa.String(30), nullable=False),
        sa.Column("start_month", sa.Date(), nullable=False),
        sa.Column("end_month", sa.Date(), nullable=True),
    )
    op.create_table(
        "ltc_service_record",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("recipient_id", BigId, sa.ForeignKey("ltc_recipient.id"), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("institution", sa.String(30), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("services", JSONType, nullable=False),
        sa.Column("cost_fen", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("recipient_id", "month"),
    )
    op.create_table(
        "ltc_claim",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("recipient_id", BigId, sa.ForeignKey("ltc_recipient.id"), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("grade", sa.String(20), nullable=False),
        sa.Column("setting", sa.String(30), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("fund_fen", sa.BigInteger(), nullable=False),
        sa.Column("person_fen", sa.BigInteger(), nullable=False),
        sa.Column("source_split", JSONType, nullable=False),
        sa.Column("settled_at", TZDateTime, nullable=False),
        sa.UniqueConstraint("recipient_id", "month"),
    )
    op.create_table(
        "ltc_event",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("psn_no", sa.String(30), nullable=False, index=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("detail", JSONType, nullable=False),
        sa.Column("at", TZDateTime, nullable=False),
    )


def downgrade() -> None:
    for t in ("ltc_event", "ltc_claim", "ltc_service_record", "ltc_recipient", "ltc_assessment"):
        op.drop_table(t)
