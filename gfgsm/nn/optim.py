"""Optimizers for ``R`` networks at once: Adam and the L-BFGS two-loop recursion, batched, and
the training loops that drive them (:func:`run_adam`: mini-batch epochs; :func:`run_lbfgs`: full
batch with a backtracking Armijo line search and 2-cycle detection).

Every network keeps its own state (Adam's moments; L-BFGS's curvature pairs, scaling and step
length), and a boolean ``active`` mask of shape ``(R,)`` freezes networks that have stopped, so
network ``r`` follows the same trajectory whatever the other networks do (and whatever ``R``
is).  The arithmetic is elementwise or a reduction over one network's own parameters; there is
no Python loop over networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gfgsm._backend import asarray, to_numpy
from gfgsm.nn.networks import Params, where_params
from gfgsm.nn.objective import gather

if TYPE_CHECKING:
    from gfgsm.nn.monitor import RobustnessMonitor
    from gfgsm.nn.objective import TrainingObjective

__all__ = ["Adam", "LBFGSMemory", "run_adam", "run_lbfgs"]

Array = Any


@dataclass
class Adam:
    """Adam (Kingma & Ba 2015) in scikit-learn's form, per network.

    ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``theta <- theta - lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``.
    """

    learning_rate: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    t: int = 0
    m: list[Array] = field(default_factory=list)
    v: list[Array] = field(default_factory=list)

    def step(self, params: Params, grad: Params, active: Array, xp: Any) -> Params:
        """One update of the networks where ``active`` (shape ``(R,)``); the others unchanged."""
        arrays, grads = params.arrays(), grad.arrays()
        if not self.m:
            self.m = [xp.zeros_like(a) for a in arrays]
            self.v = [xp.zeros_like(a) for a in arrays]
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        lr = self.learning_rate * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        new, ms, vs = [], [], []
        for a, g, m, v in zip(arrays, grads, self.m, self.v, strict=True):
            mask = xp.reshape(active, (active.shape[0],) + (1,) * (a.ndim - 1))
            m_new = b1 * m + (1.0 - b1) * g
            v_new = b2 * v + (1.0 - b2) * (g * g)
            # Frozen networks keep their moments too, so resuming would be exact.
            ms.append(xp.where(mask, m_new, m))
            vs.append(xp.where(mask, v_new, v))
            new.append(xp.where(mask, a - lr * m_new / (xp.sqrt(v_new) + self.epsilon), a))
        self.m, self.v = ms, vs
        return Params.from_arrays(new)


@dataclass
class LBFGSMemory:
    """The last ``m`` curvature pairs of ``R`` networks, for the two-loop recursion.

    ``S[i]``, ``Y[i]`` are ``(R, P)`` (parameter steps and gradient changes) and ``rho[i]`` is
    ``(R,)``: ``1 / s'y`` for an accepted pair and 0 for an empty or rejected slot, which makes
    the slot a no-op in :meth:`direction` (its ``alpha`` and ``beta`` are 0).  The ring position
    is shared by all networks; what each network stores there is its own.
    """

    size: int
    gamma: Array
    S: list[Array] = field(default_factory=list)
    Y: list[Array] = field(default_factory=list)
    rho: list[Array] = field(default_factory=list)
    newest: int = -1

    def reset(self, mask: Array, gamma: Array, xp: Any) -> None:
        """Forget every pair of the networks where ``mask`` and restart their scaling at
        ``gamma`` (``(R,)``)."""
        self.rho = [xp.where(mask, 0.0, r) for r in self.rho]
        self.gamma = xp.where(mask, gamma, self.gamma)

    def push(self, s: Array, y: Array, accept: Array, xp: Any) -> None:
        """Store the pair ``(s, y)`` (each ``(R, P)``) of the networks where ``accept`` and
        ``s'y > 0`` (curvature condition); update their scaling ``gamma = s'y / y'y``."""
        sy = xp.sum(s * y, axis=-1)
        yy = xp.sum(y * y, axis=-1)
        ok = accept & (sy > 1e-12 * xp.sqrt(xp.sum(s * s, axis=-1) * yy))
        rho = xp.where(ok, 1.0 / xp.where(ok, sy, 1.0), 0.0)
        self.newest = (self.newest + 1) % self.size
        if len(self.S) < self.size:
            self.S.append(s)
            self.Y.append(y)
            self.rho.append(rho)
        else:
            self.S[self.newest], self.Y[self.newest], self.rho[self.newest] = s, y, rho
        self.gamma = xp.where(ok, sy / xp.where(ok, yy, 1.0), self.gamma)

    def direction(self, g: Array, xp: Any) -> Array:
        """``-H g`` for gradients ``g`` ``(R, P)`` by the two-loop recursion (Nocedal & Wright,
        Algorithm 7.4), with ``H_0 = gamma I`` per network."""
        q = g
        k = len(self.S)
        order = [(self.newest - j) % self.size for j in range(k)]
        alphas = []
        for i in order:  # newest first
            a = self.rho[i] * xp.sum(self.S[i] * q, axis=-1)
            q = q - a[:, None] * self.Y[i]
            alphas.append(a)
        r = self.gamma[:, None] * q
        for i, a in zip(order[::-1], alphas[::-1], strict=True):  # oldest first
            b = self.rho[i] * xp.sum(self.Y[i] * r, axis=-1)
            r = r + (a - b)[:, None] * self.S[i]
        return -r


# --------------------------------------------------------------------------------------------
# the loops (one per solver; Python loops over epochs, mini-batches and layers only)
# --------------------------------------------------------------------------------------------


def _stop_rule(
    loss: np.ndarray, best: np.ndarray, count: np.ndarray, active: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's no-improvement rule per network: ``count += 1`` when the loss is not below
    ``best - tol``, else 0; ``best`` is the running minimum.  Returns ``(best, count, improved)``
    where ``improved`` marks a new minimum."""
    count = np.where(active, np.where(loss > best - tol, count + 1, 0), count)
    improved = active & (loss < best)
    return np.where(improved, loss, best), count, improved


def run_adam(
    *, tr: TrainingObjective, xp: Any, params: Params, Xd: Array, yd: Array, train_idx: np.ndarray,
    noise_rngs: list, max_iter: int, tol: float, mon: RobustnessMonitor | None,
    order_rngs: list, B: int, n_iter_no_change: int, adam: Adam, val: tuple | None,
) -> dict[str, Any]:
    R, n_train = train_idx.shape
    d = Xd.shape[-1]
    active = np.ones(R, dtype=bool)
    status = np.full(R, "max_iter", dtype=object)
    n_iter = np.zeros(R, dtype=np.int64)
    best = np.full(R, np.inf)
    count = np.zeros(R, dtype=np.int64)
    best_epoch = np.full(R, -1, dtype=np.int64)
    best_params = params
    curves: dict[str, list] = {"loss": [], "val": [], "robust": [], "clean": []}
    for epoch in range(max_iter):
        act = xp.asarray(active)
        order = np.stack([g.permutation(n_train) for g in order_rngs])
        idx_epoch = asarray(np.take_along_axis(train_idx, order, axis=1), xp, xp.int64)
        noise = tr.draw_noise(noise_rngs, n_train, d)
        total = xp.zeros((R,), dtype=xp.float64)
        for s in range(0, n_train, B):
            e = min(s + B, n_train)  # the Array API leaves out-of-range slice stops undefined
            Xb, yb = gather(Xd, yd, idx_epoch[:, s:e], xp)
            nb = None if noise is None else noise[:, s:e, :]
            val_b, grad, _ = tr.step_objective(params, Xb, yb, nb)
            params = adam.step(params, grad, act, xp)
            total = total + val_b * Xb.shape[1]
        loss = to_numpy(total / n_train).astype(np.float64)
        n_iter += active
        curves["loss"].append(np.where(active, loss, np.nan))
        diverged = active & ~np.isfinite(loss)
        status[diverged] = "diverged"
        if val is not None:
            vloss = to_numpy(tr.adversarial_loss(params, *val)).astype(np.float64)
            curves["val"].append(np.where(active, vloss, np.nan))
            best, count, improved = _stop_rule(vloss, best, count, active, tol)
            best_params = where_params(xp.asarray(improved), params, best_params, xp)
            best_epoch = np.where(improved, epoch, best_epoch)
        else:
            best, count, _ = _stop_rule(loss, best, count, active, tol)
        if mon is not None:
            rob, cle = mon(params)
            curves["robust"].append(np.where(active, to_numpy(rob), np.nan))
            curves["clean"].append(np.where(active, to_numpy(cle), np.nan))
        done = active & ~diverged & (count > n_iter_no_change)
        # A plateau is a reason to stop, not convergence: _certify decides that on the gradient.
        status[done] = "early_stopped" if val is not None else "plateau"
        active = active & ~done & ~diverged
        if not active.any():
            break
    if val is not None:
        params = best_params
    rec: dict[str, Any] = {
        "params": params,
        "loss": np.array(curves["loss"]),
        "n_iter": n_iter,
        "status": status,
        "best_epoch": best_epoch,
    }
    if val is not None:
        rec["val"] = np.array(curves["val"])
        rec["best_val"] = best
    if mon is not None:
        rec["robust"], rec["clean"] = np.array(curves["robust"]), np.array(curves["clean"])
    return rec


#: A 2-cycle of L-BFGS is declared after this many consecutive iterations whose objective equals
#: the one two iterations before to ``_CYCLE_RTOL (1 + |f|)`` and differs from the previous one.
_CYCLE_RUN = 6
_CYCLE_RTOL = 1e-12


#: Armijo's sufficient-decrease constant and the most halvings of the L-BFGS line search.
_ARMIJO_C1 = 1e-4
_MAX_LINE_SEARCH = 60


def _descent_direction(mem: LBFGSMemory, g: Array, xp: Any) -> tuple[Array, Array]:
    """The L-BFGS direction ``d = -H g`` of each network and ``g'd``; where ``d`` is not a
    descent direction (a rounding artefact of the curvature pairs) the network's memory is
    forgotten and ``d = -gamma g``, a step of length at most 1."""
    dvec = mem.direction(g, xp)
    gd = xp.sum(g * dvec, axis=-1)
    bad = ~(gd < 0)
    gnorm = xp.sqrt(xp.sum(g * g, axis=-1))
    gam = xp.minimum(1.0, 1.0 / xp.where(gnorm > 0, gnorm, 1.0))
    mem.reset(bad, gam, xp)
    dvec = xp.where(bad[:, None], -gam[:, None] * g, dvec)
    return dvec, xp.sum(g * dvec, axis=-1)


def _line_search(fg: Any, theta: Array, dvec: Array, f: Array, g: Array, gd: Array,
                 X_adv: Array | None, done: Array, xp: Any) -> tuple[Array, Array, Array]:
    """Backtracking along ``dvec`` from ``t = 1``, halving, with the perturbation ``X_adv``
    held fixed; networks where ``done`` take no step.  Returns ``(accepted, t, g)``: where a
    step was accepted, its length and the gradient there (elsewhere ``t = 0`` and ``g``)."""
    R = theta.shape[0]
    t = xp.ones((R,), dtype=xp.float64)
    t_acc = xp.zeros((R,), dtype=xp.float64)
    acc = done
    g_new = g
    # Rounding slack: near the optimum f is flat to ~1e-16 relative and Armijo's decrease
    # c1 t g'd is below it; a step that keeps f within the slack and shrinks the gradient
    # is accepted so that tight tolerances can be reached.
    slack = 1e-14 * xp.abs(f)
    gm = xp.max(xp.abs(g), axis=-1)
    for _ls in range(_MAX_LINE_SEARCH):
        f_try, g_try = fg(theta + t[:, None] * dvec, X_adv)
        finite = xp.isfinite(f_try)
        armijo = f_try <= f + _ARMIJO_C1 * t * gd
        flat = (f_try <= f + slack) & (xp.max(xp.abs(g_try), axis=-1) < gm)
        ok = finite & (armijo | flat) & ~acc
        g_new = xp.where(ok[:, None], g_try, g_new)
        t_acc = xp.where(ok, t, t_acc)
        acc = acc | ok
        if bool(xp.all(acc)):
            break
        t = xp.where(acc, t, 0.5 * t)
    return acc, t_acc, g_new


def run_lbfgs(
    *, tr: TrainingObjective, xp: Any, params: Params, Xd: Array, yd: Array, train_idx: np.ndarray,
    noise_rngs: list, max_iter: int, tol: float, mon: RobustnessMonitor | None, memory: int,
    full: bool,
) -> dict[str, Any]:
    R, n_train = train_idx.shape
    d = Xd.shape[-1]
    # Full batch on the data as given (a shared X stays (n, d), broadcast by matmul).
    Xt, yt = (Xd, yd) if full else gather(Xd, yd, asarray(train_idx, xp, xp.int64), xp)
    template = params

    def fg(theta: Array, X_adv: Array | None) -> tuple[Array, Array]:
        v, g = tr.value_and_grad(template.unflatten(theta, xp), Xt, yt, X_adv)
        return v, g.flatten(xp)

    def perturbed(theta: Array) -> Array | None:
        if not tr.uses_perturbation:
            return None
        noise = tr.draw_noise(noise_rngs, n_train, d)
        return tr.perturb(template.unflatten(theta, xp), Xt, yt, noise)

    def gmax(g: Array) -> np.ndarray:
        return to_numpy(xp.max(xp.abs(g), axis=-1)).astype(np.float64)

    theta = params.flatten(xp)
    X_adv = perturbed(theta)
    f, g = fg(theta, X_adv)
    gnorm = xp.sqrt(xp.sum(g * g, axis=-1))
    # First step of length at most 1 along -g (no curvature information yet).
    gamma0 = xp.minimum(1.0, 1.0 / xp.where(gnorm > 0, gnorm, 1.0))
    mem = LBFGSMemory(memory, gamma0)
    status = np.full(R, "max_iter", dtype=object)
    # Residual at each network's own last iterate, frozen when it stops: with a random
    # perturbation the loop's later draws for a stopped network would otherwise change it, and
    # with it depend on how long the other networks ran.
    g_stop = gmax(g)
    converged = g_stop <= tol
    status[converged] = "converged"
    stalled = np.zeros(R, dtype=bool)
    n_iter = np.zeros(R, dtype=np.int64)
    curves: dict[str, list] = {"loss": [], "robust": [], "clean": []}
    # 2-cycle detection (deterministic perturbations only: random ones never repeat): the
    # objective alternates between two values, equal to rounding every other iteration and
    # different in between, for _CYCLE_RUN iterations in a row.
    detect = tr.uses_perturbation and tr.perturbation == "adversarial"
    run = np.zeros(R, dtype=np.int64)
    cycling = np.zeros(R, dtype=bool)
    for _ in range(max_iter):
        active = ~converged & ~stalled & ~cycling
        if not active.any():
            break
        act = xp.asarray(active)
        dvec, gd = _descent_direction(mem, g, xp)
        acc, t_acc, g_new = _line_search(fg, theta, dvec, f, g, gd, X_adv, ~act, xp)
        moved = act & acc
        theta_new = xp.where(moved[:, None], theta + t_acc[:, None] * dvec, theta)
        # Curvature pair from the objective with the *same* fixed perturbation at both points.
        mem.push(theta_new - theta, g_new - g, moved, xp)
        stalled |= active & ~to_numpy(acc).astype(bool)
        theta = theta_new
        # New perturbation at the new weights; its gradient is the stationarity residual.
        X_adv = perturbed(theta)
        f, g = fg(theta, X_adv)
        n_iter += active
        loss = to_numpy(f).astype(np.float64)
        curves["loss"].append(np.where(active, loss, np.nan))
        if mon is not None:
            rob, cle = mon(template.unflatten(theta, xp))
            curves["robust"].append(np.where(active, to_numpy(rob), np.nan))
            curves["clean"].append(np.where(active, to_numpy(cle), np.nan))
        g_now = gmax(g)
        g_stop = np.where(active, g_now, g_stop)
        newly = active & (g_now <= tol)
        converged |= newly
        status[newly] = "converged"
        div = active & ~np.isfinite(loss)
        stalled |= div
        status[div] = "diverged"
        if detect and len(curves["loss"]) >= 3:
            prev, prev2 = curves["loss"][-2], curves["loss"][-3]
            with np.errstate(invalid="ignore"):
                scale = _CYCLE_RTOL * (1.0 + np.abs(loss))
                periodic = (np.abs(loss - prev2) <= scale) & (np.abs(loss - prev) > scale)
            run = np.where(active & ~newly & periodic, run + 1, 0)
            found = run >= _CYCLE_RUN
            cycling |= found
            status[found] = "cycling"
    status[stalled & (status == "max_iter")] = "stalled"
    rec: dict[str, Any] = {
        "params": template.unflatten(theta, xp),
        "loss": np.array(curves["loss"]).reshape(-1, R),
        "n_iter": n_iter,
        "status": status,
        "grad_max": g_stop,
        "best_epoch": np.full(R, -1, dtype=np.int64),
    }
    if mon is not None:
        rec["robust"] = np.array(curves["robust"]).reshape(-1, R)
        rec["clean"] = np.array(curves["clean"]).reshape(-1, R)
    return rec
