"""DRG grouping speed on the national CHS-DRG 1.1 scheme (not SAMPLE).

    python benchmarks/bench_drg.py [--cases 1000000] [--templates 20000] [--seed 7]

Builds SYNTHETIC cases from the scheme's own tables (yibao.payment.drgcases):
templates that reach every one of the 628 DRGs (and QY groups), then draws
``--cases`` rows from them with varied age and length of stay, so the file has
about ``--templates`` distinct (principal diagnosis, procedures) combinations.
Prints: scheme load time; batch cases/s (``Grouper.group_frame``, the path
``yibao drg group`` runs; NumPy/pandas, which use the cores they can); one case
at a time cases/s on one thread (``Grouper.group``); agreement of the two.
Targets (issue 12): batch >= 100,000 cases/s on 2 cores, one case >= 10,000 cases/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--templates", type=int, default=20_000)
    ap.add_argument("--scalar", type=int, default=100_000, help="cases grouped one at a time")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    from yibao.payment.drgcases import scheme_cases
    from yibao.payment.grouper import INPUT_COLUMNS, load_grouper

    t0 = time.perf_counter()
    g = load_grouper("chs-drg-1.1")
    t_load = time.perf_counter() - t0
    per = max(1, a.templates // len(g.drgs))
    t0 = time.perf_counter()
    tpl = scheme_cases(g, per_drg=per, seed=a.seed)
    t_build = time.perf_counter() - t0
    rng = np.random.default_rng(a.seed)
    pick = rng.integers(0, len(tpl), a.cases)
    df = tpl.iloc[pick].reset_index(drop=True)
    adult = df.age.astype(int) > 0
    df.loc[adult, "age"] = np.clip(df.loc[adult, "age"].astype(int) + rng.integers(-3, 4, int(adult.sum())), 1, 95)
    df["ipt_days"] = rng.integers(1, 40, len(df))
    df["case_id"] = [f"C{i:08d}" for i in range(len(df))]
    combos = df[["main_diag", "oprns"]].drop_duplicates().shape[0]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}"
    )
    print(f"scheme {g.name}: {len(g.mdcs)} MDCs, {len(g.adrgs)} ADRGs, {len(g.drgs)} DRGs; loaded in {t_load:.2f} s")
    print(
        f"cases: {len(df):,} from {len(tpl):,} templates built in {t_build:.1f} s; {combos:,} distinct (principal, "
        "procedures); "
        f"{df.expected_drg.nunique():,} distinct target groups"
    )
    t0 = time.perf_counter()
    out = g.group_frame(df[list(INPUT_COLUMNS)])
    t_batch = time.perf_counter() - t0
    hit = float((out.drg.to_numpy() == df.expected_drg.to_numpy()).mean())
    print(f"batch: {len(df):,} cases in {t_batch:.2f} s = {len(df) / t_batch:,.0f} cases/s (target >= 100,000); "
          f"{hit:.4%} in the group they were built for")  # fmt: skip
    m = min(a.scalar, len(df))
    recs = df[list(INPUT_COLUMNS)].iloc[:m].to_dict("records")
    t0 = time.perf_counter()
    one = [g.group(**r) for r in recs]
    t_one = time.perf_counter() - t0
    same = all(r.drg == d and r.status == s for r, d, s in zip(one, out.drg.iloc[:m], out.status.iloc[:m], strict=True))
    print(
        f"one case at a time (one thread): {m:,} cases in {t_one:.2f} s = {m / t_one:,.0f} cases/s (target >= 10,000); "
        f"equal to batch: {same}"
    )


if __name__ == "__main__":
    main()
