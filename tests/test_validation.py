"""The shared scalar checks of gfgsm._validation: what each accepts, what it rejects (bools,
NaN, infinities, wrong types, the bounds) and the exact messages the package's errors carry."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest

from gfgsm._validation import (
    int_at_least,
    is_int,
    is_real,
    norm_q,
    positive_int,
    power_r,
    real,
    real_in,
    real_range,
)

NOT_NUMBERS = [True, False, np.True_, "1", None, 1 + 0j, [1.0], np.array([1.0]), np.array(1.0)]


def _raises(message: str):
    """``pytest.raises(ValueError)`` matching ``message`` exactly (as a whole)."""
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")


# --------------------------------------------------------------------------------------------
# predicates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [0, -3, 2.5, np.float64(1.5), np.float32(2.0), np.int64(4), Fraction(1, 3),
              math.nan, math.inf, -math.inf]
)
def test_is_real_accepts_real_numbers_nan_and_inf(value):
    assert is_real(value)


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_is_real_rejects_bools_and_non_numbers(value):
    assert not is_real(value)


@pytest.mark.parametrize("value", [0, -3, 7, np.int64(4), np.uint8(2)])
def test_is_int_accepts_integers(value):
    assert is_int(value)


@pytest.mark.parametrize("value", [*NOT_NUMBERS, 3.0, np.float64(3.0), math.inf, math.nan])
def test_is_int_rejects_bools_floats_and_non_numbers(value):
    assert not is_int(value)


# --------------------------------------------------------------------------------------------
# real
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [3, -2.5, np.float64(0.25), np.int64(7), Fraction(1, 4)])
def test_real_returns_a_float(value):
    out = real("x", value)
    assert type(out) is float and out == float(value)


def test_real_passes_nan_and_inf_through():
    assert math.isnan(real("x", math.nan))
    assert real("x", -math.inf) == -math.inf


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_real_rejects_bools_and_non_numbers(value):
    with _raises(f"x must be a real number, got {value!r}"):
        real("x", value)


# --------------------------------------------------------------------------------------------
# real_range (the "must satisfy lo <= name <= hi" checks of the penalties and schemes)
# --------------------------------------------------------------------------------------------


def test_real_range_closed_bounds_include_the_ends_and_inf():
    assert real_range("q", 1, 1, math.inf) == 1.0
    assert real_range("q", math.inf, 1, math.inf) == math.inf
    assert type(real_range("q", 2, 1, math.inf)) is float


def test_real_range_open_bounds_exclude_the_ends():
    assert real_range("a", 2.5, 2, math.inf, lo_open=True, hi_open=True) == 2.5
    with _raises("a must satisfy 2 < a < inf, got 2.0"):
        real_range("a", 2, 2, math.inf, lo_open=True, hi_open=True)
    with _raises("a must satisfy 2 < a < inf, got inf"):
        real_range("a", math.inf, 2, math.inf, lo_open=True, hi_open=True)
    with _raises("r must satisfy 0 < r <= 2, got 0.0"):
        real_range("r", 0, 0, 2, lo_open=True)
    assert real_range("r", 2, 0, 2, lo_open=True) == 2.0


@pytest.mark.parametrize("value", [math.nan, np.float64(math.nan)])
def test_real_range_rejects_nan(value):
    with _raises("q must satisfy 1 <= q <= inf, got nan"):
        real_range("q", value, 1, math.inf)


def test_real_range_rejects_non_numbers_with_the_real_message():
    for value in NOT_NUMBERS:
        with _raises(f"r must be a real number, got {value!r}"):
            real_range("r", value, 0, 2, lo_open=True)


def test_real_range_note_and_format():
    with _raises("eps must satisfy 0 < eps < inf (or be None), got -1.0"):
        real_range("eps", -1, 0, math.inf, lo_open=True, hi_open=True, note=" (or be None)")
    with _raises("r must satisfy 0 < r <= 2, got 3"):
        real_range("r", 3.0, 0, 2, lo_open=True, fmt=lambda x: repr(int(x)))


# --------------------------------------------------------------------------------------------
# real_in (finite numbers in an interval)
# --------------------------------------------------------------------------------------------


def test_real_in_accepts_finite_numbers_in_the_interval():
    assert real_in("w", 0, 0, 1) == 0.0
    assert real_in("w", 1, 0, 1) == 1.0
    assert real_in("w", np.float32(0.5), 0, 1) == 0.5
    out = real_in("x", -1e300)
    assert type(out) is float and out == -1e300


@pytest.mark.parametrize(
    ("value", "kw", "message"),
    [
        (1.5, {}, "w must be a number in [0, 1], got 1.5"),
        (-0.1, {}, "w must be a number in [0, 1], got -0.1"),
        (0, {"lo_open": True}, "w must be a number in (0, 1], got 0"),
        (1, {"hi_open": True}, "w must be a number in [0, 1), got 1"),
        (math.nan, {}, "w must be a number in [0, 1], got nan"),
        (math.inf, {}, "w must be a number in [0, 1], got inf"),
        (True, {}, "w must be a number in [0, 1], got True"),
        (np.True_, {}, "w must be a number in [0, 1], got np.True_"),
        ("0.5", {}, "w must be a number in [0, 1], got '0.5'"),
        (None, {}, "w must be a number in [0, 1], got None"),
    ],
)
def test_real_in_rejects_with_the_interval_message(value, kw, message):
    with _raises(message):
        real_in("w", value, 0, 1, **kw)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, False, "1"])
def test_real_in_unbounded_still_needs_a_finite_number(value):
    with _raises(f"intercept must be a finite real number, got {value!r}"):
        real_in("intercept", value, rule="a finite real number")


def test_real_in_rule_replaces_the_interval_text():
    assert real_in("lam", 0, 0, rule="a finite number >= 0") == 0.0
    with _raises("lam must be a finite number >= 0, got -1"):
        real_in("lam", -1, 0, rule="a finite number >= 0")
    with _raises("sigma must be a positive finite number, got 0.0"):
        real_in("sigma", 0.0, 0, lo_open=True, rule="a positive finite number")


# --------------------------------------------------------------------------------------------
# integers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint16(2)])
def test_positive_int_accepts_positive_integers(value):
    out = positive_int("n", value)
    assert type(out) is int and out == int(value)


@pytest.mark.parametrize(
    "value", [0, -3, 2.5, 3.0, np.float64(2.0), math.inf, math.nan, *NOT_NUMBERS]
)
def test_positive_int_rejects(value):
    with _raises(f"n must be a positive integer, got {value!r}"):
        positive_int("n", value)


@pytest.mark.parametrize("value", [3, 3.0, np.float64(2.0), np.int64(5), Fraction(4, 1)])
def test_positive_int_integral_float_accepts_integral_values(value):
    out = positive_int("b", value, integral_float=True)
    assert type(out) is int and out == int(value)


@pytest.mark.parametrize("value", [0, 0.0, -3, 2.5, math.inf, math.nan, True, "4", None])
def test_positive_int_integral_float_rejects(value):
    with _raises(f"b must be a positive integer, got {value!r}"):
        positive_int("b", value, integral_float=True)


def test_int_at_least_bounds_and_message():
    assert int_at_least("k", 1) == 1
    assert int_at_least("k", 0, 0) == 0
    out = int_at_least("n_boot", np.int64(20), 20)
    assert type(out) is int and out == 20
    with _raises("k must be an integer >= 1, got 0"):
        int_at_least("k", 0)
    with _raises("n_boot must be an integer >= 20, got 19"):
        int_at_least("n_boot", 19, 20)


@pytest.mark.parametrize("value", [20.0, math.inf, math.nan, True, np.True_, "30", None])
def test_int_at_least_rejects_non_integers(value):
    with _raises(f"n_boot must be an integer >= 20, got {value!r}"):
        int_at_least("n_boot", value, 20)


# --------------------------------------------------------------------------------------------
# the scheme exponents
# --------------------------------------------------------------------------------------------


def test_norm_q():
    assert norm_q(1) == 1.0 and norm_q(2) == 2.0 and norm_q(math.inf) == math.inf
    with _raises("q must satisfy 1 <= q <= inf, got 0.5"):
        norm_q(0.5)
    with _raises("q must satisfy 1 <= q <= inf, got nan"):
        norm_q(math.nan)
    with _raises("q must be a real number, got True"):
        norm_q(True)


def test_power_r():
    assert power_r(1) == 1.0 and power_r(3.5) == 3.5
    with _raises("r must satisfy 1 <= r < inf, got 0.9"):
        power_r(0.9)
    with _raises("r must satisfy 1 <= r < inf, got inf"):
        power_r(math.inf)
    with _raises("r must be a real number, got '2'"):
        power_r("2")
