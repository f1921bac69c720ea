"""One insured person through every public-service flow (参保人全流程演示), on SYNTHETIC data.

A synthetic woman employee is enrolled in the employee scheme and maternity insurance and pays her
contributions; she falls ill and settles an outpatient visit; she files for temporary stay in another province
and, back home, claims that province's inpatient bills manually from paper invoices (filed, so the policy's
filed ratio applies); she has a child (prenatal visit and delivery settled, maternity allowance approved); after
an accident she is assessed, enrolled in long-term care and her first month of care is settled.  Each step runs
through the subsystem's own service, the same code the CLI, REST routers and console call; every figure comes
from the policy and rule files.  The person, employer and wage are SYNTHETIC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from yibao.benefits.policy import PolicyBook
from yibao.codes.registry import Institution, Person
from yibao.core import db
from yibao.core.contract import INSUTYPE_EMPLOYEE, INSUTYPE_MATERNITY, MED_TYPE_INPATIENT, MED_TYPE_OUTPATIENT
from yibao.core.errors import YibaoError
from yibao.core.money import fmt_yuan
from yibao.settlement.catalog import Catalog
from yibao.settlement.rules import Claim, FeeLine, PersonFacts
from yibao.settlement.service import SettlementService

__all__ = ["JOURNEY_PSN_NO", "demo_journey"]

JOURNEY_PSN_NO = "SYN-JOURNEY-1"  # SYNTHETIC person, not in the generated register
WAGE = 700_000  # SYNTHETIC monthly contribution base and declared average wage: ¥7,000.00
BIRTH = dt.date(1995, 4, 1)
YEAR = 2025  # the synthetic region's year


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), db.SHANGHAI)


def _plain_item(catalog: Catalog, hosp_lv: int) -> str | None:
    """A 甲类 list item without restrictions a 30-year-old woman's visit could break (the visits' one line)."""
    for code, it in catalog.items.items():
        if (
            it.chrgitm_lv == "01"
            and it.lmt_gend in ("", "2")
            and it.lmt_age_min <= 30
            and (it.lmt_age_max < 0 or it.lmt_age_max >= 30)
            and it.lmt_hosp_lv_min <= hosp_lv
            and not it.lmt_indication
            and not it.lmt_med_types
            and not it.acct_excluded
            and not it.effective_cap
        ):
            return str(code)
    return None


def _far(home: str) -> str:
    return "110100" if home.startswith("32") else "320500"  # Beijing or Suzhou: another province than home


def _enrol(engine: Engine, region: str, say: Callable[[str], None]) -> None:
    from yibao.enrolment import service as en

    with db.session_scope(engine) as s:
        s.add(
            Person(
                psn_no=JOURNEY_PSN_NO,
                psn_name="合成参保人",
                gend="2",
                brdy=BIRTH,
                insutype=INSUTYPE_EMPLOYEE,
                psn_type="in_service",
                insuplc_admdvs=region,
                contribution_base=WAGE,
                synthetic=True,
            )
        )
    start = dt.date(YEAR - 2, 1, 1)
    en.enrol(engine, JOURNEY_PSN_NO, INSUTYPE_EMPLOYEE, start, reason="synthetic journey")
    en.enrol(engine, JOURNEY_PSN_NO, INSUTYPE_MATERNITY, start, reason="synthetic journey (生育保险)")
    paid = [
        en.pay_employee_month(engine, JOURNEY_PSN_NO, f"{YEAR - 1}-{m:02d}", WAGE, dt.date(YEAR - 1, m, 10))
        for m in range(1, 13)
    ]
    say(
        f"1 enrolled 参保 {start} in {INSUTYPE_EMPLOYEE} and {INSUTYPE_MATERNITY}; paid 缴费 12 months of {YEAR - 1}: "
        f"employer {fmt_yuan(sum(c.employer_part for c in paid))} + individual "
        f"{fmt_yuan(sum(c.individual_part for c in paid))} yuan"
    )


def _visit(
    svc: SettlementService, facts: PersonFacts, inst: Institution, code: str, med_type: str, dx: str, when, fen: int
):
    unit = 10_000  # ¥100.00 a unit (SYNTHETIC prices on the bill)
    qty = max(1, min(200, fen // unit))
    line = FeeLine(1, code, qty * 1000, unit, qty * unit)
    mdtrt = f"SYN-J-{med_type}-{when:%m%d}"
    claim = Claim(mdtrt, facts, inst.fixmedins_code, int(inst.hosp_lv or 0), med_type, when, when, dx, (line,))
    return svc.settle(claim, msgid=f"journey-{mdtrt}", use_account=False).settlement


def _fall_ill(svc, facts, inst, code, say) -> None:
    st = _visit(svc, facts, inst, code, MED_TYPE_OUTPATIENT, "J06.9", _at(dt.date(YEAR, 2, 10)), 150_000)
    say(
        f"2 fell ill 就医: outpatient visit at {inst.fixmedins_code} settled in real time: cost "
        f"{fmt_yuan(st.medfee_sumamt)}, fund {fmt_yuan(st.fund_pay_sumamt)}, person {fmt_yuan(st.psn_part_amt)} yuan "
        f"(deductible 起付线 {fmt_yuan(st.act_pay_dedc)})"
    )


def _file_and_claim(engine: Engine, region: str, say: Callable[[str], None]) -> None:
    from yibao.crossregion.service import FilingRequest, add_filing
    from yibao.reimbursement.service import Actor, ClaimRequest, InvoiceLine, ReimbursementService, default_service

    far = _far(region)
    with db.session_scope(engine) as s:
        filing = add_filing(
            s, FilingRequest(JOURNEY_PSN_NO, INSUTYPE_EMPLOYEE, "temporary", region, far, dt.date(YEAR, 3, 1))
        )
        say(f"3 filed 异地就医备案 #{filing.id}: temporarily away (临时外出) to {far} from {filing.begin_date}")
    base = default_service(engine)
    noon = _at(dt.date(YEAR, 4, 10), 12)
    svc = ReimbursementService(engine, base.book, base.catalog, clock=lambda: noon)
    drug = next(
        (str(c) for c, it in svc.catalog.items.items() if it.chrgitm_lv == "01" and not it.restricted and it.is_drug),
        None,
    )
    if drug is None:
        return
    req = ClaimRequest(
        psn_no=JOURNEY_PSN_NO,
        med_type=MED_TYPE_INPATIENT,
        begin_date=dt.date(YEAR, 3, 15),
        end_date=dt.date(YEAR, 3, 20),
        reason="cross_province",
        dise_codg="J18.9",
        provider_name="异地定点医院 (SYNTHETIC)",
        provider_admdvs=far,
        hosp_lv=3,
        documents=("invoice", "itemised_bill", "discharge_summary"),
        synthetic=True,
        lines=(InvoiceLine("SYN-J-INV-1", 380_000, med_list_codg=drug, item_text="药品"),),
    )
    cid = svc.open_claim(Actor("demo-clerk", "bureau"), req)
    svc.review(cid, "submit", Actor("demo-clerk", "bureau"))
    svc.review(cid, "first_review", Actor("demo-reviewer-1", "bureau"))
    d = svc.review(cid, "approve", Actor("demo-reviewer-2", "bureau"))
    st = svc.get(cid)["settlement"]
    say(
        f"4 claimed manually 手工报销 #{cid} (paper invoices of the stay in {far}, filed): claimed "
        f"{fmt_yuan(st['medfee_sumamt'])}, fund {fmt_yuan(st['fund_pay_sumamt'])}, paid to her "
        f"{fmt_yuan(d['reimbursed_fen'])} yuan"
    )


def _child(engine, svc, facts, inst, code, say) -> None:
    from yibao.maternity import service as ms

    birth = dt.date(YEAR, 5, 20)
    pn = _visit(svc, facts, inst, code, "51", "Z34.0", _at(birth - dt.timedelta(days=60)), 30_000)
    dl = _visit(svc, facts, inst, code, "51", "Z34.0", _at(birth), 300_000)
    req = ms.ClaimRequest(JOURNEY_PSN_NO, "合成纺织有限公司 (SYNTHETIC)", "birth", birth, WAGE)
    cid = ms.file_claim(engine, req, actor="demo-clerk")
    ms.review(engine, cid, "check", actor="demo-clerk")
    row = ms.review(engine, cid, "approve", actor="demo-chief", note="synthetic journey")
    say(
        f"5 had a child 生育 {birth}: prenatal visit fund {fmt_yuan(pn.hifp_pay)}, delivery fund "
        f"{fmt_yuan(dl.hifp_pay)} yuan; maternity allowance #{cid} {row.status}: {row.days} days × "
        f"{fmt_yuan(row.average_wage)} / 30 = {fmt_yuan(row.allowance)} + lump sum {fmt_yuan(row.lump_sum)} yuan"
    )


def _long_term_care(engine: Engine, say: Callable[[str], None]) -> None:
    from yibao.ltc import service as ltc
    from yibao.ltc.params import get_rules

    rules = get_rules("nantong")
    scores = dict(rules.assessment.dimensions)  # the most dependent score on each dimension (after an accident)
    a = ltc.assess(engine, JOURNEY_PSN_NO, "SYN-ASSESSOR", dt.date(YEAR + 1, 1, 10), scores)
    month = dt.date(YEAR + 1, 3, 1)
    ltc.enrol(engine, JOURNEY_PSN_NO, rules.settings[0], "SYN-CARE01", dt.date(YEAR + 1, 2, 1))
    ltc.record_services(engine, JOURNEY_PSN_NO, month, "SYN-CARE01", 31, 300_000, ["synthetic"])
    c = ltc.settle_month(engine, JOURNEY_PSN_NO, month)
    say(
        f"6 long-term care 长护险: assessed {a.grade} ({a.total_score} points), {rules.settings[0]} care from "
        f"{YEAR + 1}-02; {month:%Y-%m} settled: cost {fmt_yuan(c.cost_fen)}, fund {fmt_yuan(c.fund_fen)}, "
        f"person {fmt_yuan(c.person_fen)} yuan"
    )


def demo_journey(engine: Engine, fixmedins_code: str, echo: Callable[[str], None] | None = None) -> list[str]:
    """Run the whole journey once (nothing when it ran before or the region lacks what it needs); the lines."""
    lines: list[str] = []
    say = echo or lines.append
    catalog = Catalog.from_table(db.read_table(engine, "med_list"))
    with db.session_scope(engine) as s:
        inst = s.get(Institution, fixmedins_code)
        region = s.scalar(
            select(Person.insuplc_admdvs)
            .where(Person.insutype == INSUTYPE_EMPLOYEE, Person.synthetic.is_(True))
            .order_by(Person.psn_no)
            .limit(1)
        )
        if inst is None or not region or s.get(Person, JOURNEY_PSN_NO) is not None:
            return lines
        s.expunge(inst)
    code = _plain_item(catalog, int(inst.hosp_lv or 0))
    if code is None:
        return lines
    say(f"one person's journey 参保人全流程 (SYNTHETIC): {JOURNEY_PSN_NO}, region {region}")
    svc = SettlementService(engine, PolicyBook.default(), catalog)
    facts = PersonFacts(JOURNEY_PSN_NO, INSUTYPE_EMPLOYEE, "in_service", "2", BIRTH, region)
    try:
        _enrol(engine, region, say)
        _fall_ill(svc, facts, inst, code, say)
        _file_and_claim(engine, region, say)
        _child(engine, svc, facts, inst, code, say)
        _long_term_care(engine, say)
    except YibaoError as exc:  # the demo shows a refusal rather than hiding it
        say(f"refused: {exc.message_en} / {exc.message_zh}")
    return lines
