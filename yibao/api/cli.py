"""``yibao serve`` and ``yibao api …``: run and inspect the national-interface service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

from yibao.benefits.cli import policy_dir_option

app = typer.Typer(help="The national interface (定点医药机构接口).", no_args_is_help=True)
console = Console()


def serve(
    db: str | None = typer.Option(
        None, "--db", help="Database URL (default $YIBAO_DATABASE_URL or sqlite:///yibao.db); migrated first."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (uvicorn)."),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
    security: str | None = typer.Option(
        None,
        "--security",
        envvar="YIBAO_API_SECURITY",
        help="YAML of per-institution sign-in secrets (yibao inst credential issue), SM4 keys and SM3/SM2 settings "
        "(keep it secret).",
    ),
    insecure_demo: bool = typer.Option(
        False,
        "--insecure-demo",
        help="Let institutions without a configured credential sign in (9001) without one. Demos on a private machine "
        "only.",
    ),
    policy_dir: list[Path] | None = policy_dir_option(),
) -> None:
    """Serve real-time settlement: the national envelope at
    /fsi/api/rsfComIfsService/callService, REST at /api/v1, docs at /docs.
    """
    import uvicorn

    from yibao.api.app import INSECURE_ENV, build_interface
    from yibao.core.db import database_url
    from yibao.server import app_from_env

    if not security and not insecure_demo:
        console.print(
            "[bold yellow]note:[/] no institution can sign in (9001) without credentials: give --security FILE "
            "(yibao inst credential issue CODE --security FILE), or --insecure-demo for a private demo; "
            "the console works either way\n"
            "      未配置机构凭证, 任何机构都不能签到: 请用 --security 指定凭证文件 (演示可用 --insecure-demo)"
        )
    url = database_url(db)
    os.environ["YIBAO_DATABASE_URL"] = url
    if security:
        os.environ["YIBAO_API_SECURITY"] = security
    if policy_dir:  # PolicyBook.default() reads it, in this process and the workers
        from yibao.benefits.policy import POLICY_DIR_ENV

        os.environ[POLICY_DIR_ENV] = os.pathsep.join(str(d.resolve()) for d in policy_dir)
    if insecure_demo:
        os.environ[INSECURE_ENV] = "1"  # for the worker processes; set only here
    else:
        os.environ.pop(INSECURE_ENV, None)
    from yibao.core.errors import YibaoError

    try:
        # migrate (and check the security file) once, before workers start
        build_interface(url, security, insecure_demo=insecure_demo).engine.dispose()
    except YibaoError as exc:
        console.print(f"[bold red]error:[/] {exc.message_en}\n       {exc.message_zh}")
        raise typer.Exit(2) from None
    if insecure_demo:
        console.print(
            "[black on yellow] INSECURE DEMO 演示模式 [/] institutions without a credential can sign in without one"
        )
    console.print(f"yibao serve: {url.split('@')[-1]} on http://{host}:{port}  (console: /console, docs: /docs)")
    if workers > 1:
        uvicorn.run(
            "yibao.server:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            timeout_keep_alive=75,
        )
    else:
        uvicorn.run(app_from_env(), host=host, port=port, log_level=log_level, timeout_keep_alive=75)


@app.command("transactions")
def transactions() -> None:
    """List the transactions served (infno, name, REST path)."""
    from yibao.api.interface import TRANSACTIONS

    t = Table(title="national interface transactions")
    for c in ("infno", "交易", "transaction", "REST"):
        t.add_column(c)
    for spec in TRANSACTIONS.values():
        t.add_row(spec.infno, spec.name_zh, spec.name_en, f"POST /api/v1/{spec.rest_path}")
    console.print(t)


app.command("serve")(serve)

inst_app = typer.Typer(
    help="Institutions (定点医药机构): sign-in credentials for the national interface.", no_args_is_help=True
)
credential_app = typer.Typer(
    help="An institution's sign-in secret (9001 signIn.credential), stored as an scrypt hash.", no_args_is_help=True
)
inst_app.add_typer(credential_app, name="credential")
_SECURITY_OPT = typer.Option(
    ...,
    "--security",
    envvar="YIBAO_API_SECURITY",
    help="The security settings file (created if absent, owner-only; the one `yibao serve --security` reads).",
)


def _fail(en: str, zh: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {en}\n       {zh}")
    raise typer.Exit(2)


def _known_institution(code: str, db: str | None) -> None:
    import re

    import sqlalchemy as sa

    from yibao.core.db import database_url, make_engine

    if not re.fullmatch(r"[0-9A-Za-z]{1,40}", code):
        _fail(f"{code!r} is not an institution code (letters and digits)", f"{code!r} 不是定点医药机构编号")
    engine = make_engine(database_url(db))
    try:
        with engine.connect() as c:
            found = c.execute(sa.text("select 1 from institution where fixmedins_code = :c"), {"c": code}).first()
    except sa.exc.SQLAlchemyError:
        found = None
        _fail(
            f"cannot read institutions from {database_url(db).split('@')[-1]} (load a region, or pass --no-check)",
            "无法读取定点医药机构 (请先导入数据, 或使用 --no-check)",
        )
    finally:
        engine.dispose()
    if found is None:
        _fail(f"unknown institution {code} in the database (or pass --no-check)", f"数据库中无定点医药机构 {code}")


def _issue(code: str, security: str, db: str | None, check: bool, rotate: bool) -> None:
    from pathlib import Path

    from yibao.api.security import SecurityPolicy, issue_credential
    from yibao.core.errors import YibaoError

    if check:
        _known_institution(code, db)
    try:
        has = Path(security).exists() and bool(
            getattr(SecurityPolicy.load(security).institutions.get(code), "secret_hash", "")
        )
        if rotate and not has:
            _fail(
                f"{code} has no secret to rotate in {security} (use issue)",
                f"{security} 中机构 {code} 尚无凭证, 请用 issue",
            )
        if not rotate and has:
            _fail(
                f"{code} already has a secret in {security} (use rotate)",
                f"{security} 中机构 {code} 已有凭证, 请用 rotate",
            )
        secret = issue_credential(security, code)
    except YibaoError as exc:
        _fail(exc.message_en, exc.message_zh)
    console.print(
        f"{'rotated' if rotate else 'issued'} the sign-in secret of {code} in {security}; "
        "it is shown once, give it to the institution (9001 signIn.credential):",
        highlight=False,
    )
    typer.echo(secret)


@credential_app.command("issue")
def credential_issue(
    code: str = typer.Argument(..., help="fixmedins_code"),
    security: str = _SECURITY_OPT,
    db: str | None = typer.Option(None, "--db", help="Database whose institution table must know CODE."),
    check: bool = typer.Option(True, "--check/--no-check", help="Check that CODE is a known institution."),
) -> None:
    """Issue an institution's sign-in secret: printed once, stored as a hash in the security file."""
    _issue(code, security, db, check, rotate=False)


@credential_app.command("rotate")
def credential_rotate(
    code: str = typer.Argument(..., help="fixmedins_code"),
    security: str = _SECURITY_OPT,
    db: str | None = typer.Option(None, "--db"),
    check: bool = typer.Option(True, "--check/--no-check"),
) -> None:
    """Replace an institution's sign-in secret (the old one stops
    working at once; sign-ins already made keep their sign_no).
    """
    _issue(code, security, db, check, rotate=True)


@credential_app.command("revoke")
def credential_revoke(code: str = typer.Argument(..., help="fixmedins_code"), security: str = _SECURITY_OPT) -> None:
    """Remove an institution's sign-in secret: it can no longer sign in with one."""
    from yibao.api.security import revoke_credential
    from yibao.core.errors import YibaoError

    try:
        revoke_credential(security, code)
    except YibaoError as exc:
        _fail(exc.message_en, exc.message_zh)
    console.print(f"revoked the sign-in secret of {code} in {security}")


@credential_app.command("list")
def credential_list(security: str = _SECURITY_OPT) -> None:
    """Which institutions can sign in, and how (no secret is shown)."""
    from yibao.api.security import SecurityPolicy
    from yibao.core.errors import YibaoError

    try:
        pol = SecurityPolicy.load(security)
    except YibaoError as exc:
        _fail(exc.message_en, exc.message_zh)
    t = Table(title=f"sign-in credentials in {security}")
    for c in ("fixmedins_code", "secret", "SM4 envelope", "signtype"):
        t.add_column(c)
    for code, k in sorted(pol.institutions.items()):
        t.add_row(code, "yes" if k.secret_hash else "", "yes" if k.encrypted else "", k.signtype if k.encrypted else "")
    console.print(t)
