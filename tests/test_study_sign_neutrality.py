"""The ``sign_neutrality`` study at a tiny size, and its skewed error law.

* :class:`simulations.sign_neutrality.CentredGamma` is standardized with the stated skewness,
  and :func:`gfgsm.theory.quantities` (which only sees a callable, so integrates the errors by
  Monte Carlo) returns ``D = E|e| / sigma`` and ``V = E[sign e] E[xt] / sigma^2`` equal to the
  closed forms within 4 of its own standard errors.
* A reduced study (binomial and gaussian at three levels each, n = 2000 and 8000, 60
  replications) run through :func:`simulations.sign_neutrality.section`: the paired difference
  ``sqrt(n)(theta_hat_GFGSM - theta_hat_PL)``, Richardson-extrapolated (``2 m(4n) - m(n)``,
  which removes the ``lam0^2 / sqrt(n)`` finite-sample term; without it the measured
  difference is ~15% short of the limit at these sizes), tracks ``lam0 ||beta0||_1 I^-1 V``:
  within 4 SE at the extreme points of each axis, about 0 where ``V = 0``, and a weighted slope
  of measured on predicted close to 1.
* The section is split into ``summarise``/``render``: its summaries (two small per-condition
  tables) saved to Parquet and loaded back render the same text.

Tolerances: 4 SE is a two-sided normal tail of 6e-5 per comparison (below 0.2% over the ~25
comparisons); seeds are fixed, so the test is deterministic.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

import gfgsm
from gfgsm.mc.spec import Preset
from gfgsm.theory import quantities
from simulations import sign_neutrality as sn

TOL = 4.0


# --------------------------------------------------------------------------------------------
# the error law
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("skew", [-2.0, -0.5, 0.0, 1.0, 2.0])
def test_centred_gamma_is_standardized_with_its_skewness(skew):
    e = sn.CentredGamma(skew)((400_000,), np.random.default_rng(5))
    m, v = e.mean(), e.var()
    g = np.mean((e - m) ** 3) / v**1.5
    # SEs of a mean and a variance of 4e5 unit-variance draws: 1/sqrt(m) = 0.0016 and
    # sqrt((kurt - 1)/m) <= sqrt(7/4e5) = 0.004 (kurtosis 3 + 1.5 skew^2 <= 9); 0.01 and 0.02
    # are > 4 SE.  The sample skewness converges slowly for skew 2 (6th moment 265): 0.1.
    assert abs(m) < 0.01 and abs(v - 1) < 0.02 and abs(g - skew) < 0.1
    # The closed forms: Monte Carlo of the same draws within 4 SE.
    a, s = np.abs(e), np.sign(e)
    assert abs(a.mean() - sn.CentredGamma(skew).abs_mean()) < TOL * a.std() / math.sqrt(e.size)
    assert abs(s.mean() - sn.CentredGamma(skew).sign_mean()) < TOL * s.std() / math.sqrt(e.size)


def test_centred_gamma_at_skew_two_is_the_packages_skewed_law():
    """skew = 2 is Exp(1) - 1, whose moments gfgsm.dgp states in closed form."""
    from gfgsm.dgp import get_noise

    ref = get_noise("skewed")
    cg = sn.CentredGamma(2.0)
    assert cg.abs_mean() == pytest.approx(ref.abs_mean, rel=1e-12)
    assert cg.sign_mean() == pytest.approx(ref.sign_mean, rel=1e-12)


@pytest.mark.parametrize("skew", [-2.0, 0.0, 1.0, 2.0])
def test_quantities_of_callable_noise_match_closed_forms(skew):
    dgp = sn.dgp_at("gaussian", skew)
    q = quantities(dgp, seed=0)
    cg = sn.CentredGamma(skew)
    assert "monte carlo" in q.method["D"]  # the package cannot know a callable's moments
    assert q.se_D > 0 and q.se_V[0] > 0
    sigma = dgp.sigma
    assert abs(q.D - cg.abs_mean() / sigma) < TOL * q.se_D
    # V = E[sign e] E[xt] / sigma^2 with E[xt] = (1, 0, 0) for the centred Gaussian design.
    assert abs(q.V[0] - cg.sign_mean() / sigma**2) < TOL * q.se_V[0]
    assert np.all(q.V[1:] == 0)
    np.testing.assert_allclose(q.I, np.block([[1.0, np.zeros((1, 2))],
                                              [np.zeros((2, 1)), dgp.design.second_moment]]))


def test_dgp_repr_distinguishes_levels():
    """A callable error law is named by its __name__ in DGP's repr: each level differs, so the
    study's definition hash changes with the axis values."""
    reprs = [repr(sn.make_dgp(c)) for c in sn.STUDY.conditions("quick")]
    per_level = {r for r in reprs if "gaussian" in r}
    assert len(per_level) == len(sn.AXES["gaussian"])
    assert any("noise='CentredGamma(skew=-2)'" in r for r in reprs)


def test_poisson_axis_is_the_mean_count():
    for m in sn.AXES["poisson"]:
        dgp = sn.dgp_at("poisson", m)
        X, _ = dgp.sample(200_000, seed=3)
        mu = np.exp(dgp.intercept + X @ dgp.coef)
        # E[mu] of 2e5 draws: relative SE sd(mu)/mean/sqrt(m) < 0.003 here; 2% is > 4 SE.
        assert mu.mean() == pytest.approx(m, rel=0.02)


# --------------------------------------------------------------------------------------------
# the tiny study
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sign_neutrality")
    study = dataclasses.replace(
        sn.STUDY,
        factors={"family": ["binomial", "gaussian"], "level": [0, 2, 4], "n": [2000, 8000],
                 "lam0": [1.0]},
        presets={"quick": Preset(reps=60), "full": Preset(reps=60)},
    )
    sec = sn.section("quick", tmp / "results", tmp / "figures", study=study, executor="local")
    a = sn.analyse(tmp / "results" / f"{study.name}-quick", study)
    return sec, a


def test_difference_tracks_the_predicted_curve(run):
    _, a = run
    c = a.cells
    assert len(c) == 2 * 3 * 3
    cols = ["family", "axis", "param", "pred", "se_pred", "m1", "m2", "ext", "se_ext", "z"]
    # At the extreme points of each axis, where the prediction is largest.
    ends = c[c.axis.abs() == 2.0]
    assert np.all(np.abs(ends.z) < TOL), ends[cols].to_string()
    tr = sn.tracking(c)
    # The slope's SE is ~0.01 here; 4 SE either side of 1.
    assert abs(tr["slope"] - 1.0) < TOL * tr["slope_se"], tr
    assert tr["corr"] > 0.99
    # The intercept entries change sign with the axis (imbalance, skewness), as predicted.
    for fam in ("binomial", "gaussian"):
        r = c[(c.family == fam) & (c.param == "intercept")].sort_values("axis")
        assert np.all(np.sign(r.ext.iloc[[0, -1]]) == np.sign(r.pred.iloc[[0, -1]]))
        assert r.pred.iloc[0] != 0 and r.pred.iloc[-1] != 0


def test_difference_vanishes_where_v_is_zero(run):
    _, a = run
    neu = sn.neutral_cells(a.cells)
    # gaussian skewness 0 (3 coefficients), gaussian slopes at skewness +-2 (4), binomial a0 = 0
    # intercept (1).
    assert len(neu) == 8
    # V is exactly 0 where the closed forms make it so (E x = 0; antithetic binomial at a0 = 0);
    # at skewness 0 it is the Monte Carlo estimate of 0, within its SE.
    assert np.all(np.abs(neu.pred) <= TOL * neu.se_pred)
    assert np.all(np.abs(neu.ext) < TOL * np.hypot(neu.se_ext, neu.se_pred)), neu.to_string()


def test_section_builds_with_figures(run):
    sec, a = run
    assert sec.key == "sign_neutrality" and isinstance(sec.agrees, bool)
    assert sec.verdict.startswith("Agrees" if sec.agrees else "Disagrees")
    assert len(sec.figures) == 2
    for path, caption in sec.figures:
        assert Path(path).is_file() and Path(path).stat().st_size > 1000
        assert caption
    assert sec.tables and "predicted" in sec.tables[0][1]
    assert f"{a.crit:.2f}" in sec.notes
    assert "definition hash" in sec.provenance


def test_pl_level_is_matched_by_d_phi(run):
    """The engine fitted PL at lam0 D phi / sqrt(n): check one condition's stored lam."""
    _, a = run
    dgp = sn.dgp_at("gaussian", 2.0)
    q = quantities(dgp, seed=0)
    assert a.lam0 == pytest.approx(1.0)
    assert gfgsm.mc.LamRule(multiplier="D*phi")({"lam0": 1.0, "n": 2000}, dgp) == pytest.approx(
        q.D * q.phi / math.sqrt(2000), rel=1e-12)


def test_section_renders_the_same_from_saved_summaries(run, tmp_path):
    """The section is split into summarise/render: its summaries, saved to Parquet and loaded
    back, render the same text (dtypes survive the round trip), and they are small."""
    sec, a = run
    assert sn.section.render is sn.render
    assert sec.summaries is not None
    gfgsm.report.save_summaries(sec.summaries, tmp_path / "s")
    s2 = gfgsm.report.load_summaries(tmp_path / "s")
    sec2 = sn.render(s2, tmp_path / "fig2")
    for f in ("key", "title", "claim", "verdict", "agrees", "tables", "notes", "provenance"):
        assert getattr(sec2, f) == getattr(sec, f), f
    assert [c for _, c in sec2.figures] == [c for _, c in sec.figures]
    assert all(Path(p).is_file() and Path(p).parent == tmp_path / "fig2" for p, _ in sec2.figures)
    # Small: per-condition summaries, never one row per replication (12 conditions x 60 here).
    size = sum(p.stat().st_size for p in (tmp_path / "s").glob("*.parquet"))
    assert size < 1_000_000
    assert set(s2.tables) == {"cells", "curves"}
    assert len(s2["cells"]) == len(a.cells) == 18
    assert len(s2["curves"]) == 2 * sn.CURVE_POINTS * 3
    for t in s2.tables.values():
        assert "rep" not in t.columns and len(t) < 12 * 60
    assert s2.meta["preset"] == "quick" and s2.meta["sizes"] == [2000, 8000]
