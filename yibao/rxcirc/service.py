"""Prescription circulation (处方流转) and internet-hospital follow-up (互联网医院复诊) against the database.

Issue → verify → fill-and-settle:

* :meth:`RxService.issue` stores an electronic prescription (电子处方上传) written at a hospital for one person:
  the issuer, prescribing doctor, diagnoses, the original visit's med_type, validity, its drug lines and the SM3
  digest of that content (what the doctor's signature signs).  One transaction.
* :meth:`RxService.verify` is the pharmacy's check before dispensing (处方核验): read only.
* :meth:`RxService.fill` settles the pharmacy's fill through the SAME
  :class:`~yibao.settlement.service.SettlementService` as any outpatient claim: lines carry ``rx_circ_flag`` and the
  prescription number, the claim has the original visit's med_type and diagnoses, and the benefit is computed at
  the issuing institution's level when ``circulation.yaml`` says ``benefit_level: issuer``.  Inside the settlement's
  transaction the prescription row is locked and checked again (status, digest, validity, designated pharmacy,
  lines), and the fill record and the ``filled`` status are written just before the commit.  Any refusal writes
  nothing.
* :meth:`RxService.consult` settles an online follow-up consultation at an internet hospital the same way, with the
  consultation item, med_type and first-visit rule of ``internet-hospital.yaml``.

A delivery fee (配送费) is self-paid outside the settlement (kept on the fill) unless the circulation rule covers it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from yibao.codes import registry
from yibao.core import db
from yibao.core.contract import INSTITUTION_TYPES, OUTPATIENT_MED_TYPES, PRAC_PSN_TYPE_DOCTOR
from yibao.rxcirc import models as m
from yibao.rxcirc.params import CirculationFile, InternetHospitalFile, load_circulation, load_internet_hospital
from yibao.rxcirc.prescription import Designations, Prescription, RxError, RxLine, check_fill, load_designations
from yibao.settlement import records
from yibao.settlement.rules import Claim, FeeLine, PersonFacts, line_amount
from yibao.settlement.service import CancelResult, SettlementService, SettleResult

__all__ = [
    "ConsultRequest",
    "ConsultResult",
    "FillLine",
    "FillRequest",
    "FillResult",
    "IssueLine",
    "IssueRequest",
    "RxService",
    "RxView",
]


MEDICAL_INSTITUTION_TYPES = tuple(t for t in INSTITUTION_TYPES if t != "pharmacy")  # who may prescribe and see


def _err(en: str, zh: str, fld: str) -> RxError:
    return RxError(en, zh, field=fld)


def _local_day(t: dt.datetime) -> dt.date:
    return t.astimezone(db.SHANGHAI).date()


def _aware(t: dt.datetime, name: str) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise _err(f"{name} must carry a time zone", f"{name} 须带时区", name)


# --- requests and replies ----------------------------------------------------------


@dataclass(frozen=True)
class IssueLine:
    med_list_codg: str
    cnt_milli: int  # drug_cnt × 1000
    medc_days: int  # 用药天数


@dataclass(frozen=True)
class IssueRequest:
    """An electronic prescription to upload (电子处方上传), in the platform's units."""

    hosp_rxno: str  # the issuer's own prescription number
    fixmedins_code: str  # issuing institution
    prac_psn_code: str  # prescribing doctor
    psn_no: str
    med_type: str  # the visit's 医疗类别 (outpatient types)
    diagnoses: tuple[str, ...]  # dise_codg, principal first
    prsc_time: dt.datetime
    lines: tuple[IssueLine, ...]
    valid_days: int | None = None  # None: the rule file's default
    mdtrt_id: str = ""  # the visit it was written in, when stored
    synthetic: bool = False


@dataclass(frozen=True)
class FillLine:
    med_list_codg: str
    cnt_milli: int
    pric: int  # fen per unit, the pharmacy's price
    medc_days: int


@dataclass(frozen=True)
class FillRequest:
    """A designated pharmacy's fill of a prescription (外配取药), to be settled."""

    hi_rxno: str
    fixmedins_code: str  # the pharmacy
    lines: tuple[FillLine, ...]
    filled_at: dt.datetime  # sel_retn_time = setl_time
    msgid: str
    signed_digest: str = ""  # the digest the pharmacy received with the prescription; '' = not presented
    delivery_fee: int = 0  # 配送费, fen
    use_account: bool = True


@dataclass(frozen=True)
class FillResult:
    hi_rxno: str
    settlement: SettleResult
    issuer_code: str
    hosp_lv: int  # the level the benefit was computed at
    delivery_fee: int
    delivery_selfpay: bool  # True: paid by the person outside the settlement

    @property
    def cash_with_delivery(self) -> int:
        """What the person pays in cash including a self-paid delivery fee (fen)."""
        return self.settlement.settlement.psn_cash_pay + (self.delivery_fee if self.delivery_selfpay else 0)


@dataclass(frozen=True)
class ConsultRequest:
    """An online follow-up consultation (在线复诊) at an internet hospital, to be settled."""

    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    diagnoses: tuple[str, ...]
    consulted_at: dt.datetime
    fee: int  # the consultation fee, fen
    msgid: str
    use_account: bool = True


@dataclass(frozen=True)
class ConsultResult:
    settlement: SettleResult
    prior_mdtrt_id: str  # the offline visit it follows ('' when the rule does not require one)


@dataclass(frozen=True)
class RxView:
    """A prescription as stored, with its effective status (``expired`` once past its last day)."""

    hi_rxno: str
    hosp_rxno: str
    rx_trace_code: str
    issuer_code: str
    prac_psn_code: str
    psn_no: str
    med_type: str
    diagnoses: tuple[str, ...]
    prsc_time: dt.datetime
    valid_days: int
    valid_end_date: dt.date
    status: str
    sm3_digest: str
    digest_ok: bool  # the stored content still hashes to the stored digest
    lines: tuple[IssueLine, ...]
    fill: m.PrescriptionFill | None


# --- the service -------------------------------------------------------------------


class RxService:
    """Electronic prescriptions and their settlement (see the module notes).

    ``designations`` / ``circulation`` / ``internet`` default to the rule files in ``yibao/data/rxcirc``.
    """

    def __init__(
        self,
        settlement: SettlementService,
        *,
        designations: Designations | None = None,
        circulation: CirculationFile | None = None,
        internet: InternetHospitalFile | None = None,
    ):
        self.settlement = settlement
        self.designations = designations or load_designations()
        self.circulation = circulation or load_circulation()
        self.internet = internet or load_internet_hospital()

    @property
    def engine(self) -> Engine:
        return self.settlement.engine

    # -- issue --

    def issue(self, req: IssueRequest) -> RxView:
        """Store a prescription (one transaction); refuses bad input with :class:`RxError`, writing nothing."""
        _aware(req.prsc_time, "prsc_time")
        rule = self.circulation.on(_local_day(req.prsc_time))
        days = rule.valid_days_default if req.valid_days is None else req.valid_days
        if not 1 <= days <= rule.valid_days_max:
            raise _err(
                f"valid_days {days} is not within 1..{rule.valid_days_max}",
                f"处方有效天数 {days} 不在 1..{rule.valid_days_max} 之内",
                "valid_days",
            )
        self._check_issue_shape(req)
        with db.session_scope(self.engine, immediate=True) as s:
            self._check_issue_parties(s, req)
            hi_rxno = "RX" + uuid.uuid4().hex[:20].upper()
            issued = _local_day(req.prsc_time)
            rx = Prescription(
                hi_rxno,
                req.fixmedins_code,
                req.prac_psn_code,
                req.psn_no,
                issued,
                issued + dt.timedelta(days=days - 1),
                tuple(RxLine(ln.med_list_codg, ln.cnt_milli, ln.medc_days) for ln in req.lines),
                req.diagnoses,
                req.med_type,
            )
            s.add(
                m.ElectronicPrescription(
                    hi_rxno=hi_rxno,
                    hosp_rxno=req.hosp_rxno,
                    rx_trace_code=uuid.uuid4().hex.upper(),
                    fixmedins_code=req.fixmedins_code,
                    prac_psn_code=req.prac_psn_code,
                    psn_no=req.psn_no,
                    mdtrt_id=req.mdtrt_id,
                    med_type=req.med_type,
                    dise_codg=";".join(req.diagnoses),
                    prsc_time=req.prsc_time,
                    valid_days=days,
                    valid_end_date=rx.valid_until,
                    status=m.STATUS_ISSUED,
                    sm3_digest=rx.digest(),
                    created_at=dt.datetime.now(db.SHANGHAI),
                    synthetic=req.synthetic,
                )
            )
            s.flush()
            for i, ln in enumerate(req.lines, start=1):
                s.add(
                    m.PrescriptionLine(
                        hi_rxno=hi_rxno,
                        line_no=i,
                        med_list_codg=ln.med_list_codg,
                        cnt_milli=ln.cnt_milli,
                        medc_days=ln.medc_days,
                    )
                )
            s.flush()
            return self._view(s, hi_rxno, _local_day(req.prsc_time))

    def _check_issue_shape(self, req: IssueRequest) -> None:
        if not req.hosp_rxno:
            raise _err("hosp_rxno is required", "定点医疗机构处方编号不能为空", "hosp_rxno")
        if req.med_type not in OUTPATIENT_MED_TYPES:
            raise _err(
                f"med_type {req.med_type!r}: only outpatient prescriptions go out ({'/'.join(OUTPATIENT_MED_TYPES)})",
                f"医疗类别 {req.med_type!r}: 仅门诊处方可流转",
                "med_type",
            )
        if not req.diagnoses or not all(req.diagnoses):
            raise _err("a prescription needs its diagnoses", "处方须有诊断", "dise_codg")
        if not req.lines:
            raise _err("a prescription needs at least one drug", "处方须至少有一种药品", "rxdrugdetail")
        if len({ln.med_list_codg for ln in req.lines}) != len(req.lines):
            raise _err("a drug appears twice on the prescription", "处方药品重复", "med_list_codg")
        catalog = self.settlement.catalog
        for ln in req.lines:
            if ln.med_list_codg not in catalog or not catalog[ln.med_list_codg].is_drug:
                raise _err(
                    f"{ln.med_list_codg!r} is not a drug of the medical list",
                    f"{ln.med_list_codg!r} 不是医保目录药品",
                    "med_list_codg",
                )
            if ln.cnt_milli <= 0 or ln.medc_days <= 0:
                raise _err(
                    f"drug {ln.med_list_codg}: quantity and days must be positive",
                    f"药品 {ln.med_list_codg}: 数量和用药天数须为正数",
                    "drug_cnt",
                )

    @staticmethod
    def _check_issue_parties(s: Session, req: IssueRequest) -> None:
        if s.get(registry.Person, req.psn_no) is None:
            raise _err(f"unknown person {req.psn_no!r}", f"参保人不存在: {req.psn_no}", "psn_no")
        inst = s.get(registry.Institution, req.fixmedins_code)
        if inst is None or inst.fixmedins_type not in MEDICAL_INSTITUTION_TYPES:
            raise _err(
                f"{req.fixmedins_code!r} is not a known medical institution that may prescribe",
                f"{req.fixmedins_code} 不是可开具处方的定点医疗机构",
                "fixmedins_code",
            )
        dr = s.get(registry.Practitioner, req.prac_psn_code)
        if dr is None or dr.fixmedins_code != req.fixmedins_code or dr.prac_psn_type != PRAC_PSN_TYPE_DOCTOR:
            raise _err(
                f"{req.prac_psn_code!r} is not a doctor of {req.fixmedins_code}",
                f"{req.prac_psn_code} 不是 {req.fixmedins_code} 的医保医师",
                "prac_psn_code",
            )
        E = m.ElectronicPrescription
        if s.scalar(select(E.hi_rxno).where(E.fixmedins_code == req.fixmedins_code, E.hosp_rxno == req.hosp_rxno)):
            raise _err(
                f"prescription {req.hosp_rxno} of {req.fixmedins_code} was already uploaded",
                f"处方 {req.hosp_rxno} 已上传",
                "hosp_rxno",
            )
        if req.mdtrt_id:
            enc = s.get(records.Encounter, req.mdtrt_id)
            if enc is None or (enc.psn_no, enc.fixmedins_code, enc.med_type) != (
                req.psn_no,
                req.fixmedins_code,
                req.med_type,
            ):
                raise _err(
                    f"visit {req.mdtrt_id} is not this person's {req.med_type} visit at {req.fixmedins_code}",
                    f"就诊 {req.mdtrt_id} 与处方的参保人、机构或医疗类别不符",
                    "mdtrt_id",
                )

    # -- read --

    def show(self, hi_rxno: str, on: dt.date | None = None) -> RxView:
        """The prescription, its lines and fill; status ``expired`` when issued and past its last day (on ``on``)."""
        with db.session_scope(self.engine) as s:
            return self._view(s, hi_rxno, on or dt.datetime.now(db.SHANGHAI).date())

    def verify(self, hi_rxno: str, pharmacy: str, on: dt.date, signed_digest: str = "") -> RxView:
        """The pharmacy's check before dispensing (处方核验): :class:`RxError` when it may not fill; read only."""
        with db.session_scope(self.engine) as s:
            row, rx = self._load(s, hi_rxno)
            self._check_fillable(s, row, rx, pharmacy, list(rx.lines), on, signed_digest)
            return self._view(s, hi_rxno, on)

    def _load(self, s: Session, hi_rxno: str, *, lock: bool = False) -> tuple[m.ElectronicPrescription, Prescription]:
        E, L = m.ElectronicPrescription, m.PrescriptionLine
        q = select(E).where(E.hi_rxno == hi_rxno)
        if lock:
            q = q.with_for_update().execution_options(populate_existing=True)
        row = s.scalars(q).one_or_none()
        if row is None:
            raise _err(f"unknown prescription {hi_rxno!r}", f"处方不存在: {hi_rxno}", "hi_rxno")
        lines = s.scalars(select(L).where(L.hi_rxno == hi_rxno).order_by(L.line_no)).all()
        rx = Prescription(
            row.hi_rxno,
            row.fixmedins_code,
            row.prac_psn_code,
            row.psn_no,
            _local_day(row.prsc_time),
            row.valid_end_date,
            tuple(RxLine(ln.med_list_codg, int(ln.cnt_milli), int(ln.medc_days)) for ln in lines),
            tuple(x for x in row.dise_codg.split(";") if x),
            row.med_type,
        )
        return row, rx

    def _view(self, s: Session, hi_rxno: str, on: dt.date) -> RxView:
        row, rx = self._load(s, hi_rxno)
        status = row.status
        if status == m.STATUS_ISSUED and on > row.valid_end_date:
            status = m.STATUS_EXPIRED
        fill = _live_fill(s, hi_rxno)
        return RxView(
            hi_rxno=row.hi_rxno,
            hosp_rxno=row.hosp_rxno,
            rx_trace_code=row.rx_trace_code,
            issuer_code=row.fixmedins_code,
            prac_psn_code=row.prac_psn_code,
            psn_no=row.psn_no,
            med_type=row.med_type,
            diagnoses=rx.diagnoses,
            prsc_time=row.prsc_time,
            valid_days=int(row.valid_days),
            valid_end_date=row.valid_end_date,
            status=status,
            sm3_digest=row.sm3_digest,
            digest_ok=rx.digest() == row.sm3_digest,
            lines=tuple(IssueLine(ln.drug_code, ln.cnt_milli, ln.days) for ln in rx.lines),
            fill=fill,
        )

    def _check_fillable(
        self,
        s: Session,
        row: m.ElectronicPrescription,
        rx: Prescription,
        pharmacy: str,
        fill: list[RxLine],
        on: dt.date,
        signed_digest: str,
    ) -> None:
        if row.status == m.STATUS_CANCELLED:
            raise _err(f"prescription {row.hi_rxno} was cancelled", f"处方 {row.hi_rxno} 已撤销", "hi_rxno")
        if signed_digest and signed_digest != row.sm3_digest:
            raise _err(
                f"prescription {row.hi_rxno}: the presented signature digest is not the uploaded one",
                f"处方 {row.hi_rxno} 出示的签名摘要与上传的不符",
                "signature",
            )
        filled = {row.hi_rxno} if row.status == m.STATUS_FILLED else set()
        # the stored digest against the stored content: a changed row (tampering) is refused here
        check_fill(rx, row.sm3_digest, pharmacy, fill, on, filled, self.designations)
        inst = s.get(registry.Institution, pharmacy)
        if inst is None or inst.fixmedins_type != "pharmacy":
            raise _err(f"{pharmacy!r} is not a known pharmacy", f"{pharmacy} 不是定点零售药店", "fixmedins_code")

    # -- fill and settle --

    def fill(self, req: FillRequest) -> FillResult:
        """Settle a pharmacy's fill and mark the prescription filled, in one transaction (see the module notes)."""
        _aware(req.filled_at, "sel_retn_time")
        if req.delivery_fee < 0:
            raise _err("delivery fee is negative", "配送费不能为负", "delivery_fee")
        with db.session_scope(self.engine) as s:
            _, rx = self._load(s, req.hi_rxno)
            F = m.PrescriptionFill
            # cancelled fills (a live one makes this a replay of the same msgid, or a refused second fill)
            earlier = len(s.scalars(select(F.id).where(F.hi_rxno == req.hi_rxno, F.cancelled.is_(True))).all())
        rule = self.circulation.on(rx.issued_on)
        covered = rule.delivery.covered and req.delivery_fee > 0
        lines = [
            FeeLine(
                i,
                ln.med_list_codg,
                ln.cnt_milli,
                ln.pric,
                line_amount(ln.cnt_milli, ln.pric),
                rxno=req.hi_rxno,
                prd_days=ln.medc_days,
                rx_circ_flag=True,
            )
            for i, ln in enumerate(req.lines, start=1)
        ]
        if covered:
            lines.append(FeeLine(len(lines) + 1, rule.delivery.item_code, 1000, req.delivery_fee, req.delivery_fee))
        claim = Claim(
            mdtrt_id=f"RXF{req.hi_rxno}-{earlier + 1}",  # a new encounter per fill: a cancelled one keeps its lines
            person=PersonFacts(rx.psn_no, "", "", "", dt.date(1900, 1, 1), ""),  # the service reads the person
            fixmedins_code=req.fixmedins_code,
            hosp_lv=0,  # the service sets it (the issuer's level when benefit_level is issuer)
            med_type=rx.med_type,
            begntime=req.filled_at,
            setl_time=req.filled_at,
            dise_codg=rx.diagnoses[0] if rx.diagnoses else "",
            other_dise_codg=rx.diagnoses[1:],
            lines=tuple(lines),
        )
        level_of = rx.issuer_code if rule.benefit_level == "issuer" else ""
        fill_lines = [RxLine(ln.med_list_codg, ln.cnt_milli, ln.medc_days) for ln in req.lines]
        seen: dict[str, int] = {}

        def guard(s: Session) -> None:
            row, locked = self._load(s, req.hi_rxno, lock=True)
            if locked != rx:
                raise _err(
                    f"prescription {req.hi_rxno} changed while being filled; try again",
                    f"处方 {req.hi_rxno} 在取药时被修改, 请重试",
                    "hi_rxno",
                )
            self._check_fillable(
                s, row, locked, req.fixmedins_code, fill_lines, _local_day(req.filled_at), req.signed_digest
            )

        def hook(s: Session, r: SettleResult) -> None:
            level = s.get(registry.Institution, level_of or req.fixmedins_code)
            seen["hosp_lv"] = int(level.hosp_lv or 0) if level is not None else 0
            if r.replayed:
                return
            row = s.get(m.ElectronicPrescription, req.hi_rxno)
            assert row is not None and r.setl_id is not None
            row.status = m.STATUS_FILLED
            s.add(
                m.PrescriptionFill(
                    hi_rxno=req.hi_rxno,
                    fixmedins_code=req.fixmedins_code,
                    issuer_code=rx.issuer_code,
                    hosp_lv=seen["hosp_lv"],
                    mdtrt_id=claim.mdtrt_id,
                    setl_id=r.setl_id,
                    msgid=req.msgid,
                    filled_at=req.filled_at,
                    delivery_fee=req.delivery_fee,
                    delivery_selfpay=not covered,
                )
            )
            s.flush()

        res = self.settlement.settle(
            claim, msgid=req.msgid, use_account=req.use_account, guard=guard, hook=hook, level_of=level_of
        )
        return FillResult(
            hi_rxno=req.hi_rxno,
            settlement=res,
            issuer_code=rx.issuer_code,
            hosp_lv=seen.get("hosp_lv", 0),
            delivery_fee=req.delivery_fee,
            delivery_selfpay=not covered,
        )

    # -- cancel a fill's settlement --

    def cancel_fill(self, hi_rxno: str, pharmacy: str, msgid: str, at: dt.datetime | None = None) -> RxView:
        """Cancel the settlement of a fill (撤销) through the settlement service and make the prescription fillable
        again, in one transaction; only the pharmacy that filled it may.  The same msgid again answers the same."""
        with db.session_scope(self.engine) as s:
            fill = _live_fill(s, hi_rxno)
            if fill is None:
                F = m.PrescriptionFill
                fill = s.scalars(select(F).where(F.hi_rxno == hi_rxno, F.cancel_msgid == msgid)).one_or_none()
            if fill is None:
                self._load(s, hi_rxno)  # unknown prescription → refused
                raise _err(f"prescription {hi_rxno} has no live fill", f"处方 {hi_rxno} 无有效取药记录", "hi_rxno")
        if fill.fixmedins_code != pharmacy:
            raise _err(
                f"only the pharmacy {fill.fixmedins_code} that filled {hi_rxno} may cancel it",
                f"仅取药药店可撤销处方 {hi_rxno} 的结算",
                "fixmedins_code",
            )
        fill_id, setl_id = fill.id, fill.setl_id

        def guard(s: Session, row: records.Settlement) -> None:
            self._load(s, hi_rxno, lock=True)
            live = s.get(m.PrescriptionFill, fill_id)
            if row.cancel_msgid != msgid and (live is None or live.cancelled):
                raise _err(f"the fill of {hi_rxno} was already cancelled", f"处方 {hi_rxno} 的取药已撤销", "hi_rxno")

        def hook(s: Session, r: CancelResult) -> None:
            release_fill_of(s, setl_id, msgid)

        self.settlement.cancel(setl_id, msgid=msgid, at=at, guard=guard, hook=hook)
        return self.show(hi_rxno, _local_day(at) if at is not None else None)

    # -- cancel --

    def cancel(self, hi_rxno: str, issuer: str) -> RxView:
        """The issuer withdraws a prescription not yet filled (电子处方撤销); one transaction."""
        with db.session_scope(self.engine, immediate=True) as s:
            row, _ = self._load(s, hi_rxno, lock=True)
            if row.fixmedins_code != issuer:
                raise _err(
                    f"only the issuer {row.fixmedins_code} may cancel {hi_rxno}",
                    f"仅开方机构可撤销处方 {hi_rxno}",
                    "fixmedins_code",
                )
            if row.status != m.STATUS_ISSUED:
                raise _err(
                    f"prescription {hi_rxno} is {row.status}; it cannot be cancelled",
                    f"处方 {hi_rxno} 状态为 {row.status}, 不能撤销",
                    "hi_rxno",
                )
            row.status = m.STATUS_CANCELLED
            s.flush()
            return self._view(s, hi_rxno, dt.datetime.now(db.SHANGHAI).date())

    # -- internet hospital follow-up --

    def consult(self, req: ConsultRequest) -> ConsultResult:
        """Settle an online follow-up consultation through the settlement service (one transaction)."""
        _aware(req.consulted_at, "begntime")
        day = _local_day(req.consulted_at)
        rule = self.internet.on(day)
        if not self.internet.designated(req.fixmedins_code, day):
            raise _err(
                f"{req.fixmedins_code} is not designated for internet-hospital settlement on {day}",
                f"{req.fixmedins_code} 不是互联网医院医保定点机构",
                "fixmedins_code",
            )
        if not req.diagnoses or not all(req.diagnoses):
            raise _err("a consultation needs its diagnoses", "复诊须有诊断", "dise_codg")
        if req.fee < 0:
            raise _err("the consultation fee is negative", "诊察费不能为负", "pric")
        claim = Claim(
            mdtrt_id=req.mdtrt_id,
            person=PersonFacts(req.psn_no, "", "", "", dt.date(1900, 1, 1), ""),
            fixmedins_code=req.fixmedins_code,
            hosp_lv=0,
            med_type=rule.med_type,
            begntime=req.consulted_at,
            setl_time=req.consulted_at,
            dise_codg=req.diagnoses[0],
            other_dise_codg=req.diagnoses[1:],
            lines=(FeeLine(1, rule.consultation_item, 1000, req.fee, req.fee),),
        )
        prior: list[str] = []

        def guard(s: Session) -> None:
            if s.get(m.OnlineVisit, req.mdtrt_id) is not None:
                raise _err(
                    f"visit {req.mdtrt_id} was already settled online", f"就诊 {req.mdtrt_id} 已结算", "mdtrt_id"
                )
            if rule.first_visit_excluded:
                window = dt.timedelta(days=rule.follow_up_window_days)
                found = _prior_offline_visit(
                    s, req, req.diagnoses[0][: rule.same_diagnosis_prefix], req.consulted_at - window
                )
                if not found:
                    raise _err(
                        f"no offline visit for {req.diagnoses[0][: rule.same_diagnosis_prefix]} within "
                        f"{rule.follow_up_window_days} days: a first visit is not settled online",
                        f"{rule.follow_up_window_days} 天内无同病种线下就诊记录: 首诊不得在互联网医院医保结算",
                        "dise_codg",
                    )
                prior.append(found)

        def hook(s: Session, r: SettleResult) -> None:
            if r.replayed:
                ov = s.get(m.OnlineVisit, req.mdtrt_id)
                prior.append(ov.prior_mdtrt_id if ov is not None else "")
                return
            assert r.setl_id is not None
            s.add(
                m.OnlineVisit(
                    mdtrt_id=req.mdtrt_id,
                    psn_no=req.psn_no,
                    fixmedins_code=req.fixmedins_code,
                    prior_mdtrt_id=prior[0] if prior else "",
                    setl_id=r.setl_id,
                    consulted_at=req.consulted_at,
                )
            )
            s.flush()

        res = self.settlement.settle(claim, msgid=req.msgid, use_account=req.use_account, guard=guard, hook=hook)
        return ConsultResult(settlement=res, prior_mdtrt_id=prior[-1] if prior else "")


def release_fill_of(s: Session, setl_id: str, msgid: str) -> bool:
    """In a cancellation's transaction, whichever route cancels (``RxService.cancel_fill``, or the pharmacy HIS's
    2208 / 2601 through the interface): when the settlement is a live prescription fill's, mark the fill cancelled
    by ``msgid`` and make its prescription fillable again (issued).  Returns whether it was a fill's.  The patient's
    person row is already locked by the cancellation, so locking the prescription here keeps the order a fill
    takes (person, then prescription).  A replayed cancellation finds no live fill and changes nothing."""
    F = m.PrescriptionFill
    live = s.scalars(select(F).where(F.setl_id == setl_id, F.cancelled.is_(False))).one_or_none()
    if live is None:
        return False
    rx = s.get(m.ElectronicPrescription, live.hi_rxno, with_for_update=True)
    assert rx is not None  # rx_fill.hi_rxno is a foreign key
    live.cancelled, live.cancel_msgid = True, msgid
    rx.status = m.STATUS_ISSUED
    s.flush()
    return True


def _live_fill(s: Session, hi_rxno: str) -> m.PrescriptionFill | None:
    F = m.PrescriptionFill
    return s.scalars(select(F).where(F.hi_rxno == hi_rxno, F.cancelled.is_(False))).one_or_none()


def _prior_offline_visit(s: Session, req: ConsultRequest, dx_prefix: str, since: dt.datetime) -> str:
    """The latest offline visit of the person at a medical institution with the diagnosis prefix since ``since``
    ('' when none); online visits and pharmacy fills do not count."""
    E, V, inst = records.Encounter, m.OnlineVisit, registry.Institution
    q = (
        select(E.mdtrt_id)
        .join(inst, inst.fixmedins_code == E.fixmedins_code)
        .where(
            inst.fixmedins_type.in_(MEDICAL_INSTITUTION_TYPES),  # a pharmacy's fill is not a visit
            E.psn_no == req.psn_no,
            E.mdtrt_id != req.mdtrt_id,
            E.begntime >= since,
            E.begntime < req.consulted_at,
            E.dise_codg.startswith(dx_prefix, autoescape=True),
            E.mdtrt_id.not_in(select(V.mdtrt_id)),
        )
        .order_by(E.begntime.desc())
        .limit(1)
    )
    return s.scalar(q) or ""


def default_service(engine: Engine, rules_dir: Path | None = None) -> RxService:
    """An :class:`RxService` on ``engine`` with the shipped policies and the database's medical list (else the
    package's sample list), as the interface server builds its settlement service.

    ``rules_dir``: a region's own rule files (``designated-pharmacies.yaml``, ``circulation.yaml``,
    ``internet-hospital.yaml``, each optional) instead of the shipped ones.
    """
    from yibao.benefits.policy import PolicyBook
    from yibao.codes.medlist import load_med_list
    from yibao.settlement.catalog import Catalog

    table = db.read_table(engine, "med_list")
    if table.num_rows == 0:
        table = load_med_list()
    settlement = SettlementService(engine, PolicyBook.default(), Catalog.from_table(table))
    if rules_dir is None:
        return RxService(settlement)
    if not rules_dir.is_dir():
        raise _err(f"rules directory {rules_dir} does not exist", f"规则目录不存在: {rules_dir}", "rules_dir")
    own = {name: rules_dir / name for name in FILES if (rules_dir / name).is_file()}
    return RxService(
        settlement,
        designations=load_designations(own["designated-pharmacies.yaml"])
        if "designated-pharmacies.yaml" in own
        else None,
        circulation=load_circulation(own["circulation.yaml"]) if "circulation.yaml" in own else None,
        internet=load_internet_hospital(own["internet-hospital.yaml"]) if "internet-hospital.yaml" in own else None,
    )


FILES = ("designated-pharmacies.yaml", "circulation.yaml", "internet-hospital.yaml")


def parse_quantity(text: str, field: str) -> int:
    """A quantity as given at the boundary (up to 3 decimals, e.g. ``"2.5"``) → × 1000; refuses anything else."""
    from decimal import Decimal, InvalidOperation

    try:
        d = Decimal(text) * 1000
    except InvalidOperation:
        d = Decimal("NaN")
    if not d.is_finite() or d != d.to_integral_value() or d <= 0:
        raise _err(
            f"{field}: {text!r} is not a positive quantity (≤ 3 decimals)", f"{field}: 数量 {text!r} 无效", field
        )
    return int(d)
