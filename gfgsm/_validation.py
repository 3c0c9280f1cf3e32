"""Scalar argument checks shared by the package (host side, at the boundary).

Every check takes the parameter's ``name`` first and its ``value`` second, returns the value
converted (``float`` or ``int``) and raises ``ValueError`` with a message that names both.  A
``bool`` (Python or NumPy) is never a number here, although Python counts ``True`` as ``1``.

This is the lowest layer beside :mod:`gfgsm._backend`: it imports only the standard library and
NumPy, so any module of the package can use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "int_at_least",
    "is_int",
    "is_real",
    "norm_q",
    "positive_int",
    "power_r",
    "real",
    "real_in",
    "real_range",
]


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (a ``numbers.Real``, not a bool); NaN and inf are."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (a ``numbers.Integral``, not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def real(name: str, value: Any) -> float:
    """``float(value)`` for any real number (NaN and inf included)."""
    if not is_real(value):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _holds(x: float, lo: float, hi: float, lo_open: bool, hi_open: bool) -> bool:
    # Written with the comparisons themselves so that NaN fails every bound.
    return (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)


def real_range(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False,
               hi_open: bool = False, note: str = "", fmt: Callable[[float], str] = repr) -> float:
    """A real number in the interval from ``lo`` to ``hi`` (``+-inf`` allowed as closed bounds).

    ``ValueError`` "``{name} must be a real number, got ...``" for a non-number, else
    "``{name} must satisfy lo <= name < hi{note}, got fmt(float(value))``" (the signs follow
    ``lo_open`` and ``hi_open``); NaN never satisfies it."""
    x = real(name, value)
    if not _holds(x, lo, hi, lo_open, hi_open):
        ops = ("<" if lo_open else "<=", "<" if hi_open else "<=")
        raise ValueError(
            f"{name} must satisfy {lo} {ops[0]} {name} {ops[1]} {hi}{note}, got {fmt(x)}"
        )
    return x


def real_in(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf,
            lo_open: bool = False, hi_open: bool = False, *, rule: str | None = None) -> float:
    """A *finite* real number in the interval from ``lo`` to ``hi``.

    ``ValueError`` "``{name} must be {rule}, got {value!r}``", where ``rule`` defaults to
    "``a number in [lo, hi]``" (brackets after ``lo_open`` and ``hi_open``)."""
    ok = is_real(value) and math.isfinite(value) and _holds(value, lo, hi, lo_open, hi_open)
    if not ok:
        if rule is None:
            lb, rb = ("(" if lo_open else "["), (")" if hi_open else "]")
            rule = f"a number in {lb}{lo}, {hi}{rb}"
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return float(value)


def positive_int(name: str, value: Any, *, integral_float: bool = False) -> int:
    """An integer ``>= 1``; with ``integral_float`` also an integral-valued float such as ``3.0``
    (parameters that often arrive from configuration files).

    ``ValueError`` "``{name} must be a positive integer, got {value!r}``"."""
    ok = is_int(value) or (integral_float and is_real(value) and float(value).is_integer())
    if not ok or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def int_at_least(name: str, value: Any, minimum: int = 1) -> int:
    """An integer ``>= minimum``.

    ``ValueError`` "``{name} must be an integer >= {minimum}, got {value!r}``"."""
    if not is_int(value) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def norm_q(q: Any) -> float:
    """The norm ``1 <= q <= inf`` of an lq ball (the lq scheme and its dual-norm penalty)."""
    return real_range("q", q, 1, math.inf)


def power_r(r: Any) -> float:
    """The exponent ``1 <= r < inf`` of the power scheme and its induced penalty."""
    return real_range("r", r, 1, math.inf, hi_open=True)
