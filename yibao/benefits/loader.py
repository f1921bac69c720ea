"""Load benefit-policy files: dated parameters, inheritance, validation.

A policy file is YAML.  Any leaf may be a plain value (in force always) or a
mapping ``{effective_date: value}`` (in force from that date until the next
one), as in OpenFisca's parameter files.  A file may name a parent with
``inherits:``; its keys override the parent's, key by key (level tables with
``all`` follow the precedence in ``yibao/data/policies/README.md``).

Errors never pass silently: each names the file, the key path and the
reason (:class:`yibao.core.errors.PolicyError`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yibao.core.errors import PolicyError
from yibao.core.yamldata import read_yaml

POLICY_DIR = Path(__file__).resolve().parent.parent / "data" / "policies"


def _is_dated(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(k, dt.date) for k in value)


def _check_dated(value: dict, where: str, file: str) -> None:
    keys = list(value)
    if any(isinstance(k, dt.datetime) for k in keys):
        raise PolicyError(
            f"{file}: {where}: effective dates must be plain dates (YYYY-MM-DD), not timestamps",
            f"{file}: {where}: 生效日期必须为日期 (YYYY-MM-DD)",
            field=where,
        )
    if keys != sorted(keys):
        raise PolicyError(
            f"{file}: {where}: effective dates must be in ascending order, got {[str(k) for k in keys]}",
            f"{file}: {where}: 生效日期必须按升序排列",
            field=where,
        )


def read_policy_file(path: Path) -> dict:
    """Parse one YAML file into a dict, with a clear error on bad YAML."""
    return read_yaml(path, what=("policy file", "待遇政策文件"), error=PolicyError)


LEVEL_KEYS = frozenset({"all", "level_0", "level_1", "level_2", "level_3"})


def _is_level_table(value: Any) -> bool:
    """A mapping by institution level (``all``, ``level_0`` … ``level_3``)."""
    return isinstance(value, dict) and bool(value) and set(value) <= LEVEL_KEYS


def _merge(parent: Any, child: Any) -> Any:
    """Child overrides parent key by key; dated leaves and lists are replaced whole.

    Level tables (``ratio``, ``deductible`` …) follow the documented precedence
    (``yibao/data/policies/README.md``): a child table with ``all`` replaces the
    parent's table whole, so ``{all: 0.50}`` sets every level; the child's own
    ``level_N`` keys then override its ``all``.  A child table without ``all``
    overrides only the levels it names.
    """
    if _is_level_table(child) and "all" in child and (_is_level_table(parent) or not isinstance(parent, dict)):
        return dict(child)
    if isinstance(parent, dict) and isinstance(child, dict) and not _is_dated(child) and not _is_dated(parent):
        out = dict(parent)
        for k, v in child.items():
            out[k] = _merge(parent[k], v) if k in parent else v
        return out
    return child


POLICY_SUFFIXES = (".yaml", ".yml")


def _looks_like_path(name_or_path: str | Path) -> bool:
    if isinstance(name_or_path, Path):
        return True
    text = str(name_or_path)
    return "/" in text or "\\" in text or text.endswith(POLICY_SUFFIXES)


def find_policy(name: str, dirs: Sequence[Path]) -> Path | None:
    """The first ``name.yaml`` (or ``.yml``) in ``dirs``, in order."""
    for d in dirs:
        for suffix in POLICY_SUFFIXES:
            candidate = Path(d) / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _dedupe(dirs: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        d = Path(d)
        if d.resolve() not in [x.resolve() for x in out]:
            out.append(d)
    return out


def policy_path(name_or_path: str | Path, dirs: Sequence[Path]) -> Path:
    """The file behind a policy name or path; a clear error if there is none or it is not YAML."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if path.suffix.lower() not in POLICY_SUFFIXES:
            if path.is_dir():
                raise PolicyError(
                    f"{path}: is a directory, not a policy file (give a .yaml file)",
                    f"{path}: 是目录, 不是待遇政策文件",
                )
            raise PolicyError(
                f"{path}: not a policy file (policy files are YAML ending in .yaml or .yml)",
                f"{path}: 不是待遇政策文件 (政策文件为 .yaml 或 .yml)",
            )
        if not path.is_file():
            raise PolicyError(f"{path}: policy file not found", f"{path}: 找不到待遇政策文件")
        return path
    found = find_policy(str(name_or_path), dirs)
    if found is None:
        looked = ", ".join(str(d) for d in dirs)
        raise PolicyError(
            f"policy {str(name_or_path)!r} not found (looked for {name_or_path}.yaml in {looked})",
            f"找不到待遇政策 {str(name_or_path)!r} (查找目录: {looked})",
        )
    return found


def load_raw(
    name_or_path: str | Path,
    search_dir: Path | None = None,
    _seen: tuple = (),
    *,
    search_dirs: Sequence[Path] = (),
    own_dir_first: bool = True,
) -> tuple[dict, list[str]]:
    """Load a policy by name (``national-default``) or path, following ``inherits``.

        A name is looked up in ``search_dir`` (if given), then ``search_dirs``, then
        the package's policy directory.  A parent named by ``inherits`` is looked up
        in the child's own directory first, then in the same places, so a city file
        kept outside the package still finds ``national-default``.  A
    :class:`~yibao.benefits.policy.PolicyBook` passes ``own_dir_first=False`` so
    that parents resolve to the book's own files (a ``--policy-dir`` file
    replacing a shipped one replaces it as a parent too).

        Returns the merged raw dict and the chain of files it came from.
    """
    dirs = _dedupe(([search_dir] if search_dir else []) + list(search_dirs) + [POLICY_DIR])
    path = policy_path(name_or_path, dirs)
    key = str(path.resolve())
    if key in _seen:
        names = [Path(s).name for s in _seen]
        raise PolicyError(f"{path.name}: inheritance cycle through {names}", f"{path.name}: 继承关系出现循环")
    data = read_policy_file(path)
    parent_name = data.get("inherits")
    chain = [path.name]
    if parent_name:
        parent_dirs = _dedupe(([path.parent] if own_dir_first else []) + dirs + [path.parent])
        parent_text = str(parent_name)
        if _looks_like_path(parent_text):
            parent_path = Path(parent_text) if Path(parent_text).is_absolute() else path.parent / parent_text
            found = parent_path if parent_path.is_file() else None
        else:
            found = find_policy(parent_text, parent_dirs)
        if found is None:
            looked = ", ".join(str(d) for d in parent_dirs)
            raise PolicyError(
                f"{path}: key 'inherits': parent policy {parent_text!r} not found (looked in {looked})",
                f"{path}: 键 'inherits': 找不到上级政策文件 {parent_text!r} (查找目录: {looked})",
                field="inherits",
            )
        rest = parent_dirs[1:] if own_dir_first else parent_dirs
        parent, parent_chain = load_raw(found, None, _seen + (key,), search_dirs=rest, own_dir_first=own_dir_first)
        data = _merge(parent, {k: v for k, v in data.items() if k != "inherits"})
        chain = parent_chain + chain
    return data, chain


def change_dates(raw: Any) -> set[dt.date]:
    """Every effective date that appears anywhere in a raw policy tree."""
    out: set[dt.date] = set()
    if _is_dated(raw):
        out.update(raw.keys())
        for v in raw.values():
            out |= change_dates(v)
    elif isinstance(raw, dict):
        for v in raw.values():
            out |= change_dates(v)
    elif isinstance(raw, list):
        for v in raw:
            out |= change_dates(v)
    return out


_NOT_YET = object()


def resolve(raw: Any, on: dt.date, file: str, where: str = "") -> Any:
    """The value of every dated leaf on date ``on`` (a plain tree comes back)."""
    if _is_dated(raw):
        _check_dated(raw, where, file)
        value: Any = _NOT_YET
        for start, v in raw.items():
            if start <= on:
                value = v
        if value is _NOT_YET:
            return _NOT_YET
        return resolve(value, on, file, where)
    if isinstance(raw, dict):
        out = {}
        for k, v in raw.items():
            r = resolve(v, on, file, f"{where}.{k}" if where else str(k))
            if r is not _NOT_YET:
                out[k] = r
        return out
    if isinstance(raw, list):
        return [resolve(v, on, file, f"{where}[{i}]") for i, v in enumerate(raw)]
    return raw
