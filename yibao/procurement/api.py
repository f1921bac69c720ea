"""HTTP router of the procurement subsystem (集采), a thin layer over services.

Mount it with ``app.include_router(router)``.  Endpoints:

* ``GET  /procurement/rulesets`` and ``/procurement/rulesets/{name}``;
* ``POST /procurement/simulate`` — bid simulation for a firm;
* ``GET  /procurement/rounds`` and ``/procurement/rounds/{round_id}/results`` —
  persisted rounds (database from ``get_engine``; override the dependency in tests).

Errors come back as 400/404 with ``code``, ``message_en``, ``message_zh`` and ``field``.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from yibao.core.errors import YibaoError

router = APIRouter(prefix="/procurement", tags=["procurement 集采"])


def _http(exc: YibaoError, status: int = 400) -> HTTPException:
    return HTTPException(
        status, {"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field}
    )


@lru_cache(maxsize=1)
def _default_engine():
    from yibao.core.db import database_url, make_engine

    return make_engine(database_url(None))


def get_engine():
    return _default_engine()


@router.get("/rulesets")
def rulesets() -> list[dict]:
    from yibao.procurement.params import get_ruleset, list_rulesets

    return [
        {
            "name": n,
            "kind": get_ruleset(n).kind,
            "method": get_ruleset(n).selection.method,
            "chain": list(get_ruleset(n).chain),
        }
        for n in list_rulesets()
    ]


@router.get("/rulesets/{name}")
def ruleset(name: str) -> dict:
    from yibao.procurement.params import load_ruleset, rules_dir

    if "/" in name or not (rules_dir() / f"{name}.yaml").exists():
        raise HTTPException(
            404,
            {
                "code": "E_VBP_RULES",
                "message_en": f"unknown rule set {name!r}",
                "message_zh": f"未知规则 {name!r}",
                "field": "name",
            },
        )
    try:
        return load_ruleset(name).model_dump(mode="json")
    except YibaoError as exc:
        raise _http(exc) from None


class BeliefIn(BaseModel):
    dist: Literal["uniform", "triangular", "lognormal"]
    params: list[float] = Field(..., min_length=2, max_length=3)
    accept_revival: bool = False


class SimulateIn(BaseModel):
    rules: str
    competitors: list[BeliefIn] = Field(..., min_length=1, max_length=50)
    candidate_prices_yuan: list[Decimal] = Field(..., min_length=1, max_length=200)
    max_unit_price_yuan: Decimal
    base_units: int = Field(..., ge=0)
    dosage_form: str = "oral_solid"
    accept_revival: bool = False
    rounds: int = Field(10_000, ge=100, le=1_000_000)
    seed: int = 0


@router.post("/simulate")
def simulate(body: SimulateIn) -> dict:
    from yibao.procurement.params import load_ruleset
    from yibao.procurement.simulate import Belief, simulate_bids

    try:
        res = simulate_bids(
            load_ruleset(body.rules),
            [Belief(b.dist, tuple(b.params), b.accept_revival) for b in body.competitors],
            body.candidate_prices_yuan,
            max_unit_price_yuan=body.max_unit_price_yuan,
            base_units=body.base_units,
            dosage_form=body.dosage_form,
            accept_revival=body.accept_revival,
            rounds=body.rounds,
            seed=body.seed,
        )
    except YibaoError as exc:
        raise _http(exc) from None
    return {
        "ruleset": res.ruleset_id,
        "simulated_rounds": res.rounds,
        "notes": res.notes,
        "rows": res.frame().to_dict("records"),
    }


@router.get("/rounds")
def rounds(engine=Depends(get_engine)) -> list[dict]:
    from yibao.procurement.service import list_rounds

    return list_rounds(engine)


@router.get("/rounds/{round_id}/results")
def results(round_id: int, engine=Depends(get_engine)) -> list[dict]:
    from yibao.procurement.service import round_results

    try:
        return round_results(engine, round_id)
    except YibaoError as exc:
        raise _http(exc, 404) from None
