"""One engine, two speeds: the batch path equals the scalar path to the fen.

Hypothesis generates random people (both schemes, retirees, assistance
statuses, civil servants, families) and random claim sequences across
categories, levels, dates (including a policy change on 2026-01-01) and
items; the scalar engine settles them one by one with running state, the
batch engine all at once.  Every share, every rejection and every final
accumulator must match, and the shares must always add up.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ITEMS, TZ, catalog
from yibao.benefits.policy import PolicyBook
from yibao.core.errors import ClaimRejected
from yibao.settlement.batch import settle_batch, settle_batch_parallel
from yibao.settlement.rules import Claim, FeeLine, PayerFacts, PersonFacts
from yibao.settlement.sequential import Ledger, settle_in_order


def _book_with_list_overrides() -> PolicyBook:
    """The shipped policies plus a treatment place (320500) and a region (990200) that override list classes."""
    import shutil
    import tempfile
    from pathlib import Path

    from yibao.benefits.loader import POLICY_DIR

    d = Path(tempfile.mkdtemp(prefix="yibao-policies-"))
    for f in POLICY_DIR.glob("*.yaml"):
        shutil.copy(f, d / f.name)
    (d / "treatment-320500.yaml").write_text(
        'policy: treatment-320500\nregion: "320500"\nlabel: test treatment place\nstatus: example\ninherits: '
        "national-default\n"
        "list_overrides:\n  A-DRUG: {2024-01-01: {chrgitm_lv: '02', selfpay_prop: 0.15}, 2025-07-01: {chrgitm_lv: "
        "'03'}}\n"
        "  C-DRUG: {chrgitm_lv: '01'}\n",
        encoding="utf-8",
    )
    b = (d / "example-city-b.yaml").read_text(encoding="utf-8")
    (d / "example-city-b.yaml").write_text(b + "list_overrides:\n  B-DRUG: {selfpay_prop: 0.30}\n", encoding="utf-8")
    return PolicyBook(d)


BOOK = _book_with_list_overrides()
CAT = catalog()
CODES = [r["med_list_codg"] for r in ITEMS]
DISEASES = ["J18.9", "I10", "E11.9", "N18.5", "C34.9", "Z94.0", "A15.0", "K35.8", "O80", "E10.1"]
MED_TYPES = ["11", "14", "21", "41", "52", "99"]

person_st = st.fixed_dictionaries(
    {
        "insutype": st.sampled_from(["310", "390"]),
        "retired": st.booleans(),
        "gend": st.sampled_from(["1", "2"]),
        "birth_year": st.integers(1930, 2022),
        "assistance": st.sampled_from(["", "", "dibao", "tekun", "fanpin"]),
        "civil": st.booleans(),
        "base": st.integers(0, 3_000_000),
        "balc": st.integers(0, 500_000),
    }
)

line_st = st.fixed_dictionaries(
    {
        "code": st.sampled_from(CODES * 4 + ["NOPE"]),
        "pric": st.one_of(st.integers(0, 2_000_000), st.integers(0, 30_000_000), st.integers(10_000_000, 300_000_000)),
        "cnt": st.sampled_from([500, 1000, 1000, 2000, 3000, 10000] * 4 + [0]),
        "prd": st.sampled_from([0] * 12 + [7, 14, 28, 56, 84, 91]),
        "bad_sum": st.booleans(),
    }
)

claim_st = st.fixed_dictionaries(
    {
        "who": st.integers(0, 5),
        "med_type": st.sampled_from(MED_TYPES),
        "lv": st.sampled_from([0, 1, 2, 3]),
        "day": st.integers(0, 540),
        "minute": st.integers(0, 1439),
        "stay": st.integers(0, 400),
        "dise": st.sampled_from(DISEASES),
        "lines": st.one_of(st.lists(line_st, min_size=1, max_size=6), st.just([])),
        "mulaid": st.sampled_from([None, None, None, 0, 1, 2, 3]),
        "confirmed": st.booleans(),
        "area": st.sampled_from(["", "", "", "320500", "990100", "990200"]),
        "filed": st.booleans(),
    }
)


def build(people, claims_in, region="990100"):
    persons = {}
    pfacts = []
    for i, p in enumerate(people):
        emp = p["insutype"] == "310"
        psn_type = ("retired" if p["retired"] else "in_service") if emp else "resident"
        row = {
            "psn_no": f"P{i}",
            "certno": f"C{i}",
            "psn_name": f"n{i}",
            "gend": p["gend"],
            "brdy": dt.date(p["birth_year"], 2, 28),
            "insutype": p["insutype"],
            "psn_type": psn_type,
            "civil_servant": bool(p["civil"] and emp),
            "insuplc_admdvs": region,
            "assistance": p["assistance"],
            "contribution_base": p["base"] if emp and not p["retired"] else 0,
            "acct_balc": p["balc"] if emp else 0,
            "family_id": "F",
            "synthetic": True,
        }
        persons[row["psn_no"]] = row
        pfacts.append(
            PersonFacts(
                row["psn_no"],
                row["insutype"],
                psn_type,
                row["gend"],
                row["brdy"],
                region,
                row["assistance"],
                row["civil_servant"],
            )
        )
    # a family: P0-P1 spouses, P2 and P3 children of P0/P1, others unrelated
    links = []
    rel = {
        (0, 1): "spouse",
        (1, 0): "spouse",
        (0, 2): "child",
        (2, 0): "parent",
        (1, 2): "child",
        (2, 1): "parent",
        (0, 3): "child",
        (3, 0): "parent",
    }
    for (a, b), r in rel.items():
        if a < len(people) and b < len(people):
            links.append({"psn_no": f"P{a}", "relative_psn_no": f"P{b}", "relation": r})
    link_map = {(x["psn_no"], x["relative_psn_no"]): x["relation"] for x in links}

    claims, crow, lrows = [], [], []
    for j, c in enumerate(claims_in):
        who = c["who"] % len(people)
        pf = pfacts[who]
        setl = dt.datetime(2025, 1, 1, tzinfo=TZ) + dt.timedelta(days=c["day"], minutes=c["minute"])
        begin = setl - dt.timedelta(days=c["stay"] if c["med_type"] in ("21", "52") else 0)
        lines = []
        for k, ln in enumerate(c["lines"]):
            amt = (ln["cnt"] * ln["pric"] + 500) // 1000 + (1 if ln["bad_sum"] and k == 0 and c["day"] % 7 == 0 else 0)
            lines.append(FeeLine(k + 1, ln["code"], ln["cnt"], ln["pric"], amt, prd_days=ln["prd"]))
        payer = None
        payer_no = ""
        if c["mulaid"] is not None and c["mulaid"] < len(people):
            payer_no = f"P{c['mulaid']}"
            relation = link_map.get((pf.psn_no, payer_no), "")
            payer = PayerFacts(payer_no, persons[payer_no]["insutype"], relation)
        claims.append(
            Claim(
                mdtrt_id=f"M{j}",
                person=pf,
                fixmedins_code=f"H{c['lv']}",
                hosp_lv=c["lv"],
                med_type=c["med_type"],
                begntime=begin,
                setl_time=setl,
                dise_codg=c["dise"],
                lines=tuple(lines),
                mdtrtarea_admvs=c["area"],
                mulaid_payer=payer,
                lt_rx_confirmed=c["confirmed"],
                cross_filed=c["filed"],
            )
        )
        crow.append(
            {
                "mdtrt_id": f"M{j}",
                "psn_no": pf.psn_no,
                "fixmedins_code": f"H{c['lv']}",
                "med_type": c["med_type"],
                "begntime": pd.Timestamp(begin),
                "setl_time": pd.Timestamp(setl),
                "dise_codg": c["dise"],
                "mdtrtarea_admvs": c["area"],
                "mulaid_payer_psn_no": payer_no,
                "lt_rx_confirmed": c["confirmed"],
                "cross_filed": c["filed"],
            }
        )
        for ln in lines:
            lrows.append(
                {
                    "mdtrt_id": f"M{j}",
                    "feedetl_sn": ln.feedetl_sn,
                    "med_list_codg": ln.med_list_codg,
                    "cnt_milli": ln.cnt_milli,
                    "pric": ln.pric,
                    "det_item_fee_sumamt": ln.det_item_fee_sumamt,
                    "prd_days": ln.prd_days,
                }
            )
    inst = pd.DataFrame({"fixmedins_code": ["H0", "H1", "H2", "H3"], "hosp_lv": [0, 1, 2, 3]})
    lines_df = pd.DataFrame(
        lrows,
        columns=["mdtrt_id", "feedetl_sn", "med_list_codg", "cnt_milli", "pric", "det_item_fee_sumamt", "prd_days"],
    )
    links_df = pd.DataFrame(links, columns=["psn_no", "relative_psn_no", "relation"])
    return persons, claims, pd.DataFrame(crow), lines_df, inst, links_df


@pytest.mark.parametrize("region", ["990100", "990200"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(people=st.lists(person_st, min_size=1, max_size=6), claims_in=st.lists(claim_st, min_size=1, max_size=30))
def test_batch_equals_scalar(region, people, claims_in):
    persons, claims, cdf, ldf, inst, links = build(people, claims_in, region)
    POLICY = BOOK.policy(region)
    ledger = Ledger(POLICY, persons, dt.date(2025, 1, 1), book=BOOK)
    scalar = settle_in_order(claims, ledger, CAT)
    res = settle_batch(
        cdf,
        ldf,
        pd.DataFrame(list(persons.values())),
        inst,
        CAT,
        policy=POLICY,
        book=BOOK,
        family_links=links,
        account_start=dt.date(2025, 1, 1),
    )
    batch = {r["mdtrt_id"]: r for r in res.settlements.to_pylist()}
    rejected = set(res.rejected["mdtrt_id"])
    for claim, s in zip(claims, scalar, strict=True):
        if isinstance(s, ClaimRejected):
            assert claim.mdtrt_id in rejected, (claim.mdtrt_id, s)
            assert claim.mdtrt_id not in batch
            continue
        assert claim.mdtrt_id not in rejected, (claim.mdtrt_id, res.rejected[res.rejected.mdtrt_id == claim.mdtrt_id])
        s.check()
        b = batch[claim.mdtrt_id]
        for name, v in s.amounts().items():
            assert b[name] == v, (claim.mdtrt_id, name, b[name], v)
        assert b["pool_prop_selfpay_bp"] == s.pool_prop_selfpay_bp
        total = sum(b[f] for f in ("fund_pay_sumamt", "acct_pay", "acct_mulaid_pay", "psn_cash_pay"))
        assert total == b["medfee_sumamt"]
    # final accumulators agree
    scalar_acc = {
        (psn, yr, kind, period): v for (psn, yr), acc in ledger.accum.items() for (kind, period), v in acc.items() if v
    }
    batch_acc = {
        (r.psn_no, int(r.policy_year), r.kind, r.period): int(r.value)
        for r in res.accumulators.to_pandas().itertuples()
    }
    assert batch_acc == scalar_acc


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(people=st.lists(person_st, min_size=2, max_size=6), claims_in=st.lists(claim_st, min_size=2, max_size=30))
def test_parallel_shards_equal_single_batch(people, claims_in):
    """Sharding by family (threads) changes nothing: same rows, same order, same accumulators."""
    persons, _claims, cdf, ldf, inst, links = build(people, claims_in)
    args = (cdf, ldf, pd.DataFrame(list(persons.values())), inst, CAT)
    kw = {"policy": BOOK.policy("990100"), "book": BOOK, "family_links": links, "account_start": dt.date(2025, 1, 1)}
    one = settle_batch(*args, **kw)
    import yibao.settlement.batch as B

    two = B.settle_batch_parallel(*args, workers=2, **kw) if len(cdf) >= 10_000 else _force_parallel(args, kw)
    assert one.settlements.equals(two.settlements)
    key = ["psn_no", "policy_year", "kind", "period"]
    a = one.accumulators.to_pandas().sort_values(key).reset_index(drop=True)
    b = two.accumulators.to_pandas().sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert sorted(one.rejected["mdtrt_id"]) == sorted(two.rejected["mdtrt_id"])
    # many small shards (bounded memory), two at a time: still the same rows in the same order
    many = settle_batch_parallel(*args, workers=2, min_rows=0, shard_claims=3, **kw)
    assert one.settlements.equals(many.settlements)
    c = many.accumulators.to_pandas().sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, c)


def _force_parallel(args, kw):
    import yibao.settlement.batch as B

    return B.settle_batch_parallel(*args, workers=2, min_rows=0, **kw)
