"""Batched network training against the loop over the same networks (network issue benchmark).

R = 64 binomial networks with one hidden layer of 32 relu units, each on its own data set
(n = 2000, d = 20, a logistic model in the first five features), Adam on mini-batches of 200 for a
fixed number of epochs (``tol=0``, so no network stops early and every run does the same work):

  * ``gfgsm.nn.train_networks`` on all R networks at once (``X`` of shape (R, n, d));
  * a Python loop calling the *same* function on one network at a time, each with the seed it
    has in the batch (``random_state=fit.seeds[r:r+1]``), so the loop trains exactly the same
    networks (the largest weight difference is printed; it is 0);
  * for the clean baseline, a loop over scikit-learn's ``MLPClassifier`` with the same settings
    (``alpha=0``, ``batch_size=200``, ``tol=0``, fixed epochs).

Rows: clean training; sign-FGSM adversarial training (``clean_weight=0.5``, ``lam=0.1``); and
FGSM with random start with its PGD robustness monitor (10 steps on 512 samples per epoch).
Networks per second (best of ``--repeats`` runs, the machine being shared) for the automatic
chunking of ``train_networks`` (on the CPU it trains the networks in chunks whose working arrays
stay in cache, here 10 at a time) and for one batch of all R (``chunk_size=R``), and the ratios
of the automatic batching to the loops.  Run: ``python benchmarks/bench_nn.py``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from gfgsm._backend import resolve_backend
from gfgsm.nn import train_networks
from gfgsm.nn.training import _auto_chunk


def make_data(R: int, n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    beta = np.zeros(d)
    beta[:5] = [1.0, -0.8, 0.6, 0.5, -0.4]
    X = rng.standard_normal((R, n, d))
    y = (rng.random((R, n)) < expit(0.2 + X @ beta)).astype(float)
    return X, y


def best_time(fn, repeats: int) -> tuple[float, object]:
    """The smallest wall time of ``repeats`` runs (the machine is shared) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def sklearn_loop(X: np.ndarray, y: np.ndarray, epochs: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for r in range(X.shape[0]):
            MLPClassifier(hidden_layer_sizes=(32,), solver="adam", alpha=0.0, batch_size=200,
                          learning_rate_init=1e-3, max_iter=epochs, tol=0.0,
                          n_iter_no_change=epochs + 1, random_state=r).fit(X[r], y[r])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--R", type=int, default=64)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    R, E, k = args.R, args.epochs, args.repeats
    X, y = make_data(R, args.n, args.d)
    common = dict(hidden=(32,), activation="relu", family="binomial", solver="adam",
                  batch_size=200, learning_rate=1e-3, max_iter=E, tol=0.0,
                  n_iter_no_change=E + 1, warn=False)
    rows = [
        ("clean", dict(perturbation="none", monitor_robustness=False)),
        ("sign FGSM", dict(perturbation="adversarial", scheme="sign", lam=0.1, clean_weight=0.5,
                           monitor_robustness=False)),
        ("FGSM-RS + PGD monitor", dict(perturbation="fgsm_rs", lam=0.1, clean_weight=0.0,
                                       monitor_robustness=True)),
    ]
    chunk = _auto_chunk(resolve_backend("numpy"), 2 * 200, 32)
    print(f"R = {R} networks, hidden (32,), n = {args.n}, d = {args.d}, Adam, batch 200, "
          f"{E} epochs; best of {k} runs; automatic chunks of {chunk} networks")
    print(f"| training | batched (chunks of {chunk}) | batched (one batch of {R}) | loop of "
          "single networks | ratio | sklearn MLPClassifier loop | ratio | max weight diff |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, opts in rows:
        tb, batch = best_time(lambda o=opts: train_networks(X, y, random_state=0, **common, **o),
                              k)
        t1, _ = best_time(lambda o=opts: train_networks(X, y, random_state=0, chunk_size=R,
                                                        **common, **o), k)

        def loop(o=opts, b=batch):
            return [train_networks(X[r], y[r], random_state=b.seeds[r : r + 1], **common, **o)
                    for r in range(R)]

        tl, ones = best_time(loop, k)
        diff = max(
            float(np.max(np.abs(np.asarray(a)[r] - np.asarray(b)[0])))
            for r, one in enumerate(ones)
            for a, b in zip(batch.params.arrays(), one.params.arrays(), strict=True)
        )
        if name == "clean":
            ts, _ = best_time(lambda: sklearn_loop(X, y, E), k)
            sk = f"{R / ts:.1f} | {ts / tb:.1f}"
        else:
            sk = "- | -"
        print(f"| {name} | {R / tb:.1f} | {R / t1:.1f} | {R / tl:.1f} | {tl / tb:.1f} | {sk} "
              f"| {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
