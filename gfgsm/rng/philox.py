"""Philox4x32-10 in Array-API integer operations (Salmon, Moraes, Dror & Shaw 2011).

Philox is a counter-based generator: a keyed bijection of a 128-bit counter, so the random
words of any (key, counter) are computed directly, in any order, on any device.  One block is

    (c0, c1, c2, c3), (k0, k1)  ->  10 rounds of
        (hi0, lo0) = M0 * c0,  (hi1, lo1) = M1 * c2                (32 x 32 -> 64-bit products)
        (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        (k0, k1) += (W0, W1)  (mod 2^32, between rounds)

with ``M0 = 0xD2511F53``, ``M1 = 0xCD9E8D57``, ``W0 = 0x9E3779B9``, ``W1 = 0xBB67AE85``
(Random123's ``philox.h``).  Every word is held in a ``uint64`` array, so each 32 x 32
product is exact (below 2^64) and ``>> 32`` / ``& 0xFFFFFFFF`` split it: no operation can
overflow, and the code is the same integer arithmetic on NumPy, CuPy and ``array_api_strict``,
hence the same words on every backend (tested against Random123's known-answer vectors).

Why Philox4x32-10 and not NumPy's Philox4x64-10: the 4x64 variant needs a 64 x 64 -> 128-bit
product, which Array-API integers do not have (it would be built from four 32-bit products
and carries, roughly 3x the work on a device); 4x32 needs only products that fit a ``uint64``.
NumPy's C ``Philox`` would give a faster host path for 4x64, but only by walking each
replication's counter sequentially, i.e. a Python loop over replications; the array version
draws a whole chunk of replications in one pass on every backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["M0", "M1", "MASK32", "W0", "W1", "philox4x32"]

M0 = 0xD2511F53
M1 = 0xCD9E8D57
W0 = 0x9E3779B9
W1 = 0xBB67AE85
MASK32 = 0xFFFFFFFF


def philox4x32(ctr: tuple[Any, Any, Any, Any], key: tuple[Any, Any], xp: Any,
               rounds: int = 10) -> tuple[Any, Any, Any, Any]:
    """The Philox4x32 bijection of ``ctr`` under ``key`` (module docstring).

    Parameters
    ----------
    ctr : four ``uint64`` arrays (broadcastable) holding 32-bit words ``c0..c3``.
    key : two 32-bit words, Python ints (one key for the whole call) or ``uint64`` arrays
        broadcastable with the counter.
    xp : the array namespace of ``ctr``.
    rounds : 10 for Philox4x32-10 (7 also passes BigCrush; kept for the known-answer tests).

    Returns
    -------
    Four ``uint64`` arrays of the broadcast shape holding the output words ``x0..x3``.
    """
    if isinstance(key[0], int) and isinstance(key[1], int) and all(
            type(c) is np.ndarray for c in ctr):
        return _philox_numpy(ctr, key, rounds)
    return _philox_array(ctr, key, xp, rounds)


def _philox_array(ctr: tuple[Any, Any, Any, Any], key: tuple[Any, Any], xp: Any,
                  rounds: int) -> tuple[Any, Any, Any, Any]:
    """The reference: plain Array-API operations, one new array per step."""
    del xp  # the operators of the arrays are the namespace's
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0 = _bump(k0, W0)
            k1 = _bump(k1, W1)
        p0 = c0 * M0
        p1 = c2 * M1
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1) ^ k0, p1 & MASK32, ((p0 >> 32) ^ c3) ^ k1, p0 & MASK32
    return c0, c1, c2, c3


def _bump(k: Any, w: int) -> Any:
    return (k + w) & MASK32


#: Counters per tile of the NumPy path: five uint64 work arrays of this length stay in cache.
_TILE = 65536


def _philox_numpy(ctr: tuple[Any, Any, Any, Any], key: tuple[int, int], rounds: int
                  ) -> tuple[Any, Any, Any, Any]:
    """The same integer operations as :func:`_philox_array`, in place on cache-sized tiles.

    Host speed only (about 3x on 2 cores): the arithmetic, hence every word, is identical
    (tested bitwise against the reference).
    """
    c = np.broadcast_arrays(*(np.asarray(x, dtype=np.uint64) for x in ctr))
    shape = c[0].shape
    flat = [np.ascontiguousarray(x).reshape(-1) for x in c]
    N = flat[0].size
    out = np.empty((4, N), dtype=np.uint64)
    m0, m1 = np.uint64(M0), np.uint64(M1)
    s32, mask = np.uint64(32), np.uint64(MASK32)
    keys = []
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + W0) & MASK32, (k1 + W1) & MASK32
        keys.append((np.uint64(k0), np.uint64(k1)))
    tile = min(_TILE, max(N, 1))
    p0, p1, tmp = (np.empty(tile, dtype=np.uint64) for _ in range(3))
    for a in range(0, N, tile):
        b = min(N, a + tile)
        x0, x1, x2, x3 = (f[a:b].copy() for f in flat)
        P0, P1, T = p0[: b - a], p1[: b - a], tmp[: b - a]
        for kk0, kk1 in keys:
            np.multiply(x0, m0, out=P0)
            np.multiply(x2, m1, out=P1)
            np.right_shift(P1, s32, out=T)
            np.bitwise_xor(T, x1, out=T)
            np.bitwise_xor(T, kk0, out=x0)
            np.bitwise_and(P1, mask, out=x1)
            np.right_shift(P0, s32, out=T)
            np.bitwise_xor(T, x3, out=T)
            np.bitwise_xor(T, kk1, out=x2)
            np.bitwise_and(P0, mask, out=x3)
        out[0, a:b], out[1, a:b], out[2, a:b], out[3, a:b] = x0, x1, x2, x3
    return tuple(o.reshape(shape) for o in out)
