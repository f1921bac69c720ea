"""End to end through HTTP (issue 13): a home hospital files a referral (2501) to Guangdong; the Guangdong
hospital's HIS pre-settles (2206) a claim of the person: priced by Guangdong's list (就医地目录), paid at the
insured place's ratio (参保地政策) — filed, so without the unfiled reduction.  SYNTHETIC people and codes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from fastapi.testclient import TestClient

from tests.api.test_api_conformance import _register, _row, _settle_data
from tests.api_support import BOOK, CREDENTIALS, PEOPLE, SH, Clock, seed
from tests.crossregion.test_crossregion_interface import _referral
from yibao.api.hisclient import HisClient, http_transport
from yibao.api.interface import Interface
from yibao.api.security import InstitutionKeys, SecurityPolicy, hash_secret
from yibao.codes import registry
from yibao.codes.medlist import load_med_list
from yibao.core import db as ydb
from yibao.server import create_app
from yibao.settlement.catalog import Catalog

T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SH)
GUANGZHOU = "440100"
NIFEDIPINE, TELMISARTAN, PERINDOPRIL = "XV99AAS002Z999010200000", "XV99AAS007Z999010700000", "XV99AAS009Z999010900000"


def _world(db_engine):
    seed(db_engine)
    with ydb.session_scope(db_engine) as s:
        s.add(
            registry.Institution(
                fixmedins_code="G1",
                fixmedins_name="广州某医院 (synthetic)",
                fixmedins_type="hospital",
                hosp_lv=2,
                admdvs=GUANGZHOU,
                synthetic=True,
            )
        )
    creds = {**CREDENTIALS, "G1": "test-secret-G1"}
    sec = SecurityPolicy(
        institutions={k: InstitutionKeys(secret_hash=hash_secret(v, n=2**10)) for k, v in creds.items()}
    )
    clock = Clock(T0)
    cat = Catalog.from_table(load_med_list(), validate=False)
    client = TestClient(create_app(Interface(db_engine, BOOK, cat, clock=clock, security=sec)))
    home = HisClient(http_transport(client), "H2", clock=clock, credential=creds["H2"])
    far = HisClient(http_transport(client), "G1", clock=clock, credential=creds["G1"], mdtrtarea_admvs=GUANGZHOU)
    home.sign_in()
    far.sign_in()
    return home, far


def _pre_settle(far):
    op = _register(far)
    rows = [
        _row(op, "E1", "1", NIFEDIPINE, "30", "2.10", "63.00"),
        _row(op, "E1", "2", TELMISARTAN, "10", "3.00", "30.00"),
        _row(op, "E1", "3", PERINDOPRIL, "10", "2.00", "20.00"),
    ]
    far.call("2204", {"feedetail": rows})
    far.call("2203", {"mdtrtinfo": {"mdtrt_id": op, "psn_no": "E1", "med_type": "11", "dise_codg": "I10.x05"}})
    return far.call("2206", {"data": _settle_data(op, "E1", "113.00")})["output"]["setlinfo"]


def test_referral_filed_then_claim_priced_by_guangdong_paid_by_the_insured_place(db_engine):
    home, far = _world(db_engine)
    unfiled = _pre_settle(far)
    home.call("2501", {"refmedin": _referral(mdtrtarea_admdvs=GUANGZHOU, refl_date="2025-03-09")})
    filed = _pre_settle(far)
    for s in (unfiled, filed):  # Guangdong's list: 替米沙坦 丙, 硝苯地平 capped at 2.00 and 15 %
        assert (s["fulamt_ownpay_amt"], s["overlmt_selfpay"], s["preselfpay_amt"], s["inscp_scp_amt"]) == (
            Decimal("30.00"),
            Decimal("3.00"),
            Decimal("11.00"),
            Decimal("69.00"),
        )
    # the insured place's policy pays; unfiled, its illustrative 10-point reduction applies
    assert Decimal(filed["pool_prop_selfpay"]) - Decimal(unfiled["pool_prop_selfpay"]) == Decimal("0.1")
    assert PEOPLE["E1"][0] == "310"
