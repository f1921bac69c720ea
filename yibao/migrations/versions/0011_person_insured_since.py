"""person.insured_since (个人参保日期), reported by 1101 as psn_insu_date

Revision ID: 0011_person_insured_since
Revises: 0010_practitioner
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_person_insured_since"
down_revision: str | None = "0010_practitioner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("person") as b:
        b.add_column(sa.Column("insured_since", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("person") as b:
        b.drop_column("insured_since")
