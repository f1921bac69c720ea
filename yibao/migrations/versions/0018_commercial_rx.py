"""commercial layer (商业补充保险): cm_policy, cm_claim, cm_accumulator, cm_tpa_message

Revision ID: 0018_commercial_rx
Revises: 0017_ltc
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_commercial_rx"
down_revision: str | None = "0017_ltc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cm_policy",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("psn_no", sa.String(40), nullable=False),
        sa.Column("product_id", sa.String(40), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("premium_fen", sa.BigInteger(), nullable=False),
        sa.Column("pre_existing", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("psn_no", "product_id", "year", name=op.f("uq_cm_policy_psn_no_product_id_year")),
    )
    op.create_table(
        "cm_claim",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("setl_id", sa.String(60), nullable=False),
        sa.Column("product_id", sa.String(40), nullable=False),
        sa.Column("insurer", sa.String(40), nullable=False),
        sa.Column("psn_no", sa.String(40), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("in_list_fen", sa.BigInteger(), nullable=False),
        sa.Column("out_of_list_fen", sa.BigInteger(), nullable=False),
        sa.Column("specific_drug_fen", sa.BigInteger(), nullable=False),
        sa.Column("deductible_fen", sa.BigInteger(), nullable=False),
        sa.Column("insurer_pays_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("insurer_ref", sa.String(60), nullable=False),
        sa.Column("refuse_reason", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("setl_id", "product_id", name=op.f("uq_cm_claim_setl_id_product_id")),
    )
    op.create_index(op.f("ix_cm_claim_product_id_status"), "cm_claim", ["product_id", "status"])
    op.create_table(
        "cm_accumulator",
        sa.Column("psn_no", sa.String(40), primary_key=True),
        sa.Column("product_id", sa.String(40), primary_key=True),
        sa.Column("year", sa.SmallInteger(), primary_key=True),
        sa.Column("deductible_used", sa.BigInteger(), nullable=False),
        sa.Column("paid", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "cm_tpa_message",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("msgid", sa.String(60), nullable=True),
        sa.Column("insurer", sa.String(40), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("claim_id", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.UniqueConstraint("msgid", name=op.f("uq_cm_tpa_message_msgid")),
    )


def downgrade() -> None:
    op.drop_table("cm_tpa_message")
    op.drop_table("cm_accumulator")
    op.drop_index(op.f("ix_cm_claim_product_id_status"), table_name="cm_claim")
    op.drop_table("cm_claim")
    op.drop_table("cm_policy")
