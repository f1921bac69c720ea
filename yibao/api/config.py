"""Interface parameters (yibao/data/api/interface.yaml), validated.

Code holds only mechanics; codes, time limits and the fund-type table are data.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.core.errors import YibaoError

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "api" / "interface.yaml"


class ConfigError(YibaoError):
    code = "E_API_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InterfaceParams(_Strict):
    accepted_infver: tuple[str, ...]
    sign_no_ttl_minutes: int = Field(gt=0)
    max_feedetail_lines: int = Field(gt=0)
    cnt_decimals: int = Field(ge=0, le=3)
    money_decimals: int = Field(ge=0, le=2)
    pric_decimals: int = Field(ge=0, le=2)


class MaskRule(_Strict):
    keep_start: int = Field(ge=0)
    keep_end: int = Field(ge=0)


class FundType(_Strict):
    employee: tuple[str, str]
    resident: tuple[str, str]


class InterfaceConfig(_Strict):
    interface: InterfaceParams
    mdtrt_cert_types: dict[str, str]
    psn_type_codes: dict[str, str]
    psn_idet_types: dict[str, str]
    clr_types: dict[str, str]
    clr_way: str
    fund_pay_types: dict[str, FundType]
    masking: dict[str, MaskRule]

    def fund_type(self, fld: str, insutype: str) -> tuple[str, str]:
        ft = self.fund_pay_types[fld]
        return ft.employee if insutype.startswith("3") and insutype < "390" else ft.resident


def load_config(path: str | Path | None = None) -> InterfaceConfig:
    p = Path(path) if path else DEFAULT_PATH
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p}: cannot read interface parameters: {exc}", f"{p}: 无法读取接口参数: {exc}") from exc
    try:
        cfg = InterfaceConfig.model_validate(raw)
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(x) for x in e["loc"])
        raise ConfigError(f"{p}: {loc}: {e['msg']}", f"{p}: 参数 {loc} 无效: {e['msg']}", field=loc) from exc
    from yibao.settlement.rules import Settlement

    missing = [f for f in Settlement.AMOUNTS if f.endswith("_pay") and f not in ("psn_cash_pay",) and f not in cfg.fund_pay_types]
    if missing:
        raise ConfigError(f"{p}: fund_pay_types lacks {missing}", f"{p}: 基金支付类型缺少 {missing}", field="fund_pay_types")
    return cfg


@lru_cache(maxsize=1)
def default_config() -> InterfaceConfig:
    return load_config()
