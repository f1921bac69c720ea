"""The rule files' DuckDB SQL rewritten as Spark SQL (方言转换), so each rule has ONE definition.

The post-care rules (``yibao/data/supervision/sql/*.sql``) are written for
DuckDB.  :func:`to_spark` rewrites the small subset of DuckDB they use into
Spark SQL at run time; nothing is copied into a second rule file.  The
rewrites are token-level and each keeps DuckDB's meaning, including its NULLs:

==============================  =============================================================
DuckDB                          Spark SQL
==============================  =============================================================
``x::T``                        ``CAST(x AS T)`` (``VARCHAR`` → ``STRING``)
``{k: v, …}``                   ``named_struct('k', v, …)``
``[a, b]``                      ``array(a, b)``
``lambda d: e``                 ``d -> e``
``a // b``                      ``a div b`` (both truncate toward zero)
``$name``                       the rule parameter as a literal (a list → ``array(…)``)
``list_filter/list_transform``  ``filter/transform``
``list_contains``               ``array_contains``
``list_has_any``                ``arrays_overlap``
``list_bool_or(xs)``            ``array_max(xs)`` (NULL when empty or all NULL, as bool_or)
``string_split(s, ';')``        ``split(s, ';', -1)`` (the separator escaped as a pattern)
``starts_with``                 ``startswith``
``list(DISTINCT x)``            ``collect_set(x)``
``date_diff('day', a, b)``      ``datediff(CAST(b AS DATE), CAST(a AS DATE))``
``date_sub('year', a, b)``      completed years, clamped to month end as DuckDB does
``to_json(x)``                  ``to_json(x, …)`` writing timestamps as DuckDB does
``first(x ORDER BY k DESC, j)`` ``min_by(x, struct(-(k), j, x))`` (a DESC key must be numeric)
==============================  =============================================================

Anything else DuckDB-only (other ``date_diff`` parts, ``mode``, ``list(x)`` …)
raises :class:`Untranslatable`; the Spark scan lists such a rule as not run,
it never drops it silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from yibao.core.errors import YibaoError


class Untranslatable(YibaoError):
    """A rule's SQL uses DuckDB syntax the Spark rewrite does not cover."""

    code = "E_SPARK_DIALECT"


_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>--[^\n]*)|(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)
    |(?P<param>\$[A-Za-z_]\w*)|(?P<ident>[A-Za-z_]\w*)|(?P<op>::|\|\||//|<>|<=|>=|!=|->|[-+*/%=<>(),.;:\[\]{}])""",
    re.VERBOSE,
)
_CLOSE = {"(": ")", "[": "]", "{": "}"}
_RENAME = {
    "list_filter": "filter",
    "list_transform": "transform",
    "list_contains": "array_contains",
    "list_has_any": "arrays_overlap",
    "list_bool_or": "array_max",
    "starts_with": "startswith",
}
_TYPES = {
    "VARCHAR": "STRING",
    "TIMESTAMPTZ": "TIMESTAMP",
    "TEXT": "STRING",
    "BIGINT": "BIGINT",
    "INTEGER": "INT",
    "DOUBLE": "DOUBLE",
}
_DUCKDB_ONLY = {"list", "first", "mode", "list_aggregate", "strftime", "regexp_matches", "epoch"}


@dataclass
class _Group:
    open: str
    items: list = field(default_factory=list)  # str tokens and _Group


def _tokens(sql: str) -> list[str]:
    out, pos = [], 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if not m:
            raise Untranslatable(
                f"cannot read the SQL at {sql[pos : pos + 20]!r}", f"无法解析 SQL：{sql[pos : pos + 20]}"
            )
        pos = m.end()
        if m.lastgroup not in ("ws", "comment"):
            out.append(m.group())
    return out


def _tree(tokens: list[str]) -> _Group:
    stack = [_Group("")]
    for t in tokens:
        if t in _CLOSE:
            stack.append(_Group(t))
        elif t in _CLOSE.values():
            g = stack.pop()
            if _CLOSE.get(g.open) != t:
                raise Untranslatable(f"unbalanced {t!r} in the SQL", f"SQL 括号不匹配：{t}")
            stack[-1].items.append(g)
        else:
            stack[-1].items.append(t)
    if len(stack) != 1:
        raise Untranslatable("unbalanced brackets in the SQL", "SQL 括号不匹配")
    return stack[0]


def literal(v) -> str:
    """A Python parameter value as a Spark SQL literal."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(v, list | tuple):
        return "array(" + ", ".join(literal(x) for x in v) + ")"
    raise Untranslatable(f"parameter value {v!r} has no Spark literal", f"参数值 {v!r} 无法转换")


def _split_args(items: list) -> list[list]:
    args: list[list] = [[]]
    for it in items:
        if it == ",":
            args.append([])
        else:
            args[-1].append(it)
    return args


class _Writer:
    def __init__(self, params: dict):
        self.params = params

    def seq(self, items: list) -> str:
        """Rewrite a token sequence; pieces are atoms, so ``::`` can wrap the last one."""
        pieces: list[str] = []
        i = 0
        while i < len(items):
            it = items[i]
            nxt = items[i + 1] if i + 1 < len(items) else None
            if isinstance(it, _Group):
                pieces.append(self.group(it, pieces))
            elif it == "::":
                if not pieces or nxt is None or isinstance(nxt, _Group):
                    raise Untranslatable("a cast '::' without a value or type", "类型转换 '::' 不完整")
                pieces[-1] = f"CAST({pieces[-1]} AS {_TYPES.get(str(nxt).upper(), str(nxt))})"
                i += 1
            elif it == "." and pieces and isinstance(nxt, str):
                pieces[-1] += "." + nxt
                i += 1
            elif it == "//":
                pieces.append("div")
            elif it.startswith("$"):
                if it[1:] not in self.params:
                    raise Untranslatable(f"parameter {it} is not set", f"参数 {it} 未设置")
                pieces.append(literal(self.params[it[1:]]))
            elif it.lower() == "lambda" and isinstance(nxt, str) and i + 2 < len(items) and items[i + 2] == ":":
                pieces.append(f"{nxt} ->")
                i += 2
            else:
                pieces.append(it)
            i += 1
        return " ".join(pieces)

    def group(self, g: _Group, pieces: list[str]) -> str:
        if g.open == "{":
            return "named_struct(" + ", ".join(self._field(a) for a in _split_args(g.items)) + ")"
        inner = self.seq(g.items)
        if g.open == "[":
            if pieces and re.match(r"^[\w.]+$|\)$", pieces[-1]):
                raise Untranslatable("list indexing is not rewritten", "不支持列表下标")
            return f"array({inner})"
        fn = pieces[-1] if pieces and re.fullmatch(r"[A-Za-z_]\w*", pieces[-1]) else None
        if fn is None:
            return f"({inner})"
        pieces.pop()
        return self.call(fn, g.items, inner)

    def _field(self, arg: list) -> str:
        if len(arg) < 3 or not isinstance(arg[0], str) or arg[1] != ":":
            raise Untranslatable("a struct literal field is not 'name: value'", "结构体字段应为 name: value")
        return f"'{arg[0]}', {self.seq(arg[2:])}"

    def call(self, fn: str, items: list, inner: str) -> str:
        low = fn.lower()
        args = _split_args(items)
        if low in ("date_diff", "date_sub") and args and args[0] in (["'day'"], ["'year'"]):
            a, b = (self.seq(x) for x in args[1:3])
            if low == "date_diff" and args[0] == ["'day'"]:
                return f"datediff(CAST({b} AS DATE), CAST({a} AS DATE))"
            if low == "date_sub" and args[0] == ["'year'"]:  # DuckDB: start + n years (clamped) <= end
                n = f"(year({b}) - year({a}))"
                return (
                    f"({n} - CASE WHEN add_months(CAST({a} AS DATE), 12 * {n}) > CAST({b} AS DATE) THEN 1 ELSE 0 END)"
                )
        if low == "string_split" and len(args) == 2 and len(args[1]) == 1 and str(args[1][0]).startswith("'"):
            sep = re.escape(str(args[1][0])[1:-1])
            return f"split({self.seq(args[0])}, '{sep}', -1)"
        if low == "list" and items and str(items[0]).upper() == "DISTINCT":
            return f"collect_set({self.seq(items[1:])})"
        if low == "to_json" and len(args) == 1:  # timestamps as DuckDB writes them: 2025-03-28 09:47:39+08
            return f"to_json({inner}, map('timestampFormat', 'yyyy-MM-dd HH:mm:ssx'))"
        if low == "first" and "ORDER" in [str(x).upper() for x in items]:
            return self._first_ordered(items)
        if low in ("date_diff", "date_sub", "string_split") or low in _DUCKDB_ONLY:
            raise Untranslatable(f"{fn}(…) as written here has no Spark rewrite", f"{fn}(…) 无对应的 Spark 写法")
        return f"{_RENAME.get(low, fn)}({inner})"

    def _first_ordered(self, items: list) -> str:
        """``first(x ORDER BY k DESC, j)`` → ``min_by(x, struct(-(k), j, x))``: a DESC key must be numeric."""
        up = [str(x).upper() for x in items]
        at = up.index("ORDER")
        if at + 1 >= len(up) or up[at + 1] != "BY":
            raise Untranslatable("first(… ORDER …) without BY", "first(… ORDER …) 缺少 BY")
        value = self.seq(items[:at])
        keys = []
        for key in _split_args(items[at + 2 :]):
            desc = bool(key) and str(key[-1]).upper() == "DESC"
            if key and str(key[-1]).upper() in ("ASC", "DESC"):
                key = key[:-1]
            if not key or "NULLS" in [str(x).upper() for x in key]:
                raise Untranslatable("first(… ORDER BY …) key not rewritten", "first(… ORDER BY …) 的排序键无法转换")
            keys.append(f"-({self.seq(key)})" if desc else self.seq(key))
        return f"min_by({value}, struct({', '.join([*keys, value])}))"


def to_spark(sql: str, params: dict | None = None) -> str:
    """The DuckDB ``sql`` of a rule file as Spark SQL, with ``$name`` parameters bound as literals."""
    return _Writer(params or {}).seq(_tree(_tokens(sql)).items)
