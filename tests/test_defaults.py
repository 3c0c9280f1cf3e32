"""Defaults are the product: a first call with default arguments gives a certified fit.

Issue 12 measured, for poisson G-FGSM under the old default ``adversary="fgsm"``, 5-31% of fits
left uncertified (``sign_cycle``: the sign objective jumps where ``y_i = mu_i`` and can have no
minimiser, docs/theory.md s.2).  The default is now ``adversary="auto"``, the exact worst case.
The grid below is the issue's (n 100/500/2000 x lam 0.01/0.05/0.2 on an AR(1) design) with
fewer replications for CI time; n = 2000 was measured at R = 200 (100% certified, see the
issue note) and is left out here for time.  The goal is >= 99% certified: with R = 100 per
cell that allows at most one failure per cell.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gfgsm import GFGSM, fit_batch

P_TRUE = np.array([0.4, -0.3, 0.0, 0.2, 0.0])


def poisson_data(n: int, R: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    corr = 0.3 ** np.abs(np.subtract.outer(np.arange(5), np.arange(5)))
    X = rng.standard_normal((R, n, 5)) @ np.linalg.cholesky(corr).T
    y = rng.poisson(np.exp(0.5 + X @ P_TRUE)).astype(float)
    return X, y


@pytest.mark.parametrize("n", [100, 500])
@pytest.mark.parametrize("lam", [0.01, 0.05, 0.2])
def test_poisson_gfgsm_defaults_are_certified(n, lam):
    X, y = poisson_data(n, 100, seed=n + int(1000 * lam))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a default fit must not warn
        fit = fit_batch(X, y, family="poisson", method="gfgsm", lam=lam)
    assert np.sum(fit.status != "converged") <= 1
    assert np.all(fit.kkt[fit.converged] <= 1e-9)


def test_poisson_literal_fgsm_stays_available_and_flagged():
    """The sign scheme itself is kept for studies of it, and its failures are flagged."""
    X, y = poisson_data(100, 100, seed=7)
    with pytest.warns(UserWarning, match="sign_cycle"):
        fit = fit_batch(X, y, family="poisson", method="gfgsm", lam=0.2, adversary="fgsm")
    assert np.sum(fit.status == "sign_cycle") >= 5  # measured 25% at this lam in issue 12


def test_gfgsm_estimator_default_is_the_exact_adversary():
    X, y = poisson_data(300, 1, seed=3)
    est = GFGSM(family="poisson", lam=0.05).fit(X[0], y[0])
    ref = GFGSM(family="poisson", lam=0.05, adversary="exact").fit(X[0], y[0])
    assert est.status_ == "converged"
    # The same objective and solver: identical numbers.
    np.testing.assert_array_equal(est.coef_, ref.coef_)
