"""Files that appear whole or not at all: every writer of the project goes through here.

A file is written under a temporary name in its own folder, ``.<name>.<host>-<pid>.partial``, then
renamed over its final name. A reader (a glob of ``*.tar``, a resumed job, a person) therefore never
sees half a file, a crash or Ctrl-C leaves the previous version whole, and two processes writing
the same file never mix their bytes. The host and pid in the name let a later run delete what a
killed one left (``remove_stale_partials``).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


def partial_path(path: Path) -> Path:
    """This process's temporary name for ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{socket.gethostname()}-{os.getpid()}{PARTIAL_SUFFIX}")


@contextmanager
def atomic_path(path: Path, *, durable: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to (a file or a folder); renamed over ``path``
    when the block ends without error, deleted otherwise. ``durable``: flushed to disk first, so a
    power cut cannot leave a renamed but empty file (checkpoints, shards).

    A writer that picks its format from the file's suffix must be told the format: the temporary
    name ends in ``.partial``."""
    path = Path(path)
    tmp = partial_path(path)
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
        if durable:
            _fsync(path.parent)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str, *, durable: bool = False) -> None:
    """``text`` as UTF-8, line endings as given (no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def save_figure(fig, path: Path, dpi: int = 120) -> None:
    """A matplotlib figure as PNG at ``path``, atomically; closes the figure."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def remove_stale_partials(path: Path) -> None:
    """Delete temporary files of ``path`` left by dead processes of this host (killed runs)."""
    path = Path(path)
    host = socket.gethostname()
    prefix = f".{path.name}.{host}-"
    for partial in path.parent.glob(f"{prefix}*{PARTIAL_SUFFIX}"):
        pid = partial.name[len(prefix) : -len(PARTIAL_SUFFIX)]
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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
