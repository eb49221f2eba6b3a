"""The peak GPU memory of a config's training step, known before the run: the largest input its
loader can draw, one training step of the real model at that input, whether that fits a GPU, and
which setting to change when it does not.

SpeedNet draws a spatial size per batch, so a config that runs out of memory does so at a random
step, maybe hours in; ``refuse_unless_fits`` lets a trainer refuse at its start instead.

How the peak is estimated: the trainer's model (``models.pretext.build_pretext``) and optimiser go
through one optimiser step on fake tensors (shapes and dtypes, no data: nothing is allocated), after
a first step has given the optimiser its state, while ``LiveBytes`` counts the bytes of every
storage alive. So the estimate is of the real code: what autograd saves, what autocast casts and
caches, the gradients and the optimiser's buffers, RSPNet's key encoder, queue and BN groups. For a
GPU the forward runs under autocast in the config's precision (bf16 by default), CPU autocast made
to cast as CUDA's does (``_cuda_autocast_policy``: the fake tensors are CPU ones, as a CPU-only
PyTorch cannot make fake CUDA tensors), with sizes rounded to the CUDA allocator's 512-byte blocks
and SGD's multi-tensor ("foreach") update, PyTorch's default on a GPU. What it does not see (the
caching allocator's fragmentation, cuDNN workspaces, the CUDA context, DDP's gradient buckets,
DALI's own buffers) is what ``MARGIN`` leaves free.

Against the peak the CPU allocator measures for the same step on real tensors, the estimate is
within 8% on the tiny configs (``tests/jobs/pretrain/test_memory.py``); no GPU has measured it yet.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from jobs.pretrain.config import Config
from jobs.pretrain.live_bytes import LiveBytes
from models.pretext import PLAN_OF, build_pretext
from pipeline.augment import AugmentConfig
from pipeline.batches import Batch
from pipeline.plans import Clip
from pipeline.steps import Plan

# Kept free of the GPU's memory: an allowance for what the estimate cannot see (module docstring),
# not a measurement.
MARGIN = 0.15
CUDA_BLOCK = 512  # bytes: the CUDA caching allocator rounds every block up to a multiple
LONG_VIDEO = 100_000  # frames: longer than any plan needs, so none pads or skips
# A fine-tuning config's class count comes from the shards at run time; the head's 1024 x classes
# weights barely matter, and Kinetics-400 is the most any shipped dataset has.
PLACEHOLDER_CLASSES = 400

# What the live bytes hold, by when they were allocated
WEIGHTS = "weights and buffers"
GRADIENTS = "gradients"
OPTIMIZER = "optimizer state"
INPUT = "input batch"
ACTIVATIONS = "activations (forward)"
BACKWARD = "backward temporaries"


@dataclass(frozen=True)
class LargestInput:
    """The largest micro-batch a config's loader can draw, on one process."""

    videos: int  # samples per micro-batch: data.batch_size
    clips: tuple[Clip, ...]  # one sample's clips, as its plan draws them
    side: int  # the largest square side the augmentation can draw
    micro_batches: int  # per optimiser step: optim.grad_accum

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        """(N, C, T, H, W) of the batch's video tensor."""
        return self.videos * len(self.clips), 3, len(self.clips[0].indices), self.side, self.side

    def describe(self) -> str:
        n, _, t, h, w = self.shape
        per, steps = len(self.clips), self.micro_batches
        return (
            f"{n} clips ({self.videos} videos x {per} clip{'s' * (per > 1)}) of {t} frames at {h} x {w} px, "
            f"{steps} micro-batch{'es' * (steps > 1)} per optimiser step"
        )


@dataclass(frozen=True)
class Estimate:
    total: int  # bytes alive at the peak of one training step
    parts: dict[str, int]  # what they held at that moment (the categories above)
    input: LargestInput
    precision: str  # the step's: fp32, bf16 or fp16 autocast
    device: str  # the device whose rules it follows: cuda or cpu


def largest_input(config: Config) -> LargestInput:
    """The largest input ``config`` can draw: ``data.batch_size`` videos per micro-batch (per process;
    ``optim.grad_accum`` micro-batches make an optimiser step), each with its plan's clips of T frames,
    at the largest side its augmentation draws (SpeedNet's ``speednet_sizes[1]``, else ``out``)."""
    plan = Plan(PLAN_OF[config.model.method], dict(config.data.plan_options))
    try:
        clips = plan(LONG_VIDEO, np.random.default_rng(0))
        augment = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.data.augment.items()})
    except TypeError as e:  # an option the plan or AugmentConfig does not take
        raise ValueError(f"data.plan_options or data.augment: {e}") from None
    if augment.recipe == "speednet":
        side = augment.speednet_sizes[1]  # pipeline.augment.batch_size_draw: uniform in [lo, hi]
    elif augment.recipe in ("rspnet", "eval"):
        side = augment.out
    else:
        raise ValueError(
            f"data.augment.recipe={augment.recipe!r} keeps each video's stored size: its largest input "
            "depends on the shards, not the config"
        )
    return LargestInput(config.data.batch_size, tuple(clips), side, config.optim.grad_accum)


def estimate_peak(config: Config, device: str = "cuda", *, bf16_supported: bool = True) -> Estimate:
    """The peak bytes of one training step of ``config`` at its largest input, following the rules
    of ``device`` ("cuda": the trainer on a GPU; "cpu"), computed on fake tensors: nothing is
    allocated. ``bf16_supported``: whether the GPU has bf16, which precision "auto" uses if so."""
    if device not in ("cuda", "cpu"):
        raise ValueError(f"device must be cuda or cpu, not {device!r}")
    largest = largest_input(config)
    dtype = autocast_dtype(config.run.precision, device, bf16_supported)
    with torch.device("meta"):  # the real constructors, no memory; weights are made fake below
        model = build_model(config)
    batch = step_batch(largest, video=None)  # host-side fields stay real, as in training
    tracker = LiveBytes(block=CUDA_BLOCK if device == "cuda" else 1)
    policy = _cuda_autocast_policy() if device == "cuda" and dtype is not None else contextlib.nullcontext()
    with FakeTensorMode(allow_non_fake_inputs=True), tracker, policy:  # real host-side fields meet fake tensors
        tracker.category = WEIGHTS
        _materialise(model)
        run_training_step(
            config,
            model,
            batch,
            largest.shape,
            dtype,
            foreach=device == "cuda",
            phase=lambda name: setattr(tracker, "category", name),
            relabel=tracker.relabel,
        )
    precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    return Estimate(tracker.peak, dict(tracker.at_peak), largest, precision, device)


def usable_bytes(gpu_memory_gb: float) -> int:
    """What a step may use of a GPU of ``gpu_memory_gb`` GiB: all but ``MARGIN``."""
    return int(gpu_memory_gb * 2**30 * (1 - MARGIN))


def fits(config: Config, gpu_memory_gb: float = 80.0, *, bf16_supported: bool = True) -> tuple[bool, Estimate, str]:
    """Whether ``config``'s training step fits a GPU of ``gpu_memory_gb`` GiB at its largest input;
    the estimate; and, when it does not fit, one line that names the setting to change."""
    usable = usable_bytes(gpu_memory_gb)
    estimate = estimate_peak(config, "cuda", bf16_supported=bf16_supported)
    if estimate.total <= usable:
        return True, estimate, ""
    need = f"needs {gib(estimate.total)} at its largest input, {gib(usable)} usable of {gpu_memory_gb:g} GiB"
    return False, estimate, f"{need}: {_advice(config, usable, bf16_supported)}"


def refuse_unless_fits(config: Config, device: torch.device | str) -> None:
    """At a trainer's start: on a CUDA device, raise ValueError (one line naming the setting to
    change) when ``config``'s step would not fit that GPU at its largest input; elsewhere nothing."""
    device = torch.device(device)
    if device.type != "cuda":
        return
    total = torch.cuda.get_device_properties(device).total_memory
    ok, _, advice = fits(config, total / 2**30, bf16_supported=torch.cuda.is_bf16_supported())
    if not ok:
        raise ValueError(f"this config would run out of GPU memory: {advice}")


def gib(n: int) -> str:
    """Bytes as GiB, for people."""
    return f"{n / 2**30:.2f} GiB"


def _advice(config: Config, usable: int, bf16_supported: bool) -> str:
    """The largest divisor of data.batch_size that fits, with optim.grad_accum raised to keep the
    global batch (so the learning rate too); else the input settings."""
    b, g = config.data.batch_size, config.optim.grad_accum
    for smaller in (d for d in range(b - 1, 0, -1) if b % d == 0):
        accum = g * b // smaller
        candidate = dataclasses.replace(
            config,
            data=dataclasses.replace(config.data, batch_size=smaller),
            optim=dataclasses.replace(config.optim, grad_accum=accum),
        )
        need = estimate_peak(candidate, "cuda", bf16_supported=bf16_supported).total
        if need <= usable:
            return (
                f"set data.batch_size={smaller} and optim.grad_accum={accum} (the same global batch and "
                f"learning rate; BN statistics then come from micro-batches of {smaller} videos): {gib(need)}"
            )
    return (
        "even data.batch_size=1 does not fit: lower the largest input (data.augment.speednet_sizes or "
        "data.augment.out, data.plan_options.T)"
    )


def autocast_dtype(precision: str, device: str, bf16_supported: bool = True) -> torch.dtype | None:
    """The autocast dtype of run.precision on ``device`` (None: fp32), as the trainer resolves it
    (``jobs.pretrain.loop._precision``: "auto" is bf16 on a GPU that has it, else fp32)."""
    if precision == "auto":
        precision = "bf16" if device == "cuda" and bf16_supported else "no"
    dtypes = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"run.precision={precision!r}: choose auto, no, bf16 or fp16")
    return dtypes[precision]


def build_model(config: Config) -> nn.Module:
    """The trainer's model for ``config`` (``jobs.pretrain.loop.train``'s ``build_pretext`` call)."""
    options = dict(config.model.options)
    if config.model.method == "classifier":
        options.setdefault("classes", PLACEHOLDER_CLASSES)
    return build_pretext(
        config.model.method,
        config.model.backbone,
        config.model.backbone_options,
        seed=config.run.seed,
        micro_batches=config.optim.grad_accum,
        **options,
    )


def step_batch(largest: LargestInput, video: torch.Tensor | None) -> Batch:
    """A batch of ``largest.videos`` samples of the plan's clips around ``video`` (labelled, for
    fine-tuning)."""
    clips = [c for _ in range(largest.videos) for c in largest.clips]
    per = len(largest.clips)
    return Batch(
        video=video,
        keys=[f"video{i // per}" for i in range(len(clips))],
        sample=torch.arange(len(clips)) // per,
        label=["class0"] * len(clips),
        label_index=torch.zeros(len(clips), dtype=torch.long),
        role=[c.role for c in clips],
        speed=torch.tensor([c.speed for c in clips], dtype=torch.float32),
        aug_group=torch.tensor([c.aug_group for c in clips], dtype=torch.long),
        indices=torch.tensor([c.indices for c in clips], dtype=torch.long),
    )


def run_training_step(
    config: Config,
    model: nn.Module,
    batch: Batch,
    shape: tuple[int, ...],
    dtype: torch.dtype | None,
    *,
    foreach: bool | None = None,
    phase: Callable[[str], None] = lambda name: None,
    relabel: Callable[[torch.Tensor, str], None] = lambda tensor, name: None,
) -> None:
    """What the trainer does in one optimiser step, at its most memory: the optimiser already holds
    its state (a first step on zero gradients gives it), then ``optim.grad_accum`` micro-batches
    (two stand for any more: from the second on, each holds what the second does) of forward under
    autocast, backward, and the update. ``batch.video`` is made here, of ``shape``.
    ``phase`` is told what each stretch allocates; ``relabel`` is given each parameter's gradient."""
    opt = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.0, momentum=opt.momentum, weight_decay=opt.weight_decay, foreach=foreach)
    for p in params:
        p.register_post_accumulate_grad_hook(lambda p: relabel(p.grad, GRADIENTS))
    phase(GRADIENTS)
    for p in params:
        p.grad = torch.zeros_like(p)
    phase(OPTIMIZER)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    phase(INPUT)
    batch = dataclasses.replace(batch, video=torch.rand(shape))
    for _ in range(min(opt.grad_accum, 2)):
        phase(ACTIVATIONS)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = model(batch.video, batch)
        phase(BACKWARD)
        out["loss"].backward()
    phase(OPTIMIZER)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _materialise(model: nn.Module) -> None:
    """Fake tensors in place of ``model``'s meta parameters and buffers (one for each, however many
    modules share it), made under the active FakeTensorMode."""
    made: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for table, is_param in ((module._parameters, True), (module._buffers, False)):
            for name, t in table.items():
                if t is None:
                    continue
                if id(t) not in made:
                    fresh = torch.empty(t.shape, dtype=t.dtype)
                    made[id(t)] = nn.Parameter(fresh, requires_grad=t.requires_grad) if is_param else fresh
                table[name] = made[id(t)]


@contextlib.contextmanager
def _cuda_autocast_policy():
    """CPU autocast made to cast as CUDA's does: ops that CPU autocast runs in fp32 and CUDA's leaves
    alone (max_pool3d, avg_pool3d, ...: those with an AutocastCPU kernel and no AutocastCUDA one, read
    from the dispatcher) run uncast, as they would on a GPU. The ops CUDA casts to fp32 and CPU does
    not (softmax, norms, transcendentals) stay uncast: here only the heads' small tensors meet them."""
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    ops = [
        name.removeprefix("aten::")
        for name in torch._C._dispatch_get_all_op_names()
        if name.startswith("aten::") and has(name, "AutocastCPU") and not has(name, "AutocastCUDA")
    ]
    library = torch.library.Library("aten", "IMPL")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # each override warns that it replaces a kernel
            for op in ops:
                library.impl(op, torch.library.fallthrough_kernel, "AutocastCPU")
        yield
    finally:
        library._destroy()  # CPU autocast's own kernels again
