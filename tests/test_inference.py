"""One-step debiased inference (issue 11; docs/theory.md s.5, "Debiased inference").

References are independent: statsmodels' GLM (its own IRLS and covariances) for the MLE case,
the one-at-a-time computation for the batch, NumPy for ``array_api_strict``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import gfgsm
from gfgsm import GFGSM, PenalizedGLM, fit_batch
from gfgsm._backend import to_numpy
from gfgsm.inference import debias

SM_FAMILIES = {
    "gaussian": sm.families.Gaussian,
    "binomial": sm.families.Binomial,
    "poisson": sm.families.Poisson,
}


def make_data(family: str, n: int, seed: int, R: int | None = None):
    rng = np.random.default_rng(seed)
    shape = (n,) if R is None else (R, n)
    X = rng.standard_normal((n, 3))
    beta = np.array([0.6, -0.4, 0.0])
    eta = 0.3 + X @ beta
    if family == "gaussian":
        y = eta + rng.standard_normal(shape)
    elif family == "binomial":
        y = (rng.random(shape) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    else:
        y = rng.poisson(np.exp(eta), size=shape).astype(float)
    return X, y


def _theta(fit):
    return np.concatenate([to_numpy(fit.intercept)[:, None], to_numpy(fit.coef)], axis=1)


# --------------------------------------------------------------------------------------------
# 1. lam = 0: the debiased estimate is the MLE and its inference is statsmodels'
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["pl", "gfgsm"])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
@pytest.mark.parametrize("family", ["gaussian", "binomial", "poisson"])
def test_mle_matches_statsmodels(family, cov_type, method):
    X, y = make_data(family, 300, seed=3)
    est_cls = PenalizedGLM if method == "pl" else GFGSM
    est = est_cls(family=family, lam=0.0).fit(X, y)
    ref = sm.GLM(y, sm.add_constant(X), family=SM_FAMILIES[family]()).fit(
        cov_type=cov_type, tol=1e-12)
    # Both solve the score equations to ~1e-9 or better (KKT tol 1e-9 here, IRLS tol 1e-12
    # there), so the parameters agree to ~1e-9 absolute and the covariances, smooth in theta,
    # to ~1e-9 relative; 1e-6 relative on bse/intervals leaves three orders of margin (the
    # measured worst case is 6e-10, statsmodels' poisson non-robust bse).
    np.testing.assert_allclose(est.params_debiased_, ref.params, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(est.params_debiased_[1:], est.coef_, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(np.sqrt(np.diag(est.cov_params(cov_type))), ref.bse, rtol=1e-6)
    np.testing.assert_allclose(est.cov_params(cov_type), ref.cov_params(), rtol=1e-6,
                               atol=1e-12)
    np.testing.assert_allclose(est.conf_int(0.05, cov_type=cov_type), ref.conf_int(0.05),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(est.conf_int(0.1, cov_type=cov_type), ref.conf_int(0.1),
                               rtol=1e-6, atol=1e-9)
    if cov_type == "nonrobust":
        np.testing.assert_allclose(est.bse_, ref.bse, rtol=1e-6)
        np.testing.assert_allclose(est.zvalues_, ref.tvalues, rtol=1e-6)
        np.testing.assert_allclose(est.pvalues_, ref.pvalues, rtol=1e-5, atol=1e-12)
        # gaussian: statsmodels' scale is RSS / (n - p - 1)
        np.testing.assert_allclose(est.scale_, ref.scale, rtol=1e-9)


def test_gaussian_scale_is_rss_over_residual_df():
    X, y = make_data("gaussian", 200, seed=4)
    est = PenalizedGLM(family="gaussian", lam=0.0).fit(X, y)
    resid = y - est.params_debiased_[0] - X @ est.params_debiased_[1:]
    assert est.scale_ == pytest.approx(np.sum(resid**2) / (200 - 3 - 1), rel=1e-10)


# --------------------------------------------------------------------------------------------
# 2. the one-step correction lands O(1/n) from the MLE
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "method"),
                         [("binomial", "gfgsm"), ("binomial", "pl"), ("poisson", "gfgsm")])
def test_one_step_is_within_order_one_over_n_of_the_mle(family, method):
    # lam = lam0 / sqrt(n) with lam0 = 1: the penalized estimate is O(n^-1/2) from the MLE
    # (sqrt(n) |theta_hat - theta_mle| ~ 0.7 to 8 here) and the one-step estimate O(1/n).
    # Measured n |theta_tilde - theta_mle|_inf at n = 250, 1000, 4000 (seed 1):
    #   binomial gfgsm 4.28, 4.43, 4.48;  binomial pl 20.1, 30.9, 34.1;
    #   poisson gfgsm 0.375, 0.388, 0.566.
    # The distance ratios d(4n) / d(n) are 0.26-0.39 (1/4 for an exact O(1/n) term), where an
    # O(n^-1/2) distance would give 1/2.
    dist = {}
    for n in (250, 1000, 4000):
        X, y = make_data(family, n, seed=1)
        fit = fit_batch(X, y, family=family, method=method, lam=1.0 / np.sqrt(n))
        mle = fit_batch(X, y, family=family, method="pl", lam=0.0)
        d = debias(fit, X, y)
        dist[n] = float(np.max(np.abs(to_numpy(d.params) - _theta(mle))))
        assert n * dist[n] < 50.0
        pen = float(np.max(np.abs(_theta(fit) - _theta(mle))))
        assert dist[n] < pen / 3  # the step removes most of the shrinkage
    assert dist[1000] / dist[250] < 0.45
    assert dist[4000] / dist[1000] < 0.45


def test_gaussian_one_step_is_the_mle_exactly():
    # The gaussian log-likelihood is quadratic: one Newton step lands on the MLE.
    X, y = make_data("gaussian", 300, seed=2)
    fit = fit_batch(X, y, family="gaussian", method="gfgsm", lam=0.2)
    mle = fit_batch(X, y, family="gaussian", method="pl", lam=0.0)
    np.testing.assert_allclose(to_numpy(debias(fit, X, y).params), _theta(mle), atol=1e-9)


# --------------------------------------------------------------------------------------------
# 3. batched equals one at a time; NumPy equals array_api_strict
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
@pytest.mark.parametrize("family", ["gaussian", "binomial", "poisson"])
def test_batch_equals_one_at_a_time(family, cov_type):
    R = 5
    X, Y = make_data(family, 150, seed=7, R=R)
    lam = np.linspace(0.01, 0.1, R)
    fit = fit_batch(X, Y, family=family, method="gfgsm", lam=lam)
    d = fit.debiased(X, Y, cov_type)
    assert to_numpy(d.params).shape == (R, 4)
    assert to_numpy(d.cov).shape == (R, 4, 4)
    assert to_numpy(d.bse).shape == (R, 4)
    assert to_numpy(d.conf_int(0.05)).shape == (R, 4, 2)
    assert to_numpy(d.pvalues).shape == (R, 4)
    for r in range(R):
        one = fit_batch(X, Y[r], family=family, method="gfgsm", lam=lam[r])
        d1 = debias(one, X, Y[r], cov_type)
        np.testing.assert_allclose(to_numpy(d.params)[r], to_numpy(d1.params)[0], rtol=1e-9,
                                   atol=1e-10)
        np.testing.assert_allclose(to_numpy(d.cov)[r], to_numpy(d1.cov)[0], rtol=1e-8,
                                   atol=1e-14)
        np.testing.assert_allclose(to_numpy(d.conf_int(0.1))[r], to_numpy(d1.conf_int(0.1))[0],
                                   rtol=1e-8, atol=1e-10)
    # one design per problem (R, n, p) gives the same as the shared design
    X3 = np.broadcast_to(X, (R, *X.shape)).copy()
    d3 = debias(fit, X3, Y, cov_type)
    np.testing.assert_allclose(to_numpy(d3.cov), to_numpy(d.cov), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
@pytest.mark.parametrize("family", ["gaussian", "binomial", "poisson"])
def test_numpy_equals_array_api_strict(family, cov_type):
    xps = pytest.importorskip("array_api_strict")
    X, Y = make_data(family, 120, seed=8, R=3)
    fit = fit_batch(X, Y, family=family, method="pl", lam=0.05)
    ref = fit.debiased(X, Y, cov_type)
    fit_s = fit_batch(xps.asarray(X), xps.asarray(Y), family=family, method="pl", lam=0.05)
    got = fit_s.debiased(xps.asarray(X), xps.asarray(Y), cov_type)
    assert type(got.params).__module__.startswith("array_api_strict")
    for a, b in [(got.params, ref.params), (got.cov, ref.cov), (got.pvalues, ref.pvalues),
                 (got.conf_int(0.05), ref.conf_int(0.05)), (got.zvalues, ref.zvalues)]:
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-8, atol=1e-12)


# --------------------------------------------------------------------------------------------
# 4. the estimator API
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_estimator_api_shapes(fit_intercept):
    X, y = make_data("binomial", 200, seed=5)
    est = GFGSM(family="binomial", lam=0.05, fit_intercept=fit_intercept).fit(X, y)
    q = 3 + int(fit_intercept)
    assert est.params_debiased_.shape == (q,)
    assert est.coef_debiased_.shape == (3,)
    np.testing.assert_array_equal(est.coef_debiased_, est.params_debiased_[-3:])
    if fit_intercept:
        assert est.intercept_debiased_ == est.params_debiased_[0]
    else:
        assert est.intercept_debiased_ == 0.0
    for attr in ("bse_", "zvalues_", "tvalues_", "pvalues_"):
        assert getattr(est, attr).shape == (q,)
    assert np.all((est.pvalues_ >= 0) & (est.pvalues_ <= 1))
    for ct in ("nonrobust", "HC0"):
        assert est.cov_params(ct).shape == (q, q)
        ci = est.conf_int(cov_type=ct)
        assert ci.shape == (q, 2)
        assert np.all(ci[:, 0] < est.params_debiased_) and np.all(est.params_debiased_ < ci[:, 1])
    # a wider level gives a narrower interval
    assert np.all(np.diff(est.conf_int(0.2), axis=1) < np.diff(est.conf_int(0.05), axis=1))


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, float("nan"), "0.05", True])
def test_conf_int_alpha_checked(alpha):
    X, y = make_data("poisson", 100, seed=5)
    est = PenalizedGLM(family="poisson", lam=0.01).fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        est.conf_int(alpha)
    fit = fit_batch(X, y, family="poisson", method="pl", lam=0.01)
    with pytest.raises(ValueError, match="alpha"):
        fit.debiased(X, y).conf_int(alpha)


def test_unknown_method_and_cov_type():
    X, y = make_data("gaussian", 100, seed=5)
    est = PenalizedGLM(family="gaussian", lam=0.01).fit(X, y)
    with pytest.raises(ValueError, match="unknown interval method 'wald'"):
        est.conf_int(method="wald")
    with pytest.raises(ValueError, match="unknown cov_type 'HC3'"):
        est.conf_int(cov_type="HC3")
    with pytest.raises(ValueError, match="unknown cov_type 'HC1'"):
        est.cov_params("HC1")
    fit = fit_batch(X, y, family="gaussian", method="pl", lam=0.01)
    with pytest.raises(ValueError, match="unknown cov_type"):
        debias(fit, X, y, "robust")
    with pytest.raises(ValueError, match="do not match the fit"):
        debias(fit, X[:, :2], y)
    with pytest.raises(NotFittedError):
        PenalizedGLM().conf_int()


def test_summary_has_the_inference_columns():
    X, y = make_data("binomial", 200, seed=6)
    df = pd.DataFrame(X, columns=["age", "dose", "sex"])
    est = GFGSM(family="binomial", lam=0.05).fit(df, y)
    text = est.summary()
    for col in ("coef", "debiased", "std err", "z", "P>|z|", "[0.025", "0.975]",
                "standard errors", "Objective:", "Adversary:"):
        assert col in text, col
    assert "no standard errors" not in text
    lines = text.splitlines()
    ci = est.conf_int()
    names = ["intercept", "age", "dose", "sex"]
    coefs = [est.intercept_, *est.coef_]
    for k, name in enumerate(names):
        row = next(ln for ln in lines if ln.split() and ln.split()[0] == name).split()
        assert float(row[1]) == pytest.approx(coefs[k], rel=1e-3, abs=1e-6)
        assert float(row[2]) == pytest.approx(est.params_debiased_[k], rel=1e-3)
        assert float(row[3]) == pytest.approx(est.bse_[k], rel=1e-3)
        assert float(row[6]) == pytest.approx(ci[k, 0], rel=1e-3)
        assert float(row[7]) == pytest.approx(ci[k, 1], rel=1e-3)


# --------------------------------------------------------------------------------------------
# 5. what cannot be computed says so
# --------------------------------------------------------------------------------------------


def test_p_plus_one_at_least_n_is_a_clear_error():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 4)), rng.standard_normal(5)
    fit = fit_batch(X, y, family="gaussian", method="pl", lam=0.1)
    with pytest.raises(ValueError, match=r"needs n > p \+ 1 .*high-dimensional debiased lasso"):
        debias(fit, X, y)
    est = PenalizedGLM(family="gaussian", lam=0.1).fit(X, y)  # the fit itself works
    with pytest.raises(ValueError, match="n > p"):
        _ = est.bse_
    with pytest.raises(ValueError, match="n > p"):
        est.conf_int()
    assert "no standard errors" in est.summary()


def test_singular_h_is_a_clear_error():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(100)
    X = np.column_stack([x, 2.0 * x, rng.standard_normal(100)])  # collinear columns
    y = (rng.random(100) < 0.5).astype(float)
    fit = fit_batch(X, y, family="binomial", method="pl", lam=0.05)
    with pytest.raises(ValueError, match=r"singular.*collinear"):
        debias(fit, X, y)
    est = PenalizedGLM(family="binomial", lam=0.05).fit(X, y)
    with pytest.raises(ValueError, match="singular"):
        est.conf_int()


def test_nonconverged_rows_are_nan_with_a_warning():
    X, Y = make_data("binomial", 60, seed=9, R=3)
    Y = Y.copy()
    Y[1] = (X[:, 0] > 0).astype(float)  # separated: no MLE, flagged "diverging" at lam = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = fit_batch(X, Y, family="binomial", method="pl", lam=0.0)
    assert list(fit.status) == ["converged", "diverging", "converged"]
    with pytest.warns(ConvergenceWarning, match=r"1 of 3 fits did not converge.*\[1\].*NaN"):
        d = fit.debiased(X, Y)
    p = to_numpy(d.params)
    assert np.all(np.isnan(p[1])) and np.all(np.isfinite(p[[0, 2]]))
    assert np.all(np.isnan(to_numpy(d.conf_int())[1]))
    assert np.all(np.isnan(to_numpy(d.pvalues)[1]))
    assert list(to_numpy(d.valid)) == [True, False, True]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = PenalizedGLM(family="binomial", lam=0.0).fit(X, Y[1])
    with pytest.raises(ValueError, match="did not converge"):
        _ = est.params_debiased_


def test_exports():
    assert gfgsm.debias is debias
    assert gfgsm.inference.Debiased is gfgsm.Debiased
