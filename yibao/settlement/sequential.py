"""Settle claims one at a time, in claim order, with in-memory state.

This is the scalar engine driven like the live service (accumulators and
account balances carried claim by claim); it exists to check the batch path
against it, and as a reference implementation for small jobs.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from yibao.benefits.policy import Policy, PolicyBook
from yibao.core.contract import INSUTYPE_EMPLOYEE
from yibao.core.errors import ClaimRejected
from yibao.crossregion.lists import treatment_catalog
from yibao.settlement.catalog import Catalog
from yibao.settlement.rules import Claim, Settlement, monthly_account_credit, settle_claim


def _months(a: dt.date, b: dt.date) -> int:
    return (b.year - a.year) * 12 + (b.month - a.month)


class Ledger:
    """In-memory accumulators and personal accounts with monthly crediting."""

    def __init__(
        self, policy: Policy, persons: dict[str, dict], account_start: dt.date, book: PolicyBook | None = None
    ):
        self.policy = policy
        self.book = book or PolicyBook.default()
        self.persons = persons
        self.start = account_start.replace(day=1)
        self.accum: dict[tuple[str, int], dict] = defaultdict(dict)
        self.debits: dict[str, int] = defaultdict(int)

    def credited(self, psn_no: str, on: dt.date) -> int:
        """Opening balance plus monthly credits posted on the 1st of each month up to ``on``."""
        p = self.persons[psn_no]
        total = int(p.get("acct_balc") or 0)
        for k in range(_months(self.start, on) + 1):
            y, m = divmod(self.start.month - 1 + k, 12)
            month = dt.date(self.start.year + y, m + 1, 1)
            snap = self.policy.snapshot(month)
            total += monthly_account_credit(snap, p["insutype"], p["psn_type"], int(p.get("contribution_base") or 0))
        return total

    def balance(self, psn_no: str, on: dt.date) -> int:
        return self.credited(psn_no, on) - self.debits[psn_no]

    def settle(self, claim: Claim, catalog: Catalog, listing=None) -> Settlement:
        snap = self.policy.snapshot(claim.setl_time.date())
        payer = (
            claim.mulaid_payer.psn_no
            if claim.mulaid_payer
            else (claim.person.psn_no if claim.person.insutype == INSUTYPE_EMPLOYEE else "")
        )
        bal = self.balance(payer, claim.setl_time.date()) if payer and payer in self.persons else None
        acc = self.accum[(claim.person.psn_no, claim.policy_year)]
        area = claim.mdtrtarea_admvs
        if listing is None and area and area != claim.person.insuplc_admdvs:
            listing = self.book.policy(area).snapshot(claim.setl_time.date())  # 就医地目录
        priced = treatment_catalog(catalog, claim.person.insuplc_admdvs, area, claim.setl_time.date())
        s = settle_claim(claim, snap, priced, acc, bal, listing)  # priced by the 就医地目录 of a cross-province claim
        for k, v in s.accum_delta.items():
            acc[k] = acc.get(k, 0) + v
        if s.acct_payer_psn_no:
            self.debits[s.acct_payer_psn_no] += s.acct_pay + s.acct_mulaid_pay
        return s


def settle_in_order(claims: list[Claim], ledger: Ledger, catalog: Catalog) -> list[Settlement | ClaimRejected]:
    """Settle claims in claim order (setl_time, then list order); rejections are returned, not raised."""
    order = sorted(range(len(claims)), key=lambda i: (claims[i].setl_time, i))
    out: list[Settlement | ClaimRejected] = [None] * len(claims)  # type: ignore[list-item]
    for i in order:
        try:
            out[i] = ledger.settle(claims[i], catalog)
        except ClaimRejected as exc:
            out[i] = exc
    return out
