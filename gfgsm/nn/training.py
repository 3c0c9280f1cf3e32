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

**Rooms.**  This module validates the options, seeds and chunks the networks and assembles the
:class:`NetworkFit`; the objective and its perturbations live in :mod:`gfgsm.nn.objective`, the
optimizers and their loops in :mod:`gfgsm.nn.optim`, the PGD robustness monitor and the
catastrophic-overfitting detector in :mod:`gfgsm.nn.monitor` (its public names are re-exported
here).

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
from gfgsm._validation import int_at_least as _pos_int
from gfgsm._validation import real_in as _real_in
from gfgsm.designs import replication_seeds
from gfgsm.nn.monitor import (
    CatastrophicOverfittingWarning,
    RobustnessMonitor,
    detect_catastrophic_overfitting,
)
from gfgsm.nn.networks import MLP, NetworkTarget, Params, get_output, output_type
from gfgsm.nn.objective import TrainingObjective, gather, stationarity_residual
from gfgsm.nn.optim import Adam, run_adam, run_lbfgs
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
# seeds
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


# --------------------------------------------------------------------------------------------
# validation of the options (the boundary)
# --------------------------------------------------------------------------------------------


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


def _check_data(X: Any, y: Any, n_networks: Any, backend: str | None
                ) -> tuple[Any, np.ndarray, np.ndarray, int]:
    """The namespace, ``X`` and ``y`` on the host in float64, and the number of networks."""
    xp = get_namespace(X, y, backend=backend)
    Xh = np.asarray(to_numpy(X), dtype=np.float64)
    yh = np.asarray(to_numpy(y), dtype=np.float64)
    if Xh.ndim not in (2, 3) or Xh.shape[-2] < 1 or Xh.shape[-1] < 1:
        raise ValueError(f"X must have shape (n, d) or (R, n, d), got {Xh.shape}")
    n = Xh.shape[-2]
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
    return xp, Xh, yh, R


def _check_model(Xh: np.ndarray, yh: np.ndarray, hidden: Any, activation: str, family: Any,
                 n_classes: int | None, scheme: Any, scheme_params: dict | None,
                 perturbation: str, solver: str, decay: str) -> tuple[MLP, Scheme]:
    """The architecture (its output checks the targets) and the scheme, with the names of the
    perturbation, solver and decay checked."""
    hidden = _check_hidden(hidden)
    if n_classes is None and isinstance(family, str) and output_type(family).is_multiclass:
        n_classes = int(np.max(yh)) + 1 if yh.size else 2
    out = get_output(family, n_classes)
    out.validate_y(yh)
    net = MLP(Xh.shape[-1], hidden, activation, out)
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
    return net, sch


def _check_budgets(lam: Any, alpha: Any, R: int) -> tuple[np.ndarray, np.ndarray]:
    """``(R,)`` budgets ``lam`` and FGSM-RS steps ``alpha`` (default ``1.25 lam``)."""
    lam_h = np.asarray(lam, dtype=np.float64)
    if lam_h.ndim == 0:
        lam_h = np.full(R, float(lam_h))
    if lam_h.shape != (R,) or not np.all(np.isfinite(lam_h)) or np.any(lam_h < 0):
        raise ValueError(f"lam must be a finite number >= 0 or (R,) = ({R},) of them, got {lam!r}")
    alpha_h = 1.25 * lam_h if alpha is None else np.asarray(alpha, dtype=np.float64) + 0 * lam_h
    if alpha_h.shape != (R,) or not np.all(np.isfinite(alpha_h)) or np.any(alpha_h < 0):
        raise ValueError(f"alpha must be a finite number >= 0 or (R,) of them, got {alpha!r}")
    return lam_h, alpha_h


def _check_numbers(
    clean_weight: Any, weight_decay: Any, learning_rate: Any, beta_1: Any, beta_2: Any,
    epsilon: Any, tol: Any, max_iter: Any, n_iter_no_change: Any, memory: Any, pgd_steps: Any,
    monitor_size: Any, co_fraction: Any, co_clean_fraction: Any, co_min_drop: Any,
) -> dict[str, Any]:
    """The numeric options, each checked against its range (in this order), by name."""
    return {
        "clean_weight": _real_in("clean_weight", clean_weight, 0.0, 1.0),
        "weight_decay": _real_in("weight_decay", weight_decay, 0.0, math.inf, hi_open=True),
        "learning_rate": _real_in("learning_rate", learning_rate, 0.0, math.inf, True, True),
        "beta_1": _real_in("beta_1", beta_1, 0.0, 1.0, hi_open=True),
        "beta_2": _real_in("beta_2", beta_2, 0.0, 1.0, hi_open=True),
        "epsilon": _real_in("epsilon", epsilon, 0.0, math.inf, True, True),
        "tol": _real_in("tol", tol, 0.0, math.inf, hi_open=True),
        "max_iter": _pos_int("max_iter", max_iter),
        "n_iter_no_change": _pos_int("n_iter_no_change", n_iter_no_change),
        "memory": _pos_int("memory", memory),
        "pgd_steps": _pos_int("pgd_steps", pgd_steps),
        "monitor_size": _pos_int("monitor_size", monitor_size),
        "co_fraction": _real_in("co_fraction", co_fraction, 0.0, 1.0, True, True),
        "co_clean_fraction": _real_in("co_clean_fraction", co_clean_fraction, 0.0, 1.0,
                                      lo_open=True),
        "co_min_drop": _real_in("co_min_drop", co_min_drop, 0.0, 1.0),
    }


def _check_protocol(
    n: int, net: MLP, solver: str, early_stopping: bool, validation_fraction: Any,
    batch_size: int | str, monitor_robustness: bool | None, perturbation: str,
    lam: np.ndarray,
) -> tuple[str, bool, int, int, bool]:
    """The solver (``"auto"`` resolved), early stopping with its ``n_val`` held-out rows, the
    mini-batch size ``B`` and whether the PGD monitor runs."""
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
            perturbation in ("adversarial", "fgsm_rs") and bool(np.any(lam > 0))
            and solver == "adam"
        )
    return solver, early_stopping, n_val, B, monitor_robustness


def _check_init(init: Params | None, R: int, net: MLP) -> None:
    if init is not None and (init.R != R or [tuple(w.shape[1:]) for w in init.weights]
                             != [(a, b) for a, b in zip(net.sizes[:-1], net.sizes[1:],
                                                        strict=True)]):
        raise ValueError(f"init does not match R={R} networks of sizes {net.sizes}")


@dataclass
class _Plan:
    """A validated training run: the host data, per-network budgets and seeds, which each chunk
    of networks takes its slice of, and the options every chunk shares."""

    Xh: np.ndarray  # (n, d) shared or (R, n, d)
    yh: np.ndarray  # (n,) or (R, n)
    lam: np.ndarray  # (R,)
    alpha: np.ndarray  # (R,)
    seeds: list[np.random.SeedSequence]
    init: Params | None
    chunk_size: int
    shared: dict[str, Any]  # the keywords of _train_chunk common to all chunks
    co: dict[str, float]  # detect_catastrophic_overfitting's thresholds

    @property
    def R(self) -> int:
        return int(self.lam.shape[0])


# --------------------------------------------------------------------------------------------
# the public function: validation, the chunked runner, assembly
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
    # --- validation (the boundary) -----------------------------------------------------------
    xp, Xh, yh, R = _check_data(X, y, n_networks, backend)
    net, sch = _check_model(Xh, yh, hidden, activation, family, n_classes, scheme,
                            scheme_params, perturbation, solver, decay)
    lam_h, alpha_h = _check_budgets(lam, alpha, R)
    num = _check_numbers(clean_weight, weight_decay, learning_rate, beta_1, beta_2, epsilon, tol,
                         max_iter, n_iter_no_change, memory, pgd_steps, monitor_size,
                         co_fraction, co_clean_fraction, co_min_drop)
    solver, early_stopping, n_val, B, monitor_robustness = _check_protocol(
        Xh.shape[-2], net, solver, early_stopping, validation_fraction, batch_size,
        monitor_robustness, perturbation, lam_h)
    _check_init(init, R, net)

    # --- seeds, chunks ----------------------------------------------------------------------
    seeds = _network_seeds(random_state, R)
    if chunk_size is None:
        rows = 2 * (B if solver == "adam" else Xh.shape[-2] - n_val)
        chunk_size = _auto_chunk(xp, rows, max(net.sizes))
    adam = tuple(num.pop(k) for k in ("learning_rate", "beta_1", "beta_2", "epsilon"))
    co = {k: num.pop(f"co_{k}") for k in ("fraction", "clean_fraction", "min_drop")}
    plan = _Plan(
        Xh=Xh, yh=yh, lam=lam_h, alpha=alpha_h, seeds=seeds, init=init,
        chunk_size=min(_pos_int("chunk_size", chunk_size), R), co=co,
        shared=dict(net=net, xp=xp, scheme=sch, perturbation=perturbation, decay=decay,
                    solver=solver, early_stopping=early_stopping, n_val=n_val, B=B,
                    monitor_robustness=monitor_robustness, adam=adam, **num),
    )
    fit = _assemble(plan, _run_chunks(plan))
    if warn:
        _warn(fit, perturbation)
    return fit


def _run_chunks(plan: _Plan) -> dict[str, Any]:
    """Train the networks chunk by chunk (:func:`_train_chunk`) and merge the chunks' records:
    network ``r``'s training depends on no other network, so neither does its record."""
    xp, R, cs = plan.shared["xp"], plan.R, plan.chunk_size
    Xh, yh, init = plan.Xh, plan.yh, plan.init
    Xd = asarray(Xh, xp) if Xh.ndim == 2 else None  # shared data: one device copy for all
    yd = asarray(yh, xp) if yh.ndim == 1 else None
    recs = []
    for c0 in range(0, R, cs):
        c1 = min(c0 + cs, R)
        init_c = None if init is None else Params.from_arrays(
            [a[c0:c1, ...] for a in init.arrays()])
        recs.append(_train_chunk(
            seeds=plan.seeds[c0:c1], init=init_c,
            Xd=Xd if Xd is not None else asarray(Xh[c0:c1], xp),
            yd=yd if yd is not None else asarray(yh[c0:c1], xp),
            lam=plan.lam[c0:c1], alpha=plan.alpha[c0:c1], **plan.shared,
        ))
    return _merge(recs, xp)


def _assemble(plan: _Plan, rec: dict[str, Any]) -> NetworkFit:
    """The :class:`NetworkFit` of the merged record, with the catastrophic-overfitting flags of
    its robustness curves."""
    net, R = plan.shared["net"], plan.R
    metric = None
    co_flag = np.zeros(R, dtype=bool)
    co_epoch = np.full(R, -1, dtype=np.int64)
    if "robust" in rec:
        metric = "accuracy" if net.output.is_classifier else "loss"
        co_flag, co_epoch = detect_catastrophic_overfitting(
            rec["robust"], rec["clean"], metric=metric, fraction=plan.co["fraction"],
            clean_fraction=plan.co["clean_fraction"], min_drop=plan.co["min_drop"],
        )
    return NetworkFit(
        net=net, params=rec["params"], loss_curve=rec["loss"],
        validation_loss_curve=rec.get("val"), robust_curve=rec.get("robust"),
        clean_curve=rec.get("clean"), monitor_metric=metric, n_iter=rec["n_iter"],
        converged=rec["converged"], status=rec["status"], best_epoch=rec["best_epoch"],
        best_validation_loss=rec.get("best_val"), catastrophic_overfitting=co_flag,
        catastrophic_overfitting_epoch=co_epoch, lam=plan.lam, seeds=plan.seeds,
        grad_max=rec["grad_max"], tol=plan.shared["tol"], solver=plan.shared["solver"],
    )


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
    split_rngs = [np.random.default_rng(_child(s, _SPLIT)) for s in seeds]
    order_rngs = [np.random.default_rng(_child(s, _ORDER)) for s in seeds]
    noise_rngs = [np.random.default_rng(_child(s, _NOISE)) for s in seeds]
    params = init if init is not None else net.init([_child(s, _INIT) for s in seeds], xp)
    params = Params.from_arrays([asarray(a, xp) for a in params.arrays()])
    tr = TrainingObjective(net, xp, asarray(lam, xp), scheme, perturbation, clean_weight,
                           asarray(alpha, xp), weight_decay, decay)
    train_idx, val, mon_data = _holdout(Xd, yd, xp, split_rngs, noise_rngs, n_val,
                                        monitor_robustness, monitor_size)
    mon = None if mon_data is None else RobustnessMonitor(net, xp, tr.eps, pgd_steps, *mon_data)

    common = dict(tr=tr, xp=xp, params=params, Xd=Xd, yd=yd, train_idx=train_idx,
                  noise_rngs=noise_rngs, max_iter=max_iter, tol=tol, mon=mon)
    if solver == "adam":
        rec = run_adam(
            **common, order_rngs=order_rngs, B=B, n_iter_no_change=n_iter_no_change,
            adam=Adam(*adam), val=val if early_stopping else None,
        )
        check_rngs = [np.random.default_rng(_child(s, _CHECK)) for s in seeds]
        rec["grad_max"] = stationarity_residual(tr, xp, rec["params"], Xd, yd, train_idx,
                                                check_rngs, B)
    else:
        # L-BFGS computed the residual at every iterate already (its stopping criterion).
        rec = run_lbfgs(**common, memory=memory, full=not early_stopping)
    return _certify(rec, tol)


def _holdout(
    Xd: Array, yd: Array, xp: Any, split_rngs: list, noise_rngs: list, n_val: int,
    monitor_robustness: bool, monitor_size: int,
) -> tuple[np.ndarray, tuple | None, tuple | None]:
    """Each network's training rows ``(R, n_train)``, its validation data (``n_val > 0``) and
    the monitoring subset with its PGD starts (``monitor_robustness``): the validation rows'
    first ``monitor_size``, else a sorted sample of the training rows."""
    R = len(split_rngs)
    n, d = Xd.shape[-2:]
    n_train = n - n_val
    val = None
    if n_val > 0:
        perms = np.stack([g.permutation(n) for g in split_rngs])
        val_idx, train_idx = perms[:, :n_val], np.sort(perms[:, n_val:], axis=1)
        val = gather(Xd, yd, asarray(val_idx, xp, xp.int64), xp)
    else:
        train_idx = np.broadcast_to(np.arange(n), (R, n))
    if not monitor_robustness:
        return train_idx, val, None
    if n_val > 0:
        m_idx = val_idx[:, :monitor_size]
    else:
        m_idx = np.stack([np.sort(g.choice(n_train, min(monitor_size, n_train),
                                            replace=False)) for g in split_rngs])
        m_idx = np.take_along_axis(train_idx, m_idx, axis=1)
    Xm, ym = gather(Xd, yd, asarray(m_idx, xp, xp.int64), xp)
    start = asarray(np.stack([g.uniform(-1.0, 1.0, (m_idx.shape[1], d))
                              for g in noise_rngs]), xp)
    return train_idx, val, (Xm, ym, start)


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
