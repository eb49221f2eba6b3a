"""The Kinetics (CVDF) on-disk layout: clip names, YouTube-style ids and annotation CSVs.

Real Kinetics stores ``<split>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4`` next to
``annotations/<split>.csv`` with the header below. Reproducing it exactly, including ids that
begin with '-' and labels with spaces, apostrophes and parentheses, lets tests exercise the same
code paths a real download does.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_write_text

SPLITS = ("train", "val", "test")
CSV_HEADER = ("label", "youtube_id", "time_start", "time_end", "split", "is_cc")
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ID_LENGTH = 11


@dataclass(frozen=True)
class AnnotationRow:
    """One annotation row."""

    label: str
    youtube_id: str
    time_start: int
    time_end: int
    split: str
    is_cc: int

    @property
    def stem(self) -> str:
        return f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}"

    def path(self, root: Path) -> Path:
        return root / self.split / f"{self.stem}.mp4"


def youtube_id(rng: np.random.Generator, leading_dash: bool = False) -> str:
    """An 11-character id over YouTube's alphabet.

    ``leading_dash`` forces the '-' that some real ids start with, a classic command-line trap.
    """
    chars = [ID_ALPHABET[i] for i in rng.integers(len(ID_ALPHABET), size=ID_LENGTH)]
    if leading_dash:
        chars[0] = "-"
    return "".join(chars)


def write_annotations(path: Path, clips: list[AnnotationRow]) -> None:
    """One Kinetics annotation CSV; the csv module quotes labels where needed.

    Lines end in "\n" as in the Kinetics CSVs; the csv module would then leave a label with a
    carriage return unquoted and unreadable, so line breaks in labels are refused.
    """
    for clip in clips:
        if "\r" in clip.label or "\n" in clip.label:
            raise ValueError(f"label {clip.label!r} contains a line break")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for clip in clips:
        writer.writerow((clip.label, clip.youtube_id, clip.time_start, clip.time_end, clip.split, clip.is_cc))
    atomic_write_text(path, buffer.getvalue())


def kinetics_from_files(files: list[str], copies: int, root: Path) -> list[Path]:
    """Real files laid out ``copies`` times as a Kinetics train split under ``root`` (symlinks, labels
    from the file names): the benchmarks' and tests' dataset of real videos. Returns the video paths."""
    (root / "annotations").mkdir(parents=True)
    (root / "train").mkdir()
    videos = []
    with open(root / "annotations" / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        for c in range(copies):
            for i, src in enumerate(files):
                vid = f"bench{c:03d}x{i:03d}"
                path = root / "train" / f"{vid}_000000_000010.mp4"
                path.symlink_to(Path(src).resolve())
                w.writerow([Path(src).stem, vid, 0, 10, "train"])
                videos.append(path)
    return videos
