"""The training objective of ``R`` batched networks (docs/theory.md s.6).

:class:`TrainingObjective` holds the validated options of one training run and computes, for
each network, the perturbation of a batch at the current weights (``"adversarial"``,
``"fgsm_rs"``, ``"uniform"``, ``"gaussian"``; :mod:`gfgsm.nn.training`'s docstring), then
**holds it fixed** while it evaluates

    F_r(W) = clean_weight (1/B) sum_i l(y_i, f_W(x_i))
             + (1 - clean_weight) (1/B) sum_i l(y_i, f_W(x_i + delta_i))  +  weight decay

and its gradient in the weights; also the adversarial validation loss of early stopping.
:func:`stationarity_residual` is ``max_j |dF/dtheta_j|`` of the full-batch objective, the
convergence criterion of every solver; :func:`gather` takes each network's rows of the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gfgsm._backend import asarray, to_numpy
from gfgsm.nn.networks import MLP, Params
from gfgsm.schemes import Scheme

__all__ = ["TrainingObjective", "gather", "stationarity_residual"]

Array = Any


def gather(X: Array, y: Array, idx: Array, xp: Any) -> tuple[Array, Array]:
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


class TrainingObjective:
    """The perturbations and the objective of one training run (validated options)."""

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

    # --- validation -----------------------------------------------------------------------------
    def adversarial_loss(self, params: Params, X: Array, y: Array) -> Array:
        """Mean loss on ``x + lam * scheme.direction(g)`` at the current weights, ``(R,)``."""
        xp, net = self.xp, self.net
        g = net.input_gradient(params, X, y, xp)
        X_adv = X + self.eps * self.scheme.direction(g)
        return xp.mean(net.loss(params, X_adv, y, xp), axis=-1)


def stationarity_residual(
    tr: TrainingObjective, xp: Any, params: Params, Xd: Array, yd: Array, train_idx: np.ndarray,
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
        Xb, yb = gather(Xd, yd, idx[:, s:e], xp)
        nb = None if noise is None else noise[:, s:e, :]
        _, grad, _ = tr.step_objective(params, Xb, yb, nb)
        part = [((e - s) / n_train) * a for a in grad.arrays()]
        total = part if total is None else [a + b for a, b in zip(total, part, strict=True)]
    assert total is not None  # n_train >= 1
    flat = Params.from_arrays(total).flatten(xp)
    return to_numpy(xp.max(xp.abs(flat), axis=-1)).astype(np.float64)
