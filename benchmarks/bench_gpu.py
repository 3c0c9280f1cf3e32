"""GPU checks and timings: CuPy against NumPy on the same machine (``benchmarks/gpu.sh`` runs it).

Stages, in order of importance; each writes ``<out>/<stage>.json`` as soon as it finishes, so a
run cut short keeps what it finished:

1. ``bitwise``: every transform of :mod:`gfgsm.rng`, every design and every DGP drawn on CuPy
   and on NumPy: the number of differing values (the goal is 0);
2. ``engine_agreement``: fused chunks of the consistency study on both backends: the data are
   the same bits, the estimates agree to the solver's tolerance;
3. ``generator``: warm draws per second on CuPy and NumPy;
4. ``engine``: the engine (draw on the device, fit, tidy rows) against bare ``fit_batch`` on
   the same, already drawn data, binomial l1 G-FGSM, n = 1000, p = 10;
5. ``studies``: every GLM study's quick preset, CuPy (local executor) against NumPy on the
   machine's cores (process executor, one worker per core);
6. ``report``: ``gfgsm report --preset quick`` on CuPy and on NumPy's cores;
7. ``full``: GLM studies' full presets on CuPy, each cut at ``--full-limit`` seconds (the goal
   is 2 minutes each); a cut run reports the share of replications it stored.

``--dry-run`` runs every stage at toy sizes with ``array_api_strict`` standing in for CuPy, to
check the script on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from gfgsm._backend import resolve_backend, to_numpy
from gfgsm.designs import BernoulliDesign, GaussianDesign, MixtureDesign, UniformDesign
from gfgsm.dgp import DGP
from gfgsm.rng import Stream, _fused

GLM_STUDIES = ("consistency", "limit_law", "coverage", "sign_neutrality", "sparsity",
               "noise_level")


def _sync(backend: str) -> None:
    if backend == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()


def _timed(fn: Any, backend: str, repeat: int = 3) -> float:
    """Best of ``repeat`` warm calls (one untimed call first compiles the kernels)."""
    fn()
    _sync(backend)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        _sync(backend)
        best = min(best, time.perf_counter() - t)
    return best


def _diff_count(a: Any, b: Any) -> int:
    a, b = to_numpy(a), to_numpy(b)
    if a.shape != b.shape:
        return -1
    same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
    return int(np.sum(~same))


def _stream_draws(xp: Any, R: int, m: int) -> dict[str, Any]:
    s = Stream.create((0x1234ABCD, 0x9E3779B9), np.arange(R, dtype=np.uint64), xp)
    means = np.tile(np.geomspace(0.05, 2981.0, 16), (R, max(1, m // 64)))
    prob = np.tile(np.linspace(0.0, 1.0, 17), (R, max(1, m // 64)))
    return {
        "uint32": s.child(0).uint32((m,)),
        "uniform": s.child(1).uniform((m,)),
        "uniform_open": s.child(2).uniform_open((m,)),
        "normal": s.child(3).normal((m,)),
        "exponential": s.child(4).exponential((m,)),
        "logistic": s.child(5).logistic((m,)),
        "gamma(0.4)": s.child(6).gamma((m // 8,), 0.4),
        "gamma(2.5)": s.child(7).gamma((m // 8,), 2.5),
        "t(3)": s.child(8).standard_t((m // 8,), 3.0),
        "poisson": s.child(9).poisson(xp.asarray(means)),
        "bernoulli": s.child(10).bernoulli(xp.asarray(prob)),
    }


def _dgps() -> dict[str, DGP]:
    g = GaussianDesign(5, rho=0.5)
    coef = [0.4, -0.3, 0.0, 0.2, 0.0]
    return {
        "gaussian normal": DGP("gaussian", g, coef, 0.5, sigma=1.5),
        "gaussian t3": DGP("gaussian", g, coef, 0.5, noise="t"),
        "gaussian skewed": DGP("gaussian", g, coef, 0.5, noise="skewed"),
        "binomial": DGP("binomial", g, coef, 0.5),
        "poisson": DGP("poisson", g, coef, 0.5),
        "binomial uniform": DGP("binomial", UniformDesign(5), coef, -0.2),
        "poisson bernoulli": DGP("poisson", BernoulliDesign(5, 0.3, (-1.0, 1.0)), coef, 1.0),
        "binomial mixture": DGP("binomial", MixtureDesign(
            [GaussianDesign(5), BernoulliDesign(5, 0.5, (-1.0, 1.0))], [0.3, 0.7]), coef, 0.0),
    }


def stage_bitwise(dev: str, sizes: dict[str, int]) -> dict[str, Any]:
    xd, xn = resolve_backend(dev), resolve_backend("numpy")
    R, m = sizes["R"], sizes["m"]
    a, b = _stream_draws(xd, R, m), _stream_draws(xn, R, m)
    out: dict[str, Any] = {"values": {}, "differing": {}}
    for k in a:
        out["values"][k] = int(np.prod(a[k].shape))
        out["differing"][k] = _diff_count(a[k], b[k])
    for name, dgp in _dgps().items():
        Xd, yd = dgp.sample(sizes["n"], seed=11, R=R, backend=dev)
        Xn, yn = dgp.sample(sizes["n"], seed=11, R=R)
        out["values"][name] = int(np.prod(Xd.shape) + np.prod(yd.shape))
        out["differing"][name] = _diff_count(Xd, Xn) + _diff_count(yd, yn)
    return out


def stage_engine_agreement(dev: str, sizes: dict[str, int]) -> dict[str, Any]:
    from gfgsm.mc.registry import get_study
    from gfgsm.mc.runner import compute_group, fusion_groups

    out = {}
    for name in ("consistency", "sign_neutrality"):
        study = get_study(name)
        worst, status_diff, rows = 0.0, 0, 0
        for g in fusion_groups(study, "quick")[: sizes["groups"]]:
            members = [(c, 0, sizes["reps"]) for c in g]
            fa = compute_group(study, "quick", members, backend=dev)
            fb = compute_group(study, "quick", members)
            for a, b in zip(fa, fb, strict=True):
                worst = max(worst, float(np.max(np.abs(a["estimate"].to_numpy()
                                                       - b["estimate"].to_numpy()))))
                status_diff += int(np.sum(a["status"].to_numpy() != b["status"].to_numpy()))
                rows += len(a)
        out[name] = {"rows": rows, "max_abs_estimate_diff": worst, "status_diff": status_diff}
    return out


def stage_intervals(dev: str, sizes: dict[str, int]) -> dict[str, Any]:
    """gfgsm.conf_int on the device against NumPy: the Wald, limit-law and bootstrap intervals
    (weighted, tilted refits) of the same fits, per family (max |difference| of the ends)."""
    import gfgsm

    out = {}
    xd = resolve_backend(dev)
    for fam, a0 in (("binomial", 1.0), ("poisson", -1.0), ("gaussian", 1.0)):
        dgp = DGP(fam, GaussianDesign(3, rho=0.3), (1.0, 0.0, -0.5), a0)
        R, n = sizes["ci_R"], sizes["n"]
        X, y = dgp.sample(n, seed=5, R=R)
        lam = 1.0 / np.sqrt(n)
        worst: dict[str, float] = {}
        fits = {b: gfgsm.fit_batch(X if b == "numpy" else xd.asarray(X),
                                   y if b == "numpy" else xd.asarray(y), family=fam,
                                   method="gfgsm", adversary="exact", lam=lam, backend=b)
                for b in ("numpy", dev)}
        for method, kw in (("debiased", {}), ("limit", {"n_draws": 500}),
                           ("bootstrap", {"B": sizes["ci_B"]})):
            ends = {}
            t = {}
            for b in ("numpy", dev):
                Xb = X if b == "numpy" else xd.asarray(X)
                yb = y if b == "numpy" else xd.asarray(y)
                t0 = time.perf_counter()
                ci = gfgsm.conf_int(fits[b], Xb, yb, method=method, seed=3, **kw)
                ends[b] = np.asarray(to_numpy(ci.as_array()))
                _sync(b)
                t[b] = time.perf_counter() - t0
            worst[method] = float(np.nanmax(np.abs(ends["numpy"] - ends[dev])))
            worst[f"{method}_seconds_numpy"] = t["numpy"]
            worst[f"{method}_seconds_{dev}"] = t[dev]
        out[fam] = worst
    return out


def stage_generator(dev: str, sizes: dict[str, int]) -> dict[str, Any]:
    out = {}
    N = sizes["gen"]
    for backend in (dev, "numpy"):
        xp = resolve_backend(backend)
        s = Stream.create((1, 2), np.arange(64, dtype=np.uint64), xp)
        m = N // 64
        mean = xp.full((64, m // 4), 3.0)
        res = {
            "uniform": N / _timed(lambda s=s, m=m: s.uniform((m,)), backend),
            "normal": N / _timed(lambda s=s, m=m: s.normal((m,)), backend),
            "poisson(3)": N / 4 / _timed(lambda s=s, mean=mean: s.poisson(mean), backend),
        }
        if _fused.available(xp):
            # the array code (the reference) on the same device: the kernels' gain
            kernel = s.child(9).normal((m,))
            _fused.ENABLED = False
            try:
                res["uniform, array code"] = N / _timed(lambda s=s, m=m: s.uniform((m,)),
                                                        backend)
                res["normal, array code"] = N / _timed(lambda s=s, m=m: s.normal((m,)),
                                                       backend)
                same = _diff_count(s.child(9).normal((m,)), kernel)
            finally:
                _fused.ENABLED = True
            res["normal, kernel vs array code on the device: differing"] = same
        out[backend] = {k: float(v) for k, v in res.items()}
    out["numpy_default_rng_normal"] = float(N / _timed(
        lambda: np.random.default_rng(0).standard_normal(N), "numpy"))
    return out


def stage_engine(dev: str, sizes: dict[str, int]) -> dict[str, Any]:
    from gfgsm import fit_batch
    from gfgsm.mc.spec import LamRule, MethodSpec, Preset, Study

    n, p = 1000, 10
    coef = [0.5, -0.5, 0.25, -0.25] + [0.0] * (p - 4)

    def make(c: Any) -> DGP:
        return DGP("binomial", GaussianDesign(p, rho=0.5), coef, 0.0)

    study = Study(name="engine_bench", aims="timing", factors={"n": [n], "lam0": [1.0]},
                  make_dgp=make, methods=(MethodSpec("G-FGSM l1", "gfgsm", lam=LamRule()),),
                  presets={"quick": Preset(reps=sizes["engine_R"]),
                           "full": Preset(reps=sizes["engine_R"])})
    from gfgsm.mc.runner import compute_group

    out = {}
    for backend in (dev, "numpy"):
        R = sizes["engine_R"] if backend == dev else sizes["engine_R_cpu"]
        X, y = make({}).sample(n, seed=3, R=R, backend=backend)
        bare = _timed(lambda X=X, y=y, b=backend: fit_batch(
            X, y, family="binomial", method="gfgsm", lam=1 / np.sqrt(n), backend=b,
            warn=False), backend, repeat=2)
        eng = _timed(lambda b=backend, R=R: compute_group(study, "quick", [(0, 0, R)], b),
                     backend, repeat=2)
        xp = resolve_backend(backend)
        stream = Stream.create((5, 6), np.arange(R, dtype=np.uint64), xp)
        draw = _timed(lambda stream=stream: make({}).draw_stream(n, stream), backend, repeat=2)
        out[backend] = {"R": R, "bare_fits_per_s": R / bare, "engine_fits_per_s": R / eng,
                        "ratio": bare / eng, "seconds_bare_fit": bare, "seconds_engine": eng,
                        "seconds_draw": draw,
                        "seconds_rest (rows, transfers)": eng - bare - draw}
    return out


def _run_cli(args: list[str], env: dict[str, str] | None = None,
             timeout: float | None = None) -> float | str:
    """Wall seconds of one CLI call, or ``"cut at T s"`` when it ran past ``timeout``."""
    t = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "gfgsm.cli", *args], check=True,
                       env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                       timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"cut at {time.perf_counter() - t:.0f} s"
    return time.perf_counter() - t


def _left(sizes: dict[str, Any]) -> float:
    return sizes["deadline_hard"] - time.perf_counter()


def stage_studies(dev: str, sizes: dict[str, int], tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cores = str(os.cpu_count() or 2)
    for name in sizes["studies"]:
        if time.perf_counter() > sizes["deadline"]:
            out[name] = "skipped: past the deadline"
            continue
        extra = ["--reps", str(sizes["reps"])] if sizes.get("reps_override") else []
        t_dev = _run_cli(["run", name, "--preset", "quick", "--backend", dev, "--out",
                          str(tmp / f"{name}-dev"), "--no-progress", *extra])
        t_cpu = _run_cli(["run", name, "--preset", "quick", "--executor", "processes",
                          "--workers", cores, "--out", str(tmp / f"{name}-cpu"),
                          "--no-progress", *extra])
        out[name] = {dev: t_dev, f"numpy x{cores} processes": t_cpu, "speedup": t_cpu / t_dev}
        _write(Path(sizes["out"]), "studies", out)
    return out


def stage_report(dev: str, sizes: dict[str, int], tmp: Path) -> dict[str, Any]:
    cores = str(os.cpu_count() or 2)
    only = ["--only", *sizes["report_only"]] if sizes.get("report_only") else []
    t_dev = _run_cli(["report", "--preset", "quick", "--backend", dev, "--results",
                      str(tmp / "rep-dev"), "--out", str(tmp / "report-dev"), *only],
                     timeout=max((_left(sizes) - 10) / 2, 30))
    out: dict[str, Any] = {"sections": sizes.get("report_only") or "all", dev: t_dev}
    _write(Path(sizes["out"]), "report", out)
    if time.perf_counter() > sizes["deadline"]:
        return {**out, "numpy": "skipped: past the deadline"}
    t_cpu = _run_cli(["report", "--preset", "quick", "--executor", "processes", "--workers",
                      cores, "--results", str(tmp / "rep-cpu"), "--out",
                      str(tmp / "report-cpu"), *only], timeout=max(_left(sizes) - 10, 30))
    out[f"numpy x{cores} processes"] = t_cpu
    if isinstance(t_dev, float) and isinstance(t_cpu, float):
        out["speedup"] = t_cpu / t_dev
    return out


def _reps_stored(store: Path) -> int:
    """Replications in a store's finished chunks (``cCCCC_rSSSSSSS-EEEEEEE.done``: start and
    stop, the stop exclusive)."""
    total = 0
    for f in (store / "chunks").glob("*.done"):
        a, b = f.stem.split("_r")[1].split("-")
        total += int(b) - int(a)
    return total


def stage_full(dev: str, sizes: dict[str, Any], tmp: Path) -> dict[str, Any]:
    from gfgsm.mc.registry import get_study

    out: dict[str, Any] = {"limit_s": sizes["full_limit"]}
    for name in sizes["full"]:
        left = sizes["deadline_hard"] - time.perf_counter()
        limit = min(sizes["full_limit"], left)
        if limit < 20:
            out[name] = "skipped: past the deadline"
            continue
        study = get_study(name)
        total = len(study.conditions("full")) * study.presets["full"].reps
        store = tmp / f"{name}-full-dev"
        t = time.perf_counter()
        try:
            subprocess.run([sys.executable, "-m", "gfgsm.cli", "run", name, "--preset", "full",
                            "--backend", dev, "--out", str(store), "--no-progress",
                            *(["--reps", str(sizes["reps"])] if sizes.get("reps_override")
                              else [])],
                           check=True, stdout=subprocess.DEVNULL, timeout=limit)
            out[name] = {"seconds": time.perf_counter() - t, "finished": True}
        except subprocess.TimeoutExpired:
            done = _reps_stored(store)
            out[name] = {"seconds": time.perf_counter() - t, "finished": False,
                         "replications_stored": done, "replications": total,
                         "share": done / total}
        _write(Path(sizes["out"]), "full", out)
    return out


def _write(out: Path, stage: str, data: Any) -> None:
    (out / f"{stage}.json").write_text(json.dumps(data, indent=1, default=float))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu-results")
    ap.add_argument("--work", default=None, help="results stores and reports (default OUT/_work)")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--deadline", type=float, default=480.0,
                    help="seconds after which no new stage or study is started")
    ap.add_argument("--report-only", nargs="*", default=None,
                    help="sections of the report stage (default: the whole quick report)")
    ap.add_argument("--full-limit", type=float, default=150.0,
                    help="seconds after which a full preset's run is cut (stage full)")
    ap.add_argument("--hard-deadline", type=float, default=None,
                    help="seconds after which stage full starts nothing (default: deadline + 60)")
    ap.add_argument("--full-studies", nargs="*", default=["limit_law", "sign_neutrality",
                                                          "consistency"])
    ap.add_argument("--stages", nargs="*", default=["bitwise", "generator", "engine",
                                                    "engine_agreement", "intervals", "full",
                                                    "report"])
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.work) if args.work else out / "_work"
    tmp.mkdir(parents=True, exist_ok=True)
    if args.dry_run:
        dev = "array_api_strict"
        sizes: dict[str, Any] = {"R": 3, "m": 256, "n": 40, "groups": 1, "reps": 4,
                                 "ci_R": 3, "ci_B": 5,
                                 "gen": 2**14, "engine_R": 8, "engine_R_cpu": 8,
                                 "studies": ["consistency"],
                                 "reps_override": True, "report_only": ["consistency"]}
    else:
        dev = "cupy"
        sizes = {"R": 64, "m": 2**17, "n": 1000, "groups": 2, "reps": 200, "gen": 2**24,
                 "ci_R": 40, "ci_B": 49,
                 "engine_R": 10_000, "engine_R_cpu": 2000, "studies": list(GLM_STUDIES),
                 "report_only": args.report_only}
    sizes["out"] = str(out)
    sizes["deadline"] = time.perf_counter() + args.deadline
    sizes["deadline_hard"] = time.perf_counter() + (args.hard_deadline or args.deadline + 60)
    sizes["full_limit"] = args.full_limit
    sizes["full"] = args.full_studies
    info = {"dev": dev, "cpus": os.cpu_count()}
    try:
        import cupy

        info["cupy"] = cupy.__version__
        info["device"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception as exc:  # recorded, not hidden
        info["cupy"] = repr(exc)
    info["numpy"] = np.__version__
    if dev == "cupy":
        try:
            _fused._module()
            info["fused_kernels"] = "compiled"
        except Exception:  # recorded; every stage then draws with the array code
            info["fused_kernels"] = traceback.format_exc()
            os.environ["GFGSM_FUSED"] = "0"
            _fused.ENABLED = False
    _write(out, "info", info)
    stages = {"bitwise": lambda: stage_bitwise(dev, sizes),
              "engine_agreement": lambda: stage_engine_agreement(dev, sizes),
              "intervals": lambda: stage_intervals(dev, sizes),
              "generator": lambda: stage_generator(dev, sizes),
              "engine": lambda: stage_engine(dev, sizes),
              "studies": lambda: stage_studies(dev, sizes, tmp),
              "report": lambda: stage_report(dev, sizes, tmp),
              "full": lambda: stage_full(dev, sizes, tmp)}
    for name in args.stages:
        if time.perf_counter() > sizes["deadline" if name != "full" else "deadline_hard"]:
            _write(out, name, {"skipped": "past the deadline"})
            continue
        t = time.perf_counter()
        try:
            res = stages[name]()
        except Exception:  # reported; the next stages still run
            res = {"error": traceback.format_exc()}
        res = {"seconds": time.perf_counter() - t, **res}
        _write(out, name, res)
        print(name, json.dumps(res, default=float)[:2000], flush=True)


if __name__ == "__main__":
    main()
