"""``nn_digits``: G-FGSM training schemes and baselines on the 8x8 digits, attacked by FGSM, PGD
and PQGD; and the seed paper's claim that PQGD is sharper than PGD at small step counts
(docs/theory.md s.6 and s.8 claim 6; seeds/quantized-gradients-paper.txt, s.3.2-3.3 and s.4.3-4.4).

Aims
    (1) Clean and robust test accuracy, against the attack budget ``eps``, of one small network
    trained with each G-FGSM scheme of docs/theory.md s.6 (sign = FGSM training, lq, power,
    quantized) and with the usual baselines (no regularisation, l2 / l1 weight decay, uniform
    and gaussian input noise of the same budget, FGSM with random start), with confidence
    bands over training restarts.  (2) Test the seed paper's claim (s.4.4, Fig. 4): "PQGD
    produces a much sharper attack than PGD when number of steps is small", and whether the
    advantage fades with more steps; and separate the two things PQGD changes at once (the
    paper's step ``alpha zeta(b g / ||g||_inf)`` moves the largest coordinates ``b`` times
    further than PGD's ``alpha sign(g)``, *and* keeps relative magnitudes) with a control of
    equal largest step.
Data-generating mechanism
    No simulation of data: scikit-learn's bundled 8x8 digits (:func:`sklearn.datasets.
    load_digits`, 1797 images, 10 classes, offline), pixels divided by 16 so inputs lie in
    ``[0, 1]`` (every attack clips to ``[0, 1]``: ``clip_min = 0``, ``clip_max = 1``); one
    fixed stratified train/test split, test size 1/3 (1198 training, 599 test digits),
    ``random_state = 0`` (:class:`DigitsData`, whose ``repr`` enters the study hash).
    Replications are *restarts*: every network sees the same split and differs only by its
    seed (initialisation, mini-batch order, training noise, attack random starts), so the
    bands describe the variability of training and attacking, not test-set sampling.  The
    grid has one factor, ``hidden = [32]`` (one hidden layer of 32 relu units).
Estimands
    Test accuracy of a trained network, clean and under each attack; for the claim, the mean
    over restarts of the paired difference ``acc_PGD(k) - acc_PQGD(k)`` after ``k`` steps.
Methods (:class:`gfgsm.nn.study.NetworkMethod`, all trained by :func:`gfgsm.nn.train_networks`)
    Network: ``64 -> 32 (relu) -> 10`` softmax, Adam, learning rate ``3e-3``, mini-batches of
    64, 60 epochs (scikit-learn's loss-plateau stop may end a network earlier; its status is
    reported), no early stopping; clean test accuracy about 97% without regularisation.
    Training budget ``eps_train = 0.1``; the perturbation is recomputed each step and held
    fixed (docs/theory.md s.6, "two estimators, one name"); training inputs are not clipped.

    * ``none``: the clean mean loss.
    * ``sign``: FGSM training, Goodfellow et al.'s ``0.5 l(x) + 0.5 l(x + 0.1 sign(g))``.
    * ``lq``: scheme ``lq``, ``q = 2`` (direction ``g / ||g||_2``, unit l2 norm), budget
      ``0.1 sqrt(64) = 0.8``: the l2 size of the sign perturbation ``0.1 sign(g)``, so the
      two schemes perturb by the same Euclidean amount (at ``lam = 0.1`` the l2 direction
      would be 8 times smaller than FGSM's and nearly no perturbation at all).  Its largest
      coordinate can exceed 0.1: it is not inside the l_inf ball of the attacks.
    * ``power``: ``r = 2`` (``g / ||g||_inf``), budget 0.1 (inside the l_inf ball).
    * ``quantized``: ``b = 10`` (``zeta(10 g / ||g||_inf) / 10``), budget 0.1.
    * ``l2``, ``l1``: clean loss plus weight decay ``(0.01 / 2) sum W^2`` and
      ``0.001 sum |W|`` (weights, not biases): the largest levels (on a 10x grid) that keep
      clean accuracy within about 1 point of ``none`` in a pilot run.
    * ``uniform``, ``gaussian``: the mixed objective with ``U(-0.1, 0.1)^64`` and
      ``N(0, 0.1^2 I)`` noise instead of the adversarial perturbation (same l_inf ball and same
      per-coordinate RMS as FGSM, respectively).
    * ``fgsm_rs``: FGSM with random start (Wong, Rice & Kolter 2020): ``u ~ U(-0.1, 0.1)^64``,
      one sign step of ``1.25 x 0.1``, projected onto the 0.1 ball, trained on the adversarial
      loss only (``clean_weight = 0``, as Wong et al.), with the catastrophic-overfitting
      monitor (10-step PGD on 512 training digits each epoch; flag and epoch stored per
      network).  The adversarially trained methods (``sign``, ``lq``, ``power``, ``quantized``)
      run the same monitor (the trainer's default); the section reports all flags.

Attacks (per network, on the 599 test digits; :mod:`gfgsm.nn.attacks`, l_inf, untargeted)
    (a) eps sweep, ``eps in {0, 0.05, 0.1, 0.15, 0.2, 0.3}``: FGSM; PGD, 20 steps of
    ``eps_step = 2.5 eps / 20`` (Madry et al.'s 2.5 eps / steps) from one uniform random
    start; PQGD ``b in {10, 100, 1000}``, 20 steps with the paper's scaling: the paper steps
    ``alpha zeta(b g / ||g||_inf)`` and gfgsm's quantized direction is that divided by ``b``,
    so the paper's ``alpha = 2.5 eps / 20`` is ``eps_step = b alpha`` here.  (b) Step-count
    experiment at ``eps = 0.2`` (twice the training budget, the largest eps at which the
    FGSM-trained networks keep a robust accuracy well away from 0 and from their clean
    accuracy, so that a difference between attacks is visible; also the paper's Fashion-MNIST
    budget): ``alpha = eps / 30`` (the paper's MNIST ratio, 0.01 for 0.3); PGD with step
    ``alpha``; PQGD ``b in {10, 100, 1000}`` with ``eps_step = b alpha`` (paper's
    convention); and the control "PQGD, equal largest step", ``b = 100`` with
    ``eps_step = alpha`` (every coordinate moves at most as far as PGD's).  Each attack is one
    60-step run; its accuracy after every step ``k = 0..60`` is read by the attack's callback.
    Random starts: network ``r`` draws its start from its own generator, child
    ``ATTACK_KEY`` of its replication's ``SeedSequence`` (fresh for every attack), so PGD and
    PQGD of a network start from the same point (common random numbers), every network's
    attack is independent of the others, and results do not depend on chunking.

Performance measures
    Mean accuracy over restarts with a 95% t-interval (``t_{0.975, R-1} sd / sqrt(R)``); for
    the claim, the paired difference ``D_r(k) = acc_PGD,r(k) - acc_PQGD,r(k)`` (same network,
    same random start), its mean and 95% t-interval over restarts ``r``, per training method,
    ``b`` and ``k``.

Decision rule (fixed before running, stated in the section)
    *Confirmed* when, on the FGSM-trained (``sign``) networks, for every ``b`` in
    ``{10, 100, 1000}`` (paper's step convention) and both ``k`` in ``{5, 10}``, the mean of
    ``D(k)`` is positive and its 95% CI excludes 0; otherwise *not confirmed*.  Reported
    beside it, not part of the verdict's yes/no: the advantage *has vanished* at ``k = 60``
    for a ``b`` when the 95% CI of ``D(60)`` contains 0 or lies inside ``(-1, +1)``
    percentage points; and the control: if the equal-largest-step PQGD is not sharper than PGD
    at ``k in {5, 10}`` (its CI does not lie above 0) while the paper-convention PQGD is, the
    sharpness comes from the larger moves, not from the relative magnitudes.

Cost (2 cores; measured while another heavy job shared the machine, load average 2.5-2.8, so
the wall times are probably 1.5-2x inflated): one chunk of 5 restarts needs about 60 CPU-s in
one single-threaded process (profiled: per method about 2.6 s of training with the robustness
monitor or 0.5 s without, and 4.2-4.4 s of attacks, half of them the 540 quantized steps).  The
quick preset (10 restarts, 2 chunks on 2 workers) took 106 s and 133 s of wall time for the
whole section (study + figures; each chunk 101 s in parallel), an estimated 70 s on an idle
machine.  The full preset (50 restarts, 10 chunks) needs about 10 CPU-minutes, 5-10 minutes of
wall time on 2 workers.  The study test (4 restarts, 3 methods, 5 epochs) runs in about 32 s.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import gfgsm.mc
import gfgsm.report
from gfgsm.mc.spec import Preset, Study
from gfgsm.nn.attacks import (
    FastGradientMethod,
    ProjectedGradientDescent,
    ProjectedQuantizedGradientDescent,
)
from gfgsm.nn.study import NetworkMethod
from gfgsm.nn.training import NetworkFit

from ._format import fmt_ci

__all__ = [
    "ATTACK_KEY",
    "STUDY",
    "DigitsData",
    "accuracy_summary",
    "analyse",
    "attack_seed",
    "compute",
    "decide",
    "evaluate",
    "make_dgp",
    "make_methods",
    "paired_differences",
    "render",
    "section",
    "summarise",
]

# --- design constants (they enter the study hash through ``Study.estimands``) ------------------
EPS_TRAIN = 0.1
N_FEATURES = 64
EPS_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
SWEEP_STEPS = 20
SWEEP_RATIO = 2.5  # eps_step = 2.5 eps / steps (Madry et al.)
B_VALUES = (10, 100, 1000)
STEP_EPS = 0.2
STEP_ALPHA_DIV = 30  # alpha = eps / 30
STEP_MAX = 60
CONTROL_B = 100
#: Child index of a replication's SeedSequence that seeds its attacks' random starts (the
#: trainer uses children 0..3).
ATTACK_KEY = 7
DECISION_K = (5, 10)
TABLE_K = (1, 2, 5, 10, 20, 40, 60)
EQUIV_PP = 1.0  # "vanished" band at k = 60, percentage points
LEVEL = 0.95

#: Training options shared by every method (in each method's ``options``, hence in the hash).
TRAIN_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("family", "softmax"), ("n_classes", 10), ("activation", "relu"), ("solver", "adam"),
    ("learning_rate", 3e-3), ("batch_size", 64), ("max_iter", 60),
)

PGD, PQGD_NAME, CONTROL, FGSM, CLEAN = "PGD", "PQGD", "PQGD equal step", "FGSM", "clean"


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DigitsData:
    """scikit-learn's 8x8 digits divided by ``scale``, one stratified train/test split."""

    test_size: float = 1.0 / 3.0
    split_seed: int = 0
    scale: float = 16.0

    def split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(X_train, y_train, X_test, y_test)``; labels are float class indices 0..9."""
        return _split(self)


@functools.lru_cache(maxsize=4)
def _split(data: DigitsData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = np.asarray(d.data, dtype=np.float64) / data.scale
    y = np.asarray(d.target, dtype=np.float64)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=data.test_size, stratify=y,
                                          random_state=data.split_seed)
    for a in (Xtr, Xte, ytr, yte):
        a.setflags(write=False)
    return Xtr, ytr, Xte, yte


def make_dgp(cond: Mapping[str, Any]) -> DigitsData:
    return DigitsData()


# --------------------------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------------------------
def make_methods(names: Sequence[str] | None = None,
                 **train: Any) -> tuple[NetworkMethod, ...]:
    """The study's methods (module docstring), optionally a subset ``names`` and with training
    options overridden by ``train`` (e.g. ``max_iter=10`` in tests)."""
    opts = tuple({**dict(TRAIN_OPTIONS), **train}.items())
    co = (("monitor_robustness", True),)
    e = EPS_TRAIN
    all_methods = [
        NetworkMethod("none", perturbation="none", options=opts),
        NetworkMethod("sign", scheme="sign", lam=e, clean_weight=0.5, options=opts + co),
        NetworkMethod("lq", scheme="lq", scheme_params=(("q", 2),), lam=e * math.sqrt(N_FEATURES),
                      clean_weight=0.5, options=opts + co),
        NetworkMethod("power", scheme="power", scheme_params=(("r", 2),), lam=e,
                      clean_weight=0.5, options=opts + co),
        NetworkMethod("quantized", scheme="quantized", scheme_params=(("b", 10),), lam=e,
                      clean_weight=0.5, options=opts + co),
        NetworkMethod("l2", perturbation="none", weight_decay=1e-2, decay="l2", options=opts),
        NetworkMethod("l1", perturbation="none", weight_decay=1e-3, decay="l1", options=opts),
        NetworkMethod("uniform", perturbation="uniform", lam=e, clean_weight=0.5, options=opts),
        NetworkMethod("gaussian", perturbation="gaussian", lam=e, clean_weight=0.5,
                      options=opts),
        NetworkMethod("fgsm_rs", perturbation="fgsm_rs", scheme="sign", lam=e, clean_weight=0.0,
                      options=opts + co),
    ]
    if names is None:
        return tuple(all_methods)
    by = {m.name: m for m in all_methods}
    return tuple(by[n] for n in names)


METHOD_ORDER = ("none", "sign", "lq", "power", "quantized", "l2", "l1", "uniform", "gaussian",
                "fgsm_rs")


# --------------------------------------------------------------------------------------------
# attacks
# --------------------------------------------------------------------------------------------
def attack_seed(seed: np.random.SeedSequence) -> np.random.SeedSequence:
    """Child ``ATTACK_KEY`` of a replication's seed (without mutating it)."""
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, ATTACK_KEY),
                                  pool_size=seed.pool_size)


def _accuracy(fit: NetworkFit, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(R,)`` share of correctly classified inputs ``X`` ``(R, n, d)``, labels ``(n,)``."""
    eta = np.asarray(fit.net.eta(fit.params, X, np))
    return np.mean(np.argmax(eta, axis=-1) == y.astype(np.int64), axis=-1)


def _iterative(cls: type, target: Any, eps: float, eps_step: float, steps: int,
               seeds: Sequence[np.random.SeedSequence], **kw: Any) -> ProjectedGradientDescent:
    # One start generator per network (gfgsm.nn.attacks' per-network seeds): network r's start
    # is the one it gets when attacked alone, whatever chunk it is trained in.
    return cls(target, eps, eps_step, max_iter=steps, num_random_init=1, clip_min=0.0,
               clip_max=1.0, seed=[attack_seed(s) for s in seeds], **kw)


def evaluate(fit: NetworkFit, Xte: np.ndarray, yte: np.ndarray,
             seeds: Sequence[np.random.SeedSequence]) -> pd.DataFrame:
    """Clean and robust test accuracy of the ``R`` networks of ``fit`` (module docstring):
    tidy rows ``experiment, attack, b, eps, eps_step, steps, network, accuracy`` (``network``
    the position within the chunk)."""
    R = fit.R
    X = np.broadcast_to(Xte, (R, *Xte.shape))
    Y = np.broadcast_to(yte, (R, yte.size))
    target = fit.target()
    cols: dict[str, list[Any]] = {k: [] for k in ("experiment", "attack", "b", "eps",
                                                  "eps_step", "steps", "network", "accuracy")}
    nets = np.arange(R)

    def add(experiment: str, attack: str, b: int, eps: float, eps_step: float, steps: int,
            acc: np.ndarray) -> None:
        for key, value in (("experiment", experiment), ("attack", attack), ("b", b),
                           ("eps", eps), ("eps_step", eps_step), ("steps", steps)):
            cols[key].extend([value] * R)
        cols["network"].extend(nets.tolist())
        cols["accuracy"].extend(np.asarray(acc, dtype=np.float64).tolist())

    add("clean", CLEAN, 0, 0.0, 0.0, 0, _accuracy(fit, X, yte))
    # (a) eps sweep
    for eps in EPS_GRID:
        fg = FastGradientMethod(target, eps, clip_min=0.0, clip_max=1.0)
        add("sweep", FGSM, 1, eps, eps, 1, _accuracy(fit, fg.generate(X, Y), yte))
        alpha = SWEEP_RATIO * eps / SWEEP_STEPS
        step = alpha if eps > 0 else 1.0  # eps = 0: the attacks return the input (no step)
        pgd = _iterative(ProjectedGradientDescent, target, eps, step, SWEEP_STEPS, seeds)
        add("sweep", PGD, 1, eps, alpha, SWEEP_STEPS, _accuracy(fit, pgd.generate(X, Y), yte))
        for b in B_VALUES:
            pq = _iterative(ProjectedQuantizedGradientDescent, target, eps, b * step,
                            SWEEP_STEPS, seeds, b=b)
            add("sweep", PQGD_NAME, b, eps, b * alpha, SWEEP_STEPS,
                _accuracy(fit, pq.generate(X, Y), yte))
    # (b) step counts at STEP_EPS, one 60-step run per attack read by callback
    alpha = STEP_EPS / STEP_ALPHA_DIV
    runs: list[tuple[str, int, float, type]] = [(PGD, 1, alpha, ProjectedGradientDescent)]
    runs += [(PQGD_NAME, b, b * alpha, ProjectedQuantizedGradientDescent) for b in B_VALUES]
    runs += [(CONTROL, CONTROL_B, alpha, ProjectedQuantizedGradientDescent)]
    for name, b, eps_step, cls in runs:
        kw = {"b": b} if cls is ProjectedQuantizedGradientDescent else {}
        atk = _iterative(cls, target, STEP_EPS, eps_step, STEP_MAX, seeds, **kw)
        curve = np.empty((STEP_MAX + 1, R))

        def record(restart: int, k: int, x_adv: Any, curve: np.ndarray = curve) -> None:
            curve[k] = _accuracy(fit, np.asarray(x_adv), yte)

        atk.generate(X, Y, callback=record)
        for k in range(STEP_MAX + 1):
            add("steps", name, b, STEP_EPS, eps_step, k, curve[k])
    out = pd.DataFrame(cols)
    return out.astype({"b": np.int64, "steps": np.int64, "network": np.int64,
                       "eps": np.float64, "eps_step": np.float64})


def compute(study: Study, cond: Mapping[str, Any], dgp: DigitsData, reps: np.ndarray,
            seeds: Sequence[np.random.SeedSequence], backend: str | None) -> pd.DataFrame:
    """The compute hook (:class:`gfgsm.mc.Study`): train every method's networks for the
    replications ``reps`` (one network per seed, batched) and evaluate them."""
    Xtr, ytr, Xte, yte = dgp.split()
    R = len(seeds)
    frames = []
    for m in study.methods:
        fit = m.train(Xtr, ytr, cond, seeds, backend, hidden=(int(cond["hidden"]),),
                      n_networks=R)
        ev = evaluate(fit, Xte, yte, seeds)
        net = ev.pop("network").to_numpy()
        ev.insert(0, "rep", np.asarray(reps, dtype=np.int64)[net])
        ev.insert(0, "method", m.name)
        ev["status"] = np.asarray(fit.status, dtype=str)[net]
        ev["n_iter"] = np.asarray(fit.n_iter, dtype=np.int64)[net]
        ev["co"] = np.asarray(fit.catastrophic_overfitting, dtype=bool)[net]
        ev["co_epoch"] = np.asarray(fit.catastrophic_overfitting_epoch, dtype=np.int64)[net]
        frames.append(ev)
    return pd.concat(frames, ignore_index=True)


def _estimands() -> str:
    return (
        "Test accuracy (599 digits) of each trained network, clean and under l_inf attacks "
        f"clipped to [0, 1]: FGSM, PGD ({SWEEP_STEPS} steps, eps_step = {SWEEP_RATIO} eps / "
        f"{SWEEP_STEPS}, one random start) and PQGD b in {list(B_VALUES)} (eps_step = b times "
        f"that) at eps in {list(EPS_GRID)}; at eps = {STEP_EPS}, alpha = eps / {STEP_ALPHA_DIV}: "
        f"accuracy after k = 0..{STEP_MAX} steps of PGD (step alpha), PQGD b in "
        f"{list(B_VALUES)} (eps_step = b alpha) and PQGD b = {CONTROL_B} with eps_step = alpha; "
        f"attack starts from child {ATTACK_KEY} of each replication seed; training budget "
        f"{EPS_TRAIN}."
    )


STUDY = Study(
    name="nn_digits",
    aims="Clean and robust accuracy of G-FGSM-trained networks and baselines on the 8x8 "
         "digits under FGSM, PGD and PQGD, and the seed paper's claim that PQGD is sharper "
         "than PGD at small step counts (docs/theory.md s.6, s.8 claim 6).",
    factors={"hidden": [32]},
    make_dgp=make_dgp,
    methods=make_methods(),
    presets={
        "quick": Preset(reps=10, description="about 1-2 minutes on 2 cores"),
        "full": Preset(reps=50, description="about 6 minutes on 2 cores (measured)"),
    },
    estimands=_estimands(),
    # The stored measure column (``gfgsm summarize`` averages it with MCSEs); the section
    # reports means with 95% t-intervals over restarts and paired PGD - PQGD differences.
    measures=("accuracy",),
    compute=compute,
    chunk_size=5,
)


# --------------------------------------------------------------------------------------------
# analysis
# --------------------------------------------------------------------------------------------
def _t_interval(x: np.ndarray) -> tuple[float, float, float, int]:
    """Mean and 95% t-interval of ``x`` (``NaN`` bounds for fewer than 2 values)."""
    x = np.asarray(x, dtype=float)
    n = x.size
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


def accuracy_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy and 95% t-interval over restarts per method, experiment, attack, b, eps
    and step count; the interval is truncated to [0, 1], the range of an accuracy (near 0 or
    1 the symmetric t-interval would cross it)."""
    keys = ["method", "experiment", "attack", "b", "eps", "steps"]
    out = []
    for key, g in df.groupby(keys, sort=True, observed=True):
        mean, lo, hi, n = _t_interval(g["accuracy"].to_numpy())
        lo, hi = max(lo, 0.0), min(hi, 1.0)
        out.append({**dict(zip(keys, key, strict=True)), "accuracy": mean, "lo": lo, "hi": hi,
                    "restarts": n})
    return pd.DataFrame(out)


def paired_differences(df: pd.DataFrame) -> pd.DataFrame:
    """``D_r(k) = acc_PGD,r(k) - acc_attack,r(k)`` (percentage points) for every PQGD run of
    the step experiment (paper convention per b, and the equal-step control), paired by
    restart, with its mean and 95% t-interval, per method and k."""
    s = df[df["experiment"] == "steps"]
    pgd = s[s["attack"] == PGD].set_index(["method", "rep", "steps"])["accuracy"]
    out = []
    for (method, attack, b), g in s[s["attack"] != PGD].groupby(["method", "attack", "b"],
                                                                  sort=True):
        g = g.set_index(["method", "rep", "steps"])["accuracy"]
        d = (pgd.reindex(g.index) - g).dropna() * 100.0
        for k, dk in d.groupby(level="steps"):
            mean, lo, hi, n = _t_interval(dk.to_numpy())
            out.append({"method": method, "attack": attack, "b": int(b), "steps": int(k),
                        "diff_pp": mean, "lo": lo, "hi": hi, "restarts": n})
    return pd.DataFrame(out)


def decide(diffs: pd.DataFrame, method: str = "sign") -> dict[str, Any]:
    """The decision rule of the module docstring on ``diffs`` (:func:`paired_differences`)."""
    d = diffs[diffs["method"] == method]
    pq = d[d["attack"] == PQGD_NAME]
    small = pq[pq["steps"].isin(DECISION_K)]
    needed = len(B_VALUES) * len(DECISION_K)
    confirmed = bool(len(small) == needed and ((small["diff_pp"] > 0) & (small["lo"] > 0)).all())
    late = pq[pq["steps"] == STEP_MAX].set_index("b")
    vanished = {int(b): bool((r.lo <= 0 <= r.hi) or (r.lo > -EQUIV_PP and r.hi < EQUIV_PP))
                for b, r in late.iterrows()}
    ctrl = d[(d["attack"] == CONTROL) & d["steps"].isin(DECISION_K)]
    control_sharper = bool(len(ctrl) == len(DECISION_K) and (ctrl["lo"] > 0).all())
    return {"confirmed": confirmed, "small": small, "vanished": vanished,
            "control_sharper": control_sharper, "control": ctrl, "late": late}


def analyse(df: pd.DataFrame) -> dict[str, Any]:
    """Summaries, paired differences and the decision."""
    summ = accuracy_summary(df)
    diffs = paired_differences(df)
    return {"summary": summ, "diffs": diffs, "decision": decide(diffs)}


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------
_MARKERS = [*gfgsm.report.MARKERS, "<", ">"]
_DASHES = [*gfgsm.report.DASHES, (8, 2), (2, 1, 2, 4)]


def _ordered(names: Any) -> list[str]:
    present = list(dict.fromkeys(names))
    return [m for m in METHOD_ORDER if m in present] + [m for m in present
                                                         if m not in METHOD_ORDER]


def _figure_sweep(summ: pd.DataFrame, figures: Path) -> Path:
    sns = gfgsm.report.style()
    import matplotlib.pyplot as plt

    color = sns.color_palette()[0]
    panels: list[tuple[str, int, str]] = [(FGSM, 1, "FGSM"), (PGD, 1, f"PGD-{SWEEP_STEPS}")]
    panels += [(PQGD_NAME, b, f"PQGD-{SWEEP_STEPS}, b = {b}") for b in B_VALUES]
    sw = summ[summ["experiment"] == "sweep"]
    methods = _ordered(sw["method"])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.4), sharey=True)
    for ax, (attack, b, title) in zip(axes, panels, strict=True):
        for i, m in enumerate(methods):
            d = sw[(sw["attack"] == attack) & (sw["b"] == b) & (sw["method"] == m)]
            d = d.sort_values("eps")
            ax.plot(d["eps"], d["accuracy"], marker=_MARKERS[i % len(_MARKERS)], ms=3.5,
                    dashes=_DASHES[i % len(_DASHES)], color=color, lw=0.9, label=m,
                    mfc="white" if i % 2 else color)
            ax.fill_between(d["eps"], d["lo"], d["hi"], color="0.6", alpha=0.25, lw=0)
        ax.axvline(EPS_TRAIN, color="0.5", lw=0.6, ls=":")
        ax.set_title(title)
        ax.set_xlabel("attack budget eps (l_inf, pixels in [0, 1])")
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("test accuracy")
    axes[-1].legend(fontsize=6.5, loc="upper right", title="training")
    fig.tight_layout()
    return gfgsm.report.save_figure(fig, figures, "nn_digits_eps")


def _figure_steps(summ: pd.DataFrame, figures: Path) -> Path:
    sns = gfgsm.report.style()
    import matplotlib.pyplot as plt

    color = sns.color_palette()[0]
    st = summ[summ["experiment"] == "steps"]
    wanted = [m for m in ("none", "sign", "fgsm_rs", "quantized") if m in set(st["method"])]
    methods = wanted or _ordered(st["method"])[:1]
    lines: list[tuple[str, int, str]] = [(PGD, 1, "PGD (step alpha)")]
    lines += [(PQGD_NAME, b, f"PQGD b = {b} (eps_step = b alpha)") for b in B_VALUES]
    lines += [(CONTROL, CONTROL_B, f"PQGD b = {CONTROL_B}, eps_step = alpha (control)")]
    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods), 3.4), squeeze=False)
    for ax, m in zip(axes[0], methods, strict=True):
        for i, (attack, b, label) in enumerate(lines):
            d = st[(st["method"] == m) & (st["attack"] == attack) & (st["b"] == b)]
            d = d.sort_values("steps")
            ax.plot(d["steps"], d["accuracy"], marker=_MARKERS[i], ms=3, markevery=5,
                    dashes=_DASHES[i], color=color, lw=0.9, label=label,
                    mfc="white" if i % 2 else color)
            ax.fill_between(d["steps"], d["lo"], d["hi"], color="0.6", alpha=0.25, lw=0)
        for k in DECISION_K:
            ax.axvline(k, color="0.6", lw=0.5, ls=":")
        ax.set_title(f"trained: {m}; eps = {STEP_EPS}")
        ax.set_xlabel("attack steps k")
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].set_ylabel("test accuracy after k steps")
    axes[0, -1].legend(fontsize=6.5, loc="upper right")
    fig.tight_layout()
    return gfgsm.report.save_figure(fig, figures, "nn_digits_steps")


# --------------------------------------------------------------------------------------------
# section
# --------------------------------------------------------------------------------------------
def _accuracy_table(summ: pd.DataFrame) -> pd.DataFrame:
    idx = summ.set_index(["method", "experiment", "attack", "b", "eps", "steps"])
    cols: list[tuple[str, tuple[str, str, int, float, int]]] = [("clean", ("clean", CLEAN, 0,
                                                                           0.0, 0))]
    for eps in (EPS_TRAIN, STEP_EPS):
        cols += [(f"FGSM {eps:g}", ("sweep", FGSM, 1, eps, 1)),
                 (f"PGD-{SWEEP_STEPS} {eps:g}", ("sweep", PGD, 1, eps, SWEEP_STEPS))]
        cols += [(f"PQGD-{SWEEP_STEPS} b={b} {eps:g}", ("sweep", PQGD_NAME, b, eps, SWEEP_STEPS))
                 for b in (B_VALUES[1], B_VALUES[-1])]
    rows = []
    for m in _ordered(summ["method"]):
        row: dict[str, Any] = {"method": m}
        for label, key in cols:
            k = (m, *key)
            row[label] = fmt_ci(*idx.loc[k, ["accuracy", "lo", "hi"]]) if k in idx.index else ""
        rows.append(row)
    return pd.DataFrame(rows)


def _diff_table(diffs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for m in _ordered(diffs["method"]):
        d = diffs[diffs["method"] == m]
        combos = [(PQGD_NAME, b) for b in B_VALUES] + [(CONTROL, CONTROL_B)]
        for attack, b in combos:
            e = d[(d["attack"] == attack) & (d["b"] == b)].set_index("steps")
            if e.empty:
                continue
            label = f"PQGD b={b}" if attack == PQGD_NAME else f"control b={b}, eps_step=alpha"
            row: dict[str, Any] = {"method": m, "attack": label}
            for k in TABLE_K:
                if k in e.index:
                    r = e.loc[k]
                    row[f"k={k}"] = fmt_ci(r["diff_pp"], r["lo"], r["hi"], ".1f")
            rows.append(row)
    return pd.DataFrame(rows)


def _training_summaries(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per training method, from the clean rows of the store (one per network): ``training``
    (networks, flagged by the catastrophic-overfitting monitor, min and max epochs run),
    ``statuses`` (networks per convergence status, in decreasing count) and ``co_epochs``
    (flagged networks per epoch of the flag)."""
    per = df[df["experiment"] == "clean"]
    train, status, co = [], [], []
    for m in _ordered(per["method"]):
        g = per[per["method"] == m]
        flagged = g[g["co"].astype(bool)]
        train.append({"method": m, "networks": len(g), "co_flagged": len(flagged),
                      "n_iter_min": int(g["n_iter"].min()), "n_iter_max": int(g["n_iter"].max())})
        status += [{"method": m, "status": str(s), "networks": int(c)}
                   for s, c in g["status"].value_counts().items()]
        co += [{"method": m, "epoch": int(e), "networks": int(c)}
               for e, c in flagged["co_epoch"].astype(np.int64).value_counts().sort_index().items()]

    def frame(rows: list[dict[str, Any]], dtypes: dict[str, Any]) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=list(dtypes)).astype(dtypes)

    return (frame(train, {"method": str, "networks": np.int64, "co_flagged": np.int64,
                          "n_iter_min": np.int64, "n_iter_max": np.int64}),
            frame(status, {"method": str, "status": str, "networks": np.int64}),
            frame(co, {"method": str, "epoch": np.int64, "networks": np.int64}))


def _training_table(s: gfgsm.report.Summaries) -> pd.DataFrame:
    status, co = s["statuses"], s["co_epochs"]
    rows = []
    for r in s["training"].itertuples(index=False):
        st = status[status["method"] == r.method]
        ep = co[co["method"] == r.method]
        epochs = [str(int(e)) for e, c in zip(ep["epoch"], ep["networks"], strict=True)
                  for _ in range(int(c))]
        rows.append({
            "method": r.method, "networks": int(r.networks),
            "CO flagged": int(r.co_flagged),
            "CO epochs": ", ".join(epochs) or "-",
            "status": ", ".join(f"{x}: {int(c)}" for x, c in zip(st["status"], st["networks"],
                                                                  strict=True)),
            "epochs run (min-max)": f"{int(r.n_iter_min)}-{int(r.n_iter_max)}",
        })
    return pd.DataFrame(rows)


def _verdict(dec: dict[str, Any]) -> str:
    small = dec["small"].sort_values(["b", "steps"])
    parts = "; ".join(f"b = {int(r.b)}, k = {int(r.steps)}: {r.diff_pp:+.1f} pp "
                      f"[{r.lo:+.1f}, {r.hi:+.1f}]" for r in small.itertuples())
    head = "Confirmed" if dec["confirmed"] else "Not confirmed"
    van = [b for b, v in dec["vanished"].items() if v]
    late = dec["late"]
    late_txt = "; ".join(f"b = {b}: {r.diff_pp:+.1f} [{r.lo:+.1f}, {r.hi:+.1f}]"
                         for b, r in late.iterrows())
    ctrl = dec["control"].sort_values("steps")
    ctrl_txt = "; ".join(f"k = {int(r.steps)}: {r.diff_pp:+.1f} [{r.lo:+.1f}, {r.hi:+.1f}]"
                         for r in ctrl.itertuples())
    if len(van) == len(B_VALUES):
        van_txt = "vanished for every b"
    elif van:
        van_txt = f"vanished only for b in {van}"
    else:
        van_txt = "not vanished for any b"
    rule = " (all above 0)" if dec["confirmed"] else " (the rule needs every CI above 0)"
    ctrl_end = ("also sharper than PGD" if dec["control_sharper"] else
                "not sharper than PGD, so PQGD's advantage comes from its larger moves, not from "
                "the relative magnitudes")
    return (f"{head}: on the FGSM-trained networks at eps = {STEP_EPS}, PGD minus PQGD "
            f"accuracy (paired over restarts, 95% CI, percentage points) is {parts}{rule}; "
            f"at k = {STEP_MAX} it is {late_txt}, so the advantage has {van_txt}; the "
            f"equal-largest-step control (b = {CONTROL_B}, eps_step = alpha) gives {ctrl_txt}, "
            f"i.e. it is {ctrl_end}.")


def _design() -> dict[str, Any]:
    """The design constants the section's text, tables and decision use (JSON-able)."""
    return {"eps_train": EPS_TRAIN, "eps_grid": list(EPS_GRID), "sweep_steps": SWEEP_STEPS,
            "sweep_ratio": SWEEP_RATIO, "b_values": list(B_VALUES), "step_eps": STEP_EPS,
            "step_alpha_div": STEP_ALPHA_DIV, "step_max": STEP_MAX, "control_b": CONTROL_B,
            "attack_key": ATTACK_KEY, "decision_k": list(DECISION_K), "table_k": list(TABLE_K),
            "equiv_pp": EQUIV_PP, "level": LEVEL}


def summarise(store: Path, study: Study | None = None) -> gfgsm.report.Summaries:
    """Everything the section shows, from the results ``store`` of ``study`` (default
    :data:`STUDY`), per condition (none per restart):

    * ``accuracy``: mean test accuracy and 95% t-interval over restarts per training method,
      experiment, attack, ``b``, ``eps`` and step count (:func:`accuracy_summary`);
    * ``diffs``: paired ``acc_PGD(k) - acc_PQGD(k)`` (percentage points), mean and 95%
      t-interval per method, PQGD run and ``k`` (:func:`paired_differences`);
    * ``training``, ``statuses``, ``co_epochs``: per method, networks, catastrophic-overfitting
      flags, epochs run, networks per convergence status and per flag epoch;

    and ``meta``: the provenance text, the preset, the methods with the robustness monitor on
    (in the study's order) and the design constants (:func:`render` checks them)."""
    study = STUDY if study is None else study
    store = Path(store)
    df = gfgsm.mc.load(store)
    training, statuses, co_epochs = _training_summaries(df)
    preset = gfgsm.report.store_manifest(store)["preset"]
    monitored = [m.name for m in study.methods
                 if dict(getattr(m, "options", ())).get("monitor_robustness")]
    return gfgsm.report.Summaries(
        tables={"accuracy": accuracy_summary(df), "diffs": paired_differences(df),
                "training": training, "statuses": statuses, "co_epochs": co_epochs},
        meta={"study": study.name, "preset": preset, "provenance": gfgsm.report.provenance(store),
              "monitored": monitored, "design": _design()},
    )


def render(s: gfgsm.report.Summaries, figures: Path) -> gfgsm.report.Section:
    """The section (figures into ``figures``, tables, verdict, notes) from :func:`summarise`'s
    summaries alone."""
    if s.meta.get("design") != _design():
        raise ValueError("these nn_digits summaries were made with other design constants "
                         f"({s.meta.get('design')}) than this module's ({_design()}): "
                         "summarise the store again")
    summ, diffs = s["accuracy"], s["diffs"]
    dec = decide(diffs)
    has_sign = "sign" in set(s["training"]["method"])
    agrees: bool | None = dec["confirmed"] if has_sign else None
    verdict = (_verdict(dec) if has_sign else
               "No FGSM-trained (sign) networks in this run: the claim is not tested.")

    fig1 = _figure_sweep(summ, figures)
    fig2 = _figure_steps(summ, figures)
    tr = _training_table(s)
    monitored = list(s.meta["monitored"])
    n_co = int(tr["CO flagged"].sum())
    n_mon = int(tr.loc[tr["method"].isin(monitored), "networks"].sum())
    st = s["statuses"]
    n_conv = int(st.loc[st["status"].isin(("converged", "plateau")), "networks"].sum())
    n_stat = int(st.loc[st["status"].eq("converged"), "networks"].sum())
    n_net = int(tr["networks"].sum())
    tables = [
        ("Clean and robust test accuracy (mean over restarts [95% t-interval]); columns give "
         f"attack and eps (eps_train = {EPS_TRAIN}); PGD/PQGD: {SWEEP_STEPS} steps, one random "
         f"start, PGD eps_step = {SWEEP_RATIO} eps / {SWEEP_STEPS}, PQGD eps_step = b times "
         "that (the paper's alpha).",
         gfgsm.report.markdown_table(_accuracy_table(summ))),
        (f"Paired difference acc_PGD(k) - acc_PQGD(k) in percentage points at eps = "
         f"{STEP_EPS} (alpha = eps / {STEP_ALPHA_DIV}; mean over restarts [95% t-interval]); "
         "positive: PQGD is the sharper attack. Same network and same random start for both "
         "attacks.", gfgsm.report.markdown_table(_diff_table(diffs))),
        ("Training record: catastrophic-overfitting flags (PGD monitor on 512 training digits "
         "each epoch, Wong et al. 2020; only methods with the monitor on can be flagged) and "
         "convergence statuses.", gfgsm.report.markdown_table(tr)),
    ]
    notes = (
        "**Decision rule (fixed before the run).** Confirmed when, on the FGSM-trained "
        f"(`sign`) networks, for every b in {list(B_VALUES)} with the paper's step convention "
        f"(eps_step = b alpha) and both k in {list(DECISION_K)}, the paired difference "
        "acc_PGD(k) - acc_PQGD(k) is positive with its 95% t-interval over restarts "
        f"excluding 0. Reported beside it: the advantage has vanished at k = {STEP_MAX} for a "
        f"b when the CI of the difference contains 0 or lies inside (-{EQUIV_PP:g}, "
        f"+{EQUIV_PP:g}) percentage points; the control PQGD (b = {CONTROL_B}, eps_step = "
        "alpha: no coordinate moves further than PGD's) separates the larger moves of the "
        "paper's convention from the relative-magnitude information. "
        f"**Catastrophic overfitting.** {n_co} of the {n_mon} monitored networks (methods "
        f"{', '.join(monitored)}) flagged. **Training budget.** {n_conv} of {n_net} networks "
        "met the loss-plateau rule (tol 1e-4 for 10 epochs) before the fixed epoch budget, "
        f"{n_stat} of them stationary (gradient max-norm <= 1e-4, status converged; the others "
        "plateau); the rest ran all epochs (status max_iter): a fixed training budget, as "
        "usual for mini-batch networks, whose estimates here are defined by that protocol, "
        "not by stationarity. "
        "**Uncertainty.** Intervals are over training restarts on one fixed split (training "
        "and attack-start randomness), not over test sets; the test set has 599 digits, so "
        "one digit is 0.17 percentage points. "
        f"**Reading the step experiment.** After k steps PGD has moved each coordinate at most "
        f"k alpha = k eps / {STEP_ALPHA_DIV} from its random start, while the paper's PQGD "
        f"moves the largest coordinates by b alpha, which is at least eps for b >= "
        f"{STEP_ALPHA_DIV}: the control, whose largest move equals PGD's, tells how much of "
        "the gap is step length. "
        "**Scaling of PQGD.** gfgsm's quantized direction is zeta(b g / ||g||_inf) / b (its "
        "largest coordinate is 1); the paper's step alpha zeta(b g / ||g||_inf) is eps_step = "
        "b alpha here, so with b = 1000 the first step already moves the largest coordinates "
        "to the edge of the eps ball."
    )
    return gfgsm.report.Section(
        key="nn_digits",
        title="Networks on the 8x8 digits: schemes, baselines and PQGD vs PGD",
        claim=("Networks trained with the G-FGSM schemes of docs/theory.md s.6 are compared with "
               "baselines under FGSM, PGD and PQGD; and the seed paper's claim (s.4.4): PQGD "
               "produces a much sharper attack than PGD when the number of steps is small, "
               "the advantage fading as steps increase."),
        verdict=verdict,
        agrees=agrees,
        figures=[
            (str(fig1), "Test accuracy against the attack budget eps, one panel per attack, one "
                        "line per training method; grey bands: 95% t-intervals over restarts; "
                        f"dotted: eps_train = {EPS_TRAIN}."),
            (str(fig2), f"Test accuracy after k steps at eps = {STEP_EPS} (alpha = eps / "
                        f"{STEP_ALPHA_DIV}) for PGD, PQGD (paper's convention) and the "
                        "equal-largest-step control, one panel per training method; grey bands: "
                        f"95% t-intervals over restarts; dotted: k = {list(DECISION_K)}."),
        ],
        tables=tables,
        provenance=s.meta["provenance"],
        notes=notes,
    )


def section(preset: str, results: Path, figures: Path, *, study: Study | None = None,
            executor: str = "processes") -> gfgsm.report.Section:
    """Run/resume the study and build its report section (``study`` replaces :data:`STUDY` in
    tests; any subset of its methods is analysed the same way, the decision needs ``sign``):
    :func:`summarise` the store, then :func:`render` the summaries."""
    study = STUDY if study is None else study
    return gfgsm.report.split_section(summarise, render, study, preset, results, figures,
                                      executor)


section.order = 80  # type: ignore[attr-defined]
section.render = render  # type: ignore[attr-defined]
