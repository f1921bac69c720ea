"""医保区划 (medical-insurance divisions): 6-digit codes.

The shipped ``divisions.csv`` holds the SYNTHETIC home pooling region
``990100`` ("99" is not a real province) with districts ``990101..990105``,
and a few real GB/T 2260 codes used as cross-province places of treatment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from yibao.codes._table import data_path, parse_bool, read_csv, table_error
from yibao.core.contract import province_part
from yibao.core.errors import CodeTableError

LEVELS = ("province", "city", "district")
_ADMDVS_RE = re.compile(r"^[0-9]{6}$")

HOME_REGION = "990100"
"""The synthetic pooling region used by :mod:`yibao.synth`."""


def is_admdvs(code: object) -> bool:
    """True if ``code`` is a well-formed 6-digit division code."""
    return isinstance(code, str) and bool(_ADMDVS_RE.match(code))


def _check(code: object) -> str:
    if not is_admdvs(code):
        raise CodeTableError(
            f"not a 6-digit division code: {code!r}", f"医保区划编码须为 6 位数字: {code!r}", field="admdvs"
        )
    return code  # type: ignore[return-value]


def province_of(code: str) -> str:
    """The province part of a division code: its first 2 digits (``'320500'`` → ``'32'``)."""
    return province_part(_check(code))


def is_cross_province(a: str, b: str) -> bool:
    """True when two divisions lie in different provinces (跨省)."""
    return province_of(a) != province_of(b)


@dataclass(frozen=True, slots=True)
class Division:
    admdvs: str
    name: str
    level: str
    parent: str
    synthetic: bool


class Divisions:
    """The division table: lookup by code, and the places of treatment for synth."""

    def __init__(self, rows: dict[str, Division]):
        self.rows = rows

    def __contains__(self, code: object) -> bool:
        return code in self.rows

    def __getitem__(self, code: str) -> Division:
        try:
            return self.rows[code]
        except KeyError:
            raise CodeTableError(f"unknown division {code!r}", f"未知的医保区划 {code!r}", field="admdvs") from None

    def __len__(self) -> int:
        return len(self.rows)

    def name_of(self, code: str) -> str:
        return self[code].name

    def children(self, code: str) -> list[str]:
        return [d.admdvs for d in self.rows.values() if d.parent == code]

    def districts(self, region: str) -> list[str]:
        """District codes under a region (sorted); the region itself if it has none."""
        kids = sorted(self.children(region))
        return kids or [region]

    def treatment_places(self) -> list[str]:
        """Real (non-synthetic) divisions without children in the table: cities and municipalities."""
        parents = {d.parent for d in self.rows.values()}
        return sorted(d.admdvs for d in self.rows.values() if not d.synthetic and d.admdvs not in parents)


def load_divisions(path: str | Path | None = None) -> Divisions:
    """Load and validate ``divisions.csv`` (default: the shipped one)."""
    path = Path(path) if path else data_path("divisions.csv")
    rows: dict[str, Division] = {}
    lines: dict[str, int] = {}
    for line, r in read_csv(path, ("admdvs", "name", "level", "parent", "synthetic")):
        code = r["admdvs"]
        key = f"admdvs={code!r}"
        if not is_admdvs(code):
            raise table_error(
                path,
                f"division code {code!r} must be 6 digits",
                "医保区划编码须为 6 位数字",
                line=line,
                key=key,
                field="admdvs",
            )
        if code in rows:
            raise table_error(
                path, f"duplicate code, first on line {lines[code]}", "编码重复", line=line, key=key, field="admdvs"
            )
        if not r["name"]:
            raise table_error(path, "name is empty", "名称为空", line=line, key=key, field="name")
        if r["level"] not in LEVELS:
            raise table_error(
                path, f"level {r['level']!r} is not one of {LEVELS}", "层级无效", line=line, key=key, field="level"
            )
        if r["parent"] and not is_admdvs(r["parent"]):
            raise table_error(
                path,
                f"parent {r['parent']!r} must be '' or 6 digits",
                "上级编码无效",
                line=line,
                key=key,
                field="parent",
            )
        if r["parent"] and province_part(r["parent"]) != province_part(code):
            raise table_error(
                path,
                f"parent {r['parent']} lies in another province",
                "上级区划不在同一省",
                line=line,
                key=key,
                field="parent",
            )
        syn = parse_bool(r["synthetic"])
        if syn is None:
            raise table_error(
                path,
                f"synthetic {r['synthetic']!r} must be true or false",
                "须为 true 或 false",
                line=line,
                key=key,
                field="synthetic",
            )
        rows[code] = Division(code, r["name"], r["level"], r["parent"], syn)
        lines[code] = line
    for code, d in rows.items():
        if d.parent and d.parent not in rows:
            raise table_error(
                path,
                f"parent {d.parent} is not in the table",
                "上级区划不存在",
                line=lines[code],
                key=f"admdvs={code!r}",
                field="parent",
            )
    return Divisions(rows)
