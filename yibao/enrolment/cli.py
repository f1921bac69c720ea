"""``yibao enrol …`` (参保登记、缴费、补缴) and ``yibao accounts credit`` (个人账户划入)."""

from __future__ import annotations

import datetime as dt
from typing import overload

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from yibao.core import db
from yibao.core.money import MoneyError, fmt_yuan, yuan_to_fen
from yibao.enrolment import service as en
from yibao.enrolment.models import Contribution, DeemedYears, InsuredPeriod
from yibao.enrolment.params import EnrolmentError

app = typer.Typer(help="Enrolment and contributions (参保登记、缴费).", no_args_is_help=True)
accounts_app = typer.Typer(help="Personal accounts (个人账户).", no_args_is_help=True)
out = Console()
DB = typer.Option(None, "--db", help="Database URL (default YIBAO_DATABASE_URL or sqlite:///yibao.db).")


def _engine(url: str | None):
    return db.make_engine(db.database_url(url))


@overload
def _day(text: str, field: str) -> dt.date: ...
@overload
def _day(text: None, field: str) -> None: ...
def _day(text: str | None, field: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise EnrolmentError(
            f"{field} {text!r} is not YYYY-MM-DD", f"{field} 日期格式应为 YYYY-MM-DD: {text}", field=field
        ) from None


@app.command("enrol")
def enrol_cmd(
    psn_no: str,
    insutype: str,
    start: str,
    reason: str = typer.Option("new", "--reason"),
    transfer_in_from: str | None = typer.Option(None, "--from", help="Pooling region transferred in from (转入)."),
    db_url: str | None = DB,
) -> None:
    """Open an insured period (参保 / 转入)."""
    pid = en.enrol(
        _engine(db_url), psn_no, insutype, _day(start, "start"), reason=reason, transfer_in_from=transfer_in_from
    )
    out.print(f"enrolled {psn_no} in {insutype} from {start} (period {pid}) / 已参保")


@app.command("stop")
def stop_cmd(
    psn_no: str,
    insutype: str,
    end: str,
    reason: str = typer.Option("stop", "--reason"),
    terminate: bool = typer.Option(False, "--terminate", help="终止 rather than 停保."),
    db_url: str | None = DB,
) -> None:
    """Close the open period (停保 / 终止)."""
    en.stop(_engine(db_url), psn_no, insutype, _day(end, "end"), reason=reason, terminate=terminate)
    out.print(f"stopped {psn_no} in {insutype} on {end} / 已停保")


@app.command("transfer")
def transfer_cmd(psn_no: str, insutype: str, day: str, to_region: str, db_url: str | None = DB) -> None:
    """Transfer out to another pooling region (转出): the open period ends the day before ``day``."""
    d = _day(day, "day")
    en.stop(_engine(db_url), psn_no, insutype, d - dt.timedelta(days=1), reason="transfer", transfer_out_to=to_region)
    out.print(f"transferred {psn_no} out to {to_region} from {day} / 已转出")


def _fen(text: str) -> int:
    try:
        return yuan_to_fen(text)
    except MoneyError as exc:
        raise EnrolmentError(f"wage {text!r}: {exc}", f"缴费工资无效: {text}", field="wage") from None


@app.command("pay")
def pay_cmd(
    psn_no: str,
    period: str = typer.Argument(..., help="YYYY-MM (employee) or YYYY (resident)."),
    wage: str | None = typer.Option(None, "--wage", help="Monthly wage, yuan (employee)."),
    paid: str | None = typer.Option(None, "--paid", help="Paid date; omit to record arrears (欠费)."),
    db_url: str | None = DB,
) -> None:
    """Record a contribution: an employee month (base × rates) or a resident year."""
    eng, paid_d = _engine(db_url), _day(paid, "paid")
    if len(period) == 4 and period.isdigit():
        row = en.pay_resident_year(eng, psn_no, int(period), paid_d)
    else:
        if wage is None:
            raise EnrolmentError("an employee month needs --wage", "职工缴费需给出 --wage", field="wage")
        row = en.pay_employee_month(eng, psn_no, period, _fen(wage), paid_d)
    out.print(
        f"{psn_no} {period}: base {fmt_yuan(row.base)}, employer {fmt_yuan(row.employer_part)}, "
        f"individual {fmt_yuan(row.individual_part)}, subsidy {fmt_yuan(row.subsidy)}"
        + ("" if paid_d else " — in arrears / 欠费")
    )


@app.command("backpay")
def backpay_cmd(psn_no: str, insutype: str, period: str, paid: str, db_url: str | None = DB) -> None:
    """Pay a contribution in arrears (补缴), with the late fee the rules set."""
    row = en.backpay(_engine(db_url), psn_no, insutype, period, _day(paid, "paid"))
    out.print(f"{psn_no} {period} back-paid on {paid}; late fee {fmt_yuan(row.late_fee)} / 已补缴")


@app.command("deemed")
def deemed_cmd(psn_no: str, months: int, basis: str = typer.Option("", "--basis"), db_url: str | None = DB) -> None:
    """Record deemed contribution years (视同缴费年限), in months."""
    en.set_deemed_years(_engine(db_url), psn_no, months, basis)
    out.print(f"{psn_no}: {months} deemed months / 视同缴费 {months} 个月")


@app.command("arrears")
def arrears_cmd(psn_no: str | None = typer.Argument(None), db_url: str | None = DB) -> None:
    """List contributions in arrears (欠费)."""
    with db.session_scope(_engine(db_url)) as s:
        rows = en.arrears(s, psn_no)
        t = Table("psn_no", "insutype", "period", "due (yuan)")
        for r in rows:
            t.add_row(r.psn_no, r.insutype, r.period, fmt_yuan(r.employer_part + r.individual_part))
    out.print(t if rows else "no arrears / 无欠费")


@app.command("show")
def show_cmd(psn_no: str, db_url: str | None = DB) -> None:
    """A person's periods, contributions and deemed years."""
    with db.session_scope(_engine(db_url)) as s:
        t = Table("insutype", "start", "end", "status", "reason", title=f"{psn_no} insured periods / 参保期间")
        for p in s.scalars(
            select(InsuredPeriod).where(InsuredPeriod.psn_no == psn_no).order_by(InsuredPeriod.start_date)
        ):
            t.add_row(p.insutype, str(p.start_date), str(p.end_date or ""), p.status, p.reason)
        c = Table(
            "insutype",
            "period",
            "base",
            "employer",
            "individual",
            "subsidy",
            "paid",
            "补缴",
            title="contributions / 缴费",
        )
        for r in s.scalars(select(Contribution).where(Contribution.psn_no == psn_no).order_by(Contribution.period)):
            c.add_row(
                r.insutype,
                r.period,
                fmt_yuan(r.base),
                fmt_yuan(r.employer_part),
                fmt_yuan(r.individual_part),
                fmt_yuan(r.subsidy),
                str(r.paid_date or "arrears"),
                "yes" if r.back_payment else "",
            )
        d = s.get(DeemedYears, psn_no)
        out.print(t)
        out.print(c)
        out.print(f"deemed months / 视同缴费: {d.months if d else 0}")


@accounts_app.command("credit")
def credit_cmd(month: str = typer.Option(..., "--month", help="YYYY-MM"), db_url: str | None = DB) -> None:
    """Credit the month's personal-account amounts (个人账户划入), once per month (a re-run credits nothing)."""
    from rich.progress import Progress

    from yibao.enrolment.crediting import credit_enrolled

    first = en._month(month)
    with Progress(console=out, transient=True) as bar:
        task = bar.add_task(f"crediting {month}", total=None)
        r = credit_enrolled(
            _engine(db_url), first, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    if r.accounts == 0 and r.already:
        out.print(f"{month}: already credited ({r.already} accounts); nothing credited now / 本月已划入")
    else:
        out.print(
            f"{month}: credited {r.accounts} accounts, {fmt_yuan(r.amount)} yuan ({r.already} already done, "
            f"{r.not_covered} enrolled but not covered) / 已划入"
        )
