"""Masking of personal data (脱敏): keep the ends of a value, star the middle."""

from __future__ import annotations


def mask_middle(value: str | None, keep_start: int, keep_end: int) -> str:
    """``990101199001010011`` with (6, 4) → ``990101********0011``; a value no longer than the kept ends keeps only
    its first character (at least one star)."""
    v = value or ""
    if not v:
        return ""
    keep = keep_start + keep_end
    if len(v) <= keep:
        return v[:1] + "*" * (len(v) - 1)
    return v[:keep_start] + "*" * (len(v) - keep) + (v[len(v) - keep_end :] if keep_end else "")
