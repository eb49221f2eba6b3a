"""The DALI path of ``VideoLoader``: each step's feeds decoded and augmented by the DALI graph
(``pipeline.graph``). The path on GPUs (NVDEC); on a CPU host it runs when asked for (``decoder="dali"``).

DALI pulls batches from a Python source a few steps ahead of the one it returns. A sample it cannot
decode fails the whole batch: the samples an independent decoder cannot read either are dropped and
the graph is rebuilt at that step, so the rerun batch is the one the step gives without them.

On a GPU a graph decodes either on NVDEC or on the CPU (then augments on the GPU): the CPU where this
host has no NVDEC, and for every batch holding a sample below NVDEC's minimum size
(``pipeline.nvdec``). The source ends a graph's run where the next batch needs the other decoder,
and the next graph starts with that batch.
"""

from __future__ import annotations

import collections
import functools
import io
from collections.abc import Iterator

import numpy as np
import torch

from pipeline import graph, nvdec
from pipeline.batches import Batch, PreparedBatch
from pipeline.steps import StepPlanner


class _Source:
    """DALI's batch callable: prepares step after step of one epoch and remembers each batch.

    DALI calls it batches ahead of the one being yielded, so a batch's too-short samples travel
    with it (``too_short``) and are counted by the loader only when the batch is yielded; those of
    steps whose samples were all too short ride with the next batch, or with the epoch's end
    (``skipped``)."""

    def __init__(
        self,
        planner: StepPlanner,
        epoch: int,
        step: int,
        steps: int,
        feeds: tuple[str, ...],
        decode_on: str = "cpu",
        route=lambda batch: "cpu",
        first: PreparedBatch | None = None,
        skipped: list[str] | None = None,
    ):
        self.planner, self.epoch, self.step, self.steps, self.feeds = planner, epoch, step, steps, feeds
        self.decode_on, self.route = decode_on, route
        self.pending: collections.deque[PreparedBatch] = collections.deque()
        self.skipped: list[str] = list(skipped or [])
        self.first = first  # a batch the previous graph handed over: it is this one's to decode
        self.handover: PreparedBatch | None = None  # the batch that needs the other decoder

    def __call__(self, _info=None):
        while self.step < self.steps and self.handover is None:
            batch, self.first = self.first or self.planner.prepare(self.epoch, self.step), None
            if not batch.feeds["encoded"]:
                self.step += 1
                self.skipped.extend(batch.too_short)
                continue
            if self.route(batch) != self.decode_on:
                self.handover = batch  # ends this graph's run; the next graph starts with it
                break
            self.step += 1
            batch.too_short, self.skipped = self.skipped + batch.too_short, []
            self.pending.append(batch)
            return tuple(batch.feeds[name] for name in self.feeds)
        raise StopIteration


def dali_batches(loader) -> Iterator[Batch]:
    """The rest of ``loader``'s epoch from ``loader.step``; keeps its step, ``dropped`` and bad keys."""
    augment, blur = loader.augment, loader.blur
    feeds = graph.feeds_for(augment.antialias, augment.colour, blur)
    route = functools.partial(decode_place, has_nvdec=loader.nvdec)
    first, skipped = None, []
    while True:  # once, plus once more after each undecodable batch and at each change of decoder
        if first is None and loader.step < loader.steps_per_epoch:  # its batch says where to decode
            first = loader.planner.prepare(loader.epoch, loader.step)
        decode_on = route(first) if first is not None else "cpu"
        # a handed-over batch's own step: steps skipped as all too short lie behind it, not at loader.step
        start = first.info["step"] if first is not None else loader.step
        source = _Source(
            loader.planner, loader.epoch, start, loader.steps_per_epoch, feeds, decode_on, route, first, skipped
        )
        first, skipped = None, []
        pipe = graph.build(
            source,
            batch_size=loader.batch_size,
            device_id=None if loader.device == "cpu" else torch.cuda.current_device(),
            decode_on=decode_on,
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
                    if source.handover is not None:  # the next batch needs the other decoder
                        first, skipped = source.handover, source.skipped
                        break
                    loader.count_too_short(source.skipped)
                    return
                except RuntimeError as error:  # a sample DALI cannot decode
                    _drop_undecodable(loader, source.pending.popleft(), error)
                    break
                batch = source.pending.popleft()
                if decode_on == "cpu" and (loader.nvdec or loader.device == "gpu"):
                    loader.cpu_decoded.extend(_small_keys(batch))
                loader.count_too_short(batch.too_short)
                loader.step = batch.info["step"] + 1
                yield Batch.from_clips(_to_torch(out, batch.info, loader.device, loader.normalise_pixels), batch.info)
        finally:
            del pipe


def decode_place(batch: PreparedBatch, has_nvdec: bool) -> str:
    """Where DALI decodes ``batch``: ``gpu`` (NVDEC) only where there is NVDEC (``loader.nvdec``: a GPU
    host whose driver has it) and every sample fits NVDEC's minimum size; otherwise ``cpu``."""
    return "gpu" if has_nvdec and not _small_keys(batch) else "cpu"


def _small_keys(batch: PreparedBatch) -> list[str]:
    """Keys of the samples of ``batch`` below NVDEC's minimum, one per sample."""
    sizes = zip(batch.info["video_codec"], batch.info["video_size"])
    return [key for key, (codec, (w, h)) in zip(_sample_keys(batch), sizes) if not nvdec.fits(codec, w, h)]


def _sample_keys(batch: PreparedBatch) -> list[str]:
    """One key per sample of ``batch`` (its first clip's), repeats kept."""
    first_clips = np.cumsum([0, *batch.info["clips_per_sample"]])[:-1]  # none for an empty batch
    return [batch.info["keys"][i] for i in first_clips]


def _drop_undecodable(loader, batch: PreparedBatch, error: Exception) -> None:
    """Drop the samples of ``batch`` that an independent decoder cannot read either, and go back to
    its step. If they all decode, the error is not the data's: it is raised."""
    keys = _sample_keys(batch)
    bad = list(dict.fromkeys(k for k, data in zip(keys, batch.feeds["encoded"]) if not _decodes(data.tobytes())))
    if not bad:
        raise error
    loader.drop(bad, f"undecodable: {_dali_reason(error)}")
    loader.step = batch.info["step"]


def _to_torch(out, info: dict, device: str, normalised: bool):
    per_sample = info["clips_per_sample"]
    if out.is_dense_tensor():  # one copy out of DALI's buffer for the whole batch
        dense = _gpu_tensor(out.as_tensor()) if device == "gpu" else torch.from_numpy(np.array(out.as_tensor()))
        samples = list(dense) if len(set(per_sample)) > 1 else [dense.reshape(-1, *dense.shape[2:])]
        per_sample = per_sample if len(set(per_sample)) > 1 else [sum(per_sample)]
    elif device == "gpu":  # ragged (previews without augmentation): a copy per sample
        samples = [_gpu_tensor(out[i]) for i in range(len(per_sample))]
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
    """Copy a DALI GPU tensor (a sample, or a dense batch) into a new torch tensor, on torch's stream
    after DALI's work: no host synchronisation. The layout permutes that follow run on the GPU."""
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
