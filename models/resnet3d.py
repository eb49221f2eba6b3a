"""3D ResNets of Tran et al., CVPR 2018 ("A closer look at spatiotemporal convolutions"): R3D and R(2+1)D;
and Hara et al.'s 3D-ResNet-18, the one RSPNet's released code uses.

Both are ResNet-18-style stacks of basic blocks (64-128-256-512 channels, stride 2 in space and
time at the first block of layers 2-4, 1x1x1 conv + BN projection shortcuts) on a stem that strides
only in space. They differ in the conv:

- R3D: full 3x3x3 convs; stem 3x7x7.
- R(2+1)D: each 3x3x3 conv becomes a 1x3x3 spatial conv to M channels, BN, ReLU, then a 3x1x1
  temporal conv, with M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out)) (Tran et al. 2018, sec. 3.5)
  chosen so the pair has about the parameters of the 3D conv it replaces; the extra ReLU doubles the
  nonlinearities at the same size. Stem: 1x7x7 to 45 channels then 3x1x1 to 64.

Exact layout follows torchvision's ``r3d_18`` / ``r2plus1d_18`` (whose published parameter counts the
tests check), including two of its conventions: the stem's 45 mid channels (from the authors' VMZ
code; the formula would give 83), and one M per block computed from the block's (in, out) channels
and used by both of its convs.

R(2+1)D-10 is the same network with one block per layer ([1, 1, 1, 1]), the size RSPNet trained
(RSPNet took its R(2+1)D from Xu et al.'s clip-order code, which differs in details: per-conv M,
a formula-sized stem and factorised 1x1x1 shortcuts; we keep one consistent R(2+1)D definition).

Hara et al.'s 3D-ResNet-18 (CVPR 2018, "Can spatiotemporal 3D CNNs retrace the history of 2D CNNs
and ImageNet?"; kenshohara/3D-ResNets-PyTorch ``resnet18``) is here because it is the ResNet-18
RSPNet's released code trains (its ``models/resnet.py``, ``arch: 'resnet18'``), not torchvision's
R3D-18. Same blocks, 1x1x1 conv + BN projection shortcuts (its default shortcut type 'B') and
fan-out He / unit-BN init as ``init_weights``; the difference is the stem: a 7x7x7 conv (stride
(1, 2, 2), padding 3), BN, ReLU, then a 3x3x3 max-pool with stride 2 in time and space (padding 1).
Every stage therefore runs at half the frames and half the side of R3D-18's: T' = ceil(T/16),
H' = ceil(H/32), and R3D-18 (3x7x7 stem, no max-pool, T/8 and H/16) costs about 5x the compute
(40.7 vs 8.3 G multiply-adds on 16x112x112) at about the same 33.2 M parameters.

Every conv and pool pads k//2 and strides 2 at most, so each dimension maps to ceil(in / stride) and
any input of at least one frame and pixel works: T' = ceil(T/8), H' = ceil(H/16) (Hara's: T/16,
H/32; with ``temporal_stride=False``, T' = T in all of them).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .base import Backbone, init_weights


def midplanes(cin: int, cout: int, t: int = 3, d: int = 3) -> int:
    """(2+1)D mid channels M matching a full t x d x d conv's parameter count (Tran et al. 2018)."""
    return (t * d * d * cin * cout) // (d * d * cin + t * cout)


Stride = int | tuple[int, int, int]  # one for time and space, or (time, height, width)


def conv3d_full(cin: int, cout: int, mid: int, stride: Stride = 1) -> nn.Module:
    """3x3x3 conv striding ``stride`` in time and space (``mid`` unused: same signature as (2+1)D)."""
    return nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv2plus1d(cin: int, cout: int, mid: int, stride: Stride = 1) -> nn.Module:
    """1x3x3 spatial conv (spatial stride) -> BN -> ReLU -> 3x1x1 temporal conv (temporal stride)."""
    st, sh, sw = (stride,) * 3 if isinstance(stride, int) else stride
    return nn.Sequential(
        nn.Conv3d(cin, mid, (1, 3, 3), stride=(1, sh, sw), padding=(0, 1, 1), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, cout, (3, 1, 1), stride=(st, 1, 1), padding=(1, 0, 0), bias=False),
    )


ConvBuilder = Callable[[int, int, int, int], nn.Module]


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus shortcut, then ReLU; the shortcut projects when shape changes."""

    def __init__(self, cin: int, cout: int, conv: ConvBuilder, stride: Stride = 1):
        super().__init__()
        mid = midplanes(cin, cout)
        self.conv1 = nn.Sequential(conv(cin, cout, mid, stride), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv(cout, cout, mid, 1), nn.BatchNorm3d(cout))
        self.shortcut = (
            nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))
            if stride not in (1, (1, 1, 1)) or cin != cout
            else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


def stem_r3d(width: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Conv3d(3, width, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


def stem_r2plus1d(width: int = 64) -> nn.Module:
    mid = 45 * width // 64
    return nn.Sequential(
        nn.Conv3d(3, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, (3, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


def stem_hara(width: int = 64, temporal_stride: bool = True) -> nn.Module:
    """Hara et al.'s stem: 7x7x7 conv (spatial stride 2), BN, ReLU, 3x3x3 max-pool striding 2
    (in space only with ``temporal_stride=False``): T/2, H/4 at layer1."""
    return nn.Sequential(
        nn.Conv3d(3, width, 7, stride=(1, 2, 2), padding=3, bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool3d(3, stride=2 if temporal_stride else (1, 2, 2), padding=1),
    )


class VideoResNet(Backbone):
    """Stem + four stages of basic blocks: (N, 3, T, H, W) -> (N, 8 * width, ceil(T/8), ceil(H/16), ceil(W/16)),
    or ceil(T/16), ceil(H/32), ceil(W/32) on Hara's stem (``stem_hara``), whose max-pool halves once more.

    ``width`` is the stem's and first stage's channel count (64 in every published network); the
    stages double it. Narrower networks (``width=16``) are for CPU-sized runs and tests.
    ``temporal_stride=False`` keeps every frame to the end (T' = T), as SpeedNet does with S3D-G:
    the fine timing a speed classifier needs survives, at the cost of compute in layers 2 to 4.
    """

    min_input = (1, 1, 1)

    def __init__(
        self,
        stem: nn.Module,
        conv: ConvBuilder,
        blocks: tuple[int, int, int, int],
        width: int = 64,
        temporal_stride: bool = True,
    ):
        super().__init__()
        self.stem = stem
        self.out_channels = 8 * width
        stages, cin = [], width
        for i, (cout, n) in enumerate(zip((width, 2 * width, 4 * width, 8 * width), blocks)):
            stride = 1 if i == 0 else (2 if temporal_stride else (1, 2, 2))
            layer = [BasicBlock(cin, cout, conv, stride)] + [BasicBlock(cout, cout, conv) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layer))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        init_weights(self)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


class R3D18(VideoResNet):
    """R3D-18: 3x3x3 convs, [2, 2, 2, 2] blocks (torchvision ``r3d_18`` without its fc)."""

    def __init__(self, width: int = 64, temporal_stride: bool = True):
        super().__init__(stem_r3d(width), conv3d_full, (2, 2, 2, 2), width, temporal_stride)


class R2Plus1D18(VideoResNet):
    """R(2+1)D-18: (2+1)D convs, [2, 2, 2, 2] blocks (torchvision ``r2plus1d_18`` without its fc)."""

    def __init__(self, width: int = 64, temporal_stride: bool = True):
        super().__init__(stem_r2plus1d(width), conv2plus1d, (2, 2, 2, 2), width, temporal_stride)


class R2Plus1D10(VideoResNet):
    """R(2+1)D-10: (2+1)D convs, [1, 1, 1, 1] blocks, the configuration RSPNet used."""

    def __init__(self, width: int = 64, temporal_stride: bool = True):
        super().__init__(stem_r2plus1d(width), conv2plus1d, (1, 1, 1, 1), width, temporal_stride)


class R3D10(VideoResNet):
    """R3D-10: 3x3x3 convs, [1, 1, 1, 1] blocks; with a small ``width``, the CPU-sized network."""

    def __init__(self, width: int = 64, temporal_stride: bool = True):
        super().__init__(stem_r3d(width), conv3d_full, (1, 1, 1, 1), width, temporal_stride)


class HaraR3D18(VideoResNet):
    """Hara et al.'s 3D-ResNet-18 as in RSPNet's released code (``models/resnet.py``, ``resnet18`` with
    shortcut 'B'), without its fc: 7x7x7 stem + max-pool, 3x3x3 convs, [2, 2, 2, 2] blocks."""

    def __init__(self, width: int = 64, temporal_stride: bool = True):
        super().__init__(stem_hara(width, temporal_stride), conv3d_full, (2, 2, 2, 2), width, temporal_stride)
