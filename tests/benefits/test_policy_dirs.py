"""Policy lookup and inheritance as a new user meets them (issue 13 part 1, issue 17 part 6).

* ``all:`` in a child's level table merges with the documented precedence;
* a city file outside the package finds ``national-default``; ``--policy-dir`` on every command and ``serve``;
* an unknown region or policy is a clear error listing the known ones, nothing done;
* ``policy validate`` validates the path given (a README is not a policy file).

Test cities are SYNTHETIC (regions 9903xx).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yibao.benefits.loader import POLICY_DIR, _merge
from yibao.benefits.policy import POLICY_DIR_ENV, Policy, PolicyBook
from yibao.cli import app
from yibao.core.errors import PolicyError

runner = CliRunner()
DAY = dt.date(2025, 6, 1)
HEAD = 'policy: {name}\nregion: "{region}"\nlabel: "synthetic test city"\nstatus: example\ninherits: national-default\n'


def city(d: Path, name: str, region: str, body: str = "") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{name}.yaml"
    p.write_text(HEAD.format(name=name, region=region) + body, encoding="utf-8")
    return p


def inpatient(snap, scheme: str = "resident") -> list[int]:
    return snap.schemes[scheme].categories["inpatient"].ratio.as_list()[1:]


def flat(output: str) -> str:
    return "".join(output.split())  # rich wraps long lines at the terminal width


# -- all: precedence -------------------------------------------------------------------

RATIO = "schemes:\n  resident:\n    categories:\n      inpatient:\n        ratio: {ratio}\n"


@pytest.mark.parametrize(
    ("ratio", "levels"),
    [
        ("{all: 0.50}", [5000, 5000, 5000]),  # all replaces every parent level
        ("{all: 0.50, level_3: 0.40}", [5000, 5000, 4000]),  # the child's explicit level beats its all
        ("{level_2: 0.80}", [8500, 8000, 6500]),  # no all: only that level changes (parent 0.85 / 0.75 / 0.65)
        ("0.70", [7000, 7000, 7000]),  # a scalar is all
        ("{all: {2024-01-01: 0.50, 2026-01-01: 0.60}}", [5000, 5000, 5000]),  # dated all
    ],
)
def test_child_all_merges_with_documented_precedence(tmp_path, ratio, levels):
    p = city(tmp_path, "t", "990301", RATIO.format(ratio=ratio))
    assert inpatient(Policy(p).snapshot(DAY)) == levels


def test_dated_all_changes_every_level_on_its_date(tmp_path):
    p = city(tmp_path, "t", "990301", RATIO.format(ratio="{all: {2024-01-01: 0.50, 2026-01-01: 0.60}}"))
    assert inpatient(Policy(p).snapshot(dt.date(2026, 1, 1))) == [6000, 6000, 6000]


def test_parent_all_with_child_level_keeps_the_rest():
    assert _merge({"all": 1}, {"level_1": 2}) == {"all": 1, "level_1": 2}
    assert _merge({"level_1": 1, "level_2": 2}, {"all": 9}) == {"all": 9}
    assert _merge({"level_1": 1}, {"all": 9, "level_1": 3}) == {"all": 9, "level_1": 3}
    # mappings that are not level tables still merge key by key
    assert _merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}) == {"a": {"x": 1, "y": 3}}


def test_special_paid_like_inpatient_follows_the_child_all(tmp_path):
    p = city(tmp_path, "t", "990301", RATIO.format(ratio="{all: 0.55}"))
    snap = Policy(p).snapshot(DAY)
    assert snap.schemes["resident"].categories["special"].ratio.as_list()[1:] == [5500, 5500, 5500]


# -- parents outside the package ------------------------------------------------------


def test_city_outside_the_package_finds_national_default(tmp_path):
    p = city(tmp_path / "elsewhere", "example-city-x", "990300", RATIO.format(ratio="{all: 0.70}"))
    pol = Policy(p)
    assert pol.chain == ["national-default.yaml", "example-city-x.yaml"]
    assert pol.snapshot(DAY).region == "990300"


def test_parent_next_to_the_child_comes_first(tmp_path):
    d = tmp_path / "own"
    d.mkdir()
    text = (POLICY_DIR / "national-default.yaml").read_text(encoding="utf-8")
    (d / "national-default.yaml").write_text(
        text.replace("retiree_ratio_bonus: 0.10", "retiree_ratio_bonus: 0.12"), encoding="utf-8"
    )
    snap = Policy(city(d, "t", "990301")).snapshot(DAY)
    assert snap.schemes["employee"].categories["outpatient"].retiree_ratio_bonus == 1200


def test_missing_parent_names_the_dirs_looked_in(tmp_path):
    p = tmp_path / "orphan.yaml"
    p.write_text(
        HEAD.format(name="orphan", region="990301").replace("national-default", "no-such-parent"), encoding="utf-8"
    )
    with pytest.raises(PolicyError) as e:
        Policy(p)
    assert "parent policy 'no-such-parent' not found" in str(e.value)
    assert str(tmp_path) in str(e.value) and str(POLICY_DIR) in str(e.value)


def test_policy_dir_adds_a_city_to_the_book(tmp_path):
    d = tmp_path / "cities"
    city(d, "example-city-x", "990300")
    book = PolicyBook(extra_dirs=[d])
    assert book.require("990300").name == "example-city-x"
    assert book.require("example-city-x") is book.require("990300")
    assert book.require("990100").name == "example-city-a"  # shipped ones stay
    assert book.paths["example-city-x"] == d / "example-city-x.yaml"


def test_policy_dir_file_replaces_a_shipped_one_of_the_same_name(tmp_path):
    d = tmp_path / "cities"
    city(d, "example-city-b", "990200", "schemes:\n  resident:\n    caps:\n      basic: 123456\n")
    book = PolicyBook(extra_dirs=[d])
    assert book.require("990200").snapshot(DAY).schemes["resident"].caps["basic"] == 12345600


def test_policy_dir_that_is_not_a_directory(tmp_path):
    with pytest.raises(PolicyError, match="not a directory"):
        PolicyBook(extra_dirs=[tmp_path / "nope"])


def test_default_book_reads_the_environment(tmp_path, monkeypatch):
    d = tmp_path / "cities"
    city(d, "example-city-x", "990300")
    monkeypatch.setenv(POLICY_DIR_ENV, str(d))
    assert PolicyBook.default().require("990300").name == "example-city-x"
    monkeypatch.delenv(POLICY_DIR_ENV)
    with pytest.raises(PolicyError):
        PolicyBook.default().require("990300")


# -- unknown regions ----------------------------------------------------------------------


def test_unknown_region_lists_the_known_ones():
    book = PolicyBook()
    with pytest.raises(PolicyError) as e:
        book.require("no-such-city")
    msg = str(e.value)
    assert "unknown policy or region 'no-such-city'" in msg
    for known in ("example-city-a (990100)", "example-city-b (990200)", "national-default (000000)"):
        assert known in msg
    assert "未知的待遇政策或医保区划" in e.value.message_zh
    assert book.require("000000").name == "national-default"


def test_cli_settle_unknown_policy_is_refused_and_writes_nothing(tmp_path):
    data = tmp_path / "region"
    data.mkdir()
    res = runner.invoke(app, ["settle", "--data", str(data), "--policy", "no-such-city"])
    assert res.exit_code == 2, res.output
    out = flat(res.output)
    assert "unknownpolicyorregion'no-such-city'" in out and "example-city-a(990100)" in out
    assert "Traceback" not in res.output
    assert list(data.iterdir()) == []


def test_cli_policy_show_unknown_region(tmp_path):
    res = runner.invoke(app, ["policy", "show", "123456", "--on", "2025-06-01"])
    assert res.exit_code == 2
    assert "unknownpolicyorregion'123456'" in flat(res.output)


def test_cli_policy_show_with_policy_dir(tmp_path):
    city(tmp_path / "c", "example-city-x", "990300", RATIO.format(ratio="{all: 0.70}"))
    res = runner.invoke(app, ["policy", "show", "990300", "--on", "2025-06-01", "--policy-dir", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert '"region": "990300"' in res.output


# -- policy validate on the path given ---------------------------------------------------------


def test_cli_validate_readme_is_not_a_policy_file():
    res = runner.invoke(app, ["policy", "validate", str(POLICY_DIR / "README.md")])
    assert res.exit_code == 2
    out = flat(res.output)
    assert "notapolicyfile" in out and "README.md.yaml" not in out


def test_cli_validate_city_outside_the_package(tmp_path):
    p = city(tmp_path / "elsewhere", "example-city-x", "990300")
    res = runner.invoke(app, ["policy", "validate", str(p)])
    assert res.exit_code == 0, res.output
    assert "ok" in res.output and "national-default.yaml" in flat(res.output)


def test_cli_validate_by_name_and_policy_dir(tmp_path):
    d = tmp_path / "c"
    city(d, "example-city-x", "990300")
    res = runner.invoke(app, ["policy", "validate", "example-city-x", "990100", "--policy-dir", str(d)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["policy", "validate", "--policy-dir", str(d)])  # all shipped + the dir's
    assert res.exit_code == 0, res.output
    assert "example-city-x" in res.output and "example-city-a" in res.output
    res = runner.invoke(app, ["policy", "validate", "no-such-city"])
    assert res.exit_code == 2 and "unknownpolicyorregion" in flat(res.output)


# -- settle and serve with --policy-dir -------------------------------------------------------


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> Path:
    from rich.console import Console

    from yibao.synth.cli import run_synth

    root = tmp_path_factory.mktemp("region")
    run_synth(people=400, seed=5, out=root / "region", db=None, year=2025, console=Console(quiet=True))
    return root / "region"


def _inpatient_fund(out: Path) -> int:
    import pyarrow.parquet as pq

    t = pq.read_table(out / "settlement.parquet").to_pandas()
    return int(t.loc[t["benefit_category"] == "inpatient", "hifp_pay"].sum())


def test_cli_settle_with_a_city_from_policy_dir(region, tmp_path):
    d = tmp_path / "cities"
    body = (
        "schemes:\n  employee:\n    categories:\n      inpatient:\n        ratio: {all: 0.50}\n"
        "  resident:\n    categories:\n      inpatient:\n        ratio: {all: 0.50}\n"
    )
    city(d, "example-city-x", "990300", body)
    res = runner.invoke(
        app,
        [
            "settle",
            "--data",
            str(region),
            "--out",
            str(tmp_path / "x"),
            "--policy",
            "example-city-x",
            "--policy-dir",
            str(d),
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["settle", "--data", str(region), "--out", str(tmp_path / "a"), "--policy", "example-city-a"]
    )
    assert res.exit_code == 0, res.output
    lower, shipped = _inpatient_fund(tmp_path / "x"), _inpatient_fund(tmp_path / "a")
    assert 0 < lower < shipped  # the city's 50 % at every level, not the shipped 85–95 %


def test_cli_serve_passes_policy_dir_to_the_book(tmp_path, monkeypatch):
    import uvicorn

    d = tmp_path / "cities"
    city(d, "example-city-x", "990300")
    monkeypatch.setenv(POLICY_DIR_ENV, "")  # restored after the test
    seen = {}

    def fake_run(app_or_path, **kw):
        seen["book"] = PolicyBook.default()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    res = runner.invoke(
        app, ["serve", "--db", f"sqlite:///{tmp_path / 'y.db'}", "--insecure-demo", "--policy-dir", str(d)]
    )
    assert res.exit_code == 0, res.output
    assert os.environ[POLICY_DIR_ENV] == str(d.resolve())
    assert seen["book"].require("990300").name == "example-city-x"


def test_cli_serve_refuses_a_bad_policy_dir(tmp_path, monkeypatch):
    import uvicorn

    d = tmp_path / "cities"
    d.mkdir()
    (d / "broken.yaml").write_text("policy: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv(POLICY_DIR_ENV, "")
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    res = runner.invoke(
        app, ["serve", "--db", f"sqlite:///{tmp_path / 'y.db'}", "--insecure-demo", "--policy-dir", str(d)]
    )
    assert res.exit_code == 2
    assert "broken.yaml" in flat(res.output) and "Traceback" not in res.output


def test_a_new_city_is_just_a_new_file(tmp_path):
    shutil.copytree(POLICY_DIR, tmp_path / "p", ignore=shutil.ignore_patterns("README.md"))
    city(tmp_path / "p", "example-city-y", "990399")
    book = PolicyBook(tmp_path / "p")
    assert book.require("990399").snapshot(DAY).label == "synthetic test city"


def test_cli_policy_show_before_the_first_effective_date():
    res = runner.invoke(app, ["policy", "show", "990100", "--on", "1990-01-01"])
    assert res.exit_code == 2
    out = flat(res.output)
    assert "nocompletepolicyinforceon1990-01-01" in out and "starton2024-01-01" in out
    assert "Traceback" not in res.output


def test_cli_settle_data_region_without_policy_file_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "region"
    data.mkdir()
    pq.write_table(pa.table({"psn_no": ["P1"], "insuplc_admdvs": ["990777"]}), data / "person.parquet")
    res = runner.invoke(app, ["settle", "--data", str(data)])
    assert res.exit_code == 2, res.output
    out = flat(res.output)
    assert "insuredregion990777hasnopolicyfile" in out and "example-city-a(990100)" in out
    assert sorted(p.name for p in data.iterdir()) == ["person.parquet"]  # nothing written


def test_cli_settle_data_region_found_in_policy_dir(region, tmp_path):
    import pyarrow.parquet as pq

    regions = set(pq.read_table(region / "person.parquet", columns=["insuplc_admdvs"]).column(0).to_pylist())
    assert regions == {"990100"}
    res = runner.invoke(app, ["settle", "--data", str(region), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output  # the persons' region has a shipped file: settled with it


def test_book_parents_are_the_books_own_files(tmp_path):
    d = tmp_path / "cities"
    d.mkdir()
    text = (POLICY_DIR / "national-default.yaml").read_text(encoding="utf-8")
    (d / "national-default.yaml").write_text(
        text.replace("resident_individual: 380", "resident_individual: 400"), encoding="utf-8"
    )
    book = PolicyBook(extra_dirs=[d])
    for name in ("national-default", "example-city-a", "example-city-b"):  # shipped cities inherit the replacement
        assert book.require(name).snapshot(DAY).funding.resident_individual == 40000, name
    assert PolicyBook().require("example-city-a").snapshot(DAY).funding.resident_individual == 38000
