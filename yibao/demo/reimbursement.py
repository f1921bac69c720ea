"""The demo's manual reimbursement (手工报销演示, SYNTHETIC): a paper claim from an out-of-province hospital is
entered, reviewed by two bureau staff and paid by the settlement engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from yibao.codes.medlist import DRUG_KINDS
from yibao.codes.registry import Person
from yibao.core import db
from yibao.core.contract import CLASS_A, INSUTYPE_RESIDENT, MED_TYPE_INPATIENT
from yibao.core.errors import YibaoError
from yibao.core.money import fmt_yuan

__all__ = ["demo_reimbursement"]


def _far_division(home: str) -> str:
    return "110100" if home.startswith("32") else "320500"  # Beijing or Suzhou: another province than home


def _plain_drug(svc) -> str | None:
    """An unrestricted 甲类 drug of the list (the demo's coded invoice line)."""
    for code, it in svc.catalog.items.items():
        if it.chrgitm_lv == CLASS_A and it.list_kind in DRUG_KINDS and not it.restricted and not it.effective_cap:
            return str(code)
    return None


def demo_reimbursement(
    engine: Engine, today: dt.date | None = None, echo: Callable[[str], None] | None = None
) -> list[str]:
    """Open, submit, review and approve one SYNTHETIC manual claim; the lines describing it."""
    from yibao.reimbursement.service import Actor, ClaimRequest, InvoiceLine, ReimbursementService, default_service

    lines: list[str] = []
    say = echo or lines.append
    svc = default_service(engine)
    if today is not None:  # the demo's own day (tests): the service's clock says it too
        noon = dt.datetime.combine(today, dt.time(12), db.SHANGHAI)
        svc = ReimbursementService(engine, svc.book, svc.catalog, clock=lambda: noon)
    today = today or dt.datetime.now(db.SHANGHAI).date()
    with db.session_scope(engine) as s:
        p = s.scalars(
            select(Person)
            .where(Person.insutype == INSUTYPE_RESIDENT, Person.synthetic.is_(True))
            .order_by(Person.psn_no)
            .limit(1)
        ).first()
    drug = _plain_drug(svc)
    if p is None or drug is None:
        return lines
    far = _far_division(p.insuplc_admdvs or "")
    req = ClaimRequest(
        psn_no=p.psn_no,
        med_type=MED_TYPE_INPATIENT,
        begin_date=today - dt.timedelta(days=30),
        end_date=today - dt.timedelta(days=24),
        reason="cross_province",
        dise_codg="J18.9",
        provider_name="异地三级医院 (SYNTHETIC demo hospital)",
        provider_admdvs=far,
        hosp_lv=3,
        documents=("invoice", "itemised_bill", "discharge_summary"),
        synthetic=True,
        lines=(
            InvoiceLine(f"DEMO-{p.psn_no}-1", 420000, med_list_codg=drug, item_text="药品"),
            InvoiceLine(f"DEMO-{p.psn_no}-1", 36000, quantity_milli=6000, item_text="陪护床位费 (无医保编码)"),
        ),
    )
    try:
        cid = svc.open_claim(Actor("demo-clerk", "bureau"), req)
        svc.review(cid, "submit", Actor("demo-clerk", "bureau"))
        svc.review(cid, "first_review", Actor("demo-reviewer-1", "bureau"), comment="票据与清单一致 (demo)")
        d = svc.review(cid, "approve", Actor("demo-reviewer-2", "bureau"), comment="复核通过 (demo)")
    except YibaoError as e:
        say(f"manual reimbursement (SYNTHETIC): refused: {e.message_en} / {e.message_zh}")
        return lines
    st = svc.get(cid)["settlement"]
    say(
        f"manual reimbursement 手工报销 (SYNTHETIC): claim {cid} of resident {p.psn_no}, inpatient care at an "
        f"out-of-province hospital ({far}, level 3, not filed) entered from paper invoices: "
        f"¥{fmt_yuan(st['medfee_sumamt'])} claimed (¥{fmt_yuan(st['fulamt_ownpay_amt'])} without a national code, "
        "fully self-paid)"
    )
    say(
        f"  reviewed by demo-reviewer-1 (初审) and demo-reviewer-2 (复核); settled by the engine as {d['setl_id']}: "
        f"ratio {st['pool_prop_selfpay_bp'] / 100:g} % (the policy's unfiled reduction), fund "
        f"¥{fmt_yuan(st['fund_pay_sumamt'])}, paid to the person ¥{fmt_yuan(d['reimbursed_fen'])}"
    )
    return lines
