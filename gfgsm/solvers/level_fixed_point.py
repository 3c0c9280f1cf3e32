"""Level-consistent points of a jumping penalty: the quantized scheme's ``P`` (docs/theory.md s.6).

The quantized penalty is a weighted l1 norm whose weights are levels of ``beta`` itself,

    P(beta) = lam sum_j w_j(beta) |beta_j|,   w_j = max(1, round(b |beta_j| / ||beta||_inf)) / b,

piecewise constant in ``beta`` and jumping where ``b |beta_j| / ||beta||_inf`` crosses a
half-integer above 1.  Off those boundaries ``Q_n`` *is* the convex weighted-l1 objective with
the weights of the point.  What is computed is a **level-consistent point**: ``theta`` that
minimises the weighted-l1 objective ``F_w`` (certified by its KKT residual) for weights ``w`` in
the closed level map ``K(beta)``, which is the level itself off the boundaries and the whole
interval between the two adjacent levels on a boundary (the closure of its graph, as
``[-1, 1]`` closes ``sign`` at 0).

1. Frozen levels: ``w <- K(beta)``, ``theta <- argmin F_w``, until the levels repeat.  A fixed
   point off the boundaries is a local minimiser of ``Q_n`` (it is convex ``F_w`` nearby).
2. Where the levels 2-cycle on a single coordinate ``j`` between ``m`` and ``m + 1``, the
   infimum sits on the jump: ``h(w_j) = b u_j(theta(w)) - (m + 1/2)`` changes sign on
   ``[m / b, (m + 1) / b]`` and is continuous (``F_w`` is strictly convex), so regula falsi
   (Illinois) finds ``w_j`` with ``theta(w)`` on the boundary: a level-consistent point there.
   ``Q_n`` itself has no minimiser at such a point (it takes one of the two levels there).

Rows whose levels cycle on several coordinates are left unconverged (status
``"level_cycle"``), never silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._backend import get_namespace

__all__ = ["level_fixed_point"]

#: ``|b u_j - (m + 1/2)|`` below which a coordinate counts as on its boundary.  Each weighted
#: fit is certified to a KKT residual ``tol`` (1e-9 by default), which pins ``beta`` only to
#: about ``tol`` over the curvature of ``F_w`` (O(0.1) here), so ``b u_j`` to about
#: ``b tol / (0.1 ||beta||_inf)`` ~ 1e-7 for ``b = 10``: the boundary test cannot be sharper
#: than the solution it tests, and 1e-6 leaves a factor of 10.
BOUNDARY_TOL = 1e-6


def level_fixed_point(
    solve: Callable[[Any, Any], Any],
    levels: Callable[[Any], Any],
    scaled: Callable[[Any], Any],
    b: int,
    theta0: Any,
    o: int,
    *,
    max_rounds: int = 30,
    max_root_steps: int = 60,
) -> tuple[Any, Any, Any]:
    """Return ``(result, weights, consistent)``.

    ``solve(w, theta)`` fits the weighted-l1 problem with weights ``w`` (R, p) from ``theta``
    and returns an orthant-Newton result; ``levels(beta)`` the integer levels
    ``max(1, round(b u))``; ``scaled(beta)`` is ``b u = b |beta| / ||beta||_inf``.
    ``consistent`` (R,) is true where the weights lie in the closed level map of the result.
    """
    xp = get_namespace(theta0)
    R = theta0.shape[0]
    theta = theta0
    lv = levels(theta[:, o:])
    prev = lv
    stable = xp.zeros((R,), dtype=xp.bool)
    res = None
    n_iter = xp.zeros((R,), dtype=xp.int64)
    for _ in range(max_rounds):
        res = solve(lv / b, theta)
        n_iter = n_iter + xp.where(stable, 0, res.n_iter)
        new = levels(res.theta[:, o:])
        same = xp.all(new == lv, axis=-1)
        keep = stable[:, None]
        theta = xp.where(keep, theta, res.theta)
        stable = stable | same
        if bool(xp.all(stable)):
            break
        back = ~stable & xp.all(new == prev, axis=-1)  # a 2-cycle: lv -> new -> lv
        prev = xp.where(keep, prev, lv)
        lv = xp.where(keep, lv, new)
        if bool(xp.all(stable | back)):
            break
    assert res is not None
    w = lv / b
    # 2-cycles on exactly one coordinate: root of h on the interval between the two levels.
    diff = (lv != prev) & ~stable[:, None]
    one = (xp.sum(xp.astype(diff, xp.int64), axis=-1) == 1) & ~stable
    consistent = stable
    if bool(xp.any(one)):
        jmask = xp.astype(diff & one[:, None], theta.dtype)
        m = xp.sum(jmask * xp.minimum(lv, prev), axis=-1)  # the lower level
        lo_w, hi_w = m / b, (m + 1.0) / b
        target = m + 0.5

        def h_of(th: Any) -> Any:
            return xp.sum(jmask * scaled(th[:, o:]), axis=-1) - target

        def with_wj(wj: Any) -> Any:
            return w * (1.0 - jmask) + wj[:, None] * jmask

        # h(lo) > 0 (the lower weight puts the solution above the boundary), h(hi) < 0.
        r_lo = solve(with_wj(lo_w), theta)
        r_hi = solve(with_wj(hi_w), theta)
        h_lo, h_hi = h_of(r_lo.theta), h_of(r_hi.theta)
        bracket = one & (h_lo > 0) & (h_hi < 0)
        side = xp.zeros((R,), dtype=theta.dtype)
        wj, th, done = lo_w, theta, ~bracket
        cur = r_lo
        for _ in range(max_root_steps):
            den = xp.where(done, 1.0, h_hi - h_lo)  # < 0 on a live bracket
            wj_new = xp.where(done, wj, hi_w - h_hi * (hi_w - lo_w) / den)
            cur = solve(with_wj(wj_new), th)
            h = h_of(cur.theta)
            act = ~done
            wj = xp.where(act, wj_new, wj)
            th = xp.where(act[:, None], cur.theta, th)
            n_iter = n_iter + xp.where(act, cur.n_iter, 0)
            up = act & (h > 0)  # the root is above wj
            dn = act & (h < 0)
            # Illinois: halve the stale end's value when the same end is kept twice.
            h_hi = xp.where(up & (side > 0), h_hi / 2.0, h_hi)
            h_lo = xp.where(dn & (side < 0), h_lo / 2.0, h_lo)
            lo_w = xp.where(up, wj, lo_w)
            h_lo = xp.where(up, h, h_lo)
            hi_w = xp.where(dn, wj, hi_w)
            h_hi = xp.where(dn, h, h_hi)
            side = xp.where(up, 1.0, xp.where(dn, -1.0, side))
            on = act & (xp.abs(h) <= BOUNDARY_TOL)
            done = done | on | (act & (hi_w - lo_w <= 1e-15))
            if bool(xp.all(done)):
                break
        # ... and every other coordinate still at the level its weight says.
        others = xp.all((levels(th[:, o:]) == lv) | (jmask > 0), axis=-1)
        hit = bracket & (xp.abs(h_of(th)) <= BOUNDARY_TOL) & others
        theta = xp.where(hit[:, None], th, theta)
        w = xp.where(hit[:, None], with_wj(wj), w)
        consistent = consistent | hit
        # The certificate of a root row is that of its last weighted fit.
        res = solve(w, theta)
    res.n_iter = n_iter + res.n_iter
    res.theta = xp.where(consistent[:, None], res.theta, theta)
    return res, w, consistent
