"""Counter-based random streams of a batch of replications (docs/theory.md, "Random numbers").

A :class:`Stream` is a Philox4x32-10 key (two 32-bit words, from the study seed and the
condition), the global indices of a batch of replications and a *variable* id.  Every random
word has the counter

    c0 = block (or element) index,  c1 = attempt,  c2 = variable,  c3 = replication,

so a value depends only on (seed, condition, replication, variable, element, attempt): never on
how many replications are drawn together, on chunking, executor or backend.  Each draw takes a
fresh variable (:meth:`Stream.child`); two draws on one variable would reuse its words.

Transforms (the same array code on every backend, built from IEEE-exact operations and the
portable elementary functions of :mod:`gfgsm.rng._portable`, so NumPy, CuPy and
``array_api_strict`` give the same bits):

* uniform on [0, 1): ``k / 2^53``, ``k`` the top 27 + 26 bits of two words (two per block);
* uniform on (0, 1): ``(2 k + 1) / 2^53`` with 52 bits ``k`` (exact: ``2 k + 1 < 2^53``);
* normal: Box-Muller, ``sqrt(-2 log u) (cos, sin)(2 pi j / 2^53)`` with ``u`` open from words
  (0, 1) and the angle's 53-bit integer ``j`` from words (2, 3): two normals per block, the
  range reduction of the angle done on the integer;
* exponential ``-log u``; logistic ``log u - log(1 - u)`` (``1 - u`` is exact);
* Bernoulli(p): ``u < p``, an exact comparison of ``k / 2^53`` with ``p``;
* gamma (Marsaglia & Tsang 2000; ``a < 1`` by ``G(a + 1) U^(1/a)``), Student t as
  ``Z / sqrt(G / (df/2))`` with ``G ~ Gamma(df/2)``;
* Poisson: Knuth's product of uniforms below mean 10 (one ``exp(-mean)`` per element, one
  product per step), PTRS (Hörmann 1993, NumPy's algorithm and constants) above.

Rejection samplers use one block per (element, attempt): attempt ``t`` of element ``e`` is
counter ``(e, t, variable, rep)``; the loop runs over attempts of the still-active elements
only (compacted), never over elements or replications.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import is_numpy_namespace, to_numpy
from . import _fused, _portable
from .philox import philox4x32

__all__ = ["GENERATOR", "Stream", "key_from_seed"]

#: The generator and the version of its transforms, recorded in every results store: a store
#: drawn by another generator (or another version of these transforms) is refused.
GENERATOR = "philox4x32-10/v1"

_TWO_M53 = 2.0**-53
_TWO_M52 = 2.0**-52
#: Below this mean a Poisson draw multiplies uniforms (Knuth); above it, PTRS (as NumPy).
_KNUTH_MAX = 10.0
#: Largest Poisson mean: counts stay exact integers in float64 far beyond any draw.
_POISSON_MAX = 1e15
#: A rejection sampler that has not accepted every element after this many attempts is broken
#: (the acceptance probabilities are above 0.4 per attempt): fail loudly rather than loop.
_MAX_ATTEMPTS = 1000
#: Blocks per tile of the host (NumPy) transforms: their temporaries stay in cache.
_HOST_TILE = 16384


def key_from_seed(seed: np.random.SeedSequence) -> tuple[int, int]:
    """The Philox key of a ``SeedSequence``: its first two 32-bit state words."""
    w = seed.generate_state(2, np.uint32)
    return int(w[0]), int(w[1])


def _variable_id(parent: int, label: int | str) -> int:
    digest = hashlib.sha256(f"{parent}/{label}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass(frozen=True, eq=False)
class Stream:
    """The random stream of one variable for a batch of replications.

    Parameters
    ----------
    key : (k0, k1), two 32-bit words (:func:`key_from_seed`).
    reps : the global replication indices, a ``uint64`` array of shape (R,) in namespace ``xp``
        (any integer sequence is accepted by :meth:`create`).
    xp : the array namespace the draws are made in (and returned in).
    variable : the variable id (32 bits); :meth:`child` derives new ones.
    """

    key: tuple[int, int]
    reps: Any
    xp: Any
    variable: int = 0

    @classmethod
    def create(cls, key: tuple[int, int], reps: Any, xp: Any, variable: int = 0) -> Stream:
        r = np.asarray(to_numpy(reps))
        if r.ndim != 1 or (r.size and (r.min() < 0 or r.max() >= 2**32)):
            raise ValueError("reps must be a 1-d sequence of replication indices in [0, 2^32)")
        k0, k1 = (int(k) for k in key)
        if not (0 <= k0 < 2**32 and 0 <= k1 < 2**32):
            raise ValueError(f"a Philox key is two 32-bit words, got {key!r}")
        return cls((k0, k1), xp.asarray(r.astype(np.uint64)), xp, int(variable))

    @property
    def R(self) -> int:
        return int(self.reps.shape[0])

    def child(self, label: int | str) -> Stream:
        """A new variable, derived from this one's id and ``label`` (SHA-256, 32 bits)."""
        return Stream(self.key, self.reps, self.xp, _variable_id(self.variable, label))

    def host_generators(self) -> list[np.random.Generator]:
        """One NumPy ``Generator`` per replication, seeded by 256 bits of its own stream
        (variable ``"host"``): the fallback for user samplers that take a ``Generator``."""
        words = to_numpy(self.child("host").uint32((8,))).astype(np.uint32)
        return [np.random.default_rng(np.random.SeedSequence(w.tolist())) for w in words]

    # --- raw words ---------------------------------------------------------------------------
    def _words(self, c0: Any, attempt: int | Any, rep: Any) -> tuple[Any, Any, Any, Any]:
        xp = self.xp
        c0, rep = xp.broadcast_arrays(c0, rep)
        if isinstance(attempt, int):
            c1 = xp.full(c0.shape, attempt, dtype=xp.uint64)
        else:
            c1 = xp.broadcast_to(attempt, c0.shape)
        c2 = xp.full(c0.shape, self.variable, dtype=xp.uint64)
        return philox4x32((c0, c1, c2, rep), self.key, xp)

    def _elements(self, shape: tuple[int, ...], per_block: int, make: Any) -> Any:
        """``make(words) -> per_block arrays`` interleaved to ``(R, *shape)``.

        Element ``per_block * b + i`` of a replication is output ``i`` of its block ``b``.  On
        NumPy the blocks go through ``make`` in cache-sized tiles (every step is elementwise,
        so tiling changes no bit; it only keeps the temporaries in cache).
        """
        xp = self.xp
        m = math.prod(shape)
        n_blocks = -(-m // per_block)
        c0, rep = self._flat_index(n_blocks)
        N = int(c0.shape[0])
        if is_numpy_namespace(xp):
            out = None
            # max(N, 1): one (empty) tile still fixes the dtype of an empty draw.
            for a in range(0, max(N, 1), _HOST_TILE):
                b = a + _HOST_TILE
                parts = make(self._words(c0[a:b], 0, rep[a:b]))
                if out is None:
                    out = np.empty((N, per_block), dtype=parts[0].dtype)
                for i, part in enumerate(parts):
                    out[a:b, i] = part
        else:
            out = xp.stack(make(self._words(c0, 0, rep)), axis=-1)
        out = xp.reshape(out, (self.R, n_blocks * per_block))
        return xp.reshape(out[:, :m], (self.R, *shape))

    def _fused_draw(self, kind: str, shape: tuple[int, ...]) -> Any:  # pragma: no cover - GPU
        """The draw of :meth:`_elements` with two outputs per block, by the fused kernel of
        :mod:`gfgsm.rng._fused` (the same bits, one pass on the device)."""
        m = math.prod(shape)
        n_blocks = -(-m // 2)
        out = _fused.draw(kind, self.key, self.variable, self.reps, n_blocks)
        out = self.xp.reshape(out, (self.R, n_blocks * 2))
        return self.xp.reshape(out[:, :m], (self.R, *shape))

    # --- distributions -----------------------------------------------------------------------
    def uint32(self, shape: tuple[int, ...]) -> Any:
        """Raw 32-bit words (as ``uint64``), shape ``(R, *shape)``: four per block."""
        return self._elements(tuple(shape), 4, lambda w: list(w))

    def uniform(self, shape: tuple[int, ...]) -> Any:
        """Uniform on [0, 1) with 53 random bits, shape ``(R, *shape)``."""
        if _fused.available(self.xp):  # pragma: no cover - needs a GPU
            return self._fused_draw("uniform", tuple(shape))
        return self._elements(tuple(shape), 2, lambda w: [_u53(w[0], w[1], self.xp),
                                                          _u53(w[2], w[3], self.xp)])

    def uniform_open(self, shape: tuple[int, ...]) -> Any:
        """Uniform on (0, 1): ``(2 k + 1) / 2^53``, ``k`` 52 random bits."""
        return self._elements(tuple(shape), 2, lambda w: [_u_open(w[0], w[1], self.xp),
                                                          _u_open(w[2], w[3], self.xp)])

    def normal(self, shape: tuple[int, ...]) -> Any:
        """Standard normals by the portable Box-Muller transform (module docstring)."""
        if _fused.available(self.xp):  # pragma: no cover - needs a GPU
            return self._fused_draw("normal", tuple(shape))
        return self._elements(tuple(shape), 2, lambda w: list(_box_muller(w, self.xp)))

    def exponential(self, shape: tuple[int, ...]) -> Any:
        """Standard exponentials ``-log u``, ``u`` uniform on (0, 1)."""
        xp = self.xp
        return self._elements(tuple(shape), 2, lambda w: [
            -_portable.log(_u_open(w[0], w[1], xp), xp),
            -_portable.log(_u_open(w[2], w[3], xp), xp)])

    def logistic(self, shape: tuple[int, ...]) -> Any:
        """Standard logistic ``log u - log(1 - u)``: ``P(L < t) = 1 / (1 + exp(-t))``."""
        xp = self.xp

        def make(w: Any) -> list[Any]:
            out = []
            for a, b in ((w[0], w[1]), (w[2], w[3])):
                u = _u_open(a, b, xp)
                out.append(_portable.log(u, xp) - _portable.log(1.0 - u, xp))
            return out

        return self._elements(tuple(shape), 2, make)

    def bernoulli(self, prob: Any) -> Any:
        """``1.0`` with probability ``prob`` (an ``(R, ...)`` array in ``[0, 1]``), else ``0.0``.

        Exact: ``u = k / 2^53 < prob`` compares two floats without rounding.
        """
        xp = self.xp
        u = self.uniform(tuple(prob.shape[1:]))
        return xp.astype(u < prob, xp.float64)

    def gamma(self, shape: tuple[int, ...], a: float) -> Any:
        """Gamma(``a``, scale 1) by Marsaglia & Tsang's squeeze-free rejection.

        ``d = a - 1/3``, ``c = 1 / sqrt(9 d)``; attempt ``t`` of element ``e`` takes a normal
        ``x`` from block ``(e, 2t)`` and ``u`` from block ``(e, 2t + 1)``, ``v = (1 + c x)^3``,
        and accepts ``d v`` when ``v > 0`` and ``log u < x^2 / 2 + d - d v + d log v``.  For
        ``a < 1``, ``G(a) = G(a + 1) exp(log(U) / a)`` with ``U`` from attempt ``2^31``.
        """
        if not (isinstance(a, int | float) and math.isfinite(a) and a > 0):
            raise ValueError(f"the gamma shape must be a positive finite number, got {a!r}")
        xp = self.xp
        boost = a < 1.0
        aa = a + 1.0 if boost else float(a)
        d = aa - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)

        def attempt(e: Any, rep: Any, t: int, carry: dict[str, Any]
                    ) -> tuple[Any, Any, dict[str, Any]]:
            w = self._words(e, 2 * t, rep)
            x = _box_muller(w, xp)[0]
            w2 = self._words(e, 2 * t + 1, rep)
            u = _u_open(w2[0], w2[1], xp)
            v = 1.0 + c * x
            ok = v > 0.0
            v3 = xp.where(ok, v * v * v, 1.0)
            rhs = 0.5 * (x * x) + d - d * v3 + d * _portable.log(v3, xp)
            accept = ok & (_portable.log(u, xp) < rhs)
            return accept, d * v3, carry

        m = math.prod(shape)
        g = _merge([self._rejection(m, xp.arange(self.R * m, dtype=xp.int64), attempt, {})], xp)
        if boost:
            e, rep = self._flat_index(m)
            w = self._words(e, 2**31, rep)
            u = _u_open(w[0], w[1], xp)
            g = g * _portable.exp(_portable.log(u, xp) / a, xp)
        return xp.reshape(g, (self.R, *shape))

    def standard_t(self, shape: tuple[int, ...], df: float) -> Any:
        """Student t with ``df`` degrees of freedom: ``Z / sqrt(G / (df / 2))``.

        ``Z`` from the child variable ``"z"``, ``G ~ Gamma(df / 2)`` from ``"chi2"``.
        """
        z = self.child("z").normal(shape)
        g = self.child("chi2").gamma(shape, df / 2.0)
        return z / self.xp.sqrt(g / (df / 2.0))

    def poisson(self, mean: Any) -> Any:
        """Poisson counts with the given means (an ``(R, ...)`` array, finite, ``>= 0``).

        Knuth below mean 10: the count is the number of steps before the running product of
        uniforms (step ``t`` from block ``(e, t)``) falls to ``exp(-mean)`` or below.  PTRS at
        10 and above: attempt ``t`` takes ``U = u - 1/2`` and ``V`` from block ``(e, t)`` and
        accepts by Hörmann's test, as in NumPy's ``random_poisson_ptrs``.  The two groups of
        elements run separately, each loop only over its own still-active elements.

        Raises
        ------
        ValueError : a mean is negative, not finite or above ``1e15``.
        """
        xp = self.xp
        m_host = to_numpy(mean)
        if not np.all(np.isfinite(m_host)) or np.any(m_host < 0) or np.any(
                m_host > _POISSON_MAX):
            raise ValueError("Poisson means must be finite, >= 0 and <= 1e15")
        shape = tuple(mean.shape[1:])
        m = math.prod(shape)
        flat = xp.reshape(mean, (-1,))
        pos = xp.arange(int(flat.shape[0]), dtype=xp.int64)
        small = flat < _KNUTH_MAX
        done = [self._rejection(m, pos[small], self._knuth_attempt,
                                {"thr": _portable.exp(-flat[small], xp),
                                 "prod": xp.ones_like(flat[small])}),
                self._rejection(m, pos[~small], self._ptrs_attempt,
                                _ptrs_constants(flat[~small], xp))]
        out = _merge(done, xp)
        return xp.reshape(out, (self.R, *shape))

    def _knuth_attempt(self, e: Any, rep: Any, t: int, carry: dict[str, Any]
                       ) -> tuple[Any, Any, dict[str, Any]]:
        w = self._words(e, t, rep)
        prod = carry["prod"] * _u_open(w[0], w[1], self.xp)
        done = prod <= carry["thr"]
        return done, self.xp.full(done.shape, float(t), dtype=self.xp.float64), {
            **carry, "prod": prod}

    def _ptrs_attempt(self, e: Any, rep: Any, t: int, c: dict[str, Any]
                      ) -> tuple[Any, Any, dict[str, Any]]:
        # NumPy's random_poisson_ptrs, with us = 0 (k = -inf there) and V = 0 (log V = -inf:
        # accept) guarded so that no division by zero or log of zero is evaluated.
        xp = self.xp
        w = self._words(e, t, rep)
        U = _u53(w[0], w[1], xp) - 0.5
        V = _u53(w[2], w[3], xp)
        us = 0.5 - xp.abs(U)
        pos = us > 0.0
        us_safe = xp.where(pos, us, 1.0)
        k = xp.where(pos, xp.floor((2.0 * c["a"] / us_safe + c["b"]) * U + c["lam"] + 0.43),
                     -1.0)
        quick = (us >= 0.07) & (V <= c["vr"])
        reject = (k < 0.0) | ((us < 0.013) & (V > us))
        ks = xp.where(k < 0.0, 0.0, k)
        V_safe = xp.where(V > 0.0, V, 1.0)
        lhs = (_portable.log(V_safe, xp) + c["log_invalpha"]
               - _portable.log(c["a"] / (us_safe * us_safe) + c["b"], xp))
        rhs = -c["lam"] + ks * c["loglam"] - _portable.loggam(ks + 1.0, xp)
        accept = quick | (~reject & ((V == 0.0) | (lhs <= rhs)))
        return accept, ks, c

    # --- rejection loop ------------------------------------------------------------------------
    def _flat_index(self, m: int) -> tuple[Any, Any]:
        xp = self.xp
        e = xp.reshape(xp.arange(m, dtype=xp.uint64), (1, m))
        rep = xp.reshape(self.reps, (self.R, 1))
        e, rep = xp.broadcast_arrays(e, rep)
        return xp.reshape(e, (-1,)), xp.reshape(rep, (-1,))

    def _rejection(self, m: int, pos: Any, attempt: Any, carry: dict[str, Any]
                   ) -> tuple[Any, Any]:
        """Run ``attempt`` on the still-active elements until every one has accepted.

        ``pos`` are flat positions ``rep_index * m + e`` into the ``(R, m)`` draw;
        ``attempt(e, rep, t, carry) -> (accept, value, carry)`` sees the element indices ``e``
        and replication numbers ``rep`` of the active elements and per-element state ``carry``
        aligned with them.  An element is active until its first accepted attempt, whose value
        it keeps.  Returns the positions and values of the accepted elements (in the order of
        acceptance; :func:`_merge` puts them in place).
        """
        xp = self.xp
        e = xp.astype(pos % m, xp.uint64)
        rep = xp.take(self.reps, pos // m)
        done_pos, done_val = [], []
        for t in range(_MAX_ATTEMPTS):
            if int(pos.shape[0]) == 0:
                break
            acc, val, carry = attempt(e, rep, t, carry)
            done_pos.append(pos[acc])
            done_val.append(val[acc])
            rest = ~acc
            pos, e, rep = pos[rest], e[rest], rep[rest]
            carry = {k: v[rest] for k, v in carry.items()}
        else:
            raise RuntimeError(f"rejection sampler: {int(pos.shape[0])} elements did not accept "
                               f"in {_MAX_ATTEMPTS} attempts")
        if not done_pos:
            return xp.zeros(0, dtype=xp.int64), xp.zeros(0, dtype=xp.float64)
        return xp.concat(done_pos), xp.concat(done_val)


def _merge(parts: list[tuple[Any, Any]], xp: Any) -> Any:
    """The values of accepted ``(positions, values)`` groups, in position order.

    The positions cover every element exactly once, so sorting them puts each value in place
    (the Array API has no scatter).
    """
    pos = xp.concat([p for p, _ in parts])
    val = xp.concat([v for _, v in parts])
    return xp.take(val, xp.argsort(pos))


def _ptrs_constants(lam: Any, xp: Any) -> dict[str, Any]:
    """PTRS's per-mean constants (Hörmann 1993; NumPy's ``random_poisson_ptrs``)."""
    b = 0.931 + 2.53 * xp.sqrt(lam)
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    return {"lam": lam, "loglam": _portable.log(lam, xp), "a": a, "b": b,
            "vr": 0.9277 - 3.6224 / (b - 2.0), "log_invalpha": _portable.log(invalpha, xp)}


def _u53(a: Any, b: Any, xp: Any) -> Any:
    k = ((a >> 5) << 26) | (b >> 6)
    return xp.astype(k, xp.float64) * _TWO_M53


def _u_open(a: Any, b: Any, xp: Any) -> Any:
    k = ((a >> 6) << 26) | (b >> 6)
    return (xp.astype(k, xp.float64) + 0.5) * _TWO_M52


def _box_muller(w: tuple[Any, Any, Any, Any], xp: Any) -> tuple[Any, Any]:
    u = _u_open(w[0], w[1], xp)
    r = xp.sqrt(-2.0 * _portable.log(u, xp))
    j = ((w[2] >> 5) << 26) | (w[3] >> 6)
    s, c = _portable.sincos_turns(j, 53, xp)
    return r * c, r * s
