"""``yibao longrx``: the proxy-pickup log of long prescriptions (长期处方代取药登记): proxy add, proxy list."""

from __future__ import annotations

import datetime as dt

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Long prescriptions (长期处方): the proxy-pickup log.", no_args_is_help=True)
proxy_app = typer.Typer(help="Proxy pickup (代取药登记): add, list.", no_args_is_help=True)
app.add_typer(proxy_app, name="proxy")
console = Console(width=200)  # the table stays whole in narrow terminals and logs
DB_OPT = typer.Option(
    None, "--db", help="Database URL (default $YIBAO_DATABASE_URL or sqlite:///yibao.db; migrated first)."
)


def _engine(db: str | None):
    from yibao.core.db import database_url, make_engine, upgrade

    url = database_url(db)
    upgrade(url)
    return make_engine(url)


def _time(text: str | None) -> dt.datetime | None:
    from yibao.core.db import SHANGHAI
    from yibao.longrx.service import ProxyPickupError

    if text is None:
        return None
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ProxyPickupError(
            f"--time is not a time (YYYY-MM-DD HH:MM:SS): {text!r}",
            f"取药时间格式应为 YYYY-MM-DD HH:MM:SS: {text!r}",
            field="picked_up_at",
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=SHANGHAI)


def _print(rows) -> None:
    tab = Table(title="长期处方代取药登记 proxy pickups")
    for c in ("id", "setl_id", "mdtrt_id", "psn_no", "proxy", "cert", "certno", "relation", "time", "operator", "via"):
        tab.add_column(c)
    for r in rows:
        tab.add_row(
            str(r.id),
            r.setl_id,
            r.mdtrt_id,
            r.psn_no,
            r.proxy_name,
            r.proxy_cert_type,
            r.proxy_certno_masked,
            r.relation,
            r.picked_up_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.operator,
            r.source,
        )
    console.print(tab)


@proxy_app.command("add")
def add(
    setl_id: str = typer.Option(..., "--setl-id", help="The settlement whose drugs were collected."),
    name: str = typer.Option(..., "--name", help="The proxy's name (代取人姓名)."),
    certno: str = typer.Option(..., "--certno", help="The proxy's ID number (stored masked)."),
    relation: str = typer.Option(..., "--relation", help="spouse | child | parent | sibling | other_relative | …"),
    operator: str = typer.Option(..., "--operator", help="Who registers the pickup (经办人)."),
    cert_type: str = typer.Option("01", "--cert-type", help="ID document type (证件类型), 01 = 居民身份证."),
    psn_no: str = typer.Option("", "--psn-no", help="The patient, checked against the settlement."),
    time: str | None = typer.Option(None, "--time", help="Pickup time (default now), YYYY-MM-DD HH:MM:SS."),
    db: str | None = DB_OPT,
) -> None:
    """Register a proxy pickup of a settled long prescription."""
    from yibao.core.db import SHANGHAI, session_scope
    from yibao.longrx.service import ProxyPickupRequest, record_pickup

    req = ProxyPickupRequest(setl_id, name, cert_type, certno, relation, operator, psn_no, _time(time))
    with session_scope(_engine(db)) as s:
        _print([record_pickup(s, req, now=dt.datetime.now(SHANGHAI))])


@proxy_app.command("list")
def list_(
    psn_no: str | None = typer.Option(None, "--psn-no"),
    setl_id: str | None = typer.Option(None, "--setl-id"),
    db: str | None = DB_OPT,
) -> None:
    """List proxy pickups (of one patient or settlement), newest first."""
    from yibao.core.db import session_scope
    from yibao.longrx.service import list_pickups

    with session_scope(_engine(db)) as s:
        _print(list_pickups(s, psn_no, setl_id))
