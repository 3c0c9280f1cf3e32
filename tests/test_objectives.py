"""The objectives of docs/theory.md s.2-3 against independent NumPy computations.

Every reference value here is written from the formulas, not from gfgsm's code:

* the worst case over the l_inf ball is a brute-force max over the ``2^p`` corners
  ``delta in {-eps, +eps}^p`` of ``l(y_i, a + (x_i + delta)' beta)`` (for a linear predictor the
  loss is convex in ``delta``, so its max over the box is attained at a corner);
* the losses are the textbook ones (``softplus(eta) - y eta``, ``(y - eta)^2 / 2``,
  ``exp(eta) - y eta``), written with NumPy below.

Array-level checks run on both namespaces of the ``xp`` fixture (NumPy and array_api_strict).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gfgsm
from gfgsm._backend import to_numpy
from gfgsm.families import get_family
from gfgsm.objectives import Objective, make_objective

FAMILIES = ["gaussian", "binomial", "poisson"]

# Value comparisons: both sides evaluate the same closed form in float64 with a different order
# of operations (eta - s P versus a + (x + delta)' beta, softplus(-eta) versus softplus(eta) - eta).
# The loss values here are O(0.1 .. 10) with |eta| <= ~6, so rounding differences are a few ulp
# of |eta| times |dl/deta| / l: well below 1e-12 relative.
RTOL_VALUE = 1e-12


# --------------------------------------------------------------------------------------------
# independent references
# --------------------------------------------------------------------------------------------


def np_loss(family: str, y: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """The per-observation loss on the phi = 1 scale, written independently of gfgsm."""
    if family == "binomial":
        return np.logaddexp(0.0, eta) - y * eta
    if family == "gaussian":
        return (y - eta) ** 2 / 2.0
    if family == "poisson":
        return np.exp(eta) - y * eta
    raise AssertionError(family)


def np_mean(family: str, eta: np.ndarray) -> np.ndarray:
    if family == "binomial":
        return 1.0 / (1.0 + np.exp(-eta))
    if family == "gaussian":
        return eta
    return np.exp(eta)


def corners(p: int, eps: float) -> np.ndarray:
    """All ``2^p`` corners of the l_inf ball of radius ``eps`` in R^p, shape (2^p, p)."""
    return eps * np.array(list(itertools.product([-1.0, 1.0], repeat=p)))


def brute_force_worst(family, X, y, coef, intercept, eps):
    """``max_{delta in corners} l(y_i, a + (x_i + delta)' beta)`` for every i, shape (n,)."""
    D = corners(X.shape[1], eps)  # (K, p)
    eta_k = intercept + (X[None, :, :] + D[:, None, :]) @ coef  # (K, n)
    return np.max(np_loss(family, y[None, :], eta_k), axis=0)


def make_data(family: str, n: int, p: int, seed: int):
    """Random theta, random X, y drawn from the family at theta (|eta| kept moderate)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    coef = rng.uniform(-1.0, 1.0, p) / np.sqrt(p)
    intercept = float(rng.uniform(-0.5, 0.5))
    eta = intercept + X @ coef
    if family == "gaussian":
        y = eta + rng.standard_normal(n)
    elif family == "binomial":
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return X, y, coef, intercept


def per_sample(xp, family, X, y, coef, intercept, eps, adversary="fgsm", clean_weight=0.0):
    """gfgsm's per-sample G-FGSM objective (l1, budget eps) through make_objective, as NumPy."""
    obj = make_objective(family, "gfgsm", adversary=adversary, clean_weight=clean_weight)
    eta = intercept + X @ coef
    P = eps * np.sum(np.abs(coef))
    out = obj.per_sample(xp.asarray(y[None, :]), xp.asarray(eta[None, :]), xp.asarray([P]))
    return to_numpy(out)[0]


def mean_objective(xp, family, X, y, coef, intercept, **kw):
    return gfgsm.objective(
        xp.asarray(X), xp.asarray(y), xp.asarray(coef), intercept, family=family, **kw
    )


# --------------------------------------------------------------------------------------------
# FGSM is the brute-force worst case (binomial, gaussian); poisson exact vs fgsm
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["binomial", "gaussian"])
@pytest.mark.parametrize("p", [1, 2, 3, 4, 5, 6])
def test_fgsm_equals_brute_force_worst_case(family, p, xp):
    X, y, coef, a = make_data(family, 30, p, seed=100 + p)
    for eps in (0.05, 0.3, 1.0):
        ref = brute_force_worst(family, X, y, coef, a, eps)
        ps = per_sample(xp, family, X, y, coef, a, eps)
        np.testing.assert_allclose(ps, ref, rtol=RTOL_VALUE, atol=0)
        Q = mean_objective(xp, family, X, y, coef, a, method="gfgsm", lam=eps)
        np.testing.assert_allclose(Q, ref.mean(), rtol=RTOL_VALUE, atol=0)
        # The FGSM perturbation is strictly adversarial: above the clean loss everywhere.
        assert np.all(ps > np_loss(family, y, a + X @ coef))


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5, 6])
def test_poisson_exact_adversary_equals_brute_force(p, xp):
    X, y, coef, a = make_data("poisson", 30, p, seed=200 + p)
    for eps in (0.05, 0.3, 1.0):
        ref = brute_force_worst("poisson", X, y, coef, a, eps)
        ps = per_sample(xp, "poisson", X, y, coef, a, eps, adversary="exact")
        np.testing.assert_allclose(ps, ref, rtol=RTOL_VALUE, atol=0)
        Q = mean_objective(
            xp, "poisson", X, y, coef, a, method="gfgsm", lam=eps, adversary="exact"
        )
        np.testing.assert_allclose(Q, ref.mean(), rtol=RTOL_VALUE, atol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_default_adversary_is_the_brute_force_worst_case(family, xp):
    """``adversary="auto"`` (the default) is the worst case for every family, poisson included."""
    X, y, coef, a = make_data(family, 30, 4, seed=300)
    for eps in (0.05, 0.3, 1.0):
        ref = brute_force_worst(family, X, y, coef, a, eps)
        Q = mean_objective(xp, family, X, y, coef, a, method="gfgsm", lam=eps)
        np.testing.assert_allclose(Q, ref.mean(), rtol=RTOL_VALUE, atol=0)
        ps = per_sample(xp, family, X, y, coef, a, eps, adversary="auto")
        np.testing.assert_allclose(ps, ref, rtol=RTOL_VALUE, atol=0)


def test_auto_adversary_resolution_and_bad_values():
    from gfgsm.objectives import resolve_adversary

    fams = {f: get_family(f) for f in FAMILIES}
    assert [resolve_adversary("auto", fams[f]) for f in FAMILIES] == ["fgsm", "fgsm", "exact"]
    assert make_objective("poisson", "gfgsm").kind == "max"
    assert make_objective("poisson", "gfgsm", adversary="fgsm").kind == "sign"
    assert make_objective("binomial", "gfgsm").kind == "sign"
    assert make_objective("poisson", "pl", adversary="auto").kind == "pl"
    with pytest.raises(ValueError, match="unknown adversary 'worst'"):
        make_objective("poisson", "gfgsm", adversary="worst")
    with pytest.raises(ValueError, match="apply to method='gfgsm' only"):
        make_objective("poisson", "pl", adversary="exact")


@pytest.mark.parametrize("p", [1, 3, 6])
def test_poisson_fgsm_is_the_sign_perturbation_and_can_miss_the_worst_case(p, xp):
    X, y, coef, a = make_data("poisson", 30, p, seed=300 + p)
    eta = a + X @ coef
    # budget with P = eps |beta|_1 = 1.5: FGSM misses the worst case for mu < y < mu sinh(P)/P,
    # i.e. y in (mu, 1.42 mu), which some of the 30 samples hit
    eps = 1.5 / np.sum(np.abs(coef))
    P = eps * np.sum(np.abs(coef))
    s = np.sign(y - np.exp(eta))
    ref_fgsm = np_loss("poisson", y, eta - s * P)
    ps = per_sample(xp, "poisson", X, y, coef, a, eps, adversary="fgsm")
    np.testing.assert_allclose(ps, ref_fgsm, rtol=RTOL_VALUE, atol=0)
    Q = mean_objective(xp, "poisson", X, y, coef, a, method="gfgsm", lam=eps, adversary="fgsm")
    np.testing.assert_allclose(Q, ref_fgsm.mean(), rtol=RTOL_VALUE, atol=0)

    worst = brute_force_worst("poisson", X, y, coef, a, eps)
    # FGSM is one of the corners, so never above the worst case ...
    assert np.all(ps <= worst + RTOL_VALUE * np.abs(worst))
    # ... and strictly below it where y is just above mu: the sign says "push eta down", but
    # exp(eta) is steeper upwards, so eta + P costs more (docs/theory.md s.2).
    gap = worst - ps
    assert gap.max() > 1e-3, f"no sample where FGSM misses the worst case (max gap {gap.max()})"


def test_poisson_fgsm_strictly_below_exact_hand_case(xp):
    """One sample, y = 1, mu = exp(-0.01) < 1, so s = +1 and FGSM moves eta to eta - P.

    With P = 0.5 (|beta|_1 = 1, eps = 0.5): l(eta - P) = e^-0.51 + 0.51 = 1.11046...,
    l(eta + P) = e^0.49 - 0.49 = 1.14237...: the exact worst case is the other side."""
    X = np.array([[1.0]])
    y = np.array([1.0])
    coef = np.array([1.0])
    a = -1.01  # eta = -0.01
    fgsm = mean_objective(xp, "poisson", X, y, coef, a, method="gfgsm", lam=0.5,
                          adversary="fgsm")
    exact = mean_objective(
        xp, "poisson", X, y, coef, a, method="gfgsm", lam=0.5, adversary="exact"
    )
    np.testing.assert_allclose(fgsm, np.exp(-0.51) + 0.51, rtol=RTOL_VALUE)
    np.testing.assert_allclose(exact, np.exp(0.49) - 0.49, rtol=RTOL_VALUE)
    assert exact - fgsm > 0.03


@pytest.mark.parametrize("family", ["binomial", "gaussian"])
def test_exact_adversary_is_fgsm_for_binomial_and_gaussian(family, xp):
    X, y, coef, a = make_data(family, 30, 4, seed=7)
    for eps in (0.1, 0.7):
        q1 = mean_objective(xp, family, X, y, coef, a, method="gfgsm", lam=eps)
        q2 = mean_objective(
            xp, family, X, y, coef, a, method="gfgsm", lam=eps, adversary="exact"
        )
        np.testing.assert_allclose(q1, q2, rtol=RTOL_VALUE)


# --------------------------------------------------------------------------------------------
# closed forms (Goodfellow; docs/theory.md s.2)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 4, 10])
def test_goodfellow_closed_form_binomial(p, xp):
    X, y, coef, a = make_data("binomial", 50, p, seed=400 + p)
    eta = a + X @ coef
    for lam in (0.0, 0.02, 0.5, 3.0):
        ref = np.mean(np.logaddexp(0.0, -(2 * y - 1) * eta + lam * np.sum(np.abs(coef))))
        Q = mean_objective(xp, "binomial", X, y, coef, a, method="gfgsm", lam=lam)
        np.testing.assert_allclose(Q, ref, rtol=RTOL_VALUE)


@pytest.mark.parametrize("p", [1, 4, 10])
def test_goodfellow_closed_form_gaussian(p, xp):
    X, y, coef, a = make_data("gaussian", 50, p, seed=500 + p)
    eta = a + X @ coef
    for lam in (0.0, 0.02, 0.5, 3.0):
        ref = np.mean((np.abs(y - eta) + lam * np.sum(np.abs(coef))) ** 2 / 2.0)
        Q = mean_objective(xp, "gaussian", X, y, coef, a, method="gfgsm", lam=lam)
        np.testing.assert_allclose(Q, ref, rtol=RTOL_VALUE)


# --------------------------------------------------------------------------------------------
# clean_weight, PL, other penalties
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "adversary"),
    [("binomial", "fgsm"), ("gaussian", "fgsm"), ("poisson", "fgsm"), ("poisson", "exact")],
)
@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_clean_weight_mixes_clean_and_adversarial(family, adversary, alpha, xp):
    X, y, coef, a = make_data(family, 40, 3, seed=600)
    eps = 0.4
    eta = a + X @ coef
    clean = np.mean(np_loss(family, y, eta))
    if adversary == "exact" or family != "poisson":
        adv = np.mean(brute_force_worst(family, X, y, coef, a, eps))
    else:
        s = np.sign(y - np.exp(eta))
        adv = np.mean(np_loss(family, y, eta - s * eps * np.sum(np.abs(coef))))
    ref = alpha * clean + (1 - alpha) * adv
    Q = mean_objective(
        xp, family, X, y, coef, a, method="gfgsm", lam=eps, adversary=adversary,
        clean_weight=alpha,
    )
    np.testing.assert_allclose(Q, ref, rtol=RTOL_VALUE)
    ps = per_sample(xp, family, X, y, coef, a, eps, adversary=adversary, clean_weight=alpha)
    np.testing.assert_allclose(ps.mean(), ref, rtol=RTOL_VALUE)


@pytest.mark.parametrize("family", FAMILIES)
def test_pl_objective_is_mean_loss_plus_l1(family, xp):
    X, y, coef, a = make_data(family, 40, 5, seed=700)
    eta = a + X @ coef
    for lam in (0.0, 0.1, 2.0):
        if family == "gaussian":
            ref = np.sum((y - eta) ** 2) / (2 * len(y)) + lam * np.sum(np.abs(coef))
        else:
            ref = np.mean(np_loss(family, y, eta)) + lam * np.sum(np.abs(coef))
        R = mean_objective(xp, family, X, y, coef, a, method="pl", lam=lam)
        np.testing.assert_allclose(R, ref, rtol=RTOL_VALUE)


def _scad(t, lam, a=3.7):
    return np.where(
        t <= lam,
        lam * t,
        np.where(t <= a * lam, (2 * a * lam * t - t**2 - lam**2) / (2 * (a - 1)),
                 (a + 1) * lam**2 / 2),
    )


def _mcp(t, lam, g=3.0):
    return np.where(t <= g * lam, lam * t - t**2 / (2 * g), g * lam**2 / 2)


@pytest.mark.parametrize(
    ("penalty", "params", "pfun"),
    [
        ("scad", {}, _scad),
        ("mcp", {}, _mcp),
        ("lr", {"r": 0.5}, lambda t, lam: lam * t**0.5),
        ("lr", {"r": 2.0}, lambda t, lam: lam * t**2),
    ],
)
@pytest.mark.parametrize("family", FAMILIES)
def test_objectives_with_separable_penalties(family, penalty, params, pfun, xp):
    """Q_n = mean l(y, eta - s P) and R_n = mean l + P with P = sum_j p_lam(|b_j|) (s.3)."""
    X, y, coef, a = make_data(family, 40, 5, seed=800)
    coef = coef * np.array([0.1, 1.0, 3.0, 0.0, -2.0])  # every SCAD/MCP regime at lam = 0.5
    eta = a + X @ coef
    lam = 0.5
    P = float(np.sum(pfun(np.abs(coef), lam)))
    s = np.sign(y - np_mean(family, eta))
    if family == "binomial":
        s = 2 * y - 1
    kw = dict(penalty=penalty, **params)
    R = mean_objective(xp, family, X, y, coef, a, method="pl", lam=lam, **kw)
    np.testing.assert_allclose(R, np.mean(np_loss(family, y, eta)) + P, rtol=RTOL_VALUE)
    Q = mean_objective(xp, family, X, y, coef, a, method="gfgsm", lam=lam, adversary="fgsm",
                       **kw)
    np.testing.assert_allclose(Q, np.mean(np_loss(family, y, eta - s * P)), rtol=RTOL_VALUE)
    if family == "gaussian":
        # sign(y - eta) is the worst case: the closed form (|r| + P)^2 / 2
        ref = np.mean((np.abs(y - eta) + P) ** 2 / 2)
        np.testing.assert_allclose(Q, ref, rtol=RTOL_VALUE)


# --------------------------------------------------------------------------------------------
# partial derivatives in (eta, P) against central finite differences
# --------------------------------------------------------------------------------------------
#
# psi(eta_i, P) is evaluated elementwise: psi_i depends on eta_i only, so shifting the whole
# eta array by h differentiates every sample at once; P is one number per row (R,).
#
# Error budget of a central difference (f(x + h) - f(x - h)) / 2h:
#   truncation h^2 |f'''| / 6  +  rounding ~ eps_mach |f| / h.
# First derivatives are differenced from values (h = 1e-5: truncation ~1e-10 |f'''|, rounding
# ~2e-11 |f|); second derivatives are differenced from the analytic first partials (the same
# budget one order up).  With |f|, |f'''| = O(10) for these data, the error is below ~1e-9; the
# tolerance 1e-6 (relative to 1 + |value|) leaves a factor 1000 of headroom and is still far
# below any real mistake (a missing factor, sign or term is an O(1e-2 .. 1) error).
# For the smoothed worst case (smooth = 1e-2) the third derivative of sqrt(rho^2 + s^2) is
# ~P / s^2 = O(1e4): with h = 1e-6 the truncation error is ~1e-8, rounding ~1e-10 |f| / 1e-6.

RTOL_FD = 1e-6


def _fd_data(family: str, seed: int = 0, near_kink: bool = False):
    rng = np.random.default_rng(seed)
    R, n = 2, 25
    eta = rng.uniform(-2.0, 2.0, (R, n))
    if family == "gaussian":
        y = eta + rng.standard_normal((R, n))
        if near_kink:
            # residuals right at / near the kink of the worst case (smoothed there)
            y[0, :3] = eta[0, :3] + np.array([0.0, 1e-3, -5e-3])
    elif family == "binomial":
        y = (rng.random((R, n)) < 0.5).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
        # keep the FGSM sign away from its jump (|y - mu| > 1e-3) so s is locally constant
        mu = np.exp(eta)
        close = np.abs(y - mu) < 1e-3
        eta = np.where(close, eta + 0.01, eta)
    P = np.array([0.3, 0.8])
    return y, eta, P


def _close(fd, an, name):
    err = np.max(np.abs(fd - an) / (1.0 + np.abs(an)))
    assert err <= RTOL_FD, f"{name}: max relative error {err:.3g} > {RTOL_FD}"


def _check_partials(xp, obj: Objective, y, eta, P, value_fn, smooth, h1, h2):
    Y, E, PP = xp.asarray(y), xp.asarray(eta), xp.asarray(P)
    sm = xp.asarray(np.full(P.shape, smooth)) if smooth else 0.0
    pe, pP, pee, peP, pPP = (to_numpy(t) for t in obj.partials(Y, E, PP, sm))

    def f(de=0.0, dP=0.0):
        return to_numpy(value_fn(Y, E + de, PP + dP, sm))

    def first(de=0.0, dP=0.0):
        out = obj.partials(Y, E + de, PP + dP, sm)
        return to_numpy(out[0]), to_numpy(out[1])

    _close((f(de=h1) - f(de=-h1)) / (2 * h1), pe, "psi_eta")
    _close((f(dP=h1) - f(dP=-h1)) / (2 * h1), pP * np.ones_like(pe), "psi_P")
    e_p, P_p = first(de=h2)
    e_m, P_m = first(de=-h2)
    _close((e_p - e_m) / (2 * h2), pee, "psi_eta_eta")
    _close((P_p - P_m) / (2 * h2), peP, "psi_eta_P (from psi_P)")
    e_p, P_p = first(dP=h2)
    e_m, P_m = first(dP=-h2)
    _close((e_p - e_m) / (2 * h2), peP, "psi_eta_P (from psi_eta)")
    _close((P_p - P_m) / (2 * h2), pPP, "psi_P_P")
    # second derivatives straight from values too (looser: rounding ~ eps |f| / h^2)
    h = 1e-4
    d2 = (f(de=h) - 2 * f() + f(de=-h)) / h**2
    err = np.max(np.abs(d2 - pee) / (1 + np.abs(pee)))
    assert err < 1e-4, f"psi_eta_eta from values: {err:.3g}"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_partials_sign_kind(family, alpha, xp):
    fam = get_family(family)
    obj = Objective(fam, "sign", alpha)
    y, eta, P = _fd_data(family, seed=1)
    _check_partials(xp, obj, y, eta, P, lambda Y, E, PP, sm: obj.per_sample(Y, E, PP), 0.0,
                    1e-5, 1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_partials_pl_kind(family, xp):
    obj = make_objective(family, "pl")
    assert obj.kind == "pl"
    y, eta, P = _fd_data(family, seed=2)
    _check_partials(xp, obj, y, eta, P, lambda Y, E, PP, sm: obj.per_sample(Y, E, PP), 0.0,
                    1e-5, 1e-5)


@pytest.mark.parametrize("family", ["gaussian", "poisson"])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_partials_max_kind_smoothed(family, alpha, xp):
    """kind "max" (binomial never uses it: its FGSM sign is exact and smooth, and Binomial has
    no adversarial_residual); derivatives of the smoothed psi with smooth = 1e-2."""
    obj = Objective(get_family(family), "max", alpha)
    y, eta, P = _fd_data(family, seed=3, near_kink=True)

    def psi(Y, E, PP, sm):
        return obj._smoothed_psi(Y, E, PP, sm)[0]

    _check_partials(xp, obj, y, eta, P, psi, 1e-2, 1e-6, 1e-6)


@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_smoothed_value_bounds_the_worst_case(family, xp):
    """smoothed_value = mean of _smoothed_psi, and value <= smoothed <= value + P * smooth."""
    obj = make_objective(family, "gfgsm", adversary="exact")
    assert obj.kind == "max" and obj.has_kinks
    y, eta, P = _fd_data(family, seed=4)
    Y, E, PP = xp.asarray(y), xp.asarray(eta), xp.asarray(P)
    for smooth in (1e-1, 1e-2, 1e-7):
        sm = xp.asarray(np.full(P.shape, smooth))
        sv = to_numpy(obj.smoothed_value(Y, E, PP, sm))
        np.testing.assert_allclose(
            sv, to_numpy(obj._smoothed_psi(Y, E, PP, sm)[0]).mean(axis=-1), rtol=1e-14
        )
        v = to_numpy(obj.value(Y, E, PP))
        ref = np.mean(np.maximum(np_loss(family, y, eta - P[:, None]),
                                 np_loss(family, y, eta + P[:, None])), axis=-1)
        np.testing.assert_allclose(v, ref, rtol=RTOL_VALUE)
        slack = 1e-12 * np.abs(v)
        assert np.all(sv >= v - slack)
        assert np.all(sv <= v + P * smooth + slack)


def test_smoothed_residual_does_not_overflow_far_out():
    """At a far trial point (poisson, eta = 400: mu ~ 5e173) rho^2 overflows; the smoothed
    |rho| is then |rho| itself, as np.hypot (which cannot overflow here) gives, with no
    RuntimeWarning; at ordinary points the value is sqrt(rho^2 + smooth^2) to the last bit."""
    import warnings

    from gfgsm.objectives import make_objective

    obj = make_objective("poisson", "gfgsm", "exact")
    fam = obj.family
    y = np.array([[0.0, 3.0, 1.0, 2.0]])
    eta = np.array([[400.0, 1.0, 0.5, -2.0]])
    P = np.array([0.2])
    sm = np.array([0.1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        psi, _ = obj._smoothed_psi(y, eta, P, sm)
    rho = fam.adversarial_residual(y, eta, P[..., None])[0]
    lm, lp = fam.loss(y, eta - P[..., None]), fam.loss(y, eta + P[..., None])
    want = (lm + lp) / 2.0 + P[..., None] * np.hypot(rho, sm[..., None])
    np.testing.assert_allclose(psi, want, rtol=1e-15)
    r = rho[:, 1:]
    ordinary = (lm[:, 1:] + lp[:, 1:]) / 2.0 + P[..., None] * np.sqrt(r * r + 0.1 * 0.1)
    np.testing.assert_array_equal(psi[:, 1:], ordinary)
    assert np.isfinite(psi).all()
