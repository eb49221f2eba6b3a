"""The DALI path of ``VideoLoader``: each step's feeds decoded and augmented by the DALI graph
(``pipeline.graph``). The path on GPUs (NVDEC); on a CPU host it runs when asked for (``decoder="dali"``).

DALI pulls batches from a Python source a few steps ahead of the one it returns. A sample it cannot
decode fails the whole batch: the samples an independent decoder cannot read either are dropped and
the graph is rebuilt at that step, so the rerun batch is the one the step gives without them.
"""

from __future__ import annotations

import collections
import io
from collections.abc import Iterator

import numpy as np
import torch

from pipeline import graph
from pipeline.batches import Batch, PreparedBatch
from pipeline.steps import StepPlanner


class _Source:
    """DALI's batch callable: prepares step after step of one epoch and remembers each batch.

    DALI calls it batches ahead of the one being yielded, so a batch's too-short samples travel
    with it (``too_short``) and are counted by the loader only when the batch is yielded; those of
    steps whose samples were all too short ride with the next batch, or with the epoch's end
    (``skipped``)."""

    def __init__(self, planner: StepPlanner, epoch: int, step: int, steps: int, feeds: tuple[str, ...]):
        self.planner, self.epoch, self.step, self.steps, self.feeds = planner, epoch, step, steps, feeds
        self.pending: collections.deque[PreparedBatch] = collections.deque()
        self.skipped: list[str] = []

    def __call__(self, _info=None):
        while self.step < self.steps:
            batch = self.planner.prepare(self.epoch, self.step)
            self.step += 1
            if not batch.feeds["encoded"]:
                self.skipped.extend(batch.too_short)
                continue
            batch.too_short, self.skipped = self.skipped + batch.too_short, []
            self.pending.append(batch)
            return tuple(batch.feeds[name] for name in self.feeds)
        raise StopIteration


def dali_batches(loader) -> Iterator[Batch]:
    """The rest of ``loader``'s epoch from ``loader.step``; keeps its step, ``dropped`` and bad keys."""
    augment, blur = loader.augment, loader.blur
    feeds = graph.feeds_for(augment.antialias, augment.colour, blur)
    while True:  # once, plus once more after each undecodable batch
        source = _Source(loader.planner, loader.epoch, loader.step, loader.steps_per_epoch, feeds)
        pipe = graph.build(
            source,
            batch_size=loader.batch_size,
            device_id=None if loader.device == "cpu" else torch.cuda.current_device(),
            num_threads=loader.num_threads,
            antialias=augment.antialias,
            colour=augment.colour,
            blur=blur,
            blur_kernel=augment.blur_kernel,
            normalise_pixels=loader.normalise_pixels,
        )
        try:
            while True:
                try:
                    (out,) = pipe.run()
                except StopIteration:
                    loader.count_too_short(source.skipped)
                    return
                except RuntimeError as error:  # a sample DALI cannot decode
                    _drop_undecodable(loader, source.pending.popleft(), error)
                    break
                batch = source.pending.popleft()
                loader.count_too_short(batch.too_short)
                loader.step = batch.info["step"] + 1
                yield Batch.from_clips(_to_torch(out, batch.info, loader.device, loader.normalise_pixels), batch.info)
        finally:
            del pipe


def _drop_undecodable(loader, batch: PreparedBatch, error: Exception) -> None:
    """Drop the samples of ``batch`` that an independent decoder cannot read either, and go back to
    its step. If they all decode, the error is not the data's: it is raised."""
    first_clips = np.cumsum([0] + batch.info["clips_per_sample"][:-1])
    keys = [batch.info["keys"][i] for i in first_clips]  # one per sample, repeats kept
    bad = list(dict.fromkeys(k for k, data in zip(keys, batch.feeds["encoded"]) if not _decodes(data.tobytes())))
    if not bad:
        raise error
    loader.drop(bad, f"undecodable: {_dali_reason(error)}")
    loader.step = batch.info["step"]


def _to_torch(out, info: dict, device: str, normalised: bool):
    per_sample = info["clips_per_sample"]
    if device == "gpu":
        samples = [_gpu_tensor(out[i]) for i in range(len(per_sample))]
    elif out.is_dense_tensor():  # one copy out of DALI's buffer for the whole batch
        dense = torch.from_numpy(np.array(out.as_tensor()))
        samples = list(dense) if len(set(per_sample)) > 1 else [dense.reshape(-1, *dense.shape[2:])]
        per_sample = per_sample if len(set(per_sample)) > 1 else [sum(per_sample)]
    else:
        samples = [torch.from_numpy(np.array(out[i])) for i in range(len(per_sample))]
    clips = [x.reshape(k, -1, *x.shape[1:]) for x, k in zip(samples, per_sample)]  # (K, T, ...) each
    if len({c.shape[1:] for c in clips}) > 1:
        return [_layout(c, normalised) for c in clips]  # sizes differ (preview without augmentation)
    return _layout(clips[0] if len(clips) == 1 else torch.cat(clips), normalised)


def _layout(x: torch.Tensor, normalised: bool) -> torch.Tensor:
    # normalised: (N, T, C, H, W) -> (N, C, T, H, W); uint8 previews stay (N, T, H, W, C)
    return x.permute(0, 2, 1, 3, 4).contiguous() if normalised else x


def _gpu_tensor(tensor) -> torch.Tensor:
    """Copy one DALI GPU sample into a new torch tensor, ordered after DALI's work on its stream."""
    from nvidia.dali import types
    from nvidia.dali.plugin.pytorch import feed_ndarray

    dtype = torch.float32 if tensor.dtype == types.FLOAT else torch.uint8
    out = torch.empty(tensor.shape(), dtype=dtype, device="cuda")
    feed_ndarray(tensor, out, cuda_stream=torch.cuda.current_stream())
    return out


def _dali_reason(error: Exception) -> str:
    """The line of a DALI error that says what went wrong (it comes after 'encountered:')."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    after = lines[lines.index("encountered:") + 1 :] if "encountered:" in lines else lines
    return (after or ["unknown DALI error"])[0][:200]


def _decodes(data: bytes) -> bool:
    import av

    try:
        with av.open(io.BytesIO(data)) as c:
            for _ in c.decode(video=0):
                pass
        return True
    except (av.error.FFmpegError, IndexError):
        return False
