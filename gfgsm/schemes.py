"""Gradient schemes: how an adversary turns an input gradient into a perturbation direction
(docs/theory.md s.6).

A scheme maps ``g = grad_x l`` (shape ``(..., d)``: any batch of per-sample input gradients, the
``d`` input features on the last axis) to a direction ``d`` of the same shape, in the unit ball of
the scheme's norm (l_inf, except l_q for :class:`Lq`); the adversary then uses ``x + eps d``.

Every sample is normalised by its own gradient only, never by statistics of the batch: batching
samples (or replications) must not change any sample's direction (docs/theory.md s.6,
"Per-sample gradients").  A zero gradient gives a zero direction.

For a GLM the input gradient is ``g = (mu - y) beta / phi``, so ``direction(g)' beta`` is a
function of ``beta`` alone times ``-sign(y - mu)``: the scheme's *induced penalty*
(:attr:`Scheme.induced_penalty`, the third column of the table in docs/theory.md s.6), computed
independently in :mod:`gfgsm.penalties`.
"""

from __future__ import annotations

import abc
import math
from typing import Any

from gfgsm._backend import get_namespace
from gfgsm._validation import norm_q, positive_int, power_r
from gfgsm.penalties import L1, DualNorm, Penalty, PowerPenalty, QuantizedPenalty
from gfgsm.penalties.base import row_scale
from gfgsm.penalties.registry import resolve

__all__ = ["Lq", "Power", "Quantized", "Scheme", "Sign", "get_scheme"]

Array = Any


class Scheme(abc.ABC):
    """A map from per-sample input gradients to perturbation directions (docs/theory.md s.6).

    Attributes
    ----------
    name : str
        registry name (see :func:`get_scheme`).
    norm_q : float
        the norm whose unit ball holds the directions (``inf`` except for :class:`Lq`).
    """

    name: str = "scheme"
    norm_q: float = math.inf

    @abc.abstractmethod
    def direction(self, g: Array) -> Array:
        """Directions for gradients ``g`` of shape ``(..., d)``; same shape, row by row."""

    @property
    @abc.abstractmethod
    def induced_penalty(self) -> Penalty:
        """The penalty ``P`` with ``direction(c beta)' beta = sign(c) P(beta)`` for any ``c != 0``,
        so the GLM shift is ``-sign(y - mu) eps P(beta)`` (docs/theory.md s.6)."""

    def _params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


class Sign(Scheme):
    """FGSM: ``d_j = sign(g_j)``; induced penalty ``||beta||_1`` (docs/theory.md s.2, s.6)."""

    name = "sign"

    def direction(self, g: Array) -> Array:
        xp = get_namespace(g)
        return xp.sign(g)

    @property
    def induced_penalty(self) -> Penalty:
        return L1()


class Lq(Scheme):
    """Steepest ascent in the l_q ball: ``d = argmax_{||d||_q <= 1} d'g`` (docs/theory.md s.6).

    As in cleverhans' ``optimize_linear``: ``q = inf`` gives ``sign(g)``; ``q = 2`` gives
    ``g / ||g||_2``; ``q = 1`` puts all the mass on the coordinate(s) of largest ``|g_j|``, split
    equally among ties; in general ``d_j = sign(g_j) |g_j|^{q*-1} / ||g||_{q*}^{q*-1}`` with
    ``1/q + 1/q* = 1`` (equality in Hoelder's inequality), so ``d'g = ||g||_{q*}``.  Induced
    penalty: the dual norm ``||beta||_{q*}`` (:class:`~gfgsm.penalties.DualNorm`).
    """

    name = "lq"

    def __init__(self, q: float) -> None:
        self.q = norm_q(q)
        self.norm_q = self.q
        q = self.q
        self.qstar = 1.0 if q == math.inf else (math.inf if q == 1 else q / (q - 1.0))

    def _params(self) -> dict[str, Any]:
        return {"q": self.q}

    def direction(self, g: Array) -> Array:
        xp = get_namespace(g)
        q = self.q
        if q == math.inf:
            return xp.sign(g)
        _, u = row_scale(xp.abs(g), xp)
        if q == 1:
            # u == 1 exactly on the coordinates tied at the max (x / x == 1 in IEEE arithmetic).
            tie = xp.astype(u == 1.0, g.dtype)
            count = xp.sum(tie, axis=-1, keepdims=True)
            return xp.sign(g) * tie / xp.where(count > 0, count, 1.0)
        if q == 2:
            norm = xp.sqrt(xp.sum(u * u, axis=-1, keepdims=True))
            return xp.sign(g) * u / xp.where(norm > 0, norm, 1.0)
        qs = self.qstar
        norm_pow = xp.sum(u**qs, axis=-1, keepdims=True) ** ((qs - 1.0) / qs)
        return xp.sign(g) * u ** (qs - 1.0) / xp.where(norm_pow > 0, norm_pow, 1.0)

    @property
    def induced_penalty(self) -> Penalty:
        # q = inf is the sign scheme: its penalty is l1 itself, with l1's separable solver.
        return L1() if self.q == math.inf else DualNorm(self.q)


class Power(Scheme):
    """``d_j = sign(g_j) (|g_j| / ||g||_inf)^{r-1}``, ``r >= 1`` (docs/theory.md s.6).

    ``r = 1`` is sign; ``r = 2`` is the raw gradient scaled into the l_inf ball.  Induced penalty
    ``||beta||_r^r / ||beta||_inf^{r-1}`` (:class:`~gfgsm.penalties.PowerPenalty`).
    """

    name = "power"

    def __init__(self, r: float) -> None:
        self.r = power_r(r)

    def _params(self) -> dict[str, Any]:
        return {"r": self.r}

    def direction(self, g: Array) -> Array:
        xp = get_namespace(g)
        _, u = row_scale(xp.abs(g), xp)
        # u**0 = 1 even at u = 0; sign(0) = 0 then keeps zero coordinates at zero.
        return xp.sign(g) * u ** (self.r - 1.0)

    @property
    def induced_penalty(self) -> Penalty:
        return L1() if self.r == 1 else PowerPenalty(self.r)  # r = 1 is the sign scheme


class Quantized(Scheme):
    """Quantized gradients (Liu & Tsang, seeds/quantized-gradients-paper.txt, eq. 4), scaled into
    the l_inf ball: ``d_j = zeta(b g_j / ||g||_inf) / b``, integer ``b >= 1``, with
    ``zeta(v) = sign(v)`` if ``|v| < 1`` else ``round(v)`` (Array-API ``round``: half to even).

    ``b = 1`` is sign.  Induced penalty
    ``(1/b) sum_j max(1, round(b |beta_j| / ||beta||_inf)) |beta_j|``
    (:class:`~gfgsm.penalties.QuantizedPenalty`; docs/theory.md s.6).
    """

    name = "quantized"

    def __init__(self, b: int) -> None:
        self.b = positive_int("b", b, integral_float=True)

    def _params(self) -> dict[str, Any]:
        return {"b": self.b}

    def direction(self, g: Array) -> Array:
        xp = get_namespace(g)
        _, u = row_scale(xp.abs(g), xp)
        # Quantize the magnitude b |g_j| / M (same operation order as QuantizedPenalty) and put
        # the sign back: round is odd-symmetric under half-to-even, so this is zeta(b g_j / M).
        v = self.b * u
        mag = xp.where(v < 1.0, xp.sign(v), xp.round(v))
        return xp.sign(g) * mag / self.b

    @property
    def induced_penalty(self) -> Penalty:
        return L1() if self.b == 1 else QuantizedPenalty(self.b)  # b = 1 is the sign scheme


_REGISTRY: dict[str, type[Scheme]] = {
    "sign": Sign,
    "lq": Lq,
    "power": Power,
    "quantized": Quantized,
}


def get_scheme(name_or_obj: str | Scheme, **params: Any) -> Scheme:
    """A :class:`Scheme` from its registry name and parameters, or an instance passed through.

    Names: ``"sign"``, ``"lq"`` (``q=``, ``1 <= q <= inf``), ``"power"`` (``r=``, ``r >= 1``),
    ``"quantized"`` (``b=``, a positive integer).

    Raises
    ------
    ValueError
        for an unknown name (listing the valid ones), missing or unexpected parameters, or an
        out-of-range parameter (naming it and its value).
    """
    return resolve("scheme", _REGISTRY, Scheme, name_or_obj, params)
