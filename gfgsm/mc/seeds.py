"""Seeds of a study: one ``SeedSequence`` per (condition, replication), independent of chunking.

Replication ``r`` of condition ``c`` of a study with seed ``s`` draws its data from
``default_rng(SeedSequence(s, spawn_key=(c, r)))``: the child ``r`` of the child ``c`` of
``SeedSequence(s)`` (NumPy's spawning tree), so the same replication gets the same data whatever
the chunk it falls in, the executor, or the number of workers.  It is also replication ``r`` of
``dgp.sample(n, seed=condition_seed(s, c), R)`` for any ``R > r`` (:mod:`gfgsm.designs`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["condition_seed", "replication_seed"]


def _check(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"a study seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def condition_seed(seed: int, condition: int) -> np.random.SeedSequence:
    """``SeedSequence(seed).spawn(...)[condition]``, built without mutating any sequence."""
    return np.random.SeedSequence(_check(seed), spawn_key=(int(condition),))


def replication_seed(seed: int, condition: int, rep: int) -> np.random.SeedSequence:
    """The seed of replication ``rep`` of ``condition``."""
    return np.random.SeedSequence(_check(seed), spawn_key=(int(condition), int(rep)))
