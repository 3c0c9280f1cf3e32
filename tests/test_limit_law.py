"""Limit laws of docs/theory.md s.5 and s.7 against closed forms computed here and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

import gfgsm
from gfgsm.theory import limit_law, quantities


@pytest.fixture(scope="module")
def binomial_dgp():
    return gfgsm.DGP("binomial", gfgsm.GaussianDesign(2, rho=0.3), coef=[1.0, -0.5],
                     intercept=1.0)


@pytest.fixture(scope="module")
def binomial_q(binomial_dgp):
    return quantities(binomial_dgp)


def test_closed_form_bias_gfgsm_and_pl(binomial_dgp, binomial_q):
    """bias = I^{-1}(lam0 ||beta0||_1 V - lam0 D sgn0) (G-FGSM), -lam0/phi I^{-1} sgn0 (PL)."""
    q, lam0 = binomial_q, 1.7
    sgn0 = np.r_[0.0, np.sign(binomial_dgp.coef)]
    l1 = np.abs(binomial_dgp.coef).sum()
    want_g = np.linalg.solve(q.I, lam0 * l1 * q.V - lam0 * q.D * sgn0)
    want_p = -lam0 / q.phi * np.linalg.solve(q.I, sgn0)
    g = limit_law(binomial_dgp, lam0, "gfgsm", quantities_=q)
    p = limit_law(binomial_dgp, lam0, "pl", quantities_=q)
    assert g.closed_form and p.closed_form
    # Same formula evaluated by a different route (solve vs the law's inverse): rounding only.
    np.testing.assert_allclose(g.bias, want_g, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(p.bias, want_p, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.cov, np.linalg.inv(q.I), rtol=1e-10)


def test_gaussian_pl_level_is_on_the_phi_one_scale():
    """PL on the phi = 1 scale at lam has THEORY's level lam / phi: bias -lam0/sigma^2 I^-1 sgn0."""
    dgp = gfgsm.DGP("gaussian", gfgsm.GaussianDesign(2), coef=[1.0, -1.0], sigma=2.0)
    law = limit_law(dgp, 1.0, "pl")
    # I = E[xt xt'] / sigma^2 = I_3 / 4, so I^{-1} sgn0 / sigma^2 = sgn0.
    np.testing.assert_allclose(law.bias, [0.0, -1.0, 1.0], atol=1e-12)


def test_sample_reproduces_mean_and_covariance(binomial_dgp, binomial_q):
    law = limit_law(binomial_dgp, 2.0, "gfgsm", quantities_=binomial_q)
    m = 40_000
    U = law.sample(m, seed=3)
    se = np.sqrt(np.diag(law.cov) / m)
    assert np.all(np.abs(U.mean(0) - law.bias) < 4 * se)
    # SE of a covariance entry of a Gaussian sample: sqrt((S_ii S_jj + S_ij^2) / m).
    S = law.cov
    se_cov = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / m)
    assert np.all(np.abs(np.cov(U, rowvar=False) - S) < 4 * se_cov)


def _zero_coordinate_threshold_law(law, j):
    """Mean and sd of the profiled score b~_j; U_j = 0 iff |b~_j| <= level (l1)."""
    I = np.asarray(law.quantities.I)  # noqa: E741
    F = [k for k in range(I.shape[0]) if k != j]
    A = np.linalg.solve(I[np.ix_(F, F)], I[F, j])
    S = I[j, j] - I[j, F] @ A
    mean_b = -(law.lin[j] - A @ law.lin[F])  # b = W - lin, E W = 0
    return mean_b, math.sqrt(S), S


@pytest.mark.parametrize("method", ["gfgsm", "pl"])
def test_point_mass_at_zero_matches_the_profiled_threshold(method):
    """With one true zero, U_j = 0 iff the profiled score lies in [-level, level] (KKT of the
    one-dimensional lasso left after minimising out the other coordinates): a closed form."""
    dgp = gfgsm.DGP("binomial", gfgsm.GaussianDesign(3, rho=0.4), coef=[1.0, 0.0, -0.5],
                    intercept=0.5)
    # Levels chosen so that P(U_j = 0) is well inside (0, 1) for both estimators.
    law = limit_law(dgp, 1.5 if method == "gfgsm" else 0.5, method, n_mc=20_000, seed=1)
    assert not law.closed_form
    mean_b, sd, _ = _zero_coordinate_threshold_law(law, 2)
    c = law.pen_level
    want = norm.cdf((c - mean_b) / sd) - norm.cdf((-c - mean_b) / sd)
    assert 0.05 < want < 0.95
    assert abs(law.prob_zero[2] - want) < 4 * math.sqrt(want * (1 - want) / law.n_mc)
    assert np.isnan(law.prob_zero[0]) and np.isnan(law.prob_zero[1])
    U = law.sample(2000, seed=9)
    assert np.all(U[:, 1] != 0)


def test_argmin_of_Z_equals_an_independent_qp_solver():
    """Draws of the l1 limit equal CLARABEL's minimisation of Z(u) for the same W.

    Z is a strictly convex quadratic plus a weighted l1 term; CLARABEL's interior point solution
    is accurate to ~1e-8 at these tolerances, so 1e-6 separates solver error from a wrong Z."""
    import cvxpy as cp

    from gfgsm.theory import _argmin_Z

    dgp = gfgsm.DGP("poisson", gfgsm.GaussianDesign(3, rho=0.2), coef=[0.5, 0.0, 0.0],
                    intercept=0.2)
    law = limit_law(dgp, 2.0, "gfgsm", n_mc=500)
    z = np.random.default_rng(0).standard_normal((5, 4))
    U = _argmin_Z(law, z, None)
    I = np.asarray(law.quantities.I)  # noqa: E741
    W = z @ np.linalg.cholesky(I).T
    for k in range(5):
        u = cp.Variable(4)
        Z = (-W[k] @ u + cp.quad_form(u, cp.psd_wrap(I)) / 2 + law.lin @ u
             + law.pen_level * cp.norm1(u[2:]))
        cp.Problem(cp.Minimize(Z)).solve(solver="CLARABEL", tol_gap_abs=1e-11,
                                         tol_gap_rel=1e-11, tol_feas=1e-11)
        np.testing.assert_allclose(U[k], u.value, atol=1e-6)
    assert np.any(U[:, 2:] == 0)  # the point mass is hit exactly, not approximately


def test_lr_limit_point_mass_matches_the_bridge_threshold():
    """lr, 0 < r < 1 (s.7): with one zero the profiled problem min S(v - z)^2/2 + c|v|^r has
    v = 0 iff |z| <= h(c/S), h(l) = (2 - r)/(2 - 2r) (2 l (1 - r))^(1/(2 - r)) (the bridge
    thresholding rule); the nonzero coordinates are unbiased (lin = 0)."""
    r = 0.5
    dgp = gfgsm.DGP("binomial", gfgsm.GaussianDesign(2), coef=[1.0, 0.0], intercept=0.0)
    law = limit_law(dgp, 1.0, "gfgsm", penalty="lr", r=r, n_mc=20_000, seed=2)
    mean_b, sd, S = _zero_coordinate_threshold_law(law, 2)
    lam = law.pen_level / S
    h = (2 - r) / (2 - 2 * r) * (2 * lam * (1 - r)) ** (1 / (2 - r))
    # z = b~ / S ~ N(mean_b / S, sd / S)
    want = norm.cdf((h - mean_b / S) / (sd / S)) - norm.cdf((-h - mean_b / S) / (sd / S))
    assert 0.05 < want < 0.95
    assert abs(law.prob_zero[2] - want) < 4 * math.sqrt(want * (1 - want) / law.n_mc)
    # No linear term for lr: the nonzero coordinates' limit is centred (within MC error).
    assert np.all(np.abs(law.bias[:2]) < 4 * law.se_bias[:2])


def test_at_n_scales_the_limit(binomial_dgp, binomial_q):
    law = limit_law(binomial_dgp, 2.0, "gfgsm", quantities_=binomial_q)
    fin = law.at_n(400)
    assert fin.lam == pytest.approx(2.0 / 20.0)
    np.testing.assert_allclose(fin.mean, binomial_dgp.theta0 + law.bias / 20.0)
    np.testing.assert_allclose(fin.cov, law.cov / 400.0)
    assert fin.sample(10, seed=1).shape == (10, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lam0": -1.0}, "lam0"),
        ({"lam0": float("nan")}, "lam0"),
        ({"lam0": 1.0, "method": "ridge"}, "method"),
        ({"lam0": 1.0, "penalty": "ridge"}, "penalty"),
        ({"lam0": 1.0, "penalty": "lr"}, "0 < r < 1"),
        ({"lam0": 1.0, "penalty": "lr", "r": 1.5}, "0 < r < 1"),
        ({"lam0": 1.0, "r": 0.5}, "r applies"),
    ],
)
def test_bad_input(binomial_dgp, binomial_q, kwargs, match):
    with pytest.raises(ValueError, match=match):
        limit_law(binomial_dgp, quantities_=binomial_q, **kwargs)
