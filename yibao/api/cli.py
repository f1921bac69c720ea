"""``yibao serve`` and ``yibao api …``: run and inspect the national-interface service."""

from __future__ import annotations

import os
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="The national interface (定点医药机构接口).", no_args_is_help=True)
console = Console()


def serve(
    db: Optional[str] = typer.Option(None, "--db", help="Database URL (default $YIBAO_DATABASE_URL or sqlite:///yibao.db); migrated first."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (uvicorn)."),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
    security: Optional[str] = typer.Option(
        None, "--security", help="YAML of per-institution SM4 keys and SM3/SM2 signature settings (keep it secret)."
    ),
) -> None:
    """Serve real-time settlement: the national envelope at /fsi/api/rsfComIfsService/callService, REST at /api/v1, docs at /docs."""
    import uvicorn

    from yibao.api.app import app_from_env, build_interface
    from yibao.core.db import database_url

    url = database_url(db)
    os.environ["YIBAO_DATABASE_URL"] = url
    if security:
        os.environ["YIBAO_API_SECURITY"] = security
    from yibao.core.errors import YibaoError

    try:
        build_interface(url, security).engine.dispose()  # migrate (and check the security file) once, before workers start
    except YibaoError as exc:
        console.print(f"[bold red]error:[/] {exc.message_en}\n       {exc.message_zh}")
        raise typer.Exit(2) from None
    console.print(f"yibao serve: {url.split('@')[-1]} on http://{host}:{port}  (docs: /docs)")
    if workers > 1:
        uvicorn.run("yibao.api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, timeout_keep_alive=75)
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
