"""The treatment province's list (就医地目录) on cross-province claims.

A cross-province claim is priced and classified by the list of the province where the care took place:
class (甲/乙/丙), self-pay-first ratio (先行自付比例) and price cap (最高限价) of each item; the insured
place's policy (参保地政策: deductible, ratios, caps) pays it.  Each treatment province is one data file
``yibao/data/crossregion/lists/*.yaml`` (an overlay of the medical list, with dated versions); a new
province is a new file.

Both settlement paths use this module: :func:`treatment_catalog` gives the scalar path the catalog of
one claim, :func:`overlay_lines` rewrites the batch path's per-line columns in place.  The treatment
city's own ``list_overrides`` (its policy file) still apply on top, in both paths.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from yibao.benefits.model import Bp, Fen
from yibao.codes.medlist import MedItem
from yibao.core.contract import is_cross_province, province_part
from yibao.core.errors import YibaoError
from yibao.core.yamldata import load_model
from yibao.settlement.catalog import Catalog

LISTS_DIR = Path(__file__).resolve().parent.parent / "data" / "crossregion" / "lists"
_EPOCH = dt.date(1970, 1, 1)


class ListError(YibaoError):
    """A treatment-place list file is invalid (就医地目录文件无效)."""

    code = "E_TREATMENT_LIST"


class ItemListing(BaseModel):
    """How the treatment province lists one item; an absent field keeps the medical list's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    chrgitm_lv: Literal["01", "02", "03"] | None = None
    selfpay_prop: Bp | None = None  # ratio in the file, basis points here
    pric_uplmt: Fen | None = None  # yuan per unit in the file, fen here; 0 = no cap

    @model_validator(mode="after")
    def _something(self) -> ItemListing:
        if self.chrgitm_lv is None and self.selfpay_prop is None and self.pric_uplmt is None:
            raise ValueError("an item entry must change chrgitm_lv, selfpay_prop or pric_uplmt")
        if self.selfpay_prop is not None and not 0 <= self.selfpay_prop <= 10_000:
            raise ValueError("selfpay_prop must be between 0 and 1")
        if self.pric_uplmt is not None and self.pric_uplmt < 0:
            raise ValueError("pric_uplmt may not be negative")
        return self


class ListVersion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    begin: dt.date = Field(alias="from")
    items: dict[str, ItemListing]


class ProvinceList(BaseModel):
    """One treatment province's overlay of the medical list, by version."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    province: Annotated[str, Field(pattern=r"^[0-9]{2}$")]
    name_zh: str
    label: str
    status: Literal["illustrative", "official"]
    versions: tuple[ListVersion, ...]

    @model_validator(mode="after")
    def _ordered(self) -> ProvinceList:
        days = [v.begin for v in self.versions]
        if not days or days != sorted(set(days)):
            raise ValueError("versions must be non-empty, with strictly ascending 'from' dates")
        return self

    def version_on(self, day: dt.date) -> int | None:
        """Index of the version in force on ``day`` (None before the first)."""
        idx = None
        for i, v in enumerate(self.versions):
            if v.begin <= day:
                idx = i
        return idx

    def segments(self) -> list[tuple[int, int, int]]:
        """(first day, end day exclusive, version index) of each version, days since 1970-01-01."""
        starts = [(v.begin - _EPOCH).days for v in self.versions]
        ends = [*starts[1:], 10**9]
        return list(zip(starts, ends, range(len(starts)), strict=True))


class TreatmentLists:
    """Every treatment province's list, by province code."""

    def __init__(self, directory: Path = LISTS_DIR):
        self.directory = Path(directory)
        self.by_province: dict[str, ProvinceList] = {}
        for path in sorted(self.directory.glob("*.yaml")):
            pl = load_model(path, ProvinceList, what=("treatment-place list", "就医地目录"), error=ListError)
            if pl.province in self.by_province:
                raise ListError(
                    f"{path.name}: province {pl.province} is already listed by another file",
                    f"{path.name}: 省份 {pl.province} 的就医地目录重复",
                    field="province",
                )
            self.by_province[pl.province] = pl

    def for_area(self, treatment_admdvs: str) -> ProvinceList | None:
        return self.by_province.get(province_part(treatment_admdvs)) if treatment_admdvs else None


@lru_cache(maxsize=4)
def load_lists(directory: str | None = None) -> TreatmentLists:
    return TreatmentLists(Path(directory) if directory else LISTS_DIR)


def _listed(it: MedItem, listing: ItemListing) -> MedItem:
    """``it`` as the treatment province lists it."""
    return dataclasses.replace(
        it,
        chrgitm_lv=listing.chrgitm_lv if listing.chrgitm_lv is not None else it.chrgitm_lv,
        selfpay_prop_bp=listing.selfpay_prop if listing.selfpay_prop is not None else it.selfpay_prop_bp,
        pric_uplmt=listing.pric_uplmt if listing.pric_uplmt is not None else it.pric_uplmt,
    )


def _overlaid(catalog: Catalog, items: dict[str, ItemListing]) -> Catalog:
    out = dict(catalog.items)
    for code, listing in items.items():
        if code in out:  # an item the region's list does not carry: nothing to reprice
            out[code] = _listed(out[code], listing)
    return Catalog(out)


@lru_cache(maxsize=32)
def _cached(catalog: Catalog, province: str, version: int, directory: str | None) -> Catalog:
    return _overlaid(catalog, load_lists(directory).by_province[province].versions[version].items)


def treatment_catalog(
    catalog: Catalog, insured_admdvs: str, treatment_admdvs: str, day: dt.date, directory: str | None = None
) -> Catalog:
    """The catalog a claim is priced with: the treatment province's list when the care was in another province."""
    if not treatment_admdvs or not is_cross_province(insured_admdvs, treatment_admdvs):
        return catalog
    pl = load_lists(directory).for_area(treatment_admdvs)
    version = pl.version_on(day) if pl is not None else None
    if pl is None or version is None:
        return catalog
    return _cached(catalog, pl.province, version, directory)


def overlay_lines(
    catalog: Catalog,
    code_index: np.ndarray,
    cross: np.ndarray,
    area: np.ndarray,
    day: np.ndarray,
    chrg: np.ndarray,
    selfpay_bp: np.ndarray,
    cap: np.ndarray,
    directory: str | None = None,
) -> None:
    """The batch form of :func:`treatment_catalog`, per fee line, in place.

    ``code_index``: the line's catalog position (−1 unknown); ``cross``: its claim is cross-province;
    ``area``: its claim's treatment division; ``day``: days since 1970-01-01 of the claim's settlement;
    ``chrg`` (1 甲, 2 乙, 3 丙), ``selfpay_bp`` and ``cap`` (the effective per-unit cap) are rewritten.
    """
    lists = load_lists(directory)
    if not len(code_index) or not lists.by_province or not cross.any():
        return
    prov = np.array([province_part(str(a or "")) for a in area], dtype=object)
    for p, pl in lists.by_province.items():
        in_prov = cross & (prov == p)
        if not in_prov.any():
            continue
        for start, end, vi in pl.segments():
            mask = in_prov & (day >= start) & (day < end)
            if not mask.any():
                continue
            for code, listing in pl.versions[vi].items.items():
                pos = catalog.index.get(code)
                if pos is None:
                    continue
                m = mask & (code_index == pos)
                if not m.any():
                    continue
                it = _listed(catalog[code], listing)
                chrg[m], selfpay_bp[m], cap[m] = int(it.chrgitm_lv), it.selfpay_prop_bp, it.effective_cap
