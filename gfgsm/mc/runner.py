"""Run a study: chunks of replications, batched fits, an atomic results store, resumable.

``run(study, preset, out)``

1. opens (or creates) the store at ``out``; a store of another study definition is refused;
2. cuts every condition's replications into chunks (``chunk_size``, or as many as fit in
   ``memory_budget`` bytes), skipping chunks already finished and verified;
3. computes each missing chunk with :func:`compute_chunk` on the chosen executor and writes it
   as soon as it arrives.

:func:`compute_chunk` is a pure function of (study, preset, condition, replication range,
backend): it draws the chunk's replications as ``(R, n, p)`` arrays directly on the backend
with the counter-based generator (replication ``r`` is counter ``r`` of the condition's key,
:mod:`gfgsm.mc.seeds`), fits every method with one :func:`gfgsm.fit_batch` call per method, and
moves only the finished results to the host.  Hence a killed and resumed run, a different chunk
size, executor or number of workers all give the same numbers.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._backend import BACKENDS, asarray, resolve_backend, to_numpy
from ..batch import fit_batch
from ..rng import GENERATOR, Stream
from .executors import run_tasks
from .registry import get_study
from .seeds import condition_key, replication_seed
from .spec import Study
from .store import ResultStore

__all__ = ["chunk_bounds", "compute_chunk", "param_rows", "run"]

#: What draws the data of a study with a compute hook (the networks): NumPy generators seeded
#: by one ``SeedSequence`` per replication (:func:`gfgsm.mc.seeds.replication_seed`).
HOOK_GENERATOR = "numpy-seedsequence-per-replication/v1"

#: Bytes of working memory per (observation x column) of one replication in a batched fit:
#: the design with its intercept column, the Gram temporary and a few (R, n) arrays.
_BYTES_PER_CELL = 8 * 12


def chunk_bounds(reps: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(0, c), (c, 2c), ...]`` covering ``range(reps)``."""
    return [(s, min(s + chunk_size, reps)) for s in range(0, reps, chunk_size)]


def _auto_chunk(study: Study, preset: str, memory_budget: float) -> int:
    conds = study.conditions(preset)
    reps = study.preset(preset).reps
    if study.chunk_size is not None:
        return min(reps, study.chunk_size)
    if study.compute is not None:
        return reps
    worst = max(int(c["n"]) * (study.make_dgp(c).design.p + 2) for c in conds)
    # A BIC-tuned method fits every replication once per grid point in one call.
    fits = max(max(len(m.grid), 1) for m in study.methods)
    return max(1, min(reps, int(memory_budget // (worst * fits * _BYTES_PER_CELL))))


def compute_chunk(study: Study, preset: str, condition: int, start: int, stop: int,
                  backend: str | None = None) -> pd.DataFrame:
    """Tidy results of replications ``start..stop-1`` of one condition, every method.

    One row per replication x method x parameter (intercept first): the condition's factors,
    ``method``, ``rep``, ``param``, ``estimate``, ``true``, ``converged``, ``status``,
    ``n_iter``, ``kkt``, ``objective``, ``lam``.
    """
    cond = study.conditions(preset)[condition]
    dgp = study.make_dgp(cond)
    if study.compute is not None:
        return _compute_hook(study, cond, condition, dgp, start, stop, backend)
    n = int(cond["n"])
    xp = resolve_backend(backend)
    stream = Stream.create(condition_key(study.seed, condition),
                           np.arange(start, stop, dtype=np.uint64), xp)
    X, y = dgp.draw_stream(n, stream)
    R = stop - start
    theta0 = np.asarray(dgp.theta0, dtype=float)
    q = theta0.size
    params = np.array(["intercept"] + [f"beta{j}" for j in range(1, q)], dtype=object)
    frames = []
    for m in study.methods:
        lam = m.lam(cond, dgp)
        if m.select is None:
            fit = fit_batch(X, y, family=dgp.family, lam=lam, backend=backend, warn=False,
                            **m.fit_options())
            est = np.c_[to_numpy(fit.intercept), to_numpy(fit.coef)]
            lam_used = np.full(R, lam)
            per = _per_rep(fit, np.arange(R))
        else:
            est, lam_used, per = _fit_selected(X, y, dgp, m, lam, backend)
        frame = {
            "condition": np.full(R * q, condition, dtype=np.int64),
            **{k: np.repeat(np.asarray([_scalar(v)], dtype=object), R * q)
               for k, v in cond.items()},
            **param_rows(m.name, np.arange(start, stop), params, est, theta0,
                         {**per, "lam": lam_used.astype(float)}),
        }
        frames.append(pd.DataFrame(frame))
    df = pd.concat(frames, ignore_index=True)
    for k, v in cond.items():
        df[k] = df[k].astype(_dtype(_scalar(v)))
    df["method"] = df["method"].astype(str)
    df["param"] = df["param"].astype(str)
    df["status"] = df["status"].astype(str)
    return df


def param_rows(method: str, reps: np.ndarray, params: Any, est: np.ndarray, true: np.ndarray,
               per_rep: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Tidy columns of one method's estimates: one row per replication x parameter.

    ``est`` is ``(R, q)`` for replications ``reps`` and parameters ``params`` with true values
    ``true`` (``q``); each ``per_rep`` entry (``(R,)``: status, iterations, ``lam``, ...) is
    repeated over the parameters.  The layout of every results store whose rows estimate
    parameters (GLM studies, and :mod:`simulations.nn_teacher`).
    """
    R, q = est.shape
    return {
        "method": np.full(R * q, method, dtype=object),
        "rep": np.repeat(np.asarray(reps, dtype=np.int64), q),
        "param": np.tile(np.asarray(params, dtype=object), R),
        "estimate": est.reshape(-1),
        "true": np.tile(true, R),
        **{k: np.repeat(np.asarray(v), q) for k, v in per_rep.items()},
    }


def _compute_hook(study: Study, cond: dict[str, Any], condition: int, dgp: Any, start: int,
                  stop: int, backend: str | None) -> pd.DataFrame:
    """The study's own chunk computation, with the condition's index and factors prepended."""
    reps = np.arange(start, stop, dtype=np.int64)
    seeds = [replication_seed(study.seed, condition, int(r)) for r in reps]
    out = study.compute(study, cond, dgp, reps, seeds, backend)
    if not isinstance(out, pd.DataFrame) or not {"method", "rep"} <= set(out.columns):
        raise TypeError(f"study {study.name!r}: compute must return a DataFrame with columns "
                        "'method' and 'rep'")
    clash = ({"condition"} | set(cond)) & set(out.columns)
    if clash:
        raise ValueError(f"study {study.name!r}: compute returned columns {sorted(clash)} that "
                         "the engine adds (the condition and its factors)")
    out = out.reset_index(drop=True)
    front = pd.DataFrame({"condition": np.full(len(out), condition, dtype=np.int64)})
    for k, v in cond.items():
        front[k] = pd.Series([_scalar(v)] * len(out), dtype=_dtype(_scalar(v)))
    df = pd.concat([front, out], axis=1)
    df["method"] = df["method"].astype(str)
    df["rep"] = df["rep"].astype(np.int64)
    return df


def _per_rep(fit: Any, idx: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "converged": to_numpy(fit.converged).astype(bool)[idx],
        "status": np.asarray(fit.status, dtype=object)[idx],
        "n_iter": to_numpy(fit.n_iter).astype(np.int64)[idx],
        "kkt": to_numpy(fit.kkt).astype(float)[idx],
        "objective": to_numpy(fit.objective).astype(float)[idx],
    }


def _fit_selected(X: Any, y: Any, dgp: Any, m: Any, lam: float,
                  backend: str | None) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Fit every replication on the grid ``lam * g`` at once and keep the smallest BIC.

    The ``R x L`` problems go through one ``fit_batch`` call (replication-major).  BIC uses
    the likelihood, not the method's objective, so every method is tuned by the same rule.
    Non-converged grid points are never selected (a replication whose grid has no converged
    point is reported non-converged at the smallest BIC).
    """
    from ..families import get_family

    grid = np.asarray(m.grid, dtype=float)
    L = grid.size
    Xn, yn = to_numpy(X), to_numpy(y)
    R, n, _ = Xn.shape
    lams = np.tile(lam * grid, R)
    xp = resolve_backend(backend)
    XX = asarray(np.repeat(Xn, L, axis=0), xp)
    YY = asarray(np.repeat(yn, L, axis=0), xp)
    fit = fit_batch(XX, YY, family=dgp.family, lam=lams, backend=backend, warn=False,
                    **m.fit_options())
    est = np.c_[to_numpy(fit.intercept), to_numpy(fit.coef)]  # (R L, p + 1)
    eta = est[:, :1] + np.einsum("rnp,rp->rn", np.repeat(Xn, L, axis=0), est[:, 1:])
    fam = get_family(dgp.family)
    yy = np.repeat(yn, L, axis=0)
    df = 1 + np.count_nonzero(est[:, 1:], axis=1)
    if fam.name == "gaussian":
        rss = np.sum((yy - eta) ** 2, axis=1)
        bic = n * np.log(np.maximum(rss, 1e-300) / n) + np.log(n) * df
    else:
        bic = np.sum(to_numpy(fam.deviance(yy, eta)), axis=1) + np.log(n) * df
    conv = to_numpy(fit.converged).astype(bool)
    bic = np.where(conv, bic, np.inf).reshape(R, L)
    best = np.argmin(bic, axis=1)
    none = ~np.isfinite(bic.min(axis=1))
    best = np.where(none, 0, best)
    idx = np.arange(R) * L + best
    return est[idx], lams[idx], _per_rep(fit, idx)


def _scalar(v: Any) -> Any:
    v = v.item() if hasattr(v, "item") else v
    return v if isinstance(v, str | int | float | bool) else repr(v)


def _dtype(v: Any) -> Any:
    if isinstance(v, bool):
        return bool
    if isinstance(v, int):
        return np.int64
    if isinstance(v, float):
        return np.float64
    return str


def _versions() -> dict[str, str]:
    import platform

    import scipy

    from .. import __version__

    out = {"gfgsm": __version__, "python": platform.python_version(),
           "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
           "platform": platform.platform()}
    for mod in ("pyarrow", "dask", "distributed", "sklearn", "statsmodels"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:  # pragma: no cover
            pass
    return out


def run(
    study: str | Study,
    preset: str = "quick",
    out: str | os.PathLike[str] | None = None,
    *,
    backend: str | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    reps: int | None = None,
    memory_budget: float = 256e6,
    progress: bool | None = None,
) -> Path:
    """Run (or resume) ``study`` under ``preset``, writing the results store ``out``.

    Parameters
    ----------
    study : a :class:`Study` or the name of a registered study (``gfgsm list``).
    preset : ``"quick"`` or ``"full"`` (or any preset the study defines).
    out : the store directory (default ``results/<study>-<preset>``).
    backend : array backend of the fits (``"numpy"``, ``"cupy"``, ``"array_api_strict"``).
    executor : ``"local"``, ``"processes"`` or ``"dask"`` (with ``scheduler`` an address, or a
        ``LocalCluster`` of ``workers`` processes when it is ``None``).
    chunk_size : replications per chunk (default: as many as ``memory_budget`` bytes allow).
    reps : replications per condition, overriding the preset's (a different definition).
    progress : a progress bar on stderr (default: only when stderr is a terminal).

    Returns the store's path; read it with :func:`gfgsm.mc.load`.
    """
    study = get_study(study) if isinstance(study, str) else study
    pre = study.preset(preset)  # validates the name
    if reps is not None:
        # Preset validates the count; the study's definition (and hash) records it.
        study = replace(study, presets={**study.presets, preset: replace(pre, reps=reps)})
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    resolve_backend(backend)  # fails early when CuPy is asked for but absent
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    out = Path(out) if out is not None else Path("results") / f"{study.name}-{preset}"
    reps = study.preset(preset).reps
    cs = chunk_size or _auto_chunk(study, preset, memory_budget)
    definition = study.definition(preset)
    manifest = {
        "study_hash": study.hash(preset),
        "study": definition,
        "preset": preset,
        "seed": study.seed,
        "versions": _versions(),
        "backend": backend or "numpy",
        "generator": GENERATOR if study.compute is None else HOOK_GENERATOR,
    }
    store = ResultStore.create_or_open(out, manifest)
    conds = definition["conditions"]
    tasks = [(study, preset, c, s, e, backend)
             for c in range(len(conds)) for s, e in chunk_bounds(reps, cs)
             if not store.is_done(c, s, e)]
    total = sum(t[4] - t[3] for t in tasks)
    bar = _progress(total, len(conds), progress)
    t0 = time.perf_counter()
    try:
        for task, df in run_tasks(_timed_chunk, tasks, executor=executor, workers=workers,
                                  scheduler=scheduler):
            _, _, c, s, e, _ = task
            frame, seconds = df
            store.write_chunk(c, s, e, frame, seconds=seconds)
            if bar is not None:
                bar.update(e - s)
                bar.set_postfix_str(f"condition {c + 1}/{len(conds)}")
    finally:
        if bar is not None:
            bar.close()
    store.record_run({"executor": executor, "workers": workers, "chunk_size": cs,
                      "chunks_computed": len(tasks), "seconds": time.perf_counter() - t0,
                      "backend": backend or "numpy"})
    return out


def _timed_chunk(study: Study, preset: str, c: int, s: int, e: int,
                 backend: str | None) -> tuple[pd.DataFrame, float]:
    t = time.perf_counter()
    df = compute_chunk(study, preset, c, s, e, backend)
    return df, time.perf_counter() - t


def _progress(total: int, n_conditions: int, enabled: bool | None) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="rep", desc=f"{n_conditions} conditions", file=sys.stderr,
                smoothing=0.05)


def conditions_frame(study: Study, preset: str) -> pd.DataFrame:
    """The grid of a preset as a DataFrame (one row per condition, with its index)."""
    conds = study.conditions(preset)
    return pd.DataFrame([{"condition": i, **c} for i, c in enumerate(conds)])
