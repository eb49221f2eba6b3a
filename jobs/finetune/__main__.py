"""``python -m jobs.finetune CKPT --data SHARDS``: fine-tune a pretrained backbone for action
recognition, then test it (RSPNet section 4, SpeedNet section 5.4.1).

    python -m jobs.finetune runs/r3d18/checkpoints/step-00100000.pt --data /data/ucf101-fold1 \\
        --config rspnet_r3d18_ucf101
    python -m jobs.finetune --init none --data /data/ucf101-fold1 --config rspnet_r3d18_ucf101
    python -m jobs.finetune CKPT --data '/data/ucf101-fold{fold}' --folds 1,2,3 --config rspnet_r3d18_ucf101 \\
        --launcher slurm --gpus-per-node 2 --partition gpu --time 720

``--data`` holds the ``train/`` and ``test/`` splits of labelled shards (``just shard ucf101
--fold N``, Kinetics, or any); the classes come from their manifest. ``--folds`` runs each official
split (``{fold}`` in ``--data`` names its shards) into ``RUN/fold-N/`` and reports each and their
mean. The backbone starts from the checkpoint (or at random with ``none``), the linear head always at
random; the pretext heads are dropped. Training is the pretraining loop itself
(``jobs.pretrain.loop``) on ``model.method = "classifier"``, so bf16, gradient accumulation, exact
resume, the logs and the launchers are the same. Then every test video is scored from the config's
``test_clips`` evenly spaced clips (centre crop): top-1 and top-5 at clip and video level, written to
``RUN/results.json`` and printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from jobs.finetune.launch import FinetuneJob
from jobs.finetune.results import fold_dir, summarise, table
from jobs.finetune.run import finetune
from jobs.finetune.setup import classes_of, finetune_config
from jobs.pretrain import launch, trackers
from jobs.pretrain.config import Config, add_set_option
from pipeline import logs
from pipeline.device import add_device_option, apply_device_option
from pipeline.help_format import HelpFormatter

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m jobs.finetune",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "init",
        nargs="?",
        help="a pretraining checkpoint, or none for random initialisation (no default: give it here or as --init)",
    )
    p.add_argument(
        "--init", dest="init_option", metavar="CKPT|none", help="the same as the positional argument (no default)"
    )
    p.add_argument("--data", required=True, help="a folder of labelled shard splits (train/, test/); {fold} per fold")
    p.add_argument(
        "--folds", help="official splits to run, e.g. 1,2,3: each into RUN/fold-N, then their mean (default: one run)"
    )
    p.add_argument("--config", default="tiny_finetune", help="a config file or a shipped one (jobs/finetune/configs)")
    p.add_argument(
        "--variant", help="a variant the config offers, e.g. paper (the paper's stated lr and epochs) (default: none)"
    )
    add_set_option(p, "optim.lr=0.01")
    p.add_argument("--run-dir", type=Path, help="where logs, checkpoints and results go (default runs/finetune-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir (finished folds are kept)")
    p.add_argument("--test-clips", type=int, help="clips per test video, averaged (default: the config's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (nor progress lines in a log file)")
    p.add_argument("--json", action="store_true", help="print the results as JSON (and nothing else on stdout)")
    trackers.add_argument(p)
    launch.add_arguments(p)
    add_device_option(p)
    args = p.parse_args(argv)
    if (args.init is None) == (args.init_option is None):
        p.error("give the starting point once: a checkpoint, or none (positional or --init)")
    args.init = args.init or args.init_option
    if args.test_clips is not None:
        args.overrides.append(f"data.test_clips={args.test_clips}")
    return args


def plan_runs(args: argparse.Namespace, run_dir: Path) -> list[tuple[int | None, Path, Path, Config]]:
    """(fold, data, run folder, config) of every run, all checked before any of them trains."""
    folds = _parse_folds(args.folds)
    if folds and "{fold}" not in args.data:
        raise ValueError(f"--folds needs {{fold}} in --data to find each split's shards (got {args.data})")
    if not folds and "{fold}" in args.data:
        raise ValueError("--data has {fold} but no --folds says which")
    init = None if args.init == "none" else Path(args.init)
    runs = []
    for fold in folds or [None]:
        data = Path(args.data.format(fold=fold) if fold else args.data)
        classes = classes_of(data)
        _check_fold(data, fold)
        config = finetune_config(args.config, args.overrides, init, data, len(classes), variant=args.variant)
        runs.append((fold, data, fold_dir(run_dir, fold) if fold else run_dir, config))
    return runs


def _parse_folds(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        folds = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--folds {text!r} is not a list of split numbers such as 1,2,3") from None
    if len(set(folds)) != len(folds) or min(folds) < 1:
        raise ValueError(f"--folds {text!r}: split numbers are distinct and start at 1")
    return folds


def _check_fold(data: Path, fold: int | None) -> None:
    """The shard job records the split number it read; shards of one fold must not stand for another."""
    manifest = json.loads((data / "train" / "manifest.json").read_text())
    recorded = manifest.get("settings", {}).get("fold")
    if fold is not None and recorded is not None and recorded != fold:
        raise ValueError(f"{data} holds split {recorded} (its manifest), not split {fold}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    apply_device_option(args)
    logs.configure(quiet=args.json)
    run_dir = args.run_dir or Path("runs") / f"finetune-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        args.report_to = trackers.from_arguments(args.report_to)
        if args.resume and args.run_dir is None:
            raise ValueError("--resume needs --run-dir, the folder of the run to continue")
        runs = plan_runs(args, run_dir)
        folds = [fold for fold, *_ in runs] if args.folds else None
        if args.launcher != "none":
            return _submit(args, runs, run_dir, folds)
        for fold, data, fold_run, config in runs:
            done = fold_run / "results.json"
            if args.resume and done.is_file():
                log.info("%s: finished before, kept (%s)", f"split {fold}" if fold else "the run", done)
                continue
            log.info("run folder: %s", fold_run)
            finetune(
                config,
                fold_run,
                data / "test",
                describe=_describe(args, data, fold),
                resume=args.resume,
                progress=not args.no_progress,
                report_to=args.report_to,
            )
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        log.error("%s", error)
        return 2
    except KeyboardInterrupt:
        log.warning(
            "interrupted: the newest checkpoints under %s are whole; continue with --run-dir %s --resume",
            run_dir,
            run_dir,
        )
        return 130
    _print(args, summarise(run_dir, folds) if folds else json.loads((run_dir / "results.json").read_text()), run_dir)
    return 0


def _describe(args: argparse.Namespace, data: Path, fold: int | None) -> dict:
    return {"init": args.init, "data": str(data), "fold": fold, "config": args.config, "variant": args.variant}


def _submit(args: argparse.Namespace, runs: list, run_dir: Path, folds: list[int] | None) -> int:
    """One job per fold, all at once; each tests itself and adds to RUN/results.json as it ends."""
    summary = (str(run_dir.resolve()), folds) if folds else None
    jobs = [
        launch.submit(
            config,
            fold_run,
            launcher=args.launcher,
            job_type=FinetuneJob,
            report_to=args.report_to,
            progress=not args.no_progress,
            job_options={
                "test_shards": str((data / "test").resolve()),
                "describe": _describe(args, data, fold),
                "summary": summary,
            },
            **launch.resources(args),
        )
        for fold, data, fold_run, config in runs
    ]
    if not args.wait:
        print(f"results: {run_dir / 'results.json'} (written as each job ends)")
        return 0
    failed = sum(launch.wait(job) for job in jobs)
    if failed:
        return 1
    _print(args, json.loads((run_dir / "results.json").read_text()), run_dir)  # the jobs wrote it
    return 0


def _print(args: argparse.Namespace, report: dict, run_dir: Path) -> None:
    if args.json:
        print(json.dumps(report))
        return
    if "folds" in report:
        rows = {f"split {fold}": result for fold, result in report["folds"].items()}
        rows["mean"] = report["mean"]
        first = next(iter(report["folds"].values()))
    else:
        rows, first = {"test": report}, report
    print(f"fine-tuned {args.init} on {args.data} ({first['classes']} classes, {first['steps']} steps): {run_dir}")
    print(table(rows))
    print(f"wrote {run_dir / 'results.json'}")


if __name__ == "__main__":
    sys.exit(main())
