"""Optional SM4 encryption and SM3 / SM2 signatures on the envelope, per institution."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.api_support import BOOK, CAT, PEOPLE, SH, Clock, seed
from yibao.api.envelope import dumps_exact, field_of, loads_exact
from yibao.api.hisclient import HisClient, Item
from yibao.api.interface import Interface
from yibao.api.models import MessageLog
from yibao.api.security import InstitutionKeys, SecurityPolicy, open_reply, seal_request, sm2_keypair
from yibao.server import create_app

T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SH)
PATH = "/fsi/api/rsfComIfsService/callService"


@pytest.fixture
def secure(db_engine):
    seed(db_engine)
    d, pub = sm2_keypair()
    policy = SecurityPolicy(
        institutions={
            "H2": InstitutionKeys(sm4_key=secrets.token_hex(16), signtype="SM3"),
            "H3": InstitutionKeys(sm4_key=secrets.token_hex(16), signtype="SM2", sm2_public_key=pub),
        }
    )
    clock = Clock(T0)
    client = TestClient(create_app(Interface(db_engine, BOOK, CAT, clock=clock, security=policy)))

    def transport(code: str, private: str = ""):
        keys = policy.institutions[code]

        def post(env: dict) -> dict:
            wire = seal_request(env, keys, dumps_exact, sm2_private_key=private)
            reply = loads_exact(client.post(PATH, content=dumps_exact(wire).encode()).content)
            return open_reply(reply, keys, loads_exact)

        return post

    return client, policy, clock, transport, d, db_engine


@pytest.mark.parametrize("code", ["H2", "H3"])
def test_encrypted_and_signed_flow_settles(secure, code):
    client, policy, clock, transport, d, engine = secure
    his = HisClient(transport(code, d), code, clock=clock)
    his.sign_in()
    out = his.outpatient("E1", "310", PEOPLE["E1"][8], [Item("A-DRUG", "1", "80.00")])
    assert out["2207"]["output"]["setlinfo"]["medfee_sumamt"] == 80
    # what travelled was ciphertext; the audit log keeps the decrypted message, masked
    with engine.connect() as conn:
        reqs = [r[0] for r in conn.execute(select(MessageLog.request).where(MessageLog.infno == "2207"))]
    assert any('"medfee_sumamt":80.00' in r for r in reqs)


def test_bad_signatures_and_plaintext_are_refused(secure):
    client, policy, clock, transport, d, engine = secure
    his = HisClient(transport("H2"), "H2", clock=clock)
    his.sign_in()
    keys = policy.institutions["H2"]
    env = his.envelope("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": PEOPLE["E1"][8]}})

    def send(wire: dict) -> dict:
        return loads_exact(client.post(PATH, content=dumps_exact(wire).encode()).content)

    good = seal_request(env, keys, dumps_exact)
    assert open_reply(send(good), keys, loads_exact)["infcode"] == 0
    for wire, fld in (
        (dict(env, msgid="P1"), "cainfo"),  # plaintext, unsigned
        (dict(good, msgid="P2"), "cainfo"),  # signature of another msgid
        (dict(good, input=good["input"][:-2] + "00"), "cainfo"),  # ciphertext altered
        (seal_request(dict(env, msgid="P3"), InstitutionKeys(sm4_key=secrets.token_hex(16)), dumps_exact), "cainfo"),
        (dict(good, signtype="SM2"), "signtype"),
    ):
        r = send(wire)
        assert r["infcode"] == -1 and field_of(r["err_msg"]) == fld, (fld, r["err_msg"])
    # SM2: a signature by another key does not verify
    other_d, _ = sm2_keypair()
    h3 = policy.institutions["H3"]
    forged = seal_request(dict(env, fixmedins_code="H3", msgid="P4"), h3, dumps_exact, sm2_private_key=other_d)
    r = send(forged)
    assert r["infcode"] == -1 and field_of(r["err_msg"]) == "cainfo"
