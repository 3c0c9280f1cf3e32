"""The ``gfgsm`` command: simulation studies of Generalized FGSM from the shell.

``gfgsm list [STUDY ...]``     studies and presets (the ``gfgsm.studies`` entry points, or
                               the studies named, study files included)
``gfgsm run STUDY``            run or resume a study into a results store
``gfgsm summarize DIR``        performance measures with Monte Carlo standard errors
``gfgsm report``               the report (filled by the studies issue)
``gfgsm demo``                 a small batched G-FGSM vs PL simulation, printed

``STUDY`` is a registered name or a study file, ``path/to/study.py:NAME`` (the ``Study`` object
``NAME`` of that file) or ``path/to/study.py`` (the one ``Study`` it defines); see
:func:`gfgsm.mc.registry.load_study`.  A study file is run exactly as a registered study.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import __version__
from ._backend import BACKENDS, to_numpy
from .batch import fit_batch
from .families import get_family

if TYPE_CHECKING:
    from .mc.spec import Study


#: The demo's slopes are halved for poisson, whose exp link would otherwise give large counts.
_DEMO_SCALE = {"poisson": 0.5}


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
        scale = _DEMO_SCALE.get(fam_name, 1.0)
        eta = a0 + X @ (beta0 * scale)
        y = to_numpy(fam.sample(eta, rng=rng))
        for method in ("gfgsm", "pl"):
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                fit = fit_batch(X, y, family=fam, method=method, lam=lam, backend=args.backend)
            dt = time.perf_counter() - t0
            conv = to_numpy(fit.converged).astype(bool)
            coef = to_numpy(fit.coef)[conv]
            err = coef - beta0 * scale
            bias = err.mean(axis=0)
            mcse = err.std(axis=0, ddof=1) / math.sqrt(max(conv.sum(), 1))
            cells = "  ".join(f"{b:+9.4f} ({s:.4f})" for b, s in zip(bias, mcse, strict=True))
            print(f"{fam_name:9s} {method:6s} {conv.mean():6.1%} {R / dt:8.0f}  {cells}")
    print("\nbias = mean(beta_hat - beta) over converged fits, (MCSE) = its Monte Carlo SE.")
    print("G-FGSM shrinks like PL at level lam * D (docs/theory.md s.4); every fit uses the "
          "default adversary (the exact worst case).")
    return 0


def _load(ref: str) -> Study:
    """The study ``ref`` names (:func:`gfgsm.mc.registry.load_study`)."""
    from .mc.registry import load_study

    return load_study(ref)


def _list(args: argparse.Namespace) -> int:
    from .mc.registry import list_studies

    studies = {ref: _load(ref) for ref in args.studies} if args.studies else list_studies()
    if not studies:
        print("no studies registered (entry-point group 'gfgsm.studies')")
        return 0
    for name, st in studies.items():
        label = name if name == st.name else f"{name} (study {st.name!r})"
        print(f"{label}: {st.aims}")
        for pname in sorted(st.presets):
            pre = st.presets[pname]
            conds = st.conditions(pname)
            print(f"    --preset {pname:6s} {pre.reps:6d} replications x {len(conds):3d} "
                  f"conditions x {len(st.methods)} methods  {pre.description}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .mc.runner import run

    # Resolved first: a bad reference fails before anything is created.
    study = _load(args.study)
    out = run(study, args.preset, args.out, backend=args.backend, executor=args.executor,
              scheduler=args.scheduler, workers=args.workers, chunk_size=args.chunk_size,
              reps=args.reps, progress=None if args.progress is None else args.progress)
    print(f"results: {out}  (gfgsm summarize {out})")
    return 0


def _summarize(args: argparse.Namespace) -> int:
    from .mc.summary import summarize

    print(summarize(args.dir))
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import build_report

    path = build_report(args.preset, args.results, args.out, only=args.only,
                        backend=args.backend, executor=args.executor, workers=args.workers,
                        from_summaries=args.from_summaries)
    print(f"report: {path}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gfgsm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gfgsm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    list_p = sub.add_parser("list", help="registered studies (or those named) and their presets")
    list_p.add_argument("studies", nargs="*", metavar="STUDY",
                        help="registered names or study files (path/to/study.py[:NAME])")

    run_p = sub.add_parser("run", help="run or resume a study")
    run_p.add_argument("study", metavar="STUDY",
                       help="a registered name (gfgsm list) or a study file: "
                            "path/to/study.py:NAME, or path/to/study.py if it defines one Study")
    run_p.add_argument("--preset", default="quick")
    run_p.add_argument("--out", default=None,
                       help="store directory (default results/NAME-PRESET, NAME the study's name)")
    run_p.add_argument("--backend", choices=BACKENDS, default=None)
    run_p.add_argument("--executor", choices=("local", "processes", "dask"), default="local")
    run_p.add_argument("--scheduler", default=None, help="Dask scheduler address")
    run_p.add_argument("--workers", type=_positive_int, default=None)
    run_p.add_argument("--chunk-size", type=_positive_int, default=None)
    run_p.add_argument("--reps", type=_positive_int, default=None,
                       help="override the preset's replications per condition")
    bar = run_p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None)
    bar.add_argument("--no-progress", dest="progress", action="store_false")

    summ = sub.add_parser("summarize", help="performance measures of a results store")
    summ.add_argument("dir")

    rep = sub.add_parser("report", help="build the report")
    rep.add_argument("--preset", default="quick")
    rep.add_argument("--results", default=None)
    rep.add_argument("--out", default="reports")
    rep.add_argument("--only", nargs="*", default=None, help="only these sections")
    rep.add_argument("--backend", choices=BACKENDS, default=None,
                     help="array backend of every study (cupy: on a CUDA GPU)")
    rep.add_argument("--executor", choices=("local", "processes", "dask"), default=None,
                     help="executor of every study (default: 2 processes; local on cupy)")
    rep.add_argument("--workers", type=_positive_int, default=None)
    rep.add_argument("--from-summaries", default=None, metavar="DIR",
                     help="render every section from the summaries a previous report saved "
                          "(DIR/<section>/), running no study")

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
    from .mc.registry import NotAStudyError

    handlers = {"list": _list, "run": _run, "summarize": _summarize, "report": _report}
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError,
            ConnectionError, FileExistsError, NotAStudyError) as exc:
        # The notes say where an error came from (e.g. the study file being imported).
        notes = "".join(f"\n  {note}" for note in getattr(exc, "__notes__", ()))
        print(f"gfgsm {args.command}: error: {exc}{notes}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
