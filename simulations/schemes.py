"""``schemes``: G-FGSM with each gradient scheme against PL with the scheme's induced penalty
(docs/theory.md s.4, s.6; s.8 claim 6 for GLMs).

Aims
    A gradient scheme (sign, lq, power, quantized) realises on a GLM an input perturbation whose
    size is ``lam P(beta)``, ``P`` the scheme's induced penalty (s.6).  To first order (s.4)
    G-FGSM with the scheme is PL with the penalty ``lam D P`` plus the sign-neutrality term, so
    at ``lam_n = lam0 / sqrt(n)`` the paired difference of the two estimators on the same data,
    ``sqrt(n)(theta_hat_GFGSM - theta_hat_PL)`` with PL at the matched level ``lam D phi``,
    tends to ``lam0 P(beta0) I^-1 V`` (s.5, consequence 3, with ``||beta0||_1`` replaced by
    ``P(beta0)``): for every scheme, and 0 when ``V = 0``.  This checks the induced-penalty
    column of s.6 at the size where the limits hold, not only as an identity.
Data-generating mechanisms
    The "dense" design of :mod:`simulations.limit_law` (``x ~ GaussianDesign(2, rho=0.3)``,
    ``beta0 = (1, -0.5)``, every slope nonzero, so every induced penalty is smooth at
    ``beta0``); ``family`` binomial (intercept 1, ``V != 0``) and gaussian (intercept 1,
    N(0, 1) errors, ``V = 0``).  ``n`` in {1000, 4000} (quick), {1000, 4000, 16000} (full).
Estimands
    The mean paired difference ``sqrt(n)(theta_hat_GFGSM - theta_hat_PL)`` per coefficient.
Methods
    For each scheme (sign; lq with q = 2, penalty ``||beta||_2``; power with r = 2, penalty
    ``||beta||_2^2 / ||beta||_inf``; quantized with b = 4, penalty ``(1/4) sum_j max(1,
    round(4 |beta_j| / ||beta||_inf)) |beta_j|``): G-FGSM with the scheme, exact adversary, at
    ``lam = 1/sqrt(n)``, and PL with the induced penalty at ``D phi / sqrt(n)``.
    ``P(beta0)``: 1.5, 1.118, 1.25 and 1.25.
Performance measures
    Per scheme x coefficient: the mean paired difference with MCSE at each ``n``, its
    Richardson extrapolation ``2 d(4n) - d(n)`` (the finite-sample term is ``O(1/sqrt(n))``, as
    in :mod:`simulations.limit_law`), and ``z`` against ``lam0 P(beta0) I^-1 V``.

Decision rule (fixed before the run): every extrapolated difference lies within the
two-sided Bonferroni band (family-wise 0.05) of its prediction, and for binomial the prediction
of each scheme is beyond that band on some coefficient (the sign-neutrality term is seen, scheme
by scheme).

Cost: the quick preset (200 replications) about 30 s on 2 cores; the full preset (1000
replications, n to 16000) about 10 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import gfgsm.mc
import gfgsm.report
from gfgsm.dgp import DGP
from gfgsm.mc.spec import LamRule, MethodSpec, Preset, Study
from gfgsm.schemes import get_scheme
from gfgsm.theory import quantities

from ._format import fmt_estimate
from .limit_law import _richardson
from .limit_law import make_dgp as _limit_law_dgp
from .oracle import _U, paired_rows

FWER = 0.05
FAMILIES = ["binomial", "gaussian"]
#: (label, scheme, parameters)
SCHEMES = (("sign", "sign", ()), ("lq (q = 2)", "lq", (("q", 2.0),)),
           ("power (r = 2)", "power", (("r", 2.0),)), ("quantized (b = 4)", "quantized",
                                                        (("b", 4),)))


def make_dgp(c: Mapping[str, Any]) -> DGP:
    return _limit_law_dgp({"family": c["family"], "design": "dense"})


METHODS = tuple(
    m for label, sch, par in SCHEMES for m in (
        MethodSpec(f"G-FGSM {label}", "gfgsm", adversary="exact", scheme=sch, params=par,
                   lam=LamRule(scale=1.0)),
        MethodSpec(f"PL {label}", "pl", scheme=sch, params=par,
                   lam=LamRule(scale=1.0, multiplier="D*phi")),
    )
)

STUDY = Study(
    name="schemes",
    aims=("G-FGSM with each gradient scheme (sign, lq, power, quantized) against PL with the "
          "scheme's induced penalty at the matched level: the paired difference tends to "
          "lam0 P(beta0) I^-1 V (docs/theory.md s.4-s.6)."),
    factors={"family": FAMILIES, "n": [1000, 4000]},
    make_dgp=make_dgp,
    methods=METHODS,
    presets={
        "quick": Preset(reps=200, description="about 30 s on 2 cores"),
        "full": Preset(reps=1000, factors={"n": [1000, 4000, 16000]},
                       description="n to 16000; about 10 minutes on 2 cores"),
    },
    estimands="the paired difference sqrt(n)(theta_hat_GFGSM - theta_hat_PL) per coefficient",
    measures=("paired difference",),
)


@cache
def _quantities(fam: str) -> Any:
    """``quantities`` of the family's DGP, once per family (every scheme shares them)."""
    return quantities(make_dgp({"family": fam}), seed=0)


def prediction(fam: str, scheme: str, params: tuple[tuple[str, Any], ...],
               lam0: float = 1.0) -> tuple[np.ndarray, float]:
    """``lam0 P(beta0) I^-1 V`` and ``P(beta0)`` for the family's DGP (s.5, consequence 3)."""
    dgp = make_dgp({"family": fam})
    q = _quantities(fam)
    pen = get_scheme(scheme, **dict(params)).induced_penalty
    P = float(np.asarray(pen.value(np.asarray(dgp.coef, dtype=float)[None, :], 1.0))[0])
    return lam0 * P * np.linalg.solve(np.asarray(q.I), np.asarray(q.V)), P


def summarise(store: Path, study: Study = STUDY) -> gfgsm.report.Summaries:
    df = gfgsm.mc.load(store)
    U = _U(df)
    sizes = sorted({k[2] for k in U})
    if len(sizes) < 2:
        raise ValueError(f"schemes needs two sample sizes, got {sizes}")
    weights = _richardson(sizes[-2], sizes[-1])
    rows = []
    for fam in sorted({k[0] for k in U}):
        for label, sch, par in SCHEMES:
            lim, P = prediction(fam, sch, par)
            rows += paired_rows(U, fam, f"G-FGSM {label}", f"PL {label}", sizes, weights, lim,
                                None, {"family": fam, "scheme": label, "P(beta0)": P})
    meta = {"sizes": [int(n) for n in sizes], "fwer": FWER,
            "provenance": gfgsm.report.provenance(store),
            "preset": gfgsm.report.store_manifest(store)["preset"]}
    return gfgsm.report.Summaries(tables={"diffs": pd.DataFrame(rows)}, meta=meta)


def _figure(s: gfgsm.report.Summaries, figures: Path) -> Path:
    gfgsm.report.style()
    import matplotlib.pyplot as plt

    d = s["diffs"]
    n2 = int(s.meta["sizes"][-1])
    fams = sorted(d.family.unique())
    fig, axes = plt.subplots(1, len(fams), figsize=(5 * len(fams), 4), squeeze=False)
    for ax, fam in zip(axes[0], fams, strict=True):
        t = d[d.family == fam]
        ax.errorbar(t.limit, t.ext, yerr=2 * t.se_ext, fmt="none", ecolor="0.6", capsize=2)
        for c, (label, g) in enumerate(t.groupby("scheme", sort=False)):
            ax.scatter(g.limit, g.ext, color=f"C{c}", marker=gfgsm.report.MARKERS[c],
                       label=label, zorder=3)
            ax.scatter(g.limit, g[f"d{n2}"], color=f"C{c}", marker="x", zorder=3)
        lo = min(t.limit.min(), t.ext.min()) - 0.05
        hi = max(t.limit.max(), t.ext.max()) + 0.05
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_title(fam)
        ax.set_xlabel("predicted lam0 P(beta0) I^-1 V")
        ax.set_ylabel(f"paired difference (dots: extrapolated; x: n = {n2})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return gfgsm.report.save_figure(fig, figures, "schemes_paired")


def render(s: gfgsm.report.Summaries, figures: Path) -> gfgsm.report.Section:
    d = s["diffs"]
    sizes = [int(n) for n in s.meta["sizes"]]
    crit = float(stats.norm.ppf(1 - float(s.meta["fwer"]) / (2 * max(len(d), 1))))
    inside = bool((d.z.abs() <= crit).all())
    b = d[d.family == "binomial"]
    seen = b.assign(seen=(b.limit.abs() / b.se_ext) > crit).groupby("scheme").seen.any()
    agrees = inside and bool(seen.all())
    w = d.loc[d.z.abs().idxmax()]
    verdict = (("Agrees" if agrees else "Disagrees") + ": every extrapolated paired difference "
               f"G-FGSM - PL {'lies' if inside else 'does not lie'} within |z| <= {crit:.2f} of "
               f"lam0 P(beta0) I^-1 V (largest |z| {abs(w.z):.2f}: {w.family} {w.scheme} "
               f"{w.param}, {fmt_estimate(w.ext, w.se_ext)} against {w.limit:.3f}); on binomial "
               f"the predicted term is beyond that band for {int(seen.sum())} of {len(seen)} "
               "schemes.")
    tab = d.assign(**{
        **{f"n={n}": [fmt_estimate(m, e) for m, e in zip(d[f"d{n}"], d[f"s{n}"], strict=True)]
           for n in sizes},
        "extrapolated": [fmt_estimate(m, e) for m, e in zip(d.ext, d.se_ext, strict=True)],
        "predicted": [f"{v:.3f}" for v in d.limit], "z": [f"{v:.2f}" for v in d.z],
        "P(beta0)": [f"{v:.3f}" for v in d["P(beta0)"]],
    })[["family", "scheme", "P(beta0)", "param", *[f"n={n}" for n in sizes], "extrapolated",
        "predicted", "z"]]
    notes = (f"**Decision rule** (fixed before the run): every extrapolated difference within "
             f"|z| <= {crit:.2f} (two-sided Bonferroni, family-wise {float(s.meta['fwer']):g}, "
             f"over the {len(d)} cells), and on binomial, for each scheme, some prediction "
             "beyond that band. The extrapolation is 2 d(4n) - d(n) for n and 4n, exact for a "
             "c/sqrt(n) finite-sample term; the x marks in the figure are the unextrapolated "
             "differences at the largest n.")
    return gfgsm.report.Section(
        key="schemes",
        title="Gradient schemes against their induced penalties",
        claim=("G-FGSM with the sign, lq, power or quantized scheme is, to first order, PL with "
               "the scheme's induced penalty P at the level lam D, plus the sign-neutrality term: "
               "sqrt(n)(theta_hat_GFGSM - theta_hat_PL) -> lam0 P(beta0) I^-1 V at lam0/sqrt(n) "
               "(docs/theory.md s.4-s.6), 0 for sign-neutral data."),
        verdict=verdict,
        agrees=agrees,
        figures=[(str(_figure(s, figures)),
                  "Extrapolated mean paired difference G-FGSM - PL (dots, +-2 MCSE) and the "
                  f"difference at n = {sizes[-1]} (x) against the prediction lam0 P(beta0) "
                  "I^-1 V, per scheme and coefficient; dashed: the identity.")],
        tables=[("Mean paired difference sqrt(n)(theta_hat_GFGSM - theta_hat_PL) (estimate "
                 "(MCSE)) per n, extrapolated, against the prediction.",
                 gfgsm.report.markdown_table(tab))],
        provenance=s.meta["provenance"],
        notes=notes,
    )


def section(preset: str, results: Path, figures: Path, *, study: Study = STUDY,
            executor: str = "processes") -> gfgsm.report.Section:
    """Run (or resume) the study and build the report section."""
    return gfgsm.report.split_section(summarise, render, study, preset, results, figures,
                                      executor)


section.order = 35  # type: ignore[attr-defined]
section.render = render  # type: ignore[attr-defined]
