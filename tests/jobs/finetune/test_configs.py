"""The shipped fine-tuning configs (jobs/finetune/configs/): each loads and builds, fits the
checkpoints of the pretraining config it follows, says where every value comes from, and offers the
paper's stated values as a variant."""

from __future__ import annotations

import pytest

from jobs.finetune.setup import CONFIG_DIR, _check_architecture, load_config
from jobs.pretrain.config import load
from models.classifier import Classifier
from models.pretext import build_pretext
from tests.support.configs import unsourced_values

SHIPPED = sorted(CONFIG_DIR.glob("*.toml"))
PAPER = [p for p in SHIPPED if not p.stem.startswith("tiny")]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_config_loads_and_builds_a_classifier(path):
    config = load_config(path.stem, ["model.options.classes=101"])
    assert config.model.method == "classifier" and config.data.test_clips >= 1
    m = config.model
    model = build_pretext(m.method, m.backbone, m.backbone_options, **m.options)
    assert isinstance(model, Classifier) and model.head.out_features == 101


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_each_paper_config_fits_the_checkpoints_of_its_pretraining_config(path):
    pretraining = path.stem.rsplit("_", 1)[0]  # rspnet_r3d18_ucf101 -> rspnet_r3d18
    pretrained = load(pretraining).to_dict()["model"]
    _check_architecture(pretrained, load_config(path.stem), path, path.stem)  # raises when they differ


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_every_value_of_a_paper_config_names_its_source(path):
    assert not (unsourced := unsourced_values(path)), f"values without a source in {path.name}: {unsourced}"


@pytest.mark.parametrize("path", [p for p in PAPER if p.stem.startswith("rspnet")], ids=lambda p: p.stem)
def test_the_paper_variant_is_the_papers_text(path):
    # RSPNet section 4: "We train for 30, 70, 50 epochs on these datasets [UCF101, HMDB51,
    # Something-V2], respectively, with a learning rate of 0.01."
    paper = load_config(path.stem, variant="paper")
    assert paper.optim.lr == 0.01
    assert paper.optim.epochs == {"ucf101": 30, "hmdb51": 70}[path.stem.rsplit("_", 1)[1]]
    released = load_config(path.stem)
    assert (paper.data, paper.model) == (released.data, released.model)  # the variant changes only those


def test_unknown_variants_are_refused_with_those_offered():
    with pytest.raises(ValueError, match=r"no variant 'papr' \(it offers: paper\)"):
        load_config("rspnet_c3d_ucf101", variant="papr")
    with pytest.raises(ValueError, match=r"offers: none"):
        load_config("tiny_finetune", variant="paper")
