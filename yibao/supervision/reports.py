"""Supervision reports: an Excel workbook, a stand-alone HTML page and the ``yibao demo`` section.

:func:`review_region` runs the whole post-care review on a region directory
(rules — those reading purchases skipped when the region has no usable
purchase table —, analytics, and — when ground truth exists — scores; the
labels are read only for the scores) and returns a
:class:`Review`; the writers below render it.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from yibao.core import manifest, parquet_io
from yibao.core.money import fmt_yuan
from yibao.supervision.analytics import run_analytics
from yibao.supervision.batch import scan
from yibao.supervision.knowledge import STAGE_ZH, RuleBook, default_rulebook
from yibao.supervision.scoring import pattern_recall, read_truth, score_queue, score_rules


@dataclass
class Review:
    data_dir: Path
    hits: pd.DataFrame
    analytics: dict[str, pd.DataFrame]
    seconds: dict[str, float]
    lines: int
    encounters: int
    synthetic: bool
    scores: pd.DataFrame | None = None
    pattern_scores: pd.DataFrame | None = None
    queue_scores: pd.DataFrame | None = None
    book: RuleBook = field(default_factory=default_rulebook)
    skipped: dict[str, tuple[str, str]] = field(default_factory=dict)  # rule id -> why (English, Chinese)
    purchase_synthetic: bool = False


def _is_synthetic(d: Path) -> bool:
    m = d / "manifest.json"
    if m.exists():
        try:
            return bool(json.loads(m.read_text(encoding="utf-8")).get("synthetic"))
        except ValueError:
            return False
    return False


def review_region(data_dir: str | Path, book: RuleBook | None = None) -> Review:
    d = Path(data_dir)
    book = book or default_rulebook()
    synthetic = _is_synthetic(d)
    res = scan(d, book)  # reads a purchase table, never makes one
    an = run_analytics(d, res.hits, book)
    rv = Review(
        d,
        res.hits,
        an,
        res.seconds,
        res.lines,
        res.encounters,
        synthetic,
        book=book,
        skipped=res.skipped,
        purchase_synthetic=res.purchase.synthetic,
    )
    if parquet_io.table_path(d, "ground_truth") is not None:
        manifest.check(d, ["ground_truth"])
        truth = read_truth(d)
        rv.scores = score_rules(res.hits, truth, book, extra={book.analytics.ring.id: an["rings"]})
        rv.scores = rv.scores[~rv.scores.rule_id.isin(list(rv.skipped))].reset_index(
            drop=True
        )  # not run, so not scored (nor failed)
        rv.pattern_scores = pattern_recall(res.hits, truth, book, extra={book.analytics.ring.id: an["rings"]})
        rv.queue_scores = score_queue(an["queue"], truth, d)
    return rv


def rule_summary(rv: Review) -> pd.DataFrame:
    rows = []
    for r in rv.book.rules:
        h = rv.hits[rv.hits.rule_id == r.id]
        rows.append(
            {
                "rule_id": r.id,
                "name": r.name,
                "name_zh": r.name_zh,
                "stages": "/".join(STAGE_ZH[s] for s in r.stages),
                "severity": r.severity,
                "hits": len(h),
                "fen_at_stake": int(h.amount.clip(lower=0).sum()),
            }
        )
    return pd.DataFrame(rows)


def write_excel(rv: Review, path: str | Path) -> Path:
    """One sheet each: rules, queue (top 1,000), hits (first 100,000), peers, rings, scores."""
    p = Path(path)
    with pd.ExcelWriter(p, engine="openpyxl") as xw:
        notes = [
            "SYNTHETIC DATA 合成数据 — figures describe a simulation" if rv.synthetic else "supervision review",
            f"region: {rv.data_dir}",
        ]
        notes += (
            ["SYNTHETIC purchases 合成进货数据 (yibao synth), not procurement records"] if rv.purchase_synthetic else []
        )
        notes += [f"{en} / {zh}" for en, zh in rv.skipped.values()]
        pd.DataFrame({"note": notes}).to_excel(xw, sheet_name="about", index=False)
        rule_summary(rv).to_excel(xw, sheet_name="rules", index=False)
        rv.analytics["queue"].head(1000).to_excel(xw, sheet_name="queue", index=False)
        rv.hits.head(100_000).to_excel(xw, sheet_name="hits", index=False)
        rv.analytics["peer_institution"].to_excel(xw, sheet_name="peer_institutions", index=False)
        rv.analytics["peer_doctor"].to_excel(xw, sheet_name="peer_doctors", index=False)
        rv.analytics["rings"].to_excel(xw, sheet_name="rings", index=False)
        if rv.scores is not None and rv.queue_scores is not None:
            rv.scores.to_excel(xw, sheet_name="scores", index=False)
            rv.queue_scores.to_excel(xw, sheet_name="queue_scores", index=False)
    return p


def _table(df: pd.DataFrame, money: tuple[str, ...] = ()) -> str:
    d = df.copy()
    for c in money:
        if c in d:
            d[c] = d[c].map(lambda v: fmt_yuan(int(v)))
    return d.to_html(index=False, border=0, classes="tab", escape=True, float_format=lambda v: f"{v:.4g}")


def section_html(rv: Review, top: int = 30) -> str:
    """The supervision section (HTML fragment) for the fund-year report."""
    parts = []
    if rv.synthetic:
        parts.append(
            "<p><strong>SYNTHETIC DATA 合成数据</strong>: injected fraud patterns with ground truth; the scores "
            "measure the rules, not a real region.</p>"
        )
    total = int(rv.hits.amount.clip(lower=0).sum())
    parts.append(
        f"<p>事后 review of {rv.lines:,} fee lines in {rv.encounters:,} encounters: {len(rv.hits):,} rule hits, "
        f"¥{fmt_yuan(total)} at stake, "
        f"{len(rv.analytics['queue']):,} items in the ranked work queue, "
        f"{rv.analytics['rings']['ring'].nunique() if len(rv.analytics['rings']) else 0} rings. "
        f"Scan {sum(v for k, v in rv.seconds.items()):.1f} s.</p>"
    )
    for en, zh in rv.skipped.values():
        parts.append(f"<p><strong>{html.escape(en)}</strong><br>{html.escape(zh)}</p>")
    if rv.purchase_synthetic:
        parts.append(
            "<p><strong>SYNTHETIC purchases 合成进货数据</strong>: the stock rule compares the bills with purchases "
            "yibao synth generated, not procurement records.</p>"
        )
    parts.append(
        "<h3>Rules 规则</h3>" + _table(rule_summary(rv), money=("fen_at_stake",)).replace("fen_at_stake", "¥ at stake")
    )
    if rv.scores is not None and rv.queue_scores is not None:
        parts.append("<h3>Precision and recall on the injected ground truth 准确率与召回率</h3>" + _table(rv.scores))
        parts.append("<h3>Ranked work queue 排序工作队列: precision in the top k</h3>" + _table(rv.queue_scores))
    q = rv.analytics["queue"].head(top)
    parts.append(
        f"<h3>Work queue, top {top} 工作队列</h3>"
        + _table(
            q[["rank", "kind", "item_id", "score", "amount", "rules", "fixmedins_code", "dr_code"]], money=("amount",)
        )
    )
    pi = rv.analytics["peer_institution"]
    if len(pi):
        cols = [
            "subject",
            "med_type",
            "hosp_lv",
            "cases",
            "cost_per_case",
            "los",
            "exam_share",
            "restricted_share",
            "cmi_ratio",
            "max_z",
            "outlier_on",
        ]
        parts.append("<h3>Peer comparison of institutions 同级机构比较</h3>" + _table(pi[cols].head(15)))
    return "\n".join(parts)


def write_html(rv: Review, path: str | Path) -> Path:
    p = Path(path)
    body = section_html(rv, top=100)
    p.write_text(
        "<!doctype html><meta charset='utf-8'><title>yibao supervision review</title>"
        "<style>body{font-family:sans-serif;margin:2em}table.tab{border-collapse:collapse;font-size:12px}"
        "table.tab td,table.tab th{padding:2px 6px;border-bottom:1px solid #ddd;text-align:right}</style>"
        f"<h1>Fund supervision review 医保基金监管</h1><p>{html.escape(str(rv.data_dir))}</p>{body}",
        encoding="utf-8",
    )
    return p
