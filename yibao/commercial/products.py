"""Commercial products as data (惠民保产品): ``yibao/data/commercial/*.yaml``, validated on load.

Money is integer fen (yuan in the file), ratios integer basis points.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from yibao.core.errors import YibaoError
from yibao.core.money import MoneyError, parameter_fen, ratio_to_bp
from yibao.core.yamldata import load_model

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "commercial"


class CommercialError(YibaoError):
    """A commercial-insurance request or product file is invalid."""

    code = "E_COMMERCIAL"


def _bp(v: Any) -> int:
    try:
        return ratio_to_bp(v)
    except MoneyError as exc:
        raise ValueError(str(exc)) from exc


Bp = Annotated[int, BeforeValidator(_bp)]
Fen = Annotated[int, BeforeValidator(parameter_fen)]


class Ratios(BaseModel):
    model_config = ConfigDict(extra="forbid")
    in_list: Bp  # 乙类先行自付 and in-scope self-pay
    out_of_list: Bp  # 丙类 / 全自费 and over-limit
    specific_drug: Bp  # 特药


class Enrolment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opens: dt.date
    closes: dt.date


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: str = Field(min_length=1)
    name_zh: str
    insurer: str
    region: str
    year: int
    premium_yuan: Fen
    enrolment: Enrolment
    effective_from: dt.date
    effective_to: dt.date
    deductible_yuan: Fen  # 免赔额, fen after validation
    annual_ceiling_yuan: Fen  # 年度保额, fen
    ratios: Ratios
    pre_existing_ratios: Ratios  # 既往症
    pre_existing_diagnosis_prefixes: tuple[str, ...] = ()
    specific_drug_codes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _dates(self) -> Product:
        if self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        if self.enrolment.closes < self.enrolment.opens:
            raise ValueError("enrolment closes before it opens")
        return self

    @property
    def deductible(self) -> int:
        return self.deductible_yuan

    @property
    def ceiling(self) -> int:
        return self.annual_ceiling_yuan


def load_products(directory: Path | None = None) -> dict[str, Product]:
    out: dict[str, Product] = {}
    for path in sorted((directory or DATA_DIR).glob("*.yaml")):
        p = load_model(path, Product, what=("commercial product file", "商业保险产品文件"), error=CommercialError)
        if p.product_id in out:
            raise CommercialError(
                f"duplicate product id {p.product_id}", f"产品编号重复 {p.product_id}", field="product_id"
            )
        out[p.product_id] = p
    return out


def get_product(product_id: str, directory: Path | None = None) -> Product:
    products = load_products(directory)
    if product_id not in products:
        raise CommercialError(
            f"unknown product {product_id!r}", f"未知的商业保险产品 {product_id!r}", field="product_id"
        )
    return products[product_id]
