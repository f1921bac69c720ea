"""Penalties from the quantified discretion benchmarks (自由裁量基准), a pure function over data.

``discretion.yaml`` holds, per violation type, the statutory range (a
multiple of the fund's loss, or a fixed amount) and its minor / general /
serious bands, the exemptions (首违可以不罚: a first offence with slight harm,
corrected, *may* go unpunished; 没有主观过错不罚: no fault, *no* penalty) and
the procedure thresholds (summary procedure 简易程序, legal review 法制审核).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from yibao.core.money import yuan_to_fen
from yibao.core.yamldata import read_yaml
from yibao.supervision.knowledge import DATA_DIR, SupervisionDataError

Band = Literal["minor", "general", "serious"]
BANDS = ("minor", "general", "serious")


@dataclass(frozen=True)
class Facts:
    """What the investigation established."""

    violation: str  # key of discretion.yaml violations
    loss_fen: int  # the fund's loss (0 if none)
    band: Band = "general"
    first_offence: bool = False
    corrected: bool = False
    no_fault: bool = False  # the party proved it had no fault
    mitigating: bool = False
    aggravating: bool = False
    sanctions: tuple[str, ...] = ()  # e.g. ("suspension",)


@dataclass(frozen=True)
class Penalty:
    recover_fen: int  # 责令退回: the loss is always returned
    fine_min_fen: int
    fine_max_fen: int
    band: Band | None
    waived: Literal["", "may_waive", "must_waive"]
    procedure: Literal["summary", "general"]
    legal_review: bool
    basis: str
    reasons: tuple[str, ...]


class Benchmarks:
    def __init__(self, data: dict, path: str = "discretion.yaml"):
        self.path = path
        try:
            self.violations = data["violations"]
            self.exemptions = data["exemptions"]
            self.procedures = data["procedures"]
            for key, v in self.violations.items():
                if v["base"] not in ("loss", "fixed"):
                    raise SupervisionDataError(
                        f"{path}: {key}.base must be loss or fixed", f"{path}: {key}.base 无效", field=f"{key}.base"
                    )
                for b in BANDS:
                    lo, hi = Decimal(str(v["bands"][b]["min"])), Decimal(str(v["bands"][b]["max"]))
                    if lo > hi:
                        raise SupervisionDataError(
                            f"{path}: {key}.bands.{b}: min above max",
                            f"{path}: {key}.bands.{b} 下限高于上限",
                            field=f"{key}.bands.{b}",
                        )
        except KeyError as exc:
            raise SupervisionDataError(f"{path}: missing key {exc}", f"{path}: 缺少 {exc}", field=str(exc)) from exc

    @classmethod
    def load(cls, path: Path | None = None) -> Benchmarks:
        p = path or DATA_DIR / "discretion.yaml"
        return cls(read_yaml(p, what=("discretion benchmarks", "自由裁量基准"), error=SupervisionDataError), p.name)

    def penalty(self, facts: Facts) -> Penalty:
        if facts.violation not in self.violations:
            raise SupervisionDataError(
                f"unknown violation {facts.violation!r}; known: {sorted(self.violations)}",
                f"未知违法类型 {facts.violation!r}",
                field="violation",
            )
        if facts.loss_fen < 0:
            raise SupervisionDataError("loss_fen must not be negative", "基金损失不能为负", field="loss_fen")
        if facts.band not in BANDS:
            raise SupervisionDataError(f"band must be one of {BANDS}", "裁量档次无效", field="band")
        v = self.violations[facts.violation]
        ex = self.exemptions
        reasons = []
        band: Band = facts.band
        if facts.aggravating:
            band = ex["aggravating_band"]
            reasons.append("aggravating circumstances: serious band 从重")
        elif facts.mitigating:
            band = ex["mitigating_band"]
            reasons.append("mitigating circumstances: minor band 从轻")
        b = v["bands"][band]
        if v["base"] == "loss":
            lo = (Decimal(facts.loss_fen) * Decimal(str(b["min"]))).quantize(Decimal(1), ROUND_HALF_UP)
            hi = (Decimal(facts.loss_fen) * Decimal(str(b["max"]))).quantize(Decimal(1), ROUND_HALF_UP)
        else:
            lo, hi = Decimal(yuan_to_fen(str(b["min"]))), Decimal(yuan_to_fen(str(b["max"])))
        waived: Literal["", "may_waive", "must_waive"] = ""
        if facts.no_fault:
            waived = "must_waive"
            reasons.append("no fault proved: no penalty 没有主观过错不罚")
            lo = hi = Decimal(0)
        elif (
            facts.first_offence
            and facts.loss_fen <= yuan_to_fen(str(ex["first_offence"]["max_loss_yuan"]))
            and (facts.corrected or not ex["first_offence"]["requires_corrected"])
        ):
            waived = "may_waive"
            reasons.append("first offence, slight harm, corrected: may go unpunished 首违可以不罚")
            lo = Decimal(0)
        subject = v["subject"]
        summary_cap = yuan_to_fen(str(self.procedures["summary_max_fine_yuan"][subject]))
        review_min = yuan_to_fen(str(self.procedures["legal_review_min_fine_yuan"][subject]))
        procedure: Literal["summary", "general"] = "summary" if hi <= summary_cap and not facts.sanctions else "general"
        legal_review = hi >= review_min or any(s in self.procedures["legal_review_always_for"] for s in facts.sanctions)
        return Penalty(
            facts.loss_fen,
            int(lo),
            int(hi),
            band if waived != "must_waive" else None,
            waived,
            procedure,
            legal_review,
            v["article"],
            tuple(reasons),
        )


@lru_cache(maxsize=1)
def default_benchmarks() -> Benchmarks:
    return Benchmarks.load()
