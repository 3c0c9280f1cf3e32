"""Optimizers for ``R`` networks at once: Adam and the L-BFGS two-loop recursion, batched.

Every network keeps its own state (Adam's moments; L-BFGS's curvature pairs, scaling and step
length), and a boolean ``active`` mask of shape ``(R,)`` freezes networks that have stopped, so
network ``r`` follows the same trajectory whatever the other networks do (and whatever ``R``
is).  The arithmetic is elementwise or a reduction over one network's own parameters; there is
no Python loop over networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gfgsm.nn.networks import Params

__all__ = ["Adam", "LBFGSMemory"]

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

