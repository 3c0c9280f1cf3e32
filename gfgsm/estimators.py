"""The scikit-learn estimators ``GFGSM`` and ``PenalizedGLM`` (one problem each).

They validate with scikit-learn's helpers and call :func:`gfgsm.batch.fit_batch` with ``R = 1``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ._backend import to_numpy
from .batch import fit_batch
from .families import get_family

__all__ = ["GFGSM", "PenalizedGLM"]


class _GLMBase(BaseEstimator):
    _method = ""

    def _fit_options(self) -> dict:
        return {}

    def fit(self, X: Any, y: Any, sample_weight: None = None) -> _GLMBase:
        """Fit on ``X`` (n, p) and ``y`` (n,); returns ``self``."""
        fam = get_family(self.family)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        if fam.name == "binomial":
            classes = np.unique(y)
            if type_of_target(y) not in ("binary",) and len(classes) != 1:
                raise ValueError(
                    f"binomial {type(self).__name__} needs a binary y; got classes {classes[:5]}"
                )
            if len(classes) == 1:
                raise ValueError(
                    f"binomial y has a single class {classes[0]!r}; need 2 classes"
                )
            self.classes_ = classes
            y = (y == classes[1]).astype(np.float64)
        if not (isinstance(self.lam, int | float) and math.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lam must be a finite number >= 0, got {self.lam!r}")
        fit = fit_batch(
            X, y, family=fam, method=self._method, lam=float(self.lam), penalty=self.penalty,
            fit_intercept=self.fit_intercept, backend=self.backend, tol=self.tol,
            max_iter=self.max_iter, **self._fit_options(),
        )
        self.coef_ = to_numpy(fit.coef)[0].copy()
        self.intercept_ = float(to_numpy(fit.intercept)[0])
        self.n_iter_ = int(to_numpy(fit.n_iter)[0])
        self.converged_ = bool(to_numpy(fit.converged)[0])
        self.kkt_ = float(to_numpy(fit.kkt)[0])
        self.objective_ = float(to_numpy(fit.objective)[0])
        self.status_ = str(fit.status[0])
        self.family_ = fam
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """The linear predictor ``eta = a + X beta``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.intercept_ + X @ self.coef_

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (binomial) or the mean ``mu`` (gaussian, poisson)."""
        eta = self.decision_function(X)
        if self.family_.name == "binomial":
            return self.classes_[(eta > 0).astype(int)]
        self.family_.check_eta(eta)
        return to_numpy(self.family_.mean(eta))

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(1 - mu, mu)`` per row (binomial only)."""
        if get_family(self.family).name != "binomial":
            raise AttributeError("predict_proba is defined for family='binomial' only")
        mu = to_numpy(self.family_.mean(self.decision_function(X)))
        return np.column_stack([1.0 - mu, mu])

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (binomial) or the fraction of deviance explained ``D^2`` (gaussian, poisson)."""
        if get_family(self.family).name == "binomial":
            return ClassifierMixin.score(self, X, y, sample_weight)
        from sklearn.metrics import d2_tweedie_score

        power = 0 if get_family(self.family).name == "gaussian" else 1
        return float(d2_tweedie_score(y, self.predict(X), sample_weight=sample_weight, power=power))

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        fam = get_family(self.family).name
        if fam == "binomial":
            tags.estimator_type = "classifier"
            from sklearn.utils import ClassifierTags

            tags.classifier_tags = ClassifierTags(multi_class=False)
            tags.regressor_tags = None
        else:
            from sklearn.utils import RegressorTags

            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.classifier_tags = None
        if fam == "poisson":
            tags.target_tags.positive_only = True
        return tags


class GFGSM(_GLMBase):
    """Generalized FGSM estimator of a GLM (THEORY.md s.3): ``argmin Q_n``.

    ``Q_n(theta) = (1/n) sum_i l(y_i, eta_i - s_i P_lam(beta))``, ``s_i = sign(y_i - mu_i)``;
    for ``penalty="l1"`` this is FGSM adversarial training with budget ``eps = lam``.
    ``clean_weight`` mixes in the clean loss (Goodfellow et al.), ``adversary="exact"`` uses the
    worst case over the l_inf ball, ``scheme`` replaces the penalty by a gradient scheme's
    induced penalty (THEORY.md s.6).
    """

    _method = "gfgsm"

    def __init__(
        self,
        family: str = "binomial",
        lam: float = 0.1,
        penalty: str = "l1",
        scheme: Any = None,
        adversary: str = "fgsm",
        clean_weight: float = 0.0,
        fit_intercept: bool = True,
        backend: str | None = None,
        tol: float = 1e-9,
        max_iter: int = 200,
    ) -> None:
        self.family = family
        self.lam = lam
        self.penalty = penalty
        self.scheme = scheme
        self.adversary = adversary
        self.clean_weight = clean_weight
        self.fit_intercept = fit_intercept
        self.backend = backend
        self.tol = tol
        self.max_iter = max_iter

    def _fit_options(self) -> dict:
        return {"scheme": self.scheme, "adversary": self.adversary,
                "clean_weight": self.clean_weight}


class PenalizedGLM(_GLMBase):
    """Penalized likelihood GLM (THEORY.md s.3): ``argmin (1/n) sum_i l(y_i, eta_i) + P_lam(beta)``.

    On the ``phi = 1`` scale: for gaussian ``(1/2n)||y - a - X b||^2 + lam ||b||_1`` is
    scikit-learn's ``Lasso(alpha=lam)``; for binomial it is ``LogisticRegression`` with
    ``C = 1 / (n lam)`` and an unpenalized intercept.
    """

    _method = "pl"

    def __init__(
        self,
        family: str = "gaussian",
        lam: float = 0.1,
        penalty: str = "l1",
        fit_intercept: bool = True,
        backend: str | None = None,
        tol: float = 1e-9,
        max_iter: int = 200,
    ) -> None:
        self.family = family
        self.lam = lam
        self.penalty = penalty
        self.fit_intercept = fit_intercept
        self.backend = backend
        self.tol = tol
        self.max_iter = max_iter


# The mixins only contribute tags and ``score``; keep them out of the MRO to let one class
# serve every family (the estimator type is set per family in __sklearn_tags__).
_ = (ClassifierMixin, RegressorMixin)
