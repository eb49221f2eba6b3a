"""C3D (Tran et al., ICCV 2015) with batch norm, convolutional part only, as RSPNet uses it.

Eight 3x3x3 convs, 64-128-256-256-512-512-512-512, stride 1 and padding 1, each followed by BN and
ReLU (BN is RSPNet's addition, via Xu et al.'s clip-order code; the convs keep their biases as there).
Pools as in Tran et al.: pool1 1x2x2 (no early temporal pooling, so motion survives the first
layer), pool2-pool4 2x2x2. pool5 and the fc layers are dropped: the feature map is conv5b's and
the embedding is its global average, as in RSPNet (pool5 -> AdaptiveAvgPool3d(1)).

Pools round up (ceil mode), as Caffe's pooling did in the original C3D: odd sizes keep their last
frame/pixel row and any input of at least one frame and pixel works. Output T' = ceil(T/8),
H' = ceil(H/16).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .base import Backbone, init_weights

WIDTHS = (64, 128, 256, 256, 512, 512, 512, 512)
NAMES = ("conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")
POOL_AFTER = {"conv1": (1, 2, 2), "conv2": (2, 2, 2), "conv3b": (2, 2, 2), "conv4b": (2, 2, 2)}


class C3D(Backbone):
    """C3D-BN trunk: (N, 3, T, H, W) -> (N, 512, ceil(T/8), ceil(H/16), ceil(W/16))."""

    out_channels = 512
    min_input = (1, 1, 1)

    def __init__(self):
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        cin = 3
        for name, cout in zip(NAMES, WIDTHS):
            layers += [
                (name, nn.Conv3d(cin, cout, 3, padding=1)),
                (f"bn_{name}", nn.BatchNorm3d(cout)),
                (f"relu_{name}", nn.ReLU(inplace=True)),
            ]
            if name in POOL_AFTER:
                k = POOL_AFTER[name]
                layers.append((f"pool_{name}", nn.MaxPool3d(k, stride=k, ceil_mode=True)))
            cin = cout
        self.features = nn.Sequential(OrderedDict(layers))
        init_weights(self)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
