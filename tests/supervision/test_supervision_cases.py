"""Discretion benchmarks, the case workflow (every step recorded, illegal steps refused) and credit grades."""

from __future__ import annotations

import datetime as dt

import pytest

from yibao.core.db import session_scope
from yibao.supervision.cases import CaseError, CaseService, default_workflow
from yibao.supervision.credit import credit_grade, default_credit_rules, is_eligible
from yibao.supervision.discretion import Facts, default_benchmarks
from yibao.supervision.knowledge import SupervisionDataError
from yibao.supervision.models import CreditPoint

BM = default_benchmarks()


# --- discretion benchmarks ---------------------------------------------------------------------


def test_fine_range_is_the_band_of_the_statutory_multiple():
    # 条例 第四十条: 2-5 x the loss; general band 3-4 x; loss 10,000.00 yuan
    p = BM.penalty(Facts("institution_fraud", 1_000_000, "general"))
    assert (p.fine_min_fen, p.fine_max_fen) == (3_000_000, 4_000_000)
    assert p.recover_fen == 1_000_000 and p.procedure == "general" and p.basis == "条例 第四十条"
    # 第三十八条, serious band 1.7-2 x of 12,345.67 yuan, rounded half up to the fen
    p = BM.penalty(Facts("institution_irregular", 1_234_567, "serious"))
    assert (p.fine_min_fen, p.fine_max_fen) == (2_098_764, 2_469_134)
    # fixed amounts: 第三十九条 minor band 10,000-20,000 yuan
    p = BM.penalty(Facts("institution_management", 0, "minor"))
    assert (p.fine_min_fen, p.fine_max_fen) == (1_000_000, 2_000_000)


def test_aggravating_and_mitigating_move_the_band():
    assert BM.penalty(Facts("person_fraud", 100_000, "general", aggravating=True)).band == "serious"
    p = BM.penalty(Facts("person_fraud", 100_000, "general", mitigating=True))
    assert p.band == "minor" and (p.fine_min_fen, p.fine_max_fen) == (200_000, 300_000)


def test_no_penalty_without_fault_and_first_offence_may_go_unpunished():
    p = BM.penalty(Facts("institution_irregular", 500_000, "general", no_fault=True))
    assert (p.fine_min_fen, p.fine_max_fen, p.waived) == (0, 0, "must_waive")
    assert p.recover_fen == 500_000  # the loss is still returned
    p = BM.penalty(Facts("institution_irregular", 80_000, "general", first_offence=True, corrected=True))
    assert p.waived == "may_waive" and p.fine_min_fen == 0 and p.fine_max_fen == 136_000
    # not corrected, or harm above the threshold (1,000 yuan): no waiver
    assert BM.penalty(Facts("institution_irregular", 80_000, "general", first_offence=True)).waived == ""
    assert (
        BM.penalty(Facts("institution_irregular", 100_001, "general", first_offence=True, corrected=True)).waived == ""
    )


def test_summary_procedure_and_legal_review_thresholds():
    # a person, fine at most 200 yuan: summary procedure
    p = BM.penalty(Facts("person_fraud", 4_000, "minor"))
    assert p.fine_max_fen == 12_000 and p.procedure == "summary" and not p.legal_review
    # an institution, fine of 100,000 yuan or more: legal review
    p = BM.penalty(Facts("institution_fraud", 3_000_000, "minor"))
    assert p.fine_max_fen == 9_000_000 and not p.legal_review and p.procedure == "general"  # 90,000 yuan
    p = BM.penalty(Facts("institution_fraud", 4_000_000, "minor"))
    assert p.fine_max_fen == 12_000_000 and p.legal_review  # 120,000 yuan
    assert BM.penalty(Facts("institution_irregular", 1_000, "minor", sanctions=("suspension",))).legal_review


def test_bad_facts_are_refused():
    with pytest.raises(SupervisionDataError, match="unknown violation"):
        BM.penalty(Facts("speeding", 1))
    with pytest.raises(SupervisionDataError, match="loss_fen"):
        BM.penalty(Facts("person_fraud", -1))


# --- case workflow --------------------------------------------------------------------------------


@pytest.fixture
def svc(db_engine):
    return CaseService(db_engine)


def test_full_case_is_recorded_step_by_step(svc, db_engine):
    cid = svc.open_clue("institution", "H99000001", "SV-PHANTOM-01", actor="analyst", loss_fen=200_000)
    svc.file(cid, actor="chief")
    svc.investigate(cid, actor="inspector")
    facts = Facts("institution_fraud", 200_000, "general")
    c = svc.decide(cid, facts, 700_000, actor="chief")
    assert c.state == "decided" and c.fine_fen == 700_000 and c.band == "general" and not c.major
    svc.recover(cid, 150_000, actor="finance")
    svc.recover(cid, 50_000, actor="finance")
    svc.publish(cid, actor="press")
    c = svc.close(cid, actor="chief")
    assert c.state == "closed" and c.recovered_fen == 200_000
    ev = svc.events(cid)
    assert [e.action for e in ev] == ["open", "file", "investigate", "decide", "recover", "recover", "publish", "close"]
    assert [e.to_state for e in ev][-1] == "closed" and all(e.actor for e in ev)
    # deciding gave the institution points (general band: 6)
    g = credit_grade(db_engine, "institution", "H99000001")
    assert g.points == 6 and g.grade == "medium" and not g.blacklisted


def test_illegal_transition_is_refused_and_changes_nothing(svc):
    cid = svc.open_clue("physician", "D1", "complaint", actor="a")
    with pytest.raises(CaseError, match="cannot publish a case in state 'clue'") as e:
        svc.publish(cid, actor="a")
    assert "file" in e.value.message_en and e.value.field == "action" and "线索" in e.value.message_zh
    assert svc.get(cid).state == "clue" and len(svc.events(cid)) == 1
    svc.dismiss(cid, actor="a", note="no evidence")
    with pytest.raises(CaseError, match="final state"):
        svc.file(cid, actor="a")


def test_major_decision_needs_legal_review(svc):
    cid = svc.open_clue("institution", "H2", "SV-IMP-02", actor="a", loss_fen=5_000_000)
    svc.file(cid, actor="a")
    svc.investigate(cid, actor="a")
    facts = Facts("institution_fraud", 5_000_000, "general")
    with pytest.raises(CaseError, match="legal review"):
        svc.decide(cid, facts, 16_000_000, actor="a")
    assert svc.get(cid).state == "investigating"  # nothing changed
    svc.submit_review(cid, facts, actor="a")
    svc.review(cid, passed=False, actor="legal", note="evidence incomplete")
    assert svc.get(cid).state == "investigating"
    svc.submit_review(cid, facts, actor="a")
    svc.review(cid, passed=True, actor="legal")
    c = svc.decide(cid, facts, 16_000_000, actor="a")
    assert c.state == "decided" and c.major


def test_fine_outside_the_benchmark_is_refused(svc):
    cid = svc.open_clue("person", "990000000001", "SV-IMP-01", actor="a", loss_fen=10_000)
    svc.file(cid, actor="a")
    svc.investigate(cid, actor="a")
    with pytest.raises(CaseError, match="outside the benchmark range 30000..40000"):
        svc.decide(cid, Facts("person_fraud", 10_000, "general"), 50_000, actor="a")
    assert svc.get(cid).state == "investigating"
    svc.decide(cid, Facts("person_fraud", 10_000, "general"), 30_000, actor="a")
    with pytest.raises(CaseError, match="would exceed the loss"):
        svc.recover(cid, 10_001, actor="a")
    assert svc.get(cid).recovered_fen == 0 and svc.get(cid).state == "decided"


def test_summary_procedure_only_for_small_fines(svc):
    small = Facts("person_fraud", 5_000, "minor")  # fine at most 150 yuan: summary allowed
    cid = svc.open_clue("person", "990000000002", "SV-IMP-02", actor="a", loss_fen=5_000)
    c = svc.decide_summary(cid, small, 10_000, actor="inspector")
    assert c.state == "decided" and c.procedure == "summary"
    assert [e.action for e in svc.events(cid)] == ["open", "decide_summary"]
    big = Facts("person_fraud", 100_000, "minor")
    cid2 = svc.open_clue("person", "990000000003", "SV-IMP-02", actor="a", loss_fen=100_000)
    with pytest.raises(CaseError, match="general procedure"):
        svc.decide_summary(cid2, big, 200_000, actor="a")
    assert svc.get(cid2).state == "clue"


def test_transfer_to_another_agency(svc):
    cid = svc.open_clue("institution", "H3", "SV-RING-01", actor="a")
    svc.file(cid, actor="a")
    svc.investigate(cid, actor="a")
    with pytest.raises(CaseError, match="unknown agency"):
        svc.transfer(cid, "army", actor="a")
    c = svc.transfer(cid, "public_security", actor="a", note="organised fraud: 行刑衔接")
    assert c.state == "transferred" and c.transferred_to == "public_security"


def test_actor_is_required(svc):
    cid = svc.open_clue("institution", "H4", "x", actor="a")
    with pytest.raises(CaseError, match="actor"):
        svc.file(cid, actor="")


def test_no_fault_decision_gives_no_points(svc, db_engine):
    cid = svc.open_clue("institution", "H5", "x", actor="a", loss_fen=100)
    svc.file(cid, actor="a")
    svc.investigate(cid, actor="a")
    svc.decide(cid, Facts("institution_irregular", 100, "general", no_fault=True), 0, actor="a")
    assert credit_grade(db_engine, "institution", "H5").points == 0


# --- credit -------------------------------------------------------------------------------------------


def test_grades_by_points_and_blacklist():
    r = default_credit_rules()
    assert r.grade_for(0)[0] == "good"
    assert r.grade_for(5)[0] == "ordinary" and r.grade_for(6)[0] == "medium"
    g, zh, black = r.grade_for(12)
    assert (g, black) == ("severe", True) and zh == "严重失信"
    assert r.grade_for(100)[0] == "serious_breach" and r.grade_for(100)[2]


def test_procurement_eligibility_follows_the_window(db_engine):
    now = dt.datetime(2025, 6, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with session_scope(db_engine) as s:
        s.add(
            CreditPoint(
                subject_kind="enterprise", subject_code="F1", points=15, case_id=None, reason="bribery 商业贿赂", at=now
            )
        )
    assert not is_eligible(db_engine, "enterprise", "F1", on=dt.date(2025, 6, 2))
    assert credit_grade(db_engine, "enterprise", "F1", on=dt.date(2025, 6, 2)).blacklisted
    assert is_eligible(db_engine, "enterprise", "F1", on=dt.date(2026, 6, 2))  # outside the 365-day window
    assert is_eligible(db_engine, "enterprise", "F2", on=dt.date(2025, 6, 2))


def test_workflow_file_is_consistent():
    wf = default_workflow()
    assert wf.next_state("clue", "file") == "filed"
    assert wf.next_state("legal_review", "decide") == "decided"
    assert {"public_security", "health_commission"} <= set(wf.agencies)


def test_history_from_the_database(db_engine):
    from yibao.codes import registry
    from yibao.settlement import records
    from yibao.supervision.history import history_for

    tz = dt.timezone(dt.timedelta(hours=8))
    t = dt.datetime(2025, 3, 1, 9, tzinfo=tz)
    with session_scope(db_engine) as s:
        s.add(
            registry.Person(
                psn_no="P9",
                certno="x",
                psn_name="合成",
                gend="1",
                brdy=dt.date(1950, 1, 1),
                insutype="310",
                psn_type="retired",
                civil_servant=False,
                insuplc_admdvs="990100",
                assistance="",
                contribution_base=0,
                acct_balc=0,
                family_id="F9",
                synthetic=True,
            )
        )
        s.flush()
        for mid, b, e, way in (
            ("A1", t - dt.timedelta(days=9), t - dt.timedelta(days=2), "1"),
            ("A0", t - dt.timedelta(days=200), t - dt.timedelta(days=190), "1"),
            ("A2", t + dt.timedelta(days=5), t + dt.timedelta(days=9), "5"),
        ):
            s.add(
                records.Encounter(
                    mdtrt_id=mid,
                    psn_no="P9",
                    fixmedins_code="H1",
                    med_type="21",
                    begntime=b,
                    endtime=e,
                    policy_year=2025,
                    dise_codg="I63.900",
                    other_dise_codg="",
                    oprn_codg="",
                    dscg_way=way,
                    dept_code="A03",
                    dr_code="D1",
                    mdtrtarea_admvs="990101",
                    mulaid_payer_psn_no="",
                    lt_rx_confirmed=False,
                    synthetic=True,
                )
            )
    with session_scope(db_engine) as s:
        h = history_for(s, "P9", t)
    assert [a.mdtrt_id for a in h.admissions] == ["A1"]
    assert h.death_time == t + dt.timedelta(days=9)
