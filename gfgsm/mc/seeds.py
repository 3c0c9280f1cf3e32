"""Seeds of a study: a Philox key per condition, a counter per replication.

Condition ``c`` of a study with seed ``s`` has the Philox key of
``SeedSequence(s, spawn_key=(c,))`` (:func:`condition_key`); replication ``r`` is counter ``r``
of that key (:mod:`gfgsm.rng`), so the same replication gets the same data whatever the chunk it
falls in, the executor, the number of workers or the backend.  It is replication ``r`` of
``dgp.sample(n, seed=condition_seed(s, c), R)`` for any ``R > r`` (:mod:`gfgsm.designs`).

Studies with their own compute hook (the networks) receive one ``SeedSequence`` per replication,
``SeedSequence(s, spawn_key=(c, r))`` (:func:`replication_seed`), for their NumPy generators.
"""

from __future__ import annotations

import numpy as np

__all__ = ["condition_key", "condition_seed", "replication_seed"]


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


def condition_key(seed: int, condition: int) -> tuple[int, int]:
    """The Philox key of ``condition`` (:func:`gfgsm.rng.key_from_seed` of its seed)."""
    from ..rng import key_from_seed

    return key_from_seed(condition_seed(seed, condition))
