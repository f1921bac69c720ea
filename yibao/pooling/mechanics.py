"""The mechanics of pooling levels and the risk-adjustment fund (统筹层次 · 风险调剂金): pure functions, integer fen.

Input: per county pool (县级统筹区) and scheme, the year's fund income and
pooled-fund spending (:class:`CountyFigures`), the arrangement, and two maps
made from the division table: county → the pool it belongs to at
``pool_level`` and pool → the adjustment fund at ``adjustment_fund.level``.

Steps, per scheme (the employee and resident funds never mix):

1. **Alone** (县级统筹): a county's result is ``income − spending``.
2. **Pools**: counties of one pool are summed (统收统支).
3. **Adjustment fund** (调剂金), if any: each pool pays in
   ``income × share`` (half up; nothing on a negative income); its deficit
   is ``spending − (income − payment)`` when positive; it asks for
   ``deficit × coverage`` (half up), at most ``income × cap share`` and at
   most ``cap``; the fund pays every request when ``opening + payments``
   suffice, else shares what it has in proportion to the requests (largest
   remainder, ties by pool code).  ``closing = opening + payments − draws``.
   A pool's balance is ``income − payment + draw − spending``.
4. **Counties under the arrangement**: a pool's balance is shared among its
   counties in proportion to their (non-negative) income — what each put in —
   by largest remainder, so the shares add up to the fen.
5. **Who gains and loses** (净转移): a county's transfer is its result under
   the arrangement minus its result alone; the adjustment fund is a party too,
   its transfer being what it kept (``closing − opening``).  The transfers
   of every scheme sum to 0 (:func:`check_conservation`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal

from yibao.core.money import NO_CAP, apply_rate
from yibao.pooling.arrangement import SCHEMES, AdjustmentFund, Arrangement, PoolingError


@dataclass(frozen=True, slots=True)
class CountyFigures:
    """One county pool's year for one scheme: fund income and spending in fen; people insured."""

    county: str
    scheme: str
    income: int
    spending: int
    people: int = 0


@dataclass(frozen=True, slots=True)
class CountyResult:
    county: str
    scheme: str
    pool: str
    people: int
    income: int
    spending: int
    alone: int
    """income − spending: the result as its own pool (县级统筹)."""
    outcome: int
    """Its share of its pool's balance under the arrangement."""

    @property
    def transfer(self) -> int:
        """Net gain (+) or loss (−) from the arrangement (净转移)."""
        return self.outcome - self.alone


@dataclass(frozen=True, slots=True)
class PoolResult:
    pool: str
    scheme: str
    counties: tuple[str, ...]
    income: int
    spending: int
    payment: int
    """Paid into the adjustment fund (上解调剂金)."""
    deficit: int
    requested: int
    draw: int
    """Received from the adjustment fund (调剂金拨付)."""

    @property
    def balance(self) -> int:
        return self.income - self.payment + self.draw - self.spending

    @property
    def uncovered(self) -> int:
        """The deficit left after the draw (left to local finance, 地方兜底)."""
        return max(0, -self.balance)


@dataclass(frozen=True, slots=True)
class FundResult:
    fund: str
    scheme: str
    pools: tuple[str, ...]
    opening: int
    income: int
    requested: int
    drawn: int

    @property
    def closing(self) -> int:
        return self.opening + self.income - self.drawn

    @property
    def transfer(self) -> int:
        """What the fund kept from the year (its side of the transfers)."""
        return self.closing - self.opening

    @property
    def short(self) -> int:
        """Requests the fund could not pay (调剂金不足)."""
        return self.requested - self.drawn


@dataclass(frozen=True)
class Simulation:
    arrangement: Arrangement
    counties: list[CountyResult]
    pools: list[PoolResult]
    funds: list[FundResult]
    notes: list[str] = field(default_factory=list)

    def by_scheme(self, scheme: str) -> Simulation:
        return Simulation(
            self.arrangement,
            [c for c in self.counties if c.scheme == scheme],
            [p for p in self.pools if p.scheme == scheme],
            [f for f in self.funds if f.scheme == scheme],
            self.notes,
        )

    def county_totals(self) -> list[dict]:
        """Per county, all schemes together: income, spending, alone, outcome, transfer."""
        acc: dict[str, dict] = {}
        for c in self.counties:
            row = acc.setdefault(
                c.county,
                {
                    "county": c.county,
                    "pool": c.pool,
                    "people": 0,
                    "income": 0,
                    "spending": 0,
                    "alone": 0,
                    "outcome": 0,
                    "transfer": 0,
                },
            )
            for k in ("people", "income", "spending", "alone", "outcome", "transfer"):
                row[k] += getattr(c, k)
        return [acc[k] for k in sorted(acc)]


def apportion(total: int, weights: Sequence[int], keys: Sequence[str]) -> list[int]:
    """``total`` fen split in proportion to ``weights`` (≥ 0) by largest remainder: the parts add up exactly.

    Ties of remainder go to the smaller key.  All-zero weights split equally.
    A negative total is split as its opposite, then negated.
    """
    if len(weights) != len(keys) or not keys:
        raise PoolingError("apportion needs one weight per key", "分摊权重与对象数量不符")
    if any(w < 0 for w in weights):
        raise PoolingError("apportion weights must not be negative", "分摊权重不能为负")
    if total < 0:
        return [-x for x in apportion(-total, weights, keys)]
    if sum(weights) == 0:
        weights = [1] * len(keys)
    w_sum = sum(weights)
    parts = [total * w // w_sum for w in weights]
    rems = [total * w % w_sum for w in weights]
    left = total - sum(parts)
    order = sorted(range(len(keys)), key=lambda i: (-rems[i], keys[i]))
    for i in order[:left]:
        parts[i] += 1
    return parts


def _check_figures(figures: Iterable[CountyFigures], pool_of: Mapping[str, str]) -> list[CountyFigures]:
    rows = list(figures)
    if not rows:
        raise PoolingError("no county figures to simulate", "没有县级统筹区的收支数据")
    seen: set[tuple[str, str]] = set()
    for f in rows:
        if f.scheme not in SCHEMES:
            raise PoolingError(
                f"county {f.county}: unknown scheme {f.scheme!r} (give {', '.join(SCHEMES)})",
                f"统筹区 {f.county}: 未知险种 {f.scheme!r}",
                field="scheme",
            )
        for k in ("income", "spending", "people"):
            v = getattr(f, k)
            if not isinstance(v, int) or isinstance(v, bool):
                raise PoolingError(
                    f"county {f.county} {f.scheme}: {k} must be integer fen, not {v!r}",
                    f"统筹区 {f.county} {f.scheme}: {k} 须为整数 (分)",
                    field=k,
                )
        if f.spending < 0 or f.people < 0:
            raise PoolingError(
                f"county {f.county} {f.scheme}: spending and people must not be negative",
                f"统筹区 {f.county} {f.scheme}: 支出与人数不能为负",
                field="spending",
            )
        if (f.county, f.scheme) in seen:
            raise PoolingError(
                f"county {f.county} {f.scheme} is given twice", f"统筹区 {f.county} {f.scheme} 重复", field="county"
            )
        seen.add((f.county, f.scheme))
        if f.county not in pool_of:
            raise PoolingError(
                f"county {f.county} is not a county pool of the arrangement",
                f"{f.county} 不是该安排的县级统筹区",
                field="county",
            )
    return rows


def _check_fund_of(rows: list[CountyFigures], pool_of: Mapping[str, str], fund_of: Mapping[str, str] | None) -> None:
    """With an adjustment fund, every pool must belong to one."""
    if fund_of is None:
        raise PoolingError(
            "the arrangement has an adjustment fund: give each pool's fund",
            "该安排设有调剂金: 须给出各统筹区所属调剂金",
        )
    missing = sorted({pool_of[f.county] for f in rows} - set(fund_of))
    if missing:
        raise PoolingError(f"pools without an adjustment fund: {missing}", f"以下统筹区无所属调剂金: {missing}")


def _fund_requests(
    fund_rule: AdjustmentFund, scheme: str, income: dict[str, int], spending: dict[str, int]
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Per pool: its payment into the fund (上解), its deficit after paying, and what it asks back (capped)."""
    payment, deficit, requested = {}, {}, {}
    share = fund_rule.share_of_income.of(scheme)
    for p in income:
        payment[p] = apply_rate(max(income[p], 0), share)
        deficit[p] = max(0, spending[p] - (income[p] - payment[p]))
        ask = apply_rate(deficit[p], fund_rule.coverage_ratio)
        cap = NO_CAP
        if fund_rule.cap_share_of_income is not None:
            cap = min(cap, apply_rate(max(income[p], 0), fund_rule.cap_share_of_income))
        if fund_rule.cap_yuan is not None:
            cap = min(cap, fund_rule.cap_yuan.of(scheme))
        requested[p] = min(ask, cap)
    return payment, deficit, requested


def _fund_draws(
    fund_rule: AdjustmentFund,
    scheme: str,
    pools: Iterable[str],
    fund_of: Mapping[str, str],
    payment: dict[str, int],
    requested: dict[str, int],
    draw: dict[str, int],
) -> list[FundResult]:
    """Each fund pays its pools' requests in full, or apportions what it holds; fills ``draw`` per pool."""
    out: list[FundResult] = []
    by_fund: dict[str, list[str]] = defaultdict(list)
    for p in sorted(pools):
        by_fund[fund_of[p]].append(p)
    for fund, ps in sorted(by_fund.items()):
        opening = fund_rule.opening_balance_yuan.of(scheme)
        fund_in = sum(payment[p] for p in ps)
        asked = sum(requested[p] for p in ps)
        available = opening + fund_in
        if asked <= available:
            for p in ps:
                draw[p] = requested[p]
        else:
            for p, d in zip(ps, apportion(available, [requested[p] for p in ps], ps), strict=True):
                draw[p] = d
        out.append(FundResult(fund, scheme, tuple(ps), opening, fund_in, asked, sum(draw[p] for p in ps)))
    return out


def _simulate_scheme(
    mine: list[CountyFigures],
    scheme: str,
    fund_rule: AdjustmentFund | None,
    pool_of: Mapping[str, str],
    fund_of: Mapping[str, str] | None,
) -> tuple[list[CountyResult], list[PoolResult], list[FundResult]]:
    """One scheme's counties (sorted), pools and funds."""
    members: dict[str, list[CountyFigures]] = defaultdict(list)
    for f in mine:
        members[pool_of[f.county]].append(f)
    income = {p: sum(f.income for f in fs) for p, fs in members.items()}
    spending = {p: sum(f.spending for f in fs) for p, fs in members.items()}
    payment = {p: 0 for p in members}
    deficit = {p: 0 for p in members}
    requested = {p: 0 for p in members}
    draw = {p: 0 for p in members}
    funds_out: list[FundResult] = []
    if fund_rule is not None:
        assert fund_of is not None  # checked by _check_fund_of
        payment, deficit, requested = _fund_requests(fund_rule, scheme, income, spending)
        funds_out = _fund_draws(fund_rule, scheme, members, fund_of, payment, requested, draw)
    counties_out: list[CountyResult] = []
    pools_out: list[PoolResult] = []
    for p in sorted(members):
        fs = members[p]
        pr = PoolResult(
            p,
            scheme,
            tuple(f.county for f in fs),
            income[p],
            spending[p],
            payment[p],
            deficit[p],
            requested[p],
            draw[p],
        )
        pools_out.append(pr)
        shares = apportion(pr.balance, [max(f.income, 0) for f in fs], [f.county for f in fs])
        for f, share in zip(fs, shares, strict=True):
            counties_out.append(
                CountyResult(f.county, scheme, p, f.people, f.income, f.spending, f.income - f.spending, share)
            )
    return counties_out, pools_out, funds_out


def simulate(
    figures: Iterable[CountyFigures],
    arrangement: Arrangement,
    pool_of: Mapping[str, str],
    fund_of: Mapping[str, str] | None = None,
) -> Simulation:
    """Run one arrangement over a year's county figures (see the module docstring for the steps)."""
    rows = _check_figures(figures, pool_of)
    fund_rule = arrangement.adjustment_fund
    if fund_rule is not None:
        _check_fund_of(rows, pool_of, fund_of)
    counties_out: list[CountyResult] = []
    pools_out: list[PoolResult] = []
    funds_out: list[FundResult] = []
    for scheme in SCHEMES:
        mine = sorted((f for f in rows if f.scheme == scheme), key=lambda f: f.county)
        if not mine:
            continue
        counties, pools, funds = _simulate_scheme(mine, scheme, fund_rule, pool_of, fund_of)
        counties_out += counties
        pools_out += pools
        funds_out += funds
    sim = Simulation(arrangement, counties_out, pools_out, funds_out)
    check_conservation(sim)
    return sim


def check_conservation(sim: Simulation) -> None:
    """Raise if money was made or lost: per scheme, transfers (counties + funds) sum to 0 and totals hold."""
    for scheme in SCHEMES:
        s = sim.by_scheme(scheme)
        if not s.counties:
            continue
        transfers = sum(c.transfer for c in s.counties) + sum(f.transfer for f in s.funds)
        alone = sum(c.alone for c in s.counties)
        pooled = sum(p.balance for p in s.pools)
        kept = sum(f.transfer for f in s.funds)
        if transfers != 0 or pooled + kept != alone or sum(c.outcome for c in s.counties) != pooled:
            raise AssertionError(
                f"pooling simulation does not conserve money for {scheme}: transfers sum to {transfers}"
            )
        if sum(p.payment for p in s.pools) != sum(f.income for f in s.funds) or sum(p.draw for p in s.pools) != sum(
            f.drawn for f in s.funds
        ):
            raise AssertionError(f"adjustment fund books do not match the pools for {scheme}")


def scale_spending(figures: Iterable[CountyFigures], factor: Decimal) -> list[CountyFigures]:
    """A what-if (假设情景): every county's spending × ``factor``, rounded half up to the fen; income unchanged."""
    if not isinstance(factor, Decimal) or not factor.is_finite() or factor <= 0:
        raise PoolingError(
            f"the spending factor must be a positive decimal, not {factor!r}",
            "支出倍数须为正数",
            field="spending_factor",
        )
    return [
        replace(f, spending=int((Decimal(f.spending) * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP)))
        for f in figures
    ]
