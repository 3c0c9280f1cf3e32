"""The scikit-learn estimators ``GFGSM`` and ``PenalizedGLM`` (one problem each).

Both are thin wrappers around :func:`gfgsm.batch.fit_batch` with ``R = 1``: they validate with
scikit-learn's helpers (``validate_data``, ``check_is_fitted``), call ``fit_batch`` and copy its
result to the usual fitted attributes.  ``lam`` is docs/theory.md's lambda everywhere; for the l1
G-FGSM it is the FGSM budget ``eps``.

**One class for every family.**  ``family`` is a constructor parameter (so it can be tuned, cloned
and set like any other), and the scikit-learn estimator type follows it through the tags:
``family="binomial"`` is a binary *classifier* (``classes_``, ``predict`` returns labels,
``decision_function``, ``predict_proba``, ``predict_log_proba``, ``score`` is the accuracy);
``"gaussian"`` and ``"poisson"`` are *regressors* (``predict`` returns the mean ``mu``, and the
classifier-only methods are absent, as scikit-learn requires of regressors).

**Observation weights.**  ``fit(X, y, sample_weight=w)`` minimises the weighted mean
``sum_i w_i psi_i / sum_i w_i`` (:func:`~gfgsm.batch.fit_batch`): integer weights give the fit on
repeated rows, as scikit-learn's sample-weight checks require.  The debiased inference is derived
for the unweighted likelihood, so a weighted fit has none (its attributes say why).

**score.**  Binomial: accuracy (``ClassifierMixin``).  Gaussian: ``R^2`` (``RegressorMixin``; it
equals the fraction of deviance explained ``D^2`` for this family).  Poisson: ``D^2`` with the
Poisson deviance, ``sklearn.metrics.d2_tweedie_score(power=1)``, as ``sklearn``'s
``PoissonRegressor`` does: ``R^2`` weights the squared errors of large counts too heavily for
a model of ``log mu``, and ``D^2`` is the same "1 - fitted / null" ratio on the likelihood's own
scale.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score, d2_tweedie_score, r2_score
from sklearn.utils import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import intervals as _intervals
from ._backend import to_numpy
from ._validation import is_real, positive_int, real_in
from .batch import fit_batch
from .families import Family, get_family, sigmoid
from .inference import check_alpha, check_cov_type, one_step
from .objectives import ADVERSARIES

__all__ = ["GFGSM", "PenalizedGLM"]

# fit_batch's own keywords: a ``penalty_params`` key among them would silently replace an
# estimator parameter (``weights`` is the exception: it is the weighted/adaptive l1 weights).
_RESERVED = frozenset(
    {
        "X", "y", "family", "method", "lam", "penalty", "fit_intercept", "backend", "scheme",
        "adversary", "clean_weight", "tol", "max_iter", "init", "warn",
    }
)


def _family_or_none(family: Any) -> Family | None:
    """The family, or ``None`` for an invalid ``family`` (fit raises the error)."""
    try:
        return get_family(family)
    except (ValueError, TypeError, AttributeError):
        return None


def _is_binomial(est: Any) -> bool:
    fam = _family_or_none(est.family)
    return fam is not None and fam.is_binary


class _GLMBase(BaseEstimator):
    """Validation, fitting, prediction and tags shared by both estimators."""

    _method = ""
    _method_label = ""

    # --- parameters (validated at fit, never in __init__) --------------------------------------
    def _check_params(self) -> tuple[Family, dict[str, Any]]:
        fam = get_family(self.family)  # ValueError: unknown family 'x'; expected one of [...]
        lam = self.lam
        real_in("lam", lam, 0, rule="a finite number >= 0")
        if not isinstance(self.fit_intercept, bool | np.bool_):
            raise ValueError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")
        if not (is_real(self.tol) and self.tol > 0):
            raise ValueError(f"tol must be a positive number, got {self.tol!r}")
        positive_int("max_iter", self.max_iter)
        pp = self.penalty_params
        if pp is None:
            pp = {}
        elif not isinstance(pp, Mapping):
            raise ValueError(f"penalty_params must be a dict or None, got {pp!r}")
        bad = sorted(str(k) for k in pp if not isinstance(k, str) or k in _RESERVED)
        if bad:
            raise ValueError(
                f"penalty_params may not contain {bad}: give these as estimator parameters"
            )
        opts: dict[str, Any] = dict(
            family=fam, method=self._method, lam=float(lam), penalty=self.penalty,
            fit_intercept=bool(self.fit_intercept), backend=self.backend, tol=float(self.tol),
            max_iter=int(self.max_iter),
        )
        opts.update(self._extra_options())
        opts.update(pp)  # a copy: the caller's dict is never modified
        return fam, opts

    def _extra_options(self) -> dict[str, Any]:
        return {}

    # --- fit ------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _GLMBase:
        """Fit on ``X`` (n, p) and ``y`` (n,), with optional observation weights
        ``sample_weight`` (n,) >= 0 (frequency-weight semantics); returns ``self``.

        Binomial: ``y`` holds exactly two labels of any type; ``classes_[1]`` is the event
        (``y = 1`` in docs/theory.md).  Gaussian: real ``y``.  Poisson: counts ``y`` in {0, 1, ...}.
        Emits :class:`sklearn.exceptions.ConvergenceWarning` when the solver does not converge
        (``converged_`` and ``status_`` then say why).
        """
        fam, opts = self._check_params()
        if fam.is_binary:
            X, y = validate_data(self, X, y, dtype=np.float64)
            check_classification_targets(y)
            y_type = type_of_target(y, input_name="y")
            classes, y01 = np.unique(y, return_inverse=True)
            if classes.size < 2:
                raise ValueError(
                    f"binomial {type(self).__name__} needs 2 classes in y, but y has a single "
                    f"class {classes[0]!r}: one class cannot be fitted"
                )
            if y_type != "binary":
                raise ValueError(
                    "Only binary classification is supported. The type of the target is "
                    f"{y_type} ({classes.size} classes); wrap the estimator in "
                    "sklearn.multiclass.OneVsRestClassifier for more classes."
                )
            self.classes_ = classes
            y = y01.astype(np.float64)
        else:
            X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
            opts["sample_weight"] = sample_weight
        fit = fit_batch(X, y, **opts)
        self.coef_ = np.array(to_numpy(fit.coef)[0], dtype=np.float64)
        self.intercept_ = float(to_numpy(fit.intercept)[0])
        self.n_iter_ = int(to_numpy(fit.n_iter)[0])
        self.converged_ = bool(to_numpy(fit.converged)[0])
        self.kkt_ = float(to_numpy(fit.kkt)[0])
        self.objective_ = float(to_numpy(fit.objective)[0])
        self.status_ = str(fit.status[0])
        self.penalty_name_ = str(fit.penalty)
        self.family_ = fam
        self.n_samples_fit_ = int(X.shape[0])
        self._inference = self._debias(fit, X, y, fam)
        # the limit-law and bootstrap intervals need the fit and its data (statsmodels keeps
        # them too); the Wald ones do not
        self._inference_data = (fit, X, y)
        return self

    # --- debiased inference ---------------------------------------------------------------------
    def _debias(self, fit: Any, X: np.ndarray, y: np.ndarray, fam: Family) -> dict[str, Any]:
        """Both covariances of the one-step estimate, or the reason there is none (kept as a
        message and raised on access: a fit never fails because of its inference)."""
        if not self.converged_:
            return {"error": f"the fit did not converge (status {self.status_!r}), so there is "
                             "no debiased estimate or standard error"}
        try:
            params, covs, scale, _, _ = one_step(fit, X, y, fit_intercept=bool(self.fit_intercept),
                                                 family=fam)
        except (ValueError, np.linalg.LinAlgError) as exc:
            return {"error": str(exc)}
        out: dict[str, Any] = {ct: np.array(to_numpy(c)[0], dtype=np.float64)
                               for ct, c in covs.items()}
        out["params"] = np.array(to_numpy(params)[0], dtype=np.float64)
        out["scale"] = float(to_numpy(scale)[0])
        return out

    def _inference_result(self) -> dict[str, Any]:
        check_is_fitted(self)
        res = self.__dict__.get("_inference")
        if res is None:
            raise ValueError("no debiased inference: refit the estimator")
        if "error" in res:
            raise ValueError(f"no debiased inference for this fit: {res['error']}")
        return res

    @property
    def params_debiased_(self) -> np.ndarray:
        """(q,) one-step debiased estimate ``theta_tilde``, the intercept first (when
        ``fit_intercept``); docs/theory.md s.5, "Debiased inference"."""
        return self._inference_result()["params"].copy()

    @property
    def intercept_debiased_(self) -> float:
        """The debiased intercept (0.0 without an intercept)."""
        return float(self.params_debiased_[0]) if self.fit_intercept else 0.0

    @property
    def coef_debiased_(self) -> np.ndarray:
        """(p,) the debiased slopes."""
        return self.params_debiased_[int(bool(self.fit_intercept)):]

    @property
    def scale_(self) -> float:
        """The dispersion of the non-robust covariance (gaussian: ``RSS / (n - p - 1)``)."""
        return float(self._inference_result()["scale"])

    @property
    def bse_(self) -> np.ndarray:
        """(q,) non-robust standard errors of :attr:`params_debiased_` (intercept first)."""
        return np.sqrt(np.diag(self.cov_params()))

    @property
    def zvalues_(self) -> np.ndarray:
        """(q,) Wald statistics ``params_debiased_ / bse_``."""
        return self.params_debiased_ / self.bse_

    @property
    def tvalues_(self) -> np.ndarray:
        """statsmodels' name for :attr:`zvalues_` (normal reference, not Student t)."""
        return self.zvalues_

    @property
    def pvalues_(self) -> np.ndarray:
        """(q,) two-sided normal p-values of :attr:`zvalues_`."""
        from scipy import stats

        return 2.0 * stats.norm.sf(np.abs(self.zvalues_))

    def cov_params(self, cov_type: str = "nonrobust") -> np.ndarray:
        """(q, q) covariance of :attr:`params_debiased_`: ``"nonrobust"`` (``phi_hat H^{-1} / n``)
        or ``"HC0"`` (the sandwich ``H^{-1} J H^{-1} / n``)."""
        ct = check_cov_type(cov_type)
        return self._inference_result()[ct].copy()

    def conf_int(self, alpha: float = 0.05, method: str = "debiased",
                 cov_type: str = "nonrobust", **options: Any) -> np.ndarray:
        """(q, 2) intervals at level ``1 - alpha``, the intercept first (docs/theory.md s.5).

        ``method``:

        * ``"debiased"`` (default): Wald intervals ``params_debiased_ -+ z_{1 - alpha/2} se``
          (``cov_type`` ``"nonrobust"`` or ``"HC0"``), valid at zeros too;
        * ``"limit"``: the plug-in limit law of the penalized estimate ``theta_hat`` with a
          thresholded zero pattern; ``"bootstrap"``: the perturbation bootstrap of it (l1
          fits only; pointwise valid only, Leeb & Poetscher 2005);
        * ``"naive"``: ``theta_hat -+ z se``, shown to fail (it ignores the shrinkage).

        ``options`` go to :func:`gfgsm.intervals.conf_int` (``n_draws``, ``B``, ``threshold``,
        ``seed``).
        """
        a = check_alpha(alpha)
        m = _intervals.check_method(method)
        ct = check_cov_type(cov_type)
        if m == "debiased":
            if options:
                raise TypeError(f"method='debiased' takes no options, got {sorted(options)}")
            from scipy import stats

            se = np.sqrt(np.diag(self.cov_params(ct)))
            params = self.params_debiased_
            half = float(stats.norm.ppf(1.0 - a / 2.0)) * se
            return np.column_stack([params - half, params + half])
        self._inference_result()  # the reason, where there is no inference
        fit, X, y = self._inference_data
        ci = _intervals.conf_int(fit, X, y, m, a, cov_type=ct,
                                 fit_intercept=bool(self.fit_intercept), **options)
        return np.column_stack([np.asarray(to_numpy(ci.lower), dtype=np.float64)[0],
                                np.asarray(to_numpy(ci.upper), dtype=np.float64)[0]])

    # --- prediction -----------------------------------------------------------------------------
    def _eta(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.intercept_ + X @ self.coef_

    @available_if(_is_binomial)
    def decision_function(self, X: Any) -> np.ndarray:
        """The linear predictor ``eta = a + X beta`` (the log-odds of ``classes_[1]``)."""
        return self._eta(X)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (binomial: ``classes_[1]`` where ``eta > 0``) or the mean ``mu``."""
        eta = self._eta(X)
        if self.family_.is_binary:
            return self.classes_[(eta > 0).astype(np.intp)]
        self.family_.check_eta(eta)  # poisson: FloatingPointError instead of a silent inf
        return np.asarray(to_numpy(self.family_.mean(eta)), dtype=np.float64)

    @available_if(_is_binomial)
    def predict_proba(self, X: Any) -> np.ndarray:
        """``(1 - mu, mu)`` per row, ``mu = sigmoid(eta)`` the probability of ``classes_[1]``."""
        eta = self._eta(X)
        mu = np.asarray(to_numpy(sigmoid(eta)))
        e = np.asarray(to_numpy(sigmoid(-eta)))  # 1 - mu without cancellation
        return np.column_stack([e, mu])

    @available_if(_is_binomial)
    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log`` of :meth:`predict_proba`, computed as ``-softplus(-+eta)`` (no underflow)."""
        eta = self._eta(X)
        return np.column_stack([-np.logaddexp(0.0, eta), -np.logaddexp(0.0, -eta)])

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (binomial), ``R^2`` (gaussian) or Poisson ``D^2`` (poisson); see the module."""
        pred = self.predict(X)
        fam = self.family_
        if fam.is_binary:
            return float(accuracy_score(y, pred, sample_weight=sample_weight))
        if fam.tweedie_power == 0:  # D^2 of the squared error is R^2
            return float(r2_score(y, pred, sample_weight=sample_weight))
        return float(d2_tweedie_score(y, pred, sample_weight=sample_weight,
                                      power=fam.tweedie_power))

    # --- summary --------------------------------------------------------------------------------
    def summary(self) -> str:
        """A text table of the fit in the style of statsmodels' ``summary()``.

        Header: family, method, lam, penalty, n, p, converged, iterations, KKT residual,
        objective and solver status; then, with the intercept first, the penalized coefficient
        (``coef``), the one-step debiased coefficient, its non-robust standard error, ``z``,
        ``P>|z|`` and the 95% interval.  The tests and intervals are those of the debiased
        estimate (essentially MLE-Wald inference, docs/theory.md s.5, "Debiased inference"),
        never of the penalized one: its limit law is not Gaussian when coefficients are zero
        and G-FGSM carries the sign-neutrality bias ``lam0 ||beta0||_1 I^{-1} V``.  Where
        there is no debiased inference (no convergence, ``p + 1 >= n``, singular ``H``) only
        ``coef`` is printed, with the reason.
        """
        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = [f"x{j + 1}" for j in range(self.coef_.shape[0])]
        rows = [("intercept", self.intercept_)] if self.fit_intercept else []
        rows += [(str(nm), float(c)) for nm, c in zip(names, self.coef_, strict=True)]
        pen = self.penalty_name_
        left = [
            ("Family:", self.family_.name),
            ("Method:", self._method_label),
            ("Penalty:", pen),
            ("lam:", f"{self.lam:.6g}"),
            ("Converged:", str(self.converged_)),
            ("Status:", self.status_),
        ]
        right = [
            ("No. Observations:", str(self.n_samples_fit_)),
            ("No. Features:", str(self.coef_.shape[0])),
            ("No. Iterations:", str(self.n_iter_)),
            ("KKT residual:", f"{self.kkt_:.4g}"),
            ("Objective:", f"{self.objective_:.10g}"),
            ("Nonzero coef:", str(int(np.count_nonzero(self.coef_)))),
        ]
        extra = self._summary_extra()
        if extra:
            left += extra
            right += [("", "")] * len(extra)
        width = 78
        half = width // 2
        lines = [f"{type(self).__name__} Results".center(width), "=" * width]
        for (lk, lv), (rk, rv) in zip(left, right, strict=True):
            lcell = f"{lk:<16}{lv:>{half - 18}}"
            rcell = f"{rk:<20}{rv:>{width - half - 20}}" if rk else ""
            lines.append(f"{lcell}  {rcell}".rstrip())
        name_w = max(12, *(len(nm) for nm, _ in rows)) if rows else 12
        try:
            deb = self.params_debiased_
            se, z, pv, ci = self.bse_, self.zvalues_, self.pvalues_, self.conf_int(0.05)
            reason = ""
        except ValueError as exc:
            reason = str(exc)
        if reason:
            lines += ["=" * width, f"{'':<{name_w}}{'coef':>16}", "-" * width]
            lines += [f"{nm:<{name_w}}{c:>16.6g}" for nm, c in rows]
            lines += ["=" * width, "Notes: no standard errors, tests or confidence intervals:"]
            lines += textwrap.wrap(reason, width)
            return "\n".join(lines)
        name_w = max(8, *(len(nm) for nm, _ in rows)) if rows else 8
        head = (f"{'':<{name_w}}{'coef':>12}{'debiased':>11}{'std err':>10}{'z':>8}"
                f"{'P>|z|':>6}{'[0.025':>11}{'0.975]':>11}")
        lines += ["=" * width, head, "-" * width]
        for k, (nm, c) in enumerate(rows):
            lines.append(f"{nm:<{name_w}}{c:>12.6g}{deb[k]:>11.4g}{se[k]:>10.4g}{z[k]:>8.2f}"
                         f"{pv[k]:>6.3f}{ci[k, 0]:>11.4g}{ci[k, 1]:>11.4g}")
        lines += [
            "=" * width,
            "Notes: 'coef' is the penalized estimate; standard errors, z, P>|z| and the",
            "interval are those of the one-step debiased estimate 'debiased' (a Newton step",
            "on the unpenalized likelihood; non-robust covariance): essentially MLE-Wald",
            "inference, pointwise in theta0 (docs/theory.md s.5, Debiased inference).",
        ]
        return "\n".join(lines)

    def _summary_extra(self) -> list[tuple[str, str]]:
        return []

    # --- tags -----------------------------------------------------------------------------------
    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        fam = _family_or_none(self.family)
        if fam is not None and fam.is_binary:
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=False)
            tags.regressor_tags = None
        else:
            # gaussian, poisson (and an invalid family, whose error is raised by fit)
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.classifier_tags = None
        if fam is not None and fam.tweedie_power is not None and fam.tweedie_power >= 1:
            tags.target_tags.positive_only = True  # Tweedie powers >= 1 need y >= 0
        return tags


class GFGSM(_GLMBase):
    """Generalized FGSM estimator of a GLM (docs/theory.md s.3): ``theta_hat = argmin Q_n``.

    ``Q_n(theta) = (1/n) sum_i l(y_i, eta_i - s_i P_lam(beta))``, ``s_i = sign(y_i - mu_i)``.
    For ``penalty="l1"`` this is FGSM adversarial training with budget ``eps = lam``: the exact
    closed form of training on ``x_i + eps sign(grad_x l)`` (docs/theory.md s.2).

    Parameters
    ----------
    family : ``"binomial"`` (a binary classifier), ``"gaussian"`` or ``"poisson"`` (regressors),
        or a :class:`gfgsm.Family` instance.
    lam : the penalty level ``lambda >= 0`` (``eps`` for the l1 penalty).
    penalty : ``"l1"``, ``"lr"``, ``"scad"``, ``"mcp"``, ``"weighted_l1"``, ``"adaptive_l1"``
        or a :class:`~gfgsm.penalties.Penalty` instance.
    penalty_params : dict or None
        The penalty's own parameters, passed to :func:`~gfgsm.batch.fit_batch`:
        ``{"r": 0.5}`` for ``"lr"``, ``{"a": 3.7}`` for ``"scad"``, ``{"gamma": 3.0}`` for
        ``"mcp"``, ``{"weights": w}`` for ``"weighted_l1"`` and ``{"gamma": 1.0,
        "pilot_lam": 0.0}`` or ``{"weights": w}`` for ``"adaptive_l1"``.  One dict rather than
        one constructor argument per penalty parameter: the parameters differ between penalties
        (``gamma`` even means different things for MCP and adaptive l1, with different
        defaults), so explicit arguments would either carry misleading defaults or be ``None``
        for every penalty but one.  The dict is stored as given (and never modified), so
        ``GridSearchCV`` can still tune it: ``{"penalty_params": [{"a": 3.0}, {"a": 3.7}]}``.
    scheme : ``None`` or a gradient scheme (docs/theory.md s.6): ``"sign"`` or a
        :class:`~gfgsm.schemes.Scheme` instance such as ``gfgsm.get_scheme("lq", q=2)``; its
        induced penalty replaces ``penalty`` (which must then stay ``"l1"``).
    adversary : ``"auto"`` (default: the exact worst case over the l_inf ball, reached by the
        sign perturbation for gaussian and binomial), ``"fgsm"`` (the sign perturbation: for
        poisson a discontinuous objective that can have no minimiser, flagged
        ``"sign_cycle"``) or ``"exact"`` (the worst case; convex for poisson).
    clean_weight : Goodfellow's ``alpha`` in ``alpha l(x) + (1 - alpha) l(x_adv)``, in [0, 1].
    fit_intercept : fit the (never penalized, never perturbed) intercept ``a``.
    backend : ``None``/``"numpy"``, ``"cupy"`` or ``"array_api_strict"``; results are NumPy.
    tol : KKT (stationarity) tolerance; ``max_iter`` : Newton iterations.

    Attributes
    ----------
    coef_ : (p,) slopes ``beta``.  intercept_ : float ``a`` (0 without intercept).
    classes_ : the two labels (binomial only); ``classes_[1]`` plays ``y = 1``.
    n_iter_, converged_, kkt_, objective_, status_ : solver diagnostics (see
        :class:`~gfgsm.batch.BatchFit`).
    family_ : the :class:`~gfgsm.families.Family` used.  n_features_in_, feature_names_in_,
    n_samples_fit_ : as in scikit-learn.
    params_debiased_ : (q,) the one-step debiased estimate (docs/theory.md s.5, "Debiased
        inference"), the intercept first; ``q = p + fit_intercept``.  ``intercept_debiased_``,
        ``coef_debiased_`` : its parts.  bse_, zvalues_ (alias tvalues_), pvalues_ : (q,)
        non-robust standard errors, Wald z and two-sided normal p-values; scale_ : the
        dispersion (gaussian ``RSS / (n - p - 1)``).  ``cov_params(cov_type)`` and
        ``conf_int(alpha, method, cov_type)`` (q, 2) follow statsmodels (``cov_type``
        ``"nonrobust"`` or ``"HC0"``; ``method`` ``"debiased"``, ``"limit"``, ``"bootstrap"``
        or ``"naive"``).  These raise ``ValueError`` with the reason where the fit
        did not converge, ``p + 1 >= n`` or ``H`` is singular.
    """

    _method = "gfgsm"
    _method_label = "G-FGSM (min Q_n)"

    def __init__(
        self,
        family: str | Family = "binomial",
        lam: float = 0.1,
        penalty: Any = "l1",
        scheme: Any = None,
        adversary: str = "auto",
        clean_weight: float = 0.0,
        fit_intercept: bool = True,
        backend: str | None = None,
        tol: float = 1e-9,
        max_iter: int = 200,
        penalty_params: dict | None = None,
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
        self.penalty_params = penalty_params

    def _extra_options(self) -> dict[str, Any]:
        real_in("clean_weight", self.clean_weight, 0, 1)
        if self.adversary not in ADVERSARIES:
            raise ValueError(f"adversary must be one of {ADVERSARIES}, got {self.adversary!r}")
        return {
            "scheme": self.scheme,
            "adversary": self.adversary,
            "clean_weight": float(self.clean_weight),
        }

    def _summary_extra(self) -> list[tuple[str, str]]:
        extra = [("Adversary:", str(self.adversary)), ("Clean weight:", f"{self.clean_weight:g}")]
        if self.scheme is not None:
            extra.append(("Scheme:", str(self.scheme)))
        return extra


class PenalizedGLM(_GLMBase):
    """Penalized likelihood GLM: ``argmin (1/n) sum_i l(y_i, eta_i) + P_lam(beta)`` (theory s.3).

    The comparator of :class:`GFGSM`, on the ``phi = 1`` scale: for gaussian with the l1 penalty
    ``(1/2n)||y - a - X b||^2 + lam ||b||_1`` is scikit-learn's ``Lasso(alpha=lam)``; for binomial
    it is ``LogisticRegression(l1_ratio=1, C=1 / (n lam))`` with an unpenalized intercept.

    Parameters and attributes are those of :class:`GFGSM` without ``scheme``, ``adversary`` and
    ``clean_weight`` (which only make sense for the adversarial objective).
    """

    _method = "pl"
    _method_label = "Penalized likelihood"

    def __init__(
        self,
        family: str | Family = "gaussian",
        lam: float = 0.1,
        penalty: Any = "l1",
        fit_intercept: bool = True,
        backend: str | None = None,
        tol: float = 1e-9,
        max_iter: int = 200,
        penalty_params: dict | None = None,
    ) -> None:
        self.family = family
        self.lam = lam
        self.penalty = penalty
        self.fit_intercept = fit_intercept
        self.backend = backend
        self.tol = tol
        self.max_iter = max_iter
        self.penalty_params = penalty_params
