"""Penalties induced by the gradient schemes (docs/theory.md s.6, table, third column):
:class:`DualNorm`, :class:`PowerPenalty`, :class:`QuantizedPenalty`.  They are not separable and
expose ``value`` and ``grad`` (and, where they have them, ``orthant_hess`` and ``prox``).
"""

from __future__ import annotations

import math
from typing import Any

from .._backend import get_namespace
from .._validation import norm_q, positive_int, power_r
from .base import (
    Array,
    Penalty,
    _as_array_or_float,
    _full,
    _lam_col,
    _lam_row,
    _sigma,
    _ties_at_max,
    row_scale,
)

__all__ = ["DualNorm", "PowerPenalty", "QuantizedPenalty"]

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
        self.q = norm_q(q)
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
        m, u = row_scale(a, xp)
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
        _, u = row_scale(_abs_for_grad(beta, sigma, xp), xp)
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
        m, u = row_scale(a, xp)
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
        self.r = power_r(r)

    def _params(self) -> dict[str, Any]:
        return {"r": self.r}

    @property
    def is_convex(self) -> bool:
        return self.r == 1

    def value(self, beta: Array, lam: Any) -> Array:
        """``lam M sum_j (|beta_j| / M)^r``, ``M = ||beta||_inf`` (the same quantity, scaled)."""
        xp = get_namespace(beta)
        m, u = row_scale(xp.abs(beta), xp)
        return _lam_row(lam, xp, beta) * m[..., 0] * xp.sum(u**self.r, axis=-1)

    def grad(self, beta: Array, lam: Any, sigma: Array | None = None) -> Array:
        """``lam sigma_j [r u_j^{r-1} - (r - 1) S I(j at the max) / k]``, ``u = |beta| / M``,
        ``S = sum_j u_j^r``, ``k`` = number of coordinates tied at the max (with ``k > 1`` this is
        the equal-split element of the Clarke subdifferential).  All-zero rows: the limit along
        ``t sigma``."""
        xp = get_namespace(beta)
        sigma = _sigma(beta, sigma, xp)
        r = self.r
        _, u = row_scale(_abs_for_grad(beta, sigma, xp), xp)
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
        m, u = row_scale(xp.abs(beta), xp)
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
        self.b = positive_int("b", b, integral_float=True)

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
        _, u = row_scale(xp.abs(beta), xp)
        return self.b * u

    def levels(self, beta: Array) -> Array:
        """The integer levels ``max(1, round(b |beta_j| / ||beta||_inf))``, so that
        ``P_lam(beta) = lam sum_j levels_j |beta_j| / b``."""
        xp = get_namespace(beta)
        _, u = row_scale(xp.abs(beta), xp)
        return self._levels(u, xp)

    def value(self, beta: Array, lam: Any) -> Array:
        xp = get_namespace(beta)
        a = xp.abs(beta)
        _, u = row_scale(a, xp)
        return _lam_row(lam, xp, beta) * xp.sum(self._levels(u, xp) * a, axis=-1) / self.b

    def grad(self, beta: Array, lam: Any, sigma: Array | None = None) -> Array:
        """``lam sigma_j max(1, round(b |beta_j| / ||beta||_inf)) / b``, treating the rounded
        integers as locally constant (they are, off the half-integer boundaries, where ``P`` is
        locally linear and this is its exact gradient).  All-zero rows: the limit along
        ``t sigma``."""
        xp = get_namespace(beta)
        sigma = _sigma(beta, sigma, xp)
        _, u = row_scale(_abs_for_grad(beta, sigma, xp), xp)
        return _lam_col(lam, xp, beta) * sigma * self._levels(u, xp) / self.b
