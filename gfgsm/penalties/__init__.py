"""Penalties ``P_lam(beta)`` of the generalized FGSM estimator (docs/theory.md sections 3 and 6).

Two kinds live here.

* **Separable** penalties ``P_lam(beta) = sum_j p_lam(|beta_j|)`` (docs/theory.md s.3):
  :class:`L1`, :class:`WeightedL1` / :class:`AdaptiveL1`, :class:`Lr`, :class:`SCAD`, :class:`MCP`.
  They expose the scalar function ``p_lam`` (:meth:`~Penalty.pointwise`), its derivatives and its
  proximal map.
* **Induced** penalties of the gradient schemes (docs/theory.md s.6, third column of the table):
  :class:`DualNorm`, :class:`PowerPenalty`, :class:`QuantizedPenalty`.  They are not separable and
  expose only ``value`` and ``grad``.

A penalty object does not hold ``lam``; every method takes it.  Shapes: ``beta`` is ``(..., p)``
(typically ``(R, p)`` for ``R`` independent problems); ``lam`` is a Python float or an array of
shape ``beta.shape[:-1]`` (one level per problem), used as ``lam[..., None]`` against ``beta``.

All arithmetic uses the Array-API namespace of the inputs (:mod:`gfgsm._backend`), so the same
code runs on NumPy, CuPy and ``array_api_strict``.  Validation of ``lam >= 0`` is the estimators'
job; the penalties only promise not to produce NaN at ``lam = 0``.

Layout: :mod:`.base` (the interface and the shared array helpers), :mod:`.separable`,
:mod:`.induced`, :mod:`.prox` (the proximal-map helpers and root finders) and :mod:`.registry`
(:func:`get_penalty`).  Every public name of the former single module ``gfgsm/penalties.py``
is importable from ``gfgsm.penalties``.
"""

from __future__ import annotations

from .base import Penalty, SeparablePenalty
from .induced import DualNorm, PowerPenalty, QuantizedPenalty
from .registry import get_penalty
from .separable import L1, MCP, SCAD, AdaptiveL1, Lr, WeightedL1, adaptive_weights

__all__ = [
    "L1",
    "MCP",
    "SCAD",
    "AdaptiveL1",
    "DualNorm",
    "Lr",
    "Penalty",
    "PowerPenalty",
    "QuantizedPenalty",
    "SeparablePenalty",
    "WeightedL1",
    "adaptive_weights",
    "get_penalty",
]
