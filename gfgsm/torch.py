"""PyTorch adapter (optional extra ``torch``): gfgsm's gradient schemes for any ``torch.nn.Module``.

* :func:`perturb`: ``x + eps d(g)`` with ``g`` the per-sample input gradient and ``d`` a
  :class:`~gfgsm.schemes.Scheme` (sign, l_q, power, quantized; docs/theory.md s.6), detached;
* :class:`GFGSMLoss`: the G-FGSM training loss ``alpha l(x) + (1 - alpha) l(x_adv)``
  (``alpha = clean_weight``) with the perturbation held fixed, as adversarial training on
  networks does (docs/theory.md s.6, "Two estimators, one name");
* :class:`TorchTarget`: a model and a loss as an :class:`~gfgsm.nn.attacks.AttackTarget`, so the
  iterative attacks of :mod:`gfgsm.nn.attacks` (PGD, PQGD, ...) run on torch tensors.

Per-sample gradients: the input gradient is taken of the *sum* of the per-sample losses
(``loss_fn`` with ``reduction="none"``), so each sample's gradient is its own (docs/theory.md
s.6).  A
mean-reduced loss would scale every gradient by ``1/n``, which no gfgsm scheme sees (each sample
is normalised by its own gradient); models that mix samples (batch norm in training mode) are the
exception, there the samples' gradients are not separable at all.

The schemes run on the tensors themselves (through ``array_api_compat``'s torch namespace): the
same code as the NumPy path, on the tensor's device, with no copy to the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from gfgsm.nn.attacks import _check_clip, _check_eps
from gfgsm.schemes import Scheme, get_scheme

__all__ = ["GFGSMLoss", "TorchTarget", "input_gradient", "perturb"]

LossFn = Callable[[torch.Tensor, Any], torch.Tensor]


def input_gradient(
    model: torch.nn.Module, loss_fn: LossFn, x: torch.Tensor, y: Any
) -> torch.Tensor:
    """Per-sample input gradients: ``grad_x sum_i loss_fn(model(x), y)_i``, shape ``x.shape``.

    ``x`` is detached first (the caller's graph and ``x.grad`` are untouched) and the model's
    parameters get no ``.grad`` (only the input's gradient is computed).  Works under
    ``torch.no_grad()`` too.
    """
    x_ = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(model(x_), y)
        (g,) = torch.autograd.grad(loss.sum(), x_)
    return g


def _check_sample_dims(sample_dims: Any, x: torch.Tensor) -> int:
    if isinstance(sample_dims, bool) or not isinstance(sample_dims, int) or sample_dims < 0:
        raise ValueError(f"sample_dims must be a nonnegative integer, got {sample_dims!r}")
    if x.ndim <= sample_dims:
        raise ValueError(
            f"x of shape {tuple(x.shape)} has no feature axes after sample_dims={sample_dims}"
        )
    return sample_dims


def _direction(scheme: Scheme, g: torch.Tensor, sample_dims: int) -> torch.Tensor:
    """``scheme.direction`` per sample: the feature axes of each sample flattened into one."""
    flat = g.reshape(*g.shape[:sample_dims], -1)
    return scheme.direction(flat).reshape(g.shape)


def perturb(
    model: torch.nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: Any,
    eps: float,
    scheme: str | Scheme = "sign",
    *,
    targeted: bool = False,
    clip_min: float | None = None,
    clip_max: float | None = None,
    sample_dims: int = 1,
) -> torch.Tensor:
    """The one-step scheme perturbation ``x + eps d(g)``, detached (docs/theory.md s.6).

    Parameters
    ----------
    model : any module mapping ``x`` to the input of ``loss_fn``.
    loss_fn : ``loss_fn(model(x), y)``, preferably with ``reduction="none"`` (see the module
        docstring), e.g. ``torch.nn.BCEWithLogitsLoss(reduction="none")``.
    x : ``(n, *features)`` inputs (``sample_dims`` leading axes index the samples, e.g. 2 for
        ``(R, n, d)``; each sample's direction uses all its feature axes, flattened).
    y : labels (true labels; target labels when ``targeted``).
    eps : the budget, ``>= 0`` (``0`` returns a detached copy of ``x``).
    scheme : ``"sign"`` (FGSM) or a :class:`~gfgsm.schemes.Scheme` such as ``Lq(2)``,
        ``Power(r)``, ``Quantized(b)``; ``d`` lies in its unit ball.
    targeted : step against the gradient (descend the loss of the target labels).
    clip_min, clip_max : the valid input range, applied after the step (either may be ``None``).

    Returns
    -------
    A new tensor of ``x``'s shape, dtype and device, with no autograd history.
    """
    scheme = get_scheme(scheme)
    eps = _check_eps("eps", eps, positive=False)
    clip_min, clip_max = _check_clip(clip_min, clip_max)
    sample_dims = _check_sample_dims(sample_dims, x)
    x0 = x.detach()
    if eps == 0:
        return x0.clone()
    g = input_gradient(model, loss_fn, x0, y)
    x_adv = x0 + eps * _direction(scheme, -g if targeted else g, sample_dims)
    if clip_min is not None or clip_max is not None:
        x_adv = torch.clamp(x_adv, min=clip_min, max=clip_max)
    return x_adv


class GFGSMLoss(torch.nn.Module):
    """G-FGSM loss for adversarial training: ``alpha l(x) + (1 - alpha) l(x_adv)``.

    ``x_adv = perturb(model, loss_fn, x, y, eps, scheme)`` is recomputed at every call and held
    fixed (detached): the weights' gradient is that of the loss at the fixed ``x_adv``, the
    network practice of docs/theory.md s.6 (for the sign scheme it has the same stationary points as
    differentiating through the perturbation).

    Parameters
    ----------
    model, loss_fn, eps, scheme : as in :func:`perturb`.
    clean_weight : Goodfellow's ``alpha`` in ``[0, 1]`` (default 0: adversarial loss only).
    reduction : ``"mean"`` (default) or ``"sum"`` over the per-sample losses, or ``"none"``.
    clip_min, clip_max, sample_dims : as in :func:`perturb`.

    With ``torch.nn.Linear`` and ``BCEWithLogitsLoss(reduction="none")`` and the sign scheme the
    value is the binomial ``Q_n`` of :func:`gfgsm.objective` at ``lam = eps``.  The perturbation
    costs one extra forward and backward pass; modules with state updated in the forward pass
    (batch norm in training mode) see the extra pass.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn,
        eps: float,
        scheme: str | Scheme = "sign",
        clean_weight: float = 0.0,
        *,
        reduction: str = "mean",
        clip_min: float | None = None,
        clip_max: float | None = None,
        sample_dims: int = 1,
    ) -> None:
        super().__init__()
        cw = clean_weight
        if isinstance(cw, bool) or not isinstance(cw, int | float) or not 0.0 <= cw <= 1.0:
            raise ValueError(f"clean_weight must be a number in [0, 1], got {clean_weight!r}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.model = model
        self.loss_fn = loss_fn
        self.eps = _check_eps("eps", eps, positive=False)
        self.scheme = get_scheme(scheme)
        self.clean_weight = float(cw)
        self.reduction = reduction
        self.clip_min, self.clip_max = _check_clip(clip_min, clip_max)
        self.sample_dims = sample_dims

    def extra_repr(self) -> str:
        return (
            f"eps={self.eps}, scheme={self.scheme!r}, clean_weight={self.clean_weight}, "
            f"reduction={self.reduction!r}"
        )

    def _reduce(self, loss: torch.Tensor) -> torch.Tensor:
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss

    def perturb(self, x: torch.Tensor, y: Any) -> torch.Tensor:
        """The fixed adversarial inputs used by :meth:`forward`."""
        return perturb(
            self.model, self.loss_fn, x, y, self.eps, self.scheme,
            clip_min=self.clip_min, clip_max=self.clip_max, sample_dims=self.sample_dims,
        )

    def forward(self, x: torch.Tensor, y: Any) -> torch.Tensor:
        """``clean_weight * l(x) + (1 - clean_weight) * l(x_adv)``, reduced."""
        alpha = self.clean_weight
        out = None
        if alpha < 1.0:
            x_adv = self.perturb(x, y)
            out = (1.0 - alpha) * self._reduce(self.loss_fn(self.model(x_adv), y))
        if alpha > 0.0:
            clean = alpha * self._reduce(self.loss_fn(self.model(x), y))
            out = clean if out is None else out + clean
        return out


class TorchTarget:
    """A torch model and per-sample loss as an :class:`~gfgsm.nn.attacks.AttackTarget`.

    ``TorchTarget(model, loss_fn)`` lets the attacks of :mod:`gfgsm.nn.attacks` run on torch
    tensors (they compute in the tensors' own namespace): inputs ``(..., n, d)`` with the
    features on the last axis, as the attacks expect.  ``loss_fn`` must return per-sample losses
    (``reduction="none"``); trailing axes of the loss beyond ``X.shape[:-1]`` (e.g. the ``(n, 1)``
    of ``BCEWithLogitsLoss`` on a one-output model) are summed.
    """

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn) -> None:
        self.model = model
        self.loss_fn = loss_fn

    def input_gradient(self, X: torch.Tensor, y: Any) -> torch.Tensor:
        """Per-sample input gradients, shape ``X.shape`` (see :func:`input_gradient`)."""
        return input_gradient(self.model, self.loss_fn, X, y)

    def per_sample_loss(self, X: torch.Tensor, y: Any) -> torch.Tensor:
        """Per-sample losses, shape ``X.shape[:-1]``."""
        with torch.no_grad():
            loss = self.loss_fn(self.model(X), y)
        lead = tuple(X.shape[:-1])
        if tuple(loss.shape[: len(lead)]) != lead:
            raise ValueError(
                f"loss_fn must return per-sample losses (reduction='none') of shape {lead}, "
                f"got shape {tuple(loss.shape)}"
            )
        return loss.reshape(*lead, -1).sum(dim=-1) if loss.ndim > len(lead) else loss
