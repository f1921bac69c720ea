"""Load benefit-policy files: dated parameters, inheritance, validation.

A policy file is YAML.  Any leaf may be a plain value (in force always) or a
mapping ``{effective_date: value}`` (in force from that date until the next
one), as in OpenFisca's parameter files.  A file may name a parent with
``inherits:``; its keys override the parent's, key by key.

Errors never pass silently: each names the file, the key path and the
reason (:class:`yibao.core.errors.PolicyError`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from yibao.core.errors import PolicyError
from yibao.core.yamldata import load_decimal_yaml

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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PolicyError(f"{path}: policy file not found", f"{path}: 找不到待遇政策文件") from exc
    try:
        data = load_decimal_yaml(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path.name}: not valid YAML: {exc}", f"{path.name}: YAML 格式错误: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path.name}: top level must be a mapping", f"{path.name}: 顶层必须是映射")
    return data


def _merge(parent: Any, child: Any) -> Any:
    """Child overrides parent key by key; dated leaves and lists are replaced whole."""
    if isinstance(parent, dict) and isinstance(child, dict) and not _is_dated(child) and not _is_dated(parent):
        out = dict(parent)
        for k, v in child.items():
            out[k] = _merge(parent[k], v) if k in parent else v
        return out
    return child


def load_raw(name_or_path: str | Path, search_dir: Path | None = None, _seen: tuple = ()) -> tuple[dict, list[str]]:
    """Load a policy by name (``national-default``) or path, following ``inherits``.

    Returns the merged raw dict and the chain of files it came from.
    """
    search_dir = search_dir or POLICY_DIR
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = search_dir / f"{name_or_path}.yaml"
    if path.name in _seen:
        raise PolicyError(f"{path.name}: inheritance cycle through {list(_seen)}", f"{path.name}: 继承关系出现循环")
    data = read_policy_file(path)
    parent_name = data.get("inherits")
    chain = [path.name]
    if parent_name:
        parent_path = Path(parent_name) if Path(str(parent_name)).suffix in (".yaml", ".yml") else path.parent / f"{parent_name}.yaml"
        if not parent_path.exists() and path.name not in _seen:
            raise PolicyError(
                f"{path}: key 'inherits': parent policy {parent_name!r} not found (looked for {parent_path})",
                f"{path}: 键 'inherits': 找不到上级政策文件 {parent_name!r}",
            )
        parent, parent_chain = load_raw(parent_name, path.parent, _seen + (path.name,))
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
