"""Backbones: published parameter counts, shapes at and above ``min_input``, gradients, SpeedNet's variant."""

from __future__ import annotations

import math
from functools import cache

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from models import (
    BACKBONES,
    C3D,
    R3D18,
    S3DG,
    HaraR3D18,
    R2Plus1D10,
    R2Plus1D18,
    SpeedNet,
    build_backbone,
    speednet_pool,
)
from models.resnet3d import midplanes
from models.s3dg import MIXED, MaxPool3dSame

LARGER_ODD = (16 + 1, 112 + 7, 112 + 7)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@cache
def built(name: str) -> nn.Module:
    """One instance per backbone for the whole module (building a 33M-parameter net is not free)."""
    torch.manual_seed(0)
    return build_backbone(name).eval()


def expected_feature_size(name: str, t: int, h: int, w: int) -> tuple[int, int, int]:
    """T', H', W' from the architectures: temporal stride 8 (Hara's R3D-18: 16); spatial stride 32
    (S3D-G, Hara's R3D-18) or 16."""
    st = 16 if name == "r3d18_hara" else 8
    s = 32 if name in ("s3dg", "r3d18_hara") else 16
    return math.ceil(t / st), math.ceil(h / s), math.ceil(w / s)


# --- parameter counts against published architectures ---------------------------------------------
# torchvision's published counts (torchvision/models/video/resnet.py and s3d.py, Weights.meta
# "num_params") include a 400-class Kinetics classifier, which the trunks here do not have.

TV_R3D_18, TV_R2PLUS1D_18, TV_S3D = 33_371_472, 31_505_325, 8_320_048
RESNET_FC_400 = 512 * 400 + 400  # nn.Linear(512, 400)
S3D_CLASSIFIER_400 = 1024 * 400 + 400  # torchvision S3D's nn.Conv3d(1024, 400, 1) with bias


def test_r3d18_trunk_is_torchvision_r3d_18_without_fc():
    assert n_params(R3D18()) == TV_R3D_18 - RESNET_FC_400 == 33_166_272


# Hara et al.'s 3D-ResNet-18 as RSPNet released it (PeihaoChen/RSPNet models/resnet.py, vendored from
# kenshohara/3D-ResNets-PyTorch at 4e2195c): resnet18(num_classes=400), default shortcut_type 'B',
# counted by instantiating that released code. It includes its nn.Linear(512, 400) fc; the trunk here
# has none. (Hara et al., CVPR 2018, report 33.2M for ResNet-18.)
HARA_RESNET18_400 = 33_409_104


def test_r3d18_hara_trunk_is_released_resnet18_without_fc():
    assert n_params(HaraR3D18()) == HARA_RESNET18_400 - RESNET_FC_400 == 33_203_904


def test_r2plus1d18_trunk_is_torchvision_r2plus1d_18_without_fc():
    assert n_params(R2Plus1D18()) == TV_R2PLUS1D_18 - RESNET_FC_400 == 31_300_125


def test_r2plus1d10_is_r2plus1d18_less_the_second_block_of_every_stage():
    # A p -> p block: two (1x3x3 conv to M, BN(M), 3x1x1 conv to p, BN(p)), M = floor(27p^2 / 12p).
    def block(p: int) -> int:
        m = 27 * p * p // (9 * p + 3 * p)
        return 2 * (p * m * 9 + 2 * m + m * p * 3 + 2 * p)

    assert n_params(R2Plus1D10()) == TV_R2PLUS1D_18 - RESNET_FC_400 - sum(block(p) for p in (64, 128, 256, 512))


def test_2plus1d_mid_channels_match_a_full_3d_conv():
    # Tran et al. 2018, sec. 3.5: M spatial + temporal weights ~ the t x d x d conv's weights.
    for cin, cout in [(64, 64), (64, 128), (256, 512), (512, 512)]:
        m = midplanes(cin, cout)
        assert m * (9 * cin + 3 * cout) <= 27 * cin * cout < (m + 1) * (9 * cin + 3 * cout)


def test_s3d_without_gating_is_torchvision_s3d_trunk():
    assert n_params(S3DG(gating=False)) == TV_S3D - S3D_CLASSIFIER_400 == 7_910_048


def test_s3dg_gates_the_stem_and_every_inception_branch():
    # Authors' TF code (tensorflow/models research/slim/nets/s3dg.py): one C x C gate (+ bias here)
    # on Conv2d_2c (192) and on each of the 4 branch outputs of Mixed_3b ... Mixed_5c.
    gated = [192] + [c for w in MIXED.values() for c in (w[0], w[2], w[4], w[5])]
    full = n_params(S3DG())
    assert full - n_params(S3DG(gating=False)) == sum(c * c + c for c in gated)
    assert 8.0e6 < full < 9.5e6  # "about 8-9 M" for the S3D-G trunk; here 9,135,056
    assert n_params(S3DG(speednet=True)) == full  # SpeedNet changes strides, not weights


def test_c3d_conv_part():
    # Tran et al. 2015's 8 convs (3x3x3, with biases) + one BatchNorm3d each, as in RSPNet's
    # models/c3d.py without its linear layer: 27,655,936 conv + 5,504 BN = 27,661,440 (~27.7 M).
    widths = [3, 64, 128, 256, 256, 512, 512, 512, 512]
    convs = sum(a * b * 27 + b for a, b in zip(widths, widths[1:]))
    bn = sum(2 * b for b in widths[1:])
    assert convs == pytest.approx(27.7e6, rel=2e-3)
    assert n_params(C3D()) == convs + bn == 27_661_440


# --- the common interface ---------------------------------------------------------------------------


def test_registry_and_interface_attributes():
    assert set(BACKBONES) == {"s3dg", "c3d", "r3d18", "r3d18_hara", "r3d10", "r2plus1d18", "r2plus1d10"}
    for name, cls in BACKBONES.items():
        model = built(name)
        assert isinstance(model, cls) and isinstance(model.out_channels, int)
        assert len(cls.min_input) == 3 and all(isinstance(s, int) and s >= 1 for s in cls.min_input)
    assert build_backbone("r3d10", width=16).out_channels == 128
    assert build_backbone("s3dg", speednet=True).speednet
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("resnet50")


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_rejects_wrong_layout_and_empty_input(name):
    model = built(name)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 1, 8, 32, 32))  # one channel
    with pytest.raises(ValueError):
        model(torch.zeros(3, 8, 32, 32))  # no batch dimension
    with pytest.raises(ValueError):
        model(torch.zeros(1, 3, 0, 32, 32))  # below min_input


@pytest.mark.parametrize("size", ["min", LARGER_ODD], ids=["min_input", "larger_odd"])
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_forward_shapes_and_finite(name, size):
    model = built(name)
    size = model.min_input if size == "min" else size
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        features, pooled = model.forward_features(x), model(x)
    assert features.shape == (1, model.out_channels, *expected_feature_size(name, *size))
    assert pooled.shape == (1, model.out_channels)
    assert torch.isfinite(features).all() and torch.isfinite(pooled).all()


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_any_size_at_or_above_min_input_works(name):
    model = built(name)

    @settings(max_examples=8, deadline=None, derandomize=True)
    @given(st.integers(0, 12), st.integers(0, 40), st.integers(0, 40))
    def check(dt, dh, dw):
        t, h, w = (m + d for m, d in zip(model.min_input, (dt, dh, dw)))
        with torch.no_grad():
            features = model.forward_features(torch.randn(1, 3, t, h, w))
        assert features.shape[2:] == expected_feature_size(name, t, h, w)
        assert torch.isfinite(features).all()

    check()


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_gradients_reach_the_first_conv(name):
    torch.manual_seed(0)
    model = BACKBONES[name]().train()
    out = model(torch.randn(2, 3, 4, 32, 32))
    (out * torch.randn_like(out)).sum().backward()  # a random projection: BN makes a plain sum's grad ~0
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv3d))
    assert first_conv.weight.grad is not None
    assert torch.isfinite(first_conv.weight.grad).all() and first_conv.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())  # no dead modules


# --- Hara et al.'s 3D-ResNet-18 (RSPNet's released ResNet-18) -----------------------------------------


def test_r3d18_hara_stem_is_7x7x7_conv_then_max_pool():
    stem = HaraR3D18(width=16).stem
    conv, pool = stem[0], stem[-1]
    assert isinstance(conv, nn.Conv3d) and isinstance(pool, nn.MaxPool3d)
    assert (conv.kernel_size, conv.stride, conv.padding) == ((7, 7, 7), (1, 2, 2), (3, 3, 3))
    assert (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    assert HaraR3D18(width=16, temporal_stride=False).stem[-1].stride == (1, 2, 2)


@pytest.mark.parametrize(
    "size, out",
    [
        ((2, 3, 16, 112, 112), (2, 512, 1, 4, 4)),
        ((1, 3, 17, 119, 101), (1, 512, 2, 4, 4)),
        ((1, 3, 1, 1, 1), (1, 512, 1, 1, 1)),
    ],
    ids=["16x112x112", "odd", "min_input"],
)
def test_r3d18_hara_output_at_t_16_s_32(size, out):
    assert HaraR3D18.min_input == (1, 1, 1)
    with torch.no_grad():
        assert built("r3d18_hara").forward_features(torch.randn(*size)).shape == out


def test_r3d18_hara_narrow_and_without_temporal_stride():
    model = HaraR3D18(width=16, temporal_stride=False).eval()
    assert model.out_channels == 128
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 9, 67, 67)).shape == (1, 128, 9, 3, 3)
        assert HaraR3D18(width=16).eval().forward_features(torch.randn(1, 3, 9, 67, 67)).shape == (1, 128, 1, 3, 3)


# --- SpeedNet's S3D-G -------------------------------------------------------------------------------


@cache
def speednet_s3dg() -> S3DG:
    torch.manual_seed(0)
    return S3DG(speednet=True).eval()


def test_speednet_max_pools_all_have_temporal_stride_1():
    pools = [m for m in speednet_s3dg().modules() if isinstance(m, MaxPool3dSame)]
    assert len(pools) == 4 + len(MIXED)  # pool2a/3a/4a/5a + one inside every Inception block
    assert all(p.stride[0] == 1 for p in pools)
    original = S3DG()
    strides = [p.stride for p in (original.pool2a, original.pool3a, original.pool4a, original.pool5a)]
    assert strides == [(1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2)]


@pytest.mark.parametrize("t", [1, 16, 17])
def test_speednet_features_keep_the_temporal_dimension(t):
    x = torch.randn(1, 3, t, 64 + 7, 64 + 7)
    with torch.no_grad():
        features = speednet_s3dg().forward_features(x)
        # The literal reading of SpeedNet's change (i), max pools only: the first conv still halves T.
        literal = S3DG(speednet=True, first_temporal_stride=2).eval().forward_features(x)
        original = built("s3dg").forward_features(x)
    assert features.shape == (1, 1024, t, 3, 3)  # T' = T, N/32 in space (ceil(71/32) = 3)
    assert literal.shape[2] == math.ceil(t / 2)
    assert original.shape[2] == math.ceil(t / 8)


def test_speednet_pooling_is_spatial_max_then_temporal_mean():
    x = torch.randn(2, 3, 9, 64, 64)
    with torch.no_grad():
        features, pooled = speednet_s3dg().forward_features(x), speednet_s3dg()(x)
    assert torch.allclose(pooled, features.flatten(3).max(dim=3).values.mean(dim=2))
    assert torch.allclose(pooled, speednet_pool(features))
    assert not torch.allclose(pooled, features.mean(dim=(2, 3, 4)))


def test_speednet_gives_one_logit_per_clip_and_trains():
    torch.manual_seed(0)
    net = SpeedNet().train()
    x = torch.randn(4, 3, 8, 64, 64)
    logits = net(x)
    assert logits.shape == (4,) and torch.isfinite(logits).all()
    nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([0.0, 1.0, 0.0, 1.0])).backward()
    first_conv = next(m for m in net.backbone.modules() if isinstance(m, nn.Conv3d))
    assert first_conv.weight.grad.abs().sum() > 0
    with torch.no_grad():
        cam = net.eval().activation_map(x)
    assert cam.shape == (4, 8, 2, 2)  # T preserved, N/32 in space
