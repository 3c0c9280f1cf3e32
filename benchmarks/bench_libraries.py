"""``fit_batch`` (l1 PL) against loops over the libraries a user would pick instead.

The problem, for each of R data sets (the penalized likelihood ``R_n``, ``gfgsm.objective`` with
``method="pl"``, with an unpenalized intercept ``a``):

    minimise  (1/n) sum_i l(y_i, a + x_i' beta) + lam ||beta||_1,
    l(y, eta) = b(eta) - y eta   (logistic: log(1 + e^eta) - y eta;  poisson: e^eta - y eta),

i.e. the mean negative log-likelihood, or equivalently ``deviance / (2 n)`` up to a constant.
How ``lam`` maps to each library's regularization parameter:

* skglm 0.5: ``Logistic`` datafit (labels -1/1, mean ``log(1 + exp(-y eta))``, the same mean
  loss) and ``Poisson`` datafit (mean ``exp(eta) - y eta``), both on the mean scale, with
  ``L1(alpha)`` = ``alpha ||w||_1``: ``alpha = lam``.  Its solvers fit an *unpenalized*
  intercept (``fit_intercept=True``), so no column of ones is needed.  ``AndersonCD`` (the
  default of ``GeneralizedLinearEstimator``) and ``ProxNewton`` (what
  ``SparseLogisticRegression`` uses) are both timed; ``AndersonCD`` rejects the Poisson datafit
  (it has no ``get_lipschitz``).  ``tol`` bounds ``max(dist(-grad, subdiff), |grad of
  intercept|)``, the same KKT residual as ``fit_batch``'s; ``max_iter=1000``.
* glum 3.4: ``GeneralizedLinearRegressor`` minimises ``deviance / (2 sum(s)) + alpha l1_ratio
  ||w||_1`` with unpenalized intercept; with unit weights ``deviance / (2 n)`` is the mean
  negative log-likelihood plus a constant, so ``alpha = lam``, ``l1_ratio = 1``.  Solver
  ``irls-cd`` (its default with an l1 penalty), ``gradient_tol=tol`` (bounds the sum of the
  minimum-norm subgradient's absolute entries), ``max_iter=1000``.
* scikit-learn 1.9 (binomial only): ``LogisticRegression(l1_ratio=1, C=1/(n lam),
  solver="saga")`` minimises ``||w||_1 + C sum_i loss_i`` (unpenalized intercept); dividing by
  ``C n`` gives the problem above.  ``l1_ratio=1`` is the pure l1 penalty (``penalty="l1"`` is
  deprecated since 1.8).  ``tol=tol`` (saga's own criterion: the largest coefficient change
  relative to the largest coefficient), ``max_iter=100000``.  There is no l1 Poisson in
  scikit-learn (``PoissonRegressor`` is l2 only), so it is skipped for poisson.

``gfgsm.fit_batch(method="pl", penalty="l1", tol=tol)`` (its KKT tolerance; its default is
1e-9).  ``--tol`` sets the tolerance of every solver at once (default 1e-10).

For each library the script reports fits/s of the loop and of ``fit_batch`` (best of
``--repeats`` warm runs each, the same R problems, every BLAS and OpenMP pool limited to
``--threads`` threads, default 1), their ratio, and an equal-accuracy check:
the largest absolute coefficient difference (intercept included) to ``fit_batch``, the relative
objective difference ``(R_n(lib) - R_n(fit_batch)) / |R_n(fit_batch)|`` (both evaluated by
``gfgsm.objective``; its min and max over the problems, negative = the library found a lower
objective), the largest KKT residual of the library's solutions (computed here the same way as
``fit_batch``'s), the number of loop fits that raised a convergence warning, and
``fit_batch``'s largest KKT residual and converged share.

Run: ``python benchmarks/bench_libraries.py --family binomial`` (or ``--family poisson``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from threadpoolctl import threadpool_limits

import gfgsm

Loop = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, int]]

TRUE_SLOPES = {"binomial": [1.0, -0.8, 0.5, 0.3], "poisson": [0.5, -0.4, 0.25, 0.15]}
TRUE_INTERCEPT = {"binomial": 0.2, "poisson": 0.5}


def make_data(family: str, R: int, n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """R problems with one standard normal design each: ``X`` (R, n, p) and ``y`` (R, n).

    Four nonzero slopes (``TRUE_SLOPES``, the rest zero) and intercept ``TRUE_INTERCEPT``;
    ``y`` is Bernoulli(sigmoid(eta)) or Poisson(exp(eta)), drawn from ``default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    beta = np.zeros(p)
    k = min(p, 4)
    beta[:k] = TRUE_SLOPES[family][:k]
    X = rng.standard_normal((R, n, p))
    eta = TRUE_INTERCEPT[family] + X @ beta
    if family == "binomial":
        y = (rng.random((R, n)) < expit(eta)).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return X, y


def _count_convergence_warnings(caught: list[warnings.WarningMessage]) -> int:
    """How many caught warnings are convergence warnings (by class name, library-agnostic)."""
    return sum("Convergence" in type(w.message).__name__ or "converge" in str(w.message).lower()
               for w in caught)


def _fit_each(X: np.ndarray, y: np.ndarray, fit_one: Callable[[np.ndarray, np.ndarray], Any]
              ) -> tuple[np.ndarray, int]:
    """``fit_one(X_r, y_r) -> (intercept, coef)`` for every problem, counting the problems
    whose fit raised a convergence warning; ``((R, p + 1) [intercept, coef], #warned)``."""
    out = np.empty((X.shape[0], X.shape[2] + 1))
    warned = 0
    for r in range(X.shape[0]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            intercept, coef = fit_one(X[r], y[r])
        warned += _count_convergence_warnings(caught) > 0
        out[r, 0] = np.ravel(intercept)[0]
        out[r, 1:] = np.ravel(coef)
    return out, warned


def skglm_loop(solver_name: str, family: str, tol: float) -> Loop:
    """A loop over ``skglm.GeneralizedLinearEstimator(datafit, L1(lam), solver)``.

    Returns a function ``(X, y, lam) -> ((R, p + 1) [intercept, coef], #warned fits)``.
    """
    from skglm import GeneralizedLinearEstimator
    from skglm.datafits import Logistic, Poisson
    from skglm.penalties import L1
    from skglm.solvers import AndersonCD, ProxNewton

    solver_cls = {"AndersonCD": AndersonCD, "ProxNewton": ProxNewton}[solver_name]
    datafit_cls = Logistic if family == "binomial" else Poisson

    def loop(X: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, int]:
        def fit_one(Xr: np.ndarray, yr: np.ndarray) -> tuple[Any, Any]:
            m = GeneralizedLinearEstimator(
                datafit_cls(), L1(lam), solver_cls(tol=tol, max_iter=1000, fit_intercept=True))
            # skglm's coordinate updates read columns: Fortran order is its fast layout.
            m.fit(np.asfortranarray(Xr), yr)
            return m.intercept_, m.coef_

        return _fit_each(X, y, fit_one)

    return loop


def glum_loop(family: str, tol: float) -> Loop:
    """A loop over ``glum.GeneralizedLinearRegressor(alpha=lam, l1_ratio=1)`` (irls-cd).

    Returns a function ``(X, y, lam) -> ((R, p + 1) [intercept, coef], #warned fits)``.
    """
    from glum import GeneralizedLinearRegressor

    def loop(X: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, int]:
        def fit_one(Xr: np.ndarray, yr: np.ndarray) -> tuple[Any, Any]:
            m = GeneralizedLinearRegressor(family=family, alpha=lam, l1_ratio=1.0,
                                           fit_intercept=True, gradient_tol=tol, max_iter=1000)
            m.fit(Xr, yr)
            return m.intercept_, m.coef_

        return _fit_each(X, y, fit_one)

    return loop


def sklearn_saga_loop(tol: float) -> Loop:
    """A loop over ``sklearn LogisticRegression(l1_ratio=1, C=1/(n lam), solver="saga")``.

    Returns a function ``(X, y, lam) -> ((R, p + 1) [intercept, coef], #warned fits)``.
    """
    from sklearn.linear_model import LogisticRegression

    def loop(X: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, int]:
        n = X.shape[1]

        def fit_one(Xr: np.ndarray, yr: np.ndarray) -> tuple[Any, Any]:
            m = LogisticRegression(l1_ratio=1.0, C=1.0 / (n * lam), solver="saga", tol=tol,
                                   max_iter=100_000)
            m.fit(Xr, yr)
            return m.intercept_, m.coef_

        return _fit_each(X, y, fit_one)

    return loop


@dataclass
class Row:
    """One line of the table: a library's loop against ``fit_batch`` on the same problems."""

    name: str
    options: str
    note: str = ""  # non-empty: the library was not run (not installed / not applicable)
    loop_fits_s: float = float("nan")
    batch_fits_s: float = float("nan")
    max_coef_diff: float = float("nan")
    rel_obj_min: float = float("nan")
    rel_obj_max: float = float("nan")
    loop_warned: int = 0
    loop_kkt: float = float("nan")


def candidates(family: str, tol: float) -> list[tuple[str, str, str, Callable[[], Loop] | str]]:
    """``(name, distribution, options, factory or reason not applicable)`` for ``family``."""
    rows: list[tuple[str, str, str, Callable[[], Loop] | str]] = [
        ("skglm ProxNewton", "skglm",
         "GeneralizedLinearEstimator, L1(alpha=lam), ProxNewton(tol)",
         lambda: skglm_loop("ProxNewton", family, tol)),
        ("skglm AndersonCD", "skglm",
         "GeneralizedLinearEstimator, L1(alpha=lam), AndersonCD(tol)",
         (lambda: skglm_loop("AndersonCD", family, tol)) if family == "binomial"
         else "not applicable: AndersonCD rejects the Poisson datafit (no get_lipschitz)"),
        ("glum irls-cd", "glum",
         "alpha=lam, l1_ratio=1, gradient_tol=tol",
         lambda: glum_loop(family, tol)),
        ("sklearn saga", "scikit-learn",
         "LogisticRegression(l1_ratio=1, C=1/(n lam), tol)",
         (lambda: sklearn_saga_loop(tol)) if family == "binomial"
         else "not applicable: no l1 Poisson (PoissonRegressor is l2 only)"),
    ]
    return rows


def best_time(fn: Callable[[], object], repeats: int, threads: int) -> tuple[object, float]:
    """The result of the last call of ``fn`` and the best wall time over ``repeats`` calls.

    The calls run with every BLAS and OpenMP pool limited to ``threads`` threads (``0``: the
    libraries' defaults); the limit covers the native libraries loaded so far, so ``fn`` is
    warmed up (imports done) before.
    """
    best = float("inf")
    out: object = None
    with threadpool_limits(limits=threads if threads > 0 else None):
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t0)
    return out, best


def objectives(X: np.ndarray, y: np.ndarray, theta: np.ndarray, family: str,
               lam: float) -> np.ndarray:
    """``R_n`` (mean loss + lam ||beta||_1) of each problem at ``theta = [intercept, coef]``."""
    return np.array([
        gfgsm.objective(X[r], y[r], theta[r, 1:], float(theta[r, 0]), family=family,
                        method="pl", lam=lam)
        for r in range(X.shape[0])
    ])


def kkt_residuals(X: np.ndarray, y: np.ndarray, theta: np.ndarray, family: str,
                  lam: float) -> np.ndarray:
    """Each problem's KKT residual at ``theta = [intercept, coef]`` (sup norm).

    With ``g = X~' (mu - y) / n`` the gradient of the mean loss (``X~ = [1, X]``): ``|g_0|`` for
    the intercept, ``|g_j + lam sign(b_j)|`` for a nonzero slope and ``max(|g_j| - lam, 0)`` for
    a zero slope: the sup norm of the minimum-norm subgradient, ``fit_batch``'s ``kkt``.
    """
    fam = gfgsm.get_family(family)
    eta = theta[:, :1] + np.matmul(X, theta[:, 1:, None])[..., 0]
    resid = fam.dloss(y, eta) / X.shape[1]
    g0 = resid.sum(axis=1)
    g = np.matmul(resid[:, None, :], X)[:, 0, :]
    b = theta[:, 1:]
    slope = np.where(b != 0, np.abs(g + lam * np.sign(b)), np.maximum(np.abs(g) - lam, 0.0))
    return np.maximum(np.abs(g0), slope.max(axis=1))


def version(dist: str) -> str:
    """The installed version of distribution ``dist`` (or ``"-"``)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def main() -> None:
    """Run the comparison for one family and print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", choices=("binomial", "poisson"), default="binomial")
    ap.add_argument("--R", type=int, default=200)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--p", type=int, default=10)
    ap.add_argument("--lam", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-10, help="tolerance of every solver")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS/OpenMP threads for every timed run (0: library defaults)")
    ap.add_argument("--repeats", type=int, default=3, help="timed warm runs; the best is kept")
    args = ap.parse_args()
    family, R, lam, tol = args.family, args.R, args.lam, args.tol
    X, y = make_data(family, R, args.n, args.p, args.seed)

    def batch() -> gfgsm.BatchFit:
        return gfgsm.fit_batch(X, y, family=family, method="pl", lam=lam, penalty="l1",
                               tol=tol)

    gfgsm.fit_batch(X[:5], y[:5], family=family, method="pl", lam=lam, tol=tol)  # warm-up
    fit, t_batch = best_time(batch, args.repeats, args.threads)
    assert isinstance(fit, gfgsm.BatchFit)
    ours = np.c_[np.asarray(fit.intercept), np.asarray(fit.coef)]
    F_ours = objectives(X, y, ours, family, lam)
    kkt = float(np.max(np.asarray(fit.kkt)))
    kkt_check = float(kkt_residuals(X, y, ours, family, lam).max())
    conv = float(np.mean(np.asarray(fit.converged)))

    rows: list[Row] = []
    for name, dist, options, factory in candidates(family, tol):
        row = Row(name, options)
        rows.append(row)
        if isinstance(factory, str):
            row.note = factory
            continue
        try:
            loop = factory()
        except ImportError as exc:
            row.note = f"not installed ({exc.name or dist})"
            continue
        loop(X[:2], y[:2], lam)  # warm-up: numba compilation, imports, caches
        res, t_loop = best_time(lambda loop=loop: loop(X, y, lam), args.repeats,
                                   args.threads)
        theta, warned = res  # type: ignore[misc]
        F = objectives(X, y, theta, family, lam)
        rel = (F - F_ours) / np.abs(F_ours)
        row.loop_fits_s, row.batch_fits_s = R / t_loop, R / t_batch
        row.max_coef_diff = float(np.abs(theta - ours).max())
        row.rel_obj_min, row.rel_obj_max = float(rel.min()), float(rel.max())
        row.loop_warned = warned
        row.loop_kkt = float(kkt_residuals(X, y, theta, family, lam).max())

    libs = ", ".join(f"{d} {version(d)}" for d in ("skglm", "glum", "scikit-learn", "numpy"))
    threads = args.threads or "library defaults"
    print(f"{family}, l1 PL: R = {R}, n = {args.n}, p = {args.p}, lam = {lam}, seed = "
          f"{args.seed}, tol = {tol:g}, best of {args.repeats}, threads = {threads}; {libs}")
    print(f"fit_batch: {R / t_batch:.0f} fits/s, max KKT residual {kkt:.1e}, converged "
          f"{conv:.0%} (the same residual recomputed here: {kkt_check:.1e})")
    print()
    print("| loop | options | loop fits/s | fit_batch fits/s | ratio | max abs coef diff "
          "| rel. objective diff (min / max) | loop max KKT | loop fits warned "
          "| fit_batch max KKT | fit_batch converged |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r.note:
            print(f"| {r.name} | {r.options} | {r.note} | | | | | | | | |")
            continue
        print(f"| {r.name} | {r.options} | {r.loop_fits_s:.0f} | {r.batch_fits_s:.0f} "
              f"| {r.batch_fits_s / r.loop_fits_s:.1f} "
              f"| {r.max_coef_diff:.1e} | {r.rel_obj_min:.1e} / {r.rel_obj_max:.1e} "
              f"| {r.loop_kkt:.1e} | {r.loop_warned} | {kkt:.1e} | {conv:.0%} |")


if __name__ == "__main__":
    main()
