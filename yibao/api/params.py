"""Interface parameters (yibao/data/api/interface.yaml), validated.

Code holds only mechanics; codes, time limits and the fund-type table are data.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yibao.core.contract import is_employee_side
from yibao.core.errors import YibaoError
from yibao.core.yamldata import data_error, load_model

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "api" / "interface.yaml"


class ConfigError(YibaoError):
    code = "E_API_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InterfaceParams(_Strict):
    infver_pattern: str
    accept_empty_infver: bool
    inf_time_window_minutes: int = Field(gt=0, le=7 * 24 * 60)
    max_body_bytes: int = Field(ge=1024, le=256 * 1024 * 1024)
    max_json_depth: int = Field(ge=4, le=200)
    envelope_paths: tuple[str, ...] = Field(min_length=1)
    diagnosis_systems: tuple[str, ...] = Field(min_length=1)
    sign_no_ttl_minutes: int = Field(gt=0)
    max_feedetail_lines: int = Field(gt=0)
    inpatient_settlement: Literal["discharge_first", "settle_then_discharge"]
    cnt_decimals: int = Field(ge=0, le=4)
    money_decimals: int = Field(ge=0, le=2)
    pric_decimals: int = Field(ge=0, le=6)
    max_line_amount: int = Field(gt=0, lt=10**12)  # yuan
    max_medfee_sumamt: int = Field(gt=0, lt=10**12)  # yuan
    max_cnt: int = Field(gt=0, lt=10**12)
    max_pric: int = Field(gt=0, lt=10**10)  # yuan per unit
    max_prd_days: int = Field(gt=0, le=32767)
    max_fee_age_days: int = Field(gt=0, le=36500)

    @field_validator("infver_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return v

    @field_validator("envelope_paths")
    @classmethod
    def _paths(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            if not re.fullmatch(r"(/[A-Za-z0-9_.-]+)+", p):
                raise ValueError(f"{p!r} is not a URL path like /fsi/api/rsfComIfsService/callService")
        if len(set(v)) != len(v):
            raise ValueError("a path is listed twice")
        return v

    @field_validator("diagnosis_systems")
    @classmethod
    def _systems(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from yibao.codes.national import DX_SYSTEMS

        bad = [x for x in v if x not in DX_SYSTEMS]
        if bad:
            raise ValueError(f"unknown diagnosis coding system(s) {bad}; known: {list(DX_SYSTEMS)}")
        if len(set(v)) != len(v):
            raise ValueError("a coding system is listed twice")
        return v

    def infver_ok(self, infver: str) -> bool:
        """接口版本号 policy: any well-formed version (``infver_pattern``), or "" if allowed."""
        if infver == "":
            return self.accept_empty_infver
        return re.fullmatch(self.infver_pattern, infver) is not None


class MaskRule(_Strict):
    keep_start: int = Field(ge=0)
    keep_end: int = Field(ge=0)


class FundType(_Strict):
    employee: tuple[str, str]
    resident: tuple[str, str]


_INFNO = re.compile(r"^[0-9]{4}$")
_INFNO_ALIAS = re.compile(r"^[0-9]{4}[A-Z]$")
_NODE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")

NodeTable = dict[str, dict[str, tuple[str, ...]]]


def _check_nodes(table: NodeTable, where: str) -> None:
    for infno, nodes in table.items():
        if not _INFNO.match(infno):
            raise ValueError(f"{where}: {infno!r} is not a national infno (4 digits)")
        seen: set[str] = set()
        for main, aliases in nodes.items():
            for n in (main, *aliases):
                if not _NODE.match(n):
                    raise ValueError(f"{where}.{infno}: {n!r} is not a node name")
                if n in seen:
                    raise ValueError(f"{where}.{infno}: node name {n!r} is used twice")
                seen.add(n)


class InstitutionParams(_Strict):
    """Per-institution overrides (for editions that clash)."""

    input_nodes: NodeTable = {}
    inpatient_settlement: Literal["discharge_first", "settle_then_discharge"] | None = None


class InterfaceConfig(_Strict):
    interface: InterfaceParams
    infno_aliases: dict[str, str]
    input_nodes: NodeTable
    institutions: dict[str, InstitutionParams]
    mdtrt_cert_types: dict[str, str]
    psn_type_codes: dict[str, str]
    psn_idet_types: dict[str, str]
    clr_types: dict[str, str]
    clr_way: str
    pay_loc: str
    fund_pay_types: dict[str, FundType]
    masking: dict[str, MaskRule]

    @model_validator(mode="after")
    def _tables(self) -> InterfaceConfig:
        for alias, infno in self.infno_aliases.items():
            if not _INFNO_ALIAS.match(alias):
                raise ValueError(f"infno_aliases: {alias!r} is not 4 digits and a capital letter")
            if not _INFNO.match(infno):
                raise ValueError(f"infno_aliases.{alias}: {infno!r} is not a national infno")
        _check_nodes(self.input_nodes, "input_nodes")
        for code, inst in self.institutions.items():
            _check_nodes(inst.input_nodes, f"institutions.{code}.input_nodes")
        return self

    def national_infno(self, infno: str) -> str:
        """The national transaction an edition's code stands for (2203A → 2203)."""
        return self.infno_aliases.get(infno, infno)

    def nodes_for(self, infno: str, fixmedins_code: str) -> dict[str, tuple[str, ...]]:
        """Main input node → the other names accepted for it, for one transaction and institution."""
        inst = self.institutions.get(fixmedins_code)
        if inst is not None and infno in inst.input_nodes:
            return inst.input_nodes[infno]
        return self.input_nodes.get(infno, {})

    def inpatient_settlement_for(self, fixmedins_code: str) -> str:
        inst = self.institutions.get(fixmedins_code)
        if inst is not None and inst.inpatient_settlement is not None:
            return inst.inpatient_settlement
        return self.interface.inpatient_settlement

    def fund_type(self, fld: str, insutype: str) -> tuple[str, str]:
        ft = self.fund_pay_types[fld]
        return ft.employee if is_employee_side(insutype) else ft.resident


def load_config(path: str | Path | None = None) -> InterfaceConfig:
    p = Path(path) if path else DEFAULT_PATH
    cfg = load_model(p, InterfaceConfig, what=("interface parameters", "接口参数"), error=ConfigError)
    from yibao.settlement.rules import Settlement

    missing = [
        f
        for f in Settlement.AMOUNTS
        if f.endswith("_pay") and f not in ("psn_cash_pay",) and f not in cfg.fund_pay_types
    ]
    if missing:
        raise data_error(p, "fund_pay_types", f"lacks {missing}", f"基金支付类型缺少 {missing}", error=ConfigError)
    return cfg


@lru_cache(maxsize=1)
def default_config() -> InterfaceConfig:
    return load_config()
