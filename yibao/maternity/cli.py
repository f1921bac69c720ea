"""``yibao maternity``: the maternity allowance (生育津贴) and its claim (生育津贴申领).

* ``allowance``: the computation alone, from the policy file;
* ``claim new|review|show|list``: the claim as a record (:mod:`yibao.maternity.service`), in the database.
"""

from __future__ import annotations

import datetime as dt
import json

import typer
from rich.console import Console
from rich.table import Table

from yibao.benefits import maternity
from yibao.benefits.policy import PolicyBook
from yibao.core import db
from yibao.core.money import MoneyError, fmt_yuan, yuan_to_fen
from yibao.maternity import service as svc

app = typer.Typer(help="Maternity insurance (生育保险): the maternity allowance (生育津贴).", no_args_is_help=True)
console = Console()
claim_app = typer.Typer(
    help="Maternity allowance claims (生育津贴申领): file, review, show, list.", no_args_is_help=True
)
app.add_typer(claim_app, name="claim")
DB = typer.Option(None, "--db", help="Database URL (default YIBAO_DATABASE_URL or sqlite:///yibao.db).")


@app.command("allowance")
def allowance(
    region: str = typer.Option(..., help="Insured region (参保地医保区划), e.g. 990100"),
    on: str = typer.Option(..., help="Event date (生育/流产日期), YYYY-MM-DD"),
    kind: str = typer.Option("birth", help="birth (生育) / difficult_birth (难产) / miscarriage (流产)"),
    babies: int = typer.Option(1, help="Babies born (多胞胎)"),
    weeks: int = typer.Option(None, help="Weeks of pregnancy (流产 only)"),
    wage: str = typer.Option(
        ..., help="Employer's average monthly contribution wage, yuan (用人单位职工月平均缴费工资)"
    ),
    months: int = typer.Option(..., help="Months of maternity contributions before the event (缴费月数)"),
) -> None:
    """Days and amount of the allowance: average wage / 30 × days (rule figures from the policy file)."""
    day = dt.date.fromisoformat(on)
    rule = maternity.allowance_rule(PolicyBook.default().snapshot(region, day))
    maternity.check_eligible(rule, months)
    days = maternity.allowance_days(rule, kind, babies, weeks)
    amount = maternity.allowance_amount(rule, _fen(wage), days)
    console.print(f"days 天数: {days}   amount 津贴: {fmt_yuan(amount, symbol=True)}")


def _fen(text: str) -> int:
    try:
        return yuan_to_fen(text)
    except MoneyError:
        raise maternity.MaternityError(
            f"wage {text!r} is not an amount in yuan", f"工资金额格式无效: {text}", field="average_wage"
        ) from None


def _engine(url: str | None):
    return db.make_engine(db.database_url(url))


def _day(text: str | None, field: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise maternity.MaternityError(
            f"{field} {text!r} is not YYYY-MM-DD", f"{field} 日期格式应为 YYYY-MM-DD: {text}", field=field
        ) from None


@claim_app.command("new")
def claim_new(
    psn_no: str = typer.Argument(..., help="The applicant (人员编号)"),
    employer: str = typer.Option(..., help="Employer (用人单位)"),
    on: str = typer.Option(..., help="Event date (生育/流产日期), YYYY-MM-DD"),
    wage: str = typer.Option(..., help="Employer's average monthly wage, yuan, as declared (职工月平均工资)"),
    kind: str = typer.Option("birth", help="birth (生育) / difficult_birth (难产) / miscarriage (流产)"),
    babies: int = typer.Option(1, help="Babies born (多胞胎 when > 1)"),
    weeks: int = typer.Option(None, help="Weeks of pregnancy (流产)"),
    applied: str = typer.Option(None, help="Application date (申领日期), default today"),
    actor: str = typer.Option("cli", help="Who files it (经办人)"),
    db_url: str | None = DB,
) -> None:
    """File a claim: contribution months come from the enrolment records, days and amounts from the policy."""
    event = _day(on, "event_date")
    assert event is not None
    req = svc.ClaimRequest(psn_no, employer, kind, event, _fen(wage), babies, weeks, _day(applied, "applied_on"))
    engine = _engine(db_url)
    cid = svc.file_claim(engine, req, actor=actor)
    with db.session_scope(engine) as s:
        c = svc.get_claim(s, cid)
        console.print(
            f"claim {cid} filed / 已申报: {c.contribution_months} months, {c.days} days, allowance 津贴 "
            f"{fmt_yuan(c.allowance, symbol=True)} + lump sum 定额 {fmt_yuan(c.lump_sum, symbol=True)} = "
            f"{fmt_yuan(c.amount, symbol=True)}"
        )


@claim_app.command("review")
def claim_review(
    claim_id: int,
    action: str = typer.Argument(..., help="check (初审) / approve (核准) / reject (不予支付) / pay (支付)"),
    actor: str = typer.Option(..., help="The reviewer (审核人)"),
    note: str = typer.Option("", help="Note; a rejection needs its reason"),
    db_url: str | None = DB,
) -> None:
    """One review step; the history is append-only."""
    row = svc.review(_engine(db_url), claim_id, action, actor=actor, note=note)
    console.print(f"claim {claim_id}: {action} → {row.status}")


@claim_app.command("show")
def claim_show(claim_id: int, db_url: str | None = DB) -> None:
    """A claim and its review history (JSON)."""
    with db.session_scope(_engine(db_url)) as s:
        out = svc.claim_dict(svc.get_claim(s, claim_id))
        out["steps"] = [svc.step_dict(x) for x in svc.claim_steps(s, claim_id)]
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


@claim_app.command("list")
def claim_list(
    status: str = typer.Option(None, help="Only this status (submitted / checked / approved / rejected / paid)"),
    psn_no: str = typer.Option(None, help="Only this person"),
    db_url: str | None = DB,
) -> None:
    """Claims, newest first."""
    t = Table("id", "psn_no", "event", "date", "days", "amount 金额", "status")
    with db.session_scope(_engine(db_url)) as s:
        for c in svc.list_claims(s, status=status, psn_no=psn_no):
            t.add_row(
                str(c.id), c.psn_no, c.event_kind, c.event_date.isoformat(), str(c.days), fmt_yuan(c.amount), c.status
            )
    console.print(t)
