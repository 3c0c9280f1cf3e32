"""The results store: atomic, verified, deterministic chunks; refusal to mix studies."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gfgsm.mc.store import ChunkIntegrityWarning, ResultStore, load
from gfgsm.mc.store import atomic as atomic_mod
from gfgsm.mc.store import store as store_mod

MANIFEST = {
    "study_hash": "h-aaaa",
    "study": {"name": "toy", "conditions": [{"n": 50}, {"n": 100}]},
    "seed": 7,
    "preset": "quick",
    "backend": "numpy",
}


def frame(c: int, start: int, stop: int, *, shuffle: bool = False) -> pd.DataFrame:
    """Tidy results of a toy chunk, in the schema the runner produces."""
    rows = []
    for r in range(start, stop):
        for m in ("pl", "gfgsm"):
            for p in ("b0", "b1"):
                rows.append({
                    "condition": c, "n": 50 * (c + 1), "method": m, "rep": r, "param": p,
                    "estimate": 0.01 * r + (p == "b1"), "true": float(p == "b1"),
                    "converged": True, "status": "ok", "n_iter": 3 + r % 4, "kkt": 1e-10,
                    "objective": 0.5 + 0.001 * r, "lam": np.nan if m == "pl" else 0.1,
                })
    df = pd.DataFrame(rows)
    if shuffle:  # same rows in another order: load must not care
        df = df.sample(frac=1.0, random_state=c + start)
    return df


def new_store(tmp_path: Path, name: str = "out", **changes) -> ResultStore:
    return ResultStore.create_or_open(tmp_path / name, {**MANIFEST, **changes})


def chunk_files(store: ResultStore) -> list[str]:
    return sorted(p.name for p in store.chunks_dir.iterdir())


# ------------------------------------------------------------------------------------ layout


def test_roundtrip_layout_and_manifest(tmp_path):
    store = new_store(tmp_path)
    df = frame(1, 0, 3)
    path = store.write_chunk(1, 0, 3, df, seconds=2.5)
    assert path == tmp_path / "out" / "chunks" / "c0001_r0000000-0000003.parquet"
    assert chunk_files(store) == ["c0001_r0000000-0000003.done", "c0001_r0000000-0000003.parquet"]
    assert store.is_done(1, 0, 3) and not store.is_done(1, 3, 6) and not store.is_done(0, 0, 3)
    assert store.done_chunks() == [(1, 0, 3)]
    pd.testing.assert_frame_equal(store.read_chunk(1, 0, 3), df)

    marker = json.loads(store.marker_path(1, 0, 3).read_text())
    assert marker["rows"] == len(df) and marker["seconds"] == 2.5
    assert marker["bytes"] == path.stat().st_size and len(marker["sha256"]) == 64

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["study_hash"] == "h-aaaa" and manifest["study"] == MANIFEST["study"]
    assert {"gfgsm", "numpy", "scipy", "pandas", "pyarrow", "python", "platform"} <= set(
        manifest["versions"])
    assert ResultStore.open(tmp_path / "out").manifest == manifest
    # page checksums are on: a flipped byte inside a data page is caught by the reader itself
    data = bytearray(path.read_bytes())
    col = pq.read_metadata(path).row_group(0).column(0)
    data[(col.dictionary_page_offset or col.data_page_offset) + col.total_compressed_size - 3] ^= 1
    with pytest.raises(OSError, match="CRC"):
        pq.read_table(pa.BufferReader(bytes(data)), page_checksum_verification=True)


def test_identical_input_gives_byte_identical_files(tmp_path):
    a, b = new_store(tmp_path, "a"), new_store(tmp_path, "b")
    df = frame(0, 0, 4)
    other = df.copy()
    other.index = np.arange(len(df)) * 3 + 11  # neither the index nor attrs are stored
    other.attrs["computed_at"] = "2024-01-01T00:00:00"
    a.write_chunk(0, 0, 4, df)
    b.write_chunk(0, 0, 4, other)
    assert other.attrs == {"computed_at": "2024-01-01T00:00:00"}  # the caller's frame is intact
    first = a.chunk_path(0, 0, 4).read_bytes()
    assert first == b.chunk_path(0, 0, 4).read_bytes()
    assert a.marker_path(0, 0, 4).read_bytes() == b.marker_path(0, 0, 4).read_bytes()
    a.write_chunk(0, 0, 4, frame(0, 0, 4))  # rewriting replaces with the same bytes
    assert a.chunk_path(0, 0, 4).read_bytes() == first
    # the pandas metadata carries no timestamp or other varying field
    meta = json.loads(pq.read_schema(a.chunk_path(0, 0, 4)).metadata[b"pandas"])
    assert meta["index_columns"] == [] and "creation" not in json.dumps(meta).lower()


# ----------------------------------------------------------------------------- atomic writes


def test_crash_in_replace_leaves_nothing_under_final_name(tmp_path, monkeypatch):
    store = new_store(tmp_path)

    def crash(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(atomic_mod.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.write_chunk(0, 0, 2, frame(0, 0, 2))
    monkeypatch.undo()
    assert chunk_files(store) == []  # no final file and no temporary left behind
    assert not store.is_done(0, 0, 2)


def test_crash_midway_through_write_leaves_nothing(tmp_path, monkeypatch):
    store = new_store(tmp_path)
    real_write = os.write

    def half_then_crash(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError("simulated crash while writing")

    monkeypatch.setattr(atomic_mod.os, "write", half_then_crash)
    with pytest.raises(OSError, match="while writing"):
        store.write_chunk(0, 0, 2, frame(0, 0, 2))
    monkeypatch.undo()
    assert chunk_files(store) == []
    assert not store.is_done(0, 0, 2)


def test_crash_between_file_and_marker_is_not_done(tmp_path, monkeypatch):
    store = new_store(tmp_path)
    real = store_mod._atomic_write_bytes

    def crash_on_marker(path, data):
        if path.suffix == ".done":
            raise OSError("simulated crash before the marker")
        real(path, data)

    monkeypatch.setattr(store_mod, "_atomic_write_bytes", crash_on_marker)
    with pytest.raises(OSError, match="before the marker"):
        store.write_chunk(0, 0, 2, frame(0, 0, 2))
    monkeypatch.undo()
    assert chunk_files(store) == ["c0000_r0000000-0000002.parquet"]
    with pytest.warns(ChunkIntegrityWarning, match="marker is missing"):
        assert not store.is_done(0, 0, 2)
    assert chunk_files(store) == []  # removed, so that it is recomputed
    store.write_chunk(0, 0, 2, frame(0, 0, 2))
    assert store.is_done(0, 0, 2)


def test_stale_temporaries_are_removed_on_reopen(tmp_path):
    store = new_store(tmp_path)
    junk = store.chunks_dir / ".c0000_r0000000-0000002.parquet.abc123.tmp"
    junk.write_bytes(b"partial")
    new_store(tmp_path)
    assert not junk.exists()


# ------------------------------------------------------------------------------ verification


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip], ids=["truncated", "flipped-byte"])
def test_damaged_chunk_is_not_done_and_removed(tmp_path, damage):
    store = new_store(tmp_path)
    store.write_chunk(0, 0, 2, frame(0, 0, 2))
    store.write_chunk(0, 2, 4, frame(0, 2, 4))
    damage(store.chunk_path(0, 0, 2))
    with pytest.raises(ValueError, match="SHA-256"):
        store.read_chunk(0, 0, 2)
    with pytest.warns(ChunkIntegrityWarning, match=r"condition 0, replications \[0, 2\)"):
        assert not store.is_done(0, 0, 2)
    assert not store.chunk_path(0, 0, 2).exists() and not store.marker_path(0, 0, 2).exists()
    assert store.is_done(0, 2, 4)  # the intact neighbour is untouched
    assert store.done_chunks() == [(0, 2, 4)]


def test_missing_marker_or_wrong_rows_is_not_done(tmp_path):
    store = new_store(tmp_path)
    store.write_chunk(0, 0, 2, frame(0, 0, 2))
    store.write_chunk(0, 2, 4, frame(0, 2, 4))
    store.marker_path(0, 0, 2).unlink()
    marker = json.loads(store.marker_path(0, 2, 4).read_text())
    marker["rows"] += 1
    store.marker_path(0, 2, 4).write_text(json.dumps(marker))
    with pytest.warns(ChunkIntegrityWarning) as record:
        assert store.done_chunks() == []
    messages = " | ".join(str(w.message) for w in record)
    assert "marker is missing" in messages and "rows" in messages
    assert chunk_files(store) == []
    with pytest.raises(KeyError, match="holds no chunk"):
        store.read_chunk(0, 0, 2)


# ------------------------------------------------------------------------- opening the store


@pytest.mark.parametrize(("key", "value"), [("study_hash", "h-bbbb"), ("preset", "full"),
                                            ("seed", 8)])
def test_other_study_definition_is_refused(tmp_path, key, value):
    store = new_store(tmp_path)
    store.write_chunk(0, 0, 2, frame(0, 0, 2))
    before = (tmp_path / "out" / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match="different study definition") as info:
        new_store(tmp_path, **{key: value})
    message = str(info.value)
    assert repr(MANIFEST[key]) in message and repr(value) in message and "--out" in message
    assert (tmp_path / "out" / "manifest.json").read_bytes() == before
    assert new_store(tmp_path).is_done(0, 0, 2)  # the same study resumes


def test_resume_under_other_versions_warns_and_keeps_manifest(tmp_path):
    new_store(tmp_path)
    before = (tmp_path / "out" / "manifest.json").read_bytes()
    with pytest.warns(UserWarning, match="backend numpy -> cupy"):
        new_store(tmp_path, backend="cupy")
    assert (tmp_path / "out" / "manifest.json").read_bytes() == before


def test_path_is_a_file_or_under_a_file(tmp_path):
    f = tmp_path / "results.txt"
    f.write_text("not a directory")
    with pytest.raises(ValueError, match="is a file"):
        ResultStore.create_or_open(f, MANIFEST)
    # We run as root here, so permission bits cannot make a directory unwritable; a path
    # below a regular file is the "cannot create" situation that works for every user.
    with pytest.raises(ValueError, match="is a file"):
        ResultStore.create_or_open(f / "sub" / "out", MANIFEST)
    assert f.read_text() == "not a directory"


def test_unwritable_directory(tmp_path, monkeypatch):
    target = tmp_path / "ro"
    target.mkdir()
    target.chmod(0o500)
    try:
        if not os.access(target, os.W_OK):  # an ordinary user: the real permission check
            with pytest.raises(PermissionError, match="not writable"):
                ResultStore.create_or_open(target / "out", MANIFEST)
        # root ignores permission bits: check the message of the early check by making
        # os.access report the directory read-only
        monkeypatch.setattr(atomic_mod.os, "access", lambda *a, **k: False)
        with pytest.raises(PermissionError, match="not writable") as info:
            ResultStore.create_or_open(target / "out", MANIFEST)
        assert str(target / "out") in str(info.value)
    finally:
        target.chmod(0o700)
    assert not (target / "out").exists()  # refused before any work


def test_foreign_directory_and_bad_manifest_are_refused(tmp_path):
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("...")
    with pytest.raises(ValueError, match="not a gfgsm results store"):
        ResultStore.create_or_open(foreign, MANIFEST)
    with pytest.raises(ValueError, match=r"lacks required key\(s\) \['study_hash'\]"):
        ResultStore.create_or_open(tmp_path / "x", {k: v for k, v in MANIFEST.items()
                                                    if k != "study_hash"})
    with pytest.raises(TypeError, match="JSON"):
        ResultStore.create_or_open(tmp_path / "x", {**MANIFEST, "study": {1, 2}})


# --------------------------------------------------------------------------------- the chunks


def test_write_chunk_validates_its_input(tmp_path):
    store = new_store(tmp_path)
    with pytest.raises(ValueError, match="'condition' column holds"):
        store.write_chunk(1, 0, 2, frame(0, 0, 2))
    with pytest.raises(ValueError, match="outside"):
        store.write_chunk(0, 0, 1, frame(0, 0, 2))
    with pytest.raises(ValueError, match="start < stop"):
        store.write_chunk(0, 2, 2, frame(0, 0, 2))
    with pytest.raises(TypeError, match="DataFrame"):
        store.write_chunk(0, 0, 2, frame(0, 0, 2).to_dict())
    with pytest.raises(ValueError, match="seconds"):
        store.write_chunk(0, 0, 2, frame(0, 0, 2), seconds=-1.0)
    assert chunk_files(store) == []


def test_dtypes_are_kept_stable_across_chunks(tmp_path):
    store = new_store(tmp_path)
    store.write_chunk(0, 0, 2, frame(0, 0, 2))
    # all-missing 'lam' (null) and integer 'kkt' are widened to the stored float types, also
    # by a resumed run (which finds the stored types on disk)
    odd = frame(0, 2, 4).assign(lam=None, kkt=0)
    resumed = new_store(tmp_path)
    resumed.write_chunk(0, 2, 4, odd[list(reversed(odd.columns))])  # column order is restored
    back = store.read_chunk(0, 2, 4)
    assert list(back.columns) == list(frame(0, 0, 2).columns)
    assert back["lam"].dtype == np.float64 and back["lam"].isna().all()
    assert back["kkt"].dtype == np.float64
    with pytest.raises(ValueError, match="'n_iter': double"):
        store.write_chunk(0, 4, 6, frame(0, 4, 6).assign(n_iter=np.nan))
    with pytest.raises(ValueError, match=r"missing \['kkt'\]"):
        store.write_chunk(0, 4, 6, frame(0, 4, 6).drop(columns="kkt"))


def test_timings_and_run_records(tmp_path):
    store = new_store(tmp_path)
    assert store.summary_timings() == {"seconds": 0.0, "chunks": 0, "timed_chunks": 0}
    assert store.timings().empty and store.runs() == []
    store.write_chunk(0, 0, 2, frame(0, 0, 2), seconds=1.25)
    store.write_chunk(1, 0, 2, frame(1, 0, 2))
    assert store.summary_timings() == {"seconds": 1.25, "chunks": 2, "timed_chunks": 1}
    store.record_timing(1, 0, 2, 0.5)
    assert store.summary_timings() == {"seconds": 1.75, "chunks": 2, "timed_chunks": 2}
    assert store.is_done(1, 0, 2)  # rewriting the marker keeps the chunk valid
    t = store.timings()
    assert t[["condition", "start", "stop", "rows"]].values.tolist() == [[0, 0, 2, 8],
                                                                         [1, 0, 2, 8]]
    assert t["seconds"].tolist() == [1.25, 0.5]
    with pytest.raises(KeyError, match="not stored"):
        store.record_timing(0, 2, 4, 1.0)
    store.record_run({"executor": "local", "chunk_size": 2})
    store.record_run({"executor": "processes", "chunk_size": 2})
    runs = ResultStore.open(tmp_path / "out").runs()
    assert [r["executor"] for r in runs] == ["local", "processes"]
    assert "versions" in runs[0] and "finished_utc" in runs[0]


# ------------------------------------------------------------------------------------- load


def test_load_is_sorted_and_independent_of_chunking(tmp_path):
    a = new_store(tmp_path, "a")
    for c, s, e in [(1, 3, 5), (0, 2, 5), (1, 0, 3), (0, 0, 2)]:  # out of order, shuffled rows
        a.write_chunk(c, s, e, frame(c, s, e, shuffle=True))
    b = new_store(tmp_path, "b")
    for c in (0, 1):
        b.write_chunk(c, 0, 5, frame(c, 0, 5))
    got = load(tmp_path / "a")
    pd.testing.assert_frame_equal(got, load(tmp_path / "b"))
    assert len(got) == 2 * 5 * 2 * 2
    keys = got[["condition", "rep", "method", "param"]]
    assert keys.equals(keys.sort_values(list(keys.columns)).reset_index(drop=True))
    assert got["rep"].dtype == np.int64 and got["converged"].dtype == bool


def test_load_skips_invalid_chunks_without_deleting(tmp_path):
    store = new_store(tmp_path)
    store.write_chunk(0, 0, 2, frame(0, 0, 2))
    store.write_chunk(0, 2, 4, frame(0, 2, 4))
    _flip(store.chunk_path(0, 2, 4))
    with pytest.warns(ChunkIntegrityWarning, match=r"skipping chunk condition 0, replications "
                                                   r"\[2, 4\)"):
        got = load(tmp_path / "out")
    assert sorted(got["rep"].unique()) == [0, 1]
    assert store.chunk_path(0, 2, 4).exists()  # load only reads


def test_load_without_manifest(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no gfgsm results store"):
        load(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no gfgsm results store"):
        load(tmp_path / "nowhere")
    new_store(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load(tmp_path / "out").empty


def test_overlapping_chunks_are_refused(tmp_path):
    store = new_store(tmp_path)
    store.write_chunk(0, 0, 4, frame(0, 0, 4))
    # a resume with chunk size 3 instead of 4: fail before computing anything
    with pytest.raises(ValueError, match=r"overlaps the stored chunk condition 0, replications "
                                         r"\[0, 4\).*original chunk size"):
        store.is_done(0, 3, 6)
    with pytest.raises(ValueError, match="overlaps"):
        store.write_chunk(0, 3, 6, frame(0, 3, 6))
    assert store.is_done(0, 0, 4) and not store.is_done(0, 4, 6) and not store.is_done(1, 0, 3)
    # overlapping files that got into the directory anyway (copied from another run): load
    # refuses to count replications 3 twice
    other = new_store(tmp_path, "other")
    other.write_chunk(0, 3, 6, frame(0, 3, 6))
    for p in (other.chunk_path(0, 3, 6), other.marker_path(0, 3, 6)):
        (store.chunks_dir / p.name).write_bytes(p.read_bytes())
    with pytest.raises(ValueError, match=r"\[0, 4\) and \[3, 6\) overlap"):
        load(tmp_path / "out")


def test_manifest_is_strict_json_with_infinite_parameters(tmp_path):
    """Non-finite numbers of a definition (the sparsity study's oracle weights are +inf) are
    written as strings: the manifest must parse with a parser that refuses NaN/Infinity."""
    import math

    from gfgsm.mc import MethodSpec, Preset, Study
    from gfgsm.mc import run as run_study
    from simulations.smoke import STUDY as smoke

    oracle = MethodSpec("oracle", "pl", penalty="adaptive_l1",
                        params=(("weights", (0.0, math.inf)),))
    study = Study(name="strict", aims="", factors={"family": ["gaussian"], "n": [50],
                                                    "lam0": [1.0]},
                  make_dgp=smoke.make_dgp, methods=(oracle,),
                  presets={"quick": Preset(reps=2), "full": Preset(reps=2)})

    def refuse(name: str) -> None:
        raise ValueError(f"non-strict JSON constant {name}")

    assert study.definition("quick")["methods"][0]["params"] == [["weights", [0.0, "inf"]]]
    out = run_study(study, "quick", tmp_path / "s", progress=False)
    manifest = json.loads((out / "manifest.json").read_text(), parse_constant=refuse)
    assert manifest["study"]["methods"][0]["params"][0][1][1] == "inf"
