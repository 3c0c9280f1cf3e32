"""gfgsm: Generalized FGSM adversarial training of GLMs as penalized estimation.

The design reference is THEORY.md (shipped beside the project); its notation is the code's:
``lam``, ``eta``, ``mu``, ``phi``, ``D``, ``V``, ``clean_weight``.
"""

from . import designs, theory
from .batch import BatchFit, fit_batch
from .designs import (
    BernoulliDesign,
    CustomDesign,
    Design,
    GaussianDesign,
    MixtureDesign,
    UniformDesign,
)
from .dgp import DGP
from .diagnostics import SignNeutrality, sign_neutrality
from .estimators import GFGSM, PenalizedGLM
from .families import Binomial, Family, Gaussian, Poisson, get_family
from .objectives import objective
from .penalties import get_penalty
from .schemes import get_scheme

__version__ = "0.1.0.dev0"

__all__ = [
    "DGP",
    "GFGSM",
    "BatchFit",
    "BernoulliDesign",
    "Binomial",
    "CustomDesign",
    "Design",
    "Family",
    "Gaussian",
    "GaussianDesign",
    "MixtureDesign",
    "PenalizedGLM",
    "Poisson",
    "SignNeutrality",
    "UniformDesign",
    "designs",
    "fit_batch",
    "get_family",
    "get_penalty",
    "get_scheme",
    "objective",
    "sign_neutrality",
    "theory",
]
