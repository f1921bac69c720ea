"""``yibao payment``: DIP catalog building and settlement, DRG grouping (Typer sub-app)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from yibao.core.errors import YibaoError
from yibao.core.money import fmt_yuan, yuan_to_fen

app = typer.Typer(
    help="Payment methods 支付方式: DIP (按病种分值付费) and DRG (按疾病诊断相关分组).", no_args_is_help=True
)
dip_app = typer.Typer(help="DIP: build a catalog, settle a year.", no_args_is_help=True)
drg_app = typer.Typer(help="DRG: group cases over a scheme given as data.", no_args_is_help=True)
app.add_typer(dip_app, name="dip")
app.add_typer(drg_app, name="drg")
console = Console()


def _fail(exc: Exception) -> None:
    from rich.markup import escape

    if isinstance(exc, YibaoError):  # one line (issue 17.2): code, English, Chinese, field
        msg = (
            f"{exc.code}: {exc.message_en}"
            + (f" / {exc.message_zh}" if exc.message_zh != exc.message_en else "")
            + (f" [field: {exc.field}]" if exc.field else "")
        )
    else:
        msg = str(exc)
    console.print(f"[bold red]error[/] {escape(' '.join(msg.split()))}", soft_wrap=True)
    raise typer.Exit(2)


DATA = typer.Option(
    ...,
    "--data",
    exists=True,
    file_okay=False,
    help="Region directory: contract Parquet tables with settlement.parquet.",
)
PARAMS = typer.Option("example-city-a", "--params", help="DIP parameter file: shipped name, region code or path.")


@dip_app.command("build")
def dip_build(
    data: Path = DATA,
    out: Path = typer.Option(..., "--out", help="Catalog directory to write (catalog.yaml + groups.csv)."),
    params: str = PARAMS,
    version: str | None = typer.Option(None, "--version", help="Catalog version label."),
) -> None:
    """Build a DIP catalog (目录库) from a year of cases: core and comprehensive groups with points."""
    from yibao.payment.service import build

    try:
        with console.status("building the DIP catalog (DuckDB) …"):
            cat = build(data, params, out, version=version)
    except (YibaoError, FileNotFoundError) as exc:
        _fail(exc)
    g = cat.groups.to_pandas()
    if cat.synthetic:
        console.print("[black on yellow] SYNTHETIC DATA 合成数据 [/] catalog built from a simulated region")
    console.print(
        f"catalog {cat.version}: {int((g.kind == 'core').sum())} core + {int((g.kind == 'comprehensive').sum())} "
        "comprehensive groups "
        f"from {cat.n_cases:,} cases (mean cost ¥{fmt_yuan(cat.overall_mean_fen)}) → {out}"
    )


@dip_app.command("settle")
def dip_settle(
    data: Path = DATA,
    catalog: Path | None = typer.Option(
        None, "--catalog", exists=True, file_okay=False, help="Catalog directory (default: build one from --data)."
    ),
    params: str = PARAMS,
    budget: str | None = typer.Option(None, "--budget", help="Annual budget in yuan (default: the parameter file's)."),
    out: Path | None = typer.Option(None, "--out", help="Write dip_*.parquet here."),
    excel: Path | None = typer.Option(None, "--excel", help="Write an Excel workbook."),
    html: Path | None = typer.Option(None, "--html", help="Write an HTML report."),
    engine: str = typer.Option("duckdb", "--engine", help="duckdb, or spark (case points on Spark, same SQL)."),
) -> None:
    """Settle a year under DIP: case points, monthly and annual point values, each institution's payment and \
clearing."""
    from yibao.payment.report import institution_names, institution_table, write_excel, write_html
    from yibao.payment.service import run

    try:
        b = yuan_to_fen(budget) if budget is not None else None
        if engine not in ("duckdb", "spark"):
            raise YibaoError(f"--engine must be duckdb or spark, not {engine!r}", "引擎只能是 duckdb 或 spark")
        points = None
        if engine == "spark":
            from yibao.spark.dip import spark_points

            points = spark_points()
        with console.status(f"DIP settlement ({engine} case points), DRG grouping and coding checks …"):
            r = run(data, params, catalog=catalog, budget_fen=b, points=points)
    except (YibaoError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
    if r.synthetic:
        console.print(
            "[black on yellow] SYNTHETIC DATA 合成数据 [/] illustrative parameters, not a published regional rule"
        )
    p = r.dip.periods
    y = p[p.period == 0].iloc[0]
    console.print(
        f"DIP year {r.dip.year}: {len(r.dip.cases):,} cases ({r.dip.outside_year:,} discharged in another year left "
        "out)"
    )
    console.print(
        f"budget ({r.dip.basis}) ¥{fmt_yuan(int(y.budget_fen))} · pool ¥{fmt_yuan(int(y.pool_fen))} · "
        f"total points {int(y.points_e4) / 10_000:,.4f} · [bold]annual point value ¥{y.point_value}[/]"
    )
    names = institution_names(data)
    t = Table(title="DIP payment by institution (yuan)")
    for c in (
        "institution",
        "cases",
        "points",
        "DIP value",
        "patients + other funds",
        "pooled-fund payment",
        "advances",
        "clearing",
        "cost",
        "gain",
    ):
        t.add_column(c, justify="right")
    inst_rows: Iterable[Any] = institution_table(r, names).itertuples()  # pandas-stubs: fields are any scalar
    for row in inst_rows:
        t.add_row(
            f"{row.fixmedins_code} {names.get(row.fixmedins_code, '')}",
            f"{row.n_cases:,}",
            f"{row.points_e4 / 10_000:,.1f}",
            fmt_yuan(row.value_fen),
            fmt_yuan(row.psn_part_amt + row.oth_fund_amt),
            fmt_yuan(row.payment_fen),
            fmt_yuan(row.advances_fen),
            fmt_yuan(row.clearing_fen),
            fmt_yuan(row.medfee_sumamt),
            fmt_yuan(row.dip_gain_fen),
        )
    console.print(t)
    if out:
        r.dip.write(out)
        if out.resolve() == data.resolve():  # derived tables inside the data directory: recorded in its manifest
            from yibao.core import manifest

            manifest.record(
                data,
                ("dip_cases", "dip_periods", "dip_institutions", "dip_clearing"),
                ("encounter", "institution", "person", "settlement", "fee_detail"),
                command="yibao payment dip settle --data {dir} --out {dir}",
            )
        console.print(f"wrote {out}/dip_*.parquet")
    if excel:
        console.print(f"wrote {write_excel(r, excel, names)}")
    if html:
        console.print(f"wrote {write_html(r, html, names)}")


@drg_app.command("group")
def drg_group(
    data: Path = DATA,
    scheme: str = typer.Option(
        "example-city-a",
        "--scheme",
        help="Scheme name or directory (default: the example region's scheme, CHS-DRG 1.1 with SYNTHETIC weights).",
    ),
    out: Path | None = typer.Option(None, "--out", help="Write the grouped cases as Parquet."),
    engine: str = typer.Option(
        "duckdb", "--engine", help="duckdb (in process) or spark (the same grouper per partition)."
    ),
) -> None:
    """Group a region's in-scope cases into DRGs with CMI by institution (one file of 结算清单 cases: 'yibao drg \
group')."""
    import time

    from yibao.payment.cases import case_view_sql, connect
    from yibao.payment.drg import cmi, group_batch, load_scheme

    try:
        sch = load_scheme(scheme)
        con = connect()
        cases = con.sql(case_view_sql(data)).df()
        t0 = time.perf_counter()
        if engine not in ("duckdb", "spark"):
            raise YibaoError(f"--engine must be duckdb or spark, not {engine!r}", "引擎只能是 duckdb 或 spark")
        if engine == "spark":
            from yibao.spark.drg import group_batch_spark

            g = group_batch_spark(sch, cases)
        else:
            g = group_batch(sch, cases)
        secs = time.perf_counter() - t0
    except YibaoError as exc:
        _fail(exc)
    import pandas as pd

    df = pd.concat([cases, g], axis=1)
    console.print(f"grouped {len(df):,} cases in {secs:.2f} s with scheme {sch.name} {sch.version} ({sch.label})")
    refused = df[df.path == "refused"]
    if len(refused):
        console.print(
            f"[yellow]{len(refused):,} case(s) refused[/], e.g. {refused.mdtrt_id.iloc[0]}: {refused.status.iloc[0]}",
            soft_wrap=True,
        )
    if df.rw_e4.notna().any():
        t = Table(title="CMI by institution")
        for c in ("institution", "cases", "CMI"):
            t.add_column(c, justify="right")
        cmi_rows: Iterable[Any] = cmi(df[df.rw_e4.notna()]).itertuples()
        for r in cmi_rows:
            t.add_row(r.fixmedins_code, f"{r.n_cases:,}", f"{r.cmi:.4f}")
        console.print(t)
    console.print(df.drg.value_counts().head(15).to_string())
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        df[
            ["mdtrt_id", "fixmedins_code", "drg", "adrg", "mdc", "severity", "rw_e4", "path", "status", "medfee_sumamt"]
        ].to_parquet(out, index=False)
        console.print(f"wrote {out}")


@drg_app.command("weights")
def drg_weights_cmd(
    data: Path = DATA,
    scheme: str = typer.Option("chs-drg-1.1", "--scheme", help="Scheme name or directory to weight."),
    out: Path = typer.Option(..., "--out", help="Where to write the local scheme's drg.csv (relative weights)."),
) -> None:
    """Relative weights of every DRG from a region's cases (group mean cost ÷ overall mean), as a local scheme's \
drg.csv."""
    from yibao.payment.cases import case_view_sql, connect
    from yibao.payment.drg import group_batch, load_scheme, weights_override_csv

    try:
        sch = load_scheme(scheme)
        cases = connect().sql(case_view_sql(data)).df()
        g = group_batch(sch, cases)
        import pandas as pd

        grouped = pd.concat([cases, g], axis=1)
        synthetic = bool(cases["synthetic"].all()) if "synthetic" in cases and len(cases) else False
        label = (
            f"{'SYNTHETIC ' if synthetic else ''}relative weights for {sch.name} {sch.version}, "
            "computed by 'yibao payment drg weights' from "
            f"{int((g.status == 'ok').sum()):,} grouped cases of "
            f"{data.name}{' (a synthetic region: not published weights)' if synthetic else ''}.\n"
            "group mean cost / overall mean cost, half up to 4 places; a DRG without cases takes its ADRG's, an ADRG "
            "without cases 1."
        )
        text = weights_override_csv(sch, grouped, label=label)
    except YibaoError as exc:
        _fail(exc)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out} (RW from {len(cases):,} cases)")


@app.command("quality")
def quality(data: Path = DATA, params: str = PARAMS, top: int = typer.Option(15, "--top")) -> None:
    """Coding quality: upcoding, split admissions, miscoding; the groups with the most flags."""
    from yibao.payment.service import run

    try:
        r = run(data, params)
    except YibaoError as exc:
        _fail(exc)
    console.print(r.quality.flags.flag.value_counts().to_string())
    console.print(r.quality.top_drg.head(top).to_string(index=False))
    if r.quality.truth is not None:
        console.print(r.quality.truth.to_string(index=False))
