"""The one coding-quality detector (yibao.supervision.coding): its patterns on constructed stays, its parameters,
payment and supervision agreeing case by case on one synthetic region, and scores that do not move when the
ground-truth labels are shuffled or dropped (labels only evaluate)."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest

from yibao.core.errors import PolicyError
from yibao.supervision import coding
from yibao.supervision.coding import check_rulebook_params, detect, load_coding_params
from yibao.supervision.knowledge import default_rulebook

TZ = dt.timezone(dt.timedelta(hours=8))
P = load_coding_params()
T0 = dt.datetime(2025, 3, 1, 9, tzinfo=TZ)


def stay(mid, psn="A", inst="H1", day=0.0, days=5.0, dx="I63.900", other="", med_type="21", gend="1"):
    b = T0 + dt.timedelta(days=day)
    return {
        "mdtrt_id": mid,
        "psn_no": psn,
        "fixmedins_code": inst,
        "dr_code": "D1",
        "med_type": med_type,
        "begntime": b,
        "endtime": b + dt.timedelta(days=days),
        "dise_codg": dx,
        "other_dise_codg": other,
        "gend": gend,
    }


def items(*pairs):
    return pd.DataFrame(list(pairs), columns=["mdtrt_id", "med_list_codg"])


def flagged(stays, its=None, params=P):
    f = detect(pd.DataFrame(stays), its if its is not None else items(), params)
    return {(m, k) for m, k in zip(f.mdtrt_id, f.flag, strict=True)}, f


def test_split_window_is_inclusive_and_counts_any_earlier_discharge():
    gap = P.split_admission.max_gap_days
    rows = [
        stay("S1", day=0, days=5),  # discharged on day 5
        stay("S2", day=5 + gap, days=2),  # exactly max_gap_days later: flagged
        stay("S3", psn="B", day=0, days=5),
        stay("S4", psn="B", day=5 + gap + 1 / 86_400, days=2),  # one second over: not flagged
        # an admission for another disease in between does not hide the readmission (as the in-care check reads it)
        stay("S5", psn="C", day=0, days=3, dx="I63.900"),
        stay("S6", psn="C", day=4, days=1, dx="K35.800"),
        stay("S7", psn="C", day=6, days=2, dx="I63.901"),
        stay("S8", psn="D", day=0, days=10),
        stay("S9", psn="D", day=5, days=2),  # overlaps S8: not a readmission
        stay("S10", psn="E", day=0, days=3, dx=""),
        stay("S11", psn="E", day=4, days=3, dx=""),  # no principal diagnosis: not judged
        stay("S12", psn="F", day=0, days=3, med_type="11"),
        stay("S13", psn="F", day=4, days=3, med_type="11"),  # clinic visits are not admissions
    ]
    got, f = flagged(rows)
    assert {m for m, k in got if k == "split_admission"} == {"S2", "S7"}
    assert dict(zip(f.mdtrt_id, f.previous, strict=True))["S7"] == "S5"
    assert int(dict(zip(f.mdtrt_id, f.gap_s, strict=True))["S2"]) == gap * 86_400


def test_split_same_institution_is_a_parameter():
    rows = [stay("S1", inst="H1"), stay("S2", inst="H2", day=6)]
    assert not flagged(rows)[0]
    other = P.model_copy(update={"split_admission": P.split_admission.model_copy(update={"same_institution": False})})
    assert flagged(rows, params=other)[0] == {("S2", "split_admission")}


def test_upcoding_needs_every_evidence_group():
    ev = default_rulebook().knowledge.dx_evidence
    assert len(ev["A41"]) == 2  # sepsis: a culture (or procalcitonin) AND a broad-spectrum antibiotic
    culture, antibiotic = ev["A41"][0][0], ev["A41"][1][0]
    rows = [
        stay("U1", other="I10;A41.900"),
        stay("U2", psn="B", other="A41.900"),
        stay("U3", psn="C", other="A41.900"),
        stay("U4", psn="D", other="I10"),
        stay("U5", psn="E", other="J96.000", med_type="11"),
    ]
    got, f = flagged(rows, items(("U2", culture), ("U3", culture), ("U3", antibiotic)))
    assert got == {("U1", "upcoding"), ("U2", "upcoding")}  # U1 billed nothing at all, U2 only the culture
    assert dict(zip(f.mdtrt_id, f.codes, strict=True))["U1"] == "A41.900"


def test_sex_mismatch_reads_the_one_list():
    rows = [
        stay("X1", psn="M", dx="O80.000", gend="1"),
        stay("X2", psn="F", dx="O80.000", gend="2"),
        stay("X3", psn="W", dx="N40.x00", gend="2", med_type="11"),  # every encounter is judged, not only stays
        stay("X4", psn="U", dx="N40.x00", gend=""),  # unrecorded sex: not judged
        stay("X5", psn="V", dx="N99.000", gend="1"),  # N99 (postprocedural, either sex) is not sex-specific
        stay("X6", psn="Q", dx="C62.900", gend="2"),
    ]
    got, f = flagged(rows)
    assert got == {("X1", "sex_mismatch"), ("X3", "sex_mismatch"), ("X6", "sex_mismatch")}
    # the in-care check reads the same list
    k = default_rulebook().knowledge
    assert all(k.sex_of_dx(c) for c in ("O80.000", "N40.x00", "C62.900")) and not k.sex_of_dx("N99.000")


def test_parameters_are_validated_and_match_the_in_care_rule(tmp_path):
    check_rulebook_params(default_rulebook().rule("SV-SPLIT-01").params, P)  # rules.yaml and coding.yaml agree
    with pytest.raises(PolicyError, match="differ from coding.yaml"):
        check_rulebook_params({**default_rulebook().rule("SV-SPLIT-01").params, "max_gap_days": 30}, P)
    bad = tmp_path / "coding.yaml"
    bad.write_text(
        (coding.PATH.read_text(encoding="utf-8")).replace("max_gap_days: 15", "max_gap_days: 0"), encoding="utf-8"
    )
    with pytest.raises(PolicyError) as e:
        load_coding_params(bad)
    assert e.value.field == "split_admission.max_gap_days"


# --- one synthetic region through both subsystems ---------------------------------------------------------


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from yibao.settlement.annual import settle_year
    from yibao.synth.cli import run_synth
    from yibao.synth.patterns import DEFAULT_RATES

    d = tmp_path_factory.mktemp("coding") / "region"
    rates = {**DEFAULT_RATES, "upcoding": 0.06, "split_admission": 0.15, "impersonation": 0.5}
    run_synth(people=4000, seed=23, out=d, db=None, year=2025, patterns=rates)
    settle_year(d)  # no scan has run: the purchase table is the one yibao synth wrote with the region
    return d


def test_payment_and_supervision_report_the_same_flags(region):
    from yibao.payment.service import run
    from yibao.supervision.batch import scan

    pay = run(region)
    sv = scan(region).hits
    sv_flags = {(m, coding.RULES[r]) for m, r in zip(sv.mdtrt_id, sv.rule_id, strict=True) if r in coding.RULES}
    cases = set(pay.cases.mdtrt_id)
    pay_flags = {
        (m, k) for m, k in zip(pay.quality.flags.mdtrt_id, pay.quality.flags.flag, strict=True) if k in coding.PATTERNS
    }
    # case by case over payment's cases: the same patterns, no more, no fewer
    for pattern in coding.PATTERNS:
        p = {m for m, k in pay_flags if k == pattern}
        s = {m for m, k in sv_flags if k == pattern and m in cases}
        assert p == s, (pattern, sorted(p ^ s)[:5])
        assert len(p) >= (3 if pattern == "sex_mismatch" else 10), (
            pattern,
            len(p),
        )  # every pattern is present in this region
    # payment's evaluation against the labels covers every shared pattern
    assert set(pay.quality.truth.flag) == set(coding.PATTERNS) and (pay.quality.truth.true_positives > 0).all()
    # and the detector's own answer on the region is what both of them report
    det = coding.detect_region(region)
    assert {(m, k) for m, k in zip(det.mdtrt_id, det.flag, strict=True)} == sv_flags


def _variant(src, dst, truth):
    """A copy of the region with the ground truth replaced (None: removed); unmanaged so the copies compare alike."""
    shutil.copytree(src, dst)
    (dst / "manifest.json").unlink()
    gt = dst / "ground_truth.parquet"
    if truth is None:
        gt.unlink()
    else:
        truth.to_parquet(gt, index=False)
    return dst


def _scores(d):
    from yibao.payment.service import run
    from yibao.supervision.reports import review_region

    rv = review_region(d)
    pay = run(d)
    return rv, {
        "hits": rv.hits.sort_values(["rule_id", "entity_id"], ignore_index=True),
        "queue": rv.analytics["queue"],
        "peer_institution": rv.analytics["peer_institution"],
        "peer_doctor": rv.analytics["peer_doctor"],
        "rings": rv.analytics["rings"],
        "payment_flags": pay.quality.flags.sort_values(["flag", "mdtrt_id"], ignore_index=True),
        "payment_peers": pay.quality.peers,
    }


def test_scores_do_not_depend_on_the_labels(region, tmp_path):
    truth = pd.read_parquet(region / "ground_truth.parquet")
    rng = np.random.default_rng(1)
    shuffled = truth.assign(
        entity_id=rng.permutation(truth.entity_id.to_numpy()), pattern=rng.permutation(truth.pattern.to_numpy())
    )
    base_rv, base = _scores(_variant(region, tmp_path / "labelled", truth))
    shuf_rv, shuf = _scores(_variant(region, tmp_path / "shuffled", shuffled))
    none_rv, none = _scores(_variant(region, tmp_path / "unlabelled", None))
    assert len(base["hits"]) and len(base["queue"])
    # the stock rule ran on the purchase table yibao synth wrote (the scan used to build it from the labels)
    assert not base_rv.skipped and (base["hits"].rule_id == "SV-STOCK-01").sum() >= 20
    for name, frame in base.items():
        pd.testing.assert_frame_equal(frame, shuf[name], obj=f"{name} (shuffled labels)")
        pd.testing.assert_frame_equal(frame, none[name], obj=f"{name} (no labels)")
    # the labels did change what the evaluation says: they were read, only not by the scores
    assert none_rv.scores is None
    assert not base_rv.scores["true_hits"].equals(shuf_rv.scores["true_hits"])
