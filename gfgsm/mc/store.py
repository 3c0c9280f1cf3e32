"""The results store of a study run: one directory, atomic verified Parquet chunks, resumable.

Layout of a store directory::

    <out>/
        manifest.json                             # study definition, hash, seed, preset, versions
        runs.json                                 # one record per (resumed) run, appended
        chunks/
            c0003_r0000100-0000200.parquet        # tidy results of condition 3, reps 100..199
            c0003_r0000100-0000200.done           # marker: SHA-256, rows, bytes, seconds

Every file is written to a temporary name in its final directory, flushed and ``fsync``-ed,
then moved over the final name with :func:`os.replace` and the directory is ``fsync``-ed, so a
crash leaves either the old state or the new one, never a partial file under a final name.
A chunk counts as done only when its marker exists *and* the Parquet file's current bytes
hash to the SHA-256 the marker records *and* the row count matches: a chunk whose marker is
missing (crash between the two renames), or whose file was truncated or altered, is not done;
:meth:`ResultStore.is_done` deletes it so that the runner recomputes it.

A store belongs to exactly one study definition: :meth:`ResultStore.create_or_open` refuses a
directory whose manifest records another ``study_hash``, preset or seed, because those change
the numbers and mixed chunks could not be told apart afterwards.  For the same reason chunk
boundaries are exact: a chunk is looked up by its exact ``(condition, start, stop)``, and a
chunk whose replication range overlaps a different stored chunk of the same condition (a
resume with another chunk size) is refused by :meth:`ResultStore.is_done`,
:meth:`ResultStore.write_chunk` and :func:`load` rather than silently double counted.

The store is written by a single process (the runner's parent process; workers only return
DataFrames).  :func:`load` only reads: it skips and warns about invalid chunks without
deleting anything, so it is safe to call on a store that a run is still writing.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import operator
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["ChunkIntegrityWarning", "ResultStore", "load"]

#: Version of the on-disk layout; bumped when files written by an older layout can't be read.
FORMAT_VERSION = 1
FORMAT_NAME = "gfgsm.mc.ResultStore"

MANIFEST = "manifest.json"
RUNS = "runs.json"
CHUNKS = "chunks"
#: Manifest entries a store is identified by: each one changes the numbers of every chunk.
#: What must agree for a run to add chunks to a store: the definition, and the random-number
#: generator that drew its data (a store drawn another way is refused, never mixed).
IDENTITY_KEYS = ("study_hash", "preset", "seed", "generator")
REQUIRED_KEYS = ("study_hash", "study", "seed", "preset", "backend")
#: Columns ``load`` sorts by (those present), so that its output does not depend on chunking.
SORT_KEYS = ("condition", "rep", "method", "param")

_CHUNK_RE = re.compile(r"^c(\d{4,})_r(\d{7,})-(\d{7,})\.(parquet|done)$")
_TMP_SUFFIX = ".tmp"
#: Parquet writer options.  Fixed codec and format version so that identical tables give
#: byte-identical files (Parquet writes no timestamps; ``created_by`` is the pyarrow version);
#: page checksums let readers detect corrupted pages even without the marker's hash.
_PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "version": "2.6",
    "write_page_checksum": True,
    "write_statistics": True,
    "use_dictionary": True,
}

ChunkKey = tuple[int, int, int]


class ChunkIntegrityWarning(UserWarning):
    """A stored chunk failed verification (missing marker, bad hash, truncated, ...)."""


# ---------------------------------------------------------------------------------------------
# Low-level durable file operations
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# DataFrame <-> Parquet
# ---------------------------------------------------------------------------------------------


def _check_key(c: Any, start: Any, stop: Any) -> ChunkKey:
    try:
        if any(isinstance(v, bool) for v in (c, start, stop)):
            raise TypeError
        key = (operator.index(c), operator.index(start), operator.index(stop))
    except TypeError:
        raise TypeError(f"chunk (condition, start, stop) must be integers, "
                        f"got ({c!r}, {start!r}, {stop!r})") from None
    if key[0] < 0 or key[1] < 0 or key[1] >= key[2]:
        raise ValueError(f"invalid chunk (condition={key[0]}, start={key[1]}, stop={key[2]}): "
                         "need condition >= 0 and 0 <= start < stop")
    return key


def _chunk_stem(key: ChunkKey) -> str:
    c, start, stop = key
    return f"c{c:04d}_r{start:07d}-{stop:07d}"


def _describe(key: ChunkKey) -> str:
    return f"condition {key[0]}, replications [{key[1]}, {key[2]})"


def _to_table(df: pd.DataFrame, key: ChunkKey) -> pa.Table:
    """Validate a chunk's DataFrame and convert it, without its (meaningless) index."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"chunk {_describe(key)}: results must be a pandas DataFrame, "
                        f"got {type(df).__name__}")
    bad = [col for col in df.columns if not isinstance(col, str)]
    if bad:
        raise TypeError(f"chunk {_describe(key)}: column names must be strings, got {bad!r}")
    dup = sorted({col for col in df.columns if list(df.columns).count(col) > 1})
    if dup:
        raise ValueError(f"chunk {_describe(key)}: duplicate column names {dup}")
    c, start, stop = key
    # Rows labelled with another condition or replication would silently corrupt the study.
    if "condition" in df.columns and len(df) and not (df["condition"] == c).all():
        found = sorted(pd.unique(df["condition"]).tolist())
        raise ValueError(f"chunk {_describe(key)}: its 'condition' column holds {found}, "
                         f"expected only {c}")
    if "rep" in df.columns and len(df):
        rep = pd.to_numeric(df["rep"], errors="coerce")
        if rep.isna().any() or (rep < start).any() or (rep >= stop).any():
            raise ValueError(f"chunk {_describe(key)}: its 'rep' column holds values outside "
                             f"[{start}, {stop}) (min {rep.min()}, max {rep.max()})")
    # Neither the index (a by-product of how the caller built the frame) nor ``df.attrs``
    # (pyarrow would store them in the pandas metadata) are results; storing them would make
    # equal results give different files.
    df = df.copy(deep=False)
    df.attrs = {}
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise TypeError(f"chunk {_describe(key)}: cannot store the results as Parquet: "
                        f"{exc}") from exc


def _castable(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether ``src`` may be widened to ``dst`` without changing any value's meaning."""
    if pa.types.is_null(src):
        return True
    if pa.types.is_integer(src):
        return pa.types.is_integer(dst) or pa.types.is_floating(dst)
    if pa.types.is_floating(src):
        return pa.types.is_floating(dst)
    strings = (pa.types.is_string, pa.types.is_large_string)
    return any(f(src) for f in strings) and any(f(dst) for f in strings)


def _conform(table: pa.Table, ref: pa.Schema, key: ChunkKey) -> pa.Table:
    """``table`` with the column order and types of the store's first chunk.

    Keeps dtypes stable across chunks: a column that happens to be all-missing (null type) or
    integer-valued in one chunk is widened to the stored type; anything else is an error,
    because silently re-typing would make the loaded results depend on the chunking.
    """
    names, ref_names = set(table.schema.names), set(ref.names)
    if names != ref_names:
        raise ValueError(
            f"chunk {_describe(key)}: its columns differ from the chunks already stored: "
            f"missing {sorted(ref_names - names)}, unexpected {sorted(names - ref_names)}")
    table = table.select(ref.names)
    if table.schema.equals(ref, check_metadata=False):
        return table
    columns, changed, bad = [], False, []
    for field in ref:
        col = table.column(field.name)
        if col.type == field.type or pa.types.is_null(field.type):
            columns.append(col)
        elif _castable(col.type, field.type):
            try:
                columns.append(col.cast(field.type, safe=True))
                changed = True
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                bad.append(f"{field.name!r}: {col.type} (stored chunks: {field.type})")
        else:
            bad.append(f"{field.name!r}: {col.type} (stored chunks: {field.type})")
    if bad:
        raise ValueError(f"chunk {_describe(key)}: column types differ from the chunks already "
                         f"stored and cannot be widened safely: {'; '.join(bad)}")
    if not changed:
        return table
    # Round trip through pandas so that the pandas metadata describes the widened types.
    widened = pa.Table.from_arrays(columns, names=list(ref.names)).to_pandas()
    return pa.Table.from_pandas(widened, preserve_index=False)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **_PARQUET_OPTIONS)
    return sink.getvalue().to_pybytes()


def _read_parquet_bytes(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data), page_checksum_verification=True)


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------


class ResultStore:
    """One study run's results directory (see the module docstring for the layout).

    Create or reopen one with :meth:`create_or_open` (for writing) or :meth:`open` (read-only
    use); read the whole study with :func:`load`.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.chunks_dir = path / CHUNKS
        # Exact (c, start, stop) keys that have a marker file; built lazily from one directory
        # listing and kept up to date by this (single-writer) instance, so that is_done does
        # not list the directory once per chunk.
        self._markers: dict[int, set[ChunkKey]] | None = None
        # Arrow schema of the stored chunks (dtype stability); found lazily.
        self._schema: pa.Schema | None = None

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r}, study_hash={self.manifest.get('study_hash')!r})"

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def create_or_open(cls, path: str | os.PathLike[str], manifest: Mapping[str, Any]
                       ) -> ResultStore:
        """Open the store at ``path`` for writing, creating it (and its manifest) if needed.

        ``manifest`` must hold at least ``study_hash``, ``study``, ``seed``, ``preset`` and
        ``backend``, and be JSON-serialisable; library ``versions`` and the store ``format``
        are added.  An existing store must have been written with the same ``study_hash``,
        ``preset`` and ``seed``; otherwise :class:`ValueError` is raised and nothing is
        touched.  The manifest of an existing store is kept as written by its first run (a
        warning tells when this run's library versions or backend differ).

        Raises
        ------
        ValueError : ``path`` (or one of its parents) is a file; the directory is not empty but
            holds no store; the store belongs to another study definition; its manifest is
            unreadable.
        PermissionError : the directory cannot be written.
        """
        path = Path(path).expanduser()
        wanted = _validate_manifest(manifest)
        wanted["versions"] = {**dict(wanted.get("versions") or {}), **library_versions()}
        wanted["format"] = {"name": FORMAT_NAME, "version": FORMAT_VERSION}
        wanted.setdefault("created_utc", datetime.now(UTC).isoformat(timespec="seconds"))

        _check_writable_target(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ValueError(f"cannot create the results directory {str(path)!r}: a parent "
                             f"path is a file ({exc})") from exc
        except PermissionError as exc:
            raise PermissionError(f"cannot create the results directory {str(path)!r}: "
                                  "permission denied; choose another --out directory") from exc

        manifest_path = path / MANIFEST
        if manifest_path.exists():
            stored = _load_manifest(path)
            message = _identity_mismatch(path, stored, wanted)
            if message:
                raise ValueError(message)
            _warn_environment_change(path, stored, wanted)
            store = cls(path, stored)
        else:
            # Tolerated leftovers of a creation that crashed before the manifest was written.
            foreign = [p.name for p in path.iterdir()
                       if not _is_tmp(p) and not (p.name == CHUNKS and p.is_dir()
                                                  and not any(p.iterdir()))]
            if foreign:
                raise ValueError(
                    f"{str(path)!r} is not empty ({', '.join(sorted(foreign)[:5])}"
                    f"{', ...' if len(foreign) > 5 else ''}) but holds no {MANIFEST}, so it is "
                    "not a gfgsm results store; choose an empty or new --out directory")
            store = cls(path, wanted)
        _probe_writable(path)
        if not manifest_path.exists():
            _atomic_write_bytes(manifest_path, _json_bytes(wanted))
        store.chunks_dir.mkdir(exist_ok=True)
        _probe_writable(store.chunks_dir)
        # Temporaries of a crashed run are unreachable garbage (single writer: nobody else is
        # writing them right now).
        for directory in (path, store.chunks_dir):
            for p in directory.iterdir():
                if _is_tmp(p):
                    _unlink(p)
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ResultStore:
        """Open an existing store without modifying anything (for reading)."""
        path = Path(path).expanduser()
        return cls(path, _load_manifest(path))

    # -- chunk names ------------------------------------------------------------------------

    def chunk_path(self, c: int, start: int, stop: int) -> Path:
        """Path of the Parquet file of chunk ``(c, start, stop)``."""
        return self.chunks_dir / f"{_chunk_stem(_check_key(c, start, stop))}.parquet"

    def marker_path(self, c: int, start: int, stop: int) -> Path:
        """Path of the completion marker of chunk ``(c, start, stop)``."""
        return self.chunks_dir / f"{_chunk_stem(_check_key(c, start, stop))}.done"

    def _listing(self) -> tuple[set[ChunkKey], set[ChunkKey]]:
        """Keys with a marker file and keys with a Parquet file, from one directory listing."""
        markers: set[ChunkKey] = set()
        files: set[ChunkKey] = set()
        if not self.chunks_dir.is_dir():
            return markers, files
        for p in self.chunks_dir.iterdir():
            m = _CHUNK_RE.match(p.name)
            if m:
                key = (int(m[1]), int(m[2]), int(m[3]))
                (markers if m[4] == "done" else files).add(key)
        return markers, files

    def _index(self) -> dict[int, set[ChunkKey]]:
        """Marker keys by condition (built once, then maintained by this instance)."""
        if self._markers is None:
            self._markers = {}
            for key in self._listing()[0]:
                self._markers.setdefault(key[0], set()).add(key)
        return self._markers

    def _index_add(self, key: ChunkKey) -> None:
        self._index().setdefault(key[0], set()).add(key)

    def _index_drop(self, key: ChunkKey) -> None:
        self._index().get(key[0], set()).discard(key)

    # -- verification -----------------------------------------------------------------------

    def _verify(self, key: ChunkKey) -> tuple[bytes | None, dict[str, Any] | None, str]:
        """``(file bytes, marker, "")`` for a valid chunk, else ``(None, None, reason)``."""
        stem = _chunk_stem(key)
        marker_path = self.chunks_dir / f"{stem}.done"
        file_path = self.chunks_dir / f"{stem}.parquet"
        try:
            marker = _read_json(marker_path)
        except FileNotFoundError:
            if file_path.exists():
                return None, None, "its completion marker is missing (interrupted write)"
            return None, None, ""  # simply not computed yet
        except (OSError, ValueError) as exc:
            return None, None, f"its completion marker is unreadable ({exc})"
        if not isinstance(marker, dict) or not {"sha256", "rows"} <= marker.keys():
            return None, None, "its completion marker lacks the sha256/rows entries"
        if (marker.get("condition"), marker.get("start"), marker.get("stop")) != key:
            return None, None, "its completion marker names another chunk"
        try:
            data = file_path.read_bytes()
        except FileNotFoundError:
            return None, None, "its Parquet file is missing"
        except OSError as exc:
            return None, None, f"its Parquet file is unreadable ({exc})"
        if hashlib.sha256(data).hexdigest() != marker["sha256"]:
            return None, None, (f"its Parquet file ({len(data)} bytes) does not match the "
                                "SHA-256 of its marker (truncated or corrupted)")
        try:
            rows = pq.read_metadata(pa.BufferReader(data)).num_rows
        except (pa.ArrowException, OSError) as exc:
            return None, None, f"its Parquet footer is unreadable ({exc})"
        if rows != marker["rows"]:
            return None, None, f"it holds {rows} rows, its marker says {marker['rows']}"
        return data, marker, ""

    def _discard(self, key: ChunkKey, reason: str) -> None:
        """Delete an invalid chunk (file and marker) so that it is recomputed."""
        warnings.warn(f"results store {str(self.path)!r}: chunk {_describe(key)} is invalid "
                      f"({reason}); deleted, it will be recomputed",
                      ChunkIntegrityWarning, stacklevel=3)
        stem = _chunk_stem(key)
        # Marker first: a crash in between then leaves a marker-less file, which is invalid.
        _unlink(self.chunks_dir / f"{stem}.done")
        _unlink(self.chunks_dir / f"{stem}.parquet")
        _fsync_dir(self.chunks_dir)
        self._index_drop(key)

    def _check_overlap(self, key: ChunkKey) -> None:
        """Raise if a valid stored chunk of the same condition overlaps ``key``'s range."""
        c, start, stop = key
        for other in sorted(self._index().get(c, set())):
            if other == key or other[2] <= start or other[1] >= stop:
                continue
            data, _, reason = self._verify(other)
            if data is None:
                if reason:
                    self._discard(other, reason)
                continue
            raise ValueError(
                f"results store {str(self.path)!r}: chunk {_describe(key)} overlaps the stored "
                f"chunk {_describe(other)}, so the store was written with other chunk "
                f"boundaries (chunk size {other[2] - other[1]}?). Resume with the original "
                "chunk size, or choose another --out directory; replications are never "
                "counted twice.")

    def is_done(self, c: int, start: int, stop: int) -> bool:
        """Whether chunk ``(c, start, stop)`` is stored, complete and intact.

        Exact match on the replication range.  An invalid chunk (missing marker, hash or row
        count mismatch) is deleted with a :class:`ChunkIntegrityWarning` and reported as not
        done, so that it is recomputed.

        Raises
        ------
        ValueError : a *different* valid chunk of condition ``c`` overlaps ``[start, stop)``
            (the store was written with another chunk size) -- fail before any work rather
            than double count replications.
        """
        key = _check_key(c, start, stop)
        data, _, reason = self._verify(key)
        if data is None:
            if reason:
                self._discard(key, reason)
            self._check_overlap(key)
            return False
        return True

    def done_chunks(self) -> list[ChunkKey]:
        """Sorted ``(c, start, stop)`` of every valid chunk; invalid ones are deleted."""
        markers, files = self._listing()
        self._markers = None  # resynchronise the index with the directory
        return [key for key in sorted(markers | files) if self._valid_or_discard(key)]

    def _valid_or_discard(self, key: ChunkKey) -> bool:
        """:meth:`is_done` without the overlap check (for listing what is stored)."""
        data, _, reason = self._verify(key)
        if data is None and reason:
            self._discard(key, reason)
        return data is not None

    # -- writing and reading ----------------------------------------------------------------

    def write_chunk(self, c: int, start: int, stop: int, df: pd.DataFrame, *,
                    seconds: float | None = None) -> Path:
        """Store the tidy results ``df`` of chunk ``(c, start, stop)`` atomically.

        The Parquet file is written (temporary name, ``fsync``, ``os.replace``), then its
        completion marker (SHA-256, rows, bytes, ``seconds`` -- the compute time the caller
        measured) the same way.  ``df``'s index is not stored; its columns must have the names
        and (up to safe widening) the types of the chunks already stored.  Identical ``df``
        give byte-identical files (same library versions).  Rewriting a chunk replaces it.

        Returns the Parquet file's path.

        Raises
        ------
        ValueError : a stored chunk of the same condition overlaps ``[start, stop)``; ``df``'s
            ``condition``/``rep`` columns do not belong to the chunk; its columns or types
            differ from the stored chunks'.
        TypeError : ``df`` is not a DataFrame or cannot be stored as Parquet.
        """
        key = _check_key(c, start, stop)
        seconds = _check_seconds(seconds)
        self._check_overlap(key)
        table = _to_table(df, key)
        ref = self._reference_schema()
        if ref is not None:
            table = _conform(table, ref, key)
        data = _parquet_bytes(table)
        marker = {
            "format": FORMAT_VERSION,
            "condition": key[0],
            "start": key[1],
            "stop": key[2],
            "file": f"{_chunk_stem(key)}.parquet",
            "sha256": hashlib.sha256(data).hexdigest(),
            "rows": table.num_rows,
            "bytes": len(data),
            "seconds": seconds,
        }
        file_path, marker_path = self.chunk_path(*key), self.marker_path(*key)
        self.chunks_dir.mkdir(exist_ok=True)
        # Drop an old marker first, so that no instant has an old marker beside a new file.
        if _unlink(marker_path):
            _fsync_dir(self.chunks_dir)
        self._index_drop(key)
        _atomic_write_bytes(file_path, data)
        _atomic_write_bytes(marker_path, _json_bytes(marker))
        self._index_add(key)
        if self._schema is None:
            self._schema = table.schema
        return file_path

    def read_chunk(self, c: int, start: int, stop: int) -> pd.DataFrame:
        """The stored DataFrame of chunk ``(c, start, stop)``, after verifying its hash.

        Raises :class:`KeyError` if the chunk is not stored and :class:`ValueError` if it
        fails verification (the store is left as it is).
        """
        key = _check_key(c, start, stop)
        data, _, reason = self._verify(key)
        if data is None:
            if reason:
                raise ValueError(f"results store {str(self.path)!r}: chunk {_describe(key)} is "
                                 f"invalid: {reason}")
            raise KeyError(f"results store {str(self.path)!r} holds no chunk {_describe(key)}")
        return _read_parquet_bytes(data).to_pandas()

    def _reference_schema(self) -> pa.Schema | None:
        """Arrow schema of the first stored chunk (the one every other chunk must match)."""
        if self._schema is None:
            for key in sorted(k for keys in self._index().values() for k in keys):
                try:
                    self._schema = pq.read_schema(self.chunk_path(*key))
                    break
                except (OSError, pa.ArrowException):
                    continue  # invalid chunk: is_done will deal with it
        return self._schema

    # -- timings and run records ------------------------------------------------------------

    def record_timing(self, c: int, start: int, stop: int, seconds: float) -> None:
        """Set the compute time (seconds) recorded in the marker of a stored chunk."""
        key = _check_key(c, start, stop)
        seconds = _check_seconds(seconds)
        data, marker, reason = self._verify(key)
        if data is None or marker is None:
            raise KeyError(f"results store {str(self.path)!r}: cannot record a timing for chunk "
                           f"{_describe(key)}: {reason or 'not stored'}")
        marker["seconds"] = seconds
        _atomic_write_bytes(self.marker_path(*key), _json_bytes(marker))

    def _valid_markers(self) -> Iterator[dict[str, Any]]:
        markers, _ = self._listing()
        for key in sorted(markers):
            data, marker, _ = self._verify(key)
            if data is not None and marker is not None:
                yield marker

    def timings(self) -> pd.DataFrame:
        """One row per valid chunk: condition, start, stop, rows, bytes, seconds."""
        cols = ["condition", "start", "stop", "rows", "bytes", "seconds"]
        rows = [{k: m.get(k) for k in cols} for m in self._valid_markers()]
        frame = pd.DataFrame(rows, columns=cols)
        frame["seconds"] = pd.to_numeric(frame["seconds"]).astype(float)
        return frame

    def summary_timings(self) -> dict[str, float | int]:
        """``{"seconds": total compute time, "chunks": valid chunks, "timed_chunks": ...}``.

        Chunks written without a timing count in ``chunks`` but not in ``seconds``.
        """
        seconds = [m.get("seconds") for m in self._valid_markers()]
        timed = [float(s) for s in seconds if s is not None]
        return {"seconds": math.fsum(timed), "chunks": len(seconds), "timed_chunks": len(timed)}

    def record_run(self, info: Mapping[str, Any]) -> None:
        """Append a record of one (possibly resumed) run to ``runs.json``.

        ``info`` is JSON-serialisable (executor, workers, chunk size, seconds, ...); the
        library versions and a UTC timestamp are added, so that a store resumed under other
        versions says so.
        """
        try:
            record = _normalise(dict(info))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"run record is not JSON-serialisable: {exc}") from exc
        record.setdefault("finished_utc", datetime.now(UTC).isoformat(timespec="seconds"))
        record.setdefault("versions", library_versions())
        runs = self.runs()
        runs.append(record)
        _atomic_write_bytes(self.path / RUNS, _json_bytes(runs))

    def runs(self) -> list[dict[str, Any]]:
        """The run records of :meth:`record_run`, oldest first."""
        try:
            runs = _read_json(self.path / RUNS)
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise ValueError(f"results store {str(self.path)!r}: {RUNS} is unreadable "
                             f"({exc})") from exc
        if not isinstance(runs, list):
            raise ValueError(f"results store {str(self.path)!r}: {RUNS} is not a list")
        return runs


# ---------------------------------------------------------------------------------------------
# Helpers of ResultStore
# ---------------------------------------------------------------------------------------------


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


def _check_seconds(seconds: Any) -> float | None:
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise TypeError(f"seconds must be a number or None, got {seconds!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"seconds must be finite and >= 0, got {seconds!r}")
    return value


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


# ---------------------------------------------------------------------------------------------
# Reading a whole study
# ---------------------------------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> pd.DataFrame:
    """All valid chunks of the store at ``path`` as one tidy DataFrame.

    Rows are sorted by ``condition, rep, method, param`` (those present), so the result does
    not depend on how the study was chunked or in which order chunks finished.  Invalid or
    incomplete chunks are skipped with a :class:`ChunkIntegrityWarning` (nothing is deleted:
    ``load`` may run while a study is still being written).  The store's manifest is at
    ``ResultStore.open(path).manifest``.  A store without any valid chunk gives an empty
    DataFrame.

    Raises
    ------
    FileNotFoundError : ``path`` holds no store (no ``manifest.json``).
    ValueError : two valid chunks of one condition overlap (written with different chunk
        sizes): replications would be counted twice.
    """
    store = ResultStore.open(path)
    markers, files = store._listing()
    tables: list[pa.Table] = []
    good: list[ChunkKey] = []
    for key in sorted(markers | files):
        data, _, reason = store._verify(key)
        if data is None:
            if reason:  # "" means the chunk vanished since the listing: nothing to report
                warnings.warn(f"results store {str(store.path)!r}: skipping chunk "
                              f"{_describe(key)}: {reason}", ChunkIntegrityWarning, stacklevel=2)
            continue
        try:
            tables.append(_read_parquet_bytes(data))
        except (OSError, pa.ArrowException) as exc:  # pragma: no cover - hash already matched
            warnings.warn(f"results store {str(store.path)!r}: skipping chunk {_describe(key)}: "
                          f"unreadable ({exc})", ChunkIntegrityWarning, stacklevel=2)
            continue
        good.append(key)
    _raise_on_overlap(store.path, good)
    if not tables:
        return pd.DataFrame()
    try:
        # "default" promotion only unifies an all-missing (null) column with its real type.
        table = pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"results store {str(store.path)!r}: chunks have incompatible "
                         f"schemas ({exc})") from exc
    df = table.to_pandas()
    by = [k for k in SORT_KEYS if k in df.columns]
    if by:
        # Stable sort: ties (if any) keep chunk order, which is itself deterministic.
        df = df.sort_values(by, kind="mergesort")
    return df.reset_index(drop=True)


def _raise_on_overlap(path: Path, keys: list[ChunkKey]) -> None:
    """Raise if two chunks (sorted by condition, start) of one condition share replications."""
    for (c0, s0, e0), (c1, s1, e1) in itertools.pairwise(keys):
        if c0 == c1 and s1 < e0:
            raise ValueError(
                f"results store {str(path)!r}: chunks c{c0:04d} [{s0}, {e0}) and [{s1}, {e1}) "
                "overlap (the store was resumed with a different chunk size), so their "
                "replications would be counted twice. Delete one of the overlapping "
                f"chunk files in {str(path / CHUNKS)!r} (with its .done marker) or rerun into "
                "a fresh --out directory.")
