"""Performance measures of a simulation study with their Monte Carlo standard errors.

Every measure follows Morris, White & Crowther (2019), "Using simulation studies to evaluate
statistical methods", *Statistics in Medicine* 38:2074-2102, Table 6, and the R package
rsimsum (Gasparini 2018, JOSS 3:739), so that numbers reported here can be checked against either.
Notation: ``n`` replications entering a measure, estimates ``t_i``, true value ``theta``,
``tbar = mean_i t_i``, errors ``e_i = t_i - theta``.

Functions
---------
:func:`performance`
    bias, empirical SE, MSE, RMSE, relative bias, coverage, bias-eliminated coverage, interval
    width, model-based SE and its relative error per group, each with its MCSE.
:func:`rate_fit`
    slope of ``log y`` on ``log x`` (e.g. ``log RMSE`` on ``log n``: -1/2 under root-n
    consistency, docs/theory.md s.5 consequence 1 and s.8 claim 1), weighted by the MCSEs.
:func:`selection`
    correct / incorrect zeros and exact support recovery (docs/theory.md s.8 claim 4).
:func:`convergence`
    replications, converged share and counts per solver status.
:func:`format_estimate`
    ``"0.1234 (0.0021)"``: an estimate with its MCSE at matching precision, for reports.

Input is the tidy results store of :mod:`gfgsm.mc.runner`: one row per replication x method x
parameter with ``condition``, the condition factors, ``method``, ``rep``, ``param``,
``estimate``, ``true``, ``converged``, ``status`` and optionally ``ci_lower``, ``ci_upper``
(an interval per replication) and ``se`` (the model-based standard error it reports).

Non-converged fits never enter a measure silently: they are excluded by default and their share
is reported next to every measure; ``include_nonconverged=True`` includes them and records it
in ``result.attrs["include_nonconverged"]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["convergence", "format_estimate", "performance", "rate_fit", "selection"]

#: Grouping of :func:`performance`: one row per condition x method x parameter.
PERFORMANCE_BY: tuple[str, ...] = ("condition", "method", "param")
#: Grouping of :func:`selection` and :func:`convergence`: one row per condition x method.
FIT_BY: tuple[str, ...] = ("condition", "method")
#: Columns that, together with ``by``, identify one fit (one replication of one method).
_REPLICATION_KEY: tuple[str, ...] = ("condition", "method", "rep")
#: The parameter that :func:`selection` leaves out: only slopes are selected.
_INTERCEPT = "intercept"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _as_list(by: str | Sequence[str]) -> list[str]:
    """``by`` as a list of column names (a bare string is one column, not its characters)."""
    cols = [by] if isinstance(by, str) else list(by)
    if not cols:
        raise ValueError("by must name at least one column")
    if len(set(cols)) != len(cols):
        raise ValueError(f"by has repeated columns: {cols}")
    return cols


def _require(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; have {list(df.columns)}")


def _converged(df: pd.DataFrame) -> pd.Series:
    """``df["converged"]`` as a bool Series, refusing missing values.

    ``astype(bool)`` would turn a missing flag into ``True`` (NaN is truthy), which would let an
    unknown fit enter the measures as converged; so missing values are an error instead.
    """
    conv = df["converged"]
    if conv.isna().any():
        raise ValueError("column 'converged' has missing values; every fit needs a flag")
    if conv.dtype != bool and not conv.isin([True, False, 0, 1]).all():
        raise ValueError("column 'converged' must be boolean")
    return conv.astype(bool)


def _check_unique_rows(df: pd.DataFrame) -> None:
    """Refuse a store with a repeated (condition, method, rep, param) row.

    A chunk written twice would otherwise be counted twice and shrink every MCSE by sqrt(2).
    Only checked when all four key columns are present.
    """
    key = [c for c in (*_REPLICATION_KEY, "param") if c in df.columns]
    if len(key) == 4 and df.duplicated(key).any():
        dup = df.loc[df.duplicated(key, keep=False), key].drop_duplicates().head(5)
        raise ValueError(f"repeated (condition, method, rep, param) rows, e.g.\n{dup}")


def _groupby(frame: pd.DataFrame, by: list[str]) -> pd.core.groupby.DataFrameGroupBy:
    # dropna=False: a missing factor level is still a group (dropping it would silently
    # lose replications); observed=True: no empty groups from categorical factors.
    return frame.groupby(by, sort=True, dropna=False, observed=True)


def _replication_key(df: pd.DataFrame, by: list[str]) -> list[str]:
    """``by`` plus whichever of (condition, method, rep) it lacks: the key of one fit."""
    _require(df, ["rep"], "replication key")
    return by + [c for c in _REPLICATION_KEY if c in df.columns and c not in by]


# --------------------------------------------------------------------------------------------
# performance
# --------------------------------------------------------------------------------------------
def performance(df: pd.DataFrame, by: str | Sequence[str] = PERFORMANCE_BY, *,
                include_nonconverged: bool = False) -> pd.DataFrame:
    """Per group: bias, EmpSE, MSE, RMSE, relative bias, coverage, bias-eliminated coverage,
    interval width, ModSE and its relative error, each with its MCSE.

    Formulas (Morris et al. 2019, Table 6; rsimsum ``simsum``), over the ``n = n_used``
    replications of a group with estimates ``t_i``, true value ``theta``, ``e_i = t_i -
    theta``, intervals ``[lo_i, hi_i]`` with widths ``w_i = hi_i - lo_i`` and model-based
    variances ``v_i = se_i^2``:

    ================  ====================================  ====================================
    measure           estimate                              Monte Carlo SE
    ================  ====================================  ====================================
    ``bias``          ``tbar - theta``                      ``EmpSE / sqrt(n)``
    ``empse``         ``sqrt(sum (t_i - tbar)^2/(n-1))``    ``EmpSE / sqrt(2 (n - 1))``
    ``mse``           ``sum e_i^2 / n``                     ``sqrt(sum (e_i^2-MSE)^2/(n (n-1)))``
    ``rmse``          ``sqrt(MSE)``                         ``MCSE(MSE) / (2 RMSE)`` (delta)
    ``relbias``       ``(tbar - theta) / theta``            ``MCSE(bias) / |theta|``
    ``coverage``      ``C = #{lo_i <= theta <= hi_i} / m``  ``sqrt(C (1 - C) / m)``
    ``be_coverage``   ``B = #{lo_i <= tbar <= hi_i} / m``   ``sqrt(B (1 - B) / m)``
    ``width``         ``wbar = sum w_i / m``                ``s_w / sqrt(m)``
    ``modse``         ``sqrt(vbar)``, ``vbar = sum v_i/k``  ``sqrt(V_v / (4 k ModSE^2))``
    ``relerr_modse``  ``100 (ModSE / EmpSE - 1)``           ``100 (ModSE/EmpSE) sqrt(V_v /``
                                                            ``(4 k ModSE^4) + 1/(2 (n - 1)))``
    ================  ====================================  ====================================

    with ``s_w = sqrt(sum (w_i - wbar)^2 / (m - 1))`` the sample SD of the widths and
    ``V_v = sum (v_i - vbar)^2 / (k - 1)`` the sample variance of the model variances.
    The EmpSE MCSE is the large-sample SD of a sample SD of normal draws, so it assumes
    approximately normal estimates.  The RMSE row is not in Table 6; it follows from
    ``d sqrt(x) = dx / (2 sqrt(x))``; the width row is not in Table 6 either: it is the MCSE
    of a mean, as for bias.  The ``relerr_modse`` MCSE is Table 6's, i.e. the relative MCSEs of
    ModSE and EmpSE added in quadrature (the two treated as independent, exact for normal
    data); when ``k < n`` each keeps its own count.
    ``relbias`` is NaN when ``theta = 0``.  Coverage, bias-eliminated coverage and width are
    over the ``m = n_ci`` used replications whose interval has two finite ends (a method
    without intervals stores NaN and gets NaN); ``tbar`` in ``be_coverage`` is ``mean_est``,
    the mean over all ``n`` used replications, so a non-finite estimate makes it NaN.  ModSE
    is over the ``k = n_se`` used replications with a finite ``se``; ``relerr_modse`` also
    needs a finite, positive EmpSE.  Without the ``ci_lower``/``ci_upper`` (or ``se``) columns
    the interval (or ModSE) measures are NaN with ``n_ci = 0`` (``n_se = 0``).

    Parameters
    ----------
    df : tidy results (module docstring); needs ``by`` columns, ``estimate``, ``true``,
        ``converged``; ``ci_lower`` and ``ci_upper`` (used only when both are present) and
        ``se`` are optional.
    by : columns defining a group.  ``true`` must be constant within a group, so ``by``
        normally includes ``param`` and the condition.  Factor columns (``n``, ``family``, ...)
        can be added to ``by`` to carry them into the result (e.g. for :func:`rate_fit`).
    include_nonconverged : include non-converged fits in the measures (default: exclude them).

    Returns
    -------
    One row per group, sorted by ``by``: the ``by`` columns, ``n_rep`` (rows in the group),
    ``n_used`` (rows entering the measures), ``nonconverged_share`` (always of ``n_rep``,
    whichever rows are used), ``n_nonfinite`` (used rows with a non-finite estimate: these make
    the estimate-based measures NaN rather than being dropped), ``true``, ``mean_est``, each
    measure and its ``<measure>_mcse``, ``n_ci`` and ``n_se``, in the order ``n_ci``,
    ``coverage``, ``be_coverage``, ``width``, ``n_se``, ``modse``, ``relerr_modse`` after the
    estimate-based measures.  Groups with ``n_used < 2`` (or ``n_ci < 2`` for the interval
    measures, ``n_se < 2`` for the ModSE measures) get NaN measures: an MCSE needs two
    replications.
    ``attrs["include_nonconverged"]`` records the choice.

    Raises
    ------
    ValueError : missing columns, missing ``converged`` flags, repeated rows, or a ``true``
        that varies within a group.
    """
    by = _as_list(by)
    _require(df, [*by, "estimate", "true", "converged"], "performance")
    _check_unique_rows(df)
    has_ci = "ci_lower" in df.columns and "ci_upper" in df.columns
    has_se = "se" in df.columns
    conv = _converged(df)

    work = df[by].copy()
    work["_conv"] = conv.to_numpy()
    work["_true"] = df["true"].to_numpy(dtype=float)
    g_all = _groupby(work, by)
    # Exact equality: the truth comes from the DGP's theta0, identical in every replication.
    n_true = g_all["_true"].nunique(dropna=False)
    if (n_true > 1).any():
        bad = n_true[n_true > 1].index[:5].tolist()
        raise ValueError(f"'true' varies within group(s) {bad} of by={by}; add the factor that "
                         "changes it (usually 'param' or 'condition') to by")
    n_rep = g_all.size()
    n_conv = g_all["_conv"].sum()
    index = n_rep.index
    true = g_all["_true"].first().reindex(index)

    used_mask = np.ones(len(df), dtype=bool) if include_nonconverged else conv.to_numpy()
    u = df.loc[used_mask]
    est = u["estimate"].to_numpy(dtype=float)
    tru = u["true"].to_numpy(dtype=float)
    w = u[by].copy()
    w["_est"] = est
    w["_err2"] = (est - tru) ** 2
    # Non-finite estimates are kept in the sums so that they poison them (NaN) instead of
    # being skipped: pandas' group reductions skip NaN, so they are counted and masked below.
    w["_bad"] = ~np.isfinite(est)
    if has_ci:
        lo = u["ci_lower"].to_numpy(dtype=float)
        hi = u["ci_upper"].to_numpy(dtype=float)
        ok = np.isfinite(lo) & np.isfinite(hi)
        w["_has_ci"] = ok
        w["_cov"] = ok & (lo <= tru) & (tru <= hi)
        # Widths only of the rows with two finite ends; NaN elsewhere, which the group
        # reductions below skip (the count of the rows that enter is n_ci).
        with np.errstate(invalid="ignore", over="ignore"):
            w["_wid"] = np.where(ok, hi - lo, np.nan)
    else:
        lo = hi = ok = np.zeros(len(u), dtype=bool)
        w["_has_ci"] = False
        w["_cov"] = False
        w["_wid"] = np.nan
    if has_se:
        se = u["se"].to_numpy(dtype=float)
        ok_se = np.isfinite(se)
        w["_has_se"] = ok_se
        with np.errstate(invalid="ignore", over="ignore"):
            w["_var"] = np.where(ok_se, se * se, np.nan)
    else:
        w["_has_se"] = False
        w["_var"] = np.nan
    g = _groupby(w, by)
    # Centred second moments (group means broadcast back by transform) rather than
    # sum(x^2) - n xbar^2, which loses digits when the spread is small relative to the mean.
    w["_dev2"] = (w["_est"] - g["_est"].transform("mean")) ** 2
    w["_mdev2"] = (w["_err2"] - g["_err2"].transform("mean")) ** 2
    w["_wdev2"] = (w["_wid"] - g["_wid"].transform("mean")) ** 2
    w["_vdev2"] = (w["_var"] - g["_var"].transform("mean")) ** 2
    g = _groupby(w, by)
    raw = g[["_est", "_err2", "_dev2", "_mdev2", "_bad", "_has_ci", "_cov", "_wid", "_wdev2",
             "_has_se", "_var", "_vdev2"]].sum()
    raw_n = g.size()
    # Bias-eliminated coverage compares each interval with tbar, the group's mean estimate:
    # the very value reported as mean_est (same sums, same division), broadcast to the rows
    # by group number.  A non-finite estimate leaves tbar meaningless; masked below by nbad.
    codes = g.ngroup().to_numpy()
    with np.errstate(invalid="ignore"):
        row_tbar = (raw["_est"].to_numpy(dtype=float) / raw_n.to_numpy(dtype=float))[codes]
        becov = ok & (lo <= row_tbar) & (row_tbar <= hi)
    raw["_becov"] = np.bincount(codes, weights=becov, minlength=len(raw))
    sums = raw.reindex(index)
    n_used = raw_n.reindex(index, fill_value=0)

    n = n_used.to_numpy(dtype=float)
    th = true.to_numpy(dtype=float)
    nbad = sums["_bad"].fillna(0).to_numpy(dtype=float)
    m = sums["_has_ci"].fillna(0).to_numpy(dtype=float)
    k = sums["_has_se"].fillna(0).to_numpy(dtype=float)
    ok_n = (n >= 2) & (nbad == 0)
    ok_m = m >= 2
    ok_k = k >= 2
    nan = np.full(len(index), np.nan)
    # errstate: divisions by n - 1, m - 1, k - 1, theta, RMSE, ModSE and EmpSE are guarded by
    # the masks that follow;
    # "over" because a subnormal theta makes relbias overflow to inf, which is its value.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mean_est = np.where(ok_n, sums["_est"].to_numpy(dtype=float) / n, nan)
        bias = mean_est - th
        empse = np.where(ok_n, np.sqrt(sums["_dev2"].to_numpy(dtype=float) / (n - 1)), nan)
        bias_mcse = empse / np.sqrt(n)
        empse_mcse = empse / np.sqrt(2.0 * (n - 1))
        mse = np.where(ok_n, sums["_err2"].to_numpy(dtype=float) / n, nan)
        mse_mcse = np.where(ok_n, np.sqrt(sums["_mdev2"].to_numpy(dtype=float) / (n * (n - 1))),
                            nan)
        rmse = np.sqrt(mse)
        # RMSE = 0 (every estimate exact) leaves the delta method undefined, not zero.
        rmse_mcse = np.where(rmse > 0, mse_mcse / (2.0 * rmse), nan)
        nonzero = (th != 0) & np.isfinite(th)
        relbias = np.where(nonzero, bias / th, nan)
        relbias_mcse = np.where(nonzero, bias_mcse / np.abs(th), nan)
        cov = np.where(ok_m, sums["_cov"].to_numpy(dtype=float) / m, nan)
        cov_mcse = np.sqrt(cov * (1.0 - cov) / m)
        becov = np.where(ok_m & ok_n, sums["_becov"].to_numpy(dtype=float) / m, nan)
        becov_mcse = np.sqrt(becov * (1.0 - becov) / m)
        width = np.where(ok_m, sums["_wid"].to_numpy(dtype=float) / m, nan)
        width_mcse = np.where(ok_m, np.sqrt(sums["_wdev2"].to_numpy(dtype=float) / (m - 1) / m),
                              nan)
        modse = np.where(ok_k, np.sqrt(sums["_var"].to_numpy(dtype=float) / k), nan)
        var_v = np.where(ok_k, sums["_vdev2"].to_numpy(dtype=float) / (k - 1), nan)
        # ModSE = 0 (every se zero) leaves the delta method undefined, as for RMSE.
        modse_mcse = np.where(modse > 0, np.sqrt(var_v / (4.0 * k * modse ** 2)), nan)
        pos_empse = empse > 0
        ratio = np.where(pos_empse, modse / empse, nan)
        relerr = 100.0 * (ratio - 1.0)
        # Table 6: 100 (ModSE/EmpSE) sqrt(V_v/(4 k ModSE^4) + 1/(2(n-1))), i.e. the relative
        # MCSEs of ModSE and of EmpSE in quadrature.
        relerr_mcse = 100.0 * ratio * np.sqrt((modse_mcse / modse) ** 2
                                              + (empse_mcse / empse) ** 2)

    out = pd.DataFrame({
        "n_rep": n_rep.to_numpy(dtype=np.int64),
        "n_used": n_used.to_numpy(dtype=np.int64),
        "nonconverged_share": 1.0 - n_conv.to_numpy(dtype=float) / n_rep.to_numpy(dtype=float),
        "n_nonfinite": nbad.astype(np.int64),
        "true": th,
        "mean_est": mean_est,
        "bias": bias, "bias_mcse": bias_mcse,
        "empse": empse, "empse_mcse": empse_mcse,
        "mse": mse, "mse_mcse": mse_mcse,
        "rmse": rmse, "rmse_mcse": rmse_mcse,
        "relbias": relbias, "relbias_mcse": relbias_mcse,
        "n_ci": m.astype(np.int64),
        "coverage": cov, "coverage_mcse": cov_mcse,
        "be_coverage": becov, "be_coverage_mcse": becov_mcse,
        "width": width, "width_mcse": width_mcse,
        "n_se": k.astype(np.int64),
        "modse": modse, "modse_mcse": modse_mcse,
        "relerr_modse": relerr, "relerr_modse_mcse": relerr_mcse,
    }, index=index).reset_index()
    out.attrs["include_nonconverged"] = bool(include_nonconverged)
    out.attrs["by"] = tuple(by)
    return out


# --------------------------------------------------------------------------------------------
# rate_fit
# --------------------------------------------------------------------------------------------
_RATE_COLUMNS = ["n_points", "n_dropped", "slope", "slope_se", "ci_low", "ci_high", "intercept",
                 "lof_chi2", "lof_df", "lof_p", "slope_se_scaled", "slope_ci_scaled_low",
                 "slope_ci_scaled_high"]


def _line_fit(lx: np.ndarray, ly: np.ndarray, var: np.ndarray | None,
              level: float) -> dict[str, float]:
    """Straight line ``ly = a + b lx``: WLS with known variances ``var``, or OLS if ``None``."""
    k = lx.size
    res = dict.fromkeys(_RATE_COLUMNS, math.nan)
    res["n_points"] = k
    if k < 2:
        return res
    w = np.ones(k) if var is None else 1.0 / var
    # Centring at the weighted means: the slope is sxy / sxx without the cancellation of the
    # uncentred normal equations (needed for 1e-10 agreement with statsmodels' QR/pinv).
    xbar = np.sum(w * lx) / np.sum(w)
    ybar = np.sum(w * ly) / np.sum(w)
    dx = lx - xbar
    sxx = np.sum(w * dx * dx)
    if not sxx > 0:  # all x equal: no slope
        return res
    b = np.sum(w * dx * (ly - ybar)) / sxx
    a = ybar - b * xbar
    rss = float(np.sum(w * (ly - a - b * lx) ** 2))
    df_res = k - 2
    res.update(slope=b, intercept=a, lof_df=df_res)
    if var is not None:
        # Known variances: Var(b) = 1 / sxx exactly, so normal quantiles.
        se = math.sqrt(1.0 / sxx)
        q = stats.norm.ppf(0.5 + level / 2.0)
        res.update(slope_se=se, ci_low=b - q * se, ci_high=b + q * se, lof_chi2=rss)
        if df_res >= 1:
            res["lof_p"] = float(stats.chi2.sf(rss, df_res))
            se_s = se * math.sqrt(max(1.0, rss / df_res))
            res.update(slope_se_scaled=se_s, slope_ci_scaled_low=b - q * se_s,
                       slope_ci_scaled_high=b + q * se_s)
    elif df_res >= 1:
        # OLS: the residual variance is estimated from the scatter, so t quantiles; the CI is
        # already "scaled", and there is no known-variance reference for a lack-of-fit test.
        se = math.sqrt(rss / df_res / sxx)
        q = stats.t.ppf(0.5 + level / 2.0, df_res)
        res.update(slope_se=se, ci_low=b - q * se, ci_high=b + q * se, slope_se_scaled=se,
                   slope_ci_scaled_low=b - q * se, slope_ci_scaled_high=b + q * se)
    return res


def rate_fit(perf: pd.DataFrame, x: str = "n", y: str = "rmse",
             by: str | Sequence[str] = ("method", "param"), level: float = 0.95, *,
             weighted: bool = True) -> pd.DataFrame:
    """Per group, the slope of ``log y`` on ``log x``: the empirical rate (e.g. -1/2 for RMSE).

    Weighted fit (default): weighted least squares of ``log y_k`` on ``log x_k`` over the
    points ``k`` of a group, with weights ``1 / v_k`` where, by the delta method,
    ``v_k = Var(log y_k) ~ (MCSE(y_k) / y_k)^2`` and ``MCSE(y_k)`` is the column ``y + "_mcse"``
    (as written by :func:`performance`; Morris et al. 2019, Table 6; rsimsum).  With
    ``xc = log x - xbar_w``:

    * ``slope = sum w xc log y / sum w xc^2``, ``intercept = ybar_w - slope xbar_w``;
    * ``slope_se = 1 / sqrt(sum w xc^2)``: the variances are treated as *known*, so the CI
      ``slope -+ z_{(1+level)/2} slope_se`` uses the normal quantile;
    * ``lof_chi2 = sum w (log y - intercept - slope log x)^2`` on ``lof_df = n_points - 2``
      degrees of freedom, ``lof_p`` its chi-square upper tail.

    The CI is only as good as the model ``log y = a + b log x`` plus MCSE noise.  If the points
    scatter more than their MCSEs allow (curvature from higher-order terms at small ``x``, or
    MCSEs that understate the noise), ``lof_chi2`` is large, ``lof_p`` small, and the
    known-variance CI is **too narrow**.  ``slope_se_scaled`` and
    ``slope_ci_scaled_low/high`` inflate the SE by ``sqrt(max(1, lof_chi2 / lof_df))`` (the
    common remedy, and what a WLS with estimated scale gives when it exceeds 1); with two
    points there is no check and they are NaN.  Small-``x`` points dominated by higher-order
    terms are better dropped before fitting than absorbed into a scaled CI.

    Unweighted fit (``weighted=False``): ordinary least squares, no MCSE column needed; the SE
    uses the residual variance on ``n_points - 2`` df and the CI the t quantile (so the scaled
    columns equal the plain ones and the lack-of-fit columns are NaN).

    Parameters
    ----------
    perf : output of :func:`performance` grouped with ``x`` among its ``by`` columns.
    x, y : regressor and response columns; both must be positive (points with a non-positive
        or non-finite ``x``, ``y`` or MCSE are dropped and counted in ``n_dropped``).
    by : columns defining a fit.  ``x`` must not repeat within a group: a repeat means another
        factor varies (e.g. ``family``) and belongs in ``by``.
    level : confidence level of the intervals.
    weighted : WLS with MCSE weights (default) or OLS.

    Returns
    -------
    One row per group: ``by``, ``n_points``, ``n_dropped``, ``slope``, ``slope_se``, ``ci_low``,
    ``ci_high``, ``intercept``, ``lof_chi2``, ``lof_df``, ``lof_p``, ``slope_se_scaled``,
    ``slope_ci_scaled_low``, ``slope_ci_scaled_high``.  Fewer than two points give NaN.
    """
    by = _as_list(by)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    ycol = f"{y}_mcse"
    need = [*by, x, y] + ([ycol] if weighted else [])
    _require(perf, need, "rate_fit")
    dup = perf.duplicated([*by, x])
    if dup.any():
        ex = perf.loc[dup, [*by, x]].head(3).to_dict("records")
        raise ValueError(f"rate_fit: {x!r} repeats within groups of by={by} (e.g. {ex}); "
                         "add the factor that varies to by, or aggregate first")
    rows = []
    for key, grp in _groupby(perf, by):
        xv = grp[x].to_numpy(dtype=float)
        yv = grp[y].to_numpy(dtype=float)
        ok = np.isfinite(xv) & np.isfinite(yv) & (xv > 0) & (yv > 0)
        sv = None
        if weighted:
            sv = grp[ycol].to_numpy(dtype=float)
            ok &= np.isfinite(sv) & (sv > 0)
        var = None if sv is None else (sv[ok] / yv[ok]) ** 2
        res = _line_fit(np.log(xv[ok]), np.log(yv[ok]), var, level)
        res["n_dropped"] = int((~ok).sum())
        rows.append({**dict(zip(by, key, strict=True)), **res})
    out = pd.DataFrame(rows, columns=[*by, *_RATE_COLUMNS])
    out = out.astype({"n_points": np.int64, "n_dropped": np.int64})
    out.attrs.update(weighted=bool(weighted), level=float(level), x=x, y=y)
    return out


# --------------------------------------------------------------------------------------------
# selection and convergence
# --------------------------------------------------------------------------------------------
def _group_means(per_rep: pd.DataFrame, by: list[str], cols: list[str],
                 include_nonconverged: bool) -> pd.DataFrame:
    """Per group of per-replication values: n_rep, n_used, nonconverged_share, mean, MCSE.

    ``MCSE = sd / sqrt(n)`` (sd with ``n - 1``): the MCSE of a mean over independent
    replications, as for bias in Morris et al. (2019), Table 6.
    """
    g_all = _groupby(per_rep, by)
    n_rep = g_all.size()
    n_conv = g_all["_conv"].sum()
    used = per_rep if include_nonconverged else per_rep.loc[per_rep["_conv"]]
    g = _groupby(used, by)
    n_used = g.size().reindex(n_rep.index, fill_value=0)
    n = n_used.to_numpy(dtype=float)
    out = pd.DataFrame({
        "n_rep": n_rep.to_numpy(dtype=np.int64),
        "n_used": n_used.to_numpy(dtype=np.int64),
        "nonconverged_share": 1.0 - n_conv.to_numpy(dtype=float) / n_rep.to_numpy(dtype=float),
    }, index=n_rep.index)
    for c in cols:
        # NaN per-replication values (non-finite estimates) must poison the mean, not be
        # skipped by pandas, so they are counted and masked.
        isnan = used[by].assign(_isnan=used[c].isna().to_numpy())
        n_nan = _groupby(isnan, by)["_isnan"].sum().reindex(n_rep.index, fill_value=0)
        ok = (n >= 2) & (n_nan.to_numpy() == 0)
        mean = g[c].mean().reindex(n_rep.index).to_numpy(dtype=float)
        sd = g[c].std(ddof=1).reindex(n_rep.index).to_numpy(dtype=float)
        out[c] = np.where(ok, mean, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{c}_mcse"] = np.where(ok, sd / np.sqrt(n), np.nan)
    return out


def selection(df: pd.DataFrame, by: str | Sequence[str] = FIT_BY, *, tol: float = 0.0,
              include_nonconverged: bool = False) -> pd.DataFrame:
    """Variable-selection measures over the slopes (``param != "intercept"``), per group.

    Per replication (one fit), with ``Z = {j : true_j = 0}`` and ``Zhat = {j : |est_j| <= tol}``:

    * ``correct_zeros = |Z & Zhat|`` (true-zero slopes estimated zero),
    * ``incorrect_zeros = |Zhat - Z|`` (true-nonzero slopes estimated zero),
    * ``exact_support = 1[Zhat == Z]`` (estimated support equals the true support).

    Per group: each mean over the used replications with ``MCSE = sd / sqrt(n)`` (the MCSE of
    a mean, as for bias in Morris et al. 2019, Table 6; rsimsum), plus ``n_true_zero`` and
    ``n_true_nonzero`` (mean counts, the denominators of the first two), ``n_rep``, ``n_used``
    and ``nonconverged_share``.  A replication is converged when all its rows (intercept
    included) are; non-converged replications are excluded unless ``include_nonconverged``.
    A replication with a non-finite slope estimate gets NaN measures (it is neither zero nor
    nonzero), which make its group's measures NaN; groups with ``n_used < 2`` are NaN.

    ``tol = 0`` counts exact zeros, which is what l1/SCAD/MCP solvers return; a positive
    ``tol`` is for solvers that only approach zero.
    """
    by = _as_list(by)
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    key = _replication_key(df, by)
    _require(df, [*key, "param", "estimate", "true", "converged"], "selection")
    _check_unique_rows(df)
    est = df["estimate"].to_numpy(dtype=float)
    tru = df["true"].to_numpy(dtype=float)
    slope = (df["param"] != _INTERCEPT).to_numpy()
    true_zero = slope & (tru == 0)
    true_nonzero = slope & (tru != 0)
    est_zero = np.abs(est) <= tol
    work = df[key].copy()
    work["_conv"] = _converged(df).to_numpy()
    work["_nan"] = slope & ~np.isfinite(est)
    work["n_true_zero"] = true_zero
    work["n_true_nonzero"] = true_nonzero
    work["correct_zeros"] = true_zero & est_zero
    work["incorrect_zeros"] = true_nonzero & est_zero
    per_rep = _groupby(work, key).agg(
        _conv=("_conv", "all"), _nan=("_nan", "any"), n_true_zero=("n_true_zero", "sum"),
        n_true_nonzero=("n_true_nonzero", "sum"), correct_zeros=("correct_zeros", "sum"),
        incorrect_zeros=("incorrect_zeros", "sum"))
    per_rep = per_rep.astype({c: float for c in ("n_true_zero", "n_true_nonzero",
                                                  "correct_zeros", "incorrect_zeros")})
    per_rep["exact_support"] = ((per_rep["correct_zeros"] == per_rep["n_true_zero"])
                                & (per_rep["incorrect_zeros"] == 0)).astype(float)
    measures = ["correct_zeros", "incorrect_zeros", "exact_support"]
    per_rep.loc[per_rep["_nan"], measures] = np.nan
    per_rep = per_rep.reset_index()
    out = _group_means(per_rep, by, [*measures, "n_true_zero", "n_true_nonzero"],
                       include_nonconverged)
    # The true counts are design constants, not estimates: their "MCSE" would only confuse.
    out = out.drop(columns=["n_true_zero_mcse", "n_true_nonzero_mcse"]).reset_index()
    out.attrs["include_nonconverged"] = bool(include_nonconverged)
    out.attrs["tol"] = float(tol)
    return out


def convergence(df: pd.DataFrame, by: str | Sequence[str] = FIT_BY) -> pd.DataFrame:
    """Per group: ``n_rep`` fits, ``n_converged``, ``share`` converged and counts per status.

    A fit is one replication of one method (all its parameter rows); it is converged when all
    its rows are.  Its status is the common ``status`` of its rows; rows that disagree (which
    the runner never writes) give the sorted distinct values joined by ``"|"`` so that the
    disagreement shows as its own column instead of being hidden.  Missing statuses count as
    ``"<NA>"``.  Status counts are columns ``status_<value>``, zero-filled.
    """
    by = _as_list(by)
    key = _replication_key(df, by)
    _require(df, [*key, "converged", "status"], "convergence")
    work = df[key].copy()
    work["_conv"] = _converged(df).to_numpy()
    work["_status"] = df["status"].astype(object).where(df["status"].notna(), "<NA>").astype(str)
    g_rep = _groupby(work, key)
    per_rep = g_rep.agg(_conv=("_conv", "all"), _status=("_status", "first"))
    # The Python-level join runs only on the (normally absent) disagreeing fits: on all of
    # them it would dominate the run time of a large store.
    mixed = g_rep["_status"].transform("nunique").to_numpy() > 1
    if mixed.any():
        joined = _groupby(work.loc[mixed], key)["_status"].agg(
            lambda s: "|".join(sorted(set(s))))
        per_rep.loc[joined.index, "_status"] = joined
    per_rep = per_rep.reset_index()
    g = _groupby(per_rep, by)
    n_rep = g.size()
    n_conv = g["_conv"].sum()
    out = pd.DataFrame({"n_rep": n_rep.astype(np.int64),
                        "n_converged": n_conv.astype(np.int64),
                        "share": n_conv.to_numpy(dtype=float) / n_rep.to_numpy(dtype=float)},
                       index=n_rep.index)
    counts = g["_status"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(n_rep.index, fill_value=0).astype(np.int64)
    counts.columns = [f"status_{c}" for c in counts.columns]
    return pd.concat([out, counts], axis=1).reset_index()


# --------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------
def format_estimate(value: float, mcse: float, *, mcse_digits: int = 2,
                    max_decimals: int = 8, fallback_digits: int = 4) -> str:
    """``"0.1234 (0.0021)"``: ``value`` with its MCSE, both to the MCSE's precision.

    The MCSE is rounded to ``mcse_digits`` significant digits and ``value`` to the same
    decimal place, so no digit is shown that the Monte Carlo error makes meaningless (in the
    spirit of the reporting advice of Morris et al. 2019).  At most ``max_decimals`` decimals
    (an MCSE of 1e-15 is round-off, not precision).  A missing or zero MCSE gives ``value``
    to ``fallback_digits`` significant digits and ``(NA)`` or ``(0)``; a missing value "NA".
    """
    if mcse_digits < 1:
        raise ValueError(f"mcse_digits must be >= 1, got {mcse_digits}")
    if value is None or not math.isfinite(value):
        return "NA" if value is None or math.isnan(value) else str(value)
    if mcse is None or math.isnan(mcse):
        return f"{value:.{fallback_digits}g} (NA)"
    if mcse < 0:
        raise ValueError(f"an MCSE is >= 0, got {mcse}")
    if mcse == 0:
        return f"{value:.{fallback_digits}g} (0)"
    if math.isinf(mcse):
        return f"{value:.{fallback_digits}g} (inf)"
    # Round the MCSE first: 0.00996 at two digits is 0.010, whose place (3 decimals) decides.
    m = float(f"{mcse:.{mcse_digits - 1}e}")
    decimals = min(max_decimals, max(0, mcse_digits - 1 - math.floor(math.log10(m))))
    return f"{value:.{decimals}f} ({m:.{decimals}f})"
