"""Pooling levels and the risk-adjustment fund (统筹层次, 风险调剂金).

A simulation of county → city → province pooling over a region's fund
year: each county pool's contributions (income) and settled pooled-fund
payments (spending), then what the same year looks like when the pools are
merged (统收统支) at city or province level, or stay separate but pay a
share of their income into an adjustment fund (调剂金) that covers part of
the deficits — and who gains and who loses.

* :mod:`yibao.pooling.arrangement` — the arrangements as data
  (``yibao/data/pooling/*.yaml``), validated on load;
* :mod:`yibao.pooling.mechanics` — pure functions over integer fen;
* :mod:`yibao.pooling.figures` — per-county income and spending read from a
  data directory's Parquet tables (DuckDB);
* :mod:`yibao.pooling.report` — the rich table, HTML and XLSX outputs;
* :mod:`yibao.pooling.cli`, :mod:`yibao.pooling.api` — ``yibao pooling
  simulate`` and ``POST /api/v1/pooling/simulate``.
"""
