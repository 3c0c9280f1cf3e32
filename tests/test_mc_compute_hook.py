"""Studies with their own chunk computation (``Study(compute=...)``) and network methods.

The engine's guarantees must hold for them as for GLM studies: the same numbers whatever the
chunking or executor (each replication from its own seed), strict validation of what the hook
returns, and a study hash that sees the hook.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gfgsm.mc import LamRule, MethodSpec, Preset, Study, load, run
from gfgsm.mc.runner import compute_chunk
from gfgsm.nn import train_networks
from gfgsm.nn.study import NetworkMethod


@dataclasses.dataclass(frozen=True)
class ToyData:
    """Logistic data ``y ~ Bernoulli(expit(x_1 - x_2))``, ``x ~ N(0, I_3)``."""

    d: int = 3

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        X = rng.normal(size=(n, self.d))
        y = (X[:, 0] - X[:, 1] + rng.logistic(size=n) > 0).astype(float)
        return X, y


def toy_compute(study: Study, cond: dict, dgp: ToyData, reps: np.ndarray,
                seeds: list, backend: str | None) -> pd.DataFrame:
    data = [dgp.draw(int(cond["n"]), np.random.default_rng(s)) for s in seeds]
    X = np.stack([d[0] for d in data])
    y = np.stack([d[1] for d in data])
    frames = []
    for m in study.methods:
        fit = m.train(X, y, cond, seeds, backend, hidden=(3,), family="binomial",
                      solver="adam", max_iter=15, learning_rate=0.05)
        eta = fit.net.eta(fit.params, X, np)[..., 0]
        frames.append(pd.DataFrame({
            "method": m.name, "rep": reps,
            "train_loss": np.mean(np.logaddexp(0.0, eta) - y * eta, axis=-1),
            "status": fit.status.astype(str),
        }))
    return pd.concat(frames, ignore_index=True)


def _make(_: dict) -> ToyData:
    return ToyData()


METHODS = (NetworkMethod("none", perturbation="none"),
           NetworkMethod("sign", lam=LamRule(scale=1.0)),
           NetworkMethod("l2", perturbation="none", weight_decay=0.01))
TOY = Study(name="toy_networks", aims="engine test", factors={"n": [40, 80]}, make_dgp=_make,
            methods=METHODS, presets={"quick": Preset(reps=5), "full": Preset(reps=5)},
            compute=toy_compute, chunk_size=2)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    out = run(TOY, "quick", tmp_path_factory.mktemp("ref") / "s", chunk_size=5, progress=False)
    return load(out)


def test_hook_rows_carry_the_condition(reference):
    assert len(reference) == 2 * 5 * len(METHODS)
    assert list(reference.columns[:2]) == ["condition", "n"]
    assert reference["n"].dtype == np.int64
    assert set(reference["method"]) == {m.name for m in METHODS}
    assert reference.groupby("condition")["rep"].nunique().eq(5).all()


@pytest.mark.parametrize(("executor", "workers", "chunk_size"),
                         [("local", None, 1), ("local", None, None), ("processes", 2, 2)])
def test_same_numbers_whatever_the_chunking_and_executor(tmp_path, reference, executor, workers,
                                                         chunk_size):
    out = run(TOY, "quick", tmp_path / "s", executor=executor, workers=workers,
              chunk_size=chunk_size, progress=False)
    pd.testing.assert_frame_equal(load(out), reference, check_exact=True)


def test_compute_chunk_is_a_pure_function_of_the_replications():
    a = compute_chunk(TOY, "quick", 1, 3, 5)
    b = compute_chunk(TOY, "quick", 1, 0, 5)
    b = b[b["rep"] >= 3].reset_index(drop=True)
    key = ["method", "rep"]
    pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True),
                                  b.sort_values(key).reset_index(drop=True), check_exact=True)


def test_network_method_trains_as_train_networks_with_the_replication_seeds():
    cond = {"n": 64}
    seeds = [np.random.SeedSequence(7, spawn_key=(0, r)) for r in range(3)]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 64, 3))
    y = (X[..., 0] > 0).astype(float)
    m = NetworkMethod("lq", scheme="lq", scheme_params=(("q", 2),), lam=LamRule(scale=2.0),
                      clean_weight=0.25, options=(("max_iter", 5),))
    got = m.train(X, y, cond, seeds, hidden=(4,), family="binomial", max_iter=50)
    want = train_networks(X, y, hidden=(4,), family="binomial", max_iter=5, lam=2.0 / 8.0,
                          scheme="lq", scheme_params={"q": 2}, clean_weight=0.25,
                          random_state=seeds, warn=False)
    for a, b in zip(got.params.arrays(), want.params.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert got.n_iter.tolist() == want.n_iter.tolist()


def test_network_method_options_and_json():
    m = NetworkMethod("rs", perturbation="fgsm_rs", lam=0.1, weight_decay=LamRule(scale=0.5),
                      decay="l1", options=(("solver", "adam"),))
    opts = m.train_options({"n": 100})
    assert opts["lam"] == 0.1 and opts["weight_decay"] == pytest.approx(0.05)
    assert opts["decay"] == "l1" and opts["solver"] == "adam" and opts["scheme_params"] is None
    text = json.dumps(m.to_json())
    assert '"kind": "network"' in text


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"perturbation": "pgd"}, "perturbation"),
    ({"decay": "l3"}, "decay"),
    ({"options": (("lam", 1.0),)}, "options may not set"),
    ({"name": ""}, "name"),
])
def test_network_method_refuses_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NetworkMethod(**{"name": "m", **kwargs})


def test_network_method_refuses_bad_levels():
    with pytest.raises(ValueError, match="lam must be"):
        NetworkMethod("m", lam=-1.0).train_options({"n": 10})
    with pytest.raises(ValueError, match="factor 'lam0'"):
        NetworkMethod("m", lam=LamRule()).train_options({"n": 10})


def test_study_refuses_network_methods_without_a_hook():
    with pytest.raises(TypeError, match="compute hook"):
        dataclasses.replace(TOY, compute=None)
    with pytest.raises(TypeError, match="name/to_json"):
        dataclasses.replace(TOY, methods=(object(),))
    with pytest.raises(ValueError, match="chunk_size"):
        dataclasses.replace(TOY, chunk_size=0)
    # GLM studies still take MethodSpecs without a hook.
    Study(name="g", aims="", factors={"n": [10]}, make_dgp=_make,
          methods=(MethodSpec("pl", "pl"),), presets=TOY.presets)


def _no_rep(study, cond, dgp, reps, seeds, backend):
    return pd.DataFrame({"method": ["x"] * len(reps)})


def _with_factor(study, cond, dgp, reps, seeds, backend):
    return pd.DataFrame({"method": "x", "rep": reps, "n": 1})


@pytest.mark.parametrize(("hook", "error", "match"), [
    (_no_rep, TypeError, "'method' and 'rep'"),
    (_with_factor, ValueError, "engine adds"),
])
def test_hook_output_is_checked(hook, error, match, tmp_path: Path):
    study = dataclasses.replace(TOY, compute=hook)
    with pytest.raises(error, match=match):
        compute_chunk(study, "quick", 0, 0, 2)
    with pytest.raises(error, match=match):
        run(study, "quick", tmp_path / "s", progress=False)
    assert not list((tmp_path / "s").glob("chunks/*.parquet"))


def test_the_hash_sees_the_hook():
    other = dataclasses.replace(TOY, compute=_no_rep)
    assert other.hash("quick") != TOY.hash("quick")
    assert TOY.definition("quick")["compute"].endswith("toy_compute")


def test_summarize_a_hook_study(tmp_path):
    from gfgsm.mc.summary import means_frame, summarize

    study = dataclasses.replace(TOY, measures=("train_loss",))
    out = run(study, "quick", tmp_path / "s", progress=False)
    df = load(out)
    table = means_frame(df, ["train_loss"], ["n"])
    # one row per condition x method (status is a per-replication outcome, not a key)
    assert len(table) == 2 * len(METHODS) and (table["n_used"] == 5).all()
    g = df.groupby(["condition", "method"])["train_loss"]
    np.testing.assert_allclose(table["mean"], g.mean().to_numpy(), rtol=1e-14)
    np.testing.assert_allclose(table["mcse"], (g.std(ddof=1) / np.sqrt(5)).to_numpy(),
                               rtol=1e-14)
    text = summarize(out)
    assert "train_loss" in text and "sign" in text
    with pytest.raises(ValueError, match="no measure columns"):
        means_frame(df, ["accuracy"])


def test_excluded_cells_leave_the_hook_draws_of_the_others_unchanged():
    """A hook draws from the condition's place in the whole grid (``Study.seed_indices``)."""
    cut = dataclasses.replace(TOY, presets={**TOY.presets,
                                            "quick": Preset(reps=5, exclude=({"n": 40},))})
    assert cut.conditions("quick") == [{"n": 80}] and cut.seed_indices("quick") == [1]
    a = compute_chunk(cut, "quick", 0, 0, 3)
    b = compute_chunk(TOY, "quick", 1, 0, 3)
    pd.testing.assert_frame_equal(a.drop(columns="condition"), b.drop(columns="condition"),
                                  check_exact=True)
