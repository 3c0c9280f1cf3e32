"""Portability: the core runs on ``array_api_strict`` and gives the NumPy numbers.

``array_api_strict`` implements only the Array-API standard, so any NumPy-only call in the
numerics fails here.  Results must equal the NumPy backend's to rounding (the same operations in
the same order: 1e-12).
"""

from __future__ import annotations

import array_api_strict as xs
import numpy as np
import pytest

import gfgsm
from gfgsm._backend import get_namespace, namespace_name, resolve_backend, to_numpy

CASES = [
    ("gaussian", "gfgsm", "l1", {}),
    ("gaussian", "pl", "scad", {}),
    ("binomial", "gfgsm", "l1", {"clean_weight": 0.3}),
    ("binomial", "pl", "mcp", {}),
    ("binomial", "gfgsm", "lr", {"r": 0.5}),
    ("poisson", "gfgsm", "l1", {"adversary": "exact"}),
    ("poisson", "gfgsm", "l1", {}),
    ("poisson", "pl", "l1", {}),
]


def _data(family: str, R: int = 5, n: int = 80, p: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((R, n, p))
    eta = 0.2 + X @ np.array([0.8, -0.5, 0.0, 0.4])
    y = to_numpy(gfgsm.get_family(family).sample(eta, rng=rng))
    return X, y


@pytest.mark.parametrize(("family", "method", "penalty", "kw"), CASES)
def test_fit_batch_on_array_api_strict_equals_numpy(family, method, penalty, kw):
    X, y = _data(family)
    ref = gfgsm.fit_batch(X, y, family=family, method=method, lam=0.05, penalty=penalty,
                          warn=False, **kw)
    out = gfgsm.fit_batch(xs.asarray(X), xs.asarray(y), family=family, method=method,
                          lam=0.05, penalty=penalty, warn=False, **kw)
    assert namespace_name(get_namespace(out.coef)) == "array_api_strict"
    np.testing.assert_allclose(to_numpy(out.coef), to_numpy(ref.coef), rtol=0, atol=1e-12)
    np.testing.assert_allclose(to_numpy(out.intercept), to_numpy(ref.intercept), atol=1e-12)
    np.testing.assert_array_equal(to_numpy(out.converged), to_numpy(ref.converged))


def test_backend_argument_moves_numpy_input():
    X, y = _data("binomial")
    out = gfgsm.fit_batch(X, y, family="binomial", method="pl", lam=0.05,
                          backend="array_api_strict")
    assert namespace_name(get_namespace(out.coef)) == "array_api_strict"


def test_unknown_backend_is_an_error():
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("jax")
    X, y = _data("binomial")
    with pytest.raises(ValueError, match="unknown backend"):
        gfgsm.fit_batch(X, y, family="binomial", method="pl", lam=0.05, backend="torch")
