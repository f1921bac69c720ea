"""the practitioner table (医保医师/护士/药师) of the data contract (SCHEMA_VERSION 2)

Revision ID: 0010_practitioner
Revises: 0009_fee_line_as_sent
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_practitioner"
down_revision: str | None = "0009_fee_line_as_sent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "practitioner",
        sa.Column("prac_psn_code", sa.String(), nullable=False),
        sa.Column("prac_psn_name", sa.String(), nullable=True),
        sa.Column("prac_psn_type", sa.String(), nullable=True),
        sa.Column("fixmedins_code", sa.String(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["fixmedins_code"], ["institution.fixmedins_code"], name=op.f("fk_practitioner_fixmedins_code_institution")
        ),
        sa.PrimaryKeyConstraint("prac_psn_code", name=op.f("pk_practitioner")),
    )
    op.create_index(op.f("ix_practitioner_fixmedins_code"), "practitioner", ["fixmedins_code"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_practitioner_fixmedins_code"), table_name="practitioner")
    op.drop_table("practitioner")
