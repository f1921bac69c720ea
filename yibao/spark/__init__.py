"""The Spark engine (Spark 引擎): the batch jobs of yibao run on Apache Spark, sharing the DuckDB/NumPy path's rules.

Nothing here re-states a rule: Spark shuffles the contract tables into the
same family shards the streamed engine uses and runs the same
:func:`yibao.settlement.batch.settle_batch` on each shard in an executor.
"""
