"""Batched fits against the loop a user would otherwise write (core issue benchmark).

R = 1000 binomial problems, n = 500, p = 10:
  * l1 PL:      ``gfgsm.fit_batch(method="pl")`` vs a loop over scikit-learn's
                ``LogisticRegression`` (pure l1, C = 1/(n lam)); liblinear (fast, but it
                penalizes the intercept, so it is run with ``intercept_scaling=1e3``) and saga
                (unpenalized intercept);
  * l1 G-FGSM:  ``gfgsm.fit_batch(method="gfgsm")`` vs a loop over scipy L-BFGS-B on Goodfellow's
                closed form ``mean softplus(-(2y - 1) eta + lam ||beta||_1)`` in split variables.

Prints fits per second, the speed ratio against the fastest loop, and the largest coefficient
difference (accuracy is part of the comparison).  Run: ``python benchmarks/bench_fit_batch.py``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

import gfgsm


def make_data(R: int, n: int, p: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    beta = np.zeros(p)
    beta[:4] = [1.0, -0.8, 0.5, 0.3]
    X = rng.standard_normal((R, n, p))
    eta = 0.2 + X @ beta
    y = (rng.random((R, n)) < expit(eta)).astype(float)
    return X, y


def sklearn_loop(X, y, lam, solver):
    n = X.shape[1]
    out = np.empty((X.shape[0], X.shape[2] + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, FutureWarning, UserWarning))
        for r in range(X.shape[0]):
            kw = {"intercept_scaling": 1e3} if solver == "liblinear" else {}
            m = LogisticRegression(l1_ratio=1.0, C=1.0 / (n * lam), solver=solver, tol=1e-8,
                                   max_iter=10_000, **kw)
            m.fit(X[r], y[r])
            out[r] = np.r_[m.intercept_, m.coef_[0]]
    return out


def lbfgs_gfgsm(Xr, yr, lam):
    n, p = Xr.shape
    s = 2 * yr - 1

    def f(z):
        a, bp, bm = z[0], z[1 : p + 1], z[p + 1 :]
        m = -s * (a + Xr @ (bp - bm)) + lam * (bp.sum() + bm.sum())
        val = np.logaddexp(0, m).mean()
        w = expit(m) / n
        ga = -(w * s).sum()
        gb = -(Xr.T @ (w * s))
        tot = w.sum() * lam
        return val, np.r_[ga, gb + tot, -gb + tot]

    bounds = [(None, None)] + [(0, None)] * (2 * p)
    res = minimize(f, np.zeros(2 * p + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10_000})
    z = res.x
    return np.r_[z[0], z[1 : p + 1] - z[p + 1 :]]


def scipy_loop(X, y, lam):
    return np.array([lbfgs_gfgsm(X[r], y[r], lam) for r in range(X.shape[0])])


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--R", type=int, default=1000)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--p", type=int, default=10)
    ap.add_argument("--lam", type=float, default=0.02)
    ap.add_argument("--loop-R", type=int, default=None,
                    help="time the loops on fewer problems and scale (default: all R)")
    args = ap.parse_args()
    X, y = make_data(args.R, args.n, args.p)
    R, lam = args.R, args.lam
    Rl = args.loop_R or R

    rows = []
    for method in ("pl", "gfgsm"):
        gfgsm.fit_batch(X[:5], y[:5], family="binomial", method=method, lam=lam)  # warm-up
        fit, t_b = timed(lambda X, y, m=method: gfgsm.fit_batch(X, y, family="binomial", method=m,
                                                                lam=lam), X, y)
        ours = np.c_[fit.intercept, fit.coef]
        loops = (
            [("sklearn liblinear", lambda: sklearn_loop(X[:Rl], y[:Rl], lam, "liblinear")),
             ("sklearn saga", lambda: sklearn_loop(X[:Rl], y[:Rl], lam, "saga"))]
            if method == "pl"
            else [("scipy L-BFGS-B", lambda: scipy_loop(X[:Rl], y[:Rl], lam))]
        )
        for name, fn in loops:
            ref, t_l = timed(fn)
            t_l = t_l * R / Rl
            diff = np.abs(ref - ours[:Rl]).max()
            rows.append((method, name, R / t_b, R / t_l, t_l / t_b, diff,
                         float(np.max(fit.kkt)), float(np.mean(fit.converged))))

    print(f"R = {R}, n = {args.n}, p = {args.p}, binomial, lam = {lam}")
    print(f"{'method':7s} {'loop':18s} {'batched fits/s':>15s} {'loop fits/s':>12s} "
          f"{'ratio':>7s} {'max |coef diff|':>16s} {'max kkt':>9s} {'conv':>5s}")
    for m, name, fb, fl, ratio, diff, kkt, conv in rows:
        print(f"{m:7s} {name:18s} {fb:15.0f} {fl:12.0f} {ratio:7.1f} {diff:16.2e} {kkt:9.1e} "
              f"{conv:5.2f}")


if __name__ == "__main__":
    main()
