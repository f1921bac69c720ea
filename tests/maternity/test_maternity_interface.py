"""Maternity (生育门诊, med_type 51) through the national interface: 2201 → 2204 → 2206 → 2207 over HTTP."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from tests.api.test_api_flow import T0, _cert, env  # noqa: F401  (the fixture)
from tests.api_support import BOOK, CAT, REGION
from tests.factories import claim, line
from tests.settlement_support import facts, ledger_persons
from yibao.api.hisclient import Item
from yibao.settlement.sequential import Ledger, settle_in_order


def test_2207_with_maternity_med_type_settles_like_the_engine(env):  # noqa: F811
    _iface, _client, his, _clock = env
    items = [Item("A-DRUG", "2", "150.00"), Item("B-DRUG", "1", "200.00")]
    op = his.outpatient("E2", "310", _cert("E2"), items, med_type="51", dise_codg="Z34.0")  # E2: a woman
    setl = op["2207"]["output"]["setlinfo"]
    lines = [line(1, "A-DRUG", 150, qty=2), line(2, "B-DRUG", 200)]
    c = claim(setl["mdtrt_id"], facts("E2"), lines, med_type="51", hosp_lv=2, when=T0, dise="Z34.0")
    want = settle_in_order([c], Ledger(BOOK.policy(REGION), ledger_persons(), dt.date(2025, 3, 1)), CAT)[0]
    assert want.category == "maternity"
    for k, v in want.amounts().items():
        assert setl[k] == Decimal(v) / 100, k
    # hand-worked: ¥300 甲类 + ¥200 乙类 (10 % self-pay first) → ¥480 in policy, paid 100 % by the maternity rule
    assert setl["hifp_pay"] == Decimal("480.00") and setl["act_pay_dedc"] == Decimal("0.00")
    assert setl["medfee_sumamt"] == Decimal("500.00")


def test_2207_maternity_care_of_a_man_is_refused(env):  # noqa: F811
    # med_type 51 settles as maternity care (生育医疗): only a woman's (yibao.maternity.eligibility)
    from yibao.api.hisclient import HisError

    _iface, _client, his, _clock = env
    try:
        his.outpatient("E1", "310", _cert("E1"), [Item("A-DRUG", "1", "150.00")], med_type="51", dise_codg="Z34.0")
    except HisError as exc:
        assert "非女性" in str(exc) and "med_type" in str(exc)
    else:
        raise AssertionError("a man's maternity visit settled")
