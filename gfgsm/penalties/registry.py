"""The penalties by name: :func:`get_penalty`, and the lookup it shares with
:func:`gfgsm.schemes.get_scheme` (:func:`resolve`, :func:`build`)."""

from __future__ import annotations

import inspect
from typing import Any

from .base import Penalty
from .separable import L1, MCP, SCAD, AdaptiveL1, Lr, WeightedL1

__all__ = ["build", "get_penalty", "resolve"]

_REGISTRY: dict[str, type[Penalty]] = {
    "l1": L1,
    "weighted_l1": WeightedL1,
    "adaptive_l1": AdaptiveL1,
    "lr": Lr,
    "scad": SCAD,
    "mcp": MCP,
}


def build(kind: str, registry: dict[str, type], name: str, params: dict[str, Any]) -> Any:
    """Instantiate ``registry[name](**params)``, turning signature mismatches into ValueError."""
    sig = inspect.signature(registry[name])
    accepted = list(sig.parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) or "none"
        raise ValueError(
            f"{kind} {name!r} got unexpected parameter(s) {', '.join(unknown)}; "
            f"it accepts: {allowed}"
        )
    required = [k for k, p in sig.parameters.items() if p.default is inspect.Parameter.empty]
    missing = [k for k in required if k not in params]
    if missing:
        raise ValueError(f"{kind} {name!r} needs parameter(s) {', '.join(missing)}")
    return registry[name](**params)


def resolve(kind: str, registry: dict[str, type], base: type, name_or_obj: Any,
            params: dict[str, Any]) -> Any:
    """``name_or_obj`` itself when it is an instance of ``base`` (and no ``params`` are given),
    else ``registry[name_or_obj.lower()](**params)`` through :func:`build`; ``ValueError`` for
    an unknown name (listing the valid ones) or parameters given with an instance."""
    if isinstance(name_or_obj, base):
        if params:
            raise ValueError(
                f"parameters {sorted(params)} cannot be applied to the instance {name_or_obj!r}"
            )
        return name_or_obj
    if not isinstance(name_or_obj, str) or name_or_obj.lower() not in registry:
        raise ValueError(f"unknown {kind} {name_or_obj!r}; valid names: {', '.join(registry)}")
    return build(kind, registry, name_or_obj.lower(), params)


def get_penalty(name_or_obj: str | Penalty, **params: Any) -> Penalty:
    """A :class:`Penalty` from its registry name and parameters, or an instance passed through.

    Names: ``"l1"``, ``"weighted_l1"`` (``weights=``), ``"adaptive_l1"`` (``weights=``, +inf
    allowed), ``"lr"`` (``r=``), ``"scad"`` (``a=3.7``), ``"mcp"`` (``gamma=3.0``).

    Raises
    ------
    ValueError
        for an unknown name (listing the valid ones), missing or unexpected parameters, or an
        out-of-range parameter (naming it and its value).
    """
    return resolve("penalty", _REGISTRY, Penalty, name_or_obj, params)
