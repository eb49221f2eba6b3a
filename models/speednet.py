"""SpeedNet's classifier: is this clip at normal speed or sped up? (Benaim et al., CVPR 2020, sec. 3.2)

The base network is S3D-G with temporal max-pool strides of 1 (``S3DG(speednet=True)``); its
(N, 1024, T, H/32, W/32) features are max-pooled over space and averaged over time, and a 1x1 conv W
maps the 1024-vector to one logit ("sped up"), trained with binary cross-entropy. The same W applied
at every position instead of after pooling gives the class-activation maps of section 5.5.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Backbone
from .s3dg import S3DG


class SpeedNet(nn.Module):
    """Backbone + SpeedNet pooling + 1x1 conv: (N, 3, T, H, W) -> (N,) logits.

    ``backbone`` defaults to ``S3DG(speednet=True)``; any backbone works, and its own ``pool`` is used
    (for the SpeedNet S3D-G that is spatial max then temporal mean).
    """

    def __init__(self, backbone: Backbone | None = None):
        super().__init__()
        self.backbone = backbone if backbone is not None else S3DG(speednet=True)
        self.head = nn.Conv3d(self.backbone.out_channels, 1, kernel_size=1)
        nn.init.normal_(self.head.weight, 0.0, 0.01)  # start near logit 0: no speed preferred
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.backbone(x)  # (N, C)
        return self.head(pooled[:, :, None, None, None]).flatten()

    def activation_map(self, x: torch.Tensor) -> torch.Tensor:
        """W at every space-time position, before pooling: (N, T', H', W'), for CAM visualisation."""
        features = self.backbone.forward_features(x)
        return nn.functional.conv3d(features, self.head.weight)[:, 0]
