"""Simulation studies in the ADEMP structure (Morris, White & Crowther 2019).

A :class:`Study` names its **A**ims, builds its **D**ata-generating mechanisms from a factorial
grid of conditions (``make_dgp(condition) -> DGP``), states its **E**stimands (the true
``theta0 = (intercept, beta)`` of each DGP), lists its **M**ethods (:class:`MethodSpec`: G-FGSM
or PL with a penalty, scheme, adversary and ``lam`` rule) and its **P**erformance measures
(:mod:`gfgsm.mc.measures`).  Named presets (``quick``, ``full``) set the number of replications
and may narrow or widen the grid.

Studies whose replications are not GLM fits (the networks of :mod:`gfgsm.nn`) give a
``compute`` hook: a function of (study, condition, data generator, replication seeds, backend)
returning the tidy rows of a chunk; their methods are any objects with a ``name`` and a
``to_json()`` (e.g. :class:`gfgsm.nn.study.NetworkMethod`).  Seeds, chunks, executors, the store
and resumption are the engine's in both cases.

A study's identity is the SHA-256 of its canonical JSON definition under a preset
(:meth:`Study.definition`): the grid, every condition's DGP (its ``repr`` holds family, design,
coefficients and error law), the methods, replications and seed.  Results stores refuse to mix
runs of different definitions.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..dgp import DGP
from ..tuning import LamRule  # re-exported: it lives below mc and nn

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ChunkCompute", "LamRule", "Method", "MethodSpec", "Preset", "Study"]


@runtime_checkable
class Method(Protocol):
    """What the engine needs of a method: a unique ``name`` and a JSON-able ``to_json()``."""

    name: str

    def to_json(self) -> dict[str, Any]: ...


#: ``compute(study, condition, dgp, reps, seeds, backend) -> DataFrame``: the tidy rows of
#: replications ``reps`` (global indices, seeds ``seeds[k]`` for ``reps[k]``) of one condition,
#: with at least the columns ``method`` and ``rep``.  It must be a pure function of its
#: arguments (each replication of its own seed only), so chunking does not change results.
#: With ``Study.compute_draws="stream"`` the fifth argument is instead the condition's
#: counter-based :class:`gfgsm.rng.Stream` for ``reps`` on the backend (what GLM studies draw
#: from), so a hook can draw with ``dgp.draw_stream(n, stream)`` and derive its own variables
#: with ``stream.child(label)``.
ChunkCompute = Callable[..., "pd.DataFrame"]




@dataclass(frozen=True)
class MethodSpec:
    """One estimator of a study: :func:`gfgsm.fit_batch` options and a ``lam`` rule."""

    name: str
    method: str  # "gfgsm" or "pl"
    penalty: str = "l1"
    lam: LamRule = field(default_factory=LamRule)
    adversary: str = "auto"
    clean_weight: float = 0.0
    scheme: str | None = None
    params: tuple[tuple[str, Any], ...] = ()  # penalty/scheme parameters, e.g. (("r", 0.5),)
    #: Tuning: with ``select="bic"`` every replication is fitted at ``lam * g`` for each ``g``
    #: of ``grid`` and keeps the fit with the smallest BIC (the same rule for every method,
    #: :func:`gfgsm.tuning.bic`: ``n log(RSS/n) + log(n) df`` for a family with a free
    #: dispersion (gaussian), ``deviance + log(n) df`` otherwise, ``df`` the number of nonzero
    #: coefficients including the intercept).
    select: str | None = None
    grid: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in ("gfgsm", "pl"):
            raise ValueError(f"method {self.name!r}: unknown method {self.method!r}")
        if not self.name:
            raise ValueError("a method needs a name")
        if self.select not in (None, "bic"):
            raise ValueError(f"method {self.name!r}: unknown select {self.select!r}")
        if self.select is not None and (not self.grid or min(self.grid) < 0):
            raise ValueError(f"method {self.name!r}: select needs a grid of lam multipliers "
                             ">= 0")

    def fit_options(self) -> dict[str, Any]:
        """:func:`gfgsm.fit_batch` keywords.  PL with a ``scheme`` is PL with the scheme's
        induced penalty (docs/theory.md s.6), the comparator of G-FGSM with that scheme."""
        opts: dict[str, Any] = {"method": self.method, "penalty": self.penalty}
        if self.method == "gfgsm":
            opts.update(adversary=self.adversary, clean_weight=self.clean_weight)
            if self.scheme is not None:
                opts["scheme"] = self.scheme
        elif self.scheme is not None:
            from ..schemes import get_scheme

            opts["penalty"] = get_scheme(self.scheme, **dict(self.params)).induced_penalty
            return opts
        opts.update(dict(self.params))
        return opts

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "method": self.method, "penalty": self.penalty,
            "lam": {"exponent": self.lam.exponent, "scale": self.lam.scale},
            "adversary": self.adversary, "clean_weight": self.clean_weight,
            "scheme": self.scheme, "params": [list(kv) for kv in self.params],
            "lam_multiplier": self.lam.multiplier, "select": self.select,
            "grid": list(self.grid),
        }


@dataclass(frozen=True)
class Preset:
    """A named size of a study: replications per condition and optional grid overrides."""

    reps: int
    factors: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    description: str = ""
    #: Cells of the grid left out: a condition is dropped when it matches every factor value of
    #: any one mapping (e.g. ``{"family": "poisson", "n": 25600}``), so that a factor can run
    #: further for the levels of another factor that need it.  The conditions kept draw from
    #: the seeds of their places in the whole grid, so that excluding cells does not change
    #: the data of the others.
    exclude: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.reps, bool) or not isinstance(self.reps, int) or self.reps < 1:
            raise ValueError(f"replications must be a positive integer, got {self.reps!r}")
        if isinstance(self.exclude, Mapping) or not all(
                isinstance(e, Mapping) and e for e in self.exclude):
            raise ValueError("exclude must be a sequence of non-empty mappings factor -> value, "
                             f"got {self.exclude!r}")
        object.__setattr__(self, "exclude", tuple(dict(e) for e in self.exclude))


@dataclass(frozen=True)
class Study:
    """An ADEMP simulation study (module docstring)."""

    name: str
    aims: str
    factors: Mapping[str, Sequence[Any]]
    make_dgp: Callable[[Mapping[str, Any]], DGP | Any]
    methods: tuple[MethodSpec | Method, ...]
    presets: Mapping[str, Preset]
    estimands: str = "theta0 = (intercept, beta) of each condition's DGP"
    measures: tuple[str, ...] = ("bias", "empse", "mse", "rmse")
    seed: int = 20181029
    version: int = 1
    #: Chunk computation other than GLM fits (module docstring); ``None``: every method is a
    #: :class:`MethodSpec` fitted by :func:`gfgsm.fit_batch`.
    compute: ChunkCompute | None = None
    #: Default replications per chunk when :func:`gfgsm.mc.run` is given none (``None``: sized
    #: by its memory budget, GLM studies only).
    chunk_size: int | None = None
    #: What a compute hook receives to draw from: ``"seeds"`` (one ``SeedSequence`` per
    #: replication, NumPy generators) or ``"stream"`` (the condition's counter-based stream).
    compute_draws: str = "seeds"

    def __post_init__(self) -> None:
        if self.compute_draws not in ("seeds", "stream"):
            raise ValueError(f"study {self.name!r}: compute_draws must be 'seeds' or 'stream', "
                             f"got {self.compute_draws!r}")
        if not self.methods:
            raise ValueError(f"study {self.name!r} has no methods")
        for m in self.methods:
            if not isinstance(m, Method):
                raise TypeError(f"study {self.name!r}: method {m!r} has no name/to_json()")
            if self.compute is None and not isinstance(m, MethodSpec):
                raise TypeError(f"study {self.name!r}: method {m.name!r} is not a MethodSpec; "
                                "give the study a compute hook to run it")
        if self.chunk_size is not None and (isinstance(self.chunk_size, bool) or not isinstance(
                self.chunk_size, int) or self.chunk_size < 1):
            raise ValueError(f"study {self.name!r}: chunk_size must be a positive integer, got "
                             f"{self.chunk_size!r}")
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"study {self.name!r}: method names must be unique, got {names}")
        for key in ("quick", "full"):
            if key not in self.presets:
                raise ValueError(f"study {self.name!r} needs a {key!r} preset")

    def preset(self, name: str) -> Preset:
        if name not in self.presets:
            raise ValueError(f"study {self.name!r} has no preset {name!r}; "
                             f"presets: {sorted(self.presets)}")
        return self.presets[name]

    def conditions(self, preset: str) -> list[dict[str, Any]]:
        """The factorial grid of the preset, less its excluded cells (:class:`Preset`): a list
        of condition dicts, in a fixed order."""
        return [c for _, c in self._kept(preset)]

    def seed_indices(self, preset: str) -> list[int]:
        """Per condition of :meth:`conditions`, its place in the whole factorial grid: the index
        its random numbers are drawn from (:mod:`gfgsm.mc.seeds`).  Equal to the position when
        the preset excludes nothing."""
        return [i for i, _ in self._kept(preset)]

    def _kept(self, preset: str) -> list[tuple[int, dict[str, Any]]]:
        pre = self.preset(preset)
        grid = {**dict(self.factors), **dict(pre.factors)}
        keys = list(grid)
        for e in pre.exclude:
            unknown = set(e) - set(keys)
            if unknown:
                raise ValueError(f"study {self.name!r}, preset {preset!r}: exclude names "
                                 f"unknown factors {sorted(unknown)}; factors: {keys}")
        whole = [dict(zip(keys, values, strict=True)) for values in
                 itertools.product(*(list(grid[k]) for k in keys))]
        return [(i, c) for i, c in enumerate(whole)
                if not any(all(c[k] == v for k, v in e.items()) for e in pre.exclude)]

    def definition(self, preset: str) -> dict[str, Any]:
        """The canonical JSON-able definition under ``preset`` (what the hash covers)."""
        conds = self.conditions(preset)
        return _strict_json({
            "name": self.name,
            "version": self.version,
            "aims": self.aims,
            "estimands": self.estimands,
            "preset": preset,
            "reps": self.preset(preset).reps,
            "seed": self.seed,
            "factors": list(conds[0]) if conds else [],
            "conditions": [{"condition": _jsonable(c), "dgp": repr(self.make_dgp(c)),
                            # recorded only where cells are excluded (existing hashes stay)
                            **({"seed_index": i} if self.preset(preset).exclude else {})}
                           for i, c in zip(self.seed_indices(preset), conds, strict=True)],
            "methods": [m.to_json() for m in self.methods],
            "measures": list(self.measures),
            **({"compute": f"{self.compute.__module__}.{self.compute.__qualname__}"}
               if self.compute is not None else {}),
            # recorded only when not the default, so the hashes of existing studies stay
            **({"compute_draws": self.compute_draws} if self.compute_draws != "seeds" else {}),
        })

    def hash(self, preset: str) -> str:
        text = json.dumps(self.definition(preset), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _strict_json(value: Any) -> Any:
    """``value`` with every non-finite float written as the string ``"inf"``, ``"-inf"`` or
    ``"nan"`` (recursively): strict JSON has no Infinity/NaN literals, and manifests must be
    readable by any JSON parser (e.g. the oracle weights ``+inf`` of the sparsity study)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(v) for v in value]
    return value


def _jsonable(c: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in c.items():
        out[k] = v.item() if hasattr(v, "item") else v
        if not isinstance(out[k], str | int | float | bool | type(None)):
            out[k] = repr(v)
    return out
