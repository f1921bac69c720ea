"""Wrap lines over the line length that `ruff format` cannot: long string literals, comments and one-line docstrings.

    python scripts/wrap_long_lines.py [--width 120] FILE...

A long single-line string on a line of its own (inside brackets) is split at a space into adjacent literals
(implicit concatenation); a long comment line is re-wrapped; a long one-line docstring becomes a multi-line one;
`# fmt: skip` on a long line is dropped so the formatter can wrap it.  A file is rewritten only when its syntax tree
is unchanged (docstrings compared with their whitespace collapsed), so nothing here can change behaviour; files it
cannot prove are left alone and listed.  Run `ruff format` afterwards.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import unicodedata
from pathlib import Path

STRING_LINE = re.compile(
    r"""^(?P<ind>\s*)(?P<kw>\w+=|return |\+ |"\w+": )?"""
    r"""(?P<pre>[rRfFbBuU]{0,2})(?P<q>["'])(?P<body>.*)(?P=q)(?P<tail>[\s,)+\]}]*)$"""
)
DOC_LINE = re.compile(r'^(?P<ind>\s*)(?P<pre>[rRuU]?)"""(?P<body>.*)"""\s*$')


def width_of(text: str) -> int:
    """Display columns, as ruff counts them: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _wrap_words(text: str, room: int, first_room: int | None = None) -> list[str]:
    """Greedy word wrap by display width (``textwrap`` counts a CJK character as one column)."""
    lines: list[str] = []
    cur = ""
    for word in text.split():
        limit = first_room if (first_room is not None and not lines) else room
        if cur and width_of(cur) + 1 + width_of(word) > limit:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        lines.append(cur)
    return lines


def _balanced(text: str, room: int) -> list[str]:
    """Word wrap into as few lines as ``room`` allows, with the lines as even as possible (no one-word last line)."""
    lines = _wrap_words(text, room)
    lo = room
    while lo > 20 and len(_wrap_words(text, lo - 1)) == len(lines):
        lo -= 1
    return _wrap_words(text, lo)


def _split_point(body: str, limit: int, fstring: bool) -> int | None:
    """The index after the last space within ``limit`` columns that is outside f-string braces and escapes."""
    best = None
    depth = 0
    used = 0
    for i, ch in enumerate(body):
        used += width_of(ch)
        if used > limit:
            break
        if fstring and ch == "{":
            depth += 1
        elif fstring and ch == "}":
            depth -= 1
        elif ch == " " and depth == 0 and i > 10 and body[i - 1] != "\\":
            best = i + 1
        elif ch == "n" and depth == 0 and i > 10 and body[i - 1] == "\\" and body[i - 2] != "\\":
            best = i + 1  # after a \n escape
    return best


def _wrap_string(line: str, width: int) -> list[str] | None:
    m = STRING_LINE.match(line)
    if not m or '"""' in line or "'''" in line:
        return None
    ind, kw, pre, q, body, tail = m["ind"], m["kw"] or "", m["pre"], m["q"], m["body"], m["tail"]
    if re.search(rf"(?<!\\){q}", body):  # more than one literal on the line
        return None
    out = []
    fstring = "f" in pre.lower()
    lead = "" if kw == "return " else kw
    if kw == "return ":
        ind += "    "
    while width_of(f"{ind}{lead}{pre}{body}{tail}") + 2 > width:
        cut = _split_point(body, width - len(ind) - len(lead) - len(pre) - 3, fstring)
        if cut is None:
            break
        out.append(f"{ind}{lead}{pre}{q}{body[:cut]}{q}")
        body, lead = body[cut:], ""
    if not out:
        return None
    out.append(f"{ind}{pre}{q}{body}{q}{tail}")
    if kw == "return ":
        outer = ind[:-4]
        return [f"{outer}return ("] + out + [f"{outer})"]
    return out


def _wrap_comment(line: str, width: int) -> list[str] | None:
    m = re.match(r"^(\s*)# (.*)$", line)
    if not m:
        return None
    ind = m[1]
    return [f"{ind}# {x}" for x in _balanced(m[2], width - len(ind) - 2)] or None


def _wrap_docstring(line: str, width: int) -> list[str] | None:
    m = DOC_LINE.match(line)
    if not m:
        return None
    ind, pre, body = m["ind"], m["pre"], m["body"]
    lines = _balanced(body, width - len(ind) - 6)
    if len(lines) < 2:
        return None
    return [f'{ind}{pre}"""{lines[0]}'] + [f"{ind}{x}" for x in lines[1:]] + [f'{ind}"""']


def _wrap_doc_text(line: str, width: int) -> list[str] | None:
    """A text line inside a multi-line docstring (the first may start with the opening quotes)."""
    m = re.match(r'^(\s*)([rRuU]?""")?(.*)$', line)
    if not m:
        return None
    ind, opening, text = m[1], m[2] or "", m[3]
    closing = ""
    if text.endswith('"""'):
        text, closing = text[:-3], '"""'
    if '"""' in text:
        return None
    room = width - len(ind) - max(len(opening), len(closing))
    lines = _balanced(text, room) if opening else _wrap_words(text, room)
    if len(lines) < 2:
        return None
    return [f"{ind}{opening}{lines[0]}"] + [f"{ind}{x}" for x in lines[1:-1]] + [f"{ind}{lines[-1]}{closing}"]


def _docstring_lines(src: str) -> set[int]:
    """1-based numbers of the lines inside multi-line docstrings."""
    inside: set[int] = set()
    for node in ast.walk(ast.parse(src)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            c = body[0].value
            if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.end_lineno and c.end_lineno > c.lineno:
                inside.update(range(c.lineno, c.end_lineno + 1))
    return inside


def wrap_source(src: str, width: int) -> str:
    out: list[str] = []
    in_doc = _docstring_lines(src)
    for number, line in enumerate(src.splitlines(), start=1):
        if width_of(line) <= width:
            out.append(line)
            continue
        if line.rstrip().endswith("# fmt: skip"):
            out.append(line[: line.rindex("# fmt: skip")].rstrip())
            continue
        if number in in_doc:
            new = _wrap_doc_text(line, width)
        else:
            new = _wrap_docstring(line, width) or _wrap_string(line, width) or _wrap_comment(line, width)
        out.extend(new or [line])
    return "\n".join(out) + ("\n" if src.endswith("\n") else "")


def _tree(src: str) -> str:
    tree = ast.parse(src)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            c = body[0].value
            if isinstance(c, ast.Constant) and isinstance(c.value, str):
                c.value = " ".join(c.value.split())
    return ast.dump(tree)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=120)
    ap.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args()
    refused = []
    for path in args.files:
        src = path.read_text()
        new = wrap_source(src, args.width)
        if new == src:
            continue
        try:
            same = _tree(new) == _tree(src)
        except SyntaxError:
            same = False
        if not same:
            refused.append(path)
            continue
        path.write_text(new)
    for p in refused:
        print(f"left alone (tree would change): {p}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
