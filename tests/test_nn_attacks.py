"""Attacks of :mod:`gfgsm.nn.attacks`: closed forms on GLMs, exact worst cases, the budget after
every step, restarts, targeted attacks, per-sample batching, parameter checks, portability."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gfgsm._backend import asarray, get_namespace, namespace_name, to_numpy
from gfgsm.families import get_family
from gfgsm.nn.attacks import (
    PQGD,
    AttackTarget,
    BasicIterativeMethod,
    FastGradientMethod,
    GLMTarget,
    IterativeFGSM,
    ProjectedGradientDescent,
    ProjectedQuantizedGradientDescent,
    project_perturbation,
    random_perturbation,
)
from gfgsm.schemes import Lq, Power, Quantized, Sign

SCHEMES = [Sign(), Lq(2), Lq(1), Lq(3.0), Power(2.5), Quantized(5)]
FAMILIES = ["binomial", "gaussian", "poisson"]
BETA = np.array([0.8, -0.5, 0.3, -1.1])


def _glm_data(family: str, n: int = 30, d: int = 4, R: int | None = None, seed: int = 0):
    """``X`` ``(n, d)`` (or ``(R, n, d)``) in (0, 1) and ``y`` drawn from the GLM with ``BETA``."""
    rng = np.random.default_rng(seed)
    shape = (n, d) if R is None else (R, n, d)
    X = rng.uniform(0.1, 0.9, size=shape)
    eta = 0.2 + X @ BETA[:d]
    y = to_numpy(get_family(family).sample(eta, rng=rng))
    return X, y


class WavyTarget:
    """A non-convex target: ``l(x, y) = sum_k w_k sin(a_k' x + c_k + y)``, any namespace."""

    def __init__(self, d: int, k: int = 6, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.A = rng.standard_normal((k, d)) * 3.0
        self.c = rng.uniform(0, 2 * np.pi, size=k)
        self.w = rng.uniform(0.5, 1.5, size=k)

    def _z(self, X, y):
        xp = get_namespace(X)
        A, c = asarray(self.A, xp), asarray(self.c, xp)
        return xp, X @ A.T + c + xp.expand_dims(asarray(y, xp), axis=-1)

    def input_gradient(self, X, y):
        xp, z = self._z(X, y)
        return (xp.cos(z) * asarray(self.w, xp)) @ asarray(self.A, xp)

    def per_sample_loss(self, X, y):
        xp, z = self._z(X, y)
        return xp.sum(xp.sin(z) * asarray(self.w, xp), axis=-1)


class ExplodingTarget:
    """A target that must not be called."""

    def input_gradient(self, X, y):
        raise AssertionError("the target was called")

    def per_sample_loss(self, X, y):
        raise AssertionError("the target was called")


class MutatingTarget(WavyTarget):
    """A badly behaved target that writes into its input."""

    def input_gradient(self, X, y):
        g = super().input_gradient(X, y)
        X[...] = 1e6
        return g


def _norm(delta: np.ndarray, norm: float) -> np.ndarray:
    return np.linalg.norm(delta, ord=norm, axis=-1)


# --- the GLM target ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_glm_target_gradient_is_the_derivative_of_its_loss(family):
    X, y = _glm_data(family, n=7)
    t = GLMTarget(family, BETA, 0.2)
    assert isinstance(t, AttackTarget)
    g = t.input_gradient(X, y)
    h = 1e-6
    for j in range(X.shape[1]):
        e = np.zeros(X.shape[1])
        e[j] = h
        fd = (t.per_sample_loss(X + e, y) - t.per_sample_loss(X - e, y)) / (2 * h)
        np.testing.assert_allclose(g[:, j], fd, rtol=1e-6, atol=1e-8)
    # (mu - y) beta, docs/theory.md s.2
    mu = get_family(family).mean(0.2 + X @ BETA)
    np.testing.assert_allclose(g, (mu - y)[:, None] * BETA, rtol=1e-14, atol=1e-15)


def test_glm_target_batched_coefficients_act_per_replication():
    X, y = _glm_data("binomial", R=3)
    coef = np.stack([BETA, -BETA, 2 * BETA])
    a = np.array([0.1, -0.2, 0.0])
    t = GLMTarget("binomial", coef, a)
    g, loss = t.input_gradient(X, y), t.per_sample_loss(X, y)
    assert g.shape == X.shape and loss.shape == y.shape
    for r in range(3):
        tr = GLMTarget("binomial", coef[r], a[r])
        np.testing.assert_array_equal(g[r], tr.input_gradient(X[r], y[r]))
        np.testing.assert_array_equal(loss[r], tr.per_sample_loss(X[r], y[r]))


def test_glm_target_checks_shapes():
    with pytest.raises(ValueError, match="coef must have shape"):
        GLMTarget("binomial", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="intercept must be a scalar"):
        GLMTarget("binomial", np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        GLMTarget("binomial", [1.0, np.nan])
    with pytest.raises(ValueError, match="features"):
        GLMTarget("binomial", BETA).input_gradient(np.zeros((2, 3)), np.zeros(2))


# --- FGSM closed forms ------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_fgsm_linf_on_a_glm_is_the_closed_form(family):
    """``x_adv = x - eps s sign(beta)``, ``s = sign(y - mu)`` (docs/theory.md s.2), bit for bit."""
    X, y = _glm_data(family)
    fam = get_family(family)
    eps = 0.3
    x_adv = FastGradientMethod(GLMTarget(family, BETA, 0.2), eps).generate(X, y)
    s = fam.residual_sign(y, 0.2 + X @ BETA)
    np.testing.assert_array_equal(x_adv, X - eps * s[:, None] * np.sign(BETA))
    # and the linear predictor moves by exactly -s eps ||beta||_1
    np.testing.assert_allclose(
        x_adv @ BETA - X @ BETA, -s * eps * np.abs(BETA).sum(), rtol=0, atol=1e-14
    )


@pytest.mark.parametrize("scheme", SCHEMES, ids=repr)
@pytest.mark.parametrize("family", ["binomial", "gaussian"])
def test_fgsm_shift_of_eta_is_the_scheme_induced_penalty(scheme, family):
    """``x_adv' beta - x' beta = -s eps P(beta)`` with ``P`` the scheme's induced penalty."""
    X, y = _glm_data(family)
    eps = 0.05
    norm = scheme.norm_q if scheme.norm_q in (1.0, 2.0) else np.inf
    x_adv = FastGradientMethod(GLMTarget(family, BETA), eps, norm=norm, scheme=scheme).generate(
        X, y
    )
    s = get_family(family).residual_sign(y, X @ BETA)
    P = float(scheme.induced_penalty.value(BETA[None, :], 1.0)[0])
    np.testing.assert_allclose(x_adv @ BETA - X @ BETA, -s * eps * P, rtol=0, atol=1e-13)


@pytest.mark.parametrize("family", ["binomial", "gaussian"])
@pytest.mark.parametrize("norm", [np.inf, 2, 1])
def test_pgd_reaches_the_exact_worst_case_of_a_convex_glm(family, norm):
    """For a GLM the worst case over the ball is ``x - eps s d*(beta)``: the l_inf corner (brute
    force over all 2^d corners), ``beta / ||beta||_2``, or the largest coordinate for l1."""
    X, y = _glm_data(family, n=12)
    t = GLMTarget(family, BETA, 0.2)
    eps = 0.4
    pgd = ProjectedGradientDescent(t, eps, eps_step=eps / 3.5, max_iter=8, norm=norm)
    x_adv = pgd.generate(X, y)
    s = get_family(family).residual_sign(y, 0.2 + X @ BETA)[:, None]
    if norm == np.inf:
        corners = np.array(list(itertools.product([-1.0, 1.0], repeat=X.shape[1])))
        cand = X[:, None, :] + eps * corners[None, :, :]  # (n, 2^d, d)
        losses = t.per_sample_loss(cand, np.repeat(y[:, None], len(corners), axis=1))
        best = cand[np.arange(len(X)), np.argmax(losses, axis=1)]
        np.testing.assert_array_equal(x_adv, best)
        np.testing.assert_allclose(t.per_sample_loss(x_adv, y), losses.max(axis=1), rtol=1e-15)
    elif norm == 2:
        np.testing.assert_allclose(
            x_adv, X - eps * s * BETA / np.linalg.norm(BETA), rtol=0, atol=1e-14
        )
    else:
        e = np.zeros_like(BETA)
        j = np.argmax(np.abs(BETA))
        e[j] = np.sign(BETA[j])
        np.testing.assert_allclose(x_adv, X - eps * s * e, rtol=0, atol=1e-14)


# --- the budget, eps = 0, no in-place changes ------------------------------------------------


@st.composite
def _attack_cases(draw):
    d = draw(st.integers(1, 5))
    n = draw(st.integers(1, 4))
    norm = draw(st.sampled_from([np.inf, 2, 1]))
    eps = draw(st.floats(1e-3, 2.0))
    eps_step = draw(st.floats(1e-3, 3.0))
    max_iter = draw(st.integers(1, 5))
    restarts = draw(st.integers(0, 2))
    targeted = draw(st.booleans())
    box = draw(st.booleans())
    scheme = draw(
        st.sampled_from([None, Sign(), Lq(2), Lq(1), Power(3.0), Quantized(3), Quantized(50)])
    )
    seed = draw(st.integers(0, 2**16))
    return d, n, norm, eps, eps_step, max_iter, restarts, targeted, box, scheme, seed


@settings(max_examples=80, deadline=None)
@given(_attack_cases())
def test_every_iterate_respects_the_budget_and_the_box(case):
    d, n, norm, eps, eps_step, max_iter, restarts, targeted, box, scheme, seed = case
    rng = np.random.default_rng(seed)
    lo, hi = (-0.5, 1.0) if box else (None, None)
    X = rng.uniform(-0.5, 1.0, size=(n, d))
    y = rng.standard_normal(n)
    target = WavyTarget(d, seed=seed)
    pgd = ProjectedGradientDescent(
        target, eps, eps_step, max_iter, num_random_init=restarts, norm=norm,
        targeted=targeted, clip_min=lo, clip_max=hi, scheme=scheme, seed=seed,
    )
    seen = []

    def check(restart, step, x_adv):
        seen.append((restart, step))
        assert np.all(_norm(x_adv - X, norm) <= eps + 1e-12)
        if box:
            assert np.all((x_adv >= lo) & (x_adv <= hi))

    x_adv = pgd.generate(X, y, callback=check)
    check(-1, -1, x_adv)
    runs = max(1, restarts)
    assert seen[:-1] == [(r, s) for r in range(runs) for s in range(max_iter + 1)]
    fgsm = FastGradientMethod(
        target, eps, norm=norm, targeted=targeted, clip_min=lo, clip_max=hi, scheme=scheme
    )
    check(-1, -1, fgsm.generate(X, y))


ATTACKS = [
    lambda t, eps: FastGradientMethod(t, eps),
    lambda t, eps: FastGradientMethod(t, eps, norm=1, clip_min=-1.0, clip_max=2.0),
    lambda t, eps: ProjectedGradientDescent(t, eps, 0.05, 4, num_random_init=2, seed=0),
    lambda t, eps: ProjectedGradientDescent(t, eps, 0.05, 4, norm=2, targeted=True),
    lambda t, eps: BasicIterativeMethod(t, eps, 0.05, 3, norm=1),
    lambda t, eps: ProjectedQuantizedGradientDescent(t, eps, 0.05, 3, b=8, num_random_init=2),
]


@pytest.mark.parametrize("make", ATTACKS)
def test_eps_zero_returns_an_exact_copy_without_calling_the_model(make):
    X, y = _glm_data("binomial")
    out = make(ExplodingTarget(), 0.0).generate(X, y)
    np.testing.assert_array_equal(out, X)
    assert out.dtype == X.dtype and not np.shares_memory(out, X)


@pytest.mark.parametrize("make", ATTACKS)
@pytest.mark.parametrize("target_cls", [WavyTarget, MutatingTarget])
def test_inputs_are_never_modified(make, target_cls):
    X, y = _glm_data("binomial")
    X0, y0 = X.copy(), y.copy()
    out = make(target_cls(X.shape[-1]), 0.2).generate(X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    assert not np.shares_memory(out, X)


def test_float32_inputs_keep_their_dtype():
    X, y = _glm_data("binomial")
    out = ProjectedGradientDescent(GLMTarget("binomial", BETA), 0.1, 0.05, 3).generate(
        X.astype(np.float32), y
    )
    assert out.dtype == np.float32
    assert FastGradientMethod(GLMTarget("binomial", BETA), 0.1).generate(X.tolist(), y).dtype == (
        np.float64
    )


# --- projections and random starts ------------------------------------------------------------


def _l1_projection_by_bisection(v: np.ndarray, eps: float) -> np.ndarray:
    """Reference: soft-threshold at the theta with ||w||_1 = eps, found by bisection."""
    out = v.copy()
    for i, row in enumerate(v):
        a = np.abs(row)
        if a.sum() <= eps:
            continue
        lo, hi = 0.0, a.max()
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if np.maximum(a - mid, 0).sum() > eps else (lo, mid)
        out[i] = np.sign(row) * np.maximum(a - (lo + hi) / 2, 0)
    return out


@pytest.mark.parametrize("d", [1, 2, 5, 20])
def test_l1_projection_is_exact(d):
    rng = np.random.default_rng(d)
    v = rng.standard_normal((200, d)) * rng.uniform(0, 3, size=(200, 1))
    v[:3, :] = 0.0
    if d > 1:
        v[3, :2] = 1.0  # ties
    eps = 1.0
    w = project_perturbation(v, eps, 1)
    np.testing.assert_allclose(w, _l1_projection_by_bisection(v, eps), rtol=0, atol=1e-12)
    assert np.all(np.abs(w).sum(-1) <= eps + 1e-12)
    inside = np.abs(v).sum(-1) <= eps
    np.testing.assert_array_equal(w[inside], v[inside])
    # no feasible point is closer: compare with random points of the ball
    z = random_perturbation((200, d), eps, 1, rng)
    assert np.all(np.linalg.norm(w - v, axis=-1) <= np.linalg.norm(z - v, axis=-1) + 1e-12)


@pytest.mark.parametrize("norm", [np.inf, 2, 1])
def test_projection_is_idempotent_and_feasible(norm):
    rng = np.random.default_rng(1)
    v = rng.standard_normal((100, 6)) * 2
    w = project_perturbation(v, 0.7, norm)
    assert np.all(_norm(w, norm) <= 0.7 + 1e-12)
    np.testing.assert_allclose(project_perturbation(w, 0.7, norm), w, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(project_perturbation(v, 0.0, norm), np.zeros_like(v))
    assert not np.shares_memory(w, v)


@pytest.mark.parametrize("norm", [np.inf, 2, 1])
def test_random_starts_fill_the_ball_uniformly(norm):
    """Inside the ball, with ``E||delta|| = eps d / (d + 1)`` (uniform in a d-dim ball)."""
    d, eps = 3, 0.5
    delta = random_perturbation((20000, d), eps, norm, np.random.default_rng(0))
    r = _norm(delta, norm)
    assert np.all(r <= eps + 1e-12)
    assert abs(r.mean() / eps - d / (d + 1)) < 0.01
    assert abs(delta.mean()) < 0.01


# --- PQGD, targeted attacks, restarts ---------------------------------------------------------


@pytest.mark.parametrize("restarts", [0, 3])
def test_pqgd_with_b_1_is_pgd(restarts):
    X, y = _glm_data("poisson")
    t = WavyTarget(X.shape[-1])
    kw = {"eps": 0.3, "eps_step": 0.07, "max_iter": 6, "num_random_init": restarts, "seed": 5}
    a = PQGD(t, b=1, **kw).generate(X, y)
    b = ProjectedGradientDescent(t, **kw).generate(X, y)
    np.testing.assert_array_equal(a, b)
    assert PQGD is ProjectedQuantizedGradientDescent and IterativeFGSM is BasicIterativeMethod


def test_pqgd_step_is_the_papers_quantized_gradient():
    """One step is ``alpha zeta(b g / ||g||_inf)`` (paper eqs. 4, 7), ``alpha = eps_step / b``."""
    X, y = _glm_data("binomial", n=50, d=4)
    t = WavyTarget(4)
    b, eps_step = 6, 0.12
    x1 = PQGD(t, eps=10.0, eps_step=eps_step, max_iter=1, b=b).generate(X, y)
    g = t.input_gradient(X, y)
    v = b * g / np.abs(g).max(axis=-1, keepdims=True)
    zeta = np.where(np.abs(v) < 1, np.sign(v), np.round(v))
    np.testing.assert_allclose(x1, X + (eps_step / b) * zeta, rtol=0, atol=1e-15)
    assert len(np.unique(np.abs(np.round((x1 - X) * b / eps_step)))) > 2  # not just sign


def test_targeted_fgsm_steps_the_other_way():
    X, y = _glm_data("binomial")
    t = GLMTarget("binomial", BETA, 0.2)
    up = FastGradientMethod(t, 0.1).generate(X, y)
    down = FastGradientMethod(t, 0.1, targeted=True).generate(X, y)
    np.testing.assert_allclose(up - X, -(down - X), rtol=0, atol=1e-15)


@pytest.mark.parametrize("norm", [np.inf, 2])
def test_targeted_pgd_descends_the_target_loss_and_untargeted_ascends(norm):
    X, y = _glm_data("binomial")
    t = GLMTarget("binomial", BETA, 0.2)
    y_target = 1.0 - y
    losses = []
    pgd = ProjectedGradientDescent(t, 0.5, 0.05, 10, norm=norm, targeted=True)
    pgd.generate(
        X, y_target, callback=lambda r, s, x: losses.append(t.per_sample_loss(x, y_target))
    )
    assert np.all(np.diff(np.array(losses), axis=0) < 0)
    losses = []
    pgd = ProjectedGradientDescent(t, 0.5, 0.05, 10, norm=norm)
    pgd.generate(X, y, callback=lambda r, s, x: losses.append(t.per_sample_loss(x, y)))
    assert np.all(np.diff(np.array(losses), axis=0) > 0)


@pytest.mark.parametrize("targeted", [False, True])
def test_restarts_keep_the_worst_restart_per_sample(targeted):
    X, y = _glm_data("gaussian", n=40, d=3)
    t = WavyTarget(3)
    finals = []
    pgd = ProjectedGradientDescent(
        t, 0.8, 0.1, 5, num_random_init=6, targeted=targeted, seed=3
    )
    x_adv = pgd.generate(
        X, y, callback=lambda r, s, x: finals.append(x.copy()) if s == 5 else None
    )
    finals = np.array(finals)  # (6, n, d)
    losses = np.array([t.per_sample_loss(f, y) for f in finals])  # (6, n)
    pick = np.argmin(losses, axis=0) if targeted else np.argmax(losses, axis=0)
    np.testing.assert_array_equal(x_adv, finals[pick, np.arange(len(X))])
    assert len(np.unique(pick)) > 1  # the choice is made per sample, not per batch
    # same seed, same attack; the generator then moves on
    again = ProjectedGradientDescent(t, 0.8, 0.1, 5, num_random_init=6, targeted=targeted, seed=3)
    np.testing.assert_array_equal(again.generate(X, y), x_adv)
    assert not np.array_equal(again.generate(X, y), x_adv)


# --- per-sample gradients (docs/theory.md s.6) -------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES, ids=repr)
def test_attacking_a_batch_equals_attacking_each_sample(scheme):
    X, y = _glm_data("binomial", R=3, n=8)
    coef = np.stack([BETA, -0.5 * BETA, BETA[::-1]])
    t = GLMTarget("binomial", coef, np.array([0.1, 0.0, -0.3]))
    t_wavy = WavyTarget(X.shape[-1])
    for target in (t, t_wavy):
        attacks = [
            FastGradientMethod(target, 0.2, scheme=scheme),
            BasicIterativeMethod(target, 0.3, 0.07, 5, scheme=scheme),
        ]
        for attack in attacks:
            batch = attack.generate(X, y)
            for r in range(3):
                tr = (
                    GLMTarget("binomial", coef[r], t.intercept[r]) if target is t else target
                )
                attack.target = tr
                one_by_one = np.stack(
                    [attack.generate(X[r, i : i + 1], y[r, i : i + 1])[0] for i in range(8)]
                )
                attack.target = target
                # equal to rounding (a BLAS product may round differently on other shapes)
                np.testing.assert_allclose(batch[r], one_by_one, rtol=0, atol=1e-13)


@pytest.mark.parametrize("scheme", SCHEMES, ids=repr)
def test_a_mean_loss_gives_the_same_directions(scheme):
    """The input gradient of a *mean* loss is each sample's own gradient over ``n``: every
    scheme normalises each sample by its own gradient and ignores the factor."""
    X, y = _glm_data("binomial", n=40)
    g = GLMTarget("binomial", BETA, 0.2).input_gradient(X, y)
    np.testing.assert_allclose(
        scheme.direction(g / len(X)), scheme.direction(g), rtol=0, atol=1e-15
    )


def test_batch_normalised_quantization_differs_from_per_sample():
    """Normalising by a statistic of the whole batch (the batch's largest gradient entry, as a
    batch-level quantizer would) changes the directions: per-sample gradients matter there."""
    X, y = _glm_data("binomial", n=40)
    g = GLMTarget("binomial", BETA, 0.2).input_gradient(X, y)
    b = 8
    per_sample = Quantized(b).direction(g)
    v = b * g / np.abs(g).max()  # one M for the whole batch
    batch = np.where(np.abs(v) < 1, np.sign(v), np.round(v)) / b
    assert not np.allclose(per_sample, batch)


# --- checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eps": -0.1}, "eps must be a finite nonnegative"),
        ({"eps": math.nan}, "eps must be a finite nonnegative"),
        ({"eps": True}, "eps must be a finite nonnegative"),
        ({"eps_step": 0.0}, "eps_step must be a finite positive"),
        ({"eps_step": math.inf}, "eps_step must be a finite positive"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1"),
        ({"max_iter": 2.5}, "max_iter must be an integer >= 1"),
        ({"num_random_init": -1}, "num_random_init must be an integer >= 0"),
        ({"norm": 3}, "norm must be 1, 2"),
        ({"norm": "l2"}, "norm must be 1, 2"),
        ({"targeted": 1}, "targeted must be a bool"),
        ({"clip_min": 1.0, "clip_max": 0.0}, "clip_min must be smaller than clip_max"),
        ({"clip_min": 1.0, "clip_max": 1.0}, "clip_min must be smaller than clip_max"),
        ({"clip_min": "0"}, "clip_min must be None or a real"),
        ({"scheme": "nope"}, "unknown scheme"),
    ],
)
def test_parameter_checks(kwargs, match):
    base = {"eps": 0.1, "eps_step": 0.01, "max_iter": 3}
    with pytest.raises(ValueError, match=match):
        ProjectedGradientDescent(GLMTarget("binomial", BETA), **{**base, **kwargs})


def test_boundary_checks():
    X, y = _glm_data("binomial")
    with pytest.raises(TypeError, match="input_gradient"):
        FastGradientMethod(object(), 0.1)
    with pytest.raises(ValueError, match="positive integer"):
        PQGD(GLMTarget("binomial", BETA), 0.1, 0.01, b=0)
    with pytest.raises(ValueError, match=r"x must lie in \[clip_min, clip_max\]"):
        FastGradientMethod(GLMTarget("binomial", BETA), 0.1, clip_min=0.5).generate(X, y)
    with pytest.raises(ValueError, match="y is required"):
        FastGradientMethod(GLMTarget("binomial", BETA), 0.1).generate(X, None)
    # ART spellings
    assert FastGradientMethod(GLMTarget("binomial", BETA), 0.1, norm="inf").norm == math.inf
    assert "eps_step=0.01" in repr(PQGD(GLMTarget("binomial", BETA), 0.1, 0.01, b=3))


class BroadcastingTarget(WavyTarget):
    """Breaks the protocol: two networks on shared inputs, shapes (2, n, d) and (2, n)."""

    def input_gradient(self, X, y):
        return np.stack([super().input_gradient(X, y)] * 2)

    def per_sample_loss(self, X, y):
        return np.stack([super().per_sample_loss(X, y)] * 2)


class WrongLossShapeTarget(WavyTarget):
    def per_sample_loss(self, X, y):
        return super().per_sample_loss(X, y)[None]


def test_targets_breaking_the_shape_contract_are_reported():
    X, y = _glm_data("binomial", n=5)
    with pytest.raises(ValueError, match=r"input_gradient returned shape \(2, 5, 4\)"):
        FastGradientMethod(BroadcastingTarget(4), 0.1).generate(X, y)
    with pytest.raises(ValueError, match=r"per_sample_loss returned shape \(1, 5\)"):
        ProjectedGradientDescent(WrongLossShapeTarget(4), 0.1, 0.1, 1, 2).generate(X, y)


def test_a_scheme_outside_the_norm_ball_is_projected():
    """Sign steps under ``norm=2``: the sign vector is rescaled onto the l2 sphere."""
    X, y = _glm_data("binomial")
    t = GLMTarget("binomial", BETA, 0.2)
    out = FastGradientMethod(t, 0.1, norm=2, scheme="sign").generate(X, y)
    sgn = np.sign(t.input_gradient(X, y))
    np.testing.assert_allclose(out, X + 0.1 * sgn / 2.0, rtol=0, atol=1e-15)  # ||sign||_2 = 2


# --- portability ------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", [np.inf, 2, 1])
def test_attacks_run_on_array_api_strict_and_equal_numpy(xp, norm):
    X, y = _glm_data("binomial", R=2, n=10)
    Xx, yx = xp.asarray(X), xp.asarray(y)
    coef = np.stack([BETA, -BETA])
    targets = [GLMTarget("binomial", coef, np.array([0.2, -0.1])), WavyTarget(X.shape[-1])]
    for t in targets:
        attacks = [
            FastGradientMethod(t, 0.2, norm=norm, clip_min=0.0, clip_max=1.0),
            ProjectedGradientDescent(t, 0.3, 0.05, 4, num_random_init=2, norm=norm, seed=1),
            ProjectedGradientDescent(t, 0.3, 0.05, 4, norm=norm, scheme=Power(2.0), targeted=True),
        ]
        if norm == np.inf:
            attacks.append(PQGD(t, 0.3, 0.1, 4, b=7, num_random_init=2, seed=2))
        for attack in attacks:
            rng_state = attack.rng.bit_generator.state if hasattr(attack, "rng") else None
            out = attack.generate(Xx, yx)
            assert namespace_name(get_namespace(out)) == namespace_name(xp)
            if rng_state is not None:
                attack.rng.bit_generator.state = rng_state
            ref = attack.generate(X, y)
            np.testing.assert_allclose(to_numpy(out), ref, rtol=0, atol=1e-12)



@pytest.mark.parametrize(("attack", "norm"), [("pgd", np.inf), ("pgd", 2), ("pgd", 1),
                                              ("pqgd", np.inf)])
def test_per_network_seeds_make_each_network_attacked_as_if_alone(norm, attack):
    """With one seed per network, network r's random starts (and so its whole attack, two
    restarts here) are those it gets when attacked by itself with seed r: a batch of
    replications does not couple them (docs/theory.md s.6)."""
    X, y = _glm_data("binomial", R=3)
    coef = np.stack([BETA, -BETA, 2 * BETA])
    a = np.array([0.1, -0.2, 0.0])
    seeds = [np.random.SeedSequence(5, spawn_key=(r,)) for r in range(3)]

    def make(target, seed):
        if attack == "pgd":
            return ProjectedGradientDescent(target, 0.3, 0.05, max_iter=4, num_random_init=2,
                                            norm=norm, seed=seed)
        return ProjectedQuantizedGradientDescent(target, 0.3, 0.05, max_iter=4, b=10,
                                                 num_random_init=2, seed=seed)

    batch = make(GLMTarget("binomial", coef, a), seeds).generate(X, y)
    for r in range(3):
        alone = make(GLMTarget("binomial", coef[r : r + 1], a[r : r + 1]), seeds[r])
        np.testing.assert_array_equal(batch[r], alone.generate(X[r : r + 1], y[r : r + 1])[0])
    # a single generator for the batch draws different starts (the coupling the list avoids)
    coupled = make(GLMTarget("binomial", coef, a), seeds[0]).generate(X, y)
    assert not np.array_equal(coupled[1], batch[1])


def test_per_network_seeds_must_match_the_batch():
    X, y = _glm_data("binomial", R=3)
    t = GLMTarget("binomial", np.stack([BETA] * 3), np.zeros(3))
    atk = ProjectedGradientDescent(t, 0.3, 0.05, max_iter=2, num_random_init=1, seed=[1, 2])
    with pytest.raises(ValueError, match="2 per-network seeds need inputs of shape"):
        atk.generate(X, y)
    with pytest.raises(ValueError, match="must not be empty"):
        ProjectedGradientDescent(t, 0.3, 0.05, seed=[])
