"""HTTP router of the pooling simulation (统筹层次模拟): thin, every endpoint calls :mod:`yibao.pooling.mechanics`.

Mounted by :func:`yibao.server.create_app` behind the console's bureau login.
Money is integer fen in and out.

* ``GET  /api/v1/pooling/arrangements`` — the shipped arrangements;
* ``GET  /api/v1/pooling/arrangements/{name}`` — one, with its sources;
* ``POST /api/v1/pooling/simulate`` — an arrangement (shipped name, or inline)
  over county figures given in the request (income and spending in fen);
* ``GET  /api/v1/pooling/region/{name}`` — a shipped arrangement over the
  served region's settled year (the Parquet directory in
  ``YIBAO_CONSOLE_DATA``, the same one the console reads).
"""

# no "from __future__ import annotations": FastAPI reads the annotations

import os
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from yibao.core.errors import YibaoError

router = APIRouter(prefix="/api/v1/pooling", tags=["pooling"])


def _error(exc: YibaoError, status: int = 400) -> HTTPException:
    return HTTPException(
        status_code=status,
        detail={"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field},
    )


class CountyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    county: str = Field(description="county pool's division code (医保区划)")
    scheme: Literal["employee", "resident"]
    income: int = Field(description="fund income, fen")
    spending: int = Field(ge=0, description="pooled-fund spending, fen")
    people: int = Field(0, ge=0)


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arrangement: str | dict[str, Any] = Field(
        description="a shipped arrangement's name, or an arrangement object (the YAML file's fields)"
    )
    counties: list[CountyIn] = Field(min_length=1)


def _arrangement(spec: str | dict):
    from yibao.pooling.arrangement import arrangement_from_dict, load_arrangement

    if isinstance(spec, str):
        if "/" in spec or spec.endswith((".yaml", ".yml")):  # no server paths through the API
            from yibao.pooling.arrangement import PoolingError

            raise PoolingError(
                "give a shipped arrangement's name or an arrangement object, not a file path",
                "请给出已有安排的名称或安排对象, 不接受文件路径",
                field="arrangement",
            )
        return load_arrangement(spec)
    return arrangement_from_dict(spec)


def _reply(sim, h, **extra) -> dict:
    from yibao.pooling.report import rows

    a = sim.arrangement
    return {
        "arrangement": a.name,
        "label_zh": a.label_zh,
        "label_en": a.label_en,
        "illustrative": a.illustrative,
        "money": "fen",
        **extra,
        **rows(sim, h.names),
    }


@router.get("/arrangements", summary="统筹层次安排 · pooling arrangements")
def arrangements() -> list[dict]:
    from yibao.pooling.arrangement import known_arrangements, load_arrangement

    out = []
    for name in known_arrangements():
        a = load_arrangement(name)
        out.append(
            {
                "name": a.name,
                "label_zh": a.label_zh,
                "label_en": a.label_en,
                "region": a.region,
                "pool_level": a.pool_level,
                "adjustment_fund_level": a.adjustment_fund.level if a.adjustment_fund else None,
                "illustrative": a.illustrative,
            }
        )
    return out


@router.get("/arrangements/{name}", summary="一个统筹层次安排 · one arrangement (ratios in basis points, money in fen)")
def arrangement(name: str) -> dict:
    try:
        return _arrangement(name).model_dump()
    except YibaoError as exc:
        raise _error(exc, 404) from None


@router.post("/simulate", summary="统筹层次模拟 · simulate an arrangement over given county figures")
def simulate(body: SimulateIn) -> dict:
    from yibao.pooling.figures import hierarchy
    from yibao.pooling.mechanics import CountyFigures
    from yibao.pooling.mechanics import simulate as run

    try:
        arr = _arrangement(body.arrangement)
        h = hierarchy(arr)
        figs = [CountyFigures(c.county, c.scheme, c.income, c.spending, c.people) for c in body.counties]
        sim = run(figs, arr, h.pool_of, h.fund_of)
    except YibaoError as exc:
        raise _error(exc) from None
    return _reply(sim, h)


@router.get("/region/{name}", summary="统筹层次模拟 · a shipped arrangement over the served region's settled year")
def region(name: str, year: int | None = None) -> dict:
    from yibao.pooling.cli import income_note, run

    data = os.environ.get("YIBAO_CONSOLE_DATA")
    if not data or not Path(data).is_dir():
        raise HTTPException(
            status_code=409,
            detail={
                "code": "E_POOLING",
                "field": "YIBAO_CONSOLE_DATA",
                "message_en": "the server has no region data directory (YIBAO_CONSOLE_DATA)",
                "message_zh": "服务器未配置统筹区数据目录 (YIBAO_CONSOLE_DATA)",
            },
        )
    try:
        if "/" in name or name.endswith((".yaml", ".yml")):
            _arrangement(name)  # refused: names only
        sim, h, yf = run(Path(data), name, year=year)
    except YibaoError as exc:
        raise _error(exc) from None
    return _reply(sim, h, year=yf.year, synthetic=yf.synthetic, income=income_note(yf.rates))
