"""Intervals beyond the debiased Wald ones (issue 11, point 2): the plug-in limit law and the
perturbation bootstrap of the penalized estimate, and the naive interval (gfgsm.intervals,
docs/theory.md s.5, "Inference for the penalized estimate").

Each piece is checked against something independent: the batched limit-law minimiser against
cvxpy (CLARABEL) and the package's own limit-law sampler; the quantiles against
``numpy.quantile``; the plug-in I, D, V against hand-written NumPy and, at large n, against the
population quantities of gfgsm.theory; the bootstrap's batched refits against one-at-a-time
refits; its tilt against the stationarity it is built for; and coverage by Monte Carlo.
"""

from __future__ import annotations

import math
import warnings

import array_api_compat
import numpy as np
import pytest

import gfgsm
from gfgsm import GFGSM, fit_batch
from gfgsm.designs import GaussianDesign
from gfgsm.dgp import DGP
from gfgsm.inference import one_step
from gfgsm.intervals import (
    _bootstrap_draws,
    _quantile,
    argmin_quadratic_l1,
    conf_int,
    plug_in,
    threshold_default,
)
from gfgsm.rng import stream_for

COEF = (1.0, 0.0, -0.5)
A0 = {"binomial": 1.0, "poisson": -1.0, "gaussian": 1.0}


def dgp_of(family: str, coef: tuple[float, ...] = COEF) -> DGP:
    return DGP(family=family, design=GaussianDesign(len(coef), rho=0.3), coef=coef,
               intercept=A0[family])


def data(family: str, n: int, R: int, seed: int = 0, coef: tuple[float, ...] = COEF):
    X, y = dgp_of(family, coef).sample(n, seed=seed, R=R)
    return np.asarray(X), np.asarray(y)


def gfgsm_fit(family: str, X, y, lam0: float = 1.0):
    n = X.shape[-2]
    return fit_batch(X, y, family=family, method="gfgsm", adversary="exact",
                     lam=lam0 / math.sqrt(n))


# --------------------------------------------------------------------------------------------
# the batched minimiser of the limit objective
# --------------------------------------------------------------------------------------------


def _random_problem(rng, R, M, q):
    A = rng.standard_normal((R, q, q))
    I = A @ np.swapaxes(A, -1, -2) / q + 0.3 * np.eye(q)  # noqa: E741
    b = rng.standard_normal((R, M, q)) * 2.0
    c = rng.uniform(0.0, 1.5, (R, q)) * (rng.uniform(size=(R, q)) < 0.6)
    return I, b, c


def test_argmin_quadratic_l1_matches_cvxpy():
    """Against CLARABEL through cvxpy, one small problem at a time.  The batched solver stops
    at a KKT residual of 1e-10 (1 + max|b|) and the conic solver at its default ~1e-8 gap, so
    the minimisers agree to ~1e-6 (the smallest eigenvalue of I is >= 0.3, so a gradient error
    e moves u by at most e / 0.3)."""
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(1)
    I, b, c = _random_problem(rng, R=4, M=5, q=4)  # noqa: E741
    U = argmin_quadratic_l1(I, b, c)
    for r in range(4):
        for m in range(5):
            u = cp.Variable(4)
            obj = 0.5 * cp.quad_form(u, cp.psd_wrap(I[r])) - b[r, m] @ u + c[r] @ cp.abs(u)
            cp.Problem(cp.Minimize(obj)).solve(solver="CLARABEL")
            assert np.max(np.abs(U[r, m] - u.value)) < 1e-6
    # exact zeros where the penalty holds them, and only on penalized coordinates
    assert np.any(U == 0)
    assert not np.any((U == 0) & (c[:, None, :] == 0))


def test_argmin_quadratic_l1_kkt_and_unpenalized_case():
    """The result satisfies the KKT conditions to 1e-9 (the solver's stopping rule, up to the
    rounding of one more evaluation); with c = 0 it is I^{-1} b exactly as numpy.linalg.solve
    gives it (1e-12: the same linear algebra)."""
    rng = np.random.default_rng(2)
    I, b, c = _random_problem(rng, R=6, M=200, q=5)  # noqa: E741
    U = argmin_quadratic_l1(I, b, c)
    g = np.einsum("rij,rmj->rmi", I, U) - b
    cb = np.broadcast_to(c[:, None, :], U.shape)
    res = np.where(U != 0, np.abs(g + cb * np.sign(U)), np.maximum(np.abs(g) - cb, 0.0))
    assert res.max() < 1e-9 * (1 + np.abs(b).max())
    U0 = argmin_quadratic_l1(I, b, np.zeros_like(c))
    ref = np.linalg.solve(I[:, None], b[..., None])[..., 0]
    np.testing.assert_allclose(U0, ref, rtol=0, atol=1e-12)


def test_argmin_matches_the_theory_limit_sampler():
    """gfgsm.theory.limit_law samples argmin Z through fit_batch (a weighted gaussian lasso);
    the batched coordinate descent must give the same draws for the same W (1e-7: both are
    KKT-certified, fit_batch at its default 1e-9)."""
    from gfgsm.theory import _argmin_Z, limit_law

    law = limit_law(dgp_of("binomial"), 1.0, n_mc=10)
    z = np.random.default_rng(3).standard_normal((500, 4))
    ref = _argmin_Z(law, z, None)
    I = np.asarray(law.quantities.I, dtype=float)  # noqa: E741
    L = np.linalg.cholesky(I)
    W = z @ L.T
    c = np.where(law.zero, law.pen_level, 0.0)
    U = argmin_quadratic_l1(I[None], (W - law.lin)[None], c[None])[0]
    np.testing.assert_allclose(U, ref, rtol=0, atol=1e-7)


def test_quantile_is_numpy_weibull_over_finite_draws():
    """Equal to numpy.quantile(method="weibull") (type 6) over the finite draws of each row;
    +inf marks a left-out draw; a row of NaN gives NaN."""
    rng = np.random.default_rng(4)
    U = rng.standard_normal((5, 37, 3))
    U[1, :5, 0] = np.inf
    U[2, :, 1] = np.inf
    U[3, :, 2] = np.nan
    U[4, :20, :] = 0.0  # an atom
    U[0, 1:, 2] = np.inf  # a single finite draw
    for p in (0.001, 0.025, 0.5, 0.975, 0.999):
        got = _quantile(array_api_compat.numpy, U, p)
        for r in range(5):
            for j in range(3):
                v = U[r, :, j]
                v = v[np.isfinite(v)]
                want = np.quantile(v, p, method="weibull") if v.size else np.nan
                if np.isnan(want):
                    assert np.isnan(got[r, j])
                else:
                    assert got[r, j] == pytest.approx(want, abs=1e-15)


def test_quantile_interval_holds_a_new_draw_with_probability_one_minus_alpha():
    """The reason for type 6: over 20 000 samples of m = 50 uniform draws, the interval between
    the 2.5% and 97.5% quantiles holds a new uniform draw with probability 0.95 (its expected
    width; exact for type 6: (m + 1)(1 - alpha) / (m + 1)), where type 7 gives 0.913.  The mean
    of 20 000 widths has SD below 0.0004, so 0.002 is a 5-SD tolerance."""
    rng = np.random.default_rng(17)
    U = rng.uniform(size=(20_000, 50, 1))
    xp = array_api_compat.numpy
    width = _quantile(xp, U, 0.975) - _quantile(xp, U, 0.025)
    assert abs(float(width.mean()) - 0.95) < 0.002
    assert abs(float(np.mean(np.quantile(U, 0.975, axis=1) - np.quantile(U, 0.025, axis=1)))
               - 49 * 0.95 / 51) < 0.002


# --------------------------------------------------------------------------------------------
# the plug-in quantities
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["gfgsm", "pl"])
@pytest.mark.parametrize("family", ["binomial", "poisson", "gaussian"])
def test_plug_in_against_hand_numpy(family, method):
    """I_hat, D_hat, V_hat, lin and c written out in NumPy from their formulas (docs/theory.md
    s.5) for each problem: equal to 1e-12 (the same sums in another order)."""
    X, y = data(family, 400, 3, seed=5)
    fit = (gfgsm_fit(family, X, y) if method == "gfgsm" else
           fit_batch(X, y, family=family, method="pl", lam=1 / math.sqrt(400)))
    theta_t, _covs, scale, _valid, n = one_step(fit, X, y)
    th = np.c_[np.asarray(fit.intercept), np.asarray(fit.coef)]
    zero = np.zeros_like(th, dtype=bool)
    zero[:, 2] = True
    pi = plug_in(fit, X, y, th, theta_t, zero, scale)
    fam = gfgsm.get_family(family)
    for r in range(3):
        Xt = np.c_[np.ones(n), X[r]]
        eta = Xt @ th[r]
        mu = np.asarray(fam.mean(eta))
        w = np.asarray(fam.d2loss(y[r], eta))
        phi = float(scale[r])
        I_ = (Xt * w[:, None]).T @ Xt / n / phi
        D_ = np.mean(np.abs(y[r] - mu)) / phi
        sgn_r = np.sign(y[r] - mu)
        if method == "gfgsm" and family != "binomial":  # kinked: the kink rows have sign 0
            sgn_r[np.abs(y[r] - mu) <= 1e-9 * (1 + np.abs(y[r]))] = 0.0
        V_ = Xt.T @ (sgn_r * w) / n / phi
        lam0 = float(np.asarray(fit.lam)[r]) * math.sqrt(n)
        sgn = np.sign(np.asarray(theta_t)[r]) * np.r_[0, 1, 0, 1]
        level = lam0 * D_ if method == "gfgsm" else lam0 / phi
        lin = level * sgn
        if method == "gfgsm":
            lin = lin - lam0 * (abs(th[r, 1]) + abs(th[r, 3])) * V_
        np.testing.assert_allclose(pi.I[r], I_, rtol=1e-12, atol=1e-14)
        assert pi.D[r] == pytest.approx(D_, rel=1e-12)
        np.testing.assert_allclose(pi.V[r], V_, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(pi.lin[r], lin, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(pi.c[r], np.r_[0, 0, level, 0], rtol=1e-12)


def test_plug_in_V_does_not_see_rounding_at_the_kinks():
    """Kinked gaussian G-FGSM fits put rows at y = mu (the crossover solves the kink rows
    exactly), where the residual is 0 or a rounding error of either sign, depending on the
    summation order of eta.  V_hat counts them as 0, so moving theta_hat by 1e-13 (far below
    any statistical scale, far above rounding) moves V_hat by O(1e-13), not by the O(1/n) =
    1e-3 per row that a flipped sign would give (CuPy and NumPy differed by 3e-4 in a
    limit-law interval before).  The test first checks that kink rows exist."""
    R, n = 40, 1000
    X, y = data("gaussian", n, R, seed=5)
    fit = gfgsm_fit("gaussian", X, y)
    th = np.c_[np.asarray(fit.intercept), np.asarray(fit.coef)]
    mu = np.einsum("rnj,rj->rn", X, th[:, 1:]) + th[:, :1]
    assert np.sum(np.abs(y - mu) < 1e-12) >= 4
    zero = np.zeros_like(th, dtype=bool)
    theta_t, _covs, scale, _valid, _n = one_step(fit, X, y)
    V = [np.asarray(plug_in(fit, X, y, th * f, theta_t, zero, scale).V)
         for f in (1.0, 1.0 + 1e-13, 1.0 - 1e-13)]
    np.testing.assert_allclose(V[1], V[0], rtol=0, atol=1e-11)
    np.testing.assert_allclose(V[2], V[0], rtol=0, atol=1e-11)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_plug_in_converges_to_the_population_quantities(family):
    """At n = 200 000 the plug-in I, D, V are within sampling error of gfgsm.theory.quantities
    (the population values, an independent computation: conditional moments integrated over
    x).  The sampling SD of an average of n bounded terms is below 3/sqrt(n) = 0.007 for these
    designs; 0.02 leaves room for the O(1/sqrt(n)) estimation error of theta_hat."""
    from gfgsm.theory import quantities

    dgp = dgp_of(family)
    X, y = data(family, 200_000, 1, seed=6)
    fit = gfgsm_fit(family, X, y)
    theta_t, _covs, scale, _valid, _n = one_step(fit, X, y)
    th = np.c_[np.asarray(fit.intercept), np.asarray(fit.coef)]
    pi = plug_in(fit, X, y, th, theta_t, np.zeros_like(th, dtype=bool), scale)
    Q = quantities(dgp, seed=0)
    np.testing.assert_allclose(pi.I[0], Q.I, atol=0.02)
    assert abs(float(pi.D[0]) - Q.D) < 0.02
    np.testing.assert_allclose(pi.V[0], Q.V, atol=0.02)


# --------------------------------------------------------------------------------------------
# the bootstrap
# --------------------------------------------------------------------------------------------


def test_tilt_centres_the_bootstrap_world_at_theta_check():
    """With all weights 1 and lam = 0 the tilted clean objective is stationary exactly at
    theta_check (docs/theory.md s.5): the refit returns theta_check to the fit tolerance."""
    X, y = data("binomial", 500, 2, seed=7)
    theta_chk = np.array([[0.9, 1.1, 0.0, -0.4], [1.2, 0.8, 0.0, -0.6]])
    fam = gfgsm.get_family("binomial")
    eta = np.einsum("rnp,rp->rn", X, theta_chk[:, 1:]) + theta_chk[:, :1]
    tilt = y - np.asarray(fam.mean(eta))
    fit = fit_batch(X, y, family="binomial", method="pl", lam=0.0, tilt=tilt)
    got = np.c_[np.asarray(fit.intercept), np.asarray(fit.coef)]
    np.testing.assert_allclose(got, theta_chk, atol=1e-8)


@pytest.mark.parametrize("family", ["binomial", "gaussian"])
def test_bootstrap_batched_refits_equal_one_at_a_time(family):
    """The R B refits of one fit_batch call equal the same refits done one problem at a time
    (issue 11, point 5).  Both are KKT-certified at tol 1e-9; U = sqrt(n)(theta* - theta_check)
    scales the difference by sqrt(n) = 17, so 1e-6 on U."""
    n, R, B = 300, 2, 4
    X, y = data(family, n, R, seed=8)
    fit = gfgsm_fit(family, X, y)
    theta_t, covs, _scale, valid, _ = one_step(fit, X, y)
    th = np.c_[np.asarray(fit.intercept), np.asarray(fit.coef)]
    se = np.sqrt(np.einsum("rii->ri", covs["nonrobust"]))
    zero = (np.arange(4) >= 1) & (np.abs(theta_t) <= threshold_default(n) * se)
    chk = np.where(zero, 0.0, th)
    stream = stream_for(11, R, np)
    U, used = _bootstrap_draws(fit, X, y, True, chk, valid, n, B, stream)
    G = np.asarray(stream.child("bootstrap").exponential((B, n)))
    fam = gfgsm.get_family(family)
    for r in range(R):
        eta = X[r] @ chk[r, 1:] + chk[r, 0]
        t = y[r] - np.asarray(fam.mean(eta))
        for b in range(B):
            one = fit_batch(X[r], y[r], family=family, method="gfgsm", adversary="exact",
                            lam=float(np.asarray(fit.lam)[r]), sample_weight=G[r, b], tilt=t)
            star = np.r_[np.asarray(one.intercept)[0], np.asarray(one.coef)[0]]
            np.testing.assert_allclose(U[r, b], math.sqrt(n) * (star - chk[r]), atol=1e-6)
    assert np.all(np.asarray(used) == B)


def test_bootstrap_of_a_problem_does_not_depend_on_its_batch():
    """Problem r's bootstrap uses replication r's stream only: the intervals of problems 1..2
    computed alone (their own fit rows and stream rows) equal rows 1..2 of the batch of 0..3
    (1e-12: the same refits in a different batch)."""
    n, R = 300, 4
    X, y = data("binomial", n, R, seed=9)
    fit = gfgsm_fit("binomial", X, y)
    stream = stream_for(12, R, np)
    full = conf_int(fit, X, y, method="bootstrap", B=20, stream=stream)
    k = np.array([1, 2])
    from gfgsm.rng import Stream

    sub_stream = Stream.create(stream.key, np.asarray(stream.reps)[k], np, stream.variable)
    sub = fit.take(k)
    assert np.asarray(sub.converged).dtype == bool and np.asarray(sub.n_iter).dtype.kind == "i"
    part = conf_int(sub, X[k], y[k], method="bootstrap", B=20, stream=sub_stream)
    np.testing.assert_allclose(np.asarray(part.lower), np.asarray(full.lower)[k], atol=1e-12)
    np.testing.assert_allclose(np.asarray(part.upper), np.asarray(full.upper)[k], atol=1e-12)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_bootstrap_does_not_depend_on_its_block_size(monkeypatch, family):
    """The refits are fitted in blocks of problems (one per block on the host, many on a
    GPU); the intervals are the same whatever the blocking (1e-12: the same refits, in
    batches of other shapes, so BLAS may sum in another order)."""
    import gfgsm.intervals as iv

    n, R, B = 200, 5, 19
    X, y = data(family, n, R, seed=4)
    fit = gfgsm_fit(family, X, y)
    out = []
    for cells in (1, B * n * 5 * 2, 10**9):  # 1, 2 and all 5 problems per block
        monkeypatch.setitem(iv._BLOCK_CELLS, "host", cells)
        out.append(conf_int(fit, X, y, method="bootstrap", B=B, stream=stream_for(3, R, np)))
    for ci in out[1:]:
        np.testing.assert_allclose(np.asarray(ci.lower), np.asarray(out[0].lower), atol=1e-12)
        np.testing.assert_allclose(np.asarray(ci.upper), np.asarray(out[0].upper), atol=1e-12)
    assert np.isfinite(np.asarray(out[0].lower)).all()


# --------------------------------------------------------------------------------------------
# coverage (Monte Carlo, fixed seeds)
# --------------------------------------------------------------------------------------------


def _covers(ci, theta0):
    lo, hi = np.asarray(ci.lower), np.asarray(ci.upper)
    return (lo <= theta0) & (theta0 <= hi)


def test_limit_intervals_cover_pointwise_and_naive_fails():
    """Binomial, n = 2000, R = 300, fixed seed.  The limit-law intervals cover the fixed
    nonzero slopes and the true zero within 3.5 MCSE of 0.95 (MCSE sqrt(.95 .05 / 300) =
    0.0126; 3.5 MCSE keeps the chance of a false alarm over the 3 slopes below 0.2%), and the
    naive interval at theta_hat misses the shrunken slope beta1 far more often (its bias is of
    the order of its SE at lam0 = 1: below 0.85)."""
    n, R = 2000, 300
    X, y = data("binomial", n, R, seed=13)
    fit = gfgsm_fit("binomial", X, y)
    theta0 = np.r_[A0["binomial"], COEF]
    lim = _covers(conf_int(fit, X, y, method="limit", n_draws=2000, seed=1), theta0).mean(0)
    deb = _covers(conf_int(fit, X, y), theta0).mean(0)
    naive = _covers(conf_int(fit, X, y, method="naive"), theta0).mean(0)
    mcse = math.sqrt(0.95 * 0.05 / R)
    assert np.all(np.abs(lim[1:] - 0.95) < 3.5 * mcse), lim
    assert np.all(np.abs(deb[1:] - 0.95) < 3.5 * mcse), deb
    assert naive[1] < 0.85, naive


# --------------------------------------------------------------------------------------------
# API and errors
# --------------------------------------------------------------------------------------------


def test_estimator_conf_int_methods_match_the_batched_function():
    X, y = data("binomial", 500, 1, seed=14)
    lam = 1 / math.sqrt(500)
    est = GFGSM(family="binomial", lam=lam, adversary="exact").fit(X[0], y[0])
    fit = fit_batch(X[0], y[0], family="binomial", method="gfgsm", adversary="exact", lam=lam)
    for method, kw in (("naive", {}), ("limit", {"n_draws": 500, "seed": 3}),
                       ("bootstrap", {"B": 30, "seed": 3})):
        got = est.conf_int(method=method, **kw)
        ref = conf_int(fit, X[0], y[0], method=method, **kw).as_array()[0]
        np.testing.assert_allclose(got, np.asarray(ref), rtol=0, atol=1e-10)
        assert got.shape == (4, 2) and np.all(got[:, 0] <= got[:, 1])
    np.testing.assert_allclose(est.conf_int(), est.conf_int(method="debiased"))


def test_errors_say_what_was_wrong():
    X, y = data("binomial", 200, 1, seed=15)
    fit = gfgsm_fit("binomial", X[0], y[0])
    with pytest.raises(ValueError, match="unknown interval method 'wald'"):
        conf_int(fit, X[0], y[0], method="wald")
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            conf_int(fit, X[0], y[0], alpha=bad)
    scad = fit_batch(X[0], y[0], family="binomial", method="gfgsm", lam=0.05, penalty="scad")
    with pytest.raises(ValueError, match="method='debiased'"):
        conf_int(scad, X[0], y[0], method="limit")
    with pytest.raises(ValueError, match="high-dimensional"):
        Xs, ys = X[0][:4], y[0][:4]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            small = fit_batch(Xs, ys, family="binomial", method="gfgsm", lam=0.5, warn=False)
        conf_int(small, Xs, ys, method="limit")
    weighted = fit_batch(X[0], y[0], family="binomial", method="pl", lam=0.05,
                         sample_weight=np.full(200, 2.0))
    with pytest.raises(ValueError, match="sample_weight"):
        conf_int(weighted, X[0], y[0])
    with pytest.raises(ValueError, match="n_draws"):
        conf_int(fit, X[0], y[0], method="limit", n_draws=0)
    with pytest.raises(ValueError, match="threshold"):
        conf_int(fit, X[0], y[0], method="limit", threshold=-1.0)


def test_limit_and_bootstrap_on_array_api_strict_equal_numpy():
    """The normals and exponentials are the same bits on every backend and the minimisation
    and refits are the same operations, so the intervals agree to rounding (1e-12 for the
    limit law; 1e-9 for the bootstrap, whose refits are KKT-certified at 1e-9 on each
    backend)."""
    xps = pytest.importorskip("array_api_strict")
    X, y = data("poisson", 300, 3, seed=16)
    fit = gfgsm_fit("poisson", X, y)
    ref = conf_int(fit, X, y, method="limit", n_draws=300, seed=2)
    fs = fit_batch(xps.asarray(X), xps.asarray(y), family="poisson", method="gfgsm",
                   adversary="exact", lam=1 / math.sqrt(300))
    got = conf_int(fs, xps.asarray(X), xps.asarray(y), method="limit", n_draws=300, seed=2)
    np.testing.assert_allclose(np.asarray(got.lower), np.asarray(ref.lower), atol=1e-12)
    np.testing.assert_allclose(np.asarray(got.upper), np.asarray(ref.upper), atol=1e-12)
    ref_b = conf_int(fit, X, y, method="bootstrap", B=9, seed=2)
    got_b = conf_int(fs, xps.asarray(X), xps.asarray(y), method="bootstrap", B=9, seed=2)
    np.testing.assert_allclose(np.asarray(got_b.lower), np.asarray(ref_b.lower), atol=1e-9)
    np.testing.assert_allclose(np.asarray(got_b.upper), np.asarray(ref_b.upper), atol=1e-9)
