"""What every backbone shares: the interface, the input check, and one weight initialisation.

Objectives, retrieval and CAM code only ever talk to this interface, so a backbone can be swapped by
name without touching them. ``forward_features`` is the last convolutional feature map (pooling
choices, retrieval features and class-activation maps all start from it); ``forward`` pools it to one
embedding per clip.
"""

from __future__ import annotations

import torch
from torch import nn


class Backbone(nn.Module):
    """Base class: subclasses define ``_features`` and the class attributes below.

    ``min_input`` is the smallest (T, H, W) the network accepts; every size at or above it works in
    each dimension independently (odd sizes included). Training-mode BatchNorm additionally needs
    more than one value per channel, so a batch of one clip at ``min_input`` works in eval mode only.
    """

    out_channels: int
    min_input: tuple[int, int, int]

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) -> (N, out_channels, T', H', W'), the last conv feature map."""
        self.check_input(x)
        return self._features(x)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, T', H', W') -> (N, C): global average pool unless a model says otherwise."""
        return features.mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) -> (N, out_channels), the pooled clip embedding."""
        return self.pool(self.forward_features(x))

    def check_input(self, x: torch.Tensor) -> None:
        """Fail with the sizes in the message, rather than deep inside a conv with a shape error."""
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"{type(self).__name__} expects (N, 3, T, H, W), got {tuple(x.shape)}")
        if any(s < m for s, m in zip(x.shape[2:], self.min_input)):
            raise ValueError(f"{type(self).__name__} needs (T, H, W) >= {self.min_input}, got {tuple(x.shape[2:])}")


POOLS = ("avg", "max")


def global_pool(features: torch.Tensor, how: str = "avg") -> torch.Tensor:
    """(N, C, T', H', W') -> (N, C) by global average or max over space and time: the explicit
    pooling choice of exported and retrieval embeddings (the VCOP protocol averages)."""
    if how == "avg":
        return features.mean(dim=(2, 3, 4))
    if how == "max":
        return features.amax(dim=(2, 3, 4))
    raise ValueError(f"pool must be one of {', '.join(POOLS)}, not {how!r}")


def init_weights(model: nn.Module) -> None:
    """He init for convs (fan-out, as torchvision's video ResNets), unit BN, small linear layers.

    One scheme for all backbones so that comparisons between them are not confounded by init. Linear
    layers (the S3D-G gates) start near zero so every gate opens at sigmoid(0) = 0.5.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
