"""Console pages contributed by a subsystem, one module per page group.

Each module in this package defines ``router`` (a FastAPI ``APIRouter``; paths relative to ``/console``) whose
endpoints take the console with ``c: ConsoleDep`` and the signed-in user with
``p: Annotated[Principal, Depends(page("<page>"))]`` (:mod:`yibao.web.deps`; a refusal becomes a redirect, a JSON
error or an error page), POST forms with ``form: FormDep`` (CSRF checked), and render their own templates
(``yibao/web/templates/console/<page>*.html``) with ``c.render``.  The page names a role may open are listed in
``yibao/data/web/console.yaml``.  Modules are found here, so a new page group needs a new module, not an edit of
``console.py``.  (A module may instead define ``mount(console, router, guarded)``, the older form.)
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any


def _unguarded(fn: Callable) -> Callable:
    return fn  # refusals are handled by the app's exception handler now


def mount_all(console: Any, router: Any) -> list[str]:
    """Include every page module's router in name order; returns the modules mounted."""
    mounted: list[str] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if getattr(module, "router", None) is not None:
            router.include_router(module.router)
        elif callable(getattr(module, "mount", None)):
            module.mount(console, router, _unguarded)
        else:
            continue
        mounted.append(info.name)
    return mounted
