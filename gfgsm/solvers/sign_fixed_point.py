"""Frozen-sign iterations for the FGSM objective when its sign depends on theta (poisson).

For poisson, ``s_i = sign(y_i - mu_i(theta))`` changes with ``theta`` and ``Q_n`` jumps where it
does (docs/theory.md s.2), so no gradient method applies to ``Q_n`` itself.  With the signs frozen,
``Q_n`` is smooth on each orthant of ``beta``; we solve that problem, recompute the signs at its
solution, and repeat until they no longer change.  A fixed point is a point whose own signs give
a problem it solves: a local minimiser of ``Q_n`` inside the region where the signs are
constant.

Such a point need not exist: the per-observation loss jumps *up* when ``mu_i`` crosses ``y_i``
from below, so the infimum of ``Q_n`` can sit on a jump, where it is not attained; the iteration
then cycles between the two sign patterns of that observation, with estimates that differ by
``O(lam / n)``.  Replications whose signs keep changing after ``max_rounds`` are reported as not
converged (status ``"sign_cycle"``), never silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .._backend import get_namespace
from ..objectives import Objective
from .orthant_newton import OrthantNewtonResult

__all__ = ["sign_fixed_point"]


def sign_fixed_point(
    solve: Callable[[Objective, Any], OrthantNewtonResult],
    objective: Objective,
    eta_of: Callable[[Any], Any],
    y: Any,
    theta0: Any,
    *,
    max_rounds: int = 30,
) -> tuple[OrthantNewtonResult, Any]:
    """Alternate ``s <- sign(y - mu(eta(theta)))`` and ``theta <- solve(objective with s)``.

    Returns the last result (``n_iter`` summed over rounds, ``theta`` of each replication at
    its own fixed point) and an ``(R,)`` boolean array: the signs at ``theta`` equal the frozen
    signs that produced it.
    """
    xp = get_namespace(y, theta0)
    fam = objective.family
    theta = theta0
    R = theta0.shape[0]
    stable = xp.zeros((R,), dtype=xp.bool)
    n_iter = xp.zeros((R,), dtype=xp.int64)
    signs = fam.residual_sign(y, eta_of(theta))
    res = None
    for _ in range(max_rounds):
        res = solve(replace(objective, signs=signs), theta)
        n_iter = n_iter + xp.where(stable, 0, res.n_iter)
        new_signs = fam.residual_sign(y, eta_of(res.theta))
        same = xp.all(new_signs == signs, axis=-1)
        keep = stable[:, None]
        theta = xp.where(keep, theta, res.theta)
        signs = xp.where(keep, signs, new_signs)
        stable = stable | same
        if bool(xp.all(stable)):
            break
    assert res is not None
    res.theta = theta
    res.n_iter = n_iter
    return res, stable
