"""Prescription circulation (处方流转) end to end on a database: issue at hospital A, fill and settle at pharmacy B
through the settlement service; each refusal leaves every table unchanged; internet-hospital follow-up (互联网复诊).

Synthetic people and institutions.  Hand-worked figures use the policy of the synthetic region 990100
(example-city-a.yaml, 2026: resident 390 outpatient deductible ¥100 a year, level-2 ratio 50 %)
and the small list of tests/factories.py (A-DRUG 甲类, B-DRUG 乙类 with 10 % self-pay first).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select, update

from tests.factories import TZ, catalog, item
from yibao.benefits.policy import PolicyBook
from yibao.codes import registry
from yibao.core import db as ydb
from yibao.core.contract import MED_TYPE_INPATIENT, MED_TYPE_OUTPATIENT, PRAC_PSN_TYPE_DOCTOR
from yibao.core.errors import YibaoError
from yibao.rxcirc import models as m
from yibao.rxcirc.params import load_circulation
from yibao.rxcirc.prescription import RxError
from yibao.rxcirc.service import ConsultRequest, FillLine, FillRequest, IssueLine, IssueRequest, RxService
from yibao.settlement import records
from yibao.settlement.rules import Claim, FeeLine, PersonFacts, line_amount
from yibao.settlement.service import SettlementService

REGION = "990100"
HOSP = "H44010000001"  # level 2; also the designated internet hospital of internet-hospital.yaml
PHARMACY = "P44010000001"  # designated for circulation in designated-pharmacies.yaml (2026)
OTHER_PHARMACY = "P44010099999"  # a pharmacy, not designated
DOCTOR = "D44010000001"
CONSULT_ITEM = "990100000010000"  # internet-hospital.yaml's consultation item
CAT = catalog([item(CONSULT_ITEM, "普通门诊诊察费", kind="service", lv="01")])
T = lambda d, h=10: dt.datetime(2026, 3, d, h, tzinfo=TZ)  # noqa: E731

# 7 days: an acute diagnosis (J06.9) may not have a longer prescription (处方管理办法 第十九条, long_rx_over_days)
RX_LINES = (IssueLine("A-DRUG", 10_000, 7), IssueLine("B-DRUG", 2_000, 7))
FILL_LINES = (FillLine("A-DRUG", 10_000, 3000, 7), FillLine("B-DRUG", 2_000, 5000, 7))  # ¥30 × 10, ¥50 × 2


@pytest.fixture
def rx(db_engine) -> RxService:
    with ydb.session_scope(db_engine) as s:
        for psn in ("R1", "R2"):  # two identical residents: one fills at the pharmacy, one settles at the hospital
            s.add(
                registry.Person(
                    psn_no=psn,
                    gend="2",
                    brdy=dt.date(1990, 1, 1),
                    insutype="390",
                    psn_type="resident",
                    civil_servant=False,
                    insuplc_admdvs=REGION,
                    assistance="",
                    contribution_base=0,
                    acct_balc=0,
                    synthetic=True,
                )
            )
        for code, typ, lv in ((HOSP, "hospital", 2), (PHARMACY, "pharmacy", 0), (OTHER_PHARMACY, "pharmacy", 0)):
            s.add(
                registry.Institution(fixmedins_code=code, fixmedins_type=typ, hosp_lv=lv, admdvs=REGION, synthetic=True)
            )
        s.flush()
        s.add(
            registry.Practitioner(
                prac_psn_code=DOCTOR, prac_psn_type=PRAC_PSN_TYPE_DOCTOR, fixmedins_code=HOSP, synthetic=True
            )
        )
    return RxService(SettlementService(db_engine, PolicyBook.default(), CAT))


def issue_req(**kw) -> IssueRequest:
    base = IssueRequest(
        hosp_rxno="HRX-1",
        fixmedins_code=HOSP,
        prac_psn_code=DOCTOR,
        psn_no="R1",
        med_type=MED_TYPE_OUTPATIENT,
        diagnoses=("J06.9",),
        prsc_time=T(2),
        lines=RX_LINES,
        synthetic=True,
    )
    return dataclasses.replace(base, **kw)


def fill_req(hi_rxno: str, **kw) -> FillRequest:
    base = FillRequest(hi_rxno, PHARMACY, FILL_LINES, T(3), msgid="MSG-FILL-1")
    return dataclasses.replace(base, **kw)


TABLES = (
    registry.Person,
    registry.Institution,
    records.Encounter,
    records.FeeDetail,
    records.Settlement,
    records.Accumulator,
    records.Account,
    records.AccountLedger,
    m.ElectronicPrescription,
    m.PrescriptionLine,
    m.PrescriptionFill,
    m.OnlineVisit,
)


def snapshot(engine) -> dict[str, list[str]]:
    with engine.connect() as c:
        return {t.__tablename__: sorted(repr(tuple(r)) for r in c.execute(select(t.__table__))) for t in TABLES}


AT_HOSPITAL = {  # hand-worked: lines ¥300 (甲类) + ¥100 (乙类, ¥10 self-paid first) = ¥400 at a level-2 hospital
    "medfee_sumamt": 40_000,
    "preselfpay_amt": 1_000,
    "inscp_scp_amt": 39_000,
    "act_pay_dedc": 10_000,  # the ¥100 outpatient deductible
    "hifp_pay": 14_500,  # (39 000 − 10 000) × 50 %
    "fund_pay_sumamt": 14_500,
    "psn_part_amt": 25_500,
    "psn_cash_pay": 25_500,  # residents have no personal account
}


def test_fill_at_pharmacy_pays_as_at_the_issuing_hospital(rx):
    v = rx.issue(issue_req())
    assert (v.status, v.valid_end_date, v.digest_ok) == ("issued", dt.date(2026, 3, 4), True)  # 3 days from the file
    assert len(v.sm3_digest) == 64 and v.hi_rxno.startswith("RX")
    assert rx.verify(v.hi_rxno, PHARMACY, dt.date(2026, 3, 3)).status == "issued"

    got = rx.fill(fill_req(v.hi_rxno))
    st = got.settlement.settlement
    assert {k: getattr(st, k) for k in AT_HOSPITAL} == AT_HOSPITAL
    assert (got.issuer_code, got.hosp_lv, got.delivery_selfpay) == (HOSP, 2, True)

    # the same drugs settled at the hospital itself by an identical resident: the same split to the fen
    same = Claim(
        mdtrt_id="HOSP-VISIT",
        person=PersonFacts("R2", "", "", "", dt.date(1900, 1, 1), ""),
        fixmedins_code=HOSP,
        hosp_lv=0,
        med_type=MED_TYPE_OUTPATIENT,
        begntime=T(3),
        setl_time=T(3),
        dise_codg="J06.9",
        lines=tuple(
            FeeLine(i, ln.med_list_codg, ln.cnt_milli, ln.pric, line_amount(ln.cnt_milli, ln.pric))
            for i, ln in enumerate(FILL_LINES, start=1)
        ),
    )
    at_a = rx.settlement.settle(same, msgid="MSG-HOSP-1").settlement
    assert at_a.amounts() == st.amounts()

    with ydb.session_scope(rx.engine) as s:
        row = s.get(m.ElectronicPrescription, v.hi_rxno)
        fill = s.scalars(select(m.PrescriptionFill)).one()
        setl = s.get(records.Settlement, got.settlement.setl_id)
        lines = s.scalars(select(records.FeeDetail).where(records.FeeDetail.mdtrt_id == fill.mdtrt_id)).all()
        enc = s.get(records.Encounter, fill.mdtrt_id)
        assert row is not None and setl is not None and enc is not None
        assert row.status == "filled"
        assert (fill.fixmedins_code, fill.issuer_code, fill.setl_id) == (PHARMACY, HOSP, setl.setl_id)
        assert (setl.fixmedins_code, setl.med_type, setl.rule_trace["level_of"]) == (PHARMACY, "11", HOSP)
        assert (enc.fixmedins_code, enc.med_type, enc.dise_codg) == (PHARMACY, "11", "J06.9")
        assert all(ln.rx_circ_flag and ln.rxno == v.hi_rxno for ln in lines) and len(lines) == 2
    assert rx.show(v.hi_rxno, dt.date(2026, 3, 10)).status == "filled"  # filled stays filled after the last day


def test_same_msgid_replays_without_a_second_fill(rx):
    v = rx.issue(issue_req())
    first = rx.fill(fill_req(v.hi_rxno))
    again = rx.fill(fill_req(v.hi_rxno))
    assert again.settlement.replayed and again.settlement.setl_id == first.settlement.setl_id
    with ydb.session_scope(rx.engine) as s:
        assert len(s.scalars(select(m.PrescriptionFill)).all()) == 1


def test_dispenser_level_would_pay_nothing_from_the_pool(rx):
    """What benefit_level: issuer is for: at the pharmacy's own level (0) the outpatient pool has no ratio."""
    rule = load_circulation().rules[0].model_copy(update={"benefit_level": "dispenser"})
    other = RxService(rx.settlement, circulation=load_circulation().model_copy(update={"rules": [rule]}))
    v = other.issue(issue_req())
    st = other.fill(fill_req(v.hi_rxno)).settlement.settlement
    assert (st.act_pay_dedc, st.hifp_pay, st.psn_cash_pay) == (10_000, 0, 40_000)


def _refused(rx, call, match: str):
    before = snapshot(rx.engine)
    with pytest.raises(YibaoError, match=match):
        call()
    assert snapshot(rx.engine) == before


def test_second_fill_refused_nothing_changed(rx):
    v = rx.issue(issue_req())
    rx.fill(fill_req(v.hi_rxno))
    _refused(rx, lambda: rx.fill(fill_req(v.hi_rxno, msgid="MSG-FILL-2", fixmedins_code=PHARMACY)), "already")


@pytest.mark.parametrize(
    "change,match",
    [
        ({"filled_at": T(5)}, "not valid"),  # valid 2026-03-02 .. 03-04
        ({"fixmedins_code": OTHER_PHARMACY}, "not designated"),
        ({"signed_digest": "0" * 64}, "presented signature"),
        ({"lines": (FillLine("A-DRUG", 20_000, 3000, 7),)}, "above the prescription"),
        ({"lines": (FillLine("C-DRUG", 1_000, 100, 1),)}, "not on prescription"),
        ({"delivery_fee": -1}, "negative"),
    ],
)
def test_fill_refusals_change_nothing(rx, change, match):
    v = rx.issue(issue_req())
    _refused(rx, lambda: rx.fill(fill_req(v.hi_rxno, **change)), match)
    assert rx.show(v.hi_rxno, dt.date(2026, 3, 3)).status == "issued"


def test_tampered_prescription_refused(rx):
    v = rx.issue(issue_req())
    with ydb.session_scope(rx.engine) as s:  # someone raises the quantity in the database
        s.execute(
            update(m.PrescriptionLine)
            .where(m.PrescriptionLine.hi_rxno == v.hi_rxno, m.PrescriptionLine.line_no == 1)
            .values(cnt_milli=20_000)
        )
    assert rx.show(v.hi_rxno).digest_ok is False
    _refused(rx, lambda: rx.fill(fill_req(v.hi_rxno)), "signature digest does not match")
    _refused(rx, lambda: rx.verify(v.hi_rxno, PHARMACY, dt.date(2026, 3, 3)), "signature digest")


def test_expired_shown_and_cancelled_refused(rx):
    v = rx.issue(issue_req())
    assert rx.show(v.hi_rxno, dt.date(2026, 3, 5)).status == "expired"
    _refused(rx, lambda: rx.cancel(v.hi_rxno, PHARMACY), "only the issuer")
    assert rx.cancel(v.hi_rxno, HOSP).status == "cancelled"
    _refused(rx, lambda: rx.fill(fill_req(v.hi_rxno)), "cancelled")
    _refused(rx, lambda: rx.cancel(v.hi_rxno, HOSP), "cannot be cancelled")


@pytest.mark.parametrize(
    "change,match",
    [
        ({"valid_days": 4}, "valid_days"),
        ({"med_type": MED_TYPE_INPATIENT}, "outpatient"),
        ({"fixmedins_code": PHARMACY}, "may prescribe"),
        ({"prac_psn_code": "D-NOBODY"}, "not a doctor"),
        ({"psn_no": "NOBODY"}, "unknown person"),
        ({"lines": (IssueLine(CONSULT_ITEM, 1000, 1),)}, "not a drug"),
        ({"lines": (IssueLine("A-DRUG", 0, 1),)}, "positive"),
        ({"lines": RX_LINES + (IssueLine("A-DRUG", 1000, 1),)}, "twice"),
        ({"diagnoses": ()}, "diagnoses"),
        ({"mdtrt_id": "NO-SUCH-VISIT"}, "visit"),
        ({"prsc_time": dt.datetime(2026, 3, 2, 10)}, "time zone"),
    ],
)
def test_issue_refusals_change_nothing(rx, change, match):
    _refused(rx, lambda: rx.issue(issue_req(**change)), match)


def test_duplicate_upload_refused(rx):
    rx.issue(issue_req())
    _refused(rx, lambda: rx.issue(issue_req()), "already uploaded")


def _offline_visit(rx, mdtrt_id: str, dx: str, when: dt.datetime) -> None:
    c = Claim(
        mdtrt_id=mdtrt_id,
        person=PersonFacts("R1", "", "", "", dt.date(1900, 1, 1), ""),
        fixmedins_code=HOSP,
        hosp_lv=0,
        med_type=MED_TYPE_OUTPATIENT,
        begntime=when,
        setl_time=when,
        dise_codg=dx,
        lines=(FeeLine(1, "A-DRUG", 1000, 20_000, 20_000),),  # ¥200: uses up the ¥100 deductible
    )
    rx.settlement.settle(c, msgid=f"MSG-{mdtrt_id}")


def consult_req(**kw) -> ConsultRequest:
    base = ConsultRequest("ONLINE-1", "R1", HOSP, ("J06.9",), T(20), 1500, "MSG-ONLINE-1")  # ¥15 诊察费
    return dataclasses.replace(base, **kw)


def test_online_follow_up_settles_like_an_outpatient_visit(rx):
    _offline_visit(rx, "OFFLINE-1", "J06.9", T(1))
    got = rx.consult(consult_req())
    st = got.settlement.settlement
    # deductible already met offline: ¥15 × 50 % = ¥7.50 from the pool
    assert (got.prior_mdtrt_id, st.medfee_sumamt, st.act_pay_dedc, st.hifp_pay, st.psn_cash_pay) == (
        "OFFLINE-1",
        1500,
        0,
        750,
        750,
    )
    with ydb.session_scope(rx.engine) as s:
        ov = s.get(m.OnlineVisit, "ONLINE-1")
        assert ov is not None and (ov.prior_mdtrt_id, ov.setl_id) == ("OFFLINE-1", got.settlement.setl_id)
        assert s.get(records.Settlement, got.settlement.setl_id).med_type == "11"
    # a prescription written in the online visit circulates like any other
    v = rx.issue(issue_req(mdtrt_id="ONLINE-1", prsc_time=T(20, 11), hosp_rxno="HRX-ONLINE"))
    assert rx.fill(fill_req(v.hi_rxno, filled_at=T(21), delivery_fee=800)).cash_with_delivery > 800


@pytest.mark.parametrize(
    "change,match",
    [
        ({}, "first visit"),  # no offline visit at all
        ({"fixmedins_code": PHARMACY}, "not designated for internet"),
        ({"consulted_at": dt.datetime(2027, 1, 5, tzinfo=TZ)}, "not designated for internet"),
        ({"fee": -1}, "negative"),
    ],
)
def test_online_refusals_change_nothing(rx, change, match):
    _refused(rx, lambda: rx.consult(consult_req(**change)), match)


def test_online_first_visit_for_another_disease_refused(rx):
    _offline_visit(rx, "OFFLINE-1", "E11.9", T(1))
    _refused(rx, lambda: rx.consult(consult_req()), "first visit")
    _offline_visit(rx, "OFFLINE-OLD", "J06.9", dt.datetime(2025, 6, 1, 10, tzinfo=TZ))  # 292 days before: too old
    _refused(rx, lambda: rx.consult(consult_req()), "first visit")


def test_online_visit_is_not_a_prior_visit(rx):
    _offline_visit(rx, "OFFLINE-1", "J06.9", T(1))
    rx.consult(consult_req())
    with ydb.session_scope(rx.engine) as s:  # forget the offline visit's encounter date: move it out of the window
        s.execute(
            update(records.Encounter)
            .where(records.Encounter.mdtrt_id == "OFFLINE-1")
            .values(begntime=T(1) - dt.timedelta(days=400))
        )
    _refused(
        rx, lambda: rx.consult(consult_req(mdtrt_id="ONLINE-2", msgid="MSG-ONLINE-2", consulted_at=T(25))), "first"
    )


def test_rx_error_is_bilingual(rx):
    with pytest.raises(RxError) as e:
        rx.show("RXNOPE")
    assert e.value.message_zh.startswith("处方不存在") and e.value.field == "hi_rxno"


def test_rest_upload_verify_fill_show(rx):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from yibao.rxcirc.api import get_service, router

    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[get_service] = lambda: rx
    c = TestClient(app)
    body = {
        "hosp_rxno": "HRX-REST",
        "fixmedins_code": HOSP,
        "prac_psn_code": DOCTOR,
        "psn_no": "R1",
        "med_type": "11",
        "dise_codg": ["J06.9"],
        "prsc_time": "2026-03-02T10:00:00+08:00",
        "rxdrugdetail": [
            {"med_list_codg": "A-DRUG", "drug_cnt": "10", "medc_days": 7},
            {"med_list_codg": "B-DRUG", "drug_cnt": "2", "medc_days": 7},
        ],
    }
    up = c.post("/api/v1/rx/prescriptions", json=body)
    assert up.status_code == 200 and up.json()["rx_stas"] == "issued"
    hi = up.json()["hi_rxno"]
    dup = c.post("/api/v1/rx/prescriptions", json=body)
    assert dup.status_code == 400 and dup.json()["detail"]["field"] == "hosp_rxno"
    bad = c.post(f"/api/v1/rx/prescriptions/{hi}/verify", json={"fixmedins_code": OTHER_PHARMACY, "on": "2026-03-03"})
    assert bad.status_code == 400 and bad.json()["detail"]["message_zh"].startswith("药店")
    fill = {
        "fixmedins_code": PHARMACY,
        "sel_retn_time": "2026-03-03T10:00:00+08:00",
        "msgid": "MSG-REST-1",
        "selinfo": [
            {"med_list_codg": "A-DRUG", "sel_retn_cnt": "10", "pric": "30.00", "medc_days": 7},
            {"med_list_codg": "B-DRUG", "sel_retn_cnt": "2", "pric": "50", "medc_days": 7},
        ],
        "delivery_fee": "8.00",
    }
    r = c.post(f"/api/v1/rx/prescriptions/{hi}/fill", json=fill)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["hosp_lv"], out["delivery_fee"], out["delivery_selfpay"]) == (2, "8.00", True)
    assert (out["setlinfo"]["hifp_pay"], out["setlinfo"]["psn_cash_pay"]) == ("145.00", "255.00")
    shown = c.get(f"/api/v1/rx/prescriptions/{hi}").json()
    assert shown["rx_stas"] == "filled" and shown["fill"]["setl_id"] == out["setlinfo"]["setl_id"]
    assert c.post(f"/api/v1/rx/prescriptions/{hi}/fill", json=fill | {"msgid": "MSG-REST-2"}).status_code == 400
    undone = c.post(f"/api/v1/rx/prescriptions/{hi}/fill/cancel", json={"fixmedins_code": PHARMACY, "msgid": "MSG-U"})
    assert undone.status_code == 200 and undone.json()["fill"] is None


def test_pharmacy_fill_is_not_a_prior_visit(rx):
    v = rx.issue(issue_req(prsc_time=T(2)))
    with ydb.session_scope(rx.engine) as s:  # the prescription's own visit is not stored: only the fill is
        assert s.get(records.Encounter, "RXF" + v.hi_rxno + "-1") is None
    rx.fill(fill_req(v.hi_rxno))
    _refused(rx, lambda: rx.consult(consult_req(consulted_at=T(10))), "first visit")


def _person(s, psn_no: str) -> None:
    s.add(
        registry.Person(
            psn_no=psn_no,
            gend="2",
            brdy=dt.date(1990, 1, 1),
            insutype="390",
            psn_type="resident",
            civil_servant=False,
            insuplc_admdvs=REGION,
            assistance="",
            contribution_base=0,
            acct_balc=0,
            synthetic=True,
        )
    )


def test_property_fill_at_pharmacy_equals_settling_at_the_issuer(rx):
    """For any quantities and prices, the fill at B splits to the fen as the same lines at hospital A."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    counter = iter(range(10_000))
    # cnt_milli, fen, days (≤ 7 for the acute diagnosis: longer needs a listed chronic disease, and over 28 days the
    # long-prescription confirmation, which rx does not carry)
    drug = st.tuples(st.integers(1, 60_000), st.integers(1, 50_000), st.integers(1, 7))

    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
    @given(a=drug, b=drug, prior=st.integers(0, 20_000))
    def check(a, b, prior):
        n = next(counter)
        at_b, at_a = f"PB{n}", f"PA{n}"
        with ydb.session_scope(rx.engine) as s:
            _person(s, at_b)
            _person(s, at_a)
        if prior:  # both have used part of the year's deductible already, at the hospital
            for psn in (at_b, at_a):
                c = Claim(
                    f"PRIOR-{psn}", PersonFacts(psn, "", "", "", dt.date(1900, 1, 1), ""), HOSP, 0,
                    MED_TYPE_OUTPATIENT, T(1), T(1), "J06.9", (FeeLine(1, "A-DRUG", 1000, prior, prior),),
                )  # fmt: skip
                rx.settlement.settle(c, msgid=f"MSG-PRIOR-{psn}")
        lines = (IssueLine("A-DRUG", a[0], a[2]), IssueLine("B-DRUG", b[0], b[2]))
        v = rx.issue(issue_req(psn_no=at_b, hosp_rxno=f"HRX-P{n}", lines=lines))
        fills = (FillLine("A-DRUG", a[0], a[1], a[2]), FillLine("B-DRUG", b[0], b[1], b[2]))
        got = rx.fill(fill_req(v.hi_rxno, lines=fills, msgid=f"MSG-PF{n}")).settlement.settlement
        same = Claim(
            f"HOSP-P{n}", PersonFacts(at_a, "", "", "", dt.date(1900, 1, 1), ""), HOSP, 0, MED_TYPE_OUTPATIENT,
            T(3), T(3), "J06.9",
            tuple(FeeLine(i, f.med_list_codg, f.cnt_milli, f.pric, line_amount(f.cnt_milli, f.pric))
                  for i, f in enumerate(fills, start=1)),
        )  # fmt: skip
        assert rx.settlement.settle(same, msgid=f"MSG-PH{n}").settlement.amounts() == got.amounts()

    check()


def test_cancelled_fill_can_be_filled_again(rx):
    v = rx.issue(issue_req())
    first = rx.fill(fill_req(v.hi_rxno))
    _refused(rx, lambda: rx.cancel_fill(v.hi_rxno, OTHER_PHARMACY, "MSG-UNFILL-1"), "only the pharmacy")
    after = rx.cancel_fill(v.hi_rxno, PHARMACY, "MSG-UNFILL-1", at=T(3, 12))
    assert (after.status, after.fill) == ("issued", None)
    assert (
        rx.cancel_fill(v.hi_rxno, PHARMACY, "MSG-UNFILL-1", at=T(3, 12)).status == "issued"
    )  # the same msgid: the same answer
    _refused(rx, lambda: rx.cancel_fill(v.hi_rxno, PHARMACY, "MSG-UNFILL-2"), "no live fill")
    with ydb.session_scope(rx.engine) as s:
        assert s.get(records.Settlement, first.settlement.setl_id).refd_setl_flag
        assert accumulators_of(s, "R1") == {}  # the cancel reversed the deductible used
    half = (FillLine("A-DRUG", 5_000, 3000, 7),)  # a different fill now: ¥150 of A-DRUG only
    again = rx.fill(fill_req(v.hi_rxno, lines=half, msgid="MSG-FILL-AGAIN"))
    st = again.settlement.settlement
    assert (st.medfee_sumamt, st.act_pay_dedc, st.hifp_pay) == (15_000, 10_000, 2_500)  # (150 − 100) × 50 %
    with ydb.session_scope(rx.engine) as s:
        fills = s.scalars(select(m.PrescriptionFill).order_by(m.PrescriptionFill.id)).all()
        assert [(f.cancelled, f.mdtrt_id) for f in fills] == [
            (True, f"RXF{v.hi_rxno}-1"),
            (False, f"RXF{v.hi_rxno}-2"),
        ]
    assert rx.show(v.hi_rxno).status == "filled"


def accumulators_of(s, psn_no: str) -> dict:
    A = records.Accumulator
    return {(a.kind, a.period): a.value for a in s.scalars(select(A).where(A.psn_no == psn_no))}


def test_a_fill_cancelled_by_its_settlement_id_frees_the_prescription(rx):
    """The pharmacy's HIS cancels by setl_id (2208 / 2601), not through cancel_fill: the interface's cancel hook
    calls release_fill_of, so the fill is marked cancelled and the prescription can be filled again; a replay of
    the same cancel changes nothing; a settlement that is no fill's is left alone."""
    from yibao.rxcirc.service import release_fill_of

    v = rx.issue(issue_req())
    setl_id = rx.fill(fill_req(v.hi_rxno)).settlement.setl_id
    assert rx.show(v.hi_rxno).status == "filled"

    def hook(s, r):
        release_fill_of(s, r.setl_id, "MSG-2208-1")

    rx.settlement.cancel(setl_id, msgid="MSG-2208-1", at=T(3, 12), hook=hook)
    after = rx.show(v.hi_rxno, T(3, 12).date())
    assert (after.status, after.fill) == ("issued", None)
    with ydb.session_scope(rx.engine) as s:
        fill = s.scalars(select(m.PrescriptionFill)).one()
        assert (fill.cancelled, fill.cancel_msgid) == (True, "MSG-2208-1")
        assert release_fill_of(s, setl_id, "MSG-2208-1") is False  # replayed: no live fill, nothing changes
        assert release_fill_of(s, "NO-SUCH-SETL", "MSG-X") is False
    again = rx.fill(fill_req(v.hi_rxno, msgid="MSG-FILL-AFTER-2208"))
    assert again.settlement.setl_id != setl_id and rx.show(v.hi_rxno).status == "filled"
