"""The teacher data generator of the network studies (:mod:`gfgsm.nn.teacher`)."""

from __future__ import annotations

import numpy as np
import pytest

from gfgsm.families import get_family
from gfgsm.nn.teacher import TeacherNetwork

FAMILIES = ("gaussian", "binomial", "poisson")


def _teachers(family: str) -> list[TeacherNetwork]:
    return [
        TeacherNetwork(family, 3, (), intercept=0.2, weights=[[0.8, -0.4, 0.3]], sigma=1.5),
        TeacherNetwork(family, 3, (4,), seed=7, scale=1.0, intercept=0.3, sigma=0.7),
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_excess_risk_equals_monte_carlo_loss_difference(family):
    """The closed-form excess risk E[l(y, eta_hat) - l(y, eta) | x] (y integrated out) against
    a Monte Carlo average of loss differences over draws of y at fixed x.  Fixed seeds; the
    tolerance is 4 Monte Carlo SEs of that average (a 4-sigma band: a false failure has
    probability about 6e-5 per comparison, and the seeds make the test deterministic)."""
    fam = get_family(family)
    rng = np.random.default_rng(11)
    for teacher in _teachers(family):
        X = rng.standard_normal((40, teacher.d))
        eta = teacher.eta(X)
        eta_hat = eta + rng.normal(0.0, 0.4, size=(3, eta.size))  # three predictions
        exact = teacher.excess_risk(eta_hat, X)
        # y for each x drawn many times; eta of the teacher is exact at fixed X.
        Y = np.stack([teacher.draw_y(X, rng) for _ in range(20000)])  # (M, 40)
        diff = fam.loss(Y[:, None, :], eta_hat[None]) - fam.loss(Y[:, None, :], eta[None, None])
        per_draw = diff.mean(axis=-1)  # (M, 3): the test-sample average per draw of y
        mc = per_draw.mean(axis=0)
        se = per_draw.std(axis=0, ddof=1) / np.sqrt(per_draw.shape[0])
        assert np.all(np.abs(mc - exact) <= 4 * se), (family, teacher, mc, exact, se)


@pytest.mark.parametrize("family", FAMILIES)
def test_excess_risk_nonnegative_and_zero_at_truth(family):
    rng = np.random.default_rng(3)
    for teacher in _teachers(family):
        X = rng.standard_normal((500, teacher.d))
        eta = teacher.eta(X)
        assert teacher.excess_risk(eta, X) == 0.0
        eta_hat = eta[None] + rng.normal(0.0, 1.0, size=(5, eta.size))
        risk = teacher.excess_risk(eta_hat, X)
        assert risk.shape == (5,)
        assert np.all(risk > 0)


def test_excess_risk_closed_forms():
    """Gaussian (eta_hat - eta)^2 / 2 on the phi = 1 scale whatever sigma; binomial the
    Bernoulli KL divergence; poisson mu_hat - mu - mu (eta_hat - eta)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((7, 2))
    e0 = rng.normal(size=7)
    g = TeacherNetwork("gaussian", 2, (), weights=[[1.0, -1.0]], sigma=3.0)
    eta = g.eta(X)
    np.testing.assert_allclose(g.excess_risk(eta + e0, X), np.mean(e0 ** 2 / 2), rtol=1e-12)
    b = TeacherNetwork("binomial", 2, (), weights=[[1.0, -1.0]], intercept=-0.5)
    p, ph = 1 / (1 + np.exp(-b.eta(X))), 1 / (1 + np.exp(-(b.eta(X) + e0)))
    kl = p * np.log(p / ph) + (1 - p) * np.log((1 - p) / (1 - ph))
    np.testing.assert_allclose(b.excess_risk(b.eta(X) + e0, X), kl.mean(), rtol=1e-10)
    po = TeacherNetwork("poisson", 2, (), weights=[[0.5, -0.5]], intercept=0.5)
    mu, muh = np.exp(po.eta(X)), np.exp(po.eta(X) + e0)
    np.testing.assert_allclose(po.excess_risk(po.eta(X) + e0, X),
                               np.mean(muh - mu - mu * e0), rtol=1e-10)


@pytest.mark.parametrize("family", FAMILIES)
def test_draws_reproducible_from_a_seed(family):
    t = TeacherNetwork(family, 4, (3,), seed=9)
    X1, y1 = t.draw(300, np.random.default_rng(42))
    X2, y2 = t.draw(300, np.random.default_rng(42))
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, _ = t.draw(300, np.random.default_rng(43))
    assert not np.array_equal(X1, X3)
    assert X1.shape == (300, 4) and y1.shape == (300,)
    if family == "binomial":
        assert set(np.unique(y1)) <= {0.0, 1.0}
    if family == "poisson":
        assert np.all(y1 >= 0) and np.all(y1 == np.round(y1))


def test_draws_follow_the_teacher_mean():
    """E[y | x] = mu(x): the mean residual of 200000 draws is within 4 of its SEs of 0."""
    for family in FAMILIES:
        t = TeacherNetwork(family, 3, (4,), seed=1, scale=1.0)
        X, y = t.draw(200000, np.random.default_rng(8))
        r = y - t.mean(X)
        assert abs(r.mean()) <= 4 * r.std() / np.sqrt(r.size), family


def test_weights_from_seed_are_fixed_and_repr_is_exact():
    a = TeacherNetwork("binomial", 5, (4,), seed=2, scale=2.0)
    b = TeacherNetwork("binomial", 5, (4,), seed=2, scale=2.0)
    c = TeacherNetwork("binomial", 5, (4,), seed=3, scale=2.0)
    assert repr(a) == repr(b) and repr(a) != repr(c)
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)
    # The repr pins the exact weights through a hash of their bytes: a change in the last bit
    # of one weight changes it.
    w = [np.array(x) for x in a.weights]
    w[0][0, 0] = np.nextafter(w[0][0, 0], np.inf)
    d = TeacherNetwork("binomial", 5, (4,), seed=2, scale=2.0, weights=w)
    e = TeacherNetwork("binomial", 5, (4,), seed=2, scale=2.0, weights=list(a.weights))
    assert d.weights_hash() != a.weights_hash() and e.weights_hash() == a.weights_hash()
    assert "weights_sha256" in repr(a)


def test_glm_teacher_theta0_and_odd_network():
    t = TeacherNetwork("poisson", 3, (), intercept=0.7, weights=[[0.1, -0.2, 0.3]])
    np.testing.assert_array_equal(t.theta0, [0.7, 0.1, -0.2, 0.3])
    X = np.random.default_rng(0).standard_normal((50, 3))
    np.testing.assert_allclose(t.eta(X), 0.7 + X @ [0.1, -0.2, 0.3], rtol=1e-14)
    odd = TeacherNetwork("binomial", 3, (4,), seed=1, hidden_bias=0.0)
    np.testing.assert_allclose(odd.eta(-X), -odd.eta(X), rtol=1e-14, atol=1e-15)
    with pytest.raises(AttributeError):
        _ = odd.theta0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"family": "gamma"}, "family"),
        ({"family": "binomial", "d": 0}, "d"),
        ({"family": "binomial", "d": 2.5}, "d"),
        ({"family": "gaussian", "sigma": 0.0}, "sigma"),
        ({"family": "gaussian", "sigma": -1.0}, "sigma"),
        ({"family": "gaussian", "hidden": (0,)}, "hidden"),
        ({"family": "gaussian", "d": 2, "weights": [[1.0, 2.0, 3.0]]}, "weights"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TeacherNetwork(**kwargs)


def test_bad_draw_and_risk_shapes():
    t = TeacherNetwork("gaussian", 2, ())
    with pytest.raises(ValueError, match="n"):
        t.draw(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="eta_hat"):
        t.excess_risk(np.zeros(3), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="X"):
        t.eta(np.zeros((4, 3)))
