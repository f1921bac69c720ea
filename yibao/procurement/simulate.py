"""Bid simulation (报价模拟) and rule what-if (规则对比).

* :func:`simulate_bids` — for a firm: given beliefs about competitors' unit
  comparable prices (distributions), the probability of winning and the
  expected revenue for each candidate price, by Monte Carlo through the real
  rule set (max-shortlisted table at N eligible bidders, shortlist,
  qualification paths within it, anchor, elimination step, revival of
  shortlisted firms, volume shares).  Vectorised with NumPy: all prices are
  integers in 0.0001 yuan, every rule test is integer arithmetic.
* :func:`compare_rulesets` — for an office: the same round under two rule
  sets, side by side.

Simplifications (stated in every result): all bids are on the representative
specification; tie-breaks are not modelled (``tie_wins`` says whether the firm
wins ties); slot reductions (batch 10) and A/B grouping are not simulated;
a winner's volume is the agreed volume split equally among winners.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd

from yibao.core.errors import YibaoError
from yibao.core.money import ratio_to_bp
from yibao.procurement.domain import RoundInput
from yibao.procurement.params import QualificationRules, RuleSet, SelectionRules

SIMPLIFICATIONS = (
    "bids on the representative specification only; tie-breaks not modelled (tie_wins); "
    "batch-10 slot reductions and A/B grouping not simulated; winners split the agreed volume equally"
)


class SimulationError(YibaoError):
    code = "E_VBP_SIM"


@dataclass(frozen=True)
class Belief:
    """A belief about one competitor's unit comparable price, in yuan.

    ``dist``: ``uniform`` (low, high), ``triangular`` (low, mode, high) or
    ``lognormal`` (median, sigma).  ``accept_revival``: would it accept a revival price.
    """

    dist: str
    params: tuple[float, ...]
    accept_revival: bool = False

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        p = self.params
        if self.dist == "uniform" and len(p) == 2:
            x = rng.uniform(p[0], p[1], n)
        elif self.dist == "triangular" and len(p) == 3:
            x = rng.triangular(p[0], p[1], p[2], n)
        elif self.dist == "lognormal" and len(p) == 2:
            x = p[0] * np.exp(p[1] * rng.standard_normal(n))
        else:
            raise SimulationError(
                f"belief: unknown distribution {self.dist!r} with {len(p)} parameters",
                f"报价分布无效: {self.dist!r}",
                field="dist",
            )
        # prices are drawn in yuan and held as integer 0.0001 yuan from here on
        return np.maximum(1, np.rint(x * 10000)).astype(np.int64)


@dataclass
class SimulationResult:
    ruleset_id: str
    rounds: int
    prices_e4: np.ndarray
    win_prob: np.ndarray
    expected_revenue_fen: np.ndarray
    expected_units: np.ndarray
    seconds: float = 0.0
    notes: str = SIMPLIFICATIONS

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "price_yuan": [str(Decimal(int(p)) / 10000) for p in self.prices_e4],
                "win_probability": self.win_prob,
                "expected_units": self.expected_units,
                "expected_revenue_yuan": [str(Decimal(int(r)) / 100) for r in self.expected_revenue_fen],
            }
        )


def _table(d: dict[int, int], n_max: int) -> np.ndarray:
    out = np.zeros(n_max + 1, dtype=np.int64)
    for n in range(1, n_max + 1):
        keys = [k for k in d if k <= n]
        out[n] = min(n, d[max(keys)]) if keys else n
    return out


def _qualifies(
    x: np.ndarray, anchor: np.ndarray, ratio: Fraction | None, cut_ok_cap: Fraction | None, max_e4: int, abs_e4: int
) -> np.ndarray:
    """Which unit prices ``x`` (per round, or rounds × bidders) pass a price test of 获得拟中选资格."""
    ok = np.zeros(x.shape, dtype=bool)
    if ratio is not None:
        a = anchor if x.ndim == 1 else anchor[:, None]
        ok |= x * ratio.denominator <= a * ratio.numerator
    if cut_ok_cap is not None:
        ok |= x * cut_ok_cap.denominator <= max_e4 * cut_ok_cap.numerator
    ok |= x <= abs_e4
    return ok


def _qualification_outcome(
    sel: SelectionRules,
    q: QualificationRules,
    comp: np.ndarray,
    comp_revive: np.ndarray,
    p: int,
    mw: np.ndarray,
    *,
    max_e4: int,
    dosage_form: str,
    tie_wins: bool,
    accept_revival: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(win, number of winners, award price) per round under the qualification method (入围, then 拟中选资格)."""
    rounds, k = comp.shape
    n_all = k + 1
    comp_min = comp.min(axis=1)
    anchor = np.minimum(comp_min, p)  # the lowest bid; batch 11 raises it below
    r = Fraction(str(q.ratio_to_anchor)) if q.ratio_to_anchor is not None else None
    absolute = q.absolute_unit_price.get(dosage_form, q.absolute_unit_price.get("all"))
    abs_e4 = int(Decimal(absolute) * 10000) if absolute is not None else -1
    cut_ok_cap = None
    if q.cut_from_max_price is not None and q.cut_alone_qualifies:
        cut_ok_cap = Fraction(1) - Fraction(str(q.cut_from_max_price))
    # 入围 first: the lowest-priced firms up to the table's number for N = all eligible bidders
    m = max(1, int(mw[n_all]))
    allp = np.sort(np.concatenate([comp, np.full((rounds, 1), p)], axis=1), axis=1)
    short = allp[:, :m]
    if q.anchor == "max_lowest_share_of_mean" and q.anchor_mean_share is not None:
        s = Fraction(str(q.anchor_mean_share))
        tot = short.sum(axis=1)
        # half-up of share × mean of the shortlisted prices, in integers
        anchor = np.maximum(allp[:, 0], (2 * s.numerator * tot + s.denominator * m) // (2 * s.denominator * m))
    # every price test is monotone in price, so the qualified firms are a prefix of the shortlist
    n_q = _qualifies(short, anchor, r, cut_ok_cap, max_e4, abs_e4).sum(axis=1)
    el = sel.elimination
    keep = np.where(n_q >= el.min_qualified, n_q - el.drop_highest, n_q) if el.enabled else n_q
    pos = (comp < p).sum(axis=1) + (0 if tie_wins else (comp == p).sum(axis=1))
    me_short = pos < m
    me_q = _qualifies(np.full(rounds, p), anchor, r, cut_ok_cap, max_e4, abs_e4)
    win = me_short & me_q & (pos < keep)
    n_win = keep.copy()
    award = np.full(rounds, p)
    rv = sel.revival
    if rv.enabled:
        top = allp[np.arange(rounds), np.clip(keep - 1, 0, n_all - 1)]
        if rv.single_winner_ratio is not None:
            sr = Fraction(str(rv.single_winner_ratio))
            top = np.where(keep == 1, (2 * allp[:, 0] * sr.numerator + sr.denominator) // (2 * sr.denominator), top)
        # a competitor's shortlist position: lower prices, me on a tie I win, earlier competitors on a tie
        lower = (comp[:, None, :] < comp[:, :, None]).sum(axis=2)
        tied_before = np.triu(np.ones((k, k), dtype=bool), 1).T[None, :, :] & (comp[:, None, :] == comp[:, :, None])
        cpos = lower + tied_before.sum(axis=2) + (p < comp) + ((p == comp) if tie_wins else 0)
        comp_q = _qualifies(comp, anchor, r, cut_ok_cap, max_e4, abs_e4)
        revived_comp = ((cpos < m) & ~comp_q & comp_revive[None, :]).sum(axis=1)
        n_win = n_win + np.where(keep > 0, revived_comp, 0)
        if accept_revival:
            rev = me_short & ~me_q & (keep > 0)
            win = win | rev
            award = np.where(rev, np.minimum(top, p), award)
            n_win = n_win + rev
    return win, n_win, award


def simulate_bids(
    rules: RuleSet,
    beliefs: list[Belief],
    candidate_prices_yuan: Sequence[str | Decimal],
    *,
    max_unit_price_yuan: str | Decimal,
    base_units: int,
    dosage_form: str = "oral_solid",
    antibiotic: bool = False,
    injectable: bool = False,
    accept_revival: bool = False,
    tie_wins: bool = False,
    rounds: int = 10_000,
    seed: int = 0,
) -> SimulationResult:
    """Win probability and expected revenue per candidate unit price (Monte Carlo)."""
    import time

    t0 = time.perf_counter()
    sel = rules.selection
    if sel.grouping.enabled or rules.goods != "drug":
        raise SimulationError(
            f"{rules.id}: the simulator does not model A/B grouping or consumables",
            f"{rules.id}: 模拟器不支持分组或耗材规则",
            field="rules",
        )
    if not beliefs:
        raise SimulationError(
            "at least one competitor belief is needed", "至少需要一个竞争对手报价分布", field="beliefs"
        )
    rng = np.random.default_rng(seed)
    k = len(beliefs)
    comp = np.empty((rounds, k), dtype=np.int64)
    for j, b in enumerate(beliefs):
        comp[:, j] = b.draw(rng, rounds)
    comp_revive = np.array([b.accept_revival for b in beliefs], dtype=bool)
    max_e4 = int(Decimal(str(max_unit_price_yuan)) * 10000)
    prices = np.array([int(Decimal(str(p)) * 10000) for p in candidate_prices_yuan], dtype=np.int64)
    if (prices <= 0).any() or (prices > max_e4).any():
        raise SimulationError(
            "candidate prices must be > 0 and not above the maximum valid price",
            "候选报价必须大于 0 且不高于最高有效申报价",
            field="candidate_prices",
        )
    n_all = k + 1
    mw = _table(sel.max_winners, n_all) if sel.max_winners else np.arange(n_all + 1)
    share_bp = np.array(
        [0]
        + [ratio_to_bp(rules.share_for(n, antibiotic=antibiotic, injectable=injectable)) for n in range(1, n_all + 2)],
        dtype=np.int64,
    )
    q = sel.qualification
    comp_min = comp.min(axis=1)
    win_prob = np.zeros(len(prices))
    exp_units = np.zeros(len(prices))
    exp_rev = np.zeros(len(prices), dtype=np.int64)
    for i, p in enumerate(prices):
        if sel.method == "lowest_n":
            below = (comp < p).sum(axis=1) + (0 if tie_wins else (comp == p).sum(axis=1))
            win = below < (sel.lowest_n or 1)
            n_win = np.minimum(n_all, sel.lowest_n or 1)
            n_win = np.full(rounds, n_win)
            award = np.full(rounds, p)
        elif sel.method == "largest_cut":
            win = (p < comp_min) | (tie_wins & (p == comp_min))
            n_win = np.ones(rounds, dtype=np.int64)
            award = np.full(rounds, p)
        else:
            assert q is not None
            win, n_win, award = _qualification_outcome(
                sel,
                q,
                comp,
                comp_revive,
                p,
                mw,
                max_e4=max_e4,
                dosage_form=dosage_form,
                tie_wins=tie_wins,
                accept_revival=accept_revival,
            )
        n_win = np.maximum(n_win, 1)
        units = base_units * share_bp[np.minimum(n_win, n_all + 1)] // 10000 // n_win
        rev_fen = np.where(win, units * award // 100, 0)
        win_prob[i] = win.mean()
        exp_units[i] = np.where(win, units, 0).mean()
        exp_rev[i] = int(rev_fen.sum()) // rounds
    return SimulationResult(
        rules.id, rounds * len(prices), prices, win_prob, exp_rev, exp_units, time.perf_counter() - t0
    )


# ---------------------------------------------------------------------------
# what-if for an office


@dataclass
class Comparison:
    a: str
    b: str
    bidders: pd.DataFrame
    drugs: pd.DataFrame
    totals: dict[str, int] = field(default_factory=dict)


def compare_rulesets(inp: RoundInput, rules_a: RuleSet, rules_b: RuleSet, **kw) -> Comparison:
    """Run the same round under two rule sets and put the results side by side."""
    from yibao.procurement.engine import run_round

    ra, rb = run_round(inp, rules_a, **kw), run_round(inp, rules_b, **kw)
    rows = []
    for drug_id, da in ra.drugs.items():
        db = rb.drugs[drug_id]
        ob = {o.firm_id: o for o in db.outcomes}
        for o in da.outcomes:
            p = ob.get(o.firm_id)
            rows.append(
                {
                    "drug_id": drug_id,
                    "firm_id": o.firm_id,
                    "comparable_yuan": str(Decimal(o.comparable_e4) / 10000),
                    f"status_{rules_a.id}": o.status,
                    f"status_{rules_b.id}": p.status if p else "",
                    "changed": (p is None) or (o.won != p.won),
                    f"reason_{rules_a.id}": o.reason_en,
                    f"reason_{rules_b.id}": p.reason_en if p else "",
                }
            )
    bidders = pd.DataFrame(rows)

    def amount(res, drug):
        c = res.contracts
        return int(c.loc[c["drug_id"] == drug, "amount_fen"].sum()) if len(c) else 0

    drows = []
    for drug_id, da in ra.drugs.items():
        db = rb.drugs[drug_id]
        drows.append(
            {
                "drug_id": drug_id,
                f"winners_{rules_a.id}": len(da.winners),
                f"winners_{rules_b.id}": len(db.winners),
                f"share_{rules_a.id}": f"{da.share_bp / 100:.0f}%",
                f"share_{rules_b.id}": f"{db.share_bp / 100:.0f}%",
                f"cycle_{rules_a.id}": da.cycle_years,
                f"cycle_{rules_b.id}": db.cycle_years,
                f"amount_fen_{rules_a.id}": amount(ra, drug_id),
                f"amount_fen_{rules_b.id}": amount(rb, drug_id),
            }
        )
    drugs = pd.DataFrame(drows)
    totals = {
        f"amount_fen_{rules_a.id}": int(ra.contracts["amount_fen"].sum()) if len(ra.contracts) else 0,
        f"amount_fen_{rules_b.id}": int(rb.contracts["amount_fen"].sum()) if len(rb.contracts) else 0,
        "bidders_changed": int(bidders["changed"].sum()) if len(bidders) else 0,
    }
    return Comparison(rules_a.id, rules_b.id, bidders, drugs, totals)
