"""Import every module that defines tables, so that ``yibao.core.db.Base.metadata`` is complete.

Subsystems keep their SQLAlchemy models in their own modules; Alembic
(``yibao/migrations/env.py``) and the schema tests call :func:`load_all`.
Add your module to ``MODULES`` when you add tables.
"""

from __future__ import annotations

import importlib

MODULES = (
    "yibao.codes.registry",
    "yibao.settlement.records",
    "yibao.synth.models",
    "yibao.settlement.visits",
    "yibao.api.models",
    "yibao.api.more_models",
    "yibao.procurement.models",
    "yibao.supervision.models",
    "yibao.ecode.models",
    "yibao.web.models",
    "yibao.enrolment.models",
    "yibao.ltc.models",
    "yibao.commercial.models",
    "yibao.crossregion.models",
    "yibao.maternity.models",
    "yibao.longrx.models",
    "yibao.reimbursement.models",
    "yibao.rxcirc.models",
)


def load_all() -> None:
    for name in MODULES:
        importlib.import_module(name)
