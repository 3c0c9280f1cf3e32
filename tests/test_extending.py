"""Adding a family or a penalty touches only its own module (issue 14).

A family and a penalty written here from the abstract base classes, with nothing registered
anywhere, are fitted end to end by ``fit_batch`` and the estimators.  References are
independent: the built-in family with the same likelihood (the minimiser does not depend on
how the loss is written), and scipy on the penalty's objective coded from its formula.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit

import gfgsm
from gfgsm._backend import get_namespace, to_numpy
from gfgsm.families import Family
from gfgsm.penalties import SeparablePenalty


class ToyNormal(Family):
    """Unit-variance normal written from scratch: ``b = eta^2/2``, loss ``b - y eta``."""

    name = "toy_normal"
    has_dispersion = True
    tweedie_power = 0.0

    def cumulant(self, eta: Any) -> Any:
        return eta * eta / 2.0

    def mean(self, eta: Any) -> Any:
        return eta

    def d2loss(self, y: Any, eta: Any) -> Any:
        return 0.0 * y + 1.0 + 0.0 * eta

    def variance(self, mu: Any) -> Any:
        return 0.0 * mu + 1.0

    def deviance(self, y: Any, eta: Any) -> Any:
        return (y - eta) ** 2

    def adversarial_residual(self, y: Any, eta: Any, P: Any) -> tuple[Any, ...]:
        r = y - eta + 0.0 * P  # (l(eta - P) - l(eta + P)) / (2P) = y - eta
        z = 0.0 * r
        return r, z - 1.0, z, z, z, z

    def validate_y(self, y: np.ndarray) -> None:
        if not np.all(np.isfinite(y)):
            raise ValueError("y must be finite")


class ToyBinary(Family):
    """Bernoulli with the logit link, written from scratch: ``b = log(1 + e^eta)``."""

    name = "toy_binary"
    sign_is_constant = True
    is_binary = True

    def cumulant(self, eta: Any) -> Any:
        xp = get_namespace(eta)
        return xp.logaddexp(0.0 * eta, eta)

    def mean(self, eta: Any) -> Any:
        xp = get_namespace(eta)
        return 1.0 / (1.0 + xp.exp(-eta))

    def d2loss(self, y: Any, eta: Any) -> Any:
        mu = self.mean(eta)
        return mu * (1.0 - mu) + 0.0 * y

    def variance(self, mu: Any) -> Any:
        return mu * (1.0 - mu)

    def deviance(self, y: Any, eta: Any) -> Any:
        return 2.0 * (self.cumulant(eta) - y * eta)

    def initial_eta(self, ybar: Any) -> Any:
        xp = get_namespace(ybar)
        yb = xp.clip(ybar, 1e-3, 1 - 1e-3)
        return xp.log(yb / (1 - yb))

    def in_support(self, y: Any) -> Any:
        xp = get_namespace(y)
        return xp.all((y == 0.0) | (y == 1.0))

    def validate_y(self, y: np.ndarray) -> None:
        if not np.all((y == 0) | (y == 1)):
            raise ValueError("y must be 0 or 1")


class ToyElastic(SeparablePenalty):
    """``p_lam(t) = lam (t + t^2)``: convex, l1's kink at zero plus a ridge term."""

    name = "toy_elastic"

    @property
    def is_convex(self) -> bool:
        return True

    def pointwise(self, t: Any, lam: Any) -> Any:
        return self._lam(lam, t) * (t + t * t)

    def derivative(self, t: Any, lam: Any) -> Any:
        return self._lam(lam, t) * (1.0 + 2.0 * t)

    def second_derivative(self, t: Any, lam: Any) -> Any:
        return self._lam(lam, t) * 2.0 + 0.0 * t

    @staticmethod
    def _lam(lam: Any, t: Any) -> Any:
        return lam if np.isscalar(lam) else lam[..., None]


def _data(kind: str, R: int = 4, n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    eta = 0.3 + X @ np.array([0.8, -0.6, 0.4, 0.0])
    if kind == "normal":
        return X, eta + rng.standard_normal((R, n))
    return X, (rng.random((R, n)) < expit(eta)).astype(float)


@pytest.mark.parametrize(("toy", "builtin", "kind"), [(ToyNormal(), "gaussian", "normal"),
                                                     (ToyBinary(), "binomial", "binary")])
@pytest.mark.parametrize("method", ["gfgsm", "pl"])
def test_a_new_family_fits_end_to_end(toy, builtin, kind, method):
    """The same likelihood as a built-in family: the same minimiser.  Both fits are certified
    to a KKT residual of 1e-9 on a problem with curvature O(0.1-1), so they agree to 1e-7."""
    X, Y = _data(kind)
    a = gfgsm.fit_batch(X, Y, family=toy, method=method, lam=0.05, penalty="scad")
    b = gfgsm.fit_batch(X, Y, family=builtin, method=method, lam=0.05, penalty="scad")
    assert np.all(a.status == "converged")
    np.testing.assert_allclose(to_numpy(a.coef), to_numpy(b.coef), atol=1e-7)
    np.testing.assert_allclose(to_numpy(a.intercept), to_numpy(b.intercept), atol=1e-7)


def test_a_new_binary_family_is_a_classifier():
    X, Y = _data("binary", R=1)
    est = gfgsm.GFGSM(family=ToyBinary(), lam=0.05).fit(X, np.where(Y[0] > 0, "yes", "no"))
    assert list(est.classes_) == ["no", "yes"]
    assert set(est.predict(X)) <= {"no", "yes"}
    assert est.predict_proba(X).shape == (X.shape[0], 2)


def test_a_new_penalty_fits_end_to_end():
    """G-FGSM binomial with lam (|b| + b^2) inside the loss against scipy L-BFGS-B on the split
    beta = b+ - b- (b+, b- >= 0; at the optimum one of each pair is 0, so the split objective
    equals the penalty's).  Both are solved to ~1e-10 in the objective; 1e-6 on the
    coefficients."""
    X, Y = _data("binary", R=2)
    lam = 0.05
    fit = gfgsm.fit_batch(X, Y, family="binomial", method="gfgsm", lam=lam, penalty=ToyElastic())
    assert np.all(fit.status == "converged")
    for r in range(2):
        s = 2 * Y[r] - 1

        def f(z, s=s):
            a, bp, bm = z[0], z[1:5], z[5:]
            P = lam * np.sum(bp + bm + (bp - bm) ** 2)
            return np.mean(np.logaddexp(0.0, -(s * (a + X @ (bp - bm))) + P))

        ref = minimize(f, np.zeros(9), method="L-BFGS-B", bounds=[(None, None)] + [(0, None)] * 8,
                       options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000})
        want = np.r_[ref.x[0], ref.x[1:5] - ref.x[5:]]
        got = np.r_[to_numpy(fit.intercept)[r], to_numpy(fit.coef)[r]]
        np.testing.assert_allclose(got, want, atol=1e-6)
