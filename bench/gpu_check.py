"""``python -m bench.gpu_check``: everything only a GPU can show, in one run of under 8 minutes on an
H100/H200, written to one JSON.

Parts (``--parts``; they run in this order, each timed and guarded: an exception, a timeout or a
spent budget is recorded in the part's entry and the next part runs):

- ``tests``: the GPU-marked tests, ``python -m pytest -m gpu`` in a subprocess: passed, failed and
  skipped tests (a skipped GPU test on a GPU machine tested nothing, so skips are listed with why).
- ``parity``: NVDEC against the CPU path: the eval plans of every video (10 clips of 16 frames, the
  112 px centre square, same seed) decoded by ``VideoLoader(decoder="dali", device="gpu")`` and by
  ``decoder="pyav"``; PSNR of every clip on uint8 pixels. Ok: the same plans, and every clip at least
  40 dB (what the CPU path holds against DALI's CPU decoder in tests/pipeline/test_cpu_path.py).
- ``nvdec``: clips/s of the DALI GPU loader (RSPNet's plan and augmentation, 32 videos a batch) over
  about 20 s, while a thread samples the decoder's utilisation with nvidia-smi. Ok: batches came, and
  NVDEC was busy where nvidia-smi reports it.
- ``steps``: one bf16 training step of each paper config, pretraining and fine-tuning, at its per-GPU
  batch of random clips (``bench.train.model_rate``, after one warm-up step): step time and peak
  memory. Ok: every config stepped; an out-of-memory is recorded as such.
- ``faiss``: exact top-10 of 1000 queries among 1M unit vectors of 256 dimensions: FAISS's GPU Flat
  index where FAISS has GPU code, else torch on the GPU (``index.torch_search``), against FAISS's CPU
  Flat index: queries/s of both, how many queries' ids agree (up to tied scores), recall of the GPU's
  answer against the CPU's. Ok: every query agrees.

``parity`` and ``nvdec`` read 6 synthetic videos of 448x336 (the shard job's short side; NVDEC needs
at least 128), 3 s each, sharded by the shard job into a temporary folder.

Each part imports what it needs itself, so a missing or broken package fails that part only; one
whose package is not installed (DALI, FAISS, pytest) is skipped, naming what to install; one not
started because the budget was spent counts as failed. The JSON is
rewritten atomically after every part, so a run cut short keeps what finished (``complete`` says
whether it ran to the end). Without a CUDA device it is ``{"skipped": "<why>"}`` and the exit status
is 0. Exit status: 0 when no part failed (skipped for a missing package is not failing), 1 otherwise,
2 for bad arguments. Last line: ``key=value`` figures, ``na`` for what did not run.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from bench.gpu_machine import UtilisationSampler, environment, no_cuda_reason
from pipeline.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
PARTS = ("tests", "parity", "nvdec", "steps", "faiss")
GPU_EXTRA = "pip install -e '.[gpu]' (CUDA 13; '.[gpu-cu12]' for CUDA 12)"
NEEDS = {  # module -> how to install it, per part
    "tests": {"pytest": "pip install -e '.[dev]'"},
    "parity": {"nvidia.dali": GPU_EXTRA},
    "nvdec": {"nvidia.dali": GPU_EXTRA},
    "steps": {},
    "faiss": {"faiss": GPU_EXTRA},
}
TESTS_TIMEOUT_S = 240
PSNR_FLOOR_DB = 40.0
NVDEC_SECONDS = 20.0
NVDEC_BATCH = 32
VIDEO_SIZE = (448, 336)
FAISS_ROWS, FAISS_DIM, FAISS_QUERIES, FAISS_K = 1_000_000, 256, 1000, 10


# --- pure parts: arguments, parsing, figures -----------------------------------------------------


def parse_parts(text: str) -> list[str]:
    """The named parts in run order; ValueError (one line) for an unknown or empty list."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PARTS]
    if unknown or not names:
        what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "no part named"
        raise ValueError(f"--parts {text!r}: {what}; choose among {','.join(PARTS)}, comma-separated")
    return [part for part in PARTS if part in names]


def clip_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two uint8 clips; inf when identical."""
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def junit_counts(xml_text: str) -> dict:
    """Passed, failed (failures and errors) and skipped tests of a pytest JUnit XML report, with the
    failed tests' names and the skipped ones' reasons."""
    failed, skipped, passed = [], [], 0
    for case in ET.fromstring(xml_text).iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = {child.tag: child for child in case}
        if "failure" in outcome or "error" in outcome:
            failed.append(name)
        elif "skipped" in outcome:
            skipped.append(f"{name}: {outcome['skipped'].get('message', '')}")
        else:
            passed += 1
    return {"passed": passed, "failed": len(failed), "skipped": len(skipped), "failures": failed, "skips": skipped}


def figures(parts: dict[str, dict], ok: bool) -> str:
    """The last line: ``key=value`` figures of every part, ``na`` where a part did not give one."""

    def get(part: str, key: str, fmt: str) -> str:
        value = parts.get(part, {}).get(key)
        return "na" if value is None else format(value, fmt)

    pairs = {
        "tests_passed": get("tests", "passed", "d"),
        "tests_failed": get("tests", "failed", "d"),
        "tests_skipped": get("tests", "skipped", "d"),
        "parity_psnr_min_db": get("parity", "psnr_min_db", ".1f"),
        "parity_psnr_mean_db": get("parity", "psnr_mean_db", ".1f"),
        "nvdec_clips_per_s": get("nvdec", "clips_per_s", ".1f"),
        "nvdec_decoder_util_mean": get("nvdec", "decoder_util_mean", ".1f"),
        "nvdec_decoder_util_max": get("nvdec", "decoder_util_max", ".1f"),
        "steps_ok": get("steps", "stepped", "d"),
        "steps_oom": get("steps", "oom", "d"),
        "steps_slowest_s": get("steps", "slowest_s", ".3f"),
        "faiss_gpu_qps": get("faiss", "gpu_qps", ".0f"),
        "faiss_cpu_qps": get("faiss", "cpu_qps", ".0f"),
        "faiss_recall": get("faiss", "recall", ".4f"),
        "faiss_ids_agree": get("faiss", "ids_agree", "d"),
        "ok": str(ok).lower(),
    }
    return " ".join(f"{k}={v}" for k, v in pairs.items())


def json_safe(value):
    """``value`` with non-finite floats as strings ("inf"): strict JSON has no Infinity or NaN."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def missing_modules(modules) -> list[str]:
    """Which of ``modules`` are not installed (found without importing them)."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # its parent package (nvidia) is absent too
            found = False
        if not found:
            missing.append(name)
    return missing


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Run:
    """What the parts share: the deadline, a temporary folder, and the test shards (made once, on
    first need)."""

    deadline: float  # time.monotonic() by which the whole run should be done
    work: Path
    gpu_uuid: str | None = None  # torch's name for the GPU, to find it in nvidia-smi's list
    shard_seconds: float | None = None
    _shards: Path | None = field(default=None, init=False)
    _shard_error: str | None = field(default=None, init=False)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def shards(self) -> Path:
        """The test shards' split folder; made on the first call (a failure is kept and raised again)."""
        if self._shard_error:
            raise RuntimeError(f"no test shards: {self._shard_error}")
        if self._shards is None:
            start = time.perf_counter()
            try:
                self._shards = make_shards(self.work)
            except Exception as error:
                self._shard_error = f"{type(error).__name__}: {error}"
                raise
            self.shard_seconds = round(time.perf_counter() - start, 1)
        return self._shards


def make_shards(work: Path) -> Path:
    """One synthetic video a class, 448x336, 3 s, rendered and sharded; the split folder."""
    from jobs.shard.__main__ import main as shard
    from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset

    width, height = VIDEO_SIZE
    config = SyntheticConfig(videos_per_class={"train": 1, "val": 0, "test": 0}, width=width, height=height)
    make_kinetics_dataset(work / "kinetics", config)
    log = io.StringIO()
    args = ["kinetics", "--root", str(work / "kinetics"), "--out", str(work / "shards"), "--splits", "train"]
    args += ["--videos-per-shard", "2", "--workers", str(min(6, os.cpu_count() or 1)), "--no-progress"]
    with redirect_stdout(log), redirect_stderr(log):  # its table would bury the summary
        code = shard(args)
    if code != 0:
        said = log.getvalue().strip().splitlines() or [""]
        raise RuntimeError(f"the shard job exited {code}: {said[-1][:300]}")
    return work / "shards" / "train"


def gpu_tests(run: Run) -> dict:
    """The GPU-marked tests in a subprocess, killed (with its children) at the timeout."""
    report = run.work / "gpu-tests.xml"
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
    timeout = max(1.0, min(TESTS_TIMEOUT_S, run.left()))
    code, output = _run_group(command, timeout)
    counts = junit_counts(report.read_text()) if report.exists() else {}
    ok = code == 0 and counts.get("passed", 0) > 0
    result = {"command": " ".join(["python", *command[1:]]), "exit": code, **counts, "ok": ok}
    if code is None:
        result["error"] = f"timed out after {timeout:.0f} s"
    if not ok:
        result["output_tail"] = output[-4000:]
    result["summary"] = (
        f"{counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed, {counts.get('skipped', 0)} skipped"
        + ("" if code is not None else f", timed out after {timeout:.0f} s")
        + ("" if not counts.get("failures") else f": {', '.join(counts['failures'][:3])}")
    )
    return result


def _run_group(command: list[str], timeout: float) -> tuple[int | None, str]:
    """(exit status or None at the timeout, output) of ``command`` in its own process group, which
    is killed whole at the timeout or when this process is interrupted (the tests start workers)."""
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return None, proc.communicate()[0]
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


def _clips(video) -> list[torch.Tensor]:
    """The clips of a batch's video, a tensor (N, ...) or a list of per-sample tensors."""
    return [clip for part in (video if isinstance(video, list) else [video]) for clip in part]


def nvdec_parity(run: Run) -> dict:
    """The eval plans of every test video through NVDEC and through the CPU path: PSNR per clip."""
    from pipeline.augment import AugmentConfig
    from pipeline.loader import VideoLoader

    shards = run.shards()
    options = dict(
        plan="eval",
        augment=AugmentConfig("eval", out=112),
        batch_size=2,
        seed=0,
        shuffle=False,
        normalise_pixels=False,
        num_threads=min(4, os.cpu_count() or 1),
    )
    # the CPU path's worker processes finish before DALI starts its threads
    cpu = [(b.keys, b.indices, _clips(b.video)) for b in VideoLoader(shards, device="cpu", decoder="pyav", **options)]
    gpu = [(b.keys, b.indices, _clips(b.video)) for b in VideoLoader(shards, device="gpu", decoder="dali", **options)]
    same_plans = len(cpu) == len(gpu) and all(
        a[0] == b[0] and torch.equal(a[1], b[1]) for a, b in zip(cpu, gpu, strict=True)
    )
    values = [clip_psnr(x, y.cpu()) for a, b in zip(cpu, gpu) for x, y in zip(a[2], b[2])]
    finite = [v for v in values if math.isfinite(v)]
    least = min(values) if values else None
    result = {
        "videos": len({k for keys, _, _ in cpu for k in keys}),
        "clips": len(values),
        "same_plans": same_plans,
        "identical_clips": len(values) - len(finite),
        "psnr_min_db": least,
        "psnr_mean_db": float(np.mean(finite)) if finite else None,
        "psnr_floor_db": PSNR_FLOOR_DB,
        "ok": same_plans and least is not None and least >= PSNR_FLOOR_DB,
    }
    result["summary"] = (
        f"{len(values)} clips of {result['videos']} videos, PSNR min {least:.1f} dB, mean "
        f"{result['psnr_mean_db'] or math.inf:.1f} dB (floor {PSNR_FLOOR_DB:.0f}), "
        f"{'same plans' if same_plans else 'PLANS DIFFER'}"
        if values
        else "no clips decoded"
    )
    return result


def nvdec_rate(run: Run) -> dict:
    """Clips/s of the DALI GPU loader over ``NVDEC_SECONDS``, with the decoder's utilisation."""
    from bench.loader import long_epoch
    from pipeline.loader import VideoLoader

    shards = run.shards()
    seconds = max(1.0, min(NVDEC_SECONDS, run.left() - 10))
    threads = min(8, os.cpu_count() or 1)
    loader = VideoLoader(
        shards,
        plan="rspnet",
        batch_size=NVDEC_BATCH,
        device="gpu",
        decoder="dali",
        num_threads=threads,
        samples=long_epoch(shards, NVDEC_BATCH, 5000),  # videos repeated: one epoch outlasts the run
    )
    batches = iter(loader)
    next(batches)  # the first batch pays for building the graph
    torch.cuda.synchronize()
    clips = count = 0
    with UtilisationSampler(run.gpu_uuid) as sampler:
        start = time.perf_counter()
        for batch in batches:
            clips, count = clips + len(batch), count + 1
            if time.perf_counter() - start >= seconds:
                break
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    del batches  # ends the epoch's DALI pipeline
    rate = clips / elapsed
    decoder = sampler.decoder
    result = {
        "plan": "rspnet",
        "batch_videos": NVDEC_BATCH,
        "threads": threads,
        "batches": count,
        "clips": clips,
        "timed_s": round(elapsed, 2),
        "clips_per_s": rate,
        "decoder_util_mean": float(np.mean(decoder)) if decoder else None,
        "decoder_util_max": float(max(decoder)) if decoder else None,
        "gpu_util_mean": float(np.mean(sampler.gpu)) if sampler.gpu else None,
        "samples": len(decoder),
        "sampling_problem": sampler.problem,
        "ok": clips > 0 and (not decoder or max(decoder) > 0),
    }
    util = (
        f"decoder utilisation mean {result['decoder_util_mean']:.0f}%, max {result['decoder_util_max']:.0f}%"
        if decoder
        else f"decoder utilisation unknown ({sampler.problem})"
    )
    result["summary"] = f"{rate:.1f} clips/s over {elapsed:.1f} s ({count} batches of {NVDEC_BATCH} videos), {util}"
    return result


def paper_configs() -> list[tuple[str, str, Callable]]:
    """(kind, name, loader of the config) of every paper config, as ``bench.train`` times them:
    pretraining at its batch, fine-tuning on 101 classes at its per-GPU batch."""
    from bench.train import PAPER_CONFIGS
    from jobs.finetune.setup import CONFIG_DIR, load_config
    from jobs.pretrain.config import load

    found = [("pretrain", name, partial(load, name, ["data.shards=unused"])) for name in PAPER_CONFIGS]
    for path in sorted(CONFIG_DIR.glob("*.toml")):
        if not path.stem.startswith("tiny"):
            found.append(("finetune", path.stem, partial(load_config, path.stem, ["model.options.classes=101"])))
    return found


def one_step(config_of: Callable) -> dict:
    """One timed bf16 step (after a warm-up step) of a config at its batch: seconds, peak memory."""
    from bench.train import _random_batch, model_rate

    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    try:
        config = config_of()
        batch = _random_batch(config)
        clips_per_s = model_rate(config, batch, 1, device="cuda", dtype=torch.bfloat16)
        return {
            "clips": len(batch),
            "clip_shape": list(batch.video.shape[1:]),
            "step_s": len(batch) / clips_per_s,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        }
    except torch.cuda.OutOfMemoryError as error:
        return {"oom": True, "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "error": str(error)[:300]}
    except Exception as error:  # one config's failure is its row's, not the part's
        return {"error": f"{type(error).__name__}: {error}"[:500]}
    finally:  # the exception's frames held the model: free it before the next config
        gc.collect()
        torch.cuda.empty_cache()


def paper_steps(run: Run) -> dict:
    """``one_step`` of every paper config, while the budget lasts."""
    rows = []
    for kind, name, config_of in paper_configs():
        row = {"kind": kind, "config": name}
        row.update(one_step(config_of) if run.left() > 0 else {"error": "budget spent before this config"})
        rows.append(row)
    stepped = [r for r in rows if "step_s" in r]
    slowest = max(stepped, key=lambda r: r["step_s"], default=None)
    largest = max(stepped, key=lambda r: r["peak_gib"], default=None)
    oom = sum(bool(r.get("oom")) for r in rows)
    failed = [r["config"] for r in rows if "step_s" not in r and not r.get("oom")]
    result = {
        "configs": rows,
        "stepped": len(stepped),
        "oom": oom,
        "failed": len(failed),
        "slowest_s": slowest["step_s"] if slowest else None,
        "ok": len(stepped) == len(rows),
    }
    result["summary"] = f"{len(stepped)}/{len(rows)} configs stepped, {oom} out of memory, {len(failed)} failed" + (
        f"; slowest {slowest['config']} {slowest['step_s']:.3f} s/step, "
        f"largest peak {largest['peak_gib']:.1f} GiB ({largest['config']})"
        if stepped
        else ""
    )
    return result


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def faiss_search(run: Run) -> dict:
    """Exact top-k on the GPU (FAISS, else torch) against FAISS's CPU Flat index: speed and agreement."""
    from index import faiss_index
    from index.synthetic import clustered_vectors
    from index.torch_search import exact_search

    vectors, generated_s = _timed(clustered_vectors, FAISS_ROWS, FAISS_DIM)
    queries = clustered_vectors(FAISS_QUERIES, FAISS_DIM, draw=1)  # fresh draws of the same clusters
    ids = np.arange(FAISS_ROWS, dtype=np.int64)
    cpu = faiss_index.build(vectors, ids, "Flat", False)
    faiss_index.search(cpu, queries[:10], FAISS_K)  # starts FAISS's threads
    (cpu_scores, cpu_ids), cpu_s = _timed(faiss_index.search, cpu, queries, FAISS_K)
    del cpu
    if faiss_index.gpu_count() > 0:
        from bench.index import _gpu_flat

        method = "FAISS GPU Flat"
        index = _gpu_flat(vectors)
        faiss_index.search(index, queries[:10], FAISS_K)  # the first search pays for kernel set-up
        (scores, found), gpu_s = _timed(faiss_index.search, index, queries, FAISS_K)
        del index
    else:
        method = "torch matmul + topk (FAISS has no GPU code here)"
        on_gpu = torch.from_numpy(vectors).cuda()
        exact_search(queries[:10], on_gpu, ids, FAISS_K)
        (scores, found), gpu_s = _timed(exact_search, queries, on_gpu, ids, FAISS_K)
        del on_gpu
        torch.cuda.empty_cache()
    agree = faiss_index.topk_agree(found, scores, cpu_ids, cpu_scores, tol=1e-5)
    result = {
        "gpu_method": method,
        "faiss_gpus": faiss_index.gpu_count(),
        "rows": FAISS_ROWS,
        "dim": FAISS_DIM,
        "queries": FAISS_QUERIES,
        "k": FAISS_K,
        "generated_s": round(generated_s, 1),
        "gpu_qps": FAISS_QUERIES / gpu_s,
        "cpu_qps": FAISS_QUERIES / cpu_s,
        "ids_agree": int(agree.sum()),
        "ids_identical": int((found == cpu_ids).all(axis=1).sum()),
        "recall": faiss_index.recall_at_k(found, cpu_ids),
        "ok": bool(agree.all()),
    }
    result["summary"] = (
        f"{method}: {result['gpu_qps']:.0f} q/s against FAISS CPU Flat {result['cpu_qps']:.0f} q/s "
        f"({FAISS_ROWS} x {FAISS_DIM}, top-{FAISS_K}); ids agree for {result['ids_agree']}/{FAISS_QUERIES} "
        f"queries, recall {result['recall']:.4f}"
    )
    return result


CHECKS: dict[str, Callable[[Run], dict]] = {
    "tests": gpu_tests,
    "parity": nvdec_parity,
    "nvdec": nvdec_rate,
    "steps": paper_steps,
    "faiss": faiss_search,
}


def run_part(name: str, run: Run) -> dict:
    """One part, timed and guarded: its result with ``status`` ok, failed or skipped."""
    missing = missing_modules(NEEDS[name])
    if missing:
        how = sorted({NEEDS[name][m] for m in missing})
        return {"status": "skipped", "summary": f"{', '.join(missing)} not installed: {'; '.join(how)}", "seconds": 0}
    if run.left() <= 0:
        return {"status": "failed", "summary": "not run: the --budget-s time was spent", "seconds": 0}
    start = time.perf_counter()
    try:
        result = CHECKS[name](run)
        result["status"] = "ok" if result.pop("ok") else "failed"
    except Exception as error:
        oom = isinstance(error, torch.cuda.OutOfMemoryError)
        result = {
            "status": "failed",
            "summary": f"{'out of memory: ' if oom else ''}{type(error).__name__}: {error}".splitlines()[0][:300],
            "error": traceback.format_exc(limit=8)[-4000:],
        }
    finally:
        gc.collect()
        torch.cuda.empty_cache()
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("gpu-check.json"), help="the JSON report (default %(default)s)")
    p.add_argument(
        "--budget-s",
        type=float,
        default=480.0,
        help="seconds the whole run may take; parts past it are not run, "
        "the tests' run is cut at min(240 s, what is left) (default %(default)s)",
    )
    p.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="comma-separated subset, run in the default's order (default %(default)s)",
    )
    args = p.parse_args(argv)
    try:
        parts = parse_parts(args.parts)
        if not args.budget_s > 0:
            raise ValueError(f"--budget-s must be a positive number of seconds, not {args.budget_s}")
        if args.out.is_dir():
            raise ValueError(f"--out {args.out} is a folder; give a file name")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)

    why = no_cuda_reason()
    if why is not None:
        write_report(args.out, {"skipped": why})
        print(f"gpu-check skipped: {why} (wrote {args.out})")
        return 0

    report = {"environment": environment(), "budget_s": args.budget_s, "complete": False, "parts": {}}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        run = Run(started + args.budget_s, Path(work), gpu_uuid=report["environment"]["gpu_uuid"])
        env = report["environment"]
        print(
            f"gpu-check on {env['gpu']} ({env['gpu_memory_gib']} GiB, driver {env['driver']}), torch {env['torch']}, "
            f"DALI {env['dali']}, FAISS {env['faiss']}; parts {','.join(parts)}, budget {args.budget_s:.0f} s",
            flush=True,
        )
        try:
            for name in parts:
                result = run_part(name, run)
                report["parts"][name] = result
                report["test_shards_s"] = run.shard_seconds
                write_report(args.out, report)
                print(f"  {name:7} {result['status']:8} {result['summary']} ({result['seconds']} s)", flush=True)
        except KeyboardInterrupt:
            print(f"interrupted; {args.out} holds the parts that finished", file=sys.stderr)
            return 130
    failed = [name for name, part in report["parts"].items() if part["status"] == "failed"]
    ok = not failed
    report.update(complete=True, ok=ok, seconds=round(time.monotonic() - started, 1))
    write_report(args.out, report)
    verdict = "every part ok" if ok else f"FAILED: {', '.join(failed)}"
    print(f"{verdict} in {report['seconds']:.0f} s; wrote {args.out}")
    print(figures(report["parts"], ok))
    return 0 if ok else 1


def write_report(path: Path, report: dict) -> None:
    plain = json.dumps(json_safe(report), indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
    atomic_write_text(path, plain + "\n")


if __name__ == "__main__":
    sys.exit(main())
