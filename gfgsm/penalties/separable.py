"""Separable penalties ``P_lam(beta) = sum_j p_lam(|beta_j|)`` (docs/theory.md s.3): :class:`L1`,
:class:`WeightedL1` / :class:`AdaptiveL1` (with :func:`adaptive_weights`), :class:`Lr`,
:class:`SCAD`, :class:`MCP`.  They expose the scalar function ``p_lam``, its derivatives and its
proximal map.
"""

from __future__ import annotations

import math
from typing import Any

from .._backend import asarray, get_namespace
from .._validation import real_range
from .base import (
    Array,
    SeparablePenalty,
    _as_array_or_float,
    _full,
    _lam_col,
    _safe_positive,
)
from .prox import _check_step_below, _prox_bridge_scaled, _soft_threshold

__all__ = ["L1", "MCP", "SCAD", "AdaptiveL1", "Lr", "WeightedL1", "adaptive_weights"]


def _fmt(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() else repr(x)


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
    gamma = real_range("gamma", gamma, 0, math.inf, lo_open=True, hi_open=True)
    if eps is not None:
        eps = real_range("eps", eps, 0, math.inf, lo_open=True, hi_open=True, note=" (or be None)")
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
        self.r = real_range("r", r, 0, 2, lo_open=True, fmt=_fmt)

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
        self.a = real_range("a", a, 2, math.inf, lo_open=True, hi_open=True)

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
        self.gamma = real_range("gamma", gamma, 1, math.inf, lo_open=True, hi_open=True)

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


def _l1_shift(pen: SeparablePenalty, lam: Any, p: int) -> Any:
    """``P = sum_j u_j |beta_j|`` with ``u_j = p'_lam(0+)`` (``lam w_j``; ``+inf`` for weights
    that hold a coefficient at zero) as the solvers' :class:`gfgsm.shifts.L1Shift`."""
    from ..shifts import L1Shift

    xp = get_namespace(lam)
    R = lam.shape[0]
    u = pen.derivative(xp.zeros((R, p), dtype=xp.float64), lam)
    return L1Shift(u, xp.zeros((R,), dtype=xp.float64))
