"""Anomaly rules over the uses of one person's e-code (多因子异常检测), pure.

Two factors, both parameters in ``ecode.yaml`` (``risk``):

* **impossible travel**: the code used in two places farther apart than
  ``min_distance_km`` within ``window_minutes``, at an implied speed above
  ``max_speed_kmh``;
* **burst**: more than ``burst_uses`` uses within ``burst_window_minutes``
  (a leaked or shared code).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

from yibao.core.contract import city_part, province_code
from yibao.ecode.params import RiskParams


@dataclass(frozen=True)
class Use:
    time: dt.datetime
    admdvs: str
    fixmedins_code: str = ""


@dataclass(frozen=True)
class Anomaly:
    kind: str  # impossible_travel | burst
    detail_en: str
    detail_zh: str
    evidence: dict


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, h)))


def place_of(admdvs: str, places: dict[str, tuple[float, float]]) -> tuple[float, float] | None:
    """Coordinates of a division, else of its city (xxxx00), else of its province (xx0000)."""
    for code in (admdvs, city_part(admdvs), province_code(admdvs)):
        if code in places:
            return places[code]
    return None


def detect(
    new: Use, recent: Iterable[Use], params: RiskParams, places: dict[str, tuple[float, float]]
) -> list[Anomaly]:
    out: list[Anomaly] = []
    here = place_of(new.admdvs, places) if new.admdvs else None
    window = dt.timedelta(minutes=params.window_minutes)
    burst = dt.timedelta(minutes=params.burst_window_minutes)
    n_burst = 1
    travel: Anomaly | None = None
    for u in recent:
        gap = abs((new.time - u.time).total_seconds())
        if gap <= burst.total_seconds():
            n_burst += 1
        if travel is None and here is not None and u.admdvs and gap <= window.total_seconds():
            there = place_of(u.admdvs, places)
            if there is None:
                continue
            km = haversine_km(here, there)
            speed = km / max(gap / 3600.0, 1e-9)
            if km > params.min_distance_km and speed > params.max_speed_kmh:
                travel = Anomaly(
                    "impossible_travel",
                    f"used in {u.admdvs} and {new.admdvs}, {km:.0f} km apart, {gap / 60:.1f} min between "
                    f"(≈{min(speed, 99999):.0f} km/h)",
                    f"{gap / 60:.1f} 分钟内先后在 {u.admdvs} 与 {new.admdvs} 使用, 相距 {km:.0f} 公里",
                    {
                        "from": u.admdvs,
                        "to": new.admdvs,
                        "from_fixmedins_code": u.fixmedins_code,
                        "to_fixmedins_code": new.fixmedins_code,
                        "km": round(km, 1),
                        "minutes": round(gap / 60, 2),
                    },
                )
    if travel:
        out.append(travel)
    if n_burst > params.burst_uses:
        out.append(
            Anomaly(
                "burst",
                f"{n_burst} uses within {params.burst_window_minutes} min",
                f"{params.burst_window_minutes} 分钟内使用 {n_burst} 次",
                {"uses": n_burst},
            )
        )
    return out
