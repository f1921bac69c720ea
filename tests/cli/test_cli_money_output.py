"""CLI tables show money as yuan under yuan headers (issue 17.6): no raw fen, no yuan labelled "fen"."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from yibao.cli import app

runner = CliRunner()
YUAN = re.compile(r"¥[0-9]{1,3}(,[0-9]{3})*\.[0-9]{2}")


def test_procurement_compare_shows_yuan_not_fen(tmp_path):
    rd = tmp_path / "round"
    assert (
        runner.invoke(
            app, ["procurement", "synth", str(rd), "--drugs", "3", "--institutions", "40", "--regions", "3"]
        ).exit_code
        == 0
    )
    r = runner.invoke(
        app,
        ["procurement", "compare", str(rd), "--rules", "national-batch-09", "--against", "national-batch-10"],
        terminal_width=250,
    )
    assert r.exit_code == 0, r.output
    assert "amount_fen" not in r.output and "amount ¥" in r.output
    assert YUAN.search(r.output), r.output
    assert "{" not in r.output  # the totals are a table, not a printed dict


def test_procurement_simulate_formats_revenue(tmp_path):
    r = runner.invoke(
        app,
        [
            "procurement",
            "simulate",
            "--rules",
            "national-batch-10",
            "--competitor",
            "lognormal:1.2,0.25",
            "--competitor",
            "lognormal:1.1,0.2",
            "--prices",
            "0.9,1.1",
            "--max-price",
            "2.0",
            "--rounds",
            "200",
        ],
        terminal_width=250,
    )
    assert r.exit_code == 0, r.output
    assert "expected revenue ¥" in r.output and YUAN.search(r.output), r.output


def test_supervision_scan_labels_yuan_as_yuan(tmp_path):
    region = tmp_path / "region"
    r = runner.invoke(app, ["synth", "--people", "400", "--out", str(region)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["supervision", "scan", "--data", str(region)], terminal_width=250)
    assert r.exit_code == 0, r.output
    assert "amount ¥" in r.output and " fen " not in r.output.replace("│", " ")
