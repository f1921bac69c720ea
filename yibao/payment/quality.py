"""Coding quality (编码质量) and the hospital view (医院视角) of DIP/DRG payment.

* **Hospital view**: per institution, department and group, the income under
  DIP (case points × the annual point value) and under DRG (RW × base rate)
  against the actual cost, so a hospital sees where it gains and loses.
* **CMI and peers**: each institution's CMI, CC/MCC share and secondary
  diagnoses per case against institutions of the same level, and the change
  of secondary diagnoses per case from the first half-year to the second.
* **Case flags**:

  - ``upcoding`` (高套), ``split_admission`` (分解住院) and ``sex_mismatch`` (a
    diagnosis that fits only the other sex) come from the one
    coding-quality detector, :mod:`yibao.supervision.coding` (parameters in
    ``yibao/data/supervision/coding.yaml``), which the supervision scan also
    runs (rules SV-UPCODE-01, SV-SPLIT-01, SV-IMP-01): both subsystems give the same
    answer on the same data.  :func:`assess` takes that detector's flags for
    the region (``coding``) and keeps those of its cases;
  - miscoding (rules in ``yibao/data/payment/quality.yaml``) (编码错误): ``age_mismatch``,
    ``ambiguous_group`` (procedure unrelated to the principal diagnosis),
    ``ungroupable``, ``symptom_principal`` (a symptom code as principal
    diagnosis of a surgical case), ``procedure_cost_mismatch`` (a surgical
    DIP combination billed below the low-outlier threshold),
    ``secondary_equals_principal``.
* **Groups with the most flags** (seed 004: find the diseases or groups most
  often miscoded), by DRG and by DIP group.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from yibao.core.errors import PolicyError
from yibao.core.yamldata import load_model
from yibao.supervision.coding import PATTERNS


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PeerRule(_M):
    by: str = "hosp_lv"
    z_flag: Decimal = Decimal(2)
    min_cases: int = 30
    min_sd: Decimal = Decimal("0.01")


class AgeRange(_M):
    prefix: str
    min: int
    max: int


class MiscodingRule(_M):
    age_ranges: list[AgeRange] = []
    symptom_prefixes: list[str] = []


class QualityRules(_M):
    version: str
    peer: PeerRule = PeerRule()
    miscoding: MiscodingRule = MiscodingRule()


def load_quality_rules(path: str | Path | None = None) -> QualityRules:
    p = Path(path) if path else Path(str(resources.files("yibao") / "data" / "payment" / "quality.yaml"))
    return load_model(p, QualityRules, what=("coding-quality rules", "编码质量规则"), error=PolicyError)


def _starts(s: pd.Series, prefixes: list[str]) -> np.ndarray:
    if not prefixes:
        return np.zeros(len(s), bool)
    return s.fillna("").str.startswith(tuple(prefixes)).to_numpy()


def coding_flags(cases: pd.DataFrame, coding: pd.DataFrame) -> pd.DataFrame:
    """The shared detector's flags (:func:`yibao.supervision.coding.detect` over the region) on these cases."""
    need = {"mdtrt_id", "flag", "detail"}
    if not need <= set(coding.columns):
        raise PolicyError(f"coding flags need the columns {sorted(need)}", "编码质量结果缺少列", field="coding")
    c = coding[coding["flag"].isin(PATTERNS).to_numpy() & coding["mdtrt_id"].isin(set(cases["mdtrt_id"])).to_numpy()]
    return c[["mdtrt_id", "flag", "detail"]].astype(object).reset_index(drop=True)


def case_flags(cases: pd.DataFrame, rules: QualityRules, coding: pd.DataFrame) -> pd.DataFrame:
    """Flags per case: a long frame ``mdtrt_id, flag, detail``.

    ``cases`` needs the case view columns plus the DRG grouping (``drg, adrg,
    severity, path``) and, for ``procedure_cost_mismatch``, the DIP result
    (``kind, proc_type``); ``coding`` is the shared detector's output for the
    region (upcoding, split admissions; see :func:`coding_flags`).
    """
    out: list[pd.DataFrame] = []

    def add(mask, flag: str, detail) -> None:
        mask = np.asarray(mask, bool)
        if mask.any():
            det = detail[mask] if isinstance(detail, (np.ndarray, pd.Series)) else detail
            out.append(
                pd.DataFrame(
                    {
                        "mdtrt_id": cases["mdtrt_id"].to_numpy()[mask],
                        "flag": flag,
                        "detail": np.asarray(det, dtype=object) if not isinstance(det, str) else det,
                    }
                )
            )

    dx = cases["dise_codg"].fillna("")
    cf = coding_flags(cases, coding)
    if len(cf):
        out.append(cf)
    # miscoding
    mr = rules.miscoding
    age = cases["age"].to_numpy()
    bad_age = np.zeros(len(cases), bool)
    for r in mr.age_ranges:
        bad_age |= _starts(dx, [r.prefix]) & ((age < r.min) | (age > r.max))
    add(bad_age, "age_mismatch", "diagnosis outside its age range")
    add(cases["path"].to_numpy() == "ambiguous", "ambiguous_group", "procedure unrelated to the principal diagnosis")
    add(cases["path"].to_numpy() == "ungroupable", "ungroupable", "principal diagnosis in no MDC/ADRG")
    if "proc_type" in cases:
        add(
            _starts(dx, mr.symptom_prefixes) & (cases["proc_type"].to_numpy() == "surgery"),
            "symptom_principal",
            "symptom code as principal diagnosis of a surgical case",
        )
        if "kind" in cases:
            add(
                (cases["kind"].to_numpy() == "low") & (cases["proc_type"].to_numpy() == "surgery"),
                "procedure_cost_mismatch",
                "surgical combination billed below the low-outlier threshold",
            )
    others = cases["other_dise_codg"].fillna("").to_numpy()
    dup = np.array([bool(d) and d in o_.split(";") for d, o_ in zip(dx.to_numpy(), others, strict=True)], bool)
    add(dup, "secondary_equals_principal", "principal diagnosis repeated as a secondary one")
    if not out:
        return pd.DataFrame(
            {
                "mdtrt_id": pd.Series([], dtype=object),
                "flag": pd.Series([], dtype=object),
                "detail": pd.Series([], dtype=object),
            }
        )
    return pd.concat(out, ignore_index=True)


def top_flagged_groups(cases: pd.DataFrame, flags: pd.DataFrame, by: str = "drg", n: int = 15) -> pd.DataFrame:
    """Groups (DRG or DIP group) with the most flagged cases: cases, flagged cases, rate and the flags seen."""
    flagged = flags.groupby("mdtrt_id")["flag"].agg(lambda s: ",".join(sorted(set(s))))
    c = cases[["mdtrt_id", by]].assign(flags=cases["mdtrt_id"].map(flagged))
    g = c.groupby(by).agg(cases=("mdtrt_id", "size"), flagged=("flags", "count")).reset_index()
    kinds = (
        c.dropna(subset=["flags"])
        .groupby(by)["flags"]
        .agg(lambda s: ", ".join(f"{k} {v}" for k, v in pd.Series(",".join(s).split(",")).value_counts().items()))
    )
    g["flag_rate"] = (g.flagged / g.cases).round(4)
    g["flags_seen"] = g[by].map(kinds).fillna("")
    return g[g.flagged > 0].sort_values(["flagged", "flag_rate"], ascending=False).head(n).reset_index(drop=True)


def peer_comparison(cases: pd.DataFrame, rules: QualityRules) -> pd.DataFrame:
    """Per institution: CMI, CC/MCC share, secondary diagnoses per case (and its half-year change) against peers."""
    c = cases[cases.drg != "0000"].copy()
    c["n_sec"] = c["other_dise_codg"].fillna("").map(lambda s: len([x for x in s.split(";") if x]))
    c["has_cc"] = c["severity"] != "none"
    c["h2"] = c["setl_month"] > 6
    by = rules.peer.by
    g = (
        c.groupby(["fixmedins_code", by])
        .agg(
            cases=("mdtrt_id", "size"),
            total_rw_e4=("rw_e4", "sum"),
            cc_share=("has_cc", "mean"),
            sec_per_case=("n_sec", "mean"),
        )
        .reset_index()
    )
    h = c.groupby(["fixmedins_code", "h2"])["n_sec"].mean().unstack()
    g["sec_change_h2_h1"] = g["fixmedins_code"].map(
        h.get(True, pd.Series(dtype=float)) - h.get(False, pd.Series(dtype=float))
    )
    g["cmi"] = g.total_rw_e4 / g.cases / 10_000
    # peers: institutions of the same group with enough cases to compare (smaller ones are shown, not judged)
    g["judged"] = g.cases >= rules.peer.min_cases
    grp = g[g.judged].groupby(by)
    g["peer_cmi"] = g[by].map(grp["cmi"].mean())
    g["cmi_vs_peer"] = g.cmi / g.peer_cmi
    # CC/MCC share against the *other* judged institutions of the group (leave-one-out), the spread floored at min_sd
    z = np.full(len(g), np.nan)
    for i, row in enumerate(g.itertuples()):
        others = g[(g[by] == getattr(row, by)) & g.judged & (g.fixmedins_code != row.fixmedins_code)]["cc_share"]
        if row.judged and len(others) >= 2:
            z[i] = (row.cc_share - others.mean()) / max(float(others.std()), float(rules.peer.min_sd))
    g["cc_share_z"] = z
    g["flag_cc_share"] = g.judged & (np.nan_to_num(z) >= float(rules.peer.z_flag))
    for col in ("cmi", "peer_cmi", "cmi_vs_peer", "cc_share", "sec_per_case", "sec_change_h2_h1", "cc_share_z"):
        g[col] = g[col].astype(float).round(4)  # indices for display, not money
    return g.sort_values("fixmedins_code").reset_index(drop=True)


def hospital_view(
    cases: pd.DataFrame, by: tuple[str, ...] = ("fixmedins_code", "dept_code", "group_code")
) -> pd.DataFrame:
    """Income under DIP (``value_fen``) and DRG (``drg_value_fen``) against actual cost, in fen, by the given keys."""
    g = (
        cases.groupby(list(by))
        .agg(
            cases=("mdtrt_id", "size"),
            cost_fen=("medfee_sumamt", "sum"),
            dip_income_fen=("value_fen", "sum"),
            drg_income_fen=("drg_value_fen", "sum"),
        )
        .reset_index()
    )
    g["dip_gain_fen"] = g.dip_income_fen - g.cost_fen
    g["drg_gain_fen"] = g.drg_income_fen - g.cost_fen
    return g.sort_values(list(by)).reset_index(drop=True)


@dataclass
class QualityResult:
    flags: pd.DataFrame
    top_drg: pd.DataFrame
    top_dip: pd.DataFrame
    peers: pd.DataFrame
    truth: pd.DataFrame | None = None  # precision / recall against synthetic ground truth, if any


def against_truth(flags: pd.DataFrame, truth: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """Precision and recall of the shared detector's flags against injected synthetic patterns (evaluation only):
    upcoding, split admissions, and sex mismatches (the impersonations that bill a sex-specific diagnosis on a
    card of the other sex)."""
    rows = []
    ids = set(cases["mdtrt_id"])
    enc = truth[truth.entity == "encounter"]
    for flag, pattern, detail in (
        ("upcoding", "upcoding", None),
        ("split_admission", "split_admission", None),
        ("sex_mismatch", "impersonation", "billed on the card"),
    ):
        lab = enc[enc.pattern == pattern]
        if detail is not None:
            lab = lab[lab.detail.fillna("").str.contains(detail, regex=False)]
        t = set(lab["entity_id"]) & ids
        f = set(flags.loc[flags.flag == flag, "mdtrt_id"])
        tp = len(t & f)
        rows.append(
            {
                "flag": flag,
                "injected": len(t),
                "flagged": len(f),
                "true_positives": tp,
                "precision": round(tp / len(f), 4) if f else None,
                "recall": round(tp / len(t), 4) if t else None,
            }
        )
    return pd.DataFrame(rows)


def assess(
    cases: pd.DataFrame, rules: QualityRules | None = None, truth: pd.DataFrame | None = None, *, coding: pd.DataFrame
) -> QualityResult:
    """Flags, top flagged groups and peers of ``cases``; ``coding`` is :func:`yibao.supervision.coding.detect_region`
    over the region (the truth, if given, only evaluates the flags)."""
    rules = rules or load_quality_rules()
    flags = case_flags(cases, rules, coding)
    return QualityResult(
        flags=flags,
        top_drg=top_flagged_groups(cases, flags, "drg"),
        top_dip=top_flagged_groups(cases, flags, "group_code") if "group_code" in cases else pd.DataFrame(),
        peers=peer_comparison(cases, rules),
        truth=against_truth(flags, truth, cases) if truth is not None and len(truth) else None,
    )
