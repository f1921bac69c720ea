"""The published structures of the national 医保 business codes (医保信息业务编码标准).

Pure functions: parse a code into its named segments, or say precisely why it
does not have the structure.  Sources and what is confirmed or uncertain are in
``yibao/data/codes/README.md`` ("National code structures"); the structures here
are the ones written there, segment by segment.

==================  =================================================  ======
structure           layout (segments)                                  length
==================  =================================================  ======
``drug_western``    ``X`` + ATC level-4 group (``C08CA``) + generic     23
                    name ``[A-Z]ddd`` + dosage form ``[A-Z]d`` +
                    11 digits (specification, package, enterprise)
``drug_tcm``        ``Z`` + category ``[A-Z]dd[A-Z][A-Z]`` + name       20
                    ``[A-Z]ddd`` + 10 digits
``herbal``          ``T`` + 9 digits  (UNCERTAIN)                       10
``consumable``      ``C`` + class 2+2+2 digits + generic name 3 +       20/27
                    material/feature 5 + enterprise 5 [+ model 7]
``service``         15 digits: ``00`` + 9-digit price-item code +       15
                    4-digit extension [+ ``-`` local suffix]
``institution``     ``H`` (medical) / ``P`` (pharmacy) + division 6 +   12
                    sequence 5
``practitioner``    ``D`` 医师 / ``N`` 护士 / ``Y`` 药师 + division 6 +  13
                    sequence 6; ``HY`` 药学 / ``HJ`` 技术 + 6 + 6         14
==================  =================================================  ======

Every failure raises :class:`~yibao.core.errors.CodeTableError` whose
message names the field and the code (``med_list_codg 'W0101': …``); the
loaders add the file and line.  Where a code embeds a 医保区划 division,
:func:`check_division` checks it against a division table.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass

from yibao.core.contract import city_part, province_code, province_part
from yibao.core.errors import CodeTableError

CODE_STRUCTURES = ("national", "local")
"""``national``: every code must have its published structure; ``local``: a region's own codes (format only)."""

DEFAULT_CODE_STRUCTURE = "national"

# ATC anatomical main groups (WHO ATC index): the first letter of a western drug's category
ATC_MAIN_GROUPS = frozenset("ABCDGHJLMNPRSV")

LIST_KIND_STRUCTURE = {
    "western": "drug_western",
    "tcm_patent": "drug_tcm",
    "herbal": "herbal",
    "consumable": "consumable",
    "service": "service",
}
"""The structure a medical-list row's code must have, by its ``list_kind``."""

PRAC_PSN_TYPES = {"1": "医师", "2": "护士", "3": "药师", "4": "医技人员"}
"""``prac_psn_type`` (执业人员分类, interface 5102; values of ``medins_psn_type``)."""

PRACTITIONER_PREFIXES = {"D": ("1",), "N": ("2",), "Y": ("3",), "HY": ("3",), "HJ": ("4",)}
"""Identification letters of a practitioner code and the ``prac_psn_type`` each may carry."""

INSTITUTION_PREFIXES = {"H": ("hospital", "primary"), "P": ("pharmacy",)}
"""Identification letter of a 定点医药机构 code and the contract ``fixmedins_type`` it may carry."""


@dataclass(frozen=True, slots=True)
class ParsedCode:
    """A code split into named segments (in order); ``division`` is set when the code embeds one."""

    structure: str
    code: str
    segments: tuple[tuple[str, str], ...]

    def __getitem__(self, name: str) -> str:
        for k, v in self.segments:
            if k == name:
                return v
        raise KeyError(name)

    @property
    def division(self) -> str | None:
        return dict(self.segments).get("division")


def _fail(field: str, code: object, en: str, zh: str) -> CodeTableError:
    return CodeTableError(f"{field} {code!r}: {en}", f"{field} {code!r}: {zh}", field=field)


# Each structure: (regex with named groups in segment order, English layout, Chinese layout)
_ATC4 = r"[A-Z][0-9]{2}[A-Z]{2}"
_STRUCTURES: dict[str, tuple[re.Pattern[str], str, str]] = {
    "drug_western": (
        re.compile(
            rf"(?P<kind>X)(?P<category>{_ATC4})(?P<name>[A-Z][0-9]{{3}})(?P<dosage_form>[A-Z][0-9])(?P<tail>[0-9]{{11}})"
        ),
        "X + ATC level-4 group (letter, 2 digits, 2 letters) + generic-name code (letter, 3 digits)"
        " + dosage form (letter, digit) + 11 digits, 23 characters",
        "X + ATC 第四级类别(1 字母 2 数字 2 字母) + 通用名码(1 字母 3 数字)"
        " + 剂型码(1 字母 1 数字) + 11 位数字, 共 23 位",
    ),
    "drug_tcm": (
        re.compile(r"(?P<kind>Z)(?P<category>[A-Z][0-9]{2}[A-Z]{2})(?P<name>[A-Z][0-9]{3})(?P<tail>[0-9]{10})"),
        "Z + category (letter, 2 digits, 2 letters) + name code (letter, 3 digits) + 10 digits, 20 characters",
        "Z + 类别码(1 字母 2 数字 2 字母) + 名称码(1 字母 3 数字) + 10 位数字, 共 20 位",
    ),
    "herbal": (
        re.compile(r"(?P<kind>T)(?P<serial>[0-9]{9})"),
        "T + 9 digits, 10 characters",
        "T + 9 位数字, 共 10 位",
    ),
    "consumable": (
        re.compile(
            r"(?P<kind>C)(?P<class1>[0-9]{2})(?P<class2>[0-9]{2})(?P<class3>[0-9]{2})(?P<generic>[0-9]{3})"
            r"(?P<feature>[0-9]{5})(?P<enterprise>[0-9]{5})(?P<model>[0-9]{7})?"
        ),
        "C + class (3 levels of 2 digits) + generic name (3 digits) + material/feature (5 digits)"
        " + enterprise (5 digits), 20 characters, optionally + model (7 digits) = 27",
        "C + 一/二/三级分类各 2 位 + 通用名 3 位 + 材质特征 5 位 + 企业 5 位, 共 20 位(可再加规格型号 7 位, 共 27 位)",
    ),
    "service": (
        re.compile(r"(?P<prefix>[0-9]{2})(?P<item>[0-9]{9})(?P<extension>[0-9]{4})(?:-(?P<local>[0-9A-Za-z.]{1,20}))?"),
        "15 digits (2 + 9-digit price-item code + 4-digit extension), optionally '-' and a local suffix",
        "15 位数字(2 位 + 9 位价格项目码 + 4 位扩展码), 可带 '-' 及地方后缀",
    ),
    "institution": (
        re.compile(r"(?P<kind>[HP])(?P<division>[0-9]{6})(?P<serial>[0-9]{5})"),
        "H (medical institution) or P (pharmacy) + 6-digit division + 5-digit sequence, 12 characters",
        "H(医疗机构)或 P(零售药店) + 6 位行政区划 + 5 位顺序码, 共 12 位",
    ),
    "practitioner": (
        re.compile(
            r"(?:(?P<kind>[DNY])(?P<division>[0-9]{6})(?P<serial>[0-9]{6})|(?P<kind_hy>H[YJ])(?P<division_hy>[0-9]{6})(?P<serial_hy>[0-9]{6}))"
        ),
        "D (医师), N (护士) or Y (药师) + 6-digit division + 6-digit sequence (13 characters), or HY/HJ + 6 + 6 (14)",
        "D(医师)、N(护士)或 Y(药师) + 6 位行政区划 + 6 位顺序码(共 13 位), 或 HY/HJ + 6 + 6(共 14 位)",
    ),
}
STRUCTURES = tuple(_STRUCTURES)

_FIELD = {
    "drug_western": "med_list_codg",
    "drug_tcm": "med_list_codg",
    "herbal": "med_list_codg",
    "consumable": "med_list_codg",
    "service": "med_list_codg",
    "institution": "fixmedins_code",
    "practitioner": "prac_psn_code",
}


def describe_structure(structure: str) -> str:
    """The layout of a structure in words (English)."""
    return _STRUCTURES[_known(structure)][1]


def _known(structure: str) -> str:
    if structure not in _STRUCTURES:
        raise CodeTableError(
            f"unknown code structure {structure!r}; one of {STRUCTURES}",
            f"未知的编码结构 {structure!r}",
            field="code_structure",
        )
    return structure


def parse(structure: str, code: object, *, field: str | None = None) -> ParsedCode:
    """Split ``code`` by ``structure`` (one of :data:`STRUCTURES`) or raise naming ``field`` and the code."""
    rx, layout_en, layout_zh = _STRUCTURES[_known(structure)]
    field = field or _FIELD[structure]
    if not isinstance(code, str) or not code:
        raise _fail(field, code, f"empty or not text; expected {layout_en}", f"编码为空; 应为 {layout_zh}")
    m = rx.fullmatch(code)
    if m is None:
        hint = _hint(structure, code)
        raise _fail(
            field,
            code,
            f"not the national structure: {hint}expected {layout_en}",
            f"不符合国家编码结构: 应为 {layout_zh}",
        )
    segs = [(k.removesuffix("_hy"), v) for k, v in m.groupdict().items() if v is not None]
    if structure == "drug_western" and m["category"][0] not in ATC_MAIN_GROUPS:
        raise _fail(
            field,
            code,
            f"category {m['category']!r} does not start with an ATC main group {''.join(sorted(ATC_MAIN_GROUPS))}",
            f"类别码 {m['category']!r} 的首字母不是 ATC 解剖学主组",
        )
    return ParsedCode(structure, code, tuple(segs))


def _hint(structure: str, code: str) -> str:
    """A short first reason (length or leading letter) before the full layout."""
    lead = {"drug_western": "X", "drug_tcm": "Z", "herbal": "T", "consumable": "C"}.get(structure)
    if lead and not code.startswith(lead):
        return f"it must start with {lead!r}; "
    lengths = {
        "drug_western": (23,),
        "drug_tcm": (20,),
        "herbal": (10,),
        "consumable": (20, 27),
        "institution": (12,),
        "practitioner": (13, 14),
    }.get(structure)
    if lengths and len(code) not in lengths:
        return f"{len(code)} characters, not {' or '.join(map(str, lengths))}; "
    if structure == "institution" and code[:1] not in INSTITUTION_PREFIXES:
        return "it must start with H (medical institution) or P (pharmacy); "
    if structure == "practitioner" and not (code[:1] in "DNY" or code[:2] in ("HY", "HJ")):
        return "it must start with D, N, Y, HY or HJ; "
    return ""


def parse_med_list_code(code: object, list_kind: str, *, field: str = "med_list_codg") -> ParsedCode:
    """A medical-list code in the structure its ``list_kind`` requires (:data:`LIST_KIND_STRUCTURE`)."""
    try:
        structure = LIST_KIND_STRUCTURE[list_kind]
    except KeyError:
        raise _fail(
            "list_kind",
            list_kind,
            f"no national structure for list_kind; one of {sorted(LIST_KIND_STRUCTURE)}",
            "目录类别无对应的国家编码结构",
        ) from None
    return parse(structure, code, field=field)


def parse_institution_code(
    code: object, fixmedins_type: str | None = None, *, field: str = "fixmedins_code"
) -> ParsedCode:
    """A 定点医药机构 code; with ``fixmedins_type``, its letter must fit (H medical, P pharmacy)."""
    p = parse("institution", code, field=field)
    if fixmedins_type is not None and fixmedins_type not in INSTITUTION_PREFIXES[p["kind"]]:
        want = "P" if fixmedins_type == "pharmacy" else "H"
        raise _fail(
            field,
            code,
            f"a {fixmedins_type} has a code starting with {want}, not {p['kind']}",
            f"{fixmedins_type} 的机构编码应以 {want} 开头",
        )
    return p


def parse_practitioner_code(
    code: object, prac_psn_type: str | None = None, *, field: str = "prac_psn_code"
) -> ParsedCode:
    """A practitioner code (医保医师/护士/药师, 药学/技术人员); with ``prac_psn_type``, its letters must fit."""
    p = parse("practitioner", code, field=field)
    if prac_psn_type is not None:
        allowed = PRACTITIONER_PREFIXES[p["kind"]]
        if prac_psn_type not in allowed:
            names = "/".join(PRAC_PSN_TYPES.get(t, t) for t in allowed)
            raise _fail(
                field,
                code,
                f"prefix {p['kind']} is for prac_psn_type {'/'.join(allowed)} ({names}), not {prac_psn_type!r}",
                f"前缀 {p['kind']} 对应执业人员分类 {names}, 与 {prac_psn_type!r} 不符",
            )
    return p


def check_division(
    parsed: ParsedCode, divisions: Container[str] | None, *, field: str | None = None, admdvs: str | None = None
) -> None:
    """Check the 医保区划 a code embeds.

    With a division table, the division itself, its city (``xxxx00``) or its
    province (``xx0000``) must be in it; with ``admdvs`` (the row's own
    division) the embedded one must lie in the same province.
    """
    div = parsed.division
    if div is None:
        return
    field = field or _FIELD[parsed.structure]
    if divisions is not None and not any(d in divisions for d in (div, city_part(div), province_code(div))):
        raise _fail(
            field,
            parsed.code,
            f"embedded division {div} is not in the division table (nor its city or province)",
            f"编码内的行政区划 {div} 不在医保区划表中",
        )
    if (
        admdvs is not None
        and isinstance(admdvs, str)
        and len(admdvs) == 6
        and province_part(admdvs) != province_part(div)
    ):
        raise _fail(
            field,
            parsed.code,
            f"embedded division {div} lies in another province than admdvs {admdvs}",
            f"编码内的行政区划 {div} 与所属区划 {admdvs} 不在同一省",
        )


def check_code_structure(value: object, *, field: str = "code_structure") -> str:
    """``national`` or ``local`` (the declared strictness of a table)."""
    if value not in CODE_STRUCTURES:
        raise CodeTableError(
            f"{field} {value!r} must be one of {CODE_STRUCTURES}", f"{field} 须为 national 或 local", field=field
        )
    return value


METADATA_KEY = b"yibao.code_structure"
"""Arrow/Parquet schema metadata key declaring a table's ``code_structure``."""

_HEADER_RE = re.compile(r"^\s*#\s*code_structure\s*:\s*(\S+)\s*$")


def declared_in_csv(text: str) -> str | None:
    """The ``# code_structure: national|local`` declaration in a CSV's leading comment lines, if any."""
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break
        m = _HEADER_RE.match(line)
        if m:
            return check_code_structure(m.group(1))
    return None


def declared_in_metadata(metadata: dict[bytes, bytes] | None) -> str | None:
    """The ``code_structure`` declared in Arrow schema metadata (:data:`METADATA_KEY`), if any."""
    if metadata and METADATA_KEY in metadata:
        return check_code_structure(metadata[METADATA_KEY].decode("utf-8", "replace"))
    return None


def resolve(explicit: str | None, declared: str | None) -> str:
    """The strictness in force: the caller's parameter, else the table's declaration, else
    :data:`DEFAULT_CODE_STRUCTURE`."""
    if explicit is not None:
        return check_code_structure(explicit)
    return declared or DEFAULT_CODE_STRUCTURE
