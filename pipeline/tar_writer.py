"""Write one WebDataset tar and its DALI index, atomically.

Members go to the tar's temporary name (``pipeline.atomic.partial_path``); ``commit`` writes the
index, fsyncs both and renames them, index first. A reader globbing ``*.tar`` therefore sees a tar
only when it is complete and indexed. Partial names are unique per writer, so two processes that write the same shard (a
rerun while an old array task still runs) never mix their bytes: each renames a whole tar, and both
are the same. Tars are reproducible: members carry fixed owners, modes and times.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from pipeline.atomic import atomic_write_bytes, partial_path
from pipeline.shard_format import dali_index_text, index_path


class ShardTarWriter:
    """``with ShardTarWriter(path) as w: w.add(key, {"mp4": ..., "json": ...}); w.commit()``.

    Leaving the block without ``commit`` (an exception, Ctrl-C) deletes the partial file.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._partial = partial_path(self.path)
        self._file = open(self._partial, "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.USTAR_FORMAT)
        self._index: list[list[tuple[str, int, int, str]]] = []
        self.bytes_written = 0

    @property
    def samples(self) -> int:
        return len(self._index)

    def add(self, key: str, members: dict[str, bytes]) -> None:
        """Append one sample; ``members`` maps extension to content, written in the given order."""
        entries = []
        for ext, data in members.items():
            name = f"{key}.{ext}"
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o444, 0
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(data))
            # addfile leaves the file position after the member's padded data; its data starts
            # right after the 512-byte header that precedes it.
            data_offset = self._tar.offset - _padded(len(data))
            entries.append((ext, data_offset, len(data), name))
        self._index.append(entries)

    def commit(self) -> None:
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self.bytes_written = self._file.tell()
        self._file.close()
        atomic_write_bytes(index_path(self.path), dali_index_text(self._index).encode())
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> ShardTarWriter:
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None or not self._file.closed:
            self.abort()


def _padded(size: int) -> int:
    return (size + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE
