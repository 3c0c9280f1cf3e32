"""Fused kernels for the hot draws of :class:`gfgsm.rng.Stream` on CuPy (docs/theory.md,
"Random numbers").

The reference is the array code of :mod:`gfgsm.rng.streams` and :mod:`gfgsm.rng._portable`: on
a GPU it runs as about a hundred separate elementwise kernels per normal (one per Array-API
operation), each reading and writing the whole draw.  The kernels here compute the *same
operations in the same order* per Philox block in registers, one pass:

* ``uniform``: ``k / 2^53`` with ``k = ((w0 >> 5) << 26) | (w1 >> 6)`` (two per block);
* ``normal``: the portable Box-Muller transform, ``sqrt(-2 log u) (cos, sin)(2 pi j / 2^53)``
  with fdlibm's ``log`` (``e_log.c``) and the integer range reduction and fdlibm kernels of
  :func:`gfgsm.rng._portable.sincos_turns`.

They are equal to the reference bit for bit because every step is an IEEE-754 correctly rounded
operation (``+ - * /``, ``sqrt``, ``floor``, exact integer conversions, ``frexp``) and the
source is compiled with ``--fmad=false``: without it NVCC would contract ``a * b + c`` into a
fused multiply-add, which rounds once instead of twice.  CUDA's double ``sqrt`` and ``/`` are
correctly rounded by default.  The constants are written into the source from
:mod:`gfgsm.rng._portable` as exact hexadecimal literals, so the two cannot drift apart.

The same source compiles as C99 (``SOURCE`` with ``__CUDACC__`` undefined): the test suite
builds it with the host's C compiler (``-ffp-contract=off``) and checks it bitwise against the
array code, so the kernel's arithmetic is tested on every machine, and its CuPy build on a GPU
(``benchmarks/bench_gpu.py``, stage ``bitwise``).
"""

from __future__ import annotations

import math
import os
from functools import cache
from math import ldexp
from typing import Any

from . import _portable
from .philox import M0, M1, W0, W1

__all__ = ["SOURCE", "available", "draw"]

#: Switch for comparisons: ``False`` makes every draw take the array code (the reference);
#: the environment variable ``GFGSM_FUSED=0`` sets it in a new process.
ENABLED = os.environ.get("GFGSM_FUSED", "1") != "0"
#: Threads per block of the CUDA launch (any value gives the same numbers).
_THREADS = 256


def _h(x: float) -> str:
    """An exact C literal of the float64 ``x``."""
    return x.hex()


def _source() -> str:
    p = _portable
    consts = {
        "LN2_HI": p._LN2_HI, "LN2_LO": p._LN2_LO,
        **{f"LG{i + 1}": v for i, v in enumerate(p._LG)},
        **{f"S{i + 1}": v for i, v in enumerate(p._S)},
        **{f"C{i + 1}": v for i, v in enumerate(p._C)},
        "THIRD": 0.33333333333333333,
        "HW_SMALL_LO": p._hw(0, 1), "HW_SMALL_HI": p._hw(0, 0xFFFFE),
        "HW_HFSQ_LO": p._hw(0, 0x6147A), "HW_HFSQ_HI": p._hw(0, 0x6B852),
        "HW_HALF": p._hw(0, 0x6A09C),
        "HW_COS_BIG": p._hw(-2, 0x33333), "HW_COS_QX": p._hw(-1, 0x90001),
        "TWO_M27": ldexp(1.0, -27), "TWO_21": ldexp(1.0, 21), "TWO_M23": ldexp(1.0, -23),
        "TWO_22": ldexp(1.0, 22), "TWO_M24": ldexp(1.0, -24),
        "PIO2_51": ldexp(p._PIO2, -51),
        "TWO_M52": 2.0**-52, "TWO_M53": 2.0**-53,
    }
    defs = "\n".join(f"#define GF_{k} ({_h(float(v))})" for k, v in consts.items())
    return _TEMPLATE.replace("/*CONSTANTS*/", defs).replace(
        "/*PHILOX*/", f"#define GF_M0 {M0}u\n#define GF_M1 {M1}u\n"
                      f"#define GF_W0 {W0}u\n#define GF_W1 {W1}u")


_TEMPLATE = r"""
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GF_DEV __device__ __forceinline__
typedef unsigned long long gf_u64;
typedef unsigned int gf_u32;
#else
#include <math.h>
#include <stdint.h>
#define GF_DEV static inline
typedef uint64_t gf_u64;
typedef uint32_t gf_u32;
#endif
/*CONSTANTS*/
/*PHILOX*/

/* Philox4x32-10 (gfgsm/rng/philox.py): counter c, key (k0, k1). */
GF_DEV void gf_philox(gf_u32 *c, gf_u32 k0, gf_u32 k1) {
    for (int r = 0; r < 10; r++) {
        if (r) { k0 += GF_W0; k1 += GF_W1; }
        gf_u64 p0 = (gf_u64)c[0] * GF_M0;
        gf_u64 p1 = (gf_u64)c[2] * GF_M1;
        gf_u32 n0 = ((gf_u32)(p1 >> 32) ^ c[1]) ^ k0;
        gf_u32 n2 = ((gf_u32)(p0 >> 32) ^ c[3]) ^ k1;
        c[1] = (gf_u32)p1;
        c[3] = (gf_u32)p0;
        c[0] = n0;
        c[2] = n2;
    }
}

/* fdlibm e_log.c for finite x > 0, as gfgsm.rng._portable.log. */
GF_DEV double gf_log(double x) {
    int e;
    double m = frexp(x, &e);
    m = m * 2.0;
    double k = (double)(e - 1);
    int small = (m < GF_HW_SMALL_LO) | (m >= GF_HW_SMALL_HI);
    int hfsq_branch = (m >= GF_HW_HFSQ_LO) & (m < GF_HW_HFSQ_HI);
    if (m >= GF_HW_HALF) { m = m * 0.5; k = k + 1.0; }
    double f = m - 1.0;
    double dk_hi = k * GF_LN2_HI;
    double dk_lo = k * GF_LN2_LO;
    if (small) {
        double r = (f * f) * (0.5 - GF_THIRD * f);
        return dk_hi - ((r - dk_lo) - f);
    }
    double s = f / (2.0 + f);
    double z = s * s;
    double w = z * z;
    double t1 = w * (GF_LG2 + w * (GF_LG4 + w * GF_LG6));
    double t2 = z * (GF_LG1 + w * (GF_LG3 + w * (GF_LG5 + w * GF_LG7)));
    double r = t2 + t1;
    if (hfsq_branch) {
        double hfsq = (0.5 * f) * f;
        return dk_hi - ((hfsq - (s * (hfsq + r) + dk_lo)) - f);
    }
    return dk_hi - ((s * (f - r) - dk_lo) - f);
}

/* (sin, cos)(2 pi j / 2^53), as gfgsm.rng._portable.sincos_turns(j, 53). */
GF_DEV void gf_sincos_turns53(gf_u64 j, double *s_out, double *c_out) {
    const gf_u64 one = 1;
    gf_u64 q = j >> 51;
    gf_u64 r = j & ((one << 51) - 1);
    int refl = r > ((one << 51) >> 1);
    gf_u64 rr = refl ? (one << 51) - r : r;
    double x = (double)rr * GF_PIO2_51;
    double z = x * x;
    double v = z * x;
    double rs = GF_S2 + z * (GF_S3 + z * (GF_S4 + z * (GF_S5 + z * GF_S6)));
    double sn = (x < GF_TWO_M27) ? x : x + v * (GF_S1 + z * rs);
    double rc = z * (GF_C1 + z * (GF_C2 + z * (GF_C3 + z * (GF_C4 + z * (GF_C5 + z * GF_C6)))));
    double zr = z * rc;
    double cs;
    if (x < GF_TWO_M27) {
        cs = 1.0;
    } else if (x < GF_HW_COS_BIG) {
        cs = 1.0 - (0.5 * z - zr);
    } else {
        double qx = (x >= 0.5) ? floor(x * GF_TWO_21) * GF_TWO_M23
                               : floor(x * GF_TWO_22) * GF_TWO_M24;
        if (x >= GF_HW_COS_QX) qx = 0.28125;
        cs = (1.0 - qx) - ((0.5 * z - qx) - zr);
    }
    int qodd = (q & 1) != 0;
    int q2 = (q & 2) != 0;
    double s = (refl ^ qodd) ? cs : sn;
    double c = (refl ^ qodd) ? sn : cs;
    *s_out = q2 ? 0.0 - s : s;
    *c_out = (q2 ^ qodd) ? 0.0 - c : c;
}

/* Block b of replication rep: counter (b, 0, variable, rep). */
GF_DEV void gf_words(gf_u64 b, gf_u32 rep, gf_u32 k0, gf_u32 k1, gf_u32 variable, gf_u32 *w) {
    w[0] = (gf_u32)b; w[1] = 0u; w[2] = variable; w[3] = rep;
    gf_philox(w, k0, k1);
}

GF_DEV void gf_normal_block(gf_u64 b, gf_u32 rep, gf_u32 k0, gf_u32 k1, gf_u32 variable,
                            double *out) {
    gf_u32 w[4];
    gf_words(b, rep, k0, k1, variable, w);
    gf_u64 ku = (((gf_u64)w[0] >> 6) << 26) | ((gf_u64)w[1] >> 6);
    double u = ((double)ku + 0.5) * GF_TWO_M52;
    double rad = sqrt(-2.0 * gf_log(u));
    gf_u64 j = (((gf_u64)w[2] >> 5) << 26) | ((gf_u64)w[3] >> 6);
    double s, c;
    gf_sincos_turns53(j, &s, &c);
    out[0] = rad * c;
    out[1] = rad * s;
}

GF_DEV void gf_uniform_block(gf_u64 b, gf_u32 rep, gf_u32 k0, gf_u32 k1, gf_u32 variable,
                             double *out) {
    gf_u32 w[4];
    gf_words(b, rep, k0, k1, variable, w);
    out[0] = (double)((((gf_u64)w[0] >> 5) << 26) | ((gf_u64)w[1] >> 6)) * GF_TWO_M53;
    out[1] = (double)((((gf_u64)w[2] >> 5) << 26) | ((gf_u64)w[3] >> 6)) * GF_TWO_M53;
}

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GF_KERNEL(NAME, BLOCK)                                                              \
extern "C" __global__ void NAME(const gf_u64 *reps, gf_u32 k0, gf_u32 k1, gf_u32 variable,  \
                                long long n_blocks, long long total, double *out) {         \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;         \
         i += (long long)blockDim.x * gridDim.x) {                                          \
        long long r = i / n_blocks;                                                         \
        BLOCK((gf_u64)(i - r * n_blocks), (gf_u32)reps[r], k0, k1, variable, out + 2 * i);  \
    }                                                                                       \
}
#else
#define GF_KERNEL(NAME, BLOCK)                                                              \
void NAME(const gf_u64 *reps, gf_u32 k0, gf_u32 k1, gf_u32 variable, long long n_blocks,    \
          long long total, double *out) {                                                   \
    for (long long i = 0; i < total; i++) {                                                 \
        long long r = i / n_blocks;                                                         \
        BLOCK((gf_u64)(i - r * n_blocks), (gf_u32)reps[r], k0, k1, variable, out + 2 * i);  \
    }                                                                                       \
}
void gf_log_many(const double *x, double *out, long long n) {
    for (long long i = 0; i < n; i++) out[i] = gf_log(x[i]);
}
void gf_sincos_many(const gf_u64 *j, double *s, double *c, long long n) {
    for (long long i = 0; i < n; i++) gf_sincos_turns53(j[i], s + i, c + i);
}
#endif
GF_KERNEL(gf_normal, gf_normal_block)
GF_KERNEL(gf_uniform, gf_uniform_block)
"""

#: The kernels' source (CUDA C; C99 when ``__CUDACC__`` is not defined).
SOURCE = _source()
#: NVRTC options: no contraction into fused multiply-adds (module docstring).
OPTIONS = ("--fmad=false",)


def available(xp: Any) -> bool:
    """Whether draws in namespace ``xp`` take the fused kernels (CuPy, and :data:`ENABLED`)."""
    if not ENABLED:
        return False
    import array_api_compat

    return bool(array_api_compat.is_cupy_namespace(xp))


@cache
def _module() -> Any:  # pragma: no cover - needs a GPU
    import cupy

    mod = cupy.RawModule(code=SOURCE, options=OPTIONS)
    mod.compile()
    return mod


def draw(kind: str, key: tuple[int, int], variable: int, reps: Any, n_blocks: int
         ) -> Any:  # pragma: no cover - needs a GPU
    """``(R, n_blocks, 2)`` draws of ``kind`` (``"normal"`` or ``"uniform"``) on the device:
    output ``i`` of block ``b`` of replication ``reps[r]``, as the array code computes it."""
    import cupy

    if n_blocks >= 2**32:
        raise ValueError("a fused draw takes fewer than 2^32 blocks per replication")
    R = int(reps.shape[0])
    total = R * n_blocks
    out = cupy.empty((R, n_blocks, 2), dtype=cupy.float64)
    if total == 0:
        return out
    kern = _module().get_function(f"gf_{kind}")
    grid = min(math.ceil(total / _THREADS), 65535 * 8)
    kern((grid,), (_THREADS,), (cupy.ascontiguousarray(reps, dtype=cupy.uint64),
                                cupy.uint32(key[0]), cupy.uint32(key[1]),
                                cupy.uint32(variable), cupy.int64(n_blocks),
                                cupy.int64(total), out))
    return out
