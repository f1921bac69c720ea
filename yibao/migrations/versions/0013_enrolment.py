"""enrolment: insured periods (参保期间), contributions (缴费) and deemed contribution years (视同缴费年限)

Revision ID: 0013_enrolment
Revises: 0012_case_workflow
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_enrolment"
down_revision: str | None = "0012_case_workflow"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "en_insured_period",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "psn_no",
            sa.String(),
            sa.ForeignKey("person.psn_no", name="fk_en_insured_period_psn_no_person"),
            nullable=False,
        ),
        sa.Column("insutype", sa.String(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("transfer_in_from", sa.String(), nullable=True),
        sa.Column("transfer_out_to", sa.String(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("psn_no", "insutype", "start_date", name="uq_en_insured_period_psn_no_insutype_start_date"),
    )
    op.create_index("ix_en_insured_period_psn_no_insutype", "en_insured_period", ["psn_no", "insutype"])
    op.create_table(
        "en_contribution",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "psn_no",
            sa.String(),
            sa.ForeignKey("person.psn_no", name="fk_en_contribution_psn_no_person"),
            nullable=False,
        ),
        sa.Column("insutype", sa.String(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("base", sa.BigInteger(), nullable=False),
        sa.Column("employer_part", sa.BigInteger(), nullable=False),
        sa.Column("individual_part", sa.BigInteger(), nullable=False),
        sa.Column("subsidy", sa.BigInteger(), nullable=False),
        sa.Column("late_fee", sa.BigInteger(), nullable=False),
        sa.Column("paid_date", sa.Date(), nullable=True),
        sa.Column("back_payment", sa.Boolean(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("psn_no", "insutype", "period", name="uq_en_contribution_psn_no_insutype_period"),
    )
    op.create_table(
        "en_deemed_years",
        sa.Column(
            "psn_no",
            sa.String(),
            sa.ForeignKey("person.psn_no", name="fk_en_deemed_years_psn_no_person"),
            primary_key=True,
        ),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("en_deemed_years")
    op.drop_table("en_contribution")
    op.drop_index("ix_en_insured_period_psn_no_insutype", table_name="en_insured_period")
    op.drop_table("en_insured_period")
