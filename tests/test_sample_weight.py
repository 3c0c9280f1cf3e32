"""Observation weights and the linear tilt of ``fit_batch`` (docs/theory.md s.5).

Every problem minimises

    F(theta) = sum_i [ w_i psi(y_i, eta_i, P) + t_i eta_i ] / sum_i w_i,

and each test checks it against something independent of gfgsm's weighting code:

* integer weights against the unweighted fit on repeated rows (weight 0: the row dropped);
* lam = 0 against statsmodels ``GLM(..., freq_weights=w)``;
* the tilt against ``scipy.optimize.minimize`` of the same objective written here in NumPy;
* ``Objective.partials`` against finite differences of ``Objective.value``;
* array_api_strict against NumPy.
"""

from __future__ import annotations

import array_api_strict as xs
import numpy as np
import pytest
from scipy.optimize import minimize

import gfgsm
from gfgsm._backend import get_namespace, namespace_name, to_numpy
from gfgsm.families import get_family
from gfgsm.objectives import Objective

FAMILIES = ["gaussian", "binomial", "poisson"]
BETA = np.array([0.8, -0.5, 0.0, 0.4])


def _data(family: str, n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A shared design (n, 4) and one response vector drawn from the family."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, BETA.size))
    y = to_numpy(get_family(family).sample(0.2 + X @ BETA, rng=rng))
    return X, y


def _theta(fit: gfgsm.BatchFit) -> np.ndarray:
    """(R, 1 + p): intercept first."""
    return np.concatenate([to_numpy(fit.intercept)[:, None], to_numpy(fit.coef)], axis=1)


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


# --------------------------------------------------------------------------------------------
# 1. integer weights are repeated rows
# --------------------------------------------------------------------------------------------

# Both fits are KKT-certified at fit_batch's default tol = 1e-9 (sup-norm of the minimum-norm
# subgradient of the same F: with integer weights sum_i w_i psi_i / sum w is exactly the mean
# over the repeated rows).  Two certified points of one problem differ by at most about
# 2 tol / (smallest curvature of F), and the curvature here is O(0.1 .. 1), so 1e-7 is safe
# (the observed differences are at rounding level, ~1e-15).
ATOL_REPEAT = 1e-7


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ["pl", "gfgsm"])
@pytest.mark.parametrize("penalty", ["l1", "scad"])
def test_integer_weights_equal_repeated_rows(family, method, penalty):
    X, y = _data(family, seed=1)
    n, R = X.shape[0], 3
    rng = np.random.default_rng(2)
    W = rng.integers(0, 4, size=(R, n))
    W[:, :5] = [0, 1, 2, 3, 0]  # every row has each weight, zeros (dropped rows) included
    fit = gfgsm.fit_batch(X, y, family=family, method=method, lam=0.05, penalty=penalty,
                          sample_weight=W, warn=False)
    assert list(fit.status) == ["converged"] * R
    if "exact_kkt" in fit.info:  # kinked objectives: the weighted crossover certified every row
        assert np.all(to_numpy(fit.info["exact_kkt"]))
    for r in range(R):
        rows = np.repeat(np.arange(n), W[r])  # weight 0 drops the row, 3 repeats it 3 times
        ref = gfgsm.fit_batch(X[rows], y[rows], family=family, method=method, lam=0.05,
                              penalty=penalty, warn=False)
        assert ref.status[0] == "converged"
        np.testing.assert_allclose(_theta(fit)[r], _theta(ref)[0], rtol=0, atol=ATOL_REPEAT)
        # Same F at (almost) the same point: equal values.
        np.testing.assert_allclose(to_numpy(fit.objective)[r], to_numpy(ref.objective)[0],
                                   rtol=1e-10)


@pytest.mark.parametrize(("scheme", "params", "lam"), [
    ("lq", {"q": 1}, 0.2),  # max-norm penalty: a tie at the max sends a row to prox_gradient
    ("quantized", {"b": 4}, 0.05),  # the level fixed point
])
def test_integer_weights_equal_repeated_rows_for_schemes(scheme, params, lam):
    rng = np.random.default_rng(1)
    n, R = 80, 3
    X = rng.standard_normal((n, 4))
    eta = 0.2 + X @ np.array([1.0, -1.0, 0.9, 0.0])
    y = to_numpy(get_family("binomial").sample(eta, rng=rng))
    W = rng.integers(0, 4, size=(R, n))
    kw = dict(family="binomial", method="gfgsm", lam=lam, scheme=scheme, warn=False, **params)
    fit = gfgsm.fit_batch(X, y, sample_weight=W, **kw)
    assert list(fit.status) == ["converged"] * R
    if scheme == "lq":  # the setting was picked so that the weighted prox gradient runs
        assert np.any(to_numpy(fit.info["prox_gradient_steps"]) > 0)
    for r in range(R):
        rows = np.repeat(np.arange(n), W[r])
        ref = gfgsm.fit_batch(X[rows], y[rows], **kw)
        np.testing.assert_allclose(_theta(fit)[r], _theta(ref)[0], rtol=0, atol=ATOL_REPEAT)


def test_crossover_with_real_weights_reaches_the_exact_kkt_point():
    """Gaussian G-FGSM has kinks; with Exp(1) weights (and zeros) the crossover must still land
    on the exact KKT point, its kinks' constraint rows scaled by their weights (unscaled, the
    Newton system on (theta, nu) is wrong and some rows fall back to the smoothed solution)."""
    X, y = _data("gaussian", n=60, seed=15)
    rng = np.random.default_rng(16)
    W = rng.exponential(size=(6, X.shape[0]))
    W[:, :4] = 0.0
    fit = gfgsm.fit_batch(X, y, family="gaussian", method="gfgsm", lam=0.05, sample_weight=W)
    assert np.all(to_numpy(fit.info["exact_kkt"]))
    # The exact KKT residual is at rounding level (the smoothed one is ~1e-10 .. 1e-13).
    assert np.all(to_numpy(fit.kkt) < 1e-14)


def test_shared_weights_and_rescaling():
    """(n,) weights equal the same weights given per problem; multiplying every weight by a
    constant changes nothing (P sits inside psi); weights of one equal no weights."""
    X, y = _data("binomial", seed=3)
    n = X.shape[0]
    w = np.random.default_rng(4).exponential(size=n)
    kw = dict(family="binomial", method="gfgsm", lam=0.05, warn=False)
    shared = gfgsm.fit_batch(X, y, sample_weight=w, **kw)
    rows = gfgsm.fit_batch(X, y, sample_weight=np.stack([w, w]), **kw)
    scaled = gfgsm.fit_batch(X, y, sample_weight=7.0 * w, **kw)
    ones = gfgsm.fit_batch(X, y, sample_weight=np.ones(n), **kw)
    plain = gfgsm.fit_batch(X, y, **kw)
    assert rows.coef.shape == (2, BETA.size)  # a single y is broadcast to the weights' rows
    # The same problem solved along rounding-level different paths: certified to 1e-9 each.
    np.testing.assert_allclose(_theta(rows), np.repeat(_theta(shared), 2, axis=0), atol=1e-12)
    np.testing.assert_allclose(_theta(scaled), _theta(shared), atol=ATOL_REPEAT)
    np.testing.assert_allclose(_theta(ones), _theta(plain), atol=ATOL_REPEAT)


# --------------------------------------------------------------------------------------------
# 2. lam = 0: statsmodels freq_weights
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_unpenalized_weighted_fit_equals_statsmodels(family):
    sm = pytest.importorskip("statsmodels.api")
    X, y = _data(family, n=120, seed=5)
    w = np.random.default_rng(6).exponential(size=X.shape[0]) + 0.1
    fit = gfgsm.fit_batch(X, y, family=family, method="pl", lam=0.0, sample_weight=w)
    fams = {"gaussian": sm.families.Gaussian(), "binomial": sm.families.Binomial(),
            "poisson": sm.families.Poisson()}
    ref = sm.GLM(y, sm.add_constant(X), family=fams[family], freq_weights=w).fit(tol=1e-13)
    # statsmodels' IRLS stops on the relative deviance change (1e-13 here), gfgsm on a KKT
    # residual of 1e-9; with O(1) curvature both are within ~1e-8 of the MLE, so 1e-6 is loose.
    np.testing.assert_allclose(_theta(fit)[0], ref.params, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# 3. the tilt against scipy on an independent NumPy objective
# --------------------------------------------------------------------------------------------


def _np_objective(case: str, X, y, w, t, lam):
    """``F`` and its gradient in the split variables ``z = (a, b+, b-)``, ``beta = b+ - b-``,
    ``b+-  >= 0``, so that ``||beta||_1 = sum(b+ + b-)`` is linear (smooth for L-BFGS-B)."""
    p = X.shape[1]
    W = w.sum()

    def f(z):
        a, bp, bm = z[0], z[1:p + 1], z[p + 1:]
        beta = bp - bm
        eta = a + X @ beta
        P = lam * np.sum(bp + bm)
        if case == "binomial_gfgsm":
            # l(y, eta - s P) with s = 2y - 1: softplus(-s (eta - s P)) = softplus(P - s eta).
            s = 2.0 * y - 1.0
            m = P - s * eta
            F = (np.sum(w * _softplus(m)) + np.sum(t * eta)) / W
            sig = w / (1.0 + np.exp(-m))  # w * d softplus(m)
            d_eta = (-s * sig + t) / W
            d_P = np.sum(sig) / W
        else:  # gaussian PL: (y - eta)^2 / 2 + P inside the weighted mean
            r = eta - y
            F = (np.sum(w * r * r / 2.0) + np.sum(t * eta)) / W + P
            d_eta = (w * r + t) / W
            d_P = 1.0
        g_beta = X.T @ d_eta
        grad = np.concatenate([[d_eta.sum()], g_beta + lam * d_P, -g_beta + lam * d_P])
        return F, grad

    return f


@pytest.mark.parametrize(("case", "family", "method"), [
    ("binomial_gfgsm", "binomial", "gfgsm"), ("gaussian_pl", "gaussian", "pl"),
])
def test_tilted_weighted_fit_equals_scipy(case, family, method):
    X, y = _data(family, n=80, seed=7)
    n, p = X.shape
    rng = np.random.default_rng(8)
    w = rng.exponential(size=n)
    t = 0.05 * rng.standard_normal(n)
    lam = 0.05
    fit = gfgsm.fit_batch(X, y, family=family, method=method, lam=lam, sample_weight=w,
                          tilt=t)
    assert fit.status[0] == "converged"
    f = _np_objective(case, X, y, w, t, lam)
    bounds = [(None, None)] + [(0.0, None)] * (2 * p)
    res = minimize(f, np.zeros(1 + 2 * p), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000})
    theta_ref = np.concatenate([[res.x[0]], res.x[1:p + 1] - res.x[p + 1:]])
    # L-BFGS-B stops at a projected gradient of ~1e-10 .. 1e-8 (its ftol test in float64); with
    # the O(0.1 .. 1) curvature of F that is a coefficient error below ~1e-7: 1e-5 is safe.
    np.testing.assert_allclose(_theta(fit)[0], theta_ref, rtol=0, atol=1e-5)
    # The reported objective is the formula evaluated by hand at the fitted coefficients
    # (split variables beta+ = max(beta, 0), beta- = max(-beta, 0)): the same closed form in a
    # different order of operations, so rounding-level agreement.
    th = _theta(fit)[0]
    z = np.concatenate([[th[0]], np.maximum(th[1:], 0.0), np.maximum(-th[1:], 0.0)])
    np.testing.assert_allclose(to_numpy(fit.objective)[0], f(z)[0], rtol=1e-12)
    # ... and gfgsm's own minimum is not above scipy's (both minimise the same F).
    assert to_numpy(fit.objective)[0] <= res.fun + 1e-12


# --------------------------------------------------------------------------------------------
# 4. the weighted, tilted partials are the derivatives of the weighted, tilted value
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "kind", "clean_weight"), [
    ("poisson", "pl", 0.0), ("binomial", "pl", 0.0),
    ("binomial", "sign", 0.3), ("poisson", "sign", 0.0),
    ("gaussian", "max", 0.0), ("poisson", "max", 0.4),
])
def test_partials_are_finite_differences_of_the_value(family, kind, clean_weight, xp):
    R, n = 2, 7
    rng = np.random.default_rng(9)
    fam = get_family(family)
    eta = 0.6 * rng.standard_normal((R, n))
    y = to_numpy(fam.sample(eta, rng=rng))
    w = rng.exponential(size=(R, n))
    w[0, 2] = 0.0  # a dropped observation
    t = 0.3 * rng.standard_normal((R, n))
    P = np.array([0.3, 0.7])
    smooth = np.array([0.2, 0.05])
    # Poisson FGSM: the signs are frozen (the solvers differentiate at fixed signs).
    signs = np.sign(y - fam.mean(eta)) if kind == "sign" else None
    obj = Objective(fam, kind, clean_weight,
                    signs=None if signs is None else xp.asarray(signs),
                    sample_weight=xp.asarray(w), tilt=xp.asarray(t))
    ya, sm = xp.asarray(y), xp.asarray(smooth)

    def F(e: np.ndarray, PP: np.ndarray) -> np.ndarray:
        return to_numpy(obj.smoothed_value(ya, xp.asarray(e), xp.asarray(PP), sm))

    def parts(e: np.ndarray, PP: np.ndarray) -> list[np.ndarray]:
        return [to_numpy(a) for a in obj.partials(ya, xp.asarray(e), xp.asarray(PP), sm)]

    pe, pP, pee, peP, pPP = parts(eta, P)
    # The value is the hand formula sum_i [w_i psi_i + t_i eta_i] / sum w, with psi_i the
    # unweighted objective's (smoothed) value of observation i alone: each observation is
    # passed as its own replication of one observation.
    plain = Objective(fam, kind, clean_weight,
                      signs=None if signs is None else xp.asarray(np.reshape(signs, (-1, 1))))
    psi = np.reshape(to_numpy(plain.smoothed_value(
        xp.asarray(np.reshape(y, (-1, 1))), xp.asarray(np.reshape(eta, (-1, 1))),
        xp.asarray(np.repeat(P, n)), xp.asarray(np.repeat(smooth, n)))), (R, n))
    hand = np.sum(w * psi + t * eta, axis=-1) / w.sum(axis=-1)
    np.testing.assert_allclose(F(eta, P), hand, rtol=1e-13)

    # Central differences with h = 1e-5: truncation O(h^2 f''') ~ 1e-10 and rounding
    # O(eps |F| / h) ~ 1e-11 relative to O(1) derivatives; 1e-7 is a wide margin.
    h, tol = 1e-5, 1e-7
    fd_P = (F(eta, P + h) - F(eta, P - h)) / (2 * h)
    np.testing.assert_allclose(fd_P, pP.mean(axis=-1), rtol=tol, atol=tol)
    pe_Pp, pP_Pp, *_ = parts(eta, P + h)
    pe_Pm, pP_Pm, *_ = parts(eta, P - h)
    np.testing.assert_allclose((pe_Pp - pe_Pm) / (2 * h), peP, rtol=tol, atol=tol)
    np.testing.assert_allclose((pP_Pp - pP_Pm) / (2 * h), pPP, rtol=tol, atol=tol)
    for i in range(n):
        e_p, e_m = eta.copy(), eta.copy()
        e_p[:, i] += h
        e_m[:, i] -= h
        # F is the mean of the terms: dF/deta_i = psi_eta_i / n.
        fd = (F(e_p, P) - F(e_m, P)) / (2 * h)
        np.testing.assert_allclose(fd, pe[:, i] / n, rtol=tol, atol=tol / n)
        fd2 = (parts(e_p, P)[0][:, i] - parts(e_m, P)[0][:, i]) / (2 * h)
        np.testing.assert_allclose(fd2, pee[:, i], rtol=tol, atol=tol)
    # The dropped observation keeps only its tilt: psi_eta = n t_i / sum w, the rest is 0.
    np.testing.assert_allclose(pe[0, 2], n * t[0, 2] / w[0].sum(), rtol=1e-14)
    assert pee[0, 2] == 0.0 and pP[0, 2] == 0.0


def test_tie_partials_scale_the_partials_not_the_constraint_rows():
    """The five partials are weighted and tilted like ``partials``; ``(rho, rho_eta, rho_P)``
    are those of the unweighted objective, so the multipliers stay in [-1, 1]."""
    rng = np.random.default_rng(10)
    fam = get_family("gaussian")
    R, n = 2, 6
    eta = rng.standard_normal((R, n))
    y = eta + rng.standard_normal((R, n))
    w, t = rng.exponential(size=(R, n)), rng.standard_normal((R, n))
    P = np.array([0.2, 0.5])
    ties = rng.random((R, n)) < 0.3
    nu = rng.uniform(-1, 1, (R, n))
    plain = Objective(fam, "max", 0.0)
    obj = Objective(fam, "max", 0.0, sample_weight=w, tilt=t)
    a = obj.tie_partials(y, eta, P, ties, nu)
    b = plain.tie_partials(y, eta, P, ties, nu)
    c = n * w / w.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(a[0], c * b[0] + n * t / w.sum(axis=-1, keepdims=True),
                               rtol=1e-14)
    for k in range(1, 5):
        np.testing.assert_allclose(a[k], c * b[k], rtol=1e-14)
    for k in range(5, 8):
        np.testing.assert_array_equal(a[k], b[k])


# --------------------------------------------------------------------------------------------
# 5. bad input
# --------------------------------------------------------------------------------------------


def _bad_inputs(n: int, R: int) -> list[tuple[str, object, str]]:
    ok = np.ones(n)
    zero_row = np.ones((R, n))
    zero_row[1] = 0.0
    return [
        ("sample_weight", np.ones(n + 1), r"sample_weight must have shape"),
        ("sample_weight", np.ones((R + 1, n)), r"sample_weight holds"),
        ("sample_weight", np.ones((R, n, 1)), r"sample_weight must have shape"),
        ("sample_weight", np.where(np.arange(n) == 3, np.nan, ok), r"sample_weight contains NaN"),
        ("sample_weight", np.where(np.arange(n) == 3, np.inf, ok), r"sample_weight contains NaN"),
        ("sample_weight", np.where(np.arange(n) == 3, -0.5, ok), r"sample_weight must be >= 0"),
        ("sample_weight", np.zeros(n), r"sample_weight sums to 0 in row\(s\) \[0\]"),
        ("sample_weight", zero_row, r"sample_weight sums to 0 in row\(s\) \[1\]"),
        ("sample_weight", ["a"] * n, r"sample_weight must be a numeric array"),
        ("tilt", np.ones(n - 1), r"tilt must have shape"),
        ("tilt", np.ones((R + 2, n)), r"tilt holds"),
        ("tilt", np.where(np.arange(n) == 0, np.inf, ok), r"tilt contains NaN"),
        ("tilt", np.where(np.arange(n) == 0, np.nan, ok), r"tilt contains NaN"),
    ]


def test_bad_weights_and_tilts_raise_and_change_nothing():
    X, y = _data("gaussian", n=30, seed=11)
    R = 2
    Y = np.stack([y, y[::-1]])
    for name, value, match in _bad_inputs(X.shape[0], R):
        before = [np.array(a, copy=True) for a in (X, Y, value)]
        with pytest.raises(ValueError, match=match):
            gfgsm.fit_batch(X, Y, family="gaussian", method="pl", lam=0.1, **{name: value})
        for a, b in zip((X, Y, value), before, strict=True):
            np.testing.assert_array_equal(np.asarray(a), b)
    # Negative tilts are fine; a successful fit leaves its inputs untouched too.
    w, t = np.linspace(0.0, 2.0, X.shape[0]), -np.linspace(0.1, 0.2, X.shape[0])
    copies = [a.copy() for a in (X, Y, w, t)]
    gfgsm.fit_batch(X, Y, family="gaussian", method="pl", lam=0.1, sample_weight=w, tilt=t)
    for a, b in zip((X, Y, w, t), copies, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------
# the separation certificate with weights and a tilt
# --------------------------------------------------------------------------------------------


def test_diverging_certificate_uses_positive_weights_and_the_tilt():
    rng = np.random.default_rng(12)
    n = 40
    x = rng.standard_normal(n)
    y = (x > 0).astype(float)
    i = int(np.argmax(x))
    y[i] = 0.0  # the largest x labelled 0 spoils the separation (in one dimension) ...
    X = x[:, None]
    w = np.ones(n)
    w[i] = 0.0  # ... unless it is dropped
    kw = dict(family="binomial", method="pl", lam=0.0, warn=False)
    assert gfgsm.fit_batch(X, y, **kw).status[0] == "converged"
    assert gfgsm.fit_batch(X, y, sample_weight=w, **kw).status[0] == "diverging"
    # A tilt that outweighs the loss along some ray makes F unbounded below: t_i = -2 pulls
    # every eta_i up while the loss grows at most like |eta| (slope 1).
    t = -2.0 * np.ones(n)
    assert gfgsm.fit_batch(X, y, tilt=t, **kw).status[0] == "diverging"
    # A small tilt keeps a minimiser.
    small = 0.01 * rng.standard_normal(n)
    assert gfgsm.fit_batch(X, y, tilt=small, **kw).status[0] == "converged"


# --------------------------------------------------------------------------------------------
# 6. array_api_strict
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "method", "penalty", "kw"), [
    ("gaussian", "gfgsm", "l1", {}),  # kinked: the crossover with weighted kinks
    ("binomial", "pl", "scad", {}),  # LLA then Newton
    ("binomial", "gfgsm", "l1", {"clean_weight": 0.3}),
    ("poisson", "gfgsm", "l1", {"adversary": "exact"}),
    ("poisson", "gfgsm", "l1", {"adversary": "fgsm"}),  # the sign fixed point
])
def test_weighted_tilted_fit_on_array_api_strict_equals_numpy(family, method, penalty, kw):
    X, y = _data(family, n=80, seed=13)
    rng = np.random.default_rng(14)
    R = 3
    w = rng.exponential(size=(R, X.shape[0]))
    w[:, :3] = 0.0
    t = 0.02 * rng.standard_normal(X.shape[0])
    ref = gfgsm.fit_batch(X, y, family=family, method=method, lam=0.05, penalty=penalty,
                          sample_weight=w, tilt=t, warn=False, **kw)
    out = gfgsm.fit_batch(xs.asarray(X), xs.asarray(y), family=family, method=method,
                          lam=0.05, penalty=penalty, sample_weight=xs.asarray(w),
                          tilt=xs.asarray(t), warn=False, **kw)
    assert namespace_name(get_namespace(out.coef)) == "array_api_strict"
    # The same operations in the same order on both namespaces: rounding-level agreement.
    np.testing.assert_allclose(_theta(out), _theta(ref), rtol=0, atol=1e-12)
    np.testing.assert_allclose(to_numpy(out.objective), to_numpy(ref.objective), rtol=1e-12)
    np.testing.assert_array_equal(out.status, ref.status)


def test_estimator_sample_weight_equals_repeated_rows_and_has_no_inference():
    """``GFGSM.fit(X, y, sample_weight=w)`` with integer weights equals the fit on repeated rows
    (both KKT-certified at 1e-9 on well-posed data: 1e-7); the debiased inference, derived for
    the unweighted likelihood, is refused with the reason."""
    from gfgsm import GFGSM

    rng = np.random.default_rng(21)
    X = rng.standard_normal((200, 3))
    y = (rng.uniform(size=200) < 1 / (1 + np.exp(-(0.5 + X @ [1.0, -0.5, 0.0])))).astype(float)
    w = rng.integers(0, 4, size=200)
    a = GFGSM(family="binomial", lam=0.05).fit(X, y, sample_weight=w)
    b = GFGSM(family="binomial", lam=0.05).fit(X.repeat(w, axis=0), y.repeat(w))
    assert a.converged_ and b.converged_
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-7)
    assert a.intercept_ == pytest.approx(b.intercept_, abs=1e-7)
    with pytest.raises(ValueError, match="sample_weight"):
        _ = a.bse_
    with pytest.raises(ValueError, match=r"(?i)negative"):
        GFGSM(family="binomial", lam=0.05).fit(X, y, sample_weight=-np.ones(200))
