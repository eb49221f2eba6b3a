"""Loose video files (a query clip, a folder of videos) into one shard, normalised as a dataset was.

The export job and ``index.query`` read every video through the same loader as training, so a
user's ``clip.mp4`` must first look like a sharded sample: same frame rate, short side and codec
(``EncodeSettings``, recorded in the embedding store). Unlabelled; keys from the file stems.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pipeline.normalise import CODECS, EncodeSettings, Rejected, normalise
from pipeline.progress import progress as progress_bar
from pipeline.shard_format import SampleMeta, make_key
from pipeline.tar_writer import ShardTarWriter

VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg"}


def find_videos(folder: Path) -> list[Path]:
    """Video files under ``folder`` (recursively), sorted, by suffix."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def shard_video(path: Path, out: Path, settings: EncodeSettings) -> list[Path]:
    """One video file as a one-sample shard in ``out`` (its tar paths); ``ValueError`` saying why for a
    missing or unreadable file, so the commands that take a user's video print one line."""
    if not Path(path).is_file():
        raise ValueError(f"no such file: {path}")
    try:
        shard_files([Path(path)], out, settings)
    except Rejected as e:
        raise ValueError(str(e)) from None
    return [out / "files-000000.tar"]


def shard_files(
    paths: Iterable[Path], out: Path, settings: EncodeSettings, *, strict: bool = True, progress: bool = False
) -> tuple[Path, list[dict]]:
    """Write ``out/files-000000.tar`` (and its index) from ``paths``; returns (tar, rejected).

    ``strict``: the first unreadable file raises ``Rejected`` naming it (a query); otherwise it is
    skipped and listed in ``rejected`` with the reason (a folder export)."""
    out.mkdir(parents=True, exist_ok=True)
    tar = out / "files-000000.tar"
    codec = CODECS[settings.codec]
    rejected, seen = [], set()
    with ShardTarWriter(tar) as writer:
        for path in progress_bar(list(paths), desc="normalise", unit="video", enabled=progress):
            try:
                video = normalise(path, settings)
            except Rejected as e:
                if strict:
                    raise Rejected(f"{path}: {e}") from None
                rejected.append({"path": str(path), "reason": str(e)})
                continue
            key = make_key(Path(path).stem)
            while key in seen:  # two files with one stem in different folders
                key += "_"
            seen.add(key)
            meta = SampleMeta(
                key=key,
                id=Path(path).stem,
                label=None,
                label_index=-1,
                split="files",
                time_start=0.0,
                time_end=video.frames / settings.fps,
                fps=float(settings.fps),
                width=video.width,
                height=video.height,
                frames=video.frames,
                codec=codec.name,
                container=codec.container,
                source=video.source,
            )
            writer.add(
                key, {codec.container: video.data, "json": json.dumps(meta.to_json_dict(), sort_keys=True).encode()}
            )
        if not writer.samples:
            raise Rejected(f"no readable video among {len(rejected)} files")
        writer.commit()
    return tar, rejected
