"""Where chunks are computed: in process, on a process pool, or on a Dask cluster.

Every executor runs the same pure function on the same (condition, replication range) tasks and
hands each result back to the one process that writes the store, as soon as it is done; the
numbers cannot depend on the executor because each replication's data and fit depend only on
its own seed (:mod:`gfgsm.mc.seeds`) and each problem is solved on its own inside a batch.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["EXECUTORS", "run_tasks"]

EXECUTORS = ("local", "processes", "dask")
#: Seconds to wait for a Dask scheduler before giving up with a clear error.
SCHEDULER_TIMEOUT = 10


def run_tasks(
    fn: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    *,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Yield ``(task, fn(*task))`` for every task, in completion order."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; expected one of {EXECUTORS}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if scheduler is not None and executor != "dask":
        raise ValueError("--scheduler applies to --executor dask only")
    if executor == "local":
        # The same single BLAS thread as every worker process: multithreaded BLAS sums in
        # another order, and results must be the same bits on every executor (README).
        for task in tasks:
            with _blas_threads(1):
                result = fn(*task)
            yield task, result
        return
    if executor == "processes":
        with cf.ProcessPoolExecutor(max_workers=workers or 2,
                                    initializer=_one_blas_thread) as pool:
            futures = {pool.submit(fn, *task): task for task in tasks}
            for fut in cf.as_completed(futures):
                yield futures[fut], fut.result()
        return
    yield from _dask(fn, tasks, workers, scheduler)


#: Each worker process computes with one BLAS thread: the workers already use every core, and
#: BLAS threads on top of them would oversubscribe it (results do not depend on this).
_ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _blas_threads(n: int) -> Any:
    """A context that limits the BLAS and OpenMP pools to ``n`` threads (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return contextlib.nullcontext()
    return threadpool_limits(n)


def _one_blas_thread() -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return
    threadpool_limits(1)


def _dask(fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], workers: int | None,
          scheduler: str | None) -> Iterator[tuple[tuple[Any, ...], Any]]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        raise ImportError("executor='dask' needs dask.distributed: pip install "
                          "'dask[distributed]'") from exc
    cluster = None
    try:
        if scheduler is None:
            # One single-threaded worker process per core: the numerics are vectorised, so
            # threads inside a worker would only contend for the GIL.
            cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env=_ONE_THREAD_ENV)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(
                    f"no Dask scheduler answered at {scheduler!r} within "
                    f"{SCHEDULER_TIMEOUT} s ({type(exc).__name__}: {exc})"
                ) from exc
        try:
            futures = {client.submit(fn, *task, pure=False): task for task in tasks}
            for fut in as_completed(list(futures)):
                yield futures[fut], fut.result()
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
