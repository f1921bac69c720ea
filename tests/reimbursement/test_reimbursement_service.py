"""Manual reimbursement (手工报销): paper claims settled by the same engine, the review workflow, refusals.

Hand-worked amounts use the insured place's policy (990100: example-city-a.yaml, inheriting national-default)
and the hand-made list of tests/factories.py:

* resident (390) inpatient, level 3: deductible ¥1,000 per admission, 65 % (national-default); cross-province
  unfiled −10 points (illustrative, cross_province.unfiled_ratio_reduction) → 55 %;
* employee (310) inpatient, level 2, 2025: deductible ¥600, 90 % (example-city-a); the personal account pays
  the person's part.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.factories import catalog
from yibao.benefits.policy import PolicyBook
from yibao.codes import registry
from yibao.core import db as ydb
from yibao.crossregion.service import FilingRequest, add_filing
from yibao.reimbursement.models import ManualClaim, ManualClaimLine, ManualClaimStep, ManualInvoice
from yibao.reimbursement.params import ReimbursementError, ReimbursementForbidden, load_rules
from yibao.reimbursement.service import (
    Actor,
    ClaimRequest,
    InvoiceLine,
    ReimbursementService,
    engine_mdtrt_id,
    request_from_dict,
)
from yibao.settlement import records
from yibao.settlement.service import SettlementService

REGION, SUZHOU = "990100", "320500"
TODAY = dt.datetime(2025, 6, 1, 9, tzinfo=ydb.SHANGHAI)
CLERK, FIRST, SECOND = Actor("clerk1", "bureau"), Actor("rev1", "bureau"), Actor("rev2", "bureau")


def _person(psn_no: str, insutype: str, psn_type: str, balance: int = 0) -> registry.Person:
    return registry.Person(
        psn_no=psn_no,
        gend="1",
        brdy=dt.date(1970, 5, 1),
        insutype=insutype,
        psn_type=psn_type,
        civil_servant=False,
        insuplc_admdvs=REGION,
        assistance="",
        contribution_base=0,
        acct_balc=balance,
        synthetic=True,
    )


@pytest.fixture
def svc(db_engine) -> ReimbursementService:
    with ydb.session_scope(db_engine) as s:
        for p in ("R1", "R2"):
            s.add(_person(p, "390", "resident"))
        for p in ("E1", "E2"):
            s.add(_person(p, "310", "in_service", balance=50000))
        s.add(registry.Institution(fixmedins_code="H2", fixmedins_type="hospital", hosp_lv=2, admdvs=REGION))
    return ReimbursementService(db_engine, PolicyBook.default(), catalog(), clock=lambda: TODAY)


CROSS_LINES = (
    InvoiceLine("SZ-0001", 500000, med_list_codg="A-DRUG", item_text="甲类药"),  # ¥5,000 甲类
    InvoiceLine("SZ-0001", 100000, med_list_codg="B-DRUG", item_text="乙类药"),  # ¥1,000 乙类, 10 % self-pay first
    InvoiceLine("SZ-0002", 30000, quantity_milli=3000, item_text="护工费 (发票原文)"),  # ¥300, no national code
)


def cross_request(psn_no: str = "R1", **kw) -> ClaimRequest:
    base = dict(
        psn_no=psn_no,
        med_type="21",
        begin_date=dt.date(2025, 3, 1),
        end_date=dt.date(2025, 3, 8),
        reason="cross_province",
        dise_codg="J18.9",
        provider_name="苏州某医院 (synthetic)",
        provider_admdvs=SUZHOU,
        hosp_lv=3,
        documents=("invoice", "itemised_bill", "discharge_summary"),
        synthetic=True,
        lines=CROSS_LINES,
    )
    base.update(kw)
    return ClaimRequest(**base)


def approve(svc: ReimbursementService, cid: int) -> dict:
    svc.review(cid, "submit", CLERK)
    svc.review(cid, "first_review", FIRST, comment="票据齐全")
    return svc.review(cid, "approve", SECOND, comment="复核通过")


def counts(engine) -> tuple[int, ...]:
    with ydb.session_scope(engine) as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t))
            for t in (ManualClaim, ManualClaimLine, ManualInvoice, ManualClaimStep, records.Settlement)
        )


def test_unfiled_cross_province_paper_claim_is_paid_the_hand_worked_amount(svc, db_engine):
    cid = svc.open_claim(CLERK, cross_request())
    d = approve(svc, cid)
    # medfee 5,000 + 1,000 + 300 = ¥6,300; in scope 5,000 + 900 = ¥5,900; deductible ¥1,000;
    # unfiled: 55 % of ¥4,900 = ¥2,695 (resident: no personal account)
    assert d["status"] == "paid" and d["reimbursed_fen"] == 269500
    full = svc.get(cid)
    st = full["settlement"]
    assert (st["medfee_sumamt"], st["inscp_scp_amt"], st["act_pay_dedc"]) == (630000, 590000, 100000)
    assert (st["preselfpay_amt"], st["fulamt_ownpay_amt"]) == (10000, 30000)  # the uncoded line is fully self-paid
    assert (st["hifp_pay"], st["pool_prop_selfpay_bp"], st["acct_pay"]) == (269500, 5500, 0)
    assert [x["uncoded"] for x in full["lines"]] == [False, False, True]
    with ydb.session_scope(db_engine) as s:
        row = s.get(records.Settlement, d["setl_id"])
        assert row is not None and row.mdtrt_id == engine_mdtrt_id(cid) and not row.refd_setl_flag
        inst = s.get(registry.Institution, row.fixmedins_code)
        assert inst is not None and (inst.admdvs, inst.hosp_lv, inst.fixmedins_type) == (SUZHOU, 3, "out_of_network")
        acc = s.scalars(select(records.Accumulator).where(records.Accumulator.psn_no == "R1")).all()
        assert acc  # the engine's accumulators moved, as for a direct settlement


def test_filed_cross_province_claim_takes_the_filing_from_the_register(svc, db_engine):
    with ydb.session_scope(db_engine) as s:
        add_filing(s, FilingRequest("R2", "390", "temporary", REGION, SUZHOU, dt.date(2025, 1, 1)))
    d = approve(svc, svc.open_claim(CLERK, cross_request("R2", lines=CROSS_LINES[:2])))
    assert d["reimbursed_fen"] == 318500  # filed: 65 % of ¥4,900, no reduction (filed_ratio_reduction 0)


def test_manual_claim_pays_what_the_direct_settlement_of_the_same_care_pays(svc, db_engine):
    lines = (InvoiceLine("H2-77", 200000, med_list_codg="A-DRUG"), InvoiceLine("H2-77", 40000, item_text="陪护床"))
    req = ClaimRequest(
        "E1",
        "21",
        dt.date(2025, 4, 1),
        dt.date(2025, 4, 5),
        "system_outage",
        "J18.9",
        fixmedins_code="H2",
        documents=("invoice", "itemised_bill", "outage_statement", "discharge_summary"),
        lines=lines,
    )
    cid = svc.open_claim(CLERK, req)
    with ydb.session_scope(db_engine) as s:
        direct_claim = svc.engine_claim(s, s.get(ManualClaim, cid))
    d = approve(svc, cid)
    # the same care settled directly for the twin E2 (same facts, own accumulators and account)
    direct = SettlementService(db_engine, PolicyBook.default(), svc.catalog).settle(
        dataclasses.replace(
            direct_claim, mdtrt_id="DIRECT-1", person=dataclasses.replace(direct_claim.person, psn_no="E2")
        ),
        msgid="direct-1",
    )
    manual = svc.get(cid)["settlement"]
    assert manual == {k: getattr(direct.settlement, k) for k in manual}
    # in scope ¥2,000 − deductible ¥600 = ¥1,400 × 90 % = ¥1,260; the person's ¥1,140 (incl. ¥400 uncoded):
    # the account pays its ¥500, all it has; reimbursed = fund + account
    assert (manual["hifp_pay"], manual["acct_pay"], manual["psn_cash_pay"]) == (126000, 50000, 64000)
    assert d["reimbursed_fen"] == 176000
    with ydb.session_scope(db_engine) as s:
        assert s.get(records.Account, "E1").balc == 0


def test_workflow_refuses_wrong_role_wrong_state_and_the_same_reviewer_twice(svc, db_engine):
    public = Actor("public1", "public", psn_no="R1")
    cid = svc.open_claim(public, cross_request())  # the insured person may enter and submit their own claim
    with pytest.raises(ReimbursementForbidden):
        svc.open_claim(Actor("public2", "public", psn_no="R2"), cross_request())  # … not another person's
    with pytest.raises(ReimbursementError) as e:
        svc.review(cid, "approve", SECOND)  # a draft cannot be approved
    assert e.value.field == "action" and "submit" in e.value.message_en
    svc.review(cid, "submit", public)
    with pytest.raises(ReimbursementForbidden):
        svc.review(cid, "first_review", public)
    with pytest.raises(ReimbursementForbidden):
        svc.review(cid, "first_review", Actor("hosp1", "institution"))
    svc.review(cid, "first_review", FIRST)
    before = counts(db_engine)
    with pytest.raises(ReimbursementForbidden) as e:
        svc.review(cid, "approve", FIRST)  # four eyes: the first reviewer may not approve
    assert e.value.field == "actor"
    assert counts(db_engine) == before and svc.get(cid)["status"] == "first_reviewed"
    with pytest.raises(ReimbursementError):
        svc.add_line(cid, CLERK, InvoiceLine("X-1", 100))  # not editable once reviewed
    svc.review(cid, "return", SECOND, comment="缺少诊断证明")
    svc.add_line(cid, public, InvoiceLine("SZ-0003", 1000, item_text="挂号费"))
    svc.review(cid, "submit", public)
    assert svc.get(cid)["status"] == "submitted"


def test_history_is_the_audit_trail(svc):
    cid = svc.open_claim(CLERK, cross_request())
    approve(svc, cid)
    steps = svc.get(cid)["steps"]
    assert [(x["actor"], x["action"], x["from_state"], x["to_state"]) for x in steps] == [
        ("clerk1", "open", "", "draft"),
        ("clerk1", "add_line", "draft", "draft"),
        ("clerk1", "add_line", "draft", "draft"),
        ("clerk1", "add_line", "draft", "draft"),
        ("clerk1", "submit", "draft", "submitted"),
        ("rev1", "first_review", "submitted", "first_reviewed"),
        ("rev2", "approve", "first_reviewed", "paid"),
    ]
    assert steps[-1]["payload"]["fund_pay_sumamt"] == 269500 and steps[-1]["comment"] == "复核通过"
    assert {x["role"] for x in steps} == {"bureau"}


def test_duplicate_invoice_is_refused_and_nothing_changes(svc, db_engine):
    first = svc.open_claim(CLERK, cross_request())
    before = counts(db_engine)
    with pytest.raises(ReimbursementError) as e:
        svc.open_claim(CLERK, cross_request(lines=(InvoiceLine("SZ-0002", 500, item_text="x"),)))
    assert e.value.field == "invoice_no" and str(first) in e.value.message_en
    assert counts(db_engine) == before
    other = svc.open_claim(CLERK, cross_request(lines=()))  # no lines yet: then the same invoice by line is refused
    assert svc.get(other)["status"] == "draft"
    with pytest.raises(ReimbursementError):
        svc.add_line(other, CLERK, InvoiceLine("SZ-0001", 100, item_text="x"))
    svc.open_claim(CLERK, cross_request("R2"))  # another person's invoice numbers are theirs
    svc.review(first, "withdraw", CLERK)  # a withdrawn claim releases its invoices
    svc.add_line(other, CLERK, InvoiceLine("SZ-0001", 100, item_text="x"))


def test_care_already_settled_directly_is_refused(svc, db_engine):
    req = ClaimRequest(
        "E2",
        "21",
        dt.date(2025, 4, 1),
        dt.date(2025, 4, 5),
        "system_outage",
        "J18.9",
        fixmedins_code="H2",
        documents=("invoice", "itemised_bill", "outage_statement", "discharge_summary"),
        lines=(InvoiceLine("H2-88", 200000, med_list_codg="A-DRUG"),),
    )
    cid = svc.open_claim(CLERK, req)
    with ydb.session_scope(db_engine) as s:
        claim = svc.engine_claim(s, s.get(ManualClaim, cid))
    svc.settler.settle(dataclasses.replace(claim, mdtrt_id="DIRECT-E2"), msgid="direct-e2")
    with pytest.raises(ReimbursementError) as e:
        svc.review(cid, "submit", CLERK)
    assert e.value.field == "fixmedins_code" and svc.get(cid)["status"] == "draft"


BAD_REQUESTS = [
    (dict(end_date=dt.date(2025, 2, 1)), "end_date"),  # reversed dates
    (dict(end_date=dt.date(2025, 7, 1)), "end_date"),  # in the future
    (dict(reason="lost_wallet"), "reason"),
    (dict(med_type="99"), "med_type"),
    (dict(provider_admdvs="3205"), "provider_admdvs"),
    (dict(provider_admdvs="990102"), "provider_admdvs"),  # same province: not cross-province
    (dict(reason="system_outage"), "fixmedins_code"),  # a network-only reason needs an institution
    (dict(fixmedins_code="NOPE"), "fixmedins_code"),
    (dict(psn_no="NOBODY"), "psn_no"),
    (dict(documents=("selfie",)), "documents"),
    (dict(lines=(InvoiceLine("A", -100, item_text="x"),)), "amount_fen"),  # negative amount
    (dict(lines=(InvoiceLine("A", 0, item_text="x"),)), "amount_fen"),
    (dict(lines=(InvoiceLine("A", 100, quantity_milli=0, item_text="x"),)), "quantity_milli"),
    (dict(lines=(InvoiceLine("A", 1000, quantity_milli=3000, unit_price_fen=300, item_text="x"),)), "unit_price_fen"),
    (dict(lines=(InvoiceLine("A", 100, med_list_codg="NOT-IN-LIST"),)), "med_list_codg"),
    (dict(lines=(InvoiceLine("A", 100, med_list_codg="MANUAL-UNCODED"),)), "med_list_codg"),
    (dict(lines=(InvoiceLine("A", 100),)), "item_text"),
    (dict(lines=(InvoiceLine("", 100, item_text="x"),)), "invoice_no"),
]


@pytest.mark.parametrize(("bad", "fld"), BAD_REQUESTS)
def test_bad_claims_are_refused_and_nothing_is_written(svc, db_engine, bad, fld):
    with pytest.raises(ReimbursementError) as e:
        svc.open_claim(CLERK, cross_request(**bad))
    assert e.value.field == fld and e.value.message_zh and e.value.message_en
    assert counts(db_engine) == (0, 0, 0, 0, 0)


def test_submit_checks_documents_lines_and_the_deadline(svc, db_engine):
    cid = svc.open_claim(CLERK, cross_request(documents=("invoice",)))
    with pytest.raises(ReimbursementError) as e:
        svc.review(cid, "submit", CLERK)
    assert e.value.field == "documents" and "出院小结" in e.value.message_zh
    svc.add_documents(cid, CLERK, ["itemised_bill", "discharge_summary"])
    assert svc.review(cid, "submit", CLERK)["status"] == "submitted"
    empty = svc.open_claim(CLERK, cross_request("R2", lines=()))
    with pytest.raises(ReimbursementError) as e:
        svc.review(empty, "submit", CLERK)
    assert e.value.field == "lines"
    months = load_rules().deadline_months(dt.date(2024, 3, 1))
    assert months == 12
    late = svc.open_claim(
        CLERK,
        cross_request(
            "R2",
            begin_date=dt.date(2024, 5, 1),
            end_date=dt.date(2024, 5, 31),  # + 12 months = 2025-05-31 < today 2025-06-01
            lines=(InvoiceLine("OLD-1", 100, item_text="x"),),
        ),
    )
    with pytest.raises(ReimbursementError) as e:
        svc.review(late, "submit", CLERK)
    assert e.value.field == "end_date" and "2025-05-31" in e.value.message_en


def test_engine_refusal_rolls_the_approval_back(svc, db_engine):
    # the engine refuses (the person is not covered: an enrolment period ended before the care);
    # the claim stays first_reviewed and nothing of the settlement is written
    from yibao.enrolment import service as en

    cid = svc.open_claim(CLERK, cross_request())
    svc.review(cid, "submit", CLERK)
    svc.review(cid, "first_review", FIRST)
    en.enrol(db_engine, "R1", "390", dt.date(2024, 1, 1), reason="test")
    en.stop(db_engine, "R1", "390", dt.date(2024, 12, 31), reason="test")
    before = counts(db_engine)
    with pytest.raises(Exception) as e:
        svc.review(cid, "approve", SECOND)
    assert getattr(e.value, "field", None) == "psn_no"
    assert counts(db_engine) == before and svc.get(cid)["status"] == "first_reviewed"


def test_claim_from_json_object():
    req = request_from_dict(
        {
            "psn_no": "R1",
            "med_type": "21",
            "begin_date": "2025-03-01",
            "end_date": "2025-03-08",
            "reason": "cross_province",
            "dise_codg": "J18.9",
            "provider_name": "x",
            "provider_admdvs": SUZHOU,
            "hosp_lv": 3,
            "lines": [{"invoice_no": "A", "amount_fen": 100, "item_text": "x"}],
        }
    )
    assert req.begin_date == dt.date(2025, 3, 1) and req.lines[0].quantity_milli == 1000
    with pytest.raises(ReimbursementError) as e:
        request_from_dict({"psn_no": "R1", "begin_date": "2025-13-01", "end_date": "2025-01-01"})
    assert e.value.field == "begin_date"
    with pytest.raises(ReimbursementError) as e:
        request_from_dict({"colour": "red"})
    assert e.value.field == "colour"
    with pytest.raises(ReimbursementError) as e:
        request_from_dict({"begin_date": "2025-01-01", "end_date": "2025-01-01", "lines": [{"amount_fen": 1.5}]})
    assert e.value.field == "amount_fen"


_CODES = ("A-DRUG", "B-DRUG", "B-DRUG20", "C-DRUG", "SVC", "CAP-DEV", "")  # "" = no national code
_seq = iter(range(1, 10**6))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.tuples(st.sampled_from(_CODES), st.integers(1, 5), st.integers(1, 300_000)), min_size=1, max_size=5
    ),
    balance=st.integers(0, 200_000),
    med_type=st.sampled_from(["11", "21"]),
)
def test_property_manual_and_direct_settlement_agree_to_the_fen(svc, db_engine, lines, balance, med_type):
    n = next(_seq)
    me, twin = f"PM{n}", f"PD{n}"
    with ydb.session_scope(db_engine) as s:
        s.add_all([_person(me, "310", "in_service", balance), _person(twin, "310", "in_service", balance)])
    invoice = [
        InvoiceLine(
            f"INV-{n}",
            qty * price,
            quantity_milli=qty * 1000,
            unit_price_fen=price,
            med_list_codg=code,
            item_text="" if code else "票据原文项目",
        )  # fmt: skip
        for code, qty, price in lines
    ]
    req = ClaimRequest(
        me, med_type, dt.date(2025, 4, 1), dt.date(2025, 4, 3), "system_outage", "J18.9", fixmedins_code="H2",
        documents=("invoice", "itemised_bill", "outage_statement", "discharge_summary"), lines=tuple(invoice),
    )  # fmt: skip
    cid = svc.open_claim(CLERK, req)
    with ydb.session_scope(db_engine) as s:
        claim = svc.engine_claim(s, s.get(ManualClaim, cid))
    d = approve(svc, cid)
    direct = svc.settler.settle(
        dataclasses.replace(claim, mdtrt_id=f"D{n}", person=dataclasses.replace(claim.person, psn_no=twin)),
        msgid=f"direct-{n}",
    )
    manual = svc.get(cid)["settlement"]
    assert manual == {k: getattr(direct.settlement, k) for k in manual}
    assert d["reimbursed_fen"] == direct.settlement.fund_pay_sumamt + direct.settlement.acct_pay
