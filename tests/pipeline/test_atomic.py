"""pipeline.atomic: a file or folder appears whole under its name, or the old one stays."""

from __future__ import annotations

import pytest

from pipeline.atomic import atomic_path, atomic_write_bytes, partial_path


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half of the new")
        assert path.read_text() == "old"  # nothing under the final name until the block ends
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_finished_write_replaces_the_file_in_one_step(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    path = tmp_path / "store.zarr"
    with pytest.raises(ValueError), atomic_path(path) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("1")
        raise ValueError("failed half-way")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(path) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("1")
    assert [p.name for p in path.iterdir()] == ["a"] and len(list(tmp_path.iterdir())) == 1


def test_temporary_names_are_hidden_per_process_and_never_match_the_final_glob(tmp_path):
    tmp = partial_path(tmp_path / "train-000000.tar")
    assert tmp.parent == tmp_path and tmp.name.startswith(".train-000000.tar.") and tmp.suffix == ".partial"
