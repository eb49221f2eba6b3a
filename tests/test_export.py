"""The export job: exported rows are exactly the model's window and video embeddings, laid out as
``index.store`` says; ranks and an interrupted run give the same store as one uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("nvidia.dali")

from index import store  # noqa: E402
from jobs.embed import video_embeddings, window_embeddings, windows_of_video  # noqa: E402
from jobs.export import ExportSettings, export, load_backbone, main as export_main  # noqa: E402
from pipeline.plans import sliding_plan  # noqa: E402
from pipeline.shards import ShardIndex, resolve_shards  # noqa: E402

SETTINGS = ExportSettings(T=8, stride=8, size=32, video_clips=3, videos_per_unit=5, chunk_rows=16)
COLUMNS = ("embedding", *store.CLIP_COLUMNS)


@pytest.fixture(scope="module")
def exported(synthetic_splits, tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "test.zarr"
    tars = resolve_shards(synthetic_splits / "test")
    assert export(tiny_checkpoint, tars, out, SETTINGS, progress=False)
    return out, tars


def _arrays(path):
    root = store.open_store(path, mode="r")
    return {f"clips/{c}": root["clips"][c][:] for c in COLUMNS} | {
        f"videos/{c}": root["videos"][c][:] for c in ("embedding", "key", "label", "fps", "frames")}


def test_rows_are_the_models_window_and_video_embeddings(exported, tiny_checkpoint):
    path, tars = exported
    root = store.open_store(path, mode="r")
    backbone, model = load_backbone(tiny_checkpoint)
    assert root.attrs["complete"] and root.attrs["model"] == model
    assert root.attrs["clips"] == {"T": 8, "stride": 8, "rate": 1.0, "size": 32, "pool": "avg"}
    index = ShardIndex(tars)
    metas = [index.read_meta(i) for i in range(len(index))]
    video = root["clips"]["video"][:]
    emb = root["clips"]["embedding"][:].astype(np.float32)
    direct = list(window_embeddings(backbone, tars, T=8, stride=8, size=32))
    assert [k for k, _, _ in direct] == [m.key for m in metas] == list(root["videos"]["key"][:])
    for v, (key, indices, expected) in enumerate(direct):
        rows = np.flatnonzero(video == v)
        assert len(rows) == len(sliding_plan(metas[v].frames, T=8, stride=8)) == len(expected)
        assert np.allclose(emb[rows], expected, atol=2e-3)  # float16 storage of unit vectors
        assert np.array_equal(root["clips"]["start_frame"].get_coordinate_selection(rows), indices[:, 0])
        assert np.array_equal(root["clips"]["end_frame"].get_coordinate_selection(rows), indices[:, -1] + 1)
        assert np.allclose(root["clips"]["start_time"].get_coordinate_selection(rows), indices[:, 0] / metas[v].fps)
    assert (np.abs(emb[video < 0]).sum() == 0) and (video >= 0).sum() == sum(len(e) for _, _, e in direct)
    keys, labels, vids = video_embeddings(backbone, tars, T=8, clips=3, size=32)
    assert np.allclose(root["videos"]["embedding"][:].astype(np.float32), vids, atol=2e-3)
    assert list(root["videos"]["label"][:]) == labels
    loaded, ids = store.read_embeddings(path, "clips")
    assert np.array_equal(ids, np.flatnonzero(video >= 0))
    assert np.allclose(np.linalg.norm(loaded, axis=1), 1, atol=1e-5)


def test_two_ranks_one_killed_and_rerun_give_the_same_store(exported, tiny_checkpoint, tmp_path):
    reference, tars = exported
    out = tmp_path / "ranks.zarr"
    # units of 2 videos: rank 0 has 3 of the 6, so killed after its first it surely has work left
    settings = replace(SETTINGS, videos_per_unit=2)
    cmd = [sys.executable, "-m", "jobs.export", str(tiny_checkpoint), "--shards", str(tars[0].parent), "--out", str(out),
           "--frames", "8", "--stride", "8", "--size", "32", "--video-clips", "3", "--videos-per-unit", "2",
           "--chunk-rows", "16", "--rank", "0", "--world", "2", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    assert export(tiny_checkpoint, tars, out, settings, rank=1, world=2, progress=False) is False
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:  # kill rank 0 after its first unit
        if store.open_store(out, mode="r")["done"][0]:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait()
    root = store.open_store(out, mode="r")
    assert root["done"][0] and not root.attrs["complete"] and set(store.pending_units(root)) <= {2, 4}
    assert export(tiny_checkpoint, tars, out, settings, rank=0, world=2, progress=False) is True
    # the same rows as the one-process export (whose units, and so padding, differ)
    for level in ("clips", "videos"):
        (ea, ia), (eb, ib) = store.read_embeddings(reference, level), store.read_embeddings(out, level)
        assert np.array_equal(ea, eb)
        assert np.array_equal(ia, ib) if level == "videos" else len(ia) == len(ib)
    a, b = _arrays(reference), _arrays(out)
    for name in a:
        if name.startswith("videos/"):
            assert np.array_equal(a[name], b[name]), name
        else:
            valid_a, valid_b = a["clips/video"] >= 0, b["clips/video"] >= 0
            assert np.array_equal(a[name][valid_a], b[name][valid_b]), name


def test_cli_errors_are_one_line_and_exit_2(exported, tiny_checkpoint, tmp_path, capsys):
    path, tars = exported
    assert export_main([str(tmp_path / "nope.pt"), "--shards", str(tars[0].parent), "--out", str(tmp_path / "x.zarr")]) == 2
    assert "error: no checkpoint" in capsys.readouterr().err
    # the same store with other settings: refused, not mixed
    assert export_main([str(tiny_checkpoint), "--shards", str(tars[0].parent), "--out", str(path), "--stride", "4",
                        "--no-progress"]) == 2
    assert "holds another export" in capsys.readouterr().err
    assert export_main([str(tiny_checkpoint), "--videos", str(tmp_path), "--out", str(tmp_path / "y.zarr")]) == 2
    assert "no video files" in capsys.readouterr().err


def test_a_folder_of_videos_is_normalised_once_by_rank_0_and_waited_for_by_the_others(
        synthetic_kinetics, tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    for src in sorted((synthetic_kinetics / "train").glob("*.mp4"))[:2]:
        (folder / src.name).write_bytes(src.read_bytes())
    common = [str(tiny_checkpoint), "--videos", str(folder), "--out", str(tmp_path / "v.zarr"), "--world", "2",
              "--frames", "8", "--stride", "8", "--size", "32", "--video-clips", "3", "--no-progress"]
    rank1 = subprocess.Popen([sys.executable, "-m", "jobs.export", *common, "--rank", "1"], cwd=os.getcwd(),
                             stderr=subprocess.PIPE, text=True)
    time.sleep(1)  # rank 1 is waiting while rank 0 normalises
    assert export_main([*common, "--rank", "0"]) == 0
    assert rank1.wait(timeout=300) == 0, rank1.stderr.read()
    root = store.open_store(tmp_path / "v.zarr", mode="r")
    assert root.attrs["complete"] and len(root["videos"]["key"][:]) == 2
    assert [p.name for p in (tmp_path / "v.shards").iterdir() if p.suffix == ".tar"] == ["files-000000.tar"]
    # rank 0 fails: the others say why instead of waiting for ever
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [str(tiny_checkpoint), "--videos", str(empty), "--out", str(tmp_path / "e.zarr"), "--world", "2"]
    assert export_main([*args, "--rank", "0"]) == 2 and "no video files" in capsys.readouterr().err
    assert export_main([*args, "--rank", "1"]) == 2
    assert "rank 0 could not normalise" in capsys.readouterr().err


def test_one_long_video_read_in_chunks_gives_the_windows_of_one_pass(exported, tiny_checkpoint):
    _, tars = exported
    backbone, _ = load_backbone(tiny_checkpoint)
    (_, whole_idx, whole), = window_embeddings(backbone, tars, T=8, stride=4, size=32, samples=[1])
    window_mb = 8 * 3 * 32 * 32 * 4 / 2**20
    idx, emb = windows_of_video(backbone, tars, T=8, stride=4, size=32, position=1, memory_mb=5 * window_mb)
    assert len(whole) > 5 and np.array_equal(idx, whole_idx)  # several chunks of 5 windows
    assert np.allclose(emb, whole, atol=1e-5)


def test_an_export_unit_reads_long_videos_in_chunks_and_gets_the_same_rows(exported, tiny_checkpoint):
    from jobs.export import _unit_windows, plan_layout

    _, tars = exported
    backbone, _ = load_backbone(tiny_checkpoint)
    layout, metas = plan_layout(ShardIndex(tars), SETTINGS)
    videos = [0, 1, 2]
    window_mb = SETTINGS.T * 3 * SETTINGS.size ** 2 * 4 / 2**20
    assert min(layout.windows[v] for v in videos) > 2  # so 2 windows' memory makes every video "long"
    chunked = {k: (i, e) for k, i, e in _unit_windows(backbone, tars, videos, layout, metas, SETTINGS, "cpu",
                                                      memory_mb=2 * window_mb)}
    whole = {k: (i, e) for k, i, e in window_embeddings(backbone, tars, T=SETTINGS.T, stride=SETTINGS.stride,
                                                       size=SETTINGS.size, samples=videos)}
    assert chunked.keys() == whole.keys() and len(whole) == 3
    for key, (indices, emb) in whole.items():
        assert np.array_equal(chunked[key][0], indices) and np.allclose(chunked[key][1], emb, atol=1e-5)
