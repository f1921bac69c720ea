"""Console pages contributed by a subsystem, one module per page group.

Each module in this package defines ``mount(console, router, guarded)``: it adds its routes to the console's
router (prefix ``/console``), checks the role with ``console.need(request, "<page>")`` and renders its own
templates (``yibao/web/templates/console/<page>*.html``) with ``console.render``.  The page names a role may
open are listed in ``yibao/data/web/console.yaml``.  Modules are found here, so a new page group needs a new
module, not an edit of ``console.py``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any


def mount_all(console: Any, router: Any, guarded: Callable) -> list[str]:
    """Mount every page module in this package in name order; returns the modules mounted."""
    mounted: list[str] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        mount = getattr(module, "mount", None)
        if callable(mount):
            mount(console, router, guarded)
            mounted.append(info.name)
    return mounted
