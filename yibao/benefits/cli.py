"""Command-line mechanics for benefit policies (待遇政策): ``--policy-dir``, strict lookups, ``policy validate``.

The Typer commands themselves are registered in :mod:`yibao.cli` (and
``serve`` in :mod:`yibao.api.cli`); they call these helpers so that every
command loading policies treats ``--policy-dir`` and an unknown region the
same way: a one-line message in English and Chinese, exit code 2, nothing done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from yibao.benefits.loader import POLICY_SUFFIXES
from yibao.core.errors import PolicyError

if TYPE_CHECKING:
    from yibao.benefits.policy import Policy

console = Console()

POLICY_DIR_HELP = (
    "Extra directory of policy files, e.g. a city's file outside the package (repeatable; "
    "also $YIBAO_POLICY_DIR). Parents (inherits) resolve from there and from the shipped policies."
)


def policy_dir_option() -> Any:  # typer.Option's own return type: a parameter default of any declared type
    """The ``--policy-dir`` option, the same on every command."""
    return typer.Option(
        None, "--policy-dir", exists=True, file_okay=False, dir_okay=True, metavar="DIR", help=POLICY_DIR_HELP
    )


POLICY_DIR_OPTION = policy_dir_option()
"""The option as a module-level default: ``policy_dir: list[Path] | None = POLICY_DIR_OPTION``."""


def fail(exc: PolicyError) -> None:
    """Print a policy error (English, then Chinese) and exit 2."""
    console.print(f"[bold red]error:[/] {escape(exc.message_en)}", soft_wrap=True)
    if exc.message_zh and exc.message_zh != exc.message_en:
        console.print(f"       {escape(exc.message_zh)}", soft_wrap=True)
    raise typer.Exit(2)


def load_book(policy_dirs: Sequence[Path] | None = None):
    """The policy book for ``--policy-dir`` (the shipped one, plus $YIBAO_POLICY_DIR, if none); exits on error."""
    from yibao.benefits.policy import PolicyBook

    try:
        return PolicyBook.with_dirs(policy_dirs)
    except PolicyError as exc:
        fail(exc)


def require_policy(book, region_or_name: str):
    """The policy for a name or region someone typed; unknown → the known ones listed, exit 2."""
    try:
        return book.require(region_or_name)
    except PolicyError as exc:
        fail(exc)


def policy_for_data(book, data_dir: Path):
    """The policy of a data directory's insured region, strictly: a region without a policy file is an error.

    Returns ``None`` when the persons table cannot be read or spans several
    regions (the settlement runner then reports that itself).
    """
    try:
        import pyarrow.parquet as pq

        from yibao.core.parquet_io import table_path

        col = pq.read_table(
            table_path(Path(data_dir), "person") or Path(data_dir) / "person.parquet", columns=["insuplc_admdvs"]
        ).column(0)
        regions = sorted({str(r) for r in col.unique().to_pylist() if r is not None})
    except Exception:  # noqa: BLE001 - missing or unreadable tables are the runner's to report
        return None
    if len(regions) != 1:
        return None
    try:
        return book.require(regions[0])
    except PolicyError as exc:
        fail(
            PolicyError(
                f"{data_dir}: the persons' insured region {regions[0]} has no policy file; "
                f"{exc.message_en} — or pass --policy",
                f"{data_dir}: 参保地 {regions[0]} 没有待遇政策文件; {exc.message_zh}",
                field="insuplc_admdvs",
            )
        )


def _targets(args: Iterable[Path], policy_dirs: Sequence[Path]) -> list[tuple[str, Policy | PolicyError]]:
    """(label, Policy or PolicyError) for every argument of ``policy validate``."""
    from yibao.benefits.policy import Policy, PolicyBook

    out: list[tuple[str, Policy | PolicyError]] = []
    book = None
    for arg in args:
        text = str(arg)
        try:
            if arg.exists() or arg.suffix.lower() in POLICY_SUFFIXES or "/" in text:
                if arg.is_file() and arg.suffix.lower() not in POLICY_SUFFIXES:
                    raise PolicyError(
                        f"{arg}: not a policy file (policy files are YAML ending in .yaml or .yml)",
                        f"{arg}: 不是待遇政策文件 (政策文件为 .yaml 或 .yml)",
                    )
                out.append((text, Policy(arg, search_dirs=policy_dirs)))
            else:  # a policy name or region code
                book = book or PolicyBook.with_dirs(policy_dirs)
                out.append((text, book.require(text)))
        except PolicyError as exc:
            out.append((text, exc))
    return out


def validate(paths: Sequence[Path] | None, policy_dirs: Sequence[Path] | None = None) -> int:
    """``yibao policy validate``: schema on every effective date, then the national floors.

    Prints one line per file (and per finding); returns the number of files that failed.
    """
    from yibao.benefits.national import findings, not_checked
    from yibao.benefits.policy import PolicyBook

    dirs = list(policy_dirs or [])
    if paths:
        targets = _targets(paths, dirs)
    else:
        try:
            book = PolicyBook.with_dirs(dirs)
        except PolicyError as exc:
            fail(exc)
        targets = [(str(book.paths[name]), pol) for name, pol in book.by_name.items()]
    failed = 0
    for label, pol in targets:
        if isinstance(pol, PolicyError):
            failed += 1
            console.print(f"[bold red]error:[/] {escape(pol.message_en)}", soft_wrap=True)
            continue
        try:
            pol.validate_all()  # the schema on every effective date
            found = findings(pol)  # then the national floors, ceilings and targets
        except PolicyError as exc:
            failed += 1
            for line in exc.message_en.split("; "):
                console.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
            continue
        errors = [f for f in found if f.severity == "error"]
        for f in errors:
            console.print(f"[bold red]error:[/] {escape(str(f))}", soft_wrap=True)
            console.print(f"       {escape(f.message_zh)}", soft_wrap=True)
        if errors:
            failed += 1
        else:
            chain = " ← ".join(reversed(pol.chain))
            dates = ", ".join(str(d) for d in pol.change_dates()) or "none (undated)"
            console.print(
                f"[green]ok[/] {escape(label)} · policy {pol.name} · region {pol.region} · {chain} "
                f"· changes on {dates}",
                soft_wrap=True,
            )
        for w in found:
            if w.severity != "error":
                console.print(f"  [yellow]warning:[/] {escape(str(w))}", soft_wrap=True)
        notes = not_checked(pol.snapshot(pol.check_dates()[-1]))
        if notes:
            console.print(f"  note: not checked: {escape('; '.join(notes))}", soft_wrap=True)
    if failed:
        console.print(
            f"[bold red]{failed} of {len(targets)} policy file(s) failed[/] · {failed} 个待遇政策文件未通过校验"
        )
    return failed


def show_snapshot(region_or_name: str, on: dt.date, policy_dirs: Sequence[Path] | None = None):
    """The snapshot ``policy show`` prints: strict region lookup, ``--policy-dir`` honoured."""
    policy = require_policy(load_book(policy_dirs), region_or_name)
    try:
        return policy.snapshot(on)
    except PolicyError as exc:  # e.g. a date before the policy's first effective date
        fail(exc)
