"""Read datasets as users have them on disk into one listing: every annotated video, per split.

- Kinetics (400/600/700, the CVDF layout): ``ROOT/annotations/{train,val,test}.csv`` read by
  header (K400 has ``is_cc``, K700 does not, test CSVs may lack ``label``), videos in
  ``ROOT/<split>/`` (flat, or in class folders) named ``<youtube_id>_<start:06d>_<end:06d>.mp4``,
  and ``ROOT/replacement/`` whose files replace broken ones by YouTube id.
- UCF101: ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt`` anywhere under ROOT, videos
  under ROOT by class folder.
- HMDB51: ``<action>_test_splitN.txt`` anywhere under ROOT (1 = train, 2 = test, 0 = unused),
  videos under ROOT.

Every annotation row becomes exactly one ``SourceVideo``: with a path, or with ``path=None`` when
its file is absent (counted as missing), or with ``problem`` set when the row itself is unusable.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.shard_format import make_key

VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".3gp"}
_KINETICS_STEM = re.compile(r"^(?P<id>.+)_(?P<start>\d{6})_(?P<end>\d{6})$")


class DatasetError(Exception):
    """The dataset folder cannot be read as the named dataset; the message says what is wrong."""


@dataclass(frozen=True)
class SourceVideo:
    key: str
    id: str
    split: str
    label: str | None
    path: str | None  # None: the file is not on disk
    expected: str  # where the file was looked for, for the 'missing' report
    time_start: float = 0.0
    time_end: float = 0.0
    problem: str | None = None  # set when the annotation row itself is unusable


@dataclass
class Listing:
    dataset: str
    labels: list[str]
    splits: dict[str, list[SourceVideo]] = field(default_factory=dict)
    fold: int | None = None  # UCF101/HMDB51 split number: part of what an assignment is made from

    def label_index(self, label: str | None) -> int:
        return self.labels.index(label) if label is not None else -1


def index_videos(folder: Path) -> dict[str, str]:
    """Map file stem to path for every video file under ``folder`` (recursively)."""
    found: dict[str, str] = {}
    stack = [str(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=True):
                stack.append(entry.path)
            else:
                stem, suffix = os.path.splitext(entry.name)
                if suffix.lower() in VIDEO_SUFFIXES:
                    found.setdefault(stem, entry.path)
    return found


def _mark_duplicates(videos: list[SourceVideo]) -> list[SourceVideo]:
    seen: set[str] = set()
    out = []
    for v in videos:
        if v.key in seen and v.problem is None:
            v = SourceVideo(**{**v.__dict__, "problem": "duplicate annotation row (the same video is listed earlier)"})
        seen.add(v.key)
        out.append(v)
    return out


# --- Kinetics --------------------------------------------------------------------------------


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = set(reader.fieldnames or [])
        if not {"youtube_id", "time_start", "time_end"} <= fields:
            raise DatasetError(f"{path}: expected columns youtube_id, time_start, time_end; found {sorted(fields)}")
        return list(reader)


def read_kinetics(root: Path, splits: list[str]) -> Listing:
    annotations = root / "annotations"
    if not annotations.is_dir():
        raise DatasetError(f"no annotations/ folder under {root} (expected annotations/train.csv etc.)")
    rows = {}
    for split in splits:
        path = annotations / f"{split}.csv"
        if not path.is_file():
            raise DatasetError(f"no annotations/{split}.csv under {root}")
        rows[split] = _read_csv(path)
    # Label indices come from every CSV present, so they agree across splits and runs.
    all_labels = set()
    for path in sorted(annotations.glob("*.csv")):
        all_labels |= {r["label"] for r in _read_csv(path) if r.get("label")}
    replacements = {
        (m.group("id") if (m := _KINETICS_STEM.match(stem)) else stem): p
        for stem, p in index_videos(root / "replacement").items()
    }
    listing = Listing("kinetics", sorted(all_labels))
    for split in splits:
        files = index_videos(root / split)
        videos = []
        for row in rows[split]:
            yid = row["youtube_id"]
            label = row.get("label") or None
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except ValueError:
                videos.append(
                    SourceVideo(
                        make_key(yid),
                        yid,
                        split,
                        label,
                        None,
                        "",
                        problem=(f"unreadable time_start/time_end {row['time_start']!r}/{row['time_end']!r}"),
                    )
                )
                continue
            stem = f"{yid}_{start:06d}_{end:06d}"
            path = replacements.get(yid) or files.get(stem)
            videos.append(
                SourceVideo(
                    make_key(stem), yid, split, label, path, str(root / split / f"{stem}.mp4"), float(start), float(end)
                )
            )
        listing.splits[split] = _mark_duplicates(videos)
    return listing


# --- UCF101 ----------------------------------------------------------------------------------


def _find_one(root: Path, name: str) -> Path:
    found = sorted(root.rglob(name))
    if not found:
        raise DatasetError(f"no {name} under {root}")
    return found[0]


def read_ucf101(root: Path, splits: list[str], fold: int = 1) -> Listing:
    class_ind = _find_one(root, "classInd.txt")
    classes = {}
    for line in class_ind.read_text().split("\n"):
        if line.strip():
            index, name = line.split()
            classes[name.lower()] = (int(index), name)
    labels = [name for _, name in sorted(classes.values())]
    files = index_videos(root)
    listing = Listing("ucf101", labels, fold=fold)
    for split in splits:
        if split not in ("train", "test"):
            raise DatasetError(f"UCF101 has splits train and test, not {split!r}")
        list_file = class_ind.parent / f"{split}list{fold:02d}.txt"
        if not list_file.is_file():
            raise DatasetError(f"no {list_file.name} beside {class_ind}")
        videos = []
        for line in list_file.read_text().split("\n"):
            if not line.strip():
                continue
            rel = line.split()[0]
            folder, _, name = rel.rpartition("/")
            stem = Path(name).stem
            label = classes.get(folder.lower(), (0, None))[1]
            problem = None if label else f"class folder {folder!r} is not in classInd.txt"
            videos.append(
                SourceVideo(make_key(stem), stem, split, label, files.get(stem), str(root / rel), problem=problem)
            )
        listing.splits[split] = _mark_duplicates(videos)
    return listing


# --- HMDB51 ----------------------------------------------------------------------------------


def read_hmdb51(root: Path, splits: list[str], fold: int = 1) -> Listing:
    split_files = sorted(root.rglob(f"*_test_split{fold}.txt"))
    if not split_files:
        raise DatasetError(f"no *_test_split{fold}.txt files under {root}")
    wanted = {"train": "1", "test": "2"}
    for split in splits:
        if split not in wanted:
            raise DatasetError(f"HMDB51 has splits train and test, not {split!r}")
    suffix = f"_test_split{fold}.txt"
    labels = sorted(p.name[: -len(suffix)] for p in split_files)
    files = index_videos(root)
    listing = Listing("hmdb51", labels, fold=fold)
    for split in splits:
        videos = []
        for split_file in split_files:
            action = split_file.name[: -len(suffix)]
            for line in split_file.read_text().split("\n"):
                parts = line.split()
                if len(parts) == 2 and parts[1] == wanted[split]:
                    stem = Path(parts[0]).stem
                    videos.append(
                        SourceVideo(make_key(stem), stem, split, action, files.get(stem), str(root / action / parts[0]))
                    )
        listing.splits[split] = _mark_duplicates(videos)
    return listing


READERS = {"kinetics": read_kinetics, "ucf101": read_ucf101, "hmdb51": read_hmdb51}
DEFAULT_SPLITS = {"kinetics": ["train", "val"], "ucf101": ["train", "test"], "hmdb51": ["train", "test"]}
