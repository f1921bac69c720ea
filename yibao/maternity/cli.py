"""``yibao maternity``: compute a maternity allowance (生育津贴) from the policy file.

The claim form (apply/approve/show/list, a table and a service) is not built yet;
this command is the computation those steps will call.
"""

from __future__ import annotations

import datetime as dt

import typer
from rich.console import Console

from yibao.benefits import maternity
from yibao.benefits.policy import PolicyBook
from yibao.core.money import fmt_yuan, yuan_to_fen

app = typer.Typer(help="Maternity insurance (生育保险): the maternity allowance (生育津贴).", no_args_is_help=True)
console = Console()


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
    amount = maternity.allowance_amount(rule, yuan_to_fen(wage), days)
    console.print(f"days 天数: {days}   amount 津贴: {fmt_yuan(amount, symbol=True)}")
