"""``yibao supervision``: scan, score, queue, report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yibao.core.errors import YibaoError
from yibao.core.money import fmt_yuan

app = typer.Typer(help="Fund supervision (基金监管): audit rules, analytics, work queue, scores.", no_args_is_help=True)
console = Console()


def _fail(exc: Exception) -> None:
    msg = f"{exc.message_en} / {exc.message_zh}" if isinstance(exc, YibaoError) else str(exc)
    console.print(f"[bold red]error:[/] {msg}")
    raise typer.Exit(2)


def _print_df(df, title: str, money: tuple[str, ...] = (), limit: int = 50) -> None:
    tab = Table(title=title)
    for c in df.columns:
        tab.add_column(str(c), justify="right")
    for r in df.head(limit).itertuples(index=False):
        tab.add_row(*[fmt_yuan(int(v)) if c in money else (f"{v:.4f}" if isinstance(v, float) else str(v)) for c, v in zip(df.columns, r)])
    console.print(tab)


@app.command()
def scan(
    data: Path = typer.Option(..., "--data", exists=True, file_okay=False, help="Directory of contract Parquet tables."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write hits.parquet here (default: --data)."),
    rule: list[str] = typer.Option(None, "--rule", help="Only these rule ids."),
) -> None:
    """事后 review: run every post-care rule over the region; writes hits.parquet."""
    import pyarrow.parquet as pq

    from yibao.supervision.batch import hits_table
    from yibao.supervision.batch import scan as run_scan
    from yibao.supervision.knowledge import default_rulebook
    from yibao.supervision.reports import _is_synthetic
    from yibao.supervision.stock import synthesize_purchases

    book = default_rulebook()
    try:
        from yibao.core.parquet_io import table_path

        if _is_synthetic(data) and table_path(data, "purchase") is None:
            synthesize_purchases(data)
            console.print("synthesised purchase.parquet (SYNTHETIC) for the stock rule")
        n = len(book.by_stage("post"))
        with Progress(TextColumn("[bold]rules[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("", total=n)
            res = run_scan(data, book, rules=rule or None, progress=lambda rid, k: bar.update(task, advance=1, description=f"{rid}: {k:,}"))
    except YibaoError as exc:
        _fail(exc)
    target = (out or data) / "hits.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(hits_table(res.hits), target)
    if target.parent.resolve() == data.resolve():
        from yibao.core import manifest
        from yibao.supervision.batch import CONTRACT_VIEWS

        manifest.record(data, ["hits"], (*CONTRACT_VIEWS, "purchase"), command="yibao supervision scan --data {dir}")
    summary = res.hits.groupby("rule_id").agg(hits=("entity_id", "size"), amount_yuan=("amount", lambda a: int(a.clip(lower=0).sum()))).reset_index()
    # amounts are fen in the hits; the table shows them as yuan under a yuan header
    summary = summary.rename(columns={"amount_yuan": "amount ¥"})
    _print_df(summary, f"{len(res.hits):,} hits over {res.lines:,} lines in {res.total_seconds:.1f} s", money=("amount ¥",))
    console.print(f"hits: {target}")


@app.command()
def score(data: Path = typer.Option(..., "--data", exists=True, file_okay=False, help="A synthetic region with ground_truth.parquet.")) -> None:
    """Precision and recall of every rule, analytic and the ranked queue on the injected ground truth."""
    from yibao.supervision.reports import review_region

    try:
        rv = review_region(data)
    except YibaoError as exc:
        _fail(exc)
    if rv.scores is None:
        _fail(ValueError(f"{data} has no ground_truth.parquet (scoring needs a synthetic region)"))
    _print_df(rv.scores[["rule_id", "labelled", "flagged", "true_hits", "precision", "recall", "failed"]], "rules and analytics on the injected ground truth", limit=100)
    _print_df(rv.pattern_scores[["pattern", "labelled", "found", "recall"]], "recall per injected pattern (any rule)", limit=100)
    _print_df(rv.queue_scores, "ranked work queue: precision in the top k")
    failed = rv.scores[rv.scores.failed]
    if len(failed):
        console.print(f"[bold red]FAILED:[/] rules that found none of their own pattern: {', '.join(failed.rule_id)}")
        raise typer.Exit(1)


@app.command()
def queue(
    data: Path = typer.Option(..., "--data", exists=True, file_okay=False),
    top: int = typer.Option(30, "--top", min=1),
    excel: Optional[Path] = typer.Option(None, "--excel", help="Also write an Excel workbook."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write an HTML report."),
) -> None:
    """The ranked work queue (rules + analytics), and optional Excel / HTML reports."""
    from yibao.supervision.reports import review_region, write_excel, write_html

    try:
        rv = review_region(data)
    except YibaoError as exc:
        _fail(exc)
    q = rv.analytics["queue"]
    _print_df(q[["rank", "kind", "item_id", "score", "amount", "rules", "fixmedins_code", "dr_code"]].round({"score": 2}), f"work queue (top {top} of {len(q):,})", money=("amount",), limit=top)
    if excel:
        console.print(f"excel: {write_excel(rv, excel)}")
    if html:
        console.print(f"html: {write_html(rv, html)}")


@app.command()
def rules() -> None:
    """List the rule library."""
    from yibao.supervision.knowledge import STAGE_ZH, default_rulebook

    tab = Table(title="rule library 规则库")
    for c in ("id", "name", "stages", "severity", "action", "pattern"):
        tab.add_column(c)
    for r in default_rulebook().rules:
        tab.add_row(r.id, f"{r.name} {r.name_zh}", "/".join(STAGE_ZH[s] for s in r.stages), str(r.severity), r.action if "in" in r.stages else "", r.pattern)
    console.print(tab)
