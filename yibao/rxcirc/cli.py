"""``yibao rx``: electronic prescriptions circulated to designated pharmacies (处方流转): issue, verify, fill, show,
cancel, and the internet-hospital follow-up consultation (互联网复诊, ``consult``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from yibao.core.contract import MED_TYPE_OUTPATIENT

app = typer.Typer(
    help="Prescription circulation (处方流转): issue, verify, fill, unfill, show, cancel, consult.",
    no_args_is_help=True,
)
console = Console(width=140)
DB_OPT = typer.Option(
    None, "--db", help="Database URL (default $YIBAO_DATABASE_URL or sqlite:///yibao.db; migrated first)."
)
RULES_OPT = typer.Option(
    None,
    "--rules-dir",
    help="A region's rule files (designated-pharmacies.yaml, circulation.yaml, internet-hospital.yaml) "
    "instead of the shipped ones.",
)


def _service(db: str | None, rules_dir: Path | None = None):
    from yibao.core.db import database_url, make_engine, upgrade
    from yibao.rxcirc.service import default_service

    url = database_url(db)
    upgrade(url)
    return default_service(make_engine(url), rules_dir)


def _time(text: str | None, name: str) -> dt.datetime:
    from yibao.core.db import SHANGHAI
    from yibao.rxcirc.prescription import RxError

    if text is None:
        return dt.datetime.now(SHANGHAI).replace(microsecond=0)
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RxError(f"{name}: not a date-time {text!r}", f"{name} 不是日期时间: {text!r}", field=name) from None
    return t if t.tzinfo else t.replace(tzinfo=SHANGHAI)  # a local time is Asia/Shanghai


def _parts(text: str, n: int, shape: str) -> list[str]:
    from yibao.rxcirc.prescription import RxError

    parts = text.split(":")
    if len(parts) != n or not all(parts):
        raise RxError(f"--line {text!r} is not {shape}", f"--line {text!r} 格式应为 {shape}", field="line")
    return parts


def _yuan(text: str, name: str) -> int:
    from yibao.core.money import MoneyError, yuan_to_fen
    from yibao.rxcirc.prescription import RxError

    try:
        return yuan_to_fen(text)
    except MoneyError:
        raise RxError(f"{name}: not a yuan amount {text!r}", f"{name} 不是金额: {text!r}", field=name) from None


def _days(text: str) -> int:
    from yibao.rxcirc.prescription import RxError

    if not text.isdigit():
        raise RxError(f"days {text!r} is not a whole number", f"用药天数 {text!r} 无效", field="medc_days")
    return int(text)


def _print_rx(v) -> None:
    from yibao.core.money import fmt_yuan

    tab = Table(title=f"电子处方 prescription {v.hi_rxno}", show_header=False)
    for k, val in (
        ("hi_rxno / rx_trace_code", f"{v.hi_rxno} / {v.rx_trace_code}"),
        ("issuer / doctor", f"{v.issuer_code} / {v.prac_psn_code}  (hosp_rxno {v.hosp_rxno})"),
        ("psn_no / med_type / dx", f"{v.psn_no} / {v.med_type} / {';'.join(v.diagnoses)}"),
        ("prsc_time / valid until", f"{v.prsc_time.isoformat()} / {v.valid_end_date} ({v.valid_days} d)"),
        ("status 状态", v.status),
        ("sm3 digest", f"{v.sm3_digest} ({'ok' if v.digest_ok else 'MISMATCH 不符'})"),
    ):
        tab.add_row(k, val)
    for ln in v.lines:
        tab.add_row("drug 药品", f"{ln.med_list_codg} × {ln.cnt_milli / 1000:g}, {ln.medc_days} d")
    if v.fill is not None:
        f = v.fill
        tab.add_row(
            "filled 取药", f"{f.fixmedins_code} at {f.filled_at.isoformat()}, setl_id {f.setl_id} (lv {f.hosp_lv})"
        )
        if f.delivery_fee:
            tab.add_row(
                "delivery 配送费",
                f"{fmt_yuan(f.delivery_fee)} ({'self-paid 自付' if f.delivery_selfpay else 'in settlement'})",
            )
    console.print(tab)


def _print_setl(title: str, r) -> None:
    from yibao.core.contract import FUND_PAY_LABELS
    from yibao.core.money import fmt_yuan

    st = r.settlement
    funds = [k for k in FUND_PAY_LABELS if k == "hifp_pay" or getattr(st, k)]  # the pool, and any other fund that paid
    cols = ("medfee_sumamt", "act_pay_dedc", *funds, "fund_pay_sumamt", "acct_pay", "psn_cash_pay")
    tab = Table(title=title)
    tab.add_column("setl_id")
    for c in cols:
        tab.add_column(c, justify="right")
    tab.add_row(r.setl_id or "—", *(fmt_yuan(getattr(st, k)) for k in cols))
    console.print(tab)


@app.command("issue")
def issue(
    issuer: str = typer.Option(..., "--issuer", help="Issuing institution (fixmedins_code)."),
    doctor: str = typer.Option(..., "--doctor", help="Prescribing doctor (prac_psn_code)."),
    psn_no: str = typer.Option(..., "--psn-no"),
    hosp_rxno: str = typer.Option(..., "--hosp-rxno", help="The issuer's own prescription number."),
    dx: list[str] = typer.Option(..., "--dx", help="Diagnosis (dise_codg), principal first; repeat."),
    line: list[str] = typer.Option(..., "--line", help="CODE:QUANTITY:DAYS, e.g. XA10BA02:60:30; repeat."),
    med_type: str = typer.Option(MED_TYPE_OUTPATIENT, "--med-type", help="The visit's med_type (outpatient)."),
    at: str | None = typer.Option(None, "--time", help="prsc_time, ISO (default now, Asia/Shanghai)."),
    valid_days: int | None = typer.Option(None, "--valid-days", help="Default: circulation.yaml."),
    mdtrt_id: str = typer.Option("", "--mdtrt-id", help="The visit it was written in, when stored."),
    rules_dir: Path | None = RULES_OPT,
    db: str | None = DB_OPT,
) -> None:
    """Upload an electronic prescription (电子处方上传)."""
    from yibao.rxcirc.service import IssueLine, IssueRequest, parse_quantity

    lines = []
    for text in line:
        code, qty, days = _parts(text, 3, "CODE:QUANTITY:DAYS")
        lines.append(IssueLine(code, parse_quantity(qty, "drug_cnt"), _days(days)))
    req = IssueRequest(
        hosp_rxno,
        issuer,
        doctor,
        psn_no,
        med_type,
        tuple(dx),
        _time(at, "prsc_time"),
        tuple(lines),
        valid_days,
        mdtrt_id,
    )
    _print_rx(_service(db, rules_dir).issue(req))


@app.command("verify")
def verify(
    hi_rxno: str = typer.Argument(...),
    pharmacy: str = typer.Option(..., "--pharmacy"),
    on: str | None = typer.Option(None, "--on", help="YYYY-MM-DD (default today)."),
    digest: str = typer.Option("", "--digest", help="The signature digest the pharmacy received."),
    rules_dir: Path | None = RULES_OPT,
    db: str | None = DB_OPT,
) -> None:
    """May this pharmacy fill it now (处方核验)?  Exit 2 with the reason when not."""
    day = _time(on, "on").date() if on else _time(None, "on").date()
    v = _service(db, rules_dir).verify(hi_rxno, pharmacy, day, digest)
    _print_rx(v)
    console.print(f"[green]OK 核验通过[/green]: {pharmacy} may fill {hi_rxno} on {day}")


@app.command("fill")
def fill(
    hi_rxno: str = typer.Argument(...),
    pharmacy: str = typer.Option(..., "--pharmacy"),
    line: list[str] = typer.Option(..., "--line", help="CODE:QUANTITY:PRICE_YUAN:DAYS, e.g. XA10BA02:60:0.35:30."),
    msgid: str = typer.Option(..., "--msgid", help="Message id (idempotent: the same id answers the same fill)."),
    at: str | None = typer.Option(None, "--time", help="sel_retn_time, ISO (default now)."),
    digest: str = typer.Option("", "--digest"),
    delivery: str = typer.Option("0", "--delivery-yuan", help="Delivery fee (配送费), yuan."),
    no_account: bool = typer.Option(False, "--no-account", help="Do not use the personal account."),
    rules_dir: Path | None = RULES_OPT,
    db: str | None = DB_OPT,
) -> None:
    """Fill at a designated pharmacy and settle (外配取药结算), one transaction."""
    from yibao.core.money import fmt_yuan
    from yibao.rxcirc.service import FillLine, FillRequest, parse_quantity

    lines = []
    for text in line:
        code, qty, price, days = _parts(text, 4, "CODE:QUANTITY:PRICE_YUAN:DAYS")
        lines.append(FillLine(code, parse_quantity(qty, "sel_retn_cnt"), _yuan(price, "pric"), _days(days)))
    req = FillRequest(
        hi_rxno, pharmacy, tuple(lines), _time(at, "sel_retn_time"), msgid, digest, _yuan(delivery, "delivery_fee"),
        not no_account,
    )  # fmt: skip
    r = _service(db, rules_dir).fill(req)
    _print_setl(
        f"处方流转结算 fill of {hi_rxno} at {pharmacy} (paid at level {r.hosp_lv} of {r.issuer_code})", r.settlement
    )
    if r.delivery_fee:
        kind = "self-paid 自付" if r.delivery_selfpay else "in the settlement"
        console.print(
            f"delivery 配送费 {fmt_yuan(r.delivery_fee)}: {kind}; cash in all {fmt_yuan(r.cash_with_delivery)}"
        )


@app.command("show")
def show(hi_rxno: str = typer.Argument(...), db: str | None = DB_OPT) -> None:
    """A prescription, its lines, status and fill."""
    _print_rx(_service(db).show(hi_rxno))


@app.command("cancel")
def cancel(
    hi_rxno: str = typer.Argument(...), issuer: str = typer.Option(..., "--issuer"), db: str | None = DB_OPT
) -> None:
    """Withdraw a prescription not yet filled (电子处方撤销); issuer only."""
    _print_rx(_service(db).cancel(hi_rxno, issuer))


@app.command("unfill")
def unfill(
    hi_rxno: str = typer.Argument(...),
    pharmacy: str = typer.Option(..., "--pharmacy"),
    msgid: str = typer.Option(..., "--msgid"),
    db: str | None = DB_OPT,
) -> None:
    """Cancel a fill's settlement (撤销) and make the prescription fillable again; the filling pharmacy only."""
    _print_rx(_service(db).cancel_fill(hi_rxno, pharmacy, msgid))


@app.command("consult")
def consult(
    mdtrt_id: str = typer.Option(..., "--mdtrt-id"),
    psn_no: str = typer.Option(..., "--psn-no"),
    hospital: str = typer.Option(..., "--hospital", help="The internet hospital (fixmedins_code)."),
    dx: list[str] = typer.Option(..., "--dx"),
    fee: str = typer.Option(..., "--fee-yuan", help="Consultation fee, yuan."),
    msgid: str = typer.Option(..., "--msgid"),
    at: str | None = typer.Option(None, "--time"),
    rules_dir: Path | None = RULES_OPT,
    db: str | None = DB_OPT,
) -> None:
    """Settle an online follow-up consultation (互联网医院复诊); a first visit is refused."""
    from yibao.rxcirc.service import ConsultRequest

    req = ConsultRequest(mdtrt_id, psn_no, hospital, tuple(dx), _time(at, "begntime"), _yuan(fee, "pric"), msgid)
    r = _service(db, rules_dir).consult(req)
    _print_setl(f"互联网复诊 online follow-up {mdtrt_id} (follows {r.prior_mdtrt_id or '—'})", r.settlement)
