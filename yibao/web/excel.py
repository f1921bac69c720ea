"""Excel export (openpyxl): tables the way officials expect them, money in yuan with two decimals."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from yibao.core.money import fen_to_yuan

SYNTHETIC_NOTE = "合成数据 (非真实) / SYNTHETIC data"


def workbook_bytes(
    sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]],
    *,
    note: str = "",
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """One sheet per ``(title, headers, rows)``; a note line (e.g. synthetic) above the headers when given.

    Written in openpyxl's streaming mode, so a large export stays in bounded memory; ``progress(n)`` is
    called every 1,000 rows.
    """
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for title, headers, rows in sheets:
        ws = wb.create_sheet(title=title[:31])
        if note:
            ws.append([note])
        ws.append(list(headers))
        for n, r in enumerate(rows, start=1):
            ws.append(list(r))
            if progress is not None and n % 1000 == 0:
                progress(n)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def yuan(fen: int | None) -> Decimal | None:
    """Fen to exact yuan for a spreadsheet cell (openpyxl writes a ``Decimal`` as a number; the cell is formatted)."""
    return None if fen is None else fen_to_yuan(int(fen))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
