"""The tar writer: DALI's own indexer and reader agree with what it writes; nothing partial is visible."""

import tarfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.shard_format import index_path
from pipeline.tar_writer import ShardTarWriter

samples_strategy = st.lists(
    st.tuples(
        st.from_regex(r"-?[A-Za-z0-9_]{1,20}", fullmatch=True), st.binary(max_size=3000), st.binary(max_size=600)
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda s: s[0],
)


def _write(path, samples):
    with ShardTarWriter(path) as w:
        for key, video, meta in samples:
            w.add(key, {"mp4": video, "json": meta})
        w.commit()


@settings(max_examples=25, deadline=None)
@given(samples_strategy)
def test_index_offsets_point_at_member_data(tmp_path_factory, samples):
    path = tmp_path_factory.mktemp("t") / "s-000000.tar"
    _write(path, samples)
    raw = path.read_bytes()
    lines = index_path(path).read_text().splitlines()
    assert lines[0] == f"v1.2 {len(samples)}"
    for line, (key, video, meta) in zip(lines[1:], samples):
        f = line.split()
        assert f[0::4] == ["mp4", "json"] and f[3::4] == [f"{key}.mp4", f"{key}.json"]
        for (offset, size), data in zip([(int(f[1]), int(f[2])), (int(f[5]), int(f[6]))], [video, meta]):
            assert raw[offset : offset + size] == data
    with tarfile.open(path) as t:  # and it is an ordinary tar
        assert t.getnames() == [f"{k}.{e}" for k, _, _ in samples for e in ("mp4", "json")]


def test_index_equals_dalis_own_indexer(tmp_path):
    wds2idx = pytest.importorskip("wds2idx")
    rng = np.random.default_rng(0)
    samples = [(f"-k{i}_000001_000011", rng.bytes(int(rng.integers(1, 5000))), b"{}") for i in range(7)]
    path = tmp_path / "s-000000.tar"
    _write(path, samples)
    theirs = tmp_path / "theirs.idx"
    with wds2idx.IndexCreator(str(path), str(theirs), verbose=False) as creator:
        creator.create_index()
    assert index_path(path).read_text() == theirs.read_text()


def test_dali_reader_returns_the_written_bytes(tmp_path):
    pytest.importorskip("nvidia.dali")
    from nvidia.dali import fn, pipeline_def

    rng = np.random.default_rng(1)
    samples = [(f"v{i}", rng.bytes(int(rng.integers(1, 4000))), f'{{"i": {i}}}'.encode()) for i in range(5)]
    path = tmp_path / "s-000000.tar"
    _write(path, samples)

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def read():
        return tuple(
            fn.readers.webdataset(
                paths=[str(path)],
                index_paths=[str(index_path(path))],
                ext=["mp4", "json"],
                missing_component_behavior="error",
            )
        )

    pipe = read()
    pipe.build()
    for _, video, meta in samples:
        v, m = pipe.run()
        assert np.array(v[0]).tobytes() == video and np.array(m[0]).tobytes() == meta


def test_nothing_visible_until_commit(tmp_path):
    path = tmp_path / "s-000000.tar"
    with pytest.raises(KeyboardInterrupt):
        with ShardTarWriter(path) as w:
            w.add("a", {"mp4": b"x" * 100, "json": b"{}"})
            assert list(tmp_path.glob("*.tar")) == []
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []  # the partial file is gone too
    with ShardTarWriter(path) as w:
        w.add("a", {"mp4": b"x", "json": b"{}"})
    assert list(tmp_path.iterdir()) == []  # leaving without commit writes nothing


def test_two_writers_of_one_shard_never_share_a_file_and_stale_partials_go(tmp_path):
    import socket
    import subprocess

    from pipeline.atomic import partial_path, remove_stale_partials

    path = tmp_path / "s-000000.tar"
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale = path.with_name(f".{path.name}.{socket.gethostname()}-{dead.pid}.partial")
    stale.write_bytes(b"left by a killed run")
    live = partial_path(path)
    live.write_bytes(b"being written by this process")
    other_host = path.with_name(f".{path.name}.elsewhere-1.partial")
    other_host.write_bytes(b"another node's writer")
    remove_stale_partials(path)
    assert not stale.exists() and live.exists() and other_host.exists()
