"""Training batched networks (gfgsm.nn.training, gfgsm.nn.estimators).

The link to the GLM theory (docs/theory.md s.6, "Two estimators, one name"): a network with no
hidden layer, the sign scheme and ``clean_weight = 0``, trained full batch to convergence with
the perturbation held fixed within each step, reproduces ``GFGSM(penalty="l1")`` to 1e-5, as long
as the G-FGSM fit has no zero coefficient.  At a zero coefficient the two estimators part:
``sign(0) = 0`` makes the trainer's gradient there the plain likelihood gradient, which does not
vanish, so the GLM minimiser is not a fixed point of the trainer (tested below, not hidden).
"""

from __future__ import annotations

import warnings

import array_api_compat.numpy as np_xp
import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from gfgsm import GFGSM, fit_batch
from gfgsm._backend import to_numpy
from gfgsm.nn import (
    CatastrophicOverfittingWarning,
    GFGSMNetwork,
    Params,
    detect_catastrophic_overfitting,
    train_networks,
)
from gfgsm.nn.networks import MLP
from gfgsm.nn.objective import TrainingObjective
from gfgsm.schemes import Power, Sign


def _logistic_data(n=400, beta=(1.0, -0.8, 0.6, 0.5, -0.4), a=0.3, seed=1):
    rng = np.random.default_rng(seed)
    beta = np.asarray(beta)
    X = rng.standard_normal((n, beta.size))
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(a + X @ beta)))).astype(float)
    return X, y


def _coef(fit, r=0):
    W = to_numpy(fit.params.weights[0])[r, :, 0]
    b = float(to_numpy(fit.params.biases[0])[r, 0])
    return W, b


def _arrays(fit):
    return [to_numpy(a) for a in fit.params.arrays()]


# --------------------------------------------------------------------------------------------
# docs/theory.md s.6: the GLM link
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, clean_weight",
    [("binomial", 0.0), ("binomial", 0.5), ("gaussian", 0.0)],
)
def test_glm_network_reproduces_gfgsm_l1(family, clean_weight):
    """No hidden layer + sign scheme + full-batch L-BFGS = GFGSM(penalty="l1") (to 1e-5; the
    measured agreement is about 1e-10).  Every coefficient is nonzero at the G-FGSM fit."""
    X, y = _logistic_data()
    lam = 0.05
    if family == "gaussian":
        rng = np.random.default_rng(2)
        y = 0.3 + X @ np.array([1.0, -0.8, 0.6, 0.5, -0.4]) + rng.standard_normal(X.shape[0])
    glm = GFGSM(family=family, lam=lam, penalty="l1", clean_weight=clean_weight).fit(X, y)
    assert glm.converged_ and np.all(glm.coef_ != 0)
    fit = train_networks(
        X, y, hidden=(), family=family, lam=lam, scheme="sign", clean_weight=clean_weight,
        solver="lbfgs", tol=1e-10, max_iter=2000, random_state=0,
    )
    assert fit.status[0] == "converged", fit.status
    W, b = _coef(fit)
    np.testing.assert_allclose(W, glm.coef_, rtol=0, atol=1e-5)
    assert abs(b - glm.intercept_) <= 1e-5


def test_glm_minimiser_with_a_zero_is_not_a_fixed_point_of_the_trainer():
    """Where the G-FGSM fit has ``beta_j = 0`` the sign scheme perturbs coordinate ``j`` by
    ``sign(0) = 0``, so the trainer's (fixed-perturbation) gradient in ``beta_j`` is
    ``(1/n) sum_i dl_i x_ij``: inside the l1 subdifferential, but not 0.  The trainer therefore
    has no fixed point there; full-batch L-BFGS cycles (it does not converge) and only the
    nonzero coefficients come near the GLM fit.  docs/theory.md's "same stationary points" holds off
    the coordinate hyperplanes only."""
    X, y = _logistic_data(beta=(1.0, -0.8, 0.0, 0.0, 0.5))
    lam = 0.05
    glm = GFGSM(family="binomial", lam=lam, penalty="l1").fit(X, y)
    zero = glm.coef_ == 0
    assert glm.converged_ and zero.sum() == 2
    # The trainer's gradient at the GLM minimiser, with the perturbation computed there.
    net = MLP(X.shape[1], (), "relu", "binomial")
    params = Params([np_xp.asarray(glm.coef_[None, :, None])],
                    [np_xp.asarray(np.array([[glm.intercept_]]))])
    tr = TrainingObjective(net, np_xp, np_xp.asarray([lam]), Sign(), "adversarial", 0.0,
                           np_xp.asarray([lam]), 0.0, "l2")
    _, grad, _ = tr.step_objective(params, np_xp.asarray(X), np_xp.asarray(y), None)
    gW = to_numpy(grad.weights[0])[0, :, 0]
    assert np.max(np.abs(gW[~zero])) < 1e-8  # stationary in the nonzero coordinates
    assert np.min(np.abs(gW[zero])) > 1e-3  # but not in the zero ones
    assert np.all(np.abs(gW[zero]) <= lam)  # ... though inside the subdifferential (|.| <= lam
    # times the mean weight, which for the binomial loss is below 1)
    with pytest.warns(ConvergenceWarning):
        fit = train_networks(X, y, hidden=(), lam=lam, clean_weight=0.0, solver="lbfgs",
                             tol=1e-10, max_iter=300, random_state=0)
    assert fit.status[0] != "converged"
    W, _ = _coef(fit)
    assert np.max(np.abs(W[zero])) > 1e-3  # the cycle stays away from 0


def test_lbfgs_two_cycles_are_detected_and_reported():
    """Gaussian G-FGSM has kinks where a residual is 0 (``sign(y - mu)`` flips): the trainer,
    holding the perturbation fixed within a step, can alternate between two weight vectors
    forever.  Such networks stop early with status ``"cycling"`` (not converged, warned), their
    objective repeating with period 2; the others converge to the GLM fit.  Random
    perturbations (uniform noise) never repeat, so they are never flagged."""
    rng = np.random.default_rng(11)
    R, n = 12, 250
    X = rng.standard_normal((R, n, 3))
    y = 0.3 + X @ np.array([1.0, -0.5, 0.8]) + rng.standard_normal((R, n))
    lam = 1 / np.sqrt(n)
    with pytest.warns(ConvergenceWarning, match="cycling"):
        fit = train_networks(X, y, hidden=(), family="gaussian", lam=lam, clean_weight=0.0,
                             solver="lbfgs", max_iter=200, tol=1e-6, random_state=3)
    cyc = fit.status == "cycling"
    assert cyc.any() and (fit.status[~cyc] == "converged").all()
    assert not fit.converged[cyc].any() and (fit.n_iter[cyc] < 200).all()
    for r in np.flatnonzero(cyc):
        f = fit.loss_curve[: fit.n_iter[r], r]
        np.testing.assert_allclose(f[-1], f[-3], rtol=1e-12)
        assert f[-1] != f[-2]
    # the converged ones are the GLM fit (exact KKT): a gradient below 1e-6 with a Hessian near
    # the identity (x ~ N(0, I), gaussian) puts the weights within about 1e-6 of it
    glm = fit_batch(X, y, family="gaussian", method="gfgsm", lam=lam)
    W = fit.params.weights[0][..., 0]
    ok = ~cyc
    np.testing.assert_allclose(W[ok], np.asarray(glm.coef)[ok], atol=1e-5)
    noisy = train_networks(X, y, hidden=(), family="gaussian", lam=lam, clean_weight=0.0,
                           perturbation="uniform", solver="lbfgs", max_iter=30, tol=1e-6,
                           random_state=3, warn=False)
    assert not (noisy.status == "cycling").any()


# The dense reduction of issue 12: coef (0.8, -0.6, 0.5, -0.4), intercept 0.3, n = 400, lam = 0.05.
_DENSE_BETA, _DENSE_A, _DENSE_LAM = np.array([0.8, -0.6, 0.5, -0.4]), 0.3, 0.05
_MEAN = {"binomial": lambda e: 1.0 / (1.0 + np.exp(-e)), "poisson": np.exp,
         "gaussian": lambda e: e}
_D2 = {"binomial": lambda m: m * (1.0 - m), "poisson": lambda m: m,
       "gaussian": np.ones_like}


def _dense_data(family, seed, n=400):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    eta = _DENSE_A + X @ _DENSE_BETA
    if family == "binomial":
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    elif family == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    else:
        y = eta + rng.standard_normal(n)
    return X, y


def _glm_sign_gradient(family, X, y, coef, intercept, lam):
    """The trainer's objective for a GLM network, written out by hand (independent of the
    network code): ``x_adv = x + lam sign((mu - y) coef)`` at the weights, then the gradient of
    ``mean l(y, a + x_adv' b)`` with ``x_adv`` fixed: ``mean (mu_adv - y) (x_adv, 1)``."""
    mu = _MEAN[family](intercept + X @ coef)
    X_adv = X + lam * np.sign((mu - y)[:, None] * coef[None, :])
    r = _MEAN[family](intercept + X_adv @ coef) - y
    return np.r_[X_adv.T @ r / len(y), r.mean()], X_adv


def _glm_fit(family, X, y):
    # Poisson: the network's sign perturbation is the FGSM objective (GFGSM's default adversary
    # for poisson is the exact worst case, a different estimator).
    adv = {"adversary": "fgsm"} if family == "poisson" else {}
    return GFGSM(family=family, lam=_DENSE_LAM, penalty="l1", **adv).fit(X, y)


@pytest.mark.parametrize("family, seed", [("binomial", 0), ("poisson", 2), ("gaussian", 0)])
def test_default_network_reaches_the_gfgsm_estimator(family, seed):
    """Issue 12: with default solver settings (only hidden=(), clean_weight=0, the family and
    lam set) the GLM network lands within 1e-3 (max abs over coef and intercept) of
    GFGSM(penalty="l1", lam = eps), with status "converged" meaning a small gradient.

    Premise, asserted: the G-FGSM fit has no zero coefficient and sits off every sign boundary
    (``min |y_i - mu_i| > 1e-3``; seeds chosen for that: binomial has no such boundary, while
    for poisson most draws have *no* FGSM minimiser and for gaussian about half the fits sit on
    a residual kink, tested below).  There the objective is smooth, and the tolerance follows
    from stationarity: ``|theta - theta*|_inf <= ||H^-1||_inf max|grad| <= ||H^-1||_inf tol``
    to first order, ``H = mean l''(eta_adv) (x_adv, 1)(x_adv, 1)'``, with a remainder of
    relative size about ``||H^-1|| |l'''| |theta - theta*| < 1e-2``, so 1.1 times the bound
    holds.  The test checks the distance against that bound and the bound against 1e-3.
    Measured: distances 3.9e-4, 1.4e-5 and 4.3e-6."""
    X, y = _dense_data(family, seed)
    glm = _glm_fit(family, X, y)
    theta_star = np.r_[glm.coef_, glm.intercept_]
    mu = _MEAN[family](glm.intercept_ + X @ glm.coef_)
    assert glm.converged_ and np.all(glm.coef_ != 0) and np.min(np.abs(y - mu)) > 1e-3
    est = GFGSMNetwork(hidden=(), clean_weight=0.0, family=family, lam=_DENSE_LAM,
                       random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a converged fit does not warn
        est.fit(X, y)
    assert est.solver_ == "lbfgs" and est.status_ == "converged" and est.converged_
    assert est.grad_max_ <= est.tol == 1e-4
    theta = np.r_[est.coefs_[0][:, 0], est.intercepts_[0]]
    _, X_adv = _glm_sign_gradient(family, X, y, glm.coef_, glm.intercept_, _DENSE_LAM)
    Z = np.c_[X_adv, np.ones(len(y))]
    w = _D2[family](_MEAN[family](Z @ theta_star))
    H = Z.T @ (w[:, None] * Z) / len(y)
    bound = 1.1 * np.max(np.abs(np.linalg.inv(H)).sum(axis=1)) * est.tol
    dist = np.max(np.abs(theta - theta_star))
    assert dist <= bound < 1e-3, (dist, bound)


def test_default_network_on_a_sign_boundary_is_flagged():
    """Gaussian G-FGSM penalizes ``c |y_i - mu_i|`` per row (c = lam ||b||_1), a kink at a zero
    residual, and the minimiser often sits on one (a residual exactly 0 at the fit, as in least
    absolute deviations).  The trainer's perturbation ``sign(y - mu)`` then flips between steps
    and the fixed-perturbation gradient cannot vanish there: L-BFGS 2-cycles around the kink.
    That is reported (status "cycling", not converged, ConvergenceWarning) and the weights stay
    near the minimiser (measured 1.0e-3 here; 2e-3 bounds the straddle of the cycle)."""
    X, y = _dense_data("gaussian", 2)
    glm = _glm_fit("gaussian", X, y)
    mu = glm.intercept_ + X @ glm.coef_
    assert glm.converged_ and np.min(np.abs(y - mu)) < 1e-12  # on the boundary
    # A fixed seed: the default (None) draws the start from fresh entropy, and 2 of 300 seeded
    # starts (e.g. 17) end with a gradient just under tol (9.0e-5) beside the kink instead of
    # cycling, so the unseeded test failed about once in 150 runs (one CI run did).
    est = GFGSMNetwork(hidden=(), clean_weight=0.0, family="gaussian", lam=_DENSE_LAM,
                       random_state=0)
    with pytest.warns(ConvergenceWarning, match="cycling"):
        est.fit(X, y)
    assert est.status_ == "cycling" and not est.converged_ and est.grad_max_ > est.tol
    theta = np.r_[est.coefs_[0][:, 0], est.intercepts_[0]]
    assert np.max(np.abs(theta - np.r_[glm.coef_, glm.intercept_])) <= 2e-3


def test_converged_status_is_a_small_recomputed_gradient():
    """"converged" = the full-batch gradient, recomputed by hand at the returned weights with
    the perturbation recomputed there, is at most tol; NetworkFit.grad_max is that residual
    (to 1e-12: the same sums in another order)."""
    X, y = _dense_data("binomial", 0)
    fit = train_networks(X, y, hidden=(), family="binomial", lam=_DENSE_LAM, clean_weight=0.0,
                         solver="auto", random_state=0)
    assert fit.solver == "lbfgs" and fit.status[0] == "converged" and fit.converged[0]
    W, b = _coef(fit)
    g, _ = _glm_sign_gradient("binomial", X, y, W, b, _DENSE_LAM)
    assert np.max(np.abs(g)) == pytest.approx(fit.grad_max[0], rel=1e-9, abs=1e-12)
    assert np.max(np.abs(g)) <= fit.tol


def _fd_residual(fit, X, y, lam, clean_weight, perturbation="adversarial", weight_decay=0.0):
    """max |dF/dtheta| by central differences of the objective *value* (forward passes only,
    weight decay included), the sign perturbation recomputed at the fitted weights and held
    fixed; step 1e-6 leaves an error near 1e-10 (rounding 1e-16 / 1e-6, truncation 1e-12 times
    the third derivative)."""
    net, params = fit.net, fit.params
    tr = TrainingObjective(net, np_xp, np_xp.asarray([lam]), Sign(), perturbation,
                           clean_weight, np_xp.asarray([lam]), weight_decay, "l2")
    Xa, ya = np_xp.asarray(X), np_xp.asarray(y)
    X_adv = tr.perturb(params, Xa, ya, None) if tr.uses_perturbation else None
    theta = to_numpy(params.flatten(np_xp))[0]
    h, g = 1e-6, np.empty_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        f = [float(tr.value(params.unflatten(np_xp.asarray((theta + s * e)[None]), np_xp),
                            Xa, ya, X_adv)[0]) for s in (1, -1)]
        g[j] = (f[0] - f[1]) / (2 * h)
    return np.max(np.abs(g))


def test_adam_plateau_is_not_convergence():
    """A deliberately short Adam run (tiny learning rate: the loss stops improving by tol within
    two epochs) stops on the plateau rule far from a stationary point.  It used to be reported
    "converged"; now its status is "plateau", converged is False, a ConvergenceWarning names
    it, and grad_max is the true residual (finite differences, to 1e-7)."""
    X, y = _logistic_data(n=200)
    kw = dict(hidden=(3,), activation="tanh", lam=0.1, clean_weight=0.0, solver="adam",
              learning_rate=1e-6, max_iter=50, n_iter_no_change=1, tol=1e-2, random_state=0)
    with pytest.warns(ConvergenceWarning, match="plateau"):
        fit = train_networks(X, y, **kw)
    assert fit.status[0] == "plateau" and not fit.converged[0] and fit.n_iter[0] < 50
    assert fit.grad_max[0] == pytest.approx(_fd_residual(fit, X, y, 0.1, 0.0), abs=1e-7)
    assert fit.grad_max[0] > 10 * fit.tol  # far from stationary, not a borderline case


def test_mlp_residual_matches_finite_differences():
    """The same certificate for a network with a hidden layer (finite differences, to 1e-7).
    Smooth objective (no perturbation, l2 decay): L-BFGS reaches tol = 1e-6 and says
    "converged".  Sign scheme: the input-gradient signs of an MLP flip as the weights move (a
    kink of the objective for every row and input), the fixed-perturbation gradient does not
    vanish, and the same solver honestly stops short (not converged, residual above tol)."""
    X, y = _logistic_data(n=200)
    kw = dict(hidden=(3,), activation="tanh", solver="lbfgs", max_iter=500, tol=1e-6,
              random_state=0)
    fit = train_networks(X, y, perturbation="none", weight_decay=1e-2, **kw)
    assert fit.status[0] == "converged" and fit.grad_max[0] <= 1e-6
    fd = _fd_residual(fit, X, y, 0.0, 0.0, perturbation="none", weight_decay=1e-2)
    assert fit.grad_max[0] == pytest.approx(fd, abs=1e-7)
    with pytest.warns(ConvergenceWarning):
        sign = train_networks(X, y, lam=0.1, clean_weight=0.5, **kw)
    assert sign.status[0] != "converged" and not sign.converged[0]
    assert sign.grad_max[0] > 1e-6
    assert sign.grad_max[0] == pytest.approx(_fd_residual(sign, X, y, 0.1, 0.5), abs=1e-7)


def test_auto_solver_rule():
    """"auto" = L-BFGS when n * n_params <= AUTO_LBFGS_MAX_WORK (and no early stopping)."""
    from gfgsm.nn.training import AUTO_LBFGS_MAX_WORK

    rng = np.random.default_rng(0)
    P = 4 * 50 + 50 + 51  # hidden (50,) on 4 inputs
    n_small = AUTO_LBFGS_MAX_WORK // P
    X = rng.standard_normal((n_small + 1, 4))
    y = (X[:, 0] > 0).astype(float)
    kw = dict(hidden=(50,), solver="auto", max_iter=1, warn=False, random_state=0)
    assert train_networks(X[:n_small], y[:n_small], **kw).solver == "lbfgs"
    assert train_networks(X, y, **kw).solver == "adam"
    assert train_networks(X[:200], y[:200], early_stopping=True, **kw).solver == "adam"


def test_perturbation_is_held_fixed_within_a_step():
    """The step gradient is that of the objective with ``x_adv`` frozen.  For the sign scheme it
    equals the derivative *through* the perturbation (sign is locally constant); for the power
    scheme (r = 2, the direction moves with the weights) it does not: two estimators."""
    rng = np.random.default_rng(4)
    X = np_xp.asarray(rng.standard_normal((12, 3)))
    y = np_xp.asarray((rng.random(12) < 0.5).astype(float))
    net = MLP(3, (4,), "tanh", "binomial")
    params = net.init([np.random.SeedSequence(0)], np_xp)
    theta = params.flatten(np_xp)
    h = 1e-6
    for scheme, through_equal in ((Sign(), True), (Power(2.0), False)):
        tr = TrainingObjective(net, np_xp, np_xp.asarray([0.3]), scheme, "adversarial", 0.25,
                               np_xp.asarray([0.3]), 0.0, "l2")
        _, grad, X_adv = tr.step_objective(params, X, y, None)
        g = to_numpy(grad.flatten(np_xp))[0]
        fd_fixed, fd_through = np.empty_like(g), np.empty_like(g)
        for j in range(g.size):
            e = np.zeros_like(g)
            e[j] = h
            vals = []
            for s in (1, -1):
                p = params.unflatten(theta + np_xp.asarray(s * e), np_xp)
                vals.append((float(tr.value(p, X, y, X_adv)[0]),
                             float(tr.value(p, X, y, tr.perturb(p, X, y, None))[0])))
            fd_fixed[j] = (vals[0][0] - vals[1][0]) / (2 * h)
            fd_through[j] = (vals[0][1] - vals[1][1]) / (2 * h)
        np.testing.assert_allclose(g, fd_fixed, rtol=1e-6, atol=1e-8)
        if through_equal:
            np.testing.assert_allclose(g, fd_through, rtol=1e-6, atol=1e-8)
        else:
            assert np.max(np.abs(g - fd_through)) > 1e-3


# --------------------------------------------------------------------------------------------
# batching: replication r is trained the same whatever R
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opts",
    [
        dict(solver="adam", early_stopping=True, max_iter=12, n_iter_no_change=2, tol=1e-3,
             perturbation="fgsm_rs", batch_size=50),
        dict(solver="adam", max_iter=8, perturbation="gaussian", batch_size=64),
        dict(solver="adam", max_iter=6, scheme="quantized", scheme_params={"b": 3},
             weight_decay=1e-3, decay="l1"),
        dict(solver="lbfgs", max_iter=25, tol=1e-3),
    ],
    ids=["adam-es-fgsm_rs", "adam-gaussian", "adam-quantized-l1", "lbfgs"],
)
def test_network_r_does_not_depend_on_R(opts):
    X, y = _logistic_data(n=240)
    kw = dict(hidden=(6,), random_state=7, warn=False, **opts)
    big = train_networks(X, y, n_networks=4, **kw)
    small = train_networks(X, y, n_networks=2, **kw)
    for a, b in zip(_arrays(big), _arrays(small), strict=True):
        np.testing.assert_array_equal(a[:2], b)
    np.testing.assert_array_equal(big.loss_curve[: small.loss_curve.shape[0], :2],
                                  small.loss_curve[:, :2])
    np.testing.assert_array_equal(big.n_iter[:2], small.n_iter)
    # the stationarity certificate too (its noise has its own seed child: fgsm_rs, gaussian)
    np.testing.assert_array_equal(big.grad_max[:2], small.grad_max)
    np.testing.assert_array_equal(big.status[:2], small.status)
    if opts.get("early_stopping"):
        # the networks stopped at different epochs: freezing did not disturb the others
        assert len(set(big.n_iter.tolist())) > 1


def test_chunk_size_does_not_change_the_results():
    X, y = _logistic_data(n=200)
    kw = dict(hidden=(6,), n_networks=5, random_state=2, warn=False, early_stopping=True,
              max_iter=15, n_iter_no_change=2, tol=1e-3, perturbation="fgsm_rs")
    one = train_networks(X, y, chunk_size=5, **kw)
    parts = train_networks(X, y, chunk_size=2, **kw)
    for a, b in zip(_arrays(one), _arrays(parts), strict=True):
        np.testing.assert_array_equal(a, b)
    for key in ("loss_curve", "validation_loss_curve", "robust_curve", "n_iter", "status",
                "grad_max", "converged"):
        np.testing.assert_array_equal(getattr(one, key), getattr(parts, key))


def test_batched_replications_equal_the_loop_over_them():
    """R data sets trained at once = each trained alone with its own seed (the benchmark's
    comparison runs the same code both ways)."""
    rng = np.random.default_rng(5)
    R, n, d = 3, 150, 4
    X = rng.standard_normal((R, n, d))
    y = (X[..., 0] + rng.standard_normal((R, n)) > 0).astype(float)
    kw = dict(hidden=(5,), lam=np.array([0.0, 0.1, 0.2]), max_iter=5, batch_size=40,
              warn=False)
    batch = train_networks(X, y, random_state=3, **{**kw, "lam": kw["lam"]})
    for r in range(R):
        alone = train_networks(X[r], y[r], random_state=batch.seeds[r : r + 1],
                               **{**kw, "lam": float(kw["lam"][r])})
        for a, b in zip(_arrays(batch), _arrays(alone), strict=True):
            np.testing.assert_array_equal(a[r], b[0])


def test_lam_zero_is_clean_training():
    X, y = _logistic_data(n=200)
    kw = dict(hidden=(5,), max_iter=4, random_state=1, warn=False)
    adv = train_networks(X, y, n_networks=2, lam=np.array([0.0, 0.2]), **kw)
    clean = train_networks(X, y, n_networks=2, perturbation="none", **kw)
    for a, b in zip(_arrays(adv), _arrays(clean), strict=True):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-9, atol=1e-12)
        assert np.max(np.abs(a[1] - b[1])) > 1e-8


def test_backends_agree_on_training(xp):
    X, y = _logistic_data(n=120)
    for opts in (dict(solver="adam", max_iter=3, batch_size=50, perturbation="fgsm_rs"),
                 dict(solver="lbfgs", max_iter=5)):
        ref = train_networks(X, y, hidden=(4,), n_networks=2, random_state=0, warn=False,
                             **opts)
        got = train_networks(xp.asarray(X), xp.asarray(y), hidden=(4,), n_networks=2,
                             random_state=0, warn=False, **opts)
        for a, b in zip(_arrays(ref), _arrays(got), strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
        # the stationarity residual is computed in the namespace too (gradients of order 0.1)
        np.testing.assert_allclose(got.grad_max, ref.grad_max, rtol=1e-8, atol=1e-12)
        np.testing.assert_array_equal(got.status, ref.status)


# --------------------------------------------------------------------------------------------
# perturbations and baselines
# --------------------------------------------------------------------------------------------


def test_perturbations_stay_in_their_budget():
    rng = np.random.default_rng(6)
    R, n, d, lam = 2, 50, 5, 0.3
    X = np_xp.asarray(rng.standard_normal((n, d)))
    y = np_xp.asarray((rng.random(n) < 0.5).astype(float))
    net = MLP(d, (4,), "relu", "binomial")
    params = net.init([np.random.SeedSequence(0, spawn_key=(r,)) for r in range(R)], np_xp)
    rngs = [np.random.default_rng(r) for r in range(R)]

    def delta(kind, alpha=1.25 * lam):
        tr = TrainingObjective(net, np_xp, np_xp.asarray([lam] * R), Sign(), kind, 0.5,
                               np_xp.asarray([alpha] * R), 0.0, "l2")
        noise = tr.draw_noise(rngs, n, d)
        return to_numpy(tr.perturb(params, X, y, noise)) - to_numpy(X)[None]

    sign = delta("adversarial")
    g = to_numpy(net.input_gradient(params, X, y, np_xp))
    np.testing.assert_allclose(sign, lam * np.sign(g), rtol=1e-15, atol=1e-15)
    rs = delta("fgsm_rs")
    # Projected where the start and the 1.25 lam step agree in sign (probability 5/8).
    assert np.max(np.abs(rs)) <= lam + 1e-12
    on_sphere = np.isclose(np.abs(rs), lam, rtol=0, atol=1e-12)
    assert np.mean(on_sphere) == pytest.approx(0.625, abs=0.1)
    uni = delta("uniform")
    assert np.max(np.abs(uni)) <= lam + 1e-12
    assert np.std(uni) == pytest.approx(lam / np.sqrt(3), rel=0.1)
    gau = delta("gaussian")
    assert np.std(gau) == pytest.approx(lam, rel=0.1)


def test_l2_weight_decay_glm_matches_sklearn_logistic_regression():
    """No hidden layer, no perturbation, l2 decay ``(wd/2)||W||^2`` on the mean loss: scikit-
    learn's ``LogisticRegression(C = 1 / (n wd))`` (unpenalized intercept)."""
    X, y = _logistic_data()
    wd = 0.05
    fit = train_networks(X, y, hidden=(), perturbation="none", weight_decay=wd, decay="l2",
                         solver="lbfgs", tol=1e-10, max_iter=500, random_state=0)
    ref = LogisticRegression(C=1.0 / (X.shape[0] * wd), tol=1e-12, max_iter=10_000).fit(X, y)
    W, b = _coef(fit)
    np.testing.assert_allclose(W, ref.coef_[0], atol=1e-6)
    assert b == pytest.approx(ref.intercept_[0], abs=1e-6)


def test_l1_decay_shrinks_weights():
    X, y = _logistic_data(n=300)
    kw = dict(hidden=(8,), perturbation="none", max_iter=30, random_state=0, warn=False,
              learning_rate=1e-2)
    plain = train_networks(X, y, **kw)
    l1 = train_networks(X, y, weight_decay=0.05, decay="l1", **kw)
    assert np.abs(_arrays(l1)[0]).sum() < 0.7 * np.abs(_arrays(plain)[0]).sum()


@pytest.mark.parametrize("scheme, params", [("lq", {"q": 2}), ("power", {"r": 2.0}),
                                            ("quantized", {"b": 4})])
def test_other_schemes_train(scheme, params):
    X, y = _logistic_data(n=200)
    kw = dict(hidden=(5,), max_iter=5, random_state=0, warn=False)
    fit = train_networks(X, y, scheme=scheme, scheme_params=params, **kw)
    ref = train_networks(X, y, scheme="sign", **kw)
    assert np.all(np.isfinite(fit.loss_curve))
    assert not np.allclose(_arrays(fit)[0], _arrays(ref)[0])


# --------------------------------------------------------------------------------------------
# stopping rules and catastrophic overfitting
# --------------------------------------------------------------------------------------------


def test_early_stopping_keeps_the_best_adversarial_validation_epoch():
    X, y = _logistic_data(n=300)
    fit = train_networks(X, y, hidden=(16,), n_networks=3, early_stopping=True, max_iter=60,
                         n_iter_no_change=3, tol=1e-3, learning_rate=1e-2, random_state=0,
                         warn=False)
    v = fit.validation_loss_curve
    assert v is not None and v.shape == fit.loss_curve.shape
    np.testing.assert_allclose(fit.best_validation_loss, np.nanmin(v, axis=0))
    np.testing.assert_array_equal(fit.best_epoch, np.nanargmin(v, axis=0))
    assert np.all(fit.status == "early_stopped") and np.all(fit.n_iter < 60)
    assert np.all(fit.n_iter - 1 >= fit.best_epoch)


def test_detect_catastrophic_overfitting_on_curves():
    robust = np.array([[0.2, 0.02], [0.4, 0.03], [0.45, 0.01], [0.05, 0.0], [0.0, 0.01]])
    clean = np.array([[0.7, 0.5], [0.8, 0.6], [0.85, 0.6], [0.9, 0.6], [0.9, 0.6]])
    flag, epoch = detect_catastrophic_overfitting(robust, clean)
    # Network 0 collapses at epoch 3 with clean accuracy up; network 1 was never robust.
    np.testing.assert_array_equal(flag, [True, False])
    np.testing.assert_array_equal(epoch, [3, -1])
    # A collapse of the clean accuracy as well is a failed run, not catastrophic overfitting.
    flag, _ = detect_catastrophic_overfitting(robust[:, :1], clean[:, :1] * [[1], [1], [1],
                                                                           [0.5], [0.5]])
    assert not flag[0]
    # Losses: robust loss blows up while the clean loss stays at its best.
    rl = np.array([[1.0], [0.8], [0.9], [3.0]])
    cl = np.array([[0.6], [0.5], [0.45], [0.45]])
    flag, epoch = detect_catastrophic_overfitting(rl, cl, metric="loss")
    assert flag[0] and epoch[0] == 3
    with pytest.raises(ValueError, match="fraction"):
        detect_catastrophic_overfitting(robust, clean, fraction=1.5)


def test_fgsm_rs_records_robustness_and_reports_collapse(monkeypatch):
    """FGSM-RS runs the PGD monitor by default; when the detector fires the trainer warns and
    sets the flag (the detector itself is tested on curves above)."""
    X, y = _logistic_data(n=300)
    kw = dict(hidden=(8,), perturbation="fgsm_rs", lam=0.2, max_iter=6, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = train_networks(X, y, n_networks=2, **kw)
    assert fit.robust_curve.shape == fit.clean_curve.shape == (6, 2)
    assert fit.monitor_metric == "accuracy"
    assert np.all(fit.robust_curve <= fit.clean_curve + 0.05)  # PGD hurts
    assert not fit.catastrophic_overfitting.any()
    # Force a collapse: the same run with a detector threshold every epoch meets.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(CatastrophicOverfittingWarning, match="catastrophic overfitting"):
            fit = train_networks(X, y, n_networks=2, co_fraction=0.999999, co_min_drop=0.0,
                                 co_clean_fraction=1e-9, **kw)
    clean_off = train_networks(X, y, n_networks=1, perturbation="none", max_iter=2, warn=False)
    assert clean_off.robust_curve is None and not clean_off.catastrophic_overfitting.any()


# --------------------------------------------------------------------------------------------
# the scikit-learn estimator
# --------------------------------------------------------------------------------------------


def test_estimator_binary_classifier_like_mlpclassifier():
    X, y = _logistic_data(n=300)
    labels = np.where(y == 1, "yes", "no")
    # Adam named: the default "auto" would pick full-batch L-BFGS at this size, and this test
    # is about the mini-batch path (epochs, the PGD monitor) that mirrors MLPClassifier.
    est = GFGSMNetwork(hidden=(32,), lam=0.05, max_iter=30, random_state=0, solver="adam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, labels)
    assert is_classifier(est) and est.solver_ == "adam"
    assert [c.shape for c in est.coefs_] == [(5, 32), (32, 1)]
    assert [b.shape for b in est.intercepts_] == [(32,), (1,)]
    assert len(est.loss_curve_) == est.n_iter_ == 30
    assert est.out_activation_ == "logistic" and est.n_layers_ == 3 and est.n_outputs_ == 1
    assert set(est.predict(X)) <= {"no", "yes"}
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_allclose(np.log(proba), est.predict_log_proba(X), atol=1e-12)
    assert est.score(X, labels) > 0.7
    assert isinstance(est.robust_curve_, list) and est.catastrophic_overfitting_ is False
    assert clone(est).get_params() == est.get_params()
    target = est.attack_target()  # for gfgsm.nn.attacks; labels coded 0/1 as in training
    g = target.input_gradient(np_xp.asarray(X), np_xp.asarray(y))
    assert g.shape == X.shape and np.all(np.isfinite(np.asarray(g)))


def test_estimator_softmax_and_regressors():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((240, 4))
    cls = np.argmax(X[:, :3] + 0.3 * rng.standard_normal((240, 3)), axis=1)
    est = GFGSMNetwork(hidden=(16,), family="softmax", lam=0.05, max_iter=40,
                       learning_rate_init=1e-2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, cls)
        assert est.predict_proba(X).shape == (240, 3) and est.score(X, cls) > 0.7
        assert est.out_activation_ == "softmax"
        mu = 0.5 + X @ np.array([1.0, -1.0, 0.5, 0.0])
        reg = GFGSMNetwork(hidden=(8,), family="gaussian", lam=0.05, solver="lbfgs",
                           max_iter=200, random_state=0)
        reg.fit(X, mu + 0.1 * rng.standard_normal(240))
        assert is_regressor(reg) and not hasattr(reg, "predict_proba")
        assert reg.score(X, mu) > 0.9
        counts = rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
        poi = GFGSMNetwork(hidden=(), family="poisson", lam=0.01, solver="lbfgs",
                           max_iter=200, random_state=0).fit(X, counts)
        assert np.all(poi.predict(X) > 0) and poi.out_activation_ == "exp"


def test_estimator_restarts_keep_the_best():
    X, y = _logistic_data(n=200)
    est = GFGSMNetwork(hidden=(8,), lam=0.05, n_restarts=4, max_iter=8, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.restart_losses_.shape == (4,)
    assert est.best_restart_ == int(np.argmin(est.restart_losses_))
    np.testing.assert_array_equal(
        est.coefs_[0], to_numpy(est.fit_.params.weights[0])[est.best_restart_]
    )


@pytest.mark.parametrize(
    "params, match",
    [
        ({"perturbation": "pgd"}, "perturbation must be one of"),
        ({"solver": "sgd"}, "solver must be one of"),
        ({"clean_weight": 1.5}, "clean_weight must be a number in"),
        ({"lam": -0.1}, "lam must be a finite number >= 0"),
        ({"hidden": (4, 0)}, "hidden must be a sequence of positive integers"),
        ({"scheme": "lq", "scheme_params": {"q": 2}, "perturbation": "fgsm_rs"}, "l_inf"),
        ({"scheme": "cube"}, "unknown scheme"),
        ({"decay": "l3"}, "decay must be one of"),
        ({"activation": "elu"}, "unknown activation"),
        ({"max_iter": 0}, "max_iter must be an integer"),
    ],
)
def test_estimator_rejects_bad_parameters(params, match):
    X, y = _logistic_data(n=50)
    with pytest.raises(ValueError, match=match):
        GFGSMNetwork(**params).fit(X, y)


def test_binomial_with_three_classes_points_to_softmax():
    X = np.random.default_rng(0).standard_normal((30, 2))
    with pytest.raises(ValueError, match="family='softmax'"):
        GFGSMNetwork().fit(X, np.arange(30) % 3)


# The same reason as tests/test_estimators.py: these checks fit a positive *non-integer* target,
# which the poisson family rejects before the checked property is reached.
_NON_INTEGER_Y_CHECKS = (
    "check_fit_check_is_fitted", "check_fit_idempotent", "check_n_features_in",
    "check_n_features_in_after_fitting", "check_regressor_data_not_an_array",
    "check_regressors_no_decision_function", "check_regressors_train",
)


def _expected_failed(estimator) -> dict[str, str]:
    if estimator.family == "poisson":
        return dict.fromkeys(_NON_INTEGER_Y_CHECKS, "poisson accepts integer counts only")
    return {}


@parametrize_with_checks(
    [GFGSMNetwork(hidden=(8,), family=f, max_iter=100, learning_rate_init=1e-2, random_state=0)
     for f in ("binomial", "softmax", "gaussian", "poisson")]
    # the default solver is "auto" (L-BFGS at these sizes): the Adam path is checked as well
    + [GFGSMNetwork(hidden=(8,), solver="adam", max_iter=100, learning_rate_init=1e-2,
                    random_state=0)],
    expected_failed_checks=_expected_failed,
)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
