"""gfgsm's fits against references nobody here wrote: statsmodels, scikit-learn, scipy, cvxpy.

Tolerances.  ``fit_batch`` stops when the sup-norm of the minimum-norm subgradient (the KKT
residual) is below ``tol = 1e-9``.  For a problem whose objective has curvature ``>= m`` around
its minimiser, a KKT residual ``r`` puts the estimate within about ``r / m`` of it; with
standardised designs and moderate coefficients ``m = O(0.1 .. 1)``, so gfgsm's estimates are
accurate to ~1e-8.  Each test states the accuracy of its reference on top of that; the
tolerance is the sum with a margin, never widened to make a test pass.

Problems are small (n <= 100, p <= 6, p <= 50 for p > n) so the whole file runs in well under a
minute on two cores.
"""

from __future__ import annotations

import itertools
import warnings

import cvxpy as cp
import numpy as np
import pytest
import scipy.optimize as so
import statsmodels.api as sm
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LogisticRegression

from gfgsm import GFGSM, PenalizedGLM, fit_batch, get_scheme
from gfgsm._backend import to_numpy

FAMILIES = ["gaussian", "binomial", "poisson"]
TOL = 1e-9  # fit_batch's default KKT tolerance
SM_FAMILY = {
    "gaussian": sm.families.Gaussian,
    "binomial": sm.families.Binomial,
    "poisson": sm.families.Poisson,
}


# --------------------------------------------------------------------------------------------
# data and helpers
# --------------------------------------------------------------------------------------------


def make_data(family: str, n: int, p: int, seed: int, scale: float = 1.0, R: int | None = None):
    """X standard normal ((n, p), or (R, n, p)), beta = scale * linspace(1, -0.5, p), a = 0.3."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p) if R is None else (R, n, p))
    eta = 0.3 + X @ (scale * np.linspace(1.0, -0.5, p))
    if family == "gaussian":
        y = eta + rng.standard_normal(eta.shape)
    elif family == "binomial":
        y = (rng.random(eta.shape) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return X, y


def theta_of(fit, r: int = 0) -> np.ndarray:
    """(intercept, coef) of replication r as a NumPy vector."""
    return np.r_[to_numpy(fit.intercept)[r], to_numpy(fit.coef)[r]]


def max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))))


def assert_close(est, ref, tol, what, fit=None):
    d = max_abs_diff(est, ref)
    extra = ""
    if fit is not None:
        extra = (f" (kkt {to_numpy(fit.kkt).tolist()}, n_iter {to_numpy(fit.n_iter).tolist()},"
                 f" status {list(fit.status)})")
    assert d <= tol, f"{what}: max |gfgsm - reference| = {d:.3g} > {tol:g}{extra}"


def np_loss(family, y, eta):
    if family == "binomial":
        return np.logaddexp(0.0, eta) - y * eta
    if family == "gaussian":
        return (y - eta) ** 2 / 2.0
    return np.exp(eta) - y * eta


CLARABEL_TIGHT = dict(tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12, max_iter=500)


# --------------------------------------------------------------------------------------------
# 1. lam = 0 is the MLE: statsmodels GLM
# --------------------------------------------------------------------------------------------


BACKENDS = ["numpy", "array_api_strict"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["gfgsm", "pl"])
@pytest.mark.parametrize("family", FAMILIES)
def test_lam0_equals_statsmodels_glm(family, method, backend):
    """At lam = 0 both objectives are the mean negative log-likelihood.

    statsmodels' IRLS with tol=1e-12 stops on a relative deviance change of 1e-12, i.e. at a
    Newton step of order 1e-6 or less (quadratic convergence makes the last step much smaller;
    observed agreement 1e-10).  Tolerance 1e-6 on every coefficient and the intercept."""
    X, y = make_data(family, 80, 4, seed=11, scale=0.5)
    ref = sm.GLM(y, sm.add_constant(X), family=SM_FAMILY[family]()).fit(tol=1e-12)
    fit = fit_batch(X, y, family=family, method=method, lam=0.0, backend=backend)
    assert_close(theta_of(fit), ref.params, 1e-6, f"{family}/{method} lam=0 vs sm.GLM", fit)


# --------------------------------------------------------------------------------------------
# 2. l1 penalized likelihood: sklearn Lasso, sklearn LogisticRegression, statsmodels / cvxpy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lam", [0.01, 0.1, 0.5])
def test_pl_l1_gaussian_equals_sklearn_lasso(lam, backend):
    """sklearn's Lasso minimises (1/2n)||y - Xw - b||^2 + alpha ||w||_1 (intercept by centring,
    unpenalized); coordinate descent with tol=1e-12 stops on a duality gap of 1e-12 * ||y||^2/n,
    far below 1e-5.  Tolerance 1e-5 (observed ~1e-10)."""
    X, y = make_data("gaussian", 80, 6, seed=21)
    ref = Lasso(alpha=lam, tol=1e-12, max_iter=100_000).fit(X, y)
    fit = fit_batch(X, y, family="gaussian", method="pl", lam=lam, backend=backend)
    assert_close(theta_of(fit), np.r_[ref.intercept_, ref.coef_], 1e-5, f"lasso lam={lam}", fit)


def _sklearn_l1_logistic(X, y, lam):
    """sklearn's l1 logistic regression at C = 1 / (n lam) with an UNPENALIZED intercept.

    sklearn minimises C sum_i l(y_i, eta_i) + ||w||_1; dividing by C n gives
    mean_i l + lam ||w||_1 with C = 1 / (n lam).  The solver is "saga": liblinear appends a
    constant feature and penalizes its weight (the intercept) like every other weight, saga
    (like lbfgs/newton-cg) fits the intercept outside the penalty.  Centring X does not help
    here: unlike least squares, the logistic intercept does not decouple from the slopes.
    The test checks that the intercept is unpenalized by its own KKT condition
    mean(mu - y) = 0.  sklearn >= 1.8 deprecates penalty= in favour of l1_ratio=1.0.
    """
    n = X.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a non-converged reference is no use
        ref = LogisticRegression(
            C=1.0 / (n * lam), l1_ratio=1.0, solver="saga", tol=1e-14, max_iter=1_000_000
        ).fit(X, y)
    a, b = float(ref.intercept_[0]), ref.coef_[0]
    mu = 1.0 / (1.0 + np.exp(-(a + X @ b)))
    assert abs(np.mean(mu - y)) < 1e-9, "reference intercept is not at its unpenalized optimum"
    return a, b


@pytest.mark.parametrize("lam", [0.01, 0.03, 0.1])
def test_pl_l1_binomial_equals_sklearn_logistic(lam):
    """saga with tol=1e-14 (stopping on the max change of the weights) is accurate to ~1e-10
    here (observed agreement ~1e-11).  Tolerance 1e-5."""
    X, y = make_data("binomial", 80, 4, seed=31)
    a, b = _sklearn_l1_logistic(X, y, lam)
    fit = fit_batch(X, y, family="binomial", method="pl", lam=lam)
    assert_close(theta_of(fit), np.r_[a, b], 1e-5, f"l1 logistic lam={lam}", fit)


def _cvxpy_pl_poisson(X, y, lam):
    n, p = X.shape
    a, b = cp.Variable(), cp.Variable(p)
    eta = a + X @ b
    prob = cp.Problem(cp.Minimize(cp.sum(cp.exp(eta) - cp.multiply(y, eta)) / n
                                  + lam * cp.norm1(b)))
    prob.solve(solver="CLARABEL", **CLARABEL_TIGHT)
    assert prob.status in ("optimal", "optimal_inaccurate"), prob.status
    return np.r_[a.value, b.value]


@pytest.mark.parametrize("lam", [0.01, 0.05, 0.2])
def test_pl_l1_poisson_equals_statsmodels_and_cvxpy(lam):
    """statsmodels' fit_regularized minimises -loglike/n + alpha_j |theta_j| (the MEAN
    log-likelihood, so alpha = lam), with alpha_0 = 0 on the constant: an unpenalized intercept.
    Its coordinate descent with cnvrg_tol=1e-14 is exact to rounding here (observed 1e-15).
    cvxpy/CLARABEL on the same convex program (exponential cone, interior point) is accurate
    to ~1e-8 (observed ~1e-11).  Tolerance 1e-5 on every coefficient."""
    X, y = make_data("poisson", 80, 4, seed=41, scale=0.5)
    p = X.shape[1]
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson()).fit_regularized(
        alpha=np.r_[0.0, np.full(p, lam)], L1_wt=1.0, cnvrg_tol=1e-14, maxiter=10_000
    )
    fit = fit_batch(X, y, family="poisson", method="pl", lam=lam)
    assert_close(theta_of(fit), ref.params, 1e-5, f"poisson l1 vs statsmodels lam={lam}", fit)
    assert_close(theta_of(fit), _cvxpy_pl_poisson(X, y, lam), 1e-5,
                 f"poisson l1 vs cvxpy lam={lam}", fit)


# --------------------------------------------------------------------------------------------
# 3. l1 G-FGSM: Goodfellow's closed forms with scipy and cvxpy
# --------------------------------------------------------------------------------------------


def _lbfgsb_gfgsm_binomial(X, y, lam):
    """min mean softplus(-(2y-1) eta + lam 1'(b+ + b-)), eta = a + X (b+ - b-), b+- >= 0.

    At a minimiser min(b+_j, b-_j) = 0 (raising both raises the loss), so this is the l1
    G-FGSM problem; it is smooth in the split variables.  Analytic gradient."""
    n, p = X.shape
    s = 2.0 * y - 1.0

    def f(z):
        a, bp, bm = z[0], z[1:p + 1], z[p + 1:]
        u = -s * (a + X @ (bp - bm)) + lam * np.sum(bp + bm)
        g = 1.0 / (1.0 + np.exp(-u))  # d softplus(u) / du
        gx = (g * -s) @ X / n
        return np.mean(np.logaddexp(0.0, u)), np.r_[np.mean(-s * g), gx + lam * g.mean(),
                                                    -gx + lam * g.mean()]

    res = so.minimize(f, np.zeros(2 * p + 1), jac=True, method="L-BFGS-B",
                      bounds=[(None, None)] + [(0.0, None)] * (2 * p),
                      options=dict(ftol=1e-15, gtol=1e-14, maxiter=100_000, maxcor=50))
    assert res.success, res.message
    return np.r_[res.x[0], res.x[1:p + 1] - res.x[p + 1:]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lam", [0.02, 0.1, 0.3])
def test_gfgsm_l1_binomial_equals_lbfgsb_on_goodfellow(seed, lam, backend):
    """L-BFGS-B stops when the relative objective reduction falls below ftol = 1e-15; with an
    objective of O(0.5) and curvature O(0.1) that leaves ~1e-7 at most in the coefficients
    (observed 4e-8 at worst).  Tolerance 1e-6."""
    X, y = make_data("binomial", 60, 4, seed=seed)
    ref = _lbfgsb_gfgsm_binomial(X, y, lam)
    fit = fit_batch(X, y, family="binomial", method="gfgsm", lam=lam, backend=backend)
    assert_close(theta_of(fit), ref, 1e-6, f"binomial G-FGSM lam={lam} seed={seed}", fit)


def _slsqp_gfgsm_gaussian(X, y, lam):
    """Epigraph form: min mean (t_i + lam 1'(b+ + b-))^2 / 2 s.t. t_i >= |y_i - eta_i|, b+- >= 0.

    (|y - eta| is not smooth; the epigraph variables t_i make every function smooth.)"""
    n, p = X.shape

    def unpack(z):
        return z[0], z[1:p + 1], z[p + 1:2 * p + 1], z[2 * p + 1:]

    def f(z):
        _, bp, bm, t = unpack(z)
        u = t + lam * np.sum(bp + bm)
        g = np.zeros_like(z)
        g[2 * p + 1:] = u / n
        g[1:2 * p + 1] = lam * np.mean(u)
        return np.mean(u**2) / 2.0, g

    def cons(z):
        a, bp, bm, t = unpack(z)
        r = y - a - X @ (bp - bm)
        return np.r_[t - r, t + r]

    J = np.zeros((n, 2 * p + 1 + n))
    J[:, 0], J[:, 1:p + 1], J[:, p + 1:2 * p + 1] = 1.0, X, -X
    J1 = J.copy()
    J1[:, 2 * p + 1:] = np.eye(n)
    J2 = -J
    J2[:, 2 * p + 1:] = np.eye(n)
    jac = np.r_[J1, J2]
    a0 = float(np.mean(y))
    z0 = np.r_[a0, np.zeros(2 * p), np.abs(y - a0) + 1e-3]
    res = so.minimize(f, z0, jac=True, method="SLSQP",
                      constraints=[dict(type="ineq", fun=cons, jac=lambda z: jac)],
                      bounds=[(None, None)] + [(0.0, None)] * (2 * p + n),
                      options=dict(ftol=1e-15, maxiter=10_000))
    # status 8 ("positive directional derivative for linesearch") is SLSQP's usual exit once
    # the objective is resolved to machine precision; the cvxpy cross-check below vets it.
    assert res.status in (0, 8), res.message
    a, bp, bm, _ = unpack(res.x)
    return np.r_[a, bp - bm]


def _cvxpy_gfgsm_gaussian(X, y, lam):
    """min (1/2n) sum t_i^2 s.t. t_i >= |y_i - eta_i| + lam ||b||_1 (DCP epigraph of
    (|y - eta| + lam ||b||_1)^2 / 2; the square of a convex non-negative function is not DCP)."""
    n, p = X.shape
    a, b, t = cp.Variable(), cp.Variable(p), cp.Variable(n)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(t) / (2 * n)),
                      [t >= cp.abs(y - a - X @ b) + lam * cp.norm1(b)])
    prob.solve(solver="CLARABEL", **CLARABEL_TIGHT)
    assert prob.status == "optimal", prob.status
    return np.r_[a.value, b.value]


@pytest.mark.parametrize("lam", [0.05, 0.3])
def test_gfgsm_l1_gaussian_equals_slsqp_and_cvxpy(lam):
    """Both references solve the exact (non-smooth) problem; SLSQP with ftol=1e-15 and CLARABEL
    (a second-order-cone interior point) with gaps of 1e-12 are accurate to ~1e-9.  gfgsm solves
    a smoothed problem down to smoothing level 1e-7, which moves the residuals that sit at the
    kink (LAD-like interpolated points) by ~1e-7 at most (observed 4e-8).  Tolerance 1e-6."""
    X, y = make_data("gaussian", 40, 4, seed=2)
    ref_slsqp = _slsqp_gfgsm_gaussian(X, y, lam)
    ref_cvx = _cvxpy_gfgsm_gaussian(X, y, lam)
    assert max_abs_diff(ref_slsqp, ref_cvx) <= 1e-7, "the two references disagree"
    fit = fit_batch(X, y, family="gaussian", method="gfgsm", lam=lam)
    assert_close(theta_of(fit), ref_slsqp, 1e-6, f"gaussian G-FGSM vs SLSQP lam={lam}", fit)
    assert_close(theta_of(fit), ref_cvx, 1e-6, f"gaussian G-FGSM vs cvxpy lam={lam}", fit)


def _brute_force_exact_poisson(X, y, theta, lam):
    """mean_i max over the corners delta in {-lam, lam}^p of l(y_i, a + (x_i + delta)' b)."""
    C = lam * np.array(list(itertools.product([-1.0, 1.0], repeat=X.shape[1])))
    eta = theta[0] + (X[None, :, :] + C[:, None, :]) @ theta[1:]
    return float(np.mean(np.max(np_loss("poisson", y, eta), axis=0)))


def _cvxpy_exact_poisson_corners(X, y, lam):
    """The 2^p-corner formulation: min mean_i max_k [exp(eta_ik) - y_i eta_ik], eta_ik affine."""
    n, p = X.shape
    a, b = cp.Variable(), cp.Variable(p)
    terms = []
    for c in itertools.product([-1.0, 1.0], repeat=p):
        e = a + (X + lam * np.array(c)) @ b
        terms.append(cp.exp(e) - cp.multiply(y, e))
    prob = cp.Problem(cp.Minimize(cp.sum(cp.maximum(*terms)) / n))
    with warnings.catch_warnings():
        # "Solution may be inaccurate": expected on exponential cones, hence the polish below
        warnings.simplefilter("ignore", UserWarning)
        prob.solve(solver="CLARABEL")
    assert prob.status in ("optimal", "optimal_inaccurate"), prob.status
    return np.r_[a.value, b.value]


def _slsqp_polish_exact_poisson(X, y, lam, theta0):
    """Refine a solution of the exact poisson problem with SLSQP on the smooth epigraph form
    min mean t_i s.t. t_i >= l(y_i, eta_i - P), t_i >= l(y_i, eta_i + P), P = lam 1'(b+ + b-).

    Interior-point solvers on exponential cones stop at ~1e-6 .. 1e-4 in the coefficients
    (CLARABEL reports "optimal_inaccurate" for tighter gaps), too coarse for a 1e-6 test; SLSQP's
    active-set Newton steps from that start reach ~1e-9."""
    n, p = X.shape

    def unpack(z):
        return z[0], z[1:p + 1], z[p + 1:2 * p + 1], z[2 * p + 1:]

    def f(z):
        g = np.zeros_like(z)
        g[2 * p + 1:] = 1.0 / n
        return np.mean(z[2 * p + 1:]), g

    def pieces(z):
        a, bp, bm, t = unpack(z)
        eta, P = a + X @ (bp - bm), lam * np.sum(bp + bm)
        return t, [(sg, eta + sg * P) for sg in (-1.0, 1.0)]

    def cons(z):
        t, pc = pieces(z)
        return np.concatenate([t - np_loss("poisson", y, e) for _, e in pc])

    def cjac(z):
        _, pc = pieces(z)
        blocks = []
        for sg, e in pc:
            d = np.exp(e) - y
            B = np.zeros((n, z.size))
            B[:, 0] = -d
            B[:, 1:p + 1] = -d[:, None] * (X + sg * lam)
            B[:, p + 1:2 * p + 1] = -d[:, None] * (-X + sg * lam)
            B[:, 2 * p + 1:] = np.eye(n)
            blocks.append(B)
        return np.concatenate(blocks)

    a0, b0 = theta0[0], theta0[1:]
    eta0, P0 = a0 + X @ b0, lam * np.sum(np.abs(b0))
    t0 = np.maximum(np_loss("poisson", y, eta0 - P0), np_loss("poisson", y, eta0 + P0))
    z0 = np.r_[a0, np.maximum(b0, 0), np.maximum(-b0, 0), t0]
    res = so.minimize(f, z0, jac=True, method="SLSQP",
                      constraints=[dict(type="ineq", fun=cons, jac=cjac)],
                      bounds=[(None, None)] + [(0.0, None)] * (2 * p) + [(None, None)] * n,
                      options=dict(ftol=1e-16, maxiter=1000))
    a, bp, bm, _ = unpack(res.x)
    theta = np.r_[a, bp - bm]
    # SLSQP ends with "positive directional derivative" at machine accuracy; accept its answer
    # only if it is no worse than its start on the true objective.
    assert (_brute_force_exact_poisson(X, y, theta, lam)
            <= _brute_force_exact_poisson(X, y, theta0, lam) + 1e-12)
    return theta


@pytest.mark.parametrize("p", [2, 3, 4])
@pytest.mark.parametrize("lam", [0.05, 0.3])
def test_gfgsm_exact_poisson_equals_cvxpy_corners(p, lam):
    """Exact worst case (adversary="exact") against cvxpy's convex 2^p-corner program.

    (a) gfgsm's objective is not above the global convex solver's by more than that solver's
    accuracy (1e-8); (b) the coefficients equal the corner solution polished by SLSQP to 1e-6
    (gfgsm's smoothing stops at 1e-7, see the gaussian test; observed 7e-8)."""
    X, y = make_data("poisson", 40, p, seed=p, scale=0.5)
    fit = fit_batch(X, y, family="poisson", method="gfgsm", lam=lam, adversary="exact",
                    warn=False)
    th = theta_of(fit)
    corner = _cvxpy_exact_poisson_corners(X, y, lam)
    F_fit = _brute_force_exact_poisson(X, y, th, lam)
    F_cvx = _brute_force_exact_poisson(X, y, corner, lam)
    assert F_fit <= F_cvx + 1e-8, f"gfgsm objective {F_fit!r} above cvxpy's {F_cvx!r}"
    np.testing.assert_allclose(float(to_numpy(fit.objective)[0]), F_fit, rtol=1e-12)
    ref = _slsqp_polish_exact_poisson(X, y, lam, corner)
    assert_close(th, ref, 1e-6, f"poisson exact G-FGSM p={p} lam={lam}", fit)


# --------------------------------------------------------------------------------------------
# 4. batched fits equal one-at-a-time fits
# --------------------------------------------------------------------------------------------

BATCH_CASES = [
    ("gaussian", "gfgsm", "fgsm"),
    ("gaussian", "pl", "fgsm"),
    ("binomial", "gfgsm", "fgsm"),
    ("binomial", "pl", "fgsm"),
    ("poisson", "gfgsm", "fgsm"),
    ("poisson", "gfgsm", "exact"),
    ("poisson", "pl", "fgsm"),
]


@pytest.mark.parametrize("shared_X", [False, True], ids=["X_per_problem", "X_shared"])
@pytest.mark.parametrize(("family", "method", "adversary"), BATCH_CASES)
def test_batch_equals_one_at_a_time(family, method, adversary, shared_X):
    """Every replication runs its own iteration, so R = 25 problems fitted together equal the 25
    separate fits up to the rounding of batched matrix products (observed <= 4e-16, bitwise
    in most cases).  Tolerance 1e-8 (the solutions' own accuracy), also for replications that
    do not converge (poisson FGSM): their status and iterates must match too."""
    R, n, p = 25, 50, 4
    X, y = make_data(family, n, p, seed=61, scale=0.5, R=None if shared_X else R)
    if shared_X:
        rng = np.random.default_rng(62)
        eta = 0.3 + X @ (0.5 * np.linspace(1.0, -0.5, p))
        eta = np.broadcast_to(eta, (R, n))
        if family == "gaussian":
            y = eta + rng.standard_normal((R, n))
        elif family == "binomial":
            y = (rng.random((R, n)) < 1 / (1 + np.exp(-eta))).astype(float)
        else:
            y = rng.poisson(np.exp(eta)).astype(float)
    lam = np.linspace(0.0, 0.3, R)
    kw = dict(family=family, method=method, adversary=adversary, warn=False)
    batch = fit_batch(X, y, lam=lam, **kw)
    assert to_numpy(batch.coef).shape == (R, p)
    for r in range(R):
        one = fit_batch(X if shared_X else X[r], y[r], lam=lam[r], **kw)
        assert_close(theta_of(one), theta_of(batch, r), 1e-8,
                     f"replication {r} (lam={lam[r]:.3f})", one)
        assert one.status[0] == batch.status[r]
        assert bool(to_numpy(one.converged)[0]) == bool(to_numpy(batch.converged)[r])


# --------------------------------------------------------------------------------------------
# 5. the reported KKT residual and convergence on well-posed problems
# --------------------------------------------------------------------------------------------

WELL_POSED = [
    ("gaussian", "pl", "fgsm"),
    ("gaussian", "gfgsm", "fgsm"),
    ("binomial", "pl", "fgsm"),
    ("binomial", "gfgsm", "fgsm"),
    ("poisson", "pl", "fgsm"),
    ("poisson", "gfgsm", "exact"),  # convex; the FGSM version jumps and is tested below
]


@pytest.mark.parametrize("np_", [(40, 3), (60, 4), (100, 5)], ids=["n40p3", "n60p4", "n100p5"])
@pytest.mark.parametrize(("family", "method", "adversary"), WELL_POSED)
def test_kkt_below_tol_and_converged(family, method, adversary, np_):
    """Well-posed problems (strictly convex objectives with n > p and no separation, a grid of
    lam from 0 to 0.2, three replications each): every fit converges and reports kkt <= 1e-9."""
    n, p = np_
    X, y = make_data(family, n, p, seed=5, R=12)
    lam = np.tile([0.0, 0.01, 0.05, 0.2], 3)
    fit = fit_batch(X, y, family=family, method=method, lam=lam, adversary=adversary,
                    warn=False)
    kkt, conv = to_numpy(fit.kkt), to_numpy(fit.converged)
    assert np.all(kkt[conv] <= TOL)
    bad = np.flatnonzero(~conv | (kkt > TOL))
    details = [(float(lam[i]), fit.status[i], f"kkt={kkt[i]:.2e}",
                f"n_iter={int(to_numpy(fit.n_iter)[i])}") for i in bad]
    assert bad.size == 0, f"{bad.size} of 12 fits not converged: {details}"
    assert all(s == "converged" for s in fit.status)


@pytest.mark.parametrize(
    ("family", "adversary", "lam"), [("gaussian", "fgsm", 0.2), ("poisson", "exact", 0.05)]
)
def test_exhausted_iteration_budget_is_labelled_max_iter(family, adversary, lam):
    """A fit cut off by max_iter while it was still making progress (the same fit with a larger
    budget goes on iterating and converges) must say "max_iter", not "stalled" ("the line
    search found no decrease").  Objectives with kinks spend loop passes on lowering the
    smoothing level, which is where the two labels can get mixed up."""
    X, y = make_data(family, 60, 4, seed=5)
    kw = dict(family=family, method="gfgsm", lam=lam, adversary=adversary, warn=False)
    full = fit_batch(X, y, max_iter=200, **kw)
    assert full.status[0] == "converged"
    for budget in (4, 8, 12):
        cut = fit_batch(X, y, max_iter=budget, **kw)
        if cut.status[0] == "converged":
            continue
        assert int(to_numpy(full.n_iter)[0]) > int(to_numpy(cut.n_iter)[0])
        assert cut.status[0] == "max_iter", (
            f"max_iter={budget}: status {cut.status[0]!r}, n_iter "
            f"{int(to_numpy(cut.n_iter)[0])}, kkt {float(to_numpy(cut.kkt)[0]):.3g}"
        )


def test_poisson_fgsm_is_never_silent():
    """Poisson FGSM jumps where y_i = mu_i, so a minimiser may not exist.  Whatever happens, a
    fit reported converged has kkt <= tol, and every other fit says why and warns."""
    X, y = make_data("poisson", 60, 4, seed=5, R=12)
    lam = np.tile([0.0, 0.01, 0.05, 0.2], 3)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fit = fit_batch(X, y, family="poisson", method="gfgsm", lam=lam)
    conv = to_numpy(fit.converged)
    assert np.all(to_numpy(fit.kkt)[conv] <= TOL)
    assert all((s == "converged") == c for s, c in zip(fit.status, conv, strict=True))
    if not conv.all():
        assert any(issubclass(w.category, ConvergenceWarning) for w in rec)


# --------------------------------------------------------------------------------------------
# 6. non-convex penalties (PL gaussian): local optimality against scipy
# --------------------------------------------------------------------------------------------


def _pen(name, t, lam):
    if name == "scad":
        a = 3.7
        return np.where(t <= lam, lam * t,
                        np.where(t <= a * lam, (2 * a * lam * t - t**2 - lam**2) / (2 * (a - 1)),
                                 (a + 1) * lam**2 / 2))
    if name == "mcp":
        g = 3.0
        return np.where(t <= g * lam, lam * t - t**2 / (2 * g), g * lam**2 / 2)
    return lam * np.sqrt(t)  # lr, r = 0.5


def _dpen(name, t, lam):
    """p'_lam(t) for t > 0, and p'_lam(0+) at t = 0 (inf for lr with r < 1)."""
    if name == "scad":
        return np.where(t <= lam, lam, np.maximum(3.7 * lam - t, 0.0) / 2.7)
    if name == "mcp":
        return np.maximum(lam - t / 3.0, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(t > 0, 0.5 * lam / np.sqrt(np.where(t > 0, t, 1.0)), np.inf)


def _pl_obj(X, y, th, name, lam):
    r = y - th[0] - X @ th[1:]
    return r @ r / (2 * len(y)) + np.sum(_pen(name, np.abs(th[1:]), lam))


def _local_refs(X, y, name, lam, starts):
    """Best objective reached by scipy from each start: L-BFGS-B on split variables
    (b = b+ - b-, penalty p(b+ + b-), smooth for t > 0 with finite p'(0+)) for SCAD/MCP,
    Powell and Nelder-Mead (derivative-free) for all, with tight tolerances."""
    p = X.shape[1]
    best = np.inf
    for th0 in starts:
        fun = lambda z: _pl_obj(X, y, z, name, lam)  # noqa: E731
        for meth, opts in [("Powell", dict(xtol=1e-12, ftol=1e-15, maxfev=100_000)),
                           ("Nelder-Mead", dict(xatol=1e-12, fatol=1e-15, maxfev=100_000,
                                                adaptive=True))]:
            best = min(best, so.minimize(fun, th0, method=meth, options=opts).fun)
        if name != "lr":
            def split(z):
                th = np.r_[z[0], z[1:p + 1] - z[p + 1:]]
                t = z[1:p + 1] + z[p + 1:]
                r = y - th[0] - X @ th[1:]
                g = -X.T @ r / len(y)
                dp = _dpen(name, t, lam)
                return (r @ r / (2 * len(y)) + np.sum(_pen(name, t, lam)),
                        np.r_[-np.mean(r), g + dp, -g + dp])
            z0 = np.r_[th0[0], np.maximum(th0[1:], 0), np.maximum(-th0[1:], 0)]
            res = so.minimize(split, z0, jac=True, method="L-BFGS-B",
                              bounds=[(None, None)] + [(0, None)] * (2 * p),
                              options=dict(ftol=1e-15, gtol=1e-12, maxiter=10_000))
            best = min(best, res.fun)
    return best


@pytest.mark.parametrize("lam", [0.05, 0.2, 0.5])
@pytest.mark.parametrize(("penalty", "params"),
                         [("scad", {}), ("mcp", {}), ("lr", {"r": 0.5})])
def test_nonconvex_pl_gaussian_is_locally_optimal(penalty, params, lam):
    """No scipy local search started from gfgsm's answer or from the lasso answer finds a lower
    objective (by more than 1e-9, the objective's resolution at a KKT residual of 1e-9), and
    gfgsm's answer satisfies the first-order conditions: d loss/d b_j + p'(|b_j|) sign(b_j) = 0
    (to 1e-6) on nonzero slopes, |d loss / d b_j| <= p'(0+) on zero slopes, and a zero
    intercept gradient."""
    X, y = make_data("gaussian", 60, 5, seed=0)
    fit = fit_batch(X, y, family="gaussian", method="pl", lam=lam, penalty=penalty, **params)
    th = theta_of(fit)
    lasso = theta_of(fit_batch(X, y, family="gaussian", method="pl", lam=lam))
    F = _pl_obj(X, y, th, penalty, lam)
    np.testing.assert_allclose(float(to_numpy(fit.objective)[0]), F, rtol=1e-12)
    best = _local_refs(X, y, penalty, lam, [th, lasso])
    assert F <= best + 1e-9, f"scipy found {best!r} < gfgsm's {F!r}"

    b = th[1:]
    r = y - th[0] - X @ b
    g = -X.T @ r / len(y)
    assert abs(np.mean(r)) <= 1e-6
    nz = b != 0
    foc = np.abs(g[nz] + _dpen(penalty, np.abs(b[nz]), lam) * np.sign(b[nz]))
    assert np.all(foc <= 1e-6), f"stationarity on nonzero slopes: {foc}"
    assert np.all(np.abs(g[~nz]) <= _dpen(penalty, np.zeros((~nz).sum()), lam) + 1e-9)


# --------------------------------------------------------------------------------------------
# 7. adaptive lasso = lasso on a rescaled design
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "method", "adversary"),
    [("gaussian", "pl", "fgsm"), ("gaussian", "gfgsm", "fgsm"), ("binomial", "pl", "fgsm"),
     ("binomial", "gfgsm", "fgsm"), ("poisson", "pl", "fgsm"), ("poisson", "gfgsm", "exact")],
)
def test_adaptive_l1_equals_l1_on_rescaled_design(family, method, adversary):
    """lam sum_j w_j |b_j| with x_j b_j equals lam ||g||_1 with (x_j / w_j) g_j, g_j = w_j b_j:
    both objectives (PL and G-FGSM, whose shift is the same P) are the same function, so the
    minimisers map onto each other.  Two solves to ~1e-9 each: tolerance 1e-7."""
    X, y = make_data(family, 60, 4, seed=71, scale=0.5)
    w = np.array([0.5, 2.0, 1.0, 3.0])
    w_copy = w.copy()
    lam = 0.05
    kw = dict(family=family, method=method, adversary=adversary)
    ada = fit_batch(X, y, lam=lam, penalty="adaptive_l1", weights=w, **kw)
    l1 = fit_batch(X / w, y, lam=lam, **kw)
    np.testing.assert_array_equal(w, w_copy)
    ref = np.r_[to_numpy(l1.intercept)[0], to_numpy(l1.coef)[0] / w]
    assert_close(theta_of(ada), ref, 1e-7, f"adaptive vs rescaled {family}/{method}", ada)


# --------------------------------------------------------------------------------------------
# 8. bad input: a ValueError naming the problem, inputs untouched
# --------------------------------------------------------------------------------------------


def _base():
    rng = np.random.default_rng(81)
    X = rng.standard_normal((30, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + rng.standard_normal(30)
    return X, y


def _with(arr, idx, value):
    out = arr.copy()
    out[idx] = value
    return out


X0, Y0 = _base()
YB = (Y0 > 0).astype(float)
YP = np.round(np.abs(Y0))

BAD_INPUTS = {
    "X_nan": (dict(X=_with(X0, (0, 0), np.nan)), "X contains NaN"),
    "X_inf": (dict(X=_with(X0, (3, 1), np.inf)), "X contains NaN or inf"),
    "y_nan": (dict(y=_with(Y0, 0, np.nan)), "y contains NaN"),
    "y_inf": (dict(y=_with(Y0, 5, -np.inf)), "y contains NaN or inf"),
    "y_short": (dict(y=Y0[:-1]), "30 rows but y has 29"),
    "X_1d": (dict(X=X0[:, 0]), "X must have shape"),
    "R_mismatch": (dict(X=np.stack([X0, X0]), y=np.stack([Y0, Y0, Y0])), "X holds 2 problems"),
    "n_zero": (dict(X=X0[:0], y=Y0[:0]), "n = 0"),
    "binomial_y2": (dict(family="binomial", y=_with(YB, 0, 2.0)), "binomial y must be 0 or 1"),
    "binomial_y_half": (dict(family="binomial", y=_with(YB, 0, 0.5)), "binomial y must be 0 or 1"),
    "poisson_y_neg": (dict(family="poisson", y=_with(YP, 0, -1.0)), "non-negative"),
    "poisson_y_frac": (dict(family="poisson", y=_with(YP, 0, 1.5)), "integer counts"),
    "lam_neg": (dict(lam=-0.1), "lam must be >= 0"),
    "lam_nan": (dict(lam=np.nan), "lam must be finite"),
    "lam_shape": (dict(lam=np.array([0.1, 0.2])), r"lam must be a scalar or have shape \(1,\)"),
    "lam_2d": (dict(lam=np.array([[0.1]])), "lam must be a scalar or have shape"),
    "family": (dict(family="gamma"), "unknown family 'gamma'"),
    "method": (dict(method="mle"), "unknown method 'mle'"),
    "penalty": (dict(penalty="elastic"), "unknown penalty 'elastic'"),
    "scheme": (dict(method="gfgsm", scheme="bogus"), "unknown scheme 'bogus'"),
    "adversary": (dict(method="gfgsm", adversary="bogus"), "unknown adversary 'bogus'"),
    "adversary_pl": (dict(method="pl", adversary="bogus"), "unknown adversary 'bogus'"),
    "clean_weight_high": (dict(method="gfgsm", clean_weight=1.5), "clean_weight must lie in"),
    "clean_weight_neg": (dict(method="gfgsm", clean_weight=-0.1), "clean_weight must lie in"),
    "clean_weight_pl": (dict(method="pl", clean_weight=1.5), "clean_weight must lie in"),
    "lr_r3": (dict(penalty="lr", r=3), "r must satisfy 0 < r <= 2, got 3"),
    "scad_a2": (dict(penalty="scad", a=2.0), "a must satisfy 2 < a"),
    "quantized_b0": (dict(method="gfgsm", scheme="quantized", b=0), "b must be a positive"),
    "weights_neg": (dict(penalty="weighted_l1", weights=np.array([1.0, -1.0, 1.0])),
                    "weights must be >= 0"),
    "weights_shape": (dict(penalty="weighted_l1", weights=np.array([1.0, 1.0])),
                      "weights must have shape"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_and_changes_nothing(case):
    kw, match = BAD_INPUTS[case]
    args = dict(X=X0, y=Y0, family="gaussian", method="pl", lam=0.1)
    args.update(kw)
    copies = {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(ValueError, match=match):
        fit_batch(X, y, **args)
    for k, v in copies.items():
        current = {"X": X, "y": y}.get(k, args.get(k))
        np.testing.assert_array_equal(current, v, err_msg=f"{k} was modified")


def test_bad_scheme_parameter_via_get_scheme():
    with pytest.raises(ValueError, match="b must be a positive integer, got 0"):
        get_scheme("quantized", b=0)


@pytest.mark.parametrize(
    ("est", "y", "match"),
    [
        (GFGSM(family="binomial", lam=-1.0), YB, "lam must be"),
        (GFGSM(family="binomial", lam=0.1), np.arange(30) % 3, "binary"),
        (GFGSM(family="binomial", lam=0.1), np.ones(30), "single class"),
        (PenalizedGLM(family="poisson", lam=0.1), _with(YP, 0, -1.0), "non-negative"),
        (PenalizedGLM(family="gaussian", lam=0.1, penalty="lr"), Y0, "needs parameter"),
    ],
)
def test_estimators_reject_bad_input(est, y, match):
    X, yc = X0.copy(), np.array(y, dtype=float).copy()
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(np.asarray(y, dtype=float), yc)


# --------------------------------------------------------------------------------------------
# 9. separation and p > n
# --------------------------------------------------------------------------------------------


def _adversarially_separable(X, y, lam) -> bool:
    """LP certificate (scipy/HiGHS): is there (a, b) with (2y_i - 1)(a + x_i'b) >= 1 + lam||b||_1?

    If so, scaling (a, b) by t -> inf drives every softplus(-(2y-1) eta + lam ||b||_1) to 0:
    the G-FGSM infimum (the MLE's, at lam = 0) is 0 and not attained, no finite minimiser."""
    n, p = X.shape
    s = 2.0 * y - 1.0
    A = np.c_[-s, -s[:, None] * X + lam, s[:, None] * X + lam]
    res = so.linprog(np.zeros(2 * p + 1), A_ub=A, b_ub=-np.ones(n),
                     bounds=[(None, None)] + [(0, None)] * (2 * p), method="highs")
    assert res.status in (0, 2), res.message
    return res.status == 0


def _separable_data():
    rng = np.random.default_rng(91)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(float)
    return X, y


@pytest.mark.parametrize("lam", [0.01, 0.1])
def test_separable_pl_l1_converges_to_finite_solution(lam):
    """With lam > 0 the l1 PL objective is coercive: a finite minimiser exists even on
    separable data; gfgsm finds it (checked against sklearn's saga, tolerance 1e-5)."""
    X, y = _separable_data()
    assert _adversarially_separable(X, y, 0.0)
    fit = fit_batch(X, y, family="binomial", method="pl", lam=lam)
    assert bool(to_numpy(fit.converged)[0]) and fit.status[0] == "converged"
    assert float(to_numpy(fit.kkt)[0]) <= TOL
    a, b = _sklearn_l1_logistic(X, y, lam)
    assert_close(theta_of(fit), np.r_[a, b], 1e-5, f"separable l1 logistic lam={lam}", fit)


@pytest.mark.parametrize(("method", "lam"), [("pl", 0.0), ("gfgsm", 0.0), ("gfgsm", 0.01)])
def test_separable_without_minimiser_is_reported_diverging(method, lam):
    """No finite minimiser (LP certificate): the user must get converged=False,
    status "diverging" and a ConvergenceWarning, never a silent finite "estimate"."""
    X, y = _separable_data()
    assert _adversarially_separable(X, y, lam)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fit = fit_batch(X, y, family="binomial", method=method, lam=lam)
    assert not bool(to_numpy(fit.converged)[0]), (
        f"reported converged: coef {to_numpy(fit.coef)[0]}, objective "
        f"{float(to_numpy(fit.objective)[0]):.3g}, kkt {float(to_numpy(fit.kkt)[0]):.3g}, "
        f"n_iter {int(to_numpy(fit.n_iter)[0])}"
    )
    assert fit.status[0] == "diverging"
    assert any(issubclass(w.category, ConvergenceWarning) and "diverging" in str(w.message)
               for w in rec)


def test_separable_gfgsm_with_minimiser_converges():
    """At a budget larger than the data's l_inf margin (LP infeasible) G-FGSM has a finite
    minimiser even on separable data, and it is found."""
    X, y = _separable_data()
    lam = 0.5
    assert not _adversarially_separable(X, y, lam)
    fit = fit_batch(X, y, family="binomial", method="gfgsm", lam=lam)
    assert bool(to_numpy(fit.converged)[0]) and float(to_numpy(fit.kkt)[0]) <= TOL
    ref = _lbfgsb_gfgsm_binomial(X, y, lam)
    assert_close(theta_of(fit), ref, 1e-6, "separable G-FGSM lam=0.5", fit)


def _p_gt_n(seed=92):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((20, 50))
    b = np.zeros(50)
    b[:3] = [1.0, -1.0, 0.5]
    return X, X @ b + 0.3 * rng.standard_normal(20), (rng.random(20) < 0.5).astype(float)


@pytest.mark.parametrize("lam", [0.05, 0.2])
def test_p_gt_n_gaussian_lasso_matches_sklearn(lam):
    """p = 50 > n = 20: the lasso solution is unique for a design in general position
    (Tibshirani 2013); coordinate descent (tol 1e-12) and gfgsm agree to 1e-5 (observed 4e-11)."""
    X, y, _ = _p_gt_n()
    fit = fit_batch(X, y, family="gaussian", method="pl", lam=lam)
    assert bool(to_numpy(fit.converged)[0]) and float(to_numpy(fit.kkt)[0]) <= TOL
    ref = Lasso(alpha=lam, tol=1e-12, max_iter=100_000).fit(X, y)
    assert_close(theta_of(fit), np.r_[ref.intercept_, ref.coef_], 1e-5, f"p>n lasso lam={lam}",
                 fit)
    assert np.count_nonzero(to_numpy(fit.coef)[0]) <= 20


@pytest.mark.parametrize("lam", [0.02, 0.1])
def test_p_gt_n_binomial_pl_l1_converges(lam):
    """p > n binomial (always separable at lam = 0): l1 PL at lam > 0 is finite and equals
    sklearn's saga answer (1e-5)."""
    X, _, y = _p_gt_n()
    assert _adversarially_separable(X, y, 0.0)
    fit = fit_batch(X, y, family="binomial", method="pl", lam=lam)
    assert bool(to_numpy(fit.converged)[0]) and float(to_numpy(fit.kkt)[0]) <= TOL
    a, b = _sklearn_l1_logistic(X, y, lam)
    assert_close(theta_of(fit), np.r_[a, b], 1e-5, f"p>n l1 logistic lam={lam}", fit)


@pytest.mark.parametrize("lam", [0.02, 0.1, 0.3])
def test_p_gt_n_binomial_gfgsm_adversarially_separable_is_diverging(lam):
    """p > n binomial G-FGSM at budgets the data can beat (LP certificate): the infimum 0 is not
    attained, so the fit must be reported "diverging" with a warning."""
    X, _, y = _p_gt_n()
    assert _adversarially_separable(X, y, lam)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fit = fit_batch(X, y, family="binomial", method="gfgsm", lam=lam)
    assert not bool(to_numpy(fit.converged)[0]), (
        f"reported converged: ||coef||_1 {np.abs(to_numpy(fit.coef)[0]).sum():.4g}, "
        f"objective {float(to_numpy(fit.objective)[0]):.3g}, "
        f"kkt {float(to_numpy(fit.kkt)[0]):.3g}, n_iter {int(to_numpy(fit.n_iter)[0])}"
    )
    assert fit.status[0] == "diverging"
    assert any(issubclass(w.category, ConvergenceWarning) and "diverging" in str(w.message)
               for w in rec)
