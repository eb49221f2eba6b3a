"""The linear probe (jobs.evaluate.probe) and its command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jobs.evaluate.probe import Labelled, label_splits, linear_probe, topk_accuracy
from pipeline import logs


def _classes(n_per_class: int, classes: int = 5, dim: int = 32, noise: float = 0.3, seed: int = 0):
    """Unit rows around one random centre per class: separable by a linear classifier."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, dim))
    labels = np.repeat(np.arange(classes), n_per_class)
    x = centres[labels] / np.linalg.norm(centres[labels], axis=1, keepdims=True)
    x = x + noise / np.sqrt(dim) * rng.standard_normal(x.shape)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def test_a_probe_on_features_that_separate_the_classes_reaches_100_percent():
    x, y = _classes(30, seed=0)  # one set of class centres; train and test are other points around them
    train = np.arange(len(y)) % 3 != 0
    result = linear_probe(Labelled(x[train], y[train], []), Labelled(x[~train], y[~train], []), 5)
    assert result["train"]["top1"] == 1.0 and result["test"]["top1"] == 1.0 and result["test"]["top5"] == 1.0


def test_topk_accuracy_by_hand():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.2], [0.3, 0.2, 0.5], [0.0, 0.1, 0.2]])
    labels = np.array([1, 2, 2, 0])
    # row 0: top1 right; row 1: label 2 is 2nd; row 2: top1 right; row 3: label 0 is last (3rd)
    assert topk_accuracy(logits, labels, ks=(1, 2, 3, 5)) == {"top1": 0.5, "top2": 0.75, "top3": 1.0}


def test_classes_come_from_train_and_unseen_test_classes_are_named(capsys):
    logs.configure()  # as the commands do: warnings to stderr
    train = (np.eye(3, dtype=np.float32), ["b", "a", "b"], ["k0", "k1", "k2"])
    test = (np.eye(3, dtype=np.float32), ["a", "z", "b"], ["t0", "t1", "t2"])
    classes, tr, te = label_splits(train, test)
    assert classes == ["a", "b"] and list(tr.labels) == [1, 0, 1]
    assert te.keys == ["t0", "t2"] and list(te.labels) == [0, 1]
    err = capsys.readouterr().err
    assert "absent from train" in err and err.rstrip().endswith(": z")


def test_command_probes_a_checkpoint_on_labelled_shards(synthetic_splits, tiny_checkpoint, tmp_path, capsys):
    from jobs.evaluate.linear_probe import main

    out = tmp_path / "probe"
    args = [str(tiny_checkpoint), "--data", str(synthetic_splits), "--out", str(out), "--size", "64", "--json"]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "results.json").read_text())
    assert printed == saved
    manifests = {s: json.loads((synthetic_splits / s / "manifest.json").read_text()) for s in ("train", "test")}
    assert saved["classes"] == len(manifests["train"]["labels"])
    assert saved["train_videos"] == manifests["train"]["ok"] and saved["test_videos"] == manifests["test"]["ok"]
    # the stores hold the checkpoint's features of each split, and the figures are the probe's on them
    from index.embed import video_embeddings
    from jobs.evaluate.probe import read_split
    from models.trained import load_trained

    train, test = read_split(out / "train.zarr"), read_split(out / "test.zarr")
    keys, _, direct = video_embeddings(load_trained(tiny_checkpoint).backbone, synthetic_splits / "test", size=64)
    assert keys == test[2] and np.allclose(direct, test[0], atol=2e-3)  # float16 store
    classes, tr, te = label_splits(train, test)
    expected = linear_probe(tr, te, len(classes))
    assert saved["train"] == expected["train"] and saved["test"] == expected["test"]
    # a second probe reuses the exported features (the stores are complete) and gives the same answer
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["test"] == saved["test"]


def test_command_refuses_a_folder_without_the_splits(tiny_checkpoint, tmp_path, capsys):
    from jobs.evaluate.linear_probe import main

    assert main([str(tiny_checkpoint), "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_unlabelled_videos_are_refused_before_any_fit(tmp_path):
    from index import store
    from jobs.evaluate.probe import read_split

    layout = store.Layout((1, 1), 2, 2)
    root = store.create(tmp_path / "s.zarr", layout, 4, {})
    clips = {"embedding": np.ones((2, 4), np.float32), "video": np.array([0, 1], np.int32)}
    clips |= {name: np.zeros(2, dtype) for name, dtype in store.CLIP_COLUMNS.items() if name != "video"}
    store.write_unit(
        root,
        0,
        clips,
        {
            "embedding": np.ones((2, 4), np.float32),
            "key": ["a", "b"],
            "label": ["x", ""],
            "fps": [25.0, 25.0],
            "frames": [16, 16],
        },
    )
    store.finish(root)
    with pytest.raises(ValueError, match="no label"):
        read_split(tmp_path / "s.zarr")
