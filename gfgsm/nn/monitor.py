"""Robustness during training: catastrophic overfitting (Wong, Rice & Kolter 2020).

FGSM training can suddenly lose all robustness to multi-step attacks while its own single-step
adversarial loss keeps improving.  :class:`RobustnessMonitor` runs a small PGD attack on a fixed
monitoring subset every epoch and records robust and clean accuracy (classifiers) or loss
(regression); :func:`detect_catastrophic_overfitting` flags the epoch where robustness collapses
while clean performance holds, and the trainer then emits a
:class:`CatastrophicOverfittingWarning` (:mod:`gfgsm.nn.training`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gfgsm.nn.networks import MLP, Params

__all__ = ["CatastrophicOverfittingWarning", "RobustnessMonitor",
           "detect_catastrophic_overfitting"]

Array = Any


class CatastrophicOverfittingWarning(UserWarning):
    """A network trained with single-step adversarial examples lost its multi-step robustness
    (Wong, Rice & Kolter 2020)."""


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


class RobustnessMonitor:
    """PGD-robust and clean accuracy (classifiers) or mean loss of ``R`` networks on a fixed
    monitoring subset ``X`` ``(R, m, d)``, ``y`` ``(R, m)``, evaluated once per epoch.

    PGD: ``pgd_steps`` steps ``delta <- clip(delta + (lam/4) sign(g(x + delta)), -lam, lam)``
    from ``delta = lam * start`` (``start`` uniform on [-1, 1]^d, fixed per run); ``eps`` is
    the ``(R, 1, 1)`` budget ``lam`` of each network."""

    def __init__(self, net: MLP, xp: Any, eps: Array, pgd_steps: int, X: Array, y: Array,
                 start: Array) -> None:
        self.net, self.xp, self.eps, self.pgd_steps = net, xp, eps, pgd_steps
        self.X, self.y, self.start = X, y, start

    def __call__(self, params: Params) -> tuple[Array, Array]:
        """``(robust, clean)``, each ``(R,)``, at the weights ``params``."""
        xp, net, eps = self.xp, self.net, self.eps
        X, y = self.X, self.y
        delta = eps * self.start
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
