"""The shard job end to end: Kinetics as users have it, every bad-input class, resume after a kill."""

from __future__ import annotations

import csv
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
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from jobs.shard.__main__ import main
from pipeline.shard_format import KEY_PATTERN, SampleMeta, index_path, make_key
from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset
from tests import media

REPO = Path(__file__).resolve().parents[1]
SMALL = SyntheticConfig(videos_per_class={"train": 2, "val": 1, "test": 1}, duration_s=2.0, seed=3)


def add_rows(csv_path: Path, rows: list[dict]) -> None:
    with open(csv_path, newline="") as f:
        fields = csv.DictReader(f).fieldnames
    with open(csv_path, "a", newline="") as f:
        csv.DictWriter(f, fields).writerows([{k: r.get(k, "") for k in fields} for r in rows])


def rewrite_csv(csv_path: Path, drop: str) -> None:
    """Drop a column: K700 CSVs have no is_cc, K400 test CSVs no label."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    fields = [k for k in rows[0] if k != drop]
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(scope="module")
def kinetics(tmp_path_factory) -> dict:
    """A Kinetics tree with every quirk users meet: see the comments."""
    root = tmp_path_factory.mktemp("kinetics")
    make_kinetics_dataset(root, SMALL)
    ann = root / "annotations"
    fixtures = media.all_fixtures(root / "train")  # every bad-input class, Kinetics-named
    rows = []
    for fx in fixtures:
        yid, start, end = fx.path.stem.rsplit("_", 2)
        rows.append({"label": "edge case (odd) 'files'", "youtube_id": yid, "time_start": int(start),
                     "time_end": int(end), "split": "train", "is_cc": 0})
    # A row whose file is absent, and a duplicate of an existing row.
    rows.append({"label": "edge case (odd) 'files'", "youtube_id": "absent_id00", "time_start": 5,
                 "time_end": 15, "split": "train", "is_cc": 0})
    rows.append(rows[0])
    # A broken download that the CVDF replacement/ folder replaces by YouTube id.
    shutil.copy(fixtures[0].path, root / "train" / "replacedid0_000000_000002.mp4")
    (root / "train" / "replacedid0_000000_000002.mp4").write_bytes(b"broken download")
    repl = root / "replacement" / "replacement_for_corrupted_k400"
    repl.mkdir(parents=True)
    shutil.copy(fixtures[0].path, repl / "replacedid0_000000_000002.mp4")
    rows.append({"label": "edge case (odd) 'files'", "youtube_id": "replacedid0", "time_start": 0,
                 "time_end": 2, "split": "train", "is_cc": 0})
    add_rows(ann / "train.csv", rows)
    rewrite_csv(ann / "val.csv", drop="is_cc")  # Kinetics-700 header
    rewrite_csv(ann / "test.csv", drop="label")  # a test split without labels
    expect = {fx.path.stem: fx for fx in fixtures}
    return {"root": root, "fixtures": expect, "rows": {s: _count_rows(ann / f"{s}.csv") for s in ("train", "val", "test")}}


def _count_rows(path: Path) -> int:
    with open(path, newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def read_split(split_dir: Path) -> tuple[dict, dict[str, tuple[SampleMeta, bytes]]]:
    """The manifest and every sample of a split, read back from the tars."""
    manifest = json.loads((split_dir / "manifest.json").read_text())
    samples: dict[str, tuple[SampleMeta, bytes]] = {}
    for shard in manifest["shards"]:
        with tarfile.open(split_dir / shard["name"]) as tar:
            members = tar.getmembers()
            names = [m.name for m in members]
            assert len(names) == 2 * shard["samples"]
            for video_member, meta_member in zip(members[0::2], members[1::2]):
                key, ext = video_member.name.split(".", 1)
                assert meta_member.name == f"{key}.json" and key not in samples  # no duplicates
                meta = SampleMeta.from_json_dict(json.loads(tar.extractfile(meta_member).read()))
                assert ext == meta.container
                samples[key] = (meta, tar.extractfile(video_member).read())
    return manifest, samples


@pytest.fixture(scope="module")
def sharded(kinetics, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    rc = main(["kinetics", "--root", str(kinetics["root"]), "--out", str(out), "--workers", "2",
               "--videos-per-shard", "5", "--no-progress"])
    assert rc == 0
    return out


def test_every_csv_row_is_ok_failed_or_missing(kinetics, sharded):
    for split, rows in kinetics["rows"].items():
        manifest, samples = read_split(sharded / split)
        # a duplicate row shares its key with the earlier row that was sharded
        failed = [f["key"] for f in manifest["failed"] if "duplicate" not in f["reason"]]
        duplicates = len(manifest["failed"]) - len(failed)
        missing = [m["key"] for m in manifest["missing"]]
        assert manifest["ok"] == len(samples)
        assert manifest["ok"] + len(failed) + duplicates + len(missing) == rows
        assert not (set(samples) & set(failed)) and not (set(samples) & set(missing))


def test_bad_inputs_fail_with_reasons_and_the_rest_shard(kinetics, sharded):
    manifest, samples = read_split(sharded / "train")
    reasons = {f["key"]: f["reason"] for f in manifest["failed"]}
    for stem, fx in kinetics["fixtures"].items():
        if fx.expect == "ok":
            assert stem in samples, (fx.kind, reasons.get(stem))
        else:
            assert stem in reasons and stem not in samples, fx.kind
    words = {"empty": "empty file", "not_a_video": "not a readable video", "audio_only": "no video stream",
             "too_short": "too short", "truncated": "not a readable video", "corrupt": "corrupt",
             "corrupt_silent": "concealed damage", "truncated_faststart": "truncated"}
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


def test_metadata_and_labels(kinetics, sharded):
    manifest, samples = read_split(sharded / "train")
    labels = manifest["labels"]
    assert "edge case (odd) 'files'" in labels  # quotes, spaces and brackets survive the CSV
    for key, (meta, _) in samples.items():
        assert KEY_PATTERN.match(key) and meta.key == key and meta.split == "train"
        assert labels[meta.label_index] == meta.label
        assert meta.fps == 25 and meta.codec == "vp9" and min(meta.width, meta.height) <= 336
    assert any(k.startswith("-") for k in samples)  # Kinetics ids may begin with '-'
    replaced = samples["replacedid0_000000_000002"][0]
    assert "replacement" in replaced.source.path
    _, test_samples = read_split(sharded / "test")
    assert all(m.label is None and m.label_index == -1 for m, _ in test_samples.values())
    val_manifest, _ = read_split(sharded / "val")
    assert val_manifest["labels"] == labels  # one label index for every split


def test_shards_follow_the_seeded_shuffle_with_dali_indexes(sharded):
    from jobs.shard.plan import ShardPlan, assign_shards

    manifest, samples = read_split(sharded / "train")
    plan = ShardPlan.load(sharded / "train" / ".shard-job" / "plan.json")
    assert plan.shards == assign_shards(list(plan.entries), 5, seed=0)  # the seeded shuffle
    assert plan.shards != assign_shards(list(plan.entries), 5, seed=1)
    written = [[n.split(".")[0] for n in tarfile.open(sharded / "train" / s["name"]).getnames()[0::2]]
               for s in manifest["shards"]]
    planned = [kept for shard in plan.shards if (kept := [k for k in shard if k in samples])]
    assert written == planned  # tar by tar, in plan order; only failed videos are missing
    for shard in manifest["shards"]:
        lines = index_path(sharded / "train" / shard["name"]).read_text().splitlines()
        assert lines[0] == f"v1.2 {shard['samples']}"


def test_dali_decodes_the_shards_on_cpu(sharded):
    pytest.importorskip("nvidia.dali")
    from nvidia.dali import fn, pipeline_def

    manifest, samples = read_split(sharded / "val")
    tars = [str(sharded / "val" / s["name"]) for s in manifest["shards"]]

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def decode():
        video, meta = fn.readers.webdataset(paths=tars, index_paths=[str(index_path(Path(t))) for t in tars],
                                            ext=["mp4", "json"], missing_component_behavior="error")
        return fn.decoders.video(video, device="cpu", frames=[0, 7, 31]), meta

    pipe = decode()
    pipe.build()
    for _ in range(manifest["ok"]):
        frames, meta = pipe.run()
        meta = json.loads(np.array(meta[0]).tobytes())
        assert np.array(frames[0]).shape == (3, meta["height"], meta["width"], 3)


def test_rerun_is_a_no_op_and_changed_settings_are_refused(kinetics, sharded, capsys):
    before = {p: p.stat().st_mtime_ns for p in (sharded / "train").glob("*.tar")}
    args = ["kinetics", "--root", str(kinetics["root"]), "--out", str(sharded), "--workers", "2",
            "--videos-per-shard", "5", "--no-progress"]
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in (sharded / "train").glob("*.tar")} == before
    assert main(args + ["--codec", "h264"]) == 2
    assert "planned with other settings" in capsys.readouterr().err


def test_overwrite_starts_over_with_new_settings_and_leaves_nothing_stale(resumable, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(resumable["reference"], out)  # a finished job: VP9 at 336 px, 2 videos a shard
    (out / "notes.txt").write_text("the user's own file")
    ref_manifest, ref_samples = read_split(out / "train")
    assert not ref_manifest["failed"] and not ref_manifest["missing"]
    new = ["kinetics", "--root", str(resumable["root"]), "--out", str(out), "--splits", "train", "--workers", "1",
           "--videos-per-shard", "5", "--codec", "mjpeg", "--short-side", "32", "--no-progress"]
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
    # Nothing stale: exactly the new tars, their indexes, the manifest and the new plan's records.
    names = [s["name"] for s in manifest["shards"]]
    assert sorted(p.name for p in (out / "train").iterdir()) == sorted(
        [".shard-job", "manifest.json", *names, *(index_path(Path(n)).name for n in names)])
    assert sorted(p.name for p in (out / "train" / ".shard-job").iterdir()) == ["done", "plan.json"]
    assert sorted(p.name for p in (out / "train" / ".shard-job" / "done").iterdir()) == \
        [f"{i:06d}.json" for i in range(len(names))]
    assert (out / "notes.txt").read_text() == "the user's own file"  # only the named splits are cleared


def test_cli_errors_are_one_line(tmp_path):
    for args, text in [(["kinetics", "--root", str(tmp_path / "nope"), "--out", str(tmp_path)], "not a folder"),
                       (["kinetics", "--root", str(tmp_path), "--out", str(tmp_path / "o")], "annotations"),
                       (["kinetics", "--root", str(tmp_path), "--out", "o", "--shard-size", "big"], "not a size")]:
        proc = subprocess.run([sys.executable, "-m", "jobs.shard", *args], capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 2 and text in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    help_ = subprocess.run([sys.executable, "-m", "jobs.shard", "--help"], capture_output=True, text=True, cwd=REPO)
    assert help_.returncode == 0 and "--shard-size" in help_.stdout


# --- killed and resumed -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def resumable(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("resume")
    make_kinetics_dataset(root, SyntheticConfig(videos_per_class={"train": 4, "val": 0, "test": 0},
                                                duration_s=2.0, seed=11))
    reference = tmp_path_factory.mktemp("reference")
    args = ["--splits", "train", "--workers", "1", "--videos-per-shard", "2", "--no-progress"]
    assert main(["kinetics", "--root", str(root), "--out", str(reference), *args]) == 0
    return {"root": root, "reference": reference, "args": args}


def _start(root: Path, out: Path, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jobs.shard", "kinetics", "--root", str(root), "--out", str(out),
                             *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


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
        rc = main(["kinetics", "--root", str(resumable["root"]), "--out", str(tmp_path), "--splits", "train",
                   "--workers", "2", "--videos-per-shard", "2", "--no-progress"])
    finally:
        stop.set()
        watcher.join()
        resource.setrlimit(resource.RLIMIT_CORE, core)
    assert rc == 0
    assert len(crashed) == 2  # a worker of the pool, then the process that retried the file alone
    manifest, samples = read_split(tmp_path / "train")
    assert manifest["failed"] == [{"key": hostile_key, "path": hostile_path,
                                   "reason": "the decoder crashed on this file"}]
    assert manifest["ok"] == ref_manifest["ok"] - 1
    # Every other video, including those in flight beside the crash, as a run without the crash wrote it.
    assert samples == {k: v for k, v in ref_samples.items() if k != hostile_key}


# --- UCF101 and HMDB51 layouts ----------------------------------------------------------------

@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("clips")
    make_kinetics_dataset(root, SyntheticConfig(videos_per_class={"train": 1, "val": 0, "test": 0},
                                                duration_s=1.6, seed=5))
    return sorted((root / "train").glob("*.mp4"))[:4]


def test_ucf101_official_split_files(clips, tmp_path):
    root = tmp_path / "UCF101"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    classes = ["ApplyEyeMakeup", "HandstandPushups"]
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n")
    names = ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "HandstandPushups/v_HandStandPushups_g01_c01.avi",
             "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "HandstandPushups/v_HandStandPushups_g02_c01.avi"]
    for clip, name in zip(clips, names):
        (root / "UCF-101" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, root / "UCF-101" / name)
    (lists / "trainlist01.txt").write_text(f"{names[0]} 1\r\n{names[1]} 2\r\n")
    (lists / "testlist01.txt").write_text(f"{names[2]}\r\n{names[3]}\r\nApplyEyeMakeup/v_gone_g09_c01.avi\r\n")
    out = tmp_path / "out"
    assert main(["ucf101", "--root", str(root), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    train, train_samples = read_split(out / "train")
    test, test_samples = read_split(out / "test")
    assert train["labels"] == classes and train["ok"] == 2 and test["ok"] == 2 and len(test["missing"]) == 1
    assert train_samples["v_HandStandPushups_g01_c01"][0].label == "HandstandPushups"
    assert train_samples["v_HandStandPushups_g01_c01"][0].label_index == 1


def test_hmdb51_official_split_files(clips, tmp_path):
    root = tmp_path / "hmdb51"
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    names = {"brush_hair": ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "Blonde_hair_(2003).brush_h_f_nm_np1_le_goo_1.avi"],
             "climb": ["Dad&Me_climb_f_cm_np1_ba_goo_0.avi", "unused_climb_f_cm_np1_ba_goo_0.avi"]}
    for clip, (action, name) in zip(clips, [(a, n) for a, ns in names.items() for n in ns]):
        (root / action).mkdir(exist_ok=True)
        shutil.copy(clip, root / action / name)
    (splits / "brush_hair_test_split1.txt").write_text(f"{names['brush_hair'][0]} 1 \n{names['brush_hair'][1]} 2 \n")
    (splits / "climb_test_split1.txt").write_text(f"{names['climb'][0]} 1 \n{names['climb'][1]} 0 \n")
    out = tmp_path / "out"
    assert main(["hmdb51", "--root", str(root), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    train, train_samples = read_split(out / "train")
    test, test_samples = read_split(out / "test")
    assert train["labels"] == ["brush_hair", "climb"] and train["ok"] == 2 and test["ok"] == 1  # 0 = unused
    assert all(KEY_PATTERN.match(k) for k in test_samples)  # brackets, dots and '&' made safe
    assert Counter(m.label for m, _ in train_samples.values()) == {"brush_hair": 1, "climb": 1}


# Each fold its own partition of the four clips, of its own sizes, so a run that reads another
# fold's files gets other keys. HMDB51 codes: 1 train, 2 test, 0 unused.
FOLDS = {1: ([1, 2], [0, 3]), 2: ([0, 2, 3], [1]), 3: ([0], [1, 2, 3])}
HMDB_CODES = {1: "1210", 2: "2101", 3: "0212"}
FAST = ["--codec", "mjpeg", "--short-side", "32", "--workers", "1", "--no-progress"]  # folds are the point here


def _labels_by_split(out: Path) -> dict[str, dict[str, str]]:
    return {split: {k: m.label for k, (m, _) in read_split(out / split)[1].items()} for split in ("train", "test")}


def test_ucf101_folds_2_and_3_read_their_own_list_files(clips, tmp_path, capsys):
    names = ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
             "HandstandPushups/v_HandStandPushups_g01_c01.avi", "HandstandPushups/v_HandStandPushups_g02_c01.avi"]
    root = tmp_path / "UCF101"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n")
    for clip, name in zip(clips, names):
        (root / "UCF-101" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, root / "UCF-101" / name)
    for fold, (train, test) in FOLDS.items():
        (lists / f"trainlist{fold:02d}.txt").write_text("".join(f"{names[i]} {1 + i // 2}\r\n" for i in train))
        (lists / f"testlist{fold:02d}.txt").write_text("".join(f"{names[i]}\r\n" for i in test))
    for fold in (2, 3):
        args = ["ucf101", "--root", str(root), "--out", str(tmp_path / f"fold{fold}"), "--fold", str(fold), *FAST]
        assert main(args) == 0
        expected = {split: {Path(names[i]).stem: names[i].split("/")[0] for i in picked}
                    for split, picked in zip(("train", "test"), FOLDS[fold])}
        assert _labels_by_split(tmp_path / f"fold{fold}") == expected, fold
    # A plan belongs to its fold: another fold into the same OUT is refused, never resumed as the old one.
    assert main(args[:3] + ["--out", str(tmp_path / "fold2"), "--fold", "3", *FAST]) == 2
    assert "fold: 2 -> 3" in capsys.readouterr().err


def test_hmdb51_folds_2_and_3_read_their_own_split_files(clips, tmp_path):
    names = [("brush_hair", "April_09_brush_hair_u_nm_np1_ba_goo_0.avi"),
             ("brush_hair", "Brush_my_hair_(2004)_brush_hair_h_nm_np1_fr_goo_1.avi"),
             ("climb", "Dad&Me_climb_f_cm_np1_ba_goo_0.avi"), ("climb", "Rock_climb_f_cm_np1_le_goo_2.avi")]
    root = tmp_path / "hmdb51"
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for clip, (action, name) in zip(clips, names):
        (root / action).mkdir(exist_ok=True)
        shutil.copy(clip, root / action / name)
    for fold, codes in HMDB_CODES.items():
        for action in ("brush_hair", "climb"):
            (splits / f"{action}_test_split{fold}.txt").write_text(
                "".join(f"{name} {code} \n" for (a, name), code in zip(names, codes) if a == action))
    for fold in (2, 3):
        out = tmp_path / f"fold{fold}"
        assert main(["hmdb51", "--root", str(root), "--out", str(out), "--fold", str(fold), *FAST]) == 0
        expected = {split: {make_key(Path(name).stem): action
                            for (action, name), code in zip(names, HMDB_CODES[fold]) if code == wanted}
                    for split, wanted in (("train", "1"), ("test", "2"))}
        assert _labels_by_split(out) == expected, fold


# --- the array path, on submitit's local executor ---------------------------------------------

def test_array_tasks_write_the_same_shards_as_a_local_run(resumable, tmp_path):
    from jobs.shard import array
    from jobs.shard.run import JobSettings, finish_split, load_or_make_plan
    from jobs.shard.sources import read_kinetics
    from jobs.shard.transcode import EncodeSettings

    listing = read_kinetics(resumable["root"], ["train"])
    settings = JobSettings(encode=EncodeSettings(), videos_per_shard=2)
    plan = load_or_make_plan(listing, "train", resumable["root"], tmp_path, settings, workers=1)
    jobs = array.submit(tmp_path, [plan], cluster="local", tasks=3, workers=1, partition=None, time_min=10, mem_gb=None)
    assert len(jobs) == 3 and array.wait(jobs, poll_s=0.5) == []
    manifest = finish_split(tmp_path, plan, listing.labels)
    ref_manifest, ref_samples = read_split(resumable["reference"] / "train")
    _, samples = read_split(tmp_path / "train")
    assert manifest["ok"] == ref_manifest["ok"] and samples.keys() == ref_samples.keys()


def test_synthetic_samples_agree_with_independent_decoder(sharded, ffmpeg, tmp_path):
    from tests.conftest import ffmpeg_pts

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
    assert main(["kinetics", "--root", str(resumable["root"]), "--out", str(tmp_path), "--splits", "train",
                 "--workers", "1", "--shard-size", str(target), "--no-progress"]) == 0
    manifest, _ = read_split(tmp_path / "train")
    sizes = [s["bytes"] for s in manifest["shards"][:-1]]
    assert len(sizes) >= 3 and all(0.5 * target < b < 2 * target for b in sizes), (sizes, target)
