"""The settlement-visit service (就诊结算服务): a visit's (pre-)settlement, every check in one transaction.

The national interface settles an encounter in steps (2201/2401 open it, 2204/2301
upload its fee lines, 2206/2303 pre-settle, 2207/2304 settle).  This service owns
the business checks of the settling steps and runs each message as **one database
transaction**: the person's row is locked first (on SQLite the transaction takes
the write lock at once), then the visit, its encounter and its unsettled lines are
read once and checked, the caller's in-care check (事中审核) runs over the same
rows, the claim is settled by :class:`~yibao.settlement.service.SettlementService`
and the caller's ``reply`` hook stores its reply before the commit.  A refusal
anywhere rolls everything back.

The API layer only maps the envelope to a :class:`VisitSettleRequest` and the
result back to reply fields; identity checks that need the interface's own
credentials (the e-insurance code) come in as the ``identify`` callback, the
in-care rules (the supervision subsystem) as ``in_care``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from yibao.codes import registry
from yibao.core import db
from yibao.core.errors import ClaimRejected
from yibao.core.money import fen_to_yuan
from yibao.settlement import records
from yibao.settlement.circulation import PrescriberLevel, rules_in_force
from yibao.settlement.rules import Claim, PayerFacts, PersonFacts
from yibao.settlement.service import Prepared, SettlementService, SettleResult
from yibao.settlement.visits import DISCHARGED, INPATIENT, PendingLine, VisitState, load_visit, pending_lines

__all__ = ["VisitSettleRequest", "VisitSnapshot", "VisitSettlementService"]

# the amounts an HIS may state in 2206/2207 and that must equal the platform's (fen)
CLAIMED_AMOUNTS = ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt")


def _rej(en: str, zh: str, fld: str) -> ClaimRejected:
    return ClaimRejected(en, zh, field=fld)


@dataclass(frozen=True)
class VisitSettleRequest:
    """What a settling message asks for, in the platform's units (fen).

    ``med_type`` / ``chrg_bchno`` / ``mdtrtarea_admvs`` / ``mulaid_payer_psn_no``: "" when
    not sent.  ``claimed``: the amounts the HIS states (``CLAIMED_AMOUNTS``), each checked
    against the platform's result.  ``require_discharged``: an inpatient final settlement
    under the discharge-first order (not a mid-stay settlement).
    """

    mdtrt_id: str
    psn_no: str
    insutype: str
    fixmedins_code: str
    kind: str  # visits.OUTPATIENT / visits.INPATIENT
    medfee_sumamt: int
    setl_time: dt.datetime
    med_type: str = ""
    chrg_bchno: str = ""
    mdtrtarea_admvs: str = ""
    mulaid_payer_psn_no: str = ""
    use_account: bool = True
    require_discharged: bool = False
    claimed: Mapping[str, int] = field(default_factory=dict)


@dataclass
class VisitSnapshot:
    """The rows a settling message read, once, inside its transaction (handed to ``in_care`` and ``reply``)."""

    visit: VisitState
    encounter: records.Encounter
    person: registry.Person
    pending: list[PendingLine]
    med_type: str
    claim: Claim
    level_of: str = ""  # the issuer whose level a circulated prescription is paid at ("" the settling one's)


class VisitSettlementService:
    """Pre-settle and settle visits opened through the interface (see the module notes)."""

    def __init__(self, settlement: SettlementService, circulation: PrescriberLevel | None = None):
        """``circulation``: the circulated-prescription level rule (default: ``yibao/data/rxcirc/circulation.yaml``,
        as the batch engine and :class:`yibao.rxcirc.service.RxService` read it)."""
        self.settlement = settlement
        self.circulation = circulation if circulation is not None else rules_in_force()

    def settle(
        self,
        req: VisitSettleRequest,
        *,
        msgid: str,
        digest: str,
        pre: bool,
        identify: Callable[[registry.Person], None] | None = None,
        in_care: Callable[[Session, VisitSnapshot], None] | None = None,
        reply: Callable[[Session, SettleResult, VisitSnapshot | None], None] | None = None,
    ) -> tuple[SettleResult, VisitSnapshot | None]:
        """(Pre-)settle ``req`` as one transaction; ``reply(session, result, snapshot)`` stores the reply in it.

        Returns the result and the rows the claim was built from (None for a replayed msgid).

        A repeated ``msgid`` of a settlement answers from the stored settlement (``reply`` gets
        ``snapshot=None`` and ``result.replayed``), even when the visit would now be refused.
        For a pre-settlement that cannot be answered without writing, ``reply`` does not run
        inside (the result's ``pre`` reply is returned; the caller stores it itself).
        """
        snap: list[VisitSnapshot] = []

        def prepare(s: Session, person: registry.Person) -> Prepared:
            snap.clear()
            snapshot = self._prepare(s, person, req, identify, self.circulation)
            if in_care is not None:
                in_care(s, snapshot)
            snap.append(snapshot)
            return Prepared(snapshot.claim, snapshot.level_of)

        hooked: list[bool] = []

        def hook(s: Session, r: SettleResult) -> None:
            hooked.append(True)
            if not r.replayed:
                self._check_claimed(req, r)
            if reply is not None:
                reply(s, r, snap[0] if snap and not r.replayed else None)

        r = self.settlement.settle(
            msgid=msgid,
            pre=pre,
            use_account=req.use_account,
            prepare=prepare,
            digest=digest,
            psn_no=req.psn_no,
            hook=hook,
        )
        if not hooked:  # a pre-settlement that rolled back its writes: its amounts are checked here
            self._check_claimed(req, r)
        return r, (snap[0] if snap and not r.replayed else None)

    @staticmethod
    def _prepare(
        s: Session,
        person: registry.Person,
        req: VisitSettleRequest,
        identify: Callable[[registry.Person], None] | None,
        circulation: PrescriberLevel,
    ) -> VisitSnapshot:
        # the visit row locked too: a concurrent 2202/2404 cancellation or 2402 discharge waits for this settlement
        v, enc = load_visit(s, req.mdtrt_id, psn_no=req.psn_no, fixmedins_code=req.fixmedins_code, kind=req.kind)
        if req.require_discharged and v.status != DISCHARGED:
            raise _rej(
                f"encounter {req.mdtrt_id} is not discharged; discharge first (2402) or set mid_setl_flag=1",
                f"就诊 {req.mdtrt_id} 尚未办理出院, 请先办理出院 (2402) 或使用中途结算",
                "mdtrt_id",
            )
        if (person.insutype or "") != req.insutype:
            raise _rej(
                f"insutype {req.insutype!r} does not match the person's insurance type {person.insutype!r}",
                f"险种类型 {req.insutype} 与参保人险种 {person.insutype} 不符",
                "insutype",
            )
        if (v.insutype or "") != req.insutype:
            raise _rej("insutype differs from the registration's", "险种类型与登记不符", "insutype")
        if identify is not None:
            identify(person)
        if req.kind == INPATIENT:
            if req.med_type and req.med_type != enc.med_type:
                raise _rej(
                    f"med_type {req.med_type} differs from the admission's {enc.med_type}",
                    f"医疗类别 {req.med_type} 与入院登记 {enc.med_type} 不符",
                    "med_type",
                )
            med_type = enc.med_type or ""
        else:
            med_type = req.med_type or enc.med_type or ""
        pending = pending_lines(s, req.mdtrt_id, req.chrg_bchno)
        if not pending:
            raise _rej(
                f"encounter {req.mdtrt_id} has no unsettled fee lines; upload them first",
                f"就诊 {req.mdtrt_id} 无待结算的费用明细, 请先上传明细",
                "mdtrt_id",
            )
        total = sum(p.line.det_item_fee_sumamt for p in pending)
        if req.medfee_sumamt != total:
            stated, stored = fen_to_yuan(req.medfee_sumamt), fen_to_yuan(total)
            raise _rej(
                f"medfee_sumamt {stated} does not equal the uploaded lines' total {stored}",
                f"医疗费总额 {stated} 与已上传明细合计 {stored} 不符",
                "medfee_sumamt",
            )
        area = req.mdtrtarea_admvs
        if area == (person.insuplc_admdvs or ""):
            area = ""
        claim = Claim(
            mdtrt_id=req.mdtrt_id,
            # the settlement service replaces the person's facts with the locked row's
            person=PersonFacts(req.psn_no, req.insutype, "", "", dt.date(1900, 1, 1), person.insuplc_admdvs or ""),
            fixmedins_code=req.fixmedins_code,
            hosp_lv=0,
            med_type=med_type,
            begntime=enc.begntime,
            setl_time=max(req.setl_time, enc.begntime),
            dise_codg=enc.dise_codg or "",
            lines=tuple(p.line for p in pending),
            other_dise_codg=tuple(x for x in (enc.other_dise_codg or "").split(";") if x),
            mdtrtarea_admvs=area,
            mulaid_payer=PayerFacts(req.mulaid_payer_psn_no, "", "") if req.mulaid_payer_psn_no else None,
            lt_rx_confirmed=bool(enc.lt_rx_confirmed),  # 2203 / 2204 long_rx_flag (yibao.longrx.interface)
        )
        level_of = _circulated_issuer(s, pending, claim.begntime, circulation)
        return VisitSnapshot(
            visit=v, encounter=enc, person=person, pending=pending, med_type=med_type, claim=claim, level_of=level_of
        )

    @staticmethod
    def _check_claimed(req: VisitSettleRequest, r: SettleResult) -> None:
        for k, v in req.claimed.items():
            ours = getattr(r.settlement, k)
            if v != ours:
                raise _rej(
                    f"{k} {fen_to_yuan(v)} does not equal the platform's {fen_to_yuan(ours)}",
                    f"{k} {fen_to_yuan(v)} 与平台计算值 {fen_to_yuan(ours)} 不符",
                    k,
                )


def _circulated_issuer(s: Session, pending: list[PendingLine], begntime: dt.datetime, rule: PrescriberLevel) -> str:
    """The institution whose level a visit holding circulated prescription lines (外配处方, ``rx_circ_flag``) is paid
    at: the issuer's, found through the lines' prescriber (``bilg_dr_codg`` → ``PRACTITIONER.fixmedins_code``), when
    the rule in force on the visit's first day says ``issuer``; otherwise "" (the settling institution's own).

    The batch engine's ``_circulated_level`` applies the same rule the same way, so a year re-settled in batch pays
    these claims to the fen as they were paid here.  Refused, as there: a circulated line whose prescriber or the
    prescriber's institution is unknown, and circulated lines of issuers of different levels in one settlement.
    """
    circulated = [p for p in pending if p.line.rx_circ_flag]
    if not circulated or not rule.at_issuer_on(begntime.astimezone(db.SHANGHAI).date()):
        return ""
    issuers: dict[str, int] = {}
    for code in sorted({p.bilg_dr_code for p in circulated}):
        doctor = s.get(registry.Practitioner, code) if code else None
        inst = s.get(registry.Institution, doctor.fixmedins_code) if doctor and doctor.fixmedins_code else None
        if inst is None:
            raise _rej(
                f"circulated prescription line: its prescriber {code!r} (bilg_dr_codg) or the prescriber's "
                "institution is unknown",
                f"外配处方明细的开方医师 {code} 或其所在定点医药机构不存在",
                "bilg_dr_codg",
            )
        issuers[inst.fixmedins_code] = int(inst.hosp_lv or 0)
    if len(set(issuers.values())) > 1:
        raise _rej(
            "circulated prescriptions of institutions of different levels in one settlement; settle one "
            "prescription a settlement",
            "一次结算含不同等级机构开具的外配处方, 请按处方分别结算",
            "bilg_dr_codg",
        )
    return min(issuers)
