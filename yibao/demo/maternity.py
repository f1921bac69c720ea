"""The demo's maternity step (生育保险演示) on the SYNTHETIC region: a synthetic insured woman has a child.

She is enrolled in the employee scheme and in maternity insurance (510) two years before the birth, pays twelve
employee months, has a prenatal visit and a delivery (both med_type 51, settled by the ordinary engine), and her
maternity allowance claim (生育津贴申领) is filed, checked and approved.  Every figure printed comes from the
policy and the records; the woman, her employer and her wage are SYNTHETIC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from yibao.benefits.policy import PolicyBook
from yibao.codes.registry import Institution, Person
from yibao.core import db
from yibao.core.contract import INSUTYPE_EMPLOYEE, INSUTYPE_MATERNITY
from yibao.core.money import fmt_yuan
from yibao.enrolment import service as en
from yibao.maternity import service as ms
from yibao.maternity.models import MaternityClaim
from yibao.settlement.catalog import Catalog
from yibao.settlement.rules import Claim, FeeLine, PersonFacts
from yibao.settlement.service import SettlementService

__all__ = ["demo_maternity", "DEMO_PSN_NO"]

DEMO_PSN_NO = "SYN-MATERNITY-1"  # SYNTHETIC person, not in the generated register
DEMO_WAGE = 800_000  # SYNTHETIC: the employer's declared average monthly wage, ¥8,000.00


def _item(catalog: Catalog, hosp_lv: int) -> str | None:
    """A 甲类 list item with no payment restriction a woman's maternity visit could break."""
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
        ):
            return code
    return None


def _setup(engine: Engine, region: str, birth: dt.date) -> None:
    with db.session_scope(engine) as s:
        if s.get(Person, DEMO_PSN_NO) is None:
            s.add(
                Person(
                    psn_no=DEMO_PSN_NO,
                    psn_name="合成孕产妇",
                    gend="2",
                    brdy=dt.date(birth.year - 30, 4, 1),
                    insutype=INSUTYPE_EMPLOYEE,
                    psn_type="in_service",
                    insuplc_admdvs=region,
                    contribution_base=DEMO_WAGE,
                    synthetic=True,
                )
            )
    start = dt.date(birth.year - 2, 1, 1)
    en.enrol(engine, DEMO_PSN_NO, INSUTYPE_EMPLOYEE, start, reason="synthetic demo")
    en.enrol(engine, DEMO_PSN_NO, INSUTYPE_MATERNITY, start, reason="synthetic demo (生育保险)")
    for m in range(1, 13):
        en.pay_employee_month(
            engine, DEMO_PSN_NO, f"{birth.year - 1}-{m:02d}", DEMO_WAGE, dt.date(birth.year - 1, m, 10)
        )


def _visit(facts: PersonFacts, inst: Institution, code: str, unit: int, target: int, mdtrt_id: str, day) -> Claim:
    """A med_type 51 claim of about ``target`` fen: as many units (at most 200) as it takes at ``unit`` fen each."""
    qty = min(max(1, target // unit), 200)
    line = FeeLine(1, code, qty * 1000, unit, qty * unit)
    return Claim(
        mdtrt_id, facts, inst.fixmedins_code, int(inst.hosp_lv or 0), "51", day, day, "Z34.0", (line,)
    )  # Z34.0: supervision of a normal first pregnancy (产前检查); delivery settles as 51 as well


def demo_maternity(
    engine: Engine,
    fixmedins_code: str,
    region: str | None = None,
    birth: dt.date = dt.date(2025, 5, 20),
    *,
    catalog: Catalog | None = None,
    echo: Callable[[str], None] | None = None,
) -> list[str]:
    """Enrol, settle a prenatal visit and a delivery, file and approve the allowance claim; the lines printed.

    ``region`` defaults to the insured region of the register's first synthetic employee.  Does nothing (no
    lines) when the institution is unknown or the demo person already has a claim."""
    lines: list[str] = []
    say = echo or lines.append
    catalog = catalog or Catalog.from_table(db.read_table(engine, "med_list"))
    with db.session_scope(engine) as s:
        inst = s.get(Institution, fixmedins_code)
        if inst is None or s.scalar(select(MaternityClaim.id).where(MaternityClaim.psn_no == DEMO_PSN_NO)):
            return lines
        s.expunge(inst)
        region = region or s.scalar(
            select(Person.insuplc_admdvs)
            .where(Person.insutype == INSUTYPE_EMPLOYEE, Person.synthetic.is_(True))
            .order_by(Person.psn_no)
            .limit(1)
        )
    if not region:
        return lines
    code = _item(catalog, int(inst.hosp_lv or 0))
    if code is None:
        return lines
    _setup(engine, region, birth)
    facts = PersonFacts(DEMO_PSN_NO, INSUTYPE_EMPLOYEE, "in_service", "2", dt.date(birth.year - 30, 4, 1), region)
    svc = SettlementService(engine, PolicyBook.default(), catalog)
    t0 = dt.datetime.combine(birth, dt.time(10), db.SHANGHAI)
    for what, mdtrt, when, price in (
        ("prenatal visit 产前检查", "SYN-MAT-PN1", t0 - dt.timedelta(days=60), 30_000),
        ("delivery 分娩", "SYN-MAT-DL1", t0, 300_000),
    ):
        cap = catalog[code].effective_cap
        res = svc.settle(
            _visit(facts, inst, code, min(price, cap) if cap else price, price, mdtrt, when),
            msgid=f"demo-{mdtrt}",
            use_account=False,
        )
        st = res.settlement
        say(
            f"maternity (SYNTHETIC): {what} med_type 51 → {st.category}: cost {fmt_yuan(st.medfee_sumamt)}, "
            f"fund (hifp_pay) {fmt_yuan(st.hifp_pay)}, person {fmt_yuan(st.psn_part_amt)} yuan"
        )
    req = ms.ClaimRequest(DEMO_PSN_NO, "Synthetic Textiles Co. (合成)", "birth", birth, DEMO_WAGE)
    cid = ms.file_claim(engine, req, actor="demo-clerk")
    ms.review(engine, cid, "check", actor="demo-clerk")
    row = ms.review(engine, cid, "approve", actor="demo-chief", note="synthetic demo")
    say(
        f"maternity (SYNTHETIC): allowance claim {cid} {row.status}: {row.contribution_months} months paid, "
        f"{row.days} days × {fmt_yuan(row.average_wage)} / 30 = {fmt_yuan(row.allowance)} + lump sum "
        f"{fmt_yuan(row.lump_sum)} = {fmt_yuan(row.amount)} yuan (生育津贴)"
    )
    return lines
