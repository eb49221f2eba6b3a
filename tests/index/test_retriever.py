"""``index.retriever.Retriever``: the Python API gives what ``python -m index.query`` prints, for a
file, its bytes or its frames, and within-video search and errors as the CLI has them."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from index.query import main as query_main
from index.retriever import Hit, QueryError, Retriever


@pytest.fixture(scope="module")
def retriever(small_index) -> Retriever:
    return Retriever(small_index, device="cpu")


def _cli(capsys, *args) -> dict:
    assert query_main([str(a) for a in args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("distinct", [False, True], ids=["windows", "distinct"])
def test_hits_equal_the_cli_json(retriever, small_index, query_clip, capsys, distinct):
    clip, key = query_clip
    flags = ["--distinct"] if distinct else []
    cli = _cli(capsys, clip, "--index", small_index, "--k", 6, "--json", *flags)["results"]
    hits = retriever.search(clip, k=6, distinct=distinct)
    assert all(isinstance(h, Hit) for h in hits) and hits[0].video == key
    assert [h.to_dict() for h in hits] == cli
    assert [h.rank for h in hits] == list(range(1, 7))
    videos = [h.video for h in hits]
    assert (len(set(videos)) == len(videos)) if distinct else len(set(videos)) < len(videos)  # windows repeat


def test_bytes_and_frames_query_like_the_file(retriever, query_clip):
    clip, key = query_clip
    by_path = retriever.embed(clip)
    assert np.array_equal(retriever.embed(clip.read_bytes()), by_path)  # the same file, from memory
    with av.open(str(clip)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    from_frames = retriever.embed(frames)  # lossless FFV1, then normalised: only the last re-encode differs
    assert from_frames.shape == by_path.shape and float(from_frames @ by_path) > 0.99
    assert retriever.search(frames, k=1)[0].video == key


def test_search_within_peaks_where_the_cli_does(
    retriever, small_index, query_clip, synthetic_kinetics, capsys, tmp_path
):
    clip, _ = query_clip
    long_video = sorted((synthetic_kinetics / "train").glob("*.mp4"))[5]
    plot = tmp_path / "curve.png"
    cli = _cli(capsys, clip, "--index", small_index, "--k", 1, "--json", "--within", long_video, "--plot", plot)
    curve = retriever.search_within(clip, long_video)
    assert {k: cli["within"][k] for k in ("times", "scores", "peaks")} == curve
    assert 8 / 25 - 0.5 < curve["peaks"][0]["time"] < 40 / 25 + 0.5  # near the cut (synthetic videos: 25 fps)


@pytest.mark.parametrize(
    "video, says",
    [
        (b"", "empty"),
        (b"not a video at all" * 100, "upload.video"),
        (np.zeros((4, 8, 8), np.uint8), "uint8 (T, H, W, 3)"),
    ],
    ids=["empty-bytes", "garbage-bytes", "bad-frames"],
)
def test_bad_input_is_one_line(retriever, video, says):
    with pytest.raises(QueryError) as caught:
        retriever.search(video, k=3)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_k_out_of_range_is_refused_before_the_transcode(retriever, tmp_path):
    with pytest.raises(QueryError, match="k must be between 1 and"):
        retriever.search(tmp_path / "never-read.mp4", k=retriever.count + 1)
