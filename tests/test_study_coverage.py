"""The ``coverage`` study at a tiny size: its rows, their independence of the chunking, its
scientific statements and its report section.

A reduced study (binomial, n = 1000, h in {0, 4}, 200 replications, the bootstrap on the first
30 with B = 100; about 15 s) runs once into a temporary store through
:func:`simulations.coverage.section`.  Coverage statements use 4 MCSE (a two-sided normal tail
of 6e-5 per comparison; the seeds are fixed, so the test is deterministic and the bound says
the pass is not a seed chosen to pass).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gfgsm.mc
from gfgsm.mc.runner import compute_chunk
from gfgsm.mc.spec import Preset
from simulations import coverage as cv

REPS = 200
BOOT = 30


def small_study(reps: int = REPS, boot: int = BOOT, B: int = 100):
    return dataclasses.replace(
        cv.STUDY,
        factors={"family": ["binomial"], "n": [1000], "h": [0.0, 4.0], "lam0": [1.0],
                 "B": [B], "boot_reps": [boot]},
        presets={"quick": Preset(reps=reps), "full": Preset(reps=reps)},
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[object, pd.DataFrame, pd.DataFrame, Path]:
    tmp = tmp_path_factory.mktemp("coverage")
    study = small_study()
    sec = cv.section("quick", tmp / "results", tmp / "figures", study=study, executor="local")
    df = gfgsm.mc.load(tmp / "results" / f"{study.name}-quick")
    return sec, df, cv.measures(df), tmp


def test_rows(run):
    _, df, _, _ = run
    per = df.groupby(["condition", "interval"]).rep.nunique().unstack()
    assert (per.drop(columns="bootstrap") == REPS).all().all()
    assert (per["bootstrap"] == BOOT).all()
    assert set(df.interval) == set(cv.INTERVALS)
    assert {"se", "ci_lower", "ci_upper", "declared_zero", "estimator"} <= set(df.columns)
    ok = df[np.isfinite(df.ci_lower)]
    assert (ok.ci_lower <= ok.ci_upper).all()
    # the debiased centre differs from theta_hat; the others are centred at theta_hat
    d = df.set_index(["condition", "rep", "param", "interval"]).estimate.unstack()
    assert (d.limit == d.naive).all()
    assert (d.debiased != d.naive).mean() > 0.9


def test_rows_do_not_depend_on_the_chunking():
    """Replications 3..5 computed alone equal the same rows of the chunk 0..8, bootstrap and
    limit draws included (each replication draws from its own counter-based stream)."""
    study = small_study(reps=9, boot=6, B=20)
    whole = compute_chunk(study, "quick", 1, 0, 9)
    part = compute_chunk(study, "quick", 1, 3, 6)
    keys = ["method", "rep", "param"]
    a = whole[whole.rep.between(3, 5)].sort_values(keys).reset_index(drop=True)
    b = part.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_debiased_covers_and_naive_and_local_limit_fail(run):
    _, _, perf, _ = run
    slopes = perf[perf.param != "intercept"]
    mcse = math.sqrt(0.95 * 0.05 / REPS)
    deb = slopes[slopes.interval.isin(["debiased", "debiased_hc0"])]
    assert np.all(np.abs(deb.coverage - 0.95) < 4 * mcse), deb[["h", "param", "coverage"]]
    # naive: the fixed slopes carry a shrinkage of the order of the SE; pooled over the two
    # conditions' 2 x 2 x 200 slope-replications its coverage is far below 0.95 (MCSE ~0.008)
    naive = slopes[(slopes.interval == "naive") & slopes.param.isin(cv.FIXED)]
    assert naive.coverage.mean() < 0.90, naive[["h", "param", "coverage"]]
    # the limit law with a thresholded zero pattern at the local alternative h = 4
    loc = slopes[(slopes.interval == "limit") & (slopes.param == cv.LOCAL) & (slopes.h == 4.0)]
    assert float(loc.coverage.iloc[0]) < 0.95 - 4 * mcse


def test_section(run):
    sec, _, _, _tmp = run
    assert sec.key == "coverage"
    assert sec.verdict.startswith(("Agrees:", "Disagrees:"))
    for k in (1, 2, 3, 4):
        assert f"Rule {k}" in sec.verdict
    assert Path(sec.figures[0][0]).exists()
    assert len(sec.tables) >= 3


def test_section_renders_the_same_from_saved_summaries(run, tmp_path):
    """The summaries saved with the report render the same section without the store, and
    they are per-condition tables, not per-replication rows."""
    import gfgsm.report

    sec, _, _, _ = run
    d = gfgsm.report.save_summaries(sec.summaries, tmp_path / "s")
    s2 = gfgsm.report.load_summaries(d)
    sec2 = cv.render(s2, tmp_path / "fig2")
    for attr in ("title", "claim", "verdict", "agrees", "tables", "notes", "provenance"):
        assert getattr(sec2, attr) == getattr(sec, attr), attr
    assert [c for _, c in sec2.figures] == [c for _, c in sec.figures]
    assert sum(p.stat().st_size for p in d.glob("*.parquet")) < 1_000_000
    assert all(len(t) < REPS for t in s2.tables.values())
    assert s2.meta["preset"] == "quick"


def test_pooled_fixed_slope_coverage_is_the_weighted_share():
    """Pooling over h and slopes weights each cell by its intervals: hits / intervals."""
    perf = pd.DataFrame({
        "family": "binomial", "n": 1000, "interval": "limit",
        "param": ["beta1", "beta3", "beta1", "beta2"], "h": [0.0, 0.0, 2.0, 0.0],
        "coverage": [0.9, 0.8, 1.0, 0.1], "n_ci": [100, 50, 50, 100]})
    got = cv.pooled_fixed(perf)
    assert len(got) == 1
    # beta2 is not a fixed slope: (90 + 40 + 50) / 200
    assert got.coverage.iloc[0] == pytest.approx(180 / 200)
    assert got.mcse.iloc[0] == pytest.approx(math.sqrt(0.9 * 0.1 / 200))


def test_followup_table_counts_covering_intervals(tmp_path):
    """The follow-up's table from its store: coverage = share of intervals holding the truth,
    checked against the rows themselves."""
    out = gfgsm.mc.run(cv.FOLLOWUP, "quick", tmp_path / "fu", reps=6, progress=False)
    t = cv.followup_table(out)
    df = gfgsm.mc.load(out)
    d = df[(df.interval == "bootstrap") & (df.param == "beta1")]
    want = float(((d.ci_lower <= d["true"]) & (d["true"] <= d.ci_upper)).mean())
    row = t[(t.interval == "bootstrap") & (t.param == "beta1")]
    assert row.coverage.iloc[0] == pytest.approx(want) and row.n_ci.iloc[0] == len(d) == 6
    pooled = t[(t.interval == "limit") & (t.param == "fixed, pooled")]
    assert pooled.n_ci.iloc[0] == 12
