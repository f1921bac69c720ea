"""One Parquet table resolver (issue 18): a table is ``DIR/name.parquet`` or a dataset directory ``DIR/name/``.

``yibao settle`` always accepted dataset directories; ``yibao supervision scan`` and the DIP build used to
fail on them ("missing encounter.parquet" / "No files found").  A region written as files and the same
region written as dataset directories (several parts each) must give the same hits and the same catalog.
Synthetic data (合成数据) only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from yibao.cli import app
from yibao.core.parquet_io import dataset_files, sql_source, table_path, table_sql
from yibao.supervision.batch import CONTRACT_VIEWS
from yibao.synth.patterns import DEFAULT_RATES
from yibao.synth.region import write_parquet

TABLES = ("person", "family_link", "institution", "med_list", "encounter", "fee_detail", "ground_truth")
runner = CliRunner()


@pytest.fixture(scope="module")
def regions(tmp_path_factory) -> tuple[Path, Path]:
    """(files, datasets): one synthetic region, unmanaged, once as
    ``name.parquet`` files, once as ``name/part-N.parquet``.
    """
    src = tmp_path_factory.mktemp("synth")
    write_parquet(src, 1500, 23, patterns={k: min(1.0, v * 2) for k, v in DEFAULT_RATES.items()})
    files, datasets = tmp_path_factory.mktemp("files"), tmp_path_factory.mktemp("datasets")
    for name in TABLES:
        shutil.copy(src / f"{name}.parquet", files / f"{name}.parquet")
    shutil.copy(
        src / "purchase.parquet", files / "purchase.parquet"
    )  # the stock rule's input (yibao synth writes it), as a file too
    rng = np.random.default_rng(3)
    for name in (*TABLES, "purchase"):
        t = pq.read_table(files / f"{name}.parquet")
        t = t.take(pa.array(rng.permutation(t.num_rows)))  # row order is not meaning
        (datasets / name / "sub").mkdir(parents=True)
        parts = np.array_split(np.arange(t.num_rows), 3)
        for i, part in enumerate(parts):  # the last part one level down: the whole tree is the table
            where = datasets / name / ("sub" if i == len(parts) - 1 else "")
            pq.write_table(t.take(pa.array(part)), where / f"part-{i}.parquet")
    # what pyarrow's discovery (and so `yibao settle`) skips, every reader skips: a half-written part, a staging folder
    enc = pq.read_table(files / "encounter.parquet").slice(0, 40)
    enc = enc.set_column(enc.schema.get_field_index("mdtrt_id"), "mdtrt_id", pa.array([f"JUNK{i}" for i in range(40)]))
    pq.write_table(enc, datasets / "encounter" / "_part-9.parquet")
    (datasets / "fee_detail" / ".staging").mkdir()
    pq.write_table(
        pq.read_table(files / "fee_detail.parquet").slice(0, 500),
        datasets / "fee_detail" / ".staging" / "part-9.parquet",
    )
    return files, datasets


def test_table_path_and_sql_source(tmp_path: Path) -> None:
    assert table_path(tmp_path, "encounter") is None and table_sql(tmp_path, "encounter") is None
    (tmp_path / "encounter").mkdir()
    assert table_path(tmp_path, "encounter") == tmp_path / "encounter"
    assert (
        sql_source(tmp_path / "encounter") == f"read_parquet('{(tmp_path / 'encounter').as_posix()}/**/*.parquet')"
    )  # empty
    for rel in (
        "b/part-1.parquet",
        "part-0.parquet",
        "_tmp.parquet",
        ".x/part-2.parquet",
        "_staging/part-3.parquet",
        "notes.txt",
    ):
        (tmp_path / "encounter" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "encounter" / rel).write_bytes(b"")
    want = [tmp_path / "encounter" / "b" / "part-1.parquet", tmp_path / "encounter" / "part-0.parquet"]
    assert dataset_files(tmp_path / "encounter") == want
    assert sql_source(tmp_path / "encounter") == "read_parquet([" + ", ".join(f"'{p.as_posix()}'" for p in want) + "])"
    pq.write_table(pa.table({"a": [1]}), tmp_path / "encounter.parquet")
    assert table_path(tmp_path, "encounter") == tmp_path / "encounter.parquet"  # the file wins
    odd = tmp_path / "it's"
    assert (
        sql_source(odd / "t.parquet")
        == f"read_parquet('{(odd / 't.parquet').as_posix().replace(chr(39), chr(39) * 2)}')"
    )


def test_datasets_really_are_directories(regions) -> None:
    _, datasets = regions
    for name in CONTRACT_VIEWS:
        assert not (datasets / f"{name}.parquet").exists()
        assert len(dataset_files(datasets / name)) == 3


def _hits(d: Path, out: Path) -> pd.DataFrame:
    r = runner.invoke(app, ["supervision", "scan", "--data", str(d), "--out", str(out)])
    assert r.exit_code == 0, r.output
    h = pd.read_parquet(out / "hits.parquet")
    cols = [c for c in ("rule_id", "entity", "entity_id", "amount", "detail") if c in h.columns]
    return h[cols].sort_values(cols).reset_index(drop=True)


def test_supervision_scan_on_dataset_directories(regions, tmp_path: Path) -> None:
    files, datasets = regions
    ref = _hits(files, tmp_path / "ref")
    got = _hits(datasets, tmp_path / "got")
    assert len(ref) > 0 and ref.rule_id.nunique() > 3
    pd.testing.assert_frame_equal(got, ref)


def _catalog(d: Path, out: Path) -> tuple[str, pd.DataFrame]:
    r = runner.invoke(app, ["payment", "dip", "build", "--data", str(d), "--out", str(out), "--version", "t1"])
    assert r.exit_code == 0, r.output
    g = pd.read_csv(out / "groups.csv", dtype=str, comment="#")
    return (out / "catalog.yaml").read_text(encoding="utf-8"), g.sort_values(list(g.columns)).reset_index(drop=True)


def test_dip_build_on_dataset_directories(regions, tmp_path: Path) -> None:
    files, datasets = regions
    ref_meta, ref = _catalog(files, tmp_path / "ref")
    got_meta, got = _catalog(datasets, tmp_path / "got")
    assert len(ref) > 0
    assert got_meta == ref_meta
    pd.testing.assert_frame_equal(got, ref)


def test_scan_names_a_missing_table(regions, tmp_path: Path) -> None:
    _, datasets = regions
    d = tmp_path / "partial"
    shutil.copytree(datasets, d)
    shutil.rmtree(d / "med_list")
    r = runner.invoke(app, ["supervision", "scan", "--data", str(d)])
    assert r.exit_code != 0
    assert "med_list" in r.output


def test_settle_reads_the_same_parts(regions, tmp_path: Path) -> None:
    """`yibao settle` on the dataset directories settles the
    same claims as on the files (the junk parts skipped too).
    """
    files, datasets = regions
    out = {}
    for label, d in (("files", files), ("datasets", datasets)):
        r = runner.invoke(app, ["settle", "--data", str(d), "--out", str(tmp_path / label)])
        assert r.exit_code == 0, r.output
        t = pq.read_table(tmp_path / label / "settlement.parquet").to_pandas()
        out[label] = t.sort_values("mdtrt_id").reset_index(drop=True)
    assert len(out["files"]) > 0 and not out["datasets"].mdtrt_id.str.startswith("JUNK").any()
    pd.testing.assert_frame_equal(
        out["datasets"].drop(columns=["setl_id"], errors="ignore"),
        out["files"].drop(columns=["setl_id"], errors="ignore"),
    )
