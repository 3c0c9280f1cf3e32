"""``GFGSMNetwork``: a scikit-learn estimator of adversarially trained networks.

Theory: docs/theory.md s.6.

A thin wrapper around :func:`gfgsm.nn.training.train_networks` in the style of scikit-learn's
``MLPClassifier`` / ``MLPRegressor``: validation with scikit-learn's helpers, then one batched
training run of ``n_restarts`` networks on the same data (different initialisations, splits and
mini-batch orders, all trained at once), of which the best is kept: the lowest adversarial
validation loss with ``early_stopping``, else the lowest final training objective.

As :class:`gfgsm.GFGSM`, the estimator type follows ``family``: ``"binomial"`` (two classes, one
logistic output) and ``"softmax"`` (two or more classes) are classifiers (``classes_``,
``predict`` returns labels, ``predict_proba``, ``score`` = accuracy); ``"gaussian"`` and
``"poisson"`` are regressors (``predict`` returns the mean; ``score`` is ``R^2`` and Poisson
``D^2`` respectively).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score, d2_tweedie_score, r2_score
from sklearn.utils import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from gfgsm._backend import resolve_backend, to_numpy
from gfgsm.nn.networks import NetworkTarget, Output, Params, get_output
from gfgsm.nn.training import NetworkFit, train_networks

__all__ = ["GFGSMNetwork"]


def _output(family: Any) -> Output | None:
    """The output layer ``family`` names (softmax with a stand-in two classes: only its kind
    matters here), or ``None`` for a name that is no family (``fit`` then says so)."""
    try:
        return get_output(family, n_classes=2)
    except (TypeError, ValueError):
        return None


def _is_classifier(est: Any) -> bool:
    out = _output(est.family)
    return out is not None and out.is_classifier


class GFGSMNetwork(BaseEstimator):
    """A multilayer perceptron trained on generalized-FGSM adversarial examples.

    Each step perturbs the inputs of its mini-batch from the current weights (the perturbation
    is then held fixed while the weights move) and minimises
    ``clean_weight * mean l(x) + (1 - clean_weight) * mean l(x + delta)`` plus weight decay
    (see :mod:`gfgsm.nn.training` for every option).  With ``hidden=()``, ``scheme="sign"`` and
    ``clean_weight=0`` it is the GLM :class:`gfgsm.GFGSM` with ``penalty="l1"`` and
    ``lam = eps`` (docs/theory.md s.6) as long as that fit has no zero coefficient; the default
    solver (``"auto"``: full-batch L-BFGS on such small problems) reaches it to about
    ``tol / (smallest Hessian eigenvalue)``.

    **Convergence** means stationarity: ``converged_`` is ``grad_max_ <= tol``, the largest
    gradient entry of the full-batch training objective at the returned weights with the
    perturbation recomputed there.  A loss plateau of Adam that is not stationary has status
    ``"plateau"`` and draws a ``ConvergenceWarning``.

    Parameters
    ----------
    hidden : hidden layer widths (``()``: no hidden layer).
    activation : ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"softplus"``.
    family : ``"binomial"``, ``"softmax"`` (classifiers), ``"gaussian"``, ``"poisson"``.
    lam : the budget ``eps`` of the perturbation.
    scheme, scheme_params : gradient scheme and its parameters (``"sign"``; ``"lq"`` with
        ``{"q": 2}``; ``"power"`` with ``{"r": 2}``; ``"quantized"`` with ``{"b": 4}``).
    perturbation : ``"adversarial"``, ``"fgsm_rs"`` (Wong et al. 2020), ``"uniform"``,
        ``"gaussian"`` (noise of the same budget) or ``"none"``.
    clean_weight : Goodfellow's ``alpha`` in [0, 1].  alpha : FGSM-RS step (``1.25 lam``).
    weight_decay, decay : weight penalty (``"l2"``: ``weight_decay/2 sum W^2``; ``"l1"``).
    solver : ``"auto"`` (default: ``"lbfgs"`` when ``n * n_params <= 10**6`` and no
        ``early_stopping``, else ``"adam"``; :data:`gfgsm.nn.training.AUTO_LBFGS_MAX_WORK`),
        ``"adam"`` or ``"lbfgs"`` (full batch).
    learning_rate_init, beta_1, beta_2, epsilon, batch_size : Adam's settings.
    max_iter : epochs (Adam) or iterations (L-BFGS).
    tol : stationarity tolerance on ``max |grad|`` (every solver); also Adam's loss-improvement
        threshold for its plateau stop, as in scikit-learn.
    n_iter_no_change : epochs without improvement before Adam stops.
    early_stopping, validation_fraction : stop on the adversarial validation loss (Adam).
    memory : L-BFGS curvature pairs.
    n_restarts : networks trained at once; the best is kept.
    random_state : seed (network ``r`` uses child ``r`` of it).
    monitor_robustness : PGD monitor for catastrophic overfitting (default: on for adversarial
        and FGSM-RS training with Adam).
    backend : array backend for training (results are NumPy).

    Attributes
    ----------
    coefs_ : list of (d_in, d_out) weight matrices.  intercepts_ : list of (d_out,) biases.
    loss_curve_ : list of the training objective per epoch (L-BFGS: per iteration).
    validation_loss_curve_, best_validation_loss_ : with ``early_stopping`` only.
    robust_curve_, clean_curve_ : PGD-robust and clean accuracy (loss for regressors) per
        epoch, when monitored.
    catastrophic_overfitting_ : bool; catastrophic_overfitting_epoch_ : int or ``None``.
    n_iter_, converged_, status_, grad_max_ : of the kept network (``grad_max_`` the
        stationarity residual above).  solver_ : the solver used (``"auto"`` resolved).
    best_restart_, restart_losses_ : which restart was kept and every restart's selection
        loss.  fit_ : the :class:`~gfgsm.nn.training.NetworkFit` of all restarts.
    classes_ : labels (classifiers).  n_layers_, n_outputs_, out_activation_ : as
        scikit-learn's MLP.  n_features_in_, feature_names_in_ : as scikit-learn.
    """

    def __init__(
        self,
        hidden: Any = (32,),
        activation: str = "relu",
        family: str = "binomial",
        lam: float = 0.1,
        scheme: Any = "sign",
        scheme_params: dict | None = None,
        perturbation: str = "adversarial",
        clean_weight: float = 0.5,
        alpha: float | None = None,
        weight_decay: float = 0.0,
        decay: str = "l2",
        solver: str = "auto",
        learning_rate_init: float = 1e-3,
        batch_size: int | str = "auto",
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        memory: int = 10,
        n_restarts: int = 1,
        random_state: Any = None,
        monitor_robustness: bool | None = None,
        backend: str | None = None,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.family = family
        self.lam = lam
        self.scheme = scheme
        self.scheme_params = scheme_params
        self.perturbation = perturbation
        self.clean_weight = clean_weight
        self.alpha = alpha
        self.weight_decay = weight_decay
        self.decay = decay
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.memory = memory
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.monitor_robustness = monitor_robustness
        self.backend = backend

    # --- fit ------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> GFGSMNetwork:
        """Train on ``X`` (n, d) and ``y`` (n,); returns ``self``."""
        kind = _output(self.family)
        if kind is not None and kind.is_classifier:
            X, y = validate_data(self, X, y, dtype=np.float64)
            check_classification_targets(y)
            classes, y_enc = np.unique(y, return_inverse=True)
            if classes.size < 2:
                raise ValueError(
                    f"{type(self).__name__} needs 2 or more classes in y, but y has one class "
                    f"{classes[0]!r}"
                )
            if not kind.is_multiclass and type_of_target(y, input_name="y") != "binary":
                raise ValueError(
                    f"Only binary classification is supported with family={self.family!r}; y "
                    f"has {classes.size} classes: use family='softmax'"
                )
            self.classes_ = classes
            family: Any = self.family
            y_fit = y_enc.astype(np.float64)
            n_classes = int(classes.size) if kind.is_multiclass else None
        else:
            X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
            family, y_fit, n_classes = self.family, y, None
        fit = train_networks(
            X, y_fit, hidden=self.hidden, activation=self.activation, family=family,
            n_classes=n_classes, lam=self.lam, scheme=self.scheme,
            scheme_params=self.scheme_params, perturbation=self.perturbation,
            clean_weight=self.clean_weight, alpha=self.alpha, weight_decay=self.weight_decay,
            decay=self.decay, solver=self.solver, learning_rate=self.learning_rate_init,
            beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
            batch_size=self.batch_size, max_iter=self.max_iter, tol=self.tol,
            n_iter_no_change=self.n_iter_no_change, early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction, memory=self.memory,
            n_networks=self.n_restarts, random_state=self.random_state,
            monitor_robustness=self.monitor_robustness, backend=self.backend,
        )
        self._set_fitted(fit)
        return self

    def _set_fitted(self, fit: NetworkFit) -> None:
        if fit.best_validation_loss is not None:
            sel = np.asarray(fit.best_validation_loss, dtype=np.float64)
        else:
            # The last recorded objective of each network (its curve ends where it stopped).
            curve = fit.loss_curve
            sel = np.array([c[np.isfinite(c)][-1] if np.isfinite(c).any() else np.inf
                            for c in curve.T]) if curve.size else np.full(fit.R, np.inf)
        sel = np.where(np.isfinite(sel), sel, np.inf)
        r = int(np.argmin(sel))
        self.fit_ = fit
        self.best_restart_ = r
        self.restart_losses_ = sel
        self.net_ = fit.net
        self.coefs_ = [np.array(to_numpy(W)[r]) for W in fit.params.weights]
        self.intercepts_ = [np.array(to_numpy(b)[r]) for b in fit.params.biases]
        self.loss_curve_ = [float(v) for v in fit.loss_curve[:, r] if np.isfinite(v)]
        self.n_iter_ = int(fit.n_iter[r])
        self.converged_ = bool(fit.converged[r])
        self.status_ = str(fit.status[r])
        self.grad_max_ = float(fit.grad_max[r])
        self.solver_ = fit.solver
        if fit.validation_loss_curve is not None and fit.best_validation_loss is not None:
            v = fit.validation_loss_curve[:, r]
            self.validation_loss_curve_ = [float(x) for x in v if np.isfinite(x)]
            self.best_validation_loss_ = float(fit.best_validation_loss[r])
        if fit.robust_curve is not None and fit.clean_curve is not None:
            rob, cle = fit.robust_curve[:, r], fit.clean_curve[:, r]
            self.robust_curve_ = [float(x) for x in rob if np.isfinite(x)]
            self.clean_curve_ = [float(x) for x in cle if np.isfinite(x)]
        self.catastrophic_overfitting_ = bool(fit.catastrophic_overfitting[r])
        t = int(fit.catastrophic_overfitting_epoch[r])
        self.catastrophic_overfitting_epoch_ = t if t >= 0 else None
        self.n_layers_ = len(self.coefs_) + 1
        self.n_outputs_ = int(self.coefs_[-1].shape[1])
        self.out_activation_ = fit.net.output.out_activation

    # --- prediction -----------------------------------------------------------------------------
    def _eta(self, X: Any) -> np.ndarray:
        """The output pre-activations ``eta``, (n, K)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        xp = resolve_backend("numpy")
        params = self._params_host()
        return np.asarray(to_numpy(self.net_.eta(params, xp.asarray(X), xp))[0])

    def _params_host(self) -> Params:
        """The kept network's weights as a one-network stack, on the host."""
        xp = resolve_backend("numpy")
        return Params(
            [xp.asarray(W[None]) for W in self.coefs_],
            [xp.asarray(b[None]) for b in self.intercepts_],
        )

    def attack_target(self) -> NetworkTarget:
        """The fitted network as an attack target (:mod:`gfgsm.nn.attacks`): inputs ``(n, d)``
        and targets coded as in training (``0/1`` for binomial, the index in ``classes_`` for
        softmax, the response itself for regressors)."""
        check_is_fitted(self)
        return NetworkTarget(self.net_, self._params_host())

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (classifiers) or the mean ``mu`` (regressors), shape (n,)."""
        eta = self._eta(X)
        out = self.net_.output
        xp = resolve_backend("numpy")
        if out.is_classifier:
            return self.classes_[np.asarray(out.predict_label(xp.asarray(eta), xp))]
        fam = out.family  # type: ignore[attr-defined]
        fam.check_eta(eta[:, 0])
        return np.asarray(out.predict_mean(xp.asarray(eta), xp), dtype=np.float64)

    @available_if(_is_classifier)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in the order of ``classes_``."""
        eta = self._eta(X)
        out = self.net_.output
        xp = resolve_backend("numpy")
        if out.is_multiclass:
            return np.asarray(out.predict_mean(xp.asarray(eta), xp))
        e = eta[:, 0]
        # 1 - mu as sigmoid(-eta): no cancellation for confident predictions.
        return np.column_stack([1.0 / (1.0 + np.exp(np.minimum(e, 700.0))),
                                1.0 / (1.0 + np.exp(np.minimum(-e, 700.0)))])

    @available_if(_is_classifier)
    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log`` of :meth:`predict_proba`, without underflow."""
        eta = self._eta(X)
        if self.net_.output.is_multiclass:
            z = eta - eta.max(axis=1, keepdims=True)
            return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        e = eta[:, 0]
        return np.column_stack([-np.logaddexp(0.0, e), -np.logaddexp(0.0, -e)])

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (classifiers), ``R^2`` (gaussian) or the Tweedie ``D^2`` of the family's
        power (poisson: power 1)."""
        pred = self.predict(X)
        out = self.net_.output
        if out.is_classifier:
            return float(accuracy_score(y, pred, sample_weight=sample_weight))
        fam = out.family  # type: ignore[attr-defined]
        if fam.tweedie_power is None:
            raise ValueError(f"no regression score for the family {fam!r}: not a Tweedie one")
        if fam.tweedie_power == 0:
            return float(r2_score(y, pred, sample_weight=sample_weight))
        return float(d2_tweedie_score(y, pred, sample_weight=sample_weight,
                                      power=fam.tweedie_power))

    # --- tags -----------------------------------------------------------------------------------
    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        out = _output(self.family)
        if out is not None and out.is_classifier:
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=out.is_multiclass)
            tags.regressor_tags = None
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.classifier_tags = None
        if out is not None and out.positive_only:
            tags.target_tags.positive_only = True
        return tags

