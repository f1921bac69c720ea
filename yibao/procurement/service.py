"""Persistence of rounds (services layer): one transaction per write.

``save_round`` writes the round, its bids, every bidder's result with its
reason, and the contracts in one transaction; ``save_orders`` writes a batch
of purchase orders matched against the round's contracts in one transaction.
Bad input raises before anything is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine, func, insert, select

from yibao.core.db import session_scope
from yibao.core.errors import YibaoError
from yibao.procurement.domain import RoundInput
from yibao.procurement.engine import RoundResult
from yibao.procurement.models import VbpBid, VbpContract, VbpOrder, VbpResult, VbpRound
from yibao.procurement.monitor import ORDER_COLUMNS, match_orders

SHANGHAI = ZoneInfo("Asia/Shanghai")
_CHUNK = 20_000


class ProcurementError(YibaoError):
    code = "E_VBP"


def save_round(engine: Engine, inp: RoundInput, result: RoundResult) -> int:
    """Persist a round and its results in one transaction; returns the round id."""
    contracts = result.contracts
    with session_scope(engine) as s:
        r = VbpRound(
            name=inp.name,
            ruleset_id=result.ruleset_id,
            round_date=inp.round_date,
            synthetic=inp.synthetic,
            created_at=dt.datetime.now(SHANGHAI).replace(microsecond=0),
        )
        s.add(r)
        s.flush()
        rid = r.id
        if inp.bids:
            s.execute(
                insert(VbpBid),
                [
                    {
                        "round_id": rid,
                        "bid_id": b.bid_id,
                        "drug_id": b.drug_id,
                        "spec_id": b.spec_id,
                        "firm_id": b.firm_id,
                        "price_fen": b.price_fen,
                    }
                    for b in inp.bids
                ],
            )
        rows = [
            {
                "round_id": rid,
                "drug_id": o.drug_id,
                "firm_id": o.firm_id,
                "status": o.status,
                "rank": o.rank,
                "comparable_e4": o.comparable_e4,
                "award_comparable_e4": o.award_comparable_e4,
                "reason_code": o.reason_code,
                "reason_en": o.reason_en,
                "reason_zh": o.reason_zh,
            }
            for d in result.drugs.values()
            for o in d.outcomes
        ]
        if rows:
            s.execute(insert(VbpResult), rows)
        cols = [
            "institution_id",
            "spec_id",
            "supplier",
            "drug_id",
            "region",
            "agreed_units",
            "price_fen",
            "units_per_pack",
            "amount_fen",
        ]
        recs = contracts[cols].assign(round_id=rid).to_dict("records") if len(contracts) else []
        for i in range(0, len(recs), _CHUNK):
            s.execute(
                insert(VbpContract),
                [
                    {
                        str(k): (
                            int(v)
                            if k in ("agreed_units", "price_fen", "units_per_pack", "amount_fen", "round_id")
                            else v
                        )
                        for k, v in rec.items()
                    }
                    for rec in recs[i : i + _CHUNK]
                ],
            )
    return rid


def load_contracts(engine: Engine, round_id: int) -> pd.DataFrame:
    with session_scope(engine) as s:
        if s.get(VbpRound, round_id) is None:
            raise ProcurementError(f"round {round_id} not found", f"找不到采购批次 {round_id}", field="round_id")
        rows = s.execute(select(VbpContract).where(VbpContract.round_id == round_id)).scalars().all()
        return pd.DataFrame(
            [
                {
                    c: getattr(r, c)
                    for c in (
                        "institution_id",
                        "region",
                        "drug_id",
                        "spec_id",
                        "supplier",
                        "agreed_units",
                        "price_fen",
                        "units_per_pack",
                        "amount_fen",
                    )
                }
                for r in rows
            ]
        )


def save_orders(engine: Engine, round_id: int, orders: pd.DataFrame) -> int:
    """Persist purchase orders (one transaction).  Bad rows raise before any write."""
    for c in ORDER_COLUMNS:
        if c not in orders.columns:
            raise ProcurementError(f"orders: missing column {c}", f"订单缺少列 {c}", field=c)
    neg = orders.index[orders["units"] <= 0]
    if len(neg):
        raise ProcurementError(
            f"orders row {int(neg[0]) + 2}: units must be > 0",
            f"订单第 {int(neg[0]) + 2} 行: 数量必须大于 0",
            field="units",
        )
    contracts = load_contracts(engine, round_id)
    m = match_orders(orders, contracts) if len(contracts) else orders.assign(contracted=False, price_fen=0)
    upp = (
        m.merge(
            contracts[["institution_id", "drug_id", "spec_id", "supplier", "units_per_pack"]].drop_duplicates(),
            on=["institution_id", "drug_id", "spec_id", "supplier"],
            how="left",
        )["units_per_pack"]
        .fillna(1)
        .astype("int64")
    )
    m["amount_fen"] = (2 * m["units"].astype("int64") * m["price_fen"] + upp.to_numpy()) // (2 * upp.to_numpy())
    order_rows: Iterable[Any] = m.itertuples()  # pandas-stubs type the fields as any scalar
    recs = [
        {
            "round_id": round_id,
            "order_id": r.order_id,
            "institution_id": r.institution_id,
            "drug_id": r.drug_id,
            "spec_id": r.spec_id,
            "supplier": r.supplier,
            "units": int(r.units),
            "month": int(r.month),
            "contracted": bool(r.contracted),
            "amount_fen": int(r.amount_fen),
        }
        for r in order_rows
    ]
    with session_scope(engine) as s:
        for i in range(0, len(recs), _CHUNK):
            s.execute(insert(VbpOrder), recs[i : i + _CHUNK])
    return len(recs)


def supervision_credit_lookup(engine: Engine, on: dt.date):
    """A credit lookup for :func:`yibao.procurement.engine.run_round` backed by
    ``yibao.supervision.credit`` (医药价格和招采信用评价 points in the database).

    ``run_round(inp, rules, credit_lookup=supervision_credit_lookup(engine, inp.round_date))``.
    Grades use the same names as the rule sets' ``excluded_credit_grades`` and
    tie-break order (``good`` … ``serious_breach``).  Firms without points are ``good``.
    """
    from yibao.supervision.credit import credit_grade

    cache: dict[str, str] = {}

    def lookup(firm_id: str) -> str | None:
        if firm_id not in cache:
            cache[firm_id] = credit_grade(engine, "enterprise", firm_id, on=on).grade
        return cache[firm_id]

    return lookup


def list_rounds(engine: Engine) -> list[dict]:
    with session_scope(engine) as s:
        out = []
        for r in s.execute(select(VbpRound).order_by(VbpRound.id)).scalars():
            n = s.execute(
                select(func.count())
                .select_from(VbpResult)
                .where(VbpResult.round_id == r.id, VbpResult.status.in_(("won", "revived")))
            ).scalar_one()
            out.append(
                {
                    "id": r.id,
                    "name": r.name,
                    "ruleset_id": r.ruleset_id,
                    "round_date": r.round_date.isoformat(),
                    "synthetic": r.synthetic,
                    "winners": n,
                }
            )
        return out


def round_results(engine: Engine, round_id: int) -> list[dict]:
    with session_scope(engine) as s:
        if s.get(VbpRound, round_id) is None:
            raise ProcurementError(f"round {round_id} not found", f"找不到采购批次 {round_id}", field="round_id")
        rows = s.execute(
            select(VbpResult).where(VbpResult.round_id == round_id).order_by(VbpResult.drug_id, VbpResult.rank)
        ).scalars()
        return [
            {
                "drug_id": r.drug_id,
                "firm_id": r.firm_id,
                "status": r.status,
                "rank": r.rank,
                "comparable_e4": r.comparable_e4,
                "reason_code": r.reason_code,
                "reason_en": r.reason_en,
                "reason_zh": r.reason_zh,
            }
            for r in rows
        ]
