"""fee lines as the HIS sent them: the HIS's own feedetl_sn (character 30) and exact cnt / pric

The national interface gives ``feedetl_sn`` as character(30) (``yp570``, 15-digit
numbers), ``cnt`` as numeric(16,4) and ``pric`` as numeric(16,6).  The shared
``fee_detail`` table keeps its integer line number and its thousandths / fen
(the contract of the batch engine); ``fee_upload`` (one row per line uploaded
through the interface) now also holds what the HIS sent: its line number and the
exact quantity (ten-thousandths) and unit price (millionths of a yuan), integers
so that no database stores them through a float.

Revision ID: 0009_fee_line_as_sent
Revises: 0008_more_transactions
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_fee_line_as_sent"
down_revision: str | None = "0008_more_transactions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fee_upload") as b:
        b.add_column(sa.Column("his_feedetl_sn", sa.String(), nullable=True))
        b.add_column(sa.Column("cnt_e4", sa.BigInteger(), nullable=True))
        b.add_column(sa.Column("pric_e6", sa.BigInteger(), nullable=True))
    op.create_index(
        op.f("uq_fee_upload_mdtrt_id_his_feedetl_sn"), "fee_upload", ["mdtrt_id", "his_feedetl_sn"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("uq_fee_upload_mdtrt_id_his_feedetl_sn"), table_name="fee_upload")
    with op.batch_alter_table("fee_upload") as b:
        b.drop_column("pric_e6")
        b.drop_column("cnt_e4")
        b.drop_column("his_feedetl_sn")
