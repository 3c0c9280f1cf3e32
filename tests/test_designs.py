"""Designs: moments against their definitions and against samples, reproducibility, bad input.

Sample-moment checks use one large draw and a 4-standard-error band (the SE is computed in the
test from the known law), so a correct sampler fails with probability about 6e-5 per entry;
the seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import itertools

import array_api_compat.numpy as xnp
import array_api_strict as xs
import numpy as np
import pytest

from gfgsm._backend import get_namespace, namespace_name, to_numpy
from gfgsm.designs import (
    BernoulliDesign,
    CustomDesign,
    Design,
    GaussianDesign,
    MixtureDesign,
    UniformDesign,
    replication_seeds,
)
from gfgsm.rng import Stream, key_from_seed

N_BIG = 200_000


def _ar1(p: int, rho: float) -> np.ndarray:
    return np.array([[rho ** abs(j - k) for k in range(p)] for j in range(p)])


def _check_sample_moments(design: Design, seed: int = 0) -> None:
    """Sample mean and second moment within 4 SE (SE from the sample itself) of the closed form."""
    X = design.sample(N_BIG, seed)
    m_hat = X.mean(axis=0)
    se_m = X.std(axis=0, ddof=1) / np.sqrt(N_BIG)
    assert np.all(np.abs(m_hat - design.mean) <= 4 * se_m + 1e-12)
    prods = X[:, :, None] * X[:, None, :]
    S_hat = prods.mean(axis=0)
    se_S = prods.std(axis=0, ddof=1) / np.sqrt(N_BIG)
    assert np.all(np.abs(S_hat - design.second_moment) <= 4 * se_S + 1e-12)


# --------------------------------------------------------------------------------------------
# closed-form moments
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rho", [0.0, 0.5, -0.7])
def test_gaussian_ar1_moments(rho):
    d = GaussianDesign(4, rho)
    np.testing.assert_array_equal(d.mean, np.zeros(4))
    np.testing.assert_allclose(d.second_moment, _ar1(4, rho), rtol=1e-15)
    _check_sample_moments(d)


def test_gaussian_ar1_recursion_is_the_cholesky_transform():
    """x = L z with L the Cholesky factor of Sigma and z the generator's standard normals."""
    rho, p, n = 0.6, 5, 50
    X = GaussianDesign(p, rho).draw(n, np.random.default_rng(3))
    Z = np.random.default_rng(3).standard_normal((n, p))
    L = np.linalg.cholesky(_ar1(p, rho))
    np.testing.assert_allclose(X, Z @ L.T, rtol=0, atol=1e-13)


def test_uniform_moments_per_column():
    d = UniformDesign(3, low=[-1.0, 0.0, 2.0], high=[1.0, 3.0, 2.5])
    a, b = np.array([-1.0, 0.0, 2.0]), np.array([1.0, 3.0, 2.5])
    np.testing.assert_allclose(d.mean, (a + b) / 2)
    np.testing.assert_allclose(np.diag(d.second_moment), (b - a) ** 2 / 12 + ((a + b) / 2) ** 2)
    _check_sample_moments(d)
    X = d.sample(1000, 1)
    assert np.all((X >= a) & (X <= b))


@pytest.mark.parametrize(("prob", "values"), [(0.3, (0.0, 1.0)), ([0.2, 0.5, 0.9], (-1.0, 2.0))])
def test_bernoulli_moments_and_exact_support(prob, values):
    d = BernoulliDesign(3, prob=prob, values=values)
    X = d.sample(1000, 2)
    assert set(np.unique(X)) <= set(values)
    _check_sample_moments(d)
    # the enumerated support, checked against itertools and against the closed-form moments
    points, probs = d.support()
    q = np.broadcast_to(np.asarray(prob, float), (3,))
    ref = {}
    for bits in itertools.product([0, 1], repeat=3):
        x = tuple(values[b] for b in bits)
        ref[x] = float(np.prod([q[j] if b else 1 - q[j] for j, b in enumerate(bits)]))
    assert len(points) == 8
    for x, w in zip(points, probs, strict=True):
        assert w == pytest.approx(ref[tuple(x)], rel=1e-14)
    assert probs.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(probs @ points, d.mean, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose((points * probs[:, None]).T @ points, d.second_moment,
                               rtol=1e-13, atol=1e-15)


def test_mixture_moments_and_sampling():
    comps = [GaussianDesign(2, 0.5), UniformDesign(2, 0.0, 2.0), BernoulliDesign(2, 0.25)]
    w = [0.5, 0.3, 0.2]
    d = MixtureDesign(comps, w)
    np.testing.assert_allclose(d.mean, sum(wk * c.mean for wk, c in zip(w, comps, strict=True)))
    np.testing.assert_allclose(
        d.second_moment, sum(wk * c.second_moment for wk, c in zip(w, comps, strict=True))
    )
    _check_sample_moments(d)
    assert MixtureDesign(comps).weights.tolist() == pytest.approx([1 / 3] * 3)


def test_mixture_support_is_the_weighted_union():
    d = MixtureDesign([BernoulliDesign(2, 0.5), BernoulliDesign(2, 0.2, (-1.0, 1.0))], [0.4, 0.6])
    points, probs = d.support()
    assert points.shape == (8, 2) and probs.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(probs @ points, d.mean, atol=1e-15)
    assert MixtureDesign([BernoulliDesign(2), GaussianDesign(2)]).support() is None


def test_custom_design_wraps_sampler_and_moments():
    def laplace(n, rng):
        return rng.laplace(size=(n, 2))

    d = CustomDesign(2, laplace, mean=[0.0, 0.0], second_moment=2 * np.eye(2), is_symmetric=True)
    assert d.is_symmetric
    _check_sample_moments(d)
    plain = CustomDesign(2, laplace)
    assert plain.mean is None and plain.second_moment is None and not plain.is_symmetric
    np.testing.assert_array_equal(plain.sample(10, 4), d.sample(10, 4))


def test_symmetry_flags():
    assert GaussianDesign(3, 0.4).is_symmetric
    assert UniformDesign(2, -2.0, 2.0).is_symmetric
    assert not UniformDesign(2, 0.0, 1.0).is_symmetric
    assert BernoulliDesign(2, 0.5, (-1.0, 1.0)).is_symmetric
    assert not BernoulliDesign(2, 0.5).is_symmetric
    assert not BernoulliDesign(2, 0.4, (-1.0, 1.0)).is_symmetric
    assert MixtureDesign([GaussianDesign(2), UniformDesign(2)], [0.3, 0.7]).is_symmetric
    assert not MixtureDesign([GaussianDesign(2), BernoulliDesign(2)]).is_symmetric


def test_moments_are_read_only():
    d = GaussianDesign(3, 0.5)
    with pytest.raises(ValueError):
        d.second_moment[0, 0] = 2.0


# --------------------------------------------------------------------------------------------
# reproducibility and backends
# --------------------------------------------------------------------------------------------

DESIGNS = [
    GaussianDesign(3, 0.5),
    UniformDesign(3),
    BernoulliDesign(3, 0.3),
    MixtureDesign([GaussianDesign(3), BernoulliDesign(3)], [0.5, 0.5]),
    CustomDesign(3, lambda n, rng: rng.standard_t(4, size=(n, 3))),
]


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: type(d).__name__)
def test_shapes_and_replication_streams(design):
    X1 = design.sample(20, 7)
    assert X1.shape == (20, 3)
    np.testing.assert_array_equal(X1, design.sample(20, 7))  # same seed, same data
    assert not np.array_equal(X1, design.sample(20, 8))
    X5 = design.sample(20, 7, R=5)
    X12 = design.sample(20, 7, R=12)
    assert X5.shape == (5, 20, 3)
    np.testing.assert_array_equal(X5, X12[:5])  # replication r does not depend on R
    np.testing.assert_array_equal(X1, X5[0])  # R=None is replication 0
    # replication r is counter r of the key of SeedSequence(seed), variable "x"
    alone = Stream.create(key_from_seed(np.random.SeedSequence(7)), [3], xnp).child("x")
    np.testing.assert_array_equal(X5[3], design.draw_stream(20, alone)[0])


def test_seed_kinds():
    d = GaussianDesign(2)
    ss = np.random.SeedSequence(11)
    np.testing.assert_array_equal(d.sample(5, ss, R=3), d.sample(5, 11, R=3))
    np.testing.assert_array_equal(d.sample(5, ss), d.sample(5, ss))  # ss is not consumed
    assert ss.n_children_spawned == 0
    # a Generator is a stream: same state, same data; used twice, new data
    a = d.sample(5, np.random.default_rng(3), R=2)
    np.testing.assert_array_equal(a, d.sample(5, np.random.default_rng(3), R=2))
    g = np.random.default_rng(3)
    assert not np.array_equal(d.sample(5, g), d.sample(5, g))
    # spawned children are those of a fresh SeedSequence, for a child SeedSequence too
    kid = np.random.SeedSequence(5).spawn(2)[1]
    want = [c.generate_state(4) for c in np.random.SeedSequence(5).spawn(2)[1].spawn(3)]
    got = [c.generate_state(4) for c in replication_seeds(kid, 3)]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: type(d).__name__)
def test_array_api_strict_gives_the_numpy_numbers(design):
    X = design.sample(30, 5, R=4, backend="array_api_strict")
    assert namespace_name(get_namespace(X)) == "array_api_strict"
    assert X.dtype == xs.float64 and X.shape == (4, 30, 3)
    np.testing.assert_array_equal(to_numpy(X), design.sample(30, 5, R=4))


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: GaussianDesign(0), "p must be a positive integer"),
        (lambda: GaussianDesign(2.5), "p must be a positive integer"),
        (lambda: GaussianDesign(True), "p must be a positive integer"),
        (lambda: GaussianDesign(3, rho=1.0), "rho"),
        (lambda: GaussianDesign(3, rho=float("nan")), "rho"),
        (lambda: UniformDesign(2, 1.0, 1.0), "low < high"),
        (lambda: UniformDesign(2, [0.0, 0.0, 0.0], 1.0), r"low must be a scalar or .*\(2,\)"),
        (lambda: UniformDesign(2, 0.0, np.inf), "high must be finite"),
        (lambda: BernoulliDesign(2, 1.0), "prob must lie strictly between 0 and 1"),
        (lambda: BernoulliDesign(2, 0.5, (1.0, 1.0)), "values must be two distinct"),
        (lambda: MixtureDesign([]), "at least one component"),
        (lambda: MixtureDesign([GaussianDesign(2), GaussianDesign(3)]), "same p"),
        (lambda: MixtureDesign([GaussianDesign(2)] * 2, [0.7, 0.7]), "sum to 1"),
        (lambda: MixtureDesign([GaussianDesign(2)] * 2, [1.0]), "weights must have shape"),
        (lambda: CustomDesign(2, lambda n, rng: 0, second_moment=np.ones((3, 3))),
         "second_moment"),
    ],
)
def test_bad_design_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_types():
    with pytest.raises(TypeError, match="sampler must be a callable"):
        CustomDesign(2, "not callable")
    with pytest.raises(TypeError, match="components"):
        MixtureDesign([GaussianDesign(2), "x"])


def test_wrong_dimension_from_a_sampler_is_an_error():
    d = CustomDesign(3, lambda n, rng: rng.standard_normal((n, 2)))
    with pytest.raises(ValueError, match=r"returned shape \(4, 2\).*expected \(n, p\) = \(4, 3\)"):
        d.sample(4, 0)
    bad = CustomDesign(2, lambda n, rng: np.full((n, 2), np.nan))
    with pytest.raises(ValueError, match="NaN or infinite"):
        bad.sample(4, 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be a positive integer"),
        ({"n": 3.0}, "n must be a positive integer"),
        ({"n": 3, "R": 0}, "R must be a positive integer"),
        ({"n": 3, "seed": -1}, "seed must be a non-negative"),
        ({"n": 3, "backend": "jax"}, "unknown backend"),
    ],
)
def test_bad_sample_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianDesign(2).sample(**kwargs)


def test_bad_seed_type():
    with pytest.raises(TypeError, match="seed must be"):
        GaussianDesign(2).sample(3, seed="abc")
