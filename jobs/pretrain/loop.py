"""The pretraining loop: SpeedNet or RSPNet from shards, on one CPU, one GPU or many processes
(Accelerate). ``train`` is called by the command (``python -m jobs.pretrain``) and, in each task of
a submitted job, by the launcher (``jobs.pretrain.launch``); it knows nothing of either.

Read top to bottom: build the task and the loader, restore the last checkpoint if resuming, then one
loop of optimiser steps. Everything a step depends on is a function of the checkpointed state: the
loader's position (epoch, micro-batch), the step (learning rate, RSPNet's coins), the model with
its key encoder and queue, and the optimiser. So a run killed and resumed from a checkpoint logs the
same losses as one never interrupted.

The run folder holds ``run.json`` (config, command, code version, environment), ``metrics.jsonl``,
``tensorboard/`` (or the trackers ``report_to`` names: ``jobs.pretrain.trackers``), ``curves.png`` and
``checkpoints/step-*.pt``; with ``PRETRAIN_RANK_RECORD=1`` also ``ranks/`` (``jobs.pretrain.rank_record``).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator

from jobs.pretrain import checkpoint, trackers
from jobs.pretrain.config import Config
from jobs.pretrain.logbook import Logbook, plot_curves
from jobs.pretrain.memory import refuse_unless_fits
from jobs.pretrain.rank_record import RankRecord, weights_digest
from jobs.pretrain.schedule import lr_at, scaled_lr
from models.pretext import PLAN_OF, build_pretext
from models.trained import read_checkpoint
from pipeline.atomic import atomic_write_text
from pipeline.augment import AugmentConfig
from pipeline.device import loader_device, torch_device
from pipeline.loader import VideoLoader
from pipeline.progress import progress as progress_bar

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    step: int  # optimiser steps done
    total: int  # optimiser steps the run is for
    stopped: bool  # a stop was requested (preemption): checkpointed at ``step``, not finished
    metrics: dict  # the last logged values


def train(
    config: Config,
    run_dir: Path,
    resume: bool = False,
    progress: bool = True,
    should_stop: Callable[[], bool] | None = None,
    launch: dict | None = None,
    report_to: Iterable[str] = trackers.DEFAULT,
) -> Outcome:
    """Run (or continue) pretraining into ``run_dir``.

    ``should_stop`` is polled after optimiser steps (every step alone, every ``run.log_every`` with
    several processes; a preemption signal sets it); when any process says yes, all of them
    checkpoint that step together and return with ``stopped``.
    ``launch`` adds to this start's entry in run.json (the launcher's command and job id).
    ``report_to``: the experiment trackers that get the logged scalars (``jobs.pretrain.trackers``).
    """
    opt, run = config.optim, config.run
    run_dir = Path(run_dir)
    trackers.require(report_to)  # a missing package fails now, not after the model is built
    # cpu=True on a machine without CUDA: otherwise Accelerate ignores an initialised process group
    # and every process trains alone.
    accelerator = Accelerator(
        mixed_precision=_precision(run.precision),
        gradient_accumulation_steps=opt.grad_accum,
        cpu=torch_device() == "cpu",
        log_with=trackers.log_with(report_to, run_dir),
        project_dir=run_dir,
    )
    refuse_unless_fits(config, accelerator.device)  # a step that cannot fit fails now, not at a random step hours in
    torch.manual_seed(run.seed)  # the same initial weights on every rank

    model = build_pretext(
        config.model.method,
        config.model.backbone,
        config.model.backbone_options,
        seed=run.seed,
        micro_batches=opt.grad_accum,
        **config.model.options,
    )
    if config.model.init:  # a resumed run then overwrites it with its checkpoint
        checkpoint.init_backbone(model, Path(config.model.init))
    loader = build_loader(
        config,
        device=loader_device(accelerator.device.type),
        rank=accelerator.process_index,
        world=accelerator.num_processes,
    )
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.0, momentum=opt.momentum, weight_decay=opt.weight_decay
    )
    global_batch = config.data.batch_size * accelerator.num_processes * opt.grad_accum
    peak = scaled_lr(opt.lr, global_batch, opt.lr_batch)
    steps_per_epoch = len(loader) // opt.grad_accum
    total = opt.max_steps or opt.epochs * steps_per_epoch
    if total < 1:
        raise ValueError(f"{len(loader)} batches per epoch make no optimiser step of {opt.grad_accum} micro-batches")
    milestones = tuple(sorted(round(epoch * steps_per_epoch) for epoch in opt.milestones))

    step = 0
    if resume:
        step = _restore(run_dir, model, optimizer, loader, accelerator.num_processes, config, accelerator.scaler)
    model, optimizer = accelerator.prepare(model, optimizer)

    main = accelerator.is_main_process
    if main:
        _write_run_record(run_dir, config, resume, accelerator, launch or {})
    accelerator.init_trackers(  # on the main process only
        trackers.PROJECT, config=trackers.flat_config(config.to_dict()), init_kwargs=trackers.init_kwargs(run_dir)
    )
    book = Logbook(run_dir, forward=accelerator.log) if main else None
    bar = progress_bar(
        total=total,
        initial=step,
        desc="finetune" if config.model.method == "classifier" else "pretrain",
        unit="step",
        enabled=main and progress,
    )
    record = RankRecord.open(run_dir, accelerator)
    if record is not None:
        record.note(
            start=step, world=accelerator.num_processes, weights=weights_digest(accelerator.unwrap_model(model))
        )
    sums: dict[str, torch.Tensor] = {}
    count, last, tick, stopped = 0, {}, time.perf_counter(), False
    try:
        while step < total:
            batches_this_epoch = 0
            for batch in loader:
                batches_this_epoch += 1
                if record is not None:
                    record.note(
                        step=step,
                        epoch=batch.epoch,
                        loader_step=batch.step,
                        keys=batch.keys,
                        sample=batch.sample.tolist(),
                        indices=batch.indices.tolist(),
                        shape=list(batch.video.shape),
                    )
                with accelerator.accumulate(model):
                    _set_lr(optimizer, lr_at(step, total, peak, opt.warmup_steps, milestones, opt.gamma))
                    out = model(batch.video.to(accelerator.device, non_blocking=True), batch)
                    accelerator.backward(out["loss"])
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                for key, value in out.items():  # summed on the device: no sync per step
                    sums[key] = sums.get(key, 0.0) + value.detach().float()
                count += 1
                if not accelerator.sync_gradients:
                    continue
                step += 1
                if record is not None:
                    record.note(after_step=step, weights=weights_digest(accelerator.unwrap_model(model)))
                if step % run.log_every == 0 or step == total:
                    means = accelerator.reduce(torch.stack([sums[k] / count for k in sorted(sums)]), "mean")
                    last = dict(zip(sorted(sums), means.tolist()))
                    now = time.perf_counter()
                    last.update(
                        lr=optimizer.param_groups[0]["lr"],
                        epoch=loader.epoch,
                        clips_per_s=count * len(batch) * accelerator.num_processes / (now - tick),
                    )
                    sums, count, tick = {}, 0, now
                    if main:
                        book.log(step, last)
                        bar.set_postfix(
                            {k: f"{v:.3f}" for k, v in last.items() if k.startswith("loss") or k.endswith("acc")}
                        )
                bar.update(1)  # after the postfix: a progress line shows this step's losses
                if should_stop is not None and polls_stop(step, total, accelerator.num_processes, run.log_every):
                    stopped = _anyone(should_stop(), accelerator)
                if step % run.checkpoint_every == 0 or step == total or stopped:
                    _save(run_dir, step, model, optimizer, loader, config, accelerator)
                if step >= total or stopped:
                    break
            if stopped:
                break
            if batches_this_epoch == 0:
                raise RuntimeError(
                    f"an epoch of {config.data.shards} gave no batch: every sample was dropped "
                    f"({loader.dropped[:3]} ...)"
                )
    finally:
        bar.close()
        if record is not None:
            record.close()
        if book is not None:
            book.close()
    if main and (run_dir / "metrics.jsonl").exists():
        plot_curves(run_dir / "metrics.jsonl", run_dir / "curves.png")
    accelerator.end_training()
    return Outcome(step, total, stopped, last)


def polls_stop(step: int, total: int, processes: int, every: int) -> bool:
    """Whether the ranks agree on a stop after ``step``: every step alone; with several processes
    every ``every`` steps (``run.log_every``, where the metrics' reduce already waits for the GPU) and
    at the last, the same steps on every rank. The agreement is a collective that waits for the GPU's
    queued work: polled every step, it would serialise that work with the next batch's preparation."""
    return processes == 1 or step % every == 0 or step == total


def _anyone(flag: bool, accelerator) -> bool:
    """True on every process when it is True on any (the signal may reach them at different steps)."""
    if accelerator.num_processes == 1:
        return flag
    return bool(accelerator.reduce(torch.tensor([int(flag)], device=accelerator.device), "sum").item())


def _precision(choice: str) -> str:
    if choice != "auto":
        return choice
    return "bf16" if torch_device() == "cuda" and torch.cuda.is_bf16_supported() else "no"


def build_loader(config: Config, device: str = "cpu", rank: int = 0, world: int = 1) -> VideoLoader:
    """The training loader a config describes: its task's plan, augmentation and batch size."""
    augment = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.data.augment.items()})
    return VideoLoader(
        config.data.shards,
        plan=PLAN_OF[config.model.method],
        plan_options=config.data.plan_options,
        augment=augment,
        batch_size=config.data.batch_size,
        device=device,
        rank=rank,
        world=world,
        seed=config.run.seed,
        num_threads=config.data.num_threads,
        decoder=config.data.decoder,
    )


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _save(run_dir: Path, step: int, model, optimizer, loader: VideoLoader, config: Config, accelerator) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state = {
            "step": step,
            "world": accelerator.num_processes,
            "loader": loader.state_dict(),
            "model": accelerator.unwrap_model(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
            "config": config.to_dict(),
        }
        if accelerator.scaler is not None:  # fp16's loss scale: without it a resumed run is not the same run
            state["scaler"] = accelerator.scaler.state_dict()
        checkpoint.save(run_dir, state, keep=config.run.keep_checkpoints)
    accelerator.wait_for_everyone()


def _restore(run_dir: Path, model, optimizer, loader: VideoLoader, world: int, config: Config, scaler=None) -> int:
    path = checkpoint.latest(run_dir)
    if path is None:
        return 0  # nothing saved yet: --resume on a fresh folder starts from the beginning
    state = read_checkpoint(path)
    if state["world"] != world:
        raise ValueError(
            f"{path} was written by {state['world']} processes, this run has {world}: "
            "the data order would not continue where it stopped"
        )
    changed = _changed_fields(state["config"], config.to_dict())
    if changed:  # allowed (e.g. more steps), but a resumed run with other settings is not the same run
        log.warning("resuming %s with a config that differs in %s", path, ", ".join(changed))
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    loader.load_state_dict(state["loader"])
    torch.set_rng_state(state["rng"]["torch"])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    log.info("resumed from %s at step %s", path, state["step"])
    return state["step"]


def _changed_fields(saved: dict, current: dict) -> list[str]:
    return [
        f"{section}.{key}"
        for section in current
        for key in current[section]
        if saved.get(section, {}).get(key) != current[section][key]
    ]


def _write_run_record(run_dir: Path, config: Config, resume: bool, accelerator, launch: dict) -> None:
    """run.json: what ran, from which code, where; every start (resumes, requeues) adds a launch."""
    import accelerate

    from pipeline.extras import optional_import

    dali = optional_import("nvidia.dali", "DALI")

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "run.json"
    record = json.loads(path.read_text()) if path.exists() else {"config": config.to_dict(), "launches": []}
    record["launches"].append(
        {
            "command": sys.argv,
            "resume": resume,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": socket.gethostname(),
            "processes": accelerator.num_processes,
            "device": str(accelerator.device),
            "mixed_precision": accelerator.mixed_precision,
            "code": _code_version(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "accelerate": accelerate.__version__,
            "dali": dali.__version__ if dali else None,  # the CPU path runs without it
            "env": {
                k: v
                for k, v in os.environ.items()
                if k.startswith(("SLURM_JOB", "SLURM_NNODES", "SLURM_NTASKS"))
                or k in ("CUDA_VISIBLE_DEVICES", "MASTER_ADDR", "WORLD_SIZE")
            },
            **launch,
        }
    )
    atomic_write_text(path, json.dumps(record, indent=1))


def _code_version() -> str:
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
