"""``python -m bench.train``: is training held back by the data or by the model?

For each config, in one run on the same shards:
- loader: ``VideoLoader`` alone, clips/s (the data side);
- model: forward + backward + SGD step on one batch held in memory, clips/s (the compute side);
- train: the real trainer, both together, clips/s.
``train / min(loader, model)`` near 1 means the slower side sets the pace; the slower of loader and
model is the bottleneck. On a GPU it also times bf16 steps of each paper config at its batch size:
pretraining (``jobs/pretrain/configs``) and fine-tuning (``jobs/finetune/configs``).

Last line: ``train_clips_per_s=<x> loader_clips_per_s=<y> model_clips_per_s=<z> bottleneck=<data|model>``
for the first config.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
from pathlib import Path

import torch

from bench.learning import make_data
from jobs.finetune.setup import CONFIG_DIR as FINETUNE_CONFIGS
from jobs.finetune.setup import load_config
from jobs.pretrain.config import load
from jobs.pretrain.logbook import read_metrics
from jobs.pretrain.loop import build_loader, train
from models.pretext import build_pretext
from pipeline.batches import Batch
from pipeline.device import torch_device

PAPER_CONFIGS = ("speednet_s3dg", "rspnet_c3d", "rspnet_r3d18", "rspnet_r2plus1d10", "rspnet_s3dg")


def loader_rate(config, batches: int) -> tuple[float, tuple]:
    """Clips/s of the config's loader alone over ``batches`` batches after the first (which pays for
    building the pipeline), and that first batch, for the model-alone measurement."""
    stream = _forever(build_loader(config))
    first = next(stream)
    start = time.perf_counter()
    clips = sum(len(batch) for batch in itertools.islice(stream, batches))
    return clips / (time.perf_counter() - start), first


def _forever(loader):
    while True:
        yield from loader


def model_rate(config, batch, steps: int, device: str = "cpu", dtype=None) -> float:
    torch.manual_seed(0)
    m = config.model
    model = build_pretext(m.method, m.backbone, m.backbone_options, **m.options).to(device).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    video = batch.video.to(device)
    for i in range(steps + 1):
        if i == 1:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype is not None):
            loss = model(video, batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * len(batch) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="tiny_speednet,tiny_rspnet", help="comma-separated (default %(default)s)")
    p.add_argument("--shards", help="training shards (default: the learning benchmark's synthetic set)")
    p.add_argument("--work", type=Path, default=Path("bench-out/train"))
    p.add_argument("--steps", type=int, default=30, help="steps timed per measurement (default 30)")
    args = p.parse_args(argv)
    shards = args.shards or str(make_data(Path("bench-out/learning"), 64, 8, 0)[0])
    rows = []
    for name in args.configs.split(","):
        config = load(
            name,
            [
                f"data.shards={shards}",
                f"optim.max_steps={args.steps + 5}",
                "run.log_every=5",
                f"run.checkpoint_every={10**9}",
            ],
        )
        loader_cps, batch = loader_rate(config, args.steps)
        model_cps = model_rate(config, batch, args.steps)
        run_dir = args.work / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        train(config, run_dir, progress=False)
        train_cps = read_metrics(run_dir / "metrics.jsonl")[-1]["clips_per_s"]  # last window: warm
        rows.append((name, train_cps, loader_cps, model_cps))
    print(f"\n{'config':16} {'train':>8} {'loader':>8} {'model':>8}  train/min  bottleneck   (clips/s, CPU)")
    for name, train_cps, loader_cps, model_cps in rows:
        print(
            f"{name:16} {train_cps:8.1f} {loader_cps:8.1f} {model_cps:8.1f}  "
            f"{train_cps / min(loader_cps, model_cps):9.2f}  {'data' if loader_cps < model_cps else 'model'}"
        )
    if torch_device() == "cuda":
        print("\none bf16 step per paper config on the GPU (a batch of random clips at the paper's sizes):")
        for name in PAPER_CONFIGS:
            config = load(name, ["data.shards=unused"])
            batch = _random_batch(config)
            cps = model_rate(config, batch, 5, device="cuda", dtype=torch.bfloat16)
            print(f"  {name:20} batch {len(batch):3d} clips of {tuple(batch.video.shape[1:])}: {cps:8.1f} clips/s")
        print("one bf16 fine-tuning step per paper config (101 classes), step time at its per-GPU batch:")
        for path in sorted(FINETUNE_CONFIGS.glob("*.toml")):
            if path.stem.startswith("tiny"):
                continue
            config = load_config(path.stem, ["model.options.classes=101"])
            batch = _random_batch(config)
            cps = model_rate(config, batch, 5, device="cuda", dtype=torch.bfloat16)
            print(
                f"  {path.stem:26} batch {len(batch):3d} of {tuple(batch.video.shape[1:])}: "
                f"{len(batch) / cps:.3f} s/step"
            )
    name, train_cps, loader_cps, model_cps = rows[0]
    print(
        f"train_clips_per_s={train_cps:.1f} loader_clips_per_s={loader_cps:.1f} model_clips_per_s={model_cps:.1f} "
        f"bottleneck={'data' if loader_cps < model_cps else 'model'}"
    )
    return 0


def _random_batch(config):
    """A batch of the config's shape: SpeedNet pairs, RSPNet triplets or labelled clips, random."""
    videos, T = config.data.batch_size, config.data.plan_options.get("T", 16)
    aug = config.data.augment
    method = config.model.method
    side = aug.get("speednet_sizes", [224, 224])[1] if method == "speednet" else aug.get("out", 112)
    roles = {"speednet": ["normal", "sped_up"], "classifier": ["train"]}.get(method, ["anchor", "positive", "negative"])
    video = torch.randn(len(roles) * videos, 3, T, side, side)
    batch = Batch.of_roles(video, roles * videos, speeds=[1.0, 1.0, 2.0][: len(roles)] * videos)
    if method == "classifier":
        batch = dataclasses.replace(batch, label_index=torch.randint(config.model.options["classes"], (videos,)))
    return batch


if __name__ == "__main__":
    sys.exit(main())
