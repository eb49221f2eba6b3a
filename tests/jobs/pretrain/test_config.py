"""Pretraining configs (jobs/pretrain/config.py): every shipped config loads and builds, overrides and
their errors, and the fields a resume names as changed."""

from __future__ import annotations

import pytest

from jobs.pretrain.config import CONFIG_DIR, apply_override, from_dict, load
from models.classifier import Classifier
from models.pretext import PLAN_OF, SpeedNetTask, build_pretext
from models.rspnet import RSPNet
from pipeline.plans import PLANS


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads_and_builds(path):
    config = load(path.stem, ["data.shards=/somewhere"])
    assert config.data.shards == "/somewhere"
    if "tiny" in path.stem or config.model.backbone in ("r3d18", "c3d"):
        model = build_pretext(
            config.model.method, config.model.backbone, config.model.backbone_options, **config.model.options
        )
        assert isinstance(model, (SpeedNetTask, RSPNet, Classifier))
    assert PLAN_OF[config.model.method] in PLANS  # the loader has the plan the task trains on


def test_config_overrides_and_errors():
    raw = {}
    apply_override(raw, "optim.lr=0.05")
    apply_override(raw, "data.shards=/data/k400")  # not TOML: stays a string
    apply_override(raw, "model.options.lam=2")
    config = from_dict(raw)
    assert config.optim.lr == 0.05 and config.data.shards == "/data/k400" and config.model.options == {"lam": 2}
    with pytest.raises(ValueError, match="unknown fields"):
        from_dict({"optim": {"learning_rate": 1}})
    with pytest.raises(ValueError, match="unknown config sections"):
        from_dict({"trainer": {}})
    with pytest.raises(ValueError, match="no config"):
        load("no_such_config")


def test_resume_names_the_config_fields_that_changed():
    from jobs.pretrain.loop import _changed_fields

    saved = load("tiny_rspnet").to_dict()
    assert _changed_fields(saved, saved) == []
    assert _changed_fields(saved, load("tiny_rspnet", ["optim.max_steps=5", "model.options.lam=2"]).to_dict()) == [
        "model.options",
        "optim.max_steps",
    ]
