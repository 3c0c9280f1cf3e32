"""Data-generating processes: a design, a family and the true parameters (docs/theory.md s.1).

``DGP(family, design, coef, intercept)`` draws ``x ~ design``, sets ``eta = a + x' beta`` and
draws ``y | x`` from the family:

* gaussian: ``y = eta + sigma * e`` with ``e`` independent of ``x`` and *standardized*
  (``E e = 0``, ``Var e = 1``), so ``phi = sigma^2`` whatever the error law (docs/theory.md s.1).
  The error laws (:class:`NoiseLaw`):

  - ``"normal"``: ``e ~ N(0, 1)``;
  - ``"t"``: Student t with ``df`` degrees of freedom (3 unless given), scaled by
    ``sqrt((df - 2) / df)`` to unit variance (so ``df > 2`` is required);
  - ``"skewed"``: ``e = Exp(1) - 1`` (already mean 0, variance 1; median ``log 2 - 1 < 0``,
    the skewed case of docs/theory.md s.5);
  - a callable ``noise(shape, rng) -> array`` that draws standardized errors from the NumPy
    ``Generator`` ``rng`` (trusted to be standardized; checked for shape and finiteness).

* binomial, poisson: ``y | x`` from the family's own law (``phi = 1``); ``noise`` and ``sigma``
  do not apply and must be left at their defaults.

Sampling (:meth:`DGP.sample`, :meth:`DGP.draw_stream`) uses the counter-based generator of
:mod:`gfgsm.rng` in the array namespace itself: replication ``r`` is counter ``r``, ``X`` comes
from the variable ``"x"`` and the randomness of ``y`` from ``"y"`` (see :mod:`gfgsm.designs`), so
a seed gives the same bits on every backend.  A callable error law draws on the host from a
per-replication ``Generator`` seeded by its own stream.  Poisson: a mean ``exp(eta)`` above
1e15 raises ``FloatingPointError`` (from the family) when it is drawn.  :meth:`DGP.draw` (one
replication from a NumPy ``Generator``) serves the Monte Carlo integrals of
:mod:`gfgsm.theory`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import gammaln

from ._backend import asarray, resolve_backend
from ._validation import positive_int, real_in
from .designs import Design, SeedLike
from .families import Family, get_family

__all__ = ["DGP", "NoiseLaw", "get_noise"]


# --------------------------------------------------------------------------------------------
# error laws (gaussian family)
# --------------------------------------------------------------------------------------------


class NoiseLaw:
    """A standardized error law ``e`` (mean 0, variance 1) for the gaussian family.

    Attributes
    ----------
    name : str
    abs_mean : float or None
        ``E|e|`` in closed form (``None``: unknown, :mod:`gfgsm.theory` uses Monte Carlo).
    sign_mean : float or None
        ``E[sign(e)] = P(e > 0) - P(e < 0)`` in closed form (``None``: unknown).  Zero iff the
        median of ``e`` is 0 (for a continuous law): the sign-neutral case of docs/theory.md s.5.
    """

    name: str = ""
    abs_mean: float | None = None
    sign_mean: float | None = None

    def draw(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Standardized errors of the given shape from ``rng`` (host float64 array)."""
        raise NotImplementedError

    def draw_stream(self, shape: tuple[int, ...], stream: Any) -> Any:
        """Standardized errors, shape ``(R, *shape)``, from a :class:`gfgsm.rng.Stream`.

        This default calls :meth:`draw` on the host with replication ``r``'s ``Generator``
        (seeded by 256 bits of its own stream); the built-in laws use array code.
        """
        e = np.stack([self.draw(tuple(shape), rng) for rng in stream.host_generators()])
        return asarray(e, stream.xp)

    def __repr__(self) -> str:
        return repr(self.name)


class _Normal(NoiseLaw):
    name = "normal"
    abs_mean = math.sqrt(2.0 / math.pi)
    sign_mean = 0.0

    def draw(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(shape)

    def draw_stream(self, shape: tuple[int, ...], stream: Any) -> Any:
        return stream.normal(tuple(shape))


class _StudentT(NoiseLaw):
    """``e = T sqrt((df - 2) / df)``, ``T ~ t_df``; ``df > 2`` for a finite variance.

    ``E|T| = 2 sqrt(df) Gamma((df + 1)/2) / (sqrt(pi) (df - 1) Gamma(df/2))``, so
    ``E|e| = 2 sqrt(df - 2) Gamma((df + 1)/2) / (sqrt(pi) (df - 1) Gamma(df/2))``
    (``2 / pi`` at ``df = 3``).  Symmetric, so ``E sign(e) = 0``.
    """

    sign_mean = 0.0

    def __init__(self, df: float) -> None:
        self.df = float(df)
        self.name = f"t(df={self.df:g})"
        self.abs_mean = float(
            2.0 * math.sqrt(self.df - 2.0) / (math.sqrt(math.pi) * (self.df - 1.0))
            * math.exp(gammaln((self.df + 1.0) / 2.0) - gammaln(self.df / 2.0))
        )

    def draw(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.standard_t(self.df, shape) * math.sqrt((self.df - 2.0) / self.df)

    def draw_stream(self, shape: tuple[int, ...], stream: Any) -> Any:
        return stream.standard_t(tuple(shape), self.df) * math.sqrt((self.df - 2.0) / self.df)


class _Skewed(NoiseLaw):
    """``e = Exp(1) - 1``: ``E|e| = 2/e``, ``E sign(e) = P(Exp > 1) - P(Exp < 1) = 2/e - 1``."""

    name = "skewed"
    abs_mean = 2.0 / math.e
    sign_mean = 2.0 / math.e - 1.0

    def draw(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.standard_exponential(shape) - 1.0

    def draw_stream(self, shape: tuple[int, ...], stream: Any) -> Any:
        return stream.exponential(tuple(shape)) - 1.0


class _CallableNoise(NoiseLaw):
    """A user callable ``noise(shape, rng)``; its ``E|e|`` and ``E sign(e)`` are unknown."""

    def __init__(self, func: Callable[[tuple[int, ...], np.random.Generator], Any]) -> None:
        self.func = func
        # A callable object with its own __repr__ (parameters included) is named by it, so two
        # error laws of one class with different parameters never share a DGP repr (the repr
        # enters study hashes and caches); a plain function is named by its qualified name.
        if type(func).__repr__ is not object.__repr__ and not hasattr(func, "__code__"):
            self.name = repr(func)
        else:
            self.name = getattr(func, "__qualname__", getattr(func, "__name__",
                                                              type(func).__name__))
        # Probe once so a wrong signature or shape fails here, at construction.
        self.draw((3, 2), np.random.default_rng(0))

    def draw(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        e = np.asarray(self.func(shape, rng), dtype=np.float64)
        if e.shape != tuple(shape):
            raise ValueError(
                f"noise callable {self.func!r} returned shape {e.shape} for shape={tuple(shape)}"
            )
        if not np.all(np.isfinite(e)):
            raise ValueError(f"noise callable {self.func!r} returned NaN or infinite values")
        return e


def get_noise(noise: str | NoiseLaw | Callable, df: float | None = None) -> NoiseLaw:
    """The :class:`NoiseLaw` for ``"normal"``, ``"t"`` (with ``df``, default 3), ``"skewed"``,
    a :class:`NoiseLaw` instance or a callable ``(shape, rng) -> standardized errors``."""
    if df is not None and noise != "t":
        raise ValueError(f"df applies only to noise='t', got noise={noise!r} with df={df!r}")
    if isinstance(noise, NoiseLaw):
        return noise
    if isinstance(noise, str):
        if noise == "normal":
            return _Normal()
        if noise == "skewed":
            return _Skewed()
        if noise == "t":
            df = 3.0 if df is None else df
            real_in("df", df, 2, lo_open=True,
                    rule="a finite number > 2 (standardized t needs a finite variance)")
            return _StudentT(df)
        raise ValueError(
            f"unknown noise {noise!r}; expected 'normal', 't', 'skewed' or a callable "
            "(shape, rng) -> standardized errors"
        )
    if callable(noise):
        return _CallableNoise(noise)
    raise ValueError(f"noise must be a name or a callable, got {noise!r}")


# --------------------------------------------------------------------------------------------
# the DGP
# --------------------------------------------------------------------------------------------


class DGP:
    """A data-generating process: ``x ~ design``, ``eta = a + x' beta``, ``y | x ~ family``.

    Parameters
    ----------
    family : str or Family
        ``"gaussian"``, ``"binomial"``, ``"poisson"`` or a :class:`~gfgsm.families.Family`.
        A gaussian family is stored as ``Gaussian(phi=sigma^2)``; a ``Gaussian`` instance with
        ``phi != 1`` must agree with ``sigma^2``.  Binomial and poisson have ``phi = 1``.
    design : Design
        The law of ``x`` (:mod:`gfgsm.designs`); its ``p`` fixes the length of ``coef``.
    coef : array of shape (p,)
        True slopes ``beta0``, finite.
    intercept : float
        True intercept ``a0``, finite.
    noise : "normal", "t", "skewed" or callable
        Gaussian error law (module docstring); standardized to mean 0, variance 1.
    sigma : float
        Gaussian noise scale, ``> 0``: ``y = eta + sigma e`` and ``phi = sigma^2``.
    df : float, optional
        Degrees of freedom of ``noise="t"`` (default 3; must be ``> 2``).

    Attributes
    ----------
    family, design, coef (p,), intercept, sigma, phi, p, noise (a NoiseLaw, or None for
    binomial/poisson), theta0 (p + 1,) = (intercept, coef).
    """

    def __init__(
        self,
        family: str | Family,
        design: Design,
        coef: Any,
        intercept: float = 0.0,
        noise: str | NoiseLaw | Callable = "normal",
        sigma: float = 1.0,
        *,
        df: float | None = None,
    ) -> None:
        fam = get_family(family)
        if not isinstance(design, Design):
            raise TypeError(f"design must be a gfgsm.designs.Design, got {design!r}")
        try:
            beta = np.array(coef, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"coef must be an array of {design.p} numbers, got {coef!r}") from exc
        if beta.ndim == 0:
            beta = beta.reshape(1)
        if beta.shape != (design.p,):
            raise ValueError(
                f"coef has shape {beta.shape} but the design {design!r} has p = {design.p}; "
                f"coef must have shape ({design.p},)"
            )
        if not np.all(np.isfinite(beta)):
            raise ValueError(f"coef must be finite, got {beta.tolist()}")
        real_in("intercept", intercept, rule="a finite real number")
        sigma = real_in("sigma", sigma, 0, lo_open=True, rule="a positive finite number")

        if fam.has_dispersion:
            if fam.phi != 1.0 and not math.isclose(fam.phi, sigma**2, rel_tol=1e-12):
                raise ValueError(
                    f"family {fam!r} has phi = {fam.phi!r} but sigma = {sigma!r} gives "
                    f"phi = sigma^2 = {sigma**2!r}; give sigma only"
                )
            fam = type(fam)(phi=sigma**2)
            self.noise: NoiseLaw | None = get_noise(noise, df)
        else:
            # y | x is the family's own law: an error law or a scale would leave its support
            # ({0, 1} or the counts) or change its fixed dispersion phi = 1.
            if not (isinstance(noise, str) and noise == "normal") or df is not None:
                raise ValueError(
                    f"noise applies only to the gaussian family; the {fam.name} family draws "
                    f"y | x from its own law (got noise={noise!r}, df={df!r})"
                )
            if sigma != 1.0:
                raise ValueError(
                    f"sigma applies only to the gaussian family; the {fam.name} family has "
                    f"phi = 1 (got sigma={sigma!r})"
                )
            if fam.phi != 1.0:
                raise ValueError(
                    f"the {fam.name} family has phi = 1 in docs/theory.md; got {fam!r}"
                )
            self.noise = None

        beta.flags.writeable = False
        self.family: Family = fam
        self.design = design
        self.coef = beta
        self.intercept = float(intercept)
        self.sigma = sigma
        self.phi = fam.phi

    # --- descriptors -------------------------------------------------------------------------
    @property
    def p(self) -> int:
        return self.design.p

    @property
    def theta0(self) -> np.ndarray:
        """``(a0, beta0)``, shape (p + 1,): intercept first, as in ``xt = (1, x)``."""
        t = np.concatenate([[self.intercept], self.coef])
        t.flags.writeable = False
        return t

    def __repr__(self) -> str:
        extra = ""
        if self.noise is not None:
            extra = f", noise={self.noise!r}, sigma={self.sigma:g}"
        return (
            f"DGP({self.family.name!r}, {self.design!r}, coef={self.coef.tolist()}, "
            f"intercept={self.intercept:g}{extra})"
        )

    # --- sampling ----------------------------------------------------------------------------
    def eta_host(self, X: np.ndarray) -> np.ndarray:
        """``eta = a + X beta`` on the host: (n, p) -> (n,) or (R, n, p) -> (R, n)."""
        return self.intercept + X @ self.coef

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One replication on the host from one ``Generator``: ``X`` (n, p), ``y`` (n,).

        ``X`` is drawn first (``design.draw``), then the randomness of ``y`` from the same
        generator.
        """
        X = self.design.draw_checked(n, rng)
        eta = self.eta_host(X)
        if self.noise is not None:
            y = eta + self.sigma * self.noise.draw((n,), rng)
        else:
            y = np.asarray(self.family.sample(eta, rng=rng), dtype=np.float64)
        return X, y

    def eta_stream(self, X: Any) -> Any:
        """``eta = a + sum_j beta_j X[..., j]`` in ``X``'s namespace, summed column by column in
        a fixed order (a matrix product's summation order is the BLAS's, which differs between
        backends in the last bit)."""
        eta = None
        for j, b in enumerate(self.coef.tolist()):
            term = X[..., j] * b
            eta = term if eta is None else eta + term
        return self.intercept + eta

    def draw_stream(self, n: int, stream: Any) -> tuple[Any, Any]:
        """``X`` (R, n, p) and ``y`` (R, n) for the replications of a :class:`gfgsm.rng.Stream`.

        ``X`` from its child variable ``"x"`` (:meth:`Design.draw_stream`), the randomness of
        ``y`` from ``"y"``: gaussian ``y = eta + sigma e`` with the error law's counter-based
        draw, binomial and poisson from :meth:`Family.draw_stream`.  Everything stays in the
        stream's namespace; given the seed, the values are the same bits on every backend.
        """
        X = self.design.draw_stream_checked(n, stream.child("x"))
        eta = self.eta_stream(X)
        ys = stream.child("y")
        if self.noise is not None:
            y = eta + self.sigma * self.noise.draw_stream((n,), ys)
        else:
            y = self.family.draw_stream(eta, ys)
        return X, y

    def sample(
        self, n: int, seed: SeedLike = None, R: int | None = None, backend: str | None = None
    ) -> tuple[Any, Any]:
        """Draw ``(X, y)``: shapes (R, n, p), (R, n); or (n, p), (n,) when ``R`` is ``None``.

        Replication ``r`` is counter ``r`` of the counter-based stream of ``seed``
        (:mod:`gfgsm.rng`; :meth:`draw_stream`), so it is the same for every ``R`` and
        ``R=None`` is replication 0.  ``seed``: ``None``, int, ``SeedSequence`` or
        ``Generator`` (a Generator seeds the key from 256 bits of its stream).  The arrays are
        drawn in ``backend``'s namespace (``None``: NumPy) and are the same bits on every
        backend.

        Raises
        ------
        FloatingPointError
            poisson, when ``exp(eta)`` is too large to draw counts exactly (above 1e15).
        """
        from .rng import stream_for

        n = positive_int("n", n)
        reps = 1 if R is None else positive_int("R", R)
        xp = resolve_backend(backend)
        X, y = self.draw_stream(n, stream_for(seed, reps, xp))
        if R is None:
            X, y = X[0, ...], y[0, ...]
        return X, y
