"""The Monte Carlo engine: studies (ADEMP), seeds, executors, a results store, measures.

``gfgsm.mc.run(study, preset, out)`` runs or resumes a study; ``gfgsm.mc.load(out)`` reads its
tidy results; :mod:`gfgsm.mc.measures` turns them into performance measures with Monte Carlo
standard errors.
"""

from .registry import get_study, list_studies, load_study
from .runner import compute_chunk, run
from .spec import LamRule, MethodSpec, Preset, Study
from .store import ResultStore, load

__all__ = [
    "LamRule",
    "MethodSpec",
    "Preset",
    "ResultStore",
    "Study",
    "compute_chunk",
    "get_study",
    "list_studies",
    "load",
    "load_study",
    "run",
]
