"""``limit_law``: the law of ``sqrt(n)(theta_hat - theta0)`` against docs/theory.md s.5 (s.8, 2).

Aims
    Check that at large ``n`` the simulated law of ``U_n = sqrt(n)(theta_hat - theta0)`` for
    l1 G-FGSM at ``lam_n = lam0 / sqrt(n)`` and for l1 penalized likelihood (PL) is the limit
    ``argmin_u Z(u)`` of docs/theory.md s.5, sampled by :func:`gfgsm.theory.limit_law`: its mean
    (which carries G-FGSM's ``lam0 ||beta0||_1 I^-1 V`` term), its covariance, its whole
    distribution (QQ plots, two-sample Kolmogorov-Smirnov per coefficient) and, with a true zero,
    its point mass at 0 (consequence 4).
Data-generating mechanisms
    ``x ~ GaussianDesign(p, rho=0.3)``; ``family`` in {binomial (intercept 1), poisson (intercept
    -1: small counts, far from sign neutral), gaussian (intercept 1, N(0, 1) errors, sigma = 1:
    sign neutral)}; ``design`` "dense": ``beta0 = (1, -0.5)``, "sparse": ``beta0 = (1, 0, -0.5)``
    (one true zero).  ``n`` at two sizes in ratio 4 (quick: 1000 and 4000), ``lam0 = 1``.
Estimands
    ``theta0 = (a0, beta0)``; the target is the law of ``U_n``, not a point.
Methods
    ``G-FGSM``: l1, ``lam = lam0 / sqrt(n)``, ``adversary="exact"`` (the convex worst case; for
    binomial and gaussian it is the FGSM objective itself, docs/theory.md s.2).  ``PL (lam D
    phi)``: l1
    penalized likelihood at the matched level ``lam0 D phi / sqrt(n)`` (docs/theory.md s.5
    consequence 3), so both estimators shrink by about as much and their limits differ by the V
    term only; its limit is ``limit_law(dgp, lam0 D phi, "pl")``.  Both methods fit the same
    replications.
Performance measures
    Per coefficient: the mean of ``U_n`` at both sizes with MCSE, its Richardson extrapolation
    ``m_inf = (sqrt(n2) m(n2) - sqrt(n1) m(n1)) / (sqrt(n2) - sqrt(n1))`` (``2 m(4n) - m(n)``),
    which removes the ``c / sqrt(n)`` finite-sample term found in
    tests/test_theory_vs_simulation.py, and its z against the limit's bias; the same for every
    covariance entry and for ``P(U_j = 0)`` at a true zero; the two-sample KS statistic of the
    simulated ``U_n`` at the larger ``n`` against ``N_LAW`` draws of the limit.

Report
    Split in two (:mod:`gfgsm.report.summaries`): :func:`summarise` reduces the store to the
    per-coefficient frames of :func:`analyse` (``means``, ``cov``, ``p0``, ``ks``, the QQ
    quantiles ``qq`` at ``QQ_PROBS``, ``reps``) and the constants of the text; :func:`render`
    draws the figures and writes the text from them alone (no store, no limit-law draws).

Cost (measured on the 2-core machine with one BLAS thread): the quick preset (500
replications, n = 1000 and 4000, 12 conditions x 2 methods) takes 51 CPU seconds for the study
(about 30 s of wall time on 2 worker processes of an idle machine) and 6 s for the section.  It
is dominated by the G-FGSM fits for poisson (exact adversary, about 6 us per observation) and
gaussian (2-4 us per observation).  The previous full preset (n = 1000, 4000, 16000, the
Richardson pair 4000/16000) with 5000 replications took 2640 CPU-s (2026-11-26), with the
poisson and gaussian fits at n = 16000 four fifths of it.  It now runs 2500 replications, to
fit all GLM studies' full presets in 90 minutes on 2 cores (README): the same replications
(the first 2500 of that store) gave the same verdict, every Richardson z within the
Bonferroni bound (largest |z| 2.27, against 2.14 with 5000) and no KS test rejecting
(smallest p 0.023, 0.054 with 5000).  What the halving costs: the SEs of the extrapolated
means grow by sqrt(2) (the extrapolation's own SE is ``sqrt(4 se(4n)^2 + se(n)^2)``), and the
KS test at n = 16000 against 20000 limit draws has its critical distance at the Bonferroni
level at 0.041 instead of 0.030.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import gfgsm.mc
import gfgsm.report
from gfgsm.designs import GaussianDesign
from gfgsm.dgp import DGP
from gfgsm.mc.spec import LamRule, MethodSpec, Preset, Study
from gfgsm.theory import limit_law, quantities

from ._format import fmt_estimate

#: True slopes of the two designs; "sparse" has one true zero (the limit's point mass).
DESIGNS: dict[str, tuple[float, ...]] = {"dense": (1.0, -0.5), "sparse": (1.0, 0.0, -0.5)}
#: True intercepts: binomial 1 (P(y = 1) about 0.7), poisson -1 (mean count about 0.6),
#: gaussian 1.
INTERCEPT: dict[str, float] = {"binomial": 1.0, "poisson": -1.0, "gaussian": 1.0}
RHO = 0.3
#: Draws of the limit law for the QQ plots and the KS tests, and for its moments when a true
#: slope is zero (then the moments are Monte Carlo, with SEs carried into every z).
N_LAW = 20_000
#: Seed of the limit-law draws (combined with a CRC of the family, design and method).
LAW_SEED = 1810
#: Family-wise error rate of the agreement rule (Bonferroni over all comparisons).
FWER = 0.05
#: Probability levels of the QQ plots.
QQ_PROBS = np.linspace(0.01, 0.99, 50)


def make_dgp(c: Mapping[str, Any]) -> DGP:
    coef = DESIGNS[c["design"]]
    return DGP(c["family"], GaussianDesign(len(coef), rho=RHO), coef=list(coef),
               intercept=INTERCEPT[c["family"]])


STUDY = Study(
    name="limit_law",
    aims=("The law of sqrt(n)(theta_hat - theta0) at large n against the limit argmin Z(u) of "
          "docs/theory.md s.5 for l1 G-FGSM and l1 PL at lam D phi: mean, covariance, QQ, KS, "
          "and the "
          "point mass at 0 of a true zero."),
    factors={"family": ["binomial", "poisson", "gaussian"], "design": ["dense", "sparse"],
             "n": [1000, 4000], "lam0": [1.0]},
    make_dgp=make_dgp,
    methods=(
        MethodSpec("G-FGSM", "gfgsm", lam=LamRule(), adversary="exact"),
        MethodSpec("PL (lam D phi)", "pl", lam=LamRule(multiplier="D*phi")),
    ),
    presets={
        "quick": Preset(reps=500, description="about 40 s on 2 idle cores"),
        "full": Preset(reps=2500, factors={"n": [1000, 4000, 16000]},
                       description="n to 16000, 2500 replications (module docstring)"),
    },
    estimands="the law of sqrt(n)(theta_hat - theta0), theta0 = (intercept, beta)",
)


# --------------------------------------------------------------------------------------------
# analysis
# --------------------------------------------------------------------------------------------


@dataclass
class Analysis:
    """Everything the section reports, one frame per kind of comparison.

    ``means``, ``cov`` (upper triangle incl. diagonal), ``p0`` (true zeros): limit value and
    its SE, simulated value at the two largest sizes with MCSE, the Richardson extrapolation
    with SE and ``z = (extrapolated - limit) / SE``; ``ks``: KS statistic and p-value at the
    larger size; ``qq``: quantile pairs; ``sizes``: ``(n1, n2)``; ``reps``: replications used.
    """

    means: pd.DataFrame
    cov: pd.DataFrame
    p0: pd.DataFrame
    ks: pd.DataFrame
    qq: pd.DataFrame
    sizes: tuple[int, int]
    reps: pd.DataFrame
    crit: float
    ks_level: float


def _params(q: int) -> list[str]:
    return ["intercept"] + [f"beta{j}" for j in range(1, q)]


def _richardson(n1: int, n2: int) -> tuple[float, float]:
    """Weights ``(w1, w2)`` with ``w1 m(n1) + w2 m(n2)`` free of a ``c / sqrt(n)`` term."""
    r1, r2 = math.sqrt(n1), math.sqrt(n2)
    return -r1 / (r2 - r1), r2 / (r2 - r1)


def _draws(df: pd.DataFrame) -> dict[tuple[str, str, str, int], np.ndarray]:
    """``U = sqrt(n)(theta_hat - theta0)`` per (family, design, method, n), converged fits."""
    out = {}
    ok = df[df["converged"].astype(bool)]
    for (fam, des, meth, n), g in ok.groupby(["family", "design", "method", "n"], sort=True):
        q = g["param"].nunique()
        par = _params(q)
        est = g.pivot(index="rep", columns="param", values="estimate")[par].to_numpy()
        true = g.groupby("param")["true"].first()[par].to_numpy()
        out[(fam, des, meth, int(n))] = math.sqrt(n) * (est - true)
    return out


def _cov_and_se(U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample covariance and the SE of each entry (sd of centred cross products / sqrt(R))."""
    R = U.shape[0]
    Uc = U - U.mean(0)
    P = Uc[:, :, None] * Uc[:, None, :]
    return np.cov(U, rowvar=False), P.std(0, ddof=1) / math.sqrt(R)


def _law_seed(*key: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([LAW_SEED, zlib.crc32("|".join(key).encode())])


def analyse(store: Path, study: Study = STUDY) -> Analysis:
    """Compare the simulated law in ``store`` with :func:`limit_law` (see :class:`Analysis`)."""
    df = gfgsm.mc.load(store)
    kind = {m.name: m.method for m in study.methods}
    U = _draws(df)
    sizes = sorted({k[3] for k in U})
    if len(sizes) < 2:
        raise ValueError(f"limit_law needs two sample sizes, got {sizes}")
    n1, n2 = sizes[-2], sizes[-1]
    w1, w2 = _richardson(n1, n2)
    means, covs, p0s, kss, qqs, reps = [], [], [], [], [], []
    groups = sorted({k[:3] for k in U})
    qcache: dict[tuple[str, str], Any] = {}
    for fam, des, meth in groups:
        cond = df[(df.family == fam) & (df.design == des) & (df.method == meth)]
        c0 = cond.iloc[0]
        dgp = make_dgp({"family": fam, "design": des})
        # The level actually used by the fits: lam * sqrt(n) (= lam0, or lam0 D phi for PL).
        lam0_eff = float(np.median(cond["lam"] * np.sqrt(cond["n"].astype(float))))
        if (fam, des) not in qcache:
            qcache[fam, des] = quantities(dgp, seed=0)
        q = qcache[fam, des]
        law = limit_law(dgp, lam0_eff, kind[meth], quantities_=q, n_mc=N_LAW,
                        seed=_law_seed("moments", fam, des, meth))
        L = law.sample(N_LAW, seed=_law_seed("sample", fam, des, meth))
        A, B = U[(fam, des, meth, n1)], U[(fam, des, meth, n2)]
        par = _params(A.shape[1])
        base = {"family": fam, "design": des, "method": meth, "lam0": float(c0["lam0"]),
                "level": lam0_eff}
        reps.append({"family": fam, "design": des, "method": meth, "lam0 (level used)":
                     f"{base['lam0']:g} ({lam0_eff:.4g})", f"R (n={n1})": A.shape[0],
                     f"R (n={n2})": B.shape[0]})
        # means
        mA, sA = A.mean(0), A.std(0, ddof=1) / math.sqrt(A.shape[0])
        mB, sB = B.mean(0), B.std(0, ddof=1) / math.sqrt(B.shape[0])
        ext = w1 * mA + w2 * mB
        se = np.sqrt((w1 * sA) ** 2 + (w2 * sB) ** 2 + law.se_bias**2)
        for j, p in enumerate(par):
            means.append({**base, "param": p, "limit": law.bias[j], "limit_se": law.se_bias[j],
                          "m1": mA[j], "se1": sA[j], "m2": mB[j], "se2": sB[j],
                          "ext": ext[j], "se_ext": se[j], "z": (ext[j] - law.bias[j]) / se[j]})
        # covariances
        CA, SA = _cov_and_se(A)
        CB, SB = _cov_and_se(B)
        Cx = w1 * CA + w2 * CB
        Sx = np.sqrt((w1 * SA) ** 2 + (w2 * SB) ** 2 + law.se_cov**2)
        for j in range(len(par)):
            for k in range(j, len(par)):
                covs.append({**base, "entry": f"{par[j]},{par[k]}", "diag": j == k,
                             "limit": law.cov[j, k], "limit_se": law.se_cov[j, k],
                             "m1": CA[j, k], "se1": SA[j, k], "m2": CB[j, k], "se2": SB[j, k],
                             "ext": Cx[j, k], "se_ext": Sx[j, k],
                             "z": (Cx[j, k] - law.cov[j, k]) / Sx[j, k]})
        # point mass at zero
        for j in np.flatnonzero(law.zero):
            pA, pB = float(np.mean(A[:, j] == 0)), float(np.mean(B[:, j] == 0))
            sa = math.sqrt(pA * (1 - pA) / A.shape[0])
            sb = math.sqrt(pB * (1 - pB) / B.shape[0])
            pe = w1 * pA + w2 * pB
            s = math.sqrt((w1 * sa) ** 2 + (w2 * sb) ** 2 + law.se_prob_zero[j] ** 2)
            p0s.append({**base, "param": par[j], "limit": law.prob_zero[j],
                        "limit_se": law.se_prob_zero[j], "m1": pA, "se1": sa, "m2": pB,
                        "se2": sb, "ext": pe, "se_ext": s, "z": (pe - law.prob_zero[j]) / s})
        # distribution: KS and QQ at the larger size
        for j, p in enumerate(par):
            res = stats.ks_2samp(B[:, j], L[:, j])
            kss.append({**base, "param": p, "D": float(res.statistic),
                        "p": float(res.pvalue), "R": B.shape[0], "m": L.shape[0]})
            qs, ql = np.quantile(B[:, j], QQ_PROBS), np.quantile(L[:, j], QQ_PROBS)
            qqs.append(pd.DataFrame({**base, "param": p, "prob": QQ_PROBS,
                                     "simulated": qs, "limit": ql}))
    means_df, cov_df, p0_df = pd.DataFrame(means), pd.DataFrame(covs), pd.DataFrame(p0s)
    K = len(means_df) + len(cov_df) + len(p0_df)
    crit = float(stats.norm.ppf(1 - FWER / (2 * K)))
    ks_df = pd.DataFrame(kss)
    return Analysis(means=means_df, cov=cov_df, p0=p0_df, ks=ks_df, qq=pd.concat(qqs),
                    sizes=(n1, n2), reps=pd.DataFrame(reps), crit=crit,
                    ks_level=FWER / len(ks_df))


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------


def _qq_figure(a: Analysis, design: str, figures: Path) -> Path:
    gfgsm.report.style()
    import matplotlib.pyplot as plt

    d = a.qq[a.qq.design == design]
    fams = list(dict.fromkeys(d.family))
    pars = list(dict.fromkeys(d.param))
    meths = list(dict.fromkeys(d.method))
    fig, axes = plt.subplots(len(fams), len(pars), figsize=(2.1 * len(pars), 2.0 * len(fams)),
                             squeeze=False)
    for i, fam in enumerate(fams):
        for j, par in enumerate(pars):
            ax = axes[i, j]
            for k, meth in enumerate(meths):
                r = d[(d.family == fam) & (d.param == par) & (d.method == meth)]
                ax.plot(r["limit"], r["simulated"], ls="none", marker=gfgsm.report.MARKERS[k],
                        ms=3.5, color=f"{0.1 + 0.4 * k:.2f}", mfc="white" if k else None,
                        label=meth)
            lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
            hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
            ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls=(0, (4, 2)), zorder=0)
            ax.set_title(f"{fam}, {par}", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == len(fams) - 1:
                ax.set_xlabel("limit-law quantile", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"simulated, n = {a.sizes[1]}", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.subplots_adjust(wspace=0.35, hspace=0.45)
    return gfgsm.report.save_figure(fig, figures, f"limit_law_qq_{design}")


def _errorbar_panel(ax: Any, rows: pd.DataFrame, series: list[tuple[str, str, str]],
                    labels: list[str]) -> None:
    width = 0.22
    for s, (col, se, lab) in enumerate(series):
        x = np.arange(len(rows)) + (s - (len(series) - 1) / 2) * width
        ax.errorbar(x, rows[col] - rows["limit"], yerr=2 * rows[se],
                    fmt=gfgsm.report.MARKERS[s], ms=4, color=f"{0.1 + 0.25 * s:.2f}",
                    mfc="white" if s < len(series) - 1 else None, capsize=2, lw=0.8,
                    ls="none", label=lab)
    ax.axhline(0.0, color="0.4", lw=0.8, ls=(0, (4, 2)))
    ax.set_xticks(np.arange(len(rows)), labels)


def _means_figure(a: Analysis, figures: Path) -> Path:
    gfgsm.report.style()
    import matplotlib.pyplot as plt

    m = a.means
    fams = list(dict.fromkeys(m.family))
    cols = [(d, meth) for d in dict.fromkeys(m.design) for meth in dict.fromkeys(m.method)]
    n1, n2 = a.sizes
    series = [("m1", "se1", f"n = {n1}"), ("m2", "se2", f"n = {n2}"),
              ("ext", "se_ext", f"extrapolated 2m({n2}) - m({n1})" if n2 == 4 * n1
               else "Richardson extrapolation")]
    fig, axes = plt.subplots(len(fams), len(cols), figsize=(2.8 * len(cols), 2.3 * len(fams)),
                             squeeze=False, sharey="row")
    for i, fam in enumerate(fams):
        for k, (des, meth) in enumerate(cols):
            rows = m[(m.family == fam) & (m.design == des) & (m.method == meth)]
            ax = axes[i, k]
            _errorbar_panel(ax, rows, series, [p.replace("beta", "b") for p in rows.param])
            ax.set_title(f"{fam}, {des}, {meth}", fontsize=8)
            ax.tick_params(labelsize=7)
            if k == 0:
                ax.set_ylabel("mean(U_n) - limit bias", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(series), fontsize=8,
               bbox_to_anchor=(0.5, 1.0))
    fig.subplots_adjust(wspace=0.12, hspace=0.5, top=0.9)
    return gfgsm.report.save_figure(fig, figures, "limit_law_means")


def _cov_figure(a: Analysis, figures: Path) -> Path:
    gfgsm.report.style()
    import matplotlib.pyplot as plt

    c = a.cov.copy()
    c["case"] = c.design + ", " + c.method
    fams = list(dict.fromkeys(c.family))
    cases = list(dict.fromkeys(c.case))
    fig, axes = plt.subplots(1, len(fams), figsize=(3.3 * len(fams), 3.2), squeeze=False)
    for i, fam in enumerate(fams):
        ax = axes[0, i]
        for s, case in enumerate(cases):
            r = c[(c.family == fam) & (c.case == case)]
            ax.errorbar(r["limit"], r["ext"], yerr=2 * r["se_ext"],
                        fmt=gfgsm.report.MARKERS[s], ms=4, color=f"{0.1 + 0.2 * s:.2f}",
                        mfc="white" if s % 2 else None, capsize=2, lw=0.8, ls="none",
                        label=case)
        lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls=(0, (4, 2)), zorder=0)
        ax.set_title(fam)
        ax.set_xlabel("limit-law covariance entry")
        if i == 0:
            ax.set_ylabel("simulated, extrapolated (+-2 SE)")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.subplots_adjust(wspace=0.25)
    return gfgsm.report.save_figure(fig, figures, "limit_law_cov")


# --------------------------------------------------------------------------------------------
# the section
# --------------------------------------------------------------------------------------------


def _table(a: Analysis) -> pd.DataFrame:
    n1, n2 = a.sizes
    var = a.cov[a.cov.diag].copy()
    var["param"] = var.entry.str.split(",").str[0]
    key = ["family", "design", "method", "param"]
    t = a.means.merge(var[[*key, "limit", "limit_se", "ext", "se_ext", "z"]], on=key,
                      suffixes=("", "_v"))
    t = t.merge(a.ks[[*key, "D", "p"]], on=key)
    if len(a.p0):
        t = t.merge(a.p0[[*key, "limit", "limit_se", "ext", "se_ext"]], on=key, how="left",
                    suffixes=("", "_p0"))
    rows = []
    for r in t.itertuples(index=False):
        d = r._asdict()
        has_p0 = "limit_p0" in d and not pd.isna(d["limit_p0"])
        rows.append({
            "family": r.family, "design": r.design, "method": r.method, "coef": r.param,
            "mean: limit": fmt_estimate(r.limit, r.limit_se),
            f"mean: n={n1}": fmt_estimate(r.m1, r.se1), f"mean: n={n2}": fmt_estimate(r.m2, r.se2),
            "mean: extrap.": fmt_estimate(r.ext, r.se_ext), "z": f"{r.z:.2f}",
            "var: limit": fmt_estimate(r.limit_v, r.limit_se_v),
            "var: extrap.": fmt_estimate(r.ext_v, r.se_ext_v),
            "z (var)": f"{r.z_v:.2f}", f"KS D (p), n={n2}": f"{r.D:.3f} ({r.p:.3f})",
            "P(U=0): limit": fmt_estimate(d["limit_p0"], d["limit_se_p0"]) if has_p0 else "",
            "P(U=0): extrap.": fmt_estimate(d["ext_p0"], d["se_ext_p0"]) if has_p0 else "",
        })
    return pd.DataFrame(rows)


#: The tables of :func:`summarise`: the frames of :class:`Analysis` of the same names.
TABLES = ("means", "cov", "p0", "ks", "qq", "reps")


def summarise(store: Path, study: Study = STUDY) -> gfgsm.report.Summaries:
    """Everything the section shows, reduced from ``store``: the frames of :func:`analyse` (per
    coefficient or covariance entry of each family x design x method; ``qq`` the simulated and
    limit-law quantiles at :data:`QQ_PROBS`; ``reps`` the replications used) and, in ``meta``,
    the sizes, the agreement thresholds, the limit-law constants, the provenance and the
    preset."""
    a = analyse(store, study)
    tables = {"means": a.means, "cov": a.cov, "p0": a.p0, "ks": a.ks,
              "qq": a.qq.reset_index(drop=True), "reps": a.reps}
    meta = {"sizes": [int(a.sizes[0]), int(a.sizes[1])], "crit": a.crit,
            "ks_level": a.ks_level, "fwer": FWER, "n_law": N_LAW, "law_seed": LAW_SEED,
            "provenance": gfgsm.report.provenance(store),
            "preset": gfgsm.report.store_manifest(store)["preset"]}
    return gfgsm.report.Summaries(tables=tables, meta=meta)


def _analysis(s: gfgsm.report.Summaries) -> Analysis:
    """The :class:`Analysis` that :func:`summarise` reduced ``s`` from."""
    n1, n2 = s.meta["sizes"]
    return Analysis(**{name: s[name] for name in TABLES}, sizes=(int(n1), int(n2)),
                    crit=float(s.meta["crit"]), ks_level=float(s.meta["ks_level"]))


def render(s: gfgsm.report.Summaries, figures: Path) -> gfgsm.report.Section:
    """The section (figures, tables, verdict, notes) from the summaries of :func:`summarise`
    alone."""
    a = _analysis(s)
    fwer, n_law, law_seed = float(s.meta["fwer"]), int(s.meta["n_law"]), int(s.meta["law_seed"])
    n1, n2 = a.sizes
    figs = [
        (str(_qq_figure(a, d, figures)),
         f"QQ plots, design '{d}': quantiles of the simulated U_n = sqrt(n)(theta_hat - theta0) "
         f"at n = {n2} ({int(a.ks.R.median())} replications) against {n_law} draws of the limit "
         "law argmin Z(u), per coefficient; dashed: the identity."
         + (" The flat stretch at 0 is the point mass of the true zero." if d == "sparse"
            else ""))
        for d in dict.fromkeys(a.means.design)
    ]
    figs.append((str(_means_figure(a, figures)),
                 f"Mean of U_n minus the limit law's bias, at n = {n1}, n = {n2} and the "
                 "Richardson extrapolation that removes the c/sqrt(n) finite-sample term; "
                 "bars are +-2 Monte Carlo SE (the extrapolation's includes the limit's SE)."))
    figs.append((str(_cov_figure(a, figures)),
                 "Covariance entries of U_n (Richardson-extrapolated from both sizes) against "
                 "the limit law's covariance; bars +-2 SE; dashed: the identity."))
    allz = pd.concat([a.means.z, a.cov.z, a.p0.z if len(a.p0) else pd.Series(dtype=float)])
    K = len(allz)
    worst = float(allz.abs().max())
    n_out = int((allz.abs() > a.crit).sum())
    ks_rej = a.ks[a.ks.p < a.ks_level]
    pmin = a.ks.loc[a.ks.p.idxmin()]
    agrees = n_out == 0 and ks_rej.empty
    # What the finite-n term is: the mean drift between the two sizes, in units of its SE.
    drift = (a.means.m2 - a.means.m1) / np.sqrt(a.means.se1**2 + a.means.se2**2)
    mz2 = (a.means.m2 - a.means.limit) / np.sqrt(a.means.se2**2 + a.means.limit_se**2)
    rel = (a.means.se_ext / np.sqrt(a.cov[a.cov.diag].limit.to_numpy())).median()
    relse = (a.means.se2 / np.sqrt(a.cov[a.cov.diag].limit.to_numpy())).median()
    R2 = int(a.ks.R.median())
    m_law = int(a.ks.m.iloc[0])
    # Smallest KS distance the test can flag at the Bonferroni level (asymptotic critical value).
    d_crit = float(stats.kstwobign.isf(a.ks_level) * math.sqrt((R2 + m_law) / (R2 * m_law)))
    if agrees:
        verdict = (f"Agrees: all {K} Richardson-extrapolated means, covariance entries and "
                   f"point masses lie within the Bonferroni bound |z| <= {a.crit:.2f} of the "
                   f"limit law (largest |z| = {worst:.2f}), and none of the {len(a.ks)} KS tests "
                   f"at n = {n2} rejects at level {a.ks_level:.2g} (smallest p = "
                   f"{pmin.p:.3f}, {pmin.family} {pmin.design} {pmin.method} {pmin.param}).")
    else:
        parts = []
        if n_out:
            parts.append(f"{n_out} of {K} extrapolated moments lie outside the Bonferroni bound "
                         f"|z| <= {a.crit:.2f} (largest |z| = {worst:.2f})")
        if not ks_rej.empty:
            parts.append(f"{len(ks_rej)} of {len(a.ks)} KS tests at n = {n2} reject at level "
                         f"{a.ks_level:.2g} (smallest p = {pmin.p:.2g}, {pmin.family} "
                         f"{pmin.design} {pmin.method} {pmin.param})")
        verdict = "Disagrees: " + "; ".join(parts) + "."
    table = _table(a)
    zc = a.cov[~a.cov.diag]
    off = zc.groupby(["family", "design", "method"], sort=False).agg(
        entries=("z", "size"), max_abs_z=("z", lambda z: float(np.max(np.abs(z))))
    ).reset_index()
    if len(a.p0):
        p0t = a.p0.assign(**{
            "P(U=0) limit": [fmt_estimate(v, s)
                             for v, s in zip(a.p0.limit, a.p0.limit_se, strict=True)],
            f"n={n1}": [fmt_estimate(v, s) for v, s in zip(a.p0.m1, a.p0.se1, strict=True)],
            f"n={n2}": [fmt_estimate(v, s) for v, s in zip(a.p0.m2, a.p0.se2, strict=True)],
            "extrap.": [fmt_estimate(v, s) for v, s in zip(a.p0.ext, a.p0.se_ext, strict=True)],
            "z": [f"{z:.2f}" for z in a.p0.z],
        })[["family", "design", "method", "param", "P(U=0) limit", f"n={n1}", f"n={n2}",
            "extrap.", "z"]]
    notes = (
        f"**Agreement rule** (stated before looking at the numbers): every Richardson-"
        f"extrapolated mean, covariance entry and P(U_j = 0) must be within "
        f"|z| <= {a.crit:.2f} of the limit law, the two-sided Bonferroni bound for a family-"
        f"wise error of {fwer:g} over the {K} comparisons (z uses the Monte Carlo SE of the "
        "simulation and of the limit law's own Monte Carlo moments, added in quadrature), and no "
        f"two-sample KS test at n = {n2} may reject at {fwer:g}/{len(a.ks)} = "
        f"{a.ks_level:.2g}.\n\n"
        f"**The finite-n term.** The means at n = {n1} and n = {n2} differ from each other by a "
        f"median |drift| of {drift.abs().median():.2f} SE (largest {drift.abs().max():.2f}), "
        f"and at n = {n2} the mean is a median {mz2.abs().median():.2f} SE from the limit's bias "
        f"(largest {mz2.abs().max():.2f}): the O(1/sqrt(n)) term of "
        "tests/test_theory_vs_simulation.py (the MLE's own bias on this scale and the curvature "
        "of the shrinkage). Hence the comparison uses the extrapolation "
        + ("2 m(4n) - m(n)" if n2 == 4 * n1 else
           "(sqrt(n2) m(n2) - sqrt(n1) m(n1)) / (sqrt(n2) - sqrt(n1))")
        + ", exact for an error c/sqrt(n) + o(1/sqrt(n)), at the price of a larger SE. The KS "
        f"tests and QQ plots use n = {n2} as it is, so they include that term.\n\n"
        f"**Monte Carlo error of this preset.** With {R2} replications per size the MCSE of a "
        f"mean of U_n is a median {relse:.3f} limit-law SDs and that of the extrapolation "
        f"{rel:.3f} SDs; a KS test of {R2} against {m_law} draws flags, at the Bonferroni "
        f"level, distribution functions that differ by at least {d_crit:.3f} somewhere (a "
        f"location shift of about {d_crit / stats.norm.pdf(0):.2f} SD for a normal law). The "
        "KS p-value is computed as for continuous laws; at the point mass of a true zero (a tie "
        "shared by both samples) it is conservative.\n\n"
        "Off-diagonal covariance entries (figure above), largest |z| per case:\n\n"
        + gfgsm.report.markdown_table(off)
        + ("\n\nPoint mass at zero of the true zero slope:\n\n"
           + gfgsm.report.markdown_table(p0t) if len(a.p0) else "")
        + "\n\nReplications used (converged fits only):\n\n"
        + gfgsm.report.markdown_table(a.reps)
    )
    return gfgsm.report.Section(
        key="limit_law",
        title="The limit law of sqrt(n)(theta_hat - theta0)",
        claim=("With lam_n = lam0/sqrt(n), sqrt(n)(theta_hat - theta0) converges in law to "
               "argmin_u Z(u), Z(u) = -u'W + u'Iu/2 + lam0 D pi(u) - lam0 ||beta0||_1 V'u for "
               "G-FGSM and -u'W + u'Iu/2 + lam0 pi(u) for PL, W ~ N(0, I) (docs/theory.md s.5); a "
               "true zero gets positive mass at exactly 0 (consequence 4)."),
        verdict=verdict,
        agrees=agrees,
        figures=figs,
        tables=[(f"Mean and variance of U_n per coefficient (estimate (MCSE)); extrap. = "
                 f"Richardson extrapolation from n = {n1} and {n2}; KS at n = {n2}.",
                 gfgsm.report.markdown_table(table))],
        provenance=s.meta["provenance"]
        + f" Limit-law draws: {n_law} per case, seeded by SeedSequence([{law_seed}, "
          "crc32(kind|family|design|method)]).",
        notes=notes,
    )


def section(preset: str, results: Path, figures: Path, *, study: Study = STUDY,
            executor: str = "processes") -> gfgsm.report.Section:
    """Run (or resume) the study and build the report section (docs/theory.md s.8, claim 2):
    :func:`summarise` the store, then :func:`render` the summaries (attached to the section)."""
    return gfgsm.report.split_section(summarise, render, study, preset, results, figures,
                                      executor)


section.order = 20  # type: ignore[attr-defined]
section.render = render  # type: ignore[attr-defined]
