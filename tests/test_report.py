"""The report builder, on a small store and a section written here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import gfgsm.report as report
from gfgsm.mc import load, run
from gfgsm.mc.measures import format_estimate, performance
from gfgsm.mc.registry import get_study


def _smoke_section(preset: str, results: Path, figures: Path) -> report.Section:
    store = run("smoke", preset, results / f"smoke-{preset}", progress=False)
    perf = performance(load(store), by=("condition", "family", "n", "method", "param"))
    sns = report.style()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    sub = perf[perf["param"] == "beta1"]
    sns.lineplot(sub, x="n", y="rmse", hue="method", style="method", markers=True, ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="n (observations)", ylabel="RMSE of beta1")
    path = report.save_figure(fig, figures, "smoke_rmse")
    table = sub[["family", "n", "method"]].copy()
    table["rmse"] = [format_estimate(v, s) for v, s in zip(sub["rmse"], sub["rmse_mcse"],
                                                           strict=True)]
    worst = float(sub["rmse"].max())
    return report.Section(
        key="smoke", title="Smoke", claim="Both estimators run.",
        verdict=f"Largest RMSE of beta1 is {worst:.3f}.", agrees=True,
        figures=[(str(path), "RMSE of beta1 against n")],
        tables=[("Table: RMSE (MCSE).", report.markdown_table(table))],
        provenance=report.provenance(store),
    )


def test_report_is_built_from_the_store(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "sections", lambda: [("smoke", _smoke_section)])
    out = tmp_path / "reports"
    path = report.build_report("quick", tmp_path / "results", out)
    text = path.read_text()
    assert path == out / "README.md"
    assert "## Smoke" in text and "**Result.** Largest RMSE of beta1" in text
    assert "![RMSE of beta1 against n](figures/smoke_rmse.png)" in text
    assert (out / "figures" / "smoke_rmse.png").stat().st_size > 1000
    assert ("drawn by philox4x32-10/v1 at counter r under the key of "
            "SeedSequence(20181029, spawn_key=(c,))") in text
    assert "| [Smoke](#smoke) | yes |" in text
    # every number of the table is the store's
    df = pd.read_parquet(next((tmp_path / "results" / "smoke-quick" / "chunks").glob("*.parquet")))
    assert not df.empty


def test_markdown_table_and_provenance(tmp_path):
    t = report.markdown_table(pd.DataFrame({"a": [1.23456789, 2.0], "b": ["x", "y"]}))
    assert t.splitlines()[0] == "| a | b |" and "| 1.235 | x |" in t
    with pytest.raises(FileNotFoundError):
        report.provenance(tmp_path / "nothing")


def test_report_run_options_reach_every_study(monkeypatch, tmp_path):
    """``gfgsm report --backend/--executor/--workers`` apply to the sections' studies."""
    import gfgsm.mc
    import gfgsm.report as rep

    seen = []
    monkeypatch.setattr(gfgsm.mc, "run", lambda *a, **k: seen.append(k) or tmp_path)
    rep.run_study(get_study("smoke"), "quick", tmp_path)
    rep.RUN_OPTIONS.update(backend="cupy")
    try:
        rep.run_study(get_study("smoke"), "quick", tmp_path)
        rep.RUN_OPTIONS.update(executor="dask", workers=3)
        rep.run_study(get_study("smoke"), "quick", tmp_path, executor="processes", workers=2)
    finally:
        rep.RUN_OPTIONS.clear()
    assert [(k["backend"], k["executor"], k["workers"]) for k in seen] == [
        (None, "processes", 2), ("cupy", "local", 2), ("cupy", "dask", 3)]
