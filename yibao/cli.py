"""The ``yibao`` command line (Typer)."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import time
from pathlib import Path
from typing import Any, NoReturn

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from yibao.benefits.cli import policy_dir_option
from yibao.core.errors import YibaoError
from yibao.core.money import fmt_yuan

# Database drivers a --db URL may ask for that yibao does not ship (it runs on SQLite and PostgreSQL/psycopg).
_FOREIGN_DRIVERS = {
    "MySQLdb",
    "pymysql",
    "mysqlclient",
    "psycopg2",
    "cx_Oracle",
    "oracledb",
    "pyodbc",
    "pymssql",
    "asyncpg",
    "aiosqlite",
}
_DB_KINDS = "sqlite:///path/to/yibao.db or postgresql://user:password@host:5432/dbname"


def _db_arg(argv: list[str]) -> str | None:
    """The --db value of a command line (else $YIBAO_DATABASE_URL), for the error message."""
    for i, a in enumerate(argv):
        if a == "--db" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--db="):
            return a[5:]
    return os.environ.get("YIBAO_DATABASE_URL")


def _shown(url: str | None) -> str:
    """The URL without its password."""
    if not url:
        return "the database"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def explain(exc: BaseException, argv: list[str]) -> str | None:
    """One line saying what is wrong and what to do, for the errors a user can cause; None for a bug (traceback)."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, YibaoError):
        zh = f" / {exc.message_zh}" if exc.message_zh and exc.message_zh != exc.message_en else ""
        return _one_line(f"{exc.message_en}{zh}")
    url = _db_arg(argv)
    if isinstance(exc, sa_exc.NoSuchModuleError):
        kind = (url or "").split(":", 1)[0]
        return f"--db {_shown(url)}: unknown database kind {kind!r}; give {_DB_KINDS} / 不支持的数据库类型"
    if isinstance(exc, sa_exc.ArgumentError):
        return f"--db {url!r} is not a database URL; give {_DB_KINDS} / 数据库地址格式错误"
    if isinstance(exc, ModuleNotFoundError) and exc.name in _FOREIGN_DRIVERS:
        return (
            f"--db {_shown(url)}: the driver {exc.name!r} is not installed and yibao does not support this database; "
            f"give {_DB_KINDS} / 不支持该数据库（仅支持 SQLite 与 PostgreSQL）"
        )
    if isinstance(exc, ModuleNotFoundError) and exc.name == "psycopg":
        return (
            "the PostgreSQL driver psycopg is not installed: pip install 'psycopg[binary]' (or reinstall yibao) / "
            "未安装 PostgreSQL 驱动"
        )
    if isinstance(exc, sa_exc.OperationalError):
        orig = str(getattr(exc, "orig", None) or exc).strip()
        first = _one_line(orig.splitlines()[0]) if orig else type(exc).__name__
        if (url or "").startswith("sqlite"):
            return (
                f"cannot open the SQLite database {_shown(url)} ({first}): does its directory exist and can you write "
                f"to it? "
                "/ 无法打开 SQLite 数据库"
            )
        return (
            f"cannot use the database {_shown(url)} ({first}): is the server running and the URL right? / "
            f"无法连接数据库"
        )
    if isinstance(exc, sa_exc.IntegrityError):
        orig = str(getattr(exc, "orig", None) or exc).strip()
        first = _one_line(orig.splitlines()[0]) if orig else type(exc).__name__
        return (
            f"{_shown(url)} already holds some of these rows ({first}): load into a new, empty database "
            "/ 数据库中已有相同记录，请载入新的空数据库"
        )
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, PermissionError)):
        return _one_line(str(exc))
    return None


class YibaoGroup(TyperGroup):
    """The top-level command group: an error the user can fix is one line on stderr and exit code 2, not a traceback."""

    def invoke(self, ctx: typer.Context):  # type: ignore[override]  # typer re-exports its own click Context
        argv = [*getattr(ctx, "_protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:
            line = explain(exc, argv)
            if line is None:
                raise
            Console(stderr=True).print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True, highlight=False)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=YibaoGroup, help="yibao (医保): an open medical-security platform.", no_args_is_help=True, add_completion=False
)
policy_app = typer.Typer(help="Benefit policy files (待遇政策).", no_args_is_help=True)
db_app = typer.Typer(help="Database schema and loading.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(db_app, name="db")
data_app = typer.Typer(
    help="Data directories (数据目录): the manifest of a `yibao synth --out` directory.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
console = Console()


def _fail(msg: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {escape(msg)}", soft_wrap=True)  # one line, not wrapped
    raise typer.Exit(2)


@app.command()
def synth(
    people: int = typer.Option(10_000, "--people", min=1, help="People in the region."),
    seed: int = typer.Option(42, "--seed", help="Random seed: same seed, same data."),
    out: Path | None = typer.Option(None, "--out", help="Write contract tables as Parquet here."),
    db: str | None = typer.Option(None, "--db", help="Load into this database URL (migrated first)."),
    year: int = typer.Option(2025, "--year", help="Policy year of the encounters."),
    fraud: bool = typer.Option(
        False,
        "--fraud/--no-fraud",
        help="Inject the labelled synthetic fraud patterns (yibao.synth.patterns.DEFAULT_RATES).",
    ),
) -> None:
    """Generate a synthetic pooling region (合成统筹区), labelled synthetic."""
    from yibao.synth.cli import run_synth
    from yibao.synth.patterns import DEFAULT_RATES

    if out is None and db is None:
        _fail("give --out DIR and/or --db URL")
    run_synth(people=people, seed=seed, out=out, db=db, year=year, patterns=DEFAULT_RATES if fraud else None)


@app.command()
def settle(
    data: Path = typer.Option(
        ..., "--data", exists=True, file_okay=False, help="Directory of contract Parquet tables."
    ),
    policy: str | None = typer.Option(
        None, "--policy", help="Policy file name or region code (default: the persons' region)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Where to write settlement.parquet (default: --data)."),
    policy_dir: list[Path] | None = policy_dir_option(),
    engine: str = typer.Option(
        "duckdb",
        "--engine",
        help="duckdb (the local batch engine) or spark (same shards and rules on Apache Spark; YIBAO_SPARK_MASTER).",
    ),
) -> None:
    """Settle every encounter of a region for the year with the batch engine."""
    from yibao.benefits.cli import load_book, policy_for_data, require_policy
    from yibao.settlement.annual import settle_year

    book = load_book(policy_dir)
    # an unknown --policy, or a data region without a policy file: the known policies listed, exit 2
    chosen = require_policy(book, policy) if policy else policy_for_data(book, data)
    if engine not in ("duckdb", "spark"):
        _fail(f"--engine must be duckdb or spark, not {engine!r} / 引擎只能是 duckdb 或 spark")
    run_year: Any = settle_year
    if engine == "spark":
        from yibao.spark.settlement import settle_year_spark as run_year
    with console.status(f"settling ({engine}) …"):
        res = run_year(data, policy=chosen, book=book, out_dir=out)
    n = res.batch.settlements.num_rows
    console.print(
        f"settled {n:,} of {res.claims:,} claims in {res.seconds:.2f} s ({res.claims / max(res.seconds, 1e-9):,.0f} "
        f"claims/s); "
        f"{len(res.batch.rejected):,} refused"
    )


def _print_fund_year(fy) -> None:
    from yibao.settlement.fundyear import FUND_FIELDS

    t = fy.totals.iloc[0]
    if fy.synthetic:
        console.print("[black on yellow] SYNTHETIC DATA 合成数据 [/] figures describe a simulation, not a real region")
    console.print(f"[bold]Fund year {fy.year}[/] · region {fy.region} · {fy.policy_label}")
    tab = Table(title="Income 基金收入", show_lines=False)
    tab.add_column("item")
    tab.add_column("¥", justify="right")
    for r in fy.income.itertuples():
        tab.add_row(f"{r.item} {r.item_zh}", fmt_yuan(int(r.fen)))
    console.print(tab)
    tab = Table(
        title=f"Spending by layer 按保障层次 ({int(t['claims']):,} claims, cost ¥{fmt_yuan(int(t['medfee_sumamt']))})"
    )
    tab.add_column("layer")
    tab.add_column("field")
    tab.add_column("¥", justify="right")
    tab.add_column("share", justify="right")
    for k, (en, zh) in FUND_FIELDS.items():
        tab.add_row(f"{en} {zh}", k, fmt_yuan(int(t[k])), f"{int(t[k]) / max(1, int(t['medfee_sumamt'])):.1%}")
    console.print(tab)
    tab = Table(title="By scheme 按险种")
    for c in (
        "insutype",
        "claims",
        "cost ¥",
        "pooled fund ¥",
        "critical/large ¥",
        "assistance ¥",
        "account ¥",
        "cash ¥",
    ):
        tab.add_column(c, justify="right")
    for r in fy.by_scheme.itertuples():
        tab.add_row(
            r.insutype,
            f"{r.claims:,}",
            fmt_yuan(r.medfee_sumamt),
            fmt_yuan(r.hifp_pay),
            fmt_yuan(r.hifmi_pay + r.hifob_pay),
            fmt_yuan(r.maf_pay),
            fmt_yuan(r.acct_pay + r.acct_mulaid_pay),
            fmt_yuan(r.psn_cash_pay),
        )
    console.print(tab)
    lv = fy.by_level.groupby("hosp_lv")[["claims", "medfee_sumamt", "fund_pay_sumamt"]].sum()
    tab = Table(title="By institution level 按机构等级 (0 = pharmacy)")
    for c in ("level", "claims", "cost ¥", "funds ¥", "fund share"):
        tab.add_column(c, justify="right")
    for lvl, r in lv.iterrows():
        tab.add_row(
            str(lvl),
            f"{int(r.claims):,}",
            fmt_yuan(int(r.medfee_sumamt)),
            fmt_yuan(int(r.fund_pay_sumamt)),
            f"{int(r.fund_pay_sumamt) / max(1, int(r.medfee_sumamt)):.1%}",
        )
    console.print(tab)
    m = fy.by_month.groupby("month")[["claims", "medfee_sumamt", "fund_pay_sumamt"]].sum()
    tab = Table(title="By month 按月")
    for c in ("month", "claims", "cost ¥", "funds ¥"):
        tab.add_column(c, justify="right")
    for month, r in m.iterrows():
        tab.add_row(
            str(month)[:7], f"{int(r.claims):,}", fmt_yuan(int(r.medfee_sumamt)), fmt_yuan(int(r.fund_pay_sumamt))
        )
    console.print(tab)
    tab = Table(title="Medical assistance 医疗救助 — people helped")
    for c in ("status", "people", "helped", "assistance ¥", "critical illness ¥"):
        tab.add_column(c, justify="right")
    for r in fy.assistance.itertuples():
        tab.add_row(
            r.status, f"{r.people_with_status:,}", f"{r.people_helped:,}", fmt_yuan(r.maf_pay), fmt_yuan(r.hifmi_pay)
        )
    console.print(tab)


@app.command()
def demo(
    people: int = typer.Option(100_000, "--people", min=100, help="People in the synthetic region."),
    seed: int = typer.Option(42, "--seed"),
    out: Path = typer.Option(Path("yibao-demo"), "--out", help="Output directory (Parquet tables and report.html)."),
    db: str | None = typer.Option(
        None, "--db", help="Also load the region and its settlements into this database URL."
    ),
    year: int = typer.Option(2025, "--year"),
    fraud: bool = typer.Option(
        True, "--fraud/--no-fraud", help="Inject the labelled synthetic fraud patterns the supervision section scores."
    ),
    policy_dir: list[Path] | None = policy_dir_option(),
) -> None:
    """Generate a region, settle its year, print the fund's year and write report.html."""
    from yibao.benefits.cli import load_book
    from yibao.settlement.annual import settle_year
    from yibao.settlement.fundyear import fund_year
    from yibao.synth.cli import run_synth
    from yibao.web.report import render_report

    db = db or os.environ.get("YIBAO_DATABASE_URL")
    t0 = time.perf_counter()
    data = out / "region"
    from yibao.synth.patterns import DEFAULT_RATES

    if db:  # a bad, unreachable or already loaded --db fails now, not after the whole run
        from yibao.core.db import make_engine, upgrade

        upgrade(db)
        engine = make_engine(db)
        try:
            with engine.connect() as c:
                loaded = c.exec_driver_sql("SELECT 1 FROM person LIMIT 1").first() is not None
        finally:
            engine.dispose()
        if loaded:
            _fail(
                f"{_shown(db)} already holds a region: give the demo a new database (e.g. --db "
                f"sqlite:///yibao-demo.db) or remove this one "
                "/ 数据库中已有数据，请使用新的数据库"
            )

    run_synth(people=people, seed=seed, out=data, db=None, year=year, patterns=DEFAULT_RATES if fraud else None)
    book = load_book(policy_dir)
    with console.status("settling the year with the batch engine …"):
        res = settle_year(data, book=book)
    console.print(
        f"settled {res.batch.settlements.num_rows:,} claims in {res.seconds:.1f} s "
        f"({res.claims / max(res.seconds, 1e-9):,.0f} claims/s); {len(res.batch.rejected):,} refused with a reason"
    )
    from yibao.settlement.annual import read_parquet

    region_code = read_parquet(data, "person", ["insuplc_admdvs"]).column(0)[0].as_py()
    snap = book.policy(region_code).snapshot(dt.date(year, 7, 1))
    with console.status("summarising the fund year (DuckDB) …"):
        fy = fund_year(data, snap, year)
    _print_fund_year(fy)
    from yibao.demo.sections import supervision_section as demo_section

    with console.status("supervision: rules, analytics and work queue (DuckDB) …"):
        sections = [demo_section(data)]
    from yibao.demo.sections import payment_sections

    with console.status("payment: DIP catalog and point value, DRG grouping, coding quality (DuckDB) …"):
        sections += payment_sections(data, echo=lambda line: console.print(line, soft_wrap=True))
    from yibao.demo.sections import procurement_section

    with console.status("procurement: a synthetic round, rule what-if and bid simulation …"):
        sections.append(procurement_section(seed))
    report = render_report(fy, out / "report.html", sections=sections)
    if db:
        from yibao.core.parquet_io import load_parquet_dir

        with console.status(f"loading into {db.split('@')[-1]} …"):
            counts = load_parquet_dir(db, data)
        console.print(f"loaded into database: {counts}")
        _seed_console(db, seed, out, data)
    else:
        console.print(
            "to browse the web console too: [bold]yibao demo --db sqlite:///yibao.db[/] (creates demo users and a "
            "procurement round)"
        )
    console.print(
        f"\n[bold green]report:[/] {report.resolve()}  ·  data: {data.resolve()}  ·  total "
        f"{time.perf_counter() - t0:.0f} s"
    )


def _seed_console(db: str, seed: int, out: Path, data: Path) -> None:
    """Demo console users (printed, DEMO ONLY) and a persisted procurement round (yibao.demo)."""
    from yibao.core.db import make_engine
    from yibao.demo import seed_console

    engine = make_engine(db)
    try:
        with console.status("console: demo users and a synthetic procurement round …"):
            users, (rid, n_contracts, n_orders), cred = seed_console(engine, seed, out, _shown(db))
    finally:
        engine.dispose()
    console.print(
        f"procurement: SYNTHETIC round {rid} saved ({n_contracts:,} contracts, {n_orders:,} purchase orders) for the "
        f"console"
    )
    journey = out / "demo-journey.txt"
    if journey.exists():  # one synthetic person through enrolment, care, filing, manual claim, maternity and LTC
        for line in journey.read_text(encoding="utf-8").splitlines():
            console.print(f"  {line}" if line[:1].isdigit() else line, soft_wrap=True, markup=False)
    tab = Table(title="[black on yellow] DEMO ONLY 仅供演示 [/] console users (random passwords, this run only)")
    for c in ("user", "role", "sees", "password"):
        tab.add_column(c)
    for u in users:
        tab.add_row(u.username, u.role, u.scope or "everything", u.password)
    console.print(tab)
    console.print(
        f"(also in {cred}, readable by you only)  open the console with:\n"
        f"  YIBAO_CONSOLE_DATA={data} yibao serve --db {db}   → http://127.0.0.1:8080/console/",
        soft_wrap=True,
    )


@policy_app.command("validate")
def policy_validate(
    paths: list[Path] = typer.Argument(
        None, help="Policy files, names or region codes (default: all shipped and --policy-dir ones)."
    ),
    policy_dir: list[Path] | None = policy_dir_option(),
) -> None:
    """Validate policy files on every effective date and against the
    national floors; errors name file, key, reason and source.
    """
    from yibao.benefits.cli import validate

    if validate(paths, policy_dir):
        raise typer.Exit(2)


@policy_app.command("show")
def policy_show(
    region: str = typer.Argument(..., help="Region code or policy name."),
    on: str = typer.Option(None, "--on", help="Date YYYY-MM-DD (default today)."),
    policy_dir: list[Path] | None = policy_dir_option(),
) -> None:
    """Print the policy in force on a date (amounts in fen, ratios in basis points)."""
    import json

    try:
        day = dt.date.fromisoformat(on) if on else dt.date.today()
    except ValueError as exc:
        _fail(f"--on {on!r} is not a date ({exc}); give YYYY-MM-DD, e.g. --on 2026-01-01 / 日期格式错误")
    from yibao.benefits.cli import show_snapshot

    snap = show_snapshot(region, day, policy_dir)  # unknown region → the known ones listed
    console.print_json(json.dumps(snap.model_dump(mode="json"), ensure_ascii=False))


@data_app.command("check")
def data_check(data: Path = typer.Argument(..., exists=True, file_okay=False, help="A data directory.")) -> None:
    """Check every table of a data directory against its manifest (hash, inputs); exit 1 if any is stale or foreign."""
    from yibao.core.manifest import load, status

    rows = status(data)
    doc = load(data) or {}
    console.print(
        f"{data}: {doc.get('generator', '?')} · {doc.get('people', '?'):,} people · seed {doc.get('seed', '?')} · "
        f"year {doc.get('year', '?')}"
        f" · written {doc.get('created', '?')}"
        if isinstance(doc.get("people"), int)
        else f"{data}",
        soft_wrap=True,
    )
    tab = Table(title="tables 数据表")
    for c in ("table", "status", "detail"):
        tab.add_column(c)
    for name, ok, detail in rows:
        tab.add_row(name, "[green]ok[/]" if ok else "[bold red]refused[/]", escape(detail))
    console.print(tab)
    if not all(ok for _, ok, _ in rows):
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(
    db: str | None = typer.Option(
        None, "--db", help="Database URL (default YIBAO_DATABASE_URL or sqlite:///yibao.db)."
    ),
) -> None:
    """Create or migrate the schema (Alembic) to the latest version."""
    from yibao.core.db import database_url, upgrade

    url = database_url(db)
    upgrade(url)
    console.print(f"[green]schema at head[/] {url.split('@')[-1]}")


@db_app.command("load")
def db_load(
    data: Path = typer.Option(
        ..., "--data", exists=True, file_okay=False, help="Directory of contract Parquet tables."
    ),
    db: str | None = typer.Option(None, "--db"),
) -> None:
    """Load a directory of contract Parquet tables into the database."""
    from yibao.core.db import database_url
    from yibao.core.parquet_io import load_parquet_dir

    counts = load_parquet_dir(database_url(db), data)
    console.print(counts)


if __name__ == "__main__":
    app()


# The subsystems' command groups (one line each): (command name, module, Typer attribute).
SUBCOMMANDS: tuple[tuple[str, str, str], ...] = (
    ("procurement", "yibao.procurement.cli", "app"),
    ("api", "yibao.api.cli", "app"),
    ("inst", "yibao.api.cli", "inst_app"),
    ("filing", "yibao.crossregion.cli", "app"),
    ("longrx", "yibao.longrx.cli", "app"),
    ("reimburse", "yibao.reimbursement.cli", "app"),
    ("rx", "yibao.rxcirc.cli", "app"),
    ("supervision", "yibao.supervision.cli", "app"),
    ("payment", "yibao.payment.cli", "app"),
    ("drg", "yibao.payment.drgcli", "app"),
    ("console", "yibao.web.cli", "app"),
    ("pooling", "yibao.pooling.cli", "app"),
    ("enrol", "yibao.enrolment.cli", "app"),
    ("accounts", "yibao.enrolment.cli", "accounts_app"),
    ("ltc", "yibao.ltc.cli", "app"),
    ("commercial", "yibao.commercial.cli", "app"),
    ("maternity", "yibao.maternity.cli", "app"),
)


def _register_subcommands() -> None:
    for name, module, attr in SUBCOMMANDS:
        app.add_typer(getattr(importlib.import_module(module), attr), name=name)
    app.command("serve")(importlib.import_module("yibao.api.cli").serve)


_register_subcommands()
