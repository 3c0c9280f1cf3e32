"""The ``gfgsm`` command.

``gfgsm demo`` is the package's main job until the Monte Carlo engine and the report exist: a
small batched simulation (THEORY.md s.5) that fits G-FGSM and PL to ``R`` replications of a
GLM for each family and prints bias, empirical standard error (with Monte Carlo standard
errors) and the share of converged fits.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Sequence

import numpy as np

from . import __version__
from ._backend import BACKENDS, to_numpy
from .batch import fit_batch
from .families import get_family


def _demo(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    R, n = args.replications, args.n
    beta0 = np.array([1.0, -0.5, 0.0, 0.0, 0.5])
    a0 = 0.2
    p = beta0.size
    lam = args.lam0 / math.sqrt(n)
    print(f"gfgsm {__version__} demo: R = {R} replications, n = {n}, p = {p}, "
          f"lam = {args.lam0}/sqrt(n) = {lam:.4g}, backend = {args.backend}")
    print(f"true intercept {a0}, true beta {beta0.tolist()}\n")
    header = f"{'family':9s} {'method':6s} {'conv':>6s} {'fits/s':>8s}  " + "  ".join(
        f"{'bias(b' + str(j + 1) + ')':>18s}" for j in range(p)
    )
    print(header)
    for fam_name in ("gaussian", "binomial", "poisson"):
        fam = get_family(fam_name)
        X = rng.standard_normal((R, n, p))
        scale = 0.5 if fam_name == "poisson" else 1.0
        eta = a0 + X @ (beta0 * scale)
        y = to_numpy(fam.sample(eta, rng=rng))
        for method in ("gfgsm", "pl"):
            adversary = "exact" if fam_name == "poisson" else "fgsm"
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                fit = fit_batch(X, y, family=fam, method=method, lam=lam, backend=args.backend,
                                adversary=adversary)
            dt = time.perf_counter() - t0
            conv = to_numpy(fit.converged).astype(bool)
            coef = to_numpy(fit.coef)[conv]
            err = coef - beta0 * scale
            bias = err.mean(axis=0)
            mcse = err.std(axis=0, ddof=1) / math.sqrt(max(conv.sum(), 1))
            cells = "  ".join(f"{b:+9.4f} ({s:.4f})" for b, s in zip(bias, mcse, strict=True))
            print(f"{fam_name:9s} {method:6s} {conv.mean():6.1%} {R / dt:8.0f}  {cells}")
    print("\nbias = mean(beta_hat - beta) over converged fits, (MCSE) = its Monte Carlo SE.")
    print("G-FGSM shrinks like PL at level lam * D (THEORY.md s.4); poisson uses the exact "
          "adversary.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gfgsm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gfgsm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a small batched G-FGSM vs PL simulation")
    demo.add_argument("--replications", "-R", type=int, default=500)
    demo.add_argument("--n", type=int, default=400)
    demo.add_argument("--lam0", type=float, default=1.0)
    demo.add_argument("--seed", type=int, default=2024)
    demo.add_argument("--backend", choices=BACKENDS, default="numpy")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.replications < 2:
            parser.error(f"--replications must be >= 2, got {args.replications}")
        if args.n < 10:
            parser.error(f"--n must be >= 10, got {args.n}")
        if args.lam0 < 0:
            parser.error(f"--lam0 must be >= 0, got {args.lam0}")
        return _demo(args)
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
