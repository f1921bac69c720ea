"""The batch path reads cross_filed from a filing table and agrees with the scalar register to the fen."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.factories import TZ, catalog, claim, line, person
from yibao.benefits.policy import PolicyBook
from yibao.crossregion.models import CrossFiling
from yibao.crossregion.service import is_filed
from yibao.settlement.batch import settle_batch
from yibao.settlement.sequential import Ledger, settle_in_order

BOOK = PolicyBook.default()
CAT = catalog()
REGION = "990100"
AREAS = ["320500", "320100", "110100"]
START = dt.date(2025, 1, 1)

filing_st = st.fixed_dictionaries(
    {
        "begin": st.integers(0, 200),
        "length": st.one_of(st.none(), st.integers(0, 120)),
        "area": st.sampled_from(AREAS),
        "status": st.sampled_from(["active", "active", "cancelled"]),
    }
)
claim_st = st.fixed_dictionaries(
    {"day": st.integers(0, 300), "area": st.sampled_from(AREAS + [""]), "yuan": st.integers(1, 20000)}
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filings=st.lists(filing_st, max_size=3), claims_in=st.lists(claim_st, min_size=1, max_size=6))
def test_batch_filing_table_equals_scalar_register(filings, claims_in):
    engine = create_engine("sqlite://")
    CrossFiling.__table__.create(engine)
    frows = []
    with Session(engine) as s:
        for f in filings:
            b = START + dt.timedelta(days=f["begin"])
            e = None if f["length"] is None else b + dt.timedelta(days=f["length"])
            row = dict(
                psn_no="R1",
                insutype="390",
                filing_type="temporary",
                insured_admdvs=REGION,
                treatment_admdvs=f["area"],
                begin_date=b,
                end_date=e,
                status=f["status"],
            )
            s.add(CrossFiling(**row, source_msgid="", created_at=dt.datetime(2025, 1, 1, tzinfo=TZ)))
            frows.append(row)
        s.flush()
        p = person("R1", insutype="390", psn_type="resident")
        claims, crow, lrows = [], [], []
        for j, c in enumerate(claims_in):
            when = dt.datetime.combine(START + dt.timedelta(days=c["day"]), dt.time(10), tzinfo=TZ)
            k = claim(f"M{j}", p, [line(1, "A-DRUG", c["yuan"])], hosp_lv=3, when=when)
            k = dataclasses.replace(k, fixmedins_code="H3", mdtrtarea_admvs=c["area"])
            if k.mdtrtarea_admvs and k.is_cross_province:  # the scalar path: the register decides
                k = dataclasses.replace(k, cross_filed=is_filed(s, "R1", "390", c["area"], when.date()))
            claims.append(k)
            crow.append(
                {
                    "mdtrt_id": k.mdtrt_id,
                    "psn_no": "R1",
                    "fixmedins_code": "H3",
                    "med_type": k.med_type,
                    "begntime": pd.Timestamp(k.begntime),
                    "setl_time": pd.Timestamp(k.setl_time),
                    "dise_codg": k.dise_codg,
                    "mdtrtarea_admvs": c["area"],
                    "cross_filed": True,
                }
            )  # the column says filed: the table must win
            for ln in k.lines:
                lrows.append(
                    {
                        "mdtrt_id": k.mdtrt_id,
                        "feedetl_sn": ln.feedetl_sn,
                        "med_list_codg": ln.med_list_codg,
                        "cnt_milli": ln.cnt_milli,
                        "pric": ln.pric,
                        "det_item_fee_sumamt": ln.det_item_fee_sumamt,
                        "prd_days": ln.prd_days,
                    }
                )
    persons = {
        "R1": {
            "psn_no": "R1",
            "gend": p.gend,
            "brdy": p.brdy,
            "insutype": "390",
            "psn_type": "resident",
            "civil_servant": False,
            "insuplc_admdvs": REGION,
            "assistance": "",
            "contribution_base": 0,
            "acct_balc": 0,
        }
    }
    policy = BOOK.policy(REGION)
    scalar = settle_in_order(claims, Ledger(policy, persons, START, book=BOOK), CAT)
    fdf = pd.DataFrame(
        frows,
        columns=[
            "psn_no",
            "insutype",
            "filing_type",
            "insured_admdvs",
            "treatment_admdvs",
            "begin_date",
            "end_date",
            "status",
        ],
    )
    res = settle_batch(
        pd.DataFrame(crow),
        pd.DataFrame(lrows),
        pd.DataFrame(list(persons.values())),
        pd.DataFrame({"fixmedins_code": ["H3"], "hosp_lv": [3]}),
        CAT,
        policy=policy,
        book=BOOK,
        account_start=START,
        filings=fdf,
    )
    batch = {r["mdtrt_id"]: r for r in res.settlements.to_pylist()}
    for k, sc in zip(claims, scalar, strict=True):
        b = batch[k.mdtrt_id]
        for name, v in sc.amounts().items():
            assert b[name] == v, (k.mdtrt_id, name, b[name], v)
        assert b["pool_prop_selfpay_bp"] == sc.pool_prop_selfpay_bp
