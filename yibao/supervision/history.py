"""The person's history that the in-care check needs, read from the database (service layer).

``history_for(session, psn_no, before)`` returns the admissions of the last
``window_days`` days that ended before ``before`` and the first recorded
death (discharge way 5), for :func:`yibao.supervision.incare.check_claim`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.settlement import records
from yibao.supervision.incare import History, PastAdmission


def history_for(session: Session, psn_no: str, before: dt.datetime, *, window_days: int = 60) -> History:
    E = records.Encounter
    since = before - dt.timedelta(days=window_days)
    rows = session.execute(
        select(E.mdtrt_id, E.fixmedins_code, E.dise_codg, E.begntime, E.endtime).where(
            E.psn_no == psn_no, E.med_type == "21", E.endtime.is_not(None), E.endtime >= since, E.endtime <= before
        )
    ).all()
    death = session.scalar(select(E.endtime).where(E.psn_no == psn_no, E.dscg_way == "5", E.endtime.is_not(None)).order_by(E.endtime).limit(1))
    return History(tuple(PastAdmission(r.mdtrt_id, r.fixmedins_code or "", r.dise_codg or "", r.begntime, r.endtime) for r in rows), death)
