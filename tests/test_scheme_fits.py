"""G-FGSM with the schemes' induced penalties (THEORY.md s.6) against independent solvers."""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning

import gfgsm
from gfgsm._backend import to_numpy


def _data(family: str, n: int = 120, p: int = 4, seed: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    eta = 0.2 + X @ np.linspace(1.0, -0.5, p)
    if family == "binomial":
        y = (rng.random(n) < expit(eta)).astype(float)
    else:
        y = eta + rng.standard_normal(n)
    return X, y


def test_sign_scheme_is_the_l1_penalty():
    X, y = _data("binomial")
    a = gfgsm.fit_batch(X, y, family="binomial", method="gfgsm", lam=0.05, scheme="sign")
    b = gfgsm.fit_batch(X, y, family="binomial", method="gfgsm", lam=0.05)
    np.testing.assert_array_equal(to_numpy(a.coef), to_numpy(b.coef))


@pytest.mark.parametrize("lam", [0.02, 0.1])
def test_l2_scheme_binomial_matches_bfgs(lam):
    """q = 2 (fast gradient method) induces lam ||beta||_2 inside the loss (THEORY.md s.6).

    Reference: scipy BFGS on mean softplus(-(2y - 1) eta + lam ||beta||_2), smooth away from
    beta = 0 (the solution here is far from 0), gradient tolerance 1e-11; a strictly convex
    objective with curvature ~0.1 makes both solutions accurate to ~1e-9."""
    X, y = _data("binomial")
    s = 2 * y - 1

    def f(z):
        eta = z[0] + X @ z[1:]
        nb = np.linalg.norm(z[1:])
        m = -s * eta + lam * nb
        w = expit(m) / len(y)
        g = np.r_[-(w * s).sum(), -(X.T @ (w * s)) + w.sum() * lam * z[1:] / nb]
        return np.logaddexp(0, m).mean(), g

    ref = minimize(f, np.r_[0.0, np.ones(X.shape[1])], jac=True, method="BFGS",
                   options={"gtol": 1e-11, "maxiter": 10_000}).x
    fit = gfgsm.fit_batch(X, y, family="binomial", method="gfgsm", lam=lam, scheme="lq", q=2)
    assert bool(to_numpy(fit.converged)[0])
    got = np.r_[to_numpy(fit.intercept)[0], to_numpy(fit.coef)[0]]
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_l2_scheme_gaussian_matches_cvxpy():
    """Gaussian worst case (|y - eta| + lam ||beta||_2)^2 / 2: convex, kinked at zero residuals;
    CLARABEL solves it to ~1e-9, so 1e-6 leaves room for both solvers."""
    X, y = _data("gaussian", n=60)
    lam = 0.1
    a, b = cp.Variable(), cp.Variable(X.shape[1])
    obj = cp.sum(cp.square(cp.abs(y - a - X @ b) + lam * cp.norm2(b))) / (2 * len(y))
    cp.Problem(cp.Minimize(obj)).solve(solver="CLARABEL", tol_gap_abs=1e-10,
                                       tol_gap_rel=1e-10, tol_feas=1e-10)
    fit = gfgsm.fit_batch(X, y, family="gaussian", method="gfgsm", lam=lam, scheme="lq", q=2)
    got = np.r_[to_numpy(fit.intercept)[0], to_numpy(fit.coef)[0]]
    np.testing.assert_allclose(got, np.r_[a.value, b.value], atol=1e-6)
    assert bool(to_numpy(fit.converged)[0])


@pytest.mark.parametrize(("scheme", "params"), [("lq", {"q": 1}), ("power", {"r": 2}),
                                               ("quantized", {"b": 10})])
def test_nonsmooth_scheme_penalties_are_never_silent(scheme, params):
    """Max-norm-type penalties are kinked where |beta_j| tie at the maximum and the quantized
    penalty jumps; fits that do not reach the KKT tolerance must say so."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4))
    Y = (rng.random((12, 80)) < expit(X @ [1.0, -1.0, 0.5, 0.0])).astype(float)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fit = gfgsm.fit_batch(X, Y, family="binomial", method="gfgsm", lam=0.05,
                              scheme=scheme, **params)
    conv = to_numpy(fit.converged).astype(bool)
    assert np.all(to_numpy(fit.kkt)[conv] <= 1e-9)
    assert np.all((fit.status == "converged") == conv)
    if not conv.all():
        assert any(issubclass(w.category, ConvergenceWarning) for w in rec)

