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


# --------------------------------------------------------------------------------------------
# sections split into summarise/render, and a report rendered from saved summaries
# --------------------------------------------------------------------------------------------


def _smoke_summarise(store: Path) -> report.Summaries:
    perf = performance(load(store), by=("condition", "family", "n", "method", "param"))
    return report.Summaries(tables={"perf": perf[perf["param"] == "beta1"]},
                            meta={"provenance": report.provenance(store), "preset": "quick",
                                  "worst": float(perf["rmse"].max()), "nan": float("nan")})


def _smoke_render(s: report.Summaries, figures: Path) -> report.Section:
    sub = s["perf"]
    sns = report.style()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    sns.lineplot(sub, x="n", y="rmse", hue="method", style="method", markers=True, ax=ax)
    path = report.save_figure(fig, figures, "smoke_rmse")
    table = sub[["family", "n", "method"]].copy()
    table["rmse"] = [format_estimate(v, e) for v, e in zip(sub["rmse"], sub["rmse_mcse"],
                                                           strict=True)]
    return report.Section(
        key="smoke", title="Smoke", claim="Both estimators run.",
        verdict=f"Largest RMSE is {s.meta['worst']:.6f}.", agrees=True,
        figures=[(str(path), "RMSE of beta1 against n")],
        tables=[("Table: RMSE (MCSE).", report.markdown_table(table))],
        provenance=s.meta["provenance"],
    )


def _smoke_split(preset: str, results: Path, figures: Path) -> report.Section:
    store = run("smoke", preset, results / f"smoke-{preset}", progress=False)
    s = _smoke_summarise(store)
    sec = _smoke_render(s, figures)
    sec.summaries = s
    return sec


_smoke_split.render = _smoke_render  # type: ignore[attr-defined]


def test_summaries_round_trip(tmp_path):
    s = report.Summaries(tables={"a": pd.DataFrame({"x": [1.5, float("nan")], "y": ["u", "v"]}),
                                 "b-2": pd.DataFrame({"z": [1, 2]}, index=[3, 4])},
                         meta={"n": 3, "vals": [1.0, float("inf")], "nan": float("nan")})
    report.save_summaries(s, tmp_path / "s")
    back = report.load_summaries(tmp_path / "s")
    assert set(back.tables) == {"a", "b-2"}
    pd.testing.assert_frame_equal(back["a"], s["a"])
    pd.testing.assert_frame_equal(back["b-2"], s["b-2"])
    assert back.meta["n"] == 3 and back.meta["vals"][1] == float("inf")
    assert back.meta["nan"] != back.meta["nan"]
    with pytest.raises(KeyError, match="no table 'c'"):
        back["c"]
    with pytest.raises(ValueError, match="table name"):
        report.save_summaries(report.Summaries(tables={"a/b": s["a"]}), tmp_path / "t")
    with pytest.raises(FileNotFoundError, match="no summaries"):
        report.load_summaries(tmp_path / "nothing")


def test_report_from_summaries_equals_the_report_from_the_stores(tmp_path, monkeypatch):
    """The saved summaries render the same report, without the study: the stores are deleted
    before the second build, and every line but the header is identical (the seconds are the
    saving run's)."""
    import shutil

    monkeypatch.setattr(report, "sections", lambda: [("smoke", _smoke_split)])
    out = tmp_path / "reports"
    first = report.build_report("quick", tmp_path / "results", out).read_text()
    assert (out / "summaries" / "smoke" / "perf.parquet").is_file()
    shutil.rmtree(tmp_path / "results")
    out2 = tmp_path / "again"
    second = report.build_report(out=out2, from_summaries=out / "summaries").read_text()
    a, b = first.splitlines(), second.splitlines()
    assert a[0] == b[0] == "# gfgsm report (quick preset)"
    assert "--from-summaries" in b[2] and "--from-summaries" not in a[2]
    assert a[3:] == b[3:]
    assert (out2 / "figures" / "smoke_rmse.png").is_file()
    assert (out2 / "summaries" / "smoke" / "meta.json").is_file()


def test_from_summaries_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "sections", lambda: [("smoke", _smoke_split),
                                                     ("other", _smoke_section)])
    with pytest.raises(ValueError, match=r"cannot render \['smoke', 'other'\]"):
        report.build_report(out=tmp_path / "o", from_summaries=tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown sections"):
        report.build_report(out=tmp_path / "o", only=["nope"])


def test_cli_from_summaries_reports_what_is_missing(tmp_path, capsys):
    """``gfgsm report --from-summaries`` on a directory without summaries is a clear error
    (exit 2) naming the sections it cannot render, and writes no report."""
    from gfgsm.cli import main

    code = main(["report", "--from-summaries", str(tmp_path / "none"), "--out",
                 str(tmp_path / "out"), "--only", "coverage"])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot render ['coverage']" in err
    assert not (tmp_path / "out" / "README.md").exists()
