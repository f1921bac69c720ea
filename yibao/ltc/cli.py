"""``yibao ltc …``: long-term care insurance lifecycle (长护险) command line."""

from __future__ import annotations

import datetime as dt
import json

import typer
from rich.console import Console

app = typer.Typer(
    help="Long-term care insurance 长护险: assess, enrol, record, settle a month, show, funding.", no_args_is_help=True
)
console = Console()
DB_OPT = typer.Option(
    None, "--db", help="Database URL (default $YIBAO_DATABASE_URL or sqlite:///yibao.db; migrated first)."
)


def _engine(db: str | None):
    from yibao.core.db import database_url, make_engine, upgrade

    url = database_url(db)
    upgrade(url)
    return make_engine(url)


def _month(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text + "-01" if len(text) == 7 else text).replace(day=1)
    except ValueError:
        from yibao.core.errors import ClaimRejected

        raise ClaimRejected(
            f"bad month {text!r} (YYYY-MM)", f"月份格式错误 {text!r} (YYYY-MM)", field="month"
        ) from None


@app.command()
def assess(
    psn_no: str,
    assessor: str = typer.Option(..., help="assessor institution 评估机构"),
    on: str = typer.Option(..., help="assessment date YYYY-MM-DD"),
    daily_living: int = typer.Option(...),
    cognition: int = typer.Option(...),
    perception: int = typer.Option(..., help="perception & communication 感知觉与沟通"),
    region: str = "nantong",
    db: str | None = DB_OPT,
) -> None:
    """Record a disability assessment (失能评估); prints the grade."""
    from yibao.ltc.service import assess as do

    a = do(
        _engine(db),
        psn_no,
        assessor,
        dt.date.fromisoformat(on),
        {"daily_living": daily_living, "cognition": cognition, "perception_communication": perception},
        region,
    )
    console.print(
        f"{psn_no}: score {a.total_score} → grade {a.grade} from {a.effective_from:%Y-%m} until {a.valid_until}"
    )


@app.command()
def enrol(
    psn_no: str,
    setting: str = typer.Option(..., help="institutional | home_by_institution | home_by_family"),
    institution: str = typer.Option(..., help="care institution 护理机构"),
    start: str = typer.Option(..., help="YYYY-MM"),
    end: str | None = typer.Option(None, help="YYYY-MM"),
    region: str = "nantong",
    db: str | None = DB_OPT,
) -> None:
    """Enrol a recipient (待遇享受) with a valid assessment at or above the minimum grade."""
    from yibao.ltc.service import enrol as do

    r = do(_engine(db), psn_no, setting, institution, _month(start), _month(end) if end else None, region)
    console.print(f"{psn_no}: enrolled, {r.setting} at {r.care_institution} from {r.start_month:%Y-%m}")


@app.command()
def record(
    psn_no: str,
    month: str = typer.Option(..., help="YYYY-MM"),
    institution: str = typer.Option(...),
    days: int = typer.Option(...),
    cost: str = typer.Option(..., help="care cost, yuan"),
    service: list[str] = typer.Option([], help="service done (repeatable)"),
    db: str | None = DB_OPT,
) -> None:
    """Record one month's care services (护理服务记录)."""
    from yibao.core.money import yuan_to_fen
    from yibao.ltc.service import record_services

    rec = record_services(_engine(db), psn_no, _month(month), institution, days, yuan_to_fen(cost), service)
    console.print(f"{psn_no}: {rec.month:%Y-%m} recorded, {rec.days} days")


@app.command("settle-month")
def settle_month(
    month: str = typer.Option(..., help="YYYY-MM"),
    psn_no: str | None = typer.Option(None, help="one recipient; default all (batch)"),
    db: str | None = DB_OPT,
) -> None:
    """Settle a month (月度结算): one recipient, or every recipient with services (vectorised batch)."""
    from yibao.core.money import fmt_yuan
    from yibao.ltc.service import settle_month as one
    from yibao.ltc.service import settle_month_all

    eng = _engine(db)
    claims = [one(eng, psn_no, _month(month))] if psn_no else settle_month_all(eng, _month(month))
    for c in claims:
        console.print(
            f"recipient {c.recipient_id} {c.month:%Y-%m} {c.grade}/{c.setting}: fund {fmt_yuan(c.fund_fen)}, person "
            f"{fmt_yuan(c.person_fen)}"
        )
    console.print(f"{len(claims)} claim(s) settled")


@app.command()
def show(psn_no: str, db: str | None = DB_OPT) -> None:
    """A recipient's assessments, enrolment, claims and history (JSON)."""
    from yibao.ltc.service import show as do

    console.print_json(json.dumps(do(_engine(db), psn_no), ensure_ascii=False))


@app.command()
def funding(region: str = "nantong") -> None:
    """Yearly funding per person by source (筹资结构), from the rule file."""
    from yibao.core.money import fmt_yuan
    from yibao.ltc.params import get_rules

    r = get_rules(region)
    total = sum(r.funding_per_person_year.values())
    for k, v in r.funding_per_person_year.items():
        console.print(f"{k}: {fmt_yuan(v)} yuan ({v * 100 // total} %)")
    console.print(f"total: {fmt_yuan(total)} yuan per person-year")
