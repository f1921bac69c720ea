"""Enforcement cases (案件办理): clue → case → investigation → decision → legal review → recovery → publicity → appeal.

The state machine is data (``case_workflow.yaml``): each transition names its action and the console
roles (:mod:`yibao.web.auth`) that may take it.  Each step is one transaction that changes the case and
writes a :class:`CaseEvent` (全过程记录) with who, when, what and the case's fields before and after; an
illegal step raises :class:`CaseError` (bilingual, naming the state and the allowed actions) and changes
nothing.  A major decision (by the discretion benchmarks: a large fine or a suspension) cannot be decided
before a passed legal review (法制审核), and neither the reviewer nor the decider may review their own
proposal.  Deciding awards credit points to the subject (:mod:`yibao.supervision.credit`) in the same
transaction; revoking the decision on appeal withdraws them.

The CLI (``yibao supervision case``), the REST router and the console case page all go through
:meth:`CaseService.open_case` and :meth:`CaseService.perform`, which check the acting user's role.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.engine import Engine

from yibao.core.db import session_scope
from yibao.core.errors import YibaoError
from yibao.core.yamldata import data_error, load_model
from yibao.supervision.discretion import BANDS, Benchmarks, Facts, Penalty, default_benchmarks
from yibao.supervision.knowledge import DATA_DIR
from yibao.supervision.models import Case, CaseEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")
SUBJECT_KINDS = ("institution", "physician", "person", "enterprise")


class CaseError(YibaoError):
    code = "E_CASE"


class CaseForbidden(CaseError):
    """The acting user's role may not take this step (or not on this case)."""

    code = "E_CASE_ROLE"


@dataclass(frozen=True)
class Actor:
    """Who takes a step: a console user name, their role and (institution staff) their institution."""

    username: str
    role: str
    fixmedins_code: str | None = None


class _Named(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name_zh: str


class _Transition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    action: str
    roles: tuple[str, ...] = ("bureau",)
    own_case_only: bool = False


class WorkflowFile(BaseModel):
    """The shape of ``case_workflow.yaml`` (案件办理流程)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = 1
    intake_roles: tuple[str, ...] = ("bureau",)
    clue_kinds: dict[str, _Named] = Field(min_length=1)
    appeal_kinds: dict[str, _Named] = Field(min_length=1)
    states: dict[str, _Named] = Field(min_length=1)
    transitions: list[_Transition]
    agencies: list[str]


@dataclass(frozen=True)
class Step:
    to: str
    roles: tuple[str, ...]
    own_case_only: bool


@dataclass(frozen=True)
class Workflow:
    states: dict[str, str]
    steps: dict[tuple[str, str], Step]  # (from, action) -> step
    agencies: tuple[str, ...]
    clue_kinds: dict[str, str]
    appeal_kinds: dict[str, str]
    intake_roles: tuple[str, ...] = ("bureau",)

    @property
    def transitions(self) -> dict[tuple[str, str], str]:
        return {k: v.to for k, v in self.steps.items()}

    @classmethod
    def load(cls, path: Path | None = None) -> Workflow:
        p = path or DATA_DIR / "case_workflow.yaml"
        d = load_model(p, WorkflowFile, what=("case workflow", "案件办理流程"), error=CaseError)
        states = {k: v.name_zh for k, v in d.states.items()}
        steps: dict[tuple[str, str], Step] = {}
        for n, t in enumerate(d.transitions):
            for st in (t.from_, t.to):
                if st not in states:
                    raise data_error(
                        p,
                        f"transitions.{n}",
                        f"transition names unknown state {st!r}",
                        f"未知状态 {st!r}",
                        error=CaseError,
                    )
            if (t.from_, t.action) in steps:
                raise data_error(
                    p,
                    f"transitions.{n}",
                    f"{t.action!r} from {t.from_!r} is listed twice",
                    f"转换 {t.action} 重复",
                    error=CaseError,
                )
            if not t.roles:
                raise data_error(
                    p, f"transitions.{n}.roles", "a step needs at least one role", "须指定可执行角色", error=CaseError
                )
            steps[(t.from_, t.action)] = Step(t.to, tuple(t.roles), t.own_case_only)
        return cls(
            states,
            steps,
            tuple(d.agencies),
            {k: v.name_zh for k, v in d.clue_kinds.items()},
            {k: v.name_zh for k, v in d.appeal_kinds.items()},
            tuple(d.intake_roles),
        )

    def allowed(self, state: str) -> list[str]:
        return sorted(a for (s, a) in self.steps if s == state)

    def step(self, state: str, action: str) -> Step:
        st = self.steps.get((state, action))
        if st is None:
            allowed = self.allowed(state)
            raise CaseError(
                f"cannot {action} a case in state {state!r}; allowed: {allowed or 'none (final state)'}",
                f"案件处于「{self.states.get(state, state)}」状态，不能执行 {action}；可执行: "
                f"{allowed or '无(终结状态)'}",
                field="action",
            )
        return st

    def next_state(self, state: str, action: str) -> str:
        return self.step(state, action).to


@lru_cache(maxsize=1)
def default_workflow() -> Workflow:
    return Workflow.load()


def _now() -> dt.datetime:
    return dt.datetime.now(SHANGHAI).replace(microsecond=0)


CASE_FIELDS = (
    "state",
    "violation",
    "procedure",
    "loss_fen",
    "band",
    "fine_fen",
    "recovered_fen",
    "fine_paid_fen",
    "major",
    "legal_review_passed",
    "transferred_to",
    "appeal_kind",
)
ACTION_PARAMS: dict[str, tuple[str, ...]] = {  # what each action takes besides the note (the interfaces read this)
    "file": (),
    "dismiss": (),
    "investigate": (),
    "publish": (),
    "close": (),
    "uphold": (),
    "revoke": (),
    "return": (),
    "review_pass": (),
    "note": ("violation", "loss_fen"),
    "transfer": ("agency",),
    "submit_review": ("facts",),
    "decide": ("facts", "fine_fen"),
    "decide_summary": ("facts", "fine_fen"),
    "recover": ("amount_fen",),
    "collect_fine": ("amount_fen",),
    "appeal": ("appeal_kind",),
}


def _snapshot(c: Case) -> dict[str, Any]:
    return {k: getattr(c, k) for k in CASE_FIELDS}


def _fen(value: Any, field: str, *, positive: bool = False) -> int:
    """An amount in integer fen; a float, a fraction, text or a negative amount is refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            text = str(value).strip()
            if not text.lstrip("-").isdigit():
                raise ValueError(text)
            value = int(text)
        except ValueError:
            raise CaseError(
                f"{field} must be a whole number of fen, got {value!r}", f"{field} 须为整数(分)", field=field
            ) from None
    if value < 0 or (positive and value == 0):
        raise CaseError(
            f"{field} must be {'positive' if positive else 'zero or more'} (fen), got {value}",
            f"{field} 须{'为正数' if positive else '不小于零'}(分)，实为 {value}",
            field=field,
        )
    return value


def facts_from(d: dict[str, Any]) -> Facts:
    """:class:`Facts` from a plain mapping (CLI options, JSON, a form); unknown keys are refused."""
    names = {f.name for f in fields(Facts)}
    extra = sorted(set(d) - names)
    if extra:
        raise CaseError(f"unknown facts {extra}; known: {sorted(names)}", f"未知事实字段 {extra}", field="facts")
    if not d.get("violation"):
        raise CaseError("facts need the violation (a key of discretion.yaml)", "须指明违法类型", field="violation")
    band = d.get("band", "general")
    if band not in BANDS:
        raise CaseError(f"band must be one of {BANDS}, got {band!r}", f"裁量档次须为 {BANDS} 之一", field="band")
    flags = {k: bool(d.get(k, False)) for k in ("first_offence", "corrected", "no_fault", "mitigating", "aggravating")}
    return Facts(
        str(d["violation"]),
        _fen(d.get("loss_fen", 0), "loss_fen"),
        band,
        sanctions=tuple(d.get("sanctions") or ()),
        **flags,
    )


class CaseService:
    """Case steps, each one transaction."""

    def __init__(self, engine: Engine, workflow: Workflow | None = None, benchmarks: Benchmarks | None = None):
        self.engine = engine
        self.wf = workflow or default_workflow()
        self.bm = benchmarks or default_benchmarks()

    # --- the interfaces' entry points (role-checked) ----------------------------------------------

    def open_case(
        self,
        actor: Actor,
        subject_kind: str,
        subject_code: str,
        clue_kind: str,
        source: str,
        *,
        loss_fen: Any = 0,
        note: str = "",
    ) -> int:
        """Case intake (线索登记) by a user whose role the workflow allows."""
        if actor.role not in self.wf.intake_roles:
            raise CaseForbidden(
                f"role {actor.role!r} may not open a case (allowed: {list(self.wf.intake_roles)})",
                f"角色 {actor.role} 无权登记线索",
                field="role",
            )
        return self.open_clue(
            subject_kind,
            subject_code,
            source,
            actor=actor.username,
            loss_fen=_fen(loss_fen, "loss_fen"),
            note=note,
            clue_kind=clue_kind,
        )

    def perform(self, case_id: int, action: str, actor: Actor, *, note: str = "", **params: Any) -> Case:
        """One step named by its action, with its parameters (``ACTION_PARAMS``); the actor's role is checked."""
        if not isinstance(actor, Actor):
            raise CaseError("perform needs an Actor (user and role)", "须指明操作人及角色", field="actor")
        if action not in ACTION_PARAMS:
            raise CaseError(
                f"unknown action {action!r}; known: {sorted(ACTION_PARAMS)}", f"未知操作 {action!r}", field="action"
            )
        extra = sorted(k for k, v in params.items() if k not in ACTION_PARAMS[action] and v not in (None, "", {}, ()))
        if extra:
            raise CaseError(
                f"{action} takes no {extra} (it takes {list(ACTION_PARAMS[action]) or 'only a note'})",
                f"{action} 不接受参数 {extra}",
                field=extra[0],
            )

        def need(k: str) -> Any:
            return params.get(k) if params.get(k) not in (None, "") else _missing(action, k)

        if action in ("decide", "decide_summary", "submit_review"):
            facts = need("facts")
            facts = facts if isinstance(facts, Facts) else facts_from(facts)
        if action == "transfer":
            return self.transfer(case_id, need("agency"), actor=actor, note=note)
        if action == "note":
            return self.note(
                case_id,
                actor=actor,
                note=note,
                violation=params.get("violation") or None,
                loss_fen=params.get("loss_fen"),
            )
        if action == "submit_review":
            return self.submit_review(case_id, facts, actor=actor, note=note)
        if action in ("decide", "decide_summary"):
            return getattr(self, action)(case_id, facts, _fen(need("fine_fen"), "fine_fen"), actor=actor, note=note)
        if action in ("recover", "collect_fine"):
            return getattr(self, action)(
                case_id, _fen(need("amount_fen"), "amount_fen", positive=True), actor=actor, note=note
            )
        if action == "appeal":
            return self.appeal(case_id, need("appeal_kind"), actor=actor, note=note)
        if action == "review_pass":
            return self.review(case_id, passed=True, actor=actor, note=note)
        if action == "return":
            return self.review(case_id, passed=False, actor=actor, note=note)
        return getattr(self, action)(case_id, actor=actor, note=note)

    def next_actions(self, c: Case, actor: Actor | None = None) -> list[str]:
        """The actions the workflow allows from the case's state (for this actor, when given)."""
        out = []
        for a in self.wf.allowed(c.state):
            st = self.wf.steps[(c.state, a)]
            if actor is None or self._may(actor, st, c):
                out.append(a)
        return out

    @staticmethod
    def _may(actor: Actor, st: Step, c: Case) -> bool:
        if actor.role not in st.roles:
            return False
        if st.own_case_only and actor.role == "institution":
            return (
                c.subject_kind == "institution"
                and bool(actor.fixmedins_code)
                and c.subject_code == actor.fixmedins_code
            )
        return True

    # --- the steps ----------------------------------------------------------------------------------

    def open_clue(
        self,
        subject_kind: str,
        subject_code: str,
        source: str,
        *,
        actor: str,
        loss_fen: int = 0,
        note: str = "",
        clue_kind: str = "scan_hit",
    ) -> int:
        if subject_kind not in SUBJECT_KINDS:
            raise CaseError(f"subject_kind must be one of {SUBJECT_KINDS}", "对象类型无效", field="subject_kind")
        if not subject_code:
            raise CaseError("subject_code is empty", "对象编码为空", field="subject_code")
        if clue_kind not in self.wf.clue_kinds:
            raise CaseError(
                f"clue kind must be one of {sorted(self.wf.clue_kinds)}, got {clue_kind!r}",
                f"线索来源须为 {sorted(self.wf.clue_kinds)} 之一",
                field="clue_kind",
            )
        if not source:
            raise CaseError(
                "source is empty (the rule id, complaint number or referring agency)", "线索出处为空", field="source"
            )
        if not actor:
            raise CaseError("actor is required (every step is recorded with who did it)", "须记录操作人", field="actor")
        loss_fen = _fen(loss_fen, "loss_fen")
        now = _now()
        with session_scope(self.engine) as s:
            c = Case(
                state="clue",
                subject_kind=subject_kind,
                subject_code=subject_code,
                source=source[:80],
                loss_fen=loss_fen,
                violation="",
                procedure="general",
                band="",
                fine_fen=0,
                recovered_fen=0,
                fine_paid_fen=0,
                major=False,
                legal_review_passed=False,
                transferred_to="",
                appeal_kind="",
                clue_kind=clue_kind,
                created_at=now,
                updated_at=now,
            )
            s.add(c)
            s.flush()
            s.add(
                CaseEvent(
                    case_id=c.id,
                    action="open",
                    from_state="",
                    to_state="clue",
                    actor=actor,
                    note=note,
                    payload=json.dumps(
                        {"clue_kind": clue_kind, "source": source, "before": {}, "after": _snapshot(c)},
                        ensure_ascii=False,
                        default=str,
                    ),
                    at=now,
                )
            )
            return c.id

    def _step(self, case_id: int, action: str, actor: str | Actor, note: str, payload: dict, apply=None) -> Case:
        who = actor.username if isinstance(actor, Actor) else actor
        if not who:
            raise CaseError("actor is required (every step is recorded with who did it)", "须记录操作人", field="actor")
        with session_scope(self.engine, immediate=True) as s:
            c = s.get(Case, case_id, with_for_update=True)
            if c is None:
                raise CaseError(f"no case {case_id}", f"案件 {case_id} 不存在", field="case_id")
            st = self.wf.step(c.state, action)
            if isinstance(actor, Actor) and not self._may(actor, st, c):
                raise CaseForbidden(
                    f"user {who!r} (role {actor.role!r}) may not {action} case {case_id}; roles allowed: "
                    f"{list(st.roles)}"
                    + (" (institution staff: their own institution's case only)" if st.own_case_only else ""),
                    f"用户 {who}（角色 {actor.role}）无权对案件 {case_id} 执行 {action}",
                    field="role",
                )
            before = _snapshot(c)
            from_state = c.state
            if apply is not None:
                apply(c, st.to, s, who)
            c.state = st.to
            c.updated_at = _now()
            after = _snapshot(c)
            changed = [k for k in CASE_FIELDS if before[k] != after[k]]
            rec = {**payload, "before": {k: before[k] for k in changed}, "after": {k: after[k] for k in changed}}
            if isinstance(actor, Actor):
                rec["role"] = actor.role
            s.add(
                CaseEvent(
                    case_id=c.id,
                    action=action,
                    from_state=from_state,
                    to_state=st.to,
                    actor=who,
                    note=note,
                    payload=json.dumps(rec, ensure_ascii=False, default=str),
                    at=_now(),
                )
            )
            return c

    def file(self, case_id: int, *, actor: str | Actor, note: str = "") -> Case:
        return self._step(case_id, "file", actor, note, {})

    def dismiss(self, case_id: int, *, actor: str | Actor, note: str) -> Case:
        if not note:
            raise CaseError("dismissing a clue needs the reason (note)", "不予立案须说明理由", field="note")
        return self._step(case_id, "dismiss", actor, note, {})

    def investigate(self, case_id: int, *, actor: str | Actor, note: str = "") -> Case:
        return self._step(case_id, "investigate", actor, note, {})

    def note(
        self, case_id: int, *, actor: str | Actor, note: str, violation: str | None = None, loss_fen: Any = None
    ) -> Case:
        """An evidence note of the investigation (调查取证记录);
        it may state the violation found and the fund's loss.
        """
        if not note:
            raise CaseError("an evidence note needs its text (note)", "调查记录内容为空", field="note")
        if violation is not None and violation not in self.bm.violations:
            raise CaseError(
                f"unknown violation {violation!r}; known: {sorted(self.bm.violations)}",
                f"未知违法类型 {violation!r}",
                field="violation",
            )
        loss = None if loss_fen in (None, "") else _fen(loss_fen, "loss_fen")

        def apply(c, to, s, who):
            if violation is not None:
                c.violation = violation
            if loss is not None:
                c.loss_fen = loss

        return self._step(
            case_id, "note", actor, note, {"evidence": note, "violation": violation, "loss_fen": loss}, apply
        )

    def transfer(self, case_id: int, agency: str, *, actor: str | Actor, note: str = "") -> Case:
        if agency not in self.wf.agencies:
            raise CaseError(
                f"unknown agency {agency!r}; known: {list(self.wf.agencies)}",
                f"未知移送机关 {agency!r}",
                field="agency",
            )

        def apply(c, to, s, who):
            c.transferred_to = agency

        return self._step(case_id, "transfer", actor, note, {"agency": agency}, apply)

    def assess(self, facts: Facts) -> Penalty:
        return self.bm.penalty(facts)

    def ranges(self, c: Case) -> list[tuple[str, Penalty]]:
        """The benchmark's fine range per band for the case's
        violation and loss (empty while no violation is stated).
        """
        if not c.violation:
            return []
        return [(b, self.bm.penalty(Facts(c.violation, c.loss_fen, b))) for b in BANDS]  # type: ignore[arg-type]

    def submit_review(self, case_id: int, facts: Facts, *, actor: str | Actor, note: str = "") -> Case:
        pen = self.bm.penalty(facts)

        def apply(c, to, s, who):
            c.violation, c.loss_fen, c.major, c.legal_review_passed = (
                facts.violation,
                facts.loss_fen,
                pen.legal_review,
                False,
            )

        return self._step(
            case_id,
            "submit_review",
            actor,
            note,
            {"facts": facts.__dict__, "fine_range": [pen.fine_min_fen, pen.fine_max_fen]},
            apply,
        )

    def _last(self, s, case_id: int, action: str) -> CaseEvent | None:
        return s.scalars(
            select(CaseEvent)
            .where(CaseEvent.case_id == case_id, CaseEvent.action == action)
            .order_by(CaseEvent.id.desc())
            .limit(1)
        ).first()

    def review(self, case_id: int, *, passed: bool, actor: str | Actor, note: str = "") -> Case:
        """Legal review (法制审核) by another person than the one who submitted the proposal: passing lets the decision
        go ahead; failing returns the case to investigation."""
        action = "review_pass" if passed else "return"

        def apply(c, to, s, who):
            sub = self._last(s, c.id, "submit_review")
            if sub is not None and sub.actor == who:
                raise CaseError(
                    f"{who!r} submitted this proposal and may not review it (法制审核 by another person)",
                    "法制审核人员不得审核本人提交的处罚建议",
                    field="actor",
                )
            c.legal_review_passed = passed

        return self._step(case_id, action, actor, note, {"passed": passed}, apply)

    def _check_decider(self, s, c: Case, who: str) -> None:
        rev = self._last(s, c.id, "review_pass")
        sub = self._last(s, c.id, "submit_review")
        if c.legal_review_passed and rev is not None and (sub is None or rev.id > sub.id) and rev.actor == who:
            raise CaseError(
                f"{who!r} did the legal review of this case and may not also decide it",
                "法制审核人员不得作出本案处罚决定",
                field="actor",
            )

    def decide(self, case_id: int, facts: Facts, fine_fen: int, *, actor: str | Actor, note: str = "") -> Case:
        """The penalty decision; the fine must lie in the benchmark's range. Awards credit points."""
        from yibao.supervision.credit import add_points

        fine_fen = _fen(fine_fen, "fine_fen")
        pen = self.bm.penalty(facts)
        if not pen.fine_min_fen <= fine_fen <= pen.fine_max_fen:
            raise CaseError(
                f"fine {fine_fen} fen is outside the benchmark range {pen.fine_min_fen}..{pen.fine_max_fen} fen "
                f"({pen.basis}, band {pen.band})",
                f"罚款 {fine_fen} 分不在裁量基准范围 {pen.fine_min_fen}..{pen.fine_max_fen} 分内",
                field="fine_fen",
            )

        def apply(c, to, s, who):
            if pen.legal_review and not c.legal_review_passed:
                raise CaseError(
                    "a major decision needs a passed legal review (法制审核) first",
                    "重大行政处罚决定须先经法制审核",
                    field="legal_review",
                )
            self._check_decider(s, c, who)
            c.violation, c.loss_fen, c.band, c.fine_fen, c.major = (
                facts.violation,
                facts.loss_fen,
                pen.band or "",
                fine_fen,
                pen.legal_review,
            )
            c.procedure, c.decided_at = pen.procedure, _now()
            if pen.band and pen.waived != "must_waive" and not (pen.waived == "may_waive" and fine_fen == 0):
                add_points(
                    s,
                    c.subject_kind,
                    c.subject_code,
                    pen.band,
                    case_id=c.id,
                    reason=f"case {c.id}: {facts.violation} ({pen.band})",
                )

        return self._step(
            case_id,
            "decide",
            actor,
            note,
            {"facts": facts.__dict__, "fine_fen": fine_fen, "penalty": pen.__dict__},
            apply,
        )

    def decide_summary(self, case_id: int, facts: Facts, fine_fen: int, *, actor: str | Actor, note: str = "") -> Case:
        """Summary procedure (简易程序, 当场处罚): from the clue straight to the decision, only when the benchmark's
        fine range stays under the summary threshold and no other sanction is sought."""
        from yibao.supervision.credit import add_points

        fine_fen = _fen(fine_fen, "fine_fen")
        pen = self.bm.penalty(facts)
        if pen.procedure != "summary":
            raise CaseError(
                f"the summary procedure is not allowed: the fine may reach {pen.fine_max_fen} fen (or a sanction is "
                f"sought); use the general procedure",
                "不符合简易程序条件，应适用普通程序",
                field="procedure",
            )
        if not pen.fine_min_fen <= fine_fen <= pen.fine_max_fen:
            raise CaseError(
                f"fine {fine_fen} fen is outside the benchmark range {pen.fine_min_fen}..{pen.fine_max_fen} fen",
                "罚款不在裁量基准范围内",
                field="fine_fen",
            )

        def apply(c, to, s, who):
            c.violation, c.loss_fen, c.band, c.fine_fen, c.major, c.procedure, c.decided_at = (
                facts.violation,
                facts.loss_fen,
                pen.band or "",
                fine_fen,
                False,
                "summary",
                _now(),
            )
            if pen.band and pen.waived != "must_waive" and not (pen.waived == "may_waive" and fine_fen == 0):
                add_points(
                    s,
                    c.subject_kind,
                    c.subject_code,
                    pen.band,
                    case_id=c.id,
                    reason=f"case {c.id}: {facts.violation} ({pen.band}, summary)",
                )

        return self._step(
            case_id,
            "decide_summary",
            actor,
            note,
            {"facts": facts.__dict__, "fine_fen": fine_fen, "penalty": pen.__dict__},
            apply,
        )

    def recover(self, case_id: int, amount_fen: int, *, actor: str | Actor, note: str = "") -> Case:
        """Recovery of the fund's loss (追回基金), in fen; never beyond the loss."""
        return self._pay_towards(
            case_id,
            "recover",
            amount_fen,
            "recovered_fen",
            "loss_fen",
            actor,
            note,
            "recovering {amount} fen would exceed the loss {limit} fen (recovered so far {done})",
            "追回金额超过基金损失",
        )

    def collect_fine(self, case_id: int, amount_fen: int, *, actor: str | Actor, note: str = "") -> Case:
        """Payment of the fine (罚款缴纳), in fen; never beyond the fine decided."""
        return self._pay_towards(
            case_id,
            "collect_fine",
            amount_fen,
            "fine_paid_fen",
            "fine_fen",
            actor,
            note,
            "collecting {amount} fen would exceed the fine {limit} fen (paid so far {done})",
            "缴纳金额超过罚款金额",
        )

    def _pay_towards(
        self,
        case_id: int,
        action: str,
        amount_fen: int,
        paid_attr: str,
        limit_attr: str,
        actor: str | Actor,
        note: str,
        over_en: str,
        over_zh: str,
    ) -> Case:
        """A payment towards one of the case's amounts (the loss, the fine): positive fen, never beyond it."""
        amount_fen = _fen(amount_fen, "amount_fen", positive=True)

        def apply(c, to, s, who):
            done, limit = getattr(c, paid_attr), getattr(c, limit_attr)
            if done + amount_fen > limit:
                raise CaseError(over_en.format(amount=amount_fen, limit=limit, done=done), over_zh, field="amount_fen")
            setattr(c, paid_attr, done + amount_fen)

        return self._step(case_id, action, actor, note, {"amount_fen": amount_fen}, apply)

    def publish(self, case_id: int, *, actor: str | Actor, note: str = "") -> Case:
        return self._step(case_id, "publish", actor, note, {})

    def appeal(self, case_id: int, appeal_kind: str, *, actor: str | Actor, note: str = "") -> Case:
        """An appeal lodged against the decision (行政复议 / 行政诉讼);
        execution goes on meanwhile (行政处罚法 第七十三条).
        """
        if appeal_kind not in self.wf.appeal_kinds:
            raise CaseError(
                f"appeal kind must be one of {sorted(self.wf.appeal_kinds)}, got {appeal_kind!r}",
                f"复议诉讼类型须为 {sorted(self.wf.appeal_kinds)} 之一",
                field="appeal_kind",
            )

        def apply(c, to, s, who):
            c.appeal_kind = appeal_kind

        return self._step(case_id, "appeal", actor, note, {"appeal_kind": appeal_kind}, apply)

    def uphold(self, case_id: int, *, actor: str | Actor, note: str = "") -> Case:
        """The appeal's outcome: the decision stands (维持)."""
        return self._step(case_id, "uphold", actor, note, {"outcome": "upheld"})

    def revoke(self, case_id: int, *, actor: str | Actor, note: str = "") -> Case:
        """The appeal's outcome: the decision is revoked (撤销); the credit points it awarded are withdrawn."""
        from yibao.supervision.credit import withdraw_points

        def apply(c, to, s, who):
            withdraw_points(s, c.id, reason=f"case {c.id}: decision revoked on appeal ({c.appeal_kind})")

        return self._step(case_id, "revoke", actor, note, {"outcome": "revoked"}, apply)

    def close(self, case_id: int, *, actor: str | Actor, note: str = "") -> Case:
        return self._step(case_id, "close", actor, note, {})

    # --- reading ---------------------------------------------------------------------------------------

    def events(self, case_id: int) -> list[CaseEvent]:
        with session_scope(self.engine) as s:
            return list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))

    def get(self, case_id: int) -> Case:
        with session_scope(self.engine) as s:
            c = s.get(Case, case_id)
            if c is None:
                raise CaseError(f"no case {case_id}", f"案件 {case_id} 不存在", field="case_id")
            return c

    def list(self, *, state: str | None = None, subject_code: str | None = None, limit: int = 100) -> list[Case]:
        if state is not None and state not in self.wf.states:
            raise CaseError(
                f"unknown state {state!r}; known: {sorted(self.wf.states)}", f"未知状态 {state!r}", field="state"
            )
        q = select(Case).order_by(Case.id.desc()).limit(limit)
        if state:
            q = q.where(Case.state == state)
        if subject_code:
            q = q.where(Case.subject_code == subject_code)
        with session_scope(self.engine) as s:
            return list(s.scalars(q))


def case_dict(c: Case, wf: Workflow | None = None) -> dict[str, Any]:
    wf = wf or default_workflow()
    d = {
        k: getattr(c, k)
        for k in (
            "id",
            "state",
            "subject_kind",
            "subject_code",
            "clue_kind",
            "source",
            "violation",
            "procedure",
            "loss_fen",
            "band",
            "fine_fen",
            "recovered_fen",
            "fine_paid_fen",
            "major",
            "legal_review_passed",
            "transferred_to",
            "appeal_kind",
        )
    }
    d["state_zh"] = wf.states.get(c.state, c.state)
    for k in ("decided_at", "created_at", "updated_at"):
        v = getattr(c, k)
        d[k] = v.isoformat() if v else None
    return d


def event_dict(e: CaseEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "action": e.action,
        "from_state": e.from_state,
        "to_state": e.to_state,
        "actor": e.actor,
        "note": e.note,
        "at": e.at.isoformat() if e.at else None,
        "payload": json.loads(e.payload or "{}"),
    }


def _missing(action: str, key: str):
    raise CaseError(f"{action} needs {key}", f"{action} 缺少参数 {key}", field=key)
