"""``yibao reimburse``: manual reimbursement (手工报销): new, add-line, submit, review, show, list.

Every command acts as a console user (``--user``, made with ``yibao console add-user``): the workflow checks
that user's role.  A claim can come whole from a JSON file (``new --file claim.json``: the fields of
:class:`yibao.reimbursement.service.ClaimRequest`, with ``lines``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from yibao.core.money import fmt_yuan

app = typer.Typer(
    help="Manual reimbursement (手工报销): new, add-line, submit, review, show, list.", no_args_is_help=True
)
console = Console(width=140)
DB_OPT = typer.Option(
    None, "--db", help="Database URL (default $YIBAO_DATABASE_URL or sqlite:///yibao.db; migrated first)."
)
USER_OPT = typer.Option(..., "--user", help="The console user acting (yibao console add-user); their role is checked.")


def _service(db: str | None):
    from yibao.core.db import database_url, make_engine, upgrade
    from yibao.reimbursement.service import default_service

    url = database_url(db)
    upgrade(url)
    return default_service(make_engine(url))


def _actor(svc, username: str):
    from yibao.core.db import session_scope
    from yibao.reimbursement.params import ReimbursementForbidden
    from yibao.reimbursement.service import Actor
    from yibao.web.models import ConsoleUser

    with session_scope(svc.engine) as s:
        u = s.get(ConsoleUser, username)
        if u is None:
            raise ReimbursementForbidden(
                f"no console user {username!r} (create one with: yibao console add-user)",
                f"控制台用户 {username} 不存在",
                field="user",
            )
        return Actor(u.username, u.role, u.psn_no)


def _read_json(path: Path) -> dict[str, Any]:
    from yibao.reimbursement.params import ReimbursementError

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ReimbursementError(
            f"{path}: not a readable JSON file ({e})", f"{path}: 无法读取的 JSON 文件", field="file"
        ) from None
    if not isinstance(doc, dict):
        raise ReimbursementError(f"{path}: expected a JSON object", f"{path}: 须为 JSON 对象", field="file")
    return doc


def _show(d: dict[str, Any]) -> None:
    tab = Table(title=f"手工报销 manual claim {d['claim_id']}: {d['status']} {d['status_zh']}", show_header=False)
    provider = d["fixmedins_code"] or f"{d['provider_name']} ({d['provider_admdvs']}, L{d['hosp_lv']})"
    for k, v in (
        ("psn_no", d["psn_no"]),
        ("provider", provider),
        ("care", f"{d['med_type']} {d['begin_date']} .. {d['end_date']} {d['dise_codg']}"),
        ("reason", f"{d['reason']} {d['reason_zh']}"),
        ("documents", ", ".join(d["documents"]) or "—"),
        ("setl_id", d["setl_id"] or "—"),
        ("reimbursed", "—" if d["reimbursed_fen"] is None else fmt_yuan(d["reimbursed_fen"], symbol=True)),
        ("next", ", ".join(d["allowed"]) or "none (final state)"),
    ):
        tab.add_row(k, str(v))
    console.print(tab)
    if d.get("lines"):
        lt = Table(title="票据明细 invoice lines")
        for c in ("#", "invoice", "code", "item", "qty", "price", "amount", "flag"):
            lt.add_column(c)
        for x in d["lines"]:
            lt.add_row(
                str(x["line_no"]),
                x["invoice_no"],
                x["med_list_codg"] or "—",
                x["item_text"],
                f"{x['quantity_milli'] / 1000:g}",
                fmt_yuan(x["unit_price_fen"]),
                fmt_yuan(x["amount_fen"]),
                "uncoded 无编码 (全自费)" if x["uncoded"] else "",
            )
        console.print(lt)
    if d.get("settlement"):
        st = d["settlement"]
        console.print(
            f"settlement 结算: medfee {fmt_yuan(st['medfee_sumamt'])} · fund {fmt_yuan(st['fund_pay_sumamt'])} "
            f"(ratio {st['pool_prop_selfpay_bp'] / 100:g} %) · account {fmt_yuan(st['acct_pay'])} · "
            f"cash {fmt_yuan(st['psn_cash_pay'])}"
        )
    if d.get("steps"):
        ht = Table(title="审核记录 history")
        for c in ("#", "time", "who", "role", "action", "state", "comment"):
            ht.add_column(c)
        for e in d["steps"]:
            ht.add_row(
                str(e["id"]),
                e["at"][:19],
                e["actor"],
                e["role"],
                e["action"],
                f"{e['from_state'] or '·'} → {e['to_state']}",
                e["comment"],
            )
        console.print(ht)


@app.command("new")
def new(
    user: str = USER_OPT,
    file: Path | None = typer.Option(None, "--file", help="The claim as JSON (fields of ClaimRequest, with lines)."),
    psn_no: str = typer.Option("", "--psn-no"),
    med_type: str = typer.Option("", "--med-type"),
    begin: str = typer.Option("", "--begin", help="YYYY-MM-DD"),
    end: str = typer.Option("", "--end", help="YYYY-MM-DD (discharge / day of the visit)"),
    reason: str = typer.Option("", "--reason", help="A reason of data/reimbursement/manual.yaml."),
    dise: str = typer.Option("", "--dise", help="Diagnosis code (dise_codg)."),
    inst: str = typer.Option("", "--inst", help="Institution code, or give --provider/--admdvs/--level."),
    provider: str = typer.Option("", "--provider", help="Free-text provider name (not in the institution table)."),
    admdvs: str = typer.Option("", "--admdvs", help="The provider's division (6 digits)."),
    level: int | None = typer.Option(None, "--level", help="The provider's level 0..3."),
    documents: str = typer.Option("", "--documents", help="Documents received, comma-separated."),
    db: str | None = DB_OPT,
) -> None:
    """Open a claim (录入); from --file, or from the options (add lines with add-line)."""
    from yibao.reimbursement.service import request_from_dict

    svc = _service(db)
    if file is not None:
        doc = _read_json(file)
    else:
        doc = {"psn_no": psn_no, "med_type": med_type, "begin_date": begin, "end_date": end, "reason": reason}
        doc |= {"dise_codg": dise, "fixmedins_code": inst, "provider_name": provider, "provider_admdvs": admdvs}
        doc |= {"hosp_lv": level, "documents": [x.strip() for x in documents.split(",") if x.strip()]}
    cid = svc.open_claim(_actor(svc, user), request_from_dict(doc))
    _show(svc.get(cid))


@app.command("add-line")
def add_line(
    claim_id: int = typer.Argument(...),
    user: str = USER_OPT,
    invoice: str = typer.Option(..., "--invoice", help="Invoice number (票据号)."),
    amount: int = typer.Option(..., "--amount-fen", help="Line amount, fen."),
    quantity: int = typer.Option(1000, "--quantity-milli", help="Quantity × 1000 (default 1)."),
    price: int | None = typer.Option(None, "--unit-price-fen", help="Unit price, fen (default amount ÷ quantity)."),
    code: str = typer.Option("", "--code", help="National 医保 code when known."),
    text: str = typer.Option("", "--text", help="The item as the invoice writes it."),
    db: str | None = DB_OPT,
) -> None:
    """Add an invoice line (票据明细) to a draft or returned claim."""
    from yibao.reimbursement.service import InvoiceLine

    svc = _service(db)
    svc.add_line(claim_id, _actor(svc, user), InvoiceLine(invoice, amount, quantity, price, code, text))
    _show(svc.get(claim_id))


@app.command("submit")
def submit(claim_id: int = typer.Argument(...), user: str = USER_OPT, db: str | None = DB_OPT) -> None:
    """Submit a claim (受理): lines, documents, deadline and direct settlement are checked."""
    svc = _service(db)
    svc.review(claim_id, "submit", _actor(svc, user))
    _show(svc.get(claim_id))


@app.command("review")
def review(
    claim_id: int = typer.Argument(...),
    action: str = typer.Argument(..., help="first_review | return | reject | withdraw | approve"),
    user: str = USER_OPT,
    comment: str = typer.Option("", "--comment"),
    db: str | None = DB_OPT,
) -> None:
    """Take a review step; ``approve`` settles the claim by the settlement engine."""
    svc = _service(db)
    svc.review(claim_id, action, _actor(svc, user), comment=comment)
    _show(svc.get(claim_id))


@app.command("show")
def show(claim_id: int = typer.Argument(...), db: str | None = DB_OPT) -> None:
    """One claim with its lines, settlement and history."""
    _show(_service(db).get(claim_id))


@app.command("list")
def list_(
    status: str | None = typer.Option(None, "--status"),
    psn_no: str | None = typer.Option(None, "--psn-no"),
    db: str | None = DB_OPT,
) -> None:
    """The claims queue (newest first)."""
    rows = _service(db).list_claims(status=status, psn_no=psn_no)
    tab = Table(title=f"{len(rows)} manual claims 手工报销")
    for c in ("id", "psn_no", "status", "reason", "end", "claimed", "reimbursed"):
        tab.add_column(c)
    for d in rows:
        tab.add_row(
            str(d["claim_id"]),
            d["psn_no"],
            f"{d['status']} {d['status_zh']}",
            d["reason"],
            d["end_date"],
            fmt_yuan(d["claimed_fen"]),
            "—" if d["reimbursed_fen"] is None else fmt_yuan(d["reimbursed_fen"]),
        )
    console.print(tab)
