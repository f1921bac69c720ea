"""``yibao supervision``: scan, score, queue, report, and ``case`` (案件办理: open, show, list, step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yibao.core.errors import YibaoError
from yibao.core.money import fmt_yuan

app = typer.Typer(help="Fund supervision (基金监管): audit rules, analytics, work queue, scores.", no_args_is_help=True)
console = Console()


def _fail(exc: Exception) -> NoReturn:
    msg = f"{exc.message_en} / {exc.message_zh}" if isinstance(exc, YibaoError) else str(exc)
    console.print(f"[bold red]error:[/] {msg}")
    raise typer.Exit(2)


def _print_df(df, title: str, money: tuple[str, ...] = (), limit: int = 50) -> None:
    tab = Table(title=title)
    for c in df.columns:
        tab.add_column(str(c), justify="right")
    for r in df.head(limit).itertuples(index=False):
        tab.add_row(
            *[
                fmt_yuan(int(v)) if c in money else (f"{v:.4f}" if isinstance(v, float) else str(v))
                for c, v in zip(df.columns, r, strict=True)
            ]
        )
    console.print(tab)


@app.command()
def scan(
    data: Path = typer.Option(
        ..., "--data", exists=True, file_okay=False, help="Directory of contract Parquet tables."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write hits.parquet here (default: --data)."),
    rule: list[str] = typer.Option(None, "--rule", help="Only these rule ids."),
    engine: str = typer.Option(
        "duckdb", "--engine", help="duckdb, or spark (the same rule SQL rewritten for Spark; YIBAO_SPARK_MASTER)."
    ),
) -> None:
    """事后 review: run every post-care rule over the region; writes hits.parquet."""
    import pyarrow.parquet as pq

    from yibao.supervision.batch import hits_table, scan
    from yibao.supervision.knowledge import default_rulebook

    if engine not in ("duckdb", "spark"):
        _fail(YibaoError(f"--engine must be duckdb or spark, not {engine!r}", "引擎只能是 duckdb 或 spark"))
    run_scan: Any = scan  # or the Spark twin, with the same arguments and result fields
    if engine == "spark":
        from yibao.spark.supervision import scan_spark as run_scan
    book = default_rulebook()
    try:
        n = len(book.by_stage("post"))
        with Progress(
            TextColumn("[bold]rules[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("", total=n)
            res = run_scan(
                data,
                book,
                rules=rule or None,
                progress=lambda rid, k: bar.update(task, advance=1, description=f"{rid}: {k:,}"),
            )
    except YibaoError as exc:
        _fail(exc)
    for en, zh in res.skipped.values():  # the purchase table is read, never made up from the labels
        console.print(f"{en}\n{zh}", style="yellow", markup=False, soft_wrap=True)
    if getattr(res, "on_driver", ()):
        console.print(f"on the driver (Python coding detector, not Spark SQL) 在驱动端运行: {', '.join(res.on_driver)}")
    if res.purchase.usable and res.purchase.synthetic:
        console.print(
            "purchase table: SYNTHETIC 合成进货数据 (written by yibao synth from the generated data, not procurement "
            "records)"
        )
    target = (out or data) / "hits.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(hits_table(res.hits), target)
    if target.parent.resolve() == data.resolve():
        from yibao.core import manifest
        from yibao.supervision.batch import CONTRACT_VIEWS

        inputs = (*CONTRACT_VIEWS, "purchase") if res.purchase.usable else CONTRACT_VIEWS
        manifest.record(data, ["hits"], inputs, command="yibao supervision scan --data {dir}")
    summary = (
        res.hits.groupby("rule_id")
        .agg(hits=("entity_id", "size"), amount_yuan=("amount", lambda a: int(a.clip(lower=0).sum())))
        .reset_index()
    )
    # amounts are fen in the hits; the table shows them as yuan under a yuan header
    summary = summary.rename(columns={"amount_yuan": "amount ¥"})
    _print_df(
        summary, f"{len(res.hits):,} hits over {res.lines:,} lines in {res.total_seconds:.1f} s", money=("amount ¥",)
    )
    console.print(f"hits: {target}")


@app.command("import-purchases")
def import_purchases_cmd(
    source: Path = typer.Argument(
        ...,
        help="CSV or Parquet: fixmedins_code, med_list_codg, policy_year, qty_milli, opening_stock_milli[, synthetic].",
    ),
    data: Path = typer.Option(..., "--data", exists=True, file_okay=False, help="The region's data directory."),
) -> None:
    """进货: import the institutions' purchase records (the stock rule SV-STOCK-01 reads them) as purchase.parquet."""
    from yibao.supervision.stock import import_purchases

    try:
        n = import_purchases(data, source)
    except YibaoError as exc:
        _fail(exc)
    console.print(f"imported {n:,} purchase rows from {source} into {data / 'purchase.parquet'}")


@app.command()
def score(
    data: Path = typer.Option(
        ..., "--data", exists=True, file_okay=False, help="A synthetic region with ground_truth.parquet."
    ),
) -> None:
    """Precision and recall of every rule, analytic and the ranked queue on the injected ground truth."""
    from yibao.supervision.reports import review_region

    try:
        rv = review_region(data)
    except YibaoError as exc:
        _fail(exc)
    scores, patterns = rv.scores, rv.pattern_scores
    if scores is None or patterns is None:
        _fail(ValueError(f"{data} has no ground_truth.parquet (scoring needs a synthetic region)"))
    for en, zh in rv.skipped.values():  # a skipped rule is not scored
        console.print(f"{en} (not scored)\n{zh}", style="yellow", markup=False, soft_wrap=True)
    _print_df(
        scores[["rule_id", "labelled", "flagged", "true_hits", "precision", "recall", "failed"]],
        "rules and analytics on the injected ground truth",
        limit=100,
    )
    _print_df(
        patterns[["pattern", "labelled", "found", "recall"]],
        "recall per injected pattern (any rule)",
        limit=100,
    )
    _print_df(rv.queue_scores, "ranked work queue: precision in the top k")
    failed = scores[scores.failed]
    if len(failed):
        console.print(f"[bold red]FAILED:[/] rules that found none of their own pattern: {', '.join(failed.rule_id)}")
        raise typer.Exit(1)


@app.command()
def queue(
    data: Path = typer.Option(..., "--data", exists=True, file_okay=False),
    top: int = typer.Option(30, "--top", min=1),
    excel: Path | None = typer.Option(None, "--excel", help="Also write an Excel workbook."),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML report."),
) -> None:
    """The ranked work queue (rules + analytics), and optional Excel / HTML reports."""
    from yibao.supervision.reports import review_region, write_excel, write_html

    try:
        rv = review_region(data)
    except YibaoError as exc:
        _fail(exc)
    q = rv.analytics["queue"]
    _print_df(
        q[["rank", "kind", "item_id", "score", "amount", "rules", "fixmedins_code", "dr_code"]].round({"score": 2}),
        f"work queue (top {top} of {len(q):,})",
        money=("amount",),
        limit=top,
    )
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
        tab.add_row(
            r.id,
            f"{r.name} {r.name_zh}",
            "/".join(STAGE_ZH[s] for s in r.stages),
            str(r.severity),
            r.action if "in" in r.stages else "",
            r.pattern,
        )
    console.print(tab)


# --- enforcement cases (案件办理) ---------------------------------------------------------------------

case_app = typer.Typer(
    help="Enforcement cases (案件办理): open a clue, take the workflow's steps, show the history.", no_args_is_help=True
)
app.add_typer(case_app, name="case")

DB_OPT = typer.Option(
    None, "--db", help="Database URL (default $YIBAO_DATABASE_URL or sqlite:///yibao.db; migrated first)."
)
USER_OPT = typer.Option(
    ..., "--user", help="The console user taking the step (yibao console add-user); their role is checked."
)


def _case_engine(db: str | None):
    from yibao.core.db import database_url, make_engine, upgrade

    url = database_url(db)
    upgrade(url)
    return make_engine(url)


def _actor(engine, username: str):
    """The console user as the step's actor: who they are and their role, from the database."""
    from yibao.core.db import session_scope
    from yibao.supervision.cases import Actor, CaseForbidden
    from yibao.web.models import ConsoleUser

    with session_scope(engine) as s:
        u = s.get(ConsoleUser, username)
        if u is None:
            raise CaseForbidden(
                f"no console user {username!r} (create one with: yibao console add-user)",
                f"控制台用户 {username} 不存在",
                field="user",
            )
        return Actor(u.username, u.role, u.fixmedins_code)


def _show_case(svc, c) -> None:
    from yibao.supervision.cases import case_dict, event_dict

    d = case_dict(c, svc.wf)
    tab = Table(title=f"case 案件 {c.id}: {d['state']} {d['state_zh']}", show_header=False)
    for k in (
        "subject_kind",
        "subject_code",
        "clue_kind",
        "source",
        "violation",
        "procedure",
        "band",
        "major",
        "legal_review_passed",
        "transferred_to",
        "appeal_kind",
        "decided_at",
        "created_at",
    ):
        tab.add_row(k, str(d[k]))
    for k in ("loss_fen", "fine_fen", "recovered_fen", "fine_paid_fen"):
        tab.add_row(k, f"{d[k]} fen ({fmt_yuan(d[k])})")
    console.print(tab)
    rng = svc.ranges(c)
    if rng:
        console.print(
            f"discretion benchmark 自由裁量基准: {c.violation}, loss {c.loss_fen} fen ({fmt_yuan(c.loss_fen)}), "
            f"{rng[0][1].basis}"
        )
        for band, p in rng:
            console.print(
                f"  {band}: fine {p.fine_min_fen}..{p.fine_max_fen} fen "
                f"({fmt_yuan(p.fine_min_fen)}..{fmt_yuan(p.fine_max_fen)}), "
                f"{p.procedure} procedure, legal review 法制审核 {'required' if p.legal_review else 'not required'}",
                soft_wrap=True,
            )
    ht = Table(title="history 全过程记录")
    for col in ("#", "at", "actor", "action", "from → to", "changed", "note"):
        ht.add_column(col)
    for e in svc.events(c.id):
        ev = event_dict(e)
        after = ev["payload"].get("after", {})
        before = ev["payload"].get("before", {})
        changed = (
            ""
            if e.action == "open"
            else ", ".join(f"{k}: {before.get(k, '')}→{v}" for k, v in after.items() if k != "state")
        )
        ht.add_row(
            str(e.id), ev["at"] or "", e.actor, e.action, f"{e.from_state or '·'} → {e.to_state}", changed, e.note
        )
    console.print(ht)
    console.print("next actions 可执行: " + (", ".join(svc.next_actions(c)) or "none (final state)"))


@case_app.command("open")
def case_open(
    subject_kind: str = typer.Option(..., "--subject-kind", help="institution | physician | person | enterprise"),
    subject_code: str = typer.Option(..., "--subject-code", help="fixmedins_code, physician code, psn_no or firm id."),
    clue_kind: str = typer.Option(
        ..., "--clue-kind", help="scan_hit | complaint | referral | inspection (case_workflow.yaml)."
    ),
    source: str = typer.Option(
        ..., "--source", help="The rule id of the scan hit, the complaint number, the referring agency…"
    ),
    loss_fen: int = typer.Option(0, "--loss-fen", help="The fund's loss as first estimated, integer fen."),
    note: str = typer.Option("", "--note"),
    user: str = USER_OPT,
    db: str | None = DB_OPT,
) -> None:
    """Case intake (线索登记) from a clue: a scan hit, a complaint or a referral."""
    from yibao.supervision.cases import CaseService

    try:
        engine = _case_engine(db)
        svc = CaseService(engine)
        cid = svc.open_case(
            _actor(engine, user), subject_kind, subject_code, clue_kind, source, loss_fen=loss_fen, note=note
        )
    except YibaoError as exc:
        _fail(exc)
    console.print(f"case {cid} opened (clue 线索)")


@case_app.command("show")
def case_show(case_id: int = typer.Argument(...), db: str | None = DB_OPT) -> None:
    """The case, the benchmark's ranges for its violation, its history
    (who, when, what, before → after) and the next actions.
    """
    from yibao.supervision.cases import CaseService

    try:
        svc = CaseService(_case_engine(db))
        _show_case(svc, svc.get(case_id))
    except YibaoError as exc:
        _fail(exc)


@case_app.command("list")
def case_list(
    state: str | None = typer.Option(None, "--state"),
    subject_code: str | None = typer.Option(None, "--subject-code"),
    limit: int = typer.Option(100, "--limit", min=1),
    db: str | None = DB_OPT,
) -> None:
    """Cases, newest first."""
    from yibao.supervision.cases import CaseService

    try:
        svc = CaseService(_case_engine(db))
        rows = svc.list(state=state, subject_code=subject_code, limit=limit)
    except YibaoError as exc:
        _fail(exc)
    tab = Table(title=f"{len(rows)} cases 案件")
    for col in ("id", "state", "subject", "clue", "violation", "loss ¥", "fine ¥", "recovered ¥", "fine paid ¥"):
        tab.add_column(col)
    for c in rows:
        tab.add_row(
            str(c.id),
            f"{c.state} {svc.wf.states.get(c.state, '')}",
            f"{c.subject_kind}:{c.subject_code}",
            f"{c.clue_kind}:{c.source}",
            c.violation,
            fmt_yuan(c.loss_fen),
            fmt_yuan(c.fine_fen),
            fmt_yuan(c.recovered_fen),
            fmt_yuan(c.fine_paid_fen),
        )
    console.print(tab)


@case_app.command("step")
def case_step(
    case_id: int = typer.Argument(...),
    action: str = typer.Option(
        ...,
        "--action",
        help="file, dismiss, investigate, note, transfer, submit_review, review_pass, return, decide, "
        "decide_summary, recover, collect_fine, publish, appeal, uphold, revoke, close",
    ),
    user: str = USER_OPT,
    note: str = typer.Option("", "--note", help="What was done or found (an evidence note's text for --action note)."),
    agency: str | None = typer.Option(None, "--agency", help="transfer: the agency (case_workflow.yaml agencies)."),
    violation: str | None = typer.Option(
        None, "--violation", help="note / submit_review / decide: the violation (discretion.yaml); default the case's."
    ),
    loss_fen: int | None = typer.Option(
        None, "--loss-fen", help="note / submit_review / decide: the fund's loss in fen; default the case's."
    ),
    band: str = typer.Option("general", "--band", help="submit_review / decide: minor | general | serious."),
    first_offence: bool = typer.Option(False, "--first-offence"),
    corrected: bool = typer.Option(False, "--corrected"),
    no_fault: bool = typer.Option(False, "--no-fault"),
    mitigating: bool = typer.Option(False, "--mitigating"),
    aggravating: bool = typer.Option(False, "--aggravating"),
    sanction: list[str] = typer.Option(None, "--sanction", help="e.g. suspension (needs the legal review)."),
    fine_fen: int | None = typer.Option(
        None, "--fine-fen", help="decide: the fine, integer fen, inside the benchmark's range."
    ),
    amount_fen: int | None = typer.Option(
        None, "--amount-fen", help="recover / collect_fine: the amount, integer fen."
    ),
    appeal_kind: str | None = typer.Option(
        None, "--appeal-kind", help="appeal: reconsideration (复议) | litigation (诉讼)."
    ),
    db: str | None = DB_OPT,
) -> None:
    """Take one step of the workflow; refused (nothing changed) when
    out of order, not the user's role or outside the benchmark.
    """
    from yibao.supervision.cases import CaseService

    try:
        engine = _case_engine(db)
        svc = CaseService(engine)
        actor = _actor(engine, user)
        params: dict = {}
        if action in ("submit_review", "decide", "decide_summary"):
            c = svc.get(case_id)
            params["facts"] = {
                "violation": violation or c.violation,
                "loss_fen": c.loss_fen if loss_fen is None else loss_fen,
                "band": band,
                "first_offence": first_offence,
                "corrected": corrected,
                "no_fault": no_fault,
                "mitigating": mitigating,
                "aggravating": aggravating,
                "sanctions": tuple(sanction or ()),
            }
            params["fine_fen"] = fine_fen
        else:
            params.update(violation=violation, loss_fen=loss_fen, fine_fen=fine_fen)
        params.update(agency=agency, amount_fen=amount_fen, appeal_kind=appeal_kind)
        c = svc.perform(case_id, action, actor, note=note, **params)
    except YibaoError as exc:
        _fail(exc)
    console.print(f"case {c.id}: {action} → {c.state} {svc.wf.states.get(c.state, '')}")
