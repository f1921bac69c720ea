"""national interface: visit state, fee batches, sign-ins, stored replies; append-only message_log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TZ = sa.DateTime(timezone=True)
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_FN = """
CREATE OR REPLACE FUNCTION yibao_message_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'message_log is append-only (审计日志只能追加)';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "visit_state",
        sa.Column("mdtrt_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("fixmedins_code", sa.String(), nullable=False),
        sa.Column("insutype", sa.String(), nullable=True),
        sa.Column("ipt_otp_no", sa.String(), nullable=True),
        sa.Column("msgid", sa.String(), nullable=True),
        sa.Column("changed_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["mdtrt_id"], ["encounter.mdtrt_id"], name=op.f("fk_visit_state_mdtrt_id_encounter")),
        sa.PrimaryKeyConstraint("mdtrt_id", name=op.f("pk_visit_state")),
    )
    op.create_table(
        "fee_upload",
        sa.Column("mdtrt_id", sa.String(), nullable=False),
        sa.Column("feedetl_sn", sa.Integer(), nullable=False),
        sa.Column("chrg_bchno", sa.String(), nullable=True),
        sa.Column("msgid", sa.String(), nullable=True),
        sa.Column("uploaded_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["mdtrt_id", "feedetl_sn"],
            ["fee_detail.mdtrt_id", "fee_detail.feedetl_sn"],
            name=op.f("fk_fee_upload_mdtrt_id_fee_detail"),
        ),
        sa.PrimaryKeyConstraint("mdtrt_id", "feedetl_sn", name=op.f("pk_fee_upload")),
    )
    op.create_index(op.f("ix_fee_upload_mdtrt_id_chrg_bchno"), "fee_upload", ["mdtrt_id", "chrg_bchno"])
    op.create_table(
        "api_sign_in",
        sa.Column("sign_no", sa.String(), nullable=False),
        sa.Column("fixmedins_code", sa.String(), nullable=False),
        sa.Column("opter_no", sa.String(), nullable=True),
        sa.Column("mac", sa.String(), nullable=True),
        sa.Column("ip", sa.String(), nullable=True),
        sa.Column("sign_time", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("sign_no", name=op.f("pk_api_sign_in")),
    )
    op.create_index(op.f("ix_api_sign_in_fixmedins_code_sign_time"), "api_sign_in", ["fixmedins_code", "sign_time"])
    op.create_table(
        "api_reply",
        sa.Column("msgid", sa.String(), nullable=False),
        sa.Column("infno", sa.String(), nullable=False),
        sa.Column("fixmedins_code", sa.String(), nullable=False),
        sa.Column("request_digest", sa.String(), nullable=False),
        sa.Column("reply", JSON_TYPE, nullable=False),
        sa.Column("stored_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("msgid", name=op.f("pk_api_reply")),
    )
    # the audit log is append-only (全过程记录): refuse UPDATE and DELETE
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FN)
        op.execute(
            "CREATE TRIGGER message_log_append_only BEFORE UPDATE OR DELETE ON message_log "
            "FOR EACH ROW EXECUTE FUNCTION yibao_message_log_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER message_log_no_{what.lower()} BEFORE {what} ON message_log "
                "BEGIN SELECT RAISE(ABORT, 'message_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS message_log_append_only ON message_log")
        op.execute("DROP FUNCTION IF EXISTS yibao_message_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS message_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS message_log_no_delete")
    op.drop_table("api_reply")
    op.drop_index(op.f("ix_api_sign_in_fixmedins_code_sign_time"), table_name="api_sign_in")
    op.drop_table("api_sign_in")
    op.drop_index(op.f("ix_fee_upload_mdtrt_id_chrg_bchno"), table_name="fee_upload")
    op.drop_table("fee_upload")
    op.drop_table("visit_state")
