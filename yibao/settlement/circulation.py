"""The level a circulated prescription is paid at, for the batch engine (外配处方的结算等级).

A designated pharmacy's fill of an electronic prescription issued elsewhere (``rx_circ_flag`` on its lines) is
paid at the level (hosp_lv) of the institution that issued it, or at the pharmacy's own, as the rule file
``yibao/data/rxcirc/circulation.yaml`` says for the day.  The scalar path applies it in
:class:`yibao.rxcirc.service.RxService` (``level_of=`` the issuer); the batch engine applies the same rule here,
finding the issuer through the line's prescriber (``bilg_dr_code`` → contract ``PRACTITIONER.fixmedins_code``),
because a year's fee lines do not carry the issuing institution.

This module holds only the mechanics; the rule comes from the file, through :meth:`PrescriberLevel.from_rules`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class PrescriberLevel:
    """Which institution's level a claim holding circulated lines is paid at, from which day.

    ``periods``: ``(first_day, at_issuer)`` in date order; from ``first_day`` on, ``at_issuer`` True means the
    prescribing institution's level, False the dispensing pharmacy's (no change).  Before the first period the
    pharmacy's own level applies (no rule was in force).
    ``prescribers``: ``prac_psn_code`` → ``fixmedins_code``, the contract ``PRACTITIONER`` table (other columns
    are ignored); may be empty, and then a circulated line paid at the issuer's level has no known issuer.
    """

    periods: tuple[tuple[dt.date, bool], ...]
    prescribers: pa.Table

    def __post_init__(self) -> None:
        days = [d for d, _ in self.periods]
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError("prescriber-level periods must be in strictly increasing date order")
        missing = {"prac_psn_code", "fixmedins_code"} - set(self.prescribers.column_names)
        if missing:
            raise ValueError(f"prescribers table lacks {sorted(missing)}")

    @classmethod
    def from_rules(cls, rules: Iterable[tuple[dt.date, str]], prescribers: pa.Table | None) -> PrescriberLevel:
        """From the rule file's ``(from, benefit_level)`` entries ("issuer" / "dispenser")."""
        table = prescribers if prescribers is not None else _empty_prescribers()
        return cls(tuple((day, level == "issuer") for day, level in rules), table)

    def at_issuer(self, day_numbers: np.ndarray) -> np.ndarray:
        """Per day (days since 1970-01-01): the issuer's level applies."""
        if not self.periods:
            return np.zeros(len(day_numbers), dtype=bool)
        starts = np.array([(d - EPOCH).days for d, _ in self.periods], dtype=np.int64)
        flags = np.array([f for _, f in self.periods], dtype=bool)
        k = np.searchsorted(starts, day_numbers, side="right") - 1
        return np.where(k >= 0, flags[np.maximum(k, 0)], False)

    def at_issuer_on(self, day: dt.date) -> bool:
        """The issuer's level applies on ``day`` (the scalar form of :meth:`at_issuer`)."""
        return bool(self.at_issuer(np.array([(day - EPOCH).days], dtype=np.int64))[0])

    @property
    def ever_at_issuer(self) -> bool:
        return any(f for _, f in self.periods)


def rules_in_force() -> PrescriberLevel:
    """The periods of ``yibao/data/rxcirc/circulation.yaml`` (no prescribers table: the scalar path asks its
    database for the prescriber's institution)."""
    from yibao.rxcirc.params import load_circulation

    return PrescriberLevel.from_rules([(r.valid_from, r.benefit_level) for r in load_circulation().rules], None)


def _empty_prescribers() -> pa.Table:
    return pa.table({"prac_psn_code": pa.array([], pa.string()), "fixmedins_code": pa.array([], pa.string())})


def prescribers_on_circulated_lines(lines: pa.Table) -> pa.Table:
    """``lines`` with ``bilg_dr_code`` kept only where ``rx_circ_flag`` is set (null elsewhere).

    The prescriber is read by the batch engine only to find a circulated prescription's issuer; on every other
    fee line it is dead weight (it doubled a year's in-memory line table).  The year readers call this as they
    read, so a table without either column is returned as it is.
    """
    names = lines.column_names
    if "bilg_dr_code" not in names or "rx_circ_flag" not in names:
        return lines
    code = lines.column("bilg_dr_code")
    kept = pc.if_else(pc.fill_null(lines.column("rx_circ_flag"), False), code, pa.nulls(len(lines), code.type))
    return lines.set_column(names.index("bilg_dr_code"), "bilg_dr_code", kept)
