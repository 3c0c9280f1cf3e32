"""Local linear approximation (LLA) for non-convex separable penalties (SCAD, MCP, lr with r < 1).

Zou & Li (2008): for a concave ``p_lam`` on ``[0, inf)``,
``p_lam(|b|) <= p_lam(|b_k|) + p'_lam(|b_k|) (|b| - |b_k|)`` with equality at ``b_k``.  Because
every objective of :mod:`gfgsm.objectives` is non-decreasing in the shift ``P`` (PL adds it;
G-FGSM moves the predictor against the residual by it), replacing ``P`` by this weighted-l1
majoriser gives a convex (or, for poisson FGSM, orthant-smooth) subproblem whose minimiser does
not increase the objective: an MM algorithm.  At a fixed point the subproblem's KKT conditions
are the first-order (Clarke) stationarity conditions of the non-convex problem, so the
subproblem's KKT residual is reported as the local stationarity residual.
"""

from __future__ import annotations

from typing import Any

from .._backend import get_namespace
from ..objectives import Objective
from .orthant_newton import L1Shift, OrthantNewtonResult, orthant_newton

__all__ = ["lla"]


def lla_weights(penalty: Any, beta: Any, lam: Any) -> tuple[Any, Any]:
    """Weights ``u_j = p'_lam(|beta_j|)`` and offset ``c0 = sum_j p_lam(|b_j|) - u_j |b_j|``."""
    xp = get_namespace(beta)
    t = xp.abs(beta)
    u = penalty.derivative(t, lam)
    # u = inf at t = 0 (lr, r < 1): the zero stays a zero and contributes nothing to c0.
    contrib = xp.where(t > 0, penalty.pointwise(t, lam) - xp.where(t > 0, u, 0.0) * t, 0.0)
    return u, xp.sum(contrib, axis=-1)


def lla(
    Xt: Any,
    y: Any,
    objective: Objective,
    penalty: Any,
    lam: Any,
    theta0: Any,
    *,
    n_unpenalized: int,
    tol: float,
    max_iter: int,
    lla_max_iter: int = 5,
    lla_tol: float = 1e-6,
    smooth0: float = 1e-1,
) -> tuple[OrthantNewtonResult, Any, Any]:
    """Iterate weighted-l1 subproblems from ``theta0`` until the slopes stop moving.

    LLA converges only linearly where a penalty is strictly concave (the quadratic middle of
    SCAD/MCP), so it is used here to reach the basin of a local minimiser; the caller polishes
    with Newton steps on the non-convex problem itself.  Returns the last subproblem's result
    (with ``n_iter`` summed over the subproblems), the number of LLA steps per replication, and a
    boolean ``(R,)`` array telling which replications reached ``max|b_{k+1} - b_k| <= lla_tol``.
    """
    xp = get_namespace(Xt, y, theta0)
    o = n_unpenalized
    theta = theta0
    R = theta0.shape[0]
    steps = xp.zeros((R,), dtype=xp.int64)
    settled = xp.zeros((R,), dtype=xp.bool)
    res = None
    n_iter = xp.zeros((R,), dtype=xp.int64)
    for _ in range(lla_max_iter):
        u, c0 = lla_weights(penalty, theta[:, o:], lam)
        res = orthant_newton(
            Xt, y, objective, L1Shift(u, c0), theta, n_unpenalized=o, tol=tol,
            max_iter=max_iter, smooth0=smooth0,
        )
        n_iter = n_iter + xp.where(settled, 0, res.n_iter)
        change = xp.max(xp.abs(res.theta - theta), axis=-1)
        # Settled replications keep their value; the others take the new iterate.
        new = xp.where(settled[:, None], theta, res.theta)
        steps = steps + xp.astype(~settled, xp.int64)
        settled = settled | (change <= lla_tol)
        theta = new
        if bool(xp.all(settled)):
            break
    assert res is not None
    res.theta = theta
    res.n_iter = n_iter
    return res, steps, settled
