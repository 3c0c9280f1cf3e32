"""The cases of the ``fit_batch`` regression fixture (``tests/data/fit_batch_regression.npz``).

A refactor of the solvers or of their composition must leave every output of these fits bitwise
unchanged (issue 14).  The cases cross the three families with both methods and every penalty,
scheme and adversary, on small fixed data sets; ``python tests/regression_cases.py`` writes the
fixture, which is regenerated only when a change of the numbers is intended (say so in the
commit).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

FIXTURE = Path(__file__).parent / "data" / "fit_batch_regression.npz"

_FIELDS = ("coef", "intercept", "kkt", "objective", "n_iter", "converged")


def _data(family: str, seed: int, R: int = 3, n: int = 120, p: int = 5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    eta = 0.2 + X @ np.array([0.7, -0.5, 0.0, 0.3, 0.0])[:p]
    if family == "gaussian":
        Y = eta + rng.standard_normal((R, n))
    elif family == "binomial":
        Y = (rng.random((R, n)) < 1 / (1 + np.exp(-eta))).astype(float)
    else:
        Y = rng.poisson(np.exp(0.5 * eta), (R, n)).astype(float)
    return X, Y


def cases() -> dict[str, dict[str, Any]]:
    """Name -> keyword arguments of ``fit_batch`` (the data are drawn from ``family``)."""
    out: dict[str, dict[str, Any]] = {}
    for fam in ("gaussian", "binomial", "poisson"):
        for method in ("gfgsm", "pl"):
            pens: list[tuple[str, dict[str, Any]]] = [
                ("l1", {}), ("scad", {}), ("mcp", {}), ("lr", {"r": 0.5}), ("lr", {"r": 2.0}),
                ("adaptive_l1", {}), ("weighted_l1", {"weights": [1.0, 2.0, 0.5, 1.0, 3.0]}),
            ]
            for pen, params in pens:
                out[f"{fam}-{method}-{pen}{params.get('r', '')}"] = dict(
                    family=fam, method=method, penalty=pen, lam=0.05, **params)
        for sch, params in (("lq", {"q": 2}), ("lq", {"q": 1}), ("power", {"r": 3}),
                            ("quantized", {"b": 4})):
            out[f"{fam}-gfgsm-{sch}{next(iter(params.values()))}"] = dict(
                family=fam, method="gfgsm", scheme=sch, lam=0.05, **params)
        out[f"{fam}-gfgsm-l1-cw"] = dict(family=fam, method="gfgsm", lam=0.1, clean_weight=0.5)
        out[f"{fam}-gfgsm-l1-lam0"] = dict(family=fam, method="gfgsm", lam=0.0)
    out["poisson-gfgsm-l1-fgsm"] = dict(family="poisson", method="gfgsm", lam=0.05,
                                        adversary="fgsm")
    out["binomial-gfgsm-l1-nointercept"] = dict(family="binomial", method="gfgsm", lam=0.05,
                                                fit_intercept=False)
    return out


def run_case(kw: dict[str, Any]) -> dict[str, np.ndarray]:
    from threadpoolctl import threadpool_limits

    import gfgsm

    seed = {"gaussian": 1, "binomial": 2, "poisson": 3}[kw["family"]]
    X, Y = _data(kw["family"], seed)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = gfgsm.fit_batch(X, Y, **kw)
    out = {f: np.asarray(getattr(fit, f)) for f in _FIELDS}
    out["status"] = np.asarray(fit.status, dtype=str)
    return out


def fingerprint() -> str:
    """NumPy, its BLAS and the CPU: where these match the fixture's, equality is bitwise."""
    import platform

    from threadpoolctl import threadpool_info

    blas = sorted(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                  for i in threadpool_info() if i.get("user_api") == "blas")
    return json.dumps([np.__version__, blas, platform.machine(), platform.processor()])


def write() -> None:
    arrays: dict[str, np.ndarray] = {"__fingerprint__": np.asarray(fingerprint())}
    for name, kw in cases().items():
        for field, value in run_case(kw).items():
            arrays[f"{name}/{field}"] = value
    arrays["__cases__"] = np.asarray(json.dumps(cases(), sort_keys=True))
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, **arrays)


if __name__ == "__main__":
    write()
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes, {len(cases())} cases)")
