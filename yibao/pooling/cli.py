"""``yibao pooling …``: simulate pooling levels and the risk-adjustment fund (统筹层次模拟) over a data directory."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from rich.console import Console

from yibao.benefits.cli import POLICY_DIR_OPTION
from yibao.core.money import fmt_yuan
from yibao.pooling.arrangement import PoolingError

app = typer.Typer(help="Pooling levels and the risk-adjustment fund (统筹层次, 风险调剂金).", no_args_is_help=True)

OUT_SUFFIXES = (".html", ".xlsx", ".json")


def income_note(rates) -> str:
    return (
        f"DERIVED from person.contribution_base and the policy '{rates.source}' (no contribution table): employer rate "
        f"{rates.employer_rate_bp / 100:g} % × 12 months, less retirees' account credit "
        f"{fmt_yuan(rates.retiree_monthly_credit, symbol=True)}/month; "
        f"residents {fmt_yuan(rates.resident_per_capita, symbol=True)} per person (individual + fiscal subsidy)"
    )


def parse_factor(text: str | None) -> Decimal | None:
    """``--spending-factor``: a decimal above 0 and at most 10, at most 4 places (None: no what-if)."""
    if text is None:
        return None
    try:
        f = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        f = None
    if f is None or not f.is_finite() or not (0 < f <= 10) or f != f.quantize(Decimal("0.0001")):
        raise PoolingError(
            f"--spending-factor {text!r}: give a decimal above 0 and at most 10 with at most 4 places, e.g. 1.25",
            f"--spending-factor {text!r}: 须为 0 到 10 之间的小数 (至多 4 位), 如 1.25",
            field="spending_factor",
        )
    return f


def scenario_note(factor: Decimal | None) -> str:
    return (
        ""
        if factor is None
        else f"WHAT-IF 假设情景: every county's settled spending × {factor} (half up to the fen); income as derived"
    )


def run(
    data: Path,
    arrangement: str,
    *,
    year: int | None = None,
    policy: str | None = None,
    policy_dirs=None,
    spending_factor: Decimal | None = None,
    cache: dict | None = None,
):
    """Load, read and simulate; returns ``(simulation, hierarchy, year_figures)``.

    Every refusal is a :class:`~yibao.core.errors.YibaoError` (arrangement, policy, data), raised before anything is
    written.
    """
    from yibao.benefits.policy import PolicyBook
    from yibao.pooling.arrangement import load_arrangement
    from yibao.pooling.figures import IncomeRates, hierarchy, read_figures
    from yibao.pooling.mechanics import scale_spending, simulate

    arr = load_arrangement(arrangement)  # refused before any data is read
    h = hierarchy(arr)
    book = PolicyBook.with_dirs(policy_dirs)  # a PolicyError is a one-line refusal (CLI) or a 400 (API)
    chosen = book.require(policy or arr.region)  # the region's own policy file: a region without one is refused
    # the contribution rates in force mid-year (as the fund-year summary), for the year read_figures settles on
    # arrangements that place persons and count spending alike share one read (yibao pooling compare)
    key = (
        arr.region,
        tuple(h.counties),
        arr.counties.assignment.model_dump_json(),
        tuple(arr.spending_fields),
        chosen.name,
    )
    yf = None if cache is None else cache.get(key)
    if yf is None:
        yf = read_figures(data, arr, lambda y: IncomeRates.from_snapshot(chosen.snapshot(dt.date(y, 7, 1))), year=year)
        if cache is not None:
            cache[key] = yf
    figs = yf.figures if spending_factor is None else scale_spending(yf.figures, spending_factor)
    return simulate(figs, arr, h.pool_of, h.fund_of), h, yf


@app.command("simulate")
def simulate_cmd(
    data: Path = typer.Option(
        ...,
        "--data",
        exists=True,
        file_okay=False,
        help="A settled data directory (yibao synth --out, then yibao settle).",
    ),
    arrangement: str = typer.Option(
        ..., "--arrangement", help="An arrangement name (yibao/data/pooling) or a .yaml file."
    ),
    out: Path | None = typer.Option(None, "--out", help="Also write the results: report.html, .xlsx or .json."),
    year: int | None = typer.Option(None, "--year", help="Policy year (default: the settlements' latest)."),
    policy: str | None = typer.Option(
        None,
        "--policy",
        help="Policy file name or region for the contribution rates (default: the arrangement's region).",
    ),
    spending_factor: str | None = typer.Option(
        None, "--spending-factor", help="What-if: multiply every county's spending (e.g. 1.8), labelled WHAT-IF."
    ),
    policy_dir: list[Path] | None = POLICY_DIR_OPTION,
) -> None:
    """Simulate one pooling arrangement over a settled year: each county pool's result alone and under the \
arrangement."""
    console = Console()  # per command: the terminal's width when it runs, not when the module was imported
    from yibao.pooling import report

    if out is not None and out.suffix.lower() not in OUT_SUFFIXES:
        raise PoolingError(
            f"--out {out}: give a file ending in {', '.join(OUT_SUFFIXES)}",
            f"--out {out}: 文件须以 {', '.join(OUT_SUFFIXES)} 结尾",
            field="out",
        )
    if out is not None and not out.parent.is_dir():
        raise PoolingError(
            f"--out {out}: the directory {out.parent} does not exist",
            f"--out {out}: 目录 {out.parent} 不存在",
            field="out",
        )
    if out is not None and out.is_dir():
        raise PoolingError(
            f"--out {out} is a directory: give a file name", f"--out {out} 是目录, 请给出文件名", field="out"
        )
    factor = parse_factor(spending_factor)
    sim, h, yf = run(data, arrangement, year=year, policy=policy, policy_dirs=policy_dir, spending_factor=factor)
    note = income_note(yf.rates)
    kw = dict(names=h.names, year=yf.year, synthetic=yf.synthetic, income_note=note, scenario=scenario_note(factor))
    report.print_simulation(console, sim, **kw)
    if yf.placed_by_hash:
        console.print(
            f"{yf.placed_by_hash:,} person(s) insured at the region's own code {sim.arrangement.region} "
            "were placed in county pools "
            f"by the arrangement's rule ({sim.arrangement.counties.assignment.method}) "
            "— the data has no county of insurance"
        )
    if out is not None:
        suffix = out.suffix.lower()
        tmp = out.with_name(
            f".{out.stem}.partial{out.suffix}"
        )  # written whole, then renamed: a failure leaves --out as it was
        try:
            if suffix == ".html":
                report.write_html(tmp, sim, **kw)
            elif suffix == ".xlsx":
                report.write_xlsx(tmp, sim, **kw)
            else:
                import json

                doc = {
                    "arrangement": sim.arrangement.name,
                    "year": yf.year,
                    "synthetic": yf.synthetic,
                    "money": "fen",
                    "income": note,
                    "spending_factor": None if factor is None else str(factor),
                    **report.rows(sim, h.names),
                }
                tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
        console.print(f"wrote {out}")


@app.command("list")
def list_cmd() -> None:
    """The shipped arrangements."""
    console = Console()  # per command: the terminal's width when it runs, not when the module was imported
    from yibao.pooling.arrangement import known_arrangements, load_arrangement

    for name in known_arrangements():
        a = load_arrangement(name)
        console.print(f"{name:28} {a.label_zh} · {a.label_en}")


@app.command("compare")
def compare_cmd(
    data: Path = typer.Option(..., "--data", exists=True, file_okay=False, help="A settled data directory."),
    arrangement: list[str] | None = typer.Option(
        None, "--arrangement", help="Arrangements to compare (repeatable; default: every shipped one)."
    ),
    year: int | None = typer.Option(None, "--year", help="Policy year (default: the settlements' latest)."),
    policy: str | None = typer.Option(None, "--policy", help="Policy file name or region for the contribution rates."),
    spending_factor: str | None = typer.Option(
        None, "--spending-factor", help="What-if: multiply every county's spending, labelled WHAT-IF."
    ),
    policy_dir: list[Path] | None = POLICY_DIR_OPTION,
) -> None:
    """Who gains and who loses under each arrangement: every county pool's net transfer, per scheme, side by side."""
    console = Console()  # per command: the terminal's width when it runs, not when the module was imported
    from yibao.pooling import report
    from yibao.pooling.arrangement import LEVELS, known_arrangements, load_arrangement

    factor = parse_factor(spending_factor)
    names = list(arrangement or known_arrangements())
    loaded = {n: load_arrangement(n) for n in names}  # every one refused before any data is read
    if not arrangement:  # lowest pooling first: county, county + city fund, city, city + province fund, province
        names.sort(key=lambda n: (LEVELS.index(loaded[n].pool_level), loaded[n].adjustment_fund is not None))
    sims = []
    cache: dict = {}
    yf = None
    for n in names:
        sim, _, yf = run(data, n, year=year, policy=policy, policy_dirs=policy_dir, spending_factor=factor, cache=cache)
        sims.append(sim)
    assert yf is not None  # names holds at least the shipped arrangements
    report.print_comparison(
        console,
        sims,
        year=yf.year,
        synthetic=yf.synthetic,
        income_note=income_note(yf.rates),
        scenario=scenario_note(factor),
    )
