"""Penalties (docs/theory.md sections 3 and 6) against independent references.

References are written here from the papers' formulas (Fan & Li 2001 for SCAD, Zhang 2010 for
MCP, the table of docs/theory.md s.6), numerical integrals (scipy.integrate.quad), central finite
differences, and brute-force minimisation (dense grid plus scipy.optimize.minimize_scalar).  Every
array-level test runs on NumPy and on ``array_api_strict`` through the ``xp`` fixture of
conftest.py.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize

from gfgsm._backend import to_numpy
from gfgsm.penalties import (
    L1,
    MCP,
    SCAD,
    AdaptiveL1,
    DualNorm,
    Lr,
    Penalty,
    PowerPenalty,
    QuantizedPenalty,
    WeightedL1,
    adaptive_weights,
    get_penalty,
)

# The xp fixture is function-scoped but returns a stateless module, so reusing it across
# hypothesis examples is safe.
HYP = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

P = 5
W = np.array([0.5, 1.0, 2.0, 0.0, 3.0])  # includes a zero weight (an unpenalised slope)


def _a(xp, x):
    return xp.asarray(np.asarray(x, dtype=np.float64))


# --------------------------------------------------------------------------------------------
# independent scalar references p_lam(t), t >= 0 (numpy, vectorised)
# --------------------------------------------------------------------------------------------


def ref_scad(t, lam, a):
    """Fan & Li (2001), the closed form of p_lam below their eq. (2.7)."""
    t = np.asarray(t, dtype=float)
    return np.piecewise(
        t,
        [t <= lam, (t > lam) & (t <= a * lam), t > a * lam],
        [
            lambda s: lam * s,
            lambda s: -(s**2 - 2 * a * lam * s + lam**2) / (2 * (a - 1)),
            lambda s: (a + 1) * lam**2 / 2 + 0 * s,
        ],
    )


def ref_scad_deriv(t, lam, a):
    """Fan & Li (2001) eq. (2.7):
    p'(t) = lam {I(t <= lam) + (a lam - t)_+ / ((a - 1) lam) I(t > lam)}."""
    if t <= lam:
        return lam
    return lam * max(a * lam - t, 0.0) / ((a - 1) * lam)


def ref_mcp(t, lam, g):
    t = np.asarray(t, dtype=float)
    return np.where(t <= g * lam, lam * t - t**2 / (2 * g), g * lam**2 / 2)


def ref_mcp_deriv(t, lam, g):
    """Zhang (2010): p'(t) = (lam - t / gamma)_+."""
    return max(lam - t / g, 0.0)


@dataclass
class Case:
    id: str
    make: Callable[[], Penalty]
    ref: Callable[[np.ndarray, float], np.ndarray]  # p_lam(t) per coordinate, t of shape (..., P)
    kinks: Callable[[float], list[float]]  # knots of p_lam where derivatives jump
    step_max: float = 2.0  # largest prox step used in the property tests
    unique_prox: bool = True  # the prox objective is strictly convex


def _no_kinks(lam):
    return []


CASES = [
    Case("l1", L1, lambda t, lam: lam * t, _no_kinks),
    Case("weighted_l1", lambda: WeightedL1(W), lambda t, lam: lam * W * t, _no_kinks),
    Case("lr0.3", lambda: Lr(0.3), lambda t, lam: lam * t**0.3, _no_kinks, unique_prox=False),
    Case("lr0.5", lambda: Lr(0.5), lambda t, lam: lam * t**0.5, _no_kinks, unique_prox=False),
    Case("lr0.8", lambda: Lr(0.8), lambda t, lam: lam * t**0.8, _no_kinks, unique_prox=False),
    Case("lr1", lambda: Lr(1), lambda t, lam: lam * t, _no_kinks),
    Case("lr1.3", lambda: Lr(1.3), lambda t, lam: lam * t**1.3, _no_kinks),
    Case("lr1.5", lambda: Lr(1.5), lambda t, lam: lam * t**1.5, _no_kinks),
    Case("lr1.8", lambda: Lr(1.8), lambda t, lam: lam * t**1.8, _no_kinks),
    Case("lr2", lambda: Lr(2), lambda t, lam: lam * t**2, _no_kinks),
    # SCAD/MCP prox steps stay below 0.8 of the validity bound (a - 1, gamma), so the prox
    # objective keeps a strong-convexity modulus >= 0.2 / step (see the prox property test).
    Case(
        "scad3.7",
        SCAD,
        lambda t, lam: ref_scad(t, lam, 3.7),
        lambda lam: [lam, 3.7 * lam],
        step_max=0.8 * 2.7,
    ),
    Case(
        "scad2.5",
        lambda: SCAD(a=2.5),
        lambda t, lam: ref_scad(t, lam, 2.5),
        lambda lam: [lam, 2.5 * lam],
        step_max=0.8 * 1.5,
    ),
    Case(
        "mcp3",
        MCP,
        lambda t, lam: ref_mcp(t, lam, 3.0),
        lambda lam: [3.0 * lam],
        step_max=0.8 * 3.0,
    ),
    Case(
        "mcp1.5",
        lambda: MCP(gamma=1.5),
        lambda t, lam: ref_mcp(t, lam, 1.5),
        lambda lam: [1.5 * lam],
        step_max=0.8 * 1.5,
    ),
]
CASE_IDS = [c.id for c in CASES]


def _points_off_kinks(rng, case, lam, n, lo=0.05, hi=4.0, margin=1e-3):
    t = rng.uniform(lo, hi, size=(n, P))
    for k in case.kinks(lam):
        t = np.where(np.abs(t - k) < margin, t + 5 * margin, t)
    return t


# --------------------------------------------------------------------------------------------
# values and derivatives of the separable penalties
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_value_matches_reference_formula(case, xp):
    rng = np.random.default_rng(0)
    beta = rng.normal(scale=2.0, size=(4, P))
    beta[1, 2] = 0.0
    lam = np.array([0.3, 1.0, 0.0, 2.5])
    pen = case.make()
    got = to_numpy(pen.value(_a(xp, beta), _a(xp, lam)))
    want = np.array([case.ref(np.abs(b), lv).sum() for b, lv in zip(beta, lam, strict=True)])
    # Same closed forms evaluated in a different order: agreement to a few ulp.
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    # pointwise is the summand of value.
    pw = to_numpy(pen.pointwise(_a(xp, np.abs(beta)), _a(xp, lam)))
    np.testing.assert_allclose(pw.sum(-1), got, rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    ("make", "deriv", "kinks"),
    [
        (lambda: SCAD(a=3.7), lambda t, lam: ref_scad_deriv(t, lam, 3.7), (1.0, 3.7)),
        (lambda: SCAD(a=2.2), lambda t, lam: ref_scad_deriv(t, lam, 2.2), (1.0, 2.2)),
        (lambda: MCP(gamma=3.0), lambda t, lam: ref_mcp_deriv(t, lam, 3.0), (3.0,)),
        (lambda: MCP(gamma=1.2), lambda t, lam: ref_mcp_deriv(t, lam, 1.2), (1.2,)),
    ],
    ids=["scad3.7", "scad2.2", "mcp3", "mcp1.2"],
)
@pytest.mark.parametrize("lam", [0.4, 1.3])
def test_scad_mcp_value_is_integral_of_derivative(make, deriv, kinks, lam, xp):
    """p_lam(t) = int_0^t p'_lam(s) ds with p' written from the papers, not from the code."""
    pen = make()
    t = np.array([0.0, 0.1, 0.5, 0.9, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]) * lam
    want = np.array(
        [
            integrate.quad(
                deriv,
                0.0,
                ti,
                args=(lam,),
                points=[k * lam for k in kinks],
                epsabs=1e-14,
                epsrel=1e-13,
                limit=200,
            )[0]
            for ti in t
        ]
    )
    got = to_numpy(pen.pointwise(_a(xp, t[None, :]), lam))[0]
    # The integrand is piecewise linear and quad is told the knots, so Gauss-Kronrod is exact up
    # to rounding: 1e-12 relative is a safe floor for ~30 rounded operations.
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # and the code's derivative is the papers' derivative
    d = to_numpy(pen.derivative(_a(xp, t[None, :]), lam))[0]
    np.testing.assert_allclose(d, [deriv(ti, lam) for ti in t], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_derivatives_match_central_differences(case, xp):
    rng = np.random.default_rng(1)
    lam = 0.7
    pen = case.make()
    t = _points_off_kinks(rng, case, lam, 6)
    h = 1e-6

    def f(x):
        return to_numpy(pen.pointwise(_a(xp, x), lam))

    def df(x):
        return to_numpy(pen.derivative(_a(xp, x), lam))

    fd1 = (f(t + h) - f(t - h)) / (2 * h)
    fd2 = (df(t + h) - df(t - h)) / (2 * h)
    # Central differences with h = 1e-6 at t >= 0.05, at least 1e-3 from any knot: truncation
    # h^2 |p'''| / 6 <= 1e-12 * 1e4 (the worst case, lr with r = 0.3 at t = 0.05) plus rounding
    # eps |p| / h ~ 1e-9; 1e-6 absolute+relative leaves a wide margin yet catches any wrong
    # formula (errors of O(0.01) or more).
    np.testing.assert_allclose(df(t), fd1, rtol=1e-6, atol=1e-6)
    got2 = to_numpy(pen.second_derivative(_a(xp, t), lam))
    np.testing.assert_allclose(got2, fd2, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("make", "knots"),
    [
        (SCAD, (1.0, 3.7)),
        (lambda: SCAD(a=2.5), (1.0, 2.5)),
        (MCP, (3.0,)),
        (lambda: MCP(gamma=1.5), (1.5,)),
    ],
    ids=["scad3.7", "scad2.5", "mcp3", "mcp1.5"],
)
def test_scad_mcp_continuous_at_knots(make, knots, xp):
    pen = make()
    lam = 0.8
    delta = 1e-9
    k = np.array([kk * lam for kk in knots])
    left, right = _a(xp, (k - delta)[None, :]), _a(xp, (k + delta)[None, :])
    at = _a(xp, k[None, :])
    # Value and first derivative are Lipschitz (constants lam and 1/(a-1) or 1/gamma), so across
    # a knot they move by at most ~delta; a jump in either formula would be O(lam * 0.01).
    for fn in (pen.pointwise, pen.derivative):
        lo, mid, hi = (to_numpy(fn(x, lam)) for x in (left, at, right))
        np.testing.assert_allclose(lo, mid, atol=10 * delta)
        np.testing.assert_allclose(hi, mid, atol=10 * delta)


def test_right_derivative_at_zero(xp):
    zero = _a(xp, np.zeros((2, P)))
    lam = _a(xp, [0.7, 0.0])
    expect = {
        "l1": [0.7, 0.0],
        "lr1": [0.7, 0.0],
        "lr1.5": [0.0, 0.0],
        "lr2": [0.0, 0.0],
        "lr0.5": [math.inf, 0.0],  # lam = 0 gives the zero function: slope 0, not NaN
        "scad3.7": [0.7, 0.0],
        "mcp3": [0.7, 0.0],
    }
    for case in CASES:
        if case.id not in expect:
            continue
        d = to_numpy(case.make().derivative(zero, lam))
        np.testing.assert_array_equal(d, np.repeat(np.array(expect[case.id])[:, None], P, axis=1))
    d = to_numpy(WeightedL1(W).derivative(zero, lam))
    np.testing.assert_array_equal(d, np.outer([0.7, 0.0], W))


ALL_PENALTIES = [c.make for c in CASES] + [
    lambda: AdaptiveL1(np.array([1.0, np.inf, 2.0, 0.0, np.inf])),
    lambda: DualNorm(1),
    lambda: DualNorm(1.5),
    lambda: DualNorm(2),
    lambda: DualNorm(3),
    lambda: DualNorm(math.inf),
    lambda: PowerPenalty(1),
    lambda: PowerPenalty(2.5),
    lambda: QuantizedPenalty(1),
    lambda: QuantizedPenalty(7),
]
ALL_IDS = [
    *CASE_IDS,
    "adaptive_l1",
    "dual1",
    "dual1.5",
    "dual2",
    "dual3",
    "dualinf",
    "power1",
    "power2.5",
    "quant1",
    "quant7",
]


@pytest.mark.parametrize("make", ALL_PENALTIES, ids=ALL_IDS)
def test_lam_zero_gives_no_nan(make, xp):
    pen = make()
    beta = np.array([[0.0, 1.5, -0.2, 0.0, 3.0], [0.0] * P])
    sigma = np.array([[1.0, 1.0, -1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 0.0, 1.0]])
    b, s = _a(xp, beta), _a(xp, sigma)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero or invalid-value warnings either
        outs = [pen.value(b, 0.0), pen.grad(b, 0.0, s), pen.grad(b, _a(xp, [0.0, 0.0]), s)]
        if pen.is_separable:
            outs += [pen.derivative(xp.abs(b), 0.0), pen.hess_diag(b, 0.0)]
            pr = to_numpy(pen.prox(b, 0.0, 0.5))
            if not isinstance(pen, AdaptiveL1):
                np.testing.assert_array_equal(pr, beta)  # no penalty: the prox is the identity
            outs.append(pr)
    for o in outs:
        assert not np.any(np.isnan(to_numpy(o)))
    if not isinstance(pen, AdaptiveL1):
        np.testing.assert_array_equal(to_numpy(outs[0]), 0.0)


@pytest.mark.parametrize("make", ALL_PENALTIES, ids=ALL_IDS)
def test_batched_lam_equals_rowwise(make, xp):
    rng = np.random.default_rng(2)
    beta = rng.normal(size=(3, P))
    beta[0, 1] = 0.0
    lam = np.array([0.2, 1.1, 0.0])
    sigma = np.sign(beta)
    sigma[0, 1] = -1.0
    pen = make()
    b = _a(xp, beta)
    v = to_numpy(pen.value(b, _a(xp, lam)))
    g = to_numpy(pen.grad(b, _a(xp, lam), _a(xp, sigma)))
    for i in range(3):
        bi = _a(xp, beta[i : i + 1])
        # Same floating-point operations row by row: equal to the last ulp.
        np.testing.assert_allclose(v[i], to_numpy(pen.value(bi, float(lam[i])))[0], rtol=1e-15)
        np.testing.assert_allclose(
            g[i], to_numpy(pen.grad(bi, float(lam[i]), _a(xp, sigma[i : i + 1])))[0], rtol=1e-15
        )
    if not pen.is_separable:
        return
    z = 3 * beta
    step = 0.5
    pr = to_numpy(pen.prox(_a(xp, z), _a(xp, lam), step))
    hd = to_numpy(pen.hess_diag(b, _a(xp, lam)))
    for i in range(3):
        # The lr prox iterates until every entry of the batch has converged, so a row alone may
        # stop an iteration earlier: agreement to a few ulp, not bitwise.
        np.testing.assert_allclose(
            pr[i], to_numpy(pen.prox(_a(xp, z[i : i + 1]), float(lam[i]), step))[0], rtol=1e-14
        )
        np.testing.assert_allclose(
            hd[i], to_numpy(pen.hess_diag(_a(xp, beta[i : i + 1]), float(lam[i])))[0], rtol=1e-15
        )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_grad_and_hess_diag_follow_the_orthant(case, xp):
    pen = case.make()
    beta = np.array([[0.0, 1.3, -0.4, 0.0, -2.2]])
    sigma = np.array([[1.0, 1.0, -1.0, 0.0, -1.0]])
    lam = 0.6
    g = to_numpy(pen.grad(_a(xp, beta), lam, _a(xp, sigma)))
    d = to_numpy(pen.derivative(_a(xp, np.abs(beta)), lam))
    with np.errstate(invalid="ignore"):
        want = np.where(sigma == 0, 0.0, d * sigma)  # inf * 0 is the case this guards against
    np.testing.assert_array_equal(g, want)
    # default sigma = sign(beta)
    g0 = to_numpy(pen.grad(_a(xp, beta), lam))
    np.testing.assert_array_equal(g0, np.where(beta == 0, 0.0, want))
    h = to_numpy(pen.hess_diag(_a(xp, beta), lam))
    t = np.abs(beta)
    sd = to_numpy(pen.second_derivative(_a(xp, np.where(t > 0, t, 1.0)), lam))
    at_zero = 2 * lam if case.id == "lr2" else 0.0  # ridge has curvature 2 lam at 0
    np.testing.assert_array_equal(h, np.where(t > 0, sd, at_zero))


# --------------------------------------------------------------------------------------------
# proximal maps
# --------------------------------------------------------------------------------------------


def _brute_force_prox(case, z, lam, step):
    """Per coordinate: argmin_b (b - z_j)^2 / (2 step) + p_j(|b|) by a 2001-point grid on the
    segment [0, z_j] (the minimiser lies there because p is non-decreasing in |b|), refined by
    bounded Brent around the best grid point."""
    grid = np.linspace(0.0, 1.0, 2001)[:, None] * z[None, :]

    def obj(b):
        return (b - z) ** 2 / (2 * step) + case.ref(np.abs(b), lam)

    vals = obj(grid)
    idx = np.argmin(vals, axis=0)
    best = grid[idx, np.arange(P)].copy()
    for j in range(P):
        lo, hi = sorted((grid[max(idx[j] - 1, 0), j], grid[min(idx[j] + 1, 2000), j]))
        if hi <= lo:
            continue

        def fj(b, j=j):
            x = np.full(P, b)
            return obj(x)[j]

        res = optimize.minimize_scalar(
            fj, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13}
        )
        if fj(res.x) < fj(best[j]):
            best[j] = res.x
    return best, obj


def _prox_strategy(step_max):
    return st.tuples(
        st.lists(st.floats(-6, 6, allow_subnormal=False), min_size=P, max_size=P),
        st.floats(0.0, 2.0, allow_subnormal=False),
        st.floats(0.02, step_max, allow_subnormal=False),
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_prox_minimises_the_prox_objective(case, xp):
    pen = case.make()

    @HYP
    @given(_prox_strategy(case.step_max))
    def check(args):
        z_list, lam, step = args
        z = np.array(z_list)
        got = to_numpy(pen.prox(_a(xp, z[None, :]), lam, step))[0]
        ref, obj = _brute_force_prox(case, z, lam, step)
        f_got, f_ref = obj(got), obj(ref)
        # Both objectives are evaluated in float64 by the same numpy expression; the code's prox
        # is exact or solved to ~4 ulp, so it can only lose to the brute force by rounding in
        # the evaluation, ~1e-16 |F|.  1e-11 (1 + |F|) is far above that and far below the
        # O(1e-4) gap any wrong branch or wrong root would leave.
        assert np.all(f_got <= f_ref + 1e-11 * (1 + np.abs(f_ref))), (z, got, ref)
        if case.unique_prox:
            # Strictly convex objective with modulus m >= 0.2 / step (steps are kept below 0.8
            # of the SCAD/MCP bound), F <= 18 / step: bounded Brent locates the minimiser to
            # ~sqrt(2 eps F / m) ~ 1e-7, so 1e-6 (1 + |z|) is a safe bound.
            np.testing.assert_allclose(got, ref, atol=1e-6 * (1 + np.max(np.abs(z))), rtol=0)
        # the prox never moves away from zero or past z
        assert np.all(np.abs(got) <= np.abs(z) + 1e-15)
        assert np.all(got * z >= 0)

    check()


@pytest.mark.parametrize("r", [0.3, 0.5, 0.8, 1.3, 1.5, 1.8])
def test_lr_prox_is_zero_or_a_stationary_point(r, xp):
    rng = np.random.default_rng(3)
    z = rng.uniform(-6, 6, size=(40, P))
    lam, step = 0.9, 0.7
    b = to_numpy(Lr(r).prox(_a(xp, z), lam, step))
    t = np.abs(b)
    nz = t > 0
    # Optimality equation t - |z| + step lam r t^(r-1) = 0, solved by Newton to ~4 ulp of t.
    resid = t[nz] - np.abs(z[nz]) + step * lam * r * t[nz] ** (r - 1)
    np.testing.assert_allclose(resid, 0.0, atol=1e-12)
    if r > 1:
        assert np.all(nz[z != 0])  # r > 1: only z = 0 maps to 0


def test_lr_prox_root_accuracy_at_extreme_scales(xp):
    z = np.array([[1e-8, 1e-3, 1.0, 1e3, 1e8]])
    for r in (0.5, 1.5):
        for lam in (1e-6, 1.0, 1e4):
            b = to_numpy(Lr(r).prox(_a(xp, z), lam, 1.0))[0]
            t = np.abs(b)
            nz = t > 0
            resid = (t - z[0] + lam * r * np.where(nz, t, 1.0) ** (r - 1)) / z[0]
            # relative residual of the optimality equation, a few ulp of |z|
            np.testing.assert_allclose(resid[nz], 0.0, atol=1e-13)


@HYP
@given(
    st.lists(st.floats(-10, 10, allow_subnormal=False), min_size=P, max_size=P),
    st.floats(0, 3, allow_subnormal=False),
    st.floats(1e-3, 3, allow_subnormal=False),
)
def test_l1_prox_is_soft_thresholding(xp, z, lam, step):
    z = np.array(z)
    want = np.sign(z) * np.maximum(np.abs(z) - step * lam, 0.0)
    for pen in (L1(), Lr(1), WeightedL1(np.ones(P))):
        got = to_numpy(pen.prox(_a(xp, z), lam, step))
        # the same three floating-point operations as the reference: bitwise equal
        np.testing.assert_array_equal(got, want)


@HYP
@given(
    st.lists(st.floats(-10, 10, allow_subnormal=False), min_size=P, max_size=P),
    st.lists(st.floats(-10, 10, allow_subnormal=False), min_size=P, max_size=P),
    st.floats(0, 3, allow_subnormal=False),
    st.floats(1e-3, 3, allow_subnormal=False),
)
def test_l1_prox_is_nonexpansive(xp, z1, z2, lam, step):
    z1, z2 = np.array(z1), np.array(z2)
    p1 = to_numpy(L1().prox(_a(xp, z1), lam, step))
    p2 = to_numpy(L1().prox(_a(xp, z2), lam, step))
    # 1 ulp of slack for the subtraction |z| - step lam
    assert np.all(np.abs(p1 - p2) <= np.abs(z1 - z2) * (1 + 4e-16) + 4e-15)


def test_ridge_prox_and_array_step(xp):
    rng = np.random.default_rng(4)
    z = rng.normal(size=(3, P))
    lam = np.array([0.5, 1.0, 2.0])
    step = np.array([[0.1], [0.5], [1.5]])  # one step per problem, broadcast over slopes
    got = to_numpy(Lr(2).prox(_a(xp, z), _a(xp, lam), _a(xp, step)))
    np.testing.assert_allclose(got, z / (1 + 2 * step * lam[:, None]), rtol=1e-15)
    got = to_numpy(SCAD().prox(_a(xp, z), _a(xp, lam), _a(xp, step)))
    for i in range(3):
        row = to_numpy(SCAD().prox(_a(xp, z[i]), float(lam[i]), float(step[i, 0])))
        np.testing.assert_array_equal(got[i], row)


@pytest.mark.parametrize(
    ("pen", "bound", "name"),
    [
        (SCAD(), 2.7, "SCAD"),
        (SCAD(a=2.5), 1.5, "SCAD"),
        (MCP(), 3.0, "MCP"),
        (MCP(gamma=1.2), 1.2, "MCP"),
    ],
)
def test_scad_mcp_prox_refuses_large_steps(pen, bound, name, xp):
    z = _a(xp, np.ones((2, P)))
    with pytest.raises(ValueError, match=rf"{name} proximal map .* step < {bound:g}"):
        pen.prox(z, 1.0, bound)
    with pytest.raises(ValueError, match="step"):
        pen.prox(z, 1.0, _a(xp, [[0.1], [bound * 1.01]]))
    pen.prox(z, 1.0, _a(xp, [[0.1], [bound * 0.99]]))  # below the bound: fine


def test_weighted_l1_batched_weights(xp):
    rng = np.random.default_rng(5)
    w = np.abs(rng.normal(size=(3, P)))
    beta = rng.normal(size=(3, P))
    lam = np.array([0.5, 1.0, 0.0])
    pen = get_penalty("weighted_l1", weights=_a(xp, w))
    np.testing.assert_allclose(
        to_numpy(pen.value(_a(xp, beta), _a(xp, lam))),
        (lam[:, None] * w * np.abs(beta)).sum(-1),
        rtol=1e-14,
    )
    got = to_numpy(pen.prox(_a(xp, beta), _a(xp, lam), 0.3))
    thr = 0.3 * lam[:, None] * w
    np.testing.assert_array_equal(got, np.sign(beta) * np.maximum(np.abs(beta) - thr, 0.0))
    wa = to_numpy(pen.weights_array(xp, 3, P))
    np.testing.assert_array_equal(wa, w)
    with pytest.raises(ValueError, match="weights must have shape"):
        pen.weights_array(xp, 4, P)
    # numpy weights used with array_api_strict data are converted on use
    pen_np = WeightedL1(w)
    np.testing.assert_array_equal(to_numpy(pen_np.prox(_a(xp, beta), _a(xp, lam), 0.3)), got)


def test_adaptive_l1_infinite_weights_hold_zero(xp):
    w = np.array([1.0, np.inf, 2.0, 0.0, np.inf])
    pen = AdaptiveL1(_a(xp, w))
    beta = np.array([[1.0, 0.0, -1.0, 2.0, 0.0], [1.0, 0.5, -1.0, 2.0, 0.0]])
    v = to_numpy(pen.value(_a(xp, beta), 0.5))
    assert v[0] == pytest.approx(0.5 * (1.0 + 2.0))
    assert v[1] == math.inf
    for lam in (0.0, 0.5):
        pr = to_numpy(pen.prox(_a(xp, 5 * beta), lam, 1.0))
        np.testing.assert_array_equal(pr[:, [1, 4]], 0.0)  # held at zero whatever lam
        d = to_numpy(pen.derivative(_a(xp, np.abs(beta)), lam))
        assert np.all(d[:, [1, 4]] == math.inf)
    assert get_penalty("adaptive_l1", weights=w).name == "adaptive_l1"


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_adaptive_weights(gamma, xp):
    pilot = np.array([[0.5, -2.0, 0.0, 1e-200], [1.0, 0.0, -0.1, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = to_numpy(adaptive_weights(_a(xp, pilot), gamma=gamma))
        w_eps = to_numpy(adaptive_weights(_a(xp, pilot), gamma=gamma, eps=1e-3))
    with np.errstate(divide="ignore", over="ignore"):
        want = 1.0 / np.abs(pilot) ** gamma
    np.testing.assert_allclose(w, want, rtol=1e-15)  # zeros (and underflow) give +inf
    assert np.isinf(w[0, 2]) and np.isinf(w[1, 1])
    np.testing.assert_allclose(w_eps, 1.0 / np.maximum(np.abs(pilot), 1e-3) ** gamma, rtol=1e-15)
    assert np.all(np.isfinite(w_eps))
    AdaptiveL1(w)  # infinite weights are accepted by adaptive_l1 ...
    with pytest.raises(ValueError, match="finite"):
        WeightedL1(w)  # ... but not by weighted_l1


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"gamma": 0.0}, "gamma must satisfy 0 < gamma"),
        ({"gamma": -1.0}, "gamma"),
        ({"gamma": math.nan}, "gamma"),
        ({"eps": 0.0}, "eps must satisfy 0 < eps"),
        ({"eps": -1e-3}, "eps"),
    ],
)
def test_adaptive_weights_rejects_bad_parameters(kw, msg, xp):
    with pytest.raises(ValueError, match=msg):
        adaptive_weights(_a(xp, [1.0, 2.0]), **kw)


@pytest.mark.parametrize(
    ("w", "msg"),
    [
        ([1.0, -0.5, 1.0], "weights must be >= 0, got minimum -0.5"),
        ([1.0, math.nan, 1.0], "NaN"),
        ([1.0, math.inf, 1.0], "finite"),
        ([[[1.0]]], "shape"),
    ],
)
def test_weighted_l1_rejects_bad_weights(w, msg, xp):
    with pytest.raises(ValueError, match=msg):
        get_penalty("weighted_l1", weights=_a(xp, w))


# --------------------------------------------------------------------------------------------
# induced penalties of the schemes (docs/theory.md s.6, third column)
# --------------------------------------------------------------------------------------------


def _random_beta(rng, R=5, p=6):
    beta = rng.normal(size=(R, p))
    beta[1, 3] = 0.0
    beta[2] = 0.0  # a zero row: value 0
    beta[3, 1] = -beta[3, 0]  # a tie at the max possible
    return beta


@pytest.mark.parametrize("q", [1.0, 1.5, 2.0, 3.0, math.inf])
def test_dual_norm_value(q, xp):
    beta = _random_beta(np.random.default_rng(6))
    qstar = {1.0: np.inf, 1.5: 3.0, 2.0: 2.0, 3.0: 1.5, math.inf: 1.0}[q]
    got = to_numpy(DualNorm(q).value(_a(xp, beta), 0.7))
    # numpy's norm sums |x|^q* directly, the code scales by the max first: a few ulp apart.
    np.testing.assert_allclose(got, 0.7 * np.linalg.norm(beta, ord=qstar, axis=-1), rtol=1e-14)


@pytest.mark.parametrize("r", [1.0, 1.5, 2.0, 3.0])
def test_power_penalty_value(r, xp):
    beta = _random_beta(np.random.default_rng(7))
    lam = np.array([0.5, 1.0, 2.0, 0.0, 3.0])
    m = np.max(np.abs(beta), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.where(m > 0, np.sum(np.abs(beta) ** r, axis=-1) / m ** (r - 1), 0.0)
    got = to_numpy(PowerPenalty(r).value(_a(xp, beta), _a(xp, lam)))
    np.testing.assert_allclose(got, lam * want, rtol=1e-14)


@pytest.mark.parametrize("b", [1, 2, 10, 1000])
def test_quantized_penalty_value(b, xp):
    beta = _random_beta(np.random.default_rng(8))
    m = np.max(np.abs(beta), axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        k = np.maximum(1, np.round(b * np.abs(beta) / np.where(m > 0, m, 1)))  # half to even
    want = (k * np.abs(beta)).sum(-1) / b
    got = to_numpy(QuantizedPenalty(b).value(_a(xp, beta), 1.3))
    np.testing.assert_allclose(got, 1.3 * want, rtol=1e-14)


def test_quantized_penalty_rounds_half_to_even(xp):
    # b |beta_j| / M = 2.5 rounds to 2 (half to even), not 3; 0.5 rounds to 0, then max(1, .)
    beta = _a(xp, [[1.0, 0.625], [1.0, 0.125]])
    got = to_numpy(QuantizedPenalty(4).value(beta, 1.0))
    np.testing.assert_allclose(got, [(4 * 1.0 + 2 * 0.625) / 4, (4 * 1.0 + 1 * 0.125) / 4])


NONSEP = [
    (lambda: DualNorm(1), "dual1"),
    (lambda: DualNorm(1.5), "dual1.5"),
    (lambda: DualNorm(2), "dual2"),
    (lambda: DualNorm(3), "dual3"),
    (lambda: DualNorm(math.inf), "dualinf"),
    (lambda: PowerPenalty(1), "power1"),
    (lambda: PowerPenalty(1.5), "power1.5"),
    (lambda: PowerPenalty(3), "power3"),
    (lambda: QuantizedPenalty(1), "quant1"),
    (lambda: QuantizedPenalty(2), "quant2"),
    (lambda: QuantizedPenalty(10), "quant10"),
]


def _generic_beta(rng, p=6, n_rows=4, b_max=10):
    """Rows with distinct nonzero magnitudes and every b |beta_j| / M (b <= b_max) at least 0.02
    from a half-integer, so each induced penalty is differentiable there."""
    rows = []
    while len(rows) < n_rows:
        x = rng.normal(size=p)
        a = np.abs(x)
        ratio = np.outer(np.arange(1, b_max + 1), a / a.max())
        frac = np.abs(ratio - np.floor(ratio) - 0.5)
        ok_half = np.all((frac > 0.02) | (ratio > np.arange(1, b_max + 1)[:, None] - 1e-12))
        if ok_half and np.min(np.abs(np.diff(np.sort(a)))) > 0.05 and a.min() > 0.05:
            rows.append(x)
    return np.array(rows)


@pytest.mark.parametrize(("make", "pid"), NONSEP, ids=[n for _, n in NONSEP])
def test_induced_penalty_grad_matches_finite_differences(make, pid, xp):
    pen = make()
    beta = _generic_beta(np.random.default_rng(9))
    lam = np.array([0.5, 1.0, 1.5, 2.0])
    p = beta.shape[1]
    h = 1e-6
    eye = np.eye(p)
    plus = beta[:, None, :] + h * eye[None]  # (R, p, p): row i, coordinate j moved
    minus = beta[:, None, :] - h * eye[None]
    lam_b = _a(xp, np.repeat(lam[:, None], p, axis=1))
    vp = to_numpy(pen.value(_a(xp, plus), lam_b))
    vm = to_numpy(pen.value(_a(xp, minus), lam_b))
    fd = (vp - vm) / (2 * h)
    got = to_numpy(pen.grad(_a(xp, beta), _a(xp, lam), _a(xp, np.sign(beta))))
    # Smooth at these points (no ties, no zero, rounding boundaries >= 0.02 away while h moves
    # ratios by <= 1e-5): central-difference error h^2 |P'''| ~ 1e-11 plus rounding ~1e-10.
    np.testing.assert_allclose(got, fd, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize(("make", "pid"), NONSEP, ids=[n for _, n in NONSEP])
def test_induced_penalty_grad_at_zero_is_the_ray_limit(make, pid, xp):
    pen = make()
    sigma = np.array([[1.0, -1.0, 0.0, 1.0, 0.0, 0.0], [0.0] * 6])
    zero = np.zeros_like(sigma)
    g0 = to_numpy(pen.grad(_a(xp, zero), 0.8, _a(xp, sigma)))
    g_sigma = to_numpy(pen.grad(_a(xp, sigma[:1]), 0.8, _a(xp, sigma[:1])))
    np.testing.assert_array_equal(g0[0], g_sigma[0])
    np.testing.assert_array_equal(g0[1], 0.0)  # no direction, no slope
    # directional derivative along sigma: P(t sigma) / t = g0 . sigma (P is 1-homogeneous)
    t = 1e-3
    v = to_numpy(pen.value(_a(xp, t * sigma[:1]), 0.8))[0] / t
    np.testing.assert_allclose(g0[0] @ sigma[0], v, rtol=1e-13)


@pytest.mark.parametrize("make", ALL_PENALTIES, ids=ALL_IDS)
def test_convexity_flags(make, xp):
    pen = make()
    lam = 1.0
    if pen.is_convex:
        rng = np.random.default_rng(10)
        x, y = rng.normal(size=(2, 200, P))
        x[:20, 2] = 0.0
        vx, vy, vm = (to_numpy(pen.value(_a(xp, v), lam)) for v in (x, y, (x + y) / 2))
        fin = np.isfinite(vx) & np.isfinite(vy)
        assert np.all(vm[fin] <= (vx[fin] + vy[fin]) / 2 + 1e-12)
        return
    # An explicit midpoint-convexity violation for each non-convex penalty.
    if isinstance(pen, PowerPenalty):
        # along (1, t): slope r for t < 1, 2 - r for t > 1, a concave kink at t = 1
        x, y = [1.0, 0.9, 0, 0, 0], [1.0, 1.1, 0, 0, 0]
    elif isinstance(pen, QuantizedPenalty):
        # b |beta_2| / M crosses 3.5 between x and y (for b = 7): the value jumps
        x, y = [1.0, 0.49, 0, 0, 0], [1.0, 0.51, 0, 0, 0]
    else:  # SCAD, MCP, lr (r < 1): concave in |t| on [0, inf)
        x, y = [0.0] * P, [1.5] * P
    x, y = np.array([x]), np.array([y])
    vx, vy, vm = (to_numpy(pen.value(_a(xp, v), lam))[0] for v in (x, y, (x + y) / 2))
    assert vm > (vx + vy) / 2 + 1e-6


def test_induced_penalties_have_no_separable_interface(xp):
    z = _a(xp, np.ones((1, 3)))
    for pen in (DualNorm(2), PowerPenalty(2), QuantizedPenalty(3)):
        assert not pen.is_separable
        for call in (
            lambda pen=pen: pen.prox(z, 1.0, 1.0),
            lambda pen=pen: pen.derivative(z, 1.0),
            lambda pen=pen: pen.hess_diag(z, 1.0),
        ):
            with pytest.raises(NotImplementedError, match="not separable"):
                call()


# --------------------------------------------------------------------------------------------
# registry and parameter validation
# --------------------------------------------------------------------------------------------


def test_get_penalty_builds_each_registered_penalty():
    assert isinstance(get_penalty("l1"), L1)
    assert isinstance(get_penalty("L1"), L1)
    assert get_penalty("lr", r=0.5).r == 0.5
    assert get_penalty("scad").a == 3.7
    assert get_penalty("scad", a=3.0).a == 3.0
    assert get_penalty("mcp").gamma == 3.0
    assert get_penalty("mcp", gamma=2.0).gamma == 2.0
    assert isinstance(get_penalty("weighted_l1", weights=W), WeightedL1)
    assert isinstance(get_penalty("adaptive_l1", weights=W), AdaptiveL1)
    pen = SCAD(a=4.0)
    assert get_penalty(pen) is pen
    for pen, convex in (
        (L1(), True),
        (Lr(0.5), False),
        (Lr(1), True),
        (Lr(2), True),
        (SCAD(), False),
        (MCP(), False),
        (DualNorm(2), True),
        (PowerPenalty(1), True),
        (PowerPenalty(2), False),
        (QuantizedPenalty(1), True),
        (QuantizedPenalty(2), False),
    ):
        assert pen.is_convex is convex, pen


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (
            lambda: get_penalty("lasso"),
            r"unknown penalty 'lasso'; valid names: l1, weighted_l1, "
            r"adaptive_l1, lr, scad, mcp",
        ),
        (lambda: get_penalty(3), "unknown penalty 3"),
        (lambda: get_penalty("lr", r=2.5), r"r must satisfy 0 < r <= 2, got 2\.5"),
        (lambda: get_penalty("lr", r=0), r"r must satisfy 0 < r <= 2, got 0"),
        (lambda: get_penalty("lr", r=math.nan), r"r must satisfy 0 < r <= 2, got nan"),
        (lambda: get_penalty("lr", r="1"), "r must be a real number, got '1'"),
        (lambda: get_penalty("lr"), r"'lr' needs parameter\(s\) r"),
        (lambda: get_penalty("l1", r=2), r"'l1' got unexpected parameter\(s\) r"),
        (lambda: get_penalty("scad", gamma=3), r"'scad' got unexpected parameter\(s\) gamma"),
        (lambda: get_penalty("scad", a=2.0), r"a must satisfy 2 < a < inf, got 2\.0"),
        (lambda: get_penalty("scad", a=math.inf), "a must satisfy"),
        (lambda: get_penalty("mcp", gamma=1.0), r"gamma must satisfy 1 < gamma < inf, got 1\.0"),
        (lambda: get_penalty("weighted_l1"), r"needs parameter\(s\) weights"),
        (lambda: get_penalty(L1(), r=1), "cannot be applied to the instance L1()"),
        (lambda: DualNorm(0.5), r"q must satisfy 1 <= q <= inf, got 0\.5"),
        (lambda: PowerPenalty(0.5), r"r must satisfy 1 <= r < inf, got 0\.5"),
        (lambda: QuantizedPenalty(0), "b must be a positive integer, got 0"),
        (lambda: QuantizedPenalty(2.5), "b must be a positive integer, got 2.5"),
        (lambda: QuantizedPenalty(True), "b must be a positive integer, got True"),
    ],
)
def test_bad_penalty_arguments_raise(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


# --------------------------------------------------------------------------------------------
# Curvature and prox of the scheme penalties (issue 12)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pen", [PowerPenalty(3), PowerPenalty(1.5), PowerPenalty(2),
                                 DualNorm(2), DualNorm(1.5), DualNorm(3)],
                         ids=["pow3", "pow1.5", "pow2", "dual2", "dual1.5", "dual3"])
def test_orthant_hessian_matches_finite_differences(pen, xp):
    """Central differences of the exact gradient with h = 1e-6: truncation O(h^2 P''') ~ 1e-12
    and rounding O(eps |grad| / h) ~ 1e-10, hence 1e-7.  Positive homogeneity: H beta = 0 to
    rounding (1e-13)."""
    rng = np.random.default_rng(1)
    B = rng.standard_normal((4, 5))
    lam = np.array([0.3, 0.5, 1.0, 2.0])
    H = to_numpy(pen.orthant_hess(xp.asarray(B), xp.asarray(lam)))
    sig = np.sign(B)
    h = 1e-6
    fd = np.zeros_like(H)
    for k in range(5):
        E = np.zeros_like(B)
        E[:, k] = h
        gp = to_numpy(pen.grad(xp.asarray(B + E), xp.asarray(lam), xp.asarray(sig)))
        gm = to_numpy(pen.grad(xp.asarray(B - E), xp.asarray(lam), xp.asarray(sig)))
        fd[:, :, k] = (gp - gm) / (2 * h)
    np.testing.assert_allclose(H, fd, atol=1e-7)
    np.testing.assert_allclose(np.einsum("rjk,rk->rj", H, B), 0.0, atol=1e-13)


def test_max_norm_prox_against_bisection(xp):
    """prox of tau ||.||_inf (sort-based) against an independent bisection on the clip level s
    of sum_j max(|z_j| - s, 0) = tau (60 halvings: s to ~1e-18 relative), and its subgradient
    (z - prox) / step supported on the exact maximisers with l1 norm lam."""
    rng = np.random.default_rng(2)
    Z = rng.standard_normal((50, 6)) * rng.uniform(0.1, 3, (50, 1))
    Z[0] = [1.0, -1.0, 0.5, 0.0, 1.0, 0.2]  # ties in z itself
    lam = rng.uniform(0.1, 2.0, 50)
    step = rng.uniform(0.1, 1.0, (50, 1))
    got = to_numpy(DualNorm(1).prox(xp.asarray(Z), xp.asarray(lam), xp.asarray(step)))
    tau = lam * step[:, 0]
    a = np.abs(Z)
    lo, hi = np.zeros(50), a.max(1)
    for _ in range(200):
        mid = (lo + hi) / 2
        big = np.maximum(a - mid[:, None], 0).sum(1) > tau
        lo, hi = np.where(big, mid, lo), np.where(big, hi, mid)
    s = np.where(a.sum(1) <= tau, 0.0, (lo + hi) / 2)
    want = np.sign(Z) * np.minimum(a, s[:, None])
    np.testing.assert_allclose(got, want, atol=1e-12)
    xi = (Z - got) / step
    np.testing.assert_allclose(np.abs(xi).sum(1), np.minimum(lam, a.sum(1) / step[:, 0]),
                               rtol=1e-12)
    mx = np.abs(got).max(1, keepdims=True)
    off = (np.abs(got) < mx) & (mx > 0)
    assert np.all(xi[off] == 0)
    with pytest.raises(NotImplementedError):
        DualNorm(2).prox(xp.asarray(Z), 1.0, 1.0)
