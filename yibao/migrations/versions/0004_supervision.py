"""supervision: enforcement cases, case events, credit points

Revision ID: 0004_supervision
Revises: 0003_procurement
Create Date: 2026-11-23

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TZ = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0004_supervision"
down_revision: str | None = "0003_procurement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sv_case",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("subject_kind", sa.String(20), nullable=False),
        sa.Column("subject_code", sa.String(40), nullable=False),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("violation", sa.String(40), nullable=False),
        sa.Column("procedure", sa.String(10), nullable=False),
        sa.Column("loss_fen", sa.BigInteger(), nullable=False),
        sa.Column("band", sa.String(10), nullable=False),
        sa.Column("fine_fen", sa.BigInteger(), nullable=False),
        sa.Column("recovered_fen", sa.BigInteger(), nullable=False),
        sa.Column("major", sa.Boolean(), nullable=False),
        sa.Column("legal_review_passed", sa.Boolean(), nullable=False),
        sa.Column("transferred_to", sa.String(40), nullable=False),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sv_case")),
    )
    op.create_index(op.f("ix_sv_case_subject_code"), "sv_case", ["subject_code"], unique=False)
    op.create_table(
        "sv_case_event",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_state", sa.String(20), nullable=False),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(60), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["sv_case.id"], name=op.f("fk_sv_case_event_case_id_sv_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sv_case_event")),
    )
    op.create_index(op.f("ix_sv_case_event_case_id"), "sv_case_event", ["case_id"], unique=False)
    op.create_table(
        "sv_credit_point",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("subject_kind", sa.String(20), nullable=False),
        sa.Column("subject_code", sa.String(40), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("case_id", BIG_ID, nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["sv_case.id"], name=op.f("fk_sv_credit_point_case_id_sv_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sv_credit_point")),
    )
    op.create_index("ix_sv_credit_point_subject", "sv_credit_point", ["subject_kind", "subject_code"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sv_credit_point_subject", table_name="sv_credit_point")
    op.drop_table("sv_credit_point")
    op.drop_index(op.f("ix_sv_case_event_case_id"), table_name="sv_case_event")
    op.drop_table("sv_case_event")
    op.drop_index(op.f("ix_sv_case_subject_code"), table_name="sv_case")
    op.drop_table("sv_case")
