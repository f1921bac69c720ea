"""Validation of the OCDS export against the FULL published schema (OCDS 1.1
release-package and release schemas, patched with the bids extension), when a
local copy of the published schema files is available.

Why a local copy: no package on the registries this project can reach ships the
OCDS schema files.  The maintained validators (``libcoveocds``, ``ocdskit``,
``ocdsextensionregistry``) download the standard's schema and each extension at
run time from the standard's and GitHub's servers, which this platform's
machines cannot reach.  So the schema is read from a directory or ZIP the
operator provides (``YIBAO_OCDS_SCHEMA`` or ``--ocds-schema``):

* ``release-package-schema.json`` and ``release-schema.json`` of OCDS 1.1 (as
  published under ``/schema/1__1__5/`` or in the standard's ZIP, any depth);
* the bids extension's ``release-schema.json`` under a folder whose name
  contains ``bid`` (e.g. ``ocds_bid_extension/release-schema.json``).

The extension is applied as OCDS prescribes: a JSON Merge Patch (RFC 7386) on
the release schema.  Validation uses JSON Schema draft 4, the draft OCDS 1.1 is
written in; the package's ``$ref`` to the release schema resolves to the
patched schema.  Without a local copy :func:`yibao.procurement.report.validate_ocds`
falls back to a subset schema and says so.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from yibao.core.errors import YibaoError

ENV = "YIBAO_OCDS_SCHEMA"


class OcdsSchemaError(YibaoError):
    """The local copy of the OCDS schema is missing, incomplete or not JSON."""

    code = "E_OCDS_SCHEMA"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge key by key, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


@dataclass(frozen=True)
class FullSchema:
    source: str
    package: dict
    release: dict  # patched with the bids extension
    extension_found: bool


def _files(root: Path) -> dict[str, bytes]:
    """Every ``*.json`` under a directory or inside a ZIP, by posix path."""
    out: dict[str, bytes] = {}
    if root.is_dir():
        for p in root.rglob("*.json"):
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    elif root.is_file() and zipfile.is_zipfile(root):
        with zipfile.ZipFile(root) as z:
            for n in z.namelist():
                if n.endswith(".json"):
                    out[n] = z.read(n)
    else:
        raise OcdsSchemaError(
            f"{root}: OCDS schema location is neither a directory nor a ZIP file",
            f"{root}: OCDS 模式文件位置既不是目录也不是 ZIP 文件",
            field="ocds_schema",
        )
    return out


def _json(name: str, data: bytes) -> dict:
    try:
        v = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OcdsSchemaError(
            f"{name}: not valid JSON ({exc})", f"{name}: 不是有效的 JSON", field="ocds_schema"
        ) from None
    if not isinstance(v, dict):
        raise OcdsSchemaError(
            f"{name}: a schema must be a JSON object", f"{name}: 模式必须是 JSON 对象", field="ocds_schema"
        )
    return v


def load_full_schema(location: str | Path) -> FullSchema:
    """Read the package and release schemas and the bids extension from ``location``."""
    root = Path(location)
    files = _files(root)

    def pick(basename: str, *, bid: bool) -> tuple[str, bytes] | None:
        cands = sorted(
            (n for n in files if PurePosixPath(n).name == basename and (("bid" in n.lower()) == bid)),
            key=lambda n: (n.count("/"), n),
        )
        return (cands[0], files[cands[0]]) if cands else None

    pkg, rel, ext = (
        pick("release-package-schema.json", bid=False),
        pick("release-schema.json", bid=False),
        pick("release-schema.json", bid=True),
    )
    for what, found in (("release-package-schema.json", pkg), ("release-schema.json", rel)):
        if found is None:
            raise OcdsSchemaError(
                f"{root}: {what} of OCDS 1.1 not found", f"{root}: 找不到 OCDS 1.1 的 {what}", field="ocds_schema"
            )
    release = _json(*rel)  # type: ignore[misc]
    if ext is not None:
        release = merge_patch(release, _json(*ext))
    return FullSchema(str(root), _json(*pkg), release, ext is not None)  # type: ignore[misc]


def configured_location(explicit: str | Path | None = None) -> str | None:
    loc = explicit or os.environ.get(ENV)
    return str(loc) if loc else None


def validate_full(package: dict, schema: FullSchema) -> list[str]:
    """Errors of ``package`` against the full schema (draft 4), as ``path: message`` lines."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    pkg_schema = schema.package
    rel = schema.release
    # the package's releases point at the release schema by URL: resolve every such URL to the patched copy
    urls = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.split("#")[0].endswith("release-schema.json"):
                urls.add(ref.split("#")[0])
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(pkg_schema)
    resource = Resource.from_contents(rel, default_specification=DRAFT4)
    registry = Registry().with_resources(
        [(u, resource) for u in urls] + ([(rel["id"], resource)] if isinstance(rel.get("id"), str) else [])
    )
    v = jsonschema.Draft4Validator(
        pkg_schema, registry=registry, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(package)'}: {e.message}" for e in v.iter_errors(package)]
    if not urls:
        # a package schema without a $ref to the release schema: validate each release directly
        rv = jsonschema.Draft4Validator(rel, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
        for i, r in enumerate(package.get("releases", []) or []):
            errors += [f"releases/{i}/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in rv.iter_errors(r)]
    return errors
