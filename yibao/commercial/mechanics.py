"""The commercial layer's computation (商业补充保险理赔): a post-settlement direct-claim step (一站式).

The public layers (basic 基本医保, serious illness 大病保险, medical assistance 医疗救助) settle first; what the
person still pays (``psn_part_amt``) is split into the product's categories and passed to the insurer.  The
insurer's payment lowers the person's payable by exactly that amount; public fund shares are untouched.

Scalar (:func:`insurer_payment`, one claim with the person's accumulators) and batch (:func:`insurer_payment_np`,
a year of claims in settlement order) give the same fen: the deductible and the ceiling are running minima over
the person's cumulative base, so ``used_after = min(cap, cumulative)`` in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from yibao.commercial.products import CommercialError, Product, Ratios
from yibao.core.money import apply_rate, apply_rate_np


@dataclass(frozen=True)
class ClaimParts:
    """The person's remaining self-pay of one settled claim, by product category (fen)."""

    in_list: int  # in-list self-pay: 乙类先行自付 (preselfpay_amt) and in-scope co-pay/deductible
    out_of_list: int  # out-of-list: 全自费 (fulamt_ownpay_amt) and 超限价自付 (overlmt_selfpay)
    specific_drug: int  # 特药 on the product's list (carved out of the two above by the caller)

    def __post_init__(self) -> None:
        for k in ("in_list", "out_of_list", "specific_drug"):
            if getattr(self, k) < 0:
                raise CommercialError(f"{k} must not be negative", f"{k} 不能为负数", field=k)


@dataclass(frozen=True)
class Accumulators:
    """A person's product-year totals (fen): deductible used (免赔额已用) and insurer paid (已赔付)."""

    deductible_used: int = 0
    paid: int = 0


@dataclass(frozen=True)
class Payment:
    insurer_pays: int
    person_remainder: int
    deductible_applied: int
    after: Accumulators


def parts_from_settlement(amounts: Mapping[str, int], specific_drug: int = 0) -> ClaimParts:
    """Split a settlement's ``psn_part_amt`` (after all public layers) into the product's categories.

    Out-of-list = ``fulamt_ownpay_amt + overlmt_selfpay`` (capped at the person's part); the rest of the person's
    part is in-list self-pay.  ``specific_drug`` (fen of 特药 lines the person pays) comes out of out-of-list first.
    """
    psn = int(amounts["psn_part_amt"])
    out = min(int(amounts["fulamt_ownpay_amt"]) + int(amounts["overlmt_selfpay"]), psn)
    if specific_drug > psn:
        raise CommercialError(
            "specific-drug amount exceeds the person's part", "特药金额超过个人负担", field="specific_drug"
        )
    from_out = min(specific_drug, out)
    inl = psn - out
    return ClaimParts(in_list=inl - (specific_drug - from_out), out_of_list=out - from_out, specific_drug=specific_drug)


def insurer_payment(product: Product, parts: ClaimParts, acc: Accumulators, *, pre_existing: bool = False) -> Payment:
    """One claim: the deductible, then the ratio by category, then the annual ceiling."""
    r: Ratios = product.pre_existing_ratios if pre_existing else product.ratios
    left = max(product.deductible - acc.deductible_used, 0)
    d_in = min(parts.in_list, left)
    d_out = min(parts.out_of_list, left - d_in)
    raw = (
        apply_rate(parts.in_list - d_in, r.in_list)
        + apply_rate(parts.out_of_list - d_out, r.out_of_list)
        + apply_rate(parts.specific_drug, r.specific_drug)
    )
    pay = min(raw, max(product.ceiling - acc.paid, 0))
    total = parts.in_list + parts.out_of_list + parts.specific_drug
    return Payment(pay, total - pay, d_in + d_out, Accumulators(acc.deductible_used + d_in + d_out, acc.paid + pay))


def _group_prev_cumsum(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, the sum of ``values`` over earlier rows of the same group (rows already grouped contiguously)."""
    cum = np.cumsum(values, dtype=np.int64)
    start = np.ones(len(groups), dtype=bool)
    start[1:] = groups[1:] != groups[:-1]
    idx = np.maximum.accumulate(np.where(start, np.arange(len(groups)), 0))
    base = (cum - values)[idx]
    return cum - values - base


def insurer_payment_np(
    product: Product,
    person: np.ndarray,
    in_list: np.ndarray,
    out_of_list: np.ndarray,
    specific_drug: np.ndarray,
    pre_existing: np.ndarray | None = None,
) -> np.ndarray:
    """A year of claims, rows in settlement order within each person (persons contiguous): insurer pays per row.

    Accumulators start at zero for each person (the product year).
    """
    n = len(person)
    pre = np.zeros(n, dtype=bool) if pre_existing is None else pre_existing.astype(bool)
    inl, outl, sp = (a.astype(np.int64) for a in (in_list, out_of_list, specific_drug))
    if n and (inl.min() < 0 or outl.min() < 0 or sp.min() < 0):
        raise CommercialError("claim parts must not be negative", "理赔金额不能为负数")
    base = inl + outl
    prev = _group_prev_cumsum(person, base)
    ded = product.deductible
    d_total = np.minimum(prev + base, ded) - np.minimum(prev, ded)
    d_in = np.minimum(inl, d_total)
    d_out = d_total - d_in

    def bp(field: str) -> np.ndarray:
        return np.where(pre, getattr(product.pre_existing_ratios, field), getattr(product.ratios, field)).astype(
            np.int64
        )

    raw = (
        apply_rate_np(inl - d_in, bp("in_list"))
        + apply_rate_np(outl - d_out, bp("out_of_list"))
        + apply_rate_np(sp, bp("specific_drug"))
    )
    prev_raw = _group_prev_cumsum(person, raw)
    cap = product.ceiling
    return np.minimum(prev_raw + raw, cap) - np.minimum(prev_raw, cap)


def is_pre_existing(product: Product, diagnoses: tuple[str, ...]) -> bool:
    return any(d.startswith(p) for d in diagnoses for p in product.pre_existing_diagnosis_prefixes if d)
