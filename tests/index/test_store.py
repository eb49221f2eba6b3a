"""The embedding store's compression (``index.store``): the embeddings are Zarr v3 ``blosc`` (zstd,
byte shuffle) chunks that numcodecs alone decodes, read back bit for bit, and stores written by earlier
versions still read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import zarr
from numcodecs.blosc import Blosc, cbuffer_complib
from zarr.codecs import BloscCodec

from index import store

LAYOUT = store.Layout(windows=(5, 3, 6), videos_per_unit=2, chunk_rows=4)
DIM = 32
BLOSC_DOSHUFFLE = 0x1  # c-blosc's header flags (byte 2 of every blosc frame), as in blosc.h
BLOSC_DOBITSHUFFLE = 0x4


def _unit_data(unit: int, rng: np.random.Generator) -> tuple[dict, dict]:
    """Columns for one unit: every window of a video shares its video's unit row (compressible)."""
    videos = LAYOUT.videos_of(unit)
    direction = rng.standard_normal((len(videos), DIM))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    video = np.concatenate([np.full(LAYOUT.windows[v], v) for v in videos]).astype(np.int32)
    n = len(video)
    clips = {
        "embedding": direction[video - videos.start].astype(np.float16),
        "video": video,
        "start_frame": np.arange(n, dtype=np.int32) * 8,
        "end_frame": np.arange(n, dtype=np.int32) * 8 + 16,
        "start_time": np.arange(n, dtype=np.float32) * 0.32,
        "end_time": np.arange(n, dtype=np.float32) * 0.32 + 0.64,
        "stride": np.full(n, 8, np.int32),
        "rate": np.ones(n, np.float32),
    }
    vids = {
        "embedding": direction.astype(np.float16),
        "key": np.array([f"vid{v}" for v in videos]),
        "label": np.array(["pan"] * len(videos)),
        "fps": np.full(len(videos), 25, np.float32),
        "frames": np.full(len(videos), 50, np.int32),
    }
    return clips, vids


def _written(path: Path) -> tuple[dict, dict]:
    """A complete store at ``path``, written by the product; returns every unit's columns."""
    rng = np.random.default_rng(0)
    root = store.create(path, LAYOUT, DIM, {"model": {"step": 1}})
    units = [_unit_data(u, rng) for u in range(LAYOUT.units)]
    for u, (clips, vids) in enumerate(units):
        store.write_unit(root, u, clips, vids)
    assert store.finish(root)
    return units


def _expected_clip_rows(units) -> np.ndarray:
    """``clips/embedding`` as the layout pads it: each unit's rows, then zero rows to whole chunks."""
    offsets = LAYOUT.offsets()
    out = np.zeros((offsets[-1], DIM), np.float16)
    for u, (clips, _) in enumerate(units):
        out[offsets[u] : offsets[u] + len(clips["embedding"])] = clips["embedding"]
    return out


def _chunk_files(array_dir: Path) -> list[Path]:
    return sorted(p for p in (array_dir / "c").rglob("*") if p.is_file())


def test_embeddings_are_blosc_zstd_shuffle_and_read_back_exactly(tmp_path):
    path = tmp_path / "s.zarr"
    units = _written(path)
    root = store.open_store(path, mode="r")
    for level, expected in [
        ("clips", _expected_clip_rows(units)),
        ("videos", np.concatenate([vids["embedding"] for _, vids in units])),
    ]:
        # The metadata any v3 reader sees: the spec's blosc codec, after the bytes codec.
        codecs = json.loads((path / level / "embedding" / "zarr.json").read_text())["codecs"]
        assert [c["name"] for c in codecs] == ["bytes", "blosc"]
        blosc = codecs[1]["configuration"]
        assert (blosc["cname"], blosc["shuffle"], blosc["typesize"]) == ("zstd", "shuffle", 2)
        stored = root[level]["embedding"][:]
        assert stored.dtype == np.float16 and np.array_equal(stored.view(np.uint16), expected.view(np.uint16))


def test_chunks_on_disk_are_blosc_frames_that_numcodecs_decodes(tmp_path):
    path = tmp_path / "s.zarr"
    units = _written(path)
    expected = _expected_clip_rows(units)
    chunks = _chunk_files(path / "clips" / "embedding")
    assert len(chunks) == len(expected) // LAYOUT.chunk_rows
    stored = 0
    for i, chunk in enumerate(sorted(chunks, key=lambda p: int(p.parent.name))):  # c/<row chunk>/0
        frame = chunk.read_bytes()
        stored += len(frame)
        flags, typesize = frame[2], frame[3]
        assert cbuffer_complib(frame) == "Zstd"
        assert flags & BLOSC_DOSHUFFLE and not flags & BLOSC_DOBITSHUFFLE and typesize == 2
        rows = np.frombuffer(Blosc().decode(frame), np.float16).reshape(LAYOUT.chunk_rows, DIM)
        assert np.array_equal(rows, expected[i * LAYOUT.chunk_rows : (i + 1) * LAYOUT.chunk_rows])
    # Each video's windows share one row: the compressor must find that.
    assert stored < 0.5 * expected.nbytes, (stored, expected.nbytes)


def _store_as_written_before(path: Path, units) -> None:
    """A store as index.export wrote it before this version, made with zarr alone: the embeddings
    blosc-compressed by zarr's BloscCodec, every other array in zarr's defaults, format 1."""
    offsets = LAYOUT.offsets()
    rows, videos, vchunk = int(offsets[-1]), len(LAYOUT.windows), LAYOUT.videos_per_unit
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    clips, vids = root.create_group("clips"), root.create_group("videos")
    old_codec = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
    for group, n, chunk in [(clips, rows, LAYOUT.chunk_rows), (vids, videos, vchunk)]:
        group.create_array(
            "embedding", shape=(n, DIM), chunks=(chunk, DIM), dtype="float16", compressors=old_codec, fill_value=0
        )
    for name, dtype in store.CLIP_COLUMNS.items():
        fill = -1 if name == "video" else 0
        clips.create_array(name, shape=(rows,), chunks=(LAYOUT.chunk_rows,), dtype=dtype, fill_value=fill)
    for name in ("key", "label"):
        vids.create_array(name, shape=(videos,), chunks=(vchunk,), dtype=str, fill_value="")
    for name, dtype in store.VIDEO_COLUMNS.items():
        vids.create_array(name, shape=(videos,), chunks=(vchunk,), dtype=dtype, fill_value=0)
    root.create_array("done", shape=(LAYOUT.units,), chunks=(1,), dtype=bool, fill_value=True)
    for u, (unit_clips, unit_vids) in enumerate(units):
        start, n = int(offsets[u]), len(unit_clips["video"])
        for name, column in unit_clips.items():
            clips[name][start : start + n] = column
        span = LAYOUT.videos_of(u)
        for name, column in unit_vids.items():
            vids[name][span.start : span.stop] = column
    layout = {"windows": list(LAYOUT.windows), "videos_per_unit": vchunk, "chunk_rows": LAYOUT.chunk_rows}
    root.attrs.update({"format": "speedrep-embeddings/1", "dim": DIM, "complete": True, "layout": layout})


def test_a_store_written_before_this_version_still_reads(tmp_path):
    rng = np.random.default_rng(1)
    units = [_unit_data(u, rng) for u in range(LAYOUT.units)]
    path = tmp_path / "old.zarr"
    _store_as_written_before(path, units)

    emb, ids = store.read_embeddings(path, "clips")
    valid = np.flatnonzero(_expected_clip_rows(units).any(axis=1))
    assert np.array_equal(ids, valid)
    expected = _expected_clip_rows(units)[valid].astype(np.float32)
    np.testing.assert_allclose(emb, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-6)
    video_emb, video_ids = store.read_embeddings(path, "videos")
    assert np.array_equal(video_ids, np.arange(len(LAYOUT.windows)))
    rows = store.describe_rows(path, "clips", ids[:2])
    assert [(r["video"], r["label"], r["start_frame"]) for r in rows] == [("vid0", "pan", 0), ("vid0", "pan", 8)]
    assert store.layout_of(store.open_store(path, mode="r")) == LAYOUT and store.identity(path)
