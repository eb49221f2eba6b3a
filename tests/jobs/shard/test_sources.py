"""Datasets as users have them on disk (jobs/shard/sources.py), through the shard job: every Kinetics
CSV row accounted for, labels and metadata, the replacement folder; UCF101 and HMDB51 split files and folds."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from jobs.shard.__main__ import main
from pipeline.shard_format import KEY_PATTERN, make_key
from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset
from tests.support.shards import read_split


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


# --- UCF101 and HMDB51 layouts ----------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("clips")
    make_kinetics_dataset(
        root, SyntheticConfig(videos_per_class={"train": 1, "val": 0, "test": 0}, duration_s=1.6, seed=5)
    )
    return sorted((root / "train").glob("*.mp4"))[:4]


def test_ucf101_official_split_files(clips, tmp_path):
    root = tmp_path / "UCF101"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    classes = ["ApplyEyeMakeup", "HandstandPushups"]
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n")
    names = [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        "HandstandPushups/v_HandStandPushups_g01_c01.avi",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "HandstandPushups/v_HandStandPushups_g02_c01.avi",
    ]
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
    names = {
        "brush_hair": ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "Blonde_hair_(2003).brush_h_f_nm_np1_le_goo_1.avi"],
        "climb": ["Dad&Me_climb_f_cm_np1_ba_goo_0.avi", "unused_climb_f_cm_np1_ba_goo_0.avi"],
    }
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
    names = [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        "HandstandPushups/v_HandStandPushups_g01_c01.avi",
        "HandstandPushups/v_HandStandPushups_g02_c01.avi",
    ]
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
        expected = {
            split: {Path(names[i]).stem: names[i].split("/")[0] for i in picked}
            for split, picked in zip(("train", "test"), FOLDS[fold])
        }
        assert _labels_by_split(tmp_path / f"fold{fold}") == expected, fold
    # An assignment belongs to its fold: another fold into the same OUT is refused, never resumed as the old one.
    assert main(args[:3] + ["--out", str(tmp_path / "fold2"), "--fold", "3", *FAST]) == 2
    assert "fold: 2 -> 3" in capsys.readouterr().err


def test_hmdb51_folds_2_and_3_read_their_own_split_files(clips, tmp_path):
    names = [
        ("brush_hair", "April_09_brush_hair_u_nm_np1_ba_goo_0.avi"),
        ("brush_hair", "Brush_my_hair_(2004)_brush_hair_h_nm_np1_fr_goo_1.avi"),
        ("climb", "Dad&Me_climb_f_cm_np1_ba_goo_0.avi"),
        ("climb", "Rock_climb_f_cm_np1_le_goo_2.avi"),
    ]
    root = tmp_path / "hmdb51"
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for clip, (action, name) in zip(clips, names):
        (root / action).mkdir(exist_ok=True)
        shutil.copy(clip, root / action / name)
    for fold, codes in HMDB_CODES.items():
        for action in ("brush_hair", "climb"):
            (splits / f"{action}_test_split{fold}.txt").write_text(
                "".join(f"{name} {code} \n" for (a, name), code in zip(names, codes) if a == action)
            )
    for fold in (2, 3):
        out = tmp_path / f"fold{fold}"
        assert main(["hmdb51", "--root", str(root), "--out", str(out), "--fold", str(fold), *FAST]) == 0
        expected = {
            split: {
                make_key(Path(name).stem): action
                for (action, name), code in zip(names, HMDB_CODES[fold])
                if code == wanted
            }
            for split, wanted in (("train", "1"), ("test", "2"))
        }
        assert _labels_by_split(out) == expected, fold
