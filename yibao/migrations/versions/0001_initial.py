"""initial schema: shared data contract and settlement state

The eight contract tables of yibao.core.contract (SCHEMA_VERSION 1) plus the
operational tables of real-time settlement: accumulator, account,
account_ledger, message_log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Written out here rather than imported from yibao.core.db, so that this
# migration keeps describing the schema of its day when the models move on.
TZ = sa.DateTime(timezone=True)  # yibao.core.db.TZDateTime stores through this
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accumulator",
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("policy_year", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("psn_no", "policy_year", "kind", "period", name=op.f("pk_accumulator")),
    )
    op.create_table(
        "ground_truth",
        sa.Column("entity", sa.String(), nullable=False),
        sa.Column("entity_id", sa.String(), nullable=False),
        sa.Column("pattern", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("entity", "entity_id", "pattern", name=op.f("pk_ground_truth")),
    )
    op.create_index(op.f("ix_ground_truth_pattern"), "ground_truth", ["pattern"])
    op.create_table(
        "institution",
        sa.Column("fixmedins_code", sa.String(), nullable=False),
        sa.Column("fixmedins_name", sa.String(), nullable=True),
        sa.Column("fixmedins_type", sa.String(), nullable=True),
        sa.Column("hosp_lv", sa.SmallInteger(), nullable=True),
        sa.Column("admdvs", sa.String(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("fixmedins_code", name=op.f("pk_institution")),
    )
    op.create_table(
        "med_list",
        sa.Column("med_list_codg", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("list_kind", sa.String(), nullable=True),
        sa.Column("chrgitm_lv", sa.String(), nullable=True),
        sa.Column("selfpay_prop_bp", sa.Integer(), nullable=True),
        sa.Column("pric_uplmt", sa.BigInteger(), nullable=False),
        sa.Column("lmt_gend", sa.String(), nullable=True),
        sa.Column("lmt_age_min", sa.SmallInteger(), nullable=True),
        sa.Column("lmt_age_max", sa.SmallInteger(), nullable=True),
        sa.Column("lmt_hosp_lv_min", sa.SmallInteger(), nullable=True),
        sa.Column("lmt_indication", sa.String(), nullable=True),
        sa.Column("lmt_med_types", sa.String(), nullable=True),
        sa.Column("drug_class", sa.String(), nullable=True),
        sa.Column("acct_excluded", sa.Boolean(), nullable=False),
        sa.Column("vbp_flag", sa.Boolean(), nullable=False),
        sa.Column("vbp_pay_std", sa.BigInteger(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("med_list_codg", name=op.f("pk_med_list")),
    )
    op.create_table(
        "message_log",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("msgid", sa.String(), nullable=True),
        sa.Column("infno", sa.String(), nullable=True),
        sa.Column("fixmedins_code", sa.String(), nullable=True),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("request", JSON_TYPE, nullable=True),
        sa.Column("response", JSON_TYPE, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_log")),
    )
    op.create_index(op.f("ix_message_log_fixmedins_code_received_at"), "message_log", ["fixmedins_code", "received_at"])
    op.create_index(op.f("ix_message_log_msgid"), "message_log", ["msgid"])
    op.create_table(
        "person",
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("certno", sa.String(), nullable=True),
        sa.Column("psn_name", sa.String(), nullable=True),
        sa.Column("gend", sa.String(), nullable=True),
        sa.Column("brdy", sa.Date(), nullable=True),
        sa.Column("insutype", sa.String(), nullable=True),
        sa.Column("psn_type", sa.String(), nullable=True),
        sa.Column("civil_servant", sa.Boolean(), nullable=False),
        sa.Column("insuplc_admdvs", sa.String(), nullable=True),
        sa.Column("assistance", sa.String(), nullable=True),
        sa.Column("contribution_base", sa.BigInteger(), nullable=False),
        sa.Column("acct_balc", sa.BigInteger(), nullable=False),
        sa.Column("family_id", sa.String(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("psn_no", name=op.f("pk_person")),
    )
    op.create_table(
        "account",
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("balc", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_account_psn_no_person")),
        sa.PrimaryKeyConstraint("psn_no", name=op.f("pk_account")),
    )
    op.create_table(
        "encounter",
        sa.Column("mdtrt_id", sa.String(), nullable=False),
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("fixmedins_code", sa.String(), nullable=True),
        sa.Column("med_type", sa.String(), nullable=True),
        sa.Column("begntime", TZ, nullable=False),
        sa.Column("endtime", TZ, nullable=True),
        sa.Column("policy_year", sa.SmallInteger(), nullable=False),
        sa.Column("dise_codg", sa.String(), nullable=True),
        sa.Column("other_dise_codg", sa.String(), nullable=True),
        sa.Column("oprn_codg", sa.String(), nullable=True),
        sa.Column("dscg_way", sa.String(), nullable=True),
        sa.Column("dept_code", sa.String(), nullable=True),
        sa.Column("dr_code", sa.String(), nullable=True),
        sa.Column("mdtrtarea_admvs", sa.String(), nullable=True),
        sa.Column("mulaid_payer_psn_no", sa.String(), nullable=True),
        sa.Column("lt_rx_confirmed", sa.Boolean(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_encounter_psn_no_person")),
        sa.PrimaryKeyConstraint("mdtrt_id", name=op.f("pk_encounter")),
    )
    op.create_index(op.f("ix_encounter_fixmedins_code_begntime"), "encounter", ["fixmedins_code", "begntime"])
    op.create_index(op.f("ix_encounter_psn_no_policy_year"), "encounter", ["psn_no", "policy_year"])
    op.create_table(
        "family_link",
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("relative_psn_no", sa.String(), nullable=False),
        sa.Column("relation", sa.String(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_family_link_psn_no_person")),
        sa.ForeignKeyConstraint(
            ["relative_psn_no"], ["person.psn_no"], name=op.f("fk_family_link_relative_psn_no_person")
        ),
        sa.PrimaryKeyConstraint("psn_no", "relative_psn_no", name=op.f("pk_family_link")),
    )
    op.create_index(op.f("ix_family_link_relative_psn_no"), "family_link", ["relative_psn_no"])
    op.create_table(
        "account_ledger",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("time", TZ, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("setl_id", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["psn_no"], ["account.psn_no"], name=op.f("fk_account_ledger_psn_no_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_ledger")),
    )
    op.create_index(op.f("ix_account_ledger_psn_no_time"), "account_ledger", ["psn_no", "time"])
    op.create_index(op.f("ix_account_ledger_setl_id"), "account_ledger", ["setl_id"])
    op.create_table(
        "fee_detail",
        sa.Column("mdtrt_id", sa.String(), nullable=False),
        sa.Column("feedetl_sn", sa.Integer(), nullable=False),
        sa.Column("med_list_codg", sa.String(), nullable=False),
        sa.Column("cnt_milli", sa.BigInteger(), nullable=False),
        sa.Column("pric", sa.BigInteger(), nullable=False),
        sa.Column("det_item_fee_sumamt", sa.BigInteger(), nullable=False),
        sa.Column("fee_ocur_time", TZ, nullable=True),
        sa.Column("rxno", sa.String(), nullable=True),
        sa.Column("rx_circ_flag", sa.Boolean(), nullable=False),
        sa.Column("prd_days", sa.SmallInteger(), nullable=True),
        sa.Column("bilg_dr_code", sa.String(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["mdtrt_id"], ["encounter.mdtrt_id"], name=op.f("fk_fee_detail_mdtrt_id_encounter")),
        sa.PrimaryKeyConstraint("mdtrt_id", "feedetl_sn", name=op.f("pk_fee_detail")),
    )
    op.create_table(
        "settlement",
        sa.Column("setl_id", sa.String(), nullable=False),
        sa.Column("mdtrt_id", sa.String(), nullable=False),
        sa.Column("psn_no", sa.String(), nullable=False),
        sa.Column("fixmedins_code", sa.String(), nullable=True),
        sa.Column("setl_time", TZ, nullable=False),
        sa.Column("policy_year", sa.SmallInteger(), nullable=False),
        sa.Column("insutype", sa.String(), nullable=True),
        sa.Column("med_type", sa.String(), nullable=True),
        sa.Column("benefit_category", sa.String(), nullable=True),
        sa.Column("medfee_sumamt", sa.BigInteger(), nullable=False),
        sa.Column("fulamt_ownpay_amt", sa.BigInteger(), nullable=False),
        sa.Column("overlmt_selfpay", sa.BigInteger(), nullable=False),
        sa.Column("preselfpay_amt", sa.BigInteger(), nullable=False),
        sa.Column("inscp_scp_amt", sa.BigInteger(), nullable=False),
        sa.Column("act_pay_dedc", sa.BigInteger(), nullable=False),
        sa.Column("hifp_pay", sa.BigInteger(), nullable=False),
        sa.Column("hifmi_pay", sa.BigInteger(), nullable=False),
        sa.Column("hifob_pay", sa.BigInteger(), nullable=False),
        sa.Column("cvlserv_pay", sa.BigInteger(), nullable=False),
        sa.Column("maf_pay", sa.BigInteger(), nullable=False),
        sa.Column("hifes_pay", sa.BigInteger(), nullable=False),
        sa.Column("oth_pay", sa.BigInteger(), nullable=False),
        sa.Column("hosp_part_amt", sa.BigInteger(), nullable=False),
        sa.Column("fund_pay_sumamt", sa.BigInteger(), nullable=False),
        sa.Column("psn_part_amt", sa.BigInteger(), nullable=False),
        sa.Column("acct_pay", sa.BigInteger(), nullable=False),
        sa.Column("acct_mulaid_pay", sa.BigInteger(), nullable=False),
        sa.Column("psn_cash_pay", sa.BigInteger(), nullable=False),
        sa.Column("pool_prop_selfpay_bp", sa.Integer(), nullable=True),
        sa.Column("balc", sa.BigInteger(), nullable=True),
        sa.Column("refd_setl_flag", sa.Boolean(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("msgid", sa.String(), nullable=True),
        sa.Column("cancel_msgid", sa.String(), nullable=True),
        sa.Column("accum_delta", JSON_TYPE, nullable=True),
        sa.Column("acct_payer_psn_no", sa.String(), nullable=True),
        sa.Column("rule_trace", JSON_TYPE, nullable=True),
        sa.ForeignKeyConstraint(["mdtrt_id"], ["encounter.mdtrt_id"], name=op.f("fk_settlement_mdtrt_id_encounter")),
        sa.PrimaryKeyConstraint("setl_id", name=op.f("pk_settlement")),
        sa.UniqueConstraint("cancel_msgid", name=op.f("uq_settlement_cancel_msgid")),
        sa.UniqueConstraint("msgid", name=op.f("uq_settlement_msgid")),
    )
    op.create_index(op.f("ix_settlement_fixmedins_code_setl_time"), "settlement", ["fixmedins_code", "setl_time"])
    op.create_index(op.f("ix_settlement_mdtrt_id"), "settlement", ["mdtrt_id"])
    op.create_index(op.f("ix_settlement_psn_no_setl_time"), "settlement", ["psn_no", "setl_time"])


def downgrade() -> None:
    op.drop_index(op.f("ix_settlement_psn_no_setl_time"), table_name="settlement")
    op.drop_index(op.f("ix_settlement_mdtrt_id"), table_name="settlement")
    op.drop_index(op.f("ix_settlement_fixmedins_code_setl_time"), table_name="settlement")
    op.drop_table("settlement")
    op.drop_table("fee_detail")
    op.drop_index(op.f("ix_account_ledger_setl_id"), table_name="account_ledger")
    op.drop_index(op.f("ix_account_ledger_psn_no_time"), table_name="account_ledger")
    op.drop_table("account_ledger")
    op.drop_index(op.f("ix_family_link_relative_psn_no"), table_name="family_link")
    op.drop_table("family_link")
    op.drop_index(op.f("ix_encounter_psn_no_policy_year"), table_name="encounter")
    op.drop_index(op.f("ix_encounter_fixmedins_code_begntime"), table_name="encounter")
    op.drop_table("encounter")
    op.drop_table("account")
    op.drop_table("person")
    op.drop_index(op.f("ix_message_log_msgid"), table_name="message_log")
    op.drop_index(op.f("ix_message_log_fixmedins_code_received_at"), table_name="message_log")
    op.drop_table("message_log")
    op.drop_table("med_list")
    op.drop_table("institution")
    op.drop_index(op.f("ix_ground_truth_pattern"), table_name="ground_truth")
    op.drop_table("ground_truth")
    op.drop_table("accumulator")
