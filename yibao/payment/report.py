"""Payment reports: the demo report's sections (HTML), a standalone HTML page and an Excel workbook."""

from __future__ import annotations

import html
import io
from pathlib import Path

import pandas as pd

from yibao.core import parquet_io
from yibao.core.money import fmt_yuan
from yibao.payment.params import E4
from yibao.payment.service import PaymentRun

EXCEL_MAX_ROWS = 1_000_000
SYNTH_BANNER = (
    '<p class="synthetic"><b>SYNTHETIC DATA 合成数据</b>: a simulated region; the DIP parameters, the catalog and '
    "the DRG weights are illustrative (the DRG groups are the national CHS-DRG 1.1 scheme; its relative weights here "
    "are computed from synthetic data), not published rules.</p>"
)


def _yuan(v) -> str:
    return "" if pd.isna(v) else fmt_yuan(int(v))


def _points(v) -> str:
    return "" if pd.isna(v) else f"{int(v) / E4:,.4f}"


def _table(df: pd.DataFrame, money: tuple[str, ...] = (), points: tuple[str, ...] = ()) -> str:
    d = df.copy()
    for c in dict.fromkeys(money):
        if c in d:
            d[c] = d[c].map(_yuan)
    for c in points:
        if c in d:
            d[c] = d[c].map(_points)
    ren = {c: c.removesuffix("_fen") + " ¥" for c in dict.fromkeys(money) if c in d}
    ren.update({c: c.removesuffix("_e4") for c in points if c in d})
    d = d.rename(columns=ren)
    return d.to_html(index=False, classes="t", border=0, escape=True, na_rep="")


def _gain_chart(inst: pd.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9})
    d = inst.sort_values("dip_gain_fen")
    fig, ax = plt.subplots(figsize=(7, max(1.6, 0.28 * len(d) + 0.6)))
    vals = d["dip_gain_fen"] / 1e6  # ¥ 10k for the chart only
    ax.barh(d["fixmedins_code"], vals, color=["#c23531" if v < 0 else "#2f4554" for v in vals])
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("DIP income − actual cost, ¥ 10,000")
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    s = buf.getvalue()
    return s[s.index("<svg") :]


def institution_table(r: PaymentRun, names: dict[str, str] | None = None) -> pd.DataFrame:
    """Per institution for the year: cases, points, DIP value, shares, payment, advances, clearing, cost and gain."""
    y = r.dip.institutions[r.dip.institutions.period == 0].copy()
    y = y.merge(r.dip.clearing[["fixmedins_code", "advances_fen", "clearing_fen"]], on="fixmedins_code", how="left")
    lv = r.cases.groupby("fixmedins_code")["hosp_lv"].first()
    y.insert(1, "hosp_lv", y.fixmedins_code.map(lv))
    if names:
        y.insert(1, "name", y.fixmedins_code.map(names))
    y["dip_gain_fen"] = y.value_fen - y.medfee_sumamt
    drg = r.cases.groupby("fixmedins_code")["drg_value_fen"].sum()
    y["drg_gain_fen"] = y.fixmedins_code.map(drg) - y.medfee_sumamt
    return y.drop(columns=["period"]).reset_index(drop=True)


def sections(r: PaymentRun, names: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(title, html) blocks: DIP point value and each hospital's gain or loss; group mix and CMI; coding quality."""
    from yibao.payment.quality import hospital_view

    banner = SYNTH_BANNER if r.synthetic else ""
    per = r.dip.periods
    y = per[per.period == 0].iloc[0]
    g = r.catalog.groups.to_pandas()
    kinds = r.dip.cases["kind"].value_counts()
    inst = institution_table(r, names)
    kpi = pd.DataFrame(
        [
            (
                "catalog 目录库",
                f"{r.catalog.version}: {int((g.kind == 'core').sum()):,} core 核心病种 + "
                f"{int((g.kind == 'comprehensive').sum()):,} comprehensive 综合病种 groups",
            ),
            (
                "DIP year 年度",
                f"{r.dip.year} (cases discharged in it; {r.dip.outside_year:,} discharged in another year left out)",
            ),
            (
                "cases 病例",
                f"{len(r.dip.cases):,} (normal {int(kinds.get('normal', 0)):,}, high 超高 "
                f"{int(kinds.get('high', 0)):,}, low 超低 {int(kinds.get('low', 0)):,}, ungrouped "
                f"{int(kinds.get('ungrouped', 0)):,})",
            ),
            ("annual budget 年度预算 (" + r.dip.basis + ")", "¥" + _yuan(y.budget_fen)),
            ("pool divided by points 分配总额", "¥" + _yuan(y.pool_fen)),
            ("total points 总分值", _points(y.points_e4)),
            ("annual point value 年度点值", f"¥{y.point_value} per point"),
            ("sum of pooled-fund payments 统筹基金支付合计", "¥" + _yuan(inst.payment_fen.sum())),
        ],
        columns=["item", "value"],
    )
    months = per[per.period > 0][["period", "budget_fen", "pool_fen", "points_e4", "point_value"]].rename(
        columns={"period": "month"}
    )
    show = [
        c
        for c in (
            "fixmedins_code",
            "name",
            "hosp_lv",
            "n_cases",
            "points_e4",
            "value_fen",
            "psn_part_amt",
            "oth_fund_amt",
            "payment_fen",
            "advances_fen",
            "clearing_fen",
            "medfee_sumamt",
            "dip_gain_fen",
            "drg_gain_fen",
        )
        if c in inst
    ]
    money = (
        "budget_fen",
        "pool_fen",
        "value_fen",
        "psn_part_amt",
        "oth_fund_amt",
        "payment_fen",
        "advances_fen",
        "clearing_fen",
        "medfee_sumamt",
        "dip_gain_fen",
        "drg_gain_fen",
        "cost_fen",
        "dip_income_fen",
        "drg_income_fen",
        "drg_gain_fen",
        "mean_cost_fen",
    )
    dip_html = (
        banner
        + "<p>DIP (按病种分值付费): points from a catalog built on this year's cases, a regional point value under one "
        "budget "
        "(monthly pre-settlement, annual clearing), and each hospital's pooled-fund payment net of what patients and "
        "other funds paid. "
        "Gain = DIP income (points × point value) − actual cost.</p>"
        + _table(kpi)
        + "<h4>Each hospital's year 各医院年度结算</h4>"
        + _gain_chart(inst)
        + _table(inst[show], money, ("points_e4",))
        + "<h4>Monthly pre-settlement point values 月度预结算点值</h4>"
        + _table(months, money, ("points_e4",))
    )
    mix = (
        r.dip.cases.groupby("group_code")
        .agg(cases=("mdtrt_id", "size"), cost=("medfee_sumamt", "sum"), income=("value_fen", "sum"))
        .reset_index()
    )
    mix = mix.merge(g[["group_code", "kind", "points_e4", "mean_cost_fen"]], on="group_code", how="left")
    mix["gain_fen"] = mix.income - mix.cost
    mix = mix.sort_values("cases", ascending=False).head(20)
    hv = hospital_view(r.cases, ("fixmedins_code", "dept_code"))
    drg_mix = r.cases.groupby(["mdc", "path"]).agg(cases=("mdtrt_id", "size"), rw=("rw_e4", "sum")).reset_index()
    drg_mix["mean_rw"] = (drg_mix.rw / drg_mix.cases / E4).round(4)
    peers = r.quality.peers.drop(columns=["total_rw_e4"])
    mix_html = (
        banner
        + "<h4>Largest DIP groups 主要病种</h4>"
        + _table(
            mix.rename(columns={"cost": "cost_fen", "income": "dip_income_fen"}),
            money + ("cost_fen", "dip_income_fen", "gain_fen"),
            ("points_e4",),
        )
        + "<h4>Income against cost by department 科室收支 (DIP and DRG)</h4>"
        + _table(hv, money + ("dip_gain_fen", "drg_gain_fen"))
        + f"<h4>DRG group mix ({html.escape(r.scheme.name)} {html.escape(r.scheme.version)}: "
        f"{html.escape(r.scheme.label)}) and base rate</h4>"
        + f"<p>Base rate 费率 (the same pool ÷ total RW): ¥{r.drg_base_rate} per RW.</p>"
        + _table(drg_mix.drop(columns=["rw"]))
        + "<h4>CMI and peer comparison 病例组合指数与同级比较</h4>"
        + _table(peers)
    )
    q = r.quality
    counts = q.flags.flag.value_counts().rename_axis("flag").reset_index(name="cases")
    qual_html = (
        banner
        + "<p>Flags of likely upcoding (高套), split admissions (分解住院) and miscoding; the groups with the most "
        "flags "
        "are the ones to review first (seed 004).</p>"
        + _table(counts)
        + "<h4>DRGs with the most flags</h4>"
        + _table(q.top_drg)
        + "<h4>DIP groups with the most flags</h4>"
        + _table(q.top_dip)
    )
    if q.truth is not None:
        qual_html += "<h4>Against the injected synthetic patterns (ground truth)</h4>" + _table(q.truth)
    return [
        ("Payment: DIP point value and each hospital's gain or loss 按病种分值付费", dip_html),
        ("Payment: group mix, department view and CMI 病种结构与 CMI", mix_html),
        ("Payment: coding quality 编码质量", qual_html),
    ]


def institution_names(region_dir: Path) -> dict[str, str]:
    f = parquet_io.table_path(Path(region_dir), "institution")  # file or dataset directory
    if f is None:
        return {}
    t = pd.read_parquet(f, columns=["fixmedins_code", "fixmedins_name"])
    return dict(zip(t.fixmedins_code, t.fixmedins_name, strict=True))


def write_html(r: PaymentRun, path: Path, names: dict[str, str] | None = None) -> Path:
    parts = "".join(f"<section><h2>{html.escape(t)}</h2>{h}</section>" for t, h in sections(r, names))
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>yibao payment report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} \
table.t{{border-collapse:collapse;font-size:12px;margin:.5em 0}}
table.t td,table.t th{{border-bottom:1px solid #ddd;padding:2px 8px;text-align:right}} \
.synthetic{{background:#ffeb3b;padding:.4em}}</style>
</head><body><h1>Payment methods 支付方式 — DIP and DRG</h1>{parts}</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def write_excel(r: PaymentRun, path: Path, names: dict[str, str] | None = None) -> Path:
    """An Excel workbook (openpyxl): institutions, months, catalog, case results, flags, top groups, peers. Money in
    fen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        note = pd.DataFrame(
            {
                "note": [
                    "Money columns (*_fen, medfee_sumamt, psn_part_amt, hifp_pay, oth_fund_amt) are integer fen; "
                    "points (*_e4) are 0.0001 point.",
                    "SYNTHETIC DATA: simulated region; DIP parameters, catalog and the DRG weights are illustrative "
                    "(groups: CHS-DRG 1.1)."
                    if r.synthetic
                    else "",
                    f"DIP catalog {r.catalog.version}; DRG scheme {r.scheme.name} {r.scheme.version}; annual point "
                    f"value {r.dip.annual_point_value} yuan per point.",
                ]
            }
        )
        note.to_excel(xw, sheet_name="about", index=False)
        institution_table(r, names).to_excel(xw, sheet_name="institutions", index=False)
        p = r.dip.periods.copy()
        p["point_value"] = p["point_value"].astype(str)
        p.to_excel(xw, sheet_name="periods", index=False)
        r.catalog.groups.to_pandas().to_excel(xw, sheet_name="catalog", index=False)
        cols = [
            "mdtrt_id",
            "fixmedins_code",
            "dept_code",
            "setl_month",
            "group_code",
            "kind",
            "points_e4",
            "value_fen",
            "drg",
            "severity",
            "rw_e4",
            "drg_value_fen",
            "medfee_sumamt",
            "psn_part_amt",
            "hifp_pay",
            "oth_fund_amt",
        ]
        r.cases[cols].head(EXCEL_MAX_ROWS).to_excel(
            xw, sheet_name="cases", index=False
        )  # a sheet holds ~1 M rows; the Parquet output has all
        from yibao.payment.quality import hospital_view

        hospital_view(r.cases).to_excel(
            xw, sheet_name="hospital_view_dip", index=False
        )  # institution × department × DIP group
        hospital_view(r.cases, ("fixmedins_code", "dept_code", "drg")).to_excel(
            xw, sheet_name="hospital_view_drg", index=False
        )
        r.quality.flags.head(EXCEL_MAX_ROWS).to_excel(xw, sheet_name="flags", index=False)
        r.quality.top_drg.to_excel(xw, sheet_name="top_flagged_drg", index=False)
        r.quality.top_dip.to_excel(xw, sheet_name="top_flagged_dip", index=False)
        r.quality.peers.to_excel(xw, sheet_name="peers", index=False)
    return path
