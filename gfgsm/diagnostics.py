"""Sign neutrality of real data (docs/theory.md s.5): an estimate of ``V``, its SE and a test.

A data set is *sign neutral* when ``V = E[sign(y - mu) b''(eta) xt] / phi = 0`` at the true
parameters; otherwise G-FGSM carries the extra bias ``lam ||beta||_1 I^{-1} V`` that PL at the
matched level does not (docs/theory.md s.5, consequence 3).  :func:`sign_neutrality` estimates ``V``
at a fitted model and tests ``V = 0``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from ._backend import to_numpy
from ._validation import int_at_least, real_in
from .batch import fit_batch
from .families import Family, get_family

__all__ = ["SignNeutrality", "sign_neutrality"]


def _v_hat(fam: Family, X: np.ndarray, y: np.ndarray, theta: np.ndarray,
           phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched plug-in estimates: ``V``, ``I`` and ``D`` for ``theta`` of shape (B, p + 1).

    ``X`` (B, n, p), ``y`` (B, n), ``phi`` (B,).  ``V = mean_i sign(y_i - mu_i) b''(eta_i) xt_i
    / phi``, ``I = mean_i b''(eta_i) xt_i xt_i' / phi``, ``D = mean_i |y_i - mu_i| / phi``.
    """
    B, n, _ = X.shape
    Xt = np.concatenate([np.ones((B, n, 1)), X], axis=2)
    eta = np.einsum("bnq,bq->bn", Xt, theta)
    mu = to_numpy(fam.mean(eta))
    w = to_numpy(fam.d2loss(y, eta))
    s = np.sign(y - mu)
    V = np.einsum("bn,bnq->bq", s * w, Xt) / n / phi[:, None]
    I = np.einsum("bn,bnq,bnr->bqr", w, Xt, Xt) / n / phi[:, None, None]  # noqa: E741
    D = np.abs(y - mu).mean(axis=1) / phi
    return V, I, D


@dataclass(frozen=True)
class SignNeutrality:
    """Estimate of the sign-neutrality vector ``V`` with a Wald test of ``V = 0``.

    Attributes
    ----------
    V, se : (p + 1,) estimate and bootstrap standard error (intercept first).
    cov : (p + 1, p + 1) bootstrap covariance of the estimate.
    wald, df, pvalue : ``V' cov^{-1} V``, its degrees of freedom (the rank of ``cov``), and
        the chi-square p-value.
    theta : (p + 1,) the fitted model the estimate is taken at; ``I``, ``D``, ``phi`` there.
    n_boot, n_failed : bootstrap replicates used and dropped (non-converged refits).
    """

    V: np.ndarray
    se: np.ndarray
    cov: np.ndarray
    wald: float
    df: int
    pvalue: float
    theta: np.ndarray
    I: np.ndarray  # noqa: E741 - docs/theory.md's name
    D: float
    phi: float
    n: int
    family: str
    fit_lam: float
    n_boot: int
    n_failed: int
    names: tuple[str, ...]

    def predicted_bias(self, lam: float) -> np.ndarray:
        """G-FGSM's extra bias at level ``lam`` over PL at ``lam D``: ``lam ||beta||_1 I^{-1} V``.

        docs/theory.md s.5, consequence 3, with ``lam0 = lam sqrt(n)`` and the bias of
        ``theta_hat`` itself (not of ``sqrt(n)(theta_hat - theta0)``), at the fitted model.
        """
        real_in("lam", lam, 0, rule="a finite number >= 0")
        return lam * float(np.abs(self.theta[1:]).sum()) * np.linalg.solve(self.I, self.V)

    def summary(self, lam: float | None = None) -> str:
        """A statsmodels-style table of ``V`` with standard errors, z and p-values."""
        z = self.V / np.where(self.se > 0, self.se, np.nan)
        p = 2 * stats.norm.sf(np.abs(z))
        w = 78
        lines = [
            "Sign-neutrality test (docs/theory.md s.5)".center(w),
            "=" * w,
            f"{'Family:':<20}{self.family:>18}   {'No. observations:':<20}{self.n:>17}",
            f"{'Fitted at lam:':<20}{self.fit_lam:>18.4g}   {'Bootstrap replicates:':<22}"
            f"{self.n_boot:>15}",
            f"{'D = E|y-mu|/phi:':<20}{self.D:>18.4g}   {'phi:':<20}{self.phi:>17.4g}",
            f"{'Wald chi2(' + str(self.df) + '):':<20}{self.wald:>18.4f}   "
            f"{'Prob > chi2:':<20}{self.pvalue:>17.4g}",
            "=" * w,
            f"{'':>14}{'V':>12}{'std err':>12}{'z':>10}{'P>|z|':>10}"
            + (f"{'extra bias':>14}" if lam is not None else ""),
            "-" * w,
        ]
        extra = self.predicted_bias(lam) if lam is not None else None
        for j, name in enumerate(self.names):
            row = f"{name[:14]:>14}{self.V[j]:>12.4g}{self.se[j]:>12.4g}{z[j]:>10.3f}{p[j]:>10.3f}"
            if extra is not None:
                row += f"{extra[j]:>14.4g}"
            lines.append(row)
        lines.append("=" * w)
        lines.append("V = mean sign(y - mu) b''(eta) xt / phi at the fitted model; standard errors "
                     "from a pairs")
        lines.append("bootstrap that refits the model; V = 0 means sign neutral.")
        if lam is not None:
            lines.append(f"extra bias: G-FGSM at lam = {lam:g} minus PL at lam*D, "
                         "lam ||beta||_1 I^-1 V.")
        if self.n_failed:
            lines.append(f"{self.n_failed} bootstrap refits did not converge and were dropped.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def sign_neutrality(
    X: Any,
    y: Any,
    family: str | Family,
    *,
    fit_lam: float = 0.0,
    n_boot: int = 200,
    seed: int | None = 0,
    feature_names: Any = None,
) -> SignNeutrality:
    """Estimate ``V`` (docs/theory.md s.5) at a fitted GLM and test ``V = 0``.

    The model is fitted by penalized likelihood at ``fit_lam`` (default 0: the MLE; a small
    positive value when the MLE does not exist, e.g. separated binomial data), then

        V_hat = (1/n) sum_i sign(y_i - mu_hat_i) b''(eta_hat_i) xt_i / phi_hat,

    with ``phi_hat`` the mean squared residual for gaussian and 1 otherwise.

    Standard error: a pairs bootstrap (``n_boot`` resamples of the rows, each refitted, all
    refits batched in one :func:`~gfgsm.batch.fit_batch` call).  The bootstrap is used rather
    than a sandwich formula because ``V_hat`` depends on ``theta_hat`` through
    ``sign(y - mu(theta))``: its linearisation needs the derivative of
    ``E[sign(y - mu(theta)) | x]``, i.e. the conditional density of ``y`` at ``mu`` for a
    continuous response, which a sandwich would have to estimate by smoothing; the bootstrap of
    this Hadamard-differentiable functional needs no density estimate and captures the
    estimation of ``theta`` automatically.  The Wald statistic ``V' cov^{-1} V`` is referred to
    a chi-square with ``rank(cov)`` degrees of freedom.

    Parameters
    ----------
    X : (n, p) design; y : (n,) response; family : ``"gaussian"``, ``"binomial"``, ``"poisson"``.
    """
    fam = get_family(family)
    X = np.asarray(to_numpy(X), dtype=float)
    y = np.asarray(to_numpy(y), dtype=float)
    if X.ndim != 2 or y.ndim != 1:
        raise ValueError(f"X must be (n, p) and y (n,); got shapes {X.shape} and {y.shape}")
    n, p = X.shape
    int_at_least("n_boot", n_boot, 20)
    fit = fit_batch(X, y, family=fam, method="pl", lam=fit_lam, warn=False)
    if fit.status[0] != "converged":
        raise ValueError(
            f"the {fam.name} fit at lam={fit_lam} did not converge (status {fit.status[0]!r}); "
            "for separated binomial data the MLE does not exist: pass a small fit_lam > 0"
        )
    theta = np.r_[to_numpy(fit.intercept)[0], to_numpy(fit.coef)[0]]

    def phi_of(Xb: np.ndarray, yb: np.ndarray, th: np.ndarray) -> np.ndarray:
        if not fam.has_dispersion:
            return np.ones(th.shape[0])
        eta = th[:, :1] + np.einsum("bnp,bp->bn", Xb, th[:, 1:])
        return np.mean((yb - eta) ** 2, axis=1)

    phi = phi_of(X[None], y[None], theta[None])
    V, I, D = _v_hat(fam, X[None], y[None], theta[None], phi)  # noqa: E741

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    # Resampled designs are built and refitted in chunks of at most ~64 MB, so memory does not
    # grow with n_boot (the refits are batched within a chunk).
    chunk = max(1, min(n_boot, int(64e6 // (8 * n * (p + 2)))))
    Vs, oks = [], []
    for start in range(0, n_boot, chunk):
        Xb, yb = X[idx[start:start + chunk]], y[idx[start:start + chunk]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bfit = fit_batch(Xb, yb, family=fam, method="pl", lam=fit_lam, warn=False)
        okc = bfit.status == "converged"
        thb = np.c_[to_numpy(bfit.intercept), to_numpy(bfit.coef)][okc]
        Vs.append(_v_hat(fam, Xb[okc], yb[okc], thb, phi_of(Xb[okc], yb[okc], thb))[0])
        oks.append(okc)
    ok = np.concatenate(oks)
    Vb = np.concatenate(Vs)
    n_failed = int((~ok).sum())
    if ok.sum() < 20:
        raise ValueError(f"only {int(ok.sum())} of {n_boot} bootstrap refits converged")
    if n_failed:
        warnings.warn(f"{n_failed} of {n_boot} bootstrap refits did not converge and were "
                      "dropped", RuntimeWarning, stacklevel=2)
    cov = np.cov(Vb, rowvar=False)
    se = np.sqrt(np.diag(cov))
    rank = int(np.linalg.matrix_rank(cov))
    wald = float(V[0] @ np.linalg.pinv(cov) @ V[0])
    given = feature_names if feature_names is not None else (f"x{j + 1}" for j in range(p))
    names = ("intercept", *given)
    if len(names) != p + 1:
        raise ValueError(f"feature_names must have {p} entries, got {len(names) - 1}")
    return SignNeutrality(
        V=V[0], se=se, cov=cov, wald=wald, df=rank, pvalue=float(stats.chi2.sf(wald, rank)),
        theta=theta, I=I[0], D=float(D[0]), phi=float(phi[0]), n=n, family=fam.name,
        fit_lam=float(fit_lam), n_boot=int(ok.sum()), n_failed=n_failed, names=names,
    )
