"""The shard job run end to end (jobs/shard/run.py and its command): bad inputs fail with reasons and
the rest shard, what each stored sample is, reruns, --overwrite, CLI errors, resume after a kill,
Ctrl-C, a decoder crash, and the shard size target."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from jobs.shard.__main__ import main
from pipeline.shard_format import index_path
from tests.support import media
from tests.support.paths import REPO
from tests.support.shards import read_split


def test_bad_inputs_fail_with_reasons_and_the_rest_shard(kinetics, sharded):
    manifest, samples = read_split(sharded / "train")
    reasons = {f["key"]: f["reason"] for f in manifest["failed"]}
    for stem, fx in kinetics["fixtures"].items():
        if fx.expect == "ok":
            assert stem in samples, (fx.kind, reasons.get(stem))
        else:
            assert stem in reasons and stem not in samples, fx.kind
    words = {
        "empty": "empty file",
        "not_a_video": "not a readable video",
        "audio_only": "no video stream",
        "too_short": "too short",
        "truncated": "not a readable video",
        "corrupt": "corrupt",
        "corrupt_silent": "concealed damage",
        "truncated_faststart": "truncated",
    }
    for stem, fx in kinetics["fixtures"].items():
        if fx.kind in words:
            assert words[fx.kind] in reasons[stem], (fx.kind, reasons[stem])
    assert [m["key"] for m in manifest["missing"]] == ["absent_id00_000005_000015"]
    assert any("duplicate" in r for r in reasons.values())


def test_normalised_samples(kinetics, sharded, tmp_path):
    import av

    _, samples = read_split(sharded / "train")
    by_kind = {fx.kind: samples[stem] for stem, fx in kinetics["fixtures"].items() if fx.expect == "ok"}
    assert by_kind["fps60"][0].frames == 50  # 2 s at 60 fps -> 50 frames at 25 fps
    assert by_kind["vfr"][0].frames == round(by_kind["vfr"][0].source.duration * 25)
    assert (by_kind["rotated"][0].width, by_kind["rotated"][0].height) == (96, 128)  # rotation applied
    assert by_kind["odd_size"][0].width % 2 == 0 and by_kind["odd_size"][0].height % 2 == 0
    assert by_kind["ten_bit"][0].source.pix_fmt == "yuv420p10le"
    assert by_kind["hevc"][0].source.codec == "hevc"
    for kind, (meta, video) in by_kind.items():  # every stored stream: 8-bit 4:2:0, 25 fps, exact count
        path = tmp_path / f"{kind}.{meta.container}"
        path.write_bytes(video)
        with av.open(str(path)) as c:
            assert [s.type for s in c.streams] == ["video"], kind  # audio dropped
            frames = list(c.decode(video=0))
            assert len(frames) == meta.frames and frames[0].format.name == "yuv420p", kind
            assert [f.pts * f.time_base for f in frames[:3]] == [0, Fraction(1, 25), Fraction(2, 25)], kind


def test_vfr_resampling_picks_the_frame_shown_at_each_tick(kinetics, sharded, tmp_path):
    """The vfr fixture draws its frame number in the picture: read which source frame each tick shows."""
    import av

    _, samples = read_split(sharded / "train")
    fx = next(fx for fx in kinetics["fixtures"].values() if fx.kind == "vfr")
    meta, video = samples[fx.path.stem]
    (tmp_path / "v.mp4").write_bytes(video)
    with av.open(str(tmp_path / "v.mp4")) as c:
        shown = [media.read_frame_index(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    pts = np.array(fx.meta["pts_ms"]) / 1000
    # FFmpeg's fps filter (round=near): tick t shows the source frame whose time is nearest t.
    expected = [int(np.argmin(np.abs(pts - t / 25))) for t in range(meta.frames)]
    mismatches = sum(a != b for a, b in zip(shown, expected))
    assert len(shown) == len(expected) and mismatches <= 2, (shown, expected)


def test_dali_decodes_the_shards_on_cpu(sharded):
    pytest.importorskip("nvidia.dali")
    from nvidia.dali import fn, pipeline_def

    manifest, samples = read_split(sharded / "val")
    tars = [str(sharded / "val" / s["name"]) for s in manifest["shards"]]

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def decode():
        video, meta = fn.readers.webdataset(
            paths=tars,
            index_paths=[str(index_path(Path(t))) for t in tars],
            ext=["mp4", "json"],
            missing_component_behavior="error",
        )
        return fn.decoders.video(video, device="cpu", frames=[0, 7, 31]), meta

    pipe = decode()
    pipe.build()
    for _ in range(manifest["ok"]):
        frames, meta = pipe.run()
        meta = json.loads(np.array(meta[0]).tobytes())
        assert np.array(frames[0]).shape == (3, meta["height"], meta["width"], 3)


def test_rerun_is_a_no_op_and_changed_settings_are_refused(kinetics, sharded, capsys):
    before = {p: p.stat().st_mtime_ns for p in (sharded / "train").glob("*.tar")}
    args = [
        "kinetics",
        "--root",
        str(kinetics["root"]),
        "--out",
        str(sharded),
        "--workers",
        "2",
        "--videos-per-shard",
        "5",
        "--no-progress",
    ]
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in (sharded / "train").glob("*.tar")} == before
    assert main(args + ["--codec", "h264"]) == 2
    assert "started with other settings" in capsys.readouterr().err


def test_overwrite_starts_over_with_new_settings_and_leaves_nothing_stale(resumable, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(resumable["reference"], out)  # a finished job: VP9 at 336 px, 2 videos a shard
    (out / "notes.txt").write_text("the user's own file")
    ref_manifest, ref_samples = read_split(out / "train")
    assert not ref_manifest["failed"] and not ref_manifest["missing"]
    new = [
        "kinetics",
        "--root",
        str(resumable["root"]),
        "--out",
        str(out),
        "--splits",
        "train",
        "--workers",
        "1",
        "--videos-per-shard",
        "5",
        "--codec",
        "mjpeg",
        "--short-side",
        "32",
        "--no-progress",
    ]
    assert main(new) == 2  # other settings are refused without --overwrite...
    assert main(new + ["--overwrite"]) == 0  # ...and start over with it

    manifest, samples = read_split(out / "train")
    assert manifest["settings"]["videos_per_shard"] == 5
    encode = manifest["settings"]["settings"]["encode"]
    assert (encode["codec"], encode["short_side"]) == ("mjpeg", 32)
    n = len(ref_samples)
    assert [s["samples"] for s in manifest["shards"]] == [5] * (n // 5) + [n % 5] * (n % 5 > 0)
    assert samples.keys() == ref_samples.keys()  # every video again, each in the new encoding
    for meta, video in samples.values():
        assert (meta.codec, meta.container, min(meta.width, meta.height)) == ("mjpeg", "mkv", 32)
        assert video[:4] == b"\x1a\x45\xdf\xa3"  # Matroska's EBML magic, not the old VP9 mp4
    # Nothing stale: exactly the new tars, their indexes, the manifest and the new assignment's records.
    names = [s["name"] for s in manifest["shards"]]
    assert sorted(p.name for p in (out / "train").iterdir()) == sorted(
        [".shard-job", "manifest.json", *names, *(index_path(Path(n)).name for n in names)]
    )
    assert sorted(p.name for p in (out / "train" / ".shard-job").iterdir()) == ["assignment.json", "done"]
    assert sorted(p.name for p in (out / "train" / ".shard-job" / "done").iterdir()) == [
        f"{i:06d}.json" for i in range(len(names))
    ]
    assert (out / "notes.txt").read_text() == "the user's own file"  # only the named splits are cleared


def test_cli_errors_are_one_line(tmp_path):
    for args, text in [
        (["kinetics", "--root", str(tmp_path / "nope"), "--out", str(tmp_path)], "not a folder"),
        (["kinetics", "--root", str(tmp_path), "--out", str(tmp_path / "o")], "annotations"),
        (["kinetics", "--root", str(tmp_path), "--out", "o", "--shard-size", "big"], "not a size"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "jobs.shard", *args], capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 2 and text in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    help_ = subprocess.run([sys.executable, "-m", "jobs.shard", "--help"], capture_output=True, text=True, cwd=REPO)
    assert help_.returncode == 0 and "--shard-size" in help_.stdout


# --- killed and resumed -----------------------------------------------------------------------


def _start(root: Path, out: Path, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.shard", "kinetics", "--root", str(root), "--out", str(out), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_done_records(out: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    done = out / "train" / ".shard-job" / "done"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if done.is_dir() and len(list(done.glob("*.json"))) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"job did not write {n} shards in time: {proc.communicate()}")


def _assert_visible_tars_complete(split_dir: Path) -> None:
    for tar_path in split_dir.glob("*.tar"):
        with tarfile.open(tar_path) as tar:
            names = tar.getnames()
        assert index_path(tar_path).read_text().startswith(f"v1.2 {len(names) // 2}\n")


def test_killed_at_any_moment_then_resumed_loses_and_duplicates_nothing(resumable, tmp_path):
    out = tmp_path / "out"
    for kill_after in (1, 3):  # kill -9 the whole process group twice, at different points
        proc = _start(resumable["root"], out, resumable["args"])
        _wait_for_done_records(out, kill_after, proc)
        time.sleep(0.3)  # land somewhere inside the next shard
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _assert_visible_tars_complete(out / "train")
    assert main(["kinetics", "--root", str(resumable["root"]), "--out", str(out), *resumable["args"]]) == 0
    manifest, samples = read_split(out / "train")
    ref_manifest, ref_samples = read_split(resumable["reference"] / "train")
    assert manifest["ok"] == ref_manifest["ok"] and set(samples) == set(ref_samples)
    assert [s["name"] for s in manifest["shards"]] == [s["name"] for s in ref_manifest["shards"]]
    assert not list((out / "train").rglob("*.partial"))  # tars, indexes and done records alike
    for key, (meta, video) in samples.items():  # same bytes as a run that was never killed
        assert ref_samples[key][0] == meta and ref_samples[key][1] == video


def test_ctrl_c_stops_cleanly(resumable, tmp_path):
    out = tmp_path / "out"
    proc = _start(resumable["root"], out, resumable["args"])
    _wait_for_done_records(out, 1, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends to the foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "run the same command again to resume" in err, (proc.returncode, err)
    assert not list((out / "train").glob("*.partial")), list((out / "train").iterdir())
    _assert_visible_tars_complete(out / "train")


# --- a decoder crash fails its file only --------------------------------------------------------


def _children(pid: int) -> set[int]:
    """The direct children of ``pid`` (the job's pool workers), from /proc."""
    kids = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids.update(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:  # a thread that just ended
            pass
    return kids


def _segfault_whoever_opens(path: str, stop: threading.Event, crashed: set[int]) -> None:
    """Be a decoder that crashes on ``path``: SIGSEGV each child process the moment it holds the file
    open, every time, as a deterministic decoder bug would (the retry of the file alone crashes too)."""
    while not stop.is_set():
        for pid in _children(os.getpid()):
            try:
                if any(os.readlink(fd) == path for fd in Path(f"/proc/{pid}/fd").iterdir()):
                    os.kill(pid, signal.SIGSEGV)
                    crashed.add(pid)
            except (FileNotFoundError, ProcessLookupError):  # it exited meanwhile
                pass
        time.sleep(0.002)


def test_a_decoder_crash_fails_that_file_only_and_the_rest_shard(resumable, tmp_path):
    if not list(Path(f"/proc/{os.getpid()}/task").glob("*/children")):
        pytest.skip("no /proc/PID/task/TID/children on this kernel")
    ref_manifest, ref_samples = read_split(resumable["reference"] / "train")
    hostile_key = sorted(ref_samples)[0]
    hostile_path = ref_samples[hostile_key][0].source.path
    stop, crashed = threading.Event(), set()
    watcher = threading.Thread(target=_segfault_whoever_opens, args=(os.path.realpath(hostile_path), stop, crashed))
    core = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, core[1]))  # inherited by the workers: no core files
    watcher.start()
    try:  # two workers, so other videos are in flight when the pool breaks
        rc = main(
            [
                "kinetics",
                "--root",
                str(resumable["root"]),
                "--out",
                str(tmp_path),
                "--splits",
                "train",
                "--workers",
                "2",
                "--videos-per-shard",
                "2",
                "--no-progress",
            ]
        )
    finally:
        stop.set()
        watcher.join()
        resource.setrlimit(resource.RLIMIT_CORE, core)
    assert rc == 0
    assert len(crashed) == 2  # a worker of the pool, then the process that retried the file alone
    manifest, samples = read_split(tmp_path / "train")
    assert manifest["failed"] == [
        {"key": hostile_key, "path": hostile_path, "reason": "the decoder crashed on this file"}
    ]
    assert manifest["ok"] == ref_manifest["ok"] - 1
    # Every other video, including those in flight beside the crash, as a run without the crash wrote it.
    assert samples == {k: v for k, v in ref_samples.items() if k != hostile_key}


def test_synthetic_samples_agree_with_independent_decoder(sharded, ffmpeg, tmp_path):
    from tests.support.media import ffmpeg_pts

    _, samples = read_split(sharded / "val")
    for key, (meta, video) in samples.items():
        stored = tmp_path / f"{key}.mp4"
        stored.write_bytes(video)
        pts = ffmpeg_pts(ffmpeg, stored)
        assert len(pts) == meta.frames
        np.testing.assert_allclose(pts, np.arange(meta.frames) / 25, atol=1e-3)
        src = ffmpeg_pts(ffmpeg, Path(meta.source.path))
        assert len(src) == meta.source.frames and abs(meta.frames - meta.source.duration * 25) <= 1


def test_shard_size_target_gives_tars_of_about_that_size(resumable, tmp_path):
    _, ref = read_split(resumable["reference"] / "train")
    mean = np.mean([len(video) + 1536 for _, video in ref.values()])  # + tar headers and metadata
    target = int(5 * mean)
    assert (
        main(
            [
                "kinetics",
                "--root",
                str(resumable["root"]),
                "--out",
                str(tmp_path),
                "--splits",
                "train",
                "--workers",
                "1",
                "--shard-size",
                str(target),
                "--no-progress",
            ]
        )
        == 0
    )
    manifest, _ = read_split(tmp_path / "train")
    sizes = [s["bytes"] for s in manifest["shards"][:-1]]
    assert len(sizes) >= 3 and all(0.5 * target < b < 2 * target for b in sizes), (sizes, target)
