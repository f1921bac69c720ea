"""further national-interface transactions: sign-outs, files, in-care results, settlement lists

Revision ID: 0008_more_transactions
Revises: 0007_ecode_console
Create Date: 2026-12-03

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# written out here so this migration keeps describing the schema of its day
TZ = sa.DateTime(timezone=True)
JSONT = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")

revision: str = "0008_more_transactions"
down_revision: str | None = "0007_ecode_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_sign_out",
        sa.Column("sign_no", sa.String(), nullable=False),
        sa.Column("fixmedins_code", sa.String(), nullable=False),
        sa.Column("opter_no", sa.String(), nullable=True),
        sa.Column("signed_out_at", TZ, nullable=False),
        sa.Column("msgid", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("sign_no", name=op.f("pk_api_sign_out")),
    )
    op.create_table(
        "api_file",
        sa.Column("file_qury_no", sa.String(), nullable=False),
        sa.Column("fixmedins_code", sa.String(), nullable=False),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("dld_endtime", TZ, nullable=False),
        sa.Column("msgid", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("file_qury_no", name=op.f("pk_api_file")),
    )
    op.create_index("ix_api_file_fixmedins_code_created_at", "api_file", ["fixmedins_code", "created_at"], unique=False)
    op.create_table(
        "api_incare_result",
        sa.Column("jr_id", sa.String(), nullable=False),
        sa.Column("fixmedins_code", sa.String(), nullable=False),
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("mdtrt_id", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("vola_amt", sa.BigInteger(), nullable=False),
        sa.Column("evidence", JSONT, nullable=True),
        sa.Column("msgid", sa.String(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("dspo_way", sa.String(), nullable=True),
        sa.Column("dspo_way_rea", sa.String(), nullable=True),
        sa.Column("dspo_msgid", sa.String(), nullable=True),
        sa.Column("dspo_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("jr_id", name=op.f("pk_api_incare_result")),
    )
    op.create_index(
        "ix_api_incare_result_fixmedins_code_mdtrt_id",
        "api_incare_result",
        ["fixmedins_code", "mdtrt_id"],
        unique=False,
    )
    op.create_table(
        "api_setl_list",
        sa.Column("setl_list_id", sa.String(), nullable=False),
        sa.Column("setl_id", sa.String(), nullable=False),
        sa.Column("mdtrt_id", sa.String(), nullable=False),
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("fixmedins_code", sa.String(), nullable=False),
        sa.Column("main_diag", sa.String(), nullable=False),
        sa.Column("other_diags", JSONT, nullable=False),
        sa.Column("oprns", JSONT, nullable=False),
        sa.Column("ipt_days", sa.SmallInteger(), nullable=False),
        sa.Column("scheme", sa.String(), nullable=False),
        sa.Column("mdc", sa.String(), nullable=True),
        sa.Column("adrg", sa.String(), nullable=True),
        sa.Column("drg", sa.String(), nullable=True),
        sa.Column("group_status", sa.String(), nullable=False),
        sa.Column("payload", JSONT, nullable=False),
        sa.Column("version", sa.SmallInteger(), nullable=False),
        sa.Column("infno", sa.String(), nullable=False),
        sa.Column("msgid", sa.String(), nullable=False),
        sa.Column("uploaded_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("setl_list_id", name=op.f("pk_api_setl_list")),
        sa.UniqueConstraint("setl_id", name=op.f("uq_api_setl_list_setl_id")),
    )


def downgrade() -> None:
    op.drop_table("api_setl_list")
    op.drop_index("ix_api_incare_result_fixmedins_code_mdtrt_id", table_name="api_incare_result")
    op.drop_table("api_incare_result")
    op.drop_index("ix_api_file_fixmedins_code_created_at", table_name="api_file")
    op.drop_table("api_file")
    op.drop_table("api_sign_out")
