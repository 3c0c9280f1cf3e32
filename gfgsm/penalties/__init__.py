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
(:func:`get_penalty`).  Every name, public or private, of the former single module
``gfgsm/penalties.py`` is still importable from ``gfgsm.penalties``.
"""

from __future__ import annotations

from typing import Any

from .._validation import norm_q, positive_int, power_r, real
from .base import Array as Array
from .base import Penalty, SeparablePenalty, row_scale
from .base import _as_array_or_float as _as_array_or_float
from .base import _full as _full
from .base import _lam_col as _lam_col
from .base import _lam_row as _lam_row
from .base import _safe_positive as _safe_positive
from .base import _sigma as _sigma
from .base import _signed as _signed
from .base import _ties_at_max as _ties_at_max
from .induced import DualNorm, PowerPenalty, QuantizedPenalty
from .induced import _abs_for_grad as _abs_for_grad
from .prox import _PROX_MAX_ITER as _PROX_MAX_ITER
from .prox import _check_step_below as _check_step_below
from .prox import _max_of as _max_of
from .prox import _prox_bridge_scaled as _prox_bridge_scaled
from .prox import _safeguarded_newton as _safeguarded_newton
from .prox import _soft_threshold as _soft_threshold
from .registry import _REGISTRY as _REGISTRY
from .registry import build, get_penalty
from .separable import L1, MCP, SCAD, AdaptiveL1, Lr, WeightedL1, adaptive_weights
from .separable import _fmt as _fmt
from .separable import _l1_shift as _l1_shift

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

# The former module's validators and registry builder under their old names (the package now
# takes the checks from gfgsm._validation; gfgsm.schemes takes ``resolve`` from .registry and
# ``row_scale`` from .base).
_real = real
_check_q = norm_q
_check_power_r = power_r
_build = build
_row_scale = row_scale


def _positive_int(name: str, value: Any) -> int:
    return positive_int(name, value, integral_float=True)
