"""SM2 signatures (yibao.core.sm2): every key verifies, whatever its hex begins with.

gmssl's CryptSM2 constructor strips a ``04`` prefix with ``str.lstrip("04")``, which also eats the key's own leading
0s and 4s; one generated key in 256 begins with ``04`` and then never verified.  That made
``test_encrypted_and_signed_flow_settles[...-H3]`` fail once in a few hundred runs (9001: 报文签名校验失败).
"""

from __future__ import annotations

import secrets

import pytest

from yibao.api.envelope import dumps_exact, loads_exact
from yibao.api.security import InstitutionKeys, open_request, seal_request
from yibao.core import sm2
from yibao.ecode.tokens import SigningKey

# d = 11: its public key's hex begins with "04b3cb…", the case gmssl's constructor cut short
D_04 = f"{11:064x}"
PUB_04 = (
    "04b3cb10c9c6d8e27c1aab770f67f543125dcdd589c2ff82668c74d78ce20ace"
    "63516355287e39fe4918e5c02e2b0b930c94816e63c4bc72739a8fd805174a4b"
)


def test_the_fixture_key_is_d_times_g_and_begins_with_04():
    from gmssl import sm2 as g

    assert g.CryptSM2(private_key="", public_key="")._kg(11, g.default_ecc_table["g"]) == PUB_04


@pytest.mark.parametrize("pub", [PUB_04, "04" + PUB_04, PUB_04.upper()])
def test_a_key_beginning_with_04_signs_and_verifies_in_any_accepted_spelling(pub):
    data = b"msgid" + secrets.token_bytes(32)
    sig = sm2.sign(D_04, pub, data)
    assert len(sig) == 128
    assert sm2.verify(pub, sig, data)
    assert sm2.verify(PUB_04, sig, data)  # the same key however it was written
    assert not sm2.verify(pub, sig, data + b"x")


def test_bad_signatures_and_keys_do_not_verify():
    d, pub = sm2.keypair()
    data = b"payload"
    sig = sm2.sign(d, pub, data)
    _, other = sm2.keypair()
    assert sm2.verify(pub, sig, data)
    assert not sm2.verify(other, sig, data)
    for bad in ("", "zz", sig[:-2], "0" * 128, sig[:64] + "f" * 64):
        assert not sm2.verify(pub, bad, data)
    assert not sm2.verify("12", sig, data)  # a malformed key is a failed check, not a crash


@pytest.mark.parametrize("bad", ["", "ab" * 63, "05" + PUB_04, PUB_04 + "0", "g" * 128])
def test_normalize_refuses_what_is_not_a_key(bad):
    with pytest.raises(ValueError, match="128 hex digits"):
        sm2.normalize_public_key(bad)


def test_keypairs_are_in_range_and_verify():
    n = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
    for _ in range(5):
        d, pub = sm2.keypair()
        assert 1 <= int(d, 16) < n and len(d) == 64 and len(pub) == 128
        assert sm2.verify(pub, sm2.sign(d, pub, b"x"), b"x")


def test_the_envelope_with_a_04_key_is_opened_and_the_prefixed_setting_is_normalized():
    keys = InstitutionKeys(sm4_key=secrets.token_hex(16), signtype="SM2", sm2_public_key="04" + PUB_04)
    assert keys.sm2_public_key == PUB_04
    env = {"infno": "9001", "msgid": "H3202503100900000001", "fixmedins_code": "H3", "input": {"signIn": {}}}
    wire = seal_request(env, keys, dumps_exact, sm2_private_key=D_04)
    assert open_request(wire, keys, loads_exact)["input"] == {"signIn": {}}


def test_an_ecode_token_key_beginning_with_04_checks_its_own_signatures():
    key = SigningKey("k1", "sm2", sm2_private=D_04, sm2_public=PUB_04)
    sig = key.sign(b"token")
    assert key.check(b"token", sig)
    assert not key.check(b"tokem", sig)
