"""The data-directory manifest (issue 17.1): every table says
which run wrote it; readers refuse mixed or stale inputs.
"""

from __future__ import annotations

import json
import os
import shutil

import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

from yibao.cli import app
from yibao.core import manifest
from yibao.core.manifest import ManifestError
from yibao.settlement.annual import settle_year
from yibao.synth.cli import run_synth
from yibao.synth.region import TABLE_ORDER

runner = CliRunner()
QUIET = Console(quiet=True)


def flat(text: str) -> str:
    return "".join(text.split())  # rich wraps long lines at the terminal width


@pytest.fixture(scope="module")
def settled(tmp_path_factory):
    """A small settled synthetic region (copied by each test that changes it)."""
    d = tmp_path_factory.mktemp("settled") / "region"
    run_synth(people=600, seed=3, out=d, db=None, console=QUIET)
    settle_year(d)
    return d


@pytest.fixture()
def region(settled, tmp_path):
    d = tmp_path / "region"
    shutil.copytree(settled, d)
    return d


def test_synth_writes_a_manifest_with_hashes_and_settle_records_its_inputs(settled):
    doc = manifest.load(settled)
    assert (
        doc["generator"].startswith("yibao.synth/")
        and doc["seed"] == 3
        and doc["people"] == 600
        and doc["year"] == 2025
    )
    assert doc["created"].endswith("+00:00") and doc["synthetic"] is True and "incomplete" not in doc
    for name in TABLE_ORDER:
        t = doc["tables"][name]
        assert t["rows"] == pq.ParquetFile(settled / f"{name}.parquet").metadata.num_rows
        assert len(t["sha256"]) == 64 and t["files"][0]["path"] == f"{name}.parquet"
    setl = doc["tables"]["settlement"]
    assert setl["rows"] == pq.ParquetFile(settled / "settlement.parquet").metadata.num_rows
    assert setl["command"] == "yibao settle --data {dir}"
    assert setl["inputs"] == {
        n: doc["tables"][n]["sha256"]
        for n in ("person", "institution", "family_link", "med_list", "encounter", "fee_detail")
    }
    assert set(doc["tables"]) == {*TABLE_ORDER, "settlement", "settlement_rejected", "accumulator"}
    assert manifest.check(settled, ["settlement"])["person"] == doc["tables"]["person"]["sha256"]


def test_the_issue_example_synth_again_then_dip_build(region, tmp_path):
    """synth small, settle, synth again with another size: the
    old settlement is gone; copied back in, dip build refuses.
    """
    old = tmp_path / "old-settlement.parquet"
    shutil.copy(region / "settlement.parquet", old)
    res = runner.invoke(app, ["synth", "--people", "300", "--seed", "8", "--out", str(region)])
    assert res.exit_code == 0, res.output
    assert "removed the tables of an earlier run" in res.output
    for name in ("settlement", "settlement_rejected", "accumulator"):
        assert not (region / f"{name}.parquet").exists(), name
    assert set(manifest.load(region)["tables"]) == set(TABLE_ORDER)
    shutil.copy(old, region / "settlement.parquet")  # a stale table put back by hand
    res = runner.invoke(app, ["payment", "dip", "build", "--data", str(region), "--out", str(tmp_path / "cat")])
    assert res.exit_code != 0
    assert "'settlement'isnotinmanifest.json" in flat(res.output) and f"yibaosettle--data{region}" in flat(res.output)
    assert "Traceback" not in res.output and not (tmp_path / "cat").exists()
    # re-running the named command makes the directory consistent again
    assert runner.invoke(app, ["settle", "--data", str(region)]).exit_code == 0
    res = runner.invoke(app, ["payment", "dip", "build", "--data", str(region), "--out", str(tmp_path / "cat")])
    assert res.exit_code == 0, res.output


def test_a_table_copied_from_another_run_is_refused(region, tmp_path):
    other = tmp_path / "other"
    run_synth(people=200, seed=11, out=other, db=None, console=QUIET)
    shutil.copy(other / "person.parquet", region / "person.parquet")
    res = runner.invoke(app, ["settle", "--data", str(region)])
    assert res.exit_code != 0 and "Traceback" not in res.output
    msg = flat(res.output)
    assert (
        "'person'doesnotmatchitshashinthemanifest" in msg
        and f"yibaosynth--out{region}--people600--seed3--year2025" in msg
    )
    with pytest.raises(ManifestError, match="person"):
        manifest.check(region, ["encounter", "person"])


def test_a_derived_table_of_other_inputs_is_stale(region):
    """settlement computed from a person table that has since been replaced (and recorded) is refused by its readers."""
    person = pq.read_table(region / "person.parquet")
    pq.write_table(person.slice(0, person.num_rows - 1), region / "person.parquet")
    manifest.record(region, ["person"], [], command="an editing tool")
    with pytest.raises(
        ManifestError,
        match=r"'settlement' was computed from another 'person' than the current one.*yibao settle --data",
    ):
        manifest.check(region, ["encounter"], optional=["settlement"])
    from yibao.payment.cases import case_view_sql

    with pytest.raises(ManifestError, match="settlement"):
        case_view_sql(region)
    settle_year(region)  # re-settling records the current inputs
    assert manifest.check(region, ["settlement"]) is not None


def test_a_listed_table_that_is_missing_is_refused(region):
    (region / "fee_detail.parquet").unlink()
    with pytest.raises(ManifestError, match="'fee_detail' is listed in the manifest but missing"):
        manifest.check(region, ["encounter", "fee_detail"])


def test_a_file_touched_but_unchanged_passes_and_a_changed_one_of_the_same_size_does_not(region):
    p = region / "encounter.parquet"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert manifest.check(region, ["encounter"]) is not None  # re-hashed: same bytes
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="'encounter' does not match"):
        manifest.check(region, ["encounter"])


def test_an_interrupted_or_old_manifest_is_refused(region, tmp_path):
    doc = json.loads((region / "manifest.json").read_text(encoding="utf-8"))
    (region / "manifest.json").write_text(json.dumps({**doc, "incomplete": True}), encoding="utf-8")
    with pytest.raises(ManifestError, match="did not finish"):
        manifest.check(region, ["person"])
    old = {k: v for k, v in doc.items() if k not in ("tables", "format")}
    (region / "manifest.json").write_text(json.dumps(old), encoding="utf-8")
    with pytest.raises(ManifestError, match="older yibao without table hashes"):
        manifest.check(region, ["person"])
    (region / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        manifest.check(region, ["person"])


def test_an_unmanaged_directory_is_not_checked(region):
    (region / "manifest.json").unlink()
    assert manifest.check(region, ["person", "settlement"]) is None
    assert manifest.record(region, ["settlement"], ["person"], command="x") is False
    assert not (region / "manifest.json").exists()


def test_bad_synth_parameters_change_nothing(region):
    before = (region / "manifest.json").read_bytes()
    res = runner.invoke(app, ["synth", "--year", "1800", "--people", "100", "--out", str(region)])
    assert res.exit_code != 0 and "1800" in res.output and "Traceback" not in res.output
    assert (region / "settlement.parquet").exists() and (region / "manifest.json").read_bytes() == before


def test_db_load_refuses_a_mixed_directory_before_touching_the_database(region, tmp_path):
    shutil.copy(region / "encounter.parquet", region / "tmp.parquet")
    pq.write_table(pq.read_table(region / "tmp.parquet").slice(0, 5), region / "encounter.parquet")
    (region / "tmp.parquet").unlink()
    db = tmp_path / "x.db"
    res = runner.invoke(app, ["db", "load", "--data", str(region), "--db", f"sqlite:///{db}"])
    assert res.exit_code != 0 and "'encounter'doesnotmatch" in flat(res.output)
    assert not db.exists()


def test_supervision_scan_records_its_outputs(region):
    res = runner.invoke(app, ["supervision", "scan", "--data", str(region), "--rule", "R001"])
    assert res.exit_code == 0, res.output
    doc = manifest.load(region)
    assert doc["tables"]["hits"]["inputs"]["encounter"] == doc["tables"]["encounter"]["sha256"]
    assert not doc["tables"]["purchase"].get(
        "inputs"
    )  # a source table yibao synth wrote, not derived (least of all from the labels)
    assert doc["tables"]["hits"]["inputs"]["purchase"] == doc["tables"]["purchase"]["sha256"]
    assert manifest.check(region, ["hits"]) is not None


def test_writers_in_parallel_lose_no_entry(region):
    """Each record() is a locked read-modify-write: eight writers at once, eight entries."""
    import threading

    names = [f"derived_{i}" for i in range(8)]
    for n in names:
        shutil.copy(region / "person.parquet", region / f"{n}.parquet")
    threads = [threading.Thread(target=manifest.record, args=(region, [n], ["person"], "test {dir}")) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc = manifest.load(region)
    assert all(doc["tables"][n]["inputs"] == {"person": doc["tables"]["person"]["sha256"]} for n in names)
    assert manifest.check(region, names) is not None


def test_data_check_lists_every_table_and_fails_on_a_foreign_one(region, tmp_path):
    res = runner.invoke(app, ["data", "check", str(region)])
    assert res.exit_code == 0, res.output
    assert "seed 3" in res.output and "settlement" in res.output and "refused" not in res.output
    shutil.copy(region / "person.parquet", region / "extra.parquet")
    res = runner.invoke(app, ["data", "check", str(region)])
    assert res.exit_code == 1 and "refused" in res.output and "extra" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["data", "check", str(empty)])
    assert res.exit_code == 2 and "no manifest.json" in res.output
