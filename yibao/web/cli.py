"""``yibao console …``: console users, and the e-insurance code's risk actions from the command line."""

from __future__ import annotations

import os
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

from yibao.core.errors import YibaoError

app = typer.Typer(
    help="The web console (运行监测) and the e-insurance code (医保电子凭证). Serve it with `yibao serve`.",
    no_args_is_help=True,
)
console = Console()
DB = typer.Option(None, "--db", help="Database URL (default $YIBAO_DATABASE_URL or sqlite:///yibao.db).")


def _engine(db: str | None):
    from yibao.core.db import database_url, make_engine, upgrade

    url = database_url(db)
    upgrade(url)
    return make_engine(url)


def _fail(exc: YibaoError) -> NoReturn:
    from rich.markup import escape

    console.print(
        f"[red]{exc.code}[/] "
        + escape(f"{exc.message_en} / {exc.message_zh}" + (f" [field: {exc.field}]" if exc.field else ""))
    )
    raise typer.Exit(2)


@app.command("add-user")
def add_user(
    username: str = typer.Argument(...),
    role: str = typer.Option(..., "--role", help="bureau | institution | public"),
    fixmedins_code: str | None = typer.Option(None, "--institution", help="Institution staff: their fixmedins_code."),
    psn_no: str | None = typer.Option(None, "--psn-no", help="A member of the public: their psn_no."),
    name: str = typer.Option("", "--name", help="Display name."),
    password: str | None = typer.Option(None, "--password", help="Default: $YIBAO_CONSOLE_PASSWORD, else prompted."),
    db: str | None = DB,
) -> None:
    """Create or update a console user (the password is stored as an scrypt hash)."""
    from yibao.web.auth import AuthService

    pw = (
        password
        or os.environ.get("YIBAO_CONSOLE_PASSWORD")
        or typer.prompt("password", hide_input=True, confirmation_prompt=True)
    )
    try:
        AuthService(_engine(db)).add_user(
            username, pw, role, fixmedins_code=fixmedins_code, psn_no=psn_no, display_name=name
        )
    except YibaoError as exc:
        _fail(exc)
    console.print(f"user {username} ({role}) saved")


@app.command("users")
def users(db: str | None = DB) -> None:
    """List console users."""
    from sqlalchemy import select

    from yibao.core.db import session_scope
    from yibao.web.models import ConsoleUser

    t = Table(title="console users")
    for c in ("user", "role", "institution", "psn_no", "name"):
        t.add_column(c)
    with session_scope(_engine(db)) as s:
        for u in s.scalars(select(ConsoleUser).order_by(ConsoleUser.username)):
            t.add_row(u.username, u.role, u.fixmedins_code or "", u.psn_no or "", u.display_name)
    console.print(t)


@app.command("ecode-block")
def ecode_block(
    psn_no: str,
    reason: str = typer.Option("manual", "--reason"),
    actor: str = typer.Option("cli", "--actor"),
    unbind: bool = typer.Option(False, "--unbind", help="Also force unbinding."),
    db: str | None = DB,
) -> None:
    """Block a person's e-code generation (实时生码拦截), optionally force unbinding; recorded and reported."""
    from yibao.ecode.service import EcodeService

    try:
        svc = EcodeService(_engine(db))
        ids = [svc.block(psn_no, actor=actor, reason=reason)]
        if unbind:
            ids.append(svc.force_unbind(psn_no, actor=actor, reason=reason))
    except YibaoError as exc:
        _fail(exc)
    console.print(f"recorded risk event(s) {ids}")


@app.command("ecode-events")
def ecode_events(limit: int = typer.Option(30, "--limit"), db: str | None = DB) -> None:
    """Recent e-code risk events and their reports to the bureau."""
    from sqlalchemy import select

    from yibao.core.db import session_scope
    from yibao.ecode.models import EcodeRiskEvent

    t = Table(title="e-code risk events 医保码风险事件")
    for c in ("id", "time", "psn_no", "kind", "detail", "actions", "reported", "actor"):
        t.add_column(c)
    with session_scope(_engine(db)) as s:
        for e in s.scalars(select(EcodeRiskEvent).order_by(EcodeRiskEvent.id.desc()).limit(limit)):
            t.add_row(
                str(e.id),
                e.detected_at.strftime("%Y-%m-%d %H:%M:%S"),
                e.psn_no,
                e.kind,
                e.detail_zh,
                e.actions,
                e.reported_at.strftime("%H:%M:%S") if e.reported_at else "",
                e.actor,
            )
    console.print(t)


@app.command("ecode-rotate-key")
def ecode_rotate_key(db: str | None = DB) -> None:
    """Sign new e-codes with a fresh key (other server processes
    pick it up when they restart; old keys keep verifying).
    """
    from yibao.ecode.service import EcodeService

    console.print(f"new signing key {EcodeService(_engine(db)).rotate_key()}")
