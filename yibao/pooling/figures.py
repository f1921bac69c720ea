"""Per-county fund income and spending for the pooling simulation, read from a data directory (DuckDB).

* **County pools and their levels** come from the division table
  (:mod:`yibao.codes.divisions`): a county pool's city is its ``city``
  ancestor (a municipality's districts, with none, go to the province), its
  province its ``province`` ancestor.
* **Persons → county pools**: a person whose ``insuplc_admdvs`` is a county
  pool belongs to it; one insured at the region's own code (the synthetic
  region holds only the city code) is placed by the arrangement's rule:
  ``family_hash`` — the first 48 bits of ``md5(family_id)`` (``psn_no`` when
  there is no family) modulo the sum of the weights, cut at the cumulative
  weights, so the placement is stable and a family stays together.  Any
  other insured place is refused.
* **Income is DERIVED** (the contract has no contribution table), the same
  way as the fund-year summary (:func:`yibao.settlement.fundyear.fund_year`):
  employees' pooled fund = 12 × the employer contribution (base × rate, half
  up, per month) of each in-service employee, less 12 × the retirees' fixed
  account credit; residents' fund = the individual premium + the fiscal
  subsidy per person.  The rates come from the region's policy file
  (``funding`` and the employee account rule).
* **Spending** = the arrangement's ``spending_fields`` (default ``hifp_pay``)
  of the year's settlements that were not cancelled, by the person's scheme.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from yibao.codes.divisions import Divisions, load_divisions
from yibao.core import manifest
from yibao.core.contract import SCHEME_EMPLOYEE, SCHEME_RESIDENT, insutype_sql
from yibao.core.parquet_io import sql_source, table_path
from yibao.pooling.arrangement import SCHEMES, Arrangement, PoolingError
from yibao.pooling.mechanics import CountyFigures

_SCHEME_OF = {v: k for k, v in SCHEMES.items()}
_EMPLOYEE = insutype_sql("insutype", SCHEME_EMPLOYEE)
_RESIDENT = insutype_sql("insutype", SCHEME_RESIDENT)


@dataclass(frozen=True, slots=True)
class IncomeRates:
    """The contribution parameters income is derived from (筹资), integer fen and basis points."""

    employer_rate_bp: int
    retiree_monthly_credit: int
    resident_per_capita: int
    source: str = ""

    @classmethod
    def from_snapshot(cls, snap) -> IncomeRates:
        """From a :class:`yibao.benefits.model.PolicySnapshot` (read only)."""
        acct = snap.schemes["employee"].account
        f = snap.funding
        return cls(
            f.employer_rate,
            acct.retiree_monthly_credit if acct else 0,
            f.resident_individual + f.resident_fiscal_subsidy,
            snap.label,
        )


@dataclass(frozen=True)
class Hierarchy:
    counties: list[str]
    pool_of: dict[str, str]
    fund_of: dict[str, str] | None
    names: dict[str, str]


def _ancestor(divisions: Divisions, code: str, level: str) -> str:
    if level == "county":
        return code
    cur = code
    while True:
        d = divisions[cur]
        if d.level == level:
            return cur
        if not d.parent:
            break
        cur = d.parent
    if level == "city":  # a municipality's districts: no city level, the province pools them
        return _ancestor(divisions, code, "province")
    raise PoolingError(
        f"division {code} has no {level} above it in the division table", f"区划 {code} 没有上级{level}", field="admdvs"
    )


def hierarchy(arr: Arrangement, divisions: Divisions | None = None) -> Hierarchy:
    """The arrangement's county pools and, for each, its pool and adjustment fund (division codes)."""
    divisions = divisions or load_divisions()
    if arr.region not in divisions:
        raise PoolingError(
            f"region {arr.region} is not in the division table", f"区划 {arr.region} 不在区划表中", field="region"
        )
    counties = list(arr.counties.pools) if arr.counties.pools is not None else divisions.districts(arr.region)
    for c in counties:
        if c not in divisions:
            raise PoolingError(
                f"county pool {c} is not in the division table", f"县级统筹区 {c} 不在区划表中", field="counties.pools"
            )
    pool_of = {c: _ancestor(divisions, c, arr.pool_level) for c in counties}
    fund_of = None
    if arr.adjustment_fund is not None:
        fund_of = {p: _ancestor(divisions, p, arr.adjustment_fund.level) for p in set(pool_of.values())}
    codes = set(counties) | set(pool_of.values()) | set((fund_of or {}).values())
    return Hierarchy(sorted(counties), pool_of, fund_of, {c: divisions.name_of(c) for c in codes})


def _county_sql(arr: Arrangement, counties: list[str]) -> str:
    listed = ", ".join(f"'{c}'" for c in counties)
    weights = arr.counties.assignment.weights
    order = [c for c in counties if weights is None or weights.get(c, 0) > 0]
    w = [1 if weights is None else weights[c] for c in order]
    total = sum(w)
    bucket = (
        "(CAST(('0x' || substr(md5(coalesce(nullif(family_id, ''), psn_no)), 1, 12)) AS BIGINT) % " + str(total) + ")"
    )
    cases, cum = [], 0
    for c, wi in zip(order, w, strict=True):
        cum += wi
        cases.append(f"WHEN {bucket} < {cum} THEN '{c}'")
    return (
        f"CASE WHEN insuplc_admdvs IN ({listed}) THEN insuplc_admdvs "
        f"WHEN insuplc_admdvs = '{arr.region}' THEN (CASE {' '.join(cases)} END) ELSE NULL END"
    )


@dataclass(frozen=True)
class YearFigures:
    year: int
    figures: list[CountyFigures]
    synthetic: bool
    placed_by_hash: int
    rates: IncomeRates


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple:
    """The one row of an aggregate query (DuckDB's ``fetchone`` is typed Optional; an aggregate always has a row)."""
    row = con.execute(sql) if params is None else con.execute(sql, params)
    first = row.fetchone()
    assert first is not None
    return first


def read_figures(
    data_dir: Path,
    arr: Arrangement,
    rates: IncomeRates | Callable[[int], IncomeRates],
    *,
    year: int | None = None,
    divisions: Divisions | None = None,
) -> YearFigures:
    """Each county pool's income (derived) and spending for ``year`` (default: the settlements' latest year).

    ``rates`` may be a function of the year (the policy in force that year).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PoolingError(f"{data_dir}: not a directory", f"{data_dir}: 不是目录", field="data")
    paths = {n: table_path(data_dir, n) for n in ("person", "settlement")}
    if paths["person"] is None:
        raise PoolingError(
            f"{data_dir}: no person table; run yibao synth --out {data_dir} first",
            f"{data_dir}: 缺少 person 表",
            field="data",
        )
    if paths["settlement"] is None:
        raise PoolingError(
            f"{data_dir}: no settlement table; run yibao settle --data {data_dir} first",
            f"{data_dir}: 缺少 settlement 表, 请先结算",
            field="data",
        )
    manifest.check(data_dir, ("person", "settlement"))
    h = hierarchy(arr, divisions)
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW person AS SELECT * FROM {sql_source(paths['person'])}")
        con.execute(f"CREATE VIEW settlement AS SELECT * FROM {sql_source(paths['settlement'])}")
        if year is None:
            year = _one(con, "SELECT max(policy_year) FROM settlement")[0]
            if year is None:
                raise PoolingError(
                    f"{data_dir}: the settlement table is empty", f"{data_dir}: settlement 表为空", field="data"
                )
        else:
            years = [r[0] for r in con.execute("SELECT DISTINCT policy_year FROM settlement ORDER BY 1").fetchall()]
            if year not in years:
                raise PoolingError(
                    f"{data_dir}: no settlements in {year} (settled years: {', '.join(map(str, years)) or 'none'})",
                    f"{data_dir}: {year} 年没有结算记录 (已结算年度: {', '.join(map(str, years)) or '无'})",
                    field="year",
                )
        if callable(rates):
            rates = rates(int(year))
        con.execute(
            f"CREATE TEMP TABLE p AS SELECT psn_no, insutype, psn_type, contribution_base AS base, insuplc_admdvs, "
            f"{_county_sql(arr, h.counties)} AS county, synthetic, "
            f"insuplc_admdvs = '{arr.region}' AND insuplc_admdvs NOT IN ({', '.join(repr(c) for c in h.counties)}) "
            "AS hashed FROM person"
        )
        bad = _one(con, "SELECT count(*), min(insuplc_admdvs) FROM p WHERE county IS NULL")
        if bad[0]:
            raise PoolingError(
                f"{bad[0]:,} person(s) insured outside the arrangement's county pools "
                f"(e.g. insuplc_admdvs {bad[1]!r}); "
                f"the arrangement covers region {arr.region}",
                f"{bad[0]:,} 名参保人的参保地不在该安排的统筹区内 (如 {bad[1]!r})",
                field="insuplc_admdvs",
            )
        known = ", ".join(repr(v) for v in SCHEMES.values())
        bad = _one(con, f"SELECT count(*), min(insutype) FROM p WHERE insutype NOT IN ({known})")
        if bad[0]:
            raise PoolingError(
                f"{bad[0]:,} person(s) with insutype {bad[1]!r}: give {' or '.join(SCHEMES.values())}",
                f"{bad[0]:,} 名参保人的险种 {bad[1]!r} 无效",
                field="insutype",
            )
        bad = _one(
            con, f"SELECT count(*) FROM p WHERE {_EMPLOYEE} AND psn_type = 'in_service' AND (base IS NULL OR base < 0)"
        )
        if bad[0]:
            raise PoolingError(
                f"{bad[0]:,} in-service employee(s) without a valid contribution_base",
                f"{bad[0]:,} 名在职职工缴费基数无效",
                field="contribution_base",
            )
        income = con.execute(
            f"""SELECT county, insutype, count(*) AS people,
                   sum(CASE WHEN {_EMPLOYEE} AND psn_type = 'in_service'
                              THEN 12 * ((base * {rates.employer_rate_bp} + 5000) // 10000)
                            WHEN {_EMPLOYEE} AND psn_type = 'retired' THEN -12 * {rates.retiree_monthly_credit}
                            WHEN {_RESIDENT} THEN {rates.resident_per_capita} ELSE 0 END)::BIGINT AS income
                FROM p GROUP BY ALL"""
        ).fetchall()
        orphans = _one(
            con, "SELECT count(*) FROM settlement s ANTI JOIN p USING (psn_no) WHERE s.policy_year = ?", [year]
        )[0]
        if orphans:
            raise PoolingError(
                f"{orphans:,} settlement(s) of {year} for persons not in the person table",
                f"{orphans:,} 条结算记录的参保人不存在",
                field="psn_no",
            )
        spend_expr = " + ".join(f"coalesce(s.{c}, 0)" for c in arr.spending_fields)
        spending = {
            (r[0], r[1]): int(r[2])
            for r in con.execute(
                f"""SELECT p.county, p.insutype, sum({spend_expr})::BIGINT FROM settlement s JOIN p USING (psn_no)
                WHERE s.policy_year = ? AND NOT s.refd_setl_flag GROUP BY ALL""",
                [year],
            ).fetchall()
        }
        synthetic = bool(_one(con, "SELECT coalesce(bool_and(synthetic), false) FROM p")[0])
        hashed = int(_one(con, "SELECT count(*) FROM p WHERE hashed")[0])
    finally:
        con.close()
    figs = []
    have = {(c, t) for c, t, _, _ in income}
    for county, insutype, people, inc in income:
        figs.append(
            CountyFigures(county, _SCHEME_OF[insutype], int(inc), spending.get((county, insutype), 0), int(people))
        )
    for (
        county,
        insutype,
    ), sp in spending.items():  # spending with nobody insured cannot happen (joined on person), kept for safety
        if (county, insutype) not in have:
            figs.append(CountyFigures(county, _SCHEME_OF[insutype], 0, sp, 0))
    figs.sort(key=lambda f: (f.scheme, f.county))
    return YearFigures(int(year), figs, synthetic, hashed, rates)
