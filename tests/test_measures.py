"""Tests of :mod:`gfgsm.mc.measures` against hand computations and independent libraries.

Hand computations use plain Python arithmetic on tiny inputs (never the module's code);
Monte Carlo checks use fixed seeds, with tolerances chosen as >= 3 Monte Carlo SEs of the
quantity compared so that they would also pass for almost any other seed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from gfgsm.mc.measures import (
    convergence,
    format_estimate,
    performance,
    rate_fit,
    selection,
)

# Round-off tolerance for closed-form quantities computed two ways in double precision.
RTOL = 1e-12


def _rows(estimates, true, *, converged=None, ci=None, se=None, method="a", param="beta1",
          condition=0, status=None) -> pd.DataFrame:
    """A results frame of one (condition, method, param) cell, one row per replication."""
    k = len(estimates)
    converged = [True] * k if converged is None else converged
    frame = {
        "condition": condition, "family": "gaussian", "n": 100, "method": method,
        "rep": np.arange(k), "param": param, "estimate": np.asarray(estimates, dtype=float),
        "true": float(true), "converged": np.asarray(converged, dtype=bool),
        "status": status if status is not None else ["ok" if c else "maxiter" for c in converged],
    }
    if ci is not None:
        frame["ci_lower"] = [c[0] for c in ci]
        frame["ci_upper"] = [c[1] for c in ci]
    if se is not None:
        frame["se"] = np.asarray(se, dtype=float)
    return pd.DataFrame(frame)


# --------------------------------------------------------------------------------------------
# performance: formulas on a tiny input
# --------------------------------------------------------------------------------------------
def test_every_mcse_formula_by_hand():
    # estimates 1, 2, 4; true 2; intervals: [0, 3] and [1.5, 2.5] cover 2, [3, 5] does not.
    df = _rows([1.0, 2.0, 4.0], 2.0, ci=[(0.0, 3.0), (1.5, 2.5), (3.0, 5.0)])
    r = performance(df).iloc[0]
    n = 3
    mean = (1 + 2 + 4) / 3                                    # 7/3
    ss = (1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2  # 16/9 + 1/9 + 25/9 = 14/3
    empse = math.sqrt(ss / (n - 1))                           # sqrt(7/3)
    err2 = [(1 - 2) ** 2, (2 - 2) ** 2, (4 - 2) ** 2]         # 1, 0, 4
    mse = sum(err2) / n                                       # 5/3
    mse_mcse = math.sqrt(sum((e - mse) ** 2 for e in err2) / (n * (n - 1)))  # sqrt(13)/3
    expected = {
        "n_rep": 3, "n_used": 3, "nonconverged_share": 0.0, "true": 2.0, "mean_est": mean,
        "bias": mean - 2, "bias_mcse": empse / math.sqrt(n),
        "empse": empse, "empse_mcse": empse / math.sqrt(2 * (n - 1)),
        "mse": mse, "mse_mcse": mse_mcse,
        "rmse": math.sqrt(mse), "rmse_mcse": mse_mcse / (2 * math.sqrt(mse)),
        "relbias": (mean - 2) / 2, "relbias_mcse": empse / math.sqrt(n) / 2,
        "n_ci": 3, "coverage": 2 / 3, "coverage_mcse": math.sqrt((2 / 3) * (1 / 3) / 3),
    }
    for k, v in expected.items():
        assert r[k] == pytest.approx(v, rel=RTOL), k
    # The closed forms of the comments, as a check on the arithmetic above.
    assert r["bias_mcse"] == pytest.approx(math.sqrt(7) / 3, rel=RTOL)
    assert r["mse_mcse"] == pytest.approx(math.sqrt(13) / 3, rel=RTOL)


def test_bias_mcse_is_scipy_sem():
    # Independent library: MCSE(bias) is the standard error of the mean of the estimates.
    from scipy import stats

    est = np.random.default_rng(0).normal(1.0, 2.0, size=37)
    r = performance(_rows(est, 1.0)).iloc[0]
    assert r["bias_mcse"] == pytest.approx(stats.sem(est), rel=RTOL)
    assert r["empse"] == pytest.approx(np.std(est, ddof=1), rel=RTOL)


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=30),
       st.floats(-10, 10, allow_nan=False))
def test_mse_decomposition(est, true):
    # Identity: MSE = bias^2 + (n - 1)/n EmpSE^2; a check independent of the MCSE formulas.
    r = performance(_rows(est, true)).iloc[0]
    n = len(est)
    scale = max(1.0, max(abs(e - true) for e in est)) ** 2
    lhs = r["bias"] ** 2 + (n - 1) / n * r["empse"] ** 2
    assert r["mse"] == pytest.approx(lhs, rel=1e-9, abs=1e-12 * scale)
    assert r["bias_mcse"] == pytest.approx(r["empse"] / math.sqrt(n), rel=RTOL, abs=1e-300)


# --------------------------------------------------------------------------------------------
# performance: MCSEs against the brute-force spread over many simulated studies
# --------------------------------------------------------------------------------------------
def test_mcse_matches_spread_over_studies():
    # 2000 independent studies of 50 replications each; each replication's estimate is a
    # N(theta, sigma^2) draw with the exact 95% interval est -+ 1.96 sigma (true coverage 0.95).
    # The MCSE of a measure claims to be the SD of that measure across studies.
    #
    # Tolerance 5%: the SD of 2000 draws of a near-normal statistic has relative SE
    # 1/sqrt(2 * 1999) = 1.6% (binomial coverage: kurtosis 3.3 gives 1.7%), so 5% is ~3 SEs;
    # the MCSE formulas' own small-sample biases are below 0.6% at n = 50 for bias and EmpSE
    # (E[s] = c4 sigma, c4(50) = 0.995).
    studies, reps, theta, sigma = 2000, 50, 0.3, 1.7
    rng = np.random.default_rng(20190101)
    est = rng.normal(theta, sigma, size=(studies, reps))
    z = 1.959963984540054
    df = pd.DataFrame({
        "condition": np.repeat(np.arange(studies), reps), "method": "m",
        "rep": np.tile(np.arange(reps), studies), "param": "beta1",
        "estimate": est.ravel(), "true": theta, "converged": True, "status": "ok",
        "ci_lower": est.ravel() - z * sigma, "ci_upper": est.ravel() + z * sigma,
    })
    perf = performance(df)
    assert len(perf) == studies
    for m in ("bias", "empse"):
        sd = perf[m].std(ddof=1)
        assert perf[f"{m}_mcse"].mean() == pytest.approx(sd, rel=0.05), m
    # Coverage: sqrt(C(1-C)/n) at C = 0.95, n = 50 is biased low in the mean (Jensen, and a
    # study with C = 1 reports 0: the mean MCSE is 0.92 of the truth).  Its square is
    # nearly unbiased, E[C(1-C)/n] = p(1-p)(n-1)/n^2, so the RMS MCSE rescaled by
    # sqrt(n/(n-1)) is compared, and the SD is also checked against the exact binomial SD.
    sd = perf["coverage"].std(ddof=1)
    rms = math.sqrt((perf["coverage_mcse"] ** 2).mean() * reps / (reps - 1))
    assert rms == pytest.approx(sd, rel=0.05)
    assert sd == pytest.approx(math.sqrt(0.95 * 0.05 / reps), rel=0.05)
    assert perf["coverage"].mean() == pytest.approx(0.95, abs=0.003)  # SE 0.0007


# --------------------------------------------------------------------------------------------
# performance: non-convergence, NaN rules, validation
# --------------------------------------------------------------------------------------------
def test_nonconverged_excluded_and_counted():
    # Rep 3 did not converge and has a wild estimate: excluded by default, counted in the share.
    df = _rows([1.0, 2.0, 4.0, 1000.0], 2.0, converged=[True, True, False, True])
    r = performance(df)
    assert r.attrs["include_nonconverged"] is False
    row = r.iloc[0]
    assert (row["n_rep"], row["n_used"]) == (4, 3)
    assert row["nonconverged_share"] == 0.25
    assert row["bias"] == pytest.approx((1 + 2 + 1000) / 3 - 2, rel=RTOL)
    # Included on request, and said so.
    r_all = performance(df, include_nonconverged=True)
    assert r_all.attrs["include_nonconverged"] is True
    row = r_all.iloc[0]
    assert (row["n_rep"], row["n_used"]) == (4, 4)
    assert row["nonconverged_share"] == 0.25
    assert row["bias"] == pytest.approx((1 + 2 + 4 + 1000) / 4 - 2, rel=RTOL)


def test_small_groups_give_nan_without_warnings():
    # One group with a single converged fit, one with none: NaN measures, no error, and no
    # RuntimeWarning (division by n - 1 = 0 must be guarded, not merely silenced by pytest).
    df = pd.concat([_rows([1.0, 5.0], 2.0, converged=[True, False], method="a"),
                    _rows([1.0, 5.0], 2.0, converged=[False, False], method="b")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = performance(df).set_index("method")
    assert list(r["n_used"]) == [1, 0]
    assert list(r["nonconverged_share"]) == [0.5, 1.0]
    measures = ["bias", "bias_mcse", "empse", "empse_mcse", "mse", "mse_mcse", "rmse",
                "rmse_mcse", "relbias", "relbias_mcse", "coverage", "coverage_mcse"]
    assert r[measures].isna().all().all()


def test_relbias_nan_at_true_zero():
    r = performance(_rows([0.1, -0.2, 0.3], 0.0)).iloc[0]
    assert np.isnan(r["relbias"]) and np.isnan(r["relbias_mcse"])
    assert r["bias"] == pytest.approx(0.2 / 3, rel=RTOL)  # the other measures are still there


def test_true_must_be_constant_within_group():
    df = _rows([1.0, 2.0, 3.0], 2.0)
    df.loc[1, "true"] = 2.5
    with pytest.raises(ValueError, match="'true' varies"):
        performance(df)
    # Pooling over parameters with different truths is the common way to trigger it.
    both = pd.concat([_rows([1.0, 2.0], 2.0), _rows([0.0, 1.0], 0.0, param="intercept")])
    with pytest.raises(ValueError, match="'true' varies"):
        performance(both, by=("condition", "method"))


def test_coverage_nan_without_intervals_and_partial_intervals_counted():
    r = performance(_rows([1.0, 2.0, 3.0], 2.0)).iloc[0]  # no interval columns at all
    assert r["n_ci"] == 0 and np.isnan(r["coverage"])
    r = performance(_rows([1.0, 2.0, 3.0], 2.0, ci=[(np.nan, np.nan)] * 3)).iloc[0]
    assert r["n_ci"] == 0 and np.isnan(r["coverage"]) and np.isnan(r["coverage_mcse"])
    # Two intervals of three: coverage over those two (1 of 2 covers), n_ci says so.
    r = performance(_rows([1.0, 2.0, 3.0], 2.0,
                          ci=[(0.0, 1.5), (1.0, 3.0), (np.nan, np.nan)])).iloc[0]
    assert r["n_ci"] == 2
    assert r["coverage"] == 0.5
    assert r["coverage_mcse"] == pytest.approx(math.sqrt(0.5 * 0.5 / 2), rel=RTOL)


def test_nonfinite_estimate_poisons_instead_of_being_skipped():
    df = _rows([1.0, np.nan, 3.0, 4.0], 2.0, converged=[True, False, True, True])
    r = performance(df).iloc[0]  # the NaN is in a non-converged fit: excluded
    assert r["n_nonfinite"] == 0 and np.isfinite(r["bias"])
    r = performance(df, include_nonconverged=True).iloc[0]
    assert r["n_nonfinite"] == 1
    assert np.isnan(r["bias"]) and np.isnan(r["empse"]) and np.isnan(r["mse"])


def test_input_validation():
    df = _rows([1.0, 2.0, 3.0], 2.0)
    with pytest.raises(ValueError, match="missing column"):
        performance(df.drop(columns="converged"))
    bad = df.astype({"converged": object})
    bad.loc[0, "converged"] = None
    with pytest.raises(ValueError, match="missing values"):
        performance(bad)
    with pytest.raises(ValueError, match="repeated"):
        performance(pd.concat([df, df.iloc[[0]]]))


def test_groups_and_factor_columns():
    # Two conditions x two params; factor columns can be carried through by.
    df = pd.concat([
        _rows([1.0, 2.0, 3.0], 2.0, condition=0),
        _rows([0.0, 0.5, 1.0], 0.5, condition=0, param="intercept"),
        _rows([2.0, 2.0, 2.5], 2.0, condition=1).assign(n=400),
        _rows([0.4, 0.5, 0.6], 0.5, condition=1, param="intercept").assign(n=400),
    ])
    r = performance(df, by=("condition", "n", "method", "param"))
    assert list(r.columns[:4]) == ["condition", "n", "method", "param"]
    assert len(r) == 4
    assert list(r["n"]) == [100, 100, 400, 400]
    row = r.set_index(["condition", "param"]).loc[(1, "beta1")]
    assert row["bias"] == pytest.approx(6.5 / 3 - 2, rel=RTOL)


# --------------------------------------------------------------------------------------------
# performance: interval and model-SE measures (Morris et al. 2019, Table 6)
# --------------------------------------------------------------------------------------------
# The output columns before these measures were added, in order: they must not change.
OLD_COLUMNS = ["condition", "method", "param", "n_rep", "n_used", "nonconverged_share",
               "n_nonfinite", "true", "mean_est", "bias", "bias_mcse", "empse", "empse_mcse",
               "mse", "mse_mcse", "rmse", "rmse_mcse", "relbias", "relbias_mcse", "n_ci",
               "coverage", "coverage_mcse"]
NEW_COLUMNS = ["be_coverage", "be_coverage_mcse", "width", "width_mcse", "n_se", "modse",
               "modse_mcse", "relerr_modse", "relerr_modse_mcse"]
INTERVAL_MEASURES = ["be_coverage", "be_coverage_mcse", "width", "width_mcse"]
SE_MEASURES = ["modse", "modse_mcse", "relerr_modse", "relerr_modse_mcse"]


def _mean(xs):
    return sum(xs) / len(xs)


def _var(xs):
    """Sample variance (n - 1) in plain Python."""
    xbar = _mean(xs)
    return sum((x - xbar) ** 2 for x in xs) / (len(xs) - 1)


def test_interval_and_modse_measures_by_hand():
    # Five replications, true 2; tbar = 13/5 = 2.6.  Intervals and whether they contain
    # theta = 2 / tbar = 2.6, and their widths:
    #   [0.0, 2.2]  yes / no   2.2
    #   [1.0, 3.0]  yes / yes  2.0
    #   [2.1, 2.9]  no  / yes  0.8
    #   [1.5, 4.5]  yes / yes  3.0
    #   [2.5, 6.5]  no  / yes  4.0
    # so coverage 3/5, bias-eliminated coverage 4/5, mean width 12/5.
    est = [1.0, 2.0, 2.5, 3.0, 4.5]
    ci = [(0.0, 2.2), (1.0, 3.0), (2.1, 2.9), (1.5, 4.5), (2.5, 6.5)]
    se = [0.5, 1.0, 0.5, 1.5, 1.0]
    r = performance(_rows(est, 2.0, ci=ci, se=se)).iloc[0]
    n = 5
    widths = [hi - lo for lo, hi in ci]
    v = [s * s for s in se]                 # 0.25, 1, 0.25, 2.25, 1: mean 0.95
    modse = math.sqrt(_mean(v))             # sqrt(0.95)
    var_v = _var(v)                         # (0.49 + 0.0025 + 0.49 + 1.69 + 0.0025) / 4
    empse = math.sqrt(_var(est))            # sqrt(6.7 / 4)
    ratio = modse / empse
    expected = {
        "n_ci": 5, "n_se": 5, "mean_est": 2.6,
        "coverage": 3 / 5, "coverage_mcse": math.sqrt(3 / 5 * 2 / 5 / n),
        "be_coverage": 4 / 5, "be_coverage_mcse": math.sqrt(4 / 5 * 1 / 5 / n),
        "width": 12 / 5, "width_mcse": math.sqrt(_var(widths) / n),
        "modse": modse, "modse_mcse": math.sqrt(var_v / (4 * n * modse ** 2)),
        "relerr_modse": 100 * (ratio - 1),
        "relerr_modse_mcse": 100 * ratio * math.sqrt(var_v / (4 * n * modse ** 4)
                                                     + 1 / (2 * (n - 1))),
    }
    for k, val in expected.items():
        assert r[k] == pytest.approx(val, rel=RTOL), k
    # The closed forms of the comments, as a check on the arithmetic above.
    assert r["modse"] == pytest.approx(math.sqrt(0.95), rel=RTOL)
    assert r["modse_mcse"] == pytest.approx(math.sqrt(0.66875 / 19), rel=RTOL)
    assert r["width_mcse"] == pytest.approx(math.sqrt(1.42 / 5), rel=RTOL)
    assert r["relerr_modse"] == pytest.approx(100 * (math.sqrt(0.95 / 1.675) - 1), rel=RTOL)
    assert r["relerr_modse_mcse"] == pytest.approx(
        100 * math.sqrt(0.95 / 1.675) * math.sqrt(0.66875 / (20 * 0.95 ** 2) + 1 / 8), rel=RTOL)


def test_interval_and_se_measures_follow_the_used_rows_rule():
    # Rep 4 did not converge; rep 1 has no interval and no se.  True 1.
    est = [1.0, 2.0, 3.0, 5.0, 4.0]
    ci = [(0.0, 2.0), (np.nan, 3.0), (2.0, 4.0), (2.5, 6.0), (0.0, 1.0)]
    se = [1.0, np.nan, 3.0, 2.0, 100.0]
    df = _rows(est, 1.0, ci=ci, se=se, converged=[True, True, True, True, False])
    r = performance(df).iloc[0]
    # Used: reps 0-3, tbar = 11/4 = 2.75 (over all four, rep 1 included).  Intervals of reps
    # 0, 2, 3: contain theta = 1: yes, no, no; contain 2.75: no, yes, yes; widths 2, 2, 3.5.
    assert (r["n_used"], r["n_ci"], r["n_se"]) == (4, 3, 3)
    assert r["coverage"] == pytest.approx(1 / 3, rel=RTOL)
    assert r["be_coverage"] == pytest.approx(2 / 3, rel=RTOL)
    assert r["be_coverage_mcse"] == pytest.approx(math.sqrt(2 / 3 * 1 / 3 / 3), rel=RTOL)
    assert r["width"] == pytest.approx(7.5 / 3, rel=RTOL)
    assert r["width_mcse"] == pytest.approx(math.sqrt(_var([2.0, 2.0, 3.5]) / 3), rel=RTOL)
    # ModSE over the k = 3 finite se of the used reps; EmpSE over the n = 4 used estimates:
    # each keeps its own count in the relative-error MCSE.
    v = [1.0, 9.0, 4.0]
    modse = math.sqrt(_mean(v))
    empse = math.sqrt(_var([1.0, 2.0, 3.0, 5.0]))
    assert r["modse"] == pytest.approx(math.sqrt(14 / 3), rel=RTOL)
    assert r["modse_mcse"] == pytest.approx(math.sqrt(_var(v) / (4 * 3 * modse ** 2)),
                                            rel=RTOL)
    assert r["relerr_modse"] == pytest.approx(100 * (modse / empse - 1), rel=RTOL)
    assert r["relerr_modse_mcse"] == pytest.approx(
        100 * modse / empse * math.sqrt(_var(v) / (4 * 3 * modse ** 4) + 1 / (2 * 3)),
        rel=RTOL)
    # Including the non-converged rep brings its interval and its se in.
    r = performance(df, include_nonconverged=True).iloc[0]
    assert (r["n_used"], r["n_ci"], r["n_se"]) == (5, 4, 4)
    assert r["modse"] == pytest.approx(math.sqrt((1 + 9 + 4 + 10000) / 4), rel=RTOL)
    assert r["width"] == pytest.approx(8.5 / 4, rel=RTOL)
    # tbar = 15/5 = 3: contained by [2, 4] and [2.5, 6] only.
    assert r["be_coverage"] == pytest.approx(2 / 4, rel=RTOL)


def test_nonfinite_estimate_poisons_only_what_uses_the_estimates():
    # A NaN estimate makes tbar, hence be_coverage, and EmpSE, hence relerr_modse, NaN; the
    # width and ModSE do not use the estimates and stay (as coverage does).
    df = _rows([1.0, np.nan, 3.0], 2.0, ci=[(0.0, 2.5), (1.0, 2.0), (2.5, 3.5)],
               se=[1.0, 2.0, 3.0])
    r = performance(df).iloc[0]
    assert r["n_nonfinite"] == 1
    assert np.isnan(r["be_coverage"]) and np.isnan(r["be_coverage_mcse"])
    assert np.isnan(r["relerr_modse"]) and np.isnan(r["relerr_modse_mcse"])
    assert r["coverage"] == pytest.approx(2 / 3, rel=RTOL)
    assert r["width"] == pytest.approx((2.5 + 1.0 + 1.0) / 3, rel=RTOL)
    assert r["modse"] == pytest.approx(math.sqrt(14 / 3), rel=RTOL)


def test_interval_and_se_edge_cases_give_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # One finite interval and one finite se: no MCSE, so NaN (as coverage).
        r = performance(_rows([1.0, 2.0, 3.0], 2.0, ci=[(0.0, 4.0), (np.nan, 1.0),
                                                         (np.inf, 5.0)],
                              se=[1.0, np.nan, -np.inf])).iloc[0]
        assert (r["n_ci"], r["n_se"]) == (1, 1)
        assert r[["coverage", *INTERVAL_MEASURES, *SE_MEASURES]].isna().all()
        # Every se zero: ModSE 0 and relative error -100, but the delta-method MCSEs are
        # undefined (as for RMSE = 0).
        r = performance(_rows([1.0, 2.0, 3.0], 2.0, se=[0.0, 0.0, 0.0])).iloc[0]
        assert r["modse"] == 0.0 and r["relerr_modse"] == -100.0
        assert np.isnan(r["modse_mcse"]) and np.isnan(r["relerr_modse_mcse"])
        # Every estimate equal: EmpSE 0, so no relative error of ModSE.
        r = performance(_rows([2.0, 2.0, 2.0], 2.0, se=[1.0, 2.0, 2.0])).iloc[0]
        assert r["empse"] == 0.0 and r["modse"] == pytest.approx(math.sqrt(3.0), rel=RTOL)
        assert np.isnan(r["relerr_modse"]) and np.isnan(r["relerr_modse_mcse"])
        # No used replication at all.
        r = performance(_rows([1.0, 2.0], 2.0, ci=[(0.0, 3.0)] * 2, se=[1.0, 1.0],
                              converged=[False, False])).iloc[0]
        assert (r["n_ci"], r["n_se"]) == (0, 0)
        assert r[[*INTERVAL_MEASURES, *SE_MEASURES]].isna().all()


def test_missing_columns_leave_the_new_measures_nan_and_the_rest_unchanged():
    # Like coverage (NaN with n_ci = 0 without interval columns), the new measures are NaN
    # with n_ci = 0 / n_se = 0 when their columns are absent: the output columns are the same
    # whatever the input has, and the measures that existed before are unchanged.
    est = [1.0, 2.0, 4.0, 3.5]
    ci = [(0.0, 3.0), (1.5, 2.5), (3.0, 5.0), (2.0, 5.0)]
    se = [1.0, 0.5, 1.0, 1.5]
    full = performance(_rows(est, 2.0, ci=ci, se=se))
    bare = performance(_rows(est, 2.0))
    no_se = performance(_rows(est, 2.0, ci=ci))
    no_ci = performance(_rows(est, 2.0, se=se))
    for r in (full, bare, no_se, no_ci):
        assert list(r.columns) == OLD_COLUMNS + NEW_COLUMNS
    assert bare.iloc[0][["coverage", *INTERVAL_MEASURES, *SE_MEASURES]].isna().all()
    assert (bare.iloc[0]["n_ci"], bare.iloc[0]["n_se"]) == (0, 0)
    assert no_se.iloc[0][SE_MEASURES].isna().all() and no_se.iloc[0]["n_se"] == 0
    assert no_ci.iloc[0][INTERVAL_MEASURES].isna().all() and no_ci.iloc[0]["n_ci"] == 0
    # Each optional column feeds only its own measures.
    estimate_based = [c for c in OLD_COLUMNS if c not in ("n_ci", "coverage", "coverage_mcse")]
    for r in (bare, no_se, no_ci):
        pd.testing.assert_frame_equal(r[estimate_based], full[estimate_based])
    interval = ["n_ci", "coverage", "coverage_mcse", *INTERVAL_MEASURES]
    pd.testing.assert_frame_equal(no_se[interval], full[interval])
    pd.testing.assert_frame_equal(no_ci[["n_se", *SE_MEASURES]], full[["n_se", *SE_MEASURES]])


def _symmetric_studies(studies: int, pairs: int, theta: float, seed: int) -> pd.DataFrame:
    """Studies whose estimates come in mirror pairs theta -+ d: tbar = theta by construction.

    Intervals est -+ 1.96 se with a random se, so that some miss theta."""
    rng = np.random.default_rng(seed)
    d = rng.normal(0.0, 1.0, size=(studies, pairs))
    est = np.concatenate([theta + d, theta - d], axis=1)
    se = rng.uniform(0.3, 1.5, size=est.shape)
    reps = 2 * pairs
    return pd.DataFrame({
        "condition": np.repeat(np.arange(studies), reps), "method": "m",
        "rep": np.tile(np.arange(reps), studies), "param": "beta1",
        "estimate": est.ravel(), "true": theta, "converged": True,
        "ci_lower": (est - 1.96 * se).ravel(), "ci_upper": (est + 1.96 * se).ravel(),
    })


def test_be_coverage_equals_coverage_for_an_unbiased_design():
    # Dyadic numbers: the mirror pairs 0.5 -+ d sum exactly, so tbar = theta = 0.5 exactly
    # and bias-eliminated coverage is coverage, to the last bit.  Intervals:
    # [0.25, 0.5] yes, [0, 1.5] yes, [-0.5, 0.25] no, [-1, 2] yes, [0.625, 0.75] no,
    # [-0.25, 0.375] no: both 1/2.
    est = [0.75, 0.25, 1.5, -0.5, 0.625, 0.375]
    ci = [(0.25, 0.5), (0.0, 1.5), (-0.5, 0.25), (-1.0, 2.0), (0.625, 0.75), (-0.25, 0.375)]
    r = performance(_rows(est, 0.5, ci=ci)).iloc[0]
    assert r["mean_est"] == 0.5
    assert r["coverage"] == r["be_coverage"] == 0.5
    assert r["coverage_mcse"] == r["be_coverage_mcse"]
    # Random mirror pairs: tbar equals theta up to round-off, which decides no interval.
    perf = performance(_symmetric_studies(300, 20, 0.7, seed=5))
    np.testing.assert_allclose(perf["mean_est"], 0.7, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(perf["be_coverage"], perf["coverage"])
    np.testing.assert_array_equal(perf["be_coverage_mcse"], perf["coverage_mcse"])
    assert 0.7 < perf["coverage"].mean() < 0.95  # intervals that miss: not trivial
    # Shifting every estimate and its interval by a bias moves tbar with them: coverage
    # drops, bias-eliminated coverage does not (what the measure is for).
    df = _symmetric_studies(300, 20, 0.7, seed=5)
    shifted = performance(df.assign(estimate=df["estimate"] + 2.0,
                                    ci_lower=df["ci_lower"] + 2.0,
                                    ci_upper=df["ci_upper"] + 2.0))
    np.testing.assert_array_equal(shifted["be_coverage"], perf["be_coverage"])
    assert shifted["coverage"].mean() < perf["coverage"].mean() - 0.3


def test_interval_and_modse_mcse_match_spread_over_studies():
    # 2000 independent studies of R = 50 replications.  Each replication is a normal sample of
    # size k = 10 from N(theta, tau^2): estimate its mean, se = s / sqrt(k), with xbar and s
    # independent (exact for normal data), drawn directly as N(theta, tau^2/k) and
    # tau^2 chi2_{k-1}/(k-1).  Intervals est -+ z_0.95 se (nominal 90%; with s in place of
    # tau their coverage is P(|t_9| < z)).  The MCSE of a measure claims to be the SD of that
    # measure across studies, so the mean reported MCSE is compared with that SD.
    #
    # Tolerance 10%: the SD of 2000 draws of a near-normal statistic has relative SE
    # 1/sqrt(2 * 1999) = 1.6%, so sampling alone allows ~5% (3 SEs); the MCSE formulas are
    # first-order (delta method, plug-in variances, sqrt(B(1-B)/m) averaged: Jensen) and are
    # 1-3% low at R = 50 (over 60 seeds, ratios mean/SD were 0.97-0.99 with SD 1.4-1.8% and
    # none outside [0.93, 1.04]).  10% is ~4 SEs beyond the largest of those biases and still
    # catches a formula off by a factor sqrt(2) or a wrong n (both >= 29%).
    studies, reps, k, theta, tau = 2000, 50, 10, 0.3, 1.7
    z = 1.6448536269514722
    rng = np.random.default_rng(20190102)
    est = rng.normal(theta, tau / math.sqrt(k), size=(studies, reps))
    se = np.sqrt(tau ** 2 * rng.chisquare(k - 1, size=(studies, reps)) / (k - 1) / k)
    df = pd.DataFrame({
        "condition": np.repeat(np.arange(studies), reps), "method": "m",
        "rep": np.tile(np.arange(reps), studies), "param": "beta1",
        "estimate": est.ravel(), "true": theta, "converged": True, "status": "ok",
        "ci_lower": (est - z * se).ravel(), "ci_upper": (est + z * se).ravel(),
        "se": se.ravel(),
    })
    perf = performance(df)
    assert len(perf) == studies and (perf["n_se"] == reps).all()
    for m in ("be_coverage", "width", "modse", "relerr_modse"):
        sd = perf[m].std(ddof=1)
        assert perf[f"{m}_mcse"].mean() == pytest.approx(sd, rel=0.10), m
    # The estimates themselves, against exact expectations (independent of the module):
    # est_i - tbar ~ N(0, (1 - 1/R) tau^2/k) is independent of s_i, so bias-eliminated
    # coverage is P(|t_9| < z / sqrt(1 - 1/R)) = 0.8690 and coverage P(|t_9| < z) = 0.8656.
    # The SD of a study's coverage is ~0.048, so the mean over 2000 has SE 0.0011.
    from scipy import stats

    p_be = 2 * stats.t.cdf(z / math.sqrt(1 - 1 / reps), k - 1) - 1
    p_cov = 2 * stats.t.cdf(z, k - 1) - 1
    assert perf["be_coverage"].mean() == pytest.approx(p_be, abs=0.004)
    assert perf["coverage"].mean() == pytest.approx(p_cov, abs=0.004)
    # Width: E[2 z se] = 2 z tau c4(k) / sqrt(k) with c4 the mean of s / tau; its SD over
    # studies is ~0.015 relative, so the mean over 2000 is good to ~0.03%.
    c4 = math.sqrt(2 / (k - 1)) * math.gamma(k / 2) / math.gamma((k - 1) / 2)
    assert perf["width"].mean() == pytest.approx(2 * z * tau * c4 / math.sqrt(k), rel=0.002)
    # ModSE^2 is the mean model variance, unbiased for tau^2 / k (SE 0.15% of it).
    assert (perf["modse"] ** 2).mean() == pytest.approx(tau ** 2 / k, rel=0.005)


# --------------------------------------------------------------------------------------------
# rate_fit
# --------------------------------------------------------------------------------------------
NS = np.array([50, 100, 200, 400, 800, 1600])
# Relative MCSEs of the synthetic RMSEs: shrinking with n, as with a fixed number of replications.
REL = 0.02 + 0.1 * np.sqrt(50 / NS)


def _synthetic_rates(fits: int, seed: int, noise_factor: float = 1.0) -> pd.DataFrame:
    """RMSE = 0.8 n^-0.5 exp(eps), eps ~ N(0, (noise_factor REL)^2), MCSE column = REL RMSE.

    With ``noise_factor = 1`` the stated MCSEs are exact for ``log y`` (Var log y = REL^2), so
    the known-variance WLS interval is exact.
    """
    rng = np.random.default_rng(seed)
    eps = rng.normal(0.0, 1.0, size=(fits, NS.size)) * REL * noise_factor
    rmse = 0.8 * NS ** -0.5 * np.exp(eps)
    return pd.DataFrame({
        "method": np.repeat([f"m{i:03d}" for i in range(fits)], NS.size), "param": "beta1",
        "n": np.tile(NS, fits), "rmse": rmse.ravel(), "rmse_mcse": (rmse * REL).ravel(),
    })


def test_rate_fit_equals_statsmodels_wls():
    perf = _synthetic_rates(1, seed=1)
    r = rate_fit(perf).iloc[0]
    X = sm.add_constant(np.log(perf["n"].to_numpy(dtype=float)))
    ly = np.log(perf["rmse"].to_numpy())
    w = 1.0 / (perf["rmse_mcse"] / perf["rmse"]).to_numpy() ** 2
    known = sm.WLS(ly, X, weights=w).fit(cov_type="fixed scale")  # scale 1: known variances
    assert r["slope"] == pytest.approx(known.params[1], rel=1e-10)
    assert r["intercept"] == pytest.approx(known.params[0], rel=1e-10)
    assert r["slope_se"] == pytest.approx(known.bse[1], rel=1e-10)
    lo, hi = known.conf_int(alpha=0.05)[1]  # normal quantile under a fixed scale
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi), rel=1e-10)
    # Lack of fit: the weighted residual sum of squares, on n - 2 df.
    assert r["lof_chi2"] == pytest.approx(known.ssr, rel=1e-10)
    assert r["lof_df"] == NS.size - 2 == known.df_resid
    # The scaled SE is WLS with the scale estimated from the residuals, floored at 1.
    est = sm.WLS(ly, X, weights=w).fit()
    assert r["slope_se_scaled"] == pytest.approx(
        known.bse[1] * math.sqrt(max(1.0, est.scale)), rel=1e-10)
    # Unweighted fit: statsmodels OLS, t-based interval.
    o = rate_fit(perf, weighted=False).iloc[0]
    ols = sm.OLS(ly, X).fit()
    assert o["slope"] == pytest.approx(ols.params[1], rel=1e-10)
    assert o["slope_se"] == pytest.approx(ols.bse[1], rel=1e-10)
    assert (o["ci_low"], o["ci_high"]) == pytest.approx(tuple(ols.conf_int()[1]), rel=1e-10)
    assert np.isnan(o["lof_chi2"])


def test_rate_fit_ci_covers_true_slope():
    # 500 synthetic studies with exact MCSEs: the 95% CI of the slope must cover -0.5 in
    # 95% of them.  Binomial SD over 500 fits is 0.0097, so [0.92, 0.98] is +-3 SDs.
    r = rate_fit(_synthetic_rates(500, seed=2))
    assert len(r) == 500 and (r["n_points"] == NS.size).all()
    cover = ((r["ci_low"] <= -0.5) & (-0.5 <= r["ci_high"])).mean()
    assert 0.92 <= cover <= 0.98
    # The lack-of-fit statistic is chi2(4) under the model: mean 4, SE sqrt(8/500) = 0.13.
    assert r["lof_chi2"].mean() == pytest.approx(4.0, abs=0.5)


def test_rate_fit_lack_of_fit_flags_understated_mcse():
    # Noise 3x what the MCSEs claim: the known-variance CI is far too narrow (expected
    # coverage P(|Z| < 1.96/3) = 0.49), lack of fit is flagged (P(9 chi2_4 > chi2_4,0.95) =
    # 0.90), and the scaled CI recovers most of the coverage (about P(|t_4| < 1.96) = 0.88).
    r = rate_fit(_synthetic_rates(500, seed=3, noise_factor=3.0))
    cover = ((r["ci_low"] <= -0.5) & (-0.5 <= r["ci_high"])).mean()
    cover_scaled = ((r["slope_ci_scaled_low"] <= -0.5)
                    & (-0.5 <= r["slope_ci_scaled_high"])).mean()
    assert cover < 0.6
    assert (r["lof_p"] < 0.05).mean() > 0.8
    assert 0.83 <= cover_scaled <= 0.93


def test_rate_fit_edge_cases():
    perf = _synthetic_rates(1, seed=4)
    # Non-positive or non-finite points are dropped and counted, not logged into NaN.
    bad = perf.copy()
    bad.loc[0, "rmse"] = 0.0
    bad.loc[1, "rmse_mcse"] = np.nan
    r = rate_fit(bad).iloc[0]
    assert (r["n_points"], r["n_dropped"]) == (NS.size - 2, 2)
    assert r["slope"] == pytest.approx(rate_fit(perf.iloc[2:]).iloc[0]["slope"], rel=RTOL)
    # Two points: a slope and its known-variance SE, but no lack-of-fit check.
    r = rate_fit(perf.iloc[:2]).iloc[0]
    assert np.isfinite(r["slope_se"]) and r["lof_df"] == 0
    assert np.isnan(r["lof_p"]) and np.isnan(r["slope_ci_scaled_low"])
    # One point: nothing.
    assert np.isnan(rate_fit(perf.iloc[:1]).iloc[0]["slope"])
    # x repeated within a group means a factor is missing from by.
    with pytest.raises(ValueError, match="repeats"):
        rate_fit(pd.concat([perf, perf]))
    with pytest.raises(ValueError, match="missing column"):
        rate_fit(perf.drop(columns="rmse_mcse"))
    assert np.isfinite(rate_fit(perf.drop(columns="rmse_mcse"), weighted=False)["slope"]).all()


# --------------------------------------------------------------------------------------------
# selection
# --------------------------------------------------------------------------------------------
def _selection_frame() -> pd.DataFrame:
    # True slopes (1, 0, 0); the intercept is estimated as exactly 0 with true 0.7 and must not
    # count.  Rep 3 did not converge (and would be an exact recovery).
    ests = {0: (0.5, 0.0, 0.0), 1: (0.5, 0.3, 0.0), 2: (0.0, 0.0, 1e-9), 3: (0.5, 0.0, 0.0)}
    rows = []
    for rep, slopes in ests.items():
        conv = rep != 3
        for param, e, t in zip(["intercept", "beta1", "beta2", "beta3"], (0.0, *slopes),
                               (0.7, 1.0, 0.0, 0.0), strict=True):
            rows.append({"condition": 0, "method": "a", "rep": rep, "param": param,
                         "estimate": e, "true": t, "converged": conv,
                         "status": "ok" if conv else "maxiter"})
    return pd.DataFrame(rows)


def test_selection_by_hand():
    df = _selection_frame()
    # tol = 0: correct zeros per rep (2, 1, 1), incorrect (0, 0, 1), exact (1, 0, 0).
    # Each list has deviations from its mean summing to squares 2/3: sd = sqrt(1/3),
    # MCSE = sd / sqrt(3) = 1/3.
    r = selection(df).iloc[0]
    assert (r["n_rep"], r["n_used"], r["nonconverged_share"]) == (4, 3, 0.25)
    assert r["correct_zeros"] == pytest.approx(4 / 3, rel=RTOL)
    assert r["incorrect_zeros"] == pytest.approx(1 / 3, rel=RTOL)
    assert r["exact_support"] == pytest.approx(1 / 3, rel=RTOL)
    for m in ("correct_zeros", "incorrect_zeros", "exact_support"):
        assert r[f"{m}_mcse"] == pytest.approx(1 / 3, rel=RTOL), m
    assert (r["n_true_zero"], r["n_true_nonzero"]) == (2.0, 1.0)
    # tol = 1e-8: rep 2's beta3 = 1e-9 now counts as zero: correct (2, 1, 2) -> 5/3.
    r = selection(df, tol=1e-8).iloc[0]
    assert r["correct_zeros"] == pytest.approx(5 / 3, rel=RTOL)
    assert r["exact_support"] == pytest.approx(1 / 3, rel=RTOL)
    # Including the non-converged rep: exact (1, 0, 0, 1), mean 1/2, sd sqrt(1/3), MCSE / 2.
    r = selection(df, include_nonconverged=True).iloc[0]
    assert r["n_used"] == 4
    assert r["exact_support"] == 0.5
    assert r["exact_support_mcse"] == pytest.approx(math.sqrt(1 / 3) / 2, rel=RTOL)


def test_selection_replication_converged_only_if_all_rows_are():
    df = _selection_frame()
    df.loc[(df["rep"] == 0) & (df["param"] == "intercept"), "converged"] = False
    r = selection(df).iloc[0]
    assert (r["n_used"], r["nonconverged_share"]) == (2, 0.5)


# --------------------------------------------------------------------------------------------
# convergence
# --------------------------------------------------------------------------------------------
def test_convergence_counts_fits_not_rows():
    a = _selection_frame()  # 4 fits x 4 rows: 3 ok, 1 maxiter
    b = _selection_frame().assign(method="b", converged=True, status="ok")
    b.loc[b["rep"] == 1, ["converged", "status"]] = [False, "nan_loss"]
    r = convergence(pd.concat([a, b])).set_index("method")
    assert list(r["n_rep"]) == [4, 4]
    assert list(r["n_converged"]) == [3, 3]
    assert list(r["share"]) == [0.75, 0.75]
    assert r.loc["a", ["status_ok", "status_maxiter", "status_nan_loss"]].tolist() == [3, 1, 0]
    assert r.loc["b", ["status_ok", "status_maxiter", "status_nan_loss"]].tolist() == [3, 0, 1]
    # A fit whose rows disagree on the status is shown as such, not resolved silently.
    a.loc[(a["rep"] == 0) & (a["param"] == "beta2"), "status"] = "weird"
    r = convergence(a).iloc[0]
    assert (r["status_ok"], r["status_ok|weird"], r["n_rep"]) == (2, 1, 4)


# --------------------------------------------------------------------------------------------
# format_estimate
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "mcse", "expected"), [
    (0.12344, 0.00213, "0.1234 (0.0021)"),
    (-3.2, 0.00996, "-3.200 (0.010)"),     # MCSE rounds up to 0.010: three decimals
    (123.4, 12.3, "123 (12)"),
    (0.5, 0.05, "0.500 (0.050)"),
    (1.0, 1e-15, "1.00000000 (0.00000000)"),  # capped at 8 decimals
    (0.123456, float("nan"), "0.1235 (NA)"),
    (0.123456, 0.0, "0.1235 (0)"),
    (float("nan"), 0.1, "NA"),
])
def test_format_estimate(value, mcse, expected):
    assert format_estimate(value, mcse) == expected


def test_format_estimate_rejects_negative_mcse():
    with pytest.raises(ValueError):
        format_estimate(1.0, -0.1)
