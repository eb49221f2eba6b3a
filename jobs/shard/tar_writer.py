"""Write one WebDataset tar and its DALI index, atomically.

Members go to ``<name>.tar.<host>-<pid>.partial``; ``commit`` writes the index, fsyncs both and
renames them, index first. A reader globbing ``*.tar`` therefore sees a tar only when it is complete
and indexed. Partial names are unique per writer, so two processes that write the same shard (a
rerun while an old array task still runs) never mix their bytes: each renames a whole tar, and both
are the same. Tars are reproducible: members carry fixed owners, modes and times.
"""

from __future__ import annotations

import io
import os
import socket
import tarfile
from pathlib import Path

from pipeline.shard_format import dali_index_text, index_path

PARTIAL_SUFFIX = ".partial"


def partial_path(path: Path) -> Path:
    """This process's temporary name for ``path``."""
    return path.with_name(f"{path.name}.{socket.gethostname()}-{os.getpid()}{PARTIAL_SUFFIX}")


def remove_stale_partials(path: Path) -> None:
    """Delete partial files of ``path`` left by dead processes of this host (killed runs)."""
    host = socket.gethostname()
    for partial in path.parent.glob(f"{path.name}.{host}-*{PARTIAL_SUFFIX}"):
        pid = partial.name[len(f"{path.name}.{host}-") : -len(PARTIAL_SUFFIX)]
        if pid.isdigit() and not _alive(int(pid)):
            partial.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name, so ``path`` is never half-written."""
    tmp = partial_path(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
