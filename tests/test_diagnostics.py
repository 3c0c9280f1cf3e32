"""The sign-neutrality test on data: calibration, power, consistency and its bias prediction."""

from __future__ import annotations

import numpy as np
import pytest

import gfgsm
from gfgsm.diagnostics import sign_neutrality
from gfgsm.theory import quantities


def _gauss(noise: str) -> gfgsm.DGP:
    return gfgsm.DGP("gaussian", gfgsm.GaussianDesign(2), coef=[1.0, -0.5], intercept=0.5,
                     noise=noise)


def test_size_under_sign_neutral_errors():
    """Symmetric errors (V = 0): the 5% test rejects in 5% of data sets.  With 200 data sets
    the rejection count is Binomial(200, 0.05) if the test is calibrated: mean 10, sd 3.1; the
    bootstrap with 100 replicates is slightly liberal, so [2, 22] is a 4-sd band."""
    dgp = _gauss("normal")
    X, Y = dgp.sample(200, seed=7, R=200)
    p = np.array([sign_neutrality(X[r], Y[r], "gaussian", n_boot=100, seed=r).pvalue
                  for r in range(200)])
    assert 2 <= int((p < 0.05).sum()) <= 22


def test_power_against_skewed_errors():
    """Exp(1) - 1 errors: V[0] = E[sign e] / sigma^2 = 2/e - 1 ~ -0.26, detected at n = 500."""
    dgp = _gauss("skewed")
    X, Y = dgp.sample(500, seed=8, R=30)
    p = np.array([sign_neutrality(X[r], Y[r], "gaussian", n_boot=100, seed=r).pvalue
                  for r in range(30)])
    assert np.mean(p < 0.05) >= 0.9


def test_estimate_is_consistent_and_bootstrap_se_is_right():
    """Mean of V_hat over 200 binomial data sets agrees with the population V (quantities)
    within 4 MCSE plus a 1/n allowance for the plug-in's O(1/n) bias; the bootstrap SE agrees
    with the empirical SD of V_hat across data sets to 20% (the SD of an SD estimated from 200
    draws is ~5%, the bootstrap's own error ~7% at 100 replicates)."""
    dgp = gfgsm.DGP("binomial", gfgsm.GaussianDesign(2, rho=0.3), coef=[1.0, -0.5],
                    intercept=1.0)
    V = quantities(dgp).V
    X, Y = dgp.sample(800, seed=9, R=200)
    res = [sign_neutrality(X[r], Y[r], "binomial", n_boot=100, seed=r) for r in range(200)]
    Vh = np.array([r.V for r in res])
    se_boot = np.array([r.se for r in res]).mean(0)
    sd = Vh.std(0, ddof=1)
    assert np.all(np.abs(Vh.mean(0) - V) < 4 * sd / np.sqrt(200) + 1.0 / 800)
    np.testing.assert_allclose(se_boot, sd, rtol=0.2)


def test_predicted_bias_formula():
    dgp = _gauss("skewed")
    X, y = dgp.sample(300, seed=1)
    r = sign_neutrality(X, y, "gaussian", n_boot=50)
    # Independent evaluation at the fitted model: I = mean xt xt' / phi, V as defined.
    Xt = np.c_[np.ones(300), X]
    res = y - Xt @ r.theta
    phi = np.mean(res**2)
    V = (np.sign(res)[:, None] * Xt).mean(0) / phi
    I = Xt.T @ Xt / 300 / phi  # noqa: E741
    np.testing.assert_allclose(r.V, V, rtol=1e-10)
    lam = 0.07
    want = lam * np.abs(r.theta[1:]).sum() * np.linalg.solve(I, V)
    np.testing.assert_allclose(r.predicted_bias(lam), want, rtol=1e-8)
    s = r.summary(lam)
    assert "Wald chi2(3)" in s and "intercept" in s and "extra bias" in s


def test_separated_binomial_needs_a_penalty():
    X = np.r_[np.linspace(-2, -0.1, 20), np.linspace(0.1, 2, 20)][:, None]
    y = (X[:, 0] > 0).astype(float)
    with pytest.raises(ValueError, match="fit_lam"):
        sign_neutrality(X, y, "binomial")
    r = sign_neutrality(X, y, "binomial", fit_lam=0.05, n_boot=50)
    assert np.isfinite(r.wald)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_boot": 5}, "n_boot"), ({"feature_names": ["a"]}, "feature_names")],
)
def test_bad_input(kwargs, match):
    X, y = _gauss("normal").sample(50, seed=0)
    with pytest.raises(ValueError, match=match):
        sign_neutrality(X, y, "gaussian", **kwargs)
    with pytest.raises(ValueError, match="shape"):
        sign_neutrality(X[:, 0], y, "gaussian")
    with pytest.raises(ValueError, match="0 or 1"):
        sign_neutrality(X, y, "binomial")
