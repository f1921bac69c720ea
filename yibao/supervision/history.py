"""The person's history that the in-care check needs, read from the database (service layer).

``history_for(session, psn_no, before)`` returns the admissions of the last
``window_days`` days that ended before ``before`` and the first recorded
death (discharge way 5), for :func:`yibao.supervision.incare.check_claim`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from yibao.core.contract import MED_TYPE_INPATIENT
from yibao.settlement import records
from yibao.supervision.incare import History, PastAdmission

_E = records.Encounter
# built once (bind parameters): the in-care check runs inside every settling message
_ADMISSIONS = select(_E.mdtrt_id, _E.fixmedins_code, _E.dise_codg, _E.begntime, _E.endtime).where(
    _E.psn_no == bindparam("psn_no"),
    _E.med_type == MED_TYPE_INPATIENT,
    _E.endtime.is_not(None),
    _E.endtime >= bindparam("since"),
    _E.endtime <= bindparam("before"),
)
_DEATH = (
    select(_E.endtime)
    .where(_E.psn_no == bindparam("psn_no"), _E.dscg_way == "5", _E.endtime.is_not(None))
    .order_by(_E.endtime)
    .limit(1)
)


def history_for(session: Session, psn_no: str, before: dt.datetime, *, window_days: int = 60) -> History:
    since = before - dt.timedelta(days=window_days)
    rows = session.execute(_ADMISSIONS, {"psn_no": psn_no, "since": since, "before": before}).all()
    death = session.scalar(_DEATH, {"psn_no": psn_no})
    return History(
        tuple(
            PastAdmission(r.mdtrt_id, r.fixmedins_code or "", r.dise_codg or "", r.begntime, r.endtime) for r in rows
        ),
        death,
    )
