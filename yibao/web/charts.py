"""Interactive charts (交互式图表): plotly.js draws them in the browser, from a spec the server writes.

Each chart is one ``<div class="ychart" id=… data-chart=… data-spec='{…}'>``; ``static/charts.js`` turns every
such div into a plotly.js chart (hover tooltips, drag-to-zoom with double-click to reset, a legend whose items
hide and show their series).  The script is the ``plotly.min.js`` that the PyPI package ``plotly`` ships
(``plotly/package_data/``; only that file is used): the console serves it from ``/console/static/`` and the
fund-year report carries it inline, so neither needs the internet.

Money comes in as integer fen with ``money=`` the fen in one display unit (100 for ¥, 1,000,000 for ¥10k
万元, 100,000,000 for ¥ million 百万元); the plotted number is that exact decimal (``Decimal`` moved by a power
of ten: no float arithmetic), and the tooltip shows the amount as ¥ to the fen (``labels.money``).  Other values
are integers or ``Decimal``; a ``float`` is refused.
"""

from __future__ import annotations

import html
import importlib.util
import json
import numbers
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from yibao.web import labels

# ECharts 5 default palette (the console's colours since its first charts)
PALETTE = ("#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc")
AXIS = "#6e7079"
GRID = "#e0e6f1"
FONT = "PingFang SC, Microsoft YaHei, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif"

PLOTLY_JS = "plotly.min.js"  # served name (console: /console/static/plotly.min.js)
CHARTS_JS = Path(__file__).resolve().parent / "static" / "charts.js"

YUAN, WAN, MILLION = 100, 1_000_000, 100_000_000  # fen per display unit: ¥, ¥10k (万元), ¥ million (百万元)


class ChartLibraryMissing(RuntimeError):
    """The ``plotly`` package (which ships plotly.min.js) is not installed."""


@lru_cache(maxsize=1)
def plotly_js() -> bytes:
    """plotly.min.js from the installed ``plotly`` package (found without importing it)."""
    spec = importlib.util.find_spec("plotly")
    path = Path(next(iter(spec.submodule_search_locations or []), "")) / "package_data" / PLOTLY_JS if spec else None
    if path is None or not path.is_file():
        raise ChartLibraryMissing(
            "plotly.min.js not found: pip install plotly (a dependency of yibao) / 图表库 plotly.min.js 未安装"
        )
    return path.read_bytes()


PLOTLY_CSS = "plotly.css"  # served name: plotly.js's own style rules as a style sheet (see plotly_css)
_X, _Y = ".js-plotly-plot .plotly", ".plotly-notifier"


def _js_strings_object(text: str, at: int) -> tuple[dict[str, str], int]:
    """A JavaScript object literal of string (or bare-name) keys and string values starting at ``text[at] == "{"``."""

    def string(i: int) -> tuple[str, int]:
        q = text[i]
        if q not in "'\"":
            raise ValueError(f"a string expected at {i}")
        out, i = [], i + 1
        while text[i] != q:
            if text[i] == "\\":
                nxt = text[i + 1]
                if nxt == "u":
                    out.append(chr(int(text[i + 2 : i + 6], 16)))
                    i += 6
                    continue
                out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                i += 2
                continue
            out.append(text[i])
            i += 1
        return "".join(out), i + 1

    rules: dict[str, str] = {}
    i = at + 1
    while True:
        if text[i].isalpha() or text[i] in "_$":  # a bare identifier key (the minifier unquotes some)
            j = i
            while text[j].isalnum() or text[j] in "_$":
                j += 1
            key, i = text[i:j], j
        else:
            key, i = string(i)
        if text[i] != ":":
            raise ValueError(f"':' expected at {i}")
        rules[key], i = string(i + 1)
        if text[i] == "}":
            return rules, i + 1
        if text[i] != ",":
            raise ValueError(f"',' or '}}' expected at {i}")
        i += 1


@lru_cache(maxsize=1)
def plotly_css() -> bytes:
    """plotly.js's style rules as a style sheet, read from the installed plotly.min.js.

    plotly.js inserts these rules into a ``<style>`` element it creates, which the console's Content-Security-Policy
    (``style-src 'self'``) blocks; served as ``/console/static/plotly.css`` and linked as
    ``<link id="plotly.js-style-global" class="no-inline-styles">`` (plotly.js's own switch for strict CSP) they apply
    without it.  The rule table (selectors written with ``X`` / ``Y``) is taken from the bundle, and the bundle's own
    substitution for ``X`` and ``Y`` is checked to be the one used here."""
    js = plotly_js().decode("utf-8")
    at = js.find('{"X,X div":')
    try:
        if at < 0:
            raise ValueError("rule table not found")
        rules, end = _js_strings_object(js, at)
        tail = js[end : end + 400]
        if f'.replace(/X/g,"{_X}").replace(/Y/g,"{_Y}")' not in tail:
            raise ValueError("selector substitution not found")
    except (ValueError, IndexError) as exc:
        raise ChartLibraryMissing(
            f"this plotly.min.js has no style-rule table that yibao can read ({exc}) / "
            "无法从 plotly.min.js 读出其样式规则"
        ) from exc
    lines = [
        "/* plotly.js style rules, from the installed plotly package's plotly.min.js (yibao.web.charts.plotly_css) */"
    ]
    for sel, body in reversed(
        rules.items()
    ):  # plotly.js inserts each rule at index 0: the table's first rule ends last
        full = sel.replace(",", " ,", 1) if sel.startswith(",") else sel
        lines.append(f"{full.replace('X', _X).replace('Y', _Y)}{{{body}}}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def charts_js() -> str:
    return CHARTS_JS.read_text(encoding="utf-8")


# --- values -----------------------------------------------------------------------------------------


def _num(v: Any) -> int | Decimal:
    """An exact number for the chart: int or Decimal (numpy integers too); never a float."""
    if isinstance(v, bool):
        raise TypeError("a chart value is a number, not a bool")
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise ValueError(f"a chart value must be finite, got {v}")
        return v
    raise TypeError(f"chart values are int (fen, counts) or Decimal, not {type(v).__name__}: {v!r}")


def _shift(fen: int, per_unit: int) -> Decimal:
    """Integer fen in display units, exactly: ``per_unit`` is a power of ten."""
    digits = len(str(per_unit)) - 1
    if per_unit <= 0 or 10**digits != per_unit:
        raise ValueError(f"money= must be a power of ten (fen per display unit), got {per_unit}")
    return Decimal(fen).scaleb(-digits)


def _tip(v: int | Decimal, money: int | None, unit: str) -> str:
    if money is not None:
        return labels.money(v)
    if isinstance(v, int):
        text = f"{v:,}"
    else:
        text = f"{v.normalize():,f}"
    return f"{text} {unit}".strip()


def _plot(v: int | Decimal, money: int | None) -> int | Decimal:
    if money is None:
        return v
    if not isinstance(v, int):
        raise TypeError(f"money is integer fen, got {v!r}")
    return _shift(v, money)


class _Raw(str):
    """Already JSON."""


def _json(o: Any) -> str:
    """JSON with each Decimal written as its exact number (json.dumps would make it a string or a float)."""
    if isinstance(o, Decimal):
        return format(o, "f")
    if isinstance(o, Mapping):
        return "{" + ",".join(json.dumps(str(k)) + ":" + _json(v) for k, v in o.items()) + "}"
    if isinstance(o, (list, tuple)):
        return "[" + ",".join(_json(v) for v in o) + "]"
    return json.dumps(o, ensure_ascii=False)


def _layout(title: str, unit: str, height: int, *, legend: bool) -> dict:
    return {
        "height": height,
        "font": {"family": FONT, "size": 12, "color": "#333"},
        "margin": {"l": 64, "r": 16, "t": 36 if legend else 12, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "colorway": list(PALETTE),
        "showlegend": legend,
        # the legend in a row above the plot area: it never covers a bar
        "legend": {
            "orientation": "h",
            "x": 0.5,
            "xanchor": "center",
            "y": 1.02,
            "yanchor": "bottom",
            "font": {"size": 12},
            "traceorder": "normal",
        },  # series in the order given (stacked bars would list them reversed)
        "hovermode": "closest",
        "hoverlabel": {"font": {"family": FONT}},
        "dragmode": "zoom",
        "meta": {"title": title, "unit": unit},
    }


def _axis(title: str = "", **kw: Any) -> dict:
    a = {"color": AXIS, "gridcolor": GRID, "zeroline": False, "automargin": True, "tickformat": ","}
    if title:
        a["title"] = {"text": title, "font": {"size": 11}}
    a.update(kw)
    return a


def _div(chart_id: str, title: str, kind: str, data: list, layout: dict) -> str:
    key = chart_id.removeprefix("chart-") or "chart"
    # nothing that talks to a vendor's site: no logo link, no "send to cloud" / "edit in Chart Studio" buttons
    config = {
        "displaylogo": False,
        "responsive": True,
        "scrollZoom": False,
        "showLink": False,
        "showSendToCloud": False,
        "showEditInChartStudio": False,
        "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "sendDataToCloud"],
    }
    spec = _json({"data": data, "layout": layout, "config": config})
    return (
        f'<div class="ychart" id="{html.escape(chart_id)}" data-chart="{html.escape(key)}" data-kind="{kind}" '
        f'role="img" aria-label="{html.escape(title)}" data-spec="{html.escape(spec, quote=True)}"></div>'
    )


# --- charts ----------------------------------------------------------------------------------------


def bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[Any]],
    *,
    title: str = "",
    unit: str = "",
    stacked: bool = False,
    height: int = 300,
    chart_id: str = "",
    money: int | None = None,
    lines: Mapping[str, Sequence[Any]] | None = None,
) -> str:
    """Grouped (or stacked) vertical bars, one trace per series; ``lines`` are drawn over them (same axis).

    With ``money`` the values are integer fen, plotted in units of ``money`` fen (``unit`` names that unit)."""
    cats = [str(c) for c in categories]
    data = []
    for j, (name, values) in enumerate([*series.items(), *(lines or {}).items()]):
        vals = [_num(v) for v in values]
        if len(vals) != len(cats):
            raise ValueError(f"series {name!r} has {len(vals)} values for {len(cats)} categories")
        is_line = j >= len(series)
        trace: dict[str, Any] = {
            "type": "scatter" if is_line else "bar",
            "name": str(name),
            "x": cats,
            "y": [_plot(v, money) for v in vals],
            "customdata": [_tip(v, money, unit) for v in vals],
            "hovertemplate": f"%{{x}} · {html.escape(str(name))}: %{{customdata}}<extra></extra>",
            "marker": {"color": PALETTE[j % len(PALETTE)]},
        }
        if is_line:
            trace.update(mode="lines+markers", line={"color": PALETTE[j % len(PALETTE)], "width": 2})
        data.append(trace)
    layout = _layout(title, unit, height, legend=len(data) > 1)
    layout.update(
        barmode="stack" if stacked else "group",
        bargap=0.3,
        xaxis=_axis(type="category", tickformat=""),
        yaxis=_axis(unit, rangemode="tozero", fixedrange=True),
    )
    return _div(chart_id, title, "bar", data, layout)


def hbar_chart(
    labels_: Sequence[str],
    values: Sequence[Any],
    *,
    title: str = "",
    unit: str = "",
    chart_id: str = "",
    money: int | None = None,
) -> str:
    """Horizontal bars, one colour per row, first row on top (ECharts' 'category on y')."""
    vals = [_num(v) for v in values]
    if len(vals) != len(labels_):
        raise ValueError(f"{len(vals)} values for {len(labels_)} labels")
    tips = [_tip(v, money, unit) for v in vals]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": title or unit,
            "y": [str(x) for x in labels_],
            "x": [_plot(v, money) for v in vals],
            "customdata": tips,
            "text": tips,
            "textposition": "outside",
            "cliponaxis": False,
            "hovertemplate": "%{y}: %{customdata}<extra></extra>",
            "marker": {"color": [PALETTE[i % len(PALETTE)] for i in range(len(vals))]},
        }
    ]
    layout = _layout(title, unit, 60 + 28 * len(vals), legend=False)
    layout["margin"].update(r=110)
    layout.update(
        xaxis=_axis(unit, rangemode="tozero"),
        yaxis=_axis(type="category", autorange="reversed", tickformat="", fixedrange=True),
    )
    return _div(chart_id, title, "hbar", data, layout)


def donut_chart(
    labels_: Sequence[str],
    values: Sequence[Any],
    *,
    title: str = "",
    unit: str = "",
    size: int = 300,
    chart_id: str = "",
    money: int | None = None,
) -> str:
    """A ring of shares; the legend beside it hides and shows a slice."""
    vals = [_num(v) for v in values]
    if len(vals) != len(labels_):
        raise ValueError(f"{len(vals)} values for {len(labels_)} labels")
    data = [
        {
            "type": "pie",
            "hole": 0.45,
            "sort": False,
            "direction": "clockwise",
            "labels": [str(x) for x in labels_],
            "values": [_plot(v, money) for v in vals],
            "customdata": [_tip(v, money, unit) for v in vals],
            "textinfo": "percent",
            "hovertemplate": "%{label}: %{customdata} (%{percent})<extra></extra>",
            "marker": {
                "colors": [PALETTE[i % len(PALETTE)] for i in range(len(vals))],
                "line": {"color": "#fff", "width": 1},
            },
        }
    ]
    layout = _layout(title, unit, size, legend=True)
    layout["margin"].update(t=12, b=12, l=12)
    layout["legend"] = {"orientation": "v", "x": 1.02, "xanchor": "left", "y": 0.5, "yanchor": "middle"}
    return _div(chart_id, title, "donut", data, layout)
