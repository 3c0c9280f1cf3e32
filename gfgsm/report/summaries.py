"""The tidy summaries a report section is rendered from.

A section that supports it is split in two (the protocol of :mod:`gfgsm.report`):

* ``summarise(store, study) -> Summaries``: everything the section shows, reduced from the
  results store to per-condition tables (measures with their MCSEs, quantiles for a QQ plot,
  test statistics) and a few JSON-able facts (constants, the provenance text);
* ``render(summaries, figures) -> Section``: the figures, tables, verdict and notes, from the
  summaries alone.

``gfgsm report`` saves every section's summaries beside the report (``<out>/summaries/<key>/``:
one Parquet file per table and ``meta.json``), a few MB where the stores of a full preset are
hundreds; ``gfgsm report --from-summaries DIR`` renders the whole report from them without
running or reading any study.  Both paths go through the same ``render``, so the two reports
are the same.  The builder records the section's wall time in ``meta["report_seconds"]`` (a
section keeps its own keys; it must not use that one).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["Summaries", "load_summaries", "save_summaries"]

_META = "meta.json"


@dataclass
class Summaries:
    """Named tidy tables and JSON-able facts (``meta``) of one section."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self.tables:
            raise KeyError(f"summaries have no table {name!r}; tables: {sorted(self.tables)}")
        return self.tables[name]


def _check_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"a summary table name must be letters, digits, '_' or '-': {name!r}")


def _json_safe(value: Any) -> Any:
    """``value`` with NaN/inf as strings (strict JSON has neither) and NumPy scalars as Python."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _json_restore(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: _json_restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_restore(v) for v in value]
    return value


def save_summaries(s: Summaries, directory: str | Path) -> Path:
    """Write ``s`` to ``directory`` (created; files of an earlier save are replaced): one
    Parquet file per table (its index kept) and ``meta.json``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.parquet"):
        old.unlink()
    for name, table in s.tables.items():
        _check_name(name)
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"summary table {name!r} must be a DataFrame, got "
                            f"{type(table).__name__}")
        table.to_parquet(d / f"{name}.parquet", compression="zstd")
    text = json.dumps(_json_safe(s.meta), indent=1, sort_keys=True, allow_nan=False)
    (d / _META).write_text(text + "\n")
    return d


def load_summaries(directory: str | Path) -> Summaries:
    """The :class:`Summaries` saved in ``directory`` by :func:`save_summaries`."""
    d = Path(directory)
    if not (d / _META).is_file():
        raise FileNotFoundError(f"no summaries in {d} (expected {_META} and Parquet tables, "
                                "written by `gfgsm report`)")
    meta = _json_restore(json.loads((d / _META).read_text()))
    tables = {p.stem: pd.read_parquet(p) for p in sorted(d.glob("*.parquet"))}
    return Summaries(tables=tables, meta=meta)
