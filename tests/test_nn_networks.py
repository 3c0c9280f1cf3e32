"""Batched networks (gfgsm.nn.networks): backpropagation against central finite differences,
the GLM special case, and the two per-sample-gradient facts of docs/theory.md s.6.

* the input gradient of a *mean* loss over a batch of ``B`` samples is each sample's own
  gradient ``g_i`` divided by ``B``, and every scheme (sign first) ignores the factor;
* replications batched together stay independent: changing replication ``r``'s data or weights
  leaves replication ``s``'s gradients bitwise unchanged.

Array-level tests run on NumPy and on ``array_api_strict`` through the ``xp`` fixture.
"""

from __future__ import annotations

import math

import array_api_compat.numpy as np_xp
import numpy as np
import pytest

from gfgsm._backend import to_numpy
from gfgsm.families import get_family
from gfgsm.nn.networks import (
    MLP,
    FamilyOutput,
    Params,
    SoftmaxOutput,
    get_activation,
    get_output,
)
from gfgsm.schemes import Lq, Power, Quantized, Sign

ACTIVATIONS = ["relu", "tanh", "sigmoid", "softplus"]
OUTPUTS = ["gaussian", "binomial", "poisson", "softmax"]


def _targets(out, shape, rng):
    """Targets of the right support for an output layer."""
    if out == "gaussian":
        return rng.standard_normal(shape)
    if out == "binomial":
        return (rng.random(shape) < 0.5).astype(float)
    if out == "poisson":
        return rng.poisson(1.5, shape).astype(float)
    return rng.integers(0, 3, shape).astype(float)


def _net(d, hidden, activation, out):
    return MLP(d, hidden, activation, get_output(out, n_classes=3))


def _params(net, R, seed, xp, scale=1.0):
    seeds = [np.random.SeedSequence(seed, spawn_key=(r,)) for r in range(R)]
    p = net.init(seeds, xp)
    return Params.from_arrays([scale * a for a in p.arrays()])


def _setup(xp, hidden, activation, out, shared, R=3, n=7, d=4, seed=0):
    rng = np.random.default_rng(seed)
    net = _net(d, hidden, activation, out)
    # Poisson: small weights keep exp(eta) moderate so the differences are well conditioned.
    params = _params(net, R, seed, xp, scale=0.5 if out == "poisson" else 1.0)
    X = rng.standard_normal((n, d) if shared else (R, n, d))
    y = _targets(out, (n,) if shared else (R, n), rng)
    return net, params, xp.asarray(X), xp.asarray(y)


# --------------------------------------------------------------------------------------------
# backpropagation against finite differences (float64)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("out", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("hidden", [(), (5,), (4, 3)], ids=["glm", "h5", "h4-3"])
def test_parameter_gradient_matches_central_differences(hidden, activation, out):
    xp = np_xp
    net, params, X, y = _setup(xp, hidden, activation, out, shared=False)
    rng = np.random.default_rng(1)
    w = xp.asarray(rng.random(y.shape))  # arbitrary per-sample weights
    val, grad = net.value_and_grad(params, X, y, w, xp)
    theta = params.flatten(xp)
    g = np.asarray(grad.flatten(xp))
    h = 1e-6
    fd = np.empty_like(g)
    for j in range(theta.shape[1]):
        # Coordinate j of all R networks at once: the networks are independent.
        e = np.zeros(theta.shape[1])
        e[j] = h
        up = params.unflatten(theta + xp.asarray(e), xp)
        dn = params.unflatten(theta - xp.asarray(e), xp)
        fu = xp.sum(net.loss(up, X, y, xp) * w, axis=-1)
        fdn = xp.sum(net.loss(dn, X, y, xp) * w, axis=-1)
        fd[:, j] = (np.asarray(fu) - np.asarray(fdn)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        np.asarray(val), np.sum(np.asarray(net.loss(params, X, y, xp)) * np.asarray(w), -1)
    )


@pytest.mark.parametrize("out", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shared", [True, False], ids=["shared-X", "per-rep-X"])
def test_input_gradient_matches_central_differences(activation, out, shared):
    xp = np_xp
    net, params, X, y = _setup(xp, (5, 4), activation, out, shared=shared)
    g = np.asarray(net.input_gradient(params, X, y, xp))
    R, n, d = g.shape
    Xn = np.broadcast_to(np.asarray(X), (R, n, d))
    h = 1e-6
    fd = np.empty_like(g)
    for j in range(d):
        # d l_i / d x_ij for every i from the per-sample losses: a sample's loss depends on its
        # own input only, so all samples can be moved at once.
        e = np.zeros(d)
        e[j] = h
        lu = np.asarray(net.loss(params, xp.asarray(Xn + e), y, xp))
        ld = np.asarray(net.loss(params, xp.asarray(Xn - e), y, xp))
        fd[..., j] = (lu - ld) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_summed_loss_gradient_is_per_sample():
    """``d (sum_k l_k) / d x_i`` by finite differences of the *total* loss equals ``g_i``."""
    xp = np_xp
    net, params, X, y = _setup(xp, (6,), "tanh", "binomial", shared=False, n=5)
    g = np.asarray(net.input_gradient(params, X, y, xp))
    Xn = np.asarray(X)
    h = 1e-6
    for i in (0, 3):
        for j in range(Xn.shape[-1]):
            E = np.zeros_like(Xn)
            E[:, i, j] = h
            tot = [np.asarray(xp.sum(net.loss(params, xp.asarray(Xn + s * E), y, xp), axis=-1))
                   for s in (1, -1)]
            np.testing.assert_allclose((tot[0] - tot[1]) / (2 * h), g[:, i, j], rtol=1e-6,
                                       atol=1e-9)


# --------------------------------------------------------------------------------------------
# the GLM special case and the output layers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["gaussian", "binomial", "poisson"])
def test_no_hidden_layer_is_the_glm(family, xp):
    """``hidden=()``: ``eta = a + X beta``, loss ``l(y, eta)`` of the family, and the input
    gradient ``(mu - y) beta`` of docs/theory.md s.2."""
    rng = np.random.default_rng(3)
    R, n, d = 2, 9, 4
    net = MLP(d, (), "relu", family)
    params = _params(net, R, 3, xp)
    X = xp.asarray(rng.standard_normal((R, n, d)))
    fam = get_family(family)
    y = xp.asarray(_targets(family, (R, n), rng))
    beta = to_numpy(params.weights[0])[:, :, 0]
    a = to_numpy(params.biases[0])[:, 0]
    eta = a[:, None] + np.einsum("rnd,rd->rn", to_numpy(X), beta)
    np.testing.assert_allclose(to_numpy(net.eta(params, X, xp))[..., 0], eta, rtol=1e-13)
    np.testing.assert_allclose(
        to_numpy(net.loss(params, X, y, xp)),
        to_numpy(fam.loss(np_xp.asarray(to_numpy(y)), np_xp.asarray(eta))),
        rtol=1e-12,
    )
    mu = to_numpy(fam.mean(np_xp.asarray(eta)))
    g = to_numpy(net.input_gradient(params, X, y, xp))
    np.testing.assert_allclose(g, (mu - to_numpy(y))[..., None] * beta[:, None, :], rtol=1e-12,
                               atol=1e-15)


def test_softmax_is_stable_and_matches_direct_formula():
    xp = np_xp
    out = SoftmaxOutput(3)
    eta = xp.asarray([[[1000.0, 0.0, -1000.0], [0.1, 0.2, 0.3]]])
    y = xp.asarray([[2.0, 1.0]])
    loss = np.asarray(out.loss(y, eta, xp))
    assert np.all(np.isfinite(loss))
    assert loss[0, 0] == pytest.approx(2000.0)
    e = np.array([0.1, 0.2, 0.3])
    assert loss[0, 1] == pytest.approx(np.log(np.exp(e).sum()) - 0.2, rel=1e-14)
    p = np.asarray(out.predict_mean(eta, xp))
    np.testing.assert_allclose(p.sum(-1), 1.0)
    np.testing.assert_allclose(np.asarray(out.dloss(y, eta, xp))[0, 1], p[0, 1] - [0, 1, 0])


def test_activation_derivatives_finite_at_extremes():
    xp = np_xp
    z = xp.asarray([-800.0, -30.0, 0.0, 30.0, 800.0])
    for name in ACTIVATIONS:
        act = get_activation(name)
        a = act.forward(z, xp)
        da = act.derivative(z, a, xp)
        assert np.all(np.isfinite(np.asarray(a))) and np.all(np.isfinite(np.asarray(da))), name


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown activation 'elu'"):
        get_activation("elu")
    with pytest.raises(ValueError, match="unknown family"):
        get_output("gamma")
    with pytest.raises(ValueError, match="n_classes"):
        get_output("softmax")
    with pytest.raises(ValueError, match="n_classes >= 2"):
        SoftmaxOutput(1)
    assert isinstance(get_output("poisson"), FamilyOutput)


# --------------------------------------------------------------------------------------------
# docs/theory.md s.6: per-sample gradients
# --------------------------------------------------------------------------------------------


def test_input_gradient_of_a_batch_mean_is_g_over_B_and_sign_ignores_it():
    """The article's claim that batching dilutes FGSM (seeds/iterative-fgsm-minibatch-article)
    is false for inputs: the input gradient of the batch mean, by finite differences of the mean
    loss, is ``g_i / B``, whose direction under every scheme is that of ``g_i``."""
    xp = np_xp
    B = 8
    net, params, X, y = _setup(xp, (6,), "softplus", "binomial", shared=True, n=B, R=2)
    g = np.asarray(net.input_gradient(params, X, y, xp))
    # The weighted form used for a batch mean (weights 1/B): exactly g / B.
    gw = np.asarray(net.input_gradient(params, X, y, xp, weight=xp.full((B,), 1.0 / B)))
    np.testing.assert_allclose(gw, g / B, rtol=1e-14)
    # Finite differences of the mean loss with respect to sample i's input.
    Xn = np.asarray(X)
    h = 1e-6
    for i in (0, 5):
        for j in range(Xn.shape[1]):
            E = np.zeros_like(Xn)
            E[i, j] = h
            m = [np.asarray(xp.mean(net.loss(params, xp.asarray(Xn + s * E), y, xp), axis=-1))
                 for s in (1, -1)]
            np.testing.assert_allclose((m[0] - m[1]) / (2 * h), g[:, i, j] / B, rtol=1e-6,
                                       atol=1e-10)
    for scheme in (Sign(), Lq(2), Lq(1.5), Power(2.0), Quantized(4)):
        np.testing.assert_array_equal(
            np.asarray(scheme.direction(xp.asarray(g))),
            np.asarray(scheme.direction(xp.asarray(gw * B))),
        )
    np.testing.assert_array_equal(np.sign(gw), np.sign(g))


def test_a_sample_gradient_ignores_the_other_samples(xp):
    net, params, X, y = _setup(xp, (5,), "relu", "softmax", shared=False)
    g = to_numpy(net.input_gradient(params, X, y, xp))
    Xn, yn = to_numpy(X).copy(), to_numpy(y).copy()
    Xn[:, 1:] += 3.0  # every sample but 0 changes
    yn[:, 1:] = (yn[:, 1:] + 1) % 3
    g2 = to_numpy(net.input_gradient(params, xp.asarray(Xn), xp.asarray(yn), xp))
    np.testing.assert_array_equal(g2[:, 0], g[:, 0])
    # The sample alone in a batch of one gives the same gradient (to rounding: BLAS may block
    # a product of another shape differently).
    g1 = to_numpy(net.input_gradient(params, X[:, :1, :], y[:, :1], xp))
    np.testing.assert_allclose(g1[:, 0], g[:, 0], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("shared", [True, False], ids=["shared-X", "per-rep-X"])
def test_replications_are_independent_bitwise(xp, shared):
    """Changing replication 1's data (when not shared) and weights leaves replication 0's and
    2's input and parameter gradients bitwise unchanged."""
    net, params, X, y = _setup(xp, (6, 5), "tanh", "binomial", shared=shared, n=11)
    g = to_numpy(net.input_gradient(params, X, y, xp))
    _, gp = net.value_and_grad(params, X, y, None, xp)
    arrays = [to_numpy(a).copy() for a in params.arrays()]
    for a in arrays:
        a[1] = 5.0 * a[1] + 1.0
    params2 = Params.from_arrays([xp.asarray(a) for a in arrays])
    X2, y2 = X, y
    if not shared:
        Xn, yn = to_numpy(X).copy(), to_numpy(y).copy()
        Xn[1] = -7.0 * Xn[1]
        yn[1] = 1.0 - yn[1]
        X2, y2 = xp.asarray(Xn), xp.asarray(yn)
    g2 = to_numpy(net.input_gradient(params2, X2, y2, xp))
    _, gp2 = net.value_and_grad(params2, X2, y2, None, xp)
    assert not np.array_equal(g2[1], g[1])
    for r in (0, 2):
        np.testing.assert_array_equal(g2[r], g[r])
        for a, b in zip(gp.arrays(), gp2.arrays(), strict=True):
            np.testing.assert_array_equal(to_numpy(b)[r], to_numpy(a)[r])


# --------------------------------------------------------------------------------------------
# backends, parameters, initialisation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("out", OUTPUTS)
def test_backends_agree(xp, out):
    net, params, X, y = _setup(np_xp, (5,), "sigmoid", out, shared=True)
    v0, g0 = net.value_and_grad(params, X, y, None, np_xp)
    i0 = net.input_gradient(params, X, y, np_xp)
    pa = Params.from_arrays([xp.asarray(np.asarray(a)) for a in params.arrays()])
    Xa, ya = xp.asarray(np.asarray(X)), xp.asarray(np.asarray(y))
    v1, g1 = net.value_and_grad(pa, Xa, ya, None, xp)
    i1 = net.input_gradient(pa, Xa, ya, xp)
    np.testing.assert_allclose(to_numpy(v1), np.asarray(v0), rtol=1e-13)
    np.testing.assert_allclose(to_numpy(i1), np.asarray(i0), rtol=1e-12, atol=1e-15)
    for a, b in zip(g0.arrays(), g1.arrays(), strict=True):
        np.testing.assert_allclose(to_numpy(b), np.asarray(a), rtol=1e-12, atol=1e-15)


def test_params_flatten_roundtrip_and_sizes(xp):
    net = MLP(4, (5, 3), "relu", get_output("softmax", 3))
    p = _params(net, 2, 0, xp)
    theta = p.flatten(xp)
    assert theta.shape == (2, net.n_params) == (2, (4 + 1) * 5 + (5 + 1) * 3 + (3 + 1) * 3)
    q = p.unflatten(theta, xp)
    for a, b in zip(p.arrays(), q.arrays(), strict=True):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert net.n_layers == 3 and net.sizes == (4, 5, 3, 3)


def test_initialisation_of_network_r_does_not_depend_on_R():
    net = MLP(6, (7,), "sigmoid", "binomial")
    seeds = [np.random.SeedSequence(11, spawn_key=(r,)) for r in range(5)]
    big = net.init(seeds, np_xp)
    small = net.init(seeds[3:4], np_xp)
    for a, b in zip(big.arrays(), small.arrays(), strict=True):
        np.testing.assert_array_equal(np.asarray(a)[3], np.asarray(b)[0])
    # Glorot bound, factor 2 for sigmoid units.
    assert np.max(np.abs(np.asarray(big.weights[0]))) <= math.sqrt(2.0 / 13)


# --------------------------------------------------------------------------------------------
# trained networks as attack targets
# --------------------------------------------------------------------------------------------


def test_network_target_shapes_and_gradients(xp):
    from gfgsm.nn.networks import NetworkTarget

    net, params, X, y = _setup(np_xp, (5,), "tanh", "binomial", shared=False, R=2)
    target = NetworkTarget(net, params)
    Xs, ys = xp.asarray(np.asarray(X)), xp.asarray(np.asarray(y))
    g = target.input_gradient(Xs, ys)
    assert tuple(g.shape) == tuple(Xs.shape)
    np.testing.assert_allclose(to_numpy(g), np.asarray(net.input_gradient(params, X, y, np_xp)),
                               rtol=1e-13)
    assert tuple(target.per_sample_loss(Xs, ys).shape) == tuple(Xs.shape[:-1])
    with pytest.raises(ValueError, match="ambiguous"):
        target.input_gradient(Xs[0, ...], ys[0, ...])
    one = NetworkTarget(net, params.take(np_xp.asarray([1]), np_xp))
    np.testing.assert_allclose(to_numpy(one.input_gradient(Xs[1, ...], ys[1, ...])), to_numpy(g)[1],
                               rtol=1e-13)


def test_network_target_drives_the_attacks_module():
    """FGSM of gfgsm.nn.attacks on a network target is ``x + eps sign(g)`` (docs/theory.md s.2)."""
    attacks = pytest.importorskip("gfgsm.nn.attacks")
    from gfgsm.nn.networks import NetworkTarget

    net, params, X, y = _setup(np_xp, (6,), "relu", "softmax", shared=False, R=2)
    target = NetworkTarget(net, params)
    assert isinstance(target, attacks.AttackTarget)
    adv = attacks.FastGradientMethod(target, eps=0.1).generate(X, y)
    g = np.asarray(net.input_gradient(params, X, y, np_xp))
    np.testing.assert_allclose(np.asarray(adv), np.asarray(X) + 0.1 * np.sign(g), rtol=1e-15)
