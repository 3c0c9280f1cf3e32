"""Seeds: what a ``seed=`` argument may be, and the root ``SeedSequence`` it names."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["SeedLike", "root_seed"]

SeedLike = int | np.random.SeedSequence | np.random.Generator | None


def root_seed(seed: SeedLike) -> np.random.SeedSequence:
    """The root ``SeedSequence`` of a ``seed=`` argument (a Generator is a stream: 256 bits
    drawn from it seed the root)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        # A Generator is a stream: 256 bits drawn from it seed the replications, so two calls
        # on the same Generator give new data, and a Generator in a given state gives the same.
        return np.random.SeedSequence(seed.integers(0, 2**63, size=4, dtype=np.uint64).tolist())
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        if seed is not None and int(seed) < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        return np.random.SeedSequence(None if seed is None else int(seed))
    raise TypeError(
        f"seed must be None, an int, a numpy SeedSequence or a numpy Generator; got {seed!r}"
    )
