"""``yibao drg``: group 结算清单 cases with a DRG scheme (CHS-DRG 1.1 or a local one)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yibao.core.errors import YibaoError

app = typer.Typer(
    help="DRG grouping (按疾病诊断相关分组): CHS-DRG 1.1 and local schemes, as data.", no_args_is_help=True
)
console = Console()

SCHEME = typer.Option("chs-drg-1.1", "--scheme", help="Scheme name (chs-drg-1.1, a local scheme's name) or directory.")
ON = typer.Option(None, "--on", help="Use the version of the scheme in force on this date (YYYY-MM-DD).")


def _fail(exc: Exception) -> None:
    if isinstance(exc, YibaoError):
        console.print(
            f"[bold red]error[/] {exc.code}: {exc.message_en}\n      {exc.message_zh}"
            + (f"\n      field: {exc.field}" if exc.field else ""),
            soft_wrap=True,
        )
    else:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
    raise typer.Exit(2)


def _date(v: str | None) -> dt.date | None:
    if v is None:
        return None
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        raise typer.BadParameter(f"--on {v!r} is not a date (YYYY-MM-DD)") from None


@app.command("group")
def group(
    infile: Path = typer.Option(
        ...,
        "--in",
        help="Cases: .parquet or .csv with case_id, gend, age, nwb_age, nwb_bir_wt, ipt_days, main_diag, other_diags, "
        "oprns.",
    ),
    out: Path = typer.Option(..., "--out", help="Groups: .parquet or .csv with case_id, mdc, adrg, drg, status."),
    scheme: str = SCHEME,
    on: str | None = ON,
    explain: bool = typer.Option(
        False, "--explain", help="Add the path of rules that placed each case (slower: one case at a time)."
    ),
) -> None:
    """Group a file of cases; every case gets a group or the reason it has none."""
    from yibao.payment.grouper import load_grouper, read_cases, write_groups

    try:
        t0 = time.perf_counter()
        g = load_grouper(scheme, _date(on))
        t_load = time.perf_counter() - t0
        cases = read_cases(infile)
        with Progress(
            TextColumn("grouping"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("group", total=1.0)
            t1 = time.perf_counter()
            frame = g.group_frame(cases, explain=explain, progress=lambda f: bar.update(task, completed=f))
            secs = time.perf_counter() - t1
        write_groups(frame, out, explain=explain)
    except YibaoError as exc:
        _fail(exc)
    n = len(frame)
    ok = int((frame.status == "ok").sum())
    refused = int(frame.status.str.startswith("refused").sum())
    ungroupable = int((frame.drg == "0000").sum())
    qy = int(frame.drg.str.endswith("QY").sum())
    console.print(f"scheme {g.name} {g.version} (from {g.effective_from}) loaded in {t_load:.1f} s — {g.label}")
    console.print(
        f"grouped {n:,} cases in {secs:.2f} s ({n / secs if secs else 0:,.0f} cases/s): "
        f"{ok:,} in a group ({qy:,} ambiguous QY), {ungroupable:,} ungroupable (0000), {refused:,} refused for bad "
        "input"
    )
    if n:
        t = Table(title="cases by MDC")
        for c in ("MDC", "cases", "DRGs"):
            t.add_column(c, justify="right")
        grouped = frame[frame.mdc != ""]
        for mdc, sub in sorted(grouped.groupby("mdc"), key=lambda kv: -len(kv[1])):
            t.add_row(str(mdc), f"{len(sub):,}", f"{sub.drg.nunique():,}")
        console.print(t)
        bad = frame[frame.status != "ok"].status.value_counts().head(8)
        if len(bad):
            console.print("most frequent reasons a case has no group:")
            for reason, k in bad.items():
                console.print(f"  {k:>8,}  {reason}", soft_wrap=True)
    console.print(f"wrote {out}")


@app.command("case")
def case(
    main_diag: str = typer.Option(
        ..., "--main-diag", help="Principal diagnosis (医保版 ICD-10 2.0), e.g. K35.800x001."
    ),
    other_diags: str = typer.Option("", "--other-diags", help="Secondary diagnoses, ';'-joined."),
    oprns: str = typer.Option("", "--oprns", help="Procedures (医保版 ICD-9-CM-3 2.0), ';'-joined, principal first."),
    gend: str = typer.Option("1", "--gend", help="1 male, 2 female."),
    age: int = typer.Option(40, "--age", help="Age in whole years."),
    nwb_age: str = typer.Option("", "--nwb-age", help="Age in days (a baby under one year)."),
    nwb_bir_wt: str = typer.Option("", "--nwb-bir-wt", help="Birth weight, grams."),
    ipt_days: str = typer.Option("", "--ipt-days", help="Length of stay, days."),
    scheme: str = SCHEME,
    on: str | None = ON,
) -> None:
    """Group one case and show why it landed where it did."""
    from yibao.payment.grouper import load_grouper

    try:
        g = load_grouper(scheme, _date(on))
        r = g.group(case_id="1", gend=gend, age=age, nwb_age=nwb_age, nwb_bir_wt=nwb_bir_wt, ipt_days=ipt_days,
                    main_diag=main_diag, other_diags=other_diags, oprns=oprns, explain=True)  # fmt: skip
    except YibaoError as exc:
        _fail(exc)
    name = g.drgs[r.drg].name if r.drg in g.drgs else ""
    console.print(
        f"[bold]{r.drg or '-'}[/] {name}  (MDC {r.mdc or '-'}, ADRG {r.adrg or '-'}, severity {r.severity or '-'}) · "
        f"{r.status} · scheme {g.name} {g.version}",
        soft_wrap=True,
    )
    for i, step in enumerate(r.path, 1):
        console.print(f"  {i}. {step}", soft_wrap=True)
    if r.status.startswith("refused"):
        raise typer.Exit(2)


@app.command("show")
def show(scheme: str = SCHEME, on: str | None = ON) -> None:
    """What a scheme holds: MDCs, ADRGs, DRGs, tables, where it comes from."""
    from yibao.payment.grouper import load_grouper

    try:
        g = load_grouper(scheme, _date(on))
    except YibaoError as exc:
        _fail(exc)
    console.print(f"{g.name} {g.version}, from {g.effective_from}: {g.label}", soft_wrap=True)
    chain = " ← ".join(f"{m.name} ({m.effective_from}, {m.path})" for m in g.t.chain)
    console.print(f"built from: {chain}", soft_wrap=True)
    src = g.t.meta.source or (g.t.chain[0].source if g.t.chain else {})
    if src:
        console.print(f"source: {src}", soft_wrap=True)
    console.print(
        f"{len(g.mdcs)} MDCs, {len(g.adrgs)} ADRGs, {len(g.drgs)} DRGs; "
        f"{sum(1 for v in g.t.cc.values() if v[0] == 2):,} MCC and "
        f"{sum(1 for v in g.t.cc.values() if v[0] == 1):,} CC codes; {len(g.t.cc_exclusion):,} principal diagnoses "
        "with exclusions; "
        f"{len(g.or_procedures):,} operating-room procedures; ambiguous groups in "
        f"{sum(m.ambiguous_group for m in g.mdcs)} MDCs; "
        f"{sum(d.rw_e4 is not None for d in g.drgs.values())} DRGs with a relative weight",
        soft_wrap=True,
    )
    t = Table()
    for c in ("MDC", "name", "entry", "ADRGs", "DRGs", "QY"):
        t.add_column(c)
    for m in g.mdcs:
        entry = (
            m.entry
            + ("+male" if m.sex == "1" else "+female" if m.sex == "2" else "")
            + ("+under 1 year" if m.newborn else "")
            + ("+2 trauma regions" if m.multi_trauma else "")
        )
        t.add_row(
            m.code,
            m.name,
            entry,
            str(len(m.adrgs)),
            str(sum(len(a.drgs) for a in m.adrgs)),
            "yes" if m.ambiguous_group else "",
        )
    console.print(t)
