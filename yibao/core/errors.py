"""Errors with a stable code, a Chinese message and an English one.

Every rejection the platform gives names the field concerned, so that an
HIS vendor can fix the message without asking.
"""

from __future__ import annotations


class YibaoError(Exception):
    """Base error: ``code`` is stable, ``message_zh`` and ``message_en`` explain."""

    code = "E_YIBAO"

    def __init__(self, message_en: str, message_zh: str | None = None, *, field: str | None = None):
        self.message_en = message_en
        self.message_zh = message_zh or message_en
        self.field = field
        super().__init__(f"{message_en}" + (f" [field: {field}]" if field else ""))


class PolicyError(YibaoError):
    """A policy file is invalid: names the file, the key and the reason."""

    code = "E_POLICY"


class CodeTableError(YibaoError):
    """A code table (medical list, ICD-10, institutions…) is invalid or a code is unknown."""

    code = "E_CODE"


class ClaimRejected(YibaoError):
    """A claim cannot be settled as submitted (bad input or a benefit rule refuses it)."""

    code = "E_CLAIM"
