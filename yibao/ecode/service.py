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
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from yibao.codes import registry
from yibao.core import db
from yibao.core.errors import YibaoError
from yibao.ecode import risk, tokens
from yibao.ecode.identity import IdentityVerifier, Subject, load_verifier
from yibao.ecode.models import EcodeBinding, EcodeBlock, EcodeKey, EcodeRiskEvent, EcodeUse
from yibao.ecode.params import EcodeParams, default_params
from yibao.settlement import records

RISK_ENGINE = "risk-engine"
# the Core tables of the hot path (typed as Table: the declarative attribute is typed as any FromClause)
_B, _K, _U, _I = (cast(Table, m.__table__) for m in (EcodeBinding, EcodeBlock, EcodeUse, registry.Institution))


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
    return tokens.SigningKey(
        row.kid, row.algorithm, bytes.fromhex(row.secret_hex or ""), row.sm2_private or "", row.sm2_public or ""
    )


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
        self._inst_admdvs: dict[str, str] = {}
        # usage-log group commit (usage_log.flush_ms > 0): rows waiting, and their uses by person for the risk rules
        self._sync = self.params.usage_log.flush_ms == 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._rows: list[dict] = []
        self._pending: dict[str, list[risk.Use]] = {}
        self._inflight: dict[str, list[risk.Use]] = {}
        self._flusher: threading.Thread | None = None
        self._closed = threading.Event()
        # the hot path's statements, built once (building SQL expressions per call costs more than running them)
        self._q_state_by_id = self._state_q().where(_B.c.binding_id == bindparam("bid"))
        self._q_state_by_acct = (
            self._state_q()
            .where(_B.c.account_id == bindparam("acct"), _B.c.psn_no == bindparam("psn"), _B.c.status == "active")
            .limit(1)
        )
        self._q_recent = select(_U.c.used_at, _U.c.admdvs, _U.c.fixmedins_code).where(
            _U.c.psn_no == bindparam("psn"), _U.c.accepted.is_(True), _U.c.used_at >= bindparam("since")
        )
        self._q_admdvs = select(_I.c.admdvs).where(_I.c.fixmedins_code == bindparam("code"))
        self._q_insert_use = insert(_U)
        self._q_code_uses = select(_U.c.used_at, _U.c.fixmedins_code).where(
            _U.c.psn_no == bindparam("psn"),
            _U.c.used_at >= bindparam("since"),
            _U.c.code_id == bindparam("cid"),
            _U.c.accepted.is_(True),
        )
        _S = records.Settlement.__table__
        self._q_settled = (
            select(_S.c.setl_id)
            .where(
                _S.c.psn_no == bindparam("psn"),
                _S.c.fixmedins_code == bindparam("code"),
                _S.c.setl_time >= bindparam("since"),
            )
            .limit(1)
        )

    # --- keys ---------------------------------------------------------------------

    def _load_keys(self) -> None:
        alg = self.params.token.algorithm
        with db.session_scope(self.engine, immediate=True) as s:
            rows = list(s.scalars(select(EcodeKey)))
            active = [r for r in rows if r.active and r.algorithm == alg]
            if not active:
                k = tokens.SigningKey.generate(alg)
                row = EcodeKey(
                    kid=k.kid,
                    algorithm=alg,
                    secret_hex=k.secret.hex(),
                    sm2_private=k.sm2_private,
                    sm2_public=k.sm2_public,
                    created_at=self.clock(),
                    active=True,
                )
                s.add(row)
                rows.append(row)
                active = [row]
            self._keys = {r.kid: _key(r) for r in rows}
            self._active_kid = active[-1].kid

    def rotate_key(self) -> str:
        """Start signing with a new key; older keys still verify the codes already shown (they expire in a minute)."""
        alg = self.params.token.algorithm
        k = tokens.SigningKey.generate(alg)
        with db.session_scope(self.engine, immediate=True) as s:
            s.execute(update(EcodeKey).where(EcodeKey.active.is_(True)).values(active=False))
            s.add(
                EcodeKey(
                    kid=k.kid,
                    algorithm=alg,
                    secret_hex=k.secret.hex(),
                    sm2_private=k.sm2_private,
                    sm2_public=k.sm2_public,
                    created_at=self.clock(),
                    active=True,
                )
            )
        self._load_keys()
        return k.kid

    def signing_key(self) -> tokens.SigningKey:
        if self._active_kid is None:
            self._load_keys()
        return self._keys[self._active_kid]  # type: ignore[index]

    def _verify_token(self, code: str, now: dt.datetime) -> tokens.CodeClaims:
        p = self.params.token
        claims = tokens.peek(code, prefix=p.prefix)
        if claims.kid not in self._keys:
            self._load_keys()
        return tokens.verify(
            code, self._keys, now, ttl_seconds=p.ttl_seconds, max_skew_seconds=p.max_skew_seconds, prefix=p.prefix
        )

    # --- reads ----------------------------------------------------------------------

    @staticmethod
    def _person(s: Session, psn_no: str) -> registry.Person:
        p = s.get(registry.Person, psn_no)
        if p is None:
            raise EcodeRefused(f"unknown person {psn_no!r}", f"参保人不存在: {psn_no}", field="psn_no")
        return p

    @staticmethod
    def _blocked(s: Session, psn_no: str) -> EcodeBlock | None:
        b = s.get(EcodeBlock, psn_no)
        return b if b is not None and b.active else None

    @staticmethod
    def _binding(s: Session, account_id: str, psn_no: str) -> EcodeBinding | None:
        return s.scalars(
            select(EcodeBinding).where(
                EcodeBinding.account_id == account_id, EcodeBinding.psn_no == psn_no, EcodeBinding.status == "active"
            )
        ).first()

    def bindings(self, account_id: str) -> list[EcodeBinding]:
        with db.session_scope(self.engine) as s:
            rows = list(
                s.scalars(
                    select(EcodeBinding).where(EcodeBinding.account_id == account_id).order_by(EcodeBinding.bound_at)
                )
            )
            s.expunge_all()
            return rows

    def is_blocked(self, psn_no: str) -> bool:
        with db.session_scope(self.engine) as s:
            return self._blocked(s, psn_no) is not None

    # --- binding (激活) ---------------------------------------------------------------

    def _check_identity(self, p: registry.Person, evidence: dict[str, Any]) -> str:
        res = self.identity.verify(Subject(p.psn_no, p.certno or "", p.psn_name or ""), evidence)
        if not res.ok:
            raise EcodeRefused(
                f"identity verification refused: {res.reason_en}", f"身份核验未通过: {res.reason_zh}", field="evidence"
            )
        return res.method

    def bind(self, account_id: str, psn_no: str, evidence: dict[str, Any]) -> str:
        """Bind the account holder's own code after identity verification; returns the binding id."""
        if not account_id:
            raise EcodeRefused("account_id is required", "缺少账户标识 account_id", field="account_id")
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            p = self._person(s, psn_no)
            if self._blocked(s, psn_no):
                raise EcodeRefused(
                    "this person's e-code is blocked by risk control; contact the insurance agency",
                    "该参保人医保码已被风控拦截, 请联系医保经办机构",
                    field="psn_no",
                )
            existing = self._binding(s, account_id, psn_no)
            if existing is not None and existing.relation == "self":
                return existing.binding_id
            other = s.scalars(
                select(EcodeBinding).where(
                    EcodeBinding.psn_no == psn_no, EcodeBinding.relation == "self", EcodeBinding.status == "active"
                )
            ).first()
            if other is not None:
                raise EcodeRefused(
                    "this person's own code is already bound to another account; unbind it first",
                    "该参保人本人医保码已绑定其他账户, 请先解绑",
                    field="psn_no",
                )
            method = self._check_identity(p, evidence)
            b = EcodeBinding(
                binding_id=secrets.token_hex(8),
                account_id=account_id,
                psn_no=psn_no,
                holder_psn_no=psn_no,
                relation="self",
                mutual_aid=False,
                verified_by=method,
                status="active",
                bound_at=now,
            )
            s.add(b)
            return b.binding_id

    def _holder(self, s: Session, account_id: str) -> EcodeBinding:
        h = s.scalars(
            select(EcodeBinding).where(
                EcodeBinding.account_id == account_id, EcodeBinding.relation == "self", EcodeBinding.status == "active"
            )
        ).first()
        if h is None:
            raise EcodeRefused(
                "bind your own code before adding relatives", "请先绑定本人医保码再添加亲情账户", field="account_id"
            )
        return h

    def add_relative(
        self, account_id: str, relative_psn_no: str, evidence: dict[str, Any], *, mutual_aid: bool = False
    ) -> str:
        """Add a relative's code to the holder's family account (亲情账户); the relation must be on record."""
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            h = self._holder(s, account_id)
            rel = self._person(s, relative_psn_no)
            link = s.get(registry.FamilyLink, (h.psn_no, relative_psn_no))
            relation = link.relation if link is not None else None
            if relation not in self.params.binding.relations:
                raise EcodeRefused(
                    f"{relative_psn_no} is not a recorded spouse, parent or child of the holder",
                    f"{relative_psn_no} 不是登记在案的配偶、父母或子女",
                    field="relative_psn_no",
                )
            if self._blocked(s, relative_psn_no):
                raise EcodeRefused(
                    "this person's e-code is blocked by risk control",
                    "该参保人医保码已被风控拦截",
                    field="relative_psn_no",
                )
            if self._binding(s, account_id, relative_psn_no) is not None:
                raise EcodeRefused(
                    "this relative is already in the family account", "该亲属已在亲情账户中", field="relative_psn_no"
                )
            n = len(
                list(
                    s.scalars(
                        select(EcodeBinding.binding_id).where(
                            EcodeBinding.account_id == account_id,
                            EcodeBinding.relation != "self",
                            EcodeBinding.status == "active",
                        )
                    )
                )
            )
            if n >= self.params.binding.max_relatives:
                raise EcodeRefused(
                    f"a family account holds at most {self.params.binding.max_relatives} relatives",
                    f"亲情账户最多添加 {self.params.binding.max_relatives} 人",
                    field="relative_psn_no",
                )
            method = self._check_identity(rel, evidence)
            b = EcodeBinding(
                binding_id=secrets.token_hex(8),
                account_id=account_id,
                psn_no=relative_psn_no,
                holder_psn_no=h.psn_no,
                relation=relation,
                mutual_aid=bool(mutual_aid),
                verified_by=method,
                status="active",
                bound_at=now,
            )
            s.add(b)
            return b.binding_id

    def set_mutual_aid(self, account_id: str, relative_psn_no: str, on: bool) -> None:
        """Authorise (or withdraw) the holder's personal account paying for this relative (家庭账户共济)."""
        with db.session_scope(self.engine, immediate=True) as s:
            b = self._binding(s, account_id, relative_psn_no)
            if b is None or b.relation == "self":
                raise EcodeRefused(
                    "no such relative in this family account", "亲情账户中无此亲属", field="relative_psn_no"
                )
            b.mutual_aid = bool(on)

    def unbind(self, account_id: str, psn_no: str, *, reason: str = "by holder") -> None:
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            b = self._binding(s, account_id, psn_no)
            if b is None:
                raise EcodeRefused("no such binding", "无此绑定", field="psn_no")
            b.status, b.unbound_at, b.unbind_reason = "unbound", now, reason
            if b.relation == "self":  # the relatives go with the holder
                s.execute(
                    update(EcodeBinding)
                    .where(EcodeBinding.account_id == account_id, EcodeBinding.status == "active")
                    .values(status="unbound", unbound_at=now, unbind_reason=reason)
                )

    # --- codes (生码) -----------------------------------------------------------------

    @staticmethod
    def _state_q():
        """A binding with its person's block flag, in one indexed query (Core, no ORM objects: the hot path)."""
        return select(
            _B.c.binding_id,
            _B.c.psn_no,
            _B.c.holder_psn_no,
            _B.c.relation,
            _B.c.mutual_aid,
            _B.c.status,
            _K.c.active.label("blocked"),
        ).select_from(_B.outerjoin(_K, _K.c.psn_no == _B.c.psn_no))

    def generate(self, account_id: str, psn_no: str) -> str:
        """A fresh code for ``psn_no`` shown by ``account_id`` (own or a relative's); refused while blocked."""
        now = self.clock()
        key = self.signing_key()
        with self.engine.connect() as c:
            st = c.execute(self._q_state_by_acct, {"acct": account_id, "psn": psn_no}).first()
        if st is None:
            raise EcodeRefused(
                "no active binding for this person on this account", "该账户未绑定此人医保码", field="psn_no"
            )
        if st.blocked:
            raise EcodeRefused(
                "code generation is blocked by risk control (实时生码拦截); contact the insurance agency",
                "风控拦截: 暂停生成医保码, 请联系医保经办机构",
                field="psn_no",
            )
        return tokens.issue(key, st.binding_id, now, prefix=self.params.token.prefix)

    # --- presentation (支付/使用) --------------------------------------------------------

    def _admdvs(self, s: Any, fixmedins_code: str) -> str:
        if not fixmedins_code:
            return ""
        hit = self._inst_admdvs.get(fixmedins_code)
        if hit is None:
            hit = s.execute(self._q_admdvs, {"code": fixmedins_code}).scalar() or ""
            if len(self._inst_admdvs) < 100_000:
                self._inst_admdvs[fixmedins_code] = hit
        return hit

    def verify(
        self, code: str, *, fixmedins_code: str = "", purpose: str = "", now: dt.datetime | None = None
    ) -> Verified:
        """Check a presented code, record the use, run the risk rules; raise on refusal.

        The use that reveals an anomaly is itself refused, and the
        anomaly's actions (``risk.actions``) take effect in the same
        transaction.  With ``usage_log.flush_ms`` 0 (the default) every use is
        written in its own serialised transaction; above 0, ordinary uses are
        written in groups by a background thread (see ``ecode.yaml``).
        """
        now = now or self.clock()
        refusal: tuple[str, str, str] | None = None
        found: list[risk.Anomaly] = []
        try:
            claims = self._verify_token(code, now)
        except tokens.TokenError as exc:
            claims = None
            refusal = (exc.message_en, exc.message_zh, exc.field or "mdtrt_cert_no")
        # strict mode: one serialised transaction; group commit: a plain read, and a write only for an anomaly
        # a session when the use is written at once, else a read-only connection (the use is buffered)
        scope: Any = db.session_scope(self.engine, immediate=True) if self._sync else self.engine.connect()
        with scope as s:
            # the binding's state row; once ``refusal`` is None below, it and ``claims`` are present
            st: Any = s.execute(self._q_state_by_id, {"bid": claims.subject}).first() if claims else None
            admdvs = self._admdvs(s, fixmedins_code)
            use = {
                "psn_no": st.psn_no if st else None,
                "binding_id": claims.subject if claims else None,
                "code_id": claims.code_id if claims else None,
                "fixmedins_code": fixmedins_code or None,
                "admdvs": admdvs or None,
                "purpose": purpose or None,
                "used_at": now,
                "accepted": False,
                "reason": None,
            }
            if refusal is None and (st is None or st.status != "active"):
                refusal = ("this e-code's binding was removed", "该医保码已解绑", "mdtrt_cert_no")
            if refusal is None and st.blocked:
                refusal = (
                    "this person's e-code is blocked by risk control",
                    "该参保人医保码已被风控拦截",
                    "mdtrt_cert_no",
                )
            if refusal is None:
                found = self._detect(s, st.psn_no, risk.Use(now, admdvs, fixmedins_code), now)
                if found:
                    refusal = (
                        "e-code refused: anomalous use, " + "; ".join(a.detail_en for a in found),
                        "医保码异常使用, 已拦截: " + "; ".join(a.detail_zh for a in found),
                        "mdtrt_cert_no",
                    )
            if refusal is None and self.params.token.single_flow:
                refusal = self._spent(s, st.psn_no, claims.code_id if claims else "", fixmedins_code, now)
            if refusal is None:
                use["accepted"] = True
            else:
                use["reason"] = refusal[0][:500]
            if self._sync:
                for a in found:
                    self._act(
                        s,
                        st.psn_no,
                        a.kind,
                        a.detail_en,
                        a.detail_zh,
                        a.evidence,
                        self.params.risk.actions,
                        RISK_ENGINE,
                        now,
                    )
                s.execute(self._q_insert_use, use)
        if not self._sync:
            if found:  # the anomaly, its actions and the use that revealed it: written at once, together
                with db.session_scope(self.engine, immediate=True) as s:
                    for a in found:
                        self._act(
                            s,
                            st.psn_no,
                            a.kind,
                            a.detail_en,
                            a.detail_zh,
                            a.evidence,
                            self.params.risk.actions,
                            RISK_ENGINE,
                            now,
                        )
                    s.execute(self._q_insert_use, use)
            else:
                self._buffer(use)
        if refusal is None:
            return Verified(st.psn_no, st.binding_id, st.holder_psn_no, st.relation, bool(st.mutual_aid))
        raise EcodeRefused(refusal[0], refusal[1], field=refusal[2])

    def _spent(
        self, s: Any, psn_no: str, code_id: str, fixmedins_code: str, now: dt.datetime
    ) -> tuple[str, str, str] | None:
        """Why this code may not serve this presentation (single use per settlement flow), or None.

        A code belongs to the flow it was first accepted in: later presentations must come from the same
        institution, and none is accepted once that institution made a settlement for the person after the
        first use (the flow is over).  Uses older than a code's life cannot be of this code.
        """
        p = self.params.token
        since = now - dt.timedelta(seconds=p.ttl_seconds + 2 * p.max_skew_seconds)
        uses = [(t, f or "") for t, f in s.execute(self._q_code_uses, {"psn": psn_no, "cid": code_id, "since": since})]
        if not self._sync:
            with self._lock:
                uses += [
                    (r["used_at"], r["fixmedins_code"] or "")
                    for r in self._rows
                    if r["code_id"] == code_id and r["accepted"] and r["used_at"] >= since
                ]
        if not uses:
            return None
        if any(f != (fixmedins_code or "") for _, f in uses):
            return (
                "this e-code was already presented at another institution; show a fresh code",
                "该医保码已在其他机构使用, 请刷新医保码",
                "mdtrt_cert_no",
            )
        first = min(t for t, _ in uses).replace(microsecond=0)  # settlement times are whole seconds
        if (
            s.execute(self._q_settled, {"psn": psn_no, "code": fixmedins_code or "", "since": first}).first()
            is not None
        ):
            return (
                "this e-code was already used for a settlement; show a fresh code",
                "该医保码已用于结算, 请刷新医保码",
                "mdtrt_cert_no",
            )
        return None

    def _detect(self, s: Any, psn_no: str, new: risk.Use, now: dt.datetime) -> list[risk.Anomaly]:
        rp = self.params.risk
        since = now - dt.timedelta(minutes=max(rp.window_minutes, rp.burst_window_minutes))
        recent = [
            risk.Use(t, a or "", f or "") for t, a, f in s.execute(self._q_recent, {"psn": psn_no, "since": since})
        ]
        if not self._sync:
            with self._lock:
                recent += [
                    u for u in (*self._pending.get(psn_no, ()), *self._inflight.get(psn_no, ())) if u.time >= since
                ]
        return risk.detect(new, recent, rp, self.params.places)

    # --- group commit of the usage log (usage_log.flush_ms > 0) ---------------------------------

    def _buffer(self, use: dict) -> None:
        with self._lock:
            self._rows.append(use)
            if use["accepted"] and use["psn_no"]:
                self._pending.setdefault(use["psn_no"], []).append(
                    risk.Use(use["used_at"], use["admdvs"] or "", use["fixmedins_code"] or "")
                )
            full = len(self._rows) >= self.params.usage_log.max_batch
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, name="yibao-ecode-usage", daemon=True)
                self._flusher.start()
        if full:
            self.flush()

    def _flush_loop(self) -> None:
        while not self._closed.wait(self.params.usage_log.flush_ms / 1000):
            self.flush()

    def flush(self) -> int:
        """Write the buffered usage records in one transaction; returns how many."""
        with self._flush_lock:
            with self._lock:
                rows, self._rows = self._rows, []
                self._inflight, self._pending = self._pending, {}
            try:
                if rows:
                    with db.session_scope(self.engine) as s:
                        s.execute(self._q_insert_use, rows)
            finally:
                with self._lock:
                    self._inflight = {}
            return len(rows)

    def close(self) -> None:
        self._closed.set()
        self.flush()

    def _act(
        self,
        s: Session,
        psn_no: str,
        kind: str,
        en: str,
        zh: str,
        evidence: dict | None,
        actions: tuple[str, ...],
        actor: str,
        now: dt.datetime,
    ) -> EcodeRiskEvent:
        ev = EcodeRiskEvent(
            psn_no=psn_no,
            kind=kind,
            detail_en=en[:500],
            detail_zh=zh[:500],
            evidence=evidence,
            actions=",".join(actions),
            detected_at=now,
            actor=actor,
            reported_at=now if "report" in actions else None,
        )
        s.add(ev)
        s.flush()
        if "block" in actions:
            blk = s.get(EcodeBlock, psn_no)
            if blk is None:
                s.add(EcodeBlock(psn_no=psn_no, active=True, blocked_at=now, reason=kind, event_id=ev.id))
            elif not blk.active:
                blk.active, blk.blocked_at, blk.reason, blk.event_id, blk.lifted_at, blk.lifted_by = (
                    True,
                    now,
                    kind,
                    ev.id,
                    None,
                    None,
                )
        if "unbind" in actions:  # the person's code everywhere, and the family accounts they hold
            s.execute(
                update(EcodeBinding)
                .where(
                    or_(EcodeBinding.psn_no == psn_no, EcodeBinding.holder_psn_no == psn_no),
                    EcodeBinding.status == "active",
                )
                .values(status="unbound", unbound_at=now, unbind_reason=f"forced: {kind}")
            )
        return ev

    # --- bureau actions (console) ----------------------------------------------------------

    def block(self, psn_no: str, *, actor: str, reason: str = "manual") -> int:
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            self._person(s, psn_no)
            return self._act(
                s,
                psn_no,
                "manual_block",
                f"blocked by {actor}: {reason}",
                f"{actor} 手动拦截: {reason}",
                None,
                ("block", "report"),
                actor,
                now,
            ).id

    def force_unbind(self, psn_no: str, *, actor: str, reason: str = "manual") -> int:
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            self._person(s, psn_no)
            return self._act(
                s,
                psn_no,
                "manual_unbind",
                f"unbound by {actor}: {reason}",
                f"{actor} 强制解绑: {reason}",
                None,
                ("unbind", "report"),
                actor,
                now,
            ).id

    def unblock(self, psn_no: str, *, actor: str, reason: str = "cleared") -> int:
        now = self.clock()
        with db.session_scope(self.engine, immediate=True) as s:
            blk = self._blocked(s, psn_no)
            if blk is None:
                raise EcodeRefused("this person is not blocked", "该参保人未被拦截", field="psn_no")
            blk.active, blk.lifted_at, blk.lifted_by = False, now, actor
            return self._act(
                s,
                psn_no,
                "unblock",
                f"unblocked by {actor}: {reason}",
                f"{actor} 解除拦截: {reason}",
                None,
                ("report",),
                actor,
                now,
            ).id

    def mutual_aid_payer(self, psn_no: str) -> str | None:
        """The holder whose personal account may pay for ``psn_no`` (家庭账户共济 authorised in a family account)."""
        with db.session_scope(self.engine) as s:
            b = s.scalars(
                select(EcodeBinding).where(
                    EcodeBinding.psn_no == psn_no,
                    EcodeBinding.relation != "self",
                    EcodeBinding.status == "active",
                    EcodeBinding.mutual_aid.is_(True),
                )
            ).first()
            return b.holder_psn_no if b is not None else None

    def payer_for_code(self, code: str) -> str | None:
        """The family-account holder who pays for this (relative's) code by mutual aid, if authorised; else None.

        The code must be genuine and unexpired; its binding must be active, a relative's, with mutual aid on.
        """
        try:
            claims = self._verify_token(code, self.clock())
        except tokens.TokenError:
            return None
        with self.engine.connect() as c:
            st = c.execute(self._q_state_by_id, {"bid": claims.subject}).first()
        if st is None or st.status != "active" or st.relation == "self" or not st.mutual_aid or st.blocked:
            return None
        return st.holder_psn_no

    # --- the national interface's hook ------------------------------------------------------

    def interface_verifier(self) -> Callable[..., str | None]:
        """``verifier(token, now, fixmedins_code="") -> psn_no | None`` for :class:`yibao.api.interface.Interface`.

        ``None`` (refused) makes the interface answer "e-code does not identify this person or has expired";
        the reason is in the usage log (``ecode_use``).
        """

        # A refusal is remembered for the message that got it (same code, same place, same received time): the
        # interface may ask again for that message (2201/2401 check the certificate a second time when the first
        # answer was "refused", inside their write transaction).  Asking again would record a second presentation
        # and, on SQLite, wait on the write lock the interface itself holds.  Refusals only: an accepted code is
        # verified each time (it may have been spent since).
        refused: dict[tuple[str, dt.datetime, str], None] = {}
        lock = threading.Lock()

        def verifier(token: str, now: dt.datetime, fixmedins_code: str = "", purpose: str = "interface") -> str | None:
            key = (token, now, fixmedins_code)
            with lock:
                if key in refused:
                    return None
            try:
                return self.verify(token, fixmedins_code=fixmedins_code, purpose=purpose, now=now).psn_no
            except EcodeRefused:
                with lock:
                    refused[key] = None
                    while len(refused) > 4096:
                        refused.pop(next(iter(refused)))
                return None

        return verifier
