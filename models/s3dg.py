"""S3D-G (Xie et al., ECCV 2018, "Rethinking spatiotemporal feature learning") and SpeedNet's variant.

S3D-G is Inception-v1 inflated to 3D with every k x k x k conv split into a 1 x k x k spatial conv and
a k x 1 x 1 temporal conv (each with BN + ReLU), plus self-gating: each feature map is rescaled per
channel by sigmoid(W . mean_{T,H,W}(x) + b), a cheap way to let global context re-weight features.

Sources followed, and where they disagree:

- Layout, channel widths (Mixed_3b ... Mixed_5c, as in I3D/S3D) and pooling: the authors' TensorFlow
  code (tensorflow/models research/slim/nets/s3dg.py) and torchvision's S3D, which agree.
- First layer: separable 7x7x7, stride 2, as in torchvision's S3D. The TF code instead uses a full
  (non-separable) 3x7x7 conv there ("separable conv is slow when used at first conv layer"); we keep
  it separable so the ungated network is exactly torchvision's S3D trunk (7,910,048 parameters),
  which the tests check.
- Gating placement: the authors' TF code (``inception_block_v1_3d``) and Miech et al.'s PyTorch port
  gate the output of every branch of every Inception block (the two separable-conv branches *and*
  the two 1x1 branches) plus the stem's separable Conv2d_2c; the first conv is not gated. We do the
  same. The gate is a linear layer with bias, as in Miech et al.'s port (the TF code has no bias).
- BatchNorm eps is TF's 1e-3; momentum is PyTorch's default 0.1 (TF's decay 0.999 would make
  running statistics useless for the first thousands of steps of self-supervised pretraining).
- Max pools use TF "SAME" padding: the output is ceil(in / stride) in every dimension, so any input
  size works and odd sizes lose no border frames or pixels.

SpeedNet (Benaim et al., CVPR 2020, section 3.2) changes two things: (i) "temporal strides for all
the max pooling layers are set to 1, to leave the input's temporal dimension constant", and (ii) the
features are pooled by a spatial global max then a temporal global average. The paper states the
base network's output is T x N/32 x N/32 x 1024, i.e. the temporal dimension is *preserved*; with
the first conv's temporal stride of 2 it would be T/2, so (i) alone cannot give that output. We
therefore also set the first conv's temporal stride to 1 in the SpeedNet variant (the reading that
matches the stated output size and the T x N x N CAM maps of section 5.5); pass
``first_temporal_stride=2`` for the literal reading of (i) alone (output T' = ceil(T/2)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone, init_weights

BN_EPS = 1e-3

# (branch0 1x1, branch1 1x1 reduce, branch1 3x3x3 out, branch2 1x1 reduce, branch2 3x3x3 out,
#  branch3 pool-proj 1x1): the Inception-v1 widths used unchanged by I3D, S3D and S3D-G.
MIXED = {
    "mixed_3b": (64, 96, 128, 16, 32, 32),
    "mixed_3c": (128, 128, 192, 32, 96, 64),
    "mixed_4b": (192, 96, 208, 16, 48, 64),
    "mixed_4c": (160, 112, 224, 24, 64, 64),
    "mixed_4d": (128, 128, 256, 24, 64, 64),
    "mixed_4e": (112, 144, 288, 32, 64, 64),
    "mixed_4f": (256, 160, 320, 32, 128, 128),
    "mixed_5b": (256, 160, 320, 32, 128, 128),
    "mixed_5c": (384, 192, 384, 48, 128, 128),
}


class ConvBNReLU(nn.Sequential):
    """Conv3d (no bias: BN supplies it) -> BN -> ReLU, the unit every S3D-G conv is built from."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__(
            nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm3d(cout, eps=BN_EPS),
            nn.ReLU(inplace=True),
        )


class SeparableConv3d(nn.Sequential):
    """k x k x k conv factorised as 1 x k x k (space) then k x 1 x 1 (time), each with BN + ReLU.

    Spatial stride goes to the spatial conv and temporal stride to the temporal one, so the
    factorisation down-samples exactly like the full conv it replaces.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: tuple[int, int, int] = (1, 1, 1)):
        st, sh, sw = stride
        p = k // 2
        super().__init__(
            ConvBNReLU(cin, cout, (1, k, k), stride=(1, sh, sw), padding=(0, p, p)),
            ConvBNReLU(cout, cout, (k, 1, 1), stride=(st, 1, 1), padding=(p, 0, 0)),
        )


class SelfGating(nn.Module):
    """S3D-G feature gating: x * sigmoid(W . mean_{T,H,W}(x) + b), one gate per channel and clip."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * gate[:, :, None, None, None]


class MaxPool3dSame(nn.Module):
    """Max pool with TensorFlow "SAME" padding: output size ceil(in / stride), for any input size.

    Padding is computed from the actual input (split as TF does, the extra cell after) and filled
    with -inf so padded cells never win the max.
    """

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for size, k, s in reversed(list(zip(x.shape[2:], self.kernel, self.stride))):  # F.pad: last dim first
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads, value=float("-inf"))
        return F.max_pool3d(x, self.kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding=SAME"


class MixedBlock(nn.Module):
    """Separable Inception block: 1x1 | 1x1 -> sep3x3x3 | 1x1 -> sep3x3x3 | maxpool3x3x3 -> 1x1.

    With ``gating`` every branch output is gated before the concat, as in the authors' code.
    """

    def __init__(self, cin: int, widths: tuple[int, ...], gating: bool = True):
        super().__init__()
        b0, b1r, b1, b2r, b2, b3 = widths
        self.branch0 = ConvBNReLU(cin, b0, 1)
        self.branch1 = nn.Sequential(ConvBNReLU(cin, b1r, 1), SeparableConv3d(b1r, b1, 3))
        self.branch2 = nn.Sequential(ConvBNReLU(cin, b2r, 1), SeparableConv3d(b2r, b2, 3))
        self.branch3 = nn.Sequential(MaxPool3dSame((3, 3, 3), (1, 1, 1)), ConvBNReLU(cin, b3, 1))
        outs = (b0, b1, b2, b3)
        self.gates = nn.ModuleList(SelfGating(c) if gating else nn.Identity() for c in outs)
        self.out_channels = sum(outs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch0, self.branch1, self.branch2, self.branch3)
        return torch.cat([g(b(x)) for b, g in zip(branches, self.gates)], dim=1)


class S3DG(Backbone):
    """S3D-G trunk up to Mixed_5c (1024 channels, spatial stride 32).

    ``speednet=False``: the original network, temporal stride 8 (T' = ceil(T/8)), average-pooled.
    ``speednet=True``: SpeedNet's base network, every max pool has temporal stride 1 and (see the module
    docstring) so does the first conv, so T' = T; ``forward`` pools by spatial max then temporal mean.
    ``first_temporal_stride`` overrides the first conv's temporal stride (default: 2, or 1 with
    ``speednet``). ``gating=False`` gives plain S3D.
    """

    out_channels = 1024
    # Every layer pads ("SAME" pools, k//2 conv padding), so a single frame of a single pixel passes.
    min_input = (1, 1, 1)

    def __init__(self, speednet: bool = False, gating: bool = True, first_temporal_stride: int | None = None):
        super().__init__()
        self.speednet = speednet
        pool_t = 1 if speednet else 2
        conv1_t = first_temporal_stride if first_temporal_stride is not None else (1 if speednet else 2)
        self.conv1 = SeparableConv3d(3, 64, 7, stride=(conv1_t, 2, 2))  # Conv2d_1a_7x7, not gated
        self.pool2a = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.conv2b = ConvBNReLU(64, 64, 1)
        self.conv2c = SeparableConv3d(64, 192, 3)
        self.gate2c = SelfGating(192) if gating else nn.Identity()
        self.pool3a = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.mixed_3b = MixedBlock(192, MIXED["mixed_3b"], gating)
        self.mixed_3c = MixedBlock(256, MIXED["mixed_3c"], gating)
        self.pool4a = MaxPool3dSame((3, 3, 3), (pool_t, 2, 2))
        self.mixed_4b = MixedBlock(480, MIXED["mixed_4b"], gating)
        self.mixed_4c = MixedBlock(512, MIXED["mixed_4c"], gating)
        self.mixed_4d = MixedBlock(512, MIXED["mixed_4d"], gating)
        self.mixed_4e = MixedBlock(512, MIXED["mixed_4e"], gating)
        self.mixed_4f = MixedBlock(528, MIXED["mixed_4f"], gating)
        self.pool5a = MaxPool3dSame((2, 2, 2), (pool_t, 2, 2))
        self.mixed_5b = MixedBlock(832, MIXED["mixed_5b"], gating)
        self.mixed_5c = MixedBlock(832, MIXED["mixed_5c"], gating)
        init_weights(self)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool2a(self.conv1(x))
        x = self.pool3a(self.gate2c(self.conv2c(self.conv2b(x))))
        x = self.pool4a(self.mixed_3c(self.mixed_3b(x)))
        x = self.mixed_4f(self.mixed_4e(self.mixed_4d(self.mixed_4c(self.mixed_4b(x)))))
        return self.mixed_5c(self.mixed_5b(self.pool5a(x)))

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return speednet_pool(features) if self.speednet else features.mean(dim=(2, 3, 4))


def speednet_pool(features: torch.Tensor) -> torch.Tensor:
    """SpeedNet's pooling, (N, C, T, H, W) -> (N, C): global max over space, then mean over time.

    Max over space lets the most dominant mover decide; mean over time avoids reacting to
    instantaneous "spiky" motion (SpeedNet section 3.2).
    """
    return features.amax(dim=(3, 4)).mean(dim=2)
