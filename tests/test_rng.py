"""The counter-based generator (gfgsm.rng): known answers, an independent implementation,
bitwise agreement across backends and batchings, and the laws of its transforms.

Statistical tests use fixed keys, so they are deterministic; each asserts a p-value above
1e-4 (a correct sampler fails one with probability 1e-4 per test and key) or a moment within 5
Monte Carlo standard errors.
"""

from __future__ import annotations

import math

import array_api_compat.numpy as xnp
import array_api_strict as xps
import numpy as np
import pytest
from scipy import stats

from gfgsm._backend import to_numpy
from gfgsm.rng import Stream, philox, stream_for
from gfgsm.rng.philox import _philox_array, _philox_numpy, philox4x32

# Random123's kat_vectors, philox4x32 lines: (rounds, counter, key, expected).
KAT = [
    (10, (0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (10, (0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (10, (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    (7, (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0x4DFCCABA, 0x190A87F0, 0xC47362BA, 0xB6B5242A)),
]

KEY = (0x1234ABCD, 0x9E3779B9)


def _philox_scalar(ctr: tuple[int, ...], key: tuple[int, int], rounds: int = 10) -> tuple:
    """Philox4x32 from Salmon et al. (2011), on Python integers: the independent reference."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) % 2**32, (k1 + 0xBB67AE85) % 2**32
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 % 2**32, (p0 >> 32) ^ c3 ^ k1, p0 % 2**32
    return c0, c1, c2, c3


def _ctr(values: tuple[int, ...], xp) -> tuple:
    return tuple(xp.asarray([v], dtype=xp.uint64) for v in values)


@pytest.mark.parametrize("xp", [xnp, xps], ids=["numpy", "array_api_strict"])
@pytest.mark.parametrize(("rounds", "ctr", "key", "want"), KAT)
def test_known_answers(xp, rounds, ctr, key, want):
    got = philox4x32(_ctr(ctr, xp), key, xp, rounds)
    assert tuple(int(to_numpy(g)[0]) for g in got) == want


@pytest.mark.parametrize(("rounds", "ctr", "key", "want"), KAT)
def test_known_answers_reference_paths(rounds, ctr, key, want):
    # The generic path on NumPy (the fast path is taken by plain ndarrays and int keys).
    got = _philox_array(_ctr(ctr, xnp), key, xnp, rounds)
    assert tuple(int(g[0]) for g in got) == want
    assert _philox_scalar(ctr, key, rounds) == want


def test_against_independent_scalar_implementation():
    rng = np.random.default_rng(7)
    ctr = rng.integers(0, 2**32, size=(4, 200), dtype=np.uint64)
    keys = rng.integers(0, 2**32, size=(200, 2)).tolist()
    for i in range(200):
        got = philox4x32(tuple(c[i:i + 1] for c in ctr), tuple(keys[i]), xnp)
        want = _philox_scalar(tuple(int(c[i]) for c in ctr), tuple(keys[i]))
        assert tuple(int(g[0]) for g in got) == want


@pytest.mark.parametrize("n", [1, 5, 17, 1000])
def test_numpy_fast_path_equals_reference(monkeypatch, n):
    # Tiles of 7 counters exercise tile boundaries and a ragged last tile.
    monkeypatch.setattr(philox, "_TILE", 7)
    rng = np.random.default_rng(n)
    ctr = tuple(rng.integers(0, 2**32, size=n, dtype=np.uint64) for _ in range(4))
    fast = _philox_numpy(ctr, KEY, 10)
    ref = _philox_array(ctr, KEY, xnp, 10)
    for f, r in zip(fast, ref, strict=True):
        np.testing.assert_array_equal(f, r)
    # Broadcast counters (a row of blocks against a column of replications).
    b = np.arange(n, dtype=np.uint64).reshape(1, n)
    rep = np.arange(3, dtype=np.uint64).reshape(3, 1)
    z = np.zeros((1, 1), dtype=np.uint64)
    fast = _philox_numpy((b, z, z + 5, rep), KEY, 10)
    c0, c3 = np.broadcast_arrays(b, rep)
    ref = _philox_array((c0, np.zeros_like(c0), np.zeros_like(c0) + 5, c3), KEY, xnp, 10)
    for f, r in zip(fast, ref, strict=True):
        np.testing.assert_array_equal(f, r)


# --------------------------------------------------------------------------------------------
# streams
# --------------------------------------------------------------------------------------------


def _draws(xp, reps=range(6)):
    s = Stream.create(KEY, np.asarray(list(reps), dtype=np.uint64), xp)
    mean = xp.asarray(np.tile([0.0, 0.05, 0.7, 3.0, 9.99, 10.0, 42.0, 2981.0], (len(reps), 4)))
    prob = xp.asarray(np.tile(np.linspace(0.0, 1.0, 11), (len(reps), 1)))
    return {
        "uint32": s.child(0).uint32((9,)),
        "uniform": s.child(1).uniform((5, 3)),
        "uniform_open": s.child(2).uniform_open((7,)),
        "normal": s.child(3).normal((5, 3)),
        "exponential": s.child(4).exponential((7,)),
        "logistic": s.child(5).logistic((7,)),
        "gamma_small": s.child(6).gamma((11,), 0.4),
        "gamma": s.child(7).gamma((11,), 2.5),
        "t": s.child(8).standard_t((11,), 3.0),
        "poisson": s.child(9).poisson(mean),
        "bernoulli": s.child(10).bernoulli(prob),
    }


def test_bitwise_numpy_and_array_api_strict():
    a, b = _draws(xnp), _draws(xps)
    for name in a:
        x, y = to_numpy(a[name]), to_numpy(b[name])
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_independent_of_batching():
    # Replications 2..4 drawn alone equal rows 2..4 of a draw of 0..5, for every transform.
    full, part = _draws(xnp), _draws(xnp, reps=range(2, 5))
    for name in full:
        np.testing.assert_array_equal(full[name][2:5], part[name], err_msg=name)


def test_prefix_property_and_variables():
    s = Stream.create(KEY, range(3), xnp)
    long, short = s.child("v").normal((10,)), s.child("v").normal((3,))
    np.testing.assert_array_equal(long[:, :3], short)
    other = s.child("w").normal((10,))
    assert not np.any(long == other)
    assert s.child("v").variable == Stream.create(KEY, range(9), xnp).child("v").variable


def test_stream_for_seed_forms():
    a = to_numpy(stream_for(5, 4, xnp).normal((3,)))
    b = to_numpy(stream_for(np.random.SeedSequence(5), 4, xnp).normal((3,)))
    np.testing.assert_array_equal(a, b)
    c = to_numpy(stream_for(6, 4, xnp).normal((3,)))
    assert not np.any(a == c)


def test_bad_streams_are_refused():
    with pytest.raises(ValueError, match="32-bit"):
        Stream.create((2**32, 0), range(2), xnp)
    with pytest.raises(ValueError, match="replication indices"):
        Stream.create(KEY, [-1], xnp)
    s = Stream.create(KEY, range(2), xnp)
    with pytest.raises(ValueError, match="gamma shape"):
        s.gamma((3,), -1.0)
    with pytest.raises(ValueError, match="Poisson means"):
        s.poisson(xnp.asarray([[1.0], [-1.0]]))
    with pytest.raises(ValueError, match="Poisson means"):
        s.poisson(xnp.asarray([[1.0], [math.nan]]))


def test_uniforms_are_exact_grids():
    s = Stream.create(KEY, range(4), xnp)
    u = s.uniform((5000,))
    assert np.all((u >= 0) & (u < 1))
    np.testing.assert_array_equal(u * 2.0**53, np.floor(u * 2.0**53))
    v = s.child(1).uniform_open((5000,))
    assert np.all((v > 0) & (v < 1))
    k = v * 2.0**53
    np.testing.assert_array_equal(np.mod(k, 2.0), np.ones_like(k))  # (2k + 1) / 2^53


# --------------------------------------------------------------------------------------------
# laws
# --------------------------------------------------------------------------------------------

N = 200_000


def _sample(method: str, *args) -> np.ndarray:
    s = Stream.create(KEY, range(4), xnp).child(method)
    return np.asarray(getattr(s, method)(*args)).ravel()


@pytest.mark.parametrize(("method", "args", "dist"), [
    ("uniform", ((N // 4,),), stats.uniform()),
    ("uniform_open", ((N // 4,),), stats.uniform()),
    ("normal", ((N // 4,),), stats.norm()),
    ("exponential", ((N // 4,),), stats.expon()),
    ("logistic", ((N // 4,),), stats.logistic()),
    ("gamma", ((N // 4,), 0.3), stats.gamma(0.3)),
    ("gamma", ((N // 4,), 1.0), stats.gamma(1.0)),
    ("gamma", ((N // 4,), 7.5), stats.gamma(7.5)),
    ("standard_t", ((N // 4,), 3.0), stats.t(3.0)),
    ("standard_t", ((N // 4,), 2.5), stats.t(2.5)),
])
def test_continuous_laws_ks(method, args, dist):
    x = _sample(method, *args)
    assert stats.kstest(x, dist.cdf).pvalue > 1e-4


def test_normal_pairs_are_uncorrelated_and_tails_right():
    z = _sample("normal", (N // 4,)).reshape(4, -1)
    # Box-Muller's two outputs of one block are elements 2m and 2m + 1.
    r = np.corrcoef(z[:, 0::2].ravel(), z[:, 1::2].ravel())[0, 1]
    assert abs(r) < 5 / math.sqrt(N / 2)
    # Tail frequency beyond 3: 2 * (1 - Phi(3)) within 5 binomial SEs.
    p3 = 2 * stats.norm.sf(3.0)
    freq = np.mean(np.abs(z) > 3.0)
    assert abs(freq - p3) < 5 * math.sqrt(p3 * (1 - p3) / z.size)


@pytest.mark.parametrize("mean", [0.0, 0.05, 1.0, 3.0, 9.99, 10.0, 25.0, 2981.0, 1e6])
def test_poisson_law(mean):
    s = Stream.create(KEY, range(4), xnp).child("poisson")
    k = np.asarray(s.poisson(xnp.full((4, 25_000), mean))).ravel()
    assert np.all(k == np.floor(k)) and np.all(k >= 0)
    if mean == 0.0:
        assert np.all(k == 0)
        return
    se_mean = math.sqrt(mean / k.size)
    assert abs(k.mean() - mean) < 5 * se_mean
    # Var of the sample variance of a Poisson: (mu + 2 mu^2 (n/(n-1))) / n ~ (mu + 2 mu^2) / n.
    assert abs(k.var(ddof=1) - mean) < 5 * math.sqrt((mean + 2 * mean**2) / k.size)
    if mean <= 50:
        # Chi-square goodness of fit on the cells with expected count >= 5 (tails pooled).
        lo, hi = int(stats.poisson.ppf(1e-4, mean)), int(stats.poisson.isf(1e-4, mean))
        cells = np.arange(lo, hi + 1)
        obs = np.array([np.sum(k <= lo)] + [np.sum(k == c) for c in cells[1:-1]]
                       + [np.sum(k >= hi)])
        p = np.r_[stats.poisson.cdf(lo, mean), stats.poisson.pmf(cells[1:-1], mean),
                  stats.poisson.sf(hi - 1, mean)]
        ok = p * k.size >= 5
        obs = np.r_[obs[ok], obs[~ok].sum()]
        p = np.r_[p[ok], p[~ok].sum()]
        keep = p > 0
        assert stats.chisquare(obs[keep], p[keep] / p[keep].sum() * k.size).pvalue > 1e-4


def test_bernoulli_is_exact_threshold():
    s = Stream.create(KEY, range(2), xnp)
    u = s.child("b").uniform((1000,))
    for p in (0.0, 0.3, 0.5, 1.0):
        y = s.child("b").bernoulli(xnp.full((2, 1000), p))
        np.testing.assert_array_equal(y, (u < p).astype(float))
    assert np.all(s.child("b").bernoulli(xnp.full((2, 1000), 1.0)) == 1.0)
    y = _sample("uniform", (N // 4,)) < 0.3
    assert abs(y.mean() - 0.3) < 5 * math.sqrt(0.21 / y.size)


def test_host_generators_are_per_replication():
    a = Stream.create(KEY, range(4), xnp).host_generators()
    b = Stream.create(KEY, [2, 3], xnp).host_generators()
    assert a[2].random() == b[0].random() and a[3].random() == b[1].random()
    assert a[0].random() != a[1].random()
