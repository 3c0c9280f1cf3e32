"""Durable file operations of the results store: atomic writes, temporaries, writability.

Every file is written to a temporary name in its final directory, flushed and ``fsync``-ed,
then moved over the final name with :func:`os.replace` and the directory is ``fsync``-ed, so a
crash leaves either the old state or the new one, never a partial file under a final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

_TMP_SUFFIX = ".tmp"


def _fsync_dir(directory: Path) -> None:
    """Persist the directory entry changes (renames, unlinks) made in ``directory``."""
    # Without this a power loss after os.replace can resurrect the old name on some filesystems.
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms that cannot open directories (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old content or ``data``.

    The temporary file lives in the same directory as ``path`` because :func:`os.replace` is
    atomic only within one filesystem.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            view = memoryview(data)
            while view:  # a loop because os.write may write fewer bytes than asked
                written = os.write(fh.fileno(), view)
                view = view[written:]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Never leave the temporary behind: it is invisible to readers but wastes space.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _json_bytes(obj: Any) -> bytes:
    """Canonical strict JSON (sorted keys, fixed indentation, no NaN/Infinity literals), so that
    equal data gives equal files that any JSON parser reads."""
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _is_tmp(p: Path) -> bool:
    return p.name.startswith(".") and p.name.endswith(_TMP_SUFFIX)


def _probe_writable(directory: Path) -> None:
    """Fail now, before any simulation work, if files cannot be created in ``directory``.

    ``os.access`` is not enough (root passes it; a read-only mount may not show), so a
    temporary file is actually created and removed.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=".probe.", suffix=_TMP_SUFFIX, dir=directory)
        os.close(fd)
        os.unlink(name)
    except PermissionError as exc:
        raise PermissionError(f"the results directory {str(directory)!r} is not writable "
                              f"({exc.strerror}); choose another --out directory") from exc
    except OSError as exc:
        raise OSError(exc.errno, f"the results directory {str(directory)!r} is not writable "
                      f"({exc.strerror}); choose another --out directory") from exc


def _check_writable_target(path: Path) -> None:
    """Refuse a target that is a file, lies under a file, or cannot be written -- early."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"the results path {str(path)!r} exists and is a file, not a directory; "
                         "choose another --out directory")
    existing = path
    while not existing.exists():  # nearest existing ancestor: that is where mkdir must write
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ValueError(f"cannot create the results directory {str(path)!r}: "
                         f"{str(existing)!r} is a file")
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"the results directory {str(path)!r} is not writable "
                              f"({str(existing)!r}: permission denied); choose another --out "
                              "directory")
