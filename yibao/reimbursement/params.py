"""Manual reimbursement rules (手工报销规则) read from ``yibao/data/reimbursement/manual.yaml``.

Reasons a claim was not settled directly, the documents each needs, the review workflow (states, and which
console role may take each step), the claim deadline and the placeholder codes the engine sees.  The
supervision case workflow (:mod:`yibao.supervision.cases`) is tied to its own file's shape (clue kinds,
agencies, appeals), so this small state machine has its own model.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from yibao.core.errors import YibaoError
from yibao.core.yamldata import load_model

RULES_PATH = Path(__file__).resolve().parent.parent / "data" / "reimbursement" / "manual.yaml"


class ReimbursementError(YibaoError):
    """A manual claim or a review step refused (手工报销申请或审核被拒绝); nothing was changed."""

    code = "E_REIMBURSE"


class ReimbursementForbidden(ReimbursementError):
    """The acting user's role may not take this step (or not on this claim)."""

    code = "E_REIMBURSE_ROLE"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Named(_Frozen):
    name_zh: str


class UncodedItem(_Frozen):
    list_code: str
    name_zh: str
    chrgitm_lv: str


class Deadline(_Frozen):
    from_: dt.date = Field(alias="from")
    months: int = Field(ge=1)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Reason(_Frozen):
    name_zh: str
    provider: Literal["network", "any"]
    cross_province: bool = False
    documents: tuple[str, ...]


class Transition(_Frozen):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    from_: str = Field(alias="from")
    action: str
    to: str
    roles: tuple[str, ...] = Field(min_length=1)
    not_by: tuple[str, ...] = ()
    settles: bool = False


class Workflow(_Frozen):
    intake_roles: tuple[str, ...]
    own_claim_roles: tuple[str, ...] = ()
    editable: tuple[str, ...]
    states: dict[str, Named]
    transitions: tuple[Transition, ...]

    @model_validator(mode="after")
    def _known_states(self) -> Workflow:
        seen: set[tuple[str, str]] = set()
        for t in self.transitions:
            for st in (t.from_, t.to):
                if st not in self.states:
                    raise ValueError(f"transition {t.action!r} names unknown state {st!r}")
            if (t.from_, t.action) in seen:
                raise ValueError(f"{t.action!r} from {t.from_!r} is listed twice")
            seen.add((t.from_, t.action))
        for st in self.editable:
            if st not in self.states:
                raise ValueError(f"editable names unknown state {st!r}")
        return self

    @property
    def initial(self) -> str:
        return next(iter(self.states))

    def allowed(self, state: str) -> list[str]:
        return sorted(t.action for t in self.transitions if t.from_ == state)

    def step(self, state: str, action: str) -> Transition:
        """The transition ``action`` from ``state``; refused (bilingual, naming the allowed actions) otherwise."""
        for t in self.transitions:
            if t.from_ == state and t.action == action:
                return t
        allowed = self.allowed(state) or ["none (final state)"]
        zh = self.states[state].name_zh if state in self.states else state
        raise ReimbursementError(
            f"cannot {action} a claim in state {state!r}; allowed: {', '.join(allowed)}",
            f"报销申请处于「{zh}」状态, 不能执行 {action}; 可执行: {', '.join(allowed)}",
            field="action",
        )


class ReimbursementRules(_Frozen):
    version: int
    uncoded_item: UncodedItem
    out_of_network_prefix: str = Field(min_length=1)
    personal_account: bool
    deadline: tuple[Deadline, ...] = Field(min_length=1)
    documents: dict[str, Named]
    inpatient_documents: tuple[str, ...] = ()
    reasons: dict[str, Reason] = Field(min_length=1)
    workflow: Workflow

    @model_validator(mode="after")
    def _known_documents(self) -> ReimbursementRules:
        for name, r in self.reasons.items():
            for d in r.documents:
                if d not in self.documents:
                    raise ValueError(f"reason {name!r} needs unknown document {d!r}")
        for d in self.inpatient_documents:
            if d not in self.documents:
                raise ValueError(f"inpatient_documents names unknown document {d!r}")
        dates = [d.from_ for d in self.deadline]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise ValueError("deadline periods must be in increasing order of 'from'")
        return self

    def deadline_months(self, discharge: dt.date) -> int:
        """The claim deadline (months after discharge) in force on the day of discharge."""
        months = self.deadline[0].months
        for d in self.deadline:
            if d.from_ <= discharge:
                months = d.months
        return months

    def required_documents(self, reason: str, inpatient: bool) -> tuple[str, ...]:
        docs = list(self.reasons[reason].documents)
        if inpatient:
            docs += [d for d in self.inpatient_documents if d not in docs]
        return tuple(docs)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months (the last day of a shorter month when the day does not exist)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return dt.date(year, month, min(day.day, (nxt - dt.timedelta(days=1)).day))


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> ReimbursementRules:
    return load_model(
        path or RULES_PATH,
        ReimbursementRules,
        what=("manual reimbursement rules", "手工报销规则"),
        error=ReimbursementError,
    )
