"""Class activation maps (jobs/speed/activation_maps.py, SpeedNet's and RSPNet's maps) and the cam
command (jobs/speed/cam.py), checked against maps and heat frames worked out by hand."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch


def test_cam_maps_and_command(slow_motion_video, tiny_speednet_checkpoint, tmp_path, capsys):
    from jobs.speed.activation_maps import normalise_maps
    from jobs.speed.cam import main

    maps = np.random.default_rng(0).standard_normal((3, 4, 4))
    a, s = normalise_maps(maps, signed=False), normalise_maps(maps, signed=True)
    assert a.min() >= 0 and a.max() == pytest.approx(1) and np.abs(s).max() == pytest.approx(1)
    assert (np.sign(s) == np.sign(maps)).all() and np.allclose(np.abs(s), a)
    # the overlaid frames are the decoded frames the network saw, recovered from its input
    from jobs.speed.activation_maps import activation_maps, map_function, window_frames
    from jobs.speed.analysis import normalised_video
    from pipeline.augment import AugmentConfig
    from pipeline.loader import VideoLoader

    tars = normalised_video(slow_motion_video["path"], tmp_path / "work")
    cam = map_function(tiny_speednet_checkpoint, "m", "cpu")
    maps, count = activation_maps(cam, tars, size=64)
    window_mb = 16 * 3 * 64 * 64 * 4 / 2**20
    chunked, _ = activation_maps(cam, tars, size=64, memory_mb=5 * window_mb)  # 12 windows in chunks of 5
    assert count == 192 and maps.shape[0] == 12 and torch.allclose(chunked, maps, atol=1e-5)
    frames = np.concatenate(list(window_frames(tars, size=64, memory_mb=5 * window_mb)))
    (raw,) = (
        b.video
        for b in VideoLoader(
            tars,
            plan="sliding",
            plan_options={"T": 16, "stride": 16},
            normalise_pixels=False,
            augment=AugmentConfig("eval", out=64),
            batch_size=1,
            device="cpu",
            shuffle=False,
        )
    )
    raw = np.asarray(raw).reshape(-1, 64, 64, 3)
    assert frames.shape == raw.shape == (192, 64, 64, 3)
    assert np.abs(frames.astype(int) - raw).max() <= 1
    # the maps' values: the logit's 1x1 weights applied at every position of the last feature map
    from models.trained import load_trained

    (clips,) = (
        b.video
        for b in VideoLoader(
            tars,
            plan="sliding",
            plan_options={"T": 16, "stride": 16},
            augment=AugmentConfig("eval", out=64),
            batch_size=1,
            device="cpu",
            shuffle=False,
        )
    )
    net = load_trained(tiny_speednet_checkpoint).pretext.net
    with torch.no_grad():
        features = net.backbone.forward_features(clips).numpy()
    assert np.allclose(maps.numpy(), _hand_cam(features, net.head.weight.detach().numpy().ravel()), atol=1e-4)
    for signed in (False, True):
        out = tmp_path / f"cam-{signed}"
        args = [
            slow_motion_video["path"],
            "--checkpoint",
            str(tiny_speednet_checkpoint),
            "--size",
            "64",
            "--out",
            str(out),
        ] + (["--signed"] if signed else [])
        assert main(args) == 0
        assert len(list((out / "frames").glob("*.png"))) == 192  # 12 whole 16-frame windows of 200 frames
        # every saved frame: the frame the network saw, half covered by its own window's map at its own
        # frame, upsampled and scaled by the whole video's largest |map|, through jet (or blue-white-red)
        _assert_heat_frames(sorted((out / "frames").glob("*.png")), frames, maps.numpy(), signed)
        with av.open(str(out / "cam.mp4")) as c:
            assert sum(1 for _ in c.decode(video=0)) == 192


def _hand_cam(features: np.ndarray, w: np.ndarray) -> np.ndarray:
    """SpeedNet's CAM by hand: sum_c w_c F_c at every (t, h, w) of the (N, C, T', H', W') features."""
    out = np.zeros((features.shape[0], *features.shape[2:]))
    for c, weight in enumerate(w):
        out += weight * features[:, c].astype(np.float64)
    return out


def _linear_resize(a: np.ndarray, axis: int, out: int) -> np.ndarray:
    """Linear interpolation along ``axis`` to ``out`` samples at half-pixel centres (align_corners=False)."""
    n = a.shape[axis]
    x = np.clip((np.arange(out) + 0.5) * n / out - 0.5, 0, n - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    shape = [1] * a.ndim
    shape[axis] = out
    w = (x - i0).reshape(shape)
    return np.take(a, i0, axis) * (1 - w) + np.take(a, i1, axis) * w


def _hand_upsample(maps: np.ndarray, T: int, size: int) -> np.ndarray:
    """(n, T', H', W') -> (n * T, size, size): each window's map stretched over its own T frames."""
    up = _linear_resize(_linear_resize(_linear_resize(maps.astype(np.float64), 1, T), 2, size), 3, size)
    return up.reshape(-1, size, size)


def _assert_heat_frames(pngs, frames: np.ndarray, maps: np.ndarray, signed: bool) -> None:
    from matplotlib import colormaps
    from PIL import Image

    values = _hand_upsample(maps, 16, frames.shape[1]) / np.abs(maps).max()
    colours = colormaps["bwr"]((values + 1) / 2) if signed else colormaps["jet"](np.abs(values))
    expected = 0.5 * frames + 0.5 * 255 * colours[..., :3]
    got = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in pngs]).astype(float)
    assert got.shape == expected.shape
    # uint8 truncation: under one level off; a value on a colour-table step may take the next entry
    err = np.abs(got - expected)
    assert err.max() <= 2 and (err > 1).mean() < 1e-4


def test_upsample_stretches_each_window_over_its_own_frames():
    from jobs.speed.activation_maps import upsample

    maps = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    assert np.allclose(upsample(maps, 8, 16), _hand_upsample(maps.numpy(), 8, 16), atol=1e-5)
    assert np.allclose(upsample(maps, 16, 4), _hand_upsample(maps.numpy(), 16, 4), atol=1e-5)


class _Box(torch.nn.Module):
    """A backbone whose features are known by hand: 2x2x2 means of the clip's three channels."""

    out_channels, min_input = 3, (2, 2, 2)

    def forward_features(self, x):
        return torch.nn.functional.avg_pool3d(x, 2)

    def forward(self, x):
        return self.forward_features(x).mean(dim=(2, 3, 4))  # global average, as the map's mean


def test_speednet_cam_is_the_logit_weights_at_every_position():
    from models.speednet import SpeedNet

    net = SpeedNet(_Box()).eval()
    w = np.array([2.0, -1.0, 0.5])
    with torch.no_grad():
        net.head.weight.copy_(torch.tensor(w).view(1, 3, 1, 1, 1))
        net.head.bias.fill_(3.0)
    x = torch.randn(2, 3, 4, 6, 8, generator=torch.Generator().manual_seed(0))
    features = x.numpy().reshape(2, 3, 2, 2, 3, 2, 4, 2).mean(axis=(3, 5, 7))  # 2x2x2 means, by hand
    cam = net.activation_map(x)
    assert cam.shape == (2, 2, 3, 4)
    assert np.allclose(cam.detach().numpy(), _hand_cam(features, w), atol=1e-5)
    # no bias in the map (it is the same everywhere: evidence of no position); with average pooling
    # the logit is the map's mean plus the bias
    assert torch.allclose(net(x), cam.mean(dim=(1, 2, 3)) + 3.0, atol=1e-5)


def test_rspnet_similarity_maps_follow_equation_4(
    synthetic_splits, tiny_checkpoint, slow_motion_video, tmp_path, capsys
):
    """RSPNet's CAM (its eq. 4) averaged over positions is the heads' similarity of the two windows,
    less the bias term: mean(M_i) = (W x_j + b)' W x_i."""
    from jobs.pretrain import checkpoint
    from jobs.pretrain.config import load
    from jobs.pretrain.loop import train
    from jobs.speed.activation_maps import map_function
    from jobs.speed.cam import main
    from models.trained import load_trained
    from tests.support.configs import tiny

    run = tmp_path / "linear"
    sets = tiny("tiny_rspnet", synthetic_splits / "train", **{"optim.max_steps": 1})
    sets = [s for s in sets if not s.startswith("model.options")]
    sets.append("model.options={ queue_size = 32, dim = 16, momentum = 0.9, bn_groups = 2, head_hidden = 0 }")
    train(load("tiny_rspnet", sets), run, progress=False)
    path = checkpoint.path_for(run, 1)
    model = load_trained(path).pretext
    clips = torch.randn(3, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    for head, g in (("m", model.g_m), ("a", model.g_a)):
        maps = map_function(path, head, "cpu")(clips)
        with torch.no_grad():
            x = model.backbone(clips)
            e = g(x)
            partner = torch.cat([e[1:], e[-2:-1]])
            expected = (partner * (x @ g.weight.t())).sum(1)
        assert torch.allclose(maps.mean(dim=(1, 2, 3)), expected, atol=1e-4)
        # and at every position: the partner's embedding through W, as weights on the features there
        with torch.no_grad():
            features = model.backbone.forward_features(clips).numpy()
        weights = partner.numpy() @ g.weight.detach().numpy()  # (N, C): (W x_j + b)' W
        hand = np.stack([_hand_cam(features[n : n + 1], weights[n])[0] for n in range(len(clips))])
        assert maps.shape == hand.shape and np.allclose(maps.detach().numpy(), hand, atol=1e-4)
    assert (
        main(
            [
                slow_motion_video["path"],
                "--checkpoint",
                str(path),
                "--size",
                "32",
                "--frames",
                "8",
                "--out",
                str(tmp_path / "cam"),
                "--no-png",
            ]
        )
        == 0
    )
    assert main([slow_motion_video["path"], "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "x")]) == 2
    assert "needs a linear g_m head" in capsys.readouterr().err
