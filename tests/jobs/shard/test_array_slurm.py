"""The shard job as a job array on a real one-node SLURM (started by the ``slurm`` fixture): the same
manifest and shards as a local run, and a rerun after the submitter died."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("nvidia.dali")

from jobs.shard.__main__ import main as shard_main  # noqa: E402
from tests.support.paths import REPO  # noqa: E402

pytestmark = pytest.mark.slurm


def _comparable(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "created"}


def test_shard_job_array_on_slurm_writes_the_same_manifest_as_a_local_run(slurm, tmp_path):
    from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset

    root = tmp_path / "kinetics"
    make_kinetics_dataset(root, SyntheticConfig(videos_per_class={"train": 2, "val": 1, "test": 0}, duration_s=1.5))
    common = ["kinetics", "--root", str(root), "--splits", "train,val", "--videos-per-shard", "3", "--no-progress"]
    assert shard_main(common + ["--out", str(tmp_path / "local"), "--workers", "2"]) == 0
    assert (
        shard_main(
            common
            + [
                "--out",
                str(tmp_path / "slurm"),
                "--workers",
                "1",
                "--executor",
                "slurm",
                "--array-tasks",
                "3",
                "--time",
                "10",
            ]
        )
        == 0
    )
    for split in ("train", "val"):
        local = json.loads((tmp_path / "local" / split / "manifest.json").read_text())
        array = json.loads((tmp_path / "slurm" / split / "manifest.json").read_text())
        assert _comparable(local) == _comparable(array)
        for shard in local["shards"]:
            a = (tmp_path / "local" / split / shard["name"]).read_bytes()
            assert a == (tmp_path / "slurm" / split / shard["name"]).read_bytes()


def _kill_array_task(array_id: str, index: int) -> None:
    """SIGKILL every process of one array task on this (only) node, found by its SLURM environment."""
    import os
    import signal

    mine = {f"SLURM_ARRAY_JOB_ID={array_id}".encode(), f"SLURM_ARRAY_TASK_ID={index}".encode()}
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if mine <= set(environ.read_bytes().split(b"\0")):
                os.kill(int(environ.parent.name), signal.SIGKILL)
        except OSError:  # gone meanwhile
            pass


def test_shard_array_rerun_after_the_submitter_died_collects_done_shards_and_resubmits_only_the_rest(
    slurm, synthetic_kinetics, synthetic_splits, tmp_path, capsys
):
    import os
    import re
    import signal
    import sys

    from submitit.core.utils import DelayedSubmission

    out = tmp_path / "out"
    # synthetic_splits' settings: 3 train and 2 test shards, so the result must equal that local run.
    args = [
        "kinetics",
        "--root",
        str(synthetic_kinetics),
        "--out",
        str(out),
        "--splits",
        "train,test",
        "--short-side",
        "64",
        "--videos-per-shard",
        "8",
        "--workers",
        "1",
        "--executor",
        "slurm",
        "--array-tasks",
        "2",
        "--time",
        "10",
        "--no-progress",
    ]
    slurm_dir = out / ".shard-job" / "slurm"

    def done_records() -> dict[Path, tuple[int, int]]:
        return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*/.shard-job/done/*.json")}

    def submitted(job_id: str) -> list[Path]:  # the task pickles; a one-task "array" is a plain job
        return sorted(
            p for p in slurm_dir.glob(f"{job_id}*/*_submitted.pkl") if re.fullmatch(rf"{job_id}(_\d+)?", p.parent.name)
        )

    # 1. The submitter is killed while its array runs; one of the two tasks dies too (a node lost).
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.shard", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not done_records():
        time.sleep(0.05)
    assert done_records() and proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.name.split("_")[0] for p in slurm_dir.iterdir() if re.fullmatch(r"\d+_\d+", p.name)}  # task folders
    assert len(first) == 1, first
    first = first.pop()
    subprocess.run(["scancel", f"{first}_1"], capture_output=True)  # never starts, were it still pending;
    _kill_array_task(first, 1)  # if running: submitit ignores SLURM's SIGTERM, so die as on a lost node
    while (
        time.time() < deadline
        and subprocess.run(["squeue", "-h", "-j", first], capture_output=True, text=True).stdout.strip()
    ):
        time.sleep(0.2)  # task 0 finishes its shards alone
    assert len(submitted(first)) == 2

    # What the array left, read from the assignments and done records, not from the job's code.
    done_before = done_records()
    assigned = {
        (split, i)
        for split in ("train", "test")
        for i in range(len(json.loads((out / split / ".shard-job" / "assignment.json").read_text())["shards"]))
    }
    finished = {(p.parent.parent.parent.name, int(p.stem)) for p in done_before}
    unfinished = assigned - finished
    assert len(assigned) == 5 and finished and unfinished, (finished, unfinished)

    # 2. The same command again: a new array over the unfinished shards only.
    capsys.readouterr()
    assert shard_main(args) == 0
    line = re.search(r"submitted array (\d+) \((\d+) tasks\)", capsys.readouterr().out)
    second, tasks = line.group(1), int(line.group(2))
    assert second != first and tasks == min(2, len(unfinished))
    pickles = submitted(second)
    resubmitted = [tuple(w) for p in pickles for w in DelayedSubmission.load(p).args[1]]
    assert len(pickles) == tasks and sorted(resubmitted) == sorted(unfinished)
    assert {p: v for p, v in done_records().items() if p in done_before} == done_before  # collected, not redone

    for split in ("train", "test"):
        local = json.loads((synthetic_splits / split / "manifest.json").read_text())
        array = json.loads((out / split / "manifest.json").read_text())
        assert _comparable(local) == _comparable(array)
        for shard in local["shards"]:
            assert (synthetic_splits / split / shard["name"]).read_bytes() == (out / split / shard["name"]).read_bytes()
        assert not list((out / split).rglob("*.partial"))
