"""A deterministic synthetic pooling region (合成统筹区).

Every demo, test and benchmark runs on it until real data is loaded.  All
records are SYNTHETIC and say so (``synthetic = true``).

>>> from yibao.synth import generate_region
>>> for name, table in generate_region(1_000, seed=1):
...     ...
"""

from yibao.synth.patterns import PATTERNS, inject_patterns, register_pattern
from yibao.synth.region import DEFAULT_CHUNK, TABLE_ORDER, SynthError, collect_region, generate_region, write_parquet

__all__ = [
    "DEFAULT_CHUNK",
    "PATTERNS",
    "TABLE_ORDER",
    "SynthError",
    "collect_region",
    "generate_region",
    "inject_patterns",
    "register_pattern",
    "write_parquet",
]
