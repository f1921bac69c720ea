"""``yibao commercial …``: 惠民保-style products and their year over a settled region (商业补充医疗保险)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from yibao.core.money import fmt_yuan

app = typer.Typer(help="Commercial supplementary insurance, 惠民保-style (商业补充医疗保险).", no_args_is_help=True)
console = Console()


@app.command()
def products(products_dir: Path | None = typer.Option(None, "--products", help="product files directory")) -> None:
    """List the product files (产品列表)."""
    from yibao.commercial.products import load_products

    t = Table("product", "insurer", "region", "year", "premium", "deductible", "ceiling", "in/out/特药")
    for p in load_products(products_dir).values():
        t.add_row(
            p.product_id,
            p.insurer,
            p.region,
            str(p.year),
            fmt_yuan(p.premium_yuan),
            fmt_yuan(p.deductible),
            fmt_yuan(p.ceiling),
            f"{p.ratios.in_list / 100:g}/{p.ratios.out_of_list / 100:g}/{p.ratios.specific_drug / 100:g} %",
        )
    console.print(t)


@app.command("run-year")
def run_year_cmd(
    data: Path = typer.Option(..., "--data", help="a settled region's Parquet directory"),
    product: str = typer.Option("HMB-DEMO-2026", "--product"),
    year: int | None = typer.Option(None, "--year"),
    products_dir: Path | None = typer.Option(None, "--products"),
) -> None:
    """The product over a settled year: insurer payments, people helped, remaining catastrophic expenditure."""
    from yibao.commercial.products import get_product
    from yibao.commercial.year import run_year

    r = run_year(data, get_product(product, products_dir), year=year)
    label = "SYNTHETIC data (合成数据)" if r.synthetic else "data"
    console.print(f"{product} over {r.year} ({label}; every insured person assumed enrolled):")
    console.print(f"  claims {r.claims}, people {r.people}, helped {r.people_helped}")
    console.print(
        f"  insurer pays {fmt_yuan(r.insurer_pays, symbol=True)}; person part "
        f"{fmt_yuan(r.person_part_before, symbol=True)}"
        f" → {fmt_yuan(r.person_part_after, symbol=True)}"
    )
    console.print(
        f"  people with remaining self-pay above {fmt_yuan(r.threshold, symbol=True)} (illustrative catastrophic "
        f"threshold):"
        f" {r.catastrophic_people_before} → {r.catastrophic_people_after}"
    )


def _engine(db: str | None):
    from yibao.core.db import database_url, make_engine

    return make_engine(database_url(db))


@app.command()
def enrol(
    psn_no: str = typer.Option(..., "--psn"),
    product: str = typer.Option("HMB-DEMO-2026", "--product"),
    on: str | None = typer.Option(None, "--on", help="enrolment date YYYY-MM-DD (default today)"),
    pre_existing: bool = typer.Option(False, "--pre-existing", help="declared pre-existing condition (既往症)"),
    db: str | None = typer.Option(None, "--db", help="database URL"),
) -> None:
    """Sell one policy (投保)."""
    import datetime as dt

    from yibao.commercial import service
    from yibao.commercial.products import CommercialError, get_product

    try:
        day = dt.date.fromisoformat(on) if on else None
    except ValueError:
        raise CommercialError(
            f"--on {on!r}: give YYYY-MM-DD", f"--on {on!r}: 日期格式应为 YYYY-MM-DD", field="on"
        ) from None
    pid = service.enrol(_engine(db), get_product(product), psn_no, pre_existing=pre_existing, on=day)
    console.print(f"policy {pid}: {psn_no} enrolled in {product}")


@app.command()
def claims(
    insurer: str = typer.Option("INS-DEMO", "--insurer"),
    status: str | None = typer.Option(None, "--status"),
    db: str | None = typer.Option(None, "--db", help="database URL"),
) -> None:
    """An insurer's direct claims (理赔列表), person numbers masked as the insurer sees them."""
    from yibao.commercial import service

    t = Table("claim", "setl_id", "product", "person", "base", "insurer pays", "status")
    for c in service.list_claims(_engine(db), insurer, status):
        t.add_row(
            str(c["claim_id"]),
            c["setl_id"],
            c["product_id"],
            c["psn"],
            fmt_yuan(c["in_list_fen"] + c["out_of_list_fen"] + c["specific_drug_fen"]),
            fmt_yuan(c["insurer_pays_fen"]),
            c["status"],
        )
    console.print(t)
