"""Batched proximal gradient with a subgradient certificate, for kinked convex shifts.

The problem is that of :mod:`gfgsm.solvers.orthant_newton`,

    minimise_theta  F(theta) = (1/n) sum_i psi(y_i, eta_i, P(beta)),

for a convex shift ``P`` that is kinked away from the coordinate hyperplanes (the max norm
``lam ||beta||_inf`` of the l_q scheme with ``q = 1``: kinks wherever two ``|beta_j|`` tie at the
max), where an orthant-wise Newton method cannot reach a small pseudo-gradient.  Each step
freezes ``c = mean_i psi_P`` (``> 0``: ``psi`` increases with the shift) and takes

    theta+ = prox_{t c P}(theta - t g),      g = Xt' psi_eta / n,

with the step ``t = 1 / L``, ``L`` the largest eigenvalue of the Hessian of ``F`` at the start
on its smooth piece (the solver is a finisher: it starts next to the optimum).  The prox's
optimality condition hands over a subgradient: ``xi = (beta - t g_beta - beta+) / (t c)`` lies in
``dP(beta+)``, so the certificate at ``theta+`` is the residual

    r = (g_0(theta+), g_beta(theta+) + c(theta+) xi),     kkt = ||r||_inf,

an upper bound on the minimum-norm subgradient of ``F`` at ``theta+`` (docs/theory.md s.6,
"Kinked and jumping scheme penalties").  The prox clips tied coordinates to exactly one value,
so ``xi`` is supported on the exact maximisers of ``|beta+|``.  Only objectives without kinks in
``eta`` are handled (``Objective.has_kinks`` false: every binomial G-FGSM objective); the others
keep their orthant-Newton result and status.
"""

from __future__ import annotations

from typing import Any

from .._backend import get_namespace
from ..objectives import Objective
from .orthant_newton import _ROUNDING, _matvec, _rmatvec, orthant_hessian

__all__ = ["prox_gradient"]

def prox_gradient(
    Xt: Any,
    y: Any,
    objective: Objective,
    penalty: Any,
    lam: Any,
    theta0: Any,
    *,
    n_unpenalized: int,
    tol: float,
    max_iter: int = 5000,
    active: Any = None,
    kkt0: Any = None,
) -> tuple[Any, Any, Any, Any]:
    """Run proximal gradient from ``theta0`` until ``kkt <= tol`` or ``max_iter`` steps.

    ``penalty.prox(z, lam, step)`` must be the exact prox of ``step * P_lam``.  Only the rows
    of ``active`` (default: all) move; the others keep ``theta0`` and ``kkt0``.  Returns
    ``(theta, kkt, n_iter, converged)`` batched over replications; ``theta`` is the last
    iterate ``theta+`` of each row and ``kkt`` its certified residual.
    """
    if objective.has_kinks:
        raise ValueError("prox_gradient needs psi without kinks in eta")
    xp = get_namespace(Xt, y, theta0)
    R = theta0.shape[0]
    o = n_unpenalized
    n = y.shape[-1]

    def value_grad(theta: Any) -> tuple[Any, Any, Any]:
        eta = _matvec(xp, Xt, theta)
        P = penalty.value(theta[:, o:], lam)
        F = objective.value(y, eta, P)
        pe, pP, *_ = objective.partials(y, eta, P)
        return F, _rmatvec(xp, Xt, pe) / n, xp.mean(pP, axis=-1)

    def step(theta: Any, g: Any, c: Any, t: Any) -> tuple[Any, Any]:
        z = theta - t[:, None] * g
        tc = (t * c)[:, None]
        b = penalty.prox(z[:, o:], lam, tc)
        xi = (z[:, o:] - b) / tc
        return xp.concat([z[:, :o], b], axis=-1), xi

    theta = theta0
    F, g, c = value_grad(theta)
    if bool(xp.any(c <= 0)):
        raise ValueError("prox_gradient needs psi increasing in the shift (mean psi_P > 0)")
    t = 1.0 / _curvature(xp, Xt, y, objective, penalty, lam, theta, o)
    if active is None:
        active = xp.ones((R,), dtype=xp.bool)
    kkt = xp.full((R,), xp.inf, dtype=theta.dtype)
    if kkt0 is not None:
        kkt = xp.where(active, kkt, kkt0)
    n_iter = xp.zeros((R,), dtype=xp.int64)
    for _ in range(max_iter):
        # The step 1/L of the local curvature L needs no line search; comparing values of F
        # would not work near the optimum, where the decrease falls below F's rounding.  A
        # step that raises F beyond rounding is refused and the row's step halved for good.
        cand, xi = step(theta, g, c, t)
        Fc, gc, cc = value_grad(cand)
        ok = Fc <= F + _ROUNDING * xp.abs(F)
        moved = active & ok
        t = xp.where(active & ~ok, t / 2.0, t)
        theta = xp.where(moved[:, None], cand, theta)
        F = xp.where(moved, Fc, F)
        g = xp.where(moved[:, None], gc, g)
        c = xp.where(moved, cc, c)
        r = xp.concat([gc[:, :o], gc[:, o:] + cc[:, None] * xi], axis=-1)
        kkt = xp.where(moved, xp.max(xp.abs(r), axis=-1), kkt)
        n_iter = n_iter + xp.astype(moved, xp.int64)
        active = active & (kkt > tol)
        if not bool(xp.any(active)):
            break
    return theta, kkt, n_iter, kkt <= tol


def _curvature(xp: Any, Xt: Any, y: Any, objective: Objective, penalty: Any, lam: Any,
               theta: Any, o: int) -> Any:
    """The largest eigenvalue of ``F``'s Hessian at ``theta`` with ``P`` linearised along
    ``grad P`` (the max norm has no curvature of its own), shape ``(R,)``."""
    eta = _matvec(xp, Xt, theta)
    beta = theta[:, o:]
    parts = objective.partials(y, eta, penalty.value(beta, lam))
    v = xp.concat([xp.zeros_like(theta[:, :o]), penalty.grad(beta, lam)], axis=-1)
    H = orthant_hessian(xp, Xt, parts, v, None, o)
    L = xp.linalg.eigvalsh(H)[:, -1]
    return xp.where(L > 0, L, 1.0)
