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
2. Where the levels 2-cycle, on the coordinates ``J`` where the two level vectors differ (by
   ``m_j`` and ``m_j + 1``), the infimum sits on jumps.  Each ``w_j``, ``j in J``, is confined to
   ``[m_j / b, (m_j + 1) / b]`` and solved for in turn with the others held (Gauss-Seidel
   sweeps): with ``h_j(w_j) = b u_j(theta(w)) - (m_j + 1/2)``, continuous because ``F_w`` is
   strictly convex, ``w_j`` is the lower end if ``h_j <= 0`` there, the upper end if
   ``h_j >= 0`` there, and otherwise the root of ``h_j`` found by regula falsi (Illinois): the
   point on the boundary.  ``Q_n`` itself has no minimiser at such a point (it takes one of
   the two levels there).

Every row is finally checked: its fit certified and ``b w`` in the closed level map of its
estimate, widened by ``BOUNDARY_TOL``.  Rows that fail (levels that cycle with a longer
period, or sweeps that do not settle) are left unconverged (status ``"level_cycle"``), never
silently.
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
    max_sweeps: int = 6,
    max_root_steps: int = 60,
) -> tuple[Any, Any, Any]:
    """Return ``(result, weights, consistent)``.

    ``solve(w, theta)`` fits the weighted-l1 problem with weights ``w`` (R, p) from ``theta``
    and returns an orthant-Newton result; ``levels(beta)`` the integer levels
    ``max(1, round(b u))``; ``scaled(beta)`` is ``b u = b |beta| / ||beta||_inf``.
    ``consistent`` (R,) is true where the fit is certified and ``b w`` lies in the closed level
    map of the estimate (within ``BOUNDARY_TOL``).
    """
    xp = get_namespace(theta0)
    R = theta0.shape[0]
    theta = theta0
    lv = levels(theta[:, o:])
    prev = lv
    stable = xp.zeros((R,), dtype=xp.bool)
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
    w = lv / b
    J = (lv != prev) & ~stable[:, None]
    if bool(xp.any(J)):
        low = xp.minimum(lv, prev)  # m_j on J
        theta = _sweep(solve, scaled, b, w, theta, J, low, o, max_sweeps, max_root_steps)
        w = theta[1]
        n_iter = n_iter + theta[2]
        theta = theta[0]
    res = solve(w, theta)
    res.n_iter = n_iter + res.n_iter
    consistent = res.converged & _in_level_map(xp, scaled(res.theta[:, o:]), w * b)
    return res, w, consistent


def _in_level_map(xp: Any, s: Any, k: Any) -> Any:
    """``k_j`` in ``[max(1, round(s_j - tol)), max(1, round(s_j + tol))]`` for every ``j``: the
    closed level map, widened by ``BOUNDARY_TOL`` for the accuracy of the fits."""
    lo = xp.maximum(xp.round(s - BOUNDARY_TOL), 1.0)
    hi = xp.maximum(xp.round(s + BOUNDARY_TOL), 1.0)
    return xp.all((k >= lo) & (k <= hi), axis=-1)


def _sweep(solve: Callable[[Any, Any], Any], scaled: Callable[[Any], Any], b: int, w: Any,
           theta: Any, J: Any, low: Any, o: int, max_sweeps: int,
           max_root_steps: int) -> tuple[Any, Any, Any]:
    """Gauss-Seidel over the coordinates of ``J``: each ``w_j`` in ``[low_j, low_j + 1] / b``
    made consistent with the others held.  Returns ``(theta, w, n_iter)``."""
    xp = get_namespace(theta)
    R, p = w.shape
    n_iter = xp.zeros((R,), dtype=xp.int64)
    rows = xp.any(J, axis=-1)
    for _ in range(max_sweeps):
        for j in range(p):  # a loop over coordinates (p is small), each batched over rows
            act = J[:, j]
            if not bool(xp.any(act)):
                continue
            e = xp.astype(xp.arange(p) == j, w.dtype)
            m = low[:, j]
            lo_w, hi_w = m / b, (m + 1.0) / b

            def at(wj: Any, th: Any, e: Any = e, w: Any = w) -> Any:
                return solve(w * (1.0 - e) + wj[:, None] * e, th)

            def h_of(th: Any, j: int = j, m: Any = m) -> Any:
                return scaled(th[:, o:])[:, j] - (m + 0.5)

            r_lo, r_hi = at(lo_w, theta), at(hi_w, theta)
            h_lo, h_hi = h_of(r_lo.theta), h_of(r_hi.theta)
            n_iter = n_iter + xp.where(act, r_lo.n_iter + r_hi.n_iter, 0)
            use_lo = act & (h_lo <= 0)
            use_hi = act & ~use_lo & (h_hi >= 0)
            wj = xp.where(use_lo, lo_w, xp.where(use_hi, hi_w, w[:, j]))
            th = xp.where(use_lo[:, None], r_lo.theta,
                          xp.where(use_hi[:, None], r_hi.theta, theta))
            root = act & ~use_lo & ~use_hi
            wj, th, it = _illinois(at, h_of, root, lo_w, hi_w, h_lo, h_hi, wj, th,
                                   max_root_steps)
            n_iter = n_iter + it
            theta = xp.where(act[:, None], th, theta)
            w = w * (1.0 - e) + xp.where(act, wj, w[:, j])[:, None] * e
        # settled when every row's weights are in the level map of its estimate
        ok = _in_level_map(xp, scaled(theta[:, o:]), w * b)
        if bool(xp.all(ok | ~rows)):
            break
    return theta, w, n_iter


def _illinois(at: Callable[[Any, Any], Any], h_of: Callable[[Any], Any], live: Any, lo_w: Any,
              hi_w: Any, h_lo: Any, h_hi: Any, wj: Any, th: Any,
              max_steps: int) -> tuple[Any, Any, Any]:
    """Regula falsi with the Illinois modification on the rows ``live`` (``h_lo > 0 > h_hi``;
    ``h`` decreases in ``w_j``), to ``|h| <= BOUNDARY_TOL``."""
    xp = get_namespace(th)
    n_iter = xp.zeros(wj.shape, dtype=xp.int64)
    done = ~live
    side = xp.zeros(wj.shape, dtype=wj.dtype)
    for _ in range(max_steps):
        if bool(xp.all(done)):
            break
        den = xp.where(done, 1.0, h_hi - h_lo)  # < 0 on a live bracket
        wj_new = xp.where(done, wj, hi_w - h_hi * (hi_w - lo_w) / den)
        cur = at(wj_new, th)
        h = h_of(cur.theta)
        act = ~done
        wj = xp.where(act, wj_new, wj)
        th = xp.where(act[:, None], cur.theta, th)
        n_iter = n_iter + xp.where(act, cur.n_iter, 0)
        up, dn = act & (h > 0), act & (h < 0)  # the root lies above / below wj
        h_hi = xp.where(up & (side > 0), h_hi / 2.0, h_hi)
        h_lo = xp.where(dn & (side < 0), h_lo / 2.0, h_lo)
        lo_w, h_lo = xp.where(up, wj, lo_w), xp.where(up, h, h_lo)
        hi_w, h_hi = xp.where(dn, wj, hi_w), xp.where(dn, h, h_hi)
        side = xp.where(up, 1.0, xp.where(dn, -1.0, side))
        done = done | (act & (xp.abs(h) <= BOUNDARY_TOL)) | (act & (hi_w - lo_w <= 1e-15))
    return wj, th, n_iter
