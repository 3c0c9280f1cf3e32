"""gfgsm: Generalized FGSM adversarial training of GLMs as penalized estimation.

The theory, with its derivations, is docs/theory.md in the repository; its notation is the code's:
``lam``, ``eta``, ``mu``, ``phi``, ``D``, ``V``, ``clean_weight``.
"""

from . import designs, inference, intervals, theory
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
from .inference import Debiased, debias
from .intervals import Intervals, conf_int
from .objectives import objective
from .penalties import get_penalty
from .schemes import get_scheme

__version__ = "0.1.0.dev0"

#: Subpackages loaded on first access (PEP 562), so that ``import gfgsm`` stays light: the
#: engine (pandas, pyarrow; dask only when its executor runs), the networks, the random
#: numbers, the report and the PyTorch adapter (which needs torch).
_LAZY = ("mc", "nn", "report", "rng", "torch")


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'gfgsm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__all__ = [
    "DGP",
    "GFGSM",
    "BatchFit",
    "BernoulliDesign",
    "Binomial",
    "CustomDesign",
    "Debiased",
    "Design",
    "Family",
    "Gaussian",
    "GaussianDesign",
    "Intervals",
    "MixtureDesign",
    "PenalizedGLM",
    "Poisson",
    "SignNeutrality",
    "UniformDesign",
    "conf_int",
    "debias",
    "designs",
    "fit_batch",
    "get_family",
    "get_penalty",
    "get_scheme",
    "inference",
    "intervals",
    "objective",
    "sign_neutrality",
    "theory",
]
