"""Proximal-map helpers of the separable penalties: soft thresholding, the safeguarded Newton root
finder of the bridge (lr) prox, and the step-size check of the closed-form SCAD and MCP maps.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from .base import Array, _safe_positive

#: Newton/bisection iterations allowed in the lr proximal maps (each halves the bracket at worst,
#: so 100 steps reach the float64 resolution from any starting bracket).
_PROX_MAX_ITER = 100


def _soft_threshold(z: Array, thr: Any, xp: Any) -> Array:
    return xp.sign(z) * xp.maximum(xp.abs(z) - thr, 0.0)


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


def _max_of(x: Any, xp: Any) -> float:
    # A host sync when x is an array; only used to validate prox steps.
    if isinstance(x, numbers.Real):
        return float(x)
    return float(xp.max(x))


def _check_step_below(step: Any, bound: float, what: str, xp: Any) -> None:
    smax = _max_of(step, xp)
    if not smax < bound:
        raise ValueError(
            f"the {what} proximal map is a closed form only for step < {bound:g}, "
            f"got step = {smax:g}"
        )
