"""Counter-based random numbers on the array backend (docs/theory.md, "Random numbers").

Every simulated data set of the package is drawn here: Philox4x32-10 (:mod:`.philox`) in
Array-API integer operations, and distributions built from IEEE-exact operations and portable
elementary functions (:mod:`._portable`), so that a value depends only on (seed, condition,
replication, variable, element) and is the same bits on NumPy, CuPy and ``array_api_strict``
whatever the chunking, executor or number of replications drawn together.

``Stream.create(key, reps, xp)`` is the entry point; :func:`stream_for` builds one from any
``seed=`` the package accepts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._seeds import root_seed
from .philox import philox4x32
from .streams import GENERATOR, Stream, key_from_seed

__all__ = ["GENERATOR", "Stream", "key_from_seed", "philox4x32", "stream_for"]


def stream_for(seed: Any, R: int, xp: Any) -> Stream:
    """The stream of replications ``0..R-1`` for a ``seed=`` argument.

    ``seed``: ``None`` (fresh entropy), an int, a ``SeedSequence`` (its key is its first two
    state words, so ``SeedSequence(s, spawn_key=(c,))`` is condition ``c`` of a study with seed
    ``s``) or a ``Generator`` (256 bits drawn from it seed the key).
    """
    root = root_seed(seed)
    return Stream.create(key_from_seed(root), np.arange(R, dtype=np.uint64), xp)
