"""Fast Arrow column builders for the generator (no per-row Python)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from yibao.core.contract import TIMEZONE

TS = pa.timestamp("s", tz=TIMEZONE)


_T4 = np.array([f"{i:04d}".encode() for i in range(10000)], dtype="S4").view(np.uint32)


def _digit_rows(prefix: str, nums: np.ndarray, width: int, suffix: str = "") -> np.ndarray:
    """(n, L) uint8 rows ``prefix + zero-padded nums + suffix``."""
    nums = np.asarray(nums, dtype=np.int64)
    n = len(nums)
    if n and (nums.min() < 0 or (width < 19 and nums.max() >= 10**width)):
        raise ValueError(f"numbers must lie in 0..10**{width}-1")
    p = np.frombuffer(prefix.encode(), dtype=np.uint8)
    s = np.frombuffer(suffix.encode(), dtype=np.uint8)
    lp, ls = len(p), len(s)
    L = lp + width + ls
    blocks = -(-width // 4)
    d = np.empty((n, blocks), dtype=np.uint32)
    x = nums
    for b in range(blocks - 1, -1, -1):
        if b:
            x, r = np.divmod(x, 10000)
            d[:, b] = _T4.take(r)
        else:
            d[:, b] = _T4.take(x)
    raw = d.view(np.uint8).reshape(n, 4 * blocks)
    buf = np.empty((n, L), dtype=np.uint8)
    if lp:
        buf[:, :lp] = p
    buf[:, lp : lp + width] = raw[:, 4 * blocks - width :]
    if ls:
        buf[:, lp + width :] = s
    return buf


def _from_parts(n: int, offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    if offsets[-1] >= 2**31:
        arr = pa.Array.from_buffers(
            pa.large_string(), n, [None, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(data)]
        )
        return arr.cast(pa.string())
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])


def digits(prefix: str, nums: np.ndarray, width: int, suffix: str = "") -> pa.Array:
    """Strings ``prefix + zero-padded nums + suffix`` built in bulk.

    ``nums`` must be non-negative and below ``10**width``.
    """
    buf = _digit_rows(prefix, nums, width, suffix)
    n, L = buf.shape
    return _from_parts(n, np.arange(0, (n + 1) * L, L, dtype=np.int64), buf)


class FixedStrings:
    """Equal-length strings kept as an (n, L) byte matrix, for fast gathers by index."""

    def __init__(self, buf: np.ndarray):
        self.buf = np.ascontiguousarray(buf, dtype=np.uint8)
        self.n, self.width = self.buf.shape
        self._rows = self.buf.view(np.dtype((np.void, self.width))).ravel() if self.width else None

    @classmethod
    def digits(cls, prefix: str, nums: np.ndarray, width: int, suffix: str = "") -> FixedStrings:
        return cls(_digit_rows(prefix, nums, width, suffix))

    def array(self) -> pa.Array:
        n, L = self.n, self.width
        return _from_parts(n, np.arange(0, (n + 1) * L, L, dtype=np.int64), self.buf)

    def take(self, idx: np.ndarray, mask: np.ndarray | None = None, first: bytes | None = None) -> pa.Array:
        """Strings at ``idx`` (``''`` where ``mask`` is false); ``first`` replaces the first character."""
        idx = np.asarray(idx, dtype=np.int64)
        n, L = len(idx), self.width
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            idx = idx[mask]
        rows = self._rows
        assert rows is not None or not len(idx)  # only zero-width strings have no rows, and nothing is taken from them
        data = (
            rows[idx].view(np.uint8).reshape(len(idx), L)
            if rows is not None and len(idx)
            else np.zeros((0, L), np.uint8)
        )
        if first is not None and len(idx):
            data = data.copy() if not data.flags.writeable else data
            data[:, 0] = first[0]
        if mask is None:
            offsets = np.arange(0, (n + 1) * L, L, dtype=np.int64)
        else:
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(mask * L, out=offsets[1:])
        return _from_parts(n, offsets, np.ascontiguousarray(data))


def cat(values: Sequence[str] | pa.Array, idx: np.ndarray) -> pa.Array:
    """``values[idx]`` as an Arrow string array (categorical expansion)."""
    arr = values if isinstance(values, pa.Array) else pa.array(list(values), type=pa.string())
    return arr.take(pa.array(np.asarray(idx, dtype=np.int64)))


def cat_or_empty(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """Like :func:`cat`, with ``''`` where ``idx < 0``."""
    ext = pa.concat_arrays([values.cast(pa.string()), pa.array([""], type=pa.string())])
    idx = np.asarray(idx, dtype=np.int64)
    return ext.take(pa.array(np.where(idx < 0, len(values), idx)))


def ts(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds → ``timestamp[s, tz=Asia/Shanghai]``."""
    return pa.array(np.asarray(seconds, dtype=np.int64), type=pa.int64()).view(TS)


def const_str(value: str, n: int) -> pa.Array:
    return cat([value], np.zeros(n, dtype=np.int64))


def const_bool(value: bool, n: int) -> pa.Array:
    return pa.array(np.full(n, value, dtype=bool))
