"""The embedding store: the contract between the export job (writer) and the index (reader).

A store is one zarr group (``NAME.zarr``) holding what a trained model sees in a collection::

    clips/embedding    (N, D) float16  one row per sliding window (or padding, see ``video``)
    clips/video        (N,)   int32    row of ``videos/*`` the window comes from; -1 = padding row
    clips/start_frame  (N,)   int32    first frame the window shows (frames of the stored video)
    clips/end_frame    (N,)   int32    one past the last frame it shows
    clips/start_time   (N,)   float32  seconds: start_frame / fps
    clips/end_time     (N,)   float32  seconds: end_frame / fps
    clips/stride       (N,)   int32    frames between window starts
    clips/rate         (N,)   float32  playback rate the window shows (1 = normal, 2 = every 2nd frame)
    videos/embedding   (V, D) float16  VCOP protocol: 10 evenly spaced clips, pooled, averaged
    videos/key         (V,)   str      sample key (the Kinetics YouTube id, the file stem)
    videos/label       (V,)   str      class name; "" when unlabelled
    videos/fps, videos/frames          (V,) float32, int32
    done               (U,)   bool     work units finished (resume skips them)

Embeddings are unit vectors stored in float16 (cosine similarity = inner product). Attributes
(``attrs``) say how they were made: ``model`` (checkpoint path, step, method, backbone and a
fingerprint of the weights), ``clips`` (T, stride, rate, size, pool), ``videos`` (T, clips, size,
pool), ``shards`` (the tar paths, in order, whose samples are the rows of ``videos/*``), ``encode``
(the shard job's normalisation, so a query clip is prepared the same way), and ``complete``.

Compression: both ``embedding`` arrays use Zarr v3's standard ``blosc`` codec (zstd, level 3, byte
shuffle over the 2-byte floats), which any v3 reader knows; zarr's ``BloscCodec`` only describes it:
every chunk is compressed and decompressed by numcodecs' ``Blosc`` (c-blosc, built into numcodecs),
which needs numcodecs >= 0.16 to be handed the item size (older ones shuffle single bytes, a no-op).
The other arrays keep zarr's default (zstd). Each array's codecs are in its own metadata, so stores
written by earlier versions, which used the same codecs, read as before.

Work is cut into units of whole videos. A unit owns a row range of ``clips/*`` that starts on a
chunk boundary and is padded to whole chunks (padding rows have video -1), and whole chunks of
``videos/*``; so ranks writing different units never touch the same chunk file, and a unit
rewritten after an interruption overwrites only its own chunks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from pipeline.atomic import atomic_path

FORMAT = "speedrep-embeddings/1"
CLIP_COLUMNS = {
    "video": "int32",
    "start_frame": "int32",
    "end_frame": "int32",
    "start_time": "float32",
    "end_time": "float32",
    "stride": "int32",
    "rate": "float32",
}
VIDEO_COLUMNS = {"fps": "float32", "frames": "int32"}
# Unit float16 rows compress little (zstd saves ~8% on random 256-d rows). Not numcodecs.zarr3.Blosc:
# that module is deprecated, and its codec is named "numcodecs.blosc", outside the v3 spec (zarr
# warns that other implementations may not read it), and shuffles single bytes unless given a typesize.
_EMBEDDING_CODEC = BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.shuffle)


@dataclass(frozen=True)
class Layout:
    """Where every unit's rows lie. ``windows[v]`` windows for video v; units of ``videos_per_unit``
    consecutive videos; clip rows padded per unit to multiples of ``chunk_rows``."""

    windows: tuple[int, ...]
    videos_per_unit: int
    chunk_rows: int

    @property
    def units(self) -> int:
        return -(-len(self.windows) // self.videos_per_unit)

    def videos_of(self, unit: int) -> range:
        return range(unit * self.videos_per_unit, min(len(self.windows), (unit + 1) * self.videos_per_unit))

    def unit_rows(self, unit: int) -> int:
        """Rows a unit owns: its windows, rounded up to whole chunks."""
        n = sum(self.windows[v] for v in self.videos_of(unit))
        return -(-n // self.chunk_rows) * self.chunk_rows

    def offsets(self) -> np.ndarray:
        """First clip row of every unit, and the total row count last."""
        return np.concatenate([[0], np.cumsum([self.unit_rows(u) for u in range(self.units)])]).astype(np.int64)


def create(path: Path, layout: Layout, dim: int, attrs: dict) -> zarr.Group:
    """Make the pre-sized store at ``path``, atomically: it appears complete in layout or not at all.
    A store already there is opened instead, so every rank can call this."""
    path = Path(path)
    if path.exists():
        return open_store(path)
    try:
        with atomic_path(path) as tmp:
            _create_at(tmp, layout, dim, attrs)
    except OSError:  # another rank renamed its store into place first: use theirs
        if not path.exists():
            raise
    return open_store(path)


def _create_at(tmp: Path, layout: Layout, dim: int, attrs: dict) -> None:
    rows, videos = int(layout.offsets()[-1]), len(layout.windows)
    root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    vchunk = layout.videos_per_unit
    clips, vids = root.create_group("clips"), root.create_group("videos")
    clips.create_array(
        "embedding",
        shape=(rows, dim),
        chunks=(layout.chunk_rows, dim),
        dtype="float16",
        compressors=_EMBEDDING_CODEC,
        fill_value=0,
    )
    for name, dtype in CLIP_COLUMNS.items():
        clips.create_array(
            name, shape=(rows,), chunks=(layout.chunk_rows,), dtype=dtype, fill_value=-1 if name == "video" else 0
        )
    vids.create_array(
        "embedding",
        shape=(videos, dim),
        chunks=(vchunk, dim),
        dtype="float16",
        compressors=_EMBEDDING_CODEC,
        fill_value=0,
    )
    for name in ("key", "label"):
        vids.create_array(name, shape=(videos,), chunks=(vchunk,), dtype=str, fill_value="")
    for name, dtype in VIDEO_COLUMNS.items():
        vids.create_array(name, shape=(videos,), chunks=(vchunk,), dtype=dtype, fill_value=0)
    root.create_array("done", shape=(layout.units,), chunks=(1,), dtype=bool, fill_value=False)
    root.attrs.update(
        {
            **attrs,
            "format": FORMAT,
            "dim": dim,
            "complete": False,
            "layout": {
                "windows": list(layout.windows),
                "videos_per_unit": layout.videos_per_unit,
                "chunk_rows": layout.chunk_rows,
            },
        }
    )


def open_store(path: Path, mode: str = "r+") -> zarr.Group:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no embedding store at {path} (make one with python -m index.export)")
    root = zarr.open_group(str(path), mode=mode)
    if root.attrs.get("format") != FORMAT:
        raise ValueError(f"{path} is not an embedding store written by index.export")
    return root


def identity(path: Path) -> str:
    """A digest of what a store holds (model, export settings, shards, layout). A store exported
    again at the same path with anything different gets another one, so an index can tell."""
    attrs = dict(open_store(path, mode="r").attrs)
    held = {k: attrs.get(k) for k in ("model", "clips", "videos", "shards", "encode", "layout")}
    return hashlib.sha1(json.dumps(held, sort_keys=True, default=str).encode()).hexdigest()[:16]


def layout_of(root: zarr.Group) -> Layout:
    d = root.attrs["layout"]
    return Layout(tuple(d["windows"]), d["videos_per_unit"], d["chunk_rows"])


def pending_units(root: zarr.Group) -> list[int]:
    return [int(u) for u in np.flatnonzero(~root["done"][:])]


def write_unit(root: zarr.Group, unit: int, clips: dict[str, np.ndarray], videos: dict[str, np.ndarray]) -> None:
    """Write one unit's rows (``clips`` columns and ``embedding`` for its windows, in order, unpadded;
    ``videos`` columns for its videos), then mark it done: done is only ever set after its data."""
    layout = layout_of(root)
    start = int(layout.offsets()[unit])
    rows = layout.unit_rows(unit)
    n = len(clips["embedding"])
    for name in ("embedding", *CLIP_COLUMNS):
        column = np.asarray(clips[name])
        padded = np.full((rows, *column.shape[1:]), -1 if name == "video" else 0, dtype=root["clips"][name].dtype)
        padded[:n] = column
        root["clips"][name][start : start + rows] = padded
    span = layout.videos_of(unit)
    for name, column in videos.items():
        root["videos"][name][span.start : span.stop] = np.asarray(column)
    root["done"][unit] = True


def finish(root: zarr.Group) -> bool:
    """Mark the store complete once every unit is done; returns whether it is."""
    complete = bool(root["done"][:].all())
    if complete and not root.attrs.get("complete"):
        root.attrs["complete"] = True
    return complete


def read_embeddings(path: Path, level: str = "clips") -> tuple[np.ndarray, np.ndarray]:
    """(float32 (n, D) unit rows, int64 (n,) their row numbers in ``level``) of a complete store;
    padding rows and undecodable videos are left out; ids index ``clips/*`` or ``videos/*``."""
    root = open_store(path, mode="r")
    if not root.attrs.get("complete"):
        raise ValueError(f"{path} is incomplete: run the same export again to finish it")
    if level not in ("clips", "videos"):
        raise ValueError(f"level must be clips or videos, not {level!r}")
    stored = root[level]["embedding"][:]  # float16; converted only for the rows kept, to spare memory
    # Padding rows, and videos the loader could not decode, are all zeros.
    valid = root["clips"]["video"][:] >= 0 if level == "clips" else np.abs(stored).max(axis=1) > 0
    ids = np.flatnonzero(valid)
    emb = stored[ids].astype(np.float32)
    del stored
    norms = np.sqrt(np.einsum("ij,ij->i", emb, emb))[:, None]  # no (n, D) temporary
    emb /= np.maximum(norms, 1e-12)  # undo float16 rounding of the norm
    return emb, ids.astype(np.int64)


def describe_rows(path: Path, level: str, ids: np.ndarray) -> list[dict]:
    """What a user sees of each result row: video key, label, start and end time (clips), and
    ``video_row``, the row of ``videos/*`` (= the sample's position in the store's shards)."""
    root = open_store(path, mode="r")
    ids = np.asarray(ids, dtype=np.int64)
    if level == "clips":
        columns = {name: root["clips"][name].get_coordinate_selection(ids) for name in CLIP_COLUMNS} if len(ids) else {}
        video = columns.get("video", np.zeros(0, int))
    else:
        video = ids
    keys = root["videos"]["key"].get_coordinate_selection(video) if len(ids) else []
    labels = root["videos"]["label"].get_coordinate_selection(video) if len(ids) else []
    out = []
    for i in range(len(ids)):
        row = {"id": int(ids[i]), "video": str(keys[i]), "label": str(labels[i]) or None, "video_row": int(video[i])}
        if level == "clips":
            row.update(
                start_time=float(columns["start_time"][i]),
                end_time=float(columns["end_time"][i]),
                start_frame=int(columns["start_frame"][i]),
                end_frame=int(columns["end_frame"][i]),
            )
        out.append(row)
    return out
