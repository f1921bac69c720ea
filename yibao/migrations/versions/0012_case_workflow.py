"""sv_case: clue_kind (线索来源), fine_paid_fen (罚款缴纳, fen) and appeal_kind (行政复议 / 行政诉讼)

Revision ID: 0012_case_workflow
Revises: 0011_person_insured_since
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_case_workflow"
down_revision: str | None = "0011_person_insured_since"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sv_case") as b:
        b.add_column(sa.Column("clue_kind", sa.String(20), nullable=False, server_default=""))
        b.add_column(sa.Column("fine_paid_fen", sa.BigInteger(), nullable=False, server_default="0"))
        b.add_column(sa.Column("appeal_kind", sa.String(20), nullable=False, server_default=""))
    # the server defaults only fill the cases already there; new rows get their values from the model
    with op.batch_alter_table("sv_case") as b:
        for col in ("clue_kind", "fine_paid_fen", "appeal_kind"):
            b.alter_column(col, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("sv_case") as b:
        b.drop_column("appeal_kind")
        b.drop_column("fine_paid_fen")
        b.drop_column("clue_kind")
