"""Views of the other subsystems (procurement, payment, supervision) for the console.

Each adapter reads what that subsystem persists or exposes.  When a
subsystem does not (yet) provide its data, the page says so plainly and
shows no figures: nothing here is invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from yibao.web.auth import Principal


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class View:
    title_zh: str
    title_en: str
    available: bool
    note_zh: str = ""
    note_en: str = ""
    charts: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    synthetic: bool = True


ADAPTERS: dict[str, Any] = {}


def view(name: str, engine: Engine, p: Principal, lang: str) -> View:
    fn = ADAPTERS.get(name)
    if fn is None:
        return View(name, name, False)
    try:
        return fn(engine, p, lang)
    except ImportError as exc:
        return View(name, name, False, note_zh=f"子系统未安装: {exc}", note_en=f"subsystem not available: {exc}")
