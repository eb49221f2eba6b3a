"""``python -m index.query`` end to end: export the synthetic train split, index it, and query with
clips cut from its videos (re-encoded, as a user's file would be)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import zarr
from PIL import Image

pytest.importorskip("nvidia.dali")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st

from index.build import main as build_main  # noqa: E402
from index.export import ExportSettings, export  # noqa: E402
from index.query import main as query_main  # noqa: E402
from index.within import peaks  # noqa: E402
from pipeline.shards import resolve_shards  # noqa: E402
from tests.support.media import write_video  # noqa: E402

SETTINGS = ExportSettings(T=8, stride=4, size=32, video_clips=3, videos_per_unit=8, chunk_rows=64)


@pytest.fixture(scope="module")
def indexed(synthetic_splits, tiny_checkpoint, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("query")
    assert export(
        tiny_checkpoint, resolve_shards(synthetic_splits / "train"), work / "train.zarr", SETTINGS, progress=False
    )
    assert build_main([str(work / "train.zarr"), "--out", str(work / "index")]) == 0
    return work / "index"


def _source(synthetic_kinetics: Path) -> Path:
    return sorted((synthetic_kinetics / "train").glob("*.mp4"))[5]


def _cut(source: Path, first: int, last: int, out: Path) -> tuple[Path, float]:
    """Frames [first, last) of ``source`` re-encoded as H.264 at its frame rate; and that rate."""
    with av.open(str(source)) as c:
        fps = float(c.streams.video[0].average_rate)
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if first <= i < last]
    return write_video(out, frames, fps=round(fps)), fps


def _cut_elsewhere(source: Path, first: int, last: int, out: Path) -> tuple[Path, float]:
    """Frames [first, last) of ``source`` as a user's file unlike the collection's: 50 fps (each frame
    shown twice), 224x168 and MPEG-4 (which DALI's CPU decoder cannot read), so the query only works
    if it is normalised to the collection's rate, size and codec first. Returns it and the source's rate."""
    with av.open(str(source)) as c:
        fps = float(c.streams.video[0].average_rate)
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if first <= i < last]
    bigger = [np.asarray(Image.fromarray(f).resize((224, 168), Image.BICUBIC)) for f in frames]
    write_video(out, [f for f in bigger for _ in range(2)], fps=50, codec="mpeg4", options={"qscale": "2"})
    with av.open(str(out)) as c:  # the premise: nothing about it is the collection's already
        s = c.streams.video[0]
        made = (s.codec_context.name, s.average_rate, s.width, s.height, s.frames)
        assert made == ("mpeg4", 50, 224, 168, 2 * len(frames))
    assert fps != 50 and frames[0].shape[:2] != (168, 224)
    return out, fps


def _stored(store_path: Path, level: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read straight from the zarr store: unit ``level`` rows, their video rows, and the video keys."""
    root = zarr.open_group(str(store_path), mode="r")
    rows = root[level]["embedding"][:].astype(np.float64)
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    video = root["clips"]["video"][:] if level == "clips" else np.arange(len(rows))
    return rows, video, [str(k) for k in root["videos"]["key"][:]]


def _query(capsys, *args) -> tuple[int, dict | str]:
    code = query_main([str(a) for a in args])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 and "--json" in args else out.err if code else out.out)


def test_a_cut_of_a_video_finds_that_video_at_that_time(indexed, synthetic_kinetics, tmp_path, capsys):
    source = _source(synthetic_kinetics)
    clip, fps = _cut_elsewhere(source, 20, 44, tmp_path / "clip.mp4")
    code, out = _query(capsys, clip, "--index", indexed, "--k", 5, "--json")
    assert code == 0 and out["level"] == "clips" and len(out["results"]) == 5
    top = out["results"][0]
    assert top["video"] == source.stem and top["rank"] == 1
    assert top["start_time"] < 44 / fps and top["end_time"] > 20 / fps  # overlaps the cut
    scores = [r["score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)
    code, distinct = _query(capsys, clip, "--index", indexed, "--k", 5, "--distinct", "--json")
    videos = [r["video"] for r in distinct["results"]]
    assert code == 0 and len(set(videos)) == len(videos) == 5 and videos[0] == source.stem
    assert [r["rank"] for r in distinct["results"]] == [1, 2, 3, 4, 5]


def test_a_file_of_the_collection_queries_as_the_mean_of_its_stored_windows(indexed, synthetic_kinetics, capsys):
    """The collection's own file, normalised as the export did, gives exactly the vector the store's
    windows of that video average to: any other rate, size, codec or quality would not."""
    source = _source(synthetic_kinetics)
    count = json.loads((indexed / "index.json").read_text())["count"]
    code, out = _query(capsys, source, "--index", indexed, "--k", count, "--json")
    assert code == 0 and out["results"][0]["video"] == source.stem
    rows, video, keys = _stored(indexed.parent / "train.zarr", "clips")
    expected = rows[video == keys.index(source.stem)].mean(axis=0)
    expected /= np.linalg.norm(expected)
    # the query vector, recovered from its scores against every stored row (the rows span the space)
    ids = np.array([r["id"] for r in out["results"]])
    assert sorted(ids) == list(np.flatnonzero(video >= 0))
    recovered = np.linalg.lstsq(rows[ids], np.array([r["score"] for r in out["results"]]), rcond=None)[0]
    assert np.linalg.norm(recovered) == pytest.approx(1, abs=1e-4)
    assert recovered @ expected == pytest.approx(1, abs=1e-5)


@pytest.fixture(scope="module")
def indexed_videos(indexed) -> Path:
    """A --level videos index of the same store."""
    out = indexed.parent / "videos-index"
    assert build_main([str(indexed.parent / "train.zarr"), "--out", str(out), "--level", "videos"]) == 0
    return out


def test_a_videos_level_index_finds_the_source_video_without_window_times(
    indexed_videos, synthetic_kinetics, tmp_path, capsys
):
    source = _source(synthetic_kinetics)
    clip, _ = _cut_elsewhere(source, 20, 44, tmp_path / "clip.mp4")
    code, out = _query(capsys, clip, "--index", indexed_videos, "--k", 3)
    assert code == 0 and "videos of" in out
    lines = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [line[0] for line in lines] == ["1", "2", "3"] and lines[0][2] == source.stem
    for line in lines:  # rank, score, video, label: no start and end times after the label
        assert not any(re.fullmatch(r"-?\d+\.\d+", word) for word in line[3:]), line
    # the collection's own file: the vector the export stored for it (VCOP protocol, not windows)
    code, out = _query(capsys, source, "--index", indexed_videos, "--k", 3, "--json")
    rows, _, keys = _stored(indexed_videos.parent / "train.zarr", "videos")
    top = out["results"][0]
    assert code == 0 and out["level"] == "videos" and len(out["results"]) == 3
    row = keys.index(source.stem)
    assert (top["video"], top["id"], top["video_row"]) == (source.stem, row, row)
    assert top["score"] == pytest.approx(1, abs=1e-5)  # q . stored row = 1: the same unit vector
    for r in out["results"]:
        assert not {"start_time", "end_time", "start_frame", "end_frame"} & set(r)
        assert r["score"] == pytest.approx(float(rows[r["id"]] @ rows[row]), abs=1e-4)


def test_within_peaks_at_the_cut_and_plots(indexed, synthetic_kinetics, tmp_path, capsys):
    source = _source(synthetic_kinetics)
    clip, fps = _cut(source, 30, 46, tmp_path / "clip.mp4")
    plot = tmp_path / "curve.png"
    code, out = _query(capsys, clip, "--index", indexed, "--k", 1, "--within", source, "--plot", plot, "--json")
    assert code == 0
    w = out["within"]
    assert len(w["scores"]) == len(w["times"]) > 5 and plot.is_file()
    best = w["peaks"][0]
    assert best["score"] == pytest.approx(max(w["scores"]))
    assert abs(best["time"] - 38 / fps) <= 8 / 25  # the cut's centre, within one window stride or two


def test_table_and_grid(indexed, synthetic_kinetics, tmp_path, capsys):
    clip, _ = _cut(_source(synthetic_kinetics), 0, 24, tmp_path / "clip.mp4")
    code, out = _query(capsys, clip, "--index", indexed, "--k", 3, "--grid", tmp_path / "grid.png")
    assert code == 0 and "rank" in out and "grid:" in out
    lines = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(lines) == 3
    sheet = Image.open(tmp_path / "grid.png")
    assert sheet.height == 4 * (96 + 4)  # contact_sheet rows of 96 px: the query and three results


def test_errors_are_one_line_and_exit_2(indexed, synthetic_kinetics, tiny_checkpoint, tmp_path, capsys):
    clip, _ = _cut(_source(synthetic_kinetics), 0, 24, tmp_path / "clip.mp4")
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    for args, message in [
        ((bad, "--index", indexed), "not a readable video"),
        ((tmp_path / "missing.mp4", "--index", indexed), "no such file"),
        ((clip, "--index", tmp_path / "nowhere"), "no index at"),
        ((clip, "--index", indexed, "--k", 0), "--k must be between 1 and"),
        ((clip, "--index", indexed, "--k", 10**6), "--k must be between 1 and"),
    ]:
        code, err = _query(capsys, *args)
        assert code == 2 and err.startswith("error:") and message in err and err.count("\n") == 1, err
    # a checkpoint whose weights changed since the index was built
    other = tmp_path / "changed.pt"
    state = torch.load(tiny_checkpoint, weights_only=True)
    name = next(k for k in state["model"] if k.startswith("backbone.") and k.endswith("weight"))
    state["model"][name] = state["model"][name] + 1
    torch.save(state, other)
    moved = tmp_path / "index"
    moved.mkdir()
    for f in indexed.iterdir():
        (moved / f.name).write_bytes(f.read_bytes())
    sidecar = json.loads((moved / "index.json").read_text())
    sidecar["model"]["checkpoint"] = str(other)
    (moved / "index.json").write_text(json.dumps(sidecar))
    code, err = _query(capsys, clip, "--index", moved)
    assert code == 2 and "no longer holds the model" in err
    # the store the index points at was moved, or exported again
    for change, message in [
        ({"store": str(tmp_path / "moved.zarr")}, "is gone"),
        ({"identity": "0" * 16}, "exported again"),
    ]:
        sidecar = json.loads((indexed / "index.json").read_text())
        sidecar["sources"][0].update(change)
        (moved / "index.json").write_text(json.dumps(sidecar))
        code, err = _query(capsys, clip, "--index", moved)
        assert code == 2 and message in err and err.count("\n") == 1, err


@given(st.lists(st.floats(-1, 1), min_size=1, max_size=60), st.integers(0, 5), st.integers(1, 6))
def test_peaks_are_separated_best_first_and_include_the_maximum(scores, separation, count):
    top = peaks(np.array(scores), separation, count)
    assert 1 <= len(top) <= count and top[0] == int(np.argmax(scores))
    assert all(abs(a - b) > separation for i, a in enumerate(top) for b in top[:i])
    assert list(np.array(scores)[top]) == sorted(np.array(scores)[top], reverse=True)
