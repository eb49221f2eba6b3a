"""The shard job's output read back independently of its code (the tars and the manifest), and the
CSV edits that give a synthetic Kinetics tree the quirks of real ones."""

from __future__ import annotations

import csv
import json
import tarfile
from pathlib import Path

from pipeline.shard_format import SampleMeta


def add_rows(csv_path: Path, rows: list[dict]) -> None:
    with open(csv_path, newline="") as f:
        fields = csv.DictReader(f).fieldnames
    with open(csv_path, "a", newline="") as f:
        csv.DictWriter(f, fields).writerows([{k: r.get(k, "") for k in fields} for r in rows])


def rewrite_csv(csv_path: Path, drop: str) -> None:
    """Drop a column: K700 CSVs have no is_cc, K400 test CSVs no label."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    fields = [k for k in rows[0] if k != drop]
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def count_rows(path: Path) -> int:
    with open(path, newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def read_split(split_dir: Path) -> tuple[dict, dict[str, tuple[SampleMeta, bytes]]]:
    """The manifest and every sample of a split, read back from the tars."""
    manifest = json.loads((split_dir / "manifest.json").read_text())
    samples: dict[str, tuple[SampleMeta, bytes]] = {}
    for shard in manifest["shards"]:
        with tarfile.open(split_dir / shard["name"]) as tar:
            members = tar.getmembers()
            names = [m.name for m in members]
            assert len(names) == 2 * shard["samples"]
            for video_member, meta_member in zip(members[0::2], members[1::2]):
                key, ext = video_member.name.split(".", 1)
                assert meta_member.name == f"{key}.json" and key not in samples  # no duplicates
                meta = SampleMeta.from_json_dict(json.loads(tar.extractfile(meta_member).read()))
                assert ext == meta.container
                samples[key] = (meta, tar.extractfile(video_member).read())
    return manifest, samples
