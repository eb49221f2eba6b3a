"""Checkpoints (jobs/pretrain/checkpoint.py): atomic, weights only, the latest that loads, and a
backbone started from another run's checkpoint."""

from __future__ import annotations

import pickle

import pytest
import torch

from jobs.pretrain import checkpoint
from models.pretext import build_pretext
from models.trained import read_checkpoint


def test_checkpoint_is_atomic_weights_only_and_latest_skips_damage(tmp_path):
    state = {"step": 3, "model": {"w": torch.ones(2)}, "config": {"a": [1, 2]}, "loader": {"epoch": 0, "step": 3}}
    checkpoint.save(tmp_path, state)
    checkpoint.save(tmp_path, state | {"step": 7})
    checkpoint.save(tmp_path, state | {"step": 9}, keep=2)
    assert checkpoint.all_steps(tmp_path) == [7, 9]
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
    assert read_checkpoint(checkpoint.latest(tmp_path))["step"] == 9
    checkpoint.path_for(tmp_path, 11).write_bytes(b"torn")  # e.g. a full disk that was not atomic
    assert checkpoint.latest(tmp_path) == checkpoint.path_for(tmp_path, 9)


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_checkpoint_load_refuses_pickled_code(tmp_path, capsys):
    path = tmp_path / "bad.pt"
    torch.save({"step": 1, "x": _Evil()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        read_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out  # refused before anything in it was called


def test_model_init_starts_the_backbone_and_key_encoder_from_another_checkpoint(tmp_path):
    torch.manual_seed(1)
    source = build_pretext("speednet", "r3d10", {"width": 4})
    path = tmp_path / "speednet.pt"
    torch.save({"step": 5, "model": source.state_dict()}, path)
    torch.manual_seed(2)
    target = build_pretext("rspnet", "r3d10", {"width": 4}, queue_size=32, dim=16)
    checkpoint.init_backbone(target, path)
    for name, value in source.backbone.state_dict().items():
        assert torch.equal(target.backbone.state_dict()[name], value)
        assert torch.equal(target.key_backbone.state_dict()[name], value)
    wider = build_pretext("rspnet", "r3d10", {"width": 8}, queue_size=32, dim=16)
    with pytest.raises(ValueError, match="does not fit"):
        checkpoint.init_backbone(wider, path)
    with pytest.raises(ValueError, match="no checkpoint"):
        checkpoint.init_backbone(wider, tmp_path / "missing.pt")
