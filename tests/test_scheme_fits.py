"""G-FGSM with the schemes' induced penalties (docs/theory.md s.6) against independent solvers."""

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
    """q = 2 (fast gradient method) induces lam ||beta||_2 inside the loss (docs/theory.md s.6).

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



# --------------------------------------------------------------------------------------------
# Certified fits for the kinked and jumping scheme penalties (issue 12, docs/theory.md s.6)
# --------------------------------------------------------------------------------------------


def _issue_grid(R: int, seed: int = 0, coef=(0.8, -0.6, 0.0, 0.5, 0.0)):
    """The issue's binomial setting: n = 500, p = 5, lam = 0.05; 0.6 / 0.8 puts b |beta_2| /
    ||beta||_inf = 7.5 on a quantization boundary for b = 10 (the hardest case)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((500, 5))
    Y = (rng.random((R, 500)) < expit(0.2 + X @ np.asarray(coef))).astype(float)
    return X, Y


@pytest.mark.parametrize(("scheme", "params"), [("lq", {"q": 1}), ("lq", {"q": np.inf}),
                                               ("power", {"r": 3})])
def test_kinked_scheme_penalties_are_certified(scheme, params):
    """Goal of issue 12: >= 99% certified (measured 100% of 200; before: 27%, 89%, 23%
    uncertified).  R = 100 here, so at most one failure."""
    X, Y = _issue_grid(100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = gfgsm.fit_batch(X, Y, family="binomial", method="gfgsm", lam=0.05,
                              scheme=scheme, **params)
    assert np.sum(fit.status != "converged") <= 1
    assert np.all(to_numpy(fit.kkt)[to_numpy(fit.converged)] <= 1e-9)


def test_max_norm_scheme_matches_cvxpy():
    """q = 1: mean softplus(-(2y - 1) eta + lam ||beta||_inf), convex with kinks at ties of the
    max.  CLARABEL solves the exponential-cone form to ~1e-9 in the objective; the minimiser is
    pinned to ~sqrt of that only along flat directions, so 1e-5 on the coefficients and
    1e-9 on the objective.  Replications picked where the optimum has a tie at the max."""
    X, Y = _issue_grid(40)
    lam = 0.05
    fit = gfgsm.fit_batch(X, Y, family="binomial", method="gfgsm", lam=lam, scheme="lq", q=1)
    coef = to_numpy(fit.coef)
    ties = np.flatnonzero(np.sum(np.abs(coef) == np.abs(coef).max(1, keepdims=True), 1) > 1)
    assert ties.size >= 2, "the setting should put ties at the max"
    for r in ties[:3]:
        y = Y[r]
        a, b = cp.Variable(), cp.Variable(5)
        eta = a + X @ b
        obj = cp.sum(cp.logistic(-cp.multiply(2 * y - 1, eta) + lam * cp.norm_inf(b))) / len(y)
        cp.Problem(cp.Minimize(obj)).solve(solver="CLARABEL", tol_gap_abs=1e-11,
                                           tol_gap_rel=1e-11, tol_feas=1e-11)
        got = np.r_[to_numpy(fit.intercept)[r], coef[r]]
        np.testing.assert_allclose(got, np.r_[a.value, b.value], atol=1e-5)
        assert to_numpy(fit.objective)[r] <= obj.value + 1e-9
        assert fit.status[r] == "converged"


def _np_levels(beta: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent of gfgsm: b |beta| / max |beta| and its rounded levels (half to even)."""
    u = b * np.abs(beta) / np.abs(beta).max(axis=-1, keepdims=True)
    return u, np.maximum(np.round(u), 1.0)


@pytest.mark.parametrize("b", [4, 10])
def test_quantized_fits_are_level_consistent_or_flagged(b):
    """Every fit is either a certified level-consistent point or flagged ``level_cycle``, and
    at least 99% are certified.

    Checked independently: (1) the weights used are the levels of the estimate, except on a
    boundary (``|b u_j - (m + 1/2)| <= 1e-6``) where they lie between the two adjacent levels;
    (2) the estimate minimises the weighted-l1 objective with those weights (scipy L-BFGS-B on
    the split beta = b+ - b-, to 1e-8 in the objective); (3) off the boundaries it is a local
    minimiser of Q_n itself: no random nearby point (radius 1e-4, within the same levels) is
    lower."""
    X, Y = _issue_grid(60)
    lam = 0.05
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fit = gfgsm.fit_batch(X, Y, family="binomial", method="gfgsm", lam=lam,
                              scheme="quantized", b=b)
    status = fit.status.astype(str)
    assert set(status) <= {"converged", "level_cycle"}
    if "level_cycle" in status:
        assert any("level_cycle" in str(w.message) for w in rec)
    coef, icpt = to_numpy(fit.coef), to_numpy(fit.intercept)
    w = to_numpy(fit.info["level_weights"])
    u, lev = _np_levels(coef, b)
    ok = status == "converged"
    # Issue 12's goal, >= 99% certified (measured 100% at R = 200 for b = 4 and 10, on this
    # design and on coef (0.8, -0.5, 0, 0.3, 0); 51% before for b = 10).
    assert ok.mean() >= 0.99
    near = np.abs(u - (np.floor(u) + 0.5)) <= 1e-6
    on_level = np.isclose(w * b, lev, rtol=0, atol=0)
    between = near & (w * b >= np.floor(u) - 1e-12) & (w * b <= np.floor(u) + 1 + 1e-12)
    assert np.all((on_level | between)[ok])
    rng = np.random.default_rng(1)
    on_boundary = np.flatnonzero(ok & near.any(axis=1))
    assert on_boundary.size >= 2, "the design should put some optima on a jump"
    for r in np.r_[on_boundary[:2], np.flatnonzero(ok & ~near.any(axis=1))[:2]]:
        y, s = Y[r], 2 * Y[r] - 1
        wr = w[r]

        def f(z, s=s, wr=wr, y=y):
            a, bp, bm = z[0], z[1:6], z[6:]
            m = s * (a + X @ (bp - bm)) - lam * np.sum(wr * (bp + bm))
            return np.mean(np.logaddexp(0, -m))

        z0 = np.r_[icpt[r], np.maximum(coef[r], 0), np.maximum(-coef[r], 0)]
        ref = minimize(f, z0 + 0.05, method="L-BFGS-B",
                       bounds=[(None, None)] + [(0, None)] * 10,
                       options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000})
        assert f(z0) <= ref.fun + 1e-8
        if not near[r].any():
            q0 = gfgsm.objective(X, y, coef[r], icpt[r], family="binomial", method="gfgsm",
                                 lam=lam, penalty=gfgsm.get_scheme("quantized", b=b)
                                 .induced_penalty)
            for _ in range(20):
                d = rng.standard_normal(6) * 1e-4
                q1 = gfgsm.objective(X, y, coef[r] + d[1:], icpt[r] + d[0], family="binomial",
                                     method="gfgsm", lam=lam,
                                     penalty=gfgsm.get_scheme("quantized", b=b).induced_penalty)
                assert q1 >= q0 - 1e-12
