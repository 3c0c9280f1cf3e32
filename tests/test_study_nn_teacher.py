"""The ``nn_teacher`` study at a tiny size, its chunking invariance, its balanced control and its
report section.

Tiny study: three teachers (binomial GLM, the balanced odd binomial MLP, the imbalanced one),
n in {250, 1000}, three methods (none, G-FGSM sign, l2 weight decay), 6 replications; fixed
study seed, so every assertion is deterministic.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gfgsm
import gfgsm.mc
from gfgsm.mc.runner import compute_chunk
from gfgsm.mc.spec import Preset
from gfgsm.nn import train_networks
from gfgsm.nn.networks import Params
from simulations import nn_teacher as nt

REPS = 6
TEACHERS = ["binomial GLM", nt.CONTROL, nt.IMBALANCED]
NS = [250, 1000]
METHODS = tuple(m for m in nt.METHODS if m.name in ("none", nt.SIGN, "weight decay l2"))


def _tiny():
    return dataclasses.replace(
        nt.STUDY,
        factors={"teacher": TEACHERS, "n": NS, "lam0": [1.0]},
        methods=METHODS,
        presets={"quick": Preset(reps=REPS), "full": Preset(reps=REPS)},
        chunk_size=3,
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    study = _tiny()
    results = tmp_path_factory.mktemp("results")
    store = gfgsm.mc.run(study, "quick", results / f"{study.name}-quick", executor="processes",
                         workers=2, progress=False)
    return study, store


def test_store_has_the_expected_rows(tiny):
    _, store = tiny
    df = gfgsm.mc.load(store)
    # GLM students: excess_risk, calibration, intercept, beta1..beta5; MLP students: two rows.
    per = {"binomial GLM": 8, nt.CONTROL: 2, nt.IMBALANCED: 2}
    expected = sum(per[t] for t in TEACHERS) * len(NS) * len(METHODS) * REPS
    assert len(df) == expected
    assert not df.duplicated(["condition", "method", "rep", "param"]).any()
    assert set(df["method"]) == {m.name for m in METHODS}
    for col in ("estimate", "true", "converged", "status", "n_iter", "lam", "weight_decay"):
        assert col in df.columns
    assert np.isfinite(df["estimate"]).all()
    # lam = lam0 / sqrt(n) for G-FGSM, 0 otherwise; weight decay likewise for its method.
    sign = df[df["method"] == nt.SIGN]
    np.testing.assert_allclose(sign["lam"], 1.0 / np.sqrt(sign["n"]), rtol=1e-15)
    assert (df.loc[df["method"] == "none", ["lam", "weight_decay"]] == 0).all().all()
    risk = df[df["param"] == "excess_risk"]
    assert (risk["estimate"] > 0).all() and (risk["true"] == 0).all()


def test_chunking_invariance_exact():
    """Replications 2..5 computed alone equal those rows of 0..5 exactly (each replication's
    data and network depend only on its own seed), for a GLM and an MLP student."""
    study = _tiny()
    conds = study.conditions("quick")
    for c, cond in enumerate(conds):
        if (cond["teacher"], cond["n"]) not in {("binomial GLM", 250), (nt.IMBALANCED, 250)}:
            continue
        full = compute_chunk(study, "quick", c, 0, 6)
        part = compute_chunk(study, "quick", c, 2, 6)
        sub = full[full["rep"] >= 2].sort_values(["method", "rep", "param"])
        part = part.sort_values(["method", "rep", "param"])
        pd.testing.assert_frame_equal(sub.reset_index(drop=True), part.reset_index(drop=True),
                                      check_exact=True)


def test_balanced_control_is_exactly_equivariant():
    """The premise of the control: with the odd teacher, training on (-X, 1 - y) from the
    mirrored initial weights (W, -b) gives the mirrored network -f(-x), for the study's MLP
    student and the sign scheme.  Negation is exact in floating point and tanh is odd, so the
    two runs agree to rounding; 1e-9 (absolute, on eta of order 1) allows for reassociation in
    BLAS kernels and is far below any statistical effect (biases of order 1e-3)."""
    teacher = nt.TEACHERS[nt.CONTROL]
    X, y = teacher.draw(250, np.random.default_rng(4))
    seeds = [np.random.SeedSequence(17)]
    opts = {**nt.student_options(teacher), "max_iter": 30}
    fit = train_networks(X, y, random_state=seeds, lam=0.1, scheme="sign", clean_weight=0.0,
                         warn=False, **opts)
    # The trainer initialises network r from child 0 of its SeedSequence (training.py's _INIT).
    init_seed = np.random.SeedSequence(seeds[0].entropy, spawn_key=(*seeds[0].spawn_key, 0))
    p0 = fit.net.init([init_seed], np)
    mirror = Params(list(p0.weights), [-b for b in p0.biases])
    fit0 = train_networks(X, y, random_state=seeds, lam=0.1, scheme="sign", clean_weight=0.0,
                          warn=False, init=p0, **opts)
    fit1 = train_networks(-X, 1.0 - y, random_state=seeds, lam=0.1, scheme="sign",
                          clean_weight=0.0, warn=False, init=mirror, **opts)
    Xt = nt.test_inputs()
    e0 = fit0.net.eta(fit0.params, Xt, np)[..., 0]
    e1 = fit1.net.eta(fit1.params, -Xt, np)[..., 0]
    np.testing.assert_allclose(e1, -e0, rtol=0, atol=1e-9)
    # ... and the explicit init equals the seeded one (so the study's runs are of this kind).
    np.testing.assert_array_equal(fit.net.eta(fit.params, Xt, np), fit0.net.eta(fit0.params,
                                                                                  Xt, np))
    # On the antithetic test sample the teacher's mean is exactly 1/2.
    assert abs(np.mean(teacher.mean(Xt)) - 0.5) < 1e-12


def test_glm_student_without_perturbation_is_the_mle(tiny):
    """A 0-hidden-layer student trained with no perturbation is the maximum-likelihood GLM fit:
    compare with gfgsm.fit_batch (PL at lam = 0) on the same replication data.  L-BFGS stops at
    gradient sup-norm 1e-6 on the mean-loss scale; with a Fisher information whose smallest
    eigenvalue is about 0.1 the parameter error is below 1e-5, so 1e-4 is a safe bound."""
    study, store = tiny
    df = gfgsm.mc.load(store)
    conds = study.conditions("quick")
    c = next(i for i, k in enumerate(conds) if k["teacher"] == "binomial GLM" and k["n"] == 250)
    teacher = nt.TEACHERS["binomial GLM"]
    from gfgsm.mc.seeds import replication_seed

    draws = [teacher.draw(250, np.random.default_rng(replication_seed(study.seed, c, r)))
             for r in range(REPS)]
    X = np.stack([d[0] for d in draws])
    y = np.stack([d[1] for d in draws])
    ref = gfgsm.fit_batch(X, y, family="binomial", method="pl", lam=0.0, warn=False)
    theta = np.c_[np.asarray(ref.intercept), np.asarray(ref.coef)]
    d = df[(df["condition"] == c) & (df["method"] == "none")
           & ~df["param"].isin(["excess_risk", "calibration"])]
    order = ["intercept"] + [f"beta{j}" for j in range(1, 6)]
    est = d.pivot_table(index="rep", columns="param", values="estimate")[order].to_numpy()
    np.testing.assert_allclose(est, theta, atol=1e-4)


def test_imbalance_bias_negative_and_control_unbiased(tiny):
    """The sign-neutrality effect at tiny size.  Under imbalance the sign scheme's mean predicted
    probability is below the unregularized fit's on the same data in every replication-average
    (paired z < -2: with 6 replications the quick preset's z of -7.6 to -8.8 at these n shrinks
    by sqrt(20/6) to about -4; -2 leaves room for the smaller sample while still excluding 0);
    in the balanced control every bias is within 3 MCSEs of 0, as the exact equivariance
    requires (expectation exactly 0)."""
    _, store = tiny
    cal = nt.calibration_table(gfgsm.mc.load(store))
    imb = cal[(cal["teacher"] == nt.IMBALANCED) & (cal["method"] == nt.SIGN)]
    assert len(imb) == len(NS)
    assert (imb["paired"] < 0).all() and (imb["paired_z"] < -2).all(), imb
    ctrl = cal[cal["teacher"] == nt.CONTROL]
    assert len(ctrl) == len(NS) * len(METHODS)
    assert (ctrl["z"].abs() < 3).all(), ctrl


@pytest.fixture(scope="module")
def tiny_section(tiny, tmp_path_factory: pytest.TempPathFactory) -> gfgsm.report.Section:
    """The report section of the tiny study (its store already complete: no training)."""
    study, store = tiny
    return nt.section("quick", Path(store).parent, tmp_path_factory.mktemp("figures"),
                      study=study, executor="local")


def test_section_builds_with_figures(tiny_section):
    sec = tiny_section
    assert isinstance(sec, gfgsm.report.Section)
    assert sec.key == "nn_teacher"
    assert isinstance(sec.agrees, bool)
    assert sec.verdict.startswith("Agrees" if sec.agrees else "Disagrees")
    assert len(sec.figures) == 3
    for path, caption in sec.figures:
        assert Path(path).is_file() and Path(path).stat().st_size > 0
        assert caption
    assert len(sec.tables) == 4
    assert "nn_teacher" in sec.provenance
    assert nt.section.order == 70


def test_stored_status_is_stationarity(tiny):
    """Every stored fit carries its stationarity residual, and "converged" is exactly
    ``grad_max <= tol`` of its student (GLM students 1e-6, MLP students 1e-4): a plateau of
    Adam is stored as "plateau", not as convergence."""
    _, store = tiny
    df = gfgsm.mc.load(store)
    fits = df[df["param"] == "excess_risk"]
    glm = fits["teacher"] == "binomial GLM"
    tol = np.where(glm, nt.GLM_STUDENT["tol"], nt.MLP_STUDENT["tol"])
    g = fits["grad_max"].to_numpy(dtype=float)
    conv = fits["converged"].to_numpy(dtype=bool)
    np.testing.assert_array_equal(conv, g <= tol)
    np.testing.assert_array_equal(conv, (fits["status"] == "converged").to_numpy())
    # the MLP students' Adam fits stop on the plateau or the epoch limit, never stationary here
    assert set(fits.loc[~glm, "status"]) <= {"plateau", "max_iter"}
    assert (g[~glm.to_numpy()] > 1e-4).all()


def test_section_renders_the_same_from_saved_summaries(tiny, tiny_section, tmp_path):
    """The section is summarise + render: its summaries, saved to Parquet and loaded back,
    render the same text (verdict, tables, notes, captions, provenance) without the store, and
    they are small: per-condition tables, none with a row per replication."""
    study, _ = tiny
    sec = tiny_section
    assert nt.section.render is nt.render
    assert sec.summaries is not None
    gfgsm.report.save_summaries(sec.summaries, tmp_path / "s")
    s2 = gfgsm.report.load_summaries(tmp_path / "s")
    assert set(s2.tables) == set(sec.summaries.tables)
    sec2 = nt.render(s2, tmp_path / "fig2")
    for attr in ("key", "title", "claim", "verdict", "agrees", "tables", "notes", "provenance"):
        assert getattr(sec2, attr) == getattr(sec, attr), attr
    assert [c for _, c in sec2.figures] == [c for _, c in sec.figures]
    for path, _ in sec2.figures:
        assert Path(path).parent == tmp_path / "fig2" and Path(path).stat().st_size > 0
    # small: well under 1 MB, and no table as long as the replications of a condition x method
    sizes = [p.stat().st_size for p in (tmp_path / "s").glob("*.parquet")]
    assert len(sizes) == len(s2.tables) and sum(sizes) < 1_000_000
    cells = len(study.conditions("quick")) * len(study.methods)
    for name, table in s2.tables.items():
        assert "rep" not in table.columns, name
        assert len(table) <= cells, name  # per-replication rows would be cells x REPS


def test_local_slopes_are_log_ratios_with_delta_method_cis():
    """Closed form: the slope between consecutive n is log(R2/R1)/log(n2/n1), its 95% CI
    +-1.96 sqrt((s1/R1)^2 + (s2/R2)^2) / log(n2/n1) (independent conditions)."""
    rm = pd.DataFrame({"teacher": "t", "method": "m", "n": [250, 1000, 4000],
                       "rmse": [0.4, 0.25, 0.12], "rmse_mcse": [0.02, 0.01, 0.006]})
    got = nt.local_slopes(rm, "t", "m")
    want = np.log(0.12 / 0.25) / np.log(4)
    assert got.slope.iloc[1] == pytest.approx(want, rel=1e-12)
    half = 1.96 * np.hypot(0.01 / 0.25, 0.006 / 0.12) / np.log(4)
    assert got.hi.iloc[1] - got.slope.iloc[1] == pytest.approx(half, rel=1e-12)
    assert list(got.n_from) == [250, 1000] and list(got.n_to) == [1000, 4000]
