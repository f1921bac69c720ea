"""Commercial layer's writes, each ONE transaction: enrol (投保), file a direct claim (一站式理赔) after settlement,
and the insurer's TPA actions (accept / pay / refuse), idempotent on the insurer's message id and all audited.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from yibao.commercial.mechanics import Accumulators, ClaimParts, insurer_payment
from yibao.commercial.models import (
    CommercialAccumulator,
    CommercialClaim,
    CommercialPolicy,
    TpaMessage,
)
from yibao.commercial.products import CommercialError, Product
from yibao.core import db
from yibao.core.db import SHANGHAI, session_scope
from yibao.core.masking import mask_middle

TRANSITIONS = {
    "accept": ({"sent"}, "accepted"),
    "pay": ({"sent", "accepted"}, "paid"),
    "refuse": ({"sent", "accepted"}, "refused"),
}


def _now() -> dt.datetime:
    return dt.datetime.now(SHANGHAI)


def enrol(
    engine: Engine, product: Product, psn_no: str, *, pre_existing: bool = False, on: dt.date | None = None
) -> int:
    """Sell one policy: within the enrolment window, once per person-product-year."""
    on = on or _now().date()
    if not psn_no:
        raise CommercialError("psn_no is required", "缺少人员编号", field="psn_no")
    if not (product.enrolment.opens <= on <= product.enrolment.closes):
        raise CommercialError(
            f"enrolment for {product.product_id} is closed on {on}",
            f"{product.product_id} 不在投保期 ({on})",
            field="on",
        )
    with session_scope(engine) as s:
        if (
            s.scalar(
                select(CommercialPolicy.id).where(
                    CommercialPolicy.psn_no == psn_no,
                    CommercialPolicy.product_id == product.product_id,
                    CommercialPolicy.year == product.year,
                )
            )
            is not None
        ):
            raise CommercialError(
                f"{psn_no} already holds {product.product_id} for {product.year}",
                f"{psn_no} 已投保 {product.product_id}",
                field="psn_no",
            )
        pol = CommercialPolicy(
            psn_no=psn_no,
            product_id=product.product_id,
            year=product.year,
            premium_fen=product.premium_yuan,
            pre_existing=pre_existing,
            created_at=_now(),
        )
        s.add(pol)
        s.flush()
        return pol.id


def file_claim(engine: Engine, product: Product, setl_id: str, psn_no: str, parts: ClaimParts) -> CommercialClaim:
    """Pass one settled claim to the insurer: compute its payment against the person's accumulators (status sent)."""
    with session_scope(engine, immediate=True) as s:
        pol = s.scalar(
            select(CommercialPolicy).where(
                CommercialPolicy.psn_no == psn_no,
                CommercialPolicy.product_id == product.product_id,
                CommercialPolicy.year == product.year,
            )
        )
        if pol is None:
            raise CommercialError(
                f"{psn_no} holds no {product.product_id} policy for {product.year}",
                f"{psn_no} 未投保 {product.product_id}",
                field="psn_no",
            )
        if (
            s.scalar(
                select(CommercialClaim.id).where(
                    CommercialClaim.setl_id == setl_id, CommercialClaim.product_id == product.product_id
                )
            )
            is not None
        ):
            raise CommercialError(
                f"settlement {setl_id} already claimed", f"结算 {setl_id} 已申请理赔", field="setl_id"
            )
        acc = s.get(CommercialAccumulator, (psn_no, product.product_id, product.year))
        if acc is None:
            acc = CommercialAccumulator(
                psn_no=psn_no, product_id=product.product_id, year=product.year, deductible_used=0, paid=0
            )
            s.add(acc)
        pay = insurer_payment(
            product, parts, Accumulators(acc.deductible_used, acc.paid), pre_existing=pol.pre_existing
        )
        acc.deductible_used, acc.paid = pay.after.deductible_used, pay.after.paid
        now = _now()
        c = CommercialClaim(
            setl_id=setl_id,
            product_id=product.product_id,
            insurer=product.insurer,
            psn_no=psn_no,
            year=product.year,
            in_list_fen=parts.in_list,
            out_of_list_fen=parts.out_of_list,
            specific_drug_fen=parts.specific_drug,
            deductible_fen=pay.deductible_applied,
            insurer_pays_fen=pay.insurer_pays,
            status="sent",
            insurer_ref="",
            refuse_reason="",
            created_at=now,
            updated_at=now,
        )
        s.add(c)
        s.flush()
        s.expunge(c)
        return c


def mask_psn(psn_no: str) -> str:
    """De-identified person reference for the insurer: first 2 and last 2 characters."""
    return mask_middle(psn_no, 2, 2)


def claim_view(c: CommercialClaim) -> dict[str, Any]:
    """Only what the product needs (no name, certificate number, diagnosis)."""
    return {
        "claim_id": c.id,
        "setl_id": c.setl_id,
        "product_id": c.product_id,
        "psn": mask_psn(c.psn_no),
        "year": c.year,
        "in_list_fen": c.in_list_fen,
        "out_of_list_fen": c.out_of_list_fen,
        "specific_drug_fen": c.specific_drug_fen,
        "deductible_fen": c.deductible_fen,
        "insurer_pays_fen": c.insurer_pays_fen,
        "status": c.status,
        "insurer_ref": c.insurer_ref,
        "refuse_reason": c.refuse_reason,
    }


def _audit(s: Any, insurer: str, action: str, claim_id: int | None, outcome: Any, msgid: str | None = None) -> None:
    s.add(
        TpaMessage(
            msgid=msgid,
            insurer=insurer,
            action=action,
            claim_id=claim_id,
            outcome=json.dumps(outcome, ensure_ascii=False),
            at=_now(),
        )
    )


def list_claims(engine: Engine, insurer: str, status: str | None = "sent") -> list[dict[str, Any]]:
    with session_scope(engine) as s:
        q = select(CommercialClaim).where(CommercialClaim.insurer == insurer)
        if status:
            q = q.where(CommercialClaim.status == status)
        out = [claim_view(c) for c in s.scalars(q.order_by(CommercialClaim.id))]
        _audit(s, insurer, "list", None, {"count": len(out)})
        return out


def get_claim(engine: Engine, insurer: str, claim_id: int) -> dict[str, Any]:
    with session_scope(engine) as s:
        c = s.get(CommercialClaim, claim_id)
        if c is None or c.insurer != insurer:  # another insurer's claim is as unknown as a missing one
            raise CommercialError(f"unknown claim {claim_id}", f"未知的理赔 {claim_id}", field="claim_id")
        _audit(s, insurer, "detail", claim_id, {})
        return claim_view(c)


def act(
    engine: Engine, insurer: str, claim_id: int, action: str, msgid: str, *, insurer_ref: str = "", reason: str = ""
) -> dict[str, Any]:
    """accept / pay / refuse one claim; a repeated ``msgid``
    from the same insurer returns the first answer unchanged.
    """
    if action not in TRANSITIONS:
        raise CommercialError(f"unknown action {action!r}", f"未知操作 {action!r}", field="action")
    if not msgid:
        raise CommercialError("msgid is required", "缺少报文编号", field="msgid")
    if action == "refuse" and not reason.strip():
        raise CommercialError("a refusal needs a reason", "拒赔须说明理由", field="reason")
    try:
        with session_scope(engine, immediate=True) as s:
            prior = s.scalar(select(TpaMessage).where(TpaMessage.msgid == msgid))
            if prior is not None:
                if prior.insurer != insurer or prior.action != action or prior.claim_id != claim_id:
                    raise CommercialError(
                        f"msgid {msgid} was used for another request", f"报文编号 {msgid} 已用于其他请求", field="msgid"
                    )
                return json.loads(prior.outcome)
            c = s.get(CommercialClaim, claim_id)
            if c is None or c.insurer != insurer:
                raise CommercialError(f"unknown claim {claim_id}", f"未知的理赔 {claim_id}", field="claim_id")
            allowed, to = TRANSITIONS[action]
            if c.status not in allowed:
                raise CommercialError(
                    f"claim {claim_id} is {c.status}: cannot {action}",
                    f"理赔 {claim_id} 状态为 {c.status}, 不能{action}",
                    field="action",
                )
            c.status, c.updated_at = to, _now()
            if insurer_ref:
                c.insurer_ref = insurer_ref
            if action == "refuse":
                c.refuse_reason = reason
                acc = db.must_get(s, CommercialAccumulator, (c.psn_no, c.product_id, c.year))
                acc.paid -= c.insurer_pays_fen  # a refused claim no longer counts towards the ceiling
            out = claim_view(c)
            _audit(s, insurer, action, claim_id, out, msgid)
            return out
    except IntegrityError:  # a concurrent call with the same msgid won the race
        raise CommercialError(
            f"msgid {msgid} is being processed; retry", f"报文编号 {msgid} 正在处理, 请重试", field="msgid"
        ) from None
