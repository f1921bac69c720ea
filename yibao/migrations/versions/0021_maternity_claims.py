"""maternity_claims: the maternity allowance claim (生育津贴申领) and its append-only review steps

Revision ID: 0021_maternity_claims
Revises: 0020_manual_claims
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_maternity_claims"
down_revision: str | None = "0020_manual_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "maternity_claim",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "psn_no",
            sa.String(),
            sa.ForeignKey("person.psn_no", name="fk_maternity_claim_psn_no_person"),
            nullable=False,
        ),
        sa.Column("claimant", sa.String(), nullable=False),
        sa.Column("employer", sa.String(), nullable=False),
        sa.Column("region", sa.String(), nullable=False),
        sa.Column("event_kind", sa.String(), nullable=False),
        sa.Column("babies", sa.Integer(), nullable=False),
        sa.Column("pregnancy_weeks", sa.Integer(), nullable=True),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("applied_on", sa.Date(), nullable=False),
        sa.Column("average_wage", sa.BigInteger(), nullable=False),
        sa.Column("contribution_months", sa.Integer(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("allowance", sa.BigInteger(), nullable=False),
        sa.Column("lump_sum", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_maternity_claim_psn_no_event_date", "maternity_claim", ["psn_no", "event_date"])
    op.create_index("ix_maternity_claim_status", "maternity_claim", ["status"])
    op.create_table(
        "maternity_claim_step",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "claim_id",
            _ID,
            sa.ForeignKey("maternity_claim.id", name="fk_maternity_claim_step_claim_id_maternity_claim"),
            nullable=False,
        ),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("from_status", sa.String(), nullable=False),
        sa.Column("to_status", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("note", sa.String(), nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_maternity_claim_step_claim_id", "maternity_claim_step", ["claim_id"])


def downgrade() -> None:
    op.drop_index("ix_maternity_claim_step_claim_id", table_name="maternity_claim_step")
    op.drop_table("maternity_claim_step")
    op.drop_index("ix_maternity_claim_status", table_name="maternity_claim")
    op.drop_index("ix_maternity_claim_psn_no_event_date", table_name="maternity_claim")
    op.drop_table("maternity_claim")
