"""The split manifest (``OUT/<split>/manifest.json``) and the per-shard records it is built from.

Manifest schema::

    {"dataset": str, "split": str,
     "ok": int,                                         # samples in the tars
     "failed": [{"key", "path", "reason"}],             # on disk but not shardable, and why
     "missing": [{"key", "path"}],                      # annotated but not on disk
     "labels": [str],                                   # label_index -> label, shared by all splits
     "shards": [{"name", "samples", "bytes"}],          # tars in order, empty ones never written
     "settings": {...}, "versions": {...}, "created": ISO-8601 time}

Every annotation row is counted in exactly one of ok, failed and missing. Each finished shard leaves
a record in ``OUT/<split>/.shard-job/done/``; the manifest is their sum, so it can be rebuilt from
them whichever process or array task wrote each shard. The dataset card, ``OUT/README.md``, is made
from the manifests of all splits (``jobs.shard.card``).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.atomic import atomic_write_bytes


@dataclass
class ShardRecord:
    index: int
    name: str | None  # None when every video of the shard failed: no tar is written
    samples: int
    bytes: int
    failed: list[dict] = field(default_factory=list)

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, json.dumps(asdict(self)).encode())

    @classmethod
    def load(cls, path: Path) -> ShardRecord:
        return cls(**json.loads(path.read_text()))


def versions() -> dict:
    import av
    import webdataset

    return {
        "python": platform.python_version(),
        "av": av.__version__,
        "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "webdataset": getattr(webdataset, "__version__", "unknown"),
    }


def build_manifest(
    dataset: str,
    split: str,
    labels: list[str],
    records: list[ShardRecord],
    failed_before: list[dict],
    missing: list[dict],
    settings: dict,
) -> dict:
    records = sorted(records, key=lambda r: r.index)
    return {
        "dataset": dataset,
        "split": split,
        "ok": sum(r.samples for r in records),
        "failed": failed_before + [f for r in records for f in r.failed],
        "missing": missing,
        "labels": labels,
        "shards": [{"name": r.name, "samples": r.samples, "bytes": r.bytes} for r in records if r.name],
        "settings": settings,
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_manifest(path: Path, manifest: dict) -> None:
    atomic_write_bytes(path, (json.dumps(manifest, indent=1) + "\n").encode())
