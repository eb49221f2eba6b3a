"""``python -m jobs.pretrain.check_config CONFIG``: does a config's training step fit a GPU at the
largest input it can draw? Estimated here, on any machine, in seconds (``jobs.pretrain.memory``).

    python -m jobs.pretrain.check_config speednet_s3dg                          # a GPU of 80 GiB
    python -m jobs.pretrain.check_config speednet_s3dg --set data.plan_options.T=64 --gpu-memory-gb 40
    python -m jobs.pretrain.check_config rspnet_s3dg_ucf101 --finetune          # jobs/finetune/configs/

Prints the largest input, the peak of one training step and what holds it, then ``fits: ...`` or
``does not fit: ...`` naming the setting to change. Exit status 0: it fits; 1: it does not; 2: bad
input (no such config, a bad --set).
"""

from __future__ import annotations

import argparse
import logging
import sys

from jobs.pretrain import memory
from jobs.pretrain.config import add_set_option, load
from pipeline import logs
from pipeline.help_format import HelpFormatter

log = logging.getLogger(__name__)


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be more than zero, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m jobs.pretrain.check_config", description=__doc__, formatter_class=HelpFormatter
    )
    p.add_argument("config", help="a config file, or a shipped config's name (see --finetune)")
    add_set_option(p, "data.batch_size=4")
    p.add_argument(
        "--variant",
        metavar="NAME",
        help="a named set of overrides the config offers, applied before --set (default: none)",
    )
    p.add_argument(
        "--gpu-memory-gb",
        type=positive_float,
        default=80.0,
        metavar="GIB",
        help=f"the GPU's memory in GiB, of which {memory.MARGIN:.0%}% is kept free for what the estimate cannot see",
    )
    p.add_argument(
        "--finetune",
        action="store_true",
        help="CONFIG is a fine-tuning config (jobs/finetune/configs/), not a pretraining one (jobs/pretrain/configs/)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    args = parse_args(argv)
    try:
        if args.finetune:
            from jobs.finetune.setup import load_config

            config = load_config(args.config, args.overrides, variant=args.variant)
        else:
            config = load(args.config, args.overrides, variant=args.variant)
        ok, estimate, advice = memory.fits(config, args.gpu_memory_gb)
    except ValueError as error:
        log.error("%s", error)
        return 2
    print(report(args.config, estimate, ok, advice, args.gpu_memory_gb))
    return 0 if ok else 1


def report(name: str, estimate: memory.Estimate, ok: bool, advice: str, gpu_memory_gb: float) -> str:
    """The largest input, the peak and its parts, and the verdict as the last line."""
    width = max(map(len, estimate.parts))
    lines = [
        f"{name}: one training step on a GPU, {estimate.precision}"
        + (" autocast" if estimate.precision != "fp32" else ""),
        f"largest input: {estimate.input.describe()}",
        f"peak: {memory.gib(estimate.total)}, of which",
        *(
            f"  {part:<{width}}  {memory.gib(size):>10}"
            for part, size in sorted(estimate.parts.items(), key=lambda item: -item[1])
        ),
    ]
    usable = memory.gib(memory.usable_bytes(gpu_memory_gb))
    lines.append(f"fits: {usable} usable of {gpu_memory_gb:g} GiB" if ok else f"does not fit: {advice}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
