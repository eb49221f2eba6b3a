"""Config overrides that make the tiny configs tinier still, for tests (seconds, not minutes), and
the check that a paper config names the source of each value."""

from __future__ import annotations

import re
from pathlib import Path

SOURCE_TAG = re.compile(r"\[(paper|released|speednet|rspnet|ours)\b")


def unsourced_values(path: Path) -> list[str]:
    """The lines of a paper config that set a value without naming its source: a tag such as
    [paper] or [released] in the line's comment or the comment line just above it."""
    unsourced, previous = [], ""
    for line in path.read_text().splitlines():
        assignment = re.match(r"^(\w+) = ", line)
        if assignment and assignment.group(1) not in ("shards", "method"):
            comment = line.partition("#")[2] or previous
            if not SOURCE_TAG.search(comment):
                unsourced.append(line)
        previous = line if line.startswith("#") else ""
    return unsourced


def tiny(name: str, shards: Path, **extra) -> list[str]:
    """Overrides that shrink a tiny config further, to test sizes (4-channel R3D-10, 8 frames, 32 px)."""
    sets = {
        "data.shards": f'"{shards}"',
        "data.batch_size": 4,
        "data.num_threads": 1,
        "run.log_every": 1,
        "optim.warmup_steps": 0,
    }
    if name == "tiny_rspnet":
        sets["model.backbone_options"] = "{ width = 4 }"
        sets |= {
            "data.plan_options": "{ T = 8, speeds = [1, 2] }",
            "data.augment": '{ recipe = "rspnet", base = 40, out = 32 }',
            "model.options": "{ queue_size = 32, dim = 16, momentum = 0.9, bn_groups = 2 }",
        }
    else:
        sets |= {
            "data.plan_options": "{ T = 16 }",
            "data.augment": '{ recipe = "speednet", speednet_sizes = [64, 64] }',
            "model.backbone_options": "{ width = 8, temporal_stride = false }",
        }
    sets |= extra
    return [f"{k}={v}" for k, v in sets.items()]


def sets_args(sets: list[str]) -> list[str]:
    """The command-line form of ``tiny``'s overrides: --set each."""
    return [a for s in sets for a in ("--set", s)]


def trained(config: str, shards: Path, run: Path, steps: int) -> Path:
    """Train ``config`` made tiny for ``steps`` steps on ``shards`` into ``run``; its last checkpoint."""
    from jobs.pretrain import checkpoint
    from jobs.pretrain.config import load
    from jobs.pretrain.loop import train

    train(load(config, tiny(config, shards, **{"optim.max_steps": steps})), run, progress=False)
    return checkpoint.path_for(run, steps)
