"""Scoring on a small synthetic region: every rule finds its own injected pattern; queue, API, reports."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from yibao.supervision.reports import review_region, write_excel, write_html
from yibao.synth.patterns import DEFAULT_RATES, PATTERNS
from yibao.synth.region import write_parquet


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    d = tmp_path_factory.mktemp("sv_region")
    rates = {k: min(1.0, v * 2) for k, v in DEFAULT_RATES.items()}
    write_parquet(d, 12_000, 5, patterns=rates)
    return review_region(d)


def test_default_rates_name_only_registered_patterns():
    assert set(DEFAULT_RATES) <= set(PATTERNS)


def test_every_rule_finds_its_injected_pattern(review):
    s = review.scores.set_index("rule_id")
    labelled = s[s.labelled > 0]
    assert len(labelled) >= 18  # all rule families have labels in this region
    assert not labelled.failed.any(), labelled[labelled.failed]
    assert (labelled.recall >= 0.85).all(), labelled[labelled.recall < 0.85]
    assert s.loc["SV-RING-01", "recall"] == 1.0
    pat = review.pattern_scores.set_index("pattern")
    assert set(DEFAULT_RATES) <= set(pat.index)
    assert (pat.recall >= 0.85).all(), pat
    # the two the issue-6 target (>= 0.95) was short on: upcoding (routine items no longer count as
    # treatment evidence) and stock mismatch (relative slack; opening stock scales with volume)
    assert pat.loc["upcoding", "recall"] >= 0.95, pat.loc["upcoding"]
    assert pat.loc["stock_mismatch", "recall"] >= 0.95, pat.loc["stock_mismatch"]
    assert s.loc["SV-UPCODE-01", "precision"] >= 0.95 and s.loc["SV-STOCK-01", "precision"] >= 0.95


def test_ranked_queue_is_precise_at_the_top(review):
    q = review.queue_scores
    assert q.loc[q["top"] == 100, "precision"].iloc[0] >= 0.9
    assert q["recall"].dropna().iloc[-1] >= 0.95
    queue = review.analytics["queue"]
    assert list(queue["rank"][:3]) == [1, 2, 3] and queue["score"].is_monotonic_decreasing


def test_reports_are_written(review, tmp_path):
    import openpyxl

    x = write_excel(review, tmp_path / "sv.xlsx")
    wb = openpyxl.load_workbook(x, read_only=True)
    assert {"rules", "queue", "hits", "scores", "rings"} <= set(wb.sheetnames)
    h = write_html(review, tmp_path / "sv.html").read_text(encoding="utf-8")
    assert "SYNTHETIC" in h and "SV-PHANTOM-01" in h


def test_api_router(db_engine):
    from yibao.supervision.api import router

    app = FastAPI()
    app.state.yibao_engine = db_engine
    app.include_router(router)
    c = TestClient(app)
    assert any(r["id"] == "SV-DUP-01" for r in c.get("/api/v1/supervision/rules").json())
    claim = {
        "mdtrt_id": "M1",
        "person": {"psn_no": "P1", "gend": "2", "brdy": "1980-01-01"},
        "fixmedins_code": "H1",
        "hosp_lv": 1,
        "med_type": "11",
        "begntime": "2025-03-01T09:00:00+08:00",
        "dise_codg": "N40.x00",
        "lines": [
            {
                "feedetl_sn": 1,
                "med_list_codg": "990400000280000",
                "cnt_milli": 1000,
                "pric": 6000,
                "det_item_fee_sumamt": 6000,
            }
        ],
    }
    v = c.post("/api/v1/supervision/check", json=claim).json()
    assert v["action"] == "refuse" and {f["rule_id"] for f in v["findings"]} == {"SV-SCOPE-SEX", "SV-IMP-01"}
    p = c.post("/api/v1/supervision/penalty", json={"violation": "institution_fraud", "loss_fen": 1_000_000}).json()
    assert (p["fine_min_fen"], p["fine_max_fen"]) == (3_000_000, 4_000_000)
    bad = c.post("/api/v1/supervision/penalty", json={"violation": "nope", "loss_fen": 1})
    assert bad.status_code == 400 and bad.json()["detail"]["field"] == "violation"
    # case steps need to know who acts: without the console's access control they are refused (the workflow over
    # REST is tested in test_supervision_cases_workflow.py)
    r = c.post(
        "/api/v1/supervision/cases", json={"subject_kind": "institution", "subject_code": "H1", "source": "SV-DUP-01"}
    )
    assert r.status_code == 503 and r.json()["detail"]["code"] == "E_CASE_AUTH"
    g = c.get("/api/v1/supervision/credit/institution/H1").json()
    assert g["grade"] == "good" and not g["blacklisted"]


def test_injected_labels_point_at_real_records():
    """Every label names a line, encounter, person or institution–item pair that exists in the tables."""
    from yibao.synth.region import collect_region

    t = collect_region(6_000, 11, patterns={**DEFAULT_RATES, "ring": 0.002})
    fee = t["fee_detail"].to_pandas()
    enc = t["encounter"].to_pandas()
    gt = t["ground_truth"].to_pandas()
    lines = set(fee.mdtrt_id + "#" + fee.feedetl_sn.map("{:06d}".format))
    assert len(lines) == len(fee)  # line numbers stay unique within an encounter
    pairs = set(
        fee.merge(enc[["mdtrt_id", "fixmedins_code"]], on="mdtrt_id").pipe(
            lambda d: d.fixmedins_code + "#" + d.med_list_codg
        )
    )
    known = {
        "fee_detail": lines,
        "encounter": set(enc.mdtrt_id),
        "person": set(t["person"].to_pandas().psn_no),
        "inst_item": pairs,
    }
    for (entity, pattern), g in gt.groupby(["entity", "pattern"]):
        missing = set(g.entity_id) - known[entity]
        assert not missing, f"{pattern}: {len(missing)} labels name no {entity}, e.g. {sorted(missing)[:3]}"
    assert set(DEFAULT_RATES) <= set(gt.pattern)
    # lines stay grouped by encounter, encounters in id order (what the batch settlement expects)
    assert enc.mdtrt_id.is_monotonic_increasing
    assert (fee.mdtrt_id.ne(fee.mdtrt_id.shift()).cumsum().groupby(fee.mdtrt_id).nunique() == 1).all()


def test_rate_is_the_share_of_eligible_entities():
    from yibao.synth.region import collect_region

    base = collect_region(3_000, 4)
    dup = collect_region(3_000, 4, patterns={"duplicate_charge": 0.05})
    n_enc = base["encounter"].num_rows
    n = (dup["ground_truth"].to_pandas().pattern == "duplicate_charge").sum()
    # eligible: encounters whose last line is not an item with a payment restriction
    assert 0.9 * 0.05 * n_enc <= n <= 0.05 * n_enc + 1
