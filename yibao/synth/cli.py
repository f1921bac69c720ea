"""Command-line piece of the generator: ``run_synth`` (wired into ``yibao.cli`` elsewhere)."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from yibao.codes import HOME_REGION
from yibao.synth.region import DEFAULT_CHUNK, generate_region, validate_params, write_parquet


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]synthetic region[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("people"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def run_synth(
    people: int,
    seed: int,
    out: Path | None,
    db: str | None,
    year: int = 2025,
    *,
    region: str = HOME_REGION,
    chunk_size: int = DEFAULT_CHUNK,
    console: Console | None = None,
    patterns: dict[str, float] | None = None,
) -> dict[str, int]:
    """Generate a synthetic region: Parquet files into ``out`` and/or tables into the database ``db``.

    ``patterns`` maps injected fraud patterns to rates (:data:`yibao.synth.patterns.DEFAULT_RATES`).
    Returns the row count per table of the last target written.
    """
    console = console or Console(stderr=True)
    if out is None and db is None:
        raise ValueError("give an output directory (out) or a database URL (db)")
    validate_params(people, seed, year, region, chunk_size)  # bad parameters change nothing
    rows: dict[str, int] = {}
    t = time.perf_counter()
    if out is not None:
        removed: list[str] = []
        with _progress() as bar:
            task = bar.add_task("people", total=people)
            rows = write_parquet(
                out,
                people,
                seed,
                year=year,
                region=region,
                chunk_size=chunk_size,
                patterns=patterns,
                progress=lambda done, total: bar.update(task, completed=done),
                on_removed=removed.extend,
            )
        if removed:
            console.print(
                f"removed the tables of an earlier run in {out} (they no longer match): {', '.join(removed)}",
                soft_wrap=True,
            )
        console.print(
            f"wrote SYNTHETIC region ({people:,} people, seed {seed}) to {out} in {time.perf_counter() - t:.1f} s"
        )
    if db is not None:
        from yibao.core.db import load_tables, upgrade

        upgrade(db)  # a fresh database gets the schema first (Alembic; a no-op when already at head)
        with _progress() as bar:
            task = bar.add_task("people", total=people)
            chunks = generate_region(
                people,
                seed,
                year=year,
                region=region,
                chunk_size=chunk_size,
                patterns=patterns,
                progress=lambda done, total: bar.update(task, completed=done),
            )
            # the database has no purchase table (supervision reads purchases from a data directory only)
            result = load_tables(db, ((name, t) for name, t in chunks if name != "purchase"))
        if isinstance(result, dict):
            rows = result
        console.print(f"loaded SYNTHETIC region ({people:,} people, seed {seed}) into the database")
    for name, n in rows.items():
        console.print(f"  {name:<13} {n:>14,}")
    return rows
