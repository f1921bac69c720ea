"""settle_batch as a pipeline over one BatchInput: the parallel path takes the same input, filings included."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tests.factories import TZ, catalog
from yibao.benefits.policy import PolicyBook
from yibao.settlement.batch import BatchInput, settle_batch, settle_batch_parallel, settle_input, settle_input_parallel

BOOK = PolicyBook.default()
CAT = catalog()
REGION = "990100"  # its cross_province: filed −0, unfiled −1000 bp (yibao/data/policies)
START = dt.date(2025, 1, 1)
PEOPLE = [f"R{i}" for i in range(8)]


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Eight residents of 990100, one inpatient claim each in Beijing (110100: another province).

    Even-numbered people hold an active filing (异地就医备案) for Beijing; the claims' own
    ``cross_filed`` column says True for everyone, so only the filing table can tell them apart.
    """
    persons = pd.DataFrame(
        {
            "psn_no": PEOPLE,
            "gend": "1",
            "brdy": pd.Timestamp("1980-01-01"),
            "insutype": "390",
            "psn_type": "resident",
            "civil_servant": False,
            "insuplc_admdvs": REGION,
            "assistance": "",
            "contribution_base": 0,
            "acct_balc": 0,
        }
    )
    when = pd.Timestamp(dt.datetime(2025, 3, 1, 10, tzinfo=TZ))
    claims = pd.DataFrame(
        {
            "mdtrt_id": [f"M{i}" for i in range(8)],
            "psn_no": PEOPLE,
            "fixmedins_code": "H3",
            "med_type": "21",
            "begntime": [when - pd.Timedelta(days=3)] * 8,
            "setl_time": [when + pd.Timedelta(minutes=i) for i in range(8)],
            "dise_codg": "J18.9",
            "mdtrtarea_admvs": "110100",
            "cross_filed": True,
        }
    )
    lines = pd.DataFrame(
        {
            "mdtrt_id": [f"M{i}" for i in range(8)],
            "feedetl_sn": 1,
            "med_list_codg": "A-DRUG",
            "cnt_milli": 1000,
            "pric": 500_000,  # ¥5,000: above any deductible
            "det_item_fee_sumamt": 500_000,
            "prd_days": 0,
        }
    )
    filings = pd.DataFrame(
        {
            "psn_no": PEOPLE[::2],
            "insutype": "390",
            "treatment_admdvs": "110100",
            "begin_date": START,
            "end_date": None,
            "status": "active",
        }
    )
    inst = pd.DataFrame({"fixmedins_code": ["H3"], "hosp_lv": [3]})
    return claims, lines, persons, inst, filings


def _args():
    claims, lines, persons, inst, filings = _frames()
    return (claims, lines, persons, inst, CAT), {
        "policy": BOOK.policy(REGION),
        "book": BOOK,
        "account_start": START,
        "filings": filings,
    }


def test_filing_table_decides_the_ratio():
    args, kw = _args()
    rows = {r["psn_no"]: r for r in settle_batch(*args, **kw).settlements.to_pylist()}
    assert len(rows) == 8
    filed = rows["R0"]["pool_prop_selfpay_bp"]
    for i, p in enumerate(PEOPLE):
        expected = filed if i % 2 == 0 else filed - 1000  # unfiled: 10 points lower
        assert rows[p]["pool_prop_selfpay_bp"] == expected, p
    assert rows["R1"]["hifp_pay"] < rows["R0"]["hifp_pay"]


@pytest.mark.parametrize("shard_claims", [None, 2])
def test_parallel_takes_the_same_input_filings_included(shard_claims):
    """Before the pipeline, settle_batch_parallel had no ``filings``: its shards settled every claim as filed."""
    args, kw = _args()
    one = settle_batch(*args, **kw)
    many = settle_batch_parallel(*args, workers=2, min_rows=0, shard_claims=shard_claims, **kw)
    assert one.settlements.equals(many.settlements)
    key = ["psn_no", "policy_year", "kind", "period"]
    a = one.accumulators.to_pandas().sort_values(key).reset_index(drop=True)
    b = many.accumulators.to_pandas().sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_batch_input_entry_points_agree():
    args, kw = _args()
    inp = BatchInput.of(*args, **kw)
    by_args = settle_batch(*args, **kw)
    assert settle_input(inp).settlements.equals(by_args.settlements)
    assert settle_input_parallel(inp, workers=2, min_rows=0, shard_claims=3).settlements.equals(by_args.settlements)


def test_refusal_leaves_no_trace_in_accumulators():
    """A refused claim (unknown list code) is reported once and takes no part in the running sums."""
    claims, lines, persons, inst, filings = _frames()
    lines.loc[lines["mdtrt_id"] == "M3", "med_list_codg"] = "NO-SUCH-CODE"
    kw = {"policy": BOOK.policy(REGION), "book": BOOK, "account_start": START, "filings": filings}
    res = settle_batch(claims, lines, persons, inst, CAT, **kw)
    assert res.rejected[["mdtrt_id", "field"]].values.tolist() == [["M3", "med_list_codg"]]
    assert "M3" not in res.settlements.column("mdtrt_id").to_pylist()
    assert "R3" not in set(res.accumulators.column("psn_no").to_pylist())
