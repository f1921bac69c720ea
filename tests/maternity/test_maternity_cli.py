"""``yibao maternity allowance``: the rule file's figures, and a one-line refusal (exit 2)."""

from __future__ import annotations

from typer.testing import CliRunner

from yibao.cli import app

ARGS = ["maternity", "allowance", "--region", "990100", "--on", "2025-06-01", "--wage", "6000.00"]


def test_difficult_twin_birth_pays_128_days():
    r = CliRunner().invoke(app, ARGS + ["--months", "12", "--kind", "difficult_birth", "--babies", "2"])
    assert r.exit_code == 0, r.output
    assert "128" in r.output and "25,600.00" in r.output  # 98 + 15 + 15 days; ¥6,000 / 30 × 128


def test_too_few_contribution_months_is_refused():
    r = CliRunner().invoke(app, ARGS + ["--months", "3"])
    assert r.exit_code == 2
    assert "不足 12 个月" in r.output
