"""The persisted scalar settlement path (实时结算经办): settle, pre-settle, cancel, credit.

:class:`SettlementService` wraps the pure rule function
:func:`yibao.settlement.rules.settle_claim` with the database: it loads and
locks the person-year accumulators and the paying personal account, settles,
and writes everything a settlement changes in **one** transaction.  The HTTP
service (national interface 2206/2207/2208, 2303/2304/2305) calls it.

What comes from where
---------------------
* Person facts (insurance type, person type, sex, birth date, insured place,
  assistance status, civil-servant flag) are read from ``person``; the
  caller's :class:`PersonFacts` is ignored except for ``psn_no``.
* The institution level comes from ``institution`` (unknown code: refused).
* A mutual-aid payer (家庭共济) must be a known person linked to the patient in
  ``family_link``; the relation is taken from the link (what the payer is to
  the patient; if only the reverse link exists, its inverse), never from the
  caller.  The account that pays is the payer's, else the patient's own when
  the patient is an employee (insutype 310).
* Policies: the insured place's snapshot on the settlement day (参保地政策)
  for the benefit, the treatment place's (``claim.mdtrtarea_admvs``; ``''`` =
  the insured place, as in the batch path) for the list (就医地目录).

Encounter and fee lines
-----------------------
Settlement accepts both HIS flows: the encounter (2201/2401) and fee lines
(2204/2301) may have been uploaded before, or not.  A missing encounter row is
created from the claim, missing fee lines are inserted, in the settlement's
transaction.  An existing encounter must belong to the same person and
institution, and an existing fee line (same ``mdtrt_id``/``feedetl_sn``) must
be identical (code, quantity, price, total), else the claim is refused.  A fee
line can be in at most one live settlement: the settled line numbers are kept
in ``settlement.rule_trace["feedetl_sn"]``, and a claim that repeats a line of
a live settlement of the same encounter is refused (a batch settlement without
that list covers its whole encounter).  Interim and per-cycle settlements
(中途结算, home-bed cycles) use new line numbers; after a cancellation the
encounter's lines may be settled again, as a **new** settlement (new msgid,
new ``setl_id``).

Idempotency
-----------
``msgid`` is unique over settlements and cancellations.  Settling with a
msgid already stored returns the stored reply unchanged (``replayed=True``)
when the request is the same (same SHA-256 of the request fields, kept in
``rule_trace["request_digest"]``), and is refused (field ``msgid``) when it
differs.  A repeated cancel msgid returns the original cancel reply.  Pre-
settlement computes the full result and rolls everything back.

Locking
-------
Person row, accumulators, then accounts, as docs/architecture.md ("Locking a settlement") tells; a
PostgreSQL unique-key race on one msgid or a deadlock is retried, then answered from the stored row.

Cancellation deletes accumulator rows that the reversal brings back to zero,
so that settle + cancel leaves the accumulator table exactly as before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine, and_, bindparam, delete, func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from yibao.benefits.policy import PolicyBook
from yibao.codes import registry
from yibao.core import db
from yibao.core.contract import INSUTYPE_EMPLOYEE
from yibao.core.errors import ClaimRejected
from yibao.crossregion.lists import treatment_catalog
from yibao.crossregion.service import is_filed
from yibao.enrolment.service import require_coverage
from yibao.maternity.eligibility import check_maternity_visit
from yibao.settlement import ledger, records
from yibao.settlement.catalog import Catalog
from yibao.settlement.rules import (
    Claim,
    PayerFacts,
    PersonFacts,
    Settlement,
    monthly_account_credit,
    settle_claim,
)

__all__ = ["CancelResult", "CreditResult", "Prepared", "SettleResult", "SettlementService", "request_digest"]

MAX_ATTEMPTS = 3
INVERSE_RELATION = {"spouse": "spouse", "parent": "child", "child": "parent"}
_INT32 = 2**31 - 1
_INT16 = 2**15 - 1

T = TypeVar("T")


# --- replies -------------------------------------------------------------------


@dataclass(frozen=True)
class SettleResult:
    """The reply to a settlement (or pre-settlement): every share, the id and the balance."""

    setl_id: str | None  # None for a pre-settlement
    msgid: str
    mdtrt_id: str
    psn_no: str
    settlement: Settlement
    balc: int | None  # paying account's balance after; None when no account pays
    refd_setl_flag: bool = False  # the stored settlement has since been cancelled
    pre: bool = False
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class CancelResult:
    """The reply to a cancellation (撤销)."""

    setl_id: str
    msgid: str
    psn_no: str
    acct_payer_psn_no: str
    acct_refund: int  # fen credited back to the paying account
    balc: int | None  # that account's balance after the refund; None when nothing was refunded
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class CreditResult:
    """Monthly personal-account credits posted by :meth:`SettlementService.credit_accounts`."""

    month: dt.date
    accounts: int  # accounts credited now
    amount: int  # fen credited now
    already: int  # accounts credited for this month before (left alone)


class _Rollback(Exception):
    """Carries a pre-settlement result out of a transaction that must not commit."""

    def __init__(self, result: SettleResult):
        super().__init__("pre-settlement")
        self.result = result


@dataclass(frozen=True)
class Prepared:
    """What a ``prepare`` function built inside the transaction: the claim, and the institution whose level it
    is paid at when not the settling one's (``level_of``, as :meth:`SettlementService.settle` takes it)."""

    claim: Claim
    level_of: str = ""


# --- helpers -------------------------------------------------------------------


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat()


def request_digest(claim: Claim, *, use_account: bool = True, level_of: str = "") -> str:
    """SHA-256 of the request fields that decide a settlement (person facts and level come from the DB)."""
    doc = {
        "mdtrt_id": claim.mdtrt_id,
        "psn_no": claim.person.psn_no,
        "fixmedins_code": claim.fixmedins_code,
        "med_type": claim.med_type,
        "begntime": _iso(claim.begntime) if claim.begntime.tzinfo else str(claim.begntime),
        "setl_time": _iso(claim.setl_time) if claim.setl_time.tzinfo else str(claim.setl_time),
        "dise_codg": claim.dise_codg,
        "other_dise_codg": list(claim.other_dise_codg),
        "lines": [
            [
                ln.feedetl_sn,
                ln.med_list_codg,
                ln.cnt_milli,
                ln.pric,
                ln.det_item_fee_sumamt,
                ln.rxno,
                ln.prd_days,
                bool(ln.rx_circ_flag),
            ]
            for ln in claim.lines
        ],
        "mdtrtarea_admvs": claim.mdtrtarea_admvs,
        "mulaid_payer_psn_no": claim.mulaid_payer.psn_no if claim.mulaid_payer else "",
        "lt_rx_confirmed": bool(claim.lt_rx_confirmed),
        "cross_filed": bool(claim.cross_filed),
    }
    if not use_account:  # only when set, so that digests stored before this option stay valid
        doc["acct_used"] = False
    if level_of:  # likewise
        doc["level_of"] = level_of
    raw = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def _retryable(exc: Exception) -> bool:
    """A unique-key race or a PostgreSQL deadlock/serialisation failure: try the transaction again."""
    if isinstance(exc, IntegrityError):
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, OperationalError) and code in ("40P01", "40001")


def _rejected(en: str, zh: str, fld: str) -> ClaimRejected:
    return ClaimRejected(en, zh, field=fld)


# the hot path's statements are built once (bind parameters), not per message: building and keying a
# statement costs more than running it
# FOR NO KEY UPDATE: excludes other settlers of this person, but not the KEY SHARE locks that
# foreign keys take (creating this person's account from a relative's transaction must not wait)
_LOCK_PERSON = (
    select(registry.Person)
    .where(registry.Person.psn_no == bindparam("psn_no"))
    .with_for_update(key_share=True)
    .execution_options(populate_existing=True)
)
_BY_MSGID = select(records.Settlement).where(
    or_(records.Settlement.msgid == bindparam("msgid"), records.Settlement.cancel_msgid == bindparam("msgid"))
)
_ACCUM_KEYS = select(records.Accumulator.kind, records.Accumulator.period).where(
    records.Accumulator.psn_no == bindparam("psn_no"), records.Accumulator.policy_year == bindparam("year")
)


def _lock_person(s: Session, psn_no: str) -> registry.Person:
    """The person row, locked until the transaction ends (serialises a person's settlements on PostgreSQL)."""
    p = s.execute(_LOCK_PERSON, {"psn_no": psn_no}).scalar_one_or_none()
    if p is None:
        raise _rejected(f"unknown person {psn_no!r}", f"参保人不存在: {psn_no}", "psn_no")
    return p


def _person_facts(p: registry.Person) -> PersonFacts:
    if not p.insutype or p.brdy is None:
        raise _rejected(
            f"person {p.psn_no}: the record lacks insutype or birth date",
            f"参保人 {p.psn_no} 信息不全 (险种或出生日期)",
            "psn_no",
        )
    return PersonFacts(
        psn_no=p.psn_no,
        insutype=p.insutype,
        psn_type=p.psn_type or "",
        gend=p.gend or "",
        brdy=p.brdy,
        insuplc_admdvs=p.insuplc_admdvs or "",
        assistance=p.assistance or "",
        civil_servant=bool(p.civil_servant),
    )


def _payer_facts(s: Session, patient: str, claimed: PayerFacts | None) -> PayerFacts | None:
    """The mutual-aid payer as the database knows it (relation from ``family_link``)."""
    if claimed is None:
        return None
    if claimed.psn_no == patient:
        raise _rejected("the mutual-aid payer is the patient", "共济支付人不能是患者本人", "mulaid_payer_psn_no")
    payer = s.get(registry.Person, claimed.psn_no)
    if payer is None:
        raise _rejected(
            f"unknown mutual-aid payer {claimed.psn_no!r}", f"共济支付人不存在: {claimed.psn_no}", "mulaid_payer_psn_no"
        )
    L = registry.FamilyLink
    direct = s.scalar(select(L.relation).where(L.psn_no == patient, L.relative_psn_no == claimed.psn_no))
    relation = direct or ""
    if not relation:
        back = s.scalar(select(L.relation).where(L.psn_no == claimed.psn_no, L.relative_psn_no == patient))
        relation = INVERSE_RELATION.get(back or "", "")
    if not relation:
        raise _rejected(
            f"{claimed.psn_no} is not registered as a relative of {patient}",
            f"{claimed.psn_no} 未登记为 {patient} 的家庭成员, 不能共济支付",
            "mulaid_payer_psn_no",
        )
    return PayerFacts(psn_no=payer.psn_no, insutype=payer.insutype or "", relation=relation)


def _check_shape(claim: Claim) -> None:
    """What the database could not store (the rule function checks the rest)."""
    for name in ("begntime", "setl_time"):
        t = getattr(claim, name)
        if t.tzinfo is None or t.utcoffset() is None:
            raise _rejected(f"{name} must carry a time zone", f"{name} 须带时区", name)
    for ln in claim.lines:
        if not 0 <= ln.feedetl_sn <= _INT32:
            raise _rejected(
                f"feedetl_sn {ln.feedetl_sn} out of range", f"费用明细流水号 {ln.feedetl_sn} 超出范围", "feedetl_sn"
            )
        if not -_INT16 <= ln.prd_days <= _INT16:
            raise _rejected(
                f"line {ln.feedetl_sn}: prd_days out of range", f"明细 {ln.feedetl_sn}: 周期天数超出范围", "prd_days"
            )


def _level_institution(s: Session, fixmedins_code: str, level_of: str) -> registry.Institution:
    """The institution whose level the claim is paid at: the settling one, or ``level_of`` (both must be known)."""
    inst = None
    for code in (fixmedins_code, level_of) if level_of else (fixmedins_code,):
        inst = s.get(registry.Institution, code)
        if inst is None:
            raise _rejected(f"unknown institution {code!r}", f"定点医药机构不存在: {code}", "fixmedins_code")
    assert inst is not None
    return inst


def _local_day(t: dt.datetime) -> dt.date:
    return t.astimezone(db.SHANGHAI).date()


def _reply_from_row(row: records.Settlement, *, pre: bool = False, replayed: bool = False) -> SettleResult:
    trace = row.rule_trace if isinstance(row.rule_trace, dict) else {}
    deltas = ledger.decode_accum_delta(row.accum_delta).get((row.psn_no, int(row.policy_year)), {})
    st = Settlement(
        **{k: int(getattr(row, k)) for k in Settlement.AMOUNTS},
        pool_prop_selfpay_bp=int(row.pool_prop_selfpay_bp or 0),
        category=row.benefit_category or "",
        acct_payer_psn_no=row.acct_payer_psn_no or "",
        accum_delta=dict(deltas),
        trace=[str(x) for x in trace.get("steps", [])],
    )
    return SettleResult(
        setl_id=None if pre else row.setl_id,
        msgid=row.msgid or "",
        mdtrt_id=row.mdtrt_id,
        psn_no=row.psn_no,
        settlement=st,
        balc=None if row.balc is None else int(row.balc),
        refd_setl_flag=bool(row.refd_setl_flag),
        pre=pre,
        replayed=replayed,
    )


def _dry_run_safe(res: Settlement, accum: dict, balance: int | None, payer_no: str, paid: int) -> bool:
    """Would the accumulator and account writes of this settlement certainly succeed?

    True when every accumulator delta is an integer and leaves its (locked) value at or above zero
    (what :func:`ledger.apply_accumulator_deltas` checks) and the account that pays is the one locked,
    with at least ``paid`` fen on it (what :func:`ledger.post_account` checks).
    """
    for key, delta in res.accum_delta.items():
        k = (key, "") if isinstance(key, str) else (str(key[0]), str(key[1]))
        if isinstance(delta, bool) or int(delta) != delta or accum.get(k, 0) + int(delta) < 0:
            return False
    if res.acct_payer_psn_no:
        return res.acct_payer_psn_no == payer_no and balance is not None and 0 <= paid <= balance
    return True


def _new_setl_id() -> str:
    return "L" + uuid.uuid4().hex.upper()  # 'S…' ids are the batch path's (S + mdtrt_id)


def _replay(
    s: Session, msgid: str, digest: str, pre: bool, hook: Callable[[Session, SettleResult], None] | None
) -> SettleResult | None:
    """Idempotency: the stored settlement of this msgid answers (if the request is the same); else None.

    One read serves both uses of a msgid (a settlement's, or a cancellation's).
    """
    used = s.scalars(_BY_MSGID, {"msgid": msgid}).all()
    stored = next((r for r in used if r.msgid == msgid), None)
    if stored is not None:
        trace = stored.rule_trace if isinstance(stored.rule_trace, dict) else {}
        if trace.get("request_digest") != digest:
            raise _rejected(
                f"msgid {msgid!r} was already used for a different request (settlement {stored.setl_id})",
                f"报文ID {msgid} 已用于另一笔不同的结算请求 ({stored.setl_id})",
                "msgid",
            )
        reply = _reply_from_row(stored, replayed=True)
        if hook is not None and not pre:
            hook(s, reply)
        return reply
    if any(r.cancel_msgid == msgid for r in used):
        raise _rejected(
            f"msgid {msgid!r} was already used for a cancellation", f"报文ID {msgid} 已用于撤销交易", "msgid"
        )
    return None


def _resolve_claim(s: Session, claim: Claim, person: registry.Person, psn_no: str, level_of: str = "") -> Claim:
    """The claim with the stored facts: the person's, the institution's level (``level_of``'s when given), the payer's
    and the filing."""
    _check_shape(claim)
    require_coverage(s, person, _local_day(claim.begntime))  # benefits follow enrolment (参保), see yibao.enrolment
    facts = _person_facts(person)
    inst = _level_institution(s, claim.fixmedins_code, level_of)
    payer = _payer_facts(s, psn_no, claim.mulaid_payer)
    c = dataclasses.replace(claim, person=facts, hosp_lv=int(inst.hosp_lv or 0), mulaid_payer=payer)
    if c.mdtrtarea_admvs and c.is_cross_province:  # 异地就医备案: filed or not comes from the register
        c = dataclasses.replace(
            c, cross_filed=is_filed(s, psn_no, facts.insutype, c.mdtrtarea_admvs, _local_day(c.setl_time))
        )
    return c


def _store_encounter(s: Session, c: Claim, encounter_exists: bool, new_lines: list, synthetic: bool) -> None:
    """Write the encounter (when not stored yet) and the claim's new fee lines."""
    if not encounter_exists:
        s.add(
            records.Encounter(
                mdtrt_id=c.mdtrt_id,
                psn_no=c.person.psn_no,
                fixmedins_code=c.fixmedins_code,
                med_type=c.med_type,
                begntime=c.begntime,
                endtime=c.setl_time,
                policy_year=c.policy_year,
                dise_codg=c.dise_codg,
                other_dise_codg=";".join(c.other_dise_codg),
                mdtrtarea_admvs=c.mdtrtarea_admvs,
                mulaid_payer_psn_no=c.mulaid_payer.psn_no if c.mulaid_payer else "",
                lt_rx_confirmed=bool(c.lt_rx_confirmed),
                synthetic=synthetic,
            )
        )
        s.flush()
    for ln in new_lines:
        s.add(
            records.FeeDetail(
                mdtrt_id=c.mdtrt_id,
                feedetl_sn=ln.feedetl_sn,
                med_list_codg=ln.med_list_codg,
                cnt_milli=ln.cnt_milli,
                pric=ln.pric,
                det_item_fee_sumamt=ln.det_item_fee_sumamt,
                fee_ocur_time=None,
                rxno=ln.rxno,
                rx_circ_flag=bool(ln.rx_circ_flag),
                prd_days=ln.prd_days,
                synthetic=synthetic,
            )
        )
    s.flush()


def _post_ledgers(s: Session, c: Claim, res: Settlement, setl_id: str, *, locked: bool) -> int | None:
    """Apply the accumulator deltas and post the account payment; the account's balance after it (None: none)."""
    ledger.apply_accumulator_deltas(s, c.person.psn_no, c.policy_year, res.accum_delta)
    if not res.acct_payer_psn_no:
        return None
    kind = "mulaid_pay" if c.mulaid_payer else "pay"
    paid = res.acct_pay + res.acct_mulaid_pay
    return ledger.post_account(s, res.acct_payer_psn_no, -paid, kind, setl_id, c.setl_time, locked=locked)


# --- the service ---------------------------------------------------------------


class SettlementService:
    """Real-time settlement against a database (SQLite or PostgreSQL).

    ``book`` gives each region's policy; ``catalog`` is the medical list
    (the treatment place's overrides are applied per claim).
    """

    def __init__(self, engine: Engine, book: PolicyBook, catalog: Catalog):
        self.engine = engine
        self.book = book
        self.catalog = catalog

    # -- plumbing --

    def _run(self, once: Callable[[], T]) -> T:
        for attempt in range(MAX_ATTEMPTS):
            try:
                return once()
            except (IntegrityError, OperationalError) as exc:
                if attempt + 1 == MAX_ATTEMPTS or not _retryable(exc):
                    raise
        raise AssertionError("unreachable")

    # -- settlement --

    def settle(
        self,
        claim: Claim | None = None,
        *,
        msgid: str,
        pre: bool = False,
        use_account: bool = True,
        guard: Callable[[Session], None] | None = None,
        hook: Callable[[Session, SettleResult], None] | None = None,
        prepare: Callable[[Session, registry.Person], Claim | Prepared] | None = None,
        digest: str | None = None,
        psn_no: str | None = None,
        level_of: str = "",
    ) -> SettleResult:
        """Settle (``pre=False``, 结算) or pre-settle (``pre=True``, 预结算, writes nothing) one claim.

        ``use_account=False`` settles without the personal account (the HIS's
        ``acct_used_flag = 0``: the person pays cash).  ``guard(session)`` runs
        inside the transaction after the person is locked and may refuse (raise
        :class:`ClaimRejected`); ``hook(session, reply)`` runs inside the same
        transaction just before it commits (the HTTP service stores its reply
        and audit record there), also for a replayed msgid.  For a pre-settlement whose
        results are known without writing (the usual case), ``hook`` runs too and its
        writes commit (the reply store); otherwise the pre-settlement rolls back and
        ``hook`` does not run.

        ``prepare(session, locked_person) -> Claim``, instead of ``claim``: build the claim
        inside the transaction, from lines already stored for the encounter (the
        settlement-visit service, :mod:`yibao.settlement.visit_service`); then ``digest``
        (the request's fingerprint for msgid idempotency) and ``psn_no`` are required, and the stored
        lines are not compared again.  ``prepare`` may return :class:`Prepared` instead, when the stored lines
        decide the level too (a circulated prescription's issuer); its ``level_of`` then replaces the argument.

        ``level_of``: the institution whose level (hosp_lv) the benefit follows, when not the settling one's
        (a circulated prescription filled at a pharmacy is paid at the prescribing institution's level,
        :mod:`yibao.rxcirc.service`); it must be a known institution.
        Raises :class:`ClaimRejected` (with ``field``) for bad input; then
        nothing is written.
        """
        if not msgid:
            raise _rejected("msgid is required", "报文ID不能为空", "msgid")
        if (claim is None) == (prepare is None):
            raise TypeError("settle takes a claim or a prepare function, not both")
        if prepare is not None and not (digest and psn_no):
            raise TypeError("settle(prepare=...) needs the request digest and the person's psn_no")
        if claim is not None:
            digest = request_digest(claim, use_account=use_account, level_of=level_of)
        assert digest is not None
        try:
            return self._run(
                lambda: self._settle_once(
                    claim, msgid, digest, pre, use_account, guard, hook, prepare, psn_no, level_of
                )
            )
        except _Rollback as rb:
            return rb.result

    def _settle_once(
        self,
        claim: Claim | None,
        msgid: str,
        digest: str,
        pre: bool,
        use_account: bool = True,
        guard: Callable[[Session], None] | None = None,
        hook: Callable[[Session, SettleResult], None] | None = None,
        prepare: Callable[[Session, registry.Person], Claim | Prepared] | None = None,
        psn_no: str | None = None,
        level_of: str = "",
    ) -> SettleResult:
        with db.session_scope(self.engine, immediate=True) as s:
            psn_no = claim.person.psn_no if claim is not None else psn_no
            assert psn_no is not None
            person = _lock_person(s, psn_no)

            replayed = _replay(s, msgid, digest, pre, hook)
            if replayed is not None:
                return replayed
            if guard is not None:
                guard(s)
            if prepare is not None:
                got = prepare(s, person)
                claim, level_of = (got.claim, got.level_of) if isinstance(got, Prepared) else (got, level_of)
            assert claim is not None
            c = _resolve_claim(s, claim, person, psn_no, level_of)
            facts, payer, year = c.person, c.mulaid_payer, c.policy_year
            # lines the caller read from this encounter's stored, unsettled lines in this transaction need no comparing
            encounter_exists, new_lines = (True, []) if prepare is not None else self._check_encounter(s, c)

            # lock: accumulators of the person-year, then the paying account
            keys = s.execute(_ACCUM_KEYS, {"psn_no": psn_no, "year": year}).all()
            accum = ledger.lock_accumulators(s, psn_no, year, [(k.kind, k.period) for k in keys])
            payer_no = payer.psn_no if payer else (psn_no if facts.insutype == INSUTYPE_EMPLOYEE else "")
            if not use_account and payer is not None:
                raise _rejected(
                    "a mutual-aid payer needs the personal account (acct_used_flag = 1)",
                    "共济支付须使用个人账户 (个人账户使用标志应为1)",
                    "acct_used_flag",
                )
            balance = ledger.lock_account(s, payer_no) if payer_no and use_account else None

            day = _local_day(c.setl_time)
            benefit = self.book.policy(facts.insuplc_admdvs).snapshot(day)
            check_maternity_visit(s, person, c.med_type, benefit, _local_day(c.begntime))  # 生育医疗: an insured woman
            area = c.mdtrtarea_admvs
            listing = self.book.policy(area).snapshot(day) if area and area != facts.insuplc_admdvs else None
            priced = treatment_catalog(self.catalog, facts.insuplc_admdvs, area, day)  # 就医地目录 (cross-province)
            res = settle_claim(c, benefit, priced, accum, balance, listing)
            res.check()

            # write: encounter and lines, accumulators, account, settlement row
            setl_id = _new_setl_id()
            synthetic = bool(person.synthetic)
            _store_encounter(s, c, encounter_exists, new_lines, synthetic)
            paid = res.acct_pay + res.acct_mulaid_pay
            dry = pre and _dry_run_safe(res, accum, balance, payer_no, paid)
            if dry:
                # a pre-settlement is rolled back: when the writes below cannot refuse (accumulators stay
                # >= 0, the locked account covers the payment) their results are known without making them
                balc = balance - paid if (res.acct_payer_psn_no and balance is not None) else None
            else:
                balc = _post_ledgers(
                    s, c, res, setl_id, locked=balance is not None and res.acct_payer_psn_no == payer_no
                )
            row = records.Settlement(
                setl_id=setl_id,
                mdtrt_id=c.mdtrt_id,
                psn_no=psn_no,
                fixmedins_code=c.fixmedins_code,
                setl_time=c.setl_time,
                policy_year=year,
                insutype=facts.insutype,
                med_type=c.med_type,
                benefit_category=res.category,
                **res.amounts(),
                pool_prop_selfpay_bp=res.pool_prop_selfpay_bp,
                balc=balc,
                refd_setl_flag=False,
                synthetic=synthetic,
                msgid=msgid,
                cancel_msgid=None,
                accum_delta=ledger.encode_accum_delta(psn_no, year, res.accum_delta),
                acct_payer_psn_no=res.acct_payer_psn_no or None,
                rule_trace={
                    "steps": list(res.trace),
                    "request_digest": digest,
                    "feedetl_sn": sorted(ln.feedetl_sn for ln in c.lines),
                    "hosp_lv": c.hosp_lv,
                    **({"level_of": level_of} if level_of else {}),
                    "mulaid_relation": payer.relation if payer else "",
                },
            )
            if dry:
                reply = _reply_from_row(row, pre=True)
                if hook is not None and encounter_exists and not new_lines:
                    hook(s, reply)  # nothing else was written: the hook's writes (the reply store) commit alone
                    return reply
                raise _Rollback(reply)  # nothing of it is kept
            s.add(row)
            s.flush()
            reply = _reply_from_row(row, pre=pre)
            if pre:
                raise _Rollback(reply)
            if hook is not None:
                hook(s, reply)
            return reply

    def _check_encounter(self, s: Session, c: Claim) -> tuple[bool, list]:
        """Is the encounter already stored, and which of the claim's lines are new (see the module doc)."""
        enc = s.get(records.Encounter, c.mdtrt_id)
        if enc is not None and (
            enc.psn_no != c.person.psn_no or (enc.fixmedins_code or c.fixmedins_code) != c.fixmedins_code
        ):
            raise _rejected(
                f"encounter {c.mdtrt_id} belongs to {enc.psn_no} at {enc.fixmedins_code}, "
                f"not {c.person.psn_no} at {c.fixmedins_code}",
                f"就诊 {c.mdtrt_id} 不属于该参保人或该机构",
                "mdtrt_id",
            )
        if enc is None:
            return False, list(c.lines)
        F = records.FeeDetail
        stored = {f.feedetl_sn: f for f in s.scalars(select(F).where(F.mdtrt_id == c.mdtrt_id))}
        new = []
        for ln in c.lines:
            f = stored.get(ln.feedetl_sn)
            if f is None:
                new.append(ln)
            elif (f.med_list_codg, f.cnt_milli, f.pric, f.det_item_fee_sumamt) != (
                ln.med_list_codg,
                ln.cnt_milli,
                ln.pric,
                ln.det_item_fee_sumamt,
            ):
                raise _rejected(
                    f"line {ln.feedetl_sn} differs from the fee line uploaded for {c.mdtrt_id}",
                    f"明细 {ln.feedetl_sn} 与已上传的费用明细不一致",
                    "feedetl_sn",
                )
        S = records.Settlement
        live = s.execute(
            select(S.setl_id, S.rule_trace).where(S.mdtrt_id == c.mdtrt_id, S.refd_setl_flag.is_(False))
        ).all()
        wanted = {ln.feedetl_sn for ln in c.lines}
        for setl_id, trace in live:
            covered = (trace or {}).get("feedetl_sn") if isinstance(trace, dict) else None
            both = wanted if covered is None else wanted & set(covered)
            if both:
                raise _rejected(
                    f"encounter {c.mdtrt_id}: line(s) {sorted(both)} already settled in {setl_id}; cancel it first",
                    f"就诊 {c.mdtrt_id} 的明细 {sorted(both)} 已在结算 {setl_id} 中结算, 请先撤销",
                    "feedetl_sn",
                )
        return True, new

    # -- cancellation --

    def cancel(
        self,
        setl_id: str,
        *,
        msgid: str,
        at: dt.datetime | None = None,
        guard: Callable[[Session, records.Settlement], None] | None = None,
        hook: Callable[[Session, CancelResult], None] | None = None,
    ) -> CancelResult:
        """Cancel (撤销) a settlement: reverse its accumulator deltas and refund its account payment.

        ``at`` is the time of the refund movement (default: now).  Cancelling
        a cancelled settlement is refused (field ``setl_id``); the same
        cancel msgid again returns the original reply.  ``guard(session,
        settlement_row)`` may refuse inside the transaction (e.g. another
        institution's settlement); ``hook(session, reply)`` runs just before
        the commit, as for :meth:`settle`.
        """
        if not msgid:
            raise _rejected("msgid is required", "报文ID不能为空", "msgid")
        when = at or dt.datetime.now(db.SHANGHAI)
        return self._run(lambda: self._cancel_once(setl_id, msgid, when, guard, hook))

    def _cancel_once(
        self,
        setl_id: str,
        msgid: str,
        when: dt.datetime,
        guard: Callable[[Session, records.Settlement], None] | None = None,
        hook: Callable[[Session, CancelResult], None] | None = None,
    ) -> CancelResult:
        S = records.Settlement
        with db.session_scope(self.engine, immediate=True) as s:
            row = s.get(S, setl_id)
            if row is None:
                other = s.scalar(select(S.setl_id).where(S.cancel_msgid == msgid))
                if other is not None:
                    raise _rejected(
                        f"msgid {msgid!r} already cancelled settlement {other}",
                        f"报文ID {msgid} 已用于撤销结算 {other}",
                        "msgid",
                    )
                raise _rejected(f"unknown settlement {setl_id!r}", f"结算记录不存在: {setl_id}", "setl_id")
            _lock_person(s, row.psn_no)
            row = s.execute(
                select(S).where(S.setl_id == setl_id).with_for_update().execution_options(populate_existing=True)
            ).scalar_one()
            if guard is not None:
                guard(s, row)
            if row.cancel_msgid == msgid:
                reply = self._cancel_reply(s, row, replayed=True)
                if hook is not None:
                    hook(s, reply)
                return reply
            other = s.scalar(select(S.setl_id).where(or_(S.cancel_msgid == msgid, S.msgid == msgid)))
            if other is not None:
                raise _rejected(
                    f"msgid {msgid!r} was already used (settlement {other})",
                    f"报文ID {msgid} 已被使用 ({other})",
                    "msgid",
                )
            if row.refd_setl_flag:
                raise _rejected(
                    f"settlement {setl_id} is already cancelled", f"结算 {setl_id} 已撤销, 不能重复撤销", "setl_id"
                )
            if row.accum_delta is None:
                raise _rejected(
                    f"settlement {setl_id} has no recorded accumulator changes (a batch settlement); "
                    "it cannot be cancelled online",
                    f"结算 {setl_id} 无累计变动记录 (批量结算), 不能联机撤销",
                    "setl_id",
                )
            ledger.reverse_accum_delta(s, row.accum_delta)
            A = records.Accumulator
            for (psn, year), deltas in ledger.decode_accum_delta(row.accum_delta).items():
                s.execute(
                    delete(A).where(
                        A.psn_no == psn,
                        A.policy_year == year,
                        A.value == 0,
                        tuple_(A.kind, A.period).in_(sorted(deltas)),
                    )
                )
            refund = int(row.acct_pay) + int(row.acct_mulaid_pay)
            if refund and row.acct_payer_psn_no:
                ledger.lock_account(s, row.acct_payer_psn_no)
                ledger.post_account(s, row.acct_payer_psn_no, refund, "reversal", setl_id, when)
            row.refd_setl_flag = True
            row.cancel_msgid = msgid
            s.flush()
            reply = self._cancel_reply(s, row, replayed=False)
            if hook is not None:
                hook(s, reply)
            return reply

    @staticmethod
    def _cancel_reply(s: Session, row: records.Settlement, *, replayed: bool) -> CancelResult:
        refund = int(row.acct_pay) + int(row.acct_mulaid_pay)
        payer = row.acct_payer_psn_no or ""
        balc = None
        if refund and payer:
            L = records.AccountLedger
            rid = s.scalar(
                select(func.max(L.id)).where(L.setl_id == row.setl_id, L.kind == "reversal", L.psn_no == payer)
            )
            # balc == Σ ledger (records.Account); a person's movements are made under the account lock, in id order
            balc = int(s.scalar(select(func.sum(L.amount)).where(L.psn_no == payer, L.id <= rid)) or 0)
        return CancelResult(
            setl_id=row.setl_id,
            msgid=row.cancel_msgid or "",
            psn_no=row.psn_no,
            acct_payer_psn_no=payer,
            acct_refund=refund if payer else 0,
            balc=balc,
            replayed=replayed,
        )

    # -- monthly personal-account credits --

    def credit_accounts(self, month: dt.date) -> CreditResult:
        """Post the month's personal-account credits (2021 reform) for every employee, once.

        One transaction.  Each credit is an ``account_ledger`` row of kind
        ``credit`` with ``setl_id = 'credit:YYYY-MM'`` (the marker): a person
        who already has it for this month is skipped, so running it again
        credits nobody twice (and credits employees added since).
        """
        first = month.replace(day=1)
        marker = f"credit:{first:%Y-%m}"
        when = dt.datetime(first.year, first.month, 1, tzinfo=db.SHANGHAI)
        P, L = registry.Person, records.AccountLedger
        posted = amount = already = 0
        with db.session_scope(self.engine, immediate=True) as s:
            rows = s.execute(
                select(P.psn_no, P.psn_type, P.contribution_base, P.insuplc_admdvs)
                .where(P.insutype == INSUTYPE_EMPLOYEE)
                .order_by(P.psn_no)
            ).all()
            for r in rows:
                snap = self.book.policy(r.insuplc_admdvs or "").snapshot(first)
                amt = monthly_account_credit(snap, INSUTYPE_EMPLOYEE, r.psn_type or "", int(r.contribution_base or 0))
                if amt <= 0:
                    continue
                ledger.lock_account(s, r.psn_no)  # sorted order; then the marker check sees committed credits
                done = s.scalar(
                    select(L.id).where(and_(L.psn_no == r.psn_no, L.kind == "credit", L.setl_id == marker)).limit(1)
                )
                if done is not None:
                    already += 1
                    continue
                ledger.post_account(s, r.psn_no, amt, "credit", marker, when)
                posted += 1
                amount += amt
        return CreditResult(month=first, accounts=posted, amount=amount, already=already)
