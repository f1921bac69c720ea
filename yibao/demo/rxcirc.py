"""Demo of prescription circulation (处方流转), SYNTHETIC: an online follow-up at a demo hospital's internet
hospital, a prescription written there, filled and settled at a demo pharmacy, and a second fill refused.

The shipped designation files list illustrative codes, not the synthetic region's; the demo designates the
hospital and pharmacy it picks for a month around the visit, in memory only (labelled synthetic, nothing written
to the data files).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.engine import Engine

from yibao.core.errors import YibaoError


def _pick(engine: Engine) -> dict | None:
    """A person's latest offline outpatient visit at a hospital that has a doctor, and a pharmacy of its region."""
    from yibao.core.contract import MED_TYPE_OUTPATIENT, PRAC_PSN_TYPE_DOCTOR

    with engine.connect() as c:
        visit = c.execute(
            text(
                "SELECT e.mdtrt_id, e.psn_no, e.fixmedins_code, e.begntime, e.dise_codg, i.admdvs, pr.prac_psn_code "
                "FROM encounter e JOIN institution i USING (fixmedins_code) "
                "JOIN practitioner pr ON pr.fixmedins_code = e.fixmedins_code AND pr.prac_psn_type = :dr "
                "WHERE e.med_type = :mt AND i.fixmedins_type = 'hospital' AND e.dise_codg <> '' "
                "ORDER BY e.begntime DESC, e.mdtrt_id, pr.prac_psn_code LIMIT 1"
            ),
            {"dr": PRAC_PSN_TYPE_DOCTOR, "mt": MED_TYPE_OUTPATIENT},
        ).first()
        if visit is None:
            return None
        pharmacy = c.execute(
            text(
                "SELECT fixmedins_code FROM institution WHERE fixmedins_type = 'pharmacy' AND admdvs = :a "
                "ORDER BY fixmedins_code LIMIT 1"
            ),
            {"a": visit.admdvs},
        ).scalar()
    if pharmacy is None:
        return None
    return {**visit._mapping, "pharmacy": pharmacy}


def _drugs(svc, n: int = 2) -> list[str]:
    """The first ``n`` 甲类 western drugs of the list without restrictions (codes sorted)."""
    from yibao.core.contract import CLASS_A

    items = svc.settlement.catalog.items
    ok = [
        c
        for c, it in sorted(items.items())
        if it.is_drug and it.chrgitm_lv == CLASS_A and not it.lmt_indication and not it.drug_class
    ]
    return ok[:n]


def demo_rxcirc(engine: Engine) -> list[str]:
    """Run the demo on ``engine`` (a loaded synthetic region); lines describing what happened, for a text file.

    Idempotent enough to run twice: the second run reports the refusals (already settled / already uploaded).
    """
    from yibao.core.contract import MED_TYPE_OUTPATIENT
    from yibao.core.money import fmt_yuan
    from yibao.rxcirc.params import load_internet_hospital
    from yibao.rxcirc.prescription import Designation, Designations
    from yibao.rxcirc.service import (
        ConsultRequest,
        FillLine,
        FillRequest,
        IssueLine,
        IssueRequest,
        RxService,
        default_service,
    )

    p = _pick(engine)
    if p is None:
        return ["SYNTHETIC demo: no outpatient visit with a doctor and a pharmacy in the database; skipped"]
    begn = p["begntime"] if isinstance(p["begntime"], dt.datetime) else dt.datetime.fromisoformat(str(p["begntime"]))
    if begn.tzinfo is None:
        from yibao.core.db import SHANGHAI

        begn = begn.replace(tzinfo=SHANGHAI)
    online_at = begn + dt.timedelta(days=7)
    window = [
        Designation.model_validate(
            {"code": c, "from": online_at.date() - dt.timedelta(days=1), "to": online_at.date() + dt.timedelta(days=30)}
        )
        for c in (p["fixmedins_code"], p["pharmacy"])
    ]
    base = default_service(engine)
    internet = load_internet_hospital().model_copy(update={"institutions": window[:1]})
    svc = RxService(base.settlement, designations=Designations(pharmacies=window[1:]), internet=internet)
    out = [
        "SYNTHETIC demo 演示 (合成数据): prescription circulation 处方流转 and internet-hospital follow-up 互联网复诊",
        f"person {p['psn_no']}, offline visit {p['mdtrt_id']} at {p['fixmedins_code']} on {begn.date()} "
        f"({p['dise_codg']})",
    ]
    tag = p["mdtrt_id"][-12:]
    try:
        c = svc.consult(
            ConsultRequest(
                f"NET{tag}", p["psn_no"], p["fixmedins_code"], (p["dise_codg"],), online_at, 1500, f"DEMO-NET-{tag}"
            )
        )
        st = c.settlement.settlement
        out.append(
            f"online follow-up NET{tag}: ¥15.00 consultation, pool {fmt_yuan(st.hifp_pay)}, "
            f"account {fmt_yuan(st.acct_pay)}, "
            f"cash {fmt_yuan(st.psn_cash_pay)} (follows {c.prior_mdtrt_id})"
        )
        drugs = _drugs(svc)
        v = svc.issue(
            IssueRequest(
                f"DEMO-{tag}",
                p["fixmedins_code"],
                p["prac_psn_code"],
                p["psn_no"],
                MED_TYPE_OUTPATIENT,
                (p["dise_codg"],),
                online_at + dt.timedelta(minutes=20),
                tuple(IssueLine(d, 2000, 7) for d in drugs),
                mdtrt_id=f"NET{tag}",
                synthetic=True,
            )
        )
        out.append(
            f"prescription {v.hi_rxno} issued at {v.issuer_code} by {v.prac_psn_code}, "
            f"valid until {v.valid_end_date}, sm3 {v.sm3_digest[:16]}…"
        )
        lines = tuple(FillLine(d, 2000, 1250, 7) for d in drugs)  # ¥12.50 each, synthetic prices
        f = svc.fill(
            FillRequest(
                v.hi_rxno, p["pharmacy"], lines, online_at + dt.timedelta(days=1), f"DEMO-FILL-{tag}", delivery_fee=800
            )
        )
        st = f.settlement.settlement
        out.append(
            f"filled at pharmacy {p['pharmacy']} and settled {f.settlement.setl_id} at the issuer's level {f.hosp_lv}: "
            f"total {fmt_yuan(st.medfee_sumamt)}, fund {fmt_yuan(st.fund_pay_sumamt)}, "
            f"account {fmt_yuan(st.acct_pay)}, "
            f"cash {fmt_yuan(st.psn_cash_pay)}; delivery ¥8.00 self-paid → cash in all {fmt_yuan(f.cash_with_delivery)}"
        )
        svc.fill(FillRequest(v.hi_rxno, p["pharmacy"], lines, online_at + dt.timedelta(days=1), f"DEMO-FILL2-{tag}"))
    except YibaoError as e:
        out.append(f"refused 拒绝: {e.message_en} / {e.message_zh}")
    return out
