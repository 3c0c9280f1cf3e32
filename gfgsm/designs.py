"""Design distributions: the law of the covariates ``x in R^p`` (docs/theory.md s.1).

A :class:`Design` knows its dimension ``p``, how to draw rows ``x_i`` iid, and, where closed forms
exist, its moments ``E[x]`` (``mean``, shape (p,)) and ``E[x x']`` (``second_moment``, shape
(p, p)), whether ``x`` and ``-x`` have the same law (``is_symmetric``) and, for laws on a small
finite set, the exact ``support()``.  :mod:`gfgsm.theory` uses these to compute the population
quantities ``I``, ``D`` and ``V`` in closed form, by exact enumeration, or by Monte Carlo.

Randomness and reproducibility
------------------------------
Simulated data are drawn by the counter-based generator of :mod:`gfgsm.rng` (Philox4x32-10 in
array operations), directly in the requested array namespace: :meth:`Design.draw_stream` draws
``(R, n, p)`` for the replications of a :class:`gfgsm.rng.Stream`, and a value depends only on
(seed, replication, variable, element), so it is the same bits on NumPy, CuPy and
``array_api_strict``, whatever ``R``, the chunking or the executor.

``seed`` may be ``None`` (fresh OS entropy), an ``int``, a ``SeedSequence`` or a ``Generator``;
its key is the first two 32-bit state words of ``SeedSequence(seed)``.  Replication ``r`` of a
batched draw (``R`` replications, shape ``(R, n, p)``) is counter ``r``, so it does not depend
on ``R``, and ``R=None`` (one ``(n, p)`` draw) is replication 0.  :meth:`gfgsm.dgp.DGP.sample`
draws ``x`` from the child variable ``"x"`` of the same stream: ``Design.sample(n, s, R)``
returns exactly the ``X`` of ``DGP.sample(n, s, R)``.

:meth:`Design.draw` (one replication from a NumPy ``Generator``, on the host) remains for the
Monte Carlo integrals of :mod:`gfgsm.theory` and for designs without array code (a
:class:`CustomDesign`, a user subclass): their ``draw_stream`` falls back on ``draw`` with
replication ``r``'s ``Generator`` seeded by 256 bits of its own counter stream, so they are
reproducible and chunking-independent too, but drawn on the host.

Extending
---------
A new design is one subclass implementing :meth:`Design.draw` (one replication, on the host, from
one ``Generator``), and optionally :meth:`Design.draw_stream` (array code on any backend); the
moments and ``is_symmetric`` are optional (``None`` / ``False`` mean "not
known" and make :mod:`gfgsm.theory` fall back on Monte Carlo).  For a one-off law,
:class:`CustomDesign` wraps any callable ``sampler(n, rng) -> (n, p)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._backend import asarray, resolve_backend
from ._validation import positive_int, real_in
from .rng._seeds import SeedLike
from .rng._seeds import root_seed as _root_seed

__all__ = [
    "BernoulliDesign",
    "CustomDesign",
    "Design",
    "GaussianDesign",
    "MixtureDesign",
    "SeedLike",
    "UniformDesign",
    "replication_seeds",
]

#: What ``seed=`` accepts everywhere in the package's samplers.

#: Largest ``p`` for which a design on ``{low, high}^p`` enumerates its support (2^16 points).
MAX_ENUMERATE_P = 16


# --------------------------------------------------------------------------------------------
# seeds and argument checks
# --------------------------------------------------------------------------------------------


def replication_seeds(seed: SeedLike, R: int) -> list[np.random.SeedSequence]:
    """The ``SeedSequence`` of each of ``R`` replications: ``SeedSequence(seed).spawn(R)``.

    Child ``r`` is ``SeedSequence(entropy, spawn_key=(*spawn_key, r))`` of the root sequence,
    built directly so that a ``SeedSequence`` passed in is not mutated (``spawn`` would advance
    its child counter and give different children on the next call).  For a fresh root this is
    exactly ``root.spawn(R)``; child ``r`` does not depend on ``R``.  A ``Generator`` is a stream:
    the root is seeded by 256 bits drawn from it.
    """
    R = positive_int("R", R)
    root = _root_seed(seed)
    return [
        np.random.SeedSequence(
            root.entropy, spawn_key=(*root.spawn_key, r), pool_size=root.pool_size
        )
        for r in range(R)
    ]


def _column_param(value: Any, p: int, name: str) -> np.ndarray:
    """A scalar or length-``p`` parameter as a finite float array of shape (p,)."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(p, float(arr))
    if arr.shape != (p,):
        raise ValueError(
            f"{name} must be a scalar or have shape ({p},) (one entry per column); "
            f"got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    arr.flags.writeable = False
    return arr


def _readonly(a: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
    a = np.array(a, dtype=float)
    a.flags.writeable = False
    return a


# --------------------------------------------------------------------------------------------
# the base class
# --------------------------------------------------------------------------------------------


class Design(ABC):
    """The law of one covariate row ``x in R^p``.

    Attributes
    ----------
    p : int
        The dimension of ``x``.
    """

    p: int

    def __init__(self, p: int) -> None:
        self.p = positive_int("p", p)

    # --- to implement ---------------------------------------------------------------------------
    @abstractmethod
    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` iid rows drawn from ``rng`` on the host: a float64 NumPy array of shape (n, p).

        The one method a new design must implement.  All randomness must come from ``rng``.
        """

    # --- optional closed forms ------------------------------------------------------------------
    @property
    def mean(self) -> np.ndarray | None:
        """``E[x]``, shape (p,); ``None`` when no closed form is known."""
        return None

    @property
    def second_moment(self) -> np.ndarray | None:
        """``E[x x']``, shape (p, p); ``None`` when no closed form is known."""
        return None

    @property
    def is_symmetric(self) -> bool:
        """``True`` when ``x`` and ``-x`` are known to have the same law.

        ``False`` means "not known to be symmetric"; it is always safe.  :mod:`gfgsm.theory`
        uses antithetic pairs ``(x, -x)`` in its Monte Carlo integrals when this is ``True``.
        """
        return False

    def support(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The exact finite support: points (K, p) and their probabilities (K,) summing to 1.

        ``None`` for continuous laws and for finite ones too large to enumerate.
        """
        return None

    # --- sampling ---------------------------------------------------------------------------------
    def draw_stream(self, n: int, stream: Any) -> Any:
        """``n`` iid rows for each replication of ``stream``: shape ``(R, n, p)``, its backend.

        This default draws on the host with :meth:`draw`, replication ``r`` from a
        ``Generator`` seeded by 256 bits of its own stream; the built-in designs override it
        with array code.
        """
        X = np.stack([self.draw_checked(n, rng) for rng in stream.host_generators()])
        return asarray(X, stream.xp)

    def draw_stream_checked(self, n: int, stream: Any) -> Any:
        """:meth:`draw_stream` with its output checked: shape (R, n, p), finite (one scalar
        crosses to the host)."""
        xp = stream.xp
        X = self.draw_stream(n, stream)
        if tuple(X.shape) != (stream.R, n, self.p):
            raise ValueError(f"{self!r} drew an array of shape {tuple(X.shape)}; expected "
                             f"(R, n, p) = ({stream.R}, {n}, {self.p})")
        if not bool(xp.all(xp.isfinite(X))):
            raise ValueError(f"{self!r} drew NaN or infinite values")
        return X

    def draw_checked(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """:meth:`draw` with its output checked: float64, shape (n, p), finite."""
        X = np.asarray(self.draw(n, rng), dtype=np.float64)
        if X.shape != (n, self.p):
            raise ValueError(
                f"{self!r} drew an array of shape {X.shape}; expected (n, p) = ({n}, {self.p})"
            )
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{self!r} drew NaN or infinite values")
        return X

    def sample(
        self, n: int, seed: SeedLike = None, R: int | None = None, backend: str | None = None
    ) -> Any:
        """Draw ``X``: shape (R, n, p) for ``R`` replications, or (n, p) when ``R`` is ``None``.

        Replication ``r`` is counter ``r`` of the stream of ``seed`` (variable ``"x"``), so it
        does not depend on ``R``, and ``R=None`` returns replication 0 (module docstring).  The
        array is drawn in ``backend``'s namespace (``None``: NumPy).
        """
        from .rng import stream_for

        n = positive_int("n", n)
        xp = resolve_backend(backend)
        reps = 1 if R is None else positive_int("R", R)
        X = self.draw_stream_checked(n, stream_for(seed, reps, xp).child("x"))
        return X[0, ...] if R is None else X


# --------------------------------------------------------------------------------------------
# concrete designs
# --------------------------------------------------------------------------------------------


class GaussianDesign(Design):
    """Centred Gaussian with AR(1) correlation: ``x ~ N(0, Sigma)``, ``Sigma_jk = rho^|j-k|``.

    Drawn by the AR(1) recursion ``x_1 = z_1``, ``x_j = rho x_{j-1} + sqrt(1 - rho^2) z_j`` with
    iid standard normal ``z``, unrolled into ``x = z A'`` with the lower-triangular
    ``A_jk = rho^(j-k) c_k`` (``c_1 = 1``, else ``sqrt(1 - rho^2)``): ``A`` is the Cholesky
    factor of ``Sigma``, and one small matrix product per draw is much cheaper than filtering
    the ``n`` short rows one by one.
    ``mean = 0``, ``second_moment = Sigma``, symmetric.

    Parameters
    ----------
    p : int
        Dimension.
    rho : float
        Correlation of neighbouring columns, ``-1 < rho < 1``.
    """

    def __init__(self, p: int, rho: float = 0.0) -> None:
        super().__init__(p)
        self.rho = real_in("rho", rho, -1.0, 1.0, lo_open=True, hi_open=True,
                           rule="a real number with -1 < rho < 1")
        j = np.arange(self.p)
        lag = j[:, None] - j[None, :]
        c = np.r_[1.0, np.full(self.p - 1, np.sqrt(1.0 - self.rho**2))]
        # rho ** lag only where lag >= 0 (0 ** 0 = 1 on the diagonal when rho = 0).
        self._A = np.where(lag >= 0, self.rho ** np.maximum(lag, 0), 0.0) * c[None, :]

    def __repr__(self) -> str:
        return f"GaussianDesign(p={self.p}, rho={self.rho})"

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((n, self.p))
        if self.rho == 0.0:
            return z
        return z @ self._A.T

    def draw_stream(self, n: int, stream: Any) -> Any:
        """The AR(1) recursion over columns on portable normals (no matrix product, whose
        summation order is the BLAS's): ``x_1 = z_1``, ``x_j = rho x_{j-1} + c z_j``."""
        xp = stream.xp
        z = stream.normal((n, self.p))
        if self.rho == 0.0:
            return z
        c = float(np.sqrt(1.0 - self.rho**2))
        cols = [z[..., 0]]
        for j in range(1, self.p):
            cols.append(self.rho * cols[-1] + c * z[..., j])
        return xp.stack(cols, axis=-1)

    @property
    def mean(self) -> np.ndarray:
        return _readonly(np.zeros(self.p))

    @property
    def second_moment(self) -> np.ndarray:
        j = np.arange(self.p)
        return _readonly(self.rho ** np.abs(j[:, None] - j[None, :]))

    @property
    def is_symmetric(self) -> bool:
        return True


class UniformDesign(Design):
    """Independent columns ``x_j ~ Uniform(low_j, high_j)``.

    ``E[x_j] = (low_j + high_j) / 2``; ``E[x x'] = m m' + diag((high - low)^2 / 12)``; symmetric
    when ``low = -high`` in every column.

    Parameters
    ----------
    p : int
        Dimension.
    low, high : float or array of shape (p,)
        Bounds with ``low < high`` (finite).
    """

    def __init__(self, p: int, low: float | Sequence[float] = -1.0,
                 high: float | Sequence[float] = 1.0) -> None:
        super().__init__(p)
        self.low = _column_param(low, self.p, "low")
        self.high = _column_param(high, self.p, "high")
        if not np.all(self.low < self.high):
            j = int(np.argmax(~(self.low < self.high)))
            raise ValueError(
                f"UniformDesign needs low < high in every column; column {j} has "
                f"low = {self.low[j]!r}, high = {self.high[j]!r}"
            )

    def __repr__(self) -> str:
        return f"UniformDesign(p={self.p}, low={_short(self.low)}, high={_short(self.high)})"

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=(n, self.p))

    def draw_stream(self, n: int, stream: Any) -> Any:
        """``low + (high - low) u`` with 53-bit uniforms ``u`` on [0, 1)."""
        xp = stream.xp
        low = asarray(self.low, xp)
        width = asarray(self.high - self.low, xp)
        return low + width * stream.uniform((n, self.p))

    @property
    def mean(self) -> np.ndarray:
        return _readonly((self.low + self.high) / 2.0)

    @property
    def second_moment(self) -> np.ndarray:
        m = (self.low + self.high) / 2.0
        return _readonly(np.outer(m, m) + np.diag((self.high - self.low) ** 2 / 12.0))

    @property
    def is_symmetric(self) -> bool:
        return bool(np.all(self.low == -self.high))


class BernoulliDesign(Design):
    """Independent two-point columns: ``x_j = high`` with probability ``prob_j``, else ``low``.

    The default ``values=(0, 1)`` gives Bernoulli(``prob``) columns; ``values=(-1, 1)`` with
    ``prob=0.5`` gives Rademacher columns (a symmetric design).  With ``q_j = prob_j`` and
    ``d = high - low``: ``E[x_j] = low + d q_j``, ``E[x_j^2] = low^2 + (high^2 - low^2) q_j``,
    ``E[x_j x_k] = E[x_j] E[x_k]`` for ``j != k``.  The support ``{low, high}^p`` is enumerated
    exactly for ``p <= 16``.

    Parameters
    ----------
    p : int
        Dimension.
    prob : float or array of shape (p,)
        ``P(x_j = high)``, strictly between 0 and 1 (a constant column would be collinear with the
        intercept).
    values : (float, float)
        ``(low, high)``, finite and distinct.
    """

    def __init__(self, p: int, prob: float | Sequence[float] = 0.5,
                 values: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__(p)
        self.prob = _column_param(prob, self.p, "prob")
        if not np.all((self.prob > 0.0) & (self.prob < 1.0)):
            raise ValueError(f"prob must lie strictly between 0 and 1, got {prob!r}")
        try:
            low, high = (float(v) for v in values)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"values must be a pair (low, high) of numbers, got {values!r}"
            ) from exc
        if not (np.isfinite(low) and np.isfinite(high)) or low == high:
            raise ValueError(f"values must be two distinct finite numbers, got {values!r}")
        self.values = (low, high)

    def __repr__(self) -> str:
        return f"BernoulliDesign(p={self.p}, prob={_short(self.prob)}, values={self.values})"

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        low, high = self.values
        return np.where(rng.random((n, self.p)) < self.prob, high, low)

    def draw_stream(self, n: int, stream: Any) -> Any:
        """``high`` where a 53-bit uniform is below ``prob`` (an exact comparison), else
        ``low``."""
        xp = stream.xp
        low, high = self.values
        hit = stream.uniform((n, self.p)) < asarray(self.prob, xp)
        return xp.where(hit, xp.full(hit.shape, high, dtype=xp.float64), low)

    @property
    def mean(self) -> np.ndarray:
        low, high = self.values
        return _readonly(low + (high - low) * self.prob)

    @property
    def second_moment(self) -> np.ndarray:
        low, high = self.values
        m = low + (high - low) * self.prob
        S = np.outer(m, m)
        S[np.diag_indices(self.p)] = low**2 + (high**2 - low**2) * self.prob
        return _readonly(S)

    @property
    def is_symmetric(self) -> bool:
        low, high = self.values
        return bool(low == -high and np.all(self.prob == 0.5))

    def support(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.p > MAX_ENUMERATE_P:
            return None
        low, high = self.values
        bits = (np.arange(2**self.p)[:, None] >> np.arange(self.p)[None, :]) & 1
        probs = np.prod(np.where(bits == 1, self.prob, 1.0 - self.prob), axis=1)
        return np.where(bits == 1, high, low).astype(float), probs


class MixtureDesign(Design):
    """A finite mixture: ``x`` is drawn from component ``k`` with probability ``weights[k]``.

    ``E[x] = sum_k w_k E_k[x]`` and ``E[x x'] = sum_k w_k E_k[x x']`` when every component has
    them; symmetric when every component is (a sufficient condition: a mixture of a law and its
    mirror image is symmetric too, but is not recognised); the support is the union of the
    components' supports when each has one.

    Parameters
    ----------
    components : sequence of Design
        At least one, all of the same dimension ``p``.
    weights : sequence of float, optional
        Non-negative, summing to 1 (to 1e-12 relative); default equal weights.
    """

    def __init__(self, components: Sequence[Design], weights: Sequence[float] | None = None
                 ) -> None:
        comps = tuple(components)
        if not comps:
            raise ValueError("MixtureDesign needs at least one component")
        for k, c in enumerate(comps):
            if not isinstance(c, Design):
                raise TypeError(f"components[{k}] must be a Design, got {c!r}")
        ps = [c.p for c in comps]
        if len(set(ps)) != 1:
            raise ValueError(f"all mixture components must have the same p; got p = {ps}")
        super().__init__(ps[0])
        K = len(comps)
        w = np.full(K, 1.0 / K) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (K,):
            raise ValueError(f"weights must have shape ({K},) (one per component); got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1.0) > 1e-12 * K:
            raise ValueError(f"weights must be non-negative and sum to 1, got {weights!r}")
        self.components = comps
        self.weights = _readonly(w / w.sum())

    def __repr__(self) -> str:
        return f"MixtureDesign({list(self.components)!r}, weights={_short(self.weights)})"

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        labels = rng.choice(len(self.components), size=n, p=self.weights)
        X = np.empty((n, self.p))
        # Components are drawn in order from the same generator; rows keep their labels' order.
        for k, comp in enumerate(self.components):
            rows = labels == k
            count = int(rows.sum())
            if count:
                X[rows] = comp.draw_checked(count, rng)
        return X

    def draw_stream(self, n: int, stream: Any) -> Any:
        """Labels from uniforms against the cumulative weights (variable ``"labels"``); each
        component draws all ``n`` rows from its own variable ``k`` and row ``i`` keeps its
        label's, so no draw depends on another's count."""
        xp = stream.xp
        u = stream.child("labels").uniform((n,))
        cum = np.cumsum(self.weights)
        label = xp.zeros(u.shape, dtype=xp.int64)
        for k in range(len(self.components) - 1):
            label = label + xp.astype(u >= float(cum[k]), xp.int64)
        X = None
        for k, comp in enumerate(self.components):
            Xk = comp.draw_stream(n, stream.child(k))
            X = Xk if X is None else xp.where(xp.reshape(label == k, (*u.shape, 1)), Xk, X)
        return X

    @property
    def mean(self) -> np.ndarray | None:
        ms = [c.mean for c in self.components]
        if any(m is None for m in ms):
            return None
        return _readonly(sum(w * m for w, m in zip(self.weights, ms, strict=True)))

    @property
    def second_moment(self) -> np.ndarray | None:
        Ss = [c.second_moment for c in self.components]
        if any(S is None for S in Ss):
            return None
        return _readonly(sum(w * S for w, S in zip(self.weights, Ss, strict=True)))

    @property
    def is_symmetric(self) -> bool:
        return all(c.is_symmetric for c in self.components)

    def support(self) -> tuple[np.ndarray, np.ndarray] | None:
        sups = [c.support() for c in self.components]
        if any(s is None for s in sups):
            return None
        points = np.concatenate([s[0] for s in sups])
        probs = np.concatenate([w * s[1] for w, s in zip(self.weights, sups, strict=True)])
        return points, probs


class CustomDesign(Design):
    """Any user-supplied law: ``sampler(n, rng)`` returns ``n`` iid rows, shape (n, p).

    ``rng`` is a NumPy ``Generator`` and must be the sampler's only source of randomness (that is
    what makes the draws reproducible).  Every draw is checked for shape (n, p) and finiteness.
    Moments, symmetry and a finite support may be supplied when the user knows them; otherwise
    :mod:`gfgsm.theory` integrates over ``x`` by Monte Carlo.

    Parameters
    ----------
    p : int
        Dimension.
    sampler : callable ``(n, rng) -> array (n, p)``
    mean : array (p,), optional
        ``E[x]``.
    second_moment : array (p, p), optional
        ``E[x x']`` (symmetric).
    is_symmetric : bool
        Whether ``x`` and ``-x`` have the same law (only say ``True`` if it is so).
    """

    def __init__(self, p: int, sampler: Callable[[int, np.random.Generator], Any], *,
                 mean: Any = None, second_moment: Any = None, is_symmetric: bool = False) -> None:
        super().__init__(p)
        if not callable(sampler):
            raise TypeError(f"sampler must be a callable (n, rng) -> (n, p) array, got {sampler!r}")
        self.sampler = sampler
        self._mean = None if mean is None else _column_param(mean, self.p, "mean")
        self._second = None
        if second_moment is not None:
            S = np.asarray(second_moment, dtype=float)
            if S.shape != (self.p, self.p) or not np.all(np.isfinite(S)):
                raise ValueError(
                    f"second_moment must be a finite ({self.p}, {self.p}) array; got shape "
                    f"{S.shape}"
                )
            if not np.allclose(S, S.T, rtol=1e-12, atol=0.0):
                raise ValueError("second_moment must be symmetric")
            self._second = _readonly(S)
        self._symmetric = bool(is_symmetric)

    def __repr__(self) -> str:
        name = getattr(self.sampler, "__name__", type(self.sampler).__name__)
        return f"CustomDesign(p={self.p}, sampler={name})"

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        X = np.asarray(self.sampler(n, rng), dtype=np.float64)
        if X.shape != (n, self.p):
            raise ValueError(
                f"CustomDesign sampler {self.sampler!r} returned shape {X.shape} for n = {n}; "
                f"expected (n, p) = ({n}, {self.p})"
            )
        return X

    @property
    def mean(self) -> np.ndarray | None:
        return self._mean

    @property
    def second_moment(self) -> np.ndarray | None:
        return self._second

    @property
    def is_symmetric(self) -> bool:
        return self._symmetric


def _short(a: np.ndarray) -> Any:
    """A scalar when all entries agree (for reprs), else the list."""
    return float(a[0]) if np.all(a == a[0]) else a.tolist()
