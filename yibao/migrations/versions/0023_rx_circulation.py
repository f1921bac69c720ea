"""rx_circulation: electronic prescriptions, their lines, pharmacy fills, internet-hospital follow-ups (处方流转)

Revision ID: 0023_rx_circulation
Revises: 0022_long_rx
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_rx_circulation"
down_revision: str | None = "0022_long_rx"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rx_prescription",
        sa.Column("hi_rxno", sa.String(30), primary_key=True),
        sa.Column("hosp_rxno", sa.String(40), nullable=False),
        sa.Column("rx_trace_code", sa.String(40), nullable=False, unique=True),
        sa.Column("fixmedins_code", sa.String(30), nullable=False),
        sa.Column("prac_psn_code", sa.String(30), nullable=False),
        sa.Column("psn_no", sa.String(30), nullable=False),
        sa.Column("mdtrt_id", sa.String(40), nullable=False),
        sa.Column("med_type", sa.String(6), nullable=False),
        sa.Column("dise_codg", sa.String(200), nullable=False),
        sa.Column("prsc_time", TZ, nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.Column("valid_end_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("sm3_digest", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("fixmedins_code", "hosp_rxno", name="uq_rx_prescription_hosp_rxno"),
    )
    op.create_index("ix_rx_prescription_psn_no", "rx_prescription", ["psn_no"])
    op.create_table(
        "rx_prescription_line",
        sa.Column("hi_rxno", sa.String(30), sa.ForeignKey("rx_prescription.hi_rxno"), primary_key=True),
        sa.Column("line_no", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("med_list_codg", sa.String(50), nullable=False),
        sa.Column("cnt_milli", sa.BigInteger(), nullable=False),
        sa.Column("medc_days", sa.Integer(), nullable=False),
    )
    op.create_table(
        "rx_fill",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("hi_rxno", sa.String(30), sa.ForeignKey("rx_prescription.hi_rxno"), nullable=False),
        sa.Column("fixmedins_code", sa.String(30), nullable=False),
        sa.Column("issuer_code", sa.String(30), nullable=False),
        sa.Column("hosp_lv", sa.SmallInteger(), nullable=False),
        sa.Column("mdtrt_id", sa.String(40), nullable=False),
        sa.Column("setl_id", sa.String(40), nullable=False),
        sa.Column("msgid", sa.String(40), nullable=False),
        sa.Column("filled_at", TZ, nullable=False),
        sa.Column("delivery_fee", sa.BigInteger(), nullable=False),
        sa.Column("delivery_selfpay", sa.Boolean(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("cancel_msgid", sa.String(40), nullable=False),
    )
    op.create_index("ix_rx_fill_hi_rxno", "rx_fill", ["hi_rxno"])
    op.create_table(
        "rx_online_visit",
        sa.Column("mdtrt_id", sa.String(40), primary_key=True),
        sa.Column("psn_no", sa.String(30), nullable=False),
        sa.Column("fixmedins_code", sa.String(30), nullable=False),
        sa.Column("prior_mdtrt_id", sa.String(40), nullable=False),
        sa.Column("setl_id", sa.String(40), nullable=False),
        sa.Column("consulted_at", TZ, nullable=False),
    )
    op.create_index("ix_rx_online_visit_psn_no", "rx_online_visit", ["psn_no"])


def downgrade() -> None:
    op.drop_index("ix_rx_online_visit_psn_no", table_name="rx_online_visit")
    op.drop_table("rx_online_visit")
    op.drop_index("ix_rx_fill_hi_rxno", table_name="rx_fill")
    op.drop_table("rx_fill")
    op.drop_table("rx_prescription_line")
    op.drop_index("ix_rx_prescription_psn_no", table_name="rx_prescription")
    op.drop_table("rx_prescription")
