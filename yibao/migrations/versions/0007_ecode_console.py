"""e-insurance code (医保电子凭证) and console users/sessions

Revision ID: 0007_ecode_console
Revises: 0004_supervision
Create Date: 2026-11-23

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# written out here so this migration keeps describing the schema of its day
TZ = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONT = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")

revision: str = "0007_ecode_console"
down_revision: str | None = "0004_supervision"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ecode_key",
        sa.Column("kid", sa.String(), nullable=False),
        sa.Column("algorithm", sa.String(), nullable=False),
        sa.Column("secret_hex", sa.String(), nullable=False),
        sa.Column("sm2_private", sa.String(), nullable=False),
        sa.Column("sm2_public", sa.String(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_ecode_key")),
    )
    op.create_table(
        "ecode_binding",
        sa.Column("binding_id", sa.String(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("holder_psn_no", sa.String(), nullable=False),
        sa.Column("relation", sa.String(), nullable=False),
        sa.Column("mutual_aid", sa.Boolean(), nullable=False),
        sa.Column("verified_by", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("bound_at", TZ, nullable=False),
        sa.Column("unbound_at", TZ, nullable=True),
        sa.Column("unbind_reason", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_ecode_binding_psn_no_person")),
        sa.PrimaryKeyConstraint("binding_id", name=op.f("pk_ecode_binding")),
    )
    op.create_index("ix_ecode_binding_account_psn", "ecode_binding", ["account_id", "psn_no"], unique=False)
    op.create_table(
        "ecode_block",
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("blocked_at", TZ, nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("event_id", BIG_ID, nullable=True),
        sa.Column("lifted_at", TZ, nullable=True),
        sa.Column("lifted_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("psn_no", name=op.f("pk_ecode_block")),
    )
    op.create_table(
        "ecode_use",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("psn_no", sa.String(), nullable=True),
        sa.Column("binding_id", sa.String(), nullable=True),
        sa.Column("code_id", sa.String(), nullable=True),
        sa.Column("fixmedins_code", sa.String(), nullable=True),
        sa.Column("admdvs", sa.String(), nullable=True),
        sa.Column("purpose", sa.String(), nullable=True),
        sa.Column("used_at", TZ, nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ecode_use")),
    )
    op.create_index("ix_ecode_use_psn_time", "ecode_use", ["psn_no", "used_at"], unique=False)
    op.create_table(
        "ecode_risk_event",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("detail_en", sa.String(), nullable=False),
        sa.Column("detail_zh", sa.String(), nullable=False),
        sa.Column("evidence", JSONT, nullable=True),
        sa.Column("actions", sa.String(), nullable=False),
        sa.Column("detected_at", TZ, nullable=False),
        sa.Column("reported_at", TZ, nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ecode_risk_event")),
    )
    op.create_table(
        "console_user",
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("fixmedins_code", sa.String(), nullable=True),
        sa.Column("psn_no", sa.String(), nullable=True),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_console_user")),
    )
    op.create_table(
        "console_session",
        sa.Column("token_sha256", sa.String(), nullable=False),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("ended_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_console_session")),
    )


def downgrade() -> None:
    op.drop_table("console_session")
    op.drop_table("console_user")
    op.drop_table("ecode_risk_event")
    op.drop_index("ix_ecode_use_psn_time", table_name="ecode_use")
    op.drop_table("ecode_use")
    op.drop_table("ecode_block")
    op.drop_index("ix_ecode_binding_account_psn", table_name="ecode_binding")
    op.drop_table("ecode_binding")
    op.drop_table("ecode_key")
