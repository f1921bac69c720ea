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

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from yibao.core.errors import YibaoError
from yibao.payment.params import E4

router = APIRouter(prefix="/api/v1/payment", tags=["payment"])


def _error(exc: YibaoError) -> HTTPException:
    return HTTPException(
        status_code=400,
        detail={"code": exc.code, "message_en": exc.message_en, "message_zh": exc.message_zh, "field": exc.field},
    )


@lru_cache(maxsize=4)
def _scheme(name: str | None):
    from yibao.payment.drg import REGION_SCHEME, load_scheme

    return load_scheme(name or REGION_SCHEME)


@lru_cache(maxsize=1)
def _known_procedures() -> frozenset:
    from yibao.payment.cases import CodeTables

    return frozenset(CodeTables.default().proc_type)


class DrgCaseIn(BaseModel):
    """One case as the 医保结算清单 carries it (医保版 codes)."""

    case_id: str = Field("", description="病例号 case id")
    gend: str = Field("1", description="性别 1 male, 2 female")
    age: int = Field(description="年龄 whole years")
    nwb_age: int | None = Field(None, description="新生儿入院年龄(天) age in days, babies under one year")
    nwb_bir_wt: int | None = Field(None, description="新生儿出生体重(克) birth weight, grams")
    ipt_days: int | None = Field(None, description="住院天数 length of stay")
    main_diag: str = Field("", description="主要诊断 principal diagnosis (医保版 ICD-10 2.0)")
    other_diags: list[str] = Field(default_factory=list, description="其他诊断 secondary diagnoses")
    oprns: list[str] = Field(
        default_factory=list, description="手术操作 procedures, principal first (医保版 ICD-9-CM-3 2.0)"
    )


class DrgOut(BaseModel):
    case_id: str
    mdc: str
    adrg: str
    drg: str
    status: str = Field(description="ok, or why the case has no group")
    severity: str
    rw: str | None = Field(None, description="relative weight, 4 places; null when the scheme sets none")
    path: list[str] = Field(default_factory=list, description="the rules that placed the case (explain=true)")
    scheme: str


def _out(s, r) -> DrgOut:
    rw = (
        None if r.rw_e4 is None or (not isinstance(r.rw_e4, int) and r.rw_e4 != r.rw_e4) else f"{int(r.rw_e4) / E4:.4f}"
    )
    return DrgOut(case_id=r.case_id, mdc=r.mdc, adrg=r.adrg, drg=r.drg, status=r.status, severity=r.severity, rw=rw,
                  path=list(getattr(r, "path", ()) or ()), scheme=f"{s.name} {s.version}")  # fmt: skip


@router.get("/drg/scheme")
def drg_scheme(scheme: str | None = None) -> dict:
    try:
        s = _scheme(scheme or os.environ.get("YIBAO_DRG_SCHEME"))
    except YibaoError as exc:
        raise _error(exc) from None
    return {"name": s.name, "version": s.version, "label": s.label, "effective_from": s.effective_from.isoformat(),
            "mdcs": len(s.mdcs), "adrgs": len(s.adrgs), "drgs": len(s.drgs)}  # fmt: skip


@router.post("/drg/group", response_model=DrgOut)
def drg_group(body: DrgCaseIn, explain: bool = False, scheme: str | None = None) -> DrgOut:
    """Group one case (分组); a case with bad input answers 400 naming the field."""
    try:
        s = _scheme(scheme or os.environ.get("YIBAO_DRG_SCHEME"))
    except YibaoError as exc:
        raise _error(exc) from None
    r = s.group(**body.model_dump(), explain=explain)
    if r.status.startswith("refused: "):
        reason = r.status[len("refused: ") :]
        raise HTTPException(status_code=400, detail={"code": "E_DRG_INPUT", "message_en": reason, "message_zh": reason,
                                                     "field": reason.split(":", 1)[0]})  # fmt: skip
    return _out(s, r)


@router.post("/drg/group-batch", response_model=list[DrgOut])
def drg_group_batch(body: list[DrgCaseIn], scheme: str | None = None) -> list[DrgOut]:
    """Group many cases at once (the batch grouper); each case answers with its group or the reason it has none."""
    import pandas as pd

    from yibao.payment.grouper import INPUT_COLUMNS

    try:
        s = _scheme(scheme or os.environ.get("YIBAO_DRG_SCHEME"))
        rows = [c.model_dump() for c in body]
        for i, r in enumerate(rows):
            r["case_id"] = r["case_id"] or str(i + 1)
        df = pd.DataFrame(rows, columns=list(INPUT_COLUMNS))
        g = s.group_frame(df)
    except YibaoError as exc:
        raise _error(exc) from None
    g["rw_e4"] = g["rw_e4"].astype(object).where(g["rw_e4"].notna(), None)
    return [_out(s, r) for r in g.itertuples()]


class DipCaseIn(BaseModel):
    dise_codg: str = Field("", description="主要诊断 principal diagnosis (ICD-10)")
    other_dise_codg: list[str] = Field(default_factory=list)
    oprn_codg: list[str] = Field(default_factory=list)
    age: int = Field(ge=0, le=150)
    hosp_lv: int = Field(ge=0, le=3)
    medfee_sumamt: int = Field(description="医疗费总额, fen")


def _catalog(request: Request):

    cat = getattr(request.app.state, "dip_catalog", None)
    if cat is not None:
        return cat
    p = os.environ.get("YIBAO_DIP_CATALOG")
    if not p:
        raise HTTPException(
            status_code=404,
            detail={
                "code": "E_PAYMENT_CATALOG",
                "message_en": "no DIP catalog configured (YIBAO_DIP_CATALOG)",
                "message_zh": "未配置 DIP 目录库",
                "field": "catalog",
            },
        )
    return _load_catalog(p)


@lru_cache(maxsize=2)
def _load_catalog(path: str):
    from yibao.payment.catalog import Catalog

    return Catalog.load(Path(path))


@router.get("/dip/catalog")
def dip_catalog(request: Request) -> dict:
    cat = _catalog(request)
    return {
        "region": cat.region,
        "version": cat.version,
        "effective_from": cat.effective_from.isoformat(),
        "label": cat.label,
        "synthetic": cat.synthetic,
        "groups": cat.groups.num_rows,
        "overall_mean_cost_fen": cat.overall_mean_fen,
    }


@router.post("/dip/case-points")
def dip_case_points(body: DipCaseIn, request: Request, params: str = "example-city-a") -> dict:
    """Points of one case under the configured catalog (group, outlier kind, coefficient, points)."""
    from yibao.codes.national import check_diagnosis, check_procedure
    from yibao.payment.cases import CodeTables, PaymentInputError, case_keys
    from yibao.payment.dip import case_points
    from yibao.payment.params import load_dip_params

    cat = _catalog(request)
    try:
        p = load_dip_params(params)
        systems = tuple(p.coding.diagnosis_systems)
        check_diagnosis(body.dise_codg, "dise_codg", systems)
        for c in body.other_dise_codg:
            check_diagnosis(c, "other_dise_codg", systems)
        if body.medfee_sumamt < 0:
            raise PaymentInputError("negative cost", "医疗费总额为负数", field="medfee_sumamt")
        for c in body.oprn_codg:
            if c not in _known_procedures():
                check_procedure(c, "oprn_codg")
        k = case_keys(
            body.dise_codg,
            body.other_dise_codg,
            body.oprn_codg,
            p,
            CodeTables.default(),
            diagnosis_level=cat.diagnosis_level,
        )
        g = cat.match(k.dx_key, k.proc_key, k.dx_cat, k.dx_chapter, k.proc_type)
        cp = case_points(body.medfee_sumamt, g, cat, p, p.coef_e4(body.age, k.sev_score, body.hosp_lv))
    except YibaoError as exc:
        raise _error(exc) from None
    return {
        "group_code": cp.group_code,
        "kind": cp.kind,
        "base_points": f"{cp.base_e4 / E4:.4f}",
        "coefficient": f"{cp.coef_e4 / E4:.4f}",
        "points": f"{cp.points_e4 / E4:.4f}",
        "catalog": cat.version,
    }
