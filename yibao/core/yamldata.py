"""Reading the YAML data files under ``yibao/data/`` (数据文件): exactly, validated, one error type.

Rates, multiples and amounts in rule files end up multiplying money, so numbers are read
exactly as written: a YAML float (``0.1``, ``1e3``) becomes ``Decimal("0.1")``, never a
binary float; integers stay ``int``.  A file is then validated with the pydantic model the
caller gives.  Every failure (file missing or unreadable, bad YAML, wrong top level, a value
the model refuses, a check of the caller's own) raises :class:`DataFileError`, which names
the file, the key path and the reason in English and Chinese.

A subsystem that had its own error type before (``PolicyError``, ``RuleSetError`` …) passes
it as ``error=``: the error raised is then both a :class:`DataFileError` and that type (and
keeps its stable ``code``), so existing ``except`` clauses keep working.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from yibao.core.errors import YibaoError

__all__ = [
    "DataFileError",
    "DecimalLoader",
    "data_error",
    "load_decimal_yaml",
    "load_model",
    "read_yaml",
    "validate",
]

M = TypeVar("M", bound=BaseModel)


class DecimalLoader(yaml.SafeLoader):
    """Safe YAML loader that reads floats as ``Decimal``."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    low = text.lower().lstrip("+")
    if low in (".inf", "-.inf", ".nan"):
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r}: infinity and NaN are not data values", node.start_mark
        )
    return Decimal(text)


DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def load_decimal_yaml(text: str) -> Any:
    """Parse YAML text safely, floats as ``Decimal`` (raises ``yaml.YAMLError`` on bad YAML)."""
    return yaml.load(text, Loader=DecimalLoader)  # noqa: S506 - SafeLoader subclass


class DataFileError(YibaoError):
    """A data file is missing or invalid: ``file`` (the path; the message names the file), ``key`` (dotted
    path, "" for the whole file) and the reason."""

    code = "E_DATA_FILE"

    def __init__(self, file: str | Path, key: str, reason_en: str, reason_zh: str | None = None):
        self.file = str(file)
        self.key = key
        self.reason_en = reason_en
        self.reason_zh = reason_zh or reason_en
        name = Path(self.file).name or self.file
        where = f"{name}: {key}: " if key else f"{name}: "
        YibaoError.__init__(self, where + reason_en, where + self.reason_zh, field=key or None)

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes, as the caller's type
        cls = type(self)
        base = cls.__dict__.get("_legacy", cls)
        return _rebuild, (base, self.file, self.key, self.reason_en, self.reason_zh)


@cache
def _error_class(error: type[YibaoError] | None) -> type[DataFileError]:
    """``DataFileError`` itself, or a subclass that is also ``error`` (keeping its ``code``)."""
    if error is None or issubclass(error, DataFileError):
        return error or DataFileError
    return type(
        error.__name__,
        (DataFileError, error),
        {"code": error.code, "__module__": error.__module__, "__doc__": error.__doc__, "_legacy": error},
    )


def data_error(
    file: str | Path, key: str, reason_en: str, reason_zh: str | None = None, *, error: type[YibaoError] | None = None
) -> DataFileError:
    """The error for a check the caller makes itself on a data file (raise it)."""
    # a class is hashable; typeshed types YibaoError.__hash__ as an unbound method, which mypy rejects
    cls = DataFileError if error is None else _error_class(error)  # type: ignore[arg-type]
    return cls(file, key, reason_en, reason_zh)


def _rebuild(base: type[YibaoError] | None, file: str, key: str, en: str, zh: str) -> DataFileError:
    return data_error(file, key, en, zh, error=base)


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(x) for x in loc)


def read_yaml(
    path: str | Path,
    *,
    what: tuple[str, str] = ("data file", "数据文件"),
    error: type[YibaoError] | None = None,
    mapping: bool = True,
    empty: Any = None,
) -> Any:
    """The parsed content of one YAML file, floats as ``Decimal``.

    ``what`` is the kind of file (English, Chinese) for the messages.  ``mapping`` requires the
    top level to be a mapping; an empty file gives ``empty`` when that is not None (an error
    otherwise, when ``mapping``).
    """
    p = Path(path)
    en, zh = what
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise data_error(
            p, "", f"{en} not found (in {p.parent})", f"找不到{zh} (目录 {p.parent})", error=error
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise data_error(p, "", f"cannot read {en}: {exc}", f"无法读取{zh}: {exc}", error=error) from None
    try:
        data = load_decimal_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is not None:
            problem = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
        raise data_error(p, "", f"not valid YAML ({problem})", f"YAML 格式错误 ({problem})", error=error) from None
    if data is None and empty is not None:
        return empty
    if mapping and not isinstance(data, dict):
        raise data_error(p, "", "top level must be a mapping", "顶层必须是映射", error=error)
    return data


def validate(
    path: str | Path,
    model: type[M],
    data: Any,
    *,
    what: tuple[str, str] = ("data file", "数据文件"),
    error: type[YibaoError] | None = None,
    context: dict[str, Any] | None = None,
) -> M:
    """``model`` validated from ``data`` read from ``path``; the first refusal as a :class:`DataFileError`."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _key_path(first["loc"])
        msg = first["msg"]
        raise data_error(path, key, msg, f"{what[1]}取值无效 ({msg})", error=error) from None


def load_model(
    path: str | Path,
    model: type[M],
    *,
    what: tuple[str, str] = ("data file", "数据文件"),
    error: type[YibaoError] | None = None,
    empty: Any = None,
) -> M:
    """Read ``path`` exactly and validate it with ``model`` (the
    one-call form of :func:`read_yaml` + :func:`validate`).
    """
    return validate(path, model, read_yaml(path, what=what, error=error, empty=empty), what=what, error=error)
