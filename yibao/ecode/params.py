"""E-code parameters (yibao/data/ecode/ecode.yaml, places.csv), validated with clear errors."""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from yibao.core.errors import YibaoError
from yibao.core.yamldata import read_yaml, validate

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "ecode"


class EcodeConfigError(YibaoError):
    code = "E_ECODE_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenParams(_Strict):
    ttl_seconds: int = Field(gt=0, le=3600)
    max_skew_seconds: int = Field(ge=0, le=300)
    algorithm: Literal["hmac-sm3", "hmac-sha256", "sm2"]
    prefix: str = Field(pattern=r"^[A-Z0-9]{2,8}$")
    single_flow: bool = True


class BindingParams(_Strict):
    verifier: str
    max_relatives: int = Field(ge=0)
    relations: tuple[Literal["spouse", "parent", "child"], ...]


class RiskParams(_Strict):
    min_distance_km: float = Field(gt=0)
    window_minutes: int = Field(gt=0)
    max_speed_kmh: float = Field(gt=0)
    burst_uses: int = Field(gt=0)
    burst_window_minutes: int = Field(gt=0)
    actions: tuple[Literal["block", "unbind", "report"], ...]


class UsageLogParams(_Strict):
    flush_ms: int = Field(ge=0, le=5000)
    max_batch: int = Field(gt=0)


class EcodeParams(_Strict):
    version: int
    token: TokenParams
    binding: BindingParams
    risk: RiskParams
    usage_log: UsageLogParams = UsageLogParams(flush_ms=0, max_batch=1000)
    places: dict[str, tuple[float, float]] = Field(default_factory=dict)


def _places(path: Path) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    text = "".join(
        line for line in path.read_text(encoding="utf-8").splitlines(keepends=True) if not line.startswith("#")
    )
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        code = (row.get("admdvs") or "").strip()
        try:
            lat, lon = float(row["lat"]), float(row["lon"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EcodeConfigError(
                f"{path}: row {n} ({code}): lat/lon must be numbers",
                f"{path}: 第 {n} 行 ({code}): 经纬度必须为数字",
                field="lat",
            ) from exc
        if len(code) != 6 or not code.isdigit() or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise EcodeConfigError(
                f"{path}: row {n}: bad admdvs {code!r} or coordinates out of range",
                f"{path}: 第 {n} 行: 区划 {code!r} 或经纬度无效",
                field="admdvs",
            )
        out[code] = (lat, lon)
    return out


def load_params(directory: str | Path | None = None) -> EcodeParams:
    d = Path(directory) if directory else DATA_DIR
    p = d / "ecode.yaml"
    what = ("e-code parameters", "医保电子凭证参数")
    raw = read_yaml(p, what=what, error=EcodeConfigError)
    if (d / "places.csv").exists():
        raw = {**raw, "places": _places(d / "places.csv")}
    return validate(p, EcodeParams, raw, what=what, error=EcodeConfigError)


@lru_cache(maxsize=1)
def default_params() -> EcodeParams:
    return load_params()
