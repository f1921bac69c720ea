"""long_rx_proxy_pickup: the proxy-pickup log of long prescriptions (长期处方代取药登记)

Revision ID: 0022_long_rx
Revises: 0021_maternity_claims
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_long_rx"
down_revision: str | None = "0021_maternity_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "long_rx_proxy_pickup",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("setl_id", sa.String(40), nullable=False, unique=True),
        sa.Column("mdtrt_id", sa.String(40), nullable=False),
        sa.Column("psn_no", sa.String(30), nullable=False),
        sa.Column("proxy_name", sa.String(50), nullable=False),
        sa.Column("proxy_cert_type", sa.String(6), nullable=False),
        sa.Column("proxy_certno_masked", sa.String(50), nullable=False),
        sa.Column("relation", sa.String(20), nullable=False),
        sa.Column("picked_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.String(50), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_long_rx_proxy_pickup_mdtrt_id", "long_rx_proxy_pickup", ["mdtrt_id"])
    op.create_index("ix_long_rx_proxy_pickup_psn_no", "long_rx_proxy_pickup", ["psn_no"])


def downgrade() -> None:
    op.drop_index("ix_long_rx_proxy_pickup_psn_no", table_name="long_rx_proxy_pickup")
    op.drop_index("ix_long_rx_proxy_pickup_mdtrt_id", table_name="long_rx_proxy_pickup")
    op.drop_table("long_rx_proxy_pickup")
