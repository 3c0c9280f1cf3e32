"""The penalty interface and the array helpers shared by every penalty (docs/theory.md s.3, s.6).

:class:`Penalty` is the interface the solvers and :mod:`gfgsm.theory` use; :class:`SeparablePenalty`
derives ``value``, ``grad`` and ``hess_diag`` of ``P_lam(beta) = sum_j p_lam(|beta_j|)`` from the
scalar ``p_lam`` and its derivatives.  The helpers below take the Array-API namespace ``xp`` of
their inputs (:mod:`gfgsm._backend`) and broadcast ``lam`` (a float, or one level per problem)
against ``beta`` of shape ``(..., p)``.
"""

from __future__ import annotations

import abc
import numbers
from typing import Any

from .._backend import asarray, get_namespace

__all__ = ["Array", "Penalty", "SeparablePenalty", "row_scale"]

Array = Any


# --------------------------------------------------------------------------------------------
# array helpers
# --------------------------------------------------------------------------------------------


def _lam_col(lam: Any, xp: Any, like: Array) -> Any:
    """``lam`` to broadcast against ``like`` of shape (..., p): a float or ``lam[..., None]``."""
    if isinstance(lam, numbers.Real):
        return float(lam)
    return asarray(lam, xp, dtype=like.dtype)[..., None]


def _lam_row(lam: Any, xp: Any, like: Array) -> Any:
    """``lam`` ready to multiply a per-problem quantity of shape ``like.shape[:-1]``."""
    if isinstance(lam, numbers.Real):
        return float(lam)
    return asarray(lam, xp, dtype=like.dtype)


def _as_array_or_float(x: Any, xp: Any, like: Array) -> Any:
    if isinstance(x, numbers.Real):
        return float(x)
    return asarray(x, xp, dtype=like.dtype)


def _full(value: Any, like: Array, xp: Any) -> Array:
    """``value`` (a float or a broadcastable array) broadcast to the shape of ``like``."""
    return xp.zeros_like(like) + value


def _safe_positive(t: Array, xp: Any) -> Array:
    """``t`` with non-positive entries replaced by 1, so negative powers of it never warn."""
    return xp.where(t > 0, t, 1.0)


def _sigma(beta: Array, sigma: Array | None, xp: Any) -> Array:
    """The orthant signs as an array of ``beta``'s dtype (``sign(beta)`` when not given)."""
    if sigma is None:
        return xp.sign(beta)
    return asarray(sigma, xp, dtype=beta.dtype)


def _signed(mag: Array, sigma: Array, xp: Any) -> Array:
    """``mag * sigma`` for ``sigma`` in {-1, 0, +1}, with 0 (not NaN) where ``sigma = 0`` and
    ``mag = inf``."""
    return xp.where(sigma > 0, mag, xp.where(sigma < 0, -mag, 0.0))


def row_scale(a: Array, xp: Any) -> tuple[Array, Array]:
    """Row maxima ``M = max_j a_j`` (keepdims) and ``u = a / M`` (0 on rows with ``M = 0``).

    Working with ``u`` in [0, 1] keeps powers of large or tiny entries from overflowing; for the
    gradient schemes (:mod:`gfgsm.schemes`, ``a = |g|``) dividing by the row's own max also makes
    every direction invariant to the gradient's scale."""
    m = xp.max(a, axis=-1, keepdims=True)
    return m, a / xp.where(m > 0, m, 1.0)


def _ties_at_max(u: Array, xp: Any) -> Array:
    """Equal split over the coordinates attaining ``max u = 1`` (zero rows give zeros)."""
    tie = xp.astype((u == 1.0), u.dtype)
    count = xp.sum(tie, axis=-1, keepdims=True)
    return tie / xp.where(count > 0, count, 1.0)


# --------------------------------------------------------------------------------------------
# base classes
# --------------------------------------------------------------------------------------------


class Penalty(abc.ABC):
    """A penalty ``P_lam(beta)`` on the slopes (never on the intercept; docs/theory.md s.2).

    Attributes
    ----------
    name : str
        registry name (see :func:`get_penalty`).
    is_separable : bool
        True when ``P_lam(beta) = sum_j p_lam(|beta_j|)`` and the separable interface
        (:meth:`pointwise`, :meth:`derivative`, :meth:`second_derivative`, :meth:`hess_diag`,
        :meth:`prox`) is available.
    """

    name: str = "penalty"
    is_separable: bool = False
    #: ``P`` has kinks away from the coordinate hyperplanes (ties of ``|beta_j|`` at the max),
    #: where orthant-wise Newton cannot certify a point; such a penalty provides an exact
    #: :meth:`prox`, and the solvers then finish with proximal gradient.
    kinked_off_axes: bool = False
    #: ``P`` is a weighted l1 norm whose weights are piecewise constant in ``beta`` and jump
    #: (the quantized scheme); such a penalty provides :meth:`levels` and :meth:`scaled`, and the
    #: solvers compute a level-consistent point (gfgsm.solvers.level_fixed_point).
    jumps: bool = False

    @property
    @abc.abstractmethod
    def is_convex(self) -> bool:
        """Whether ``beta -> P_lam(beta)`` is convex for every ``lam >= 0``."""

    @abc.abstractmethod
    def value(self, beta: Array, lam: Any) -> Array:
        """``P_lam(beta)``, shape ``beta.shape[:-1]``."""

    @abc.abstractmethod
    def grad(self, beta: Array, lam: Any, sigma: Array | None = None) -> Array:
        """Gradient of ``P_lam`` on the orthant with signs ``sigma`` (default ``sign(beta)``).

        ``sigma_j`` in {-1, 0, +1} is the sign of ``beta_j``, or for a zero coefficient the
        direction it is about to move; shape ``(..., p)`` like ``beta``."""

    def _params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    #: ``P(c beta) <= c P(beta)`` for ``c >= 1`` (positively homogeneous, or concave in
    #: ``|beta|``): then positive adversarial margins certify separation at every ``lam``
    #: (fit_batch's divergence certificate); otherwise only at ``lam = 0``.
    at_most_linear: bool = False

    def zero_slope(self, lam: Any, like: Array) -> Array:
        """The one-sided slope of ``P_lam`` in ``beta_j`` at ``beta_j = 0``, the other
        coordinates held, shape of ``like`` (``(R, p)``): ``p'_lam(0+)`` for a separable
        penalty; 0 by default for the others (smooth in each coordinate through 0), overridden
        where a penalty is kinked there."""
        if self.is_separable:
            return self.derivative(like, lam)
        xp = get_namespace(like)
        return xp.zeros_like(like)

    def as_shift(self, lam: Any, p: int) -> Any:
        """This penalty at levels ``lam`` (shape ``(R,)``) as the solvers' shift
        (:class:`gfgsm.shifts.PenaltyShift`; l1 penalties give the faster
        :class:`gfgsm.shifts.L1Shift`)."""
        from ..shifts import PenaltyShift

        return PenaltyShift(self, lam, p)

    def orthant_hess(self, beta: Array, lam: Any, sigma: Array | None = None) -> Array | None:
        """The Hessian of ``P_lam`` on the smooth piece of ``beta`` (its orthant ``sigma`` and,
        for penalties of ``||beta||_inf``, its first largest coordinate), ``(..., p, p)``;
        ``None`` when the penalty does not provide it (the solvers then use none)."""
        return None

    def _not_separable(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"{self!r} is not separable and has no {what}")

    def pointwise(self, t: Array, lam: Any) -> Array:
        """``p_lam(t)`` elementwise for ``t >= 0`` (separable penalties only)."""
        raise self._not_separable("pointwise p_lam")

    def derivative(self, t: Array, lam: Any) -> Array:
        """``p'_lam(t)`` elementwise for ``t >= 0`` (separable penalties only)."""
        raise self._not_separable("derivative")

    def second_derivative(self, t: Array, lam: Any) -> Array:
        """``p''_lam(t)`` elementwise for ``t > 0`` (separable penalties only)."""
        raise self._not_separable("second derivative")

    def hess_diag(self, beta: Array, lam: Any) -> Array:
        """Diagonal Hessian of ``P_lam`` (separable penalties only)."""
        raise self._not_separable("diagonal Hessian")

    def prox(self, z: Array, lam: Any, step: Any) -> Array:
        """Proximal map of ``step * P_lam`` (separable penalties only)."""
        raise self._not_separable("proximal map")


class SeparablePenalty(Penalty):
    """``P_lam(beta) = sum_j p_lam(|beta_j|)`` (docs/theory.md s.3).

    Subclasses provide :meth:`pointwise`, :meth:`derivative`, :meth:`second_derivative` and
    :meth:`prox`; ``value``, ``grad`` and ``hess_diag`` follow from them.
    """

    is_separable = True

    @abc.abstractmethod
    def pointwise(self, t: Array, lam: Any) -> Array:
        """``p_lam(t)`` for ``t >= 0``, shape of ``t`` (``lam`` broadcast as ``lam[..., None]``)."""

    @abc.abstractmethod
    def derivative(self, t: Array, lam: Any) -> Array:
        """``p'_lam(t)`` for ``t >= 0``; at ``t = 0`` the right derivative ``p'_lam(0+)``."""

    @abc.abstractmethod
    def second_derivative(self, t: Array, lam: Any) -> Array:
        """``p''_lam(t)`` for ``t > 0`` (right second derivative at a knot)."""

    def prox(self, z: Array, lam: Any, step: Any) -> Array:
        """``argmin_b (b - z)^2 / (2 step) + p_lam(|b|)`` elementwise (``step`` broadcasts to
        ``z``).  Fitting does not need it
        (the orthant Newton solver uses the derivatives); :func:`gfgsm.theory.limit_law`'s
        coordinate descent does, and says so when a penalty lacks it."""
        raise NotImplementedError(
            f"{type(self).__name__} has no prox; the limit law of docs/theory.md s.5 needs one"
        )

    def _hess_at_zero(self, lam_col: Any, like: Array, xp: Any) -> Array:
        # Penalties with a kink at 0 (p'(0+) > 0) have no curvature to offer there: a zero
        # coefficient is handled by the solver's active set, not by a Newton step.
        return xp.zeros_like(like)

    def value(self, beta: Array, lam: Any) -> Array:
        """``P_lam(beta) = sum_j p_lam(|beta_j|)``, shape ``beta.shape[:-1]``."""
        xp = get_namespace(beta)
        return xp.sum(self.pointwise(xp.abs(beta), lam), axis=-1)

    def grad(self, beta: Array, lam: Any, sigma: Array | None = None) -> Array:
        """``p'_lam(|beta_j|) sigma_j`` (right derivative at ``beta_j = 0``; 0 where ``sigma_j = 0``
        even when ``p'_lam(0+) = inf``)."""
        xp = get_namespace(beta)
        sigma = _sigma(beta, sigma, xp)
        return _signed(self.derivative(xp.abs(beta), lam), sigma, xp)

    def hess_diag(self, beta: Array, lam: Any) -> Array:
        """``p''_lam(|beta_j|)`` for ``beta_j != 0``.

        At ``beta_j = 0`` it returns 0 (the penalty has a kink there, or, for lr with
        ``1 < r < 2``, unbounded curvature that would freeze a Newton step at 0), except for ridge
        (lr, ``r = 2``), whose curvature is ``2 lam`` everywhere."""
        xp = get_namespace(beta)
        t = xp.abs(beta)
        lam_col = _lam_col(lam, xp, beta)
        h = self.second_derivative(_safe_positive(t, xp), lam)
        return xp.where(t > 0, h, self._hess_at_zero(lam_col, beta, xp))
