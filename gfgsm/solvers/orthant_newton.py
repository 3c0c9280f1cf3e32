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


@dataclass
class _Data:
    """The working set's data: design, responses, shift and objective of its replications."""

    Xt: Any
    y: Any
    shift: Shift
    objective: Objective
    o: int
    kinks: bool

    def take(self, keep: Any) -> _Data:
        xp = get_namespace(self.y)
        Xt = xp.take(self.Xt, keep, axis=0) if self.Xt.ndim == 3 else self.Xt
        return _Data(Xt, xp.take(self.y, keep, axis=0), self.shift.take(keep),
                     self.objective.take(keep), self.o, self.kinks)

    def P(self, th: Any) -> Any:
        return self.shift.value(th[:, self.o:])

    def fval(self, th: Any, sm: Any, eta: Any) -> Any:
        """``F`` (the smoothed upper bound when ``psi`` has kinks); NaN counts as +inf."""
        xp = get_namespace(eta)
        P = self.P(th)
        obj = self.objective
        F = obj.smoothed_value(self.y, eta, P, sm) if self.kinks else obj.value(self.y, eta, P)
        return xp.where(xp.isnan(F), xp.inf, F)

    def pseudo_gradient(self, th: Any, sm: Any, eta: Any) -> tuple[Any, Any]:
        """The minimum-norm subgradient of ``F`` at ``th`` and the partials of ``psi``."""
        xp = get_namespace(eta)
        o, n = self.o, self.y.shape[-1]
        parts = self.objective.partials(self.y, eta, self.P(th), sm)
        g = _rmatvec(xp, self.Xt, parts[0]) / n
        kappa = xp.mean(parts[1], axis=-1)
        b = th[:, o:]
        gs = g[:, o:]
        # On a nonzero slope P is differentiable; at zero its one-sided slopes are +-slope0.
        gP = self.shift.orthant_grad(b, xp.sign(b))
        ku = kappa[:, None] * self.shift.zero_slope
        right, left = gs + ku, gs - ku
        at_zero = xp.where(right < 0, right, xp.where(left > 0, left, 0.0))
        pgs = xp.where(b != 0, gs + kappa[:, None] * gP, at_zero)
        pgs = xp.where(self.shift.fixed, 0.0, pgs)
        return xp.concat([g[:, :o], pgs], axis=1), parts


#: The per-replication iteration state, in this order (``take`` keeps every field aligned).
_FIELDS = ("idx", "theta", "eta", "F", "pg", "kkt", "smooth", "converged", "n_iter", "stalled",
           "active")


@dataclass
class _State:
    """The iterates of the working set, one row per replication still held."""

    idx: Any
    theta: Any
    eta: Any
    F: Any
    pg: Any
    kkt: Any
    smooth: Any
    converged: Any
    n_iter: Any
    stalled: Any
    active: Any
    parts: tuple

    def take(self, keep: Any) -> _State:
        xp = get_namespace(self.theta)
        new = {f: xp.take(getattr(self, f), keep, axis=0) for f in _FIELDS}
        return _State(**new, parts=tuple(xp.take(a, keep, axis=0) for a in self.parts))

    def evaluate(self, data: _Data) -> None:
        """Pseudo-gradient, partials and KKT residual at the current ``theta``."""
        xp = get_namespace(self.theta)
        self.pg, self.parts = data.pseudo_gradient(self.theta, self.smooth, self.eta)
        self.kkt = xp.max(xp.abs(self.pg), axis=-1)


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
    o = n_unpenalized
    kinks = objective.has_kinks
    smooth_min_arr = smooth_min if kinks else 0.0
    data = _Data(Xt, y, shift, objective, o, kinks)
    st = _start(xp, data, theta0, smooth0 if kinks else 0.0)
    # The working set: the replications still iterating, with their own copies of the data.
    # When at most half of it is still active it is compacted (``take``), so stragglers do
    # not make every finished replication pay for their iterations.
    finished: list[tuple[Any, ...]] = []

    # Loop passes that only lower the smoothing level take no Newton step; they are bounded
    # by the number of levels, so max_iter counts Newton steps per replication.
    n_levels = 1 + math.ceil(math.log(max(smooth0 / smooth_min, 1.0), 100)) if kinks else 1
    for _ in range(max_iter + n_levels + 1):
        if _stage(xp, st, data, tol, smooth_min_arr):
            continue
        st.active = st.active & (st.n_iter < max_iter)
        n_active = int(xp.sum(xp.astype(st.active, xp.int64)))
        if n_active == 0:
            break
        if n_active <= st.theta.shape[0] // 2 and st.theta.shape[0] >= 16:
            finished.append(_retire(xp, st, data, xp.nonzero(~st.active)[0]))
            keep = xp.nonzero(st.active)[0]
            st, data = st.take(keep), data.take(keep)
        st.n_iter = st.n_iter + xp.astype(st.active, xp.int64)
        d, G, sigma = _direction(xp, st, data)
        _line_search(xp, st, data, d, G, sigma)
        st.evaluate(data)

    # Replications still active hit max_iter (or converged on the last step).
    final = st.smooth <= smooth_min_arr * (1 + 1e-12)
    st.converged = st.converged | ((st.kkt <= tol) & final)
    finished.append(_retire(xp, st, data, xp.arange(st.theta.shape[0])))
    return _finish(xp, finished)


def _start(xp: Any, data: _Data, theta0: Any, smooth0: float) -> _State:
    R, o = theta0.shape[0], data.o
    fixed_full = xp.concat([xp.zeros((R, o), dtype=xp.bool), data.shift.fixed], axis=1)
    theta = xp.where(fixed_full, 0.0, theta0)
    smooth = xp.full((R,), smooth0, dtype=theta0.dtype)
    eta = _matvec(xp, data.Xt, theta)
    F = data.fval(theta, smooth, eta)
    st = _State(idx=xp.arange(R), theta=theta, eta=eta, F=F, pg=None, kkt=None, smooth=smooth,
                converged=xp.zeros((R,), dtype=xp.bool), n_iter=xp.zeros((R,), dtype=xp.int64),
                stalled=xp.zeros((R,), dtype=xp.bool), active=xp.ones((R,), dtype=xp.bool),
                parts=())
    st.evaluate(data)
    return st


def _stage(xp: Any, st: _State, data: _Data, tol: float, smooth_min: float) -> bool:
    """Stage logic: a smoothing level is finished when its problem is solved to
    ``max(tol, smooth)``; the last level must reach ``tol``.  Lowers the level (by 100) of the
    replications that finished theirs; returns True when it did (a pass with no Newton step)."""
    stage_done = st.kkt <= xp.maximum(tol, st.smooth)
    final = st.smooth <= smooth_min * (1 + 1e-12)
    newly_conv = st.active & stage_done & final & (st.kkt <= tol)
    st.converged = st.converged | newly_conv
    st.active = st.active & ~newly_conv
    lower = st.active & stage_done & ~final
    if not bool(xp.any(lower)):
        return False
    st.smooth = xp.where(lower, xp.maximum(st.smooth / 100.0, smooth_min), st.smooth)
    st.F = xp.where(lower, data.fval(st.theta, st.smooth, st.eta), st.F)
    pg2, parts2 = data.pseudo_gradient(st.theta, st.smooth, st.eta)
    st.pg = xp.where(lower[:, None], pg2, st.pg)
    st.parts = tuple(
        xp.where(lower[:, None], a2, a1) for a1, a2 in zip(st.parts, parts2, strict=True)
    )
    st.kkt = xp.max(xp.abs(st.pg), axis=-1)
    return True


def _direction(xp: Any, st: _State, data: _Data) -> tuple[Any, Any, Any]:
    """The orthant and the Newton direction on it: ``(d, G, sigma)``, ``G`` the pseudo-gradient
    on the free coordinates."""
    o = data.o
    W, q = st.theta.shape
    eye = xp.eye(q, dtype=st.theta.dtype)
    b = st.theta[:, o:]
    pgs = st.pg[:, o:]
    sigma = xp.where(b != 0, xp.sign(b), -xp.sign(pgs))
    free = xp.concat([xp.ones((W, o), dtype=xp.bool), sigma != 0], axis=1)
    v = xp.concat([xp.zeros((W, o), dtype=st.theta.dtype), data.shift.orthant_grad(b, sigma)],
                  axis=1)
    H = orthant_hessian(xp, data.Xt, st.parts, v, data.shift.orthant_hess(b, sigma), o)
    mask2 = free[:, :, None] & free[:, None, :]
    H = xp.where(mask2, H, eye)
    # A tiny Levenberg term keeps singular systems (p > n, separated data) solvable; it
    # changes the path, never the fixed point (which is pg = 0).
    diag = xp.sum(H * eye, axis=-1)
    damp = 1e-10 * (1.0 + xp.max(xp.abs(diag), axis=-1))
    H = H + damp[:, None, None] * eye
    G = xp.where(free, st.pg, 0.0)
    d = -xp.linalg.solve(H, G[..., None])[..., 0]
    # A zero coefficient may only move into the orthant it was assigned.
    ds = d[:, o:]
    ds = xp.where((b == 0) & (ds * sigma <= 0), 0.0, ds)
    d = xp.concat([d[:, :o], ds], axis=1)
    slope = xp.sum(G * d, axis=-1)
    bad = ~(slope < 0)
    return xp.where(bad[:, None], -G, d), G, sigma


def _line_search(xp: Any, st: _State, data: _Data, d: Any, G: Any, sigma: Any) -> None:
    """Projected backtracking (Armijo) along ``d`` on the orthant ``sigma``; a replication
    whose search fails is stuck: stopped, not converged."""
    o = data.o
    t = 1.0
    accepted = ~st.active
    new_theta, new_eta, new_F = st.theta, st.eta, st.F
    for _ls in range(_MAX_HALVINGS):
        trial = st.theta + t * d
        ts = trial[:, o:]
        ts = xp.where((sigma != 0) & (xp.sign(ts) != sigma), 0.0, ts)
        trial = xp.concat([trial[:, :o], ts], axis=1)
        eta1 = _matvec(xp, data.Xt, trial)
        F1 = data.fval(trial, st.smooth, eta1)
        dec = xp.sum(G * (trial - st.theta), axis=-1)
        ok = F1 <= st.F + _ARMIJO * dec + _ROUNDING * xp.abs(st.F)
        take = ok & ~accepted
        new_theta = xp.where(take[:, None], trial, new_theta)
        new_eta = xp.where(take[:, None], eta1, new_eta)
        new_F = xp.where(take, F1, new_F)
        accepted = accepted | ok
        if bool(xp.all(accepted)):
            break
        t = t / 2.0
    stuck = st.active & ~accepted
    st.stalled = st.stalled | stuck
    st.active = st.active & ~stuck
    st.theta, st.eta, st.F = new_theta, new_eta, new_F


def _retire(xp: Any, st: _State, data: _Data, sel: Any) -> tuple[Any, ...]:
    """The finished rows ``sel``: (idx, theta, converged, n_iter, kkt, objective, smooth,
    stalled), the objective unsmoothed."""
    obj = data.objective.value(data.y, st.eta, data.P(st.theta))
    return tuple(xp.take(a, sel, axis=0) for a in (st.idx, st.theta, st.converged, st.n_iter,
                                                    st.kkt, obj, st.smooth, st.stalled))


def _finish(xp: Any, finished: list[tuple[Any, ...]]) -> OrthantNewtonResult:
    """Every retired piece back in the replications' order."""
    cols = [xp.concat([piece[k] for piece in finished], axis=0) for k in range(8)]
    order = xp.argsort(cols[0])
    _, theta, converged, n_iter, kkt, obj, smooth, stalled = (
        xp.take(c, order, axis=0) for c in cols
    )
    return OrthantNewtonResult(theta, converged, n_iter, kkt, obj, smooth, stalled)
