"""The fused GPU kernels of gfgsm.rng._fused, checked bitwise against the array code.

CI has no GPU, so the kernels' source is compiled here as C99 by the host's C compiler with
``-ffp-contract=off`` (the C counterpart of NVRTC's ``--fmad=false``) and run on the CPU: the
same arithmetic in the same order, so any difference from the reference (the Array-API code
of gfgsm.rng) is a bug in the source.  The CuPy build of the same source is compared with
NumPy on a GPU by ``benchmarks/bench_gpu.py`` (stage ``bitwise``).  The tolerance is zero:
both sides perform the same correctly rounded operations.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from math import ldexp

import numpy as np
import pytest

from gfgsm.rng import Stream, _fused, _portable

CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler to build the kernel source")


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("fused")
    src = d / "fused.c"
    src.write_text(_fused.SOURCE)
    so = d / "fused.so"
    subprocess.run([CC, "-std=c99", "-O2", "-ffp-contract=off", "-fno-fast-math", "-fPIC",
                    "-shared", str(src), "-o", str(so), "-lm"], check=True)
    lib = ctypes.CDLL(str(so))
    P = ctypes.c_void_p
    for name in ("gf_normal", "gf_uniform"):
        getattr(lib, name).argtypes = [P, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
                                       ctypes.c_longlong, ctypes.c_longlong, P]
    lib.gf_log_many.argtypes = [P, P, ctypes.c_longlong]
    lib.gf_sincos_many.argtypes = [P, P, P, ctypes.c_longlong]
    return lib


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


def _kernel(lib, kind: str, stream: Stream, m: int) -> np.ndarray:
    n_blocks = -(-m // 2)
    reps = np.ascontiguousarray(stream.reps, dtype=np.uint64)
    out = np.empty((stream.R, n_blocks, 2))
    getattr(lib, f"gf_{kind}")(_ptr(reps), stream.key[0], stream.key[1], stream.variable,
                               n_blocks, stream.R * n_blocks, _ptr(out))
    return out.reshape(stream.R, -1)[:, :m]


@pytest.mark.parametrize("kind", ["normal", "uniform"])
@pytest.mark.parametrize("key", [(0, 0), (0x1234ABCD, 0x9E3779B9), (2**32 - 1, 2**32 - 1)])
def test_kernel_equals_array_code(lib, kind, key):
    reps = np.array([0, 7, 123456, 2**32 - 1], dtype=np.uint64)
    s = Stream.create(key, reps, np).child("fused")
    m = 2 * 40_000 + 1  # odd: the last block's second output is dropped, as in the array code
    want = getattr(s, kind)((m,))
    got = _kernel(lib, kind, s, m)
    assert want.shape == got.shape
    assert np.array_equal(want.view(np.uint64), got.view(np.uint64))


def _edge_doubles() -> np.ndarray:
    p = _portable
    thresholds = [p._hw(0, 1), p._hw(0, 0xFFFFE), p._hw(0, 0x6147A), p._hw(0, 0x6B852),
                  p._hw(0, 0x6A09C), 1.0, 2.0, 0.5]
    near = [np.nextafter(t * s, d) for t in thresholds for s in (1.0, 0.5, 2.0**-40)
            for d in (0.0, np.inf)]
    u_open = [(k + 0.5) * 2.0**-52 for k in (0, 1, 2, 2**51, 2**52 - 2, 2**52 - 1)]
    rng = np.random.default_rng(3)
    wide = np.exp(rng.uniform(-700, 700, 20_000))
    unit = rng.uniform(0, 1, 20_000)
    sub = np.array([5e-324, 1e-310, ldexp(1.0, -1022), ldexp(1.0, -1023)])
    return np.concatenate([thresholds, near, u_open, wide, unit, sub, [1e308, 1.7e308]])


def test_log_equals_portable_log(lib):
    x = _edge_doubles()
    out = np.empty_like(x)
    lib.gf_log_many(_ptr(x), _ptr(out), x.size)
    want = _portable.log(x, np)
    assert np.array_equal(want.view(np.uint64), out.view(np.uint64))


def test_sincos_equals_portable_sincos(lib):
    one = 1 << 51
    edges = [0, 1, 2, one >> 1, (one >> 1) + 1, (one >> 1) - 1, one - 1, one, one + 1,
             2 * one, 3 * one - 1, 3 * one, 4 * one - 1, 2**53 - 1]
    rng = np.random.default_rng(4)
    j = np.concatenate([np.asarray(edges, dtype=np.uint64),
                        rng.integers(0, 2**53, 50_000, dtype=np.uint64),
                        rng.integers(0, 2**20, 1000, dtype=np.uint64)])  # tiny angles
    s, c = np.empty(j.size), np.empty(j.size)
    lib.gf_sincos_many(_ptr(j), _ptr(s), _ptr(c), j.size)
    ws, wc = _portable.sincos_turns(j, 53, np)
    assert np.array_equal(ws.view(np.uint64), s.view(np.uint64))
    assert np.array_equal(wc.view(np.uint64), c.view(np.uint64))


def test_constants_are_exact():
    """Every constant is written as an exact hexadecimal literal of the Python float."""
    for line in _fused.SOURCE.splitlines():
        if line.startswith("#define GF_") and "(" in line and "0x" in line:
            lit = line.split("(", 1)[1].rstrip(")")
            assert float.fromhex(lit).hex() == lit


def test_only_cupy_takes_the_kernels(monkeypatch):
    import array_api_strict

    assert not _fused.available(np)
    assert not _fused.available(array_api_strict)
    monkeypatch.setattr(_fused, "ENABLED", False)
    assert not _fused.available(np)
