"""Finding studies: registered names and study files.

A study is a :class:`~gfgsm.mc.spec.Study` object.  :func:`load_study` resolves a reference to
one, in this order:

* a **registered name**: an installed package exposes the study under the entry-point group
  ``gfgsm.studies`` (this project registers those of ``simulations/`` in its
  ``pyproject.toml``; a user's package can add its own the same way);
* a **study file**: ``path/to/study.py:NAME`` is the object ``NAME`` (a dotted name is followed
  attribute by attribute) of the Python file ``path/to/study.py``, and ``path/to/study.py``
  alone is the one ``Study`` object the file defines.  No package is needed.

How a study file is imported
----------------------------
The file is imported as the module ``gfgsm.mc._user_studies.d<hex>.<stem>``, where ``<hex>``
encodes the file's resolved directory and ``<stem>`` is its name without ``.py``; the directory
itself is the package ``gfgsm.mc._user_studies.d<hex>``.  Hence

* its ``if __name__ == "__main__":`` block does not run (the same file can also be a script);
* **relative imports reach the files beside it**: ``from . import helpers`` or
  ``from .helpers import make_dgp`` import ``helpers.py`` of the same directory (a plain
  ``import helpers`` does not: the directory is not put on ``sys.path``, and nothing else is);
* the module name is a function of the file's location only, so a worker process (the
  ``processes`` and ``dask`` executors) imports the same file by itself when it unpickles the
  study's functions: the engine runs a study file exactly as a registered study, on every
  executor.  Files beside the study are imported from source, never from or into
  ``__pycache__``, so loading a study writes nothing.
* loading the same unchanged file again returns the module already imported (and so the same
  ``Study`` object); a file whose content changed is imported afresh.

The module name enters a study's definition (and hash) only through a ``compute`` hook
(``Study.compute``): resume the store of such a study from a file at the same location.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from .spec import Study

__all__ = ["NotAStudyError", "get_study", "list_studies", "load_study"]

GROUP = "gfgsm.studies"

#: The package under which study files are imported (module docstring); it is virtual, provided
#: by :class:`_StudyFileFinder` rather than by a folder of the installation.
USER_PACKAGE = "gfgsm.mc._user_studies"

#: How a file reference looks, for error messages.
_FILE_SYNTAX = "path/to/study.py or path/to/study.py:NAME"

#: Attribute of an imported study module: the SHA-256 of the source it was executed from.
_SOURCE_HASH = "__gfgsm_source_sha256__"


class NotAStudyError(TypeError):
    """A study reference names an object that is not a :class:`Study`."""


def list_studies() -> dict[str, Study]:
    """Every registered study, by name (loading each entry point)."""
    out: dict[str, Study] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        study = ep.load()
        if not isinstance(study, Study):
            raise NotAStudyError(f"entry point {ep.name!r} ({ep.value}) is not a gfgsm Study")
        out[ep.name] = study
    return out


def get_study(name: str) -> Study:
    """The study that ``name`` refers to: a registered name or a study file (:func:`load_study`).

    Kept for the engine and existing callers (:func:`gfgsm.mc.run` resolves a string with it, so
    ``run("path/to/study.py:STUDY")`` works as well as ``run("smoke")``)."""
    return load_study(name)


def load_study(ref: str) -> Study:
    """The :class:`Study` that ``ref`` refers to (module docstring for the rules).

    Parameters
    ----------
    ref : a registered study name (``gfgsm list``), ``"path/to/study.py:NAME"`` or
        ``"path/to/study.py"`` (a file that defines exactly one ``Study`` object).  A registered
        name wins over a file of the same spelling.

    Raises
    ------
    ValueError
        ``ref`` is neither a registered name nor a file reference; the file is not a ``.py``
        file; ``NAME`` is missing from the file; the file defines no ``Study`` or several and
        ``ref`` names none.
    FileNotFoundError
        the file does not exist.
    NotAStudyError
        (a ``TypeError``) the object ``ref`` names is not a ``Study``.
    TypeError
        ``ref`` is not a string.

    Any exception raised by the file's own code while it is imported propagates unchanged,
    with a note naming the file; a module whose import failed is not kept.
    """
    if not isinstance(ref, str):
        raise TypeError(f"a study reference must be a string, got {ref!r}")
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == ref]
    if matches:
        study = matches[0].load()
        if not isinstance(study, Study):
            raise NotAStudyError(f"entry point {ref!r} ({matches[0].value}) is not a gfgsm "
                                 "Study")
        return study
    file_ref = _split_file_ref(ref)
    if file_ref is None:
        known = sorted(ep.name for ep in entry_points(group=GROUP))
        raise ValueError(f"unknown study {ref!r}: not a registered study (registered studies: "
                         f"{known}) and not a study file ({_FILE_SYNTAX})")
    path, attr = file_ref
    module = _import_study_file(path)
    return _pick_study(module, path, attr)


def _split_file_ref(ref: str) -> tuple[str, str | None] | None:
    """``(path, NAME or None)`` of a file reference, ``None`` for anything else."""
    head, sep, tail = ref.rpartition(":")
    if sep and head.endswith(".py"):
        if not tail or not all(part.isidentifier() for part in tail.split(".")):
            raise ValueError(f"study reference {ref!r}: {tail!r} after the ':' is not a Python "
                             f"name ({_FILE_SYNTAX})")
        return head, tail
    if ref.endswith(".py"):
        return ref, None
    return None


def _studies_in(module: ModuleType) -> dict[str, Study]:
    """The module's public ``Study`` attributes by name, one name per object (the first)."""
    seen: set[int] = set()
    out: dict[str, Study] = {}
    for name, value in vars(module).items():
        if isinstance(value, Study) and not name.startswith("_") and id(value) not in seen:
            seen.add(id(value))
            out[name] = value
    return out


def _pick_study(module: ModuleType, path: str, attr: str | None) -> Study:
    """The study ``attr`` of ``module`` (imported from ``path``), or its only study."""
    found = _studies_in(module)
    if attr is None:
        if len(found) == 1:
            return next(iter(found.values()))
        if not found:
            raise ValueError(f"study file {path!r} defines no gfgsm Study object (a "
                             "gfgsm.mc.Study assigned to a module-level name)")
        raise ValueError(f"study file {path!r} defines {len(found)} Study objects "
                         f"({', '.join(found)}); choose one with {path}:NAME")
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"study file {path!r} has no attribute {attr!r}; the Study objects "
                             f"it defines: {sorted(found) or 'none'}")
        obj = getattr(obj, part)
    if not isinstance(obj, Study):
        raise NotAStudyError(f"{path}:{attr} is a {type(obj).__name__}, not a gfgsm Study "
                        f"(gfgsm.mc.Study); the Study objects the file defines: "
                        f"{sorted(found) or 'none'}")
    return obj


# --------------------------------------------------------------------------------------------
# importing study files
# --------------------------------------------------------------------------------------------


def _dir_package(directory: Path) -> str:
    """The package name of a resolved directory (reversible: :func:`_package_dir`)."""
    return f"{USER_PACKAGE}.d{os.fsencode(directory).hex()}"


def _package_dir(segment: str) -> Path | None:
    """The directory of a package segment ``d<hex>``, ``None`` if it is not one."""
    if not segment.startswith("d"):
        return None
    try:
        return Path(os.fsdecode(bytes.fromhex(segment[1:])))
    except ValueError:
        return None


def _import_study_file(path_text: str) -> ModuleType:
    """Import the study file ``path_text`` (module docstring), reusing an unchanged import."""
    path = Path(path_text).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"study file {path_text!r} not found (no file at "
                                f"{path.absolute()})")
    if not path.is_file():
        raise ValueError(f"study file {path_text!r} is not a file")
    if path.suffix != ".py":
        raise ValueError(f"study file {path_text!r} is not a Python file ending in .py")
    stem = path.name[: -len(".py")]
    if not stem or "." in stem:
        raise ValueError(f"study file {path_text!r}: the name before .py must be non-empty "
                         "and contain no '.' (it becomes a module name)")
    resolved = path.resolve()
    try:
        source_hash = hashlib.sha256(resolved.read_bytes()).hexdigest()
    except OSError as exc:
        raise ValueError(f"study file {path_text!r} cannot be read: {exc}") from exc
    name = f"{_dir_package(resolved.parent)}.{stem}"
    _install_finder()
    module = sys.modules.get(name)
    if module is not None and getattr(module, _SOURCE_HASH, None) == source_hash:
        return module
    sys.modules.pop(name, None)  # changed since it was imported: import it afresh
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(name)
    except BaseException as exc:
        exc.add_note(f"(while importing the study file {resolved} as module {name})")
        raise
    setattr(module, _SOURCE_HASH, source_hash)
    return module


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """A source loader that neither reads nor writes ``__pycache__`` (module docstring)."""

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


class _EmptyPackageLoader(importlib.abc.Loader):
    """Loader of the virtual packages: nothing to execute."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        return None


class _StudyFileFinder(importlib.abc.MetaPathFinder):
    """Finds :data:`USER_PACKAGE`, its directory packages ``d<hex>`` (whose ``__path__`` is the
    directory) and the ``.py`` files directly in them; everything else is left to the other
    finders (subpackages of a study's directory go through the ordinary path finder)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == USER_PACKAGE:
            return _package_spec(fullname, [])
        if not fullname.startswith(USER_PACKAGE + "."):
            return None
        parts = fullname[len(USER_PACKAGE) + 1:].split(".")
        directory = _package_dir(parts[0])
        if directory is None or len(parts) > 2:
            return None
        if len(parts) == 1:
            return _package_spec(fullname, [str(directory)]) if directory.is_dir() else None
        file = directory / f"{parts[1]}.py"
        if not file.is_file():
            return None
        return importlib.util.spec_from_file_location(
            fullname, file, loader=_SourceOnlyLoader(fullname, str(file)))


def _package_spec(name: str, locations: list[str]) -> importlib.machinery.ModuleSpec:
    spec = importlib.machinery.ModuleSpec(name, _EmptyPackageLoader(), is_package=True)
    spec.submodule_search_locations = locations
    return spec


def _install_finder() -> None:
    """Put one :class:`_StudyFileFinder` first on ``sys.meta_path`` (it answers only for
    :data:`USER_PACKAGE`).  Done when this module is imported, so any process that imports
    :mod:`gfgsm.mc` (which every unpickling of a study file's function does first) can import
    study files."""
    if not any(isinstance(f, _StudyFileFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _StudyFileFinder())


_install_finder()
