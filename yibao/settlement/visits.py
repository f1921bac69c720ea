"""Visit state for real-time settlement (就诊登记): registration, visit data, fee upload, admission, discharge.

The national interface splits an encounter into steps before settlement:
outpatient registration (挂号, 2201), visit information (就诊信息上传, 2203),
fee-detail upload (费用明细上传, 2204 / 2301), admission (入院办理, 2401) and
discharge (出院办理, 2402).  These functions keep that state in the shared
``encounter`` / ``fee_detail`` tables plus two operational tables of their own:

* ``visit_state``: one row per encounter opened through the interface: kind
  (outpatient / inpatient), status (registered → admitted → discharged, or
  cancelled), the institution, the insurance type and the HIS's own number;
* ``fee_upload``: for each uploaded fee line, its charge batch (``chrg_bchno``),
  the message that brought it, and the line as the HIS sent it: its own line
  number (``feedetl_sn``, character(30) nationally, e.g. ``yp570``) and the exact
  quantity and unit price (numeric(16,4) / numeric(16,6)).  ``fee_detail`` keeps
  the platform's integer line number (the HIS's when it is a plain number not yet
  used in the encounter, otherwise the next free one) and the thousandths / fen
  the batch engine reads.

Every function works inside the caller's transaction (a
``session_scope(engine, immediate=True)`` session), so that one message is one
transaction.  Every refusal is a :class:`ClaimRejected` naming the field;
the caller rolls back, so a refused message changes nothing.

Settling a visit is :class:`yibao.settlement.visit_service.VisitSettlementService`
(over :class:`yibao.settlement.service.SettlementService`); :func:`pending_lines`
gives it the lines to settle and :func:`load_visit` refuses a cancelled visit,
inside the settlement's transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import BigInteger, ForeignKey, ForeignKeyConstraint, Index, Integer, String, bindparam, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from yibao.benefits.policy import PolicyBook
from yibao.codes import registry
from yibao.core import db
from yibao.core.db import Base, TZDateTime
from yibao.core.errors import ClaimRejected
from yibao.settlement import records
from yibao.settlement.catalog import Catalog
from yibao.settlement.rules import FeeLine, line_total

__all__ = [
    "CANCELLED",
    "DISCHARGED",
    "INPATIENT",
    "OUTPATIENT",
    "REGISTERED",
    "ADMITTED",
    "FeeUpload",
    "UploadLine",
    "VisitState",
    "admit_or_register",
    "cancel_visit",
    "discharge",
    "PendingLine",
    "his_numbers",
    "load_visit",
    "pending_lines",
    "record_diagnoses",
    "upload_fees",
    "withdraw_fees",
]

OUTPATIENT, INPATIENT = "outpatient", "inpatient"
REGISTERED, ADMITTED, DISCHARGED, CANCELLED = "registered", "admitted", "discharged", "cancelled"
_INT32 = 2**31 - 1


class VisitState(Base):
    """State of an encounter opened through the interface (就诊状态)."""

    __tablename__ = "visit_state"

    mdtrt_id: Mapped[str] = mapped_column(String, ForeignKey("encounter.mdtrt_id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    psn_no: Mapped[str] = mapped_column(String)
    fixmedins_code: Mapped[str] = mapped_column(String)
    insutype: Mapped[str | None] = mapped_column(String)
    ipt_otp_no: Mapped[str | None] = mapped_column(String)
    msgid: Mapped[str | None] = mapped_column(String)
    changed_at: Mapped[dt.datetime] = mapped_column(TZDateTime)


class FeeUpload(Base):
    """Which charge batch (收费批次号) and message brought a fee line."""

    __tablename__ = "fee_upload"
    __table_args__ = (
        ForeignKeyConstraint(["mdtrt_id", "feedetl_sn"], ["fee_detail.mdtrt_id", "fee_detail.feedetl_sn"]),
        Index(None, "mdtrt_id", "chrg_bchno"),
        Index("uq_fee_upload_mdtrt_id_his_feedetl_sn", "mdtrt_id", "his_feedetl_sn", unique=True),
    )

    mdtrt_id: Mapped[str] = mapped_column(String, primary_key=True)
    feedetl_sn: Mapped[int] = mapped_column(Integer, primary_key=True)
    chrg_bchno: Mapped[str | None] = mapped_column(String)
    msgid: Mapped[str | None] = mapped_column(String)
    uploaded_at: Mapped[dt.datetime] = mapped_column(TZDateTime)
    his_feedetl_sn: Mapped[str | None] = mapped_column(String)  # the HIS's line number (NULL: rows before 0009)
    cnt_e4: Mapped[int | None] = mapped_column(BigInteger)  # quantity × 10⁴ as sent
    pric_e6: Mapped[int | None] = mapped_column(BigInteger)  # unit price in millionths of a yuan as sent


@dataclass(frozen=True)
class UploadLine:
    """One fee line as uploaded (2204 / 2301), amounts already in fen / thousandths.

    ``his_sn`` is the HIS's line number (费用明细流水号) as sent; ``line.feedetl_sn`` is
    ignored on upload (the platform's number is allocated, see the module notes), and
    ``line.exact`` carries the exact quantity and price.
    """

    line: FeeLine
    chrg_bchno: str = ""
    fee_ocur_time: dt.datetime | None = None
    bilg_dr_code: str = ""
    his_sn: str = ""

    @property
    def sn(self) -> str:
        return self.his_sn or str(self.line.feedetl_sn)


def _as_sent(u: FeeUpload | None, f: records.FeeDetail) -> tuple[int, int]:
    """(cnt × 10⁴, pric in millionths) of a stored line."""
    if u is not None and u.cnt_e4 is not None and u.pric_e6 is not None:
        return int(u.cnt_e4), int(u.pric_e6)
    return int(f.cnt_milli) * 10, int(f.pric) * 10_000


def _uploads(s: Session, mdtrt_id: str) -> dict[int, FeeUpload]:
    return {u.feedetl_sn: u for u in s.scalars(select(FeeUpload).where(FeeUpload.mdtrt_id == mdtrt_id))}


def his_numbers(s: Session, mdtrt_id: str) -> dict[int, str]:
    """Platform line number → the HIS's line number, for one encounter."""
    return {sn: (u.his_feedetl_sn or str(sn)) for sn, u in _uploads(s, mdtrt_id).items()}


def _rej(en: str, zh: str, fld: str) -> ClaimRejected:
    return ClaimRejected(en, zh, field=fld)


def new_mdtrt_id(now: dt.datetime) -> str:
    """A platform encounter id (就诊ID): date + random, 26 characters."""
    return f"{now.astimezone(db.SHANGHAI):%Y%m%d}{uuid.uuid4().hex[:18].upper()}"


def _check_med_type(book: PolicyBook, person: registry.Person, med_type: str, day: dt.date) -> None:
    known = book.policy(person.insuplc_admdvs or "").snapshot(day).med_types
    if med_type not in known:
        raise _rej(
            f"unknown med_type {med_type!r}; this policy knows {sorted(known)}",
            f"医疗类别 {med_type!r} 无效, 可用: {sorted(known)}",
            "med_type",
        )


def _check_diagnoses(codes: Iterable[str], fld: str, valid: Callable[[str], bool] | None) -> None:
    if valid is None:
        return
    for c in codes:
        if c and not valid(c):
            raise _rej(f"unknown diagnosis code {c!r} (ICD-10 expected)", f"诊断代码 {c!r} 无效 (应为ICD-10编码)", fld)


def admit_or_register(
    s: Session,
    *,
    kind: str,
    psn_no: str,
    fixmedins_code: str,
    insutype: str,
    begntime: dt.datetime,
    med_type: str,
    ipt_otp_no: str,
    msgid: str,
    now: dt.datetime,
    book: PolicyBook,
    dise_codg: str = "",
    other_dise_codg: tuple[str, ...] = (),
    dept_code: str = "",
    dr_code: str = "",
    mdtrtarea_admvs: str = "",
    valid_diagnosis: Callable[[str], bool] | None = None,
) -> VisitState:
    """Open an encounter: outpatient registration (2201) or admission (2401)."""
    person = s.get(registry.Person, psn_no)
    if person is None:
        raise _rej(f"unknown person {psn_no!r}", f"参保人不存在: {psn_no}", "psn_no")
    if (person.insutype or "") != insutype:
        raise _rej(
            f"insutype {insutype!r} does not match the person's insurance type {person.insutype!r}",
            f"险种类型 {insutype} 与参保人险种 {person.insutype} 不符",
            "insutype",
        )
    inst = s.get(registry.Institution, fixmedins_code)
    if inst is None:
        raise _rej(f"unknown institution {fixmedins_code!r}", f"定点医药机构不存在: {fixmedins_code}", "fixmedins_code")
    if begntime.tzinfo is None:
        raise _rej("begntime must carry a time zone", "开始时间须带时区", "begntime")
    if begntime > now + dt.timedelta(minutes=10):
        raise _rej(
            f"begntime {begntime} is in the future", f"开始时间 {begntime:%Y-%m-%d %H:%M:%S} 晚于当前时间", "begntime"
        )
    _check_med_type(book, person, med_type, begntime.astimezone(db.SHANGHAI).date())
    _check_diagnoses((dise_codg, *other_dise_codg), "dise_codg", valid_diagnosis)
    if ipt_otp_no:
        dup = s.scalar(
            select(VisitState.mdtrt_id).where(
                VisitState.fixmedins_code == fixmedins_code,
                VisitState.ipt_otp_no == ipt_otp_no,
                VisitState.kind == kind,
                VisitState.status != CANCELLED,
            )
        )
        if dup is not None:
            raise _rej(
                f"ipt_otp_no {ipt_otp_no!r} is already open as encounter {dup}",
                f"住院/门诊号 {ipt_otp_no} 已登记 (就诊ID {dup})",
                "ipt_otp_no",
            )
    mdtrt_id = new_mdtrt_id(now)
    s.add(
        records.Encounter(
            mdtrt_id=mdtrt_id,
            psn_no=psn_no,
            fixmedins_code=fixmedins_code,
            med_type=med_type,
            begntime=begntime,
            endtime=None,
            policy_year=begntime.astimezone(db.SHANGHAI).year,
            dise_codg=dise_codg,
            other_dise_codg=";".join(other_dise_codg),
            dept_code=dept_code,
            dr_code=dr_code,
            mdtrtarea_admvs=mdtrtarea_admvs,
            synthetic=bool(person.synthetic),
        )
    )
    s.flush()
    v = VisitState(
        mdtrt_id=mdtrt_id,
        kind=kind,
        status=REGISTERED if kind == OUTPATIENT else ADMITTED,
        psn_no=psn_no,
        fixmedins_code=fixmedins_code,
        insutype=insutype,
        ipt_otp_no=ipt_otp_no,
        msgid=msgid,
        changed_at=now,
    )
    s.add(v)
    s.flush()
    return v


_VISIT = (
    select(VisitState).where(VisitState.mdtrt_id == bindparam("mdtrt_id")).execution_options(populate_existing=True)
)
_VISIT_LOCKED = _VISIT.with_for_update()
_ENCOUNTER = select(records.Encounter).where(records.Encounter.mdtrt_id == bindparam("mdtrt_id"))


def load_visit(
    s: Session,
    mdtrt_id: str,
    *,
    psn_no: str,
    fixmedins_code: str,
    kind: str,
    lock: bool = True,
    allow_cancelled: bool = False,
) -> tuple[VisitState, records.Encounter]:
    """The visit and its encounter, checked against the caller (person, institution, kind)."""
    v = s.execute(_VISIT_LOCKED if lock else _VISIT, {"mdtrt_id": mdtrt_id}).scalar_one_or_none()
    if v is None:
        raise _rej(f"unknown encounter mdtrt_id {mdtrt_id!r}", f"就诊ID不存在: {mdtrt_id}", "mdtrt_id")
    if v.fixmedins_code != fixmedins_code:
        raise _rej(f"encounter {mdtrt_id} belongs to another institution", f"就诊 {mdtrt_id} 不属于本机构", "mdtrt_id")
    if v.psn_no != psn_no:
        raise _rej(f"encounter {mdtrt_id} is not {psn_no}'s", f"就诊 {mdtrt_id} 不属于参保人 {psn_no}", "psn_no")
    if v.kind != kind:
        zh = "门诊" if v.kind == OUTPATIENT else "住院"
        raise _rej(
            f"encounter {mdtrt_id} is {v.kind}, not {kind}", f"就诊 {mdtrt_id} 为{zh}就诊, 交易类型不符", "mdtrt_id"
        )
    if v.status == CANCELLED and not allow_cancelled:
        raise _rej(f"encounter {mdtrt_id} has been cancelled", f"就诊 {mdtrt_id} 已撤销", "mdtrt_id")
    enc = s.execute(_ENCOUNTER, {"mdtrt_id": mdtrt_id}).scalar_one()
    return v, enc


def record_diagnoses(
    s: Session,
    v: VisitState,
    enc: records.Encounter,
    *,
    med_type: str,
    dise_codg: str,
    other_dise_codg: tuple[str, ...],
    book: PolicyBook,
    now: dt.datetime,
    valid_diagnosis: Callable[[str], bool] | None = None,
) -> None:
    """就诊信息上传 (2203): medical type and diagnoses of an outpatient visit."""
    person = s.get(registry.Person, v.psn_no)
    if person is None:
        raise _rej(f"unknown psn_no {v.psn_no!r}", f"人员编号不存在: {v.psn_no}", "psn_no")
    _check_med_type(book, person, med_type, enc.begntime.astimezone(db.SHANGHAI).date())
    _check_diagnoses((dise_codg, *other_dise_codg), "diag_code", valid_diagnosis)
    if _live_settlements(s, v.mdtrt_id):
        raise _rej(
            f"encounter {v.mdtrt_id} is already settled; cancel the settlement first",
            f"就诊 {v.mdtrt_id} 已结算, 请先撤销结算",
            "mdtrt_id",
        )
    enc.med_type = med_type
    enc.dise_codg = dise_codg
    enc.other_dise_codg = ";".join(other_dise_codg)
    v.changed_at = now
    s.flush()


_LIVE = select(records.Settlement.setl_id, records.Settlement.rule_trace).where(
    records.Settlement.mdtrt_id == bindparam("mdtrt_id"), records.Settlement.refd_setl_flag.is_(False)
)


def _live_settlements(s: Session, mdtrt_id: str) -> list[tuple[str, object]]:
    return list(s.execute(_LIVE, {"mdtrt_id": mdtrt_id}).all())


def _check_upload_line(sn: str, ln: FeeLine, catalog: Catalog) -> None:
    """One uploaded fee line's own checks: its number, quantity, price, days, total and list code."""
    if len(sn) > 30:
        raise _rej(f"feedetl_sn {sn[:40]!r} is longer than 30 characters", "费用明细流水号超过30位", "feedetl_sn")
    if ln.cnt_milli <= 0:
        raise _rej(f"line {sn}: quantity cnt must be positive", f"明细 {sn}: 数量必须为正数", "cnt")
    if ln.pric < 0:
        raise _rej(f"line {sn}: unit price pric must not be negative", f"明细 {sn}: 单价不能为负", "pric")
    if ln.prd_days < 0:
        raise _rej(f"line {sn}: prd_days must not be negative", f"明细 {sn}: 周期天数不能为负", "prd_days")
    want = line_total(ln)
    if ln.det_item_fee_sumamt != want:
        raise _rej(
            f"line {sn}: det_item_fee_sumamt {ln.det_item_fee_sumamt} fen does not equal cnt × pric = {want} fen",
            f"明细 {sn}: 明细项目费用总额与数量×单价不符 (应为 {want / 100:.2f} 元)",
            "det_item_fee_sumamt",
        )
    if ln.med_list_codg not in catalog:
        raise _rej(
            f"line {sn}: unknown med_list_codg {ln.med_list_codg!r}",
            f"明细 {sn}: 医保目录编码 {ln.med_list_codg!r} 不存在",
            "med_list_codg",
        )


def _exact(ln: FeeLine) -> tuple[int, int]:
    """Quantity (1/10000) and price (1/1000000 yuan) as sent, for comparing a retransmission."""
    return ln.exact if ln.exact is not None else (ln.cnt_milli * 10, ln.pric * 10_000)


def _new_line_number(sn: str, taken: set[int], mdtrt_id: str) -> int:
    """The stored feedetl_sn of a new line: the HIS's own when it is a free plain number, else the next free one."""
    if sn.isdigit() and sn == str(int(sn)) and int(sn) <= _INT32 and int(sn) not in taken:
        return int(sn)
    internal = max(taken | {0}) + 1
    if internal > _INT32:
        raise _rej(
            f"feedetl_sn {sn}: no line number left in encounter {mdtrt_id}",
            "本次就诊的费用明细序号已用尽",
            "feedetl_sn",
        )
    return internal


def upload_fees(
    s: Session,
    v: VisitState,
    lines: list[UploadLine],
    *,
    catalog: Catalog,
    msgid: str,
    now: dt.datetime,
    max_lines: int,
) -> list[tuple[UploadLine, bool]]:
    """费用明细上传 (2204 / 2301): store the lines; return each with ``True`` if new.

    A line already uploaded with identical content is accepted again (a
    retransmission); with different content it is refused.
    """
    if not lines:
        raise _rej("feedetail is empty", "费用明细不能为空", "feedetail")
    if len(lines) > max_lines:
        raise _rej(
            f"{len(lines)} fee lines in one message; at most {max_lines}",
            f"单次上传明细 {len(lines)} 条, 超过上限 {max_lines}",
            "feedetail",
        )
    if v.status == DISCHARGED and v.kind == INPATIENT:
        pass  # fees may still arrive after discharge, before settlement
    stored = {
        f.feedetl_sn: f for f in s.scalars(select(records.FeeDetail).where(records.FeeDetail.mdtrt_id == v.mdtrt_id))
    }
    uploads = _uploads(s, v.mdtrt_id)
    by_his = {(uploads[k].his_feedetl_sn if k in uploads and uploads[k].his_feedetl_sn else str(k)): k for k in stored}
    taken = set(stored)
    seen: set[str] = set()
    out = []
    for u in lines:
        ln = u.line
        sn = u.sn
        if sn in seen:
            raise _rej(
                f"feedetl_sn {sn} appears twice in this batch", f"费用明细流水号 {sn} 在本批次中重复", "feedetl_sn"
            )
        seen.add(sn)
        _check_upload_line(sn, ln, catalog)
        exact = _exact(ln)
        internal = by_his.get(sn)
        if internal is not None:
            old = stored[internal]
            if (old.med_list_codg, _as_sent(uploads.get(internal), old), old.det_item_fee_sumamt) != (
                ln.med_list_codg,
                exact,
                ln.det_item_fee_sumamt,
            ):
                raise _rej(
                    f"line {sn} was already uploaded with different content",
                    f"明细 {sn} 已上传且内容不同",
                    "feedetl_sn",
                )
            out.append((u, False, internal))
            continue
        internal = _new_line_number(sn, taken, v.mdtrt_id)
        taken.add(internal)
        by_his[sn] = internal
        s.add(
            records.FeeDetail(
                mdtrt_id=v.mdtrt_id,
                feedetl_sn=internal,
                med_list_codg=ln.med_list_codg,
                cnt_milli=ln.cnt_milli,
                pric=ln.pric,
                det_item_fee_sumamt=ln.det_item_fee_sumamt,
                fee_ocur_time=u.fee_ocur_time,
                rxno=ln.rxno,
                rx_circ_flag=bool(ln.rx_circ_flag),
                prd_days=ln.prd_days,
                bilg_dr_code=u.bilg_dr_code,
                synthetic=False,
            )
        )
        out.append((u, True, internal))
    s.flush()
    for u, new, internal in out:
        if new:
            ex = _exact(u.line)
            s.add(
                FeeUpload(
                    mdtrt_id=v.mdtrt_id,
                    feedetl_sn=internal,
                    chrg_bchno=u.chrg_bchno,
                    msgid=msgid,
                    uploaded_at=now,
                    his_feedetl_sn=u.sn,
                    cnt_e4=ex[0],
                    pric_e6=ex[1],
                )
            )
    v.changed_at = now
    s.flush()
    return [(u, new) for u, new, _ in out]


def discharge(
    s: Session,
    v: VisitState,
    enc: records.Encounter,
    *,
    endtime: dt.datetime,
    dise_codg: str,
    other_dise_codg: tuple[str, ...],
    dscg_way: str,
    dept_code: str,
    now: dt.datetime,
    valid_diagnosis: Callable[[str], bool] | None = None,
) -> None:
    """出院办理 (2402)."""
    if v.status != ADMITTED:
        raise _rej(
            f"encounter {v.mdtrt_id} is {v.status}, not admitted",
            f"就诊 {v.mdtrt_id} 当前状态为 {v.status}, 不能办理出院",
            "mdtrt_id",
        )
    if endtime < enc.begntime:
        raise _rej(
            f"discharge time {endtime} is before admission {enc.begntime}",
            f"出院时间 {endtime:%Y-%m-%d %H:%M:%S} 早于入院时间 {enc.begntime:%Y-%m-%d %H:%M:%S}",
            "endtime",
        )
    if endtime > now + dt.timedelta(minutes=10):
        raise _rej(
            f"discharge time {endtime} is in the future",
            f"出院时间 {endtime:%Y-%m-%d %H:%M:%S} 晚于当前时间",
            "endtime",
        )
    _check_diagnoses((dise_codg, *other_dise_codg), "dise_codg", valid_diagnosis)
    enc.endtime = endtime
    if dise_codg:
        enc.dise_codg = dise_codg
        enc.other_dise_codg = ";".join(other_dise_codg)
    enc.dscg_way = dscg_way
    if dept_code:
        enc.dept_code = dept_code
    v.status = DISCHARGED
    v.changed_at = now
    s.flush()


def cancel_visit(s: Session, v: VisitState, *, now: dt.datetime) -> None:
    """挂号撤销 (2202) / 入院撤销 (2404): only while nothing is settled."""
    live = _live_settlements(s, v.mdtrt_id)
    if live:
        raise _rej(
            f"encounter {v.mdtrt_id} has live settlement {live[0][0]}; cancel it first",
            f"就诊 {v.mdtrt_id} 存在未撤销的结算 {live[0][0]}, 请先撤销结算",
            "mdtrt_id",
        )
    v.status = CANCELLED
    v.changed_at = now
    s.flush()


def withdraw_fees(
    s: Session,
    v: VisitState,
    *,
    now: dt.datetime,
    chrg_bchno: str = "",
    feedetl_sns: Iterable[str] | None = None,
) -> list[str]:
    """费用明细撤销 (2205 / 2302): delete uploaded lines that no live settlement covers; return the HIS's numbers.

    Select by charge batch (``chrg_bchno``), by the HIS's line numbers, or
    neither (every unsettled line of the encounter).  A selected line that a
    live settlement covers is refused (cancel the settlement first); an unknown
    line number is refused.  The audit log keeps the withdrawn lines' messages.
    """
    F = records.FeeDetail
    q = select(F.feedetl_sn).where(F.mdtrt_id == v.mdtrt_id)
    if chrg_bchno:
        q = q.join(FeeUpload, (FeeUpload.mdtrt_id == F.mdtrt_id) & (FeeUpload.feedetl_sn == F.feedetl_sn)).where(
            FeeUpload.chrg_bchno == chrg_bchno
        )
    present = set(s.scalars(q))
    his = his_numbers(s, v.mdtrt_id)
    if feedetl_sns is not None:
        internal = {h: k for k, h in his.items()}
        for k in present:
            internal.setdefault(str(k), k)
        wanted_his = set(feedetl_sns)
        missing = sorted(h for h in wanted_his if h not in internal or internal[h] not in present)
        if missing:
            raise _rej(
                f"fee line(s) {missing} were not uploaded for {v.mdtrt_id}",
                f"就诊 {v.mdtrt_id} 无费用明细 {missing}",
                "feedetl_sn",
            )
        present = {internal[h] for h in wanted_his}
    if chrg_bchno and not present:
        raise _rej(f"no fee lines in batch {chrg_bchno!r}", f"收费批次 {chrg_bchno} 无费用明细", "chrg_bchno")
    for setl_id, trace in _live_settlements(s, v.mdtrt_id):
        lst = trace.get("feedetl_sn") if isinstance(trace, dict) else None
        both = present if lst is None else present & {int(x) for x in lst}
        if both:
            names = [his.get(k, str(k)) for k in sorted(both)]
            raise _rej(
                f"fee line(s) {names} are in live settlement {setl_id}; cancel it first",
                f"费用明细 {names} 已结算 ({setl_id}), 请先撤销结算",
                "feedetl_sn",
            )
    gone = sorted(present)
    if gone:
        s.execute(delete(FeeUpload).where(FeeUpload.mdtrt_id == v.mdtrt_id, FeeUpload.feedetl_sn.in_(gone)))
        s.execute(delete(F).where(F.mdtrt_id == v.mdtrt_id, F.feedetl_sn.in_(gone)))
    v.changed_at = now
    s.flush()
    return [his.get(k, str(k)) for k in gone]


@dataclass(frozen=True)
class PendingLine:
    """An uploaded fee line that no live settlement covers: the line to settle, its batch, HIS number and time."""

    line: FeeLine
    chrg_bchno: str = ""
    his_sn: str = ""
    fee_ocur_time: dt.datetime | None = None
    bilg_dr_code: str = ""  # the prescriber (开单医师, 2204 bilg_dr_codg): a circulated line's issuer is found by it


_PENDING = (
    select(records.FeeDetail, FeeUpload)
    .outerjoin(
        FeeUpload,
        (FeeUpload.mdtrt_id == records.FeeDetail.mdtrt_id) & (FeeUpload.feedetl_sn == records.FeeDetail.feedetl_sn),
    )
    .where(records.FeeDetail.mdtrt_id == bindparam("mdtrt_id"))
    .order_by(records.FeeDetail.feedetl_sn)
)
_PENDING_OF_BATCH = _PENDING.where(FeeUpload.chrg_bchno == bindparam("chrg_bchno"))


def pending_lines(s: Session, mdtrt_id: str, chrg_bchno: str = "") -> list[PendingLine]:
    """Uploaded lines of an encounter that no live settlement covers (optionally of one batch).

    Two statements: the lines with their upload records, and the encounter's live settlements.
    """
    if chrg_bchno:
        rows = s.execute(_PENDING_OF_BATCH, {"mdtrt_id": mdtrt_id, "chrg_bchno": chrg_bchno}).all()
    else:
        rows = s.execute(_PENDING, {"mdtrt_id": mdtrt_id}).all()
    if not rows:
        return []
    covered: set[int] = set()
    for _setl_id, trace in _live_settlements(s, mdtrt_id):
        lst = trace.get("feedetl_sn") if isinstance(trace, dict) else None
        if lst is None:
            return []  # a batch settlement covers the whole encounter
        covered.update(int(x) for x in lst)
    out = []
    for f, u in rows:
        if f.feedetl_sn in covered:
            continue
        cnt_milli, pric = int(f.cnt_milli), int(f.pric)
        exact = _as_sent(u, f)
        line = FeeLine(
            feedetl_sn=f.feedetl_sn,
            med_list_codg=f.med_list_codg,
            cnt_milli=cnt_milli,
            pric=pric,
            det_item_fee_sumamt=int(f.det_item_fee_sumamt),
            rxno=f.rxno or "",
            prd_days=int(f.prd_days or 0),
            rx_circ_flag=bool(f.rx_circ_flag),
            exact=None if exact == (cnt_milli * 10, pric * 10_000) else exact,
        )
        out.append(
            PendingLine(
                line,
                (u.chrg_bchno or "") if u else "",
                (u.his_feedetl_sn or "") if u else "",
                f.fee_ocur_time,
                f.bilg_dr_code or "",
            )
        )
    return out
