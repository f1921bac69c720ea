"""Benchmark VBP round evaluation and bid simulation (SYNTHETIC data).

    python benchmarks/bench_procurement.py                 # national-size round + simulation
    python benchmarks/bench_procurement.py --institutions 46000 --lines 20 --repeat 3

1. A national-size round: about 60 drugs, 150 specifications, 500 bids and
   46,000 institutions' demand (``--lines`` demand lines each), evaluated under
   batch-10 rules: eligibility, unit comparable prices, qualification, slots,
   revival, winners with reasons, supply regions with backups, agreed volume
   per demand line and contracts per institution.  Target: < 2 s.
   Generation and file reading are not timed.
2. Bid simulation: simulated rounds of one drug (9 competitors, 20 candidate
   prices) per second through the batch-10 and batch-11 rule sets.  Target:
   >= 100,000 simulated rounds per second.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drugs", type=int, default=60)
    ap.add_argument("--institutions", type=int, default=46_000)
    ap.add_argument("--lines", type=int, default=20, help="demand lines per institution")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sim-rounds", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    from yibao.procurement.engine import run_round
    from yibao.procurement.integrity import build_graph, check_round, slot_groups
    from yibao.procurement.params import get_ruleset
    from yibao.procurement.simulate import Belief, simulate_bids
    from yibao.synth.procurement import generate_round

    t0 = time.perf_counter()
    sr = generate_round(
        drugs=a.drugs,
        specs_per_drug=(1, 4),
        bidders_per_drug=(4, 6),
        institutions=a.institutions,
        lines_per_institution=a.lines,
        regions=31,
        seed=a.seed,
    )
    inp = sr.round
    n_specs = sum(len(e.specs) for e in inp.catalog.values())
    print(
        f"SYNTHETIC round: {len(inp.catalog)} drugs, {n_specs} specifications, {len(inp.bids)} bids, "
        f"{inp.demand['institution_id'].nunique():,} institutions, {len(inp.demand):,} demand lines "
        f"(generated in {time.perf_counter() - t0:.1f} s, not timed)"
    )
    rules = get_ruleset("national-batch-10")
    times = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        g = build_graph(inp.firms, sr.relations, inp.bids)
        res = run_round(inp, rules, slot_group=slot_groups(g, inp.bids))
        flags = check_round(g, inp.bids, rules, inp.round_date)
        times.append(time.perf_counter() - t)
    winners = sum(len(d.winners) for d in res.drugs.values())
    print(
        f"round evaluation (batch 10, incl. integrity graph): best {min(times):.2f} s, median "
        f"{sorted(times)[len(times) // 2]:.2f} s "
        f"over {a.repeat} runs; {winners} winners, {len(res.contracts):,} contracts, {len(flags)} integrity flags  "
        "[target < 2 s]"
    )

    beliefs = [Belief("lognormal", (1.0 + 0.05 * i, 0.3), accept_revival=i % 2 == 0) for i in range(9)]
    prices = [f"{0.30 + 0.07 * i:.2f}" for i in range(20)]
    for name in ("national-batch-10", "national-batch-11"):
        r = get_ruleset(name)
        simulate_bids(r, beliefs, prices, max_unit_price_yuan="2.00", base_units=10_000_000, rounds=1000)  # warm-up
        best = None
        for _ in range(3):
            res = simulate_bids(
                r,
                beliefs,
                prices,
                max_unit_price_yuan="2.00",
                base_units=10_000_000,
                rounds=a.sim_rounds,
                seed=a.seed,
                accept_revival=True,
            )
            rate = res.rounds / res.seconds
            best = max(best or 0, rate)
        print(
            f"bid simulation ({name}, 9 competitors, 20 prices): {best:,.0f} simulated rounds/s "
            f"({res.rounds:,} per run)  [target >= 100,000/s]"
        )


if __name__ == "__main__":
    main()
