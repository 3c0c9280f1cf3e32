"""Elementary functions that give the same float64 bits on every Array-API backend.

``xp.log``/``xp.exp``/``xp.sin`` are libm (or SIMD, or CUDA) code whose last bit differs between
NumPy, CuPy and platforms.  The functions here are built only from IEEE-754 correctly rounded
operations applied one at a time (``+ - * /``, ``floor``, ``abs``, ``where``, comparisons,
exact float64/int64 conversions of integers below 2^53, integer bit operations), so each result
is a fixed function of the input bits on any conforming backend.  Every step is a separate array
operation, so no compiler can contract ``a*b + c`` into an FMA.  No reduction, no ``pow`` and no
bit reinterpretation is used: where fdlibm reads exponent bits we compare against, and multiply
by, exact powers of two.

Kernels (same constants and evaluation order) from fdlibm 5.3, Sun Microsystems, 1993:
``e_log.c``, ``e_exp.c``, ``k_sin.c``, ``k_cos.c``; :func:`loggam` is NumPy's ``random_loggam``
(``numpy/random/src/distributions/distributions.c``).  Each function takes the namespace: ``f(x,
xp)`` with ``x`` a float64 array of ``xp``.
"""

from __future__ import annotations

from math import ldexp
from typing import Any

__all__ = ["exp", "log", "loggam", "sincos_turns"]

_INF = float("inf")
#: Use the namespace's exact ``frexp`` in :func:`log` when it has one (switched off in tests to
#: compare with the ladder).
_FREXP = True
_NAN = float("nan")

# fdlibm e_log.c / e_exp.c
_LN2_HI = 6.93147180369123816490e-01  # 3fe62e42 fee00000: k*LN2_HI exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10  # 3dea39ef 35793c76
_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
       2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
       1.479819860511658591e-01)  # Lg1..Lg7
_INVLN2 = 1.44269504088896338700e+00
_P = (1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
      -1.65339022054652515390e-06, 4.13813679705723846039e-08)  # P1..P5
_O_THRESHOLD = 7.09782712893383973096e+02
_U_THRESHOLD = -7.45133219101941108420e+02
# fdlibm k_sin.c / k_cos.c
_S = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
      2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_C = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
      -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)
_PIO2 = 1.5707963267948966  # pi/2 rounded to float64
# NumPy random_loggam
_LOGGAM_A = (8.333333333333333e-02, -2.777777777777778e-03, 7.936507936507937e-04,
             -5.952380952380952e-04, 8.417508417508418e-04, -1.917526917526918e-03,
             6.410256410256410e-03, -2.955065359477124e-02, 1.796443723688307e-01,
             -1.39243221690590e+00)
_HALF_LG2PI = 0.5 * 1.8378770664093453  # C folds 0.5*lg2pi; halving is exact


def _hw(e: int, hi20: int) -> float:
    """The double whose high word has exponent ``e`` and top mantissa bits ``hi20``, low word 0.

    fdlibm's tests on the high word ``hx`` become exact comparisons with these thresholds.
    """
    return ldexp(1.0 + ldexp(hi20, -20), e)


def log(x: Any, xp: Any) -> Any:
    """Natural logarithm, fdlibm ``e_log.c`` (error < 1 ulp), bit-identical on every backend.

    Reduction without bit access: ``x = 2^k * m``.  Subnormals are first scaled by 2^54, values
    below 1 by 2^1022, then a binary ladder divides by 2^512, 2^256, ..., 2 wherever ``m >=
    2^s``, leaving ``m`` in [1, 2); each step multiplies by a power of two, which is exact for
    normal numbers, and ``k`` is a float64 integer (exact).  As in fdlibm, ``m`` is halved (and
    ``k`` raised) when its top 20 mantissa bits reach 0x6a09c (``m`` ~ sqrt(2)), so m lies in
    [sqrt(2)/2, sqrt(2)) and ``f = m - 1`` is exact (Sterbenz).  Then, with fdlibm's order:

    * ``|f| < 2^-20``: ``R = f*f*(0.5 - f/3)``, ``log = k*ln2_hi - ((R - k*ln2_lo) - f)``;
    * else ``s = f/(2+f)``, ``z = s*s``, ``w = z*z``, ``R = z*(Lg1 + w*(Lg3 + w*(Lg5 +
      w*Lg7))) + w*(Lg2 + w*(Lg4 + w*Lg6))`` and ``log = k*ln2_hi - ((hfsq - (s*(hfsq + R)
      + k*ln2_lo)) - f)`` with ``hfsq = f*f/2`` when the top mantissa bits lie in
      [0x6147a, 0x6b851], else ``log = k*ln2_hi - ((s*(f - R) - k*ln2_lo) - f)``.

    ``k*ln2_hi`` is exact (ln2_hi has 32 trailing zero bits).  fdlibm's separate ``k == 0``
    formulas give the same bits as these with ``k = 0`` (``0 - (a - f)`` is ``f - a`` exactly),
    so ``log(1) == +0``.  Specials like NumPy: ``log(0) = -inf``, ``log(inf) = inf``, NaN for
    negative or NaN input; subnormals are handled exactly.
    """
    ok = (x > 0.0) & (x < _INF)
    m = xp.where(ok, x, 1.0)
    m, k = _reduce(m, xp)
    # m in [1, 2): fdlibm's tests on hx = top 20 mantissa bits of m
    small = (m < _hw(0, 1)) | (m >= _hw(0, 0xFFFFE))  # hx in {0, 0xffffe, 0xfffff}
    hfsq_branch = (m >= _hw(0, 0x6147A)) & (m < _hw(0, 0x6B852))  # (hx-0x6147a)|(0x6b851-hx) > 0
    half = m >= _hw(0, 0x6A09C)
    m = xp.where(half, m * 0.5, m)
    k = xp.where(half, k + 1.0, k)
    f = m - 1.0
    dk_hi = k * _LN2_HI
    dk_lo = k * _LN2_LO
    # |f| < 2^-20
    r_small = (f * f) * (0.5 - 0.33333333333333333 * f)
    res_small = dk_hi - ((r_small - dk_lo) - f)
    # general case
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG[1] + w * (_LG[3] + w * _LG[5]))
    t2 = z * (_LG[0] + w * (_LG[2] + w * (_LG[4] + w * _LG[6])))
    r = t2 + t1
    hfsq = (0.5 * f) * f
    res_h = dk_hi - ((hfsq - (s * (hfsq + r) + dk_lo)) - f)
    res_n = dk_hi - ((s * (f - r) - dk_lo) - f)
    res = xp.where(small, res_small, xp.where(hfsq_branch, res_h, res_n))
    special = xp.where(x == 0.0, -_INF, xp.where(x > 0.0, _INF, xp.full_like(x, _NAN)))
    return xp.where(ok, res, special)


def _reduce(m: Any, xp: Any) -> tuple[Any, Any]:
    """``m = 2^k * f`` with ``f`` in [1, 2) and ``k`` a float64 integer, both exact.

    ``frexp`` where the namespace has it (NumPy, CuPy: it reads the exponent bits, exactly);
    otherwise the ladder of exact multiplications by powers of two.  Both are exact, so they
    give the same ``(f, k)`` (tested), and the fast one is only a shortcut.
    """
    if _FREXP and hasattr(xp, "frexp"):
        f, e = xp.frexp(m)
        return f * 2.0, xp.astype(e, xp.float64) - 1.0
    return _reduce_ladder(m, xp)


def _reduce_ladder(m: Any, xp: Any) -> tuple[Any, Any]:
    one = xp.ones_like(m)
    sub = m < ldexp(1.0, -1022)
    m = m * xp.where(sub, ldexp(1.0, 54), one)  # factor selected first: no overflow
    k = xp.where(sub, -54.0, xp.zeros_like(m))
    low = m < 1.0
    m = m * xp.where(low, ldexp(1.0, 1022), one)
    k = xp.where(low, k - 1022.0, k)
    for s in (512, 256, 128, 64, 32, 16, 8, 4, 2, 1):
        up = m >= ldexp(1.0, s)
        m = xp.where(up, m * ldexp(1.0, -s), m)
        k = xp.where(up, k + float(s), k)
    return m, k


def _pow2_int(e: Any, xp: Any, like: Any) -> Any:
    """2^e for an int64 array 0 <= e <= 1023: a ladder of exact products of powers of two."""
    p = xp.ones_like(like)
    for s in (512, 256, 128, 64, 32, 16, 8, 4, 2, 1):
        p = xp.where((e & s) != 0, p * ldexp(1.0, s), p)
    return p


def exp(x: Any, xp: Any) -> Any:
    """Exponential, fdlibm ``e_exp.c`` (error < 1 ulp), bit-identical on every backend.

    ``k = 0`` for ``|x| <= ln2/2``, ``k = +-1`` for ``|x| < 1.5 ln2``, else ``k =
    sign(x)*floor(|x|/ln2 + 0.5)`` (fdlibm's ``(int)(invln2*x +- 0.5)``; negation is exact so
    working on ``|x|`` gives the same bits).  ``hi = x - k*ln2_hi`` (exact), ``lo = k*ln2_lo``,
    ``r = hi - lo``, ``t = r*r``, ``c = r - t*(P1 + t*(P2 + t*(P3 + t*(P4 + t*P5))))`` and
    ``y = 1 - ((lo - (r*c)/(2 - c)) - hi)``, which for ``k = 0`` is bit-for-bit fdlibm's ``1 -
    ((x*c)/(c - 2) - x)``; ``|x| < 2^-28`` gives ``1 + x``.

    Scaling by 2^k: fdlibm adds ``k`` to the exponent field.  Here ``y`` is multiplied by
    ``2^floor(k/2)`` and then by ``2^ceil(k/2)``, each built by an exact ladder of powers of two;
    both products are exact and no intermediate overflows when the result is finite (the first
    factor is at most 2^512).  For ``k < -1021`` (subnormal results) fdlibm's path is followed:
    scale by ``2^(k+1000)`` exactly, then one rounding multiplication by 2^-1000, so subnormal
    results are fdlibm's too.  ``x > 709.78...`` gives inf, ``x < -745.13...`` gives 0, NaN
    stays NaN.
    """
    ok = (x <= _O_THRESHOLD) & (x >= _U_THRESHOLD)
    xs = xp.where(ok, x, 0.0)
    ax = xp.abs(xs)
    kg = xp.floor(ax * _INVLN2 + 0.5)
    ka = xp.where(ax >= _hw(-2, 0x62E43), xp.where(ax < _hw(0, 0x0A2B2), 1.0, kg), 0.0)
    k = xp.where(xs < 0.0, 0.0 - ka, ka)
    hi = xs - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P[0] + t * (_P[1] + t * (_P[2] + t * (_P[3] + t * _P[4]))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    y = xp.where(ax < ldexp(1.0, -28), 1.0 + xs, y)
    sub = k < -1021.0
    kk = xp.where(sub, k + 1000.0, k)
    k1 = xp.floor(kk * 0.5)
    k2 = kk - k1
    p = _pow2_int(xp.astype(xp.abs(k1), xp.int64), xp, y)
    s1 = xp.where(k1 < 0.0, 1.0 / p, p)  # 1/2^e is exact for e <= 1022
    s2 = xp.where(k2 > k1, s1 * 2.0, s1)
    y = (y * s1) * s2
    y = xp.where(sub, y * ldexp(1.0, -1000), y)
    y = xp.where(x > _O_THRESHOLD, _INF, xp.where(x < _U_THRESHOLD, 0.0, y))
    return xp.where(x != x, x, y)


def _kernel_sin(x: Any, xp: Any) -> Any:
    """fdlibm ``__kernel_sin(x, 0, 0)`` for 0 <= x <= pi/4."""
    z = x * x
    v = z * x
    r = _S[1] + z * (_S[2] + z * (_S[3] + z * (_S[4] + z * _S[5])))
    return xp.where(x < ldexp(1.0, -27), x, x + v * (_S[0] + z * r))


def _kernel_cos(x: Any, xp: Any) -> Any:
    """fdlibm ``__kernel_cos(x, 0)`` for 0 <= x <= pi/4, with its ``qx`` trick for x >= 0.3.

    ``qx`` is x/4 with x truncated to its high word (top 20 mantissa bits): ``floor(x*2^22)*2^-24``
    on [0.25, 0.5) and ``floor(x*2^21)*2^-23`` on [0.5, 1), exact; 0.28125 above 0.78125.
    """
    z = x * x
    r = z * (_C[0] + z * (_C[1] + z * (_C[2] + z * (_C[3] + z * (_C[4] + z * _C[5])))))
    zr = z * r  # fdlibm's z*r - x*y with y = 0
    c_small = 1.0 - (0.5 * z - zr)
    qx = xp.where(x >= 0.5,
                  xp.floor(x * ldexp(1.0, 21)) * ldexp(1.0, -23),
                  xp.floor(x * ldexp(1.0, 22)) * ldexp(1.0, -24))
    qx = xp.where(x >= _hw(-1, 0x90001), 0.28125, qx)
    c_big = (1.0 - qx) - ((0.5 * z - qx) - zr)
    c = xp.where(x < _hw(-2, 0x33333), c_small, c_big)
    return xp.where(x < ldexp(1.0, -27), 1.0, c)


def sincos_turns(j: Any, bits: int, xp: Any) -> tuple[Any, Any]:
    """``(sin(2*pi*t), cos(2*pi*t))`` for ``t = j / 2^bits``, bit-identical on every backend.

    ``j``: unsigned (or non-negative int64) integer array, ``0 <= j < 2^bits``, ``bits <= 53``
    (larger ``j`` wrap around, the functions being periodic).  The range reduction is done on
    the integer, exactly: quadrant ``q = j >> (bits - 2)``, remainder ``r = j & (2^(bits-2) -
    1)``, ``t' = r / 2^(bits-2)`` in [0, 1); when ``t' > 1/2`` it is reflected to ``1 - t'``
    (integer ``2^(bits-2) - r``, exact) and sin/cos are swapped.  The one rounding of the
    reduction is ``x = rr * (pi/2 * 2^-(bits-2))`` (a float product; the constant is fl(pi/2)
    times a power of two, itself exact), x in [0, pi/4], relative error <= 1.35 * 2^-53.  Then
    fdlibm's ``__kernel_sin`` (S1..S6) and ``__kernel_cos`` (C1..C6, ``qx`` trick) and the
    quadrant signs.  Multiples of pi/2 give exact 0 and +-1; no result is -0.
    """
    if not 0 <= bits <= 53:
        raise ValueError(f"bits must be in 0..53, got {bits}")
    if bits < 2:
        j = j << (2 - bits)
        bits = 2
    nb = bits - 2
    q = j >> nb
    r = j & ((1 << nb) - 1)
    refl = r > ((1 << nb) >> 1)
    rr = xp.where(refl, (1 << nb) - r, r)
    x = xp.astype(rr, xp.float64) * ldexp(_PIO2, -nb)
    sn = _kernel_sin(x, xp)
    cs = _kernel_cos(x, xp)
    qodd = (q & 1) != 0
    swap = xp.logical_xor(refl, qodd)
    s = xp.where(swap, cs, sn)
    c = xp.where(swap, sn, cs)
    s = xp.where((q & 2) != 0, 0.0 - s, s)
    c = xp.where(xp.logical_xor((q & 2) != 0, qodd), 0.0 - c, c)
    return s, c


def loggam(x: Any, xp: Any) -> Any:
    """log Gamma(x) for x > 0: NumPy's ``random_loggam``, vectorised, with :func:`log`.

    ``n = floor(7 - x)`` for ``x < 7`` (C's truncation of a positive value), ``x0 = x + n``,
    ``x2 = (1/x0)*(1/x0)``, Stirling series ``gl0 = a9; gl0 = gl0*x2 + a_k`` (k = 8..0, two
    operations each), ``gl = gl0/x0 + lg2pi/2 + (x0 - 0.5)*log(x0) - x0`` (left to right),
    then for ``k = 1..n``: ``gl -= log(x0 - 1); x0 -= 1`` (the loop runs over k = 1..7 with
    masks, not over elements).  ``loggam(1) == loggam(2) == 0`` exactly.  Accuracy is
    NumPy's: relative ~1e-15 away from the zeros of log Gamma at 1 and 2, absolute ~1e-15 near
    them.  Non-positive or NaN input gives NaN, +inf gives inf.
    """
    ok = (x > 0.0) & (x < _INF)
    xs = xp.where(ok, x, 1.0)
    below = xs < 7.0
    n = xp.where(below, xp.floor(7.0 - xs), 0.0)
    x0 = xs + n
    inv = 1.0 / x0
    x2 = inv * inv
    gl0 = xp.full_like(xs, _LOGGAM_A[9])
    for a in _LOGGAM_A[8::-1]:
        gl0 = gl0 * x2
        gl0 = gl0 + a
    gl = ((gl0 / x0 + _HALF_LG2PI) + (x0 - 0.5) * log(x0, xp)) - x0
    for kk in range(1, 8):
        step = n >= float(kk)
        x0m = x0 - 1.0
        gl = xp.where(step, gl - log(xp.where(step, x0m, 1.0), xp), gl)
        x0 = xp.where(step, x0m, x0)
    gl = xp.where((xs == 1.0) | (xs == 2.0), 0.0, gl)
    special = xp.where(x == _INF, _INF, xp.full_like(x, _NAN))
    return xp.where(ok, gl, special)
