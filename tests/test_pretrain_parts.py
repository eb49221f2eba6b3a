"""The trainer's pure parts: schedule, configs, checkpoints, RSPNet's module and its BN grouping."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs import checkpoint
from jobs.config import CONFIG_DIR, apply_override, from_dict, load
from jobs.schedule import lr_at, scaled_lr
from models.pretext import SpeedNetTask, build_pretext
from models.rspnet import RSPNet, _groups
from models import build_backbone


@settings(max_examples=200, deadline=None)
@given(total=st.integers(1, 5000), warmup=st.integers(0, 500), peak=st.floats(1e-4, 10.0))
def test_schedule_warms_up_then_decays_within_bounds(total, warmup, peak):
    lrs = [lr_at(s, total, peak, warmup) for s in range(total)] if total <= 600 else \
        [lr_at(s, total, peak, warmup) for s in sorted({0, total - 1, *range(0, total, max(1, total // 300))})]
    assert all(0 < lr <= peak * (1 + 1e-12) for lr in lrs)
    if total <= 600:
        w = min(warmup, total)
        assert all(a < b for a, b in zip(lrs[:w], lrs[1:w]))  # strictly rising during warmup
        assert all(a >= b - 1e-15 for a, b in zip(lrs[w:], lrs[w + 1 :]))  # then never rising
        if warmup < total:
            assert lrs[warmup] == pytest.approx(peak)


def test_schedule_values():
    assert lr_at(0, 100, 1.0) == 1.0
    assert lr_at(50, 100, 1.0) == pytest.approx(0.5)
    assert lr_at(4, 100, 1.0, warmup=10) == pytest.approx(0.5)
    assert lr_at(10, 110, 1.0, warmup=10) == 1.0
    assert scaled_lr(0.1, 256, 64) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        lr_at(100, 100, 1.0)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads_and_builds(path):
    config = load(path.stem, ["data.shards=/somewhere"])
    assert config.data.shards == "/somewhere"
    if "tiny" in path.stem or config.model.backbone in ("r3d18", "c3d"):
        model = build_pretext(config.model.method, config.model.backbone, config.model.backbone_options,
                              **config.model.options)
        assert isinstance(model, (SpeedNetTask, RSPNet))


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


def test_checkpoint_is_atomic_weights_only_and_latest_skips_damage(tmp_path):
    state = {"step": 3, "model": {"w": torch.ones(2)}, "config": {"a": [1, 2]}, "loader": {"epoch": 0, "step": 3}}
    checkpoint.save(tmp_path, state)
    checkpoint.save(tmp_path, state | {"step": 7})
    checkpoint.save(tmp_path, state | {"step": 9}, keep=2)
    assert checkpoint.all_steps(tmp_path) == [7, 9]
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
    assert checkpoint.load(checkpoint.latest(tmp_path))["step"] == 9
    checkpoint.path_for(tmp_path, 11).write_bytes(b"torn")  # e.g. a full disk that was not atomic
    assert checkpoint.latest(tmp_path) == checkpoint.path_for(tmp_path, 9)


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_checkpoint_load_refuses_pickled_code(tmp_path, capsys):
    path = tmp_path / "bad.pt"
    torch.save({"step": 1, "x": _Evil()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        checkpoint.load(path)
    assert "code ran" not in capsys.readouterr().out  # refused before anything in it was called


@given(videos=st.integers(1, 64), groups=st.integers(1, 8), rows=st.sampled_from([1, 3]))
def test_bn_groups_cover_the_batch_in_whole_videos_of_two_or_more(videos, groups, rows):
    sizes = _groups(videos, groups, rows)
    assert sum(sizes) == videos * rows and all(s % rows == 0 for s in sizes)
    assert len(sizes) == 1 or all(s >= 2 * rows for s in sizes)
    assert len(sizes) <= groups


def _triplets(n: int, T: int = 4, side: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(3 * n, 3, T, side, side, generator=g)
    batch = {"role": ["anchor", "positive", "negative"] * n, "epoch": 0, "step": 0,
             "speed": torch.tensor([1.0, 1.0, 2.0] * n)}
    return video, batch


def _tiny_rspnet(**kw) -> RSPNet:
    torch.manual_seed(0)
    return RSPNet(build_backbone("r3d10", width=4), queue_size=32, dim=16, **kw)


def test_rspnet_gradients_reach_online_encoder_and_heads_not_keys_and_queue_fills():
    model = _tiny_rspnet()
    video, batch = _triplets(4)
    ptr = int(model.queue.ptr)
    out = model(video, batch)
    out["loss"].backward()
    assert set(out) == {"loss", "loss_m", "loss_a", "rsp_acc", "avid_acc"}
    assert out["loss"].item() == pytest.approx((out["loss_m"] + out["loss_a"]).item())
    assert all(p.grad is not None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.g_m.parameters()) and all(p.grad is not None for p in model.g_a.parameters())
    assert all(p.grad is None for p in model.key_backbone.parameters())
    assert int(model.queue.ptr) == ptr + 4


def test_momentum_split_over_accumulated_micro_batches_moves_keys_once_by_m():
    """G forward passes at m ** (1 / G), online weights unchanged in between (gradient
    accumulation), leave the key encoder where one update by m would."""
    model = _tiny_rspnet(momentum=0.9, micro_batches=3)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(torch.randn_like(p))  # the online encoder moves away from its momentum copy
    before = [p.clone() for p in model.key_backbone.parameters()]
    online = [p.clone() for p in model.backbone.parameters()]
    video, batch = _triplets(2)
    for _ in range(3):
        model(video, batch)
    for k0, o, k in zip(before, online, model.key_backbone.parameters()):
        assert torch.allclose(k, 0.9 * k0 + 0.1 * o, atol=1e-6)


def test_rspnet_grouped_and_shuffled_forward_is_exact_bookkeeping():
    """With BN on running statistics (eval mode) grouping cannot change any value: so the keys
    computed through the shuffled groups equal the keys computed in one batch, row for row."""
    grouped, single = _tiny_rspnet(bn_groups=4), _tiny_rspnet(bn_groups=1)
    single.load_state_dict(grouped.state_dict())
    grouped.eval(), single.eval()
    video, batch = _triplets(8)
    a, b = grouped(video, batch), single(video, batch)
    assert torch.allclose(grouped.queue.keys, single.queue.keys, atol=1e-5)
    for key in a:
        assert a[key].item() == pytest.approx(b[key].item(), abs=1e-5)


@pytest.mark.parametrize("motion,appearance", [("sp", "avid"), ("rsp", "vid"), ("rsp", "none"), ("none", "avid")])
def test_rspnet_ablations_of_table_1(motion, appearance):
    model = _tiny_rspnet(motion=motion, appearance=appearance)
    video, batch = _triplets(4)
    out = model(video, batch)
    out["loss"].backward()
    assert ("loss_m" in out) == (motion != "none") and ("loss_a" in out) == (appearance != "none")
    assert ("sp_acc" in out) == (motion == "sp")
    assert math.isfinite(out["loss"].item())


def test_rspnet_rejects_batches_that_are_not_triplets():
    model = _tiny_rspnet()
    video, batch = _triplets(2)
    batch["role"] = ["normal", "sped_up"] * 3
    with pytest.raises(ValueError, match="triplets"):
        model(video, batch)


def test_speednet_task_loss_and_accuracy():
    torch.manual_seed(0)
    task = SpeedNetTask(__import__("models").SpeedNet(build_backbone("r3d10", width=4)))
    video = torch.randn(4, 3, 4, 16, 16)
    out = task(video, {"role": ["normal", "sped_up"] * 2})
    assert out["loss"].item() == pytest.approx(math.log(2), abs=0.05)  # the head starts near logit 0
    # accuracy by hand: a clip is right when its logit's sign says its role (sped up: logit > 0)
    logits = task.net(video).reshape(-1)
    truth = torch.tensor([0.0, 1.0] * 2)
    assert float(out["speed_acc"]) == pytest.approx(((logits > 0).float() == truth).float().mean().item())
    # and the loss is the binary cross-entropy of those logits
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, truth)
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_stop_request_is_set_by_the_scheduler_signals_only():
    import os
    import signal

    from jobs.preemption import StopRequest

    previous = {s: signal.getsignal(s) for s in (signal.SIGUSR2, signal.SIGTERM)}
    try:
        stop = StopRequest()
        assert not stop()
        os.kill(os.getpid(), signal.SIGUSR2)
        assert stop() and stop.signum == signal.SIGUSR2
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def test_job_errors_are_reduced_to_the_raised_line():
    from jobs.launch_pretrain import _last_exception_line

    trace = """Job (task=0) failed during processing with trace:
----------------------
Traceback (most recent call last):
  File "x.py", line 1, in f
FileNotFoundError: no shards found at /nowhere (give a split folder)

----------------------
You can check full logs at paths:
  - /tmp/1_0_log.err"""
    assert _last_exception_line(trace) == "FileNotFoundError: no shards found at /nowhere (give a split folder)"
    assert _last_exception_line("") == "no message"


def test_resume_names_the_config_fields_that_changed():
    from jobs.pretrain import _changed_fields

    saved = load("tiny_rspnet").to_dict()
    assert _changed_fields(saved, saved) == []
    assert _changed_fields(saved, load("tiny_rspnet", ["optim.max_steps=5", "model.options.lam=2"]).to_dict()) == [
        "model.options", "optim.max_steps"]


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
