"""cross_filing: the cross-province filing register (异地就医备案)

Revision ID: 0019_cross_filing
Revises: 0018_commercial_rx
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_cross_filing"
down_revision: str | None = "0018_commercial_rx"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cross_filing",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("psn_no", sa.String(30), nullable=False),
        sa.Column("insutype", sa.String(6), nullable=False),
        sa.Column("filing_type", sa.String(30), nullable=False),
        sa.Column("insured_admdvs", sa.String(6), nullable=False),
        sa.Column("treatment_admdvs", sa.String(6), nullable=False),
        sa.Column("begin_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("source_msgid", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cross_filing_psn_no", "cross_filing", ["psn_no"])


def downgrade() -> None:
    op.drop_index("ix_cross_filing_psn_no", table_name="cross_filing")
    op.drop_table("cross_filing")
