"""The dataset card (``OUT/README.md``, jobs/shard/card.py): Hugging Face ``datasets`` reads every split
of the shards through it, with its samples; resumed, extended and overwritten jobs leave a card of
what OUT holds; a README.md of the user's is left alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
from huggingface_hub import DatasetCard

from jobs.shard.__main__ import main
from jobs.shard.card import card_text
from tests.support.shards import read_split


def _configs(card: Path | str) -> dict[str, str]:
    """split -> data_files path, from the card's YAML header as the Hub parses it."""
    data = DatasetCard.load(card).data if isinstance(card, Path) else DatasetCard(card).data
    (config,) = data.configs
    assert config["config_name"] == "default"
    return {f["split"]: f["path"] for f in config["data_files"]}


def _load(out: Path, cache: Path) -> datasets.DatasetDict:
    return datasets.load_dataset(str(out), cache_dir=str(cache))


def _assert_split_is_the_tars(rows: datasets.Dataset, split_dir: Path) -> None:
    """The rows are the split's samples, as read from its tars without the product's code."""
    manifest, samples = read_split(split_dir)
    container = next(iter(samples.values()))[0].container
    assert rows.num_rows == manifest["ok"] == len(samples)
    assert set(rows.column_names) == {container, "json", "__key__", "__url__"}
    rows = rows.cast_column(container, datasets.Video(decode=False))  # bytes: no video decoder needed
    for row in rows:
        meta, video = samples[row["__key__"]]
        assert row["json"] == meta.to_json_dict()  # every field, labels None in an unlabelled split
        assert row[container]["bytes"] == video


def test_load_dataset_reads_every_split_with_its_samples(sharded, tmp_path):
    splits = ["train", "val", "test"]  # train with failed and missing videos, test without labels
    assert _configs(sharded / "README.md") == {s: f"{s}/*.tar" for s in splits}
    text = (sharded / "README.md").read_text()
    for split in splits:
        manifest, _ = read_split(sharded / split)
        counts = [manifest["ok"], len(manifest["failed"]), len(manifest["missing"]), len(manifest["shards"])]
        assert f"| {split} | {' | '.join(map(str, counts))} |" in text
    assert "pipeline/shard_format.py" in text  # the schema is referenced, not copied

    loaded = _load(sharded, tmp_path / "hf")
    assert list(loaded) == splits
    for split in splits:
        _assert_split_is_the_tars(loaded[split], sharded / split)


def test_resumed_extended_and_overwritten_jobs_leave_a_card_of_what_out_holds(resumable, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(resumable["reference"], out)
    reference_card = (out / "README.md").read_text()
    assert _configs(out / "README.md") == {"train": "train/*.tar"}

    def run(*args: str) -> int:
        return main(["kinetics", "--root", str(resumable["root"]), "--out", str(out), *args])

    # OUT as a run killed in its second shard leaves it: that shard undone, no manifest, no card.
    train = out / "train"
    for name in ("README.md", "train/manifest.json", "train/train-000001.tar", "train/train-000001.idx"):
        (out / name).unlink()
    (train / ".shard-job" / "done" / "000001.json").unlink()
    assert run(*resumable["args"]) == 0
    assert (out / "README.md").read_text() == reference_card

    # A split sharded by a later run joins the card, which keeps train. It has no videos, so no tars:
    # it is described but not in configs (datasets refuses a split whose files match nothing).
    assert run("--splits", "val", "--workers", "1", "--videos-per-shard", "2", "--no-progress") == 0
    assert _configs(out / "README.md") == {"train": "train/*.tar"}
    assert "| val | 0 | 0 | 0 | 0 |" in (out / "README.md").read_text()

    # Started over as one tar: without the card, datasets would count one .tar against one .json in
    # train/ and read the manifest as the dataset.
    args = ["--splits", "train", "--workers", "1", "--videos-per-shard", "100", "--overwrite", "--no-progress"]
    assert run(*args) == 0
    manifest, _ = read_split(train)
    assert len(manifest["shards"]) == 1
    assert f"| train | {manifest['ok']} | 0 | 0 | 1 |" in (out / "README.md").read_text()
    loaded = _load(out, tmp_path / "hf")
    assert list(loaded) == ["train"]
    _assert_split_is_the_tars(loaded["train"], train)


def test_a_readme_the_job_did_not_write_is_left_alone(resumable, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(resumable["reference"], out)
    (out / "README.md").write_text("# My notes on these shards\n")
    assert main(["kinetics", "--root", str(resumable["root"]), "--out", str(out), *resumable["args"]]) == 0
    assert (out / "README.md").read_text() == "# My notes on these shards\n"
    assert "left as it is" in capsys.readouterr().err


def _manifest(split: str, tars: int) -> dict:
    encode = {"codec": "vp9", "fps": 25, "short_side": 336}
    shards = [{"name": f"{split}-{i:06d}.tar", "samples": 2, "bytes": 1000} for i in range(tars)]
    return {
        "dataset": "kinetics",
        "split": split,
        "ok": 2 * tars,
        "failed": [],
        "missing": [],
        "shards": shards,
        "settings": {"settings": {"encode": encode}},
    }


def test_configs_hold_the_loadable_splits_in_order_with_names_kept_strings():
    splits = {"zz": 1, "1": 1, "test": 1, "train-mini": 1, "val": 0, "train": 2}
    text = card_text([_manifest(split, tars) for split, tars in splits.items()])
    # train, test first; "1" a string, not YAML's integer; no tars (val) or a name datasets refuses
    # (train-mini): described, but out of configs.
    assert list(_configs(text).items()) == [
        ("train", "train/*.tar"),
        ("test", "test/*.tar"),
        ("1", "1/*.tar"),
        ("zz", "zz/*.tar"),
    ]
    assert "Not in `configs` (no tars, or not a split name `datasets` accepts): val, train-mini." in text
    assert text == card_text([_manifest(split, tars) for split, tars in reversed(splits.items())])
