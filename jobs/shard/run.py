"""Run the shard job for one split: assign videos to shards, transcode in parallel, write tars, write the manifest.

Worker processes transcode videos; this process writes every tar, in assignment order, so a shard's
members always come out in the same order whatever finishes first. The assignment (``assignment.py``) and one
done-record per shard (``manifest.py``) make the job restartable at any moment: the records say
which shards are complete, and only the others are redone.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

from jobs.shard.assignment import ShardAssignment, assign_shards, videos_per_shard_for
from jobs.shard.card import write_card
from jobs.shard.manifest import ShardRecord, build_manifest, write_manifest
from jobs.shard.sources import Listing, SourceVideo
from pipeline.atomic import remove_stale_partials
from pipeline.normalise import CODECS, EncodeSettings, Rejected, normalise
from pipeline.progress import progress as progress_bar
from pipeline.shard_format import SampleMeta, index_path, shard_name
from pipeline.tar_writer import ShardTarWriter

STATE_DIR = ".shard-job"
PILOT_VIDEOS = 4


class AssignmentMismatch(Exception):
    """OUT already holds a job started with other settings."""


@dataclass(frozen=True)
class JobSettings:
    """Everything that decides what the tars contain (and so must match on resume)."""

    encode: EncodeSettings
    shard_bytes: int = 1 << 30
    videos_per_shard: int | None = None  # overrides shard_bytes
    seed: int = 0


# --- per-video work, in worker processes ----------------------------------------------------


def _worker_init() -> None:
    # Ctrl-C goes to the parent, which stops the pool; workers finish or are cancelled.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def transcode_entry(entry: dict, encode: EncodeSettings) -> tuple[str, bytes | None, bytes | str]:
    """Normalise one assigned video: ``(key, video, meta_json)`` or ``(key, None, reason)``."""
    try:
        out = normalise(entry["path"], encode)
    except Rejected as e:
        return entry["key"], None, str(e)
    except Exception as e:  # bad input must never stop the job; the reason names the error
        return entry["key"], None, f"unexpected error: {type(e).__name__}: {e}"
    meta = SampleMeta(
        key=entry["key"],
        id=entry["id"],
        label=entry["label"],
        label_index=entry["label_index"],
        split=entry["split"],
        time_start=entry["time_start"],
        time_end=entry["time_end"],
        fps=float(encode.fps),
        width=out.width,
        height=out.height,
        frames=out.frames,
        codec=CODECS[encode.codec].name,
        container=CODECS[encode.codec].container,
        source=out.source,
    )
    return entry["key"], out.data, json.dumps(meta.to_json_dict(), sort_keys=True).encode()


def _new_pool(workers: int) -> ProcessPoolExecutor:
    """A pool whose workers are known to start: a crash later is then the file's, not the setup's."""
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init)
    try:
        pool.submit(int).result()
    except BrokenProcessPool:
        pool.shutdown(cancel_futures=True)
        raise RuntimeError(
            "worker processes could not start; run the job from a file or as "
            "`python -m jobs.shard`, not from standard input"
        ) from None
    return pool


def _isolated(entry: dict, encode: EncodeSettings):
    with _new_pool(1) as pool:
        try:
            return pool.submit(transcode_entry, entry, encode).result()
        except BrokenProcessPool:
            return entry["key"], None, "the decoder crashed on this file"


def transcode_in_order(entries: Iterable[dict], encode: EncodeSettings, workers: int) -> Iterator[tuple]:
    """Transcode ``entries`` on ``workers`` processes and yield the results in input order.

    At most ``2 * workers`` videos are in flight, so memory stays bounded. A worker that dies (an
    FFmpeg crash on a hostile file) breaks the pool: every video then in flight is retried alone,
    so only the file that really crashes is failed.
    """
    entries = iter(entries)
    pool = _new_pool(workers)
    window: deque = deque()
    try:
        while True:
            while len(window) < 2 * workers and (entry := next(entries, None)) is not None:
                window.append((entry, pool.submit(transcode_entry, entry, encode)))
            if not window:
                return
            entry, future = window.popleft()
            try:
                yield future.result()
            except BrokenProcessPool:
                pool.shutdown(cancel_futures=True)
                suspects = [entry] + [e for e, _ in window]
                window.clear()
                for suspect in suspects:
                    yield _isolated(suspect, encode)
                pool = _new_pool(workers)
    finally:
        pool.shutdown(cancel_futures=True)


# --- assigning ---------------------------------------------------------------------------------


def split_paths(out: Path, split: str) -> dict[str, Path]:
    split_dir = out / split
    state = split_dir / STATE_DIR
    return {
        "dir": split_dir,
        "state": state,
        "assignment": state / "assignment.json",
        "done": state / "done",
        "manifest": split_dir / "manifest.json",
    }


def _entry(video: SourceVideo, listing: Listing) -> dict:
    return {
        "key": video.key,
        "id": video.id,
        "split": video.split,
        "label": video.label,
        "label_index": listing.label_index(video.label),
        "path": video.path,
        "time_start": video.time_start,
        "time_end": video.time_end,
    }


def _identity(listing: Listing, split: str, root: Path, settings: JobSettings) -> dict:
    """What an assignment was made from; a resumed run must match it exactly."""
    identity = {
        "dataset": listing.dataset,
        "root": str(root.resolve()),
        "split": split,
        "settings": json.loads(json.dumps(asdict(settings))),
    }
    if listing.fold is not None:  # another fold lists other videos: never resume one as the other
        identity["fold"] = listing.fold
    return identity


def _pilot_videos_per_shard(keys: list[str], entries: dict, settings: JobSettings, workers: int) -> int:
    """Videos per shard for about ``shard_bytes``, from real transcodes of the first few assigned videos."""
    pilot = assign_shards(keys, PILOT_VIDEOS, settings.seed)[:1]  # the first videos of the shuffled order
    results = transcode_in_order((entries[k] for shard in pilot for k in shard), settings.encode, workers)
    sizes = [len(data) for _, data, _ in results if data]
    mean = sum(sizes) / len(sizes) if sizes else 1 << 20  # nothing decodable: assume 1 MB
    return videos_per_shard_for(settings.shard_bytes, mean)


def assign_split(listing: Listing, split: str, root: Path, settings: JobSettings, workers: int) -> ShardAssignment:
    videos = listing.splits[split]
    entries = {v.key: _entry(v, listing) for v in videos if v.path and not v.problem}
    keys = list(entries)
    per_shard = settings.videos_per_shard or _pilot_videos_per_shard(keys, entries, settings, workers)
    return ShardAssignment(
        split=split,
        identity=_identity(listing, split, root, settings),
        videos_per_shard=per_shard,
        shards=assign_shards(keys, per_shard, settings.seed),
        entries=entries,
        failed_before=[{"key": v.key, "path": v.path or v.expected, "reason": v.problem} for v in videos if v.problem],
        missing=[{"key": v.key, "path": v.expected} for v in videos if not v.path and not v.problem],
    )


def load_or_assign(
    listing: Listing, split: str, root: Path, out: Path, settings: JobSettings, workers: int, overwrite: bool = False
) -> ShardAssignment:
    """The split's assignment: the saved one when resuming with the same settings, else a new one."""
    paths = split_paths(out, split)
    if overwrite and paths["dir"].exists():
        shutil.rmtree(paths["dir"])
    legacy = paths["state"] / "plan.json"  # the same file, as jobs started before version 0.2 named it
    if legacy.exists() and not paths["assignment"].exists():
        legacy.rename(paths["assignment"])
    if paths["assignment"].exists():
        assignment = ShardAssignment.load(paths["assignment"])
        wanted = _identity(listing, split, root, settings)
        if assignment.identity != wanted:
            changed = sorted(_diff(assignment.identity, wanted))
            raise AssignmentMismatch(
                f"{paths['dir']} holds a job started with other settings ({', '.join(changed)}); "
                "use another --out, or --overwrite to start again"
            )
        return assignment
    assignment = assign_split(listing, split, root, settings, workers)
    paths["done"].mkdir(parents=True, exist_ok=True)
    assignment.save(paths["assignment"])
    return assignment


def _diff(a: dict, b: dict, prefix: str = "") -> Iterator[str]:
    for k in a.keys() | b.keys():
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            yield from _diff(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k):
            yield f"{prefix}{k}: {a.get(k)} -> {b.get(k)}"


def done_record(paths: dict, index: int) -> Path:
    """The record whose existence marks shard ``index`` as complete."""
    return paths["done"] / f"{index:06d}.json"


def pending_shards(assignment: ShardAssignment, out: Path) -> list[int]:
    paths = split_paths(out, assignment.split)
    return [i for i in range(len(assignment.shards)) if not done_record(paths, i).exists()]


# --- writing ------------------------------------------------------------------------------


def _write_shard(
    paths: dict, assignment: ShardAssignment, index: int, results: Iterable[tuple], on_video
) -> ShardRecord:
    tar_path = paths["dir"] / shard_name(assignment.split, index)
    container = CODECS[assignment.identity["settings"]["encode"]["codec"]].container
    failed = []
    with ShardTarWriter(tar_path) as writer:
        for key, data, meta in results:
            if data is None:
                failed.append({"key": key, "path": assignment.entries[key]["path"], "reason": meta})
            else:
                writer.add(key, {container: data, "json": meta})
            on_video(data is None)
        if writer.samples:
            writer.commit()  # a shard whose videos all failed leaves no (empty, unreadable) tar
    record = ShardRecord(
        index=index,
        name=tar_path.name if writer.samples else None,
        samples=writer.samples,
        bytes=writer.bytes_written,
        failed=failed,
    )
    record.save(done_record(paths, index))  # last: the shard counts as done only now
    return record


def run_shards(out: Path, assignment: ShardAssignment, indices: list[int], workers: int, progress: bool = True) -> None:
    """Write the shards ``indices`` of ``assignment`` (skipping any already done)."""
    paths = split_paths(out, assignment.split)
    pending = set(pending_shards(assignment, out))
    indices = [i for i in indices if i in pending]
    for i in indices:  # what killed runs of these shards left: the tar, its index, its done record
        tar = paths["dir"] / shard_name(assignment.split, i)
        for path in (tar, index_path(tar), done_record(paths, i)):
            remove_stale_partials(path)
    encode = EncodeSettings(**assignment.identity["settings"]["encode"])
    results = transcode_in_order(
        (assignment.entries[k] for i in indices for k in assignment.shards[i]), encode, workers
    )
    total = sum(len(assignment.shards[i]) for i in indices)
    failures = 0
    with progress_bar(total=total, unit="video", desc=assignment.split, enabled=progress) as bar:

        def on_video(failed: bool) -> None:
            nonlocal failures
            failures += failed
            bar.set_postfix(failed=failures, refresh=False)
            bar.update(1)

        try:
            for i in indices:
                _write_shard(paths, assignment, i, islice(results, len(assignment.shards[i])), on_video)
        finally:
            results.close()


def finish_split(out: Path, assignment: ShardAssignment, labels: list[str]) -> dict:
    """Build and write the manifest from the done-records, then the dataset card (``jobs.shard.card``);
    every shard must be done."""
    paths = split_paths(out, assignment.split)
    missing = pending_shards(assignment, out)
    if missing:
        raise RuntimeError(
            f"{len(missing)} of {len(assignment.shards)} shards of {assignment.split} are not done; "
            "run the same command again to finish them"
        )
    records = [ShardRecord.load(done_record(paths, i)) for i in range(len(assignment.shards))]
    manifest = build_manifest(
        assignment.identity["dataset"],
        assignment.split,
        labels,
        records,
        assignment.failed_before,
        assignment.missing,
        {**assignment.identity, "videos_per_shard": assignment.videos_per_shard},
    )
    write_manifest(paths["manifest"], manifest)
    write_card(out)  # OUT/README.md, from every split's manifest: this one is now among them
    return manifest
