"""Pretraining configs (jobs/pretrain/config.py): every shipped config loads and builds, the paper
configs carry the authors' recipes and name each value's source, overrides and their errors,
combinations refused, and the fields a resume names as changed."""

from __future__ import annotations

import pytest

from jobs.pretrain.config import CONFIG_DIR, apply_override, from_dict, load
from models.classifier import Classifier
from models.pretext import PLAN_OF, SpeedNetTask, build_pretext
from models.rspnet import RSPNet, _groups
from pipeline.plans import PLANS
from tests.support.configs import unsourced_values

PAPER = [p for p in sorted(CONFIG_DIR.glob("*.toml")) if not p.stem.startswith("tiny")]
RSPNET = [p.stem for p in PAPER if p.stem.startswith("rspnet")]


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads_and_builds(path):
    config = load(path.stem, ["data.shards=/somewhere"])
    assert config.data.shards == "/somewhere"
    if "tiny" in path.stem or config.model.backbone in ("r3d18_hara", "c3d"):
        model = build_pretext(
            config.model.method, config.model.backbone, config.model.backbone_options, **config.model.options
        )
        assert isinstance(model, (SpeedNetTask, RSPNet, Classifier))
    assert PLAN_OF[config.model.method] in PLANS  # the loader has the plan the task trains on


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_every_value_of_a_paper_config_names_its_source(path):
    assert not (unsourced := unsourced_values(path)), f"values without a source in {path.name}: {unsourced}"


# PeihaoChen/RSPNet config/pretrain/*.jsonnet: arch, per-GPU batch, lr per 64 clips (scale_learning_rate
# divides by 64), spatial size.
RELEASED = {
    "rspnet_r3d18": ("r3d18_hara", 64, 0.1, 112),
    "rspnet_c3d": ("c3d", 32, 0.1, 112),
    "rspnet_r2plus1d10": ("r2plus1d10", 32, 0.05, 112),
    "rspnet_s3dg": ("s3dg", 64, 0.05, 224),
}


@pytest.mark.parametrize("name", RSPNET)
def test_rspnet_paper_configs_are_the_released_recipes(name):
    config = load(name)
    o, plan, augment = config.model.options, config.data.plan_options, config.data.augment
    backbone, batch, lr, size = RELEASED[name]
    assert (config.model.backbone, config.data.batch_size, config.optim.lr, augment["out"]) == (
        backbone,
        batch,
        lr,
        size,
    )
    assert config.optim.lr_batch == 64 and config.optim.epochs == 200 and not config.optim.milestones
    assert (o["tau"], o["queue_size"], o["momentum"], o["dim"], o["head_hidden"]) == (0.07, 16384, 0.999, 128, 0)
    assert o["avid_positives"] == "both" and plan["shared_start"] and plan["T"] == 16 and plan["speeds"] == [1, 2]
    assert augment["recipe"] == "rspnet" and set(augment) <= {"recipe", "base", "out"}  # the released default
    # BN statistics over at least 16 clips per group, as on the authors' GPUs
    assert min(_groups(batch, o["bn_groups"], 1)) >= 16 and o["bn_groups"] >= 2


def test_the_aug_plus_variant_is_the_released_aug_plus():
    plain, plus = load("rspnet_r3d18").data.augment, load("rspnet_r3d18", variant="aug_plus").data.augment
    assert plus == plain | {"jitter": [0.4, 0.4, 0.4, 0.1], "jitter_p": 0.8, "blur_p": 0.5}


def test_rsp_with_a_plan_that_draws_speeds_independently_is_refused():
    with pytest.raises(ValueError, match="wrong labels"):
        load("tiny_rspnet", ["data.plan_options.mode='avid'"])
    load("tiny_rspnet", ["data.plan_options.mode='avid'", "model.options.motion='sp'"])  # SP labels each clip itself
    load("tiny_rspnet", ["data.plan_options.mode='avid'", "model.options.motion='none'"])


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


def test_the_data_decoder_setting_chooses_the_loader_path(synthetic_splits):
    from jobs.pretrain.loop import build_loader

    shards = f"data.shards='{synthetic_splits / 'train'}'"
    for choice, path in [("auto", "pyav"), ("pyav", "pyav"), ("dali", "dali")]:  # auto on a CPU host
        loader = build_loader(load("tiny_speednet", [shards, f"data.decoder='{choice}'"]))
        assert loader.decoder == path
        loader.close()
    with pytest.raises(ValueError, match="data.decoder='nvdec'"):
        load("tiny_speednet", ["data.decoder='nvdec'"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lr=abc", "optim.lr='abc' is a string, but the field takes a number"),
        ("optim.epochs=2.5", "optim.epochs=2.5 is a decimal number, but the field takes an integer"),
        ("run.seed=true", "run.seed=True is true or false, but the field takes an integer"),
        ("optim.milestones=3", "optim.milestones=3 is an integer, but the field takes a list"),
        ("data.augment.scale=[0.2]", "data.augment.scale=[0.2]: expected a list of 2 values"),
        ("data.augment.jitter=[0.4, 0.4, 0.4, 'a']", "data.augment.jitter[3]='a' is a string"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_when_the_config_is_read(override, message):
    with pytest.raises(ValueError) as error:
        load("tiny_speednet", [override])
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_an_integer_is_a_number():
    assert load("tiny_speednet", ["optim.lr=1"]).optim.lr == 1
