"""The PyTorch adapter :mod:`gfgsm.torch`: the same perturbations as the NumPy path (GLMs and
networks of the same weights), per-sample gradients, the G-FGSM loss with the perturbation held
fixed, and the iterative attacks of :mod:`gfgsm.nn.attacks` on torch tensors."""

from __future__ import annotations

import array_api_compat.numpy as np_xp
import numpy as np
import pytest
import torch

import gfgsm
import gfgsm.torch as gt
from gfgsm.families import get_family
from gfgsm.nn.attacks import (
    PQGD,
    AttackTarget,
    FastGradientMethod,
    GLMTarget,
    ProjectedGradientDescent,
)
from gfgsm.schemes import Lq, Power, Quantized, Sign

SCHEMES = [Sign(), Lq(2), Lq(1), Lq(3.0), Power(2.5), Quantized(5)]
BETA = np.array([0.8, -0.5, 0.3, -1.1])
A0 = 0.2

#: torch per-sample losses matching each family's loss up to a factor or a y-only term
TORCH_LOSSES = {
    "binomial": lambda: torch.nn.BCEWithLogitsLoss(reduction="none"),
    "gaussian": lambda: torch.nn.MSELoss(reduction="none"),  # 2 x the gaussian loss
    "poisson": lambda: torch.nn.PoissonNLLLoss(log_input=True, full=False, reduction="none"),
}


def _glm_data(family: str, n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.1, 0.9, size=(n, len(BETA)))
    y = np.asarray(get_family(family).sample(A0 + X @ BETA, rng=rng))
    return X, y


def _linear(beta: np.ndarray = BETA, a: float = A0, dtype=torch.float64) -> torch.nn.Linear:
    lin = torch.nn.Linear(len(beta), 1, dtype=dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(beta[None, :]))
        lin.bias.fill_(a)
    return lin


def test_gfgsm_torch_is_the_adapter_and_imports_the_real_torch():
    assert gt.torch is torch
    assert "gfgsm" not in torch.__file__
    assert gfgsm.torch is gt
    assert isinstance(gt.TorchTarget(_linear(), TORCH_LOSSES["binomial"]()), AttackTarget)


# --- per-sample input gradients ------------------------------------------------------------------


def test_input_gradient_is_each_samples_own_and_touches_nothing():
    X, y = _glm_data("binomial")
    model, loss_fn = _linear(), TORCH_LOSSES["binomial"]()
    x = torch.tensor(X, requires_grad=True)
    yt = torch.tensor(y[:, None])
    g = gt.input_gradient(model, loss_fn, x, yt)
    for i in (0, 7, 39):
        gi = gt.input_gradient(model, loss_fn, x[i : i + 1], yt[i : i + 1])
        torch.testing.assert_close(g[i : i + 1], gi, rtol=0, atol=1e-15)
    mu = 1 / (1 + np.exp(-(A0 + X @ BETA)))
    np.testing.assert_allclose(g.numpy(), (mu - y)[:, None] * BETA, rtol=1e-13, atol=1e-15)
    assert x.grad is None and model.weight.grad is None and model.bias.grad is None
    # a mean-reduced loss gives g / n: the same directions for every scheme
    g_mean = gt.input_gradient(model, torch.nn.BCEWithLogitsLoss(), x, yt)
    torch.testing.assert_close(g_mean * len(X), g, rtol=1e-13, atol=1e-15)
    for scheme in SCHEMES:
        torch.testing.assert_close(
            scheme.direction(g_mean), scheme.direction(g), rtol=0, atol=1e-15
        )


# --- the same perturbations as gfgsm.nn -----------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES, ids=repr)
@pytest.mark.parametrize("family", ["binomial", "gaussian", "poisson"])
@pytest.mark.parametrize("targeted", [False, True])
def test_perturb_equals_the_numpy_fgsm_on_a_glm(scheme, family, targeted):
    X, y = _glm_data(family)
    eps = 0.1
    x_adv = gt.perturb(
        _linear(), TORCH_LOSSES[family](), torch.tensor(X), torch.tensor(y[:, None]), eps,
        scheme, targeted=targeted,
    )
    ref = FastGradientMethod(
        GLMTarget(family, BETA, A0), eps, norm=np.inf, scheme=scheme, targeted=targeted
    ).generate(X, y)
    assert x_adv.dtype == torch.float64 and not x_adv.requires_grad
    np.testing.assert_allclose(x_adv.numpy(), ref, rtol=0, atol=1e-12)


def test_perturb_clips_to_the_box_like_the_numpy_path():
    X, y = _glm_data("binomial")
    x_adv = gt.perturb(
        _linear(), TORCH_LOSSES["binomial"](), torch.tensor(X), torch.tensor(y[:, None]), 0.3,
        clip_min=0.0, clip_max=1.0,
    )
    ref = FastGradientMethod(GLMTarget("binomial", BETA, A0), 0.3, clip_min=0.0, clip_max=1.0)
    np.testing.assert_allclose(x_adv.numpy(), ref.generate(X, y), rtol=0, atol=1e-12)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


class _MLPTarget:
    """A gfgsm.nn network with fixed weights as an AttackTarget (inputs ``(R, n, d)``)."""

    def __init__(self, mlp, params) -> None:
        self.mlp, self.params, self.xp = mlp, params, np_xp

    def input_gradient(self, X, y):
        return self.mlp.input_gradient(self.params, X, y, self.xp)

    def per_sample_loss(self, X, y):
        return self.mlp.loss(self.params, X, y, self.xp)


def _torch_copy(mlp, params, r: int = 0) -> torch.nn.Sequential:
    """The network ``r`` of a gfgsm.nn stack as a torch ``Sequential`` with the same weights."""
    acts = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}
    layers: list[torch.nn.Module] = []
    for layer, (W, b) in enumerate(zip(params.weights, params.biases, strict=True)):
        lin = torch.nn.Linear(W.shape[1], W.shape[2], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(np.asarray(W[r]).T))
            lin.bias.copy_(torch.tensor(np.asarray(b[r])))
        layers.append(lin)
        if layer < len(params.weights) - 1:
            layers.append(acts[mlp.activation.name]())
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("scheme", SCHEMES, ids=repr)
def test_perturb_equals_gfgsm_nn_on_a_network_of_the_same_weights(scheme):
    networks = pytest.importorskip("gfgsm.nn.networks", reason="gfgsm.nn networks not written")
    mlp = networks.MLP(len(BETA), hidden=(7, 5), activation="tanh", output="binomial")
    params = mlp.init([np.random.SeedSequence(3)], np_xp)
    X, y = _glm_data("binomial", n=25)
    ref = FastGradientMethod(_MLPTarget(mlp, params), 0.1, scheme=scheme).generate(
        X[None], y[None]
    )[0]
    model = _torch_copy(mlp, params)
    out = gt.perturb(
        model, TORCH_LOSSES["binomial"](), torch.tensor(X), torch.tensor(y[:, None]), 0.1, scheme
    )
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)


# --- the iterative attacks on torch tensors ------------------------------------------------------


@pytest.mark.parametrize("norm", [np.inf, 2, 1])
def test_torch_target_runs_pgd_and_equals_the_numpy_glm(norm):
    X, y = _glm_data("binomial", n=20)
    target = gt.TorchTarget(_linear(), TORCH_LOSSES["binomial"]())
    kw = {"eps": 0.3, "eps_step": 0.05, "max_iter": 6, "num_random_init": 3, "norm": norm}
    out = ProjectedGradientDescent(target, seed=4, **kw).generate(
        torch.tensor(X), torch.tensor(y[:, None])
    )
    ref = ProjectedGradientDescent(GLMTarget("binomial", BETA, A0), seed=4, **kw).generate(X, y)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)
    pq = PQGD(target, 0.3, 0.1, 5, b=6).generate(torch.tensor(X), torch.tensor(y[:, None]))
    pq_ref = PQGD(GLMTarget("binomial", BETA, A0), 0.3, 0.1, 5, b=6).generate(X, y)
    np.testing.assert_allclose(pq.numpy(), pq_ref, rtol=0, atol=1e-12)


def test_torch_target_needs_per_sample_losses():
    target = gt.TorchTarget(_linear(), torch.nn.BCEWithLogitsLoss())  # mean: not per sample
    X, y = _glm_data("binomial", n=5)
    with pytest.raises(ValueError, match="reduction='none'"):
        target.per_sample_loss(torch.tensor(X), torch.tensor(y[:, None]))


# --- the G-FGSM loss ----------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", [Sign(), Lq(2), Power(3.0), Quantized(4)], ids=repr)
@pytest.mark.parametrize("clean_weight", [0.0, 0.3, 1.0])
def test_gfgsm_loss_of_a_linear_model_is_the_glm_objective(scheme, clean_weight):
    """``Q_n`` of :func:`gfgsm.objective` with the scheme's induced penalty at ``lam = eps``."""
    X, y = _glm_data("binomial")
    eps = 0.2
    crit = gt.GFGSMLoss(
        _linear(), TORCH_LOSSES["binomial"](), eps, scheme, clean_weight=clean_weight
    )
    value = crit(torch.tensor(X), torch.tensor(y[:, None]))
    Q = gfgsm.objective(
        X, y, BETA, A0, family="binomial", method="gfgsm", lam=eps,
        penalty=scheme.induced_penalty, clean_weight=clean_weight,
    )
    assert value.ndim == 0
    np.testing.assert_allclose(value.item(), Q, rtol=1e-13)


@pytest.mark.parametrize("scheme", [Sign(), Lq(2)], ids=repr)
def test_gfgsm_loss_holds_the_perturbation_fixed(scheme):
    X, y = _glm_data("binomial")
    x, yt = torch.tensor(X), torch.tensor(y[:, None])
    alpha, eps = 0.25, 0.2
    model, loss_fn = _linear(), TORCH_LOSSES["binomial"]()
    crit = gt.GFGSMLoss(model, loss_fn, eps, scheme, clean_weight=alpha)
    crit(x, yt).backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    x_adv = gt.perturb(model, loss_fn, x, yt, eps, scheme)  # a constant
    manual = alpha * loss_fn(model(x), yt).mean() + (1 - alpha) * loss_fn(model(x_adv), yt).mean()
    manual.backward()
    for a, b in zip(got, model.parameters(), strict=True):
        torch.testing.assert_close(a, b.grad, rtol=1e-13, atol=1e-15)
    # for the linear model the weight gradient is the GLM score at the fixed x_adv
    mu = lambda z: 1 / (1 + np.exp(-(A0 + z @ BETA)))  # noqa: E731
    Xa = x_adv.numpy()
    score = alpha * ((mu(X) - y) @ X) + (1 - alpha) * ((mu(Xa) - y) @ Xa)
    np.testing.assert_allclose(got[0].numpy()[0], score / len(X), rtol=1e-12)


def test_gfgsm_loss_reductions_and_clean_weight_one():
    X, y = _glm_data("gaussian")
    x, yt = torch.tensor(X), torch.tensor(y[:, None])
    model, loss_fn = _linear(), TORCH_LOSSES["gaussian"]()
    per = gt.GFGSMLoss(model, loss_fn, 0.1, "sign", 0.5, reduction="none")(x, yt)
    assert per.shape == (len(X), 1)
    total = gt.GFGSMLoss(model, loss_fn, 0.1, "sign", 0.5, reduction="sum")(x, yt)
    mean = gt.GFGSMLoss(model, loss_fn, 0.1, "sign", 0.5)(x, yt)
    torch.testing.assert_close(total, per.sum())
    torch.testing.assert_close(mean, per.mean())
    clean = gt.GFGSMLoss(model, loss_fn, 0.1, "sign", 1.0)(x, yt)
    torch.testing.assert_close(clean, loss_fn(model(x), yt).mean())
    assert "clean_weight=0.5" in repr(gt.GFGSMLoss(model, loss_fn, 0.1, "sign", 0.5))


def test_gfgsm_loss_trains_a_model():
    X, y = _glm_data("binomial", n=200)
    x, yt = torch.tensor(X), torch.tensor(y[:, None])
    model = _linear(np.zeros(len(BETA)), 0.0)
    crit = gt.GFGSMLoss(model, TORCH_LOSSES["binomial"](), 0.05, Lq(2), 0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    values = []
    for _ in range(30):
        opt.zero_grad()
        loss = crit(x, yt)
        loss.backward()
        opt.step()
        values.append(loss.item())
    assert values[-1] < values[0]


# --- shapes, dtypes, copies, checks -------------------------------------------------------------


def test_eps_zero_and_inputs_untouched():
    X, y = _glm_data("binomial")
    x = torch.tensor(X, requires_grad=True)
    before = x.detach().clone()
    model, loss_fn = _linear(), TORCH_LOSSES["binomial"]()
    same = gt.perturb(model, loss_fn, x, torch.tensor(y[:, None]), 0.0)
    torch.testing.assert_close(same, before, rtol=0, atol=0)
    assert same.data_ptr() != x.data_ptr() and not same.requires_grad
    out = gt.perturb(model, loss_fn, x, torch.tensor(y[:, None]), 0.3, Quantized(3))
    torch.testing.assert_close(x.detach(), before, rtol=0, atol=0)
    assert out.data_ptr() != x.data_ptr() and x.grad is None
    gt.GFGSMLoss(model, loss_fn, 0.3)(x, torch.tensor(y[:, None]))
    torch.testing.assert_close(x.detach(), before, rtol=0, atol=0)


def test_image_shaped_inputs_use_each_samples_whole_gradient():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, dtype=torch.float64), torch.nn.Tanh(), torch.nn.Flatten(),
        torch.nn.Linear(3 * 4 * 4, 5, dtype=torch.float64),
    )
    x = torch.rand(6, 2, 6, 6, dtype=torch.float64)
    yt = torch.randint(0, 5, (6,))
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
    for scheme in SCHEMES:
        out = gt.perturb(model, loss_fn, x, yt, 0.1, scheme)
        for i in (0, 5):
            alone = gt.perturb(model, loss_fn, x[i : i + 1], yt[i : i + 1], 0.1, scheme)
            torch.testing.assert_close(out[i : i + 1], alone, rtol=0, atol=1e-13)
        d = (out - x).reshape(6, -1) / 0.1
        norms = torch.linalg.vector_norm(d, ord=scheme.norm_q, dim=1)
        assert torch.all(norms <= 1 + 1e-12) and torch.all(norms > 0.99)  # whole-sample ball


def test_sample_dims_two_treats_replications_separately():
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(3, 10, len(BETA)))
    y = (rng.uniform(size=(3, 10, 1)) < 0.5).astype(float)
    model, loss_fn = _linear(), TORCH_LOSSES["binomial"]()
    out = gt.perturb(model, loss_fn, torch.tensor(X), torch.tensor(y), 0.1, Lq(3.0), sample_dims=2)
    for r in range(3):
        alone = gt.perturb(model, loss_fn, torch.tensor(X[r]), torch.tensor(y[r]), 0.1, Lq(3.0))
        torch.testing.assert_close(out[r], alone, rtol=0, atol=1e-15)


def test_float32_models_keep_float32():
    X, y = _glm_data("binomial")
    model = _linear(dtype=torch.float32)
    out = gt.perturb(
        model, TORCH_LOSSES["binomial"](), torch.tensor(X, dtype=torch.float32),
        torch.tensor(y[:, None], dtype=torch.float32), 0.1, Quantized(4),
    )
    assert out.dtype == torch.float32


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m, f, x, y: gt.perturb(m, f, x, y, -1.0), "eps must be"),
        (lambda m, f, x, y: gt.perturb(m, f, x, y, 0.1, "nope"), "unknown scheme"),
        (lambda m, f, x, y: gt.perturb(m, f, x, y, 0.1, sample_dims=2), "no feature axes"),
        (lambda m, f, x, y: gt.perturb(m, f, x, y, 0.1, sample_dims=-1), "sample_dims"),
        (lambda m, f, x, y: gt.perturb(m, f, x, y, 0.1, clip_min=1, clip_max=0), "clip_min"),
        (lambda m, f, x, y: gt.GFGSMLoss(m, f, 0.1, clean_weight=1.5), "clean_weight"),
        (lambda m, f, x, y: gt.GFGSMLoss(m, f, 0.1, reduction="avg"), "reduction"),
    ],
)
def test_parameter_checks(call, match):
    X, y = _glm_data("binomial", n=5)
    with pytest.raises(ValueError, match=match):
        call(_linear(), TORCH_LOSSES["binomial"](), torch.tensor(X), torch.tensor(y[:, None]))
