"""Batched orthant-wise Newton for ``F(theta) = mean_i psi(y_i, eta_i, P(beta))``.

The problem (docs/theory.md s.3-4, any objective of :mod:`gfgsm.objectives`) is

    minimise_theta  F(theta) = (1/n) sum_i psi(y_i, eta_i, P(beta)),
    eta = Xt theta  (Xt = [1, X] with an intercept),   P(beta) = c0 + sum_j u_j |beta_j|,

with weights ``u_j >= 0`` (``u_j = lam`` for l1, ``lam w_j`` for weighted l1, the local linear
approximation weights for non-convex penalties; ``u_j = inf`` holds ``beta_j`` at zero).  On each
orthant of ``beta`` the map ``beta -> P`` is linear, so ``F`` is as smooth as ``psi``: for the
"sign" objectives (binomial G-FGSM, every PL) it is an ordinary GLM loss on the shifted design
``x_i - s_i u sign(beta)`` (the hint of the core issue).  The solver is the orthant-wise Newton
method (the Newton analogue of OWL-QN, Andrew & Gao 2007):

1. the *pseudo-gradient* ``pg`` is the minimum-norm element of the subdifferential of ``F``; its
   sup-norm is the KKT (stationarity) residual that is reported and tested against ``tol``;
2. the orthant ``sigma = sign(beta)``, or ``-sign(pg)`` for a zero coefficient that should move;
   coefficients at zero whose subgradient contains 0 are held at zero for the step;
3. a Newton step on the free coordinates with the exact Hessian of ``F`` on that orthant,
   ``H = Xt' D_ee Xt + Xt' d_eP v' + v d_eP' Xt + mean(psi_PP) v v'`` with ``v = u sigma``;
4. a backtracking (Armijo) line search along the path projected onto the orthant.

Where ``psi`` has kinks in ``eta`` (the exact worst case, gaussian G-FGSM) the Newton steps are
taken on the smooth upper bound of :meth:`Objective.smoothed_value` with smoothing level ``mu_s``,
which is divided by 100 each time the smoothed problem is solved to ``max(tol, mu_s)``, down to
``smooth_min``.  The reported ``kkt`` is then the stationarity residual of the smoothed problem
at ``smooth_min``, whose objective exceeds the true one by at most ``P * smooth_min``.

Every replication runs its own iteration (its own orthant, step length, smoothing level and
stopping time); the batch only shares the array operations, so a batched fit equals the
one-at-a-time fits.  No host round-trip happens inside an iteration except the scalar test
"has every replication stopped?".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._backend import get_namespace
from ..objectives import Objective
from ..shifts import L1Shift, Shift

__all__ = ["L1Shift", "OrthantNewtonResult", "Shift", "orthant_newton"]

_ARMIJO = 1e-4
_MAX_HALVINGS = 60
# Relative rounding allowance in the Armijo test: near the optimum the predicted decrease falls
# below the resolution of F itself, and a correct Newton step must not be refused for that.
_ROUNDING = 64 * 2.220446049250313e-16


@dataclass
class OrthantNewtonResult:
    """Solver output, all arrays batched over replications ``R``."""

    theta: Any  # (R, q)
    converged: Any  # (R,) bool
    n_iter: Any  # (R,) int
    kkt: Any  # (R,) sup-norm of the pseudo-gradient at the returned theta
    objective: Any  # (R,) F(theta) (unsmoothed)
    smooth: Any  # (R,) final smoothing level (0 where psi has no kinks)
    stalled: Any  # (R,) bool: stopped because the line search found no decrease


def _matvec(xp: Any, Xt: Any, theta: Any) -> Any:
    # Xt (n, q) shared or (R, n, q); theta (R, q) -> (R, n)
    if Xt.ndim == 2:
        return theta @ Xt.T
    return xp.matmul(Xt, theta[..., None])[..., 0]


def _rmatvec(xp: Any, Xt: Any, w: Any) -> Any:
    # Xt' w for w (R, n) -> (R, q)
    if Xt.ndim == 2:
        return w @ Xt
    return xp.matmul(w[:, None, :], Xt)[:, 0, :]


def _gram(xp: Any, Xt: Any, w: Any) -> Any:
    # Xt' diag(w) Xt for w (R, n) -> (R, q, q)
    XtT = xp.matrix_transpose(Xt) if Xt.ndim == 3 else Xt.T[None, ...]
    return xp.matmul(XtT * w[:, None, :], Xt)


def orthant_hessian(xp: Any, Xt: Any, parts: tuple[Any, ...], v: Any, HP: Any | None,
                    o: int) -> Any:
    """Hessian of ``F`` on an orthant, (R, q, q).

    ``H = Xt' diag(psi_ee / n) Xt + z v' + v z' + mean(psi_PP) v v' + kappa (0 + HP)``, with
    ``z = Xt' psi_eP / n``, ``v = grad P`` on the orthant (zero on the ``o`` unpenalized
    coordinates), ``kappa = mean(psi_P)`` and ``HP`` the penalty's own curvature (or ``None``).
    ``parts`` are the five partials of ``psi`` from :meth:`Objective.partials`.
    """
    n = parts[0].shape[-1]
    _, pP, pee, peP, pPP = parts
    H = _gram(xp, Xt, pee / n)
    z = _rmatvec(xp, Xt, peP / n)
    H = (
        H
        + z[:, :, None] * v[:, None, :]
        + v[:, :, None] * z[:, None, :]
        + xp.mean(pPP, axis=-1)[:, None, None] * v[:, :, None] * v[:, None, :]
    )
    if HP is None:
        return H
    R, q = v.shape
    HP = xp.mean(pP, axis=-1)[:, None, None] * HP
    top = xp.zeros((R, o, q), dtype=H.dtype)
    left = xp.zeros((R, q - o, o), dtype=H.dtype)
    return H + xp.concat([top, xp.concat([left, HP], axis=2)], axis=1)


def orthant_newton(
    Xt: Any,
    y: Any,
    objective: Objective,
    shift: Shift,
    theta0: Any,
    *,
    n_unpenalized: int,
    tol: float = 1e-9,
    max_iter: int = 200,
    smooth0: float = 1e-1,
    smooth_min: float = 1e-7,
) -> OrthantNewtonResult:
    """Minimise ``F`` for every replication at once.

    Parameters
    ----------
    Xt : (n, q) or (R, n, q) design; the first ``n_unpenalized`` columns (the intercept) are not
        penalized, the remaining ``p = q - n_unpenalized`` are the slopes ``beta``.
    y : (R, n) responses.
    objective : the per-observation ``psi``.
    shift : the shift ``P(beta)`` (for instance :class:`L1Shift`).
    theta0 : (R, q) starting point.
    tol : stopping level for the sup-norm of the pseudo-gradient (the KKT residual).
    smooth0, smooth_min : first and last smoothing levels when ``psi`` has kinks.
    """
    xp = get_namespace(Xt, y, theta0)
    R, q = theta0.shape
    o = n_unpenalized
    n = y.shape[-1]
    eye = xp.eye(q, dtype=theta0.dtype)
    kinks = objective.has_kinks
    smooth_min_arr = smooth_min if kinks else 0.0

    # The working set: the replications still iterating, with their own copies of the data.
    # When at most half of it is still active it is compacted (``take``), so stragglers do
    # not make every finished replication pay for their iterations.
    idx = xp.arange(R)
    Xw = Xt
    yw = y
    shiftw = shift
    objw = objective
    finished: list[tuple[Any, ...]] = []

    def P_of(th: Any) -> Any:
        return shiftw.value(th[:, o:])

    def fval(th: Any, sm: Any, eta: Any) -> Any:
        P = P_of(th)
        F = objw.smoothed_value(yw, eta, P, sm) if kinks else objw.value(yw, eta, P)
        return xp.where(xp.isnan(F), xp.inf, F)

    def pseudo_gradient(th: Any, sm: Any, eta: Any) -> tuple[Any, ...]:
        P = P_of(th)
        parts = objw.partials(yw, eta, P, sm)
        g = _rmatvec(xp, Xw, parts[0]) / n
        kappa = xp.mean(parts[1], axis=-1)
        b = th[:, o:]
        gs = g[:, o:]
        # On a nonzero slope P is differentiable; at zero its one-sided slopes are +-slope0.
        gP = shiftw.orthant_grad(b, xp.sign(b))
        ku = kappa[:, None] * shiftw.zero_slope
        right, left = gs + ku, gs - ku
        at_zero = xp.where(right < 0, right, xp.where(left > 0, left, 0.0))
        pgs = xp.where(b != 0, gs + kappa[:, None] * gP, at_zero)
        pgs = xp.where(shiftw.fixed, 0.0, pgs)
        pg = xp.concat([g[:, :o], pgs], axis=1)
        return pg, parts

    fixed_full = xp.concat([xp.zeros((R, o), dtype=xp.bool), shift.fixed], axis=1)
    theta = xp.where(fixed_full, 0.0, theta0)
    smooth = xp.full((R,), smooth0 if kinks else 0.0, dtype=theta0.dtype)
    active = xp.ones((R,), dtype=xp.bool)
    converged = xp.zeros((R,), dtype=xp.bool)
    n_iter = xp.zeros((R,), dtype=xp.int64)
    stalled = xp.zeros((R,), dtype=xp.bool)
    eta = _matvec(xp, Xw, theta)
    F = fval(theta, smooth, eta)
    pg, parts = pseudo_gradient(theta, smooth, eta)
    kkt = xp.max(xp.abs(pg), axis=-1)

    def retire(sel: Any) -> None:
        obj = objw.value(yw, eta, P_of(theta))
        finished.append(
            tuple(
                xp.take(a, sel, axis=0)
                for a in (idx, theta, converged, n_iter, kkt, obj, smooth, stalled)
            )
        )

    # Loop passes that only lower the smoothing level take no Newton step; they are bounded
    # by the number of levels, so max_iter counts Newton steps per replication.
    n_levels = 1 + math.ceil(math.log(max(smooth0 / smooth_min, 1.0), 100)) if kinks else 1
    for _ in range(max_iter + n_levels + 1):
        # Stage logic: a smoothing level is finished when its problem is solved to
        # max(tol, smooth); the last level must reach tol.
        stage_done = kkt <= xp.maximum(tol, smooth)
        final = smooth <= smooth_min_arr * (1 + 1e-12)
        newly_conv = active & stage_done & final & (kkt <= tol)
        converged = converged | newly_conv
        active = active & ~newly_conv
        lower = active & stage_done & ~final
        if bool(xp.any(lower)):
            smooth = xp.where(lower, xp.maximum(smooth / 100.0, smooth_min_arr), smooth)
            F = xp.where(lower, fval(theta, smooth, eta), F)
            pg2, parts2 = pseudo_gradient(theta, smooth, eta)
            pg = xp.where(lower[:, None], pg2, pg)
            parts = tuple(
                xp.where(lower[:, None], a2, a1) for a1, a2 in zip(parts, parts2, strict=True)
            )
            kkt = xp.max(xp.abs(pg), axis=-1)
            continue
        active = active & (n_iter < max_iter)
        n_active = int(xp.sum(xp.astype(active, xp.int64)))
        if n_active == 0:
            break
        W = theta.shape[0]
        if n_active <= W // 2 and W >= 16:
            retire(xp.nonzero(~active)[0])
            keep = xp.nonzero(active)[0]
            idx, theta, eta, F, pg, kkt, smooth, converged, n_iter, stalled = (
                xp.take(a, keep, axis=0)
                for a in (idx, theta, eta, F, pg, kkt, smooth, converged, n_iter, stalled)
            )
            parts = tuple(xp.take(a, keep, axis=0) for a in parts)
            active = xp.ones((n_active,), dtype=xp.bool)
            yw = xp.take(yw, keep, axis=0)
            Xw = xp.take(Xw, keep, axis=0) if Xw.ndim == 3 else Xw
            shiftw = shiftw.take(keep)
            objw = objw.take(keep)
        W = theta.shape[0]
        n_iter = n_iter + xp.astype(active, xp.int64)

        # --- orthant and Newton direction -------------------------------------------------
        b = theta[:, o:]
        pgs = pg[:, o:]
        sigma = xp.where(b != 0, xp.sign(b), -xp.sign(pgs))
        free = xp.concat([xp.ones((W, o), dtype=xp.bool), sigma != 0], axis=1)
        v = xp.concat([xp.zeros((W, o), dtype=theta.dtype), shiftw.orthant_grad(b, sigma)],
                      axis=1)
        H = orthant_hessian(xp, Xw, parts, v, shiftw.orthant_hess(b, sigma), o)
        mask2 = free[:, :, None] & free[:, None, :]
        H = xp.where(mask2, H, eye)
        # A tiny Levenberg term keeps singular systems (p > n, separated data) solvable; it
        # changes the path, never the fixed point (which is pg = 0).
        diag = xp.sum(H * eye, axis=-1)
        damp = 1e-10 * (1.0 + xp.max(xp.abs(diag), axis=-1))
        H = H + damp[:, None, None] * eye
        G = xp.where(free, pg, 0.0)
        d = -xp.linalg.solve(H, G[..., None])[..., 0]
        # A zero coefficient may only move into the orthant it was assigned.
        ds = d[:, o:]
        ds = xp.where((b == 0) & (ds * sigma <= 0), 0.0, ds)
        d = xp.concat([d[:, :o], ds], axis=1)
        slope = xp.sum(G * d, axis=-1)
        bad = ~(slope < 0)
        d = xp.where(bad[:, None], -G, d)

        # --- projected backtracking line search ---------------------------------------------
        t = 1.0
        accepted = ~active
        new_theta = theta
        new_eta = eta
        new_F = F
        for _ls in range(_MAX_HALVINGS):
            trial = theta + t * d
            ts = trial[:, o:]
            ts = xp.where((sigma != 0) & (xp.sign(ts) != sigma), 0.0, ts)
            trial = xp.concat([trial[:, :o], ts], axis=1)
            eta1 = _matvec(xp, Xw, trial)
            F1 = fval(trial, smooth, eta1)
            dec = xp.sum(G * (trial - theta), axis=-1)
            ok = F1 <= F + _ARMIJO * dec + _ROUNDING * xp.abs(F)
            take = ok & ~accepted
            new_theta = xp.where(take[:, None], trial, new_theta)
            new_eta = xp.where(take[:, None], eta1, new_eta)
            new_F = xp.where(take, F1, new_F)
            accepted = accepted | ok
            if bool(xp.all(accepted)):
                break
            t = t / 2.0
        # A replication whose line search failed is stuck: stop it, not converged.
        stuck = active & ~accepted
        stalled = stalled | stuck
        active = active & ~stuck
        theta, eta, F = new_theta, new_eta, new_F
        pg, parts = pseudo_gradient(theta, smooth, eta)
        kkt = xp.max(xp.abs(pg), axis=-1)

    # Replications still active hit max_iter (or converged on the last step).
    final = smooth <= smooth_min_arr * (1 + 1e-12)
    converged = converged | ((kkt <= tol) & final)
    retire(xp.arange(theta.shape[0]))
    cols = [xp.concat([piece[k] for piece in finished], axis=0) for k in range(8)]
    order = xp.argsort(cols[0])
    _, theta, converged, n_iter, kkt, obj, smooth, stalled = (
        xp.take(c, order, axis=0) for c in cols
    )
    return OrthantNewtonResult(theta, converged, n_iter, kkt, obj, smooth, stalled)
