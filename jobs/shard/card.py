"""The dataset card, ``OUT/README.md``: what Hugging Face ``datasets`` and the Hub read first.

Its YAML header maps each split that has tars to them (``configs``) and declares the columns (the
video, ``json`` with the fields of ``SampleMeta``, derived from the dataclass, and webdataset's
``__key__`` and ``__url__``), so ``datasets.load_dataset(OUT)`` reads the samples with its webdataset
builder. Without it ``datasets`` picks a builder by the commonest file extension under OUT, and where
a split has one tar its ``manifest.json`` wins that count. The text says what the shards hold, how
many samples each split has, and where the sample schema is documented (``pipeline.shard_format``,
not repeated here).

The card is made from every split manifest under OUT, not only the current run's splits, so splits
sharded in separate runs, resumed runs and ``--overwrite`` all leave a card of what OUT holds. A
README.md without ``MARKER`` is the user's own: the job leaves it as it is.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import typing
from pathlib import Path

import yaml

from pipeline.atomic import atomic_write_text
from pipeline.normalise import CODECS
from pipeline.shard_format import SHARD_GLOB, SampleMeta

MARKER = "<!-- Written by `python -m jobs.shard` from the split manifests. Delete this line to keep your edits. -->"
_ORDER = ("train", "val", "validation", "test")
_SPLIT_NAME = re.compile(r"\w+(\.\w+)*")  # the split names datasets accepts
_DTYPES = {str: "string", int: "int64", float: "float64", bool: "bool"}


def read_manifests(out: Path) -> list[dict]:
    """The split manifests under ``out`` (``OUT/<split>/manifest.json``)."""
    manifests = []
    for path in sorted(Path(out).glob("*/manifest.json")):
        try:
            manifest = json.loads(path.read_text())
        except ValueError:  # not this job's file: no split to describe
            continue
        # A renamed split folder no longer holds what its manifest names: its tars are not at <split>/.
        if isinstance(manifest, dict) and manifest.get("split") == path.parent.name:
            manifests.append(manifest)
    return manifests


def card_text(manifests: list[dict]) -> str:
    """The card of the splits ``manifests`` describe (at least one); the same manifests, the same text."""
    manifests = sorted(
        manifests, key=lambda m: (_ORDER.index(m["split"]) if m["split"] in _ORDER else len(_ORDER), m["split"])
    )
    loadable = [m["split"] for m in manifests if m["shards"] and _SPLIT_NAME.fullmatch(m["split"])]
    left_out = [m["split"] for m in manifests if m["split"] not in loadable]
    containers = sorted({_container(m) for m in manifests})
    return _yaml_header(loadable, containers) + _description(manifests, left_out, containers)


def _yaml_header(splits: list[str], containers: list[str]) -> str:
    header: dict = {}
    if splits:  # a configs entry without data_files is an error to datasets
        data_files = [{"split": split, "path": f"{split}/{SHARD_GLOB}"} for split in splits]
        # Declared features: datasets would otherwise infer them from a few samples of one split,
        # and an unlabelled split's null labels would then refuse every labelled one.
        columns = [{"name": c, "dtype": "video"} for c in containers]
        columns += [{"name": "json", "struct": _features(SampleMeta)}]
        columns += [{"name": name, "dtype": "string"} for name in ("__key__", "__url__")]
        header["configs"] = [{"config_name": "default", "data_files": data_files}]
        header["dataset_info"] = {"config_name": "default", "features": columns}
    header |= {"tags": ["webdataset", "video"], "task_categories": ["video-classification"]}
    return "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n"


def _features(cls: type) -> list[dict]:
    """The fields of dataclass ``cls`` as datasets' YAML features; a dataclass field is a struct."""
    hints = typing.get_type_hints(cls)
    features = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        kind = next((t for t in typing.get_args(hint) if t is not type(None)), hint)  # str | None: str
        if dataclasses.is_dataclass(kind):
            features.append({"name": f.name, "struct": _features(kind)})
        else:
            features.append({"name": f.name, "dtype": _DTYPES[kind]})
    return features


def _description(manifests: list[dict], left_out: list[str], containers: list[str]) -> str:
    folds = sorted({m["settings"]["fold"] for m in manifests if "fold" in m["settings"]})
    source = ", ".join(sorted({m["dataset"] for m in manifests})) + (f" (fold {folds[0]})" if len(folds) == 1 else "")
    table = ["| split | samples | failed | missing | tars | GB | stored as |", "|---|--:|--:|--:|--:|--:|---|"]
    for m in manifests:
        gb = sum(s["bytes"] for s in m["shards"]) / 1e9
        cells = [m["split"], m["ok"], len(m["failed"]), len(m["missing"]), len(m["shards"]), f"{gb:.3f}", _stored_as(m)]
        table.append("| " + " | ".join(map(str, cells)) + " |")
    text = [
        MARKER,
        f"# {source} in WebDataset shards",
        f"Videos of {source}, normalised by speedrep's shard job (`python -m jobs.shard`) and stored as "
        "WebDataset tars, one folder per split. Samples per split (failed: on disk but not shardable; "
        "missing: annotated but not on disk):",
        "\n".join(table),
    ]
    if left_out:
        text.append(f"Not in `configs` (no tars, or not a split name `datasets` accepts): {', '.join(left_out)}.")
    text += [
        "Each sample is two tar members: `<key>.<container>`, the video, and `<key>.json`, its metadata. "
        "Both, and every field of the JSON, are documented in speedrep's `pipeline/shard_format.py` "
        "(`SampleMeta`). `<split>/manifest.json` lists the split's tars, its labels (a sample's "
        "`label_index` indexes them) and every failed or missing video with the reason.",
        "```python\nfrom datasets import load_dataset\n\n"
        f'shards = load_dataset("path/to/this/folder")  # columns {", ".join(containers)}, json, __key__, __url__\n```',
        "The video column decodes with torchcodec; `.cast_column(name, Video(decode=False))` gives its bytes.",
    ]
    return "\n\n".join(text) + "\n"


def _container(manifest: dict) -> str:
    return CODECS[manifest["settings"]["settings"]["encode"]["codec"]].container


def _stored_as(manifest: dict) -> str:
    encode = manifest["settings"]["settings"]["encode"]
    size = f"short side <= {encode['short_side']} px" if encode["short_side"] else "sizes kept"
    return f"{encode['codec']} in {_container(manifest)}, {encode['fps']} fps, {size}"


def write_card(out: Path) -> Path | None:
    """Write ``OUT/README.md`` from the manifests under ``out``, atomically; the path, or None where a
    README.md that this job did not write is there (it is left as it is)."""
    path = Path(out) / "README.md"
    if path.exists() and MARKER not in path.read_text(errors="replace"):
        print(f"note: {path} was not written by this job: left as it is, without the dataset card", file=sys.stderr)
        return None
    atomic_write_text(path, card_text(read_manifests(out)))
    return path
