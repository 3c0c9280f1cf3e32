"""The engine's throughput and overhead (Monte Carlo engine issue).

One binomial G-FGSM consistency condition: n = 1000, p = 10, R = 2000 replications,
``lam = lam0 / sqrt(n)``.  Reports replications per second for

* the whole engine (sampling, batched fitting, atomic Parquet store), ``local`` and
  ``processes`` executors (2 workers);
* bare ``fit_batch`` on the same replications (data already drawn), and the engine's overhead
  over it, split into sampling, fitting and storing;
* the same work as a Python loop over single fits (draw, scipy L-BFGS-B on Goodfellow's closed
  form in split variables, collect rows), timed on ``--loop-reps`` replications and scaled.

Run: ``python benchmarks/bench_engine.py``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import gfgsm
from gfgsm.mc import LamRule, MethodSpec, Preset, Study, run
from gfgsm.mc.runner import compute_chunk
from gfgsm.mc.seeds import condition_key, condition_seed
from gfgsm.rng import Stream

sys.path.insert(0, str(Path(__file__).parent))
from bench_fit_batch import lbfgs_gfgsm

BETA = [1.0, -0.8, 0.6, -0.4, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0]


def make_dgp(c):
    return gfgsm.DGP("binomial", gfgsm.GaussianDesign(10, rho=0.5), coef=BETA, intercept=0.2)


def make_study(reps: int) -> Study:
    return Study(
        name="bench_consistency",
        aims="engine benchmark",
        factors={"n": [1000], "lam0": [1.0]},
        make_dgp=make_dgp,
        methods=(MethodSpec("G-FGSM l1", "gfgsm", lam=LamRule()),),
        presets={"quick": Preset(reps=reps), "full": Preset(reps=reps)},
    )


def loop_study(study: Study, reps: int) -> pd.DataFrame:
    """What a user would write: for each replication draw, fit, append rows."""
    cond = study.conditions("quick")[0]
    dgp = make_dgp(cond)
    n = cond["n"]
    lam = cond["lam0"] / math.sqrt(n)
    rows = []
    key = condition_key(study.seed, 0)
    xp = gfgsm._backend.resolve_backend("numpy")
    for r in range(reps):
        X, y = dgp.draw_stream(n, Stream.create(key, [r], xp))
        X, y = X[0], y[0]
        est = lbfgs_gfgsm(X, y, lam)
        for j, (e, t) in enumerate(zip(est, dgp.theta0, strict=True)):
            rows.append({"rep": r, "param": j, "estimate": e, "true": t})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--loop-reps", type=int, default=200)
    args = ap.parse_args()
    R = args.reps
    study = make_study(R)
    tmp = Path(tempfile.mkdtemp())
    try:
        compute_chunk(make_study(4), "quick", 0, 0, 4)  # warm-up (imports, caches)
        timings = {}
        for executor, workers in (("local", None), ("processes", 2)):
            out = tmp / f"{executor}"
            t0 = time.perf_counter()
            run(study, "quick", out, executor=executor, workers=workers, progress=False)
            timings[executor] = time.perf_counter() - t0
        store = gfgsm.mc.ResultStore.open(tmp / "local")
        chunk_seconds = store.summary_timings()["seconds"]

        # The same replications, drawn first, then one bare fit_batch per memory chunk.
        cond = study.conditions("quick")[0]
        dgp = make_dgp(cond)
        n = cond["n"]
        t0 = time.perf_counter()
        X, y = dgp.sample(n, seed=condition_seed(study.seed, 0), R=R)
        t_sample = time.perf_counter() - t0
        # Same chunks as the engine's (its memory budget decides their size).
        cs = max(r["chunk_size"] for r in store.runs()) if store.runs() else R
        t0 = time.perf_counter()
        for s0 in range(0, R, cs):
            fit = gfgsm.fit_batch(X[s0:s0 + cs], y[s0:s0 + cs], family="binomial",
                                  method="gfgsm", lam=1.0 / math.sqrt(n))
            assert bool(np.all(np.asarray(fit.converged)))
        t_fit = time.perf_counter() - t0

        t0 = time.perf_counter()
        loop_study(study, args.loop_reps)
        t_loop = (time.perf_counter() - t0) * R / args.loop_reps
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"binomial G-FGSM, n = {n}, p = 10, R = {R}, lam = 1/sqrt(n)")
    print(f"{'':34s} {'seconds':>9s} {'reps/s':>9s}")
    for name, t in (("engine, local executor", timings["local"]),
                    ("engine, processes (2 workers)", timings["processes"]),
                    ("bare fit_batch (data drawn)", t_fit),
                    ("drawing the data (counter-based)", t_sample),
                    (f"loop of single fits ({args.loop_reps} timed)", t_loop)):
        print(f"{name:34s} {t:9.2f} {R / t:9.0f}")
    over = timings["local"] / t_fit - 1
    book = (timings["local"] - t_fit - t_sample) / t_fit
    print(f"chunk size {cs}; engine (local) over bare fit_batch on the same chunks: {over:+.1%}"
          f" = drawing the data {t_sample / t_fit:+.1%} + storing and bookkeeping {book:+.1%}"
          f" (chunk compute {chunk_seconds:.2f} s)")
    best = min(timings.values())
    print(f"study throughput vs the single-fit loop: {t_loop / best:.1f}x")


if __name__ == "__main__":
    main()
