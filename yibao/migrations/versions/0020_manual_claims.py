"""manual_claim*: manual reimbursement (手工报销): claims, invoice lines, the invoice register, review steps

Revision ID: 0020_manual_claims
Revises: 0019_cross_filing
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from yibao.core.db import BigId, JSONType, TZDateTime

revision: str = "0020_manual_claims"
down_revision: str | None = "0019_cross_filing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "manual_claim",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("psn_no", sa.String(30), nullable=False, index=True),
        sa.Column("insutype", sa.String(6), nullable=False),
        sa.Column("fixmedins_code", sa.String(30), nullable=True),
        sa.Column("provider_name", sa.String(200), nullable=False),
        sa.Column("provider_admdvs", sa.String(6), nullable=False),
        sa.Column("hosp_lv", sa.SmallInteger(), nullable=False),
        sa.Column("med_type", sa.String(6), nullable=False),
        sa.Column("begin_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("dise_codg", sa.String(20), nullable=False),
        sa.Column("other_dise_codg", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(30), nullable=False),
        sa.Column("documents", JSONType, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(60), nullable=False),
        sa.Column("created_at", TZDateTime(), nullable=False),
        sa.Column("updated_at", TZDateTime(), nullable=False),
        sa.Column("submitted_on", sa.Date(), nullable=True),
        sa.Column("setl_id", sa.String(), sa.ForeignKey("settlement.setl_id"), nullable=True),
        sa.Column("mdtrt_id", sa.String(), nullable=True),
        sa.Column("reimbursed_fen", sa.BigInteger(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "manual_claim_line",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("claim_id", BigId, sa.ForeignKey("manual_claim.id"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("invoice_no", sa.String(60), nullable=False),
        sa.Column("med_list_codg", sa.String(60), nullable=True),
        sa.Column("item_text", sa.String(200), nullable=False),
        sa.Column("quantity_milli", sa.BigInteger(), nullable=False),
        sa.Column("unit_price_fen", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("uncoded", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("claim_id", "line_no"),
    )
    op.create_table(
        "manual_invoice",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("psn_no", sa.String(30), nullable=False),
        sa.Column("invoice_no", sa.String(60), nullable=False),
        sa.Column("claim_id", BigId, sa.ForeignKey("manual_claim.id"), nullable=False),
        sa.UniqueConstraint("psn_no", "invoice_no"),
    )
    op.create_table(
        "manual_claim_step",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("claim_id", BigId, sa.ForeignKey("manual_claim.id"), nullable=False, index=True),
        sa.Column("at", TZDateTime(), nullable=False),
        sa.Column("actor", sa.String(60), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("from_state", sa.String(20), nullable=False),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("comment", sa.String(2000), nullable=False),
        sa.Column("payload", JSONType, nullable=False),
    )


def downgrade() -> None:
    for name in ("manual_claim_step", "manual_invoice", "manual_claim_line", "manual_claim"):
        op.drop_table(name)
