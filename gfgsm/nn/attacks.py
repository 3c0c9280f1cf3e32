"""First-order evasion attacks driven by a gradient scheme (docs/theory.md s.6).

FGSM, the basic iterative method (iterative FGSM), PGD with random starts and restarts, and PQGD
(projected quantized gradient descent, seeds/quantized-gradients-paper.txt), targeted and
untargeted, with the argument names of the adversarial-robustness libraries (``eps``,
``eps_step``, ``max_iter``, ``num_random_init``, ``targeted``, ``clip_min``/``clip_max``,
``norm``).

An attack never looks inside the model.  It needs an :class:`AttackTarget`: any object with

* ``input_gradient(X, y)``: the gradient of each sample's *own* loss with respect to its own
  input, shape ``X.shape`` (``(n, d)`` or batched ``(R, n, d)``, features on the last axis);
* ``per_sample_loss(X, y)``: each sample's loss, shape ``X.shape[:-1]`` (used to keep the worst
  restart per sample).

:class:`GLMTarget` is the closed-form target of a GLM (``grad_x l = (mu - y) beta``, docs/theory.md
s.2); the networks of :mod:`gfgsm.nn` and :class:`gfgsm.torch.TorchTarget` implement the same two
methods.

Every step is ``x <- Pi(x + eps_step * scheme.direction(+-g))``: the scheme maps each sample's
gradient to a direction in its unit ball (sign for l_inf, ``Lq(2)`` for l2, ``Lq(1)`` for l1 by
default; any :class:`~gfgsm.schemes.Scheme` may be given), and ``Pi`` projects the perturbation
``x - x_orig`` onto the ``eps`` ball of ``norm`` (l_inf: clip; l2: rescale; l1: the exact
sort-based projection) and then the result onto ``[clip_min, clip_max]``, after *every* step.
Clipping to the box only shrinks each coordinate of the perturbation (the original input lies in
the box, which is checked), so the budget still holds after it.  Targeted attacks descend the
loss of the target labels ``y``; untargeted ones ascend the loss of the true labels ``y``.

All arithmetic is Array-API (NumPy, CuPy, ``array_api_strict``, or PyTorch through
``array_api_compat``), batched over samples and replications; the only Python loops are over
iterations and restarts.  Random starts are drawn on the host with a NumPy ``Generator`` (so a
seed gives the same attack on every backend) and moved to the input's namespace.  Inputs are
never modified in place, and ``eps = 0`` returns an exact copy of the input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gfgsm._backend import asarray, get_namespace, to_numpy
from gfgsm._validation import int_at_least as _check_count
from gfgsm._validation import is_real as _is_real
from gfgsm.families import Family, get_family
from gfgsm.schemes import Lq, Quantized, Scheme, Sign, get_scheme

__all__ = [
    "PQGD",
    "AttackTarget",
    "BasicIterativeMethod",
    "FastGradientMethod",
    "GLMTarget",
    "IterativeFGSM",
    "ProjectedGradientDescent",
    "ProjectedQuantizedGradientDescent",
    "project_perturbation",
    "random_perturbation",
]

Array = Any
#: A seed of the random starts.
Seed = int | np.random.SeedSequence | np.random.Generator
#: ``callback(restart, step, x_adv)``: called with every iterate (``step = 0`` is the start).
Callback = Callable[[int, int, Array], None]


@runtime_checkable
class AttackTarget(Protocol):
    """What an attack needs from a model: per-sample input gradients and per-sample losses.

    ``X`` has shape ``(..., n, d)`` (``(n, d)`` or ``(R, n, d)``: ``R`` replications, ``n``
    samples, ``d`` input features); ``y`` holds the labels the loss is evaluated at (the true
    labels for an untargeted attack, the target labels for a targeted one), in whatever form the
    model's loss takes them (``(..., n)`` for a GLM).
    """

    def input_gradient(self, X: Array, y: Array) -> Array:
        """``grad_x l(y_i, f(x_i))`` for every sample, shape ``X.shape``.

        Each sample's gradient must be the gradient of its own loss (not of a batch mean, which
        would scale it by ``1/n``; the schemes ignore the scale but the convention is the sum)."""
        ...

    def per_sample_loss(self, X: Array, y: Array) -> Array:
        """``l(y_i, f(x_i))`` for every sample, shape ``X.shape[:-1]``."""
        ...


class GLMTarget:
    """A GLM as an :class:`AttackTarget`: ``eta = a + x' beta``, ``grad_x l = (mu - y) beta``.

    Parameters
    ----------
    family : a family name or :class:`~gfgsm.families.Family`; its ``loss`` (``phi = 1`` scale)
        is the per-sample loss.
    coef : ``(d,)`` slopes shared by every replication, or ``(R, d)``: one per replication
        (then inputs are ``(R, n, d)``).
    intercept : a scalar, or ``(R,)`` with ``(R, d)`` slopes.

    The parameters are kept on the host and moved to each input's namespace on use.
    """

    def __init__(self, family: str | Family, coef: Any, intercept: Any = 0.0) -> None:
        self.family = get_family(family)
        beta = np.asarray(to_numpy(coef), dtype=np.float64)
        a = np.asarray(to_numpy(intercept), dtype=np.float64)
        if beta.ndim not in (1, 2):
            raise ValueError(f"coef must have shape (d,) or (R, d), got shape {beta.shape}")
        if a.shape not in ((), beta.shape[:-1]):
            raise ValueError(
                f"intercept must be a scalar or have shape {beta.shape[:-1]} to match coef of "
                f"shape {beta.shape}, got shape {a.shape}"
            )
        if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(a))):
            raise ValueError("coef and intercept must be finite")
        self.coef = beta
        self.intercept = a

    def __repr__(self) -> str:
        return f"GLMTarget({self.family!r}, coef shape {self.coef.shape})"

    def _params(self, X: Array) -> tuple[Any, Array, Array]:
        xp = get_namespace(X)
        beta = asarray(self.coef, xp, dtype=X.dtype)
        a = asarray(self.intercept, xp, dtype=X.dtype)
        if X.shape[-1] != beta.shape[-1]:
            raise ValueError(f"X has {X.shape[-1]} features but coef has {beta.shape[-1]}")
        return xp, beta, a

    def eta(self, X: Array) -> Array:
        """Linear predictors ``a + x_i' beta``, shape ``X.shape[:-1]``."""
        xp, beta, a = self._params(X)
        return xp.sum(X * xp.expand_dims(beta, axis=-2), axis=-1) + xp.expand_dims(a, axis=-1)

    def input_gradient(self, X: Array, y: Array) -> Array:
        """``(mu_i - y_i) beta`` for every sample, shape ``X.shape``."""
        xp, beta, _ = self._params(X)
        r = self.family.dloss(asarray(y, xp, dtype=X.dtype), self.eta(X))
        return xp.expand_dims(r, axis=-1) * xp.expand_dims(beta, axis=-2)

    def per_sample_loss(self, X: Array, y: Array) -> Array:
        """``l(y_i, eta_i)`` (``phi = 1`` scale), shape ``X.shape[:-1]``."""
        xp = get_namespace(X)
        return self.family.loss(asarray(y, xp, dtype=X.dtype), self.eta(X))


# --- parameter checks (at construction, with the offending value) ----------------------------


def _check_norm(norm: Any) -> float:
    if isinstance(norm, str) and norm.lower() == "inf":
        return math.inf
    if _is_real(norm) and float(norm) in (1.0, 2.0, math.inf):
        return float(norm)
    raise ValueError(f'norm must be 1, 2, np.inf or "inf", got {norm!r}')


def _check_eps(name: str, value: Any, *, positive: bool) -> float:
    ok = _is_real(value) and math.isfinite(float(value))
    if ok and (float(value) > 0 if positive else float(value) >= 0):
        return float(value)
    rule = "positive" if positive else "nonnegative"
    raise ValueError(f"{name} must be a finite {rule} number, got {value!r}")


def _check_clip(clip_min: Any, clip_max: Any) -> tuple[float | None, float | None]:
    for name, v in (("clip_min", clip_min), ("clip_max", clip_max)):
        if v is not None and not (_is_real(v) and not math.isnan(float(v))):
            raise ValueError(f"{name} must be None or a real number, got {v!r}")
    lo = None if clip_min is None else float(clip_min)
    hi = None if clip_max is None else float(clip_max)
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"clip_min must be smaller than clip_max, got {lo} and {hi}")
    return lo, hi


def _default_scheme(norm: float) -> Scheme:
    """Steepest ascent in the unit ball of ``norm``: sign, ``Lq(2)`` or ``Lq(1)``."""
    return Sign() if norm == math.inf else Lq(norm)


# --- projections and random starts --------------------------------------------------------


def project_perturbation(delta: Array, eps: float, norm: Any) -> Array:
    """Project perturbations onto the ``eps`` ball of ``norm``, sample by sample.

    Parameters
    ----------
    delta : ``(..., d)`` perturbations (features on the last axis).
    eps : the radius, ``>= 0``.
    norm : ``1``, ``2`` or ``inf``.

    Returns
    -------
    ``(..., d)``, the Euclidean projection of each row onto ``{||v||_norm <= eps}`` (rows
    already inside are returned unchanged): l_inf clips, l2 rescales, l1 soft-thresholds at the
    level found by sorting (Duchi et al., 2008).  Not in place.
    """
    xp = get_namespace(delta)
    norm = _check_norm(norm)
    eps = _check_eps("eps", eps, positive=False)
    if eps == 0:
        return xp.zeros_like(delta)
    if norm == math.inf:
        return xp.clip(delta, min=-eps, max=eps)
    a = xp.abs(delta)
    if norm == 2:
        size = xp.sqrt(xp.sum(a * a, axis=-1, keepdims=True))
        return delta * xp.where(size > eps, eps / xp.where(size > 0, size, 1.0), 1.0)
    # l1: w = sign(v) max(|v| - theta, 0) with theta = (sum of the rho largest |v_j| - eps) / rho,
    # rho = #{k : u_k > (sum_{j<=k} u_j - eps) / k} for u = |v| sorted decreasingly (a prefix).
    total = xp.sum(a, axis=-1, keepdims=True)
    u = xp.sort(a, axis=-1, descending=True)
    css = xp.cumulative_sum(u, axis=-1)
    k = xp.arange(1, a.shape[-1] + 1, dtype=a.dtype)
    active = xp.astype(u * k > css - eps, a.dtype)
    rho = xp.sum(active, axis=-1, keepdims=True)
    theta = xp.sum(xp.where(k == rho, (css - eps) / k, 0.0), axis=-1, keepdims=True)
    shrunk = xp.sign(delta) * xp.clip(a - theta, min=0.0)
    return xp.where(total > eps, shrunk, delta)


def random_perturbation(
    shape: tuple[int, ...], eps: float, norm: Any, rng: np.random.Generator
) -> np.ndarray:
    """Perturbations drawn uniformly from the ``eps`` ball of ``norm`` (host NumPy, float64).

    ``shape = (..., d)``; each row is an independent draw: l_inf uniform on the cube; l2 a
    uniform direction times ``eps U^(1/d)``; l1 random signs times ``eps`` times the first ``d``
    of ``d + 1`` normalised exponentials (uniform on the solid simplex).
    """
    norm = _check_norm(norm)
    d = shape[-1]
    if norm == math.inf:
        return rng.uniform(-eps, eps, size=shape)
    if norm == 2:
        z = rng.standard_normal(size=shape)
        size = np.linalg.norm(z, axis=-1, keepdims=True)
        radius = eps * rng.uniform(size=(*shape[:-1], 1)) ** (1.0 / d)
        return z / np.where(size > 0, size, 1.0) * radius
    e = rng.exponential(size=(*shape[:-1], d + 1))
    w = e[..., :d] / e.sum(axis=-1, keepdims=True)
    return eps * w * rng.choice(np.array([-1.0, 1.0]), size=shape)


# --- the attacks -------------------------------------------------------------------------------


class _Attack:
    """Shared validation and projection of the attacks."""

    def __init__(
        self,
        target: AttackTarget,
        eps: float,
        norm: Any,
        targeted: bool,
        clip_min: float | None,
        clip_max: float | None,
        scheme: str | Scheme | None,
    ) -> None:
        if not isinstance(target, AttackTarget):
            raise TypeError(
                f"target must implement input_gradient(X, y) and per_sample_loss(X, y) "
                f"(gfgsm.nn.attacks.AttackTarget), got {type(target).__name__}"
            )
        if not isinstance(targeted, bool | np.bool_):
            raise ValueError(f"targeted must be a bool, got {targeted!r}")
        self.target = target
        self.eps = _check_eps("eps", eps, positive=False)
        self.norm = _check_norm(norm)
        self.targeted = bool(targeted)
        self.clip_min, self.clip_max = _check_clip(clip_min, clip_max)
        self.scheme = _default_scheme(self.norm) if scheme is None else get_scheme(scheme)

    def _params(self) -> dict[str, Any]:
        return {
            "eps": self.eps,
            "norm": self.norm,
            "targeted": self.targeted,
            "clip_min": self.clip_min,
            "clip_max": self.clip_max,
            "scheme": self.scheme,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def _prepare(self, x: Any, y: Any) -> tuple[Any, Array]:
        """``x`` as a floating array of its namespace (never copied here), checked."""
        if y is None:
            raise ValueError(
                "y is required: the true labels (untargeted) or the target labels (targeted)"
            )
        xp = get_namespace(x)
        if not (hasattr(x, "dtype") and xp.isdtype(x.dtype, "real floating")):
            x = asarray(x, xp)
        if x.ndim < 1 or x.shape[-1] < 1:
            raise ValueError(f"x must have shape (..., d) with d >= 1, got {tuple(x.shape)}")
        lo, hi = self.clip_min, self.clip_max
        if (lo is not None and bool(xp.any(x < lo))) or (hi is not None and bool(xp.any(x > hi))):
            raise ValueError(
                f"x must lie in [clip_min, clip_max] = [{lo}, {hi}]: otherwise the box and the "
                "eps ball cannot both be respected by clipping"
            )
        return xp, x

    def _project(self, x_new: Array, x: Array, xp: Any) -> Array:
        """``x + P_eps(x_new - x)``, then clipped to ``[clip_min, clip_max]``."""
        if self.norm == math.inf:
            # Clip x_new itself (not x + clipped delta), so that points already in the ball are
            # returned bit for bit (FGSM is then exactly the closed form x + eps sign(g)).
            x_adv = xp.minimum(xp.maximum(x_new, x - self.eps), x + self.eps)
        else:
            x_adv = x + project_perturbation(x_new - x, self.eps, self.norm)
        if self.clip_min is not None or self.clip_max is not None:
            x_adv = xp.clip(x_adv, min=self.clip_min, max=self.clip_max)
        return x_adv

    def _direction(self, x_adv: Array, y: Any) -> Array:
        """The scheme's direction of ``+g`` (untargeted) or ``-g`` (targeted), row by row."""
        g = self.target.input_gradient(x_adv, y)
        if tuple(g.shape) != tuple(x_adv.shape):
            raise ValueError(
                f"the target's input_gradient returned shape {tuple(g.shape)} for inputs of shape "
                f"{tuple(x_adv.shape)}; it must return one gradient per input (for R networks "
                "sharing the inputs, pass X broadcast to (R, n, d))"
            )
        return self.scheme.direction(-g if self.targeted else g)


class FastGradientMethod(_Attack):
    """FGSM and its generalisation (docs/theory.md sections 2 and 6): ``x + eps d(g)``, one step.

    Parameters
    ----------
    target : an :class:`AttackTarget`.
    eps : the budget, ``>= 0`` (``0`` returns a copy of the input).
    norm : ``np.inf`` (default), ``2`` or ``1``: the ball the perturbation is projected onto;
        it also picks the default scheme (sign, ``Lq(2)``, ``Lq(1)``).
    targeted : descend the loss of the target labels instead of ascending the true labels' loss.
    clip_min, clip_max : the valid input range (either may be ``None``).
    scheme : ``None`` (the norm's steepest ascent), a scheme name without parameters
        (``"sign"``) or a :class:`~gfgsm.schemes.Scheme` (``Power(2)``, ``Quantized(b)``, ...).

    With ``norm = inf`` and the sign scheme on a GLM, ``generate`` is the closed form
    ``x - eps s sign(beta)``, ``s = sign(y - mu)`` (docs/theory.md s.2).
    """

    def __init__(
        self,
        target: AttackTarget,
        eps: float,
        norm: Any = np.inf,
        targeted: bool = False,
        clip_min: float | None = None,
        clip_max: float | None = None,
        scheme: str | Scheme | None = None,
    ) -> None:
        super().__init__(target, eps, norm, targeted, clip_min, clip_max, scheme)

    def generate(self, x: Any, y: Any) -> Array:
        """Adversarial examples for inputs ``x`` (``(..., n, d)``) and labels ``y``.

        Returns a new array of ``x``'s shape and namespace (floating ``x`` keeps its dtype,
        anything else becomes float64); ``x`` is never modified.
        """
        xp, x = self._prepare(x, y)
        if self.eps == 0:
            return xp.asarray(x, copy=True)
        # The target sees a copy: one that writes into its input cannot reach the caller's x.
        direction = self._direction(xp.asarray(x, copy=True), y)
        return self._project(x + self.eps * direction, x, xp)


class ProjectedGradientDescent(_Attack):
    """PGD (Madry et al.): iterated scheme steps of size ``eps_step``, projected after each.

    Parameters
    ----------
    target, eps, norm, targeted, clip_min, clip_max, scheme : as in :class:`FastGradientMethod`.
    eps_step : the step size, ``> 0`` (it may exceed ``eps``: the projection keeps the budget).
    max_iter : the number of steps, an integer ``>= 1``.
    num_random_init : ``0`` starts once at ``x`` (the basic iterative method); ``k >= 1`` runs
        ``k`` restarts, each from a point drawn uniformly in the ``eps`` ball (then clipped to
        the box), and keeps per sample the restart with the worst final loss (largest true-label
        loss; smallest target-label loss when ``targeted``).
    seed : ``None``, an int, a ``SeedSequence`` or a NumPy ``Generator`` for the random starts
        (a generator made once at construction: repeated ``generate`` calls draw new starts);
        or a list of them, one per network of a batch: inputs ``(R, ..., d)`` then take the
        start of network ``r`` from generator ``r`` alone, the start it would get if attacked
        by itself on ``(1, ..., d)`` inputs (replication independence, docs/theory.md s.6).
    """

    def __init__(
        self,
        target: AttackTarget,
        eps: float,
        eps_step: float,
        max_iter: int = 100,
        num_random_init: int = 0,
        norm: Any = np.inf,
        targeted: bool = False,
        clip_min: float | None = None,
        clip_max: float | None = None,
        scheme: str | Scheme | None = None,
        seed: Seed | list[Seed] | None = None,
    ) -> None:
        super().__init__(target, eps, norm, targeted, clip_min, clip_max, scheme)
        self.eps_step = _check_eps("eps_step", eps_step, positive=True)
        self.max_iter = _check_count("max_iter", max_iter, 1)
        self.num_random_init = _check_count("num_random_init", num_random_init, 0)
        if isinstance(seed, list | tuple):
            if not seed:
                raise ValueError("seed: a list of per-network seeds must not be empty")
            self.rng: np.random.Generator | list[np.random.Generator] = [
                np.random.default_rng(s) for s in seed]
        else:
            self.rng = np.random.default_rng(seed)

    def _start(self, shape: tuple[int, ...]) -> np.ndarray:
        """A random start of ``shape``: one draw, or one per network with per-network seeds."""
        if isinstance(self.rng, np.random.Generator):
            return random_perturbation(shape, self.eps, self.norm, self.rng)
        if len(shape) < 2 or shape[0] != len(self.rng):
            raise ValueError(f"{len(self.rng)} per-network seeds need inputs of shape "
                             f"({len(self.rng)}, ..., d), got {shape}")
        return np.stack([random_perturbation(shape[1:], self.eps, self.norm, g)
                         for g in self.rng])

    def _params(self) -> dict[str, Any]:
        return {
            "eps": self.eps,
            "eps_step": self.eps_step,
            "max_iter": self.max_iter,
            "num_random_init": self.num_random_init,
            **{k: v for k, v in super()._params().items() if k != "eps"},
        }

    def _run(self, x: Array, y: Any, xp: Any, restart: int, callback: Callback | None) -> Array:
        """One run of ``max_iter`` projected steps from ``x`` or from a random start."""
        if self.num_random_init > 0:
            delta = self._start(tuple(x.shape))
            x_adv = self._project(x + asarray(delta, xp, dtype=x.dtype), x, xp)
        else:
            # A copy, so that a target that writes into its input cannot reach the caller's x.
            x_adv = xp.asarray(x, copy=True)
        if callback is not None:
            callback(restart, 0, x_adv)
        for step in range(1, self.max_iter + 1):
            x_adv = self._project(x_adv + self.eps_step * self._direction(x_adv, y), x, xp)
            if callback is not None:
                callback(restart, step, x_adv)
        return x_adv

    def _worstness(self, x_adv: Array, y: Any) -> Array:
        """The per-sample loss (its negative when targeted): larger is worse for the model."""
        loss = self.target.per_sample_loss(x_adv, y)
        if tuple(loss.shape) != tuple(x_adv.shape[:-1]):
            raise ValueError(
                f"the target's per_sample_loss returned shape {tuple(loss.shape)} for inputs of "
                f"shape {tuple(x_adv.shape)}; expected {tuple(x_adv.shape[:-1])}"
            )
        return -loss if self.targeted else loss

    def generate(self, x: Any, y: Any, callback: Callback | None = None) -> Array:
        """Adversarial examples for inputs ``x`` (``(..., n, d)``) and labels ``y``.

        ``callback(restart, step, x_adv)``, if given, sees every iterate (``step = 0`` is the
        start of each restart, after projection).  Returns a new array of ``x``'s shape and
        namespace; ``x`` is never modified.
        """
        xp, x = self._prepare(x, y)
        if self.eps == 0:
            return xp.asarray(x, copy=True)
        runs = max(1, self.num_random_init)
        best = self._run(x, y, xp, 0, callback)
        if runs == 1:
            return best
        best_loss = self._worstness(best, y)
        for restart in range(1, runs):
            x_adv = self._run(x, y, xp, restart, callback)
            loss = self._worstness(x_adv, y)
            worse = loss > best_loss
            best = xp.where(xp.expand_dims(worse, axis=-1), x_adv, best)
            best_loss = xp.where(worse, loss, best_loss)
        return best


class BasicIterativeMethod(ProjectedGradientDescent):
    """Iterative FGSM (Kurakin et al.): :class:`ProjectedGradientDescent` started at ``x``, with
    no random start (``num_random_init = 0``)."""

    def __init__(
        self,
        target: AttackTarget,
        eps: float,
        eps_step: float,
        max_iter: int = 100,
        norm: Any = np.inf,
        targeted: bool = False,
        clip_min: float | None = None,
        clip_max: float | None = None,
        scheme: str | Scheme | None = None,
    ) -> None:
        super().__init__(
            target, eps, eps_step, max_iter, 0, norm, targeted, clip_min, clip_max, scheme
        )


class ProjectedQuantizedGradientDescent(ProjectedGradientDescent):
    """PQGD (Liu & Tsang, seeds/quantized-gradients-paper.txt, eq. 7): l_inf PGD whose step
    direction is the quantized gradient, :class:`~gfgsm.schemes.Quantized` ``(b)``.

    ``b = 1`` is PGD with sign steps.  Scaling: the paper steps ``alpha zeta(b g / ||g||_inf)``
    (integers up to ``b``); gfgsm's scheme divides by ``b`` so that ``eps_step`` is the largest
    move of a coordinate in one step: the paper's ``alpha`` is ``eps_step = alpha b`` here.

    Parameters
    ----------
    b : the quantization level, a positive integer.
    Others : as in :class:`ProjectedGradientDescent` (``norm`` is always ``inf``).
    """

    def __init__(
        self,
        target: AttackTarget,
        eps: float,
        eps_step: float,
        max_iter: int = 100,
        b: int = 100,
        num_random_init: int = 0,
        targeted: bool = False,
        clip_min: float | None = None,
        clip_max: float | None = None,
        seed: Seed | list[Seed] | None = None,
    ) -> None:
        super().__init__(
            target, eps, eps_step, max_iter, num_random_init, np.inf, targeted, clip_min,
            clip_max, Quantized(b), seed,
        )
        self.b = self.scheme.b

    def _params(self) -> dict[str, Any]:
        params = super()._params()
        del params["norm"], params["scheme"]
        return {**params, "b": self.b}


#: Short names.
IterativeFGSM = BasicIterativeMethod
PQGD = ProjectedQuantizedGradientDescent
