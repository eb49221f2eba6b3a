"""``python -m bench.learning``: is pretraining real? Both tiny configs, judged on objects never seen.

1. Synthetic data: a training set whose objects come from the "seen" appearance family, and a
   held-out set (its own train and test splits) drawn entirely from the "unseen" family, so nothing
   the model is judged on looked like anything it trained on. Classes differ only in how things move.
2. ``tiny_speednet`` trains on the training set; SpeedNet's test (normal vs uniformly 2x, centre
   crop) runs on every held-out video.
3. ``tiny_rspnet`` (RSP + A-VID) trains on the training set twice: from random weights (the config
   as it is, as the paper trains it), and starting from step 2's SpeedNet (``model.init``, the same
   backbone, lr 0.005). The relative-speed test (``jobs.evaluate.rsp_test``: is c_j nearer c_i than
   c_k is, one triplet per held-out video) is scored for both and for the network at its random
   initialisation. Retrieval (VCOP protocol: held-out test videos query held-out train videos) is
   scored for both, for the SpeedNet backbone they start from, and for the random initialisation,
   the named baseline, all in the same run.

Last line: ``speed_accuracy=<x> retrieval_top1=<y> random_init_top1=<z>`` with y the RSPNet started
from SpeedNet, then ``cold_top1`` (RSPNet from random weights), ``speednet_top1``, and the RSP
test's ``cold_rsp_acc`` (from random weights), ``warm_rsp_acc`` (from SpeedNet) and
``random_init_rsp_acc`` (the baseline; chance 0.5).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from jobs.evaluate.retrieval import retrieval
from jobs.evaluate.rsp_test import rsp_accuracy
from jobs.evaluate.speed_test import speed_accuracy
from jobs.pretrain import checkpoint
from jobs.pretrain.config import load
from jobs.pretrain.loop import train
from jobs.shard.__main__ import main as shard_main
from models.pretext import build_pretext
from models.trained import load_trained
from pipeline.device import torch_device
from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset


def make_data(
    work: Path, train_per_class: int, heldout_per_class: int, seed: int, heldout_test_per_class: int | None = None
) -> tuple[Path, Path]:
    """Shards of the training set and of the held-out set (made once, reused by later runs); the
    held-out test split has ``heldout_test_per_class`` videos per class (default half the train's)."""
    sets = {
        "train": SyntheticConfig(
            videos_per_class={"train": train_per_class, "val": 0, "test": 0}, appearance="seen", seed=seed
        ),
        "heldout": SyntheticConfig(
            videos_per_class={
                "train": heldout_per_class,
                "val": 0,
                "test": heldout_test_per_class or max(1, heldout_per_class // 2),
            },
            appearance="unseen",
            seed=seed + 1000,
        ),
    }
    for name, config in sets.items():
        shards = work / f"{name}-shards"
        if (shards / "train" / "manifest.json").exists():
            continue
        make_kinetics_dataset(work / name, config, progress=True)
        splits = "train" if name == "train" else "train,test"
        if (
            shard_main(
                [
                    "kinetics",
                    "--root",
                    str(work / name),
                    "--out",
                    str(shards),
                    "--splits",
                    splits,
                    "--overwrite",
                    "--no-progress",
                ]
            )
            != 0
        ):
            raise RuntimeError(f"sharding the {name} set failed")
    return work / "train-shards" / "train", work / "heldout-shards"


SPLITS = ("train", "test")  # the held-out set's two splits, both scored


def _over_splits(results: list[dict], measure: str, count: str) -> dict:
    """One accuracy over several evaluations: their ``measure`` weighted by their ``count``, and the
    total ``count``."""
    total = sum(r[count] for r in results)
    return {measure: sum(r[measure] * r[count] for r in results) / total, count: total}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.learning", description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("bench-out/learning"), help="data and runs (default %(default)s)")
    p.add_argument("--train-videos", type=int, default=64, help="training videos per class (default 64)")
    p.add_argument("--heldout-videos", type=int, default=8, help="held-out gallery videos per class (default 8)")
    p.add_argument("--speednet-steps", type=int, default=800)
    p.add_argument("--rspnet-steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    train_shards, heldout = make_data(args.work, args.train_videos, args.heldout_videos, args.seed)
    device = torch_device()

    sets = [f"data.shards={train_shards}", f"run.seed={args.seed}"]
    sn_dir, rsp_dir = args.work / "tiny_speednet", args.work / "tiny_rspnet"
    sn_config = load("tiny_speednet", sets + [f"optim.max_steps={args.speednet_steps}"])
    train(sn_config, sn_dir)
    speednet = load_trained(checkpoint.path_for(sn_dir, args.speednet_steps)).pretext
    size = 64  # inside the training sizes, as SpeedNet tests at 224 inside its [64, 336]
    speed = _over_splits(
        [speed_accuracy(speednet.net.to(device), heldout / s, size=size, positions=2, device=device) for s in SPLITS],
        "speed_accuracy",
        "clips",
    )
    accuracy, clips = speed["speed_accuracy"], speed["clips"]

    rsp_config = load("tiny_rspnet", sets + [f"optim.max_steps={args.rspnet_steps}"])
    train(rsp_config, rsp_dir)
    rspnet = load_trained(checkpoint.path_for(rsp_dir, args.rspnet_steps)).pretext
    out = rsp_config.data.augment["out"]
    cold = retrieval(rspnet.backbone.to(device), heldout / "test", heldout / "train", size=out, device=device)
    from_speednet = sets + [
        f"optim.max_steps={args.rspnet_steps}",
        "optim.lr=0.005",
        f"model.init={checkpoint.path_for(sn_dir, args.speednet_steps)}",
    ]
    warm_dir = args.work / "tiny_rspnet_from_speednet"
    train(load("tiny_rspnet", from_speednet), warm_dir)
    warm_model = load_trained(checkpoint.path_for(warm_dir, args.rspnet_steps)).pretext
    trained = retrieval(warm_model.backbone.to(device), heldout / "test", heldout / "train", size=out, device=device)
    speednet_only = retrieval(
        speednet.backbone.to(device), heldout / "test", heldout / "train", size=out, device=device
    )
    torch.manual_seed(rsp_config.run.seed)  # the initial weights the trained model started from
    m = rsp_config.model
    random_init = build_pretext(m.method, m.backbone, m.backbone_options, seed=rsp_config.run.seed, **m.options).eval()
    baseline = retrieval(random_init.backbone.to(device), heldout / "test", heldout / "train", size=out, device=device)
    T = rsp_config.data.plan_options.get("T", 16)

    def rsp_test(model) -> dict:  # over every held-out video
        parts = [rsp_accuracy(model.to(device), heldout / s, T=T, size=out, device=device) for s in SPLITS]
        return _over_splits(parts, "rsp_accuracy", "videos")

    rsp = {"cold": rsp_test(rspnet), "warm": rsp_test(warm_model), "random_init": rsp_test(random_init)}

    print(f"\nlearning benchmark ({time.perf_counter() - start:.0f} s, {device})")
    print(
        f"  tiny_speednet, {args.speednet_steps} steps: normal-vs-2x accuracy on {clips} held-out clips "
        f"of unseen objects = {accuracy:.3f}  (chance 0.5)"
    )
    print(
        f"  tiny_rspnet, {args.rspnet_steps} steps: relative-speed test on {rsp['cold']['videos']} held-out videos "
        f"(c_j nearer c_i than c_k; chance 0.5): from random weights {rsp['cold']['rsp_accuracy']:.3f}, "
        f"from SpeedNet {rsp['warm']['rsp_accuracy']:.3f}, untrained {rsp['random_init']['rsp_accuracy']:.3f}"
    )
    print(f"  retrieval of held-out videos ({trained['queries']} queries), tiny_rspnet {args.rspnet_steps} steps:")
    for name, result in (
        ("RSPNet from SpeedNet", trained),
        ("RSPNet from random", cold),
        ("SpeedNet (its start)", speednet_only),
        ("random init (baseline)", baseline),
    ):
        print(f"    {name:24s}" + "  ".join(f"{k}={v:.3f}" for k, v in result.items() if k.startswith("top")))
    print(
        f"speed_accuracy={accuracy:.3f} retrieval_top1={trained['top1']:.3f} random_init_top1={baseline['top1']:.3f} "
        f"cold_top1={cold['top1']:.3f} speednet_top1={speednet_only['top1']:.3f} "
        f"cold_rsp_acc={rsp['cold']['rsp_accuracy']:.3f} warm_rsp_acc={rsp['warm']['rsp_accuracy']:.3f} "
        f"random_init_rsp_acc={rsp['random_init']['rsp_accuracy']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
