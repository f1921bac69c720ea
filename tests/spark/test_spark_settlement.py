"""The Spark engine (Spark 引擎) settles a SYNTHETIC region's year to the same rows, to the fen, as the streamed engine.

Spark runs in local mode (``local[2]``), started once for the module; the
test is skipped, with the reason, only when pyspark or Java is missing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from yibao.spark.session import spark_missing

why = spark_missing()
pytestmark = pytest.mark.skipif(why is not None, reason=f"Spark engine: {why}")

from yibao.settlement.annual import settle_year  # noqa: E402
from yibao.synth.patterns import DEFAULT_RATES  # noqa: E402
from yibao.synth.region import write_parquet  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    from yibao.spark.session import get_session

    s = get_session("local[2]", shuffle_partitions=4)
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("region")
    write_parquet(d, 3000, 11, patterns=DEFAULT_RATES, chunk_size=1500)  # families, mutual-aid payers, fraud patterns
    return d


@pytest.fixture(scope="module")
def both(region, spark, tmp_path_factory):
    from yibao.spark.settlement import settle_year_spark

    a, b = tmp_path_factory.mktemp("duckdb"), tmp_path_factory.mktemp("spark")
    settle_year(region, out_dir=a, shard_claims=2500)
    res = settle_year_spark(region, out_dir=b, shard_claims=2500, spark=spark)
    return a, b, res


def test_settlement_equal_every_column_to_the_fen(both):
    a, b, res = both
    sa, sb = pq.read_table(a / "settlement.parquet"), pq.read_table(b / "settlement.parquet")
    assert res.batch.shards >= 4  # several shards, so the shuffle and the merge back into claim order are exercised
    assert sa.num_rows > 5000
    assert sa.schema.equals(sb.schema, check_metadata=True)
    for name in sa.column_names:
        assert sa.column(name).equals(sb.column(name)), name
    assert sum(sb.column("fund_pay_sumamt").to_pylist()) == sum(sa.column("fund_pay_sumamt").to_pylist())


def test_accumulators_and_refusals_equal(both):
    a, b, _ = both
    k = ["psn_no", "policy_year", "kind", "period"]
    acc = [pq.read_table(d / "accumulator.parquet").to_pandas().sort_values(k).reset_index(drop=True) for d in (a, b)]
    pd.testing.assert_frame_equal(acc[0], acc[1])
    rej = [
        pd.read_parquet(d / "settlement_rejected.parquet").sort_values(["mdtrt_id", "field"]).reset_index(drop=True)
        for d in (a, b)
    ]
    pd.testing.assert_frame_equal(rej[0], rej[1])


def test_repeated_claim_id_refused_and_nothing_written(region, spark, tmp_path):
    import shutil

    import pyarrow as pa

    from yibao.spark.settlement import RepeatedClaimId, settle_year_spark

    bad = tmp_path / "bad"
    shutil.copytree(region, bad)
    enc = pq.read_table(bad / "encounter.parquet")
    pq.write_table(pa.concat_tables([enc, enc.slice(0, 1)]), bad / "encounter.parquet")
    (bad / "manifest.json").unlink(missing_ok=True)
    out = tmp_path / "out"
    with pytest.raises(RepeatedClaimId) as e:
        settle_year_spark(bad, out_dir=out, spark=spark)
    assert "重复" in e.value.message_zh
    assert not out.exists() or not any(out.iterdir())
