"""The filing register (异地就医备案): add, cancel, list, and the filing in force on a day of care.

Every write is one transaction; a refused request changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.codes.divisions import is_admdvs, is_cross_province
from yibao.core.errors import YibaoError
from yibao.crossregion.models import CrossFiling
from yibao.crossregion.params import FilingRules, load_rules

ACTIVE, CANCELLED = "active", "cancelled"


class FilingError(YibaoError):
    """A filing request refused (备案申请被拒绝)."""

    code = "filing"


@dataclass(frozen=True)
class FilingRequest:
    psn_no: str
    insutype: str
    filing_type: str
    insured_admdvs: str
    treatment_admdvs: str
    begin_date: dt.date
    end_date: dt.date | None = None
    source_msgid: str = ""


def _check(req: FilingRequest, rules: FilingRules) -> None:
    if not req.psn_no:
        raise FilingError("psn_no is required", "人员编号不能为空", field="psn_no")
    if req.filing_type not in rules.types:
        raise FilingError(
            f"unknown filing type {req.filing_type!r}", f"未知的备案类型: {req.filing_type}", field="filing_type"
        )
    for name, code in (("insured_admdvs", req.insured_admdvs), ("treatment_admdvs", req.treatment_admdvs)):
        if not is_admdvs(code):
            raise FilingError(
                f"{name} must be a 6-digit division code: {code!r}",
                f"{name} 须为 6 位医保区划编码: {code!r}",
                field=name,
            )
    if not is_cross_province(req.insured_admdvs, req.treatment_admdvs):
        raise FilingError(
            "the place of treatment is in the insured province: no cross-province filing",
            "就医地与参保地同省, 无需跨省备案",
            field="treatment_admdvs",
        )
    if req.end_date is not None and req.end_date < req.begin_date:
        raise FilingError(
            f"end date {req.end_date} is before begin date {req.begin_date}",
            f"备案结束日期 {req.end_date} 早于开始日期 {req.begin_date}",
            field="enddate",
        )


def _overlaps(a_begin: dt.date, a_end: dt.date | None, b_begin: dt.date, b_end: dt.date | None) -> bool:
    return (a_end is None or b_begin <= a_end) and (b_end is None or a_begin <= b_end)


def add_filing(
    s: Session, req: FilingRequest, *, now: dt.datetime | None = None, rules: FilingRules | None = None
) -> CrossFiling:
    """Record a filing (in the caller's transaction); overlapping
    active filings of the person and insutype are refused.
    """
    rules = rules or load_rules()
    _check(req, rules)
    end = req.end_date if req.end_date is not None else rules.default_end(req.filing_type, req.begin_date)
    if (
        req.source_msgid
        and s.execute(select(CrossFiling.id).where(CrossFiling.source_msgid == req.source_msgid)).first()
    ):
        raise FilingError(
            f"msgid {req.source_msgid!r} was already used", f"报文ID {req.source_msgid} 已使用", field="msgid"
        )
    for f in _active(s, req.psn_no, req.insutype):
        if _overlaps(f.begin_date, f.end_date, req.begin_date, end):
            raise FilingError(
                f"filing {f.id} ({f.begin_date}..{f.end_date or 'open'}) overlaps the requested period",
                f"与已有备案 {f.id} ({f.begin_date}..{f.end_date or '长期'}) 时间重叠",
                field="begndate",
            )
    row = CrossFiling(
        psn_no=req.psn_no,
        insutype=req.insutype,
        filing_type=req.filing_type,
        insured_admdvs=req.insured_admdvs,
        treatment_admdvs=req.treatment_admdvs,
        begin_date=req.begin_date,
        end_date=end,
        status=ACTIVE,
        source_msgid=req.source_msgid,
        created_at=now or dt.datetime.now(dt.UTC),
    )
    s.add(row)
    s.flush()
    return row


def cancel_filing(s: Session, filing_id: int) -> CrossFiling:
    """Cancel a filing (备案撤销)."""
    row = s.get(CrossFiling, filing_id)
    if row is None:
        raise FilingError(f"unknown filing {filing_id}", f"备案不存在: {filing_id}", field="filing_id")
    if row.status != ACTIVE:
        raise FilingError(f"filing {filing_id} is already cancelled", f"备案 {filing_id} 已撤销", field="filing_id")
    row.status = CANCELLED
    s.flush()
    return row


def _active(s: Session, psn_no: str, insutype: str) -> list[CrossFiling]:
    q = (
        select(CrossFiling)
        .where(CrossFiling.psn_no == psn_no, CrossFiling.insutype == insutype, CrossFiling.status == ACTIVE)
        .order_by(CrossFiling.id)
    )
    return list(s.execute(q).scalars())


def list_filings(s: Session, psn_no: str | None = None) -> list[CrossFiling]:
    q = select(CrossFiling).order_by(CrossFiling.id)
    if psn_no:
        q = q.where(CrossFiling.psn_no == psn_no)
    return list(s.execute(q).scalars())


def filing_in_force(s: Session, psn_no: str, insutype: str, treatment_admdvs: str, day: dt.date) -> CrossFiling | None:
    """The active filing covering ``day`` whose place of treatment is in the treatment province, if any."""
    for f in _active(s, psn_no, insutype):
        if (
            f.begin_date <= day
            and (f.end_date is None or day <= f.end_date)
            and not is_cross_province(f.treatment_admdvs, treatment_admdvs)
        ):
            return f
    return None


def is_filed(s: Session, psn_no: str, insutype: str, treatment_admdvs: str, day: dt.date) -> bool:
    """``cross_filed`` of a claim: whether a filing is in force for the treatment province on the day of care."""
    return filing_in_force(s, psn_no, insutype, treatment_admdvs, day) is not None
