"""Execution monitoring (集采执行监测): orders against contracts, progress per
institution, non-winning products against their cap, winners' monthly
inventory reports, and the fund-prepay flow (基金预付, 即时结算, 结余留用).

Parameters come from ``yibao/data/procurement/monitoring.yaml``.  Money is
integer fen; every share is applied with half-up rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from yibao.core.money import ratio_to_bp
from yibao.core.yamldata import load_model
from yibao.procurement.params import RuleSetError


class NonWinningParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    not_above_last_year: bool = True
    not_above_winners: bool = True


class PrepayParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prepay_share: Decimal
    savings_retained_share: Decimal


class MonitorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    behind_schedule_tolerance: Decimal
    min_stock_months: Decimal
    non_winning: NonWinningParams
    fund_prepay: PrepayParams


@lru_cache(maxsize=4)
def load_params(path: str | None = None) -> MonitorParams:
    p = Path(path) if path else Path(str(resources.files("yibao") / "data" / "procurement" / "monitoring.yaml"))
    return load_model(p, MonitorParams, what=("monitoring parameters", "集采监测参数"), error=RuleSetError)


ORDER_COLUMNS = ("order_id", "institution_id", "drug_id", "spec_id", "supplier", "units", "month")


def match_orders(orders: pd.DataFrame, contracts: pd.DataFrame) -> pd.DataFrame:
    """Each order against its contract: contract price, amount, and whether it is a winning product."""
    key = ["institution_id", "drug_id", "spec_id", "supplier"]
    c = contracts[key + ["price_fen"]].drop_duplicates(key)
    m = orders.merge(c, on=key, how="left", indicator=True)
    m["contracted"] = m.pop("_merge") == "both"
    m["price_fen"] = m["price_fen"].fillna(0).astype("int64")
    return m


def progress(
    orders: pd.DataFrame,
    contracts: pd.DataFrame,
    *,
    months_elapsed: int,
    cycle_months: int = 12,
    params: MonitorParams | None = None,
) -> pd.DataFrame:
    """Progress against the agreed volume per institution × drug, with behind-schedule alerts.

    ``expected = agreed × months_elapsed / cycle_months``; an institution is
    behind when ``purchased < expected × (1 − tolerance)``.  Purchases of the
    winning product above the agreed volume count (institutions keep buying it).
    """
    params = params or load_params()
    agreed = contracts.groupby(["institution_id", "drug_id"], as_index=False)["agreed_units"].sum()
    m = match_orders(orders, contracts)
    bought = (
        m[m["contracted"]]
        .groupby(["institution_id", "drug_id"], as_index=False)["units"]
        .sum()
        .rename(columns={"units": "purchased_units"})  # type: ignore[call-overload]  # pandas-stubs: as_index=False gives a DataFrame
    )
    out = agreed.merge(bought, on=["institution_id", "drug_id"], how="left")
    out["purchased_units"] = out["purchased_units"].fillna(0).astype("int64")
    a = out["agreed_units"].to_numpy(dtype="int64")
    out["expected_units"] = (2 * a * months_elapsed + cycle_months) // (2 * cycle_months)
    tol = ratio_to_bp(params.behind_schedule_tolerance)
    floor = (out["expected_units"].to_numpy(dtype="int64") * (10000 - tol) + 5000) // 10000
    out["behind"] = out["purchased_units"].to_numpy() < floor
    out["completion_bp"] = np.where(a > 0, out["purchased_units"].to_numpy() * 10000 // np.maximum(a, 1), 0)
    return out


def non_winning_check(
    orders: pd.DataFrame, contracts: pd.DataFrame, last_year: pd.DataFrame | None, params: MonitorParams | None = None
) -> pd.DataFrame:
    """Non-winning products (未中选) per institution × drug: volume ≤ last year's and ≤ the winners'.

    ``last_year`` has institution_id, drug_id, nonwinning_units (last year's use of non-winning products,
    e.g. from :func:`yibao.procurement.execution_io.read_report`).  ``None``: no last-year report, so only
    the winners' cap is checked (``last_year_units`` is left empty, never guessed).
    """
    params = params or load_params()
    have_last = last_year is not None
    if last_year is None:
        last_year = pd.DataFrame(
            {
                "institution_id": pd.Series(dtype=str),
                "drug_id": pd.Series(dtype=str),
                "nonwinning_units": pd.Series(dtype="int64"),
            }
        )
    m = match_orders(orders, contracts)
    g = m.groupby(["institution_id", "drug_id", "contracted"], as_index=False)["units"].sum()
    win = g[g["contracted"]].drop(columns="contracted").rename(columns={"units": "winning_units"})
    non = g[~g["contracted"]].drop(columns="contracted").rename(columns={"units": "nonwinning_units"})
    out = non.merge(win, on=["institution_id", "drug_id"], how="left").merge(
        last_year.rename(columns={"nonwinning_units": "last_year_units"}), on=["institution_id", "drug_id"], how="left"
    )
    out = out.fillna({"winning_units": 0, "last_year_units": 0}).astype(
        {"winning_units": "int64", "last_year_units": "int64"}
    )
    reasons = []
    for r in out.itertuples():
        why = []
        if have_last and params.non_winning.not_above_last_year and r.nonwinning_units > r.last_year_units:
            why.append(f"above last year's {r.last_year_units}")
        if params.non_winning.not_above_winners and r.nonwinning_units > r.winning_units:
            why.append(f"above the winning products' {r.winning_units}")
        reasons.append("; ".join(why))
    out["alert"] = [bool(x) for x in reasons]
    out["reason"] = reasons
    if not have_last:
        out["last_year_units"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out


def inventory_check(
    reports: pd.DataFrame, contracts: pd.DataFrame, months: list[int], params: MonitorParams | None = None
) -> pd.DataFrame:
    """Winners' monthly inventory reports (库存报告): missing reports and stock cover below the minimum.

    ``reports``: supplier, drug_id, month, stock_units.  Cover is stock ÷ the
    supplier's monthly agreed volume (annual agreed ÷ 12).
    """
    params = params or load_params()
    need = contracts.groupby(["supplier", "drug_id"], as_index=False)["agreed_units"].sum()
    grid = need.merge(pd.DataFrame({"month": months}), how="cross")
    out = grid.merge(reports, on=["supplier", "drug_id", "month"], how="left")
    out["reported"] = out["stock_units"].notna()
    out["stock_units"] = out["stock_units"].fillna(0).astype("int64")
    monthly = np.maximum(1, (out["agreed_units"].to_numpy(dtype="int64") + 6) // 12)
    min_m = Decimal(params.min_stock_months)
    out["cover_months"] = [
        str((Decimal(int(s)) / Decimal(int(mo))).quantize(Decimal("0.01")))
        for s, mo in zip(out["stock_units"], monthly, strict=True)
    ]
    low = out["stock_units"].to_numpy() * 100 < monthly * int(min_m * 100)
    out["alert"] = np.where(
        ~out["reported"], "missing report", np.where(low, f"stock below {min_m} month(s) of agreed volume", "")
    )
    return out


@dataclass
class PrepayLedger:
    """The fund-prepay flow per institution (fen)."""

    entries: pd.DataFrame  # institution_id, step, amount_fen, note
    summary: pd.DataFrame  # institution_id, prepaid, settled, balance, savings, retained


def fund_prepay_flow(
    contracts: pd.DataFrame,
    orders: pd.DataFrame,
    reference_price_fen: dict[tuple[str, str], int],
    params: MonitorParams | None = None,
) -> PrepayLedger:
    """基金预付, 即时结算, 结余留用 (Gansu–Shaanxi rule).

    1. At the start of the cycle the fund prepays ``prepay_share`` of each
       institution's annual contract amount to it.
    2. Each contracted order is settled immediately against the prepayment
       (the fund pays the supplier; the prepayment is drawn down first).
    3. Savings are measured against the pre-VBP price (``reference_price_fen``
       per (drug_id, spec_id), per pack): ``units × (reference − contract price)``;
       the institution keeps ``savings_retained_share`` of them (结余留用).
    """
    params = params or load_params()
    pp = ratio_to_bp(params.fund_prepay.prepay_share)
    keep = ratio_to_bp(params.fund_prepay.savings_retained_share)
    annual = contracts.groupby("institution_id")["amount_fen"].sum()
    key = ["institution_id", "drug_id", "spec_id", "supplier"]
    c = contracts[key + ["price_fen", "units_per_pack", "agreed_units", "amount_fen"]].drop_duplicates(key)
    # units per pack from the contract itself: amount ≈ units × price / upp; keep upp explicit if present
    m = orders.merge(c.drop(columns=["agreed_units", "amount_fen"]), on=key, how="inner")
    upp = m["units_per_pack"].to_numpy(dtype="int64") if "units_per_pack" in m else np.ones(len(m), dtype="int64")
    units = m["units"].to_numpy(dtype="int64")
    price = m["price_fen"].to_numpy(dtype="int64")
    m["settled_fen"] = (2 * units * price + upp) // (2 * upp)
    ref = np.array(
        [reference_price_fen.get((d, s), p) for d, s, p in zip(m["drug_id"], m["spec_id"], price, strict=True)],
        dtype="int64",
    )
    m["savings_fen"] = np.maximum(0, (2 * units * (ref - price) + upp) // (2 * upp))
    entries = []
    rows = []
    for inst, amt in annual.items():
        pre = (int(amt) * pp + 5000) // 10000
        entries.append((inst, "prepay", pre, "fund prepays 基金预付"))
        mi = m[m["institution_id"] == inst]
        settled = int(mi["settled_fen"].sum())
        entries.append((inst, "settle", settled, f"{len(mi)} orders settled immediately 即时结算"))
        sav = int(mi["savings_fen"].sum())
        ret = (sav * keep + 5000) // 10000
        entries.append((inst, "savings_retained", ret, "结余留用"))
        rows.append((inst, pre, settled, pre - settled, sav, ret))
    return PrepayLedger(
        pd.DataFrame(entries, columns=["institution_id", "step", "amount_fen", "note"]),
        pd.DataFrame(
            rows,
            columns=[
                "institution_id",
                "prepaid_fen",
                "settled_fen",
                "prepay_balance_fen",
                "savings_fen",
                "retained_fen",
            ],
        ),
    )
