"""``theory.quantities``: closed forms, exact references, Monte Carlo within its reported error.

References are computed here independently of :mod:`gfgsm.theory`:

* gaussian: the closed forms of docs/theory.md s.4-5 written out from the design's law;
* finite designs: brute-force sums over ``itertools.product`` with scipy's Poisson pmf;
* Gaussian designs: for ``x ~ N(0, Sigma)`` and ``z = x' beta ~ N(0, s^2)``, ``u = Sigma beta``,
  Gaussian conditioning gives ``E[h(z) x] = u E[h z] / s^2`` and
  ``E[h(z) x x'] = E[h] (Sigma - u u'/s^2) + E[h z^2] u u' / s^4``, so ``I``, ``D`` and ``V``
  are one-dimensional integrals, done by Gauss-Legendre on pieces between the kinks of the
  integrand (accurate to ~1e-12, far below any Monte Carlo error here).

Monte Carlo estimates must agree with a reference within 4 reported standard errors (in
quadrature when both sides are Monte Carlo), entry by entry: a correct estimator with a correct
SE fails with probability ~6e-5 per entry, and the seeds are fixed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hst

from gfgsm.designs import (
    BernoulliDesign,
    CustomDesign,
    GaussianDesign,
    MixtureDesign,
    UniformDesign,
)
from gfgsm.dgp import DGP
from gfgsm.families import Poisson
from gfgsm.theory import quantities

K_SE = 4.0


def _agree(q, ref, ref_se=None, label=""):
    """Every entry of I, D, V within K_SE combined standard errors of the reference."""
    ref_se = ref_se or {"I": 0.0, "D": 0.0, "V": 0.0}
    for key, se in (("I", q.se_I), ("D", q.se_D), ("V", q.se_V)):
        est = np.asarray(getattr(q, key))
        tol = K_SE * np.sqrt(np.asarray(se) ** 2 + np.asarray(ref_se[key]) ** 2) + 1e-12
        err = np.abs(est - np.asarray(ref[key]))
        assert np.all(err <= tol), (label, key, est, ref[key], se)


def _ar1(p, rho):
    j = np.arange(p)
    return rho ** np.abs(j[:, None] - j[None, :])


def _gaussian_closed_form(design_mean, design_S, sigma, abs_mean, sign_mean):
    """docs/theory.md s.4-5 for gaussian: I = E[xt xt']/s^2, D = E|e|/s, V = E sign(e) E[xt]/s^2."""
    m = np.asarray(design_mean)
    q = len(m) + 1
    Ext = np.concatenate([[1.0], m])
    Exx = np.empty((q, q))
    Exx[0, 0], Exx[0, 1:], Exx[1:, 0], Exx[1:, 1:] = 1.0, m, m, design_S
    return {"I": Exx / sigma**2, "D": abs_mean / sigma, "V": sign_mean * Ext / sigma**2}


# --------------------------------------------------------------------------------------------
# gaussian: the closed forms of the issue
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0])
def test_gaussian_normal_errors_closed_form(sigma):
    dgp = DGP("gaussian", GaussianDesign(3, 0.5), [1.0, -0.5, 0.25], 0.7, sigma=sigma)
    q = quantities(dgp)
    assert q.D == pytest.approx(math.sqrt(2 / math.pi) / sigma, rel=1e-15)
    np.testing.assert_array_equal(q.V, 0.0)
    assert q.phi == sigma**2
    I_ref = np.zeros((4, 4))
    I_ref[0, 0], I_ref[1:, 1:] = 1.0, _ar1(3, 0.5)
    np.testing.assert_allclose(q.I, I_ref / sigma**2, rtol=1e-15)
    assert q.se_D == 0 and not np.any(q.se_I) and not np.any(q.se_V) and q.n_mc == 0
    assert set(q.method.values()) == {"closed form"}
    assert q.is_sign_neutral


def test_gaussian_skewed_errors_intercept_entry_is_E_sign_over_sigma2():
    sigma = 1.7
    design = UniformDesign(2, low=[0.0, -1.0], high=[2.0, 1.0])  # E[x] = (1, 0)
    dgp = DGP("gaussian", design, [0.3, 0.2], -0.4, noise="skewed", sigma=sigma)
    q = quantities(dgp)
    E_sign = math.exp(-1) - (1 - math.exp(-1))  # P(Exp(1) > 1) - P(Exp(1) < 1)
    assert q.V[0] == pytest.approx(E_sign / sigma**2, rel=1e-14)
    np.testing.assert_allclose(q.V, E_sign * np.array([1.0, 1.0, 0.0]) / sigma**2, rtol=1e-14)
    assert q.D == pytest.approx(2 / math.e / sigma, rel=1e-14)
    assert not q.is_sign_neutral


@pytest.mark.parametrize("df", [3, 5, 10])
def test_gaussian_t_errors_closed_form(df):
    # E|e| for the unit-variance t, by quadrature of scipy's density (not the Gamma formula)
    c = math.sqrt((df - 2) / df)
    E_abs = 2 * st.t(df, scale=c).expect(lambda u: u, lb=0.0)
    if df == 3:
        assert E_abs == pytest.approx(2 / math.pi, rel=1e-8)
    q = quantities(DGP("gaussian", GaussianDesign(2), [1.0, 1.0], noise="t", df=df, sigma=2.0))
    assert q.D == pytest.approx(E_abs / 2.0, rel=1e-8)
    np.testing.assert_array_equal(q.V, 0.0)


GAUSSIAN_CASES = {
    "normal-ar1": (GaussianDesign(3, 0.5), {"noise": "normal", "sigma": 1.5}),
    "t3-uniform": (UniformDesign(3, 0.0, 2.0), {"noise": "t", "sigma": 0.8}),
    "skewed-bernoulli": (BernoulliDesign(3, [0.2, 0.5, 0.7]), {"noise": "skewed", "sigma": 1.0}),
    "skewed-mixture": (
        MixtureDesign([GaussianDesign(3, 0.3), UniformDesign(3, 0.0, 1.0)], [0.6, 0.4]),
        {"noise": "skewed", "sigma": 2.0},
    ),
}


@pytest.mark.parametrize("method", ["monte_carlo", "conditional"])
@pytest.mark.parametrize("case", list(GAUSSIAN_CASES))
def test_gaussian_monte_carlo_agrees_with_closed_form(case, method):
    design, kw = GAUSSIAN_CASES[case]
    dgp = DGP("gaussian", design, [0.5, -1.0, 0.25], 0.3, **kw)
    exact = quantities(dgp)
    assert exact.n_mc == 0
    law = dgp.noise
    ref = _gaussian_closed_form(design.mean, design.second_moment, kw["sigma"],
                                law.abs_mean, law.sign_mean)
    _agree(exact, {k: v for k, v in ref.items()}, label="closed form")
    q = quantities(dgp, method=method, seed=1)
    assert q.n_mc == 200_000 and q.se_I[1, 1] > 0
    _agree(q, ref, label=f"{case} {method}")


def test_gaussian_without_closed_forms_uses_monte_carlo():
    """A design without moments and a callable error law: I, V over x and D over e by MC."""

    def laplace(shape, rng):
        return rng.laplace(scale=1 / math.sqrt(2), size=shape)  # E|e| = 1/sqrt 2, median 0

    design = CustomDesign(2, lambda n, rng: rng.uniform(0.0, 1.0, size=(n, 2)))
    q = quantities(DGP("gaussian", design, [1.0, 2.0], noise=laplace, sigma=2.0))
    ref = _gaussian_closed_form([0.5, 0.5], np.full((2, 2), 0.25) + np.eye(2) / 12, 2.0,
                                1 / math.sqrt(2), 0.0)
    _agree(q, ref)
    assert "monte carlo" in q.method["I"] and "monte carlo" in q.method["D"]
    assert q.se_D > 0


# --------------------------------------------------------------------------------------------
# binomial and poisson with a Gaussian design: against one-dimensional quadrature
# --------------------------------------------------------------------------------------------


def _cond_binomial(eta):
    mu = 1 / (1 + np.exp(-eta))
    return mu * (1 - mu), 2 * mu * (1 - mu), 2 * mu - 1


def _cond_poisson(eta):
    """Brute-force sums over the counts: E|y - mu| and E sign(y - mu)."""
    mu = np.exp(eta)
    k = np.arange(0, int(mu.max() + 20 * math.sqrt(mu.max()) + 40))
    pmf = st.poisson.pmf(k[None, :], mu[:, None])
    diff = k[None, :] - mu[:, None]
    return mu, np.sum(np.abs(diff) * pmf, axis=1), np.sum(np.sign(diff) * pmf, axis=1)


def _gaussian_design_reference(family, Sigma, beta, a):
    """I, D, V for x ~ N(0, Sigma), eta = a + x'beta by Gaussian conditioning on z = x'beta."""
    beta = np.asarray(beta, float)
    s2 = float(beta @ Sigma @ beta)
    s, u = math.sqrt(s2), Sigma @ beta
    edges = np.linspace(-9 * s, 9 * s, 201)
    if family == "poisson":  # the sign term jumps where mu crosses an integer
        kinks = np.log(np.arange(1, math.ceil(math.exp(a + 9 * s)) + 1)) - a
        edges = np.unique(np.concatenate([edges, kinks[(kinks > edges[0]) & (kinks < edges[-1])]]))
    nodes, wts = np.polynomial.legendre.leggauss(16)
    mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    z = (mid[:, None] + half[:, None] * nodes[None, :]).ravel()
    w = (half[:, None] * wts[None, :]).ravel() * st.norm.pdf(z, scale=s)
    b2, absdev, sgn = (_cond_binomial if family == "binomial" else _cond_poisson)(a + z)

    def E(h):
        return float(w @ h)

    def vec(h):  # E[h(eta) xt]
        return np.concatenate([[E(h)], u * E(h * z) / s2])

    I = np.empty((len(u) + 1,) * 2)  # noqa: E741
    I[0] = vec(b2)
    I[1:, 0] = I[0, 1:]
    I[1:, 1:] = E(b2) * (Sigma - np.outer(u, u) / s2) + E(b2 * z * z) * np.outer(u, u) / s2**2
    return {"I": I, "D": E(absdev), "V": vec(sgn * b2)}


GLM_CASES = {
    "binomial": ("binomial", [1.0, -0.5, 0.0], 0.0),
    "binomial-shifted": ("binomial", [1.5, 0.5, -1.0], -0.8),
    "poisson": ("poisson", [0.5, -0.3, 0.2], 0.3),
    "poisson-small-mean": ("poisson", [0.4, 0.3, 0.0], -1.5),
}


@pytest.mark.parametrize("method", ["auto", "monte_carlo"])
@pytest.mark.parametrize("case", list(GLM_CASES))
def test_glm_with_gaussian_design_agrees_with_quadrature(case, method):
    family, beta, a = GLM_CASES[case]
    Sigma = _ar1(3, 0.5)
    ref = _gaussian_design_reference(family, Sigma, beta, a)
    q = quantities(DGP(family, GaussianDesign(3, 0.5), beta, a), method=method, seed=2)
    expect = "monte carlo over (x, y)" if method == "monte_carlo" else "antithetic pairs"
    assert expect in q.method["V"]
    _agree(q, ref, label=f"{case} {method}")
    if method == "auto":
        # the x-only integral is far more precise than the brute-force one (y | x is exact)
        assert max(q.rel_se.values()) < 0.005


def test_reference_integrator_reproduces_the_gaussian_stein_identity():
    """Sanity of the quadrature reference: with h = 1 it must return E[xt xt'] exactly."""
    Sigma, beta = _ar1(3, 0.5), np.array([1.0, -0.5, 0.3])
    s2 = beta @ Sigma @ beta
    z = np.linspace(-8, 8, 2001) * math.sqrt(s2)
    assert np.trapezoid(st.norm.pdf(z, scale=math.sqrt(s2)) * z * z, z) == pytest.approx(s2)


# --------------------------------------------------------------------------------------------
# sign neutrality of the binomial intercept (docs/theory.md s.5)
# --------------------------------------------------------------------------------------------

SYMMETRIC = {
    "gaussian-ar1": GaussianDesign(3, 0.5),
    "uniform": UniformDesign(3, -2.0, 2.0),
    "rademacher": BernoulliDesign(3, 0.5, (-1.0, 1.0)),
    "mixture": MixtureDesign([GaussianDesign(3, -0.3), UniformDesign(3)], [0.3, 0.7]),
}


@pytest.mark.parametrize("name", list(SYMMETRIC))
def test_binomial_intercept_zero_symmetric_design_has_V0_zero(name):
    design = SYMMETRIC[name]
    dgp = DGP("binomial", design, [1.0, -0.5, 0.8], 0.0)
    q = quantities(dgp)
    # Exactly 0: antithetic pairs (x, -x) and an exactly odd (2 mu - 1) mu (1 - mu) cancel
    # term by term (and the enumeration pairs its support points the same way).
    assert q.V[0] == 0.0 and q.se_V[0] == 0.0
    # ... and the brute-force estimate over (x, y) agrees within its own error
    mc = quantities(dgp, method="monte_carlo", seed=3)
    assert abs(mc.V[0]) <= K_SE * mc.se_V[0]
    _agree(mc, {"I": q.I, "D": q.D, "V": q.V}, {"I": q.se_I, "D": q.se_D, "V": q.se_V})
    # an independent plain Monte Carlo in NumPy (no antithetic pairs)
    X = design.sample(200_000, 4)
    mu = 1 / (1 + np.exp(-(X @ dgp.coef)))
    g = (2 * mu - 1) * mu * (1 - mu)
    assert abs(g.mean()) <= K_SE * g.std() / math.sqrt(len(g))


def test_binomial_V_slopes_do_not_vanish_and_asymmetric_intercept_does():
    """docs/theory.md s.5: V is a property of the whole design, not only of the class balance."""
    q = quantities(DGP("binomial", GaussianDesign(2), [1.0, -0.5], 0.0))
    assert q.V[0] == 0.0
    assert np.all(np.abs(q.V[1:]) > 20 * q.se_V[1:])
    # intercept 0 but x in {0, 1}^p is not symmetric: V[0] != 0
    q = quantities(DGP("binomial", BernoulliDesign(2, 0.5), [1.0, -0.5], 0.0))
    assert abs(q.V[0]) > 1e-3


# --------------------------------------------------------------------------------------------
# finite designs: exact enumeration against brute force
# --------------------------------------------------------------------------------------------


def _bruteforce_finite(family, probs_col, values, beta, a):
    q = len(beta) + 1
    fisher, D, V = np.zeros((q, q)), 0.0, np.zeros(q)
    for bits in itertools.product([0, 1], repeat=len(beta)):
        x = np.array([values[b] for b in bits])
        w = math.prod(pj if b else 1 - pj for pj, b in zip(probs_col, bits, strict=True))
        eta = a + float(x @ beta)
        b2, absdev, sgn = (_cond_binomial if family == "binomial" else _cond_poisson)(
            np.array([eta])
        )
        xt = np.concatenate([[1.0], x])
        fisher += w * b2[0] * np.outer(xt, xt)
        D += w * absdev[0]
        V += w * sgn[0] * b2[0] * xt
    return {"I": fisher, "D": D, "V": V}


@pytest.mark.parametrize(
    ("family", "values", "beta", "a"),
    [
        ("binomial", (0.0, 1.0), [1.0, -0.5, 2.0], -0.3),
        ("binomial", (-1.0, 1.0), [0.7, 0.0, -1.2], 0.4),
        # eta = a + x'beta hits log 1 = 0 and log 2 exactly: integer means, where the sign
        # term's mass at y = mu drops out
        ("poisson", (0.0, 1.0), [math.log(2.0), 0.5, -0.9], 0.0),
        ("poisson", (-1.0, 1.0), [0.3, -0.2, 0.6], 1.1),
    ],
)
def test_enumeration_matches_brute_force(family, values, beta, a):
    probs = [0.2, 0.5, 0.7]
    dgp = DGP(family, BernoulliDesign(3, probs, values), beta, a)
    ref = _bruteforce_finite(family, probs, values, np.array(beta), a)
    q = quantities(dgp)
    assert q.n_mc == 0 and q.method["I"] == "exact enumeration of the design's support"
    np.testing.assert_allclose(q.I, ref["I"], rtol=1e-12, atol=1e-15)
    assert q.D == pytest.approx(ref["D"], rel=1e-12)
    np.testing.assert_allclose(q.V, ref["V"], rtol=1e-11, atol=1e-15)
    # both Monte Carlo routes agree with the exact values within their reported errors
    _agree(quantities(dgp, method="conditional", seed=5), ref, label="conditional")
    _agree(quantities(dgp, method="monte_carlo", seed=6), ref, label="monte carlo")


# --------------------------------------------------------------------------------------------
# the poisson conditional formulas
# --------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(hst.one_of(hst.floats(1e-4, 300.0), hst.integers(1, 200).map(float)))
def test_poisson_mean_absolute_deviation_and_sign_against_sums(mu):
    """E|y - mu| = 2 mu^(k+1) e^-mu / k! (k = floor mu) and P(y > mu) - P(y < mu), by sums."""
    _, absdev_ref, sgn_ref = _cond_poisson(np.array([math.log(mu)]))
    b2, absdev, sgn = Poisson().conditional_moments(np.array([math.log(mu)]))
    mu_ = b2[0]  # exp(log mu): integers may come back as k(1 +- 1 ulp); the sums see the same
    k = math.floor(mu_)
    closed = 2 * math.exp((k + 1) * math.log(mu_) - mu_ - math.lgamma(k + 1))
    assert absdev[0] == pytest.approx(absdev_ref[0], rel=1e-9, abs=1e-300)
    assert absdev[0] == pytest.approx(closed, rel=1e-9)
    assert sgn[0] == pytest.approx(sgn_ref[0], abs=1e-12)


# --------------------------------------------------------------------------------------------
# the standard errors themselves, reproducibility, the result object
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "design", "method"),
    [
        ("binomial", GaussianDesign(2, 0.5), "auto"),  # antithetic pairs
        ("poisson", UniformDesign(2, 0.0, 1.0), "auto"),  # plain draws
        ("binomial", BernoulliDesign(2, 0.3), "monte_carlo"),  # (x, y) draws
    ],
)
@pytest.mark.filterwarnings("ignore:quantities. Monte Carlo SE:UserWarning")
def test_reported_standard_errors_are_calibrated(family, design, method):
    """Across 40 seeds the spread of the estimates matches the reported SE.

    The ratio sd(estimates) / mean(SE) of one entry has a relative error of ~1/sqrt(2 * 39)
    = 11%; the median over all entries must lie in [0.8, 1.25].
    """
    dgp = DGP(family, design, [0.6, -0.4], 0.2)
    runs = [quantities(dgp, method=method, n_mc=4000, seed=s) for s in range(40)]
    ratios = []
    for key, se_key in (("I", "se_I"), ("D", "se_D"), ("V", "se_V")):
        est = np.array([np.ravel(getattr(r, key)) for r in runs])
        se = np.array([np.ravel(getattr(r, se_key)) for r in runs]).mean(axis=0)
        ok = se > 0
        ratios.extend(est.std(axis=0, ddof=1)[ok] / se[ok])
    assert 0.8 <= float(np.median(ratios)) <= 1.25, ratios
    assert all(0.5 <= r <= 2.0 for r in ratios), ratios


def test_reproducible_and_seeded():
    dgp = DGP("poisson", GaussianDesign(2), [0.3, 0.2], 0.1)
    a, b = quantities(dgp), quantities(dgp)
    np.testing.assert_array_equal(a.I, b.I)
    assert a.D == b.D
    c = quantities(dgp, seed=np.random.SeedSequence(0))
    np.testing.assert_array_equal(a.V, c.V)
    assert quantities(dgp, seed=1).D != a.D


def test_result_object():
    q = quantities(DGP("binomial", GaussianDesign(2), [1.0, 0.5], 0.2))
    assert q.I.shape == (3, 3) and q.V.shape == (3,) and q.se_I.shape == (3, 3)
    np.testing.assert_array_equal(q.I, q.I.T)
    assert np.all(np.linalg.eigvalsh(q.I) > 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.D = 1.0
    with pytest.raises(ValueError):
        q.I[0, 0] = 1.0
    text = str(q)
    assert "n_mc = 200000" in text and "Monte Carlo" in text and "se(I)" in text
    assert set(q.rel_se) == {"I", "D", "V"}
    assert "No Monte Carlo" in str(quantities(DGP("gaussian", GaussianDesign(2), [1.0, 0.5])))


def test_small_n_mc_warns():
    with pytest.warns(UserWarning, match="increase n_mc"):
        quantities(DGP("poisson", GaussianDesign(2), [0.5, 0.5]), n_mc=100)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "quadrature"}, "method must be"),
        ({"n_mc": 0}, "n_mc must be a positive integer"),
        ({"n_mc": 1}, "n_mc must be at least 2"),
        ({"n_mc": 1e5}, "n_mc must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        quantities(DGP("binomial", GaussianDesign(2), [1.0, 0.5]), **kwargs)


def test_bad_dgp_and_overflow():
    with pytest.raises(TypeError, match="dgp must be"):
        quantities("binomial")
    with pytest.raises(FloatingPointError, match="overflows"):
        quantities(DGP("poisson", GaussianDesign(1), [300.0]))
