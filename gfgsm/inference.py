"""One-step debiased inference for a fixed number of coefficients (docs/theory.md s.5,
"Debiased inference").

From a fit ``theta_hat`` (G-FGSM or PL, any penalty) one Newton step on the *clean, unpenalized*
log-likelihood,

    theta_tilde = theta_hat + H^{-1} (1/n) sum_i xt_i (y_i - mu_i(theta_hat)),
    H = (1/n) sum_i b''(eta_i) xt_i xt_i'                       (at theta_hat),

(``xt = (1, x)``, the intercept first; ``phi`` cancels in the step) lands within
``O_p(|theta_hat - theta_mle|^2) = O_p(1/n)`` of the MLE, so its Wald intervals are the MLE's:

* ``cov_type="nonrobust"``: ``phi_hat H(theta_tilde)^{-1} / n``, with ``phi_hat`` the Pearson
  ``chi^2 / (n - q)`` at ``theta_tilde`` for a family with a free dispersion
  (gaussian: ``RSS / (n - p - 1)``, statsmodels' ``scale``) and the family's ``phi`` otherwise;
* ``cov_type="HC0"``: the sandwich ``H^{-1} J H^{-1} / n``, ``J = (1/n) sum_i r_i^2 xt_i xt_i'``,
  ``r_i = y_i - mu_i(theta_tilde)``, all at ``theta_tilde`` (``phi`` cancels).

This is essentially MLE-Wald inference, not shorter intervals (Poetscher 2009), and the
coverage is pointwise, not uniform in ``theta0`` (Leeb & Poetscher 2005).

Everything is batched over the ``R`` problems of a :class:`~gfgsm.batch.BatchFit` on its
array namespace (NumPy, CuPy, ``array_api_strict``); only the normal tail probabilities of
``pvalues`` go through the host (SciPy).  The module reads the fit by its attributes
(``coef``, ``intercept``, ``converged``, ``family``), so it sits below :mod:`gfgsm.batch` in
the import layers and ``BatchFit.debiased`` can call it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from sklearn.exceptions import ConvergenceWarning

from ._backend import asarray, get_namespace, to_numpy
from ._validation import real_range
from .families import Family, get_family

__all__ = ["COV_TYPES", "Debiased", "check_alpha", "check_cov_type", "debias"]

#: Accepted ``cov_type`` values (statsmodels' names).
COV_TYPES = ("nonrobust", "HC0")
#: A design whose diagonally scaled ``H`` has a smallest eigenvalue below this fraction of its
#: largest is treated as singular (condition number above 1e12: the solve would lose every
#: significant digit of a float64 ``H`` built from ``n`` products).
_RCOND = 1e-12


def check_alpha(alpha: Any) -> float:
    """``alpha`` in (0, 1), else ``ValueError`` naming it."""
    return real_range("alpha", alpha, 0.0, 1.0, lo_open=True, hi_open=True)


def check_cov_type(cov_type: Any) -> str:
    if cov_type not in COV_TYPES:
        raise ValueError(f"unknown cov_type {cov_type!r}; expected one of {COV_TYPES}")
    return str(cov_type)


@dataclass
class Debiased:
    """One-step debiased estimates of ``R`` problems and their Wald inference.

    Attributes (arrays in the fit's namespace; rows of non-converged fits are NaN)
    ----------
    params : (R, q) ``theta_tilde``, the intercept first when ``fit_intercept``
        (``q = p + fit_intercept``).
    cov : (R, q, q) covariance of ``params`` (``cov_type``).
    scale : (R,) the dispersion ``phi_hat`` used by the non-robust covariance.
    valid : (R,) bool, ``False`` where the fit did not converge (NaN rows).
    """

    params: Any
    cov: Any
    scale: Any
    valid: Any
    cov_type: str
    fit_intercept: bool
    n: int

    @property
    def xp(self) -> Any:
        return get_namespace(self.params)

    @property
    def bse(self) -> Any:
        """(R, q) standard errors, ``sqrt(diag(cov))``."""
        return _sqrt_diag(self.xp, self.cov)

    @property
    def zvalues(self) -> Any:
        """(R, q) Wald statistics ``params / bse``."""
        return self.params / self.bse

    #: statsmodels' name for the Wald statistics of a GLM.
    tvalues = zvalues

    @property
    def pvalues(self) -> Any:
        """(R, q) two-sided normal p-values ``2 P(Z > |z|)``."""
        z = np.abs(np.asarray(to_numpy(self.zvalues), dtype=np.float64))
        return asarray(2.0 * stats.norm.sf(z), self.xp)

    def conf_int(self, alpha: float = 0.05) -> Any:
        """(R, q, 2) Wald intervals ``params -+ z_{1 - alpha/2} bse`` (lower, upper)."""
        a = check_alpha(alpha)
        z = float(stats.norm.ppf(1.0 - a / 2.0))
        half = z * self.bse
        xp = self.xp
        return xp.stack([self.params - half, self.params + half], axis=-1)


# --------------------------------------------------------------------------------------------
# the computation
# --------------------------------------------------------------------------------------------


def _sqrt_diag(xp: Any, cov: Any) -> Any:
    """(R, q) ``sqrt(diag(cov))`` of (R, q, q) covariances."""
    q = cov.shape[-1]
    return xp.sqrt(xp.sum(cov * xp.eye(q, dtype=cov.dtype), axis=-1))


def _design(xp: Any, X: Any, fit_intercept: bool) -> Any:
    """``xt = (1, x)`` rows (the intercept column first), or ``X`` itself without one."""
    ones = xp.ones((*X.shape[:-1], 1), dtype=xp.float64)
    return xp.concat([ones, X], axis=-1) if fit_intercept else X


def _gram(xp: Any, Xt: Any, w: Any) -> Any:
    """(R, q, q) ``(1/n) sum_i w_ri xt_i xt_i'`` for a shared (n, q) or per-problem design."""
    n = Xt.shape[-2]
    Xt_T = xp.matrix_transpose(Xt)
    if Xt.ndim == 2:
        return xp.matmul(Xt_T[None, :, :] * w[:, None, :], Xt) / n
    return xp.matmul(Xt_T * w[:, None, :], Xt) / n


def _xty(xp: Any, Xt: Any, r: Any) -> Any:
    """(R, q) ``(1/n) sum_i xt_i r_ri``."""
    n = Xt.shape[-2]
    if Xt.ndim == 2:
        return xp.matmul(r, Xt) / n
    return xp.matmul(xp.matrix_transpose(Xt), r[..., None])[..., 0] / n


def _eta(xp: Any, Xt: Any, theta: Any) -> Any:
    if Xt.ndim == 2:
        return xp.matmul(theta, xp.matrix_transpose(Xt))
    return xp.matmul(Xt, theta[..., None])[..., 0]


def _singular(xp: Any, H: Any) -> Any:
    """(R,) bool: ``H`` is (numerically) singular, judged on its diagonally scaled form so
    that the units of the columns do not matter."""
    q = H.shape[-1]
    eye = xp.eye(q, dtype=H.dtype)
    d = xp.sum(H * eye, axis=-1)
    bad_diag = ~xp.all(d > 0, axis=-1) | ~xp.all(xp.isfinite(H), axis=(-2, -1))
    s = xp.where(d > 0, 1.0 / xp.sqrt(xp.where(d > 0, d, 1.0)), 0.0)
    Hs = H * s[:, :, None] * s[:, None, :]
    Hs = xp.where(bad_diag[:, None, None], eye, Hs)
    ev = xp.linalg.eigvalsh(Hs)
    return bad_diag | (ev[:, 0] <= _RCOND * ev[:, -1])


def _raise_singular(xp: Any, singular: Any, where: str) -> None:
    bad = np.flatnonzero(np.asarray(to_numpy(singular), dtype=bool))
    if bad.size:
        raise ValueError(
            f"the information matrix H = (1/n) sum_i b''(eta_i) xt_i xt_i' is singular {where} "
            f"in {bad.size} problem(s), first indices {bad[:10].tolist()}: the design is "
            "collinear (a constant or duplicated column), or the fitted means sit at the edge "
            "of the family (binomial separation: probabilities 0 or 1; poisson means 0), so "
            "the MLE and its Wald inference do not exist; drop collinear columns, or report "
            "the penalized estimate without intervals"
        )


def debias(fit: Any, X: Any, y: Any, cov_type: str = "nonrobust", *,
           fit_intercept: bool = True, family: str | Family | None = None) -> Debiased:
    """One-step debiased estimates and their Wald covariance for every problem of ``fit``.

    Parameters
    ----------
    fit : a :class:`~gfgsm.batch.BatchFit` (any method and penalty).
    X, y : the data the fit was computed on: ``X`` (n, p) shared or (R, n, p), ``y`` (R, n)
        (or (n,) for ``R = 1``), in the fit's namespace or NumPy.
    cov_type : ``"nonrobust"`` (model-based, ``phi_hat H^{-1} / n``) or ``"HC0"`` (sandwich).
    fit_intercept : whether the fit has an intercept (``BatchFit`` does not record it; its
        intercept is zero without one).  ``params`` then has the intercept first.
    family : the family, by default ``fit.family`` (give the instance for a custom ``phi``).

    Returns
    -------
    Debiased
        ``params`` (R, q), ``cov`` (R, q, q), ``bse``, ``zvalues``, ``pvalues``,
        ``conf_int(alpha)`` (R, q, 2).  Rows of fits that did not converge are NaN (with a
        ``ConvergenceWarning``): a one-step correction from a point that is not the estimate
        has no guarantee.

    Raises
    ------
    ValueError
        unknown ``cov_type``; shapes that do not match the fit; ``p + 1 >= n`` (``q >= n``), where
        the fixed-p theory does not apply; a singular ``H`` (collinearity, separation).
    """
    cov_type = check_cov_type(cov_type)
    params, covs, scale, valid, n = one_step(fit, X, y, fit_intercept=fit_intercept,
                                             family=family)
    return Debiased(params=params, cov=covs[cov_type], scale=scale, valid=valid,
                    cov_type=cov_type, fit_intercept=bool(fit_intercept), n=n)


def one_step(fit: Any, X: Any, y: Any, *, fit_intercept: bool = True,
             family: str | Family | None = None) -> tuple[Any, dict[str, Any], Any, Any, int]:
    """The computation behind :func:`debias`, with both covariances at once:
    ``(params, {"nonrobust": cov, "HC0": cov}, scale, valid, n)`` (NaN rows where ``valid``
    is false).  Same parameters and errors as :func:`debias`."""
    if fit.info.get("observation_weights"):
        raise ValueError(
            "the fit used sample_weight= or tilt=, and debiased inference is derived for the "
            "unweighted likelihood (docs/theory.md s.5); refit without them"
        )
    fam = get_family(fit.family if family is None else family)
    xp = get_namespace(fit.coef)
    coef = fit.coef
    R, p = int(coef.shape[0]), int(coef.shape[1])
    Xa = asarray(X, xp)
    ya = asarray(y, xp)
    if ya.ndim == 1:
        ya = ya[None, :]
    if Xa.ndim not in (2, 3) or ya.ndim != 2:
        raise ValueError(f"X must be (n, p) or (R, n, p) and y (n,) or (R, n); got shapes "
                         f"{tuple(Xa.shape)} and {tuple(ya.shape)}")
    n = int(Xa.shape[-2])
    if int(Xa.shape[-1]) != p or int(ya.shape[0]) != R or int(ya.shape[1]) != n or (
            Xa.ndim == 3 and int(Xa.shape[0]) != R):
        raise ValueError(
            f"X {tuple(Xa.shape)} and y {tuple(ya.shape)} do not match the fit of {R} problem(s) "
            f"with {p} slopes: pass the data the fit was computed on"
        )
    q = p + int(bool(fit_intercept))
    if q >= n:
        raise ValueError(
            f"fixed-p debiased inference needs n > p + {int(bool(fit_intercept))} "
            f"(n = {n}, {q} coefficients): H is singular and the dispersion has no degrees of "
            "freedom. For p comparable to or larger than n use a high-dimensional debiased "
            "lasso (van de Geer et al. 2014; Javanmard & Montanari 2014), which this package "
            "does not provide"
        )
    if not bool(xp.all(xp.isfinite(Xa))) or not bool(xp.all(xp.isfinite(ya))):
        raise ValueError("X and y must be finite")
    fam.check_y(ya)

    Xt = _design(xp, Xa, fit_intercept)
    theta = xp.concat([fit.intercept[:, None], coef], axis=1) if fit_intercept else coef

    valid = xp.asarray(fit.converged, dtype=xp.bool) & xp.all(xp.isfinite(theta), axis=-1)
    valid_np = np.asarray(to_numpy(valid), dtype=bool)
    if not valid_np.all():
        bad = np.flatnonzero(~valid_np)
        warnings.warn(
            f"{bad.size} of {R} fits did not converge (first indices {bad[:10].tolist()}); "
            "their debiased estimates, covariances and intervals are NaN",
            ConvergenceWarning, stacklevel=3,
        )
    theta = xp.where(valid[:, None], theta, 0.0)

    # the Newton step on the clean, unpenalized log-likelihood (phi cancels)
    eta = _eta(xp, Xt, theta)
    H = _gram(xp, Xt, fam.d2loss(ya, eta))
    _raise_singular(xp, _singular(xp, H) & valid, "at the fit")
    eye = xp.eye(q, dtype=xp.float64)
    H = xp.where(valid[:, None, None], H, eye)
    g = _xty(xp, Xt, ya - fam.mean(eta))
    theta_t = theta + xp.linalg.solve(H, g[..., None])[..., 0]

    # the covariance at theta_tilde
    eta_t = _eta(xp, Xt, theta_t)
    w_t = fam.d2loss(ya, eta_t)
    H_t = _gram(xp, Xt, w_t)
    _raise_singular(xp, _singular(xp, H_t) & valid, "at the one-step estimate")
    H_t = xp.where(valid[:, None, None], H_t, eye)
    r_t = ya - fam.mean(eta_t)
    if fam.has_dispersion:
        scale = xp.sum(r_t * r_t / w_t, axis=-1) / (n - q)  # Pearson chi^2 / (n - q)
    else:
        scale = xp.full((R,), fam.phi, dtype=xp.float64)
    Hinv = xp.linalg.inv(H_t)
    J = _gram(xp, Xt, r_t * r_t)
    nan = xp.asarray(float("nan"), dtype=xp.float64)
    covs = {
        "nonrobust": scale[:, None, None] * Hinv / n,
        "HC0": xp.matmul(xp.matmul(Hinv, J), Hinv) / n,
    }
    covs = {k: xp.where(valid[:, None, None], c, nan) for k, c in covs.items()}
    return (xp.where(valid[:, None], theta_t, nan), covs, xp.where(valid, scale, nan), valid, n)
