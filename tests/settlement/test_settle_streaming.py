"""Streamed batch settlement (流式分片结算) equals the in-memory path, and its shards never split a family.

A small SYNTHETIC region (with the labelled fraud patterns, mutual-aid
payers and families) is settled twice: by ``settle_year`` (family shards
streamed from Parquet through disk, many shards) and by one in-memory
``settle_batch`` over every table.  ``settlement.parquet`` must be the same
row for row; accumulators and refused claims the same as sets (their row
order depends on sharding in both engines).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from yibao.benefits.policy import PolicyBook
from yibao.core.contract import SETTLEMENT, with_metadata
from yibao.settlement import batch as batch_mod
from yibao.settlement.annual import CLAIM_COLUMNS, LINE_COLUMNS, settle_year, settle_year_in_memory
from yibao.settlement.batch import NotStreamable, _components, family_components, settle_streamed
from yibao.settlement.catalog import Catalog
from yibao.synth.patterns import DEFAULT_RATES
from yibao.synth.region import write_parquet

INPUTS = ("person", "institution", "family_link", "med_list", "encounter", "fee_detail")


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("region")
    write_parquet(d, 4000, 11, patterns=DEFAULT_RATES, chunk_size=1500)
    return d


@pytest.fixture(scope="module")
def reference(region: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("in-memory")
    settle_year_in_memory(region, out_dir=out, workers=1)  # one settle_batch over every table
    return out


def _acc(d: Path) -> pd.DataFrame:
    k = ["psn_no", "policy_year", "kind", "period"]
    return pq.read_table(d / "accumulator.parquet").to_pandas().sort_values(k).reset_index(drop=True)


def _rej(d: Path) -> pd.DataFrame:
    return pd.read_parquet(d / "settlement_rejected.parquet").sort_values(["mdtrt_id", "field"]).reset_index(drop=True)


def assert_same(a: Path, b: Path) -> None:
    sa, sb = pq.read_table(a / "settlement.parquet"), pq.read_table(b / "settlement.parquet")
    assert sa.schema.equals(sb.schema, check_metadata=True)
    assert sa.num_rows == sb.num_rows > 0
    for name in sa.column_names:  # column by column, so a failure names the field
        assert sa.column(name).equals(sb.column(name)), name
    pd.testing.assert_frame_equal(_acc(a), _acc(b))
    pd.testing.assert_frame_equal(_rej(a), _rej(b))


def _copy_unmanaged(src: Path, dst: Path) -> Path:
    """The input tables without manifest.json (an unmanaged directory: nothing checked)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in INPUTS:
        shutil.copy(src / f"{name}.parquet", dst / f"{name}.parquet")
    return dst


def test_streamed_equals_in_memory(region: Path, reference: Path, tmp_path: Path) -> None:
    res = settle_year(region, out_dir=tmp_path, shard_claims=2000)
    assert res.batch.shards >= 5  # really cut into many shards
    assert res.batch.settlements.num_rows == pq.read_table(reference / "settlement.parquet").num_rows
    assert len(res.batch.rejected) == len(_rej(reference)) > 0
    assert res.claims == pq.ParquetFile(region / "encounter.parquet").metadata.num_rows
    assert_same(tmp_path, reference)
    assert pc.all(pq.read_table(tmp_path / "settlement.parquet").column("synthetic")).as_py()
    assert not list(tmp_path.glob(".settle-stream-*"))  # scratch removed


def test_one_shard_and_default_shard_size_agree(region: Path, reference: Path, tmp_path: Path) -> None:
    for k, shard_claims in enumerate((10**9, 200_000, 700)):
        out = tmp_path / str(k)
        settle_year(region, out_dir=out, shard_claims=shard_claims)
        assert_same(out, reference)


def test_shards_never_split_a_family(region: Path) -> None:
    seen: dict[int, dict[str, pa.Table | None]] = {}
    book = PolicyBook.default()
    settle_streamed(
        region / "person.parquet",
        region / "family_link.parquet",
        region / "encounter.parquet",
        region / "fee_detail.parquet",
        pq.read_table(region / "institution.parquet"),
        Catalog.from_table(pq.read_table(region / "med_list.parquet")),
        region / "out",
        book=book,
        claim_columns=CLAIM_COLUMNS,
        line_columns=LINE_COLUMNS,
        rename={"endtime": "setl_time"},
        settlement_schema=with_metadata(SETTLEMENT, "settlement"),
        shard_claims=1500,
        batch_rows=2000,
        on_shard=lambda k, parts: seen.__setitem__(k, parts),
    )
    assert len(seen) >= 5
    persons = pq.read_table(region / "person.parquet")
    links = pq.read_table(region / "family_link.parquet")
    shard_of: dict[str, int] = {}
    for k, parts in seen.items():
        for p in parts["person"].column("psn_no").to_pylist():
            assert p not in shard_of, f"{p} in two shards"
            shard_of[p] = k
    assert len(shard_of) == persons.num_rows  # everyone in exactly one shard
    # a family — people whose accounts interact: a patient and the relative whose account pays — lies in one shard
    enc = pq.read_table(region / "encounter.parquet", columns=["psn_no", "mulaid_payer_psn_no"])
    psn = persons.column("psn_no").to_pylist()
    row = {p: i for i, p in enumerate(psn)}
    pairs = [
        (row.get(a, -1), row.get(b, -1))
        for a, b in zip(enc.column("psn_no").to_pylist(), enc.column("mulaid_payer_psn_no").to_pylist(), strict=True)
        if b
    ]
    comp = _components(len(psn), np.array([a for a, _ in pairs]), np.array([b for _, b in pairs]))
    by_family: dict[int, set[int]] = {}
    for i, c in enumerate(comp.tolist()):
        by_family.setdefault(c, set()).add(shard_of[psn[i]])
    assert all(len(s) == 1 for s in by_family.values())
    assert sum(len(ms) > 1 for ms in pd.Series(comp).groupby(comp).groups.values()) > 20  # real families were tested
    linked = family_components(persons, links)
    assert len(set(linked.tolist())) < len(set(comp.tolist()))  # family links alone would make coarser shards
    # every claim lies with its patient (and its mutual-aid payer), every fee line with its claim
    n_claims = n_lines = n_mulaid = 0
    for k, parts in seen.items():
        c = parts["claim"]
        if c is None:
            continue
        n_claims += c.num_rows
        assert {shard_of.get(p, -1) for p in c.column("psn_no").to_pylist()} <= {k, -1}
        for payer, patient in zip(
            c.column("mulaid_payer_psn_no").to_pylist(), c.column("psn_no").to_pylist(), strict=True
        ):
            if payer in row and patient in row:
                n_mulaid += 1
                assert shard_of[payer] == k
        ids = set(c.column("mdtrt_id").to_pylist())
        if parts["line"] is not None:
            assert set(parts["line"].column("mdtrt_id").to_pylist()) <= ids
            n_lines += parts["line"].num_rows
        if parts["link"] is not None:
            ends = parts["link"].column("psn_no").to_pylist() + parts["link"].column("relative_psn_no").to_pylist()
            assert {shard_of[p] for p in ends} == {k}
    assert n_claims == pq.ParquetFile(region / "encounter.parquet").metadata.num_rows
    assert n_lines == pq.ParquetFile(region / "fee_detail.parquet").metadata.num_rows
    assert n_mulaid > 0


def test_any_physical_layout(region: Path, tmp_path: Path) -> None:
    """Lines shuffled away from their claims, tables as dataset directories, orphan lines, unknown people."""
    d = _copy_unmanaged(region, tmp_path / "messy")
    rng = np.random.default_rng(5)
    lines = pq.read_table(d / "fee_detail.parquet")
    orphan = lines.slice(0, 50).set_column(0, "mdtrt_id", pa.array([f"NOCLAIM{i}" for i in range(50)]))
    lines = pa.concat_tables([lines, orphan])
    lines = lines.take(pa.array(rng.permutation(lines.num_rows)))
    (d / "fee_detail.parquet").unlink()
    (d / "fee_detail").mkdir()
    for i, part in enumerate(np.array_split(np.arange(lines.num_rows), 3)):
        pq.write_table(lines.take(pa.array(part)), d / "fee_detail" / f"part-{i}.parquet")
    enc = pq.read_table(d / "encounter.parquet")
    psn = enc.column("psn_no").to_pylist()
    payer = enc.column("mulaid_payer_psn_no").to_pylist()
    psn[3], payer[7], payer[8] = "NOBODY", "NOBODY", psn[9]  # unknown patient, unknown payer, a stranger paying
    enc = enc.set_column(enc.schema.get_field_index("psn_no"), "psn_no", pa.array(psn))
    enc = enc.set_column(enc.schema.get_field_index("mulaid_payer_psn_no"), "mulaid_payer_psn_no", pa.array(payer))
    pq.write_table(enc, d / "encounter.parquet", row_group_size=3000)
    ref, out = tmp_path / "ref", tmp_path / "out"
    settle_year_in_memory(d, out_dir=ref, workers=1)
    settle_year(d, out_dir=out, shard_claims=1000)
    assert_same(out, ref)
    reasons = set(_rej(out)["reason_en"])
    assert {"unknown psn_no", "relation may not pay through family mutual aid"} <= reasons


def test_repeated_psn_no_falls_back_to_memory(region: Path, tmp_path: Path) -> None:
    d = _copy_unmanaged(region, tmp_path / "dup")
    p = pq.read_table(d / "person.parquet")
    pq.write_table(pa.concat_tables([p, p.slice(10, 1)]), d / "person.parquet")
    book = PolicyBook.default()
    with pytest.raises(NotStreamable):
        settle_streamed(
            d / "person.parquet",
            d / "family_link.parquet",
            d / "encounter.parquet",
            d / "fee_detail.parquet",
            pq.read_table(d / "institution.parquet"),
            Catalog.from_table(pq.read_table(d / "med_list.parquet")),
            tmp_path / "x",
            book=book,
            claim_columns=CLAIM_COLUMNS,
            line_columns=LINE_COLUMNS,
            rename={"endtime": "setl_time"},
        )
    ref, out = tmp_path / "ref", tmp_path / "out"
    settle_year_in_memory(d, out_dir=ref, workers=1)
    res = settle_year(d, out_dir=out, shard_claims=1000)
    assert res.batch.settlements.num_rows > 0
    assert_same(out, ref)


def test_repeated_mdtrt_id_across_families(region: Path, tmp_path: Path) -> None:
    """Two patients' claims under one mdtrt_id: lines go to the first, as in memory (streamed or fallen back)."""
    d = _copy_unmanaged(region, tmp_path / "dupclaim")
    enc = pq.read_table(d / "encounter.parquet")
    ids, psn = enc.column("mdtrt_id").to_pylist(), enc.column("psn_no").to_pylist()
    j = next(i for i in range(len(psn) - 1, 0, -1) if psn[i] != psn[0])
    ids[j] = ids[0]
    pq.write_table(enc.set_column(0, "mdtrt_id", pa.array(ids)), d / "encounter.parquet")
    ref, out = tmp_path / "ref", tmp_path / "out"
    settle_year_in_memory(d, out_dir=ref, workers=1)
    settle_year(d, out_dir=out, shard_claims=1000)
    assert_same(out, ref)


def test_failure_leaves_earlier_outputs(region: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    settle_year(region, out_dir=out, shard_claims=2000)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    calls = []

    def failing(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full (simulated)")
        return real(*a, **kw)

    real = batch_mod.settle_batch
    monkeypatch.setattr(batch_mod, "settle_batch", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        settle_year(region, out_dir=out, shard_claims=500)
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before  # nothing changed, no scratch left


def test_no_encounters(region: Path, tmp_path: Path) -> None:
    d = _copy_unmanaged(region, tmp_path / "empty")
    pq.write_table(pq.read_table(d / "encounter.parquet").slice(0, 0), d / "encounter.parquet")
    pq.write_table(pq.read_table(d / "fee_detail.parquet").slice(0, 0), d / "fee_detail.parquet")
    res = settle_year(d, out_dir=tmp_path / "out")
    assert res.claims == 0 and res.batch.settlements.num_rows == 0 and len(res.batch.rejected) == 0
    written = pq.read_schema(tmp_path / "out" / "settlement.parquet")
    assert written.names == SETTLEMENT.names
    assert written.metadata[b"yibao.table"] == b"settlement"
    assert pq.read_table(tmp_path / "out" / "accumulator.parquet").num_rows == 0
