"""Score rules and the ranked queue on the injected ground truth (synthetic regions only).

For each rule: the set of entities it flagged against the set labelled with
its pattern (and, where the rule says so, the label detail), at the rule's
entity level.  Precision = true hits / hits, recall = true hits / labelled.
A rule with labelled entities and no true hit is a failure (``failed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from yibao.core import parquet_io
from yibao.supervision.knowledge import RuleBook, default_rulebook


@dataclass
class Score:
    rule_id: str
    pattern: str
    entity: str
    labelled: int
    flagged: int
    true_hits: int

    @property
    def precision(self) -> float:
        return self.true_hits / self.flagged if self.flagged else (1.0 if self.labelled == 0 else 0.0)

    @property
    def recall(self) -> float:
        return self.true_hits / self.labelled if self.labelled else 1.0

    @property
    def failed(self) -> bool:
        return self.labelled > 0 and self.true_hits == 0

    def row(self) -> dict:
        return {
            "rule_id": self.rule_id,
            "pattern": self.pattern,
            "entity": self.entity,
            "labelled": self.labelled,
            "flagged": self.flagged,
            "true_hits": self.true_hits,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "failed": self.failed,
        }


def read_truth(data_dir: str | Path) -> pd.DataFrame:
    src = parquet_io.table_sql(Path(data_dir), "ground_truth")  # file or dataset directory
    if src is None:
        return pd.DataFrame(columns=["entity", "entity_id", "pattern", "detail"])
    return duckdb.execute(f"SELECT DISTINCT entity, entity_id, pattern, detail FROM {src}").df()


def truth_for(
    truth: pd.DataFrame, pattern: str, entity: str, detail: str | None = None, detail_like: str | None = None
) -> set[str]:
    t = truth[(truth.pattern == pattern) & (truth.entity == entity)]
    if detail is not None:
        t = t[t.detail == detail]
    if detail_like is not None:
        needle = detail_like.strip("%")
        t = t[t.detail.str.contains(needle, regex=False)]
    return set(t.entity_id)


def score_rules(
    hits: pd.DataFrame, truth: pd.DataFrame, book: RuleBook | None = None, extra: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """One row per rule (and per analytic in ``extra``: id -> frame with entity_id)."""
    book = book or default_rulebook()
    rows = []
    for r in book.by_stage("post"):
        flagged = set(hits.loc[hits.rule_id == r.id, "entity_id"])
        lab = truth_for(truth, r.pattern, r.entity, r.truth_detail, r.truth_detail_like)
        rows.append(Score(r.id, r.pattern, r.entity, len(lab), len(flagged), len(flagged & lab)).row())
    ring = book.analytics.ring
    for rid, df in (extra or {}).items():
        lab = truth_for(truth, ring.pattern, ring.entity) if rid == ring.id else set()
        flagged = set(df["entity_id"])
        rows.append(
            Score(
                rid,
                ring.pattern if rid == ring.id else "",
                ring.entity if rid == ring.id else "",
                len(lab),
                len(flagged),
                len(flagged & lab),
            ).row()
        )
    return pd.DataFrame(rows)


def pattern_recall(
    hits: pd.DataFrame, truth: pd.DataFrame, book: RuleBook | None = None, extra: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Per labelled pattern: the share of its labels any rule (or the ring analytic in ``extra``) found."""
    book = book or default_rulebook()
    ring = book.analytics.ring
    rows = []
    for pattern, g in truth.groupby("pattern"):
        rules: list[Any] = [r for r in book.rules if r.pattern == pattern]
        found = set()
        for r in rules:
            found |= set(hits.loc[hits.rule_id == r.id, "entity_id"])
        if pattern == ring.pattern and extra and ring.id in extra:
            found |= set(extra[ring.id]["entity_id"])
            rules = [*rules, ring]
        lab = set(g.entity_id)
        rows.append(
            {
                "pattern": pattern,
                "labelled": len(lab),
                "found": len(lab & found),
                "recall": round(len(lab & found) / len(lab), 4) if lab else 1.0,
                "rules": ",".join(r.id for r in rules),
            }
        )
    return pd.DataFrame(rows)


def hotspots(data_dir: str | Path, enc: set[str], factor: float = 2.0, min_labelled: int = 5) -> dict[str, set[str]]:
    """Institutions and doctors (per med_type, ``code/med_type``) whose share of labelled encounters is at least
    ``factor`` times the region's share for that med_type: the subjects a peer outlier should point at."""
    src = parquet_io.table_sql(Path(data_dir), "encounter") or parquet_io.sql_source(
        Path(data_dir) / "encounter.parquet"
    )
    con = duckdb.connect()
    con.register("lab", pd.DataFrame({"mdtrt_id": sorted(enc)}))
    out = {}
    for kind, key in (("institution", "fixmedins_code"), ("doctor", "dr_code")):
        df = con.execute(
            f"""
            WITH e AS (SELECT {key} AS subject, med_type, (mdtrt_id IN (SELECT mdtrt_id FROM lab))::INT AS bad
                       FROM {src} WHERE {key} <> ''),
                 r AS (SELECT med_type, avg(bad) AS share FROM e GROUP BY 1)
            SELECT subject || '/' || med_type AS id FROM e JOIN r USING (med_type)
            GROUP BY subject, med_type, r.share
            HAVING sum(bad) >= {int(min_labelled)} AND avg(bad) >= {float(factor)} * r.share
            """
        ).df()
        out[kind] = set(df["id"])
    return out


def queue_truth(truth: pd.DataFrame, data_dir: str | Path | None = None) -> dict[str, set[str]]:
    """Labelled entities at the queue's levels: encounters (incl. those holding a labelled line), persons,
    institution–item pairs and, given the data, hotspot institutions and doctors (:func:`hotspots`)."""
    enc = set(truth.loc[truth.entity == "encounter", "entity_id"])
    lines = truth.loc[truth.entity == "fee_detail", "entity_id"]
    enc |= {x.split("#", 1)[0] for x in lines}
    out = {
        "encounter": enc,
        "person": set(truth.loc[truth.entity == "person", "entity_id"]),
        "inst_item": set(truth.loc[truth.entity == "inst_item", "entity_id"]),
    }
    if data_dir is not None:
        out.update(hotspots(data_dir, enc))
    return out


def score_queue(
    queue: pd.DataFrame,
    truth: pd.DataFrame,
    data_dir: str | Path | None = None,
    tops: tuple[int, ...] = (50, 100, 200, 500),
) -> pd.DataFrame:
    """Precision in the top k of the ranked queue, and recall of all labelled entities over the whole queue
    (recall counts encounters, persons and institution–item pairs; hotspots only count for precision)."""
    qt = queue_truth(truth, data_dir)
    ok = [item_id in qt.get(kind, set()) for kind, item_id in zip(queue["kind"], queue["item_id"], strict=True)]
    q = queue.assign(true=ok)
    rows = []
    all_lab = sum(len(qt[k]) for k in ("encounter", "person", "inst_item"))
    found_lab = int(q.loc[q["kind"].isin(["encounter", "person", "inst_item"]), "true"].sum())
    for k in tops:
        top = q.head(k)
        rows.append(
            {"top": k, "items": len(top), "precision": round(float(top["true"].mean()) if len(top) else 0.0, 4)}
        )
    found = int(q["true"].sum())
    rows.append(
        {
            "top": len(q),
            "items": len(q),
            "precision": round(found / len(q), 4) if len(q) else 0.0,
            "recall": round(found_lab / all_lab, 4) if all_lab else 1.0,
        }
    )
    return pd.DataFrame(rows)
