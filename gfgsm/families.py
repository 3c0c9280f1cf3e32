"""Canonical exponential families (docs/theory.md s.1).

A family knows the per-observation loss ``l(y, eta) = b(eta) - y eta`` (the negative
log-likelihood up to terms free of ``eta``, on the ``phi = 1`` scale used for estimation), its
derivatives in ``eta``, the mean and variance functions, the unit deviance, how to check that
``y`` lies in its support, and how to draw ``y | eta`` for simulations.

All methods are elementwise on arrays of any shape (``(R, n)`` in the solvers) and use only the
Array-API namespace of their inputs.  They are written to be finite wherever the mathematics is:

* binomial: ``softplus`` and ``sigmoid`` are evaluated through ``exp(-|eta|)``, so
  ``|eta|`` up to 700 (and far beyond) gives no overflow and no NaN;
* poisson: ``exp(eta)`` overflows for ``eta > ETA_MAX_POISSON`` (about 709.78).  The elementwise
  numerics return ``+inf`` there *without* a floating-point warning (a solver's line search then
  rejects the step); the public boundaries call :meth:`Family.check_eta`, which raises
  ``FloatingPointError`` naming the offending value, so an overflow is never a silent ``inf``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ._backend import get_namespace, to_numpy

__all__ = ["Binomial", "Family", "Gaussian", "Poisson", "get_family", "sigmoid", "softplus"]

#: Largest ``eta`` with a finite ``exp(eta)`` in float64.
ETA_MAX_POISSON = math.log(np.finfo(np.float64).max)
#: Largest poisson mean whose counts are drawn (beyond it they are not exact in float64 draws).
POISSON_MEAN_MAX = 1e15


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))`` without overflow: ``max(x, 0) + log1p(exp(-|x|))``."""
    xp = get_namespace(x)
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` without overflow, through ``e = exp(-|x|)``."""
    xp = get_namespace(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class Family(ABC):
    """A canonical GLM family with ``b(eta)``; ``phi`` is its dispersion (docs/theory.md s.1)."""

    name: str = ""
    #: The FGSM sign perturbation is the exact worst case over the l_inf ball (docs/theory.md
    #: s.2): gaussian and binomial; not poisson.
    fgsm_is_exact: bool = True
    #: ``s = sign(y - mu(eta))`` does not depend on ``eta`` (binomial: ``s = 2y - 1``), so the
    #: FGSM objective is smooth and a positive margin ``s eta - P`` for every observation means
    #: no minimiser (the separation certificate of fit_batch).
    sign_is_constant: bool = False
    #: ``y`` takes two values, 0 and 1: the estimators are classifiers.
    is_binary: bool = False
    #: ``phi`` is a free parameter, estimated from the residuals (gaussian ``sigma^2``).
    has_dispersion: bool = False
    #: The Tweedie power of the unit deviance (0 gaussian, 1 poisson; ``None`` when the family
    #: is not a Tweedie one): the estimators' regression score is its D^2.
    tweedie_power: float | None = None
    #: :meth:`conditional_moments` has closed forms (binomial, poisson).
    has_conditional_moments: bool = False

    def __init__(self, phi: float = 1.0) -> None:
        if not (np.isfinite(phi) and phi > 0):
            raise ValueError(f"phi must be a positive finite number, got {phi!r}")
        self.phi = float(phi)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}()" if self.phi == 1.0 else f"{name}(phi={self.phi})"

    # --- the likelihood, elementwise -------------------------------------------------------
    @abstractmethod
    def cumulant(self, eta: Any) -> Any:
        """``b(eta)``."""

    @abstractmethod
    def mean(self, eta: Any) -> Any:
        """``mu = b'(eta)``."""

    @abstractmethod
    def d2loss(self, y: Any, eta: Any) -> Any:
        """``d^2 l / d eta^2 = b''(eta)`` (free of ``y`` for canonical links)."""

    @abstractmethod
    def variance(self, mu: Any) -> Any:
        """Unit variance function ``V(mu) = b''(eta)``; ``Var(y) = phi V(mu)``."""

    def loss(self, y: Any, eta: Any) -> Any:
        """``l(y, eta) = b(eta) - y eta`` (``phi = 1`` scale)."""
        return self.cumulant(eta) - y * eta

    def dloss(self, y: Any, eta: Any) -> Any:
        """``d l / d eta = mu - y``."""
        return self.mean(eta) - y

    def residual_sign(self, y: Any, eta: Any) -> Any:
        """``s = sign(y - mu)``: the FGSM sign of docs/theory.md s.2."""
        xp = get_namespace(y, eta)
        return xp.sign(y - self.mean(eta))

    @abstractmethod
    def deviance(self, y: Any, eta: Any) -> Any:
        """Unit deviance ``2 [l(y, eta) - l(y, eta_saturated)]``."""

    def adversarial_residual(self, y: Any, eta: Any, P: Any) -> tuple[Any, ...]:
        """``rho = (l(y, eta - P) - l(y, eta + P)) / (2 P)`` and its partial derivatives.

        The exact worst case of docs/theory.md s.2 is
        ``max(l(eta - P), l(eta + P)) = (l(eta - P) + l(eta + P)) / 2 + P |rho|``; ``rho`` is the
        residual ``y - mu`` generalised to a budget ``P >= 0`` (``rho -> y - mu`` as ``P -> 0``),
        and the worst case has a kink exactly where ``rho = 0``.

        Returns ``(rho, rho_eta, rho_P, rho_eta_eta, rho_eta_P, rho_P_P)``, elementwise.
        """
        raise NotImplementedError(f"{self.name}: the exact adversary needs adversarial_residual")

    def conditional_moments(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(b''(eta), E[|y - mu| | eta], E[sign(y - mu) | eta])`` on the ``phi = 1`` scale, host
        arrays: the closed forms :func:`gfgsm.theory.quantities` integrates over ``x`` for I, D
        and V (docs/theory.md s.5).  Families without them are integrated by Monte Carlo over
        ``(x, y)``."""
        raise NotImplementedError(f"{self.name}: no closed-form conditional moments")

    def initial_eta(self, ybar: Any) -> Any:
        """A starting intercept from the mean response: ``g(ybar)`` for the canonical link,
        clipped into the link's domain (overridden where the link is not the identity)."""
        return ybar

    # --- the boundaries ----------------------------------------------------------------------
    @abstractmethod
    def validate_y(self, y: np.ndarray) -> None:
        """Raise ``ValueError`` when ``y`` (host array) leaves the family's support."""

    def in_support(self, y: Any) -> Any:
        """``True`` when every entry of ``y`` lies in the family's support (any namespace)."""
        xp = get_namespace(y)
        return xp.all(xp.isfinite(y))

    def check_y(self, y: Any) -> None:
        """:meth:`validate_y` for an array of any namespace, on its device.

        One scalar crosses to the host when ``y`` is valid; the whole array only when it is
        not, to name the offending values.
        """
        if not bool(self.in_support(y)):
            self.validate_y(to_numpy(y))
            raise ValueError(f"y leaves the support of the {self.name} family")

    def check_eta(self, eta: Any) -> None:  # noqa: B027 - a no-op for families that cannot overflow
        """Raise ``FloatingPointError`` when the mean overflows at some ``eta`` (host check)."""

    def sample(self, eta: Any, rng: np.random.Generator | int | None = None) -> Any:
        """Draw ``y | eta`` (one draw per entry of ``eta``), returned in ``eta``'s namespace.

        Draws are made on the host with a NumPy ``Generator`` (one device copy in, one out), so
        the same seed gives the same data on every backend.
        """
        xp = get_namespace(eta)
        self.check_eta(eta)
        rng = np.random.default_rng(rng)
        y = self._sample_host(to_numpy(eta), rng)
        return xp.asarray(y, dtype=xp.float64)

    def _sample_host(self, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draws on the host; a family used only for fitting need not provide them."""
        raise NotImplementedError(f"{self.name}: no sampler (fitting needs none)")

    def draw_stream(self, eta: Any, stream: Any) -> Any:
        """Draw ``y | eta`` from a counter-based :class:`gfgsm.rng.Stream`, on its backend.

        ``eta`` has shape ``(R, ...)``, one row per replication of ``stream``; the draw is the
        same bits on every backend given the same ``eta`` (docs/theory.md, "Random numbers").
        This is how the simulation studies draw responses.
        """
        raise NotImplementedError(f"{self.name}: no counter-based sampler")


class Gaussian(Family):
    """Gaussian, identity link: ``b = eta^2/2``, ``phi = sigma^2``."""

    name = "gaussian"
    has_dispersion = True
    tweedie_power = 0.0

    def cumulant(self, eta: Any) -> Any:
        return eta * eta / 2.0

    def loss(self, y: Any, eta: Any) -> Any:
        # (y - eta)^2 / 2 differs from b - y*eta by y^2/2 (free of eta); it is the familiar
        # scale (scikit-learn's Lasso) and avoids cancellation for large |y|.
        r = y - eta
        return r * r / 2.0

    def mean(self, eta: Any) -> Any:
        return eta

    def d2loss(self, y: Any, eta: Any) -> Any:
        xp = get_namespace(y, eta)
        return xp.ones_like(eta + y)

    def variance(self, mu: Any) -> Any:
        xp = get_namespace(mu)
        return xp.ones_like(mu)

    def deviance(self, y: Any, eta: Any) -> Any:
        r = y - eta
        return r * r

    def adversarial_residual(self, y: Any, eta: Any, P: Any) -> tuple[Any, ...]:
        # ((y - eta + P)^2 - (y - eta - P)^2) / (4 P) = y - eta, for every P.
        xp = get_namespace(y, eta)
        r = y - eta + 0.0 * P
        zero = xp.zeros_like(r)
        return r, -xp.ones_like(r), zero, zero, zero, zero

    def validate_y(self, y: np.ndarray) -> None:
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values")

    def _sample_host(self, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return eta + math.sqrt(self.phi) * rng.standard_normal(eta.shape)

    def draw_stream(self, eta: Any, stream: Any) -> Any:
        """``y = eta + sqrt(phi) z`` with portable Box-Muller normals ``z``."""
        return eta + math.sqrt(self.phi) * stream.normal(tuple(eta.shape[1:]))


class Binomial(Family):
    """Bernoulli, logit link: ``b = log(1 + e^eta)``, ``mu = sigmoid(eta)``, ``y in {0, 1}``."""

    name = "binomial"
    sign_is_constant = True
    is_binary = True
    has_conditional_moments = True

    def conditional_moments(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mu(1-mu), 2 mu(1-mu), 2 mu - 1)``."""
        # Through e = exp(-|eta|): b'' = e / (1 + e)^2 is exactly even in eta and
        # 2 mu - 1 = sign(eta) (1 - e) / (1 + e) exactly odd, so antithetic pairs cancel exactly.
        e = np.exp(-np.abs(eta))
        b2 = e / ((1.0 + e) * (1.0 + e))
        sign_mean = np.sign(eta) * (-np.expm1(-np.abs(eta))) / (1.0 + e)
        return b2, 2.0 * b2, sign_mean

    def initial_eta(self, ybar: Any) -> Any:
        """``logit(ybar)``, with ``ybar`` clipped to [1e-3, 1 - 1e-3]."""
        xp = get_namespace(ybar)
        yb = xp.clip(ybar, 1e-3, 1 - 1e-3)
        return xp.log(yb / (1 - yb))

    def cumulant(self, eta: Any) -> Any:
        return softplus(eta)

    def loss(self, y: Any, eta: Any) -> Any:
        # For y in {0, 1}, softplus(-(2y - 1) eta) equals softplus(eta) - y eta but keeps full
        # relative precision when the fit is good (eta large with the right sign), at the cost
        # of one softplus.  y is validated to be binary at every public boundary.
        return softplus((1.0 - 2.0 * y) * eta)

    def mean(self, eta: Any) -> Any:
        return sigmoid(eta)

    def d2loss(self, y: Any, eta: Any) -> Any:
        xp = get_namespace(eta)
        # mu (1 - mu) = e / (1 + e)^2 with e = exp(-|eta|): no cancellation in 1 - mu.
        e = xp.exp(-xp.abs(eta))
        return e / ((1.0 + e) * (1.0 + e)) + 0.0 * y

    def variance(self, mu: Any) -> Any:
        return mu * (1.0 - mu)

    def residual_sign(self, y: Any, eta: Any) -> Any:
        # 0 < mu < 1, so sign(y - mu) = 2y - 1 for every eta (docs/theory.md s.2); computing it from
        # mu would give 0 where mu rounds to exactly 0 or 1.
        return 2.0 * y - 1.0

    def deviance(self, y: Any, eta: Any) -> Any:
        return 2.0 * self.loss(y, eta)

    def in_support(self, y: Any) -> Any:
        xp = get_namespace(y)
        return xp.all((y == 0.0) | (y == 1.0))

    def validate_y(self, y: np.ndarray) -> None:
        bad = ~((y == 0) | (y == 1))
        if np.any(bad):
            vals = np.unique(y[bad])[:5]
            raise ValueError(
                f"binomial y must be 0 or 1; found {bad.sum()} other value(s), e.g. {vals.tolist()}"
            )

    def _sample_host(self, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mu = to_numpy(sigmoid(np.asarray(eta)))
        return (rng.random(eta.shape) < mu).astype(np.float64)

    def draw_stream(self, eta: Any, stream: Any) -> Any:
        """``y = 1{L < eta}`` with ``L`` standard logistic, so ``P(y = 1) = sigmoid(eta)``.

        The latent form needs no ``exp`` of ``eta`` (whose last bit differs between
        backends' libraries): given ``eta``, the draw is the same bits everywhere.
        """
        xp = stream.xp
        return xp.astype(stream.logistic(tuple(eta.shape[1:])) < eta, xp.float64)


class Poisson(Family):
    """Poisson, log link: ``b = e^eta``, ``mu = e^eta``, ``y in {0, 1, 2, ...}``."""

    name = "poisson"
    fgsm_is_exact = False
    tweedie_power = 1.0
    has_conditional_moments = True

    def conditional_moments(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mu, 2 mu P(y = floor mu), P(y > mu) - P(y < mu))`` for ``y ~ Poisson(mu)``."""
        from scipy.special import pdtr, pdtrc
        from scipy.stats import poisson

        mu = np.exp(eta)
        k = np.floor(mu)
        abs_dev = 2.0 * mu * poisson.pmf(k, mu)
        # P(y > mu) = P(y > floor mu); P(y < mu) = P(y <= ceil(mu) - 1) (no mass at mu if not
        # an integer).
        sign_mean = pdtrc(k, mu) - pdtr(np.ceil(mu) - 1.0, mu)
        return mu, abs_dev, sign_mean

    def initial_eta(self, ybar: Any) -> Any:
        """``log(ybar)``, with ``ybar`` clipped below at 1e-3."""
        xp = get_namespace(ybar)
        return xp.log(xp.clip(ybar, 1e-3, None))

    def _exp(self, eta: Any) -> Any:
        # exp clipped at the overflow threshold with +inf put back explicitly: the value is the
        # same as exp(eta) but NumPy raises no overflow warning inside a line search.
        xp = get_namespace(eta)
        return xp.where(eta > ETA_MAX_POISSON, xp.inf, xp.exp(xp.minimum(eta, ETA_MAX_POISSON)))

    def cumulant(self, eta: Any) -> Any:
        return self._exp(eta)

    def mean(self, eta: Any) -> Any:
        return self._exp(eta)

    def d2loss(self, y: Any, eta: Any) -> Any:
        return self._exp(eta) + 0.0 * y

    def variance(self, mu: Any) -> Any:
        return mu

    def deviance(self, y: Any, eta: Any) -> Any:
        xp = get_namespace(y, eta)
        mu = self._exp(eta)
        # y log(y / mu) with 0 log 0 = 0; log(y / mu) = log y - eta avoids overflow of mu.
        ylogy = xp.where(y > 0, y * (xp.log(xp.where(y > 0, y, 1.0)) - eta), 0.0)
        return 2.0 * (ylogy - (y - mu))

    def adversarial_residual(self, y: Any, eta: Any, P: Any) -> tuple[Any, ...]:
        # rho = y - e^eta S(P) with S(P) = sinh(P) / P; S and its derivatives by their Taylor
        # series below P = 1e-3 (truncation error < 1e-19), where the closed forms cancel.
        xp = get_namespace(y, eta, P)
        mu = self._exp(eta)
        small = P < 1e-3
        Ps = xp.where(small, 1.0, P)
        sh, ch = xp.sinh(Ps), xp.cosh(Ps)
        P2 = P * P
        S = xp.where(small, 1.0 + P2 / 6.0 + P2 * P2 / 120.0, sh / Ps)
        S1 = xp.where(small, P / 3.0 + P * P2 / 30.0, (Ps * ch - sh) / (Ps * Ps))
        S2 = xp.where(
            small,
            1.0 / 3.0 + P2 / 10.0,
            ((Ps * Ps + 2.0) * sh - 2.0 * Ps * ch) / (Ps * Ps * Ps),
        )
        rho = y - mu * S
        return rho, -mu * S, -mu * S1, -mu * S, -mu * S1, -mu * S2

    def in_support(self, y: Any) -> Any:
        xp = get_namespace(y)
        return xp.all(xp.isfinite(y) & (y >= 0.0) & (y == xp.round(y)))

    def validate_y(self, y: np.ndarray) -> None:
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values")
        if np.any(y < 0):
            raise ValueError(f"poisson y must be non-negative counts; min(y) = {y.min()!r}")
        if np.any(y != np.round(y)):
            bad = y[y != np.round(y)][:5]
            raise ValueError(f"poisson y must be integer counts; found e.g. {bad.tolist()}")

    def check_eta(self, eta: Any) -> None:
        # On eta's device: one scalar crosses to the host.
        xp = get_namespace(eta)
        eta = xp.asarray(eta)
        m = float(xp.max(eta)) if math.prod(eta.shape) else -math.inf
        if not m <= ETA_MAX_POISSON:
            raise FloatingPointError(
                f"poisson mean exp(eta) overflows float64: max eta = {m:.6g} > "
                f"{ETA_MAX_POISSON:.6g}"
            )

    def _sample_host(self, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mu = np.exp(eta)
        if np.any(mu > POISSON_MEAN_MAX):
            raise FloatingPointError(
                f"poisson mean {mu.max():.3g} is too large to sample counts exactly"
            )
        return rng.poisson(mu).astype(np.float64)

    def draw_stream(self, eta: Any, stream: Any) -> Any:
        """Counts with mean ``exp(eta)`` (the portable ``exp``, so the same bits everywhere).

        Raises ``FloatingPointError`` where a mean overflows or exceeds ``1e15`` (too large to
        draw counts exactly), as :meth:`sample` does.
        """
        from .rng import _portable

        xp = stream.xp
        self.check_eta(eta)
        top = float(xp.max(eta)) if math.prod(eta.shape) else -math.inf
        if not top <= math.log(POISSON_MEAN_MAX):
            raise FloatingPointError(
                f"poisson mean {math.exp(top):.3g} is too large to sample counts exactly "
                f"(limit {POISSON_MEAN_MAX:g})"
            )
        return stream.poisson(_portable.exp(eta, xp))


_FAMILIES: dict[str, type[Family]] = {
    "gaussian": Gaussian,
    "binomial": Binomial,
    "poisson": Poisson,
}


def get_family(family: str | Family) -> Family:
    """A family from its name (``"gaussian"``, ``"binomial"``, ``"poisson"``) or an instance."""
    if isinstance(family, Family):
        return family
    if isinstance(family, str) and family.lower() in _FAMILIES:
        return _FAMILIES[family.lower()]()
    raise ValueError(f"unknown family {family!r}; expected one of {sorted(_FAMILIES)}")
