"""The peak memory of a training step, estimated before it runs (``jobs.pretrain.memory``): against
the peak the CPU allocator measures, the largest input the loader can draw, the advice when a
config does not fit, the command, and every paper config on an 80 GiB GPU."""

from __future__ import annotations

import functools
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.profiler import ProfilerActivity, profile

from jobs.finetune.setup import CONFIG_DIR as FINETUNE_DIR
from jobs.finetune.setup import load_config
from jobs.pretrain import check_config, memory
from jobs.pretrain.config import CONFIG_DIR, from_dict, load
from jobs.pretrain.live_bytes import LiveBytes
from pipeline.augment import AugmentConfig, batch_size_draw

TOLERANCE = 0.15  # measured on this CPU: the estimate is 0.92 to 1.00 of the allocator's peak
PAPER = [("pretrain", p.stem) for p in sorted(CONFIG_DIR.glob("*.toml")) if not p.stem.startswith("tiny")]
PAPER += [("finetune", p.stem) for p in sorted(FINETUNE_DIR.glob("*.toml")) if not p.stem.startswith("tiny")]


def measured_cpu_peak(config) -> int:
    """The most bytes torch's CPU allocator held during the same training step on real tensors, the
    model and optimiser built inside: the profiler records every allocation and free, in order."""
    largest = memory.largest_input(config)
    batch = memory.step_batch(largest, video=None)
    dtype = memory.autocast_dtype(config.run.precision, "cpu")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model = memory.build_model(config)
        memory.run_training_step(config, model, batch, largest.shape, dtype)
        del model
    # the raw events: prof.events() folds each allocation into the op that made it
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()  # negative for a free
        peak = max(peak, live)
    return peak


@pytest.mark.parametrize(
    "name, sets",
    [
        ("tiny_speednet", ["data.batch_size=4"]),
        ("tiny_speednet", ["data.batch_size=4", 'run.precision="bf16"']),  # autocast's casts and cache
        ("tiny_rspnet", ["data.batch_size=4", "optim.grad_accum=2"]),  # key encoder, queue, accumulation
    ],
)
def test_the_estimate_is_the_peak_the_cpu_allocator_measures(name, sets):
    config = load(name, sets)
    estimate = memory.estimate_peak(config, "cpu")
    measured = measured_cpu_peak(config)
    assert abs(estimate.total / measured - 1) <= TOLERANCE, (estimate.total, measured)


@pytest.mark.parametrize("accumulate", [1, 2])
def test_at_the_peak_live_the_weights_their_momentum_and_with_accumulation_their_gradients(accumulate):
    config = load("tiny_rspnet", ["data.batch_size=4", f"optim.grad_accum={accumulate}"])
    with torch.device("meta"):
        model = memory.build_model(config)
    trainable = sum(p.nbytes for p in model.parameters() if p.requires_grad)
    state = sum(t.nbytes for t in [*model.parameters(), *model.buffers()])  # the key encoder and queue too
    parts = memory.estimate_peak(config, "cpu").parts
    assert parts[memory.WEIGHTS] == state and parts[memory.OPTIMIZER] == trainable  # SGD's momentum
    # the first micro-batch's gradients wait for the optimiser step through the second's forward
    assert parts.get(memory.GRADIENTS, 0) == (trainable if accumulate > 1 else 0)


def test_live_bytes_counts_a_storage_once_from_its_op_until_it_is_freed():
    with FakeTensorMode(), LiveBytes() as tracker:
        tracker.category = "a"
        a = torch.empty(1000)
        view = a.view(10, 100)
        a.add_(1)  # in place: the same storage
        tracker.category = "b"
        b = a * 2
        assert tracker.live == {"a": 4000, "b": 4000}
        tracker.relabel(b, "a")
        assert tracker.live == {"a": 8000, "b": 0}
        del a, view
        assert tracker.total == 4000 and tracker.peak == 8000 and tracker.at_peak == {"a": 4000, "b": 4000}
        del b
        assert tracker.total == 0
    with FakeTensorMode(), LiveBytes(block=512) as tracker:  # as the CUDA caching allocator hands out
        torch.empty(1000)
    assert tracker.peak == 4096


def test_the_largest_input_is_the_largest_the_loader_draws():
    speednet = memory.largest_input(load("speednet_s3dg"))
    assert speednet.shape == (16, 3, 16, 336, 336)  # 8 videos x (normal, sped up), T 16, the top size
    augment = AugmentConfig(recipe="speednet", speednet_sizes=(64, 336))
    draws = [batch_size_draw(augment, np.random.default_rng(seed)) for seed in range(2000)]
    assert max(draws) == speednet.side
    assert memory.largest_input(load("rspnet_s3dg")).shape == (192, 3, 16, 224, 224)  # 64 triplets
    finetune = memory.largest_input(load_config("speednet_s3dg_ucf101", ["optim.grad_accum=2"]))
    assert finetune.shape == (4, 3, 64, 224, 224) and finetune.micro_batches == 2
    with pytest.raises(ValueError, match="stored size"):
        memory.largest_input(load("tiny_speednet", ['data.augment={ recipe = "none" }']))


def test_on_a_gpu_autocast_casts_as_cuda_does_and_cpu_autocast_is_restored_after():
    x = torch.rand(1, 2, 4, 4, 4, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with memory._cuda_autocast_policy():
            assert F.max_pool3d(x, 2).dtype == torch.bfloat16  # CUDA autocast leaves max pools alone
        assert F.max_pool3d(x, 2).dtype == torch.float32  # CPU autocast's own policy


def test_on_a_gpu_the_step_runs_in_bf16_unless_the_gpu_has_none():
    config = load("tiny_rspnet")
    bf16 = memory.estimate_peak(config, "cuda")
    fp32 = memory.estimate_peak(config, "cuda", bf16_supported=False)
    assert (bf16.precision, fp32.precision) == ("bf16", "fp32") and bf16.total < 0.8 * fp32.total
    assert memory.estimate_peak(config, "cpu").precision == "fp32"  # "auto" on a CPU, as the trainer


def test_a_config_that_does_not_fit_gets_the_batch_that_fits_with_the_same_global_batch():
    config = load("tiny_speednet")
    ok, estimate, advice = memory.fits(config, gpu_memory_gb=0.1)
    assert not ok and estimate.total > memory.usable_bytes(0.1)
    sets = re.search(r"set (data\.batch_size=\d+) and (optim\.grad_accum=\d+)", advice).groups()
    smaller = load("tiny_speednet", list(sets))
    assert smaller.data.batch_size * smaller.optim.grad_accum == config.data.batch_size * config.optim.grad_accum
    assert memory.fits(smaller, gpu_memory_gb=0.1)[0]
    ok, _, advice = memory.fits(config, gpu_memory_gb=0.001)
    assert not ok and "even data.batch_size=1" in advice and "data.augment.speednet_sizes" in advice


def test_a_trainer_on_a_gpu_too_small_is_refused_with_one_line(monkeypatch):
    config = load("tiny_speednet")
    memory.refuse_unless_fits(config, "cpu")  # a CPU run is never checked
    small = type("Properties", (), {"total_memory": 2**30 // 10})()
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: small)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    with pytest.raises(ValueError) as refused:
        memory.refuse_unless_fits(config, "cuda:0")
    message = str(refused.value)
    assert "\n" not in message and "data.batch_size=" in message and "optim.grad_accum=" in message


def test_the_command_says_whether_a_config_fits_in_its_exit_status(capsys):
    assert check_config.main(["tiny_rspnet", "--gpu-memory-gb", "1"]) == 0
    out = capsys.readouterr().out
    assert "largest input: 24 clips (8 videos x 3 clips) of 16 frames at 64 x 64 px" in out
    assert "activations (forward)" in out and out.splitlines()[-1].startswith("fits:")
    assert check_config.main(["tiny_rspnet", "--gpu-memory-gb", "0.1"]) == 1
    verdict = capsys.readouterr().out.splitlines()[-1]
    assert verdict.startswith("does not fit:") and "data.batch_size=" in verdict
    assert check_config.main(["no_such_config"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no config 'no_such_config'" in err
    assert check_config.main(["tiny_finetune", "--finetune", "--set", "data.plan_options={ T = 8 }"]) == 0
    assert "of 8 frames" in capsys.readouterr().out


@functools.cache
def fits_80_gib(config_json: str):
    """``memory.fits`` on 80 GiB, once per distinct config (a dataset's two configs may be one)."""
    return memory.fits(from_dict(json.loads(config_json)), gpu_memory_gb=80)


@pytest.mark.parametrize("kind, name", PAPER, ids=[name for _, name in PAPER])
def test_every_paper_config_fits_an_80_gib_gpu_at_its_largest_input(kind, name):
    config = load(name) if kind == "pretrain" else load_config(name)
    ok, estimate, advice = fits_80_gib(json.dumps(config.to_dict(), sort_keys=True))
    assert ok, advice
    video = int(np.prod(estimate.input.shape)) * 4  # float32 from the loader: a floor the peak must clear
    assert estimate.parts[memory.INPUT] >= video and estimate.parts[memory.ACTIVATIONS] > video
    assert estimate.total == sum(estimate.parts.values())
