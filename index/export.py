"""Export what a trained model sees to an embedding store (``index.store``), for the FAISS index.

    python -m index.export CHECKPOINT --shards shards/train --out emb/train.zarr
    python -m index.export CHECKPOINT --videos my_videos/ --out emb/mine.zarr      # loose files
    python -m index.export CHECKPOINT --shards ... --out ... --rank 3 --world 8     # one of 8 processes

Two kinds of rows: sliding windows (``--frames`` T frames every ``--stride`` frames at playback
``--rate``; clip-level and within-video retrieval) and one VCOP video embedding per video
(``--video-clips`` evenly spaced clips, pooled, averaged). ``--pool`` chooses global average or max
pooling of the last conv features for both.

Ranks (``--rank/--world``, or RANK/WORLD_SIZE, or SLURM's task id and count) take every world-th unit
of videos and write their own chunks of the pre-sized store; each unit is marked done after its
data. The same command run again skips finished units: an interrupted export resumes. ``--videos``
first normalises the files into one shard beside the store (``OUT.shards/``), as the shard job would.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from index import store
from index.embed import video_embeddings, window_embeddings, windows_of_video
from models.base import POOLS, Backbone
from models.trained import load_trained
from pipeline import logs
from pipeline.device import add_device_option, apply_device_option, torch_device
from pipeline.help_format import HelpFormatter
from pipeline.loose_videos import find_videos, shard_files
from pipeline.normalise import EncodeSettings, Rejected
from pipeline.plans import sliding_count
from pipeline.progress import progress as progress_bar
from pipeline.shards import ShardIndex, resolve_shards
from pipeline.windows import windows_in

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportSettings:
    T: int = 16
    stride: int = 8
    rate: float = 1.0
    size: int = 112  # centre crop side, as the VCOP retrieval protocol
    pool: str = "avg"
    video_clips: int = 10
    videos_per_unit: int = 64
    chunk_rows: int = 1024

    def __post_init__(self):
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, not {self.pool!r}")
        if (
            min(self.T, self.stride, self.size, self.video_clips, self.videos_per_unit, self.chunk_rows) < 1
            or self.rate <= 0
        ):
            raise ValueError(f"invalid export settings: {self}")


def encode_settings_of(tars: list[Path]) -> dict:
    """The shard job's normalisation of these tars (from their split's manifest), else the default."""
    manifest = tars[0].parent / "manifest.json"
    if manifest.is_file():
        encode = json.loads(manifest.read_text()).get("settings", {}).get("settings", {}).get("encode")
        if encode:
            return encode
    return asdict(EncodeSettings())


def store_layout(index: ShardIndex, settings: ExportSettings) -> tuple[store.Layout, list]:
    metas = [index.read_meta(i) for i in range(len(index))]
    windows = tuple(sliding_count(m.frames, T=settings.T, stride=settings.stride, rate=settings.rate) for m in metas)
    return store.Layout(windows, settings.videos_per_unit, settings.chunk_rows), metas


def export_unit(
    root,
    unit: int,
    layout: store.Layout,
    metas: list,
    backbone: Backbone,
    tars: list[Path],
    settings: ExportSettings,
    device: str,
) -> None:
    """Embed one unit's videos and write them; a video the loader drops keeps its padding rows."""
    videos = list(layout.videos_of(unit))
    where = {metas[v].key: v for v in videos}
    if len(where) != len(videos):
        raise ValueError(f"duplicate sample keys among videos {videos[0]}..{videos[-1]}: export one split at a time")
    counts = [layout.windows[v] for v in videos]
    first = dict(zip(videos, np.cumsum([0] + counts[:-1]).tolist()))
    n = sum(counts)
    clips = {"embedding": np.zeros((n, backbone.out_channels), np.float32), "video": np.full(n, -1, np.int32)}
    clips |= {name: np.zeros(n, dtype) for name, dtype in store.CLIP_COLUMNS.items() if name != "video"}
    common = dict(T=settings.T, size=settings.size, pool=settings.pool, device=device, samples=videos)
    for key, indices, emb in _unit_windows(backbone, tars, videos, layout, metas, settings, device):
        v = where[key]
        rows = slice(first[v], first[v] + len(emb))
        fps = metas[v].fps
        clips["embedding"][rows] = emb
        clips["video"][rows] = v
        clips["start_frame"][rows] = indices[:, 0]
        clips["end_frame"][rows] = indices[:, -1] + 1
        clips["start_time"][rows] = indices[:, 0] / fps
        clips["end_time"][rows] = (indices[:, -1] + 1) / fps
        clips["stride"][rows] = settings.stride
        clips["rate"][rows] = settings.rate
    video_emb = np.zeros((len(videos), backbone.out_channels), np.float32)
    # on a GPU, 8 videos a batch keep NVDEC's engines busy (one decoder session per video at a time)
    batch = 8 if device == "cuda" else 2
    keys, _, emb = video_embeddings(backbone, tars, clips=settings.video_clips, batch_size=batch, **common)
    for key, row in zip(keys, emb):
        video_emb[where[key] - videos[0]] = row
    store.write_unit(
        root,
        unit,
        clips,
        {
            "embedding": video_emb,
            "key": [metas[v].key for v in videos],
            "label": [metas[v].label or "" for v in videos],
            "fps": [metas[v].fps for v in videos],
            "frames": [metas[v].frames for v in videos],
        },
    )


def _unit_windows(
    backbone: Backbone,
    tars: list[Path],
    videos: list[int],
    layout: store.Layout,
    metas: list,
    settings: ExportSettings,
    device: str,
    memory_mb: float = 512,
):
    """(key, indices, embeddings) of each video's windows: a video whose windows fit ``memory_mb``
    in one batch with the others, a longer one a bounded chunk at a time."""
    fits = windows_in(memory_mb, T=settings.T, size=settings.size)
    short = [v for v in videos if layout.windows[v] <= fits]
    options = dict(
        T=settings.T, stride=settings.stride, rate=settings.rate, size=settings.size, pool=settings.pool, device=device
    )
    if short:
        yield from window_embeddings(backbone, tars, samples=short, **options)
    for v in videos:
        if layout.windows[v] > fits:
            indices, emb = windows_of_video(backbone, tars, position=v, memory_mb=memory_mb, **options)
            if len(emb):  # else the loader dropped it, as window_embeddings would
                yield metas[v].key, indices, emb


def rank_and_world(rank: int | None, world: int | None) -> tuple[int, int]:
    """Explicit values, else torchrun's RANK/WORLD_SIZE, else SLURM's task id and count, else 0 of 1."""
    env = os.environ
    if rank is None:
        rank = int(env.get("RANK", env.get("SLURM_PROCID", 0)))
    if world is None:
        world = int(env.get("WORLD_SIZE", env.get("SLURM_NTASKS", 1)))
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside world size {world}")
    return rank, world


def export(
    checkpoint_path: Path,
    tars: list[Path],
    out: Path,
    settings: ExportSettings,
    *,
    rank: int = 0,
    world: int = 1,
    device: str = "cpu",
    encode: dict | None = None,
    progress: bool = True,
) -> bool:
    """Create (or reopen) the store and write this rank's pending units; True once the whole store
    is complete (the last rank to finish marks it)."""
    trained = load_trained(checkpoint_path)
    backbone, model = trained.backbone.to(device), trained.describe()
    index = ShardIndex(tars)
    layout, metas = store_layout(index, settings)
    attrs = {
        "model": model,
        "clips": {
            "T": settings.T,
            "stride": settings.stride,
            "rate": settings.rate,
            "size": settings.size,
            "pool": settings.pool,
        },
        "videos": {"T": settings.T, "clips": settings.video_clips, "size": settings.size, "pool": settings.pool},
        "shards": [str(Path(t).resolve()) for t in tars],
        "encode": encode or encode_settings_of(tars),
    }
    root = store.create(out, layout, backbone.out_channels, attrs)
    _check_same(root, attrs, layout, out)
    mine = [u for u in store.pending_units(root) if u % world == rank]
    bar = progress_bar(
        total=sum(len(layout.videos_of(u)) for u in mine),
        unit="video",
        desc=f"export rank {rank}",
        enabled=progress,
    )
    for unit in mine:
        export_unit(root, unit, layout, metas, backbone, tars, settings, device)
        bar.update(len(layout.videos_of(unit)))
    bar.close()
    return store.finish(root)


def _check_same(root, attrs: dict, layout: store.Layout, out: Path) -> None:
    """An existing store must be this export's, or resuming would mix two exports."""
    for name in ("model", "clips", "videos", "shards"):
        if root.attrs.get(name) != json.loads(json.dumps(attrs[name])):
            raise ValueError(f"{out} holds another export (its {name} differ): choose a new --out or delete it")
    if store.layout_of(root) != layout:
        raise ValueError(f"{out} was laid out for other videos: choose a new --out or delete it")


def _normalised(videos: Path, folder: Path, rank: int, progress: bool, poll_s: float = 2.0) -> list[Path]:
    """The shard of a folder of videos: rank 0 normalises them into ``folder`` once (the tar
    appears only when whole), the other ranks wait for it, or for rank 0's failure."""
    tar, failed = folder / "files-000000.tar", folder / "normalise.failed"
    started = time.time()
    if rank == 0 and not tar.is_file():
        failed.unlink(missing_ok=True)
        try:
            files = find_videos(videos)
            if not files:
                raise ValueError(f"no video files under {videos}")
            _, rejected = shard_files(files, folder, EncodeSettings(), strict=False, progress=progress)
        except (ValueError, Rejected) as error:
            folder.mkdir(parents=True, exist_ok=True)
            failed.write_text(str(error))
            raise
        for r in rejected:
            log.warning("skipped %s: %s", r["path"], r["reason"])
    while not tar.is_file():
        if failed.is_file() and failed.stat().st_mtime > started - 60:  # not a marker left by an earlier run
            raise ValueError(f"rank 0 could not normalise {videos}: {failed.read_text()}")
        time.sleep(poll_s)
    return resolve_shards(folder)


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    p = argparse.ArgumentParser(
        prog="python -m index.export", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("checkpoint", type=Path, help="a checkpoint written by jobs.pretrain")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--shards", help="a split folder, a glob of tars or a manifest.json (this or --videos)")
    src.add_argument(
        "--videos", type=Path, help="a folder of video files, normalised into OUT.shards/ first (this or --shards)"
    )
    p.add_argument("--out", type=Path, required=True, help="the zarr store to write (NAME.zarr)")
    d = ExportSettings()
    p.add_argument("--frames", type=int, default=d.T, help="frames per clip (default %(default)s)")
    p.add_argument("--stride", type=int, default=d.stride, help="frames between window starts (default %(default)s)")
    p.add_argument("--rate", type=float, default=d.rate, help="playback rate of the windows (default %(default)s)")
    p.add_argument("--size", type=int, default=d.size, help="centre crop side (default %(default)s)")
    p.add_argument("--pool", choices=POOLS, default=d.pool, help="global pooling of the last conv features")
    p.add_argument(
        "--video-clips", type=int, default=d.video_clips, help="clips per video embedding (default %(default)s)"
    )
    p.add_argument("--videos-per-unit", type=int, default=d.videos_per_unit, help="videos per resumable unit")
    p.add_argument(
        "--chunk-rows", type=int, default=d.chunk_rows, help="zarr chunk of window rows (default %(default)s)"
    )
    p.add_argument("--rank", type=int, help="this process's rank (default: RANK or SLURM_PROCID, else 0)")
    p.add_argument("--world", type=int, help="number of processes (default: WORLD_SIZE or SLURM_NTASKS, else 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (nor progress lines in a log file)")
    add_device_option(p)
    args = p.parse_args(argv)
    apply_device_option(args)
    device = torch_device()
    try:
        settings = ExportSettings(
            T=args.frames,
            stride=args.stride,
            rate=args.rate,
            size=args.size,
            pool=args.pool,
            video_clips=args.video_clips,
            videos_per_unit=args.videos_per_unit,
            chunk_rows=args.chunk_rows,
        )
        rank, world = rank_and_world(args.rank, args.world)
        encode = None
        if args.videos is not None:
            folder = args.out.with_name(args.out.name.removesuffix(".zarr") + ".shards")
            tars, encode = _normalised(args.videos, folder, rank, not args.no_progress), asdict(EncodeSettings())
        else:
            tars = resolve_shards(args.shards)
        complete = export(
            args.checkpoint,
            tars,
            args.out,
            settings,
            rank=rank,
            world=world,
            device=device,
            encode=encode,
            progress=not args.no_progress,
        )
    except (ValueError, FileNotFoundError, Rejected) as error:
        log.error("%s", error)
        return 2
    root = store.open_store(args.out, mode="r")
    rows = int((root["clips"]["video"][:] >= 0).sum())
    state = "complete" if complete else "this rank's part done; other ranks' units are pending"
    print(
        f"{args.out}: {rows} windows of {root['videos']['key'].shape[0]} videos, {root.attrs['dim']} dims "
        f"float16 ({state})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
