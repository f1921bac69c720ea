"""DIP settlement (按病种分值付费结算): case points, point value, payment per institution.

Rules (parameters in ``yibao/data/payment/dip/*.yaml``; spec ``payment.md``):

* **Case points.**  A case takes its group's points ``P`` (RW × scale) unless
  it is an outlier (偏差病例) against the group's mean cost ``m``:

  - high (超高), ``cost > above_ratio × m``: ``(ratio_factor × cost/m + constant) × P``
    (default ``cost/m − 2 + 1``);
  - low (超低), ``cost < below_ratio × m``: ``(ratio_factor × cost/m + constant) × P``
    (default ``cost/m``);
  - ungrouped (no core, category or chapter group): ``cost ÷ overall mean × scale``.

  Base points are rounded half up to 0.0001 point, never below 0, and then
  multiplied by the case's combined age × severity × level coefficient and
  rounded again.
* **Point value (点值)** of a period = pool ÷ total points.  With budget basis
  ``fund`` the pool is the pooled fund's budget plus what patients and other
  funds paid for the same cases (so that pooled-fund payments sum to the
  budget); with basis ``total`` the pool is the budget itself.  Months get
  1/12 of the annual budget each (monthly pre-settlement, 月度预结算); the
  year is cleared on the annual point value (年度清算).
* **Payment** to an institution = its share of the pool (its points × the
  point value) − its patients' shares − other funds' shares.  The shares are
  apportioned in exact integer arithmetic: each institution gets
  ``floor(pool × P_i / P_total)`` fen and the fen left over go one each to the
  institutions with the largest remainders (ties: institution code), so the
  institutions' values sum to the pool **exactly** and payments sum to the
  budget (basis ``fund``) or the budget minus the patients' and other funds'
  shares (basis ``total``), to the fen.
* **Monthly advance** = that month's payment × ``monthly_advance_ratio``
  (rounded half away from zero); **clearing** = annual payment − advances.

The scalar :func:`case_points` and the SQL in :func:`settle` give the same
points (property-tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from yibao.core.errors import YibaoError
from yibao.payment.catalog import Catalog, round_div, round_div_sql
from yibao.payment.params import E4, DipParams, to_e4

MONTHS = 12


class BudgetError(YibaoError):
    code = "E_PAYMENT_BUDGET"


# --- one case (scalar path) ----------------------------------------------------


@dataclass(frozen=True)
class CasePoints:
    group_code: str  # '' when ungrouped
    kind: str  # normal / high / low / ungrouped
    base_e4: int
    coef_e4: int
    points_e4: int


def _rule_e4(params: DipParams) -> dict[str, int]:
    o = params.outliers
    return {
        "above": to_e4(o.high.above_ratio, "outliers.high.above_ratio"),
        "below": to_e4(o.low.below_ratio, "outliers.low.below_ratio"),
        "hf": to_e4(o.high.ratio_factor, "outliers.high.ratio_factor"),
        "hc": to_e4(o.high.constant, "outliers.high.constant"),
        "lf": to_e4(o.low.ratio_factor, "outliers.low.ratio_factor"),
        "lc": to_e4(o.low.constant, "outliers.low.constant"),
    }


def case_points(
    cost_fen: int, group: dict | None, catalog: Catalog, params: DipParams, coef_e4: int = E4
) -> CasePoints:
    """Points of one case given its matched catalog group (or None) and its combined coefficient."""
    if cost_fen < 0:
        raise YibaoError("negative cost", "医疗费总额为负数", field="medfee_sumamt")
    r = _rule_e4(params)
    if group is None:
        base = round_div(cost_fen * catalog.n_cases * catalog.scale_e4, catalog.total_cost_fen)
        kind, code = "ungrouped", ""
    else:
        m, p, code = group["mean_cost_fen"], group["points_e4"], group["group_code"]
        if cost_fen * E4 > r["above"] * m:
            kind, base = "high", round_div(max(r["hf"] * cost_fen + r["hc"] * m, 0) * p, E4 * m)
        elif cost_fen * E4 < r["below"] * m:
            kind, base = "low", round_div(max(r["lf"] * cost_fen + r["lc"] * m, 0) * p, E4 * m)
        else:
            kind, base = "normal", p
    return CasePoints(code, kind, base, coef_e4, round_div(base * coef_e4, E4))


# --- many cases (SQL) ------------------------------------------------------------


# the amount columns and the synthetic flag a case-points table carries over from its cases (where present)
AMOUNT_AND_FLAG_COLUMNS = ("medfee_sumamt", "psn_part_amt", "hifp_pay", "oth_fund_amt", "synthetic")


def case_points_sql(
    con: duckdb.DuckDBPyConnection,
    cases: str,
    catalog: Catalog,
    params: DipParams,
    name: str = "dip_case_points",
    year: int | None = None,
) -> str:
    """Temp table ``name``: each enriched case with its group, outlier kind and points (SQL).

    Products that can exceed 64 bits (the outlier formulas) are taken in HUGEINT; the
    others stay in BIGINT, where DuckDB raises an error on overflow rather than wrap.
    """
    r = _rule_e4(params)
    con.register("_dip_groups", catalog.groups)
    dxk = "c.dx_key" if catalog.diagnosis_level == params.catalog.diagnosis_level else (
        "c.dx_cat" if catalog.diagnosis_level == "category" else None)  # fmt: skip
    if dxk is None:
        raise YibaoError("a catalog keyed by ICD-10 subcategory needs cases enriched at that level",
                         "目录按亚目分组, 病例须按亚目取键", field="diagnosis_level")  # fmt: skip
    cols = [r[0] for r in con.execute(f"DESCRIBE {cases}").fetchall()]
    m, p, cost = "mean_cost_fen", "points_g_e4", "medfee_sumamt"
    H = "CAST({} AS HUGEINT)".format  # products in 128-bit integers
    high = round_div_sql(f"greatest({H(r['hf'])} * {cost} + {H(r['hc'])} * {m}, 0) * {p}", f"{H(E4)} * {m}")
    low = round_div_sql(f"greatest({H(r['lf'])} * {cost} + {H(r['lc'])} * {m}, 0) * {p}", f"{H(E4)} * {m}")
    ung = round_div_sql(f"{H(cost)} * {catalog.n_cases} * {catalog.scale_e4}", str(catalog.total_cost_fen))
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE {name} AS
    WITH keys AS (  -- match each distinct (diagnosis key, procedures) once;
                    -- dx_cat, dx_chapter and proc_type follow from them
        SELECT DISTINCT dx_key, proc_key, dx_cat, dx_chapter, proc_type FROM {cases}
    ), m AS (
        SELECT c.dx_key, c.proc_key, coalesce(g1.group_code, g2.group_code, g3.group_code) AS group_code,
               coalesce(g1.mean_cost_fen, g2.mean_cost_fen, g3.mean_cost_fen) AS mean_cost_fen,
               coalesce(g1.points_e4, g2.points_e4, g3.points_e4) AS points_g_e4
        FROM keys c
        LEFT JOIN (SELECT * FROM _dip_groups WHERE level = 'combination') g1
               ON g1.dx_key = {dxk} AND g1.proc_key = c.proc_key
        LEFT JOIN (SELECT * FROM _dip_groups WHERE level = 'category') g2
               ON g2.dx_key = c.dx_cat AND g2.proc_type = c.proc_type
        LEFT JOIN (SELECT * FROM _dip_groups WHERE level = 'chapter') g3
               ON g3.dx_key = c.dx_chapter AND g3.proc_type = c.proc_type
    ), j AS (
        SELECT c.*, m.group_code, m.mean_cost_fen, m.points_g_e4 FROM {cases} c JOIN m USING (dx_key, proc_key)
        {"" if year is None else f"WHERE year(c.endtime) = {int(year)}"}
    ), k AS (
        SELECT j.*, CASE WHEN group_code IS NULL THEN 'ungrouped'
                         WHEN medfee_sumamt * {E4} > {r["above"]} * mean_cost_fen THEN 'high'
                         WHEN medfee_sumamt * {E4} < {r["below"]} * mean_cost_fen THEN 'low'
                         ELSE 'normal' END AS kind
        FROM j
    ), b AS (
        SELECT k.*, CAST(CASE kind WHEN 'normal' THEN points_g_e4
                         WHEN 'high' THEN {high}
                         WHEN 'low' THEN {low}
                         ELSE {ung} END AS BIGINT) AS base_e4
        FROM k
    )
    SELECT mdtrt_id, fixmedins_code, hosp_lv, dept_code, setl_month, coalesce(group_code, '') AS group_code, kind,
           proc_type, {", ".join(c for c in AMOUNT_AND_FLAG_COLUMNS if c in cols)}, coef_e4, base_e4,
           CAST(sign(base_e4) * ((2 * abs(base_e4) * coef_e4 + {E4}) // {2 * E4}) AS BIGINT) AS points_e4
    FROM b
    """)
    return name


@dataclass
class DipSettlement:
    """The result of a DIP year: per case, per period and per institution (money in fen, points in 0.0001)."""

    cases: (
        pd.DataFrame
    )  # mdtrt_id, fixmedins_code, dept_code, setl_month, group_code, kind, points_e4, value_fen, amounts
    periods: pd.DataFrame  # period (0 = year, 1..12 months), budget_fen, pool_fen, points_e4, point_value (yuan/point)
    institutions: (
        pd.DataFrame
    )  # period, fixmedins_code, points_e4, value_fen, psn_part_amt, oth_fund_amt, payment_fen, advance_fen
    clearing: pd.DataFrame  # fixmedins_code, annual payment, advances, clearing_fen
    budget_fen: int
    basis: str
    catalog_version: str
    synthetic: bool
    year: int = 0  # the DIP year: cases discharged in it
    outside_year: int = 0  # cases given but discharged in another year (left out)

    @property
    def annual_point_value(self) -> Decimal:
        return Decimal(str(self.periods.loc[self.periods.period == 0, "point_value"].iloc[0]))

    def write(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        meta = {b"yibao.dip.catalog": self.catalog_version.encode(), b"yibao.synthetic": str(self.synthetic).encode(),
                b"yibao.money_unit": b"fen", b"yibao.points_unit": b"0.0001 point"}  # fmt: skip
        for name, df in (
            ("dip_cases", self.cases),
            ("dip_periods", self.periods),
            ("dip_institutions", self.institutions),
            ("dip_clearing", self.clearing),
        ):
            t = pa.Table.from_pandas(df, preserve_index=False)
            pq.write_table(
                t.replace_schema_metadata({**(t.schema.metadata or {}), **meta}), out_dir / f"{name}.parquet"
            )
        return out_dir


def annual_budget(con: duckdb.DuckDBPyConnection, cases: str, params: DipParams) -> int:
    """The annual budget in fen: the file's fixed amount, or actual pooled-fund spending × factor."""
    b = params.budget
    if b.annual_fen is not None:
        return b.annual_fen
    actual = int(con.execute(f"SELECT coalesce(sum(hifp_pay), 0) FROM {cases}").fetchall()[0][0])
    return round_div(actual * to_e4(b.from_actual_factor, "budget.from_actual_factor"), E4)


def monthly_budgets(annual_fen: int) -> list[int]:
    """Twelve equal parts of the annual budget that sum to it exactly (``floor(B·m/12) − floor(B·(m−1)/12)``)."""
    return [annual_fen * m // MONTHS - annual_fen * (m - 1) // MONTHS for m in range(1, MONTHS + 1)]


def settle(
    con: duckdb.DuckDBPyConnection,
    cases: str,
    catalog: Catalog,
    params: DipParams,
    *,
    budget_fen: int | None = None,
    case_results: str | Path | None = "frame",
    year: int | None = None,
    points: Callable[..., str] | None = None,
) -> DipSettlement:
    """Settle a year of enriched cases under ``catalog``: case points, monthly and annual point values, payments.

    ``case_results``: ``"frame"`` keeps the per-case results in ``DipSettlement.cases`` (pandas);
    a path writes them there as Parquet instead (a province's cases need not fit in a frame); None skips them.
    ``year``: the DIP year (default: the discharge year of most cases); cases discharged in another
    year are left out (counted in ``outside_year``): a discharge in January belongs to the new year's budget.
    ``points``: a function with :func:`case_points_sql`'s signature that makes the case-points table
    (``yibao.spark.dip`` computes the same table on Spark); default :func:`case_points_sql`.
    """
    years = con.execute(
        f"SELECT year(endtime) AS y, count(*) AS n FROM {cases} GROUP BY 1 ORDER BY n DESC, y"
    ).fetchall()
    if not years:
        raise BudgetError("no cases to settle", "无可结算病例", field="cases")
    year = int(year or years[0][0])
    outside = sum(int(n) for y, n in years if y != year)
    pts = (points or case_points_sql)(con, cases, catalog, params, year=year)  # points: another engine's case points
    B = annual_budget(con, pts, params) if budget_fen is None else int(budget_fen)
    if B < 0:
        raise BudgetError("the DIP budget is negative", "DIP 预算为负数", field="budget")
    basis = params.budget.basis
    adv_e4 = to_e4(params.budget.monthly_advance_ratio, "budget.monthly_advance_ratio")
    budgets = pa.table({"period": list(range(0, MONTHS + 1)), "budget_fen": [B] + monthly_budgets(B)})
    con.register("_dip_budgets", budgets)
    add = "psn + oth" if basis == "fund" else "0"
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE dip_inst AS
    SELECT coalesce(CAST(setl_month AS INTEGER), 0) AS period, fixmedins_code, count(*) AS n_cases,
           CAST(sum(points_e4) AS BIGINT) AS points_e4, CAST(sum(medfee_sumamt) AS BIGINT) AS cost,
           CAST(sum(psn_part_amt) AS BIGINT) AS psn, CAST(sum(oth_fund_amt) AS BIGINT) AS oth,
           CAST(sum(hifp_pay) AS BIGINT) AS hifp
    FROM {pts} GROUP BY GROUPING SETS ((setl_month, fixmedins_code), (fixmedins_code))
    """)
    con.execute("""
    CREATE OR REPLACE TEMP TABLE dip_period AS
    SELECT b.period, CAST(b.budget_fen AS BIGINT) AS budget_fen,
           CAST(coalesce(sum(i.points_e4), 0) AS BIGINT) AS points_e4,
           CAST(coalesce(sum(i.psn), 0) AS BIGINT) AS psn, CAST(coalesce(sum(i.oth), 0) AS BIGINT) AS oth,
           count(i.fixmedins_code) AS n_inst
    FROM _dip_budgets b LEFT JOIN dip_inst i USING (period) GROUP BY ALL
    """)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE dip_period2 AS SELECT *, CAST(budget_fen + {add} AS BIGINT) AS pool_fen FROM "
        "dip_period"
    )
    if con.execute("SELECT points_e4 FROM dip_period2 WHERE period = 0").fetchall()[0][0] <= 0:
        raise BudgetError(
            "the cases carry no points, so there is no point value", "病例总分值为零, 无法计算点值", field="points"
        )
    # largest-remainder apportionment of each period's pool over its institutions, in HUGEINT
    con.execute("""
    CREATE OR REPLACE TEMP TABLE dip_alloc AS
    WITH a AS (
        SELECT i.*, p.pool_fen, p.points_e4 AS tot,
               CAST(p.pool_fen AS HUGEINT) * i.points_e4 // p.points_e4 AS fl,
               CAST(p.pool_fen AS HUGEINT) * i.points_e4 % p.points_e4 AS rem
        FROM dip_inst i JOIN dip_period2 p USING (period) WHERE p.points_e4 > 0
    ), r AS (
        SELECT a.*, row_number() OVER (PARTITION BY period ORDER BY rem DESC, fixmedins_code) AS rnk,
               CAST(pool_fen AS HUGEINT) - sum(fl) OVER (PARTITION BY period) AS left_over
        FROM a
    )
    SELECT period, fixmedins_code, n_cases, points_e4, cost AS medfee_sumamt, psn AS psn_part_amt, oth AS oth_fund_amt,
           hifp AS hifp_pay, CAST(fl + CASE WHEN rnk <= left_over THEN 1 ELSE 0 END AS BIGINT) AS value_fen
    FROM r
    """)  # fmt: skip
    advance = round_div_sql(f"CAST(value_fen - psn_part_amt - oth_fund_amt AS HUGEINT) * {adv_e4}", str(E4))
    inst = con.execute(f"""
    SELECT *, CAST(value_fen - psn_part_amt - oth_fund_amt AS BIGINT) AS payment_fen,
           CASE WHEN period = 0 THEN NULL ELSE CAST({advance} AS BIGINT) END AS advance_fen
    FROM dip_alloc ORDER BY period, fixmedins_code
    """).df()
    periods = con.execute(
        "SELECT period, budget_fen, pool_fen, points_e4, psn AS psn_part_amt, oth AS oth_fund_amt, n_inst FROM "
        "dip_period2 ORDER BY period"
    ).df()
    # pandas-stubs type a column assignment as a scalar; a list of one value per row is what pandas takes
    periods["point_value"] = [  # type: ignore[assignment]
        (Decimal(int(pool)) / 100 / (Decimal(int(p)) / E4)).quantize(Decimal("0.000001")) if p > 0 else None
        for pool, p in zip(periods.pool_fen, periods.points_e4, strict=True)
    ]
    annual = inst[inst.period == 0].set_index("fixmedins_code")
    adv = inst[inst.period > 0].groupby("fixmedins_code")["advance_fen"].sum()
    clearing = pd.DataFrame({
        "fixmedins_code": annual.index,
        "annual_payment_fen": annual["payment_fen"].astype("int64").to_numpy(),
        "advances_fen": adv.reindex(annual.index).fillna(0).astype("int64").to_numpy(),
    })  # fmt: skip
    clearing["clearing_fen"] = clearing.annual_payment_fen - clearing.advances_fen
    pool_y, tot_y = (
        int(x) for x in con.execute("SELECT pool_fen, points_e4 FROM dip_period2 WHERE period = 0").fetchall()[0]
    )
    case_value = round_div_sql(f"CAST(points_e4 AS HUGEINT) * {pool_y}", str(tot_y))
    case_sql = f"""
    SELECT mdtrt_id, fixmedins_code, hosp_lv, dept_code, setl_month, group_code, kind, proc_type,
           coef_e4, base_e4, points_e4, CAST({case_value} AS BIGINT) AS value_fen,
           medfee_sumamt, psn_part_amt, hifp_pay, oth_fund_amt
    FROM {pts}
    """
    if isinstance(case_results, (str, Path)) and str(case_results) != "frame":
        Path(case_results).parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY ({case_sql}) TO '{Path(case_results).as_posix()}' (FORMAT parquet)").fetchall()
        cases_df = pd.DataFrame()
    elif case_results is None:
        cases_df = pd.DataFrame()
    else:
        cases_df = con.execute(case_sql + " ORDER BY mdtrt_id").df()
    synthetic = False
    if "synthetic" in [r[0] for r in con.execute(f"DESCRIBE {cases}").fetchall()]:
        synthetic = bool(con.execute(f"SELECT bool_and(synthetic) FROM {cases}").fetchall()[0][0])
    res = DipSettlement(
        cases_df, periods, inst, clearing, B, basis, catalog.version, synthetic or catalog.synthetic, year, outside
    )
    check_conservation(res)
    return res


def check_conservation(res: DipSettlement) -> None:
    """Every period's institution values sum to its pool; annual payments to budget − (basis total: shares)."""
    for per, g in res.institutions.groupby("period"):
        pool = int(res.periods.loc[res.periods.period == per, "pool_fen"].iloc[0])
        if int(g.value_fen.sum()) != pool:
            raise BudgetError(
                f"period {per}: institution values {int(g.value_fen.sum())} != pool {pool}",
                "分配不守恒",
                field="value_fen",
            )
    y = res.institutions[res.institutions.period == 0]
    want = (
        res.budget_fen
        if res.basis == "fund"
        else res.budget_fen - int(y.psn_part_amt.sum()) - int(y.oth_fund_amt.sum())
    )
    if int(y.payment_fen.sum()) != want:
        raise BudgetError(
            f"annual payments {int(y.payment_fen.sum())} != {want}", "年度支付不守恒", field="payment_fen"
        )
