"""Policy files: every shipped file validates; every error names file, key and reason."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from yibao.benefits.loader import POLICY_DIR
from yibao.benefits.policy import Policy, PolicyBook
from yibao.core.errors import PolicyError


def test_shipped_policies_validate_on_every_change_date():
    book = PolicyBook()
    book.validate_all()
    assert {"national-default", "example-city-a", "example-city-b"} <= set(book.by_name)
    for name in ("example-city-a", "example-city-b"):
        assert book.by_name[name].snapshot(dt.date(2025, 1, 1)).status == "example"


def test_dated_parameter_resolution():
    pol = Policy("example-city-a")
    assert pol.snapshot(dt.date(2025, 12, 31)).schemes["employee"].caps["outpatient"] == 300000
    assert pol.snapshot(dt.date(2026, 1, 1)).schemes["employee"].caps["outpatient"] == 350000
    # before any effective date the parameter does not exist: validation says so
    with pytest.raises(PolicyError) as e:
        pol.snapshot(dt.date(2023, 6, 1))
    assert "example-city-a.yaml" in str(e.value)


@pytest.fixture()
def policy_dir(tmp_path: Path) -> Path:
    shutil.copy(POLICY_DIR / "national-default.yaml", tmp_path / "national-default.yaml")
    return tmp_path


def write(d: Path, name: str, body: str) -> Path:
    p = d / f"{name}.yaml"
    p.write_text(body, encoding="utf-8")
    return p


HEAD = 'policy: t\nregion: "990900"\nlabel: t\nstatus: example\ninherits: national-default\n'


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        (
            HEAD + "schemes:\n  employee:\n    categories:\n      inpatient:\n        ratio: {level_1: 1.5}\n",
            "schemes.employee.categories.inpatient.ratio",
            "outside 0..1",
        ),
        (
            HEAD + "schemes:\n  employee:\n    categories:\n      inpatient:\n        ratoi: {all: 0.5}\n",
            "schemes.employee.categories.inpatient.ratoi",
            "unknown key",
        ),
        (HEAD + "schemes:\n  resident:\n    caps:\n      basic: -5\n", "schemes.resident.caps.basic", "negative"),
        (
            HEAD + "schemes:\n  resident:\n    caps:\n      basic: 12.345\n",
            "schemes.resident.caps.basic",
            "two decimal places",
        ),
        (
            HEAD + "schemes:\n  employee:\n    categories:\n      outpatient:\n        cap_pool: nowhere\n",
            "schemes.employee",
            "cap_pool 'nowhere' is not defined",
        ),
        (
            HEAD + "assistance:\n  statuses:\n    rich: {ratio: 0.5}\n",
            "assistance.statuses",
            "unknown assistance status",
        ),
        (HEAD + "long_term_prescription:\n  max_days: 10\n", "long_term_prescription", "normal_max_days <= max_days"),
        (
            HEAD + "schemes:\n  employee:\n    caps:\n      basic: {2026-01-01: 5, 2025-01-01: 6}\n",
            "schemes.employee.caps.basic",
            "ascending",
        ),
        (HEAD.replace('"990900"', '"99"'), "region", "6-digit"),
        (
            HEAD + "schemes:\n  resident:\n    layers:\n      - {name: x, field: hifmi_pay, base: selfpay, brackets: "
            "[{threshold: 10, rate: 0.5}], applies_to: [inpatient]}\n",
            "schemes.resident.layers.0.brackets",
            "threshold 0",
        ),
        (HEAD + "med_types: {'11': dentistry}\n", "med_types.11", "outpatient"),
    ],
)
def test_policy_errors_name_file_key_reason(policy_dir, body, key, reason):
    write(policy_dir, "bad", body)
    with pytest.raises(PolicyError) as e:
        Policy("bad", policy_dir).validate_all()
    msg = str(e.value)
    assert "bad.yaml" in msg, msg
    assert key in msg, msg
    assert reason in msg, msg


def test_bad_yaml_and_missing_parent_and_cycle(policy_dir):
    write(policy_dir, "broken", "policy: [unclosed\n")
    with pytest.raises(PolicyError, match="broken.yaml: not valid YAML"):
        Policy("broken", policy_dir)
    write(policy_dir, "orphan", HEAD.replace("national-default", "no-such-parent"))
    with pytest.raises(PolicyError, match="key .inherits.: parent policy .no-such-parent. not found"):
        Policy("orphan", policy_dir)
    write(policy_dir, "a", HEAD.replace("national-default", "b"))
    write(policy_dir, "b", HEAD.replace("national-default", "a"))
    with pytest.raises(PolicyError, match="inheritance cycle"):
        Policy("a", policy_dir)


def test_duplicate_region_in_a_book(policy_dir):
    write(policy_dir, "one", HEAD)
    write(policy_dir, "two", HEAD)
    with pytest.raises(PolicyError, match="region 990900 already defined"):
        PolicyBook(policy_dir)


def test_money_in_policy_never_float(policy_dir):
    write(policy_dir, "dec", HEAD + "schemes:\n  resident:\n    caps:\n      basic: 0.1\n")
    snap = Policy("dec", policy_dir).snapshot(dt.date(2025, 1, 1))
    assert snap.schemes["resident"].caps["basic"] == 10
