"""procurement (集采): rounds, bids, results with reasons, contracts, orders

Revision ID: 0003_procurement
Revises: 0002
Create Date: 2026-11-23

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# written out here so this migration keeps describing the schema of its day
TZ = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# revision identifiers, used by Alembic.
revision: str = "0003_procurement"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vbp_round",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("ruleset_id", sa.String(), nullable=False),
        sa.Column("round_date", sa.Date(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vbp_round")),
    )
    op.create_table(
        "vbp_bid",
        sa.Column("round_id", BIG_ID, nullable=False),
        sa.Column("bid_id", sa.String(), nullable=False),
        sa.Column("drug_id", sa.String(), nullable=False),
        sa.Column("spec_id", sa.String(), nullable=False),
        sa.Column("firm_id", sa.String(), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["vbp_round.id"], name=op.f("fk_vbp_bid_round_id_vbp_round")),
        sa.PrimaryKeyConstraint("round_id", "bid_id", name=op.f("pk_vbp_bid")),
    )
    op.create_index(op.f("ix_vbp_bid_round_id_drug_id"), "vbp_bid", ["round_id", "drug_id"], unique=False)

    op.create_table(
        "vbp_contract",
        sa.Column("round_id", BIG_ID, nullable=False),
        sa.Column("institution_id", sa.String(), nullable=False),
        sa.Column("spec_id", sa.String(), nullable=False),
        sa.Column("supplier", sa.String(), nullable=False),
        sa.Column("drug_id", sa.String(), nullable=False),
        sa.Column("region", sa.String(), nullable=False),
        sa.Column("agreed_units", sa.BigInteger(), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("units_per_pack", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["vbp_round.id"], name=op.f("fk_vbp_contract_round_id_vbp_round")),
        sa.PrimaryKeyConstraint("round_id", "institution_id", "spec_id", "supplier", name=op.f("pk_vbp_contract")),
    )
    op.create_index(op.f("ix_vbp_contract_round_id_supplier"), "vbp_contract", ["round_id", "supplier"], unique=False)

    op.create_table(
        "vbp_order",
        sa.Column("round_id", BIG_ID, nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("institution_id", sa.String(), nullable=False),
        sa.Column("drug_id", sa.String(), nullable=False),
        sa.Column("spec_id", sa.String(), nullable=False),
        sa.Column("supplier", sa.String(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("contracted", sa.Boolean(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["vbp_round.id"], name=op.f("fk_vbp_order_round_id_vbp_round")),
        sa.PrimaryKeyConstraint("round_id", "order_id", name=op.f("pk_vbp_order")),
    )
    op.create_index(
        op.f("ix_vbp_order_round_id_institution_id"), "vbp_order", ["round_id", "institution_id"], unique=False
    )

    op.create_table(
        "vbp_result",
        sa.Column("round_id", BIG_ID, nullable=False),
        sa.Column("drug_id", sa.String(), nullable=False),
        sa.Column("firm_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("comparable_e4", sa.BigInteger(), nullable=False),
        sa.Column("award_comparable_e4", sa.BigInteger(), nullable=False),
        sa.Column("reason_code", sa.String(), nullable=False),
        sa.Column("reason_en", sa.String(), nullable=False),
        sa.Column("reason_zh", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["vbp_round.id"], name=op.f("fk_vbp_result_round_id_vbp_round")),
        sa.PrimaryKeyConstraint("round_id", "drug_id", "firm_id", name=op.f("pk_vbp_result")),
    )


def downgrade() -> None:
    op.drop_table("vbp_result")
    op.drop_index(op.f("ix_vbp_order_round_id_institution_id"), table_name="vbp_order")

    op.drop_table("vbp_order")
    op.drop_index(op.f("ix_vbp_contract_round_id_supplier"), table_name="vbp_contract")

    op.drop_table("vbp_contract")
    op.drop_index(op.f("ix_vbp_bid_round_id_drug_id"), table_name="vbp_bid")

    op.drop_table("vbp_bid")
    op.drop_table("vbp_round")
