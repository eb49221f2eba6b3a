"""Pretraining configs: TOML files, read into one frozen dataclass, overridable from the command line.

    [data]   shards, plan options, augmentation, per-process batch (videos per step), test clips
    [model]  method (speednet | rspnet | classifier: fine-tuning), backbone and its options, task options
    [optim]  SGD with momentum and weight decay; lr = lr * global_batch / lr_batch (linear scaling),
             linear warmup then cosine decay to zero (or steps of gamma at milestone epochs); epochs
             or max_steps; gradient accumulation
    [run]    seed, precision, how often to log and checkpoint
    [variants] optional: named lists of overrides the file offers (``load(..., variant="paper")``)

The shipped configs live in ``jobs/pretrain/configs/`` and are named without the suffix (``tiny_speednet``);
any other path works too. ``--set optim.lr=0.05 --set data.shards=/data/k400/train`` overrides a
field (values parse as TOML, falling back to a plain string).
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class DataConfig:
    shards: str = ""
    batch_size: int = 8  # videos per process per step (SpeedNet: 2 clips each, RSPNet: 3)
    plan_options: dict = field(default_factory=dict)  # keywords of the task's plan (T, speeds, ...)
    augment: dict = field(default_factory=dict)  # fields of pipeline.augment.AugmentConfig
    num_threads: int = 0  # decoding threads (DALI) or worker processes (the CPU path); 0: 8 on NVDEC, else 2
    decoder: str = "auto"  # pipeline.loader.DECODERS: DALI on a GPU and PyAV on a CPU host, or either one
    test_clips: int = 10  # fine-tuning: evenly spaced clips per test video, their scores averaged


@dataclass(frozen=True)
class ModelConfig:
    method: str = "rspnet"
    backbone: str = "r3d18"
    backbone_options: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)  # models.rspnet.RSPNet keywords (motion, lam, ...)
    # A checkpoint whose backbone weights the run starts from (e.g. a SpeedNet's, for RSPNet); "" = random
    init: str = ""


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 0.1
    lr_batch: int = 64  # the global batch at which ``lr`` applies
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = 200
    max_steps: int = 0  # optimiser steps; 0: epochs decide
    warmup_steps: int = 0
    grad_accum: int = 1
    milestones: list = field(default_factory=list)  # epochs; empty: cosine decay, else lr *= gamma at each
    gamma: float = 0.1


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0
    precision: str = "auto"  # auto: bf16 on a GPU that has it, fp32 on CPU; or no | bf16 | fp16
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 2


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "run": RunConfig}


def resolve_path(name_or_path: str, config_dir: Path = CONFIG_DIR) -> Path:
    """A config file: an existing path, or the name of a config shipped in ``config_dir``."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = Path(config_dir) / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    known = ", ".join(sorted(p.stem for p in Path(config_dir).glob("*.toml")))
    raise ValueError(f"no config {name_or_path!r}: not a file, nor a shipped config ({known})")


def from_dict(raw: dict) -> Config:
    """A Config from nested dicts; unknown sections or fields are errors, not silently ignored."""
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown config sections {sorted(unknown)}; known: {sorted(SECTIONS)}")
    parts = {}
    for name, cls in SECTIONS.items():
        values = raw.get(name, {})
        fields = {f.name for f in dataclasses.fields(cls)}
        bad = set(values) - fields
        if bad:
            raise ValueError(f"unknown fields in [{name}]: {sorted(bad)}; known: {sorted(fields)}")
        for key, value in values.items():
            check_type(f"{name}.{key}", value, typing.get_type_hints(cls)[key])
        parts[name] = cls(**values)
    from pipeline.augment import AugmentConfig

    augment_types = typing.get_type_hints(AugmentConfig)
    for key, value in parts["data"].augment.items():
        if key in augment_types:  # an unknown key is AugmentConfig's own error, when the loader builds it
            check_type(f"data.augment.{key}", value, augment_types[key])
    config = Config(**parts)
    _check_tasks(config)
    return config


_TYPE_NAMES = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    dict: "a table",
    list: "a list",
}


def check_type(name: str, value, expected) -> None:
    """Raise one line naming the field when a TOML value does not fit its dataclass annotation.
    Read time is where a wrong type is still the user's words (``--set optim.lr=abc``), not a
    ``TypeError`` deep inside the first step. ints pass for floats; bools pass for nothing else."""
    origin = typing.get_origin(expected) or expected
    if origin is tuple:  # fixed-length tuples of numbers (AugmentConfig): TOML gives a list
        items = typing.get_args(expected)
        if not isinstance(value, list | tuple) or len(value) != len(items):
            raise ValueError(f"{name}={value!r}: expected a list of {len(items)} values")
        for i, (item, kind) in enumerate(zip(value, items)):
            check_type(f"{name}[{i}]", item, kind)
        return
    fits = isinstance(value, origin) and (origin is bool or not isinstance(value, bool))
    if origin is float and isinstance(value, int) and not isinstance(value, bool):
        fits = True
    if not fits:
        got = "a decimal number" if isinstance(value, float) else _TYPE_NAMES.get(type(value), type(value).__name__)
        raise ValueError(f"{name}={value!r} is {got}, but the field takes {_TYPE_NAMES.get(origin, origin.__name__)}")


def _check_tasks(config: Config) -> None:
    """Refuse combinations that would run but train the wrong thing."""
    model, plan = config.model, config.data.plan_options
    from pipeline.loader import DECODERS  # light: DALI is imported only when its path is built

    if config.data.decoder not in DECODERS:
        raise ValueError(f"data.decoder={config.data.decoder!r}: choose one of {', '.join(DECODERS)}")
    if model.method == "rspnet" and model.options.get("motion", "rsp") == "rsp" and plan.get("mode", "rsp") != "rsp":
        raise ValueError(
            f"data.plan_options.mode={plan['mode']!r} draws each clip's speed on its own, which gives RSP "
            "wrong labels: use mode 'rsp' with model.options.motion 'rsp'"
        )


def load(
    name_or_path: str, overrides: list[str] = (), *, variant: str | None = None, config_dir: Path = CONFIG_DIR
) -> Config:
    """The config file, then its ``[variants]`` entry ``variant`` (a list of overrides the file offers,
    such as a paper's stated values where the released code differs), then ``overrides``."""
    with open(resolve_path(name_or_path, config_dir), "rb") as f:
        raw = tomllib.load(f)
    variants = raw.pop("variants", {})
    if variant is not None:
        if variant not in variants:
            offered = ", ".join(sorted(variants)) or "none"
            raise ValueError(f"config {name_or_path!r} has no variant {variant!r} (it offers: {offered})")
        overrides = [*variants[variant], *overrides]
    for item in overrides:
        apply_override(raw, item)
    return from_dict(raw)


def add_set_option(parser, example: str = "optim.lr=0.05") -> None:
    """``--set SECTION.FIELD=VALUE`` (repeatable) on a command that reads a config, into ``args.overrides``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help=f"override a config field (repeatable), e.g. --set {example}",
    )


def apply_override(raw: dict, item: str) -> None:
    """``section.field[.key]=value`` into ``raw``; the value parses as TOML, else stays a string."""
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) < 2:
        raise ValueError(f"override {item!r} is not section.field=value")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
