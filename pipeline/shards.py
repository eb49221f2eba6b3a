"""Find shards and read samples from them by their DALI index, without unpacking tars.

``resolve_shards`` accepts what users point at: a split folder, a glob of tars, or a
``manifest.json``. ``ShardIndex`` lists every sample of those tars (from the ``.idx`` files the
shard job writes beside them) and reads one sample's video bytes and metadata with two positioned
reads, so the loader can pick any sample in any order.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.shard_format import SHARD_GLOB, SampleMeta, index_path


def resolve_shards(spec: str | os.PathLike) -> list[Path]:
    """Tar paths for a folder, a glob, or a manifest.json; sorted, and never empty."""
    path = Path(spec)
    if path.is_dir():
        tars = sorted(path.glob(SHARD_GLOB))
    elif path.name.endswith(".json") and path.is_file():
        manifest = json.loads(path.read_text())
        tars = [path.parent / s["name"] for s in manifest["shards"]]
    else:
        tars = sorted(Path(p) for p in glob.glob(str(spec)) if p.endswith(".tar"))  # not their .idx
    if not tars:
        raise FileNotFoundError(
            f"no shards found at {spec} (give a split folder, a glob of .tar files or a manifest.json)"
        )
    for tar in tars:
        if not index_path(tar).is_file():
            raise FileNotFoundError(f"{tar} has no index {index_path(tar).name}; was it written by jobs.shard?")
    return tars


@dataclass(frozen=True)
class SampleRef:
    """Where one sample's members lie in its tar."""

    tar: int  # position in ShardIndex.tars
    key: str
    video: tuple[int, int]  # (offset, size)
    meta: tuple[int, int]
    container: str


class ShardIndex:
    """Every sample of a list of tars, in tar order, readable by position."""

    def __init__(self, tars: list[Path]):
        self.tars = [Path(t) for t in tars]
        self.samples: list[SampleRef] = []
        for t, tar in enumerate(self.tars):
            lines = index_path(tar).read_text().splitlines()
            for line in lines[1:]:
                fields = line.split()
                members = {fields[i]: (int(fields[i + 1]), int(fields[i + 2])) for i in range(0, len(fields), 4)}
                video_ext = next(e for e in members if e != "json")
                self.samples.append(
                    SampleRef(t, fields[3].split(".", 1)[0], members[video_ext], members["json"], video_ext)
                )
        self._files: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def _read(self, tar: int, span: tuple[int, int]) -> bytes:
        if tar not in self._files:  # descriptors stay open: one pread per member afterwards
            self._files[tar] = os.open(self.tars[tar], os.O_RDONLY)
        return os.pread(self._files[tar], span[1], span[0])

    def read_meta(self, i: int) -> SampleMeta:
        ref = self.samples[i]
        return SampleMeta.from_json_dict(json.loads(self._read(ref.tar, ref.meta)))

    def read(self, i: int) -> tuple[SampleMeta, bytes]:
        ref = self.samples[i]
        meta = SampleMeta.from_json_dict(json.loads(self._read(ref.tar, ref.meta)))
        return meta, self._read(ref.tar, ref.video)

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()

    def __del__(self):  # many short-lived indexes (one per loader, per query) must not leak descriptors
        try:
            self.close()
        except (OSError, AttributeError, TypeError):  # at interpreter exit, or a half-built index
            pass

    def __getstate__(self):  # picklable for worker processes: descriptors are reopened there
        return {**self.__dict__, "_files": {}}
