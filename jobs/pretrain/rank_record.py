"""A debug record per process, opt-in, for tests of multi-process training.

With ``PRETRAIN_RANK_RECORD=1`` in the environment, every process appends to
``RUN/ranks/rank-<r>.jsonl`` one JSON line per micro-batch with what it read and drew (sample keys,
frame indices, clip shape), and a digest of its weights at the start and after every optimiser
step: enough to check that ranks split the data, draw their own clips and crops, and stay in sync.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch


class RankRecord:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")

    @classmethod
    def open(cls, run_dir: Path, accelerator) -> RankRecord | None:
        """This process's record, or None when the environment does not ask for one."""
        if os.environ.get("PRETRAIN_RANK_RECORD") != "1":
            return None
        # The process group's rank, not Accelerate's: an Accelerator that missed the group says 0 everywhere.
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else accelerator.process_index
        return cls(Path(run_dir) / "ranks" / f"rank-{rank}.jsonl")

    def note(self, **fields) -> None:
        self._file.write(json.dumps(fields) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes: equal on two ranks exactly when their weights are."""
    digest = hashlib.sha256()
    for name, p in model.named_parameters():
        digest.update(name.encode())
        digest.update(p.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
