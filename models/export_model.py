"""``python -m models.export_model CKPT OUT``: a training checkpoint as an encoder folder.

OUT gets ``config.json`` and ``model.safetensors`` (``models.pretrained``): the backbone, and for
SpeedNet its speed head, loadable with ``Encoder.from_pretrained(OUT)`` or given to any command's
``--checkpoint``. The folder is written under a temporary name and renamed into place, so OUT is
whole or absent, never half-written.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from models.pretrained import encoder_of
from models.trained import CheckpointError, fingerprint, load_trained
from pipeline import logs
from pipeline.atomic import atomic_path
from pipeline.help_format import HelpFormatter

log = logging.getLogger(__name__)


def export_model(checkpoint: Path, out: Path) -> str:
    """Write ``checkpoint``'s encoder to the folder ``out`` atomically; returns its backbone's fingerprint."""
    trained = load_trained(checkpoint)
    if trained.method not in ("speednet", "rspnet"):
        raise CheckpointError(f"{checkpoint} is a {trained.method} model: only SpeedNet and RSPNet encoders export")
    model = trained.config["model"]
    options = dict(model["backbone_options"])
    encoder = encoder_of(trained.pretext, trained.method, model["backbone"], options, trained.step, trained.config)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        encoder.save_pretrained(tmp)
    return fingerprint(encoder.backbone)


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    p = argparse.ArgumentParser(
        prog="python -m models.export_model", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("checkpoint", type=Path, help="a checkpoint written by jobs.pretrain")
    p.add_argument("out", type=Path, help="the encoder folder to write (must not exist)")
    args = p.parse_args(argv)
    if args.out.exists():
        log.error("%s already exists: choose another folder or remove it", args.out)
        return 2
    try:
        found = export_model(args.checkpoint, args.out)
    except CheckpointError as e:
        log.error("%s", e)
        return 2
    print(f"{args.out}: encoder of {args.checkpoint} (weights {found})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
