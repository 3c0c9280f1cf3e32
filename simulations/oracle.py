"""``oracle``: SCAD's weak oracle property and the bridge (lr) rate (docs/theory.md s.7; s.8,
claim 4).

Aims
    (a) SCAD at ``lam_n = lam0 n^(-1/4)``, the boundary rate where ``sqrt(n) lam_n^2 = lam0^2``
    stays fixed: PL is oracle (``sqrt(n)(theta_hat_S - theta0_S) => N(0, I_SS^-1)``, true zeros
    exactly 0 with probability -> 1); G-FGSM selects the same way but its limit is shifted by
    ``c_V I_SS^-1 V_S``, ``c_V = s0 (a + 1) / 2 lam0^2``: oracle only when ``V = 0`` (sign
    neutral) or ``sqrt(n) lam_n^2 -> 0`` (the *weak* oracle property).  (b) lr, ``r = 1/2``, at
    ``lam_n = lam0 n^(r/2 - 1) = lam0 n^(-3/4)``: no asymptotic bias for either estimator (the
    ``V`` term is ``O(n^((r - 1)/2)) = O(n^(-1/4))``), and a true zero is exactly 0 with a
    probability strictly between 0 and 1, the atom of ``argmin Z`` (Knight & Fu 2000).
Data-generating mechanisms
    The "sparse" design of :mod:`simulations.limit_law`: ``x ~ GaussianDesign(3, rho=0.3)``,
    ``beta0 = (1, 0, -0.5)`` (one true zero, ``s0 = 2``); ``family`` binomial (intercept 1: not
    sign neutral, ``V != 0``) and gaussian (intercept 1, N(0, 1) errors: sign neutral, ``V =
    0``).  ``n`` in {1000, 4000} (quick) and {1000, 4000, 16000} (full).
Estimands
    The law of ``U_n = sqrt(n)(theta_hat - theta0)``: its mean, and ``P(beta_hat_2 = 0)``.
Methods
    ``G-FGSM SCAD``: SCAD (a = 3.7), ``lam = 0.5 n^(-1/4)``, exact adversary; ``PL SCAD``: the
    same at the matched level ``0.5 D phi n^(-1/4)`` (docs/theory.md s.5, consequence 3).  At
    n = 1000 ``a lam_n = 0.33`` is below the smallest nonzero ``|beta0_j| = 0.5``, so SCAD is
    flat at the support at every size (the derivation's condition).  ``G-FGSM lr`` and ``PL
    lr``: ``r = 0.5``, ``lam = n^(-3/4)`` and ``D phi n^(-3/4)``.  Both fits of a pair use the
    same replications, so their *paired* difference has a small Monte Carlo error.
Performance measures
    Per coefficient: the mean of ``U_n`` with MCSE at each ``n``; the mean paired difference
    ``U_n(G-FGSM) - U_n(PL)`` with MCSE, extrapolated to ``n = inf`` with the rate ``n^(-1/4)``
    of the leading finite-sample term of both penalties (s.7: ``sqrt(n) lam_n^3`` for SCAD,
    ``n^((r - 1)/2)`` for lr): ``(4^(1/4) d(4n) - d(n)) / (4^(1/4) - 1)``; ``P(beta_hat_2 = 0)``
    with MCSE.  Limits from :func:`gfgsm.theory.limit_law`.

Decision rules (fixed before the run; the report prints them with the numbers):

1. *SCAD: weak oracle.*  At every family and support coefficient the extrapolated paired
   difference lies within the Bonferroni band (over all rule-1 and rule-3 cells) of the limit
   ``c_V (I_SS^-1 V_S)_j`` (0 for gaussian); and for binomial at least one limit differs from
   0 by more than the band (the ``V`` term is visible: G-FGSM is not oracle there).
2. *SCAD: selection.*  At the largest ``n`` both SCAD estimators set ``beta_2`` to exactly 0
   in at least 99% of replications.
3. *lr: no asymptotic bias.*  At every family and coefficient the extrapolated paired
   difference lies within the band of 0.
4. *lr: an atom strictly inside (0, 1).*  At the largest ``n`` ``P(beta_hat_2 = 0)`` lies
   within the Bonferroni band (over its cells) of the limit law's atom.

A rule that does not hold is reported with its numbers; the section agrees when all four do.

A rule-4 failure found with the quick preset (2026-11-26), and its fix.  ``fit_batch`` used
to return the stationary point reached from the l1 fit, not the global minimiser that Knight &
Fu's limit describes, and for lr (a coordinate at zero is always a local minimiser) a nonzero
local minimum often sat beside the global one at 0: gaussian PL lr, n = 4000, ``P(beta_hat_2 =
0) = 0.70`` against the limit's 0.81, binomial 0.60 against 0.70.  ``fit_batch`` now ends an
lr fit with a global zero check (:mod:`gfgsm.batch`: a nonzero slope moves to zero when that,
with the rest re-minimised, lowers the objective); on 1000 replications of the full preset's
n = 4000 the rates became 0.798 and 0.800 (gaussian PL, G-FGSM; limit 0.814) and 0.698 and
0.700 (binomial; limits 0.702, 0.695).

Cost (2-core machine): the quick preset (200 replications) takes about 30 s; the full preset
(1000 replications, n to 16000) about 8 minutes on 2 cores (pilot: 300 replications of one
family at n = 16000 took 20-33 s per method).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import gfgsm.mc
import gfgsm.report
from gfgsm.dgp import DGP
from gfgsm.mc.spec import LamRule, MethodSpec, Preset, Study
from gfgsm.theory import limit_law, quantities

from ._format import fmt_estimate
from .limit_law import make_dgp as _limit_law_dgp

#: SCAD's level ``SCAD_LAM0 n^(-1/4)``: small enough that ``a lam_n < 0.5`` at n = 1000.
SCAD_LAM0 = 0.5
SCAD_A = 3.7
LR_R = 0.5
#: The leading finite-sample term of both penalties is of order n^(-RATE) (module docstring).
RATE = 0.25
FWER = 0.05
N_LAW = 20_000
LAW_SEED = 1811
FAMILIES = ["binomial", "gaussian"]
#: (penalty, G-FGSM method name, PL method name)
PAIRS = (("scad", "G-FGSM SCAD", "PL SCAD"), ("lr", "G-FGSM lr", "PL lr"))


def make_dgp(c: Mapping[str, Any]) -> DGP:
    return _limit_law_dgp({"family": c["family"], "design": "sparse"})


METHODS = (
    MethodSpec("G-FGSM SCAD", "gfgsm", penalty="scad", adversary="exact",
               lam=LamRule(exponent=0.25, scale=SCAD_LAM0), params=(("a", SCAD_A),)),
    MethodSpec("PL SCAD", "pl", penalty="scad",
               lam=LamRule(exponent=0.25, scale=SCAD_LAM0, multiplier="D*phi"),
               params=(("a", SCAD_A),)),
    MethodSpec("G-FGSM lr", "gfgsm", penalty="lr", adversary="exact",
               lam=LamRule(exponent=1 - LR_R / 2, scale=1.0), params=(("r", LR_R),)),
    MethodSpec("PL lr", "pl", penalty="lr",
               lam=LamRule(exponent=1 - LR_R / 2, scale=1.0, multiplier="D*phi"),
               params=(("r", LR_R),)),
)

STUDY = Study(
    name="oracle",
    aims=("SCAD's weak oracle property at lam_n = lam0 n^(-1/4) (G-FGSM biased by "
          "c_V I_SS^-1 V_S unless V = 0, PL oracle) and the bridge penalty's rate "
          "lam0 n^(r/2-1) (no asymptotic bias, an atom at 0 strictly inside (0, 1)) "
          "(docs/theory.md s.7)."),
    factors={"family": FAMILIES, "n": [1000, 4000]},
    make_dgp=make_dgp,
    methods=METHODS,
    presets={
        "quick": Preset(reps=200, description="about 30 s on 2 cores"),
        "full": Preset(reps=1000, factors={"n": [1000, 4000, 16000]},
                       description="n to 16000; about 8 minutes on 2 cores"),
    },
    estimands="the law of sqrt(n)(theta_hat - theta0): its mean and P(beta_hat_2 = 0)",
    measures=("mean of U_n", "paired difference", "P(exact zero)"),
)


def _params(q: int) -> list[str]:
    return ["intercept"] + [f"beta{j}" for j in range(1, q)]


def _U(df: pd.DataFrame) -> dict[tuple[str, str, int], pd.DataFrame]:
    """``U = sqrt(n)(theta_hat - theta0)`` per (family, method, n) indexed by replication
    (converged fits only)."""
    out = {}
    ok = df[df["converged"].astype(bool)]
    for (fam, meth, n), g in ok.groupby(["family", "method", "n"], sort=True):
        par = _params(g["param"].nunique())
        est = g.pivot(index="rep", columns="param", values="estimate")[par]
        true = g.groupby("param")["true"].first()[par].to_numpy()
        out[(fam, meth, int(n))] = math.sqrt(n) * (est - true)
    return out


def paired_rows(U: dict[tuple[str, str, int], pd.DataFrame], fam: str, method_a: str,
                method_b: str, sizes: list[int], weights: tuple[float, float],
                limit: np.ndarray, limit_se: np.ndarray | None,
                labels: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the paired difference ``U(method_a) - U(method_b)`` (same replications) per
    coefficient: its mean ``d<n>`` and MCSE ``s<n>`` at each size, the extrapolation
    ``w1 d(n1) + w2 d(n2)`` from the two largest sizes with its SE (the limit's SE added in
    quadrature when given) and ``z`` against ``limit``; ``labels`` lead every row.  Empty when
    either method lacks one of the two largest sizes."""
    n1, n2 = sizes[-2], sizes[-1]
    w1, w2 = weights
    per_n = {}
    for n in sizes:
        if (fam, method_a, n) not in U or (fam, method_b, n) not in U:
            continue
        d = (U[(fam, method_a, n)] - U[(fam, method_b, n)]).dropna()
        per_n[n] = (d.mean().to_numpy(), d.std(ddof=1).to_numpy() / math.sqrt(len(d)), len(d),
                    list(d.columns))
    if n1 not in per_n or n2 not in per_n:
        return []
    (m1, s1, _, par), (m2, s2, R2, _) = per_n[n1], per_n[n2]
    ext = w1 * m1 + w2 * m2
    var = (w1 * s1) ** 2 + (w2 * s2) ** 2
    se = np.sqrt(var if limit_se is None else var + limit_se**2)
    rows = []
    for j, p in enumerate(par):
        row = {**labels, "param": p, "limit": limit[j],
               **({} if limit_se is None else {"limit_se": limit_se[j]}),
               "ext": ext[j], "se_ext": se[j],
               "z": (ext[j] - limit[j]) / se[j] if se[j] > 0 else 0.0, "R": R2}
        for n, (m, s, _, _) in per_n.items():
            row[f"d{n}"], row[f"s{n}"] = m[j], s[j]
        rows.append(row)
    return rows


def _law_seed(*key: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([LAW_SEED, zlib.crc32("|".join(key).encode())])


def _laws(fam: str) -> dict[str, Any]:
    """The limit law of each method (levels as the fits use them: PL at ``lam0 D phi``)."""
    dgp = make_dgp({"family": fam})
    q = quantities(dgp, seed=0)
    dphi = q.D * q.phi
    return {
        "G-FGSM SCAD": limit_law(dgp, SCAD_LAM0, "gfgsm", "scad", a=SCAD_A, quantities_=q),
        "PL SCAD": limit_law(dgp, SCAD_LAM0 * dphi, "pl", "scad", a=SCAD_A, quantities_=q),
        "G-FGSM lr": limit_law(dgp, 1.0, "gfgsm", "lr", r=LR_R, quantities_=q, n_mc=N_LAW,
                               seed=_law_seed(fam, "gfgsm")),
        "PL lr": limit_law(dgp, dphi, "pl", "lr", r=LR_R, quantities_=q, n_mc=N_LAW,
                           seed=_law_seed(fam, "pl")),
    }


def summarise(store: Path, study: Study = STUDY) -> gfgsm.report.Summaries:
    """Per (family, method, n, coefficient) means of ``U_n``; per (family, penalty,
    coefficient) paired differences at each n and extrapolated; ``P(beta_hat_2 = 0)``; each
    with MCSE and the limit."""
    df = gfgsm.mc.load(store)
    U = _U(df)
    sizes = sorted({k[2] for k in U})
    if len(sizes) < 2:
        raise ValueError(f"oracle needs two sample sizes, got {sizes}")
    n1, n2 = sizes[-2], sizes[-1]
    g = (n2 / n1) ** RATE
    w1, w2 = -1.0 / (g - 1.0), g / (g - 1.0)
    means, diffs, zeros = [], [], []
    for fam in sorted({k[0] for k in U}):
        laws = _laws(fam)
        for meth, law in laws.items():
            for n in sizes:
                A = U.get((fam, meth, n))
                if A is None:
                    continue
                par = list(A.columns)
                m, s = A.mean().to_numpy(), A.std(ddof=1).to_numpy() / math.sqrt(len(A))
                for j, p in enumerate(par):
                    means.append({"family": fam, "method": meth, "n": n, "param": p,
                                  "mean": m[j], "se": s[j], "limit": law.bias[j],
                                  "limit_se": law.se_bias[j], "R": len(A)})
                j0 = int(np.flatnonzero(law.zero)[0])
                p0 = float(np.mean(A.iloc[:, j0].to_numpy() == 0.0))
                zeros.append({"family": fam, "method": meth, "n": n, "param": par[j0],
                              "p0": p0, "se": math.sqrt(p0 * (1 - p0) / len(A)),
                              "limit": law.prob_zero[j0], "limit_se": law.se_prob_zero[j0],
                              "R": len(A)})
        for pen, mg, mp in PAIRS:
            if pen == "lr":
                # At matched levels both limits are argmin Z with the same c = lam0 D, and Z is
                # symmetric in W: the difference's limit is exactly 0 (no Monte Carlo error).
                lim, lim_se = np.zeros_like(laws[mg].bias), np.zeros_like(laws[mg].bias)
            else:
                lim = laws[mg].bias - laws[mp].bias
                lim_se = np.sqrt(laws[mg].se_bias ** 2 + laws[mp].se_bias ** 2)
            diffs += paired_rows(U, fam, mg, mp, sizes, (w1, w2), lim, lim_se,
                                 {"family": fam, "penalty": pen})
    meta = {"sizes": [int(n) for n in sizes], "rate": RATE, "fwer": FWER, "n_law": N_LAW,
            "law_seed": LAW_SEED, "scad_lam0": SCAD_LAM0, "scad_a": SCAD_A, "lr_r": LR_R,
            "provenance": gfgsm.report.provenance(store),
            "preset": gfgsm.report.store_manifest(store)["preset"]}
    return gfgsm.report.Summaries(tables={"means": pd.DataFrame(means),
                                          "diffs": pd.DataFrame(diffs),
                                          "zeros": pd.DataFrame(zeros)}, meta=meta)


def judge(s: gfgsm.report.Summaries) -> dict[str, Any]:
    """The four decision rules of the module docstring, with the numbers they read."""
    d, z0 = s["diffs"], s["zeros"]
    n_max = int(max(s.meta["sizes"]))
    fwer = float(s.meta["fwer"])
    dd = d[d.param != "beta2"]  # the true zero: both estimators put it at 0 (SCAD) or share it
    crit = float(stats.norm.ppf(1 - fwer / (2 * max(len(dd), 1))))
    scad, lr = dd[dd.penalty == "scad"], dd[dd.penalty == "lr"]
    binv = scad[scad.family == "binomial"]
    visible = (binv.limit.abs() / binv.se_ext) > crit
    r1 = bool((scad.z.abs() <= crit).all() and visible.any())
    last = z0[z0.n == n_max]
    sc0 = last[last.method.str.contains("SCAD")]
    r2 = bool((sc0.p0 >= 0.99).all())
    r3 = bool((lr.z.abs() <= crit).all())
    lr0 = last[last.method.str.contains("lr")].copy()
    lr0["z"] = (lr0.p0 - lr0.limit) / np.sqrt(lr0.se**2 + lr0.limit_se**2)
    crit0 = float(stats.norm.ppf(1 - fwer / (2 * max(len(lr0), 1))))
    r4 = bool((lr0.z.abs() <= crit0).all())
    return {"crit": crit, "crit0": crit0, "rules": [r1, r2, r3, r4], "scad": scad, "lr": lr,
            "visible": int(visible.sum()), "scad_zero": sc0, "lr_zero": lr0, "n_max": n_max}


def _figure(s: gfgsm.report.Summaries, figures: Path) -> Path:
    gfgsm.report.style()
    import matplotlib.pyplot as plt

    d = s["diffs"]
    d = d[d.param != "beta2"]
    sizes = [int(n) for n in s.meta["sizes"]]
    fams = sorted(d.family.unique())
    fig, axes = plt.subplots(len(fams), 2, figsize=(9, 3.2 * len(fams)), squeeze=False,
                             sharex=True)
    for i, fam in enumerate(fams):
        for k, pen in enumerate(("scad", "lr")):
            ax = axes[i, k]
            rows = d[(d.family == fam) & (d.penalty == pen)]
            for c, (_, r) in enumerate(rows.iterrows()):
                col = f"C{c}"
                ns = [n for n in sizes if f"d{n}" in r and pd.notna(r[f"d{n}"])]
                ax.errorbar(ns, [r[f"d{n}"] for n in ns], yerr=[2 * r[f"s{n}"] for n in ns],
                            marker=gfgsm.report.MARKERS[c], ls=(0, gfgsm.report.DASHES[c]),
                            color=col, label=r.param, capsize=3)
                ax.axhline(r.limit, color=col, ls="--", lw=1)
            ax.set_xscale("log")
            ax.set_title(f"{fam}, {pen.upper() if pen == 'scad' else 'lr (r = 0.5)'}")
            ax.set_ylabel("mean U(G-FGSM) - U(PL)")
            ax.legend(fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("n")
    fig.tight_layout()
    return gfgsm.report.save_figure(fig, figures, "oracle_paired")


def two_term(d: pd.DataFrame, sizes: list[int]) -> pd.DataFrame:
    """Extrapolations of the paired differences with one and with two finite-sample terms.

    With ``x = n^(-1/4)`` and the sizes in ratio 4 (``x`` in ratio ``q = 4^(-1/4)``),
    ``d(n) = d_inf + a x + b x^2 + ...``: each consecutive pair gives the one-term value
    ``e_k = (d(n_{k+1}) - q d(n_k)) / (1 - q)``, whose error is ``-b q x_k^2 + ...``, and the
    last three sizes give ``(e_2 - q^2 e_1) / (1 - q^2)``, free of ``b`` too (Richardson's
    table).  The SEs follow from the independent per-size MCSEs.  Columns: ``ext_pair1``,
    ``ext_pair2`` (the one-term values of the two consecutive pairs), ``ext2``, ``se2``,
    ``z2``, ``ratio1``, ``ratio2`` (``d(4n) / d(n)``, ``q`` under the one-term model).
    """
    n1, n2, n3 = sizes[-3:]
    q = 4.0 ** -RATE
    if not (n2 == 4 * n1 and n3 == 4 * n2):
        raise ValueError(f"two_term needs sizes in ratio 4, got {sizes}")
    d1, d2, d3 = (d[f"d{n}"].to_numpy(dtype=float) for n in (n1, n2, n3))
    s1, s2, s3 = (d[f"s{n}"].to_numpy(dtype=float) for n in (n1, n2, n3))
    # e2 - q^2 e1 over 1 - q^2, written out in d1, d2, d3
    w = np.array([q ** 3, -(q + q ** 2), 1.0]) / ((1 - q) * (1 - q ** 2))
    ext2 = w[0] * d1 + w[1] * d2 + w[2] * d3
    se2 = np.sqrt((w[0] * s1) ** 2 + (w[1] * s2) ** 2 + (w[2] * s3) ** 2)
    lim_se = d["limit_se"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return d.assign(ext_pair1=(d2 - q * d1) / (1 - q), ext_pair2=(d3 - q * d2) / (1 - q),
                        ext2=ext2, se2=se2,
                        z2=(ext2 - d["limit"].to_numpy(dtype=float)) / np.sqrt(se2 ** 2
                                                                               + lim_se ** 2),
                        ratio1=d2 / d1, ratio2=d3 / d2)


def _rule3_cause(lr: pd.DataFrame, sizes: list[int], crit: float) -> str:
    """The numbers behind a rule-3 failure: whether the one-term extrapolation's residual
    shrinks with n (a next-order term) and what the two-term extrapolation gives."""
    if len(sizes) < 3:
        return ""
    t = two_term(lr, sizes)
    bad = t[t.z.abs() > crit]
    q = 4.0 ** -RATE
    rows = "; ".join(
        f"{r.family} {r.param}: d(4n)/d(n) = {r.ratio1:.3f}, {r.ratio2:.3f} (one-term model: "
        f"{q:.3f}), one-term extrapolations from n = {sizes[-3]}/{sizes[-2]} and "
        f"{sizes[-2]}/{sizes[-1]}: {r.ext_pair1:.4f}, {r.ext_pair2:.4f}; two-term "
        f"{fmt_estimate(r.ext2, r.se2)} (z = {r.z2:.2f})" for r in bad.itertuples())
    worst = t.loc[t.z2.abs().idxmax()]
    return (
        "**Why rule 3 fails.** The extrapolation removes the n^(-1/4) term only; where the "
        "paired difference still carries a next-order term (n^(-1/2), e.g. from the second "
        "derivative of the loss), the ratio d(4n)/d(n) differs from 4^(-1/4) and the "
        "one-term value keeps a residual that shrinks as n grows: "
        f"{rows}. Over all lr cells the two-term extrapolation (three sizes, both terms "
        f"removed; its SE is {float(np.median(t.se2 / t.se_ext)):.1f}x the one-term SE, "
        f"median over cells) has largest |z| {abs(worst.z2):.2f} "
        f"({worst.family} {worst.param}) against the rule's {crit:.2f}. A residual that "
        "falls towards 0 as the pair of sizes grows is the finite-sample signature; the "
        "rule, fixed before the run, stays judged on the one-term value.\n\n")


def render(s: gfgsm.report.Summaries, figures: Path) -> gfgsm.report.Section:
    """The section from the summaries of :func:`summarise` alone."""
    j = judge(s)
    r1, r2, r3, r4 = j["rules"]
    sizes = [int(n) for n in s.meta["sizes"]]
    n_max = j["n_max"]
    agrees = all(j["rules"])

    def worst(t: pd.DataFrame) -> str:
        w = t.loc[t.z.abs().idxmax()]
        return (f"largest |z| {abs(w.z):.2f} ({w.family} {w.param}: {fmt_estimate(w.ext, w.se_ext)}"
                f" against {w.limit:.3f})")

    parts = [
        f"rule 1 (SCAD weak oracle) {'holds' if r1 else 'fails'}: the extrapolated G-FGSM - PL "
        f"differences match c_V I_SS^-1 V_S, {worst(j['scad'])}; the V term is visible in "
        f"{j['visible']} binomial coefficients",
        f"rule 2 (SCAD selection) {'holds' if r2 else 'fails'}: P(beta2_hat = 0) at n = {n_max} "
        + ", ".join(f"{r.family} {r.method} {r.p0:.3f}" for _, r in j["scad_zero"].iterrows()),
        f"rule 3 (lr unbiased) {'holds' if r3 else 'fails'}: {worst(j['lr'])}",
        f"rule 4 (lr atom) {'holds' if r4 else 'fails'}: P(beta2_hat = 0) at n = {n_max} "
        + ", ".join(f"{r.family} {r.method} {fmt_estimate(r.p0, r.se)} against "
                    f"{r.limit:.3f}" for _, r in j["lr_zero"].iterrows()),
    ]
    verdict = ("Agrees: " if agrees else "Disagrees in part: ") + "; ".join(parts) + "."
    d = s["diffs"]
    cols = ["family", "penalty", "param"]
    tab = d[d.param != "beta2"].assign(**{
        **{f"n={n}": [fmt_estimate(m, e) for m, e in zip(d.loc[d.param != "beta2", f"d{n}"],
                                                        d.loc[d.param != "beta2", f"s{n}"],
                                                        strict=True)] for n in sizes},
        "extrapolated": [fmt_estimate(m, e) for m, e in
                         zip(d.loc[d.param != "beta2", "ext"], d.loc[d.param != "beta2", "se_ext"],
                             strict=True)],
        "limit": [f"{v:.3f}" for v in d.loc[d.param != "beta2", "limit"]],
        "z": [f"{v:.2f}" for v in d.loc[d.param != "beta2", "z"]],
    })[[*cols, *[f"n={n}" for n in sizes], "extrapolated", "limit", "z"]]
    z0 = s["zeros"]
    ztab = z0.assign(**{"P(beta2_hat = 0)": [fmt_estimate(p, e) for p, e in
                                            zip(z0.p0, z0.se, strict=True)],
                        "limit": [fmt_estimate(p, e) if e > 0 else f"{p:.3f}"
                                  for p, e in zip(z0.limit, z0.limit_se, strict=True)]})[
        ["family", "method", "n", "P(beta2_hat = 0)", "limit", "R"]]
    m = s["means"]
    mtab = m[m.n == n_max].assign(**{
        "mean U": [fmt_estimate(v, e) for v, e in zip(m.loc[m.n == n_max, "mean"],
                                                       m.loc[m.n == n_max, "se"], strict=True)],
        "limit": [f"{v:.3f}" for v in m.loc[m.n == n_max, "limit"]]})[
        ["family", "method", "param", "mean U", "limit", "R"]]
    g = (sizes[-1] / sizes[-2]) ** float(s.meta["rate"])
    notes = (
        f"**Decision rules** (fixed before the run): (1) every extrapolated SCAD difference on "
        f"the support within |z| <= {j['crit']:.2f} of c_V (I_SS^-1 V_S)_j, c_V = s0 (a + 1)/2 "
        f"lam0^2 = {2 * (float(s.meta['scad_a']) + 1) / 2 * float(s.meta['scad_lam0']) ** 2:.3f}"
        f", and for binomial at least one limit beyond that band; (2) both SCAD estimators "
        f"zero beta2 in at least 99% of replications at n = {n_max}; (3) every extrapolated lr "
        f"difference within |z| <= {j['crit']:.2f} of 0; (4) lr's P(beta2_hat = 0) at "
        f"n = {n_max} within |z| <= {j['crit0']:.2f} of the limit law's atom (Bonferroni at "
        f"{float(s.meta['fwer']):g} over each rule's cells).\n\n"
        f"**Extrapolation.** The leading finite-sample term of both penalties is of order "
        f"n^(-1/4) (s.7), so the paired difference at n = {sizes[-2]} and {sizes[-1]} is "
        f"extrapolated as ({g:.3f} d(n2) - d(n1)) / ({g:.3f} - 1). The true zero beta2 is not "
        "in rules 1 and 3: both SCAD fits put it at 0, and the lr fits of a pair share their "
        "zero pattern at matched levels.\n\n"
        + ("" if r3 else _rule3_cause(j["lr"], sizes, j["crit"]))
        + f"Mean of U_n = sqrt(n)(theta_hat - theta0) at n = {n_max} against the limit law's "
        "bias:\n\n" + gfgsm.report.markdown_table(mtab)
        + "\n\nThe true zero beta2 set exactly to 0:\n\n" + gfgsm.report.markdown_table(ztab)
    )
    fig = _figure(s, figures)
    return gfgsm.report.Section(
        key="oracle",
        title="SCAD's weak oracle property and the bridge penalty's rate",
        claim=("SCAD with lam_n -> 0, sqrt(n) lam_n -> inf: PL is oracle; G-FGSM selects like it "
               "but its limit on the support is shifted by c_V I_SS^-1 V_S with c_V = lim s0 "
               "(a + 1)/2 sqrt(n) lam_n^2, so it is oracle only if V = 0 or sqrt(n) lam_n^2 -> 0 "
               "(weak oracle). lr (0 < r < 1) at lam0 n^(r/2 - 1): no asymptotic bias, and a "
               "true zero is exactly 0 with a probability strictly between 0 and 1 "
               "(docs/theory.md s.7)."),
        verdict=verdict,
        agrees=agrees,
        figures=[(str(fig), "Mean paired difference U_n(G-FGSM) - U_n(PL) on the same data "
                            "(+-2 MCSE) against n, per support coefficient; dashed: the "
                            "limit (c_V I_SS^-1 V_S for SCAD, 0 for lr).")],
        tables=[("Paired differences G-FGSM - PL of U_n (estimate (MCSE)) at each n, "
                 "extrapolated with rate n^(-1/4), against the limit.",
                 gfgsm.report.markdown_table(tab))],
        provenance=s.meta["provenance"]
        + f" Limit-law draws (lr): {int(s.meta['n_law'])} per case, seeded by "
          f"SeedSequence([{int(s.meta['law_seed'])}, crc32(family|method)]).",
        notes=notes,
    )


def section(preset: str, results: Path, figures: Path, *, study: Study = STUDY,
            executor: str = "processes") -> gfgsm.report.Section:
    """Run (or resume) the study and build the report section (docs/theory.md s.8, claim 4)."""
    return gfgsm.report.split_section(summarise, render, study, preset, results, figures,
                                      executor)


section.order = 45  # type: ignore[attr-defined]
section.render = render  # type: ignore[attr-defined]
