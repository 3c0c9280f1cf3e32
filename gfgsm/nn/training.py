"""Adversarial training of ``R`` batched networks (docs/theory.md sections 3 and 6).

:func:`train_networks` trains ``R`` independent networks of one architecture at once (replications
with one data set each, or restarts on shared data) with Adam on mini-batches or full-batch
L-BFGS.  At every step the perturbation is recomputed from the current weights and then **held
fixed** while the weights move (no differentiation through it: docs/theory.md s.6, "Two
estimators, one name").  With ``B`` the samples of the step, the objective of network ``r`` is

    F_r(W) = clean_weight (1/B) sum_i l(y_i, f_W(x_i))
             + (1 - clean_weight) (1/B) sum_i l(y_i, f_W(x_i + delta_i))  +  weight decay,

Goodfellow et al.'s mixed objective (``alpha = clean_weight``), where ``delta_i`` is

* ``"adversarial"``: ``lam * scheme.direction(g_i)``, ``g_i = d l(y_i, f(x_i)) / d x_i`` the
  per-sample input gradient of the summed loss (schemes of :mod:`gfgsm.schemes`: sign = FGSM, lq,
  power, quantized);
* ``"fgsm_rs"``: FGSM with random start (Wong, Rice & Kolter 2020): ``u ~ U(-lam, lam)^d``, one
  step ``u + alpha * direction(g(x + u))`` (default ``alpha = 1.25 lam``), projected onto the
  l_inf ball of radius ``lam``;
* ``"uniform"``: ``U(-lam, lam)^d`` noise (the same l_inf ball as FGSM);
* ``"gaussian"``: ``N(0, lam^2 I)`` noise (the same root-mean-square size per coordinate, ``lam``,
  as the sign perturbation);
* ``"none"``: no perturbation (the objective is the clean mean loss whatever ``clean_weight``).

Weight decay, on the weights (never the biases): ``"l2"``: ``(weight_decay / 2) sum W^2``;
``"l1"``: ``weight_decay sum |W|``.

**Convergence means stationarity** (for every solver).  After training, each network's
*stationarity residual* ``grad_max = max_j |dF/dtheta_j|`` is the largest entry of the gradient
of the full-batch training objective ``F`` (every training row, the perturbation recomputed at
the returned weights and then held fixed: the objective whose stationary points L-BFGS
certifies; with the sign scheme they are those of G-FGSM off the coordinate hyperplanes and
off the sign boundaries ``y_i = mu_i`` of gaussian and poisson, where a G-FGSM minimiser that
sits on a boundary is no fixed point of the trainer, which then reports ``"cycling"``).  A
network is ``converged`` exactly when ``grad_max <= tol``.  Adam pays one extra pass over the
training rows for it (no updates).  A stopping rule that fires without
that (Adam's loss plateau: status ``"plateau"``; the iteration limit, a failed line search, a
2-cycle, divergence) is not convergence and draws a ``ConvergenceWarning``.  Mini-batch Adam
seldom reaches a small gradient; it then says so.  For random perturbations (``fgsm_rs``,
``uniform``, ``gaussian``) the objective itself is random and the residual is that of one fresh
draw, noise included.

**Solvers.**  ``"lbfgs"`` (full batch) drives ``grad_max`` itself below ``tol``; ``"adam"`` runs
mini-batch epochs until scikit-learn's plateau rule or ``max_iter``; ``"auto"`` picks L-BFGS for
small problems, ``n_train * n_params <= AUTO_LBFGS_MAX_WORK`` (scikit-learn's advice: L-BFGS
for small data sets, Adam for thousands of samples or more), and Adam otherwise or with
``early_stopping``.

**Early stopping** (Adam only, as in scikit-learn) monitors the *adversarial* validation loss,
as Goodfellow et al. did: the mean loss on held-out ``x + lam * scheme.direction(g)`` at the
current weights (the sign scheme when no scheme is given; the clean loss when ``lam = 0``); the
weights of the best epoch are returned.

**Catastrophic overfitting** (Wong et al. 2020): FGSM training can suddenly lose all robustness to
multi-step attacks while its own single-step adversarial loss keeps improving.  With
``monitor_robustness`` the trainer runs a small PGD attack (``pgd_steps`` sign steps of size
``lam / 4`` from a random start in the l_inf ball) on a fixed monitoring subset every epoch and
records robust and clean accuracy (classifiers) or loss (regression); a network whose robust
accuracy falls below ``co_fraction`` of its best so far while its clean accuracy stays within
``co_clean_fraction`` of its best is flagged (``catastrophic_overfitting``, with the epoch) and a
:class:`CatastrophicOverfittingWarning` is emitted.  Nothing is hidden or rolled back.

**Seeds.**  Network ``r`` uses the ``SeedSequence`` child ``r`` of ``random_state``
(:func:`gfgsm.designs.replication_seeds`) and four children of it for initialisation, the
validation split, the mini-batch order and the noise (random starts, noise baselines, the PGD
monitor), each drawn on the host from its own generator.  All updates of a network depend only
on its own data, weights and optimizer state, and stopped networks are frozen by masks, so
network ``r`` is trained identically (bitwise) whatever ``R`` is.  The same property lets the CPU
backend train the networks in cache-sized chunks (``chunk_size``) without changing any result.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from gfgsm._backend import asarray, get_namespace, is_numpy_namespace, to_numpy
from gfgsm.designs import replication_seeds
from gfgsm.nn.networks import MLP, NetworkTarget, Output, Params, get_output, where_params
from gfgsm.nn.optim import Adam, LBFGSMemory
from gfgsm.schemes import Scheme, Sign, get_scheme

__all__ = [
    "AUTO_LBFGS_MAX_WORK",
    "DECAYS",
    "PERTURBATIONS",
    "SOLVERS",
    "CatastrophicOverfittingWarning",
    "NetworkFit",
    "detect_catastrophic_overfitting",
    "train_networks",
]

Array = Any

PERTURBATIONS = ("adversarial", "fgsm_rs", "uniform", "gaussian", "none")
SOLVERS = ("auto", "adam", "lbfgs")

#: ``solver="auto"`` uses full-batch L-BFGS when ``n_train * n_params`` is at most this.  One
#: full-batch objective and gradient then costs a few million multiply-adds (milliseconds), so
#: hundreds of L-BFGS iterations cost about as much as as many Adam epochs while reaching a
#: certified stationary point; a GLM with 5 inputs qualifies up to n = 166000, a (32,)-MLP on
#: 10 inputs (385 parameters) up to n = 2600: scikit-learn's "thousands of samples" line
#: between L-BFGS and Adam.
AUTO_LBFGS_MAX_WORK = 10**6
DECAYS = ("l1", "l2")

# Children of a network's SeedSequence, one per use (fixed numbers: part of the seeding contract).
# _CHECK seeds the noise of the final stationarity check (random perturbations only), apart
# from the training noise, whose state at the end depends on how long the loop ran for the
# *other* networks.
_INIT, _SPLIT, _ORDER, _NOISE, _CHECK = range(5)


class CatastrophicOverfittingWarning(UserWarning):
    """A network trained with single-step adversarial examples lost its multi-step robustness
    (Wong, Rice & Kolter 2020)."""


@dataclass
class NetworkFit:
    """``R`` trained networks and their training record.

    Curves have one row per epoch (Adam) or iteration (L-BFGS) and one column per network,
    ``NaN`` after the network stopped.

    Attributes
    ----------
    net : the :class:`~gfgsm.nn.networks.MLP` architecture.
    params : the trained :class:`~gfgsm.nn.networks.Params` (the best epoch's with early
        stopping).
    loss_curve : (T, R) training objective per epoch (mean of the mini-batch objectives, each at
        the weights before its step, as scikit-learn's ``loss_curve_``) or per L-BFGS iteration.
    validation_loss_curve : (T, R) adversarial validation loss, or ``None``.
    robust_curve, clean_curve : (T, R) PGD-robust and clean accuracy (classifiers) or mean loss
        (regression) on the monitoring subset, or ``None``; ``monitor_metric`` says which.
    n_iter : (R,) epochs or iterations run.
    grad_max : (R,) stationarity residual at the returned weights: ``max_j |dF/dtheta_j|`` of
        the full-batch training objective with the perturbation recomputed there (module
        docstring; ``NaN`` for a diverged network).
    tol : the stationarity tolerance.  converged : (R,) bool, ``grad_max <= tol``.
    status : (R,) ``"converged"`` exactly where ``converged``; otherwise why the solver stopped:
        ``"plateau"`` (Adam: the loss stopped improving by ``tol`` but the gradient is not
        small), ``"early_stopped"`` (Adam: the validation rule), ``"max_iter"``, ``"stalled"``
        (L-BFGS line search failed), ``"cycling"`` (L-BFGS alternating between two points: the
        perturbation held fixed in a step flips back and forth, e.g. ``sign(y - mu)`` or a
        quantizer at a kink of the G-FGSM objective; the network stops at one of the two) or
        ``"diverged"`` (non-finite objective).
    solver : the solver used (``"auto"`` resolved).
    best_epoch : (R,) epoch index of the best validation loss (``-1`` without early stopping).
    best_validation_loss : (R,) or ``None``.
    catastrophic_overfitting : (R,) bool.  catastrophic_overfitting_epoch : (R,) int, ``-1``
        where not flagged.
    lam : (R,) budgets.  seeds : the ``SeedSequence`` of each network.
    """

    net: MLP
    params: Params
    loss_curve: np.ndarray
    validation_loss_curve: np.ndarray | None
    robust_curve: np.ndarray | None
    clean_curve: np.ndarray | None
    monitor_metric: str | None
    n_iter: np.ndarray
    converged: np.ndarray
    status: np.ndarray
    best_epoch: np.ndarray
    best_validation_loss: np.ndarray | None
    catastrophic_overfitting: np.ndarray
    catastrophic_overfitting_epoch: np.ndarray
    lam: np.ndarray
    seeds: list[np.random.SeedSequence]
    grad_max: np.ndarray
    tol: float
    solver: str

    @property
    def R(self) -> int:
        return int(self.n_iter.shape[0])

    def target(self) -> NetworkTarget:
        """The trained networks as an attack target (:mod:`gfgsm.nn.attacks`), inputs
        ``(R, n, d)`` (or ``(n, d)`` when ``R = 1``) and targets coded as in training."""
        return NetworkTarget(self.net, self.params)


# --------------------------------------------------------------------------------------------
# catastrophic overfitting
# --------------------------------------------------------------------------------------------


def detect_catastrophic_overfitting(
    robust: Any,
    clean: Any,
    *,
    metric: str = "accuracy",
    fraction: float = 0.5,
    clean_fraction: float = 0.9,
    min_drop: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Flag the epoch where robustness collapses while clean performance holds.

    ``robust`` and ``clean`` are (T, R) curves (``NaN`` entries are ignored).  For
    ``metric="accuracy"`` network ``r`` is flagged at the first epoch ``t`` with

        robust[t] < fraction * max_{s <= t} robust[s],
        max_{s <= t} robust[s] - robust[t] >= min_drop      and
        clean[t] >= clean_fraction * max_{s <= t} clean[s]

    for ``metric="loss"`` (lower is better) the same with ratios inverted:
    ``robust[t] > best-so-far / fraction`` and ``clean[t] <= best / clean_fraction``
    (``min_drop`` does not apply).  The absolute drop ``min_drop`` keeps a network that was never
    robust (PGD accuracy near 0 throughout, e.g. a budget too large to defend) from being flagged
    by sampling noise.

    Returns ``(flag, epoch)``: (R,) bool and (R,) int (``-1`` where not flagged).
    """
    rob = np.atleast_2d(np.asarray(robust, dtype=np.float64))
    cle = np.atleast_2d(np.asarray(clean, dtype=np.float64))
    if rob.shape != cle.shape:
        raise ValueError(f"robust {rob.shape} and clean {cle.shape} curves differ in shape")
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric must be 'accuracy' or 'loss', got {metric!r}")
    if not (0 < fraction < 1 and 0 < clean_fraction <= 1):
        raise ValueError(
            f"need 0 < fraction < 1 and 0 < clean_fraction <= 1, got {fraction!r}, "
            f"{clean_fraction!r}"
        )
    if rob.shape[0] == 0:
        R = rob.shape[1]
        return np.zeros(R, dtype=bool), np.full(R, -1, dtype=np.int64)
    if metric == "accuracy":
        best_r = np.fmax.accumulate(np.where(np.isnan(rob), -np.inf, rob), axis=0)
        best_c = np.fmax.accumulate(np.where(np.isnan(cle), -np.inf, cle), axis=0)
        hit = (rob < fraction * best_r) & (best_r - rob >= min_drop)
        hit &= cle >= clean_fraction * best_c
    else:
        best_r = np.fmin.accumulate(np.where(np.isnan(rob), np.inf, rob), axis=0)
        best_c = np.fmin.accumulate(np.where(np.isnan(cle), np.inf, cle), axis=0)
        hit = (rob > best_r / fraction) & (cle <= best_c / clean_fraction)
    hit &= ~(np.isnan(rob) | np.isnan(cle))
    flag = hit.any(axis=0)
    epoch = np.where(flag, hit.argmax(axis=0), -1).astype(np.int64)
    return flag, epoch


# --------------------------------------------------------------------------------------------
# the trainer
# --------------------------------------------------------------------------------------------


def _child(ss: np.random.SeedSequence, k: int) -> np.random.SeedSequence:
    """Child ``k`` of ``ss`` without mutating it (see :func:`gfgsm.designs.replication_seeds`)."""
    return np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, k), pool_size=ss.pool_size)


def _network_seeds(random_state: Any, R: int) -> list[np.random.SeedSequence]:
    """One ``SeedSequence`` per network: children ``0..R-1`` of ``random_state`` (``None``, an
    int or a ``SeedSequence``), or a sequence of ``R`` ``SeedSequence`` s used as they are (to
    train network ``r`` of a batch alone: pass ``NetworkFit.seeds[r:r+1]``)."""
    if isinstance(random_state, list | tuple):
        seeds = list(random_state)
        if len(seeds) != R or not all(isinstance(s, np.random.SeedSequence) for s in seeds):
            raise ValueError(
                f"a sequence random_state must hold R={R} numpy SeedSequences, got {random_state!r}"
            )
        return seeds
    if isinstance(random_state, np.random.Generator):
        raise ValueError("random_state must be None, an int or a SeedSequence (not a Generator)")
    return replication_seeds(random_state, R)


def _gather(X: Array, y: Array, idx: Array, xp: Any) -> tuple[Array, Array]:
    """Rows ``idx`` (``(R, m)`` integers) of each network's data: ``(R, m, d)`` and ``(R, m)``.

    ``X`` is ``(n, d)`` shared or ``(R, n, d)``; ``y`` is ``(n,)`` or ``(R, n)``.  One ``take``
    on the flattened arrays, with offsets ``r n`` for per-network data."""
    R, m = idx.shape
    d = X.shape[-1]
    if X.ndim == 3:
        n = X.shape[1]
        off = xp.reshape(xp.arange(R, dtype=xp.int64) * n, (R, 1))
        flat_x = xp.reshape(idx + off, (-1,))
        X = xp.reshape(X, (R * n, d))
    else:
        flat_x = xp.reshape(idx, (-1,))
    Xg = xp.reshape(xp.take(X, flat_x, axis=0), (R, m, d))
    if y.ndim == 2:
        n = y.shape[1]
        off = xp.reshape(xp.arange(R, dtype=xp.int64) * n, (R, 1))
        yg = xp.take(xp.reshape(y, (-1,)), xp.reshape(idx + off, (-1,)), axis=0)
    else:
        yg = xp.take(y, xp.reshape(idx, (-1,)), axis=0)
    return Xg, xp.reshape(yg, (R, m))


class _Trainer:
    """The perturbations, objectives and monitors of one training run (validated options)."""

    def __init__(
        self,
        net: MLP,
        xp: Any,
        lam: Array,
        scheme: Scheme,
        perturbation: str,
        clean_weight: float,
        alpha: Array,
        weight_decay: float,
        decay: str,
        pgd_steps: int,
    ) -> None:
        self.net, self.xp = net, xp
        self.lam = lam  # (R,)
        self.eps = xp.reshape(lam, (-1, 1, 1))
        self.alpha = xp.reshape(alpha, (-1, 1, 1))
        self.scheme = scheme
        self.perturbation = perturbation
        self.clean_weight = clean_weight
        self.weight_decay = weight_decay
        self.decay = decay
        self.pgd_steps = pgd_steps
        # A perturbation with zero weight in the objective is not computed at all.
        self.uses_perturbation = perturbation != "none" and clean_weight < 1.0
        self.noise_kind = {"fgsm_rs": "uniform", "uniform": "uniform", "gaussian": "normal"}.get(
            perturbation
        )

    # --- perturbations (held fixed within a step) ------------------------------------------
    def perturb(self, params: Params, X: Array, y: Array, noise: Array | None) -> Array:
        """``x + delta`` for the batch ``X`` ``(n, d)`` or ``(R, n, d)``: ``(R, n, d)``.

        ``noise`` is ``(R, n, d)``, standard uniform on [-1, 1] or standard normal."""
        xp, net, eps = self.xp, self.net, self.eps
        kind = self.perturbation
        if kind == "adversarial":
            g = net.input_gradient(params, X, y, xp)
            return X + eps * self.scheme.direction(g)
        if kind in ("uniform", "gaussian"):
            return X + eps * noise
        # fgsm_rs: random start, one scheme step of size alpha, projection onto the l_inf ball.
        start = eps * noise
        g = net.input_gradient(params, X + start, y, xp)
        delta = start + self.alpha * self.scheme.direction(g)
        return X + xp.minimum(xp.maximum(delta, -eps), eps)

    def draw_noise(self, rngs: list[np.random.Generator], m: int, d: int) -> Array | None:
        """``(R, m, d)`` standard noise for the step, one host draw per network's generator."""
        if self.noise_kind is None or not self.uses_perturbation:
            return None
        if self.noise_kind == "uniform":
            host = np.stack([g.uniform(-1.0, 1.0, (m, d)) for g in rngs])
        else:
            host = np.stack([g.standard_normal((m, d)) for g in rngs])
        return asarray(host, self.xp)

    # --- objective ------------------------------------------------------------------------------
    def _decay(self, params: Params) -> tuple[Array, list[Array]]:
        xp, wd = self.xp, self.weight_decay
        R = params.R
        if wd == 0.0:
            return xp.zeros((R,), dtype=xp.float64), [xp.zeros_like(W) for W in params.weights]
        if self.decay == "l2":
            val = sum(xp.sum(xp.reshape(W * W, (R, -1)), axis=1) for W in params.weights)
            return 0.5 * wd * val, [wd * W for W in params.weights]
        val = sum(xp.sum(xp.reshape(xp.abs(W), (R, -1)), axis=1) for W in params.weights)
        return wd * val, [wd * xp.sign(W) for W in params.weights]

    def _stack(self, X: Array, y: Array, X_adv: Array | None) -> tuple[Array, Array, Array]:
        """Inputs, targets and per-sample weights of the mixed objective (one forward pass)."""
        xp = self.xp
        m = X.shape[-2]
        cw = self.clean_weight
        if X_adv is None:
            return X, y, xp.full((m,), 1.0 / m, dtype=xp.float64)
        if cw == 0.0:
            return X_adv, y, xp.full((m,), 1.0 / m, dtype=xp.float64)
        Xc = xp.broadcast_to(X, X_adv.shape) if X.ndim < X_adv.ndim else X
        w = xp.concat(
            [xp.full((m,), cw / m, dtype=xp.float64), xp.full((m,), (1.0 - cw) / m,
                                                                dtype=xp.float64)]
        )
        return xp.concat([Xc, X_adv], axis=-2), xp.concat([y, y], axis=-1), w

    def value(self, params: Params, X: Array, y: Array, X_adv: Array | None) -> Array:
        """The objective ``F`` per network, ``(R,)``."""
        Xs, ys, w = self._stack(X, y, X_adv)
        losses = self.net.loss(params, Xs, ys, self.xp)
        return self.xp.sum(losses * w, axis=-1) + self._decay(params)[0]

    def value_and_grad(
        self, params: Params, X: Array, y: Array, X_adv: Array | None
    ) -> tuple[Array, Params]:
        """``F`` ``(R,)`` and its gradient in the weights (perturbation held fixed)."""
        Xs, ys, w = self._stack(X, y, X_adv)
        val, grad = self.net.value_and_grad(params, Xs, ys, w, self.xp)
        dval, dgrad = self._decay(params)
        grad.weights = [g + dg for g, dg in zip(grad.weights, dgrad, strict=True)]
        return val + dval, grad

    def step_objective(
        self, params: Params, X: Array, y: Array, noise: Array | None
    ) -> tuple[Array, Params, Array | None]:
        """Perturb at the current weights, then ``F`` and its gradient with that perturbation."""
        if self.perturbation != "adversarial" or not self.uses_perturbation:
            X_adv = self.perturb(params, X, y, noise) if self.uses_perturbation else None
            val, grad = self.value_and_grad(params, X, y, X_adv)
            return val, grad, X_adv
        # The input gradient needs a forward and backward pass on the clean inputs, whose
        # deltas also give the clean part's weight gradient: reuse them rather than pass the
        # clean inputs through the network a second time.
        xp, cw = self.xp, self.clean_weight
        m = X.shape[-2]
        losses, gclean, g = self.net.loss_grad_and_input_gradient(
            params, X, y, xp, param_grad=cw > 0.0
        )
        X_adv = X + self.eps * self.scheme.direction(g)
        w = xp.full((m,), (1.0 - cw) / m, dtype=xp.float64)
        val, grad = self.net.value_and_grad(params, X_adv, y, w, xp)
        if gclean is not None:
            c = cw / m
            val = val + c * xp.sum(losses, axis=-1)
            grad = Params.from_arrays(
                [a + c * b for a, b in zip(grad.arrays(), gclean.arrays(), strict=True)]
            )
        dval, dgrad = self._decay(params)
        grad.weights = [gw + dg for gw, dg in zip(grad.weights, dgrad, strict=True)]
        return val + dval, grad, X_adv

    # --- validation and monitoring ---------------------------------------------------------------
    def adversarial_loss(self, params: Params, X: Array, y: Array) -> Array:
        """Mean loss on ``x + lam * scheme.direction(g)`` at the current weights, ``(R,)``."""
        xp, net = self.xp, self.net
        g = net.input_gradient(params, X, y, xp)
        X_adv = X + self.eps * self.scheme.direction(g)
        return xp.mean(net.loss(params, X_adv, y, xp), axis=-1)

    def monitor(
        self, params: Params, X: Array, y: Array, start: Array
    ) -> tuple[Array, Array]:
        """PGD-robust and clean accuracy (classifiers) or mean loss, each ``(R,)``.

        PGD: ``pgd_steps`` steps ``delta <- clip(delta + (lam/4) sign(g(x + delta)), -lam,
        lam)`` from ``delta = lam * start`` (``start`` uniform on [-1, 1]^d, fixed per run)."""
        xp, net, eps = self.xp, self.net, self.eps
        delta = eps * start
        step = 0.25 * eps
        for _ in range(self.pgd_steps):
            g = net.input_gradient(params, X + delta, y, xp)
            delta = xp.minimum(xp.maximum(delta + step * xp.sign(g), -eps), eps)
        eta_c = net.eta(params, X, xp)
        eta_r = net.eta(params, X + delta, xp)
        out = net.output
        if out.is_classifier:
            yi = xp.astype(y, xp.int64)
            acc_c = xp.mean(xp.astype(out.predict_label(eta_c, xp) == yi, xp.float64), axis=-1)
            acc_r = xp.mean(xp.astype(out.predict_label(eta_r, xp) == yi, xp.float64), axis=-1)
            return acc_r, acc_c
        return (
            xp.mean(out.loss(y, eta_r, xp), axis=-1),
            xp.mean(out.loss(y, eta_c, xp), axis=-1),
        )


# --------------------------------------------------------------------------------------------
# validation of the options (the boundary)
# --------------------------------------------------------------------------------------------


def _pos_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _real_in(name: str, value: Any, lo: float, hi: float, lo_open: bool = False,
             hi_open: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        lb, rb = ("(" if lo_open else "["), (")" if hi_open else "]")
        raise ValueError(f"{name} must be a number in {lb}{lo}, {hi}{rb}, got {value!r}")
    return float(value)


def _check_hidden(hidden: Any) -> tuple[int, ...]:
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        out = tuple(hidden)
    except TypeError:
        msg = f"hidden must be a sequence of positive integers, got {hidden!r}"
        raise ValueError(msg) from None
    for h in out:
        if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1:
            raise ValueError(f"hidden must be a sequence of positive integers, got {hidden!r}")
    return tuple(int(h) for h in out)


def _resolve_scheme(scheme: Any, scheme_params: dict | None) -> Scheme:
    if scheme is None:
        if scheme_params:
            raise ValueError("scheme_params given without a scheme")
        return Sign()
    return get_scheme(scheme, **dict(scheme_params or {}))


def _check_targets(out: Output, y: np.ndarray) -> None:
    if out.name == "softmax":
        K = out.n_outputs
        bad = ~np.isin(y, np.arange(K))
        if np.any(bad):
            raise ValueError(
                f"softmax targets must be class indices 0..{K - 1}; found e.g. "
                f"{np.unique(y[bad])[:5].tolist()}"
            )
    else:
        out.family.validate_y(y)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# the public function
# --------------------------------------------------------------------------------------------


def train_networks(
    X: Any,
    y: Any,
    *,
    hidden: Any = (32,),
    activation: str = "relu",
    family: Any = "binomial",
    n_classes: int | None = None,
    lam: Any = 0.1,
    scheme: Any = "sign",
    scheme_params: dict | None = None,
    perturbation: str = "adversarial",
    clean_weight: float = 0.5,
    alpha: float | None = None,
    weight_decay: float = 0.0,
    decay: str = "l2",
    solver: str = "adam",
    learning_rate: float = 1e-3,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    batch_size: int | str = "auto",
    max_iter: int = 200,
    tol: float = 1e-4,
    n_iter_no_change: int = 10,
    early_stopping: bool = False,
    validation_fraction: float = 0.1,
    memory: int = 10,
    n_networks: int | None = None,
    random_state: Any = None,
    init: Params | None = None,
    monitor_robustness: bool | None = None,
    pgd_steps: int = 10,
    monitor_size: int = 512,
    co_fraction: float = 0.5,
    co_clean_fraction: float = 0.9,
    co_min_drop: float = 0.1,
    chunk_size: int | None = None,
    backend: str | None = None,
    warn: bool = True,
) -> NetworkFit:
    """Train ``R`` networks at once with the perturbation held fixed within each step.

    Parameters
    ----------
    X : (n, d) shared by all networks, or (R, n, d) one data set per network.
    y : (n,) or (R, n): responses of the family, or class indices ``0..K-1`` for softmax.
    hidden : hidden layer widths (``()``: no hidden layer, a GLM).
    activation : ``"relu"``, ``"tanh"``, ``"sigmoid"`` or ``"softplus"``.
    family : ``"binomial"``, ``"gaussian"``, ``"poisson"`` (one output unit, the family's loss on
        the ``phi = 1`` scale) or ``"softmax"`` (``n_classes`` outputs, multinomial log loss).
    lam : scalar or (R,) budget ``eps`` of the perturbation (docs/theory.md's ``lam``).
    scheme, scheme_params : the gradient scheme (``"sign"``, ``"lq"`` with ``{"q": ...}``,
        ``"power"`` with ``{"r": ...}``, ``"quantized"`` with ``{"b": ...}``, or a
        :class:`~gfgsm.schemes.Scheme`); used by ``"adversarial"`` and ``"fgsm_rs"`` training
        and by the adversarial validation loss.
    perturbation : ``"adversarial"``, ``"fgsm_rs"``, ``"uniform"``, ``"gaussian"`` or ``"none"``
        (module docstring).
    clean_weight : Goodfellow's ``alpha`` in ``alpha l(x) + (1 - alpha) l(x_adv)``, in [0, 1].
    alpha : FGSM-RS step size (default ``1.25 lam``, Wong et al. 2020).
    weight_decay, decay : weight penalty level and kind (``"l2"`` or ``"l1"``).
    solver : ``"adam"`` (mini-batches of ``batch_size``, ``"auto"`` = ``min(200, n)``),
        ``"lbfgs"`` (full batch, ``memory`` curvature pairs, backtracking Armijo line search on
        the fixed-perturbation objective) or ``"auto"``: ``"lbfgs"`` when ``n * n_params <=``
        :data:`AUTO_LBFGS_MAX_WORK` and no ``early_stopping``, else ``"adam"``
        (``NetworkFit.solver`` records the choice).  The default stays ``"adam"`` here (the
        studies' protocols pin their solver); :class:`~gfgsm.nn.GFGSMNetwork` defaults to
        ``"auto"``.
    learning_rate, beta_1, beta_2, epsilon : Adam's constants.
    max_iter : epochs (Adam) or iterations (L-BFGS).
    tol : the stationarity tolerance of every solver: a network is ``converged`` when the
        largest gradient entry of the full-batch fixed-perturbation objective, at its returned
        weights and their own perturbation, is at most ``tol`` (``NetworkFit.grad_max``; module
        docstring).  L-BFGS stops there; Adam also uses ``tol`` as the loss-improvement
        threshold of its plateau rule (scikit-learn's single ``tol``).
    n_iter_no_change : Adam stops a network when its loss (training, or adversarial validation
        with ``early_stopping``) has not improved by ``tol`` for more than ``n_iter_no_change``
        epochs (scikit-learn's rule): status ``"plateau"`` (or ``"early_stopped"``) unless the
        gradient is also below ``tol``.
    early_stopping, validation_fraction : hold out a fraction (per network, from its own seed)
        and stop on the adversarial validation loss (Adam only; ignored by L-BFGS, as in
        scikit-learn).
    n_networks : ``R`` for shared data (restarts); default 1, or ``R`` of ``X``/``y``.
    random_state : ``None``, an int or a ``SeedSequence`` (network ``r`` uses its child ``r``),
        or a list of ``R`` ``SeedSequence`` s, one per network, used as given.
    init : optional starting :class:`~gfgsm.nn.networks.Params` (``R`` networks).
    monitor_robustness : run the PGD monitor each epoch (default: for ``"adversarial"`` and
        ``"fgsm_rs"`` training with ``lam > 0`` and Adam); ``pgd_steps``, ``monitor_size``,
        ``co_fraction``, ``co_clean_fraction``, ``co_min_drop`` as in
        :func:`detect_catastrophic_overfitting`.
    chunk_size : networks trained together (``None``: all of them on a GPU, chunks whose
        largest working arrays take about 1 MiB on the CPU, where they then stay in cache).
        Network ``r``'s training does not depend on the others, so the results do not depend
        on ``chunk_size`` (bitwise).
    backend : array backend; ``warn`` : emit ``ConvergenceWarning`` /
        :class:`CatastrophicOverfittingWarning`.

    Returns
    -------
    NetworkFit
    """
    # --- validation ------------------------------------------------------------------------
    xp = get_namespace(X, y, backend=backend)
    Xh = np.asarray(to_numpy(X), dtype=np.float64)
    yh = np.asarray(to_numpy(y), dtype=np.float64)
    if Xh.ndim not in (2, 3) or Xh.shape[-2] < 1 or Xh.shape[-1] < 1:
        raise ValueError(f"X must have shape (n, d) or (R, n, d), got {Xh.shape}")
    n, d = Xh.shape[-2:]
    if yh.ndim not in (1, 2) or yh.shape[-1] != n:
        raise ValueError(f"y must have shape (n,) or (R, n) with n = {n}, got {yh.shape}")
    if not np.all(np.isfinite(Xh)):
        raise ValueError("X contains NaN or infinite values")
    R_data = {Xh.shape[0] if Xh.ndim == 3 else None, yh.shape[0] if yh.ndim == 2 else None}
    R_data.discard(None)
    if len(R_data) > 1:
        raise ValueError(f"X {Xh.shape} and y {yh.shape} disagree on the number of networks R")
    if n_networks is not None:
        n_networks = _pos_int("n_networks", n_networks)
    if R_data:
        R = R_data.pop()
        if n_networks is not None and n_networks != R:
            raise ValueError(f"n_networks={n_networks} but the data hold R={R} data sets")
    else:
        R = n_networks or 1
    hidden = _check_hidden(hidden)
    fam = family
    if isinstance(fam, str) and fam.lower() in ("softmax", "multinomial") and n_classes is None:
        n_classes = int(np.max(yh)) + 1 if yh.size else 2
    out = get_output(fam, n_classes)
    _check_targets(out, yh)
    net = MLP(d, hidden, activation, out)
    sch = _resolve_scheme(scheme, scheme_params)
    if perturbation not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {perturbation!r}")
    if perturbation == "fgsm_rs" and sch.norm_q != math.inf:
        raise ValueError(
            f"perturbation='fgsm_rs' projects onto the l_inf ball; scheme {sch!r} has directions "
            f"in the l_{sch.norm_q:g} ball"
        )
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}")
    lam_h = np.asarray(lam, dtype=np.float64)
    if lam_h.ndim == 0:
        lam_h = np.full(R, float(lam_h))
    if lam_h.shape != (R,) or not np.all(np.isfinite(lam_h)) or np.any(lam_h < 0):
        raise ValueError(f"lam must be a finite number >= 0 or (R,) = ({R},) of them, got {lam!r}")
    alpha_h = 1.25 * lam_h if alpha is None else np.asarray(alpha, dtype=np.float64) + 0 * lam_h
    if alpha_h.shape != (R,) or not np.all(np.isfinite(alpha_h)) or np.any(alpha_h < 0):
        raise ValueError(f"alpha must be a finite number >= 0 or (R,) of them, got {alpha!r}")
    clean_weight = _real_in("clean_weight", clean_weight, 0.0, 1.0)
    weight_decay = _real_in("weight_decay", weight_decay, 0.0, math.inf, hi_open=True)
    learning_rate = _real_in("learning_rate", learning_rate, 0.0, math.inf, True, True)
    beta_1 = _real_in("beta_1", beta_1, 0.0, 1.0, hi_open=True)
    beta_2 = _real_in("beta_2", beta_2, 0.0, 1.0, hi_open=True)
    epsilon = _real_in("epsilon", epsilon, 0.0, math.inf, True, True)
    tol = _real_in("tol", tol, 0.0, math.inf, hi_open=True)
    max_iter = _pos_int("max_iter", max_iter)
    n_iter_no_change = _pos_int("n_iter_no_change", n_iter_no_change)
    memory = _pos_int("memory", memory)
    pgd_steps = _pos_int("pgd_steps", pgd_steps)
    monitor_size = _pos_int("monitor_size", monitor_size)
    co_fraction = _real_in("co_fraction", co_fraction, 0.0, 1.0, True, True)
    co_clean_fraction = _real_in("co_clean_fraction", co_clean_fraction, 0.0, 1.0, lo_open=True)
    co_min_drop = _real_in("co_min_drop", co_min_drop, 0.0, 1.0)
    if solver == "auto":
        # Early stopping is an Adam protocol (L-BFGS ignores it), so asking for it picks Adam.
        small = n * net.n_params <= AUTO_LBFGS_MAX_WORK
        solver = "lbfgs" if small and not early_stopping else "adam"
    early_stopping = bool(early_stopping) and solver == "adam"
    if early_stopping:
        validation_fraction = _real_in("validation_fraction", validation_fraction, 0.0, 1.0,
                                       True, True)
        n_val = max(1, round(validation_fraction * n))
        if n_val >= n:
            raise ValueError(f"validation_fraction={validation_fraction} leaves no training data")
    else:
        n_val = 0
    n_train = n - n_val
    if batch_size == "auto":
        B = min(200, n_train)
    else:
        B = min(_pos_int("batch_size", batch_size), n_train)
    if monitor_robustness is None:
        monitor_robustness = (
            perturbation in ("adversarial", "fgsm_rs") and bool(np.any(lam_h > 0))
            and solver == "adam"
        )
    if init is not None and (init.R != R or [tuple(w.shape[1:]) for w in init.weights]
                             != [(a, b) for a, b in zip(net.sizes[:-1], net.sizes[1:],
                                                        strict=True)]):
        raise ValueError(f"init does not match R={R} networks of sizes {net.sizes}")

    # --- seeds, chunks ----------------------------------------------------------------------
    seeds = _network_seeds(random_state, R)
    if chunk_size is None:
        rows = 2 * (B if solver == "adam" else n_train)
        chunk_size = _auto_chunk(xp, rows, max(net.sizes))
    chunk_size = min(_pos_int("chunk_size", chunk_size), R)
    Xd = asarray(Xh, xp) if Xh.ndim == 2 else None  # shared data: one device copy for all
    yd = asarray(yh, xp) if yh.ndim == 1 else None
    ctx = dict(
        net=net, xp=xp, scheme=sch, perturbation=perturbation, clean_weight=clean_weight,
        weight_decay=weight_decay, decay=decay, pgd_steps=pgd_steps, solver=solver,
        early_stopping=early_stopping, n_val=n_val, B=B, monitor_robustness=monitor_robustness,
        monitor_size=monitor_size, max_iter=max_iter, tol=tol,
        n_iter_no_change=n_iter_no_change, memory=memory,
        adam=(learning_rate, beta_1, beta_2, epsilon),
    )
    recs = []
    for c0 in range(0, R, chunk_size):
        c1 = min(c0 + chunk_size, R)
        init_c = None if init is None else Params.from_arrays(
            [a[c0:c1, ...] for a in init.arrays()])
        recs.append(_train_chunk(
            seeds=seeds[c0:c1], init=init_c,
            Xd=Xd if Xd is not None else asarray(Xh[c0:c1], xp),
            yd=yd if yd is not None else asarray(yh[c0:c1], xp),
            lam=lam_h[c0:c1], alpha=alpha_h[c0:c1], **ctx,
        ))
    rec = _merge(recs, xp)

    metric = None
    co_flag = np.zeros(R, dtype=bool)
    co_epoch = np.full(R, -1, dtype=np.int64)
    if "robust" in rec:
        metric = "accuracy" if net.output.is_classifier else "loss"
        co_flag, co_epoch = detect_catastrophic_overfitting(
            rec["robust"], rec["clean"], metric=metric, fraction=co_fraction,
            clean_fraction=co_clean_fraction, min_drop=co_min_drop,
        )
    fit = NetworkFit(
        net=net, params=rec["params"], loss_curve=rec["loss"],
        validation_loss_curve=rec.get("val"), robust_curve=rec.get("robust"),
        clean_curve=rec.get("clean"), monitor_metric=metric, n_iter=rec["n_iter"],
        converged=rec["converged"], status=rec["status"], best_epoch=rec["best_epoch"],
        best_validation_loss=rec.get("best_val"), catastrophic_overfitting=co_flag,
        catastrophic_overfitting_epoch=co_epoch, lam=lam_h, seeds=seeds,
        grad_max=rec["grad_max"], tol=tol, solver=solver,
    )
    if warn:
        _warn(fit, perturbation)
    return fit


#: Working-array budget of one chunk of networks on a CPU backend (bytes): a chunk's largest
#: activations, ``chunk * rows * width`` float64 values, then stay in cache.  Training ``R``
#: networks as one batch streams every elementwise pass through memory; measured on the
#: project's machine (benchmarks/bench_nn.py), chunks of 10 networks of width 32 on mini-batches
#: of 200 train 2.3 to 2.7 times as many networks per second as one batch of 64.
_CHUNK_BYTES = 2**20


def _auto_chunk(xp: Any, rows: int, width: int) -> int:
    """Networks per chunk: all of them on a GPU or a test namespace, else by ``_CHUNK_BYTES``."""
    if not is_numpy_namespace(xp):
        return 2**62
    return max(1, _CHUNK_BYTES // (8 * rows * width))


def _train_chunk(
    *, seeds: list, init: Params | None, Xd: Array, yd: Array, lam: np.ndarray,
    alpha: np.ndarray, net: MLP, xp: Any, scheme: Scheme, perturbation: str,
    clean_weight: float, weight_decay: float, decay: str, pgd_steps: int, solver: str,
    early_stopping: bool, n_val: int, B: int, monitor_robustness: bool, monitor_size: int,
    max_iter: int, tol: float, n_iter_no_change: int, memory: int, adam: tuple,
) -> dict[str, Any]:
    """Train the networks of one chunk (``R_c = len(seeds)``); returns their record."""
    R = len(seeds)
    n, d = Xd.shape[-2:]
    n_train = n - n_val
    split_rngs = [np.random.default_rng(_child(s, _SPLIT)) for s in seeds]
    order_rngs = [np.random.default_rng(_child(s, _ORDER)) for s in seeds]
    noise_rngs = [np.random.default_rng(_child(s, _NOISE)) for s in seeds]
    params = init if init is not None else net.init([_child(s, _INIT) for s in seeds], xp)
    params = Params.from_arrays([asarray(a, xp) for a in params.arrays()])
    tr = _Trainer(net, xp, asarray(lam, xp), scheme, perturbation, clean_weight,
                  asarray(alpha, xp), weight_decay, decay, pgd_steps)

    if early_stopping:
        perms = np.stack([g.permutation(n) for g in split_rngs])
        val_idx, train_idx = perms[:, :n_val], np.sort(perms[:, n_val:], axis=1)
        Xval, yval = _gather(Xd, yd, asarray(val_idx, xp, xp.int64), xp)
    else:
        train_idx = np.broadcast_to(np.arange(n), (R, n))
        Xval = yval = None
    mon = None
    if monitor_robustness:
        if early_stopping:
            m_idx = val_idx[:, :monitor_size]
        else:
            m_idx = np.stack([np.sort(g.choice(n_train, min(monitor_size, n_train),
                                                replace=False)) for g in split_rngs])
            m_idx = np.take_along_axis(train_idx, m_idx, axis=1)
        Xm, ym = _gather(Xd, yd, asarray(m_idx, xp, xp.int64), xp)
        start = asarray(np.stack([g.uniform(-1.0, 1.0, (m_idx.shape[1], d))
                                  for g in noise_rngs]), xp)
        mon = (Xm, ym, start)

    common = dict(tr=tr, xp=xp, params=params, Xd=Xd, yd=yd, train_idx=train_idx,
                  noise_rngs=noise_rngs, max_iter=max_iter, tol=tol, mon=mon)
    if solver == "adam":
        rec = _run_adam(
            **common, order_rngs=order_rngs, B=B, n_iter_no_change=n_iter_no_change,
            adam=Adam(*adam), val=(Xval, yval) if early_stopping else None,
        )
        check_rngs = [np.random.default_rng(_child(s, _CHECK)) for s in seeds]
        rec["grad_max"] = _grad_max(tr, xp, rec["params"], Xd, yd, train_idx, check_rngs, B)
    else:
        # L-BFGS computed the residual at every iterate already (its stopping criterion).
        rec = _run_lbfgs(**common, memory=memory, full=not early_stopping)
    return _certify(rec, tol)


def _grad_max(
    tr: _Trainer, xp: Any, params: Params, Xd: Array, yd: Array, train_idx: np.ndarray,
    rngs: list[np.random.Generator], B: int,
) -> np.ndarray:
    """Stationarity residual ``max_j |dF/dtheta_j|`` of each network, (R,).

    ``F`` is the full-batch training objective (rows ``train_idx``) with the perturbation
    recomputed at ``params`` and held fixed.  It is a mean over rows plus weight decay, so its
    gradient is ``sum_b (m_b / n) grad F_b`` over mini-batches ``b`` of ``m_b <= B`` rows (each
    ``grad F_b`` carries the decay gradient once and the weights sum to 1): the working arrays
    stay those of a training step whatever ``n``."""
    n_train = train_idx.shape[1]
    noise = tr.draw_noise(rngs, n_train, Xd.shape[-1])
    idx = asarray(train_idx, xp, xp.int64)
    total: list[Array] | None = None
    for s in range(0, n_train, B):
        e = min(s + B, n_train)
        Xb, yb = _gather(Xd, yd, idx[:, s:e], xp)
        nb = None if noise is None else noise[:, s:e, :]
        _, grad, _ = tr.step_objective(params, Xb, yb, nb)
        part = [((e - s) / n_train) * a for a in grad.arrays()]
        total = part if total is None else [a + b for a, b in zip(total, part, strict=True)]
    assert total is not None  # n_train >= 1
    flat = Params.from_arrays(total).flatten(xp)
    return to_numpy(xp.max(xp.abs(flat), axis=-1)).astype(np.float64)


def _certify(rec: dict[str, Any], tol: float) -> dict[str, Any]:
    """``converged = grad_max <= tol`` (``NaN`` never passes) and status ``"converged"``
    exactly there; elsewhere the status keeps the solver's reason for stopping."""
    status = np.asarray(rec["status"], dtype=object).copy()
    with np.errstate(invalid="ignore"):
        ok = (rec["grad_max"] <= tol) & (status != "diverged")
    # No solver labels a network "converged" on its own terms any more: L-BFGS's label comes
    # from this same residual and Adam's plateau is "plateau", so this is the only source.
    status[ok] = "converged"
    rec["status"], rec["converged"] = status, ok
    return rec


def _merge(recs: list[dict[str, Any]], xp: Any) -> dict[str, Any]:
    """One record from the chunks' records: networks side by side, curves padded with NaN."""
    if len(recs) == 1:
        return recs[0]
    T = max(r["loss"].shape[0] for r in recs)

    def pad(a: np.ndarray) -> np.ndarray:
        return np.vstack([a, np.full((T - a.shape[0], a.shape[1]), np.nan)])

    out: dict[str, Any] = {
        "params": Params.from_arrays([
            xp.concat(list(arrs), axis=0)
            for arrs in zip(*(r["params"].arrays() for r in recs), strict=True)
        ])
    }
    for key in ("loss", "val", "robust", "clean"):
        if key in recs[0]:
            out[key] = np.hstack([pad(r[key]) for r in recs])
    for key in ("n_iter", "converged", "status", "best_epoch", "best_val", "grad_max"):
        if key in recs[0]:
            out[key] = np.concatenate([r[key] for r in recs])
    return out


def _warn(fit: NetworkFit, perturbation: str) -> None:
    # Early stopping ends training on purpose at the best validation epoch (a regularizer, not
    # a stationary point): its status says so and it is not warned about.
    bad = np.flatnonzero(~fit.converged & (fit.status != "early_stopped"))
    if bad.size:
        kinds = {s: int(np.sum(fit.status[bad] == s)) for s in np.unique(fit.status[bad])}
        worst = float(np.nanmax(fit.grad_max[bad])) if np.isfinite(fit.grad_max[bad]).any() \
            else math.nan
        hint = (" 'plateau': the loss stopped improving by tol while the gradient is not "
                "small; raise max_iter or n_iter_no_change, lower the learning rate, or use "
                "solver='lbfgs' (full batch)." if "plateau" in kinds else
                " Raise max_iter or check NetworkFit.status.")
        warnings.warn(
            f"{bad.size} of {fit.R} networks did not converge ({kinds}): stationarity residual "
            f"max|grad| up to {worst:.3g} > tol = {fit.tol:g}; first indices "
            f"{bad[:10].tolist()}.{hint}",
            ConvergenceWarning,
            stacklevel=3,
        )
    co = np.flatnonzero(fit.catastrophic_overfitting)
    if co.size:
        r = int(co[0])
        t = int(fit.catastrophic_overfitting_epoch[r])
        rob, cle = fit.robust_curve, fit.clean_curve
        assert rob is not None and cle is not None
        warnings.warn(
            f"catastrophic overfitting ({perturbation} training) in {co.size} of {fit.R} "
            f"networks, first indices {co[:10].tolist()}: network {r} at epoch {t} has PGD "
            f"{fit.monitor_metric} {rob[t, r]:.3g} (best so far {np.nanmax(rob[: t + 1, r]):.3g}"
            f" for accuracy, min {np.nanmin(rob[: t + 1, r]):.3g} for loss) with clean "
            f"{fit.monitor_metric} {cle[t, r]:.3g}. See NetworkFit.robust_curve.",
            CatastrophicOverfittingWarning,
            stacklevel=3,
        )


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


def _run_adam(
    *, tr: _Trainer, xp: Any, params: Params, Xd: Array, yd: Array, train_idx: np.ndarray,
    noise_rngs: list, max_iter: int, tol: float, mon: tuple | None, order_rngs: list, B: int,
    n_iter_no_change: int, adam: Adam, val: tuple | None,
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
            Xb, yb = _gather(Xd, yd, idx_epoch[:, s:e], xp)
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
            rob, cle = tr.monitor(params, *mon)
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


def _run_lbfgs(
    *, tr: _Trainer, xp: Any, params: Params, Xd: Array, yd: Array, train_idx: np.ndarray,
    noise_rngs: list, max_iter: int, tol: float, mon: tuple | None, memory: int, full: bool,
) -> dict[str, Any]:
    R, n_train = train_idx.shape
    d = Xd.shape[-1]
    # Full batch on the data as given (a shared X stays (n, d), broadcast by matmul).
    Xt, yt = (Xd, yd) if full else _gather(Xd, yd, asarray(train_idx, xp, xp.int64), xp)
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
    c1, max_ls = 1e-4, 60
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
        dvec = mem.direction(g, xp)
        gd = xp.sum(g * dvec, axis=-1)
        # Not a descent direction (a rounding artefact of the curvature pairs): restart there.
        bad = ~(gd < 0)
        gnorm = xp.sqrt(xp.sum(g * g, axis=-1))
        gam = xp.minimum(1.0, 1.0 / xp.where(gnorm > 0, gnorm, 1.0))
        mem.reset(bad, gam, xp)
        dvec = xp.where(bad[:, None], -gam[:, None] * g, dvec)
        gd = xp.sum(g * dvec, axis=-1)
        t = xp.ones((R,), dtype=xp.float64)
        t_acc = xp.zeros((R,), dtype=xp.float64)
        acc = ~act
        f_new, g_new = f, g
        # Rounding slack: near the optimum f is flat to ~1e-16 relative and Armijo's decrease
        # c1 t g'd is below it; a step that keeps f within the slack and shrinks the gradient
        # is accepted so that tight tolerances can be reached.
        slack = 1e-14 * xp.abs(f)
        gm = xp.max(xp.abs(g), axis=-1)
        for _ls in range(max_ls):
            f_try, g_try = fg(theta + t[:, None] * dvec, X_adv)
            finite = xp.isfinite(f_try)
            armijo = f_try <= f + c1 * t * gd
            flat = (f_try <= f + slack) & (xp.max(xp.abs(g_try), axis=-1) < gm)
            ok = finite & (armijo | flat) & ~acc
            f_new = xp.where(ok, f_try, f_new)
            g_new = xp.where(ok[:, None], g_try, g_new)
            t_acc = xp.where(ok, t, t_acc)
            acc = acc | ok
            if bool(xp.all(acc)):
                break
            t = xp.where(acc, t, 0.5 * t)
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
            rob, cle = tr.monitor(template.unflatten(theta, xp), *mon)
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
