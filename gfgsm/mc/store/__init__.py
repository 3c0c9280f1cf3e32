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

The package by role: :mod:`.atomic` (durable file writes, temporaries, writability checks),
:mod:`.schema` (chunk keys, DataFrame <-> Arrow/Parquet), :mod:`.manifest` (the manifest:
versions, validation, identity) and :mod:`.store` (:class:`ResultStore` and :func:`load`).
"""

from .store import ChunkIntegrityWarning, ResultStore, load

__all__ = ["ChunkIntegrityWarning", "ResultStore", "load"]
