"""Chunk keys and the Arrow/Parquet form of a chunk's results.

A chunk is named by its exact ``(condition, start, stop)``; its tidy DataFrame is validated,
converted to an Arrow table (without its index), conformed to the types of the chunks already
stored and written as Parquet with fixed options, so that equal tables give equal bytes.
"""

from __future__ import annotations

import operator
import re
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_CHUNK_RE = re.compile(r"^c(\d{4,})_r(\d{7,})-(\d{7,})\.(parquet|done)$")
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
