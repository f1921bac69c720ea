"""Views of the other subsystems (procurement, payment, supervision) for the console.

Each adapter reads what that subsystem persists or exposes.  When a
subsystem does not (yet) provide its data, the page says so plainly and
shows no figures: nothing here is invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from yibao.web.auth import Principal


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]]


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


def _yuan(fen: Any) -> str:
    try:
        return f"{int(fen) / 100:,.2f}"
    except (TypeError, ValueError):
        return ""


# --- procurement (集采) -----------------------------------------------------------------------


def procurement_view(engine: Engine, p: Principal, lang: str, data_dir: Path | None = None) -> View:
    import pandas as pd
    from sqlalchemy import func, select

    from yibao.core.db import session_scope
    from yibao.procurement import monitor
    from yibao.procurement.models import VbpBid, VbpContract, VbpOrder, VbpRound
    from yibao.procurement.service import list_rounds, load_contracts, round_results
    from yibao.web import charts

    v = View("集中带量采购", "Volume-based procurement", True)
    rounds = list_rounds(engine)
    if not rounds:
        v.note_zh, v.note_en = "数据库中尚无采购批次 (yibao procurement run … --db)", "no procurement round in the database yet (yibao procurement run … --db)"
        return v
    r = rounds[-1]
    rid = int(r["id"])
    scope = p.institution_scope()
    v.synthetic = bool(r["synthetic"])
    v.note_zh = f"批次 {r['name']} · 规则 {r['ruleset_id']} · {r['round_date']} · 中选 {r['winners']} 家" + (" · 合成数据" if v.synthetic else "")
    v.note_en = f"round {r['name']} · rules {r['ruleset_id']} · {r['round_date']} · {r['winners']} winners" + (" · SYNTHETIC" if v.synthetic else "")
    with session_scope(engine) as s:
        bids = s.execute(select(VbpBid.drug_id, func.count(), func.min(VbpBid.price_fen), func.max(VbpBid.price_fen))
                         .where(VbpBid.round_id == rid).group_by(VbpBid.drug_id).order_by(VbpBid.drug_id)).all()
        oq = select(VbpOrder.institution_id, VbpOrder.drug_id, VbpOrder.spec_id, VbpOrder.supplier, VbpOrder.units,
                    VbpOrder.month, VbpOrder.contracted, VbpOrder.amount_fen).where(VbpOrder.round_id == rid)
        if scope is not None:
            oq = oq.where(VbpOrder.institution_id == scope)
        orders = pd.DataFrame(s.execute(oq).all(), columns=["institution_id", "drug_id", "spec_id", "supplier", "units", "month",
                                                            "contracted", "amount_fen"])
    zh = lang != "en"
    v.tables.append(Table("申报 bids" if zh else "bids", ["drug_id", "bids 申报数", "min price 最低报价 (元)", "max price 最高报价 (元)"],
                          [[d, n, _yuan(lo), _yuan(hi)] for d, n, lo, hi in bids]))
    res = round_results(engine, rid)
    v.tables.append(Table("中选结果与理由" if zh else "results with reasons", ["drug_id", "firm_id", "status", "rank", "reason"],
                          [[x["drug_id"], x["firm_id"], x["status"], x["rank"], x["reason_zh"] if zh else x["reason_en"]] for x in res]))
    contracts = load_contracts(engine, rid)
    if scope is not None and not contracts.empty:
        contracts = contracts[contracts["institution_id"] == scope]
    if not contracts.empty:
        reg = contracts.groupby("region", as_index=False).agg(agreed_units=("agreed_units", "sum"), amount_fen=("amount_fen", "sum"),
                                                               institutions=("institution_id", "nunique"))
        v.tables.append(Table("供应区域" if zh else "supply regions", ["region", "institutions", "agreed units 约定量", "amount 金额 (元)"],
                              [[a, int(n), int(u), _yuan(f)] for a, u, f, n in reg[["region", "agreed_units", "amount_fen", "institutions"]].itertuples(index=False)]))
        if not orders.empty:
            months = int(orders["month"].max())
            prog = monitor.progress(orders, contracts, months_elapsed=months)
            by_drug = prog.groupby("drug_id", as_index=False)[["agreed_units", "purchased_units", "expected_units"]].sum()
            v.charts.append(("执行进度: 约定量与已采购" if zh else "execution against the agreed volume", charts.bar_chart(list(by_drug.drug_id), {
                ("约定量" if zh else "agreed"): [int(x) for x in by_drug.agreed_units],
                ("应完成" if zh else f"expected by month {months}"): [int(x) for x in by_drug.expected_units],
                ("已采购" if zh else "purchased"): [int(x) for x in by_drug.purchased_units]}, unit="units", chart_id="chart-vbp-progress")))
            v.tables.append(Table("执行进度" if zh else "execution progress",
                                  ["institution_id", "drug_id", "agreed 约定量", "expected 应完成", "purchased 已采购", "completion 完成率", "behind 滞后"],
                                  [[a, d, int(ag), int(ex), int(pu), f"{int(bp) / 100:.1f}%", "是" if b else ""] for a, d, ag, pu, ex, b, bp in
                                   prog[["institution_id", "drug_id", "agreed_units", "purchased_units", "expected_units", "behind", "completion_bp"]].itertuples(index=False)]))
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
        v.note_en = "no region data directory configured (YIBAO_CONSOLE_DATA): DIP/DRG analysis runs over the region's Parquet"
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
    v.note_zh = f"DIP 年度点值 ¥{y.point_value}/分 · 目录 {r.catalog.version} · DRG 方案 {r.scheme.name} (示例)" + (" · 合成数据" if v.synthetic else "")
    v.note_en = f"DIP annual point value ¥{y.point_value} per point · catalog {r.catalog.version} · DRG scheme {r.scheme.name} (sample)" + (" · SYNTHETIC" if v.synthetic else "")
    inst = institution_table(r)
    scope = p.institution_scope()
    if scope is not None:
        inst = inst[inst.fixmedins_code == scope]
    m = per[per.period > 0]
    v.charts.append(("DIP 月度点值" if zh else "DIP point value by month", charts.bar_chart(
        [str(int(x)) for x in m.period], {("月度点值 (元/分)" if zh else "monthly point value (¥/point)"): [float(x) for x in m.point_value]},
        chart_id="chart-point-value")))
    kinds = r.dip.cases["kind"].value_counts()
    v.charts.append(("DIP 入组类型" if zh else "DIP case kinds", charts.donut_chart([str(k) for k in kinds.index], [int(x) for x in kinds.values],
                                                                                  chart_id="chart-group-mix")))
    v.tables.append(Table("各医院盈亏" if zh else "each hospital's gain or loss",
                          ["fixmedins_code", "hosp_lv", "points 分值", "DIP value 分值金额 (元)", "cost 医疗费用 (元)", "DIP gain 盈亏 (元)", "DRG gain 盈亏 (元)", "clearing 清算 (元)"],
                          [[row.fixmedins_code, row.hosp_lv, f"{int(row.points_e4) / 10000:,.1f}", _yuan(row.value_fen), _yuan(row.medfee_sumamt),
                            _yuan(row.dip_gain_fen), _yuan(row.drg_gain_fen), _yuan(row.clearing_fen)] for row in inst.itertuples(index=False)]))
    mix = r.cases[r.cases.drg != "0000"].groupby("drg", as_index=False).agg(cases=("mdtrt_id", "count"), rw_e4=("rw_e4", "first"))
    mix = mix.sort_values("cases", ascending=False).head(30)
    v.tables.append(Table("DRG 病组构成 (前30)" if zh else "DRG group mix (top 30)", ["drg", "cases 病例数", "RW 权重"],
                          [[d, int(c), f"{int(w) / 10000:.4f}"] for d, c, w in mix.itertuples(index=False)]))
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
        events = list(s.scalars(select(CaseEvent).where(CaseEvent.case_id.in_(ids)).order_by(CaseEvent.at, CaseEvent.id))) if ids else []
        v.tables.append(Table("案件" if zh else "case files", ["case", "state 状态", "subject 对象", "source 来源", "violation 违规", "loss 损失 (元)", "fine 罚款 (元)", "recovered 追回 (元)"],
                              [[c.id, c.state, f"{c.subject_kind}:{c.subject_code}", c.source, c.violation, _yuan(c.loss_fen), _yuan(c.fine_fen), _yuan(c.recovered_fen)] for c in cases]))
        v.tables.append(Table("执法时间线" if zh else "enforcement timeline", ["time 时间", "case", "action 环节", "from", "to", "actor 经办人", "note"],
                              [[e.at.strftime("%Y-%m-%d %H:%M"), e.case_id, e.action, e.from_state, e.to_state, e.actor, e.note] for e in events]))
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
    cols = [c for c in ("rank", "kind", "item_id", "score", "amount", "rules", "fixmedins_code", "dr_code") if c in q.columns]
    rows = []
    for row in q[cols].head(500).itertuples(index=False):
        d = dict(zip(cols, row))
        if "amount" in d:
            d["amount"] = _yuan(d["amount"])
        if "score" in d:
            d["score"] = f"{float(d['score']):.2f}"
        rows.append([d[c] for c in cols])
    v.tables.insert(0, Table("按风险排序的工作队列" if zh else "work queue ranked by risk", cols, rows))
    return v


ADAPTERS.update({"procurement": procurement_view, "payment": payment_view, "supervision": supervision_view})
