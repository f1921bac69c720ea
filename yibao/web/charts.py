"""Server-side SVG charts in the ECharts style (palette, light grid, legend on top, tooltips).

The machine that runs yibao may have no internet, and no PyPI package ships
the ECharts script itself (``pyecharts`` loads it from a CDN), so the console
draws its charts on the server: no JavaScript, instant first render, and
the figures are in the page (each bar carries ``data-value`` and a
``<title>`` tooltip), so a browser test can read them back.
"""

from __future__ import annotations

import html
from typing import Sequence

# ECharts 5 default palette
PALETTE = ("#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc")
AXIS = "#6e7079"
GRID = "#e0e6f1"


def _nice_max(v: float) -> tuple[float, float]:
    """A round axis maximum and tick step above ``v`` (5 ticks)."""
    if v <= 0:
        return 1.0, 0.2
    import math

    raw = v / 5
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            step = m * mag
            break
    return step * math.ceil(v / step), step


def _fmt(v: float) -> str:
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.1f}".rstrip("0").rstrip(".")
    return f"{v:.2f}".rstrip("0").rstrip(".") or "0"


def _text_width(text: str, size: int = 12) -> float:
    return sum(size if ord(ch) > 0x2E80 else size * 0.6 for ch in text)


def _legend(names: Sequence[str], width: int) -> str:
    """Legend items centred on the top line, as ECharts places them."""
    items = [(n, 30 + _text_width(n) + 14) for n in names]
    x = max(10.0, (width - sum(w for _, w in items)) / 2)
    out = []
    for i, (n, w) in enumerate(items):
        c = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x:.1f}" y="6" width="22" height="12" rx="3" fill="{c}"/>'
                   f'<text x="{x + 27:.1f}" y="16" font-size="12" fill="#333">{html.escape(n)}</text>')
        x += w
    return "".join(out)


def bar_chart(categories: Sequence[str], series: dict[str, Sequence[float]], *, title: str = "", unit: str = "",
              stacked: bool = False, width: int = 720, height: int = 300, chart_id: str = "") -> str:
    """Grouped (or stacked) vertical bars; values already in display units (e.g. ¥ 10k)."""
    names = list(series)
    n = len(categories)
    left, right, top, bottom = 64, 16, 48, 40
    pw, ph = width - left - right, height - top - bottom
    if stacked:
        vmax = max((sum(series[s][i] for s in names) for i in range(n)), default=0)
    else:
        vmax = max((max(v, default=0) for v in series.values()), default=0)
    top_v, step = _nice_max(float(vmax))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{html.escape(chart_id)}" viewBox="0 0 {width} {height}" '
             f'width="100%" role="img" aria-label="{html.escape(title)}" font-family="PingFang SC, Microsoft YaHei, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif">']
    parts.append(_legend(names, width))
    if unit:
        parts.append(f'<text x="{left - 8}" y="{top - 10}" font-size="11" fill="{AXIS}" text-anchor="end">{html.escape(unit)}</text>')
    ticks = int(round(top_v / step))
    for k in range(ticks + 1):
        y = top + ph - ph * k / max(ticks, 1)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                     f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="11" fill="{AXIS}" text-anchor="end">{_fmt(step * k)}</text>')
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="{AXIS}"/>')
    band = pw / max(n, 1)
    inner = band * 0.7
    every = max(1, n // 12)
    for i, cat in enumerate(categories):
        x0 = left + band * i + (band - inner) / 2
        if i % every == 0:
            parts.append(f'<text x="{left + band * i + band / 2:.1f}" y="{top + ph + 16}" font-size="11" fill="{AXIS}" '
                         f'text-anchor="middle">{html.escape(str(cat))}</text>')
        base = 0.0
        for j, s in enumerate(names):
            v = float(series[s][i])
            h = ph * v / top_v if top_v else 0
            c = PALETTE[j % len(PALETTE)]
            if stacked:
                x, w, y = x0, inner, top + ph - ph * base / top_v - h
                base += v
            else:
                w = inner / max(len(names), 1)
                x, y = x0 + w * j, top + ph - h
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(w - 1, 1):.1f}" height="{max(h, 0):.1f}" '
                         f'fill="{c}" data-series="{html.escape(s)}" data-category="{html.escape(str(cat))}" data-value="{v}">'
                         f'<title>{html.escape(str(cat))} · {html.escape(s)}: {_fmt(v)} {html.escape(unit)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(labels: Sequence[str], values: Sequence[float], *, title: str = "", unit: str = "", width: int = 720,
               chart_id: str = "") -> str:
    """Horizontal bars, one colour per row (ECharts 'category on y')."""
    n = len(labels)
    left, right, top, row = 170, 90, 10, 26
    height = top + row * n + 24
    pw = width - left - right
    vmax = max((float(v) for v in values), default=0)
    top_v, _ = _nice_max(vmax)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{html.escape(chart_id)}" viewBox="0 0 {width} {height}" '
             f'width="100%" role="img" aria-label="{html.escape(title)}" font-family="PingFang SC, Microsoft YaHei, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif">']
    for i, (lab, v) in enumerate(zip(labels, values)):
        y = top + row * i
        w = pw * float(v) / top_v if top_v else 0
        c = PALETTE[i % len(PALETTE)]
        parts.append(f'<text x="{left - 8}" y="{y + 16}" font-size="12" fill="#333" text-anchor="end">{html.escape(lab)}</text>'
                     f'<rect class="bar" x="{left}" y="{y + 4}" width="{max(w, 0):.1f}" height="{row - 8}" rx="2" fill="{c}" '
                     f'data-category="{html.escape(lab)}" data-value="{float(v)}"><title>{html.escape(lab)}: {_fmt(float(v))} {html.escape(unit)}</title></rect>'
                     f'<text x="{left + w + 6:.1f}" y="{y + 16}" font-size="11" fill="{AXIS}">{_fmt(float(v))}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + row * n}" stroke="{AXIS}"/>')
    parts.append(f'<text x="{left + pw}" y="{height - 6}" font-size="11" fill="{AXIS}" text-anchor="end">{html.escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def donut_chart(labels: Sequence[str], values: Sequence[float], *, title: str = "", unit: str = "", size: int = 300,
                chart_id: str = "") -> str:
    import math

    total = sum(float(v) for v in values)
    cx = cy = size / 2
    r1, r0 = size * 0.42, size * 0.25
    width = size + 220
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{html.escape(chart_id)}" viewBox="0 0 {width} {size}" '
             f'width="100%" role="img" aria-label="{html.escape(title)}" font-family="PingFang SC, Microsoft YaHei, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif">']
    a = -math.pi / 2
    for i, (lab, v) in enumerate(zip(labels, values)):
        frac = float(v) / total if total else 0
        if frac <= 0:
            continue
        b = a + 2 * math.pi * min(frac, 0.9999)
        large = 1 if b - a > math.pi else 0
        p = (f"M{cx + r1 * math.cos(a):.1f},{cy + r1 * math.sin(a):.1f} A{r1},{r1} 0 {large} 1 {cx + r1 * math.cos(b):.1f},{cy + r1 * math.sin(b):.1f} "
             f"L{cx + r0 * math.cos(b):.1f},{cy + r0 * math.sin(b):.1f} A{r0},{r0} 0 {large} 0 {cx + r0 * math.cos(a):.1f},{cy + r0 * math.sin(a):.1f} Z")
        parts.append(f'<path class="slice" d="{p}" fill="{PALETTE[i % len(PALETTE)]}" stroke="#fff" data-category="{html.escape(lab)}" '
                     f'data-value="{float(v)}"><title>{html.escape(lab)}: {_fmt(float(v))} {html.escape(unit)} ({frac:.1%})</title></path>')
        a = b
    for i, (lab, v) in enumerate(zip(labels, values)):
        y = 20 + i * 20
        frac = float(v) / total if total else 0
        parts.append(f'<rect x="{size + 10}" y="{y - 10}" width="14" height="10" rx="2" fill="{PALETTE[i % len(PALETTE)]}"/>'
                     f'<text x="{size + 30}" y="{y}" font-size="12" fill="#333">{html.escape(lab)} {frac:.1%}</text>')
    parts.append("</svg>")
    return "".join(parts)
