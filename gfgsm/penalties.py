"""Penalties ``P_lam(beta)`` of the generalized FGSM estimator (docs/theory.md sections 3 and 6).

Two kinds live here.

* **Separable** penalties ``P_lam(beta) = sum_j p_lam(|beta_j|)`` (docs/theory.md s.3):
  :class:`L1`, :class:`WeightedL1` / :class:`AdaptiveL1`, :class:`Lr`, :class:`SCAD`, :class:`MCP`.
  They expose the scalar function ``p_lam`` (:meth:`~Penalty.pointwise`), its derivatives and its
  proximal map.
* **Induced** penalties of the gradient schemes (docs/theory.md s.6, third column of the table):
  :class:`DualNorm`, :class:`PowerPenalty`, :class:`QuantizedPenalty`.  They are not separable and
  expose only ``value`` and ``grad``.

A penalty object does not hold ``lam``; every method takes it.  Shapes: ``beta`` is ``(..., p)``
(typically ``(R, p)`` for ``R`` independent problems); ``lam`` is a Python float or an array of
shape ``beta.shape[:-1]`` (one level per problem), used as ``lam[..., None]`` against ``beta``.

All arithmetic uses the Array-API namespace of the inputs (:mod:`gfgsm._backend`), so the same
code runs on NumPy, CuPy and ``array_api_strict``.  Validation of ``lam >= 0`` is the estimators'
job; the penalties only promise not to produce NaN at ``lam = 0``.
"""

from __future__ import annotations

import abc
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

from gfgsm._backend import asarray, get_namespace

__all__ = [
    "L1",
    "MCP",
    "SCAD",
    "AdaptiveL1",
    "DualNorm",
    "Lr",
    "Penalty",
    "PowerPenalty",
    "QuantizedPenalty",
    "SeparablePenalty",
    "WeightedL1",
    "adaptive_weights",
    "get_penalty",
]

Array = Any

#: Newton/bisection iterations allowed in the lr proximal maps (each halves the bracket at worst,
#: so 100 steps reach the float64 resolution from any starting bracket).
_PROX_MAX_ITER = 100


# --------------------------------------------------------------------------------------------
# parameter validation (host side, at construction)
# --------------------------------------------------------------------------------------------


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _positive_int(name: str, value: Any) -> int:
    # Integral-valued floats are accepted because parameters often arrive from config files.
    ok = not isinstance(value, bool) and (
        isinstance(value, numbers.Integral)
        or (isinstance(value, numbers.Real) and float(value).is_integer())
    )
    if not ok or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_q(q: Any) -> float:
    q = _real("q", q)
    if not q >= 1:  # written this way so NaN fails too
        raise ValueError(f"q must satisfy 1 <= q <= inf, got {q}")
    return q


def _check_power_r(r: Any) -> float:
    r = _real("r", r)
    if not (r >= 1 and math.isfinite(r)):
        raise ValueError(f"r must satisfy 1 <= r < inf, got {r}")
    return r


def _fmt(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() else repr(x)


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


def _max_of(x: Any, xp: Any) -> float:
    # A host sync when x is an array; only used to validate prox steps.
    if isinstance(x, numbers.Real):
        return float(x)
    return float(xp.max(x))


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


def _row_scale(a: Array, xp: Any) -> tuple[Array, Array]:
    """Row maxima ``M = max_j a_j`` (keepdims) and ``u = a / M`` (0 on rows with ``M = 0``).

    Working with ``u`` in [0, 1] keeps powers of large or tiny entries from overflowing."""
    m = xp.max(a, axis=-1, keepdims=True)
    return m, a / xp.where(m > 0, m, 1.0)


def _ties_at_max(u: Array, xp: Any) -> Array:
    """Equal split over the coordinates attaining ``max u = 1`` (zero rows give zeros)."""
    tie = xp.astype((u == 1.0), u.dtype)
    count = xp.sum(tie, axis=-1, keepdims=True)
    return tie / xp.where(count > 0, count, 1.0)


def _soft_threshold(z: Array, thr: Any, xp: Any) -> Array:
    return xp.sign(z) * xp.maximum(xp.abs(z) - thr, 0.0)


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
        from .shifts import PenaltyShift

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


# --------------------------------------------------------------------------------------------
# separable penalties
# --------------------------------------------------------------------------------------------


class L1(SeparablePenalty):
    """Lasso: ``p_lam(t) = lam t`` (docs/theory.md s.3; the FGSM penalty with ``lam = eps``)."""

    name = "l1"
    at_most_linear = True

    def as_shift(self, lam: Any, p: int) -> Any:
        return _l1_shift(self, lam, p)

    @property
    def is_convex(self) -> bool:
        return True

    def pointwise(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        return _lam_col(lam, xp, t) * t

    def derivative(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        return _full(_lam_col(lam, xp, t), t, xp)

    def second_derivative(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        return xp.zeros_like(t)

    def prox(self, z: Array, lam: Any, step: Any) -> Array:
        """Soft thresholding ``sign(z) max(|z| - step lam, 0)``."""
        xp = get_namespace(z)
        return _soft_threshold(z, _as_array_or_float(step, xp, z) * _lam_col(lam, xp, z), xp)


class WeightedL1(SeparablePenalty):
    """Weighted lasso ``P_lam(beta) = lam sum_j w_j |beta_j|`` (docs/theory.md s.3).

    Parameters
    ----------
    weights : array of shape (p,) or (R, p)
        ``w_j >= 0`` and finite (one row per problem when ``(R, p)``).  It broadcasts against
        ``beta`` of shape ``(..., p)``; it is converted to the namespace of ``beta`` on use (and
        cached), so pass it already on the device of the data to avoid a copy.
    """

    name = "weighted_l1"
    _allow_inf = False
    at_most_linear = True

    def as_shift(self, lam: Any, p: int) -> Any:
        xp = get_namespace(lam)
        self.weights_array(xp, lam.shape[0], p)  # validates the weights' shape
        return _l1_shift(self, lam, p)

    def __init__(self, weights: Array) -> None:
        xp = get_namespace(weights)
        try:
            w = asarray(weights, xp)
        except Exception as exc:
            raise ValueError(f"weights must be a numeric array, got {weights!r}") from exc
        if w.ndim not in (1, 2):
            raise ValueError(f"weights must have shape (p,) or (R, p), got shape {tuple(w.shape)}")
        if bool(xp.any(xp.isnan(w))):
            raise ValueError("weights must not contain NaN")
        if bool(xp.any(w < 0)):
            raise ValueError(f"weights must be >= 0, got minimum {float(xp.min(w))}")
        if not self._allow_inf and not bool(xp.all(xp.isfinite(w))):
            raise ValueError(
                "weights must be finite for weighted_l1 (use adaptive_l1 for +inf weights, "
                "which hold a coefficient at zero)"
            )
        self.weights = w
        self._cache: dict[tuple[int, str], Array] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weights=<shape {tuple(self.weights.shape)}>)"

    @property
    def is_convex(self) -> bool:
        return True

    def _w(self, xp: Any, like: Array) -> Array:
        key = (id(xp), str(like.dtype))
        w = self._cache.get(key)
        if w is None:
            w = asarray(self.weights, xp, dtype=like.dtype)
            self._cache[key] = w
        return w

    def weights_array(self, xp: Any, R: int, p: int) -> Array:
        """The weights as a float64 ``(R, p)`` array of namespace ``xp`` (a broadcast view).

        Raises ``ValueError`` when the weights' shape does not fit ``R`` problems of ``p``
        slopes."""
        w = self._w(xp, xp.zeros((), dtype=xp.float64))
        shape = tuple(w.shape)
        if shape[-1] != p or (len(shape) == 2 and shape[0] not in (1, R)):
            raise ValueError(f"weights must have shape ({p},) or ({R}, {p}), got shape {shape}")
        return xp.broadcast_to(w, (R, p))

    def _levels(self, lam: Any, xp: Any, like: Array) -> tuple[Array, Array]:
        """Per-coordinate levels ``lam w_j`` with the infinite weights split off.

        An infinite weight is a constraint ``beta_j = 0`` that does not scale with ``lam``, so
        ``lam = 0`` with ``w_j = inf`` still holds ``beta_j`` at 0 (and gives no NaN from 0 * inf).
        Returns ``(finite_levels, held)`` broadcast to ``like``'s shape."""
        w = self._w(xp, like)
        # Adding zeros broadcasts w to like's shape (inf + 0 = inf) before the test.
        held = xp.isinf(_full(w, like, xp)) if self._allow_inf else xp.zeros_like(like) > 0
        w_fin = xp.where(xp.isinf(w), 0.0, w) if self._allow_inf else w
        return _full(_lam_col(lam, xp, like) * w_fin, like, xp), held

    def pointwise(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        lev, held = self._levels(lam, xp, t)
        return xp.where(held & (t > 0), math.inf, lev * t)

    def derivative(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        lev, held = self._levels(lam, xp, t)
        return xp.where(held, math.inf, lev)

    def second_derivative(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        return xp.zeros_like(t)

    def prox(self, z: Array, lam: Any, step: Any) -> Array:
        """Soft thresholding at ``step lam w_j``; 0 where ``w_j = inf``."""
        xp = get_namespace(z)
        lev, held = self._levels(lam, xp, z)
        out = _soft_threshold(z, _as_array_or_float(step, xp, z) * lev, xp)
        return xp.where(held, 0.0, out)


class AdaptiveL1(WeightedL1):
    """Adaptive lasso ``P_lam(beta) = lam sum_j w_j |beta_j|`` with ``w_j`` in [0, +inf].

    The same as :class:`WeightedL1` except that ``w_j = +inf`` is allowed and means "``beta_j`` is
    held at zero" (a constraint, whatever ``lam``), as produced by :func:`adaptive_weights` for
    a zero pilot coefficient (Zou 2006; Xie & Huo 2024, arXiv:2401.15262).
    """

    name = "adaptive_l1"
    _allow_inf = True


def adaptive_weights(beta_pilot: Array, gamma: float = 1.0, eps: float | None = None) -> Array:
    """Adaptive-lasso weights ``w_j = 1 / |beta_pilot_j|^gamma`` (Zou 2006).

    These are the weights of the two-step adaptive adversarial training of Xie & Huo 2024
    (arXiv:2401.15262): fit a pilot, then refit with :class:`AdaptiveL1`.

    Parameters
    ----------
    beta_pilot : array (..., p)
    gamma : float > 0
    eps : float > 0 or None
        With ``eps=None`` a zero pilot coefficient gets ``w_j = +inf`` ("held at zero").  With a
        floor, ``w_j = 1 / max(|beta_pilot_j|, eps)^gamma``, finite everywhere.

    Returns
    -------
    array of the shape and namespace of ``beta_pilot``.
    """
    gamma = _real("gamma", gamma)
    if not (gamma > 0 and math.isfinite(gamma)):
        raise ValueError(f"gamma must satisfy 0 < gamma < inf, got {gamma}")
    if eps is not None:
        eps = _real("eps", eps)
        if not (eps > 0 and math.isfinite(eps)):
            raise ValueError(f"eps must satisfy 0 < eps < inf (or be None), got {eps}")
    xp = get_namespace(beta_pilot)
    a = xp.abs(asarray(beta_pilot, xp))
    if eps is not None:
        a = xp.maximum(a, eps)
    # Powers of tiny pilots can underflow to 0: map those to +inf as well, without dividing by 0.
    den = a**gamma
    return xp.where(den > 0, 1.0 / _safe_positive(den, xp), math.inf)


class Lr(SeparablePenalty):
    """Bridge penalty ``p_lam(t) = lam t^r``, ``0 < r <= 2`` (docs/theory.md sections 3 and 7).

    ``r = 1`` is l1, ``r = 2`` ridge; convex iff ``r >= 1``.  Right derivative at 0: 0 for
    ``r > 1``, ``lam`` for ``r = 1``, ``+inf`` for ``r < 1`` (0 when ``lam = 0``).
    """

    name = "lr"

    @property
    def at_most_linear(self) -> bool:  # type: ignore[override]
        return self.r <= 1

    def __init__(self, r: float) -> None:
        r = _real("r", r)
        if not 0 < r <= 2:
            raise ValueError(f"r must satisfy 0 < r <= 2, got {_fmt(r)}")
        self.r = r

    def _params(self) -> dict[str, Any]:
        return {"r": self.r}

    @property
    def is_convex(self) -> bool:
        return self.r >= 1

    def pointwise(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        return _lam_col(lam, xp, t) * t**self.r

    def derivative(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        lam_col = _lam_col(lam, xp, t)
        r = self.r
        if r == 1:
            return _full(lam_col, t, xp)
        if r > 1:
            return lam_col * r * t ** (r - 1)
        d = lam_col * r * _safe_positive(t, xp) ** (r - 1)
        at_zero = xp.where(_full(lam_col, t, xp) > 0, math.inf, xp.zeros_like(t))
        return xp.where(t > 0, d, at_zero)

    def second_derivative(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        lam_col = _lam_col(lam, xp, t)
        r = self.r
        if r == 1:
            return xp.zeros_like(t)
        if r == 2:
            return _full(2.0 * lam_col, t, xp)
        return lam_col * (r * (r - 1)) * _safe_positive(t, xp) ** (r - 2)

    def _hess_at_zero(self, lam_col: Any, like: Array, xp: Any) -> Array:
        if self.r == 2:
            return _full(2.0 * lam_col, like, xp)
        return xp.zeros_like(like)

    def prox(self, z: Array, lam: Any, step: Any) -> Array:
        """``argmin_b (b - z)^2 / (2 step) + lam |b|^r`` elementwise.

        * ``r = 2``: ``z / (1 + 2 step lam)``; ``r = 1``: soft thresholding.
        * ``1 < r < 2``: ``b = sign(z) t`` with ``t`` the unique root in [0, |z|] of
          ``h(t) = t + c t^(r-1) - |z|``, ``c = step lam r`` (``h`` is increasing and concave).
        * ``0 < r < 1``: ``h`` is convex with minimum at ``t_min = (c (1 - r))^(1/(2-r))``; if
          ``h(t_min) > 0`` there is no stationary point and ``b = 0``; otherwise the larger root
          (the local minimum) is found in [t_min, |z|] and compared with ``b = 0`` on the prox
          objective itself; an exact tie goes to 0 (the sparser answer).

        Roots are found in ``u = t / |z|`` by Newton's method safeguarded by bisection on a
        bracket, vectorised over all entries; iteration stops when every entry's step is at most
        4 machine epsilons relative to the iterate (or after 100 iterations), i.e. the root is
        accurate to a few ulp.  The powers are formed through logs of
        ``kappa = c |z|^(r-2)``, so no scale of ``lam``, ``step`` or ``z`` overflows.
        """
        xp = get_namespace(z)
        step = _as_array_or_float(step, xp, z)
        lam_col = _lam_col(lam, xp, z)
        r = self.r
        if r == 2:
            return z / (1.0 + 2.0 * step * lam_col)
        if r == 1:
            return _soft_threshold(z, step * lam_col, xp)
        az = xp.abs(z)
        c = _full(step * lam_col * r, z, xp)
        tol = 4.0 * xp.finfo(z.dtype).eps
        u = _prox_bridge_scaled(az, c, r, tol, xp)
        # c = 0 (lam = 0 or step = 0): no penalty, the prox is the identity.
        return xp.where(c > 0, xp.sign(z) * az * u, z)


def _safeguarded_newton(
    fun: Callable[[Array], tuple[Array, Array]],
    lo: Array,
    hi: Array,
    t: Array,
    tol: float,
    xp: Any,
) -> Array:
    """Root of an increasing ``h`` bracketed by ``h(lo) <= 0 <= h(hi)``, elementwise.

    Newton steps are taken when they stay inside the current bracket and bisection otherwise, so
    every iteration shrinks the bracket or converges quadratically."""
    for _ in range(_PROX_MAX_ITER):
        h, dh = fun(t)
        lo = xp.where(h <= 0, t, lo)
        hi = xp.where(h >= 0, t, hi)
        usable = xp.isfinite(dh) & (dh > 0)
        newton = t - h / xp.where(usable, dh, 1.0)
        inside = usable & (newton > lo) & (newton < hi)
        t_new = xp.where(inside, newton, 0.5 * (lo + hi))
        converged = xp.abs(t_new - t) <= tol * t_new
        t = t_new
        if bool(xp.all(converged)):
            break
    return t


def _prox_bridge_scaled(az: Array, c: Array, r: float, tol: float, xp: Any) -> Array:
    """``u = t / |z|`` for the lr prox, ``r`` in (0, 1) or (1, 2) (see :meth:`Lr.prox`).

    In ``u`` the optimality equation is ``phi(u) = u + kappa u^(r-1) - 1 = 0`` on [0, 1] with
    ``kappa = c |z|^(r-2)``.  Every power of ``kappa`` and ``u`` is formed as ``exp`` of a sum of
    logs, with the exponent capped at 700, so no scale of ``lam``, ``step`` or ``z`` overflows
    (in the capped regime the true root is below 1e-300 relative to |z|).  Entries with
    ``az = 0`` or ``c = 0`` return a finite dummy; the caller masks them."""
    ok = (az > 0) & (c > 0)
    log_k = xp.log(xp.where(ok, c, 1.0)) + (r - 2.0) * xp.log(xp.where(ok, az, 1.0))

    def k_pow(u: Array, e: float) -> Array:  # kappa * u**e for u > 0
        return xp.exp(xp.minimum(log_k + e * xp.log(_safe_positive(u, xp)), 700.0))

    def fun(u: Array) -> tuple[Array, Array]:
        h = u + k_pow(u, r - 1.0) - 1.0
        dh = 1.0 + (r - 1.0) * k_pow(u, r - 2.0)
        # phi'(0+) = +inf for r > 1: report it so the solver bisects rather than divides.
        return h, xp.where(u > 0, dh, math.inf)

    one = xp.ones_like(az)
    if r > 1:
        # phi is increasing and concave with phi(0) = -1 < 0; both phi(1) = kappa and
        # phi(kappa^(-1/(r-1))) = kappa^(-1/(r-1)) are >= 0, so the smaller of the two points
        # bounds the root from above (and is close to it when kappa is large).
        hi = xp.exp(xp.minimum(-log_k / (r - 1.0), 0.0))
        return _safeguarded_newton(fun, xp.zeros_like(az), hi, hi, tol, xp)
    # r < 1: phi is convex with its minimum at u_min = (kappa (1 - r))^(1/(2-r)), where
    # kappa u_min^(r-2) = 1/(1-r) gives phi(u_min) = u_min (2-r)/(1-r) - 1 without any power.
    u_min = xp.exp(xp.minimum((log_k + math.log(1.0 - r)) / (2.0 - r), 700.0))
    has_root = ok & (u_min * ((2.0 - r) / (1.0 - r)) <= 1.0)
    # Newton from u = 1 (phi(1) = kappa > 0) descends monotonically to the larger root, the
    # local minimum of the prox objective; entries without a root get the bracket [1, 1].
    lo = xp.where(has_root, u_min, one)
    u = _safeguarded_newton(fun, lo, one, one, tol, xp)
    # Global comparison with b = 0 on 2 step * (prox objective) / z^2:
    # (u - 1)^2 + (2/r) kappa u^r against 1; an exact tie goes to 0 (the sparser answer).
    obj_u = (u - 1.0) ** 2 + (2.0 / r) * k_pow(u, r)
    return xp.where(has_root & (obj_u < 1.0), u, 0.0)


def _check_step_below(step: Any, bound: float, what: str, xp: Any) -> None:
    smax = _max_of(step, xp)
    if not smax < bound:
        raise ValueError(
            f"the {what} proximal map is a closed form only for step < {bound:g}, "
            f"got step = {smax:g}"
        )


class SCAD(SeparablePenalty):
    """SCAD penalty of Fan & Li (2001), ``a > 2`` (docs/theory.md sections 3 and 7).

    ``p'_lam(t) = lam {I(t <= lam) + (a lam - t)_+ / ((a - 1) lam) I(t > lam)}``, so

    * ``p_lam(t) = lam t`` for ``t <= lam``,
    * ``(2 a lam t - t^2 - lam^2) / (2 (a - 1))`` for ``lam < t <= a lam``,
    * ``(a + 1) lam^2 / 2`` for ``t > a lam``.
    """

    name = "scad"
    at_most_linear = True

    def __init__(self, a: float = 3.7) -> None:
        a = _real("a", a)
        if not (a > 2 and math.isfinite(a)):
            raise ValueError(f"a must satisfy 2 < a < inf, got {a}")
        self.a = a

    def _params(self) -> dict[str, Any]:
        return {"a": self.a}

    @property
    def is_convex(self) -> bool:
        return False

    def pointwise(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        lam = _full(_lam_col(lam, xp, t), t, xp)
        a = self.a
        mid = (2.0 * a * lam * t - t**2 - lam**2) / (2.0 * (a - 1.0))
        flat = (a + 1.0) * lam**2 / 2.0
        return xp.where(t <= lam, lam * t, xp.where(t <= a * lam, mid, flat))

    def derivative(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        lam = _full(_lam_col(lam, xp, t), t, xp)
        a = self.a
        # (a lam - t)_+ / ((a - 1) lam) * lam, with lam cancelled so lam = 0 gives 0, not NaN.
        mid = xp.maximum(a * lam - t, 0.0) / (a - 1.0)
        return xp.where(t <= lam, lam, mid)

    def second_derivative(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        lam = _full(_lam_col(lam, xp, t), t, xp)
        inner = (t >= lam) & (t < self.a * lam)
        return xp.where(inner, -1.0 / (self.a - 1.0), xp.zeros_like(t))

    def prox(self, z: Array, lam: Any, step: Any) -> Array:
        """SCAD thresholding (Fan & Li 2001, eq. 2.8, with the penalty scaled by ``step``).

        ``b = sign(z) (|z| - step lam)_+`` for ``|z| <= (1 + step) lam``;
        ``b = sign(z) ((a - 1)|z| - step a lam) / (a - 1 - step)`` for ``(1 + step) lam < |z| <=
        a lam``; ``b = z`` beyond.  The objective is strictly convex, and this its unique
        minimiser, only when ``step < a - 1``; otherwise ``ValueError``."""
        xp = get_namespace(z)
        a = self.a
        s = _as_array_or_float(step, xp, z)
        _check_step_below(s, a - 1.0, "SCAD", xp)
        lam = _lam_col(lam, xp, z)
        az = xp.abs(z)
        soft = xp.maximum(az - s * lam, 0.0)
        mid = ((a - 1.0) * az - s * a * lam) / (a - 1.0 - s)
        t = xp.where(az <= (1.0 + s) * lam, soft, xp.where(az <= a * lam, mid, az))
        return xp.sign(z) * t


class MCP(SeparablePenalty):
    """Minimax concave penalty of Zhang (2010), ``gamma > 1`` (docs/theory.md sections 3 and 7).

    ``p_lam(t) = lam t - t^2 / (2 gamma)`` for ``t <= gamma lam`` and ``gamma lam^2 / 2``
    beyond; ``p'_lam(t) = (lam - t / gamma)_+``.
    """

    name = "mcp"
    at_most_linear = True

    def __init__(self, gamma: float = 3.0) -> None:
        gamma = _real("gamma", gamma)
        if not (gamma > 1 and math.isfinite(gamma)):
            raise ValueError(f"gamma must satisfy 1 < gamma < inf, got {gamma}")
        self.gamma = gamma

    def _params(self) -> dict[str, Any]:
        return {"gamma": self.gamma}

    @property
    def is_convex(self) -> bool:
        return False

    def pointwise(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        lam = _full(_lam_col(lam, xp, t), t, xp)
        g = self.gamma
        return xp.where(t <= g * lam, lam * t - t**2 / (2.0 * g), g * lam**2 / 2.0)

    def derivative(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        return xp.maximum(_lam_col(lam, xp, t) - t / self.gamma, 0.0)

    def second_derivative(self, t: Array, lam: Any) -> Array:
        xp = get_namespace(t)
        lam = _full(_lam_col(lam, xp, t), t, xp)
        return xp.where(t < self.gamma * lam, -1.0 / self.gamma, xp.zeros_like(t))

    def prox(self, z: Array, lam: Any, step: Any) -> Array:
        """Firm thresholding (Zhang 2010, with the penalty scaled by ``step``).

        ``b = sign(z) (|z| - step lam)_+ / (1 - step / gamma)`` for ``|z| <= gamma lam``, ``b = z``
        beyond; the unique minimiser only when ``step < gamma`` (otherwise ``ValueError``)."""
        xp = get_namespace(z)
        g = self.gamma
        s = _as_array_or_float(step, xp, z)
        _check_step_below(s, g, "MCP", xp)
        lam = _lam_col(lam, xp, z)
        az = xp.abs(z)
        firm = xp.maximum(az - s * lam, 0.0) / (1.0 - s / g)
        return xp.sign(z) * xp.where(az <= g * lam, firm, az)


# --------------------------------------------------------------------------------------------
# penalties induced by the gradient schemes (docs/theory.md s.6, table, third column)
# --------------------------------------------------------------------------------------------
#
# Each is positively homogeneous of degree 1 in beta, so its gradient is homogeneous of degree 0
# and has a limit along every ray: at an all-zero row the gradient is defined as that limit along
# the ray t * sigma, i.e. the gradient evaluated at beta = sigma.


def _abs_for_grad(beta: Array, sigma: Array, xp: Any) -> Array:
    a = xp.abs(beta)
    zero_row = xp.all(a == 0, axis=-1, keepdims=True)
    return xp.where(zero_row, xp.abs(sigma), a)


class DualNorm(Penalty):
    """``P_lam(beta) = lam ||beta||_{q*}``, ``1/q + 1/q* = 1`` (docs/theory.md s.6, the lq scheme).

    ``q`` is the norm of the *scheme's* ball: ``q = inf`` gives l1, ``q = 2`` the l2 norm, ``q = 1``
    the max norm.  Convex.  (``DualNorm(inf)`` equals l1 in value but does not offer the
    separable interface; use :class:`L1` for that.)
    """

    name = "dual_norm"
    at_most_linear = True

    def __init__(self, q: float) -> None:
        self.q = _check_q(q)
        q = self.q
        self.qstar = 1.0 if q == math.inf else (math.inf if q == 1 else q / (q - 1.0))
        self.kinked_off_axes = self.qstar == math.inf

    def _params(self) -> dict[str, Any]:
        return {"q": self.q}

    @property
    def is_convex(self) -> bool:
        return True

    def value(self, beta: Array, lam: Any) -> Array:
        """``lam ||beta||_{q*}``, computed as ``M (sum_j (|beta_j| / M)^{q*})^{1/q*}``,
        ``M = ||beta||_inf``, to avoid overflow; shape ``beta.shape[:-1]``."""
        xp = get_namespace(beta)
        a = xp.abs(beta)
        lam = _lam_row(lam, xp, beta)
        qs = self.qstar
        if qs == 1:
            return lam * xp.sum(a, axis=-1)
        m, u = _row_scale(a, xp)
        if qs == math.inf:
            return lam * m[..., 0]
        return lam * m[..., 0] * xp.sum(u**qs, axis=-1) ** (1.0 / qs)

    def grad(self, beta: Array, lam: Any, sigma: Array | None = None) -> Array:
        """``lam sigma_j (|beta_j| / ||beta||_{q*})^{q*-1}`` for ``1 < q* < inf``; ``lam sigma`` for
        ``q* = 1``; for ``q* = inf`` ``lam sigma_j / k`` on the ``k`` coordinates tied at the max
        (the minimum-norm subgradient when ``k > 1``).  All-zero rows: the limit along
        ``t sigma``."""
        xp = get_namespace(beta)
        sigma = _sigma(beta, sigma, xp)
        lam_col = _lam_col(lam, xp, beta)
        qs = self.qstar
        if qs == 1:
            return lam_col * _full(sigma, beta, xp)
        _, u = _row_scale(_abs_for_grad(beta, sigma, xp), xp)
        if qs == math.inf:
            return lam_col * sigma * _ties_at_max(u, xp)
        norm_pow = xp.sum(u**qs, axis=-1, keepdims=True) ** ((qs - 1.0) / qs)
        return lam_col * sigma * u ** (qs - 1.0) / xp.where(norm_pow > 0, norm_pow, 1.0)

    def prox(self, z: Array, lam: Any, step: Any) -> Array:
        """``argmin_b ||b - z||^2 / 2 + step lam ||b||_inf`` (``q = 1``, ``q* = inf`` only).

        By Moreau, ``z`` minus its projection onto the l1 ball of radius ``tau = step lam``:
        ``b_j = sign(z_j) min(|z_j|, s)`` with ``s >= 0`` solving
        ``sum_j max(|z_j| - s, 0) = tau`` (``s = 0`` when ``||z||_1 <= tau``), found from the
        sorted ``|z|`` (Duchi et al. 2008).  The coordinates clipped to ``s`` are tied *exactly*,
        so the subgradient ``(z - b) / step`` is supported on the maximisers of ``|b|``."""
        if self.qstar != math.inf:
            raise self._not_separable("prox (only the max norm, q = 1, has one here)")
        xp = get_namespace(z)
        tau = _lam_col(lam, xp, z) * _as_array_or_float(step, xp, z)
        a = xp.abs(z)
        srt = xp.flip(xp.sort(a, axis=-1), axis=-1)  # descending
        k = xp.astype(xp.arange(1, z.shape[-1] + 1), z.dtype)
        level = (xp.cumulative_sum(srt, axis=-1) - tau) / k
        # the largest k with srt_k > level_k (the active count); level_k is then the threshold
        count = xp.sum(xp.astype(srt > level, xp.int64), axis=-1, keepdims=True)
        sel = xp.astype(k == xp.astype(count, z.dtype), z.dtype)
        s = xp.maximum(xp.sum(sel * level, axis=-1, keepdims=True), 0.0)
        s = xp.where(count == 0, srt[..., :1], s)  # tau = 0: the identity
        return xp.sign(z) * xp.minimum(a, s)

    def orthant_hess(self, beta: Array, lam: Any, sigma: Array | None = None) -> Array | None:
        """For ``1 < q* < inf``: ``lam (q* - 1) / N [diag(v^{q*-2}) - (sigma v^{q*-1})
        (sigma v^{q*-1})']`` with ``N = ||beta||_{q*}``, ``v = |beta| / N`` (``H beta = 0``: the
        norm is positively homogeneous).  ``v^{q*-2}`` is capped at zero coefficients when
        ``q* < 2`` (infinite curvature there).  ``None`` for ``q* = 1`` and ``inf`` (piecewise
        linear); zero on all-zero rows."""
        qs = self.qstar
        if qs in (1.0, math.inf):
            return None
        xp = get_namespace(beta)
        sigma = _sigma(beta, sigma, xp)
        a = xp.abs(beta)
        m, u = _row_scale(a, xp)
        s = xp.sum(u**qs, axis=-1, keepdims=True) ** (1.0 / qs)  # ||u||_{q*} >= 1 off zero rows
        norm = m * s
        live = norm > 0
        v = u / xp.where(live, s, 1.0)
        d = xp.where(v > 0, xp.where(v > 0, v, 1.0) ** (qs - 2.0), 0.0 if qs >= 2 else 1e12)
        d = xp.clip(d, 0.0, 1e12)
        w = sigma * v ** (qs - 1.0)
        lam_c = _lam_col(lam, xp, beta)
        scale = xp.where(live, lam_c * (qs - 1.0) / xp.where(live, norm, 1.0), 0.0)
        p = beta.shape[-1]
        H = d[..., :, None] * xp.eye(p, dtype=beta.dtype) - w[..., :, None] * w[..., None, :]
        return scale[..., None] * H


class PowerPenalty(Penalty):
    """``P_lam(beta) = lam ||beta||_r^r / ||beta||_inf^{r-1}``, ``r >= 1`` (docs/theory.md s.6, the
    power scheme); 0 at ``beta = 0``.  ``r = 1`` is l1; convex only for ``r = 1`` (along
    ``(1, t)`` the slope drops from ``r`` to ``2 - r`` at ``t = 1``)."""

    name = "power"
    at_most_linear = True

    def __init__(self, r: float) -> None:
        self.r = _check_power_r(r)

    def _params(self) -> dict[str, Any]:
        return {"r": self.r}

    @property
    def is_convex(self) -> bool:
        return self.r == 1

    def value(self, beta: Array, lam: Any) -> Array:
        """``lam M sum_j (|beta_j| / M)^r``, ``M = ||beta||_inf`` (the same quantity, scaled)."""
        xp = get_namespace(beta)
        m, u = _row_scale(xp.abs(beta), xp)
        return _lam_row(lam, xp, beta) * m[..., 0] * xp.sum(u**self.r, axis=-1)

    def grad(self, beta: Array, lam: Any, sigma: Array | None = None) -> Array:
        """``lam sigma_j [r u_j^{r-1} - (r - 1) S I(j at the max) / k]``, ``u = |beta| / M``,
        ``S = sum_j u_j^r``, ``k`` = number of coordinates tied at the max (with ``k > 1`` this is
        the equal-split element of the Clarke subdifferential).  All-zero rows: the limit along
        ``t sigma``."""
        xp = get_namespace(beta)
        sigma = _sigma(beta, sigma, xp)
        r = self.r
        _, u = _row_scale(_abs_for_grad(beta, sigma, xp), xp)
        s = xp.sum(u**r, axis=-1, keepdims=True)
        # u**0 = 1 also at u = 0, which is the l1 right derivative when r = 1.
        g = r * u ** (r - 1.0) - (r - 1.0) * s * _ties_at_max(u, xp)
        return _lam_col(lam, xp, beta) * sigma * g

    def orthant_hess(self, beta: Array, lam: Any, sigma: Array | None = None) -> Array | None:
        """On the piece where coordinate ``m`` (the first largest) is the max, with
        ``M = |beta_m|``, ``u = |beta| / M`` and ``c = lam r (r - 1) / M``:
        ``H_jj = c u_j^{r-2}`` and ``H_jm = H_mj = -c sigma_j sigma_m u_j^{r-1}`` for ``j != m``,
        ``H_mm = c sum_{k != m} u_k^r`` (so ``H beta = 0``: ``P`` is positively homogeneous).
        ``u_j^{r-2}`` is capped at zero coefficients when ``r < 2``.  ``None`` for ``r = 1``;
        zero on all-zero rows."""
        r = self.r
        if r == 1:
            return None
        xp = get_namespace(beta)
        sigma = _sigma(beta, sigma, xp)
        m, u = _row_scale(xp.abs(beta), xp)
        p = beta.shape[-1]
        # one-hot of the first coordinate attaining the max (argmax is not in the Array API)
        idx = xp.astype(xp.arange(p), beta.dtype)
        first = xp.min(xp.where(u == 1.0, idx, float(p)), axis=-1, keepdims=True)
        e = xp.astype(idx == first, beta.dtype)
        rest = 1.0 - e
        d = xp.where(u > 0, xp.where(u > 0, u, 1.0) ** (r - 2.0), 0.0 if r >= 2 else 1e12)
        d = xp.clip(d, 0.0, 1e12) * rest + e * xp.sum(rest * u**r, axis=-1, keepdims=True)
        sm = xp.sum(e * sigma, axis=-1, keepdims=True)
        off = -(rest * sigma * sm * u ** (r - 1.0))  # H_jm for j != m, 0 at m
        eye = xp.eye(p, dtype=beta.dtype)
        H = (d[..., :, None] * eye + off[..., :, None] * e[..., None, :]
             + e[..., :, None] * off[..., None, :])
        lam_c = _lam_col(lam, xp, beta)
        scale = xp.where(m > 0, lam_c * r * (r - 1.0) / xp.where(m > 0, m, 1.0), 0.0)
        return scale[..., None] * H


class QuantizedPenalty(Penalty):
    """``P_lam(beta) = lam (1/b) sum_j max(1, round(b |beta_j| / ||beta||_inf)) |beta_j|``, integer
    ``b >= 1`` (docs/theory.md s.6, the quantized scheme); 0 at ``beta = 0``.

    ``round`` is the Array-API ``round``: half to even, as in the scheme's direction.  ``b = 1`` is
    l1.  For ``b >= 2`` the value jumps where ``b |beta_j| / ||beta||_inf`` crosses a half-integer
    above 1, so it is not convex (not even continuous).
    """

    name = "quantized"
    at_most_linear = True

    def __init__(self, b: int) -> None:
        self.b = _positive_int("b", b)

    def _params(self) -> dict[str, Any]:
        return {"b": self.b}

    @property
    def is_convex(self) -> bool:
        return self.b == 1

    def _levels(self, u: Array, xp: Any) -> Array:
        # b * u with u = |beta| / M, the same order of operations as Quantized.direction, so
        # a GLM gradient proportional to beta rounds to the same integers.
        return xp.maximum(xp.round(self.b * u), 1.0)

    @property
    def jumps(self) -> bool:  # type: ignore[override]
        return self.b > 1

    def zero_slope(self, lam: Any, like: Array) -> Array:
        """``lam / b``: a coordinate leaving 0 takes level 1 (docs/theory.md s.6)."""
        return _lam_col(lam, get_namespace(like), like) / self.b + 0.0 * like

    def scaled(self, beta: Array) -> Array:
        """``b |beta_j| / ||beta||_inf`` (0 on all-zero rows): the quantity that is rounded."""
        xp = get_namespace(beta)
        _, u = _row_scale(xp.abs(beta), xp)
        return self.b * u

    def levels(self, beta: Array) -> Array:
        """The integer levels ``max(1, round(b |beta_j| / ||beta||_inf))``, so that
        ``P_lam(beta) = lam sum_j levels_j |beta_j| / b``."""
        xp = get_namespace(beta)
        _, u = _row_scale(xp.abs(beta), xp)
        return self._levels(u, xp)

    def value(self, beta: Array, lam: Any) -> Array:
        xp = get_namespace(beta)
        a = xp.abs(beta)
        _, u = _row_scale(a, xp)
        return _lam_row(lam, xp, beta) * xp.sum(self._levels(u, xp) * a, axis=-1) / self.b

    def grad(self, beta: Array, lam: Any, sigma: Array | None = None) -> Array:
        """``lam sigma_j max(1, round(b |beta_j| / ||beta||_inf)) / b``, treating the rounded
        integers as locally constant (they are, off the half-integer boundaries, where ``P`` is
        locally linear and this is its exact gradient).  All-zero rows: the limit along
        ``t sigma``."""
        xp = get_namespace(beta)
        sigma = _sigma(beta, sigma, xp)
        _, u = _row_scale(_abs_for_grad(beta, sigma, xp), xp)
        return _lam_col(lam, xp, beta) * sigma * self._levels(u, xp) / self.b


def _l1_shift(pen: SeparablePenalty, lam: Any, p: int) -> Any:
    """``P = sum_j u_j |beta_j|`` with ``u_j = p'_lam(0+)`` (``lam w_j``; ``+inf`` for weights
    that hold a coefficient at zero) as the solvers' :class:`gfgsm.shifts.L1Shift`."""
    from .shifts import L1Shift

    xp = get_namespace(lam)
    R = lam.shape[0]
    u = pen.derivative(xp.zeros((R, p), dtype=xp.float64), lam)
    return L1Shift(u, xp.zeros((R,), dtype=xp.float64))


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

_REGISTRY: dict[str, type[Penalty]] = {
    "l1": L1,
    "weighted_l1": WeightedL1,
    "adaptive_l1": AdaptiveL1,
    "lr": Lr,
    "scad": SCAD,
    "mcp": MCP,
}


def _build(kind: str, registry: dict[str, type], name: str, params: dict[str, Any]) -> Any:
    """Instantiate ``registry[name](**params)``, turning signature mismatches into ValueError."""
    sig = inspect.signature(registry[name])
    accepted = list(sig.parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) or "none"
        raise ValueError(
            f"{kind} {name!r} got unexpected parameter(s) {', '.join(unknown)}; "
            f"it accepts: {allowed}"
        )
    required = [k for k, p in sig.parameters.items() if p.default is inspect.Parameter.empty]
    missing = [k for k in required if k not in params]
    if missing:
        raise ValueError(f"{kind} {name!r} needs parameter(s) {', '.join(missing)}")
    return registry[name](**params)


def get_penalty(name_or_obj: str | Penalty, **params: Any) -> Penalty:
    """A :class:`Penalty` from its registry name and parameters, or an instance passed through.

    Names: ``"l1"``, ``"weighted_l1"`` (``weights=``), ``"adaptive_l1"`` (``weights=``, +inf
    allowed), ``"lr"`` (``r=``), ``"scad"`` (``a=3.7``), ``"mcp"`` (``gamma=3.0``).

    Raises
    ------
    ValueError
        for an unknown name (listing the valid ones), missing or unexpected parameters, or an
        out-of-range parameter (naming it and its value).
    """
    if isinstance(name_or_obj, Penalty):
        if params:
            raise ValueError(
                f"parameters {sorted(params)} cannot be applied to the instance {name_or_obj!r}"
            )
        return name_or_obj
    if not isinstance(name_or_obj, str) or name_or_obj.lower() not in _REGISTRY:
        raise ValueError(f"unknown penalty {name_or_obj!r}; valid names: {', '.join(_REGISTRY)}")
    return _build("penalty", _REGISTRY, name_or_obj.lower(), params)
