"""A Spark session for yibao's batch jobs: local mode by default, a cluster through ``YIBAO_SPARK_MASTER``."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from yibao.core.errors import YibaoError


class SparkUnavailable(YibaoError):
    """PySpark or Java is missing, so ``--engine spark`` cannot run."""


def spark_missing() -> str | None:
    """Why Spark cannot start here (``None`` when it can)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'yibao[spark]')"
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "no Java runtime (java on PATH or JAVA_HOME)"
    return None


def get_session(master: str | None = None, shuffle_partitions: int | None = None):
    """The active Spark session, started once: ``master`` or ``$YIBAO_SPARK_MASTER`` or ``local[2]``.

    Session time zone is UTC so timestamps cross Spark unchanged (the executors
    cast them back to the contract's zone, a metadata-only change).  In local mode the Python workers run
    this interpreter unless ``PYSPARK_PYTHON`` says otherwise; on a cluster, set ``PYSPARK_PYTHON`` to the
    executors' interpreter.
    """
    why = spark_missing()
    if why:
        raise SparkUnavailable(f"--engine spark: {why}", f"无法使用 Spark 引擎：{why}")
    from pyspark.sql import SparkSession

    master = master or os.environ.get("YIBAO_SPARK_MASTER", "local[2]")
    b = (
        SparkSession.builder.appName("yibao").master(master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or 8))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )  # fmt: skip
    if master.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        # local Python workers run this interpreter (its venv's packages), not whatever python3 is on PATH:
        # `.venv/bin/yibao settle --engine spark` without an activated venv failed in the workers on `import pandas`.
        # PySpark reads only the environment variable for its workers (not spark.pyspark.python).
        os.environ["PYSPARK_PYTHON"] = sys.executable
    return b.getOrCreate()


INLINE_BYTES = 32 << 20  # a driver table larger than this reaches Spark as a Parquet file


@contextmanager
def frame_of(spark, table) -> Iterator:
    """A driver-side Arrow ``table`` as a Spark DataFrame, for the length of the ``with`` block.

    A small table goes through ``createDataFrame``; a larger one is written as Parquet and read back, because
    ``createDataFrame`` materializes the whole table in the driver's JVM heap (1 GiB by default: 10 M people's
    persons did not fit).  The file goes to ``$YIBAO_SPARK_SCRATCH`` or the system's temp
    directory, and is removed after the block; on a cluster it must be storage the executors can read.
    """
    if table.nbytes <= INLINE_BYTES:
        yield spark.createDataFrame(table)
        return
    base = os.environ.get("YIBAO_SPARK_SCRATCH") or None
    if base is not None:
        Path(base).mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="yibao-spark-", dir=base))
    try:
        yield parquet_frame(spark, table, d / "part-0.parquet")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def parquet_frame(spark, table, path: Path):
    """``table`` as a Spark DataFrame read from a Parquet file written at ``path`` (kept: the caller removes it
    when the DataFrame is no longer used; on a cluster ``path`` must be on storage the executors can read)."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return spark.read.parquet(str(path))
