"""The proxy-pickup log (长期处方代取药登记): record and list.

《长期处方管理规范(试行)》 (seed 002 line 963): a proxy collects long-prescription drugs with their
own and the patient's ID and the pickup is logged.  :func:`record_pickup` adds one log row in the
caller's transaction (the settlement's, when a 2207 carries ``agnterinfo``; its own for the CLI and
REST); a refused request raises :class:`ProxyPickupError` before anything is added.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.benefits.policy import PolicyBook
from yibao.codes import registry
from yibao.core import db
from yibao.core.errors import YibaoError
from yibao.core.masking import mask_middle
from yibao.longrx.models import ProxyPickup
from yibao.longrx.params import ProxyRules, default_rules
from yibao.settlement import records

MANUAL, INTERFACE = "manual", "interface"


class ProxyPickupError(YibaoError):
    """A proxy-pickup registration refused (代取药登记被拒绝)."""

    code = "E_LONGRX_PROXY"


@dataclass(frozen=True)
class ProxyPickupRequest:
    setl_id: str
    proxy_name: str
    proxy_cert_type: str
    proxy_certno: str  # in full: checked, then stored masked only
    relation: str  # a relation key or its agnter_rlts code (data/longrx/proxy.yaml)
    operator: str
    psn_no: str = ""  # when given, must be the settlement's patient
    picked_up_at: dt.datetime | None = None  # default: now
    source: str = MANUAL


def _refuse(en: str, zh: str, field: str) -> ProxyPickupError:
    return ProxyPickupError(en, zh, field=field)


def _check_fields(req: ProxyPickupRequest, rules: ProxyRules) -> str:
    """The request's own fields; returns the relation key."""
    if not req.proxy_name.strip():
        raise _refuse("the proxy's name is missing", "代取人姓名不能为空", "proxy_name")
    if len(req.proxy_name.strip()) > 50:
        raise _refuse("the proxy's name is longer than 50 characters", "代取人姓名超过 50 个字符", "proxy_name")
    if not req.proxy_certno.strip():
        raise _refuse(
            "the proxy's ID number is missing: a proxy must show a valid ID document",
            "代取人证件号码为空: 代取药须持本人有效身份证件",
            "proxy_certno",
        )
    if req.proxy_cert_type not in rules.cert_types:
        raise _refuse(
            f"unknown ID document type {req.proxy_cert_type!r}; known: {sorted(rules.cert_types)}",
            f"证件类型 {req.proxy_cert_type!r} 无效",
            "proxy_cert_type",
        )
    relation = rules.relation_key(req.relation)
    if relation is None:
        raise _refuse(
            f"unknown relation {req.relation!r}; known: {sorted(rules.relations)}",
            f"代取人与患者关系 {req.relation!r} 无效",
            "relation",
        )
    if not req.operator.strip():
        raise _refuse("the operator is missing", "经办人不能为空", "operator")
    return relation


def _settlement(s: Session, req: ProxyPickupRequest) -> records.Settlement:
    row = s.get(records.Settlement, req.setl_id) if req.setl_id else None
    if row is None or row.refd_setl_flag:
        raise _refuse(f"unknown settlement {req.setl_id!r}", f"结算ID {req.setl_id!r} 不存在", "setl_id")
    if req.psn_no and req.psn_no != row.psn_no:
        raise _refuse(
            f"settlement {req.setl_id} is not of person {req.psn_no}",
            f"结算 {req.setl_id} 不属于参保人 {req.psn_no}",
            "psn_no",
        )
    return row


def _normal_certno(certno: str) -> str:
    return certno.strip().upper()


def has_long_rx(s: Session, setl: records.Settlement, book: PolicyBook | None = None) -> bool:
    """Does the settlement's encounter carry a line over the policy's ``long_rx_over_days``, in a take-home med_type?

    The med_types are the disease list's (``long_term_prescription.diseases.med_types``): inpatient drug days
    are not a prescription someone collects.
    """
    person = s.get(registry.Person, setl.psn_no)
    book = book or PolicyBook.default()
    day = setl.setl_time.astimezone(db.SHANGHAI).date()
    rule = book.policy((person.insuplc_admdvs if person else "") or "").snapshot(day).long_term_prescription
    if rule.diseases is not None and (setl.med_type or "") not in rule.diseases.med_types:
        return False
    days = rule.long_rx_over_days
    longest = s.scalar(
        select(records.FeeDetail.prd_days)
        .where(records.FeeDetail.mdtrt_id == setl.mdtrt_id)
        .order_by(records.FeeDetail.prd_days.desc())
        .limit(1)
    )
    return (longest or 0) > days


def record_pickup(
    s: Session,
    req: ProxyPickupRequest,
    *,
    now: dt.datetime,
    book: PolicyBook | None = None,
    rules: ProxyRules | None = None,
) -> ProxyPickup:
    """Check ``req`` and add its log row to ``s`` (the caller commits); refuses before adding anything."""
    rules = rules or default_rules()
    relation = _check_fields(req, rules)
    setl = _settlement(s, req)
    person = s.get(registry.Person, setl.psn_no)
    if person is not None and person.certno and _normal_certno(person.certno) == _normal_certno(req.proxy_certno):
        raise _refuse(
            "the proxy is the patient: a patient collecting their own drugs is not a proxy pickup",
            "代取人为患者本人: 本人取药无需代取药登记",
            "proxy_certno",
        )
    when = req.picked_up_at or now
    if when.tzinfo is None:
        when = when.replace(tzinfo=db.SHANGHAI)
    if when < setl.setl_time or when > now + dt.timedelta(minutes=5):
        raise _refuse(
            "the pickup time must lie between the settlement time and now",
            "取药时间须在结算时间与当前时间之间",
            "picked_up_at",
        )
    if s.scalar(select(ProxyPickup.id).where(ProxyPickup.setl_id == setl.setl_id)) is not None:
        raise _refuse(
            f"settlement {setl.setl_id} already has a proxy pickup", f"结算 {setl.setl_id} 已有代取药登记", "setl_id"
        )
    if rules.long_rx_only and not has_long_rx(s, setl, book):
        raise _refuse(
            f"settlement {setl.setl_id} carries no long prescription",
            f"结算 {setl.setl_id} 不含长期处方, 无需代取药登记",
            "setl_id",
        )
    row = ProxyPickup(
        setl_id=setl.setl_id,
        mdtrt_id=setl.mdtrt_id,
        psn_no=setl.psn_no,
        proxy_name=req.proxy_name.strip(),
        proxy_cert_type=req.proxy_cert_type,
        proxy_certno_masked=mask_middle(
            _normal_certno(req.proxy_certno), rules.certno_mask.keep_start, rules.certno_mask.keep_end
        ),
        relation=relation,
        picked_up_at=when,
        operator=req.operator.strip(),
        source=req.source,
        created_at=now,
    )
    s.add(row)
    s.flush()
    return row


def list_pickups(
    s: Session, psn_no: str | None = None, setl_id: str | None = None, limit: int = 200
) -> list[ProxyPickup]:
    q = select(ProxyPickup).order_by(ProxyPickup.picked_up_at.desc(), ProxyPickup.id.desc()).limit(limit)
    if psn_no:
        q = q.where(ProxyPickup.psn_no == psn_no)
    if setl_id:
        q = q.where(ProxyPickup.setl_id == setl_id)
    return list(s.scalars(q))
