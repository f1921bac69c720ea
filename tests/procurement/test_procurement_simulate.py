"""Bid simulation agrees with the round engine; rule what-if shows the differences."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.procurement.domain import Bid, CatalogEntry, Firm, Spec
from yibao.procurement.engine import evaluate_drug
from yibao.procurement.params import get_ruleset
from yibao.procurement.simulate import Belief, SimulationError, compare_rulesets, simulate_bids
from yibao.synth.procurement import generate_round

RULES = [
    "national-batch-02",
    "national-batch-05",
    "national-batch-07",
    "national-batch-09",
    "national-batch-10",
    "national-batch-11",
    "national-expansion",
    "national-4plus7",
    "alliance-xinjiang-2n",
]


@settings(max_examples=300, deadline=None)
@given(
    rules=st.sampled_from(RULES),
    cents=st.lists(st.integers(5, 300), min_size=2, max_size=9, unique=True),
    revive=st.lists(st.booleans(), min_size=9, max_size=9),
    me_revive=st.booleans(),
)
def test_simulator_agrees_with_engine_on_fixed_prices(rules, cents, revive, me_revive):
    """With point beliefs the simulator's win (0 or 1) and winner count equal the engine's."""
    r = get_ruleset(rules)
    me, comps = cents[0], cents[1:]
    max_cents = 300
    e = CatalogEntry("D1", "x", "oral_solid", (Spec("S1", "D1", D(10), 1, max_cents, representative=True),), 9, 9)
    names = ["ME"] + [f"C{i}" for i in range(len(comps))]
    bids = [
        Bid(f"b{n}", "D1", "S1", n, c, capacity_units=10**9, accept_revival=(me_revive if n == "ME" else revive[i - 1]))
        for i, (n, c) in enumerate(zip(names, [me] + comps, strict=True))
    ]
    firms = {n: Firm(n, n) for n in names}
    res = evaluate_drug(e, bids, firms, r, round_date=dt.date(2025, 1, 1), base_units=1_000_000)
    won = {o.firm_id: o.won for o in res.outcomes}
    beliefs = [Belief("uniform", (c / 100, c / 100), revive[i]) for i, c in enumerate(comps)]
    sim = simulate_bids(
        r,
        beliefs,
        [D(me) / 100],
        max_unit_price_yuan=D(max_cents) / 100,
        base_units=1_000_000,
        accept_revival=me_revive,
        rounds=50,
    )
    assert sim.win_prob[0] == (1.0 if won["ME"] else 0.0), res.outcomes
    n_win = sum(won.values())
    if won["ME"]:
        # expected units = base x share(n winners) / n winners
        assert sim.expected_units[0] == 1_000_000 * int(r.share_for(n_win) * 10000) // 10000 // n_win


def test_win_probability_falls_with_price_and_revenue_has_an_interior_peak():
    r = get_ruleset("national-batch-10")
    beliefs = [
        Belief("lognormal", (1.0, 0.3)),
        Belief("lognormal", (1.2, 0.3), True),
        Belief("uniform", (0.6, 1.5)),
        Belief("triangular", (0.5, 0.9, 1.6)),
    ]
    res = simulate_bids(
        r,
        beliefs,
        ["0.3", "0.5", "0.7", "0.9", "1.1", "1.3"],
        max_unit_price_yuan="2.0",
        base_units=1_000_000,
        rounds=20_000,
        seed=1,
    )
    p = list(res.win_prob)
    assert all(a >= b for a, b in itertools.pairwise(p)) and p[0] > 0.95 and p[-1] < 0.2
    rev = list(res.expected_revenue_fen)
    assert max(rev) > rev[0] and max(rev) > rev[-1]
    assert res.rounds == 120_000


def test_simulator_rejects_bad_input():
    r = get_ruleset("national-batch-10")
    with pytest.raises(SimulationError, match="candidate prices"):
        simulate_bids(r, [Belief("uniform", (1, 2))], ["3.0"], max_unit_price_yuan="2.0", base_units=1)
    with pytest.raises(SimulationError, match="unknown distribution"):
        simulate_bids(r, [Belief("cauchy", (1, 2))], ["1.0"], max_unit_price_yuan="2.0", base_units=1)
    with pytest.raises(SimulationError, match="grouping"):
        simulate_bids(
            get_ruleset("alliance-guangdong-16"),
            [Belief("uniform", (1, 2))],
            ["1.0"],
            max_unit_price_yuan="2.0",
            base_units=1,
        )


def test_rule_what_if_side_by_side():
    sr = generate_round(drugs=6, institutions=200, seed=11)
    cmp = compare_rulesets(sr.round, get_ruleset("national-batch-02"), get_ruleset("national-batch-10"))
    assert len(cmp.drugs) == 6 and {"winners_national-batch-02", "winners_national-batch-10"} <= set(cmp.drugs.columns)
    changed = cmp.bidders[cmp.bidders["changed"]]
    assert cmp.totals["bidders_changed"] == len(changed) > 0
    # a rule set against itself changes nothing
    same = compare_rulesets(sr.round, get_ruleset("national-batch-10"), get_ruleset("national-batch-10"))
    assert same.totals["bidders_changed"] == 0
