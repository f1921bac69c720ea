"""Outputs of the pooling simulation (统筹层次模拟结果): rich tables, an HTML page, an XLSX workbook, JSON rows.

Money is shown as yuan from integer fen (:func:`yibao.core.money.fmt_yuan`);
the workbook keeps the fen integers next to the yuan.
"""

from __future__ import annotations

import html
from pathlib import Path

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from yibao.core.money import fen_to_yuan, fmt_yuan
from yibao.pooling.arrangement import SCHEMES
from yibao.pooling.mechanics import Simulation

SCHEME_LABEL = {"employee": "职工医保 employee (310)", "resident": "城乡居民医保 resident (390)"}

COUNTY_COLUMNS = [
    ("county", "统筹区 county pool"),
    ("name", "名称 name"),
    ("pool", "所属基金 pooled in"),
    ("people", "参保人数 insured"),
    ("income", "基金收入 income ¥"),
    ("spending", "统筹支出 spending ¥"),
    ("alone", "独立核算结余 alone ¥"),
    ("outcome", "本安排下结余 under arrangement ¥"),
    ("transfer", "净转移 net transfer ¥"),
]
POOL_COLUMNS = [
    ("pool", "统筹基金\npool"),
    ("income", "收入\nincome ¥"),
    ("spending", "支出\nspending ¥"),
    ("payment", "上解调剂金\npaid in ¥"),
    ("deficit", "缺口\ndeficit ¥"),
    ("requested", "申请调剂\nrequested ¥"),
    ("draw", "调剂拨付\ndrawn ¥"),
    ("balance", "当年结余\nbalance ¥"),
    ("uncovered", "未弥补缺口\nuncovered ¥"),
]
FUND_COLUMNS = [
    ("fund", "调剂金\nfund"),
    ("opening", "期初\nopening ¥"),
    ("income", "上解收入\npaid in ¥"),
    ("requested", "申请\nrequested ¥"),
    ("drawn", "拨付\ndrawn ¥"),
    ("short", "不足\nshort ¥"),
    ("closing", "期末\nclosing ¥"),
]
MONEY = {
    "income",
    "spending",
    "alone",
    "outcome",
    "transfer",
    "payment",
    "deficit",
    "requested",
    "draw",
    "balance",
    "uncovered",
    "opening",
    "drawn",
    "short",
    "closing",
}


def rows(sim: Simulation, names: dict[str, str] | None = None) -> dict[str, list[dict]]:
    """The results as plain rows (fen integers): ``counties``, ``pools``, ``funds`` (also the REST reply)."""
    names = names or {}
    counties = [
        {
            "scheme": c.scheme,
            "county": c.county,
            "name": names.get(c.county, ""),
            "pool": c.pool,
            "people": c.people,
            "income": c.income,
            "spending": c.spending,
            "alone": c.alone,
            "outcome": c.outcome,
            "transfer": c.transfer,
        }
        for c in sim.counties
    ]
    pools = [
        {
            "scheme": p.scheme,
            "pool": p.pool,
            "name": names.get(p.pool, ""),
            "counties": list(p.counties),
            "income": p.income,
            "spending": p.spending,
            "payment": p.payment,
            "deficit": p.deficit,
            "requested": p.requested,
            "draw": p.draw,
            "balance": p.balance,
            "uncovered": p.uncovered,
        }
        for p in sim.pools
    ]
    funds = [
        {
            "scheme": f.scheme,
            "fund": f.fund,
            "name": names.get(f.fund, ""),
            "pools": list(f.pools),
            "opening": f.opening,
            "income": f.income,
            "requested": f.requested,
            "drawn": f.drawn,
            "short": f.short,
            "closing": f.closing,
            "transfer": f.transfer,
        }
        for f in sim.funds
    ]
    return {"counties": counties, "pools": pools, "funds": funds}


def _cell(key: str, value) -> str:
    if key in MONEY:
        return fmt_yuan(int(value))
    if key == "people":
        return f"{int(value):,}"
    return str(value)


TERMINAL_COLUMNS = [
    ("county", "统筹区\ncounty"),
    ("people", "参保\ninsured"),
    ("income", "收入\nincome ¥"),
    ("spending", "支出\nspending ¥"),
    ("alone", "独立核算\nalone ¥"),
    ("outcome", "本安排下\narranged ¥"),
    ("transfer", "净转移\ntransfer ¥"),
]


def _table(title: str, columns: list[tuple[str, str]]) -> Table:
    """Numbers never wrap or get cut (a narrow terminal wraps the line instead)."""
    tab = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for i, (_, head) in enumerate(columns):
        tab.add_column(
            head,
            justify="left" if i == 0 else "right",
            no_wrap=True,
            min_width=max(cell_len(h) for h in head.split("\n")),
        )
    return tab


def _flags(console: Console, *, synthetic: bool, illustrative: bool, scenario: str) -> None:
    if synthetic:
        console.print("[black on yellow] SYNTHETIC DATA 合成数据 [/] figures describe a simulation, not a real region")
    if illustrative:
        console.print(
            "[black on cyan] ILLUSTRATIVE 示意参数 [/] the arrangement's figures are not any real region's "
            "(see its sources)"
        )
    if scenario:
        console.print(f"[black on magenta] {scenario} [/]")


def _scheme_transfer(data: dict, scheme: str) -> int:
    """The net transfer of one scheme: its county pools' plus its adjustment funds'."""
    counties = sum(c["transfer"] for c in data["counties"] if c["scheme"] == scheme)
    return counties + sum(f["transfer"] for f in data["funds"] if f["scheme"] == scheme)


def print_simulation(
    console: Console,
    sim: Simulation,
    *,
    names: dict[str, str],
    year: int,
    synthetic: bool,
    income_note: str,
    scenario: str = "",
) -> None:
    """The simulation as rich tables, one set per scheme."""
    arr = sim.arrangement
    _flags(console, synthetic=synthetic, illustrative=arr.illustrative, scenario=scenario)
    console.print(f"[bold]Pooling simulation {year}[/] · {arr.label_zh} · {arr.label_en} ({arr.name})")
    console.print(f"income: {income_note}")
    data = rows(sim, names)
    for scheme in SCHEMES:
        cs = [r for r in data["counties"] if r["scheme"] == scheme]
        if not cs:
            continue
        pools = sorted({r["pool"] for r in cs})
        tab = _table(
            f"{SCHEME_LABEL[scheme]} — who gains and loses 各统筹区得失 (pooled in {', '.join(pools)})",
            TERMINAL_COLUMNS,
        )
        for r in cs:
            tab.add_row(*[_cell(k, r[k]) for k, _ in TERMINAL_COLUMNS])
        for f in (r for r in data["funds"] if r["scheme"] == scheme):  # the fund is a party: paid in, paid out, kept
            tab.add_row(
                f"调剂金 fund {f['fund']}",
                "",
                fmt_yuan(f["income"]),
                fmt_yuan(f["drawn"]),
                "0.00",
                fmt_yuan(f["transfer"]),
                fmt_yuan(f["transfer"]),
            )
        total = sum(r["transfer"] for r in cs) + sum(f["transfer"] for f in data["funds"] if f["scheme"] == scheme)
        tab.add_row(
            "合计 total",
            f"{sum(r['people'] for r in cs):,}",
            fmt_yuan(sum(r["income"] for r in cs)),
            fmt_yuan(sum(r["spending"] for r in cs)),
            fmt_yuan(sum(r["alone"] for r in cs)),
            fmt_yuan(sum(r["outcome"] for r in cs)),
            fmt_yuan(total),
        )
        console.print(tab)
        if arr.adjustment_fund is not None:
            tab = _table(f"{SCHEME_LABEL[scheme]} — pools and the adjustment fund 统筹基金与调剂金", POOL_COLUMNS)
            for r in (r for r in data["pools"] if r["scheme"] == scheme):
                tab.add_row(*[_cell(k, r[k]) for k, _ in POOL_COLUMNS])
            console.print(tab)
            tab = _table(f"{SCHEME_LABEL[scheme]} — adjustment fund 风险调剂金", FUND_COLUMNS)
            for r in (r for r in data["funds"] if r["scheme"] == scheme):
                tab.add_row(*[_cell(k, r[k]) for k, _ in FUND_COLUMNS])
            console.print(tab)
    sums = ", ".join(
        f"{s} ¥{fmt_yuan(_scheme_transfer(data, s))}"
        for s in SCHEMES
        if any(c["scheme"] == s for c in data["counties"])
    )
    console.print(f"conservation 资金守恒 (checked): net transfers of county pools and adjustment funds sum to {sums}")


def print_comparison(
    console: Console, sims: list[Simulation], *, year: int, synthetic: bool, income_note: str, scenario: str = ""
) -> None:
    """Net transfer (净转移) of every county pool under each arrangement, per scheme; the funds' kept money below."""
    _flags(console, synthetic=synthetic, illustrative=any(s.arrangement.illustrative for s in sims), scenario=scenario)
    console.print(
        f"[bold]Pooling levels compared {year}[/] — net transfer per county pool ¥ (+ gains, − pays for others)"
    )
    console.print(f"income: {income_note}")
    for scheme in SCHEMES:
        parts = [s.by_scheme(scheme) for s in sims]
        if not parts or not parts[0].counties:
            continue
        cols = [("county", "统筹区\ncounty")] + [
            (s.arrangement.name, f"{s.arrangement.label_zh}\n{s.arrangement.name}") for s in sims
        ]
        tab = _table(f"{SCHEME_LABEL[scheme]} — 净转移 net transfer ¥", cols)
        counties = sorted({c.county for c in parts[0].counties})
        per = [{c.county: c.transfer for c in p.counties} for p in parts]
        for county in counties:
            tab.add_row(county, *[fmt_yuan(m[county]) for m in per])
        tab.add_row("调剂金 funds", *[fmt_yuan(sum(f.transfer for f in p.funds)) for p in parts])
        tab.add_row("未弥补缺口 uncovered", *[fmt_yuan(sum(x.uncovered for x in p.pools)) for p in parts])
        console.print(tab)


def _html_table(title: str, columns: list[tuple[str, str]], data: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='{'n' if k in MONEY or k == 'people' else 't'}'>{html.escape(_cell(k, r[k]))}</td>"
            for k, _ in columns
        )
        + "</tr>"
        for r in data
    )
    return (
        f"<h2>{html.escape(title)}</h2><div class='wrap'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def write_html(
    path: Path,
    sim: Simulation,
    *,
    names: dict[str, str],
    year: int,
    synthetic: bool,
    income_note: str,
    scenario: str = "",
) -> None:
    """A self-contained HTML page (no scripts, no network)."""
    arr = sim.arrangement
    data = rows(sim, names)
    parts = [
        f"<h1>统筹层次模拟 Pooling simulation {year}: {html.escape(arr.label_zh)} · {html.escape(arr.label_en)}</h1>"
    ]
    if synthetic:
        parts.append("<p class='flag'>SYNTHETIC DATA 合成数据 — figures describe a simulation, not a real region.</p>")
    if arr.illustrative:
        parts.append("<p class='flag'>ILLUSTRATIVE 示意参数 — the arrangement's figures are not any real region's.</p>")
    if scenario:
        parts.append(f"<p class='flag'>{html.escape(scenario)}</p>")
    parts.append(f"<p>Income: {html.escape(income_note)}</p>")
    for scheme in SCHEMES:
        cs = [r for r in data["counties"] if r["scheme"] == scheme]
        if not cs:
            continue
        parts.append(_html_table(f"{SCHEME_LABEL[scheme]} — 各统筹区得失 who gains and loses", COUNTY_COLUMNS, cs))
        if arr.adjustment_fund is not None:
            parts.append(
                _html_table(
                    f"{SCHEME_LABEL[scheme]} — 统筹基金 pools",
                    POOL_COLUMNS,
                    [r for r in data["pools"] if r["scheme"] == scheme],
                )
            )
            parts.append(
                _html_table(
                    f"{SCHEME_LABEL[scheme]} — 风险调剂金 adjustment fund",
                    FUND_COLUMNS,
                    [r for r in data["funds"] if r["scheme"] == scheme],
                )
            )
    parts.append(
        "<h2>Sources 依据</h2><ul>"
        + "".join(f"<li><code>{html.escape(k)}</code>: {html.escape(v)}</li>" for k, v in arr.sources.items())
        + "</ul>"
    )
    style = (
        "body{font-family:sans-serif;max-width:1300px;margin:1em auto;padding:0 1em}.wrap{overflow-x:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}"
        ".flag{background:#ffe58a;padding:4px}"
    )
    doc = (
        f"<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>统筹层次模拟 {year}</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    path.write_text(doc, encoding="utf-8")


def write_xlsx(
    path: Path,
    sim: Simulation,
    *,
    names: dict[str, str],
    year: int,
    synthetic: bool,
    income_note: str,
    scenario: str = "",
) -> None:
    """A workbook: ``about``, ``counties``, ``pools``, ``funds`` (fen integers and yuan)."""
    from openpyxl import Workbook

    data = rows(sim, names)
    wb = Workbook()
    ws = wb.active
    ws.title = "about"
    arr = sim.arrangement
    for line in (
        ("arrangement", arr.name),
        ("label", f"{arr.label_zh} · {arr.label_en}"),
        ("year", year),
        ("synthetic", "SYNTHETIC DATA 合成数据" if synthetic else "no"),
        ("illustrative", "ILLUSTRATIVE 示意参数" if arr.illustrative else "no"),
        ("income", income_note),
        ("scenario", scenario or "as settled"),
        *((f"source {k}", v) for k, v in arr.sources.items()),
    ):
        ws.append(list(line))
    for sheet in ("counties", "pools", "funds"):
        ws = wb.create_sheet(sheet)
        rs = data[sheet]
        if not rs:
            ws.append(["(none)"])
            continue
        keys = list(rs[0])
        ws.append([f"{k}_fen" if k in MONEY else k for k in keys] + [f"{k}_yuan" for k in keys if k in MONEY])
        for r in rs:
            ws.append(
                [", ".join(v) if isinstance(v, list) else v for v in r.values()]
                + [fen_to_yuan(r[k]) for k in keys if k in MONEY]
            )
    wb.save(path)
