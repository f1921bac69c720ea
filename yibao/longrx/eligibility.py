"""Which diagnoses a long prescription may be given for (长期处方适用病种).

《长期处方管理规范（试行）》 (seed 002, line 947): long prescriptions are for chronic-disease
patients (慢性病患者) whose diagnosis is clear and treatment stable.  The policy block
``long_term_prescription.diseases`` names the listed diagnoses as ICD-10 医保版 prefixes (its own
``prefixes`` plus, when ``include_chronic_list``, the 门诊慢特病 lists) and the med_types of
take-home prescriptions where the rule applies.

A drug line longer than ``long_rx_over_days`` in such a claim needs a listed diagnosis among the
claim's diagnoses (principal or other).  The scalar check (:func:`check_long_rx_diseases`, called
by ``yibao.settlement.rules.settle_claim``) and the batch mask (:func:`unlisted_long_rx_lines`,
called by ``yibao.settlement.batch``) implement the same rule; a property test shows they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from yibao.core.errors import ClaimRejected

if TYPE_CHECKING:
    from yibao.benefits.model import PolicySnapshot
    from yibao.settlement.catalog import Catalog
    from yibao.settlement.rules import Claim

RULE = "long_term_prescription.diseases"  # named in every refusal


def listed_prefixes(snap: PolicySnapshot) -> tuple[str, ...] | None:
    """The ICD-10 prefixes of the diagnoses a long prescription may be for; None when the policy sets no list."""
    d = snap.long_term_prescription.diseases
    if d is None:
        return None
    extra: tuple[str, ...] = ()
    if d.include_chronic_list:
        extra = tuple(snap.chronic_diseases.get("chronic", ())) + tuple(snap.chronic_diseases.get("special", ()))
    return tuple(d.prefixes) + extra


def is_listed(diagnoses: Sequence[str], prefixes: Sequence[str]) -> bool:
    return any(code.startswith(p) for code in diagnoses if code for p in prefixes)


def refusal_messages(snap: PolicySnapshot) -> tuple[str, str]:
    """(English, Chinese) text of the refusal, the same for the scalar and the batch path."""
    days = snap.long_term_prescription.long_rx_over_days
    return (
        f"a prescription over {days} days needs a diagnosis on the long-prescription disease list (rule {RULE})",
        f"超过 {days} 天的处方须诊断属于长期处方适用病种 (规则 {RULE})",
    )


def check_long_rx_diseases(claim: Claim, snap: PolicySnapshot, catalog: Catalog) -> None:
    """Refuse a claim whose drug line is longer than ``long_rx_over_days`` without a listed diagnosis."""
    rule = snap.long_term_prescription
    prefixes = listed_prefixes(snap)
    if prefixes is None or rule.diseases is None or claim.med_type not in rule.diseases.med_types:
        return
    diagnoses = (claim.dise_codg, *claim.other_dise_codg)
    if is_listed(diagnoses, prefixes):
        return
    for ln in claim.lines:
        if ln.prd_days > rule.long_rx_over_days and catalog[ln.med_list_codg].is_drug:
            en, zh = refusal_messages(snap)
            raise ClaimRejected(
                f"line {ln.feedetl_sn}: {en}; diagnoses {list(d for d in diagnoses if d)}",
                f"明细 {ln.feedetl_sn}: {zh}; 诊断 {'、'.join(d for d in diagnoses if d)}",
                field="dise_codg",
            )


def _hits(values: list[str], prefixes: tuple[str, ...], multi: bool) -> np.ndarray:
    """For each distinct value (or any of its ';'-separated parts): does it start with a prefix?"""
    out = np.zeros(len(values) + 1, dtype=bool)  # one spare slot: codes may point one past the end
    for i, v in enumerate(values):
        parts = (v or "").split(";") if multi else [v or ""]
        out[i] = is_listed(parts, prefixes)
    return out


def unlisted_long_rx_lines(
    snap: PolicySnapshot,
    long_lines: np.ndarray,
    line_claim: np.ndarray,
    med_types: tuple[list[str], np.ndarray],
    diagnoses: tuple[list[str], np.ndarray],
    other_diagnoses: tuple[list[str], np.ndarray],
) -> np.ndarray:
    """Batch form: the fee lines the rule refuses.

    ``long_lines``: drug lines longer than ``long_rx_over_days`` (of the claims under ``snap``);
    ``line_claim``: each line's claim row; the other arguments are the claims' dictionary-encoded
    columns as (distinct values, per-claim codes): med_type, dise_codg, other_dise_codg (';'-joined).
    """
    rule = snap.long_term_prescription
    prefixes = listed_prefixes(snap)
    if prefixes is None or rule.diseases is None or not long_lines.any():
        return np.zeros(len(long_lines), dtype=bool)
    mt_vals, mt_code = med_types
    dise_vals, dise_code = diagnoses
    oth_vals, oth_code = other_diagnoses
    scope = np.array([v in rule.diseases.med_types for v in mt_vals] + [False], dtype=bool)[mt_code]
    listed = _hits(dise_vals, prefixes, multi=False)[dise_code] | _hits(oth_vals, prefixes, multi=True)[oth_code]
    return long_lines & (scope & ~listed)[line_claim]
