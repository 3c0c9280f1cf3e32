"""A known "teacher" network that generates data for the network studies (docs/theory.md s.6, s.8).

:class:`TeacherNetwork` is a fixed multilayer perceptron ``x -> eta(x)`` (no hidden layer: the
GLM ``eta = a + x' beta`` of docs/theory.md s.1) with a GLM family on its output:

    x ~ N(0, I_d),   A_0 = x,   A_l = f(A_{l-1} W_l + b_l) (l < L),   eta = A_{L-1} w_L + a,
    y | x ~ family with mean mu = b'(eta):  gaussian  y = eta + sigma e,  e ~ N(0, 1);
                                            binomial  y ~ Bernoulli(sigmoid(eta));
                                            poisson   y ~ Poisson(exp(eta)).

The weights are fixed once: given explicitly, or drawn from the teacher's own ``seed``
(``W_l`` entries ``N(0, scale^2 / d_{l-1})``, hidden biases ``N(0, hidden_bias^2)``; with
``hidden_bias = 0`` and ``intercept = 0`` the network is odd, ``eta(-x) = -eta(x)``, for an odd
activation such as tanh).  The output bias is ``intercept``.

**Excess risk.**  For a prediction ``eta_hat(x)`` the conditional expected excess loss, with
``y`` integrated out analytically, is the Bregman divergence of the cumulant ``b`` (the loss
``l(y, eta) = b(eta) - y eta`` on the ``phi = 1`` scale, as the network trainer uses):

    E[l(y, eta_hat) - l(y, eta) | x] = b(eta_hat) - b(eta) - mu (eta_hat - eta)  >= 0,

i.e. gaussian ``(eta_hat - eta)^2 / 2``; binomial ``KL(Bernoulli(p) || Bernoulli(p_hat))``;
poisson ``mu_hat - mu - mu (eta_hat - eta)``.  :meth:`TeacherNetwork.excess_risk` averages it
over the rows of a test sample of ``x``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gfgsm.families import get_family, softplus
from gfgsm.nn.networks import get_activation

__all__ = ["TeacherNetwork"]

FAMILIES = ("gaussian", "binomial", "poisson")


class TeacherNetwork:
    """A fixed network generating ``(x, y)`` (module docstring).

    Parameters
    ----------
    family : ``"gaussian"``, ``"binomial"`` or ``"poisson"``.
    d : input dimension (``x ~ N(0, I_d)``).
    hidden : hidden layer widths; ``()`` makes the teacher a GLM with ``theta0 = (intercept,
        coef)``.
    activation : hidden activation (as :func:`gfgsm.nn.networks.get_activation`).
    seed : seed of the weights when ``weights`` is not given.
    intercept : the output bias ``a``.
    sigma : gaussian noise SD (ignored by the other families).
    weights : optional ``[W_1, b_1, ..., W_{L-1}, b_{L-1}, w_L]`` (``2L - 1`` arrays; shapes
        ``(d_{l-1}, d_l)``, ``(d_l,)`` and ``(d_{L-1},)``); for ``hidden = ()`` just ``[coef]``.
    scale, hidden_bias : scale of the drawn weights and SD of the drawn hidden biases.
    """

    def __init__(
        self,
        family: str,
        d: int = 5,
        hidden: Sequence[int] = (),
        activation: str = "tanh",
        seed: int = 0,
        intercept: float = 0.0,
        sigma: float = 1.0,
        weights: Sequence[Any] | None = None,
        *,
        scale: float = 1.0,
        hidden_bias: float = 0.5,
    ) -> None:
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
            raise ValueError(f"d must be an integer >= 1, got {d!r}")
        hidden = tuple(hidden)
        if any(isinstance(h, bool) or not isinstance(h, int | np.integer) or h < 1
               for h in hidden):
            raise ValueError(f"hidden must be positive integer widths, got {hidden!r}")
        if not (isinstance(sigma, int | float) and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
        if not math.isfinite(float(intercept)):
            raise ValueError(f"intercept must be finite, got {intercept!r}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        if not (math.isfinite(hidden_bias) and hidden_bias >= 0):
            raise ValueError(f"hidden_bias must be a finite number >= 0, got {hidden_bias!r}")
        self.family = family
        self.d = int(d)
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = get_activation(activation)
        self.seed = seed
        self.intercept = float(intercept)
        self.sigma = float(sigma)
        self.scale = float(scale)
        self.hidden_bias = float(hidden_bias)
        self._fam = get_family(family)
        # The sampling family carries the noise variance of a family with a free dispersion
        # (gaussian: phi = sigma^2); the others have phi = 1.
        self._noise_family = (type(self._fam)(phi=self.sigma ** 2) if self._fam.has_dispersion
                              else self._fam)
        sizes = (self.d, *self.hidden, 1)
        L = len(sizes) - 1
        if weights is None:
            rng = np.random.default_rng(seed)
            arrays: list[np.ndarray] = []
            for layer, (a, b) in enumerate(itertools.pairwise(sizes)):
                W = rng.standard_normal((a, b)) * (self.scale / math.sqrt(a))
                if layer < L - 1:
                    arrays += [W, self.hidden_bias * rng.standard_normal(b)]
                else:
                    arrays.append(W[:, 0])
            self.weights_given = False
        else:
            arrays = [np.array(w, dtype=np.float64) for w in weights]
            if len(arrays) != 2 * L - 1:
                raise ValueError(f"weights must hold {2 * L - 1} arrays (W_1, b_1, ..., w_L) for "
                                 f"hidden={self.hidden}, got {len(arrays)}")
            for layer, (a, b) in enumerate(itertools.pairwise(sizes)):
                want = [(a, b), (b,)] if layer < L - 1 else [(a,)]
                for k, shape in enumerate(want):
                    got = arrays[2 * layer + k].shape
                    if got != shape:
                        raise ValueError(f"weights[{2 * layer + k}] must have shape {shape}, "
                                         f"got {got}")
            if not all(np.all(np.isfinite(w)) for w in arrays):
                raise ValueError("weights must be finite")
            self.weights_given = True
        for w in arrays:
            w.setflags(write=False)
        self.weights: tuple[np.ndarray, ...] = tuple(arrays)

    # --- identity ------------------------------------------------------------------------
    def weights_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the exact float64 bytes of all weights."""
        h = hashlib.sha256()
        for w in self.weights:
            h.update(str(w.shape).encode())
            h.update(np.ascontiguousarray(w, dtype="<f8").tobytes())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return (f"TeacherNetwork(family={self.family!r}, d={self.d}, hidden={self.hidden}, "
                f"activation={self.activation.name!r}, seed={self.seed!r}, "
                f"intercept={self.intercept!r}, sigma={self.sigma!r}, scale={self.scale!r}, "
                f"hidden_bias={self.hidden_bias!r}, weights_given={self.weights_given}, "
                f"weights_sha256={self.weights_hash()!r})")

    @property
    def theta0(self) -> np.ndarray:
        """``(intercept, coef)`` of a GLM teacher (``hidden = ()``)."""
        if self.hidden:
            raise AttributeError("theta0 is defined for a GLM teacher (hidden=()) only")
        return np.r_[self.intercept, self.weights[0]]

    # --- the map -------------------------------------------------------------------------
    def eta(self, X: Any) -> np.ndarray:
        """``eta(x)`` for ``X`` of shape ``(..., m, d)``: shape ``(..., m)``."""
        A = np.asarray(X, dtype=np.float64)
        if A.ndim < 1 or A.shape[-1] != self.d:
            raise ValueError(f"X must have last axis of length d = {self.d}, got {A.shape}")
        w = self.weights
        for layer in range(len(self.hidden)):
            A = self.activation.forward(A @ w[2 * layer] + w[2 * layer + 1], np)
        return A @ w[-1] + self.intercept

    def mean(self, X: Any) -> np.ndarray:
        """``mu(x) = b'(eta(x))``."""
        return np.asarray(self._fam.mean(self.eta(X)))

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` iid pairs: ``X`` ``(n, d)`` standard normal, then ``y`` ``(n,)`` from ``rng``."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        X = rng.standard_normal((int(n), self.d))
        return X, self.draw_y(X, rng)

    def draw_y(self, X: Any, rng: np.random.Generator) -> np.ndarray:
        """Responses ``y | x`` for the rows of ``X`` ``(..., m, d)`` from ``rng``
        (:meth:`gfgsm.families.Family.sample`, gaussian with ``phi = sigma^2``)."""
        return np.asarray(self._noise_family.sample(self.eta(X), rng))

    # --- risk ----------------------------------------------------------------------------
    def excess_risk(self, eta_hat: Any, X: Any) -> np.ndarray:
        """Mean over the ``m`` rows of ``X`` of ``E[l(y, eta_hat) - l(y, eta) | x]`` (module
        docstring): ``eta_hat`` ``(..., m)`` gives shape ``(...)``."""
        e = np.asarray(eta_hat, dtype=np.float64)
        eta = self.eta(X)
        if e.shape[-1:] != eta.shape[-1:]:
            raise ValueError(f"eta_hat must end with the m = {eta.shape[-1]} rows of X, "
                             f"got {e.shape}")
        diff = e - eta
        fam = self._fam
        if fam.tweedie_power == 0:  # b(eta) = eta^2 / 2
            div = 0.5 * diff * diff
        elif fam.is_binary:  # b(eta) = softplus(eta)
            p = fam.mean(eta)
            div = softplus(e) - softplus(eta) - p * diff
        elif fam.tweedie_power == 1:  # b(eta) = exp(eta)
            mu = np.exp(eta)
            # mu (exp(diff) - 1 - diff), written with expm1 to keep digits for small diff.
            div = mu * (np.expm1(diff) - diff)
        else:  # the Bregman divergence of b itself
            div = fam.cumulant(e) - fam.cumulant(eta) - fam.mean(eta) * diff
        return np.mean(np.maximum(div, 0.0), axis=-1)
