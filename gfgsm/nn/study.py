"""Network training methods as methods of a Monte Carlo study (:mod:`gfgsm.mc`).

A :class:`NetworkMethod` is the network counterpart of :class:`gfgsm.mc.MethodSpec`: a named set
of :func:`gfgsm.nn.train_networks` options (perturbation, scheme, budget ``lam``, weight decay,
``clean_weight``) whose budget and decay may follow a :class:`gfgsm.tuning.LamRule` in ``n``.  A
study with network methods gives the engine a ``compute`` hook (:class:`gfgsm.mc.Study`) that
trains the chunk's replications with :meth:`NetworkMethod.train`: network ``r`` is seeded by its
replication's ``SeedSequence`` alone, so results do not depend on chunking (docs/theory.md s.6,
"replication independence").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gfgsm.nn.training import DECAYS, PERTURBATIONS, NetworkFit, train_networks
from gfgsm.tuning import LamRule

__all__ = ["NetworkMethod"]


def _level(rule: LamRule | float, cond: Mapping[str, Any], what: str) -> float:
    if isinstance(rule, LamRule):
        return float(rule(cond))
    value = float(rule)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{what} must be a finite number >= 0 or a LamRule, got {rule!r}")
    return value


def _describe(rule: LamRule | float) -> Any:
    if isinstance(rule, LamRule):
        return {"exponent": rule.exponent, "scale": rule.scale, "multiplier": rule.multiplier}
    return float(rule)


@dataclass(frozen=True)
class NetworkMethod:
    """One way of training networks in a study.

    Parameters
    ----------
    name : unique within the study.
    perturbation : as :func:`gfgsm.nn.train_networks` (``"adversarial"``, ``"fgsm_rs"``,
        ``"uniform"``, ``"gaussian"``, ``"none"``).
    scheme, scheme_params : the gradient scheme and its parameters, e.g. ``("lq", (("q", 2),))``.
    lam : the budget: a number, or a :class:`~gfgsm.tuning.LamRule` of the condition (e.g.
        ``LamRule()`` = ``lam0 / sqrt(n)``).
    weight_decay, decay : weight-decay level (number or rule) and kind (``"l2"``, ``"l1"``).
    clean_weight : Goodfellow's ``alpha``.
    options : further :func:`~gfgsm.nn.train_networks` keywords as ``(key, value)`` pairs.
    """

    name: str
    perturbation: str = "adversarial"
    scheme: str = "sign"
    scheme_params: tuple[tuple[str, Any], ...] = ()
    lam: LamRule | float = 0.0
    weight_decay: LamRule | float = 0.0
    decay: str = "l2"
    clean_weight: float = 0.5
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a method needs a name")
        if self.perturbation not in PERTURBATIONS:
            raise ValueError(f"method {self.name!r}: unknown perturbation "
                             f"{self.perturbation!r}; expected one of {PERTURBATIONS}")
        if self.decay not in DECAYS:
            raise ValueError(f"method {self.name!r}: unknown decay {self.decay!r}; expected "
                             f"one of {DECAYS}")
        reserved = {"X", "y", "lam", "scheme", "scheme_params", "perturbation", "weight_decay",
                    "decay", "clean_weight", "random_state", "n_networks"}
        clash = reserved & {k for k, _ in self.options}
        if clash:
            raise ValueError(f"method {self.name!r}: options may not set {sorted(clash)}")

    def train_options(self, condition: Mapping[str, Any]) -> dict[str, Any]:
        """The :func:`~gfgsm.nn.train_networks` keywords of this method under ``condition``."""
        return {
            "perturbation": self.perturbation,
            "scheme": self.scheme,
            "scheme_params": dict(self.scheme_params) or None,
            "lam": _level(self.lam, condition, "lam"),
            "weight_decay": _level(self.weight_decay, condition, "weight_decay"),
            "decay": self.decay,
            "clean_weight": float(self.clean_weight),
            **dict(self.options),
        }

    def train(self, X: Any, y: Any, condition: Mapping[str, Any],
              seeds: Sequence[np.random.SeedSequence], backend: str | None = None,
              **common: Any) -> NetworkFit:
        """Train one network per seed (``X``: ``(n, d)`` shared or ``(R, n, d)`` one data set
        per replication); ``common`` holds the study-wide keywords (``hidden``, ``family``,
        ``solver``, ...), which the method's own ``options`` override."""
        opts = {**common, **self.train_options(condition)}
        return train_networks(X, y, random_state=list(seeds), backend=backend, warn=False,
                              **opts)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": "network", "perturbation": self.perturbation,
            "scheme": self.scheme, "scheme_params": [list(kv) for kv in self.scheme_params],
            "lam": _describe(self.lam), "weight_decay": _describe(self.weight_decay),
            "decay": self.decay, "clean_weight": self.clean_weight,
            "options": [[k, v if isinstance(v, str | int | float | bool | type(None)) else
                         repr(v)] for k, v in self.options],
        }
