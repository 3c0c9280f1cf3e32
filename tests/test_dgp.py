"""DGP: the law of y | x against scipy, the documented random streams, backends, bad input.

Distribution checks use fixed seeds and either a 4-standard-error band (SE computed in the test
from the known law) or a Kolmogorov-Smirnov test at level 1e-3; both fail for a correct sampler
with negligible probability and are deterministic here.
"""

from __future__ import annotations

import math

import array_api_compat.numpy as xnp
import array_api_strict as xs
import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st

from gfgsm._backend import get_namespace, namespace_name, to_numpy
from gfgsm.designs import BernoulliDesign, CustomDesign, GaussianDesign, UniformDesign
from gfgsm.dgp import DGP, get_noise
from gfgsm.families import Binomial, Gaussian
from gfgsm.rng import Stream, key_from_seed

COEF = [0.8, -0.5, 0.0]


def _laplace(shape, rng):
    """Standardized Laplace errors (variance 2 b^2 = 1)."""
    return rng.laplace(scale=1 / math.sqrt(2), size=shape)


# --------------------------------------------------------------------------------------------
# the error laws: standardized, and their E|e|, E sign(e) against numerical integration
# --------------------------------------------------------------------------------------------

LAWS = {
    "normal": (get_noise("normal"), st.norm()),
    "t3": (get_noise("t"), st.t(3, scale=math.sqrt(1 / 3))),
    "t5": (get_noise("t", df=5), st.t(5, scale=math.sqrt(3 / 5))),
    "skewed": (get_noise("skewed"), st.expon(loc=-1.0)),
}


@pytest.mark.parametrize("name", list(LAWS))
def test_noise_law_constants_against_quadrature(name):
    law, dist = LAWS[name]

    def integral(f):
        lo, hi = dist.support()
        # split at 0, where |e| and sign(e) have their kinks
        return sum(si.quad(lambda u: f(u) * dist.pdf(u), a, b, limit=200)[0]
                   for a, b in ((lo, 0.0), (0.0, hi)))

    # quad on these smooth integrands is accurate to ~1e-9 (its own error estimate)
    assert integral(lambda u: u) == pytest.approx(0.0, abs=1e-8)
    assert integral(lambda u: u * u) == pytest.approx(1.0, rel=1e-7)  # standardized
    assert law.abs_mean == pytest.approx(integral(abs), rel=1e-8)
    assert law.sign_mean == pytest.approx(integral(np.sign), abs=1e-9)


def test_noise_law_named_constants():
    assert get_noise("normal").abs_mean == math.sqrt(2 / math.pi)
    assert get_noise("t").abs_mean == pytest.approx(2 / math.pi, rel=1e-14)  # df = 3
    assert get_noise("skewed").abs_mean == pytest.approx(2 / math.e, rel=1e-15)
    assert get_noise("skewed").sign_mean == pytest.approx(2 / math.e - 1, rel=1e-15)


@pytest.mark.parametrize("name", list(LAWS))
def test_gaussian_errors_follow_the_law(name):
    law, dist = LAWS[name]
    sigma = 2.5
    kw = {"noise": "t", "df": law.df} if name.startswith("t") else {"noise": name}
    dgp = DGP("gaussian", GaussianDesign(3, 0.3), COEF, 0.4, sigma=sigma, **kw)
    X, y = dgp.sample(20_000, 1)
    e = (y - 0.4 - X @ np.array(COEF)) / sigma
    assert st.kstest(e, dist.cdf).pvalue > 1e-3


def test_gaussian_stream_is_design_then_errors():
    """Replication r: X from variable "x" of counter r, then e from variable "y"."""
    d = GaussianDesign(3, 0.5)
    root = Stream.create(key_from_seed(np.random.SeedSequence(9)), [2], xnp)
    ys = root.child("y")
    for noise, draw in [
        ("normal", lambda n: ys.normal((n,))[0]),
        ("skewed", lambda n: ys.exponential((n,))[0] - 1.0),
        # a callable error law draws on the host from replication r's own Generator
        (_laplace, lambda n: _laplace((n,), ys.host_generators()[0])),
    ]:
        dgp = DGP("gaussian", d, COEF, -0.2, noise=noise, sigma=0.7)
        X, y = dgp.sample(15, 9, R=4)
        X2 = d.draw_stream(15, root.child("x"))[0]
        np.testing.assert_array_equal(X[2], X2)
        # the same formula as DGP.eta_stream, so equal to the last bit
        eta = -0.2 + (X2[:, 0] * 0.8 + X2[:, 1] * -0.5 + X2[:, 2] * 0.0)
        np.testing.assert_array_equal(y[2], eta + 0.7 * draw(15))
        np.testing.assert_allclose(eta, -0.2 + X2 @ np.array(COEF), rtol=0, atol=1e-14)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_conditional_mean_of_y(family):
    """E[y - mu | x] = 0: mean(y - mu) and mean((y - mu) x_j) within 4 SE (Var(y|x) = b'')."""
    dgp = DGP(family, GaussianDesign(3, 0.5), COEF, 0.3)
    X, y = dgp.sample(50_000, 2)
    eta = 0.3 + X @ np.array(COEF)
    mu = 1 / (1 + np.exp(-eta)) if family == "binomial" else np.exp(eta)
    var = mu * (1 - mu) if family == "binomial" else mu
    Xt = np.column_stack([np.ones(len(y)), X])
    est = (y - mu) @ Xt / len(y)
    se = np.sqrt(var @ Xt**2) / len(y)
    assert np.all(np.abs(est) <= 4 * se)
    support = {0.0, 1.0} if family == "binomial" else None
    if support:
        assert set(np.unique(y)) == support
    else:
        assert np.all((y >= 0) & (y == np.round(y)))


# --------------------------------------------------------------------------------------------
# shapes, streams, backends
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["gaussian", "binomial", "poisson"])
def test_shapes_and_replication_streams(family):
    d = UniformDesign(3)
    dgp = DGP(family, d, COEF, 0.1)
    X, y = dgp.sample(25, 4)
    assert X.shape == (25, 3) and y.shape == (25,)
    X5, y5 = dgp.sample(25, 4, R=5)
    X9, y9 = dgp.sample(25, 4, R=9)
    assert X5.shape == (5, 25, 3) and y5.shape == (5, 25)
    np.testing.assert_array_equal(X5, X9[:5])
    np.testing.assert_array_equal(y5, y9[:5])
    np.testing.assert_array_equal(X, X5[0])
    np.testing.assert_array_equal(y, y5[0])
    np.testing.assert_array_equal(X9, d.sample(25, 4, R=9))  # X is the design's own draw
    np.testing.assert_array_equal(y5, dgp.sample(25, 4, R=5)[1])
    assert not np.array_equal(y5, dgp.sample(25, 5, R=5)[1])


@pytest.mark.parametrize("family", ["gaussian", "binomial", "poisson"])
def test_array_api_strict_gives_the_numpy_numbers(family):
    dgp = DGP(family, GaussianDesign(3, 0.2), COEF, 0.1)
    X, y = dgp.sample(40, 6, R=3, backend="array_api_strict")
    assert namespace_name(get_namespace(X, y)) == "array_api_strict"
    assert X.dtype == xs.float64 and y.dtype == xs.float64
    Xn, yn = dgp.sample(40, 6, R=3)
    assert isinstance(Xn, np.ndarray) and isinstance(yn, np.ndarray)
    np.testing.assert_array_equal(to_numpy(X), Xn)
    np.testing.assert_array_equal(to_numpy(y), yn)


def test_attributes():
    dgp = DGP("gaussian", GaussianDesign(3), COEF, 0.5, sigma=2.0)
    assert dgp.phi == 4.0 and dgp.family.phi == 4.0 and dgp.p == 3
    np.testing.assert_array_equal(dgp.theta0, [0.5, *COEF])
    assert DGP(Gaussian(phi=4.0), GaussianDesign(3), COEF, sigma=2.0).phi == 4.0
    assert DGP("binomial", GaussianDesign(3), COEF).phi == 1.0
    with pytest.raises(ValueError):
        dgp.coef[0] = 1.0  # read-only: a DGP is a fixed law
    assert "t(df=3)" in repr(DGP("gaussian", GaussianDesign(3), COEF, noise="t"))
    assert DGP("gaussian", GaussianDesign(1), 0.5).coef.shape == (1,)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------

G3 = GaussianDesign(3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coef": [1.0, 2.0]}, r"coef has shape \(2,\) but the design .* has p = 3"),
        ({"coef": np.ones((3, 1))}, r"coef must have shape \(3,\)"),
        ({"coef": [1.0, np.nan, 0.0]}, "coef must be finite"),
        ({"coef": ["a", "b", "c"]}, "coef must be an array"),
        ({"intercept": np.inf}, "intercept must be a finite"),
        ({"intercept": "0"}, "intercept must be a finite"),
        ({"sigma": 0.0}, "sigma must be a positive"),
        ({"sigma": -1.0}, "sigma must be a positive"),
        ({"sigma": np.nan}, "sigma must be a positive"),
        ({"noise": "laplace"}, "unknown noise 'laplace'"),
        ({"noise": "t", "df": 2.0}, "df must be a finite number > 2"),
        ({"noise": "normal", "df": 5.0}, "df applies only to noise='t'"),
        ({"noise": lambda shape, rng: np.zeros(3)}, "noise callable .* returned shape"),
        ({"noise": lambda shape, rng: np.full(shape, np.inf)}, "NaN or infinite"),
        ({"family": Gaussian(phi=4.0)}, r"phi = 4.0 but sigma = 1.0"),
        ({"family": "binomial", "noise": "t"}, "noise applies only to the gaussian family"),
        ({"family": "poisson", "noise": _laplace}, "noise applies only to the gaussian family"),
        ({"family": "binomial", "sigma": 2.0}, "sigma applies only to the gaussian family"),
        ({"family": Binomial(phi=2.0)}, "phi = 1"),
        ({"family": "gamma"}, "unknown family"),
    ],
)
def test_bad_dgp_parameters(kwargs, match):
    args = {"family": "gaussian", "design": G3, "coef": COEF, "intercept": 0.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        DGP(**args)


def test_design_must_be_a_design():
    with pytest.raises(TypeError, match="design must be"):
        DGP("gaussian", np.zeros((5, 3)), COEF)


def test_wrong_dimension_sampler_surfaces_at_sampling():
    d = CustomDesign(3, lambda n, rng: rng.standard_normal((n, 4)))
    with pytest.raises(ValueError, match=r"expected \(n, p\)"):
        DGP("binomial", d, COEF).sample(10, 0)


def test_poisson_overflow_is_a_floating_point_error():
    with pytest.raises(FloatingPointError, match="overflows"):
        DGP("poisson", GaussianDesign(1), [1000.0]).sample(50, 0)
    with pytest.raises(FloatingPointError, match="too large"):
        DGP("poisson", BernoulliDesign(1, 0.5), [0.0], intercept=40.0).sample(5, 0)


@pytest.mark.parametrize(("kwargs", "match"), [({"n": 0}, "n must be"), ({"n": 5, "R": -2},
                                                "R must be")])
def test_bad_sample_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DGP("gaussian", G3, COEF).sample(**kwargs)
