"""The Monte Carlo engine: reproducible whatever the chunking or executor, resumable, strict."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gfgsm
from gfgsm.mc import load, run
from gfgsm.mc.registry import get_study, list_studies
from gfgsm.mc.runner import chunk_bounds, compute_chunk
from gfgsm.mc.seeds import condition_seed
from gfgsm.mc.store import ChunkIntegrityWarning

SMOKE = "smoke"


def _run(tmp_path: Path, name: str, **kw) -> pd.DataFrame:
    out = run(SMOKE, "quick", tmp_path / name, progress=False, **kw)
    return load(out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """The smoke study, quick preset, all replications in one chunk, in process."""
    return _run(tmp_path_factory.mktemp("ref"), "all", chunk_size=10_000)


def test_store_is_tidy_and_complete(reference):
    study = get_study(SMOKE)
    conds = study.conditions("quick")
    reps = study.preset("quick").reps
    assert len(reference) == len(conds) * reps * len(study.methods) * 3
    assert set(reference["param"]) == {"intercept", "beta1", "beta2"}
    assert {"family", "n", "lam0", "method", "rep", "estimate", "true", "converged",
            "status", "kkt", "lam"} <= set(reference.columns)
    assert reference["converged"].all()
    # lam follows the rule lam0 / sqrt(n)
    np.testing.assert_allclose(reference["lam"], reference["lam0"] / np.sqrt(reference["n"]))


@pytest.mark.parametrize("chunk_size", [1, 7])
def test_same_numbers_for_every_chunk_size(tmp_path, reference, chunk_size):
    got = _run(tmp_path, f"c{chunk_size}", chunk_size=chunk_size)
    pd.testing.assert_frame_equal(got, reference, check_exact=True)


@pytest.mark.parametrize(("executor", "workers"), [("processes", 1), ("processes", 2),
                                                   ("dask", 1), ("dask", 2)])
def test_same_numbers_on_every_executor(tmp_path, reference, executor, workers):
    got = _run(tmp_path, f"{executor}{workers}", executor=executor, workers=workers,
               chunk_size=7)
    pd.testing.assert_frame_equal(got, reference, check_exact=True)


def test_replication_data_come_from_their_own_seed():
    """Replication r of condition c is replication r of dgp.sample(seed=condition_seed(c))."""
    study = get_study(SMOKE)
    c = 3
    cond = study.conditions("quick")[c]
    dgp = study.make_dgp(cond)
    X, y = dgp.sample(cond["n"], seed=condition_seed(study.seed, c), R=6)
    a = compute_chunk(study, "quick", c, 4, 6)
    b = compute_chunk(study, "quick", c, 0, 6)
    pd.testing.assert_frame_equal(a.reset_index(drop=True),
                                  b[b["rep"] >= 4].reset_index(drop=True), check_exact=True)
    fit = gfgsm.fit_batch(X[4:6], y[4:6], family=dgp.family, method="pl",
                          lam=cond["lam0"] / np.sqrt(cond["n"]))
    est = a[(a["method"] == "PL l1") & (a["param"] == "beta1")]["estimate"].to_numpy()
    np.testing.assert_array_equal(est, np.asarray(fit.coef)[:, 0])


def test_resume_skips_finished_chunks(tmp_path, reference):
    out = tmp_path / "resume"
    run(SMOKE, "quick", out, chunk_size=7, progress=False)
    files = sorted((out / "chunks").glob("*.parquet"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    run(SMOKE, "quick", out, chunk_size=7, progress=False)
    assert [f.stat().st_mtime_ns for f in sorted((out / "chunks").glob("*.parquet"))] == mtimes
    pd.testing.assert_frame_equal(load(out), reference, check_exact=True)


def test_truncated_chunk_is_recomputed(tmp_path, reference):
    out = tmp_path / "trunc"
    run(SMOKE, "quick", out, chunk_size=7, progress=False)
    victim = sorted((out / "chunks").glob("*.parquet"))[3]
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    with pytest.warns(UserWarning):
        partial = load(out)  # the truncated chunk is reported and not read
    assert len(partial) < len(reference)
    # the resumed run reports the invalid chunk too, then recomputes it
    with pytest.warns(ChunkIntegrityWarning, match="truncated or corrupted"):
        run(SMOKE, "quick", out, chunk_size=7, progress=False)
    assert victim.read_bytes() == good
    pd.testing.assert_frame_equal(load(out), reference, check_exact=True)


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path):
    """A real run in a subprocess, killed with SIGKILL part-way, then resumed."""
    full = tmp_path / "full"
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "gfgsm.cli", "run", SMOKE, "--preset", "full", "--reps", "60",
           "--chunk-size", "3", "--no-progress"]
    subprocess.run([*cmd, "--out", str(full)], check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen([*cmd, "--out", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    chunks = killed / "chunks"
    while time.time() < deadline:
        done = list(chunks.glob("*.done")) if chunks.exists() else []
        if len(done) >= 5:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    n_before = len(list(chunks.glob("*.done")))
    total = len(list((full / "chunks").glob("*.done")))
    assert 5 <= n_before < total, (n_before, total)
    subprocess.run([*cmd, "--out", str(killed)], check=True, capture_output=True, timeout=600)
    pd.testing.assert_frame_equal(load(killed), load(full), check_exact=True)
    for f in sorted((full / "chunks").glob("*.parquet")):
        assert (chunks / f.name).read_bytes() == f.read_bytes(), f.name
    assert not [p for p in chunks.iterdir() if p.suffix not in (".parquet", ".done")]


def test_store_of_another_definition_is_refused(tmp_path):
    out = tmp_path / "store"
    run(SMOKE, "quick", out, progress=False)
    with pytest.raises(ValueError, match="different study definition"):
        run(SMOKE, "quick", out, reps=21, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"study": "nope"}, ValueError, "unknown study"),
        ({"preset": "huge"}, ValueError, "no preset"),
        ({"reps": 0}, ValueError, "positive integer"),
        ({"reps": -3}, ValueError, "positive integer"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
        ({"executor": "mpi"}, ValueError, "unknown executor"),
        ({"backend": "jax"}, ValueError, "unknown backend"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, exc, match):
    args = {"study": SMOKE, "preset": "quick", "out": tmp_path / "x", "progress": False,
            **kwargs}
    with pytest.raises(exc, match=match):
        run(args.pop("study"), args.pop("preset"), args.pop("out"), **args)


def test_out_that_is_a_file_or_unwritable(tmp_path):
    f = tmp_path / "file"
    f.write_text("not a directory")
    with pytest.raises((ValueError, NotADirectoryError, FileExistsError), match="file"):
        run(SMOKE, "quick", f, progress=False)
    # Root ignores permission bits, so "not writable" is a path below a regular file.
    with pytest.raises((ValueError, NotADirectoryError, PermissionError, FileExistsError)):
        run(SMOKE, "quick", f / "sub", progress=False)


def test_unreachable_scheduler_fails_fast(tmp_path):
    t = time.perf_counter()
    with pytest.raises(ConnectionError, match="scheduler"):
        run(SMOKE, "quick", tmp_path / "d", executor="dask", scheduler="tcp://127.0.0.1:9",
            progress=False)
    assert time.perf_counter() - t < 60


def test_cli_list_run_summarize(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "gfgsm.cli", *args], capture_output=True,
                              text=True, timeout=600)

    out = cli("list")
    assert out.returncode == 0 and "smoke" in out.stdout and "--preset quick" in out.stdout
    store = tmp_path / "s"
    res = cli("run", SMOKE, "--out", str(store), "--chunk-size", "5")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # no progress bar when stderr is not a terminal
    summ = cli("summarize", str(store))
    assert summ.returncode == 0, summ.stderr
    assert "bias" in summ.stdout and "G-FGSM l1" in summ.stdout
    bad = cli("run", "nope", "--out", str(tmp_path / "n"))
    assert bad.returncode == 2 and "unknown study" in bad.stderr
    bad = cli("run", SMOKE, "--reps", "0", "--out", str(tmp_path / "n"))
    assert bad.returncode == 2 and "positive integer" in bad.stderr


def test_registry_lists_the_smoke_study():
    assert SMOKE in list_studies()
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]


def test_bitwise_across_executors_where_blas_would_thread(tmp_path, monkeypatch):
    """The local executor computes with one BLAS thread, as the workers do, and the population
    D of a lam rule is computed with one thread wherever it is computed, so stores are the same
    bits on every executor.  (Before: the Monte Carlo D of consistency's matched-PL rule came
    out 1-3 ulp apart with two BLAS threads, and so did every PL estimate that used it.)"""
    import gfgsm.tuning as spec  # LamRule's population D lives there, below mc and nn

    study = get_study("consistency")
    kw = {"reps": 4, "chunk_size": 2, "progress": False}
    # Workers first, each computing D itself (nothing cached in this process to inherit).
    monkeypatch.setattr(spec, "_D_CACHE", {})
    procs = load(run(study, "quick", tmp_path / "procs", executor="processes", workers=2, **kw))
    assert spec._D_CACHE == {}
    local = load(run(study, "quick", tmp_path / "local", **kw))
    pd.testing.assert_frame_equal(local, procs, check_exact=True)
    monkeypatch.setattr(spec, "_D_CACHE", {})
    dask = load(run(study, "quick", tmp_path / "dask", executor="dask", workers=2, **kw))
    pd.testing.assert_frame_equal(dask, procs, check_exact=True)
    # D itself, wherever it is computed, does not depend on the caller's BLAS threads.
    dgp = study.make_dgp(study.conditions("quick")[0])
    monkeypatch.setattr(spec, "_D_CACHE", {})
    from threadpoolctl import threadpool_limits

    with threadpool_limits(2):
        two = spec._population_D("k", dgp)
    monkeypatch.setattr(spec, "_D_CACHE", {})
    with threadpool_limits(1):
        one = spec._population_D("k", dgp)
    assert one == two


def test_automatic_chunks_follow_each_conditions_size(tmp_path, reference):
    """Without ``chunk_size`` each condition's chunks hold as many replications as the memory
    budget allows for its own n (larger n, smaller chunks); the numbers do not change."""
    study = get_study(SMOKE)
    conds = study.conditions("quick")
    n_small, n_large = min(c["n"] for c in conds), max(c["n"] for c in conds)
    assert n_small < n_large
    # a budget that holds 7 replications of the largest condition (the runner's bytes per
    # observation x column of one replication: 96)
    p = study.make_dgp(conds[0]).design.p
    budget = 7 * n_large * (p + 2) * 96
    out = run(SMOKE, "quick", tmp_path / "auto", memory_budget=budget, progress=False)
    pd.testing.assert_frame_equal(load(out), reference, check_exact=True)
    size = {}
    for f in (out / "chunks").glob("*.done"):
        c, rng = f.stem.split("_")
        start, stop = (int(v) for v in rng[1:].split("-"))
        if start == 0:
            size[int(c[1:])] = stop
    reps = study.preset("quick").reps
    large = [c for c, d in enumerate(conds) if d["n"] == n_large]
    small = [c for c, d in enumerate(conds) if d["n"] == n_small]
    assert all(size[c] == min(7, reps) for c in large)
    assert all(size[c] == min(reps, 7 * n_large // n_small) > size[large[0]] for c in small)
    assert load(out).groupby("condition")["rep"].nunique().eq(reps).all()
    runs = __import__("json").loads((out / "runs.json").read_text())
    assert runs[-1]["chunk_sizes"] == [size[c] for c in range(len(conds))]


def test_resume_keeps_the_chunks_a_store_has(tmp_path, reference):
    """A store begun with another chunk size is resumed in its own chunks (new chunks that
    overlapped finished ones would count replications twice)."""
    out = tmp_path / "mixed"
    run(SMOKE, "quick", out, chunk_size=3, progress=False)
    chunks = sorted((out / "chunks").glob("*.parquet"))
    for f in chunks[1::2]:  # a killed run: every condition lacks some of its chunks
        if not f.stem.endswith("_r0000000-0000003"):
            f.unlink()
            f.with_suffix(".done").unlink()
    run(SMOKE, "quick", out, progress=False)  # automatic chunks would be larger than 3
    pd.testing.assert_frame_equal(load(out), reference, check_exact=True)
    assert sorted((out / "chunks").glob("*.parquet")) == chunks
