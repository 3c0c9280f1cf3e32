"""gfgsm.rng._portable: accuracy against NumPy/SciPy, and the same bits on every namespace.

Accuracy is measured in ulps through the ordered int64 view of float64 values (adjacent
floats differ by 1, across zero too).  fdlibm's log/exp err by < 1 ulp and so do NumPy's, so two
faithful results are at most 1 ulp apart: that is the bound asserted against NumPy.
"""

from __future__ import annotations

import ast
import inspect

import array_api_compat
import array_api_compat.numpy as np_xp
import array_api_strict as xps
import numpy as np
import pytest
from scipy.special import gammaln

from gfgsm.rng import _portable
from gfgsm.rng._portable import exp, log, loggam, sincos_turns

PI_LD = np.longdouble("3.14159265358979323846264338327950288")


def ulps(a, b):
    """|a - b| in units in the last place (0 when both are the same NaN-free bits)."""
    ia = np.asarray(a, dtype=np.float64).view(np.int64)
    ib = np.asarray(b, dtype=np.float64).view(np.int64)
    ia = np.where(ia < 0, np.int64(-(2**63)) - ia, ia)
    ib = np.where(ib < 0, np.int64(-(2**63)) - ib, ib)
    return np.abs(ia - ib)


def run_np(f, x, *args):
    return f(np_xp.asarray(x), *args, np_xp)


def log_inputs():
    rng = np.random.default_rng(20240611)
    u = rng.random(200_000)
    u = np.where(u == 0.0, 1.0, u)
    k53 = rng.integers(1, 2**53, 200_000, dtype=np.int64).astype(np.float64) * 2.0**-53
    near1 = np.concatenate([1.0 + np.logspace(-10, -3, 50_000), 1.0 - np.logspace(-10, -3, 50_000)])
    ints = np.arange(1, 10**6 + 1, dtype=np.float64)
    edges = np.array([1.0, 2.0, 0.5, 2.2250738585072014e-308, 1.7976931348623157e308,
                      2.0**-1022, np.nextafter(1.0, 0.0), np.nextafter(1.0, 2.0), 2.0**1023,
                      1.4142135623730951])
    return {"uniform": u, "k/2^53": k53, "logspace": np.logspace(-300, 300, 200_001),
            "near1": near1, "ints": ints, "edges": edges}


@pytest.mark.parametrize("name", list(log_inputs()))
def test_log_within_one_ulp_of_numpy(name):
    x = log_inputs()[name]
    got = np.asarray(run_np(log, x))
    assert ulps(got, np.log(x)).max() <= 1


def test_log_special_values():
    assert np.asarray(log(np_xp.asarray([1.0]), np_xp))[0] == 0.0
    x = np.array([0.0, -1.0, np.inf, -np.inf, np.nan, 5e-324, 1e-310])
    got = np.asarray(run_np(log, x))
    np.testing.assert_array_equal(got[:5], [-np.inf, np.nan, np.inf, np.nan, np.nan])
    # subnormals are reduced exactly too (scaled by 2^54 first)
    assert ulps(got[5:], np.log(x[5:])).max() <= 1


def exp_inputs():
    rng = np.random.default_rng(7)
    return {"[-700,700]": rng.uniform(-700.0, 700.0, 500_000),
            "near0": rng.uniform(-1, 1, 200_000) * 10.0 ** rng.uniform(-20, 0, 200_000),
            "(-1.1,1.1)": rng.uniform(-1.1, 1.1, 200_000),
            "top": rng.uniform(700.0, 709.78, 50_000),
            "subnormal results": rng.uniform(-745.0, -708.4, 50_000)}


@pytest.mark.parametrize("name", list(exp_inputs()))
def test_exp_within_one_ulp_of_numpy(name):
    # subnormal results follow fdlibm (one rounding by 2^-1000) and happen to be within 1 ulp too
    x = exp_inputs()[name]
    got = np.asarray(run_np(exp, x))
    assert ulps(got, np.exp(x)).max() <= 1


def test_exp_special_values():
    x = np.array([0.0, -0.0, 709.782712893384, 709.79, -745.13, -745.14, -np.inf, np.inf,
                  np.nan, 1e-30])
    got = np.asarray(run_np(exp, x))
    np.testing.assert_array_equal(got, [1.0, 1.0, np.exp(709.782712893384), np.inf, 5e-324, 0.0,
                                        0.0, np.inf, np.nan, 1.0])


def sincos_reference(j, bits):
    """sin, cos of 2*pi*j/2^bits in long double after the exact integer reduction.

    The quadrant and the reflection t' -> 1 - t' are exact integer identities; sinl/cosl of
    the reduced angle in [0, pi/4] are then good to ~1e-19 relative, so rounding them to float64
    is correct to well under 0.01 ulp.  (Reducing 2*pi*t in long double instead loses all
    relative accuracy near the zeros.)
    """
    j = np.asarray(j, dtype=np.uint64)
    b = max(bits, 2)
    j = j << np.uint64(b - bits)
    nb = b - 2
    q = (j >> np.uint64(nb)) & np.uint64(3)
    r = j & np.uint64((1 << nb) - 1)
    refl = r > np.uint64((1 << nb) >> 1)
    rr = np.where(refl, np.uint64(1 << nb) - r, r)
    ang = (PI_LD / 2) * (rr.astype(np.longdouble) / np.longdouble(2.0**nb))
    s0, c0 = np.sin(ang), np.cos(ang)
    sphi, cphi = np.where(refl, c0, s0), np.where(refl, s0, c0)
    s = np.select([q == 0, q == 1, q == 2], [sphi, cphi, -sphi], -cphi)
    c = np.select([q == 0, q == 1, q == 2], [cphi, -sphi, -cphi], sphi)
    return s.astype(np.float64), c.astype(np.float64)


SINCOS_CASES = [(53, 300_000), (40, 100_000), (32, 100_000), (24, 100_000), (12, None), (3, None),
                (2, None), (1, None), (0, None)]


@pytest.mark.parametrize(("bits", "n"), SINCOS_CASES)
def test_sincos_turns_accuracy(bits, n):
    rng = np.random.default_rng(bits)
    j = np.arange(2**bits, dtype=np.uint64) if n is None else rng.integers(
        0, 2**bits, n, dtype=np.uint64)
    s, c = (np.asarray(a) for a in run_np(sincos_turns, j, bits))
    rs, rc = sincos_reference(j, bits)
    # x = rr*fl(pi/2)*2^-(bits-2) carries <= 1.35*2^-53 relative error, the kernels < 1 ulp:
    # 2 ulp against the (near) correctly rounded reference
    assert ulps(s, rs).max() <= 2
    assert ulps(c, rc).max() <= 2
    # against float64 numpy the reference itself is off by up to |2*pi*t| * 2^-53 ~ 7e-16
    # (rounding of 2*pi*t) plus 1.1e-16; 1e-15 absolute covers it and checks the quadrants
    t = j.astype(np.float64) * 2.0**-bits
    np.testing.assert_allclose(s, np.sin(2 * np.pi * t), rtol=0, atol=1e-15)
    np.testing.assert_allclose(c, np.cos(2 * np.pi * t), rtol=0, atol=1e-15)
    # each of s, c within ~2 ulp, so s^2 + c^2 - 1 (computed in long double) is below 4e-16
    sl, cl = s.astype(np.longdouble), c.astype(np.longdouble)
    assert np.abs(sl * sl + cl * cl - 1).max() <= 4e-16
    assert not np.any(np.signbit(s) & (s == 0)) and not np.any(np.signbit(c) & (c == 0))


def test_sincos_turns_exact_points():
    j = np.array([0, 1, 2, 3, 4, 5, 6, 7], dtype=np.uint64)  # multiples of pi/4
    s, c = (np.asarray(a) for a in run_np(sincos_turns, j, 3))
    h = np.sqrt(0.5)
    np.testing.assert_allclose(s, [0, h, 1, h, 0, -h, -1, -h], rtol=0, atol=2.3e-16)
    np.testing.assert_array_equal(s[[0, 2, 4, 6]], [0.0, 1.0, 0.0, -1.0])
    np.testing.assert_array_equal(c[[0, 2, 4, 6]], [1.0, 0.0, -1.0, 0.0])
    with pytest.raises(ValueError):
        sincos_turns(np_xp.asarray(j), 54, np_xp)


def test_loggam_integers():
    x = np.arange(1, 10**6 + 1, dtype=np.float64)
    got = np.asarray(run_np(loggam, x))
    ref = gammaln(x)
    assert got[0] == 0.0 and got[1] == 0.0
    assert (np.abs(got[2:] - ref[2:]) / np.abs(ref[2:])).max() < 1e-13


def test_loggam_reals():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(0.5, 1e4, 300_000), rng.uniform(0.5, 8.0, 100_000)])
    got = np.asarray(run_np(loggam, x))
    ref = gammaln(x)
    # relative error 1e-13, except near the zeros of log Gamma at 1 and 2, where random_loggam
    # cancels terms of size ~8 (x0 = x + n >= 7) and the error is absolute, ~1e-15: there 1e-13
    # is asserted relative to max(1, |log Gamma|)
    assert (np.abs(got - ref) / np.maximum(1.0, np.abs(ref))).max() < 1e-13
    far = (np.abs(x - 1.0) > 0.1) & (np.abs(x - 2.0) > 0.1)
    assert (np.abs(got - ref) / np.abs(ref))[far].max() < 1e-13
    bad = np.asarray(run_np(loggam, np.array([0.0, -1.0, np.nan, np.inf])))
    np.testing.assert_array_equal(bad, [np.nan, np.nan, np.nan, np.inf])


def bitwise_cases():
    rng = np.random.default_rng(11)
    pos = np.concatenate([rng.random(20_000) + 2.0**-60, np.logspace(-307, 307, 20_000),
                          np.array([5e-324, 1.0, 2.0, 1.7976931348623157e308]),
                          np.arange(1, 2_001, dtype=np.float64)])
    e = np.concatenate([rng.uniform(-745.5, 710.0, 40_000), np.array([0.0, 1e-30, -1e-30])])
    lg = np.concatenate([np.arange(1, 5_001, dtype=np.float64), rng.uniform(0.5, 1e4, 20_000)])
    j = rng.integers(0, 2**53, 40_000, dtype=np.uint64)
    return [("log", log, pos, ()), ("exp", exp, e, ()), ("loggam", loggam, lg, ()),
            ("sincos53", sincos_turns, j, (53,)), ("sincos20", sincos_turns, j >> np.uint64(33),
                                                   (20,))]


@pytest.mark.parametrize("case", bitwise_cases(), ids=lambda c: c[0])
def test_bitwise_numpy_equals_array_api_strict(case):
    _, f, x, args = case
    a = f(np_xp.asarray(x), *args, np_xp)
    b = f(xps.asarray(x), *args, xps)
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    for u, v in zip(a, b, strict=True):
        assert array_api_compat.is_array_api_strict_namespace(array_api_compat.array_namespace(v))
        np.testing.assert_array_equal(np.asarray(u).view(np.uint64),
                                      np.asarray(v).view(np.uint64))


FORBIDDEN = {"log", "exp", "sin", "cos", "tan", "pow", "expm1", "log1p", "log2", "log10",
             "sinh", "cosh", "tanh", "atan2", "hypot", "logaddexp", "sum", "prod", "cumulative_sum",
             "cumulative_prod", "mean", "matmul", "vecdot", "tensordot"}


class StrictNoTranscendentals:
    """array_api_strict with the transcendental functions and reductions removed."""

    def __getattr__(self, name):
        if name in FORBIDDEN:
            raise AssertionError(f"portable code used xp.{name}")
        return getattr(xps, name)


@pytest.mark.parametrize("case", bitwise_cases(), ids=lambda c: c[0])
def test_no_forbidden_namespace_functions(case):
    _, f, x, args = case
    f(xps.asarray(x[:1000]), *args, StrictNoTranscendentals())


def test_source_uses_no_power_operator_and_no_numpy():
    tree = ast.parse(inspect.getsource(_portable))
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow)]
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "math", "typing"}


def test_frexp_shortcut_equals_the_ladder(monkeypatch):
    """log's exact frexp reduction (NumPy, CuPy) and the exact ladder give the same bits."""
    import array_api_compat.numpy as xnp

    from gfgsm.rng import _portable

    bits = np.random.default_rng(3).integers(1, 0x7FF0000000000000, size=200_000,
                                             dtype=np.int64)
    x = np.concatenate([bits.view(np.float64), [5e-324, 2.2e-308, 1.0, 1.7e308]])
    f1, k1 = _portable._reduce(xnp.asarray(x), xnp)
    f2, k2 = _portable._reduce_ladder(xnp.asarray(x), xnp)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(k1, k2)
    fast = _portable.log(xnp.asarray(x), xnp)
    monkeypatch.setattr(_portable, "_FREXP", False)
    np.testing.assert_array_equal(fast, _portable.log(xnp.asarray(x), xnp))
