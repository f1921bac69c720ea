"""Optional national cryptography on the envelope: SM4 encryption, SM3 / SM2 signatures (gmssl), per institution.

Many provinces require that ``input`` and ``output`` travel encrypted with SM4
and that messages are signed. Conventions differ by province; yibao's, which
an HIS can follow with any SM library:

* **Encryption (SM4-ECB, PKCS#7, key = the institution's 16-byte key).** The
  request's ``input`` is the hex string of the encrypted UTF-8 JSON text of
  the real input; the reply's ``output`` likewise. ``encType = "SM4"`` is set
  on both.
* **Signature.** ``signtype = "SM3"``: ``cainfo`` is HMAC-SM3 (key = the same
  16 bytes) in hex over ``msgid + infno + input`` (``input`` as sent, i.e. the
  ciphertext when encrypted). ``signtype = "SM2"``: ``cainfo`` is an SM2
  signature (``sign_with_sm3``, hex) over the same bytes, verified with the
  institution's public key. The platform signs replies with HMAC-SM3 over
  ``inf_refmsgid + output`` (``signtype = "SM3"``).

Settings are per institution, in a YAML file given to ``yibao serve
--security FILE`` (keys are secrets: keep the file out of the repository)::

    institutions:
      H99000001: {sm4_key: "<32 hex digits>", signtype: SM3}
      H99000002: {sm4_key: "<32 hex digits>", signtype: SM2, sm2_public_key: "<128 hex digits>"}

Institutions not listed use plain JSON. The REST side (``/api/v1``) is not
encrypted (use TLS).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.core.errors import YibaoError

_BLOCK = 64  # SM3 block size in bytes


class SecurityError(YibaoError):
    code = "E_API_SECURITY"


def sm3_hex(data: bytes) -> str:
    from gmssl import sm3

    return sm3.sm3_hash(list(data))


def hmac_sm3(key: bytes, msg: bytes) -> str:
    """HMAC (RFC 2104) with SM3, hex."""
    if len(key) > _BLOCK:
        key = bytes.fromhex(sm3_hex(key))
    key = key.ljust(_BLOCK, b"\0")
    inner = bytes.fromhex(sm3_hex(bytes(b ^ 0x36 for b in key) + msg))
    return sm3_hex(bytes(b ^ 0x5C for b in key) + inner)


def sm4_encrypt(key: bytes, plain: bytes) -> str:
    from gmssl import sm4

    c = sm4.CryptSM4()
    c.set_key(key, sm4.SM4_ENCRYPT)
    return c.crypt_ecb(plain).hex()


def sm4_decrypt(key: bytes, cipher_hex: str) -> bytes:
    from gmssl import sm4

    c = sm4.CryptSM4()
    c.set_key(key, sm4.SM4_DECRYPT)
    return c.crypt_ecb(bytes.fromhex(cipher_hex))


class InstitutionKeys(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sm4_key: str = Field(pattern=r"^[0-9a-fA-F]{32}$")
    signtype: Literal["SM3", "SM2", ""] = "SM3"
    sm2_public_key: str = Field(default="", pattern=r"^([0-9a-fA-F]{128})?$")

    @property
    def key(self) -> bytes:
        return bytes.fromhex(self.sm4_key)


class SecurityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    institutions: dict[str, InstitutionKeys] = {}

    @classmethod
    def load(cls, path: str | Path) -> "SecurityPolicy":
        p = Path(path)
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            pol = cls.model_validate(raw)
        except (OSError, yaml.YAMLError) as exc:
            raise SecurityError(f"{p}: cannot read: {exc}", f"{p}: 无法读取安全配置") from exc
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = ".".join(str(x) for x in e["loc"])
            raise SecurityError(f"{p}: {loc}: {e['msg']}", f"{p}: 安全配置 {loc} 无效", field=loc) from exc
        for code, k in pol.institutions.items():
            if k.signtype == "SM2" and not k.sm2_public_key:
                raise SecurityError(f"{p}: {code}: SM2 needs sm2_public_key", f"{p}: {code}: SM2 签名须配置公钥", field=code)
        return pol

    def for_institution(self, code: Any) -> InstitutionKeys | None:
        return self.institutions.get(code) if isinstance(code, str) else None


@dataclass
class Refusal(Exception):
    zh: str
    en: str
    field: str


def _signed_bytes(obj: dict) -> bytes:
    inp = obj.get("input")
    return f"{obj.get('msgid', '')}{obj.get('infno', '')}{inp if isinstance(inp, str) else ''}".encode()


def open_request(obj: dict, keys: InstitutionKeys, loads) -> dict:
    """Verify the signature and decrypt ``input``; return the plain envelope (raises :class:`Refusal`)."""
    if keys.signtype:
        sig = obj.get("cainfo")
        if not isinstance(sig, str) or not sig:
            raise Refusal("缺少报文签名 cainfo", "the message signature cainfo is missing", "cainfo")
        if obj.get("signtype") != keys.signtype:
            raise Refusal(f"签名类型应为 {keys.signtype}", f"signtype must be {keys.signtype}", "signtype")
        data = _signed_bytes(obj)
        if keys.signtype == "SM3":
            ok = secrets.compare_digest(sig.lower(), hmac_sm3(keys.key, data))
        else:
            from gmssl import sm2

            try:
                ok = bool(sm2.CryptSM2(private_key=None, public_key=keys.sm2_public_key).verify_with_sm3(sig, data))
            except Exception:  # noqa: BLE001 - a malformed signature is a bad signature
                ok = False
        if not ok:
            raise Refusal("报文签名校验失败", "the message signature does not verify", "cainfo")
    enc = obj.get("input")
    if not isinstance(enc, str):
        raise Refusal("input 须为SM4加密后的十六进制字符串", "input must be the SM4-encrypted hex string", "input")
    try:
        plain = sm4_decrypt(keys.key, enc)
        inner = loads(plain)
    except Exception:  # noqa: BLE001 - any failure means the ciphertext is not valid
        raise Refusal("input 解密失败", "input could not be decrypted (SM4)", "input") from None
    out = dict(obj)
    out["input"] = inner
    return out


def seal_reply(reply: dict, keys: InstitutionKeys, dumps) -> dict:
    """The reply as sent: ``output`` encrypted, signed with HMAC-SM3."""
    sealed = dict(reply)
    sealed["output"] = sm4_encrypt(keys.key, dumps(reply.get("output", {})).encode())
    sealed["encType"] = "SM4"
    sealed["signtype"] = "SM3"
    sealed["cainfo"] = hmac_sm3(keys.key, f"{reply.get('inf_refmsgid', '')}{sealed['output']}".encode())
    return sealed


def seal_request(obj: dict, keys: InstitutionKeys, dumps, *, sm2_private_key: str = "") -> dict:
    """The HIS side: encrypt ``input`` and sign (for clients, demos and tests)."""
    out = dict(obj)
    out["input"] = sm4_encrypt(keys.key, dumps(obj.get("input", {})).encode())
    out["encType"] = "SM4"
    if keys.signtype == "SM3":
        out["signtype"] = "SM3"
        out["cainfo"] = hmac_sm3(keys.key, _signed_bytes(out))
    elif keys.signtype == "SM2":
        from gmssl import func, sm2

        crypt = sm2.CryptSM2(private_key=sm2_private_key, public_key=keys.sm2_public_key)
        out["signtype"] = "SM2"
        out["cainfo"] = crypt.sign_with_sm3(_signed_bytes(out), func.random_hex(crypt.para_len))
    return out


def open_reply(reply: dict, keys: InstitutionKeys, loads) -> dict:
    """The HIS side: check the platform's HMAC-SM3 and decrypt ``output``."""
    want = hmac_sm3(keys.key, f"{reply.get('inf_refmsgid', '')}{reply.get('output', '')}".encode())
    if not secrets.compare_digest(str(reply.get("cainfo", "")), want):
        raise SecurityError("reply signature does not verify", "响应报文签名校验失败", field="cainfo")
    out = dict(reply)
    out["output"] = loads(sm4_decrypt(keys.key, reply["output"]))
    return out


def sm2_keypair() -> tuple[str, str]:
    """A new SM2 key pair (private hex, public hex), e.g. for an institution's test set-up."""
    from gmssl import func, sm2

    crypt = sm2.CryptSM2(private_key="", public_key="")
    d = func.random_hex(crypt.para_len)
    pub = crypt._kg(int(d, 16), sm2.default_ecc_table["g"])
    return d, pub
