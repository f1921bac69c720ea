"""Enrolment (参保缴费): hand-worked contribution parts, base clamping, coverage through the real settlement path."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import claim, line
from tests.settlement_support import D, facts, inpatient_e1, snapshot, svc  # noqa: F401  (svc is a fixture)
from yibao.core import db as ydb
from yibao.core.errors import ClaimRejected
from yibao.enrolment import service as en
from yibao.enrolment.models import Contribution, InsuredPeriod
from yibao.enrolment.params import EnrolmentError, clamp_base, employee_parts, late_fee, load_rules, rules_on

RULES = rules_on(load_rules(), dt.date(2025, 1, 1))
EN_MODELS = (InsuredPeriod, Contribution)


def test_employee_parts_hand_worked():
    # national-default: average wage 8,000.00 yuan; floor 60 % = 4,800.00; ceiling 300 % = 24,000.00; 8 % + 2 %
    assert employee_parts(1_000_000, RULES.employee) == (1_000_000, 80_000, 20_000)
    assert employee_parts(300_000, RULES.employee) == (480_000, 38_400, 9_600)  # clamped up to the floor
    assert employee_parts(3_000_000, RULES.employee) == (2_400_000, 192_000, 48_000)  # clamped to the ceiling
    assert employee_parts(555_555, RULES.employee) == (555_555, 44_444, 11_111)  # 44,444.4 and 11,111.1 round down
    assert employee_parts(555_563, RULES.employee) == (555_563, 44_445, 11_111)  # 44,445.04 / 11,111.26


def test_negative_wage_refused():
    with pytest.raises(EnrolmentError):
        clamp_base(-1, RULES.employee)


def test_late_fee_hand_worked():
    assert late_fee(100_000, 10, 5) == 500  # 1,000.00 yuan × 0.05 % × 10 days = 5.00 yuan
    assert late_fee(100_000, 0, 5) == 0


@given(st.integers(min_value=0, max_value=10**9))
def test_base_always_within_floor_and_ceiling(wage):
    base, employer, individual = employee_parts(wage, RULES.employee)
    assert 480_000 <= base <= 2_400_000
    assert employer == (base * 800 + 5000) // 10_000 and individual == (base * 200 + 5000) // 10_000


def test_no_records_keeps_todays_behaviour(svc, db_engine):
    with ydb.session_scope(db_engine) as s:
        assert en.coverage_on(s, "E1", "310", dt.date(2025, 1, 5)) is None
    assert svc.settle(claim("OP1", facts("E1"), [line(1, "A-DRUG", 300)], med_type="11", when=D(1, 5)), msgid="m-0")


def test_stopped_person_refused_with_nothing_written(svc, db_engine):
    en.enrol(db_engine, "E1", "310", dt.date(2024, 1, 1))
    en.stop(db_engine, "E1", "310", dt.date(2024, 12, 31), reason="left employer")
    before = snapshot(db_engine)
    with pytest.raises(ClaimRejected, match="stopped"):
        svc.settle(inpatient_e1(), msgid="m-1")
    assert snapshot(db_engine) == before


def test_enrolled_and_paid_person_settles(svc, db_engine):
    en.enrol(db_engine, "E1", "310", dt.date(2024, 1, 1))
    en.pay_employee_month(db_engine, "E1", "2024-12", 800_000, dt.date(2024, 12, 15))
    assert svc.settle(inpatient_e1(), msgid="m-1").setl_id


def test_employee_arrears_suspend_and_backpay_restores(svc, db_engine):
    en.enrol(db_engine, "E1", "310", dt.date(2024, 9, 1))
    for m in ("2024-10", "2024-11", "2024-12"):
        en.pay_employee_month(db_engine, "E1", m, 800_000, None)
    with ydb.session_scope(db_engine) as s:
        assert en.coverage_on(s, "E1", "310", dt.date(2025, 1, 20)).reason == "arrears"
        assert [c.period for c in en.arrears(s)] == ["2024-10", "2024-11", "2024-12"]
    before = snapshot(db_engine)
    with pytest.raises(ClaimRejected, match="arrears"):
        svc.settle(inpatient_e1(), msgid="m-1")
    assert snapshot(db_engine) == before
    row = en.backpay(db_engine, "E1", "310", "2024-10", dt.date(2025, 1, 11))
    # 640 + 160 = 800.00 yuan due by 2024-11-01, paid 71 days late at 0.05 %/day: 800 × 0.0005 × 71 = 28.40 yuan
    assert row.late_fee == 2_840 and row.back_payment
    with ydb.session_scope(db_engine) as s:
        assert en.coverage_on(s, "E1", "310", dt.date(2025, 1, 20)).covered
    assert svc.settle(inpatient_e1(), msgid="m-1").setl_id


def test_resident_waiting_period_and_backpay(svc, db_engine):
    en.enrol(db_engine, "R2", "390", dt.date(2025, 1, 1))
    with ydb.session_scope(db_engine) as s:
        assert en.coverage_on(s, "R2", "390", dt.date(2025, 2, 1)).reason == "waiting"  # 90 days from 2025-01-01
        assert en.coverage_on(s, "R2", "390", dt.date(2025, 5, 1)).reason == "arrears"  # 2025 not paid
    en.pay_resident_year(db_engine, "R2", 2025, None)
    en.backpay(db_engine, "R2", "390", "2025", dt.date(2025, 5, 1))
    with ydb.session_scope(db_engine) as s:
        assert en.coverage_on(s, "R2", "390", dt.date(2025, 7, 1)).reason == "waiting"  # 90 days after 补缴
        assert en.coverage_on(s, "R2", "390", dt.date(2025, 7, 30)).covered
        row = s.scalars(select(Contribution).where(Contribution.psn_no == "R2")).one()
        assert (row.individual_part, row.subsidy) == (38_000, 67_000)


def test_bad_requests_refused_and_nothing_changes(svc, db_engine):
    en.enrol(db_engine, "E1", "310", dt.date(2024, 1, 1))
    en.pay_employee_month(db_engine, "E1", "2024-12", 800_000, dt.date(2024, 12, 15))
    before = snapshot(db_engine, EN_MODELS)
    bad = [
        lambda: en.enrol(db_engine, "E1", "310", dt.date(2024, 6, 1)),  # overlaps the open period
        lambda: en.enrol(db_engine, "NOPE", "310", dt.date(2024, 6, 1)),  # unknown person
        lambda: en.enrol(db_engine, "E1", "999", dt.date(2024, 6, 1)),  # unknown scheme
        lambda: en.stop(db_engine, "E1", "310", dt.date(2023, 1, 1)),  # reversed dates
        lambda: en.pay_employee_month(db_engine, "E1", "2024-12", 800_000, None),  # duplicate month
        lambda: en.pay_employee_month(db_engine, "E1", "2024-13", 800_000, None),  # bad month
        lambda: en.pay_employee_month(db_engine, "E1", "2025-01", -5, None),  # negative wage
        lambda: en.backpay(db_engine, "E1", "310", "2024-12", dt.date(2025, 1, 1)),  # already paid
        lambda: en.set_deemed_years(db_engine, "E1", -1, "x"),
    ]
    for call in bad:
        with pytest.raises(EnrolmentError):
            call()
    assert snapshot(db_engine, EN_MODELS) == before


def test_account_credit_is_idempotent_per_month(svc, db_engine):
    first = svc.credit_accounts(dt.date(2025, 1, 1))
    again = svc.credit_accounts(dt.date(2025, 1, 1))
    assert first.accounts > 0 and again.accounts == 0 and again.already == first.accounts


def test_demo_enrols_pays_and_shows_the_refusal(svc, db_engine):
    from yibao.demo.enrolment import demo_enrolment

    lines = demo_enrolment(db_engine)
    # E2 (retired, base 0 → the 4,800.00 floor) and E1 (8,000.00): 8 % and 2 % of each
    assert "E2 enrolled 2024-01-01; 2025-01 base 4,800.00 → employer 384.00 + individual 96.00 yuan" in lines[0]
    assert "E1 enrolled 2024-01-01; 2025-01 base 8,000.00 → employer 640.00 + individual 160.00 yuan" in lines[1]
    assert "resident R2 paid 2025: 380.00 yuan + subsidy 670.00" in lines[2]
    assert "a claim of E1 on 2025-03-10 is refused" in lines[3] and "已停保" in lines[3]


def test_crediting_follows_enrolment_and_the_recorded_base(svc, db_engine):
    from yibao.enrolment.crediting import credit_enrolled

    en.enrol(db_engine, "E1", "310", dt.date(2024, 1, 1))
    en.pay_employee_month(db_engine, "E1", "2025-01", 1_000_000, dt.date(2025, 1, 10))  # recorded base 10,000.00
    en.enrol(db_engine, "C1", "310", dt.date(2024, 1, 1))
    en.stop(db_engine, "C1", "310", dt.date(2024, 12, 31))
    run = credit_enrolled(db_engine, dt.date(2025, 1, 1))
    with ydb.session_scope(db_engine) as s:
        from yibao.settlement.records import AccountLedger as L

        got = dict(s.execute(select(L.psn_no, L.amount).where(L.setl_id == "credit:2025-01")).all())
    assert got["E1"] == 20_000  # 2 % of the recorded 10,000.00, not the register's 8,000.00
    assert "C1" not in got and run.not_covered == 1
    again = credit_enrolled(db_engine, dt.date(2025, 1, 1))
    assert again.accounts == 0 and again.already == run.accounts
    assert svc.credit_accounts(dt.date(2025, 1, 1)).accounts == 0  # the same marker: the old job credits nobody twice
