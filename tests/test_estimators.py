"""The scikit-learn estimators ``GFGSM`` and ``PenalizedGLM``.

* scikit-learn's estimator checks, for every family (binomial: classifier; gaussian, poisson:
  regressors) and a few non-default configurations;
* fit / predict / predict_proba / score against computations done here by hand or by
  scikit-learn's metrics;
* references: statsmodels' GLM MLE (``lam = 0``), scikit-learn's ``Lasso``, and ``fit_batch``
  itself (the estimators are thin wrappers, so their results must agree to 1e-12);
* the scikit-learn protocol: clone / get_params / set_params / GridSearchCV, parameters
  validated at ``fit`` (not ``__init__``) with errors naming the parameter.

Tolerances: fit_batch stops at a KKT residual below ``tol = 1e-9``, which puts estimates on
these well-conditioned problems within ~1e-8 of the minimiser; statsmodels (IRLS to 1e-12) and
Lasso (duality gap 1e-14) are at least as accurate, so 1e-6 leaves a wide margin.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import Lasso
from sklearn.metrics import accuracy_score, d2_tweedie_score, r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from gfgsm import GFGSM, PenalizedGLM, fit_batch, get_scheme
from gfgsm._backend import to_numpy
from gfgsm.families import Poisson

FAMILIES = ["gaussian", "binomial", "poisson"]


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def make_data(family: str, n: int = 120, p: int = 4, seed: int = 0):
    """X standard normal, beta = linspace(0.8, -0.4, p), a = 0.3; y drawn from the family."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    eta = 0.3 + X @ np.linspace(0.8, -0.4, p)
    if family == "gaussian":
        y = eta + rng.standard_normal(n)
    elif family == "binomial":
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return X, y


# --------------------------------------------------------------------------------------------
# 1. scikit-learn's estimator checks
# --------------------------------------------------------------------------------------------


def _poisson_rejects_non_integer_y() -> bool:
    try:
        Poisson().validate_y(np.array([0.5]))
    except ValueError:
        return True
    return False


# These checks build a regression target, make it strictly positive for a positive_only
# estimator (``y + 1 + |min y|``) and fit: the target is real, not integer.
_NON_INTEGER_Y_CHECKS = (
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_regressor_data_not_an_array",
    "check_regressors_no_decision_function",
    "check_regressors_train",
)
_NON_INTEGER_Y_REASON = (
    "fits a positive non-integer target; gfgsm's poisson family accepts integer counts only "
    "(Poisson.validate_y raises ValueError before the checked property is reached)"
)


_KINKED_P_GT_N_REASON = (
    "the check fits 15 rows with 30 features: the G-FGSM objective of gaussian (and of "
    "poisson, whose default adversary is the exact one) then has kinks at the many points "
    "where its two shifted losses tie, and neither the weighted nor the repeated-rows fit "
    "converges (both stop at max_iter with a ConvergenceWarning, KKT 0.04-0.06), so the check "
    "compares two non-minimisers; on data where the fits converge tests/test_sample_weight.py "
    "checks the equivalence to 1e-7"
)
_NOT_UNIQUE_REASON = (
    "the check fits 15 rows with 30 features and lam = 0: the least-squares minimiser is not "
    "unique (a 15-dimensional affine set), so the weighted and repeated-rows fits are two "
    "certified minimisers (KKT 1e-12) that differ (1e-6)"
)


def expected_failed_checks(estimator) -> dict[str, str]:
    """The checks that cannot apply, each with its reason (see the module docstring)."""
    out: dict[str, str] = {}
    if estimator.family == "poisson" and _poisson_rejects_non_integer_y():
        out.update(dict.fromkeys(_NON_INTEGER_Y_CHECKS, _NON_INTEGER_Y_REASON))
    check = "check_sample_weight_equivalence_on_dense_data"
    if (isinstance(estimator, GFGSM) and estimator.family in ("gaussian", "poisson")
            and estimator.scheme is None and estimator.lam > 0):
        out[check] = _KINKED_P_GT_N_REASON
    if estimator.lam == 0:
        out[check] = _NOT_UNIQUE_REASON
    return out


CHECKED_ESTIMATORS = [
    *(GFGSM(family=f) for f in FAMILIES),
    *(PenalizedGLM(family=f) for f in FAMILIES),
    # non-default paths: the convex exact adversary, a non-convex penalty with its parameter,
    # the clean/adversarial mix, the MLE itself (lam = 0), a scheme, no intercept
    GFGSM(family="poisson", adversary="exact"),
    GFGSM(family="binomial", penalty="scad", penalty_params={"a": 3.7}, clean_weight=0.5),
    GFGSM(family="gaussian", lam=0.0, fit_intercept=False),
    GFGSM(family="gaussian", scheme=get_scheme("lq", q=2.0)),
    PenalizedGLM(family="binomial", penalty="lr", penalty_params={"r": 2.0}),
]


@parametrize_with_checks(CHECKED_ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        # separable blobs make the binomial fits diverge at small lam: expected, and warned
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_estimator_type_follows_family():
    assert is_classifier(GFGSM(family="binomial"))
    assert is_classifier(PenalizedGLM(family="binomial"))
    for fam in ("gaussian", "poisson"):
        assert is_regressor(GFGSM(family=fam))
        assert is_regressor(PenalizedGLM(family=fam))
        X, y = make_data(fam, n=40)
        for est in (GFGSM(family=fam, adversary="exact"), PenalizedGLM(family=fam)):
            est.fit(X, y)
            for name in ("decision_function", "predict_proba", "predict_log_proba"):
                assert not hasattr(est, name)


# --------------------------------------------------------------------------------------------
# 2. fit / predict / predict_proba / score semantics
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [GFGSM, PenalizedGLM])
def test_binomial_predict_proba_is_sigmoid_of_linear_predictor(cls):
    X, y = make_data("binomial")
    est = cls(family="binomial", lam=0.05).fit(X, y)
    eta = np.array([est.intercept_ + sum(X[i, j] * est.coef_[j] for j in range(X.shape[1]))
                    for i in range(X.shape[0])])
    np.testing.assert_allclose(est.decision_function(X), eta, rtol=0, atol=1e-12)
    mu = 1.0 / (1.0 + np.exp(-eta))
    proba = est.predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    np.testing.assert_allclose(proba[:, 1], mu, rtol=0, atol=1e-14)
    np.testing.assert_allclose(proba[:, 0], 1.0 - mu, rtol=0, atol=1e-14)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba), rtol=1e-12, atol=0)
    np.testing.assert_array_equal(est.predict(X), np.where(eta > 0, 1.0, 0.0))
    acc = float(np.mean(np.where(eta > 0, 1.0, 0.0) == y))
    assert est.score(X, y) == pytest.approx(acc, abs=1e-15)
    assert est.score(X, y) == pytest.approx(accuracy_score(y, est.predict(X)), abs=1e-15)


@pytest.mark.parametrize(
    ("labels", "dtype"),
    [((-1, 1), int), (("no", "yes"), object), ((2.0, 5.0), float), ((False, True), bool)],
)
def test_binomial_arbitrary_labels(labels, dtype):
    X, y01 = make_data("binomial")
    y = np.array([labels[int(v)] for v in y01], dtype=dtype)
    ref = GFGSM(family="binomial", lam=0.05).fit(X, y01)
    est = GFGSM(family="binomial", lam=0.05).fit(X, y)
    np.testing.assert_array_equal(est.classes_, np.array(labels, dtype=dtype))
    # classes_[1] plays y = 1: the fit is the 0/1 fit
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-12)
    assert est.intercept_ == pytest.approx(ref.intercept_, abs=1e-12)
    pred = est.predict(X)
    np.testing.assert_array_equal(pred, est.classes_[(est.decision_function(X) > 0).astype(int)])
    assert est.score(X, y) == pytest.approx(ref.score(X, y01), abs=1e-15)


def test_binomial_rejects_multiclass_and_single_class():
    X, _ = make_data("binomial", n=30)
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        GFGSM(family="binomial").fit(X, np.arange(30) % 3)
    with pytest.raises(ValueError, match="single class"):
        PenalizedGLM(family="binomial").fit(X, np.full(30, "a"))
    with pytest.raises(ValueError, match="Unknown label type"):
        GFGSM(family="binomial").fit(X, np.linspace(0, 1, 30))


def test_gaussian_predict_and_score_are_mean_and_r2():
    X, y = make_data("gaussian")
    est = GFGSM(family="gaussian", lam=0.1).fit(X, y)
    mu = est.intercept_ + X @ est.coef_
    np.testing.assert_allclose(est.predict(X), mu, rtol=0, atol=1e-12)
    r2 = 1.0 - np.sum((y - mu) ** 2) / np.sum((y - y.mean()) ** 2)
    assert est.score(X, y) == pytest.approx(r2, abs=1e-12)
    assert est.score(X, y) == pytest.approx(r2_score(y, est.predict(X)), abs=1e-15)


def test_poisson_predict_and_score_are_mean_and_deviance_d2():
    X, y = make_data("poisson")
    est = PenalizedGLM(family="poisson", lam=0.02).fit(X, y)
    mu = np.exp(est.intercept_ + X @ est.coef_)
    np.testing.assert_allclose(est.predict(X), mu, rtol=1e-13, atol=0)

    def dev(y, m):
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y / m, 1.0)), 0.0)
        return 2.0 * np.sum(ylogy - (y - m))

    d2 = 1.0 - dev(y, mu) / dev(y, np.full_like(y, y.mean()))
    assert est.score(X, y) == pytest.approx(d2, abs=1e-12)
    assert est.score(X, y) == pytest.approx(d2_tweedie_score(y, mu, power=1), abs=1e-15)


def test_nonconvergence_emits_convergence_warning():
    X, y = make_data("binomial")
    with pytest.warns(ConvergenceWarning):
        est = GFGSM(family="binomial", lam=0.05, max_iter=1).fit(X, y)
    assert est.converged_ is False
    assert est.status_ == "max_iter"


def test_fitted_attributes():
    X, y = make_data("poisson")
    est = GFGSM(family="poisson", lam=0.05, adversary="exact").fit(X, y)
    assert est.coef_.shape == (X.shape[1],) and est.coef_.dtype == np.float64
    assert isinstance(est.intercept_, float)
    assert isinstance(est.n_iter_, int) and est.n_iter_ >= 1
    assert est.converged_ is True and est.status_ == "converged"
    assert est.kkt_ < est.tol
    assert est.n_features_in_ == X.shape[1] and est.n_samples_fit_ == X.shape[0]


# --------------------------------------------------------------------------------------------
# 3. references
# --------------------------------------------------------------------------------------------

SM_FAMILY = {
    "gaussian": sm.families.Gaussian,
    "binomial": sm.families.Binomial,
    "poisson": sm.families.Poisson,
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("cls", [GFGSM, PenalizedGLM])
def test_lam_zero_is_the_statsmodels_mle(cls, family):
    X, y = make_data(family, seed=1)
    ref = sm.GLM(y, sm.add_constant(X), family=SM_FAMILY[family]()).fit(tol=1e-12)
    est = cls(family=family, lam=0.0).fit(X, y)
    assert est.converged_
    np.testing.assert_allclose(np.r_[est.intercept_, est.coef_], ref.params, rtol=0, atol=1e-6)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("lam", [0.01, 0.1, 0.4])
def test_penalized_gaussian_l1_is_sklearn_lasso(lam, fit_intercept):
    X, y = make_data("gaussian", seed=2)
    ref = Lasso(alpha=lam, fit_intercept=fit_intercept, tol=1e-14, max_iter=100_000).fit(X, y)
    est = PenalizedGLM(family="gaussian", lam=lam, fit_intercept=fit_intercept).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-6)
    assert est.intercept_ == pytest.approx(float(ref.intercept_), abs=1e-6)


_W = np.array([1.0, 0.5, 2.0, 1.0])
BATCH_CASES = {
    # id: (estimator class, family, estimator kwargs, extra fit_batch kwargs)
    "gfgsm-binomial": (GFGSM, "binomial", {"lam": 0.1}, {}),
    "gfgsm-gaussian": (GFGSM, "gaussian", {"lam": 0.1}, {}),
    "gfgsm-poisson": (GFGSM, "poisson", {"lam": 0.05}, {}),
    "gfgsm-poisson-exact": (GFGSM, "poisson", {"lam": 0.05, "adversary": "exact"}, {}),
    "gfgsm-binomial-mixed": (GFGSM, "binomial", {"lam": 0.2, "clean_weight": 0.3}, {}),
    "gfgsm-gaussian-scad": (
        GFGSM, "gaussian", {"lam": 0.2, "penalty": "scad", "penalty_params": {"a": 3.0}}, {}
    ),
    "gfgsm-binomial-lq": (GFGSM, "binomial", {"lam": 0.1, "scheme": get_scheme("lq", q=2)}, {}),
    "gfgsm-gaussian-noint": (GFGSM, "gaussian", {"lam": 0.1, "fit_intercept": False}, {}),
    "pl-binomial": (PenalizedGLM, "binomial", {"lam": 0.02}, {}),
    "pl-gaussian-lr": (
        PenalizedGLM, "gaussian", {"lam": 0.1, "penalty": "lr", "penalty_params": {"r": 1.5}}, {}
    ),
    "pl-poisson-mcp": (
        PenalizedGLM, "poisson", {"lam": 0.05, "penalty": "mcp", "penalty_params": {"gamma": 2.5}},
        {},
    ),
    "pl-gaussian-weighted": (
        PenalizedGLM, "gaussian",
        {"lam": 0.1, "penalty": "weighted_l1", "penalty_params": {"weights": _W}}, {},
    ),
    "pl-binomial-adaptive": (
        PenalizedGLM, "binomial",
        {"lam": 0.02, "penalty": "adaptive_l1", "penalty_params": {"gamma": 0.5}}, {},
    ),
}


@pytest.mark.parametrize("case", list(BATCH_CASES))
def test_estimator_equals_fit_batch(case):
    cls, family, kw, extra = BATCH_CASES[case]
    X, y = make_data(family, seed=3)
    est = cls(family=family, **kw).fit(X, y)
    method = "gfgsm" if cls is GFGSM else "pl"
    bkw = {k: v for k, v in kw.items() if k != "penalty_params"}
    bkw.update(kw.get("penalty_params", {}))
    fit = fit_batch(X, y, family=family, method=method, **bkw, **extra)
    assert est.coef_ == pytest.approx(to_numpy(fit.coef)[0], abs=1e-12)
    assert est.intercept_ == pytest.approx(float(to_numpy(fit.intercept)[0]), abs=1e-12)
    assert est.n_iter_ == int(to_numpy(fit.n_iter)[0])
    assert est.converged_ == bool(to_numpy(fit.converged)[0])
    assert est.objective_ == pytest.approx(float(to_numpy(fit.objective)[0]), abs=1e-12)
    assert est.kkt_ == pytest.approx(float(to_numpy(fit.kkt)[0]), abs=1e-12)
    assert est.status_ == fit.status[0]


def test_penalty_params_reach_the_penalty_and_are_not_modified():
    X, y = make_data("gaussian", seed=4)
    pp = {"a": 2.5}
    est = GFGSM(family="gaussian", lam=0.3, penalty="scad", penalty_params=pp)
    assert est.get_params()["penalty_params"] is pp
    est.fit(X, y)
    assert pp == {"a": 2.5}
    other = GFGSM(family="gaussian", lam=0.3, penalty="scad", penalty_params={"a": 6.0}).fit(X, y)
    assert np.max(np.abs(est.coef_ - other.coef_)) > 1e-4  # a is not ignored


# --------------------------------------------------------------------------------------------
# 4. the scikit-learn protocol
# --------------------------------------------------------------------------------------------


def test_clone_get_params_set_params():
    est = GFGSM(family="poisson", lam=0.2, penalty="mcp", penalty_params={"gamma": 2.0})
    params = est.get_params()
    assert params["lam"] == 0.2 and params["family"] == "poisson"
    twin = clone(est)
    assert twin is not est and twin.get_params().keys() == params.keys()
    assert twin.penalty_params == {"gamma": 2.0}
    assert est.set_params(lam=0.5, family="binomial") is est
    assert est.lam == 0.5 and is_classifier(est)


def test_grid_search_over_lam():
    X, y = make_data("binomial", n=150, seed=5)
    grid = {"lam": [0.0, 0.02, 0.1, 0.3]}
    gs = GridSearchCV(GFGSM(family="binomial"), grid, cv=3).fit(X, y)
    assert gs.best_params_["lam"] in grid["lam"]
    ref = GFGSM(family="binomial", lam=gs.best_params_["lam"]).fit(X, y)
    np.testing.assert_allclose(gs.best_estimator_.coef_, ref.coef_, rtol=0, atol=1e-12)
    # regressor: default scoring is score (R^2), and penalty parameters can be tuned too
    Xg, yg = make_data("gaussian", n=150, seed=5)
    gs = GridSearchCV(
        PenalizedGLM(family="gaussian", penalty="scad"),
        {"lam": [0.05, 0.2], "penalty_params": [{"a": 3.0}, {"a": 3.7}]}, cv=3,
    ).fit(Xg, yg)
    assert gs.best_params_["penalty_params"] in ({"a": 3.0}, {"a": 3.7})
    assert np.isfinite(gs.best_score_)


BAD_PARAMS = [
    (GFGSM, {"lam": -0.1}, "lam"),
    (GFGSM, {"lam": float("nan")}, "lam"),
    (PenalizedGLM, {"lam": "0.1"}, "lam"),
    (GFGSM, {"family": "gamma"}, "family"),
    (PenalizedGLM, {"family": "student"}, "family"),
    (GFGSM, {"penalty": "elasticnet"}, "penalty"),
    (PenalizedGLM, {"penalty": "ridge"}, "penalty"),
    (PenalizedGLM, {"penalty": "lr"}, "needs parameter.* r"),
    (PenalizedGLM, {"penalty": "scad", "penalty_params": {"b": 1.0}}, "unexpected parameter.* b"),
    (GFGSM, {"penalty_params": {"tol": 1.0}}, "penalty_params"),
    (GFGSM, {"penalty_params": [("r", 1.0)]}, "penalty_params"),
    (GFGSM, {"tol": 0.0}, "tol"),
    (GFGSM, {"max_iter": 0}, "max_iter"),
    (PenalizedGLM, {"max_iter": 2.5}, "max_iter"),
    (PenalizedGLM, {"fit_intercept": "yes"}, "fit_intercept"),
    (GFGSM, {"clean_weight": 1.5}, "clean_weight"),
    (GFGSM, {"adversary": "pgd"}, "adversary"),
    (GFGSM, {"scheme": "zigzag"}, "scheme"),
    (GFGSM, {"backend": "jax"}, "backend"),
]


@pytest.mark.parametrize(("cls", "kw", "match"), BAD_PARAMS)
def test_bad_parameters_raise_at_fit_naming_the_parameter(cls, kw, match):
    kw = {"family": "gaussian", **kw}
    est = cls(**kw)  # __init__ only stores
    for k, v in kw.items():
        assert getattr(est, k) is v
    X, y = make_data("gaussian", n=30)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)


# --------------------------------------------------------------------------------------------
# 5. summary
# --------------------------------------------------------------------------------------------


def test_summary_table():
    X, y = make_data("binomial", seed=6)
    df = pd.DataFrame(X, columns=["age", "dose", "sex", "site"])
    est = GFGSM(family="binomial", lam=0.07).fit(df, y)
    text = est.summary()
    assert isinstance(text, str)
    for field in ("GFGSM Results", "Family:", "binomial", "Method:", "G-FGSM", "Penalty:", "l1",
                  "lam:", "0.07", "No. Observations:", "120", "No. Features:", "Converged:",
                  "True", "No. Iterations:", "KKT residual:", "Objective:", "Adversary:",
                  "intercept", "standard errors"):
        assert field in text, field
    lines = text.splitlines()
    for name, c in [("intercept", est.intercept_), *zip(df.columns, est.coef_, strict=True)]:
        row = next(ln for ln in lines if ln.split() and ln.split()[0] == name)
        assert float(row.split()[1]) == pytest.approx(c, rel=1e-5)
    assert str(est.n_iter_) in text and f"{est.objective_:.10g}" in text

    plain = PenalizedGLM(family="gaussian", lam=0.1, fit_intercept=False).fit(X, y)
    text = plain.summary()
    assert "Penalized likelihood" in text and "x4" in text and "intercept" not in text
    with pytest.raises(NotFittedError):
        PenalizedGLM().summary()
