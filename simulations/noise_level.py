"""``noise_level``: the best ``lam`` of G-FGSM does not depend on the noise level; PL's grows
with it (docs/theory.md s.3 "Noise-level invariance", s.4; s.8 claim 5).

Aims
    For the gaussian family, find the ``lam`` that minimises the estimation error of l1 G-FGSM
    and of l1 PL at several noise levels ``sigma``, and check that G-FGSM's is flat in ``sigma``
    (``phi`` multiplies all of ``Q_n``; to first order G-FGSM is the lasso at
    ``lam sigma sqrt(2/pi)``) while PL's is proportional to ``sigma``.
Data-generating mechanisms
    Gaussian family, ``GaussianDesign(8, rho=0.3)``, intercept 0.3, slopes
    ``(1, -0.5, 0.5, 0, 0, 0, 0, 0)`` (five true zeros, so that some shrinkage helps and the
    error has an interior minimum in ``lam``), normal errors; factors ``sigma`` in
    ``{0.5, 1, 2, 4}`` and ``n`` (quick: 400; full: 400 and 1600, to see the claim sharpen as
    ``sqrt(n) |beta_min| / sigma`` grows).
Estimands
    ``beta`` (the slopes); the intercept is unpenalized and left out of the error.
Methods
    A grid of ``lam`` values *inside the methods* (one :class:`MethodSpec` per value), so every
    value is fitted to the same replications (common random numbers): G-FGSM (l1) at
    ``lam = lam0 / sqrt(n)`` for ``lam0 = 2^(k/4)``, ``k = -12..4`` (0.125 to 2), and PL (l1,
    ``phi = 1`` scale) for ``k = -18..12`` (0.044 to 8).  Both grids lie on one lattice; PL's is
    wider because its optimum moves with ``sigma``.  The grid is in units of ``lam0 = sqrt(n)
    lam`` (``LamRule(exponent=0.5, scale=lam0)``); with ``n`` fixed this is a fixed ``lam`` per
    method, and it keeps the optimum inside the grid for presets with another ``n``.
Performance measures
    Estimation error ``E ||beta_hat - beta0||^2`` (the sum over slopes of the MSE) with its MCSE,
    per ``sigma`` and ``lam``.  The best ``lam`` per ``sigma`` is the vertex of the parabola (in
    ``log lam``) through the grid minimum of the mean error and its two neighbours.  Its
    uncertainty: bootstrap over replications (``B = 2000``; each resample reweights the
    replications of a ``sigma`` once, for all ``lam`` values of an estimator, keeping the common
    random numbers), 95% percentile intervals.  "Flat vs proportional": the OLS slope of
    ``log best lam`` on ``log sigma`` over the four ``sigma``, with its bootstrap 95% percentile CI
    (each ``sigma`` resampled independently: the conditions have independent data).

Decision rule (stated in the report section as well)
    At the largest ``n`` of the preset (the claim is asymptotic): agrees when the G-FGSM slope
    CI contains 0 and excludes 1, and the PL slope CI contains 1 and excludes 0.  Slopes at the
    other ``n`` are reported beside it.

Cost (measured as CPU time; the machine has 2 cores): at ``n = 400`` one replication of all
four ``sigma`` needs 0.15 CPU-s (17 gaussian G-FGSM fits per ``sigma`` dominate), so the quick
preset (400 replications) needs about 60 CPU-s, 35-40 s of wall time on 2 idle workers plus a
few seconds for the section (it took about 4 minutes with the machine shared by ~10 other
jobs).  At ``n = 1600`` a replication needs about 0.75 CPU-s; with 2000 replications the full preset
took 2215 CPU-s (2026-11-26).  It now runs 1000, to fit all GLM studies' full presets in 90
minutes on 2 cores (README): the first 1000 replications of that store gave the same verdict
(at n = 1600 G-FGSM's slope -0.002 [-0.030, 0.025], PL's 0.988 [0.956, 1.019], against
-0.004 [-0.025, 0.017] and 0.983 [0.959, 1.008] with 2000: CIs about sqrt(2) wider, still
far from the other hypothesis).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import gfgsm.mc
import gfgsm.report
from gfgsm.designs import GaussianDesign
from gfgsm.dgp import DGP
from gfgsm.mc.measures import format_estimate
from gfgsm.mc.spec import LamRule, MethodSpec, Preset, Study
from gfgsm.theory import quantities

from ._format import fmt_ci, fmt_ci_words, plain_log_axis

ESTIMATORS = {"G-FGSM": "gfgsm", "PL": "pl"}
#: Exponents k of the lattice lam0 = 2^(k/4) used by each estimator.
GRID_K = {"G-FGSM": range(-12, 5), "PL": range(-18, 13)}
#: Bootstrap resamples for the uncertainty of the best lam and of the slope.
BOOT = 2000
LEVEL = 0.95


def lam0_of(k: int) -> float:
    return float(2.0 ** (k / 4.0))


def method_name(est: str, k: int) -> str:
    return f"{est} lam0=2^({k}/4)"


def _methods(grid: Mapping[str, range]) -> tuple[MethodSpec, ...]:
    out = []
    for est, ks in grid.items():
        for k in ks:
            opts: dict[str, Any] = {"adversary": "exact"} if est == "G-FGSM" else {}
            out.append(MethodSpec(method_name(est, k), ESTIMATORS[est],
                                  lam=LamRule(exponent=0.5, scale=lam0_of(k)), **opts))
    return tuple(out)


#: method name -> (estimator, lam0), for any store of this study (any subset of the lattice).
METHOD_INFO = {method_name(e, k): (e, lam0_of(k)) for e in ESTIMATORS for k in range(-40, 41)}


def make_dgp(c: Mapping[str, Any]) -> DGP:
    return DGP("gaussian", GaussianDesign(8, rho=0.3),
               coef=[1.0, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0], intercept=0.3,
               sigma=float(c["sigma"]))


STUDY = Study(
    name="noise_level",
    aims="The estimation-error-minimising lam of l1 G-FGSM does not depend on the noise level "
         "sigma; that of l1 PL is proportional to sigma (docs/theory.md s.3, s.4, s.8 claim 5).",
    factors={"sigma": [0.5, 1.0, 2.0, 4.0], "n": [400]},
    make_dgp=make_dgp,
    methods=_methods(GRID_K),
    presets={
        "quick": Preset(reps=400, description="under a minute on 2 cores"),
        "full": Preset(reps=1000, factors={"n": [400, 1600]},
                       description="n = 400 and 1600, 1000 replications (module docstring)"),
    },
)


# --------------------------------------------------------------------------------------------
# analysis
# --------------------------------------------------------------------------------------------
def error_matrices(df: pd.DataFrame) -> dict[tuple[int, float, str], dict[str, Any]]:
    """Per (n, sigma, estimator): the (R, K) matrix of ``||beta_hat - beta0||^2`` over replications
    and the lam0 grid (sorted), keeping only replications converged at every grid value (so
    the common random numbers are kept), and the number dropped."""
    d = df[df["param"] != "intercept"]
    d = d.assign(_sq=(d["estimate"] - d["true"]) ** 2, _conv=d["converged"].astype(bool))
    per = d.groupby(["sigma", "n", "method", "rep"], sort=True, observed=True).agg(
        sq=("_sq", "sum"), conv=("_conv", "all")).reset_index()
    per["estimator"] = per["method"].map(lambda m: METHOD_INFO[m][0])
    per["lam0"] = per["method"].map(lambda m: METHOD_INFO[m][1])
    out = {}
    for (n, sigma, est), g in per.groupby(["n", "sigma", "estimator"], sort=True):
        err = g.pivot_table(index="rep", columns="lam0", values="sq", aggfunc="first")
        conv = g.pivot_table(index="rep", columns="lam0", values="conv", aggfunc="first")
        ok = conv.fillna(False).astype(bool).all(axis=1) & err.notna().all(axis=1)
        out[(int(n), float(sigma), est)] = {
            "lam0": err.columns.to_numpy(dtype=float),
            "err": err.loc[ok].to_numpy(dtype=float),
            "dropped": int((~ok).sum()),
        }
    return out


def best_log_lam(curves: np.ndarray, log_lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex (in ``log lam``) of the parabola through each curve's grid minimum and its two
    neighbours; at a grid edge the edge itself.  ``curves`` is (..., K) on the equally spaced
    grid ``log_lam``.  Returns the vertex and a flag for minima at an edge."""
    K = log_lam.size
    h = log_lam[1] - log_lam[0]
    k = np.argmin(curves, axis=-1)
    edge = (k == 0) | (k == K - 1)
    kc = np.clip(k, 1, K - 2)
    take = np.take_along_axis
    m0 = take(curves, (kc - 1)[..., None], -1)[..., 0]
    m1 = take(curves, kc[..., None], -1)[..., 0]
    m2 = take(curves, (kc + 1)[..., None], -1)[..., 0]
    curv = m0 - 2.0 * m1 + m2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curv > 0, 0.5 * h * (m0 - m2) / curv, 0.0)
    vertex = log_lam[kc] + np.clip(shift, -h, h)
    return np.where(edge, log_lam[k], vertex), edge


def _zeroed_nonzero(df: pd.DataFrame) -> pd.DataFrame:
    """Per (n, sigma, method): mean number of true-nonzero slopes estimated exactly 0."""
    d = df[(df["param"] != "intercept") & (df["true"] != 0)]
    d = d.assign(_z=(d["estimate"] == 0).astype(float))
    per = d.groupby(["n", "sigma", "method", "rep"], observed=True)["_z"].sum().reset_index()
    return per.groupby(["n", "sigma", "method"], observed=True)["_z"].mean().reset_index()


def analyse(df: pd.DataFrame, seed: int) -> dict[str, Any]:
    """Curves, best lam per (n, sigma, estimator) with bootstrap CIs, and the log-log slopes
    of best lam on sigma per (n, estimator) with bootstrap CIs and the decision."""
    mats = error_matrices(df)
    zeroed = _zeroed_nonzero(df).set_index(["n", "sigma", "method"])["_z"]
    rng = np.random.default_rng(seed)
    alpha = (1.0 - LEVEL) / 2.0
    curve_rows, best_rows, boot_best = [], [], {}
    for (n, sigma, est), m in mats.items():
        err, lam0 = m["err"], m["lam0"]
        R = err.shape[0]
        log_lam = np.log(lam0)
        mean = err.mean(axis=0)
        mcse = err.std(axis=0, ddof=1) / np.sqrt(R)
        for j in range(lam0.size):
            curve_rows.append({"n": n, "sigma": sigma, "estimator": est, "lam0": lam0[j],
                               "error": mean[j], "error_mcse": mcse[j],
                               "scaled_error": n * mean[j] / sigma ** 2,
                               "scaled_error_mcse": n * mcse[j] / sigma ** 2})
        point, edge = best_log_lam(mean, log_lam)
        w = rng.multinomial(R, np.full(R, 1.0 / R), size=BOOT) / R  # (B, R) resample weights
        boot, bedge = best_log_lam(w @ err, log_lam)
        boot_best[(n, sigma, est)] = boot
        kmin = int(np.argmin(mean))
        k_near = int(np.argmin(np.abs(log_lam - point)))
        zname = next(mm for mm in METHOD_INFO if METHOD_INFO[mm] == (est, float(lam0[k_near])))
        best_rows.append({
            "n": n, "sigma": sigma, "estimator": est, "reps": R, "dropped": m["dropped"],
            "best_lam0": float(np.exp(point)), "best_at_edge": bool(edge),
            "ci_low": float(np.exp(np.quantile(boot, alpha))),
            "ci_high": float(np.exp(np.quantile(boot, 1.0 - alpha))),
            "boot_edge_share": float(bedge.mean()),
            "min_error": float(mean[kmin]), "min_error_mcse": float(mcse[kmin]),
            "zeroed_at_best": float(zeroed.get((n, sigma, zname), np.nan)),
        })
    best = pd.DataFrame(best_rows)
    slope_rows = []
    for (n, est), g in best.groupby(["n", "estimator"], sort=True):
        sig = g["sigma"].to_numpy(dtype=float)
        x = np.log(sig) - np.log(sig).mean()
        point = float(np.sum(x * np.log(g["best_lam0"].to_numpy())) / np.sum(x * x))
        B = np.stack([boot_best[(n, s, est)] for s in sig], axis=1)  # (B, S) log best lam
        bs = (B - B.mean(axis=1, keepdims=True)) @ x / np.sum(x * x)
        slope_rows.append({"n": n, "estimator": est, "slope": point,
                           "ci_low": float(np.quantile(bs, alpha)),
                           "ci_high": float(np.quantile(bs, 1.0 - alpha)),
                           "boot_se": float(bs.std(ddof=1)), "n_sigma": int(sig.size)})
    slopes = pd.DataFrame(slope_rows)
    slopes["target"] = slopes["estimator"].map({"G-FGSM": 0.0, "PL": 1.0})
    slopes["other"] = 1.0 - slopes["target"]
    slopes["contains_target"] = (slopes["ci_low"] <= slopes["target"]) & (
        slopes["target"] <= slopes["ci_high"])
    slopes["excludes_other"] = ~((slopes["ci_low"] <= slopes["other"]) & (
        slopes["other"] <= slopes["ci_high"]))
    slopes["agrees"] = slopes["contains_target"] & slopes["excludes_other"]
    return {"curves": pd.DataFrame(curve_rows), "best": best, "slopes": slopes}


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------
_NICE = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]


def _figure_curves(curves: pd.DataFrame, best: pd.DataFrame, figures: Path) -> Path:
    sns = gfgsm.report.style()
    import matplotlib.pyplot as plt

    color = sns.color_palette()[0]
    ests = [e for e in ESTIMATORS if e in set(curves["estimator"])]
    ns = sorted(curves["n"].unique())
    sigmas = sorted(curves["sigma"].unique())
    fig, axes = plt.subplots(len(ns), len(ests), figsize=(4.2 * len(ests), 3.3 * len(ns)),
                             squeeze=False)
    for r, n in enumerate(ns):
        for i, est in enumerate(ests):
            ax = axes[r, i]
            sub = curves[(curves["estimator"] == est) & (curves["n"] == n)]
            for k, s in enumerate(sigmas):
                d = sub[sub["sigma"] == s].sort_values("lam0")
                ax.plot(d["lam0"], d["scaled_error"], marker=gfgsm.report.MARKERS[k], ms=3,
                        dashes=gfgsm.report.DASHES[k], color=color, lw=1,
                        label=f"sigma = {s:g}")
                ax.fill_between(d["lam0"], d["scaled_error"] - 1.96 * d["scaled_error_mcse"],
                                d["scaled_error"] + 1.96 * d["scaled_error_mcse"], color="0.8",
                                alpha=0.5, lw=0)
                b = best[(best["estimator"] == est) & (best["sigma"] == s)
                         & (best["n"] == n)].iloc[0]
                ax.axvline(b["best_lam0"], color="0.3", lw=0.7, dashes=gfgsm.report.DASHES[k])
            lo = sub["scaled_error"].min()
            ax.set_ylim(0.9 * lo, 2.2 * lo)
            ax.set_xscale("log")
            plain_log_axis(ax.xaxis, [t for t in _NICE if sub["lam0"].min() <= t
                                      <= sub["lam0"].max()])
            ax.set_xlabel(f"lam0 = sqrt(n) lam (log scale; n = {n})")
            ax.set_ylabel("n E||beta_hat - beta0||^2 / sigma^2")
            ax.set_title(f"{est}, n = {n}: error against lam")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return gfgsm.report.save_figure(fig, figures, "noise_level_curves")


def _figure_best(best: pd.DataFrame, slopes: pd.DataFrame, figures: Path) -> Path:
    sns = gfgsm.report.style()
    import matplotlib.pyplot as plt

    color = sns.color_palette()[0]
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    ests = [e for e in ESTIMATORS if e in set(best["estimator"])]
    ns = sorted(best["n"].unique())
    for k, est in enumerate(ests):
        for j, n in enumerate(ns):
            d = best[(best["estimator"] == est) & (best["n"] == n)].sort_values("sigma")
            s = slopes[(slopes["estimator"] == est) & (slopes["n"] == n)].iloc[0]
            y = d["best_lam0"].to_numpy()
            ax.errorbar(d["sigma"] * (1.0 + 0.03 * j), y,
                        yerr=[y - d["ci_low"], d["ci_high"] - y],
                        marker=gfgsm.report.MARKERS[k], dashes=gfgsm.report.DASHES[j],
                        color=color, ms=5, lw=1, capsize=3, mfc="white" if k else color,
                        label=f"{est}, n = {n}: slope "
                              f"{fmt_ci(s['slope'], s['ci_low'], s['ci_high'], '.2f')}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_axis(ax.xaxis, sorted(best["sigma"].unique()))
    plain_log_axis(ax.yaxis, [t for t in _NICE if best["ci_low"].min() / 1.5 <= t
                              <= best["ci_high"].max() * 1.5])
    ax.set_xlabel("noise SD sigma (log scale)")
    ax.set_ylabel("best lam0 = sqrt(n) lam (log scale)")
    ax.set_title("Best lam against sigma (95% bootstrap CIs)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return gfgsm.report.save_figure(fig, figures, "noise_level_best_lam")


# --------------------------------------------------------------------------------------------
# section: summarise (store -> tidy per-condition tables) and render (tables -> text, figures)
# --------------------------------------------------------------------------------------------
def summarise(store: Path, study: Study) -> gfgsm.report.Summaries:
    """Everything the section shows, from the store: the tables (all per condition, none per
    replication; the bootstrap CIs are computed here, by :func:`analyse`)

    * ``curves``: mean error and its MCSE per (n, sigma, estimator, lam0);
    * ``best``: best lam0 with its bootstrap CI per (n, sigma, estimator), the minimum error,
      the mean number of zeroed true-nonzero slopes there, and ``dphi`` (``D phi`` of the
      condition's DGP, from :func:`gfgsm.theory.quantities`);
    * ``slopes``: the log-log slope with its bootstrap CI and the decision per (n, estimator);

    and in ``meta`` the provenance, the preset, the bootstrap size and level, and the number of
    true-nonzero slopes."""
    store = Path(store)
    preset = str(gfgsm.report.store_manifest(store)["preset"])
    df = gfgsm.mc.load(store)
    res = analyse(df, seed=study.seed)
    # theory: to first order G-FGSM at lam is the lasso at lam D phi (docs/theory.md s.4)
    dphi = {}
    for c in study.conditions(preset):
        q = quantities(study.make_dgp(c), seed=0)
        dphi[(int(c["n"]), float(c["sigma"]))] = float(q.D * q.phi)
    best = res["best"]
    best = best.assign(dphi=[dphi.get((int(n), float(s)), np.nan)
                             for n, s in zip(best["n"], best["sigma"], strict=True)])
    n_nonzero = int(((df["param"] != "intercept") & (df["true"] != 0)).groupby(
        [df["condition"], df["method"], df["rep"]]).sum().max())
    return gfgsm.report.Summaries(
        tables={"curves": res["curves"], "best": best, "slopes": res["slopes"]},
        meta={"provenance": gfgsm.report.provenance(store), "preset": preset, "boot": BOOT,
              "level": LEVEL, "n_nonzero": n_nonzero},
    )


def render(s: gfgsm.report.Summaries, figures: Path) -> gfgsm.report.Section:
    """The section (verdict, tables, figures, notes) from :func:`summarise`'s summaries alone."""
    curves, best, slopes = s["curves"], s["best"], s["slopes"]
    boot, level = int(s.meta["boot"]), float(s.meta["level"])
    n_max = int(slopes["n"].max())
    decide = slopes[slopes["n"] == n_max].set_index("estimator")
    agrees = bool(decide["agrees"].all()) and set(decide.index) == set(ESTIMATORS)
    dphi = {(int(n), float(sg)): float(d)
            for n, sg, d in zip(best["n"], best["sigma"], best["dphi"], strict=True)}

    def sl(est: str) -> str:
        r = decide.loc[est]
        return fmt_ci_words(r["slope"], r["ci_low"], r["ci_high"])

    sig = sorted(best["sigma"].unique())
    parts = [f"{sl(e)} for {e}" for e in ESTIMATORS if e in decide.index]
    verdict = (("Agrees: " if agrees else "Disagrees: ")
               + f"at n = {n_max} the slope of log best lam on log sigma (sigma {sig[0]:g} to "
               f"{sig[-1]:g}) is " + " and ".join(parts)
               + (", so G-FGSM's best lam is flat and PL's proportional to sigma"
                  if agrees else ", against 0 (flat) for G-FGSM and 1 (proportional) for PL, "
                  "each required to exclude the other value"))
    others = slopes[slopes["n"] != n_max]
    if not others.empty:
        verdict += " (" + "; ".join(
            f"n = {r.n}: {r.estimator} {fmt_ci(r.slope, r.ci_low, r.ci_high, '.2f')}"
            for r in others.itertuples()) + ")"
    verdict += "."

    wide = best.pivot_table(index=["n", "sigma"], columns="estimator", values="best_lam0")
    best = best.assign(
        pl_link=[(wide.loc[(r.n, r.sigma), "PL"]
                  / (wide.loc[(r.n, r.sigma), "G-FGSM"] * dphi[(r.n, r.sigma)]))
                 if {"PL", "G-FGSM"} <= set(wide.columns) else np.nan
                 for r in best.itertuples()])
    best_tab = pd.DataFrame({
        "n": best["n"], "sigma": best["sigma"], "estimator": best["estimator"],
        "best lam0 [95% CI]": [fmt_ci(r.best_lam0, r.ci_low, r.ci_high, ".3g")
                               + (" (grid edge)" if r.best_at_edge else "")
                               for r in best.itertuples()],
        "best lam0 / sigma": best["best_lam0"] / best["sigma"],
        "min error (MCSE)": [format_estimate(r.min_error, r.min_error_mcse)
                             for r in best.itertuples()],
        "true-nonzero slopes set to 0 at best lam (mean)": best["zeroed_at_best"],
        "PL best / (G-FGSM best x D phi)": best["pl_link"],
        "replications": best["reps"],
    }).sort_values(["n", "estimator", "sigma"]).reset_index(drop=True)
    slope_tab = pd.DataFrame({
        "n": slopes["n"], "estimator": slopes["estimator"],
        "slope [95% CI]": [fmt_ci(r.slope, r.ci_low, r.ci_high)
                           for r in slopes.itertuples()],
        "bootstrap SE": slopes["boot_se"],
        "theory": slopes["target"],
        "CI contains theory": slopes["contains_target"].map({True: "yes", False: "**no**"}),
        "CI excludes the other value": slopes["excludes_other"].map({True: "yes",
                                                                     False: "**no**"}),
    })
    tables = [
        ("Slope of log best lam on log sigma (95% bootstrap percentile CI); the decision uses "
         f"n = {n_max}.", gfgsm.report.markdown_table(slope_tab, floatfmt=".3g")),
        ("Best lam per sigma (lam0 = sqrt(n) lam; error = E||beta_hat - beta0||^2). The last "
         "but one column is the first-order link of docs/theory.md s.4 (G-FGSM at lam acts as "
         "PL at "
         "lam D phi, D phi = sigma sqrt(2/pi) from `gfgsm.theory.quantities`): near 1 where "
         "it holds.", gfgsm.report.markdown_table(best_tab, floatfmt=".3g")),
    ]

    fig1 = _figure_curves(curves, best, figures)
    fig2 = _figure_best(best, slopes, figures)
    n_drop = int(best["dropped"].sum())
    nz = best.set_index(["n", "estimator", "sigma"])["zeroed_at_best"]
    n_nonzero = int(s.meta["n_nonzero"])
    hi = nz.idxmax()
    notes = (
        "**Decision rule.** At the largest n of the preset (the claim is asymptotic), agrees "
        "when the 95% CI of the slope of log best lam on log sigma contains 0 and excludes 1 "
        "for G-FGSM, and contains 1 and excludes 0 for PL. "
        "**Best lam and its uncertainty.** Every lam value is a method of the study, so all are "
        "fitted to the same replications (common random numbers). The error is "
        "E||beta_hat - beta0||^2 over the slopes (the sum of their MSEs). The best lam is the "
        "vertex, in log lam, of the parabola through the grid minimum of the mean error and "
        f"its two neighbours (grid step 2^(1/4)). Uncertainty: {boot} bootstrap resamples of "
        "the replications (one resample per sigma, shared by all lam values of an estimator), "
        f"{level:.0%} percentile intervals for the best lam and for the OLS slope of log best "
        "lam on log sigma (each sigma resampled independently). Replications with a "
        f"non-converged fit at any grid value are dropped for that estimator ({n_drop} in "
        "all). **Reading the table.** The lasso's solution path is exactly linear in "
        "(sigma e, lam) as long as no true-nonzero slope is set to zero, so PL's best lam is "
        "exactly proportional to sigma in that regime; where the noise is large relative to "
        "sqrt(n) |beta_min| true-nonzero slopes are zeroed near the best lam and the scaling "
        "breaks, for both estimators alike (see the link column). The largest mean number of "
        f"zeroed nonzero slopes at the best lam is {nz.max():.2f} of {n_nonzero} ({hi[1]}, "
        f"n = {hi[0]}, sigma = {hi[2]:g})."
    )
    return gfgsm.report.Section(
        key="noise_level",
        title="Noise-level invariance of the best lam",
        claim=("For gaussian data, the lam that minimises the estimation error of G-FGSM does "
               "not depend on the noise level sigma (phi multiplies the whole G-FGSM objective; "
               "to first order G-FGSM is the lasso at lam sigma sqrt(2/pi)), while the best "
               "lam of PL is proportional to sigma (docs/theory.md s.3 and s.4)."),
        verdict=verdict,
        agrees=agrees,
        figures=[
            (str(fig1), "Scaled estimation error n E||beta_hat - beta0||^2 / sigma^2 against "
                        "lam0 = sqrt(n) lam, one line per sigma, with pointwise 95% MCSE bands "
                        "(grey; differences between lam values are far more precise, since all "
                        "share the replications); vertical lines: the best lam0 per sigma (same "
                        "dash as its curve)."),
            (str(fig2), "Best lam0 against sigma on log-log axes with 95% bootstrap CIs; the "
                        "legend gives the fitted slope and its CI (theory: 0 for G-FGSM, 1 "
                        "for PL)."),
        ],
        tables=tables,
        provenance=s.meta["provenance"],
        notes=notes,
    )


def section(preset: str, results: Path, figures: Path, *, study: Study | None = None,
            executor: str = "processes") -> gfgsm.report.Section:
    """Run/resume the study and build its report section (``study`` replaces :data:`STUDY`
    in tests; any subset of its n, sigmas and lam lattice is analysed the same way):
    ``render(summarise(store, study), figures)``, with the summaries attached."""
    study = STUDY if study is None else study
    return gfgsm.report.split_section(summarise, render, study, preset, results, figures,
                                      executor)


section.order = 50  # type: ignore[attr-defined]
section.render = render  # type: ignore[attr-defined]
