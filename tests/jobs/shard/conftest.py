"""Fixtures of the shard job tests: a Kinetics tree with every quirk users meet, sharded once, and a
small dataset with a reference run for the resume, crash and array tests. Package-scoped: each is
built once for all the files here (they were module fixtures of one file)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jobs.shard.__main__ import main
from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset
from tests.support import media
from tests.support.shards import add_rows, count_rows, rewrite_csv

SMALL = SyntheticConfig(videos_per_class={"train": 2, "val": 1, "test": 1}, duration_s=2.0, seed=3)


@pytest.fixture(scope="package")
def kinetics(tmp_path_factory) -> dict:
    """A Kinetics tree with every quirk users meet: see the comments."""
    root = tmp_path_factory.mktemp("kinetics")
    make_kinetics_dataset(root, SMALL)
    ann = root / "annotations"
    fixtures = media.all_fixtures(root / "train")  # every bad-input class, Kinetics-named
    rows = []
    for fx in fixtures:
        yid, start, end = fx.path.stem.rsplit("_", 2)
        rows.append(
            {
                "label": "edge case (odd) 'files'",
                "youtube_id": yid,
                "time_start": int(start),
                "time_end": int(end),
                "split": "train",
                "is_cc": 0,
            }
        )
    # A row whose file is absent, and a duplicate of an existing row.
    rows.append(
        {
            "label": "edge case (odd) 'files'",
            "youtube_id": "absent_id00",
            "time_start": 5,
            "time_end": 15,
            "split": "train",
            "is_cc": 0,
        }
    )
    rows.append(rows[0])
    # A broken download that the CVDF replacement/ folder replaces by YouTube id.
    shutil.copy(fixtures[0].path, root / "train" / "replacedid0_000000_000002.mp4")
    (root / "train" / "replacedid0_000000_000002.mp4").write_bytes(b"broken download")
    repl = root / "replacement" / "replacement_for_corrupted_k400"
    repl.mkdir(parents=True)
    shutil.copy(fixtures[0].path, repl / "replacedid0_000000_000002.mp4")
    rows.append(
        {
            "label": "edge case (odd) 'files'",
            "youtube_id": "replacedid0",
            "time_start": 0,
            "time_end": 2,
            "split": "train",
            "is_cc": 0,
        }
    )
    add_rows(ann / "train.csv", rows)
    rewrite_csv(ann / "val.csv", drop="is_cc")  # Kinetics-700 header
    rewrite_csv(ann / "test.csv", drop="label")  # a test split without labels
    expect = {fx.path.stem: fx for fx in fixtures}
    return {
        "root": root,
        "fixtures": expect,
        "rows": {s: count_rows(ann / f"{s}.csv") for s in ("train", "val", "test")},
    }


@pytest.fixture(scope="package")
def sharded(kinetics, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    rc = main(
        [
            "kinetics",
            "--root",
            str(kinetics["root"]),
            "--out",
            str(out),
            "--workers",
            "2",
            "--videos-per-shard",
            "5",
            "--no-progress",
        ]
    )
    assert rc == 0
    return out


@pytest.fixture(scope="package")
def resumable(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("resume")
    make_kinetics_dataset(
        root, SyntheticConfig(videos_per_class={"train": 4, "val": 0, "test": 0}, duration_s=2.0, seed=11)
    )
    reference = tmp_path_factory.mktemp("reference")
    args = ["--splits", "train", "--workers", "1", "--videos-per-shard", "2", "--no-progress"]
    assert main(["kinetics", "--root", str(root), "--out", str(reference), *args]) == 0
    return {"root": root, "reference": reference, "args": args}
