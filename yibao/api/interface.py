"""The national interface (定点医药机构接口): envelope dispatch and transaction handlers.

:class:`Interface` answers one message (a JSON envelope, see
:mod:`yibao.api.envelope`) with one reply.  Per message:

1. parse and validate the envelope; check the ``sign_no`` (签到, 9001) belongs
   to the sending institution and has not expired;
2. validate ``input`` with the transaction's model (:mod:`yibao.api.schemas`);
3. a ``msgid`` already answered returns the stored reply, byte for byte
   (``api_reply``), and changes nothing; the same ``msgid`` with other content
   is refused;
4. run the handler in **one** database transaction: its business writes, the
   stored reply and the audit record (``message_log``, personal data masked)
   commit together.  A refusal (``infcode = -1``) rolls the business part back
   and writes only its audit record.

Settlement is :class:`yibao.settlement.service.SettlementService` (the same
rule function as the batch path); visit state is
:mod:`yibao.settlement.visits`.  Field names of the national interface appear
only here and in :mod:`yibao.api.schemas`.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, and_, bindparam, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from yibao.api import schemas as S
from yibao.api.envelope import (
    BadValue,
    MalformedMessage,
    digest,
    dumps_exact,
    err_text,
    fmt_msg_time,
    fmt_time,
    inspect_values,
    loads_exact,
    mask,
)
from yibao.api.models import MessageLog, SignIn, StoredReply
from yibao.api.params import InterfaceConfig, default_config
from yibao.api.security import InstitutionKeys, Refusal, SecurityPolicy, open_request, seal_reply
from yibao.benefits.policy import PolicyBook
from yibao.codes import registry
from yibao.codes.national import canonical_diagnosis, is_valid_diagnosis
from yibao.core import contract, db
from yibao.core.errors import ClaimRejected, YibaoError
from yibao.core.money import BP_SCALE, NO_CAP, MoneyError, fen_to_yuan, yuan_to_fen
from yibao.enrolment.service import insured_state
from yibao.longrx import interface as longrx_iface
from yibao.rxcirc.service import release_fill_of
from yibao.settlement import ledger, records
from yibao.settlement import visits as V
from yibao.settlement.catalog import Catalog
from yibao.settlement.rules import (
    Claim,
    FeeLine,
    PersonFacts,
    age_on,
    classify_category,
    layer_applies,
    split_lines,
)
from yibao.settlement.service import CancelResult, SettlementService, SettleResult
from yibao.settlement.visit_service import CLAIMED_AMOUNTS, VisitSettlementService, VisitSettleRequest, VisitSnapshot

__all__ = ["Interface", "Outcome", "TRANSACTIONS"]

log = logging.getLogger("yibao.api")

FUND_FIELDS = contract.FUND_PAY_FIELDS
_ZH_ERR = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_too_long": "字段过长",
    "string_too_short": "字段不能为空",
    "string_pattern_mismatch": "字段格式不符",
    "string_type": "字段须为字符串",
    "literal_error": "字段取值无效",
    "int_type": "字段须为整数",
    "int_parsing": "字段须为整数",
    "dict_type": "字段须为JSON对象",
    "model_type": "字段须为JSON对象",
    "list_type": "字段须为数组",
    "too_short": "不能为空",
    "too_long": "长度或条数超过上限",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
}


@dataclass
class Outcome:
    """One reply: its JSON text and object, and what a REST caller needs."""

    text: str
    reply: dict[str, Any]
    field: str | None = None
    status: int = 200  # HTTP status for the REST side (the envelope side always answers 200)
    replayed: bool = False

    @property
    def infcode(self) -> int:
        return int(self.reply.get("infcode", -1))

    @property
    def output(self) -> Any:
        return self.reply.get("output")


class _Answered(Exception):
    """Another transaction answered this msgid first; roll back and return its reply."""

    def __init__(self, stored: StoredReply):
        super().__init__(stored.msgid)
        self.stored = stored


class _Refused(Exception):
    def __init__(self, zh: str, en: str, fld: str | None, status: int = 400):
        super().__init__(en)
        self.zh, self.en, self.field, self.status = zh, en, fld, status


@dataclass
class Ctx:
    """What a handler knows about its message."""

    env: S.Envelope
    digest: str
    received: dt.datetime
    request_obj: Any
    iface: Any  # the Interface, or a proxy of it carrying the in-care warnings (more_transactions._Warned)
    keys: InstitutionKeys | None = None
    outcome: Outcome | None = field(default=None)

    @property
    def now(self) -> dt.datetime:
        return self.received

    def commit(self, s: Session, output: Any, *, maybe_repeat: bool = False) -> Outcome:
        """Store the reply and the audit record in the handler's transaction (call last).

        A msgid that already has a stored reply makes the insert fail (primary key): the
        transaction rolls back and ``Interface._dispatch`` answers from the store.  When the
        caller already knows the message is probably a repeat (``maybe_repeat``, a replayed
        settlement), look first, so that the settlement service does not retry the conflict.
        """
        if maybe_repeat:
            stored = s.get(StoredReply, self.env.msgid)
            if stored is not None:
                s.expunge(stored)  # keep its loaded values through the rollback
                raise _Answered(stored)
        reply = self.iface._reply(0, "", output, self.received)
        wire = self.iface._seal(reply, self.keys)
        text = dumps_exact(wire)
        s.add(
            StoredReply(
                msgid=self.env.msgid,
                infno=self.env.infno,
                fixmedins_code=self.env.fixmedins_code,
                request_digest=self.digest,
                reply=text,
                stored_at=self.iface.clock(),
            )
        )
        s.add(
            self.iface._audit_row(
                self.env.msgid, self.env.infno, self.env.fixmedins_code, self.received, self.request_obj, reply
            )
        )
        s.flush()
        self.outcome = Outcome(text=text, reply=wire)
        return self.outcome


@dataclass(frozen=True)
class Transaction:
    infno: str
    name_zh: str
    name_en: str
    model: type[BaseModel]
    output: type[BaseModel]
    handler: Callable[[Interface, Ctx, Any], Outcome]
    rest_path: str
    needs_sign: bool = True


def _yuan(fen: int | None) -> Decimal:
    return fen_to_yuan(int(fen or 0))


def _fen(v: Decimal, fld: str) -> int:
    try:
        return yuan_to_fen(v)
    except MoneyError as exc:
        raise ClaimRejected(str(exc), f"金额无效: {v}", field=fld) from exc


def _half_up(n: int, d: int) -> int:
    """n / d rounded half up, for n ≥ 0 (quantities and prices here are checked non-negative first)."""
    return (n + d // 2) // d


# 目录标志 the medical list may carry for 2204 / 2301 results; "" (the national "absent") when it does not
ITEM_FLAGS = ("bas_medn_flag", "hi_nego_drug_flag", "chld_medc_flag", "list_sp_item_flag", "drt_reim_flag")


def _item_flag(item: Any, name: str) -> str:
    v = getattr(item, name, None)
    if v is None or v == "":
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def _rej(en: str, zh: str, fld: str) -> ClaimRejected:
    return ClaimRejected(en, zh, field=fld)


def _diagnoses(main: str, items: list[S.Diagnosis]) -> tuple[str, tuple[str, ...]]:
    """Principal and other diagnoses from a diseinfo list (main flag first, then order number)."""
    codes = [d.diag_code for d in sorted(items, key=lambda d: (d.maindiag_flag != "1", d.diag_srt_no)) if d.diag_code]
    if main and main not in codes:
        codes.insert(0, main)
    elif main:
        codes.remove(main)
        codes.insert(0, main)
    seen: list[str] = []
    for c in codes:
        if c not in seen:
            seen.append(c)
    return (seen[0] if seen else ""), tuple(seen[1:])


_SIGN_IN = select(SignIn.fixmedins_code, SignIn.expires_at).where(SignIn.sign_no == bindparam("sign_no"))


class Interface:
    """The national-interface service on one database.

    ``clock`` gives the current time (tests pass a fixed one);
    ``ecode_verifier(token, now, fixmedins_code) -> psn_no`` resolves an
    e-insurance-code token (就诊凭证类型 01) presented at ``fixmedins_code``
    (the place feeds the e-code's risk rules); without one, type 01 is
    refused.  It writes its own usage record, so it is called outside the
    handler's write transaction (see :meth:`_ecode`).
    """

    def __init__(
        self,
        engine: Engine,
        book: PolicyBook,
        catalog: Catalog,
        *,
        config: InterfaceConfig | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        ecode_verifier: Callable[[str, dt.datetime, str], str | None] | None = None,
        ecode_payer: Callable[[str], str | None] | None = None,
        valid_diagnosis: Callable[[str], bool] | None = None,
        security: SecurityPolicy | None = None,
    ):
        self.engine = engine
        self.security = security or SecurityPolicy()
        self.book = book
        self.catalog = catalog
        self.cfg = config or default_config()
        self.clock = clock or (lambda: dt.datetime.now(db.SHANGHAI))
        self.ecode_verifier = ecode_verifier
        self.ecode_payer = (
            ecode_payer  # e-code token -> holder psn_no when family mutual aid (家庭账户共济) is authorised
        )
        # diagnoses: the configured coding systems (医保版 ICD-10 2.0, then WHO ICD-10), one shared validator
        self.dx_systems = self.cfg.interface.diagnosis_systems
        if valid_diagnosis is None:
            systems = self.dx_systems

            def valid_diagnosis(code: str) -> bool:
                return is_valid_diagnosis(code, systems)

        self.valid_diagnosis = valid_diagnosis
        self.svc = SettlementService(engine, book, catalog)
        self.visits = VisitSettlementService(self.svc)
        # SQLite has one writer at a time: queue writers (this process's threads, then every worker process)
        # on a lock instead of letting them spin in SQLite's busy handler (which sleeps up to 100 ms per
        # try and makes long tails).  PostgreSQL takes row locks; no lock here.
        self._writer = db.writer_queue(engine)

    # --- plumbing ------------------------------------------------------------------

    @contextmanager
    def tx(self) -> Iterator[Session]:
        with self._writer, db.session_scope(self.engine, immediate=True) as s:
            yield s

    @contextmanager
    def read(self) -> Iterator[Session]:
        with db.session_scope(self.engine) as s:
            yield s

    def _reply(self, infcode: int, err_msg: str, output: Any, received: dt.datetime) -> dict[str, Any]:
        now = self.clock()
        return {
            "infcode": infcode,
            "inf_refmsgid": f"Y{now.astimezone(db.SHANGHAI):%Y%m%d%H%M%S}{uuid.uuid4().hex[:12].upper()}",
            "refmsg_time": fmt_msg_time(received),
            "respond_time": fmt_msg_time(now),
            "err_msg": err_msg,
            "warn_msg": "",
            "output": output if output is not None else {},
        }

    def _audit_row(
        self,
        msgid: str | None,
        infno: str | None,
        fixmedins_code: str | None,
        received: dt.datetime,
        request: Any,
        reply: Any,
    ) -> MessageLog:
        try:
            req_text = dumps_exact(mask(request, self.cfg)) if not isinstance(request, str) else request
        except (TypeError, ValueError):
            req_text = repr(request)[:20000]
        return MessageLog(
            msgid=(msgid or None) if isinstance(msgid, str) else None,
            infno=infno if isinstance(infno, str) else None,
            fixmedins_code=fixmedins_code if isinstance(fixmedins_code, str) else None,
            received_at=received,
            request=req_text,
            response=dumps_exact(mask(reply, self.cfg)),
        )

    def _audit(self, msgid, infno, fixmedins_code, received, request, reply) -> None:
        try:
            with self._writer, db.session_scope(self.engine) as s:
                s.add(self._audit_row(msgid, infno, fixmedins_code, received, request, reply))
        except Exception:  # noqa: BLE001 - the reply still goes out; the failure is logged
            log.exception("could not write the audit record for msgid %r", msgid)

    def _seal(self, reply: dict[str, Any], keys: InstitutionKeys | None) -> dict[str, Any]:
        return seal_reply(reply, keys, dumps_exact) if keys is not None else reply

    def _fail(
        self,
        received: dt.datetime,
        request: Any,
        zh: str,
        en: str,
        fld: str | None,
        status: int = 400,
        keys: InstitutionKeys | None = None,
    ) -> Outcome:
        if fld is not None and len(fld) > 120:  # a path into deep nesting: keep the reply bounded
            fld = fld[:60] + "…" + fld[-40:]
        zh, en = zh[:500], en[:500]
        reply = self._reply(-1, err_text(zh, en, fld), {}, received)
        env = request if isinstance(request, dict) else {}
        self._audit(env.get("msgid"), env.get("infno"), env.get("fixmedins_code"), received, request, reply)
        log.info("refused msgid=%r infno=%r: %s", env.get("msgid"), env.get("infno"), en)
        wire = self._seal(reply, keys)
        return Outcome(text=dumps_exact(wire), reply=wire, field=fld, status=status)

    def _replay(self, stored: StoredReply, received: dt.datetime, request: Any) -> Outcome:
        text = stored.reply
        reply = loads_exact(text)
        self._audit(stored.msgid, stored.infno, stored.fixmedins_code, received, request, reply)
        return Outcome(text=text, reply=reply, replayed=True)

    def _stored(self, msgid: str) -> StoredReply | None:
        with self.read() as s:
            return s.get(StoredReply, msgid)

    # --- entry points --------------------------------------------------------------------

    def refuse(self, request: Any, zh: str, en: str, fld: str | None, status: int = 400) -> Outcome:
        """A national-style refusal of something that never reached a transaction (audited, bounded)."""
        if isinstance(request, (bytes, str)):
            request = self._preview(request)
        return self._fail(self.clock(), request, zh, en, fld, status)

    @staticmethod
    def _preview(body: bytes | str, limit: int = 2000) -> str:
        """The start of a refused body, for the audit log (valid text whatever the body held)."""
        text = body[: limit * 4].decode("utf-8", "replace") if isinstance(body, bytes) else body
        return text[:limit].encode("utf-8", "replace").decode("utf-8")

    def too_large(self, size: int) -> Outcome:
        limit = self.cfg.interface.max_body_bytes
        return self._fail(
            self.clock(),
            f"<{size} bytes, not read>",
            f"报文超过 {limit} 字节",
            f"the body is larger than {limit} bytes",
            "body",
            413,
        )

    def handle_raw(self, body: bytes | str, *, infno: str | None = None) -> Outcome:
        """Answer a raw HTTP body (malformed JSON gets infcode -1).

        ``infno``: the transaction named by the URL (``.../callService/2207``); it must agree with the
        envelope's, and stands for it when the envelope has none.
        """
        received = self.clock()
        limit = self.cfg.interface.max_body_bytes
        if len(body) > limit:
            return self._fail(
                received,
                self._preview(body),
                f"报文超过 {limit} 字节",
                f"the body is larger than {limit} bytes",
                "body",
                413,
            )
        try:
            obj = loads_exact(body)
        except MalformedMessage as exc:
            return self._fail(received, self._preview(body), "报文不是合法的JSON对象", str(exc), "body")
        if infno is not None and isinstance(obj, dict):
            sent = obj.get("infno")
            if sent in (None, ""):
                obj["infno"] = infno
            elif str(sent) != infno:
                return self._fail(
                    received,
                    self._safe(obj),
                    f"报文交易编号 {str(sent)[:10]} 与地址中的 {infno} 不符",
                    f"the envelope's infno {str(sent)[:10]!r} differs from the URL's {infno!r}",
                    "infno",
                )
        return self.handle(obj, received=received)

    def _safe(self, obj: Any) -> Any:
        """``obj`` if it holds only well-formed text within the
        depth limit, else a preview of it (for the audit log).
        """
        try:
            inspect_values(obj, self.cfg.interface.max_json_depth)
            return obj
        except BadValue:
            return self._preview(ascii(obj)[:2000])

    def handle(self, obj: Any, *, received: dt.datetime | None = None, plain: bool = False) -> Outcome:
        """Answer a parsed envelope (a dict with Decimals for numbers).

        ``plain=True`` (the REST side) skips the per-institution SM4/SM3/SM2 layer.
        """
        received = received or self.clock()
        try:  # control characters (\u0000), lone surrogates and deep nesting: refused before anything reads them
            inspect_values(obj, self.cfg.interface.max_json_depth)
        except BadValue as b:
            return self._fail(received, self._preview(ascii(obj)[:2000]), b.zh, b.en, b.field)
        if not isinstance(obj, dict):
            return self._fail(
                received,
                obj if isinstance(obj, (list, str)) else repr(obj),
                "报文须为JSON对象",
                "the envelope must be a JSON object",
                "body",
            )
        keys = None if plain else self.security.for_institution(obj.get("fixmedins_code"))
        if keys is not None:
            try:
                obj = open_request(obj, keys, loads_exact)
            except Refusal as r:
                return self._fail(received, obj, r.zh, r.en, r.field, keys=keys)
        elif isinstance(obj.get("input"), str) and obj["input"].lstrip().startswith("{"):
            # clients that build the envelope with input = JSON.toJSONString(...) send the input node as a
            # JSON text; without SM4 keys for the institution it is plain JSON (ciphertext is hex, never "{")
            try:
                inner = loads_exact(obj["input"])
            except MalformedMessage as exc:  # the audit log keeps its size, not its text (it may hold a credential)
                logged = {**obj, "input": f"<not JSON: {len(obj['input'])} characters>"}
                return self._fail(
                    received, logged, "input 不是合法的JSON对象", f"input is not a JSON object: {exc}", "input"
                )
            try:
                inspect_values(inner, self.cfg.interface.max_json_depth)
            except BadValue as b:
                return self._fail(received, self._preview(ascii(obj)[:2000]), b.zh, b.en, b.field)
            obj = {**obj, "input": inner}
        try:
            env = S.Envelope.model_validate(obj)
        except ValidationError as exc:
            zh, en, fld = self._describe(exc, "")
            return self._fail(received, obj, zh, en, fld, keys=keys)
        spec = TRANSACTIONS.get(env.infno) or TRANSACTIONS.get(self.cfg.national_infno(env.infno))
        if spec is None:
            return self._fail(
                received,
                obj,
                f"不支持的交易编号 {env.infno}",
                f"unknown transaction infno {env.infno!r}",
                "infno",
                keys=keys,
            )
        try:
            return self._dispatch(spec, env, obj, received, keys)
        except _Refused as r:
            return self._fail(received, obj, r.zh, r.en, r.field, r.status, keys=keys)

    def _dispatch(
        self, spec: Transaction, env: S.Envelope, obj: dict, received: dt.datetime, keys: InstitutionKeys | None = None
    ) -> Outcome:
        if not self.cfg.interface.infver_ok(env.infver):
            raise _Refused(
                f"接口版本号 {env.infver} 格式无效 (应如 V1.0 或 1.0.0)",
                f"infver {env.infver!r} is not a well-formed version (like V1.0 or 1.0.0)",
                "infver",
            )
        window = dt.timedelta(minutes=self.cfg.interface.inf_time_window_minutes)
        if abs(env.inf_time - received) > window:
            raise _Refused(
                f"交易时间 inf_time 与平台时间相差超过 {window.total_seconds() / 60:.0f} 分钟 (平台时间 "
                f"{fmt_time(received)})",
                f"inf_time is more than {window.total_seconds() / 60:.0f} minutes from the platform's clock "
                f"({fmt_time(received)})",
                "inf_time",
            )
        if spec.needs_sign:
            self._check_sign(env, received)
        payload = self._input_nodes(spec.infno, env)
        try:
            data = spec.model.model_validate(payload)
        except ValidationError as exc:
            zh, en, fld = self._describe(exc, "input")
            raise _Refused(zh, en, fld) from None
        dig = digest(env.infno, env.fixmedins_code, env.input)
        # A repeated msgid is found inside the handler's transaction (Ctx.commit, or the settlement
        # service's own msgid check) and answered from the store; so is one whose handler now refuses.
        ctx = Ctx(env=env, digest=dig, received=received, request_obj=obj, iface=self, keys=keys)
        try:
            return spec.handler(self, ctx, data)
        except _Answered as a:
            return self._answer_stored(a.stored, env, dig, received, obj)
        except _Refused:
            raise
        except YibaoError as exc:
            stored = self._stored(env.msgid)  # a repeat (or a concurrent twin that won): answer from the store
            if stored is not None:
                return self._answer_stored(stored, env, dig, received, obj)
            raise _Refused(exc.message_zh, exc.message_en, exc.field) from None
        except (IntegrityError, OperationalError) as exc:
            stored = self._stored(env.msgid)
            if stored is not None:
                return self._answer_stored(stored, env, dig, received, obj)
            log.exception("database error on msgid %r", env.msgid)
            raise _Refused(
                "数据库繁忙, 请稍后重试", f"database error, try again: {type(exc).__name__}", None, 503
            ) from None
        except Exception as exc:  # noqa: BLE001 - answer every message; log the cause
            log.exception("internal error on msgid %r", env.msgid)
            raise _Refused("平台内部错误", f"internal error: {type(exc).__name__}", None, 500) from None

    def _answer_stored(
        self, stored: StoredReply, env: S.Envelope, dig: str, received: dt.datetime, obj: Any
    ) -> Outcome:
        if stored.request_digest != dig or stored.fixmedins_code != env.fixmedins_code:
            raise _Refused(
                f"报文ID {env.msgid} 已用于另一笔不同的交易 ({stored.infno})",
                f"msgid {env.msgid!r} was already used for a different message (infno {stored.infno})",
                "msgid",
            )
        return self._replay(stored, received, obj)

    def _input_nodes(self, infno: str, env: S.Envelope) -> dict[str, Any]:
        """``input`` with its nodes under their national names
        (``data`` → ``mdtrtinfo`` …, interface.yaml: input_nodes).
        """
        nodes = self.cfg.nodes_for(infno, env.fixmedins_code)
        if not nodes:
            return env.input
        out = dict(env.input)
        for main, aliases in nodes.items():
            present = [a for a in aliases if a in out]
            if not present:
                continue
            if main in out or len(present) > 1:
                both = [main, *present] if main in out else present
                raise _Refused(
                    f"入参节点 {' 与 '.join(both)} 重复 (同一节点的不同名称)",
                    f"input nodes {' and '.join(both)} are one node under two names: send one",
                    f"input.{present[0]}",
                )
            node = out.pop(present[0])
            out[main] = node
            # a client that wraps everything in one node may carry the other nodes inside it (diseinfo in data)
            if isinstance(node, dict):
                model_nodes = set(TRANSACTIONS[infno].model.model_fields) - {main}
                for k in model_nodes & set(node):
                    if k not in out:
                        node = dict(node)
                        out[k] = node.pop(k)
                        out[main] = node
        return out

    @staticmethod
    def _describe(exc: ValidationError, prefix: str) -> tuple[str, str, str]:
        e = exc.errors(include_url=False)[0]
        parts = [str(x) for x in e["loc"]]
        path = ".".join(([prefix] if prefix else []) + parts)
        name = next((p for p in reversed(parts) if not p.isdigit()), path) if parts else (prefix or "input")
        msg = str(e.get("msg", ""))
        if e["type"] == "value_error" and " / " in msg:
            zh, en = msg.removeprefix("Value error, ").split(" / ", 1)
        else:
            zh = _ZH_ERR.get(e["type"], "字段值无效")
            en = msg
        return f"{zh}: {name} ({path})", f"{en}: {path}", path or name

    def _check_sign(self, env: S.Envelope, now: dt.datetime) -> None:
        if not env.sign_no:
            raise _Refused("缺少签到编号, 请先签到 (9001)", "sign_no is missing; sign in first (9001)", "sign_no", 401)
        # read each time (one primary-key lookup, no ORM): a sign-out (9002) in any worker process stops the
        # sign_no at once, which a per-process cache could not see
        with self.engine.connect() as c:
            row = c.execute(_SIGN_IN, {"sign_no": env.sign_no}).first()
        if row is None:
            raise _Refused("签到编号无效, 请重新签到 (9001)", "unknown sign_no; sign in again (9001)", "sign_no", 401)
        if row.fixmedins_code != env.fixmedins_code:
            raise _Refused("签到编号不属于本机构", "sign_no belongs to another institution", "sign_no", 401)
        if row.expires_at <= now:
            raise _Refused("签到已过期, 请重新签到 (9001)", "sign_no has expired; sign in again (9001)", "sign_no", 401)

    # --- helpers shared by handlers ------------------------------------------------

    def _person(self, s: Session, psn_no: str) -> registry.Person:
        p = s.get(registry.Person, psn_no)
        if p is None:
            raise _rej(f"unknown person {psn_no!r}", f"参保人不存在: {psn_no}", "psn_no")
        return p

    def _ecode(self, cert_type: str, cert_no: str, now: dt.datetime, fixmedins_code: str) -> str | None:
        """Resolve an e-code (type 01) to a psn_no, or None; call before opening a write transaction."""
        if cert_type != "01" or not cert_no:
            return None
        if self.ecode_verifier is None:
            raise _rej(
                "e-insurance-code tokens (mdtrt_cert_type 01) are not configured on this platform",
                "本平台未配置医保电子凭证核验 (就诊凭证类型01)",
                "mdtrt_cert_type",
            )
        with self._writer:  # it writes the usage record: queue it with this process's other writers (SQLite)
            return self.ecode_verifier(cert_no, now, fixmedins_code)

    def _ecode_payer(self, cert_type: str, cert_no: str) -> str:
        """A relative's e-code shown from a family account with mutual aid: the holder's account pays (家庭账户共济)."""
        if cert_type != "01" or not cert_no or self.ecode_payer is None:
            return ""
        return self.ecode_payer(cert_no) or ""

    def _check_cert(
        self,
        person: registry.Person,
        cert_type: str,
        cert_no: str,
        now: dt.datetime,
        fixmedins_code: str = "",
        ecode_psn: str | None = None,
    ) -> None:
        """The credential shown (就诊凭证) identifies ``person``; an empty one identifies nobody and is refused."""
        if not cert_no:
            raise _rej(
                "mdtrt_cert_no is empty: the person's credential (ID number, card or e-code) must be shown",
                "就诊凭证编号为空: 须出示身份证件、社保卡或医保电子凭证",
                "mdtrt_cert_no",
            )
        if cert_type == "01":
            if ecode_psn is None:
                ecode_psn = self._ecode(cert_type, cert_no, now, fixmedins_code)
            if ecode_psn != person.psn_no:
                raise _rej(
                    "the e-insurance-code token does not identify this person",
                    "医保电子凭证与参保人不符或已失效",
                    "mdtrt_cert_no",
                )
        elif cert_no != (person.certno or ""):
            raise _rej(
                "mdtrt_cert_no does not match the person's ID number",
                "就诊凭证编号与参保人证件号码不符",
                "mdtrt_cert_no",
            )

    def _dx(self, code: str, fld: str) -> str:
        """One diagnosis code in the configured systems (医保版
        ICD-10 2.0 / WHO ICD-10), as the dictionary writes it.
        """
        if not self.valid_diagnosis(code):
            names = " / ".join(self.dx_systems)
            raise _rej(
                f"unknown diagnosis code {code!r} (not in {names})", f"诊断代码 {code!r} 无效 (不在 {names} 中)", fld
            )
        return canonical_diagnosis(code, self.dx_systems)

    def _dx_all(self, main: str, main_field: str, items: list[S.Diagnosis]) -> tuple[str, tuple[str, ...]]:
        """Principal and other diagnoses of a message, each checked and written canonically."""
        main = self._dx(main, main_field) if main else ""
        checked = [
            d.model_copy(update={"diag_code": self._dx(d.diag_code, f"diseinfo.{i}.diag_code")})
            for i, d in enumerate(items)
        ]
        return _diagnoses(main, checked)

    def _area(self, env: S.Envelope, person: registry.Person) -> str:
        area = env.mdtrtarea_admvs
        return "" if not area or area == (person.insuplc_admdvs or "") else area

    def _balance(self, s: Session, psn_no: str, fallback: int) -> int:
        b = s.scalar(select(records.Account.balc).where(records.Account.psn_no == psn_no))
        return int(fallback if b is None else b)

    def _baseinfo(self, p: registry.Person, on: dt.date) -> dict[str, Any]:
        return {
            "psn_no": p.psn_no,
            "psn_cert_type": "01",
            "certno": p.certno or "",
            "psn_name": p.psn_name or "",
            "gend": p.gend or "",
            "naty": "",
            "brdy": p.brdy.isoformat() if p.brdy else "",
            "age": Decimal(age_on(p.brdy, on)) if p.brdy else Decimal(0),
        }

    def setlinfo(
        self,
        s: Session,
        row: records.Settlement,
        *,
        sign: int = 1,
        setl_id: str | None = None,
        medins_setl_id: str = "",
        cert_type: str = "",
    ) -> tuple[dict, list[dict]]:
        """``setlinfo`` and ``setldetail`` of a stored settlement (``sign=-1``: the cancellation)."""
        p = db.must_get(s, registry.Person, row.psn_no)
        info = self._baseinfo(p, row.setl_time.astimezone(db.SHANGHAI).date())
        info.pop("psn_cert_type")
        amounts = {
            k: sign * int(getattr(row, k))
            for k in (
                "medfee_sumamt",
                "fulamt_ownpay_amt",
                "overlmt_selfpay",
                "preselfpay_amt",
                "inscp_scp_amt",
                "act_pay_dedc",
                "hifp_pay",
                "cvlserv_pay",
                "hifes_pay",
                "hifmi_pay",
                "hifob_pay",
                "maf_pay",
                "oth_pay",
                "fund_pay_sumamt",
                "psn_part_amt",
                "acct_pay",
                "psn_cash_pay",
                "hosp_part_amt",
                "acct_mulaid_pay",
            )
        }
        out = {
            "mdtrt_id": row.mdtrt_id,
            "setl_id": setl_id if setl_id is not None else row.setl_id,
            "psn_no": row.psn_no,
            "psn_cert_type": "01",
            **info,
            "insutype": row.insutype or "",
            "psn_type": self.cfg.psn_type_codes.get(p.psn_type or "", p.psn_type or ""),
            "cvlserv_flag": "1" if p.civil_servant else "0",
            "setl_time": fmt_time(row.setl_time),
            "mdtrt_cert_type": cert_type,
            "med_type": row.med_type or "",
            **{k: _yuan(v) for k, v in amounts.items()},
            "pool_prop_selfpay": (Decimal(int(row.pool_prop_selfpay_bp or 0)) / BP_SCALE).quantize(Decimal("0.0001")),
            "balc": _yuan(row.balc if row.balc is not None else self._balance(s, row.psn_no, int(p.acct_balc or 0))),
            "medins_setl_id": medins_setl_id,
            "clr_optins": p.insuplc_admdvs or "",
            "clr_way": self.cfg.clr_way,
            "clr_type": self.cfg.clr_types.get(row.med_type or "", ""),
        }
        trace = row.rule_trace if isinstance(row.rule_trace, dict) else {}
        steps = "; ".join(str(x) for x in trace.get("steps", []))
        detail = []
        room = None
        for f in FUND_FIELDS:
            amt = int(getattr(row, f))
            if amt:
                code, name = self.cfg.fund_type(f, row.insutype or "")
                room = self._headroom(s, row, p) if room is None else room
                detail.append(
                    {
                        "fund_pay_type": code,
                        "inscp_scp_amt": _yuan(sign * int(row.inscp_scp_amt)),
                        "crt_payb_lmt_amt": _yuan(room[f]) if room.get(f) is not None else None,
                        "fund_payamt": _yuan(sign * amt),
                        "fund_pay_type_name": name,
                        "setl_proc_info": steps if f == "hifp_pay" else "",
                    }
                )
        return out, detail

    def _headroom(self, s: Session, row: records.Settlement, p: registry.Person) -> dict[str, int | None]:
        """本次可支付限额金额 (``crt_payb_lmt_amt``) per fund field:
        what the fund's annual cap left for this settlement.

        The cap less what the person-year had used before this settlement (the accumulators as they stand,
        less this settlement's own contribution while it is live); ``None`` for a fund without a cap.
        """
        out: dict[str, int | None] = {f: None for f in FUND_FIELDS}
        try:
            snap = self.book.policy(p.insuplc_admdvs or "").snapshot(row.setl_time.astimezone(db.SHANGHAI).date())
            scheme = snap.scheme_for(row.insutype or "")
            cat = scheme.categories[row.benefit_category or ""]
        except (YibaoError, KeyError, TypeError, AttributeError):
            return out
        used = ledger.read_accumulators(s, row.psn_no, int(row.policy_year))
        own: dict = {}
        if row.setl_id and not row.refd_setl_flag:
            own = ledger.decode_accum_delta(row.accum_delta).get((row.psn_no, int(row.policy_year)), {})

        def left(cap: int, key: tuple[str, str]) -> int | None:
            if cap >= NO_CAP:
                return None
            before = used.get(key, 0) - own.get(key, 0)
            return max(0, cap - min(cap, max(0, before)))

        if cat.cap_pool is not None:
            out["hifp_pay"] = left(scheme.caps[cat.cap_pool], (f"fund:{cat.cap_pool}", ""))
        facts = PersonFacts(
            p.psn_no,
            p.insutype or "",
            p.psn_type or "",
            p.gend or "",
            p.brdy or dt.date(1900, 1, 1),
            p.insuplc_admdvs or "",
            p.assistance or "",
            bool(p.civil_servant),
        )
        for layer in scheme.layers:
            if layer_applies(layer, row.benefit_category or "", facts) and out.get(layer.field) is None:
                out[layer.field] = left(layer.cap, (f"layer_pay:{layer.name}", ""))
        status = snap.assistance.statuses.get(p.assistance) if p.assistance else None
        if status is not None:
            out["maf_pay"] = left(status.cap, ("maf_pay", ""))
        return out

    # --- handlers -------------------------------------------------------------------

    def h_sign_in(self, ctx: Ctx, d: S.In9001) -> Outcome:
        from yibao.api.security import SecurityError, authenticate_sign_in  # the institution proves its credential

        try:
            authenticate_sign_in(self, ctx)
        except SecurityError as exc:  # an authentication failure: HTTP 401 on the REST side (the envelope stays 200)
            raise _Refused(exc.message_zh, exc.message_en, exc.field, 401) from None
        env, now = ctx.env, ctx.now
        with self.tx() as s:
            if s.get(registry.Institution, env.fixmedins_code) is None:
                raise _rej(
                    f"unknown institution {env.fixmedins_code!r}",
                    f"定点医药机构不存在: {env.fixmedins_code}",
                    "fixmedins_code",
                )
            sign_no = f"{now.astimezone(db.SHANGHAI):%Y%m%d%H%M%S}{secrets.token_hex(8).upper()}"
            s.add(
                SignIn(
                    sign_no=sign_no,
                    fixmedins_code=env.fixmedins_code,
                    opter_no=d.signIn.opter_no,
                    mac=d.signIn.mac,
                    ip=d.signIn.ip,
                    sign_time=now,
                    expires_at=now + dt.timedelta(minutes=self.cfg.interface.sign_no_ttl_minutes),
                )
            )
            return ctx.commit(s, {"signinoutb": {"sign_time": fmt_time(now), "sign_no": sign_no}})

    def h_person(self, ctx: Ctx, d: S.In1101) -> Outcome:
        q, now = d.data, ctx.now
        with self.read() as s:
            if q.mdtrt_cert_type == "01":
                psn_no = self._ecode("01", q.mdtrt_cert_no, now, ctx.env.fixmedins_code)
                p = s.get(registry.Person, psn_no) if psn_no else None
            else:
                p = s.scalars(select(registry.Person).where(registry.Person.certno == q.mdtrt_cert_no).limit(1)).first()
            if p is None:
                raise _rej("no insured person with this mdtrt_cert_no", "未查询到参保人信息", "mdtrt_cert_no")
            insu = {
                "balc": _yuan(self._balance(s, p.psn_no, int(p.acct_balc or 0)))
                if p.insutype == contract.INSUTYPE_EMPLOYEE
                else Decimal("0.00"),
                "insutype": p.insutype or "",
                "psn_type": self.cfg.psn_type_codes.get(p.psn_type or "", p.psn_type or ""),
                "psn_insu_stas": "1",
                # 个人参保日期 where the register holds it ("" — the national empty — where it does not);
                # everyone in the register is insured, so there is no pause date (null)
                "psn_insu_date": p.insured_since.isoformat() if p.insured_since else "",
                "paus_insu_date": None,
                "cvlserv_flag": "1" if p.civil_servant else "0",
                "insuplc_admdvs": p.insuplc_admdvs or "",
                "emp_name": "",
            }
            insu.update(
                insured_state(s, p.psn_no, p.insutype or "", now.astimezone(db.SHANGHAI).date()) or {}
            )  # 参保期间
            idet = []
            if p.assistance:  # the register holds the status, not its grade or dates (null)
                idet.append(
                    {
                        "psn_idet_type": self.cfg.psn_idet_types.get(p.assistance, p.assistance),
                        "psn_type_lv": "",
                        "memo": p.assistance,
                        "begntime": None,
                        "endtime": None,
                    }
                )
            out = {
                "baseinfo": self._baseinfo(p, now.astimezone(db.SHANGHAI).date()),
                "insuinfo": [insu],
                "idetinfo": idet,
            }
        with self.tx() as s:
            return ctx.commit(s, out)

    def _open(
        self,
        s: Session,
        ctx: Ctx,
        *,
        kind: str,
        psn_no: str,
        insutype: str,
        begntime: dt.datetime,
        med_type: str,
        ipt_otp_no: str,
        cert_type: str,
        cert_no: str,
        dise: str = "",
        other: tuple[str, ...] = (),
        dept: str = "",
        dr: str = "",
        ecode_psn: str | None = None,
    ) -> V.VisitState:
        env = ctx.env
        p = self._person(s, psn_no)
        self._check_cert(p, cert_type, cert_no, ctx.now, env.fixmedins_code, ecode_psn)
        area = self._area(env, p)
        return V.admit_or_register(
            s,
            kind=kind,
            psn_no=psn_no,
            fixmedins_code=env.fixmedins_code,
            insutype=insutype,
            begntime=begntime,
            med_type=med_type,
            ipt_otp_no=ipt_otp_no,
            msgid=env.msgid,
            now=ctx.now,
            book=self.book,
            dise_codg=dise,
            other_dise_codg=other,
            dept_code=dept,
            dr_code=dr,
            mdtrtarea_admvs=area,
            valid_diagnosis=self.valid_diagnosis,
        )

    def h_register(self, ctx: Ctx, d: S.In2201) -> Outcome:
        r = d.data
        ecode_psn = self._ecode(r.mdtrt_cert_type, r.mdtrt_cert_no, ctx.now, ctx.env.fixmedins_code)
        with self.tx() as s:
            v = self._open(
                s,
                ctx,
                kind=V.OUTPATIENT,
                psn_no=r.psn_no,
                insutype=r.insutype,
                begntime=r.begntime,
                med_type=contract.MED_TYPE_OUTPATIENT,
                ipt_otp_no=r.ipt_otp_no,
                cert_type=r.mdtrt_cert_type,
                cert_no=r.mdtrt_cert_no,
                dept=r.dept_code,
                dr=r.atddr_no,
                ecode_psn=ecode_psn,
            )
            return ctx.commit(
                s, {"data": {"mdtrt_id": v.mdtrt_id, "psn_no": v.psn_no, "ipt_otp_no": v.ipt_otp_no or ""}}
            )

    def h_admit(self, ctx: Ctx, d: S.In2401) -> Outcome:
        m = d.mdtrtinfo
        main, other = self._dx_all(m.dscg_maindiag_code, "mdtrtinfo.dscg_maindiag_code", d.diseinfo)
        ecode_psn = self._ecode(m.mdtrt_cert_type, m.mdtrt_cert_no, ctx.now, ctx.env.fixmedins_code)
        with self.tx() as s:
            v = self._open(
                s,
                ctx,
                kind=V.INPATIENT,
                psn_no=m.psn_no,
                insutype=m.insutype,
                begntime=m.begntime,
                med_type=m.med_type,
                ipt_otp_no=m.ipt_no,
                cert_type=m.mdtrt_cert_type,
                cert_no=m.mdtrt_cert_no,
                dise=main,
                other=other,
                dept=m.adm_dept_codg,
                dr=m.atddr_no,
                ecode_psn=ecode_psn,
            )
            return ctx.commit(
                s, {"result": {"mdtrt_id": v.mdtrt_id, "psn_no": v.psn_no, "ipt_otp_no": v.ipt_otp_no or ""}}
            )

    def _cancel_visit(self, ctx: Ctx, d: S.In2202 | S.In2404, kind: str) -> Outcome:
        with self.tx() as s:
            v, _enc = V.load_visit(
                s, d.data.mdtrt_id, psn_no=d.data.psn_no, fixmedins_code=ctx.env.fixmedins_code, kind=kind
            )
            V.cancel_visit(s, v, now=ctx.now)
            return ctx.commit(s, {})

    def h_cancel_registration(self, ctx: Ctx, d: S.In2202) -> Outcome:
        return self._cancel_visit(ctx, d, V.OUTPATIENT)

    def h_cancel_admission(self, ctx: Ctx, d: S.In2404) -> Outcome:
        return self._cancel_visit(ctx, d, V.INPATIENT)

    def h_visit(self, ctx: Ctx, d: S.In2203) -> Outcome:
        m = d.mdtrtinfo
        main, other = self._dx_all(m.dise_codg, "mdtrtinfo.dise_codg", d.diseinfo)
        with self.tx() as s:
            v, enc = V.load_visit(
                s, m.mdtrt_id, psn_no=m.psn_no, fixmedins_code=ctx.env.fixmedins_code, kind=V.OUTPATIENT
            )
            V.record_diagnoses(
                s,
                v,
                enc,
                med_type=m.med_type,
                dise_codg=main,
                other_dise_codg=other,
                book=self.book,
                now=ctx.now,
                valid_diagnosis=self.valid_diagnosis,
            )
            longrx_iface.apply_visit_flag(enc, m.long_rx_flag)  # 长期处方标志
            return ctx.commit(s, {})

    def h_discharge(self, ctx: Ctx, d: S.In2402) -> Outcome:
        m = d.dscginfo
        main, other = self._dx_all(m.dise_codg, "dscginfo.dise_codg", d.diseinfo)
        with self.tx() as s:
            v, enc = V.load_visit(
                s, m.mdtrt_id, psn_no=m.psn_no, fixmedins_code=ctx.env.fixmedins_code, kind=V.INPATIENT
            )
            if (v.insutype or "") != m.insutype:
                raise _rej("insutype differs from the admission's", "险种类型与入院登记不符", "insutype")
            settled = s.scalar(
                select(func.count())
                .select_from(records.Settlement)
                .where(records.Settlement.mdtrt_id == m.mdtrt_id, records.Settlement.refd_setl_flag.is_(False))
            )
            had = (enc.dise_codg or "", {x for x in (enc.other_dise_codg or "").split(";") if x})
            if settled and main and (main, set(other)) != had:
                raise _rej(
                    "the stay is settled on other diagnoses; cancel the settlement (2305) before changing them",
                    "本次住院已按其他诊断结算, 变更诊断须先撤销结算 (2305)",
                    "dscginfo.dise_codg",
                )
            V.discharge(
                s,
                v,
                enc,
                endtime=m.endtime,
                dise_codg=main,
                other_dise_codg=other,
                dscg_way=m.dscg_way,
                dept_code=m.dscg_dept_codg,
                now=ctx.now,
                valid_diagnosis=self.valid_diagnosis,
            )
            return ctx.commit(s, {})

    def _fees(self, ctx: Ctx, d: S.InFees, kind: str) -> Outcome:
        rows = d.feedetail
        mdtrt_id, psn_no = rows[0].mdtrt_id, rows[0].psn_no
        for i, r in enumerate(rows):
            if r.mdtrt_id != mdtrt_id:
                raise _rej(
                    "all lines of one upload must belong to one mdtrt_id",
                    "同一批次明细须属于同一就诊ID",
                    f"feedetail.{i}.mdtrt_id",
                )
            if r.psn_no != psn_no:
                raise _rej(
                    "all lines of one upload must belong to one psn_no",
                    "同一批次明细须属于同一参保人",
                    f"feedetail.{i}.psn_no",
                )
        lines = []
        sent = {}
        for i, r in enumerate(rows):
            self._check_fee_line(ctx, i, r)
            cnt_e4, pric_e6 = int(r.cnt * 10**4), int(r.pric * 10**6)  # exact: at most 4 / 6 decimals (schemas)
            exact = (cnt_e4, pric_e6) if (cnt_e4 % 10 or pric_e6 % 10_000) else None
            ln = FeeLine(
                feedetl_sn=0,
                med_list_codg=r.med_list_codg,
                cnt_milli=max(1, _half_up(cnt_e4, 10)),
                pric=_half_up(pric_e6, 10_000),
                det_item_fee_sumamt=_fen(r.det_item_fee_sumamt, "det_item_fee_sumamt"),
                rxno=r.rxno,
                prd_days=int(r.prd_days),
                rx_circ_flag=r.rx_circ_flag == "1",
                exact=exact,
            )
            lines.append(
                V.UploadLine(
                    line=ln,
                    chrg_bchno=r.chrg_bchno,
                    fee_ocur_time=r.fee_ocur_time,
                    bilg_dr_code=r.bilg_dr_codg,
                    his_sn=r.feedetl_sn,
                )
            )
            sent[r.feedetl_sn] = r
        with self.tx() as s:
            v, enc = V.load_visit(s, mdtrt_id, psn_no=psn_no, fixmedins_code=ctx.env.fixmedins_code, kind=kind)
            done = V.upload_fees(
                s,
                v,
                lines,
                catalog=self.catalog,
                msgid=ctx.env.msgid,
                now=ctx.now,
                max_lines=self.cfg.interface.max_feedetail_lines,
            )
            longrx_iface.apply_line_flags(enc, (r.long_rx_flag for r in rows))  # 长期处方标志
            split = self._line_split_context(s, v, enc)
            result = [self._line_result(v, enc, u.line, split, sent[u.his_sn]) for u, _new in done]
            return ctx.commit(s, {"result": result})

    def _check_fee_line(self, ctx: Ctx, i: int, r: S.FeeDetailIn) -> None:
        """Absurd values refused before anything is stored (ceilings in interface.yaml)."""
        ic, at = self.cfg.interface, f"feedetail.{i}"
        if r.cnt <= 0:
            raise _rej(
                f"line {r.feedetl_sn}: quantity cnt must be positive",
                f"明细 {r.feedetl_sn}: 数量必须为正数",
                f"{at}.cnt",
            )
        if r.pric < 0:
            raise _rej(
                f"line {r.feedetl_sn}: unit price pric must not be negative",
                f"明细 {r.feedetl_sn}: 单价不能为负",
                f"{at}.pric",
            )
        for fld, v, top in (
            ("cnt", r.cnt, ic.max_cnt),
            ("pric", r.pric, ic.max_pric),
            ("det_item_fee_sumamt", r.det_item_fee_sumamt, ic.max_line_amount),
        ):
            if v > top:
                raise _rej(
                    f"line {r.feedetl_sn}: {fld} {v} is above the ceiling {top}",
                    f"明细 {r.feedetl_sn}: {fld} {v} 超过上限 {top}",
                    f"{at}.{fld}",
                )
        if not 0 <= r.prd_days <= ic.max_prd_days:
            raise _rej(
                f"line {r.feedetl_sn}: prd_days {r.prd_days} is not within 0..{ic.max_prd_days}",
                f"明细 {r.feedetl_sn}: 周期天数 {r.prd_days} 不在 0..{ic.max_prd_days} 之内",
                f"{at}.prd_days",
            )
        earliest = ctx.now - dt.timedelta(days=ic.max_fee_age_days)
        latest = ctx.now + dt.timedelta(minutes=ic.inf_time_window_minutes)
        if not earliest <= r.fee_ocur_time <= latest:
            raise _rej(
                f"line {r.feedetl_sn}: fee_ocur_time {fmt_time(r.fee_ocur_time)} is more than {ic.max_fee_age_days} "
                f"days ago "
                "or in the future",
                f"明细 {r.feedetl_sn}: 费用发生时间 {fmt_time(r.fee_ocur_time)} 早于 {ic.max_fee_age_days} "
                f"天前或晚于当前",
                f"{at}.fee_ocur_time",
            )

    def _line_split_context(self, s: Session, v: V.VisitState, enc: records.Encounter) -> tuple | None:
        """What every line's split shares (person, hospital level, benefit category), read once per upload.

        None when the split cannot be computed yet (then each line's memo says so).
        """
        p = s.get(registry.Person, v.psn_no)
        inst = s.get(registry.Institution, v.fixmedins_code)
        if p is None or inst is None or p.brdy is None:
            return None
        try:
            snap = self.book.policy(p.insuplc_admdvs or "").snapshot(enc.begntime.astimezone(db.SHANGHAI).date())
            diags = (enc.dise_codg or "", *[x for x in (enc.other_dise_codg or "").split(";") if x])
            cat = snap.scheme_for(p.insutype or "").categories[classify_category(snap, enc.med_type or "", diags)]
            facts = PersonFacts(
                p.psn_no,
                p.insutype or "",
                p.psn_type or "",
                p.gend or "",
                p.brdy,
                p.insuplc_admdvs or "",
                p.assistance or "",
                bool(p.civil_servant),
            )
            hosp_lv = int(inst.hosp_lv or 0)
        except (YibaoError, KeyError, TypeError, AttributeError):
            return None
        return facts, hosp_lv, diags, cat

    def _line_result(
        self, v: V.VisitState, enc: records.Encounter, ln: FeeLine, split: tuple | None, r: S.FeeDetailIn
    ) -> dict[str, Any]:
        item = self.catalog[ln.med_list_codg]
        out: dict[str, Any] = {
            "feedetl_sn": r.feedetl_sn,
            "det_item_fee_sumamt": _yuan(ln.det_item_fee_sumamt),
            "cnt": r.cnt.quantize(Decimal("0.0001")),
            "pric": r.pric.quantize(Decimal("0.000001")),
            "pric_uplmt_amt": _yuan(item.effective_cap),
            "selfpay_prop": (Decimal(item.selfpay_prop_bp) / BP_SCALE).quantize(Decimal("0.0001")),
            "chrgitm_lv": item.chrgitm_lv,
            "med_chrgitm_type": item.list_kind,
            **{f: _item_flag(item, f) for f in ITEM_FLAGS},
            "lmt_used_flag": "1"
            if (
                item.lmt_gend
                or item.lmt_indication
                or item.lmt_med_types
                or item.lmt_hosp_lv_min
                or item.lmt_age_min >= 0
                or item.lmt_age_max >= 0
            )
            else "0",
            "memo": "",
        }
        try:  # the line-level split of the settlement rules, as this person would be settled today
            if split is None:
                raise KeyError("no split context")
            facts, hosp_lv, diags, cat = split
            one = Claim(
                mdtrt_id=enc.mdtrt_id,
                person=facts,
                fixmedins_code=v.fixmedins_code,
                hosp_lv=hosp_lv,
                med_type=enc.med_type or "",
                begntime=enc.begntime,
                setl_time=max(enc.begntime, self.clock()),
                dise_codg=diags[0],
                other_dise_codg=tuple(diags[1:]),
                lines=(ln,),
            )
            _m, ful, over, pre, inscp, _x = split_lines(one, self.catalog, cat)
            out.update(
                fulamt_ownpay_amt=_yuan(ful),
                overlmt_amt=_yuan(over),
                preselfpay_amt=_yuan(pre),
                inscp_scp_amt=_yuan(inscp),
            )
        except (YibaoError, KeyError, TypeError, AttributeError):
            out["memo"] = "split not available before the visit's medical type and diagnosis are known"
        return out

    def h_withdraw_outpatient(self, ctx: Ctx, d: S.In2205) -> Outcome:
        q = d.data
        with self.tx() as s:
            v, _enc = V.load_visit(
                s, q.mdtrt_id, psn_no=q.psn_no, fixmedins_code=ctx.env.fixmedins_code, kind=V.OUTPATIENT
            )
            gone = V.withdraw_fees(s, v, now=ctx.now, chrg_bchno="" if q.chrg_bchno == "0000" else q.chrg_bchno)
            return ctx.commit(s, {"result": {"feedetl_sn": gone}})

    def h_withdraw_inpatient(self, ctx: Ctx, d: S.In2302) -> Outcome:
        rows = d.data
        mdtrt_id, psn_no = rows[0].mdtrt_id, rows[0].psn_no
        for i, r in enumerate(rows):
            if (r.mdtrt_id, r.psn_no) != (mdtrt_id, psn_no):
                raise _rej(
                    "all lines must belong to one mdtrt_id and psn_no",
                    "撤销明细须属于同一就诊和参保人",
                    f"data.{i}.mdtrt_id",
                )
        sns = None if any(r.feedetl_sn == "0000" for r in rows) else {r.feedetl_sn for r in rows}
        with self.tx() as s:
            v, _enc = V.load_visit(s, mdtrt_id, psn_no=psn_no, fixmedins_code=ctx.env.fixmedins_code, kind=V.INPATIENT)
            gone = V.withdraw_fees(s, v, now=ctx.now, feedetl_sns=sns)
            return ctx.commit(s, {"result": {"feedetl_sn": gone}})

    def h_fees_outpatient(self, ctx: Ctx, d: S.InFees) -> Outcome:
        return self._fees(ctx, d, V.OUTPATIENT)

    def h_fees_inpatient(self, ctx: Ctx, d: S.InFees) -> Outcome:
        return self._fees(ctx, d, V.INPATIENT)

    def _settle(self, ctx: Ctx, d: S.InSettle, *, kind: str, pre: bool, in_care: bool = False) -> Outcome:
        """2206/2207/2303/2304: map the envelope to the settlement-visit service (one transaction) and back."""
        q, env, now = d.data, ctx.env, ctx.now
        top = self.cfg.interface.max_medfee_sumamt
        if q.medfee_sumamt > top or q.medfee_sumamt < 0:
            raise _rej(
                f"medfee_sumamt {q.medfee_sumamt} is not within 0..{top}",
                f"医疗费总额 {q.medfee_sumamt} 不在 0..{top} 之内",
                "data.medfee_sumamt",
            )
        # an e-code writes its own usage record: resolve it before the settlement's transaction
        ecode_psn = self._ecode(q.mdtrt_cert_type, q.mdtrt_cert_no, now, env.fixmedins_code)
        payer_no = q.mulaid_payer_psn_no or self._ecode_payer(q.mdtrt_cert_type, q.mdtrt_cert_no)
        discharge_first = self.cfg.inpatient_settlement_for(env.fixmedins_code) == "discharge_first"
        req = VisitSettleRequest(
            mdtrt_id=q.mdtrt_id,
            psn_no=q.psn_no,
            insutype=q.insutype,
            fixmedins_code=env.fixmedins_code,
            kind=kind,
            medfee_sumamt=_fen(q.medfee_sumamt, "medfee_sumamt"),
            setl_time=now,
            med_type=q.med_type or "",
            chrg_bchno=q.chrg_bchno or "",
            mdtrtarea_admvs=env.mdtrtarea_admvs or "",
            mulaid_payer_psn_no=payer_no,
            use_account=q.acct_used_flag == "1",
            require_discharged=kind == V.INPATIENT and not pre and q.mid_setl_flag != "1" and discharge_first,
            claimed={k: _fen(getattr(q, k), k) for k in CLAIMED_AMOUNTS if getattr(q, k) is not None},
        )

        def identify(p: registry.Person) -> None:
            self._check_cert(p, q.mdtrt_cert_type, q.mdtrt_cert_no, now, env.fixmedins_code, ecode_psn)

        def check(s: Session, snap: VisitSnapshot) -> None:
            warn = _more.in_care_check(s, self, snap, kind=kind, setl_time=max(now, snap.encounter.begntime))
            base = ctx.iface._inner if isinstance(ctx.iface, _more._Warned) else ctx.iface  # a retried transaction
            ctx.iface = _more._Warned(base, warn) if warn else base

        def reply(s: Session, r: SettleResult, snap: VisitSnapshot | None) -> None:
            if pre:
                assert snap is not None
                info, detail = self._pre_info(s, r, snap.claim, self._pre_row(r, snap.claim), q.mdtrt_cert_type)
                ctx.commit(s, {"setlinfo": info, "setldetail": detail})
                return
            if snap is not None and d.agnterinfo is not None and d.agnterinfo.given():  # 长期处方代取药
                operator = f"{env.fixmedins_code}/{env.opter}"
                longrx_iface.record_agent_pickup(
                    s, r.setl_id or "", d.agnterinfo, operator=operator, now=now, book=self.book
                )
            row = db.must_get(s, records.Settlement, r.setl_id)
            info, detail = self.setlinfo(s, row, medins_setl_id=env.msgid, cert_type=q.mdtrt_cert_type)
            ctx.commit(s, {"setlinfo": info, "setldetail": detail}, maybe_repeat=r.replayed)

        with self._writer:
            r, snap = self.visits.settle(
                req,
                msgid=env.msgid,
                digest=ctx.digest,
                pre=pre,
                identify=identify,
                in_care=check if in_care else None,
                reply=reply,
            )
        if ctx.outcome is None:  # a pre-settlement that had to roll back its writes: store the reply on its own
            assert pre and snap is not None
            claim = snap.claim
            with self.tx() as s:
                info, detail = self._pre_info(s, r, claim, self._pre_row(r, claim), q.mdtrt_cert_type)
                return ctx.commit(s, {"setlinfo": info, "setldetail": detail})
        return ctx.outcome

    @staticmethod
    def _pre_row(r: SettleResult, c: Claim) -> records.Settlement:
        st = r.settlement
        return records.Settlement(
            setl_id="",
            mdtrt_id=r.mdtrt_id,
            psn_no=r.psn_no,
            fixmedins_code=c.fixmedins_code,
            setl_time=c.setl_time,
            policy_year=c.policy_year,
            insutype=c.person.insutype,
            med_type=c.med_type,
            benefit_category=st.category,
            **st.amounts(),
            pool_prop_selfpay_bp=st.pool_prop_selfpay_bp,
            balc=r.balc,
            refd_setl_flag=False,
            rule_trace={"steps": list(st.trace)},
        )

    def _pre_info(self, s: Session, r: SettleResult, c: Claim, row: records.Settlement, cert_type: str):
        info, detail = self.setlinfo(s, row, setl_id="", medins_setl_id="", cert_type=cert_type)
        return info, detail

    # the in-care check (事中审核) runs inside 2206, 2207 and 2304's transaction, over the rows they settle
    def h_pre_outpatient(self, ctx: Ctx, d: S.InSettle) -> Outcome:
        return self._settle(ctx, d, kind=V.OUTPATIENT, pre=True, in_care=True)

    def h_settle_outpatient(self, ctx: Ctx, d: S.InSettle) -> Outcome:
        return self._settle(ctx, d, kind=V.OUTPATIENT, pre=False, in_care=True)

    def h_pre_inpatient(self, ctx: Ctx, d: S.InSettle) -> Outcome:
        return self._settle(ctx, d, kind=V.INPATIENT, pre=True)

    def h_settle_inpatient(self, ctx: Ctx, d: S.InSettle) -> Outcome:
        return self._settle(ctx, d, kind=V.INPATIENT, pre=False, in_care=True)

    def _own_settlement(self, s: Session, q: S.CancelData, env: S.Envelope, kind: str | None) -> records.Settlement:
        row = s.get(records.Settlement, q.setl_id)
        if row is None or row.fixmedins_code != env.fixmedins_code:
            raise _rej(
                f"unknown settlement {q.setl_id!r} at this institution", f"本机构无此结算记录: {q.setl_id}", "setl_id"
            )
        if row.mdtrt_id != q.mdtrt_id:
            raise _rej(
                f"settlement {q.setl_id} is not of encounter {q.mdtrt_id}",
                f"结算 {q.setl_id} 不属于就诊 {q.mdtrt_id}",
                "mdtrt_id",
            )
        if row.psn_no != q.psn_no:
            raise _rej(
                f"settlement {q.setl_id} is not {q.psn_no}'s", f"结算 {q.setl_id} 不属于参保人 {q.psn_no}", "psn_no"
            )
        if kind is not None:
            vk = s.scalar(select(V.VisitState.kind).where(V.VisitState.mdtrt_id == row.mdtrt_id))
            if vk is not None and vk != kind:
                raise _rej(
                    f"settlement {q.setl_id} is {vk}; use the {vk} transaction",
                    f"结算 {q.setl_id} 为{'门诊' if vk == V.OUTPATIENT else '住院'}结算, 交易类型不符",
                    "setl_id",
                )
        return row

    def _cancel(self, ctx: Ctx, d: S.InCancel, kind: str) -> Outcome:
        q, env = d.data, ctx.env
        with self.read() as s:
            self._own_settlement(s, q, env, kind)

        def hook(s: Session, r: CancelResult) -> None:
            row = db.must_get(s, records.Settlement, r.setl_id)
            info, detail = self.setlinfo(s, row, sign=-1, medins_setl_id=env.msgid)
            info["balc"] = _yuan(r.balc) if r.balc is not None else info["balc"]
            info["refd_setl_flag"] = "1"
            info["pdn_cash_pay"] = info["psn_cash_pay"]  # 个人现金支出: the name 2208 / 2305 clients read
            release_fill_of(s, r.setl_id, env.msgid)  # a pharmacy's fill of a circulated prescription
            ctx.commit(s, {"setlinfo": info, "setldetail": detail}, maybe_repeat=r.replayed)

        with self._writer:
            self.svc.cancel(q.setl_id, msgid=env.msgid, at=ctx.now, hook=hook)
        assert ctx.outcome is not None
        return ctx.outcome

    def h_cancel_outpatient(self, ctx: Ctx, d: S.InCancel) -> Outcome:
        return self._cancel(ctx, d, V.OUTPATIENT)

    def h_cancel_inpatient(self, ctx: Ctx, d: S.InCancel) -> Outcome:
        return self._cancel(ctx, d, V.INPATIENT)

    def h_query(self, ctx: Ctx, d: S.InQuery) -> Outcome:
        with self.read() as s:
            row = self._own_settlement(s, d.data, ctx.env, None)
            info, detail = self.setlinfo(s, row, medins_setl_id=row.msgid or "")
            info["refd_setl_flag"] = "1" if row.refd_setl_flag else "0"
            info.update(self._query_extras(s, row, info))
        with self.tx() as s:
            return ctx.commit(s, {"setlinfo": info, "setldetail": detail})

    def _query_extras(self, s: Session, row: records.Settlement, info: dict[str, Any]) -> dict[str, Any]:
        """The fields 5203 adds to ``setlinfo``: where, when and who paid what."""
        inst = s.get(registry.Institution, row.fixmedins_code)
        enc = s.get(records.Encounter, row.mdtrt_id)
        begin = enc.begntime if enc is not None else row.setl_time
        end = enc.endtime if enc is not None and enc.endtime is not None else row.setl_time
        return {
            "pay_loc": self.cfg.pay_loc,
            "fixmedins_code": row.fixmedins_code,
            "fixmedins_name": (inst.fixmedins_name or "") if inst is not None else "",
            "hosp_lv": str(inst.hosp_lv) if inst is not None and inst.hosp_lv is not None else "",
            "begndate": begin.astimezone(db.SHANGHAI).date().isoformat(),
            "enddate": end.astimezone(db.SHANGHAI).date().isoformat(),
            "psn_pay": info["psn_part_amt"],
            "cash_payamt": info["psn_cash_pay"],
            "year": str(row.policy_year),
        }

    def totals(
        self,
        s: Session,
        *,
        fixmedins_code: str,
        insutype: str,
        clr_type: str,
        setl_optins: str,
        begin: dt.date,
        end: dt.date,
    ) -> dict[str, int]:
        """Live (not cancelled) settlements of an institution in a date range, summed (fen)."""
        St, P = records.Settlement, registry.Person
        med_types = [m for m, c in self.cfg.clr_types.items() if c == clr_type]
        lo = dt.datetime.combine(begin, dt.time(), db.SHANGHAI)
        hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), db.SHANGHAI)
        r = s.execute(
            select(
                func.coalesce(func.sum(St.medfee_sumamt), 0),
                func.coalesce(func.sum(St.fund_pay_sumamt), 0),
                func.coalesce(func.sum(St.acct_pay), 0),
                func.count(),
            )
            .select_from(St)
            .join(P, P.psn_no == St.psn_no)
            .where(
                and_(
                    St.fixmedins_code == fixmedins_code,
                    St.insutype == insutype,
                    St.med_type.in_(med_types),
                    P.insuplc_admdvs == setl_optins,
                    St.setl_time >= lo,
                    St.setl_time < hi,
                    St.refd_setl_flag.is_(False),
                )
            )
        ).one()
        return {
            "medfee_sumamt": int(r[0]),
            "fund_pay_sumamt": int(r[1]),
            "acct_pay": int(r[2]),
            "fixmedins_setl_cnt": int(r[3]),
        }

    def h_reconcile(self, ctx: Ctx, d: S.In3201) -> Outcome:
        q = d.data
        if q.stmt_enddate < q.stmt_begndate:
            raise _rej("stmt_enddate is before stmt_begndate", "对账结束日期早于开始日期", "stmt_enddate")
        if q.clr_type not in set(self.cfg.clr_types.values()):
            raise _rej(f"unknown clr_type {q.clr_type!r}", f"清算类别 {q.clr_type} 无效", "clr_type")
        with self.read() as s:
            ours = self.totals(
                s,
                fixmedins_code=ctx.env.fixmedins_code,
                insutype=q.insutype,
                clr_type=q.clr_type,
                setl_optins=q.setl_optins,
                begin=q.stmt_begndate,
                end=q.stmt_enddate,
            )
        theirs = {
            "medfee_sumamt": _fen(q.medfee_sumamt, "medfee_sumamt"),
            "fund_pay_sumamt": _fen(q.fund_pay_sumamt, "fund_pay_sumamt"),
            "acct_pay": _fen(q.acct_pay, "acct_pay"),
            "fixmedins_setl_cnt": q.fixmedins_setl_cnt,
        }
        diffs = []
        for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "fixmedins_setl_cnt"):
            if ours[k] != theirs[k]:
                if k == "fixmedins_setl_cnt":
                    diffs.append(f"{k}: 机构 {theirs[k]} / 平台 {ours[k]}")
                else:
                    diffs.append(f"{k}: 机构 {_yuan(theirs[k])} / 平台 {_yuan(ours[k])}")
        out = {
            "stmtinfo": {
                "setl_optins": q.setl_optins,
                "stmt_rslt": "0" if not diffs else "1",
                "stmt_rslt_dscr": "对账平 (totals agree)"
                if not diffs
                else "对账不平 (totals differ): " + "; ".join(diffs),
                "platform_totals": {
                    "medfee_sumamt": _yuan(ours["medfee_sumamt"]),
                    "fund_pay_sumamt": _yuan(ours["fund_pay_sumamt"]),
                    "acct_pay": _yuan(ours["acct_pay"]),
                    "fixmedins_setl_cnt": ours["fixmedins_setl_cnt"],
                },
            }
        }
        with self.tx() as s:
            return ctx.commit(s, out)


def _h(name: str) -> Callable[[Interface, Ctx, Any], Outcome]:
    return lambda iface, ctx, data: getattr(iface, name)(ctx, data)


TRANSACTIONS: dict[str, Transaction] = {
    t.infno: t
    for t in (
        Transaction("9001", "签到", "sign in", S.In9001, S.Out9001, _h("h_sign_in"), "sign-in", needs_sign=False),
        Transaction("1101", "人员信息获取", "person information", S.In1101, S.Out1101, _h("h_person"), "persons/query"),
        Transaction(
            "2201",
            "门诊挂号",
            "outpatient registration",
            S.In2201,
            S.Out2201,
            _h("h_register"),
            "outpatient/registrations",
        ),
        Transaction(
            "2202",
            "门诊挂号撤销",
            "cancel outpatient registration",
            S.In2202,
            S.Empty,
            _h("h_cancel_registration"),
            "outpatient/registrations/cancel",
        ),
        Transaction(
            "2203",
            "门诊就诊信息上传",
            "outpatient visit information",
            S.In2203,
            S.Empty,
            _h("h_visit"),
            "outpatient/visits",
        ),
        Transaction(
            "2204",
            "门诊费用明细信息上传",
            "outpatient fee details",
            S.InFees,
            S.OutFees,
            _h("h_fees_outpatient"),
            "outpatient/fees",
        ),
        Transaction(
            "2205",
            "门诊费用明细信息撤销",
            "withdraw outpatient fee details",
            S.In2205,
            S.OutWithdrawn,
            _h("h_withdraw_outpatient"),
            "outpatient/fees/cancel",
        ),
        Transaction(
            "2206",
            "门诊预结算",
            "outpatient pre-settlement",
            S.InSettle,
            S.OutSettle,
            _h("h_pre_outpatient"),
            "outpatient/pre-settlements",
        ),
        Transaction(
            "2207",
            "门诊结算",
            "outpatient settlement",
            S.InSettle,
            S.OutSettle,
            _h("h_settle_outpatient"),
            "outpatient/settlements",
        ),
        Transaction(
            "2208",
            "门诊结算撤销",
            "cancel outpatient settlement",
            S.InCancel,
            S.OutSettle,
            _h("h_cancel_outpatient"),
            "outpatient/settlements/cancel",
        ),
        Transaction(
            "2301",
            "住院费用明细上传",
            "inpatient fee details",
            S.InFees,
            S.OutFees,
            _h("h_fees_inpatient"),
            "inpatient/fees",
        ),
        Transaction(
            "2302",
            "住院费用明细撤销",
            "withdraw inpatient fee details",
            S.In2302,
            S.OutWithdrawn,
            _h("h_withdraw_inpatient"),
            "inpatient/fees/cancel",
        ),
        Transaction(
            "2303",
            "住院预结算",
            "inpatient pre-settlement",
            S.InSettle,
            S.OutSettle,
            _h("h_pre_inpatient"),
            "inpatient/pre-settlements",
        ),
        Transaction(
            "2304",
            "住院结算",
            "inpatient settlement",
            S.InSettle,
            S.OutSettle,
            _h("h_settle_inpatient"),
            "inpatient/settlements",
        ),
        Transaction(
            "2305",
            "住院结算撤销",
            "cancel inpatient settlement",
            S.InCancel,
            S.OutSettle,
            _h("h_cancel_inpatient"),
            "inpatient/settlements/cancel",
        ),
        Transaction("2401", "入院办理", "admission", S.In2401, S.Out2401, _h("h_admit"), "inpatient/admissions"),
        Transaction("2402", "出院办理", "discharge", S.In2402, S.Empty, _h("h_discharge"), "inpatient/discharges"),
        Transaction(
            "2404",
            "入院办理撤销",
            "cancel admission",
            S.In2404,
            S.Empty,
            _h("h_cancel_admission"),
            "inpatient/admissions/cancel",
        ),
        Transaction(
            "3201",
            "医药机构费用结算对总账",
            "daily reconciliation of totals",
            S.In3201,
            S.Out3201,
            _h("h_reconcile"),
            "reconciliation",
        ),
        Transaction(
            "5203", "结算信息查询", "settlement query", S.InQuery, S.OutSettle, _h("h_query"), "settlements/query"
        ),
    )
}

# At the end: more_transactions imports this module (issue 16).
from yibao.api import more_transactions as _more  # noqa: E402

_more.register(TRANSACTIONS)
from yibao.crossregion import transactions as _filing  # noqa: E402 - 2501 / 2501A / 2502 转院备案 (issue 13)

_filing.register(TRANSACTIONS)
