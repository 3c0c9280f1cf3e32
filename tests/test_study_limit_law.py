"""The ``limit_law`` study at a tiny size: its scientific statement and its report section.

A reduced study (binomial only, both designs, n = 1000 and 4000, 400 replications; a few
seconds) is run once into a temporary store through :func:`simulations.limit_law.section`, and
the comparisons of :func:`simulations.limit_law.analyse` are asserted:

* the mean of ``U_n = sqrt(n)(theta_hat - theta0)`` matches ``limit_law``'s bias after the
  Richardson extrapolation ``2 m(4n) - m(n)``.  The extrapolation is needed because ``m(n)``
  carries an ``O(1/sqrt(n))`` term (tests/test_theory_vs_simulation.py); it is exact for an
  error ``c/sqrt(n) + o(1/sqrt(n))``.  ``lam0 = 1`` is mild, so what the extrapolation leaves
  (``O(1/n)``) is far below the Monte Carlo SE (about 0.1 limit-law SD at 400 replications);
* the variances, the point mass ``P(U_j = 0)`` at the true zero, and a KS test of one
  coefficient;
* the section rendered by :func:`simulations.limit_law.render` from its saved and reloaded
  summaries is the section itself, and the summaries are small.

Tolerances are 4 standard errors: a two-sided normal tail of 6e-5 per comparison, so over the
~40 comparisons below a false alarm has probability below 0.3% (the seeds are fixed, so the
test is deterministic; the bound says the pass is not a seed chosen to pass).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from gfgsm.mc.spec import Preset
from simulations import limit_law as ll

TOL = 4.0


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[object, ll.Analysis, Path]:
    tmp = tmp_path_factory.mktemp("limit_law")
    study = dataclasses.replace(
        ll.STUDY,
        factors={"family": ["binomial"], "design": ["dense", "sparse"], "n": [1000, 4000],
                 "lam0": [1.0]},
        presets={"quick": Preset(reps=400), "full": Preset(reps=400)},
    )
    sec = ll.section("quick", tmp / "results", tmp / "figures", study=study, executor="local")
    a = ll.analyse(tmp / "results" / f"{study.name}-quick", study)
    return sec, a, tmp


def test_extrapolated_mean_matches_the_limit_bias(run):
    _, a, _ = run
    m = a.means
    assert len(m) == 2 * (3 + 4)  # two methods x (dense: 3, sparse: 4 coefficients)
    msg = m[["design", "method", "param", "limit", "m1", "m2", "ext", "se_ext", "z"]]
    assert np.all(np.abs(m.z) < TOL), msg.to_string()
    # The V term is in the G-FGSM limit: binomial at a0 = 1 is not sign neutral, so G-FGSM's
    # and PL's limit biases differ by lam0 ||beta0||_1 I^-1 V, visibly (several SE) on the
    # intercept; the simulated means must differ in the same direction.
    g = m[(m.method == "G-FGSM") & (m.design == "dense")].set_index("param")
    p = m[(m.method != "G-FGSM") & (m.design == "dense")].set_index("param")
    d_law = g.limit - p.limit
    d_sim = g.m2 - p.m2
    assert abs(d_law["intercept"]) > 4 * g.se2["intercept"]
    assert np.sign(d_sim["intercept"]) == np.sign(d_law["intercept"])


def test_variances_and_point_mass_match(run):
    _, a, _ = run
    var = a.cov[a.cov.diag]
    assert np.all(np.abs(var.z) < TOL), var.to_string()
    # One true zero in the sparse design, for each method: positive mass at exactly 0.
    assert len(a.p0) == 2
    assert np.all((a.p0.limit > 0.2) & (a.p0.limit < 0.9))
    assert np.all(np.abs(a.p0.z) < TOL), a.p0.to_string()


def test_ks_not_significant_for_one_coefficient(run):
    """Stated level 1% for the one pre-chosen coefficient (G-FGSM, dense, beta1)."""
    _, a, _ = run
    row = a.ks[(a.ks.method == "G-FGSM") & (a.ks.design == "dense") & (a.ks.param == "beta1")]
    assert len(row) == 1
    assert row.p.iloc[0] > 0.01, row.to_string()
    assert row.R.iloc[0] == 400 and row.m.iloc[0] == ll.N_LAW


def test_section_builds_with_figures(run):
    sec, a, _ = run
    assert sec.key == "limit_law" and isinstance(sec.agrees, bool)
    assert sec.verdict.startswith("Agrees" if sec.agrees else "Disagrees")
    assert len(sec.figures) == 4  # QQ dense, QQ sparse, means, covariances
    for path, caption in sec.figures:
        assert Path(path).is_file() and Path(path).stat().st_size > 1000
        assert caption
    assert sec.tables and "extrap." in sec.tables[0][1]
    assert f"{a.crit:.2f}" in sec.notes and "Richardson" in sec.verdict + sec.notes
    assert "definition hash" in sec.provenance


def test_dgp_repr_distinguishes_conditions():
    """Every condition of the study has its own DGP (the repr enters the definition hash)."""
    conds = ll.STUDY.conditions("quick")
    reprs = {(c["family"], c["design"]): repr(ll.make_dgp(c)) for c in conds}
    assert len(set(reprs.values())) == 6


def test_section_renders_the_same_from_saved_summaries(run, tmp_path):
    """``render`` of the saved and reloaded summaries gives the section that ``section`` built
    (Parquet round trip included), and the summaries are small: per-condition tables, never a
    row per replication."""
    import gfgsm.report

    sec, _, _ = run
    assert sec.summaries is not None and ll.section.render is ll.render
    d = gfgsm.report.save_summaries(sec.summaries, tmp_path / "s")
    s2 = gfgsm.report.load_summaries(tmp_path / "s")
    assert set(s2.tables) == set(ll.TABLES) and s2.meta["preset"] == "quick"
    sec2 = ll.render(s2, tmp_path / "fig2")
    for f in ("key", "title", "claim", "verdict", "agrees", "tables", "notes", "provenance"):
        assert getattr(sec2, f) == getattr(sec, f), f
    assert [c for _, c in sec2.figures] == [c for _, c in sec.figures]
    assert all(Path(p).is_file() and Path(p).parent == tmp_path / "fig2" for p, _ in sec2.figures)
    # small: under 1 MB in all, and no table grows with the 400 replications (at most one row
    # per QQ probability and coefficient of each family x design x method)
    assert sum(p.stat().st_size for p in d.glob("*.parquet")) < 1_000_000
    cells = len(s2["reps"])
    assert cells == 4  # binomial x {dense, sparse} x two methods
    for name, t in s2.tables.items():
        assert "rep" not in t.columns, name
        if len(t):
            per_cell = t.groupby(["family", "design", "method"]).size().max()
            assert per_cell <= 4 * len(ll.QQ_PROBS) < 400, (name, per_cell)
        if "param" in t.columns and name != "qq":
            assert not t.duplicated(["family", "design", "method", "param"]).any(), name
