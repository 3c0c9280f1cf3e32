"""``nn_teacher``: networks trained on data from a known teacher network (docs/theory.md s.5, s.6,
s.8 claims 1 and 6).

Aims
    (a) Prediction risk against ``n`` for G-FGSM training with each gradient scheme, weight
    decay and no regularization, for each GLM family, with GLM (no hidden layer) and MLP
    students; (b) for the 0-hidden-layer case, where student and teacher are GLMs, root-n
    consistency of the parameters with ``lam = lam0 / sqrt(n)`` (docs/theory.md s.5 consequence 1);
    (c) the sign-neutrality effect on networks (s.5 consequence 3, s.8 claim 6): with
    imbalanced classes the adversarial budget biases the predicted probabilities.
Data-generating mechanisms
    :class:`gfgsm.nn.teacher.TeacherNetwork`, ``x ~ N(0, I_5)``; factor ``teacher`` (
    :data:`TEACHERS`):

    * ``"gaussian GLM"``, ``"binomial GLM"``, ``"poisson GLM"``: no hidden layer, every
      coefficient clearly nonzero (so that the L-BFGS fits of the sign scheme do not 2-cycle on
      ``sign(0) = 0``); poisson coefficients halved and intercept 1 (mean count about 3.6);
    * ``"gaussian MLP"``, ``"binomial MLP"``, ``"poisson MLP"``: one hidden layer of 4 tanh units
      with weights drawn from the teacher's seed; the binomial MLP has zero hidden and output
      intercepts, so it is *odd*: ``eta(-x) = -eta(x)``, prevalence exactly 1/2;
    * ``"binomial MLP imbalanced"``: the same network with the output intercept shifted to
      -2.49 (prevalence 0.150).

    Factor ``n`` in {250, 1000, 4000} (quick; the full preset adds 16000), ``lam0 = 1``.
Estimands
    The teacher's conditional mean function ``mu(x)``; for GLM teachers also
    ``theta0 = (intercept, coef)``; the mean probability ``E mu(x)`` (calibration).
Methods (:class:`gfgsm.nn.study.NetworkMethod`)
    ``none`` (clean loss); G-FGSM adversarial training with schemes ``sign``, ``lq`` (q = 2),
    ``power`` (r = 2) and ``quantized`` (b = 10) at budget ``lam = lam0 / sqrt(n)``, perturbation
    recomputed each step and held fixed within it (docs/theory.md s.6); weight decay ``l2``
    (``(wd / 2) sum W^2``) and ``l1`` (``wd sum |W|``) at ``wd = lam0 / sqrt(n)`` on the weights
    (never the biases).  ``clean_weight = 0``: the objective is docs/theory.md s.3's ``Q_n`` itself,
    so for GLM students the sign method is the estimator whose limit law s.5 derives (Goodfellow's
    ``clean_weight = 1/2`` is asymptotically G-FGSM at ``lam / 2``, s.3).  Levels compared: to
    first order G-FGSM at ``lam`` penalizes ``lam D ||beta||_1`` (s.4; ``D = E|y - mu| <= 1/2``
    for binomial, ``sqrt(2/pi)`` for unit gaussian noise), so l1 decay at the same number is a
    1/D times stronger (2x or more for binomial) l1 penalty; l2 decay has gradient ``wd W``
    against ``lam D sign(W)``: comparable for weights of order 1.  All are ``O(n^-1/2)``, so
    every method is root-n consistent for GLM students.

    Students: same depth as the teacher.  GLM students (``hidden=()``): full-batch L-BFGS, up to
    100 iterations, stopping when the largest gradient entry is below ``1e-6`` (mean-loss
    scale).  Every GLM coefficient of the teachers is clearly nonzero; ``none`` and l2 decay
    converged in every fit of the check (5-15 iterations), but where the perturbation's sign
    pattern jumps (``sign(y - mu)`` flips for gaussian/poisson residuals near 0, the
    quantized scheme's rounding, l1 decay's kink) some fits 2-cycle near the solution: the
    trainer detects the cycle and stops them with status ``"cycling"`` (others stop at the
    iteration limit; a first run with 500 iterations, same seeds, gave the same mean excess
    risks to 3 significant digits, at up to 5x the cost).  Statuses are stored and tabulated.
    MLP students: ``hidden=(8,)`` tanh, Adam with learning rate 0.01, mini-batches of
    ``min(200, n)``, at most 300 epochs, scikit-learn's plateau rule with ``tol = 1e-4``
    (10 epochs).  Chosen by a convergence check (binomial MLP teacher, R = 20):
    at n = 4000 every network of ``none`` and ``sign`` stops on the plateau rule after about 80
    epochs; at n = 1000 16/20 do, the rest reach 300 epochs; at n = 250 (2 steps per epoch) most
    reach 300 epochs.  A smaller rate (1e-3) left every network at n = 1000 short of the
    plateau after 400 epochs with a higher training loss.

    **The MLP students are not stationary points** of their training objectives, and are not
    meant to be.  "Converged" means a full-batch gradient ``max |grad| <= tol``
    (:mod:`gfgsm.nn.training`); the stored ``grad_max`` of the quick preset's MLP students
    (4 teachers x 3 n x 7 methods x 20 networks) lies between 9e-4 and 0.16 (medians 2e-3 to
    9e-2 per cell), and none of the 1680 is converged: 1338 stop on the plateau (status
    ``"plateau"``, which the trainer used to call "converged") and 342 at 300 epochs.  Only
    the labels changed with that: estimates and risk slopes are bit-identical.  Fits that *are*
    stationary change the estimator, not just its accuracy (same seeds, binomial MLP teacher,
    mean excess risk Adam vs full-batch L-BFGS to ``tol = 1e-4``, 300 iterations): ``none``
    0.043 vs 0.48 at n = 1000 and 0.127 vs 34 at n = 250 (weights up to 5e4: the unregularized
    MLP's empirical risk has no minimiser), G-FGSM sign 0.028 vs 0.040 (n = 1000) and 0.0084
    vs 0.0138 (n = 4000), and most L-BFGS fits still end at the iteration limit, because the
    sign of an MLP's input gradient flips as the weights move (a kink per row and input).
    Only the smooth, coercive l2 weight decay objective is reached (20/20 converged) and there
    the two protocols agree (0.0654 vs 0.0675 at n = 250, 0.0512 vs 0.0514 at n = 1000).  Adam
    for 1500 epochs with a plateau ``tol`` of 1e-6 (n = 1000) still ends on the mini-batch
    noise floor (``grad_max`` about 3e-3) and overfits more (``none`` 0.051, sign 0.030).  So
    the unregularized and adversarially trained MLP fits are defined by their training
    protocol, which acts as implicit regularization (early stopping), and the study keeps
    Adam: **every fit enters the measures**, its status and ``grad_max`` reported beside them
    (the estimator is "the output of the stated protocol").

    The hook draws replication ``k``'s data from ``default_rng(seeds[k])`` via the teacher and
    trains every method with one batched call per method on ``X`` of shape ``(R, n, 5)``;
    network ``k`` is initialised from its own seed (children of ``seeds[k]``, independent of the
    data stream), so all methods start from the same weights on the same data (common random
    numbers) and results do not depend on chunking.
Performance measures
    On one fixed *antithetic* test sample of inputs (10000 draws ``z`` from
    ``default_rng(TEST_SEED)`` and their negatives ``-z``: 20000 rows; independent of the
    replication seeds, the same for every condition), per replication and method:

    * ``excess_risk``: mean over test rows of ``E[l(y, eta_hat) - l(y, eta) | x]`` (exact in
      ``y``, :meth:`TeacherNetwork.excess_risk`), estimand 0;
    * ``calibration``: ``mean_test mu_hat`` against ``mean_test mu`` (its bias is the bias of the
      mean predicted probability for binomial; stored for every family);
    * GLM students: ``intercept``, ``beta1..beta5`` against ``theta0``.

    Stored tidy, one row per replication x method x ``param`` (``excess_risk``,
    ``calibration``, and the coefficients), with ``estimate``, ``true``, ``converged``,
    ``status``, ``n_iter``, ``grad_max`` (the stationarity residual), ``lam``,
    ``weight_decay``.  Summaries: mean excess risk with MCSE and
    its log-log slope on ``n`` (:func:`gfgsm.mc.measures.rate_fit`; about -1 is expected for
    well-specified parametric students with ``lam ~ n^-1/2``, reported not tested);
    parameter RMSE ``sqrt(E||theta_hat - theta0||^2)`` with MCSE (delta method) and its slope;
    calibration bias and, per replication paired with ``none`` on the same data, the difference
    ``mean mu_hat(method) - mean mu_hat(none)``, each with MCSE (sd / sqrt(R)).

    **The balanced control.**  The balanced binomial MLP teacher is odd and ``x ~ N(0, I)`` is
    symmetric, so ``(x, y) -> (-x, 1 - y)`` leaves the law of the data unchanged.  Map network
    weights by ``(W_l, b_l) -> (W_l, -b_l)`` on every layer: with tanh units this maps ``f`` to
    ``-f(-x)``, and the binomial loss satisfies ``l(1 - y, -eta) = l(y, eta)``.  Input gradients
    flip sign, every scheme direction is odd in the gradient, weight decay is even in ``W`` and
    never touches biases, Adam's update is odd in the gradient entries, and the mini-batch order
    comes from the seed alone; the uniform initialisation of :meth:`MLP.init` is symmetric.  So
    the law of the trained ``f`` equals that of ``-f(-x)``, and on the antithetic test sample
    ``E[mean_test mu_hat] = 1/2 = mean_test mu`` *exactly*, for every method and every ``n``.
    Under imbalance the adversarial budget moves the adversarial ``eta`` of the majority class
    (``y = 0``) up and of the minority down; the output bias compensates so that the
    *adversarial* predictions are calibrated (its score equation), which leaves the clean
    predictions too low by about ``E[(2 mu - 1) mu (1 - mu) lam ||grad_x eta||_1] < 0`` (s.5:
    ``V`` weighted by the perturbation size): a negative bias of order ``n^-1/2``.  The
    unregularized and weight-decay fits have an unpenalized output bias whose score equation
    calibrates them on the training data (no first-order bias from the perturbation); weight
    decay shrinks the weights, and whether that moves the mean probability is reported, not
    predicted.

Decision rule (stated before running; in the report section as well)
    Agrees when (b) for every GLM teacher and every method the 95% CI of the slope of
    log parameter-RMSE on log n contains -1/2 (``rate_fit``'s lack-of-fit-scaled CI
    ``slope_ci_scaled_*``, which is the plain CI unless the points scatter more than their MCSEs
    allow), and (c) in the balanced control every method's calibration bias has
    ``|z| < z_crit`` at every ``n``, ``z = bias / MCSE``, ``z_crit`` the two-sided Bonferroni
    bound at family-wise level 5% over the control's methods x n tests (3.04 for 7 x 3), and
    under imbalance the sign scheme's paired difference from ``none`` is negative with
    ``z < -3`` at every ``n`` (paired: the unregularized fit on the same data and initial
    weights removes the sampling noise of the class prevalence; the raw biases are reported
    too).  Prediction-risk slopes are reported, not tested.

Known finite-sample behaviour
    For the binomial GLM teacher, l1 and l2 weight decay at ``lam0 = 1`` shrink hard at these
    ``n`` (the l1 PL limit-law bias ``lam0 I^-1 sgn0`` has norm 22 / sqrt(n): 1.4 at n = 250,
    against ``||beta0|| = 1.5``), and shrinkage raises ``mu (1 - mu)`` and so the curvature,
    so the RMSE falls more slowly than ``n^-1/2`` on {250, 1000, 4000} while ``sqrt(n) RMSE``
    climbs towards the limit law's 22.9 (a side run with 20 replications gave 20.4, 21.5 and
    23.4 at n = 4000, 16000 and 64000 for l1 decay).  The section tabulates ``sqrt(n) RMSE``
    against :func:`gfgsm.theory.limit_law` where one applies (sign scheme, l1 decay).

Cost
    Measured on the shared 2-core machine (another heavy job ran beside it, load average about
    3.5, so the timings may be inflated 1.5-2x): the quick preset (20 replications, 21
    conditions x 7 methods, chunks of 10 on 2 worker processes) took 127 s and 157 s of wall
    time for the study in two runs (bit-identical stores) and 5-9 s for the section (tables,
    limit laws, three figures): 135-162 s in all, so about 70-110 s on an idle machine; the MLP
    students dominate (Adam at n = 4000: about 2-3 s per method for 20 networks), the GLM
    students' L-BFGS fits take 0.3-1 s per method.  With 200 replications and n up to 16000
    a full preset would need roughly 10 x 2.3 = 23 times the quick cost in CPU (about 1.5 hours
    on 2 cores; extrapolated).  To fit the budget of the full report the full preset keeps
    n = 16000 (where the rates show) and takes 40 replications, 2 x 2.3 = 4.6 times the quick
    cost, about 10-15 minutes; the cut is in the MCSEs the section prints.  The quick preset
    now takes 12 replications (the quick report must finish in 10 minutes on 2 cores with its
    install; 151 s of it was this section with 20).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import gfgsm.mc
import gfgsm.report
from gfgsm._backend import to_numpy
from gfgsm.mc.measures import convergence, format_estimate, performance, rate_fit
from gfgsm.mc.runner import param_rows
from gfgsm.mc.spec import LamRule, Preset, Study
from gfgsm.nn.study import NetworkMethod
from gfgsm.nn.teacher import TeacherNetwork

from ._format import fmt_ci, plain_log_axis

D = 5
#: Seed of the fixed antithetic test sample of inputs (independent of the study seed).
TEST_SEED = 20240601
TEST_HALF = 10000
#: Output intercept of the imbalanced binomial MLP teacher (prevalence 0.150, computed once by
#: root finding on 200000 draws and fixed here so the teacher's repr is exact).
IMBALANCED_INTERCEPT = -2.49
GLM_COEF = (1.0, -0.5, 0.5, -0.75, 0.25)

TEACHERS: dict[str, TeacherNetwork] = {
    "gaussian GLM": TeacherNetwork("gaussian", D, (), seed=0, intercept=0.3, sigma=1.0,
                                   weights=[GLM_COEF]),
    "binomial GLM": TeacherNetwork("binomial", D, (), seed=0, intercept=0.3,
                                   weights=[GLM_COEF]),
    "poisson GLM": TeacherNetwork("poisson", D, (), seed=0, intercept=1.0,
                                  weights=[tuple(0.5 * c for c in GLM_COEF)]),
    "gaussian MLP": TeacherNetwork("gaussian", D, (4,), seed=2, scale=2.0, hidden_bias=0.5,
                                   sigma=1.0),
    "binomial MLP": TeacherNetwork("binomial", D, (4,), seed=2, scale=2.0, hidden_bias=0.0),
    "binomial MLP imbalanced": TeacherNetwork("binomial", D, (4,), seed=2, scale=2.0,
                                              hidden_bias=0.0, intercept=IMBALANCED_INTERCEPT),
    "poisson MLP": TeacherNetwork("poisson", D, (4,), seed=2, scale=1.0, hidden_bias=0.5,
                                  intercept=0.5),
}
CONTROL = "binomial MLP"
IMBALANCED = "binomial MLP imbalanced"

#: Student training options by teacher depth (module docstring).
GLM_STUDENT: dict[str, Any] = {"hidden": (), "solver": "lbfgs", "max_iter": 100, "tol": 1e-6}
MLP_STUDENT: dict[str, Any] = {"hidden": (8,), "activation": "tanh", "solver": "adam",
                               "learning_rate": 0.01, "max_iter": 300, "tol": 1e-4,
                               "n_iter_no_change": 10, "monitor_robustness": False}

SCHEMES = {"sign": (), "lq": (("q", 2),), "power": (("r", 2),), "quantized": (("b", 10),)}
CLEAN_WEIGHT = 0.0
METHODS: tuple[NetworkMethod, ...] = (
    NetworkMethod("none", perturbation="none", clean_weight=CLEAN_WEIGHT),
    *(NetworkMethod(f"G-FGSM {s}", perturbation="adversarial", scheme=s, scheme_params=p,
                    lam=LamRule(), clean_weight=CLEAN_WEIGHT) for s, p in SCHEMES.items()),
    NetworkMethod("weight decay l2", perturbation="none", weight_decay=LamRule(), decay="l2",
                  clean_weight=CLEAN_WEIGHT),
    NetworkMethod("weight decay l1", perturbation="none", weight_decay=LamRule(), decay="l1",
                  clean_weight=CLEAN_WEIGHT),
)
SIGN = "G-FGSM sign"


def make_dgp(c: Mapping[str, Any]) -> TeacherNetwork:
    name = c["teacher"]
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; expected one of {sorted(TEACHERS)}")
    return TEACHERS[name]


@functools.lru_cache(maxsize=4)
def test_inputs(d: int = D) -> np.ndarray:
    """The fixed antithetic test sample: ``z`` (``TEST_HALF`` rows) and ``-z``."""
    z = np.random.default_rng(TEST_SEED).standard_normal((TEST_HALF, d))
    out = np.concatenate([z, -z])
    out.setflags(write=False)
    return out


def student_options(teacher: TeacherNetwork) -> dict[str, Any]:
    """Study-wide :func:`gfgsm.nn.train_networks` keywords for a teacher's student."""
    return {**(GLM_STUDENT if not teacher.hidden else MLP_STUDENT), "family": teacher.family}


def compute(study: Study, cond: Mapping[str, Any], teacher: TeacherNetwork, reps: np.ndarray,
            seeds: list[np.random.SeedSequence], backend: str | None) -> pd.DataFrame:
    """The chunk's tidy rows (module docstring, "Performance measures")."""
    n = int(cond["n"])
    draws = [teacher.draw(n, np.random.default_rng(s)) for s in seeds]
    X = np.stack([d[0] for d in draws])
    y = np.stack([d[1] for d in draws])
    Xt = test_inputs(teacher.d)
    mu_true = float(np.mean(teacher.mean(Xt)))
    glm = not teacher.hidden
    params = ["excess_risk", "calibration"]
    if glm:
        params += ["intercept"] + [f"beta{j}" for j in range(1, teacher.d + 1)]
        theta0 = teacher.theta0
    true = np.r_[0.0, mu_true, theta0] if glm else np.array([0.0, mu_true])
    R = len(seeds)
    common = student_options(teacher)
    frames = []
    for m in study.methods:
        fit = m.train(X, y, cond, seeds, backend, **common)
        eta_hat = np.asarray(to_numpy(fit.net.eta(fit.params, Xt, np)))[..., 0]  # (R, m)
        risk = teacher.excess_risk(eta_hat, Xt)
        mean_mu = np.mean(np.asarray(fit.net.output.predict_mean(eta_hat[..., None], np)),
                          axis=-1)
        cols = [risk, mean_mu]
        if glm:
            cols += [np.asarray(to_numpy(fit.params.biases[0]))[:, 0]]
            cols += list(np.asarray(to_numpy(fit.params.weights[0]))[:, :, 0].T)
        est = np.stack(cols, axis=1)  # (R, q)
        opts = m.train_options(cond)
        frames.append(pd.DataFrame(param_rows(m.name, reps, params, est, true, {
            "converged": np.asarray(fit.converged, dtype=bool),
            "status": np.asarray(fit.status, dtype=object),
            "n_iter": np.asarray(fit.n_iter, dtype=np.int64),
            "grad_max": np.asarray(fit.grad_max, dtype=np.float64),
            "lam": np.full(R, float(opts["lam"])),
            "weight_decay": np.full(R, float(opts["weight_decay"])),
        })))
    df = pd.concat(frames, ignore_index=True)
    for c in ("method", "param", "status"):
        df[c] = df[c].astype(str)
    return df


STUDY = Study(
    name="nn_teacher",
    aims="Networks trained on data from a known teacher network through each GLM family: "
         "prediction risk against n for G-FGSM schemes, weight decay and no regularization; "
         "root-n consistency of GLM students with lam = lam0/sqrt(n); the bias of the "
         "predicted probabilities under class imbalance (docs/theory.md s.5, s.6, s.8).",
    factors={"teacher": list(TEACHERS), "n": [250, 1000, 4000], "lam0": [1.0]},
    make_dgp=make_dgp,
    methods=METHODS,
    presets={
        "quick": Preset(reps=12, description="about 1.5 minutes on 2 cores"),
        "full": Preset(reps=40, factors={"n": [250, 1000, 4000, 16000]},
                       description="n to 16000 with 40 replications: about 10-15 minutes "
                                   "on 2 cores (200 replications, about 1.5 hours, cut to fit "
                                   "the budget)"),
    },
    estimands="the teacher's mean function mu(x) (excess risk), its test-sample mean "
              "(calibration), and theta0 = (intercept, coef) of GLM teachers",
    measures=("excess risk", "calibration bias", "parameter rmse"),
    compute=compute,
    chunk_size=10,
)


# --------------------------------------------------------------------------------------------
# analysis
# --------------------------------------------------------------------------------------------
def risk_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean excess risk (``risk``, ``risk_mcse``) per teacher x n x method, every fit used."""
    d = df[df["param"] == "excess_risk"]
    perf = performance(d, by=["teacher", "n", "method", "param"], include_nonconverged=True)
    return perf.assign(risk=perf["mean_est"], risk_mcse=perf["bias_mcse"])[
        ["teacher", "n", "method", "n_rep", "nonconverged_share", "risk", "risk_mcse"]]


def rmse_table(df: pd.DataFrame) -> pd.DataFrame:
    """Parameter RMSE ``sqrt(E||theta_hat - theta0||^2)`` per GLM teacher x n x method, with
    MCSE by the delta method (``MCSE(MSE) / (2 RMSE)``), every fit used."""
    d = df[~df["param"].isin(["excess_risk", "calibration"])]
    d = d.assign(_sq=(d["estimate"] - d["true"]) ** 2)
    per = d.groupby(["teacher", "n", "method", "rep"], observed=True)["_sq"].sum().reset_index()
    g = per.groupby(["teacher", "n", "method"], observed=True)["_sq"]
    out = g.agg(mse="mean", sd="std", reps="size").reset_index()
    out["mse_mcse"] = out["sd"] / np.sqrt(out["reps"])
    out["rmse"] = np.sqrt(out["mse"])
    out["rmse_mcse"] = out["mse_mcse"] / (2.0 * out["rmse"])
    return out.drop(columns="sd")


#: Methods of a GLM student with a limit law in docs/theory.md s.5 (clean_weight = 0): the sign
#: scheme is G-FGSM with the l1 penalty; l1 weight decay (on the mean-loss scale, biases not
#: decayed) is l1 penalized likelihood on the phi = 1 scale.
LIMIT_METHODS = {SIGN: "gfgsm", "weight decay l1": "pl"}


def limit_rmse(teacher: str, lam0: float, method: str) -> float:
    """``sqrt(n) RMSE`` of the limit law (``sqrt(|bias|^2 + tr cov)``) of a GLM teacher's
    student, from :func:`gfgsm.theory.limit_law` (seed 0)."""
    from gfgsm.designs import GaussianDesign
    from gfgsm.dgp import DGP
    from gfgsm.families import get_family
    from gfgsm.theory import limit_law

    t = TEACHERS[teacher]
    dgp = DGP(t.family, GaussianDesign(t.d, rho=0.0), coef=list(t.weights[0]),
              intercept=t.intercept,
              **({"sigma": t.sigma} if get_family(t.family).has_dispersion else {}))
    law = limit_law(dgp, lam0=lam0, method=LIMIT_METHODS[method], seed=0)
    b, C = np.asarray(law.bias, dtype=float), np.asarray(law.cov, dtype=float)
    return float(np.sqrt(b @ b + np.trace(C)))


def calibration_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per teacher x n x method: calibration bias ``mean mu_hat - mean mu`` and the paired
    difference from ``none`` (same data and initial weights), each with MCSE and z."""
    d = df[df["param"] == "calibration"]
    wide = d.pivot_table(index=["teacher", "n", "rep"], columns="method", values="estimate",
                         aggfunc="first", observed=True)
    true = d.groupby(["teacher", "n"], observed=True)["true"].first()
    rows = []
    for (teacher, n), g in wide.groupby(level=["teacher", "n"], observed=True):
        mu = float(true.loc[(teacher, n)])
        for method in g.columns:
            e = g[method].to_numpy(dtype=float)
            diff = e - g["none"].to_numpy(dtype=float) if "none" in g.columns else e * np.nan
            R = e.size
            b, bse = e.mean() - mu, e.std(ddof=1) / math.sqrt(R)
            p, pse = diff.mean(), diff.std(ddof=1) / math.sqrt(R)
            rows.append({"teacher": teacher, "n": int(n), "method": method, "reps": R,
                         "mean_mu": mu, "bias": b, "bias_mcse": bse,
                         "z": b / bse if bse > 0 else np.nan,
                         "paired": p, "paired_mcse": pse,
                         "paired_z": p / pse if pse > 0 else np.nan})
    return pd.DataFrame(rows)


def _order(methods: Any) -> list[str]:
    known = [m.name for m in METHODS]
    return [m for m in known if m in set(methods)] + sorted(set(methods) - set(known))


def analyse(df: pd.DataFrame) -> dict[str, Any]:
    """Tables, slopes and the decision (module docstring, "Decision rule")."""
    risk = risk_table(df)
    risk_rates = rate_fit(risk, x="n", y="risk", by=["teacher", "method"])
    rm = rmse_table(df)
    rm_rates = rate_fit(rm, x="n", y="rmse", by=["teacher", "method"]) if len(rm) else None
    cal = calibration_table(df)
    # (b) root-n consistency of GLM students: the scaled CI (= plain CI when no excess scatter).
    ok_b = False
    if rm_rates is not None and len(rm_rates):
        lo = rm_rates["slope_ci_scaled_low"].fillna(rm_rates["ci_low"])
        hi = rm_rates["slope_ci_scaled_high"].fillna(rm_rates["ci_high"])
        rm_rates = rm_rates.assign(ci_rule_low=lo, ci_rule_high=hi,
                                   contains=(lo <= -0.5) & (-0.5 <= hi))
        ok_b = bool(rm_rates["contains"].all())
    # (c) control and imbalance.
    ctrl = cal[cal["teacher"] == CONTROL]
    K = max(len(ctrl), 1)
    z_crit = float(stats.norm.ppf(1.0 - 0.05 / (2.0 * K)))
    ok_ctrl = bool(len(ctrl) > 0 and (ctrl["z"].abs() < z_crit).all())
    imb = cal[(cal["teacher"] == IMBALANCED) & (cal["method"] == SIGN)]
    ok_imb = bool(len(imb) > 0 and (imb["paired_z"] < -3.0).all())
    return {"risk": risk, "risk_rates": risk_rates, "rmse": rm, "rmse_rates": rm_rates,
            "calibration": cal, "z_crit": z_crit, "ok_b": ok_b, "ok_control": ok_ctrl,
            "ok_imbalance": ok_imb, "agrees": ok_b and ok_ctrl and ok_imb}


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------
def _lines(ax: Any, data: pd.DataFrame, y: str, yse: str, methods: list[str], color: Any,
           scale: Any = 1.0) -> None:
    k_of = {m.name: k for k, m in enumerate(METHODS)}
    ms = sorted(data["n"].unique())
    for j, method in enumerate(methods):
        d = data[data["method"] == method].sort_values("n")
        if d.empty:
            continue
        k = k_of.get(method, j) % len(gfgsm.report.MARKERS)
        s = scale(d) if callable(scale) else scale
        jitter = 1.0 + 0.025 * (k - len(methods) / 2)  # keep error bars apart
        ax.errorbar(d["n"] * jitter, d[y] * s, yerr=1.96 * d[yse] * s,
                    marker=gfgsm.report.MARKERS[k], dashes=gfgsm.report.DASHES[k],
                    color=color, ms=4, lw=1, capsize=2, mfc="white" if k % 2 else color,
                    label=method)
    ax.set_xscale("log")
    plain_log_axis(ax.xaxis, ms)


def _figure_risk(risk: pd.DataFrame, figures: Path) -> Path:
    sns = gfgsm.report.style()
    import matplotlib.pyplot as plt

    color = sns.color_palette()[0]
    teachers = [t for t in TEACHERS if t in set(risk["teacher"])]
    methods = _order(risk["method"].unique())
    ncol = 4
    nrow = math.ceil(len(teachers) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 3.0 * nrow), squeeze=False)
    for i, t in enumerate(teachers):
        ax = axes[i // ncol, i % ncol]
        _lines(ax, risk[risk["teacher"] == t], "risk", "risk_mcse", methods, color)
        ax.set_yscale("log")
        ax.set_title(t)
        ax.set_xlabel("n (log scale)")
        ax.set_ylabel("mean excess risk (log)")
    for j in range(len(teachers), nrow * ncol):
        axes[j // ncol, j % ncol].axis("off")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower right", fontsize=7, ncol=1,
               bbox_to_anchor=(0.98, 0.05) if len(teachers) % ncol else None)
    fig.tight_layout()
    return gfgsm.report.save_figure(fig, figures, "nn_teacher_risk")


def _figure_rmse(rm: pd.DataFrame, figures: Path) -> Path:
    sns = gfgsm.report.style()
    import matplotlib.pyplot as plt

    color = sns.color_palette()[0]
    teachers = [t for t in TEACHERS if t in set(rm["teacher"])]
    methods = _order(rm["method"].unique())
    fig, axes = plt.subplots(1, len(teachers), figsize=(3.6 * len(teachers), 3.3),
                             squeeze=False)
    for i, t in enumerate(teachers):
        ax = axes[0, i]
        d = rm[rm["teacher"] == t]
        _lines(ax, d, "rmse", "rmse_mcse", methods, color)
        ns = np.array(sorted(d["n"].unique()), dtype=float)
        ref = d[d["method"] == methods[0]].sort_values("n")["rmse"].to_numpy()
        if ref.size:
            ax.plot(ns, ref[0] * (ns / ns[0]) ** -0.5, color="0.55", lw=1.2, ls=":",
                    label="slope -1/2")
        ax.set_yscale("log")
        ax.set_title(f"{t}: parameter RMSE")
        ax.set_xlabel("n (log scale)")
        ax.set_ylabel("sqrt(E||theta_hat - theta0||^2) (log)")
        if i == 0:
            ax.legend(fontsize=6)
    fig.tight_layout()
    return gfgsm.report.save_figure(fig, figures, "nn_teacher_rmse")


def _figure_calibration(cal: pd.DataFrame, figures: Path) -> Path:
    sns = gfgsm.report.style()
    import matplotlib.pyplot as plt

    color = sns.color_palette()[0]
    methods = _order(cal["method"].unique())
    panels = [(CONTROL, "bias", "bias_mcse", "balanced (odd teacher): bias"),
              (IMBALANCED, "bias", "bias_mcse", "imbalanced (prevalence 0.15): bias"),
              (IMBALANCED, "paired", "paired_mcse", "imbalanced: method - none (paired)")]
    panels = [p for p in panels if p[0] in set(cal["teacher"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.4), squeeze=False,
                             sharey=True)
    for i, (t, y, yse, title) in enumerate(panels):
        ax = axes[0, i]
        d = cal[cal["teacher"] == t]
        _lines(ax, d, y, yse, methods, color, scale=lambda g: np.sqrt(g["n"].to_numpy()))
        ax.axhline(0.0, color="0.4", lw=0.8)
        ax.set_title(title)
        ax.set_xlabel("n (log scale)")
        ax.set_ylabel("sqrt(n) x (mean p_hat - mean p)")
        if i == 0:
            ax.legend(fontsize=6)
    fig.tight_layout()
    return gfgsm.report.save_figure(fig, figures, "nn_teacher_calibration")


# --------------------------------------------------------------------------------------------
# section
# --------------------------------------------------------------------------------------------
def _ci(r: Any, lo: str = "ci_low", hi: str = "ci_high") -> str:
    return fmt_ci(r["slope"], r[lo], r[hi], ".2f")


def summarise(store: Path, study: Study) -> gfgsm.report.Summaries:
    """Everything the section shows, reduced from the store ``store`` of ``study``: per-condition
    tables (``risk``, ``risk_rates``, ``rmse``, ``rmse_rates``, ``limit_law``, ``calibration``,
    ``status``; none with a row per replication) and the decision, constants and provenance in
    ``meta`` (:mod:`gfgsm.report.summaries`)."""
    store = Path(store)
    df = gfgsm.mc.load(store)
    res = analyse(df)
    rm, rmr = res["rmse"], res["rmse_rates"]
    tables: dict[str, pd.DataFrame] = {
        "risk": res["risk"], "risk_rates": res["risk_rates"], "rmse": rm,
        "calibration": res["calibration"]}
    lam0 = float(df["lam0"].iloc[0])
    if rmr is not None:
        tables["rmse_rates"] = rmr
        if len(rm):
            # sqrt(n) RMSE of the limit law (docs/theory.md s.5), where one applies.
            lim = [{"teacher": t, "method": mth, "sqrt_n_rmse": limit_rmse(t, lam0, mth)}
                   for t in rm["teacher"].unique() for mth in LIMIT_METHODS
                   if mth in set(rm["method"])]
            tables["limit_law"] = pd.DataFrame(
                lim, columns=["teacher", "method", "sqrt_n_rmse"]).astype(
                {"teacher": str, "method": str, "sqrt_n_rmse": float})
    fits = df[df["param"] == "excess_risk"]
    conv = convergence(fits, by=["teacher", "method"])
    conv_cols = [c for c in conv.columns if c.startswith("status_")]
    status = conv[["teacher", "method", "n_rep", "n_converged", *conv_cols]]
    if "grad_max" in fits.columns:  # stores written before the stationarity check lack it
        med = fits.groupby(["teacher", "method"], observed=True)["grad_max"].median()
        status = status.assign(median_grad_max=[float(med.loc[(r.teacher, r.method)])
                                                for r in status.itertuples()])
    tables["status"] = status.reset_index(drop=True)
    manifest = gfgsm.report.store_manifest(store)
    meta = {"study": study.name, "preset": manifest["preset"], "reps": manifest["study"]["reps"],
            "provenance": gfgsm.report.provenance(store),
            "lam0": lam0, "clean_weight": CLEAN_WEIGHT, "z_crit": res["z_crit"],
            "ok_b": res["ok_b"], "ok_control": res["ok_control"],
            "ok_imbalance": res["ok_imbalance"], "agrees": res["agrees"]}
    return gfgsm.report.Summaries(tables=tables, meta=meta)


def local_slopes(rm: pd.DataFrame, teacher: str, method: str) -> pd.DataFrame:
    """Slopes of log RMSE between consecutive ``n`` of one GLM student, with 95% CIs from the
    MCSEs (delta method: ``se(log RMSE) = MCSE / RMSE``, independent conditions)."""
    r = rm[(rm["teacher"] == teacher) & (rm["method"] == method)].sort_values("n")
    ln = np.log(r["n"].to_numpy(dtype=float))
    lv = np.log(r["rmse"].to_numpy(dtype=float))
    rel = r["rmse_mcse"].to_numpy(dtype=float) / r["rmse"].to_numpy(dtype=float)
    slope = np.diff(lv) / np.diff(ln)
    half = 1.96 * np.sqrt(rel[1:] ** 2 + rel[:-1] ** 2) / np.diff(ln)
    return pd.DataFrame({"n_from": r["n"].to_numpy()[:-1], "n_to": r["n"].to_numpy()[1:],
                         "slope": slope, "lo": slope - half, "hi": slope + half})


def _slope_cause(rm: pd.DataFrame, bad: pd.DataFrame, limit: pd.DataFrame) -> str:
    """The numbers behind slopes whose CI excludes -1/2: sqrt(n) RMSE against the limit law
    and the local slope between the two largest n.  A penalty of fixed size lam0 / sqrt(n)
    that is large against the coefficients at small n has a bias that is not yet linear in
    lam (saturated: shrinkage cannot exceed the coefficient), so sqrt(n) RMSE still rises
    towards its limit and the all-n slope is flatter than -1/2 (as in the consistency
    study's n* analysis)."""
    lim = {(r.teacher, r.method): float(r.sqrt_n_rmse) for r in limit.itertuples()}
    out = []
    inside = 0
    for r in bad.itertuples():
        sub = rm[(rm["teacher"] == r.teacher) & (rm["method"] == r.method)].sort_values("n")
        last = local_slopes(rm, r.teacher, r.method).iloc[-1]
        inside += int(last.lo <= -0.5 <= last.hi)
        lim_txt = (f" (its limit law: {lim[(r.teacher, r.method)]:.1f})"
                   if (r.teacher, r.method) in lim else "")
        out.append(
            f"{r.teacher}, {r.method}: sqrt(n) RMSE "
            + ", ".join(f"{v.rmse * math.sqrt(v.n):.1f}" for v in sub.itertuples())
            + " at n = " + ", ".join(str(int(v)) for v in sub["n"]) + lim_txt
            + f", local slope {int(last.n_from)}-{int(last.n_to)} {last.slope:.2f} "
            f"[{last.lo:.2f}, {last.hi:.2f}]")
    return ("Where a slope excludes -1/2, sqrt(n) RMSE still rises towards its limit: a "
            "finite-sample effect of a penalty lam0/sqrt(n) that is large against the "
            "coefficients at small n (its bias is not yet linear in lam), which flattens the "
            f"slope over all n; between the two largest n the 95% CI of the slope contains "
            f"-1/2 for {inside} of {len(bad)}: " + "; ".join(out) + ".")


def render(s: gfgsm.report.Summaries, figures: Path) -> gfgsm.report.Section:
    """The section (figures, tables, verdict, notes) from the summaries ``s`` of
    :func:`summarise` alone."""
    risk, rr, rm, cal = s["risk"], s["risk_rates"], s["rmse"], s["calibration"]
    rmr = s.tables.get("rmse_rates")
    meta = s.meta
    agrees = bool(meta["agrees"])
    z_crit = float(meta["z_crit"])

    # verdict ----------------------------------------------------------------------------
    parts = []
    if rmr is not None and len(rmr):
        bad = rmr[~rmr["contains"].astype(bool)]
        parts.append(
            f"the parameter-RMSE slopes of the GLM students range over "
            f"{rmr['slope'].min():.2f} to {rmr['slope'].max():.2f} and "
            + ("every 95% CI contains -1/2" if bad.empty else
               f"{len(bad)} of {len(rmr)} CIs exclude -1/2 ("
               + "; ".join(f"{r.teacher}, {r.method}: {r.slope:.2f} [{r.ci_rule_low:.2f}, "
                           f"{r.ci_rule_high:.2f}]" for r in bad.itertuples()) + ")"))
    ctrl = cal[cal["teacher"] == CONTROL]
    if len(ctrl):
        parts.append(f"in the balanced control the largest |z| of a calibration bias is "
                     f"{ctrl['z'].abs().max():.2f} (bound {z_crit:.2f})")
    imb = cal[(cal["teacher"] == IMBALANCED) & (cal["method"] == SIGN)].sort_values("n")
    if len(imb):
        parts.append("under imbalance G-FGSM (sign) predicts mean probabilities lower than the "
                     "unregularized fit by " + ", ".join(
                         f"{-r.paired:.4f} (z = {r.paired_z:.1f}) at n = {r.n}"
                         for r in imb.itertuples())
                     + " (times sqrt(n): " + ", ".join(
                         f"{-r.paired * math.sqrt(r.n):.2f}" for r in imb.itertuples())
                     + ", the O(lam_n) = O(n^-1/2) bias of s.5 consequence 3)")
    verdict = ("Agrees: " if agrees else "Disagrees: ") + "; ".join(parts) + "."
    if rmr is not None and len(rmr) and not rmr["contains"].astype(bool).all():
        verdict += " " + _slope_cause(rm, rmr[~rmr["contains"].astype(bool)], s["limit_law"])

    # tables -----------------------------------------------------------------------------
    def fmt(v: float, se: float) -> str:
        return format_estimate(float(v), float(se))

    rt = risk.assign(cell=[fmt(r.risk, r.risk_mcse) for r in risk.itertuples()])
    risk_tab = rt.pivot_table(index=["teacher", "method"], columns="n", values="cell",
                              aggfunc="first", observed=True)
    risk_tab.columns = [f"n = {c}" for c in risk_tab.columns]
    rr_idx = rr.set_index(["teacher", "method"])
    risk_tab["slope [95% CI]"] = [_ci(rr_idx.loc[i]) for i in risk_tab.index]
    risk_tab["lack-of-fit p"] = [rr_idx.loc[i, "lof_p"] for i in risk_tab.index]
    risk_tab = risk_tab.reset_index()
    tables = [("Mean excess risk E[l(y, eta_hat) - l(y, eta)] on the test sample, estimate "
               "(MCSE), and its log-log slope on n with 95% CI (MCSE-weighted; about -1 "
               "expected for well-specified parametric students, reported not tested).",
               gfgsm.report.markdown_table(risk_tab, floatfmt=".3g"))]
    if rmr is not None and len(rm):
        mt = rm.assign(cell=[fmt(r.rmse, r.rmse_mcse) for r in rm.itertuples()])
        rm_tab = mt.pivot_table(index=["teacher", "method"], columns="n", values="cell",
                                aggfunc="first", observed=True)
        rm_tab.columns = [f"n = {c}" for c in rm_tab.columns]
        ri = rmr.set_index(["teacher", "method"])
        rm_tab["slope [95% CI]"] = [_ci(ri.loc[i]) for i in rm_tab.index]
        rm_tab["scaled CI (rule)"] = [f"[{ri.loc[i, 'ci_rule_low']:.2f}, "
                                      f"{ri.loc[i, 'ci_rule_high']:.2f}]" for i in rm_tab.index]
        rm_tab["contains -1/2"] = [("yes" if ri.loc[i, "contains"] else "**no**")
                                   for i in rm_tab.index]
        lim = {(r.teacher, r.method): float(r.sqrt_n_rmse)
               for r in s["limit_law"].itertuples()}
        rm_tab["sqrt(n) RMSE: " + " / ".join(f"n = {k}" for k in sorted(rm["n"].unique()))
               + " / limit law"] = [
            " / ".join(f"{r.rmse * math.sqrt(r.n):.1f}"
                       for r in rm[(rm["teacher"] == i[0]) & (rm["method"] == i[1])]
                       .sort_values("n").itertuples())
            + (f" / {lim[i]:.1f}" if i in lim else " / -") for i in rm_tab.index]
        tables.append(("GLM students: parameter RMSE sqrt(E||theta_hat - theta0||^2) (MCSE) "
                       "and its slope on n; theory -1/2 (docs/theory.md s.5). Last column: "
                       "sqrt(n) RMSE at each n against the limit law of docs/theory.md s.5 "
                       "(gfgsm.theory.limit_law) where one applies: G-FGSM sign (l1 G-FGSM, "
                       "clean_weight 0) and l1 weight decay (l1 PL on the phi = 1 scale).",
                       gfgsm.report.markdown_table(rm_tab.reset_index(), floatfmt=".3g")))
    cb = cal[cal["teacher"].isin([CONTROL, IMBALANCED])].copy()
    if len(cb):
        cb["bias (MCSE)"] = [fmt(r.bias, r.bias_mcse) for r in cb.itertuples()]
        cb["z"] = cb["z"].round(2)
        cb["minus none, paired (MCSE)"] = [fmt(r.paired, r.paired_mcse) if r.method != "none"
                                           else "-" for r in cb.itertuples()]
        cb["paired z"] = [round(r.paired_z, 2) if r.method != "none" else np.nan
                          for r in cb.itertuples()]
        cb_tab = cb[["teacher", "n", "method", "mean_mu", "bias (MCSE)", "z",
                     "minus none, paired (MCSE)", "paired z"]].rename(
            columns={"mean_mu": "mean p (test)"})
        tables.append(("Binomial MLP teachers: bias of the mean predicted probability on the "
                       "antithetic test sample, and its paired difference from the "
                       "unregularized fit on the same data.",
                       gfgsm.report.markdown_table(cb_tab, floatfmt=".4g")))
    status = s["status"]
    conv_cols = [c for c in status.columns if c.startswith("status_")]
    conv_tab = status[["teacher", "method", "n_rep", "n_converged", *conv_cols]]
    if "median_grad_max" in status.columns:
        conv_tab = conv_tab.assign(**{"median max|grad|": [
            f"{v:.2g}" for v in status["median_grad_max"].to_numpy(dtype=float)]})
    tables.append(("Training status counts over all n (fits of every status enter the "
                   "measures; module docstring). Converged = full-batch gradient max|grad| "
                   "<= tol at the returned weights (GLM students tol 1e-6, MLP students "
                   "1e-4); 'plateau' = Adam's loss stopped improving without a small "
                   "gradient.",
                   gfgsm.report.markdown_table(conv_tab)))

    figs = [(str(_figure_risk(risk, figures)),
             "Mean excess prediction risk against n (log-log), one panel per teacher, one line "
             "per method, 95% MCSE bars.")]
    if len(rm):
        figs.append((str(_figure_rmse(rm, figures)),
                     "GLM students (no hidden layer, GLM teachers): parameter RMSE against n "
                     "with a slope -1/2 reference (dotted), 95% MCSE bars."))
    if len(cb):
        figs.append((str(_figure_calibration(cal, figures)),
                     "sqrt(n) x bias of the mean predicted probability against n: balanced "
                     "odd teacher (exactly 0 in expectation for every method), imbalanced "
                     "teacher, and its paired difference from the unregularized fit; 95% MCSE "
                     "bars."))
    notes = (
        "**Decision rule** (fixed before the runs). Agrees when (b) for every GLM teacher and "
        "method the 95% CI of the slope of log parameter-RMSE on log n contains -1/2 "
        "(rate_fit's lack-of-fit-scaled CI), and (c) in the balanced odd-teacher control every "
        f"method's calibration bias has |z| < {z_crit:.2f} (Bonferroni, family-wise 5% "
        "over the control's methods x n) and under imbalance the sign scheme's paired "
        "difference from the unregularized fit has z < -3 at every n. "
        f"**Conventions.** clean_weight = {float(meta['clean_weight']):g} (docs/theory.md "
        "s.3's Q_n); budgets and "
        "weight decay lam0/sqrt(n), lam0 = 1; GLM students L-BFGS (full batch), MLP students "
        "hidden (8,) tanh trained with Adam (lr 0.01, up to 300 epochs, plateau tol 1e-4), "
        "which leaves them short of stationarity (status plateau or max_iter; full-batch "
        "L-BFGS to stationarity overfits or diverges: module docstring). "
        "Test sample: 10000 N(0, I) inputs and their negatives, fixed seed."
    )
    return gfgsm.report.Section(
        key="nn_teacher",
        title="Networks on teacher data: risk, root-n consistency and imbalance bias",
        claim=("Adversarially trained networks (G-FGSM with the schemes of docs/theory.md s.6) at "
               "lam = lam0/sqrt(n) behave as regularized estimators: a GLM student is root-n "
               "consistent (s.5 consequence 1), and under class imbalance (not sign neutral) "
               "the adversarial budget biases the predicted probabilities, while a balanced "
               "odd teacher gives no bias (s.5 consequence 3, s.8 claim 6)."),
        verdict=verdict,
        agrees=agrees,
        figures=figs,
        tables=tables,
        provenance=str(meta["provenance"]),
        notes=notes,
    )


def section(preset: str, results: Path, figures: Path, *, study: Study | None = None,
            executor: str = "processes") -> gfgsm.report.Section:
    """Run/resume the study and build its report section (``study`` replaces :data:`STUDY`
    in tests; any subset of its teachers, n and methods is analysed the same way):
    :func:`summarise` the store, then :func:`render` the summaries."""
    study = STUDY if study is None else study
    return gfgsm.report.split_section(summarise, render, study, preset, results, figures,
                                      executor)


section.order = 70  # type: ignore[attr-defined]
section.render = render  # type: ignore[attr-defined]
