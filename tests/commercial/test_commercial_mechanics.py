"""Commercial layer (惠民保): hand-worked insurer payments from yibao/data/commercial/city-huiminbao-2026.yaml."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.commercial.mechanics import (
    Accumulators,
    ClaimParts,
    insurer_payment,
    insurer_payment_np,
    parts_from_settlement,
)
from yibao.commercial.products import CommercialError, get_product

P = get_product("HMB-DEMO-2026")


def test_product_file_values():
    assert P.deductible == 2_000_000 and P.ceiling == 100_000_000
    assert (P.ratios.in_list, P.ratios.out_of_list, P.ratios.specific_drug) == (8000, 5000, 7000)


def test_hand_worked_one_claim():
    # in-list 30 000 yuan, out-of-list 10 000, specific drug 5 000; deductible 20 000 all from in-list
    # pays (30000-20000)*0.8 + 10000*0.5 + 5000*0.7 = 8000 + 5000 + 3500 = 16 500 yuan
    pay = insurer_payment(P, ClaimParts(3_000_000, 1_000_000, 500_000), Accumulators())
    assert pay.insurer_pays == 1_650_000
    assert pay.person_remainder == 4_500_000 - 1_650_000
    assert pay.after == Accumulators(2_000_000, 1_650_000)


def test_deductible_across_claims_and_ceiling():
    # claim 1: in 15 000 + out 3 000 → all deductible except nothing; 18 000 < 20 000 → pays 0
    a = insurer_payment(P, ClaimParts(1_500_000, 300_000, 0), Accumulators())
    assert a.insurer_pays == 0 and a.after.deductible_used == 1_800_000
    # claim 2: in 1 000 + out 4 000: deductible left 2 000 → in 1 000, out 1 000; pays 3 000*0.5 = 1 500 yuan
    b = insurer_payment(P, ClaimParts(100_000, 400_000, 0), a.after)
    assert b.insurer_pays == 150_000 and b.after.deductible_used == 2_000_000
    # ceiling: 999 000 yuan paid already, claim worth 8 000 → only 1 000 left
    c = insurer_payment(P, ClaimParts(1_000_000, 0, 0), Accumulators(2_000_000, 99_900_000))
    assert c.insurer_pays == 100_000 and c.after.paid == P.ceiling
    assert insurer_payment(P, ClaimParts(1_000_000, 0, 0), c.after).insurer_pays == 0


def test_pre_existing_ratio_and_rounding():
    # 0.40 of 1.01 yuan after deductible used = 0.404 → 0.40 yuan (half up to the fen)
    pay = insurer_payment(P, ClaimParts(101, 0, 0), Accumulators(P.deductible, 0), pre_existing=True)
    assert pay.insurer_pays == 40


def test_parts_from_settlement_split_and_refusals():
    amounts = {"psn_part_amt": 5_000, "fulamt_ownpay_amt": 1_200, "overlmt_selfpay": 300}
    assert parts_from_settlement(amounts, specific_drug=1_000) == ClaimParts(3_500, 500, 1_000)
    assert parts_from_settlement(amounts, specific_drug=2_000) == ClaimParts(3_000, 0, 2_000)
    with pytest.raises(CommercialError):
        parts_from_settlement(amounts, specific_drug=6_000)
    with pytest.raises(CommercialError):
        ClaimParts(-1, 0, 0)


claims = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 3_000_000),
        st.integers(0, 2_000_000),
        st.integers(0, 5_000_000),
        st.booleans(),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(claims)
def test_scalar_equals_batch(rows):
    rows = sorted(rows, key=lambda r: r[0])  # stable: settlement order kept within a person
    accs: dict[int, Accumulators] = {}
    scalar = []
    for person, i, o, s, pre in rows:
        pay = insurer_payment(P, ClaimParts(i, o, s), accs.get(person, Accumulators()), pre_existing=pre)
        accs[person] = pay.after
        scalar.append(pay.insurer_pays)
        # the person's payable drops by exactly the insurer's payment
        assert pay.person_remainder + pay.insurer_pays == i + o + s
    arr = np.array(rows, dtype=np.int64).reshape(-1, 5)
    batch = insurer_payment_np(P, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4])
    assert batch.tolist() == scalar
    for acc in accs.values():
        assert acc.paid <= P.ceiling
