"""The data-directory manifest (数据清单): which run produced each table, and refusal of mixed or stale inputs.

A data directory (``yibao synth --out DIR``) holds contract tables as
``DIR/name.parquet`` or ``DIR/name/`` and a ``DIR/manifest.json`` that says
who wrote each table:

``format``, ``generator``, ``yibao_version``, ``seed``, ``people``, ``year``,
``region``, ``created`` (UTC) and ``tables``: per table its ``files``
(relative path, bytes, mtime_ns, sha256), ``rows``, ``sha256`` (of the whole
table), the ``command`` that writes it, ``created`` and — for a *derived*
table (``settlement``, ``accumulator``, ``hits`` …) — ``inputs``, the sha256
of every table it was computed from.

Writers call :func:`begin_source` / :func:`write_source` (the generator) or
:func:`record` (every later writer into DIR).  Readers call :func:`check`
with the tables they read; it raises :class:`ManifestError`, one message
naming the table and the command to re-run, when a table

* differs from the hash the manifest holds (changed or copied in),
* is on disk but not in the manifest (left over from another run),
* was derived from other input hashes than the current ones (stale), or
* is listed but missing.

A directory without ``manifest.json`` is *unmanaged* (assembled by hand or
exported from another system): nothing is checked and nothing is recorded.
A file whose size and mtime match the manifest is trusted without hashing it
again; any other file is hashed in full (sha256).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yibao.core.errors import YibaoError

__all__ = [
    "DERIVED_COMMANDS",
    "MANIFEST_NAME",
    "ManifestError",
    "begin_source",
    "check",
    "load",
    "record",
    "stable_view",
    "status",
    "table_files",
    "write_source",
]

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".manifest.lock"
FORMAT = 2  # format 1: the generator's manifest before tables carried hashes
VOLATILE_KEYS = ("created", "mtime_ns")

# Tables that later commands derive inside a data directory,
# with the command that rewrites each ({dir} = the directory).
DERIVED_COMMANDS: dict[str, str] = {
    "settlement": "yibao settle --data {dir}",
    "settlement_rejected": "yibao settle --data {dir}",
    "accumulator": "yibao settle --data {dir}",
    "hits": "yibao supervision scan --data {dir}",
    "dip_cases": "yibao payment dip settle --data {dir} --out {dir}",
    "dip_periods": "yibao payment dip settle --data {dir} --out {dir}",
    "dip_institutions": "yibao payment dip settle --data {dir} --out {dir}",
    "dip_clearing": "yibao payment dip settle --data {dir} --out {dir}",
}
_CHUNK = 1 << 22


class ManifestError(YibaoError):
    """A data directory's tables do not agree with its manifest (mixed or stale inputs)."""

    code = "E_DATA_MANIFEST"


def _yibao_version() -> str:
    try:
        from importlib.metadata import version

        return version("yibao")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def table_files(data_dir: Path, name: str) -> list[Path]:
    """The files of table ``name``: ``DIR/name.parquet``, else every
    ``*.parquet`` under ``DIR/name/`` (sorted); [] if absent.
    """
    f = data_dir / f"{name}.parquet"
    if f.is_file():
        return [f]
    d = data_dir / name
    if d.is_dir():
        return sorted(p for p in d.rglob("*.parquet") if p.is_file())
    return []


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _file_entry(data_dir: Path, path: Path, known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    st = path.stat()
    rel = path.relative_to(data_dir).as_posix()
    if (
        known
        and known.get("path") == rel
        and known.get("bytes") == st.st_size
        and known.get("mtime_ns") == st.st_mtime_ns
    ):
        digest = known["sha256"]  # unchanged since it was hashed
    else:
        digest = _sha256(path)
    return {"path": rel, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}


def _table_hash(files: list[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f['path']}\0{f['sha256']}\n".encode())
    return h.hexdigest()


def _rows(files: list[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in files)


def load(data_dir: Path) -> dict[str, Any] | None:
    """The manifest of ``data_dir``, or None for an unmanaged
    directory; a damaged manifest raises :class:`ManifestError`.
    """
    m = Path(data_dir) / MANIFEST_NAME
    if not m.is_file():
        return None
    try:
        doc = json.loads(m.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ManifestError(
            f"{m}: cannot read the manifest ({exc}); re-run `yibao synth --out {data_dir}`",
            f"{m}: 无法读取数据清单，请重新运行 yibao synth",
        ) from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{m}: not a manifest; re-run `yibao synth --out {data_dir}`", f"{m}: 数据清单格式错误")
    return doc


def _save(data_dir: Path, doc: Mapping[str, Any]) -> None:
    m = data_dir / MANIFEST_NAME
    tmp = m.with_name(m.name + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, m)  # readers see the old or the new manifest, never half of one


def stable_view(doc: Mapping[str, Any]) -> Any:
    """The manifest without its volatile keys (times): equal for two runs with the same parameters."""
    if isinstance(doc, Mapping):
        return {k: stable_view(v) for k, v in doc.items() if k not in VOLATILE_KEYS}
    if isinstance(doc, list):
        return [stable_view(v) for v in doc]
    return doc


def _source_command(data_dir: Path | None, doc: Mapping[str, Any]) -> str:
    """The generator's command line; ``{dir}`` stands for the directory when ``data_dir`` is None."""
    parts = ["yibao synth", f"--out {'{dir}' if data_dir is None else data_dir}"]
    for key in ("people", "seed", "year"):
        if key in doc:
            parts.append(f"--{key} {doc[key]}")
    if doc.get("patterns"):
        parts.append("--fraud")
    return " ".join(parts)


def _remove_table(data_dir: Path, name: str) -> bool:
    f, d = data_dir / f"{name}.parquet", data_dir / name
    removed = False
    if f.is_file():
        f.unlink()
        removed = True
    if d.is_dir() and table_files(data_dir, name):
        shutil.rmtree(d)
        removed = True
    return removed


def begin_source(data_dir: Path, tables: Iterable[str], params: Mapping[str, Any]) -> list[str]:
    """Before a generator writes ``tables`` into ``data_dir``: remove
    every other table of an earlier run; returns their names.

    Removed: the tables an earlier manifest lists that this run does not
    write, and the known derived tables (:data:`DERIVED_COMMANDS`).  The
    manifest is replaced by one marked ``incomplete`` until
    :func:`write_source`, so readers refuse a directory whose generation was
    interrupted.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    new = set(tables)
    try:
        old = load(data_dir) or {}
    except ManifestError:
        old = {}
    stale = (set(old.get("tables", {})) | set(old.get("rows", {})) | set(DERIVED_COMMANDS)) - new
    removed = sorted(n for n in stale if _remove_table(data_dir, n))
    _save(data_dir, {"format": FORMAT, "incomplete": True, **params, "created": _now(), "tables": {}})
    return removed


def write_source(
    data_dir: Path, params: Mapping[str, Any], rows: Mapping[str, int], *, command: str | None = None
) -> dict[str, Any]:
    """After the generator wrote its tables: the manifest with their files, row counts and hashes."""
    data_dir = Path(data_dir)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "yibao_version": _yibao_version(),
        **params,
        "created": _now(),
        "rows": dict(rows),
    }
    command = command or _source_command(None, doc)  # stored with {dir}: the directory may move
    tables = {}
    for name, n in rows.items():
        files = [_file_entry(data_dir, p) for p in table_files(data_dir, name)]
        tables[name] = {"files": files, "rows": int(n), "sha256": _table_hash(files), "command": command}
    doc["tables"] = tables
    _save(data_dir, doc)
    return doc


def _refuse(data_dir: Path, name: str, why_en: str, why_zh: str, command: str) -> ManifestError:
    return ManifestError(
        f"{data_dir}: table {name!r} {why_en}; re-run `{command}`",
        f"{data_dir}: 表 {name} {why_zh}，请重新运行 {command}",
        field=name,
    )


def _command(data_dir: Path, doc: Mapping[str, Any], name: str) -> str:
    entry = doc.get("tables", {}).get(name)
    if entry and entry.get("command"):
        return str(entry["command"]).replace("{dir}", str(data_dir))
    if name in DERIVED_COMMANDS:
        return DERIVED_COMMANDS[name].format(dir=data_dir)
    return _source_command(data_dir, doc)


def _current(data_dir: Path, doc: Mapping[str, Any], name: str, seen: dict[str, str]) -> str:
    """The verified sha256 of table ``name`` (and, for a derived table, of its inputs); raises on any disagreement."""
    if name in seen:
        return seen[name]
    tables = doc.get("tables", {})
    files = table_files(data_dir, name)
    entry = tables.get(name)
    if entry is None:
        if not files:
            raise _refuse(
                data_dir,
                name,
                "is needed but neither on disk nor in the manifest",
                "不存在",
                _command(data_dir, doc, name),
            )
        raise _refuse(
            data_dir,
            name,
            f"is not in {MANIFEST_NAME} (left over from an earlier run?)",
            "不在数据清单中（可能是旧运行的遗留）",
            _command(data_dir, doc, name),
        )
    if not files:
        raise _refuse(
            data_dir,
            name,
            "is listed in the manifest but missing",
            "在数据清单中但文件缺失",
            _command(data_dir, doc, name),
        )
    known = {f["path"]: f for f in entry.get("files", [])}
    now = [_file_entry(data_dir, p, known.get(p.relative_to(data_dir).as_posix())) for p in files]
    if _table_hash(now) != entry.get("sha256"):
        raise _refuse(
            data_dir,
            name,
            "does not match its hash in the manifest (changed or copied in after it was written)",
            "与数据清单的哈希不符（写入后被修改或替换）",
            _command(data_dir, doc, name),
        )
    for dep, digest in sorted((entry.get("inputs") or {}).items()):
        try:
            current = _current(data_dir, doc, dep, seen)
        except ManifestError:
            raise
        if current != digest:
            raise _refuse(
                data_dir,
                name,
                f"was computed from another {dep!r} than the current one (stale)",
                f"由另一版本的 {dep} 计算（已过期）",
                _command(data_dir, doc, name),
            )
    seen[name] = entry["sha256"]
    return entry["sha256"]


def _usable(data_dir: Path, doc: Mapping[str, Any]) -> None:
    if doc.get("incomplete"):
        raise ManifestError(
            f"{data_dir}: the generation of this directory did not finish; re-run `{_source_command(data_dir, doc)}`",
            f"{data_dir}: 数据生成未完成，请重新运行 yibao synth",
            field="manifest",
        )
    if "tables" not in doc:
        raise ManifestError(
            f"{data_dir}: {MANIFEST_NAME} was written by an older yibao without table hashes; re-run "
            f"`{_source_command(data_dir, doc)}`",
            f"{data_dir}: 数据清单为旧版本（无哈希），请重新运行 yibao synth",
            field="manifest",
        )


def check(data_dir: Path, names: Iterable[str], *, optional: Iterable[str] = ()) -> dict[str, str] | None:
    """Refuse mixed or stale inputs: verify the tables ``names`` (and
    the ``optional`` ones present on disk) against the manifest.

    Returns the verified sha256 per table (inputs of derived tables included),
    or None for an unmanaged directory (no manifest).  A table of ``names``
    that is neither on disk nor in the manifest is left to the caller (its
    own "not found" message).
    """
    data_dir = Path(data_dir)
    doc = load(data_dir)
    if doc is None:
        return None
    _usable(data_dir, doc)
    seen: dict[str, str] = {}
    listed = doc.get("tables", {})
    for name in names:
        if table_files(data_dir, name) or name in listed:
            _current(data_dir, doc, name, seen)
    for name in optional:
        if table_files(data_dir, name) or name in listed:
            _current(data_dir, doc, name, seen)
    return seen


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """Serialise read-modify-write of the manifest between processes (two writers into one directory); POSIX only."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, writers are not serialised
        yield
        return
    with open(data_dir / LOCK_NAME, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def record(data_dir: Path, outputs: Iterable[str], inputs: Iterable[str], command: str) -> bool:
    """After a writer put ``outputs`` into ``data_dir``: record them
    with the hashes of the ``inputs`` they were computed from.

    ``command`` rewrites the outputs, with ``{dir}`` for the directory (``"yibao settle --data {dir}"``).
    The inputs are verified first (they must be those the writer read).
    Does nothing in an unmanaged directory; returns whether it recorded.
    """
    data_dir = Path(data_dir)
    if load(data_dir) is None:
        return False
    with _locked(data_dir):
        return _record(data_dir, list(outputs), inputs, command)


def _record(data_dir: Path, outputs: list[str], inputs: Iterable[str], command: str) -> bool:
    doc = load(data_dir)
    if doc is None:
        return False
    _usable(data_dir, doc)
    seen: dict[str, str] = {}
    deps = {}
    for name in sorted(set(inputs)):
        if table_files(data_dir, name) or name in doc["tables"]:
            deps[name] = _current(data_dir, doc, name, seen)
    created = _now()
    for name in outputs:
        paths = table_files(data_dir, name)
        if not paths:
            raise ManifestError(f"{data_dir}: {name!r} was not written", f"{data_dir}: 未写入 {name}", field=name)
        files = [_file_entry(data_dir, p) for p in paths]
        doc["tables"][name] = {
            "files": files,
            "rows": _rows(paths),
            "sha256": _table_hash(files),
            "command": command,
            "created": created,
            "inputs": deps,
        }
    _save(data_dir, doc)
    return True


def _on_disk(data_dir: Path) -> list[str]:
    names = {p.stem for p in data_dir.glob("*.parquet") if p.is_file()}
    names |= {
        d.name
        for d in data_dir.iterdir()
        if d.is_dir() and not d.name.startswith((".", "_")) and any(d.rglob("*.parquet"))
    }
    return sorted(names)


def status(data_dir: Path) -> list[tuple[str, bool, str]]:
    """``(table, ok, detail)`` for every table the manifest lists or the directory holds (``yibao data check``).

    Raises :class:`ManifestError` when there is no usable manifest at all.
    """
    data_dir = Path(data_dir)
    doc = load(data_dir)
    if doc is None:
        raise ManifestError(
            f"{data_dir}: no {MANIFEST_NAME}: an unmanaged directory, nothing to check (write one with `yibao synth "
            f"--out {data_dir}`)",
            f"{data_dir}: 没有数据清单",
            field="manifest",
        )
    _usable(data_dir, doc)
    out = []
    for name in sorted(set(doc.get("tables", {})) | set(_on_disk(data_dir))):
        try:
            _current(data_dir, doc, name, {})
        except ManifestError as exc:
            out.append((name, False, exc.message_en))
            continue
        entry = doc["tables"][name]
        cmd = (
            str(entry.get("command", "?")).split(" --", 1)[0].split("&& ")[-1]
        )  # the command's name: yibao settle, yibao synth …
        how = f"derived by {cmd} from {len(entry['inputs'])} table(s)" if entry.get("inputs") else f"source ({cmd})"
        out.append((name, True, f"{entry.get('rows', 0):,} rows, {how}"))
    return out
