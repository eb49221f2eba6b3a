"""The export job: exported rows are exactly the model's window and video embeddings, laid out as
``index.store`` says; ranks and an interrupted run give the same store as one uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("nvidia.dali")

from index import store  # noqa: E402
from index.embed import window_embeddings, windows_of_video  # noqa: E402
from index.export import ExportSettings, export  # noqa: E402
from index.export import main as export_main
from models.trained import load_trained  # noqa: E402
from pipeline.shards import ShardIndex, resolve_shards  # noqa: E402
from tests.support.media import ffmpeg_frames  # noqa: E402

SETTINGS = ExportSettings(T=8, stride=8, size=32, video_clips=3, videos_per_unit=5, chunk_rows=16)
COLUMNS = ("embedding", *store.CLIP_COLUMNS)

# The VCOP protocol (16 frames, 10 clips) at a crop of 64: the eval transform takes the centre square
# of a frame resized to short side 64, which is the shards' stored short side, so no resize happens,
# only a centre crop, and an independent decode can rebuild the model's input exactly.
PROTOCOL = ExportSettings(T=16, stride=8, size=64, video_clips=10, videos_per_unit=5, chunk_rows=16)
# swscale's YUV -> RGB with full chroma interpolation and accurate rounding: measured equal, pixel
# for pixel, to DALI's CPU decode of these VP9 shards (plain ffmpeg differs by up to 72 levels).
RGB = "scale=flags=bilinear+accurate_rnd+full_chroma_int+full_chroma_inp"
MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255  # ImageNet, on 0..255 pixels
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255
# float16 storage moves a unit row by at most 2**-11 (L2).
TOL = 1e-3
# Against the FFmpeg tool's frames: its YUV -> RGB conversion and the loader's (torch's, on the CPU
# path) differ by one grey level at about 0.5% of pixel values, which moves a row of the tiny model
# by up to about 4e-3 (max pooling picks single pixels' responses). That a row is its own clip's,
# not a neighbour's, is checked without a tolerance: its nearest reference row is its own.
DECODE_TOL = 5e-3


@pytest.fixture(scope="module")
def exported(synthetic_splits, tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "test.zarr"
    tars = resolve_shards(synthetic_splits / "test")
    assert export(tiny_checkpoint, tars, out, SETTINGS, progress=False)
    return out, tars


def _arrays(path):
    root = store.open_store(path, mode="r")
    return {f"clips/{c}": root["clips"][c][:] for c in COLUMNS} | {
        f"videos/{c}": root["videos"][c][:] for c in ("embedding", "key", "label", "fps", "frames")
    }


@dataclass
class Reference:
    """One sample computed without the product's reader, loader or pooling."""

    key: str
    meta: dict
    starts: np.ndarray  # window start frames
    windows: dict  # pool -> (W, C) unit rows
    video: dict  # pool -> (C,) unit row
    one_clip: np.ndarray  # avg-pooled unit row of the first evaluation clip alone


def _tar_samples(tar: Path):
    """(key, meta, video bytes) per sample, in tar order, read with tarfile (not ShardIndex)."""
    with tarfile.open(tar) as t:
        members = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
    keys = list(dict.fromkeys(name.split(".", 1)[0] for name in members))
    for key in keys:
        (video,) = [data for name, data in members.items() if name.startswith(key + ".") and not name.endswith(".json")]
        yield key, json.loads(members[key + ".json"]), video


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@torch.no_grad()
def _pooled(backbone, frames: np.ndarray, starts, T: int, size: int) -> dict:
    """Avg- and max-pooled last conv features of clips frames[s:s+T]: centre crop and ImageNet
    normalisation by hand, (N, C, T, H, W) as the backbone takes it."""
    h, w = frames.shape[1:3]
    assert min(h, w) == size and (h - size) % 2 == 0 == (w - size) % 2  # an exact crop, no resize
    top, left = (h - size) // 2, (w - size) // 2
    x = (frames[:, top : top + size, left : left + size].astype(np.float32) - MEAN) / STD
    clips = torch.from_numpy(np.stack([x[s : s + T] for s in starts])).permute(0, 4, 1, 2, 3)
    features = backbone.forward_features(clips)
    return {"avg": features.mean(dim=(2, 3, 4)).numpy(), "max": features.amax(dim=(2, 3, 4)).numpy()}


@pytest.fixture(scope="module")
def reference(synthetic_splits, tiny_checkpoint, ffmpeg, tmp_path_factory) -> list[Reference]:
    """Every test-split video decoded by the independent FFmpeg, embedded as PROTOCOL documents."""
    backbone = load_trained(tiny_checkpoint).backbone
    folder = tmp_path_factory.mktemp("reference")
    T, stride, n = PROTOCOL.T, PROTOCOL.stride, PROTOCOL.video_clips
    out = []
    for tar in sorted((synthetic_splits / "test").glob("*.tar")):
        for key, meta, data in _tar_samples(tar):
            path = folder / f"{key}.{meta['container']}"
            path.write_bytes(data)
            frames = ffmpeg_frames(ffmpeg, path, RGB)
            assert len(frames) == meta["frames"] >= T
            # windows: every stride-th start whose T frames fit
            starts = np.arange(0, len(frames) - T + 1, stride)
            # evenly spaced: start i = (F - T) * i / (n - 1), rounded half up, in exact integers
            even = [(2 * i * (len(frames) - T) + n - 1) // (2 * (n - 1)) for i in range(n)]
            windows, clips = (_pooled(backbone, frames, s, T, PROTOCOL.size) for s in (starts, even))
            out.append(
                Reference(
                    key,
                    meta,
                    starts,
                    {p: _unit(w) for p, w in windows.items()},
                    {p: _unit(c.mean(0)) for p, c in clips.items()},
                    _unit(clips["avg"][0]),
                )
            )
    # the test's power: windows and videos are told apart far beyond TOL, and so are 1 clip and 10
    rows = np.concatenate([r.windows["avg"] for r in out])
    apart = np.linalg.norm(rows[:, None] - rows[None], axis=-1) + np.eye(len(rows))
    assert apart.min() > 5 * TOL
    assert min(np.linalg.norm(r.video["avg"] - r.one_clip) for r in out) > 5 * TOL
    return out


@pytest.fixture(scope="module")
def protocol_exports(synthetic_splits, tiny_checkpoint, tmp_path_factory) -> dict:
    """PROTOCOL exports: avg pooling of the whole test split, max pooling of its last shard."""
    out = tmp_path_factory.mktemp("protocol")
    tars = resolve_shards(synthetic_splits / "test")
    assert len(tars) == 2
    assert export(tiny_checkpoint, tars, out / "avg.zarr", PROTOCOL, progress=False)
    assert export(tiny_checkpoint, tars[1:], out / "max.zarr", replace(PROTOCOL, pool="max"), progress=False)
    return {"avg": out / "avg.zarr", "max": out / "max.zarr", "tars": tars}


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


def _assert_rows_are(root, reference: list[Reference], pool: str) -> None:
    """Every window row and video row of ``root`` is its reference's, in the layout ``index.store`` says."""
    clips, videos = root["clips"], root["videos"]
    assert list(videos["key"][:]) == [r.key for r in reference]
    assert list(videos["label"][:]) == [r.meta["label"] or "" for r in reference]
    assert np.array_equal(videos["fps"][:], [r.meta["fps"] for r in reference])
    assert np.array_equal(videos["frames"][:], [r.meta["frames"] for r in reference])
    video = clips["video"][:]
    emb = clips["embedding"][:].astype(np.float32)
    columns = {c: clips[c][:] for c in store.CLIP_COLUMNS}
    for v, r in enumerate(reference):
        rows = np.flatnonzero(video == v)
        fps = r.meta["fps"]
        assert np.array_equal(columns["start_frame"][rows], r.starts), r.key
        assert np.array_equal(columns["end_frame"][rows], r.starts + PROTOCOL.T)
        assert np.allclose(columns["start_time"][rows], r.starts / fps)
        assert np.allclose(columns["end_time"][rows], (r.starts + PROTOCOL.T) / fps)
        assert np.all(columns["stride"][rows] == PROTOCOL.stride) and np.all(columns["rate"][rows] == 1.0)
        assert _distance(emb[rows], r.windows[pool]).max() < DECODE_TOL, r.key
    assert (video >= 0).sum() == sum(len(r.starts) for r in reference)
    assert not emb[video < 0].any()  # padding rows stay zero
    expected = np.stack([r.video[pool] for r in reference])
    assert _distance(videos["embedding"][:].astype(np.float32), expected).max() < DECODE_TOL
    every = np.concatenate([r.windows[pool] for r in reference])  # each exported row: nearest its own
    own = np.concatenate([np.flatnonzero(video == v) for v in range(len(reference))])
    nearest = _distance(emb[own][:, None], every[None]).argmin(axis=1)
    assert np.array_equal(nearest, np.arange(len(own)))


def test_rows_are_the_models_window_and_video_embeddings(protocol_exports, reference, tiny_checkpoint):
    root = store.open_store(protocol_exports["avg"], mode="r")
    model = load_trained(tiny_checkpoint).describe()
    assert root.attrs["complete"] and root.attrs["model"] == model
    assert root.attrs["clips"] == {"T": 16, "stride": 8, "rate": 1.0, "size": 64, "pool": "avg"}
    assert root.attrs["videos"] == {"T": 16, "clips": 10, "size": 64, "pool": "avg"}
    _assert_rows_are(root, reference, "avg")
    loaded, ids = store.read_embeddings(protocol_exports["avg"], "clips")
    assert np.array_equal(ids, np.flatnonzero(root["clips"]["video"][:] >= 0))
    assert np.abs(np.linalg.norm(loaded, axis=1) - 1).max() < TOL


def test_pool_max_rows_are_the_max_pooled_features_not_the_averages(protocol_exports, reference, tiny_checkpoint):
    path, last_shard = protocol_exports["max"], protocol_exports["tars"][1]
    root = store.open_store(path, mode="r")
    assert root.attrs["clips"]["pool"] == root.attrs["videos"]["pool"] == "max"
    mine = reference[-root["videos"]["key"].shape[0] :]  # the samples of the last shard
    assert len(mine) == 4
    _assert_rows_are(root, mine, "max")
    # ... and they are not the averages: every window is far from its avg-pooled row
    avg = store.open_store(protocol_exports["avg"], mode="r")
    avg_keys, avg_video, avg_emb = list(avg["videos"]["key"][:]), avg["clips"]["video"][:], avg["clips"]["embedding"][:]
    video, emb = root["clips"]["video"][:], root["clips"]["embedding"][:]
    for v, key in enumerate(root["videos"]["key"][:]):
        max_rows, avg_rows = emb[video == v], avg_emb[avg_video == avg_keys.index(key)]
        assert _distance(max_rows.astype(np.float32), avg_rows.astype(np.float32)).min() > 10 * TOL
    # the command line's --pool reaches the settings: the same command finds this store its own
    # export with nothing left to do (another pool would be refused as another export)
    assert (
        export_main(
            [
                str(tiny_checkpoint),
                "--shards",
                str(last_shard),
                "--out",
                str(path),
                "--pool",
                "max",
                "--frames",
                "16",
                "--stride",
                "8",
                "--size",
                "64",
                "--video-clips",
                "10",
                "--videos-per-unit",
                "5",
                "--chunk-rows",
                "16",
                "--no-progress",
            ]
        )
        == 0
    )


def test_two_ranks_one_killed_and_rerun_give_the_same_store(exported, tiny_checkpoint, tmp_path):
    reference, tars = exported
    out = tmp_path / "ranks.zarr"
    # units of 2 videos: rank 0 has 3 of the 6, so killed after its first it surely has work left
    settings = replace(SETTINGS, videos_per_unit=2)
    cmd = [
        sys.executable,
        "-m",
        "index.export",
        str(tiny_checkpoint),
        "--shards",
        str(tars[0].parent),
        "--out",
        str(out),
        "--frames",
        "8",
        "--stride",
        "8",
        "--size",
        "32",
        "--video-clips",
        "3",
        "--videos-per-unit",
        "2",
        "--chunk-rows",
        "16",
        "--rank",
        "0",
        "--world",
        "2",
        "--no-progress",
    ]
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
    assert (
        export_main([str(tmp_path / "nope.pt"), "--shards", str(tars[0].parent), "--out", str(tmp_path / "x.zarr")])
        == 2
    )
    assert "error: no checkpoint" in capsys.readouterr().err
    # the same store with other settings: refused, not mixed
    assert (
        export_main(
            [
                str(tiny_checkpoint),
                "--shards",
                str(tars[0].parent),
                "--out",
                str(path),
                "--stride",
                "4",
                "--no-progress",
            ]
        )
        == 2
    )
    assert "holds another export" in capsys.readouterr().err
    assert export_main([str(tiny_checkpoint), "--videos", str(tmp_path), "--out", str(tmp_path / "y.zarr")]) == 2
    assert "no video files" in capsys.readouterr().err


def test_a_folder_of_videos_is_normalised_once_by_rank_0_and_waited_for_by_the_others(
    synthetic_kinetics, tiny_checkpoint, tmp_path, capsys
):
    folder = tmp_path / "videos"
    folder.mkdir()
    for src in sorted((synthetic_kinetics / "train").glob("*.mp4"))[:2]:
        (folder / src.name).write_bytes(src.read_bytes())
    common = [
        str(tiny_checkpoint),
        "--videos",
        str(folder),
        "--out",
        str(tmp_path / "v.zarr"),
        "--world",
        "2",
        "--frames",
        "8",
        "--stride",
        "8",
        "--size",
        "32",
        "--video-clips",
        "3",
        "--no-progress",
    ]
    rank1 = subprocess.Popen(
        [sys.executable, "-m", "index.export", *common, "--rank", "1"],
        cwd=os.getcwd(),
        stderr=subprocess.PIPE,
        text=True,
    )
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
    backbone = load_trained(tiny_checkpoint).backbone
    ((_, whole_idx, whole),) = window_embeddings(backbone, tars, T=8, stride=4, size=32, samples=[1])
    window_mb = 8 * 3 * 32 * 32 * 4 / 2**20
    idx, emb = windows_of_video(backbone, tars, T=8, stride=4, size=32, position=1, memory_mb=5 * window_mb)
    assert len(whole) > 5 and np.array_equal(idx, whole_idx)  # several chunks of 5 windows
    assert np.allclose(emb, whole, atol=1e-5)


def test_an_export_unit_reads_long_videos_in_chunks_and_gets_the_same_rows(exported, tiny_checkpoint):
    from index.export import _unit_windows, store_layout

    _, tars = exported
    backbone = load_trained(tiny_checkpoint).backbone
    layout, metas = store_layout(ShardIndex(tars), SETTINGS)
    videos = [0, 1, 2]
    window_mb = SETTINGS.T * 3 * SETTINGS.size**2 * 4 / 2**20
    assert min(layout.windows[v] for v in videos) > 2  # so 2 windows' memory makes every video "long"
    chunked = {
        k: (i, e)
        for k, i, e in _unit_windows(backbone, tars, videos, layout, metas, SETTINGS, "cpu", memory_mb=2 * window_mb)
    }
    whole = {
        k: (i, e)
        for k, i, e in window_embeddings(
            backbone, tars, T=SETTINGS.T, stride=SETTINGS.stride, size=SETTINGS.size, samples=videos
        )
    }
    assert chunked.keys() == whole.keys() and len(whole) == 3
    for key, (indices, emb) in whole.items():
        assert np.array_equal(chunked[key][0], indices) and np.allclose(chunked[key][1], emb, atol=1e-5)
