"""``gfgsm summarize DIR``: the performance measures of a results store, as text."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from .measures import convergence, format_estimate, performance
from .store import load

__all__ = ["summarize", "summary_frame"]


def _factors(path: Path) -> list[str]:
    manifest = json.loads((path / "manifest.json").read_text())
    return list(manifest["study"].get("factors", []))


def summary_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Per condition x method x parameter: bias, EmpSE, RMSE with MCSEs (converged fits only)."""
    path = Path(path)
    df = load(path)
    if df.empty:
        raise ValueError(f"results store {str(path)!r} holds no finished chunks yet")
    by = ("condition", *_factors(path), "method", "param")
    return performance(df, by=by)


def summarize(path: str | os.PathLike[str]) -> str:
    """A printable summary: convergence per condition x method, then the measures."""
    path = Path(path)
    perf = summary_frame(path)
    factors = _factors(path)
    df = load(path)
    conv = convergence(df, by=("condition", *factors, "method"))
    lines = [f"results store {path}", "", "convergence (fits not converged are excluded below):"]
    lines.append(conv.to_string(index=False))
    table = perf[["condition", *factors, "method", "param", "n_used"]].copy()
    for m in ("bias", "empse", "rmse"):
        table[m] = [format_estimate(v, s) for v, s in zip(perf[m], perf[m + "_mcse"],
                                                          strict=True)]
    lines += ["", "performance, estimate (Monte Carlo SE):", table.to_string(index=False)]
    return "\n".join(lines)
