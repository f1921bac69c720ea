"""Benefit policy: dated YAML files resolved to validated snapshots.

>>> book = PolicyBook.default()
>>> snap = book.snapshot("990100", datetime.date(2025, 6, 1))
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from yibao.benefits.loader import POLICY_DIR, POLICY_SUFFIXES, change_dates, load_raw, resolve
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


POLICY_DIR_ENV = "YIBAO_POLICY_DIR"
"""Environment variable with extra policy directories (``os.pathsep``-separated), as ``--policy-dir``."""


class Policy:
    """One pooling region's policy over time (a file and its parents)."""

    def __init__(
        self,
        name_or_path: str | Path,
        search_dir: Path | None = None,
        *,
        search_dirs: Sequence[Path] = (),
        own_dir_first: bool = True,
    ):
        self.raw, self.chain = load_raw(name_or_path, search_dir, search_dirs=search_dirs, own_dir_first=own_dir_first)
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
                err = _describe(exc, self.file)
                if self._dates and on < self._dates[0]:  # before the file's first effective date
                    first = self._dates[0]
                    raise PolicyError(
                        f"{self.file}: no complete policy in force on {on}: its dated parameters start on {first} "
                        f"(use a date from {first}); details: {err.message_en}",
                        f"{self.file}: {on} 无完整有效的待遇政策, 其参数自 {first} 起生效",
                        field=err.field,
                    ) from None
                raise err from None
            self._cache[key] = snap
        return snap

    def check_dates(self) -> list[dt.date]:
        """The dates :meth:`validate_all` checks: every change date, or today for an undated file."""
        return self._dates or [dt.date.today()]

    def validate_all(self, national: bool = False) -> list:
        """Validate the snapshot at every change date (and the earliest one).

        With ``national``, also check the national floors and ceilings
        (:mod:`yibao.benefits.national`): a breach raises :class:`PolicyError`
        naming the floor and its source; targets missed come back as warnings.
        """
        from yibao.benefits.national import check_policy

        for d in self.check_dates():
            self.snapshot(d)
        return check_policy(self) if national else []

    def segments(self, start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date, PolicySnapshot]]:
        """Half-open date ranges [a, b) within [start, end] with one snapshot each."""
        cuts = [start] + [d for d in self._dates if start < d <= end] + [end + dt.timedelta(days=1)]
        return [(a, b, self.snapshot(a)) for a, b in itertools.pairwise(cuts)]


def _policy_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in POLICY_SUFFIXES)


def policy_dirs_from_env() -> tuple[Path, ...]:
    """Extra policy directories named by ``$YIBAO_POLICY_DIR`` (empty if unset)."""
    value = os.environ.get(POLICY_DIR_ENV, "")
    return tuple(Path(x) for x in value.split(os.pathsep) if x.strip())


class PolicyBook:
    """All policy files of a directory (plus any ``extra_dirs``), by region code and by name.

    ``extra_dirs`` (``--policy-dir``) add files to the package's directory; a
    file there with the same name as a shipped one replaces it, also as a
    parent.  Parents named by ``inherits`` resolve from the extra directories
    (the last one first), then ``directory``, then the child's own directory.

    :meth:`require` is the strict lookup for a policy or region someone typed
    (unknown → :class:`PolicyError` listing the known ones); :meth:`policy`
    keeps the engine's lenient lookup (unknown region → national default).
    """

    def __init__(
        self, directory: Path = POLICY_DIR, default: str = "national-default", extra_dirs: Sequence[Path] = ()
    ):
        self.directory = Path(directory)
        self.extra_dirs = tuple(Path(d) for d in extra_dirs)
        self.default_name = default
        self.by_region: dict[str, Policy] = {}
        self.by_name: dict[str, Policy] = {}
        self.paths: dict[str, Path] = {}
        for d in (self.directory, *self.extra_dirs):
            if not d.is_dir():
                opt = "--policy-dir " if d in self.extra_dirs else ""
                raise PolicyError(
                    f"{opt}{d}: not a directory of policy files",
                    f"{opt}{d}: 不是待遇政策文件目录",
                    field="policy_dir",
                )
        search = [*reversed(self.extra_dirs), self.directory]
        files: dict[str, Path] = {}
        for d in (self.directory, *self.extra_dirs):  # later directories replace earlier ones' files
            for path in _policy_files(d):
                files[path.stem] = path
        for stem in sorted(files):
            path = files[stem]
            pol = Policy(path, search_dirs=search, own_dir_first=False)  # parents are the book's files
            self.by_name[stem] = pol
            self.paths[stem] = path
            if pol.region and stem != default:
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
    def default(cls) -> PolicyBook:
        """The shipped policies plus any directories in ``$YIBAO_POLICY_DIR`` (cached per value)."""
        return cls._cached(policy_dirs_from_env())

    @classmethod
    @functools.cache
    def _cached(cls, extra_dirs: tuple[Path, ...]) -> PolicyBook:
        return cls(extra_dirs=extra_dirs)

    @classmethod
    def with_dirs(cls, policy_dirs: Sequence[Path] | None) -> PolicyBook:
        """The book for ``--policy-dir`` options: the shipped one (and env) if none given."""
        if not policy_dirs:
            return cls.default()
        return cls(extra_dirs=tuple(policy_dirs))

    def known(self) -> list[str]:
        """``name (region)`` for every policy, for messages."""
        return [f"{name} ({pol.region})" if pol.region else name for name, pol in sorted(self.by_name.items())]

    def require(self, region_or_name: str) -> Policy:
        """The policy for a file name or region code; unknown → :class:`PolicyError` listing the known ones."""
        key = str(region_or_name).strip()
        if key in self.by_name:
            return self.by_name[key]
        if key in self.by_region:
            return self.by_region[key]
        default = self.by_name[self.default_name]
        if key and key == default.region:
            return default
        known = ", ".join(self.known())
        raise PolicyError(
            f"unknown policy or region {key!r}; known: {known} (add a city with a file in --policy-dir)",
            f"未知的待遇政策或医保区划 {key!r}; 已有: {known}",
            field="policy",
        )

    def policy(self, region_or_name: str) -> Policy:
        """The policy for a region code (falls back to the national default) or by file name."""
        if region_or_name in self.by_name:
            return self.by_name[region_or_name]
        return self.by_region.get(region_or_name, self.by_name[self.default_name])

    def snapshot(self, region_or_name: str, on: dt.date) -> PolicySnapshot:
        return self.policy(region_or_name).snapshot(on)

    def validate_all(self, national: bool = False) -> dict[str, list]:
        """Validate every policy; with ``national`` also the national floors (warnings by policy name)."""
        return {name: pol.validate_all(national=national) for name, pol in self.by_name.items()}
