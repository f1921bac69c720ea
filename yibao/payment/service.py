"""Payment services: run DIP, DRG and the quality checks over a region's contract tables.

This layer reads files and connects the pure pieces; the CLI, the API and the
demo report call it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from yibao.core import manifest, parquet_io
from yibao.payment.cases import CodeTables, PaymentInputError, connect, load_cases
from yibao.payment.catalog import Catalog, build_catalog, round_div
from yibao.payment.dip import DipSettlement, settle
from yibao.payment.drg import REGION_SCHEME, Scheme, base_rate, group_batch, load_scheme, require_weights
from yibao.payment.params import DipParams, load_dip_params
from yibao.payment.quality import QualityResult, assess, load_quality_rules
from yibao.supervision.coding import detect_region


def build(
    data_dir: Path,
    params: DipParams | str = "example-city-a",
    out: Path | None = None,
    *,
    version: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Catalog:
    """Build a DIP catalog from a region's year of cases (and save it to ``out`` if given)."""
    params = load_dip_params(params) if isinstance(params, str) else params
    con = con or connect()
    cases = load_cases(con, Path(data_dir), params, need_amounts=False)
    cat = build_catalog(con, cases, params, version=version)
    if out is not None:
        cat.save(Path(out))
    return cat


@dataclass
class PaymentRun:
    params: DipParams
    catalog: Catalog
    dip: DipSettlement
    scheme: Scheme
    cases: pd.DataFrame  # case view + DIP result + DRG grouping + DRG income
    drg_base_rate: object
    quality: QualityResult
    seconds: dict = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return self.dip.synthetic


def run(
    data_dir: Path,
    params: DipParams | str = "example-city-a",
    *,
    catalog: Catalog | Path | None = None,
    scheme: Scheme | Path | None = None,
    budget_fen: int | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    points: Callable[..., str] | None = None,  # dip.settle's case-points function (Spark: yibao.spark.dip)
) -> PaymentRun:
    """DIP (build a catalog unless one is given, settle the year), DRG grouping with income, and the quality checks."""
    data_dir = Path(data_dir)
    params = load_dip_params(params) if isinstance(params, str) else params
    con = con or connect()
    secs = {}
    t = time.perf_counter()
    codes = CodeTables.default()
    cases = load_cases(con, data_dir, params, codes)
    if catalog is None:
        cat = build_catalog(con, cases, params)
    else:
        cat = catalog if isinstance(catalog, Catalog) else Catalog.load(Path(catalog))
    secs["dip_catalog"] = time.perf_counter() - t
    t = time.perf_counter()
    dip = settle(con, cases, cat, params, budget_fen=budget_fen, points=points)
    secs["dip_settle"] = time.perf_counter() - t
    t = time.perf_counter()
    sch = scheme if isinstance(scheme, Scheme) else load_scheme(scheme or REGION_SCHEME)
    nwb = (
        ", nwb_age" if "nwb_age" in [r[0] for r in con.execute(f"DESCRIBE {cases}").fetchall()] else ""
    )  # newborns' age in days (MDC P)
    view = con.sql(f"""SELECT mdtrt_id, psn_no, fixmedins_code, hosp_lv, dept_code, begntime, endtime, setl_month,
                              age, gend,
                              dise_codg, other_dise_codg, oprn_codg{nwb} FROM {cases} ORDER BY mdtrt_id""").df()
    grouped = group_batch(sch, view)
    refused = grouped[grouped.status.str.startswith("refused")]
    if len(refused):  # the DIP side validated the same codes; a DRG refusal means the scheme and the codes disagree
        first = view.mdtrt_id.loc[refused.index[0]]
        raise PaymentInputError(
            f"{len(refused):,} case(s) the DRG scheme {sch.name} refuses (first: {first}: {refused.status.iloc[0]})",
            f"{len(refused):,} 个病例无法按 DRG 方案 {sch.name} 分组",
            field="dise_codg",
        )
    require_weights(grouped, sch)
    secs["drg_group"] = time.perf_counter() - t
    df = pd.concat([view.reset_index(drop=True), grouped.reset_index(drop=True)], axis=1)
    # the DIP year's cases (discharged in it) carry on into the DRG income, the hospital view and the quality checks
    df = df.merge(
        dip.cases.drop(columns=["fixmedins_code", "hosp_lv", "dept_code", "setl_month"]), on="mdtrt_id", how="inner"
    )
    # DRG income for the hospital view: the same annual pool spread by RW (base rate = pool ÷ total RW)
    pool = int(dip.periods.loc[dip.periods.period == 0, "pool_fen"].iloc[0])
    df["rw_e4"] = df["rw_e4"].fillna(0).astype("int64")  # 0000 (ungroupable) carries no weight: paid by item
    tot_rw = int(df.loc[df.drg != "0000", "rw_e4"].sum())
    paid = (df.drg != "0000").to_numpy()
    df["drg_value_fen"] = [
        round_div(int(r) * pool, tot_rw) if p and tot_rw else int(c)
        for r, p, c in zip(df.rw_e4, paid, df.medfee_sumamt, strict=True)
    ]
    br = base_rate(pool, tot_rw) if tot_rw else None
    t = time.perf_counter()
    truth = None
    gt = parquet_io.table_path(data_dir, "ground_truth")  # file or dataset directory
    if gt is not None:
        manifest.check(data_dir, ["ground_truth"])
        truth = pd.read_parquet(gt)
    q = assess(df, load_quality_rules(), truth, coding=detect_region(data_dir))  # the detector supervision runs too
    secs["quality"] = time.perf_counter() - t
    return PaymentRun(params, cat, dip, sch, df, br, q, secs)
