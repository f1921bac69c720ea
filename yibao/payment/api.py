"""HTTP router of the payment subsystem (thin: every endpoint calls a rule function).

``app.include_router(router)``.  The DIP endpoints price one case against a
catalog directory: ``YIBAO_DIP_CATALOG`` (or ``app.state.dip_catalog``, a
:class:`~yibao.payment.catalog.Catalog`); DRG uses ``YIBAO_DRG_SCHEME`` or
the shipped SAMPLE scheme.
"""

# no "from __future__ import annotations": FastAPI reads the annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from yibao.core.errors import YibaoError
from yibao.payment.params import E4

router = APIRouter(prefix="/api/v1/payment", tags=["payment"])


def _error(exc: YibaoError) -> HTTPException:
    return HTTPException(status_code=400, detail={"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field})


@lru_cache(maxsize=4)
def _scheme(path: Optional[str]):
    from yibao.payment.drg import load_scheme

    return load_scheme(path)


@lru_cache(maxsize=1)
def _known_procedures() -> frozenset:
    from yibao.payment.cases import CodeTables

    return frozenset(CodeTables.default().proc_type)


class DrgCaseIn(BaseModel):
    dise_codg: str = Field("", description="主要诊断 principal diagnosis (ICD-10)")
    other_dise_codg: list[str] = Field(default_factory=list, description="其他诊断 secondary diagnoses")
    oprn_codg: list[str] = Field(default_factory=list, description="手术操作 procedures")
    age: int = Field(description="年龄 whole years at admission")
    mdtrt_id: str = ""


class DrgOut(BaseModel):
    mdtrt_id: str
    drg: str
    adrg: str
    mdc: str
    severity: str
    rw: str
    path: str
    scheme: str


@router.get("/drg/scheme")
def drg_scheme() -> dict:
    s = _scheme(os.environ.get("YIBAO_DRG_SCHEME"))
    return {"name": s.name, "version": s.version, "label": s.label, "effective_from": s.effective_from.isoformat(),
            "mdcs": len(s.mdcs), "adrgs": len(s.adrgs), "drgs": len(s.drgs)}  # fmt: skip


@router.post("/drg/group", response_model=DrgOut)
def drg_group(body: DrgCaseIn) -> DrgOut:
    """Group one case (分组): the scalar grouper."""
    from yibao.payment.drg import group_case

    s = _scheme(os.environ.get("YIBAO_DRG_SCHEME"))
    try:
        g = group_case(s, body.dise_codg, body.other_dise_codg, body.oprn_codg, body.age, known_procedures=_known_procedures(), case_id=body.mdtrt_id)
    except YibaoError as exc:
        raise _error(exc) from None
    return DrgOut(mdtrt_id=body.mdtrt_id, drg=g.drg, adrg=g.adrg, mdc=g.mdc, severity=g.severity, rw=f"{g.rw_e4 / E4:.4f}", path=g.path, scheme=f"{s.name} {s.version}")


@router.post("/drg/group-batch", response_model=list[DrgOut])
def drg_group_batch(body: list[DrgCaseIn]) -> list[DrgOut]:
    """Group many cases at once (the vectorised grouper)."""
    import pandas as pd

    from yibao.payment.drg import group_batch

    s = _scheme(os.environ.get("YIBAO_DRG_SCHEME"))
    df = pd.DataFrame({"mdtrt_id": [c.mdtrt_id for c in body], "dise_codg": [c.dise_codg for c in body],
                       "other_dise_codg": [";".join(c.other_dise_codg) for c in body], "oprn_codg": [";".join(c.oprn_codg) for c in body],
                       "age": [c.age for c in body]})  # fmt: skip
    try:
        g = group_batch(s, df, known_procedures=_known_procedures())
    except YibaoError as exc:
        raise _error(exc) from None
    return [DrgOut(mdtrt_id=m, drg=r.drg, adrg=r.adrg, mdc=r.mdc, severity=r.severity, rw=f"{r.rw_e4 / E4:.4f}", path=r.path, scheme=f"{s.name} {s.version}")
            for m, r in zip(df.mdtrt_id, g.itertuples())]  # fmt: skip


class DipCaseIn(BaseModel):
    dise_codg: str = Field("", description="主要诊断 principal diagnosis (ICD-10)")
    other_dise_codg: list[str] = Field(default_factory=list)
    oprn_codg: list[str] = Field(default_factory=list)
    age: int = Field(ge=0, le=150)
    hosp_lv: int = Field(ge=0, le=3)
    medfee_sumamt: int = Field(description="医疗费总额, fen")


def _catalog(request: Request):
    from yibao.payment.catalog import Catalog

    cat = getattr(request.app.state, "dip_catalog", None)
    if cat is not None:
        return cat
    p = os.environ.get("YIBAO_DIP_CATALOG")
    if not p:
        raise HTTPException(status_code=404, detail={"code": "E_PAYMENT_CATALOG", "message_en": "no DIP catalog configured (YIBAO_DIP_CATALOG)",
                                                     "message_zh": "未配置 DIP 目录库", "field": "catalog"})  # fmt: skip
    return _load_catalog(p)


@lru_cache(maxsize=2)
def _load_catalog(path: str):
    from yibao.payment.catalog import Catalog

    return Catalog.load(Path(path))


@router.get("/dip/catalog")
def dip_catalog(request: Request) -> dict:
    cat = _catalog(request)
    return {"region": cat.region, "version": cat.version, "effective_from": cat.effective_from.isoformat(), "label": cat.label,
            "synthetic": cat.synthetic, "groups": cat.groups.num_rows, "overall_mean_cost_fen": cat.overall_mean_fen}  # fmt: skip


@router.post("/dip/case-points")
def dip_case_points(body: DipCaseIn, request: Request, params: str = "example-city-a") -> dict:
    """Points of one case under the configured catalog (group, outlier kind, coefficient, points)."""
    from yibao.payment.cases import CodeTables, PaymentInputError, case_keys
    from yibao.payment.dip import case_points
    from yibao.payment.drg import _check_dx
    from yibao.payment.params import load_dip_params

    cat = _catalog(request)
    try:
        p = load_dip_params(params)
        _check_dx(body.dise_codg, "dise_codg")
        for c in body.other_dise_codg:
            _check_dx(c, "other_dise_codg")
        if body.medfee_sumamt < 0:
            raise PaymentInputError("negative cost", "医疗费总额为负数", field="medfee_sumamt")
        bad = [c for c in body.oprn_codg if c not in _known_procedures()]
        if bad:
            raise PaymentInputError(f"unknown procedure codes {bad}", f"未知的手术操作编码 {bad}", field="oprn_codg")
        k = case_keys(body.dise_codg, body.other_dise_codg, body.oprn_codg, p, CodeTables.default(), diagnosis_level=cat.diagnosis_level)
        g = cat.match(k.dx_key, k.proc_key, k.dx_cat, k.dx_chapter, k.proc_type)
        cp = case_points(body.medfee_sumamt, g, cat, p, p.coef_e4(body.age, k.sev_score, body.hosp_lv))
    except YibaoError as exc:
        raise _error(exc) from None
    return {"group_code": cp.group_code, "kind": cp.kind, "base_points": f"{cp.base_e4 / E4:.4f}", "coefficient": f"{cp.coef_e4 / E4:.4f}",
            "points": f"{cp.points_e4 / E4:.4f}", "catalog": cat.version}  # fmt: skip
