"""Supervision benchmark: 事后 scan of the whole rule library, 事中 per-claim latency, precision/recall.

    python benchmarks/bench_supervision.py --people 600000 --dir /tmp/sv_bench   # about 10 M fee lines

1. Generates a SYNTHETIC region with the default fraud mix (``DEFAULT_RATES``) unless ``--dir``
   already holds one of that size (its purchase table too: ``yibao synth`` writes it).
2. Runs every post-care rule (DuckDB SQL over the Parquet tables, ``--threads`` threads), timing
   each, and extrapolates linearly to 100 M fee lines (issue target: < 10 min on 2 cores).
3. Runs analytics + ranked queue and scores rules and queue on the ground truth (targets: recall
   >= 0.95, precision >= 0.9 in the top of the queue).
4. Times ``check_claim`` (事中) over ``--claims`` claims built from the region (target < 5 ms/claim).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import time
from pathlib import Path

import duckdb


def _gen(d: Path, people: int, seed: int) -> None:
    from yibao.synth.patterns import DEFAULT_RATES
    from yibao.synth.region import write_parquet

    m = d / "manifest.json"
    if (
        m.exists()
        and json.loads(m.read_text())["people"] == people
        and json.loads(m.read_text())["patterns"] == DEFAULT_RATES
        and "purchase" in json.loads(m.read_text()).get("tables", {})
    ):  # an older region's purchases came from its labels
        print(f"reusing region in {d}")
        return
    t = time.perf_counter()
    write_parquet(d, people, seed, patterns=DEFAULT_RATES)
    print(f"generated {people:,} people in {time.perf_counter() - t:.1f} s")


def _claims(d: Path, n: int):
    """``n`` claims of the region as settlement ``Claim`` objects with their person's history."""
    from yibao.settlement.rules import Claim, FeeLine, PersonFacts
    from yibao.supervision.incare import History, PastAdmission

    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    enc = con.execute(
        f"""SELECT e.*, i.hosp_lv, p.gend, p.brdy, p.insutype, p.psn_type, p.insuplc_admdvs
            FROM (SELECT * FROM read_parquet('{d}/encounter.parquet') USING SAMPLE {n} ROWS (reservoir, 7)) e
            JOIN read_parquet('{d}/institution.parquet') i USING (fixmedins_code)
            JOIN read_parquet('{d}/person.parquet') p USING (psn_no)"""
    ).df()
    con.register("ids", enc[["mdtrt_id", "psn_no"]])
    lines = con.execute(
        f"SELECT f.* FROM read_parquet('{d}/fee_detail.parquet') f JOIN ids USING (mdtrt_id) ORDER BY mdtrt_id, "
        "feedetl_sn"
    ).df()
    adm = con.execute(
        f"SELECT e.* FROM read_parquet('{d}/encounter.parquet') e WHERE med_type = '21' AND psn_no IN (SELECT psn_no "
        "FROM ids)"
    ).df()
    by_enc = {k: g for k, g in lines.groupby("mdtrt_id")}
    hist = {}
    for psn, g in adm.groupby("psn_no"):
        death = g.loc[g.dscg_way == "5", "endtime"]
        hist[psn] = History(
            tuple(
                PastAdmission(
                    r.mdtrt_id, r.fixmedins_code, r.dise_codg, r.begntime.to_pydatetime(), r.endtime.to_pydatetime()
                )
                for r in g.itertuples()
            ),
            death.min().to_pydatetime() if len(death) else None,
        )
    out = []
    for r in enc.itertuples():
        ls = by_enc.get(r.mdtrt_id)
        if ls is None:
            continue
        fl = tuple(
            FeeLine(
                int(x.feedetl_sn),
                x.med_list_codg,
                int(x.cnt_milli),
                int(x.pric),
                int(x.det_item_fee_sumamt),
                x.rxno,
                int(x.prd_days),
                bool(x.rx_circ_flag),
            )
            for x in ls.itertuples()
        )
        person = PersonFacts(
            r.psn_no,
            r.insutype,
            r.psn_type,
            r.gend,
            r.brdy if isinstance(r.brdy, dt.date) else r.brdy.date(),
            r.insuplc_admdvs,
        )
        other = tuple(x for x in r.other_dise_codg.split(";") if x)
        c = Claim(
            r.mdtrt_id,
            person,
            r.fixmedins_code,
            int(r.hosp_lv),
            r.med_type,
            r.begntime.to_pydatetime(),
            r.endtime.to_pydatetime(),
            r.dise_codg,
            fl,
            other,
            lt_rx_confirmed=bool(r.lt_rx_confirmed),
        )
        out.append((c, hist.get(r.psn_no)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=600_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/yibao_bench_supervision"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--claims", type=int, default=20_000)
    ap.add_argument("--skip-score", action="store_true")
    a = ap.parse_args()

    from yibao.supervision.analytics import run_analytics
    from yibao.supervision.batch import scan
    from yibao.supervision.incare import check_claim
    from yibao.supervision.scoring import pattern_recall, read_truth, score_queue, score_rules

    a.dir.mkdir(parents=True, exist_ok=True)
    _gen(a.dir, a.people, a.seed)

    t = time.perf_counter()
    res = scan(a.dir, threads=a.threads)
    wall = time.perf_counter() - t
    per100m = wall * 100_000_000 / res.lines
    print(
        f"\n事后 scan: {len(res.hits):,} hits over {res.lines:,} fee lines / {res.encounters:,} encounters in "
        f"{wall:.1f} s "
        f"({res.lines / wall:,.0f} lines/s); extrapolated to 100 M lines: {per100m / 60:.1f} min (target < 10 min)"
    )
    for k, v in sorted(res.seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<18} {v:7.2f} s")
    print(f"peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")

    if not a.skip_score:
        t = time.perf_counter()
        an = run_analytics(a.dir, res.hits)
        print(f"\nanalytics (peers, rings, queue): {time.perf_counter() - t:.1f} s")
        truth = read_truth(a.dir)
        sc = score_rules(res.hits, truth, extra={"SV-RING-01": an["rings"]})
        print(sc.to_string(index=False))
        print(
            pattern_recall(res.hits, truth, extra={"SV-RING-01": an["rings"]})[
                ["pattern", "labelled", "found", "recall"]
            ].to_string(index=False)
        )
        print(score_queue(an["queue"], truth, a.dir).to_string(index=False))

    claims = _claims(a.dir, a.claims)
    from yibao.codes.medlist import MedList

    cat = MedList.load().items
    check_claim(claims[0][0], catalog=cat, history=claims[0][1])  # warm up (rule book load)
    times = []
    verdicts = {"pass": 0, "warn": 0, "refuse": 0}
    for c, h in claims:
        t0 = time.perf_counter_ns()
        v = check_claim(c, catalog=cat, history=h)
        times.append(time.perf_counter_ns() - t0)
        verdicts[v.action] += 1
    times.sort()
    ms = [x / 1e6 for x in times]
    print(
        f"\n事中 check_claim over {len(ms):,} claims (mean {statistics.mean(len(c.lines) for c, _ in claims):.1f} "
        "lines): "
        f"mean {statistics.mean(ms):.3f} ms, p50 {ms[len(ms) // 2]:.3f} ms, p99 {ms[int(len(ms) * 0.99)]:.3f} ms, max "
        f"{ms[-1]:.3f} ms (target < 5 ms); {verdicts}"
    )


if __name__ == "__main__":
    main()
