"""``python -m bench.loader``: training clips per second of the loader's two paths, against two
baselines and a ceiling, on the same shards, in one run.

All read the same stored streams with RSPNet's plan (3 clips of 16 frames at 1x/2x per video) and a
112 px crop, using every core:

- the CPU path: ``VideoLoader(decoder="pyav")``: PyAV with keyframe seeks, torch augmentation;
- the DALI CPU graph: ``VideoLoader(decoder="dali")`` (the GPU path's graph, with DALI's CPU decoder);
- the naive baseline: a torch ``DataLoader`` (one worker per core) whose dataset opens each loose
  video file with PyAV, decodes from the start to the last planned frame, converts every frame to
  RGB, and resizes and crops in torch;
- the careful baseline: the same, but seeking to the keyframe before each clip (as RSPNet's released
  code does with decord), decoding only to the clip's end, and cropping before resizing;
- the ceiling: every core decoding whole streams with PyAV, one after another, nothing else.

"decoded frames" counts what a decoder decodes: the CPU path's own count; every frame up to the last
planned one for DALI's CPU decoder and the naive baseline (neither seeks); from each clip's keyframe
for the careful one. Then, in one process: the decoded frames and time of three decoding strategies on
the same plans (from the start; a seek per clip; the CPU path's runs), and what each stage of the CPU
path costs. Last line: ``clips_per_s=<x> baseline_ratio=<y> ceiling_ratio=<z> careful_ratio=<w>``
for the CPU path.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from pipeline.augment import random_resized_box
from pipeline.cpu_batches import StepWork
from pipeline.loader import VideoLoader
from pipeline.plans import rspnet_plan
from pipeline.seek_decode import PlannedDecode
from pipeline.shards import ShardIndex, resolve_shards
from pipeline.steps import Plan, StepPlanner
from pipeline.torch_augment import augment_sample


class NaiveDataset(torch.utils.data.Dataset):
    """One loose video file per sample, decoded with PyAV from the start: the common baseline."""

    def __init__(self, files: list[tuple[str, int]], seed: int = 0):
        self.files, self.seed = files, seed

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        path, frames = self.files[i]
        rng = np.random.default_rng([self.seed, i])
        clips = rspnet_plan(frames, rng)
        last = max(max(c.indices) for c in clips)
        decoded = []
        with av.open(path) as container:
            for n, frame in enumerate(container.decode(video=0)):
                decoded.append(frame.to_ndarray(format="rgb24"))
                if n == last:
                    break
        out = []
        for clip in clips:
            x = torch.from_numpy(np.stack([decoded[j] for j in clip.indices])).permute(3, 0, 1, 2).float()
            h, w = x.shape[-2:]
            s = 128 / min(h, w)
            x = F.interpolate(x, size=(round(h * s), round(w * s)), mode="bilinear", antialias=True)
            top, left = rng.integers(0, x.shape[-2] - 112 + 1), rng.integers(0, x.shape[-1] - 112 + 1)
            x = x[..., top : top + 112, left : left + 112]
            out.append(x.flip(-1) if rng.random() < 0.5 else x)
        return torch.stack(out), last + 1


class CarefulDataset(NaiveDataset):
    """The baseline a careful user writes: per clip, seek to the keyframe before it, decode to its
    end, convert those frames, crop the clip's box and resize only that (RSPNet's released loader,
    with PyAV for decord)."""

    def __getitem__(self, i: int):
        path, frames = self.files[i]
        rng = np.random.default_rng([self.seed, i])
        clips, out, decoded = rspnet_plan(frames, rng), [], 0
        with av.open(path) as container:
            stream = container.streams.video[0]
            per_frame = 1 / (stream.time_base * stream.average_rate)  # pts per frame (constant 25 fps)
            for clip in clips:
                first, last = min(clip.indices), max(clip.indices)
                container.seek(int(first * per_frame), stream=stream, backward=True)
                got = {}
                for frame in container.decode(stream):
                    n = round(frame.pts / per_frame)
                    decoded += 1
                    if n in clip.indices:
                        got[n] = frame.to_ndarray(format="rgb24")
                    if n >= last:
                        break
                x = torch.from_numpy(np.stack([got[j] for j in clip.indices])).permute(3, 0, 1, 2).float()
                x0, y0, w, h = (int(v) for v in random_resized_box(*x.shape[-2:], (0.4, 1.0), (3 / 4, 4 / 3), rng))
                x = F.interpolate(x[..., y0 : y0 + h, x0 : x0 + w], size=(112, 112), mode="bilinear", antialias=True)
                out.append(x.flip(-1) if rng.random() < 0.5 else x)
        return torch.stack(out), decoded


def long_epoch(shards: Path, batch_size: int, batches: int, seed: int = 0) -> list[int]:
    """Sample positions for one epoch of ``batches + 1`` batches, each video repeated as needed in
    shuffled order: throughput is measured within an epoch, as in training at scale."""
    n = len(ShardIndex(resolve_shards(shards)))
    need = (batches + 1) * batch_size
    return np.random.default_rng(seed).permutation(np.resize(np.arange(n), need)).tolist()


def run_loader(shards: Path, decoder: str, batch_size: int, batches: int, workers: int) -> tuple[float, float]:
    loader = VideoLoader(
        shards,
        plan="rspnet",
        batch_size=batch_size,
        device="cpu",
        num_threads=workers,
        decoder=decoder,
        samples=long_epoch(shards, batch_size, batches),
    )
    clips = frames = 0
    start = None
    for batch in loader:
        if start is None:  # the first batch pays for starting workers (or building the graph)
            start, counted = time.perf_counter(), loader.decoded_frames
            continue
        clips += len(batch)
        frames += sum(int(batch.indices[batch.sample == s].max()) + 1 for s in batch.sample.unique())
    seconds = time.perf_counter() - start
    loader.close()  # its workers would otherwise compete with what runs next
    if decoder == "pyav":
        frames = loader.decoded_frames - counted
    return clips / seconds, frames / seconds


def run_baseline(dataset, batch_size: int, batches: int, workers: int) -> tuple[float, float]:
    data = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, persistent_workers=True
    )
    clips = frames = seen = 0
    start = None
    while seen < batches + 1:
        for videos, decoded in data:
            seen += 1
            if start is None:  # the first batch pays for starting workers
                start = time.perf_counter()
                continue
            clips += videos.shape[0] * videos.shape[1]
            frames += int(decoded.sum())
            if seen == batches + 1:
                break
    seconds = time.perf_counter() - start
    data._iterator._shutdown_workers()  # persistent workers would otherwise compete with what runs next
    return clips / seconds, frames / seconds


def _decode_all(path: str) -> int:
    with av.open(path) as c:
        return sum(1 for _ in c.decode(video=0))


def run_ceiling(files: list[tuple[str, int]], workers: int) -> float:
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_decode_all, [f for f, _ in files[:workers]]))  # start the workers
        start = time.perf_counter()
        frames = sum(pool.map(_decode_all, [f for f, _ in files]))
    return frames / (time.perf_counter() - start)


def loose_files(shards: Path, folder: Path) -> list[tuple[str, int]]:
    """The shards' videos as loose files, as the baseline's users keep them."""
    index = ShardIndex(resolve_shards(shards))
    files = []
    for i in range(len(index)):
        meta, data = index.read(i)
        path = folder / f"{meta.key}.{meta.container}"
        path.write_bytes(data)
        files.append((str(path), meta.frames))
    return files


def decoding_strategies(shards: Path, samples: int) -> dict[str, tuple[int, float]]:
    """(frames decoded, seconds) of decoding the same RSPNet plans' frames three ways, in one process:
    from the start (DALI's CPU decoder), a seek per clip (the careful baseline), the CPU path's runs."""
    index, rng = ShardIndex(resolve_shards(shards)), np.random.default_rng(1)
    plans = []
    for i in range(samples):
        meta, data = index.read(i % len(index))
        plans.append((data, meta.frames, [np.unique(c.indices) for c in rspnet_plan(meta.frames, rng)]))
    ways = {
        "from the start": lambda data, n, clips: [PlannedDecode(data, np.unique(np.concatenate(clips)), n, seek=False)],
        "a seek per clip": lambda data, n, clips: [PlannedDecode(data, c, n) for c in clips],
        "runs (the CPU path)": lambda data, n, clips: [PlannedDecode(data, np.unique(np.concatenate(clips)), n)],
    }
    out = {}
    for name, way in ways.items():
        start, decoded = time.perf_counter(), 0
        for data, n, clips in plans:
            for decode in way(data, n, clips):
                decoded += decode.decoded
                for _ in decode.chunks():
                    pass
        out[name] = (decoded, time.perf_counter() - start)
    return out


def stage_costs(shards: Path, batch_size: int, steps: int) -> dict[str, float]:
    """Milliseconds per batch of each stage of the CPU path, in one process on one core."""
    torch.set_num_threads(1)
    index = ShardIndex(resolve_shards(shards))
    augment = VideoLoader(shards, batch_size=batch_size, device="cpu").augment
    planner = StepPlanner(index, Plan("rspnet"), augment, batch_size, seed=0, rank=0, world=1, shuffle=True)
    work = StepWork(planner, normalise_pixels=True, blur=False)
    costs = dict.fromkeys(("read and plan", "demux", "decode", "augment", "lay out"), 0.0)
    for step in range(steps):
        t0 = time.perf_counter()
        prepared = planner.prepare(0, step % (len(index) // batch_size))
        costs["read and plan"] += time.perf_counter() - t0
        parts = 0.0
        for i, encoded in enumerate(prepared.feeds["encoded"]):
            mine = {name: values[i] for name, values in prepared.feeds.items()}
            t0 = time.perf_counter()
            decode = PlannedDecode(encoded.tobytes(), mine["frames"], prepared.info["video_frames"][i])
            t1 = time.perf_counter()
            planes = list(decode.chunks(64))
            t2 = time.perf_counter()
            into = torch.empty((3, 16, 3, 112, 112))
            augment_sample(planes, mine, into, antialias=True, colour=True, blur_kernel=None)
            t3 = time.perf_counter()
            costs["demux"] += t1 - t0
            costs["decode"] += t2 - t1
            costs["augment"] += t3 - t2
            parts += t3 - t0
        t0 = time.perf_counter()
        work.clips(prepared)  # all of it again: what is not decoding or augmenting is laying the batch out
        costs["lay out"] += max(0.0, time.perf_counter() - t0 - parts)
    return {k: 1000 * v / steps for k, v in costs.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.loader", description=__doc__.split("\n\n")[0])
    p.add_argument("--shards", help="a split folder of shards (default: the real-looking synthetic set made here)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--workers", type=int, default=os.cpu_count())
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shards = Path(args.shards) if args.shards else _synthetic_shards(tmp)
        files = loose_files(shards, tmp)
        ceiling = run_ceiling(files, args.workers)
        rows = {
            "naive baseline": run_baseline(NaiveDataset(files), args.batch_size, args.batches, args.workers),
            "careful baseline (seeks)": run_baseline(
                CarefulDataset(files), args.batch_size, args.batches, args.workers
            ),
            "DALI CPU graph": run_loader(shards, "dali", args.batch_size, args.batches, args.workers),
            "CPU path (pyav)": run_loader(shards, "pyav", args.batch_size, args.batches, args.workers),
        }
        strategies = decoding_strategies(shards, 24)
        stages = stage_costs(shards, args.batch_size, 3)
    print(
        f"{len(files)} videos, batch {args.batch_size} videos (x3 clips), {args.batches} timed batches, "
        f"{args.workers} workers on {os.cpu_count()} cores"
    )
    print(f"{'':>26}{'clips/s':>10}{'decoded frames/s':>18}{'x naive':>9}{'of ceiling':>12}")
    print(f"{'ceiling (decode only)':>26}{'':>10}{ceiling:>18.0f}")
    naive = rows["naive baseline"][0]
    for name, (clips, frames) in rows.items():
        print(f"{name:>26}{clips:>10.1f}{frames:>18.0f}{clips / naive:>9.2f}{frames / ceiling:>12.2f}")
    print("decoding the same plans' frames, one process:")
    for name, (decoded, seconds) in strategies.items():
        print(f"{name:>26}{decoded:>10} frames{seconds:>8.2f} s")
    print("CPU path per batch, one core: " + ", ".join(f"{k} {v:.0f} ms" for k, v in stages.items()))
    clips, frames = rows["CPU path (pyav)"]
    careful, dali = rows["careful baseline (seeks)"][0], rows["DALI CPU graph"][0]
    print(
        f"clips_per_s={clips:.2f} baseline_ratio={clips / naive:.2f} ceiling_ratio={frames / ceiling:.2f} "
        f"careful_ratio={clips / careful:.2f} dali_ratio={clips / dali:.2f}"
    )
    return 0


def _synthetic_shards(tmp: Path) -> Path:
    from jobs.shard.__main__ import main as shard
    from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset

    make_kinetics_dataset(
        tmp / "k",
        SyntheticConfig(videos_per_class={"train": 4, "val": 0, "test": 0}, width=320, height=240, duration_s=8.0),
    )
    shard(["kinetics", "--root", str(tmp / "k"), "--out", str(tmp / "s"), "--splits", "train", "--no-progress"])
    return tmp / "s" / "train"


if __name__ == "__main__":
    sys.exit(main())
