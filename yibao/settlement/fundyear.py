"""The fund's year (基金年度运行): income, spending and who was helped.

Plain SQL over the contract tables in DuckDB, so the same queries run on a
distributed engine (Spark SQL, or Ibis) when a province outgrows one
machine.  Money stays integer fen inside SQL (integer ``//`` for rates,
half up, as :func:`yibao.core.money.apply_rate`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from yibao.benefits.model import PolicySnapshot
from yibao.core import manifest, parquet_io
from yibao.core.contract import PAYER_LABELS, SCHEME_EMPLOYEE, SCHEME_RESIDENT, insutype_sql
from yibao.settlement.annual import table_path

FUND_FIELDS = PAYER_LABELS
"""Every payer of a settlement with its (English, Chinese) label, funds first (hifes_pay and oth_pay included).

An alias of :data:`yibao.core.contract.PAYER_LABELS` kept for the console and
HTML report that import it from here.
"""
_EMPLOYEE = insutype_sql("insutype", SCHEME_EMPLOYEE)
_RESIDENT = insutype_sql("insutype", SCHEME_RESIDENT)


def _src(data_dir: Path, name: str) -> str:
    return parquet_io.sql_source(table_path(data_dir, name))


@dataclass
class FundYear:
    year: int
    region: str
    policy_label: str
    synthetic: bool
    people: pd.DataFrame
    income: pd.DataFrame
    totals: pd.DataFrame
    by_scheme: pd.DataFrame
    by_level: pd.DataFrame
    by_month: pd.DataFrame
    by_category: pd.DataFrame
    assistance: pd.DataFrame
    rejected: pd.DataFrame
    extra: dict = field(default_factory=dict)


def default_year(counts: dict[int, int]) -> int | None:
    """The year to show by default: the latest with at least a month's worth (1/12) of the busiest year's
    settlements, so that a stay discharged on 1 January does not make an almost empty year the default."""
    busiest = max(counts.values(), default=0)
    return max((y for y, n in counts.items() if y is not None and n * 12 >= busiest), default=None)


def fund_year(data_dir: Path, snap: PolicySnapshot, year: int | None = None) -> FundYear:
    """Summarise a settled year from ``data_dir`` (needs ``settlement.parquet``)."""
    manifest.check(data_dir, ("person", "institution", "settlement"), optional=("settlement_rejected",))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    for name in ("person", "institution", "settlement"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {_src(data_dir, name)}")
    rej = table_path(data_dir, "settlement_rejected")
    if rej.exists():
        con.execute(f"CREATE VIEW rejected AS SELECT * FROM {_src(data_dir, 'settlement_rejected')}")
    else:
        con.execute(
            "CREATE VIEW rejected AS SELECT ''::VARCHAR AS mdtrt_id, ''::VARCHAR AS field, "
            "''::VARCHAR AS reason_en, ''::VARCHAR AS reason_zh WHERE false"
        )
    if year is None:
        counts = dict(con.execute("SELECT policy_year, count(*) FROM settlement GROUP BY 1").fetchall())
        year = default_year(counts) or dt.date.today().year
    f = snap.funding
    acct = snap.schemes["employee"].account
    credit_bp = acct.in_service_credit_rate if acct else 0
    retiree_credit = acct.retiree_monthly_credit if acct else 0

    people = con.execute(
        """
        SELECT insutype, psn_type, count(*) AS people,
               count(*) FILTER (WHERE assistance <> '') AS assisted_status
        FROM person GROUP BY ALL ORDER BY insutype, psn_type
        """
    ).df()

    # 12 monthly contributions; the employee's own 2 % goes to the account,
    # retirees' fixed credits come out of the pooled fund (2021 reform).
    income = con.execute(
        f"""
        WITH p AS (
          SELECT insutype, psn_type, contribution_base AS base FROM person
        )
        SELECT 'employee pooled fund (employer contributions)' AS item, '职工统筹基金 (单位缴费)' AS item_zh,
               sum(CASE WHEN {_EMPLOYEE} AND psn_type = 'in_service'
                        THEN 12 * ((base * {f.employer_rate} + 5000) // 10000) ELSE 0 END)::BIGINT AS fen
        FROM p
        UNION ALL
        SELECT 'retiree account credits paid from the pooled fund', '退休人员个人账户划入 (统筹基金支出)',
               -sum(CASE WHEN {_EMPLOYEE} AND psn_type = 'retired' THEN 12 * {retiree_credit} ELSE 0 END)::BIGINT FROM p
        UNION ALL
        SELECT 'employee personal accounts (own contributions)', '个人账户 (个人缴费计入)',
               sum(CASE WHEN {_EMPLOYEE} AND psn_type = 'in_service'
                        THEN 12 * ((base * {credit_bp} + 5000) // 10000) ELSE 0 END)::BIGINT FROM p
        UNION ALL
        SELECT 'resident fund: individual premiums', '居民医保个人缴费',
               (count(*) FILTER (WHERE {_RESIDENT}) * {f.resident_individual})::BIGINT FROM p
        UNION ALL
        SELECT 'resident fund: fiscal subsidy', '居民医保财政补助',
               (count(*) FILTER (WHERE {_RESIDENT}) * {f.resident_fiscal_subsidy})::BIGINT FROM p
        """
    ).df()

    sums = ", ".join(
        f"sum({c})::BIGINT AS {c}"
        for c in (
            "medfee_sumamt",
            "fulamt_ownpay_amt",
            "overlmt_selfpay",
            "preselfpay_amt",
            "inscp_scp_amt",
            "act_pay_dedc",
            *FUND_FIELDS,
            "fund_pay_sumamt",
        )
    )
    totals = con.execute(
        f"SELECT count(*) AS claims, {sums} FROM settlement WHERE policy_year = ? AND NOT refd_setl_flag", [year]
    ).df()
    by_scheme = con.execute(
        f"SELECT insutype, count(*) AS claims, {sums} FROM settlement "
        "WHERE policy_year = ? AND NOT refd_setl_flag GROUP BY insutype ORDER BY insutype",
        [year],
    ).df()
    by_level = con.execute(
        f"""SELECT i.hosp_lv, i.fixmedins_type, count(*) AS claims, {sums.replace("sum(", "sum(s.")}
            FROM settlement s JOIN institution i USING (fixmedins_code)
            WHERE s.policy_year = ? AND NOT s.refd_setl_flag GROUP BY ALL ORDER BY 1, 2""",
        [year],
    ).df()
    by_month = con.execute(
        f"""SELECT CAST(date_trunc('month', setl_time) AS DATE) AS month, insutype, count(*) AS claims, {sums}
            FROM settlement WHERE policy_year = ? AND NOT refd_setl_flag GROUP BY ALL ORDER BY 1, 2""",
        [year],
    ).df()
    by_category = con.execute(
        f"SELECT benefit_category, count(*) AS claims, {sums} FROM settlement "
        "WHERE policy_year = ? AND NOT refd_setl_flag GROUP BY ALL ORDER BY fund_pay_sumamt DESC",
        [year],
    ).df()
    assistance = con.execute(
        """
        SELECT p.assistance AS status, count(DISTINCT p.psn_no) AS people_with_status,
               count(DISTINCT s.psn_no) FILTER (WHERE s.maf_pay > 0) AS people_helped,
               coalesce(sum(s.maf_pay), 0)::BIGINT AS maf_pay,
               coalesce(sum(s.hifmi_pay), 0)::BIGINT AS hifmi_pay,
               coalesce(sum(s.medfee_sumamt), 0)::BIGINT AS medfee_sumamt,
               coalesce(sum(s.psn_cash_pay + s.acct_pay + s.acct_mulaid_pay), 0)::BIGINT AS psn_part
        FROM person p LEFT JOIN settlement s ON s.psn_no = p.psn_no AND s.policy_year = ? AND NOT s.refd_setl_flag
        WHERE p.assistance <> ''
        GROUP BY p.assistance ORDER BY p.assistance
        """,
        [year],
    ).df()
    rejected = con.execute(
        "SELECT field, reason_en, reason_zh, count(*) AS claims FROM rejected GROUP BY ALL ORDER BY claims DESC"
    ).df()
    all_synthetic = con.execute("SELECT bool_and(synthetic) FROM person").fetchone()  # one row, NULL if no one
    synthetic = bool(all_synthetic and all_synthetic[0])
    con.close()
    return FundYear(
        year=int(year),
        region=snap.region,
        policy_label=snap.label,
        synthetic=synthetic,
        people=people,
        income=income,
        totals=totals,
        by_scheme=by_scheme,
        by_level=by_level,
        by_month=by_month,
        by_category=by_category,
        assistance=assistance,
        rejected=rejected,
    )
