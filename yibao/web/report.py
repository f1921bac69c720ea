"""The fund-year report: one self-contained HTML file with inline SVG charts."""

from __future__ import annotations

import html
import io
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from yibao.core.money import fmt_yuan
from yibao.settlement.fundyear import FUND_FIELDS, FundYear

LEVEL_NAMES = {0: "pharmacy 药店", 1: "level 1 一级", 2: "level 2 二级", 3: "level 3 三级"}
SCHEME_NAMES = {"310": "employee 职工 (310)", "390": "resident 居民 (390)"}


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def chart_layers(fy: FundYear) -> str:
    plt = _plt()
    t = fy.totals.iloc[0]
    names = [k for k in FUND_FIELDS if k != "psn_cash_pay"] + ["psn_cash_pay"]
    vals = [int(t[k]) / 1e6 for k in names]
    fig, ax = plt.subplots(figsize=(7, 2.8))
    colors = ["#c23531", "#2f4554", "#61a0a8", "#d48265", "#91c7ae", "#749f83", "#ca8622", "#bda29a"]
    ax.barh([FUND_FIELDS[k][0] for k in names], vals, color=colors[: len(names)])
    ax.invert_yaxis()
    ax.set_xlabel("¥ million")
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:,.2f}", va="center")
    return _svg(fig)


def chart_months(fy: FundYear) -> str:
    plt = _plt()
    m = fy.by_month.copy()
    if m.empty:
        return ""
    m["month"] = pd.to_datetime(m["month"])
    pv = m.pivot_table(index="month", columns="insutype", values="fund_pay_sumamt", aggfunc="sum").fillna(0) / 1e6
    cash = m.groupby("month")["psn_cash_pay"].sum() / 1e6
    fig, ax = plt.subplots(figsize=(7, 2.8))
    bottom = None
    for col, color in zip(pv.columns, ["#c23531", "#2f4554", "#61a0a8"]):
        ax.bar(pv.index, pv[col], width=20, bottom=bottom, label=f"funds, {SCHEME_NAMES.get(col, col).split(' ')[0]}", color=color)
        bottom = pv[col] if bottom is None else bottom + pv[col]
    ax.plot(cash.index, cash.values, color="#ca8622", marker="o", label="cash paid by patients")
    ax.set_ylabel("¥ million")
    ax.legend(frameon=False, fontsize=8)
    fig.autofmt_xdate()
    return _svg(fig)


def chart_levels(fy: FundYear) -> str:
    plt = _plt()
    lv = fy.by_level.groupby("hosp_lv")[["medfee_sumamt", "fund_pay_sumamt"]].sum() / 1e6
    if lv.empty:
        return ""
    fig, ax = plt.subplots(figsize=(7, 2.6))
    x = range(len(lv))
    ax.bar([i - 0.2 for i in x], lv["medfee_sumamt"], width=0.4, label="medical cost", color="#2f4554")
    ax.bar([i + 0.2 for i in x], lv["fund_pay_sumamt"], width=0.4, label="fund paid", color="#c23531")
    ax.set_xticks(list(x), [LEVEL_NAMES.get(int(i), str(i)).split(" ")[0] + f" {int(i)}" for i in lv.index])
    ax.set_ylabel("¥ million")
    ax.legend(frameon=False)
    return _svg(fig)


def money_table(df: pd.DataFrame, money_cols: list[str], rename: dict[str, str] | None = None) -> str:
    """An HTML table with fen columns shown as yuan."""
    d = df.copy()
    for c in money_cols:
        if c in d:
            d[c] = d[c].map(lambda v: fmt_yuan(int(v)))
    if rename:
        d = d.rename(columns=rename)
    return d.to_html(index=False, classes="t", border=0, escape=True)


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
    by_level = fy.by_level.assign(hosp_lv=fy.by_level["hosp_lv"].map(lambda v: LEVEL_NAMES.get(int(v), str(v))))
    show = ["claims", "medfee_sumamt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "hifob_pay", "hifmi_pay", "cvlserv_pay", "maf_pay", "acct_pay", "acct_mulaid_pay", "psn_cash_pay"]
    ctx = {
        "fy": fy,
        "kpis": kpis,
        "income_html": money_table(fy.income.assign(yuan=fy.income["fen"]).drop(columns=["fen"]), ["yuan"]),
        "income_total": fmt_yuan(income_total),
        "layers_svg": chart_layers(fy),
        "months_svg": chart_months(fy),
        "levels_svg": chart_levels(fy),
        "scheme_html": money_table(by_scheme[["insutype"] + show], money),
        "level_html": money_table(by_level[["hosp_lv", "fixmedins_type"] + show], money),
        "category_html": money_table(fy.by_category[["benefit_category"] + show], money),
        "assist_html": money_table(fy.assistance, ["maf_pay", "hifmi_pay", "medfee_sumamt", "psn_part"]),
        "rejected_html": fy.rejected.to_html(index=False, classes="t", border=0) if len(fy.rejected) else "",
        "people_html": fy.people.to_html(index=False, classes="t", border=0),
        "sections": sections or [],
        "escape": html.escape,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(env.get_template("report.html").render(**ctx), encoding="utf-8")
    return out
