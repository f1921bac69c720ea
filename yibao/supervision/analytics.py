"""Analytics that rank institutions, doctors and patients, and the ranked work queue.

* **Peer comparison** (同级比较): per institution (within its level) and per
  doctor (within the level of their institution): cost per case, length of
  stay, exam share, restricted-item share, stay-only share, and a case-mix
  index (observed cost over the cost expected from each case's diagnosis
  group across the region).  Outliers by robust z (median / MAD), in DuckDB.
* **Networks** (就医网络): patients linked when the same doctor saw both on the
  same day; over edges of at least ``min_shared_days`` days, the dense part
  (k-core: each patient linked to at least ``min_members - 1`` others) splits
  into rings of at least ``min_members`` patients (networkx).
* **Work queue** (工作队列): rule hits rolled up per encounter (and per
  institution–item for stock, per person for rings), scored by severity and
  money at stake, plus outlier subjects, in one ranked list.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import networkx as nx
import pandas as pd

from yibao.core.contract import MED_TYPE_INPATIENT, OUTPATIENT_MED_TYPES
from yibao.supervision.batch import connect
from yibao.supervision.knowledge import RuleBook, default_rulebook

PEER_SQL = """
WITH enc AS (
  SELECT e.mdtrt_id, e.fixmedins_code, e.dr_code, e.med_type, left(e.dise_codg, 3) AS dx3, i.hosp_lv,
         greatest(date_diff('day', e.begntime, e.endtime), 1) AS los
  FROM encounter e JOIN institution i USING (fixmedins_code)
  WHERE e.med_type IN ({hospital_med_types})
), line AS (
  SELECT f.mdtrt_id, sum(f.det_item_fee_sumamt) AS fen,
         sum(f.det_item_fee_sumamt) FILTER (WHERE x.med_list_codg IS NOT NULL) AS exam_fen,
         sum(f.det_item_fee_sumamt) FILTER (WHERE m.lmt_gend <> '' OR m.lmt_age_min >= 0 OR m.lmt_age_max >= 0
                                               OR m.lmt_hosp_lv_min > 0
                                               OR m.lmt_indication <> '' OR m.lmt_med_types <> '') AS restricted_fen,
         bool_and(h.med_list_codg IS NOT NULL) AS stay_only
  FROM fee_detail f JOIN med_list m USING (med_list_codg)
  LEFT JOIN k_exam_items x ON x.med_list_codg = f.med_list_codg
  LEFT JOIN k_hotel_items h ON h.med_list_codg = f.med_list_codg
  GROUP BY 1
), c AS (
  SELECT enc.*, line.fen, coalesce(line.exam_fen, 0) AS exam_fen, coalesce(line.restricted_fen, 0) AS restricted_fen,
         line.stay_only,
         -- 0.001 fen, exact sums below
         round(avg(line.fen) OVER (PARTITION BY enc.med_type, enc.dx3) * 1000)::BIGINT AS expected_mfen
  FROM enc JOIN line USING (mdtrt_id)
), subj AS (
  SELECT {key} AS subject, any_value(hosp_lv) AS hosp_lv, med_type, count(*) AS cases,
         avg(fen) AS cost_per_case, avg(los) AS los,
         sum(exam_fen) / sum(fen) AS exam_share, sum(restricted_fen) / sum(fen) AS restricted_share,
         avg(CASE WHEN stay_only AND med_type = '{inpatient}' THEN 1 ELSE 0 END) AS stay_only_share,
         sum(fen) * 1000 / sum(expected_mfen) AS cmi_ratio
  FROM c WHERE {key} <> ''
  GROUP BY {key}, med_type
  HAVING count(*) >= $min_cases
)
SELECT * FROM subj
"""


def _robust_z(s: pd.Series) -> pd.Series:
    med = s.median()
    mad = (s - med).abs().median()
    scale = 1.4826 * mad if mad > 0 else (s.std() or 1.0)
    return (s - med) / scale


def peer_comparison(
    con: duckdb.DuckDBPyConnection, level: str = "institution", book: RuleBook | None = None
) -> pd.DataFrame:
    """One row per subject and med_type with each measure, its robust z within the peer group, and outlier flags."""
    book = book or default_rulebook()
    p = book.analytics.peer
    key = "fixmedins_code" if level == "institution" else "dr_code"
    df = con.execute(
        PEER_SQL.format(
            key=key,
            hospital_med_types=", ".join(f"'{m}'" for m in (*OUTPATIENT_MED_TYPES, MED_TYPE_INPATIENT)),
            inpatient=MED_TYPE_INPATIENT,
        ),
        {"min_cases": p.min_cases},
    ).df()
    if df.empty:
        return df
    measures = [
        m
        for m in ("cost_per_case", "los", "exam_share", "restricted_share", "stay_only_share", "cmi_ratio")
        if m in (*p.measures, "cmi_ratio")
    ]
    for m in measures:
        df[f"z_{m}"] = df.groupby(["med_type", "hosp_lv"])[m].transform(_robust_z).fillna(0.0)
    zc = [f"z_{m}" for m in measures]
    df["max_z"] = df[zc].max(axis=1)
    df["outlier_on"] = df[zc].apply(lambda r: ",".join(c[2:] for c, v in r.items() if v > p.z_threshold), axis=1)
    df["level"] = level
    # ties (many subjects share a z) in subject order, so the ranking does not depend on DuckDB's row order
    return df.sort_values(
        ["max_z", "subject", "med_type"], ascending=[False, True, True], ignore_index=True, kind="stable"
    )


def find_rings(con: duckdb.DuckDBPyConnection, book: RuleBook | None = None) -> pd.DataFrame:
    """Rings of patients who see one doctor together on many days; one row per member."""
    book = book or default_rulebook()
    rp = book.analytics.ring
    edges = con.execute(
        """
        WITH v AS (SELECT DISTINCT psn_no, dr_code, fixmedins_code, CAST(begntime AS DATE) AS d
                   FROM encounter WHERE dr_code <> '')
        SELECT a.psn_no AS a, b.psn_no AS b, a.dr_code, any_value(a.fixmedins_code) AS fixmedins_code, count(*) AS days
        FROM v a JOIN v b ON a.dr_code = b.dr_code AND a.d = b.d AND a.psn_no < b.psn_no
        GROUP BY 1, 2, 3 HAVING count(*) >= $k
        """,
        {"k": rp.min_shared_days},
    ).df()
    g = nx.Graph()
    for r in edges.itertuples():
        g.add_edge(r.a, r.b, weight=r.days, dr=r.dr_code, inst=r.fixmedins_code)
    # a ring is dense: keep patients linked to at least min_members - 1 others (the k-core), then components
    core = nx.k_core(g, rp.min_members - 1) if g.number_of_nodes() else g
    rows = []
    for n, comp in enumerate(sorted(nx.connected_components(core), key=lambda c: (-len(c), min(c)))):
        if len(comp) < rp.min_members:
            continue
        sub = core.subgraph(comp)
        drs = pd.Series([d["dr"] for _, _, d in sub.edges(data=True)]).value_counts()
        inst = pd.Series([d["inst"] for _, _, d in sub.edges(data=True)]).value_counts()
        density = nx.density(sub)
        for p in sorted(comp):
            rows.append(
                {
                    "ring": n,
                    "entity_id": p,
                    "members": len(comp),
                    "density": round(density, 3),
                    "dr_code": drs.index[0],
                    "fixmedins_code": inst.index[0],
                    "shared_days": int(sub.degree(p, weight="weight")),
                }
            )
    return pd.DataFrame(
        rows, columns=["ring", "entity_id", "members", "density", "dr_code", "fixmedins_code", "shared_days"]
    )


def build_queue(
    hits: pd.DataFrame,
    rings: pd.DataFrame | None = None,
    peers: pd.DataFrame | None = None,
    book: RuleBook | None = None,
) -> pd.DataFrame:
    """One ranked list: encounters (all rule hits on their lines and themselves), institution–item pairs,
    ring members and peer outliers.  score = Σ severity weight × (1 + log10(1 + fen at stake / 10,000))."""
    book = book or default_rulebook()
    q = book.analytics.queue
    w = {int(k): float(v) for k, v in q.severity_weight.items()}
    items = []
    if not hits.empty:
        h = hits.copy()
        h["kind"] = h["entity"].map(
            {"fee_detail": "encounter", "encounter": "encounter", "inst_item": "inst_item", "person": "person"}
        )
        h["item_id"] = h["mdtrt_id"].where(h["kind"] == "encounter", h["entity_id"])
        h["s"] = [
            w[int(s)] * (1 + math.log10(1 + max(int(a), 0) / 10_000))
            for s, a in zip(h["severity"], h["amount"], strict=True)
        ]
        g = (
            h.groupby(["kind", "item_id"])
            .agg(
                score=("s", "sum"),
                amount=("amount", "sum"),
                rules=("rule_id", lambda x: ",".join(sorted(set(x)))),
                hits=("rule_id", "size"),
                fixmedins_code=("fixmedins_code", "first"),
                dr_code=("dr_code", "first"),
                psn_no=("psn_no", "first"),
            )
            .reset_index()
        )
        items.append(g)
    if rings is not None and not rings.empty:
        rs = book.analytics.ring
        r = rings.assign(
            kind="person",
            item_id=rings["entity_id"],
            score=w[rs.severity] * 2.0,
            amount=0,
            rules=rs.id,
            hits=1,
            psn_no=rings["entity_id"],
        )
        items.append(r[["kind", "item_id", "score", "amount", "rules", "hits", "fixmedins_code", "dr_code", "psn_no"]])
    if peers is not None and not peers.empty:
        out = peers[peers["outlier_on"] != ""]
        p = pd.DataFrame(
            {
                "kind": out["level"],
                "item_id": out["subject"] + "/" + out["med_type"],
                "score": out["max_z"].clip(upper=10.0),
                "amount": 0,
                "rules": "peer:" + out["outlier_on"],
                "hits": 1,
                "fixmedins_code": out["subject"].where(out["level"] == "institution", ""),
                "dr_code": out["subject"].where(out["level"] == "doctor", ""),
                "psn_no": "",
            }
        )
        items.append(p)
    if not items:
        return pd.DataFrame(
            columns=[
                "rank",
                "kind",
                "item_id",
                "score",
                "amount",
                "rules",
                "hits",
                "fixmedins_code",
                "dr_code",
                "psn_no",
            ]
        )
    qd = pd.concat(items, ignore_index=True).sort_values(
        ["score", "amount", "item_id"], ascending=[False, False, True], ignore_index=True
    )
    qd.insert(0, "rank", range(1, len(qd) + 1))
    return qd


def run_analytics(data_dir: str | Path, hits: pd.DataFrame, book: RuleBook | None = None) -> dict[str, pd.DataFrame]:
    book = book or default_rulebook()
    con = connect(data_dir, book)
    try:
        inst = peer_comparison(con, "institution", book)
        doc = peer_comparison(con, "doctor", book)
        rings = find_rings(con, book)
    finally:
        con.close()
    peers = pd.concat([inst, doc], ignore_index=True)
    queue = build_queue(hits, rings, peers, book)
    return {"peer_institution": inst, "peer_doctor": doc, "rings": rings, "queue": queue}
