"""``python -m jobs.bench.train``: is training held back by the data or by the model?

For each config, in one run on the same shards:
- loader: ``VideoLoader`` alone, clips/s (the data side);
- model: forward + backward + SGD step on one batch held in memory, clips/s (the compute side);
- train: the real trainer, both together, clips/s.
``train / min(loader, model)`` near 1 means the slower side sets the pace; the slower of loader and
model is the bottleneck. On a GPU it also times one bf16 step of each paper config at its batch size.

Last line: ``train_clips_per_s=<x> loader_clips_per_s=<y> model_clips_per_s=<z> bottleneck=<data|model>``
for the first config.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch

from jobs.bench.learning import make_data
from jobs.config import load
from jobs.logbook import read_metrics
from jobs.pretrain import build_loader, train
from models.pretext import build_pretext

PAPER_CONFIGS = ("speednet_s3dg", "rspnet_c3d", "rspnet_r3d18", "rspnet_r2plus1d10", "rspnet_s3dg")


def loader_rate(config, batches: int) -> tuple[float, tuple]:
    """Clips/s of the config's loader alone over ``batches`` batches after the first (which pays for
    building the pipeline), and that first batch, for the model-alone measurement."""
    stream = _forever(build_loader(config))
    first = next(stream)
    start = time.perf_counter()
    clips = sum(len(batch["role"]) for _, batch in itertools.islice(stream, batches))
    return clips / (time.perf_counter() - start), first


def _forever(loader):
    while True:
        yield from loader


def model_rate(config, video, batch, steps: int, device: str = "cpu", dtype=None) -> float:
    torch.manual_seed(0)
    m = config.model
    model = build_pretext(m.method, m.backbone, m.backbone_options, **m.options).to(device).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    video = video.to(device)
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
    return steps * len(batch["role"]) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.bench.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="tiny_speednet,tiny_rspnet", help="comma-separated (default %(default)s)")
    p.add_argument("--shards", help="training shards (default: the learning benchmark's synthetic set)")
    p.add_argument("--work", type=Path, default=Path("bench-out/train"))
    p.add_argument("--steps", type=int, default=30, help="steps timed per measurement (default 30)")
    args = p.parse_args(argv)
    shards = args.shards or str(make_data(Path("bench-out/learning"), 64, 8, 0)[0])
    rows = []
    for name in args.configs.split(","):
        config = load(name, [f"data.shards={shards}", f"optim.max_steps={args.steps + 5}", "run.log_every=5",
                             f"run.checkpoint_every={10 ** 9}"])
        loader_cps, (video, batch) = loader_rate(config, args.steps)
        model_cps = model_rate(config, video, batch, args.steps)
        run_dir = args.work / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        train(config, run_dir, progress=False)
        train_cps = read_metrics(run_dir / "metrics.jsonl")[-1]["clips_per_s"]  # last window: warm
        rows.append((name, train_cps, loader_cps, model_cps))
    print(f"\n{'config':16} {'train':>8} {'loader':>8} {'model':>8}  train/min  bottleneck   (clips/s, CPU)")
    for name, t, l, m in rows:
        print(f"{name:16} {t:8.1f} {l:8.1f} {m:8.1f}  {t / min(l, m):9.2f}  {'data' if l < m else 'model'}")
    if torch.cuda.is_available():
        print("\none bf16 step per paper config on the GPU (a batch of random clips at the paper's sizes):")
        for name in PAPER_CONFIGS:
            config = load(name, ["data.shards=unused"])
            video, batch = _random_batch(config)
            cps = model_rate(config, video, batch, 5, device="cuda", dtype=torch.bfloat16)
            print(f"  {name:20} batch {len(batch['role']):3d} clips of {tuple(video.shape[1:])}: {cps:8.1f} clips/s")
    name, t, l, m = rows[0]
    print(f"train_clips_per_s={t:.1f} loader_clips_per_s={l:.1f} model_clips_per_s={m:.1f} "
          f"bottleneck={'data' if l < m else 'model'}")
    return 0


def _random_batch(config):
    """A batch of the config's shape: SpeedNet pairs or RSPNet triplets of random clips."""
    videos, T = config.data.batch_size, config.data.plan_options.get("T", 16)
    aug = config.data.augment
    side = aug.get("speednet_sizes", [224, 224])[1] if config.model.method == "speednet" else aug.get("out", 112)
    roles = ["normal", "sped_up"] if config.model.method == "speednet" else ["anchor", "positive", "negative"]
    batch = {"role": roles * videos, "epoch": 0, "step": 0, "speed": torch.tensor([1.0, 1.0, 2.0][: len(roles)] * videos)}
    return torch.randn(len(batch["role"]), 3, T, side, side), batch


if __name__ == "__main__":
    sys.exit(main())
