"""Benefit policy: dated YAML files resolved to validated snapshots.

>>> book = PolicyBook.default()
>>> snap = book.snapshot("990100", datetime.date(2025, 6, 1))
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

from pydantic import ValidationError

from yibao.benefits.loader import POLICY_DIR, change_dates, load_raw, resolve
from yibao.benefits.model import PolicySnapshot
from yibao.core.errors import PolicyError


def _describe(exc: ValidationError, file: str) -> PolicyError:
    lines_en, lines_zh = [], []
    first_loc = None
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        loc = loc or "(top level)"
        first_loc = first_loc or loc
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key (misspelt?)"
        lines_en.append(f"{file}: {loc}: {msg}")
        lines_zh.append(f"{file}: {loc}: {msg}")
    return PolicyError("; ".join(lines_en), "待遇政策文件校验失败: " + "; ".join(lines_zh), field=first_loc)


class Policy:
    """One pooling region's policy over time (a file and its parents)."""

    def __init__(self, name_or_path: str | Path, search_dir: Path | None = None):
        self.raw, self.chain = load_raw(name_or_path, search_dir)
        self.file = self.chain[-1]
        self.name = str(self.raw.get("policy", Path(self.file).stem))
        self.region = str(self.raw.get("region", ""))
        self._dates = sorted(change_dates(self.raw))
        self._cache: dict[dt.date, PolicySnapshot] = {}

    def change_dates(self) -> list[dt.date]:
        """Every date on which some parameter changes."""
        return list(self._dates)

    def _segment_start(self, on: dt.date) -> dt.date:
        start = dt.date.min
        for d in self._dates:
            if d <= on:
                start = d
        return start

    def snapshot(self, on: dt.date) -> PolicySnapshot:
        """The validated policy in force on ``on``."""
        key = self._segment_start(on)
        snap = self._cache.get(key)
        if snap is None:
            tree = resolve(self.raw, on, self.file)
            tree.pop("inherits", None)
            try:
                snap = PolicySnapshot.model_validate(tree)
            except ValidationError as exc:
                raise _describe(exc, self.file) from None
            self._cache[key] = snap
        return snap

    def validate_all(self) -> None:
        """Validate the snapshot at every change date (and the earliest one)."""
        for d in self._dates or [dt.date.today()]:
            self.snapshot(d)

    def segments(self, start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date, PolicySnapshot]]:
        """Half-open date ranges [a, b) within [start, end] with one snapshot each."""
        cuts = [start] + [d for d in self._dates if start < d <= end] + [end + dt.timedelta(days=1)]
        return [(a, b, self.snapshot(a)) for a, b in zip(cuts, cuts[1:])]


class PolicyBook:
    """All policy files of a directory, by region code; national default as fallback."""

    def __init__(self, directory: Path = POLICY_DIR, default: str = "national-default"):
        self.directory = directory
        self.default_name = default
        self.by_region: dict[str, Policy] = {}
        self.by_name: dict[str, Policy] = {}
        for path in sorted(directory.glob("*.yaml")):
            pol = Policy(path)
            self.by_name[path.stem] = pol
            if pol.region and path.stem != default:
                if pol.region in self.by_region:
                    raise PolicyError(
                        f"{path.name}: region {pol.region} already defined by {self.by_region[pol.region].file}",
                        f"{path.name}: 医保区划 {pol.region} 重复定义",
                        field="region",
                    )
                self.by_region[pol.region] = pol
        if default not in self.by_name:
            raise PolicyError(f"{directory}: no {default}.yaml", f"{directory}: 缺少 {default}.yaml")

    @classmethod
    @functools.cache
    def default(cls) -> "PolicyBook":
        return cls()

    def policy(self, region_or_name: str) -> Policy:
        """The policy for a region code (falls back to the national default) or by file name."""
        if region_or_name in self.by_name:
            return self.by_name[region_or_name]
        return self.by_region.get(region_or_name, self.by_name[self.default_name])

    def snapshot(self, region_or_name: str, on: dt.date) -> PolicySnapshot:
        return self.policy(region_or_name).snapshot(on)

    def validate_all(self) -> None:
        for pol in self.by_name.values():
            pol.validate_all()
