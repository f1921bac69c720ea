"""``yibao filing``: the cross-province filing register (异地就医备案): add, cancel, list, show."""

from __future__ import annotations

import datetime as dt
from typing import overload

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Cross-province filing (异地就医备案): add, cancel, list, show.", no_args_is_help=True)
console = Console(width=140)  # the table stays whole in narrow terminals and logs
DB_OPT = typer.Option(
    None, "--db", help="Database URL (default $YIBAO_DATABASE_URL or sqlite:///yibao.db; migrated first)."
)


def _engine(db: str | None):
    from yibao.core.db import database_url, make_engine, upgrade

    url = database_url(db)
    upgrade(url)
    return make_engine(url)


@overload
def _date(text: str, name: str) -> dt.date: ...
@overload
def _date(text: None, name: str) -> None: ...
def _date(text: str | None, name: str) -> dt.date | None:
    from yibao.crossregion.service import FilingError

    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise FilingError(
            f"{name} is not a date (YYYY-MM-DD): {text!r}", f"{name} 不是日期 (YYYY-MM-DD): {text!r}", field=name
        ) from None


def _row(f) -> list[str]:
    return [
        str(f.id),
        f.psn_no,
        f.insutype,
        f.filing_type,
        f.insured_admdvs,
        f.treatment_admdvs,
        str(f.begin_date),
        str(f.end_date or "—"),
        f.status,
    ]


def _print(rows) -> None:
    tab = Table(title="异地就医备案 cross-province filings")
    for c in ("id", "psn_no", "insutype", "type", "insured", "treatment", "begin", "end", "status"):
        tab.add_column(c)
    for f in rows:
        tab.add_row(*_row(f))
    console.print(tab)


@app.command("add")
def add(
    psn_no: str = typer.Option(..., "--psn-no"),
    insutype: str = typer.Option(..., "--insutype"),
    filing_type: str = typer.Option(..., "--type", help="long_term_residence | resident_work | referral | temporary"),
    insured: str = typer.Option(..., "--insured", help="Insured division (参保地), 6 digits."),
    treatment: str = typer.Option(..., "--treatment", help="Treatment division (就医地), 6 digits."),
    begin: str = typer.Option(..., "--begin", help="YYYY-MM-DD"),
    end: str | None = typer.Option(None, "--end", help="YYYY-MM-DD (default: from the type's validity)."),
    db: str | None = DB_OPT,
) -> None:
    """Record a filing."""
    from yibao.core.db import session_scope
    from yibao.crossregion.service import FilingRequest, add_filing

    req = FilingRequest(
        psn_no, insutype, filing_type, insured, treatment, _date(begin, "begndate"), _date(end, "enddate")
    )
    with session_scope(_engine(db)) as s:
        row = add_filing(s, req)
        _print([row])


@app.command("cancel")
def cancel(filing_id: int = typer.Argument(...), db: str | None = DB_OPT) -> None:
    """Cancel a filing (备案撤销)."""
    from yibao.core.db import session_scope
    from yibao.crossregion.service import cancel_filing

    with session_scope(_engine(db)) as s:
        _print([cancel_filing(s, filing_id)])


@app.command("list")
def list_(psn_no: str | None = typer.Option(None, "--psn-no"), db: str | None = DB_OPT) -> None:
    """List filings (of one person)."""
    from yibao.core.db import session_scope
    from yibao.crossregion.service import list_filings

    with session_scope(_engine(db)) as s:
        _print(list_filings(s, psn_no))


@app.command("show")
def show(filing_id: int = typer.Argument(...), db: str | None = DB_OPT) -> None:
    """One filing."""
    from yibao.core.db import session_scope
    from yibao.crossregion.models import CrossFiling
    from yibao.crossregion.service import FilingError

    with session_scope(_engine(db)) as s:
        f = s.get(CrossFiling, filing_id)
        if f is None:
            raise FilingError(f"unknown filing {filing_id}", f"备案不存在: {filing_id}", field="filing_id")
        _print([f])


@app.command("lists")
def lists(province: str | None = typer.Option(None, "--province", help="Two-digit province code (e.g. 32).")) -> None:
    """The treatment provinces' lists (就医地目录): items each province classifies or prices differently."""
    from yibao.core.money import fmt_yuan
    from yibao.crossregion.lists import load_lists

    tab = Table(title="就医地目录 treatment-place lists (ILLUSTRATIVE unless marked official)")
    for col in ("province", "from", "med_list_codg", "chrgitm_lv", "selfpay_prop", "pric_uplmt", "status"):
        tab.add_column(col)
    for code, pl in sorted(load_lists().by_province.items()):
        if province and code != province:
            continue
        for v in pl.versions:
            for item, li in v.items.items():
                bp = li.selfpay_prop
                ratio = "" if bp is None else f"{bp // 100}.{bp % 100:02d}%"
                cap = "" if li.pric_uplmt is None else fmt_yuan(li.pric_uplmt)
                tab.add_row(f"{code} {pl.name_zh}", str(v.begin), item, li.chrgitm_lv or "", ratio, cap, pl.status)
    console.print(tab)
