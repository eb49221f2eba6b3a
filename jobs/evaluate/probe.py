"""Linear probe: a linear classifier on frozen features, the quick answer to "does my model transfer?".

Features are the embedding store's video rows (``index.export``: the backbone's last conv features,
globally pooled per clip and averaged over evenly spaced clips, unit length). A multinomial logistic
regression is fitted to the train split's rows, full batch with L-BFGS (deterministic, seconds on a
CPU for UCF101's 9.5k videos), and the test split's rows report top-1 and top-5.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from index import store

TOP_K = (1, 5)

log = logging.getLogger(__name__)


@dataclass
class Labelled:
    """One split's video features and their class indices (into ``classes``)."""

    features: np.ndarray  # (V, D) float32
    labels: np.ndarray  # (V,) int64
    keys: list[str]


def read_split(path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """(features, labels, keys) of every decoded video of an embedding store; ValueError when any
    video has no label (a probe needs labelled shards: UCF101, HMDB51, Kinetics train/val)."""
    features, rows = store.read_embeddings(path, "videos")
    root = store.open_store(path, mode="r")
    labels = [str(x) for x in root["videos"]["label"].get_coordinate_selection(rows)] if len(rows) else []
    keys = [str(x) for x in root["videos"]["key"].get_coordinate_selection(rows)] if len(rows) else []
    unlabelled = [k for k, label in zip(keys, labels) if not label]
    if unlabelled:
        raise ValueError(f"{path}: {len(unlabelled)} videos have no label (e.g. {unlabelled[0]}): a probe needs labels")
    return features, labels, keys


def label_splits(train: tuple, test: tuple) -> tuple[list[str], Labelled, Labelled]:
    """Classes (the train split's, sorted) and both splits as class indices. Test videos of a class
    the train split lacks cannot be predicted: they are left out, with a warning naming the classes."""
    classes = sorted(set(train[1]))
    if not classes:
        raise ValueError("the train split has no videos")
    index = {c: i for i, c in enumerate(classes)}
    unseen = sorted(set(test[1]) - set(classes))
    if unseen:
        log.warning("test classes absent from train, their videos left out: %s", ", ".join(unseen))
    keep = [i for i, label in enumerate(test[1]) if label in index]

    def labelled(split, rows) -> Labelled:
        features, labels, keys = split
        return Labelled(
            np.asarray(features, np.float32)[rows],
            np.array([index[labels[i]] for i in rows], np.int64),
            [keys[i] for i in rows],
        )

    return classes, labelled(train, list(range(len(train[1])))), labelled(test, keep)


def fit_linear(
    features: np.ndarray,
    labels: np.ndarray,
    classes: int,
    *,
    weight_decay: float = 1e-4,
    steps: int = 200,
    device: str = "cpu",
) -> torch.nn.Linear:
    """Multinomial logistic regression, full batch: min mean cross-entropy + weight_decay/2 |W|^2,
    by L-BFGS with a strong Wolfe line search from zero weights (so the same data gives the same
    classifier), on ``device`` (the GPU when there is one: features of a whole dataset fit in it)."""
    x = torch.as_tensor(features, dtype=torch.float32, device=device)
    y = torch.as_tensor(labels, dtype=torch.long, device=device)
    head = torch.nn.Linear(x.shape[1], classes).to(device)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def loss():
        optimizer.zero_grad()
        value = F.cross_entropy(head(x), y) + 0.5 * weight_decay * head.weight.pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    return head.cpu().eval()


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, ks=TOP_K) -> dict[str, float]:
    """Share of rows whose label is among their k highest logits, for each k up to the class count."""
    order = np.argsort(-np.asarray(logits), axis=1, kind="stable")
    hit = order == np.asarray(labels)[:, None]
    return {f"top{k}": float(hit[:, :k].any(axis=1).mean()) for k in ks if k <= order.shape[1]}


@torch.no_grad()
def linear_probe(train: Labelled, test: Labelled, classes: int, **fit) -> dict:
    """Fit on ``train``, report on both splits: {"train": {top1, top5}, "test": {...}, counts}."""
    head = fit_linear(train.features, train.labels, classes, **fit)
    scores = {
        name: topk_accuracy(head(torch.as_tensor(split.features, dtype=torch.float32)).numpy(), split.labels)
        for name, split in (("train", train), ("test", test))
    }
    return {**scores, "classes": classes, "train_videos": len(train.labels), "test_videos": len(test.labels)}
