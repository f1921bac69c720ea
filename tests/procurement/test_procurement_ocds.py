"""OCDS export: full-schema validation mechanics (merge-patched bids extension, draft 4, $ref from the package to
the release schema), the subset fallback that says it is one, and the CLI refusing an export that fails.

The schema files written here are a SMALL SYNTHETIC FIXTURE laid out like the published OCDS 1.1 files (same
file names, ids, $ref and extension mechanism) - NOT the official schema, which no reachable registry package
ships.  With ``YIBAO_OCDS_SCHEMA`` pointing at a local copy of the published schema, the last test validates a
real export against it.
"""

from __future__ import annotations

import json
import os
import zipfile

import pytest

from yibao.procurement.engine import run_round
from yibao.procurement.ocds_schema import OcdsSchemaError, load_full_schema, merge_patch
from yibao.procurement.params import get_ruleset
from yibao.procurement.report import ocds_validation_mode, to_ocds, validate_ocds
from yibao.synth.procurement import generate_round

BASE = "https://standard.open-contracting.org/schema/1__1__5/"
D4 = "http://json-schema.org/draft-04/schema#"
PACKAGE = {
    "id": BASE + "release-package-schema.json",
    "$schema": D4,
    "type": "object",
    "required": ["uri", "publisher", "publishedDate", "releases", "version"],
    "properties": {
        "uri": {"type": "string"},
        "version": {"type": "string", "pattern": "^(\\d+\\.)(\\d+)$"},
        "publishedDate": {"type": "string"},
        "publisher": {"type": "object", "required": ["name"]},
        "extensions": {"type": "array", "items": {"type": "string"}},
        "releases": {"type": "array", "minItems": 1, "items": {"$ref": BASE + "release-schema.json"}},
    },
}
RELEASE = {
    "id": BASE + "release-schema.json",
    "$schema": D4,
    "type": "object",
    "required": ["ocid", "id", "date", "tag", "initiationType"],
    "properties": {
        "ocid": {"type": "string", "minLength": 1},
        "id": {"type": "string"},
        "date": {"type": "string"},
        "tag": {"type": "array", "items": {"type": "string", "enum": ["tender", "award", "contract"]}},
        "initiationType": {"type": "string", "enum": ["tender"]},
        "awards": {"type": "array", "items": {"$ref": "#/definitions/Award"}},
    },
    "definitions": {
        "Award": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": ["string", "integer"]},
                "status": {
                    "type": ["string", "null"],
                    "enum": ["pending", "active", "cancelled", "unsuccessful", None],
                },
            },
        }
    },
}
BIDS_PATCH = {
    "properties": {"bids": {"$ref": "#/definitions/Bids"}},
    "definitions": {
        "Bids": {
            "type": "object",
            "properties": {"details": {"type": "array", "items": {"$ref": "#/definitions/Bid"}}},
        },
        "Bid": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "status": {
                    "type": ["string", "null"],
                    "enum": ["invited", "pending", "valid", "disqualified", "withdrawn", None],
                }
            },
        },
    },
}


def _fixture(root, *, extension=True):
    (root / "schema").mkdir(parents=True)
    (root / "schema" / "release-package-schema.json").write_text(json.dumps(PACKAGE), encoding="utf-8")
    (root / "schema" / "release-schema.json").write_text(json.dumps(RELEASE), encoding="utf-8")
    if extension:
        (root / "ocds_bid_extension").mkdir()
        (root / "ocds_bid_extension" / "release-schema.json").write_text(json.dumps(BIDS_PATCH), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def export():
    sr = generate_round(drugs=2, institutions=40, seed=5)
    return to_ocds(sr.round, run_round(sr.round, get_ruleset("national-batch-10")))


def test_merge_patch_is_rfc_7386():
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}, "f": [1]}) == {
        "a": 1,
        "b": {"d": 3, "e": 4},
        "f": [1],
    }
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}  # arrays replace
    assert merge_patch({"a": 1}, "x") == "x"


def test_export_validates_against_the_full_schema_layout(tmp_path, export):
    loc = _fixture(tmp_path / "std")
    assert validate_ocds(export, loc) == []
    assert "with the bids extension" in ocds_validation_mode(loc)
    bad = json.loads(json.dumps(export, default=str))
    bad["releases"][0]["bids"]["details"][0]["status"] = "bogus"
    bad["releases"][1]["awards"][0]["status"] = "won"
    del bad["releases"][0]["initiationType"]
    errors = validate_ocds(bad, loc)
    assert any(e.startswith("releases/0/bids/details/0/status") and "bogus" in e for e in errors)
    assert any(e.startswith("releases/1/awards/0/status") for e in errors)
    assert any("initiationType" in e for e in errors)
    # without the extension the bid status is not checked: the patch is what brings the bids rules in
    bare = _fixture(tmp_path / "bare", extension=False)
    assert not any("bids" in e for e in validate_ocds(bad, bare)) and "NOT found" in ocds_validation_mode(bare)


def test_schema_from_a_zip_and_from_the_environment(tmp_path, export, monkeypatch):
    loc = _fixture(tmp_path / "std")
    z = tmp_path / "standard.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in loc.rglob("*.json"):
            zf.write(p, "standard-1.1.5/" + p.relative_to(loc).as_posix())
    assert load_full_schema(z).extension_found
    monkeypatch.setenv("YIBAO_OCDS_SCHEMA", str(z))
    assert validate_ocds(export) == [] and "full OCDS 1.1 schema" in ocds_validation_mode()
    monkeypatch.delenv("YIBAO_OCDS_SCHEMA")
    assert ocds_validation_mode().startswith("SUBSET schema only")


def test_incomplete_schema_copy_is_a_clear_error(tmp_path, export):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "release-schema.json").write_text("{}", encoding="utf-8")
    with pytest.raises(OcdsSchemaError, match="release-package-schema.json of OCDS 1.1 not found"):
        validate_ocds(export, tmp_path / "x")
    (tmp_path / "x" / "release-package-schema.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(OcdsSchemaError, match="not valid JSON"):
        validate_ocds(export, tmp_path / "x")


def test_cli_names_the_schema_used_and_refuses_before_writing(tmp_path):
    from typer.testing import CliRunner

    from yibao.cli import app

    runner = CliRunner()
    rd = tmp_path / "r"
    assert (
        runner.invoke(
            app, ["procurement", "synth", str(rd), "--drugs", "2", "--institutions", "30", "--seed", "4"]
        ).exit_code
        == 0
    )
    r = runner.invoke(
        app, ["procurement", "run", str(rd), "--rules", "national-batch-09", "--out", str(tmp_path / "o1")]
    )
    assert r.exit_code == 0 and "SUBSET schema only" in " ".join(r.output.split())
    loc = _fixture(tmp_path / "std")
    r = runner.invoke(
        app,
        [
            "procurement",
            "run",
            str(rd),
            "--rules",
            "national-batch-09",
            "--out",
            str(tmp_path / "o2"),
            "--ocds-schema",
            str(loc),
        ],
    )
    assert r.exit_code == 0 and "with the bids extension" in " ".join(r.output.split())
    # a schema the export cannot meet: refused, nothing written
    strict = json.loads(json.dumps(RELEASE))
    strict["properties"]["initiationType"]["enum"] = ["other"]
    (loc / "schema" / "release-schema.json").write_text(json.dumps(strict), encoding="utf-8")
    r = runner.invoke(
        app,
        [
            "procurement",
            "run",
            str(rd),
            "--rules",
            "national-batch-09",
            "--out",
            str(tmp_path / "o3"),
            "--ocds-schema",
            str(loc),
        ],
    )
    assert r.exit_code == 2 and "does not validate" in r.output and not (tmp_path / "o3").exists()


@pytest.mark.skipif(
    not os.environ.get("YIBAO_OCDS_SCHEMA"), reason="no local copy of the published OCDS schema (YIBAO_OCDS_SCHEMA)"
)
def test_export_against_the_published_schema(export):
    assert "with the bids extension" in ocds_validation_mode()
    assert validate_ocds(export) == []
