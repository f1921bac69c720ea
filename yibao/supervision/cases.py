"""Enforcement cases (案件办理): clue → case → investigation → decision → recovery → publicity.

The state machine is data (``case_workflow.yaml``).  Each step is one
transaction that changes the case and writes a :class:`CaseEvent` (全过程记录);
an illegal step raises :class:`CaseError` naming the state and the action and
changes nothing.  A major decision (by the discretion benchmarks: a large fine
or a suspension) cannot be decided before a passed legal review (法制审核).
Deciding awards credit points to the subject (:mod:`yibao.supervision.credit`) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.engine import Engine

from yibao.core.db import session_scope
from yibao.core.errors import YibaoError
from yibao.core.yamldata import data_error, load_model
from yibao.supervision.discretion import Benchmarks, Facts, Penalty, default_benchmarks
from yibao.supervision.knowledge import DATA_DIR
from yibao.supervision.models import Case, CaseEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")
SUBJECT_KINDS = ("institution", "physician", "person", "enterprise")


class CaseError(YibaoError):
    code = "E_CASE"


class _WorkflowState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name_zh: str


class _Transition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    action: str


class WorkflowFile(BaseModel):
    """The shape of ``case_workflow.yaml`` (案件办理流程)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = 1
    states: dict[str, _WorkflowState] = Field(min_length=1)
    transitions: list[_Transition]
    agencies: list[str]


@dataclass(frozen=True)
class Workflow:
    states: dict[str, str]
    transitions: dict[tuple[str, str], str]  # (from, action) -> to
    agencies: tuple[str, ...]

    @classmethod
    def load(cls, path: Path | None = None) -> "Workflow":
        p = path or DATA_DIR / "case_workflow.yaml"
        d = load_model(p, WorkflowFile, what=("case workflow", "案件办理流程"), error=CaseError)
        states = {k: v.name_zh for k, v in d.states.items()}
        tr = {}
        for n, t in enumerate(d.transitions):
            for s in (t.from_, t.to):
                if s not in states:
                    raise data_error(p, f"transitions.{n}", f"transition names unknown state {s!r}", f"未知状态 {s!r}", error=CaseError)
            tr[(t.from_, t.action)] = t.to
        return cls(states, tr, tuple(d.agencies))

    def next_state(self, state: str, action: str) -> str:
        to = self.transitions.get((state, action))
        if to is None:
            allowed = sorted(a for (s, a) in self.transitions if s == state)
            raise CaseError(
                f"cannot {action} a case in state {state!r}; allowed: {allowed or 'none (final state)'}",
                f"案件处于「{self.states.get(state, state)}」状态，不能执行 {action}；可执行: {allowed or '无(终结状态)'}",
                field="action",
            )
        return to


@lru_cache(maxsize=1)
def default_workflow() -> Workflow:
    return Workflow.load()


def _now() -> dt.datetime:
    return dt.datetime.now(SHANGHAI).replace(microsecond=0)


class CaseService:
    """Case steps, each one transaction."""

    def __init__(self, engine: Engine, workflow: Workflow | None = None, benchmarks: Benchmarks | None = None):
        self.engine = engine
        self.wf = workflow or default_workflow()
        self.bm = benchmarks or default_benchmarks()

    def open_clue(self, subject_kind: str, subject_code: str, source: str, *, actor: str, loss_fen: int = 0, note: str = "") -> int:
        if subject_kind not in SUBJECT_KINDS:
            raise CaseError(f"subject_kind must be one of {SUBJECT_KINDS}", "对象类型无效", field="subject_kind")
        if not subject_code:
            raise CaseError("subject_code is empty", "对象编码为空", field="subject_code")
        if loss_fen < 0:
            raise CaseError("loss_fen must not be negative", "损失金额不能为负", field="loss_fen")
        now = _now()
        with session_scope(self.engine) as s:
            c = Case(state="clue", subject_kind=subject_kind, subject_code=subject_code, source=source, loss_fen=loss_fen, violation="", procedure="general",
                     band="", fine_fen=0, recovered_fen=0, major=False, legal_review_passed=False, transferred_to="", created_at=now, updated_at=now)
            s.add(c)
            s.flush()
            s.add(CaseEvent(case_id=c.id, action="open", from_state="", to_state="clue", actor=actor, note=note, payload=json.dumps({"source": source}), at=now))
            return c.id

    def _step(self, case_id: int, action: str, actor: str, note: str, payload: dict, apply=None) -> Case:
        if not actor:
            raise CaseError("actor is required (every step is recorded with who did it)", "须记录操作人", field="actor")
        with session_scope(self.engine, immediate=True) as s:
            c = s.get(Case, case_id, with_for_update=True)
            if c is None:
                raise CaseError(f"no case {case_id}", f"案件 {case_id} 不存在", field="case_id")
            to = self.wf.next_state(c.state, action)
            if apply is not None:
                apply(c, to, s)
            s.add(CaseEvent(case_id=c.id, action=action, from_state=c.state, to_state=to, actor=actor, note=note, payload=json.dumps(payload, ensure_ascii=False, default=str), at=_now()))
            c.state = to
            c.updated_at = _now()
            return c

    def file(self, case_id: int, *, actor: str, note: str = "") -> Case:
        return self._step(case_id, "file", actor, note, {})

    def dismiss(self, case_id: int, *, actor: str, note: str) -> Case:
        return self._step(case_id, "dismiss", actor, note, {})

    def investigate(self, case_id: int, *, actor: str, note: str = "") -> Case:
        return self._step(case_id, "investigate", actor, note, {})

    def transfer(self, case_id: int, agency: str, *, actor: str, note: str = "") -> Case:
        if agency not in self.wf.agencies:
            raise CaseError(f"unknown agency {agency!r}; known: {list(self.wf.agencies)}", f"未知移送机关 {agency!r}", field="agency")

        def apply(c, to, s):
            c.transferred_to = agency

        return self._step(case_id, "transfer", actor, note, {"agency": agency}, apply)

    def assess(self, facts: Facts) -> Penalty:
        return self.bm.penalty(facts)

    def submit_review(self, case_id: int, facts: Facts, *, actor: str, note: str = "") -> Case:
        pen = self.bm.penalty(facts)

        def apply(c, to, s):
            c.violation, c.loss_fen, c.major = facts.violation, facts.loss_fen, pen.legal_review

        return self._step(case_id, "submit_review", actor, note, {"facts": facts.__dict__, "fine_range": [pen.fine_min_fen, pen.fine_max_fen]}, apply)

    def review(self, case_id: int, *, passed: bool, actor: str, note: str = "") -> Case:
        """Legal review (法制审核): passing lets the decision go ahead; failing returns the case to investigation."""
        if passed:
            return self._mark_review(case_id, actor, note)
        return self._step(case_id, "return", actor, note, {"passed": False})

    def _mark_review(self, case_id: int, actor: str, note: str) -> Case:
        with session_scope(self.engine, immediate=True) as s:
            c = s.get(Case, case_id, with_for_update=True)
            if c is None:
                raise CaseError(f"no case {case_id}", f"案件 {case_id} 不存在", field="case_id")
            if c.state != "legal_review":
                raise CaseError(f"case {case_id} is in state {c.state!r}, not under legal review", "案件不在法制审核状态", field="state")
            c.legal_review_passed = True
            s.add(CaseEvent(case_id=c.id, action="review_passed", from_state=c.state, to_state=c.state, actor=actor, note=note, payload="{}", at=_now()))
            return c

    def decide(self, case_id: int, facts: Facts, fine_fen: int, *, actor: str, note: str = "") -> Case:
        """The penalty decision; the fine must lie in the benchmark's range. Awards credit points."""
        from yibao.supervision.credit import add_points

        pen = self.bm.penalty(facts)
        if not pen.fine_min_fen <= fine_fen <= pen.fine_max_fen:
            raise CaseError(
                f"fine {fine_fen} fen is outside the benchmark range {pen.fine_min_fen}..{pen.fine_max_fen} fen ({pen.basis}, band {pen.band})",
                f"罚款 {fine_fen} 分不在裁量基准范围 {pen.fine_min_fen}..{pen.fine_max_fen} 分内",
                field="fine_fen",
            )

        def apply(c, to, s):
            if pen.legal_review and not c.legal_review_passed:
                raise CaseError("a major decision needs a passed legal review (法制审核) first", "重大行政处罚决定须先经法制审核", field="legal_review")
            c.violation, c.loss_fen, c.band, c.fine_fen, c.major = facts.violation, facts.loss_fen, pen.band or "", fine_fen, pen.legal_review
            c.procedure, c.decided_at = pen.procedure, _now()
            if pen.band and pen.waived != "must_waive" and not (pen.waived == "may_waive" and fine_fen == 0):
                add_points(s, c.subject_kind, c.subject_code, pen.band, case_id=c.id, reason=f"case {c.id}: {facts.violation} ({pen.band})")

        return self._step(case_id, "decide", actor, note, {"facts": facts.__dict__, "fine_fen": fine_fen, "penalty": pen.__dict__}, apply)

    def decide_summary(self, case_id: int, facts: Facts, fine_fen: int, *, actor: str, note: str = "") -> Case:
        """Summary procedure (简易程序, 当场处罚): from the clue straight to the decision, only when the benchmark's
        fine range stays under the summary threshold and no other sanction is sought."""
        from yibao.supervision.credit import add_points

        pen = self.bm.penalty(facts)
        if pen.procedure != "summary":
            raise CaseError(
                f"the summary procedure is not allowed: the fine may reach {pen.fine_max_fen} fen (or a sanction is sought); use the general procedure",
                "不符合简易程序条件，应适用普通程序",
                field="procedure",
            )
        if not pen.fine_min_fen <= fine_fen <= pen.fine_max_fen:
            raise CaseError(f"fine {fine_fen} fen is outside the benchmark range {pen.fine_min_fen}..{pen.fine_max_fen} fen", "罚款不在裁量基准范围内", field="fine_fen")

        def apply(c, to, s):
            c.violation, c.loss_fen, c.band, c.fine_fen, c.major, c.procedure, c.decided_at = facts.violation, facts.loss_fen, pen.band or "", fine_fen, False, "summary", _now()
            if pen.band and pen.waived != "must_waive" and not (pen.waived == "may_waive" and fine_fen == 0):
                add_points(s, c.subject_kind, c.subject_code, pen.band, case_id=c.id, reason=f"case {c.id}: {facts.violation} ({pen.band}, summary)")

        return self._step(case_id, "decide_summary", actor, note, {"facts": facts.__dict__, "fine_fen": fine_fen, "penalty": pen.__dict__}, apply)

    def recover(self, case_id: int, amount_fen: int, *, actor: str, note: str = "") -> Case:
        if amount_fen <= 0:
            raise CaseError("amount_fen must be positive", "追回金额须为正", field="amount_fen")

        def apply(c, to, s):
            if c.recovered_fen + amount_fen > c.loss_fen:
                raise CaseError(f"recovering {amount_fen} fen would exceed the loss {c.loss_fen} fen (recovered so far {c.recovered_fen})", "追回金额超过基金损失", field="amount_fen")
            c.recovered_fen += amount_fen

        return self._step(case_id, "recover", actor, note, {"amount_fen": amount_fen}, apply)

    def publish(self, case_id: int, *, actor: str, note: str = "") -> Case:
        return self._step(case_id, "publish", actor, note, {})

    def close(self, case_id: int, *, actor: str, note: str = "") -> Case:
        return self._step(case_id, "close", actor, note, {})

    def events(self, case_id: int) -> list[CaseEvent]:
        with session_scope(self.engine) as s:
            return list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))

    def get(self, case_id: int) -> Case:
        with session_scope(self.engine) as s:
            c = s.get(Case, case_id)
            if c is None:
                raise CaseError(f"no case {case_id}", f"案件 {case_id} 不存在", field="case_id")
            return c
