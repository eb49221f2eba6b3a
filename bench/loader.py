"""``python -m bench.loader``: training clips per second of the DALI loader, against two references.

All three read the same stored streams, with RSPNet's plan (3 clips of 16 frames at 1x/2x per
video) and a 112 px crop, using every core:

- the loader: ``VideoLoader`` (DALI; CPU backend here, NVDEC where a GPU is);
- the baseline users write today: a torch ``DataLoader`` with one worker per core whose dataset opens
  each video file with PyAV, decodes from the start up to the last planned frame, converts to RGB,
  and resizes and crops in torch (as RSPNet's and most public loaders do);
- the ceiling: every core decoding whole streams with PyAV, one after another, nothing else;
- and, to split the loader's gap to the ceiling between decoding and augmentation, DALI's decoder
  alone on the same plans (the loader with free augmentation).

"decoded frames" counts what a decoder must decode for a clip: every frame up to the last one it
needs (neither DALI's CPU decoder nor the baseline seeks). The last line is
``clips_per_s=<x> baseline_ratio=<y> ceiling_ratio=<z>`` for the default configuration (antialiased
resize); a second row shows ``antialias=False``, which folds the resize into the crop.
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

from pipeline.augment import AugmentConfig
from pipeline.loader import VideoLoader
from pipeline.plans import rspnet_plan
from pipeline.shards import ShardIndex, resolve_shards


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


def run_loader(shards: Path, batch_size: int, batches: int, threads: int, antialias: bool) -> tuple[float, float]:
    loader = VideoLoader(
        shards,
        plan="rspnet",
        batch_size=batch_size,
        device="cpu",
        num_threads=threads,
        augment=AugmentConfig("rspnet", antialias=antialias),
    )
    clips = frames = done = 0
    start = None
    while done < batches:  # epochs, until enough batches were timed
        for batch in loader:
            if start is None:  # the first batch pays for building the pipeline
                start = time.perf_counter()
                continue
            clips += len(batch)
            frames += sum(int(batch.indices[batch.sample == s].max()) + 1 for s in batch.sample.unique())
            done += 1
            if done == batches:
                break
    return clips / (time.perf_counter() - start), frames / (time.perf_counter() - start)


def run_decoder(shards: Path, batch_size: int, batches: int, threads: int) -> tuple[float, float]:
    """DALI's CPU decoder alone, on RSPNet plans: each sample's distinct planned frames, nothing after."""
    from nvidia.dali import fn, pipeline_def, types

    index, rng = ShardIndex(resolve_shards(shards)), np.random.default_rng(0)
    counts: list[tuple[int, int]] = []  # (clips, decoded frames) of each batch fed

    def source(_info=None):
        encoded, frames, clips, decoded = [], [], 0, 0
        for pos in rng.choice(len(index), batch_size, replace=len(index) < batch_size):
            meta, data = index.read(int(pos))
            plan = rspnet_plan(meta.frames, rng)
            wanted = np.unique(np.concatenate([c.indices for c in plan]))
            encoded.append(np.frombuffer(data, np.uint8))
            frames.append(wanted.astype(np.int32))
            clips, decoded = clips + len(plan), decoded + int(wanted[-1]) + 1
        counts.append((clips, decoded))
        return encoded, frames

    @pipeline_def(batch_size=batch_size, num_threads=threads, device_id=None)
    def decode_only():
        encoded, frames = fn.external_source(source=source, num_outputs=2, batch=True, dtype=[types.UINT8, types.INT32])
        return fn.decoders.video(encoded, device="cpu", frames=frames, pad_mode="none")

    pipe = decode_only()
    pipe.build()
    pipe.run()  # the first batch pays for building the pipeline
    start = time.perf_counter()
    for _ in range(batches):
        pipe.run()
    seconds = time.perf_counter() - start
    timed = counts[1 : 1 + batches]  # batches come out in the order they were fed
    clips, decoded = (sum(c[i] for c in timed) for i in (0, 1))
    return clips / seconds, decoded / seconds


def run_baseline(files: list[tuple[str, int]], batch_size: int, batches: int, workers: int) -> tuple[float, float]:
    data = torch.utils.data.DataLoader(
        NaiveDataset(files), batch_size=batch_size, shuffle=True, num_workers=workers, persistent_workers=True
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
        base_clips, base_frames = run_baseline(files, args.batch_size, args.batches, args.workers)
        clips, frames = run_loader(shards, args.batch_size, args.batches, args.workers, antialias=True)
        fast_clips, fast_frames = run_loader(shards, args.batch_size, args.batches, args.workers, antialias=False)
        dec_clips, dec_frames = run_decoder(shards, args.batch_size, args.batches, args.workers)
    print(
        f"{len(files)} videos, batch {args.batch_size} videos (x3 clips), {args.batches} timed batches, "
        f"{args.workers} workers on {os.cpu_count()} cores"
    )
    print(f"{'':>26}{'clips/s':>10}{'decoded frames/s':>18}")
    print(f"{'ceiling (decode only)':>26}{'':>10}{ceiling:>18.0f}")
    print(f"{'baseline (PyAV DataLoader)':>26}{base_clips:>10.1f}{base_frames:>18.0f}")
    print(f"{'this loader (DALI CPU)':>26}{clips:>10.1f}{frames:>18.0f}")
    print(f"{'  with antialias=False':>26}{fast_clips:>10.1f}{fast_frames:>18.0f}")
    print(f"{'DALI decoder alone':>26}{dec_clips:>10.1f}{dec_frames:>18.0f}")
    print(
        f"clips_per_s={clips:.2f} baseline_ratio={clips / base_clips:.2f} ceiling_ratio={frames / ceiling:.2f} "
        f"decoder_ceiling_ratio={dec_frames / ceiling:.2f}"
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
