"""FastAPI dependencies of the console: the console object, the signed-in user allowed on a page, CSRF-checked forms.

A refusal raises :class:`yibao.web.console.Deny`; the handler :func:`yibao.web.console.mount_console` registers turns it
into a redirect to the login page, a JSON error (``/console/api/…``) or an error page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from yibao.web.auth import Principal

if TYPE_CHECKING:
    from yibao.web.console import Console


def get_console(request: Request) -> Console:
    """The console mounted on this app (``app.state.console``)."""
    return request.app.state.console


@functools.cache
def page(name: str | None = None, *, api: bool = False) -> Callable[[Request], Principal]:
    """A dependency giving the signed-in user, refused unless their role may open ``name`` (any page when None)."""

    def need(request: Request) -> Principal:
        return get_console(request).need(request, name, api=api)

    need.__name__ = f"need_{name or 'login'}{'_api' if api else ''}"
    return need


def csrf_header(request: Request) -> None:
    """A script's POST: the page's CSRF token in the ``X-CSRF-Token`` header."""
    get_console(request).check_csrf(request)


async def csrf_form(request: Request) -> dict[str, str]:
    """A form POST: the page's CSRF token checked; the other fields, stripped, without the empty ones."""
    from yibao.web.console import CSRF_FIELD

    form = await request.form()
    fields = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
    get_console(request).check_csrf(request, fields.get(CSRF_FIELD, ""))
    return {k: v for k, v in fields.items() if v and k != CSRF_FIELD}


FormDep = Annotated[dict[str, str], Depends(csrf_form)]
