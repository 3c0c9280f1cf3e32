"""Run a study: chunks of replications, batched fits, an atomic results store, resumable.

``run(study, preset, out)``

1. opens (or creates) the store at ``out``; a store of another study definition is refused;
2. cuts every condition's replications into chunks (``chunk_size``, or as many of that
   condition's replications as fit in ``memory_budget`` bytes: a quarter of the free device
   memory on CuPy, :data:`HOST_MEMORY_BUDGET` on the host; a resumed store keeps the chunks it
   has), skipping chunks already finished and verified;
3. on CuPy, fuses the chunks of conditions that share the family, ``n`` and ``p``
   (:func:`fusion_groups`) into one task; computes each task with :func:`compute_group` (one
   :func:`gfgsm.fit_batch` call per method for the whole group) on the chosen executor, and
   writes each chunk as soon as its task returns.

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

from .._backend import BACKENDS, get_namespace, resolve_backend, to_numpy
from ..batch import fit_batch
from ..rng import GENERATOR, Stream
from ..tuning import bic_select
from .executors import run_tasks
from .registry import get_study
from .seeds import condition_key, replication_seed
from .spec import Study
from .store import ResultStore

__all__ = ["chunk_bounds", "compute_chunk", "compute_group", "fusion_groups", "param_rows", "run"]

#: What draws the data of a study with a compute hook (the networks): NumPy generators seeded
#: by one ``SeedSequence`` per replication (:func:`gfgsm.mc.seeds.replication_seed`).
HOOK_GENERATOR = "numpy-seedsequence-per-replication/v1"

#: Bytes of working memory per (observation x column) of one replication in a batched fit:
#: the design with its intercept column, the Gram temporary and a few (R, n) arrays.
_BYTES_PER_CELL = 8 * 12


def chunk_bounds(reps: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(0, c), (c, 2c), ...]`` covering ``range(reps)``."""
    return [(s, min(s + chunk_size, reps)) for s in range(0, reps, chunk_size)]


def fusion_key(study: Study, condition: dict[str, Any]) -> tuple[Any, ...]:
    """Conditions with equal keys are drawn and fitted as one batch (:func:`compute_group`).

    The key is what one :func:`gfgsm.fit_batch` call must share: the family (with its
    dispersion), ``n`` and ``p``.  The methods are the study's, common to every condition.
    """
    dgp = study.make_dgp(condition)
    return (repr(dgp.family), int(condition["n"]), dgp.design.p)


def fusion_groups(study: Study, preset: str, fuse: bool = True) -> list[list[int]]:
    """The conditions of a preset grouped by :func:`fusion_key`, in order of first appearance
    (each condition alone when ``fuse`` is false or for a study with a compute hook)."""
    conds = study.conditions(preset)
    if study.compute is not None or not fuse:
        return [[c] for c in range(len(conds))]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for c, cond in enumerate(conds):
        groups.setdefault(fusion_key(study, cond), []).append(c)
    return list(groups.values())


#: The host's memory budget per batched fit.  A batched fit iterates until its slowest member
#: converges, with working arrays that leave the cache as the batch grows: at the full presets'
#: largest n, chunks sized by 64 MB ran 1.2-1.8x faster per replication than chunks sized by
#: 256 MB (noise level n = 1600: 0.072 against 0.131 s; sign neutrality n = 16000: 0.063
#: against 0.088 s; limit law n = 16000: 0.034-0.083 against 0.061-0.119 s), while at small n
#: chunks much smaller than this cost 2-4x more per replication in per-chunk overhead.
HOST_MEMORY_BUDGET = 64e6


def default_memory_budget(backend: str | None) -> float:
    """Bytes one batched fit may use: a quarter of the free device memory on CuPy; on the host
    :data:`HOST_MEMORY_BUDGET`, or less where a quarter of the available memory is less."""
    if backend == "cupy":  # pragma: no cover - no GPU in CI
        import cupy

        free, _ = cupy.cuda.Device().mem_info
        return 0.25 * float(free)
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not a POSIX host
        return HOST_MEMORY_BUDGET
    return float(min(HOST_MEMORY_BUDGET, max(16e6, 0.25 * available)))


def _auto_chunk(study: Study, preset: str, memory_budget: float, group: list[int]) -> int:
    """Replications per chunk of the fusion group ``group``: as many as ``memory_budget``
    allows for its largest condition, so that small conditions run in few large chunks and
    large ones in small chunks."""
    conds = study.conditions(preset)
    reps = study.preset(preset).reps
    if study.chunk_size is not None:
        return min(reps, study.chunk_size)
    if study.compute is not None:
        return reps
    worst = max(int(conds[c]["n"]) * (study.make_dgp(conds[c]).design.p + 2) for c in group)
    # A BIC-tuned method fits every replication once per grid point in one call, and a fused
    # group fits every condition of the group in that call too.
    fits = max(max(len(m.grid), 1) for m in study.methods)
    return max(1, min(reps, int(memory_budget // (worst * fits * len(group) * _BYTES_PER_CELL))))


def _existing_chunks(store: Any) -> dict[int, int]:
    """Per condition, the chunk size a resumed store already used (the length of its chunk
    starting at replication 0, from the markers alone: the chunks are verified once, by
    :meth:`ResultStore.is_done`): new chunks must not overlap the finished ones."""
    return {c: e - s for c, s, e in store.marked_chunks() if s == 0}


def compute_chunk(study: Study, preset: str, condition: int, start: int, stop: int,
                  backend: str | None = None) -> pd.DataFrame:
    """Tidy results of replications ``start..stop-1`` of one condition, every method.

    One row per replication x method x parameter (intercept first): the condition's factors,
    ``method``, ``rep``, ``param``, ``estimate``, ``true``, ``converged``, ``status``,
    ``n_iter``, ``kkt``, ``objective``, ``lam``.  The same rows as the condition's part of
    any :func:`compute_group` that holds it.
    """
    return compute_group(study, preset, [(condition, start, stop)], backend)[0]


def compute_group(study: Study, preset: str, members: list[tuple[int, int, int]],
                  backend: str | None = None) -> list[pd.DataFrame]:
    """The chunks ``(condition, start, stop)`` of conditions sharing a :func:`fusion_key`,
    drawn and fitted together: one :func:`gfgsm.fit_batch` call per method for all of them.

    Each condition's replications are drawn on the backend from its own key (so a chunk's
    data do not depend on its group), stacked, and fitted with each problem's own ``lam``;
    each problem's fit does not depend on the others in its batch, so the rows equal those of
    the chunks computed one by one.  Per method, the estimates and fit statistics cross to the
    host once.  Returns one frame per member, in order.
    """
    conds = study.conditions(preset)
    seeds = study.seed_indices(preset)
    if study.compute is not None:
        return [_compute_hook(study, conds[c], c, study.make_dgp(conds[c]), s, e, backend,
                              seeds[c]) for c, s, e in members]
    xp = resolve_backend(backend)
    dgps = [study.make_dgp(conds[c]) for c, _, _ in members]
    keys = {fusion_key(study, conds[c]) for c, _, _ in members}
    if len(keys) != 1:
        raise ValueError(f"compute_group: members {members} do not share a fusion key ({keys})")
    n = int(conds[members[0][0]]["n"])
    Xs, ys = [], []
    for (c, s, e), dgp in zip(members, dgps, strict=True):
        stream = Stream.create(condition_key(study.seed, seeds[c]),
                               np.arange(s, e, dtype=np.uint64), xp)
        X, y = dgp.draw_stream(n, stream)
        Xs.append(X)
        ys.append(y)
    X = Xs[0] if len(Xs) == 1 else xp.concat(Xs, axis=0)
    y = ys[0] if len(ys) == 1 else xp.concat(ys, axis=0)
    sizes = [e - s for _, s, e in members]
    bounds = np.cumsum([0, *sizes])
    family = dgps[0].family
    frames: list[list[pd.DataFrame]] = [[] for _ in members]
    for m in study.methods:
        lams = [m.lam(conds[c], dgp) for (c, _, _), dgp in zip(members, dgps, strict=True)]
        lam = np.repeat(np.asarray(lams, dtype=float), sizes)
        if m.select is None:
            fit = fit_batch(X, y, family=family, lam=lam, backend=backend, warn=False,
                            **m.fit_options())
            est, per = _host_results(fit, None)
            lam_used = lam
        else:
            est, lam_used, per = _fit_selected(X, y, family, m, lam, backend)
        for k, ((c, s, e), dgp) in enumerate(zip(members, dgps, strict=True)):
            sl = slice(int(bounds[k]), int(bounds[k + 1]))
            theta0 = np.asarray(dgp.theta0, dtype=float)
            q = theta0.size
            params = np.array(["intercept"] + [f"beta{j}" for j in range(1, q)], dtype=object)
            R = e - s
            frames[k].append(pd.DataFrame({
                "condition": np.full(R * q, c, dtype=np.int64),
                **{f: np.repeat(np.asarray([_scalar(v)], dtype=object), R * q)
                   for f, v in conds[c].items()},
                **param_rows(m.name, np.arange(s, e), params, est[sl], theta0,
                             {**{f: v[sl] for f, v in per.items()},
                              "lam": lam_used[sl].astype(float)}),
            }))
    out = []
    for (c, _, _), parts in zip(members, frames, strict=True):
        df = pd.concat(parts, ignore_index=True)
        for f, v in conds[c].items():
            df[f] = df[f].astype(_dtype(_scalar(v)))
        for f in ("method", "param", "status"):
            df[f] = df[f].astype(str)
        out.append(df)
    return out


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
                  stop: int, backend: str | None, seed_index: int) -> pd.DataFrame:
    """The study's own chunk computation, with the condition's index and factors prepended;
    its random numbers come from ``seed_index`` (:meth:`Study.seed_indices`)."""
    reps = np.arange(start, stop, dtype=np.int64)
    if study.compute_draws == "stream":
        draws: Any = Stream.create(condition_key(study.seed, seed_index),
                                   reps.astype(np.uint64), resolve_backend(backend))
    else:
        draws = [replication_seed(study.seed, seed_index, int(r)) for r in reps]
    out = study.compute(study, cond, dgp, reps, draws, backend)
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


def _host_results(fit: Any, idx: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The estimates ``(R, p + 1)`` (intercept first) and per-replication fit statistics of a
    :class:`gfgsm.batch.BatchResult`, rows ``idx`` (all when ``None``), moved to the host in
    one transfer."""
    xp = get_namespace(fit.coef)
    num = xp.concat([xp.reshape(fit.intercept, (-1, 1)), fit.coef,
                     xp.stack([xp.astype(fit.converged, xp.float64),
                               xp.astype(fit.n_iter, xp.float64), fit.kkt, fit.objective],
                              axis=1)], axis=1)
    if idx is not None:
        num = xp.take(num, xp.asarray(idx), axis=0)
    host = to_numpy(num)
    q = int(fit.coef.shape[1]) + 1
    status = np.asarray(fit.status, dtype=object)
    return np.ascontiguousarray(host[:, :q]), {
        "converged": host[:, q] != 0.0,
        "status": status if idx is None else status[idx],
        "n_iter": host[:, q + 1].astype(np.int64),
        "kkt": host[:, q + 2],
        "objective": host[:, q + 3],
    }


def _fit_selected(X: Any, y: Any, family: Any, m: Any, lam: np.ndarray, backend: str | None
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Fit every replication on the grid ``lam_r * g`` at once and keep the smallest BIC
    (:func:`gfgsm.tuning.bic_select`); only the selected fits cross to the host.

    BIC uses the likelihood, not the method's objective, so every method is tuned by the same
    rule.  Non-converged grid points are never selected (a replication whose grid has no
    converged point is reported non-converged at its first grid point).
    """
    fit, idx, lams = bic_select(X, y, family, lam, m.grid, backend, **m.fit_options())
    est, per = _host_results(fit, idx)
    return est, lams[idx], per


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
    memory_budget: float | None = None,
    fuse: bool | None = None,
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
    memory_budget : bytes one batched fit of a fused group may use (default:
        :func:`default_memory_budget` of the backend).
    fuse : draw and fit conditions that share the family, ``n`` and ``p`` as one batch
        (:func:`fusion_groups`; results are the same either way).  Default: on CuPy only, where
        larger batches use the device better; on the host the memory budget already sets the
        batch size, and coarser tasks balance worse across worker processes (measured in
        benchmarks/README.md).
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
    if memory_budget is None:
        memory_budget = default_memory_budget(backend)
    if fuse is None:
        fuse = backend == "cupy"
    definition = study.definition(preset)
    manifest = {
        "study_hash": study.hash(preset),
        "study": definition,
        "preset": preset,
        "seed": study.seed,
        "versions": _versions(),
        "backend": backend or "numpy",
        "generator": GENERATOR if (study.compute is None or study.compute_draws == "stream")
        else HOOK_GENERATOR,
    }
    store = ResultStore.create_or_open(out, manifest)
    conds = definition["conditions"]
    # One task per fusion group and replication range: the group's unfinished chunks.
    tasks = []
    sizes: dict[int, int] = {}
    existing = _existing_chunks(store) if chunk_size is None else {}
    for group in fusion_groups(study, preset, fuse):
        kept = [existing[c] for c in group if c in existing]
        cs = chunk_size or (max(kept) if kept else _auto_chunk(study, preset, memory_budget,
                                                                group))
        sizes.update(dict.fromkeys(group, cs))
        for s, e in chunk_bounds(reps, cs):
            members = [(c, s, e) for c in group if not store.is_done(c, s, e)]
            if members:
                tasks.append((study, preset, members, backend))
    total = sum(e - s for t in tasks for _, s, e in t[2])
    bar = _progress(total, len(conds), progress)
    t0 = time.perf_counter()
    try:
        for task, result in run_tasks(_timed_group, tasks, executor=executor, workers=workers,
                                      scheduler=scheduler):
            members = task[2]
            frames, seconds = result
            size = sum(e - s for _, s, e in members)
            for (c, s, e), frame in zip(members, frames, strict=True):
                # The group's time, shared in proportion to the replications.
                store.write_chunk(c, s, e, frame, seconds=seconds * (e - s) / size)
                if bar is not None:
                    bar.update(e - s)
                    bar.set_postfix_str(f"condition {c + 1}/{len(conds)}")
    finally:
        if bar is not None:
            bar.close()
    uniform = set(sizes.values())
    store.record_run({"executor": executor, "workers": workers,
                      "chunk_size": uniform.pop() if len(uniform) == 1 else "per condition",
                      "chunk_sizes": [sizes[c] for c in sorted(sizes)], "fuse": fuse,
                      "chunks_computed": len(tasks), "seconds": time.perf_counter() - t0,
                      "backend": backend or "numpy"})
    return out


def _timed_group(study: Study, preset: str, members: list[tuple[int, int, int]],
                 backend: str | None) -> tuple[list[pd.DataFrame], float]:
    t = time.perf_counter()
    frames = compute_group(study, preset, members, backend)
    return frames, time.perf_counter() - t


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
