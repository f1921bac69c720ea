"""Identity verification at binding (人脸校验 and the like), pluggable.

A verifier is any object with ``name`` and ``verify(person, evidence)``
returning :class:`IdentityResult`.  ``ecode.yaml`` names the one in use:
``fake`` (below), or ``"package.module:Class"`` for a real face-verification
service.  The seed (004) says binding uses face verification to stop
unverified, impersonated and high-risk accounts; yibao does not ship a face
model, so the fake one stands in for it in tests and the demo.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol

from yibao.ecode.params import EcodeConfigError


@dataclass(frozen=True)
class Subject:
    """Who is being bound: the insured person's facts from the database."""

    psn_no: str
    certno: str
    psn_name: str


@dataclass(frozen=True)
class IdentityResult:
    ok: bool
    method: str
    reason_en: str = ""
    reason_zh: str = ""


class IdentityVerifier(Protocol):
    name: str

    def verify(self, subject: Subject, evidence: dict[str, Any]) -> IdentityResult: ...


class FakeFaceVerifier:
    """A deterministic stand-in for face verification (FOR TESTS AND THE DEMO ONLY).

    Accepts when ``evidence["certno"]`` equals the person's ID number and
    ``evidence["face"]`` is ``"live-match"`` (what a real service would report
    for a live face matching the ID photo); anything else is refused with the
    reason a real service would give.
    """

    name = "fake"

    def verify(self, subject: Subject, evidence: dict[str, Any]) -> IdentityResult:
        if str(evidence.get("certno", "")).strip().upper() != (subject.certno or "").upper():
            return IdentityResult(
                False, self.name, "ID number does not match the insured person", "证件号码与参保人不符"
            )
        face = evidence.get("face")
        if face != "live-match":
            return IdentityResult(
                False,
                self.name,
                f"face verification failed ({face or 'no face'})",
                f"人脸校验未通过 ({face or '未采集'})",
            )
        return IdentityResult(True, self.name)


def load_verifier(name: str) -> IdentityVerifier:
    if name == "fake":
        return FakeFaceVerifier()
    mod, _, cls = name.partition(":")
    try:
        return getattr(importlib.import_module(mod), cls)()
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        raise EcodeConfigError(
            f"binding.verifier: cannot load {name!r}: {exc}",
            f"binding.verifier: 无法加载身份核验器 {name!r}: {exc}",
            field="binding.verifier",
        ) from exc
