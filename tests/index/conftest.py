"""A small clip index shared by the Retriever and service tests: the tiny RSPNet's embeddings of
the synthetic train split, exported and indexed once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

SMALL_SETTINGS = dict(T=8, stride=4, size=32, video_clips=3, videos_per_unit=8, chunk_rows=64)


@pytest.fixture(scope="session")
def small_index(synthetic_splits, tiny_checkpoint, tmp_path_factory) -> Path:
    pytest.importorskip("nvidia.dali")
    from index.build import main as build_main
    from index.export import ExportSettings, export
    from pipeline.shards import resolve_shards

    work = tmp_path_factory.mktemp("small-index")
    shards = resolve_shards(synthetic_splits / "train")
    assert export(tiny_checkpoint, shards, work / "train.zarr", ExportSettings(**SMALL_SETTINGS), progress=False)
    assert build_main([str(work / "train.zarr"), "--out", str(work / "index")]) == 0
    return work / "index"


@pytest.fixture(scope="session")
def query_clip(synthetic_kinetics, tmp_path_factory) -> tuple[Path, str]:
    """Frames 8-40 of one indexed video, re-encoded as a user's H.264 file; and that video's key."""
    import av

    from tests.support.media import write_video

    source = sorted((synthetic_kinetics / "train").glob("*.mp4"))[5]
    with av.open(str(source)) as c:
        fps = float(c.streams.video[0].average_rate)
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if 8 <= i < 40]
    out = tmp_path_factory.mktemp("query") / "clip.mp4"
    return write_video(out, frames, fps=round(fps)), source.stem
