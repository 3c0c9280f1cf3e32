"""Batched neural networks on the array backend, trained with generalized FGSM (docs/theory.md s.6).

* :mod:`gfgsm.nn.networks`: ``R`` multilayer perceptrons as stacked arrays, analytic
  backpropagation and per-sample input gradients of the summed loss;
* :mod:`gfgsm.nn.training`: :func:`train_networks` (Adam, full-batch L-BFGS or ``"auto"``, the
  perturbation recomputed at every step and held fixed within it; "converged" means a small
  full-batch gradient; schemes, noise and weight-decay baselines, FGSM with random start and
  its catastrophic-overfitting monitor);
* :mod:`gfgsm.nn.estimators`: :class:`GFGSMNetwork`, the scikit-learn estimator;
* :mod:`gfgsm.nn.teacher`: :class:`TeacherNetwork`, data from a known network through a family;
* :mod:`gfgsm.nn.study`: :class:`NetworkMethod`, a training method of a Monte Carlo study;
* :mod:`gfgsm.nn.attacks`: FGSM, iterative FGSM, PGD with restarts and PQGD on any target with
  per-sample input gradients (networks through :class:`NetworkTarget`).
"""

from gfgsm.nn import attacks
from gfgsm.nn.estimators import GFGSMNetwork
from gfgsm.nn.networks import (
    MLP,
    Activation,
    FamilyOutput,
    NetworkTarget,
    Output,
    Params,
    SoftmaxOutput,
    get_activation,
    get_output,
)
from gfgsm.nn.study import NetworkMethod
from gfgsm.nn.teacher import TeacherNetwork
from gfgsm.nn.training import (
    CatastrophicOverfittingWarning,
    NetworkFit,
    detect_catastrophic_overfitting,
    train_networks,
)

__all__ = [
    "MLP",
    "Activation",
    "CatastrophicOverfittingWarning",
    "FamilyOutput",
    "GFGSMNetwork",
    "NetworkFit",
    "NetworkMethod",
    "NetworkTarget",
    "Output",
    "Params",
    "SoftmaxOutput",
    "TeacherNetwork",
    "attacks",
    "detect_catastrophic_overfitting",
    "get_activation",
    "get_output",
    "train_networks",
]
