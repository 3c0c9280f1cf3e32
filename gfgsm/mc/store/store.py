"""The results store itself (:class:`ResultStore`) and :func:`load`, which reads a study."""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import (
    _atomic_write_bytes,
    _check_writable_target,
    _fsync_dir,
    _is_tmp,
    _json_bytes,
    _probe_writable,
    _read_json,
    _unlink,
)
from .manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    _identity_mismatch,
    _load_manifest,
    _normalise,
    _validate_manifest,
    _warn_environment_change,
    library_versions,
)
from .schema import (
    _CHUNK_RE,
    ChunkKey,
    _check_key,
    _chunk_stem,
    _conform,
    _describe,
    _parquet_bytes,
    _read_parquet_bytes,
    _to_table,
)

RUNS = "runs.json"
CHUNKS = "chunks"
#: Columns ``load`` sorts by (those present), so that its output does not depend on chunking.
SORT_KEYS = ("condition", "rep", "method", "param")


class ChunkIntegrityWarning(UserWarning):
    """A stored chunk failed verification (missing marker, bad hash, truncated, ...)."""


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------


class ResultStore:
    """One study run's results directory (see :mod:`gfgsm.mc.store` for the layout).

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

    def marked_chunks(self) -> list[ChunkKey]:
        """Sorted ``(c, start, stop)`` of every chunk with a completion marker, from one
        directory listing and unverified (the chunk boundaries a store was written with;
        :meth:`done_chunks` and :meth:`is_done` verify)."""
        return sorted(self._listing()[0])

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
