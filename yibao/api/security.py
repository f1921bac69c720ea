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
      H99000002: {sm4_key: "<32 hex digits>", signtype: SM2, sm2_public_key: "<128 hex digits x‖y, or 04‖x‖y>"}

Institutions not listed use plain JSON. The REST side (``/api/v1``) is not
encrypted (use TLS).

**Sign-in credential (9001).** Signing in proves the institution is who it says
(:func:`authenticate_sign_in`, called by the 9001 handler), by one of:

* its SM4 key, on the envelope: an institution with ``sm4_key`` sends 9001
  encrypted (and signed when ``signtype`` is set); decrypting and verifying
  it is the proof (this is the "certificate" path: with ``signtype: SM2`` the
  file holds only the public key's half of the signature scheme);
* a secret issued to it (``yibao inst credential issue CODE``), presented in
  the 9001 input as ``signIn.credential`` (envelope or REST; use TLS) and
  stored only as an scrypt hash (``secret_hash``)::

      institutions:
        H99000003: {secret_hash: "scrypt$16384$8$1$<salt hex>$<hash hex>"}

An institution with neither cannot sign in.  ``yibao serve --insecure-demo``
(never the file) lets institutions that have no credential configured sign in
without one, for demos on a private machine.  The file is read again at a
sign-in when it has changed, so issuing or rotating a secret needs no restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from yibao.core import sm2
from yibao.core.errors import YibaoError
from yibao.core.yamldata import data_error, read_yaml, validate

_BLOCK = 64  # SM3 block size in bytes
log = logging.getLogger("yibao.api.security")


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


_SECRET_HASH = r"^(scrypt\$[0-9]+\$[0-9]+\$[0-9]+\$[0-9a-f]{32}\$[0-9a-f]{64})?$"


class InstitutionKeys(BaseModel):
    """One institution's settings: SM4 key and signature type (encrypted envelope), and/or a sign-in secret's hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sm4_key: str = Field(default="", pattern=r"^([0-9a-fA-F]{32})?$")
    signtype: Literal["SM3", "SM2", ""] = "SM3"
    sm2_public_key: str = Field(default="", pattern=r"^((04)?[0-9a-fA-F]{128})?$")  # x‖y, or 04‖x‖y
    secret_hash: str = Field(default="", pattern=_SECRET_HASH)

    @field_validator("sm2_public_key")
    @classmethod
    def _as_xy(cls, v: str) -> str:
        return sm2.normalize_public_key(v) if v else v

    @model_validator(mode="after")
    def _some_credential(self) -> InstitutionKeys:
        if not self.sm4_key and not self.secret_hash:
            raise ValueError("an institution needs sm4_key or secret_hash (yibao inst credential issue)")
        if not self.sm4_key and "signtype" in self.model_fields_set and self.signtype:
            raise ValueError("signtype needs sm4_key (the HMAC-SM3 key / the SM4 envelope)")
        return self

    @property
    def key(self) -> bytes:
        return bytes.fromhex(self.sm4_key)

    @property
    def encrypted(self) -> bool:
        return bool(self.sm4_key)


class SecurityPolicy(BaseModel):
    """Per-institution settings (``--security FILE``); ``insecure_demo`` only from ``yibao serve --insecure-demo``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    institutions: dict[str, InstitutionKeys] = {}
    insecure_demo: bool = False
    _source: tuple[Path, int] | None = PrivateAttr(default=None)  # the file and its mtime (ns) when read

    @classmethod
    def load(cls, path: str | Path, *, insecure_demo: bool = False) -> SecurityPolicy:
        p = Path(path)
        what = ("security settings", "安全配置")
        try:
            mtime = p.stat().st_mtime_ns
        except OSError as exc:
            raise data_error(p, "", f"cannot read {what[0]}: {exc}", f"无法读取{what[1]}", error=SecurityError) from exc
        raw = read_yaml(p, what=what, error=SecurityError, empty={})
        if "insecure_demo" in raw:
            raise data_error(
                p,
                "insecure_demo",
                "cannot be set in a file (only `yibao serve --insecure-demo`)",
                "不能写在配置文件中 (仅限 yibao serve --insecure-demo)",
                error=SecurityError,
            )
        pol = validate(p, cls, raw, what=what, error=SecurityError)
        for code, k in pol.institutions.items():
            if k.signtype == "SM2" and k.encrypted and not k.sm2_public_key:
                raise data_error(
                    p,
                    f"institutions.{code}.sm2_public_key",
                    "SM2 needs sm2_public_key",
                    "SM2 签名须配置公钥",
                    error=SecurityError,
                )
        if insecure_demo:
            pol = pol.model_copy(update={"insecure_demo": True})
        pol._source = (p, mtime)
        return pol

    def for_institution(self, code: Any) -> InstitutionKeys | None:
        """The institution's envelope keys (SM4 / SM3 / SM2), or None when its envelope is plain JSON."""
        k = self.institutions.get(code) if isinstance(code, str) else None
        return k if k is not None and k.encrypted else None

    def refreshed(self) -> SecurityPolicy:
        """This policy, or the file read again when it has changed since (issued or rotated credentials)."""
        if self._source is None:
            return self
        path, mtime = self._source
        try:
            now = path.stat().st_mtime_ns
        except OSError:
            return self  # the file went away: keep what was loaded (refusing every sign-in would be an outage)
        if now == mtime:
            return self
        try:
            return SecurityPolicy.load(path, insecure_demo=self.insecure_demo)
        except SecurityError as exc:  # a broken edit: keep serving with what was loaded, say so in the server log
            log.error("security settings %s not reloaded, the previous ones stay in force: %s", path, exc.message_en)
            return self


# --- sign-in secrets (9001) -------------------------------------------------------------------

_N, _R, _P = 2**14, 8, 1
_verified: OrderedDict[tuple[str, str], bool] = OrderedDict()  # (stored hash, sha256 of presented) -> verified
_verified_lock = threading.Lock()


def new_secret() -> str:
    """A new institution secret (256 bits, URL-safe text): shown once, stored only as :func:`hash_secret`."""
    return "ybs_" + secrets.token_urlsafe(32)


def hash_secret(secret: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    salt = secrets.token_bytes(16)
    h = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * n * r * p + 2**20)
    return f"scrypt${n}${r}${p}${salt.hex()}${h.hex()}"


# the same scrypt cost for an unknown institution as for a known one (no timing oracle)
_DUMMY_HASH = f"scrypt${_N}${_R}${_P}${'00' * 16}${'00' * 32}"


def check_secret(secret: str, stored: str) -> bool:
    """Constant-time check of a presented secret against its stored scrypt hash (results cached per process)."""
    key = (stored, hashlib.sha256(secret.encode()).hexdigest())
    with _verified_lock:
        if key in _verified:
            _verified.move_to_end(key)
            return _verified[key]
    try:
        kind, n, r, p, salt, h = stored.split("$")
        n_, r_, p_ = int(n), int(r), int(p)
        got = hashlib.scrypt(
            secret.encode(),
            salt=bytes.fromhex(salt),
            n=n_,
            r=r_,
            p=p_,
            dklen=len(h) // 2,
            maxmem=256 * n_ * r_ * p_ + 2**20,
        )
        ok = kind == "scrypt" and hmac.compare_digest(got.hex(), h)
    except (ValueError, TypeError):
        ok = False
    with _verified_lock:
        _verified[key] = ok
        while len(_verified) > 1024:
            _verified.popitem(last=False)
    return ok


CREDENTIAL_FIELD = "credential"


def _presented(inp: Any) -> tuple[Any, str]:
    """The credential in a 9001 input (``signIn.credential``; ``data.credential`` for clients that name the node so)."""
    if isinstance(inp, dict):
        for node in ("signIn", "data"):
            v = inp.get(node)
            if isinstance(v, dict) and CREDENTIAL_FIELD in v:
                return v[CREDENTIAL_FIELD], f"input.{node}.{CREDENTIAL_FIELD}"
    return None, f"input.signIn.{CREDENTIAL_FIELD}"


def check_credential(policy: SecurityPolicy, fixmedins_code: str, inp: Any, *, via_keys: bool) -> None:
    """Refuse (:class:`SecurityError`) a sign-in that does not prove the institution's identity.

    ``via_keys``: the message came through the SM4 envelope layer with this institution's keys (decrypted and,
    if configured, signature-verified), which proves it.  Otherwise the secret in the input must match the stored
    hash; an institution with no credential configured is refused unless the policy is ``insecure_demo``.
    """
    k = policy.institutions.get(fixmedins_code)
    if via_keys and k is not None and k.encrypted:
        return
    value, fld = _presented(inp)
    # one answer for "no such institution / no credential issued" and "wrong credential", after the same
    # scrypt work, so that a sign-in attempt does not tell an outsider which institution codes exist
    wrong = SecurityError(
        "the institution code or its sign-in credential is wrong "
        "(a credential is issued with: yibao inst credential issue)",
        "机构编码或签到凭证错误 (凭证由 yibao inst credential issue 发放)",
        field=fld,
    )
    if k is None or not k.secret_hash:
        if policy.insecure_demo and k is None:
            return
        if k is not None and (not isinstance(value, str) or not value):  # SM4 keys only
            raise SecurityError(
                f"institution {fixmedins_code} signs in with its SM4 key on the encrypted envelope",
                f"机构 {fixmedins_code} 须通过SM4加密报文签到",
                field="fixmedins_code",
            )
        check_secret(value if isinstance(value, str) and len(value) <= 200 else "", _DUMMY_HASH)
        raise wrong
    if not isinstance(value, str) or not value:
        raise SecurityError("the institution's sign-in credential is missing", "缺少机构签到凭证", field=fld)
    if len(value) > 200 or not check_secret(value, k.secret_hash):
        raise wrong


def authenticate_sign_in(iface: Any, ctx: Any) -> None:
    """The 9001 handler's hook: refresh the settings if their file changed, then :func:`check_credential`."""
    policy = iface.security.refreshed()
    if policy is not iface.security:
        iface.security = policy
    check_credential(policy, ctx.env.fixmedins_code, ctx.env.input, via_keys=ctx.keys is not None)


def write_policy(path: str | Path, policy: SecurityPolicy) -> None:
    """Write the settings file atomically (owner-only permissions: it holds keys and secret hashes)."""
    p = Path(path)
    data = {"institutions": {c: k.model_dump(exclude_defaults=True) for c, k in sorted(policy.institutions.items())}}
    text = (
        "# yibao security settings: SM4 keys and sign-in secret hashes per institution. Keep it secret.\n"
        + yaml.safe_dump(data, allow_unicode=True, sort_keys=True)
    )
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def issue_credential(path: str | Path, fixmedins_code: str) -> str:
    """Issue (or rotate) ``fixmedins_code``'s sign-in secret in the settings file; returns the secret (shown once)."""
    p = Path(path)
    pol = SecurityPolicy.load(p) if p.exists() else SecurityPolicy()
    secret = new_secret()
    old = pol.institutions.get(fixmedins_code)
    keys = (
        old.model_copy(update={"secret_hash": hash_secret(secret)})
        if old is not None
        else InstitutionKeys(secret_hash=hash_secret(secret))
    )
    write_policy(p, SecurityPolicy(institutions={**pol.institutions, fixmedins_code: keys}))
    return secret


def revoke_credential(path: str | Path, fixmedins_code: str) -> None:
    """Remove ``fixmedins_code``'s sign-in secret (its SM4 keys, if any, stay)."""
    p = Path(path)
    pol = SecurityPolicy.load(p)
    old = pol.institutions.get(fixmedins_code)
    if old is None or not old.secret_hash:
        raise SecurityError(
            f"{fixmedins_code} has no sign-in secret in {p}",
            f"{p} 中无机构 {fixmedins_code} 的签到凭证",
            field="fixmedins_code",
        )
    rest = {c: k for c, k in pol.institutions.items() if c != fixmedins_code}
    if old.encrypted:
        rest[fixmedins_code] = InstitutionKeys(**old.model_dump(exclude={"secret_hash"}, exclude_defaults=True))
    write_policy(p, SecurityPolicy(institutions=rest))


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
            ok = sm2.verify(keys.sm2_public_key, sig, data)
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
        out["signtype"] = "SM2"
        out["cainfo"] = sm2.sign(sm2_private_key, keys.sm2_public_key, _signed_bytes(out))
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
    return sm2.keypair()
