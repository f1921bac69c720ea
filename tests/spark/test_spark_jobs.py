"""The Spark engine (Spark 引擎) gives the DuckDB path's answers on a SYNTHETIC region: the supervision scan's hits.

Spark runs in local mode (``local[2]``), one session for the module; the
tests are skipped, with the reason, only when pyspark or Java is missing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from yibao.spark.dialect import Untranslatable, to_spark
from yibao.spark.session import spark_missing

why = spark_missing()
needs_spark = pytest.mark.skipif(why is not None, reason=f"Spark engine: {why}")
PRESET_WORKER_PYTHON = os.environ.get("PYSPARK_PYTHON")  # before get_session sets it

from yibao.synth.patterns import DEFAULT_RATES  # noqa: E402
from yibao.synth.region import write_parquet  # noqa: E402

KEY = ["rule_id", "entity_id"]


@pytest.fixture(scope="module")
def spark():
    from yibao.spark.session import get_session

    s = get_session("local[2]", shuffle_partitions=2)
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@needs_spark
def test_local_python_workers_run_this_interpreter(spark):
    """Not the python3 on PATH (a venv not activated lacks pandas there); PYSPARK_PYTHON, when set, wins."""
    rdd = spark.sparkContext.parallelize([0], 1)
    probe = rdd.map(lambda _: (__import__("sys").executable, __import__("pandas").__name__))
    assert probe.collect() == [(PRESET_WORKER_PYTHON or sys.executable, "pandas")]


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("region")
    write_parquet(d, 1000, 11, patterns=DEFAULT_RATES, chunk_size=1000)  # fraud patterns, so most rules hit
    return d


@pytest.fixture(scope="module")
def scans(region, spark):
    from yibao.spark.supervision import scan_spark
    from yibao.supervision.batch import scan

    return scan(region), scan_spark(region, spark=spark)


def test_dialect_rewrites_without_spark():
    sql = "SELECT x::VARCHAR AS a, to_json({k: a // 2})::VARCHAR, list_contains($kinds, b) FROM t -- note"
    got = to_spark(sql, {"kinds": ["11", "it's"]})
    assert got == (
        "SELECT CAST(x AS STRING) AS a , CAST(to_json(named_struct('k', a div 2), "
        "map('timestampFormat', 'yyyy-MM-dd HH:mm:ssx')) AS STRING) , "
        "array_contains(array('11', 'it\\'s') , b) FROM t"
    )
    with pytest.raises(Untranslatable):
        to_spark("SELECT mode(x) FROM t")
    with pytest.raises(Untranslatable):
        to_spark("SELECT $missing")


# DuckDB's own meaning, the edge cases of each rewrite: Feb 29 birthdays, empty lists, negative integer division
EDGES = {
    "age_feb29": "date_sub('year', DATE '2000-02-29', DATE '2001-02-28')",
    "age_eom": "date_sub('year', DATE '2000-03-31', DATE '2001-03-30')",
    "age_leap": "date_sub('year', DATE '2000-02-28', DATE '2004-02-29')",
    "bool_or_empty": "list_bool_or(list_transform(list_filter([''], lambda d: d <> ''), lambda d: starts_with(d, 'A')))",  # noqa: E501
    "bool_or_false": "list_bool_or(list_transform(['B1', 'C'], lambda d: starts_with(d, 'A')))",
    "has_any": "list_has_any(string_split('a;b', ';'), ['b'])",
    "div_neg": "-7 // 2",
    "days": "date_diff('day', '2025-03-01 23:30:00+08'::TIMESTAMPTZ, '2025-03-02 00:10:00+08'::TIMESTAMPTZ)",
}
FIRST = "first(c ORDER BY n DESC, c)"  # the most frequent, ties to the smallest
ROWS = "VALUES ('b', 2), ('a', 2), ('z', 1) AS v(c, n)"


@needs_spark
def test_rewrites_keep_duckdb_meaning(spark):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    want = con.execute("SELECT " + ", ".join(f"{e} AS {k}" for k, e in EDGES.items())).fetchone()
    spark.conf.set("spark.sql.session.timeZone", "Asia/Shanghai")
    got = spark.sql("SELECT " + ", ".join(f"{to_spark(e)} AS {k}" for k, e in EDGES.items())).collect()[0]
    first = (con.execute(f"SELECT {FIRST} FROM ({ROWS.replace(' AS ', ') ')}").fetchone()[0],
             spark.sql(f"SELECT {to_spark(FIRST)} FROM {ROWS}").collect()[0][0])  # fmt: skip
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert dict(zip(EDGES, want, strict=True)) == {k: got[k] for k in EDGES}
    assert want[:3] == (1, 0, 4) and want[3] is None and want[4] is False and want[6] == -3 and want[7] == 1
    assert first == ("a", "a")


@needs_spark
def test_scan_hits_identical_to_duckdb(scans):
    a, b = scans
    assert b.not_on_spark == {} and b.skipped == {}  # every SQL rule ran on Spark, the stock rule included
    assert set(b.on_driver) == {"SV-SPLIT-01", "SV-UPCODE-01", "SV-IMP-01"}  # the Python coding detector
    ha, hb = (h.sort_values(KEY).reset_index(drop=True) for h in (a.hits, b.hits))
    assert hb["amount"].dtype == "int64" and hb["severity"].dtype == "int8"
    ha, hb = (h.astype({c: object for c in h.columns if c not in ("amount", "severity")}) for h in (ha, hb))
    assert len(ha) > 100 and ha["rule_id"].nunique() >= 12
    pd.testing.assert_frame_equal(ha, hb)  # rows, rule ids, people, doctors, fen at stake, evidence JSON text
    assert int(hb["amount"].sum()) == int(ha["amount"].sum())
    assert (b.lines, b.encounters) == (a.lines, a.encounters)
    dup = hb[hb.rule_id == "SV-DUP-01"]
    assert len(dup) and "+08" in json.loads(dup.evidence.iloc[0])["fee_ocur_time"]


@needs_spark
def test_rule_without_spark_rewrite_is_listed_not_dropped(region, spark):
    from yibao.spark.supervision import scan_spark
    from yibao.supervision.knowledge import default_rulebook

    book = default_rulebook()
    sql = dict(book.sql)
    sql["SV-LRX-02"] = sql["SV-LRX-02"].replace("max(f.prd_days)", "mode(f.prd_days)")
    bad = dataclasses.replace(book, sql=sql)
    res = scan_spark(region, bad, rules=["SV-LRX-01", "SV-LRX-02"], spark=spark)
    assert set(res.not_on_spark) == {"SV-LRX-02"} and "mode" in res.not_on_spark["SV-LRX-02"]
    assert "未在 Spark 上运行" in res.skipped["SV-LRX-02"][1]
    assert set(res.hits.rule_id) == {"SV-LRX-01"}


@pytest.fixture(params=["inline", "via-parquet"])
def handover(request, monkeypatch, tmp_path):
    """Both ways a driver table reaches Spark (yibao.spark.session.frame_of): inline, or as a Parquet file."""
    import yibao.spark.session as session

    if request.param == "via-parquet":
        monkeypatch.setattr(session, "INLINE_BYTES", 0)
        monkeypatch.setenv("YIBAO_SPARK_SCRATCH", str(tmp_path / "scratch"))
    yield request.param
    if request.param == "via-parquet":
        assert list((tmp_path / "scratch").iterdir()) == []  # the hand-over file is removed after the job


@needs_spark
def test_drg_groups_identical_to_in_process(region, spark, handover):
    from yibao.payment.cases import case_view_sql, connect
    from yibao.payment.drg import group_batch, load_scheme
    from yibao.payment.grouper import GroupingInputError
    from yibao.spark.drg import group_batch_spark

    scheme = load_scheme("example-city-a")
    cases = connect().sql(case_view_sql(region)).df()
    want = group_batch(scheme, cases)
    got = group_batch_spark(scheme, cases, spark, partitions=3)  # several tasks, put back in case order
    assert len(want) > 50 and want["path"].nunique() >= 2 and want["rw_e4"].sum() > 0
    pd.testing.assert_frame_equal(want, got)
    bad = pd.concat([cases, cases.iloc[:1]], ignore_index=True)
    with pytest.raises(GroupingInputError) as e:  # refused whole, as group_frame refuses it, before Spark runs
        group_batch_spark(scheme, bad, spark)
    assert "重复" in e.value.message_zh


@needs_spark
def test_dip_points_and_clearing_identical_to_duckdb(region, spark, tmp_path, handover):
    import shutil

    from yibao.payment.cases import CodeTables, connect, load_cases
    from yibao.payment.catalog import build_catalog
    from yibao.payment.dip import settle
    from yibao.payment.params import load_dip_params
    from yibao.settlement.annual import settle_year
    from yibao.spark.dip import spark_points

    d = tmp_path / "region"
    shutil.copytree(region, d)
    settle_year(d)  # DIP reads the year's settlement shares
    params = load_dip_params("example-city-a")
    con = connect()
    cases = load_cases(con, d, params, CodeTables.default())
    cat = build_catalog(con, cases, params)
    a = settle(con, cases, cat, params)
    b = settle(con, cases, cat, params, points=spark_points(spark, partitions=3))  # several tasks
    assert len(a.cases) > 50 and a.cases["kind"].nunique() >= 2
    for name in ("cases", "periods", "institutions", "clearing"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
    assert b.annual_point_value == a.annual_point_value and (b.budget_fen, b.year) == (a.budget_fen, a.year)
    assert int(b.clearing["clearing_fen"].sum()) == int(a.clearing["clearing_fen"].sum())
