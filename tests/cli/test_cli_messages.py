"""Issue 17.2: input a user can get wrong gives one line saying
what is wrong and what to do, exit code != 0, no traceback.
"""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from yibao.cli import app, explain

runner = CliRunner()


def one_error_line(res) -> str:
    """The run failed with exit code 2 and printed exactly one line, an error, and no traceback."""
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert isinstance(res.exception, SystemExit), res.exception  # handled, not raised through
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error") and "Traceback" not in res.output
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once the socket is closed


def test_policy_show_an_impossible_date():
    line = one_error_line(runner.invoke(app, ["policy", "show", "990100", "--on", "2026-13-45"]))
    assert "'2026-13-45' is not a date" in line and "YYYY-MM-DD" in line


def test_policy_show_a_date_before_the_policy():
    res = runner.invoke(app, ["policy", "show", "990100", "--on", "1990-01-01"])
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    assert "1990-01-01" in res.output and "2024-01-01" in res.output  # the date asked for and the first one in force


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("notaurl", "'notaurl' is not a database URL"),
        ("mysql://x", "does not support this database"),
        ("oracle+nosuchdriver://x", "unknown database kind"),
        ("sqlite:////nonexistent-dir-yibao/sub/x.db", "cannot open the SQLite database"),
    ],
)
def test_a_bad_database_url(url, expect):
    line = one_error_line(runner.invoke(app, ["db", "upgrade", "--db", url]))
    assert expect in line and "sqlite:///" in line


def test_postgresql_that_is_not_running_and_the_password_is_not_shown():
    url = f"postgresql://yibao:s3cret@127.0.0.1:{closed_port()}/yibao"
    line = one_error_line(runner.invoke(app, ["db", "upgrade", "--db", url]))
    assert "cannot use the database" in line and "is the server running" in line
    assert "s3cret" not in line and "***" in line


def test_the_same_mechanism_covers_every_command(tmp_path):
    """synth --db, db load --db: the top-level group explains the error, whichever command raised it."""
    line = one_error_line(runner.invoke(app, ["synth", "--people", "100", "--db", "notaurl"]))
    assert "not a database URL" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_error_line(runner.invoke(app, ["db", "load", "--data", str(empty), "--db", "mysql://x"]))
    assert "does not support this database" in line


def test_settle_an_empty_directory(tmp_path):
    line = one_error_line(runner.invoke(app, ["settle", "--data", str(tmp_path)]))
    assert "no table 'person'" in line and "yibao synth --out" in line
    assert list(tmp_path.iterdir()) == []


def test_dip_build_on_an_empty_directory(tmp_path):
    data, out = tmp_path / "empty", tmp_path / "catalog"
    data.mkdir()
    line = one_error_line(runner.invoke(app, ["payment", "dip", "build", "--data", str(data), "--out", str(out)]))
    assert "no encounter table" in line and "yibao synth --out" in line
    assert not out.exists()


def test_synth_a_year_out_of_range_writes_nothing(tmp_path):
    out = tmp_path / "region"
    line = one_error_line(runner.invoke(app, ["synth", "--year", "1800", "--out", str(out)]))
    assert "year 1800 is out of range" in line and "1900" in line
    assert not out.exists()


def test_a_bug_is_not_disguised():
    """Only errors a user can cause are turned into a line; anything else keeps its traceback."""
    assert explain(RuntimeError("boom"), []) is None
    assert explain(ModuleNotFoundError("no module", name="numpy"), []) is None
    res = runner.invoke(app, ["policy", "show", "990100", "--on", "2026-01-01"])
    assert res.exit_code == 0, res.output
