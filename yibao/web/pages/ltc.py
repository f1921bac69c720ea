"""Console page ``ltc`` (长护险, bureau): recipients by grade and setting, monthly fund spend, funding split."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from yibao.core.db import session_scope
from yibao.web.auth import Principal
from yibao.web.console import ConsoleDep
from yibao.web.deps import page

GRADE_ZH = {"none": "基本正常", "mild": "轻度失能", "moderate": "中度失能", "severe": "重度失能"}
SETTING_ZH = {"institutional": "机构护理", "home_by_institution": "居家上门护理", "home_by_family": "居家家庭护理"}
SOURCE_ZH = {"individual": "个人缴费", "pool": "医保统筹划转", "finance": "财政补助"}


def ltc_figures(engine: Any) -> dict[str, Any]:
    from yibao.ltc.models import LtcClaim, LtcRecipient
    from yibao.ltc.params import get_rules

    with session_scope(engine) as s:
        by_grade = s.execute(
            select(LtcClaim.grade, LtcClaim.setting, func.count(func.distinct(LtcClaim.recipient_id)))
            .group_by(LtcClaim.grade, LtcClaim.setting)
            .order_by(LtcClaim.grade, LtcClaim.setting)
        ).all()
        months = s.execute(
            select(
                LtcClaim.month,
                func.count(),
                func.sum(LtcClaim.cost_fen),
                func.sum(LtcClaim.fund_fen),
                func.sum(LtcClaim.person_fen),
            )
            .group_by(LtcClaim.month)
            .order_by(LtcClaim.month)
        ).all()
        recipients = s.scalar(select(func.count()).select_from(LtcRecipient))
    rules = get_rules("nantong")
    return {
        "recipients": recipients,
        "by_grade": by_grade,
        "months": months,
        "funding": list(rules.funding_per_person_year.items()),
        "grade_zh": GRADE_ZH,
        "setting_zh": SETTING_ZH,
        "source_zh": SOURCE_ZH,
    }


router = APIRouter()


@router.get("/ltc")
def ltc_page(request: Request, c: ConsoleDep, p: Annotated[Principal, Depends(page("ltc"))]) -> Response:
    return c.render(request, "ltc.html", p, f=ltc_figures(c.engine))
