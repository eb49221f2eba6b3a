"""The shard format: the contract between the shard job (writer) and the loader (reader).

A sharded dataset is one folder per split::

    OUT/<split>/<split>-000000.tar     WebDataset tar; one sample = two members, in this order:
                    <key>.<container>  the normalised video (constant fps, short side capped,
                                       8-bit 4:2:0, rotation applied, no audio)
                    <key>.json         its SampleMeta, as JSON
    OUT/<split>/<split>-000000.idx     the index DALI's ``fn.readers.webdataset`` needs for that tar
    OUT/<split>/manifest.json          what the split holds; see ``jobs.shard.manifest``

Keys match ``KEY_PATTERN``: WebDataset and DALI treat everything after the first dot of a member
name as its extension, so a key never contains a dot; and a key is at most ``MAX_KEY`` characters,
so that ``<key>.<ext>`` fits a tar member name (100 bytes). A tar is only ever visible under its final
name once it is complete, and its ``.idx`` is in place before it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_KEY = 90
SHARD_GLOB = "*.tar"
DALI_INDEX_VERSION = "v1.2"


@dataclass(frozen=True)
class SourceInfo:
    """The input file as it was found, before normalisation."""

    path: str
    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float  # average frame rate the container declares
    frames: int  # frames actually decoded
    duration: float  # seconds, from the decoded timestamps
    rotation: int  # display rotation applied, degrees counter-clockwise


@dataclass(frozen=True)
class SampleMeta:
    """Everything the loader and later stages know about one sample (the ``<key>.json`` member)."""

    key: str
    id: str  # dataset id: the YouTube id for Kinetics, the file stem for UCF101/HMDB51
    label: str | None  # None where the split has no labels (Kinetics test CSVs without them)
    label_index: int  # index into the manifest's ``labels``; -1 without a label
    split: str
    time_start: float  # seconds into the original video (Kinetics CSV), else 0
    time_end: float
    fps: float  # output frame rate: constant, frame i is shown at i / fps
    width: int
    height: int
    frames: int  # exact number of frames in the stored stream; valid indices are 0..frames-1
    codec: str  # output codec name as FFmpeg calls it (vp9, h264, mjpeg)
    container: str  # member extension of the video: mp4, mkv, ...
    source: SourceInfo

    def to_json_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json_dict(cls, d: dict) -> SampleMeta:
        return cls(**{**d, "source": SourceInfo(**d["source"])})


def make_key(name: str) -> str:
    """A valid sample key for ``name`` (a file stem or dataset id).

    Names that are already valid keys are returned unchanged, so Kinetics keys stay equal to
    their file stems. Other names (HMDB51 has dots, brackets and '&' in file names; a user's
    video may have a long title) get every invalid character replaced, are cut to fit
    ``MAX_KEY``, and get a short hash of the original appended, so two names that differ only in
    replaced or cut characters still get distinct keys.
    """
    if KEY_PATTERN.match(name) and len(name) <= MAX_KEY:
        return name
    cleaned = re.sub(r"_*[^A-Za-z0-9_-]+_*", "_", name).strip("_")[: MAX_KEY - 9].rstrip("_") or "video"
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{cleaned}_{digest}"


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


def index_path(tar_path: Path) -> Path:
    """Where DALI's index for a tar lives (what ``fn.readers.webdataset(index_paths=...)`` takes)."""
    return tar_path.with_suffix(".idx")


def dali_index_text(samples: Iterable[list[tuple[str, int, int, str]]]) -> str:
    """DALI's webdataset index (format v1.2, as written by its ``wds2idx`` tool).

    ``samples`` holds, per sample, its members as (extension, data offset, size, member name).
    Line one is ``v1.2 <number of samples>``; then one line per sample with its members' four
    fields, space separated.
    """
    samples = list(samples)
    lines = [f"{DALI_INDEX_VERSION} {len(samples)}"]
    for members in samples:
        lines.append(" ".join(f"{ext} {offset} {size} {name}" for ext, offset, size, name in members))
    return "\n".join(lines) + "\n"
