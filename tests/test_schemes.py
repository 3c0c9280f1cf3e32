"""Gradient schemes (docs/theory.md s.6) against brute force and the paper's definitions.

The key test checks the third column of the table in docs/theory.md s.6: for a GLM the input
gradient is ``(mu - y) beta``, and perturbing along the scheme's direction moves ``x' beta`` by
exactly ``-sign(y - mu) P(beta)``, with ``P`` the scheme's induced penalty computed independently
in :mod:`gfgsm.penalties`.  Every array-level test runs on NumPy and on ``array_api_strict``
through the ``xp`` fixture of conftest.py.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import optimize

from gfgsm._backend import to_numpy
from gfgsm.penalties import L1, DualNorm, PowerPenalty, QuantizedPenalty
from gfgsm.schemes import Lq, Power, Quantized, Scheme, Sign, get_scheme

# The xp fixture is function-scoped but returns a stateless module, so reusing it across
# hypothesis examples is safe.
HYP = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

SCHEMES = (
    [Sign()]
    + [Lq(q) for q in (1, 1.5, 2, 3, math.inf)]
    + [Power(r) for r in (1, 1.5, 2, 3)]
    + [Quantized(b) for b in (1, 2, 10, 1000)]
)
SCHEME_IDS = [repr(s) for s in SCHEMES]


_MODERATE = st.one_of(st.just(0.0), st.floats(1e-3, 1e3), st.floats(-1e3, -1e-3))


def _a(xp, x):
    return xp.asarray(np.asarray(x, dtype=np.float64))


def _norm(d, q):
    return np.linalg.norm(d, ord=q, axis=-1)


# --------------------------------------------------------------------------------------------
# THE KEY TEST: docs/theory.md s.6, third column of the table
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES, ids=SCHEME_IDS)
def test_glm_shift_equals_induced_penalty(scheme, xp):
    rng = np.random.default_rng(0)
    R, n, p = 4, 60, 7
    beta = rng.normal(size=(R, p))
    beta[1, 2] = 0.0  # an exact zero coefficient
    beta[2, 4] = -np.max(np.abs(beta[2]))  # a tie at the max
    beta[3] *= 1e-3  # small coefficients: the shift must scale with beta, not with g
    X = rng.normal(size=(R, n, p))
    eta = 0.3 + np.einsum("rnp,rp->rn", X, beta)
    mu = 1 / (1 + np.exp(-eta))
    y = (rng.random((R, n)) < mu).astype(float)
    resid = mu - y  # binomial d l / d eta
    assert np.any(resid > 0) and np.any(resid < 0)

    g = resid[..., None] * beta[:, None, :]  # (R, n, p) input gradients, one per sample
    d = to_numpy(scheme.direction(_a(xp, g)))
    shift = np.sum(d * beta[:, None, :], axis=-1)  # (R, n)
    P = to_numpy(scheme.induced_penalty.value(_a(xp, beta), 1.0))  # (R,)
    want = -np.sign(y - mu) * P[:, None]
    # direction() and the induced penalty are different formulas for the same number; each
    # loses a few ulp (a row max, a division, a power, a sum of 7 terms), so 1e-12 relative is
    # two orders above rounding and far below any formula error.
    np.testing.assert_allclose(shift, want, rtol=1e-12, atol=0)

    # ... and the perturbed input moves the linear predictor by -sign(y - mu) eps P(beta):
    # the difference of two O(|x||beta|) inner products loses ~1e-15 |x||beta| / (eps P),
    # hence 1e-10 relative.
    eps = 0.1
    eta_adv = 0.3 + np.einsum("rnp,rp->rn", X + eps * d, beta)
    np.testing.assert_allclose(eta_adv - eta, eps * want, rtol=1e-10, atol=1e-14)


def test_induced_penalty_classes():
    # The members of each family that are the sign scheme (q = inf, r = 1, b = 1) induce l1
    # itself, so they are fitted by l1's separable solver; test_schemes' value tests above
    # check that the other classes equal l1 there too.
    assert isinstance(Sign().induced_penalty, L1)
    for q in (1, 1.5, 2, 3):
        pen = Lq(q).induced_penalty
        assert isinstance(pen, DualNorm) and pen.q == q
    assert isinstance(Power(2.5).induced_penalty, PowerPenalty)
    assert Power(2.5).induced_penalty.r == 2.5
    assert isinstance(Quantized(7).induced_penalty, QuantizedPenalty)
    for scheme in (Lq(math.inf), Power(1), Quantized(1)):
        assert isinstance(scheme.induced_penalty, L1)


# --------------------------------------------------------------------------------------------
# lq: steepest ascent over the l_q ball, by brute force
# --------------------------------------------------------------------------------------------


def test_lq_inf_attains_the_max_over_the_cube_corners(xp):
    rng = np.random.default_rng(1)
    g = rng.normal(size=(5, 6))
    d = to_numpy(Lq(math.inf).direction(_a(xp, g)))
    corners = np.array(list(itertools.product([-1.0, 1.0], repeat=6)))  # the 2^6 vertices
    best = np.max(g @ corners.T, axis=1)
    # A linear function's max over the cube is at a vertex; both sides are the same sum of
    # |g_j| in a different order: a few ulp.
    np.testing.assert_allclose(np.sum(d * g, axis=-1), best, rtol=1e-14)
    np.testing.assert_array_equal(d, np.sign(g))


def test_lq_1_attains_the_max_over_the_vertices_and_splits_ties(xp):
    rng = np.random.default_rng(2)
    g = rng.normal(size=(5, 6))
    top = np.max(np.abs(g[3])) + 1.0
    g[3, 4], g[3, 1] = top, -top  # two coordinates tied at the max
    d = to_numpy(Lq(1).direction(_a(xp, g)))
    vertices = np.concatenate([np.eye(6), -np.eye(6)])  # the l1 ball's vertices +-e_j
    np.testing.assert_array_equal(np.sum(d * g, axis=-1), np.max(g @ vertices.T, axis=1))
    np.testing.assert_array_equal(np.count_nonzero(d, axis=-1), [1, 1, 1, 2, 1])
    np.testing.assert_array_equal(d[3, [1, 4]], [-0.5, 0.5])  # equal split, like cleverhans


@pytest.mark.parametrize("q", [1.2, 1.5, 2.0, 3.0, 6.0])
def test_lq_attains_the_max_over_the_ball(q, xp):
    rng = np.random.default_rng(3)
    g = rng.normal(size=(4, 5))
    d = to_numpy(Lq(q).direction(_a(xp, g)))
    attained = np.sum(d * g, axis=-1)
    qstar = q / (q - 1)
    # Hoelder: the max is ||g||_{q*}; the same quantity computed two ways, a few ulp apart.
    np.testing.assert_allclose(attained, _norm(g, qstar), rtol=1e-13)
    np.testing.assert_allclose(_norm(d, q), 1.0, rtol=1e-13)
    for gi, ai in zip(g, attained, strict=True):
        # An independent numerical maximisation (SLSQP from the normalised gradient and from a
        # random start) never beats the closed form by more than its own tolerance ...
        cons = {"type": "ineq", "fun": lambda x: 1.0 - np.sum(np.abs(x) ** q) ** (1 / q)}
        best = -np.inf
        for x0 in (gi / np.linalg.norm(gi, q), rng.normal(size=5) * 0.1):
            res = optimize.minimize(
                lambda x, gi=gi: -x @ gi,
                x0,
                constraints=[cons],
                method="SLSQP",
                options={"ftol": 1e-12, "maxiter": 500},
            )
            x = res.x / max(1.0, np.linalg.norm(res.x, q))  # back into the ball
            best = max(best, x @ gi)
        assert best <= ai + 1e-9
        # ... and reaches it to the optimiser's accuracy.
        assert best >= ai - 1e-5
        # Random points of the unit sphere never beat it either.
        u = rng.normal(size=(2000, 5))
        u /= np.linalg.norm(u, q, axis=1, keepdims=True)
        assert np.max(u @ gi) <= ai * (1 + 1e-12)


def test_lq_2_is_the_normalised_gradient(xp):
    rng = np.random.default_rng(4)
    g = rng.normal(size=(6, 8)) * np.logspace(-100, 100, 6)[:, None]
    d = to_numpy(Lq(2).direction(_a(xp, g)))
    # g / ||g||_2 computed by numpy without rescaling: a few ulp apart (scales kept inside the
    # range where ||g||_2 does not overflow).
    np.testing.assert_allclose(d, g / np.linalg.norm(g, axis=-1, keepdims=True), rtol=1e-14)


# --------------------------------------------------------------------------------------------
# sign, power, quantized against their definitions
# --------------------------------------------------------------------------------------------


def _zeta_reference(g, b):
    """Liu & Tsang, seeds/quantized-gradients-paper.txt sec. 3.2: M = max_i |g_i|,
    qg = zeta(b g / M), zeta(v) = sgn(v) if |v| < 1 else round(v); scaled by 1/b into the
    l_inf ball."""
    m = np.max(np.abs(g), axis=-1, keepdims=True)
    v = b * g / np.where(m > 0, m, 1.0)
    return np.where(np.abs(v) < 1, np.sign(v), np.round(v)) / b


@pytest.mark.parametrize("b", [1, 2, 3, 10, 1000])
def test_quantized_matches_the_paper(b, xp):
    rng = np.random.default_rng(5)
    g = rng.normal(size=(20, 9)) * rng.lognormal(sigma=3, size=(20, 1))
    g[0, 3] = 0.0
    d = to_numpy(Quantized(b).direction(_a(xp, g)))
    # Same integers (random data does not land within an ulp of a half-integer), divided by b.
    np.testing.assert_array_equal(d, _zeta_reference(g, b))
    nz = g != 0
    assert np.all(np.abs(d[nz]) >= 1 / b)  # zeta gives non-zero integers
    assert np.all(np.abs(d) <= 1.0)


def test_quantized_b1_and_power_r1_are_sign(xp):
    rng = np.random.default_rng(6)
    g = rng.normal(size=(10, 7))
    g[2, :3] = 0.0
    g[4] = 0.0
    s = to_numpy(Sign().direction(_a(xp, g)))
    for sch in (Quantized(1), Power(1), Lq(math.inf)):
        np.testing.assert_array_equal(to_numpy(sch.direction(_a(xp, g))), s)
    np.testing.assert_array_equal(s, np.sign(g))


@pytest.mark.parametrize("r", [1.5, 2.0, 3.0, 7.0])
def test_power_matches_definition(r, xp):
    rng = np.random.default_rng(7)
    g = rng.normal(size=(10, 7))
    d = to_numpy(Power(r).direction(_a(xp, g)))
    m = np.max(np.abs(g), axis=-1, keepdims=True)
    np.testing.assert_allclose(d, np.sign(g) * (np.abs(g) / m) ** (r - 1), rtol=1e-15)


def test_large_b_quantized_and_r2_power_tend_to_the_scaled_raw_gradient(xp):
    """docs/theory.md s.6: b -> inf quantized and r = 2 power both give g / ||g||_inf."""
    rng = np.random.default_rng(8)
    g = rng.normal(size=(10, 7))
    raw = g / np.max(np.abs(g), axis=-1, keepdims=True)
    np.testing.assert_allclose(to_numpy(Power(2).direction(_a(xp, g))), raw, rtol=1e-15)
    for b in (10, 1000, 10**6):
        d = to_numpy(Quantized(b).direction(_a(xp, g)))
        # rounding moves each entry by <= 1/(2b); zeta's floor at 1/b by < 1/b
        assert np.max(np.abs(d - raw)) <= 1.0 / b


# --------------------------------------------------------------------------------------------
# per-sample normalisation, scale invariance, norm bound, zero rows
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES, ids=SCHEME_IDS)
def test_batch_equals_rows_one_at_a_time(scheme, xp):
    rng = np.random.default_rng(9)
    g = rng.normal(size=(3, 4, 6)) * rng.lognormal(sigma=2, size=(3, 4, 1))
    g[0, 1] = 0.0
    d = to_numpy(scheme.direction(_a(xp, g)))
    for i, j in itertools.product(range(3), range(4)):
        # Each row is reduced on its own, so the arithmetic is identical: bitwise equal.
        np.testing.assert_array_equal(d[i, j], to_numpy(scheme.direction(_a(xp, g[i, j]))))
    # Scaling one sample's gradient changes no other sample's direction.
    g2 = g.copy()
    g2[1, 2] *= 1e6
    d2 = to_numpy(scheme.direction(_a(xp, g2)))
    mask = np.ones((3, 4), dtype=bool)
    mask[1, 2] = False
    np.testing.assert_array_equal(d2[mask], d[mask])


@pytest.mark.parametrize("scheme", SCHEMES, ids=SCHEME_IDS)
@HYP
@given(
    # magnitudes in [1e-3, 1e3] (or exact zeros) so that scale * g neither under- nor overflows
    g=hnp.arrays(np.float64, (3, 5), elements=_MODERATE),
    scale=st.floats(1e-100, 1e100),
)
def test_directions_invariant_to_positive_rescaling(scheme, xp, g, scale):
    d1 = to_numpy(scheme.direction(_a(xp, g)))
    d2 = to_numpy(scheme.direction(_a(xp, scale * g)))
    m = np.max(np.abs(g), axis=-1, keepdims=True)
    if isinstance(scheme, Quantized):
        # Rescaling perturbs b |g_j| / M by a few ulp, which flips round() only within a few ulp
        # of a half-integer; skip those rare rows rather than weaken the check.
        with np.errstate(invalid="ignore", divide="ignore"):
            v = scheme.b * np.abs(g) / m
        near_half = np.any(np.abs(v - np.floor(v) - 0.5) < 1e-9, axis=-1)
        d1, d2 = d1[~near_half], d2[~near_half]
    if isinstance(scheme, Lq) and scheme.q == 1:
        # The argmax is decided by exact comparisons, which rescaling can merge for entries an
        # ulp apart; compare the attained value instead of the split.
        np.testing.assert_allclose(np.sum(d1 * g, -1), np.sum(d2 * g, -1), rtol=1e-13)
        return
    # g / M is formed from rounded c g and c M: ~2 ulp, amplified by the power q* - 1 <= 2.
    np.testing.assert_allclose(d1, d2, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("scheme", SCHEMES, ids=SCHEME_IDS)
@HYP
@given(g=hnp.arrays(np.float64, (4, 6), elements=st.floats(-1e6, 1e6)))
def test_directions_lie_in_the_unit_ball(scheme, xp, g):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = to_numpy(scheme.direction(_a(xp, g)))
    assert not np.any(np.isnan(d))
    q = scheme.norm_q
    # the norm of the direction is 1 up to rounding in the normalisation
    assert np.all(_norm(d, q) <= 1 + 1e-12)
    nonzero = np.any(g != 0, axis=-1)
    np.testing.assert_allclose(_norm(d[nonzero], q), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(d[~nonzero], 0.0)
    np.testing.assert_array_equal(np.sign(d)[d != 0], np.sign(g)[d != 0])  # never reverses a sign


@pytest.mark.parametrize("scheme", SCHEMES, ids=SCHEME_IDS)
def test_zero_rows_give_zero_directions(scheme, xp):
    g = np.array([[0.0, 0.0, 0.0], [-0.0, 0.0, -0.0], [1e-300, 0.0, -2e-300], [1.0, 2.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 anywhere
        d = to_numpy(scheme.direction(_a(xp, g)))
    np.testing.assert_array_equal(d[:2], 0.0)
    assert np.all(np.isfinite(d))
    # tiny but nonzero gradients are normalised like any other
    np.testing.assert_allclose(d[2], to_numpy(scheme.direction(_a(xp, g[2] * 1e300))), rtol=1e-13)


# --------------------------------------------------------------------------------------------
# registry and parameter validation
# --------------------------------------------------------------------------------------------


def test_get_scheme_builds_each_registered_scheme():
    assert isinstance(get_scheme("sign"), Sign)
    assert isinstance(get_scheme("SIGN"), Sign)
    assert get_scheme("lq", q=2).q == 2
    assert get_scheme("lq", q=math.inf).norm_q == math.inf
    assert get_scheme("power", r=1.5).r == 1.5
    assert get_scheme("quantized", b=10).b == 10
    assert get_scheme("quantized", b=4.0).b == 4  # an integral float is an integer
    s = Quantized(3)
    assert get_scheme(s) is s
    assert isinstance(s, Scheme)


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (
            lambda: get_scheme("fgsm"),
            "unknown scheme 'fgsm'; valid names: sign, lq, power, quantized",
        ),
        (lambda: get_scheme(None), "unknown scheme None"),
        (lambda: get_scheme("quantized", b=0), "b must be a positive integer, got 0"),
        (lambda: get_scheme("quantized", b=2.5), "b must be a positive integer, got 2.5"),
        (lambda: get_scheme("quantized", b=-3), "b must be a positive integer, got -3"),
        (lambda: get_scheme("quantized", b=True), "b must be a positive integer, got True"),
        (lambda: get_scheme("quantized", b="4"), "b must be a positive integer, got '4'"),
        (lambda: get_scheme("quantized", b=math.inf), "b must be a positive integer, got inf"),
        (lambda: get_scheme("quantized"), r"'quantized' needs parameter\(s\) b"),
        (lambda: get_scheme("lq", q=0.5), r"q must satisfy 1 <= q <= inf, got 0\.5"),
        (lambda: get_scheme("lq", q=math.nan), "q must satisfy 1 <= q <= inf, got nan"),
        (lambda: get_scheme("lq"), r"'lq' needs parameter\(s\) q"),
        (lambda: get_scheme("power", r=0.9), r"r must satisfy 1 <= r < inf, got 0\.9"),
        (lambda: get_scheme("power", r=math.inf), "r must satisfy 1 <= r < inf, got inf"),
        (lambda: get_scheme("sign", q=2), r"'sign' got unexpected parameter\(s\) q"),
        (lambda: get_scheme(Sign(), q=2), r"cannot be applied to the instance Sign\(\)"),
    ],
)
def test_bad_scheme_arguments_raise(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
