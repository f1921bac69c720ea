"""Shared helpers for the code-table loaders: reading commented CSV files and
building :class:`~yibao.core.errors.CodeTableError` values that name the file,
the row (physical line number) or key, and the reason."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

from yibao.core.errors import CodeTableError

TRUE_WORDS = {"true", "1", "yes", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "n", "f", ""}


def data_path(name: str) -> Path:
    """Path of a file shipped in ``yibao/data/codes``."""
    return Path(str(resources.files("yibao") / "data" / "codes" / name))


def table_error(
    source: object,
    reason_en: str,
    reason_zh: str | None = None,
    *,
    line: int | None = None,
    key: str | None = None,
    field: str | None = None,
) -> CodeTableError:
    """A :class:`CodeTableError` whose message reads ``file, line N (key): reason``.

    The parts are also kept as attributes (``source``, ``line``, ``key``,
    ``reason``) so that callers and tests need not parse the message.
    """
    where = str(source)
    if line is not None:
        where += f", line {line}"
    if key:
        where += f" ({key})"
    err = CodeTableError(f"{where}: {reason_en}", f"{where}: {reason_zh or reason_en}", field=field)
    err.source = str(source)  # type: ignore[attr-defined]
    err.line = line  # type: ignore[attr-defined]
    err.key = key  # type: ignore[attr-defined]
    err.reason = reason_en  # type: ignore[attr-defined]
    return err


def read_csv(
    path: Path, expected: Sequence[str], *, optional: Sequence[str] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` from a UTF-8 CSV whose ``#`` lines are comments.

    The header must hold every ``expected`` column, may hold ``optional`` ones,
    and nothing else.  Values are stripped of surrounding blanks; a missing
    optional column reads as ``''``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise table_error(path, "file not found", "文件不存在") from None
    except UnicodeDecodeError as exc:
        raise table_error(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})", "文件不是 UTF-8 编码") from None
    numbered = [
        (i, ln) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not numbered:
        raise table_error(path, "no header row", "缺少表头")
    rows = list(csv.reader([ln for _, ln in numbered]))
    if len(rows) != len(numbered):  # a quoted field spanning lines: numbers would drift
        raise table_error(path, "multi-line fields are not supported", "不支持跨行字段")
    header_line, header = numbered[0][0], [h.strip() for h in rows[0]]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise table_error(path, f"duplicate columns {dup}", f"重复的列 {dup}", line=header_line)
    missing = [c for c in expected if c not in header]
    if missing:
        raise table_error(
            path, f"missing columns {missing}; expected {list(expected)}", f"缺少列 {missing}", line=header_line
        )
    unknown = [c for c in header if c not in expected and c not in optional]
    if unknown:
        raise table_error(
            path, f"unknown columns {unknown}; expected {list(expected)}", f"未知的列 {unknown}", line=header_line
        )
    for (lineno, _), values in zip(numbered[1:], rows[1:], strict=True):
        if len(values) != len(header):
            raise table_error(
                path,
                f"{len(values)} fields, the header has {len(header)}",
                f"字段数 {len(values)} 与表头 {len(header)} 不符",
                line=lineno,
            )
        row = {h: v.strip() for h, v in zip(header, values, strict=True)}
        for c in optional:
            row.setdefault(c, "")
        yield lineno, row


def parse_bool(value: str) -> bool | None:
    """``true/false/1/0/yes/no`` (any case) → bool; anything else → ``None``."""
    v = value.strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    return None


def parse_int(value: str, default: int) -> int | None:
    """An integer, ``default`` for ''; ``None`` when not an integer."""
    v = value.strip()
    if v == "":
        return default
    try:
        return int(v)
    except ValueError:
        return None


def split_list(value: str | None) -> tuple[str, ...]:
    """``'a; b;'`` → ``('a', 'b')``."""
    return tuple(p.strip() for p in (value or "").split(";") if p.strip())
