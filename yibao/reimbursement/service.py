"""Manual reimbursement (手工报销 / 零星报销): paper claims entered by staff, reviewed, settled by the same engine.

A claim is opened for a person (``open_claim``), its invoice lines are added (``add_line``), it is submitted
(``submit``) and reviewed through the workflow of ``manual.yaml`` (``review``: first review 初审, return for
correction 退回补正, reject, withdraw, approve 复核).  Approval builds the engine's
:class:`~yibao.settlement.rules.Claim` from the claim and runs
:meth:`yibao.settlement.service.SettlementService.settle` — the direct settlement's path, with its
accumulators, fund parts and personal account — and writes the review step and the claim's link to the
settlement row in the **same** transaction (the settlement's ``guard`` and ``hook``).

* An invoice line without a national code settles as the rule file's placeholder out-of-list item (丙类,
  fully self-paid) and is flagged ``uncoded``.
* Cross-province care: the engine takes ``cross_filed`` from the filing register
  (:func:`yibao.crossregion.service.is_filed`) and the policy applies its ratio reduction; nothing here.
* A free-text provider (not in the institution table) settles under a placeholder institution per division
  and level (``OON-<admdvs>-L<level>``), created on approval.
* An invoice number is used once per person (table ``manual_invoice``; a withdrawn claim releases its
  invoices); care at an institution that already settled it directly (a live settlement of the person there
  in the claim's dates) is refused.

Every write is one transaction; a refusal (:class:`ReimbursementError`, bilingual, naming the field) changes
nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from yibao.benefits.policy import PolicyBook
from yibao.codes import registry
from yibao.codes.divisions import is_admdvs, is_cross_province
from yibao.codes.medlist import MedItem
from yibao.core import db
from yibao.core.contract import MED_TYPE_INPATIENT
from yibao.reimbursement.models import ManualClaim, ManualClaimLine, ManualClaimStep, ManualInvoice
from yibao.reimbursement.params import (
    ReimbursementError,
    ReimbursementForbidden,
    ReimbursementRules,
    Transition,
    Workflow,
    add_months,
    load_rules,
)
from yibao.settlement import records
from yibao.settlement.catalog import Catalog
from yibao.settlement.rules import Claim, FeeLine, PersonFacts, line_amount
from yibao.settlement.service import SettlementService, SettleResult

__all__ = [
    "Actor",
    "ClaimRequest",
    "InvoiceLine",
    "ReimbursementService",
    "request_from_dict",
]

MAX_TEXT = 200


@dataclass(frozen=True)
class Actor:
    """Who takes a step: a console user name, their console role, and (the public) their own psn_no."""

    username: str
    role: str
    psn_no: str | None = None


@dataclass(frozen=True)
class InvoiceLine:
    """One line of a paper invoice (票据明细): amount in fen, quantity × 1000."""

    invoice_no: str
    amount_fen: int
    quantity_milli: int = 1000
    unit_price_fen: int | None = None  # None: amount ÷ quantity
    med_list_codg: str = ""  # the national 医保 code when known
    item_text: str = ""  # the item as the invoice writes it


@dataclass(frozen=True)
class ClaimRequest:
    """A new manual claim: the person, the care (dates, med_type, diagnoses), the provider, the reason."""

    psn_no: str
    med_type: str
    begin_date: dt.date
    end_date: dt.date
    reason: str
    dise_codg: str
    fixmedins_code: str = ""  # an institution of the institution table, or
    provider_name: str = ""  # a free-text provider with
    provider_admdvs: str = ""  # its division and
    hosp_lv: int | None = None  # its level (as reviewed from the invoice)
    other_dise_codg: tuple[str, ...] = ()
    documents: tuple[str, ...] = ()  # documents received (keys of manual.yaml documents)
    synthetic: bool = False
    lines: tuple[InvoiceLine, ...] = field(default=())


def _err(en: str, zh: str, fld: str) -> ReimbursementError:
    return ReimbursementError(en, zh, field=fld)


def _date(v: Any, name: str) -> dt.date:
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v
    try:
        return dt.date.fromisoformat(str(v))
    except ValueError:
        raise _err(f"{name} is not a date (YYYY-MM-DD): {v!r}", f"{name} 不是日期 (YYYY-MM-DD): {v!r}", name) from None


def _int(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _err(f"{name} must be an integer: {v!r}", f"{name} 须为整数: {v!r}", name)
    return v


def line_from_dict(d: dict[str, Any]) -> InvoiceLine:
    """An invoice line from a JSON object (the CLI's file, the REST body)."""
    price = d.get("unit_price_fen")
    return InvoiceLine(
        invoice_no=str(d.get("invoice_no", "")),
        amount_fen=_int(d.get("amount_fen"), "amount_fen"),
        quantity_milli=_int(d.get("quantity_milli", 1000), "quantity_milli"),
        unit_price_fen=None if price is None else _int(price, "unit_price_fen"),
        med_list_codg=str(d.get("med_list_codg") or ""),
        item_text=str(d.get("item_text") or ""),
    )


def request_from_dict(d: dict[str, Any]) -> ClaimRequest:
    """A claim (with its lines) from a JSON object: the field names of :class:`ClaimRequest`."""
    known = set(ClaimRequest.__dataclass_fields__)
    extra = sorted(set(d) - known)
    if extra:
        raise _err(f"unknown field(s) {extra}", f"未知字段: {extra}", extra[0])
    lv = d.get("hosp_lv")
    return ClaimRequest(
        psn_no=str(d.get("psn_no", "")),
        med_type=str(d.get("med_type", "")),
        begin_date=_date(d.get("begin_date"), "begin_date"),
        end_date=_date(d.get("end_date"), "end_date"),
        reason=str(d.get("reason", "")),
        dise_codg=str(d.get("dise_codg", "")),
        fixmedins_code=str(d.get("fixmedins_code") or ""),
        provider_name=str(d.get("provider_name") or ""),
        provider_admdvs=str(d.get("provider_admdvs") or ""),
        hosp_lv=None if lv is None else _int(lv, "hosp_lv"),
        other_dise_codg=tuple(str(x) for x in d.get("other_dise_codg") or ()),
        documents=tuple(str(x) for x in d.get("documents") or ()),
        synthetic=bool(d.get("synthetic", False)),
        lines=tuple(line_from_dict(x) for x in d.get("lines") or ()),
    )


def with_uncoded_item(catalog: Catalog, rules: ReimbursementRules) -> Catalog:
    """The list plus the rule file's placeholder for uncoded invoice lines (an out-of-list, fully self-paid item)."""
    u = rules.uncoded_item
    if u.list_code in catalog:
        return catalog
    item = MedItem(
        med_list_codg=u.list_code,
        name=u.name_zh,
        list_kind="service",
        chrgitm_lv=u.chrgitm_lv,
        selfpay_prop_bp=0,
        pric_uplmt=0,
        lmt_gend="",
        lmt_age_min=-1,
        lmt_age_max=-1,
        lmt_hosp_lv_min=0,
        lmt_indication=(),
        lmt_med_types=(),
        drug_class="",
        acct_excluded=False,
        vbp_flag=False,
        vbp_pay_std=0,
        synthetic=False,
    )
    return Catalog({**catalog.items, u.list_code: item})


def engine_mdtrt_id(claim_id: int) -> str:
    """The encounter id the engine's settlement of a manual claim carries."""
    return f"MR{claim_id:010d}"


class ReimbursementService:
    """Manual claims against a database; ``book`` and ``catalog`` as for :class:`SettlementService`."""

    def __init__(
        self,
        engine: Engine,
        book: PolicyBook,
        catalog: Catalog,
        *,
        rules: ReimbursementRules | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ):
        self.engine = engine
        self.book = book
        self.rules = rules or load_rules()
        self.catalog = with_uncoded_item(catalog, self.rules)
        self.settler = SettlementService(engine, book, self.catalog)
        self.clock = clock or (lambda: dt.datetime.now(db.SHANGHAI))

    @property
    def wf(self) -> Workflow:
        return self.rules.workflow

    # -- checks --------------------------------------------------------------------------

    def _may(self, actor: Actor, roles: Iterable[str], psn_no: str) -> None:
        roles = tuple(roles)
        if actor.role not in roles:
            raise ReimbursementForbidden(
                f"role {actor.role!r} may not take this step (allowed: {', '.join(roles)})",
                f"角色 {actor.role} 无权执行此操作 (可执行角色: {', '.join(roles)})",
                field="role",
            )
        if actor.role in self.wf.own_claim_roles and actor.psn_no != psn_no:
            raise ReimbursementForbidden(
                "this role acts only on its own claims", "该角色只能办理本人的报销申请", field="psn_no"
            )

    def _person(self, s: Session, psn_no: str) -> registry.Person:
        p = s.get(registry.Person, psn_no)
        if p is None:
            raise _err(f"unknown person {psn_no!r}", f"参保人不存在: {psn_no}", "psn_no")
        if not p.insutype or p.brdy is None:
            raise _err(f"person {psn_no}: no insutype or birth date", f"参保人 {psn_no} 信息不全", "psn_no")
        return p

    def _check_care(self, req: ClaimRequest, person: registry.Person, today: dt.date) -> None:
        if req.end_date < req.begin_date:
            raise _err(
                f"end date {req.end_date} is before begin date {req.begin_date}",
                f"结束日期 {req.end_date} 早于开始日期 {req.begin_date}",
                "end_date",
            )
        if req.end_date > today:
            raise _err(f"end date {req.end_date} is in the future", f"结束日期 {req.end_date} 晚于今天", "end_date")
        if req.reason not in self.rules.reasons:
            raise _err(
                f"unknown reason {req.reason!r}; known: {sorted(self.rules.reasons)}",
                f"未知的手工报销原因: {req.reason}",
                "reason",
            )
        med_types = self.book.policy(person.insuplc_admdvs or "").snapshot(req.end_date).med_types
        if req.med_type not in med_types:
            raise _err(f"unknown med_type {req.med_type!r}", f"医疗类别 {req.med_type!r} 无效", "med_type")
        if not req.dise_codg.strip():
            raise _err("a diagnosis (dise_codg) is required", "须填写诊断 (dise_codg)", "dise_codg")
        unknown = [d for d in req.documents if d not in self.rules.documents]
        if unknown:
            raise _err(f"unknown document(s) {unknown}", f"未知的材料: {unknown}", "documents")

    def _provider(self, s: Session, req: ClaimRequest, person: registry.Person) -> tuple[str | None, str, str, int]:
        """(institution code or None, provider name, provider division, level) of the claim."""
        reason = self.rules.reasons[req.reason]
        if req.fixmedins_code:
            inst = s.get(registry.Institution, req.fixmedins_code)
            if inst is None:
                raise _err(
                    f"unknown institution {req.fixmedins_code!r}",
                    f"定点医药机构不存在: {req.fixmedins_code}",
                    "fixmedins_code",
                )
            code, name, area, lv = inst.fixmedins_code, inst.fixmedins_name or "", inst.admdvs or "", inst.hosp_lv or 0
        else:
            self._check_free_text(req, reason.provider)
            code, name, area, lv = None, req.provider_name.strip(), req.provider_admdvs, int(req.hosp_lv or 0)
        if reason.cross_province and not is_cross_province(person.insuplc_admdvs or "", area):
            raise _err(
                f"reason {req.reason!r} needs a provider in another province (provider division {area})",
                f"原因「{reason.name_zh}」须为外省就医 (就医地 {area})",
                "provider_admdvs",
            )
        return code, name[:MAX_TEXT], area, int(lv)

    @staticmethod
    def _check_free_text(req: ClaimRequest, allowed: str) -> None:
        if allowed != "any":
            raise _err(
                f"reason {req.reason!r} needs an institution code (fixmedins_code)",
                "该原因须填写定点机构编号 (fixmedins_code)",
                "fixmedins_code",
            )
        if not req.provider_name.strip():
            raise _err(
                "provider_name or fixmedins_code is required", "须填写就诊机构名称或定点机构编号", "provider_name"
            )
        if not is_admdvs(req.provider_admdvs):
            raise _err(
                f"provider_admdvs must be a 6-digit division code: {req.provider_admdvs!r}",
                f"就医地须为 6 位医保区划编码: {req.provider_admdvs!r}",
                "provider_admdvs",
            )
        if req.hosp_lv not in (0, 1, 2, 3):
            raise _err(f"hosp_lv must be 0..3: {req.hosp_lv!r}", f"医疗机构等级须为 0..3: {req.hosp_lv!r}", "hosp_lv")

    def _priced(self, ln: InvoiceLine) -> tuple[int, str | None]:
        """(unit price fen, list code or None) of a valid line; refused otherwise."""
        if not ln.invoice_no.strip() or len(ln.invoice_no) > 60:
            raise _err("invoice_no is required (at most 60 characters)", "须填写票据号 (最多 60 字符)", "invoice_no")
        if _int(ln.amount_fen, "amount_fen") <= 0:
            raise _err(f"amount_fen must be positive: {ln.amount_fen}", f"金额须为正数: {ln.amount_fen}", "amount_fen")
        if _int(ln.quantity_milli, "quantity_milli") <= 0:
            raise _err("quantity must be positive", "数量须为正数", "quantity_milli")
        price = ln.unit_price_fen
        if price is None:
            price = (ln.amount_fen * 1000 + ln.quantity_milli // 2) // ln.quantity_milli
        if _int(price, "unit_price_fen") < 0 or line_amount(ln.quantity_milli, price) != ln.amount_fen:
            raise _err(
                f"amount {ln.amount_fen} fen ≠ quantity × unit price ({ln.quantity_milli / 1000:g} × {price} fen)",
                "金额与数量×单价不符, 请填写票据上的单价",
                "unit_price_fen",
            )
        code = ln.med_list_codg.strip() or None
        if code is not None and (code not in self.catalog or code == self.rules.uncoded_item.list_code):
            raise _err(f"unknown med_list_codg {code!r}", f"医保目录编码 {code!r} 不存在", "med_list_codg")
        if code is None and not ln.item_text.strip():
            raise _err("a line needs med_list_codg or item_text", "明细须有医保编码或票据项目名称", "item_text")
        return price, code

    def _check_invoice(self, s: Session, psn_no: str, invoice_no: str, claim_id: int) -> bool:
        """True when the invoice is new for the person; refused when another claim of theirs used it."""
        used = s.scalar(
            select(ManualInvoice.claim_id).where(ManualInvoice.psn_no == psn_no, ManualInvoice.invoice_no == invoice_no)
        )
        if used is not None and used != claim_id:
            raise _err(
                f"invoice {invoice_no!r} of {psn_no} was already claimed (claim {used})",
                f"票据 {invoice_no} 已在报销申请 {used} 中使用, 不能重复报销",
                "invoice_no",
            )
        return used is None

    def _check_not_settled_directly(self, s: Session, c: ManualClaim) -> None:
        if not c.fixmedins_code:
            return
        S = records.Settlement
        start = dt.datetime.combine(c.begin_date, dt.time(0), db.SHANGHAI)
        stop = dt.datetime.combine(c.end_date + dt.timedelta(days=1), dt.time(0), db.SHANGHAI)
        mine = select(ManualClaim.setl_id).where(ManualClaim.setl_id.is_not(None))
        hit = s.scalar(
            select(S.setl_id)
            .where(
                S.psn_no == c.psn_no,
                S.fixmedins_code == c.fixmedins_code,
                S.refd_setl_flag.is_(False),
                S.setl_time >= start,
                S.setl_time < stop,
                S.setl_id.not_in(mine),
            )
            .limit(1)
        )
        if hit is not None:
            raise _err(
                f"{c.fixmedins_code} already settled care of {c.psn_no} in these dates directly (settlement {hit})",
                f"该机构已为该参保人在此期间直接结算 (结算 {hit}), 不能再手工报销",
                "fixmedins_code",
            )

    # -- plumbing ------------------------------------------------------------------------

    def _lock(self, s: Session, claim_id: int) -> ManualClaim:
        c = s.execute(
            select(ManualClaim)
            .where(ManualClaim.id == claim_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if c is None:
            raise _err(f"unknown claim {claim_id}", f"报销申请不存在: {claim_id}", "claim_id")
        return c

    def _record(
        self,
        s: Session,
        c: ManualClaim,
        actor: Actor,
        action: str,
        from_state: str,
        comment: str = "",
        payload: dict[str, Any] | None = None,
    ) -> None:
        now = self.clock()
        c.version += 1
        c.updated_at = now
        s.add(
            ManualClaimStep(
                claim_id=c.id,
                at=now,
                actor=actor.username,
                role=actor.role,
                action=action,
                from_state=from_state,
                to_state=c.status,
                comment=comment[:2000],
                payload=payload or {},
            )
        )
        s.flush()

    def _insert_line(self, s: Session, c: ManualClaim, ln: InvoiceLine) -> ManualClaimLine:
        price, code = self._priced(ln)
        invoice = ln.invoice_no.strip()
        if self._check_invoice(s, c.psn_no, invoice, c.id):
            s.add(ManualInvoice(psn_no=c.psn_no, invoice_no=invoice, claim_id=c.id))
        last = s.scalar(select(func.max(ManualClaimLine.line_no)).where(ManualClaimLine.claim_id == c.id))
        row = ManualClaimLine(
            claim_id=c.id,
            line_no=int(last or 0) + 1,
            invoice_no=invoice,
            med_list_codg=code,
            item_text=ln.item_text.strip()[:MAX_TEXT],
            quantity_milli=ln.quantity_milli,
            unit_price_fen=price,
            amount_fen=ln.amount_fen,
            uncoded=code is None,
        )
        s.add(row)
        s.flush()
        return row

    # -- intake ----------------------------------------------------------------------------

    def open_claim(self, actor: Actor, req: ClaimRequest) -> int:
        """Open a claim (state ``draft``) with the request's lines; its id."""
        self._may(actor, self.wf.intake_roles, req.psn_no)
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            person = self._person(s, req.psn_no)
            self._check_care(req, person, now.astimezone(db.SHANGHAI).date())
            code, name, area, lv = self._provider(s, req, person)
            c = ManualClaim(
                psn_no=person.psn_no,
                insutype=person.insutype or "",
                fixmedins_code=code,
                provider_name=name,
                provider_admdvs=area,
                hosp_lv=lv,
                med_type=req.med_type,
                begin_date=req.begin_date,
                end_date=req.end_date,
                dise_codg=req.dise_codg.strip(),
                other_dise_codg=";".join(x.strip() for x in req.other_dise_codg if x.strip()),
                reason=req.reason,
                documents=sorted(set(req.documents)),
                status=self.wf.initial,
                version=0,
                created_by=actor.username,
                created_at=now,
                updated_at=now,
                synthetic=bool(req.synthetic or person.synthetic),
            )
            s.add(c)
            s.flush()
            self._record(s, c, actor, "open", "", payload={"reason": req.reason})
            for ln in req.lines:
                row = self._insert_line(s, c, ln)
                self._record(s, c, actor, "add_line", c.status, payload=_line_payload(row))
            return c.id

    def add_line(self, claim_id: int, actor: Actor, ln: InvoiceLine) -> int:
        """Add an invoice line to a draft or returned claim; its line number."""
        with db.session_scope(self.engine, immediate=True) as s:
            c = self._lock(s, claim_id)
            self._may(actor, self.wf.intake_roles, c.psn_no)
            if c.status not in self.wf.editable:
                raise _err(
                    f"lines can be added only in states {list(self.wf.editable)}, not {c.status!r}",
                    f"报销申请处于「{self.wf.states[c.status].name_zh}」状态, 不能添加明细",
                    "action",
                )
            row = self._insert_line(s, c, ln)
            self._record(s, c, actor, "add_line", c.status, payload=_line_payload(row))
            return row.line_no

    def add_documents(self, claim_id: int, actor: Actor, documents: Iterable[str]) -> list[str]:
        """Record documents received for an editable claim; the claim's documents after."""
        docs = list(documents)
        unknown = [d for d in docs if d not in self.rules.documents]
        if unknown:
            raise _err(f"unknown document(s) {unknown}", f"未知的材料: {unknown}", "documents")
        with db.session_scope(self.engine, immediate=True) as s:
            c = self._lock(s, claim_id)
            self._may(actor, self.wf.intake_roles, c.psn_no)
            if c.status not in self.wf.editable:
                raise _err(f"claim {claim_id} is not editable ({c.status})", "该状态下不能补充材料", "action")
            c.documents = sorted(set(c.documents or []) | set(docs))
            self._record(s, c, actor, "add_documents", c.status, payload={"documents": docs})
            return list(c.documents)

    # -- the workflow ----------------------------------------------------------------------

    def review(self, claim_id: int, action: str, actor: Actor, *, comment: str = "") -> dict[str, Any]:
        """Take a workflow step (``submit``, ``first_review``, ``return``, ``reject``, ``withdraw``, ``approve``)."""
        with db.session_scope(self.engine) as s:
            c = self._lock(s, claim_id)
            t = self.wf.step(c.status, action)
        if t.settles:
            return self._approve(claim_id, actor, t, comment)
        with db.session_scope(self.engine, immediate=True) as s:
            c = self._lock(s, claim_id)
            t = self.wf.step(c.status, action)
            self._check_step(s, c, actor, t)
            if action == "submit":
                self._check_submit(s, c)
            if t.to == "withdrawn":
                s.execute(delete(ManualInvoice).where(ManualInvoice.claim_id == c.id))  # the invoices are free again
            before = c.status
            c.status = t.to
            self._record(s, c, actor, action, before, comment)
            return self._dict(s, c)

    def submit(self, claim_id: int, actor: Actor) -> dict[str, Any]:
        return self.review(claim_id, "submit", actor)

    def _check_step(self, s: Session, c: ManualClaim, actor: Actor, t: Transition) -> None:
        self._may(actor, t.roles, c.psn_no)
        if t.not_by:
            S = ManualClaimStep
            earlier = set(s.scalars(select(S.actor).where(S.claim_id == c.id, S.action.in_(t.not_by))))
            if actor.username in earlier:
                raise ReimbursementForbidden(
                    f"{actor.username} took a {'/'.join(t.not_by)} step on this claim and may not {t.action} it",
                    f"{actor.username} 已办理本申请的 {'/'.join(t.not_by)}, 不能再执行 {t.action} (须由他人复核)",
                    field="actor",
                )

    def _check_submit(self, s: Session, c: ManualClaim) -> None:
        n = s.scalar(select(func.count()).select_from(ManualClaimLine).where(ManualClaimLine.claim_id == c.id))
        if not n:
            raise _err("a claim needs at least one invoice line", "报销申请须至少包含一条票据明细", "lines")
        inpatient = c.med_type == MED_TYPE_INPATIENT
        missing = [d for d in self.rules.required_documents(c.reason, inpatient) if d not in (c.documents or [])]
        if missing:
            names = "、".join(self.rules.documents[d].name_zh for d in missing)
            raise _err(f"documents missing: {missing}", f"缺少材料: {names}", "documents")
        today = self.clock().astimezone(db.SHANGHAI).date()
        months = self.rules.deadline_months(c.end_date)
        last = add_months(c.end_date, months)
        if today > last and c.submitted_on is None:
            raise _err(
                f"the claim deadline ({months} months after {c.end_date}: {last}) has passed",
                f"已超过申报期限 (出院后 {months} 个月, 截至 {last})",
                "end_date",
            )
        self._check_not_settled_directly(s, c)
        if c.submitted_on is None:
            c.submitted_on = today

    # -- approval: the engine ---------------------------------------------------------------

    def engine_claim(self, s: Session, c: ManualClaim) -> Claim:
        """The engine's claim for a manual claim (as a direct settlement of the same care would send it)."""
        p = self._person(s, c.psn_no)
        assert p.brdy is not None  # checked by _person
        facts = PersonFacts(
            p.psn_no,
            p.insutype or "",
            p.psn_type or "",
            p.gend or "",
            p.brdy,
            p.insuplc_admdvs or "",
        )
        lines = s.scalars(
            select(ManualClaimLine).where(ManualClaimLine.claim_id == c.id).order_by(ManualClaimLine.line_no)
        ).all()
        code = self.rules.uncoded_item.list_code
        return Claim(
            mdtrt_id=engine_mdtrt_id(c.id),
            person=facts,
            fixmedins_code=c.fixmedins_code or self.placeholder_institution(c),
            hosp_lv=c.hosp_lv,
            med_type=c.med_type,
            begntime=dt.datetime.combine(c.begin_date, dt.time(0), db.SHANGHAI),
            setl_time=dt.datetime.combine(c.end_date, dt.time(23, 59, 59), db.SHANGHAI),
            dise_codg=c.dise_codg,
            other_dise_codg=tuple(x for x in c.other_dise_codg.split(";") if x),
            lines=tuple(
                FeeLine(ln.line_no, ln.med_list_codg or code, ln.quantity_milli, ln.unit_price_fen, ln.amount_fen)
                for ln in lines
            ),
            mdtrtarea_admvs=c.provider_admdvs,
        )

    def placeholder_institution(self, c: ManualClaim) -> str:
        return f"{self.rules.out_of_network_prefix}-{c.provider_admdvs}-L{c.hosp_lv}"

    def _ensure_placeholder(self, s: Session, c: ManualClaim) -> None:
        if c.fixmedins_code:
            return
        code = self.placeholder_institution(c)
        if s.get(registry.Institution, code) is None:
            s.add(
                registry.Institution(
                    fixmedins_code=code,
                    fixmedins_name=f"院外机构 (手工报销) {c.provider_admdvs} L{c.hosp_lv}",
                    fixmedins_type="out_of_network",
                    hosp_lv=c.hosp_lv,
                    admdvs=c.provider_admdvs,
                    synthetic=bool(c.synthetic),
                )
            )
            s.flush()

    def _approve(self, claim_id: int, actor: Actor, t: Transition, comment: str) -> dict[str, Any]:
        with db.session_scope(self.engine) as s:
            c = self._lock(s, claim_id)
            self._check_step(s, c, actor, t)
            claim, version, before = self.engine_claim(s, c), c.version, c.status

        def guard(s: Session) -> None:  # inside the settlement's transaction, the person locked
            c = self._lock(s, claim_id)
            if c.version != version or c.status != before:
                raise _err(f"claim {claim_id} changed meanwhile; try again", "报销申请已被他人修改, 请重试", "claim_id")
            self._check_step(s, c, actor, t)
            self._check_not_settled_directly(s, c)
            self._ensure_placeholder(s, c)

        out: dict[str, Any] = {}

        def hook(s: Session, reply: SettleResult) -> None:  # the review step, in the same transaction
            if reply.replayed:
                raise _err(f"claim {claim_id} was already settled", f"报销申请 {claim_id} 已结算", "claim_id")
            c = self._lock(s, claim_id)
            st = reply.settlement
            c.status, c.setl_id, c.mdtrt_id = t.to, reply.setl_id, reply.mdtrt_id
            c.reimbursed_fen = st.fund_pay_sumamt + st.acct_pay + st.acct_mulaid_pay
            self._record(s, c, actor, t.action, before, comment, payload=_settle_payload(reply))
            out.update(self._dict(s, c))

        self.settler.settle(
            claim,
            msgid=f"MANUAL-{claim_id}",
            use_account=self.rules.personal_account,
            guard=guard,
            hook=hook,
        )
        return out

    # -- reading -----------------------------------------------------------------------------

    def _dict(self, s: Session, c: ManualClaim) -> dict[str, Any]:
        return claim_dict(c, self.rules, allowed=self.wf.allowed(c.status))

    def get(self, claim_id: int) -> dict[str, Any]:
        """The claim with its lines, history and (when paid) the settlement's shares."""
        with db.session_scope(self.engine) as s:
            c = s.get(ManualClaim, claim_id)
            if c is None:
                raise _err(f"unknown claim {claim_id}", f"报销申请不存在: {claim_id}", "claim_id")
            d = self._dict(s, c)
            L, S = ManualClaimLine, ManualClaimStep
            d["lines"] = [
                _line_payload(x) for x in s.scalars(select(L).where(L.claim_id == claim_id).order_by(L.line_no))
            ]
            d["steps"] = [_step_dict(x) for x in s.scalars(select(S).where(S.claim_id == claim_id).order_by(S.id))]
            d["settlement"] = None
            if c.setl_id:
                row = s.get(records.Settlement, c.setl_id)
                assert row is not None
                d["settlement"] = {k: int(getattr(row, k)) for k in _SHOWN}
                d["settlement"]["pool_prop_selfpay_bp"] = int(row.pool_prop_selfpay_bp or 0)
            return d

    def list_claims(
        self, *, status: str | None = None, psn_no: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        if status is not None and status not in self.wf.states:
            raise _err(f"unknown state {status!r}", f"未知状态: {status}", "status")
        q = select(ManualClaim).order_by(ManualClaim.id.desc()).limit(limit)
        if status:
            q = q.where(ManualClaim.status == status)
        if psn_no:
            q = q.where(ManualClaim.psn_no == psn_no)
        with db.session_scope(self.engine) as s:
            rows = list(s.scalars(q))
            totals = dict(
                s.execute(
                    select(ManualClaimLine.claim_id, func.sum(ManualClaimLine.amount_fen))
                    .where(ManualClaimLine.claim_id.in_([r.id for r in rows]))
                    .group_by(ManualClaimLine.claim_id)
                ).all()
            )
            return [{**self._dict(s, r), "claimed_fen": int(totals.get(r.id, 0))} for r in rows]


_SHOWN = (
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "hifp_pay",
    "hifmi_pay",
    "hifob_pay",
    "cvlserv_pay",
    "maf_pay",
    "fund_pay_sumamt",
    "psn_part_amt",
    "acct_pay",
    "psn_cash_pay",
)


def claim_dict(c: ManualClaim, rules: ReimbursementRules, *, allowed: list[str] | None = None) -> dict[str, Any]:
    reason = rules.reasons.get(c.reason)
    return {
        "claim_id": c.id,
        "psn_no": c.psn_no,
        "insutype": c.insutype,
        "fixmedins_code": c.fixmedins_code,
        "provider_name": c.provider_name,
        "provider_admdvs": c.provider_admdvs,
        "hosp_lv": c.hosp_lv,
        "med_type": c.med_type,
        "begin_date": c.begin_date.isoformat(),
        "end_date": c.end_date.isoformat(),
        "dise_codg": c.dise_codg,
        "other_dise_codg": [x for x in c.other_dise_codg.split(";") if x],
        "reason": c.reason,
        "reason_zh": reason.name_zh if reason else c.reason,
        "documents": list(c.documents or []),
        "status": c.status,
        "status_zh": rules.workflow.states[c.status].name_zh if c.status in rules.workflow.states else c.status,
        "allowed": allowed if allowed is not None else rules.workflow.allowed(c.status),
        "created_by": c.created_by,
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        "submitted_on": c.submitted_on.isoformat() if c.submitted_on else None,
        "setl_id": c.setl_id,
        "mdtrt_id": c.mdtrt_id,
        "reimbursed_fen": c.reimbursed_fen,
        "synthetic": bool(c.synthetic),
    }


def _line_payload(x: ManualClaimLine) -> dict[str, Any]:
    return {
        "line_no": x.line_no,
        "invoice_no": x.invoice_no,
        "med_list_codg": x.med_list_codg,
        "item_text": x.item_text,
        "quantity_milli": int(x.quantity_milli),
        "unit_price_fen": int(x.unit_price_fen),
        "amount_fen": int(x.amount_fen),
        "uncoded": bool(x.uncoded),
    }


def _step_dict(x: ManualClaimStep) -> dict[str, Any]:
    return {
        "id": x.id,
        "at": x.at.isoformat(),
        "actor": x.actor,
        "role": x.role,
        "action": x.action,
        "from_state": x.from_state,
        "to_state": x.to_state,
        "comment": x.comment,
        "payload": x.payload or {},
    }


def _settle_payload(reply: SettleResult) -> dict[str, Any]:
    st = reply.settlement
    return {
        "setl_id": reply.setl_id,
        "mdtrt_id": reply.mdtrt_id,
        "medfee_sumamt": st.medfee_sumamt,
        "fund_pay_sumamt": st.fund_pay_sumamt,
        "acct_pay": st.acct_pay,
        "psn_cash_pay": st.psn_cash_pay,
        "pool_prop_selfpay_bp": st.pool_prop_selfpay_bp,
    }


def default_service(engine: Engine) -> ReimbursementService:
    """A service with the shipped policies and the database's medical list (or the shipped one)."""
    key = id(engine)
    svc = _DEFAULTS.get(key)
    if svc is None or svc.engine is not engine:
        from yibao.codes.medlist import load_med_list

        table = db.read_table(engine, "med_list")
        if table.num_rows == 0:
            table = load_med_list()
        svc = ReimbursementService(engine, PolicyBook.default(), Catalog.from_table(table))
        _DEFAULTS[key] = svc
    return svc


_DEFAULTS: dict[int, ReimbursementService] = {}


def service_for(state: Any, engine: Engine) -> ReimbursementService:
    """The service of an app (``app.state``): the interface's policies, list and clock when it serves ``engine``."""
    svc = getattr(state, "reimbursement", None)
    if svc is not None and svc.engine is engine:
        return svc
    iface = getattr(state, "iface", None)
    if iface is not None and getattr(iface, "engine", None) is engine:
        svc = ReimbursementService(engine, iface.book, iface.catalog, clock=iface.clock)
    else:
        svc = default_service(engine)
    state.reimbursement = svc
    return svc
