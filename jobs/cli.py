"""``speedrep``: one console entry point over the commands, beside ``just`` and ``python -m``.

    speedrep shard kinetics --root /data/kinetics --out /data/shards
    speedrep pretrain rspnet_r3d18 --set data.shards=/data/shards/train
    speedrep query clip.mp4 --k 10

``speedrep COMMAND ARGS`` is exactly ``python -m MODULE ARGS``: each command's own ``main`` parses its
arguments, so ``speedrep COMMAND --help`` is that command's help. Modules are imported only when
their command runs, so ``speedrep --help`` answers at once.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module whose ``main(argv)`` runs it, what it does)
COMMANDS = {
    "synthetic": ("pipeline.synthetic.__main__", "write a synthetic Kinetics-style dataset (CSVs and videos)"),
    "shard": ("jobs.shard.__main__", "shard a dataset on disk into WebDataset tars"),
    "preview": ("pipeline.preview", "contact sheets of the clips a plan and its augmentation give"),
    "pretrain": ("jobs.pretrain.__main__", "pretrain SpeedNet or RSPNet (here, or on SLURM with --launcher)"),
    "check-config": ("jobs.pretrain.check_config", "whether a config's training step fits a GPU at its largest input"),
    "finetune": ("jobs.finetune.__main__", "fine-tune a checkpoint for action recognition, then test it"),
    "evaluate": ("jobs.evaluate.__main__", "held-out tests of a checkpoint (speed, RSP, retrieval)"),
    "linear-probe": ("jobs.evaluate.linear_probe", "a linear classifier on a checkpoint's frozen features"),
    "export": ("index.export", "a checkpoint's clip embeddings into a zarr store"),
    "index": ("index.build", "a FAISS index over an embedding store"),
    "query": ("index.query", "the nearest clips to a query video, in an index or within a long video"),
    "serve": ("index.serve", "the index as an HTTP query service (POST /search, /search-within)"),
    "export-model": ("models.export_model", "a training checkpoint as an encoder folder (safetensors + JSON)"),
    "speediness": ("jobs.speed.speediness", "SpeedNet's speediness curve of a video"),
    "speedup": ("jobs.speed.speedup", "SpeedNet's adaptive speedup of a video"),
    "cam": ("jobs.speed.cam", "SpeedNet's class activation maps of a video"),
    "wheelhouse": ("jobs.wheelhouse.__main__", "wheels for an air-gapped install: build | install"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "usage: speedrep COMMAND [ARGS...]   (speedrep COMMAND --help for its options)\n\ncommands:\n" + "\n".join(
        lines
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"speedrep: unknown command {command!r}; one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    sys.argv[0] = f"speedrep {command}"  # the command's argparse names itself from argv[0]
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
