"""The fund-year report (基金年度运行报告): one self-contained HTML file with interactive charts.

Laid out for a 1366 px screen without horizontal scrolling: tables have
Chinese-first headers from ``yibao/data/labels.yaml`` (English beneath),
money as ¥ from fen, and scroll inside their own box if ever too wide;
charts are drawn by plotly.js (:mod:`yibao.web.charts`), whose script is carried
inline so the file works offline; their legends sit above the plot, never over
the bars (``static/charts.js`` gives bars and legends ``id="bar-…"`` /
``id="legend-…"`` so ``tests/web/test_report_layout.py`` can measure them).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from yibao.core.money import fmt_yuan
from yibao.settlement.fundyear import FUND_FIELDS, FundYear
from yibao.web import charts, labels

# "中文 English" from yibao/data/labels.yaml
LEVEL_NAMES = {int(k): f"{zh} {en}" for k, (zh, en) in labels.load().values["hosp_lv"].items()}
SCHEME_NAMES = {k: f"{zh} {en} ({k})" for k, (zh, en) in labels.load().values["insutype_short"].items()}


MILLION_UNIT = "百万元 · ¥ million"


def chart_layers(fy: FundYear) -> str:
    """Spending by payment layer (按保障层次): integer fen per layer, plotted in ¥ million."""
    t = fy.totals.iloc[0]
    names = [k for k in FUND_FIELDS if k != "psn_cash_pay"] + ["psn_cash_pay"]
    return charts.hbar_chart(
        [f"{FUND_FIELDS[k][1]} {FUND_FIELDS[k][0]}" for k in names],
        [int(t[k]) for k in names],
        title="按保障层次 Spending by layer",
        unit=MILLION_UNIT,
        money=charts.MILLION,
        chart_id="chart-layers",
    )


def chart_months(fy: FundYear) -> str:
    """Fund spending by month and scheme (stacked) with the people's cash as a line; integer fen, ¥ million."""
    m = fy.by_month
    if m.empty:
        return ""
    month = pd.to_datetime(m["month"]).dt.strftime("%Y-%m")
    months = sorted(month.unique())
    fund = m.assign(month=month).groupby(["month", "insutype"])["fund_pay_sumamt"].sum()
    cash = m.assign(month=month).groupby("month")["psn_cash_pay"].sum()
    series = {
        f"基金 {SCHEME_NAMES.get(col, col).split(' ')[0]} funds": [int(fund.get((mo, col), 0)) for mo in months]
        for col in sorted(m["insutype"].unique())
    }
    return charts.bar_chart(
        months,
        series,
        lines={"个人现金 cash": [int(cash.get(mo, 0)) for mo in months]},
        stacked=True,
        title="按月 By month",
        unit=MILLION_UNIT,
        money=charts.MILLION,
        chart_id="chart-months",
    )


def chart_levels(fy: FundYear) -> str:
    """Medical cost and fund paid by institution level (按医疗机构等级); integer fen, ¥ million."""
    lv = fy.by_level.groupby("hosp_lv")[["medfee_sumamt", "fund_pay_sumamt"]].sum()
    if lv.empty:
        return ""
    return charts.bar_chart(
        [LEVEL_NAMES.get(int(i), str(i)) for i in lv.index],
        {
            "医疗总费用 medical cost": [int(x) for x in lv["medfee_sumamt"]],
            "基金支付 fund paid": [int(x) for x in lv["fund_pay_sumamt"]],
        },
        title="按医疗机构等级 By institution level",
        unit=MILLION_UNIT,
        money=charts.MILLION,
        chart_id="chart-levels",
    )


def money_table(
    df: pd.DataFrame, money_cols: list[str], rename: dict[str, str] | None = None, coded: dict[str, str] | None = None
) -> str:
    """An HTML table: headers 中文 over English (labels.yaml), fen columns as ¥, coded columns by their label.

    ``coded`` maps a column to its group in ``labels.yaml: values``; ``rename`` gives a column's header text
    outright.  Wrapped in ``div.tw`` so a table too wide for the page scrolls inside its box, not the page.
    """
    coded = coded or {}
    heads = []
    for c in df.columns:
        if rename and c in rename:
            heads.append(f"<th>{html.escape(rename[c])}</th>")
            continue
        zh, en = labels.field(c, "zh"), labels.field(c, "en")
        heads.append(
            f'<th>{html.escape(zh)}<span class="en">{html.escape(en)}</span></th>'
            if zh != c
            else f"<th>{html.escape(c)}</th>"
        )
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, row, strict=True):
            if c in money_cols:
                text, cls = labels.money(v), "m"
            elif c in coded:
                text, cls = labels.value(coded[c], v, "zh"), "c"
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                text, cls = labels.number(v), "m"
            else:
                text, cls = (labels.MISSING if v is None or v == "" else str(v)), "c"
            cells.append(f'<td class="{cls}">{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="tw"><table class="t"><thead><tr>{"".join(heads)}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


_TH = re.compile(r"<th>([^<>]{1,60})</th>")
_CODE_TD = re.compile(r"<td>\s*([a-z][a-z0-9_]*)\s*</td>")
_SCI_TD = re.compile(r"<td>\s*(-?\d+(?:\.\d+)?[eE][+-]?\d+)\s*</td>")
_NAN_TD = re.compile(r"<td>\s*(?:NaN|nan|None)\s*</td>")
NAN_REASON = "无可计算的数据 (例如没有已标注的病例) · nothing to compute it from (e.g. no labelled cases)"


def label_headers(body: str) -> str:
    """Another subsystem's section: each ``<th>raw_name</th>`` (or ``<th>name ¥</th>``) known to labels.yaml
    becomes 中文 over English, as the report's own tables; a cell in scientific notation is written out, and a
    NaN cell shows "—" with the reason on hover, and a cell that is just a code of ``labels.yaml: values.report_code``
    (a fraud pattern, an integrity flag) shows its label, the code on hover."""

    def one(m: re.Match) -> str:
        text = m.group(1).strip()
        unit = text.endswith(" ¥")
        name = text.removesuffix(" ¥").strip().replace(" ", "_")
        zh, en = labels.field(name, "zh"), labels.field(name, "en")
        if zh == name:
            return m.group(0)
        suffix = " (元)" if unit else ""
        return f'<th>{html.escape(zh)}{suffix}<span class="en">{html.escape(en)}</span></th>'

    body = _TH.sub(one, body)
    codes = labels.load().values.get("report_code", {})
    body = _CODE_TD.sub(
        lambda m: (
            (
                f'<td title="{m.group(1)}">{html.escape(codes[m.group(1)][0])}<span class="en">'
                f"{html.escape(codes[m.group(1)][1])}</span></td>"
            )
            if m.group(1) in codes
            else m.group(0)
        ),
        body,
    )
    body = _SCI_TD.sub(lambda m: f"<td>{labels.number(m.group(1))}</td>", body)  # pandas' 1.379e+04 → 13,790
    return _NAN_TD.sub(f'<td title="{NAN_REASON}">{labels.MISSING}</td>', body)


def render_report(fy: FundYear, out: Path, sections: list[tuple[str, str]] | None = None) -> Path:
    """Write ``report.html``. ``sections`` are extra (title, html) blocks from other subsystems."""
    env = Environment(loader=PackageLoader("yibao.web", "templates"), autoescape=select_autoescape(["html"]))
    t = fy.totals.iloc[0]
    income_total = int(fy.income["fen"].sum())
    pooled_income = int(fy.income.loc[~fy.income["item"].str.startswith("employee personal"), "fen"].sum())
    pooled_spend = int(t["hifp_pay"])
    kpis = [
        ("People insured", "参保人数", f"{int(fy.people['people'].sum()):,}"),
        ("Claims settled", "结算笔数", f"{int(t['claims']):,}"),
        ("Medical cost", "医疗总费用", "¥" + fmt_yuan(int(t["medfee_sumamt"]))),
        ("Paid by funds", "基金支付", "¥" + fmt_yuan(int(t["fund_pay_sumamt"]))),
        ("Fund share of cost", "基金支付占比", f"{(int(t['fund_pay_sumamt']) / max(1, int(t['medfee_sumamt']))):.1%}"),
        ("Pooled income − pooled spending", "统筹基金当期结余", "¥" + fmt_yuan(pooled_income - pooled_spend)),
    ]
    money = [c for c in fy.totals.columns if c not in ("claims",)]
    by_scheme = fy.by_scheme.assign(insutype=fy.by_scheme["insutype"].map(lambda s: SCHEME_NAMES.get(s, s)))
    by_level = fy.by_level
    show = [
        "claims",
        "medfee_sumamt",
        "inscp_scp_amt",
        "act_pay_dedc",
        "hifp_pay",
        "hifob_pay",
        "hifmi_pay",
        "cvlserv_pay",
        "maf_pay",
        "acct_pay",
        "acct_mulaid_pay",
        "psn_cash_pay",
    ]
    ctx = {
        "fy": fy,
        "kpis": kpis,
        "income_html": money_table(
            fy.income[["item_zh", "item", "fen"]], ["fen"], rename={"item_zh": "项目", "item": "item (English)"}
        ),
        "income_total": fmt_yuan(income_total),
        "layers_svg": chart_layers(fy),
        "months_svg": chart_months(fy),
        "levels_svg": chart_levels(fy),
        # plotly.js inline (it has no "</script"), then the small script that draws each chart from its spec
        "plotly_js": charts.plotly_js().decode("utf-8"),
        "charts_js": charts.charts_js(),
        "scheme_html": money_table(by_scheme[["insutype"] + show], money),
        "level_html": money_table(
            by_level[["hosp_lv", "fixmedins_type"] + show],
            money,
            coded={"hosp_lv": "hosp_lv", "fixmedins_type": "fixmedins_type"},
        ),
        "category_html": money_table(
            fy.by_category[["benefit_category"] + show], money, coded={"benefit_category": "benefit_category"}
        ),
        "assist_html": money_table(
            fy.assistance.rename(columns={"status": "assistance"}),
            ["maf_pay", "hifmi_pay", "medfee_sumamt", "psn_part"],
            coded={"assistance": "assistance"},
        ),
        "rejected_html": money_table(
            fy.rejected[["reason_zh", "reason_en", "claims"]], [], rename={"reason_en": "reason (English)"}
        )
        if len(fy.rejected)
        else "",
        "people_html": money_table(fy.people, [], coded={"insutype": "insutype", "psn_type": "psn_type"}),
        "sections": [(title, label_headers(body)) for title, body in (sections or [])],
        "escape": html.escape,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(env.get_template("report.html").render(**ctx), encoding="utf-8")
    return out
