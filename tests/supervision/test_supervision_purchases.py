"""The purchase table (进货) of the stock rule SV-STOCK-01 (进销存不符) is data, never made from the labels (issue 14).

``yibao synth`` writes ``purchase`` with the region, from what it generated and planted; ``yibao supervision
scan`` and ``review_region`` only read it, and skip SV-STOCK-01 (saying why) when a region has none.  Before,
the scan derived the table from ``ground_truth`` whenever it was missing: shuffling the labels of a fresh
4,000-person region before its first scan took SV-STOCK-01 from 27 hits to 3.  Synthetic data (合成数据) only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from yibao.cli import app
from yibao.core import manifest
from yibao.supervision.batch import scan
from yibao.synth.patterns import DEFAULT_RATES
from yibao.synth.region import write_parquet

runner = CliRunner()


def flat(s: str) -> str:
    return "".join(s.split())


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A fresh SYNTHETIC region (4,000 people, seed 23, the default fraud mix) on which nothing has run yet."""
    d = tmp_path_factory.mktemp("purchases") / "region"
    write_parquet(d, 4000, 23, patterns=DEFAULT_RATES)
    return d


def _truths(d: Path) -> dict[str, pd.DataFrame | None]:
    truth = pd.read_parquet(d / "ground_truth.parquet")
    rng = np.random.default_rng(7)
    shuffled = truth.assign(
        entity_id=rng.permutation(truth.entity_id.to_numpy()), pattern=rng.permutation(truth.pattern.to_numpy())
    )
    stock = truth.pattern == "stock_mismatch"  # the stock rule's own labels moved to other pairs
    moved = truth.copy()
    moved.loc[stock, "entity_id"] = rng.permutation(
        moved.loc[~stock & (truth.entity == "fee_detail"), "entity_id"].to_numpy()
    )[: int(stock.sum())]
    return {"labelled": truth, "shuffled": shuffled, "stock_labels_moved": moved, "none": None}


def _copy(src: Path, dst: Path, truth: pd.DataFrame | None, *, managed: bool) -> Path:
    shutil.copytree(src, dst)
    gt = dst / "ground_truth.parquet"
    if truth is None:
        gt.unlink()
    else:
        truth.to_parquet(gt, index=False)
    if managed:  # the manifest still names the generator's labels: record the replacement as what is there now
        doc = manifest.load(dst)
        if truth is None:
            del doc["tables"]["ground_truth"]
            del doc["rows"]["ground_truth"]
        else:
            f = manifest._file_entry(dst, gt)
            doc["tables"]["ground_truth"].update(files=[f], sha256=manifest._table_hash([f]), rows=len(truth))
        manifest._save(dst, doc)
    else:
        (dst / "manifest.json").unlink()
    return dst


def test_scan_on_a_fresh_region_does_not_depend_on_the_labels(fresh, tmp_path):
    """The exact scenario of the issue: labels shuffled / moved
    / removed BEFORE the first scan (CLI, managed copies).
    """
    out = {}
    for name, truth in _truths(fresh).items():
        d = _copy(fresh, tmp_path / name, truth, managed=True)
        res = runner.invoke(app, ["supervision", "scan", "--data", str(d)])
        assert res.exit_code == 0, res.output
        assert "SYNTHETIC" in res.output and "skipped" not in res.output
        assert (d / "purchase.parquet").read_bytes() == (
            fresh / "purchase.parquet"
        ).read_bytes()  # read, never rewritten
        out[name] = pd.read_parquet(d / "hits.parquet").sort_values(["rule_id", "entity_id"], ignore_index=True)
    base = out.pop("labelled")
    stock = base[base.rule_id == "SV-STOCK-01"]
    assert len(stock) >= 20  # the rule runs and finds the planted pairs
    for name, hits in out.items():
        pd.testing.assert_frame_equal(base, hits, obj=f"hits ({name})")
    # and what it finds is what was planted: the labels still grade it, only they no longer feed it
    truth = pd.read_parquet(fresh / "ground_truth.parquet")
    planted = set(truth.entity_id[truth.pattern == "stock_mismatch"])
    assert len(set(stock.entity_id) & planted) >= 0.9 * len(stock) and len(set(stock.entity_id) & planted) >= 0.9 * len(
        planted
    )


def _sorted(hits: pd.DataFrame) -> pd.DataFrame:
    return hits.sort_values(["rule_id", "entity_id"], ignore_index=True)


def test_review_on_a_fresh_region_does_not_depend_on_the_labels(fresh, tmp_path):
    from yibao.supervision.reports import review_region

    got = {}
    for name, truth in _truths(fresh).items():
        rv = review_region(_copy(fresh, tmp_path / name, truth, managed=False))
        assert not rv.skipped and rv.purchase_synthetic
        got[name] = rv
    base = got.pop("labelled")
    for name, rv in got.items():
        pd.testing.assert_frame_equal(
            _sorted(base.hits), _sorted(rv.hits), obj=f"hits ({name})"
        )  # SQL rows come in no fixed order
        for k in ("queue", "peer_institution", "peer_doctor", "rings"):
            pd.testing.assert_frame_equal(base.analytics[k], rv.analytics[k], obj=f"{k} ({name})")
    assert got["none"].scores is None and base.scores is not None
    stock = base.scores.set_index("rule_id").loc["SV-STOCK-01"]
    assert stock.labelled >= 20 and stock.true_hits >= 0.9 * stock.labelled and stock.true_hits >= 0.9 * stock.flagged


def test_a_region_without_purchases_skips_the_stock_rule_and_says_why(fresh, tmp_path):
    d = tmp_path / "no_purchase"
    shutil.copytree(fresh, d)
    (d / "purchase.parquet").unlink()
    res = runner.invoke(app, ["supervision", "scan", "--data", str(d)])
    assert res.exit_code == 0, res.output
    assert "SV-STOCK-01skipped:nopurchasetable" in flat(res.output) and "跳过SV-STOCK-01" in flat(res.output)
    assert "neverbuiltfromthelabels" in flat(res.output)
    assert not (d / "purchase.parquet").exists()  # nothing was made up
    hits = pd.read_parquet(d / "hits.parquet")
    assert len(hits) and "SV-STOCK-01" not in set(hits.rule_id)
    doc = manifest.load(d)
    assert "purchase" not in doc["tables"]["hits"]["inputs"]
    # the other rules found what they found with the table
    with_table = scan(fresh).hits
    pd.testing.assert_frame_equal(
        _sorted(with_table[with_table.rule_id != "SV-STOCK-01"]), _sorted(hits), check_dtype=False
    )
    # the review and its reports say so too
    from yibao.supervision.reports import review_region, rule_summary, section_html

    (d / "hits.parquet").unlink()
    del doc["tables"]["hits"]
    manifest._save(d, doc)
    rv = review_region(d)
    assert set(rv.skipped) == {"SV-STOCK-01"}
    assert rule_summary(rv).set_index("rule_id").loc["SV-STOCK-01"].hits == 0
    assert rv.skipped["SV-STOCK-01"][0].startswith("SV-STOCK-01 skipped: no purchase table")
    assert "SV-STOCK-01 skipped" in section_html(rv) and "跳过 SV-STOCK-01" in section_html(rv)
    assert "SV-STOCK-01" not in set(rv.scores.rule_id) and "SV-DUP-01" in set(rv.scores.rule_id)  # not run, not scored
    res = runner.invoke(app, ["supervision", "score", "--data", str(d)])
    assert "SV-STOCK-01skipped:nopurchasetable" in flat(res.output) and "(notscored)" in flat(res.output)
    assert (
        "FAILED" not in res.output or "SV-STOCK-01" not in res.output.split("FAILED", 1)[1]
    )  # a skipped rule is not a failed one


def test_a_purchase_table_derived_from_the_labels_is_not_read(fresh, tmp_path):
    """An older yibao's label-derived purchase.parquet (its manifest
    lists ground_truth as an input) is skipped, not scored.
    """
    d = tmp_path / "old"
    shutil.copytree(fresh, d)
    manifest.record(
        d,
        ["purchase"],
        ["fee_detail", "encounter", "med_list", "ground_truth"],
        command="rm {dir}/purchase.parquet && yibao supervision scan --data {dir}",
    )
    res = runner.invoke(app, ["supervision", "scan", "--data", str(d)])
    assert res.exit_code == 0, res.output
    assert "derivedfromtheground-truthlabels" in flat(res.output) and f"yibaosynth--out{d}" in flat(res.output)
    assert "SV-STOCK-01" not in set(pd.read_parquet(d / "hits.parquet").rule_id)


def test_a_purchase_import_lacking_a_column_is_refused(fresh, tmp_path):
    d = tmp_path / "bad"
    shutil.copytree(fresh, d)
    (d / "manifest.json").unlink()  # an unmanaged directory: a hand-made import
    t = pq.read_table(d / "purchase.parquet").drop(["opening_stock_milli"])
    pq.write_table(t, d / "purchase.parquet")
    res = runner.invoke(app, ["supervision", "scan", "--data", str(d)])
    assert res.exit_code != 0 and "opening_stock_milli" in res.output and "Traceback" not in res.output
    assert not (d / "hits.parquet").exists()  # nothing written


def test_a_real_import_is_read_and_not_bannered_synthetic(fresh, tmp_path):
    """A purchase table with synthetic = false rows (standing in for an import) runs the rule on what it says."""
    d = tmp_path / "real"
    shutil.copytree(fresh, d)
    (d / "manifest.json").unlink()
    p = pd.read_parquet(d / "purchase.parquet")
    row = p.iloc[0]
    p = p.assign(synthetic=False)
    p.loc[0, "qty_milli"] = 0  # this institution bought none of it: all it billed is above purchases
    p.loc[0, "opening_stock_milli"] = 0
    p.to_parquet(d / "purchase.parquet", index=False)  # pandas' file: no yibao.synthetic metadata
    res = runner.invoke(app, ["supervision", "scan", "--data", str(d), "--rule", "SV-STOCK-01"])
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC" not in res.output
    hits = pd.read_parquet(d / "hits.parquet")
    assert f"{row.fixmedins_code}#{row.med_list_codg}" in set(hits.entity_id)


def test_the_synthetic_purchase_table_is_labelled_and_in_the_manifest(fresh):
    f = pq.ParquetFile(fresh / "purchase.parquet")
    meta = f.schema_arrow.metadata
    assert meta[b"yibao.synthetic"] == b"true" and meta[b"yibao.table"] == b"purchase"
    assert meta[b"yibao.note"].decode().startswith("SYNTHETIC purchases 合成进货数据")
    t = f.read().to_pandas()
    assert t.synthetic.all() and len(t)
    doc = manifest.load(fresh)
    entry = doc["tables"]["purchase"]
    assert entry["rows"] == len(t) == doc["rows"]["purchase"] and entry["command"].startswith("yibao synth")
    assert not entry.get("inputs")  # a source table of the generator: derived from nothing, least of all the labels
    assert manifest.check(fresh, ["purchase"])["purchase"] == entry["sha256"]
    assert ("purchase", True, f"{len(t):,} rows, source (yibao synth)") in manifest.status(fresh)


def test_purchases_are_what_was_dispensed(fresh):
    """Unplanted pairs: bought what was billed plus 0-5 %; planted
    pairs: billed 1.3-1.8 times what was bought and stocked.
    """
    fee = pd.read_parquet(fresh / "fee_detail.parquet", columns=["mdtrt_id", "med_list_codg", "cnt_milli"])
    enc = pd.read_parquet(fresh / "encounter.parquet", columns=["mdtrt_id", "fixmedins_code"])
    ml = pd.read_parquet(fresh / "med_list.parquet", columns=["med_list_codg", "list_kind"])
    drugs = set(ml.med_list_codg[ml.list_kind.isin(["western", "tcm_patent"])])
    sold = (
        fee[fee.med_list_codg.isin(drugs)]
        .merge(enc, on="mdtrt_id")
        .groupby(["fixmedins_code", "med_list_codg"])
        .cnt_milli.sum()
    )
    p = pd.read_parquet(fresh / "purchase.parquet").set_index(["fixmedins_code", "med_list_codg"])
    assert set(p.index) == set(sold.index)  # every pair dispensed, none other
    assert (
        (p.qty_milli % 1000 == 0).all() and (p.opening_stock_milli % 1000 == 0).all() and (p.policy_year == 2025).all()
    )
    truth = pd.read_parquet(fresh / "ground_truth.parquet")
    planted = set(truth.entity_id[truth.pattern == "stock_mismatch"])
    key = np.array([f"{a}#{b}" for a, b in p.index], dtype=object)
    s = sold.reindex(p.index).to_numpy()
    plain = ~np.isin(key, list(planted))
    assert plain.sum() > 100 and (~plain).sum() >= 20
    q, o = p.qty_milli.to_numpy(), p.opening_stock_milli.to_numpy()
    assert (q[plain] >= s[plain]).all() and (q[plain] <= s[plain] * 105 // 100 + 1000).all()
    assert (o[plain] * 12 <= s[plain]).all()  # at most a month of use in stock
    # planted pairs billed well above what could have been dispensed (the stock rule's 12 % slack)
    assert (s[~plain] * 10000 > (q[~plain] + o[~plain]) * 11200).mean() >= 0.9


def test_purchases_do_not_move_with_the_billing_inflation(fresh, tmp_path):
    """The same region without the stock inflation (the pattern draws no random numbers) buys exactly the same:
    purchases follow what was dispensed, not what was billed."""
    d = tmp_path / "honest"
    write_parquet(d, 4000, 23, patterns={**DEFAULT_RATES, "stock_mismatch": 0.0})
    assert (d / "purchase.parquet").read_bytes() == (fresh / "purchase.parquet").read_bytes()
    a = pd.read_parquet(fresh / "fee_detail.parquet")
    b = pd.read_parquet(d / "fee_detail.parquet")
    assert len(a) == len(b) and not a.cnt_milli.equals(b.cnt_milli) and (a.cnt_milli >= b.cnt_milli).all()


def test_import_purchases_validates_records_and_feeds_the_stock_rule(fresh, tmp_path):
    """`yibao supervision import-purchases`: a real table (CSV) replaces
    the synthetic one, in the manifest; a bad one changes nothing.
    """
    d = tmp_path / "imported"
    shutil.copytree(fresh, d)
    p = pd.read_parquet(d / "purchase.parquet").drop(columns="synthetic")
    p.loc[0, ["qty_milli", "opening_stock_milli"]] = 0  # bought none of what it billed
    good, bad, dup = tmp_path / "p.csv", tmp_path / "bad.csv", tmp_path / "dup.csv"
    p.to_csv(good, index=False)
    p.head(5).assign(qty_milli=[1000, 2000, -1000, 0, 0]).to_csv(bad, index=False)
    pd.concat([p.head(3), p.head(1)]).to_csv(dup, index=False)
    before = (d / "purchase.parquet").read_bytes(), (d / "manifest.json").read_bytes()
    for f, why in (
        (bad, "row3:qty_millimustbeawholenon-negativenumber"),
        (dup, "row4:asecondrowfor"),
        (tmp_path / "none.csv", "nosuchfile"),
    ):
        res = runner.invoke(app, ["supervision", "import-purchases", str(f), "--data", str(d)])
        assert res.exit_code != 0 and why in flat(res.output) and "Traceback" not in res.output, res.output
        assert ((d / "purchase.parquet").read_bytes(), (d / "manifest.json").read_bytes()) == before  # nothing changed
    res = runner.invoke(app, ["supervision", "import-purchases", str(good), "--data", str(d)])
    assert res.exit_code == 0, res.output
    t = pq.read_table(d / "purchase.parquet")
    assert (
        t.schema.metadata[b"yibao.synthetic"] == b"false"
        and not any(t.column("synthetic").to_pylist())
        and t.num_rows == len(p)
    )
    entry = manifest.load(d)["tables"]["purchase"]
    assert "import-purchases" in entry["command"] and not entry.get("inputs")
    res = runner.invoke(app, ["supervision", "scan", "--data", str(d), "--rule", "SV-STOCK-01"])
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC" not in res.output and "skipped" not in res.output
    hits = pd.read_parquet(d / "hits.parquet")
    assert f"{p.fixmedins_code[0]}#{p.med_list_codg[0]}" in set(hits.entity_id)
    assert manifest.load(d)["tables"]["hits"]["inputs"]["purchase"] == entry["sha256"]
