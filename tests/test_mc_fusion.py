"""Fused conditions, data on the backend, and the generator recorded in the store."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from gfgsm.mc import load, run
from gfgsm.mc.registry import get_study
from gfgsm.mc.runner import compute_chunk, compute_group, fusion_groups
from gfgsm.mc.spec import MethodSpec
from gfgsm.rng import GENERATOR

# The smoke study with two lam0 levels, so that each (family, n) fuses two conditions, and a
# BIC-tuned method, so that the tuned path is fused too.
SMOKE = get_study("smoke")
STUDY = replace(
    SMOKE, name="smoke_fused", factors={**SMOKE.factors, "lam0": [0.5, 2.0]},
    methods=(*SMOKE.methods,
             MethodSpec("PL l1 BIC", "pl", select="bic", grid=(0.25, 1.0, 4.0))),
)


def test_groups_share_family_n_and_p():
    groups = fusion_groups(STUDY, "quick")
    conds = STUDY.conditions("quick")
    assert sorted(c for g in groups for c in g) == list(range(len(conds)))
    assert all(len(g) == 2 for g in groups)
    for g in groups:
        assert len({(conds[c]["family"], conds[c]["n"]) for c in g}) == 1
        assert {conds[c]["lam0"] for c in g} == {0.5, 2.0}


def test_group_rows_equal_the_chunks_one_by_one():
    """Each problem's fit does not depend on its batch: the fused rows are the same bits."""
    for g in fusion_groups(STUDY, "quick"):
        members = [(c, 3, 11) for c in g]
        fused = compute_group(STUDY, "quick", members)
        for (c, s, e), frame in zip(members, fused, strict=True):
            alone = compute_chunk(STUDY, "quick", c, s, e)
            pd.testing.assert_frame_equal(frame, alone, check_exact=True)
            assert (frame["condition"] == c).all()


def test_group_members_must_share_the_key():
    groups = fusion_groups(STUDY, "quick")
    with pytest.raises(ValueError, match="fusion key"):
        compute_group(STUDY, "quick", [(groups[0][0], 0, 2), (groups[1][0], 0, 2)])


def test_array_api_strict_backend_gives_the_numpy_rows():
    """Data are the same bits on every backend; the fits agree to the solver's tolerance.

    The estimates differ only by the backends' summation orders inside the solver, far below
    its KKT tolerance of 1e-9, so 1e-9 absolute is the right bound.
    """
    c = fusion_groups(STUDY, "quick")[1]
    a = compute_group(STUDY, "quick", [(k, 0, 4) for k in c])
    b = compute_group(STUDY, "quick", [(k, 0, 4) for k in c], backend="array_api_strict")
    for fa, fb in zip(a, b, strict=True):
        np.testing.assert_allclose(fa["estimate"], fb["estimate"], rtol=0, atol=1e-9)
        assert (fa["status"] == fb["status"]).all()
        pd.testing.assert_series_equal(fa["lam"], fb["lam"])


def test_store_records_the_generator_and_refuses_another(tmp_path):
    out = run("smoke", "quick", tmp_path / "s", progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["generator"] == GENERATOR
    manifest["generator"] = "numpy-seedsequence-per-replication/v1"
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="generator"):
        run("smoke", "quick", out, progress=False)


def test_fused_run_equals_unfused_chunks(tmp_path):
    out = run(STUDY, "quick", tmp_path / "f", progress=False, chunk_size=7, fuse=True)
    got = load(out)
    conds = STUDY.conditions("quick")
    reps = STUDY.preset("quick").reps
    want = pd.concat([compute_chunk(STUDY, "quick", c, 0, reps) for c in range(len(conds))])
    key = ["condition", "rep", "method", "param"]
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)[got.columns]
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_dtype=False)


def test_fusion_is_on_for_cupy_only_by_default(tmp_path):
    """Fused or not, the store holds the same rows; the run records which it did."""
    a = run(STUDY, "quick", tmp_path / "a", progress=False, chunk_size=7)
    b = run(STUDY, "quick", tmp_path / "b", progress=False, chunk_size=7, fuse=True)
    assert json.loads((a / "runs.json").read_text())[-1]["fuse"] is False
    assert json.loads((b / "runs.json").read_text())[-1]["fuse"] is True
    pd.testing.assert_frame_equal(load(a), load(b), check_exact=True)
    assert all(len(g) == 1 for g in fusion_groups(STUDY, "quick", fuse=False))


def test_host_memory_budget_is_bounded_by_the_host():
    from gfgsm.mc.runner import HOST_MEMORY_BUDGET, default_memory_budget

    budget = default_memory_budget(None)
    assert 16e6 <= budget <= HOST_MEMORY_BUDGET == 64e6


def test_network_study_runs_on_the_array_backend():
    """A compute-hook study trains on the backend it is given: nn_teacher's chunk on
    array_api_strict equals NumPy's (its data are drawn on the host, recorded as such)."""
    study = get_study("nn_teacher")
    a = compute_chunk(study, "quick", 0, 0, 2)
    b = compute_chunk(study, "quick", 0, 0, 2, backend="array_api_strict")
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=0, atol=1e-12)
    assert (a["status"] == b["status"]).all()


# --------------------------------------------------------------------------------------------
# Preset.exclude: cells of the grid left out, the others' data unchanged
# --------------------------------------------------------------------------------------------
def _excluding(*cells):
    quick = STUDY.preset("quick")
    return replace(STUDY, presets={**STUDY.presets, "quick": replace(quick, exclude=cells)})


def test_exclude_drops_matching_cells_and_keeps_the_seeds_of_the_rest():
    whole = STUDY.conditions("quick")
    fam = whole[0]["family"]
    cut = _excluding({"family": fam, "lam0": 2.0})
    kept = cut.conditions("quick")
    assert len(kept) == len(whole) - sum(c["family"] == fam and c["lam0"] == 2.0 for c in whole)
    assert all(not (c["family"] == fam and c["lam0"] == 2.0) for c in kept)
    idx = cut.seed_indices("quick")
    assert [whole[i] for i in idx] == kept
    assert STUDY.seed_indices("quick") == list(range(len(whole)))
    # a kept condition's rows are the same bits as in the whole grid (its seed index), only
    # its position ("condition") changes
    c_new = next(k for k, i in enumerate(idx) if i != k)
    a = compute_chunk(cut, "quick", c_new, 0, 3)
    b = compute_chunk(STUDY, "quick", idx[c_new], 0, 3)
    assert (a["condition"] == c_new).all() and (b["condition"] == idx[c_new]).all()
    pd.testing.assert_frame_equal(a.drop(columns="condition"), b.drop(columns="condition"),
                                  check_exact=True)


def test_exclude_changes_the_hash_only_when_it_excludes_something():
    assert _excluding().hash("quick") == STUDY.hash("quick")
    fam = STUDY.conditions("quick")[0]["family"]
    assert _excluding({"family": fam}).hash("quick") != STUDY.hash("quick")


@pytest.mark.parametrize("bad", [{"family": "binomial"}, ({},), ("family",)])
def test_exclude_refuses_bad_input(bad):
    from gfgsm.mc.spec import Preset

    with pytest.raises(ValueError, match="exclude"):
        Preset(reps=2, exclude=bad)


def test_exclude_refuses_unknown_factors():
    with pytest.raises(ValueError, match="unknown factors"):
        _excluding({"colour": "red"}).conditions("quick")
