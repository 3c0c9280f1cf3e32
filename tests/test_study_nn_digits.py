"""The ``nn_digits`` study at a tiny size: 4 restarts, 3 methods, 5 epochs, chunks of 2.

Fixed study seed; every property asserted below must hold exactly (by construction of the
seeds, the attacks and the networks), not only on average, so no statistical tolerance is used.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gfgsm.mc
import gfgsm.report
from gfgsm.mc.seeds import replication_seed
from gfgsm.mc.spec import Preset
from gfgsm.nn.attacks import ProjectedGradientDescent, ProjectedQuantizedGradientDescent
from simulations import nn_digits as nd

REPS = 4
METHODS = ("none", "sign", "fgsm_rs")
KEYS = ["method", "rep", "experiment", "attack", "b", "eps", "steps"]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # As the engine's worker processes: one BLAS thread (two would oversubscribe 2 cores;
    # results do not depend on it, which test_chunking_invariance also checks).
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[gfgsm.mc.Study, Path, pd.DataFrame]:
    study = dataclasses.replace(
        nd.STUDY,
        methods=nd.make_methods(METHODS, max_iter=5),
        presets={"quick": Preset(reps=REPS), "full": Preset(reps=REPS)},
        chunk_size=2,
    )
    results = tmp_path_factory.mktemp("results")
    store = gfgsm.mc.run(study, "quick", results / f"{study.name}-quick", executor="processes",
                         workers=2, progress=False)
    return study, store, gfgsm.mc.load(store)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(KEYS, kind="stable").reset_index(drop=True)


def test_chunking_invariance(tiny):
    # The store holds chunks (0, 2) and (2, 4), computed in two worker processes; one chunk of
    # all four restarts in this process must give the same rows bit for bit.
    study, _, df = tiny
    whole = gfgsm.mc.compute_chunk(study, "quick", 0, 0, REPS)
    stored = df[whole.columns]
    pd.testing.assert_frame_equal(_sorted(stored), _sorted(whole), check_exact=True)
    part = gfgsm.mc.compute_chunk(study, "quick", 0, 2, 4)
    pd.testing.assert_frame_equal(_sorted(part), _sorted(whole[whole["rep"] >= 2]),
                                  check_exact=True)


def test_accuracies_are_test_set_fractions(tiny):
    _, _, df = tiny
    yte = nd.DigitsData().split()[3]
    acc = df["accuracy"].to_numpy()
    assert np.all((acc >= 0) & (acc <= 1))
    # a share of the 599 test digits: 599 acc is an integer up to float rounding (1e-9)
    assert np.allclose(acc * yte.size, np.round(acc * yte.size), atol=1e-9, rtol=0)
    # one clean row per network and method; every restart and method present
    clean = df[df["experiment"] == "clean"]
    assert len(clean) == REPS * len(METHODS)
    assert set(df["method"]) == set(METHODS) and set(df["rep"]) == set(range(REPS))


def test_eps_zero_and_common_starts(tiny):
    _, _, df = tiny
    clean = df[df["experiment"] == "clean"].set_index(["method", "rep"])["accuracy"]
    zero = df[(df["experiment"] == "sweep") & (df["eps"] == 0.0)]
    assert len(zero) == REPS * len(METHODS) * (2 + len(nd.B_VALUES))
    # attacks at eps = 0 return the input: exactly the clean accuracy
    assert np.array_equal(zero["accuracy"].to_numpy(),
                          clean.loc[list(zip(zero["method"], zero["rep"], strict=True))]
                          .to_numpy())
    # step 0 of every step-experiment attack of a network is the same random start
    start = df[(df["experiment"] == "steps") & (df["steps"] == 0)]
    assert (start.groupby(["method", "rep"])["accuracy"].nunique() == 1).all()


def test_pgd_matches_a_direct_call(tiny):
    # Network rep 3 of "sign" retrained alone, attacked by an independent PGD call seeded
    # with the attack child of its replication seed, gives the stored 60-step accuracy.
    study, _, df = tiny
    Xtr, ytr, Xte, yte = nd.DigitsData().split()
    cond = study.conditions("quick")[0]
    method = next(m for m in study.methods if m.name == "sign")
    seed = replication_seed(study.seed, 0, 3)
    fit = method.train(Xtr, ytr, cond, [seed], None, hidden=(int(cond["hidden"]),),
                       n_networks=1)
    alpha = nd.STEP_EPS / nd.STEP_ALPHA_DIV
    pgd = ProjectedGradientDescent(fit.target(), nd.STEP_EPS, alpha, max_iter=nd.STEP_MAX,
                                   num_random_init=1, clip_min=0.0, clip_max=1.0,
                                   seed=np.random.default_rng(nd.attack_seed(seed)))
    x_adv = pgd.generate(Xte[None], yte[None])
    direct = float(np.mean(np.argmax(fit.net.eta(fit.params, x_adv, np), -1)[0] == yte))
    row = df[(df["method"] == "sign") & (df["rep"] == 3) & (df["experiment"] == "steps")
             & (df["attack"] == nd.PGD) & (df["steps"] == nd.STEP_MAX)]
    assert len(row) == 1
    assert row["accuracy"].iloc[0] == direct


def test_pqgd_with_b_one_is_pgd(tiny):
    # zeta(g / ||g||_inf) = sign(g) coordinate by coordinate, so PQGD(b = 1) and PGD with
    # the same starts give identical iterates (exact equality).
    study, _, _ = tiny
    Xtr, ytr, Xte, yte = nd.DigitsData().split()
    cond = study.conditions("quick")[0]
    seeds = [replication_seed(study.seed, 0, r) for r in range(2)]
    method = next(m for m in study.methods if m.name == "sign")
    fit = method.train(Xtr, ytr, cond, seeds, None, hidden=(32,), n_networks=2)
    X = np.broadcast_to(Xte, (2, *Xte.shape))
    Y = np.broadcast_to(yte, (2, yte.size))
    kw = dict(max_iter=10, num_random_init=1, clip_min=0.0, clip_max=1.0)
    a = ProjectedGradientDescent(fit.target(), 0.2, 0.02, seed=5, **kw).generate(X, Y)
    b = ProjectedQuantizedGradientDescent(fit.target(), 0.2, 0.02, b=1, seed=5,
                                          **kw).generate(X, Y)
    assert np.array_equal(a, b)


@pytest.fixture(scope="module")
def tiny_section(tiny, tmp_path_factory: pytest.TempPathFactory) -> gfgsm.report.Section:
    # The section of the tiny store: the study is resumed (complete), nothing is trained.
    study, store, _ = tiny
    return nd.section("quick", Path(store).parent, tmp_path_factory.mktemp("figures"),
                      study=study, executor="local")


def test_section_builds_with_figures(tiny_section):
    sec = tiny_section
    assert sec.key == "nn_digits"
    assert sec.agrees in (True, False)  # the decision is made: "sign" is in the run
    assert sec.verdict.startswith("Confirmed" if sec.agrees else "Not confirmed")
    assert len(sec.figures) == 2
    for path, caption in sec.figures:
        assert Path(path).is_file() and Path(path).stat().st_size > 0
        assert caption
    assert len(sec.tables) == 3
    assert "nn_digits" in sec.provenance
    assert nd.section.order == 80
    assert nd.section.render is nd.render


def test_section_renders_from_saved_summaries(tiny, tiny_section, tmp_path):
    # The section's summaries, saved to Parquet and loaded back, render the same section
    # without the store; and they are per condition (small), never per restart.
    _, _, df = tiny
    sec = tiny_section
    assert sec.summaries is not None
    d = gfgsm.report.save_summaries(sec.summaries, tmp_path / "s")
    s2 = gfgsm.report.load_summaries(tmp_path / "s")
    assert set(s2.tables) == {"accuracy", "diffs", "training", "statuses", "co_epochs"}
    assert s2.meta["preset"] == "quick" and s2.meta["monitored"] == ["sign", "fgsm_rs"]
    sec2 = nd.render(s2, tmp_path / "fig2")
    for attr in ("key", "title", "claim", "verdict", "agrees", "tables", "notes", "provenance"):
        assert getattr(sec2, attr) == getattr(sec, attr), attr
    assert [c for _, c in sec2.figures] == [c for _, c in sec.figures]
    assert all(Path(p).is_file() and Path(p).parent == tmp_path / "fig2" for p, _ in sec2.figures)
    assert sum(p.stat().st_size for p in d.glob("*.parquet")) < 1_000_000
    for name, table in s2.tables.items():
        assert not {"rep", "network"} & set(table.columns), name
        assert len(table) <= len(df) // REPS, name
    assert (s2["accuracy"]["restarts"] == REPS).all()
    # summaries made with other design constants are refused
    s2.meta["design"]["step_max"] = 30
    with pytest.raises(ValueError, match="other design constants"):
        nd.render(s2, tmp_path / "fig3")
