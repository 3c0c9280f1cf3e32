"""Families against statsmodels' family objects, scipy's distributions and finite differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats as st
import statsmodels.api as sm

from gfgsm._backend import to_numpy
from gfgsm.families import ETA_MAX_POISSON, Binomial, Gaussian, Poisson, get_family

FAMILIES = ["gaussian", "binomial", "poisson"]
SM = {
    "gaussian": sm.families.Gaussian(),
    "binomial": sm.families.Binomial(),
    "poisson": sm.families.Poisson(),
}


def _data(name: str, rng: np.random.Generator, size: int = 200):
    eta = rng.uniform(-3, 3, size)
    if name == "gaussian":
        y = eta + rng.standard_normal(size)
    elif name == "binomial":
        y = (rng.random(size) < 1 / (1 + np.exp(-eta))).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return eta, y


@pytest.mark.parametrize("name", FAMILIES)
def test_mean_variance_deviance_match_statsmodels(name, xp):
    rng = np.random.default_rng(0)
    eta, y = _data(name, rng)
    fam = get_family(name)
    ref = SM[name]
    mu = to_numpy(fam.mean(xp.asarray(eta)))
    # statsmodels' link inverse and variance are closed forms too: agreement to 1e-12
    # relative is floating-point agreement of two evaluations of the same formula.
    np.testing.assert_allclose(mu, ref.link.inverse(eta), rtol=1e-12)
    np.testing.assert_allclose(
        to_numpy(fam.variance(xp.asarray(mu))), ref.variance(mu), rtol=1e-12
    )
    np.testing.assert_allclose(
        to_numpy(fam.deviance(xp.asarray(y), xp.asarray(eta))),
        ref.resid_dev(y, mu) ** 2,
        rtol=1e-10,
        atol=1e-12,
    )


@pytest.mark.parametrize("name", FAMILIES)
def test_loss_is_negative_loglik_up_to_constant(name, xp):
    """l(y, eta) + log f(y; eta) does not depend on eta (phi = 1)."""
    rng = np.random.default_rng(1)
    eta, y = _data(name, rng)
    fam = get_family(name)
    loss = to_numpy(fam.loss(xp.asarray(y), xp.asarray(eta)))
    mu = {"binomial": 1 / (1 + np.exp(-eta)), "poisson": np.exp(eta), "gaussian": eta}[name]
    if name == "gaussian":
        ll = st.norm.logpdf(y, loc=mu)
        const = -0.5 * np.log(2 * np.pi)
    elif name == "binomial":
        ll = st.bernoulli.logpmf(y, mu)
        const = 0.0
    else:
        ll = st.poisson.logpmf(y, mu)
        const = -np.array([np.sum(np.log(np.arange(1, k + 1))) for k in y.astype(int)])
    np.testing.assert_allclose(loss + ll, const, atol=1e-9)


@pytest.mark.parametrize("name", FAMILIES)
def test_derivatives_match_finite_differences(name, xp):
    rng = np.random.default_rng(2)
    eta, y = _data(name, rng, 50)
    fam = get_family(name)
    h = 1e-5
    f = lambda e: to_numpy(fam.loss(xp.asarray(y), xp.asarray(e)))  # noqa: E731
    d1 = to_numpy(fam.dloss(xp.asarray(y), xp.asarray(eta)))
    d2 = to_numpy(fam.d2loss(xp.asarray(y), xp.asarray(eta)))
    # Central differences: truncation O(h^2 f''') ~ 1e-10 * e^3 here, rounding O(eps/h) ~ 1e-11.
    np.testing.assert_allclose(d1, (f(eta + h) - f(eta - h)) / (2 * h), rtol=1e-6, atol=1e-7)
    g = lambda e: to_numpy(fam.dloss(xp.asarray(y), xp.asarray(e)))  # noqa: E731
    np.testing.assert_allclose(d2, (g(eta + h) - g(eta - h)) / (2 * h), rtol=1e-6, atol=1e-7)


def test_binomial_is_stable_at_eta_700(xp):
    fam = Binomial()
    eta = xp.asarray([-700.0, -50.0, 0.0, 50.0, 700.0, 1e4, -1e4])
    y = xp.asarray([0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in (fam.loss(y, eta), fam.dloss(y, eta), fam.d2loss(y, eta), fam.mean(eta)):
            assert np.all(np.isfinite(to_numpy(f)))
    loss = to_numpy(fam.loss(y, eta))
    # softplus(-700) = e^-700 exactly to double precision; softplus(50) = 50 + e^-50.
    np.testing.assert_allclose(loss[0], np.exp(-700.0), rtol=1e-12)
    np.testing.assert_allclose(loss[3], 50.0 + np.log1p(np.exp(-50.0)), rtol=1e-15)
    np.testing.assert_allclose(loss[4], np.exp(-700.0), rtol=1e-12)
    assert to_numpy(fam.d2loss(y, eta))[0] > 0  # e^-700 is a normal double: no underflow to 0


def test_poisson_overflow_is_reported_not_silent(xp):
    fam = Poisson()
    eta = xp.asarray([1.0, ETA_MAX_POISSON + 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from exp inside the numerics
        mu = to_numpy(fam.mean(eta))
    assert np.isinf(mu[1]) and np.isfinite(mu[0])
    with pytest.raises(FloatingPointError, match="overflows"):
        fam.check_eta(eta)
    with pytest.raises(FloatingPointError, match="overflows"):
        fam.sample(eta, rng=0)


@pytest.mark.parametrize(
    ("name", "y", "match"),
    [
        ("binomial", [0.0, 2.0], "0 or 1"),
        ("binomial", [0.0, 0.5], "0 or 1"),
        ("poisson", [1.0, -1.0], "non-negative"),
        ("poisson", [1.0, 1.5], "integer"),
        ("gaussian", [1.0, np.nan], "NaN"),
    ],
)
def test_validate_y_rejects_values_outside_support(name, y, match):
    with pytest.raises(ValueError, match=match):
        get_family(name).validate_y(np.asarray(y))


def test_unknown_family_and_bad_phi():
    with pytest.raises(ValueError, match="unknown family"):
        get_family("gamma")
    with pytest.raises(ValueError, match="phi"):
        Gaussian(phi=-1.0)


@pytest.mark.parametrize("name", FAMILIES)
def test_sample_moments(name):
    """Sample mean and variance of y | eta within 5 standard errors of mu and phi V(mu)."""
    fam = get_family(name)
    eta = np.full(200_000, 0.4)
    y = to_numpy(fam.sample(eta, rng=3))
    mu = float(to_numpy(fam.mean(eta))[0])
    var = float(to_numpy(fam.variance(np.asarray([mu])))[0])
    se = np.sqrt(var / y.size)
    assert abs(y.mean() - mu) < 5 * se
    fam.validate_y(y)


def test_sample_same_seed_same_data_on_every_backend(xp):
    fam = Poisson()
    a = to_numpy(fam.sample(xp.asarray(np.linspace(-1, 1, 7)), rng=11))
    b = to_numpy(fam.sample(np.linspace(-1, 1, 7), rng=11))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["gaussian", "poisson"])
def test_adversarial_residual_matches_definition_and_fd(name, xp):
    """rho = (l(eta - P) - l(eta + P)) / (2P) and its partials by finite differences."""
    rng = np.random.default_rng(4)
    eta, y = _data(name, rng, 40)
    P = rng.uniform(1e-4, 0.8, 40)
    fam = get_family(name)
    X = lambda a: xp.asarray(a)  # noqa: E731
    out = [to_numpy(v) for v in fam.adversarial_residual(X(y), X(eta), X(P))]
    lm, lp = (to_numpy(fam.loss(X(y), X(eta - P))), to_numpy(fam.loss(X(y), X(eta + P))))
    np.testing.assert_allclose(out[0], (lm - lp) / (2 * P), rtol=1e-6, atol=1e-9)
    h = 1e-6

    def rho(e, p):
        return to_numpy(fam.adversarial_residual(X(y), X(e), X(p))[0])

    fd = [
        (rho(eta + h, P) - rho(eta - h, P)) / (2 * h),
        (rho(eta, P + h) - rho(eta, P - h)) / (2 * h),
    ]
    np.testing.assert_allclose(out[1], fd[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[2], fd[1], rtol=1e-6, atol=1e-6)
    if name == "poisson":
        d_eta = lambda e, p: to_numpy(fam.adversarial_residual(X(y), X(e), X(p))[1])  # noqa: E731
        d_P = lambda e, p: to_numpy(fam.adversarial_residual(X(y), X(e), X(p))[2])  # noqa: E731
        np.testing.assert_allclose(out[3], (d_eta(eta + h, P) - d_eta(eta - h, P)) / (2 * h),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[4], (d_eta(eta, P + h) - d_eta(eta, P - h)) / (2 * h),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[5], (d_P(eta, P + h) - d_P(eta, P - h)) / (2 * h),
                                   rtol=1e-5, atol=1e-6)
