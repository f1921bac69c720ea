"""Demo filings (SYNTHETIC): one temporary cross-province filing for a demo person."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.engine import Engine


def demo_filing(
    engine: Engine, psn_no: str, treatment_admdvs: str = "320500", today: dt.date | None = None
) -> int | None:
    """File ``psn_no`` as temporarily away (临时外出) to ``treatment_admdvs`` from ``today``; the filing id, or
    None when the person is unknown or already has a filing for that period (the demo may run twice)."""
    from yibao.core.db import session_scope
    from yibao.crossregion.service import FilingError, FilingRequest, add_filing

    with engine.connect() as c:
        row = c.execute(text("SELECT insutype, insuplc_admdvs FROM person WHERE psn_no = :p"), {"p": psn_no}).first()
    if row is None or not row[0] or not row[1]:
        return None
    req = FilingRequest(
        psn_no, row[0], "temporary", row[1], treatment_admdvs, today or dt.date.today(), source_msgid=""
    )
    try:
        with session_scope(engine) as s:
            return add_filing(s, req).id
    except FilingError:
        return None
