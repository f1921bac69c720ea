"""SYNTHETIC LTC demo (合成长护险示例): a few made-up recipients assessed, enrolled and settled for one month."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select
from sqlalchemy.engine import Engine

from yibao.core.db import session_scope
from yibao.ltc import service as svc
from yibao.ltc.models import LtcRecipient
from yibao.ltc.params import get_rules

DEMO_MONTH = dt.date(2022, 3, 1)


def demo_ltc(engine: Engine, seed: int, n: int = 12) -> int:
    """Synthetic recipients ``LTCSYN0001…`` (labelled synthetic); returns the claims settled (0 if already there)."""
    rules = get_rules("nantong")
    with session_scope(engine) as s:
        if s.scalars(select(LtcRecipient).where(LtcRecipient.psn_no.like("LTCSYN%"))).first() is not None:
            return 0
    rng = random.Random(seed)
    dims = rules.assessment.dimensions
    for i in range(n):
        psn = f"LTCSYN{i + 1:04d}"
        scores = {k: rng.randint(mx // 2, mx) for k, mx in dims.items()}
        a = svc.assess(engine, psn, "SYN-ASSESSOR", dt.date(2022, 1, rng.randint(1, 28)), scores)
        if rules.grade_rank(a.grade) < rules.grade_rank(rules.assessment.minimum_grade):
            continue
        setting = rng.choice(rules.settings)
        svc.enrol(engine, psn, setting, "SYN-CARE01", dt.date(2022, 2, 1))
        svc.record_services(
            engine, psn, DEMO_MONTH, "SYN-CARE01", rng.randint(10, 31), rng.randint(50_000, 400_000), ["synthetic"]
        )
    return len(svc.settle_month_all(engine, DEMO_MONTH))
