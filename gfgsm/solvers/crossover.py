"""Crossover: from the smoothed solution of a kinked problem to its exact KKT point.

The exact worst case (docs/theory.md s.2) has a kink wherever an observation's adversarial residual
``rho_i`` vanishes; :func:`~gfgsm.solvers.orthant_newton.orthant_newton` minimises a smooth
upper bound with smoothing ``mu_s``, whose minimiser is within ``O(mu_s)`` of the exact one and
whose gradient can only be resolved to about ``P |y| eps / mu_s``.  At that point the
observations at a kink are identified (``|rho_i| / sqrt(rho_i^2 + mu_s^2) < 1 - 1e-4``, i.e.
``|rho_i| < 70 mu_s``), and Newton's method is applied to the exact optimality system of the
nonsmooth problem restricted to that active set,

    grad_theta L(theta, nu) = 0  (free coordinates),   rho_i(theta) = 0  (i at a kink),

with ``L = (1/n) sum_i psi_i`` where a kinked term is ``(l_- + l_+)/2 + P nu_i rho_i``
(``nu_i`` a subgradient of ``|rho|`` at 0) and zero slopes held at zero.  The result is kept
only if it is a KKT point of the original problem: ``|nu_i| <= 1``, no other residual and no
free slope changed sign, and each zero slope satisfies ``|g_j| <= kappa p'(0+)``.  Its residual
(the sup-norm of the minimum-norm subgradient, with the kinks exact to rounding) is then the
reported KKT residual; otherwise the smoothed solution is kept as it was.

With observation weights the terms of ``L`` are ``c_i psi_i`` (``c_i = n w_i / sum w``,
:meth:`Objective.weight_scale`): ``nu_i`` still multiplies ``|rho_i|`` inside ``psi_i`` and so
still lies in ``[-1, 1]``; the constraint row of a kink is scaled by its ``c_i`` to keep the
system symmetric, and an observation of weight 0 (no term at all) is never a kink.
"""

from __future__ import annotations

from typing import Any

from .._backend import get_namespace
from ..objectives import Objective
from .orthant_newton import Shift, _matvec, _rmatvec, orthant_hessian

__all__ = ["crossover"]

_TIE = 1.0 - 1e-4


def _gather_rows(xp: Any, Xt: Any, idx: Any) -> Any:
    """Rows ``idx`` (W, k) of the design: (W, k, q)."""
    W, k = idx.shape
    q = Xt.shape[-1]
    if Xt.ndim == 2:
        return xp.reshape(xp.take(Xt, xp.reshape(idx, (-1,)), axis=0), (W, k, q))
    return xp.take_along_axis(Xt, xp.broadcast_to(idx[:, :, None], (W, k, q)), axis=1)


def crossover(
    Xt: Any,
    y: Any,
    objective: Objective,
    shift: Shift,
    theta: Any,
    smooth: Any,
    *,
    n_unpenalized: int,
    max_newton: int = 8,
) -> tuple[Any, Any, Any]:
    """Polish ``theta`` (R, q) to the exact KKT point of the kinked problem where possible.

    Returns ``(theta, kkt, accepted)``: the polished estimates where ``accepted`` (R,) and the
    input elsewhere, and the exact KKT residual of the accepted ones (``inf`` elsewhere).
    """
    xp = get_namespace(Xt, y, theta)
    o = n_unpenalized
    R, q = theta.shape
    n = y.shape[-1]
    alpha = objective.clean_weight
    b0 = theta[:, o:]
    sigma = xp.sign(b0)
    free = xp.concat([xp.ones((R, o), dtype=xp.bool), sigma != 0], axis=1)

    eta = _matvec(xp, Xt, theta)
    P = shift.value(b0)
    rho0 = objective.family.adversarial_residual(y, eta, P[:, None])[0]
    sm = smooth[:, None]
    h1 = rho0 / xp.sqrt(rho0 * rho0 + sm * sm)
    # A vanishing residual is a kink only when the shift is positive (P = 0: no adversary).
    ties = (xp.abs(h1) < _TIE) & (P > 0)[:, None]
    wscale = objective.weight_scale()  # c_i = n w_i / sum w, or None (c = 1)
    # Observations of weight 0 have no term: never a kink, and their residuals may change sign.
    dropped = xp.zeros_like(ties) if wscale is None else wscale == 0
    ties = ties & ~dropped
    counts = xp.sum(xp.astype(ties, xp.int64), axis=-1)
    # Generically at most q residuals vanish together; more is degenerate and not polished.
    kmax = min(int(xp.max(counts)), q) if R else 0
    # The first kmax indices of each row, ties first (a stable sort keeps observation order).
    order = xp.argsort(xp.astype(~ties, xp.int8), axis=-1, stable=True)
    tidx = order[:, :kmax]
    slot = xp.arange(kmax)[None, :] < xp.minimum(counts, kmax)[:, None]  # (R, kmax) real ties
    too_many = counts > kmax
    nu = xp.take_along_axis(h1, tidx, axis=1)
    nu_full = h1  # multipliers of all ties (non-ties ignore it)
    Xk = _gather_rows(xp, Xt, tidx)  # (R, k, q)
    ck = None if wscale is None else xp.take_along_axis(wscale, tidx, axis=1)  # (R, k)
    eye = xp.eye(q + kmax, dtype=theta.dtype)
    th = theta

    def system(th: Any, nu_full: Any) -> tuple[Any, ...]:
        b = th[:, o:]
        eta = _matvec(xp, Xt, th)
        P = shift.value(b)
        *parts, rho, re, rP = objective.tie_partials(y, eta, P, ties, nu_full)
        v = xp.concat([xp.zeros((R, o), dtype=th.dtype), shift.orthant_grad(b, sigma)], axis=1)
        kappa = xp.mean(parts[1], axis=-1)
        g = _rmatvec(xp, Xt, parts[0]) / n + kappa[:, None] * v
        H = orthant_hessian(xp, Xt, tuple(parts), v, shift.orthant_hess(b, sigma), o)
        rk = xp.take_along_axis(rho, tidx, axis=1)
        rek = xp.take_along_axis(re, tidx, axis=1)
        rPk = xp.take_along_axis(rP, tidx, axis=1)
        # The constraint is written c_k = (1 - alpha) w_k P rho_k / n = dL/dnu_k (w_k the kink's
        # weight scale ``ck``, 1 without weights), so that its Jacobian B is exactly the cross
        # block d g / d nu_k: the system is symmetric.
        c = (1.0 - alpha) / n * P[:, None] * rk
        B = (1.0 - alpha) / n * (P[:, None, None] * rek[:, :, None] * Xk
                                 + (rk + P[:, None] * rPk)[:, :, None] * v[:, None, :])
        if ck is not None:
            c, B = ck * c, ck[:, :, None] * B
        B = xp.where(slot[:, :, None] & free[:, None, :], B, 0.0)
        H = xp.where(free[:, :, None] & free[:, None, :], H, xp.eye(q, dtype=H.dtype))
        # Quasi-definite regularisation (+delta on H, -delta on the zero block) keeps the
        # system solvable when the kinks are dependent (exact fits, n < q); it perturbs the
        # Newton step, not the solution, which is certified afterwards.
        scale = 1.0 + xp.max(xp.abs(xp.sum(H * xp.eye(q, dtype=H.dtype), axis=-1)), axis=-1)
        delta = 1e-13 * scale
        top = xp.concat([H + delta[:, None, None] * xp.eye(q, dtype=H.dtype),
                         xp.matrix_transpose(B)], axis=2)
        bottom = xp.concat([B, -delta[:, None, None] * xp.eye(kmax, dtype=H.dtype)], axis=2)
        K = xp.concat([top, bottom], axis=1)
        pad = xp.concat([xp.zeros((R, q), dtype=xp.bool), ~slot], axis=1)
        K = xp.where(pad[:, :, None] | pad[:, None, :], eye, K)
        rhs = xp.concat([xp.where(free, g, 0.0), xp.where(slot, c, 0.0)], axis=1)
        return K, rhs, g, kappa, rho

    for _ in range(max_newton):
        K, rhs, g, kappa, rho = system(th, nu_full)
        try:
            step = -xp.linalg.solve(K, rhs[..., None])[..., 0]
        except Exception:  # LinAlgError is backend specific; keep the smoothed solution
            return theta, xp.full((R,), xp.inf, dtype=theta.dtype), xp.zeros((R,), dtype=xp.bool)
        th = th + xp.where(free, step[:, :q], 0.0)
        nu = nu + xp.where(slot, step[:, q:], 0.0)
        # scatter nu back to the per-observation array (ties are at tidx)
        nu_full = _scatter(xp, nu_full, tidx, nu, slot)

    K, rhs, g, kappa, rho = system(th, nu_full)
    b = th[:, o:]
    stat = xp.max(xp.abs(xp.where(free, g, 0.0)), axis=-1)
    at_zero = ~free[:, o:]
    slack = xp.abs(g[:, o:]) - kappa[:, None] * shift.zero_slope
    zero_viol = xp.max(xp.where(at_zero, xp.maximum(slack, 0.0), 0.0), axis=-1)
    kkt = xp.maximum(stat, zero_viol)
    ok = (
        xp.all(xp.where(slot, xp.abs(nu) <= 1.0 + 1e-10, True), axis=-1)
        & xp.all(xp.where(ties | dropped, True, xp.sign(rho) == xp.sign(rho0)), axis=-1)
        & xp.all(xp.where(free[:, o:], xp.sign(b) == sigma, True), axis=-1)
        & ~too_many
        & xp.all(xp.isfinite(th), axis=-1)
    )
    theta_out = xp.where(ok[:, None], th, theta)
    kkt = xp.where(ok, kkt, xp.inf)
    return theta_out, kkt, ok


def _scatter(xp: Any, full: Any, idx: Any, vals: Any, slot: Any) -> Any:
    """``full`` (R, n) with ``full[r, idx[r, k]] = vals[r, k]`` where ``slot[r, k]``.

    The Array API has no scatter; a one-hot comparison does it for the few (<= q) kinks.
    """
    n = full.shape[-1]
    hit = (idx[:, :, None] == xp.arange(n)[None, None, :]) & slot[:, :, None]  # (R, k, n)
    upd = xp.sum(xp.where(hit, vals[:, :, None], 0.0), axis=1)
    any_hit = xp.any(hit, axis=1)
    return xp.where(any_hit, upd, full)
