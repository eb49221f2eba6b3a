"""Samples below NVDEC's minimum size decode on the CPU, on a GPU host, instead of failing the batch.

No GPU here: the DALI graph runs on DALI's CPU decoder, and NVDEC's refusal ("Video is too small") is
simulated where DALI meets it, at the graph's input, for any graph built to decode on NVDEC."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline import dali_batches, graph, nvdec
from pipeline.loader import VideoLoader, default_threads
from pipeline.shards import ShardIndex, resolve_shards


@pytest.mark.parametrize(
    "codec, width, height, fits",
    [
        ("vp9", 128, 128, True),
        ("vp9", 127, 300, False),
        ("vp9", 85, 64, False),
        ("h264", 64, 48, True),
        ("hevc", 143, 200, False),
        ("prores", 200, 200, True),
        ("prores", 140, 200, False),
    ],
)
def test_nvdec_minimum_sizes(codec, width, height, fits):
    assert nvdec.fits(codec, width, height) is fits


def test_the_nvdec_probe_loads_the_driver_library_or_says_no():
    assert nvdec.available("libc.so.6") is True  # a library every Linux host has
    assert nvdec.available("libnvcuvid-not-here.so.1") is False


def _keys(split: Path) -> set[str]:
    index = ShardIndex(resolve_shards(str(split)))
    return {index.read(i)[0].key for i in range(len(index))}


def _route_like_nvdec(tars: list[str], monkeypatch, **options) -> tuple[VideoLoader, list, VideoLoader, list, list]:
    """One epoch on a single CPU-decoder graph, and the same epoch routed as on a GPU with NVDEC, whose
    refusal ("Video is too small") is simulated at the graph's input for any graph built for NVDEC."""

    def loader():
        return VideoLoader(tars, plan="speednet", batch_size=1, decoder="dali", seed=3, num_threads=1, **options)

    plain = loader()
    reference = list(plain)  # one graph on DALI's CPU decoder: nothing to route
    built, real_build = [], graph.build

    def build_with_nvdec_limits(source, *, decode_on="gpu", **options):
        built.append(decode_on)
        if decode_on != "gpu":
            return real_build(source, decode_on=decode_on, **options)

        def nvdec_source(info=None):
            feeds = source(info)
            if dali_batches._small_keys(source.pending[-1]):
                raise RuntimeError("Video is too small")  # what DALI's mixed decoder raises
            return feeds

        return real_build(nvdec_source, decode_on=decode_on, **options)

    monkeypatch.setattr(graph, "build", build_with_nvdec_limits)
    on_gpu = loader()
    on_gpu.nvdec = True  # a GPU host with NVDEC, as far as routing goes
    return plain, reference, on_gpu, list(on_gpu), built


def _same_epoch(plain, reference, on_gpu, routed) -> None:
    assert [b.keys for b in routed] == [b.keys for b in reference]
    assert [b.step for b in routed] == [b.step for b in reference]
    assert all(torch.equal(a.video, b.video) for a, b in zip(routed, reference))
    assert on_gpu.dropped == plain.dropped and on_gpu.step == plain.step and on_gpu.epoch == plain.epoch


def test_small_samples_decode_on_the_cpu_and_the_batches_do_not_change(real_shards, synthetic_splits, monkeypatch):
    # the real videos at up to 336 px (NVDEC takes them) and the synthetic ones at 64 px (too small), mixed
    small_split = synthetic_splits / "train"
    tars = [str(t) for t in sorted(real_shards.glob("*.tar")) + sorted(small_split.glob("*.tar"))]
    plain, reference, on_gpu, routed, built = _route_like_nvdec(tars, monkeypatch)
    _same_epoch(plain, reference, on_gpu, routed)
    small = _keys(small_split)
    assert set(on_gpu.cpu_decoded) == {key for b in reference for key in b.keys if key in small}
    assert "gpu" in built and "cpu" in built  # both decoders ran, handing batches over


def test_a_switch_of_decoder_after_steps_skipped_as_too_short_replays_nothing(
    real_shards, synthetic_splits, monkeypatch
):
    # In sample order: 90-frame windows make the 24 synthetic videos (65 frames) too short, so 24 steps
    # give no batch; then the real videos, all "too small for NVDEC" here, so the decoder changes
    # after the skipped steps: the CPU graph must start at the real video's step, not replay them.
    monkeypatch.setitem(nvdec.MIN_SIZE, "vp9", (10_000, 10_000))
    tars = [str(t) for t in sorted((synthetic_splits / "train").glob("*.tar")) + sorted(real_shards.glob("*.tar"))]
    plain, reference, on_gpu, routed, built = _route_like_nvdec(
        tars, monkeypatch, plan_options={"T": 30, "short": "skip"}, shuffle=False
    )
    assert [b.step for b in reference] == [24, 25, 26] and len(plain.dropped) == 24
    _same_epoch(plain, reference, on_gpu, routed)
    assert built == ["gpu", "cpu"]  # the first step's batch is empty: NVDEC until the first real video


def test_decoding_threads_keep_every_nvdec_engine_busy_by_default(synthetic_splits):
    assert default_threads(nvdec=True) >= 7  # H100/H200: 7 NVDEC engines, one session per DALI thread
    loader = VideoLoader(synthetic_splits / "train", plan="speednet", decoder="dali")
    assert loader.num_threads == default_threads(nvdec=False) == 2  # no NVDEC here
