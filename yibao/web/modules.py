"""Views of the other subsystems (procurement, payment, supervision) for the console.

Each adapter reads what that subsystem persists or exposes.  When a
subsystem does not (yet) provide its data, the page says so plainly and
shows no figures: nothing here is invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy.engine import Engine

from yibao.web import labels
from yibao.web.auth import Principal


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]]
    anchor: str = ""  # each row gets id="<anchor><first cell>" (cells elsewhere link to it)
    free: tuple[int, ...] = ()  # columns of free text as people typed it (notes), marked data-free-text


class Link(str):
    """A table cell that links to the item's own page (the text is the id; Excel gets the text)."""

    href: str

    def __new__(cls, text: Any, href: str) -> Link:
        obj = super().__new__(cls, str(text))
        obj.href = href
        return obj


def _heads(lang: str, *names: str) -> list[str]:
    """Column headers from labels.yaml (Chinese first); money cells carry their own ¥."""
    return [labels.field(n, lang) for n in names]


@dataclass
class View:
    title_zh: str
    title_en: str
    available: bool
    note_zh: str = ""
    note_en: str = ""
    charts: list[tuple[str, str]] = field(default_factory=list)  # (title, svg)
    tables: list[Table] = field(default_factory=list)
    synthetic: bool = True
    pending: float | None = None  # seconds a background analysis has been running


ADAPTERS: dict[str, Any] = {}


def view(name: str, engine: Engine, p: Principal, lang: str, data_dir=None) -> View:
    fn = ADAPTERS.get(name)
    if fn is None:
        return View(name, name, False)
    try:
        return fn(engine, p, lang, data_dir)
    except ImportError as exc:
        return View(name, name, False, note_zh=f"子系统未安装: {exc}", note_en=f"subsystem not available: {exc}")


# --- shared background analyses (payment, supervision queue) over the region's Parquet -------------

import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

_runs: dict[tuple[str, str, float], dict[str, Any]] = {}
_runs_lock = threading.Lock()


def _stamp(data_dir: Path) -> float:
    """The newest modification time of the directory's tables (a re-generated or re-settled region has a new one)."""
    try:
        return max((p.stat().st_mtime for p in Path(data_dir).iterdir()), default=0.0)
    except OSError:
        return 0.0


def analysis(kind: str, data_dir: Path, fn) -> dict[str, Any]:
    """Run ``fn(data_dir)`` once per (kind, directory, its tables' mtime) in a background thread; returns its state."""
    key = (kind, str(data_dir), _stamp(data_dir))
    with _runs_lock:
        st = _runs.get(key)
        if st is None:
            for old in [k for k in _runs if k[:2] == key[:2] and _runs[k]["status"] != "running"]:
                del _runs[old]  # the region changed: drop the stale result
            st = {"status": "running", "started": time.monotonic(), "result": None, "error": "", "seconds": 0.0}
            _runs[key] = st

            def work() -> None:
                try:
                    st["result"] = fn(data_dir)
                    st["status"] = "done"
                except Exception as exc:  # noqa: BLE001 - shown on the page
                    st["status"], st["error"] = "failed", f"{type(exc).__name__}: {exc}"
                st["seconds"] = time.monotonic() - st["started"]

            threading.Thread(target=work, name=f"yibao-analysis-{kind}", daemon=True).start()
    return st


def _pending(v: View, st: dict[str, Any]) -> View:
    if st["status"] == "running":
        v.pending = round(time.monotonic() - st["started"], 1)
    elif st["status"] == "failed":
        v.note_zh, v.note_en = f"分析失败: {st['error']}", f"analysis failed: {st['error']}"
    return v


_yuan = labels.money  # ¥1,234.56 from integer fen; missing → "—"


def _region_name(admdvs: Any) -> str:
    """A supply region's name (yibao/data/procurement/provinces.csv, GB/T 2260), the code when unknown."""
    global _REGIONS
    if _REGIONS is None:
        import csv
        from importlib import resources

        text = (resources.files("yibao") / "data" / "procurement" / "provinces.csv").read_text(encoding="utf-8")
        _REGIONS = {
            r["admdvs"]: r["name"]
            for r in csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
        }
    return _REGIONS.get(str(admdvs), str(admdvs))


_REGIONS: dict[str, str] | None = None


def _n(x: Any, digits: int = 0) -> str:
    return labels.number(x, digits)


# --- procurement (集采) -----------------------------------------------------------------------


def procurement_view(engine: Engine, p: Principal, lang: str, data_dir: Path | None = None) -> View:
    import pandas as pd
    from sqlalchemy import func, select

    from yibao.core.db import session_scope
    from yibao.procurement import monitor
    from yibao.procurement.models import VbpBid, VbpOrder
    from yibao.procurement.service import list_rounds, load_contracts, round_results
    from yibao.web import charts

    v = View("集中带量采购", "Volume-based procurement", True)
    rounds = list_rounds(engine)
    if not rounds:
        v.note_zh, v.note_en = (
            "数据库中尚无采购批次 (yibao procurement run … --db)",
            "no procurement round in the database yet (yibao procurement run … --db)",
        )
        return v
    r = rounds[-1]
    rid = int(r["id"])
    scope = p.institution_scope()
    v.synthetic = bool(r["synthetic"])
    v.note_zh = f"批次 {r['name']} · 规则 {r['ruleset_id']} · {r['round_date']} · 中选 {r['winners']} 家" + (
        " · 合成数据" if v.synthetic else ""
    )
    v.note_en = f"round {r['name']} · rules {r['ruleset_id']} · {r['round_date']} · {r['winners']} winners" + (
        " · SYNTHETIC" if v.synthetic else ""
    )
    with session_scope(engine) as s:
        bids = s.execute(
            select(VbpBid.drug_id, func.count(), func.min(VbpBid.price_fen), func.max(VbpBid.price_fen))
            .where(VbpBid.round_id == rid)
            .group_by(VbpBid.drug_id)
            .order_by(VbpBid.drug_id)
        ).all()
        oq = select(
            VbpOrder.institution_id,
            VbpOrder.drug_id,
            VbpOrder.spec_id,
            VbpOrder.supplier,
            VbpOrder.units,
            VbpOrder.month,
            VbpOrder.contracted,
            VbpOrder.amount_fen,
        ).where(VbpOrder.round_id == rid)
        if scope is not None:
            oq = oq.where(VbpOrder.institution_id == scope)
        orders = pd.DataFrame(
            s.execute(oq).all(),
            columns=["institution_id", "drug_id", "spec_id", "supplier", "units", "month", "contracted", "amount_fen"],
        )
    zh = lang != "en"
    v.tables.append(
        Table(
            "申报" if zh else "bids",
            _heads(lang, "drug_id", "bids", "min_price", "max_price"),
            [[d, _n(n), _yuan(lo), _yuan(hi)] for d, n, lo, hi in bids],
        )
    )
    res = round_results(engine, rid)
    v.tables.append(
        Table(
            "中选结果与理由" if zh else "results with reasons",
            _heads(lang, "drug_id", "firm_id", "status", "rank", "reason"),
            [
                [
                    x["drug_id"],
                    x["firm_id"],
                    labels.value("bid_status", x["status"], lang),
                    x["rank"],
                    labels.humanize(x["reason_zh"] if zh else x["reason_en"], lang),
                ]
                for x in res
            ],
        )
    )
    contracts = load_contracts(engine, rid)
    if scope is not None and not contracts.empty:
        contracts = contracts[contracts["institution_id"] == scope]
    if not contracts.empty:
        reg = contracts.groupby("region", as_index=False).agg(
            agreed_units=("agreed_units", "sum"),
            amount_fen=("amount_fen", "sum"),
            institutions=("institution_id", "nunique"),
        )
        v.tables.append(
            Table(
                "供应区域" if zh else "supply regions",
                _heads(lang, "region", "institutions", "agreed_units", "fen"),
                [
                    [_region_name(a), _n(n), _n(u), _yuan(f)]
                    for a, u, f, n in reg[["region", "agreed_units", "amount_fen", "institutions"]].itertuples(
                        index=False
                    )
                ],
            )
        )
        if not orders.empty:
            months = int(orders["month"].max())
            prog = monitor.progress(orders, contracts, months_elapsed=months)
            by_drug = prog.groupby("drug_id", as_index=False)[
                ["agreed_units", "purchased_units", "expected_units"]
            ].sum()
            v.charts.append(
                (
                    "执行进度: 约定量与已采购" if zh else "execution against the agreed volume",
                    charts.bar_chart(
                        list(by_drug.drug_id),
                        {
                            ("约定量" if zh else "agreed"): [int(x) for x in by_drug.agreed_units],
                            ("应完成" if zh else f"expected by month {months}"): [
                                int(x) for x in by_drug.expected_units
                            ],
                            ("已采购" if zh else "purchased"): [int(x) for x in by_drug.purchased_units],
                        },
                        unit="件" if zh else "units",
                        chart_id="chart-vbp-progress",
                    ),
                )
            )
            v.tables.append(
                Table(
                    "执行进度" if zh else "execution progress",
                    _heads(
                        lang,
                        "institution_id",
                        "drug_id",
                        "agreed_units",
                        "expected_units",
                        "purchased_units",
                        "completion",
                        "behind",
                    ),
                    [
                        [a, d, _n(ag), _n(ex), _n(pu), _n(int(bp) / 100, 1) + "%", ("是" if zh else "yes") if b else ""]
                        for a, d, ag, pu, ex, b, bp in prog[
                            [
                                "institution_id",
                                "drug_id",
                                "agreed_units",
                                "purchased_units",
                                "expected_units",
                                "behind",
                                "completion_bp",
                            ]
                        ].itertuples(index=False)
                    ],
                )
            )
    return v


# --- payment (支付方式: DIP/DRG) --------------------------------------------------------------------


def _payment_run(data_dir: Path):
    from yibao.payment.service import run

    return run(data_dir)


def payment_view(engine: Engine, p: Principal, lang: str, data_dir: Path | None = None) -> View:
    from yibao.web import charts

    v = View("支付方式", "Payment methods", True)
    if data_dir is None:
        v.available = False
        v.note_zh = "未配置区域数据目录 (YIBAO_CONSOLE_DATA): DIP/DRG 分析在区域 Parquet 上运行"
        v.note_en = (
            "no region data directory configured (YIBAO_CONSOLE_DATA): DIP/DRG analysis runs over the region's Parquet"
        )
        return v
    import yibao.payment.service  # noqa: F401 - ImportError → "not available"
    from yibao.payment.report import institution_table

    st = analysis("payment", data_dir, _payment_run)
    if st["status"] != "done":
        return _pending(v, st)
    r = st["result"]
    zh = lang != "en"
    v.synthetic = bool(r.synthetic)
    per = r.dip.periods
    y = per[per.period == 0].iloc[0]
    v.note_zh = f"DIP 年度点值 ¥{y.point_value}/分 · 目录 {r.catalog.version} · DRG 方案 {r.scheme.name} (示例)" + (
        " · 合成数据" if v.synthetic else ""
    )
    v.note_en = (
        f"DIP annual point value ¥{y.point_value} per point · catalog {r.catalog.version} · DRG scheme "
        f"{r.scheme.name} (sample)" + (" · SYNTHETIC" if v.synthetic else "")
    )
    inst = institution_table(r)
    scope = p.institution_scope()
    if scope is not None:
        inst = inst[inst.fixmedins_code == scope]
    m = per[per.period > 0]
    v.charts.append(
        (
            "DIP 月度点值" if zh else "DIP point value by month",
            charts.bar_chart(
                [str(int(x)) for x in m.period],
                {("月度点值 (元/分)" if zh else "monthly point value (¥/point)"): list(m.point_value)},
                chart_id="chart-point-value",
            ),
        )
    )
    kinds = r.dip.cases["kind"].value_counts()
    v.charts.append(
        (
            "DIP 入组类型" if zh else "DIP case kinds",
            charts.donut_chart(
                [labels.value("dip_kind", k, lang) for k in kinds.index],
                [int(x) for x in kinds.values],
                chart_id="chart-group-mix",
            ),
        )
    )
    v.tables.append(
        Table(
            "各医院盈亏" if zh else "each hospital's gain or loss",
            _heads(
                lang, "fixmedins_code", "hosp_lv", "points", "dip_value", "cost", "dip_gain", "drg_gain", "clearing"
            ),
            [
                [
                    row.fixmedins_code,
                    labels.value("hosp_lv", row.hosp_lv, lang),
                    _n(int(cast(int, row.points_e4)) / 10000, 1),
                    _yuan(row.value_fen),
                    _yuan(row.medfee_sumamt),
                    _yuan(row.dip_gain_fen),
                    _yuan(row.drg_gain_fen),
                    _yuan(row.clearing_fen),
                ]
                for row in inst.itertuples(index=False)
            ],
        )
    )
    mix = (
        r.cases[r.cases.drg != "0000"]
        .groupby("drg", as_index=False)
        .agg(cases=("mdtrt_id", "count"), rw_e4=("rw_e4", "first"))
    )
    mix = mix.sort_values("cases", ascending=False).head(30)
    v.tables.append(
        Table(
            "DRG 病组构成 (前30)" if zh else "DRG group mix (top 30)",
            _heads(lang, "drg", "cases", "rw"),
            [[d, _n(c), _n(int(w) / 10000, 4)] for d, c, w in mix.itertuples(index=False)],
        )
    )
    return v


# --- supervision (智能监管) -------------------------------------------------------------------------


def _review(data_dir: Path):
    from yibao.supervision.reports import review_region

    return review_region(data_dir)


def supervision_view(engine: Engine, p: Principal, lang: str, data_dir: Path | None = None) -> View:
    from sqlalchemy import select

    from yibao.core.db import session_scope
    from yibao.supervision.models import Case, CaseEvent

    v = View("智能监管", "Supervision", True)
    zh = lang != "en"
    scope = p.institution_scope()
    with session_scope(engine) as s:
        q = select(Case).order_by(Case.loss_fen.desc(), Case.id)
        if scope is not None:
            q = q.where(Case.subject_kind == "institution", Case.subject_code == scope)
        cases = list(s.scalars(q.limit(200)))
        ids = [c.id for c in cases]
        events = (
            list(s.scalars(select(CaseEvent).where(CaseEvent.case_id.in_(ids)).order_by(CaseEvent.at, CaseEvent.id)))
            if ids
            else []
        )
        v.tables.append(
            Table(
                "案件" if zh else "case files",
                _heads(lang, "case", "state", "subject", "source", "violation", "loss", "fine", "recovered"),
                [
                    [
                        Link(c.id, f"/console/supervision/cases/{c.id}"),
                        labels.value("case_state", c.state, lang),
                        f"{labels.value('subject_kind', c.subject_kind, lang)} {c.subject_code}",
                        labels.value("case_source", c.source, lang),
                        labels.humanize(c.violation, lang) if c.violation else labels.MISSING,
                        _yuan(c.loss_fen),
                        _yuan(c.fine_fen),
                        _yuan(c.recovered_fen),
                    ]
                    for c in cases
                ],
                anchor="case-",
            )
        )
        # the case pages (forms for the next steps, the history): /console/supervision/cases
        v.tables.append(
            Table(
                "执法时间线" if zh else "enforcement timeline",
                _heads(lang, "time", "case", "action", "from_state", "to_state", "actor", "note"),
                [
                    [
                        e.at.strftime("%Y-%m-%d %H:%M"),
                        Link(e.case_id, f"#case-{e.case_id}"),
                        labels.value("case_action", e.action, lang),
                        labels.value("case_state", e.from_state, lang),
                        labels.value("case_state", e.to_state, lang),
                        e.actor,
                        e.note or labels.MISSING,
                    ]
                    for e in events
                ],
                free=(6,),
            )
        )
    if data_dir is None:
        v.note_zh = "未配置区域数据目录 (YIBAO_CONSOLE_DATA), 不显示规则扫描工作队列"
        v.note_en = "no region data directory configured (YIBAO_CONSOLE_DATA): the rule-scan work queue is not shown"
        return v
    st = analysis("supervision", data_dir, _review)
    if st["status"] != "done":
        return _pending(v, st)
    rv = st["result"]
    q = rv.analytics["queue"]
    if scope is not None:
        q = q[q.fixmedins_code == scope]
    v.synthetic = bool(rv.synthetic)
    cols = [
        c
        for c in ("rank", "kind", "item_id", "score", "amount", "rules", "fixmedins_code", "dr_code")
        if c in q.columns
    ]
    rows = []
    for row in q[cols].head(500).itertuples(index=False):
        d = dict(zip(cols, row, strict=True))
        if d.get("kind") == "encounter" and d.get("item_id"):  # the encounter's settlement page
            d["item_id"] = Link(d["item_id"], f"/console/encounter/{d['item_id']}")
        if "kind" in d:
            d["kind"] = labels.value("queue_kind", d["kind"], lang)
        if "amount" in d:
            d["amount"] = _yuan(d["amount"])
        if "score" in d:
            d["score"] = _n(d["score"], 2)
        if "rules" in d:
            d["rules"] = labels.rules(d["rules"], lang)
        for k in ("fixmedins_code", "dr_code"):
            if k in d and not d[k]:
                d[k] = labels.MISSING
        rows.append([d[c] for c in cols])
    v.tables.insert(0, Table("按风险排序的工作队列" if zh else "work queue ranked by risk", _heads(lang, *cols), rows))
    return v


ADAPTERS.update({"procurement": procurement_view, "payment": payment_view, "supervision": supervision_view})
