"""The ``sparsity`` study at a tiny size: its scientific statement and that its section builds.

One module-scoped run (20 replications of the gaussian sigma = 1 and binomial designs at
n = 40 and 200, every method, fixed seeds) feeds every test.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gfgsm.mc import load
from gfgsm.mc.measures import selection
from gfgsm.mc.spec import Preset
from gfgsm.report import Section
from simulations.sparsity import (
    BETA,
    GRID,
    STUDY,
    build_section,
    paired_difference,
    per_replication,
)

REPS = 20
TINY = replace(STUDY, presets={
    "quick": Preset(reps=REPS, factors={"design": ["gaussian, sigma=1", "binomial"],
                                        "n": [200, 40]}),
    "full": STUDY.presets["full"],
})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sparsity")
    sec = build_section(TINY, "quick", out / "results", out / "figures")
    df = load(out / "results" / "sparsity-quick")
    return sec, df, per_replication(df, TINY, "quick")


def test_scad_keeps_more_true_zeros_than_l1_gaussian_pl(built):
    """Fan & Li (2001): at the largest n SCAD sets more of the 5 true zeros to zero than l1.

    Paired over the same 20 data sets.  At n = 200 the pilot runs give a difference of about
    1 (4.9 vs 3.9 of 5) with a paired SD of about 1, so its MCSE is about 0.22; requiring the
    difference to exceed 2 MCSEs is a one-sided 97.7% Monte Carlo band, and the fixed seeds
    make the outcome deterministic.
    """
    _, _, pr = built
    for est in ("PL", "G-FGSM"):
        d = paired_difference(pr, f"{est} SCAD", f"{est} l1", measure="correct_zeros")
        row = d[(d["design"] == "gaussian, sigma=1") & (d["n"] == 200)].iloc[0]
        assert row["m"] == REPS
        assert row["diff"] - 2 * row["mcse"] > 0, (est, row.to_dict())


def test_selection_measures_in_range(built):
    _, df, pr = built
    sel = selection(df, by=("condition", "design", "n", "method"))
    assert (sel["n_true_zero"] == 5).all() and (sel["n_true_nonzero"] == 3).all()
    assert sel["correct_zeros"].between(0, 5).all()
    assert sel["incorrect_zeros"].between(0, 3).all()
    assert sel["exact_support"].between(0, 1).all()
    assert (sel["correct_zeros_mcse"] >= 0).all()
    # The section's per-replication counts reproduce the package measure exactly (fits that
    # did not converge are excluded by both).
    ok = pr[pr["converged"]]
    mine = ok.groupby(["condition", "method"])[["correct_zeros", "exact_support"]].mean()
    ref = sel.set_index(["condition", "method"])[["correct_zeros", "exact_support"]]
    np.testing.assert_allclose(mine.loc[ref.index].to_numpy(), ref.to_numpy(), atol=1e-12)
    # References: the MLE has no zeros, the oracle exactly the true ones.
    assert (pr.loc[pr["method"] == "MLE", "correct_zeros"] == 0).all()
    orc = pr[pr["method"] == "oracle"]
    assert (orc["exact_support"] == 1).all()


def test_tuning_stays_on_grid_and_adaptive_l1_works_with_bic(built):
    _, _, pr = built
    tuned = pr[~pr["method"].isin(["MLE", "oracle"])]
    g = tuned["multiplier"].to_numpy(float)
    # Every selected lam is lam_base * (a grid value): relative error at round-off level.
    dist = np.min(np.abs(np.log(g[:, None]) - np.log(np.asarray(GRID))[None, :]), axis=1)
    assert dist.max() < 1e-9
    ad = pr[pr["method"].str.endswith("adaptive l1") & (pr["design"] == "gaussian, sigma=1")]
    assert ad["converged"].all()
    # At n = 200 the adaptive lasso recovers the support more often than not (pilot runs:
    # about 0.9; 0.5 leaves a margin of more than 3 binomial MCSEs, sqrt(.09/20) = 0.07).
    assert ad.loc[ad["n"] == 200, "exact_support"].mean() > 0.5


def test_oracle_model_error_below_mle(built):
    """The oracle (MLE on the true support) has smaller model error than the full MLE.

    Paired per data set; the pilot gave ME(MLE) - ME(oracle) of about 0.02 at n = 200 with a
    paired MCSE near 0.004, so 2 MCSEs is a one-sided 97.7% band.
    """
    _, _, pr = built
    w = pr[(pr["design"] == "gaussian, sigma=1") & (pr["n"] == 200)]
    d = paired_difference(w, "MLE", "oracle", measure="model_error").iloc[0]
    assert d["diff"] - 2 * d["mcse"] > 0
    assert (w["model_error"] >= 0).all()
    sigma = np.asarray(TINY.make_dgp({"design": "gaussian, sigma=1", "n": 200})
                       .design.second_moment)
    assert np.allclose(np.diag(sigma), 1.0) and np.isclose(sigma[0, 1], 0.5)
    assert len(BETA) == sigma.shape[0]


def test_section_builds(built):
    sec, _, _ = built
    assert isinstance(sec, Section)
    assert sec.key == "sparsity"
    assert isinstance(sec.agrees, bool)
    assert sec.verdict.startswith(("Agrees", "Partly disagrees", "Disagrees"))
    assert "n = 200" in sec.verdict and "95% CI" in sec.verdict
    assert len(sec.figures) == 4
    for path, caption in sec.figures:
        assert Path(path).is_file() and Path(path).stat().st_size > 0 and caption
    assert len(sec.tables) == 4 and all(t.startswith("| ") for _, t in sec.tables)
    assert "sparsity" in sec.provenance and "BIC" in sec.notes


def test_section_renders_from_saved_summaries(built, tmp_path):
    """The section's summaries, saved to Parquet and loaded back, render the same section
    (every text; the figures redrawn with the same captions), and they are small: per
    condition and method, never per replication."""
    from gfgsm.report import load_summaries, save_summaries
    from simulations import sparsity

    sec, df, _ = built
    assert sec.summaries is not None and sparsity.section.render is sparsity.render
    d = save_summaries(sec.summaries, tmp_path / "s")
    s2 = load_summaries(d)
    sec2 = sparsity.render(s2, tmp_path / "fig2")
    for attr in ("key", "title", "claim", "verdict", "agrees", "tables", "notes", "provenance"):
        assert getattr(sec2, attr) == getattr(sec, attr), attr
    assert [c for _, c in sec2.figures] == [c for _, c in sec.figures]
    assert [Path(p).name for p, _ in sec2.figures] == [Path(p).name for p, _ in sec.figures]
    assert all(Path(p).is_file() and Path(p).parent == tmp_path / "fig2" for p, _ in sec2.figures)
    assert set(s2.tables) == {"selection", "model_error", "claim1", "claim2", "theory"}
    assert s2.meta["preset"] == "quick" and s2.meta["reps"] == REPS
    # Small: under 1 MB of Parquet, and no table has a row per replication.
    assert sum(p.stat().st_size for p in d.glob("*.parquet")) < 1_000_000
    n_cond = df["condition"].nunique()
    for name, table in s2.tables.items():
        assert "rep" not in table.columns, name
        assert len(table) < n_cond * REPS, (name, len(table))
