"""``python -m bench.transfer``: does pretraining pay on data the model never saw? The papers'
question (RSPNet Table 1, SpeedNet Table 2) at CPU scale, pretrained against random weights.

1. Synthetic data (``bench.learning.make_data``): a pretraining set of "seen" objects, and a small
   labelled set of "unseen" objects (few videos per class in its train split) whose motion classes
   are the labels. Nothing the models are judged on looked like anything they pretrained on.
2. Per seed: ``tiny_speednet`` pretrains; ``tiny_rspnet`` (RSP + A-VID) pretrains starting from it
   (``model.init``: from random weights its RSP head collapses at this scale, BENCHMARKS.md).
3. Each of SpeedNet, RSPNet and the random network (the named baseline, same architecture, same
   seed) is fine-tuned on the labelled train split (``tiny_finetune``, the same steps for all) and
   tested on the held-out test split with 10 clips per video; and each gets a linear probe (frozen
   pooled features, L-BFGS logistic regression) fitted on the train split, tested on the test split.

Last line: ``finetune_top1=<RSPNet> random_init_top1=<x> linear_top1=<RSPNet> linear_random_top1=<y>``,
video-level top-1 on held-out videos, means over the seeds; then the SpeedNet figures and the spread
(max - min over seeds) of each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from bench.learning import make_data
from index.embed import video_embeddings
from jobs.evaluate.probe import label_splits, linear_probe
from jobs.finetune.run import finetune
from jobs.finetune.setup import classes_of, finetune_config, load_config
from jobs.pretrain import checkpoint
from jobs.pretrain.config import load
from jobs.pretrain.loop import train
from models.pretext import build_pretext
from models.trained import load_trained
from pipeline.device import torch_device

INITS = ("rspnet", "speednet", "random")


def pretrain(work: Path, shards: Path, seed: int, speednet_steps: int, rspnet_steps: int) -> dict[str, Path]:
    """The two pretrained checkpoints of one seed (runs already finished are reused)."""
    sets = [f"data.shards={shards}", f"run.seed={seed}"]
    sn_dir, rsp_dir = work / f"seed{seed}" / "tiny_speednet", work / f"seed{seed}" / "tiny_rspnet"
    sn = checkpoint.path_for(sn_dir, speednet_steps)
    if not sn.exists():
        train(load("tiny_speednet", sets + [f"optim.max_steps={speednet_steps}"]), sn_dir)
    rsp = checkpoint.path_for(rsp_dir, rspnet_steps)
    if not rsp.exists():
        from_speednet = [f"optim.max_steps={rspnet_steps}", "optim.lr=0.005", f"model.init={sn}"]
        train(load("tiny_rspnet", sets + from_speednet), rsp_dir)
    return {"speednet": sn, "rspnet": rsp}


def backbone_of(init: str, checkpoints: dict[str, Path], seed: int):
    """The frozen backbone a probe reads: a pretrained one, or the fine-tuning network's random start."""
    if init != "random":
        return load_trained(checkpoints[init]).backbone
    m = load_config("tiny_finetune").model
    return build_pretext(m.method, m.backbone, m.backbone_options, seed=seed, classes=2, **m.options).backbone


def probe(backbone, data: Path, size: int, device: str) -> float:
    backbone = backbone.to(device).eval()
    splits = []
    for split in ("train", "test"):
        keys, labels, features = video_embeddings(backbone, data / split, T=16, clips=10, size=size, device=device)
        splits.append((features, labels, keys))
    classes, train_split, test_split = label_splits(*splits)
    return linear_probe(train_split, test_split, len(classes))["test"]["top1"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.transfer", description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("bench-out/transfer"), help="data and runs (default %(default)s)")
    p.add_argument("--pretrain-videos", type=int, default=48, help="pretraining videos per class (default 48)")
    p.add_argument("--labelled-videos", type=int, default=8, help="labelled train videos per class (default 8)")
    p.add_argument("--test-videos", type=int, default=8, help="held-out test videos per class (default 8)")
    p.add_argument("--speednet-steps", type=int, default=400)
    p.add_argument("--rspnet-steps", type=int, default=200)
    p.add_argument("--finetune-steps", type=int, default=150)
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pretrain_shards, labelled = make_data(
        args.work, args.pretrain_videos, args.labelled_videos, 0, heldout_test_per_class=args.test_videos
    )
    device = torch_device()
    classes = classes_of(labelled)
    size = load_config("tiny_finetune").data.augment["out"]
    figures: dict[str, dict[str, list[float]]] = {"finetune": {}, "linear": {}}
    for seed in seeds:
        checkpoints = pretrain(args.work, pretrain_shards, seed, args.speednet_steps, args.rspnet_steps)
        for init in INITS:
            run_dir = args.work / f"seed{seed}" / f"finetune-{init}"
            config = finetune_config(
                "tiny_finetune",
                [f"optim.max_steps={args.finetune_steps}", f"run.seed={seed}"],
                checkpoints.get(init),
                labelled,
                len(classes),
            )
            done = run_dir / "results.json"
            if done.exists():
                result = json.loads(done.read_text())
            else:
                _, result = finetune(config, run_dir, labelled / "test", describe={"init": init}, progress=False)
            figures["finetune"].setdefault(init, []).append(result["video"]["top1"])
            torch.manual_seed(seed)
            figures["linear"].setdefault(init, []).append(
                probe(backbone_of(init, checkpoints, seed), labelled, size, device)
            )
        print(f"seed {seed}: " + json.dumps(figures), flush=True)

    def mean(values):
        return sum(values) / len(values)

    elapsed = time.perf_counter() - start
    print(
        f"\ntransfer benchmark ({elapsed:.0f} s, {device}, seeds {seeds}): {len(classes)} classes, "
        f"{args.labelled_videos} labelled videos per class, {args.test_videos} held-out test videos per class"
    )
    print(f"  {'video top-1':24}" + "".join(f"{init:>22}" for init in INITS))
    for kind, label in (("finetune", f"fine-tune {args.finetune_steps} steps"), ("linear", "linear probe")):
        cells = [f"{mean(v):.3f} ({' '.join(f'{x:.3f}' for x in v)})" for v in (figures[kind][init] for init in INITS)]
        print(f"  {label:24}" + "".join(f"{c:>22}" for c in cells))
    for kind in ("finetune", "linear"):
        ratio = {init: mean(figures[kind][init]) / max(mean(figures[kind]["random"]), 1e-9) for init in INITS[:2]}
        print(f"  {kind}: pretrained / random = " + ", ".join(f"{k} {v:.2f}x" for k, v in ratio.items()))
    spread = {f"{kind}_{init}_spread": max(v) - min(v) for kind in figures for init, v in figures[kind].items()}
    f, lin = figures["finetune"], figures["linear"]
    print(
        f"finetune_top1={mean(f['rspnet']):.3f} random_init_top1={mean(f['random']):.3f} "
        f"linear_top1={mean(lin['rspnet']):.3f} linear_random_top1={mean(lin['random']):.3f} "
        f"speednet_finetune_top1={mean(f['speednet']):.3f} speednet_linear_top1={mean(lin['speednet']):.3f} "
        + " ".join(f"{k}={v:.3f}" for k, v in spread.items())
        + f" seconds={elapsed:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
