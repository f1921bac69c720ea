"""E-code services (激活-支付-查询-办理): binding, family accounts, codes, verification, risk actions.

Every write is one transaction.  Refusals raise :class:`EcodeRefused`
(English + Chinese, naming the field) and change nothing, except that a
refused *presentation* of a code is itself recorded in the usage log, and an
anomaly's actions (block, forced unbinding, report) are recorded with it:
the record of a refusal is the point.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from yibao.core import db
from yibao.core.errors import YibaoError
from yibao.ecode import risk, tokens
from yibao.ecode.identity import IdentityVerifier, Subject, load_verifier
from yibao.ecode.models import EcodeBinding, EcodeBlock, EcodeKey, EcodeRiskEvent, EcodeUse
from yibao.ecode.params import EcodeParams, default_params

RISK_ENGINE = "risk-engine"


class EcodeRefused(YibaoError):
    """A binding, code or presentation is refused (the message says why)."""

    code = "E_ECODE"


@dataclass(frozen=True)
class Verified:
    psn_no: str
    binding_id: str
    holder_psn_no: str
    relation: str
    mutual_aid: bool


def _key(row: EcodeKey) -> tokens.SigningKey:
    return tokens.SigningKey(row.kid, row.algorithm, bytes.fromhex(row.secret_hex or ""), row.sm2_private or "", row.sm2_public or "")


class EcodeService:
    def __init__(
        self,
        engine: Engine,
        params: EcodeParams | None = None,
        identity: IdentityVerifier | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ):
        self.engine = engine
        self.params = params or default_params()
        self.identity = identity or load_verifier(self.params.binding.verifier)
        self.clock = clock or (lambda: dt.datetime.now(db.SHANGHAI))
        self._keys: dict[str, tokens.SigningKey] = {}
        self._active_kid: str | None = None

    # --- keys ---------------------------------------------------------------------

    def _load_keys(self) -> None:
        alg = self.params.token.algorithm
        with db.session_scope(self.engine, immediate=True) as s:
            rows = list(s.scalars(select(EcodeKey)))
            active = [r for r in rows if r.active and r.algorithm == alg]
            if not active:
                k = tokens.SigningKey.generate(alg)
                row = EcodeKey(kid=k.kid, algorithm=alg, secret_hex=k.secret.hex(), sm2_private=k.sm2_private,
                               sm2_public=k.sm2_public, created_at=self.clock(), active=True)
                s.add(row)
                rows.append(row)
                active = [row]
            self._keys = {r.kid: _key(r) for r in rows}
            self._active_kid = active[-1].kid

    def signing_key(self) -> tokens.SigningKey:
        if self._active_kid is None:
            self._load_keys()
        return self._keys[self._active_kid]  # type: ignore[index]

    def _verify_token(self, code: str, now: dt.datetime) -> tokens.CodeClaims:
        p = self.params.token
        claims = tokens.peek(code, prefix=p.prefix)
        if claims.kid not in self._keys:
            self._load_keys()
        return tokens.verify(code, self._keys, now, ttl_seconds=p.ttl_seconds, max_skew_seconds=p.max_skew_seconds, prefix=p.prefix)

    # --- reads ----------------------------------------------------------------------

    @staticmethod
    def _person(s: Session, psn_no: str) -> db.Person:
        p = s.get(db.Person, psn_no)
        if p is None:
            raise EcodeRefused(f"unknown person {psn_no!r}", f"参保人不存在: {psn_no}", field="psn_no")
        return p

    @staticmethod
    def _blocked(s: Session, psn_no: str) -> EcodeBlock | None:
        b = s.get(EcodeBlock, psn_no)
        return b if b is not None and b.active else None

    @staticmethod
    def _binding(s: Session, account_id: str, psn_no: str) -> EcodeBinding | None:
        return s.scalars(select(EcodeBinding).where(EcodeBinding.account_id == account_id, EcodeBinding.psn_no == psn_no,
                                                    EcodeBinding.status == "active")).first()

    def bindings(self, account_id: str) -> list[EcodeBinding]:
        with db.session_scope(self.engine) as s:
            rows = list(s.scalars(select(EcodeBinding).where(EcodeBinding.account_id == account_id).order_by(EcodeBinding.bound_at)))
            s.expunge_all()
            return rows

    def is_blocked(self, psn_no: str) -> bool:
        with db.session_scope(self.engine) as s:
            return self._blocked(s, psn_no) is not None

    # --- binding (激活) ---------------------------------------------------------------

    def _check_identity(self, p: db.Person, evidence: dict[str, Any]) -> str:
        res = self.identity.verify(Subject(p.psn_no, p.certno or "", p.psn_name or ""), evidence)
        if not res.ok:
            raise EcodeRefused(f"identity verification refused: {res.reason_en}", f"身份核验未通过: {res.reason_zh}", field="evidence")
        return res.method

    def bind(self, account_id: str, psn_no: str, evidence: dict[str, Any]) -> str:
        """Bind the account holder's own code after identity verification; returns the binding id."""
        if not account_id:
            raise EcodeRefused("account_id is required", "缺少账户标识 account_id", field="account_id")
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            p = self._person(s, psn_no)
            if self._blocked(s, psn_no):
                raise EcodeRefused("this person's e-code is blocked by risk control; contact the insurance agency",
                                   "该参保人医保码已被风控拦截, 请联系医保经办机构", field="psn_no")
            existing = self._binding(s, account_id, psn_no)
            if existing is not None and existing.relation == "self":
                return existing.binding_id
            other = s.scalars(select(EcodeBinding).where(EcodeBinding.psn_no == psn_no, EcodeBinding.relation == "self",
                                                         EcodeBinding.status == "active")).first()
            if other is not None:
                raise EcodeRefused("this person's own code is already bound to another account; unbind it first",
                                   "该参保人本人医保码已绑定其他账户, 请先解绑", field="psn_no")
            method = self._check_identity(p, evidence)
            b = EcodeBinding(binding_id=secrets.token_hex(8), account_id=account_id, psn_no=psn_no, holder_psn_no=psn_no,
                             relation="self", mutual_aid=False, verified_by=method, status="active", bound_at=now)
            s.add(b)
            return b.binding_id

    def _holder(self, s: Session, account_id: str) -> EcodeBinding:
        h = s.scalars(select(EcodeBinding).where(EcodeBinding.account_id == account_id, EcodeBinding.relation == "self",
                                                 EcodeBinding.status == "active")).first()
        if h is None:
            raise EcodeRefused("bind your own code before adding relatives", "请先绑定本人医保码再添加亲情账户", field="account_id")
        return h

    def add_relative(self, account_id: str, relative_psn_no: str, evidence: dict[str, Any], *, mutual_aid: bool = False) -> str:
        """Add a relative's code to the holder's family account (亲情账户); the relation must be on record."""
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            h = self._holder(s, account_id)
            rel = self._person(s, relative_psn_no)
            link = s.get(db.FamilyLink, (h.psn_no, relative_psn_no))
            relation = link.relation if link is not None else None
            if relation not in self.params.binding.relations:
                raise EcodeRefused(f"{relative_psn_no} is not a recorded spouse, parent or child of the holder",
                                   f"{relative_psn_no} 不是登记在案的配偶、父母或子女", field="relative_psn_no")
            if self._blocked(s, relative_psn_no):
                raise EcodeRefused("this person's e-code is blocked by risk control", "该参保人医保码已被风控拦截", field="relative_psn_no")
            if self._binding(s, account_id, relative_psn_no) is not None:
                raise EcodeRefused("this relative is already in the family account", "该亲属已在亲情账户中", field="relative_psn_no")
            n = len(list(s.scalars(select(EcodeBinding.binding_id).where(
                EcodeBinding.account_id == account_id, EcodeBinding.relation != "self", EcodeBinding.status == "active"))))
            if n >= self.params.binding.max_relatives:
                raise EcodeRefused(f"a family account holds at most {self.params.binding.max_relatives} relatives",
                                   f"亲情账户最多添加 {self.params.binding.max_relatives} 人", field="relative_psn_no")
            method = self._check_identity(rel, evidence)
            b = EcodeBinding(binding_id=secrets.token_hex(8), account_id=account_id, psn_no=relative_psn_no,
                             holder_psn_no=h.psn_no, relation=relation, mutual_aid=bool(mutual_aid), verified_by=method,
                             status="active", bound_at=now)
            s.add(b)
            return b.binding_id

    def set_mutual_aid(self, account_id: str, relative_psn_no: str, on: bool) -> None:
        """Authorise (or withdraw) the holder's personal account paying for this relative (家庭账户共济)."""
        with db.session_scope(self.engine, immediate=True) as s:
            b = self._binding(s, account_id, relative_psn_no)
            if b is None or b.relation == "self":
                raise EcodeRefused("no such relative in this family account", "亲情账户中无此亲属", field="relative_psn_no")
            b.mutual_aid = bool(on)

    def unbind(self, account_id: str, psn_no: str, *, reason: str = "by holder") -> None:
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            b = self._binding(s, account_id, psn_no)
            if b is None:
                raise EcodeRefused("no such binding", "无此绑定", field="psn_no")
            b.status, b.unbound_at, b.unbind_reason = "unbound", now, reason
            if b.relation == "self":  # the relatives go with the holder
                s.execute(update(EcodeBinding).where(EcodeBinding.account_id == account_id, EcodeBinding.status == "active")
                          .values(status="unbound", unbound_at=now, unbind_reason=reason))

    # --- codes (生码) -----------------------------------------------------------------

    def generate(self, account_id: str, psn_no: str) -> str:
        """A fresh code for ``psn_no`` shown by ``account_id`` (own or a relative's); refused while blocked."""
        now = self.clock()
        key = self.signing_key()
        with db.session_scope(self.engine) as s:
            b = self._binding(s, account_id, psn_no)
            if b is None:
                raise EcodeRefused("no active binding for this person on this account", "该账户未绑定此人医保码", field="psn_no")
            if self._blocked(s, psn_no):
                raise EcodeRefused("code generation is blocked by risk control (实时生码拦截); contact the insurance agency",
                                   "风控拦截: 暂停生成医保码, 请联系医保经办机构", field="psn_no")
            binding_id = b.binding_id
        return tokens.issue(key, binding_id, now, prefix=self.params.token.prefix)

    # --- presentation (支付/使用) --------------------------------------------------------

    def verify(self, code: str, *, fixmedins_code: str = "", purpose: str = "", now: dt.datetime | None = None) -> Verified:
        """Check a presented code, record the use, run the risk rules; raise on refusal.

        The use that reveals an anomaly is itself refused, and the
        anomaly's actions (``risk.actions``) take effect in the same
        transaction.
        """
        now = now or self.clock()
        refusal: tuple[str, str, str] | None = None
        try:
            claims = self._verify_token(code, now)
        except tokens.TokenError as exc:
            claims = None
            refusal = (exc.message_en, exc.message_zh, exc.field or "mdtrt_cert_no")
        with db.session_scope(self.engine, immediate=True) as s:
            b = s.get(EcodeBinding, claims.subject) if claims else None
            inst = s.get(db.Institution, fixmedins_code) if fixmedins_code else None
            admdvs = (inst.admdvs or "") if inst is not None else ""
            use = EcodeUse(psn_no=b.psn_no if b else None, binding_id=claims.subject if claims else None,
                           code_id=claims.code_id if claims else None, fixmedins_code=fixmedins_code or None,
                           admdvs=admdvs or None, purpose=purpose or None, used_at=now, accepted=False)
            if refusal is None and (b is None or b.status != "active"):
                refusal = ("this e-code's binding was removed", "该医保码已解绑", "mdtrt_cert_no")
            if refusal is None and self._blocked(s, b.psn_no):
                refusal = ("this person's e-code is blocked by risk control", "该参保人医保码已被风控拦截", "mdtrt_cert_no")
            if refusal is None:
                found = self._risk(s, b, risk.Use(now, admdvs, fixmedins_code), now)
                if found:
                    refusal = ("e-code refused: anomalous use, " + "; ".join(a.detail_en for a in found),
                               "医保码异常使用, 已拦截: " + "; ".join(a.detail_zh for a in found), "mdtrt_cert_no")
            if refusal is None:
                use.accepted = True
                s.add(use)
                return Verified(b.psn_no, b.binding_id, b.holder_psn_no, b.relation, b.mutual_aid)
            use.reason = refusal[0][:500]
            s.add(use)
        raise EcodeRefused(refusal[0], refusal[1], field=refusal[2])

    def _risk(self, s: Session, b: EcodeBinding, new: risk.Use, now: dt.datetime) -> list[risk.Anomaly]:
        rp = self.params.risk
        since = now - dt.timedelta(minutes=max(rp.window_minutes, rp.burst_window_minutes))
        recent = [risk.Use(t, a or "", f or "") for t, a, f in s.execute(
            select(EcodeUse.used_at, EcodeUse.admdvs, EcodeUse.fixmedins_code)
            .where(EcodeUse.psn_no == b.psn_no, EcodeUse.accepted.is_(True), EcodeUse.used_at >= since))]
        found = risk.detect(new, recent, rp, self.params.places)
        for a in found:
            self._act(s, b.psn_no, a.kind, a.detail_en, a.detail_zh, a.evidence, rp.actions, RISK_ENGINE, now)
        return found

    def _act(self, s: Session, psn_no: str, kind: str, en: str, zh: str, evidence: dict | None,
             actions: tuple[str, ...], actor: str, now: dt.datetime) -> EcodeRiskEvent:
        ev = EcodeRiskEvent(psn_no=psn_no, kind=kind, detail_en=en[:500], detail_zh=zh[:500], evidence=evidence,
                            actions=",".join(actions), detected_at=now, actor=actor,
                            reported_at=now if "report" in actions else None)
        s.add(ev)
        s.flush()
        if "block" in actions:
            blk = s.get(EcodeBlock, psn_no)
            if blk is None:
                s.add(EcodeBlock(psn_no=psn_no, active=True, blocked_at=now, reason=kind, event_id=ev.id))
            elif not blk.active:
                blk.active, blk.blocked_at, blk.reason, blk.event_id, blk.lifted_at, blk.lifted_by = True, now, kind, ev.id, None, None
        if "unbind" in actions:  # the person's code everywhere, and the family accounts they hold
            s.execute(update(EcodeBinding).where(or_(EcodeBinding.psn_no == psn_no, EcodeBinding.holder_psn_no == psn_no),
                                                 EcodeBinding.status == "active")
                      .values(status="unbound", unbound_at=now, unbind_reason=f"forced: {kind}"))
        return ev

    # --- bureau actions (console) ----------------------------------------------------------

    def block(self, psn_no: str, *, actor: str, reason: str = "manual") -> int:
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            self._person(s, psn_no)
            return self._act(s, psn_no, "manual_block", f"blocked by {actor}: {reason}", f"{actor} 手动拦截: {reason}",
                             None, ("block", "report"), actor, now).id

    def force_unbind(self, psn_no: str, *, actor: str, reason: str = "manual") -> int:
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            self._person(s, psn_no)
            return self._act(s, psn_no, "manual_unbind", f"unbound by {actor}: {reason}", f"{actor} 强制解绑: {reason}",
                             None, ("unbind", "report"), actor, now).id

    def unblock(self, psn_no: str, *, actor: str, reason: str = "cleared") -> int:
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            blk = self._blocked(s, psn_no)
            if blk is None:
                raise EcodeRefused("this person is not blocked", "该参保人未被拦截", field="psn_no")
            blk.active, blk.lifted_at, blk.lifted_by = False, now, actor
            return self._act(s, psn_no, "unblock", f"unblocked by {actor}: {reason}", f"{actor} 解除拦截: {reason}",
                             None, ("report",), actor, now).id

    def mutual_aid_payer(self, psn_no: str) -> str | None:
        """The holder whose personal account may pay for ``psn_no`` (家庭账户共济 authorised in a family account)."""
        with db.session_scope(self.engine) as s:
            b = s.scalars(select(EcodeBinding).where(EcodeBinding.psn_no == psn_no, EcodeBinding.relation != "self",
                                                     EcodeBinding.status == "active", EcodeBinding.mutual_aid.is_(True))).first()
            return b.holder_psn_no if b is not None else None

    # --- the national interface's hook ------------------------------------------------------

    def interface_verifier(self) -> Callable[..., str | None]:
        """``verifier(token, now, fixmedins_code="") -> psn_no | None`` for :class:`yibao.api.interface.Interface`.

        ``None`` (refused) makes the interface answer "e-code does not identify this person or has expired";
        the reason is in the usage log (``ecode_use``).
        """

        def verifier(token: str, now: dt.datetime, fixmedins_code: str = "", purpose: str = "interface") -> str | None:
            try:
                return self.verify(token, fixmedins_code=fixmedins_code, purpose=purpose, now=now).psn_no
            except EcodeRefused:
                return None

        return verifier
