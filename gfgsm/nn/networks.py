"""Batched multilayer perceptrons on the array backend (docs/theory.md s.6).

``R`` independent networks of one architecture are held as stacked arrays and evaluated together
with ``xp.matmul``: layer ``l`` has weights ``W_l`` of shape ``(R, d_{l-1}, d_l)`` and biases
``b_l`` of shape ``(R, d_l)``.  Inputs are ``X`` of shape ``(n, d)`` (shared by all ``R`` networks)
or ``(R, n, d)`` (one data set per network); targets ``y`` are ``(n,)`` or ``(R, n)``.  Nothing
loops over networks or samples in Python; the only Python loop is over layers.

The forward pass is

    A_0 = X,   Z_l = A_{l-1} W_l + b_l,   A_l = f(Z_l)   (l < L),   eta = Z_L,

and the per-sample loss is ``l(y_i, eta_i)``: a :class:`~gfgsm.families.Family` loss on the
``phi = 1`` scale for a one-unit output (so a network with no hidden layer is exactly the GLM
``eta = a + x' beta`` of docs/theory.md s.1, with ``W_1 = beta`` and ``b_1 = a``), or the
multinomial log loss ``logsumexp(eta_i) - eta_{i, y_i}`` for ``K`` softmax classes.

Backpropagation is analytic (the tests check it against central finite differences).  For
per-sample weights ``w_i`` it differentiates ``sum_i w_i l(y_i, eta_i)``:

    delta_L = w * dl/deta,   grad W_l = A_{l-1}' delta_l,   grad b_l = sum_i delta_l,
    delta_{l-1} = (delta_l W_l') * f'(Z_{l-1}),   grad_x = delta_1 W_1'.

**Per-sample input gradients** (docs/theory.md s.6, "Per-sample gradients").
:meth:`MLP.input_gradient` returns ``g_i = d l(y_i, eta_i) / d x_i`` of the *summed* loss (all
``w_i = 1``): sample ``i``'s own gradient, which depends on no other sample and no other network.
The input gradient of a *mean* over a batch of ``B`` samples is ``g_i / B``; ``sign`` (and every
scheme of :mod:`gfgsm.schemes`, each normalising a sample by its own gradient) ignores that
factor, so batching cannot dilute an FGSM perturbation.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gfgsm._backend import asarray, get_namespace, to_numpy
from gfgsm.families import Family, get_family, sigmoid, softplus

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "Activation",
    "FamilyOutput",
    "NetworkTarget",
    "Output",
    "Params",
    "SoftmaxOutput",
    "get_activation",
    "get_output",
]

Array = Any


# --------------------------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------------------------


class Activation(ABC):
    """An elementwise hidden-layer activation ``a = f(z)`` and its derivative ``f'(z)``."""

    name: str = ""

    @abstractmethod
    def forward(self, z: Array, xp: Any) -> Array:
        """``f(z)``, elementwise."""

    @abstractmethod
    def derivative(self, z: Array, a: Array, xp: Any) -> Array:
        """``f'(z)``, elementwise; ``a = f(z)`` is passed so it need not be recomputed."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(Activation):
    """``max(z, 0)``; the derivative at the kink ``z = 0`` is taken as 0 (as in PyTorch)."""

    name = "relu"

    def forward(self, z: Array, xp: Any) -> Array:
        return xp.maximum(z, 0.0)

    def derivative(self, z: Array, a: Array, xp: Any) -> Array:
        return xp.astype(z > 0, z.dtype)


class Tanh(Activation):
    """``tanh(z)``, derivative ``1 - tanh(z)^2``."""

    name = "tanh"

    def forward(self, z: Array, xp: Any) -> Array:
        return xp.tanh(z)

    def derivative(self, z: Array, a: Array, xp: Any) -> Array:
        return 1.0 - a * a


class Sigmoid(Activation):
    """``1 / (1 + e^-z)`` (overflow-free, :func:`gfgsm.families.sigmoid`), derivative ``a(1-a)``."""

    name = "sigmoid"

    def forward(self, z: Array, xp: Any) -> Array:
        return sigmoid(z)

    def derivative(self, z: Array, a: Array, xp: Any) -> Array:
        # sigmoid(z) sigmoid(-z) rather than a (1 - a): no cancellation when a rounds to 1.
        return a * sigmoid(-z)


class Softplus(Activation):
    """``log(1 + e^z)`` (overflow-free, :func:`gfgsm.families.softplus`), derivative sigmoid."""

    name = "softplus"

    def forward(self, z: Array, xp: Any) -> Array:
        return softplus(z)

    def derivative(self, z: Array, a: Array, xp: Any) -> Array:
        return sigmoid(z)


ACTIVATIONS: dict[str, type[Activation]] = {
    "relu": ReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "softplus": Softplus,
}


def get_activation(activation: str | Activation) -> Activation:
    """An :class:`Activation` from its name (``relu``, ``tanh``, ``sigmoid``, ``softplus``)."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str) and activation.lower() in ACTIVATIONS:
        return ACTIVATIONS[activation.lower()]()
    raise ValueError(
        f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}"
    )


# --------------------------------------------------------------------------------------------
# output layers
# --------------------------------------------------------------------------------------------


class Output(ABC):
    """The output layer: ``K`` output units and the per-sample loss ``l(y, eta)``.

    ``eta`` has shape ``(..., n, K)`` and ``y`` ``(..., n)`` (broadcasting over the leading
    axes, so a shared ``y`` of shape ``(n,)`` serves ``R`` networks).
    """

    name: str = ""
    n_outputs: int = 1
    #: Targets are class labels (``predict`` returns labels, ``score`` is accuracy).
    is_classifier: bool = False
    #: ``K >= 2`` output units, one per class, with class probabilities ``softmax(eta)``.
    is_multiclass: bool = False
    #: Targets must be ``>= 0`` (regression, e.g. counts).
    positive_only: bool = False
    #: The output activation, in scikit-learn's words (``MLPClassifier.out_activation_``):
    #: ``"logistic"``, ``"identity"``, ``"exp"`` or ``"softmax"``.
    out_activation: str = "identity"

    @abstractmethod
    def loss(self, y: Array, eta: Array, xp: Any) -> Array:
        """Per-sample loss ``l(y_i, eta_i)``, shape ``(..., n)``."""

    @abstractmethod
    def dloss(self, y: Array, eta: Array, xp: Any) -> Array:
        """``d l(y_i, eta_i) / d eta_i``, shape ``(..., n, K)``."""

    @abstractmethod
    def predict_mean(self, eta: Array, xp: Any) -> Array:
        """The fitted mean: ``mu`` ``(..., n)`` for a family, class probabilities
        ``(..., n, K)`` for softmax."""

    @abstractmethod
    def predict_label(self, eta: Array, xp: Any) -> Array:
        """Predicted class index ``(..., n)`` (classifiers; ``argmax`` of the probabilities)."""

    def validate_y(self, y: np.ndarray) -> None:  # noqa: B027 - no constraint by default
        """Raise ``ValueError`` when the targets ``y`` (host array) are not of this output."""


#: scikit-learn's name of the inverse canonical link of each family (``out_activation_``).
_INVERSE_LINK = {"gaussian": "identity", "binomial": "logistic", "poisson": "exp"}


class FamilyOutput(Output):
    """One output unit ``eta`` with a GLM family's loss ``l(y, eta) = b(eta) - y eta``
    (``phi = 1`` scale, docs/theory.md s.1); ``dl/deta = mu - y``.

    The family describes the output: a binary family (:attr:`~gfgsm.families.Family.is_binary`)
    makes a classifier with a logistic output; a Tweedie family of power ``>= 1`` (poisson)
    needs targets ``>= 0``."""

    n_outputs = 1

    def __init__(self, family: str | Family) -> None:
        self.family = get_family(family)
        self.name = self.family.name
        self.is_classifier = self.family.is_binary
        power = self.family.tweedie_power
        self.positive_only = not self.is_classifier and power is not None and power >= 1
        self.out_activation = _INVERSE_LINK.get(self.name, "identity")

    def loss(self, y: Array, eta: Array, xp: Any) -> Array:
        return self.family.loss(y, eta[..., 0])

    def dloss(self, y: Array, eta: Array, xp: Any) -> Array:
        return self.family.dloss(y, eta[..., 0])[..., None]

    def predict_mean(self, eta: Array, xp: Any) -> Array:
        return self.family.mean(eta[..., 0])

    def predict_label(self, eta: Array, xp: Any) -> Array:
        # binomial: class 1 where eta > 0 (mu > 1/2), as GFGSM.predict does.
        return xp.astype(eta[..., 0] > 0, xp.int64)

    def validate_y(self, y: np.ndarray) -> None:
        self.family.validate_y(y)

    def __repr__(self) -> str:
        return f"FamilyOutput({self.family!r})"


class SoftmaxOutput(Output):
    """``K`` output units, class probabilities ``softmax(eta)``, multinomial log loss
    ``l(y, eta) = logsumexp(eta) - eta_y`` for a class index ``y in {0, ..., K-1}``;
    ``dl/deta = softmax(eta) - onehot(y)``.  The log-sum-exp subtracts the row maximum first, so
    no ``eta`` overflows."""

    name = "softmax"
    is_classifier = True
    is_multiclass = True
    out_activation = "softmax"

    def __init__(self, n_classes: int) -> None:
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"softmax needs n_classes >= 2, got {n_classes!r}")
        self.n_outputs = int(n_classes)

    def _onehot(self, y: Array, eta: Array, xp: Any) -> Array:
        k = xp.arange(self.n_outputs, dtype=eta.dtype)
        return xp.astype(y[..., None] == k, eta.dtype)

    def _shifted(self, eta: Array, xp: Any) -> tuple[Array, Array]:
        """``eta - max(eta)`` and ``log sum exp(eta - max)`` per row."""
        z = eta - xp.max(eta, axis=-1, keepdims=True)
        return z, xp.log(xp.sum(xp.exp(z), axis=-1, keepdims=True))

    def loss(self, y: Array, eta: Array, xp: Any) -> Array:
        z, lse = self._shifted(eta, xp)
        # lse - z_y = logsumexp(eta) - eta_y (the max cancels), >= 0 with no overflow.
        return lse[..., 0] - xp.sum(self._onehot(y, eta, xp) * z, axis=-1)

    def dloss(self, y: Array, eta: Array, xp: Any) -> Array:
        return self.predict_mean(eta, xp) - self._onehot(y, eta, xp)

    def predict_mean(self, eta: Array, xp: Any) -> Array:
        z, lse = self._shifted(eta, xp)
        return xp.exp(z - lse)

    def predict_label(self, eta: Array, xp: Any) -> Array:
        return xp.argmax(eta, axis=-1)

    def validate_y(self, y: np.ndarray) -> None:
        K = self.n_outputs
        bad = ~np.isin(y, np.arange(K))
        if np.any(bad):
            raise ValueError(
                f"softmax targets must be class indices 0..{K - 1}; found e.g. "
                f"{np.unique(y[bad])[:5].tolist()}"
            )

    def __repr__(self) -> str:
        return f"SoftmaxOutput({self.n_outputs})"


#: Output layers named by something other than a family (the names a user may give), each with
#: one unit per class.
CLASS_OUTPUTS: dict[str, type[SoftmaxOutput]] = {"softmax": SoftmaxOutput,
                                                 "multinomial": SoftmaxOutput}


def output_type(family: str | Family | Output) -> type[Output]:
    """The :class:`Output` class that :func:`get_output` makes of ``family`` (its class-level
    attributes, e.g. ``is_multiclass``, without building it)."""
    if isinstance(family, Output):
        return type(family)
    if isinstance(family, str):
        return CLASS_OUTPUTS.get(family.lower(), FamilyOutput)
    return FamilyOutput


def get_output(family: str | Family | Output, n_classes: int | None = None) -> Output:
    """An :class:`Output` from a family name or instance, ``"softmax"`` (with ``n_classes``), or
    an :class:`Output` passed through."""
    if isinstance(family, Output):
        return family
    kind = output_type(family)
    if kind is FamilyOutput:
        return FamilyOutput(family)
    if n_classes is None:
        raise ValueError("family='softmax' needs n_classes")
    return kind(n_classes)


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------


@dataclass
class Params:
    """Weights and biases of ``R`` networks: ``weights[l]`` ``(R, d_l, d_{l+1})``,
    ``biases[l]`` ``(R, d_{l+1})``, ``l = 0 .. L-1`` (``d_0 = d`` inputs, ``d_L = K`` outputs)."""

    weights: list[Array]
    biases: list[Array]

    @property
    def R(self) -> int:
        return int(self.weights[0].shape[0])

    def arrays(self) -> list[Array]:
        """``[W_1, b_1, W_2, b_2, ...]``: the order used by :meth:`flatten` and the optimizers."""
        out: list[Array] = []
        for W, b in zip(self.weights, self.biases, strict=True):
            out += [W, b]
        return out

    @classmethod
    def from_arrays(cls, arrays: Sequence[Array]) -> Params:
        return cls(list(arrays[0::2]), list(arrays[1::2]))

    def flatten(self, xp: Any) -> Array:
        """All parameters of each network as one vector: shape ``(R, P)``."""
        R = self.R
        return xp.concat([xp.reshape(a, (R, -1)) for a in self.arrays()], axis=1)

    def unflatten(self, theta: Array, xp: Any) -> Params:
        """Parameters shaped like ``self`` from a ``(R', P)`` vector (``R'`` may differ)."""
        R = theta.shape[0]
        out, start = [], 0
        for a in self.arrays():
            shape = tuple(a.shape[1:])
            size = math.prod(shape)
            out.append(xp.reshape(theta[:, start : start + size], (R, *shape)))
            start += size
        return Params.from_arrays(out)

    def take(self, idx: Array, xp: Any) -> Params:
        """The networks ``idx`` (a 1-D integer array) of the stack."""
        return Params.from_arrays([xp.take(a, idx, axis=0) for a in self.arrays()])


def where_params(mask: Array, new: Params, old: Params, xp: Any) -> Params:
    """Per network: ``new`` where ``mask`` (shape ``(R,)``) holds, else ``old``."""
    out = []
    for a, b in zip(new.arrays(), old.arrays(), strict=True):
        m = xp.reshape(mask, (mask.shape[0],) + (1,) * (a.ndim - 1))
        out.append(xp.where(m, a, b))
    return Params.from_arrays(out)


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------


@dataclass
class Cache:
    """What the backward pass needs from the forward pass: the layer inputs ``A_{l-1}``
    (``A_0 = X``) and the hidden pre-activations ``Z_l`` with their activations ``A_l``."""

    inputs: list[Array]
    pre: list[Array]


class MLP:
    """The architecture of a batch of multilayer perceptrons (it holds no weights).

    Parameters
    ----------
    n_features : ``d``, the input dimension.
    hidden : hidden layer widths, e.g. ``(32,)``; ``()`` is a GLM (no hidden layer).
    activation : ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"softplus"`` or an
        :class:`Activation`.
    output : an :class:`Output` (see :func:`get_output`).
    """

    def __init__(
        self,
        n_features: int,
        hidden: Sequence[int] = (32,),
        activation: str | Activation = "relu",
        output: Output | str = "binomial",
    ) -> None:
        self.n_features = int(n_features)
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = get_activation(activation)
        self.output = get_output(output)
        self.sizes = (self.n_features, *self.hidden, self.output.n_outputs)

    def __repr__(self) -> str:
        return (
            f"MLP(n_features={self.n_features}, hidden={self.hidden}, "
            f"activation={self.activation.name!r}, output={self.output!r})"
        )

    @property
    def n_layers(self) -> int:
        """``L``, the number of weight layers (``len(hidden) + 1``)."""
        return len(self.sizes) - 1

    @property
    def n_params(self) -> int:
        """``P``, the number of parameters of one network."""
        return sum((a + 1) * b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))

    # --- initialisation ----------------------------------------------------------------------
    def init(self, seeds: Sequence[np.random.SeedSequence], xp: Any) -> Params:
        """Glorot-uniform weights and biases for ``R = len(seeds)`` networks.

        As scikit-learn's ``MLPClassifier``: ``W, b ~ U(-s, s)``,
        ``s = sqrt(factor / (d_in + d_out))``, ``factor = 2`` for sigmoid units (and a sigmoid
        or binomial output) and 6 otherwise.  Network ``r`` is drawn on the host from
        ``default_rng(seeds[r])`` alone, so it does not depend on ``R`` or on the backend.
        """
        rngs = [np.random.default_rng(s) for s in seeds]
        weights, biases = [], []
        for layer, (d_in, d_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            last = layer == self.n_layers - 1
            logistic = (
                self.output.out_activation == "logistic" if last
                else self.activation.name == "sigmoid"
            )
            s = math.sqrt((2.0 if logistic else 6.0) / (d_in + d_out))
            # One host draw per network: the per-replication generators are the contract that
            # makes network r independent of R; the arithmetic after this is batched.
            W = np.stack([g.uniform(-s, s, (d_in, d_out)) for g in rngs])
            b = np.stack([g.uniform(-s, s, d_out) for g in rngs])
            weights.append(asarray(W, xp))
            biases.append(asarray(b, xp))
        return Params(weights, biases)

    # --- forward -----------------------------------------------------------------------------
    def forward(self, params: Params, X: Array, xp: Any) -> tuple[Array, Cache]:
        """``eta`` of shape ``(R, n, K)`` for ``X`` ``(n, d)`` or ``(R, n, d)``, and the cache."""
        act = self.activation
        A = X
        inputs, pre = [], []
        for layer, (W, b) in enumerate(zip(params.weights, params.biases, strict=True)):
            inputs.append(A)
            Z = xp.matmul(A, W) + b[:, None, :]
            if layer == self.n_layers - 1:
                return Z, Cache(inputs, pre)
            pre.append(Z)
            A = act.forward(Z, xp)
        raise AssertionError("unreachable: a network has at least one layer")

    def eta(self, params: Params, X: Array, xp: Any) -> Array:
        """The output pre-activations ``eta``, shape ``(R, n, K)``."""
        return self.forward(params, X, xp)[0]

    def loss(self, params: Params, X: Array, y: Array, xp: Any) -> Array:
        """Per-sample losses ``l(y_i, eta_i)``, shape ``(R, n)``."""
        return self.output.loss(y, self.eta(params, X, xp), xp)

    # --- backward ----------------------------------------------------------------------------
    def _deltas(
        self, params: Params, cache: Cache, eta: Array, y: Array, weight: Array | None, xp: Any
    ) -> list[Array]:
        """``delta_l = d (sum_i w_i l_i) / d Z_l`` for ``l = L, ..., 1`` (last layer first)."""
        act = self.activation
        delta = self.output.dloss(y, eta, xp)
        if weight is not None:
            delta = delta * weight[..., None]
        deltas = [delta]
        for layer in range(self.n_layers - 1, 0, -1):
            Z = cache.pre[layer - 1]
            A = cache.inputs[layer]
            delta = _times_transpose(delta, params.weights[layer], xp)
            delta = delta * act.derivative(Z, A, xp)
            deltas.append(delta)
        return deltas[::-1]

    def value_and_grad(
        self, params: Params, X: Array, y: Array, weight: Array | None, xp: Any
    ) -> tuple[Array, Params]:
        """``F = sum_i w_i l(y_i, eta_i)`` per network ``(R,)`` and its parameter gradient.

        ``weight`` is ``(n,)`` or ``(R, n)`` (``None``: all ones, the summed loss).
        """
        eta, cache = self.forward(params, X, xp)
        losses = self.output.loss(y, eta, xp)
        if weight is not None:
            losses = losses * weight
        value = xp.sum(losses, axis=-1)
        deltas = self._deltas(params, cache, eta, y, weight, xp)
        return value, self._param_grads(cache, deltas, xp)

    def _param_grads(self, cache: Cache, deltas: list[Array], xp: Any) -> Params:
        gW, gb = [], []
        for A, delta in zip(cache.inputs, deltas, strict=True):
            # A is (n, d) for a shared X in the first layer: matmul broadcasts it over R.
            gW.append(xp.matmul(xp.matrix_transpose(A), delta))
            gb.append(xp.sum(delta, axis=-2))
        return Params(gW, gb)

    def loss_grad_and_input_gradient(
        self, params: Params, X: Array, y: Array, xp: Any, param_grad: bool = True
    ) -> tuple[Array, Params | None, Array]:
        """One forward and one backward pass giving the per-sample losses ``(R, n)``, the
        parameter gradient of the summed loss (if ``param_grad``) and the per-sample input
        gradients ``(R, n, d)``: what an adversarial step needs on the clean inputs."""
        eta, cache = self.forward(params, X, xp)
        deltas = self._deltas(params, cache, eta, y, None, xp)
        g = _times_transpose(deltas[0], params.weights[0], xp)
        grads = self._param_grads(cache, deltas, xp) if param_grad else None
        return self.output.loss(y, eta, xp), grads, g

    def input_gradient(
        self, params: Params, X: Array, y: Array, xp: Any, weight: Array | None = None
    ) -> Array:
        """Per-sample input gradients ``g_i = d l(y_i, eta_i) / d x_i``, shape ``(R, n, d)``.

        The gradient of the *summed* loss: row ``i`` of network ``r`` depends only on ``x_i``,
        ``y_i`` and network ``r`` (docs/theory.md s.6).  With ``weight`` (``(n,)`` or
        ``(R, n)``) it is the gradient of ``sum_i w_i l_i``, i.e. ``w_i g_i``; ``w_i = 1/B``
        gives the input gradient of a batch mean.
        """
        eta, cache = self.forward(params, X, xp)
        delta = self._deltas(params, cache, eta, y, weight, xp)[0]
        return _times_transpose(delta, params.weights[0], xp)


def _times_transpose(delta: Array, W: Array, xp: Any) -> Array:
    """``delta W'`` for ``delta`` ``(R, n, k)`` and ``W`` ``(R, m, k)``: ``(R, n, m)``.

    With one output unit (``k = 1``) this is an outer product, which a broadcast multiply does
    exactly (one product per entry, as in the matrix product) and about twice as fast as BLAS."""
    Wt = xp.matrix_transpose(W)
    if W.shape[-1] == 1:
        return delta * Wt
    return xp.matmul(delta, Wt)


class NetworkTarget:
    """``R`` trained networks as an attack target (:class:`gfgsm.nn.attacks.AttackTarget`).

    ``input_gradient(X, y)`` gives each sample's own input gradient and ``per_sample_loss(X, y)``
    each sample's loss, for ``X`` of shape ``(R, n, d)`` (network ``r`` attacked on ``X[r]``) or,
    for a single network (``R = 1``), ``(n, d)``; outputs have the shape of ``X`` and
    ``X.shape[:-1]``.  Computation happens in the namespace of ``X`` (the weights are moved
    there once per namespace).
    """

    def __init__(self, net: MLP, params: Params) -> None:
        self.net = net
        self.params = params
        self._cache: dict[str, Params] = {}

    def _prepared(self, X: Array) -> tuple[Any, Params, bool]:
        xp = get_namespace(X)
        key = getattr(xp, "__name__", repr(xp))
        if key not in self._cache:
            self._cache[key] = Params.from_arrays(
                [asarray(to_numpy(a), xp) for a in self.params.arrays()]
            )
        single = X.ndim == 2
        if single and self.params.R != 1:
            raise ValueError(
                f"X of shape {tuple(X.shape)} is ambiguous for R = {self.params.R} networks: "
                "give one data set per network, shape (R, n, d)"
            )
        if not single and X.shape[0] != self.params.R:
            raise ValueError(f"X has {X.shape[0]} data sets for R = {self.params.R} networks")
        return xp, self._cache[key], single

    def input_gradient(self, X: Array, y: Array) -> Array:
        """``d l(y_i, f(x_i)) / d x_i``, shape ``X.shape``."""
        xp, params, single = self._prepared(X)
        g = self.net.input_gradient(params, X, y, xp)
        return g[0, ...] if single else g

    def per_sample_loss(self, X: Array, y: Array) -> Array:
        """``l(y_i, f(x_i))``, shape ``X.shape[:-1]``."""
        xp, params, single = self._prepared(X)
        loss = self.net.loss(params, X, y, xp)
        return loss[0, ...] if single else loss
