"""The adversarial shift ``P(beta)`` as the solvers see it (docs/theory.md s.3).

Every objective of the package is ``mean_i psi(y_i, eta_i, P(beta))``; the solvers of
:mod:`gfgsm.solvers` need from ``P`` its value, its gradient and curvature on an orthant of
``beta``, and its one-sided slopes at zero.  A :class:`Shift` holds a penalty at its levels
``lam`` (batched over replications) and answers exactly that; a penalty makes its own with
:meth:`gfgsm.penalties.Penalty.as_shift`, so the solvers never ask which penalty they face.
"""

from __future__ import annotations

from typing import Any

from ._backend import get_namespace

__all__ = ["L1Shift", "PenaltyShift", "Shift"]


class Shift:
    """The adversarial shift ``P(beta) >= 0`` as the solver sees it (batched over ``R``).

    ``P`` must be smooth on each orthant of ``beta`` (the interior of a sign pattern), with
    one-sided slopes ``+-zero_slope_j`` in ``beta_j`` at ``beta_j = 0``.
    """

    #: (R, p) bool: slopes held at exactly zero.
    fixed: Any
    #: (R, p) one-sided slope of ``P`` in ``beta_j`` at ``beta_j = 0``.
    zero_slope: Any

    def value(self, beta: Any) -> Any:  # (R, p) -> (R,)
        raise NotImplementedError

    def orthant_grad(self, beta: Any, sigma: Any) -> Any:  # gradient on orthant sigma, (R, p)
        raise NotImplementedError

    def orthant_hess(self, beta: Any, sigma: Any) -> Any | None:  # (R, p, p), None if 0
        return None

    def take(self, idx: Any) -> Shift:
        """The shift of the replications ``idx`` (for the solver's working set)."""
        raise NotImplementedError


class L1Shift(Shift):
    """``P(beta) = c0 + sum_j u_j |beta_j|`` (``u_j = inf`` holds ``beta_j`` at zero)."""

    def __init__(self, u: Any, c0: Any) -> None:
        xp = get_namespace(u)
        self.fixed = xp.isinf(u)
        self.u = xp.where(self.fixed, 0.0, u)
        self.zero_slope = self.u
        self.c0 = c0

    def value(self, beta: Any) -> Any:
        xp = get_namespace(beta)
        return self.c0 + xp.sum(self.u * xp.abs(beta), axis=-1)

    def orthant_grad(self, beta: Any, sigma: Any) -> Any:
        return self.u * sigma

    def take(self, idx: Any) -> L1Shift:
        xp = get_namespace(self.u)
        new = L1Shift.__new__(L1Shift)
        new.fixed = xp.take(self.fixed, idx, axis=0)
        new.u = xp.take(self.u, idx, axis=0)
        new.zero_slope = new.u
        new.c0 = xp.take(self.c0, idx, axis=0)
        return new


class PenaltyShift(Shift):
    """A convex (or orthant-smooth) :class:`Penalty` at level ``lam`` seen as a solver shift."""

    def __init__(self, penalty: Any, lam: Any, p: int) -> None:
        xp = get_namespace(lam)
        self.penalty, self.lam = penalty, lam
        R = lam.shape[0]
        self.fixed = xp.zeros((R, p), dtype=xp.bool)
        self.zero_slope = penalty.zero_slope(lam, xp.zeros((R, p), dtype=xp.float64))
        self.separable = penalty.is_separable

    def take(self, idx: Any) -> PenaltyShift:
        xp = get_namespace(self.lam)
        new = PenaltyShift.__new__(PenaltyShift)
        new.penalty, new.separable = self.penalty, self.separable
        new.lam = xp.take(self.lam, idx, axis=0)
        new.fixed = xp.take(self.fixed, idx, axis=0)
        new.zero_slope = xp.take(self.zero_slope, idx, axis=0)
        return new

    def value(self, beta: Any) -> Any:
        return self.penalty.value(beta, self.lam)

    def orthant_grad(self, beta: Any, sigma: Any) -> Any:
        return self.penalty.grad(beta, self.lam, sigma)

    def orthant_hess(self, beta: Any, sigma: Any) -> Any | None:
        if not self.separable:
            return self.penalty.orthant_hess(beta, self.lam, sigma)
        xp = get_namespace(beta)
        t = xp.abs(beta)
        # The curvature of |b|^r (r < 2, r != 1) is infinite at 0; cap it so a coefficient
        # near zero takes a finite Newton step (the line search then decides).
        h = xp.where(t > 0, self.penalty.second_derivative(xp.where(t > 0, t, 1.0), self.lam), 0.0)
        h = xp.clip(h, -1e12, 1e12)
        p = beta.shape[-1]
        return h[..., None] * xp.eye(p, dtype=beta.dtype)
