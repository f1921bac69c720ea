"""The one coding-quality detector (编码质量检测) of yibao, shared by payment and supervision.

Both ``yibao.payment.quality`` (DIP/DRG coding quality) and the supervision
post-care scan (``yibao.supervision.batch``: rules SV-SPLIT-01, SV-UPCODE-01
and SV-IMP-01) call :func:`detect` on the same inputs, so they report the same
flags on the same data.  Parameters: ``yibao/data/supervision/coding.yaml``;
the complications and their treatment evidence:
``yibao/data/supervision/knowledge/dx_evidence.csv``; the sex-specific
diagnoses: ``knowledge/sex_specific_dx.csv``.

Patterns:

* ``split_admission`` (分解住院): an inpatient admission beginning within
  ``max_gap_days`` days (0 ≤ gap) of an earlier discharge of the same person
  (at the same institution when ``same_institution``) with the same principal
  diagnosis to ``dx_prefix_len`` characters.  The later stay is flagged; the
  previous one is the latest such discharge.  Stays without a principal
  diagnosis are not judged.
* ``upcoding`` (高套): an inpatient stay with a secondary diagnosis from the
  complication list whose evidence is not billed in the stay (every evidence
  group needs at least one of its items).
* ``sex_mismatch`` (诊断与性别不符): an encounter whose principal diagnosis fits
  only the other sex than the person's recorded one (1 male, 2 female; an
  unrecorded sex is not judged), from ``knowledge/sex_specific_dx.csv``.
  Payment reads it as a coding error (编码错误), supervision as possible
  impersonation (SV-IMP-01, 冒名就医); the in-care check reads the same list.

Inputs are data only: a frame of stays (encounter columns) and a frame of the
billed items that count as evidence.  Ground-truth labels never enter; they
only evaluate the flags (``benchmarks/bench_coding.py``).

Dependencies: this module reads the supervision knowledge base and its own
YAML; it imports nothing from ``yibao.payment`` (payment imports it).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from yibao.core import parquet_io
from yibao.core.errors import PolicyError, YibaoError
from yibao.core.yamldata import load_model
from yibao.supervision.knowledge import DATA_DIR, load_knowledge

DAY_S = 86_400
PATH = DATA_DIR / "coding.yaml"
PATTERNS = ("split_admission", "upcoding", "sex_mismatch")
# the supervision rules that are this detector (rule id -> pattern)
RULES = {"SV-SPLIT-01": "split_admission", "SV-UPCODE-01": "upcoding", "SV-IMP-01": "sex_mismatch"}
STAY_COLUMNS = (
    "mdtrt_id",
    "psn_no",
    "fixmedins_code",
    "dr_code",
    "med_type",
    "begntime",
    "endtime",
    "dise_codg",
    "other_dise_codg",
    "gend",
)
SexDx = tuple[tuple[str, str], ...]  # (diagnosis prefix, the only sex it fits: 1 male, 2 female)
FLAG_COLUMNS = ("mdtrt_id", "flag", "detail", "previous", "gap_s", "codes", "evidence_items")
Evidence = dict[str, tuple[tuple[str, ...], ...]]  # complication prefix -> groups (all needed; any item meets a group)


class CodingInputError(YibaoError):
    """The detector's input tables are missing or unusable."""

    code = "E_CODING_INPUT"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitParams(_M):
    med_types: tuple[str, ...]
    max_gap_days: int
    same_institution: bool
    dx_prefix_len: int

    @field_validator("max_gap_days", "dx_prefix_len")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be at least 1")
        return v


class UpcodingParams(_M):
    med_types: tuple[str, ...]


class CodingParams(_M):
    version: str
    split_admission: SplitParams
    upcoding: UpcodingParams


def load_coding_params(path: str | Path | None = None) -> CodingParams:
    """The detector's parameters (default ``yibao/data/supervision/coding.yaml``),
    validated; a bad file is one named error.
    """
    return load_model(
        Path(path) if path else PATH,
        CodingParams,
        what=("coding-quality parameters", "编码质量参数"),
        error=PolicyError,
    )


def default_evidence() -> Evidence:
    return load_knowledge().dx_evidence


def default_sex_dx() -> SexDx:
    return load_knowledge().sex_specific_dx


def _epoch_s(s: pd.Series) -> np.ndarray:
    """Timestamps (any unit; naive ones read as UTC) as epoch seconds."""
    t = pd.to_datetime(s, utc=True)
    return ((t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


def split_admissions(stays: pd.DataFrame, p: SplitParams) -> pd.DataFrame:
    """Readmissions: ``mdtrt_id, previous, gap_s`` (seconds from the previous discharge to this admission)."""
    s = stays[stays["med_type"].isin(p.med_types).to_numpy()] if "med_type" in stays else stays
    dx = s["dise_codg"].fillna("").astype(str)
    s = s[(dx != "").to_numpy()]
    if len(s) < 2:
        return _empty(("mdtrt_id", "previous", "gap_s"))
    b, e = _epoch_s(s["begntime"]), _epoch_s(s["endtime"])
    keys = [s["psn_no"].astype(str), s["dise_codg"].astype(str).str[: p.dx_prefix_len]]
    if p.same_institution:
        keys.append(s["fixmedins_code"].astype(str))
    part = pd.MultiIndex.from_arrays(keys).factorize()[0].astype(np.int64)
    # for each stay, the latest discharge of its partition at or before its admission: one sorted search
    t0 = int(min(b.min(), e.min()))
    span = int(max(b.max(), e.max())) - t0
    if span >= 2**32 or len(s) >= 2**31:
        raise CodingInputError("stays span more than 136 years", "住院时间跨度过大", field="begntime")
    key_end = (part << 32) | (e - t0)
    order = np.argsort(key_end, kind="stable")
    ks = key_end[order]
    idx = np.searchsorted(ks, (part << 32) | (b - t0), side="right") - 1
    me = np.arange(len(s))
    self_hit = (idx >= 0) & (
        order[np.clip(idx, 0, None)] == me
    )  # a stay discharged the moment it began is not its own predecessor
    idx = np.where(self_hit, idx - 1, idx)
    j = order[np.clip(idx, 0, None)]
    gap = b - e[j]
    ok = (idx >= 0) & (part[j] == part) & (j != me) & (gap >= 0) & (gap <= p.max_gap_days * DAY_S)
    ids = s["mdtrt_id"].astype(str).to_numpy()
    return pd.DataFrame({"mdtrt_id": ids[ok], "previous": ids[j[ok]], "gap_s": gap[ok]})


def upcoding(stays: pd.DataFrame, items: pd.DataFrame, evidence: Evidence, p: UpcodingParams) -> pd.DataFrame:
    """Stays with a listed complication whose evidence is not billed: ``mdtrt_id, codes, evidence_items``.

    ``items`` holds ``mdtrt_id, med_list_codg`` of the billed lines (lines of other items may be left out).
    """
    s = stays[stays["med_type"].isin(p.med_types).to_numpy()] if "med_type" in stays else stays
    other = s["other_dise_codg"].fillna("").astype(str)
    s = s[(other != "").to_numpy()]
    if s.empty or not evidence:
        return _empty(("mdtrt_id", "codes", "evidence_items"))
    dx = pd.DataFrame(
        {
            "mdtrt_id": s["mdtrt_id"].astype(str).to_numpy(),
            "code": s["other_dise_codg"].astype(str).str.split(";").to_numpy(),
        }
    ).explode("code")
    dx["code"] = dx["code"].fillna("").str.strip()
    prefixes = tuple(evidence)
    dx = dx[dx["code"].str.startswith(prefixes)]
    if dx.empty:
        return _empty(("mdtrt_id", "codes", "evidence_items"))
    wanted = set(dx["mdtrt_id"])
    it = items[items["mdtrt_id"].isin(wanted)]
    # pandas-stubs type a per-group aggregate as a scalar; a set per encounter is what is wanted here
    billed = it.groupby("mdtrt_id")["med_list_codg"].agg(lambda x: set(x.astype(str))).to_dict()  # type: ignore[type-var]
    rows: dict[str, tuple[list[str], list[str]]] = {}
    for mid, code in zip(dx["mdtrt_id"], dx["code"], strict=True):
        have = billed.get(mid, set())
        for prefix, groups in evidence.items():
            if code.startswith(prefix) and not all(have.intersection(g) for g in groups):
                codes, ev = rows.setdefault(mid, ([], []))
                codes.append(code)
                ev.extend(x for g in groups for x in g)
    if not rows:
        return _empty(("mdtrt_id", "codes", "evidence_items"))
    mids = sorted(rows)
    return pd.DataFrame(
        {"mdtrt_id": mids, "codes": [";".join(rows[m][0]) for m in mids], "evidence_items": [rows[m][1] for m in mids]}
    )


def sex_mismatches(stays: pd.DataFrame, sex_dx: SexDx) -> pd.DataFrame:
    """Encounters whose principal diagnosis fits only the other sex: ``mdtrt_id, codes`` (the diagnosis), ``gend``."""
    gend = stays["gend"].fillna("").astype(str).to_numpy()
    dx = stays["dise_codg"].fillna("").astype(str)
    bad = np.zeros(len(stays), bool)
    for prefix, g in sex_dx:
        bad |= dx.str.startswith(prefix).to_numpy() & np.isin(gend, ("1", "2")) & (gend != g)
    return pd.DataFrame(
        {"mdtrt_id": stays["mdtrt_id"].astype(str).to_numpy()[bad], "codes": dx.to_numpy()[bad], "gend": gend[bad]}
    )


def detect(
    stays: pd.DataFrame,
    items: pd.DataFrame,
    params: CodingParams | None = None,
    evidence: Evidence | None = None,
    sex_dx: SexDx | None = None,
) -> pd.DataFrame:
    """Every coding-quality flag: a long frame ``mdtrt_id, flag, detail, previous, gap_s, codes, evidence_items``
    sorted by flag and case.  ``stays`` needs :data:`STAY_COLUMNS` (``dr_code`` optional), ``items`` the
    billed ``mdtrt_id, med_list_codg``."""
    params = params or load_coding_params()
    evidence = default_evidence() if evidence is None else evidence
    sex_dx = default_sex_dx() if sex_dx is None else sex_dx
    sp = split_admissions(stays, params.split_admission)
    up = upcoding(stays, items, evidence, params.upcoding)
    sx = sex_mismatches(stays, sex_dx)
    parts = []
    if len(sp):
        parts.append(
            pd.DataFrame(
                {
                    "mdtrt_id": sp["mdtrt_id"],
                    "flag": "split_admission",
                    "detail": "readmitted after " + sp["previous"],
                    "previous": sp["previous"],
                    "gap_s": sp["gap_s"].astype(object),
                    "codes": None,
                    "evidence_items": None,
                }
            )
        )
    if len(up):
        parts.append(
            pd.DataFrame(
                {
                    "mdtrt_id": up["mdtrt_id"],
                    "flag": "upcoding",
                    "detail": up["codes"] + " coded without its treatment billed",
                    "previous": None,
                    "gap_s": None,
                    "codes": up["codes"],
                    "evidence_items": up["evidence_items"],
                }
            )
        )
    if len(sx):
        parts.append(
            pd.DataFrame(
                {
                    "mdtrt_id": sx["mdtrt_id"],
                    "flag": "sex_mismatch",
                    "detail": sx["codes"]
                    + " does not fit sex "
                    + sx["gend"]
                    + " ("
                    + np.where(sx["gend"] == "1", "male", "female")
                    + ")",
                    "previous": None,
                    "gap_s": None,
                    "codes": sx["codes"],
                    "evidence_items": None,
                }
            )
        )
    if not parts:
        return _empty(FLAG_COLUMNS)
    return pd.concat(parts, ignore_index=True).sort_values(["flag", "mdtrt_id"], ignore_index=True)[list(FLAG_COLUMNS)]


def read_inputs(
    con: duckdb.DuckDBPyConnection, params: CodingParams, evidence: Evidence, sex_dx: SexDx | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The detector's inputs from a DuckDB connection with the
    contract views ``encounter``, ``fee_detail`` and ``person``:
    the stays of the patterns' med_types plus every encounter with a sex-specific principal diagnosis (the only
    other ones :func:`detect` can flag), and the billed evidence items."""
    sex_dx = default_sex_dx() if sex_dx is None else sex_dx
    med = sorted(set(params.split_admission.med_types) | set(params.upcoding.med_types))
    cols = ", ".join(f"e.{c}" for c in STAY_COLUMNS if c != "gend")
    stays = con.execute(
        f"""SELECT {cols}, coalesce(p.gend, '') AS gend FROM encounter e LEFT JOIN person p USING (psn_no)
            WHERE e.med_type IN (SELECT unnest($m::VARCHAR[]))
               OR len(list_filter($px::VARCHAR[], lambda x: starts_with(e.dise_codg, x))) > 0
            ORDER BY e.mdtrt_id""",
        {"m": med, "px": sorted({px for px, _ in sex_dx}) or [""]},
    ).df()
    codes = sorted({x for groups in evidence.values() for g in groups for x in g})
    items = con.execute(
        """SELECT DISTINCT f.mdtrt_id, f.med_list_codg FROM fee_detail f JOIN encounter e USING (mdtrt_id)
           WHERE e.med_type IN (SELECT unnest($m::VARCHAR[])) AND e.other_dise_codg <> ''
             AND f.med_list_codg IN (SELECT unnest($c::VARCHAR[]))""",
        {"m": med, "c": codes or [""]},
    ).df()
    return stays, items


def _source(d: Path, name: str) -> str:
    """A contract table as one Parquet file or a dataset directory of parts."""
    src = parquet_io.table_sql(d, name)
    if src is None:
        raise CodingInputError(
            f"{d}: missing {name}.parquet (a contract table)", f"{d}: 缺少 {name}.parquet", field=name
        )
    return src


def detect_region(
    data_dir: str | Path,
    params: CodingParams | None = None,
    evidence: Evidence | None = None,
    sex_dx: SexDx | None = None,
) -> pd.DataFrame:
    """:func:`detect` over the contract Parquet tables ``encounter``, ``fee_detail`` and ``person`` of ``data_dir``."""
    from yibao.core import manifest

    d = Path(data_dir)
    params = params or load_coding_params()
    evidence = default_evidence() if evidence is None else evidence
    sex_dx = default_sex_dx() if sex_dx is None else sex_dx
    manifest.check(d, ("encounter", "fee_detail", "person"))
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        for t in ("encounter", "fee_detail", "person"):
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM {_source(d, t)}")
        stays, items = read_inputs(con, params, evidence, sex_dx)
    finally:
        con.close()
    return detect(stays, items, params, evidence, sex_dx)


def check_rulebook_params(rule_params: dict, params: CodingParams) -> None:
    """The in-care check (``incare``) reads SV-SPLIT-01's parameters from rules.yaml: they must be this detector's."""
    sp = params.split_admission
    want = {"max_gap_days": sp.max_gap_days, "same_institution": sp.same_institution, "dx_prefix_len": sp.dx_prefix_len}
    got = {k: rule_params.get(k) for k in want}
    if got != want:
        raise PolicyError(
            f"rules.yaml SV-SPLIT-01 params {got} differ from coding.yaml split_admission {want}: the in-care and "
            f"batch checks would disagree",
            "rules.yaml 中 SV-SPLIT-01 的参数与 coding.yaml 不一致(事中与事后检查将不一致)",
            field="SV-SPLIT-01.params",
        )
