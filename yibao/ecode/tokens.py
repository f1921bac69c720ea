"""Short-lived signed codes (动态码): pure functions, no database.

A code is the text ``PREFIX.<payload>.<signature>`` (base32, upper case, no
padding, so it fits a QR code's alphanumeric mode).  The payload is
``subject | issued_at (ms since epoch) | key id | nonce``; the subject is
the opaque id of a binding (never the person's number or ID number), so a
code reveals nothing about its holder and dies with the binding.  It expires
``ttl_seconds`` after issue, so a screenshot soon stops working (防截屏).

Algorithms: ``hmac-sm3`` (HMAC over the national SM3 hash; OpenSSL, else the
pure-Python ``gmssl``), ``hmac-sha256``, or ``sm2`` (an SM2 signature over an
SM3 digest with ``gmssl``: anyone holding the public key can verify; slow in
pure Python, see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from yibao.core import sm2
from yibao.core.errors import YibaoError


class TokenError(YibaoError):
    """A code is malformed, forged, expired or not yet valid."""

    code = "E_ECODE_TOKEN"


def _sm3_available() -> bool:
    try:
        hashlib.new("sm3")
        return True
    except (ValueError, TypeError):
        return False


_OPENSSL_SM3 = _sm3_available()


def sm3_hmac(key: bytes, msg: bytes) -> bytes:
    if _OPENSSL_SM3:
        return hmac.new(key, msg, "sm3").digest()
    from gmssl import func, sm3  # pure Python fallback

    block = 64
    if len(key) > block:
        key = bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(key)))
    key = key.ljust(block, b"\0")
    inner = bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(bytes(k ^ 0x36 for k in key) + msg)))
    return bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(bytes(k ^ 0x5C for k in key) + inner)))


def _b32(b: bytes) -> str:
    return base64.b32encode(b).decode("ascii").rstrip("=")


def _unb32(s: str) -> bytes:
    return base64.b32decode(s + "=" * (-len(s) % 8))


@dataclass(frozen=True)
class SigningKey:
    """A key: ``kid`` names it inside codes; ``secret`` for HMAC, or an SM2 key pair (hex)."""

    kid: str
    algorithm: str
    secret: bytes = b""
    sm2_private: str = ""
    sm2_public: str = ""

    @classmethod
    def generate(cls, algorithm: str, kid: str | None = None) -> SigningKey:
        kid = kid or secrets.token_hex(4)
        if algorithm == "sm2":
            priv, pub = sm2.keypair()
            return cls(kid, algorithm, sm2_private=priv, sm2_public=pub)
        return cls(kid, algorithm, secret=secrets.token_bytes(32))

    def sign(self, msg: bytes) -> bytes:
        if self.algorithm == "hmac-sm3":
            return sm3_hmac(self.secret, msg)[:16]
        if self.algorithm == "hmac-sha256":
            return hmac.new(self.secret, msg, hashlib.sha256).digest()[:16]
        if self.algorithm == "sm2":
            return bytes.fromhex(sm2.sign(self.sm2_private, self.sm2_public, msg))
        raise TokenError(f"unknown algorithm {self.algorithm!r}", f"未知签名算法 {self.algorithm!r}", field="algorithm")

    def check(self, msg: bytes, sig: bytes) -> bool:
        if self.algorithm == "sm2":
            return sm2.verify(self.sm2_public, sig.hex(), msg)
        return hmac.compare_digest(self.sign(msg), sig)


@dataclass(frozen=True)
class CodeClaims:
    subject: str
    issued_at_ms: int
    kid: str
    nonce: str

    @property
    def issued_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.issued_at_ms / 1000, dt.UTC)

    @property
    def code_id(self) -> str:
        """A stable id of this code (for the usage log), not the code itself."""
        return f"{self.kid}:{self.issued_at_ms}:{self.nonce}"


def _ms(t: dt.datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return int(t.timestamp() * 1000)


def issue(key: SigningKey, subject: str, now: dt.datetime, *, prefix: str = "YB1") -> str:
    if not subject or "|" in subject:
        raise TokenError("subject is empty or contains '|'", "凭证主体为空或含非法字符", field="subject")
    payload = f"{subject}|{_ms(now)}|{key.kid}|{secrets.token_hex(4)}".encode()
    return f"{prefix}.{_b32(payload)}.{_b32(key.sign(payload))}"


def peek(code: str, *, prefix: str = "YB1") -> CodeClaims:
    """Read the claims without checking the signature (to find the key); raises on a malformed code."""
    parts = code.strip().upper().split(".")
    if len(parts) != 3 or parts[0] != prefix:
        raise TokenError("not an e-insurance code", "不是医保电子凭证码", field="mdtrt_cert_no")
    try:
        subject, ms, kid, nonce = _unb32(parts[1]).decode().split("|")
        return CodeClaims(subject, int(ms), kid, nonce)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError("malformed e-insurance code", "医保电子凭证码格式错误", field="mdtrt_cert_no") from exc


def verify(
    code: str,
    keys: dict[str, SigningKey],
    now: dt.datetime,
    *,
    ttl_seconds: int,
    max_skew_seconds: int = 0,
    prefix: str = "YB1",
) -> CodeClaims:
    """Check signature and age; return the claims or raise :class:`TokenError`."""
    claims = peek(code, prefix=prefix)
    key = keys.get(claims.kid)
    if key is None:
        raise TokenError("e-insurance code signed by an unknown key", "医保电子凭证码密钥未知", field="mdtrt_cert_no")
    _, payload, sig = code.strip().upper().split(".")
    try:
        ok = key.check(_unb32(payload), _unb32(sig))
    except ValueError:
        ok = False
    if not ok:
        raise TokenError("e-insurance code signature is invalid", "医保电子凭证码签名无效", field="mdtrt_cert_no")
    age_ms = _ms(now) - claims.issued_at_ms
    if age_ms < -max_skew_seconds * 1000:
        raise TokenError(
            "e-insurance code is not yet valid (clock skew)", "医保电子凭证码尚未生效 (时钟偏差)", field="mdtrt_cert_no"
        )
    if age_ms > ttl_seconds * 1000:
        raise TokenError(
            f"e-insurance code expired ({ttl_seconds} s); show a fresh code",
            f"医保电子凭证码已过期 ({ttl_seconds} 秒), 请刷新",
            field="mdtrt_cert_no",
        )
    return claims
