"""``yibao procurement …``: the VBP (集采) command line (Typer sub-app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from yibao.core.errors import YibaoError

app = typer.Typer(
    help="Volume-based procurement 集采: rounds, monitoring, integrity, simulation.", no_args_is_help=True
)
rules_app = typer.Typer(help="VBP rule sets 集采规则.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
console = Console()


def _fail(exc: Exception) -> None:
    if isinstance(exc, YibaoError):
        console.print(f"[bold red]error {exc.code}:[/] {exc.message_en}\n  {exc.message_zh}")
    else:
        console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(2)


@rules_app.command("list")
def rules_list() -> None:
    """Every shipped rule set, validated."""
    from yibao.procurement.params import get_ruleset, list_rulesets

    tab = Table(title="VBP rule sets")
    for c in ("name", "kind", "goods", "selection", "unconfirmed", "chain"):
        tab.add_column(c)
    try:
        for n in list_rulesets():
            r = get_ruleset(n)
            tab.add_row(n, r.kind, r.goods, r.selection.method, str(len(r.uncertain)), " → ".join(r.chain))
    except YibaoError as exc:
        _fail(exc)
    console.print(tab)


@rules_app.command("show")
def rules_show(name: str) -> None:
    """The merged rule set as JSON (sources and the values not yet confirmed, ``uncertain``, included)."""
    from yibao.procurement.params import load_ruleset

    try:
        console.print_json(json.dumps(load_ruleset(name).model_dump(mode="json"), ensure_ascii=False))
    except YibaoError as exc:
        _fail(exc)


@app.command("synth")
def synth(
    out: Path = typer.Argument(..., help="Round directory to write."),
    drugs: int = typer.Option(10, min=1),
    institutions: int = typer.Option(500, min=1),
    regions: int = typer.Option(8, min=1, max=31),
    seed: int = typer.Option(0),
) -> None:
    """Write a SYNTHETIC round directory (catalog, firms, bids, demand, relations)."""
    from yibao.procurement.io import write_round_dir
    from yibao.synth.procurement import generate_round

    sr = generate_round(drugs=drugs, institutions=institutions, regions=regions, seed=seed)
    sr.round.relations = sr.relations
    write_round_dir(sr.round, out)
    sr.ground_truth.to_csv(out / "ground_truth.csv", index=False)
    console.print(
        f"[black on yellow] SYNTHETIC [/] round written to {out} "
        f"({len(sr.round.bids)} bids, {len(sr.round.demand):,} demand lines)"
    )


def _load(round_dir: Path, rules: str):
    from yibao.procurement.io import load_round, validate_against_rules
    from yibao.procurement.params import load_ruleset

    rs = load_ruleset(rules)
    inp = load_round(round_dir)
    validate_against_rules(inp, rs)
    return inp, rs


@app.command("run")
def run(
    round_dir: Path = typer.Argument(..., exists=True, help="Round directory (CSV) or Excel workbook."),
    rules: str = typer.Option(..., "--rules", help="Rule-set name, e.g. national-batch-10."),
    out: Path | None = typer.Option(None, "--out", help="Write report.xlsx, report.html, ocds.json here."),
    db: str | None = typer.Option(None, "--db", help="Persist the round in this database (one transaction)."),
    slots_from_graph: bool = typer.Option(True, help="Use the firm graph (relations.csv) for batch-10 slot groups."),
    credit_db: str | None = typer.Option(
        None, "--credit-db", help="Take credit grades from yibao.supervision in this database."
    ),
    ocds_schema: Path | None = typer.Option(
        None,
        "--ocds-schema",
        help="Local copy (dir or ZIP) of the published OCDS 1.1 schema "
        "and the bids extension; default $YIBAO_OCDS_SCHEMA, else a subset schema.",
    ),
) -> None:
    """Evaluate a round: winners with reasons, volumes, supply regions, contracts."""
    from yibao.procurement.engine import run_round
    from yibao.procurement.integrity import build_graph, check_round, slot_groups
    from yibao.procurement.report import ocds_validation_mode, render_html, write_excel, write_ocds

    try:
        inp, rs = _load(round_dir, rules)
        g = build_graph(inp.firms, inp.relations, inp.bids)
        lookup = None
        if credit_db:
            from yibao.core.db import make_engine
            from yibao.procurement.service import supervision_credit_lookup

            lookup = supervision_credit_lookup(make_engine(credit_db), inp.round_date)
        res = run_round(
            inp, rs, slot_group=slot_groups(g, inp.bids) if slots_from_graph else None, credit_lookup=lookup
        )
        flags = check_round(g, inp.bids, rs, inp.round_date)
    except YibaoError as exc:
        _fail(exc)
    if inp.synthetic:
        console.print("[black on yellow] SYNTHETIC DATA 合成数据 [/]")
    tab = Table(title=f"{res.name} under {rs.id}")
    for c in ("drug", "bidders", "qualified", "max", "winners", "share", "cycle", "primary regions"):
        tab.add_column(c)
    for d in res.drugs.values():
        tab.add_row(
            d.drug_id,
            str(len(d.outcomes)),
            str(d.qualified_n),
            str(d.max_winners),
            ", ".join(w.firm_id for w in d.winners),
            f"{d.share_bp / 100:.0f}%",
            str(d.cycle_years),
            str(len(d.primary)),
        )
    console.print(tab)
    for w in res.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"{len(flags)} integrity flags; {len(res.contracts):,} contracts")
    if out:
        from yibao.procurement.report import to_ocds, validate_ocds

        try:  # validate before anything is written: a failing export leaves no partial reports
            mode = ocds_validation_mode(ocds_schema)
            errors = validate_ocds(to_ocds(inp, res), ocds_schema)
        except YibaoError as exc:
            _fail(exc)
        if errors:
            _fail(ValueError(f"OCDS export does not validate against the {mode}: " + "; ".join(errors[:5])))
        out.mkdir(parents=True, exist_ok=True)
        write_ocds(inp, res, out / "ocds.json", ocds_schema)
        write_excel(inp, res, out / "report.xlsx")
        render_html(inp, res, out / "report.html", flags)
        console.print(f"OCDS export validated against the {mode}")
        console.print(f"reports in {out}")
    if db:
        from yibao.core.db import make_engine, upgrade
        from yibao.procurement.service import save_round

        upgrade(db)
        rid = save_round(make_engine(db), inp, res)
        console.print(f"saved as round {rid}")


@app.command("compare")
def compare(
    round_dir: Path = typer.Argument(..., exists=True),
    rules: str = typer.Option(..., "--rules"),
    against: str = typer.Option(..., "--against"),
) -> None:
    """Rule what-if: the same round under two rule sets, side by side."""
    from yibao.procurement.params import load_ruleset
    from yibao.procurement.simulate import compare_rulesets

    try:
        inp, ra = _load(round_dir, rules)
        rb = load_ruleset(against)
        cmp = compare_rulesets(inp, ra, rb)
    except YibaoError as exc:
        _fail(exc)
    from yibao.core.money import fmt_yuan

    def head(c: str) -> str:  # amounts are fen in the data, shown as ¥ here
        return f"amount ¥ {c.removeprefix('amount_fen_')}" if c.startswith("amount_fen_") else c

    def cell(c: str, v: Any) -> str:
        return f"¥{fmt_yuan(int(v))}" if c.startswith("amount_fen_") else str(v)

    cols = [str(c) for c in cmp.drugs.columns]
    tab = Table(title=f"{ra.id} vs {rb.id}")
    for c in cols:
        tab.add_column(head(c), justify="right" if c.startswith("amount_fen_") else "left")
    for r in cmp.drugs.itertuples(index=False):
        tab.add_row(*(cell(c, v) for c, v in zip(cols, r, strict=True)))
    console.print(tab)
    tot = Table(title="totals")
    tot.add_column("")
    tot.add_column("", justify="right")
    for k, v in cmp.totals.items():
        tot.add_row(head(k), cell(k, v) if k.startswith("amount_fen_") else f"{int(v):,}")
    console.print(tot)


@app.command("simulate")
def simulate(
    rules: str = typer.Option(..., "--rules"),
    competitor: list[str] = typer.Option(
        ..., "--competitor", help="dist:p1,p2[,p3][:revive], e.g. lognormal:1.2,0.25 (yuan)"
    ),
    prices: str = typer.Option(..., "--prices", help="Candidate unit prices in yuan, comma separated."),
    max_price: str = typer.Option(..., "--max-price", help="Maximum valid unit price (yuan)."),
    base: int = typer.Option(1_000_000, "--base", help="Demand base in minimum units."),
    form: str = typer.Option("oral_solid", "--form"),
    rounds: int = typer.Option(20_000, "--rounds", min=100),
    accept_revival: bool = typer.Option(False),
    seed: int = typer.Option(0),
) -> None:
    """A firm's win probability and expected revenue per candidate price (Monte Carlo)."""
    from yibao.procurement.params import load_ruleset
    from yibao.procurement.simulate import Belief, simulate_bids

    try:
        beliefs = []
        for c in competitor:
            parts = c.split(":")
            beliefs.append(
                Belief(parts[0], tuple(float(x) for x in parts[1].split(",")), len(parts) > 2 and parts[2] == "revive")
            )
        res = simulate_bids(
            load_ruleset(rules),
            beliefs,
            prices.split(","),
            max_unit_price_yuan=max_price,
            base_units=base,
            dosage_form=form,
            rounds=rounds,
            accept_revival=accept_revival,
            seed=seed,
        )
    except (YibaoError, ValueError, IndexError) as exc:
        _fail(exc)
    tab = Table(title=f"bid simulation under {res.ruleset_id}: {res.rounds:,} simulated rounds in {res.seconds:.2f} s")
    df = res.frame()
    from yibao.core.money import fmt_yuan

    for c in ("unit price ¥", "win probability", "expected units", "expected revenue ¥"):
        tab.add_column(c, justify="right")
    for r, fen in zip(df.itertuples(index=False), res.expected_revenue_fen, strict=True):
        tab.add_row(str(r.price_yuan), f"{r.win_probability:.3f}", f"{r.expected_units:,.0f}", f"¥{fmt_yuan(int(fen))}")
    console.print(tab)
    console.print(f"[dim]{res.notes}[/]")


@app.command("integrity")
def integrity(
    round_dir: Path = typer.Argument(..., exists=True), rules: str = typer.Option("national-batch-10", "--rules")
) -> None:
    """Bid-integrity checks over the firm graph, each flag with evidence."""
    from yibao.procurement.integrity import check_input

    try:
        inp, rs = _load(round_dir, rules)
        flags = check_input(inp, inp.relations, rs)
    except YibaoError as exc:
        _fail(exc)
    tab = Table(title=f"{len(flags)} flags (leads for review, not findings)")
    for c in ("check", "drug", "firms", "evidence"):
        tab.add_column(c)
    for f in flags:
        tab.add_row(f.check, f.drug_id, ", ".join(f.firms), " · ".join(f.evidence))
    console.print(tab)


@app.command("import-orders")
def import_orders(
    round_id: int = typer.Argument(..., help="A round saved with 'procurement run --db'."),
    report: Path = typer.Argument(..., help="Purchase report (采购订单), CSV or .xlsx."),
    db: str = typer.Option(..., "--db", help="Database holding the round."),
    cycle_start: str | None = typer.Option(
        None, "--cycle-start", help="First month of the cycle (YYYY-MM) for calendar months."
    ),
) -> None:
    """Persist a real purchase report against a saved round's contracts (one transaction; a bad row writes nothing)."""
    from yibao.core.db import make_engine
    from yibao.procurement.execution_io import read_report
    from yibao.procurement.service import load_contracts, save_orders

    try:
        engine = make_engine(db)
        contracts = load_contracts(engine, round_id)
        orders = read_report(
            report, "purchases", cycle_start=cycle_start, contracts=contracts if len(contracts) else None
        )
        n = save_orders(engine, round_id, orders)
    except YibaoError as exc:
        _fail(exc)
    console.print(f"{n:,} orders from {report.name} saved to round {round_id}")


@app.command("monitor")
def monitor(
    round_dir: Path = typer.Argument(..., exists=True),
    rules: str = typer.Option(..., "--rules"),
    months: int = typer.Option(6, min=1, max=36, help="Months elapsed in the cycle."),
    orders_csv: Path | None = typer.Option(
        None, "--orders", help="Purchase report, CSV or .xlsx (default: SYNTHETIC orders)."
    ),
    inventory_path: Path | None = typer.Option(
        None, "--inventory", help="Winners' monthly inventory report, CSV or .xlsx (default: SYNTHETIC)."
    ),
    last_year_path: Path | None = typer.Option(
        None, "--last-year", help="Last year's use of non-winning products, CSV or .xlsx."
    ),
    cycle_start: str | None = typer.Option(
        None, "--cycle-start", help="First month of the cycle (YYYY-MM) for calendar months in reports."
    ),
    seed: int = typer.Option(0),
) -> None:
    """Execution monitoring: progress per institution, non-winning volume, inventory, fund prepay."""
    from yibao.procurement.engine import run_round
    from yibao.procurement.execution_io import read_report
    from yibao.procurement.monitor import fund_prepay_flow, inventory_check, non_winning_check, progress
    from yibao.synth.procurement import generate_inventory, generate_orders

    try:
        inp, rs = _load(round_dir, rules)
        res = run_round(inp, rs)
        orders = (
            read_report(orders_csv, "purchases", cycle_start=cycle_start, contracts=res.contracts)
            if orders_csv
            else None
        )
        stock = (
            read_report(inventory_path, "inventory", cycle_start=cycle_start, contracts=res.contracts)
            if inventory_path
            else None
        )
        last = read_report(last_year_path, "last_year", contracts=res.contracts) if last_year_path else None
    except YibaoError as exc:
        _fail(exc)
    if orders is None:
        console.print("[black on yellow] SYNTHETIC purchase orders 合成采购订单 (no --orders report given) [/]")
        orders = generate_orders(res.contracts, months=months, seed=seed)
    if stock is None:
        console.print("[black on yellow] SYNTHETIC inventory reports 合成库存报告 (no --inventory report given) [/]")
        stock = generate_inventory(res.contracts, months=months, seed=seed)
    orders = orders[orders["month"] <= months]
    pr = progress(orders, res.contracts, months_elapsed=months)
    behind = pr[pr["behind"]]
    console.print(
        f"progress: {len(pr):,} institution×drug lines, {len(behind):,} behind schedule "
        f"({behind['institution_id'].nunique():,} institutions)"
    )
    nw = non_winning_check(orders, res.contracts, last)
    scope = "last year's use and the winners'" if last is not None else "the winners' only (no --last-year report)"
    console.print(
        f"non-winning products: {len(nw):,} lines, {int(nw['alert'].sum()):,} above their cap (checked against {scope})"
    )
    inv = inventory_check(stock[stock["month"] <= months], res.contracts, list(range(1, months + 1)))
    console.print(
        f"inventory reports: {int((inv['alert'] == 'missing report').sum())} missing, "
        f"{int(inv['alert'].str.startswith('stock').sum())} low stock"
    )
    ref = {(d, s.spec_id): s.max_price_fen for d, e in inp.catalog.items() for s in e.specs}
    led = fund_prepay_flow(res.contracts, orders, ref)
    t = led.summary[["prepaid_fen", "settled_fen", "savings_fen", "retained_fen"]].sum()
    from yibao.core.money import fmt_yuan

    console.print(
        f"fund prepay 基金预付 ¥{fmt_yuan(int(t.prepaid_fen))}, settled 即时结算 ¥{fmt_yuan(int(t.settled_fen))}, "
        f"savings ¥{fmt_yuan(int(t.savings_fen))}, kept by hospitals 结余留用 ¥{fmt_yuan(int(t.retained_fen))}"
    )
