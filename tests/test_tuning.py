"""gfgsm.tuning: the lam rule and the BIC selection, a layer below both mc and nn."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import gfgsm.mc
import gfgsm.mc.spec
import gfgsm.tuning as tuning
from gfgsm.families import Poisson
from gfgsm.tuning import LamRule, bic, bic_select


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


#: Makes ``import pandas`` / ``import pyarrow`` fail in a fresh interpreter (scikit-learn
#: imports pandas when it can, so only a blocked import shows what gfgsm itself needs).
_BLOCK = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('pandas', 'pyarrow'):
            raise ImportError(f'{name} is blocked')
        return None
sys.meta_path.insert(0, _Block())
"""


def test_import_nn_needs_no_engine_pandas_or_pyarrow():
    code = _BLOCK + ("import gfgsm.nn, gfgsm.tuning; gfgsm.nn.NetworkMethod; "
                     "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                     "('pandas', 'pyarrow') or m == 'gfgsm.mc' or m.startswith('gfgsm.mc.')))")
    assert _fresh(code) == "[]"


def test_import_nn_loads_no_engine_and_no_more_than_sklearn():
    got = _fresh("import sys, gfgsm.nn; print(sorted(m for m in ('gfgsm.mc', 'gfgsm.mc.spec', "
                 "'gfgsm.mc.store', 'pandas', 'pyarrow') if m in sys.modules))")
    # pandas (and the pyarrow it loads) come only from scikit-learn, which imports pandas when
    # it is installed; the engine never.
    sk = _fresh("import sys, sklearn.base; print(sorted(m for m in ('pandas', 'pyarrow') "
                "if m in sys.modules))")
    assert got == sk


def test_lam_rule_is_one_class_everywhere():
    assert gfgsm.mc.LamRule is LamRule
    assert gfgsm.mc.spec.LamRule is LamRule
    from gfgsm.nn import study

    assert study.LamRule is LamRule
    spec = gfgsm.mc.MethodSpec("m", "pl", lam=LamRule(exponent=0.25, scale=2.0,
                                                      multiplier="D*phi"))
    back = pickle.loads(pickle.dumps(spec))
    assert back == spec and type(back.lam) is LamRule


def test_lam_rule_values():
    assert LamRule()({"lam0": 2.0, "n": 400}) == 2.0 / 20.0
    assert LamRule(exponent=0, scale=0.3)({"n": 10}) == 0.3
    assert LamRule(exponent=0.25)({"lam0": 1.0, "n": 16}) == 0.5
    with pytest.raises(ValueError, match="needs the DGP"):
        LamRule(multiplier="D")({"lam0": 1.0, "n": 16})


def _hand_deviance(family: str, y: np.ndarray, eta: np.ndarray) -> float:
    out = 0.0
    for yi, ei in zip(y, eta, strict=True):
        if family == "binomial":
            mu = 1.0 / (1.0 + math.exp(-ei))
            out += -2.0 * (math.log(mu) if yi == 1 else math.log(1.0 - mu))
        else:
            mu = math.exp(ei)
            out += 2.0 * ((yi * math.log(yi / mu) if yi > 0 else 0.0) - (yi - mu))
    return out


def test_bic_against_hand_computation():
    rng = np.random.default_rng(3)
    R, n = 3, 25
    eta = rng.normal(size=(R, n))
    df = np.array([1.0, 3.0, 6.0])
    y = eta + rng.normal(size=(R, n))
    want = [n * math.log(sum((y[r] - eta[r]) ** 2) / n) + math.log(n) * df[r] for r in range(R)]
    np.testing.assert_allclose(bic("gaussian", y, eta, df), want, rtol=1e-13)
    for family, draw in (("binomial", lambda: rng.integers(0, 2, (R, n))),
                         ("poisson", lambda: rng.poisson(2.0, (R, n)))):
        y = draw().astype(float)
        want = [_hand_deviance(family, y[r], eta[r]) + math.log(n) * df[r] for r in range(R)]
        np.testing.assert_allclose(bic(family, y, eta, df), want, rtol=1e-12)


def test_bic_asks_the_family_for_a_dispersion():
    """The profile-likelihood form follows ``has_dispersion``, not the family's name."""

    class DispersedPoisson(Poisson):
        has_dispersion = True

    rng = np.random.default_rng(4)
    eta = rng.normal(size=(2, 10))
    y = rng.poisson(1.0, (2, 10)).astype(float)
    df = np.array([2.0, 2.0])
    rss = ((y - eta) ** 2).sum(axis=1)
    np.testing.assert_allclose(bic(DispersedPoisson(), y, eta, df),
                               10 * np.log(rss / 10) + math.log(10) * df, rtol=1e-13)


def test_bic_select_keeps_the_smallest_converged_bic(monkeypatch):
    """Selection against a hand computation on fits whose coefficients are given: per
    replication, the converged grid point of smallest BIC, or the first when none converged."""
    R, n, p, L = 3, 8, 2, 3
    rng = np.random.default_rng(5)
    X = rng.normal(size=(R, n, p))
    y = X[..., 0] + 0.5 * rng.normal(size=(R, n))
    coef = rng.normal(size=(R * L, p)) * np.array([1.0, 0.0])  # second coefficient zero
    coef[::2, 1] = 0.3  # and nonzero at every other problem: df 2 or 3
    intercept = rng.normal(size=R * L)
    converged = np.array([True, True, True, True, False, True, False, False, False])
    seen = {}

    def fake_fit_batch(XX, YY, *, lam, **kw):
        seen.update(lam=lam, kw=kw)
        return SimpleNamespace(coef=coef, intercept=intercept, converged=converged)

    monkeypatch.setattr(tuning, "fit_batch", fake_fit_batch)
    grid = (0.5, 1.0, 2.0)
    fit, idx, lams = bic_select(X, y, "gaussian", np.array([0.1, 0.2, 0.4]), grid,
                                method="pl", penalty="l1")
    assert seen["kw"]["method"] == "pl" and seen["kw"]["penalty"] == "l1"
    np.testing.assert_array_equal(lams, [0.05, 0.1, 0.2, 0.1, 0.2, 0.4, 0.2, 0.4, 0.8])
    want = []
    for r in range(R):
        crit = []
        for k in range(L):
            j = r * L + k
            res = y[r] - (intercept[j] + X[r] @ coef[j])
            df = 1 + np.count_nonzero(coef[j])
            crit.append(n * math.log(res @ res / n) + math.log(n) * df if converged[j]
                        else math.inf)
        want.append(r * L + (int(np.argmin(crit)) if np.isfinite(min(crit)) else 0))
    np.testing.assert_array_equal(idx, want)
    assert idx[2] == 2 * L  # replication 2 has no converged point: its first
    assert fit.coef is coef


def test_bic_select_real_fits_match_single_fits():
    """On real fits, the selected estimate is the one-problem fit at the selected level."""
    from gfgsm.batch import fit_batch

    rng = np.random.default_rng(6)
    R, n, p = 2, 60, 3
    X = rng.normal(size=(R, n, p))
    y = (X[..., 0] - 0.5 * X[..., 1] + rng.normal(size=(R, n)) > 0).astype(float)
    lam = np.array([0.05, 0.1])
    fit, idx, lams = bic_select(X, y, "binomial", lam, (0.0, 1.0, 4.0), method="pl",
                                penalty="l1")
    for r in range(R):
        one = fit_batch(X[r:r + 1], y[r:r + 1], family="binomial", lam=lams[idx[r]],
                        method="pl", penalty="l1", warn=False)
        np.testing.assert_allclose(one.coef[0], fit.coef[idx[r]], rtol=1e-10, atol=1e-12)
