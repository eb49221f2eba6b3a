"""Encoder folders (``models.pretrained``, ``python -m models.export_model``): the same numbers as
the checkpoint they came from, loadable wherever a checkpoint is, and one clear line when broken."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.export_model import main as export_main
from models.pretrained import Encoder, load_encoder
from models.trained import CheckpointError, fingerprint, load_trained


@pytest.fixture(scope="module", params=["rspnet", "speednet"])
def exported(request, tiny_checkpoint, tiny_speednet_checkpoint, tmp_path_factory) -> tuple[Path, Path]:
    checkpoint = tiny_checkpoint if request.param == "rspnet" else tiny_speednet_checkpoint
    out = tmp_path_factory.mktemp("encoder") / request.param
    assert export_main([str(checkpoint), str(out)]) == 0
    return checkpoint, out


def _clips() -> torch.Tensor:
    return torch.randn(2, 3, 16, 32, 32, generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def test_folder_embeds_bit_for_bit_as_the_checkpoint(exported):
    checkpoint, folder = exported
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    before, after = load_trained(checkpoint), load_trained(folder)
    assert (after.method, after.step, after.config) == (before.method, before.step, before.config)
    assert fingerprint(after.backbone) == fingerprint(before.backbone)
    clips = _clips()
    assert torch.equal(after.backbone.forward_features(clips), before.backbone.forward_features(clips))
    if before.method == "speednet":  # the speed head comes along, for speediness and speedup
        assert torch.equal(after.pretext.net(clips), before.pretext.net(clips))
    direct = Encoder.from_pretrained(folder)
    assert not direct.training and torch.equal(direct.backbone(clips), before.backbone(clips))


def test_export_refuses_an_existing_folder(exported, capsys):
    checkpoint, folder = exported
    assert export_main([str(checkpoint), str(folder)]) == 2
    assert "already exists" in capsys.readouterr().err


def _broken(folder: Path, tmp_path: Path, change) -> Path:
    copy = tmp_path / "broken"
    copy.mkdir()
    for f in folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    change(copy)
    return copy


def _edit_config(**fields):
    def change(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, **fields}))

    return change


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda f: (f / "model.safetensors").unlink(), "has no model.safetensors"),
        (lambda f: (f / "model.safetensors").write_bytes(b"\0" * 64), "model.safetensors does not fit"),
        (lambda f: (f / "config.json").write_text("{"), "config.json is not valid JSON"),
        (_edit_config(backbone="nonesuch"), "unknown backbone 'nonesuch'"),
        (_edit_config(backbone_options={"width": 2}), "model.safetensors does not fit its config"),
        (_edit_config(method="moco"), "method must be one of"),
    ],
    ids=["no-weights", "corrupt-weights", "bad-json", "unknown-backbone", "wrong-shapes", "unknown-method"],
)
def test_a_broken_folder_gives_one_clear_line(exported, tmp_path, change, says):
    broken = _broken(exported[1], tmp_path, change)
    with pytest.raises(CheckpointError) as caught:
        load_trained(broken)
    message = str(caught.value)
    assert says in message and "\n" not in message and str(broken) in message
    with pytest.raises(ValueError):
        load_encoder(broken)


def test_an_export_from_the_folder_stores_the_checkpoints_embeddings(exported, synthetic_splits, tmp_path):
    """``--checkpoint FOLDER`` through a real command (the embedding export): the same rows, bit for bit."""
    pytest.importorskip("nvidia.dali")
    import zarr

    from index.export import ExportSettings, export
    from pipeline.shards import resolve_shards

    checkpoint, folder = exported
    settings = ExportSettings(T=8, stride=4, size=32, video_clips=2, videos_per_unit=8, chunk_rows=64)
    shards = resolve_shards(synthetic_splits / "train")[:1]
    stores = {}
    for name, model in (("checkpoint", checkpoint), ("folder", folder)):
        assert export(model, shards, tmp_path / f"{name}.zarr", settings, progress=False)
        stores[name] = zarr.open_group(str(tmp_path / f"{name}.zarr"), mode="r")
    for level in ("clips", "videos"):
        rows = [stores[name][level]["embedding"][:] for name in stores]
        assert rows[0].any() and np.array_equal(rows[0], rows[1])
    assert stores["folder"].attrs["model"]["checkpoint"] == str(folder.resolve())
