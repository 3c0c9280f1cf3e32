"""``gfgsm summarize DIR``: the performance measures of a results store, as text."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from .measures import convergence, format_estimate, performance
from .store import load

__all__ = ["means_frame", "summarize", "summary_frame"]


def _study(path: Path) -> dict:
    """The study definition recorded in a store's manifest."""
    return json.loads((path / "manifest.json").read_text())["study"]


def _loaded(path: Path) -> pd.DataFrame:
    df = load(path)
    if df.empty:
        raise ValueError(f"results store {str(path)!r} holds no finished chunks yet")
    return df


def means_frame(df: pd.DataFrame, measures: list[str],
                factors: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Mean of each measure column over replications, with its MCSE ``sd / sqrt(R)``.

    Groups: ``condition``, its ``factors`` and ``method``, and every other column that indexes
    rows *within* a replication (such as an attack and its budget); per-replication outcomes
    that are not measures (a status) are left out.  Missing values are dropped and counted
    (``n_used``)."""
    missing = [m for m in measures if m not in df.columns]
    if missing:
        raise ValueError(f"the store has no measure columns {missing}; it has {list(df.columns)}")
    base = ["condition", *factors, "method"]
    fits = df.groupby(["condition", "method", "rep"], sort=False, dropna=False)
    inner = [c for c in df.columns if c not in base and c not in measures and c != "rep"
             and fits[c].nunique(dropna=False).max() > 1]
    keys = base + inner
    rows = []
    for key, g in df.groupby(keys, sort=True, dropna=False):
        for m in measures:
            v = pd.to_numeric(g[m], errors="coerce").astype(float)
            r = int(v.notna().sum())
            rows.append({**dict(zip(keys, key, strict=True)), "measure": m, "n_used": r,
                         "mean": v.mean(),
                         "mcse": v.std(ddof=1) / r ** 0.5 if r > 1 else float("nan")})
    return pd.DataFrame(rows)


def summary_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Per condition x method x parameter: bias, EmpSE, RMSE with MCSEs (converged fits only)."""
    path = Path(path)
    return _performance(_loaded(path), _study(path).get("factors", []))


def _performance(df: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    return performance(df, by=("condition", *factors, "method", "param"))


def summarize(path: str | os.PathLike[str]) -> str:
    """A printable summary: convergence per condition x method, then the measures.

    A study with its own chunk computation (``Study.compute``) whose rows are not estimates
    of parameters (no ``param``/``estimate``/``true`` columns) is summarised by the means of
    its measure columns (:func:`means_frame`)."""
    path = Path(path)
    study = _study(path)
    factors = list(study.get("factors", []))
    df = _loaded(path)
    if "compute" in study and not {"param", "estimate", "true"} <= set(df.columns):
        table = means_frame(df, list(study.get("measures", [])), factors)
        table["mean (MCSE)"] = [format_estimate(v, s) for v, s in zip(table.pop("mean"),
                                                                      table.pop("mcse"),
                                                                      strict=True)]
        return "\n".join([f"results store {path}", "",
                          "mean over replications, estimate (Monte Carlo SE):",
                          table.to_string(index=False)])
    perf = _performance(df, factors)
    conv = convergence(df, by=("condition", *factors, "method"))
    lines = [f"results store {path}", "", "convergence (fits not converged are excluded below):"]
    lines.append(conv.to_string(index=False))
    table = perf[["condition", *factors, "method", "param", "n_used"]].copy()
    for m in ("bias", "empse", "rmse"):
        table[m] = [format_estimate(v, s) for v, s in zip(perf[m], perf[m + "_mcse"],
                                                          strict=True)]
    lines += ["", "performance, estimate (Monte Carlo SE):", table.to_string(index=False)]
    return "\n".join(lines)
