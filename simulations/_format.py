"""Text and axis formatting shared by the study modules' report sections.

Each helper writes exactly what the copies it replaced wrote, so the report is unchanged:

* :func:`fmt_estimate` -- an estimate with its Monte Carlo standard error, ``0.123 (0.004)``;
* :func:`fmt_estimate_or_na` -- the same, but ``NA`` for a missing estimate and the bare
  estimate (3 significant digits) where the standard error is missing or zero;
* :func:`fmt_interval`, :func:`fmt_ci`, :func:`fmt_ci_words` -- an interval ``[lo, hi]``, a
  value with its interval ``v [lo, hi]``, and the same in words ``v (95% CI lo to hi)``, each
  number written with the format ``spec``;
* :func:`plain_log_axis` -- a log axis with ticks labelled as plain numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gfgsm.mc.measures import format_estimate

__all__ = [
    "fmt_ci",
    "fmt_ci_words",
    "fmt_estimate",
    "fmt_estimate_or_na",
    "fmt_interval",
    "plain_log_axis",
]


def fmt_estimate(v: float, s: float) -> str:
    """``v`` with its standard error ``s``, by :func:`gfgsm.mc.measures.format_estimate`."""
    return format_estimate(float(v), float(s))


def fmt_estimate_or_na(v: float, se: float) -> str:
    """:func:`fmt_estimate` where both are usable; ``NA`` for a non-finite ``v``; ``v`` alone
    (``.3g``) for a non-finite or zero ``se``."""
    if not np.isfinite(v):
        return "NA"
    return format_estimate(v, se) if np.isfinite(se) and se > 0 else f"{v:.3g}"


def fmt_interval(lo: float, hi: float, spec: str = ".3f") -> str:
    """``[lo, hi]``, both written with the format ``spec``."""
    return f"[{lo:{spec}}, {hi:{spec}}]"


def fmt_ci(value: float, lo: float, hi: float, spec: str = ".3f") -> str:
    """``value [lo, hi]``, all three written with the format ``spec``."""
    return f"{value:{spec}} {fmt_interval(lo, hi, spec)}"


def fmt_ci_words(value: float, lo: float, hi: float, spec: str = ".3f") -> str:
    """``value (95% CI lo to hi)``, all three written with the format ``spec``."""
    return f"{value:{spec}} (95% CI {lo:{spec}} to {hi:{spec}})"


def plain_log_axis(axis: Any, ticks: Any) -> None:
    """Log axis with ticks at ``ticks`` labelled as plain numbers (no minor labels)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    axis.set_major_locator(FixedLocator(list(ticks)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())
