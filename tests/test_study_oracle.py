"""The ``oracle`` study (SCAD's weak oracle property, the lr rate) and the SCAD/MCP limit law.

The limit law of :func:`gfgsm.theory.limit_law` for ``penalty="scad"``/``"mcp"`` is checked
against its formula written out here from :func:`gfgsm.theory.quantities` (``c_V I_SS^-1
V_S`` on the support, 0 and an atom of 1 off it), and its draws against their own moments.

The study is run once at a reduced size (both families, n = 1000 and 4000, 150 replications;
about 15 s) through :func:`simulations.oracle.section`.  Asserted, each a statement of
docs/theory.md s.7 checked by simulation:

* SCAD: the extrapolated paired difference G-FGSM - PL on the support equals ``c_V I_SS^-1
  V_S`` (binomial, V != 0) and 0 (gaussian, V = 0) within 4 SE, and the binomial limit is
  far from 0 (the V term is what the simulation sees); both SCAD fits zero the true zero;
* lr: the extrapolated paired difference is 0 within 4 SE (no asymptotic bias), while the
  unextrapolated one shrinks by about 4^(-1/4) from n = 1000 to 4000 (the predicted rate);
* the section renders the same from its saved summaries.

4 SE: a two-sided normal tail of 6e-5 per comparison, under 0.2% over the ~30 below (fixed
seeds: deterministic; the bound says the pass is not a chosen seed).  Rule 4 (lr's atom) is not
asserted: its known cause of failure (local against global minimiser) is in the study's
docstring.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from gfgsm.mc.spec import Preset
from gfgsm.theory import limit_law, quantities
from simulations import oracle

TOL = 4.0


@pytest.mark.parametrize("penalty, a, k", [("scad", 3.7, 2.35), ("mcp", 3.0, 1.5)])
@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_scad_mcp_limit_against_its_formula(family, penalty, a, k):
    dgp = oracle.make_dgp({"family": family}) if family == "binomial" else \
        oracle._limit_law_dgp({"family": family, "design": "sparse"})
    q = quantities(dgp, seed=0)
    lam0 = 0.5
    S = np.array([True, True, False, True])  # intercept, beta1, beta3 (beta2 = 0)
    ISS = np.asarray(q.I)[np.ix_(S, S)]
    cV = 2 * k * lam0**2  # s0 = 2 nonzero slopes
    want = np.zeros(4)
    want[S] = cV * np.linalg.solve(ISS, np.asarray(q.V)[S])
    g = limit_law(dgp, lam0, "gfgsm", penalty, a=a, quantities_=q)
    p = limit_law(dgp, lam0, "pl", penalty, a=a, quantities_=q)
    np.testing.assert_allclose(g.bias, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(p.bias, 0.0, atol=0)
    cov = np.zeros((4, 4))
    cov[np.ix_(S, S)] = np.linalg.inv(ISS)
    np.testing.assert_allclose(g.cov, cov, rtol=1e-12, atol=1e-14)
    assert g.prob_zero[2] == 1.0 and np.isnan(g.prob_zero[[0, 1, 3]]).all()
    assert g.lam_n(10_000) == pytest.approx(lam0 * 10_000**-0.25)
    # draws: exactly 0 off the support; mean and covariance within Monte Carlo error
    U = g.sample(40_000, seed=3)
    assert np.all(U[:, 2] == 0.0)
    se = np.sqrt(np.diag(cov) / 40_000)
    assert np.all(np.abs(U.mean(0) - want) <= 4 * se + 1e-15)
    np.testing.assert_allclose(np.cov(U[:, S], rowvar=False), cov[np.ix_(S, S)], rtol=0.05)


def test_scad_limit_needs_consistent_arguments():
    dgp = oracle.make_dgp({"family": "binomial"})
    with pytest.raises(ValueError, match="a must exceed 2"):
        limit_law(dgp, 0.5, "gfgsm", "scad", a=1.5)
    with pytest.raises(ValueError, match="r applies"):
        limit_law(dgp, 0.5, "gfgsm", "scad", r=0.5)
    with pytest.raises(ValueError, match="a applies"):
        limit_law(dgp, 0.5, "gfgsm", "l1", a=3.7)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oracle")
    study = dataclasses.replace(oracle.STUDY, presets={"quick": Preset(reps=150),
                                                       "full": Preset(reps=150)})
    sec = oracle.section("quick", tmp / "results", tmp / "figures", study=study,
                         executor="local")
    return sec, tmp


def test_scad_weak_oracle_by_simulation(run):
    sec, _ = run
    d = sec.summaries["diffs"]
    scad = d[(d.penalty == "scad") & (d.param != "beta2")]
    assert len(scad) == 6
    assert np.all(np.abs(scad.z) < TOL), scad.to_string()
    b = scad[scad.family == "binomial"]
    assert (np.abs(b.limit) > 8 * b.se_ext).any()  # the V term is far outside the noise
    assert np.all(scad[scad.family == "gaussian"].limit == 0.0)
    z = sec.summaries["zeros"]
    assert np.all(z[z.method.str.contains("SCAD") & (z.n == 4000)].p0 >= 0.99)


def test_lr_has_no_asymptotic_bias_and_the_predicted_rate(run):
    sec, _ = run
    d = sec.summaries["diffs"]
    lr = d[(d.penalty == "lr") & (d.param != "beta2")]
    assert np.all(np.abs(lr.z) < TOL), lr.to_string()
    b = lr[lr.family == "binomial"].set_index("param")
    ratio = b["d4000"] / b["d1000"]
    # 4^(-1/4) = 0.707; the finite-sample remainder of the ratio is O(n^(-1/4)) itself
    assert np.all(np.abs(ratio - 4**-0.25) < 0.1), ratio


def test_section_renders_the_same_from_saved_summaries(run, tmp_path):
    import gfgsm.report

    sec, _ = run
    assert sec.key == "oracle" and oracle.section.render is oracle.render
    assert sec.verdict.startswith("Agrees" if sec.agrees else "Disagrees")
    d = gfgsm.report.save_summaries(sec.summaries, tmp_path / "s")
    s2 = gfgsm.report.load_summaries(tmp_path / "s")
    sec2 = oracle.render(s2, tmp_path / "fig2")
    for f in ("key", "title", "claim", "verdict", "agrees", "tables", "notes", "provenance"):
        assert getattr(sec2, f) == getattr(sec, f), f
    assert all(Path(p).is_file() for p, _ in sec2.figures)
    assert sum(p.stat().st_size for p in d.glob("*.parquet")) < 200_000
    for name, t in s2.tables.items():
        assert "rep" not in t.columns, name


def test_two_term_extrapolation_removes_both_finite_sample_terms():
    """Closed form: d(n) = d_inf + a n^(-1/4) + b n^(-1/2) at n = 1000, 4000, 16000 is
    extrapolated exactly by the two-term value (to rounding, 1e-12), while the one-term value
    of the last pair keeps a residual from the n^(-1/2) term; the SE is the propagation of
    independent per-size MCSEs through the linear map, whose weights the test recovers by
    unit perturbations of each d(n)."""
    import pandas as pd

    sizes = [1000, 4000, 16000]
    d_inf, a, b = 0.01, 0.7, -1.3

    def d(n):
        return d_inf + a * n ** -0.25 + b * n ** -0.5

    frame = pd.DataFrame({**{f"d{n}": [d(n)] for n in sizes},
                          **{f"s{n}": [0.001 * (k + 1)] for k, n in enumerate(sizes)},
                          "limit": [d_inf], "limit_se": [0.0]})
    t = oracle.two_term(frame, sizes)
    assert t.ext2.iloc[0] == pytest.approx(d_inf, abs=1e-12)
    one = (d(16000) - 4 ** -0.25 * d(4000)) / (1 - 4 ** -0.25)
    assert t.ext_pair2.iloc[0] == pytest.approx(one, rel=1e-12)
    assert abs(one - d_inf) > 1e-3  # the one-term value is biased by the b term
    # the SE: ext2 is linear in (d1, d2, d3); recover its weights by finite differences
    w = []
    for n in sizes:
        bumped = frame.copy()
        bumped[f"d{n}"] += 1.0
        w.append(float(oracle.two_term(bumped, sizes).ext2.iloc[0] - t.ext2.iloc[0]))
    se = np.sqrt(sum((wk * 0.001 * (k + 1)) ** 2 for k, wk in enumerate(w)))
    assert t.se2.iloc[0] == pytest.approx(se, rel=1e-9)
    assert t.ratio2.iloc[0] == pytest.approx(d(16000) / d(4000), rel=1e-12)
