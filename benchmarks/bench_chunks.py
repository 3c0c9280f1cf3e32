"""Replications per batched fit: the engine's chunk size and the bootstrap's refit blocks.

A batched fit iterates until its slowest member converges, and its working arrays leave the
cache as the batch grows, so on CPU cores a smaller batch can be faster per replication; at
small n, on the other hand, small chunks pay the per-chunk overhead (drawing, the store's
Parquet writes) many times.  This script measures both sides on conditions of the full presets
(the numbers behind ``gfgsm.mc.runner.HOST_MEMORY_BUDGET`` and ``gfgsm.intervals._BLOCK_CELLS``):

* seconds per replication of :func:`gfgsm.mc.runner.compute_chunk` over the same replications
  cut into chunks of several sizes, for large-n conditions (noise level n = 1600, sign
  neutrality n = 16000, limit law n = 16000, consistency n = 6400 and 25600, sparsity n = 800)
  and two small-n ones (consistency n = 100);
* the coverage study's bootstrap (25 replications, B = 39 refits each) with blocks of one, a
  few, and 25 problems per :func:`gfgsm.fit_batch` call, and the largest difference of the
  intervals between blockings (they must agree to rounding).

Run: ``python benchmarks/bench_chunks.py`` (about 5 minutes on one core; run it on an idle
machine, the numbers are timings).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import simulations.consistency as cs
import simulations.coverage as cv
import simulations.limit_law as ll
import simulations.noise_level as nl
import simulations.sign_neutrality as sn
import simulations.sparsity as sp
from gfgsm import intervals
from gfgsm.mc.runner import compute_chunk

#: (study, condition index of its full preset, chunk sizes, replications timed)
CASES = [
    (nl.STUDY, 7, (166, 40, 10), 160),
    (sn.STUDY, 44, (41, 10), 40),
    (ll.STUDY, 11, (32, 8, 2), 32),
    (ll.STUDY, 17, (32, 8, 2), 32),
    (cs.STUDY, 15, (32, 8, 2), 32),
    (cs.STUDY, 8, (32, 8, 2), 32),
    (sp.STUDY, 0, (20, 5), 20),
    (cs.STUDY, 0, (14, 3), 42),
    (cs.STUDY, 16, (14, 3), 42),
]


def per_rep(study, c: int, k: int, total: int) -> float:
    t = time.perf_counter()
    for s in range(0, total, k):
        compute_chunk(study, "full", c, s, min(total, s + k))
    return (time.perf_counter() - t) / total


def main() -> None:
    warnings.simplefilter("ignore")
    print("chunk size (replications per batched fit): seconds per replication")
    for study, c, sizes, total in CASES:
        cond = study.conditions("full")[c]
        compute_chunk(study, "full", c, total, total + 1)  # warm caches (limit laws, D, phi)
        times = ", ".join(f"{k}: {per_rep(study, c, k, total):.4f}" for k in sizes)
        print(f"  {study.name} {cond}: {times}", flush=True)
    print("coverage bootstrap, 25 replications x 39 refits: seconds by refit-block cells")
    for c in (8, 22, 34):  # binomial, poisson, gaussian at n = 4000
        cond = cv.STUDY.conditions("full")[c]
        ref, row = None, []
        for cells in (20_000_000, 2_000_000, 800_000):
            intervals._BLOCK_CELLS["host"] = cells
            t = time.perf_counter()
            df = compute_chunk(cv.STUDY, "full", c, 0, 25)
            dt = time.perf_counter() - t
            ci = df[df.interval == "bootstrap"][["ci_lower", "ci_upper"]].to_numpy()
            diff = 0.0 if ref is None else float(np.nanmax(np.abs(ci - ref)))
            ref = ci if ref is None else ref
            row.append(f"{cells}: {dt:.1f} s (max |diff| {diff:.1e})")
        print(f"  {cond['family']} n={cond['n']} h={cond['h']}: " + ", ".join(row), flush=True)


if __name__ == "__main__":
    main()
