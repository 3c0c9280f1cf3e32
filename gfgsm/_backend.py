"""The one place that decides the array namespace.

Every numerical routine in :mod:`gfgsm` works on arrays of an Array-API namespace ``xp``
(``array_api_compat``'s wrapped NumPy by default, CuPy on a GPU, ``array_api_strict`` in the
portability tests).  Nothing else in the package imports NumPy or CuPy to do arithmetic on
user data; it asks this module for ``xp`` and uses only Array-API functions on it.

Host/device moves (``to_numpy``) happen at the boundaries only: validation, results, tests.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "BACKENDS",
    "asarray",
    "get_namespace",
    "is_numpy_namespace",
    "namespace_name",
    "resolve_backend",
    "to_numpy",
]

#: Names accepted by ``backend=``.
BACKENDS = ("numpy", "cupy", "array_api_strict")


def resolve_backend(backend: str | None) -> Any:
    """Return the Array-API namespace for a backend name (``None`` means NumPy).

    Raises
    ------
    ValueError
        for an unknown name.
    ImportError
        when the backend's package is not installed (CuPy needs the ``gpu`` extra and a GPU).
    """
    if backend is None or backend == "numpy":
        import array_api_compat.numpy as xp

        return xp
    if backend == "cupy":
        try:
            import array_api_compat.cupy as xp
        except ImportError as exc:  # pragma: no cover - no GPU in CI
            raise ImportError(
                "backend='cupy' needs CuPy and a CUDA device: pip install 'gfgsm[gpu]'"
            ) from exc
        return xp
    if backend == "array_api_strict":
        try:
            import array_api_strict as xp
        except ImportError as exc:  # pragma: no cover
            raise ImportError(
                "backend='array_api_strict' needs array-api-strict: pip install 'gfgsm[dev]'"
            ) from exc
        return xp
    raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")


def get_namespace(*arrays: Any, backend: str | None = None) -> Any:
    """The namespace to compute in.

    An explicit ``backend`` wins; otherwise the namespace of the given arrays (CuPy arrays give
    CuPy, ``array_api_strict`` arrays give ``array_api_strict``); plain Python or NumPy input
    gives NumPy.
    """
    if backend is not None:
        return resolve_backend(backend)
    arrays = tuple(a for a in arrays if a is not None and not isinstance(a, int | float | bool))
    if not arrays:
        return resolve_backend("numpy")
    if all(isinstance(a, list | tuple) for a in arrays):
        return resolve_backend("numpy")
    arrays = tuple(a for a in arrays if not isinstance(a, list | tuple))
    return array_api_compat.array_namespace(*arrays)


def namespace_name(xp: Any) -> str:
    """``"numpy"``, ``"cupy"`` or ``"array_api_strict"`` for a namespace."""
    if array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if array_api_compat.is_cupy_namespace(xp):
        return "cupy"
    if getattr(xp, "__name__", "").startswith("array_api_strict"):
        return "array_api_strict"
    return getattr(xp, "__name__", repr(xp))


def is_numpy_namespace(xp: Any) -> bool:
    return bool(array_api_compat.is_numpy_namespace(xp))


def asarray(x: Any, xp: Any, dtype: Any = None) -> Any:
    """``x`` as an array of namespace ``xp`` (float64 unless ``dtype`` says otherwise).

    NumPy input is moved to the device of ``xp`` (one copy); input already in ``xp`` is not copied.
    """
    if dtype is None:
        dtype = xp.float64
    try:
        return xp.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        # array_api_strict and CuPy refuse some foreign inputs; go through the host.
        return xp.asarray(np.asarray(to_numpy(x)), dtype=dtype)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy (or view) of any array, on the host."""
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):  # pragma: no cover - no GPU in CI
        return x.get()
    if hasattr(x, "__dlpack__") and not isinstance(x, list | tuple):
        try:
            return np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError):
            pass
    if type(x).__module__.startswith("array_api_strict"):
        return np.asarray(x._array)
    return np.asarray(x)
