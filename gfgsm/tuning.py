"""Tuning: how a budget ``lam`` follows the sample size, and how a grid of fits is tuned by BIC.

A layer below both the Monte Carlo engine (:mod:`gfgsm.mc`) and the networks (:mod:`gfgsm.nn`),
so that each can use the same rules without the other (and without the engine's store, pandas
or pyarrow):

* :class:`LamRule`: ``lam = scale * n ** (-exponent)`` of a study condition, optionally times the
  population ``D`` (and ``phi``) of the condition's DGP (docs/theory.md s.5);
* :func:`bic`: the Bayesian information criterion of fits, ``n log(RSS / n) + log(n) df`` for a
  family with a free dispersion (gaussian), ``deviance + log(n) df`` otherwise;
* :func:`bic_select`: every replication fitted on a grid ``lam_r * g`` in one
  :func:`gfgsm.fit_batch` call, keeping the converged fit of smallest BIC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._backend import get_namespace, to_numpy
from .batch import BatchFit, fit_batch
from .families import Family, get_family

if TYPE_CHECKING:
    from .dgp import DGP

__all__ = ["LamRule", "bic", "bic_select"]


@dataclass(frozen=True)
class LamRule:
    """``lam = scale * n ** (-exponent)``, ``scale`` a number or the name of a condition factor.

    ``LamRule()`` is ``lam0 / sqrt(n)`` (docs/theory.md s.5); ``LamRule(exponent=0)`` fixed
    ``lam0``;
    ``LamRule(exponent=0.25)`` the slower ``lam0 n^(-1/4)``; for lr (``0 < r < 1``),
    docs/theory.md s.7
    uses ``exponent = 1 - r / 2``.
    """

    exponent: float = 0.5
    scale: str | float = "lam0"
    #: ``"D"`` or ``"D*phi"``: also multiply by the population ``D`` (times ``phi``) of the
    #: condition's DGP, e.g. PL at the level matched to G-FGSM (docs/theory.md s.5, consequence 3:
    #: PL at ``lam D phi`` on the package's ``phi = 1`` scale).
    multiplier: str | None = None

    def __call__(self, condition: Mapping[str, Any], dgp: DGP | None = None) -> float:
        if isinstance(self.scale, str):
            if self.scale not in condition:
                raise ValueError(f"lam rule needs condition factor {self.scale!r}; the condition "
                                 f"has {sorted(condition)}")
            s = float(condition[self.scale])
        else:
            s = float(self.scale)
        n = condition.get("n")
        if n is None:
            raise ValueError("lam rule needs the condition factor 'n'")
        lam = s * float(n) ** (-float(self.exponent))
        if self.multiplier is not None:
            if dgp is None:
                raise ValueError(f"lam rule with multiplier {self.multiplier!r} needs the DGP")
            D, phi = _population_D(repr(dgp), dgp)
            if self.multiplier == "D":
                lam *= D
            elif self.multiplier == "D*phi":
                lam *= D * phi
            else:
                raise ValueError(f"unknown lam multiplier {self.multiplier!r}; "
                                 "expected 'D' or 'D*phi'")
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam rule gave lam = {lam!r} for condition {dict(condition)}")
        return lam

    def describe(self) -> str:
        s = self.scale if isinstance(self.scale, str) else repr(self.scale)
        if self.exponent == 0:
            out = f"{s}"
        elif self.exponent == 0.5:
            out = f"{s}/sqrt(n)"
        else:
            out = f"{s}*n^(-{self.exponent:g})"
        return out if self.multiplier is None else f"{out}*{self.multiplier}"


_D_CACHE: dict[str, tuple[float, float]] = {}


def _population_D(key: str, dgp: DGP) -> tuple[float, float]:
    """``(D, phi)`` of a DGP from :func:`gfgsm.theory.quantities` with a fixed seed (cached),
    so every worker computes the same level."""
    if key not in _D_CACHE:
        from threadpoolctl import threadpool_limits

        from .theory import quantities

        # One BLAS thread wherever it is computed: the Monte Carlo integral's sums come out
        # 1-3 ulp apart with more threads, and the level must be the same bits in the main
        # process and in every worker.
        with threadpool_limits(1):
            q = quantities(dgp, seed=0)
        _D_CACHE[key] = (float(q.D), float(q.phi))
    return _D_CACHE[key]


# --------------------------------------------------------------------------------------------
# BIC
# --------------------------------------------------------------------------------------------


def bic(family: str | Family, y: Any, eta: Any, df: Any) -> Any:
    """BIC of fits with linear predictors ``eta`` ``(R, n)`` of responses ``y`` ``(R, n)`` and
    ``df`` ``(R,)`` degrees of freedom, ``(R,)``, in the namespace of the inputs.

    A family with a free dispersion (:attr:`gfgsm.families.Family.has_dispersion`: gaussian)
    profiles it out, ``n log(RSS / n) + log(n) df``; the others use their deviance,
    ``deviance + log(n) df``.  The likelihood, not a method's objective: every method is tuned
    by the same rule.
    """
    xp = get_namespace(y, eta)
    fam = get_family(family)
    n = int(y.shape[-1])
    if fam.has_dispersion:
        rss = xp.sum((y - eta) ** 2, axis=1)
        return n * xp.log(xp.maximum(rss, 1e-300) / n) + math.log(n) * df
    return xp.sum(fam.deviance(y, eta), axis=1) + math.log(n) * df


def bic_select(X: Any, y: Any, family: str | Family, lam: Any, grid: Sequence[float],
               backend: str | None = None, **fit_options: Any
               ) -> tuple[BatchFit, np.ndarray, np.ndarray]:
    """Fit every replication on the grid ``lam_r * g`` at once and select the smallest BIC.

    ``X`` ``(R, n, p)``, ``y`` ``(R, n)``, ``lam`` ``(R,)`` and the multipliers ``grid``
    (``L`` of them); ``fit_options`` go to :func:`gfgsm.fit_batch`.  The ``R x L`` problems go
    through one ``fit_batch`` call (replication-major), on the backend; BIC (:func:`bic`, ``df``
    the number of nonzero coefficients including the intercept) is computed there too and only
    the ``R x L`` criteria cross to the host.  Non-converged grid points are never selected (a
    replication whose grid has no converged point keeps its first grid point, reported
    non-converged).

    Returns ``(fit, idx, lams)``: the :class:`~gfgsm.batch.BatchFit` of the ``R x L``
    problems, the ``(R,)`` indices of the selected ones into it and the ``(R x L,)`` levels
    ``lam_r * g`` (the selected levels are ``lams[idx]``).
    """
    xp = get_namespace(X)
    grid_h = np.asarray(grid, dtype=float)
    L = grid_h.size
    R = int(X.shape[0])
    lams = (np.asarray(lam, dtype=float)[:, None] * grid_h[None, :]).reshape(-1)
    XX = xp.repeat(X, L, axis=0)
    YY = xp.repeat(y, L, axis=0)
    fit = fit_batch(XX, YY, family=family, lam=lams, backend=backend, warn=False,
                    **fit_options)
    eta = xp.reshape(fit.intercept, (-1, 1)) + xp.matmul(XX, fit.coef[..., None])[..., 0]
    df = 1.0 + xp.sum(xp.astype(fit.coef != 0.0, xp.float64), axis=1)
    crit = bic(family, YY, eta, df)
    crit = to_numpy(xp.where(fit.converged, crit, xp.inf)).reshape(R, L)
    best = np.argmin(crit, axis=1)
    none = ~np.isfinite(crit.min(axis=1))
    best = np.where(none, 0, best)
    idx = np.arange(R) * L + best
    return fit, idx, lams
