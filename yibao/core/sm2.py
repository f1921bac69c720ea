"""SM2 signatures with SM3 digests (GB/T 32918, the national elliptic-curve signature) on top of gmssl.

The envelope (:mod:`yibao.api.security`) and the e-insurance code tokens (:mod:`yibao.ecode.tokens`) both sign
with SM2.  gmssl's ``CryptSM2`` constructor removes an uncompressed-point prefix with ``str.lstrip("04")``, which
strips *every* leading ``0`` and ``4``: a public key whose hex happens to begin with ``04`` (one key in 256, and
one in 8 when written with its ``04`` prefix) was cut short, and every signature under it then failed to verify.
This module hands gmssl the key as 128 hex digits (x‖y) after normalizing it itself, so no key is altered.
"""

from __future__ import annotations

import re
import secrets

_KEY = re.compile(r"^(04)?([0-9a-fA-F]{128})$")


def _curve():
    from gmssl import sm2

    return sm2


def normalize_public_key(public_key: str) -> str:
    """The public key as 128 lower-case hex digits (x‖y); a 130-digit key with the ``04`` prefix is accepted.

    Raises ``ValueError`` for anything else.
    """
    m = _KEY.match(public_key or "")
    if m is None:
        raise ValueError("an SM2 public key is 128 hex digits (x‖y), or 130 with the uncompressed prefix 04")
    return m.group(2).lower()


def _crypt(private_key: str, public_key: str):
    sm2 = _curve()
    c = sm2.CryptSM2(private_key=private_key, public_key="")
    c.public_key = normalize_public_key(public_key)  # set after construction: the constructor's lstrip("04")
    return c


def keypair() -> tuple[str, str]:
    """A new key pair: private key d uniform in [1, n-1] (64 hex digits), public key d·G (128 hex digits)."""
    sm2 = _curve()
    n = int(sm2.default_ecc_table["n"], 16)
    d = secrets.randbelow(n - 1) + 1
    pub = sm2.CryptSM2(private_key="", public_key="")._kg(d, sm2.default_ecc_table["g"])
    return f"{d:064x}", pub


def sign(private_key: str, public_key: str, data: bytes) -> str:
    """The SM2-with-SM3 signature of ``data`` (r‖s, 128 hex digits), with a fresh random nonce.

    The public key enters the digest (Z_A), so it must be the signer's own.
    """
    sm2 = _curve()
    c = _crypt(private_key, public_key)
    n = int(sm2.default_ecc_table["n"], 16)
    while True:  # gmssl returns None for the (negligibly rare) nonces that give r = 0, r + k = n or s = 0
        sig = c.sign_with_sm3(data, f"{secrets.randbelow(n - 1) + 1:064x}")
        if sig:
            return sig


def verify(public_key: str, signature: str, data: bytes) -> bool:
    """True when ``signature`` (r‖s hex) is a valid SM2-with-SM3 signature of ``data`` under ``public_key``."""
    if not isinstance(signature, str) or not signature:
        return False
    try:
        return bool(_crypt("", public_key).verify_with_sm3(signature, data))
    except Exception:  # noqa: BLE001 - gmssl raises on malformed keys or signatures; that is a failed check
        return False
