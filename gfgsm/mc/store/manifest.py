"""The manifest of a results store: what it holds, read, validated and compared.

A store belongs to exactly one study definition; :func:`_identity_mismatch` says why another
definition may not add chunks to it, :func:`_warn_environment_change` when it is resumed under
other library versions or another backend.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from .atomic import _read_json

#: Version of the on-disk layout; bumped when files written by an older layout can't be read.
FORMAT_VERSION = 1
FORMAT_NAME = "gfgsm.mc.ResultStore"

MANIFEST = "manifest.json"
#: Manifest entries a store is identified by: each one changes the numbers of every chunk.
#: What must agree for a run to add chunks to a store: the definition, and the random-number
#: generator that drew its data (a store drawn another way is refused, never mixed).
IDENTITY_KEYS = ("study_hash", "preset", "seed", "generator")
REQUIRED_KEYS = ("study_hash", "study", "seed", "preset", "backend")


def library_versions() -> dict[str, str]:
    """Versions of everything that can change the stored numbers or files."""
    import platform

    import numpy
    import scipy

    import gfgsm  # imported here: gfgsm/__init__ may import this module while initialising

    return {
        "gfgsm": str(getattr(gfgsm, "__version__", "unknown")),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _normalise(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, ...), for comparisons."""
    return json.loads(json.dumps(value, sort_keys=True))


def _validate_manifest(manifest: Any) -> dict[str, Any]:
    if not isinstance(manifest, Mapping):
        raise TypeError(f"manifest must be a dict, got {type(manifest).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"manifest lacks required key(s) {missing}; it must hold "
                         f"{list(REQUIRED_KEYS)}")
    if not isinstance(manifest["study_hash"], str) or not manifest["study_hash"]:
        raise ValueError(f"manifest['study_hash'] must be a non-empty string, "
                         f"got {manifest['study_hash']!r}")
    try:
        out = _normalise(dict(manifest))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"manifest is not JSON-serialisable: {exc}") from exc
    return out


def _identity_mismatch(path: Path, stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    """The error message for a store written by another study definition, or ``""``."""
    diffs = [k for k in IDENTITY_KEYS if stored.get(k) != wanted.get(k)]
    if not diffs:
        return ""
    lines = [f"the results store {str(path)!r} was written by a different study definition; "
             "refusing to mix its chunks with this run's."]
    for k in diffs:
        lines.append(f"  {k}: store has {stored.get(k)!r}, this run has {wanted.get(k)!r}")
    lines.append("Choose another --out directory (or delete this one to start afresh).")
    return "\n".join(lines)


def _load_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise FileNotFoundError(f"no gfgsm results store at {str(path)!r}: not a directory")
    try:
        manifest = _read_json(manifest_path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no gfgsm results store at {str(path)!r}: it holds no "
                                f"{MANIFEST}") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"the manifest {str(manifest_path)!r} is unreadable ({exc}); "
                         "the store cannot be trusted") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("study_hash"), str):
        raise ValueError(f"the manifest {str(manifest_path)!r} is not a gfgsm results store "
                         "manifest (no study_hash)")
    fmt = manifest.get("format", {})
    if isinstance(fmt, dict) and fmt.get("version", FORMAT_VERSION) > FORMAT_VERSION:
        raise ValueError(f"the store {str(path)!r} uses layout version {fmt['version']}; this "
                         f"gfgsm reads up to {FORMAT_VERSION}; upgrade gfgsm")
    return manifest


def _warn_environment_change(path: Path, stored: Mapping[str, Any],
                             wanted: Mapping[str, Any]) -> None:
    """Warn when a store is resumed under other library versions or another backend."""
    changes = []
    old_v, new_v = stored.get("versions") or {}, wanted.get("versions") or {}
    for name in sorted(set(old_v) | set(new_v)):
        if name != "platform" and old_v.get(name) != new_v.get(name):
            changes.append(f"{name} {old_v.get(name)} -> {new_v.get(name)}")
    if stored.get("backend") != wanted.get("backend"):
        changes.append(f"backend {stored.get('backend')} -> {wanted.get('backend')}")
    if changes:
        warnings.warn(f"resuming the results store {str(path)!r} under a different environment "
                      f"({'; '.join(changes)}); new chunks may differ from old ones in the last "
                      "digits", UserWarning, stacklevel=3)
